#!/usr/bin/env bash
# Device call AM (session 10, docs/perf/cuda.md): (1) the streaming Mamba-1 decode kernel with
# 16-byte chunks per thread (consecutive threads, consecutive chunks: no bank conflicts in shared
# memory, whole-sector state stores; call AL had the L2 at 78 % with one thread per channel), and
# (2) the prefix tile kernel's copy loop unrolled with per-thread fixed offsets. Builds this tree
# (tests) and the tree before (.devbase: HEAD's kernels.cu), the micro-benchmark and engine cells
# for both, Nsight Compute of the two kernels in both builds, compute-sanitizer over the Mamba-1
# and attention kernel tests. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] mamba1" $L/cuda_kernel_test.log | head -8
  grep -E "^\[cuda\] attention" $L/cuda_kernel_test.log | awk '{print $NF}' | sort -g | tail -1
  base_build
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1
  for v in base:/tmp/base/build-dev new:build-dev; do
    timeout 60 ${v#*:}/bench/cuda_attention 256,512 > $L/attn-${v%%:*}.log 2>&1; el "cuda_attention ${v%%:*}"
    grep -E "^llama|^model" $L/attn-${v%%:*}.log | awk '$3 == 1 || $3 == 256 || $1 == "model"'
  done
  for c in mambainllama-3b:256,512 mambainllama-1b:256,512 llama-3.2-3b:512 llama-3.2-1b:256; do
    B=/tmp/base/build-dev/bench/engine_bench bench base TTC_NONE=1 ${c%%:*} ${c#*:}
    bench new TTC_NONE=1 ${c%%:*} ${c#*:}
  done
  BENCH_ARGS="--state-dtype bf16" B=/tmp/base/build-dev/bench/engine_bench bench base16 TTC_NONE=1 mambainllama-3b 512
  BENCH_ARGS="--state-dtype bf16" bench new16 TTC_NONE=1 mambainllama-3b 512
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats"
  for v in base:/tmp/base/build-dev/bench/engine_bench new:$B; do
    B=${v#*:} ncu_kernel $L/ncu-m1-${v%%:*}.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S
    B=${v#*:} ncu_kernel $L/ncu-prefix-${v%%:*}.log 60 PrefixAttentionKernel $((28 * 4)) llama-3.2-3b 512 6 $S
    el "ncu ${v%%:*}"
    for k in m1 prefix; do echo "$k ${v%%:*}: $(grep -E 'Duration|DRAM Throughput|L2 Cache Throughput|Registers Per' $L/ncu-$k-${v%%:*}.log | awk '{print $1, $NF}' | tr '\n' ' ')"; done
  done
  for tool in memcheck racecheck; do san k $tool 120 cuda_kernel_test 'CudaMamba1.*:CudaAttention.*'; done
}
export -f main
timeout ${BUDGET:-520} bash -c main
tar czf $OUT/logs.tgz -C $L .
