#!/usr/bin/env bash
# Device call AN (session 10, docs/perf/cuda.md): the table at the session's final kernels. Builds
# this tree and runs the CUDA tests, the six configurations at B = 1..512 (512 steps) and the
# Hugging Face baseline (full_table), compute-sanitizer (memcheck, racecheck) over the families'
# batched decode, and Nsight Compute with the per-SASS-line stall samples of the Mamba-1 decode
# kernel (MambaInLlama-3B B=512) for the next change to start from. Logs under /tmp/logs ->
# $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] mamba1" $L/cuda_kernel_test.log | tail -2
  full_table
  for tool in memcheck racecheck; do san fam $tool 150 cuda_test '*BatchedDecodeEqualsSingle*'; done
  local S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SourceCounters --section MemoryWorkloadAnalysis"
  ncu_kernel $L/ncu-m1.log 60 Mamba1DecodeKernel 44 mambainllama-3b 512 6 $S -o $L/m1; el "ncu m1"
  ncu_pages m1
}
export -f main
timeout ${BUDGET:-480} bash -c main
tar czf $OUT/logs.tgz -C $L .
