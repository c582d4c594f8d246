/* clients/lib/cli/round.c: when a round's new version counts as worse
 * than the current one (held-out accuracy lower; loss higher where the
 * task's loss is mean squared error), and the line logs show; which
 * accepted results a round combines (sync: its own round's; async: all
 * not yet in a version) and their weights (staleness-discounted in
 * async); the metrics of a version that keeps the current model. The
 * round's helpers are private, so the file is built into this test (real
 * services: tests/integration/validatord_round_test.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../clients/lib/cli/round.c"

/* scores of a round: the current version, two inputs, the new one */
static json_t *scores(const char *metric, double cur, double next)
{
	json_t *s = json_pack("{s:b, s:s, s:s, s:{s:i, s:f, s:f},"
			      " s:[{s:s, s:f, s:f}, {s:s, s:f, s:f}],"
			      " s:{s:i, s:f, s:f}}",
			      "measured", 1, "metric", metric, "rule",
			      "median", "current", "version", 3, "accuracy",
			      cur, "loss", cur, "inputs", "result",
			      "1b2c3d4e-0000", "accuracy", 0.53, "loss", 0.53,
			      "result", "2c3d4e5f-0000", "accuracy", 0.65,
			      "loss", 0.65, "next", "version", 4, "accuracy",
			      next, "loss", next);

	assert_non_null(s);
	return s;
}

static void test_round__worse_by_accuracy(void **state)
{
	char why[512] = "";
	json_t *s = scores("accuracy", 0.53, 0.35);

	(void)state;
	assert_int_equal(worse(why, sizeof(why), s), 1);
	assert_string_equal(why, "version 4 (median of 2 results) scores "
			    "held-out accuracy 0.3500, below version 3's "
			    "0.5300 (its inputs score 0.5300 to 0.6500)");
	json_decref(s);
	/* as good is not worse; better is not either */
	s = scores("accuracy", 0.53, 0.53);
	assert_int_equal(worse(why, sizeof(why), s), 0);
	json_decref(s);
	s = scores("accuracy", 0.53, 0.60);
	assert_int_equal(worse(why, sizeof(why), s), 0);
	json_decref(s);
}

static void test_round__worse_by_loss_for_mse(void **state)
{
	json_t *mse = json_loads("{\"spec\": {\"training\": {\"loss\": "
				 "\"mean_squared_error\"}}}", 0, NULL);
	json_t *ce = json_loads("{\"spec\": {\"training\": {\"loss\": "
				"\"sparse_categorical_crossentropy\"}}}", 0,
				NULL);
	char why[512] = "";
	json_t *s;

	(void)state;
	assert_string_equal(metric_of(mse), "loss");
	assert_string_equal(metric_of(ce), "accuracy");
	/* a higher loss is worse */
	s = scores("loss", 0.2, 0.3);
	assert_int_equal(worse(why, sizeof(why), s), 1);
	assert_non_null(strstr(why, "held-out loss 0.3000, above version 3's "
			       "0.2000"));
	json_decref(s);
	s = scores("loss", 0.3, 0.2);
	assert_int_equal(worse(why, sizeof(why), s), 0);
	json_decref(s);
	json_decref(mse);
	json_decref(ce);
}

static void test_round__unmeasured_is_never_refused(void **state)
{
	char why[512] = "", line[256];
	json_t *s = scores("accuracy", 0.53, 0.35);

	(void)state;
	round_scores_line(line, sizeof(line), s);
	assert_string_equal(line, "held-out accuracy 0.3500 (version 3: "
			    "0.5300; results 1b2c3d4e 0.5300, 2c3d4e5f "
			    "0.6500)");
	json_object_set_new(s, "measured", json_false());
	assert_int_equal(worse(why, sizeof(why), s), 0);
	round_scores_line(line, sizeof(line), s);
	assert_string_equal(line, "not measured (no held-out data)");
	json_decref(s);
}

/* An accepted result of round r trained from version base. */
static json_t *result(const char *id, int r, int base, long long n)
{
	json_t *j = json_pack("{s:s, s:i, s:i, s:I}", "id", id, "round", r,
			      "base_version", base, "num_examples",
			      (json_int_t)n);

	assert_non_null(j);
	return j;
}

static json_t *ids_of(const json_t *arr)
{
	json_t *out = json_array(), *r;
	size_t i;

	json_array_foreach(arr, i, r)
		json_array_append_new(out, json_string(cli_str(r, "id")));
	return out;
}

static void assert_ids(const json_t *arr, const char *want)
{
	json_t *ids = ids_of(arr), *w = json_loads(want, 0, NULL);

	assert_non_null(w);
	if (!json_equal(ids, w)) {
		char *got = json_dumps(ids, JSON_COMPACT);

		print_error("got %s, want %s\n", got, want);
		free(got);
		fail();
	}
	json_decref(ids);
	json_decref(w);
}

/* Version 1 holds a; b is of round 1 but came too late for it; c and d
 * are of round 2, e of round 3 (a later round's, once it exists). */
static void test_round__selects_the_rounds_results(void **state)
{
	json_t *acc = json_pack("[o, o, o, o, o]", result("a", 1, 0, 10),
				result("b", 1, 0, 10), result("c", 2, 1, 10),
				result("d", 2, 1, 10), result("e", 3, 2, 10));
	json_t *done = json_pack("[s]", "a"), *pending = json_array();

	(void)state;
	/* sync with rounds: round 2 (version 1 + 1) alone */
	select_pending(pending, acc, done, 1, 1);
	assert_ids(pending, "[\"c\", \"d\"]");
	json_array_clear(pending);
	select_pending(pending, acc, done, 2, 1);
	assert_ids(pending, "[\"e\"]");
	/* async, or a marketplace without rounds: all not in a version */
	json_array_clear(pending);
	select_pending(pending, acc, done, 1, 0);
	assert_ids(pending, "[\"b\", \"c\", \"d\", \"e\"]");
	/* results without round fields are round 1's */
	json_array_clear(pending);
	json_array_clear(acc);
	json_array_append_new(acc, json_pack("{s:s}", "id", "x"));
	select_pending(pending, acc, done, 0, 1);
	assert_ids(pending, "[\"x\"]");
	json_array_clear(pending);
	select_pending(pending, acc, done, 1, 1);
	assert_ids(pending, "[]");
	json_decref(acc);
	json_decref(done);
	json_decref(pending);
}

/* The settings a round reads from the task: the buffer of an async
 * task, min_results_per_round of a sync one (top level or, in older
 * specs, under aggregation), the staleness exponent, readiness. */
static void test_round__settings_of_the_task(void **state)
{
	struct round_state s;
	json_t *t;

	(void)state;
	t = json_loads("{\"aggregation_mode\": \"async\", \"current_round\": 3,"
		       " \"round\": {\"ready\": true}, \"spec\":"
		       " {\"min_results_per_round\": 3, \"aggregation\":"
		       " {\"mode\": \"async\", \"async\": {\"buffer\": 2,"
		       " \"max_staleness\": 4, \"staleness_exponent\": 1.5}}}}",
		       0, NULL);
	assert_non_null(t);
	memset(&s, 0, sizeof(s));
	round_settings(&s, t);
	assert_int_equal(s.async, 1);
	assert_int_equal(s.min_results, 2);
	assert_true(s.staleness_exponent == 1.5);
	assert_int_equal(s.ready, 1);
	json_decref(t);
	t = json_loads("{\"current_round\": 1, \"round\": {\"ready\": false},"
		       " \"spec\": {\"min_results_per_round\": 3,"
		       " \"aggregation\": {\"mode\": \"sync\"}}}", 0, NULL);
	memset(&s, 0, sizeof(s));
	round_settings(&s, t);
	assert_int_equal(s.async, 0);
	assert_int_equal(s.min_results, 3);
	assert_int_equal(s.ready, 0);
	json_decref(t);
	/* before rounds: aggregation.min_results_per_round, no readiness */
	t = json_loads("{\"spec\": {\"aggregation\": {\"min_results_per_round\":"
		       " 4}}}", 0, NULL);
	memset(&s, 0, sizeof(s));
	round_settings(&s, t);
	assert_int_equal(s.min_results, 4);
	assert_int_equal(s.ready, -1);
	json_decref(t);
}

/* FedAvg weights: example counts; in async discounted by staleness, the
 * versions published since the result's base (ROUNDS.md's formula). */
static void test_round__weights_discount_staleness(void **state)
{
	struct round_state s = { 0 };
	json_t *fresh = result("f", 4, 3, 100), *old = result("o", 2, 0, 100);
	json_t *none = json_pack("{s:s, s:i}", "id", "n", "num_examples", 0);

	(void)state;
	s.version = 3; /* building version 4 */
	s.staleness_exponent = 0.5;
	assert_true(round_weight(&s, fresh) == 100);
	assert_true(round_weight(&s, old) == 100); /* sync: no discount */
	assert_true(round_weight(&s, none) == 1);
	s.async = 1;
	assert_true(round_weight(&s, fresh) == 100);
	/* trained from version 0, 3 versions ago: 100 / sqrt(4) */
	assert_true(fabs(round_weight(&s, old) - 50) < 1e-9);
	s.staleness_exponent = 1;
	assert_true(fabs(round_weight(&s, old) - 25) < 1e-9);
	json_decref(fresh);
	json_decref(old);
	json_decref(none);
}

/* A claimed count weighs min(claimed, the task's max_examples_per_result):
 * 10^12 examples claimed outweigh no honest result. */
static void test_round__weights_capped(void **state)
{
	struct round_state s = { 0 };
	json_t *t = json_pack("{s:s, s:{s:i}}", "id", "0xab", "spec",
			      "max_examples_per_result", 500);
	json_t *huge = result("h", 1, 0, 1000000000000LL);
	json_t *fair = result("f", 1, 0, 300);

	(void)state;
	/* no cap in the spec: the default's */
	assert_true(round_weight(&s, huge) == 100000);
	assert_true(round_weight(&s, fair) == 300);
	round_settings(&s, t);
	assert_int_equal(s.max_examples, 500);
	assert_true(round_weight(&s, huge) == 500);
	assert_true(round_weight(&s, fair) == 300);
	s.async = 1;
	s.version = 3;
	s.staleness_exponent = 1;
	/* trained from version 0: the cap, then the discount */
	assert_true(fabs(round_weight(&s, huge) - 125) < 1e-9);
	json_decref(t);
	json_decref(huge);
	json_decref(fair);
}

/* A kept version carries the current version's figures as its own, why
 * it was kept, and the refused aggregate's figures. */
static void test_round__kept_metrics(void **state)
{
	json_t *s = scores("accuracy", 0.53, 0.35);
	json_t *m = kept_metrics(s, 2, "version 4 scores worse");

	(void)state;
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "results")), 2);
	assert_string_equal(cli_str(m, "kept"), "version 4 scores worse");
	assert_true(json_number_value(json_object_get(m, "accuracy")) == 0.53);
	assert_true(json_number_value(json_object_get(m, "previous_accuracy"))
		    == 0.53);
	assert_string_equal(cli_str(json_object_get(m, "aggregate"), "rule"),
			    "median");
	assert_true(json_number_value(json_object_get(
			    json_object_get(m, "aggregate"), "accuracy")) == 0.35);
	json_decref(m);
	json_decref(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round__worse_by_accuracy),
		cmocka_unit_test(test_round__worse_by_loss_for_mse),
		cmocka_unit_test(test_round__unmeasured_is_never_refused),
		cmocka_unit_test(test_round__selects_the_rounds_results),
		cmocka_unit_test(test_round__settings_of_the_task),
		cmocka_unit_test(test_round__weights_discount_staleness),
		cmocka_unit_test(test_round__weights_capped),
		cmocka_unit_test(test_round__kept_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
