#!/usr/bin/env bash
# fedmarket-admin on the stack's anvil: deploy-escrow, escrow-task and
# the shared `keys` command, with keystores moving both ways between us
# and foundry's cast wallet (cast only checks, or makes the foreign file).
set -uo pipefail
: "${FM_BIN:?}" "${FM_CAST:?}" "${FEDMARKET_RPC_URL:?}" "${FM_TOP:?}"
admin=$FM_BIN/fedmarket-admin
cast=$FM_CAST
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a private HOME and keystore folder: nothing of the user's is read
export HOME=$tmp/home FEDMARKET_KEYSTORE_DIR=$tmp/keys
mkdir -p "$HOME"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { # description command...
  local d=$1; shift
  if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "$out"; fi
}

anvil0=ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
anvil0_addr=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
printf '%s\n' "$anvil0" >"$tmp/anvil0.key"
printf 'correct horse\n' >"$tmp/pw"
printf 'wrong horse\n' >"$tmp/badpw"
runtime=$(node -e 'process.stdout.write(require(process.argv[1]).deployedBytecode)' "$FM_TOP/contracts/Escrow.json")

# --- deploy-escrow ---------------------------------------------------------
addr=$("$admin" deploy-escrow --rpc-url "$FEDMARKET_RPC_URL" --private-key-file "$tmp/anvil0.key" 2>"$tmp/err")
rc=$?
if [ $rc -eq 0 ] && [[ $addr =~ ^0x[0-9a-fA-F]{40}$ ]]; then ok "deploy-escrow prints the address"; else not_ok "deploy-escrow prints the address" "rc=$rc out=$addr" "$(cat "$tmp/err")"; fi
code=$("$cast" code "$addr" --rpc-url "$FEDMARKET_RPC_URL" 2>&1)
if [ "$code" = "$runtime" ]; then ok "cast sees the artifact's runtime code at the address"; else not_ok "cast sees the artifact's runtime code" "got ${code:0:80}..."; fi

# with a keystore made by `keys import-private-key` (key from stdin)
ks_json=$("$admin" keys import-private-key --light --password-file "$tmp/pw" --json <"$tmp/anvil0.key" 2>&1)
ks_file=$(printf '%s' "$ks_json" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).keystore)' 2>/dev/null)
if [ -f "$ks_file" ] && [[ $ks_json == *"$anvil0_addr"* ]]; then ok "keys import-private-key reads stdin and stores the keystore"; else not_ok "keys import-private-key" "$ks_json"; fi
out=$("$admin" deploy-escrow --rpc-url "$FEDMARKET_RPC_URL" --keystore "$ks_file" --password-file "$tmp/pw" --json 2>&1)
if [[ $out == *'"address":"0x'* && $out == *"\"deployer\":\"$anvil0_addr\""* ]]; then ok "deploy-escrow --json with a keystore"; else not_ok "deploy-escrow --json with a keystore" "$out"; fi

out=$("$admin" deploy-escrow --rpc-url "$FEDMARKET_RPC_URL" --keystore "$ks_file" --password-file "$tmp/badpw" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"wrong password"* ]]; then ok "a wrong password is refused clearly (exit 1)"; else not_ok "wrong password" "rc=$rc $out"; fi
out=$("$admin" deploy-escrow --rpc-url "$FEDMARKET_RPC_URL" 2>&1)
rc=$?
if [ $rc -eq 2 ] && [[ $out == *"no key"* ]]; then ok "no key is a usage error (exit 2)"; else not_ok "no key" "rc=$rc $out"; fi
out=$("$admin" deploy-escrow --rpc-url http://127.0.0.1:1 --private-key-file "$tmp/anvil0.key" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"127.0.0.1:1"* ]]; then ok "an unreachable node is named in the error"; else not_ok "unreachable node" "rc=$rc $out"; fi

# --- escrow-task -----------------------------------------------------------
task=0x$(printf 'ab%.0s' $(seq 32))
out=$("$admin" escrow-task --rpc-url "$FEDMARKET_RPC_URL" --escrow "$addr" "$task" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"is not funded"* ]]; then ok "escrow-task on an unfunded task"; else not_ok "escrow-task unfunded" "rc=$rc $out"; fi
deadline=$(( $("$cast" block latest -f timestamp --rpc-url "$FEDMARKET_RPC_URL") + 3600 ))
# cast makes the state our reader must decode
"$cast" send "$addr" "fund(bytes32,address,uint64,uint256,uint32)" "$task" 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 "$deadline" 1000 3 \
  --value 3000 --private-key "$anvil0" --rpc-url "$FEDMARKET_RPC_URL" >/dev/null 2>&1
out=$("$admin" escrow-task --rpc-url "$FEDMARKET_RPC_URL" --escrow "$addr" --json "$task" 2>&1)
want="\"state\":\"open\",\"creator\":\"$anvil0_addr\",\"operator\":\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\",\"reward_wei\":\"1000\",\"paid_count\":0,\"max_payouts\":3,\"balance_wei\":\"3000\",\"deadline\":$deadline"
if [[ $out == *"$want"* ]]; then ok "escrow-task reads a task funded by cast"; else not_ok "escrow-task funded" "$out" "want $want"; fi
out=$("$admin" escrow-task --rpc-url "$FEDMARKET_RPC_URL" --escrow "$addr" 0x1234 2>&1)
[ $? -eq 2 ] && ok "escrow-task refuses a malformed task id" || not_ok "malformed task id" "$out"

# --- keys: ours -> cast ----------------------------------------------------
new_json=$("$admin" keys new --light --password-file "$tmp/pw" --json 2>&1)
new_addr=$(printf '%s' "$new_json" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).address)' 2>/dev/null)
new_file=$(printf '%s' "$new_json" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).keystore)' 2>/dev/null)
perm=$(stat -c %a "$new_file" 2>/dev/null)
if [[ $new_addr =~ ^0x[0-9a-fA-F]{40}$ ]] && [ "$perm" = 600 ]; then ok "keys new writes a 0600 keystore"; else not_ok "keys new" "$new_json perm=$perm"; fi
out=$("$cast" wallet address --keystore "$new_file" --password-file "$tmp/pw" 2>&1)
if [ "$out" = "$new_addr" ]; then ok "cast decrypts our keystore to the same address"; else not_ok "cast reads our keystore" "$out vs $new_addr"; fi
out=$("$cast" wallet decrypt-keystore -k "$(dirname "$ks_file")" "$(basename "$ks_file")" --unsafe-password "correct horse" 2>&1)
if [[ $out == *"0x$anvil0" ]]; then ok "cast recovers the imported private key from our keystore"; else not_ok "cast decrypt-keystore" "$out"; fi

# --- keys: cast -> ours ----------------------------------------------------
mkdir -p "$tmp/castks"
cast_out=$("$cast" wallet new "$tmp/castks" --unsafe-password "correct horse" 2>&1)
cast_addr=$(printf '%s\n' "$cast_out" | sed -n 's/^Address: *//p')
cast_file=$(ls "$tmp"/castks/* | head -1)
out=$("$admin" keys import "$cast_file" --password-file "$tmp/pw" --json 2>&1)
if [[ $out == *"\"address\":\"$cast_addr\""* ]]; then ok "keys import takes cast's keystore"; else not_ok "keys import of cast's keystore" "$out" "cast: $cast_out"; fi
out=$("$admin" keys address --key "$cast_addr" 2>&1)
if [[ $out == "$cast_addr "* ]]; then ok "keys address finds the imported key by address"; else not_ok "keys address --key" "$out"; fi
out=$("$admin" keys import "$cast_file" --password-file "$tmp/pw" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"already in"* ]]; then ok "importing a key twice is refused"; else not_ok "double import" "rc=$rc $out"; fi
out=$("$admin" keys import "$cast_file" --password-file "$tmp/badpw" --keystore-dir "$tmp/other" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"wrong password"* ]] && [ ! -e "$tmp/other" ]; then ok "a wrong password imports nothing"; else not_ok "import with wrong password" "rc=$rc $out"; fi
head -c 150 "$cast_file" >"$tmp/cut.json"
out=$("$admin" keys import "$tmp/cut.json" --password-file "$tmp/pw" --keystore-dir "$tmp/other" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"cut.json: invalid JSON"* ]]; then ok "a truncated keystore is refused naming the file"; else not_ok "truncated keystore" "rc=$rc $out"; fi

# --- keys list / address ---------------------------------------------------
out=$("$admin" keys list --json 2>&1)
count=$(printf '%s' "$out" | node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0)).keys.length))' 2>/dev/null)
if [ "$count" = 3 ] && [[ $out == *"$cast_addr"* && $out == *"$new_addr"* && $out == *"$anvil0_addr"* ]]; then ok "keys list shows the three keys"; else not_ok "keys list" "$out"; fi
out=$("$admin" keys address 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"several keys"* ]]; then ok "keys address asks to pick among several keys"; else not_ok "keys address ambiguity" "rc=$rc $out"; fi
out=$("$admin" keys address --keystore-dir "$tmp/empty" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"no key in"* ]]; then ok "keys address in an empty folder says how to make one"; else not_ok "keys address empty" "rc=$rc $out"; fi
out=$("$admin" keys import-private-key --private-key "$anvil0" 2>&1)
rc=$?
if [ $rc -eq 2 ]; then ok "a private key is never taken as an argument"; else not_ok "private key argument" "rc=$rc $out"; fi
out=$(printf 'nothex\n' | "$admin" keys import-private-key --password-file "$tmp/pw" --keystore-dir "$tmp/other" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"64 hex digits"* ]]; then ok "a malformed private key is refused"; else not_ok "malformed private key" "rc=$rc $out"; fi
cp "$new_file" "$tmp/mine.json"
out=$(cd "$tmp" && "$admin" keys address --keystore mine.json 2>&1)
if [[ $out == "$new_addr  mine.json" ]]; then ok "keys address --keystore takes a file name without a slash"; else not_ok "keys address --keystore FILE" "$out"; fi
out=$("$admin" keys frobnicate 2>&1)
[ $? -eq 2 ] && ok "an unknown keys action is a usage error" || not_ok "unknown action" "$out"

echo "1..$n"
