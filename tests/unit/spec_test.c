/* Task spec parsing: every rule names the field it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "market/spec.h"
#include "marketfx.h"

#include <string.h>
#include <time.h>

static long long now_s(void)
{
	return (long long)time(NULL);
}

static void expect_error(json_t *spec, const char *needle)
{
	struct task_spec s;

	assert_int_equal(task_spec_parse(&s, spec, now_s()), FM_EINVAL);
	if (!strstr(fm_error_msg(), needle))
		fail_msg("error \"%s\" does not mention \"%s\"", fm_error_msg(),
			 needle);
	json_decref(spec);
}

static void test_spec__valid_spec_parses(void **state)
{
	json_t *j = mfx_spec(10);
	struct task_spec s;

	(void)state;
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.kind, TASK_MODEL_CONTRIBUTOR);
	assert_int_equal(s.max_assignments, 10);
	assert_string_equal(s.reward_wei, "1000000000000000");
	assert_true(s.expires_at > now_s() + 86000);
	assert_string_equal(s.title, "Improve the Fashion-MNIST classifier");
	task_spec_cleanup(&s);
	json_decref(j);
}

static void test_spec__bad_fields_are_named(void **state)
{
	json_t *j;

	(void)state;
	j = mfx_spec(10);
	json_object_set_new(json_object_get(j, "training"), "batch_size",
			    json_integer(0));
	expect_error(j, "task.training.batch_size: expected integer in");

	j = mfx_spec(10);
	json_object_set_new(j, "kind", json_string("painter"));
	expect_error(j, "task.kind: expected one of");

	j = mfx_spec(10);
	json_object_set_new(j, "reward_wei", json_string("-5"));
	expect_error(j, "task.reward_wei");

	j = mfx_spec(10);
	json_object_set_new(j, "reward_wei", json_string("0"));
	expect_error(j, "task.reward_wei: must be greater than 0");

	j = mfx_spec(10);
	json_object_set_new(j, "task_id", json_string("0x1234"));
	expect_error(j, "task.task_id");

	j = mfx_spec(10);
	json_object_set_new(j, "surprise", json_true());
	expect_error(j, "task.surprise: unknown field");

	j = mfx_spec(10);
	json_object_set_new(json_object_get(j, "validation"), "strategy",
			    json_string("vibes"));
	expect_error(j, "task.validation.strategy");

	j = mfx_spec(3);
	json_object_set_new(json_object_get(j, "aggregation"),
			    "min_results_per_round", json_integer(5));
	expect_error(j, "min_results_per_round: 5 exceeds results_per_round 3");

	j = mfx_spec(10);
	json_object_set_new(j, "validator", json_string("0xnope"));
	expect_error(j, "task.validator");

	j = mfx_spec(10);
	json_object_set_new(j, "expires_at", json_string("2020-01-01T00:00:00Z"));
	expect_error(j, "give lifetime_s or expires_at, not both");

	j = mfx_spec(10);
	json_object_del(j, "lifetime_s");
	json_object_set_new(j, "expires_at", json_string("2020-01-01T00:00:00Z"));
	expect_error(j, "task.expires_at: must be at least a minute in the "
			"future");

	j = mfx_spec(10);
	json_object_del(j, "training");
	expect_error(j, "task.training: required for model_contributor");

	j = mfx_spec(10);
	json_object_set_new(j, "assets", json_string("zz"));
	expect_error(j, "task.assets");
}

/* max_examples_per_result: 100000 unless the task says, an integer
 * >= 1. */
static void test_spec__max_examples_per_result(void **state)
{
	json_t *j = mfx_spec(2);
	struct task_spec s;

	(void)state;
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.max_examples_per_result, 100000);
	task_spec_cleanup(&s);
	json_object_set_new(j, "max_examples_per_result", json_integer(600));
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.max_examples_per_result, 600);
	task_spec_cleanup(&s);
	json_decref(j);

	j = mfx_spec(2);
	json_object_set_new(j, "max_examples_per_result", json_integer(0));
	expect_error(j, "task.max_examples_per_result: expected integer in "
			"[1, ");
	j = mfx_spec(2);
	json_object_set_new(j, "max_examples_per_result", json_string("10"));
	expect_error(j, "task.max_examples_per_result");
}

/* Rounds: defaults spelled out, the escrow's payouts, and each bad
 * setting named. */
static void test_spec__rounds(void **state)
{
	json_t *j = mfx_spec(5), *a;
	struct task_spec s;

	(void)state;
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.rounds, 1);
	assert_int_equal(s.max_payouts, 5);
	assert_int_equal(s.round_duration_s, s.assignment_duration_s);
	assert_false(s.async);
	assert_true(s.target_accuracy < 0);
	/* the stored spec spells out every round setting */
	assert_int_equal(json_integer_value(json_object_get(s.doc, "rounds")),
			 1);
	assert_int_equal(json_integer_value(json_object_get(
				 s.doc, "results_per_round")), 5);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(s.doc, "aggregation"),
				    "mode")), "sync");
	task_spec_cleanup(&s);

	json_object_del(j, "max_assignments");
	json_object_set_new(j, "results_per_round", json_integer(4));
	json_object_set_new(j, "rounds", json_integer(6));
	json_object_set_new(j, "round_duration_s", json_integer(120));
	json_object_set_new(j, "target_accuracy", json_real(0.8));
	json_object_set_new(j, "min_results_per_round", json_integer(3));
	json_object_del(json_object_get(j, "aggregation"),
			"min_results_per_round");
	a = json_object_get(j, "aggregation");
	json_object_set_new(a, "mode", json_string("async"));
	json_object_set_new(a, "async", json_pack("{s:i, s:i}", "buffer", 2,
						  "max_staleness", 3));
	json_object_set_new(a, "dp", json_pack("{s:f, s:f, s:f}", "clip", 1.0,
					       "noise", 1.1, "max_epsilon",
					       5.0));
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.rounds, 6);
	assert_int_equal(s.max_assignments, 4);
	assert_int_equal(s.max_payouts, 24);
	assert_int_equal(s.round_duration_s, 120);
	assert_int_equal(s.min_results_per_round, 3);
	assert_true(s.target_accuracy > 0.79 && s.target_accuracy < 0.81);
	assert_true(s.async);
	assert_int_equal(s.async_buffer, 2);
	assert_int_equal(s.max_staleness, 3);
	assert_true(s.staleness_exponent == 0.5);
	assert_true(s.dp && s.dp_noise == 1.1 && s.dp_max_epsilon == 5.0);
	assert_true(s.dp_delta == 1e-5);
	assert_int_equal(json_integer_value(json_object_get(
				 s.doc, "max_assignments")), 4);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(s.doc, "aggregation"),
				 "min_results_per_round")), 3);
	task_spec_cleanup(&s);
	json_decref(j);

	j = mfx_spec(5);
	json_object_set_new(j, "results_per_round", json_integer(4));
	expect_error(j, "task.results_per_round: 4 differs from "
			"task.max_assignments 5");

	j = mfx_spec(5);
	json_object_set_new(j, "rounds", json_integer(0));
	expect_error(j, "task.rounds: expected integer in");

	j = mfx_spec(5000);
	json_object_set_new(j, "rounds", json_integer(1000));
	expect_error(j, "task.rounds: 1000 rounds x 5000 results per round "
			"exceeds");

	j = mfx_spec(5);
	json_object_set_new(j, "min_results_per_round", json_integer(2));
	expect_error(j, "task.min_results_per_round: 2 differs from "
			"task.aggregation.min_results_per_round");

	j = mfx_spec(5);
	json_object_set_new(j, "target_accuracy", json_real(1.5));
	expect_error(j, "task.target_accuracy: expected number in");

	j = mfx_spec(5);
	json_object_set_new(json_object_get(j, "aggregation"), "mode",
			    json_string("eventually"));
	expect_error(j, "task.aggregation.mode: expected one of");

	j = mfx_spec(5);
	json_object_set_new(json_object_get(j, "aggregation"), "async",
			    json_pack("{s:i}", "buffer", 2));
	expect_error(j, "task.aggregation.async: only with mode \"async\"");

	j = mfx_spec(5);
	a = json_object_get(j, "aggregation");
	json_object_set_new(a, "mode", json_string("async"));
	json_object_set_new(a, "async", json_pack("{s:i}", "buffer", 6));
	expect_error(j, "task.aggregation.async.buffer: expected integer in");

	j = mfx_spec(5);
	json_object_set_new(json_object_get(j, "aggregation"), "dp",
			    json_pack("{s:f, s:f, s:f}", "clip", 1.0, "noise",
				      0.0, "max_epsilon", 3.0));
	expect_error(j, "task.aggregation.dp.max_epsilon: needs noise > 0");

	/* noise 1.1 spends epsilon 4.24 in one round at delta 1e-5 */
	j = mfx_spec(5);
	json_object_set_new(json_object_get(j, "aggregation"), "dp",
			    json_pack("{s:f, s:f, s:f}", "clip", 1.0, "noise",
				      1.1, "max_epsilon", 4.0));
	expect_error(j, "task.aggregation.dp.max_epsilon: 4 is spent by one "
			"round already (epsilon 4.24");
}

static void test_spec__reward_scoring(void **state)
{
	json_t *j = mfx_spec(5);
	struct task_spec s;

	(void)state;
	json_object_del(j, "reward_wei");
	json_object_set_new(j, "reward",
			    json_pack("{s:s, s:s, s:f}", "per_result_wei",
				      "2000", "scoring", "shapley",
				      "floor_share", 0.3));
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.scoring, SCORING_SHAPLEY);
	assert_string_equal(s.reward_wei, "2000");
	assert_true(s.floor_share == 0.3);
	assert_int_equal(s.shapley_method, -1);
	/* both spellings in the stored spec */
	assert_string_equal(json_string_value(json_object_get(s.doc,
							      "reward_wei")),
			    "2000");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(s.doc, "reward"),
				    "method")), "auto");
	task_spec_cleanup(&s);
	json_decref(j);

	j = mfx_spec(5);
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	assert_int_equal(s.scoring, SCORING_FLAT);
	task_spec_cleanup(&s);
	json_object_set_new(j, "reward", json_pack("{s:s}", "per_result_wei",
						   "7"));
	expect_error(j, "task.reward.per_result_wei: 7 differs from "
			"task.reward_wei");

	j = mfx_spec(5);
	json_object_set_new(j, "reward", json_pack("{s:s, s:f}", "scoring",
						   "flat", "floor_share", 0.5));
	expect_error(j, "apply to scoring \"shapley\" only");

	j = mfx_spec(5);
	json_object_set_new(j, "reward", json_pack("{s:s, s:f}", "scoring",
						   "shapley", "floor_share",
						   1.5));
	expect_error(j, "task.reward.floor_share: expected number in");

	j = mfx_spec(5);
	json_object_set_new(j, "reward", json_pack("{s:s}", "scoring",
						   "votes"));
	expect_error(j, "task.reward.scoring: expected one of");

	j = mfx_spec(5);
	json_object_del(j, "reward_wei");
	json_object_set_new(j, "reward", json_pack("{s:s}", "scoring",
						   "shapley"));
	expect_error(j, "task.reward.per_result_wei: required");

	j = mfx_spec(5);
	json_object_del(j, "reward_wei");
	json_object_set_new(j, "reward", json_pack("{s:s}", "per_result_wei",
						   "0"));
	expect_error(j, "task.reward.per_result_wei: must be greater than 0");
}

static void test_spec__annotation_needs_no_training(void **state)
{
	json_t *j = mfx_spec(5);
	struct task_spec s;

	(void)state;
	json_object_set_new(j, "kind", json_string("data_annotator"));
	json_object_del(j, "training");
	assert_int_equal(task_spec_parse(&s, j, now_s()), FM_OK);
	task_spec_cleanup(&s);
	json_decref(j);
}

static void test_spec__wei_arithmetic(void **state)
{
	char out[80];

	(void)state;
	assert_int_equal(spec_wei_mul(out, "1000000000000000", 10), FM_OK);
	assert_string_equal(out, "10000000000000000");
	assert_int_equal(spec_wei_mul(out, "0", 10), FM_OK);
	assert_string_equal(out, "0");
	assert_int_equal(spec_wei_mul(out, "123456789", 1000), FM_OK);
	assert_string_equal(out, "123456789000");
	/* 2^256 - 1 times 2 overflows */
	assert_int_equal(spec_wei_mul(out,
				      "1157920892373161954235709850086879078"
				      "53269984665640564039457584007913129639"
				      "935",
				      2),
			 FM_EINVAL);
	assert_int_equal(spec_wei("01", "x"), FM_EINVAL);
	assert_int_equal(spec_wei("1157920892373161954235709850086879078"
				  "53269984665640564039457584007913129639"
				  "936",
				  "x"),
			 FM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec__valid_spec_parses),
		cmocka_unit_test(test_spec__bad_fields_are_named),
		cmocka_unit_test(test_spec__max_examples_per_result),
		cmocka_unit_test(test_spec__rounds),
		cmocka_unit_test(test_spec__reward_scoring),
		cmocka_unit_test(test_spec__annotation_needs_no_training),
		cmocka_unit_test(test_spec__wei_arithmetic),
	};

	return cmocka_run_group_tests_name("spec", tests, NULL, NULL);
}
