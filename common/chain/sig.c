#include "chain/sig.h"

#include "chain/keccak.h"
#include "core/buf.h"
#include "core/err.h"

#include <ctype.h>
#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Half the curve order n; a canonical s is <= this (EIP-2). */
static const uint8_t half_order[32] = {
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4,
	0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};

static secp256k1_context *ctx;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

/* One context for the process: after creation it is only read, which
 * libsecp256k1 allows from many threads at once. */
static void ctx_create(void)
{
	uint8_t seed[32];

	if (sodium_init() < 0)
		return;
	ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	if (!ctx)
		return;
	randombytes_buf(seed, sizeof(seed));
	/* blinding against side channels; it fails only on a seed that is
	 * not a valid scalar (odds ~2^-128): then there is no context */
	if (!secp256k1_context_randomize(ctx, seed)) {
		secp256k1_context_destroy(ctx);
		ctx = NULL;
	}
	sodium_memzero(seed, sizeof(seed));
}

static const secp256k1_context *get_ctx(void)
{
	pthread_once(&ctx_once, ctx_create);
	return ctx;
}

void chain_address_from_pubkey(uint8_t out[CHAIN_ADDR_LEN],
			       const uint8_t pub[65])
{
	uint8_t h[32];

	chain_keccak256(h, pub + 1, 64);
	memcpy(out, h + 12, CHAIN_ADDR_LEN);
}

static int pubkey_address(uint8_t out[CHAIN_ADDR_LEN],
			  const secp256k1_pubkey *pk)
{
	uint8_t ser[65];
	size_t len = sizeof(ser);

	if (!secp256k1_ec_pubkey_serialize(get_ctx(), ser, &len, pk,
					   SECP256K1_EC_UNCOMPRESSED))
		return fm_error_set(FM_EINTERNAL,
				    "secp256k1: cannot serialize public key");
	chain_address_from_pubkey(out, ser);
	return FM_OK;
}

int chain_key_from_priv(struct chain_key *out, const uint8_t priv[32])
{
	const secp256k1_context *c = get_ctx();
	secp256k1_pubkey pk;
	struct chain_key k;
	int err;

	if (!c)
		return fm_error_set(FM_EINTERNAL,
				    "secp256k1: cannot create a context");
	if (!secp256k1_ec_seckey_verify(c, priv))
		return fm_error_set(FM_EINVAL,
				    "private key: zero or not below the "
				    "secp256k1 curve order");
	if (!secp256k1_ec_pubkey_create(c, &pk, priv))
		return fm_error_set(FM_EINTERNAL,
				    "secp256k1: cannot derive public key");
	memcpy(k.priv, priv, 32);
	err = pubkey_address(k.addr, &pk);
	if (err)
		goto done;
	*out = k;
done:
	sodium_memzero(&k, sizeof(k));
	return err;
}

int chain_key_from_hex(struct chain_key *out, const char *hex)
{
	char digits[67];
	uint8_t priv[32];
	size_t n;
	int err;

	while (isspace((unsigned char)*hex))
		hex++;
	n = strlen(hex);
	while (n > 0 && isspace((unsigned char)hex[n - 1]))
		n--;
	if (n >= sizeof(digits))
		return fm_error_set(FM_EINVAL,
				    "private key: expected 64 hex digits");
	memcpy(digits, hex, n);
	digits[n] = '\0';
	err = hex_decode(priv, 32, digits);
	sodium_memzero(digits, sizeof(digits));
	if (err)
		return fm_error_set(FM_EINVAL,
				    "private key: expected 64 hex digits");
	err = chain_key_from_priv(out, priv);
	sodium_memzero(priv, sizeof(priv));
	return err;
}

int chain_key_generate(struct chain_key *out)
{
	uint8_t priv[32];
	int err;

	if (!get_ctx())
		return fm_error_set(FM_EINTERNAL,
				    "secp256k1: cannot create a context");
	/* a random 32-byte value is out of range with odds ~2^-128 */
	do {
		randombytes_buf(priv, sizeof(priv));
		err = chain_key_from_priv(out, priv);
	} while (err == FM_EINVAL);
	sodium_memzero(priv, sizeof(priv));
	if (err == FM_OK)
		fm_error_clear();
	return err;
}

void chain_key_wipe(struct chain_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

void chain_address_to_hex(char out[CHAIN_ADDR_HEX],
			  const uint8_t addr[CHAIN_ADDR_LEN])
{
	char lower[41];
	uint8_t h[32];

	hex_encode(lower, addr, CHAIN_ADDR_LEN);
	chain_keccak256(h, lower, 40);
	out[0] = '0';
	out[1] = 'x';
	for (int i = 0; i < 40; i++) {
		int nib = (h[i / 2] >> (i % 2 ? 0 : 4)) & 0xf;
		char c = lower[i];

		out[2 + i] = (c >= 'a' && nib >= 8) ? (char)(c - 32) : c;
	}
	out[42] = '\0';
}

int chain_address_parse(uint8_t out[CHAIN_ADDR_LEN], const char *text,
			const char *what)
{
	const char *s = text;
	uint8_t a[CHAIN_ADDR_LEN];
	int has_lower = 0, has_upper = 0;

	if (!what)
		what = "address";
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (strlen(s) != 40 || hex_decode(a, CHAIN_ADDR_LEN, s))
		return fm_error_set(FM_EINVAL,
				    "%s: \"%.50s\" is not 0x and 40 hex digits",
				    what, text);
	for (const char *p = s; *p; p++) {
		has_lower |= (*p >= 'a' && *p <= 'f');
		has_upper |= (*p >= 'A' && *p <= 'F');
	}
	if (has_lower && has_upper) {
		char want[CHAIN_ADDR_HEX];

		chain_address_to_hex(want, a);
		if (strcmp(want + 2, s) != 0)
			return fm_error_set(FM_EINVAL,
					    "%s: %s has a wrong EIP-55 "
					    "checksum (expected %s)", what,
					    text, want);
	}
	memcpy(out, a, CHAIN_ADDR_LEN);
	return FM_OK;
}

int chain_address_is_zero(const uint8_t addr[CHAIN_ADDR_LEN])
{
	uint8_t acc = 0;

	for (int i = 0; i < CHAIN_ADDR_LEN; i++)
		acc |= addr[i];
	return acc == 0;
}

int chain_sign_hash(uint8_t out[CHAIN_SIG_LEN], const uint8_t priv[32],
		    const uint8_t hash[32])
{
	const secp256k1_context *c = get_ctx();
	secp256k1_ecdsa_recoverable_signature rs;
	int recid;

	if (!c)
		return fm_error_set(FM_EINTERNAL,
				    "secp256k1: cannot create a context");
	/* the default nonce function is RFC 6979 and s is always low */
	if (!secp256k1_ecdsa_sign_recoverable(c, &rs, hash, priv, NULL, NULL))
		return fm_error_set(FM_EINVAL,
				    "private key: not a valid secp256k1 key");
	secp256k1_ecdsa_recoverable_signature_serialize_compact(c, out, &recid,
								&rs);
	out[64] = (uint8_t)recid;
	return FM_OK;
}

int chain_recover(uint8_t out[CHAIN_ADDR_LEN], const uint8_t hash[32],
		  const uint8_t sig[CHAIN_SIG_LEN])
{
	const secp256k1_context *c = get_ctx();
	secp256k1_ecdsa_recoverable_signature rs;
	secp256k1_pubkey pk;
	int v = sig[64];

	if (!c)
		return fm_error_set(FM_EINTERNAL,
				    "secp256k1: cannot create a context");
	if (v >= 27)
		v -= 27;
	if (v != 0 && v != 1)
		return fm_error_set(FM_EAUTH,
				    "signature: v is %d, expected 27 or 28",
				    sig[64]);
	if (memcmp(sig + 32, half_order, 32) > 0)
		return fm_error_set(FM_EAUTH,
				    "signature: s is in the upper half of the "
				    "curve order (not canonical)");
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(c, &rs, sig,
								 v))
		return fm_error_set(FM_EAUTH,
				    "signature: r or s is out of range");
	if (!secp256k1_ecdsa_recover(c, &pk, &rs, hash))
		return fm_error_set(FM_EAUTH,
				    "signature: recovers no public key");
	return pubkey_address(out, &pk);
}

void chain_eip191_hash(uint8_t out[32], const void *msg, size_t n)
{
	static const char prefix[] = "\x19" "Ethereum Signed Message:\n";
	struct chain_keccak k;
	char len[24];
	int m = snprintf(len, sizeof(len), "%zu", n);

	chain_keccak_init(&k);
	chain_keccak_update(&k, prefix, sizeof(prefix) - 1);
	chain_keccak_update(&k, len, (size_t)m);
	chain_keccak_update(&k, msg, n);
	chain_keccak_final(&k, out);
}

int chain_personal_sign(uint8_t out[CHAIN_SIG_LEN], const uint8_t priv[32],
			const void *msg, size_t n)
{
	uint8_t h[32];
	int err;

	chain_eip191_hash(h, msg, n);
	err = chain_sign_hash(out, priv, h);
	if (err)
		return err;
	out[64] += 27;
	return FM_OK;
}

int chain_personal_recover(uint8_t out[CHAIN_ADDR_LEN], const void *msg,
			   size_t n, const uint8_t sig[CHAIN_SIG_LEN])
{
	uint8_t h[32];

	chain_eip191_hash(h, msg, n);
	return chain_recover(out, h, sig);
}
