/* What the payout worker's files share: the worker, and the queue in
 * PostgreSQL (payout_queue.c) that the chain work (payout_chain.c) reads
 * and moves along. Private to services/lib/payout. */
#ifndef FM_PAYOUT_PAYOUT_INT_H
#define FM_PAYOUT_PAYOUT_INT_H

#include "chain/rpc.h"
#include "chain/tx.h"
#include "payout/payout.h"

#include <stddef.h>
#include <stdint.h>

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

/* ---- payout_chain.c: one step each of the worker's round */
int payout_broadcast_signed(struct payout_worker *w, struct payout_stats *st);
int payout_settle(struct payout_worker *w, struct payout_stats *st);
int payout_replace_stuck(struct payout_worker *w, struct payout_stats *st);
int payout_sign_batches(struct payout_worker *w, struct payout_stats *st);
int payout_refunds(struct payout_worker *w, struct payout_stats *st);

/* ---- payout_queue.c. Queries hand back their rows (the caller
 * PQclears them) with the columns each one names. */

/* The advisory lock of this operator's worker, on a connection kept for
 * it: *have is 1 while this worker holds it. */
int payq_lock(struct payout_worker *w, int *have);
void payq_unlock(struct payout_worker *w);
/* The next nonce to sign with, at least pending (the chain's count). */
int payq_sync_nonce(struct payout_worker *w, uint64_t pending);
/* Whether anything is in flight or queued. */
int payq_busy(struct payout_worker *w, int *busy);

/* A transaction to sign with the next nonce (or the nonce of the one it
 * replaces) and store as "signed", with what it pays, in one database
 * transaction: the raw bytes exist before any broadcast. FM_ECONFLICT
 * when the payouts or the replaced transaction moved meanwhile. */
struct payout_store {
	struct chain_tx *tx;    /* its nonce is set when allocated */
	const char *kind;       /* release, release_batch or cancel */
	const char *task_id;
	const char *payout_ids; /* "{1,2}" or NULL */
	size_t n_payouts;
	const char *replaces;   /* chain_txs id or NULL */
};
int payq_store(struct payout_worker *w, const struct payout_store *a);

/* Signed transactions, oldest nonce first: id, raw (hex). */
int payq_signed_txs(struct payout_worker *w, PGresult **out);
/* Notes why the node refused transaction id. */
int payq_tx_refused(struct payout_worker *w, const char *id,
		    const char *why);
/* signed -> broadcast, the transaction and its payouts. */
int payq_tx_broadcast(struct payout_worker *w, const char *id);
/* Broadcast transactions older than the stuck timeout whose nonce the
 * chain has not mined (nonce >= mined_count): id, kind, task_id, raw. */
int payq_stuck_txs(struct payout_worker *w, uint64_t mined_count,
		   PGresult **out);

/* Nonces below mined_count with transactions to settle: nonce. */
int payq_unsettled_nonces(struct payout_worker *w, uint64_t mined_count,
			  PGresult **out);
/* The transactions of one nonce: id, tx_hash, kind, task_id. */
int payq_txs_of_nonce(struct payout_worker *w, const char *nonce,
		      PGresult **out);
/* The nonce's transactions (ids "{1,2}") are settled: the one mined
 * (mined_id) is confirmed or reverted, the others dropped. */
int payq_txs_mined(struct payout_worker *w, const char *ids,
		   const char *mined_id, int success, uint64_t block,
		   uint64_t gas_used);
/* None of the nonce's transactions was mined: all dropped. */
int payq_txs_dropped(struct payout_worker *w, const char *ids);
/* How many payouts transaction id carried (at least 1). */
int payq_tx_payout_count(struct payout_worker *w, const char *id,
			 long long *n);

/* Payouts in flight on transactions ids: id, rid, attempts. */
int payq_payouts_of_txs(struct payout_worker *w, const char *ids,
			PGresult **out);
/* The escrow paid payout pid's result in transaction tx at block; the
 * gas share is recorded when tx is mined_hash (the transaction this
 * worker sent). */
int payq_payout_confirmed(struct payout_worker *w, const char *pid,
			  const char *tx, uint64_t block, long long per_gas,
			  const char *mined_hash);
/* The payout's nonce passed without paying it: queued again with
 * attempts (failed from max_attempts on), for why. */
int payq_payout_retry(struct payout_worker *w, const char *pid,
		      int attempts, const char *why);
/* Gives up the queued payouts ids for good. */
int payq_payouts_fail(struct payout_worker *w, const char *ids,
		      const char *reason);
/* Tasks of this escrow with payouts due: task_id. */
int payq_due_tasks(struct payout_worker *w, PGresult **out);
/* One task's due payouts, a batch at most: id, rid, contributor. */
int payq_due_payouts(struct payout_worker *w, const char *task_id,
		     PGresult **out);

/* Expired, cancelled and closed tasks of this operator with every slot
 * settled and the refund queued: id. */
int payq_refundable_tasks(struct payout_worker *w, PGresult **out);
/* Nothing left to refund on chain (confirmed), or the escrow refuses
 * (failed). */
int payq_refund_state(struct payout_worker *w, const char *task_id,
		      const char *state);
/* The refund transaction tx_hash was mined: confirmed, or failed when
 * it reverted. */
int payq_refund_mined(struct payout_worker *w, const char *task_id,
		      int success, const char *tx_hash);
/* Refunds broadcast in transactions ids (none of them mined) are tried
 * again. */
int payq_refunds_requeue(struct payout_worker *w, const char *ids);

#endif
