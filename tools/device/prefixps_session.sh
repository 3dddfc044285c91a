#!/usr/bin/env bash
# Device call AH (session 9, docs/perf/cuda.md): the shared-prefix tile kernel with each 64-position
# tile split between two warps per row group (PrefixAttentionKernel<HD, 2>: 8 warps per block, Q
# fragments in shared memory, 2 blocks per SM; the halves merged through shared memory), selected by
# TTC_PREFIX_PS2=1 against the 4-warp kernel (call AF: 38.6 us, 9.8 % occupancy, latency-bound).
# Builds this tree, runs the CUDA tests, the attention kernel test and the cascade family test with
# the split, the micro-benchmark and the engine A/B (512 steps), Nsight Compute on the split kernel,
# the table rows of the attention models with the A/B's winner, and compute-sanitizer (memcheck,
# racecheck) over the attention kernel test with the split. Logs under /tmp/logs -> $OUT/logs.tgz.
# (No gain: the split kernel and TTC_PREFIX_PS2 were removed after this call.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  kernel_test ps2 TTC_PREFIX_PS2=1
  TTC_PREFIX_PS2=1 timeout 60 build-dev/tests/cuda/cuda_test --gtest_filter='*CascadeAttentionEqualsPerRowWalk*' > $L/fam-ps2.log 2>&1
  el "cascade family test PS2: $(grep -E 'PASSED|FAILED' $L/fam-ps2.log | tail -1)"; grep -E "^\[cuda\]" $L/fam-ps2.log | head -4
  grep -E "^\[cuda\].*(cascade|Cascade)" $L/session.log | head -4
  attn_micro 256,512 ps1:TTC_NONE=1 ps2:TTC_PREFIX_PS2=1
  bench_ab "llama-3.2-3b:256,512 llama-3.2-1b:256,512 mambainllama-3b:512" ps1:TTC_NONE=1 ps2:TTC_PREFIX_PS2=1
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section SchedulerStats"
  TTC_PREFIX_PS2=1 ncu_kernel $L/ncu-prefix.log 100 PrefixAttentionKernel $((28 * 256)) llama-3.2-3b 512 260 $S; el "ncu prefix PS2"
  grep -E "^  [A-Za-z].*Kernel|Duration|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible|Issue Slots Busy|Local" $L/ncu-prefix.log | cut -c1-150 | head -10
  if awk -v a="$(ms_at $L/bench-ps2-llama-3.2-3b.log 512)" -v b="$(ms_at $L/bench-ps1-llama-3.2-3b.log 512)" 'BEGIN {exit !(a < b)}'; then
    el "table rows with the split"
    for cfg in llama-3.2-3b mambainllama-3b llama-3.2-1b mambainllama-1b; do bench table TTC_PREFIX_PS2=1 $cfg 1,16,64,256,512; done
  fi
  for tool in memcheck racecheck; do TTC_PREFIX_PS2=1 san attn-ps2 $tool 70 cuda_kernel_test 'CudaAttention.*'; done
}
export -f main
timeout ${BUDGET:-575} bash -c main
tar czf $OUT/logs.tgz -C $L .
