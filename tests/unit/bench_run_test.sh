#!/usr/bin/env bash
# bench/run's command line: the area list follows bench/*.sh, and bad
# arguments are refused before anything is installed, built or started.
# Prints TAP.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
run=$top/bench/run
n=0 failed=0

check() { # description, then a command that must succeed
	local d=$1; shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $d"
	else
		echo "not ok $n - $d"
		failed=$((failed + 1))
	fi
}

list=$("$run" --list)
want=$(for f in "$top"/bench/*.sh; do basename "$f" .sh; done | sort)
check "--list names every bench/*.sh once" \
	test "$(sort <<<"$list")" = "$want"
check "--list runs the services benchmark" grep -qx services <<<"$list"
check "--list puts engine first (the order table)" \
	test "$(head -1 <<<"$list")" = engine

out=$("$run" no-such-area 2>&1); rc=$?
check "an unknown area is a usage error (exit 2)" test "$rc" -eq 2
check "the message names the area and the known ones" \
	grep -q 'no benchmark "no-such-area".*services' <<<"$out"

out=$("$run" --fast 2>&1); rc=$?
check "an unknown option is a usage error (exit 2)" test "$rc" -eq 2
check "the usage line is shown" grep -q '^usage: bench/run' <<<"$out"

out=$("$run" --help); rc=$?
check "--help exits 0" test "$rc" -eq 0
check "--help tells where the summary goes" grep -q 'var/bench/results' <<<"$out"

[ "$failed" -eq 0 ]
