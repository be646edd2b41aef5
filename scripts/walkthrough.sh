#!/usr/bin/env bash
# A short tour: apply the article's topics, produce sample tickets, consume them through a
# consumer group and watch its lag; then run the article's DAG with the scheduler.
# Usage: scripts/walkthrough.sh [PATH_TO_FACTORYD]
set -euo pipefail
cd "$(dirname "$0")/.."
factoryd=${1:-build/release/src/cli/factoryd}
data=$(mktemp -d /tmp/factoryd-walkthrough.XXXXXX)
export FACTORY_DATA_DIR=$data
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "factoryd log walkthrough (data dir: $data)"
step "$factoryd" topics apply -f config/topics.yaml
step "$factoryd" topics describe feature-specs
echo
echo "\$ $factoryd produce jira-events -K '|' --acks < config/samples/jira-events.txt"
"$factoryd" produce jira-events -K '|' --acks < config/samples/jira-events.txt
step "$factoryd" consume jira-events -g ingest -e -f 'partition %p offset %o key %k: %s\n'
step "$factoryd" groups describe ingest
echo
echo "\$ printf 'PROJ-106|{...}\\nPROJ-107|{...}\\n' | $factoryd produce jira-events -K '|'"
printf 'PROJ-106|{"issue":"PROJ-106","event":"jira:issue_created"}\nPROJ-107|{"issue":"PROJ-107","event":"jira:issue_created"}\n' |
  "$factoryd" produce jira-events -K '|'
step "$factoryd" groups describe ingest
step "$factoryd" groups reset-offsets ingest --topic jira-events --to-earliest
step "$factoryd" groups reset-offsets ingest --topic jira-events --to-earliest --execute
step "$factoryd" consume jira-events -p 1 -o -2 -e -f '%p/%o %T %k %s\n'
echo
echo "The article's DAG (ingest -> codegen -> gate -> deploy; noop stands in for the agents"
echo "until they land), run in-process by the scheduler:"
step "$factoryd" dags test software_factory_pipeline --config-dir config -c '{"issue":"PROJ-101","title":"CSV export"}'
echo
echo "Data is in $data (remove it with: rm -rf $data)"
