#!/usr/bin/env bash
# Docs are tested: every ```sh block of README.md and assets/README.md runs
# here as written, one block per test, stopping at its first failing line.
# Blocks that need the kept demo get one on this test's own ports
# (FM_PORT_BASE + 40 ..) and folder: `make demo ARGS=--keep` runs as
# `deploy/local/demo --no-build --keep` (the programs are built already),
# the paths var/demo/ and /tmp/ of a block are mapped into this test's
# folder, so a demo of your own is never touched, and $PWD/bin to the
# programs under test (FM_BIN: the sanitizer build under `make check`). `make demo` and
# `make test` of "Two commands" are what tests/e2e/demo_test.sh and CI run.
# A code block must say what it is: ```sh (runs here) or ```text.
set -uo pipefail
: "${FM_TOP:?}" "${FM_BIN:?}" "${FM_PORT_BASE:?}"
top=$FM_TOP
work=$(mktemp -d /tmp/fm_docs_XXXXXX)
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }

export FM_DEMO_PORT_BASE=$((FM_PORT_BASE + 40))
export FM_DEMO_VAR=$work/demo
export FM_DEMO_BIN=$FM_BIN
# A user's shell has none of the test stack's settings.
for v in $(compgen -e | grep -E '^FEDMARKET_'); do unset "$v"; done
cleanup() {
  "$top/deploy/local/demo" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# Blocks as records: FILE LINE LANG, then the text, NUL-terminated.
python3 - "$top" README.md assets/README.md >"$work/blocks" <<'EOF'
import re, sys
top = sys.argv[1]
for rel in sys.argv[2:]:
    lines = open(f"{top}/{rel}").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if m:
            start, lang, body = i + 1, m.group(1) or "-", []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            sys.stdout.write(f"{rel} {start} {lang}\n" + "\n".join(body) + "\0")
        elif re.match(r"^    \S", lines[i]) and (i == 0 or not lines[i - 1].strip()) \
                and not re.match(r"^\s*([-*|]|\d+\.)", lines[i - 2] if i > 1 else ""):
            sys.stdout.write(f"{rel} {i + 1} indented\n{lines[i]}\0")
        i += 1
EOF

demo_running() {
  [ -f "$FM_DEMO_VAR/env" ] && [ -f "$FM_DEMO_VAR/run/taskd.pid" ] &&
    kill -0 "$(cat "$FM_DEMO_VAR/run/taskd.pid")" 2>/dev/null
}

count=0
while IFS= read -r -d '' rec; do
  head=${rec%%$'\n'*}
  body=${rec#*$'\n'}
  read -r file line lang <<<"$head"
  where="$file:$line"
  count=$((count + 1))
  case $lang in
    text) continue ;;
    sh) ;;
    *) nok "$where: a code block says what it is (\`\`\`sh or \`\`\`text), not '$lang'"
       continue ;;
  esac
  cmds=$(grep -vE '^\s*(#|$)' <<<"$body" | sed 's/[[:space:]]*#.*$//')
  if ! grep -qvE '^make (demo|test|check|bench|fuzz)$' <<<"$cmds"; then
    ok "$where: $(paste -sd, <<<"$cmds" | sed 's/,/, /g') (run by demo_test and CI)"
    continue
  fi
  # A block that uses the demo's settings without starting it gets one.
  if grep -q 'var/demo/env' <<<"$body" && ! grep -q 'make demo ARGS=--keep' <<<"$body" &&
     ! demo_running; then
    "$top/deploy/local/demo" --no-build --keep >"$work/demo-$count.out" 2>&1 ||
      { nok "$where: the kept demo this block needs starts"; tail -20 "$work/demo-$count.out" | sed 's/^/#   /'; continue; }
  fi
  mkdir -p "$work/tmp"
  script="$work/block-$count.sh"
  {
    echo 'set -eo pipefail'
    echo "cd $(printf %q "$top")"
    echo 'make() {'
    echo '  case "$*" in'
    echo '    "demo ARGS=--keep") "$FM_TOP/deploy/local/demo" --no-build --keep ;;'
    echo '    *) echo "docs_test: make $* is not run inside a test" >&2; return 1 ;;'
    echo '  esac'
    echo '}'
    sed -e "s|/tmp/|$work/tmp/|g" -e "s|var/demo/|$FM_DEMO_VAR/|g" \
      -e "s|\\\$PWD/bin|$FM_BIN|g" <<<"$body"
  } >"$script"
  if bash "$script" >"$work/out-$count" 2>&1; then
    ok "$where: the sh block runs ($(grep -cvE '^\s*(#|$)' <<<"$body") lines)"
  else
    nok "$where: the sh block runs"
    sed 's/^/#   /' "$work/out-$count" | tail -25
  fi
done <"$work/blocks"

[ "$count" -gt 0 ] && ok "README.md and assets/README.md have $count code blocks" ||
  nok "code blocks were found in README.md and assets/README.md"
echo "1..$n"
[ "$fails" -eq 0 ]
