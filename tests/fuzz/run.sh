#!/usr/bin/env bash
# Runs one libFuzzer target (docs/fuzzing.md):
#   tests/fuzz/run.sh <target> <seconds> [--merge] [-- extra libFuzzer flags...]
# e.g. tests/fuzz/run.sh ingest 300
#
# Builds build/fuzz/tests/fuzz/<target>_fuzz with the `fuzz` preset (clang, libFuzzer, ASan +
# UBSan) unless FUZZ_NO_BUILD=1, then fuzzes for <seconds> starting from the checked-in seeds
# (tests/fuzz/corpus/<target>/, only read) and a working corpus build/fuzz/corpus/<target>/
# (where new finds go, kept between runs). A crash, leak, timeout or out-of-memory input is
# written to build/fuzz/artifacts/<target>/ and the script exits non-zero.
# --merge: afterwards, merge the inputs that add coverage into tests/fuzz/corpus/<target>/
# (then review and commit them; the corpus is what CI replays).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
if [[ $# -lt 2 ]]; then
  echo "usage: tests/fuzz/run.sh <target> <seconds> [--merge] [-- libFuzzer flags]" >&2
  echo "targets: $(cd tests/fuzz && ls *_fuzz.cpp | sed 's/_fuzz.cpp//' | tr '\n' ' ')" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
merge=0
if [[ ${1:-} == --merge ]]; then merge=1; shift; fi
if [[ ${1:-} == -- ]]; then shift; fi
[[ -f tests/fuzz/${target}_fuzz.cpp ]] || { echo "no target tests/fuzz/${target}_fuzz.cpp" >&2; exit 2; }

bin=$root/build/fuzz/tests/fuzz/${target}_fuzz
if [[ ${FUZZ_NO_BUILD:-0} != 1 ]]; then
  [[ -f build/fuzz/build.ninja ]] || cmake --preset fuzz >/dev/null
  nice cmake --build build/fuzz --target "${target}_fuzz"
fi
[[ -x $bin ]] || { echo "$bin is not built" >&2; exit 2; }

seeds=$root/tests/fuzz/corpus/$target
work=$root/build/fuzz/corpus/$target
artifacts=$root/build/fuzz/artifacts/$target
mkdir -p "$seeds" "$work" "$artifacts"
# A private temp dir: some harnesses write files (config readers) or open a log.
export TMPDIR=${FUZZ_TMPDIR:-$(mktemp -d /dev/shm/factory-fuzz-XXXXXX)}
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "$work" "$seeds" || status=$?
if [[ $merge == 1 && $status == 0 ]]; then
  "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 "$seeds" "$work"
fi
rm -rf "$TMPDIR"
exit $status
