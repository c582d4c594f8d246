/* The payout worker: pays accepted results on chain exactly once.
 *
 * Accepting a result writes a "queued" payout row in the same transaction
 * (the outbox). The worker groups queued payouts of one task into a
 * release / releaseBatch transaction, allocates its nonce in PostgreSQL,
 * signs it and stores the raw bytes and hash before broadcasting, then
 * polls receipts. A payout is confirmed from the chain itself: the
 * escrow's paid(resultId) and its Released event, after K confirmations.
 * After a crash the stored transactions are broadcast again; a stuck one
 * is replaced (same nonce, higher fees); a nonce consumed without paying a
 * result puts the payout back in the queue. The escrow refuses a second
 * release of a result id, so no retry can pay twice.
 *
 * One worker per operator key runs at a time (a PostgreSQL advisory
 * lock); others wait. */
#ifndef FM_PAYOUT_PAYOUT_H
#define FM_PAYOUT_PAYOUT_H

#include "chain/sig.h"
#include "db/db.h"

#include <stdint.h>

struct payout_opts {
	const char *rpc_url;
	const char *escrow;           /* 0x address */
	const struct chain_key *key;  /* the operator key; borrowed */
	uint64_t chain_id;
	int batch_size;               /* results per transaction, 1..500 */
	int confirmations;            /* blocks, >= 1 */
	long stuck_timeout_s;         /* replace a pending tx after this */
	int max_attempts;             /* then the payout is failed */
};

struct payout_stats {
	int broadcast;  /* transactions sent */
	int confirmed;  /* payouts confirmed */
	int requeued;   /* payouts put back in the queue */
	int failed;     /* payouts given up, with their reason */
	int replaced;   /* stuck transactions replaced */
	int refunds;    /* refund (cancel) transactions sent */
};

struct payout_worker;

int payout_worker_new(struct payout_worker **out, struct db_pool *db,
		      const struct payout_opts *o);
void payout_worker_free(struct payout_worker *w);

/* One round: broadcast what is signed, settle mined nonces, replace stuck
 * transactions, sign new batches, refund finished tasks. FM_EUNAVAIL when
 * the chain or the database cannot be reached (nothing is lost: the next
 * round resumes); *busy is set when there is work in flight. */
int payout_worker_step(struct payout_worker *w, struct payout_stats *st,
		       int *busy);

/* The bytes32 result id the escrow knows a result by: 16 zero bytes and
 * the UUID's 16 bytes. */
int payout_result_id(uint8_t out[32], const char *uuid);

#endif
