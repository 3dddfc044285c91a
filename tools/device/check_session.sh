#!/usr/bin/env bash
# Short device call (docs/perf/cuda.md "call F"): build + the CUDA tests at the final commit and one
# short benchmark line per GEMM path (Llama-1B, 128 steps). Logs under /tmp/logs -> $OUT/logs.tgz.
set -u
L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=/tmp/ttc-deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
OUT=$L timeout 150 tools/device/cuda_session.sh setup test > $L/session.log 2>&1
grep -E "FAILED|PASSED|Failure|batched vs single|gemv M" $L/session.log | head -30
timeout 40 build-dev/bench/engine_bench bench --config llama-3.2-1b --backend cuda --batch 1,3,4,16,256 \
  --prompt-len 512 --gen-len 128 > $L/bench.log 2>&1; grep -E "^\s*[0-9]+ " $L/bench.log
tar czf $OUT/logs.tgz -C $L .
