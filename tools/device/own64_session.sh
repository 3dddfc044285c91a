#!/usr/bin/env bash
# Device call AG (session 9, docs/perf/cuda.md): call AE's attention form as the only one (call AF
# measured the L2 prefetch slower; removed), plus the A/B of head_dim <= 64's one-warp own-range
# kernel with two sub-tiles per iteration in the transposed P.V form (TTC_OWN_NS2=1). Builds this
# tree, runs the CUDA tests (and the attention kernel test with TTC_OWN_NS2=1), the micro-benchmark
# and engine A/B of the head_dim-64 models, the table rows of the four attention models (the
# head_dim-64 rows with the A/B's winner), the Hugging Face baseline, and compute-sanitizer
# (memcheck, racecheck) over the attention kernel test (both settings) and the batched family test.
# Logs under /tmp/logs -> $OUT/logs.tgz. (Neutral: TTC_OWN_NS2 was removed after this call.)
source "$(dirname "$0")/call_lib.sh"
main() {
  setup_test 200
  kernel_test ns2 TTC_OWN_NS2=1
  attn_micro 256,512 ns1:TTC_NONE=1 ns2:TTC_OWN_NS2=1
  bench_ab "llama-3.2-1b:256,512 mambainllama-1b:256,512" ns1:TTC_NONE=1 ns2:TTC_OWN_NS2=1
  local best=TTC_NONE=1
  awk -v a="$(ms_at $L/bench-ns2-llama-3.2-1b.log 512)" -v b="$(ms_at $L/bench-ns1-llama-3.2-1b.log 512)" \
    'BEGIN {exit !(a < b)}' && best=TTC_OWN_NS2=1
  el "head_dim-64 rows with $best"
  for cfg in llama-3.2-3b mambainllama-3b; do bench table TTC_NONE=1 $cfg 1,16,64,256,512; done
  for cfg in llama-3.2-1b mambainllama-1b; do bench table $best $cfg 1,16,64; done
  timeout 100 python3 tools/bench/hf_baseline.py --model llama-3.2-1b --batch 256 --json $L/hf.json > $L/hf.log 2>&1
  el "hf"; tail -1 $L/hf.log
  for tool in memcheck racecheck; do san attn $tool 70 cuda_kernel_test 'CudaAttention.*'; done
  TTC_OWN_NS2=1 san attn-ns2 memcheck 40 cuda_kernel_test 'CudaAttention.*'
  san family memcheck 90 cuda_test '*BatchedDecodeEqualsSingle*'
}
export -f main
timeout ${BUDGET:-575} bash -c main
tar czf $OUT/logs.tgz -C $L .
