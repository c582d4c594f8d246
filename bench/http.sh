#!/usr/bin/env bash
# HTTP server benchmark: wrk against a trivial JSON route of the
# services/lib/http server on loopback (64 connections), with and without the
# access log (written to a file). Prints one JSON object with req/s and
# latency percentiles per run. wrk and the server share this machine's
# cores, so the figures are a floor, not the server's ceiling.
# Usage: bench/http.sh [--quick]   (--quick: 3 s runs instead of 10 s)
# Environment: FM_PORT_BASE (server on base+10), FM_HTTP_THREADS
# (server thread pool, default: number of cores), FM_BENCH_CONNS (64).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v wrk >/dev/null || { echo "bench/http.sh: wrk is missing (deploy/local/install-deps --bench)" >&2; exit 1; }
dur=10
[ "${1:-}" = "--quick" ] && dur=3
port=$(( ${FM_PORT_BASE:-55380} + 10 ))
threads=${FM_HTTP_THREADS:-$(nproc)}
conns=${FM_BENCH_CONNS:-64}

make -s -j2 lib
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Iclients/lib -Iservices/lib -I/usr/include/x86_64-linux-gnu \
  -o build/bench/http_server bench/http_server.c build/libfmclient.a build/libfmservice.a build/libfedmarket.a \
  $(pkg-config --libs libmicrohttpd jansson) -lm

pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap cleanup EXIT

# wrk's "--latency" block: "    99%    1.23ms" -> milliseconds
ms() { awk -v p="$1" '$1 == p { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
  if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.3f", v }'; }

run() { # name path access_log
  local log=build/bench/http-$1.log out
  build/bench/http_server "$port" "$threads" "$3" 2>"$log" &
  pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  # warm up, then measure
  wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port$2" >/dev/null
  out=$(wrk -t2 -c"$conns" -d"${dur}s" --latency "http://127.0.0.1:$port$2")
  kill -TERM "$pid"; wait "$pid"; pid=""
  local rps errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  printf '{"name":"%s","path":"%s","access_log":%s,"req_per_s":%s,"p50_ms":%s,"p90_ms":%s,"p99_ms":%s,"non_2xx":%s}' \
    "$1" "$2" "$3" "$rps" "$(ms 50% <<<"$out")" "$(ms 90% <<<"$out")" "$(ms 99% <<<"$out")" "${errs:-0}"
}

a=$(run ping /ping 0)
b=$(run item /v1/items/12345 0)
c=$(run item_logged /v1/items/12345 1)
printf '{"bench":"http","connections":%s,"server_threads":%s,"duration_s":%s,"cores":%s,"runs":[%s,%s,%s]}\n' \
  "$conns" "$threads" "$dur" "$(nproc)" "$a" "$b" "$c"
