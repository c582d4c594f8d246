/* Exactly-once payouts on a real anvil and PostgreSQL: the worker pays
 * every accepted result once, through crashes (SIGKILL of validationd),
 * a stopped chain, stuck transactions and reverts, and refunds what is
 * left, of cancelled tasks and of tasks ended after their rounds.
 * Payments are checked on chain with cast, an independent client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/escrow.h"
#include "chain/keystore.h"
#include "chain/rpc.h"
#include "chain/sig.h"
#include "chainfx.h"
#include "core/sha256.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "market/market.h"
#include "marketfx.h"
#include "payout/payout.h"
#include "svcfx.h"
#include "testenv.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REWARD "1000000000000000"

struct fx {
	struct mdb db;
	char escrow[CHAIN_ADDR_HEX];
	struct chain_key op, creator, funder;
	char op_addr[CHAIN_ADDR_HEX], creator_addr[CHAIN_ADDR_HEX];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || mdb_open(&f->db, 8))
		return -1;
	if (chain_key_from_hex(&f->funder, CHAINFX_KEY0) ||
	    chain_key_from_hex(&f->creator, CHAINFX_KEY1) ||
	    chain_key_generate(&f->op))
		return -1;
	chainfx_addr_hex(f->op_addr, &f->op);
	chainfx_addr_hex(f->creator_addr, &f->creator);
	/* a fresh operator per test: its nonces are its own */
	if (chainfx_deploy_escrow(f->escrow, &f->funder) ||
	    chainfx_transfer(&f->funder, f->op_addr, "100000000000000000000")) {
		fprintf(stderr, "setup: %s\n", fm_error_msg());
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	mdb_close(&f->db);
	free(f);
	return 0;
}

/* Posts, funds and opens a task of slots slots; its id into id. */
static void open_task(struct fx *f, char id[67], int slots, int fund)
{
	json_t *spec = mfx_spec(slots), *t = NULL;
	struct task_spec s;
	struct market_chain_info chain = { f->op_addr, f->escrow, 31337 };
	char funded[80];

	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	assert_int_equal(market_task_create(f->db.pool, &t, &s,
					    f->creator_addr, &chain),
			 FM_OK);
	json_decref(t);
	if (fund)
		assert_int_equal(chainfx_fund(&f->creator, f->escrow, s.task_id,
					      f->op_addr,
					      (uint64_t)time(NULL) + 2 * 86400,
					      REWARD, (uint32_t)slots),
				 FM_OK);
	assert_int_equal(spec_wei_mul(funded, REWARD, slots), FM_OK);
	assert_int_equal(market_task_open(f->db.pool, &t, s.task_id,
					  "0x00000000000000000000000000000000"
					  "00000000000000000000000000000000",
					  funded),
			 FM_OK);
	json_decref(t);
	strcpy(id, s.task_id);
	task_spec_cleanup(&s);
	json_decref(spec);
}

/* n accepted results of task id; contributor addresses into who. */
static void accept_results(struct fx *f, const char *id, int n,
			   char (*who)[CHAIN_ADDR_HEX])
{
	for (int i = 0; i < n; i++) {
		json_t *a = NULL, *r = NULL, *d = NULL;
		struct market_result_in in = { 0 };
		char ref[SHA256_HEX_LEN + 1];
		struct market_decision_in dec = { 0 };

		mfx_address(who[i]);
		assert_int_equal(market_assign(f->db.pool, &a, id, who[i]),
				 FM_OK);
		in.assignment_id = json_string_value(json_object_get(a, "id"));
		in.contributor = who[i];
		fm_sha256_hex(ref, in.assignment_id, strlen(in.assignment_id));
		in.bundle_ref = ref;
		assert_int_equal(market_result_submit(f->db.pool, &r, &in),
				 FM_OK);
		dec.result_id = json_string_value(json_object_get(r, "id"));
		dec.validator = f->creator_addr;
		dec.accept = 1;
		assert_int_equal(market_decide(f->db.pool, &d, &dec), FM_OK);
		json_decref(a);
		json_decref(r);
		json_decref(d);
	}
}

static long long scalar(struct fx *f, const char *sql)
{
	struct db_conn *c = NULL;
	PGresult *r = NULL;
	long long v;

	assert_int_equal(db_acquire(f->db.pool, &c, 5000), FM_OK);
	assert_int_equal(db_exec(c, &r, sql, 0, NULL), FM_OK);
	v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	db_release(f->db.pool, c);
	return v;
}

/* Prints what the database holds, to explain a failure. */
static void dump_state(struct fx *f)
{
	static const char *const sql[] = {
		"SELECT 'payout ' || state || ' attempts=' || attempts || ' tx=' ||"
		" coalesce(chain_tx_id::text, '-') || ' next_in=' ||"
		" extract(epoch FROM next_attempt_at - now())::int || ' ' ||"
		" coalesce(last_error, '') FROM payouts WHERE state <>"
		" 'confirmed' ORDER BY id",
		"SELECT 'tx ' || id || ' nonce=' || nonce || ' ' || state || ' '"
		" || coalesce(error, '') FROM chain_txs WHERE state <>"
		" 'confirmed' ORDER BY nonce, id",
		"SELECT 'next nonce ' || next_nonce FROM chain_nonces",
	};

	for (size_t k = 0; k < sizeof(sql) / sizeof(sql[0]); k++) {
		struct db_conn *c = NULL;
		PGresult *r = NULL;

		if (db_acquire(f->db.pool, &c, 5000))
			return;
		if (!db_exec(c, &r, sql[k], 0, NULL))
			for (int i = 0; i < PQntuples(r) && i < 40; i++)
				printf("# %s\n", PQgetvalue(r, i, 0));
		PQclear(r);
		db_release(f->db.pool, c);
	}
}

static struct payout_opts opts(struct fx *f, int batch, long stuck_s)
{
	struct payout_opts o = { tenv_require("FEDMARKET_RPC_URL"), f->escrow,
				 &f->op, 31337, batch, 1, stuck_s, 10 };
	return o;
}

/* Runs the worker until nothing is in flight (or the deadline). */
static void drain(struct fx *f, struct payout_worker *w, int seconds)
{
	time_t end = time(NULL) + seconds;

	for (;;) {
		struct payout_stats st = { 0 };
		int busy = 0;
		int err = payout_worker_step(w, &st, &busy);

		if (err && err != FM_EUNAVAIL)
			fail_msg("payout round: %s", fm_error_msg());
		if (!err && !busy)
			break;
		if (time(NULL) > end)
			fail_msg("payouts still in flight after %d s", seconds);
		usleep(100000);
	}
	(void)f;
}

/* cast: the balance of addr, in wei, as text. */
static void cast_balance(char *out, size_t n, const char *addr)
{
	assert_int_equal(tenv_sh_out(out, n, "%s balance %s --rpc-url %s",
				     tenv_require("FM_CAST"), addr,
				     tenv_require("FEDMARKET_RPC_URL")),
			 0);
}

/* cast: how many Released events the escrow emitted. */
static int cast_released(struct fx *f)
{
	char out[64];

	assert_int_equal(
		tenv_sh_out(out, sizeof(out),
			    "%s logs --from-block 0 --address %s --rpc-url %s "
			    "'Released(bytes32 indexed,bytes32 indexed,"
			    "address indexed,uint256)' --json | grep -o "
			    "'\"transactionHash\"' | wc -l",
			    tenv_require("FM_CAST"), f->escrow,
			    tenv_require("FEDMARKET_RPC_URL")),
		0);
	return atoi(out);
}

/* Every contributor holds exactly one reward: paid once, not twice. */
static void assert_paid_once(char (*who)[CHAIN_ADDR_HEX], int n)
{
	for (int i = 0; i < n; i++) {
		char bal[128];

		cast_balance(bal, sizeof(bal), who[i]);
		if (strcmp(bal, REWARD) != 0)
			fail_msg("%s holds %s wei, expected %s", who[i], bal,
				 REWARD);
	}
}

static void test_payout__pays_every_accepted_result_once(void **state)
{
	struct fx *f = *state;
	char ids[3][67], who[30][CHAIN_ADDR_HEX];
	struct payout_opts o = opts(f, 4, 60);
	struct payout_worker *w = NULL;

	for (int t = 0; t < 3; t++) {
		open_task(f, ids[t], 10, 1);
		accept_results(f, ids[t], 10, who + 10 * t);
	}
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	drain(f, w, 120);
	payout_worker_free(w);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed' AND tx_hash IS NOT NULL"
				   " AND block_number IS NOT NULL"),
			 30);
	/* batches of up to 4 per task: 3 x ceil(10 / 4) transactions */
	assert_int_equal(scalar(f, "SELECT count(*) FROM chain_txs WHERE state"
				   " = 'confirmed'"),
			 9);
	assert_int_equal(cast_released(f), 30);
	assert_paid_once(who, 30);
}

/* cast: how many Scored events the escrow emitted. */
static int cast_scored(struct fx *f)
{
	char out[64];

	assert_int_equal(
		tenv_sh_out(out, sizeof(out),
			    "%s logs --from-block 0 --address %s --rpc-url %s "
			    "'Scored(bytes32 indexed,uint32 indexed,bytes32)' "
			    "--json | grep -o '\"transactionHash\"' | wc -l",
			    tenv_require("FM_CAST"), f->escrow,
			    tenv_require("FEDMARKET_RPC_URL")),
		0);
	return atoi(out);
}

static void exec_sql(struct fx *f, const char *sql)
{
	struct db_conn *c = NULL;

	assert_int_equal(db_acquire(f->db.pool, &c, 5000), FM_OK);
	if (db_exec(c, NULL, sql, 0, NULL))
		fail_msg("%s: %s", sql, fm_error_msg());
	db_release(f->db.pool, c);
}

/* Every contributor holds exactly what its payout says, no more: paid
 * once, the amount the marketplace fixed. */
static void assert_paid_amounts(struct fx *f, char (*who)[CHAIN_ADDR_HEX],
				int n)
{
	for (int i = 0; i < n; i++) {
		char bal[128], q[200], want[128];
		struct db_conn *c = NULL;
		PGresult *r = NULL;

		snprintf(q, sizeof(q), "SELECT amount_wei::text FROM payouts"
			 " WHERE contributor = '%s'", who[i]);
		assert_int_equal(db_acquire(f->db.pool, &c, 5000), FM_OK);
		assert_int_equal(db_exec(c, &r, q, 0, NULL), FM_OK);
		assert_int_equal(PQntuples(r), 1);
		snprintf(want, sizeof(want), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		db_release(f->db.pool, c);
		cast_balance(bal, sizeof(bal), who[i]);
		if (strcmp(bal, want) != 0)
			fail_msg("%s holds %s wei, its payout is %s", who[i],
				 bal, want);
	}
}

/* Payouts that carry a scoring report go out in one releaseScored with
 * their own amounts, once, even when the worker is asked again. */
static void test_payout__scored_amounts_paid_as_reported(void **state)
{
	/* each above the flat reward but the third; together the pool */
	static const char *const amounts[] = { "1800000000000000",
					       "1000000000000000",
					       "200000000000000" };
	struct fx *f = *state;
	char id[67], who[3][CHAIN_ADDR_HEX], sql[512];
	struct payout_opts o = opts(f, 8, 60);
	struct payout_worker *w = NULL;
	json_t *spec = mfx_spec(3), *t = NULL;
	struct task_spec s;
	struct market_chain_info chain = { f->op_addr, f->escrow, 31337 };

	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	assert_int_equal(market_task_create(f->db.pool, &t, &s,
					    f->creator_addr, &chain),
			 FM_OK);
	json_decref(t);
	/* the round's pool (3 x reward) is the per-result cap */
	assert_int_equal(chainfx_fund_scored(&f->creator, f->escrow, s.task_id,
					     f->op_addr,
					     (uint64_t)time(NULL) + 86400,
					     REWARD, 3, "3000000000000000"),
			 FM_OK);
	assert_int_equal(market_task_open(f->db.pool, &t, s.task_id,
					  "0x00000000000000000000000000000000"
					  "00000000000000000000000000000000",
					  "3000000000000000"),
			 FM_OK);
	json_decref(t);
	strcpy(id, s.task_id);
	task_spec_cleanup(&s);
	json_decref(spec);
	accept_results(f, id, 3, who);
	/* what a scored round writes: amounts from its report */
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql),
			 "UPDATE payouts SET amount_wei = %s, round = 1,"
			 " report_hash = '0x%064d' WHERE contributor = '%s'",
			 amounts[i], 7, who[i]);
		exec_sql(f, sql);
	}
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	drain(f, w, 60);
	assert_int_equal(scalar(f, "SELECT count(*) FROM chain_txs WHERE kind"
				   " = 'release_scored' AND state ="
				   " 'confirmed'"),
			 1);
	assert_int_equal(cast_scored(f), 1);
	for (int i = 0; i < 3; i++) {
		char bal[128];

		cast_balance(bal, sizeof(bal), who[i]);
		assert_string_equal(bal, amounts[i]);
	}
	/* queued again (a lost confirmation): settled, not paid twice */
	exec_sql(f, "UPDATE payouts SET state = 'queued', chain_tx_id = NULL,"
		    " tx_hash = NULL");
	drain(f, w, 60);
	payout_worker_free(w);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed'"),
			 3);
	for (int i = 0; i < 3; i++) {
		char bal[128];

		cast_balance(bal, sizeof(bal), who[i]);
		assert_string_equal(bal, amounts[i]);
	}
	{
		char bal[128];

		/* the whole pool went out: this test's escrow holds nothing */
		cast_balance(bal, sizeof(bal), f->escrow);
		assert_string_equal(bal, "0");
	}
}

static void test_payout__survives_sigkill_of_validationd(void **state)
{
	struct fx *f = *state;
	enum { TASKS = 4, PER = 50, N = TASKS * PER };
	static char who[N][CHAIN_ADDR_HEX];
	char ids[TASKS][67], dir[] = "/tmp/fm_payout_XXXXXX", ks[512], pw[600];
	char env[6][700];
	const char *envp[7];
	struct svcproc v;
	struct ks_params light = KS_SCRYPT_LIGHT;
	static const char progress[] =
		"SELECT (SELECT count(*) FROM chain_txs) + (SELECT count(*)"
		" FROM payouts WHERE state = 'confirmed')";
	FILE *pf;
	int kills = 0;

	for (int t = 0; t < TASKS; t++) {
		open_task(f, ids[t], PER, 1);
		accept_results(f, ids[t], PER, who + PER * t);
	}
	/* half the tasks pay by contribution: amounts that differ, each
	 * with its report, released with releaseScored */
	for (int t = 1; t < TASKS; t += 2) {
		char q[400];

		snprintf(q, sizeof(q),
			 "UPDATE payouts SET amount_wei = amount_wei - 1000 *"
			 " (id %% 97), round = 1, report_hash = '0x%064d'"
			 " WHERE task_id = '%s'", t, ids[t]);
		exec_sql(f, q);
	}
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ks_save(ks, sizeof(ks), dir, &f->op, "correct horse",
				 &light),
			 FM_OK);
	snprintf(pw, sizeof(pw), "%s/password", dir);
	pf = fopen(pw, "w");
	assert_non_null(pf);
	fputs("correct horse\n", pf);
	fclose(pf);
	snprintf(env[0], sizeof(env[0]), "FEDMARKET_DATABASE_URL=%s", f->db.url);
	snprintf(env[1], sizeof(env[1]), "FEDMARKET_ESCROW_ADDRESS=%s",
		 f->escrow);
	snprintf(env[2], sizeof(env[2]), "FEDMARKET_OPERATOR_KEYSTORE=%s", ks);
	snprintf(env[3], sizeof(env[3]), "FEDMARKET_OPERATOR_PASSWORD_FILE=%s",
		 pw);
	snprintf(env[4], sizeof(env[4]), "FEDMARKET_PAYOUT_BATCH_SIZE=1");
	snprintf(env[5], sizeof(env[5]), "FEDMARKET_PAYOUT_POLL_MS=50");
	for (int i = 0; i < 6; i++)
		envp[i] = env[i];
	envp[6] = NULL;

	srand((unsigned)time(NULL));
	/* Kill it at random moments while it pays: each life is cut a random
	 * 0-120 ms after it has done something (signed a transaction or
	 * confirmed a payout), so every kill lands mid-payment whatever the
	 * machine's speed, and one payout per batch leaves enough work. */
	for (int round = 0; round < 40; round++) {
		long long seen = scalar(f, progress);

		assert_int_equal(svcfx_start(&v, "validationd", svcfx_port(20),
					     envp),
				 0);
		if (kills >= 12 ||
		    scalar(f, "SELECT count(*) FROM payouts WHERE state <>"
			      " 'confirmed'") == 0) {
			break;
		}
		for (int i = 0; i < 1000 && scalar(f, progress) == seen; i++)
			usleep(5000);
		usleep((useconds_t)(rand() % 120000));
		svcfx_kill(&v);
		kills++;
	}
	/* the last start finishes the job */
	for (int i = 0; i < 1200; i++) {
		if (scalar(f, "SELECT count(*) FROM payouts WHERE state <>"
			      " 'confirmed'") == 0)
			break;
		usleep(100000);
	}
	assert_int_equal(svcfx_stop(&v), 0);
	if (scalar(f, "SELECT count(*) FROM payouts WHERE state <> 'confirmed'"))
		dump_state(f);
	printf("# validationd was killed %d times while paying\n", kills);
	assert_true(kills >= 10);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed'"),
			 N);
	/* on chain: one Released per result, each contributor holding
	 * exactly its payout's amount */
	assert_int_equal(cast_released(f), N);
	assert_paid_amounts(f, who, N);
	assert_true(cast_scored(f) > 0);
	/* and the database agrees with the chain: each confirmed payout
	 * names a mined transaction of ours */
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts p WHERE"
				   " NOT EXISTS (SELECT 1 FROM chain_txs t"
				   " WHERE t.tx_hash = p.tx_hash AND t.state"
				   " = 'confirmed')"),
			 0);
	tenv_sh("rm -rf %s", dir);
}

static void test_payout__chain_stopped_then_back(void **state)
{
	struct fx *f = *state;
	char id[67], who[6][CHAIN_ADDR_HEX], pidfile[512], pid[32];
	struct payout_opts o = opts(f, 2, 120);
	struct payout_worker *w = NULL;
	struct payout_stats st = { 0 };
	int busy;

	open_task(f, id, 6, 1);
	accept_results(f, id, 6, who);
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	snprintf(pidfile, sizeof(pidfile), "%s/run/anvil.pid",
		 tenv_require("FM_VAR"));
	assert_int_equal(tenv_sh_out(pid, sizeof(pid), "cat %s", pidfile), 0);
	/* the node freezes for 30 s: rounds fail, nothing is lost */
	assert_int_equal(kill(atoi(pid), SIGSTOP), 0);
	time_t until = time(NULL) + 30;
	int failed_rounds = 0;
	while (time(NULL) < until) {
		if (payout_worker_step(w, &st, &busy) != FM_OK)
			failed_rounds++;
		sleep(1);
	}
	assert_int_equal(kill(atoi(pid), SIGCONT), 0);
	assert_true(failed_rounds >= 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed'"),
			 0);
	drain(f, w, 120);
	payout_worker_free(w);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed'"),
			 6);
	assert_paid_once(who, 6);
}

static void test_payout__stuck_transaction_is_replaced(void **state)
{
	struct fx *f = *state;
	char id[67], who[2][CHAIN_ADDR_HEX];
	struct payout_opts o = opts(f, 10, 1);
	struct payout_worker *w = NULL;
	struct payout_stats st = { 0 };
	int busy;

	open_task(f, id, 2, 1);
	accept_results(f, id, 2, who);
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	assert_int_equal(chainfx_rpc("evm_setAutomine", json_pack("[b]", 0)),
			 FM_OK);
	assert_int_equal(payout_worker_step(w, &st, &busy), FM_OK);
	assert_int_equal(st.broadcast, 1);
	sleep(2);
	memset(&st, 0, sizeof(st));
	assert_int_equal(payout_worker_step(w, &st, &busy), FM_OK);
	assert_int_equal(st.replaced, 1);
	assert_int_equal(chainfx_rpc("evm_setAutomine", json_pack("[b]", 1)),
			 FM_OK);
	assert_int_equal(chainfx_rpc("evm_mine", json_pack("[]")), FM_OK);
	drain(f, w, 60);
	payout_worker_free(w);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed'"),
			 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM chain_txs WHERE state"
				   " = 'confirmed'"),
			 1);
	assert_true(scalar(f, "SELECT count(*) FROM chain_txs WHERE state IN"
			      " ('replaced', 'dropped')") >= 1);
	assert_paid_once(who, 2);
}

static void test_payout__revert_is_reported_with_reason(void **state)
{
	struct fx *f = *state;
	char id[67], who[1][CHAIN_ADDR_HEX];
	struct payout_opts o = opts(f, 10, 60);
	struct payout_worker *w = NULL;
	json_t *list = NULL;

	/* accepted in the database, but never funded on chain */
	open_task(f, id, 1, 0);
	accept_results(f, id, 1, who);
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	drain(f, w, 60);
	payout_worker_free(w);
	assert_int_equal(market_payout_list(f->db.pool, &list, who[0], NULL),
			 FM_OK);
	json_t *p = json_array_get(json_object_get(list, "payouts"), 0);
	assert_string_equal(json_string_value(json_object_get(p, "state")),
			    "failed");
	assert_non_null(strstr(json_string_value(json_object_get(
				       p, "last_error")),
			       "no such task"));
	json_decref(list);
}

static void test_payout__refund_returns_the_rest_to_the_creator(void **state)
{
	struct fx *f = *state;
	char id[67], who[1][CHAIN_ADDR_HEX], before[128], after[128];
	struct payout_opts o = opts(f, 10, 60);
	struct payout_worker *w = NULL;
	json_t *t = NULL;
	struct db_conn *c = NULL;

	open_task(f, id, 3, 1);
	accept_results(f, id, 1, who);
	assert_int_equal(market_task_cancel(f->db.pool, &t, id,
					    f->creator_addr),
			 FM_OK);
	json_decref(t);
	cast_balance(before, sizeof(before), f->creator_addr);
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	drain(f, w, 60);
	/* one more round settles the refund sent in the last one */
	for (int i = 0; i < 50; i++) {
		struct payout_stats st = { 0 };
		int busy;

		assert_int_equal(payout_worker_step(w, &st, &busy), FM_OK);
		if (!busy)
			break;
		usleep(100000);
	}
	payout_worker_free(w);
	assert_paid_once(who, 1);
	assert_int_equal(db_acquire(f->db.pool, &c, 1000), FM_OK);
	PGresult *r = NULL;
	assert_int_equal(db_execp(c, &r,
				  "SELECT refund_state FROM tasks WHERE id = $1",
				  id),
			 FM_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "confirmed");
	PQclear(r);
	db_release(f->db.pool, c);
	cast_balance(after, sizeof(after), f->creator_addr);
	/* 2 unpaid rewards came back (the creator sent no transaction) */
	assert_true(strtod(after, NULL) - strtod(before, NULL) >
		    1.99e15);
}

/* A sync task of slots results per round over rounds rounds, funded on
 * chain for all of them; its id into id. */
static void open_rounds_task(struct fx *f, char id[67], int slots,
			     int rounds)
{
	json_t *spec = mfx_spec(slots);

	json_object_set_new(spec, "rounds", json_integer(rounds));
	assert_int_equal(chainfx_fund(&f->creator, f->escrow,
				      json_string_value(json_object_get(
					      spec, "task_id")),
				      f->op_addr,
				      (uint64_t)time(NULL) + 2 * 86400, REWARD,
				      (uint32_t)(slots * rounds)),
			 FM_OK);
	assert_int_equal(mfx_task_open_on(f->db.pool, id, f->creator_addr,
					  spec, f->op_addr, f->escrow),
			 0);
	json_decref(spec);
}

/* who takes a slot, submits and is decided on (accept or reject); the
 * result id into rid. */
static void one_result(struct fx *f, char rid[37], const char *id,
		       const char *who, int accept)
{
	json_t *a = NULL, *r = NULL, *d = NULL;
	struct market_result_in in = { 0 };
	struct market_decision_in dec = { 0 };
	char ref[SHA256_HEX_LEN + 1];

	assert_int_equal(market_assign(f->db.pool, &a, id, who), FM_OK);
	in.assignment_id = json_string_value(json_object_get(a, "id"));
	in.contributor = who;
	fm_sha256_hex(ref, in.assignment_id, strlen(in.assignment_id));
	in.bundle_ref = ref;
	assert_int_equal(market_result_submit(f->db.pool, &r, &in), FM_OK);
	snprintf(rid, 37, "%s", json_string_value(json_object_get(r, "id")));
	dec.result_id = rid;
	dec.validator = f->creator_addr;
	dec.accept = accept;
	dec.reason = "worse than the current version";
	assert_int_equal(market_decide(f->db.pool, &d, &dec), FM_OK);
	json_decref(a);
	json_decref(r);
	json_decref(d);
}

/* Publishes the next version of task id from n results. */
static void publish_round(struct fx *f, const char *id, char (*rids)[37],
			  int n)
{
	json_t *ids = json_array(), *out = NULL;

	for (int i = 0; i < n; i++)
		json_array_append_new(ids, json_string(rids[i]));
	if (market_model_publish(f->db.pool, &out, id, f->creator_addr,
				 "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
				 "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
				 "fedavg", NULL, ids))
		fail_msg("publish: %s", fm_error_msg());
	json_decref(ids);
	json_decref(out);
}

/* Line k (1-based) of cast's reading of the escrow's task id. */
static void cast_task_field(char *out, size_t n, struct fx *f,
			    const char *id, int k)
{
	assert_int_equal(tenv_sh_out(out, n,
				     "%s call --rpc-url %s %s 'tasks(bytes32)"
				     "(address,uint64,uint32,address,uint32,"
				     "uint8,uint256,uint256)' %s | sed -n "
				     "%dp | cut -d' ' -f1",
				     tenv_require("FM_CAST"),
				     tenv_require("FEDMARKET_RPC_URL"),
				     f->escrow, id, k),
			 0);
}

/* Three rounds of two results: round 1 pays two, round 2 one (the other
 * rejected), round 3 one (closed at its deadline). On chain: each
 * accepted result paid once, the two unpaid rewards back to the
 * creator, the escrow's task empty: payouts + refund = funding. */
static void test_payout__rounds_pay_and_refund_the_rest(void **state)
{
	struct fx *f = *state;
	char id[67], who[5][CHAIN_ADDR_HEX], rids[5][37], before[128];
	char after[128], field[128];
	struct payout_opts o = opts(f, 10, 60);
	struct payout_worker *w = NULL;
	struct db_conn *c = NULL;
	int n;

	open_rounds_task(f, id, 2, 3);
	for (int i = 0; i < 5; i++)
		mfx_address(who[i]);
	one_result(f, rids[0], id, who[0], 1);
	one_result(f, rids[1], id, who[1], 1);
	publish_round(f, id, rids, 2);
	one_result(f, rids[2], id, who[2], 1);
	one_result(f, rids[3], id, who[3], 0);
	publish_round(f, id, rids + 2, 1);
	one_result(f, rids[4], id, who[4], 1);
	/* round 3 reaches its deadline with one result of two */
	assert_int_equal(db_acquire(f->db.pool, &c, 1000), FM_OK);
	assert_int_equal(db_execp(c, NULL,
				  "UPDATE task_rounds SET deadline_at = now()"
				  " - interval '1 second' WHERE task_id = $1"
				  " AND round = 3",
				  id),
			 FM_OK);
	db_release(f->db.pool, c);
	assert_int_equal(market_sweep_rounds(f->db.pool, &n), FM_OK);
	assert_int_equal(n, 1);
	publish_round(f, id, rids + 4, 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM tasks WHERE state ="
				   " 'closed' AND end_reason = 'rounds_done'"
				   " AND refund_state = 'queued'"),
			 1);

	cast_balance(before, sizeof(before), f->creator_addr);
	assert_int_equal(payout_worker_new(&w, f->db.pool, &o), FM_OK);
	for (int i = 0; i < 600; i++) {
		struct payout_stats st = { 0 };
		int busy;

		assert_int_equal(payout_worker_step(w, &st, &busy), FM_OK);
		if (scalar(f, "SELECT count(*) FROM tasks WHERE refund_state"
			      " = 'confirmed' AND refund_tx IS NOT NULL") ==
		    1)
			break;
		usleep(100000);
	}
	payout_worker_free(w);
	if (scalar(f, "SELECT count(*) FROM tasks WHERE refund_state ="
		      " 'confirmed'") != 1)
		dump_state(f);
	assert_int_equal(scalar(f, "SELECT count(*) FROM tasks WHERE"
				   " refund_state = 'confirmed'"),
			 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM payouts WHERE state"
				   " = 'confirmed'"),
			 4);
	/* on chain, with cast: four Released, each paid once, nothing to
	 * the rejected contributor */
	assert_int_equal(cast_released(f), 4);
	assert_paid_once(who, 3);
	assert_paid_once(who + 4, 1);
	cast_balance(field, sizeof(field), who[3]);
	assert_string_equal(field, "0");
	cast_task_field(field, sizeof(field), f, id, 5);
	assert_string_equal(field, "4"); /* paidCount */
	cast_task_field(field, sizeof(field), f, id, 6);
	assert_string_equal(field, "3"); /* Cancelled */
	cast_task_field(field, sizeof(field), f, id, 8);
	assert_string_equal(field, "0"); /* balance */
	/* the creator got exactly the two unpaid rewards back (the
	 * operator sent the refund, the creator paid no gas) */
	cast_balance(after, sizeof(after), f->creator_addr);
	assert_int_equal(tenv_sh_out(field, sizeof(field),
				     "python3 -c 'print(%s - %s)'", after,
				     before),
			 0);
	assert_string_equal(field, "2000000000000000");
	/* payouts + refund = funding */
	assert_int_equal(scalar(f, "SELECT (funded_wei = 6 * 1000000000000000"
				   " AND funded_wei = (SELECT sum(amount_wei)"
				   " FROM payouts) + 2000000000000000)::int"
				   " FROM tasks"),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_payout__scored_amounts_paid_as_reported, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__pays_every_accepted_result_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__revert_is_reported_with_reason, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__refund_returns_the_rest_to_the_creator,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__rounds_pay_and_refund_the_rest, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__stuck_transaction_is_replaced, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__chain_stopped_then_back, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_payout__survives_sigkill_of_validationd, setup,
			teardown),
	};

	log_init("payout_test", LOG_WARN, 0);
	return cmocka_run_group_tests_name("payout", tests, NULL, NULL);
}
