#!/usr/bin/env bash
# Device call Q (session 6, docs/perf/cuda.md): the shared-prefix attention as a tile kernel (64
# query heads per block, K/V tiles in shared memory). Builds this tree, runs the CUDA tests (kernel
# test with the cascade, the family tests; also the first GPU run of session 5's last commits), the
# attention micro-benchmark (per-row walk vs cascade), the engine A/B (TTC_CUDA_CASCADE=0 vs 1,
# 128 steps) and compute-sanitizer over the cascade tests. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (attention mma\+prefix|attention mma |llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | cut -c1-150 | head -70
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build attention bench rc $?"
  timeout 60 build-dev/bench/cuda_attention 64,256,512 > $L/attn.log 2>&1; el "cuda_attention"; cat $L/attn.log | head -40
  for cb in llama-3.2-1b:64,256,512 llama-3.2-3b:256,512 mambainllama-3b:256,512; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench off TTC_CUDA_CASCADE=0 $cfg $bs 128
    bench on TTC_CUDA_CASCADE=1 $cfg $bs 128
  done
  for tool in memcheck racecheck; do
    san kernels $tool 120 cuda_kernel_test 'CudaAttention.*'
    san family $tool 120 cuda_test '*Cascade*'
  done
}
export -f main
timeout ${BUDGET:-560} bash -c main
tar czf $OUT/logs.tgz -C $L .
