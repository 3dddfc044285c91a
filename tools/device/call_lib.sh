# Shared by the one-call device scripts (attn_session.sh, final_session.sh): the log folder, the
# carried libraries, step timing (el), the table rows of a bench log (rows), the ms/step of one
# batch in a bench log (ms_at), the build and CUDA tests with their summary (setup_test), one
# benchmark run (bench label "ENV=..." config batches [gen]), one compute-sanitizer run (san), the
# Nsight Compute binary (ncu_bin), one profiled kernel launch (ncu_kernel), the full table with the
# Hugging Face baseline (full_table), and for same-call A/B runs of environment switches the
# attention kernel test (kernel_test), the attention micro-benchmark (attn_micro) and benchmark
# cells (bench_ab) under each setting, and a second build with the carried .devbase/ files for a
# same-call A/B against code without a switch (base_build; bench with B=/tmp/base/build-dev/...,
# or base_ab for cells in both builds),
# the pages of saved Nsight Compute reports (ncu_pages), and one decode step's kernels
# (step_kernels).
# Source it; the scripts then run their `main` under `timeout ... bash -c main`, so everything here
# is exported.
set -u
L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=/tmp/ttc-deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L/steps.log; }
rows() { grep -E "^\s*[0-9]+ " "$1" | head -8; }
ms_at() { awk -v b="$2" '$1 == b {print $4}' "$1" | head -1; }  # bench-log batch -> ms/step
ncu_bin() { command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1; }
setup_test() {  # [seconds]: build + CUDA tests (cuda_session.sh), then failures and golden bounds
  OUT=$L timeout ${1:-240} tools/device/cuda_session.sh setup test > $L/session.log 2>&1; el "setup+test"
  grep -E "FAILED|PASSED|Failure|error|abort" $L/session.log | cut -c1-160 | head -30
  grep -E "^\[cuda\] (llama|mambainllama|llamba|mamba|mamba2): max" $L/session.log | cut -c1-150
}
B=build-dev/bench/engine_bench
bench() {  # label env-assignments config batches [gen]; BENCH_ARGS: more bench options
  env $2 timeout ${BENCH_TIMEOUT:-100} $B bench --config $3 --backend cuda --batch $4 --prompt-len 512 \
    --gen-len ${5:-512} ${BENCH_ARGS:-} --json $L/bench-$1-$3.json > $L/bench-$1-$3.log 2>&1
  el "bench $1 $3 B=$4 gen ${5:-512}"; rows $L/bench-$1-$3.log
}
san() {  # label tool seconds test-binary gtest-filter: one compute-sanitizer run, its summary line
  timeout $3 compute-sanitizer --tool $2 --error-exitcode 3 build-dev/tests/cuda/$4 --gtest_filter="$5" \
    > $L/san-$2-$1.log 2>&1
  el "sanitizer $2 $1 rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $L/san-$2-$1.log | tail -1)"
}
ncu_kernel() {  # log seconds kernel-regex launch-skip config batch gen [sections...]: one profiled launch
  local log=$1 secs=$2 k=$3 skip=$4 cfg=$5 b=$6 gen=$7; shift 7
  TTC_CUDA_GRAPHS=0 timeout $secs $(ncu_bin) --clock-control none -k regex:"$k" --launch-skip $skip \
    --launch-count 1 "$@" $B bench --config $cfg --backend cuda --batch $b --prompt-len 512 --gen-len $gen \
    --warmup-steps 0 > $log 2>&1
}
full_table() {  # the six configurations at B=1..512 (512 steps) and the Hugging Face baseline
  for cfg in llama-3.2-1b llama-3.2-3b mambainllama-3b mambainllama-1b llamba-1b llamba-3b; do
    bench table TTC_NONE=1 $cfg 1,16,64,256,512
  done
  timeout 100 python3 tools/bench/hf_baseline.py --model llama-3.2-1b --batch 256 --json $L/hf.json > $L/hf.log 2>&1
  el "hf"; tail -1 $L/hf.log
}
kernel_test() {  # label "ENV=...": the attention kernel test under the setting, verdict and worst error
  env $2 timeout 60 build-dev/tests/cuda/cuda_kernel_test --gtest_filter='CudaAttention.*' > $L/kt-$1.log 2>&1
  el "kernel test $1: $(grep -E 'PASSED|FAILED' $L/kt-$1.log | tail -1) $(grep -E '^\[cuda\] attention' $L/kt-$1.log | awk '{print $NF}' | sort -g | tail -1)"
}
attn_micro() {  # batches label:ENV...: the micro-benchmark (built on first use) under each setting
  [ -x build-dev/bench/cuda_attention ] || {
    cmake --build build-dev -j 16 --target cuda_attention > $L/build-attn.log 2>&1; el "build cuda_attention rc $?"; }
  local b=$1; shift
  for v in "$@"; do
    env ${v#*:} timeout 40 build-dev/bench/cuda_attention $b > $L/attn-${v%%:*}.log 2>&1
    el "cuda_attention ${v%%:*}"; grep -E "^llama|^model" $L/attn-${v%%:*}.log
  done
}
bench_ab() {  # "config:batches ..." label:ENV...: every cell under each setting
  local cells=$1; shift
  for v in "$@"; do for c in $cells; do bench ${v%%:*} ${v#*:} ${c%%:*} ${c#*:}; done; done
}
ncu_pages() {  # report names (L/NAME.ncu-rep): each one's details page and per-SASS-line source page
  # (CSV with the warp-stall samples; summarise it with tools/device/sass_stalls.py), key lines
  for f in "$@"; do
    $(ncu_bin) -i $L/$f.ncu-rep --page details > $L/ncu-$f-details.log 2>&1
    $(ncu_bin) -i $L/$f.ncu-rep --page source --csv --print-source sass > $L/ncu-$f-sass.csv 2> $L/ncu-$f-sass.err
    el "$f source page rc $? $(wc -l < $L/ncu-$f-sass.csv) lines"
    grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued" \
      $L/ncu-$f-details.log | cut -c1-150 | head -8
  done
}
base_build() {  # [targets]: a second build, /tmp/base, with the files under .devbase/ (same
  # relative paths, carried) in place of the tree's: the same-call "before" of an A/B without an
  # environment switch in the code. Run after setup_test (it reuses the unpacked packages).
  rm -rf /tmp/base && mkdir -p /tmp/base
  tar --exclude=./build-dev --exclude=./.devbase -cf - . | tar -xf - -C /tmp/base
  (cd .devbase && find . -type f) | while read -r f; do cp ".devbase/$f" "/tmp/base/$f"; done
  local gen="Unix Makefiles"; command -v ninja > /dev/null && gen=Ninja
  cmake -S /tmp/base -B /tmp/base/build-dev -G "$gen" -DTTC_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH=/tmp/ttc-deps/usr > $L/base-cmake.log 2>&1
  cmake --build /tmp/base/build-dev -j 16 --target ${1:-engine_bench cuda_attention} > $L/base-build.log 2>&1
  el "base build rc $? ($(cd .devbase && find . -type f | tr '\n' ' '))"
}
base_ab() {  # label-suffix config:batches...: each cell in the base build (base_build), then in this
  # one; labels base<suffix>-<batches> / new<suffix>-<batches> (BENCH_ARGS applies to both)
  local sfx=$1; shift
  for c in "$@"; do
    B=/tmp/base/build-dev/bench/engine_bench bench base$sfx-${c#*:} TTC_NONE=1 ${c%%:*} ${c#*:}
    bench new$sfx-${c#*:} TTC_NONE=1 ${c%%:*} ${c#*:}
  done
}
step_kernels() {  # label config batch [gen]: every launch of a short eager run under Nsight Compute
  # (one metric: the duration), then the last whole decode step per kernel (step_kernels.py)
  TTC_CUDA_GRAPHS=0 timeout ${STEP_TIMEOUT:-150} $(ncu_bin) --clock-control none --csv \
    --metrics gpu__time_duration.sum $B bench --config $2 --backend cuda --batch $3 --prompt-len 512 \
    --gen-len ${4:-3} --warmup-steps 0 > $L/steps-$1.csv 2> $L/steps-$1.err
  el "step kernels $1 ($2 B=$3) rc $?"
  python3 tools/device/step_kernels.py $L/steps-$1.csv Sample ${STEP_LINES:-14}
}
export -f el rows ms_at ncu_pages base_build base_ab step_kernels ncu_bin ncu_kernel setup_test bench san full_table kernel_test attn_micro bench_ab
export L T0 B
