#!/usr/bin/env bash
# Runs docs/ci/factory-ci.sh — the script docs/ci.md's CI jobs run — on its example project
# (docs/ci/example) against the built factoryd and plugin, as a team's CI would, and checks its
# outcome:
#   1. the example as shipped: exit 0, and the JUnit reports parse: the DAG test's with one test
#      case per task, the script's own (factory-ci.xml) with one per step;
#   2. a broken fixture (a ticket that is not JSON, which the plugin dead-letters): exit 1, and
#      `run --fail-on dlq` named the dead-letter topic;
#   3. a wrong expectation: exit 1, naming the topic;
#   4. a DAG test whose task fails with a hostile error (markup, control characters): exit 1,
#      and the report is still well-formed XML carrying the error.
# XML is parsed with Python's expat (xml.etree), which rejects any malformed document.
# Usage: tests/docs/run_ci_script.sh SOURCE_DIR FACTORYD PLUGIN_DIR
set -euo pipefail
src=$1 factoryd=$2 plugin_dir=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/factory-ci-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset FACTORY_DATA_DIR FACTORY_CONFIG FACTORY_SERVER FACTORY_TOKEN FACTORY_LOG_LEVEL

fail() { echo "run_ci_script: FAIL: $*" >&2; exit 1; }

# A copy of the example project whose pipeline loads the plugin from this build.
project() {
  local dir=$work/$1
  cp -r "$src/docs/ci/example" "$dir"
  sed -i "s|^plugins: .*|plugins: [$plugin_dir]|" "$dir/config/pipelines/shout.yaml"
  grep -q "^plugins: \[$plugin_dir\]" "$dir/config/pipelines/shout.yaml" || fail "plugins line"
  echo "$dir"
}

# factory-ci.sh on PROJECT with a fresh data dir; its exit code in $rc, stderr in $work/NAME.err.
run_script() {
  local name=$1 dir=$2
  mkdir -p "$work/$name.data"
  set +e
  FACTORYD=$factoryd REPORT_DIR=$work/$name.reports FACTORY_DATA_DIR=$work/$name.data IDLE_MS=300 \
    bash "$src/docs/ci/factory-ci.sh" "$dir" > "$work/$name.out" 2> "$work/$name.err"
  rc=$?
  set -e
  echo "--- factory-ci.sh ($name): exit $rc" >&2
  cat "$work/$name.err" >&2
}

# junit FILE: prints "tests failures errors skipped testcases" after a strict parse.
junit() {
  python3 - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
cases = list(root.iter("testcase"))
print(root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped"), len(cases))
EOF
}

# 1. As shipped.
ok=$(project ok)
run_script ok "$ok"
[ "$rc" -eq 0 ] || fail "the example project: exit $rc, expected 0"
report=$work/ok.reports/dags-test-announce.xml
[ -f "$report" ] || fail "no JUnit report at $report"
[ "$(junit "$report")" = "2 0 0 0 2" ] || fail "report counts: $(junit "$report")"
grep -q "3 records as expected" "$work/ok.err" || fail "the output topic was not checked"
grep -q "3 DAG runs, all success" "$work/ok.err" || fail "the DAG runs were not checked"
# The steps' report: dags check, dags test, topics apply, produce, run, topic, runs.
[ "$(junit "$work/ok.reports/factory-ci.xml")" = "7 0 0 0 7" ] ||
  fail "step report counts: $(junit "$work/ok.reports/factory-ci.xml")"

# 2. A fixture the plugin cannot read.
broken=$(project broken)
echo 'not json' >> "$broken/fixtures/tickets.jsonl"
run_script broken "$broken"
[ "$rc" -ne 0 ] || fail "a broken fixture: exit 0, expected non-zero"
grep -q "factoryd: error: --fail-on dlq: 1 dead letter on 'tickets.dlq' (binding 'shout')" \
  "$work/broken.err" || fail "run did not name the dead letter"
[ "$(junit "$work/broken.reports/dags-test-announce.xml")" = "2 0 0 0 2" ] ||
  fail "the DAG test should still pass"
[ "$(junit "$work/broken.reports/factory-ci.xml")" = "7 1 0 0 7" ] ||
  fail "broken step report counts: $(junit "$work/broken.reports/factory-ci.xml")"
python3 - "$work/broken.reports/factory-ci.xml" <<'EOF' || fail "broken step report content"
import sys, xml.etree.ElementTree as ET
failed = [(c.get("name"), c.find("failure").get("message"))
          for c in ET.parse(sys.argv[1]).getroot().iter("testcase") if c.find("failure") is not None]
assert failed == [("run --fail-on dlq,failed-run",
                   "factoryd: error: --fail-on dlq: 1 dead letter on 'tickets.dlq' (binding "
                   "'shout'); see them with 'factoryd dlq list tickets.dlq'")], failed
EOF

# 3. An expectation the pipeline does not meet.
wrong=$(project wrong)
sed -i 's/FIX LOGIN/FIX LOGOUT/' "$wrong/expected/tickets-shouted.jsonl"
run_script wrong "$wrong"
[ "$rc" -ne 0 ] || fail "a wrong expectation: exit 0, expected non-zero"
grep -q "FAILED: topic tickets-shouted" "$work/wrong.err" || fail "the topic was not named"

# 4. A DAG test whose task fails with a hostile error.
hostile=$(project hostile)
cat > "$hostile/config/dags/hostile.yaml" <<'EOF'
dag_id: hostile
tasks:
  ok: {stage: noop}
  boom:
    stage: exec
    upstream: [ok]
    params:
      command: [sh, -c, "printf '</failure><x a=\"1\"/> & \\001\\033[31m ]]> end' >&2; exit 3"]
  after: {stage: noop, upstream: [boom]}
EOF
echo '{"evil": "\"/><y>&\u0001 ]]>"}' > "$hostile/dag-tests/hostile.json"
run_script hostile "$hostile"
[ "$rc" -ne 0 ] || fail "a failing DAG test: exit 0, expected non-zero"
report=$work/hostile.reports/dags-test-hostile.xml
[ "$(junit "$report")" = "3 1 0 1 3" ] || fail "hostile report counts: $(junit "$report")"
[ "$(junit "$work/hostile.reports/factory-ci.xml")" = "8 1 0 0 8" ] ||
  fail "hostile step report counts: $(junit "$work/hostile.reports/factory-ci.xml")"
python3 - "$report" <<'EOF' || fail "hostile report content"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
(case,) = [c for c in root.iter("testcase") if c.get("name") == "boom"]
assert case.get("classname") == "hostile", case.attrib
msg = case.find("failure").get("message")
want = "exec: 'sh' failed with exit code 3; stderr: </failure><x a=\"1\"/> & [31m ]]> end"
assert msg == want, repr(msg)
(after,) = [c for c in root.iter("testcase") if c.get("name") == "after"]
assert after.find("skipped") is not None
conf = [p.get("value") for p in root.iter("property") if p.get("name") == "conf"]
assert conf == ['{"evil": "\\"/><y>&\\u0001 ]]>"}'], conf
EOF
echo "run_ci_script: ok" >&2
