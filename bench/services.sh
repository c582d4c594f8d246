#!/usr/bin/env bash
# Services under load: taskd and assignd on a migrated database of the
# bench stack's PostgreSQL (fsync on), a file:// store, an escrow on
# anvil and FM_BENCH_TASKS (1000) funded open tasks; then GET /v1/tasks
# (and the other FM_BENCH_READS paths) and signed
# POST /v1/tasks/{id}/assignments, each with FM_BENCH_CONNS (64)
# connections (bench/services_bench.c). Next to them, on the same cluster:
# pgbench select-only (-S) and simple-update (-N) on a database of their
# own (pgbench -i -s 10), FM_BENCH_PGBENCH_CLIENTS (8) clients, 2 threads.
# FM_BENCH_ROUNDS (3) rounds of pgbench -S, reads, pgbench -N,
# assignments, FM_BENCH_SECONDS (10) each: every service figure is paired
# with a pgbench figure taken just before it, and the medians are shown.
# Targets: reads >= 40% of pgbench -S, assignments >= 50% of pgbench -N,
# p99 < 20 ms. Prints the figures, the ratios and one JSON object last.
# Exit 0 when everything ran without an unexpected answer (missed
# targets are reported in the JSON, "targets_met"), 1 otherwise.
#
# Usage: bench/services.sh [--quick]  (--quick: 1 round of 3 s, 200 tasks)
# Uses the stack of the environment (deploy/local/stack env) when it is
# up, else starts one on FM_PORT_BASE (61400) under FM_VAR (var/bench)
# and stops it at the end. Services listen on FM_PORT_BASE + 10 and + 11.
# FM_BENCH_HTTP_THREADS / FM_BENCH_DB_POOL set the services' http_threads
# and db_pool_size (default: the services' own defaults).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dur=${FM_BENCH_SECONDS:-10} tasks=${FM_BENCH_TASKS:-1000}
rounds=${FM_BENCH_ROUNDS:-3}
if [ "${1:-}" = "--quick" ]; then
	dur=3 tasks=200 rounds=1
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
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Icommon -Iclients/lib -Iservices/lib \
	-I/usr/include/x86_64-linux-gnu -o build/bench/services_bench \
	bench/services_bench.c build/libfmclient.a build/libfmservice.a build/libfedmarket.a \
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

pgb=("$FM_PGBIN/pgbench" -h 127.0.0.1 -p "$FM_PG_PORT" -U postgres)
"${pgb[@]}" -i -s 10 -q fm_bench_pgbench >"$work/pgbench-init.log" 2>&1 ||
	{ cat "$work/pgbench-init.log" >&2; exit 1; }
build/bench/services_bench setup --taskd "http://127.0.0.1:$taskd_port" \
	--escrow "$escrow" --assets "$assets" --tasks "$tasks" --ids "$work/ids" \
	--slots $((conns * (rounds + 1)))

# Rounds of: pgbench -S, the reads, pgbench -N, the assignments. Each
# service figure sits next to a pgbench figure taken seconds before, so
# a change in the machine's load moves both; medians over the rounds.
rc=0
pgbench_run() { # out flag
	echo "services: round $round: pgbench $2 -c $pgclients -j 2 -T $dur" >&2
	"${pgb[@]}" -n "$2" -c "$pgclients" -j 2 -T "$dur" fm_bench_pgbench \
		>"$1" 2>&1 || { cat "$1" >&2; exit 1; }
}
load() { # out args...
	local out=$1; shift
	echo "services: round $round: $*" >&2
	build/bench/services_bench load --ids "$work/ids" --conns "$conns" \
		--seconds "$dur" "$@" >"$out" || rc=1
}
for ((round = 1; round <= rounds; round++)); do
	pgbench_run "$work/r$round-pgbench-select.log" -S
	i=0
	for r in $reads; do
		load "$work/r$round-read$i.json" --read "http://127.0.0.1:$taskd_port" "$r"
		i=$((i + 1))
	done
	pgbench_run "$work/r$round-pgbench-update.log" -N
	load "$work/r$round-assign.json" --assign "http://127.0.0.1:$assignd_port"
done
cleanup

"$py" - "$work" "$rounds" "$pgclients" "$settings" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" $reads <<'PY'
import json, re, statistics as st, sys
work, rounds, pgclients, settings, cores, load = sys.argv[1:7]
paths, rounds = sys.argv[7:], int(rounds)

def tps(f):
    t = open(f).read()
    return float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", t).group(1))

def phase(f):
    try:
        return json.load(open(f))
    except (OSError, ValueError):
        return None  # the client failed: reported below

R = range(1, rounds + 1)
sel = [tps(f"{work}/r{r}-pgbench-select.log") for r in R]
upd = [tps(f"{work}/r{r}-pgbench-update.log") for r in R]
reads = [[phase(f"{work}/r{r}-read{i}.json") for r in R] for i in range(len(paths))]
assign = [phase(f"{work}/r{r}-assign.json") for r in R]

def summary(runs, base, name):
    ok = [x for x in runs if x]
    out = {"method": ok[0]["method"] if ok else "?", "path": ok[0]["path"] if ok else name,
           "rounds": len(ok), "errors": sum(x["errors"] for x in ok) + len(runs) - len(ok)}
    if ok:
        for k in ("req_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
            out[k] = st.median(x[k] for x in ok)
        out["of_pgbench"] = st.median(x["req_per_s"] / b for x, b in zip(runs, base) if x)
        out["per_round"] = [{"req_per_s": x["req_per_s"], "p99_ms": x["p99_ms"], "pgbench_tps": b}
                            for x, b in zip(runs, base) if x]
        firsts = [x["first_error"] for x in ok if x.get("first_error")]
        if firsts:
            out["first_error"] = firsts[0]
    return out

res = {"bench": "services", "connections": None, "duration_s": None, "rounds": rounds,
       "cores": int(cores), "loadavg_at_end": load.split()}
first = next((x for x in assign if x), None)
if first:
    res["connections"], res["duration_s"], res["tasks"] = first["connections"], first["duration_s"], first["tasks"]
res["reads"] = [summary(runs, sel, p) for runs, p in zip(reads, paths)]
res["assignments"] = summary(assign, upd, "/v1/tasks/{id}/assignments")
res["pgbench"] = {"clients": int(pgclients), "threads": 2, "scale": 10,
                  "select_only_tps": st.median(sel), "simple_update_tps": st.median(upd),
                  "select_only_per_round": sel, "simple_update_per_round": upd,
                  "settings": dict(kv.split("=", 1) for kv in settings.split())}
res["errors"] = sum(r["errors"] for r in res["reads"]) + res["assignments"]["errors"]
read, asg = res["reads"][0], res["assignments"]
single = next((r for r in res["reads"] if "{id}" in r["path"]), None)
res["ratios"] = {"reads_of_pgbench_select": round(read.get("of_pgbench", 0), 3),
                 "assignments_of_pgbench_update": round(asg.get("of_pgbench", 0), 3)}
if single:
    res["ratios"]["single_task_reads_of_pgbench_select"] = round(single.get("of_pgbench", 0), 3)
res["targets"] = {"reads_of_pgbench_select": 0.40, "assignments_of_pgbench_update": 0.50, "p99_ms": 20.0}
met = {"reads": read.get("of_pgbench", 0) >= 0.40, "assignments": asg.get("of_pgbench", 0) >= 0.50,
       "reads_p99": read.get("p99_ms", 1e9) < 20.0, "assignments_p99": asg.get("p99_ms", 1e9) < 20.0}
res["met"], res["targets_met"] = met, all(met.values())

yes = lambda b: "met" if b else "MISSED"
print(f"services under load: {res['connections']} connections, {res['duration_s']:.0f} s per run, "
      f"{res.get('tasks')} open tasks, median of {rounds} round(s); PostgreSQL {res['pgbench']['settings']}")
print(f"  {'':40}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'of pgbench':>12}{'errors':>8}")
for r in res["reads"] + [asg]:
    if r["rounds"]:
        print(f"  {r['method'] + ' ' + r['path']:<40}{r['req_per_s']:>9,.0f}{r['p50_ms']:>9.2f}"
              f"{r['p99_ms']:>9.2f}{r['of_pgbench']:>12.3f}{r['errors']:>8}")
    else:
        print(f"  {r['path']:<40}  failed in every round")
print(f"  {'pgbench -S -c ' + pgclients + ' -j 2 (TPS)':<40}{res['pgbench']['select_only_tps']:>9,.0f}"
      f"   rounds: {', '.join(f'{x:,.0f}' for x in sel)}")
print(f"  {'pgbench -N -c ' + pgclients + ' -j 2 (TPS)':<40}{res['pgbench']['simple_update_tps']:>9,.0f}"
      f"   rounds: {', '.join(f'{x:,.0f}' for x in upd)}")
print(f"  GET {read['path']} / pgbench -S: {res['ratios']['reads_of_pgbench_select']:.3f} "
      f"(target >= 0.40, {yes(met['reads'])}); assignments / pgbench -N: "
      f"{res['ratios']['assignments_of_pgbench_update']:.3f} (target >= 0.50, {yes(met['assignments'])})")
print(f"  p99 < 20 ms: reads {read.get('p99_ms', 0):.2f} ({yes(met['reads_p99'])}), "
      f"assignments {asg.get('p99_ms', 0):.2f} ({yes(met['assignments_p99'])})")
for r in res["reads"] + [asg]:
    if r.get("first_error"):
        print(f"  first unexpected answer on {r['path']}: {r['first_error']}")
print(json.dumps(res))
PY
exit "$rc"
