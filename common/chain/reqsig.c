#include "chain/reqsig.h"

#include "core/err.h"
#include "core/sha256.h"
#include "http/client.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CANON_MAX (REQSIG_TARGET_MAX + 512)

static int check_method(const char *method)
{
	size_t n = strlen(method);

	if (n == 0 || n > 16)
		return fm_error_set(FM_EINVAL, "request method: expected 1 "
				    "to 16 upper-case letters");
	for (const char *p = method; *p; p++)
		if (*p < 'A' || *p > 'Z')
			return fm_error_set(FM_EINVAL, "request method: "
					    "\"%.16s\" is not upper-case "
					    "letters", method);
	return FM_OK;
}

static int check_target(const char *target)
{
	size_t n = strlen(target);

	if (target[0] != '/' || n > REQSIG_TARGET_MAX)
		return fm_error_set(FM_EINVAL, "request target: expected a "
				    "path starting with / of at most %d "
				    "bytes", REQSIG_TARGET_MAX);
	for (const char *p = target; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return fm_error_set(FM_EINVAL, "request target: "
					    "control character or space at "
					    "byte %zu", (size_t)(p - target));
	return FM_OK;
}

static int is_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return 0;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Decimal unix seconds: digits only, no sign, no leading zero. */
static int parse_timestamp(int64_t *out, const char *s)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 18 || (s[0] == '0' && n > 1))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

int reqsig_canonical(struct buf *out, const struct reqsig_msg *m,
		     const char *timestamp, const char *nonce)
{
	char body_hash[SHA256_HEX_LEN + 1];
	int err;

	err = check_method(m->method);
	if (err)
		return err;
	err = check_target(m->target);
	if (err)
		return err;
	fm_sha256_hex(body_hash, m->body ? m->body : "", m->body_len);
	return buf_appendf(out, "%s\n%s\n%s\n%s\n%s\n%s", REQSIG_VERSION,
			   m->method, m->target, body_hash, timestamp, nonce);
}

int reqsig_sign(struct reqsig_headers *out, const struct chain_key *key,
		const struct reqsig_msg *m, int64_t now)
{
	struct buf canon = BUF_INIT(CANON_MAX);
	struct reqsig_headers h;
	uint8_t nonce[16], sig[CHAIN_SIG_LEN];
	int err;

	if (now < 0)
		return fm_error_set(FM_EINVAL, "request time: negative");
	if (sodium_init() < 0)
		return fm_error_set(FM_EINTERNAL, "libsodium: init failed");
	randombytes_buf(nonce, sizeof(nonce));
	hex_encode(h.nonce, nonce, sizeof(nonce));
	snprintf(h.timestamp, sizeof(h.timestamp), "%lld", (long long)now);
	chain_address_to_hex(h.address, key->addr);
	err = reqsig_canonical(&canon, m, h.timestamp, h.nonce);
	if (err)
		goto done;
	err = chain_personal_sign(sig, key->priv, canon.data, canon.len);
	if (err)
		goto done;
	h.signature[0] = '0';
	h.signature[1] = 'x';
	hex_encode(h.signature + 2, sig, sizeof(sig));
	*out = h;
done:
	buf_cleanup(&canon);
	return err;
}

/* Who signed m's canonical form (at timestamp, with nonce) with sig. */
static int recover_signer(uint8_t signer[CHAIN_ADDR_LEN],
			  const struct reqsig_msg *m, const char *timestamp,
			  const char *nonce, const uint8_t sig[CHAIN_SIG_LEN])
{
	struct buf canon = BUF_INIT(CANON_MAX);
	int err;

	err = reqsig_canonical(&canon, m, timestamp, nonce);
	if (err)
		goto done;
	err = chain_personal_recover(signer, canon.data, canon.len, sig);
done:
	buf_cleanup(&canon);
	return err;
}

int reqsig_verify(uint8_t out[CHAIN_ADDR_LEN], const struct reqsig_msg *m,
		  const char *address, const char *timestamp,
		  const char *nonce, const char *signature, int64_t now,
		  long max_skew_s)
{
	uint8_t claimed[CHAIN_ADDR_LEN], signer[CHAIN_ADDR_LEN];
	uint8_t sig[CHAIN_SIG_LEN];
	char a[CHAIN_ADDR_HEX], b[CHAIN_ADDR_HEX];
	int64_t ts, skew;
	int err;

	if (!address || !timestamp || !nonce || !signature)
		return fm_error_set(FM_EAUTH, "unsigned request: header %s is "
				    "missing", !address ? REQSIG_HDR_ADDRESS :
				    !timestamp ? REQSIG_HDR_TIMESTAMP :
				    !nonce ? REQSIG_HDR_NONCE :
				    REQSIG_HDR_SIGNATURE);
	if (chain_address_parse(claimed, address, REQSIG_HDR_ADDRESS))
		return fm_error_set(FM_EAUTH, "%s", fm_error_msg());
	if (parse_timestamp(&ts, timestamp))
		return fm_error_set(FM_EAUTH, "%s: expected unix seconds",
				    REQSIG_HDR_TIMESTAMP);
	skew = ts > now ? ts - now : now - ts;
	if (skew > max_skew_s)
		return fm_error_set(FM_EAUTH, "%s: %s is %lld s %s the "
				    "server's clock (at most %ld s allowed)",
				    REQSIG_HDR_TIMESTAMP, timestamp,
				    (long long)skew, ts > now ? "ahead of" :
				    "behind", max_skew_s);
	if (!is_hex(nonce, REQSIG_NONCE_MIN, REQSIG_NONCE_MAX))
		return fm_error_set(FM_EAUTH, "%s: expected %d to %d hex "
				    "digits", REQSIG_HDR_NONCE,
				    REQSIG_NONCE_MIN, REQSIG_NONCE_MAX);
	if (strlen(signature) != 2 + 2 * CHAIN_SIG_LEN ||
	    strncmp(signature, "0x", 2) != 0 ||
	    hex_decode(sig, sizeof(sig), signature))
		return fm_error_set(FM_EAUTH, "%s: expected 0x and 130 hex "
				    "digits", REQSIG_HDR_SIGNATURE);
	err = recover_signer(signer, m, timestamp, nonce, sig);
	if (err)
		return fm_error_set(FM_EAUTH, "%s: %s", REQSIG_HDR_SIGNATURE,
				    fm_error_msg());
	if (memcmp(signer, claimed, CHAIN_ADDR_LEN) != 0) {
		chain_address_to_hex(a, signer);
		chain_address_to_hex(b, claimed);
		return fm_error_set(FM_EAUTH, "%s: the request was signed by "
				    "%s, not by %s (or it was changed after "
				    "signing)", REQSIG_HDR_SIGNATURE, a, b);
	}
	memcpy(out, signer, CHAIN_ADDR_LEN);
	return FM_OK;
}

int reqsig_httpc_sign(void *arg, const char *method, const char *target,
		      const void *body, size_t len, struct httpc_headers *h)
{
	const struct reqsig_msg m = { method, target, body, len };
	struct reqsig_headers v;
	int err = reqsig_sign(&v, arg, &m, (int64_t)time(NULL));

	if (err)
		return err;
	err = httpc_headers_add(h, REQSIG_HDR_ADDRESS, v.address);
	if (err)
		return err;
	err = httpc_headers_add(h, REQSIG_HDR_TIMESTAMP, v.timestamp);
	if (err)
		return err;
	err = httpc_headers_add(h, REQSIG_HDR_NONCE, v.nonce);
	if (err)
		return err;
	return httpc_headers_add(h, REQSIG_HDR_SIGNATURE, v.signature);
}
