#!/usr/bin/env bash
# Every program's command line, all through the one parser: --help (exit
# 0, help on stdout) on the program, on each command it lists (read from
# its own help, so a new command cannot be missed) and on each `keys`
# action; --version; an unknown or misplaced option is a usage error (2)
# naming it; --config /nonexistent after any command fails naming the
# file; options before and after the command word take effect. Runs in a
# clean environment with a private HOME. TAP output.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FM_BIN:-$top/bin}
T=$(mktemp -d /tmp/cli_options.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/home"
missing=$T/missing/fm.conf # MISSING in the descriptions
n=0 fails=0 rc=0

run() { # command...: stdout in $T/out, stderr in $T/err, exit code in rc
  env -i PATH="$PATH" HOME="$T/home" "$@" >"$T/out" 2>"$T/err" </dev/null
  rc=$?
}

check() { # description command...: one TAP line
  local d=$1; shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $d"
  else
    fails=$((fails + 1))
    echo "not ok $n - $d (exit $rc)"
    sed 's/^/# /' "$T/out" "$T/err" | head -8
  fi
}

helps() { # "usage: WORDS": exit 0, that usage on stdout, nothing on stderr
  [ "$rc" -eq 0 ] && grep -qF -- "$1" "$T/out" && [ ! -s "$T/err" ]
}
refused() { # WORD: exit 2, naming it on stderr
  [ "$rc" -eq 2 ] && grep -qF -- "$1" "$T/err"
}
names_config() { # exit 1 or 2, naming the missing config file
  [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ] && grep -qF -- "$missing" "$T/err"
}
commands_of() { # the first words of the "commands:" block of $T/out
  sed -n '/^commands:/,/^$/p' "$T/out" | awk '/^  [a-z]/ { print $1 }'
}

# Runs words... --config $missing, adding dummy operands while the
# command says one is missing (operands are checked before the config).
config_fails() { # description words...
  local d=$1 extra=() try; shift
  for try in 1 2 3; do
    run "$@" "${extra[@]}" --config "$missing"
    grep -q 'missing argument' "$T/err" || break
    extra+=(x)
  done
  check "$d" names_config
}

# --- every program, every command ------------------------------------------
progs=()
for d in "$top"/clients/*/; do
  p=$(basename "$d")
  [ "$p" = lib ] || progs+=("$p")
done
check "the programs are found (${progs[*]})" test "${#progs[@]}" -ge 7

for p in "${progs[@]}"; do
  P=$bin/fedmarket-$p
  run "$P" --version
  check "$p --version prints its name and version" \
    grep -qE "^fedmarket-$p [0-9]+\.[0-9]+" "$T/out"
  run "$P" --no-such-option
  check "$p --no-such-option is a usage error naming it" refused --no-such-option
  run "$P" --help
  check "$p --help: exit 0, usage on stdout" helps "usage: fedmarket-$p"
  cmds=$(commands_of)
  takes_config=0
  grep -q -- '--config' "$T/out" && takes_config=1
  with_words=0
  grep -q "usage: fedmarket-$p \[options\] COMMAND" "$T/out" && with_words=1
  if [ "$with_words" = 1 ]; then
    check "$p lists its commands" test -n "$cmds"
    run "$P" no-such-command
    check "$p no-such-command is a usage error naming it" refused no-such-command
    run "$P"
    check "$p without a command: usage on stderr, exit 2" \
      grep -q "usage: fedmarket-$p" "$T/err"
  elif [ "$takes_config" = 1 ]; then
    config_fails "$p --config MISSING fails naming the file" "$P"
  fi
  for c in $cmds; do
    run "$P" "$c" --help
    check "$p $c --help: exit 0, usage on stdout" helps "usage: fedmarket-$p"
    if [ "$with_words" = 1 ]; then
      grep -qF "usage: fedmarket-$p $c" "$T/out"
      check "$p $c --help shows the command's own usage" test $? -eq 0
      run "$P" help "$c"
      check "$p help $c is $c --help" helps "usage: fedmarket-$p $c"
      run "$P" --help "$c"
      check "$p --help $c is $c --help" helps "usage: fedmarket-$p $c"
    fi
    run "$P" "$c" --no-such-option
    check "$p $c --no-such-option is a usage error naming it" \
      refused --no-such-option
    if [ "$c" = keys ]; then
      run "$P" keys --help
      actions=$(commands_of)
      check "$p keys --help lists the actions" test -n "$actions"
      for a in $actions; do
        run "$P" keys "$a" --help
        check "$p keys $a --help: exit 0, usage on stdout" \
          helps "usage: fedmarket-$p keys $a"
        run "$P" keys "$a" --no-such-option
        check "$p keys $a --no-such-option is a usage error naming it" \
          refused --no-such-option
        config_fails "$p keys $a --config MISSING fails naming the file" \
          "$P" keys "$a"
      done
    elif [ "$takes_config" = 1 ]; then
      config_fails "$p $c --config MISSING fails naming the file" "$P" "$c"
    fi
  done
done

# --- options out of place --------------------------------------------------
run "$bin/fedmarket-creator" list-tasks --reason x
check "creator list-tasks --reason (reject's option) is refused" refused --reason
run "$bin/fedmarket-admin" keys new --key 0x0000000000000000000000000000000000000001
check "keys new --key (address's option) is refused" refused --key
run "$bin/fedmarket-admin" keys import-private-key --private-key 00
check "an abbreviated option is refused, never completed" refused --private-key
run "$bin/fedmarket-store" ls --kind model
check "store ls --kind (push's option) is refused" refused --kind
run "$bin/fedmarket-engine" eval --rounds 3
check "engine eval --rounds (simulate's option) is refused" refused --rounds
run "$bin/fedmarket-engine" train --epochs x
check "a malformed value is a usage error naming the option" refused '--epochs: "x"'

# --- what the commands' lines say and refuse (issue 16) ----------------------
run "$bin/fedmarket-creator" list-tasks --help
check "creator list-tasks --help names every state, funded too" \
  grep -q "draft, funded, open, closed, expired or cancelled" "$T/out"
run "$bin/fedmarket-creator" list-tasks --address 0x0000000000000000000000000000000000000001
check "creator list-tasks --address without --mine is a usage error" refused "--mine"
run "$bin/fedmarket-contributor" earnings --address 0x12
check "contributor earnings --address of a malformed address is a usage error" refused "--address"
run "$bin/fedmarket-creator" cancel --help
check "creator cancel --help documents --force" grep -q -- "--force" "$T/out"
uuid=123e4567-e89b-12d3-a456-426614174000
run "$bin/fedmarket-contributor" send-result "$uuid" --model "$top/assets/models/fashion-mlp"
check "send-result --model DIR without --examples (and no training.json): usage error naming --examples" \
  refused "--examples"
run "$bin/fedmarket-contributor" send-result "$uuid" --examples 5
check "send-result --examples without --model is a usage error" refused "--model"

# --- options before and after the command take effect -----------------------
cat >"$T/off.conf" <<EOF
taskd_url = http://127.0.0.1:9
database_url = postgresql://127.0.0.1:9/none
keystore_dir = $T/keys
EOF
run "$bin/fedmarket-creator" list-tasks --config "$T/off.conf"
check "creator list-tasks --config FILE: the file's taskd_url is used" \
  grep -q "127.0.0.1:9" "$T/err"
run "$bin/fedmarket-contributor" --config "$T/off.conf" list-tasks --all
check "contributor --config FILE list-tasks: the file's taskd_url is used" \
  grep -q "127.0.0.1:9" "$T/err"
run "$bin/fedmarket-admin" --json config --config "$T/off.conf"
check "admin --json config --config FILE: JSON with the file's settings" \
  grep -qF '"taskd_url":"http://127.0.0.1:9"' "$T/out"
run "$bin/fedmarket-migrate" status --dir "$top/migrations" --config "$T/off.conf"
check "migrate status --config FILE: the file's database_url is used" \
  grep -q "127.0.0.1" "$T/err"
run "$bin/fedmarket-validatord" --once --config "$T/off.conf"
check "validatord --config FILE: the file's keystore_dir is used" \
  grep -qF "$T/keys" "$T/err"

printf 'pw\n' >"$T/pw"
run "$bin/fedmarket-admin" keys new --light --password-file "$T/pw" --json --config "$T/off.conf"
addr=$(sed -n 's/.*"address":"\(0x[0-9a-fA-F]*\)".*/\1/p' "$T/out")
check "keys new --config FILE writes into the file's keystore_dir" \
  test -n "$addr" -a -n "$(ls "$T/keys" 2>/dev/null)"
run "$bin/fedmarket-creator" --config "$T/off.conf" keys --json list
check "creator --config FILE keys --json list: options around both words" \
  grep -qF "$addr" "$T/out"
run "$bin/fedmarket-contributor" keys address --keystore-dir "$T/keys"
check "contributor keys address --keystore-dir DIR finds the key" \
  grep -qF "$addr" "$T/out"

echo hello >"$T/blob"
run "$bin/fedmarket-store" put "$T/blob" some/key --store "file://$T/store"
check "store put ... --store URL: the program option after the command" \
  test "$rc" -eq 0
run "$bin/fedmarket-store" --store "file://$T/store" ls
check "store --store URL ls lists what was put" grep -q " some/key$" "$T/out"
run "$bin/fedmarket-store" --help
check "store --help still documents pull REF DIR" grep -q "pull REF DIR" "$T/out"

seed=$top/assets/models/fashion-mlp
run "$bin/fedmarket-engine" --json summary --model "$seed"
check "engine --json summary: a command's option before the command" \
  grep -q '"params": 101770' "$T/out"
run "$bin/fedmarket-engine" summary "--model=$seed" --json
check "engine summary --model=DIR --json" grep -q '"params": 101770' "$T/out"

echo "1..$n"
[ "$fails" -eq 0 ]
