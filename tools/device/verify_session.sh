#!/usr/bin/env bash
# Device call Q (session 5): the CUDA tests only (no benchmark build), for a change whose default
# kernels compile to the same SASS as the last measured commit. Writes $OUT/verify.log.
set -u
OUT=${OUT:-/tmp/ttc-out}; mkdir -p "$OUT"
P=/tmp/ttc-deps; B=$PWD/build-dev
export PKG_CONFIG_PATH=$P/usr/lib/x86_64-linux-gnu/pkgconfig
export LD_LIBRARY_PATH=$P/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p "$P"; for d in .devdeps/*.deb; do dpkg -x "$d" "$P"; done
sed -i -e "s#^prefix=.*#prefix=$P/usr#" -e "/^Requires.private/d" "$P"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
gen="Unix Makefiles"; command -v ninja > /dev/null && gen=Ninja
cmake -S . -B "$B" -G "$gen" -DTTC_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P/usr" \
  -DTTC_SHARED_DIR="$PWD/.devshared" > "$OUT/cmake.log" 2>&1 || { tail -20 "$OUT/cmake.log"; exit 1; }
cmake --build "$B" -j 16 --target cuda_test cuda_kernel_test > "$OUT/build.log" 2>&1 || { grep -m5 -A5 error "$OUT/build.log"; exit 1; }
"$B/tests/cuda/cuda_kernel_test" > "$OUT/verify.log" 2>&1
"$B/tests/cuda/cuda_test" >> "$OUT/verify.log" 2>&1
grep -E "^\[cuda\] (attention mma\+prefix/3|llama|mambainllama|llamba|mamba|mamba2):|PASSED|FAILED|Failure" "$OUT/verify.log" | cut -c1-140 | head -60
