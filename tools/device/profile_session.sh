#!/usr/bin/env bash
# Short device call (docs/perf/cuda.md "call I"): build, then the per-op GPU profile
# (TTC_CUDA_PROFILE=1, graphs off, 64 steps) of the cells furthest from the roofline: Llamba-1B
# B=256, MambaInLlama-3B B=512, Llama-3.2-3B B=512. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  OUT=$L timeout 200 tools/device/cuda_session.sh setup > $L/session.log 2>&1; el "setup"
  for cb in llamba-1b:256 mambainllama-3b:512 llama-3.2-3b:512 llamba-3b:256; do
    BATCHES=${cb#*:} GEN=64 OUT=$L timeout 60 tools/device/cuda_session.sh profile ${cb%:*} > /dev/null 2>&1
    mv $L/profile.log $L/profile-${cb%:*}.log; el "profile $cb"; grep -A12 "cuda profile" $L/profile-${cb%:*}.log
  done
}
export -f main
timeout ${BUDGET:-400} bash -c main
tar czf $OUT/logs.tgz -C $L .
