#!/usr/bin/env bash
# Last device call of session 5 (docs/perf/cuda.md "call N"): builds this tree, runs the CUDA tests
# (kernel tests, golden parity, graphs, the opt-in cascade), the full table of the six
# configurations with the defaults and the Hugging Face baseline in the same call. Logs under
# /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | cut -c1-160 | head -50
  full_table
}
export -f main
timeout ${BUDGET:-480} bash -c main
tar czf $OUT/logs.tgz -C $L .
