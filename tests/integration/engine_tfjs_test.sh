#!/usr/bin/env bash
# Interoperability with TensorFlow.js itself: models the engine trained
# and saved load in TensorFlow.js (npm @tensorflow/tfjs, run by node) and
# predict what the engine predicts, within 1e-5. TAP output.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FM_BIN:-$top/bin}/fedmarket-engine
tfjs=$top/tests/tfjs
T=$(mktemp -d /tmp/engine_tfjs.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { # description command...
  local d=$1; shift
  if "$@" >"$T/out.log" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/# /' "$T/out.log" | tail -20; fi
}

# Data: seeded random IDX images (ubyte) and labels, and CSV rows.
cat >"$T/gen.js" <<'JS'
const fs = require('fs');
const { rng } = require(process.argv[2] + '/tfjs_io');
const dir = process.argv[3];
const r = rng(7);
function idx(file, type, dims, values) {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = type; h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  fs.writeFileSync(file, Buffer.concat([h, Buffer.from(values)]));
}
const n = 240, px = 12 * 12;
const img = [], lab = [];
for (let i = 0; i < n; i++) {
  const c = i % 5;
  lab.push(c);
  for (let p = 0; p < px; p++) img.push(Math.floor(r() * 128 + (p % 5 === c ? 127 : 0)));
}
idx(dir + '/img.idx', 0x08, [n, 12, 12, 1], img);
idx(dir + '/lab.idx', 0x08, [n], lab);
const rows = ['a,b,c,d,y'];
for (let i = 0; i < 300; i++) {
  const v = [r(), r(), r(), r()].map(x => x * 4 - 2);
  rows.push(v.map(x => x.toFixed(5)).concat([v[0] + v[1] * v[2] > 0 ? 1 : 0]).join(','));
}
fs.writeFileSync(dir + '/tab.csv', rows.join('\n') + '\n');
function tensor(file, shape) {
  const count = shape.reduce((a, b) => a * b, 1);
  fs.writeFileSync(file, JSON.stringify({ shape,
    data: Array.from({ length: count }, () => r()) }));
}
tensor(dir + '/cnn_in.json', [7, 12, 12, 1]);
tensor(dir + '/tab_in.json', [9, 4]);
JS
check "node generates the data" node "$T/gen.js" "$tfjs" "$T"

cat >"$T/cnn.json" <<'JSON'
{"name": "interop-cnn", "input_shape": [12, 12, 1], "layers": [
 {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"},
 {"type": "maxpool2d", "pool_size": 2},
 {"type": "conv2d", "filters": 4, "kernel_size": [3, 2], "strides": [2, 1], "activation": "tanh"},
 {"type": "dropout", "rate": 0.2},
 {"type": "flatten"},
 {"type": "dense", "units": 16, "activation": "sigmoid"},
 {"type": "dense", "units": 5, "activation": "softmax"}]}
JSON
cat >"$T/tab.json" <<'JSON'
{"name": "interop-tabular", "input_shape": [4], "layers": [
 {"type": "dense", "units": 8, "activation": "tanh"},
 {"type": "dense", "units": 1, "activation": "sigmoid"}]}
JSON

check "engine creates the CNN" "$bin" init --spec "$T/cnn.json" --out "$T/cnn0" --seed 3
check "engine trains the CNN on IDX data" "$bin" train --model "$T/cnn0" \
  --out "$T/cnn1" --train-images "$T/img.idx" --train-labels "$T/lab.idx" \
  --scale 255 --epochs 2 --batch-size 16 --seed 1
check "training changed the weights" bash -c "! cmp -s '$T/cnn0/weights.bin' '$T/cnn1/weights.bin'"
check "engine creates the tabular model" "$bin" init --spec "$T/tab.json" --out "$T/tab0" --seed 4
check "engine trains it on CSV with binary cross-entropy" "$bin" train \
  --model "$T/tab0" --out "$T/tab1" --train-csv "$T/tab.csv" --inputs a,b,c,d \
  --outputs y --loss binary_crossentropy --optimizer sgd --lr 0.1 \
  --momentum 0.9 --epochs 3 --batch-size 8

for m in cnn tab; do
  check "engine predicts with its $m model" "$bin" predict --model "$T/${m}1" \
    --input "$T/${m}_in.json" --output "$T/${m}_engine.json"
  check "TensorFlow.js loads the engine's $m model and predicts" \
    node "$tfjs/predict.js" "$T/${m}1" "$T/${m}_in.json" "$T/${m}_tfjs.json"
  check "$m predictions agree within 1e-5" node -e "
    const fs = require('fs');
    const a = JSON.parse(fs.readFileSync('$T/${m}_engine.json'));
    const b = JSON.parse(fs.readFileSync('$T/${m}_tfjs.json'));
    if (JSON.stringify(a.shape) !== JSON.stringify(b.shape))
      throw new Error('shapes ' + a.shape + ' vs ' + b.shape);
    let worst = 0;
    a.data.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b.data[i])); });
    console.log('max difference', worst);
    if (!(worst <= 1e-5)) throw new Error('max difference ' + worst);"
done

echo "1..$n"
[ "$fails" -eq 0 ]
