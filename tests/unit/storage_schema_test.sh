#!/usr/bin/env bash
# schema/manifest.schema.json and the C checker (fedmarket-store check)
# must agree: every manifest of a corpus of good ones and mutated bad ones
# gets the same verdict from both. Prints TAP.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
store_bin=${FM_BIN:-$top/bin}/fedmarket-store
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Writes the corpus: NAME.json files, NAME starting with good- or bad-.
python3 - "$work" <<'PY'
import copy, json, sys
out = sys.argv[1]
sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
base = {
    "manifest": 1, "kind": "model", "name": "mnist-mlp", "version": "3",
    "created": "2024-02-29T23:59:59Z", "description": "a model",
    "files": [{"path": "model.json", "sha256": sha, "size": 5},
              {"path": "w/group 1.bin", "sha256": sha, "size": 0}],
    "model": {"format": "tfjs-layers",
              "inputs": [{"name": "x", "shape": [None, 784],
                          "dtype": "float32"}],
              "outputs": [{"name": "y", "shape": [None, 10],
                           "dtype": "float32"}],
              "parameters": 101770, "engine_version": "0.1.0"},
    "meta": {"task": 7},
}

def put(name, m):
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(m, f)

def mut(name, fn):
    m = copy.deepcopy(base)
    fn(m)
    put(name, m)

put("good-model", base)
mut("good-result-without-model", lambda m: (m.update(kind="result"),
                                            m.pop("model")))
mut("good-dataset-minimal", lambda m: [m.pop(k) for k in
                                       ("model", "meta", "description")]
    and m.update(kind="dataset"))
mut("good-task-assets", lambda m: m.update(kind="task-assets"))
mut("good-dotfile", lambda m: m["files"][0].update(path=".config/a..b"))
mut("good-unicode-path", lambda m: m["files"][0].update(path="données/é.csv"))
mut("good-big-size", lambda m: m["files"][0].update(size=1 << 40))
mut("good-any-dims", lambda m: m["model"]["inputs"][0].update(
    shape=[None, None, 28, 28, 1]))
mut("good-engine-version", lambda m: m["model"].update(
    engine_version="1.2.3-rc.1+b5"))

bad = {
    "no-manifest": lambda m: m.pop("manifest"),
    "manifest-2": lambda m: m.update(manifest=2),
    "kind": lambda m: m.update(kind="weights"),
    "name-empty": lambda m: m.update(name=""),
    "name-newline": lambda m: m.update(name="a\nb"),
    "name-long": lambda m: m.update(name="n" * 129),
    "version-number": lambda m: m.update(version=3),
    "created-offset": lambda m: m.update(created="2024-01-01T00:00:00+01:00"),
    "created-format": lambda m: m.update(created="2024-01-01 00:00:00Z"),
    "unknown-field": lambda m: m.update(extra=1),
    "files-empty": lambda m: m.update(files=[]),
    "files-object": lambda m: m.update(files={}),
    "file-extra": lambda m: m["files"][0].update(mode=420),
    "file-no-size": lambda m: m["files"][0].pop("size"),
    "size-negative": lambda m: m["files"][0].update(size=-1),
    "size-huge": lambda m: m["files"][0].update(size=(1 << 40) + 1),
    "size-float": lambda m: m["files"][0].update(size=1.5),
    "sha-upper": lambda m: m["files"][0].update(sha256=sha.upper()),
    "sha-short": lambda m: m["files"][0].update(sha256=sha[:63]),
    "path-dotdot": lambda m: m["files"][0].update(path="../x"),
    "path-inner-dotdot": lambda m: m["files"][0].update(path="a/../../x"),
    "path-dot": lambda m: m["files"][0].update(path="a/./b"),
    "path-absolute": lambda m: m["files"][0].update(path="/etc/passwd"),
    "path-empty-component": lambda m: m["files"][0].update(path="a//b"),
    "path-trailing-slash": lambda m: m["files"][0].update(path="a/"),
    "path-backslash": lambda m: m["files"][0].update(path="a\\..\\b"),
    "path-control": lambda m: m["files"][0].update(path="a\tb"),
    "path-empty": lambda m: m["files"][0].update(path=""),
    "model-missing": lambda m: m.pop("model"),
    "model-null": lambda m: m.update(model=None),
    "model-format": lambda m: m["model"].update(format="onnx"),
    "model-extra": lambda m: m["model"].update(layers=3),
    "model-no-inputs": lambda m: m["model"].update(inputs=[]),
    "shape-zero": lambda m: m["model"]["inputs"][0].update(shape=[None, 0]),
    "shape-empty": lambda m: m["model"]["inputs"][0].update(shape=[]),
    "shape-nine": lambda m: m["model"]["inputs"][0].update(shape=[1] * 9),
    "dtype": lambda m: m["model"]["outputs"][0].update(dtype="float64"),
    "tensor-extra": lambda m: m["model"]["outputs"][0].update(unit="cm"),
    "parameters-negative": lambda m: m["model"].update(parameters=-1),
    "engine-version-space": lambda m: m["model"].update(engine_version="1 2"),
    "meta-string": lambda m: m.update(meta="x"),
    "description-empty": lambda m: m.update(description=""),
}
for name, fn in bad.items():
    mut("bad-" + name, fn)
PY

# The schema's verdict on each file: prints "NAME valid|invalid".
python3 - "$top/schema/manifest.schema.json" "$work"/*.json >"$work/schema.out" <<'PY'
import json, os, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
for p in sys.argv[2:]:
    ok = v.is_valid(json.load(open(p)))
    print(os.path.basename(p)[:-5], "valid" if ok else "invalid")
PY
n=0
if [ ! -s "$work/schema.out" ]; then
  echo "not ok 1 - the schema loads and judges the corpus"; echo "1..1"; exit 1
fi
while read -r name verdict; do
  n=$((n + 1))
  "$store_bin" check "$work/$name.json" >/dev/null 2>"$work/err"
  rc=$?
  want=valid; [[ $name == bad-* ]] && want=invalid
  c=valid; [ "$rc" -eq 0 ] || c=invalid
  if [ "$verdict" = "$want" ] && [ "$c" = "$want" ]; then
    echo "ok $n - $name: schema and checker both say $want"
  else
    echo "not ok $n - $name: want $want, schema says $verdict, checker says $c ($(cat "$work/err"))"
  fi
done <"$work/schema.out"
echo "1..$n"
