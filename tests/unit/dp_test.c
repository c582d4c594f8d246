/* Differential privacy: random source, clipping, noise, DP-FedAvg and the
 * RDP accountant, the accountant checked against published reference
 * values and against direct numerical integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void assert_close(double got, double want, double rtol)
{
	if (fabs(got - want) > rtol * fabs(want))
		fail_msg("got %.12g, want %.12g (rtol %g)", got, want, rtol);
}

static void test_dp__random_seed_differs(void **state)
{
	uint64_t a = 0, b = 0;

	(void)state;
	assert_int_equal(ml_dp_random_seed(&a), FM_OK);
	assert_int_equal(ml_dp_random_seed(&b), FM_OK);
	assert_true(a != b);
}

/* -------------------------------------------------- clipping and noise */

static void test_dp__clip_bounds_norm_and_keeps_direction(void **state)
{
	float v[4] = { 3, 0, -4, 0 }, w[2] = { 0.3f, 0.4f };
	double before;

	(void)state;
	before = ml_dp_clip(v, 4, 1.0);
	assert_close(before, 5.0, 1e-12);
	assert_close(ml_dp_norm(v, 4), 1.0, 1e-6);
	assert_close(v[0], 0.6, 1e-6);
	assert_close(v[2], -0.8, 1e-6);
	/* a shorter vector stays as it is */
	before = ml_dp_clip(w, 2, 1.0);
	assert_close(before, 0.5, 1e-6);
	assert_true(w[0] == 0.3f && w[1] == 0.4f);
}

static void test_dp__noise_is_seeded_and_scaled(void **state)
{
	enum { N = 100000 };
	float *a = calloc(N, sizeof(float)), *b = calloc(N, sizeof(float));
	struct ml_rng r1, r2;
	double s2 = 0;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	ml_rng_seed(&r1, 5);
	ml_rng_seed(&r2, 5);
	ml_dp_add_noise(a, N, 0.25, &r1);
	ml_dp_add_noise(b, N, 0.25, &r2);
	assert_memory_equal(a, b, N * sizeof(float));
	for (int i = 0; i < N; i++)
		s2 += (double)a[i] * a[i];
	assert_close(sqrt(s2 / N), 0.25, 0.01);
	free(a);
	free(b);
}

static void test_dp__fedavg_clips_then_averages(void **state)
{
	/* norms 5, 0.5 and 10; clip 1 */
	float d0[2] = { 3, 4 }, d1[2] = { 0.3f, -0.4f }, d2[2] = { 0, -10 };
	const float *d[3] = { d0, d1, d2 };
	float out[2];
	struct ml_rng r;
	size_t nclipped = 0;

	(void)state;
	ml_rng_seed(&r, 1);
	assert_int_equal(ml_dp_fedavg(out, d, 3, 2, 1.0, 0.0, 3, &r, &nclipped),
			 FM_OK);
	assert_int_equal(nclipped, 2);
	/* (0.6, 0.8) + (0.3, -0.4) + (0, -1), over 3 */
	assert_close(out[0], 0.9 / 3, 1e-6);
	assert_close(out[1], -0.6 / 3, 1e-6);
	/* a fixed denominator (expected participants) instead of k */
	assert_int_equal(ml_dp_fedavg(out, d, 3, 2, 1.0, 0.0, 6, &r, NULL),
			 FM_OK);
	assert_close(out[0], 0.9 / 6, 1e-6);
	assert_close(out[1], -0.6 / 6, 1e-6);
	/* the inputs are untouched */
	assert_true(d0[0] == 3 && d0[1] == 4 && d2[1] == -10);
}

static void test_dp__fedavg_noise_has_stddev_sigma_clip_over_k(void **state)
{
	enum { N = 50000, K = 4 };
	float *z = calloc(N, sizeof(float)), *out = malloc(N * sizeof(float));
	const float *d[K] = { z, z, z, z };
	struct ml_rng r;
	double s2 = 0;

	(void)state;
	assert_non_null(z);
	assert_non_null(out);
	ml_rng_seed(&r, 3);
	assert_int_equal(ml_dp_fedavg(out, d, K, N, 2.0, 1.5, K, &r, NULL),
			 FM_OK);
	for (int i = 0; i < N; i++)
		s2 += (double)out[i] * out[i];
	assert_close(sqrt(s2 / N), 1.5 * 2.0 / K, 0.02);
	free(z);
	free(out);
}

static void test_dp__fedavg_rejects_bad_input(void **state)
{
	float ok[2] = { 1, 1 }, bad[2] = { 1, NAN }, out[2] = { 7, 7 };
	const float *d[2] = { ok, bad };
	struct ml_rng r;

	(void)state;
	ml_rng_seed(&r, 1);
	assert_int_equal(ml_dp_fedavg(out, d, 2, 2, 1.0, 1.0, 2, &r, NULL),
			 FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "update 1: coordinate 1"));
	assert_int_equal(ml_dp_fedavg(out, d, 1, 2, 0.0, 1.0, 1, &r, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "clip"));
	assert_int_equal(ml_dp_fedavg(out, d, 1, 2, 1.0, -1.0, 1, &r, NULL),
			 FM_EINVAL);
	assert_int_equal(ml_dp_fedavg(out, d, 1, 2, INFINITY, 1.0, 1, &r, NULL),
			 FM_EINVAL);
	assert_int_equal(ml_dp_fedavg(out, d, 0, 2, 1.0, 1.0, 1, &r, NULL),
			 FM_EINVAL);
	assert_int_equal(ml_dp_fedavg(out, d, 1, 2, 1.0, 1.0, 0, &r, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "denominator"));
}

/* --------------------------------------------------------- accountant */

/* Reference: google/differential-privacy, python/dp_accounting/
 * dp_accounting/rdp/rdp_privacy_accountant_test.py,
 * test_compute_rdp_poisson_sampled_gaussian: q = 0.01, sigma = 2.5,
 * 50 steps. Only its integer orders are used: for fractional orders that
 * library now sums the series' absolute values (an upper bound), while
 * this accountant, like TF Privacy and Opacus, sums the exact signed
 * series of Mironov et al.; that one is checked against Opacus and
 * against numerical integration below. */
static void test_dp__rdp_matches_dp_accounting_reference(void **state)
{
	const double orders[] = { 5, 50, 100 };
	const double want[] = { 2.18075656e-03, 2.38460375e-02,
				1.67416308e02 };

	(void)state;
	for (size_t i = 0; i < 3; i++)
		assert_close(50 * ml_dp_rdp_sgm(0.01, 2.5, orders[i]), want[i],
			     1e-4);
	assert_true(isinf(ml_dp_rdp_sgm(0.01, 2.5, INFINITY)));
	assert_true(isinf(ml_dp_rdp_sgm(0.01, 0.0, 2.0)));
	assert_true(ml_dp_rdp_sgm(0.0, 1.0, 2.0) == 0.0);
	assert_true(isnan(ml_dp_rdp_sgm(1.5, 1.0, 2.0)));
	assert_true(isnan(ml_dp_rdp_sgm(0.5, 1.0, 1.0)));
}

/* Reference: pytorch/opacus, opacus/tests/accountants_test.py,
 * test_rdp_accountant: sigma = 1.5, q = 0.04, int(90 / 0.04) = 2250
 * steps, delta = 1e-5, Opacus' default orders: eps = 7.32911117143
 * (assertAlmostEqual, 7 places). Its best order is fractional (3.9). */
static void test_dp__epsilon_matches_opacus_reference(void **state)
{
	double orders[160], eps, order;
	struct ml_dp_acct a;
	size_t n = 0;

	(void)state;
	for (int x = 1; x < 100; x++)
		orders[n++] = 1 + x / 10.0;
	for (int x = 12; x < 64; x++)
		orders[n++] = x;
	assert_int_equal(ml_dp_acct_init_orders(&a, orders, n), FM_OK);
	assert_int_equal(ml_dp_acct_add(&a, 0.04, 1.5, 2250), FM_OK);
	assert_int_equal(ml_dp_acct_epsilon(&a, 1e-5, &eps, &order), FM_OK);
	assert_true(fabs(eps - 7.32911117143) < 5e-8);
	assert_close(order, 3.9, 1e-12);
}

/* Reference: dp_accounting rdp_privacy_accountant_test.py,
 * test_compute_epsilon_delta_pure_dp: orders 2..32, RDP 1.1 at each,
 * delta 1e-5: eps = 1.32783806176 at order 32. */
static void test_dp__epsilon_conversion_pure_dp_reference(void **state)
{
	double orders[31], rdp[31], eps, order;

	(void)state;
	for (int i = 0; i < 31; i++) {
		orders[i] = 2 + i;
		rdp[i] = 1.1;
	}
	assert_int_equal(ml_dp_eps_from_rdp(&eps, &order, orders, rdp, 31,
					    1e-5), FM_OK);
	assert_true(fabs(eps - 1.32783806176) < 5e-8);
	assert_true(order == 32);
}

/* Reference: dp_accounting rdp_privacy_accountant_test.py,
 * test_compute_epsilon_delta_gaussian: the Gaussian mechanism (q = 1)
 * with noise multiplier 4.530877117 is exactly (1, 1e-6)-DP when the
 * orders run from 1 to 100 by 0.001. */
static void test_dp__epsilon_of_gaussian_reference(void **state)
{
	enum { N = 99000 };
	double *orders = malloc(N * sizeof(double));
	double *rdp = malloc(N * sizeof(double));
	double eps;

	(void)state;
	assert_non_null(orders);
	assert_non_null(rdp);
	for (int i = 0; i < N; i++) {
		orders[i] = 0.001 * (1000 + i);
		rdp[i] = orders[i] > 1.0 ?
			 ml_dp_rdp_sgm(1.0, 4.530877117, orders[i]) : NAN;
	}
	assert_int_equal(ml_dp_eps_from_rdp(&eps, NULL, orders, rdp, N, 1e-6),
			 FM_OK);
	assert_true(fabs(eps - 1.0) < 5e-8);
	free(orders);
	free(rdp);
}

/* A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q exp((2z - 1) /
 * (2 sigma^2)))^alpha], integrated with Simpson's rule: an oracle
 * independent of the series, for integer and fractional orders. */
static double rdp_by_integration(double q, double sigma, double alpha)
{
	const double lo = -40 * sigma - 40, hi = 40 * sigma + 40;
	const int n = 400000;
	double h = (hi - lo) / n, s = 0;

	for (int i = 0; i <= n; i++) {
		double z = lo + i * h;
		double f = exp(-z * z / (2 * sigma * sigma)) /
			   (sigma * sqrt(2 * M_PI)) *
			   pow((1 - q) + q * exp((2 * z - 1) /
						 (2 * sigma * sigma)), alpha);

		s += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
	}
	return log(s * h / 3) / (alpha - 1);
}

static void test_dp__rdp_matches_numerical_integration(void **state)
{
	const struct {
		double q, sigma, alpha;
	} c[] = {
		{ 0.01, 2.5, 1.5 },  { 0.01, 2.5, 2.5 }, { 0.04, 1.5, 3.9 },
		{ 0.1, 1.0, 2.0 },   { 0.1, 1.0, 7.3 },  { 0.5, 2.0, 12.0 },
		{ 0.2, 0.8, 4.25 },  { 0.001, 0.7, 20 }, { 0.3, 3.0, 1.1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		assert_close(ml_dp_rdp_sgm(c[i].q, c[i].sigma, c[i].alpha),
			     rdp_by_integration(c[i].q, c[i].sigma,
						c[i].alpha), 1e-6);
}

static void test_dp__epsilon_grows_with_rounds_and_shrinks_with_noise(
	void **state)
{
	struct ml_dp_acct a;
	double prev = 0, eps, e_low, e_high;

	(void)state;
	ml_dp_acct_init(&a);
	for (int round = 0; round < 5; round++) {
		assert_int_equal(ml_dp_acct_add(&a, 0.1, 1.0, 10), FM_OK);
		assert_int_equal(ml_dp_acct_epsilon(&a, 1e-5, &eps, NULL),
				 FM_OK);
		assert_true(eps > prev);
		prev = eps;
	}
	ml_dp_acct_init(&a);
	assert_int_equal(ml_dp_acct_add(&a, 0.1, 0.8, 100), FM_OK);
	assert_int_equal(ml_dp_acct_epsilon(&a, 1e-5, &e_low, NULL), FM_OK);
	ml_dp_acct_init(&a);
	assert_int_equal(ml_dp_acct_add(&a, 0.1, 2.0, 100), FM_OK);
	assert_int_equal(ml_dp_acct_epsilon(&a, 1e-5, &e_high, NULL), FM_OK);
	assert_true(e_high < e_low);
	/* no rounds: no privacy spent; no noise: none left */
	ml_dp_acct_init(&a);
	assert_int_equal(ml_dp_acct_epsilon(&a, 1e-5, &eps, NULL), FM_OK);
	assert_true(eps == 0.0);
	assert_int_equal(ml_dp_acct_add(&a, 0.1, 0.0, 1), FM_OK);
	assert_int_equal(ml_dp_acct_epsilon(&a, 1e-5, &eps, NULL), FM_OK);
	assert_true(isinf(eps));
}

static void test_dp__accountant_rejects_bad_input(void **state)
{
	struct ml_dp_acct a;
	double eps, bad_order = 1.0;

	(void)state;
	ml_dp_acct_init(&a);
	assert_int_equal(ml_dp_acct_add(&a, 1.5, 1.0, 1), FM_EINVAL);
	assert_int_equal(ml_dp_acct_add(&a, 0.1, -1.0, 1), FM_EINVAL);
	assert_int_equal(ml_dp_acct_add(&a, 0.1, NAN, 1), FM_EINVAL);
	assert_int_equal(ml_dp_acct_add(&a, 0.1, 1.0, -1), FM_EINVAL);
	assert_int_equal(ml_dp_acct_epsilon(&a, 0.0, &eps, NULL), FM_EINVAL);
	assert_int_equal(ml_dp_acct_epsilon(&a, 1.0, &eps, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "delta"));
	assert_int_equal(ml_dp_acct_init_orders(&a, &bad_order, 1),
			 FM_EINVAL);
	assert_int_equal(ml_dp_acct_init_orders(&a, &bad_order, 0),
			 FM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dp__random_seed_differs),
		cmocka_unit_test(test_dp__clip_bounds_norm_and_keeps_direction),
		cmocka_unit_test(test_dp__noise_is_seeded_and_scaled),
		cmocka_unit_test(test_dp__fedavg_clips_then_averages),
		cmocka_unit_test(
			test_dp__fedavg_noise_has_stddev_sigma_clip_over_k),
		cmocka_unit_test(test_dp__fedavg_rejects_bad_input),
		cmocka_unit_test(test_dp__rdp_matches_dp_accounting_reference),
		cmocka_unit_test(test_dp__epsilon_matches_opacus_reference),
		cmocka_unit_test(
			test_dp__epsilon_conversion_pure_dp_reference),
		cmocka_unit_test(test_dp__epsilon_of_gaussian_reference),
		cmocka_unit_test(test_dp__rdp_matches_numerical_integration),
		cmocka_unit_test(
		  test_dp__epsilon_grows_with_rounds_and_shrinks_with_noise),
		cmocka_unit_test(test_dp__accountant_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
