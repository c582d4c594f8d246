#!/usr/bin/env bash
# The demo task's seed model on Fashion-MNIST (Debian's
# dataset-fashion-mnist): one epoch at batch 32 with Adam 0.001, sparse
# cross-entropy from logits, pixels / 255 reaches at least 0.84 test
# accuracy, as PyTorch does; the JSON progress has what callers read; eval
# agrees with the last epoch's test figures. TAP output.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
E=${FM_BIN:-$top/bin}/fedmarket-engine
D=/usr/share/datasets/fashion-mnist
T=$(mktemp -d /tmp/engine_fashion.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 fails=0
result() { # status description
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else fails=$((fails + 1)); echo "not ok $n - $2"; fi
}
field() { # json key -> value
  sed -n "s/.*\"$2\": \([-0-9.e]*\).*/\1/p" <<<"$1"
}

"$E" train --model "$top/assets/models/fashion-mlp" --out "$T/m1" \
  --train-images $D/train-images-idx3-ubyte.gz --train-labels $D/train-labels-idx1-ubyte.gz \
  --test-images $D/t10k-images-idx3-ubyte.gz --test-labels $D/t10k-labels-idx1-ubyte.gz \
  --scale 255 --from-logits --epochs 1 --batch-size 32 --optimizer adam --lr 0.001 \
  --seed 0 --json >"$T/train.out" 2>"$T/train.err"
result $? "train exits 0"
line=$(head -1 "$T/train.out")
echo "# $line"
acc=$(field "$line" test_accuracy)
result "$(awk -v a="$acc" 'BEGIN { exit !(a >= 0.84) }'; echo $?)" "test accuracy $acc >= 0.84 after one epoch"
for k in epoch loss samples_per_s test_loss; do
  v=$(field "$line" $k)
  [ -n "$v" ]; result $? "the epoch line has $k ($v)"
done
result "$([ "$(wc -l <"$T/train.out")" -eq 1 ]; echo $?)" "one JSON line per epoch and nothing else on stdout"
"$E" eval --model "$T/m1" --test-images $D/t10k-images-idx3-ubyte.gz \
  --test-labels $D/t10k-labels-idx1-ubyte.gz --scale 255 --from-logits --json >"$T/eval.out"
result $? "eval exits 0"
eacc=$(field "$(cat "$T/eval.out")" accuracy)
result "$(awk -v a="$acc" -v b="$eacc" 'BEGIN { exit !(a - b < 1e-6 && b - a < 1e-6) }'; echo $?)" \
  "eval of the saved model gives the same accuracy ($eacc)"

echo "1..$n"
[ "$fails" -eq 0 ]
