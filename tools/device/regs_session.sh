#!/usr/bin/env bash
# Device call O (session 5, docs/perf/cuda.md): the mma attention held to 3 blocks per SM at head_dim
# 128 (launch bounds). Builds, runs the CUDA tests, and the table rows of the three models with
# attention layers whose cells moved between calls K and N. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | cut -c1-160 | head -50
  grep -E "^\[cuda\] attention" $L/session.log | awk '{print $NF}' | sort -g | tail -1 | sed 's/^/worst attention kernel error: /'
  for cfg in llama-3.2-3b llama-3.2-1b mambainllama-3b; do
    bench table TTC_NONE=1 $cfg 1,16,64,256,512
  done
}
export -f main
timeout ${BUDGET:-330} bash -c main
tar czf $OUT/logs.tgz -C $L .
