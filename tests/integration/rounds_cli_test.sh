#!/usr/bin/env bash
# The clients over rounds, on real services with fedmarket-validatord
# running them unattended: three contributors follow a three-round task
# with `run --rounds all` to its end (rounds_done, versions 1 to 3, each
# the FedAvg of its own round's three results, all paid), while
# `fedmarket-creator watch` follows it and `status` shows its table of
# rounds; a contributor killed while training resumes its assignment, one
# that trained by hand sends that model without training again, one
# interrupted (Ctrl-C) while waiting for a version goes on where it was;
# `abandon` gives a slot back. Prints TAP.
set -uo pipefail
# shellcheck source=fed_tap.sh
. "$(dirname "$0")/fed_tap.sh"
# shellcheck source=market_fx.sh
. "$(dirname "$0")/market_fx.sh"

fx_up alice bob carol
"$top/deploy/local/make-shards" "$T/data" --clients 3 --per-client 1000 --alpha 100 --seed 3 \
  >"$T/shards.log" 2>&1 || bail "make-shards"
held=$T/data/validator
validator=$(addr validator)
seed=$top/assets/models/fashion-mlp

# in the background with WHO's keys; $! is the program itself
bg() { # WHO OUT ERR PROGRAM ARGS...
  local w=$1 out=$2 err=$3; shift 3
  FEDMARKET_KEYSTORE_DIR=$T/keys/$w FEDMARKET_WORK_DIR=$T/work/$w "$@" >"$out" 2>"$err" </dev/null &
}
# waits for the pids (at most S seconds); their exit codes in rc[pid]
declare -A rc
wait_all() { # S PID...
  local s=$1 p end; shift
  end=$(( $(date +%s) + s ))
  for p in "$@"; do
    while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p"
    rc[$p]=$?
  done
}
# waits until the Python condition on `creator status TASK --json` holds
until_status() { # S TASK EXPR
  local end=$(( $(date +%s) + $1 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ "$(creator status "$2" --json 2>/dev/null | j "int(bool($3))" 2>/dev/null)" = 1 ] && return 0
    sleep 0.3
  done
  return 1
}

# one validator daemon for every task of this key
bg validator "$T/vd.out" "$T/vd.log" "$bin/fedmarket-validatord" --data "$held" --interval 1
vd=$!

# --- three contributors, three rounds, to the end ---------------------------
fx_spec '{"rounds": 3, "results_per_round": 3, "min_results_per_round": 3,
          "round_duration_s": 600, "validation": {"strategy": "custom"},
          "aggregation": {"rule": "fedavg"}}' >"$T/three.json"
task=$(creator create-task --json --spec "$T/three.json" --assets "$seed" --validator "$validator" |
  j 'd["id"]') || bail "create-task"
bg creator "$T/watch.json" "$T/watch.log" "$bin/fedmarket-creator" watch "$task" --json --interval 1
watch=$!
pids=()
k=1
for w in alice bob carol; do
  bg "$w" "$T/run-$w.json" "$T/run-$w.log" "$bin/fedmarket-contributor" run "$task" --rounds all \
    --json --data "$T/data/contributor-$k"
  pids+=($!)
  k=$((k + 1))
done
wait_all 400 "${pids[@]}" "$watch"
k=0
for w in alice bob carol; do
  ok "$w: run --rounds all exits 0 (exit ${rc[${pids[$k]}]})" test "${rc[${pids[$k]}]}" = 0
  ok "... one JSON line per round: 1, 2, 3, each sent from the version before" python3 - "$T/run-$w.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["round"] for l in lines] == [1, 2, 3], lines
for l in lines:
    assert not l["resumed"] and not l["trained_before"]
    assert l["training"]["base_version"] == l["round"] - 1
    assert l["result"]["round"] == l["round"] and l["result"]["base_version"] == l["round"] - 1
PY
  k=$((k + 1))
done
ok "... the last one says the task's last round is done" grep -q "round 3 was the last of task $task" "$T/run-alice.log"
creator status "$task" --json >"$T/st.json"
ok "the task ended rounds_done at version 3" python3 - "$T/st.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "closed" and d["end_reason"] == "rounds_done", (d["state"], d["end_reason"])
assert d["current_version"] == 3 and d["rounds"] == 3
PY
ok "each version r combines the three accepted results of round r" python3 - "$T/st.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rounds = {r["id"]: r["round"] for r in d["results"]}
vs = sorted(d["models"], key=lambda m: m["version"])
assert [m["version"] for m in vs] == [0, 1, 2, 3]
for m in vs[1:]:
    assert m["rule"] in ("fedavg", "kept"), m["rule"]
    assert len(m["results"]) == 3 and {rounds[r] for r in m["results"]} == {m["version"]}, m
PY
ok "--json's rounds_list: three published rounds, version r for round r" python3 - "$T/st.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rl = d["rounds_list"]
assert [(r["round"], r["state"], r["version"], r["accepted"]) for r in rl] == \
    [(1, "published", 1, 3), (2, "published", 2, 3), (3, "published", 3, 3)], rl
PY
ok "every accepted result is paid: nine payouts are the whole escrow" \
  until_status 60 "$task" 'sum(1 for p in d["payouts"] if p["state"] == "confirmed") == 9 and sum(int(p["amount_wei"]) for p in d["payouts"]) == int(d["funded_wei"]) and sum(int(r["paid_wei"]) for r in d["rounds_list"]) == int(d["funded_wei"])'
creator status "$task" >"$T/st.txt"
ok "status shows the table of rounds" bash -c "
  grep -q '^rounds: 3, current round 3, version 3 (sync, 3 result(s) a round (at least 3))' '$T/st.txt' &&
  grep -q '  round  state      version  accepted  rejected  accuracy  epsilon  paid' '$T/st.txt' &&
  grep -qE '^ +1  published  v1 +3 +0 +0\.[0-9]{4} +- +0\.000000000000003 ETH' '$T/st.txt' &&
  grep -qE '^ +3  published  v3 ' '$T/st.txt' && grep -q '  ended: rounds_done' '$T/st.txt'"
ok "the validator published each version once" bash -c "
  for v in 1 2 3; do [ \$(grep -c \"published version \$v \" '$T/vd.log') = 1 ] || exit 1; done"
ok "watch exits 0 once the task is over (exit ${rc[$watch]})" test "${rc[$watch]}" = 0
ok "... saying why" grep -q "task $task is closed: rounds_done" "$T/watch.log"
ok "... having printed each change, the last one the end" python3 - "$T/watch.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) >= 4, len(lines)
assert len({json.dumps(l, sort_keys=True) for l in lines}) == len(lines)  # only changes
last = lines[-1]
assert last["end_reason"] == "rounds_done" and last["current_version"] == 3
assert len(last["rounds_list"]) == 3
PY

# --- resume: killed while training, trained by hand, interrupted while waiting
fx_spec '{"rounds": 3, "results_per_round": 2, "min_results_per_round": 2,
          "round_duration_s": 600, "validation": {"strategy": "custom"},
          "aggregation": {"rule": "fedavg"},
          "training": {"epochs": 30, "batch_size": 32, "learning_rate": 0.001,
            "optimizer": "adam", "loss": "sparse_categorical_crossentropy",
            "from_logits": true, "seed": 7,
            "data": {"kind": "image", "format": "idx", "shape": [28, 28],
                     "num_classes": 10, "preprocessing": {"scale": 255}}}}' >"$T/resume.json"
rtask=$(creator create-task --json --spec "$T/resume.json" --assets "$seed" --validator "$validator" |
  j 'd["id"]') || bail "create-task (resume)"
mine() { # WHO: WHO's assignments of the resume task as "round:state:id" lines
  contributor "$1" status --json | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    if a["task_id"] == sys.argv[1]:
        print("%d:%s:%s" % (a["round"], a["state"], a["id"]))' "$rtask"
}
# alice trains 30 epochs of 5000 images (seconds): killed once her slot
# is taken
bg alice "$T/kill.json" "$T/kill.log" "$bin/fedmarket-contributor" run "$rtask" --json --data "$held"
p=$!
for ((t = 0; t < 300; t++)); do
  mine alice | grep -q '^1:active:' && break
  sleep 0.1
done
kill -KILL "$p"
wait "$p" 2>/dev/null
killed=$(mine alice | grep '^1:active:' | cut -d: -f3)
ok "alice killed while training: her assignment of round 1 stays active, nothing sent" \
  test -n "$killed" -a "$(mine alice | wc -l)" = 1
contributor alice run "$rtask" --json --data "$held" >"$T/resumed.json" 2>"$T/resumed.log"
r=$?
ok "run again resumes it (exit $r)" test "$r" = 0
ok "... the same assignment, resumed, sent for round 1" python3 - "$T/resumed.json" "$killed" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 1 and lines[0]["assignment"] == sys.argv[2] and lines[0]["resumed"], lines
assert lines[0]["round"] == 1 and lines[0]["result"]["state"] == "submitted"
PY
ok "alice still holds one assignment of round 1" test "$(mine alice | wc -l)" = 1
# a second run with the round's result sent: nothing to do, exit 0
contributor alice run "$rtask" --data "$held" >"$T/again.out" 2>"$T/again.log"
r=$?
ok "run once more: round 1's result was sent already, exit 0 (exit $r)" test "$r" = 0
ok "... saying so" grep -q "round 1: your result for assignment $killed was sent already (" "$T/again.log"
ok "... and nothing new was taken" test "$(mine alice | wc -l)" = 1

# bob trains by hand, then run sends that model as it is
baid=$(contributor bob assign "$rtask") || bail "bob assign"
contributor bob train "$baid" --data "$T/data/contributor-2" --json >"$T/bob-train.json" 2>"$T/bob-train.log" ||
  bail "bob train"
bg bob "$T/bob.json" "$T/bob.log" "$bin/fedmarket-contributor" run "$rtask" --rounds all --json \
  --data "$T/data/contributor-2"
bobp=$!
# round 1 closes with alice's and bob's results; bob goes on with round 2
for ((t = 0; t < 600; t++)); do
  mine bob | grep -q '^2:submitted:' && break
  kill -0 "$bobp" 2>/dev/null || break
  sleep 0.2
done
sleep 1.5 # bob is waiting for version 2 (alice has not trained for it)
kill -INT "$bobp"
wait "$bobp"
r=$?
ok "bob's run sent the model he trained by hand, without training again" python3 - "$T/bob.json" "$baid" "$T/bob-train.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
hand = json.load(open(sys.argv[3]))
first = lines[0]
assert first["round"] == 1 and first["assignment"] == sys.argv[2], first
assert first["resumed"] and first["trained_before"], first
assert first["training"]["metrics"] == hand["metrics"], (first["training"], hand)
assert [l["round"] for l in lines] == [1, 2], lines
PY
ok "Ctrl-C while waiting for version 2: ends as interrupted (exit $r)" test "$r" = 130
ok "... saying what stays and how to go on" \
  grep -q "interrupted while waiting for version 2 of task $rtask; what was sent stays sent: run the same command again to go on" "$T/bob.log"
bg bob "$T/bob2.json" "$T/bob2.log" "$bin/fedmarket-contributor" run "$rtask" --rounds all --json \
  --data "$T/data/contributor-2"
bobp=$!
bg alice "$T/alice2.json" "$T/alice2.log" "$bin/fedmarket-contributor" run "$rtask" --rounds all --json \
  --data "$T/data/contributor-1"
alicep=$!
wait_all 400 "$bobp" "$alicep"
ok "bob and alice go on to the end (exit ${rc[$bobp]}, ${rc[$alicep]})" test "${rc[$bobp]}${rc[$alicep]}" = 00
ok "... bob from his round 2, sent already, then round 3" python3 - "$T/bob2.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [(l["round"], l.get("sent_before", False)) for l in lines] == [(2, True), (3, False)], lines
PY
ok "... alice with rounds 2 and 3" python3 - "$T/alice2.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["round"] for l in lines] == [2, 3], lines
PY
rounds_of() { mine "$1" | cut -d: -f1,2 | sort | tr '\n' ' '; }
ok "one assignment per contributor per round, each with its result" bash -c "
  a='$(rounds_of alice)' b='$(rounds_of bob)'
  [[ \$a =~ ^1:[a-z]+\ 2:[a-z]+\ 3:[a-z]+\ \$ ]] && [[ \$b =~ ^1:[a-z]+\ 2:[a-z]+\ 3:[a-z]+\ \$ ]] &&
  ! [[ \$a\$b =~ active|expired|abandoned ]]"
ok "the task ended rounds_done at version 3" \
  until_status 30 "$rtask" 'd["end_reason"] == "rounds_done" and d["current_version"] == 3'

# --- abandon -------------------------------------------------------------------
fx_spec '{"results_per_round": 2, "validation": {"strategy": "manual"}}' >"$T/one.json"
otask=$(creator create-task --json --spec "$T/one.json" --assets "$seed" | j 'd["id"]') || bail "create-task (one)"
caid=$(contributor carol assign "$otask") || bail "carol assign"
free() { creator status "$otask" --json | j 'd["slots_free"]'; }
ok "a slot taken: one of two free" test "$(free)" = 1
contributor carol abandon "$caid" >"$T/ab.out" 2>"$T/ab.err"
r=$?
ok "abandon gives it back (exit $r)" test "$r" = 0
ok "... saying so" grep -q "assignment $caid of task $otask is abandoned: its slot in round 1 is free again" "$T/ab.out"
ok "... and the slot is free" test "$(free)" = 2
contributor carol abandon "$caid" >"$T/ab2.out" 2>"$T/ab2.err"
r=$?
ok "abandon again: exit 1, saying it is not active (exit $r)" \
  bash -c "[ $r = 1 ] && grep -q 'abandoned, not active' '$T/ab2.err'"
contributor carol abandon not-a-uuid >/dev/null 2>"$T/ab3.err"
r=$?
ok "abandon of a malformed id: usage error naming it (exit $r)" \
  bash -c "[ $r = 2 ] && grep -q 'assignment \"not-a-uuid\": expected a UUID' '$T/ab3.err'"
kill -TERM "$vd"
echo "1..$n"
