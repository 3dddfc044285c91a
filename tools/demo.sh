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
"$BUILD_DIR"/ttc run experiments/grids/demo.json --db "$DB" --cpu
echo
echo "Report: $(pwd)/$DB.report/index.html (open it in a browser; metrics.csv and report.json beside it)"
