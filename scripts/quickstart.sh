#!/usr/bin/env bash
# The README's two commands:
#   scripts/quickstart.sh demo   installs packages, builds, runs the software factory demo
#   scripts/quickstart.sh test   installs packages, builds, runs the whole test suite
# Run as root on a fresh Debian 12 machine (it apt-installs what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-demo}
case "$mode" in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

bash scripts/setup.sh
cmake --preset release >/dev/null

case "$mode" in
  # The demo needs the binary alone (its stages are built in): about half of the full build.
  demo) cmake --build --preset release --target factoryd
        build/release/src/cli/factoryd demo ;;
  test) cmake --build --preset release
        ctest --preset release -j2 ;;
esac
