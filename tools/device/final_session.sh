#!/usr/bin/env bash
# One device call for the CUDA engine (docs/perf/cuda.md "call E"): build + the CUDA tests, the
# small-batch GEMV row-count sweep (cuBLAS path vs GEMV at 1-16 rows), the issue's target cells
# first (Llama-3.2-1B, Llama-3.2-3B, MambaInLlama-3B at batch 1-512), the Hugging Face baseline in
# the same call, cublasLt tuning with split-K candidates against the default, the other three
# configurations, and a per-op profile. Logs under /tmp/logs -> $OUT/logs.tgz (also after a timeout).
source "$(dirname "$0")/call_lib.sh"
main() {
  OUT=$L timeout 200 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\]|FAILED|PASSED|Failure|error" $L/session.log | grep -v "attention \(lanes\|warp\|mma-\)" | head -40
  bench cublas TTC_CUDA_GEMV_ROWS=0 llama-3.2-1b 1,2,4,8,16 128
  bench gemv16 TTC_CUDA_GEMV_ROWS=16 llama-3.2-1b 1,2,4,8,16 128
  bench default TTC_NONE=1 llama-3.2-1b 1,16,64,256,512
  bench default TTC_NONE=1 llama-3.2-3b 1,16,64,256,512
  bench default TTC_NONE=1 mambainllama-3b 1,16,64,256,512
  timeout 100 python3 tools/bench/hf_baseline.py --model llama-3.2-1b --batch 256 --json $L/hf.json > $L/hf.log 2>&1
  el "hf"; tail -2 $L/hf.log
  bench tuned TTC_CUDA_GEMM_TUNE=1 llama-3.2-1b 256
  bench tuned TTC_CUDA_GEMM_TUNE=1 llama-3.2-3b 512
  bench tuned TTC_CUDA_GEMM_TUNE=1 mambainllama-3b 512
  bench default TTC_NONE=1 mambainllama-1b 1,16,64,256,512
  bench default TTC_NONE=1 llamba-1b 1,16,64,256,512
  bench default TTC_NONE=1 llamba-3b 1,16,64,256,512
  BATCHES=256 GEN=64 OUT=$L timeout 40 tools/device/cuda_session.sh profile llama-3.2-1b > /dev/null 2>&1
  mv $L/profile.log $L/profile-llama1b.log; el "profile"; tail -12 $L/profile-llama1b.log
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
