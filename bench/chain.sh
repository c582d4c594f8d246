#!/usr/bin/env bash
# Chain signing benchmark: the library's EIP-191 / transaction signing and
# address recovery next to raw libsecp256k1, same run, 1 and 2 threads
# (see bench/chain_bench.c). Target: our paths >= 90% of raw.
# Prints one JSON object: per operation, operations per wall second and
# per CPU second of the benchmark's own threads, the ratios ours/raw (on
# CPU time, which other processes on the machine disturb far less), the
# load average, and targets_met. Wall figures need an idle machine.
# Usage: bench/chain.sh [--quick]   (--quick: 3 windows of 200 ms)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
window=500 windows=7
[ "${1:-}" = "--quick" ] && window=200 windows=3

make -s -j2 lib
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Iclients/lib -Iservices/lib -I/usr/include/x86_64-linux-gnu \
  -o build/bench/chain_bench bench/chain_bench.c build/libfmclient.a build/libfmservice.a build/libfedmarket.a \
  $(pkg-config --libs libsecp256k1 libsodium libcrypto jansson libcurl libmicrohttpd) -lm
build/bench/chain_bench "$window" "$windows"
