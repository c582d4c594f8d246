#!/usr/bin/env bash
# deploy/: no container engine runs here, so the compose file and the
# Dockerfile are checked offline against the code (Debian's docker-compose
# renders the file; tests/integration/deploy_check.py compares it with
# bin/, the configuration table, the README and the Dockerfile), the
# checks are shown to catch broken files, and then the compose file's own
# commands and environments run on this machine, against the test stack,
# from secrets to healthy services.
set -uo pipefail
: "${FM_BIN:?}" "${FM_TOP:?}" "${FM_CAST:?}" "${FM_PGBIN:?}" "${FM_PG_PORT:?}"
: "${FEDMARKET_RPC_URL:?}" "${FEDMARKET_S3_ENDPOINT:?}"
: "${FEDMARKET_S3_ACCESS_KEY:?}" "${FEDMARKET_S3_SECRET_KEY:?}"
top=$FM_TOP
compose=$top/deploy/docker-compose.yml
check=$top/tests/integration/deploy_check.py
admin=$FM_BIN/fedmarket-admin
tmp=$(mktemp -d)
db=fm_deploy_$$
n=0

cleanup() {
  local p
  # jobs -p: this shell's children still running (never a reused pid)
  for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
  sleep 1
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
  "$FM_PGBIN/dropdb" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres --if-exists --force "$db" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '#   %s\n' "$l"; done; }

# docker-compose with nothing of this shell's environment: the file's own
# defaults, as an operator gets them
dc() { env -i PATH=/usr/bin:/bin HOME="$tmp" docker-compose "$@"; }

# --- docker-compose config ---------------------------------------------------
if ! command -v docker-compose >/dev/null; then
  "$top/deploy/local/install-deps" --deploy >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; }
fi
if out=$(dc -f "$compose" config -q 2>&1); then
  ok "docker-compose -f deploy/docker-compose.yml config -q"
else
  not_ok "docker-compose -f deploy/docker-compose.yml config -q" "$out"
fi
dc -f "$compose" config >"$tmp/rendered.yml" 2>"$tmp/render.err"
"$admin" config --keys --json >"$tmp/keys.json" 2>"$tmp/keys.err"
if [ -s "$tmp/rendered.yml" ] && [ -s "$tmp/keys.json" ]; then
  ok "rendered the compose file and read the configuration table"
else
  not_ok "rendered the compose file and read the configuration table" \
    "$(cat "$tmp/render.err" "$tmp/keys.err")"
fi

# --- fedmarket-admin config: what the checks read the code's table with ----
want=$(sed -n '/^static const struct cfg_key keys\[\]/,/^};/s/^\t{ "\([a-z0-9_]*\)".*/\1/p' \
  "$top/common/core/cfg.c" | sort | tr '\n' ' ')
got=$(python3 -c 'import json,sys
ks = json.load(open(sys.argv[1]))
assert all(k["env"] == "FEDMARKET_" + k["key"].upper() for k in ks)
print(" ".join(sorted(k["key"] for k in ks)) + " ")' "$tmp/keys.json" 2>&1)
if [ -n "$want" ] && [ "$got" = "$want" ]; then
  ok "config --keys --json lists every row of common/core/cfg.c's table with its variable"
else
  not_ok "config --keys --json lists the whole table" "cfg.c: $want" "json:  $got"
fi
out=$(env -i HOME="$tmp" FEDMARKET_RPC_ULR=x "$admin" config 2>&1); rc=$?
if [ $rc -eq 1 ] && [[ $out == *"FEDMARKET_RPC_ULR"* && $out == *"unknown setting"* ]]; then
  ok "config refuses an unknown FEDMARKET_* variable, naming it (exit 1)"
else
  not_ok "config refuses an unknown variable" "rc=$rc $out"
fi
out=$(env -i HOME="$tmp" FEDMARKET_CONFIRMATIONS=0 "$admin" config 2>&1); rc=$?
if [ $rc -eq 1 ] && [[ $out == *"confirmations: expected integer in [1, 1000]"* ]]; then
  ok "config refuses a value out of range, naming the setting"
else
  not_ok "config refuses a value out of range" "rc=$rc $out"
fi
printf 'confirmations = 12\n' >"$tmp/cfg"
out=$(env -i HOME="$tmp" FEDMARKET_CONFIG="$tmp/cfg" FEDMARKET_S3_SECRET_KEY=hunter2 \
  FEDMARKET_DATABASE_URL=postgresql://u:pw@db/x "$admin" config 2>&1); rc=$?
json=$(env -i HOME="$tmp" FEDMARKET_S3_SECRET_KEY=hunter2 "$admin" config --json 2>&1)
if [ $rc -eq 0 ] && [[ $out == *"confirmations = 12"* && $out == *"s3_secret_key = ***"* &&
    $out == *"database_url = ***"* && $out != *hunter2* && $out != *pw@db* &&
    $json == *'"s3_secret_key":"***"'* && $json != *hunter2* ]]; then
  ok "config shows the file's and environment's values, secrets as ***"
else
  not_ok "config shows values, secrets masked" "rc=$rc $out" "$json"
fi
out=$("$admin" config --keys --json 2>&1 >/dev/full); rc=$?
if [ $rc -eq 1 ] && [[ $out == *"cannot write to stdout"* ]]; then
  ok "config reports a failed write (a full disk) instead of exiting 0"
else
  not_ok "config reports a failed write" "rc=$rc $out"
fi
out=$("$admin" config --bogus 2>&1); rc=$?
out2=$("$admin" config extra 2>&1); rc2=$?
if [ $rc -eq 2 ] && [ $rc2 -eq 2 ] && [[ $out == *usage:* ]]; then
  ok "config: an unknown option or an operand is a usage error (exit 2)"
else
  not_ok "config usage errors" "rc=$rc $out" "rc=$rc2 $out2"
fi

# --- the compose file and the Dockerfile against the code ------------------
tap_from() { # the checker's "ok - x" / "not ok - x" / "#   why" lines
  local line last="" why=()
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok "${line#ok - }" ;;
      "not ok - "*) n=$((n + 1)); echo "not ok $n - ${line#not ok - }" ;;
      *) echo "$line" ;;
    esac
  done
}
python3 "$check" static "$tmp/rendered.yml" "$tmp/keys.json" 2>&1 | tap_from

if out=$(FM_BIN=$FM_BIN python3 "$top/deploy/env-table" --check 2>&1); then
  ok "deploy/README.md's environment table is the code's table (deploy/env-table --check)"
else
  not_ok "deploy/README.md's environment table is the code's table" "$out"
fi

# --- the checks catch broken files ------------------------------------------
# mutate NAME CHECK-WORDS WANT PYTHON: edits the compose file (as a dict),
# renders it, and expects the check whose description has CHECK-WORDS to
# fail with a reason containing WANT.
mutate() {
  local name=$1 words=$2 want=$3 code=$4 dir="$tmp/mut-$n" out
  mkdir -p "$dir"
  python3 - "$compose" "$dir/docker-compose.yml" "$code" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for k in [k for k in doc if k.startswith("x-")]:
    del doc[k]
s = doc["services"]
exec(sys.argv[3])
yaml.safe_dump(doc, open(sys.argv[2], "w"), sort_keys=False)
PY
  # keep the build context where it was
  sed -i "s#context: \.\.#context: $top#" "$dir/docker-compose.yml"
  if ! dc -f "$dir/docker-compose.yml" config >"$dir/rendered.yml" 2>"$dir/err"; then
    not_ok "$name: the mutated file renders" "$(cat "$dir/err")"
    return
  fi
  out=$(FM_COMPOSE="$dir/docker-compose.yml" python3 "$check" static \
    "$dir/rendered.yml" "$tmp/keys.json" "$words" 2>&1)
  if printf '%s\n' "$out" | grep -A30 -F "not ok - $words" |
      sed -n '2,$p' | sed '/^ok - \|^not ok - /,$d' | grep -qF "$want"; then
    ok "$name is caught: $want"
  else
    not_ok "$name is caught ($words: $want)" "$out"
  fi
}
mutate "a misspelt variable" "every FEDMARKET_* variable" \
  "FEDMARKET_CONFIRMATION is not in the configuration table" \
  's["validationd"]["environment"]["FEDMARKET_CONFIRMATION"] = s["validationd"]["environment"].pop("FEDMARKET_CONFIRMATIONS")'
mutate "a value of the wrong type" "every container's environment loads" \
  'chain_id: expected integer' \
  's["taskd"]["environment"]["FEDMARKET_CHAIN_ID"] = "mainnet"'
mutate "a missing password file" "each container sets every setting" \
  "validationd: required FEDMARKET_OPERATOR_PASSWORD_FILE is not set" \
  'del s["validationd"]["environment"]["FEDMARKET_OPERATOR_PASSWORD_FILE"]'
mutate "a service on another port" "each service listens" \
  "taskd: port 54399 is not the code's default" \
  's["taskd"]["environment"]["FEDMARKET_TASKD_LISTEN"] = "0.0.0.0:54399"'
mutate "an undocumented port" "each service listens" \
  "anvil publishes port 8546, which deploy/README.md does not mention" \
  's["anvil"]["ports"] = ["127.0.0.1:8546:8546"]'
mutate "an undocumented override" "every variable the compose file takes" \
  "takes FM_NEW_KNOB from the shell" \
  's["taskd"]["environment"]["FEDMARKET_LOG_LEVEL"] = "${FM_NEW_KNOB:-info}"'
mutate "a writable root file system" "hardening:" \
  "resultd: the root file system is writable" \
  'del s["resultd"]["read_only"]'
mutate "another PostgreSQL than the tests run" "images:" \
  "postgres: image postgres:16-bookworm, but the tests run PostgreSQL" \
  's["postgres"]["image"] = "postgres:16-bookworm"'
mutate "a binary that is not built" "every program the compose file runs" \
  "fedmarket-taskdd: not in" \
  's["taskd"]["command"] = ["fedmarket-taskdd"]'
mutate "the payout password given to taskd" "secrets:" \
  "secret operator_password reaches ['taskd', 'validationd']" \
  's["taskd"]["secrets"] = ["operator_password"]'
mutate "a database password that differs" "URLs between containers" \
  "database URL user/password/database/port do not match" \
  's["postgres"]["environment"]["POSTGRES_PASSWORD"] = "other"'
mutate "a service that does not wait for the migrations" "start order" \
  "assignd does not wait for the migrations" \
  'del s["assignd"]["depends_on"]'

# dmutate NAME WANT SED: the same for the Dockerfile's checks
dmutate() {
  local name=$1 want=$2 dir="$tmp/dmut-$n" out
  mkdir -p "$dir"
  sed "$3" "$top/deploy/Dockerfile" >"$dir/Dockerfile"
  out=$(FM_DOCKERFILE="$dir/Dockerfile" python3 "$check" static \
    "$tmp/rendered.yml" "$tmp/keys.json" "Dockerfile:" 2>&1)
  if [[ $out == "not ok - Dockerfile:"* && $out == *"$want"* ]]; then
    ok "$name is caught: $want"
  else
    not_ok "$name is caught ($want)" "$out"
  fi
}
dmutate "a runtime library left out of the image" \
  "libsodium.so.23 (package libsodium23), not installed in the runtime stage" \
  's/ libsodium23 / /'
dmutate "an image running as root" "runtime USER is root" '/^USER /d'
dmutate "a build stage without a -dev package" \
  "build stage lacks libmicrohttpd-dev" 's/ libmicrohttpd-dev / /'
dmutate "a misspelt package" "apt package libpq55: not in Debian" \
  's/ libpq5 / libpq55 /'

# --- secrets ---------------------------------------------------------------
secrets=$tmp/run/secrets
if out=$(FM_ADMIN=$admin "$top/deploy/compose/make-secrets" "$secrets" 2>&1); then
  ok "make-secrets creates the keys and passwords"
else
  not_ok "make-secrets creates the keys and passwords" "$out"
fi
operator=$(printf '%s\n' "$out" | sed -n 's/^operator: \(0x[0-9a-fA-F]\{40\}\) .*/\1/p')
validator=$(printf '%s\n' "$out" | sed -n 's/^validator: \(0x[0-9a-fA-F]\{40\}\) .*/\1/p')
modes=$(cd "$secrets" 2>/dev/null && stat -c '%n %a' . operator-keystore.json operator-password validator-keystore.json validator-password 2>&1 | tr '\n' ' ')
if [ "$modes" = ". 700 operator-keystore.json 644 operator-password 644 validator-keystore.json 644 validator-password 644 " ]; then
  ok "secrets: folder 0700, files 0644 (readable by the containers' uid)"
else
  not_ok "secret modes" "$modes"
fi
got=$("$FM_CAST" wallet address --keystore "$secrets/operator-keystore.json" --password-file "$secrets/operator-password" 2>&1)
got2=$("$FM_CAST" wallet address --keystore "$secrets/validator-keystore.json" --password-file "$secrets/validator-password" 2>&1)
if [ -n "$operator" ] && [ "${got,,}" = "${operator,,}" ] && [ -n "$validator" ] &&
    [ "${got2,,}" = "${validator,,}" ] && [ "${operator,,}" != "${validator,,}" ]; then
  ok "cast opens both keystores with their passwords: two distinct identities"
else
  not_ok "keystores open with their passwords" "operator $operator / $got" "validator $validator / $got2"
fi
before=$(sha256sum "$secrets"/* | sha256sum)
out=$(FM_ADMIN=$admin "$top/deploy/compose/make-secrets" "$secrets" 2>&1)
after=$(sha256sum "$secrets"/* | sha256sum)
if [ "$before" = "$after" ] && [[ $out == *"operator: kept"* ]]; then
  ok "make-secrets run again keeps every file"
else
  not_ok "make-secrets run again keeps every file" "$out"
fi

# --- the compose file's commands, run here -----------------------------------
"$FM_PGBIN/createdb" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres "$db"
export FM_N_DB="postgresql://postgres@127.0.0.1:$FM_PG_PORT/$db"
export FM_N_RPC=$FEDMARKET_RPC_URL FM_N_S3=$FEDMARKET_S3_ENDPOINT
export FM_N_S3_KEY=$FEDMARKET_S3_ACCESS_KEY FM_N_S3_SECRET=$FEDMARKET_S3_SECRET_KEY
export FM_N_ROOT=$tmp/run FM_N_KEYS=$tmp/keys.json
export FM_N_PORT_BASE=$(( ${FM_PORT_BASE:-25380} + 20 ))
run() { python3 "$check" exec "$tmp/rendered.yml" "$@"; }
logs=$tmp/logs
mkdir -p "$logs"

# the bucket minio-init makes, made here on the test S3 server
bucket=$(sed -n 's/^ *FM_S3_BUCKET: *//p' "$tmp/rendered.yml" | head -1)
code=$(curl -s -o "$tmp/bucket.out" -w '%{http_code}' -X PUT \
  -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -c1-64)" --aws-sigv4 "aws:amz:us-east-1:s3" -u "$FEDMARKET_S3_ACCESS_KEY:$FEDMARKET_S3_SECRET_KEY" \
  "$FEDMARKET_S3_ENDPOINT/$bucket")
case "$code" in
  200 | 409) ok "bucket $bucket exists on the test S3 server" ;;
  *) not_ok "bucket $bucket on the test S3 server" "HTTP $code $(cat "$tmp/bucket.out")" ;;
esac

out=$(run migrate 2>&1); rc=$?
if [ $rc -eq 0 ] && [[ $out =~ migrations:\ [1-9][0-9]*\ applied ]]; then
  ok "migrate: the image's migrations folder applies on an empty database"
else
  not_ok "migrate" "rc=$rc" "$out"
fi
out=$(run migrate 2>&1); rc=$?
if [ $rc -eq 0 ] && [[ $out == *"migrations: 0 applied"* ]]; then
  ok "migrate run again applies nothing"
else
  not_ok "migrate run again" "rc=$rc" "$out"
fi

chain_env=$tmp/run/volumes/chain/chain.env
out=$(run chain-init 2>&1); rc=$?
escrow=$(sed -n 's/^FEDMARKET_ESCROW_ADDRESS=//p' "$chain_env" 2>/dev/null)
op_env=$(sed -n 's/^FEDMARKET_OPERATOR_ADDRESS=//p' "$chain_env" 2>/dev/null)
if [ $rc -eq 0 ] && [[ $escrow =~ ^0x[0-9a-fA-F]{40}$ ]] && [ "${op_env,,}" = "${operator,,}" ]; then
  ok "chain-init deploys an escrow on anvil and records it with the operator of the keystore"
else
  not_ok "chain-init" "rc=$rc" "$out" "$(cat "$chain_env" 2>&1)"
fi
runtime=$(node -e 'process.stdout.write(require(process.argv[1]).deployedBytecode)' "$top/contracts/Escrow.json")
code=$("$FM_CAST" code "$escrow" --rpc-url "$FEDMARKET_RPC_URL" 2>&1)
balance=$("$FM_CAST" balance "$operator" --rpc-url "$FEDMARKET_RPC_URL" 2>&1)
if [ "$code" = "$runtime" ] && [ "$balance" = 100000000000000000000 ]; then
  ok "cast: the escrow's code is the artifact's; the operator holds 100 ether for gas"
else
  not_ok "escrow code and operator funds" "code ${code:0:40}... balance $balance"
fi
out=$(run chain-init 2>&1); rc=$?
again=$(sed -n 's/^FEDMARKET_ESCROW_ADDRESS=//p' "$chain_env" 2>/dev/null)
if [ $rc -eq 0 ] && [ "$again" = "$escrow" ] && [[ $out == *"deployed by an earlier run"* ]]; then
  ok "chain-init run again keeps the escrow"
else
  not_ok "chain-init run again keeps the escrow" "rc=$rc" "$out"
fi

start() { # container: started in the background, its pid in pid_<name>
  # a simple command, not a function: $! is then the service itself
  python3 "$check" exec "$tmp/rendered.yml" "$1" >"$logs/$1.log" 2>&1 &
  printf -v "pid_${1//-/_}" '%s' "$!"
}
healthy() { # container: its own healthcheck passes within 30 s
  local cmd i
  mapfile -t cmd < <(python3 "$check" health "$tmp/rendered.yml" "$1")
  [ ${#cmd[@]} -gt 0 ] || return 1
  for ((i = 0; i < 300; i++)); do
    "${cmd[@]}" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
services=(taskd assignd resultd validationd)
for s in "${services[@]}"; do start "$s"; done
for s in "${services[@]}"; do
  if healthy "$s"; then
    ok "$s comes up healthy with the compose file's command and environment"
  else
    not_ok "$s comes up healthy" "$(tail -n 20 "$logs/$s.log")"
  fi
done

info() { # port of the container, field
  curl -s "http://127.0.0.1:$((FM_N_PORT_BASE + $1 - 54390))/v1/info" |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get(sys.argv[1]) if not isinstance(v.get(sys.argv[1]), dict) else v[sys.argv[1]].get("url"))' "$2" 2>&1
}
t_escrow=$(info 54390 escrow_address) t_op=$(info 54390 operator_address)
v_escrow=$(info 54393 escrow_address) v_op=$(info 54393 operator_address)
if [ "${t_escrow,,}" = "${escrow,,}" ] && [ "${t_op,,}" = "${operator,,}" ]; then
  ok "taskd's /v1/info: the escrow and operator chain-init recorded (filled in by the entrypoint)"
else
  not_ok "taskd's /v1/info" "escrow $t_escrow (want $escrow), operator $t_op (want $operator)"
fi
if [ "${v_escrow,,}" = "${escrow,,}" ] && [ "${v_op,,}" = "${operator,,}" ]; then
  ok "validationd's /v1/info: the operator of the keystore it decrypted, the same escrow"
else
  not_ok "validationd's /v1/info" "escrow $v_escrow (want $escrow), operator $v_op (want $operator)"
fi
storage=$(info 54392 storage)
if [ "$storage" = "s3://$bucket" ]; then
  ok "resultd's /v1/info names the bucket minio-init makes (s3://$bucket)"
else
  not_ok "resultd's storage" "$storage"
fi

# the validator daemon: signs in with its secret key and watches
start validatord
watching=0
for ((i = 0; i < 150; i++)); do
  if grep -q "watching" "$logs/validatord.log" 2>/dev/null; then watching=1; break; fi
  kill -0 "$pid_validatord" 2>/dev/null || break
  sleep 0.1
done
if [ $watching = 1 ] && grep -qi "validator ${validator,,}\|validator $validator" "$logs/validatord.log" &&
    kill -0 "$pid_validatord" 2>/dev/null; then
  ok "validatord runs as the validator key of the secrets and watches the services"
else
  not_ok "validatord runs and watches" "$(tail -n 20 "$logs/validatord.log")"
fi

# docker stop: SIGTERM, then the grace period
for s in validatord "${services[@]}"; do
  v="pid_$s"; p=${!v}
  kill -TERM "$p" 2>/dev/null
  for ((i = 0; i < 200; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    not_ok "$s stops within 20 s of SIGTERM" "$(tail -n 5 "$logs/$s.log")"
    continue
  fi
  wait "$p"; rc=$?
  if [ $rc -eq 0 ]; then ok "$s stops on SIGTERM with status 0"; else not_ok "$s exit status on SIGTERM" "rc=$rc" "$(tail -n 5 "$logs/$s.log")"; fi
done

# the containers' root file system is read-only: nothing may have been
# written to their home (the image's /var/lib/fedmarket)
written=$(cd "$tmp/run/home" && find . -mindepth 2 2>&1 | head -n 5)
if [ -d "$tmp/run/home/taskd" ] && [ -z "$written" ]; then
  ok "no program wrote outside its volumes and /tmp (read-only root holds)"
else
  not_ok "no program wrote outside its volumes and /tmp" "$written"
fi
