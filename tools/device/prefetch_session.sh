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
  for pf in 1 2; do
    TTC_ATTN_PREFETCH=$pf timeout 60 build-dev/tests/cuda/cuda_kernel_test --gtest_filter='CudaAttention.*' > $L/kt-pf$pf.log 2>&1
    el "kernel test PF=$pf: $(grep -E 'PASSED|FAILED' $L/kt-pf$pf.log | tail -1)"
  done
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build cuda_attention rc $?"
  for pf in 0 1 2 4; do
    TTC_ATTN_PREFETCH=$pf timeout 40 build-dev/bench/cuda_attention 256,512 > $L/attn-pf$pf.log 2>&1
    el "cuda_attention PF=$pf"; grep -E "^llama|^model" $L/attn-pf$pf.log | grep -E "model| 256 *$| 256 " | head -8
  done
  for pf in 0 1 2; do
    bench pf$pf TTC_ATTN_PREFETCH=$pf llama-3.2-3b 256,512
    bench pf$pf TTC_ATTN_PREFETCH=$pf llama-3.2-1b 256,512
    bench pf$pf TTC_ATTN_PREFETCH=$pf mambainllama-3b 512
  done
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats"
  ncu_kernel $L/ncu-own.log 100 AttentionMmaKernel $((28 * 256)) llama-3.2-3b 512 260 $S; el "ncu own-range attention"
  grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible" $L/ncu-own.log | cut -c1-150 | head -12
  ncu_kernel $L/ncu-prefix.log 100 PrefixAttentionKernel $((28 * 256)) llama-3.2-3b 512 260 $S --section SchedulerStats --section ComputeWorkloadAnalysis; el "ncu prefix attention"
  grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|L2 Cache Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible|Grid Size|Waves Per SM|Pipe Utilization|Issue Slots Busy" $L/ncu-prefix.log | cut -c1-150 | head -16
}
export -f main
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
