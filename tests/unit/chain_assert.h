/* Assertion shared by the chain tests. Include after cmocka.h. */
#ifndef FM_TESTS_CHAIN_ASSERT_H
#define FM_TESTS_CHAIN_ASSERT_H

#include "core/buf.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

/* The current error message contains part. */
#define assert_msg_contains(part) \
	do { \
		if (!strstr(fm_error_msg(), (part))) \
			fail_msg("error \"%s\" lacks \"%s\"", fm_error_msg(), \
				 (part)); \
	} while (0)

/* The bytes of b, in lower-case hex, are want. */
static inline void assert_buf_hex(const struct buf *b, const char *want)
{
	char *h = malloc(2 * b->len + 1);

	assert_non_null(h);
	hex_encode(h, (const uint8_t *)b->data, b->len);
	assert_string_equal(h, want);
	free(h);
}

#endif
