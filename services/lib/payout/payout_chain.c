/* The payout worker's chain work: broadcasting what is signed, settling
 * nonces from the chain's own record, replacing stuck transactions,
 * building release batches and refunds. The queue it moves along is in
 * payout_queue.c. */
#include "payout/payout_int.h"

#include "chain/escrow.h"
#include "chain/u256.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- broadcast */

/* Sends stored transaction id (raw bytes in hex) and marks it
 * broadcast. A refusal (e.g. "nonce too low") is noted and the
 * transaction marked all the same: settling decides what the chain did
 * with its nonce. */
static int broadcast_one(struct payout_worker *w, struct payout_stats *st,
			 const char *id, const char *hex)
{
	size_t n = strlen(hex) / 2;
	uint8_t *raw = malloc(n ? n : 1), hash[32];
	int sent, err;

	if (!raw)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = hex_decode(raw, n, hex);
	if (err == FM_OK)
		err = chain_rpc_send_raw(w->rpc, hash, raw, n);
	free(raw);
	if (err == FM_EUNAVAIL)
		return err;
	sent = err == FM_OK;
	if (!sent) {
		log_warn("broadcast of transaction %s: %s", id,
			 fm_error_msg());
		payq_tx_refused(w, id, fm_error_msg());
	}
	err = payq_tx_broadcast(w, id);
	if (err)
		return err;
	if (sent)
		st->broadcast++;
	return FM_OK;
}

int payout_broadcast_signed(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	int err = payq_signed_txs(w, &r);

	for (int i = 0; !err && i < PQntuples(r); i++)
		err = broadcast_one(w, st, db_str(r, i, "id", ""),
				    db_str(r, i, "raw", ""));
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

	if (err)
		return err;
	tx_out[0] = '0';
	tx_out[1] = 'x';
	hex_encode(tx_out + 2, h, 32);
	return FM_OK;
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
	char tx[67];
	uint64_t b = 0;
	int paid = 0, err;

	err = payout_result_id(rid, rid_text);
	if (err)
		return err;
	err = escrow_is_paid(w->rpc, &paid, w->escrow, rid);
	if (err)
		return err;
	if (paid) {
		err = released_event(w, rid, tx, &b);
		if (err)
			return err;
		err = payq_payout_confirmed(w, pid, tx, b, per_gas, mined_hash);
		if (err)
			return err;
		st->confirmed++;
		return FM_OK;
	}
	/* the nonce went by without paying this result: queue it again
	 * (the escrow would refuse a double payment anyway) */
	err = payq_payout_retry(w, pid, attempts + 1, why);
	if (err)
		return err;
	if (attempts + 1 >= w->o.max_attempts)
		st->failed++;
	else
		st->requeued++;
	return FM_OK;
}

/* Settles the payouts carried by the transactions ids (one nonce's
 * group). */
static int reconcile_payouts(struct payout_worker *w, struct payout_stats *st,
			     const char *ids, const char *mined_hash,
			     long long per_gas, const char *why)
{
	PGresult *r = NULL;
	int err = payq_payouts_of_txs(w, ids, &r);

	for (int i = 0; !err && i < PQntuples(r); i++)
		err = settle_payout(w, st, db_str(r, i, "id", ""),
				    db_str(r, i, "rid", ""),
				    (int)db_int(r, i, "attempts", 0),
				    mined_hash, per_gas, why);
	PQclear(r);
	return err;
}

/* The transactions of one nonce and which of them the chain mined. */
struct mined {
	struct buf ids; /* "{1,2}": every transaction of the nonce */
	int found;      /* one of them was mined: the fields below */
	char id[24];
	char hash[67];
	char kind[24];
	char task_id[67];
	struct chain_receipt rc;
};

/* Looks for the receipt of transaction i of r; the first one found is
 * the nonce's. */
static int find_receipt(struct payout_worker *w, struct mined *m,
			const PGresult *r, int i)
{
	uint8_t h[32];
	int err;

	err = hex_decode(h, 32, db_str(r, i, "tx_hash", ""));
	if (err)
		return err;
	err = chain_rpc_receipt(w->rpc, &m->rc, h);
	if (err == FM_ENOTFOUND)
		return FM_OK;
	if (err)
		return err;
	m->found = 1;
	snprintf(m->id, sizeof(m->id), "%s", db_str(r, i, "id", ""));
	snprintf(m->hash, sizeof(m->hash), "%s", db_str(r, i, "tx_hash", ""));
	snprintf(m->kind, sizeof(m->kind), "%s", db_str(r, i, "kind", ""));
	snprintf(m->task_id, sizeof(m->task_id), "%s",
		 db_str(r, i, "task_id", ""));
	return FM_OK;
}

/* Which of our transactions took the nonce, if any, and the ids of all
 * of them. */
static int find_mined(struct payout_worker *w, struct mined *m,
		      const char *nonce)
{
	PGresult *r = NULL;
	int err;

	err = payq_txs_of_nonce(w, nonce, &r);
	if (err)
		return err;
	err = buf_appends(&m->ids, "{");
	for (int i = 0; !err && i < PQntuples(r); i++) {
		err = buf_appendf(&m->ids, "%s%s", i ? "," : "",
				  db_str(r, i, "id", ""));
		if (err || m->found)
			continue;
		err = find_receipt(w, m, r, i);
	}
	PQclear(r);
	if (err)
		return err;
	return buf_appends(&m->ids, "}");
}

/* The payouts of the nonce's transactions, settled from the chain: by
 * the mined transaction (sharing its gas) or, when none was mined, put
 * back; a refund that never made it is queued again too. */
static int settle_payouts_of(struct payout_worker *w, struct payout_stats *st,
			     const struct mined *m)
{
	long long per_gas = 0, n = 1;
	const char *why;
	int err;

	if (!m->found) {
		err = payq_refunds_requeue(w, m->ids.data);
		if (err)
			return err;
		return reconcile_payouts(w, st, m->ids.data, NULL, 0,
					 "transaction was not mined");
	}
	/* a batch's gas, shared by the payouts it carried */
	err = payq_tx_payout_count(w, m->id, &n);
	if (err)
		return err;
	per_gas = (long long)m->rc.gas_used / n;
	why = m->rc.status ? "the release did not pay this result"
			   : "transaction reverted on chain";
	return reconcile_payouts(w, st, m->ids.data, m->hash, per_gas, why);
}

/* Settles one nonce below the chain's count: which of our transactions
 * took it (if any), then its payouts or refund, then the transactions'
 * own state: a crash in between leaves the nonce to be settled again,
 * which is harmless. *wait is set while the mined transaction lacks
 * confirmations. */
static int settle_nonce(struct payout_worker *w, struct payout_stats *st,
			const char *nonce, uint64_t head, int *wait)
{
	struct mined m;
	int err;

	memset(&m, 0, sizeof(m));
	buf_init(&m.ids, 1 << 20);
	*wait = 0;
	err = find_mined(w, &m, nonce);
	if (err)
		goto done;
	if (m.found &&
	    m.rc.block_number + (uint64_t)w->o.confirmations - 1 > head) {
		*wait = 1;
		goto done;
	}
	if (m.found && !strcmp(m.kind, "cancel"))
		err = payq_refund_mined(w, m.task_id, m.rc.status, m.hash);
	else
		err = settle_payouts_of(w, st, &m);
	if (err)
		goto done;
	if (m.found)
		err = payq_txs_mined(w, m.ids.data, m.id, m.rc.status,
				     m.rc.block_number, m.rc.gas_used);
	else
		err = payq_txs_dropped(w, m.ids.data);
done:
	chain_receipt_cleanup(&m.rc);
	buf_cleanup(&m.ids);
	return err;
}

int payout_settle(struct payout_worker *w, struct payout_stats *st)
{
	uint64_t mined_count, head;
	PGresult *r = NULL;
	int err;

	err = chain_rpc_nonce(w->rpc, &mined_count, w->o.key->addr, "latest");
	if (err)
		return err;
	err = chain_rpc_block_number(w->rpc, &head);
	if (err)
		return err;
	err = payq_unsettled_nonces(w, mined_count, &r);
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

/* Fees of the moment and a gas limit a quarter above the estimate.
 * FM_ECONFLICT when the transaction would revert. */
static int price_tx(struct payout_worker *w, struct chain_tx *tx)
{
	uint64_t gas = 0;
	int err = set_fees(w, tx, NULL, NULL);

	if (err)
		return err;
	err = chain_rpc_estimate_gas(w->rpc, &gas, w->o.key->addr, tx);
	if (err)
		return err;
	tx->gas_limit = gas + gas / 4;
	return FM_OK;
}

/* The pending transaction (hex) again, outbidding itself: nodes want
 * 10% more on both fees, and what the market asks now if that is more. */
static int outbid(struct payout_worker *w, struct chain_tx *tx,
		  const char *hex)
{
	size_t n = strlen(hex) / 2;
	uint8_t *raw = malloc(n ? n : 1), from[CHAIN_ADDR_LEN];
	struct chain_u256 fmax, fprio;
	int err;

	if (!raw)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = hex_decode(raw, n, hex);
	if (err)
		goto done;
	err = chain_tx_decode(tx, from, raw, n);
	if (err)
		goto done;
	err = chain_tx_bump_fees(tx, 13);
	if (err)
		goto done;
	fmax = tx->max_fee;
	fprio = tx->max_priority_fee;
	err = set_fees(w, tx, &fmax, &fprio);
done:
	free(raw);
	return err;
}

/* Replaces stuck transaction i of r (same nonce, higher fees). */
static int replace_one(struct payout_worker *w, struct payout_stats *st,
		       const PGresult *r, int i)
{
	struct chain_tx tx;
	struct payout_store a = { &tx, db_str(r, i, "kind", ""),
				  db_str(r, i, "task_id", ""), NULL, 0,
				  db_str(r, i, "id", "") };
	int err;

	chain_tx_init(&tx);
	err = outbid(w, &tx, db_str(r, i, "raw", ""));
	if (err)
		goto done;
	err = payq_store(w, &a);
	if (err)
		goto done;
	st->replaced++;
	log_info("replaced stuck transaction %s (nonce %llu)", a.replaces,
		 (unsigned long long)tx.nonce);
done:
	chain_tx_cleanup(&tx);
	return err == FM_ECONFLICT ? FM_OK : err; /* mined meanwhile */
}

int payout_replace_stuck(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	uint64_t mined_count;
	int err = chain_rpc_nonce(w->rpc, &mined_count, w->o.key->addr,
				  "latest");

	if (err)
		return err;
	err = payq_stuck_txs(w, mined_count, &r);
	for (int i = 0; !err && i < PQntuples(r); i++)
		err = replace_one(w, st, r, i);
	PQclear(r);
	return err;
}

/* Gives up payouts the escrow refuses for good, with its reason. */
static int fail_payouts(struct payout_worker *w, struct payout_stats *st,
			const char *ids, size_t n, const char *reason)
{
	int err = payq_payouts_fail(w, ids, reason);

	if (err)
		return err;
	st->failed += (int)n;
	log_warn("payouts %s failed: %s", ids, reason);
	return FM_OK;
}

/* The scored release of rows r (one report's payouts, amounts as
 * stored). */
static int scored_tx(struct payout_worker *w, struct chain_tx *tx,
		     const uint8_t tid[32], const PGresult *r,
		     const uint8_t (*rids)[32],
		     const uint8_t (*to)[CHAIN_ADDR_LEN])
{
	size_t n = (size_t)PQntuples(r);
	struct chain_u256 *amounts = calloc(n, sizeof(*amounts));
	uint8_t report[32];
	int err;

	if (!amounts)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = hex_decode(report, 32, db_str(r, 0, "report_hash", "") + 2);
	for (size_t i = 0; !err && i < n; i++)
		err = chain_u256_parse(&amounts[i],
				       db_str(r, (int)i, "amount", ""),
				       "payout amount");
	if (!err)
		err = escrow_release_scored_tx(
			tx, w->escrow, tid,
			(uint32_t)db_int(r, 0, "round", 0), report, rids, to,
			amounts, n);
	free(amounts);
	return err;
}

/* One task's due payouts (rows of r) as a release, releaseBatch or (for
 * scored payouts) releaseScored transaction, priced; ids gets their ids
 * ("{1,2}"). FM_ECONFLICT when the escrow would revert it. */
static int batch_tx(struct payout_worker *w, struct chain_tx *tx,
		    struct buf *ids, const uint8_t tid[32], const PGresult *r)
{
	size_t n = (size_t)PQntuples(r);
	uint8_t (*rids)[32] = NULL, (*to)[CHAIN_ADDR_LEN] = NULL;
	int err;

	rids = calloc(n, sizeof(*rids));
	to = calloc(n, sizeof(*to));
	if (!rids || !to) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = buf_appends(ids, "{");
	for (size_t i = 0; !err && i < n; i++) {
		err = payout_result_id(rids[i], db_str(r, (int)i, "rid", ""));
		if (err)
			break;
		err = chain_address_parse(to[i],
					  db_str(r, (int)i, "contributor", ""),
					  "contributor");
		if (err)
			break;
		err = buf_appendf(ids, "%s%s", i ? "," : "",
				  db_str(r, (int)i, "id", ""));
	}
	if (err)
		goto done;
	err = buf_appends(ids, "}");
	if (err)
		goto done;
	if (db_str(r, 0, "report_hash", NULL))
		err = scored_tx(w, tx, tid, r, (const uint8_t(*)[32])rids,
				(const uint8_t(*)[20])to);
	else if (n == 1)
		err = escrow_release_tx(tx, w->escrow, tid, rids[0], to[0]);
	else
		err = escrow_release_batch_tx(tx, w->escrow, tid,
					      (const uint8_t(*)[32])rids,
					      (const uint8_t(*)[20])to, n);
	if (err)
		goto done;
	err = price_tx(w, tx);
done:
	free(rids);
	free(to);
	return err;
}

/* The escrow would revert the batch (r's rows, ids): "already paid" is a
 * success to reconcile, anything else a reason to give up. */
static int batch_refused(struct payout_worker *w, struct payout_stats *st,
			 const PGresult *r, const char *ids)
{
	size_t n = (size_t)PQntuples(r);
	char reason[FM_ERR_MSG_MAX];

	snprintf(reason, sizeof(reason), "%s", fm_error_msg());
	if (n == 1 && strstr(reason, "already paid"))
		return settle_payout(w, st, db_str(r, 0, "id", ""),
				     db_str(r, 0, "rid", ""), 0, NULL, 0,
				     reason);
	return fail_payouts(w, st, ids, n, reason);
}

static int sign_task_batch(struct payout_worker *w, struct payout_stats *st,
			   const char *task_id)
{
	PGresult *r = NULL;
	struct chain_tx tx;
	struct buf ids = BUF_INIT(1 << 20);
	uint8_t tid[32];
	size_t n;
	int err;

	chain_tx_init(&tx);
	err = hex_decode(tid, 32, task_id);
	if (err)
		goto done;
	err = payq_due_payouts(w, task_id, &r);
	if (err)
		goto done;
	n = (size_t)PQntuples(r);
	if (n == 0)
		goto done;
	err = batch_tx(w, &tx, &ids, tid, r);
	if (err == FM_ECONFLICT) {
		err = batch_refused(w, st, r, ids.data);
		goto done;
	}
	if (err)
		goto done;
	{
		const char *kind = db_str(r, 0, "report_hash", NULL)
					   ? "release_scored"
				   : n == 1 ? "release"
					    : "release_batch";
		struct payout_store a = { &tx, kind, task_id, ids.data, n,
					  NULL };

		err = payq_store(w, &a);
	}
done:
	PQclear(r);
	buf_cleanup(&ids);
	chain_tx_cleanup(&tx);
	return err;
}

int payout_sign_batches(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	int err = payq_due_tasks(w, &r);

	for (int i = 0; !err && i < PQntuples(r); i++)
		err = sign_task_batch(w, st, db_str(r, i, "task_id", ""));
	PQclear(r);
	return err;
}

/* ----------------------------------------------------------------- refunds */

/* The cancel transaction of task tid, priced; *held is 0 when the
 * escrow holds nothing of the task any more (the creator may have
 * refunded after the deadline). FM_ECONFLICT when the escrow refuses. */
static int refund_tx(struct payout_worker *w, struct chain_tx *tx,
		     const uint8_t tid[32], int *held)
{
	struct escrow_task et;
	int err;

	*held = 1;
	err = escrow_get_task(w->rpc, &et, w->escrow, tid);
	if (err == FM_ENOTFOUND || (err == FM_OK && et.state != ESCROW_OPEN)) {
		*held = 0;
		return FM_OK;
	}
	if (err)
		return err;
	err = escrow_cancel_tx(tx, w->escrow, tid);
	if (err)
		return err;
	return price_tx(w, tx);
}

/* Cancels task_id on chain, returning the unpaid rest to its creator. */
static int refund_task(struct payout_worker *w, struct payout_stats *st,
		       const char *task_id)
{
	struct chain_tx tx;
	struct payout_store a = { &tx, "cancel", task_id, NULL, 0, NULL };
	uint8_t tid[32];
	int held = 1, err;

	chain_tx_init(&tx);
	err = hex_decode(tid, 32, task_id);
	if (err)
		goto done;
	err = refund_tx(w, &tx, tid, &held);
	if (err == FM_ECONFLICT) {
		err = payq_refund_state(w, task_id, "failed");
		log_warn("refund of task %s refused: %s", task_id,
			 fm_error_msg());
		goto done;
	}
	if (err)
		goto done;
	if (!held) {
		err = payq_refund_state(w, task_id, "confirmed");
		goto done;
	}
	err = payq_store(w, &a);
	if (err)
		goto done;
	st->refunds++;
done:
	chain_tx_cleanup(&tx);
	return err;
}

/* Expired, cancelled and ended tasks whose every slot is settled: the
 * operator cancels them on chain, which returns the unpaid rest to the
 * creator. */
int payout_refunds(struct payout_worker *w, struct payout_stats *st)
{
	PGresult *r = NULL;
	int err = payq_refundable_tasks(w, &r);

	for (int i = 0; !err && i < PQntuples(r); i++)
		err = refund_task(w, st, db_str(r, i, "id", ""));
	PQclear(r);
	return err;
}
