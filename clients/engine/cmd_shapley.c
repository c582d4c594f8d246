/* shapley --model BASE --updates U1,U2,... <data flags>
 *         [--examples N,N,...] [--method exact|gtg] [--budget N]
 *         [--seed S] [--metric accuracy|loss] [--json]
 * Scores each update of a FedAvg round by its Shapley value for the
 * held-out metric of the aggregate (engine/shapley.h), so anyone holding
 * the round's models and the held-out data reproduces the scores; --json
 * lists every evaluated coalition with its value. */
#include "cli.h"

#include "core/err.h"
#include "engine/shapley.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "shapley"

struct round {
	struct ml_model *base, *scratch, *upd[ML_SHAPLEY_MAX];
	const float *params[ML_SHAPLEY_MAX];
	double w[ML_SHAPLEY_MAX];
	const char *dirs[ML_SHAPLEY_MAX];
	size_t k, n;
	int weighted;
};

static int parse_examples(struct round *r, const char *list)
{
	char buf[4096];
	const char *items[ML_SHAPLEY_MAX];
	size_t n = 0;
	int err = split_names(buf, sizeof(buf), list, items, ML_SHAPLEY_MAX,
			      &n);

	if (err)
		return err;
	if (n != r->k)
		return fm_error_set(FM_EINVAL, "--examples: %zu updates need "
				    "%zu counts, not %zu", r->k, r->k, n);
	for (size_t i = 0; i < n; i++) {
		char *end;
		double v;

		errno = 0;
		v = strtod(items[i], &end);
		if (errno || *end || !(v >= 1 && v <= 1e12))
			return fm_error_set(FM_EINVAL, "--examples: \"%s\" is "
					    "not a count of 1 or more",
					    items[i]);
		r->w[i] = v;
	}
	r->weighted = 1;
	return FM_OK;
}

/* The base and every update, all of one architecture. */
static int load_round(struct round *r, const char *base, const char *list,
		      char *buf, size_t bufsize)
{
	int err = split_names(buf, bufsize, list, r->dirs, ML_SHAPLEY_MAX,
			      &r->k);

	if (err)
		return err;
	if (r->k == 0)
		return fm_error_set(FM_EINVAL, "--updates: no model folders");
	err = ml_model_load(&r->base, base);
	if (err)
		return err;
	err = ml_model_clone(&r->scratch, r->base);
	if (err)
		return err;
	r->n = ml_model_param_count(r->base);
	for (size_t i = 0; i < r->k; i++) {
		err = ml_model_load(&r->upd[i], r->dirs[i]);
		if (!err)
			err = ml_model_same_arch(r->base, r->upd[i]);
		if (!err)
			err = ml_model_check_finite(r->upd[i]);
		if (err)
			return fm_error_prefix("update %zu (%s)", i + 1,
					       r->dirs[i]);
		r->params[i] = ml_model_params_const(r->upd[i], NULL);
	}
	return FM_OK;
}

static void round_cleanup(struct round *r)
{
	ml_model_free(r->base);
	ml_model_free(r->scratch);
	for (size_t i = 0; i < r->k; i++)
		ml_model_free(r->upd[i]);
}

/* The scores and every evaluated coalition, built with jansson so model
 * paths are escaped. */
static int print_json(const struct round *r,
		      const struct ml_shapley_result *s,
		      const struct ml_shapley_opts *o, const char *metric)
{
	json_t *doc, *upd = json_array(), *coal = json_array();
	int err = FM_OK;

	for (size_t i = 0; upd && i < r->k; i++)
		json_array_append_new(upd, json_pack(
			"{s:s, s:f, s:f}", "model", r->dirs[i], "examples",
			r->weighted ? r->w[i] : 1.0, "phi", s->phi[i]));
	for (size_t e = 0; coal && e < s->evaluations; e++) {
		json_t *members = json_array();

		for (size_t i = 0; members && i < r->k; i++)
			if (s->evals[e].coalition & (UINT64_C(1) << i))
				json_array_append_new(members,
						      json_integer((json_int_t)i + 1));
		json_array_append_new(coal, json_pack(
			"{s:o*, s:f}", "members", members, "value",
			s->evals[e].value));
	}
	doc = json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:o*, "
			"s:o*}",
			"method", ml_shapley_method_name(o->method),
			"metric", metric, "budget",
			(json_int_t)(o->method == ML_SHAPLEY_EXACT
					     ? s->evaluations : o->budget),
			"seed", (json_int_t)o->seed, "v_empty", s->v_empty,
			"v_all", s->v_all, "evaluations",
			(json_int_t)s->evaluations, "permutations",
			(json_int_t)s->permutations, "updates", upd,
			"coalitions", coal);
	if (!doc || json_dumpf(doc, stdout,
				   JSON_COMPACT | JSON_REAL_PRECISION(9)) ||
	    putchar('\n') == EOF)
		err = fm_error_set(FM_ENOMEM, "cannot write the scores");
	json_decref(doc);
	return err;
}

static void print_text(const struct round *r,
		       const struct ml_shapley_result *s,
		       const struct ml_shapley_opts *o, const char *metric)
{
	printf("%s Shapley values for held-out %s: %zu coalitions "
	       "evaluated", ml_shapley_method_name(o->method), metric,
	       s->evaluations);
	if (o->method == ML_SHAPLEY_GTG)
		printf(" (%zu permutations, budget %zu)", s->permutations,
		       o->budget);
	printf("\n  base %.4f, all %zu updates %.4f\n", s->v_empty, r->k,
	       s->v_all);
	for (size_t i = 0; i < r->k; i++)
		printf("  %2zu  %+.6f  %s\n", i + 1, s->phi[i], r->dirs[i]);
}

int cmd_shapley(int argc, char **argv)
{
	struct data_flags df = { 0 };
	const char *base = NULL, *updates = NULL, *examples = NULL;
	const char *method = "exact", *metric = "accuracy";
	const char *loss_name = "sparse_categorical_crossentropy";
	long budget = 0;
	uint64_t seed = 0;
	double truncation = 0.25, tolerance = 0;
	int from_logits = 0, json = 0, threads = 0, code;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &base, "DIR", "the round's base model",
		  0, 0 },
		{ "--updates", OPT_STR, &updates, "U1,U2,..", "the round's "
		  "updated models (folders)", 0, 0 },
		{ "--examples", OPT_STR, &examples, "N,N,..", "FedAvg weights "
		  "(example counts; default equal)", 0, 0 },
		OPTS_DATA(&df),
		{ "--loss", OPT_STR, &loss_name, "NAME", "loss for evaluation "
		  "(sparse_categorical_crossentropy)", 0, 0 },
		{ "--from-logits", OPT_FLAG, &from_logits, NULL,
		  "the model outputs logits", 0, 0 },
		{ "--metric", OPT_STR, &metric, "M", "accuracy (default) or "
		  "loss (scored as -loss)", 0, 0 },
		{ "--method", OPT_STR, &method, "M", "exact (2^k coalitions) or "
		  "gtg (GTG-Shapley under --budget)", 0, 0 },
		{ "--budget", OPT_LONG, &budget, "N", "gtg: most coalitions "
		  "evaluated (16 x updates)", 2, 1 << 24 },
		{ "--seed", OPT_U64, &seed, "S", "gtg: permutation seed (0)",
		  0, 0 },
		{ "--truncation", OPT_NUM, &truncation, "F", "gtg: stop a "
		  "permutation within this fraction of the round's gain "
		  "(0.25)", 0, 0.99 },
		{ "--tolerance", OPT_NUM, &tolerance, "F", "gtg: stop early "
		  "when a cycle moves the scores by less (0: use the "
		  "budget)", 0, 0.99 },
		{ "--threads", OPT_INT, &threads, "N", "BLAS threads", 1, 256 },
		{ "--json", OPT_FLAG, &json, NULL, "scores and every evaluated "
		  "coalition as JSON", 0, 0 },
		OPT_END,
	};
	struct opt_spec s = {
		.cmd = CMD, .opts = opts,
		.synopsis = "--model BASE --updates U1,U2,.. (--test-images F "
			    "--test-labels F | --test-csv F --inputs A,B "
			    "--outputs Y) [options]",
	};
	struct ml_shapley_opts so = ML_SHAPLEY_OPTS_INIT;
	struct ml_shapley_fedavg f = { 0 };
	struct ml_shapley_result res = { 0 };
	struct ml_dataset train, test;
	struct round r = { 0 };
	char names[8192];
	enum ml_loss loss;
	int err = FM_OK;

	if (!engine_parse(&s, argc, argv, &code))
		return code;
	if (!base || !updates)
		return engine_usage(CMD, "--model and --updates are required");
	if (ml_loss_parse(loss_name, &loss))
		return engine_usage(CMD, "--loss: %s", fm_error_msg());
	if (ml_shapley_method_parse(&so.method, method))
		return engine_usage(CMD, "--method: %s", fm_error_msg());
	if (strcmp(metric, "accuracy") && strcmp(metric, "loss"))
		return engine_usage(CMD, "--metric \"%s\": expected accuracy "
				    "or loss", metric);
	so.budget = (size_t)budget;
	so.seed = seed;
	so.truncation = truncation;
	so.tolerance = tolerance;
	engine_threads(threads);
	code = data_load(&df, &train, &test, 0, 0, CMD);
	if (code)
		return code;
	if (!test.n) {
		code = engine_usage(CMD, "give the held-out data "
				    "(--test-images/--test-labels or "
				    "--test-csv)");
		goto done;
	}
	err = load_round(&r, base, updates, names, sizeof(names));
	if (!err && examples)
		err = parse_examples(&r, examples);
	if (err)
		goto done;
	engine_check_logits(r.base, loss, from_logits);
	f.model = r.scratch;
	f.base = ml_model_params_const(r.base, NULL);
	f.updates = r.params;
	f.weights = r.weighted ? r.w : NULL;
	f.k = r.k;
	f.n = r.n;
	f.data = &test;
	f.loss = loss;
	f.from_logits = from_logits;
	f.metric = strcmp(metric, "loss") ? ML_SHAPLEY_ACCURACY
					  : ML_SHAPLEY_NEG_LOSS;
	err = ml_shapley_fedavg_init(&f);
	if (err)
		goto done;
	err = ml_shapley(&res, r.k, ml_shapley_fedavg_value, &f, &so);
	if (err)
		goto done;
	if (so.method == ML_SHAPLEY_GTG && !so.budget)
		so.budget = 16 * r.k;
	if (json)
		err = print_json(&r, &res, &so, metric);
	else
		print_text(&r, &res, &so, metric);
done:
	if (err)
		code = engine_fail(CMD);
	ml_shapley_result_cleanup(&res);
	ml_shapley_fedavg_cleanup(&f);
	round_cleanup(&r);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
	return code;
}
