#!/usr/bin/env bash
# Issue 18's attackers on real services and a real escrow. The copier: a
# fresh key with no ETH takes a slot of a task that accepts automatically
# and sends another contributor's result as its own; it is refused at
# submission (409 naming the earlier result), its slot stays its own and
# nothing is paid to it (no payout row, no wei on chain). The inflater:
# a count over the task's max_examples_per_result is refused by
# send-result before anything is uploaded. Prints TAP.
set -uo pipefail
# shellcheck source=fed_tap.sh
. "$(dirname "$0")/fed_tap.sh"
# shellcheck source=market_fx.sh
. "$(dirname "$0")/market_fx.sh"
: "${FM_CAST:?}"

fx_up alice mallory
"$top/deploy/local/make-shards" "$T/data" --clients 1 --per-client 500 --alpha 100 --seed 5 \
  >"$T/shards.log" 2>&1 || bail "make-shards"
seed=$top/assets/models/fashion-mlp
balance() { "$FM_CAST" balance "$1" --rpc-url "$FEDMARKET_RPC_URL"; }
psql_fx() { "$FM_PGBIN/psql" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres -d "$fx_db" -tAc "$1"; }
until_status() { # S TASK EXPR: until the Python condition on status --json holds
  local end=$(( $(date +%s) + $1 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ "$(creator status "$2" --json 2>/dev/null | j "int(bool($3))" 2>/dev/null)" = 1 ] && return 0
    sleep 0.3
  done
  return 1
}

fx_spec '{"results_per_round": 2, "validation": {"strategy": "auto", "auto_approval_delay_s": 0}}' \
  >"$T/spec.json"
task=$(creator create-task --json --spec "$T/spec.json" --assets "$seed" | j 'd["id"]') || bail "create-task"
contributor alice run "$task" --json --data "$T/data/contributor-1" >"$T/alice.json" 2>"$T/alice.log" ||
  bail "alice run"
ok "alice's honest result is accepted and paid" \
  until_status 60 "$task" 'sum(1 for p in d["payouts"] if p["state"] == "confirmed") == 1'
creator status "$task" --json >"$T/st.json"
rid=$(j 'd["results"][0]["id"]' <"$T/st.json")
ref=$(j 'd["results"][0]["bundle_ref"]' <"$T/st.json")
mallory=$(addr mallory)
ok "mallory is a fresh key: no wei" test "$(balance "$mallory")" = 0

# mallory takes the free slot and sends alice's model as hers
maid=$(contributor mallory assign "$task") || bail "mallory assign"
"$bin/fedmarket-store" pull "$ref" "$T/copy" >"$T/pull.log" 2>&1 || bail "pull"
contributor mallory send-result "$maid" --model "$T/copy/model" --examples 500 \
  >"$T/copy.out" 2>"$T/copy.err"
r=$?
ok "the copy is refused (exit $r)" test "$r" != 0
ok "... naming alice's result: copies are not paid" \
  grep -qE "result $rid of this task has the same (bundle|weights): copies are not paid" "$T/copy.err"
# the same weights in a bundle of its own (one more file): refused too
cp -r "$T/copy/model" "$T/copy2"
echo "mine" >"$T/copy2/NOTES.txt"
contributor mallory send-result "$maid" --model "$T/copy2" --examples 500 >"$T/copy2.out" 2>"$T/copy2.err"
r=$?
ok "the same weights in another bundle are refused (exit $r)" \
  bash -c "[ $r != 0 ] && grep -q 'result $rid of this task has the same weights: copies are not paid' '$T/copy2.err'"
ok "mallory's assignment is still active: nothing was recorded" \
  test "$(psql_fx "SELECT state FROM assignments WHERE id = '$maid'")" = active
ok "the task holds alice's result alone" \
  test "$(psql_fx "SELECT count(*) FROM results WHERE task_id = '$task'")" = 1
sleep 2 # a sweep or two: nothing may come of the refused copies
ok "no payout for mallory in the database" \
  test "$(psql_fx "SELECT count(*) FROM payouts WHERE lower(contributor) = '$mallory'")" = 0
ok "no wei for mallory on chain" test "$(balance "$mallory")" = 0
ok "alice holds her reward on chain" test "$(balance "$(addr alice)")" = 1000

# --- weights nobody can inflate ----------------------------------------------
fx_spec '{"results_per_round": 1, "max_examples_per_result": 500,
          "validation": {"strategy": "manual"}}' >"$T/capped.json"
ctask=$(creator create-task --json --spec "$T/capped.json" --assets "$seed" | j 'd["id"]') ||
  bail "create-task (capped)"
caid=$(contributor mallory assign "$ctask") || bail "mallory assign (capped)"
objects() { find "$T/store" -type f | wc -l; }
before=$(objects)
for claim in 501 1000000000000; do
  contributor mallory send-result "$caid" --model "$T/copy2" --examples "$claim" \
    >"$T/inflate.out" 2>"$T/inflate.err"
  r=$?
  ok "send-result --examples $claim over the task's 500: refused (exit $r)" \
    bash -c "[ $r != 0 ] && grep -q 'num_examples: $claim is not in 1 to 500 (task.max_examples_per_result)' '$T/inflate.err'"
done
ok "... before anything was uploaded" test "$(objects)" = "$before"
rm -f "$T/copy2/training.json"
contributor mallory send-result "$caid" --model "$T/copy2" >/dev/null 2>"$T/nocount.err"
r=$?
ok "send-result --model without a count: usage error naming --examples (exit $r)" \
  bash -c "[ $r = 2 ] && grep -q -- '--examples' '$T/nocount.err'"
rid2=$(contributor mallory send-result "$caid" --model "$T/copy2" --examples 500 --json | j 'd["id"]')
ok "--examples 500, the cap: accepted for checking" test -n "$rid2"
ok "... recorded with 500 examples" \
  test "$(psql_fx "SELECT num_examples FROM results WHERE id = '$rid2'")" = 500
echo "1..$n"
