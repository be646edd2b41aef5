#!/usr/bin/env bash
# Executes a walkthrough page: every ```sh block of DOC, in order, in one bash shell with
# `set -euo pipefail`, from the repository root, with FACTORYD_DIR first on PATH and PORT set to
# a free port. Then checks what the page promises (CHECKS below) and stops the daemon it
# started if the page did not.
#
# The ```text block after an sh block is the output the page shows for it, and is compared with
# what the block printed: each of its lines must appear in the output, in order (other output
# lines may come between; a "..." line stands for more). Before comparing, both sides get
# ISO-8601 times replaced by <TIME>, hex strings of 6+ digits (with a trailing "..." that
# abbreviates one) by <HEX>, and runs of spaces collapsed, since ids and times differ.
# Usage: tests/docs/run_walkthrough.sh DOC FACTORYD_DIR SOURCE_DIR
set -euo pipefail
doc=$1 bindir=$2 src=$3
cd "$src"
script=$(mktemp /tmp/factoryd-walkthrough.XXXXXX.sh)
outdir=$(mktemp -d /tmp/factoryd-walkthrough.XXXXXX.out)
trap 'rm -rf "$script" "$outdir"' EXIT

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
  echo "outdir=$outdir"
  # A block's stdout goes to its file (the page's variables must live on in this shell, so no
  # pipe) and is shown once the block is done, or by cleanup when the block failed.
  echo 'cleanup() { exec 1>&3; if [ -n "${block:-}" ]; then cat "$outdir/$block.out"; fi; if [ -n "${FACTORYD_PID:-}" ]; then kill -9 "$FACTORYD_PID" 2>/dev/null || true; fi; rm -rf "${FACTORY_DATA_DIR:-/nonexistent}" "${FACTORY_DATA_DIR:-/nonexistent}.out"; }'
  echo 'exec 3>&1'
  echo 'trap cleanup EXIT'
  # The page's blocks, and the output each is shown with, written to $outdir/N.expected.
  awk -v outdir="$outdir" '
    /^```sh$/ { on = "sh"; n++; print "echo \"--- block " n " ---\""; print "block=" n; print "exec >\"$outdir/" n ".out\""; next }
    /^```text$/ { on = "text"; expected = outdir "/" n ".expected"; printf "" > expected; next }
    /^```/ { if (on == "sh") { print "exec 1>&3"; print "cat \"$outdir/" n ".out\""; print "block=" } on = ""; next }
    on == "sh" { print }
    on == "text" { print >> expected }
  ' "$doc"
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
# The outputs the page shows, against what its blocks printed.
normalize() {
  sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/<TIME>/g' -e 's/[0-9a-f]{6,}(\.\.\.)?/<HEX>/g' \
    -e 's/ +/ /g' -e 's/ $//'
}
shown=0
for expected in "$outdir"/*.expected; do
  n=$(basename "$expected" .expected)
  normalize < "$expected" | grep -vx '\.\.\.' > "$outdir/$n.want"
  normalize < "$outdir/$n.out" > "$outdir/$n.got"
  if ! awk 'FNR == NR { want[++w] = $0; next } i < w && $0 == want[i + 1] { i++ }
            END { if (i < w) { print "  missing: " want[i + 1]; exit 1 } }' \
      "$outdir/$n.want" "$outdir/$n.got"; then
    echo "block $n printed output the page does not show (normalized; expected lines in order):"
    sed 's/^/  want: /' "$outdir/$n.want"
    sed 's/^/  got:  /' "$outdir/$n.got"
    exit 1
  fi
  shown=$((shown + 1))
done
[ "$shown" -ge 5 ] || { echo "expected the page to show the output of 5+ blocks, found $shown"; exit 1; }
echo "walkthrough ok"
CHECKS
} > "$script"
bash "$script"
