#!/usr/bin/env bash
# Device call M (session 5, docs/perf/cuda.md): why the cascade attention of call L was slower.
# Builds this tree (+ the cuda_attention micro-benchmark), runs the attention kernel tests with each
# prefix-kernel variant, the cascade family test, cuda_attention (per-row walk vs cascade with 1-8
# prefix ranges, L2 flushed) for each variant, per-op GPU times (TTC_CUDA_PROFILE=1) with the
# cascade on and off, and the engine A/B again. Logs under /tmp/logs -> $OUT/logs.tgz. (Session 6
# replaced that prefix kernel and its TTC_PREFIX_KERNEL variants: the script now runs the tile
# kernel three times.)
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  OUT=$L timeout 200 tools/device/cuda_session.sh setup > $L/session.log 2>&1; el "setup"
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build attention bench rc $?"
  for v in default ns2 w8; do
    TTC_PREFIX_KERNEL=$v timeout 60 build-dev/tests/cuda/cuda_kernel_test --gtest_filter='CudaAttention.*' > $L/kt-$v.log 2>&1
    el "kernel test prefix=$v: $(grep -E 'PASSED|FAILED' $L/kt-$v.log | head -2 | tr '\n' ' ') worst prefix err $(grep prefix $L/kt-$v.log | awk '{print $NF}' | sort -g | tail -1)"
  done
  timeout 60 build-dev/tests/cuda/cuda_test --gtest_filter='*Cascade*:*GraphReplay*' > $L/ct.log 2>&1
  el "cuda_test cascade+graph: $(grep -E 'PASSED|FAILED' $L/ct.log | head -3 | tr '\n' ' ')"; grep "^\[cuda\]" $L/ct.log | cut -c1-150
  for v in default ns2 w8; do
    TTC_PREFIX_KERNEL=$v timeout 60 build-dev/bench/cuda_attention 64,256,512 > $L/attn-$v.log 2>&1
    el "cuda_attention prefix=$v"; cat $L/attn-$v.log
  done
  for c in 0 1; do
    TTC_CUDA_CASCADE=$c TTC_CUDA_PROFILE=1 timeout 60 $B bench --config llama-3.2-1b --backend cuda --batch 256 \
      --prompt-len 512 --gen-len 64 > $L/prof-$c.log 2>&1
    el "profile llama-1b B=256 cascade=$c"; grep -iE "attention|matmul|total|step" $L/prof-$c.log | head -8
  done
  for cb in llama-3.2-1b:16,64,256 llama-3.2-3b:256,512; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench off TTC_CUDA_CASCADE=0 $cfg $bs 128
    bench on TTC_NONE=1 $cfg $bs 128
    bench ns2 TTC_PREFIX_KERNEL=ns2 $cfg $bs 128
  done
}
export -f main
timeout ${BUDGET:-420} bash -c main
tar czf $OUT/logs.tgz -C $L .
