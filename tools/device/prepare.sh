#!/usr/bin/env bash
# Builds, on the CPU machine, the three ignored folders a device call carries
# (`run` with carry [".devdeps", ".devshared", ".devbase"]), so that a new checkout can make a
# device call without knowing how an earlier session made them:
#   .devdeps/   Debian 12 packages the GPU image lacks (ZeroMQ, SQLite's headers, spdlog with its
#               fmt, PCRE2), fetched with `apt-get download`; cuda_session.sh's `setup` unpacks
#               them into a private prefix (dpkg -x) and builds against it. The image has CUDA,
#               CMake, g++, Boost, CLI11, fmt, nlohmann-json and GoogleTest headers, and SQLite's
#               runtime (KINDS.md of the device tool; session notes), whose version need not
#               match the one the carried libsqlite3-dev's libsqlite3.so names: libsqlite3-0 rides along.
#   .devshared/ a copy of ../shared/golden (the fixtures of tests/cuda; ../shared does not travel).
#   .devbase/   the "before" files of s12_session.sh's base A/B (see its header): 01ff24e's
#               engine/model.cc and engine/cuda/cuda_backend.cc.
# Also adds the three folders to .git/info/exclude (a call carries ignored paths only by name).
# Idempotent; needs network access to Debian's archive (apt) and git history back to 01ff24e.
# Usage: tools/device/prepare.sh [--no-base]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${TTC_SHARED:-../shared}

exclude=.git/info/exclude
mkdir -p "$(dirname "$exclude")"
touch "$exclude"
for d in /.devdeps/ /.devshared/ /.devbase/; do
  grep -qxF "$d" "$exclude" || echo "$d" >> "$exclude"
done

# The libraries' runtime packages ride along with the -dev ones: the image has none of them except
# SQLite's, and libzmq5's own dependencies (libsodium, OpenPGM, NORM) are not there either.
PACKAGES=(
  libzmq3-dev libzmq5 cppzmq-dev libsodium23 libpgm-5.3-0 libnorm1
  libsqlite3-dev libsqlite3-0
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
)
mkdir -p .devdeps
(cd .devdeps && apt-get download "${PACKAGES[@]}" > /dev/null)
# Each package once, at the version just fetched (an older .deb left from an earlier run would be
# unpacked over or under it).
for p in "${PACKAGES[@]}"; do
  mapfile -t debs < <(ls -t .devdeps/"${p}"_*.deb 2> /dev/null)
  ((${#debs[@]} > 1)) && rm -f "${debs[@]:1}"
done

# What CMake will look for in the prefix, checked here rather than on the device's clock.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in .devdeps/*.deb; do dpkg -x "$d" "$tmp"; done
lib=$tmp/usr/lib/x86_64-linux-gnu
for f in "$lib/pkgconfig/libzmq.pc" "$lib/pkgconfig/libpcre2-8.pc" "$tmp/usr/include/zmq.hpp" \
  "$tmp/usr/include/sqlite3.h" "$lib/cmake/spdlog/spdlogConfig.cmake" "$lib/cmake/fmt/fmt-config.cmake" \
  "$lib/libzmq.so.5" "$lib/libsodium.so.23" "$lib/libspdlog.so.1.10" "$lib/libfmt.so.9"; do
  [ -e "$f" ] || { echo "prepare: ${f#"$tmp"} is missing from .devdeps" >&2; exit 1; }
done
# Every link-time name (libX.so) must lead to a library inside the prefix.
for f in "$lib"/*.so; do
  [ -e "$f" ] || { echo "prepare: ${f#"$tmp"} points outside .devdeps" >&2; exit 1; }
done

rm -rf .devshared
mkdir -p .devshared
cp -r "$SHARED/golden" .devshared/golden

if [ "${1:-}" != --no-base ]; then
  rm -rf .devbase
  mkdir -p .devbase/engine/cuda
  git show 01ff24e:engine/model.cc > .devbase/engine/model.cc
  git show 01ff24e:engine/cuda/cuda_backend.cc |
    sed 's/st->state_bytes() == 2,/st->state_bytes() == 2 ? cuda::StateStore::kBf16 : cuda::StateStore::kF32,/' \
      > .devbase/engine/cuda/cuda_backend.cc
  grep -q "cuda::StateStore::kBf16 : cuda::StateStore::kF32" .devbase/engine/cuda/cuda_backend.cc ||
    { echo "prepare: the .devbase edit of cuda_backend.cc did not apply" >&2; exit 1; }
fi

du -sh .devdeps .devshared .devbase 2> /dev/null | tr '\n' ' '
echo "(carry all three: 64 MiB at most with the tree)"
