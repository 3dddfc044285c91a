#!/usr/bin/env bash
# Device call U (session 7, docs/perf/cuda.md): the backend's own decode-shaped GEMM
# (engine/cuda/gemm_kernels.cu). Builds this tree, runs the CUDA tests (the first GPU run of
# session 6's last commits too), compute-sanitizer over the GEMM and attention kernels and one
# decode of each family, cuda_gemm_bench (cuBLAS against the own GEMM at every split count), and
# the engine A/B TTC_CUDA_GEMM=cublas against the default at 128 steps. Logs under /tmp/logs ->
# $OUT/logs.tgz. (The own GEMM, LaunchGemm and TTC_CUDA_GEMM were removed after this call: rerun now,
# "own" equals "cublas" and cuda_gemm_bench times cuBLAS only.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 240
  grep -E "^\[cuda\] gemm" $L/cuda_kernel_test.log | awk '{print $NF}' | sort -g | tail -1 | sed 's/^/worst gemm error /'
  grep -cE "^\[cuda\] gemm" $L/cuda_kernel_test.log | sed 's/^/gemm cases /'
  grep -E "^\[cuda\] gemv" $L/cuda_kernel_test.log | head -8
  cmake --build build-dev -j 16 --target cuda_gemm_bench > $L/build-gemm.log 2>&1 || grep -m5 -A5 error $L/build-gemm.log
  timeout 90 build-dev/bench/cuda_gemm_bench 32,64,128,256,512 > $L/gemm.log 2>&1; el "gemm bench rc $?"
  cat $L/gemm.log
  for tool in memcheck racecheck; do san gemm $tool 60 cuda_kernel_test 'CudaGemm.*'; done
  san kernels memcheck 60 cuda_kernel_test 'CudaAttention.*'
  san family memcheck 90 cuda_test '*BatchedDecodeEqualsSingle*'
  for cb in llama-3.2-1b:64,256,512 llama-3.2-3b:64,256,512 mambainllama-3b:64,512 llamba-1b:256; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench cublas TTC_CUDA_GEMM=cublas $cfg $bs 128
    bench own TTC_NONE=1 $cfg $bs 128
  done
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
