#!/usr/bin/env bash
# Device call V (session 7, docs/perf/cuda.md): the register-resident SSD state update
# (SsdRegKernel). Builds this tree, runs the CUDA tests (the new SSD kernel test among them),
# compute-sanitizer over the SSD test and one decode of each family, the engine A/B
# TTC_CUDA_SSD_KERNEL=scan against the default at 128 steps, per-op profiles of four cells, and
# Nsight Compute on the SSD and Mamba-1 decode kernels. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  local NCU=$(ncu_bin)
  setup_test 240
  grep -E "^\[cuda\] ssd" $L/cuda_kernel_test.log
  for tool in memcheck racecheck; do san ssd $tool 60 cuda_kernel_test 'CudaSsd.*'; done
  san family memcheck 90 cuda_test '*BatchedDecodeEqualsSingle*'
  for cb in llamba-1b:64,256,512 llamba-3b:256,512; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench scan TTC_CUDA_SSD_KERNEL=scan $cfg $bs 128
    bench reg TTC_NONE=1 $cfg $bs 128
  done
  for cb in llamba-1b:256 mambainllama-3b:512 llama-3.2-1b:256 llama-3.2-3b:512; do
    local cfg=${cb%:*} b=${cb#*:}
    TTC_CUDA_PROFILE=1 timeout 60 $B bench --config $cfg --backend cuda --batch $b --prompt-len 512 \
      --gen-len 64 > $L/prof-$cfg.log 2>&1; el "profile $cfg B=$b"
    grep -A14 "cuda profile" $L/prof-$cfg.log
  done
  local S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis"
  TTC_CUDA_GRAPHS=0 timeout 90 $NCU --clock-control none -k regex:"SsdReg|CausalConv|LlambaGate" --launch-skip 48 \
    --launch-count 3 $S $B bench --config llamba-1b --backend cuda --batch 256 --prompt-len 512 --gen-len 6 \
    --warmup-steps 0 > $L/ncu-llamba.log 2>&1; el "ncu llamba"
  TTC_CUDA_GRAPHS=0 timeout 120 $NCU --clock-control none -k regex:"Mamba1Scan|CausalConv" --launch-skip 88 \
    --launch-count 2 $S $B bench --config mambainllama-3b --backend cuda --batch 512 --prompt-len 512 --gen-len 6 \
    --warmup-steps 0 > $L/ncu-mil.log 2>&1; el "ncu mil"
  grep -E "^  [A-Za-z].*Kernel|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Size|Grid Size|Stall|One or More|No Eligible|Issued Warp|L1/TEX Hit|L2 Hit" $L/ncu-*.log | cut -c1-150 | head -90
}
export -f main
timeout ${BUDGET:-520} bash -c main
tar czf $OUT/logs.tgz -C $L .
