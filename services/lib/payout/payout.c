/* The payout worker's life and its round: the lock, the nonce synced
 * once, then each step of payout_chain.c in order. */
#include "payout/payout_int.h"

#include "chain/escrow.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

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
	if (err)
		goto done;
	err = chain_rpc_new(&w->rpc, o->rpc_url, NULL);
	if (err)
		goto done;
	lower_hex_addr(w->from, o->key->addr);
	lower_hex_addr(w->escrow_hex, w->escrow);
done:
	if (err) {
		payout_worker_free(w);
		return err;
	}
	*out = w;
	return FM_OK;
}

void payout_worker_free(struct payout_worker *w)
{
	if (!w)
		return;
	payq_unlock(w);
	chain_rpc_free(w->rpc);
	free(w);
}

int payout_worker_step(struct payout_worker *w, struct payout_stats *st,
		       int *busy)
{
	uint64_t pending;
	int have = 0, err;

	*busy = 0;
	err = payq_lock(w, &have);
	if (err || !have)
		return err;
	if (!w->synced) {
		err = chain_rpc_nonce(w->rpc, &pending, w->o.key->addr,
				      "pending");
		if (err)
			return err;
		err = payq_sync_nonce(w, pending);
		if (err)
			return err;
		w->synced = 1;
	}
	err = payout_broadcast_signed(w, st);
	if (err)
		return err;
	err = payout_settle(w, st);
	if (err)
		return err;
	err = payout_replace_stuck(w, st);
	if (err)
		return err;
	err = payout_sign_batches(w, st);
	if (err)
		return err;
	err = payout_refunds(w, st);
	if (err)
		return err;
	/* what this round signed goes out now, not a round later */
	err = payout_broadcast_signed(w, st);
	if (err)
		return err;
	return payq_busy(w, busy);
}
