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
# one job shows every problem; the script exits 1 if any step failed, else 0. Besides the DAG
# tests' reports, $REPORT_DIR/factory-ci.xml has one JUnit test case per step (a failed step's
# stderr is its failure text), so a CI system shows a pipeline failure as a failed test too.
#
# Environment:
#   FACTORYD          the factoryd binary (default: factoryd on PATH)
#   REPORT_DIR        where the reports go (default: factory-reports)
#   IDLE_MS           run --exit-when-idle (default: 1000)
#   DAG_TEST_TIMEOUT  dags test --timeout (default: 10m; a hung DAG test should not use up the job)
#   FACTORY_DATA_DIR  the data dir; default: a fresh temporary one, removed at exit
# Needs bash 5 and python3 (the JSON checks and the step report).
set -uo pipefail

project=${1:?usage: factory-ci.sh PROJECT_DIR}
factoryd=${FACTORYD:-factoryd}
report_dir=${REPORT_DIR:-factory-reports}
idle_ms=${IDLE_MS:-1000}
dag_test_timeout=${DAG_TEST_TIMEOUT:-10m}
config=(--config-dir "$project/config")  # the config directory
export FACTORY_LOG_LEVEL=${FACTORY_LOG_LEVEL:-warn}

work=$(mktemp -d "${TMPDIR:-/tmp}/factory-ci.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "${FACTORY_DATA_DIR:-}" ]; then
  FACTORY_DATA_DIR=$work/data
fi
export FACTORY_DATA_DIR
mkdir -p "$report_dir"

failed=0
say() { echo "factory-ci: $*" >&2; }

# check NAME COMMAND...: runs one step, shows its stderr, and records the outcome for the step
# report. A failed step marks the job failed; the next steps still run.
check() {
  local name=$1 n start status=passed
  shift
  n=$(wc -l < "$work/steps" 2> /dev/null || echo 0)
  start=$EPOCHREALTIME
  say "$name"
  "$@" 2> "$work/step$n.err" || status=failed
  cat "$work/step$n.err" >&2
  if [ "$status" = failed ]; then
    say "FAILED: $name"
    failed=1
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$start" "$EPOCHREALTIME" \
    "$work/step$n.err" >> "$work/steps"
}

produce_fixture() { "$factoryd" produce "$1" < "$2"; }

# expect_topic TOPIC FILE: TOPIC holds exactly the JSON values of FILE, in any order.
expect_topic() {
  "$factoryd" consume "$1" -e --output json > "$report_dir/$1.jsonl" || return 1
  python3 - "$2" "$report_dir/$1.jsonl" <<'PY'
import json, sys
canon = lambda v: json.dumps(v, sort_keys=True)
expected = sorted(canon(json.loads(l)) for l in open(sys.argv[1]) if l.strip())
got = []
for line in open(sys.argv[2]):
    if not line.strip():
        continue
    value = json.loads(line)["value"]
    try:
        got.append(canon(json.loads(value)))
    except (TypeError, ValueError):
        got.append(json.dumps(value))  # not JSON: compared as the raw string
got.sort()
if got != expected:
    missing = [v for v in expected if v not in got]
    extra = [v for v in got if v not in expected]
    print(f"{len(got)} records, expected {len(expected)}; missing: {missing}; unexpected: {extra}",
          file=sys.stderr)
    sys.exit(1)
print(f"factory-ci: {len(got)} records as expected", file=sys.stderr)
PY
}

# expect_runs_succeeded: every DAG run in the data dir ended `success`.
expect_runs_succeeded() {
  "$factoryd" runs list -o json > "$report_dir/runs.json" || return 1
  python3 - "$report_dir/runs.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
bad = [f'{r["dag_id"]}/{r["run_id"]}: {r["state"]}' for r in runs if r["state"] != "success"]
if bad:
    print("runs not successful: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"factory-ci: {len(runs)} DAG runs, all success", file=sys.stderr)
PY
}

# 1. The DAG files and pipelines load (plugins, stages, templates, cron).
if [ -d "$project/config/dags" ]; then
  check "dags check" "$factoryd" dags check "${config[@]}"
fi

# 2. Each DAG test: the whole DAG in-process on a scratch data dir, with its own JUnit report.
for conf in "$project"/dag-tests/*.json; do
  [ -e "$conf" ] || continue
  dag=$(basename "$conf" .json)
  check "dags test $dag" "$factoryd" dags test "$dag" -c "$(cat "$conf")" "${config[@]}" \
    --timeout "$dag_test_timeout" --junit "$report_dir/dags-test-$dag.xml"
done

# 3. The pipelines on the fixtures, until every binding and DAG run is idle.
if [ -f "$project/config/topics.yaml" ]; then
  check "topics apply" "$factoryd" topics apply -f "$project/config/topics.yaml"
fi
for fixture in "$project"/fixtures/*.jsonl; do
  [ -e "$fixture" ] || continue
  topic=$(basename "$fixture" .jsonl)
  check "produce $topic" produce_fixture "$topic" "$fixture"
done
check "run --fail-on dlq,failed-run" \
  "$factoryd" run "${config[@]}" --exit-when-idle "$idle_ms" --fail-on dlq,failed-run

# 4. What the output topics hold, and how the DAG runs ended.
for expected in "$project"/expected/*.jsonl; do
  [ -e "$expected" ] || continue
  topic=$(basename "$expected" .jsonl)
  check "topic $topic" expect_topic "$topic" "$expected"
done
check "runs succeeded" expect_runs_succeeded

# 5. The steps as a JUnit report beside the DAG tests' reports.
python3 - "$work/steps" "$report_dir/factory-ci.xml" <<'PY' || failed=1
import os, re, sys, xml.etree.ElementTree as ET
# Characters XML 1.0 forbids (a step's stderr may hold terminal escapes); ElementTree escapes
# the markup characters itself.
forbidden = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
clean = lambda s: forbidden.sub("", s)
suite = ET.Element("testsuite", name="factory-ci")
failures, total = 0, 0.0
for line in open(sys.argv[1]):
    name, status, start, end, err = line.rstrip("\n").split("\t")
    secs = float(end) - float(start)
    total += secs
    case = ET.SubElement(suite, "testcase", classname="factory-ci", name=clean(name),
                         time=f"{secs:.3f}")
    text = clean(open(err, errors="replace").read())
    if status == "failed":
        failures += 1
        lines = [l for l in text.splitlines() if l.strip()]
        ET.SubElement(case, "failure", message=lines[-1] if lines else "failed").text = text
    elif text:
        ET.SubElement(case, "system-err").text = text
root = ET.Element("testsuites", name="factory-ci")
root.append(suite)
for el in (root, suite):
    el.set("tests", str(len(suite)))
    el.set("failures", str(failures))
    el.set("errors", "0")
    el.set("skipped", "0")
    el.set("time", f"{total:.3f}")
tmp = sys.argv[2] + ".tmp"
ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
os.replace(tmp, sys.argv[2])
PY

if [ "$failed" -ne 0 ]; then
  say "FAILED (reports in $report_dir)"
  exit 1
fi
say "passed (reports in $report_dir)"
