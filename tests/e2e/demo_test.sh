#!/usr/bin/env bash
# The demo's whole flow with assertions (TAP): accuracy improves, the
# poisoned result is rejected with a reason, every accepted result is
# paid exactly once (Released events and balances read with cast, an
# independent client), the escrow holds funding minus payouts; then the
# CLIs' bad input: unknown task, wrong password, assets that fail
# verification, an expired assignment, usage errors.
#
# The demo runs on its own ports (FM_PORT_BASE + 20 .. + 33) and folder,
# beside the test stack; it is stopped at the end.
set -uo pipefail
: "${FM_TOP:?}" "${FM_BIN:?}" "${FM_CAST:?}" "${FM_PORT_BASE:?}"
top=$FM_TOP
cast=$FM_CAST
work=$(mktemp -d /tmp/fm_e2e_XXXXXX)
n=0 fails=0

ok() { # condition-status description
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
check() { # description command...
  local d=$1; shift
  "$@" >/dev/null 2>&1; ok $? "$d"
}
# expect_fail description code pattern command...: exit code and message
expect_fail() {
  local d=$1 want=$2 pat=$3; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq "$want" ] && grep -qiE "$pat" <<<"$out"; then
    ok 0 "$d"
  else
    ok 1 "$d"
    echo "#   exit $rc (want $want), stderr: $out"
  fi
}
j() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# variant SPEC KEY VALUE: the spec with validation.KEY set to VALUE
variant() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
d["validation"][sys.argv[2]] = float(sys.argv[3])
print(json.dumps(d))' "$@"
}

export FM_DEMO_PORT_BASE=$((FM_PORT_BASE + 20))
export FM_DEMO_VAR=$work/demo
export FM_DEMO_SUMMARY=$work/summary.env
export FM_DEMO_BIN=$FM_BIN
cleanup() {
  "$top/deploy/local/demo" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

echo "# running the demo on ports $FM_DEMO_PORT_BASE.. (this takes a minute or two)"
"$top/deploy/local/demo" --no-build --keep >"$work/demo.out" 2>&1
rc=$?
ok $rc "the demo runs to its end"
if [ $rc -ne 0 ]; then
  sed 's/^/#   /' "$work/demo.out" | tail -30
  echo "1..$n"
  exit 1
fi
sed 's/^/#   /' "$work/demo.out" | tail -24
# shellcheck disable=SC1090
. "$FM_DEMO_SUMMARY"
set -a
# shellcheck disable=SC1091
. "$VAR/env"
set +a
rpc=$FEDMARKET_RPC_URL
as() { local who=$1; shift; FEDMARKET_KEYSTORE_DIR=$VAR/keys/$who FEDMARKET_WORK_DIR=$VAR/work/$who "$@"; }
creator() { as creator "$FM_BIN/fedmarket-creator" "$@"; }
contributor() { local who=$1; shift; as "$who" "$FM_BIN/fedmarket-contributor" "$@"; }

# An expired assignment needs a minute to pass: start it first.
cat >"$work/short.json" <<'EOF'
{ "title": "e2e: a task whose assignments expire fast", "kind": "model_contributor",
  "reward_wei": "1000", "max_assignments": 2, "assignment_duration_s": 60,
  "lifetime_s": 3600, "validation": { "strategy": "manual" },
  "training": { "epochs": 1, "batch_size": 32, "learning_rate": 0.001,
    "optimizer": "adam", "loss": "sparse_categorical_crossentropy", "from_logits": true,
    "data": { "kind": "image", "format": "idx", "preprocessing": { "scale": 255 } } } }
EOF
short=$(creator create-task --json --spec "$work/short.json" --assets "$top/assets/models/fashion-mlp" | j 'd["id"]')
ok $? "a second task is posted and funded"
expiring=$(contributor alice assign "$short" --json | j 'd["id"]')
ok $? "alice takes a slot of it (60 s to submit)"
contributor alice train "$expiring" --data "$VAR/data/contributor-1" >/dev/null 2>&1
ok $? "alice trains for it"
t_assigned=$(date +%s)
mkdir -p "$work/bad"
cp "$top/assets/models/fashion-mlp/model.json" "$work/bad/"
head -c 1000 "$top/assets/models/fashion-mlp/weights.bin" >"$work/bad/weights.bin"
expect_fail "send-result of a model with truncated weights: exit 1" 1 "weights|bytes" \
  contributor alice send-result "$expiring" --model "$work/bad"

# ---------------------------------------------------------------- the round
status=$(creator status "$TASK" --json)
python3 - "$ACC0" "$ACC1" <<'EOF'
import sys
a0, a1 = float(sys.argv[1]), float(sys.argv[2])
sys.exit(0 if a1 > a0 + 0.2 else 1)
EOF
ok $? "version 1 is more accurate than version 0 on the creator's test data ($ACC0 -> $ACC1)"

verdict() { # address -> state|reason
  printf '%s' "$status" | j "
[(r['state'] + '|' + ((r.get('decision') or {}).get('reason') or '')) for r in d['results'] if r['contributor'] == '$1'][0]"
}
v=$(verdict "$ADDR_mallory")
[[ $v == rejected\|*median* ]]; ok $? "the poisoned result is rejected, with the reason (${v#*|})"
for who in alice bob carol dave; do
  var=ADDR_$who
  [ "$(verdict "${!var}")" = "accepted|" ]; ok $? "$who's result is accepted"
done
printf '%s' "$status" | j '[m for m in d["models"] if m["version"] == 1][0]["results"].__len__()' | grep -qx 4
ok $? "version 1 aggregates exactly the 4 accepted results"

# ------------------------------------------------------- on chain, with cast
logs=$("$cast" logs --json --rpc-url "$rpc" --from-block 0 --address "$ESCROW" \
  "Released(bytes32 indexed,bytes32 indexed,address indexed,uint256)" "$TASK" 2>/dev/null)
ok $? "cast reads the escrow's Released events"
printf '%s' "$logs" | j 'len(d)' | grep -qx 4
ok $? "exactly 4 Released events for the task"
reward=100000000000000000
for who in alice bob carol dave mallory; do
  var=ADDR_$who
  addr=${!var}
  rid=$(printf '%s' "$status" | j "[r['id'] for r in d['results'] if r['contributor'] == '$addr'][0]")
  rid32=0x00000000000000000000000000000000${rid//-/}
  count=$(printf '%s' "$logs" | j "sum(1 for l in d if l['topics'][2].lower() == '$rid32')")
  bal=$("$cast" balance --rpc-url "$rpc" "$addr" 2>/dev/null)
  if [ "$who" = mallory ]; then
    [ "$count" = 0 ] && [ "$bal" = 0 ]; ok $? "mallory is paid nothing (events $count, balance $bal)"
  else
    [ "$count" = 1 ] && [ "$bal" = "$reward" ]
    ok $? "$who is paid once: one Released event for result $rid, balance $bal wei"
    paid=$("$cast" call --rpc-url "$rpc" "$ESCROW" "paid(bytes32)(bool)" "$rid32" 2>/dev/null)
    [ "$paid" = true ]; ok $? "the escrow marks $who's result paid"
  fi
done
task_balance=$("$cast" call --rpc-url "$rpc" "$ESCROW" \
  "tasks(bytes32)(address,uint64,uint32,address,uint32,uint8,uint256,uint256)" "$TASK" 2>/dev/null | tail -1 | cut -d' ' -f1)
[ "$task_balance" = $((5 * reward - 4 * reward)) ]
ok $? "the task's escrow balance is funding minus payouts (5 x reward - 4 x reward = $task_balance)"
paid_count=$("$cast" call --rpc-url "$rpc" "$ESCROW" \
  "tasks(bytes32)(address,uint64,uint32,address,uint32,uint8,uint256,uint256)" "$TASK" 2>/dev/null | sed -n 5p)
[ "$paid_count" = 4 ]; ok $? "the escrow counts 4 payouts"
pays=$(printf '%s' "$status" | j 'sorted(set(p["tx_hash"] for p in d["payouts"]))[0]')
receipt=$("$cast" receipt --json --rpc-url "$rpc" "$pays" 2>/dev/null | j 'd["status"]')
[ "$receipt" = 0x1 ]; ok $? "the payout transaction the marketplace reports succeeded on chain ($receipt)"

earn=$(contributor alice earnings --json)
printf '%s' "$earn" | j 'int(d["confirmed_wei"] == d["balance_wei"] == "'$reward'")' | grep -qx 1
ok $? "alice's earnings agree with the chain"

# ------------------------------------------- a data-annotation round (gold-free)
variant "$top/assets/tasks/annotate-reviews.json" gold_min_agreement 0.6 >"$work/annotate.json"
ann=$(creator create-task --json --spec "$work/annotate.json" --assets "$top/assets/tasks/annotate-reviews" \
  --validator "$VALIDATOR" | j 'd["id"]')
ok $? "the creator posts the annotation task"
python3 - "$work" <<'PY'
import json, sys
truth = dict(zip(["r%02d" % i for i in range(1, 13)],
                 ["positive", "negative", "neutral"] * 4))
json.dump({"labels": truth}, open(sys.argv[1] + "/honest.json", "w"))
json.dump({"labels": {k: "positive" for k in truth}}, open(sys.argv[1] + "/lazy.json", "w"))
json.dump({"labels": {"r01": "amazing"}}, open(sys.argv[1] + "/badlabel.json", "w"))
PY
declare -A ann_as
for who in bob carol dave; do
  ann_as[$who]=$(contributor "$who" assign "$ann" --json | j 'd["id"]')
done
expect_fail "annotate with a label the task does not have: exit 1, names the item" 1 "r01" \
  contributor bob annotate "${ann_as[bob]}" --labels "$work/badlabel.json"
expect_fail "train on an annotation task: exit 1, points to annotate" 1 "annotate" \
  contributor bob train "${ann_as[bob]}" --data "$VAR/data/contributor-1"
check "bob sends honest labels" contributor bob annotate "${ann_as[bob]}" --labels "$work/honest.json"
check "carol sends honest labels" contributor carol annotate "${ann_as[carol]}" --labels "$work/honest.json"
check "dave labels everything positive" contributor dave annotate "${ann_as[dave]}" --labels "$work/lazy.json"
for ((i = 0; i < 60; i++)); do
  astat=$(creator status "$ann" --json)
  [ "$(printf '%s' "$astat" | j 'sum(1 for r in d["results"] if r["state"] != "submitted")')" = 3 ] && break
  sleep 1
done
astate() { printf '%s' "$astat" | j "[r['state'] for r in d['results'] if r['contributor'] == '$1'][0]"; }
[ "$(astate "$ADDR_bob")" = accepted ] && [ "$(astate "$ADDR_carol")" = accepted ]
ok $? "the validator accepts the labels that agree with the majority"
[ "$(astate "$ADDR_dave")" = rejected ] && printf '%s' "$astat" | grep -q "agrees with the majority"
ok $? "the validator rejects the lazy labels, saying they disagree with the majority"
out=$(creator aggregate "$ann" --json 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "per round" <<<"$out"
ok $? "aggregate refuses a round smaller than min_results_per_round (exit 1)"
creator aggregate "$ann" --force --json >"$work/annv1.json" 2>/dev/null
ok $? "creator aggregate --force publishes the majority labels"
rm -rf "$work/annv1"
creator pull-model "$ann" --version 1 --out "$work/annv1" >/dev/null 2>&1 &&
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["labels"]["r02"] != "negative" or len(d["labels"]) != 12)' \
    "$work/annv1/labels.json"
ok $? "version 1 of the annotation task holds the 12 majority labels"

# ------------------- the validator daemon stops on SIGTERM; --once resumes
vpid=$(cat "$VAR/run/validatord.pid")
kill -TERM "$vpid"
for ((i = 0; i < 50; i++)); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$vpid" 2>/dev/null && tail -1 "$VAR/log/validatord.log" | grep -q stopped
ok $? "validatord stops on SIGTERM and says so"

# ---------------------------- a model-engineer task: a better architecture
variant "$top/assets/tasks/fashion-engineer.json" min_accuracy 0.5 >"$work/engineer.json"
eng=$(creator create-task --json --spec "$work/engineer.json" --assets "$top/assets/models/fashion-mlp" \
  --validator "$VALIDATOR" | j 'd["id"]')
ok $? "the creator posts the model-engineer task"
echo '{"name": "wider", "input_shape": [28, 28], "layers": [{"type": "flatten"},
  {"type": "dense", "units": 256, "activation": "relu"}, {"type": "dense", "units": 10}]}' >"$work/wider.json"
echo '{"name": "small", "input_shape": [14, 14], "layers": [{"type": "flatten"},
  {"type": "dense", "units": 10}]}' >"$work/small.json"
"$FM_BIN/fedmarket-engine" init --spec "$work/wider.json" --out "$work/wider0" --seed 3 >/dev/null &&
  "$FM_BIN/fedmarket-engine" train --model "$work/wider0" --out "$work/wider" \
    --train-images "$VAR/data/contributor-3/images-idx3-ubyte" \
    --train-labels "$VAR/data/contributor-3/labels-idx1-ubyte" --scale 255 --from-logits >/dev/null &&
  "$FM_BIN/fedmarket-engine" init --spec "$work/small.json" --out "$work/small" --seed 3 >/dev/null
ok $? "carol builds and trains her own architecture with the engine CLI"
eng_as=$(contributor carol assign "$eng" --json | j 'd["id"]')
expect_fail "a model that reads other inputs than the task's: exit 1, says so" 1 "shape|input" \
  contributor carol send-result "$eng_as" --model "$work/small" --examples 10
eng_rid=$(contributor carol send-result "$eng_as" --model "$work/wider" --examples 3000 --json | j 'd["id"]')
ok $? "carol sends her model (send-result --model)"
FEDMARKET_KEYSTORE_DIR=$VAR/keys/validator FEDMARKET_WORK_DIR=$VAR/work/validator \
  "$FM_BIN/fedmarket-validatord" "$eng" --once --data "$VAR/data/validator" >"$work/once.log" 2>&1
ok $? "a restarted validatord (--once) decides the waiting result and exits 0"
estat=$(creator status "$eng" --json)
[ "$(printf '%s' "$estat" | j "[r['state'] for r in d['results'] if r['id'] == '$eng_rid'][0]")" = accepted ]
ok $? "the better architecture is accepted"
printf '%s' "$estat" | j '[m for m in d["models"] if m["version"] == 1][0]["rule"]' | grep -qx best
ok $? "it becomes version 1 of the task (rule best)"

# ------------------------------------------ a manual review by the creator
bob_as=$(contributor bob assign "$short" --json | j 'd["id"]')
check "bob trains for the manual task" contributor bob train "$bob_as" --data "$VAR/data/contributor-2"
bob_rid=$(contributor bob send-result "$bob_as" --json | j 'd["id"]')
ok $? "bob submits"
creator list-results "$short" --state submitted --json | grep -q "$bob_rid"
ok $? "the creator lists bob's submitted result"
creator evaluate "$bob_rid" --data "$VAR/data/validator" --json |
  j 'int(0 < d["accuracy"] <= 1 and d["examples"] == 5000)' | grep -qx 1
ok $? "the creator evaluates it on held-out data"
expect_fail "reject without a reason: usage error, exit 2" 2 "reason" creator reject "$bob_rid"
check "the creator rejects it with a reason" creator reject "$bob_rid" --reason "not enough data for this task"
expect_fail "deciding twice: exit 1" 1 "decided|state|already" creator accept "$bob_rid"
[ "$(contributor bob status --json | j "[a['state'] for a in d if a['id'] == '$bob_as'][0]")" = rejected ]
ok $? "bob sees his assignment rejected"
expect_fail "refund before the escrow's deadline: exit 1, says cancel instead" 1 "deadline" \
  creator refund "$short"

# ------------------------------------------------------------------ bad input
unknown=0x$(printf '%064d' 7)
expect_fail "show of an unknown task: exit 1, says not found" 1 "not found" \
  contributor bob show "$unknown"
expect_fail "assign to an unknown task: exit 1" 1 "not found|no such" \
  contributor bob assign "$unknown"
expect_fail "status of a malformed task id: usage error, exit 2" 2 "64 hex" \
  creator status 0x1234
printf 'not-the-password\n' >"$work/wrong"
expect_fail "wrong keystore password: exit 1, says password" 1 "password" \
  contributor bob status --password-file "$work/wrong"

nonce_before=$("$cast" nonce --rpc-url "$rpc" "$CREATOR")
expect_fail "create-task with truncated weights: exit 1, names the weights" 1 "weights|bytes" \
  creator create-task --spec "$top/assets/tasks/fashion-mnist.json" --assets "$work/bad"
[ "$("$cast" nonce --rpc-url "$rpc" "$CREATOR")" = "$nonce_before" ]
ok $? "nothing was funded for the refused assets"
echo '{"input_shape": [4], "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]}' \
  >"$work/small.json"
"$FM_BIN/fedmarket-engine" init --spec "$work/small.json" --out "$work/small" >/dev/null
expect_fail "create-task of a model that cannot take the task's images: exit 1, names both shapes" 1 \
  "takes input \[4\].*\[28, 28\]" \
  creator create-task --spec "$top/assets/tasks/fashion-mnist.json" --assets "$work/small"
[ "$("$cast" nonce --rpc-url "$rpc" "$CREATOR")" = "$nonce_before" ]
ok $? "nothing was funded for the model that does not fit"
mkdir -p "$work/noitems"
echo '{"labels": ["a"], "items": []}' >"$work/noitems/items.json"
expect_fail "annotation assets without items: exit 1" 1 "items" \
  creator create-task --spec "$top/assets/tasks/annotate-reviews.json" --assets "$work/noitems"
expect_fail "create-task without --assets: usage error, exit 2" 2 "required" \
  creator create-task --spec "$top/assets/tasks/fashion-mnist.json"

# The assignment taken before has had its minute (plus the sweeper's).
left=$(( t_assigned + 70 - $(date +%s) ))
[ "$left" -gt 0 ] && sleep "$left"
for ((i = 0; i < 30; i++)); do
  st=$(contributor alice status --json | j "[a['state'] for a in d if a['id'] == '$expiring'][0]")
  [ "$st" = expired ] && break
  sleep 1
done
[ "$st" = expired ]; ok $? "the assignment expires after its 60 s"
expect_fail "send-result on the expired assignment: exit 1, says expired" 1 "expired" \
  contributor alice send-result "$expiring"
creator cancel "$short" --json | j 'd["state"]' | grep -qx cancelled
ok $? "the creator cancels the manual task"

"$top/deploy/local/demo" stop >/dev/null 2>&1
ok $? "the demo stops"
echo "1..$n"
[ "$fails" -eq 0 ]
