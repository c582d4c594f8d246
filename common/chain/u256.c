#include "chain/u256.h"

#include "core/buf.h"
#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void chain_u256_from_be(struct chain_u256 *out, const uint8_t be[32])
{
	for (int i = 0; i < 4; i++) {
		uint64_t v = 0;

		for (int j = 0; j < 8; j++)
			v = (v << 8) | be[(3 - i) * 8 + j];
		out->w[i] = v;
	}
}

void chain_u256_to_be(uint8_t out[32], const struct chain_u256 *v)
{
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			out[(3 - i) * 8 + j] =
				(uint8_t)(v->w[i] >> (8 * (7 - j)));
}

int chain_u256_is_zero(const struct chain_u256 *v)
{
	return !(v->w[0] | v->w[1] | v->w[2] | v->w[3]);
}

int chain_u256_cmp(const struct chain_u256 *a, const struct chain_u256 *b)
{
	for (int i = 3; i >= 0; i--) {
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	}
	return 0;
}

int chain_u256_to_u64(uint64_t *out, const struct chain_u256 *v)
{
	if (v->w[1] | v->w[2] | v->w[3])
		return fm_error_set(FM_EINVAL,
				    "value does not fit in 64 bits");
	*out = v->w[0];
	return FM_OK;
}

int chain_u256_add(struct chain_u256 *out, const struct chain_u256 *a,
		   const struct chain_u256 *b)
{
	struct chain_u256 r;
	unsigned carry = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t s = a->w[i] + b->w[i];
		unsigned c = s < a->w[i];

		r.w[i] = s + carry;
		carry = c | (r.w[i] < s);
	}
	if (carry)
		return fm_error_set(FM_EINVAL, "amount overflows 256 bits");
	*out = r;
	return FM_OK;
}

int chain_u256_sub(struct chain_u256 *out, const struct chain_u256 *a,
		   const struct chain_u256 *b)
{
	struct chain_u256 r;
	unsigned borrow = 0;

	if (chain_u256_cmp(a, b) < 0)
		return fm_error_set(FM_EINVAL, "amount would go below zero");
	for (int i = 0; i < 4; i++) {
		uint64_t d = a->w[i] - b->w[i];
		unsigned bo = a->w[i] < b->w[i];

		r.w[i] = d - borrow;
		borrow = bo | (d < borrow);
	}
	*out = r;
	return FM_OK;
}

int chain_u256_mul_u64(struct chain_u256 *out, const struct chain_u256 *a,
		       uint64_t m)
{
	struct chain_u256 r;
	unsigned __int128 carry = 0;

	for (int i = 0; i < 4; i++) {
		unsigned __int128 p = (unsigned __int128)a->w[i] * m + carry;

		r.w[i] = (uint64_t)p;
		carry = p >> 64;
	}
	if (carry)
		return fm_error_set(FM_EINVAL, "amount overflows 256 bits");
	*out = r;
	return FM_OK;
}

void chain_u256_div_u64(struct chain_u256 *out, uint64_t *rem,
			const struct chain_u256 *a, uint64_t d)
{
	unsigned __int128 r = 0;
	struct chain_u256 q;

	FM_ASSERT(d != 0);
	for (int i = 3; i >= 0; i--) {
		unsigned __int128 cur = (r << 64) | a->w[i];

		q.w[i] = (uint64_t)(cur / d);
		r = cur % d;
	}
	*out = q;
	if (rem)
		*rem = (uint64_t)r;
}

static int parse_hex(struct chain_u256 *out, const char *s, const char *what)
{
	char digits[65];
	uint8_t be[32];
	size_t n;

	while (s[0] == '0' && s[1]) /* leading zeros do not count */
		s++;
	n = strlen(s);
	if (n == 0)
		return fm_error_set(FM_EINVAL, "%s: no digits after 0x", what);
	if (n > 64)
		return fm_error_set(FM_EINVAL, "%s: more than 256 bits", what);
	/* left-pad to 64 digits: then it is 32 big-endian bytes */
	memset(digits, '0', 64 - n);
	memcpy(digits + 64 - n, s, n + 1);
	if (hex_decode(be, 32, digits))
		return fm_error_set(FM_EINVAL, "%s: \"%.70s\" is not hex",
				    what, s);
	chain_u256_from_be(out, be);
	return FM_OK;
}

static int unit_decimals(const char *u, size_t n)
{
	static const struct {
		const char *name;
		int decimals;
	} units[] = { { "wei", 0 }, { "gwei", 9 }, { "ether", 18 },
		      { "eth", 18 } };

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n &&
		    strncasecmp(units[i].name, u, n) == 0)
			return units[i].decimals;
	return -1;
}

/* r = 10 r + digit; fails past 256 bits. */
static int push_digit(struct chain_u256 *r, int digit)
{
	struct chain_u256 d = chain_u256_from_u64((uint64_t)digit);
	int err = chain_u256_mul_u64(r, r, 10);

	if (err)
		return err;
	return chain_u256_add(r, r, &d);
}

int chain_u256_parse(struct chain_u256 *out, const char *text,
		     const char *what)
{
	struct chain_u256 r = { { 0 } };
	const char *s = text, *unit;
	int decimals = 0, frac_digits = -1, err;

	if (!what)
		what = "amount";
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return parse_hex(out, s + 2, what);
	if (!isdigit((unsigned char)*s))
		return fm_error_set(FM_EINVAL, "%s: \"%.40s\" is not a number",
				    what, text);
	/* the unit decides how many fraction digits are allowed */
	unit = s + strspn(s, "0123456789.");
	if (*unit) {
		const char *u = unit + strspn(unit, " ");

		decimals = unit_decimals(u, strlen(u));
		if (decimals < 0)
			return fm_error_set(FM_EINVAL,
					    "%s: unknown unit \"%.20s\" (use "
					    "wei, gwei or ether)", what, u);
	}
	for (; s < unit; s++) {
		if (*s == '.') {
			if (frac_digits >= 0)
				return fm_error_set(FM_EINVAL,
						    "%s: two decimal points",
						    what);
			frac_digits = 0;
			continue;
		}
		if (frac_digits >= 0 && ++frac_digits > decimals)
			return fm_error_set(FM_EINVAL,
					    "%s: more than %d fraction digits "
					    "(%s is not a whole number of wei)",
					    what, decimals, text);
		err = push_digit(&r, *s - '0');
		if (err)
			return fm_error_set(FM_EINVAL,
					    "%s: more than 256 bits", what);
	}
	if (frac_digits == 0)
		return fm_error_set(FM_EINVAL, "%s: no digits after '.'", what);
	for (int i = frac_digits < 0 ? 0 : frac_digits; i < decimals; i++)
		if (chain_u256_mul_u64(&r, &r, 10))
			return fm_error_set(FM_EINVAL,
					    "%s: more than 256 bits", what);
	*out = r;
	return FM_OK;
}

void chain_u256_to_dec(char *out, size_t n, const struct chain_u256 *v)
{
	char tmp[CHAIN_U256_DEC_MAX];
	size_t i = sizeof(tmp) - 1;
	struct chain_u256 q = *v;
	uint64_t rem;

	tmp[i] = '\0';
	do {
		chain_u256_div_u64(&q, &rem, &q, 10);
		tmp[--i] = (char)('0' + rem);
	} while (!chain_u256_is_zero(&q));
	snprintf(out, n, "%s", tmp + i);
}

void chain_u256_to_hex(char out[67], const struct chain_u256 *v)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t be[32];
	char *p = out;
	int started = 0;

	chain_u256_to_be(be, v);
	*p++ = '0';
	*p++ = 'x';
	for (int i = 0; i < 64; i++) {
		int d = (be[i / 2] >> (i % 2 ? 0 : 4)) & 0xf;

		if (!d && !started && i < 63)
			continue;
		started = 1;
		*p++ = digits[d];
	}
	*p = '\0';
}

int chain_u256_from_quantity(struct chain_u256 *out, const char *hex)
{
	if (!hex || hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X'))
		return fm_error_set(FM_EINVAL,
				    "quantity \"%.40s\": expected 0x-prefixed "
				    "hex", hex ? hex : "(null)");
	return parse_hex(out, hex + 2, "quantity");
}
