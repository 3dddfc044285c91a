#!/usr/bin/env bash
# Device call L (session 5, docs/perf/cuda.md): the shared-prefix cascade attention. Builds this tree,
# runs the CUDA tests (new: the cascade runs of the attention kernel test, CascadeAttentionEqualsPerRowWalk),
# compute-sanitizer memcheck + racecheck over the attention kernel test and one family's cascade test,
# the A/B of the same binary with TTC_CUDA_CASCADE=0 (128 steps) and the table rows of the models with
# attention layers. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\]|FAILED|PASSED|Failure|error|abort" $L/session.log | grep -v "^\[cuda\] attention" | head -60
  grep -E "^\[cuda\] attention" $L/session.log | sort -k6 -g -r -t' ' | head -5
  for tool in memcheck racecheck; do
    san attn $tool 100 cuda_kernel_test 'CudaAttention.*'
    san family $tool 60 cuda_test '*/CudaFamily.CascadeAttentionEqualsPerRowWalk/0'
  done
  for cb in llama-3.2-1b:16,64,256,512 llama-3.2-3b:64,256,512 mambainllama-3b:256,512; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench off TTC_CUDA_CASCADE=0 $cfg $bs 128
    bench on TTC_NONE=1 $cfg $bs 128
  done
  for cfg in llama-3.2-1b llama-3.2-3b mambainllama-3b mambainllama-1b; do
    bench table TTC_NONE=1 $cfg 1,16,64,256,512
  done
}
export -f main
timeout ${BUDGET:-470} bash -c main
tar czf $OUT/logs.tgz -C $L .
