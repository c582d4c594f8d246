/* Federated evaluation, client splits, attacks, and the simulation loop
 * on a small synthetic problem (Fashion-MNIST runs are in
 * tests/integration/fed_simulate_test.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/dp.h"
#include "engine/fedsim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void assert_near(double got, double want, double tol)
{
	if (fabs(got - want) > tol)
		fail_msg("got %.9g, want %.9g (tol %g)", got, want, tol);
}

/* n samples of 2 features in `classes` Gaussian blobs around points on
 * a circle of radius 3; labels cycle through the classes. */
static void blobs(struct ml_dataset *d, size_t n, int classes, uint64_t seed)
{
	struct ml_rng r;

	memset(d, 0, sizeof(*d));
	d->n = n;
	d->x_shape.rank = 1;
	d->x_shape.dim[0] = 2;
	d->x_size = 2;
	d->y_size = 1;
	d->x = malloc(n * 2 * sizeof(float));
	d->y = malloc(n * sizeof(float));
	assert_non_null(d->x);
	assert_non_null(d->y);
	ml_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		int c = (int)(i % (size_t)classes);
		double a = 2 * M_PI * c / classes;

		d->x[2 * i] = (float)(3 * cos(a) + ml_rng_normal(&r));
		d->x[2 * i + 1] = (float)(3 * sin(a) + ml_rng_normal(&r));
		d->y[i] = (float)c;
	}
}

static struct ml_model *softmax_model(int classes, uint64_t seed)
{
	char spec[256];
	struct ml_model *m = NULL;
	json_t *j;

	snprintf(spec, sizeof(spec),
		 "{\"name\": \"blobs\", \"input_shape\": [2], \"layers\": "
		 "[{\"type\": \"dense\", \"units\": 16, \"activation\": "
		 "\"relu\"}, {\"type\": \"dense\", \"units\": %d, "
		 "\"activation\": \"softmax\"}]}", classes);
	j = json_loads(spec, 0, NULL);
	assert_non_null(j);
	assert_int_equal(ml_model_from_spec(&m, j, seed), FM_OK);
	json_decref(j);
	return m;
}

/* ----------------------------------------------------- federated eval */

static void test_fedsim__eval_combine_weights_by_examples(void **state)
{
	const struct ml_eval s[3] = {
		{ 100, 0.5, 0.9 }, { 300, 1.0, 0.5 }, { 0, NAN, NAN },
	};
	struct ml_eval out;

	(void)state;
	assert_int_equal(ml_fed_eval_combine(&out, s, 3), FM_OK);
	assert_int_equal(out.n, 400);
	assert_near(out.loss, (50 + 300) / 400.0, 1e-12);
	assert_near(out.accuracy, (90 + 150) / 400.0, 1e-12);
	assert_int_equal(ml_fed_eval_combine(&out, s + 2, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "no example"));
}

static void test_fedsim__eval_combine_rejects_non_finite(void **state)
{
	const struct ml_eval s[2] = { { 10, 0.5, 0.9 }, { 5, INFINITY, 0.1 } };
	struct ml_eval out;

	(void)state;
	assert_int_equal(ml_fed_eval_combine(&out, s, 2), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "shard 1"));
}

/* Evaluating shards and combining equals evaluating their union. */
static void test_fedsim__evaluate_shards_equals_whole(void **state)
{
	struct ml_dataset d, parts[3];
	struct ml_model *m = softmax_model(3, 1);
	struct ml_eval whole, fed, per[3];
	size_t cut[4] = { 0, 50, 51, 300 };

	(void)state;
	blobs(&d, 300, 3, 2);
	for (int i = 0; i < 3; i++) {
		parts[i] = d;
		parts[i].n = cut[i + 1] - cut[i];
		parts[i].x = d.x + cut[i] * 2;
		parts[i].y = d.y + cut[i];
	}
	assert_int_equal(ml_evaluate(m, &d, ML_LOSS_SPARSE_CE, 0, 0, &whole),
			 FM_OK);
	assert_int_equal(ml_fed_evaluate(m, parts, 3, ML_LOSS_SPARSE_CE, 0,
					 per, &fed), FM_OK);
	assert_int_equal(fed.n, 300);
	assert_int_equal(per[1].n, 1);
	assert_near(fed.loss, whole.loss, 1e-5);
	assert_near(fed.accuracy, whole.accuracy, 1e-9);
	ml_model_free(m);
	ml_dataset_cleanup(&d);
}

/* ------------------------------------------------------------- random */

static void test_fedsim__gamma_and_dirichlet_moments(void **state)
{
	const double shapes[] = { 0.3, 1.0, 4.5 };
	double share[4], mean[4] = { 0 };
	struct ml_rng r;

	(void)state;
	ml_rng_seed(&r, 99);
	for (size_t k = 0; k < 3; k++) {
		double a = shapes[k], s = 0, s2 = 0;
		const int n = 100000;

		for (int i = 0; i < n; i++) {
			double x = ml_fed_gamma(&r, a);

			assert_true(x >= 0.0 && isfinite(x));
			s += x;
			s2 += x * x;
		}
		/* Gamma(a, 1): mean a, variance a */
		assert_near(s / n, a, 0.03 * a);
		assert_near(s2 / n - (s / n) * (s / n), a, 0.06 * a);
	}
	/* Dir(alpha): shares sum to 1, each with mean 1/k */
	for (int i = 0; i < 20000; i++) {
		double sum = 0;

		ml_fed_dirichlet(&r, i % 2 ? 0.01 : 0.5, share, 4);
		for (int j = 0; j < 4; j++) {
			assert_true(share[j] >= 0 && share[j] <= 1);
			sum += share[j];
			mean[j] += share[j] / 20000;
		}
		assert_near(sum, 1.0, 1e-12);
	}
	for (int j = 0; j < 4; j++)
		assert_near(mean[j], 0.25, 0.02);
}

/* ------------------------------------------------------------- splits */

static void test_fedsim__split_parse(void **state)
{
	struct ml_fed_split_spec s;

	(void)state;
	assert_int_equal(ml_fed_split_parse(&s, "iid"), FM_OK);
	assert_int_equal(s.kind, ML_FED_SPLIT_IID);
	assert_int_equal(ml_fed_split_parse(&s, "dirichlet:0.5"), FM_OK);
	assert_int_equal(s.kind, ML_FED_SPLIT_DIRICHLET);
	assert_near(s.alpha, 0.5, 0);
	assert_int_equal(ml_fed_split_parse(&s, "shards:2"), FM_OK);
	assert_int_equal(s.kind, ML_FED_SPLIT_SHARDS);
	assert_int_equal(s.shards, 2);
	assert_int_equal(ml_fed_split_parse(&s, "dirichlet:"), FM_EINVAL);
	assert_int_equal(ml_fed_split_parse(&s, "dirichlet:-1"), FM_EINVAL);
	assert_int_equal(ml_fed_split_parse(&s, "dirichlet:0.5x"), FM_EINVAL);
	assert_int_equal(ml_fed_split_parse(&s, "shards:1.5"), FM_EINVAL);
	assert_int_equal(ml_fed_split_parse(&s, "shards:0"), FM_EINVAL);
	assert_int_equal(ml_fed_split_parse(&s, "random"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "'random'"));
}

/* Every sample is in exactly one client; returns the per-client label
 * histogram (clients x classes). */
static size_t *check_partition(const struct ml_fed_split *s,
			       const struct ml_dataset *d, int classes)
{
	char *seen = calloc(d->n, 1);
	size_t *hist = calloc(s->clients * (size_t)classes, sizeof(size_t));

	assert_non_null(seen);
	assert_non_null(hist);
	assert_int_equal(s->off[0], 0);
	assert_int_equal(s->off[s->clients], d->n);
	for (size_t c = 0; c < s->clients; c++) {
		assert_true(s->off[c + 1] > s->off[c]);
		for (size_t i = s->off[c]; i < s->off[c + 1]; i++) {
			size_t x = s->idx[i];

			assert_true(x < d->n);
			assert_int_equal(seen[x], 0);
			seen[x] = 1;
			hist[c * (size_t)classes + (size_t)d->y[x]]++;
		}
	}
	free(seen);
	return hist;
}

/* Over a 10-class split: each client's share of its most common label,
 * averaged over the clients (checking the partition on the way). */
static double mean_top_share(const struct ml_fed_split *s,
			     const struct ml_dataset *d)
{
	size_t *hist = check_partition(s, d, 10);
	double mean = 0;

	for (size_t k = 0; k < s->clients; k++) {
		size_t top = 0, sz = s->off[k + 1] - s->off[k];

		for (int j = 0; j < 10; j++)
			top = hist[k * 10 + j] > top ? hist[k * 10 + j] : top;
		mean += (double)top / (double)sz / (double)s->clients;
	}
	free(hist);
	return mean;
}

static void test_fedsim__split_iid_is_balanced(void **state)
{
	struct ml_fed_split_spec spec = { ML_FED_SPLIT_IID, 0, 0 };
	struct ml_fed_split s;
	struct ml_dataset d;
	size_t *hist;

	(void)state;
	blobs(&d, 1003, 5, 1);
	assert_int_equal(ml_fed_split_make(&s, &spec, &d, 5, 10, 7), FM_OK);
	hist = check_partition(&s, &d, 5);
	for (size_t c = 0; c < 10; c++) {
		size_t sz = s.off[c + 1] - s.off[c];

		assert_true(sz == 100 || sz == 101);
	}
	free(hist);
	ml_fed_split_cleanup(&s);
	ml_fed_split_cleanup(&s); /* idempotent */
	ml_dataset_cleanup(&d);
}

/* Dirichlet(0.1) concentrates each client on few classes; Dirichlet(100)
 * is close to IID; the same seed gives the same split. */
static void test_fedsim__split_dirichlet_skews_labels(void **state)
{
	struct ml_fed_split_spec spec = { ML_FED_SPLIT_DIRICHLET, 0.1, 0 };
	struct ml_fed_split a, b, c;
	struct ml_dataset d;
	double top_low, top_high;

	(void)state;
	blobs(&d, 5000, 10, 3);
	assert_int_equal(ml_fed_split_make(&a, &spec, &d, 10, 10, 42), FM_OK);
	assert_int_equal(ml_fed_split_make(&b, &spec, &d, 10, 10, 42), FM_OK);
	assert_memory_equal(a.off, b.off, 11 * sizeof(size_t));
	assert_memory_equal(a.idx, b.idx, 5000 * sizeof(size_t));
	top_low = mean_top_share(&a, &d);
	spec.alpha = 100;
	assert_int_equal(ml_fed_split_make(&c, &spec, &d, 10, 10, 42), FM_OK);
	top_high = mean_top_share(&c, &d);
	assert_true(top_low > 0.5);
	assert_true(top_high < 0.2);
	ml_fed_split_cleanup(&a);
	ml_fed_split_cleanup(&b);
	ml_fed_split_cleanup(&c);
	ml_dataset_cleanup(&d);
}

static void test_fedsim__split_shards_give_few_labels(void **state)
{
	struct ml_fed_split_spec spec = { ML_FED_SPLIT_SHARDS, 0, 2 };
	struct ml_fed_split s;
	struct ml_dataset d;
	size_t *hist;

	(void)state;
	blobs(&d, 2000, 10, 5);
	assert_int_equal(ml_fed_split_make(&s, &spec, &d, 10, 10, 1), FM_OK);
	hist = check_partition(&s, &d, 10);
	for (size_t k = 0; k < 10; k++) {
		int labels = 0;

		assert_int_equal(s.off[k + 1] - s.off[k], 200);
		for (int j = 0; j < 10; j++)
			labels += hist[k * 10 + j] > 0;
		/* two shards of one class each (classes are 200 wide) */
		assert_true(labels >= 1 && labels <= 2);
	}
	free(hist);
	ml_fed_split_cleanup(&s);
	ml_dataset_cleanup(&d);
}

static void test_fedsim__split_rejects_bad_input(void **state)
{
	struct ml_fed_split_spec iid = { ML_FED_SPLIT_IID, 0, 0 };
	struct ml_fed_split_spec dir = { ML_FED_SPLIT_DIRICHLET, 0.5, 0 };
	struct ml_fed_split_spec sh = { ML_FED_SPLIT_SHARDS, 0, 30 };
	struct ml_fed_split s = { 0, NULL, NULL };
	struct ml_dataset d;

	(void)state;
	blobs(&d, 100, 3, 1);
	assert_int_equal(ml_fed_split_make(&s, &iid, &d, 3, 101, 1),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "100 samples"));
	assert_int_equal(ml_fed_split_make(&s, &iid, &d, 3, 0, 1), FM_EINVAL);
	assert_int_equal(ml_fed_split_make(&s, &sh, &d, 3, 4, 1), FM_EINVAL);
	/* a label out of range: the 18th sample, as a person counts */
	d.y[17] = 3;
	assert_int_equal(ml_fed_split_make(&s, &dir, &d, 3, 4, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "sample 18"));
	/* IID needs no labels */
	assert_int_equal(ml_fed_split_make(&s, &iid, &d, 3, 4, 1), FM_OK);
	ml_fed_split_cleanup(&s);
	/* a split that cannot give every client a sample */
	d.y[17] = 0;
	d.n = 12;
	dir.alpha = 0.001;
	assert_int_equal(ml_fed_split_make(&s, &dir, &d, 3, 12, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "without samples"));
	assert_null(s.off);
	d.n = 100;
	ml_dataset_cleanup(&d);
}

/* ------------------------------------------------------------ attacks */

static void test_fedsim__attacks(void **state)
{
	struct ml_fed_attack a;
	float v[3] = { 1, -2, 3 };
	struct ml_rng r;

	(void)state;
	ml_rng_seed(&r, 1);
	assert_int_equal(ml_fed_attack_parse(&a, "sign_flip"), FM_OK);
	ml_fed_attack_apply(&a, v, 3, &r);
	assert_true(v[0] == -1 && v[1] == 2 && v[2] == -3);
	assert_int_equal(ml_fed_attack_parse(&a, "sign_flip:4"), FM_OK);
	ml_fed_attack_apply(&a, v, 3, &r);
	assert_true(v[0] == 4 && v[1] == -8 && v[2] == 12);
	assert_int_equal(ml_fed_attack_parse(&a, "scale:0.5"), FM_OK);
	ml_fed_attack_apply(&a, v, 3, &r);
	assert_true(v[0] == 2 && v[1] == -4 && v[2] == 6);
	assert_int_equal(ml_fed_attack_parse(&a, "noise:2"), FM_OK);
	ml_fed_attack_apply(&a, v, 3, &r);
	assert_true(v[0] != 2 && v[1] != -4 && v[2] != 6);
	assert_int_equal(ml_fed_attack_parse(&a, "none"), FM_OK);
	assert_int_equal(a.kind, ML_FED_ATTACK_NONE);
	assert_int_equal(ml_fed_attack_parse(&a, "scale"), FM_EINVAL);
	assert_int_equal(ml_fed_attack_parse(&a, "none:1"), FM_EINVAL);
	assert_int_equal(ml_fed_attack_parse(&a, "sign_flipx"), FM_EINVAL);
	assert_int_equal(ml_fed_attack_parse(&a, "scale:abc"), FM_EINVAL);
	assert_int_equal(ml_fed_attack_parse(&a, "scale:0"), FM_EINVAL);
}

/* --------------------------------------------------------- simulation */

struct rounds {
	int n;
	struct ml_fed_round r[16];
};

static int keep_round(void *arg, const struct ml_fed_round *r)
{
	struct rounds *rs = arg;

	if (rs->n < 16)
		rs->r[rs->n++] = *r;
	return 0;
}

static void sim_setup(struct ml_fed_sim_opts *o, struct rounds *rs)
{
	ml_fed_sim_opts_init(o);
	o->clients = 8;
	o->rounds = 4;
	o->classes = 4;
	o->split.kind = ML_FED_SPLIT_DIRICHLET;
	o->split.alpha = 1.0;
	o->local.lr = 0.01;
	o->seed = 3;
	o->on_round = keep_round;
	o->cb_arg = rs;
	memset(rs, 0, sizeof(*rs));
}

static void test_fedsim__simulation_learns_and_is_deterministic(void **state)
{
	struct ml_dataset train, test;
	struct ml_model *a = softmax_model(4, 9), *b = softmax_model(4, 9);
	struct ml_fed_sim_opts o;
	struct rounds ra, rb = { 0 };
	size_t n;

	(void)state;
	blobs(&train, 1600, 4, 1);
	blobs(&test, 400, 4, 2);
	sim_setup(&o, &ra);
	o.fed_eval = 1;
	assert_int_equal(ml_fed_simulate(a, &train, &test, &o), FM_OK);
	assert_int_equal(ra.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ra.r[i].round, i + 1);
		assert_int_equal(ra.r[i].participants, 8);
		assert_true(isnan(ra.r[i].epsilon));
		assert_true(isfinite(ra.r[i].train_loss));
		/* blobs: the clients' data is as easy as the test set */
		assert_near(ra.r[i].client_accuracy, ra.r[i].test_accuracy,
			    0.1);
	}
	assert_true(ra.r[3].test_accuracy > 0.85);
	assert_true(ra.r[3].test_loss < ra.r[0].test_loss);
	o.cb_arg = &rb;
	o.fed_eval = 0;
	assert_int_equal(ml_fed_simulate(b, &train, &test, &o), FM_OK);
	assert_true(isnan(rb.r[0].client_accuracy));
	n = ml_model_param_count(a);
	assert_memory_equal(ml_model_params(a, NULL), ml_model_params(b, NULL),
			    n * sizeof(float));
	assert_true(ra.r[3].test_accuracy == rb.r[3].test_accuracy);
	ml_model_free(a);
	ml_model_free(b);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
}

static void test_fedsim__simulation_dp_reports_growing_epsilon(void **state)
{
	struct ml_dataset train, test;
	struct ml_model *m = softmax_model(4, 9);
	struct ml_fed_sim_opts o;
	struct ml_dp_acct acct;
	struct rounds rs;
	double eps;

	(void)state;
	blobs(&train, 1600, 4, 1);
	blobs(&test, 400, 4, 2);
	sim_setup(&o, &rs);
	o.sample_rate = 0.5;
	o.dp_clip = 1.0;
	o.dp_noise = 1.1;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_OK);
	assert_int_equal(rs.n, 4);
	ml_dp_acct_init(&acct);
	for (int i = 0; i < 4; i++) {
		assert_true(rs.r[i].participants <= 8);
		assert_true(i == 0 || rs.r[i].epsilon > rs.r[i - 1].epsilon);
		/* the accountant's own figure for i + 1 rounds */
		assert_int_equal(ml_dp_acct_add(&acct, 0.5, 1.1, 1), FM_OK);
		assert_int_equal(ml_dp_acct_epsilon(&acct, 1e-5, &eps, NULL),
				 FM_OK);
		assert_true(rs.r[i].epsilon == eps);
	}
	/* robust rules have no DP accounting */
	o.agg.rule = ML_AGG_MEDIAN;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "fedavg"));
	ml_model_free(m);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
}

/* Two of eight clients flip and scale their updates: FedAvg goes the
 * wrong way, the median does not. */
static void test_fedsim__attackers_break_fedavg_not_median(void **state)
{
	struct ml_dataset train, test;
	struct ml_model *a = softmax_model(4, 9), *b = softmax_model(4, 9);
	struct ml_fed_sim_opts o;
	struct rounds ra, rb = { 0 };

	(void)state;
	blobs(&train, 1600, 4, 1);
	blobs(&test, 400, 4, 2);
	sim_setup(&o, &ra);
	o.split.kind = ML_FED_SPLIT_IID;
	o.malicious = 2;
	o.attack.kind = ML_FED_ATTACK_SIGN_FLIP;
	o.attack.scale = 10;
	assert_int_equal(ml_fed_simulate(a, &train, &test, &o), FM_OK);
	assert_int_equal(ra.r[0].malicious, 2);
	o.agg.rule = ML_AGG_MEDIAN;
	o.cb_arg = &rb;
	assert_int_equal(ml_fed_simulate(b, &train, &test, &o), FM_OK);
	assert_true(ra.r[3].test_accuracy < 0.6);
	assert_true(rb.r[3].test_accuracy > 0.85);
	ml_model_free(a);
	ml_model_free(b);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
}

static void test_fedsim__simulation_rejects_bad_options(void **state)
{
	struct ml_dataset train, test;
	struct ml_model *m = softmax_model(4, 9);
	struct ml_fed_sim_opts o;
	struct rounds rs;

	(void)state;
	blobs(&train, 200, 4, 1);
	blobs(&test, 40, 4, 2);
	sim_setup(&o, &rs);
	o.clients = 0;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	sim_setup(&o, &rs);
	o.rounds = 0;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	sim_setup(&o, &rs);
	o.sample_rate = 0;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	sim_setup(&o, &rs);
	o.malicious = 9;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	sim_setup(&o, &rs);
	o.agg.rule = ML_AGG_KRUM;
	o.agg.krum_f = 3; /* needs 9 clients */
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	sim_setup(&o, &rs);
	o.dp_clip = -1;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	sim_setup(&o, &rs);
	o.classes = 3; /* labels go up to 3 */
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	/* a test label the model cannot output */
	sim_setup(&o, &rs);
	test.y[5] = 4;
	assert_int_equal(ml_fed_simulate(m, &train, &test, &o), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "test data"));
	test.y[5] = 1;
	assert_int_equal(rs.n, 0);
	ml_model_free(m);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fedsim__eval_combine_weights_by_examples),
		cmocka_unit_test(test_fedsim__eval_combine_rejects_non_finite),
		cmocka_unit_test(test_fedsim__evaluate_shards_equals_whole),
		cmocka_unit_test(test_fedsim__gamma_and_dirichlet_moments),
		cmocka_unit_test(test_fedsim__split_parse),
		cmocka_unit_test(test_fedsim__split_iid_is_balanced),
		cmocka_unit_test(test_fedsim__split_dirichlet_skews_labels),
		cmocka_unit_test(test_fedsim__split_shards_give_few_labels),
		cmocka_unit_test(test_fedsim__split_rejects_bad_input),
		cmocka_unit_test(test_fedsim__attacks),
		cmocka_unit_test(
			test_fedsim__simulation_learns_and_is_deterministic),
		cmocka_unit_test(
			test_fedsim__simulation_dp_reports_growing_epsilon),
		cmocka_unit_test(
			test_fedsim__attackers_break_fedavg_not_median),
		cmocka_unit_test(test_fedsim__simulation_rejects_bad_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
