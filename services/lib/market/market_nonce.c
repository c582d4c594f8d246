/* Signed-request replay protection: each (address, nonce) once. */
#include "market/market.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nonce_arg {
	const char *address, *nonce;
	char max_age[24];
};

static int nonce_fn(struct db_conn *c, void *arg)
{
	struct nonce_arg *a = arg;
	int err;

	/* Committed without waiting for the disk: whatever the request
	 * then changes commits later in the same log, and waiting for that
	 * makes the nonce durable too; a crash before it loses a nonce
	 * whose request had no effect. One fsync per request, not two. */
	err = db_execp(c, NULL,
		       "WITH async AS (SELECT set_config("
		       "'synchronous_commit', 'off', true))"
		       " INSERT INTO request_nonces (address, nonce)"
		       " SELECT $1, $2 FROM async ON CONFLICT DO NOTHING",
		       a->address, a->nonce);
	if (err)
		return err;
	if (db_last_rows(c) == 0)
		return fm_error_set(FM_EAUTH,
				    "request nonce was already used (replay)");
	/* prune now and then; nonces older than the skew cannot replay */
	if (rand() % 256 != 0)
		return FM_OK;
	return db_execp(c, NULL,
			"DELETE FROM request_nonces WHERE seen_at <"
			" now() - make_interval(secs => $1::int)",
			a->max_age);
}

int market_nonce_use(struct db_pool *p, const char *address,
		     const char *nonce, long max_age_s)
{
	struct nonce_arg a = { address, nonce, "" };

	snprintf(a.max_age, sizeof(a.max_age), "%ld", max_age_s * 2);
	if (!nonce || strlen(nonce) < 16 || strlen(nonce) > 128)
		return fm_error_set(FM_EAUTH,
				    "request nonce must be 16 to 128 "
				    "characters");
	return db_tx(p, DB_AUTOCOMMIT, nonce_fn, NULL, &a);
}
