/* A round scored for pay by contribution: honest updates earn above the
 * floor, a free rider and a noise update get the floor only, the amounts
 * fit the pool, and the report verifies against its own numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/score.h"
#include "core/err.h"
#include "market/score_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 5

static void load(struct ml_dataset *train, struct ml_dataset *test,
		 struct ml_model **base)
{
	const char *d = "/usr/share/datasets/fashion-mnist";
	const char *top = getenv("FM_TOP");
	char im[256], lb[256], model[512];
	struct ml_dataset all = { 0 };
	size_t idx[4000];

	snprintf(im, sizeof(im), "%s/train-images-idx3-ubyte.gz", d);
	snprintf(lb, sizeof(lb), "%s/train-labels-idx1-ubyte.gz", d);
	snprintf(model, sizeof(model), "%s/assets/models/fashion-mlp",
		 top ? top : ".");
	assert_int_equal(ml_dataset_load_idx(&all, im, lb), FM_OK);
	assert_int_equal(ml_model_load(base, model), FM_OK);
	ml_dataset_scale(&all, 255);
	for (size_t i = 0; i < 4000; i++)
		idx[i] = i;
	assert_int_equal(ml_dataset_subset(train, &all, idx, 3000), FM_OK);
	assert_int_equal(ml_dataset_subset(test, &all, idx + 3000, 1000),
			 FM_OK);
	ml_dataset_cleanup(&all);
}

static void test_score__free_rider_and_noise_get_the_floor(void **state)
{
	struct ml_dataset train, test;
	struct ml_model *base = NULL, *m[K] = { 0 };
	struct ml_train_opts to;
	struct ml_rng rng;
	double w[K] = { 1000, 1000, 1000, 1000, 1000 };
	const char *ids[K] = { "r0", "r1", "r2", "free", "noise" };
	const char *who[K] = { "a", "b", "c", "d", "e" };
	json_t *task, *report = NULL, *amounts = NULL, *rid = json_array();
	struct score_in in;
	struct score_expect e;
	size_t n = 0;
	float *p;

	(void)state;
	load(&train, &test, &base);
	ml_train_opts_init(&to);
	to.from_logits = 1;
	for (int c = 0; c < 3; c++) {
		struct ml_dataset shard;
		size_t idx[1000];

		for (size_t i = 0; i < 1000; i++)
			idx[i] = (size_t)c * 1000 + i;
		assert_int_equal(ml_dataset_subset(&shard, &train, idx, 1000),
				 FM_OK);
		assert_int_equal(ml_model_clone(&m[c], base), FM_OK);
		to.seed = (uint64_t)c + 1;
		assert_int_equal(ml_train(m[c], &shard, &to), FM_OK);
		ml_dataset_cleanup(&shard);
	}
	assert_int_equal(ml_model_clone(&m[3], base), FM_OK);
	assert_int_equal(ml_model_clone(&m[4], base), FM_OK);
	p = ml_model_params(m[4], &n);
	ml_rng_seed(&rng, 9);
	for (size_t j = 0; j < n; j++)
		p[j] += (float)(0.2 * ml_rng_normal(&rng));
	task = json_pack(
		"{s:s, s:{s:i, s:{s:s, s:b}, s:{s:s, s:s, s:f, s:s}}}", "id",
		"0x00000000000000000000000000000000000000000000000000000000"
		"000000ab",
		"spec", "results_per_round", 5, "training", "loss",
		"sparse_categorical_crossentropy", "from_logits", 1, "reward",
		"per_result_wei", "20000000000000000", "scoring", "shapley",
		"floor_share", 0.2, "method", "auto");
	assert_non_null(task);
	assert_true(score_wanted(task));
	in = (struct score_in){ task, 2, base, m, w, ids, who, K, &test,
				"aa", "bb" };
	if (score_round(&report, &in))
		fail_msg("score_round: %s", fm_error_msg());
	/* exact: every one of the 2^5 coalitions */
	assert_string_equal(json_string_value(json_object_get(report,
							      "method")),
			    "exact");
	assert_int_equal(json_array_size(json_object_get(report,
							 "evaluations")), 32);
	for (int i = 0; i < K; i++)
		json_array_append_new(rid, json_string(ids[i]));
	e = (struct score_expect){ json_string_value(json_object_get(task,
								     "id")),
				   2, "100000000000000000", 0.2, rid };
	if (score_report_verify(report, &e, &amounts))
		fail_msg("verify: %s", fm_error_msg());
	/* the floor is 0.2 x 0.1 ETH / 5 */
	for (int i = 0; i < K; i++) {
		const char *a = json_string_value(json_object_get(amounts,
								  ids[i]));
		const json_t *r = json_array_get(
			json_object_get(report, "results"), (size_t)i);

		if (i < 3) {
			assert_true(json_number_value(json_object_get(
					    r, "phi")) > 0);
			assert_true(strcmp(a, "4000000000000000") != 0);
		} else {
			assert_true(json_number_value(json_object_get(
					    r, "phi")) <= 1e-12);
			assert_string_equal(a, "4000000000000000");
		}
	}
	json_decref(amounts);
	json_decref(report);
	json_decref(task);
	json_decref(rid);
	for (int i = 0; i < K; i++)
		ml_model_free(m[i]);
	ml_model_free(base);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_score__free_rider_and_noise_get_the_floor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
