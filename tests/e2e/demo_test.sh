#!/usr/bin/env bash
# The demo's whole flow with assertions (TAP): rounds until the target
# accuracy, the final version at 0.80 or more on the creator's test data,
# the poisoned result rejected with its reasons every round, every
# accepted result paid exactly once the amount its round's scoring report
# gives (Released and Scored events and balances read with cast, an
# independent client; the report recomputed from its own numbers),
# funding = payouts + refund; then the
# CLIs against the kept demo: what a contributor sees of a decision, reads
# without a password, progress and Ctrl-C, a cancel with a result
# waiting, an account short of ether, hints that name what failed, and
# bad input: unknown task, wrong password, assets that fail verification,
# an expired assignment, usage errors.
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
  if [ "$rc" -eq "$want" ] && grep -qiE -- "$pat" <<<"$out"; then
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
  contributor alice send-result "$expiring" --model "$work/bad" --examples 10

# --------------------------------------------------------------- the rounds
status=$(creator status "$TASK" --json)
python3 - "$ACC0" "$ACCN" <<'EOF'
import sys
a0, an = float(sys.argv[1]), float(sys.argv[2])
sys.exit(0 if an >= 0.80 and an > a0 + 0.5 else 1)
EOF
ok $? "the final version $LAST reaches 0.80 on the creator's test data ($ACC0 -> $ACCN)"
printf '%s' "$status" | j '
int(d["state"] == "closed" and d["end_reason"] == "target_reached" and
    d["current_version"] == '"$LAST"' and 1 < '"$LAST"' < d["rounds"] and
    d["rounds_list"][-1]["accuracy"] >= d["target_accuracy"] and
    all(r["accuracy"] < d["target_accuracy"] for r in d["rounds_list"][:-1]))' | grep -qx 1
ok $? "the task stopped at the round whose version reached target_accuracy (round $LAST)"

verdicts() { # address -> the states of its results, round by round
  printf '%s' "$status" | j "
' '.join(r['state'] for r in sorted(d['results'], key=lambda r: r['round']) if r['contributor'] == '$1')"
}
every() { # state -> that state once per round
  local out="" i
  for ((i = 0; i < LAST; i++)); do out="$out${out:+ }$1"; done
  printf '%s' "$out"
}
v=$(verdicts "$ADDR_mallory")
[ "$v" = "$(every rejected)" ]; ok $? "the poisoned results are rejected every round ($v)"
printf '%s' "$status" | j "
all('median' in ((r['decision'] or {}).get('reason') or '') for r in d['results'] if r['contributor'] == '$ADDR_mallory')" | grep -qx True
ok $? "... each with its reasons (distance from the round's median update)"
for who in alice bob carol dave; do
  var=ADDR_$who
  v=$(verdicts "${!var}")
  [ "$v" = "$(every accepted)" ]; ok $? "$who's results are accepted in every round"
done
printf '%s' "$status" | j '
int(all(len(m["results"]) == 4 and
        sorted(m["results"]) == sorted(r["id"] for r in d["results"]
                                       if r["round"] == m["version"] and r["state"] == "accepted")
        for m in d["models"] if m["version"] >= 1))' | grep -qx 1
ok $? "each version aggregates exactly its round's 4 accepted results"

# --------------------------------------------- pay by contribution, with cast
logs=$("$cast" logs --json --rpc-url "$rpc" --from-block 0 --address "$ESCROW" \
  "Released(bytes32 indexed,bytes32 indexed,address indexed,uint256)" "$TASK" 2>/dev/null)
ok $? "cast reads the escrow's Released events"
n_paid=$(printf '%s' "$status" | j 'len([p for p in d["payouts"] if p["state"] == "confirmed"])')
printf '%s' "$logs" | j 'len(d)' | grep -qx "$n_paid"
ok $? "one Released event per confirmed payout ($n_paid)"
for who in alice bob carol dave mallory; do
  var=ADDR_$who
  addr=${!var}
  bal=$("$cast" balance --rpc-url "$rpc" "$addr" 2>/dev/null)
  # the amounts the marketplace fixed, event by event on chain
  same=$(printf '%s' "$logs" | python3 -c '
import json, sys
logs = json.load(sys.stdin); st = json.loads(sys.argv[1]); addr = sys.argv[2]
chain = sorted((l["topics"][2].lower(), int(l["data"], 16)) for l in logs
               if l["topics"][3].lower().endswith(addr[2:]))
db = sorted(("0x" + "0" * 32 + p["result_id"].replace("-", ""), int(p["amount_wei"]))
            for p in st["payouts"] if p["contributor"] == addr)
print(int(chain == db), sum(a for _, a in chain))' "$status" "$addr")
  if [ "$who" = mallory ]; then
    [ "$same" = "1 0" ] && [ "$bal" = 0 ]; ok $? "mallory is paid nothing (balance $bal)"
  else
    [ "${same% *}" = 1 ] && [ "${same#* }" = "$bal" ]
    ok $? "$who is paid on chain exactly the amounts the marketplace fixed, once each (${same#* } wei)"
  fi
done
amounts=$(printf '%s' "$status" | j 'len(set(p["amount_wei"] for p in d["payouts"] if p["round"] == 1))')
[ "$amounts" -ge 3 ]; ok $? "amounts differ by contribution ($amounts different amounts in round 1)"
printf '%s' "$status" | j '
int(all(sum(int(p["amount_wei"]) for p in d["payouts"] if p["round"] == r["round"]) <=
        d["results_per_round"] * int(d["reward_wei"]) for r in d["rounds_list"]))' | grep -qx 1
ok $? "no round pays more than its pool"
scored=$("$cast" logs --json --rpc-url "$rpc" --from-block 0 --address "$ESCROW" \
  "Scored(bytes32 indexed,uint32 indexed,bytes32)" "$TASK" 2>/dev/null)
printf '%s' "$scored" | python3 -c '
import json, sys
logs = json.load(sys.stdin); st = json.loads(sys.argv[1])
want = sorted({(p["round"], "0x" + p["report"]) for p in st["payouts"]})
got = sorted((int(l["topics"][2], 16), l["data"].lower()) for l in logs)
sys.exit(0 if got == want and len(got) == st["current_version"] else 1)' "$status"
ok $? "one Scored event per round, carrying the hash of the round's report"
report=$(FEDMARKET_KEYSTORE_DIR=$VAR/keys/creator "$FM_BIN/fedmarket-store" cat "$REPORT" 2>/dev/null)
ok $? "fedmarket-store cat fetches round 1's scoring report"
printf '%s' "$report" | python3 -c '
import json, sys
r = json.load(sys.stdin); st = json.loads(sys.argv[1])
pool = int(r["pool_wei"]); fs = r["floor_share"]; n = len(r["results"])
floor = pool * round(fs * 1e6) // (10**6 * n); rest = pool - floor * n
pos = [max(0.0, x["phi"]) for x in r["results"]]; s = sum(pos)
w = [round(p / s * 1e6) if s > 0 and p > 0 else 0 for p in pos]; W = sum(w)
mine = [floor + (rest * wi // W if W else 0) for wi in w]
paid = {p["result_id"]: int(p["amount_wei"]) for p in st["payouts"] if p["round"] == 1}
ok = (mine == [int(x["amount_wei"]) for x in r["results"]] and
      all(paid.get(x["result_id"], 0) == int(x["amount_wei"]) for x in r["results"]) and
      len(r["evaluations"]) == 2 ** n and r["method"] == "exact" and r["round"] == 1)
sys.exit(0 if ok else 1)' "$status"
ok $? "the report's own numbers give the amounts paid, and it lists all 2^n evaluated coalitions"
refund=$("$cast" logs --json --rpc-url "$rpc" --from-block 0 --address "$ESCROW" \
  "Refunded(bytes32 indexed,address indexed,uint256,bool)" "$TASK" 2>/dev/null | j 'int(d[0]["data"][2:66], 16)')
printf '%s' "$status" | j "
int(int(d['funded_wei']) == $refund + sum(int(p['amount_wei']) for p in d['payouts'] if p['state'] == 'confirmed'))" | grep -qx 1
ok $? "funding = payouts + refund, on chain (refund $refund wei)"
task_balance=$("$cast" call --rpc-url "$rpc" "$ESCROW" \
  "tasks(bytes32)(address,uint64,uint32,address,uint32,uint8,uint256,uint256)" "$TASK" 2>/dev/null | tail -1 | cut -d' ' -f1)
[ "$task_balance" = 0 ]; ok $? "the escrow holds nothing more of the task"
pays=$(printf '%s' "$status" | j 'sorted(set(p["tx_hash"] for p in d["payouts"]))[0]')
receipt=$("$cast" receipt --json --rpc-url "$rpc" "$pays" 2>/dev/null | j 'd["status"]')
[ "$receipt" = 0x1 ]; ok $? "a payout transaction the marketplace reports succeeded on chain ($receipt)"

earn=$(contributor alice earnings --json)
printf '%s' "$earn" | j 'int(d["confirmed_wei"] == d["balance_wei"])' | grep -qx 1
ok $? "alice's earnings agree with the chain"
contributor bob earnings | grep -q "Shapley score"
ok $? "earnings shows each payout's round, score and report"

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
# one result a round: the accepted model ends the round, and the task
variant "$top/assets/tasks/fashion-engineer.json" min_accuracy 0.5 |
  python3 -c 'import json, sys; d = json.load(sys.stdin); d["max_assignments"] = 1
d["aggregation"]["min_results_per_round"] = 1; print(json.dumps(d))' >"$work/engineer.json"
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
contributor bob status --json |
  j "[a['result']['decision']['reason'] for a in d if a['id'] == '$bob_as'][0]" |
  grep -qx "not enough data for this task"
ok $? "status --json gives bob the creator's reason"
contributor bob status | grep -A3 "^$bob_as" | grep -c "rejected: not enough data for this task" >/dev/null
ok $? "status in text gives bob the reason under the assignment"
alice_tx=$(printf '%s' "$earn" | j '[p["tx_hash"] for p in d["payouts"] if p["state"] == "confirmed"][0]')
contributor alice status | grep -cE "accepted; payout of 0\.[0-9]+ ETH confirmed in transaction $alice_tx" >/dev/null
ok $? "status shows alice's accepted result with its payout's transaction"
expect_fail "refund before the escrow's deadline: exit 1, says cancel instead" 1 "deadline" \
  creator refund "$short"


# ---------------------------------- reading needs an address, not a password
# No password file and no terminal (setsid): whatever needs the key fails.
nopw() { local who=$1; shift
  env -u FEDMARKET_PASSWORD_FILE FEDMARKET_KEYSTORE_DIR="$VAR/keys/$who" \
    FEDMARKET_WORK_DIR="$VAR/work/$who" setsid -w "$@" </dev/null; }
expect_fail "without a password, signing fails (the check below means something)" 1 "password" \
  nopw bob "$FM_BIN/fedmarket-contributor" assign "$eng"
nopw alice "$FM_BIN/fedmarket-contributor" earnings --json | j 'd["address"]' | grep -qx "$ADDR_alice"
ok $? "earnings reads the address from the keystore, asking no password"
nopw alice "$FM_BIN/fedmarket-contributor" status --json |
  j "int(any(a['id'] == '$expiring' for a in d))" | grep -qx 1
ok $? "status asks no password"
nopw creator "$FM_BIN/fedmarket-creator" list-tasks --mine --json |
  j "int(any(t['id'] == '$TASK' for t in d))" | grep -qx 1
ok $? "list-tasks --mine asks no password"
contributor bob earnings --address "$ADDR_alice" --json | j 'd["address"]' | grep -qx "$ADDR_alice"
ok $? "earnings --address reads another account"

# -------------------- a slow task: progress, Ctrl-C, a cancel with a result
cat >"$work/slow.json" <<'EOF'
{ "title": "e2e: a task that trains long and is cancelled", "kind": "model_contributor",
  "reward_wei": "1000", "max_assignments": 3, "assignment_duration_s": 3600,
  "lifetime_s": 3600, "validation": { "strategy": "manual" },
  "training": { "epochs": 300, "batch_size": 32, "learning_rate": 0.001,
    "optimizer": "adam", "loss": "sparse_categorical_crossentropy", "from_logits": true,
    "data": { "kind": "image", "format": "idx", "shape": [28, 28], "num_classes": 10,
      "preprocessing": { "scale": 255 } } } }
EOF
slow=$(creator create-task --json --spec "$work/slow.json" --assets "$top/assets/models/fashion-mlp" | j 'd["id"]')
ok $? "the creator posts a task of 300 epochs"
out=$(contributor dave show "$slow")
grep -q "300 epoch" <<<"$out" && grep -q "idx" <<<"$out" && grep -q "divided by 255" <<<"$out" &&
  grep -q "sample shape: \[28, 28\]" <<<"$out"
ok $? "show in text says how to train: epochs, data format, shape, preprocessing"
slow_dave=$(contributor dave assign "$slow" 2>/dev/null)
[[ $slow_dave =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
ok $? "assign prints the assignment id alone on stdout (A=\$(... assign ...))"

# On a terminal (script gives one) with NO_COLOR: earnings (in colour
# on a terminal otherwise), the training bar, then Ctrl-C.
export FEDMARKET_KEYSTORE_DIR=$VAR/keys/dave FEDMARKET_WORK_DIR=$VAR/work/dave
env -u NO_COLOR script -qfec "$FM_BIN/fedmarket-contributor earnings" "$work/color.log" >/dev/null 2>&1
grep -q $'\033\[32m' "$work/color.log"
ok $? "on a terminal, earnings is in colour"
cat >"$work/ctrlc.sh" <<EOF
"$FM_BIN/fedmarket-contributor" earnings
"$FM_BIN/fedmarket-contributor" train "$slow_dave" --data "$VAR/data/contributor-4" &
p=\$!
for i in \$(seq 1 300); do grep -q ETA "$work/tty.log" 2>/dev/null && break; sleep 0.1; done
kill -INT \$p
wait \$p
echo "exit=\$?"
EOF
NO_COLOR=1 timeout 120 script -qfec "bash $work/ctrlc.sh" "$work/tty.log" >/dev/null 2>&1
unset FEDMARKET_KEYSTORE_DIR FEDMARKET_WORK_DIR
tr '\r' '\n' <"$work/tty.log" >"$work/tty.txt"
grep -qE "epoch [0-9]+/300, loss [0-9.]+, ETA [0-9]+" "$work/tty.txt"
ok $? "with NO_COLOR on a terminal, training shows one line: epoch N/M, loss and ETA"
python3 - "$work/tty.txt" <<'EOF'
import re, sys
seen = [(int(m.group(1)), int(m.group(2))) for m in
        (re.search(r"\] +(\d+)%, epoch (\d+)/300", l) for l in open(sys.argv[1])) if m]
pcts, epochs = [p for p, _ in seen], [e for _, e in seen]
sys.exit(0 if len(seen) > 2 and pcts == sorted(pcts) and epochs == sorted(epochs)
         and epochs[-1] > 1 and pcts[-1] <= 100 * epochs[-1] // 300 + 1 else 1)
EOF
ok $? "the bar runs once over all epochs (it does not restart at each epoch)"
grep -q "confirmed:" "$work/tty.txt" && ! grep -q $'\033\[3[0-9]m' "$work/tty.log"
ok $? "NO_COLOR turns the colours off (and only them)"
grep -q "interrupted" "$work/tty.txt" && grep -q "keeps its slot of task $slow until" "$work/tty.txt" &&
  grep -q "run the same command again" "$work/tty.txt" && grep -q "exit=130" "$work/tty.txt"
ok $? "Ctrl-C during training says what is kept (the slot, until its deadline) and how to resume"

# Carol sends a model made by 'train' for another task: its count comes along.
slow_carol=$(contributor carol assign "$slow" 2>/dev/null)
expect_fail "send-result --model of a model without its example count: usage error naming --examples" 2 \
  "--examples" contributor carol send-result "$slow_carol" --model "$top/assets/models/fashion-mlp"
rm -rf "$work/alice-model"
cp -r "$VAR/work/alice/assignments/$expiring/model" "$work/alice-model"
slow_rid=$(contributor carol send-result "$slow_carol" --model "$work/alice-model" 2>/dev/null)
ok $? "send-result --model of a model made by train needs no --examples"
alice_n=$(python3 -c 'import os, sys; print((os.path.getsize(sys.argv[1]) - 8))' "$VAR/data/contributor-1/labels-idx1-ubyte")
[ "$(creator list-results "$slow" --json | j "[r['num_examples'] for r in d if r['id'] == '$slow_rid'][0]")" = "$alice_n" ]
ok $? "its result counts the $alice_n examples train recorded beside the model"
out=$(creator cancel "$slow" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "waiting for a decision: $slow_rid from $ADDR_carol" <<<"$out" &&
  grep -q "hint: accept or reject them first.*--force" <<<"$out"
ok $? "cancel while a result waits: exit 1, names the result and its contributor, says accept/reject or --force"
[ "$(creator status "$slow" --json | j 'd["state"]')" = open ]
ok $? "the refused cancel left the task open"
creator cancel "$slow" --force >"$work/cancel.out" 2>&1 && grep -q "$slow_rid.*task cancelled" "$work/cancel.out"
ok $? "cancel --force cancels and says which results it rejected"
[ "$(contributor carol status --json | j "[a['result']['state'] + '|' + a['result']['decision']['reason'] for a in d if a['id'] == '$slow_carol'][0]")" = "rejected|task cancelled" ]
ok $? "the waiting result is rejected with reason \"task cancelled\" (none stays submitted)"
out=$(contributor dave send-result "$slow_dave" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "cancelled by its creator" <<<"$out" && ! grep -q "new slot" <<<"$out"
ok $? "send-result on the cancelled task says it was cancelled, not to take a new slot"
for ((i = 0; i < 60; i++)); do
  refund_tx=$(creator status "$slow" --json | j 'd["refund_tx"] or ""')
  [ -n "$refund_tx" ] && break
  sleep 1
done
creator status "$slow" | grep -cE "refund: [0-9.]+ ETH confirmed in transaction $refund_tx" >/dev/null
ok $? "status in text shows the refund's transaction ($refund_tx)"

# ----------------------------------------- an account short of ether
poor=$("$FM_BIN/fedmarket-creator" keys new --light --keystore-dir "$work/poor" \
  --password-file "$VAR/password" --json | j 'd["address"].lower()')
"$cast" rpc --rpc-url "$rpc" anvil_setBalance "$poor" 0x470DE4DF820000 >/dev/null # 0.02 ETH
expect_fail "create-task from an account of 0.02 ETH: exit 1, says what is needed and held, in ETH" 1 \
  "needs 1\.2[0-9]* ETH \(reward 0\.02 ETH x 60 results = 1\.2 ETH.*gas\) and $poor holds 0\.02 ETH" \
  env FEDMARKET_KEYSTORE_DIR="$work/poor" "$FM_BIN/fedmarket-creator" create-task \
  --spec "$top/assets/tasks/fashion-mnist.json" --assets "$top/assets/models/fashion-mlp"
[ "$("$cast" nonce --rpc-url "$rpc" "$poor")" = 0 ]
ok $? "nothing was sent from the short account"

# ------------------------------------------ the operator's view of an escrow
out=$("$FM_BIN/fedmarket-admin" escrow-task "$TASK")
grep -qE "^reward +0\.02 ETH$" <<<"$out" && grep -qE "^deadline +20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC$" <<<"$out"
ok $? "admin escrow-task prints ether and dates"
"$FM_BIN/fedmarket-admin" escrow-task "$TASK" --json | j 'd["reward_wei"] + " " + str(d["deadline"] > 0)' |
  grep -qx "20000000000000000 True"
ok $? "admin escrow-task --json keeps wei and Unix time"

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
  contributor bob assign "$eng" --password-file "$work/wrong"
expect_fail "list-results of an unknown task: exit 1, says not found (as status does)" 1 \
  "task not found" creator list-results "$unknown"

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

# ------------------------------------- hints name what failed, or nothing
# expect_hint description code want unwanted command...: the exit code,
# stderr matching want and not unwanted
expect_hint() {
  local d=$1 want_rc=$2 want=$3 unwanted=$4; shift 4
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qiE -- "$want" <<<"$out" && ! grep -qiE -- "$unwanted" <<<"$out"; then
    ok 0 "$d"
  else
    ok 1 "$d"
    echo "#   exit $rc (want $want_rc), stderr: $out"
  fi
}
hint_as=$(contributor carol assign "$short" 2>/dev/null)
expect_hint "a missing --data file: no hint about tasks" 1 "$work/nope" "hint:.*list-tasks" \
  contributor carol train "$hint_as" --data "$work/nope"
expect_hint "a missing --password-file: the hint names --password-file" 1 "hint:.*--password-file" "list-tasks" \
  contributor carol assign "$eng" --password-file "$work/nope"
expect_hint "an unknown assignment: the hint says 'status'" 1 "hint:.*'status'" "list-tasks" \
  contributor carol send-result 123e4567-e89b-12d3-a456-426614174000
expect_hint "an unknown result: the hint says 'list-results'" 1 "hint:.*list-results" "list-tasks" \
  creator accept 123e4567-e89b-12d3-a456-426614174000
expect_hint "only the chain node down: earnings hints at rpc_url, not the services" 1 "hint:.*rpc_url" \
  "taskd_url|assignd_url|validationd_url" env FEDMARKET_RPC_URL=http://127.0.0.1:1 \
  FEDMARKET_KEYSTORE_DIR="$VAR/keys/alice" "$FM_BIN/fedmarket-contributor" earnings
expect_hint "only assignd down: status hints at assignd_url" 1 "hint:.*assignd_url" "rpc_url|taskd_url" \
  env FEDMARKET_ASSIGND_URL=http://127.0.0.1:1 FEDMARKET_KEYSTORE_DIR="$VAR/keys/alice" \
  "$FM_BIN/fedmarket-contributor" status

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
