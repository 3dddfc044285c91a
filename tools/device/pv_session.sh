#!/usr/bin/env bash
# Device call AE (session 9, docs/perf/cuda.md): the mma attention's P.V as O^T += V^T P^T (V as the
# A operand, the probabilities as B columns: half the accumulator registers), optionally with the
# Q fragments in shared memory (TTC_ATTN_PV: 0 = before, 1 = V as A, 2 = + Q in shared memory at
# 18 one-warp blocks per SM, 3 = + Q in shared memory at 16). Builds this tree (+ cuda_attention),
# runs the CUDA tests (default variant), the attention kernel test under each variant, the
# micro-benchmark and the engine A/B (512 steps) of the attention models, and compute-sanitizer
# over the attention kernel test. Logs under /tmp/logs -> $OUT/logs.tgz. (TTC_ATTN_PV was removed
# after call AF: variant 3 for head_dim 128, 1 for the other four-warp kernels, 0 for the rest.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] attention mma(-w1)? head_dim (64|128) heads (32|24)/8 splits 1" $L/session.log | head -6
  for pv in 0 2 3; do
    TTC_ATTN_PV=$pv timeout 60 build-dev/tests/cuda/cuda_kernel_test --gtest_filter='CudaAttention.*' > $L/kt-pv$pv.log 2>&1
    el "kernel test PV=$pv: $(grep -E 'PASSED|FAILED' $L/kt-pv$pv.log | tail -1)"
  done
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build cuda_attention rc $?"
  for pv in 0 1 2 3; do
    TTC_ATTN_PV=$pv timeout 40 build-dev/bench/cuda_attention 256,512 > $L/attn-pv$pv.log 2>&1
    el "cuda_attention PV=$pv"; grep -E "^llama|^model" $L/attn-pv$pv.log | head -14
  done
  for pv in 0 1 2 3; do
    bench pv$pv TTC_ATTN_PV=$pv llama-3.2-3b 512
    bench pv$pv TTC_ATTN_PV=$pv llama-3.2-1b 256
    bench pv$pv TTC_ATTN_PV=$pv mambainllama-3b 512
  done
  san attn memcheck 70 cuda_kernel_test 'CudaAttention.*'
}
export -f main
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
