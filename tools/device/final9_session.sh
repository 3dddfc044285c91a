#!/usr/bin/env bash
# Device call X (session 7, docs/perf/cuda.md): Mamba-1 with A staged in shared memory. Builds this
# tree, runs the CUDA tests, compute-sanitizer (memcheck, racecheck) over one decode of each family,
# the engine A/B TTC_CUDA_MAMBA1_SHARED_A=0 against the default (128 steps), Nsight Compute on the
# Mamba-1 decode kernel, and the MambaInLlama rows of the table with the A/B's winner at B=512 (call
# W's MambaInLlama rows ran the two-channel kernel, removed since). Logs under /tmp/logs ->
# $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  local NCU=$(ncu_bin)
  setup_test 240
  for tool in memcheck racecheck; do san family $tool 120 cuda_test '*BatchedDecodeEqualsSingle*'; done
  for cb in mambainllama-3b:64,256,512 mambainllama-1b:256,512; do
    bench globala TTC_CUDA_MAMBA1_SHARED_A=0 ${cb%:*} ${cb#*:} 128
    bench shareda TTC_NONE=1 ${cb%:*} ${cb#*:} 128
  done
  local g=$(ms_at $L/bench-globala-mambainllama-3b.log 512) s=$(ms_at $L/bench-shareda-mambainllama-3b.log 512)
  local env=TTC_NONE=1
  if awk -v g="$g" -v s="$s" 'BEGIN {exit !(s > g)}'; then env=TTC_CUDA_MAMBA1_SHARED_A=0; fi
  el "B=512 ms/step global A $g, shared A $s: table with $env"
  for cfg in mambainllama-3b mambainllama-1b; do bench table $env $cfg 1,16,64,256,512; done
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis"
  TTC_CUDA_GRAPHS=0 timeout 90 $NCU --clock-control none -k regex:"Mamba1Scan" --launch-skip 44 \
    --launch-count 1 $S $B bench --config mambainllama-3b --backend cuda --batch 512 --prompt-len 512 --gen-len 6 \
    --warmup-steps 0 > $L/ncu-mil.log 2>&1; el "ncu mil"
  grep -E "^  [A-Za-z].*Kernel|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|L1/TEX Hit|L2 Hit|Stall" $L/ncu-mil.log | cut -c1-150 | head -20
}
export -f main
timeout ${BUDGET:-480} bash -c main
tar czf $OUT/logs.tgz -C $L .
