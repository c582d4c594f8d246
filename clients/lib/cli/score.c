#include "cli/score.h"

#include "core/err.h"
#include "engine/shapley.h"
#include "market/score_report.h"
#include "market/spec.h"

#include <stdlib.h>
#include <string.h>

static const json_t *reward_of(const json_t *task)
{
	return json_object_get(json_object_get(task, "spec"), "reward");
}

int score_wanted(const json_t *task)
{
	const char *s = json_string_value(json_object_get(reward_of(task),
							  "scoring"));

	return s && !strcmp(s, "shapley");
}

/* Method, budget and seed from the task's reward settings. */
static int score_opts(struct ml_shapley_opts *o, const json_t *reward,
		      size_t k, long long round)
{
	const char *m = json_string_value(json_object_get(reward, "method"));
	json_int_t budget = json_integer_value(json_object_get(reward,
							       "budget"));
	struct ml_shapley_opts def = ML_SHAPLEY_OPTS_INIT;

	*o = def;
	if ((!m || !strcmp(m, "auto")) && k <= SPEC_EXACT_MAX)
		o->method = ML_SHAPLEY_EXACT;
	else if (m && !strcmp(m, "exact"))
		o->method = ML_SHAPLEY_EXACT;
	else
		o->method = ML_SHAPLEY_GTG;
	if (o->method == ML_SHAPLEY_EXACT && k > ML_SHAPLEY_EXACT_MAX)
		return fm_error_set(FM_EINVAL, "exact Shapley scores at most "
				    "%d results, the round has %zu",
				    ML_SHAPLEY_EXACT_MAX, k);
	o->budget = budget > 1 ? (size_t)budget : SPEC_SHAPLEY_BUDGET_DEFAULT;
	o->seed = (uint64_t)round;
	return FM_OK;
}

/* The value function over the round: FedAvg of a coalition, measured on
 * the held-out data with the task's loss. */
static int value_setup(struct ml_shapley_fedavg *f, const struct score_in *in,
		       const float **params, struct ml_model **scratch)
{
	const json_t *t = json_object_get(json_object_get(in->task, "spec"),
					  "training");
	const char *loss = json_string_value(json_object_get(t, "loss"));
	int err;

	err = ml_loss_parse(loss ? loss : "sparse_categorical_crossentropy",
			    &f->loss);
	if (err)
		return err;
	err = ml_model_clone(scratch, in->base);
	if (err)
		return err;
	for (size_t i = 0; i < in->k; i++)
		params[i] = ml_model_params_const(in->models[i], NULL);
	f->model = *scratch;
	f->base = ml_model_params_const(in->base, &f->n);
	f->updates = params;
	f->weights = in->weights;
	f->k = in->k;
	f->data = in->holdout;
	f->from_logits = json_is_true(json_object_get(t, "from_logits"));
	f->metric = f->loss == ML_LOSS_MSE ? ML_SHAPLEY_NEG_LOSS
					   : ML_SHAPLEY_ACCURACY;
	return ml_shapley_fedavg_init(f);
}

static json_t *evaluations(const struct ml_shapley_result *r, size_t k)
{
	json_t *a = json_array();

	for (size_t e = 0; a && e < r->evaluations; e++) {
		json_t *m = json_array();

		for (size_t i = 0; m && i < k; i++)
			if (r->evals[e].coalition & (UINT64_C(1) << i))
				json_array_append_new(m, json_integer(
					(json_int_t)i));
		json_array_append_new(a, json_pack("{s:o*, s:f}", "coalition",
						   m, "value",
						   r->evals[e].value));
	}
	return a;
}

static int build(json_t **out, const struct score_in *in,
		 const struct ml_shapley_result *r,
		 const struct ml_shapley_opts *o, const char *pool, int neg_loss)
{
	const json_t *reward = reward_of(in->task);
	json_t *results = json_array(), *doc;
	int err;

	for (size_t i = 0; results && i < in->k; i++)
		json_array_append_new(results,
				      json_pack("{s:s, s:s, s:f, s:f}",
						"result_id", in->result_ids[i],
						"contributor",
						in->contributors[i], "examples",
						in->weights[i], "phi",
						r->phi[i]));
	doc = json_pack(
		"{s:s, s:s, s:I, s:{s:s, s:s}, s:s, s:I, s:I, s:f, s:s, s:I,"
		" s:s, s:O, s:f, s:f, s:o*, s:o*}",
		"format", SCORE_REPORT_FORMAT, "task_id",
		json_string_value(json_object_get(in->task, "id")), "round",
		(json_int_t)in->round, "models", "base", in->base_ref,
		"aggregate", in->aggregate_ref, "method",
		ml_shapley_method_name(o->method), "budget",
		(json_int_t)(o->method == ML_SHAPLEY_EXACT ? r->evaluations
							   : o->budget),
		"seed", (json_int_t)o->seed, "truncation", o->truncation,
		"metric", neg_loss ? "neg_loss" : "accuracy",
		"holdout_examples", (json_int_t)in->holdout->n, "pool_wei", pool,
		"floor_share", json_object_get(reward, "floor_share"),
		"v_empty", r->v_empty, "v_all", r->v_all, "results", results,
		"evaluations", evaluations(r, in->k));
	if (!doc)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = score_report_amounts(doc);
	if (err) {
		json_decref(doc);
		return err;
	}
	*out = doc;
	return FM_OK;
}

int score_round(json_t **report, const struct score_in *in)
{
	const json_t *spec = json_object_get(in->task, "spec");
	const json_t *reward = reward_of(in->task);
	const float **params = calloc(in->k ? in->k : 1, sizeof(*params));
	struct ml_shapley_fedavg f = { 0 };
	struct ml_shapley_result r = { 0 };
	struct ml_shapley_opts o;
	struct ml_model *scratch = NULL;
	const char *wei = json_string_value(json_object_get(reward,
							    "per_result_wei"));
	char pool[80];
	int err;

	if (!params)
		return fm_error_set(FM_ENOMEM, "out of memory");
	if (in->k == 0 || in->k > ML_SHAPLEY_MAX) {
		err = fm_error_set(FM_EINVAL, "scoring: %zu results, expected "
				   "1 to %d", in->k, ML_SHAPLEY_MAX);
		goto done;
	}
	err = spec_wei_mul(pool, wei ? wei : "0",
			   json_integer_value(json_object_get(
				   spec, "results_per_round")));
	if (err)
		goto done;
	err = score_opts(&o, reward, in->k, in->round);
	if (err)
		goto done;
	err = value_setup(&f, in, params, &scratch);
	if (err)
		goto done;
	err = ml_shapley(&r, in->k, ml_shapley_fedavg_value, &f, &o);
	if (err)
		goto done;
	err = build(report, in, &r, &o, pool,
		    f.metric == ML_SHAPLEY_NEG_LOSS);
done:
	ml_shapley_result_cleanup(&r);
	ml_shapley_fedavg_cleanup(&f);
	ml_model_free(scratch);
	free(params);
	return err;
}
