#!/usr/bin/env bash
# Device call AI (session 9, docs/perf/cuda.md): the own-range kernel's merge of the shared prefix's
# partials with per-head factors computed once per block and the element loop unrolled (the old
# merge loaded the prefix's max and output per element, a chain of dependent loads; the cascade's
# own kernel costs ~28 us per layer at Llama-3B B=512 with one own position). TTC_MERGE_OLD=1 runs
# the old merge. Builds this tree, runs the CUDA tests (new merge), the micro-benchmark and the
# engine A/B (512 steps), Nsight Compute on the own-range kernel at decode step 3, and
# compute-sanitizer (memcheck, racecheck) over the attention kernel test. Logs under /tmp/logs ->
# $OUT/logs.tgz. (Kept; TTC_MERGE_OLD was removed after this call.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\].*cascade vs per-row" $L/session.log | head -2
  grep -E "attention mma" $L/session.log | awk '{print $NF}' | sort -g | tail -1
  attn_micro 256,512 old:TTC_MERGE_OLD=1 new:TTC_NONE=1
  bench_ab "llama-3.2-3b:256,512 llama-3.2-1b:256,512 mambainllama-3b:512" old:TTC_MERGE_OLD=1 new:TTC_NONE=1
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats"
  for v in "old:TTC_MERGE_OLD=1" "new:TTC_NONE=1"; do
    env ${v#*:} bash -c "ncu_kernel $L/ncu-own-${v%%:*}.log 60 AttentionMmaKernel $((28 * 3)) llama-3.2-3b 512 8 $S"
    el "ncu own-range step 3 ${v%%:*}: $(grep -E 'Duration' $L/ncu-own-${v%%:*}.log | head -1 | awk '{print $NF}') us"
  done
  for tool in memcheck racecheck; do san attn $tool 70 cuda_kernel_test 'CudaAttention.*'; done
}
export -f main
timeout ${BUDGET:-470} bash -c main
tar czf $OUT/logs.tgz -C $L .
