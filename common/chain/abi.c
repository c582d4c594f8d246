#include "chain/abi.h"

#include "chain/keccak.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void abi_selector(uint8_t out[4], const char *signature)
{
	uint8_t h[32];

	chain_keccak256(h, signature, strlen(signature));
	memcpy(out, h, 4);
}

void abi_event_topic(uint8_t out[32], const char *signature)
{
	chain_keccak256(out, signature, strlen(signature));
}

void abi_enc_init(struct abi_enc *e, const uint8_t selector[4],
		  size_t nargs, size_t max)
{
	buf_init(&e->head, max);
	buf_init(&e->tail, max);
	e->nargs = nargs;
	e->next = 0;
	e->err = FM_OK;
	if (selector)
		e->err = buf_append(&e->head, selector, 4);
}

void abi_enc_cleanup(struct abi_enc *e)
{
	buf_cleanup(&e->head);
	buf_cleanup(&e->tail);
}

static void put_word(struct abi_enc *e, const uint8_t w[32])
{
	if (e->err)
		return;
	if (e->next >= e->nargs) {
		e->err = fm_error_set(FM_EINTERNAL,
				      "abi: more arguments than the %zu "
				      "declared", e->nargs);
		return;
	}
	e->next++;
	e->err = buf_append(&e->head, w, 32);
}

static void word_u64(uint8_t w[32], uint64_t v)
{
	memset(w, 0, 32);
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
}

void abi_put_uint(struct abi_enc *e, const struct chain_u256 *v)
{
	uint8_t w[32];

	chain_u256_to_be(w, v);
	put_word(e, w);
}

void abi_put_u64(struct abi_enc *e, uint64_t v)
{
	uint8_t w[32];

	word_u64(w, v);
	put_word(e, w);
}

void abi_put_address(struct abi_enc *e, const uint8_t addr[20])
{
	uint8_t w[32] = { 0 };

	memcpy(w + 12, addr, 20);
	put_word(e, w);
}

void abi_put_bytes32(struct abi_enc *e, const uint8_t b[32])
{
	put_word(e, b);
}

void abi_put_bool(struct abi_enc *e, int v)
{
	abi_put_u64(e, v ? 1 : 0);
}

/* The head slot of a dynamic value holds the offset of its tail, counted
 * from the start of the arguments (after the selector). */
static void put_offset(struct abi_enc *e)
{
	abi_put_u64(e, (uint64_t)(e->nargs * 32 + e->tail.len));
}

static void tail_word(struct abi_enc *e, const uint8_t w[32])
{
	if (!e->err)
		e->err = buf_append(&e->tail, w, 32);
}

void abi_put_bytes32_array(struct abi_enc *e, const uint8_t (*items)[32],
			   size_t n)
{
	uint8_t w[32];

	put_offset(e);
	word_u64(w, n);
	tail_word(e, w);
	for (size_t i = 0; i < n; i++)
		tail_word(e, items[i]);
}

void abi_put_address_array(struct abi_enc *e, const uint8_t (*items)[20],
			   size_t n)
{
	uint8_t w[32] = { 0 };

	put_offset(e);
	word_u64(w, n);
	tail_word(e, w);
	memset(w, 0, 32);
	for (size_t i = 0; i < n; i++) {
		memcpy(w + 12, items[i], 20);
		tail_word(e, w);
	}
}

void abi_put_uint_array(struct abi_enc *e, const struct chain_u256 *items,
			size_t n)
{
	uint8_t w[32];

	put_offset(e);
	word_u64(w, n);
	tail_word(e, w);
	for (size_t i = 0; i < n; i++) {
		chain_u256_to_be(w, &items[i]);
		tail_word(e, w);
	}
}

void abi_put_bytes(struct abi_enc *e, const void *p, size_t n)
{
	static const uint8_t zeros[32];
	uint8_t w[32];

	put_offset(e);
	word_u64(w, n);
	tail_word(e, w);
	if (!e->err && n)
		e->err = buf_append(&e->tail, p, n);
	if (!e->err && n % 32)
		e->err = buf_append(&e->tail, zeros, 32 - n % 32);
}

int abi_enc_finish(struct abi_enc *e, struct buf *out)
{
	int err = e->err;

	if (err)
		return err;
	if (e->next != e->nargs)
		return fm_error_set(FM_EINTERNAL,
				    "abi: %zu arguments declared, %zu put",
				    e->nargs, e->next);
	err = buf_append(out, e->head.data, e->head.len);
	if (err)
		return err;
	if (e->tail.len)
		return buf_append(out, e->tail.data, e->tail.len);
	return FM_OK;
}

int abi_get_word(uint8_t out[32], const uint8_t *data, size_t len,
		 size_t i, const char *what)
{
	if (i >= len / 32)
		return fm_error_set(FM_EINVAL,
				    "%s: ABI data has %zu bytes, word %zu is "
				    "missing", what, len, i);
	memcpy(out, data + 32 * i, 32);
	return FM_OK;
}

int abi_get_uint(struct chain_u256 *out, const uint8_t *data, size_t len,
		 size_t i, const char *what)
{
	uint8_t w[32];
	int err = abi_get_word(w, data, len, i, what);

	if (err)
		return err;
	chain_u256_from_be(out, w);
	return FM_OK;
}

int abi_get_uint_bits(uint64_t *out, const uint8_t *data, size_t len,
		      size_t i, unsigned bits, const char *what)
{
	struct chain_u256 v;
	uint64_t x;
	int err;

	FM_ASSERT(bits > 0 && bits <= 64);
	err = abi_get_uint(&v, data, len, i, what);
	if (err)
		return err;
	if (chain_u256_to_u64(&x, &v) ||
	    (bits < 64 && (x >> bits) != 0))
		return fm_error_set(FM_EINVAL,
				    "%s: value does not fit in uint%u", what,
				    bits);
	*out = x;
	return FM_OK;
}

int abi_get_address(uint8_t out[20], const uint8_t *data, size_t len,
		    size_t i, const char *what)
{
	uint8_t w[32];
	int err = abi_get_word(w, data, len, i, what);

	if (err)
		return err;
	for (int k = 0; k < 12; k++)
		if (w[k])
			return fm_error_set(FM_EINVAL,
					    "%s: not an address (high bytes "
					    "set)", what);
	memcpy(out, w + 12, 20);
	return FM_OK;
}

int abi_get_bool(int *out, const uint8_t *data, size_t len, size_t i,
		 const char *what)
{
	uint64_t v;
	int err = abi_get_uint_bits(&v, data, len, i, 1, what);

	if (err)
		return err;
	*out = (int)v;
	return FM_OK;
}

int abi_get_bytes(const uint8_t **out, size_t *out_len, const uint8_t *data,
		  size_t len, size_t i, const char *what)
{
	uint64_t off, n;
	int err = abi_get_uint_bits(&off, data, len, i, 64, what);

	if (err)
		return err;
	if (off % 32 || off > len || len - off < 32)
		return fm_error_set(FM_EINVAL,
				    "%s: offset %llu is outside the %zu bytes "
				    "of ABI data", what,
				    (unsigned long long)off, len);
	err = abi_get_uint_bits(&n, data + off, len - (size_t)off, 0, 64,
				what);
	if (err)
		return err;
	if (n > len - off - 32)
		return fm_error_set(FM_EINVAL,
				    "%s: length %llu runs past the end of the "
				    "ABI data", what, (unsigned long long)n);
	*out = data + off + 32;
	*out_len = (size_t)n;
	return FM_OK;
}

static const char *panic_name(uint64_t code)
{
	switch (code) {
	case 0x01: return "assertion failed";
	case 0x11: return "arithmetic overflow";
	case 0x12: return "division by zero";
	case 0x21: return "invalid enum value";
	case 0x22: return "bad storage byte array";
	case 0x31: return "pop on an empty array";
	case 0x32: return "array index out of bounds";
	case 0x41: return "out of memory";
	case 0x51: return "call of an uninitialized function";
	default: return "unknown panic";
	}
}

void abi_revert_reason(char *out, size_t n, const uint8_t *data,
		       size_t len)
{
	static const uint8_t error_sel[4] = { 0x08, 0xc3, 0x79, 0xa0 };
	static const uint8_t panic_sel[4] = { 0x4e, 0x48, 0x7b, 0x71 };
	const uint8_t *s;
	size_t slen, k = 0;
	uint64_t code;
	char hex[9];

	if (n == 0)
		return;
	if (len == 0) {
		snprintf(out, n, "no reason given");
		return;
	}
	if (len >= 4 && !memcmp(data, error_sel, 4) &&
	    !abi_get_bytes(&s, &slen, data + 4, len - 4, 0, "revert")) {
		for (size_t i = 0; i < slen && k + 1 < n; i++)
			out[k++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' :
								 (char)s[i];
		out[k] = '\0';
		return;
	}
	if (len >= 4 && !memcmp(data, panic_sel, 4) &&
	    !abi_get_uint_bits(&code, data + 4, len - 4, 0, 64, "panic")) {
		snprintf(out, n, "panic 0x%llx (%s)", (unsigned long long)code,
			 panic_name(code));
		return;
	}
	fm_error_clear();
	hex_encode(hex, data, len < 4 ? len : 4);
	snprintf(out, n, "custom error 0x%s (%zu bytes)", hex, len);
}
