#!/usr/bin/env bash
# Device call AO (session 11, docs/perf/cuda.md): the Mamba-1 streaming decode kernel with each
# sequence's inputs (dt, x, z, B, C) bulk-copied into the stage with its state tile. Builds this
# tree (CUDA tests, including the new per-channel fallback cases) and the tree before (.devbase:
# HEAD's kernels.cu), engine cells for both, Nsight Compute of the Mamba-1 kernel in both builds
# and of the SSD copy kernel (Llamba-3B B=512, for the next change), compute-sanitizer over the
# Mamba-1 kernel test. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] mamba1" $L/cuda_kernel_test.log | head -12
  base_build engine_bench
  # (As run in call AO the labels were base/new alone, so the B=16 cell's log replaced the
  # B=256,512 one of the same model; base_ab puts the batches in the label.)
  base_ab "" mambainllama-3b:256,512 mambainllama-1b:256,512 mambainllama-3b:16
  BENCH_ARGS="--state-dtype bf16" base_ab 16 mambainllama-3b:512
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section SourceCounters --section MemoryWorkloadAnalysis"
  B=/tmp/base/build-dev/bench/engine_bench ncu_kernel $L/ncu-m1-base.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S
  ncu_kernel $L/ncu-m1-new.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S -o $L/m1new
  ncu_kernel $L/ncu-ssd.log 60 SsdCopyKernel 112 llamba-3b 512 6 $S -o $L/ssd
  el "ncu"
  for k in m1-base m1-new ssd; do echo "$k: $(grep -E 'Duration|DRAM Throughput|L2 Cache Throughput|Registers Per|Achieved Occupancy' $L/ncu-$k.log | awk '{print $1, $NF}' | tr '\n' ' ')"; done
  ncu_pages m1new ssd
  python3 tools/device/sass_stalls.py $L/ncu-m1new-sass.csv 2>&1 | head -30
  python3 tools/device/sass_stalls.py $L/ncu-ssd-sass.csv 2>&1 | head -30
  for tool in memcheck racecheck; do san k $tool 120 cuda_kernel_test 'CudaMamba1.*'; done
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
