#!/usr/bin/env bash
# Device call Y (session 7, docs/perf/cuda.md): decode-step SSD and Mamba-1 kernels that copy the
# state to shared memory by cp.async (SsdCopyKernel, Mamba1CopyKernel). Builds this tree, runs the
# CUDA tests (the SSD and Mamba-1 kernel tests cover both copy kernels), compute-sanitizer over those
# tests and one decode of each family, the engine A/B (128 steps) against the register kernels
# (TTC_CUDA_SSD_KERNEL=reg, TTC_CUDA_MAMBA1_COPY=0), and the 512-step cells of the SSM targets with
# each A/B's winner. Logs under /tmp/logs -> $OUT/logs.tgz. (Mamba1CopyKernel and TTC_CUDA_MAMBA1_COPY were
# removed after this call: it was no faster.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  grep -E "^\[cuda\] (ssd|mamba1)" $L/cuda_kernel_test.log
  for tool in memcheck racecheck; do san kernels $tool 40 cuda_kernel_test 'CudaSsd.*:CudaMamba1.*'; done
  san family memcheck 40 cuda_test '*BatchedDecodeEqualsSingle*'
  bench reg TTC_CUDA_SSD_KERNEL=reg llamba-1b 256,512 128
  bench copy TTC_NONE=1 llamba-1b 256,512 128
  bench single TTC_CUDA_MAMBA1_COPY=0 mambainllama-3b 512 128
  bench copy TTC_NONE=1 mambainllama-3b 512 128
  local s_env=TTC_NONE=1 m_env=TTC_NONE=1
  awk -v a="$(ms_at $L/bench-reg-llamba-1b.log 512)" -v b="$(ms_at $L/bench-copy-llamba-1b.log 512)" 'BEGIN {exit !(b > a)}' && s_env=TTC_CUDA_SSD_KERNEL=reg
  awk -v a="$(ms_at $L/bench-single-mambainllama-3b.log 512)" -v b="$(ms_at $L/bench-copy-mambainllama-3b.log 512)" 'BEGIN {exit !(b > a)}' && m_env=TTC_CUDA_MAMBA1_COPY=0
  el "cells with $s_env / $m_env"
  bench cell $s_env llamba-1b 256,512
  bench cell $m_env mambainllama-3b 512
  bench cell $s_env llamba-3b 512
}
export -f main
timeout ${BUDGET:-250} bash -c main
tar czf $OUT/logs.tgz -C $L .
