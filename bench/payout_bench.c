/* Payout throughput and gas: the worker pays 100 accepted results with
 * single releases, then with batches of 10 and 50, on the stack's anvil
 * and PostgreSQL; prints confirmed payouts per second and gas per payout,
 * and the batched/single gas ratios. One JSON line per batch size. */
#include "chain/sig.h"
#include "chainfx.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "market/market.h"
#include "marketfx.h"
#include "payout/payout.h"
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REWARD "1000000000000000"
#define N 100

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
	fprintf(stderr, "payout_bench: %s: %s\n", what, fm_error_msg());
	exit(1);
}

static long long scalar(struct db_pool *p, const char *sql)
{
	struct db_conn *c = NULL;
	PGresult *r = NULL;
	long long v;

	if (db_acquire(p, &c, 5000) || db_exec(c, &r, sql, 0, NULL))
		die(sql);
	v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	db_release(p, c);
	return v;
}

/* Returns gas per payout; *rate gets confirmed payouts per second.
 * existing: the recipients already hold ether, so the EVM's 25000-gas
 * charge for creating an account is not part of the payout. */
static double run(int batch, int existing, double *rate)
{
	struct mdb db;
	struct chain_key funder, creator, op;
	char escrow[CHAIN_ADDR_HEX], op_addr[CHAIN_ADDR_HEX], cr[CHAIN_ADDR_HEX];
	char funded[80];
	struct task_spec s;
	struct market_chain_info chain;
	struct payout_worker *w = NULL;
	json_t *spec = mfx_spec(N), *t = NULL;
	double t0, gas;

	if (mdb_open(&db, 8))
		die("database");
	if (chain_key_from_hex(&funder, CHAINFX_KEY0) ||
	    chain_key_from_hex(&creator, CHAINFX_KEY1) ||
	    chain_key_generate(&op))
		die("keys");
	chainfx_addr_hex(op_addr, &op);
	chainfx_addr_hex(cr, &creator);
	if (chainfx_deploy_escrow(escrow, &funder) ||
	    chainfx_transfer(&funder, op_addr, "100000000000000000000"))
		die("escrow");
	chain = (struct market_chain_info){ op_addr, escrow, 31337 };
	if (task_spec_parse(&s, spec, (long long)time(NULL)) ||
	    market_task_create(db.pool, &t, &s, cr, &chain))
		die("task");
	json_decref(t);
	if (chainfx_fund(&creator, escrow, s.task_id, op_addr,
			 (uint64_t)time(NULL) + 86400 * 2, REWARD, N) ||
	    spec_wei_mul(funded, REWARD, N) ||
	    market_task_open(db.pool, &t, s.task_id,
			     "0x0000000000000000000000000000000000000000000000"
			     "000000000000000000",
			     funded))
		die("funding");
	json_decref(t);
	for (int i = 0; i < N; i++) {
		char who[43];
		json_t *a = NULL, *r = NULL, *d = NULL;
		struct market_result_in in = { 0 };
		struct market_decision_in dec = { 0 };

		mfx_address(who);
		if (existing &&
		    chainfx_rpc("anvil_setBalance", json_pack("[s,s]", who,
							      "0x1")))
			die("anvil_setBalance");
		if (market_assign(db.pool, &a, s.task_id, who))
			die("assign");
		in.assignment_id = json_string_value(json_object_get(a, "id"));
		in.contributor = who;
		in.bundle_ref = "abababababababababababababababab"
				"abababababababababababababababab";
		if (market_result_submit(db.pool, &r, &in))
			die("submit");
		dec.result_id = json_string_value(json_object_get(r, "id"));
		dec.validator = cr;
		dec.accept = 1;
		if (market_decide(db.pool, &d, &dec))
			die("accept");
		json_decref(a);
		json_decref(r);
		json_decref(d);
	}
	struct payout_opts o = { tenv_require("FEDMARKET_RPC_URL"), escrow, &op,
				 31337, batch, 1, 600, 10 };
	if (payout_worker_new(&w, db.pool, &o))
		die("worker");
	t0 = now_s();
	for (;;) {
		struct payout_stats st = { 0 };
		int busy = 0;

		if (payout_worker_step(w, &st, &busy))
			die("payout round");
		if (!busy)
			break;
	}
	*rate = N / (now_s() - t0);
	payout_worker_free(w);
	if (scalar(db.pool, "SELECT count(*) FROM payouts WHERE state ="
			    " 'confirmed'") != N)
		die("not every payout confirmed");
	gas = (double)scalar(db.pool, "SELECT sum(gas_used) FROM chain_txs"
				      " WHERE state = 'confirmed'") /
	      N;
	task_spec_cleanup(&s);
	json_decref(spec);
	mdb_close(&db);
	return gas;
}

int main(void)
{
	static const int sizes[] = { 1, 10, 50 };
	static const char *const kind[] = { "new", "existing" };
	double gas[2][3], rate[2][3];
	int met = 1;

	log_init("payout_bench", LOG_WARN, 0);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 3; i++) {
			gas[k][i] = run(sizes[i], k, &rate[k][i]);
			printf("{\"bench\":\"payout\",\"recipients\":\"%s\","
			       "\"batch\":%d,\"payouts\":%d,"
			       "\"payouts_per_s\":%.1f,\"gas_per_payout\":%.0f,"
			       "\"gas_ratio_to_single\":%.3f}\n",
			       kind[k], sizes[i], N, rate[k][i], gas[k][i],
			       gas[k][i] / gas[k][0]);
			fflush(stdout);
		}
	}
	fprintf(stderr, "payouts: %d per run on anvil (1 confirmation)\n"
			"  recipients  batch  payouts/s  gas/payout  vs single\n",
		N);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 3; i++) {
			fprintf(stderr, "  %-10s  %5d  %9.1f  %10.0f  %8.2fx\n",
				kind[k], sizes[i], rate[k][i], gas[k][i],
				gas[k][i] / gas[k][0]);
			if (i && gas[k][i] > 0.6 * gas[k][0])
				met = 0;
		}
	fprintf(stderr,
		"target: batched gas per payout <= 0.60x single: %s\n"
		"(paying an address with no ether costs 25000 gas more in any "
		"transaction: the EVM creates the account)\n",
		met ? "met" : "MISSED");
	return 0;
}
