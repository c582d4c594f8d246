#!/usr/bin/env bash
# The storage layers call downwards only: the dispatcher (store.c) calls
# the backends and the shared pieces (store_key.c, store_io.c); none of
# those calls back into the dispatcher. Checked on the built objects:
# none of them needs a function store.o defines. Prints TAP.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
obj=${FM_BUILD:-$top/build}/obj/common/storage
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

# The functions store.o defines.
dispatcher=$(nm --defined-only "$obj/store.o" | awk '$2 == "T" { print $3 }')
check "store.o defines the dispatcher (store_open)" \
	grep -qx store_open <<<"$dispatcher"
check "the key rules are not in the dispatcher" \
	test -z "$(grep -x store_key_check <<<"$dispatcher")"

for o in store_file store_s3 store_http store_io store_key; do
	back=$(nm --undefined-only "$obj/$o.o" | awk '{ print $2 }' |
		grep -xF -f <(printf '%s\n' "$dispatcher"))
	check "$o.o calls nothing in store.o${back:+ (calls: $(echo $back))}" \
		test -z "$back"
done

[ "$failed" -eq 0 ]
