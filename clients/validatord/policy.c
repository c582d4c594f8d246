/* The custom validation policy (task.validation): minimum held-out
 * accuracy, minimum improvement over the current model version, maximum
 * loss, and screening of updates far from the round's median update
 * (in median absolute deviations of the distances); data-annotation
 * results by gold items and agreement with the majority. */
#include "policy.h"

#include "cli/round.h"
#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "engine/agg.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most results judged in one pass (the rest wait for the next). */
#define POOL_MAX 64
/* A round's pool is judged, full or not, this long before its deadline. */
#define POOL_DEADLINE_MARGIN_S 15

struct thresholds {
	double min_accuracy, min_improvement, max_loss, max_distance,
		gold_min;
};

static double num_or_nan(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void thresholds_of(struct thresholds *t, const json_t *task)
{
	const json_t *v = json_object_get(json_object_get(task, "spec"),
					  "validation");

	t->min_accuracy = num_or_nan(v, "min_accuracy");
	t->min_improvement = num_or_nan(v, "min_improvement");
	t->max_loss = num_or_nan(v, "max_loss");
	t->max_distance = num_or_nan(v, "max_distance_from_median");
	t->gold_min = num_or_nan(v, "gold_min_agreement");
}

/* Seconds since iso (negative: until it); a time not given counts as
 * far in the future (a round without a deadline never nears it). */
static long long age_s(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!iso[0])
		return -LLONG_MAX / 2;
	if (!strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (long long)time(NULL) - (long long)timegm(&tm);
}

void verdicts_free(struct verdict *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		json_decref(v[i].metrics);
	free(v);
}

static void add_reason(struct verdict *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add_reason(struct verdict *v, const char *fmt, ...)
{
	size_t len = strlen(v->reason);
	va_list ap;

	if (len && len + 2 < sizeof(v->reason)) {
		memcpy(v->reason + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(v->reason + len, sizeof(v->reason) - len, fmt, ap);
	va_end(ap);
	v->accept = 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* score[i]: how many median absolute deviations update i's distance to
 * the coordinate-wise median update lies above the median distance. */
static int median_scores(double *score, float *const *deltas, size_t k,
			 size_t n)
{
	struct ml_agg_opts o = ML_AGG_OPTS_INIT;
	float *med = malloc(n * sizeof(float));
	double *d = calloc(k, sizeof(double)), *tmp = calloc(k, sizeof(double));
	double md, mad;
	int err = FM_OK;

	if (!med || !d || !tmp) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	o.rule = ML_AGG_MEDIAN;
	err = ml_agg_combine(med, (const float *const *)deltas, NULL, k, n, &o,
			     NULL, NULL);
	if (err)
		goto done;
	for (size_t i = 0; i < k; i++) {
		double s = 0;

		for (size_t j = 0; j < n; j++) {
			double x = (double)deltas[i][j] - (double)med[j];

			s += x * x;
		}
		d[i] = tmp[i] = sqrt(s);
	}
	md = median_of(tmp, k);
	for (size_t i = 0; i < k; i++)
		tmp[i] = fabs(d[i] - md);
	mad = median_of(tmp, k);
	/* identical honest updates would make the MAD 0 */
	if (mad < 1e-6 * md + 1e-12)
		mad = 1e-6 * md + 1e-12;
	for (size_t i = 0; i < k; i++)
		score[i] = (d[i] - md) / mad;
done:
	free(med);
	free(d);
	free(tmp);
	return err;
}

/* --------------------------------------------------------------- models */

struct entry {
	const json_t *result;
	struct ml_model *m;
	struct ml_eval ev;
	int evaluated;
	int arch_ok;
	char copy[160]; /* why it is a copy, or "" */
};

/* The round's models: the current version's and every result's (the
 * submitted ones first, then those already pending), each evaluated on
 * the held-out data when there is some. Loaded once, never changed. */
struct pool {
	int contributor;         /* results are updates of base */
	struct ml_model *base;
	struct ml_eval bev;      /* base on the held-out data */
	struct entry *e;
	size_t ns, n;            /* submitted; all */
};

static void pool_cleanup(struct pool *p)
{
	for (size_t i = 0; p->e && i < p->n; i++)
		ml_model_free(p->e[i].m);
	free(p->e);
	ml_model_free(p->base);
	memset(p, 0, sizeof(*p));
}

/* Result r's model into x, with its architecture checked against p's base
 * and its held-out figures. */
static int entry_load(struct entry *x, struct cli *c, const struct pool *p,
		      const struct policy_in *in, const json_t *r)
{
	const json_t *spec = json_object_get(in->task, "spec");
	int err;

	x->result = r;
	err = work_load_bundle_model(c, cli_str(r, "bundle_ref"), &x->m);
	if (err)
		return err;
	x->arch_ok = !p->contributor || !ml_model_same_arch(p->base, x->m);
	if (in->holdout && x->arch_ok) {
		err = work_evaluate(x->m, spec, in->holdout, &x->ev);
		if (err)
			return err;
		x->evaluated = 1;
	}
	return FM_OK;
}

static int pool_load(struct pool *p, struct cli *c, const struct policy_in *in,
		     const json_t *submitted, const struct round_state *st)
{
	const json_t *task = in->task, *spec = json_object_get(task, "spec");
	int err;

	p->contributor = !strcmp(cli_str(task, "kind"), "model_contributor");
	p->ns = json_array_size(submitted);
	p->n = p->ns + json_array_size(st->pending);
	p->e = calloc(p->n, sizeof(*p->e));
	if (!p->e)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = work_load_bundle_model(c, cli_str(st->current, "bundle_ref"),
				     &p->base);
	if (err)
		return err;
	if (in->holdout) {
		err = work_evaluate(p->base, spec, in->holdout, &p->bev);
		if (err)
			return err;
	}
	for (size_t i = 0; i < p->n; i++) {
		const json_t *r = i < p->ns ? json_array_get(submitted, i)
			: json_array_get(st->pending, i - p->ns);

		err = entry_load(&p->e[i], c, p, in, r);
		if (err)
			return err;
	}
	return FM_OK;
}

/* score[k] for the k-th update of the pool with the task's architecture:
 * its distance from the round's median update (see median_scores), on
 * copies of the updates (model minus base). *screened is 0 when fewer
 * than 3 updates make a pool. */
static int screen_updates(const struct pool *p, double *score, int *screened)
{
	size_t n = 0, k = 0;
	const float *b = ml_model_params_const(p->base, &n);
	float **deltas = calloc(p->n + 1, sizeof(*deltas));
	float *all = NULL;
	int err = FM_OK;

	*screened = 0;
	if (!deltas)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++)
		k += p->e[i].arch_ok;
	if (k < 3)
		goto done;
	all = malloc(k * n * sizeof(*all));
	if (!all) {
		err = fm_error_set(FM_ENOMEM, "out of memory (%zu updates of "
				   "%zu parameters)", k, n);
		goto done;
	}
	k = 0;
	for (size_t i = 0; i < p->n; i++) {
		const float *x;
		size_t xn;

		if (!p->e[i].arch_ok)
			continue;
		x = ml_model_params_const(p->e[i].m, &xn);
		/* the same architecture: as many parameters as base */
		FM_ASSERT(xn == n);
		deltas[k] = all + k * n;
		for (size_t j = 0; j < n; j++)
			deltas[k][j] = x[j] - b[j];
		k++;
	}
	err = median_scores(score, deltas, k, n);
	if (err)
		goto done;
	*screened = 1;
done:
	free(all);
	free(deltas);
	return err;
}

/* Updates this close to another's (cosine of the deltas from base) are
 * copies; an update this small beside base is no training. */
#define COPY_COSINE 0.999
#define NO_TRAINING_REL 1e-7

/* Whether entry a was submitted before entry b (ties: by id). */
static int submitted_before(const struct entry *a, const struct entry *b)
{
	int c = strcmp(cli_str(a->result, "submitted_at"),
		       cli_str(b->result, "submitted_at"));

	return c ? c < 0 : strcmp(cli_str(a->result, "id"),
				  cli_str(b->result, "id")) < 0;
}

static double delta_dot(const float *b, const float *x, const float *y,
			size_t n)
{
	double s = 0;

	for (size_t j = 0; j < n; j++)
		s += ((double)x[j] - b[j]) * ((double)y[j] - b[j]);
	return s;
}

/* Marks each submitted update of p with the task's architecture that
 * equals base (no training) or points the way of an update submitted
 * before it in the round (a copy, scaled or not): its copy reason. */
static int mark_copies(struct pool *p)
{
	size_t n = 0;
	const float *b = ml_model_params_const(p->base, &n);
	double *norm = calloc(p->n + 1, sizeof(*norm)), bnorm = 0;

	if (!norm)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t j = 0; j < n; j++)
		bnorm += (double)b[j] * b[j];
	bnorm = sqrt(bnorm);
	for (size_t i = 0; i < p->n; i++)
		if (p->e[i].arch_ok)
			norm[i] = sqrt(delta_dot(b, ml_model_params_const(
							    p->e[i].m, NULL),
						 ml_model_params_const(
							 p->e[i].m, NULL),
						 n));
	for (size_t i = 0; i < p->ns; i++) {
		struct entry *x = &p->e[i];
		const float *xi;

		if (!x->arch_ok)
			continue;
		if (norm[i] <= NO_TRAINING_REL * (bnorm + 1e-30)) {
			snprintf(x->copy, sizeof(x->copy), "update equals the "
				 "current version: no training");
			continue;
		}
		xi = ml_model_params_const(x->m, NULL);
		for (size_t j = 0; j < p->n; j++) {
			const struct entry *y = &p->e[j];
			double cos;

			if (j == i || !y->arch_ok || norm[j] == 0 ||
			    !submitted_before(y, x))
				continue;
			cos = delta_dot(b, xi, ml_model_params_const(y->m,
								    NULL),
					n) / (norm[i] * norm[j]);
			if (cos < COPY_COSINE)
				continue;
			snprintf(x->copy, sizeof(x->copy), "result %s of this "
				 "round has the same update (cosine %.4f): "
				 "copies are not paid",
				 cli_str(y->result, "id"), cos);
			break;
		}
	}
	free(norm);
	return FM_OK;
}

/* What every model verdict of a round is measured against. */
struct model_bar {
	struct thresholds t;
	double base_accuracy;  /* the current version's, held out */
	int version;           /* the current version */
	int screen;            /* updates have median distance scores */
};

/* The verdict on submitted result x; s is its median distance score. */
static void model_verdict(struct verdict *v, const struct entry *x, double s,
			  const struct model_bar *bar)
{
	const struct thresholds *t = &bar->t;
	double acc = x->ev.accuracy, gain = acc - bar->base_accuracy;

	snprintf(v->result_id, sizeof(v->result_id), "%s",
		 cli_str(x->result, "id"));
	snprintf(v->contributor, sizeof(v->contributor), "%s",
		 cli_str(x->result, "contributor"));
	v->accept = 1;
	v->metrics = json_object();
	if (!x->arch_ok) {
		add_reason(v, "not the task's architecture");
		return;
	}
	if (x->copy[0])
		add_reason(v, "%s", x->copy);
	if (x->evaluated) {
		json_object_set_new(v->metrics, "accuracy", json_real(acc));
		json_object_set_new(v->metrics, "loss", json_real(x->ev.loss));
		json_object_set_new(v->metrics, "improvement", json_real(gain));
		json_object_set_new(v->metrics, "holdout_examples",
				    json_integer((json_int_t)x->ev.n));
	}
	if (bar->screen)
		json_object_set_new(v->metrics, "median_distance_score",
				    json_real(s));
	if (x->evaluated && !isnan(t->min_accuracy) && acc < t->min_accuracy)
		add_reason(v, "held-out accuracy %.4f is below the task's "
			   "minimum %.4f", acc, t->min_accuracy);
	if (x->evaluated && !isnan(t->min_improvement) &&
	    gain < t->min_improvement)
		add_reason(v, "held-out accuracy %.4f changes version %d's "
			   "%.4f by %+.4f, the task wants at least %+.4f", acc,
			   bar->version, bar->base_accuracy, gain,
			   t->min_improvement);
	if (x->evaluated && !isnan(t->max_loss) && x->ev.loss > t->max_loss)
		add_reason(v, "held-out loss %.4f is above the task's maximum "
			   "%.4f", x->ev.loss, t->max_loss);
	if (bar->screen && s > t->max_distance)
		add_reason(v, "update is %.1f median absolute deviations from "
			   "the round's median update (limit %.1f)", s,
			   t->max_distance);
}

static int judge_models(struct cli *c, const struct policy_in *in,
			const json_t *submitted, const struct round_state *st,
			struct verdict *out)
{
	struct pool p = { 0 };
	struct model_bar bar = { 0 };
	double *score = NULL;
	size_t k = 0;
	int err;

	thresholds_of(&bar.t, in->task);
	/* never accept blindly what the task wants measured */
	if (!in->holdout && (!isnan(bar.t.min_accuracy) ||
			     !isnan(bar.t.min_improvement) ||
			     !isnan(bar.t.max_loss)))
		return fm_error_set(FM_EINVAL, "the task sets held-out "
				    "thresholds but the daemon has no held-out "
				    "data (--data): no decision taken");
	err = pool_load(&p, c, in, submitted, st);
	if (err)
		goto done;
	score = calloc(p.n + 1, sizeof(*score));
	if (!score) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	/* the pool: every update of this round with the task's architecture */
	if (p.contributor && !isnan(bar.t.max_distance)) {
		err = screen_updates(&p, score, &bar.screen);
		if (err)
			goto done;
	}
	if (p.contributor) {
		err = mark_copies(&p);
		if (err)
			goto done;
	}
	bar.base_accuracy = p.bev.accuracy;
	bar.version = st->version;
	for (size_t i = 0; i < p.ns; i++) {
		const struct entry *x = &p.e[i];

		model_verdict(&out[i], x, x->arch_ok ? score[k++] : NAN, &bar);
	}
done:
	pool_cleanup(&p);
	free(score);
	return err;
}

/* ----------------------------------------------------------- annotations */

static int load_labels(struct cli *c, const json_t *r, json_t **out)
{
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16];
	json_t *doc = NULL, *labels;
	int err;

	err = work_pull(c, dir, sizeof(dir), cli_str(r, "bundle_ref"));
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/labels.json", dir);
	err = fj_load_file(&doc, path, 64u << 20);
	if (err)
		return err;
	labels = json_incref(json_object_get(doc, "labels"));
	json_decref(doc);
	/* the caller frees *out either way */
	*out = labels;
	return json_is_object(labels) ? FM_OK
		: fm_error_set(FM_EUNPROCESSABLE, "labels.json: no labels "
			       "object");
}

/* One vote per item of labels into votes: {item: {label: count}}. */
static void count_votes(json_t *votes, json_t *labels)
{
	const char *item;
	json_t *v;

	json_object_foreach(labels, item, v) {
		json_t *tally = json_object_get(votes, item);
		char *key = json_dumps(v, JSON_ENCODE_ANY);

		if (!tally) {
			tally = json_object();
			json_object_set_new(votes, item, tally);
		}
		if (key)
			json_object_set_new(tally, key, json_integer(
				json_integer_value(json_object_get(tally, key)) +
				1));
		free(key);
	}
}

/* The verdict on submitted result r with labels lab, by gold items and
 * by agreement with the round's majority (when the round has >= 3). */
static void label_verdict(struct verdict *v, const json_t *r,
			  json_t *lab, const json_t *votes,
			  const json_t *gold, double need, int majority)
{
	size_t gold_n = 0, gold_ok = 0, agree = 0, total = 0;
	const char *item;
	json_t *l;

	snprintf(v->result_id, sizeof(v->result_id), "%s", cli_str(r, "id"));
	snprintf(v->contributor, sizeof(v->contributor), "%s",
		 cli_str(r, "contributor"));
	v->accept = 1;
	v->metrics = json_object();
	json_object_foreach(lab, item, l) {
		json_t *g = gold ? json_object_get(gold, item) : NULL;
		json_t *tally = json_object_get(votes, item), *cnt;
		char *key = json_dumps(l, JSON_ENCODE_ANY);
		const char *kk;
		long long mine = key ? json_integer_value(json_object_get(tally,
									  key))
				     : 0,
			  top = 0;

		free(key);
		if (g) {
			gold_n++;
			gold_ok += json_equal(g, l);
		}
		json_object_foreach(tally, kk, cnt)
			if (json_integer_value(cnt) > top)
				top = json_integer_value(cnt);
		total++;
		agree += mine == top;
	}
	if (gold_n) {
		double acc = (double)gold_ok / (double)gold_n;

		json_object_set_new(v->metrics, "gold_accuracy", json_real(acc));
		if (acc < need)
			add_reason(v, "%zu of %zu gold items labelled correctly "
				   "(%.2f, the task wants %.2f)", gold_ok,
				   gold_n, acc, need);
	}
	if (majority && total) {
		double a = (double)agree / (double)total;

		json_object_set_new(v->metrics, "majority_agreement",
				    json_real(a));
		if (a < need)
			add_reason(v, "agrees with the majority on %zu of %zu "
				   "items (%.2f, the task wants %.2f)", agree,
				   total, a, need);
	}
}

static int judge_labels(struct cli *c, const struct policy_in *in,
			const json_t *submitted, const struct round_state *st,
			struct verdict *out)
{
	size_t ns = json_array_size(submitted), np = json_array_size(st->pending);
	json_t **lab = calloc(ns + np, sizeof(*lab)), *votes = json_object();
	struct thresholds t;
	size_t i;
	int err = FM_OK;

	if (!lab || !votes) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	thresholds_of(&t, in->task);
	for (i = 0; i < ns + np; i++) {
		const json_t *r = i < ns ? json_array_get(submitted, i)
					 : json_array_get(st->pending, i - ns);

		err = load_labels(c, r, &lab[i]);
		if (err)
			goto done;
		count_votes(votes, lab[i]);
	}
	for (i = 0; i < ns; i++)
		label_verdict(&out[i], json_array_get(submitted, i), lab[i],
			      votes, in->gold,
			      isnan(t.gold_min) ? 0.5 : t.gold_min,
			      ns + np >= 3);
done:
	for (i = 0; lab && i < ns + np; i++)
		json_decref(lab[i]);
	free(lab);
	json_decref(votes);
	return err;
}

int round_pool_waits(const json_t *task, const struct round_state *st,
		     size_t submitted)
{
	const json_t *rd = json_object_get(task, "round");
	long long per = json_integer_value(json_object_get(task,
							   "results_per_round"));
	long long sent = json_integer_value(json_object_get(rd, "submitted"));

	if ((long long)(submitted + json_array_size(st->pending)) <
	    st->min_results)
		return 1;
	if (st->async || !json_is_object(rd) || per < 1)
		return 0;
	if ((long long)submitted > sent)
		sent = (long long)submitted;
	return sent + json_integer_value(json_object_get(rd, "accepted")) +
		       json_integer_value(json_object_get(rd, "rejected")) <
	       per;
}

int policy_judge(struct cli *c, const struct policy_in *in,
		 struct verdict **out, size_t *n)
{
	const char *id = cli_str(in->task, "id");
	struct round_state st = { 0 };
	struct verdict *v = NULL;
	struct api *a = NULL;
	json_t *list = NULL, *sub, *r;
	long long oldest = 0;
	char path[160];
	size_t i, ns;
	int err;

	*n = 0;
	err = cli_api(c, 0, &a);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/tasks/%s/results?state=submitted", id);
	err = api_get(a, API_RESULTD, path, &list);
	if (err)
		return err;
	sub = json_object_get(list, "results");
	while (json_array_size(sub) > POOL_MAX)
		json_array_remove(sub, json_array_size(sub) - 1);
	ns = json_array_size(sub);
	if (!ns)
		goto done;
	err = round_state_load(c, in->task, &st);
	if (err)
		goto done;
	json_array_foreach(sub, i, r) {
		long long age = age_s(cli_str(r, "submitted_at"));

		oldest = age > oldest ? age : oldest;
	}
	/* screening and majorities need the round's results together (a
	 * result judged alone later is screened against a smaller pool),
	 * but not so late that the round's deadline finds none accepted */
	if (round_pool_waits(in->task, &st, ns) && oldest < in->round_wait_s &&
	    -age_s(cli_str(json_object_get(in->task, "round"),
			   "deadline_at")) > POOL_DEADLINE_MARGIN_S) {
		log_debug("task %.12s: %zu submitted, waiting for the round's "
			  "others", id, ns);
		goto done;
	}
	v = calloc(ns, sizeof(*v));
	if (!v) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	if (!strcmp(cli_str(in->task, "kind"), "data_annotator"))
		err = judge_labels(c, in, sub, &st, v);
	else
		err = judge_models(c, in, sub, &st, v);
	if (err) {
		verdicts_free(v, ns);
		goto done;
	}
	*out = v;
	*n = ns;
done:
	round_state_cleanup(&st);
	json_decref(list);
	return err;
}
