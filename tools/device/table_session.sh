#!/usr/bin/env bash
# One device call for the CUDA engine (docs/perf/cuda.md "call H"): build + the CUDA tests, then in
# the same call an A/B of this session's changes at the target cells (each switched off alone, and
# all off: TTC_CUDA_GRAPHS=0, TTC_CUDA_SAMPLE_FULL=1, TTC_CUDA_FUSED_INPUT=0), the full table of the
# six configurations (prompt 512, gen 512), and the Hugging Face baseline for Llama-3.2-1B B=256.
# Logs under /tmp/logs -> $OUT/logs.tgz (also after a timeout).
source "$(dirname "$0")/call_lib.sh"
main() {
  OUT=$L timeout 220 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\]|FAILED|PASSED|Failure|error|abort" $L/session.log | grep -v "attention \(lanes\|warp\|mma-\)" | head -50
  local OFF="TTC_CUDA_GRAPHS=0 TTC_CUDA_SAMPLE_FULL=1 TTC_CUDA_FUSED_INPUT=0"
  bench alloff "$OFF" llama-3.2-1b 16,64,256 128
  bench nographs TTC_CUDA_GRAPHS=0 llama-3.2-1b 16,64,256 128
  bench fullsample TTC_CUDA_SAMPLE_FULL=1 llama-3.2-1b 16,64,256 128
  bench nofused TTC_CUDA_FUSED_INPUT=0 llama-3.2-1b 16,64,256 128
  bench all TTC_NONE=1 llama-3.2-1b 16,64,256 128
  bench alloff "$OFF" mambainllama-3b 512 128
  bench all TTC_NONE=1 mambainllama-3b 512 128
  for cfg in llama-3.2-1b llama-3.2-3b mambainllama-3b mambainllama-1b llamba-1b llamba-3b; do
    bench table TTC_NONE=1 $cfg 1,16,64,256,512
  done
  timeout 100 python3 tools/bench/hf_baseline.py --model llama-3.2-1b --batch 256 --json $L/hf.json > $L/hf.log 2>&1
  el "hf"; tail -2 $L/hf.log
  BATCHES=256 GEN=64 OUT=$L timeout 40 tools/device/cuda_session.sh profile llama-3.2-1b > /dev/null 2>&1
  mv $L/profile.log $L/profile-llama1b.log; el "profile"; tail -12 $L/profile-llama1b.log
}
export -f main
timeout ${BUDGET:-580} bash -c main
tar czf $OUT/logs.tgz -C $L .
