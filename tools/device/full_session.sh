#!/usr/bin/env bash
# One device call for the CUDA engine (as run on 2026-12-03, docs/perf/cuda.md "call B"): build + cuda_test, the
# full benchmark table, the
# Hugging Face baseline in the same call, per-op profiles, cublasLt autotuning and bf16-state
# comparisons, compute-sanitizer. Logs under /tmp/logs -> $OUT/logs.tgz (also after a timeout).
set -u
L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=/tmp/ttc-deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L/steps.log; }
rows() { grep -E "^\s*[0-9]+ " "$1" | head -8; }
main() {
  OUT=$L timeout 200 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\]|FAILED|PASSED|Failure" $L/session.log | head -40
  TTC_CUDA_GEMM_TUNE=1 timeout 40 build-dev/tests/cuda/cuda_test --gtest_filter='*GoldenLogits*:*Batched*:*48Steps*' > $L/tune_test.log 2>&1
  el "cuda_test with GEMM tuning: $(grep -E 'PASSED|FAILED' $L/tune_test.log | tr '\n' ' ')"
  for cfg in llama-3.2-1b mambainllama-3b llama-3.2-3b llamba-1b mambainllama-1b llamba-3b; do
    OUT=$L BATCHES=1,16,64,256,512 timeout 75 tools/device/cuda_session.sh bench $cfg > /dev/null 2>&1; el "bench $cfg"
    rows $L/bench-$cfg.log
  done
  timeout 90 python3 tools/bench/hf_baseline.py --model llama-3.2-1b --batch 256 --json $L/hf.json > $L/hf.log 2>&1; el "hf"
  tail -1 $L/hf.log
  for cfg in llama-3.2-1b mambainllama-3b; do
    TTC_CUDA_GEMM_TUNE=1 build-dev/bench/engine_bench bench --config $cfg --backend cuda --batch 1,64,256,512 \
      --prompt-len 512 --gen-len 512 > $L/tune-$cfg.log 2>&1; el "bench tuned $cfg"; rows $L/tune-$cfg.log
  done
  OUT=$L BATCHES=256 GEN=64 timeout 30 tools/device/cuda_session.sh profile llama-3.2-1b > /dev/null 2>&1
  mv $L/profile.log $L/profile-llama1b.log; el "profile"; tail -12 $L/profile-llama1b.log
  OUT=$L BATCHES=512 GEN=64 timeout 40 tools/device/cuda_session.sh profile mambainllama-3b llamba-1b > /dev/null 2>&1
  el "profile"; grep -E "ms .*calls|^==|^ *512 " $L/profile.log | head -24
  OUT=$L timeout 80 tools/device/cuda_session.sh sanitize >> $L/session.log 2>&1; el "sanitize"
  grep -E "sanitizer" $L/session.log
  TTC_CUDA_STATE_BF16=1 build-dev/bench/engine_bench bench --config llamba-1b --backend cuda --batch 64,256,512 \
    --prompt-len 512 --gen-len 512 > $L/bf16state-llamba-1b.log 2>&1; el "bf16 state"; rows $L/bf16state-llamba-1b.log
}
export -f main el rows; export L T0
timeout ${BUDGET:-570} bash -c main
tar czf $OUT/logs.tgz -C $L .
