#!/usr/bin/env bash
# Engine vs PyTorch on the Fashion-MNIST MLP (784-128-10, Adam 0.001,
# sparse cross-entropy from logits, pixels / 255), side by side in one
# run: same data, architecture, batch sizes and epochs. PyTorch runs
# shared/bench/torch_mlp_baseline.py in its best configuration on this
# run: OPENBLAS_CORETYPE=Cooperlake and the faster of --threads 1 and
# --threads 2 --blas-threads 1 (see shared/bench/BASELINES.md). The
# engine runs with OPENBLAS_CORETYPE unset: it must pick fast kernels by
# itself. Prints training and evaluation samples/s of both, the ratios,
# and the engine's peak memory next to the data set's size.
# Targets (2 cores): training >= 2.0x at batch 32 and >= 1.2x at batch
# 128; evaluation >= 1.5x.
# Usage: bench/engine.sh [--epochs N] [--repeats R]
#   (defaults 3 and 1; each repeat runs every configuration again and the
#   medians are taken over all epochs of all repeats)
# Needs python3-torch (deploy/local/install-deps --bench).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
epochs=3 repeats=1
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) epochs=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    *) echo "usage: bench/engine.sh [--epochs N] [--repeats R]" >&2; exit 2 ;;
  esac
done
torch=${FM_TORCH_BASELINE:-$top/../shared/bench/torch_mlp_baseline.py}
[ -f "$torch" ] || torch=/work/shared/bench/torch_mlp_baseline.py
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "bench/engine.sh: needs Debian's python3-torch (deploy/local/install-deps --bench)" >&2
  exit 1
fi
make -s -j2 lib
mkdir -p build/bench/engine
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Iclients/lib -Iservices/lib -I/usr/include/x86_64-linux-gnu \
  -o build/bench/engine_bench bench/engine_bench.c build/libfmclient.a build/libfmservice.a build/libfedmarket.a \
  $(pkg-config --libs jansson openblas zlib) -lm
# The build leaves tens of MB to write back; the kernel doing that on one
# core during the first runs halves whatever runs there. Settle first.
sync
out=build/bench/engine
rm -f "$out"/*.jsonl
model=assets/models/fashion-mlp
eval_batches="128 1000 10000"

echo "engine vs PyTorch, Fashion-MNIST MLP, $epochs epochs x $repeats repeat(s); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= repeats; r++)); do
  for b in 32 128; do
    echo "  batch $b: engine ..."
    env -u OPENBLAS_CORETYPE build/bench/engine_bench "$model" "$epochs" "$b" >>"$out/engine_b$b.jsonl"
    echo "  batch $b: torch --threads 1 ..."
    OPENBLAS_CORETYPE=Cooperlake "$py" "$torch" --epochs "$epochs" --batch-size "$b" \
      --threads 1 >>"$out/torch1_b$b.jsonl"
    echo "  batch $b: torch --threads 2 --blas-threads 1 ..."
    OPENBLAS_CORETYPE=Cooperlake "$py" "$torch" --epochs "$epochs" --batch-size "$b" \
      --threads 2 --blas-threads 1 >>"$out/torch2_b$b.jsonl"
  done
  echo "  evaluation ..."
  env -u OPENBLAS_CORETYPE build/bench/engine_bench "$model" 0 1 $eval_batches >>"$out/engine_eval.jsonl"
  for eb in $eval_batches; do
    OPENBLAS_CORETYPE=Cooperlake "$py" "$torch" --eval-only --batch-size "$eb" \
      --threads 1 >>"$out/torch1_eval.jsonl"
    OPENBLAS_CORETYPE=Cooperlake "$py" "$torch" --eval-only --batch-size "$eb" \
      --threads 2 --blas-threads 1 >>"$out/torch2_eval.jsonl"
  done
done

"$py" - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]

def lines(name):
    with open(f"{out}/{name}.jsonl") as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]

def train_median(name):
    v = [l["train_samples_per_s"] for l in lines(name) if l["type"] == "epoch"]
    return statistics.median(v), min(v), max(v), [l["test_accuracy"] for l in lines(name) if l["type"] == "epoch"]

def eval_median(name, bs):
    v = [l["samples_per_s_median"] for l in lines(name)
         if l["type"] == "eval" and l["batch_size"] == bs]
    return statistics.median(v)

cfg = next(l for l in lines("engine_b32") if l["type"] == "config")
print(f"\nengine kernels: OpenBLAS {cfg['openblas_core']} (chosen by the engine; "
      f"OPENBLAS_CORETYPE was unset); torch: OPENBLAS_CORETYPE=Cooperlake")
print(f"{'':28}{'engine':>12}{'torch best':>12}{'torch cfg':>16}{'ratio':>8}{'target':>8}")
result = {"train": {}, "eval": {}}
ok = True
for b, target in ((32, 2.0), (128, 1.2)):
    e, emin, emax, eacc = train_median(f"engine_b{b}")
    t1 = train_median(f"torch1_b{b}")
    t2 = train_median(f"torch2_b{b}")
    t, tname = (t1, "--threads 1") if t1[0] >= t2[0] else (t2, "--threads 2/1")
    ratio = e / t[0]
    ok &= ratio >= target
    print(f"train samples/s, batch {b:<5}{e:>12,.0f}{t[0]:>12,.0f}{tname:>16}{ratio:>7.2f}x{target:>7.1f}x")
    print(f"  engine range [{emin:,.0f}..{emax:,.0f}], test acc {eacc}; torch test acc {t[3]}")
    result["train"][b] = {"engine": e, "torch": t[0], "torch_config": tname, "ratio": round(ratio, 3)}
for bs in (128, 1000, 10000):
    e = eval_median("engine_eval", bs)
    t1 = eval_median("torch1_eval", bs)
    t2 = eval_median("torch2_eval", bs)
    t, tname = (t1, "--threads 1") if t1 >= t2 else (t2, "--threads 2/1")
    ratio = e / t
    ok &= ratio >= 1.5
    print(f"eval samples/s, batch {bs:<6}{e:>12,.0f}{t:>12,.0f}{tname:>16}{ratio:>7.2f}x{1.5:>7.1f}x")
    result["eval"][bs] = {"engine": e, "torch": t, "torch_config": tname, "ratio": round(ratio, 3)}
mem = [l for l in lines("engine_b32") if l["type"] == "memory"][-1]
print(f"engine peak RSS {mem['peak_rss_mb']:.0f} MiB with a {mem['data_mb']:.0f} MiB data set "
      f"(+{mem['peak_rss_mb'] - mem['data_mb']:.0f} MiB: program, libraries, model, buffers)")
result["memory"] = mem
result["targets_met"] = ok
print(json.dumps(result))
PY
