#!/usr/bin/env bash
# One device session for the CUDA engine (run from the repository root on the GPU machine, $OUT set):
# installs the carried Debian packages (.devdeps/*.deb, fetched on the CPU machine with
# `apt-get download`) into a private prefix, builds the CUDA test and engine_bench, runs the CUDA tests,
# compute-sanitizer (memcheck, racecheck) over one prefill + decode per family, and the benchmark table.
# Usage: tools/device/cuda_session.sh [setup|test|sanitize|profile CONFIGS...|bench CONFIGS...]...
# (default: all but bench and profile). `profile` runs one short bench per (config, batch in
# $BATCHES) with TTC_CUDA_PROFILE=1, which prints GPU milliseconds per backend op.
# Fixtures come from .devshared/golden (a copy of ../shared/golden carried with the tree).
set -u
OUT=${OUT:-/tmp/ttc-out}
mkdir -p "$OUT"
ROOT=$PWD
P=/tmp/ttc-deps
BUILD=$ROOT/build-dev
export PKG_CONFIG_PATH=$P/usr/lib/x86_64-linux-gnu/pkgconfig
export LD_LIBRARY_PATH=$P/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
# `ttc bench` without the rest of the CLI (tools/bench/engine_bench.cc).
BENCH=$BUILD/bench/engine_bench

setup() {
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  mkdir -p "$P"
  for d in .devdeps/*.deb; do dpkg -x "$d" "$P"; done
  sed -i -e "s#^prefix=.*#prefix=$P/usr#" -e "/^Requires.private/d" "$P"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
  local gen="Unix Makefiles"
  command -v ninja > /dev/null && gen=Ninja
  cmake -S . -B "$BUILD" -G "$gen" -DTTC_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P/usr" \
    -DTTC_SHARED_DIR="$ROOT/.devshared" > "$OUT/cmake.log" 2>&1 || { tail -40 "$OUT/cmake.log"; return 1; }
  cmake --build "$BUILD" -j 16 --target cuda_test cuda_kernel_test > "$OUT/build-test.log" 2>&1 || { grep -B2 -A8 -m5 error "$OUT/build-test.log"; }
  cmake --build "$BUILD" -j 16 --target engine_bench > "$OUT/build-bench.log" 2>&1 || { grep -B2 -A8 -m5 error "$OUT/build-bench.log"; }
  ls -la "$BENCH" "$BUILD/tests/cuda/cuda_test" "$BUILD/tests/cuda/cuda_kernel_test"
}

# The summaries are cut with awk, which reads to the end: `head` would exit early, and the SIGPIPE
# through tee killed the kernel test after its first test in session 6's calls S and T.
test_() {
  "$BUILD/tests/cuda/cuda_kernel_test" 2>&1 | tee "$OUT/cuda_kernel_test.log" | grep -E "^\[cuda\]|FAILED|PASSED|SKIPPED|Failure|error" | awk 'NR <= 40'
  "$BUILD/tests/cuda/cuda_test" 2>&1 | tee "$OUT/cuda_test.log" | grep -E "^\[cuda\]|FAILED|PASSED|SKIPPED|Failure|error" | awk 'NR <= 80'
}

# compute-sanitizer over one prefill + batched decode of each family (the BatchedDecodeEqualsSingle
# test) and the attention kernels. SAN_FILTER narrows the gtest filter (e.g. one family), SAN_TOOLS
# the tools.
sanitize() {
  local filter=${SAN_FILTER:-'*BatchedDecodeEqualsSingle*:CudaSampler.ManyRowsOneDrawEach'}
  for tool in ${SAN_TOOLS:-memcheck racecheck}; do
    compute-sanitizer --tool $tool --error-exitcode 3 "$BUILD/tests/cuda/cuda_test" \
      --gtest_filter="$filter" > "$OUT/sanitize-$tool.log" 2>&1
    echo "sanitizer $tool ($filter): exit $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize-$tool.log" | tail -1)"
    compute-sanitizer --tool $tool --error-exitcode 3 "$BUILD/tests/cuda/cuda_kernel_test" > "$OUT/sanitize-$tool-kernels.log" 2>&1
    echo "sanitizer $tool (attention kernels): exit $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize-$tool-kernels.log" | tail -1)"
  done
}

bench() {
  for cfg in "$@"; do
    "$BENCH" bench --config "$cfg" --backend cuda --batch "${BATCHES:-1,16,64,256,512}" --prompt-len "${PROMPT:-512}" \
      --gen-len "${GEN:-512}" --json "$OUT/bench-$cfg.json" 2>&1 | tee "$OUT/bench-$cfg.log"
  done
}

profile() {
  for cfg in "$@"; do
    for b in ${BATCHES//,/ }; do
      echo "== profile $cfg B=$b gen ${GEN:-64}"
      TTC_CUDA_PROFILE=1 "$BENCH" bench --config "$cfg" --backend cuda --batch "$b" \
        --prompt-len "${PROMPT:-512}" --gen-len "${GEN:-64}" 2>&1 | tail -40
    done
  done 2>&1 | tee "$OUT/profile.log"
}

if [ $# -eq 0 ]; then set -- setup test sanitize; fi
while [ $# -gt 0 ]; do
  case "$1" in
    setup) setup ;;
    test) test_ ;;
    sanitize) sanitize ;;
    bench) shift; bench "$@"; break ;;
    profile) shift; profile "$@"; break ;;
    *) echo "unknown step $1"; exit 2 ;;
  esac
  shift
done
