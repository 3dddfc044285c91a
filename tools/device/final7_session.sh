#!/usr/bin/env bash
# Device call T (session 6, docs/perf/cuda.md): the prefix kernel with Q's fragments in shared
# memory (3-4 blocks per SM) and float4 RMSNorm / SwiGLU. Builds this tree, runs the CUDA tests,
# compute-sanitizer over the attention kernels, the attention micro-benchmark (default vs
# TTC_PREFIX_KERNEL=regq), the engine A/B of both changes (128 steps), the full table and the Hugging
# Face baseline. Logs under /tmp/logs -> $OUT/logs.tgz. (The shared-memory-Q variant and with it
# TTC_PREFIX_KERNEL were removed after this call: rerun now, the "regq" rows equal "new".)
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | grep -v "greedy ids\|golden\|graphs\|pipelined" | cut -c1-150 | head -40
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2): max" $L/session.log | cut -c1-150
  grep -E "prefix|mma-w1" $L/cuda_kernel_test.log | awk '{print $NF}' | sort -g | tail -1 | sed 's/^/worst prefix or w1 kernel error /'
  for tool in memcheck racecheck; do san kernels $tool 60 cuda_kernel_test 'CudaAttention.*'; done
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1
  for k in regq default; do
    TTC_PREFIX_KERNEL=$k timeout 60 build-dev/bench/cuda_attention 64,256,512 > $L/attn-$k.log 2>&1; el "cuda_attention prefix=$k"
    awk '{print $1, $2, $3, $4, $5}' $L/attn-$k.log
  done
  for cb in llama-3.2-1b:256,512 llama-3.2-3b:256,512 mambainllama-3b:512; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench scalar TTC_CUDA_SCALAR_ELEMENTWISE=1 $cfg $bs 128
    bench regq TTC_PREFIX_KERNEL=regq $cfg $bs 128
    bench new TTC_NONE=1 $cfg $bs 128
  done
  full_table
}
export -f main
timeout ${BUDGET:-470} bash -c main
tar czf $OUT/logs.tgz -C $L .
