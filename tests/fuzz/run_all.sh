#!/usr/bin/env bash
# Fuzzes every target in turn in the background-friendly way docs/fuzzing.md describes:
#   nohup nice -n 19 tests/fuzz/run_all.sh /work/fuzz-runs/<stamp> &
# The three targets facing the internet run FUZZ_LONG seconds each (default 1800), then every
# other target FUZZ_SHORT seconds (default 300), one at a time. Each target's libFuzzer output
# goes to <logdir>/<target>.log and a line per target to <logdir>/summary.txt. A target not
# built yet (build/fuzz) is waited for, up to an hour. Does not build (so it never races a
# build in the same tree) and does not stop at a finding: the artifact is in
# build/fuzz/artifacts/<target>/.
set -uo pipefail
cd "$(dirname "$0")/../.."
logdir=${1:?usage: run_all.sh <logdir> [targets...]}
shift
mkdir -p "$logdir"
long=${FUZZ_LONG:-1800}
short=${FUZZ_SHORT:-300}
run_one() {
  local t=$1 secs=$short bin rc stats execs
  case $t in ingest | webhook | http_request) secs=$long ;; esac
  bin=build/fuzz/tests/fuzz/${t}_fuzz
  for _ in $(seq 180); do [[ -x $bin ]] && break; sleep 20; done
  echo "$(date -u +%FT%TZ) start $t ${secs}s" >>"$logdir/summary.txt"
  FUZZ_NO_BUILD=1 tests/fuzz/run.sh "$t" "$secs" >"$logdir/$t.log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$logdir/$t.log" | tail -1)
  execs=$(grep -E 'stat::number_of_executed_units' "$logdir/$t.log" | awk '{print $2}')
  echo "$(date -u +%FT%TZ) end $t rc=$rc execs=${execs:-?} $stats" >>"$logdir/summary.txt"
}
if [[ $# -gt 0 ]]; then
  for t in "$@"; do run_one "$t"; done
else
  long_targets=(ingest webhook http_request)
  for t in "${long_targets[@]}"; do run_one "$t"; done
  # The rest is listed only now, so targets added while the long runs went are included.
  for f in tests/fuzz/*_fuzz.cpp; do
    t=$(basename "$f" _fuzz.cpp)
    [[ " ${long_targets[*]} " == *" $t "* ]] || run_one "$t"
  done
fi
echo "$(date -u +%FT%TZ) all done" >>"$logdir/summary.txt"
