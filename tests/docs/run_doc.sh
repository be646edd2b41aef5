#!/usr/bin/env bash
# Executes one documentation page as a test (tests/docs/README.md has the rules for writers).
#
# Usage: tests/docs/run_doc.sh PAGE FACTORYD_DIR SOURCE_DIR [CHECKS]
#   PAGE          a Markdown file, relative to SOURCE_DIR or absolute
#   FACTORYD_DIR  the directory of the built factoryd; put first on PATH
#   SOURCE_DIR    the repository root; the page's commands run from there
#   CHECKS        optional bash file run after the page, in the same shell (what the page
#                 promises beyond its shown outputs, e.g. tests/docs/walkthrough.checks.sh)
#
# 1. Lint: every fenced block must have a language label (```sh, ```text, ```json, ```yaml ...);
#    bash/shell/console blocks must be written as ```sh. An sh block runs unless the last
#    non-blank line before it is `<!-- illustrative: REASON -->` (a non-empty reason).
# 2. Run: every runnable sh block, in page order, in ONE bash shell with `set -euo pipefail`,
#    from SOURCE_DIR, with FACTORYD_DIR first on PATH, FACTORY_DATA_DIR a fresh empty temp dir,
#    TMPDIR a temp dir removed afterwards (with what a page makes by mktemp) and PORT a free
#    TCP port. FACTORY_CONFIG/SERVER/TOKEN/LOG_LEVEL are unset; stdin is /dev/null. A block
#    that starts a daemon in the background stores its pid in FACTORYD_PID: it is killed at the
#    end, and its output (a *.out file under TMPDIR) is shown when a block fails.
# 3. Compare: a ```text block that directly follows a runnable sh block (only blank lines
#    between) is that block's stdout, compared with what the block printed (stderr is not
#    compared, only shown when a block fails). Both sides are normalised first: ISO-8601 times
#    become <TIME>, hex strings of 6+ digits (with a "..." that abbreviates one) become <HEX>,
#    durations (a number and "ms" or "s": "9ms", "1.5 s") become <DURATION>, runs of spaces
#    become one, trailing spaces go. Then the lines must be equal, in order, none missing and
#    none extra, except that an expected line that is exactly "..." stands for any number of
#    lines (also none), and "..." inside an expected line for any text within that line.
# DOC_LINT_ONLY=1 stops after step 1.
# A failure names the page, the block number and its line in the page, the output line, and
# what was expected against what came out.
set -euo pipefail
page=$1 bindir=$2 src=$3 checks=${4:-}
cd "$src"
[ -f "$page" ] || { echo "run_doc: no page $page" >&2; exit 1; }
work=$(mktemp -d /tmp/factoryd-doc.XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1 + script generation: one awk pass. Errors go to $work/lint.
awk -v work="$work" -v page="$page" '
  function flush_text() { if (text_for) { close(work "/" text_for ".expected") } text_for = "" }
  # n: sh blocks so far; on: the block being read (sh, text, skip, other); last: the last prose
  # line (the illustrative marker); prev_block: the block just closed, if only blanks followed.
  BEGIN { n = 0; on = ""; last = ""; prev_block = "" }
  on == "" && /^[ \t]*```/ {
    label = $0; sub(/^[ \t]*```+/, "", label); gsub(/[ \t]+$/, "", label); sub(/[ \t{].*$/, "", label)
    if (label == "") {
      printf "%s:%d: unlabelled code block; label it (sh, text, json, yaml, cpp, ...)\n", page, NR > (work "/lint")
      on = "other"; next
    }
    if (label ~ /^(bash|shell|console|zsh|shell-session)$/) {
      printf "%s:%d: ```%s block; write it as ```sh (run by the docs tests, or marked <!-- illustrative: REASON -->)\n", page, NR, label > (work "/lint")
      on = "other"; next
    }
    if (label == "sh") {
      n++
      if (last ~ /^<!-- illustrative: *[^ ].* -->$/) { on = "skip"; prev_block = "skip"; next }
      if (last ~ /^<!-- illustrative/) {
        printf "%s:%d: illustrative marker without a reason; write <!-- illustrative: REASON -->\n", page, NR > (work "/lint")
      }
      on = "sh"; prev_block = "sh"
      print "begin_block " n " " NR > (work "/body"); next
    }
    if (label == "text" && prev_block == "sh") {
      on = "text"; text_for = n; printf "" > (work "/" n ".expected"); prev_block = "text"; next
    }
    on = "other"; prev_block = label; next
  }
  on != "" && /^[ \t]*```+[ \t]*$/ {
    if (on == "sh") { print "end_block " n > (work "/body") }
    if (on == "text") { flush_text() }
    on = ""; last = ""; next
  }
  on == "sh" { print > (work "/body"); next }
  on == "text" { print > (work "/" text_for ".expected"); next }
  on != "" { next }
  /^[ \t]*$/ { next }
  { last = $0; prev_block = "" }
  END { if (on != "") printf "%s: a code block is not closed\n", page > (work "/lint") }
' "$page"
if [ -s "$work/lint" ]; then
  cat "$work/lint"
  echo "run_doc: $page: fix the blocks above (tests/docs/README.md)"
  exit 1
fi
touch "$work/body"
if [ -n "${DOC_LINT_ONLY:-}" ]; then echo "$page: blocks ok"; exit 0; fi

# A free port: one nothing answers on.
PORT=
for p in $(shuf -i 20000-60000 -n 50); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "run_doc: no free port" >&2; exit 1; }
mkdir "$work/data" "$work/tmp"

{
  echo 'set -euo pipefail'
  printf 'export PATH=%q:"$PATH" PORT=%q FACTORY_DATA_DIR=%q TMPDIR=%q\n' "$bindir" "$PORT" "$work/data" "$work/tmp"
  echo 'unset FACTORY_CONFIG FACTORY_SERVER FACTORY_TOKEN FACTORY_LOG_LEVEL'
  printf 'doc_work=%q doc_page=%q\n' "$work" "$page"
  cat <<'PRELUDE'
doc_normalize() {
  sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/<TIME>/g' -e 's/[0-9a-f]{6,}(\.\.\.)?/<HEX>/g' \
    -e 's/(^|[^0-9A-Za-z_.])[0-9]+(\.[0-9]+)? ?(ms|s)\>/\1<DURATION>/g' \
    -e 's/[[:space:]]+/ /g' -e 's/ $//'
}
# doc_compare N LINE: the block's stdout against the text block shown after it.
doc_compare() {
  local n=$1 line=$2
  [ -f "$doc_work/$n.expected" ] || return 0
  doc_normalize < "$doc_work/$n.expected" > "$doc_work/$n.want"
  doc_normalize < "$doc_work/$n.out" > "$doc_work/$n.got"
  if ! awk -v page="$doc_page" -v n="$n" -v line="$line" '
      function glob(s,   r, parts, k, m) {   # "..." inside a line: any text
        m = split(s, parts, /\.\.\./); r = ""
        for (k = 1; k <= m; k++) { gsub(/[][\\^$.|?*+(){}]/, "\\\\&", parts[k]); r = r (k > 1 ? ".*" : "") parts[k] }
        return "^" r "$"
      }
      function ok(w, g) { return index(w, "...") ? (g ~ glob(w)) : (w == g) }
      function fail(msg) {
        printf "FAIL %s block %d (page line %d): %s\n", page, n, line, msg; bad = 1; exit 1
      }
      FNR == NR { want[++W] = $0; next }
      { got[++G] = $0 }
      END {
        if (bad) exit 1
        i = 1; j = 1
        while (i <= W) {
          if (want[i] == "...") {
            if (i == W) { j = G + 1; i++; continue }
            while (j <= G && !ok(want[i + 1], got[j])) j++
            if (j > G) fail(sprintf("expected line %d not found after \"...\": \"%s\"", i + 1, want[i + 1]))
            i++; continue
          }
          if (j > G) fail(sprintf("output ended; expected line %d: \"%s\"", i, want[i]))
          if (!ok(want[i], got[j])) fail(sprintf("output line %d: expected \"%s\", got \"%s\"", j, want[i], got[j]))
          i++; j++
        }
        if (j <= G) fail(sprintf("output line %d is not shown on the page: \"%s\"", j, got[j]))
      }' "$doc_work/$n.want" "$doc_work/$n.got"; then
    echo "  expected (normalised):"; sed 's/^/    | /' "$doc_work/$n.want"
    echo "  got (normalised):";      sed 's/^/    | /' "$doc_work/$n.got"
    doc_failed=1
    exit 1
  fi
}
doc_cleanup() {
  local rc=$?
  exec 1>&3 2>&4
  if [ -n "${doc_block:-}" ] && [ -z "${doc_failed:-}" ]; then
    echo "FAIL $doc_page block $doc_block (page line $doc_line): exited with $rc"
    echo "  stdout:"; sed 's/^/    | /' "$doc_work/$doc_block.out"
    echo "  stderr:"; sed 's/^/    | /' "$doc_work/$doc_block.err"
    # A page's daemon writes its output to a *.out file under TMPDIR (the walkthrough's way).
    find "$TMPDIR" -maxdepth 2 -name '*.out' -exec tail -n 20 {} + 2> /dev/null | sed 's/^/  daemon | /'
  fi
  # Only a daemon this shell started and has not reaped: a pid the page already waited for may
  # belong to someone else's process by now.
  if [ -n "${FACTORYD_PID:-}" ] && jobs -p | grep -qx "$FACTORYD_PID"; then
    kill -9 "$FACTORYD_PID" 2>/dev/null || true
    wait "$FACTORYD_PID" 2>/dev/null || true
  fi
}
exec 3>&1 4>&2
trap doc_cleanup EXIT
PRELUDE
  # Each block's stdout and stderr go to files (the page's variables must live on in this shell,
  # so no pipe); stdout is shown once the block is done.
  awk '
    /^begin_block / { n = $2; line = $3
      print "doc_block=" n " doc_line=" line
      print "echo \"--- block " n " (line " line ") ---\""
      print "exec >\"$doc_work/" n ".out\" 2>\"$doc_work/" n ".err\""; next }
    /^end_block / { print "exec 1>&3 2>&4"; print "cat \"$doc_work/" $2 ".out\""
      print "[ -z \"$(tail -c 1 \"$doc_work/" $2 ".out\")\" ] || echo"   # a last line without newline
      print "doc_compare " n " " line; print "doc_block="; next }
    { print }
  ' "$work/body"
  if [ -n "$checks" ]; then
    echo 'echo "--- checks ---"'
    echo 'doc_block=checks doc_line=0'
    echo 'exec >"$doc_work/checks.out" 2>"$doc_work/checks.err"'
    cat "$checks"
    echo 'exec 1>&3 2>&4; cat "$doc_work/checks.out"; doc_block='
  fi
  echo 'echo "$doc_page ok"'
} > "$work/script.sh"
# The page's blocks may read stdin only from their own here-documents.
bash "$work/script.sh" < /dev/null
