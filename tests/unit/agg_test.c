/* Aggregation rules on hand-made vectors with known answers, and the
 * selection-based rules against a full-sort oracle on random inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/agg.h"
#include "engine/ml.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void assert_near(double got, double want, double tol)
{
	if (fabs(got - want) > tol)
		fail_msg("got %.9g, want %.9g (tol %g)", got, want, tol);
}

static struct ml_agg_opts opts(enum ml_agg_rule rule)
{
	struct ml_agg_opts o = ML_AGG_OPTS_INIT;

	o.rule = rule;
	return o;
}

/* k random vectors of n floats; ptr[i] points at row i of one block. */
static float *random_updates(const float **ptr, size_t k, size_t n,
			     uint64_t seed)
{
	float *m = malloc(k * n * sizeof(float));
	struct ml_rng r;

	assert_non_null(m);
	ml_rng_seed(&r, seed);
	for (size_t i = 0; i < k * n; i++)
		m[i] = (float)ml_rng_normal(&r);
	for (size_t i = 0; i < k; i++)
		ptr[i] = m + i * n;
	return m;
}

static int cmp_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- fedavg */

static void test_agg__fedavg_of_identical_models_is_the_model(void **state)
{
	enum { K = 7, N = 20000 };
	const float *upd[K];
	const double w[K] = { 3, 7, 11, 1, 600, 0.5, 13 };
	float *one = malloc(N * sizeof(float));
	float *out = malloc(N * sizeof(float));
	const float *ref[1];
	struct ml_agg_opts o = opts(ML_AGG_FEDAVG);
	float *m;

	(void)state;
	m = random_updates(ref, 1, N, 11);
	assert_non_null(one);
	assert_non_null(out);
	memcpy(one, m, N * sizeof(float));
	for (int i = 0; i < K; i++)
		upd[i] = one;
	assert_int_equal(ml_agg_combine(out, upd, w, K, N, &o, NULL, NULL),
			 FM_OK);
	assert_memory_equal(out, one, N * sizeof(float));
	o.uniform = 1;
	assert_int_equal(ml_agg_combine(out, upd, w, K, N, &o, NULL, NULL),
			 FM_OK);
	assert_memory_equal(out, one, N * sizeof(float));
	free(m);
	free(one);
	free(out);
}

static void test_agg__fedavg_weighted_exact(void **state)
{
	float a[3] = { 1, 2, -4 }, b[3] = { 3, 6, 4 }, out[3];
	const float *upd[2] = { a, b };
	const double w[2] = { 1, 3 };
	struct ml_agg_opts o = opts(ML_AGG_FEDAVG);

	(void)state;
	assert_int_equal(ml_agg_combine(out, upd, w, 2, 3, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 2.5f && out[1] == 5.0f && out[2] == 2.0f);
	o.uniform = 1;
	assert_int_equal(ml_agg_combine(out, upd, w, 2, 3, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 2.0f && out[1] == 4.0f && out[2] == 0.0f);
	/* no weights: uniform */
	o.uniform = 0;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 2, 3, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 2.0f && out[1] == 4.0f && out[2] == 0.0f);
}

/* Across block boundaries and update groups, against a plain loop. */
static void test_agg__fedavg_matches_naive_sum(void **state)
{
	enum { K = 9, N = 3 * 8192 + 17 };
	const float *upd[K];
	double w[K], total = 0;
	float *out = malloc(N * sizeof(float));
	struct ml_agg_opts o = opts(ML_AGG_FEDAVG);
	float *m = random_updates(upd, K, N, 5);

	(void)state;
	assert_non_null(out);
	for (int i = 0; i < K; i++)
		total += w[i] = 1 + i * i;
	assert_int_equal(ml_agg_combine(out, upd, w, K, N, &o, NULL, NULL),
			 FM_OK);
	for (size_t j = 0; j < N; j++) {
		double s = 0, mag = 0;

		for (int i = 0; i < K; i++) {
			s += w[i] / total * upd[i][j];
			mag += fabs(w[i] / total * upd[i][j]);
		}
		/* one float rounding of a double sum */
		assert_near(out[j], s, 0x1p-24 * mag + 1e-30);
	}
	free(m);
	free(out);
}

/* Splitting the coordinates over threads changes no bit, and a NaN in a
 * later thread's share is still found. */
static void test_agg__threads_give_the_same_sum(void **state)
{
	enum { K = 6, N = 5 * 32768 + 333 }; /* 3 blocks, 4 shares */
	const float *upd[K];
	double w[K] = { 1, 2, 3, 4, 5, 6 };
	float *m = random_updates(upd, K, N, 17);
	float *one = malloc(N * sizeof(float));
	float *many = malloc(N * sizeof(float));

	(void)state;
	assert_non_null(one);
	assert_non_null(many);
	ml_agg_set_threads(1);
	assert_int_equal(ml_agg_wsum(one, upd, w, K, N), FM_OK);
	for (int t = 2; t <= 4; t++) {
		ml_agg_set_threads(t);
		assert_int_equal(ml_agg_wsum(many, upd, w, K, N), FM_OK);
		assert_memory_equal(one, many, N * sizeof(float));
	}
	m[4 * N + N - 5] = NAN;
	assert_int_equal(ml_agg_wsum(many, upd, w, K, N), FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "update 4"));
	ml_agg_set_threads(1);
	free(m);
	free(one);
	free(many);
}

static void test_agg__wsum_uses_weights_as_given(void **state)
{
	float a[2] = { 1, 2 }, b[2] = { 10, 20 }, out[2];
	const float *upd[2] = { a, b };
	const double w[2] = { 2, -0.5 };
	const double huge[2] = { 1e38, 1e38 };
	const double bad[2] = { 1, NAN };

	(void)state;
	assert_int_equal(ml_agg_wsum(out, upd, w, 2, 2), FM_OK);
	assert_true(out[0] == -3.0f && out[1] == -6.0f);
	assert_int_equal(ml_agg_wsum(out, upd, huge, 2, 2),
			 FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "float range"));
	assert_int_equal(ml_agg_wsum(out, upd, bad, 2, 2), FM_EINVAL);
}

/* -------------------------------------------------------------- median */

static void test_agg__median_odd_and_even(void **state)
{
	/* columns: {5, 1, 3} -> 3; {-1, -1, 8} -> -1 */
	float a[2] = { 5, -1 }, b[2] = { 1, 8 }, c[2] = { 3, -1 },
	      d[2] = { 100, 0 }, out[2];
	const float *upd[4] = { a, b, c, d };
	struct ml_agg_opts o = opts(ML_AGG_MEDIAN);

	(void)state;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 2, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 3.0f && out[1] == -1.0f);
	/* even: {5, 1, 3, 100} -> (3 + 5) / 2; {-1, 8, -1, 0} -> -0.5 */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 4, 2, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 4.0f && out[1] == -0.5f);
	/* one update: itself */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 1, 2, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 5.0f && out[1] == -1.0f);
}

/* Random, sorted, reversed and heavily tied columns for every k from 1 to
 * 70: the selected median equals the one of a full sort. */
static void test_agg__median_matches_full_sort(void **state)
{
	enum { N = 300, KMAX = 70 };
	const float *upd[KMAX];
	float *m, *out = malloc(N * sizeof(float)), col[KMAX];
	struct ml_agg_opts o = opts(ML_AGG_MEDIAN);

	(void)state;
	assert_non_null(out);
	m = random_updates(upd, KMAX, N, 9);
	for (size_t i = 0; i < KMAX; i++) {
		float *row = m + i * N;

		row[0] = (float)i;            /* sorted */
		row[1] = (float)(KMAX - i);   /* reversed */
		row[2] = (float)(i % 3);      /* ties */
		row[3] = 1.0f;                /* all equal */
		row[4] = (float)((i * 37) % 11) - 5.0f;
	}
	for (size_t k = 1; k <= KMAX; k++) {
		assert_int_equal(ml_agg_combine(out, upd, NULL, k, N, &o, NULL,
						NULL), FM_OK);
		for (size_t j = 0; j < N; j++) {
			float want;

			for (size_t i = 0; i < k; i++)
				col[i] = upd[i][j];
			qsort(col, k, sizeof(float), cmp_f);
			want = k % 2 ? col[k / 2] :
			       (float)(((double)col[k / 2 - 1] + col[k / 2]) /
				       2);
			if (out[j] != want)
				fail_msg("k %zu coordinate %zu: got %g want %g",
					 k, j, out[j], want);
		}
	}
	free(m);
	free(out);
}

/* Many updates with columns built against pivot rules (equal values,
 * two values, sorted, reversed, organ pipe, median-of-three killer): the
 * median still matches a full sort. */
static void test_agg__median_of_crafted_columns(void **state)
{
	enum { K = 1001, N = 8 };
	const float *upd[K];
	float *m = malloc(K * N * sizeof(float)), out[N], col[K];
	struct ml_agg_opts o = opts(ML_AGG_MEDIAN);

	(void)state;
	assert_non_null(m);
	for (size_t i = 0; i < K; i++) {
		float *row = m + i * N;

		upd[i] = row;
		row[0] = 0.5f;
		row[1] = (float)(i % 2);
		row[2] = (float)i;
		row[3] = (float)(K - i);
		row[4] = (float)(i < K / 2 ? i : K - i);
		/* first, middle and last of every range are small */
		row[5] = (float)(i % 2 ? i : K + i);
		row[6] = i % 7 == 0 ? -1.0f : (float)(i % 3);
		row[7] = (float)((i * 7919) % K);
	}
	assert_int_equal(ml_agg_combine(out, upd, NULL, K, N, &o, NULL, NULL),
			 FM_OK);
	for (size_t j = 0; j < N; j++) {
		for (size_t i = 0; i < K; i++)
			col[i] = upd[i][j];
		qsort(col, K, sizeof(float), cmp_f);
		if (out[j] != col[K / 2])
			fail_msg("column %zu: got %g want %g", j, out[j],
				 col[K / 2]);
	}
	free(m);
}

/* ------------------------------------------------------- trimmed mean */

static void test_agg__trimmed_mean_cuts_both_ends(void **state)
{
	float v[5][2] = { { 1, 7 }, { 100, 7 }, { 3, 7 }, { -50, 7 },
			  { 2, 8 } };
	const float *upd[5] = { v[0], v[1], v[2], v[3], v[4] };
	float out[2];
	struct ml_agg_opts o = opts(ML_AGG_TRIMMED_MEAN);

	(void)state;
	o.trim = 0.2; /* one cut at each end of 5 */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 5, 2, &o, NULL, NULL),
			 FM_OK);
	assert_near(out[0], (1 + 2 + 3) / 3.0, 1e-6);
	assert_near(out[1], 7.0, 0);
	o.trim = 0.0; /* plain mean */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 5, 2, &o, NULL, NULL),
			 FM_OK);
	assert_near(out[0], 56 / 5.0, 1e-5);
	o.trim = 0.4; /* two at each end: the median */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 5, 2, &o, NULL, NULL),
			 FM_OK);
	assert_true(out[0] == 2.0f);
}

static void test_agg__trimmed_mean_matches_full_sort(void **state)
{
	enum { N = 257, K = 23 };
	const float *upd[K];
	float *m = random_updates(upd, K, N, 21), out[N], col[K];
	struct ml_agg_opts o = opts(ML_AGG_TRIMMED_MEAN);

	(void)state;
	for (int t = 0; t < 5; t++) {
		size_t b = (size_t)t * 2;

		o.trim = (double)b / K;
		assert_int_equal(ml_agg_combine(out, upd, NULL, K, N, &o, NULL,
						NULL), FM_OK);
		for (size_t j = 0; j < N; j++) {
			double s = 0;

			for (size_t i = 0; i < K; i++)
				col[i] = upd[i][j];
			qsort(col, K, sizeof(float), cmp_f);
			for (size_t i = b; i < K - b; i++)
				s += col[i];
			assert_near(out[j], s / (double)(K - 2 * b), 1e-6);
		}
	}
	free(m);
}

/* ---------------------------------------------------------------- Krum */

static void test_agg__krum_picks_the_most_central(void **state)
{
	/* 1-D values 0, 1, 3, 20, 21 with f = 1: scores sum the 2 nearest
	 * squared distances: 10, 5, 13, 290, 325. */
	float v[5][1] = { { 0 }, { 1 }, { 3 }, { 20 }, { 21 } };
	const float *upd[5] = { v[3], v[0], v[4], v[1], v[2] };
	float out[1];
	int chosen[5];
	struct ml_agg_opts o = opts(ML_AGG_KRUM);

	(void)state;
	o.krum_f = 1;
	o.krum_m = 1;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 5, 1, &o, NULL,
					chosen), FM_OK);
	assert_true(out[0] == 1.0f);
	assert_int_equal(chosen[3], 1);
	assert_int_equal(chosen[0] + chosen[1] + chosen[2] + chosen[4], 0);
	/* Multi-Krum, m = 3: the mean of 1, 0 and 3 */
	o.krum_m = 3;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 5, 1, &o, NULL,
					chosen), FM_OK);
	assert_near(out[0], 4.0 / 3.0, 1e-6);
	assert_int_equal(chosen[0] + chosen[2], 0);
	assert_int_equal(chosen[1] + chosen[3] + chosen[4], 3);
}

static void test_agg__krum_ignores_far_attackers(void **state)
{
	enum { K = 10, N = 1000 };
	const float *upd[K];
	float *m = random_updates(upd, K, N, 4), out[N];
	int chosen[K];
	struct ml_agg_opts o = opts(ML_AGG_KRUM);

	(void)state;
	/* honest updates near +1 each; two attackers at -20 */
	for (size_t i = 0; i < K; i++)
		for (size_t j = 0; j < N; j++)
			m[i * N + j] = i < 2 ? -20.0f : 1.0f +
				       0.1f * m[i * N + j];
	o.krum_f = 2;
	o.krum_m = K - 2;
	assert_int_equal(ml_agg_combine(out, upd, NULL, K, N, &o, NULL,
					chosen), FM_OK);
	assert_int_equal(chosen[0] + chosen[1], 0);
	for (size_t j = 0; j < N; j++)
		assert_near(out[j], 1.0, 0.2);
	free(m);
}

static void test_agg__krum_needs_enough_updates(void **state)
{
	float v[1] = { 0 }, out[1];
	const float *upd[6] = { v, v, v, v, v, v };
	struct ml_agg_opts o = opts(ML_AGG_KRUM);

	(void)state;
	o.krum_f = 2; /* needs 7 */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 6, 1, &o, NULL, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "at least 7"));
	o.krum_f = 1;
	o.krum_m = 7;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 6, 1, &o, NULL, NULL),
			 FM_EINVAL);
	o.krum_m = 0;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 6, 1, &o, NULL, NULL),
			 FM_EINVAL);
	o.krum_f = -1;
	o.krum_m = 1;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 6, 1, &o, NULL, NULL),
			 FM_EINVAL);
}

/* ---------------------------------------------------- centered clipping */

static void test_agg__centered_clip_known_iterations(void **state)
{
	/* 1-D 0.5, -0.5, 10 from 0 with tau 1: first step clips 10 to 1,
	 * v = 1/3; the second clips around 1/3: v = 1/3 + (1/6 - 5/6 + 1)/3
	 * = 4/9. */
	float a[1] = { 0.5f }, b[1] = { -0.5f }, c[1] = { 10 }, out[1];
	const float *upd[3] = { a, b, c };
	struct ml_agg_opts o = opts(ML_AGG_CENTERED_CLIP);

	(void)state;
	o.clip_tau = 1.0;
	o.clip_iters = 1;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_OK);
	assert_near(out[0], 1.0 / 3.0, 1e-7);
	o.clip_iters = 2;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_OK);
	assert_near(out[0], 4.0 / 9.0, 1e-7);
}

static void test_agg__centered_clip_uses_l2_norm_and_center(void **state)
{
	/* from center (1, 1): (4, 5) is 5 away and clips to (1.6, 1.8) */
	float a[2] = { 4, 5 }, center[2] = { 1, 1 }, out[2];
	const float *upd[1] = { a };
	struct ml_agg_opts o = opts(ML_AGG_CENTERED_CLIP);

	(void)state;
	o.clip_tau = 1.0;
	o.clip_iters = 1;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 1, 2, &o, center,
					NULL), FM_OK);
	assert_near(out[0], 1.6, 1e-6);
	assert_near(out[1], 1.8, 1e-6);
}

static void test_agg__centered_clip_large_radius_is_the_mean(void **state)
{
	enum { K = 6, N = 9000 };
	const float *upd[K];
	float *m = random_updates(upd, K, N, 8);
	float *out = malloc(N * sizeof(float));
	struct ml_agg_opts o = opts(ML_AGG_CENTERED_CLIP);

	(void)state;
	assert_non_null(out);
	o.clip_tau = 1e9;
	assert_int_equal(ml_agg_combine(out, upd, NULL, K, N, &o, NULL, NULL),
			 FM_OK);
	for (size_t j = 0; j < N; j++) {
		double s = 0;

		for (size_t i = 0; i < K; i++)
			s += upd[i][j];
		assert_near(out[j], s / K, 1e-6);
	}
	free(m);
	free(out);
}

/* ------------------------------------------ random cross-checks */

/* Krum as its definition reads, O(k^2 n) with a full sort per update. */
static void naive_krum(double *out, const float *const *u, size_t k,
		       size_t n, int f, int m)
{
	double score[64], d[64];
	size_t order[64];

	for (size_t i = 0; i < k; i++) {
		size_t r = 0;

		for (size_t j = 0; j < k; j++) {
			double s = 0;

			if (j == i)
				continue;
			for (size_t c = 0; c < n; c++)
				s += ((double)u[i][c] - u[j][c]) *
				     ((double)u[i][c] - u[j][c]);
			d[r++] = s;
		}
		qsort(d, r, sizeof(double), cmp_d);
		score[i] = 0;
		for (size_t j = 0; j < k - (size_t)f - 2; j++)
			score[i] += d[j];
		order[i] = i;
	}
	/* stable selection of the m lowest scores */
	for (size_t a = 0; a < k; a++)
		for (size_t b = a + 1; b < k; b++)
			if (score[order[b]] < score[order[a]] ||
			    (score[order[b]] == score[order[a]] &&
			     order[b] < order[a])) {
				size_t t = order[a];

				order[a] = order[b];
				order[b] = t;
			}
	for (size_t c = 0; c < n; c++) {
		out[c] = 0;
		for (int j = 0; j < m; j++)
			out[c] += u[order[j]][c] / (double)m;
	}
}

/* Centered clipping as the paper writes it, in double. */
static void naive_cclip(double *v, const float *const *u, size_t k,
			size_t n, double tau, int iters)
{
	double step[4096];

	for (size_t c = 0; c < n; c++)
		v[c] = 0;
	for (int it = 0; it < iters; it++) {
		for (size_t c = 0; c < n; c++)
			step[c] = 0;
		for (size_t i = 0; i < k; i++) {
			double norm = 0, scale;

			for (size_t c = 0; c < n; c++)
				norm += (u[i][c] - v[c]) * (u[i][c] - v[c]);
			norm = sqrt(norm);
			scale = norm > tau ? tau / norm : 1;
			for (size_t c = 0; c < n; c++)
				step[c] += (u[i][c] - v[c]) * scale / k;
		}
		for (size_t c = 0; c < n; c++)
			v[c] = (float)(v[c] + step[c]);
	}
}

static void test_agg__random_cases_match_naive_rules(void **state)
{
	enum { KMAX = 40, NMAX = 4096 };
	const float *upd[KMAX];
	float *m = random_updates(upd, KMAX, NMAX, 31), out[NMAX];
	double want[NMAX];
	struct ml_rng r;

	(void)state;
	ml_rng_seed(&r, 77);
	for (int t = 0; t < 60; t++) {
		size_t k = 3 + ml_rng_below(&r, KMAX - 2);
		size_t n = 1 + ml_rng_below(&r, NMAX);
		struct ml_agg_opts o = opts(t % 2 ? ML_AGG_KRUM :
					    ML_AGG_CENTERED_CLIP);

		/* some updates far away, as attackers would be (a power of
		 * two, undone exactly after the case) */
		for (size_t i = 0; i < k; i += 5)
			for (size_t c = 0; c < n; c += 7)
				m[i * NMAX + c] *= 32.0f;
		if (o.rule == ML_AGG_KRUM) {
			o.krum_f = (int)ml_rng_below(&r, (k - 3) / 2 + 1);
			o.krum_m = 1 + (int)ml_rng_below(&r, k);
			naive_krum(want, upd, k, n, o.krum_f, o.krum_m);
		} else {
			o.clip_tau = 0.5 + 10 * ml_rng_uniform(&r);
			o.clip_iters = 1 + (int)ml_rng_below(&r, 4);
			naive_cclip(want, upd, k, n, o.clip_tau, o.clip_iters);
		}
		assert_int_equal(ml_agg_combine(out, upd, NULL, k, n, &o, NULL,
						NULL), FM_OK);
		for (size_t c = 0; c < n; c++)
			if (fabs(out[c] - want[c]) > 1e-4 * (1 + fabs(want[c])))
				fail_msg("case %d (%s, k %zu, n %zu) "
					 "coordinate %zu: got %g want %g", t,
					 ml_agg_rule_name(o.rule), k, n, c,
					 out[c], want[c]);
		for (size_t i = 0; i < k; i += 5)
			for (size_t c = 0; c < n; c += 7)
				m[i * NMAX + c] /= 32.0f;
	}
	free(m);
}

/* ---------------------------------------------------------- rejections */

static void test_agg__rejects_non_finite_naming_update(void **state)
{
	const enum ml_agg_rule rules[] = {
		ML_AGG_FEDAVG, ML_AGG_MEDIAN, ML_AGG_TRIMMED_MEAN, ML_AGG_KRUM,
		ML_AGG_CENTERED_CLIP,
	};
	enum { K = 5, N = 10000 };
	const float *upd[K];
	float *m = random_updates(upd, K, N, 2);
	float *out = malloc(N * sizeof(float));

	(void)state;
	assert_non_null(out);
	for (size_t r = 0; r < 5; r++) {
		struct ml_agg_opts o = opts(rules[r]);

		m[3 * N + 9000] = r % 2 ? INFINITY : NAN;
		assert_int_equal(ml_agg_combine(out, upd, NULL, K, N, &o,
						NULL, NULL),
				 FM_EUNPROCESSABLE);
		assert_non_null(strstr(fm_error_msg(),
				       "update 3: coordinate 9000"));
		m[3 * N + 9000] = 0;
		assert_int_equal(ml_agg_combine(out, upd, NULL, K, N, &o,
						NULL, NULL), FM_OK);
	}
	assert_int_equal(ml_agg_first_nonfinite(upd[0], N), N);
	m[17] = -INFINITY;
	assert_int_equal(ml_agg_first_nonfinite(upd[0], N), 17);
	free(m);
	free(out);
}

static void test_agg__rejects_bad_weights_and_options(void **state)
{
	float a[1] = { 1 }, out[1];
	const float *upd[3] = { a, a, a };
	const double zero[3] = { 1, 0, 1 }, neg[3] = { 1, -2, 1 },
		     nan_[3] = { NAN, 1, 1 };
	struct ml_agg_opts o = opts(ML_AGG_FEDAVG);

	(void)state;
	assert_int_equal(ml_agg_combine(out, upd, zero, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "update 1: weight"));
	assert_int_equal(ml_agg_combine(out, upd, neg, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	assert_int_equal(ml_agg_combine(out, upd, nan_, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	assert_int_equal(ml_agg_combine(out, upd, NULL, 0, 1, &o, NULL, NULL),
			 FM_EINVAL);
	assert_int_equal(ml_agg_opts_check(&o, ML_AGG_MAX_UPDATES + 1),
			 FM_ETOOLARGE);
	o = opts(ML_AGG_TRIMMED_MEAN);
	o.trim = 0.5;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	o.trim = 0.34; /* cuts 1 at each end of 3: one left */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_OK);
	o.trim = -0.1;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	o = opts(ML_AGG_TRIMMED_MEAN);
	o.trim = 0.25; /* of 2 updates: cuts 0 */
	assert_int_equal(ml_agg_combine(out, upd, NULL, 2, 1, &o, NULL, NULL),
			 FM_OK);
	o = opts(ML_AGG_CENTERED_CLIP);
	o.clip_tau = 0;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	o.clip_tau = 1;
	o.clip_iters = 0;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
	o.rule = (enum ml_agg_rule)42;
	assert_int_equal(ml_agg_combine(out, upd, NULL, 3, 1, &o, NULL, NULL),
			 FM_EINVAL);
}

static void test_agg__rule_names_round_trip(void **state)
{
	const char *names[] = { "fedavg", "median", "trimmed_mean", "krum",
				"centered_clip" };
	enum ml_agg_rule r;

	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ml_agg_rule_parse(&r, names[i]), FM_OK);
		assert_string_equal(ml_agg_rule_name(r), names[i]);
	}
	assert_int_equal(ml_agg_rule_parse(&r, "mean"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "'mean'"));
}

/* FedBuff's discount: n x (1 + s)^-a, exact at the points one can
 * check by hand, monotone in staleness, and weighting the FedAvg of a
 * stale and a fresh update as the formula says. */
static void test_agg__staleness_weight(void **state)
{
	const float a[2] = { 1, 0 }, b[2] = { 0, 1 };
	const float *upd[2] = { a, b };
	double w[2];
	float out[2];
	struct ml_agg_opts o = ML_AGG_OPTS_INIT;

	(void)state;
	/* fresh: the example count */
	assert_true(ml_agg_staleness_weight(100, 0, 0.5) == 100);
	/* 3 versions old, exponent 0.5: 100 / sqrt(4) */
	assert_true(fabs(ml_agg_staleness_weight(100, 3, 0.5) - 50) < 1e-12);
	/* exponent 1: 100 / (1 + 1) */
	assert_true(fabs(ml_agg_staleness_weight(100, 1, 1) - 50) < 1e-12);
	/* exponent 2, staleness 2: 90 / 9 */
	assert_true(fabs(ml_agg_staleness_weight(90, 2, 2) - 10) < 1e-12);
	/* exponent 0 ignores staleness; nonsense counts as none */
	assert_true(ml_agg_staleness_weight(100, 7, 0) == 100);
	assert_true(ml_agg_staleness_weight(100, -2, 0.5) == 100);
	assert_true(ml_agg_staleness_weight(100, 2, -1) == 100);
	for (int s = 0; s < 10; s++)
		assert_true(ml_agg_staleness_weight(10, s + 1, 0.5) <
			    ml_agg_staleness_weight(10, s, 0.5));
	/* equal counts, one update 3 versions old: it weighs 1/2 of the
	 * fresh one, so FedAvg gives it 1/3 */
	w[0] = ml_agg_staleness_weight(10, 3, 0.5);
	w[1] = ml_agg_staleness_weight(10, 0, 0.5);
	assert_int_equal(ml_agg_combine(out, upd, w, 2, 2, &o, NULL, NULL),
			 FM_OK);
	assert_true(fabsf(out[0] - 1.0f / 3) < 1e-6f);
	assert_true(fabsf(out[1] - 2.0f / 3) < 1e-6f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_agg__fedavg_of_identical_models_is_the_model),
		cmocka_unit_test(test_agg__fedavg_weighted_exact),
		cmocka_unit_test(test_agg__fedavg_matches_naive_sum),
		cmocka_unit_test(test_agg__threads_give_the_same_sum),
		cmocka_unit_test(test_agg__wsum_uses_weights_as_given),
		cmocka_unit_test(test_agg__median_odd_and_even),
		cmocka_unit_test(test_agg__median_matches_full_sort),
		cmocka_unit_test(test_agg__median_of_crafted_columns),
		cmocka_unit_test(test_agg__trimmed_mean_cuts_both_ends),
		cmocka_unit_test(test_agg__trimmed_mean_matches_full_sort),
		cmocka_unit_test(test_agg__krum_picks_the_most_central),
		cmocka_unit_test(test_agg__krum_ignores_far_attackers),
		cmocka_unit_test(test_agg__krum_needs_enough_updates),
		cmocka_unit_test(test_agg__centered_clip_known_iterations),
		cmocka_unit_test(
			test_agg__centered_clip_uses_l2_norm_and_center),
		cmocka_unit_test(
			test_agg__centered_clip_large_radius_is_the_mean),
		cmocka_unit_test(test_agg__random_cases_match_naive_rules),
		cmocka_unit_test(test_agg__rejects_non_finite_naming_update),
		cmocka_unit_test(test_agg__rejects_bad_weights_and_options),
		cmocka_unit_test(test_agg__rule_names_round_trip),
		cmocka_unit_test(test_agg__staleness_weight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
