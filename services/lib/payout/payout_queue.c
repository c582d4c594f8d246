/* The payout queue in PostgreSQL: payouts and the transactions that
 * carry them, their nonces, refunds, and the worker's advisory lock.
 * Every statement the worker runs is here; payout_chain.c decides from
 * the chain what to run. */
#include "payout/payout_int.h"

#include "chain/u256.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "fedpay" + 0: the advisory lock of a worker; the key's address is the
 * second key so two operators can pay side by side. */
#define PAYOUT_LOCK_CLASS "1717986918"

/* One statement on a pooled connection. */
static int run(struct payout_worker *w, PGresult **out, const char *sql,
	       int n, const char *const *params)
{
	struct db_conn *c = NULL;
	int err = db_acquire(w->db, &c, 10000);

	if (err)
		return err;
	err = db_exec(c, out, sql, n, params);
	db_release(w->db, c);
	return err;
}

/* ----------------------------------------------------------- the worker */

int payq_lock(struct payout_worker *w, int *have)
{
	PGresult *r = NULL;
	int err;

	*have = 0;
	if (w->lock_conn && PQstatus(db_conn_pg(w->lock_conn)) != CONNECTION_OK) {
		/* the session (and its lock) is gone */
		db_release(w->db, w->lock_conn);
		w->lock_conn = NULL;
		w->synced = 0;
	}
	if (w->lock_conn) {
		*have = 1;
		return FM_OK;
	}
	err = db_acquire(w->db, &w->lock_conn, 10000);
	if (err)
		return err;
	err = db_execp(w->lock_conn, &r,
		       "SELECT pg_try_advisory_lock(" PAYOUT_LOCK_CLASS
		       ", hashtext($1))",
		       w->from);
	if (err)
		goto done;
	if (db_bool(r, 0, "pg_try_advisory_lock")) {
		*have = 1;
		log_info("payout worker active for operator %s", w->from);
	}
done:
	PQclear(r);
	if (!*have) {
		db_release(w->db, w->lock_conn);
		w->lock_conn = NULL;
	}
	return err;
}

void payq_unlock(struct payout_worker *w)
{
	if (!w->lock_conn)
		return;
	db_execp(w->lock_conn, NULL,
		 "SELECT pg_advisory_unlock(" PAYOUT_LOCK_CLASS
		 ", hashtext($1))",
		 w->from);
	db_release(w->db, w->lock_conn);
	w->lock_conn = NULL;
}

int payq_sync_nonce(struct payout_worker *w, uint64_t pending)
{
	char n[24];

	snprintf(n, sizeof(n), "%llu", (unsigned long long)pending);
	/* transactions signed but never sent keep their nonces */
	return run(w, NULL,
		   "INSERT INTO chain_nonces (address, next_nonce) VALUES ($1,"
		   " $2::bigint) ON CONFLICT (address) DO UPDATE SET next_nonce"
		   " = GREATEST(chain_nonces.next_nonce, EXCLUDED.next_nonce),"
		   " synced_at = now()",
		   DB_ARGS(w->from, n));
}

int payq_busy(struct payout_worker *w, int *busy)
{
	PGresult *r = NULL;
	int err = run(w, &r,
		      "SELECT (SELECT count(*) FROM chain_txs WHERE from_address ="
		      " $1 AND state IN ('signed', 'broadcast', 'replaced')) +"
		      " (SELECT count(*) FROM payouts WHERE state = 'queued') AS n",
		      DB_ARGS(w->from));

	if (err)
		return err;
	*busy = db_int(r, 0, "n", 0) > 0;
	PQclear(r);
	return FM_OK;
}

/* -------------------------------------------------------------- signing */

struct store_arg {
	struct payout_worker *w;
	const struct payout_store *a;
};

/* The next nonce of the operator's account, taken in the transaction. */
static int take_nonce(struct db_conn *c, struct payout_worker *w,
		      struct chain_tx *tx)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "UPDATE chain_nonces SET next_nonce = next_nonce"
		       " + 1 WHERE address = $1 RETURNING next_nonce"
		       " - 1 AS n",
		       w->from);
	if (err)
		return err;
	if (PQntuples(r) != 1)
		err = fm_error_set(FM_EINTERNAL, "no nonce row for %s",
				   w->from);
	else
		tx->nonce = (uint64_t)db_int(r, 0, "n", 0);
	PQclear(r);
	return err;
}

/* The transaction being replaced leaves the broadcast state, unless it
 * left it already (mined meanwhile). */
static int retire_replaced(struct db_conn *c, const char *id)
{
	int err = db_execp(c, NULL,
			   "UPDATE chain_txs SET state = 'replaced',"
			   " updated_at = now() WHERE id = $1::bigint AND"
			   " state = 'broadcast'",
			   id);

	if (err)
		return err;
	if (db_last_rows(c) != 1)
		return fm_error_set(FM_ECONFLICT,
				    "transaction %s is no longer pending", id);
	return FM_OK;
}

/* Inserts the signed transaction (raw: "\x" and hex) and gives its row
 * id (24 bytes). */
static int insert_tx(struct db_conn *c, char *id, struct payout_worker *w,
		     const struct payout_store *a, const char *raw,
		     const char *hash)
{
	const struct chain_tx *tx = a->tx;
	char nonce[24], maxfee[80], prio[80], gas[24];
	PGresult *r = NULL;
	int err;

	snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)tx->nonce);
	chain_u256_to_dec(maxfee, sizeof(maxfee), &tx->max_fee);
	chain_u256_to_dec(prio, sizeof(prio), &tx->max_priority_fee);
	snprintf(gas, sizeof(gas), "%llu", (unsigned long long)tx->gas_limit);
	err = db_execp(c, &r,
		       "INSERT INTO chain_txs (from_address, nonce, kind, task_id,"
		       " raw_tx, tx_hash, max_fee_per_gas,"
		       " max_priority_fee_per_gas, gas_limit, replaces)"
		       " VALUES ($1, $2::bigint, $3, nullif($4, ''), $5::bytea,"
		       " $6, $7::numeric, $8::numeric, $9::bigint,"
		       " $10::bigint) RETURNING id",
		       w->from, nonce, a->kind, a->task_id ? a->task_id : "",
		       raw, hash, maxfee, prio, gas, a->replaces);
	if (err)
		return err;
	snprintf(id, 24, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return FM_OK;
}

/* What the stored transaction pays: the payouts of the one it replaces,
 * the queued payouts of the batch, or the task's refund. */
static int link_tx(struct db_conn *c, const struct payout_store *a,
		   const char *id, const char *hash)
{
	int err;

	if (a->replaces)
		return db_execp(c, NULL,
				"UPDATE payouts SET chain_tx_id = $2::bigint,"
				" tx_hash = $3, state = 'signed', updated_at ="
				" now() WHERE chain_tx_id = $1::bigint AND state"
				" IN ('signed', 'broadcast')",
				a->replaces, id, hash);
	if (a->payout_ids) {
		err = db_execp(c, NULL,
			       "UPDATE payouts SET state = 'signed',"
			       " chain_tx_id = $2::bigint, tx_hash = $3,"
			       " updated_at = now() WHERE id ="
			       " ANY($1::bigint[]) AND state = 'queued'",
			       a->payout_ids, id, hash);
		if (err)
			return err;
		if ((size_t)db_last_rows(c) != a->n_payouts)
			return fm_error_set(FM_ECONFLICT,
					    "payouts changed while signing");
		return FM_OK;
	}
	if (!strcmp(a->kind, "cancel"))
		return db_execp(c, NULL,
				"UPDATE tasks SET refund_state = 'broadcast',"
				" updated_at = now() WHERE id = $1",
				a->task_id);
	return FM_OK;
}

static int store_fn(struct db_conn *c, void *arg)
{
	struct store_arg *s = arg;
	struct payout_worker *w = s->w;
	const struct payout_store *a = s->a;
	struct buf raw = BUF_INIT(CHAIN_TX_DATA_MAX * 2);
	struct buf rawhex = BUF_INIT(CHAIN_TX_DATA_MAX * 4 + 8);
	uint8_t hash[32];
	char hash_hex[67] = "0x", id[24];
	int err;

	if (!a->replaces) {
		err = take_nonce(c, w, a->tx);
		if (err)
			goto done;
	}
	err = chain_tx_sign(&raw, hash, a->tx, w->o.key->priv);
	if (err)
		goto done;
	hex_encode(hash_hex + 2, hash, 32);
	err = buf_reserve(&rawhex, raw.len * 2 + 3);
	if (err)
		goto done;
	memcpy(rawhex.data, "\\x", 2);
	hex_encode(rawhex.data + 2, (const uint8_t *)raw.data, raw.len);
	if (a->replaces) {
		err = retire_replaced(c, a->replaces);
		if (err)
			goto done;
	}
	err = insert_tx(c, id, w, a, rawhex.data, hash_hex);
	if (err)
		goto done;
	err = link_tx(c, a, id, hash_hex);
done:
	buf_cleanup(&raw);
	buf_cleanup(&rawhex);
	return err;
}

int payq_store(struct payout_worker *w, const struct payout_store *a)
{
	struct store_arg s = { w, a };

	return db_tx(w->db, DB_READ_COMMITTED, store_fn, NULL, &s);
}

/* --------------------------------------------------------- transactions */

int payq_signed_txs(struct payout_worker *w, PGresult **out)
{
	return run(w, out,
		   "SELECT id, encode(raw_tx, 'hex') AS raw FROM chain_txs"
		   " WHERE from_address = $1 AND state = 'signed'"
		   " ORDER BY nonce, id",
		   DB_ARGS(w->from));
}

int payq_tx_refused(struct payout_worker *w, const char *id, const char *why)
{
	return run(w, NULL,
		   "UPDATE chain_txs SET error = $2, updated_at = now()"
		   " WHERE id = $1::bigint",
		   DB_ARGS(id, why));
}

int payq_tx_broadcast(struct payout_worker *w, const char *id)
{
	return run(w, NULL,
		   "WITH t AS (UPDATE chain_txs SET state = 'broadcast',"
		   " broadcast_at = now(), attempts = attempts + 1,"
		   " updated_at = now() WHERE id = $1::bigint AND state"
		   " = 'signed' RETURNING id)"
		   " UPDATE payouts SET state = 'broadcast', updated_at ="
		   " now() WHERE chain_tx_id IN (SELECT id FROM t) AND"
		   " state = 'signed'",
		   DB_ARGS(id));
}

int payq_stuck_txs(struct payout_worker *w, uint64_t mined_count,
		   PGresult **out)
{
	char lim[24], timeout[24];

	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)mined_count);
	snprintf(timeout, sizeof(timeout), "%ld", w->o.stuck_timeout_s);
	return run(w, out,
		   "SELECT id, kind, coalesce(task_id, '') AS task_id,"
		   " encode(raw_tx, 'hex') AS raw FROM chain_txs"
		   " WHERE from_address = $1 AND state = 'broadcast' AND nonce"
		   " >= $2::bigint AND broadcast_at < now() - make_interval(secs"
		   " => $3::int) ORDER BY nonce LIMIT 16",
		   DB_ARGS(w->from, lim, timeout));
}

int payq_unsettled_nonces(struct payout_worker *w, uint64_t mined_count,
			  PGresult **out)
{
	char lim[24];

	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)mined_count);
	return run(w, out,
		   "SELECT DISTINCT nonce FROM chain_txs WHERE from_address = $1"
		   " AND state IN ('signed', 'broadcast', 'replaced') AND nonce <"
		   " $2::bigint ORDER BY nonce LIMIT 64",
		   DB_ARGS(w->from, lim));
}

int payq_txs_of_nonce(struct payout_worker *w, const char *nonce,
		      PGresult **out)
{
	return run(w, out,
		   "SELECT id, tx_hash, kind, coalesce(task_id, '') AS task_id"
		   " FROM chain_txs WHERE from_address = $1 AND nonce ="
		   " $2::bigint AND state IN ('signed', 'broadcast', 'replaced')"
		   " ORDER BY id",
		   DB_ARGS(w->from, nonce));
}

int payq_txs_mined(struct payout_worker *w, const char *ids,
		   const char *mined_id, int success, uint64_t block,
		   uint64_t gas_used)
{
	char b[24], gas[24];

	snprintf(b, sizeof(b), "%llu", (unsigned long long)block);
	snprintf(gas, sizeof(gas), "%llu", (unsigned long long)gas_used);
	return run(w, NULL,
		   "UPDATE chain_txs SET state = CASE WHEN id = $2::bigint"
		   " THEN $3 ELSE 'dropped' END, block_number = CASE WHEN"
		   " id = $2::bigint THEN $4::bigint END, gas_used = CASE"
		   " WHEN id = $2::bigint THEN $5::bigint END,"
		   " updated_at = now() WHERE id = ANY($1::bigint[])",
		   DB_ARGS(ids, mined_id, success ? "confirmed" : "reverted", b,
			   gas));
}

int payq_txs_dropped(struct payout_worker *w, const char *ids)
{
	return run(w, NULL,
		   "UPDATE chain_txs SET state = 'dropped', updated_at ="
		   " now() WHERE id = ANY($1::bigint[])",
		   DB_ARGS(ids));
}

int payq_tx_payout_count(struct payout_worker *w, const char *id,
			 long long *n)
{
	PGresult *r = NULL;
	int err = run(w, &r,
		      "SELECT greatest(count(*), 1) FROM payouts"
		      " WHERE chain_tx_id = $1::bigint",
		      DB_ARGS(id));

	if (err)
		return err;
	*n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return FM_OK;
}

/* -------------------------------------------------------------- payouts */

int payq_payouts_of_txs(struct payout_worker *w, const char *ids,
			PGresult **out)
{
	return run(w, out,
		   "SELECT id, result_id::text AS rid, attempts FROM payouts"
		   " WHERE chain_tx_id = ANY($1::bigint[]) AND state IN"
		   " ('signed', 'broadcast')",
		   DB_ARGS(ids));
}

int payq_payout_confirmed(struct payout_worker *w, const char *pid,
			  const char *tx, uint64_t block, long long per_gas,
			  const char *mined_hash)
{
	char b[24], gas[24];

	snprintf(b, sizeof(b), "%llu", (unsigned long long)block);
	snprintf(gas, sizeof(gas), "%lld", per_gas);
	return run(w, NULL,
		   "UPDATE payouts SET state = 'confirmed', tx_hash ="
		   " $2::text, block_number = $3::bigint, gas_used = CASE"
		   " WHEN $2::text = $5::text THEN $4::bigint END,"
		   " confirmed_at = now(),"
		   " updated_at = now(), last_error = NULL"
		   " WHERE id = $1::bigint AND state IN"
		   " ('queued', 'signed', 'broadcast')",
		   DB_ARGS(pid, tx, b, gas, mined_hash ? mined_hash : ""));
}

int payq_payout_retry(struct payout_worker *w, const char *pid,
		      int attempts, const char *why)
{
	char att[16], maxa[16];

	snprintf(att, sizeof(att), "%d", attempts);
	snprintf(maxa, sizeof(maxa), "%d", w->o.max_attempts);
	return run(w, NULL,
		   "UPDATE payouts SET state = CASE WHEN $2::int >= $4::int THEN"
		   " 'failed' ELSE 'queued' END, attempts = $2::int,"
		   " tx_hash = NULL, last_error = $3, next_attempt_at = now() +"
		   " make_interval(secs => least(300, 2 ^ $2::int)),"
		   " updated_at = now() WHERE id = $1::bigint AND state IN"
		   " ('signed', 'broadcast')",
		   DB_ARGS(pid, att, why, maxa));
}

int payq_payouts_fail(struct payout_worker *w, const char *ids,
		      const char *reason)
{
	return run(w, NULL,
		   "UPDATE payouts SET state = 'failed', last_error = $2,"
		   " updated_at = now() WHERE id = ANY($1::bigint[]) AND"
		   " state = 'queued'",
		   DB_ARGS(ids, reason));
}

int payq_due_tasks(struct payout_worker *w, PGresult **out)
{
	return run(w, out,
		   "SELECT p.task_id FROM payouts p JOIN tasks t ON t.id ="
		   " p.task_id WHERE p.state = 'queued' AND"
		   " p.next_attempt_at <= now() AND t.escrow_address = $1"
		   " GROUP BY p.task_id ORDER BY min(p.id) LIMIT 16",
		   DB_ARGS(w->escrow_hex));
}

int payq_due_payouts(struct payout_worker *w, const char *task_id,
		     PGresult **out)
{
	char lim[16];

	snprintf(lim, sizeof(lim), "%d", w->o.batch_size);
	return run(w, out,
		   /* scored payouts go out with their report: one report's
		    * at a time */
		   "WITH due AS (SELECT * FROM payouts WHERE task_id = $1"
		   " AND state = 'queued' AND next_attempt_at <= now())"
		   " SELECT id, result_id::text AS rid, contributor,"
		   " amount_wei::text AS amount, round, report_hash FROM due"
		   " WHERE report_hash IS NOT DISTINCT FROM (SELECT"
		   " report_hash FROM due ORDER BY id LIMIT 1)"
		   " ORDER BY id LIMIT $2::int",
		   DB_ARGS(task_id, lim));
}

/* -------------------------------------------------------------- refunds */

int payq_refundable_tasks(struct payout_worker *w, PGresult **out)
{
	return run(w, out,
		   "SELECT t.id FROM tasks t WHERE t.refund_state = 'queued'"
		   " AND t.state IN ('expired', 'cancelled', 'closed') AND"
		   " t.escrow_address = $1 AND t.operator = $2"
		   " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.task_id"
		   "  = t.id AND p.state IN ('queued', 'signed', 'broadcast'))"
		   " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE"
		   "  a.task_id = t.id AND a.state IN ('active', 'submitted'))"
		   " ORDER BY t.updated_at LIMIT 16",
		   DB_ARGS(w->escrow_hex, w->from));
}

int payq_refund_state(struct payout_worker *w, const char *task_id,
		      const char *state)
{
	return run(w, NULL,
		   "UPDATE tasks SET refund_state = $2, updated_at = now()"
		   " WHERE id = $1",
		   DB_ARGS(task_id, state));
}

int payq_refund_mined(struct payout_worker *w, const char *task_id,
		      int success, const char *tx_hash)
{
	return run(w, NULL,
		   "UPDATE tasks SET refund_state = $2, refund_tx = $3,"
		   " updated_at = now() WHERE id = $1",
		   DB_ARGS(task_id, success ? "confirmed" : "failed", tx_hash));
}

int payq_refunds_requeue(struct payout_worker *w, const char *ids)
{
	return run(w, NULL,
		   "UPDATE tasks SET refund_state = 'queued', updated_at = now()"
		   " WHERE refund_state = 'broadcast' AND id IN (SELECT task_id"
		   " FROM chain_txs WHERE id = ANY($1::bigint[]) AND kind ="
		   " 'cancel')",
		   DB_ARGS(ids));
}
