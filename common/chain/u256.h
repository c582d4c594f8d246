/* Unsigned 256-bit integers for wei amounts and ABI words. Arithmetic is
 * checked: overflow and underflow are errors, never a wrap-around. */
#ifndef FM_CHAIN_U256_H
#define FM_CHAIN_U256_H

#include <stddef.h>
#include <stdint.h>

struct chain_u256 {
	uint64_t w[4]; /* w[0] is the least significant limb */
};

/* Longest decimal text: 78 digits + NUL. */
#define CHAIN_U256_DEC_MAX 79

static inline struct chain_u256 chain_u256_from_u64(uint64_t v)
{
	struct chain_u256 r = { { v, 0, 0, 0 } };
	return r;
}

void chain_u256_from_be(struct chain_u256 *out, const uint8_t be[32]);
void chain_u256_to_be(uint8_t out[32], const struct chain_u256 *v);
int chain_u256_is_zero(const struct chain_u256 *v);
/* -1, 0 or 1. */
int chain_u256_cmp(const struct chain_u256 *a, const struct chain_u256 *b);
/* FM_OK, or FM_EINVAL when the value does not fit in 64 bits. */
int chain_u256_to_u64(uint64_t *out, const struct chain_u256 *v);

/* out may alias a or b. FM_EINVAL on overflow / underflow. */
int chain_u256_add(struct chain_u256 *out, const struct chain_u256 *a,
		   const struct chain_u256 *b);
int chain_u256_sub(struct chain_u256 *out, const struct chain_u256 *a,
		   const struct chain_u256 *b);
int chain_u256_mul_u64(struct chain_u256 *out, const struct chain_u256 *a,
		       uint64_t m);
/* Quotient into out (may alias a), remainder into *rem (may be NULL). */
void chain_u256_div_u64(struct chain_u256 *out, uint64_t *rem,
			const struct chain_u256 *a, uint64_t d);

/* Parses an amount: decimal ("1000"), hex ("0x3e8"), or decimal with a
 * unit suffix "wei", "gwei" or "ether", possibly with a fraction and a
 * space ("0.5 ether", "2gwei"). what names the input in errors. */
int chain_u256_parse(struct chain_u256 *out, const char *text,
		     const char *what);

/* Decimal text into out (CHAIN_U256_DEC_MAX bytes is always enough). */
void chain_u256_to_dec(char *out, size_t n, const struct chain_u256 *v);
/* "0x"-prefixed minimal hex, as JSON-RPC quantities are written. */
void chain_u256_to_hex(char out[67], const struct chain_u256 *v);
/* Parses a JSON-RPC quantity ("0x0", "0x1a"); FM_EINVAL otherwise. */
int chain_u256_from_quantity(struct chain_u256 *out, const char *hex);

#endif
