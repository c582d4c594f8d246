#!/usr/bin/env bash
# fedmarket-engine aggregate on real model folders: FedAvg (weighted and
# uniform), median, Krum, DP, and the refusals (architecture, NaN,
# counts, options), checked weight by weight with node. Prints TAP.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FM_BIN:-$top/bin}/fedmarket-engine
# shellcheck source=fed_tap.sh
. "$(dirname "$0")/fed_tap.sh"

run() { # runs the engine, keeping stdout, stderr and the exit code
  "$bin" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}

# node W OUT EXPR...: evaluates a JS expression over the weights of the
# given model folders, as Float32Arrays in m[0], m[1], ...; exits 1 when
# it is false.
cat >"$T/w.js" <<'JS'
const fs = require('fs');
const [expr, ...dirs] = process.argv.slice(2);
const m = dirs.map((d) => {
  const b = fs.readFileSync(d + '/weights.bin');
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
});
const all = (f) => m[0].every((_, i) => f(i));
const close = (a, b) => Math.abs(a - b) <= 1e-6 * (1 + Math.abs(b));
const norm = (f) => Math.sqrt(m[0].reduce((s, _, i) => s + f(i) ** 2, 0));
if (!eval(expr)) { console.error('false: ' + expr); process.exit(1); }
JS
w() { node "$T/w.js" "$@"; }

cat >"$T/spec.json" <<'JSON'
{"name": "agg-test", "input_shape": [6],
 "layers": [{"type": "dense", "units": 5, "activation": "relu"},
            {"type": "dense", "units": 3}]}
JSON
cat >"$T/other.json" <<'JSON'
{"name": "agg-test", "input_shape": [6],
 "layers": [{"type": "dense", "units": 4, "activation": "relu"},
            {"type": "dense", "units": 3}]}
JSON
for s in 0 1 2 3 4 5; do
  "$bin" init --spec "$T/spec.json" --out "$T/m$s" --seed "$s" >/dev/null
done
"$bin" init --spec "$T/other.json" --out "$T/other" --seed 1 >/dev/null
for i in 1 2 3; do cp -r "$T/m1" "$T/same$i"; echo 10 >"$T/same$i/examples"; done

run aggregate --base "$T/m0" --out "$T/o1" "$T/same1" "$T/same2" "$T/same3"
ok "FedAvg of identical models succeeds" test "$rc" -eq 0
ok "FedAvg of identical models is the model, bit for bit" \
  cmp "$T/o1/weights.bin" "$T/m1/weights.bin"

run aggregate --base "$T/m0" --out "$T/o2" --examples 1,3 "$T/m1" "$T/m2"
ok "weighted FedAvg with --examples" test "$rc" -eq 0
ok "weighted FedAvg is (1 m1 + 3 m2) / 4" \
  w "all((i) => close(m[0][i], (m[1][i] + 3 * m[2][i]) / 4))" \
  "$T/o2" "$T/m1" "$T/m2"

run aggregate --base "$T/m0" --out "$T/o2t" --examples 1,3 --threads 2 \
  "$T/m1" "$T/m2"
ok "--threads 2 gives the same bits" cmp "$T/o2t/weights.bin" "$T/o2/weights.bin"

echo 1 >"$T/m1/examples"; echo 3 >"$T/m2/examples"
run aggregate --base "$T/m0" --out "$T/o3" "$T/m1" "$T/m2"
ok "example counts come from UPDATE_DIR/examples" \
  cmp "$T/o3/weights.bin" "$T/o2/weights.bin"

run aggregate --base "$T/m0" --out "$T/o4" --uniform "$T/m1" "$T/m2"
ok "--uniform ignores the counts" \
  w "all((i) => close(m[0][i], (m[1][i] + m[2][i]) / 2))" \
  "$T/o4" "$T/m1" "$T/m2"

run aggregate --base "$T/m0" --out "$T/o5" "$T/m3" "$T/m4"
ok "no example count: exit 1 naming the update and the file" \
  grep -q "update 0 (.*m3): no example count" "$T/err"
ok "nothing is written on failure" test ! -e "$T/o5"

run aggregate --base "$T/m0" --out "$T/o6" --rule median \
  "$T/m1" "$T/m2" "$T/m3" "$T/m4" "$T/m5"
ok "median of five models" test "$rc" -eq 0
ok "median is the middle value of each weight" \
  w "all((i) => { const v = [1, 2, 3, 4, 5].map((k) => m[k][i]).sort((a, b) => a - b); return close(m[0][i], v[2]); })" \
  "$T/o6" "$T/m1" "$T/m2" "$T/m3" "$T/m4" "$T/m5"

run aggregate --base "$T/m0" --out "$T/o7" --rule trimmed_mean --trim 0.2 \
  "$T/m1" "$T/m2" "$T/m3" "$T/m4" "$T/m5"
ok "trimmed mean drops the extremes of each weight" \
  w "all((i) => { const v = [1, 2, 3, 4, 5].map((k) => m[k][i]).sort((a, b) => a - b); return close(m[0][i], (v[1] + v[2] + v[3]) / 3); })" \
  "$T/o7" "$T/m1" "$T/m2" "$T/m3" "$T/m4" "$T/m5"

# Krum: four copies of one model and one far away; the far one is out.
cp -r "$T/m1" "$T/k1"; cp -r "$T/m1" "$T/k2"; cp -r "$T/m1" "$T/k3"
run aggregate --base "$T/m0" --out "$T/o8" --rule krum --krum-f 1 --json \
  "$T/k1" "$T/m5" "$T/k2" "$T/k3" "$T/m1"
ok "Krum picks an update of the cluster" \
  grep -q '"chosen": \[0\]' "$T/out"
ok "Krum's result is that update" cmp "$T/o8/weights.bin" "$T/m1/weights.bin"
run aggregate --base "$T/m0" --out "$T/o9" --rule krum --krum-f 2 \
  "$T/k1" "$T/m5" "$T/k2" "$T/k3" "$T/m1"
ok "Krum refuses too few updates for f (exit 1, says how many)" \
  test "$rc" -eq 1 -a -n "$(grep 'at least 7' "$T/err")"

run aggregate --base "$T/m0" --out "$T/o10" --rule centered_clip \
  --clip-tau 1e9 "$T/m1" "$T/m2"
ok "centered clipping with a huge radius is the mean" \
  w "all((i) => close(m[0][i], (m[1][i] + m[2][i]) / 2))" \
  "$T/o10" "$T/m1" "$T/m2"

run aggregate --base "$T/m0" --out "$T/o11" --examples 1,1 "$T/m1" "$T/other"
ok "another architecture: exit 1 naming the update" \
  test "$rc" -eq 1 -a -n "$(grep 'update 1 (.*other)' "$T/err")"
ok "nothing is written for it" test ! -e "$T/o11"

cp -r "$T/m2" "$T/nan"
node -e "const fs = require('fs'); const b = fs.readFileSync(process.argv[1]);
b.writeFloatLE(NaN, 4 * 7); fs.writeFileSync(process.argv[1], b);" "$T/nan/weights.bin"
run aggregate --base "$T/m0" --out "$T/o12" --examples 1,1 "$T/m1" "$T/nan"
ok "a NaN weight: exit 1 naming the update" \
  test "$rc" -eq 1 -a -n "$(grep 'update 1 (.*nan)' "$T/err")"
ok "nothing is written for it" test ! -e "$T/o12"

# DP: the aggregate moves at most the clip from the base when no noise.
run aggregate --base "$T/m0" --out "$T/o13" --dp-clip 0.1 --dp-noise 0 \
  --json "$T/m1" "$T/m2" "$T/m3"
ok "DP-FedAvg reports how many updates were clipped" \
  grep -q '"dp_clipped": 3' "$T/out"
ok "DP-FedAvg without noise stays within the clip of the base" \
  w "norm((i) => m[0][i] - m[1][i]) <= 0.1 * (1 + 1e-6)" "$T/o13" "$T/m0"
run aggregate --base "$T/m0" --out "$T/o14" --dp-clip 0.1 --dp-noise 1 \
  --seed 5 "$T/m1" "$T/m2" "$T/m3"
run aggregate --base "$T/m0" --out "$T/o15" --dp-clip 0.1 --dp-noise 1 \
  --seed 5 "$T/m1" "$T/m2" "$T/m3"
ok "DP noise is the same under the same seed" \
  cmp "$T/o14/weights.bin" "$T/o15/weights.bin"
run aggregate --base "$T/m0" --out "$T/o16" --dp-clip 0.1 --dp-noise 1 \
  "$T/m1" "$T/m2" "$T/m3"
ok "DP noise without a seed is not the seeded one" \
  bash -c "! cmp -s '$T/o14/weights.bin' '$T/o16/weights.bin'"

# epsilon after 2250 rounds at q = 0.04, sigma = 1.5, delta = 1e-5: the
# reference value of Opacus' RDP accountant test (opacus/tests/
# accountants_test.py, test_rdp_accountant): 7.32911117143.
run aggregate --base "$T/m0" --out "$T/o16b" --dp-clip 1 --dp-noise 1.5 \
  --dp-rounds 2250 --sample-rate 0.04 --json "$T/m1" "$T/m2"
ok "--dp-rounds reports the accountant's epsilon (Opacus reference)" \
  node -e "const r = JSON.parse(require('fs').readFileSync('$T/out', 'utf8'));
    process.exit(Math.abs(r.epsilon - 7.32911117143) < 1e-6 && r.delta === 1e-5 ? 0 : 1)"
run aggregate --base "$T/m0" --out "$T/o17" --dp-rounds 3 "$T/m1"
ok "--dp-rounds without --dp-clip is a usage error (2)" test "$rc" -eq 2
run aggregate --base "$T/m0" --out "$T/o17" --dp-noise 1 "$T/m1"
ok "--dp-noise without --dp-clip is a usage error (2)" test "$rc" -eq 2
run aggregate --base "$T/m0" --out "$T/o17" --rule median --dp-clip 1 \
  --dp-noise 1 "$T/m1"
ok "DP with a robust rule is a usage error (2)" test "$rc" -eq 2
run aggregate --base "$T/m0" --out "$T/o17" --rule mean "$T/m1"
ok "an unknown rule is a usage error naming it" \
  test "$rc" -eq 2 -a -n "$(grep "'mean'" "$T/err")"
run aggregate --base "$T/m0" --out "$T/o17"
ok "no update folder is a usage error" test "$rc" -eq 2
run aggregate --base "$T/m0" --out "$T/o17" --examples 1,x "$T/m1" "$T/m2"
ok "a malformed --examples is refused naming it" \
  test "$rc" -eq 1 -a -n "$(grep "examples: 'x'" "$T/err")"
ok "nothing was written by the refused commands" test ! -e "$T/o17"
echo "1..$n"
