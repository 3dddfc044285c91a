#!/usr/bin/env bash
# Device call Z (session 8, docs/perf/cuda.md): Mamba-1's A read as [N][di] (coalesced, as the
# state) and stochastic rounding of a bf16 recurrent state. Builds this tree, runs the CUDA tests
# (the kernel tests cover both A layouts, both roundings, and the drift of a slowly changing bf16
# state), the goldens' errors with a bf16 state rounded to nearest and stochastically,
# compute-sanitizer over the kernel tests and one decode of each family, the engine A/B of the A
# layout (TTC_CUDA_MAMBA1_A=rows = before) and of the state storage (f32, bf16 nearest, bf16
# stochastic), 128 steps each, and Nsight Compute on the Mamba-1 decode kernel (new layout). Logs under
# /tmp/logs -> $OUT/logs.tgz. (Both changes were measured and removed after this call, and with
# them TTC_CUDA_MAMBA1_A, TTC_CUDA_STATE_ROUND and TTC_CUDA_STATE_BF16; the state's storage is now
# --state-dtype, see bf16_session.sh.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] (ssd|mamba1)" $L/session.log | head -40
  local G='*GoldenLogitsAndGreedyChain*'
  for r in nearest stochastic; do
    TTC_CUDA_STATE_BF16=1 TTC_CUDA_STATE_ROUND=$r timeout 60 build-dev/tests/cuda/cuda_test \
      --gtest_filter="$G" > $L/golden-bf16-$r.log 2>&1
    el "goldens, bf16 state $r"
    grep -E "^\[cuda\]|FAILED|PASSED|Failure" $L/golden-bf16-$r.log | cut -c1-160 | head -24
  done
  for cb in mambainllama-3b:64,512 mambainllama-1b:512; do
    bench arows TTC_CUDA_MAMBA1_A=rows ${cb%:*} ${cb#*:} 128
    bench acols TTC_NONE=1 ${cb%:*} ${cb#*:} 128
  done
  for cfg in llamba-1b mambainllama-3b llamba-3b; do
    bench bf16near "TTC_CUDA_STATE_BF16=1 TTC_CUDA_STATE_ROUND=nearest" $cfg 512 128
    bench bf16sr TTC_CUDA_STATE_BF16=1 $cfg 512 128
    bench f32 TTC_NONE=1 $cfg 512 128
  done
  san kernels memcheck 60 cuda_kernel_test 'CudaSsd.*:CudaMamba1.*:CudaStateRound.*'
  san kernels racecheck 60 cuda_kernel_test 'CudaSsd.*:CudaMamba1.*'
  TTC_CUDA_STATE_BF16=1 san family-bf16 memcheck 60 cuda_test '*BatchedDecodeEqualsSingle*'
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis"
  ncu_kernel $L/ncu-mil.log 60 Mamba1Scan 44 mambainllama-3b 512 6 $S; el "ncu mil"
  grep -E "^  [A-Za-z].*Kernel|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|L1/TEX Hit|L2 Hit|Stall|Warp Cycles Per Issued" $L/ncu-mil.log | cut -c1-150 | head -24
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
