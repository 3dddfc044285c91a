#!/usr/bin/env bash
# One device call for the CUDA engine (docs/perf/cuda.md "call I"): build + the CUDA tests (with the
# split-K matmul test), then split-K A/B in the same call (TTC_CUDA_SPLITK=1 off, auto, 2/4/8
# forced) at the target models, and per-op profiles of the cells furthest from the roofline.
# Logs under /tmp/logs -> $OUT/logs.tgz (also after a timeout).
source "$(dirname "$0")/call_lib.sh"
main() {
  OUT=$L timeout 220 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (matmul|llama|mamba|llamba|sampler fast)|FAILED|PASSED|Failure|error|abort" $L/session.log | head -40
  for k in 1 auto 2 4 8; do
    bench splitk$k TTC_CUDA_SPLITK=$k llama-3.2-1b 16,64,256,512 128
  done
  for k in 1 auto 2; do
    bench splitk$k TTC_CUDA_SPLITK=$k llama-3.2-3b 64,512 128
    bench splitk$k TTC_CUDA_SPLITK=$k mambainllama-3b 64,512 128
  done
  bench splitk1 TTC_CUDA_SPLITK=1 llamba-1b 256 128
  bench splitkauto TTC_CUDA_SPLITK=auto llamba-1b 256 128
  for cb in llamba-1b:256 mambainllama-3b:512; do
    BATCHES=${cb#*:} GEN=64 OUT=$L timeout 60 tools/device/cuda_session.sh profile ${cb%:*} > /dev/null 2>&1
    mv $L/profile.log $L/profile-${cb%:*}.log; el "profile $cb"; grep -A14 "cuda profile" $L/profile-${cb%:*}.log
  done
}
export -f main
timeout ${BUDGET:-480} bash -c main
tar czf $OUT/logs.tgz -C $L .
