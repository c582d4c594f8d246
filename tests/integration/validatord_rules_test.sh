#!/usr/bin/env bash
# fedmarket-validatord on real services, unattended: every aggregation
# rule a task spec names (fedavg, median, trimmed_mean, krum,
# centered_clip) publishes the version `fedmarket-engine aggregate`
# computes from the same updates; an asynchronous task folds its buffer
# of results with staleness weights (n x (1 + s)^-0.5, each update taken
# from its own base version); a daemon killed mid-round and restarted,
# then two daemons racing (one killed), publish each round once. The
# updates are models trained beforehand and sent with `send-result
# --model`. Prints TAP.
set -uo pipefail
# shellcheck source=fed_tap.sh
. "$(dirname "$0")/fed_tap.sh"
# shellcheck source=market_fx.sh
. "$(dirname "$0")/market_fx.sh"

fx_up alice bob carol dave
"$top/deploy/local/make-shards" "$T/data" --clients 4 --per-client 600 --alpha 100 --seed 5 \
  >"$T/shards.log" 2>&1 || bail "make-shards"
validator=$(addr validator)
seed=$top/assets/models/fashion-mlp
engine=$bin/fedmarket-engine
train() { # FROM OUT K: one epoch on contributor K's shard
  "$engine" train --model "$1" --out "$2" --train-images "$T/data/contributor-$3/images-idx3-ubyte" \
    --train-labels "$T/data/contributor-$3/labels-idx1-ubyte" --scale 255 --from-logits \
    --epochs 1 --seed "$3" >"$T/train-$3.log" 2>&1
}
for k in 1 2 3; do train "$seed" "$T/m$k" "$k" || bail "engine train $k"; done

# node EXPR DIR...: the weights of the model folders as Float32Arrays
# m[0], m[1], ...; exits 1 when EXPR is false
cat >"$T/w.js" <<'JS'
const fs = require('fs');
const [expr, ...dirs] = process.argv.slice(2);
const m = dirs.map((d) => {
  const b = fs.readFileSync(d + '/weights.bin');
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
});
const all = (f) => m[0].every((_, i) => f(i));
const close = (a, b) => Math.abs(a - b) <= 1e-5 * (1 + Math.abs(b));
const moved = m.length > 1 && m[0].some((v, i) => v !== m[1][i]);
if (!eval(expr)) { console.error('false: ' + expr); process.exit(1); }
JS
w() { node "$T/w.js" "$@"; }

task_of() { # SPEC-JSON: a task validated by the daemon's key
  fx_spec "$1" >"$T/spec.json"
  creator create-task --json --spec "$T/spec.json" --assets "$seed" --validator "$validator" | j 'd["id"]'
}
send() { # WHO TASK MODEL BASE: a slot and the model as its result
  local aid
  aid=$(contributor "$1" assign "$2") || return 1
  contributor "$1" send-result "$aid" --model "$3" --examples 600 --base-version "$4" --json |
    j 'd["id"]'
}
vd_once() { as validator "$bin/fedmarket-validatord" "$@" --once; }
pull() { # TASK VERSION DIR
  rm -rf "$3"
  creator pull-model "$1" --version "$2" --out "$3" >/dev/null
}
version_json() { # TASK VERSION
  creator status "$1" --json | j "json.dumps([m for m in d['models'] if m['version'] == $2][0])"
}

# --- every rule, from the task spec to the published version ---------------
for rule in fedavg median trimmed_mean krum centered_clip; do
  agg="{\"rule\": \"$rule\"}"
  [ "$rule" = trimmed_mean ] && agg='{"rule": "trimmed_mean", "trim_fraction": 0.34}'
  [ "$rule" = centered_clip ] && agg='{"rule": "centered_clip", "clip_radius": 0.05}'
  task=$(task_of "{\"results_per_round\": 3, \"min_results_per_round\": 3,
    \"validation\": {\"strategy\": \"custom\"}, \"aggregation\": $agg}") || bail "create-task $rule"
  k=1
  for who in alice bob carol; do
    send "$who" "$task" "$T/m$k" 0 >/dev/null || bail "send $who ($rule)"
    k=$((k + 1))
  done
  vd_once "$task" >"$T/vd-$rule.out" 2>"$T/vd-$rule.log"
  r=$?
  ok "$rule: validatord --once decides the round and publishes (exit $r)" test "$r" = 0
  ok "... version 1 by $rule of the three results" \
    test "$(version_json "$task" 1 | j '"%s %d" % (d["rule"], len(d["results"]))')" = "$rule 3"
  opts=(--rule "$rule")
  [ "$rule" = trimmed_mean ] && opts+=(--trim 0.34)
  [ "$rule" = centered_clip ] && opts+=(--clip-tau 0.05)
  "$engine" aggregate --base "$seed" --out "$T/want-$rule" "${opts[@]}" --examples 600,600,600 \
    "$T/m1" "$T/m2" "$T/m3" >"$T/agg-$rule.log" 2>&1 || bail "engine aggregate $rule"
  pull "$task" 1 "$T/got-$rule"
  ok "... the model fedmarket-engine aggregate --rule $rule makes" \
    w 'moved && all((i) => close(m[0][i], m[2][i]))' "$T/got-$rule/model" "$seed" "$T/want-$rule"
  ok "... and the task ended rounds_done" \
    test "$(creator status "$task" --json | j 'd["end_reason"]')" = rounds_done
done
# the rules differ on these updates: the test would see a wrong one
ok "median, krum and centered_clip give three different models" bash -c "
  ! cmp -s '$T/want-median/weights.bin' '$T/want-krum/weights.bin' &&
  ! cmp -s '$T/want-median/weights.bin' '$T/want-centered_clip/weights.bin' &&
  ! cmp -s '$T/want-fedavg/weights.bin' '$T/want-krum/weights.bin'"

# --- asynchronous: staleness-weighted FedAvg ---------------------------------
atask=$(task_of '{"rounds": 2, "results_per_round": 3, "min_results_per_round": 2,
  "validation": {"strategy": "custom"},
  "aggregation": {"rule": "fedavg", "mode": "async",
                  "async": {"buffer": 2, "max_staleness": 2, "staleness_exponent": 0.5}}}') ||
  bail "create-task (async)"
caid=$(contributor carol assign "$atask") || bail "carol assign"
send alice "$atask" "$T/m1" 0 >/dev/null || bail "alice async"
send bob "$atask" "$T/m2" 0 >/dev/null || bail "bob async"
vd_once "$atask" >/dev/null 2>"$T/vd-async1.log"
ok "async: two accepted results fill the buffer: version 1" \
  test "$(version_json "$atask" 1 | j 'len(d["results"])')" = 2
pull "$atask" 1 "$T/av1"
ok "... their FedAvg (both fresh)" \
  w 'all((i) => close(m[0][i], (m[1][i] + m[2][i]) / 2))' "$T/av1/model" "$T/m1" "$T/m2"
# carol trained from version 0, one version ago; dave from version 1
train "$T/av1/model" "$T/m4" 4 || bail "engine train 4"
contributor carol send-result "$caid" --model "$T/m3" --examples 600 --base-version 0 >/dev/null ||
  bail "carol async"
send dave "$atask" "$T/m4" 1 >/dev/null || bail "dave async"
vd_once "$atask" >/dev/null 2>"$T/vd-async2.log"
ok "a stale and a fresh result: version 2" \
  test "$(version_json "$atask" 2 | j 'len(d["results"])')" = 2
pull "$atask" 2 "$T/av2"
# v2 = v1 + (w3 (m3 - v0) + w4 (m4 - v1)) / (w3 + w4), w3 = 600 / sqrt(2), w4 = 600
ok "... v1 plus the updates from their own bases, the stale one weighted 1/sqrt(2)" \
  w 'const a = Math.SQRT1_2, b = 1; all((i) => close(m[0][i], m[1][i] + (a * (m[2][i] - m[4][i]) + b * (m[3][i] - m[1][i])) / (a + b)))' \
  "$T/av2/model" "$T/av1/model" "$T/m3" "$T/m4" "$seed"
ok "... not the plain average of the two" \
  w '!all((i) => close(m[0][i], m[1][i] + ((m[2][i] - m[4][i]) + (m[3][i] - m[1][i])) / 2))' \
  "$T/av2/model" "$T/av1/model" "$T/m3" "$T/m4" "$seed"
ok "... and the task ended rounds_done" \
  test "$(creator status "$atask" --json | j 'd["end_reason"]')" = rounds_done

# --- killed mid-round, restarted; two daemons racing -------------------------
ktask=$(task_of '{"rounds": 2, "results_per_round": 3, "min_results_per_round": 3,
  "round_duration_s": 600, "validation": {"strategy": "custom"}, "aggregation": {"rule": "fedavg"}}') ||
  bail "create-task (kill)"
daemon() { # LOG: a daemon for ktask deciding at once; $! is the daemon
  FEDMARKET_KEYSTORE_DIR=$T/keys/validator FEDMARKET_WORK_DIR=$T/work/validator \
    "$bin/fedmarket-validatord" "$ktask" --interval 1 --round-wait 0 >/dev/null 2>"$1" </dev/null &
}
round_field() { creator status "$ktask" --json | j "d['round']['$1']"; }
until_true() { # S SHELL-CONDITION (evaluated again at each look)
  local end=$(( $(date +%s) + $1 ))
  until eval "$2"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.3; done
}
versions() { creator status "$ktask" --json | j '" ".join(str(m["version"]) for m in sorted(d["models"], key=lambda m: m["version"]))'; }
daemon "$T/k1.log"
k1=$!
send alice "$ktask" "$T/m1" 0 >/dev/null || bail "alice kill"
send bob "$ktask" "$T/m2" 0 >/dev/null || bail "bob kill"
until_true 60 '[ "$(round_field accepted)" = 2 ]' || bail "the daemon did not decide"
kill -KILL "$k1"
wait "$k1" 2>/dev/null
ok "killed mid-round: two of three accepted, nothing published" test "$(versions)" = "0"
send carol "$ktask" "$T/m3" 0 >/dev/null || bail "carol kill"
daemon "$T/k2.log"
k2=$!
until_true 60 '[ "$(versions)" = "0 1" ]'
ok "restarted, it decides the third and publishes version 1" test "$(versions)" = "0 1"
ok "... of the round's three results" test "$(version_json "$ktask" 1 | j 'len(d["results"])')" = 3
# round 2: a second daemon races the first, which is killed at once; each
# contributor trains version 1 on its own shard (a copy is not paid)
pull "$ktask" 1 "$T/kv1"
for k in 1 2 3; do train "$T/kv1/model" "$T/k2-$k" "$k" || bail "engine train round 2 ($k)"; done
daemon "$T/k3.log"
k3=$!
k=1
for who in alice bob carol; do
  send "$who" "$ktask" "$T/k2-$k" 1 >/dev/null || bail "$who round 2"
  k=$((k + 1))
done
sleep 0.$((RANDOM % 9 + 1))
kill -KILL "$k2"
wait "$k2" 2>/dev/null
until_true 60 '[ "$(versions)" = "0 1 2" ]'
ok "two daemons racing, one killed: version 2 once" test "$(versions)" = "0 1 2"
ok "... of round 2's three results, and the task ended rounds_done" \
  test "$(creator status "$ktask" --json | j '"%d %s" % (len([m for m in d["models"] if m["version"] == 2][0]["results"]), d["end_reason"])')" = "3 rounds_done"
ok "... each result decided once" \
  test "$(creator status "$ktask" --json | j 'sorted({r["state"] for r in d["results"]}) == ["accepted"] and len(d["results"]) == 6')" = True
ok "... no daemon warned of a failed pass" bash -c "! grep -E ' (warn|error) ' '$T/k2.log' '$T/k3.log'"
kill -TERM "$k3"
wait "$k3"
r=$?
ok "the daemon stops on SIGTERM (exit $r)" test "$r" = 0
echo "1..$n"
