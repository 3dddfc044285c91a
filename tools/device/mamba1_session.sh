#!/usr/bin/env bash
# Device call AL (session 10, docs/perf/cuda.md): the Mamba-1 decode step as a streaming kernel
# (Mamba1DecodeKernel: the state in a [di][N] layout, each sequence's 128-channel state tile
# brought to shared memory by one bulk copy on an mbarrier, 4 sequences ahead; A loaded once per
# block). Builds this tree (tests) and the tree before (.devbase: HEAD's kernels.cu, the
# per-channel kernel on the [N][di] layout), the engine cells of both MambaInLlama models, Nsight
# Compute of the two kernels, compute-sanitizer over the Mamba-1 kernel test and the families'
# batched decode, and per-op profiles of two attention cells. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] mamba1" $L/session.log | head -8
  base_build engine_bench
  for c in mambainllama-3b:1,16,64,256,512 mambainllama-1b:64,256,512; do
    B=/tmp/base/build-dev/bench/engine_bench bench base TTC_NONE=1 ${c%%:*} ${c#*:}
    bench new TTC_NONE=1 ${c%%:*} ${c#*:}
  done
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats"
  ncu_kernel $L/ncu-m1-new.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S; el "ncu m1 new"
  B=/tmp/base/build-dev/bench/engine_bench ncu_kernel $L/ncu-m1-base.log 60 Mamba1ScanKernel 44 mambainllama-3b 512 6 $S; el "ncu m1 base"
  for f in new base; do grep -E "Duration|DRAM Throughput|Registers Per|Achieved Occupancy|No Eligible" $L/ncu-m1-$f.log | cut -c1-120; done
  for tool in memcheck racecheck; do san m1 $tool 80 cuda_kernel_test 'CudaMamba1.*'; done
  san fam memcheck 150 cuda_test '*BatchedDecodeEqualsSingle*'
  for c in llama-3.2-1b:64 llama-3.2-3b:512 mambainllama-3b:512; do
    TTC_CUDA_PROFILE=1 TTC_CUDA_GRAPHS=0 timeout 60 $B bench --config ${c%%:*} --backend cuda --batch ${c#*:} \
      --prompt-len 512 --gen-len 64 > $L/profile-${c%%:*}-${c#*:}.log 2>&1; el "profile $c"
    grep -A14 "cuda profile" $L/profile-${c%%:*}-${c#*:}.log | tail -14
  done
}
export -f main
timeout ${BUDGET:-540} bash -c main
tar czf $OUT/logs.tgz -C $L .
