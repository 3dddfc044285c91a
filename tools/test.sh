#!/usr/bin/env bash
# Installs dependencies, builds ttc with tests (CUDA sources compiled when nvcc is present) and runs the whole
# suite through CTest. The README's test command and .ci/run both call this. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
if [ -z "${TTC_CUDA:-}" ]; then
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then TTC_CUDA=ON; else TTC_CUDA=OFF; fi
fi
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTTC_BUILD_TESTS=ON -DTTC_CUDA="$TTC_CUDA"
cmake --build "$BUILD_DIR" -j "$JOBS"
cd "$BUILD_DIR"
ctest --output-on-failure -j "$JOBS" --timeout 600
