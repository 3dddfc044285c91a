#!/usr/bin/env bash
# Installs dependencies, builds ttc with tests (CUDA sources compiled when nvcc is present) and runs the whole
# suite through CTest; then builds the parser/untrusted-input tests (label "robust") and the libFuzzer targets with
# clang under AddressSanitizer + UBSan and runs them briefly. The README's test command and .ci/run both call this.
# Exits non-zero on any failure. Set TTC_SKIP_ASAN=1 to skip the sanitizer pass (faster local iterations).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="$PATH:/usr/local/cuda/bin"
if [ -z "${TTC_CUDA:-}" ]; then
  if command -v nvcc >/dev/null 2>&1; then TTC_CUDA=ON; else TTC_CUDA=OFF; fi
fi
echo "== build ($BUILD_DIR, CUDA $TTC_CUDA)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTTC_BUILD_TESTS=ON -DTTC_CUDA="$TTC_CUDA"
cmake --build "$BUILD_DIR" -j "$JOBS"

status=0
if [ "${TTC_SKIP_ASAN:-0}" != 1 ]; then
  echo "== sanitizer build (robust tests + fuzzers, clang, ASan+UBSan)"
  ASAN_DIR=${ASAN_DIR:-build-asan}
  cmake -S . -B "$ASAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DTTC_CUDA=OFF -DTTC_SANITIZE=ON -DTTC_FUZZ=ON -DTTC_TESTS_LABEL_FILTER=robust
  cmake --build "$ASAN_DIR" -j "$JOBS" --target ttc_robust_tests ttc_fuzzers
  (cd "$ASAN_DIR" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     ctest --output-on-failure -j "$JOBS" -L "robust|fuzz") || status=1
fi

echo "== test suite"
cd "$BUILD_DIR"
ctest --output-on-failure -j "$JOBS" --timeout 600 || status=1
exit $status
