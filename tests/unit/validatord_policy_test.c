/* The validator daemon's model screening and verdicts on in-memory
 * models (the daemon against real services is tests/e2e/demo_test.sh).
 * The policy's helpers are private to the daemon, so the file is built
 * into this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../clients/validatord/policy.c"

static struct ml_model *small_model(void)
{
	struct ml_model *m = NULL;
	json_t *spec = json_loads("{\"input_shape\": [3], \"layers\": "
				  "[{\"type\": \"dense\", \"units\": 2}]}",
				  0, NULL);

	assert_non_null(spec);
	assert_int_equal(ml_model_from_spec(&m, spec, 7), FM_OK);
	json_decref(spec);
	return m;
}

/* A pool of k updates of one base model: update i moves every parameter
 * by 0.01 * (i + 1), the last one by far more. */
static void make_pool(struct pool *p, size_t k)
{
	memset(p, 0, sizeof(*p));
	p->contributor = 1;
	p->base = small_model();
	p->ns = p->n = k;
	p->e = calloc(k, sizeof(*p->e));
	assert_non_null(p->e);
	for (size_t i = 0; i < k; i++) {
		size_t n;
		float *w;

		assert_int_equal(ml_model_clone(&p->e[i].m, p->base), FM_OK);
		w = ml_model_params(p->e[i].m, &n);
		for (size_t j = 0; j < n; j++)
			w[j] += i + 1 == k ? 5.0f : 0.01f * (float)(i + 1);
		p->e[i].arch_ok = 1;
	}
}

/* Screening scores copies of the updates: the loaded models keep their
 * weights (they were once overwritten with the deltas). */
static void test_screen__leaves_the_models_alone(void **state)
{
	struct pool p;
	float *before[5];
	double score[5] = { 0 };
	size_t n = 0;
	int screened = -1;

	(void)state;
	make_pool(&p, 5);
	for (size_t i = 0; i < 5; i++) {
		const float *w = ml_model_params_const(p.e[i].m, &n);

		before[i] = malloc(n * sizeof(float));
		assert_non_null(before[i]);
		memcpy(before[i], w, n * sizeof(float));
	}
	assert_int_equal(screen_updates(&p, score, &screened), FM_OK);
	assert_int_equal(screened, 1);
	for (size_t i = 0; i < 5; i++) {
		const float *w = ml_model_params_const(p.e[i].m, &n);

		assert_memory_equal(w, before[i], n * sizeof(float));
		free(before[i]);
	}
	/* the far update stands out; the others sit near the median */
	for (size_t i = 0; i < 4; i++) {
		assert_true(score[4] > 100 * fabs(score[i]));
		assert_true(fabs(score[i]) < 2);
	}
	pool_cleanup(&p);
}

/* Screening again gives the same scores: nothing it reads changed. */
static void test_screen__repeats(void **state)
{
	struct pool p;
	double a[4] = { 0 }, b[4] = { 0 };
	int screened = 0;

	(void)state;
	make_pool(&p, 4);
	assert_int_equal(screen_updates(&p, a, &screened), FM_OK);
	assert_int_equal(screen_updates(&p, b, &screened), FM_OK);
	assert_memory_equal(a, b, sizeof(a));
	pool_cleanup(&p);
}

/* Fewer than three updates make no pool to screen against. */
static void test_screen__needs_three(void **state)
{
	struct pool p;
	double score[2] = { 0 };
	int screened = -1;

	(void)state;
	make_pool(&p, 3);
	p.e[2].arch_ok = 0;
	assert_int_equal(screen_updates(&p, score, &screened), FM_OK);
	assert_int_equal(screened, 0);
	pool_cleanup(&p);
}

static void test_verdict__reasons(void **state)
{
	json_t *r = json_pack("{s:s, s:s}", "id", "r1", "contributor", "0xab");
	struct entry x = { .result = r, .evaluated = 1, .arch_ok = 1,
			   .ev = { .n = 100, .loss = 0.9, .accuracy = 0.5 } };
	struct model_bar bar;
	struct verdict v;

	(void)state;
	memset(&bar, 0, sizeof(bar));
	bar.t.min_accuracy = 0.4;
	bar.t.min_improvement = 0.01;
	bar.t.max_loss = 1;
	bar.t.max_distance = 3;
	bar.t.gold_min = NAN;
	bar.base_accuracy = 0.48;
	bar.version = 2;
	bar.screen = 1;

	memset(&v, 0, sizeof(v));
	model_verdict(&v, &x, 1.0, &bar);
	assert_int_equal(v.accept, 1);
	assert_string_equal(v.result_id, "r1");
	assert_true(fabs(json_real_value(json_object_get(v.metrics,
			 "improvement")) - 0.02) < 1e-9);
	json_decref(v.metrics);

	memset(&v, 0, sizeof(v));
	model_verdict(&v, &x, 4.5, &bar);
	assert_int_equal(v.accept, 0);
	assert_non_null(strstr(v.reason, "median absolute deviations"));
	json_decref(v.metrics);

	bar.t.min_improvement = 0.1;
	memset(&v, 0, sizeof(v));
	model_verdict(&v, &x, 0, &bar);
	assert_int_equal(v.accept, 0);
	assert_non_null(strstr(v.reason, "changes version 2's 0.4800"));
	json_decref(v.metrics);

	x.arch_ok = 0;
	memset(&v, 0, sizeof(v));
	model_verdict(&v, &x, NAN, &bar);
	assert_int_equal(v.accept, 0);
	assert_string_equal(v.reason, "not the task's architecture");
	json_decref(v.metrics);
	json_decref(r);
}

/* Update i of a pool of three: its own direction (a pattern that differs
 * per i), times scale; with result id "r<i>" submitted at second sec. */
static void set_update(struct pool *p, size_t i, size_t pattern, float scale,
		       int sec)
{
	const float *b = ml_model_params_const(p->base, NULL);
	char ts[32], id[8];
	size_t n;
	float *w = ml_model_params(p->e[i].m, &n);

	for (size_t j = 0; j < n; j++)
		w[j] = b[j] + scale * (float)((j * (pattern + 3) + pattern) %
					       7) * 0.01f;
	snprintf(ts, sizeof(ts), "2026-01-01T00:00:%02dZ", sec);
	snprintf(id, sizeof(id), "r%zu", i);
	json_decref((json_t *)p->e[i].result);
	p->e[i].result = json_pack("{s:s, s:s, s:s}", "id", id, "contributor",
				   "0xab", "submitted_at", ts);
}

static void free_results(struct pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		json_decref((json_t *)p->e[i].result);
}

/* The later of two updates pointing the same way is the copy, scaled or
 * not; the earlier and a different one pass. */
static void test_copies__later_one_is_the_copy(void **state)
{
	struct pool p;
	struct model_bar bar;
	struct verdict v;

	(void)state;
	make_pool(&p, 3);
	set_update(&p, 0, 1, 1.0f, 5); /* a copy of r1, submitted later */
	set_update(&p, 1, 1, 1.0f, 2);
	set_update(&p, 2, 2, 1.0f, 1);
	assert_int_equal(mark_copies(&p), FM_OK);
	assert_string_equal(p.e[1].copy, "");
	assert_string_equal(p.e[2].copy, "");
	assert_non_null(strstr(p.e[0].copy, "result r1 of this round has the "
				"same update"));
	assert_non_null(strstr(p.e[0].copy, "copies are not paid"));

	memset(&bar, 0, sizeof(bar));
	bar.t.max_distance = bar.t.min_accuracy = bar.t.min_improvement = NAN;
	bar.t.max_loss = bar.t.gold_min = NAN;
	memset(&v, 0, sizeof(v));
	model_verdict(&v, &p.e[0], NAN, &bar);
	assert_int_equal(v.accept, 0);
	assert_string_equal(v.reason, p.e[0].copy);
	json_decref(v.metrics);
	memset(&v, 0, sizeof(v));
	model_verdict(&v, &p.e[1], NAN, &bar);
	assert_int_equal(v.accept, 1);
	json_decref(v.metrics);

	/* scaled up to look different: still the same direction */
	p.e[0].copy[0] = '\0';
	set_update(&p, 0, 1, 3.0f, 5);
	assert_int_equal(mark_copies(&p), FM_OK);
	assert_non_null(strstr(p.e[0].copy, "result r1 "));
	/* a result already pending earlier in the round counts too */
	p.e[0].copy[0] = '\0';
	p.ns = 1;
	assert_int_equal(mark_copies(&p), FM_OK);
	assert_non_null(strstr(p.e[0].copy, "result r1 "));
	/* a copy submitted first is the original: the later one pays */
	p.ns = 3;
	p.e[0].copy[0] = '\0';
	set_update(&p, 0, 1, 1.0f, 0);
	assert_int_equal(mark_copies(&p), FM_OK);
	assert_string_equal(p.e[0].copy, "");
	assert_non_null(strstr(p.e[1].copy, "result r0 "));
	free_results(&p);
	pool_cleanup(&p);
}

/* An update equal to the current version is no training. */
static void test_copies__no_training(void **state)
{
	struct pool p;

	(void)state;
	make_pool(&p, 3);
	set_update(&p, 0, 1, 0.0f, 1);
	set_update(&p, 1, 2, 1e-9f, 2); /* within float noise of base */
	set_update(&p, 2, 3, 1.0f, 3);
	assert_int_equal(mark_copies(&p), FM_OK);
	assert_string_equal(p.e[0].copy,
			    "update equals the current version: no training");
	assert_string_equal(p.e[1].copy,
			    "update equals the current version: no training");
	assert_string_equal(p.e[2].copy, "");
	free_results(&p);
	pool_cleanup(&p);
}

/* A round's pool is judged together: with min_results of them, and in
 * a synchronous round once the round is full (every slot's result
 * submitted or decided). */
static void test_pool__waits_for_the_round(void **state)
{
	struct round_state st = { 0 };
	json_t *t = json_pack("{s:i, s:{s:i, s:i, s:i}}", "results_per_round",
			      5, "round", "submitted", 2, "accepted", 1,
			      "rejected", 0);
	json_t *old = json_object();

	(void)state;
	st.pending = json_pack("[{s:s}]", "id", "accepted-before");
	st.min_results = 3;
	/* 1 submitted + 1 accepted < 3 */
	assert_int_equal(round_pool_waits(old, &st, 1), 1);
	/* enough for min_results, but 2 of 5 slots have sent nothing */
	assert_int_equal(round_pool_waits(t, &st, 2), 1);
	/* the results read now count, when the task was read before */
	assert_int_equal(round_pool_waits(t, &st, 3), 1);
	assert_int_equal(round_pool_waits(t, &st, 4), 0);
	json_object_set_new(json_object_get(t, "round"), "rejected",
			    json_integer(2));
	assert_int_equal(round_pool_waits(t, &st, 2), 0);
	/* async has no barrier: the buffer is enough */
	json_object_set_new(json_object_get(t, "round"), "rejected",
			    json_integer(0));
	st.async = 1;
	assert_int_equal(round_pool_waits(t, &st, 2), 0);
	/* a marketplace without rounds: min_results alone */
	st.async = 0;
	assert_int_equal(round_pool_waits(old, &st, 2), 0);
	json_decref(st.pending);
	json_decref(t);
	json_decref(old);
}

/* How far off a round's deadline is: a missing one is far. */
static void test_pool__deadline(void **state)
{
	char iso[32];
	time_t soon = time(NULL) + 100;
	struct tm tm;

	(void)state;
	gmtime_r(&soon, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	assert_true(-age_s(iso) > 95 && -age_s(iso) <= 100);
	assert_true(-age_s("") > 1000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_screen__leaves_the_models_alone),
		cmocka_unit_test(test_screen__repeats),
		cmocka_unit_test(test_screen__needs_three),
		cmocka_unit_test(test_verdict__reasons),
		cmocka_unit_test(test_copies__later_one_is_the_copy),
		cmocka_unit_test(test_copies__no_training),
		cmocka_unit_test(test_pool__waits_for_the_round),
		cmocka_unit_test(test_pool__deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
