#!/usr/bin/env bash
# Device call AR (session 11, docs/perf/cuda.md): the session's final kernels. Llamba's gate back
# as a kernel of its own, now on float4 (applying it inside the SSD kernel lost in call AQ), with
# the float4 conv step of call AQ. Builds this tree and runs the CUDA tests (the new gate test),
# the Llamba rows of the table, one Llamba-3B decode step per kernel, compute-sanitizer over the
# conv / gate / SSD / Mamba-1 kernel tests and the families' batched decode. Logs: $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] (conv|llamba gate)" $L/cuda_kernel_test.log | head -8
  for cfg in llamba-1b llamba-3b; do bench table TTC_NONE=1 $cfg 1,16,64,256,512; done
  bench table TTC_NONE=1 mambainllama-3b 512
  STEP_LINES=8 step_kernels llamba3 llamba-3b 512
  for tool in memcheck racecheck; do
    san k $tool 120 cuda_kernel_test 'CudaConv.*:CudaLlambaGate.*:CudaSsd.*:CudaMamba1.*'
  done
  san fam memcheck 150 cuda_test '*BatchedDecodeEqualsSingle*'
}
export -f main
timeout ${BUDGET:-300} bash -c main
tar czf $OUT/logs.tgz -C $L .
