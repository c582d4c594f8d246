#include "market/score_report.h"

#include "core/err.h"
#include "market/reward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "scoring report: " + what is wrong. */
static int bad(const char *what, const char *detail)
{
	return fm_error_set(FM_EUNPROCESSABLE, "scoring report: %s%s", what,
			    detail ? detail : "");
}

int score_report_amounts(json_t *report)
{
	json_t *results = json_object_get(report, "results"), *r;
	const char *pool_s = json_string_value(json_object_get(report,
							       "pool_wei"));
	json_t *fs = json_object_get(report, "floor_share");
	size_t n = json_array_size(results), i;
	struct chain_u256 pool, *amounts = NULL;
	uint64_t *w = NULL;
	double *phi = NULL;
	int err;

	if (!json_is_array(results) || n == 0 || n > REWARD_SPLIT_MAX)
		return bad("results: expected 1 or more results", NULL);
	if (!pool_s || chain_u256_parse(&pool, pool_s, "pool_wei"))
		return bad("pool_wei: expected a decimal amount of wei", NULL);
	if (!json_is_number(fs) || !(json_number_value(fs) >= 0) ||
	    json_number_value(fs) > 1)
		return bad("floor_share: expected a number from 0 to 1", NULL);
	phi = calloc(n, sizeof(*phi));
	w = calloc(n, sizeof(*w));
	amounts = calloc(n, sizeof(*amounts));
	if (!phi || !w || !amounts) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(results, i, r) {
		json_t *p = json_object_get(r, "phi");

		if (!json_is_number(p) || !isfinite(json_number_value(p))) {
			err = fm_error_set(FM_EUNPROCESSABLE,
					   "scoring report: results[%zu].phi: "
					   "expected a finite number", i);
			goto done;
		}
		phi[i] = json_number_value(p);
	}
	err = reward_weights(w, phi, n);
	if (err)
		goto done;
	err = reward_split(amounts, &pool,
			   reward_floor_ppm(json_number_value(fs)), w, n);
	if (err)
		goto done;
	json_array_foreach(results, i, r) {
		char dec[CHAIN_U256_DEC_MAX];

		chain_u256_to_dec(dec, sizeof(dec), &amounts[i]);
		if (json_object_set_new(r, "weight_ppm",
					json_integer((json_int_t)w[i])) ||
		    json_object_set_new(r, "amount_wei", json_string(dec))) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			goto done;
		}
	}
done:
	free(phi);
	free(w);
	free(amounts);
	return err;
}

static int str_is(const json_t *o, const char *key, const char *want)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && !strcmp(s, want);
}

/* The report's results are exactly the expected ids, each once. */
static int same_results(const json_t *results, const json_t *ids)
{
	size_t i, j;
	json_t *r, *id;

	if (json_array_size(results) != json_array_size(ids))
		return fm_error_set(FM_EUNPROCESSABLE,
				    "scoring report: scores %zu results, the "
				    "round accepted %zu",
				    json_array_size(results),
				    json_array_size(ids));
	json_array_foreach(results, i, r) {
		const char *rid = json_string_value(json_object_get(
			r, "result_id"));
		int found = 0;

		json_array_foreach(ids, j, id)
			found += rid && json_is_string(id) &&
				 !strcmp(rid, json_string_value(id));
		if (found != 1)
			return fm_error_set(FM_EUNPROCESSABLE,
					    "scoring report: results[%zu] (%s) "
					    "is not one of the round's accepted "
					    "results",
					    i, rid ? rid : "no result_id");
		for (j = 0; j < i; j++)
			if (str_is(json_array_get(results, j), "result_id",
				   rid))
				return fm_error_set(FM_EUNPROCESSABLE,
						    "scoring report: %s is "
						    "scored twice", rid);
	}
	return FM_OK;
}

int score_report_verify(const json_t *report, const struct score_expect *e,
			json_t **amounts)
{
	json_t *copy = NULL, *out = NULL, *r;
	size_t i;
	int err;

	if (!json_is_object(report) ||
	    !str_is(report, "format", SCORE_REPORT_FORMAT))
		return bad("format: expected ", SCORE_REPORT_FORMAT);
	if (!str_is(report, "task_id", e->task_id))
		return bad("task_id: expected ", e->task_id);
	if (json_integer_value(json_object_get(report, "round")) != e->round)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "scoring report: round: expected %lld",
				    e->round);
	if (!str_is(report, "pool_wei", e->pool_wei))
		return bad("pool_wei: expected ", e->pool_wei);
	if (fabs(json_number_value(json_object_get(report, "floor_share")) -
		 e->floor_share) > 1e-12)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "scoring report: floor_share: expected %g",
				    e->floor_share);
	err = same_results(json_object_get(report, "results"), e->result_ids);
	if (err)
		return err;
	copy = json_deep_copy(report);
	out = json_object();
	if (!copy || !out) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = score_report_amounts(copy);
	if (err)
		goto done;
	json_array_foreach(json_object_get(copy, "results"), i, r) {
		const json_t *stated = json_array_get(
			json_object_get(report, "results"), i);
		const char *want = json_string_value(json_object_get(
			r, "amount_wei"));

		if (!str_is(stated, "amount_wei", want)) {
			err = fm_error_set(FM_EUNPROCESSABLE,
					   "scoring report: results[%zu]."
					   "amount_wei: its scores give %s",
					   i, want);
			goto done;
		}
		json_object_set_new(out, json_string_value(json_object_get(
						 r, "result_id")),
				    json_string(want));
	}
	*amounts = out;
	out = NULL;
done:
	json_decref(copy);
	json_decref(out);
	return err;
}
