#!/usr/bin/env bash
# Payout throughput and gas per payout, single releases against batches of
# 10 and 50, in one run. Uses the stack in the environment, or starts its
# own (FM_PORT_BASE 57500, var/bench-payout).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s -j2 lib build/obj/tests/support/marketfx.o build/obj/tests/support/chainfx.o \
  build/obj/tests/support/testenv.o >/dev/null
out=build/bench/payout_bench
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Iclients/lib -Iservices/lib -Itests/support \
  -I/usr/include/x86_64-linux-gnu $(pkg-config --cflags jansson libpq) \
  bench/payout_bench.c build/obj/tests/support/marketfx.o \
  build/obj/tests/support/chainfx.o build/obj/tests/support/testenv.o \
  build/libfmclient.a build/libfmservice.a build/libfedmarket.a -o "$out" \
  $(pkg-config --libs libpq libcurl jansson libsecp256k1 libsodium openblas \
    libmicrohttpd zlib libcrypto) -lm
if [ -z "${FEDMARKET_RPC_URL:-}" ]; then
  export FM_PORT_BASE=${FM_PORT_BASE:-57500} FM_VAR=${FM_VAR:-$top/var/bench-payout}
  ./deploy/local/stack up >/dev/null
  trap './deploy/local/stack down >/dev/null 2>&1 || true' EXIT
  eval "$(./deploy/local/stack env)"
fi
export FM_TOP=$top
"$out"
