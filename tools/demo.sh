#!/usr/bin/env bash
# Installs dependencies, builds ttc (CPU backend is enough) and runs the default experiment, ending with its
# report. The README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build-release}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTTC_BUILD_TESTS=OFF -DTTC_CUDA=${TTC_CUDA:-OFF} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target ttc
"$BUILD_DIR"/ttc version
