/* Keys, EIP-55 addresses, recoverable signatures and EIP-191. Known
 * answers come from the EIPs and from foundry's cast (an independent
 * implementation): anvil's first default key signs "hello". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/sig.h"
#include "core/buf.h"
#include "core/err.h"

#include <string.h>

#define ANVIL0_KEY "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define ANVIL0_ADDR "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

static void test_sig__key_to_checksummed_address(void **state)
{
	struct chain_key k;
	char hex[CHAIN_ADDR_HEX];

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, "0x" ANVIL0_KEY), FM_OK);
	chain_address_to_hex(hex, k.addr);
	assert_string_equal(hex, ANVIL0_ADDR);
	/* key files often end with a newline */
	assert_int_equal(chain_key_from_hex(&k, "  " ANVIL0_KEY "\n"), FM_OK);
	chain_address_to_hex(hex, k.addr);
	assert_string_equal(hex, ANVIL0_ADDR);
	chain_key_wipe(&k);
}

static void test_sig__refuses_bad_keys(void **state)
{
	struct chain_key k;
	uint8_t zero[32] = { 0 }, order[32];

	(void)state;
	assert_int_equal(chain_key_from_priv(&k, zero), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "curve order"));
	/* the curve order itself is out of range */
	assert_int_equal(hex_decode(order, 32, "fffffffffffffffffffffffffffffff"
					       "ebaaedce6af48a03bbfd25e8cd0364141"),
			 FM_OK);
	assert_int_equal(chain_key_from_priv(&k, order), FM_EINVAL);
	assert_int_equal(chain_key_from_hex(&k, "abcd"), FM_EINVAL);
	assert_int_equal(chain_key_from_hex(&k, ANVIL0_KEY "00"), FM_EINVAL);
	assert_int_equal(chain_key_from_hex(&k, "zz0974bec39a17e36ba4a6b4d238ff944b"
						"acb478cbed5efcae784d7bf4f2ff80"),
			 FM_EINVAL);
}

static void test_sig__eip55_vectors(void **state)
{
	static const char *const good[] = {
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	};
	uint8_t a[20], b[20];
	char hex[CHAIN_ADDR_HEX];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(chain_address_parse(a, good[i], "to"), FM_OK);
		chain_address_to_hex(hex, a);
		assert_string_equal(hex, good[i]);
	}
	/* all lower and all upper case carry no checksum */
	assert_int_equal(chain_address_parse(
		a, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", NULL), FM_OK);
	assert_int_equal(chain_address_parse(
		b, "5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", NULL), FM_OK);
	assert_memory_equal(a, b, 20);
	/* one flipped case is a checksum error */
	assert_int_equal(chain_address_parse(
		a, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "to"),
		FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "to: "));
	assert_non_null(strstr(fm_error_msg(), "EIP-55"));
	assert_int_equal(chain_address_parse(a, "0x1234", "to"), FM_EINVAL);
	assert_int_equal(chain_address_parse(
		a, "0xg5aeb6053f3e94c9b9a09f33669435e7ef1beae", "to"), FM_EINVAL);
}

static void test_sig__personal_sign_matches_cast(void **state)
{
	struct chain_key k;
	uint8_t sig[65], addr[20];
	char hex[131];

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, ANVIL0_KEY), FM_OK);
	assert_int_equal(chain_personal_sign(sig, k.priv, "hello", 5), FM_OK);
	hex_encode(hex, sig, 65);
	/* cast wallet sign --private-key <anvil key 0> hello */
	assert_string_equal(hex, "f16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94a"
				 "a72b021125e31fa899cc573c48ea3fe1d4ab61a9db10"
				 "c19032026e3ed2dbccba5a178235ac27f94504311c");
	assert_int_equal(chain_personal_recover(addr, "hello", 5, sig), FM_OK);
	assert_memory_equal(addr, k.addr, 20);
	/* another message recovers another address (or none) */
	if (chain_personal_recover(addr, "hellO", 5, sig) == FM_OK)
		assert_memory_not_equal(addr, k.addr, 20);
	chain_key_wipe(&k);
}

static void test_sig__recover_refuses_malformed(void **state)
{
	struct chain_key k;
	uint8_t sig[65], bad[65], addr[20], h[32] = { 1, 2, 3 };
	static const uint8_t order[32] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
		0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
	};
	int borrow = 0;

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	assert_int_equal(chain_sign_hash(sig, k.priv, h), FM_OK);
	assert_true(sig[64] <= 1);
	assert_int_equal(chain_recover(addr, h, sig), FM_OK);
	assert_memory_equal(addr, k.addr, 20);
	memcpy(bad, sig, 65);
	bad[64] = 29;
	assert_int_equal(chain_recover(addr, h, bad), FM_EAUTH);
	assert_non_null(strstr(fm_error_msg(), "v is 29"));
	/* s' = n - s is the malleable twin: refused */
	memcpy(bad, sig, 65);
	for (int i = 31; i >= 0; i--) {
		int d = order[i] - sig[32 + i] - borrow;

		borrow = d < 0;
		bad[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
	}
	bad[64] ^= 1;
	assert_int_equal(chain_recover(addr, h, bad), FM_EAUTH);
	assert_non_null(strstr(fm_error_msg(), "upper half"));
	/* r = 0 is out of range */
	memcpy(bad, sig, 65);
	memset(bad, 0, 32);
	assert_int_equal(chain_recover(addr, h, bad), FM_EAUTH);
	chain_key_wipe(&k);
}

static void test_sig__generated_keys_differ(void **state)
{
	struct chain_key a, b;

	(void)state;
	assert_int_equal(chain_key_generate(&a), FM_OK);
	assert_int_equal(chain_key_generate(&b), FM_OK);
	assert_memory_not_equal(a.priv, b.priv, 32);
	assert_memory_not_equal(a.addr, b.addr, 20);
	chain_key_wipe(&a);
	chain_key_wipe(&b);
	assert_true(chain_address_is_zero(a.addr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sig__key_to_checksummed_address),
		cmocka_unit_test(test_sig__refuses_bad_keys),
		cmocka_unit_test(test_sig__eip55_vectors),
		cmocka_unit_test(test_sig__personal_sign_matches_cast),
		cmocka_unit_test(test_sig__recover_refuses_malformed),
		cmocka_unit_test(test_sig__generated_keys_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
