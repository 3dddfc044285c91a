#!/usr/bin/env bash
# Device call AC (session 8, docs/perf/cuda.md): Nsight Compute on the two kernels the last
# attempts did not move, for the next change to start from data: the cascade's own-range attention
# (AttentionMmaKernel, one warp per row and KV head) at Llama-3B B=512 after ~256 decode steps, and
# the Mamba-1 decode kernel at MambaInLlama-3B B=512, each with the warp-stall breakdown and the
# SASS lines that stall most (SourceCounters). Builds engine_bench only. Logs under /tmp/logs ->
# $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  OUT=$L timeout 200 tools/device/cuda_session.sh setup > $L/session.log 2>&1; el "setup"
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats --section SourceCounters"
  # Graphs off: one launch per attention layer and step (28 per step for Llama-3B).
  ncu_kernel $L/ncu-own.log 150 AttentionMmaKernel $((28 * 256)) llama-3.2-3b 512 260 $S; el "ncu own-range attention"
  ncu_kernel $L/ncu-mil.log 90 Mamba1Scan 44 mambainllama-3b 512 6 $S; el "ncu mamba1"
  for f in own mil; do
    grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|L1/TEX Hit|L2 Hit|Warp Cycles Per Issued|Issued Warp|No Eligible|Stall|stalled" $L/ncu-$f.log | cut -c1-170 | head -30
  done
}
export -f main
timeout ${BUDGET:-420} bash -c main
tar czf $OUT/logs.tgz -C $L .
