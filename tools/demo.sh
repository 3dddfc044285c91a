#!/usr/bin/env bash
# The README's first command: installs dependencies, builds ttc (Release, CPU backend is enough) and runs the
# default experiment (experiments/grids/demo.json: a small Llama teacher, its MambaInLlama and Llamba students and
# a PRM, trained in this repository) through `ttc run`, ending with the HTML report. Re-running resumes the same
# experiment from its database instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build-release}
DB=${DB:-demo.ttc.db}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTTC_BUILD_TESTS=OFF -DTTC_CUDA="${TTC_CUDA:-OFF}" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target ttc
"$BUILD_DIR"/ttc version
if [ ! -f "$DB" ]; then
  # Engine speed tables for the three generators at the experiment's lengths (a few seconds each): the report's
  # paper time model and its speed plot read them; without them it falls back to the samples' measured times.
  for m in teacher-llama student-mambainllama student-llamba; do
    "$BUILD_DIR"/ttc bench --model "experiments/models/$m" --backend cpu --batch 1,2,4,8,16,32 \
      --prompt-len 128 --gen-len 96 --db "$DB" | tail -n 1
  done
fi
"$BUILD_DIR"/ttc run experiments/grids/demo.json --db "$DB" --cpu
echo
echo "Report: $(pwd)/$DB.report/index.html (open it in a browser; metrics.csv and report.json beside it)"
