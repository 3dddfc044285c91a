#!/usr/bin/env bash
# Device call W (session 7, docs/perf/cuda.md): three latency fixes, each with an A/B switch in the
# same binary (128 steps): the SSD register kernel's block size (TTC_CUDA_SSD_THREADS=256 = call V),
# Mamba-1 with two channels per thread (TTC_CUDA_MAMBA1_PAIRS=0 = before) and the sampler's float4
# argmax pass (TTC_CUDA_SAMPLE_SCALAR=1 = before). Then the CUDA tests, compute-sanitizer over the
# SSD, sampler and family tests, profiles, the full table and the Hugging Face baseline. Logs under
# /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 240
  grep -E "^\[cuda\] sampler" $L/session.log | cut -c1-150
  grep -E "^\[cuda\] ssd" $L/cuda_kernel_test.log
  for tool in memcheck racecheck; do san kernels $tool 60 cuda_kernel_test 'CudaSsd.*:CudaSamplerKernel.*'; done
  san family memcheck 90 cuda_test '*BatchedDecodeEqualsSingle*:CudaSampler.ManyRowsOneDrawEach'
  for cb in llamba-1b:256,512 llamba-3b:512; do
    bench ssd256 TTC_CUDA_SSD_THREADS=256 ${cb%:*} ${cb#*:} 128
    bench new TTC_NONE=1 ${cb%:*} ${cb#*:} 128
  done
  for cb in mambainllama-3b:64,512 mambainllama-1b:512; do
    bench single TTC_CUDA_MAMBA1_PAIRS=0 ${cb%:*} ${cb#*:} 128
    bench new TTC_NONE=1 ${cb%:*} ${cb#*:} 128
  done
  bench scalar TTC_CUDA_SAMPLE_SCALAR=1 llama-3.2-1b 256,512 128
  bench new TTC_NONE=1 llama-3.2-1b 256,512 128
  for cb in llama-3.2-1b:256 mambainllama-3b:512 llamba-1b:256; do
    TTC_CUDA_PROFILE=1 timeout 60 $B bench --config ${cb%:*} --backend cuda --batch ${cb#*:} --prompt-len 512 \
      --gen-len 64 > $L/prof-${cb%:*}.log 2>&1; el "profile $cb"
    grep -A8 "cuda profile" $L/prof-${cb%:*}.log
  done
  full_table
}
export -f main
timeout ${BUDGET:-560} bash -c main
tar czf $OUT/logs.tgz -C $L .
