#!/usr/bin/env bash
# factory-ci.sh: test a factoryd project offline, as a CI job step (docs/ci.md).
#
# Usage: factory-ci.sh PROJECT_DIR
#
# PROJECT_DIR holds (only config/ is required):
#   config/               the config directory: topics.yaml, pipelines/*.yaml, dags/*.yaml
#   dag-tests/DAG.json    `factoryd dags test DAG` with this file as the run's conf; each writes
#                         a JUnit report, $REPORT_DIR/dags-test-DAG.xml
#   fixtures/TOPIC.jsonl  records produced to TOPIC before the pipelines run, one per line
#   expected/TOPIC.jsonl  the JSON values TOPIC must hold after the run, one per line (compared
#                         as a multiset: partitions interleave, so their order is not checked)
#
# Steps: dags check; each dags test (JUnit); on a fresh data dir: topics apply, produce the
# fixtures, `run --exit-when-idle --fail-on dlq,failed-run` (exits 1 on a dead letter or a
# failed DAG run), compare each expected topic (`consume --output json`), and require every DAG
# run to have succeeded (`runs list -o json`). A failing step does not stop the later ones, so
# one job shows every problem; the script exits 1 if any step failed, else 0.
#
# Environment:
#   FACTORYD          the factoryd binary (default: factoryd on PATH)
#   REPORT_DIR        where the JUnit reports go (default: factory-reports)
#   IDLE_MS           run --exit-when-idle (default: 1000)
#   FACTORY_DATA_DIR  the data dir; default: a fresh temporary one, removed at exit
# Needs bash and python3 (for the JSON checks).
set -uo pipefail

project=${1:?usage: factory-ci.sh PROJECT_DIR}
factoryd=${FACTORYD:-factoryd}
report_dir=${REPORT_DIR:-factory-reports}
idle_ms=${IDLE_MS:-1000}
config=(--config "$project/config")  # the config directory; factoryd >= issue 14: --config-dir
export FACTORY_LOG_LEVEL=${FACTORY_LOG_LEVEL:-warn}

if [ -z "${FACTORY_DATA_DIR:-}" ]; then
  FACTORY_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/factory-ci.XXXXXX")
  trap 'rm -rf "$FACTORY_DATA_DIR"' EXIT
fi
export FACTORY_DATA_DIR
mkdir -p "$report_dir"

failed=0
step() { echo "factory-ci: $*" >&2; }
fail() { echo "factory-ci: FAILED: $*" >&2; failed=1; }

# 1. The DAG files and pipelines load (plugins, stages, templates, cron).
if [ -d "$project/config/dags" ]; then
  step "dags check"
  "$factoryd" dags check "${config[@]}" || fail "dags check"
fi

# 2. Each DAG test: the whole DAG in-process on a scratch data dir, one JUnit test case per task.
for conf in "$project"/dag-tests/*.json; do
  [ -e "$conf" ] || continue
  dag=$(basename "$conf" .json)
  step "dags test $dag"
  "$factoryd" dags test "$dag" -c "$(cat "$conf")" "${config[@]}" \
    --junit "$report_dir/dags-test-$dag.xml" || fail "dags test $dag"
done

# 3. The pipelines on the fixtures, until every binding and DAG run is idle.
if [ -f "$project/config/topics.yaml" ]; then
  step "topics apply"
  "$factoryd" topics apply -f "$project/config/topics.yaml" || fail "topics apply"
fi
for fixture in "$project"/fixtures/*.jsonl; do
  [ -e "$fixture" ] || continue
  topic=$(basename "$fixture" .jsonl)
  step "produce $topic < $fixture"
  "$factoryd" produce "$topic" < "$fixture" || fail "produce $topic"
done
step "run --exit-when-idle $idle_ms --fail-on dlq,failed-run"
"$factoryd" run "${config[@]}" --exit-when-idle "$idle_ms" --fail-on dlq,failed-run ||
  fail "run (dead letters or failed runs: see the errors above)"

# 4. What the output topics hold.
for expected in "$project"/expected/*.jsonl; do
  [ -e "$expected" ] || continue
  topic=$(basename "$expected" .jsonl)
  step "consume $topic --output json (against $expected)"
  "$factoryd" consume "$topic" -e --output json > "$report_dir/$topic.jsonl" &&
    python3 - "$expected" "$report_dir/$topic.jsonl" <<'EOF' || fail "topic $topic"
import json, sys
canon = lambda v: json.dumps(v, sort_keys=True)
expected = sorted(canon(json.loads(l)) for l in open(sys.argv[1]) if l.strip())
records = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
got = []
for r in records:
    try:
        got.append(canon(json.loads(r["value"])))
    except (TypeError, ValueError):
        got.append(json.dumps(r["value"]))  # not JSON: compared as the raw string
got.sort()
if got != expected:
    missing = [v for v in expected if v not in got]
    extra = [v for v in got if v not in expected]
    print(f"{len(got)} records, expected {len(expected)}; missing: {missing}; unexpected: {extra}",
          file=sys.stderr)
    sys.exit(1)
print(f"factory-ci: {len(got)} records as expected", file=sys.stderr)
EOF
done

# 5. Every DAG run the fixtures started succeeded.
step "runs list -o json"
"$factoryd" runs list -o json > "$report_dir/runs.json" &&
  python3 - "$report_dir/runs.json" <<'EOF' || fail "DAG runs"
import json, sys
runs = json.load(open(sys.argv[1]))
bad = [f'{r["dag_id"]}/{r["run_id"]}: {r["state"]}' for r in runs if r["state"] != "success"]
if bad:
    print("runs not successful: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"factory-ci: {len(runs)} DAG runs, all success", file=sys.stderr)
EOF

if [ "$failed" -ne 0 ]; then
  step "FAILED (reports in $report_dir)"
  exit 1
fi
step "passed (reports in $report_dir)"
