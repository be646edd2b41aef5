#!/usr/bin/env bash
# Tests tests/docs/run_doc.sh on small pages: what must pass passes, and each way a page can be
# wrong (a wrong output — a 401 shown where 202 comes back —, an extra or missing output line, an
# unlabelled block, a ```bash block, an illustrative marker without a reason, a failing command)
# fails with the page, block and line named.
# Usage: tests/docs/run_doc_test.sh FACTORYD_DIR
set -euo pipefail
bindir=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/factoryd-doc-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fence='```'
failures=0

# expect PASS|FAIL NAME [PATTERN]: runs the page $dir/NAME.md; for FAIL, the output must match PATTERN.
expect() {
  local want=$1 name=$2 pattern=${3:-} out rc=0
  out=$(bash "$here/run_doc.sh" "$dir/$name.md" "$bindir" "$dir" 2>&1) || rc=$?
  if [ "$want" = PASS ] && [ $rc -ne 0 ]; then
    echo "not ok: $name should pass; got:"; echo "$out"; failures=$((failures + 1)); return
  fi
  if [ "$want" = FAIL ] && { [ $rc -eq 0 ] || ! grep -qE -- "$pattern" <<<"$out"; }; then
    echo "not ok: $name should fail with /$pattern/; rc $rc, got:"; echo "$out"; failures=$((failures + 1)); return
  fi
  echo "ok: $name"
}

cat > "$dir/good.md" <<EOF2
# good
${fence}sh
printf 'status 202\n2026-12-08T01:54:57.310Z  f68cf89df232ac67  took 12ms\n'
x=kept
${fence}

${fence}text
status 202
2020-01-01T00:00:00.000Z f68cf8... took 3 ms
${fence}

<!-- illustrative: needs a Kafka cluster -->
${fence}sh
exit 7
${fence}

${fence}sh
echo "\$x"; echo more; echo "the end of a long line"; factoryd --version > /dev/null
${fence}

${fence}text
kept
...
the end of ... line
${fence}

${fence}json
{"not": "run"}
${fence}
EOF2
expect PASS good

printf '%ssh\necho 202\n%s\n\n%stext\n401\n%s\n' "$fence" "$fence" "$fence" "$fence" > "$dir/wrong.md"
expect FAIL wrong 'wrong.md block 1 \(page line 1\): output line 1: expected "401", got "202"'

printf '%ssh\necho a; echo b\n%s\n\n%stext\na\n%s\n' "$fence" "$fence" "$fence" "$fence" > "$dir/extra.md"
expect FAIL extra 'block 1 .*output line 2 is not shown on the page: "b"'

printf 'x\n\n%ssh\necho a\n%s\n%stext\na\nb\n%s\n' "$fence" "$fence" "$fence" "$fence" > "$dir/missing.md"
expect FAIL missing 'block 1 \(page line 3\): output ended; expected line 2: "b"'

printf 'text\n\n%s\nfactoryd topics list\n%s\n' "$fence" "$fence" > "$dir/unlabelled.md"
expect FAIL unlabelled 'unlabelled.md:3: unlabelled code block'

printf '%sbash\nls\n%s\n' "$fence" "$fence" > "$dir/bash.md"
expect FAIL bash 'bash.md:1: ```bash block; write it as ```sh'

printf '<!-- illustrative: -->\n%ssh\nls\n%s\n' "$fence" "$fence" > "$dir/noreason.md"
expect FAIL noreason 'noreason.md:2: illustrative marker without a reason'

printf '%ssh\necho one\n%s\n\n%ssh\necho two; false\necho never\n%s\n' "$fence" "$fence" "$fence" "$fence" > "$dir/failing.md"
expect FAIL failing 'failing.md block 2 \(page line 5\): exited with 1'

# A daemon the page leaves running is killed at the end.
printf '%ssh\nsleep 300 &\nFACTORYD_PID=$!\necho "$FACTORYD_PID" > "$PWD/daemon.pid"\n%s\n' "$fence" "$fence" > "$dir/daemon.md"
expect PASS daemon
if kill -0 "$(cat "$dir/daemon.pid")" 2>/dev/null; then
  echo "not ok: the page's daemon still runs"; kill "$(cat "$dir/daemon.pid")"; failures=$((failures + 1))
else
  echo "ok: daemon killed"
fi

[ $failures -eq 0 ] || { echo "$failures run_doc test(s) failed"; exit 1; }
echo "run_doc tests ok"
