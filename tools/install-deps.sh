#!/usr/bin/env bash
# Installs the Debian packages ttc builds and tests with. Idempotent: packages already present are skipped, and
# apt is only touched when something is missing. Used by the README commands and by .ci/run.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libzmq3-dev cppzmq-dev libsqlite3-dev sqlite3 libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libboost-dev libgtest-dev libgmock-dev libpcre2-dev libpng-dev clang libclang-rt-14-dev chromium
  iproute2  # the link-cut test (network namespaces; it skips, saying why, where not allowed)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#PACKAGES[@]} packages present" >&2
fi
