#!/usr/bin/env bash
# Device call AF (session 9, docs/perf/cuda.md): the mma attention with call AE's winners as the
# only form (O^T += V^T P^T except head_dim <= 64's one-warp kernel; Q in shared memory at head_dim
# 128), and each warp's L2 prefetch of the positions N iterations ahead (TTC_ATTN_PREFETCH=N,
# cp.async.bulk.prefetch.L2; 0 = off). Builds this tree (+ cuda_attention), runs the CUDA tests,
# the attention kernel test with prefetching, the micro-benchmark and the engine A/B (512 steps),
# and Nsight Compute on the own-range and prefix kernels (Llama-3B B=512, step ~256).
# Logs under /tmp/logs -> $OUT/logs.tgz. (The prefetch was slower and was removed with
# TTC_ATTN_PREFETCH.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  for pf in 1 2; do kernel_test pf$pf TTC_ATTN_PREFETCH=$pf; done
  attn_micro 256,512 pf0:TTC_ATTN_PREFETCH=0 pf1:TTC_ATTN_PREFETCH=1 pf2:TTC_ATTN_PREFETCH=2 pf4:TTC_ATTN_PREFETCH=4
  bench_ab "llama-3.2-3b:256,512 llama-3.2-1b:256,512 mambainllama-3b:512" pf0:TTC_ATTN_PREFETCH=0 \
    pf1:TTC_ATTN_PREFETCH=1 pf2:TTC_ATTN_PREFETCH=2
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats"
  ncu_kernel $L/ncu-own.log 100 AttentionMmaKernel $((28 * 256)) llama-3.2-3b 512 260 $S; el "ncu own-range attention"
  grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible" $L/ncu-own.log | cut -c1-150 | head -12
  ncu_kernel $L/ncu-prefix.log 100 PrefixAttentionKernel $((28 * 256)) llama-3.2-3b 512 260 $S --section SchedulerStats --section ComputeWorkloadAnalysis; el "ncu prefix attention"
  grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|L2 Cache Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible|Grid Size|Waves Per SM|Pipe Utilization|Issue Slots Busy" $L/ncu-prefix.log | cut -c1-150 | head -16
}
export -f main
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
