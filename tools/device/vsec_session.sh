#!/usr/bin/env bash
# Device call AD (session 8, docs/perf/cuda.md): head_dim 128's V operand read in whole sectors
# (VDim: lane group g holds dimensions 8g + [0, 8) and 64 + 8g + [0, 8); call AC's Nsight Compute
# found 32 % of the own-range kernel's sectors excessive). Builds this tree (+ cuda_attention),
# runs the CUDA tests, compute-sanitizer memcheck over the attention kernel test, the micro-benchmark
# and the engine A/B against TTC_ATTN_V=split (before) over the full batch rows (512 steps) of the
# head_dim-128 models, and Nsight Compute on the own-range kernel. Logs under /tmp/logs ->
# $OUT/logs.tgz. (TTC_ATTN_V was removed after this call; the whole-sector map is the only one.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] attention mma(-w1)? head_dim 128" $L/session.log | head -8
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build cuda_attention rc $?"
  for v in "split:TTC_ATTN_V=split" "sec:TTC_NONE=1"; do
    env ${v#*:} timeout 40 build-dev/bench/cuda_attention 256,512 > $L/attn-${v%%:*}.log 2>&1
    el "cuda_attention ${v%%:*}"; grep -E "^llama-3b|^model" $L/attn-${v%%:*}.log
  done
  for cfg in llama-3.2-3b mambainllama-3b; do
    bench split TTC_ATTN_V=split $cfg 1,16,64,256,512
    bench sec TTC_NONE=1 $cfg 1,16,64,256,512
  done
  san attn memcheck 60 cuda_kernel_test 'CudaAttention.*'
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section SourceCounters"
  ncu_kernel $L/ncu-own.log 100 AttentionMmaKernel $((28 * 256)) llama-3.2-3b 512 260 $S; el "ncu own-range attention"
  grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|L1/TEX Hit|Warp Cycles Per Issued|excessive sectors" $L/ncu-own.log | cut -c1-170 | head -12
}
export -f main
timeout ${BUDGET:-480} bash -c main
tar czf $OUT/logs.tgz -C $L .
