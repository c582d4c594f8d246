#!/usr/bin/env bash
# Services under load: taskd and assignd on a migrated database of the
# bench stack's PostgreSQL (fsync on), a file:// store, an escrow on
# anvil and FM_BENCH_TASKS (1000) funded open tasks; then GET /v1/tasks
# (and the other FM_BENCH_READS paths) and signed
# POST /v1/tasks/{id}/assignments, each with FM_BENCH_CONNS (64)
# connections (bench/services_bench.c). Next to them, in the same run on
# the same cluster: pgbench select-only (-S) and simple-update (-N) on a
# database of their own (pgbench -i -s 10), FM_BENCH_PGBENCH_CLIENTS (8)
# clients, 2 threads.
# Targets: reads >= 40% of pgbench -S, assignments >= 50% of pgbench -N,
# p99 < 20 ms. Prints the figures, the ratios and one JSON object last.
# Exit 0 when everything ran without an error answer (missed targets
# are reported in the JSON, "targets_met"), 1 otherwise.
#
# Usage: bench/services.sh [--quick]    (--quick: 3 s runs, 200 tasks)
# Uses the stack of the environment (deploy/local/stack env) when it is
# up, else starts one on FM_PORT_BASE (61400) under FM_VAR (var/bench)
# and stops it at the end. Services listen on FM_PORT_BASE + 10 and + 11.
# FM_BENCH_HTTP_THREADS / FM_BENCH_DB_POOL set the services' http_threads
# and db_pool_size (default: the services' own defaults).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dur=${FM_BENCH_SECONDS:-10} tasks=${FM_BENCH_TASKS:-1000}
if [ "${1:-}" = "--quick" ]; then
	dur=3 tasks=200
elif [ $# -gt 0 ]; then
	echo "usage: bench/services.sh [--quick]" >&2
	exit 2
fi
conns=${FM_BENCH_CONNS:-64}
pgclients=${FM_BENCH_PGBENCH_CLIENTS:-8}
reads=${FM_BENCH_READS:-"/v1/tasks /v1/tasks?state=open&limit=10 /v1/tasks/{id}"}
export FM_PORT_BASE=${FM_PORT_BASE:-61400}
export FM_VAR=${FM_VAR:-$top/var/bench}
py=/usr/bin/python3
command -v "$py" >/dev/null || py=python3

own_stack=0 pids=()
work=$FM_VAR/services
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	pids=()
	[ "$own_stack" = 1 ] && ./deploy/local/stack down >/dev/null 2>&1
	own_stack=0
}
trap cleanup EXIT

if ! ./deploy/local/stack status >/dev/null 2>&1; then
	echo "services: starting a stack on ports $FM_PORT_BASE.. under $FM_VAR" >&2
	own_stack=1 # stop even a half-started stack
	(unset FM_STACK_FAST; ./deploy/local/stack up >/dev/null)
fi
eval "$(./deploy/local/stack env)"

make -s -j2 bin/fedmarket-taskd bin/fedmarket-assignd bin/fedmarket-migrate \
	bin/fedmarket-store
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Wall -Wextra -Werror -Icommon \
	-I/usr/include/x86_64-linux-gnu -o build/bench/services_bench \
	bench/services_bench.c build/libfedmarket.a \
	$(pkg-config --libs libpq libcurl jansson libsecp256k1 libsodium openblas \
	libmicrohttpd zlib libcrypto) -lm

psql=("$FM_PGBIN/psql" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres -qAt)
pg_url="postgresql://postgres@127.0.0.1:$FM_PG_PORT"
rm -rf "$work"
mkdir -p "$work/assets/model" "$work/tmp"
for db in fm_bench_services fm_bench_pgbench; do
	"${psql[@]}" -c "DROP DATABASE IF EXISTS $db" postgres
	"${psql[@]}" -c "CREATE DATABASE $db" postgres
done
db_url=$pg_url/fm_bench_services
bin/fedmarket-migrate --database-url "$db_url" up >"$work/migrate.log" 2>&1 ||
	{ cat "$work/migrate.log" >&2; exit 1; }
settings=$("${psql[@]}" -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name)
	FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit',
	'shared_buffers', 'max_connections', 'full_page_writes')" postgres)

# The tasks' assets: the Fashion-MNIST seed model.
store=file://$work/store
cp assets/models/fashion-mlp/* "$work/assets/model/"
assets=$(bin/fedmarket-store --store "$store" push --create --kind task-assets \
	--name bench-assets "$work/assets")
read -r escrow operator < <(build/bench/services_bench deploy | sed 's/[a-z]*=//g')
[ -n "${operator:-}" ] || { echo "services: escrow deployment failed" >&2; exit 1; }

taskd_port=$((FM_PORT_BASE + 10)) assignd_port=$((FM_PORT_BASE + 11))
start() { # name port
	local extra=()
	[ -n "${FM_BENCH_HTTP_THREADS:-}" ] && extra+=("FEDMARKET_HTTP_THREADS=$FM_BENCH_HTTP_THREADS")
	[ -n "${FM_BENCH_DB_POOL:-}" ] && extra+=("FEDMARKET_DB_POOL_SIZE=$FM_BENCH_DB_POOL")
	env FEDMARKET_DATABASE_URL="$db_url" FEDMARKET_STORAGE_URL="$store" \
		FEDMARKET_ESCROW_ADDRESS="$escrow" FEDMARKET_OPERATOR_ADDRESS="$operator" \
		TMPDIR="$work/tmp" "${extra[@]}" \
		bin/fedmarket-"$1" --listen "127.0.0.1:$2" >"$work/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "services: $1 did not start; last lines of $work/$1.log:" >&2
	tail -20 "$work/$1.log" >&2
	exit 1
}
start taskd "$taskd_port"
start assignd "$assignd_port"

# pgbench first, on its own database, while the services are idle.
pgb=("$FM_PGBIN/pgbench" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres)
"${pgb[@]}" -i -s 10 -q fm_bench_pgbench >"$work/pgbench-init.log" 2>&1 ||
	{ cat "$work/pgbench-init.log" >&2; exit 1; }
pgbench_run() { # name flag
	echo "services: pgbench $2 -c $pgclients -j 2 -T $dur" >&2
	"${pgb[@]}" -n "$2" -c "$pgclients" -j 2 -T "$dur" fm_bench_pgbench \
		>"$work/pgbench-$1.log" 2>&1 || { cat "$work/pgbench-$1.log" >&2; exit 1; }
}
pgbench_run select -S
pgbench_run update -N

read_args=()
for r in $reads; do read_args+=(--read "$r"); done
rc=0
build/bench/services_bench run --taskd "http://127.0.0.1:$taskd_port" \
	--assignd "http://127.0.0.1:$assignd_port" --escrow "$escrow" \
	--assets "$assets" --tasks "$tasks" --conns "$conns" --seconds "$dur" \
	"${read_args[@]}" >"$work/load.json" || rc=$?
cleanup
[ -s "$work/load.json" ] || { echo "services: the load client failed (exit $rc)" >&2; exit 1; }

"$py" - "$work" "$pgclients" "$settings" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, re, sys
work, pgclients, settings, cores, load = sys.argv[1:6]
res = json.load(open(f"{work}/load.json"))

def tps(name):
    t = open(f"{work}/pgbench-{name}.log").read()
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", t)
    lat = re.search(r"latency average = ([\d.]+) ms", t)
    return {"tps": float(m.group(1)), "latency_avg_ms": float(lat.group(1)) if lat else None}

pg = {"clients": int(pgclients), "threads": 2, "scale": 10,
      "select_only": tps("select"), "simple_update": tps("update"),
      "settings": dict(kv.split("=", 1) for kv in settings.split())}
res["pgbench"] = pg
res["cores"], res["loadavg_at_end"] = int(cores), load.split()
read, assign = res["reads"][0], res["assignments"]
ratios = {"reads_of_pgbench_select": read["req_per_s"] / pg["select_only"]["tps"],
          "assignments_of_pgbench_update": assign["req_per_s"] / pg["simple_update"]["tps"]}
targets = {"reads_of_pgbench_select": 0.40, "assignments_of_pgbench_update": 0.50,
           "p99_ms": 20.0}
met = {"reads": ratios["reads_of_pgbench_select"] >= 0.40,
       "assignments": ratios["assignments_of_pgbench_update"] >= 0.50,
       "reads_p99": read["p99_ms"] < 20.0, "assignments_p99": assign["p99_ms"] < 20.0}
res["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
res["targets"], res["met"] = targets, met
res["targets_met"] = all(met.values())

print(f"services under load: {res['connections']} connections, {res['duration_s']:.0f} s each, "
      f"{res['tasks']} open tasks; PostgreSQL {pg['settings']}")
print(f"  {'':44}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
for r in res["reads"]:
    print(f"  {r['method'] + ' ' + r['path']:<44}{r['req_per_s']:>10,.0f}{r['p50_ms']:>9.2f}"
          f"{r['p99_ms']:>9.2f}{r['errors']:>8}")
print(f"  {'POST ' + assign['path']:<44}{assign['req_per_s']:>10,.0f}{assign['p50_ms']:>9.2f}"
      f"{assign['p99_ms']:>9.2f}{assign['errors']:>8}")
for k, name in (("select_only", "-S"), ("simple_update", "-N")):
    print(f"  {'pgbench ' + name + ' -c ' + pgclients + ' -j 2 (TPS)':<44}{pg[k]['tps']:>10,.0f}"
          f"{pg[k]['latency_avg_ms']:>9.2f}{'(avg)':>9}")
print(f"  GET {read['path']} / pgbench -S      {ratios['reads_of_pgbench_select']:6.2f}"
      f"  target >= 0.40  {'met' if met['reads'] else 'MISSED'}")
print(f"  assignments / pgbench -N        {ratios['assignments_of_pgbench_update']:6.2f}"
      f"  target >= 0.50  {'met' if met['assignments'] else 'MISSED'}")
print(f"  p99 < 20 ms: reads {read['p99_ms']:.2f} ({'met' if met['reads_p99'] else 'MISSED'}), "
      f"assignments {assign['p99_ms']:.2f} ({'met' if met['assignments_p99'] else 'MISSED'})")
for r in res["reads"] + [assign]:
    if r.get("first_error"):
        print(f"  first error on {r['path']}: {r['first_error']}")
print(json.dumps(res))
PY
exit "$rc"
