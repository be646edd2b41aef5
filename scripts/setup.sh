#!/usr/bin/env bash
# Installs every Debian 12 package that factoryd's build, tests and benchmarks need.
# Run as root. Idempotent, and fast when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates procps
  librocksdb-dev libsqlite3-dev libsimdjson-dev libfmt-dev libcli11-dev catch2
  libyaml-cpp-dev libvalijson-dev libssl-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  redis-server wrk openssl curl python3
  bubblewrap
  clang  # the `fuzz` preset: libFuzzer targets in tests/fuzz (docs/fuzzing.md)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run as root (or: sudo $0) to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
