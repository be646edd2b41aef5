#!/usr/bin/env bash
# Executes a walkthrough page: every ```sh block of DOC, in order, in one bash shell with
# `set -euo pipefail`, from the repository root, with FACTORYD_DIR first on PATH and PORT set to
# a free port. Then checks what the page promises (CHECKS below) and stops the daemon it
# started if the page did not.
# Usage: tests/docs/run_walkthrough.sh DOC FACTORYD_DIR SOURCE_DIR
set -euo pipefail
doc=$1 bindir=$2 src=$3
cd "$src"
script=$(mktemp /tmp/factoryd-walkthrough.XXXXXX.sh)
trap 'rm -f "$script"' EXIT

# A free port: one nothing answers on.
PORT=
for p in $(shuf -i 20000-60000 -n 50 --random-source=<(yes)); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "run_walkthrough: no free port" >&2; exit 1; }

{
  echo 'set -euo pipefail'
  echo "export PATH=\"$bindir:\$PATH\" PORT=$PORT"
  echo 'unset FACTORY_CONFIG FACTORY_SERVER FACTORY_TOKEN FACTORY_LOG_LEVEL'
  echo 'cleanup() { if [ -n "${FACTORYD_PID:-}" ]; then kill -9 "$FACTORYD_PID" 2>/dev/null || true; fi; rm -rf "${FACTORY_DATA_DIR:-/nonexistent}" "${FACTORY_DATA_DIR:-/nonexistent}.out"; }'
  echo 'trap cleanup EXIT'
  # The page's blocks.
  awk '/^```sh$/ { on = 1; print "echo \"--- block " ++n " ---\""; next } /^```/ { on = 0; next } on' "$doc"
  # What the page promises, checked after it ran.
  cat <<'CHECKS'
echo "--- checks ---"
[ "$(factoryd runs list -o json --data-dir "$FACTORY_DATA_DIR" | grep -o '"state":"success"' | wc -l)" = 1 ] \
  || { echo "expected exactly one successful run"; exit 1; }
factoryd audit list --data-dir "$FACTORY_DATA_DIR" | grep -q 'approval.approve' \
  || { echo "expected the approval in the audit log"; exit 1; }
factoryd consume jira-events --data-dir "$FACTORY_DATA_DIR" -e -f '%k\n' | grep -c 72d3162e | grep -qx 1 \
  || { echo "expected exactly one record for the delivery (the replay must add none)"; exit 1; }
[ -L "$FACTORY_DATA_DIR/factory/releases/invoices/current" ] \
  || { echo "expected a deployed release (current link)"; exit 1; }
echo "walkthrough ok"
CHECKS
} > "$script"
bash "$script"
