#!/usr/bin/env bash
# The committed escrow artifacts (contracts/Escrow.json and
# common/chain/escrow_code.c) are what a fresh compile of
# contracts/Escrow.sol gives, and agree with each other.
set -uo pipefail
: "${FM_TOP:?}"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }

if out=$("$FM_TOP/contracts/compile" --check 2>&1); then
  ok "artifacts match a fresh compile of Escrow.sol"
else
  not_ok "artifacts match a fresh compile of Escrow.sol" "$out"
fi

# the C copy of the bytecode is the JSON artifact's
out=$(node -e '
const fs = require("fs");
const top = process.argv[1];
const a = JSON.parse(fs.readFileSync(top + "/contracts/Escrow.json"));
const c = fs.readFileSync(top + "/common/chain/escrow_code.c", "utf8");
const grab = name => c.split(name + "[] =")[1].split(";")[0].match(/"([0-9a-f]*)"/g).map(s => s.slice(1, -1)).join("");
const bad = [];
if ("0x" + grab("escrow_creation_hex") !== a.bytecode) bad.push("creation code differs");
if ("0x" + grab("escrow_runtime_hex") !== a.deployedBytecode) bad.push("runtime code differs");
const src = require("crypto").createHash("sha256").update(fs.readFileSync(top + "/contracts/Escrow.sol")).digest("hex");
if (src !== a.sourceSha256) bad.push("sourceSha256 is not the hash of Escrow.sol");
process.stdout.write(bad.join("; "));
' "$FM_TOP" 2>&1)
if [ -z "$out" ]; then ok "escrow_code.c holds the artifact's bytecode"; else not_ok "escrow_code.c holds the artifact's bytecode" "$out"; fi

# the ABI has what the C bindings call
out=$(node -e '
const a = JSON.parse(require("fs").readFileSync(process.argv[1] + "/contracts/Escrow.json"));
const sig = e => e.name + "(" + e.inputs.map(i => i.type).join(",") + ")";
const have = new Set(a.abi.filter(e => e.type === "function" || e.type === "event").map(sig));
const want = ["fund(bytes32,address,uint64,uint256,uint32)", "release(bytes32,bytes32,address)",
  "releaseBatch(bytes32,bytes32[],address[])", "refund(bytes32)", "cancel(bytes32)", "withdraw()",
  "fundScored(bytes32,address,uint64,uint256,uint32,uint256)",
  "releaseScored(bytes32,uint32,bytes32,bytes32[],address[],uint256[])",
  "tasks(bytes32)", "paid(bytes32)", "owed(address)", "Scored(bytes32,uint32,bytes32)",
  "Funded(bytes32,address,address,uint256,uint32,uint64)", "Released(bytes32,bytes32,address,uint256)",
  "AlreadyPaid(bytes32,bytes32)", "Refunded(bytes32,address,uint256,bool)", "Credited(address,uint256)",
  "Withdrawn(address,uint256)"];
process.stdout.write(want.filter(w => !have.has(w)).join(" "));
' "$FM_TOP" 2>&1)
if [ -z "$out" ]; then ok "the ABI has every function and event the C code uses"; else not_ok "ABI lacks: $out"; fi
echo "1..$n"
