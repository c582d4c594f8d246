# Sourced by the suites that run a marketplace of their own on the test
# stack (after fed_tap.sh): a database, an escrow on anvil, the four
# services on FM_PORT_BASE + 34..37, keystores and helpers.
#   fx_up NAME...   the marketplace, with keys for the operator, the
#                   creator (anvil's funded accounts 0 and 1), the
#                   validator and each NAME
#   as WHO CMD...   a command as WHO (its keystore and work_dir)
#   creator CMD...  fedmarket-creator as the creator
#   contributor WHO CMD...
#   addr WHO        WHO's address
#   j EXPR          a Python expression over the JSON d on stdin
#   fx_spec JSON    the Fashion-MNIST task with JSON's fields over it
#   bail MSG        "Bail out!" with the logs' tails
: "${FM_BIN:?}" "${FM_TOP:?}" "${FM_PGBIN:?}" "${FM_PG_PORT:?}"
: "${FEDMARKET_RPC_URL:?}"
top=$FM_TOP
bin=$FM_BIN
fx_db=fm_fx_$$
fx_base=$(( ${FM_PORT_BASE:-25380} + 34 ))
fx_svcs=(taskd assignd resultd validationd)

fx_cleanup() {
  local p
  # jobs -p: this shell's children still running (never a reused pid)
  for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
  sleep 1
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
  "$FM_PGBIN/dropdb" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres --if-exists --force "$fx_db" >/dev/null 2>&1
  rm -rf "$T"
}
trap fx_cleanup EXIT
j() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
bail() { echo "Bail out! $*"; tail -n 20 "$T"/*.log 2>/dev/null | sed 's/^/# /'; exit 1; }
as() { local w=$1; shift; FEDMARKET_KEYSTORE_DIR=$T/keys/$w FEDMARKET_WORK_DIR=$T/work/$w "$@"; }
creator() { as creator "$bin/fedmarket-creator" "$@"; }
contributor() { local w=$1; shift; as "$w" "$bin/fedmarket-contributor" "$@"; }
addr() { "$bin/fedmarket-admin" keys address --keystore-dir "$T/keys/$1" --json | j 'd["address"].lower()'; }

fx_up() {
  local who s up i t op_keystore escrow
  "$FM_PGBIN/createdb" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres "$fx_db" || bail "createdb"
  export FEDMARKET_DATABASE_URL="postgresql://postgres@127.0.0.1:$FM_PG_PORT/$fx_db"
  "$bin/fedmarket-migrate" --dir "$top/migrations" up >"$T/migrate.log" 2>&1 || bail "migrate"
  printf 'pw\n' >"$T/pw"
  export FEDMARKET_PASSWORD_FILE=$T/pw
  # anvil's funded accounts 0 and 1: the operator and the creator
  printf 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n' >"$T/k0"
  printf '59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d\n' >"$T/k1"
  "$bin/fedmarket-admin" keys import-private-key --private-key-file "$T/k0" --light \
    --keystore-dir "$T/keys/operator" >/dev/null || bail "keys"
  "$bin/fedmarket-admin" keys import-private-key --private-key-file "$T/k1" --light \
    --keystore-dir "$T/keys/creator" >/dev/null || bail "keys"
  for who in validator "$@"; do
    "$bin/fedmarket-admin" keys new --light --keystore-dir "$T/keys/$who" >/dev/null || bail "keys"
  done
  op_keystore=$(ls "$T/keys/operator"/UTC--*)
  escrow=$("$bin/fedmarket-admin" deploy-escrow --keystore "$op_keystore" --json | j 'd["address"].lower()') ||
    bail "deploy-escrow"
  export FEDMARKET_ESCROW_ADDRESS=$escrow FEDMARKET_OPERATOR_ADDRESS=$(addr operator)
  export FEDMARKET_STORAGE_URL=file://$T/store FEDMARKET_LOG_LEVEL=info
  export FEDMARKET_SWEEP_INTERVAL_S=1
  i=0
  for s in "${fx_svcs[@]}"; do
    up=$(echo "$s" | tr a-z A-Z)
    export "FEDMARKET_${up}_LISTEN=127.0.0.1:$((fx_base + i))" "FEDMARKET_${up}_URL=http://127.0.0.1:$((fx_base + i))"
    i=$((i + 1))
  done
  for s in "${fx_svcs[@]}"; do
    if [ "$s" = validationd ]; then
      FEDMARKET_OPERATOR_KEYSTORE=$op_keystore FEDMARKET_OPERATOR_PASSWORD_FILE=$T/pw \
        "$bin/fedmarket-$s" >"$T/$s.log" 2>&1 </dev/null &
    else
      "$bin/fedmarket-$s" >"$T/$s.log" 2>&1 </dev/null &
    fi
  done
  i=0
  for s in "${fx_svcs[@]}"; do
    for ((t = 0; t < 100; t++)); do
      curl -sf "http://127.0.0.1:$((fx_base + i))/healthz" >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -sf "http://127.0.0.1:$((fx_base + i))/healthz" >/dev/null || bail "$s does not answer"
    i=$((i + 1))
  done
}

fx_spec() { # JSON: the Fashion-MNIST task with these fields over it
  python3 - "$top/assets/tasks/fashion-mnist.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
# the demo's rounds, pay by contribution and two epochs are not what
# these tests are about: a flat reward, one epoch, the rest from JSON
for k in ("reward", "results_per_round", "rounds", "min_results_per_round",
          "round_duration_s", "target_accuracy"):
    d.pop(k, None)
d["training"]["epochs"] = 1
d["reward_wei"] = "1000"
d.pop("max_assignments", None)
d["aggregation"].pop("min_results_per_round", None)
d.update(json.loads(sys.argv[2]))
print(json.dumps(d))
PY
}
