#!/usr/bin/env bash
# Contribution scoring benchmark: 10 updates of the seed MLP, each trained
# on its own non-IID shard of Fashion-MNIST (deploy/local/make-shards),
# scored on 5,000 held-out images by exact Shapley (all 1,024 coalitions)
# and by GTG-Shapley under a budget of 5% of that (51 coalitions), in the
# same run: evaluations, seconds, and Spearman's rank correlation of the
# two. Prints one JSON object. Target: GTG within 5% of exact's
# evaluations with Spearman >= 0.9 ("targets_met").
# Usage: bench/shapley.sh [--quick]   (--quick: 6 updates, a smoke run)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
k=10 per=1500
[ "${1:-}" = --quick ] && k=6 per=300
make -s -j2 bin/fedmarket-engine
work=$(mktemp -d /tmp/fm_shapley_bench_XXXXXX)
trap 'rm -rf "$work"' EXIT
eng=bin/fedmarket-engine
base=assets/models/fashion-mlp

./deploy/local/make-shards "$work/data" --clients "$k" --per-client "$per" \
  --seed 5 >/dev/null
updates=()
for i in $(seq 1 "$k"); do
  d=$work/data/contributor-$i
  "$eng" train --model "$base" --out "$work/u$i" --train-images "$d"/*images* \
    --train-labels "$d"/*labels* --scale 255 --from-logits --seed "$i" \
    --threads 1 >/dev/null
  updates+=("$work/u$i")
done
list=$(IFS=,; echo "${updates[*]}")
held=("--test-images" "$work"/data/validator/*images* "--test-labels"
      "$work"/data/validator/*labels* --scale 255 --from-logits --threads 1)
budget=$(( (1 << k) * 5 / 100 ))

t0=$(date +%s.%N)
"$eng" shapley --model "$base" --updates "$list" "${held[@]}" --method exact \
  --json >"$work/exact.json"
t1=$(date +%s.%N)
"$eng" shapley --model "$base" --updates "$list" "${held[@]}" --method gtg \
  --budget "$budget" --seed 1 --json >"$work/gtg.json"
t2=$(date +%s.%N)

python3 - "$work/exact.json" "$work/gtg.json" "$t0" "$t1" "$t2" "$k" <<'EOF'
import json, sys
ex, gt = (json.load(open(p)) for p in sys.argv[1:3])
t0, t1, t2 = (float(t) for t in sys.argv[3:6])
k = int(sys.argv[6])

def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for t in range(i, j + 1):
            r[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return r

a = ranks([u["phi"] for u in ex["updates"]])
b = ranks([u["phi"] for u in gt["updates"]])
ma, mb = sum(a) / k, sum(b) / k
cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
rho = cov / (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
share = gt["evaluations"] / ex["evaluations"]
out = {
    "updates": k,
    "held_out": 5000,
    "exact": {"evaluations": ex["evaluations"], "seconds": round(t1 - t0, 3)},
    "gtg": {"evaluations": gt["evaluations"], "permutations": gt["permutations"],
            "seconds": round(t2 - t1, 3)},
    "evaluations_ratio": round(share, 4),
    "seconds_ratio": round((t2 - t1) / (t1 - t0), 4),
    "spearman": round(rho, 4),
    "targets_met": share <= 0.05 + 1e-9 and rho >= 0.9,
}
print(json.dumps(out))
EOF
