/* Splitting a round's pool by contribution: exact wei, never above the
 * pool, free riders held to the floor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "market/reward.h"
#include "market/score_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct chain_u256 wei(const char *dec)
{
	struct chain_u256 v;

	assert_int_equal(chain_u256_parse(&v, dec, NULL), FM_OK);
	return v;
}

static void assert_wei(const struct chain_u256 *v, const char *dec)
{
	char out[CHAIN_U256_DEC_MAX];

	chain_u256_to_dec(out, sizeof(out), v);
	assert_string_equal(out, dec);
}

static void split(struct chain_u256 *amounts, const char *pool,
		  double floor_share, const double *phi, size_t n)
{
	struct chain_u256 p = wei(pool);
	uint64_t w[16];

	assert_int_equal(reward_weights(w, phi, n), FM_OK);
	assert_int_equal(reward_split(amounts, &p,
				      reward_floor_ppm(floor_share), w, n),
			 FM_OK);
}

static void test_reward__floor_and_proportional_rest(void **state)
{
	static const double phi[] = { 0.03, 0.01, 0, -0.02 };
	struct chain_u256 a[4];

	(void)state;
	split(a, "1000000000000000000", 0.2, phi, 4);
	assert_wei(&a[0], "650000000000000000");
	assert_wei(&a[1], "250000000000000000");
	/* the free rider and the harmful update get the floor only */
	assert_wei(&a[2], "50000000000000000");
	assert_wei(&a[3], "50000000000000000");
}

static void test_reward__nothing_positive_pays_floors_only(void **state)
{
	static const double phi[] = { -0.1, 0, -0.3 };
	struct chain_u256 a[3];

	(void)state;
	split(a, "900", 0.5, phi, 3);
	for (int i = 0; i < 3; i++)
		assert_wei(&a[i], "150");
	split(a, "900", 0, phi, 3);
	for (int i = 0; i < 3; i++)
		assert_wei(&a[i], "0");
}

static void test_reward__never_above_the_pool(void **state)
{
	struct chain_u256 a[16], sum, pool;
	double phi[16];
	char dec[CHAIN_U256_DEC_MAX];

	(void)state;
	srand(7);
	for (int trial = 0; trial < 500; trial++) {
		size_t n = 1 + (size_t)rand() % 16;
		uint64_t p = 1 + (uint64_t)rand() * (uint64_t)rand();

		for (size_t i = 0; i < n; i++)
			phi[i] = (double)(rand() % 2001 - 1000) / 997.0;
		snprintf(dec, sizeof(dec), "%llu", (unsigned long long)p);
		split(a, dec, (double)(rand() % 101) / 100.0, phi, n);
		sum = chain_u256_from_u64(0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(chain_u256_add(&sum, &sum, &a[i]),
					 FM_OK);
		pool = wei(dec);
		assert_true(chain_u256_cmp(&sum, &pool) <= 0);
		/* at most one wei per result lost to rounding, plus the
		 * rounding of weights when some score is positive */
		{
			struct chain_u256 left;
			uint64_t l = 0;

			assert_int_equal(chain_u256_sub(&left, &pool, &sum),
					 FM_OK);
			if (!chain_u256_to_u64(&l, &left) && p > 1000000) {
				int any = 0;

				for (size_t i = 0; i < n; i++)
					any |= phi[i] > 0;
				if (any)
					assert_true(l <= p / 100000 + n + 1);
			}
		}
	}
}

static void test_reward__recomputed_from_the_report_numbers(void **state)
{
	static const double phi[] = { 0.0123456789, 0.0000001, 0.5 };
	struct chain_u256 a[3], b[3];

	(void)state;
	/* the same scores give the same wei, whatever computes them */
	split(a, "123456789012345678901234567890", 0.1, phi, 3);
	split(b, "123456789012345678901234567890", 0.1, phi, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(chain_u256_cmp(&a[i], &b[i]), 0);
	/* a huge pool does not overflow */
	split(a, "57896044618658097711785492504343953926634992332820282019728"
		 "792003956564819967",
	      0.5, phi, 3);
}

static void test_reward__bad_input(void **state)
{
	double phi[2] = { NAN, 1 };
	uint64_t w[2] = { REWARD_PPM + 1, 0 };
	struct chain_u256 a[2], p = wei("10");

	(void)state;
	assert_int_equal(reward_weights(w, phi, 2), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "score 1 is not a finite"));
	w[0] = REWARD_PPM + 1;
	assert_int_equal(reward_split(a, &p, 0, w, 2), FM_EINVAL);
	w[0] = 1;
	assert_int_equal(reward_split(a, &p, REWARD_PPM + 1, w, 2), FM_EINVAL);
	assert_int_equal(reward_split(a, &p, 0, w, 0), FM_EINVAL);
	assert_int_equal(reward_floor_ppm(-1), 0);
	assert_int_equal(reward_floor_ppm(2), REWARD_PPM);
	assert_int_equal(reward_floor_ppm(0.25), 250000);
}

static json_t *report_of(void)
{
	json_t *r = json_pack(
		"{s:s, s:s, s:i, s:s, s:f, s:[{s:s, s:f}, {s:s, s:f},"
		" {s:s, s:f}]}",
		"format", SCORE_REPORT_FORMAT, "task_id",
		"0x00000000000000000000000000000000000000000000000000000000"
		"000000aa",
		"round", 3, "pool_wei", "500000000000000000", "floor_share",
		0.2, "results", "result_id", "r-a", "phi", 0.04, "result_id",
		"r-b", "phi", 0.01, "result_id", "r-c", "phi", -0.03);

	assert_non_null(r);
	assert_int_equal(score_report_amounts(r), FM_OK);
	return r;
}

static void expect_refused(const json_t *r, const struct score_expect *e,
			   const char *needle)
{
	json_t *amounts = NULL;

	assert_int_equal(score_report_verify(r, e, &amounts),
			 FM_EUNPROCESSABLE);
	if (!strstr(fm_error_msg(), needle))
		fail_msg("\"%s\" does not say \"%s\"", fm_error_msg(),
			 needle);
	assert_null(amounts);
}

static void test_reward__report_verifies_its_own_amounts(void **state)
{
	json_t *r = report_of(), *ids = json_pack("[s, s, s]", "r-c", "r-a",
						  "r-b");
	json_t *amounts = NULL, *x;
	struct score_expect e = {
		"0x00000000000000000000000000000000000000000000000000000000"
		"000000aa",
		3, "500000000000000000", 0.2, ids
	};

	(void)state;
	assert_int_equal(score_report_verify(r, &e, &amounts), FM_OK);
	assert_string_equal(json_string_value(json_object_get(amounts, "r-a")),
			    "353333333333333333");
	assert_string_equal(json_string_value(json_object_get(amounts, "r-b")),
			    "113333333333333333");
	assert_string_equal(json_string_value(json_object_get(amounts, "r-c")),
			    "33333333333333333");
	json_decref(amounts);
	/* a stated amount its scores do not give */
	x = json_array_get(json_object_get(r, "results"), 1);
	json_object_set_new(x, "amount_wei", json_string("113333333333333334"));
	expect_refused(r, &e, "results[1].amount_wei: its scores give "
			      "113333333333333333");
	json_decref(r);
	/* another round, task, pool; a result not accepted; a missing one */
	r = report_of();
	e.round = 4;
	expect_refused(r, &e, "round: expected 4");
	e.round = 3;
	e.pool_wei = "1";
	expect_refused(r, &e, "pool_wei: expected 1");
	e.pool_wei = "500000000000000000";
	json_array_set_new(ids, 0, json_string("r-z"));
	expect_refused(r, &e, "results[2] (r-c) is not one of");
	json_array_remove(ids, 0);
	expect_refused(r, &e, "scores 3 results, the round accepted 2");
	json_object_set_new(r, "format", json_string("other"));
	expect_refused(r, &e, "format: expected");
	json_decref(r);
	json_decref(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reward__floor_and_proportional_rest),
		cmocka_unit_test(test_reward__nothing_positive_pays_floors_only),
		cmocka_unit_test(test_reward__never_above_the_pool),
		cmocka_unit_test(test_reward__recomputed_from_the_report_numbers),
		cmocka_unit_test(test_reward__bad_input),
		cmocka_unit_test(test_reward__report_verifies_its_own_amounts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
