#!/usr/bin/env bash
# Device call AA (session 8, docs/perf/cuda.md): the recurrent state's storage as a backend option
# (--state-dtype f32 | bf16; this call also had bf16-sr, stochastic rounding, removed after it). Builds this tree, runs the CUDA tests (among them the
# 256-step drift of a bf16 state against the f32 one for the four SSM families), compute-sanitizer
# memcheck over that test for two families, the table rows of the SSM models with a bf16 state
# (`--state-dtype bf16`, 512 steps) and the MambaInLlama rows with the f32 state (Mamba-1's A now
# read as [N][di], call Z). Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] .*bf16 state vs f32" $L/session.log
  for cfg in llamba-1b llamba-3b mambainllama-3b mambainllama-1b; do
    BENCH_ARGS="--state-dtype bf16" bench bf16 TTC_NONE=1 $cfg 1,16,64,256,512
  done
  for cfg in mambainllama-3b mambainllama-1b; do bench f32 TTC_NONE=1 $cfg 1,16,64,256,512; done
  BENCH_ARGS="--state-dtype bf16-sr" bench bf16sr TTC_NONE=1 llamba-1b 256,512
  san drift memcheck 90 cuda_test '*Bf16StateDrift*/1:*Bf16StateDrift*/2'
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
