/* RLP: the examples of the Ethereum wiki, and refusal of truncated and
 * non-canonical input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/rlp.h"
#include "chain_assert.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

static void test_rlp__encodes_strings_and_integers(void **state)
{
	struct buf b = BUF_INIT(1 << 16);
	static const char lorem[] =
		"Lorem ipsum dolor sit amet, consectetur adipisicing elit";

	(void)state;
	assert_int_equal(rlp_put_bytes(&b, "dog", 3), FM_OK);
	assert_buf_hex(&b, "83646f67");
	buf_reset(&b);
	assert_int_equal(rlp_put_bytes(&b, "", 0), FM_OK);
	assert_buf_hex(&b, "80");
	buf_reset(&b);
	assert_int_equal(rlp_put_bytes(&b, "\x00", 1), FM_OK);
	assert_buf_hex(&b, "00");
	buf_reset(&b);
	assert_int_equal(rlp_put_bytes(&b, "\x80", 1), FM_OK);
	assert_buf_hex(&b, "8180");
	buf_reset(&b);
	assert_int_equal(rlp_put_uint(&b, 0), FM_OK);
	assert_int_equal(rlp_put_uint(&b, 15), FM_OK);
	assert_int_equal(rlp_put_uint(&b, 1024), FM_OK);
	assert_int_equal(rlp_put_uint(&b, UINT64_MAX), FM_OK);
	assert_buf_hex(&b, "800f82040088ffffffffffffffff");
	buf_reset(&b);
	/* 56 bytes: the first length that needs the long form */
	assert_int_equal(rlp_put_bytes(&b, lorem, 56), FM_OK);
	assert_int_equal(b.len, 58);
	assert_memory_equal(b.data, "\xb8\x38", 2);
	assert_memory_equal(b.data + 2, lorem, 56);
	buf_cleanup(&b);
}

static void test_rlp__encodes_nested_lists(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	size_t m0, m1, m2, m3, m4;
	char big[1000];

	(void)state;
	/* ["cat", "dog"] */
	rlp_list_begin(&b, &m0);
	assert_int_equal(rlp_put_bytes(&b, "cat", 3), FM_OK);
	assert_int_equal(rlp_put_bytes(&b, "dog", 3), FM_OK);
	assert_int_equal(rlp_list_end(&b, m0), FM_OK);
	assert_buf_hex(&b, "c88363617483646f67");
	buf_reset(&b);
	/* [ [], [[]], [ [], [[]] ] ] */
	rlp_list_begin(&b, &m0);
	rlp_list_begin(&b, &m1);
	assert_int_equal(rlp_list_end(&b, m1), FM_OK);
	rlp_list_begin(&b, &m1);
	rlp_list_begin(&b, &m2);
	assert_int_equal(rlp_list_end(&b, m2), FM_OK);
	assert_int_equal(rlp_list_end(&b, m1), FM_OK);
	rlp_list_begin(&b, &m1);
	rlp_list_begin(&b, &m2);
	assert_int_equal(rlp_list_end(&b, m2), FM_OK);
	rlp_list_begin(&b, &m3);
	rlp_list_begin(&b, &m4);
	assert_int_equal(rlp_list_end(&b, m4), FM_OK);
	assert_int_equal(rlp_list_end(&b, m3), FM_OK);
	assert_int_equal(rlp_list_end(&b, m1), FM_OK);
	assert_int_equal(rlp_list_end(&b, m0), FM_OK);
	assert_buf_hex(&b, "c7c0c1c0c3c0c1c0");
	buf_reset(&b);
	/* a list whose payload needs a two-byte length */
	memset(big, 'x', sizeof(big));
	rlp_list_begin(&b, &m0);
	assert_int_equal(rlp_put_bytes(&b, big, sizeof(big)), FM_OK);
	assert_int_equal(rlp_list_end(&b, m0), FM_OK);
	assert_int_equal(b.len, 3 + 3 + 1000);
	assert_memory_equal(b.data, "\xf9\x03\xeb\xb9\x03\xe8", 6);
	buf_cleanup(&b);
}

static void test_rlp__decode_round_trip(void **state)
{
	struct buf b = BUF_INIT(1 << 16);
	struct rlp_item top, items[4];
	size_t m, n;
	uint64_t v;

	(void)state;
	rlp_list_begin(&b, &m);
	assert_int_equal(rlp_put_uint(&b, 1024), FM_OK);
	assert_int_equal(rlp_put_bytes(&b, "dog", 3), FM_OK);
	assert_int_equal(rlp_put_uint(&b, 0), FM_OK);
	assert_int_equal(rlp_list_end(&b, m), FM_OK);
	assert_int_equal(rlp_decode(&top, (uint8_t *)b.data, b.len), FM_OK);
	assert_true(top.is_list);
	assert_int_equal(rlp_list_items(items, 4, &n, &top,
					(uint8_t *)b.data), FM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(rlp_item_uint(&v, &items[0], "a"), FM_OK);
	assert_int_equal(v, 1024);
	assert_int_equal(items[1].len, 3);
	assert_memory_equal(items[1].p, "dog", 3);
	assert_int_equal(rlp_item_uint(&v, &items[2], "c"), FM_OK);
	assert_int_equal(v, 0);
	/* fewer slots than items */
	assert_int_equal(rlp_list_items(items, 2, &n, &top,
					(uint8_t *)b.data), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "more than 2 items"));
	buf_cleanup(&b);
}

static void assert_decode_refused(const char *bytes, size_t n,
				  const char *msg_part)
{
	struct rlp_item it;

	assert_int_equal(rlp_decode(&it, (const uint8_t *)bytes, n),
			 FM_EINVAL);
	assert_msg_contains(msg_part);
}

static void test_rlp__decode_refuses_bad_input(void **state)
{
	struct rlp_item it;
	uint64_t v;
	uint8_t w[32];
	size_t n;

	(void)state;
	assert_decode_refused("", 0, "missing item");
	assert_decode_refused("\x83" "do", 3, "claims 3 bytes");
	assert_decode_refused("\xb8", 1, "truncated length");
	assert_decode_refused("\xb8\x05" "abcde", 7, "long form");
	assert_decode_refused("\xb9\x00\x38", 3, "leading zero");
	assert_decode_refused("\x81\x05", 2, "single byte");
	assert_decode_refused("\x83" "dogx", 5, "trailing");
	/* an item that runs past the end of its list */
	assert_int_equal(rlp_decode(&it, (const uint8_t *)"\xc2\x83" "d", 3),
			 FM_OK);
	assert_int_equal(rlp_list_items(&it, 1, &n, &it,
					(const uint8_t *)"\xc2\x83" "d"),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "item at byte 1 claims 3"));
	/* a length that would wrap a 64-bit size */
	assert_decode_refused("\xbf\xff\xff\xff\xff\xff\xff\xff\xff", 9,
			      "claims");
	/* integers with a leading zero, and too wide */
	assert_int_equal(rlp_decode(&it, (const uint8_t *)"\x82\x00\x01", 3),
			 FM_OK);
	assert_int_equal(rlp_item_uint(&v, &it, "nonce"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "nonce: integer with a "
					       "leading zero"));
	assert_int_equal(rlp_item_be32(w, &it, "value"), FM_EINVAL);
	assert_int_equal(rlp_decode(&it, (const uint8_t *)
				    "\x89\x01\x02\x03\x04\x05\x06\x07\x08\x09",
				    10), FM_OK);
	assert_int_equal(rlp_item_uint(&v, &it, "nonce"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "at most 8 bytes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rlp__encodes_strings_and_integers),
		cmocka_unit_test(test_rlp__encodes_nested_lists),
		cmocka_unit_test(test_rlp__decode_round_trip),
		cmocka_unit_test(test_rlp__decode_refuses_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
