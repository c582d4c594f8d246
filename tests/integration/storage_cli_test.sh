#!/usr/bin/env bash
# fedmarket-store end to end against the stack's WebDAV server and a
# file:// store: push, ls, cat, pull, exit codes and error messages.
# Prints TAP.
set -uo pipefail
: "${FM_BIN:?}" "${FM_VAR:?}" "${FM_DAV_URL:?}"
store_bin=$FM_BIN/fedmarket-store
work=$(mktemp -d "$FM_VAR/storage-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
n=0

ok() { # description command...
  local d=$1; shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fi
}

# runs the CLI, keeping stdout, stderr and the exit code
run() {
  "$store_bin" "$@" >"$work/out" 2>"$work/err"
  rc=$?
}

mkdir -p "$work/src/weights"
printf '{"modelTopology":{}}' >"$work/src/model.json"
head -c 100000 /dev/urandom >"$work/src/weights/group1.bin"
cat >"$work/model.json" <<'JSON'
{"format": "tfjs-layers",
 "inputs": [{"name": "x", "shape": [null, 4], "dtype": "float32"}],
 "outputs": [{"name": "y", "shape": [null, 2], "dtype": "float32"}],
 "parameters": 10, "engine_version": "0.1.0"}
JSON

for url in "file://$work/store" "$FM_DAV_URL/cli-$$"; do
  kind=${url%%:*}
  run --store "$url" push --kind model --name m --version 7 \
    --model "$work/model.json" --create "$work/src"
  ref=$(cat "$work/out")
  ok "$kind: push prints a reference" \
    test "$rc" -eq 0 -a "${#ref}" -eq 64
  run --store "$url" ls "$ref"
  ok "$kind: ls lists the files with sizes" \
    grep -q "100000  [0-9a-f]\{64\}  weights/group1.bin" "$work/out"
  run --store "$url" cat "$ref" model.json
  ok "$kind: cat prints one file of the bundle" \
    test "$(cat "$work/out")" = '{"modelTopology":{}}'
  run --store "$url" cat "$ref"
  ok "$kind: cat of the reference prints the manifest" \
    grep -q '"engine_version": "0.1.0"' "$work/out"
  run --store "$url" pull "$ref" "$work/pulled-$kind"
  ok "$kind: pull gives back the same tree" \
    diff -r "$work/src" "$work/pulled-$kind"
  run --store "$url" pull "$ref" "$work/pulled-$kind"
  ok "$kind: pull into a full directory fails with 1 and says why" \
    test "$rc" -eq 1 -a -n "$(grep 'not empty' "$work/err")"
done

run --store "file://$work/store" put "$work/src/model.json" raw/key
ok "put stores a file under a key" test "$rc" -eq 0
run --store "file://$work/store" get raw/key "$work/got"
ok "get fetches it back" cmp -s "$work/src/model.json" "$work/got"
run --store "file://$work/store" ls
ok "ls without a reference lists the store's keys" \
  grep -q " raw/key$" "$work/out"

run --store "file://$work/store" pull 1234 "$work/x"
ok "a malformed reference is refused with 1, naming the problem" \
  test "$rc" -eq 1 -a -n "$(grep '64 hex digits' "$work/err")"
ok "nothing is created for it" test ! -e "$work/x"
run --store "file://$work/store" push --kind model --name m "$work/src"
ok "a model bundle without --model is refused before upload" \
  test "$rc" -eq 1 -a -n "$(grep 'model: required' "$work/err")"
ln -s /etc/passwd "$work/src/link"
run --store "file://$work/store" push --kind dataset --name d "$work/src"
ok "a symbolic link in the directory is refused" \
  test "$rc" -eq 1 -a -n "$(grep 'symbolic link' "$work/err")"
rm "$work/src/link"
run --store "file://$work/store" push --kind weights --name d "$work/src"
ok "an unknown kind is a usage error (2)" test "$rc" -eq 2
run frobnicate
ok "an unknown command is a usage error (2)" test "$rc" -eq 2
run --store "ftp://x" ls
ok "an unsupported URL is refused with 1" \
  test "$rc" -eq 1 -a -n "$(grep 'ftp://x' "$work/err")"
run --help
ok "--help prints the commands" grep -q "pull REF DIR" "$work/out"
echo "1..$n"
