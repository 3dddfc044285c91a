#!/usr/bin/env bash
# Device call AP (session 11, docs/perf/cuda.md): the Mamba-1 streaming decode kernel with each
# warp releasing a stage on an mbarrier (only the refilling thread waits) instead of a
# __syncthreads per sequence. Builds this tree (CUDA tests) and the tree before (.devbase: HEAD's
# kernels.cu), engine cells for both, Nsight Compute of the kernel in both builds, compute-sanitizer
# over the Mamba-1 kernel test, and one decode step per kernel (step_kernels) of four cells for the
# next change. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] mamba1" $L/cuda_kernel_test.log | head -12
  base_build engine_bench
  base_ab "" mambainllama-3b:256,512 mambainllama-1b:512
  BENCH_ARGS="--state-dtype bf16" base_ab 16 mambainllama-3b:512
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SourceCounters"
  B=/tmp/base/build-dev/bench/engine_bench ncu_kernel $L/ncu-m1-base.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S
  ncu_kernel $L/ncu-m1-new.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S -o $L/m1new
  for k in m1-base m1-new; do echo "$k: $(grep -E 'Duration|DRAM Throughput|Registers Per|Achieved Occupancy' $L/ncu-$k.log | awk '{print $1, $NF}' | tr '\n' ' ')"; done
  ncu_pages m1new
  python3 tools/device/sass_stalls.py $L/ncu-m1new-sass.csv 8 2>&1 | head -14
  for tool in memcheck racecheck; do san k $tool 120 cuda_kernel_test 'CudaMamba1.*'; done
  which nsys; ls /opt/nvidia 2> /dev/null
  step_kernels mil3 mambainllama-3b 512
  step_kernels llamba3 llamba-3b 512
  step_kernels llama1 llama-3.2-1b 256
  step_kernels llama3 llama-3.2-3b 512
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
