#!/usr/bin/env bash
# Device call AQ (session 11, docs/perf/cuda.md): the causal conv step on float4 (four channels per
# thread, window in registers) and Llamba's gate applied by the SSD kernels as they write y (no
# kernel of its own). Builds this tree (CUDA tests: the new conv test, the gated SSD cases) and
# the tree before (.devbase: HEAD's kernels and backend), engine cells for both, one decode step
# per kernel, compute-sanitizer over the conv / SSD kernel tests and the families' batched decode,
# then (tests passing) the full table with the Hugging Face baseline. Logs: $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] (conv|ssd)" $L/cuda_kernel_test.log | head -16
  if grep -q FAILED $L/session.log; then
    for tool in memcheck racecheck; do san k $tool 120 cuda_kernel_test 'CudaConv.*:CudaSsd.*'; done
    return
  fi
  base_build engine_bench
  base_ab "" llamba-3b:256,512 llamba-1b:512 mambainllama-3b:512 mambainllama-1b:512
  STEP_LINES=8 step_kernels llamba3 llamba-3b 512
  STEP_LINES=8 step_kernels mil3 mambainllama-3b 512
  for tool in memcheck racecheck; do san k $tool 120 cuda_kernel_test 'CudaConv.*:CudaSsd.*:CudaMamba1.*'; done
  san fam memcheck 150 cuda_test '*BatchedDecodeEqualsSingle*'
  full_table
}
export -f main
timeout ${BUDGET:-560} bash -c main
tar czf $OUT/logs.tgz -C $L .
