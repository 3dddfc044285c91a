#!/usr/bin/env bash
# Device call AB (session 8, docs/perf/cuda.md): the cascade's own-range attention with its K/V
# tiles copied ahead by cp.async (AttentionMmaKernel<HD, 1, 1, PIPE>, PIPE = 2 or 3 stages).
# Builds this tree (+ cuda_attention), runs the CUDA tests (the attention kernel test covers
# mma-w1p; once more with 2 stages), the attention micro-benchmark and the engine A/B (512 steps)
# with TTC_OWN_KERNEL=w1 (before), 3 stages (default) and TTC_OWN_STAGES=2, the table rows of the
# attention models with the winner, the Llamba rows with --state-dtype bf16 (256, 512), and
# compute-sanitizer over the attention kernel test. Logs under /tmp/logs -> $OUT/logs.tgz. (The
# pipelined variant was 11-14 % slower and was removed after this call, with TTC_OWN_STAGES and
# TTC_OWN_KERNEL=w1.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] attention mma-w1p? head_dim (64|128) heads (32|24)/8 splits 1" $L/session.log | head -8
  grep -E "^\[cuda\] .*bf16 state vs f32" $L/session.log
  TTC_OWN_STAGES=2 timeout 60 build-dev/tests/cuda/cuda_kernel_test --gtest_filter='CudaAttention.*' > $L/kt-stages2.log 2>&1
  el "kernel test, 2 stages: $(grep -E 'PASSED|FAILED' $L/kt-stages2.log | tail -1)"
  grep -E "attention mma-w1p" $L/kt-stages2.log | awk "{print \$NF}" | sort -g | tail -1
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build cuda_attention rc $?"
  for v in "w1:TTC_OWN_KERNEL=w1" "p3:TTC_NONE=1" "p2:TTC_OWN_STAGES=2"; do
    env ${v#*:} timeout 40 build-dev/bench/cuda_attention 256,512 > $L/attn-${v%%:*}.log 2>&1
    el "cuda_attention ${v%%:*}"; grep -E "^llama|^model" $L/attn-${v%%:*}.log | head -14
  done
  for v in "w1:TTC_OWN_KERNEL=w1" "p3:TTC_NONE=1" "p2:TTC_OWN_STAGES=2"; do
    bench ${v%%:*} ${v#*:} llama-3.2-3b 512
    bench ${v%%:*} ${v#*:} llama-3.2-1b 256
  done
  local best=TTC_NONE=1 bt=$(ms_at $L/bench-p3-llama-3.2-3b.log 512)
  local t2=$(ms_at $L/bench-p2-llama-3.2-3b.log 512) t1=$(ms_at $L/bench-w1-llama-3.2-3b.log 512)
  awk -v a="$t2" -v b="$bt" 'BEGIN {exit !(a < b)}' && { best=TTC_OWN_STAGES=2; bt=$t2; }
  awk -v a="$t1" -v b="$bt" 'BEGIN {exit !(a < b)}' && best=TTC_OWN_KERNEL=w1
  el "table with $best"
  for cfg in llama-3.2-1b llama-3.2-3b mambainllama-3b mambainllama-1b; do bench table $best $cfg 1,16,64,256,512; done
  for cfg in llamba-1b llamba-3b; do BENCH_ARGS="--state-dtype bf16" bench bf16 TTC_NONE=1 $cfg 256,512; done
  for tool in memcheck racecheck; do san attn $tool 70 cuda_kernel_test 'CudaAttention.*'; done
}
export -f main
timeout ${BUDGET:-560} bash -c main
tar czf $OUT/logs.tgz -C $L .
