#!/usr/bin/env bash
# fedmarket-engine's command line: exit codes (0 ok, 1 runtime error, 2
# usage) and bad input of every kind refused with a message that names
# it, never a crash. TAP output.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
E=${FM_BIN:-$top/bin}/fedmarket-engine
seed=$top/assets/models/fashion-mlp
T=$(mktemp -d /tmp/engine_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 fails=0

# expect CODE "text in stderr or stdout" description -- command...
expect() {
  local code=$1 needle=$2 desc=$3 rc; shift 4
  "$@" >"$T/out" 2>"$T/err" </dev/null
  rc=$?
  n=$((n + 1))
  if [ "$rc" -eq "$code" ] && { [ -z "$needle" ] || grep -qF -- "$needle" "$T/out" "$T/err"; }; then
    echo "ok $n - $desc"
  else
    fails=$((fails + 1))
    echo "not ok $n - $desc (exit $rc, wanted $code and '$needle')"
    sed 's/^/# /' "$T/out" "$T/err" | head -10
  fi
}

# little IDX files: images [n, 2, 2] and labels [n]
idx_images() { # file n
  { printf '\x00\x00\x08\x03'; printf "\\x00\\x00\\x00\\x$(printf %02x "$2")"
    printf '\x00\x00\x00\x02\x00\x00\x00\x02'; head -c $(($2 * 4)) /dev/zero; } >"$1"
}
idx_labels() { # file bytes-as-octal-escapes count
  { printf '\x00\x00\x08\x01'; printf "\\x00\\x00\\x00\\x$(printf %02x "$3")"; printf "$2"; } >"$1"
}

# ---- usage errors: exit 2 ----
expect 2 "usage: fedmarket-engine" "no command is a usage error" -- "$E"
expect 2 'unknown command "fly"' "unknown command" -- "$E" fly
expect 2 'unknown option "--bogus"' "unknown option" -- "$E" summary --bogus
expect 2 "--model is required" "missing --model" -- "$E" summary
expect 2 '--epochs: "x" is not an integer' "non-numeric --epochs" -- \
  "$E" train --model "$seed" --out "$T/o" --epochs x
expect 2 "--loss: loss 'hinge' is not supported" "unknown loss" -- \
  "$E" eval --model "$seed" --loss hinge
expect 0 "--model DIR" "summary --help" -- "$E" summary --help

# ---- OpenBLAS kernels: picked from cpuid when OPENBLAS_CORETYPE is unset ----
flags=$(grep -m1 '^flags' /proc/cpuinfo)
want=
case $flags in
  *avx512_bf16*) want=Cooperlake ;;
  *avx512bw*) want=SkylakeX ;;
  *avx2*) want=Haswell ;;
esac
if [ -n "$want" ]; then
  expect 0 "OpenBLAS $want" "unset OPENBLAS_CORETYPE: the engine re-executes with $want kernels" -- \
    env -u OPENBLAS_CORETYPE "$E" --version
fi
expect 0 "OpenBLAS Haswell" "an explicit OPENBLAS_CORETYPE is respected" -- \
  env OPENBLAS_CORETYPE=Haswell "$E" --version

# ---- good paths ----
expect 0 "Total params: 101770" "summary of the seed model" -- "$E" summary --model "$seed"
expect 0 '"params": 101770' "summary --json" -- "$E" summary --model "$seed" --json
expect 0 "101770 parameters, seed 5" "init --model gives fresh weights" -- \
  "$E" init --model "$seed" --out "$T/re5" --seed 5
"$E" init --model "$seed" --out "$T/re5b" --seed 5 >/dev/null
"$E" init --model "$seed" --out "$T/re6" --seed 6 >/dev/null
expect 0 "" "the same seed gives the same weights" -- cmp "$T/re5/weights.bin" "$T/re5b/weights.bin"
expect 1 "differ" "another seed gives other weights" -- cmp "$T/re5/weights.bin" "$T/re6/weights.bin"

# ---- model files ----
bad_model() { # name: a copy of the seed model to break
  rm -rf "$T/$1"; cp -r "$seed" "$T/$1"
}
bad_model trunc; head -c 1000 "$seed/weights.bin" >"$T/trunc/weights.bin"
expect 1 "weight files hold 1000 bytes, the manifest's shapes need 407080" \
  "truncated weights file" -- "$E" summary --model "$T/trunc"
bad_model big; { cat "$seed/weights.bin"; printf 'xxxx'; } >"$T/big/weights.bin"
expect 1 "larger than the 407080 bytes" "oversized weights file" -- "$E" summary --model "$T/big"
bad_model shape; sed -i '0,/784,/s//785,/' "$T/shape/model.json"
expect 1 "shape disagrees with the layer (expected [784,128])" \
  "manifest shape disagrees with the layer" -- "$E" summary --model "$T/shape"
bad_model nan; { head -c 400 "$seed/weights.bin"; printf '\x00\x00\xc0\x7f'; tail -c +405 "$seed/weights.bin"; } >"$T/nan/weights.bin"
expect 1 "dense/kernel: value 100 is NaN" "NaN weight" -- "$E" summary --model "$T/nan"
bad_model inf; { head -c 407076 "$seed/weights.bin"; printf '\x00\x00\x80\x7f'; } >"$T/inf/weights.bin"
expect 1 "dense_1/bias: value 9 is infinite" "infinite weight" -- "$E" summary --model "$T/inf"
bad_model huge; sed -i 's/"units": 128/"units": 16000000/' "$T/huge/model.json"
expect 1 "kernel too large" "absurd dimensions are refused before allocating" -- \
  "$E" summary --model "$T/huge"
bad_model layer; sed -i 's/"class_name": "Dense"/"class_name": "LSTM"/' "$T/layer/model.json"
expect 1 "layers[1] (dense): class_name: layer 'LSTM' is not supported" \
  "unsupported layer named" -- "$E" summary --model "$T/layer"
bad_model act; sed -i '0,/"activation": "relu"/s//"activation": "selu"/' "$T/act/model.json"
expect 1 "layers[1] (dense): activation: 'selu' is not supported" \
  "unsupported activation named" -- "$E" summary --model "$T/act"
bad_model json; printf '{"modelTopology": ' >"$T/json/model.json"
expect 1 "invalid JSON" "malformed model.json" -- "$E" summary --model "$T/json"
bad_model orth; sed -i '0,/"VarianceScaling"/s//"Orthogonal"/' "$T/orth/model.json"
expect 0 "Total params: 101770" "an unknown initializer does not stop loading" -- "$E" summary --model "$T/orth"
expect 1 "dense/kernel: initializer 'Orthogonal' is not supported" \
  "fresh weights from an unknown initializer are refused" -- "$E" init --model "$T/orth" --out "$T/orth2"
expect 1 "No such file or directory" "missing model folder" -- "$E" summary --model "$T/nowhere"

# ---- data ----
idx_images "$T/img.idx" 3
idx_labels "$T/lab.idx" '\x01\x02\x0c' 3
cat >"$T/spec.json" <<'JSON'
{"input_shape": [2, 2], "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]}
JSON
"$E" init --spec "$T/spec.json" --out "$T/small" >/dev/null
expect 1 "sample 3: label 12 is not a class of the model (0..9)" "label out of range" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/img.idx" --train-labels "$T/lab.idx"
idx_labels "$T/lab2.idx" '\x01\x02' 2
expect 1 "has 3 items but" "image and label counts differ" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/img.idx" --train-labels "$T/lab2.idx"
head -c 20 "$T/img.idx" >"$T/short.idx"
expect 1 "short.idx: truncated" "truncated IDX file" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/short.idx" --train-labels "$T/lab.idx"
printf 'PK\x03\x04garbage' >"$T/magic.idx"
expect 1 "not an IDX file" "bad IDX magic" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/magic.idx" --train-labels "$T/lab.idx"
gzip -c "$T/img.idx" | head -c 30 >"$T/cut.idx.gz"
expect 1 "cut.idx.gz" "truncated gzip IDX file" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/cut.idx.gz" --train-labels "$T/lab.idx"
{ printf '\x00\x00\x08\x03\xff\xff\xff\xff\x00\xff\xff\xff\x00\xff\xff\xff'; } >"$T/absurd.idx"
expect 1 "one item has more than 16777216 values" "absurd IDX dimensions refused before allocating" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/absurd.idx" --train-labels "$T/lab.idx"
expect 1 "samples have shape (None, 28, 28), the model's input is (None, 2, 2)" \
  "wrong input shape" -- "$E" eval --model "$T/small" --test-images \
  /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --test-labels \
  /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
printf 'a,b,c,d,y\n1,2,3,4,0\n1,2,x3,4,1\n' >"$T/bad.csv"
expect 1 "bad.csv:3: column 'c': 'x3' is not a finite number" "non-numeric CSV value" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-csv "$T/bad.csv" --inputs a,b,c,d --outputs y
printf 'a,b,c,d,y\n1,2,3,4,0\n1,2,3\n' >"$T/cols.csv"
expect 1 "cols.csv:3: 3 columns, the header has 5" "short CSV row" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-csv "$T/cols.csv" --inputs a,b,c,d --outputs y
expect 1 "no column 'z' in the header" "missing CSV column" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-csv "$T/cols.csv" --inputs a,z --outputs y
printf 'a,b,c,d,y\n1,2,"3,4\n' >"$T/quote.csv"
expect 1 "unterminated quote" "unterminated CSV quote" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-csv "$T/quote.csv" --inputs a,b,c,d --outputs y
expect 2 "CSV data needs --inputs and --outputs" "CSV without columns" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-csv "$T/bad.csv"
printf 'a,b,c,d,y\n1,2,3,4,0\n2,3,4,5,1\n' >"$T/ok.csv"
expect 1 "samples have shape (None, 3), the model's input is (None, 2, 2)" \
  "CSV width does not fit the model" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-csv "$T/ok.csv" --inputs a,b,c --outputs y

# ---- predict ----
printf '{"shape": [1, 2, 2], "data": [0.1, 0.2, 0.3, 0.4]}' >"$T/in.json"
expect 0 '"shape": [1, 10]' "predict writes a tensor" -- \
  "$E" predict --model "$T/small" --input "$T/in.json" --output -
printf '{"shape": [1, 3], "data": [0.1, 0.2, 0.3]}' >"$T/in3.json"
expect 1 "samples have 3 values, the model's input (None, 2, 2) has 4" \
  "predict with the wrong input shape" -- "$E" predict --model "$T/small" --input "$T/in3.json" --output -
printf '{"shape": [2, 2, 2], "data": [1, 2, 3]}' >"$T/in4.json"
expect 1 "data: 3 values, the shape needs 8" "predict with too little data" -- \
  "$E" predict --model "$T/small" --input "$T/in4.json" --output -
printf '{"shape": [1, 2, 2], "data": [1, "a", 3, 4]}' >"$T/in5.json"
expect 1 "data[1]: expected a finite number" "predict with a non-number" -- \
  "$E" predict --model "$T/small" --input "$T/in5.json" --output -

# ---- determinism ----
idx_images "$T/img8.idx" 8
idx_labels "$T/lab8.idx" '\x01\x02\x03\x04\x05\x06\x07\x00' 8
for r in a b; do
  "$E" train --model "$T/small" --out "$T/det_$r" --train-images "$T/img8.idx" \
    --train-labels "$T/lab8.idx" --epochs 3 --batch-size 3 --seed 9 >/dev/null 2>&1
done
expect 0 "" "training is deterministic under --seed" -- cmp "$T/det_a/weights.bin" "$T/det_b/weights.bin"
expect 0 '"val_accuracy"' "--validation-split reports validation figures" -- \
  "$E" train --model "$T/small" --out "$T/val" --train-images "$T/img8.idx" \
  --train-labels "$T/lab8.idx" --validation-split 0.25 --json
expect 2 '--validation-split: "1.5" is not a number in [0, 0.99]' "validation split out of range" -- \
  "$E" train --model "$T/small" --out "$T/val" --train-images "$T/img8.idx" \
  --train-labels "$T/lab8.idx" --validation-split 1.5

expect 0 "did you mean --from-logits?" "a linear output without --from-logits is warned about" -- \
  "$E" train --model "$T/small" --out "$T/o" --train-images "$T/img8.idx" --train-labels "$T/lab8.idx"
printf 'a,b,c,d,e,f,y\n1,2,3,4,5,6,0\n2,3,4,5,6,7,2\n' >"$T/six.csv"
expect 0 "--from-logits with a softmax output layer" "logits asked of a softmax output are warned about" -- \
  "$E" eval --model "$top/tests/fixtures/tfjs/functional" --test-csv "$T/six.csv" \
  --inputs a,b,c,d,e,f --outputs y --from-logits

echo "1..$n"
[ "$fails" -eq 0 ]
