#!/usr/bin/env bash
# One device call for the tensor-core decode attention and the small-batch GEMV, as run at commit
# 75c05fa (docs/perf/cuda.md "call D"; later commits renamed the knobs: TTC_CUDA_GEMV=0 is now
# TTC_CUDA_GEMV_ROWS=0, mma-ns1 is now the default mma): build + the CUDA tests, the benchmark with
# the previous kernels (TTC_ATTN_KERNEL=lanes, TTC_CUDA_GEMV=0) and the new ones in the same call,
# the table cells of the issue's targets, cuBLAS alone at the decode shapes, per-op profiles, and
# compute-sanitizer over the kernel tests and the SSM families. Logs under /tmp/logs ->
# $OUT/logs.tgz (also after a timeout).
source "$(dirname "$0")/call_lib.sh"
BENCH_TIMEOUT=90; export BENCH_TIMEOUT
main() {
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\]|FAILED|PASSED|Failure|error" $L/session.log | head -60
  bench lanes "TTC_ATTN_KERNEL=lanes TTC_CUDA_GEMV=0" llama-3.2-1b 1,16,64,256
  bench nogemv "TTC_ATTN_KERNEL=mma TTC_CUDA_GEMV=0" llama-3.2-1b 1,16
  timeout 120 cmake --build build-dev -j 16 --target cuda_gemm_bench > $L/build-gemm.log 2>&1
  timeout 60 build-dev/bench/cuda_gemm_bench 64,256,512 > $L/gemm.log 2>&1; el "gemm bench"; cat $L/gemm.log
  bench mma TTC_ATTN_KERNEL=mma llama-3.2-1b 1,16,64,256,512
  bench mma-ns1 TTC_ATTN_KERNEL=mma-ns1 llama-3.2-1b 256
  bench mma-w8 TTC_ATTN_KERNEL=mma-w8 llama-3.2-1b 256
  bench mma TTC_ATTN_KERNEL=mma llama-3.2-3b 1,16,64,256,512
  bench mma-w8 TTC_ATTN_KERNEL=mma-w8 llama-3.2-3b 512
  bench mma TTC_ATTN_KERNEL=mma mambainllama-3b 1,16,64,256,512
  bench mma TTC_ATTN_KERNEL=mma mambainllama-1b 64,256,512
  BATCHES=256 GEN=64 OUT=$L timeout 40 tools/device/cuda_session.sh profile llama-3.2-1b > /dev/null 2>&1
  mv $L/profile.log $L/profile-llama1b.log; el "profile"; tail -14 $L/profile-llama1b.log
  BATCHES=512 GEN=64 OUT=$L timeout 40 tools/device/cuda_session.sh profile mambainllama-3b > /dev/null 2>&1
  mv $L/profile.log $L/profile-mil3b.log; el "profile"; tail -14 $L/profile-mil3b.log
  for tool in memcheck racecheck; do
    timeout 60 compute-sanitizer --tool $tool --error-exitcode 3 build-dev/tests/cuda/cuda_kernel_test > $L/san-$tool-kernels.log 2>&1
    el "sanitizer $tool attention kernels: exit $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $L/san-$tool-kernels.log | tail -1)"
  done
  # racecheck of the families the last session's budget cut (llamba, mamba, mamba2) and the sampler.
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 3 build-dev/tests/cuda/cuda_test \
    --gtest_filter='*BatchedDecodeEqualsSingle/2:*BatchedDecodeEqualsSingle/3:*BatchedDecodeEqualsSingle/4:CudaSampler.ManyRowsOneDrawEach' > $L/san-racecheck-ssm.log 2>&1
  el "racecheck llamba/mamba/mamba2/sampler: exit $? $(grep -E 'RACECHECK SUMMARY|PASSED|FAILED' $L/san-racecheck-ssm.log | tr '\n' ' ')"
}
export -f main
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
