#!/usr/bin/env bash
# Device script for the changes prepared in session 12 without a GPU (no device was lent that
# session; docs/perf/cuda.md, "session 12"): (1) the sampler's cluster kernel, which reads each
# logits row once from a cluster's shared memory (TTC_CUDA_SAMPLE_CLUSTER=0: the one-block kernel),
# and (2) RmsNormMatMul / SwiGluMatMul, whose producers skip the f32 copy of a bf16 GEMM's input.
# Builds this tree and runs the CUDA tests (the kernel test compares the cluster, one-block and
# general sampler paths id for id; the goldens cover the fused ops), then the sampler A/B by its
# switch, the f32-skip A/B against a base build whose .devbase/ holds main's engine/model.cc,
# engine/backend.h and engine/cuda/cuda_backend.cc (so the base has (1) but not (2)), one
# MambaInLlama-3B decode step per kernel, compute-sanitizer over the sampler kernels, and the
# table with FULL=1. Logs: $OUT/logs.tgz. Prepare .devbase before the call:
#   for f in engine/model.cc engine/backend.h engine/cuda/cuda_backend.cc; do
#     mkdir -p .devbase/$(dirname $f) && git show main:$f > .devbase/$f; done
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] sampler fast paths" $L/cuda_kernel_test.log | head -8
  for tool in memcheck racecheck; do
    san sampler $tool 120 cuda_kernel_test 'CudaSamplerKernel.*'
  done
  bench_ab "llama-3.2-1b:256 mambainllama-3b:512 llama-3.2-1b:64" \
    block:TTC_CUDA_SAMPLE_CLUSTER=0 cluster:TTC_NONE=1
  base_build engine_bench
  base_ab skip llama-3.2-1b:256 mambainllama-3b:512 llama-3.2-3b:512
  STEP_LINES=12 step_kernels mil3 mambainllama-3b 512
  san fam memcheck 150 cuda_test '*BatchedDecodeEqualsSingle*'
  [ "${FULL:-0}" = 1 ] && full_table  # ~200 s: a second call (FULL=1) if the first runs long
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
