#!/usr/bin/env bash
# Storage throughput on loopback: fedmarket-store against the curl command
# line moving the same bytes to the same server in the same run, for the
# WebDAV (nginx) and S3 (SigV4) backends. Target: ours >= 0.9x curl.
#
# Runs alternate curl and ours on an FM_BENCH_MIB (default 256) MiB file
# and report the median of FM_BENCH_RUNS (default 7) runs, with the
# fastest run of each next to it: on tmpfs a run now and then stalls on
# page allocation (the same command taking 4x as long), which moves a
# median of few runs. Data and the servers' folders live on /dev/shm when
# it exists, so disk noise does not swamp the network path. Starts its
# own stack on FM_BENCH_PORT_BASE (default 59420) and stops it at the end.
# Prints one line per measurement and "N passed, N failed" (a pass is a
# ratio >= 0.9).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

mib=${FM_BENCH_MIB:-256}
runs=${FM_BENCH_RUNS:-7}
export FM_PORT_BASE=${FM_BENCH_PORT_BASE:-59420}
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=$top/var
scratch=$(mktemp -d "$scratch_root/fm-bench-storage.XXXXXX")
chmod 755 "$scratch" # nginx runs as nobody
export FM_VAR=$scratch/var FM_STACK_FAST=1

cleanup() {
  ./deploy/local/stack down >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT

[ -x bin/fedmarket-store ] || make -s -j2 bin/fedmarket-store
store=$top/bin/fedmarket-store
./deploy/local/stack up >/dev/null
eval "$(./deploy/local/stack env)"

data=$scratch/data.bin
head -c $((mib << 20)) /dev/urandom >"$data"
sigv4=(--aws-sigv4 "aws:amz:${FEDMARKET_S3_REGION:-us-east-1}:s3"
       --user "$FEDMARKET_S3_ACCESS_KEY:$FEDMARKET_S3_SECRET_KEY")
unsigned=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
bucket=bench$$
# create the bucket through the library (push --create needs a bundle)
mkdir -p "$scratch/one" && echo x >"$scratch/one/x"
"$store" --store "s3://$bucket" push --create --kind dataset --name b \
  "$scratch/one" >/dev/null

now() { date +%s.%N; }

# seconds taken by a command (its stdout goes to $out, default
# /dev/null), or exit on failure
timed() {
  local s e
  s=$(now)
  "$@" >"${out:-/dev/null}" || { echo "bench: failed: $*" >&2; exit 1; }
  e=$(now)
  echo "$e - $s" | bc -l
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
fastest() { sort -g | head -1; }

passed=0 failed=0
report() { # backend op curl_seconds ours_seconds curl_fastest ours_fastest
  local c=$3 o=$4 cm om ratio verdict best
  cm=$(echo "$mib / $c" | bc -l)
  om=$(echo "$mib / $o" | bc -l)
  ratio=$(echo "$c / $o" | bc -l)
  if [ "$(echo "$ratio >= 0.9" | bc -l)" = 1 ]; then
    verdict=ok; passed=$((passed + 1))
  else
    verdict=SLOW; failed=$((failed + 1))
  fi
  best=$(echo "$5 / $6" | bc -l)
  printf '%-7s %-9s curl %8.1f MiB/s  ours %8.1f MiB/s  ratio %5.2f  %s  (fastest runs: %.2f)\n' \
    "$1" "$2" "$cm" "$om" "$ratio" "$verdict" "$best"
}

bench_backend() { # name store_url object_url [curl args...]
  local name=$1 url=$2 obj=$3; shift 3
  local cu=() ou=() cd=() od=() i
  for ((i = 0; i < runs; i++)); do
    cu+=("$(timed curl -sS -f "$@" -T "$data" "$obj/curl-object")")
    ou+=("$(timed "$store" --store "$url" put "$data" ours-object)")
    cd+=("$(timed curl -sS -f "$@" -o "$scratch/curl.out" "$obj/curl-object")")
    od+=("$(timed "$store" --store "$url" get ours-object "$scratch/ours.out")")
    cmp -s "$data" "$scratch/ours.out" || { echo "bench: $name: download differs" >&2; exit 1; }
    rm -f "$scratch/curl.out" "$scratch/ours.out"
  done
  report "$name" upload "$(printf '%s\n' "${cu[@]}" | median)" \
    "$(printf '%s\n' "${ou[@]}" | median)" \
    "$(printf '%s\n' "${cu[@]}" | fastest)" \
    "$(printf '%s\n' "${ou[@]}" | fastest)"
  report "$name" download "$(printf '%s\n' "${cd[@]}" | median)" \
    "$(printf '%s\n' "${od[@]}" | median)" \
    "$(printf '%s\n' "${cd[@]}" | fastest)" \
    "$(printf '%s\n' "${od[@]}" | fastest)"
}

# The verified path (hash, upload, download, verify) for reference: it
# does more work than curl, so it is shown, not held to the target.
bench_bundle() { # name store_url
  local ref i pu=() pd=()
  mkdir -p "$scratch/bundle"
  cp "$data" "$scratch/bundle/data.bin"
  for ((i = 0; i < runs; i++)); do
    # new bytes each run, so every push really uploads
    printf 'run %08d' "$i" | dd of="$scratch/bundle/data.bin" conv=notrunc status=none
    pu+=("$(out=$scratch/ref timed "$store" --store "$2" push --kind dataset --name "b$i" "$scratch/bundle")")
    ref=$(cat "$scratch/ref")
    pd+=("$(timed "$store" --store "$2" pull "$ref" "$scratch/pulled")")
    rm -rf "$scratch/pulled"
  done
  printf '%-7s %-9s %8.1f MiB/s (hash + upload + hash check, median)\n' \
    "$1" push "$(echo "$mib / $(printf '%s\n' "${pu[@]}" | median)" | bc -l)"
  printf '%-7s %-9s %8.1f MiB/s (download + sha256 verify, median)\n' \
    "$1" pull "$(echo "$mib / $(printf '%s\n' "${pd[@]}" | median)" | bc -l)"
}

echo "storage bench: $mib MiB, median of $runs runs, scratch on $scratch_root"
echo "(2 shared cores: figures move with whatever else runs)"
bench_backend webdav "$FM_DAV_URL/bench" "$FM_DAV_URL/bench"
bench_backend s3 "s3://$bucket" "$FEDMARKET_S3_ENDPOINT/$bucket" \
  "${sigv4[@]}" "${unsigned[@]}"
bench_bundle webdav "$FM_DAV_URL/bundles"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
