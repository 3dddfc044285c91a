#!/usr/bin/env bash
# Device call P (session 5, docs/perf/cuda.md): the pipelined decode loop (no host sync between
# steps). Builds, runs the CUDA tests (new: PipelinedGenerateEqualsStepByStep), then the same
# binary's bench with --pipeline off vs on (128 steps). Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
pbench() {  # label pipeline config batches
  timeout 100 $B bench --config $3 --backend cuda --batch $4 --prompt-len 512 --gen-len 128 \
    --pipeline $2 --json $L/bench-$1-$3.json > $L/bench-$1-$3.log 2>&1
  el "bench $1 $3 B=$4 gen 128"; rows $L/bench-$1-$3.log
}
export -f pbench
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | cut -c1-150 | head -50
  for cb in llama-3.2-1b:1,16,64,256 llamba-1b:1,64,256 mambainllama-3b:16,256; do
    local cfg=${cb%:*} bs=${cb#*:}
    pbench off off $cfg $bs
    pbench on on $cfg $bs
  done
}
export -f main
timeout ${BUDGET:-330} bash -c main
tar czf $OUT/logs.tgz -C $L .
