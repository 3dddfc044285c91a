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
  for pv in 0 2 3; do kernel_test pv$pv TTC_ATTN_PV=$pv; done
  attn_micro 256,512 pv0:TTC_ATTN_PV=0 pv1:TTC_ATTN_PV=1 pv2:TTC_ATTN_PV=2 pv3:TTC_ATTN_PV=3
  bench_ab "llama-3.2-3b:512 llama-3.2-1b:256 mambainllama-3b:512" pv0:TTC_ATTN_PV=0 pv1:TTC_ATTN_PV=1 \
    pv2:TTC_ATTN_PV=2 pv3:TTC_ATTN_PV=3
  san attn memcheck 70 cuda_kernel_test 'CudaAttention.*'
}
export -f main
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
