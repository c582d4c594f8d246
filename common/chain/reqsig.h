/* Signed requests (DESIGN.md "Identities and request signing"): one
 * definition for the services that verify and the clients that sign.
 *
 * A state-changing request carries four headers:
 *   X-Fedmarket-Address    the signer, 0x + 40 hex (EIP-55)
 *   X-Fedmarket-Timestamp  unix seconds, decimal
 *   X-Fedmarket-Nonce      32..128 hex digits (16+ random bytes)
 *   X-Fedmarket-Signature  0x + r || s || v (65 bytes, v 27/28)
 * The signature is EIP-191 personal_sign over the canonical string
 *   "fedmarket-request-v1\n" METHOD "\n" TARGET "\n" hex(sha256(body))
 *   "\n" TIMESTAMP "\n" NONCE
 * where TARGET is the path and query exactly as sent on the wire, so any
 * wallet can sign it. Nonce replay is checked by the service (PostgreSQL
 * table request_nonces), not here. */
#ifndef FM_CHAIN_REQSIG_H
#define FM_CHAIN_REQSIG_H

#include "chain/sig.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

#define REQSIG_HDR_ADDRESS "X-Fedmarket-Address"
#define REQSIG_HDR_TIMESTAMP "X-Fedmarket-Timestamp"
#define REQSIG_HDR_NONCE "X-Fedmarket-Nonce"
#define REQSIG_HDR_SIGNATURE "X-Fedmarket-Signature"
#define REQSIG_VERSION "fedmarket-request-v1"

#define REQSIG_NONCE_MIN 32 /* hex digits */
#define REQSIG_NONCE_MAX 128
#define REQSIG_TARGET_MAX 4096

/* What is signed of a request. */
struct reqsig_msg {
	const char *method; /* "POST" */
	const char *target; /* "/v1/tasks?x=1", as sent */
	const void *body;
	size_t body_len;
};

/* The four header values. */
struct reqsig_headers {
	char address[CHAIN_ADDR_HEX];
	char timestamp[24];
	char nonce[REQSIG_NONCE_MAX + 1];
	char signature[2 + 2 * CHAIN_SIG_LEN + 1];
};

/* The canonical string, appended to out. FM_EINVAL for a method that is
 * not an upper-case token, or a target that does not start with '/' or
 * holds control characters. */
int reqsig_canonical(struct buf *out, const struct reqsig_msg *m,
		     const char *timestamp, const char *nonce);

/* Fills out for a request sent at unix time now, with a fresh random
 * 16-byte nonce. */
int reqsig_sign(struct reqsig_headers *out, const struct chain_key *key,
		const struct reqsig_msg *m, int64_t now);

/* Checks the header values (any may be NULL: missing) against m at unix
 * time now. On success out is the signer's address. FM_EAUTH with a
 * message naming the header for a missing or malformed header, a
 * timestamp more than max_skew_s seconds from now, a signature that does
 * not recover, or one made by another address than the header's. */
int reqsig_verify(uint8_t out[CHAIN_ADDR_LEN], const struct reqsig_msg *m,
		  const char *address, const char *timestamp,
		  const char *nonce, const char *signature, int64_t now,
		  long max_skew_s);

struct httpc_headers;

/* An httpc_sign_fn (common/http/client.h): arg is the signing
 * const struct chain_key *; signs with the current time. */
int reqsig_httpc_sign(void *arg, const char *method, const char *target,
		      const void *body, size_t len, struct httpc_headers *h);

#endif
