/* Contribution scores: exact Shapley on games with known answers, its
 * efficiency, GTG-Shapley against exact on non-IID updates of the seed
 * MLP over 20 seeds (Spearman), free riders and noise ranking last,
 * determinism, and bad options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/fedsim.h"
#include "engine/ml.h"
#include "engine/shapley.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* v(S) = sum of a_i over S */
static int additive(void *arg, uint64_t s, double *out)
{
	const double *a = arg;

	*out = 0;
	for (int i = 0; i < 64; i++)
		if (s & (UINT64_C(1) << i))
			*out += a[i];
	return FM_OK;
}

/* v(S) = |S|^2: every player alike */
static int symmetric(void *arg, uint64_t s, double *out)
{
	(void)arg;
	*out = (double)(__builtin_popcountll(s) * __builtin_popcountll(s));
	return FM_OK;
}

static void test_shapley__additive_game_gives_each_its_own(void **state)
{
	double a[10] = { 3, -1, 0.5, 7, 0, 2, -4, 1, 9, 0.25 };
	struct ml_shapley_opts o = ML_SHAPLEY_OPTS_INIT;
	struct ml_shapley_result r;

	(void)state;
	assert_int_equal(ml_shapley(&r, 10, additive, a, &o), FM_OK);
	assert_int_equal(r.evaluations, 1024);
	for (int i = 0; i < 10; i++)
		assert_true(fabs(r.phi[i] - a[i]) < 1e-9);
	ml_shapley_result_cleanup(&r);
	/* every permutation gives the same marginals: GTG is exact too
	 * (with gains that never cancel, so no prefix reaches v(all) early),
	 * and stops after two guided cycles */
	for (int i = 0; i < 10; i++)
		a[i] = 1.0 + i;
	o.method = ML_SHAPLEY_GTG;
	o.truncation = 0;
	o.tolerance = 0.02;
	o.budget = 400;
	assert_int_equal(ml_shapley(&r, 10, additive, a, &o), FM_OK);
	for (int i = 0; i < 10; i++)
		assert_true(fabs(r.phi[i] - a[i]) < 1e-9);
	assert_int_equal(r.permutations, 20);
	assert_true(r.evaluations <= 400);
	ml_shapley_result_cleanup(&r);
}

static void test_shapley__symmetric_players_share_equally(void **state)
{
	struct ml_shapley_opts o = ML_SHAPLEY_OPTS_INIT;
	struct ml_shapley_result r;
	double total = 0;

	(void)state;
	assert_int_equal(ml_shapley(&r, 7, symmetric, NULL, &o), FM_OK);
	for (int i = 0; i < 7; i++) {
		assert_true(fabs(r.phi[i] - 7.0) < 1e-9); /* 49 / 7 */
		total += r.phi[i];
	}
	assert_true(fabs(total - (r.v_all - r.v_empty)) < 1e-9);
	ml_shapley_result_cleanup(&r);
}

static void test_shapley__bad_options_are_refused(void **state)
{
	struct ml_shapley_opts o = ML_SHAPLEY_OPTS_INIT;
	struct ml_shapley_result r;
	double a[64] = { 0 };

	(void)state;
	assert_int_equal(ml_shapley(&r, 0, additive, a, &o), FM_EINVAL);
	assert_int_equal(ml_shapley(&r, 21, additive, a, &o), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "use gtg"));
	o.method = ML_SHAPLEY_GTG;
	for (int i = 0; i < 5; i++)
		a[i] = 1;
	o.budget = 3; /* empty, full, one more: not a permutation of 5 */
	assert_int_equal(ml_shapley(&r, 5, additive, a, &o), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "budget of 3"));
	o.budget = 0;
	o.truncation = 1.5;
	assert_int_equal(ml_shapley(&r, 5, additive, a, &o), FM_EINVAL);
}

/* ---- the seed MLP on Fashion-MNIST ------------------------------------ */

#define K 6       /* 4 honest non-IID updates, a free rider, a noise one */
#define SEEDS 20

static struct {
	struct ml_dataset train, test;
	struct ml_model *base;
	int ready;
} F;

static int fashion_setup(void **state)
{
	const char *d = "/usr/share/datasets/fashion-mnist";
	char im[256], lb[256];
	struct ml_dataset all = { 0 };
	size_t *idx;
	const char *top = getenv("FM_TOP");
	char model[512];

	(void)state;
	snprintf(im, sizeof(im), "%s/train-images-idx3-ubyte.gz", d);
	snprintf(lb, sizeof(lb), "%s/train-labels-idx1-ubyte.gz", d);
	snprintf(model, sizeof(model), "%s/assets/models/fashion-mlp",
		 top ? top : ".");
	if (ml_dataset_load_idx(&all, im, lb) || ml_model_load(&F.base, model))
		return -1;
	ml_dataset_scale(&all, 255);
	idx = malloc(9000 * sizeof(*idx));
	if (!idx)
		return -1;
	for (size_t i = 0; i < 9000; i++)
		idx[i] = i;
	/* 8000 to train on, the next 1000 held out */
	if (ml_dataset_subset(&F.train, &all, idx, 8000) ||
	    ml_dataset_subset(&F.test, &all, idx + 8000, 1000))
		return -1;
	free(idx);
	ml_dataset_cleanup(&all);
	F.ready = 1;
	return 0;
}

static int fashion_teardown(void **state)
{
	(void)state;
	ml_dataset_cleanup(&F.train);
	ml_dataset_cleanup(&F.test);
	ml_model_free(F.base);
	return 0;
}

/* upd[0..3]: trained on Dirichlet(0.3) shards of 2000 samples from the
 * base; upd[4] = the base (free rider); upd[5] = base + N(0, 0.1). */
static void make_round(float **upd, double *w, size_t n, uint64_t seed)
{
	struct ml_fed_split_spec sp = { ML_FED_SPLIT_DIRICHLET, 0.3, 0 };
	struct ml_fed_split split;
	const float *base = ml_model_params_const(F.base, NULL);
	struct ml_train_opts to;
	struct ml_rng rng;

	assert_int_equal(ml_fed_split_make(&split, &sp, &F.train, 10, 4,
					   seed), FM_OK);
	ml_train_opts_init(&to);
	to.from_logits = 1;
	to.seed = seed;
	for (size_t c = 0; c < 4; c++) {
		struct ml_dataset shard;
		struct ml_model *m = NULL;

		assert_int_equal(ml_dataset_subset(&shard, &F.train,
						   split.idx + split.off[c],
						   split.off[c + 1] -
							   split.off[c]),
				 FM_OK);
		assert_int_equal(ml_model_clone(&m, F.base), FM_OK);
		assert_int_equal(ml_train(m, &shard, &to), FM_OK);
		memcpy(upd[c], ml_model_params_const(m, NULL),
		       n * sizeof(float));
		w[c] = (double)shard.n;
		ml_model_free(m);
		ml_dataset_cleanup(&shard);
	}
	ml_fed_split_cleanup(&split);
	memcpy(upd[4], base, n * sizeof(float));
	w[4] = 2000;
	ml_rng_seed(&rng, seed ^ 0x5eed);
	for (size_t j = 0; j < n; j++)
		upd[5][j] = base[j] + (float)(0.1 * ml_rng_normal(&rng));
	w[5] = 2000;
}

static void score(struct ml_shapley_result *r, float **upd, const double *w,
		  size_t n, const struct ml_shapley_opts *o)
{
	struct ml_shapley_fedavg f = { 0 };

	assert_int_equal(ml_model_clone(&f.model, F.base), FM_OK);
	f.base = ml_model_params_const(F.base, NULL);
	f.updates = (const float *const *)upd;
	f.weights = w;
	f.k = K;
	f.n = n;
	f.data = &F.test;
	f.loss = ML_LOSS_SPARSE_CE;
	f.from_logits = 1;
	f.metric = ML_SHAPLEY_ACCURACY;
	assert_int_equal(ml_shapley_fedavg_init(&f), FM_OK);
	if (ml_shapley(r, K, ml_shapley_fedavg_value, &f, o))
		fail_msg("shapley: %s", fm_error_msg());
	ml_shapley_fedavg_cleanup(&f);
	ml_model_free(f.model);
}

static void test_shapley__gtg_ranks_like_exact_and_free_riders_last(
	void **state)
{
	size_t n = ml_model_param_count(F.base);
	float *upd[K];
	double w[K], rho_sum = 0, rho_min = 1;
	size_t gtg_evals = 0;
	int last_ok = 0;

	(void)state;
	if (!F.ready)
		fail_msg("Fashion-MNIST or the seed model did not load");
	for (int i = 0; i < K; i++)
		assert_non_null(upd[i] = malloc(n * sizeof(float)));
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		struct ml_shapley_opts ex = ML_SHAPLEY_OPTS_INIT;
		struct ml_shapley_opts gt = ML_SHAPLEY_OPTS_INIT;
		struct ml_shapley_result e, g;
		double total = 0, rho;
		int below = 0;

		make_round(upd, w, n, seed);
		score(&e, upd, w, n, &ex);
		/* small rounds: a fine truncation, stop at convergence */
		gt.method = ML_SHAPLEY_GTG;
		gt.seed = seed;
		gt.budget = 48;
		gt.truncation = 0.02;
		gt.tolerance = 0.02;
		score(&g, upd, w, n, &gt);
		for (int i = 0; i < K; i++)
			total += e.phi[i];
		/* efficiency: the scores share out exactly the round's gain */
		if (fabs(total - (e.v_all - e.v_empty)) > 1e-6)
			fail_msg("seed %llu: sum of scores %.9f, gain %.9f",
				 (unsigned long long)seed, total,
				 e.v_all - e.v_empty);
		rho = ml_spearman(e.phi, g.phi, K);
		rho_sum += rho;
		rho_min = rho < rho_min ? rho : rho_min;
		gtg_evals += g.evaluations;
		/* the free rider and the noise rank below every honest one */
		for (int i = 0; i < 4; i++)
			below += e.phi[4] < e.phi[i] && e.phi[5] < e.phi[i];
		last_ok += below == 4;
		print_message("seed %2llu: exact [%+.4f %+.4f %+.4f %+.4f | "
			      "%+.4f %+.4f], gtg %zu evaluations, rho %.3f\n",
			      (unsigned long long)seed, e.phi[0], e.phi[1],
			      e.phi[2], e.phi[3], e.phi[4], e.phi[5],
			      g.evaluations, rho);
		ml_shapley_result_cleanup(&e);
		ml_shapley_result_cleanup(&g);
	}
	print_message("spearman gtg/exact: mean %.3f, min %.3f; gtg %.1f "
		      "evaluations (exact 64); free rider and noise last in "
		      "%d of %d\n", rho_sum / SEEDS, rho_min,
		      (double)gtg_evals / SEEDS, last_ok, SEEDS);
	assert_true(rho_sum / SEEDS >= 0.9);
	assert_int_equal(last_ok, SEEDS);
	for (int i = 0; i < K; i++)
		free(upd[i]);
}

static void test_shapley__gtg_is_deterministic_under_its_seed(void **state)
{
	size_t n = ml_model_param_count(F.base);
	struct ml_shapley_opts o = ML_SHAPLEY_OPTS_INIT;
	struct ml_shapley_result a, b;
	float *upd[K];
	double w[K];

	(void)state;
	if (!F.ready)
		fail_msg("Fashion-MNIST or the seed model did not load");
	for (int i = 0; i < K; i++)
		assert_non_null(upd[i] = malloc(n * sizeof(float)));
	make_round(upd, w, n, 99);
	o.method = ML_SHAPLEY_GTG;
	o.seed = 7;
	o.budget = 40;
	score(&a, upd, w, n, &o);
	score(&b, upd, w, n, &o);
	assert_int_equal(a.evaluations, b.evaluations);
	assert_memory_equal(a.phi, b.phi, K * sizeof(double));
	assert_memory_equal(a.evals, b.evals,
			    a.evaluations * sizeof(*a.evals));
	ml_shapley_result_cleanup(&a);
	ml_shapley_result_cleanup(&b);
	for (int i = 0; i < K; i++)
		free(upd[i]);
}

static void test_shapley__spearman(void **state)
{
	double a[5] = { 1, 2, 3, 4, 5 }, b[5] = { 10, 20, 30, 40, 50 };
	double c[5] = { 5, 4, 3, 2, 1 }, d[4] = { 1, 1, 2, 3 };
	double e[4] = { 1, 2, 3, 4 };

	(void)state;
	assert_true(fabs(ml_spearman(a, b, 5) - 1) < 1e-12);
	assert_true(fabs(ml_spearman(a, c, 5) + 1) < 1e-12);
	/* ties take their mean rank: ranks 1.5 1.5 3 4 against 1 2 3 4 */
	assert_true(fabs(ml_spearman(d, e, 4) - 0.9486832980505138) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_shapley__additive_game_gives_each_its_own),
		cmocka_unit_test(test_shapley__symmetric_players_share_equally),
		cmocka_unit_test(test_shapley__bad_options_are_refused),
		cmocka_unit_test(test_shapley__spearman),
	};
	const struct CMUnitTest fashion[] = {
		cmocka_unit_test(
			test_shapley__gtg_ranks_like_exact_and_free_riders_last),
		cmocka_unit_test(test_shapley__gtg_is_deterministic_under_its_seed),
	};
	int failed = cmocka_run_group_tests(pure, NULL, NULL);

	return failed + cmocka_run_group_tests(fashion, fashion_setup,
					       fashion_teardown);
}
