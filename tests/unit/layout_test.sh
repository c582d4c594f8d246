#!/usr/bin/env bash
# The layout rule (HACKING.md "Layout and build"): common/ holds only what
# clients and services both use. Checked where it matters, at link time:
# every object of libfedmarket.a must end up in at least one client binary
# and at least one service binary. The engine is one library and counts as
# one unit (services load and check models; clients also train and
# aggregate with it). Also: nothing under common/ writes to stdout, and no
# file under common/ includes a header of clients/lib or services/lib.
#
#   layout_test.sh [TOP BUILD BIN]   (defaults: FM_TOP, FM_BUILD, FM_BIN)
set -uo pipefail
top=${1:-${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}}
build=${2:-${FM_BUILD:-$top/build}}
bin=${3:-${FM_BIN:-$top/bin}}
n=0 bad=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); bad=$((bad + 1)); echo "not ok $n - $*"; }

# Which unit an object of common/ belongs to: its area for the engine,
# else its own path.
unit_of() { # common/engine/ml_data.c -> common/engine
  case $1 in common/engine/*) echo common/engine ;; *) echo "${1%.c}" ;; esac
}

# Defined global symbols of each binary, one file per side.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for side in clients services; do
  : >"$tmp/$side.syms"
  for d in "$top/$side"/*/; do
    name=$(basename "$d")
    [ "$name" = lib ] && continue
    ls "$d"*.c >/dev/null 2>&1 || continue
    b="$bin/fedmarket-$name"
    if [ ! -x "$b" ]; then
      nok "binary $b of $side/$name is built"
      continue
    fi
    nm --defined-only -g "$b" | awk '{print $NF}' >>"$tmp/$side.syms"
  done
  sort -u -o "$tmp/$side.syms" "$tmp/$side.syms"
done

# For each unit: is any of its objects' global symbols in a side's binaries?
declare -A used_c used_s
for src in "$top"/common/*/*.c; do
  rel=${src#"$top"/}
  obj="$build/obj/${rel%.c}.o"
  u=$(unit_of "$rel")
  used_c[$u]=${used_c[$u]:-0} used_s[$u]=${used_s[$u]:-0}
  if [ ! -f "$obj" ]; then
    nok "object $obj of $rel is built"
    continue
  fi
  nm --defined-only -g "$obj" | awk '{print $NF}' | sort -u >"$tmp/obj.syms"
  comm -12 "$tmp/obj.syms" "$tmp/clients.syms" | grep -q . && used_c[$u]=1
  comm -12 "$tmp/obj.syms" "$tmp/services.syms" | grep -q . && used_s[$u]=1
done
for u in $(printf '%s\n' "${!used_c[@]}" | sort); do
  c=${used_c[$u]} s=${used_s[$u]}
  if [ "$c" = 1 ] && [ "$s" = 1 ]; then
    ok "$u is used by clients and services"
  elif [ "$c" = 1 ]; then
    nok "$u is used only by clients: move it to clients/lib/"
  elif [ "$s" = 1 ]; then
    nok "$u is used only by services: move it to services/lib/"
  else
    nok "$u is used by no program: remove it or move it to where it is used"
  fi
done

# Nothing under common/ prints to stdout (only main decides what it says).
hits=$(grep -rnE '(^|[^a-z_])(printf|puts|putchar|vprintf)\(|[( ,]stdout[),; ]' \
  "$top"/common --include='*.c' --include='*.h' | grep -v '^\s*/\?\*' || true)
if [ -z "$hits" ]; then
  ok "nothing under common/ writes to stdout"
else
  nok "code under common/ writes to stdout:"
  echo "$hits" | sed 's/^/#   /'
fi

# common/ does not reach up into a side's library.
up=$(grep -rnE '#include "(cli|client|service|payout|db|market/market|http/(server|route|metrics))[/.]' \
  "$top"/common --include='*.c' --include='*.h' |
  while IFS=: read -r f l rest; do
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$rest")
    [ -f "$top/common/$inc" ] || echo "$f:$l: $inc"
  done)
if [ -z "$up" ]; then
  ok "common/ includes nothing from clients/lib or services/lib"
else
  nok "common/ includes side-only headers:"
  echo "$up" | sed 's/^/#   /'
fi

# The check itself can fail: a tiny tree where common/x/one.c is linked
# only into a client must be refused, naming it.
if [ -z "${FM_LAYOUT_INNER:-}" ]; then
  t="$tmp/tree"
  mkdir -p "$t"/common/x "$t"/clients/p "$t"/services/q "$t"/b/obj/common/x "$t"/bin
  echo 'int both(void) { return 1; }' >"$t/common/x/both.c"
  echo 'int one(void) { return 2; }' >"$t/common/x/one.c"
  printf 'int both(void); int one(void);\nint main(void) { return both() + one(); }\n' \
    >"$t/clients/p/main.c"
  printf 'int both(void);\nint main(void) { return both(); }\n' >"$t/services/q/main.c"
  for m in both one; do
    cc -c -o "$t/b/obj/common/x/$m.o" "$t/common/x/$m.c"
  done
  ar rcs "$t/b/lib.a" "$t"/b/obj/common/x/*.o
  cc -o "$t/bin/fedmarket-p" "$t/clients/p/main.c" "$t/b/lib.a"
  cc -o "$t/bin/fedmarket-q" "$t/services/q/main.c" "$t/b/lib.a"
  out=$(FM_LAYOUT_INNER=1 bash "$0" "$t" "$t/b" "$t/bin")
  rc=$?
  if [ "$rc" -ne 0 ] && grep -q 'not ok .* common/x/one is used only by clients' <<<"$out" &&
     grep -q '^ok .* common/x/both is used by clients and services' <<<"$out"; then
    ok "the check refuses a common/ file that only a client links"
  else
    nok "the check refuses a common/ file that only a client links (rc $rc)"
    echo "$out" | sed 's/^/#   /'
  fi
fi

echo "1..$n"
[ "$bad" -eq 0 ]
