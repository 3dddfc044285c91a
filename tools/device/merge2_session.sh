#!/usr/bin/env bash
# Device call AK (session 10, docs/perf/cuda.md): two latency chains that call AJ's per-SASS-line
# stall samples found. (1) The own-range kernel's merge of the prefix partials now loads a chunk of
# 4 elements' prefix outputs before storing any output (16 % of head_dim 64's own-kernel samples
# waited on those loads one by one). (2) The prefix tile kernel issues all its Q loads before the
# first use (each sat under its own branch: ~25 % of its samples). Builds this tree (tests) and the
# tree before (.devbase: HEAD's kernels.cu), then the micro-benchmark and the engine cells for both,
# Nsight Compute (source page) of both kernels, and compute-sanitizer over the attention kernel
# test. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\].*cascade" $L/session.log | head -3
  base_build
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1
  for v in base:/tmp/base/build-dev new:build-dev; do
    timeout 60 ${v#*:}/bench/cuda_attention 256,512 > $L/attn-${v%%:*}.log 2>&1; el "cuda_attention ${v%%:*}"
    grep -E "^llama|^model" $L/attn-${v%%:*}.log
  done
  for c in llama-3.2-1b:256,512 llama-3.2-3b:256,512 mambainllama-3b:512 mambainllama-1b:512 llama-3.2-1b:64; do
    B=/tmp/base/build-dev/bench/engine_bench bench base TTC_NONE=1 ${c%%:*} ${c#*:}
    bench new TTC_NONE=1 ${c%%:*} ${c#*:}
  done
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SourceCounters --section LaunchStats"
  ncu_kernel $L/ncu-prefix.log 90 PrefixAttentionKernel $((28 * 4)) llama-3.2-3b 512 6 $S -o $L/prefix; el "ncu prefix"
  ncu_kernel $L/ncu-own64.log 120 AttentionMmaKernel $((16 * 256)) llama-3.2-1b 256 260 $S -o $L/own64; el "ncu own64"
  ncu_pages prefix own64
  for tool in memcheck racecheck; do san attn $tool 80 cuda_kernel_test 'CudaAttention.*'; done
}
export -f main
timeout ${BUDGET:-500} bash -c main
tar czf $OUT/logs.tgz -C $L .
