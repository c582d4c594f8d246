#include "chain/rlp.h"

#include "core/err.h"

#include <string.h>

/* Header for a payload of n bytes; base is 0x80 (string) or 0xc0 (list). */
static size_t header(uint8_t out[9], size_t n, uint8_t base)
{
	size_t k = 0;

	if (n < 56) {
		out[0] = (uint8_t)(base + n);
		return 1;
	}
	for (size_t v = n; v; v >>= 8)
		k++;
	out[0] = (uint8_t)(base + 55 + k);
	for (size_t i = 0; i < k; i++)
		out[k - i] = (uint8_t)(n >> (8 * i));
	return k + 1;
}

size_t rlp_list_header(uint8_t out[9], size_t payload_len)
{
	return header(out, payload_len, 0xc0);
}

int rlp_put_bytes(struct buf *b, const void *p, size_t n)
{
	const uint8_t *s = p;
	uint8_t h[9];
	int err;

	if (n == 1 && s[0] < 0x80)
		return buf_append(b, s, 1);
	err = buf_append(b, h, header(h, n, 0x80));
	if (err)
		return err;
	return buf_append(b, s, n);
}

int rlp_put_be(struct buf *b, const uint8_t *be, size_t n)
{
	while (n > 0 && be[0] == 0) {
		be++;
		n--;
	}
	return rlp_put_bytes(b, be, n);
}

int rlp_put_uint(struct buf *b, uint64_t v)
{
	uint8_t be[8];

	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(v >> (8 * (7 - i)));
	return rlp_put_be(b, be, 8);
}

void rlp_list_begin(const struct buf *b, size_t *mark)
{
	*mark = b->len;
}

int rlp_list_end(struct buf *b, size_t mark)
{
	uint8_t h[9];
	size_t n, k;
	int err;

	FM_ASSERT(mark <= b->len);
	n = b->len - mark;
	k = header(h, n, 0xc0);
	err = buf_reserve(b, k);
	if (err)
		return err;
	memmove(b->data + mark + k, b->data + mark, n);
	memcpy(b->data + mark, h, k);
	b->len += k;
	b->data[b->len] = '\0';
	return FM_OK;
}

int rlp_next(struct rlp_item *out, const uint8_t **cur, const uint8_t *end,
	     const uint8_t *base)
{
	const uint8_t *p = *cur;
	size_t off = (size_t)(p - base), avail, len = 0, k;
	uint8_t b0;
	int is_list;

	if (p >= end)
		return fm_error_set(FM_EINVAL, "rlp: missing item at byte %zu",
				    off);
	b0 = *p;
	avail = (size_t)(end - p);
	if (b0 < 0x80) {
		out->is_list = 0;
		out->p = p;
		out->len = 1;
		*cur = p + 1;
		return FM_OK;
	}
	is_list = b0 >= 0xc0;
	b0 = (uint8_t)(b0 - (is_list ? 0xc0 : 0x80));
	if (b0 < 56) {
		len = b0;
		k = 0;
	} else {
		k = (size_t)b0 - 55;
		if (k > sizeof(size_t) || 1 + k > avail)
			return fm_error_set(FM_EINVAL,
					    "rlp: truncated length at byte %zu",
					    off);
		if (p[1] == 0)
			return fm_error_set(FM_EINVAL,
					    "rlp: length with a leading zero "
					    "at byte %zu", off);
		for (size_t i = 0; i < k; i++)
			len = (len << 8) | p[1 + i];
		if (len < 56)
			return fm_error_set(FM_EINVAL,
					    "rlp: long form for a short "
					    "payload at byte %zu", off);
	}
	if (len > avail - 1 - k)
		return fm_error_set(FM_EINVAL,
				    "rlp: item at byte %zu claims %zu bytes, "
				    "%zu left", off, len, avail - 1 - k);
	if (!is_list && k == 0 && len == 1 && p[1] < 0x80)
		return fm_error_set(FM_EINVAL,
				    "rlp: single byte below 0x80 with a "
				    "header at byte %zu", off);
	out->is_list = is_list;
	out->p = p + 1 + k;
	out->len = len;
	*cur = out->p + len;
	return FM_OK;
}

int rlp_decode(struct rlp_item *out, const uint8_t *p, size_t n)
{
	const uint8_t *cur = p;
	int err = rlp_next(out, &cur, p + n, p);

	if (err)
		return err;
	if (cur != p + n)
		return fm_error_set(FM_EINVAL,
				    "rlp: %zu trailing bytes after the item",
				    (size_t)(p + n - cur));
	return FM_OK;
}

int rlp_list_items(struct rlp_item *items, size_t max, size_t *count,
		   const struct rlp_item *list, const uint8_t *base)
{
	const uint8_t *cur = list->p, *end = list->p + list->len;
	size_t n = 0;
	int err;

	if (!list->is_list)
		return fm_error_set(FM_EINVAL,
				    "rlp: expected a list at byte %zu",
				    (size_t)(list->p - base));
	while (cur < end) {
		if (n == max)
			return fm_error_set(FM_EINVAL,
					    "rlp: list at byte %zu has more "
					    "than %zu items",
					    (size_t)(list->p - base), max);
		err = rlp_next(&items[n], &cur, end, base);
		if (err)
			return err;
		n++;
	}
	*count = n;
	return FM_OK;
}

int rlp_item_uint(uint64_t *out, const struct rlp_item *it,
		  const char *what)
{
	uint64_t v = 0;

	if (it->is_list || it->len > 8)
		return fm_error_set(FM_EINVAL, "%s: expected an integer of at "
				    "most 8 bytes", what);
	if (it->len > 0 && it->p[0] == 0)
		return fm_error_set(FM_EINVAL, "%s: integer with a leading "
				    "zero", what);
	for (size_t i = 0; i < it->len; i++)
		v = (v << 8) | it->p[i];
	*out = v;
	return FM_OK;
}

int rlp_item_be32(uint8_t out[32], const struct rlp_item *it,
		  const char *what)
{
	if (it->is_list || it->len > 32)
		return fm_error_set(FM_EINVAL, "%s: expected an integer of at "
				    "most 32 bytes", what);
	if (it->len > 0 && it->p[0] == 0)
		return fm_error_set(FM_EINVAL, "%s: integer with a leading "
				    "zero", what);
	memset(out, 0, 32 - it->len);
	memcpy(out + 32 - it->len, it->p, it->len);
	return FM_OK;
}
