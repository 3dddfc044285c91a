#!/usr/bin/env bash
# Last device call of session 4 (docs/perf/cuda.md "call K"): builds this tree and, in parallel, the
# tree before the SSM-kernel change (this tree with .dev/ssm.patch reversed: the A/B baseline of the
# same call), runs the CUDA tests on this tree, the SSM A/B (Llamba-1B, MambaInLlama-3B), the full
# table of the six configurations and the Hugging Face baseline. Logs under /tmp/logs -> $OUT/logs.tgz.
source "$(dirname "$0")/call_lib.sh"
main() {
  export PATH=/usr/local/cuda/bin:$PATH
  rm -rf /tmp/old && mkdir -p /tmp/old && tar cf - --exclude=./build-dev --exclude=./.git . | tar xf - -C /tmp/old
  (cd /tmp/old && patch -R -p1 -s < .dev/ssm.patch && P=/tmp/ttc-deps && sleep 20 && \
    export PKG_CONFIG_PATH=$P/usr/lib/x86_64-linux-gnu/pkgconfig && \
    cmake -S . -B build-old -G Ninja -DTTC_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$P/usr \
      -DTTC_SHARED_DIR=/tmp/old/.devshared > $L/cmake-old.log 2>&1 && \
    cmake --build build-old -j 8 --target engine_bench > $L/build-old.log 2>&1; echo "old build rc $?" >> $L/steps.log) &
  OUT=$L timeout 220 tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2):|FAILED|PASSED|Failure|error|abort" $L/session.log | head -40
  wait; el "old build done"; ls -la /tmp/old/build-old/bench/engine_bench
  for cb in llamba-1b:64,256,512 mambainllama-3b:64,256,512; do
    local cfg=${cb%:*} bs=${cb#*:}
    env B=/tmp/old/build-old/bench/engine_bench bash -c "bench old TTC_NONE=1 $cfg $bs 128"
    bench new TTC_NONE=1 $cfg $bs 128
  done
  full_table
}
export -f main
timeout ${BUDGET:-500} bash -c main
tar czf $OUT/logs.tgz -C $L .
