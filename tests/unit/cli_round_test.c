/* clients/lib/cli/round.c: when a round's new version counts as worse
 * than the current one (held-out accuracy lower; loss higher where the
 * task's loss is mean squared error), and the line logs show. The
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
			    "0.5300 (its inputs score 0.5300 to 0.6500): not "
			    "published");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round__worse_by_accuracy),
		cmocka_unit_test(test_round__worse_by_loss_for_mse),
		cmocka_unit_test(test_round__unmeasured_is_never_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
