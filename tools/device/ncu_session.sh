#!/usr/bin/env bash
# Short device call (docs/perf/cuda.md "call J"): build + the CUDA tests, then Nsight Compute on one
# decode launch of the SSM kernels that dominate the Mamba-family steps (Llamba-1B B=256: SSD scan,
# causal conv, gate; MambaInLlama-3B B=512: Mamba-1 scan, causal conv), graphs off, clocks left alone.
# Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  local NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1)
  el "ncu: $NCU"
  OUT=$L timeout 200 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (matmul|llama|llamba)|FAILED|PASSED|Failure|error|abort" $L/session.log | head -30
  local S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis"
  TTC_CUDA_GRAPHS=0 timeout 90 $NCU --clock-control none -k regex:"SsdScan|CausalConv|LlambaGate" --launch-skip 48 \
    --launch-count 3 $S $B bench --config llamba-1b --backend cuda --batch 256 --prompt-len 512 --gen-len 6 \
    --warmup-steps 0 > $L/ncu-llamba.log 2>&1; el "ncu llamba"
  TTC_CUDA_GRAPHS=0 timeout 120 $NCU --clock-control none -k regex:"Mamba1Scan|CausalConv" --launch-skip 88 \
    --launch-count 2 $S $B bench --config mambainllama-3b --backend cuda --batch 512 --prompt-len 512 --gen-len 6 \
    --warmup-steps 0 > $L/ncu-mil.log 2>&1; el "ncu mil"
  grep -E "^  [A-Za-z].*Kernel|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Size|Grid Size|Waves Per SM|Stall|One or More|No Eligible|Issued Warp" $L/ncu-*.log | head -90
}
export -f main
timeout ${BUDGET:-330} bash -c main
tar czf $OUT/logs.tgz -C $L .
