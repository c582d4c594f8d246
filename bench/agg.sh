#!/usr/bin/env bash
# Aggregation benchmark: FedAvg (and the robust rules) of 100 updates of
# the seed MLP and of 10 updates of a 10M-parameter model, in GB/s of
# update data read, next to the triad bandwidth measured in the same run.
# Prints one JSON object. Target: FedAvg >= 70% of the 1-thread triad
# for each case ("target_met"; "targets_met" when both are).
# Usage: bench/agg.sh [--quick]   (--quick: small arrays, a smoke run)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s -j2 lib
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Iclients/lib -Iservices/lib -o build/bench/agg_bench \
  bench/agg_bench.c build/libfmclient.a build/libfmservice.a build/libfedmarket.a -lm
exec build/bench/agg_bench "$@"
