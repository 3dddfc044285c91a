#!/usr/bin/env bash
# Device call S (session 6, docs/perf/cuda.md): the cascade's own ranges on one-warp blocks. Builds
# this tree, runs the CUDA tests, the attention micro-benchmark and an engine A/B of the own-range
# kernel (TTC_OWN_KERNEL=w4 vs the default), the full table of the six configurations with the
# defaults, the Hugging Face baseline, per-op GPU times and compute-sanitizer over the attention
# kernels. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | grep -v "greedy ids\|golden\|graphs" | cut -c1-150 | head -40
  grep -E "prefix|mma-w1" $L/cuda_kernel_test.log | awk '{print $NF}' | sort -g | tail -1 | sed 's/^/worst prefix or w1 kernel error /'
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1
  for k in w4 w1; do
    TTC_OWN_KERNEL=$k timeout 60 build-dev/bench/cuda_attention 64,256,512 > $L/attn-$k.log 2>&1; el "cuda_attention own=$k"
    awk '{print $1, $2, $3, $4, $5}' $L/attn-$k.log
  done
  bench w4 TTC_OWN_KERNEL=w4 llama-3.2-3b 256,512 128
  bench w1 TTC_NONE=1 llama-3.2-3b 256,512 128
  full_table
  for cb in llama-3.2-1b:256 llama-3.2-3b:512; do
    TTC_CUDA_PROFILE=1 timeout 60 $B bench --config ${cb%:*} --backend cuda --batch ${cb#*:} --prompt-len 512 \
      --gen-len 64 > $L/prof-${cb%:*}.log 2>&1; el "profile $cb"
  done
  for tool in memcheck racecheck; do san kernels $tool 60 cuda_kernel_test 'CudaAttention.*'; done
}
export -f main
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
