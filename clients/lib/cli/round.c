#include "cli/round.h"

#include "cli/rounds.h"
#include "cli/score.h"
#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"
#include "engine/agg.h"
#include "engine/dp.h"
#include "market/spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int in_array(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return 1;
	return 0;
}

void round_state_cleanup(struct round_state *s)
{
	json_decref(s->current);
	json_decref(s->versions);
	json_decref(s->pending);
	memset(s, 0, sizeof(*s));
}

/* The accepted results the round after version combines, into pending:
 * those no version holds (done: their ids) and, when by_round, of round
 * version + 1 alone (a synchronous task with rounds). */
static void select_pending(json_t *pending, const json_t *accepted,
			   const json_t *done, int version, int by_round)
{
	size_t i;
	json_t *r;

	json_array_foreach(accepted, i, r) {
		if (in_array(done, cli_str(r, "id")))
			continue;
		if (by_round && rounds_of(r) != version + 1)
			continue;
		json_array_append(pending, r);
	}
}

/* How a task's rounds are set: min_results, async, staleness_exponent
 * and ready of s, from the task (the stored spec spells them out). */
static void round_settings(struct round_state *s, const json_t *task)
{
	const json_t *spec = json_object_get(task, "spec");
	const json_t *agg = json_object_get(spec, "aggregation");
	const json_t *as = json_object_get(agg, "async");
	const json_t *v;

	s->async = rounds_async(task);
	s->ready = rounds_ready(task);
	v = json_object_get(spec, "min_results_per_round");
	if (!json_is_integer(v))
		v = json_object_get(agg, "min_results_per_round");
	s->min_results = json_integer_value(v);
	v = json_object_get(as, "staleness_exponent");
	s->staleness_exponent = json_is_number(v) ? json_number_value(v) : 0.5;
	v = json_object_get(as, "buffer");
	if (s->async && json_is_integer(v))
		s->min_results = json_integer_value(v);
	if (s->min_results < 1)
		s->min_results = 1;
	v = json_object_get(spec, "max_examples_per_result");
	s->max_examples = json_is_integer(v) ? json_integer_value(v) : 0;
}

int round_state_load(struct cli *c, const json_t *task,
		     struct round_state *out)
{
	const char *id = cli_str(task, "id");
	json_t *models = NULL, *results = NULL, *done = json_array(), *m;
	struct round_state s = { 0 };
	struct api *a = NULL;
	char path[160];
	size_t i;
	int err;

	s.pending = json_array();
	if (!done || !s.pending) {
		json_decref(done);
		json_decref(s.pending);
		return fm_error_set(FM_ENOMEM, "out of memory");
	}
	err = cli_api(c, 0, &a);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "/v1/tasks/%s/models", id);
	err = api_get(a, API_TASKD, path, &models);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "/v1/tasks/%s/results?state=accepted",
		 id);
	err = api_get(a, API_RESULTD, path, &results);
	if (err)
		goto done;
	s.version = -1;
	s.versions = json_incref(json_object_get(models, "models"));
	json_array_foreach(s.versions, i, m) {
		int v = (int)json_integer_value(json_object_get(m, "version"));
		size_t k;
		json_t *rid;

		if (v > s.version) {
			s.version = v;
			json_decref(s.current);
			s.current = json_incref(m);
		}
		json_array_foreach(json_object_get(m, "results"), k, rid)
			json_array_append(done, rid);
	}
	if (!s.current) {
		err = fm_error_set(FM_ENOTFOUND, "task %s has no model version",
				   id);
		goto done;
	}
	round_settings(&s, task);
	select_pending(s.pending, json_object_get(results, "results"), done,
		       s.version, rounds_known(task) && !s.async);
done:
	json_decref(models);
	json_decref(results);
	json_decref(done);
	if (err) {
		round_state_cleanup(&s);
		return err;
	}
	*out = s;
	return FM_OK;
}

double round_weight(const struct round_state *s, const json_t *r)
{
	long long ne = json_integer_value(json_object_get(r, "num_examples"));
	long long cap = s->max_examples > 0 ? s->max_examples
					    : SPEC_EXAMPLES_DEFAULT;
	/* a claim is only a claim: no result outweighs the cap */
	double w = ne > 0 ? (double)(ne < cap ? ne : cap) : 1.0;

	if (!s->async)
		return w;
	return ml_agg_staleness_weight(w, s->version - rounds_base_version(r),
				       s->staleness_exponent);
}

/* ------------------------------------------------------------ model rules */

struct agg_cfg {
	struct ml_agg_opts agg;
	double dp_clip, dp_noise;
	const char *rule;
};

static int agg_cfg(struct agg_cfg *out, const json_t *spec)
{
	const json_t *a = json_object_get(spec, "aggregation"), *dp;
	struct ml_agg_opts def = ML_AGG_OPTS_INIT;
	const char *rule = NULL;
	long long f = 0;
	int err;

	out->agg = def;
	out->dp_clip = out->dp_noise = 0;
	err = fj_str_opt(a, "task.aggregation", "rule", 32, "fedavg", &rule);
	if (err)
		return err;
	err = ml_agg_rule_parse(&out->agg.rule, rule);
	if (err)
		return err;
	err = fj_num_opt(a, "task.aggregation", "trim_fraction", 0, 0.49, 0.1,
			 &out->agg.trim);
	if (err)
		return err;
	err = fj_int_opt(a, "task.aggregation", "krum_f", 0, 1000, 0, &f);
	if (err)
		return err;
	err = fj_num_opt(a, "task.aggregation", "clip_radius", 1e-30, 1e30,
			 1.0, &out->agg.clip_tau);
	if (err)
		return err;
	out->agg.krum_f = (int)f;
	out->rule = rule;
	dp = json_object_get(a, "dp");
	if (!json_is_object(dp))
		return FM_OK;
	err = fj_num(dp, "task.aggregation.dp", "clip", 1e-30, 1e30,
		     &out->dp_clip);
	if (err)
		return err;
	return fj_num(dp, "task.aggregation.dp", "noise", 0, 1e6,
		      &out->dp_noise);
}

/* out = the rule (or DP FedAvg) over the k deltas of n parameters. */
static int combine_deltas(float *out, const float *const *deltas,
			  const double *weights, size_t k, size_t n,
			  const struct agg_cfg *cfg)
{
	struct ml_rng rng;
	uint64_t seed = 0;
	int err;

	if (cfg->dp_clip > 0) {
		err = ml_dp_random_seed(&seed);
		if (err)
			return err;
		ml_rng_seed(&rng, seed);
		return ml_dp_fedavg(out, deltas, k, n, cfg->dp_clip,
				    cfg->dp_noise, (double)k, &rng, NULL);
	}
	err = ml_agg_opts_check(&cfg->agg, k);
	if (err)
		return err;
	return ml_agg_combine(out, deltas, weights, k, n, &cfg->agg, NULL,
			      NULL);
}

/* Combines the deltas of the k results from base into base (in place). */
static int combine(struct ml_model *base, struct ml_model **ms,
		   const double *weights, size_t k, const struct agg_cfg *cfg)
{
	size_t n = 0, i, j;
	float *bp = ml_model_params(base, &n), *out = NULL;
	float **deltas = calloc(k, sizeof(*deltas));
	int err;

	out = malloc(n * sizeof(float));
	if (!deltas || !out) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < k; i++) {
		size_t mn;

		deltas[i] = ml_model_params(ms[i], &mn);
		for (j = 0; j < n; j++)
			deltas[i][j] -= bp[j];
	}
	err = combine_deltas(out, (const float *const *)deltas, weights, k, n,
			     cfg);
	if (err)
		goto done;
	for (j = 0; j < n; j++)
		bp[j] += out[j];
done:
	free(out);
	free(deltas);
	return err;
}

/* The held-out figures of m into o ("accuracy", "loss"); nothing
 * without held-out data. */
static int measure(json_t *o, struct ml_model *m, const json_t *spec,
		   const struct ml_dataset *holdout)
{
	struct ml_eval ev;
	int err;

	if (!holdout)
		return FM_OK;
	err = work_evaluate(m, spec, holdout, &ev);
	if (err)
		return err;
	json_object_set_new(o, "accuracy", json_real(ev.accuracy));
	json_object_set_new(o, "loss", json_real(ev.loss));
	return FM_OK;
}

/* The model of result r, of the base's architecture unless base is
 * NULL (any architecture). */
static int load_result(struct cli *c, const json_t *r,
		       const struct ml_model *base, struct ml_model **m)
{
	int err = work_load_bundle_model(c, cli_str(r, "bundle_ref"), m);

	if (err)
		goto done;
	if (base)
		err = ml_model_same_arch(base, *m);
done:
	if (err)
		fm_error_prefix("result %s", cli_str(r, "id"));
	return err;
}

/* The models of the pending results, their example counts as weights,
 * and their figures into inputs: held out, else the validator's. */
static int load_results(struct cli *c, const json_t *spec,
			const struct round_state *st,
			const struct ml_dataset *holdout,
			const struct ml_model *base, struct ml_model **ms,
			double *w, json_t *inputs)
{
	size_t i;
	json_t *r;
	int err;

	json_array_foreach(st->pending, i, r) {
		const json_t *dm = json_object_get(
			json_object_get(r, "decision"), "metrics");
		json_t *in = json_pack("{s:s, s:s}", "result",
				       cli_str(r, "id"), "contributor",
				       cli_str(r, "contributor"));

		if (!in)
			return fm_error_set(FM_ENOMEM, "out of memory");
		json_array_append_new(inputs, in);
		w[i] = round_weight(st, r);
		err = load_result(c, r, base, &ms[i]);
		if (err)
			return err;
		if (!holdout) {
			if (json_is_number(json_object_get(dm, "accuracy")))
				json_object_set(in, "accuracy",
						json_object_get(dm, "accuracy"));
			if (json_is_number(json_object_get(dm, "loss")))
				json_object_set(in, "loss",
						json_object_get(dm, "loss"));
			continue;
		}
		err = measure(in, ms[i], spec, holdout);
		if (err)
			return fm_error_prefix("result %s", cli_str(r, "id"));
	}
	return FM_OK;
}

/* The input that scores best: the highest accuracy (held out, else the
 * validator's). */
static size_t pick_best(const json_t *inputs)
{
	double best = -1;
	size_t pick = 0, i;
	json_t *in;

	json_array_foreach(inputs, i, in) {
		double score = json_number_value(json_object_get(in,
								 "accuracy"));

		if (score > best) {
			best = score;
			pick = i;
		}
	}
	return pick;
}

/* The bundle of version v among st's versions. */
static const char *version_bundle(const struct round_state *st, int v)
{
	size_t i;
	json_t *m;

	json_array_foreach(st->versions, i, m)
		if (json_integer_value(json_object_get(m, "version")) == v)
			return cli_str(m, "bundle_ref");
	return NULL;
}

/* Asynchronous rounds: a result trained from an older version than
 * base (version st->version) moves its weights by base minus its own
 * base version, so that its delta from base is the update it made. */
static int rebase_stale(struct cli *c, const struct round_state *st,
			const struct ml_model *base, struct ml_model **ms)
{
	size_t n = 0, i, j;
	const float *bp = ml_model_params_const(base, &n);
	json_t *r;

	json_array_foreach(st->pending, i, r) {
		int bv = rounds_base_version(r);
		const char *ref = version_bundle(st, bv);
		struct ml_model *old = NULL;
		const float *op;
		float *p;
		size_t on = 0, pn = 0;
		int err;

		if (bv == st->version)
			continue;
		if (!ref)
			return fm_error_set(FM_ECONFLICT, "result %s was trained "
					    "from version %d, which the task "
					    "does not have",
					    cli_str(r, "id"), bv);
		err = work_load_bundle_model(c, ref, &old);
		if (!err)
			err = ml_model_same_arch(base, old);
		if (err) {
			ml_model_free(old);
			return fm_error_prefix("version %d", bv);
		}
		op = ml_model_params_const(old, &on);
		p = ml_model_params(ms[i], &pn);
		for (j = 0; j < n; j++)
			p[j] += bp[j] - op[j];
		ml_model_free(old);
	}
	return FM_OK;
}

/* The new model of a model task: combined deltas, or for model_engineer
 * the accepted model that scores best. scores gets the figures of the
 * current version, the inputs and the new version. */
/* The round's Shapley scores into *report (cli/score.h): the updates ms
 * (weights w) against base, the version they trained from. */
static int score_models(json_t **report, const json_t *task,
			const struct round_state *st,
			const struct ml_model *base, struct ml_model **ms,
			const double *w, const struct ml_dataset *holdout)
{
	size_t k = json_array_size(st->pending), i;
	const char **ids = calloc(k, sizeof(*ids));
	const char **who = calloc(k, sizeof(*who));
	struct score_in in;
	json_t *r;
	int err;

	if (!ids || !who) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	if (!holdout) {
		err = fm_error_set(FM_EINVAL, "the task pays by contribution: "
				   "scoring its round needs held-out data");
		goto done;
	}
	json_array_foreach(st->pending, i, r) {
		ids[i] = cli_str(r, "id");
		who[i] = cli_str(r, "contributor");
	}
	in = (struct score_in){ task, st->version + 1, base, ms, w, ids, who,
				k, holdout,
				cli_str(st->current, "bundle_ref"), "" };
	err = score_round(report, &in);
done:
	free(ids);
	free(who);
	return err;
}

static int model_round(struct cli *c, const json_t *task,
		       const struct round_state *st,
		       const struct ml_dataset *holdout, json_t *scores,
		       struct ml_model **out, const char **rule,
		       json_t **report)
{
	const json_t *spec = json_object_get(task, "spec");
	int engineer = !strcmp(cli_str(task, "kind"), "model_engineer");
	size_t k = json_array_size(st->pending), i, pick;
	struct ml_model *base = NULL, **ms = calloc(k, sizeof(*ms));
	double *w = calloc(k, sizeof(*w));
	json_t *cur = json_pack("{s:i}", "version", st->version);
	json_t *next = json_pack("{s:i}", "version", st->version + 1);
	json_t *inputs = json_array();
	struct agg_cfg cfg;
	int err;

	if (!ms || !w || !cur || !next || !inputs) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	json_object_set(scores, "current", cur);
	json_object_set(scores, "inputs", inputs);
	json_object_set(scores, "next", next);
	if (!engineer) {
		err = agg_cfg(&cfg, spec);
		if (err)
			goto done;
	}
	err = work_load_bundle_model(c, cli_str(st->current, "bundle_ref"),
				     &base);
	if (err)
		goto done;
	err = measure(cur, base, spec, holdout);
	if (err) {
		fm_error_prefix("version %d", st->version);
		goto done;
	}
	/* inputs are measured before combining, which moves their weights */
	err = load_results(c, spec, st, holdout, engineer ? NULL : base, ms,
			   w, inputs);
	if (err)
		goto done;
	if (engineer) {
		pick = pick_best(inputs);
		*out = ms[pick];
		ms[pick] = NULL;
		*rule = "best";
	} else {
		if (st->async) {
			err = rebase_stale(c, st, base, ms);
			if (err)
				goto done;
		}
		/* scored before combining, which moves base */
		if (score_wanted(task)) {
			err = score_models(report, task, st, base, ms, w,
					   holdout);
			if (err)
				goto done;
		}
		err = combine(base, ms, w, k, &cfg);
		if (err)
			goto done;
		*out = base;
		base = NULL;
		*rule = cfg.dp_clip > 0 ? "dp_fedavg" : cfg.rule;
	}
	json_object_set_new(scores, "rule", json_string(*rule));
	err = measure(next, *out, spec, holdout);
	if (err) {
		fm_error_prefix("the new version");
		ml_model_free(*out);
		*out = NULL;
	}
done:
	for (i = 0; ms && i < k; i++)
		ml_model_free(ms[i]);
	free(ms);
	free(w);
	ml_model_free(base);
	json_decref(cur);
	json_decref(next);
	json_decref(inputs);
	return err;
}

/* "accuracy" unless the task's loss is mean squared error, where
 * accuracy means little: then "loss". */
static const char *metric_of(const json_t *task)
{
	const char *loss = json_string_value(json_object_get(
		json_object_get(json_object_get(task, "spec"), "training"),
		"loss"));
	enum ml_loss l;

	if (loss && !ml_loss_parse(loss, &l) && l == ML_LOSS_MSE)
		return "loss";
	return "accuracy";
}

static double fig(const json_t *scores, const char *who, const char *metric)
{
	return json_number_value(json_object_get(json_object_get(scores, who),
						 metric));
}

/* The lowest and highest figure of the inputs. */
static void input_range(const json_t *scores, const char *metric,
			double *lo, double *hi)
{
	size_t i;
	json_t *in;

	*lo = INFINITY;
	*hi = -INFINITY;
	json_array_foreach(json_object_get(scores, "inputs"), i, in) {
		double v = json_number_value(json_object_get(in, metric));

		*lo = v < *lo ? v : *lo;
		*hi = v > *hi ? v : *hi;
	}
}

/* 1 with why when the new version measures worse than the current. */
static int worse(char *why, size_t n, const json_t *scores)
{
	const char *metric = json_string_value(json_object_get(scores,
							       "metric"));
	double now = fig(scores, "current", metric);
	double next = fig(scores, "next", metric);
	int is_loss = !strcmp(metric, "loss");
	double lo, hi;

	if (!json_is_true(json_object_get(scores, "measured")) ||
	    (is_loss ? !(next > now) : !(next < now)))
		return 0;
	input_range(scores, metric, &lo, &hi);
	snprintf(why, n, "version %d (%s of %zu results) scores held-out %s "
		 "%.4f, %s version %d's %.4f (its inputs score %.4f to "
		 "%.4f)",
		 (int)json_integer_value(json_object_get(
			 json_object_get(scores, "next"), "version")),
		 json_string_value(json_object_get(scores, "rule")),
		 json_array_size(json_object_get(scores, "inputs")), metric,
		 next, is_loss ? "above" : "below",
		 (int)json_integer_value(json_object_get(
			 json_object_get(scores, "current"), "version")),
		 now, lo, hi);
	return 1;
}

void round_scores_line(char *out, size_t n, const json_t *scores)
{
	const char *metric = json_string_value(json_object_get(scores,
							       "metric"));
	size_t len, i;
	json_t *in;

	if (!json_is_true(json_object_get(scores, "measured")) || !metric) {
		snprintf(out, n, "not measured (no held-out data)");
		return;
	}
	len = (size_t)snprintf(out, n, "held-out %s %.4f (version %d: %.4f; "
			       "results", metric, fig(scores, "next", metric),
			       (int)json_integer_value(json_object_get(
				       json_object_get(scores, "current"),
				       "version")),
			       fig(scores, "current", metric));
	json_array_foreach(json_object_get(scores, "inputs"), i, in) {
		if (len >= n)
			break;
		len += (size_t)snprintf(out + len, n - len, "%s %.8s %.4f",
					i ? "," : "", cli_str(in, "result"),
					json_number_value(json_object_get(
						in, metric)));
	}
	if (len < n)
		snprintf(out + len, n - len, ")");
}

/* ------------------------------------------------------- annotation rule */

/* Adds one vote per label of a result's labels.json to votes
 * ({item: {label: count}}). */
static void tally(json_t *votes, const json_t *doc)
{
	const char *item;
	json_t *v;

	json_object_foreach(json_object_get(doc, "labels"), item, v) {
		json_t *t = json_object_get(votes, item);
		char key[256];

		if (json_is_string(v))
			snprintf(key, sizeof(key), "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(key, sizeof(key), "%lld",
				 (long long)json_integer_value(v));
		else
			continue;
		if (!t) {
			t = json_object();
			json_object_set_new(votes, item, t);
		}
		json_object_set_new(t, key, json_integer(1 + json_integer_value(
						   json_object_get(t, key))));
	}
}

/* labels[item] = the label with the most votes. */
static void majority(json_t *labels, const json_t *votes)
{
	const char *item, *lab;
	json_t *t, *n;

	json_object_foreach((json_t *)votes, item, t) {
		const char *best = NULL;
		long long bn = 0;

		json_object_foreach(t, lab, n)
			if (json_integer_value(n) > bn) {
				bn = json_integer_value(n);
				best = lab;
			}
		if (best)
			json_object_set_new(labels, item, json_string(best));
	}
}

/* The majority label of each item over the pending results' labels. */
static int label_round(struct cli *c, const struct round_state *st,
		       json_t **out)
{
	json_t *votes = json_object(), *labels = json_object(), *r;
	size_t i;
	int err = FM_OK;

	if (!votes || !labels) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(st->pending, i, r) {
		char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16];
		json_t *doc = NULL;

		err = work_pull(c, dir, sizeof(dir), cli_str(r, "bundle_ref"));
		if (err)
			goto done;
		snprintf(path, sizeof(path), "%s/labels.json", dir);
		err = fj_load_file(&doc, path, 64u << 20);
		if (err)
			goto done;
		tally(votes, doc);
		json_decref(doc);
	}
	majority(labels, votes);
	*out = json_pack("{s:O}", "labels", labels);
done:
	json_decref(votes);
	json_decref(labels);
	return err;
}

/* ------------------------------------------------------------------ round */

void round_report_cleanup(struct round_report *r)
{
	json_decref(r->version);
	json_decref(r->scores);
	json_decref(r->scoring);
	memset(r, 0, sizeof(*r));
}

/* The version's metrics: the new version's figures and the current
 * one's as previous_*, and how many results it holds. */
static json_t *version_metrics(const json_t *scores, size_t results)
{
	json_t *m = json_pack("{s:I}", "results", (json_int_t)results);
	const json_t *next = json_object_get(scores, "next");
	const json_t *cur = json_object_get(scores, "current");
	static const char *const keys[] = { "accuracy", "loss" };

	for (size_t i = 0; m && i < 2; i++) {
		char prev[32];

		if (json_object_get(next, keys[i]))
			json_object_set(m, keys[i],
					json_object_get(next, keys[i]));
		snprintf(prev, sizeof(prev), "previous_%s", keys[i]);
		if (json_object_get(cur, keys[i]))
			json_object_set(m, prev, json_object_get(cur, keys[i]));
	}
	return m;
}

/* The metrics of a version that keeps the current model: its figures
 * are the current version's; why, and the refused aggregate's figures
 * (under "aggregate", with its rule). */
static json_t *kept_metrics(const json_t *scores, size_t results,
			    const char *why)
{
	json_t *m = json_pack("{s:I, s:s, s:{s:s}}", "results",
			      (json_int_t)results, "kept", why, "aggregate",
			      "rule", cli_str(scores, "rule"));
	const json_t *next = json_object_get(scores, "next");
	const json_t *cur = json_object_get(scores, "current");
	static const char *const keys[] = { "accuracy", "loss" };

	for (size_t i = 0; m && i < 2; i++) {
		char prev[32];

		if (!json_object_get(cur, keys[i]))
			continue;
		snprintf(prev, sizeof(prev), "previous_%s", keys[i]);
		json_object_set(m, keys[i], json_object_get(cur, keys[i]));
		json_object_set(m, prev, json_object_get(cur, keys[i]));
		json_object_set(json_object_get(m, "aggregate"), keys[i],
				json_object_get(next, keys[i]));
	}
	return m;
}

/* Builds the next version from the pending results and pushes it as
 * bundle name, unless it is a model that measures worse than the
 * current version (r->refused). */
static int push_next(struct cli *c, const json_t *task,
		     const struct round_state *st, const struct round_opts *o,
		     const char *name, struct round_report *r,
		     struct store_ref *ref, const char **rule)
{
	struct ml_model *next = NULL;
	json_t *doc = NULL;
	int err;

	if (!strcmp(cli_str(task, "kind"), "data_annotator")) {
		err = label_round(c, st, &doc);
		if (err)
			return err;
		err = work_push_json(c, ref, doc, "labels.json",
				     STORE_KIND_DATASET, name);
		json_decref(doc);
		return err;
	}
	r->scores = json_pack("{s:b, s:s}", "measured", o->holdout != NULL,
			      "metric", metric_of(task));
	if (!r->scores)
		return fm_error_set(FM_ENOMEM, "out of memory");
	if (o->holdout)
		json_object_set_new(r->scores, "examples",
				    json_integer((json_int_t)o->holdout->n));
	err = model_round(c, task, st, o->holdout, r->scores, &next, rule,
			  &r->scoring);
	if (err)
		return err;
	if (!o->force_worse && worse(r->reason, sizeof(r->reason),
				     r->scores)) {
		r->kept = o->keep_worse;
		r->refused = !r->kept;
		if (r->refused)
			snprintf(r->reason + strlen(r->reason),
				 sizeof(r->reason) - strlen(r->reason),
				 ": not published");
	}
	if (!r->refused && !r->kept)
		err = work_push_model(c, ref, next, STORE_KIND_MODEL, name,
				      NULL);
	ml_model_free(next);
	return err;
}

int round_publish(struct cli *c, const json_t *task,
		  const struct round_opts *o, struct round_report *out)
{
	const char *id = cli_str(task, "id");
	struct round_state st = { 0 };
	struct round_report r = { 0 };
	json_t *metrics = NULL, *body = NULL, *ids = json_array(), *x;
	const char *rule = "majority";
	struct store_ref ref;
	struct api *a = NULL;
	char path[160], name[64];
	size_t i;
	int err;

	if (!ids) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = round_state_load(c, task, &st);
	if (err)
		goto done;
	if (json_array_size(st.pending) == 0 ||
	    (!o->force_small &&
	     (long long)json_array_size(st.pending) < st.min_results)) {
		char of[32] = "";

		if (rounds_known(task) && !st.async)
			snprintf(of, sizeof(of), " of round %d", st.version + 1);
		err = fm_error_set(FM_ECONFLICT,
				   "%zu accepted result(s)%s wait for "
				   "aggregation; the task aggregates %lld per "
				   "%s",
				   json_array_size(st.pending), of,
				   st.min_results,
				   st.async ? "version" : "round");
		goto done;
	}
	r.base_version = st.version;
	r.inputs = json_array_size(st.pending);
	json_array_foreach(st.pending, i, x)
		json_array_append_new(ids, json_string(cli_str(x, "id")));
	snprintf(name, sizeof(name), "task-%.10s-v%d", id + 2, st.version + 1);
	err = push_next(c, task, &st, o, name, &r, &ref, &rule);
	if (err || r.refused)
		goto done;
	if (r.kept) {
		/* the same bundle again: the next round starts from it */
		err = store_ref_parse(&ref, cli_str(st.current, "bundle_ref"));
		if (err)
			goto done;
		rule = "kept";
		metrics = kept_metrics(r.scores, json_array_size(ids),
				       r.reason);
	} else {
		metrics = version_metrics(r.scores, json_array_size(ids));
	}
	body = json_pack("{s:s, s:s, s:o, s:O}", "bundle", ref.hex, "rule",
			 rule, "metrics", metrics, "results", ids);
	metrics = NULL;
	if (!body) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	if (r.scoring) {
		struct store_ref sref;

		json_object_set_new(json_object_get(r.scoring, "models"),
				    "aggregate", json_string(ref.hex));
		err = work_push_blob_json(c, &sref, r.scoring);
		if (err)
			goto done;
		snprintf(r.scoring_ref, sizeof(r.scoring_ref), "%s", sref.hex);
		json_object_set_new(body, "scoring",
				    json_pack("{s:s}", "report", sref.hex));
	}
	err = cli_api(c, 1, &a);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "/v1/tasks/%s/models", id);
	err = api_post(a, API_VALIDATIOND, path, body, &r.version);
done:
	round_state_cleanup(&st);
	json_decref(metrics);
	json_decref(body);
	json_decref(ids);
	if (err) {
		round_report_cleanup(&r);
		return err;
	}
	*out = r;
	return FM_OK;
}
