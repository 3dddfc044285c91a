#!/usr/bin/env bash
# Device call R (session 6, docs/perf/cuda.md): the prefix tile kernel with the own-range kernel
# merging the prefix partials (no combine pass) and one prefix range per SM, the cascade on by
# default. Builds, runs the CUDA tests, the attention micro-benchmark, the engine A/B
# (TTC_CUDA_CASCADE=0 vs default, 128 steps) and Nsight Compute on the decode attention launches
# (Llama-1B B=256, Llama-3B B=512; graphs off). Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  local NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1)
  OUT=$L timeout 240 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | grep -v "greedy ids\|golden\|graphs" | cut -c1-150 | head -40
  grep -E "prefix" $L/cuda_kernel_test.log | awk '{print $NF}' | sort -g | tail -1 | sed 's/^/worst prefix kernel error /'
  cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build attention bench rc $?"
  timeout 60 build-dev/bench/cuda_attention 64,256,512 > $L/attn.log 2>&1; el "cuda_attention"; cat $L/attn.log | head -40
  for cb in llama-3.2-1b:16,64,256,512 llama-3.2-3b:64,256,512 mambainllama-3b:256,512 mambainllama-1b:256,512; do
    local cfg=${cb%:*} bs=${cb#*:}
    bench off TTC_CUDA_CASCADE=0 $cfg $bs 128
    bench on TTC_NONE=1 $cfg $bs 128
  done
  local S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats"
  for c in 1 0; do
    local skip=$(( c == 1 ? 80 : 48 )) cnt=$(( c == 1 ? 4 : 2 ))
    TTC_CUDA_CASCADE=$c TTC_CUDA_GRAPHS=0 timeout 90 $NCU --clock-control none -k regex:"PrefixAttention|AttentionMma|AttentionCombine" \
      --launch-skip $skip --launch-count $cnt $S $B bench --config llama-3.2-1b --backend cuda --batch 256 --prompt-len 512 \
      --gen-len 6 --warmup-steps 0 > $L/ncu-1b-$c.log 2>&1; el "ncu llama-1b B=256 cascade=$c"
    TTC_CUDA_CASCADE=$c TTC_CUDA_GRAPHS=0 timeout 120 $NCU --clock-control none -k regex:"PrefixAttention|AttentionMma|AttentionCombine" \
      --launch-skip $(( skip * 28 / 16 )) --launch-count $cnt $S $B bench --config llama-3.2-3b --backend cuda --batch 512 --prompt-len 512 \
      --gen-len 6 --warmup-steps 0 > $L/ncu-3b-$c.log 2>&1; el "ncu llama-3b B=512 cascade=$c"
  done
  grep -E "^  [A-Za-z].*Kernel|Duration|Memory Throughput|L2 Cache Throughput|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Grid Size|Waves Per SM|No Eligible|Issued Warp" $L/ncu-*.log | cut -c1-160 | head -120
}
export -f main
timeout ${BUDGET:-560} bash -c main
tar czf $OUT/logs.tgz -C $L .
