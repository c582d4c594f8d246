#include "payout/payout.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "chain/tx.h"
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
#define SETTLE_NONCES_MAX 64
#define TASKS_PER_ROUND 16

struct payout_worker {
	struct db_pool *db;
	struct db_conn *lock_conn; /* holds the advisory lock */
	struct chain_rpc *rpc;
	struct payout_opts o;
	uint8_t escrow[CHAIN_ADDR_LEN];
	char from[CHAIN_ADDR_HEX];   /* lowercase */
	char escrow_hex[CHAIN_ADDR_HEX];
	int synced;
};

int payout_result_id(uint8_t out[32], const char *uuid)
{
	char hex[33];
	size_t k = 0;

	for (const char *p = uuid; *p && k < 32; p++)
		if (*p != '-')
			hex[k++] = *p;
	hex[k] = '\0';
	memset(out, 0, 16);
	if (strlen(uuid) != 36 || hex_decode(out + 16, 16, hex))
		return fm_error_set(FM_EINVAL, "result id %s: expected a UUID",
				    uuid);
	return FM_OK;
}

static void lower_hex_addr(char out[CHAIN_ADDR_HEX],
			   const uint8_t a[CHAIN_ADDR_LEN])
{
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, a, CHAIN_ADDR_LEN);
}

int payout_worker_new(struct payout_worker **out, struct db_pool *db,
		      const struct payout_opts *o)
{
	struct payout_worker *w;
	int err;

	if (o->batch_size < 1 || o->batch_size > ESCROW_BATCH_MAX ||
	    o->confirmations < 1 || o->max_attempts < 1)
		return fm_error_set(FM_EINVAL,
				    "payout worker: batch size, confirmations "
				    "and attempts must be positive");
	w = calloc(1, sizeof(*w));
	if (!w)
		return fm_error_set(FM_ENOMEM, "out of memory");
	w->db = db;
	w->o = *o;
	err = chain_address_parse(w->escrow, o->escrow, "escrow_address");
	if (!err)
		err = chain_rpc_new(&w->rpc, o->rpc_url, NULL);
	if (err) {
		payout_worker_free(w);
		return err;
	}
	lower_hex_addr(w->from, o->key->addr);
	lower_hex_addr(w->escrow_hex, w->escrow);
	*out = w;
	return FM_OK;
}

void payout_worker_free(struct payout_worker *w)
{
	if (!w)
		return;
	if (w->lock_conn) {
		db_execp(w->lock_conn, NULL,
			 "SELECT pg_advisory_unlock(" PAYOUT_LOCK_CLASS
			 ", hashtext($1))",
			 w->from);
		db_release(w->db, w->lock_conn);
	}
	chain_rpc_free(w->rpc);
	free(w);
}

/* --------------------------------------------------------------- helpers */

/* One statement on a pooled connection. */
static int q(struct payout_worker *w, PGresult **out, const char *sql,
	     int n, const char *const *params)
{
	struct db_conn *c = NULL;
	int err = db_acquire(w->db, &c, 10000);

	if (!err)
		err = db_exec(c, out, sql, n, params);
	db_release(w->db, c);
	return err;
}

#define qp(w, out, sql, ...) \
	q((w), (out), (sql), \
	  (int)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *)), \
	  (const char *const[]){ __VA_ARGS__ })

static int ensure_lock(struct payout_worker *w, int *have)
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
	if (!err && db_bool(r, 0, "pg_try_advisory_lock")) {
		*have = 1;
		log_info("payout worker active for operator %s", w->from);
	}
	PQclear(r);
	if (!*have) {
		db_release(w->db, w->lock_conn);
		w->lock_conn = NULL;
	}
	return err;
}

static int sync_nonce(struct payout_worker *w)
{
	uint64_t pending;
	char n[24];
	int err = chain_rpc_nonce(w->rpc, &pending, w->o.key->addr, "pending");

	if (err)
		return err;
	snprintf(n, sizeof(n), "%llu", (unsigned long long)pending);
	/* transactions signed but never sent keep their nonces */
	return qp(w, NULL,
		  "INSERT INTO chain_nonces (address, next_nonce) VALUES ($1,"
		  " $2::bigint) ON CONFLICT (address) DO UPDATE SET next_nonce"
		  " = GREATEST(chain_nonces.next_nonce, EXCLUDED.next_nonce),"
		  " synced_at = now()",
		  w->from, n);
}

static void u256_dec(char out[80], const struct chain_u256 *v)
{
	chain_u256_to_dec(out, 80, v);
}

/* ------------------------------------------------------------- broadcast */

static int broadcast_signed(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	int err = qp(w, &r,
		     "SELECT id, encode(raw_tx, 'hex') AS raw FROM chain_txs"
		     " WHERE from_address = $1 AND state = 'signed'"
		     " ORDER BY nonce, id",
		     w->from);

	for (int i = 0; !err && i < PQntuples(r); i++) {
		const char *id = db_str(r, i, "id", "");
		const char *hex = db_str(r, i, "raw", "");
		size_t n = strlen(hex) / 2;
		uint8_t *raw = malloc(n ? n : 1), hash[32];
		int sent;

		if (!raw) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			break;
		}
		err = hex_decode(raw, n, hex);
		if (!err)
			err = chain_rpc_send_raw(w->rpc, hash, raw, n);
		free(raw);
		sent = err == FM_OK;
		if (err == FM_EUNAVAIL)
			break;
		if (err) {
			/* e.g. "nonce too low": settling decides what the
			 * chain did with this nonce */
			log_warn("broadcast of transaction %s: %s", id,
				 fm_error_msg());
			qp(w, NULL,
			   "UPDATE chain_txs SET error = $2, updated_at = now()"
			   " WHERE id = $1::bigint",
			   id, fm_error_msg());
			err = FM_OK;
		}
		err = qp(w, NULL,
			 "WITH t AS (UPDATE chain_txs SET state = 'broadcast',"
			 " broadcast_at = now(), attempts = attempts + 1,"
			 " updated_at = now() WHERE id = $1::bigint AND state"
			 " = 'signed' RETURNING id)"
			 " UPDATE payouts SET state = 'broadcast', updated_at ="
			 " now() WHERE chain_tx_id IN (SELECT id FROM t) AND"
			 " state = 'signed'",
			 id);
		if (!err && sent)
			st->broadcast++;
	}
	PQclear(r);
	return err;
}

/* ---------------------------------------------------------------- settle */

/* Finds the Released event of result_id: its transaction and block. */
static int released_event(struct payout_worker *w, const uint8_t rid[32],
			  char tx_out[67], uint64_t *block_out)
{
	uint8_t h[32];
	int err = escrow_find_event(w->rpc, h, block_out, w->escrow,
				    ESCROW_EV_RELEASED, NULL, rid);

	if (!err) {
		tx_out[0] = '0';
		tx_out[1] = 'x';
		hex_encode(tx_out + 2, h, 32);
	}
	return err;
}

/* Settles one payout from the chain's own record: confirmed when the
 * escrow paid its result (with the paying transaction from the Released
 * event), otherwise queued again, or failed after max_attempts. */
static int settle_payout(struct payout_worker *w, struct payout_stats *st,
			 const char *pid, const char *rid_text, int attempts,
			 const char *mined_hash, long long per_gas,
			 const char *why)
{
	uint8_t rid[32];
	char tx[67], block[24], gas[24], att[16], maxa[16];
	uint64_t b = 0;
	int paid = 0, err;

	err = payout_result_id(rid, rid_text);
	if (!err)
		err = escrow_is_paid(w->rpc, &paid, w->escrow, rid);
	if (err)
		return err;
	if (paid) {
		err = released_event(w, rid, tx, &b);
		if (err)
			return err;
		snprintf(block, sizeof(block), "%llu", (unsigned long long)b);
		snprintf(gas, sizeof(gas), "%lld", per_gas);
		err = qp(w, NULL,
			 "UPDATE payouts SET state = 'confirmed', tx_hash ="
			 " $2::text, block_number = $3::bigint, gas_used = CASE"
			 " WHEN $2::text = $5::text THEN $4::bigint END,"
			 " confirmed_at = now(),"
			 " updated_at = now(), last_error = NULL"
			 " WHERE id = $1::bigint AND state IN"
			 " ('queued', 'signed', 'broadcast')",
			 pid, tx, block, gas, mined_hash ? mined_hash : "");
		if (!err)
			st->confirmed++;
		return err;
	}
	/* the nonce went by without paying this result: queue it again
	 * (the escrow would refuse a double payment anyway) */
	snprintf(att, sizeof(att), "%d", attempts + 1);
	snprintf(maxa, sizeof(maxa), "%d", w->o.max_attempts);
	err = qp(w, NULL,
		 "UPDATE payouts SET state = CASE WHEN $2::int >= $4::int THEN"
		 " 'failed' ELSE 'queued' END, attempts = $2::int,"
		 " tx_hash = NULL, last_error = $3, next_attempt_at = now() +"
		 " make_interval(secs => least(300, 2 ^ $2::int)),"
		 " updated_at = now() WHERE id = $1::bigint AND state IN"
		 " ('signed', 'broadcast')",
		 pid, att, why, maxa);
	if (!err) {
		if (attempts + 1 >= w->o.max_attempts)
			st->failed++;
		else
			st->requeued++;
	}
	return err;
}

/* Settles the payouts carried by the transactions ids (one nonce's
 * group). */
static int reconcile_payouts(struct payout_worker *w, struct payout_stats *st,
			     const char *ids, const char *mined_hash,
			     long long per_gas, const char *why)
{
	PGresult *r = NULL;
	int err = qp(w, &r,
		     "SELECT id, result_id::text AS rid, attempts FROM payouts"
		     " WHERE chain_tx_id = ANY($1::bigint[]) AND state IN"
		     " ('signed', 'broadcast')",
		     ids);

	for (int i = 0; !err && i < PQntuples(r); i++)
		err = settle_payout(w, st, db_str(r, i, "id", ""),
				    db_str(r, i, "rid", ""),
				    (int)db_int(r, i, "attempts", 0),
				    mined_hash, per_gas, why);
	PQclear(r);
	return err;
}

struct mined {
	int found;
	char id[24];
	char hash[67];
	char kind[24];
	char task_id[67];
	struct chain_receipt rc;
};

/* Settles one nonce below the chain's count: which of our transactions
 * took it (if any), then its payouts or refund. *wait is set while the
 * mined transaction lacks confirmations. */
static int settle_nonce(struct payout_worker *w, struct payout_stats *st,
			const char *nonce, uint64_t head, int *wait)
{
	PGresult *r = NULL;
	struct mined m;
	struct buf ids = BUF_INIT(1 << 20);
	char block[24], gas[24];
	long long per_gas = 0;
	int err, n;

	memset(&m, 0, sizeof(m));
	*wait = 0;
	err = qp(w, &r,
		 "SELECT id, tx_hash, kind, coalesce(task_id, '') AS task_id"
		 " FROM chain_txs WHERE from_address = $1 AND nonce ="
		 " $2::bigint AND state IN ('signed', 'broadcast', 'replaced')"
		 " ORDER BY id",
		 w->from, nonce);
	if (err)
		return err;
	n = PQntuples(r);
	err = buf_appends(&ids, "{");
	for (int i = 0; !err && i < n; i++) {
		uint8_t h[32];

		err = buf_appendf(&ids, "%s%s", i ? "," : "",
				  db_str(r, i, "id", ""));
		if (err || m.found)
			continue;
		err = hex_decode(h, 32, db_str(r, i, "tx_hash", ""));
		if (err)
			break;
		err = chain_rpc_receipt(w->rpc, &m.rc, h);
		if (err == FM_ENOTFOUND) {
			err = FM_OK;
			continue;
		}
		if (err)
			break;
		m.found = 1;
		snprintf(m.id, sizeof(m.id), "%s", db_str(r, i, "id", ""));
		snprintf(m.hash, sizeof(m.hash), "%s",
			 db_str(r, i, "tx_hash", ""));
		snprintf(m.kind, sizeof(m.kind), "%s", db_str(r, i, "kind", ""));
		snprintf(m.task_id, sizeof(m.task_id), "%s",
			 db_str(r, i, "task_id", ""));
	}
	PQclear(r);
	if (!err)
		err = buf_appends(&ids, "}");
	if (err)
		goto done;
	if (m.found && m.rc.block_number + (uint64_t)w->o.confirmations - 1 >
			       head) {
		*wait = 1;
		goto done;
	}
	/* what the transactions paid first, their own state last: a crash
	 * in between leaves the nonce to be settled again, which is
	 * harmless */
	if (m.found && !strcmp(m.kind, "cancel")) {
		err = qp(w, NULL,
			 "UPDATE tasks SET refund_state = $2, refund_tx = $3,"
			 " updated_at = now() WHERE id = $1",
			 m.task_id, m.rc.status ? "confirmed" : "failed",
			 m.hash);
		goto mark;
	}
	/* a refund that never made it is tried again */
	err = qp(w, NULL,
		 "UPDATE tasks SET refund_state = 'queued', updated_at = now()"
		 " WHERE refund_state = 'broadcast' AND id IN (SELECT task_id"
		 " FROM chain_txs WHERE id = ANY($1::bigint[]) AND kind ="
		 " 'cancel') AND $2 = 'no'",
		 ids.data, m.found ? "yes" : "no");
	if (err)
		goto done;
	if (m.found) {
		/* a batch's gas, shared by the payouts it carried */
		PGresult *c = NULL;

		err = qp(w, &c,
			 "SELECT greatest(count(*), 1) FROM payouts"
			 " WHERE chain_tx_id = $1::bigint",
			 m.id);
		if (err)
			goto done;
		per_gas = (long long)m.rc.gas_used /
			  strtoll(PQgetvalue(c, 0, 0), NULL, 10);
		PQclear(c);
	}
	err = reconcile_payouts(w, st, ids.data, m.found ? m.hash : NULL,
				per_gas,
				!m.found ? "transaction was not mined"
				: m.rc.status ? "the release did not pay this "
						"result"
					      : "transaction reverted on chain");
mark:
	if (err)
		goto done;
	if (m.found) {
		snprintf(block, sizeof(block), "%llu",
			 (unsigned long long)m.rc.block_number);
		snprintf(gas, sizeof(gas), "%llu",
			 (unsigned long long)m.rc.gas_used);
		err = qp(w, NULL,
			 "UPDATE chain_txs SET state = CASE WHEN id = $2::bigint"
			 " THEN $3 ELSE 'dropped' END, block_number = CASE WHEN"
			 " id = $2::bigint THEN $4::bigint END, gas_used = CASE"
			 " WHEN id = $2::bigint THEN $5::bigint END,"
			 " updated_at = now() WHERE id = ANY($1::bigint[])",
			 ids.data, m.id, m.rc.status ? "confirmed" : "reverted",
			 block, gas);
	} else {
		err = qp(w, NULL,
			 "UPDATE chain_txs SET state = 'dropped', updated_at ="
			 " now() WHERE id = ANY($1::bigint[])",
			 ids.data);
	}
done:
	chain_receipt_cleanup(&m.rc);
	buf_cleanup(&ids);
	return err;
}

static int settle(struct payout_worker *w, struct payout_stats *st)
{
	uint64_t mined_count, head;
	PGresult *r = NULL;
	char lim[24];
	int err;

	err = chain_rpc_nonce(w->rpc, &mined_count, w->o.key->addr, "latest");
	if (!err)
		err = chain_rpc_block_number(w->rpc, &head);
	if (err)
		return err;
	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)mined_count);
	err = qp(w, &r,
		 "SELECT DISTINCT nonce FROM chain_txs WHERE from_address = $1"
		 " AND state IN ('signed', 'broadcast', 'replaced') AND nonce <"
		 " $2::bigint ORDER BY nonce LIMIT " "64",
		 w->from, lim);
	for (int i = 0; !err && i < PQntuples(r); i++) {
		int wait = 0;

		err = settle_nonce(w, st, db_str(r, i, "nonce", ""), head,
				   &wait);
		if (wait)
			break; /* later nonces are younger still */
	}
	PQclear(r);
	return err;
}

/* ---------------------------------------------------------------- signing */

/* Signs tx with the next nonce and stores it (state "signed") with what
 * it pays, in one transaction: the raw bytes exist before any broadcast. */
struct store_arg {
	struct payout_worker *w;
	struct chain_tx *tx;
	const char *kind;
	const char *task_id;
	const char *payout_ids; /* "{1,2}" or NULL */
	size_t n_payouts;
	const char *replaces;   /* chain_txs id or NULL */
};

static int store_fn(struct db_conn *c, void *arg)
{
	struct store_arg *a = arg;
	struct payout_worker *w = a->w;
	PGresult *r = NULL;
	struct buf raw = BUF_INIT(CHAIN_TX_DATA_MAX * 2);
	struct buf rawhex = BUF_INIT(CHAIN_TX_DATA_MAX * 4 + 8);
	uint8_t hash[32];
	char hash_hex[67] = "0x", nonce[24], maxfee[80], prio[80], gas[24];
	char *id = NULL;
	int err;

	if (!a->replaces) {
		err = db_execp(c, &r,
			       "UPDATE chain_nonces SET next_nonce = next_nonce"
			       " + 1 WHERE address = $1 RETURNING next_nonce"
			       " - 1 AS n",
			       w->from);
		if (err)
			goto done;
		if (PQntuples(r) != 1) {
			err = fm_error_set(FM_EINTERNAL,
					   "no nonce row for %s", w->from);
			goto done;
		}
		a->tx->nonce = (uint64_t)db_int(r, 0, "n", 0);
		PQclear(r);
		r = NULL;
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
	snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)a->tx->nonce);
	u256_dec(maxfee, &a->tx->max_fee);
	u256_dec(prio, &a->tx->max_priority_fee);
	snprintf(gas, sizeof(gas), "%llu", (unsigned long long)a->tx->gas_limit);
	if (a->replaces) {
		err = db_execp(c, NULL,
			       "UPDATE chain_txs SET state = 'replaced',"
			       " updated_at = now() WHERE id = $1::bigint AND"
			       " state = 'broadcast'",
			       a->replaces);
		if (!err && db_last_rows(c) != 1)
			err = fm_error_set(FM_ECONFLICT,
					   "transaction %s is no longer pending",
					   a->replaces);
		if (err)
			goto done;
	}
	err = db_execp(c, &r,
		       "INSERT INTO chain_txs (from_address, nonce, kind, task_id,"
		       " raw_tx, tx_hash, max_fee_per_gas,"
		       " max_priority_fee_per_gas, gas_limit, replaces)"
		       " VALUES ($1, $2::bigint, $3, nullif($4, ''), $5::bytea,"
		       " $6, $7::numeric, $8::numeric, $9::bigint,"
		       " $10::bigint) RETURNING id",
		       w->from, nonce, a->kind, a->task_id ? a->task_id : "",
		       rawhex.data, hash_hex, maxfee, prio, gas, a->replaces);
	if (err)
		goto done;
	id = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	r = NULL;
	if (!id) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	if (a->replaces) {
		err = db_execp(c, NULL,
			       "UPDATE payouts SET chain_tx_id = $2::bigint,"
			       " tx_hash = $3, state = 'signed', updated_at ="
			       " now() WHERE chain_tx_id = $1::bigint AND state"
			       " IN ('signed', 'broadcast')",
			       a->replaces, id, hash_hex);
	} else if (a->payout_ids) {
		err = db_execp(c, NULL,
			       "UPDATE payouts SET state = 'signed',"
			       " chain_tx_id = $2::bigint, tx_hash = $3,"
			       " updated_at = now() WHERE id ="
			       " ANY($1::bigint[]) AND state = 'queued'",
			       a->payout_ids, id, hash_hex);
		if (!err && (size_t)db_last_rows(c) != a->n_payouts)
			err = fm_error_set(FM_ECONFLICT,
					   "payouts changed while signing");
	} else if (!strcmp(a->kind, "cancel")) {
		err = db_execp(c, NULL,
			       "UPDATE tasks SET refund_state = 'broadcast',"
			       " updated_at = now() WHERE id = $1",
			       a->task_id);
	}
done:
	PQclear(r);
	free(id);
	buf_cleanup(&raw);
	buf_cleanup(&rawhex);
	return err;
}

/* Fees of the moment, never below floor (a replacement must outbid). */
static int set_fees(struct payout_worker *w, struct chain_tx *tx,
		    const struct chain_u256 *floor_max,
		    const struct chain_u256 *floor_prio)
{
	struct chain_fees f;
	int err = chain_rpc_fees(w->rpc, &f);

	if (err)
		return err;
	tx->type = CHAIN_TX_EIP1559;
	tx->chain_id = w->o.chain_id;
	tx->max_fee = f.max_fee;
	tx->max_priority_fee = f.priority_fee;
	if (floor_max && chain_u256_cmp(&tx->max_fee, floor_max) < 0)
		tx->max_fee = *floor_max;
	if (floor_prio && chain_u256_cmp(&tx->max_priority_fee, floor_prio) < 0)
		tx->max_priority_fee = *floor_prio;
	if (chain_u256_cmp(&tx->max_priority_fee, &tx->max_fee) > 0)
		tx->max_fee = tx->max_priority_fee;
	return FM_OK;
}

static int replace_stuck(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	uint64_t mined_count;
	char lim[24], timeout[24];
	int err = chain_rpc_nonce(w->rpc, &mined_count, w->o.key->addr,
				  "latest");

	if (err)
		return err;
	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)mined_count);
	snprintf(timeout, sizeof(timeout), "%ld", w->o.stuck_timeout_s);
	err = qp(w, &r,
		 "SELECT id, kind, coalesce(task_id, '') AS task_id,"
		 " encode(raw_tx, 'hex') AS raw FROM chain_txs"
		 " WHERE from_address = $1 AND state = 'broadcast' AND nonce"
		 " >= $2::bigint AND broadcast_at < now() - make_interval(secs"
		 " => $3::int) ORDER BY nonce LIMIT 16",
		 w->from, lim, timeout);
	for (int i = 0; !err && i < PQntuples(r); i++) {
		const char *hex = db_str(r, i, "raw", "");
		size_t n = strlen(hex) / 2;
		uint8_t *raw = malloc(n ? n : 1), from[CHAIN_ADDR_LEN];
		struct chain_tx tx;
		struct chain_u256 fmax, fprio;
		struct store_arg a = { w, &tx, db_str(r, i, "kind", ""),
				       db_str(r, i, "task_id", ""), NULL, 0,
				       db_str(r, i, "id", "") };

		chain_tx_init(&tx);
		if (!raw)
			err = fm_error_set(FM_ENOMEM, "out of memory");
		if (!err)
			err = hex_decode(raw, n, hex);
		if (!err)
			err = chain_tx_decode(&tx, from, raw, n);
		free(raw);
		/* outbid the pending one (nodes want 10% on both fees),
		 * and pay what the market asks now if that is more */
		if (!err)
			err = chain_tx_bump_fees(&tx, 13);
		fmax = tx.max_fee;
		fprio = tx.max_priority_fee;
		if (!err)
			err = set_fees(w, &tx, &fmax, &fprio);
		if (!err)
			err = db_tx(w->db, DB_READ_COMMITTED, store_fn, NULL, &a);
		if (err == FM_ECONFLICT) /* mined meanwhile */
			err = FM_OK;
		else if (!err) {
			st->replaced++;
			log_info("replaced stuck transaction %s (nonce %llu)",
				 a.replaces, (unsigned long long)tx.nonce);
		}
		chain_tx_cleanup(&tx);
	}
	PQclear(r);
	return err;
}

/* Gives up payouts the escrow refuses for good, with its reason. */
static int fail_payouts(struct payout_worker *w, struct payout_stats *st,
			const char *ids, size_t n, const char *reason)
{
	int err = qp(w, NULL,
		     "UPDATE payouts SET state = 'failed', last_error = $2,"
		     " updated_at = now() WHERE id = ANY($1::bigint[]) AND"
		     " state = 'queued'",
		     ids, reason);

	if (!err) {
		st->failed += (int)n;
		log_warn("payouts %s failed: %s", ids, reason);
	}
	return err;
}

static int sign_task_batch(struct payout_worker *w, struct payout_stats *st,
			   const char *task_id)
{
	PGresult *r = NULL;
	struct chain_tx tx;
	struct buf ids = BUF_INIT(1 << 20);
	uint8_t tid[32], (*rids)[32] = NULL, (*to)[CHAIN_ADDR_LEN] = NULL;
	char lim[16];
	size_t n = 0;
	uint64_t gas = 0;
	int err;

	chain_tx_init(&tx);
	snprintf(lim, sizeof(lim), "%d", w->o.batch_size);
	err = hex_decode(tid, 32, task_id);
	if (!err)
		err = qp(w, &r,
			 "SELECT id, result_id::text AS rid, contributor FROM"
			 " payouts WHERE task_id = $1 AND state = 'queued' AND"
			 " next_attempt_at <= now() ORDER BY id LIMIT $2::int",
			 task_id, lim);
	if (err)
		goto done;
	n = (size_t)PQntuples(r);
	if (n == 0)
		goto done;
	rids = calloc(n, sizeof(*rids));
	to = calloc(n, sizeof(*to));
	if (!rids || !to) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = buf_appends(&ids, "{");
	for (size_t i = 0; !err && i < n; i++) {
		err = payout_result_id(rids[i], db_str(r, (int)i, "rid", ""));
		if (!err)
			err = chain_address_parse(to[i],
						  db_str(r, (int)i,
							 "contributor", ""),
						  "contributor");
		if (!err)
			err = buf_appendf(&ids, "%s%s", i ? "," : "",
					  db_str(r, (int)i, "id", ""));
	}
	if (!err)
		err = buf_appends(&ids, "}");
	if (err)
		goto done;
	err = n == 1 ? escrow_release_tx(&tx, w->escrow, tid, rids[0], to[0])
		     : escrow_release_batch_tx(&tx, w->escrow, tid,
					       (const uint8_t(*)[32])rids,
					       (const uint8_t(*)[20])to, n);
	if (!err)
		err = set_fees(w, &tx, NULL, NULL);
	if (!err)
		err = chain_rpc_estimate_gas(w->rpc, &gas, w->o.key->addr, &tx);
	if (err == FM_ECONFLICT) {
		/* the escrow would revert: "already paid" is a success to
		 * reconcile, anything else a reason to give up */
		char reason[FM_ERR_MSG_MAX];

		snprintf(reason, sizeof(reason), "%s", fm_error_msg());
		if (n == 1 && strstr(reason, "already paid"))
			err = settle_payout(w, st, db_str(r, 0, "id", ""),
					    db_str(r, 0, "rid", ""), 0, NULL, 0,
					    reason);
		else
			err = fail_payouts(w, st, ids.data, n, reason);
		goto done;
	}
	if (err)
		goto done;
	tx.gas_limit = gas + gas / 4;
	{
		struct store_arg a = { w, &tx, n == 1 ? "release"
						      : "release_batch",
				       task_id, ids.data, n, NULL };

		err = db_tx(w->db, DB_READ_COMMITTED, store_fn, NULL, &a);
	}
done:
	PQclear(r);
	free(rids);
	free(to);
	buf_cleanup(&ids);
	chain_tx_cleanup(&tx);
	return err;
}

static int sign_batches(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	int err = qp(w, &r,
		     "SELECT p.task_id FROM payouts p JOIN tasks t ON t.id ="
		     " p.task_id WHERE p.state = 'queued' AND"
		     " p.next_attempt_at <= now() AND t.escrow_address = $1"
		     " GROUP BY p.task_id ORDER BY min(p.id) LIMIT 16",
		     w->escrow_hex);

	for (int i = 0; !err && i < PQntuples(r); i++)
		err = sign_task_batch(w, st, db_str(r, i, "task_id", ""));
	PQclear(r);
	return err;
}

/* ----------------------------------------------------------------- refunds */

/* Expired and cancelled tasks whose every slot is settled: the operator
 * cancels them on chain, which returns the unpaid rest to the creator. */
static int refunds(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	int err = qp(w, &r,
		     "SELECT t.id FROM tasks t WHERE t.refund_state = 'queued'"
		     " AND t.state IN ('expired', 'cancelled') AND"
		     " t.escrow_address = $1 AND t.operator = $2"
		     " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.task_id"
		     "  = t.id AND p.state IN ('queued', 'signed', 'broadcast'))"
		     " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE"
		     "  a.task_id = t.id AND a.state IN ('active', 'submitted'))"
		     " ORDER BY t.updated_at LIMIT 16",
		     w->escrow_hex, w->from);

	for (int i = 0; !err && i < PQntuples(r); i++) {
		const char *task_id = db_str(r, i, "id", "");
		struct escrow_task et;
		struct chain_tx tx;
		uint8_t tid[32];
		uint64_t gas = 0;

		chain_tx_init(&tx);
		err = hex_decode(tid, 32, task_id);
		if (!err)
			err = escrow_get_task(w->rpc, &et, w->escrow, tid);
		if (err == FM_ENOTFOUND || (!err && et.state != ESCROW_OPEN)) {
			/* nothing held on chain any more (the creator may
			 * have refunded after the deadline) */
			err = qp(w, NULL,
				 "UPDATE tasks SET refund_state = 'confirmed',"
				 " updated_at = now() WHERE id = $1",
				 task_id);
			chain_tx_cleanup(&tx);
			continue;
		}
		if (!err)
			err = escrow_cancel_tx(&tx, w->escrow, tid);
		if (!err)
			err = set_fees(w, &tx, NULL, NULL);
		if (!err)
			err = chain_rpc_estimate_gas(w->rpc, &gas,
						     w->o.key->addr, &tx);
		if (err == FM_ECONFLICT) {
			err = qp(w, NULL,
				 "UPDATE tasks SET refund_state = 'failed',"
				 " updated_at = now() WHERE id = $1",
				 task_id);
			log_warn("refund of task %s refused: %s", task_id,
				 fm_error_msg());
		} else if (!err) {
			struct store_arg a = { w, &tx, "cancel", task_id, NULL,
					       0, NULL };

			tx.gas_limit = gas + gas / 4;
			err = db_tx(w->db, DB_READ_COMMITTED, store_fn, NULL, &a);
			if (!err)
				st->refunds++;
		}
		chain_tx_cleanup(&tx);
	}
	PQclear(r);
	return err;
}

/* ------------------------------------------------------------------ round */

int payout_worker_step(struct payout_worker *w, struct payout_stats *st,
		       int *busy)
{
	PGresult *r = NULL;
	int have = 0, err;

	*busy = 0;
	err = ensure_lock(w, &have);
	if (err || !have)
		return err;
	if (!w->synced) {
		err = sync_nonce(w);
		if (err)
			return err;
		w->synced = 1;
	}
	err = broadcast_signed(w, st);
	if (!err)
		err = settle(w, st);
	if (!err)
		err = replace_stuck(w, st);
	if (!err)
		err = sign_batches(w, st);
	if (!err)
		err = refunds(w, st);
	if (!err)
		err = broadcast_signed(w, st);
	if (err)
		return err;
	err = qp(w, &r,
		 "SELECT (SELECT count(*) FROM chain_txs WHERE from_address ="
		 " $1 AND state IN ('signed', 'broadcast', 'replaced')) +"
		 " (SELECT count(*) FROM payouts WHERE state = 'queued') AS n",
		 w->from);
	if (!err)
		*busy = db_int(r, 0, "n", 0) > 0;
	PQclear(r);
	return err;
}
