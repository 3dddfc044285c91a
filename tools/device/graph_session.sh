#!/usr/bin/env bash
# One device call for the CUDA engine (docs/perf/cuda.md "call G"): build + the CUDA tests (with the
# graph-replay-vs-eager test), memcheck over that test, then decode with and without CUDA graphs
# in the same call (TTC_CUDA_GRAPHS=0 is the eager baseline), short runs at every batch of the
# three target models, then the full 512-step cells. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  OUT=$L timeout 220 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\]|FAILED|PASSED|Failure|error|abort" $L/session.log | grep -v "attention \(lanes\|warp\|mma-\)" | head -40
  SAN_TOOLS=memcheck SAN_FILTER='*GraphReplayEqualsEager*/0:*GraphReplayEqualsEager*/2' OUT=$L \
    timeout 90 tools/device/cuda_session.sh sanitize > $L/sanitize.log 2>&1; el "memcheck"; head -4 $L/sanitize.log
  bench eager TTC_CUDA_GRAPHS=0 llama-3.2-1b 1,16,64,256 128
  bench graphs TTC_NONE=1 llama-3.2-1b 1,16,64,256 128
  bench eager TTC_CUDA_GRAPHS=0 llamba-1b 1,64,256 128
  bench graphs TTC_NONE=1 llamba-1b 1,64,256 128
  bench graphs TTC_NONE=1 llama-3.2-1b 1,16,64,256,512
  bench graphs TTC_NONE=1 llama-3.2-3b 64,256,512
  bench graphs TTC_NONE=1 mambainllama-3b 64,256,512
}
export -f main
timeout ${BUDGET:-560} bash -c main
tar czf $OUT/logs.tgz -C $L .
