#!/usr/bin/env bash
# fedmarket-engine simulate on Fashion-MNIST with the seed MLP, 10
# clients on a Dirichlet(0.5) label split, 5 rounds:
#  - FedAvg reaches 0.80 test accuracy;
#  - with 2 of 10 clients sending sign-flipped updates scaled by 5, FedAvg
#    collapses while the median, Multi-Krum and centered clipping stay
#    at or above 0.75;
# plus DP accounting, determinism, the saved model, and usage errors.
# Prints TAP. Takes about a minute on 2 cores.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FM_BIN:-$top/bin}/fedmarket-engine
F=/usr/share/datasets/fashion-mnist
# shellcheck source=fed_tap.sh
. "$(dirname "$0")/fed_tap.sh"

DATA=(--train-images "$F/train-images-idx3-ubyte.gz"
      --train-labels "$F/train-labels-idx1-ubyte.gz"
      --test-images "$F/t10k-images-idx3-ubyte.gz"
      --test-labels "$F/t10k-labels-idx1-ubyte.gz" --scale 255)
# Two local epochs per round: the accuracy goal is then met with a margin
# (one epoch reaches 0.81 at round 5), so engine changes do not flip it.
FED=(--model "$top/assets/models/fashion-mlp" --from-logits --clients 10
     --rounds 5 --local-epochs 2 --split dirichlet:0.5 --seed 1 --json)
# Under ASan+UBSan (FM_SAN=1, several times slower) the same runs train on
# 20000 samples; FedAvg then peaks just above 0.80 (0.8018), so the bar
# there is 0.78; the attack assertions keep their bars.
fedavg_bar=0.80
if [ "${FM_SAN:-}" = 1 ]; then
  FED+=(--max-train 20000)
  fedavg_bar=0.78
fi

sim() { # out-file extra-args...
  local out=$1; shift
  "$bin" simulate "${DATA[@]}" "${FED[@]}" "$@" >"$T/$out" 2>"$T/$out.err"
  echo $? >"$T/$out.rc"
}

# check FILE EXPR: a JS expression over the rounds r[0..] (parsed JSON
# lines) must hold.
cat >"$T/c.js" <<'JS'
const fs = require('fs');
const [file, expr] = process.argv.slice(2);
const r = fs.readFileSync(file, 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l));
const acc = r.map((x) => x.test_accuracy);
const last = r[r.length - 1];
if (!eval(expr)) {
  console.error('false: ' + expr + '\naccuracies: ' + acc.join(' '));
  process.exit(1);
}
JS
check() { node "$T/c.js" "$T/$1" "$2"; }

sim fedavg
ok "FedAvg simulation exits 0" test "$(cat "$T/fedavg.rc")" -eq 0
ok "one JSON object per round with round, test_accuracy, test_loss" \
  check fedavg "r.length === 5 && r.every((x, i) => x.round === i + 1 &&
    typeof x.test_accuracy === 'number' && typeof x.test_loss === 'number' &&
    x.participants === 10 && !('epsilon' in x))"
ok "FedAvg reaches >= $fedavg_bar test accuracy within 5 rounds" \
  check fedavg "Math.max(...acc) >= $fedavg_bar"

ATTACK=(--malicious 2 --attack sign_flip:5)
sim fedavg_attacked "${ATTACK[@]}"
ok "every round has its 2 attackers" \
  check fedavg_attacked "r.every((x) => x.malicious === 2)"
ok "FedAvg collapses under 2 sign-flipping attackers (< 0.5)" \
  check fedavg_attacked "last.test_accuracy < 0.5"

sim median "${ATTACK[@]}" --rule median
ok "median stays >= 0.75 under the same attack" \
  check median "last.test_accuracy >= 0.75"
# Multi-Krum (Krum's best 8 of 10, f = 2). Plain Krum (m = 1) keeps a
# single client's update, which a Dirichlet(0.5) split skews to a few
# classes: it resists the attack but plateaus near 0.66.
sim krum "${ATTACK[@]}" --rule krum --krum-f 2 --krum-m 8
ok "Multi-Krum stays >= 0.75 under the same attack" \
  check krum "last.test_accuracy >= 0.75"
sim cclip "${ATTACK[@]}" --rule centered_clip --clip-tau 2 --clip-iters 10
ok "centered clipping stays >= 0.75 under the same attack" \
  check cclip "last.test_accuracy >= 0.75"

# DP on a smaller training set: epsilon grows round by round.
sim dp --max-train 6000 --rounds 3 --sample-rate 0.5 --dp-clip 1 \
  --dp-noise 1.0 --out "$T/dp-model" --fed-eval
ok "a DP simulation reports epsilon, growing each round" \
  check dp "r.length === 3 && r.every((x, i) => x.epsilon > 0 &&
    (i === 0 || x.epsilon > r[i - 1].epsilon))"
ok "--fed-eval adds the federated evaluation on the clients' data" \
  check dp "r.every((x) => x.client_accuracy > 0.1 && x.client_accuracy <= 1
    && x.client_loss > 0)"
ok "Poisson sampling leaves some clients out of some rounds" \
  check dp "r.every((x) => x.participants <= 10) &&
    r.some((x) => x.participants < 10)"
"$bin" eval --model "$T/dp-model" --test-images "$F/t10k-images-idx3-ubyte.gz" \
  --test-labels "$F/t10k-labels-idx1-ubyte.gz" --scale 255 --from-logits \
  --json >"$T/eval.json" 2>&1
ok "--out saves the final model, which evaluates as the last round did" \
  node -e "const fs = require('fs');
    const e = JSON.parse(fs.readFileSync('$T/eval.json', 'utf8'));
    const r = fs.readFileSync('$T/dp', 'utf8').trim().split('\n').map(JSON.parse);
    process.exit(Math.abs(e.accuracy - r[r.length - 1].test_accuracy) < 1e-9 ? 0 : 1)"

sim small1 --max-train 3000 --rounds 2
sim small2 --max-train 3000 --rounds 2
ok "the same seed gives the same rounds" \
  diff <(sed 's/"seconds": [0-9.]*//' "$T/small1") \
       <(sed 's/"seconds": [0-9.]*//' "$T/small2")

sim bad_split --split dirichlet:-1
ok "a bad --split is a usage error naming it" \
  test "$(cat "$T/bad_split.rc")" -eq 2 -a -n "$(grep 'dirichlet alpha' "$T/bad_split.err")"
sim bad_mal --malicious 11
ok "more attackers than clients is a usage error" \
  test "$(cat "$T/bad_mal.rc")" -eq 2
sim bad_dp --rule median --dp-clip 1 --dp-noise 1
ok "DP with the median is a usage error" \
  test "$(cat "$T/bad_dp.rc")" -eq 2 -a -n "$(grep 'fedavg only' "$T/bad_dp.err")"
sim bad_krum --rule krum --krum-f 4
ok "Krum with f too large for 10 clients fails naming the need" \
  test "$(cat "$T/bad_krum.rc")" -eq 1 -a -n "$(grep 'at least 11' "$T/bad_krum.err")"
echo "1..$n"
