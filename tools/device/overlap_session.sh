#!/usr/bin/env bash
# Device call AJ (session 10, docs/perf/cuda.md): the CUDA tests at HEAD (first run of the cascade
# test with 10 prefix ranges, added after session 9's last call), the two-stream overlap
# micro-benchmark (build/bench/cuda_overlap: does a batch run as two halves on two streams, one
# half's attention under the other's GEMMs, beat the whole batch on one stream?), and Nsight
# Compute with the per-SASS-line stall samples (source page) of the prefix tile kernel (Llama-3B
# B=512) and of head_dim 64's own-range kernel (Llama-1B B=256 after ~256 steps). Logs under
# /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\].*cascade" $L/session.log | head -6
  cmake --build build-dev -j 16 --target cuda_overlap > $L/build-overlap.log 2>&1; el "build cuda_overlap rc $?"
  for a in "256,512 256 2" "256,512 32 2" "512 256 4"; do
    timeout 60 build-dev/bench/cuda_overlap $a > "$L/overlap-${a// /_}.log" 2>&1; el "cuda_overlap $a"
    cat "$L/overlap-${a// /_}.log"
  done
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SourceCounters --section LaunchStats"
  ncu_kernel $L/ncu-prefix.log 90 PrefixAttentionKernel $((28 * 4)) llama-3.2-3b 512 6 $S -o $L/prefix; el "ncu prefix"
  ncu_kernel $L/ncu-own64.log 120 AttentionMmaKernel $((16 * 256)) llama-3.2-1b 256 260 $S -o $L/own64; el "ncu own64"
  ncu_pages prefix own64
}
export -f main
timeout ${BUDGET:-480} bash -c main
tar czf $OUT/logs.tgz -C $L .
