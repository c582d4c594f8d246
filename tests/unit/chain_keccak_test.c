/* Keccak-256 against known answers (cast keccak for the block edges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/keccak.h"
#include "core/buf.h"

#include <string.h>

static void assert_keccak(const void *p, size_t n, const char *want)
{
	uint8_t h[32];
	char hex[65];

	chain_keccak256(h, p, n);
	hex_encode(hex, h, 32);
	assert_string_equal(hex, want);
}

static void test_keccak__empty_and_short(void **state)
{
	(void)state;
	assert_keccak("", 0, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b"
			     "7bfad8045d85a470");
	assert_keccak("abc", 3, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a0"
				"36ec44f58fa12d6c45");
	assert_keccak("hello", 5, "1c8aff950685c2ed4bc3174f3472287b56d9517b9c94"
				  "8127319a09a7a36deac8");
}

static void test_keccak__block_edges(void **state)
{
	/* the rate is 136 bytes: one short, exact, one over, two blocks */
	static const struct {
		size_t n;
		const char *hex;
	} v[] = {
		{ 135, "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef4"
		       "54919cf446" },
		{ 136, "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb"
		       "4b60aa386e" },
		{ 137, "d869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd4"
		       "84f1915f39" },
		{ 272, "cf7fcd4f705ee749930d19ca84561a9bf62516bd90a471545fa2f4"
		       "9fdc7e63c8" },
	};
	char a[300];

	(void)state;
	memset(a, 'a', sizeof(a));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_keccak(a, v[i].n, v[i].hex);
}

static void test_keccak__incremental_equals_one_shot(void **state)
{
	uint8_t data[700], one[32], inc[32];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + 7);
	for (size_t n = 0; n < sizeof(data); n += 37) {
		chain_keccak256(one, data, n);
		for (size_t split = 0; split <= n; split += 11) {
			struct chain_keccak k;

			chain_keccak_init(&k);
			/* uneven pieces hit both the lane and the byte path */
			chain_keccak_update(&k, data, split);
			chain_keccak_update(&k, data + split, (n - split) / 2);
			chain_keccak_update(&k, data + split + (n - split) / 2,
					    n - split - (n - split) / 2);
			chain_keccak_final(&k, inc);
			assert_memory_equal(one, inc, 32);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keccak__empty_and_short),
		cmocka_unit_test(test_keccak__block_edges),
		cmocka_unit_test(test_keccak__incremental_equals_one_shot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
