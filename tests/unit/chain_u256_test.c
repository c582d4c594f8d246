/* 256-bit amounts: parsing with units, checked arithmetic, printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/u256.h"
#include "core/err.h"

#include <string.h>

static void assert_parses_to(const char *text, const char *dec)
{
	struct chain_u256 v;
	char out[CHAIN_U256_DEC_MAX];

	assert_int_equal(chain_u256_parse(&v, text, "amount"), FM_OK);
	chain_u256_to_dec(out, sizeof(out), &v);
	assert_string_equal(out, dec);
}

static void assert_refused(const char *text, const char *msg_part)
{
	struct chain_u256 v = chain_u256_from_u64(77);

	assert_int_equal(chain_u256_parse(&v, text, "amount"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), msg_part));
	assert_int_equal(v.w[0], 77); /* unchanged */
}

static void test_u256__parse_units(void **state)
{
	(void)state;
	assert_parses_to("0", "0");
	assert_parses_to("1000", "1000");
	assert_parses_to("0x3e8", "1000");
	assert_parses_to("0X00ff", "255");
	assert_parses_to("1ether", "1000000000000000000");
	assert_parses_to("0.5 ether", "500000000000000000");
	assert_parses_to("2gwei", "2000000000");
	assert_parses_to("1.000000001 gwei", "1000000001");
	assert_parses_to("7 wei", "7");
	assert_parses_to("115792089237316195423570985008687907853269984665640"
			 "564039457584007913129639935",
			 "115792089237316195423570985008687907853269984665640"
			 "564039457584007913129639935");
}

static void test_u256__parse_refuses_bad_text(void **state)
{
	(void)state;
	assert_refused("", "not a number");
	assert_refused("-1", "not a number");
	assert_refused("1.5", "fraction digits");
	assert_refused("1.5 wei", "fraction digits");
	assert_refused("0.0000000001 gwei", "fraction digits");
	assert_refused("1 dollar", "unknown unit");
	assert_refused("1.2.3 ether", "two decimal points");
	assert_refused("1. ether", "no digits after");
	assert_refused("0x", "no digits");
	assert_refused("0x12g", "is not hex");
	assert_refused("0x1" "0000000000000000000000000000000000000000000000000"
		       "000000000000000", "256 bits");
	assert_refused("115792089237316195423570985008687907853269984665640564"
		       "039457584007913129639936", "256 bits");
}

static void test_u256__checked_arithmetic(void **state)
{
	struct chain_u256 max, one = chain_u256_from_u64(1), r;
	uint8_t be[32];
	char out[CHAIN_U256_DEC_MAX];
	uint64_t rem;

	(void)state;
	memset(be, 0xff, sizeof(be));
	chain_u256_from_be(&max, be);
	assert_int_equal(chain_u256_add(&r, &max, &one), FM_EINVAL);
	assert_int_equal(chain_u256_mul_u64(&r, &max, 2), FM_EINVAL);
	r = chain_u256_from_u64(0);
	assert_int_equal(chain_u256_sub(&r, &r, &one), FM_EINVAL);
	/* carries across limbs */
	r = chain_u256_from_u64(UINT64_MAX);
	assert_int_equal(chain_u256_add(&r, &r, &one), FM_OK);
	assert_int_equal(r.w[0], 0);
	assert_int_equal(r.w[1], 1);
	assert_int_equal(chain_u256_sub(&r, &r, &one), FM_OK);
	assert_int_equal(r.w[0], UINT64_MAX);
	assert_int_equal(r.w[1], 0);
	/* 10^18 * 10^18 needs 120 bits */
	assert_int_equal(chain_u256_parse(&r, "1 ether", NULL), FM_OK);
	assert_int_equal(chain_u256_mul_u64(&r, &r, 1000000000000000000ULL),
			 FM_OK);
	chain_u256_to_dec(out, sizeof(out), &r);
	assert_string_equal(out, "1000000000000000000000000000000000000");
	chain_u256_div_u64(&r, &rem, &r, 7);
	chain_u256_to_dec(out, sizeof(out), &r);
	assert_string_equal(out, "142857142857142857142857142857142857");
	assert_int_equal(rem, 1);
	assert_int_equal(chain_u256_cmp(&max, &one), 1);
	assert_int_equal(chain_u256_cmp(&one, &max), -1);
	assert_int_equal(chain_u256_cmp(&one, &one), 0);
}

static void test_u256__hex_round_trip(void **state)
{
	struct chain_u256 v, w;
	uint8_t be[32], back[32];
	char hex[67];
	uint64_t small;

	(void)state;
	for (int i = 0; i < 32; i++)
		be[i] = (uint8_t)(i * 29 + 1);
	chain_u256_from_be(&v, be);
	chain_u256_to_be(back, &v);
	assert_memory_equal(be, back, 32);
	chain_u256_to_hex(hex, &v);
	assert_int_equal(chain_u256_from_quantity(&w, hex), FM_OK);
	assert_int_equal(chain_u256_cmp(&v, &w), 0);
	v = chain_u256_from_u64(0);
	chain_u256_to_hex(hex, &v);
	assert_string_equal(hex, "0x0");
	v = chain_u256_from_u64(0x1a);
	chain_u256_to_hex(hex, &v);
	assert_string_equal(hex, "0x1a");
	assert_int_equal(chain_u256_from_quantity(&w, "26"), FM_EINVAL);
	assert_int_equal(chain_u256_to_u64(&small, &v), FM_OK);
	assert_int_equal(small, 26);
	chain_u256_from_be(&v, be);
	assert_int_equal(chain_u256_to_u64(&small, &v), FM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u256__parse_units),
		cmocka_unit_test(test_u256__parse_refuses_bad_text),
		cmocka_unit_test(test_u256__checked_arithmetic),
		cmocka_unit_test(test_u256__hex_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
