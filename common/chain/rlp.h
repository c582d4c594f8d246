/* RLP (Ethereum's Recursive Length Prefix): encoding into a bounded
 * struct buf, and a bounded, canonical-only decoder that borrows from the
 * input. */
#ifndef FM_CHAIN_RLP_H
#define FM_CHAIN_RLP_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Byte string (a single byte < 0x80 is its own encoding). */
int rlp_put_bytes(struct buf *b, const void *p, size_t n);
/* Big-endian integer without leading zeros (0 is the empty string). */
int rlp_put_uint(struct buf *b, uint64_t v);
int rlp_put_be(struct buf *b, const uint8_t *be, size_t n);

/* The header of a list whose items take payload_len bytes: writes 1 to 9
 * bytes into out and returns how many. */
size_t rlp_list_header(uint8_t out[9], size_t payload_len);

/* Lists: remember b->len in *mark, put the items, then close: the header
 * is inserted in front of the items. */
void rlp_list_begin(const struct buf *b, size_t *mark);
int rlp_list_end(struct buf *b, size_t mark);

struct rlp_item {
	int is_list;
	const uint8_t *p; /* payload, borrowed from the input */
	size_t len;
};

/* Reads the item at *cur (before end) and advances *cur past it.
 * FM_EINVAL names the offset from base when the encoding is truncated,
 * overlong or not canonical. */
int rlp_next(struct rlp_item *out, const uint8_t **cur, const uint8_t *end,
	     const uint8_t *base);
/* Exactly one item spanning [p, p + n). */
int rlp_decode(struct rlp_item *out, const uint8_t *p, size_t n);
/* Items of a list, at most max of them; *count is how many. */
int rlp_list_items(struct rlp_item *items, size_t max, size_t *count,
		   const struct rlp_item *list, const uint8_t *base);
/* A string item as an integer of at most 8 bytes, no leading zero. */
int rlp_item_uint(uint64_t *out, const struct rlp_item *it,
		  const char *what);
/* A string item as a big-endian integer of at most 32 bytes, no leading
 * zero, right-aligned into out[32]. */
int rlp_item_be32(uint8_t out[32], const struct rlp_item *it,
		  const char *what);

#endif
