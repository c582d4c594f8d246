/* Training (mini-batch SGD and Adam): steps, epochs and their figures.
 * Every buffer is allocated before the loop starts; who runs a step's
 * tasks is the scheduler's business (ml_sched.c). */
#include "engine/ml_impl.h"
#include "engine/ml_sched.h"

#include "core/err.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void ml_train_opts_init(struct ml_train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->epochs = 1;
	o->batch_size = 32;
	o->optimizer = ML_OPT_ADAM;
	o->lr = 0.001;
	o->beta1 = 0.9;
	o->beta2 = 0.999;
	o->epsilon = 1e-7;
	o->loss = ML_LOSS_SPARSE_CE;
	o->shuffle = 1;
}

static double now_s(void)
{
	return (double)ml__mono_ns() * 1e-9;
}

int ml_data_check(const struct ml_model *m, const struct ml_dataset *d,
		  enum ml_loss loss)
{
	char ms[96], ds[96];

	if (d->x_size != m->in_size) {
		ml_shape_format(ms, sizeof(ms), &m->in_shape);
		ml_shape_format(ds, sizeof(ds), &d->x_shape);
		return fm_error_set(FM_EINVAL, "data: samples have shape %s, "
				    "the model's input is %s", ds, ms);
	}
	if (loss == ML_LOSS_SPARSE_CE) {
		if (d->y_size != 1)
			return fm_error_set(FM_EINVAL, "data: sparse "
					    "categorical cross-entropy needs "
					    "one class label per sample, got "
					    "%zu values", d->y_size);
		if (m->out_size < 2)
			return fm_error_set(FM_EINVAL, "data: sparse "
					    "categorical cross-entropy needs a "
					    "model with at least 2 outputs");
		return ml_dataset_check_labels(d, (int)m->out_size);
	}
	if (d->y_size != m->out_size)
		return fm_error_set(FM_EINVAL, "data: %zu target values per "
				    "sample, the model has %zu outputs",
				    d->y_size, m->out_size);
	for (size_t i = 0; i < d->n * d->y_size; i++)
		if (!isfinite(d->y[i]))
			return fm_error_set(FM_EINVAL, "data: sample %zu: "
					    "target %zu is not finite",
					    i / d->y_size + 1,
					    i % d->y_size + 1);
	return FM_OK;
}

int ml_dataset_check_labels(const struct ml_dataset *d, int classes)
{
	for (size_t i = 0; i < d->n; i++) {
		float v = d->y[i * d->y_size];

		if (!(v >= 0 && v < (float)classes) || v != floorf(v))
			return fm_error_set(FM_EINVAL, "data: sample %zu: "
					    "label %g is not a class of the "
					    "model (0..%d)", i + 1, (double)v,
					    classes - 1);
	}
	return FM_OK;
}

/* ---- optimizers ------------------------------------------------------- */

struct opt_state {
	const struct ml_train_opts *o;
	float *m1, *m2;  /* Adam moments, or SGD velocity in m1 */
	long t;
};

ML_VECTOR
static void adam_step(float *p, const float *g, float *m1, float *m2,
		      size_t n, float alpha, float b1, float b2, float eps)
{
	float c1 = 1.0f - b1, c2 = 1.0f - b2;

	for (size_t i = 0; i < n; i++) {
		m1[i] += (g[i] - m1[i]) * c1;
		m2[i] += (g[i] * g[i] - m2[i]) * c2;
		p[i] -= alpha * m1[i] / (sqrtf(m2[i]) + eps);
	}
}

ML_VECTOR
static void sgd_step(float *p, const float *g, float *v, size_t n, float lr,
		     float mom, int nesterov)
{
	if (!v) {
		for (size_t i = 0; i < n; i++)
			p[i] -= lr * g[i];
		return;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = mom * v[i] - lr * g[i];
		p[i] += nesterov ? mom * v[i] - lr * g[i] : v[i];
	}
}

/* Step s->t of the optimizer over parameters [lo, hi). */
static void opt_step(struct ml_model *m, const struct opt_state *s, size_t lo,
		     size_t hi)
{
	const struct ml_train_opts *o = s->o;

	if (o->optimizer == ML_OPT_ADAM) {
		double alpha = o->lr * sqrt(1.0 - pow(o->beta2, (double)s->t)) /
			       (1.0 - pow(o->beta1, (double)s->t));

		adam_step(m->params + lo, m->grads + lo, s->m1 + lo,
			  s->m2 + lo, hi - lo, (float)alpha, (float)o->beta1,
			  (float)o->beta2, (float)o->epsilon);
	} else {
		sgd_step(m->params + lo, m->grads + lo, s->m1 ? s->m1 + lo : NULL,
			 hi - lo, (float)o->lr, (float)o->momentum,
			 o->nesterov);
	}
}

ML_VECTOR
static void add_into(float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		a[i] += b[i];
}

static int check_opts(const struct ml_train_opts *o)
{
	if (o->epochs < 0 || o->batch_size < 1 || o->batch_size > (1 << 20))
		return fm_error_set(FM_EINVAL, "training: epochs must be >= 0 "
				    "and batch size in [1, 1048576]");
	if (!(o->lr > 0 && o->lr < 1e6) || !(o->momentum >= 0 &&
					    o->momentum < 1) ||
	    !(o->beta1 >= 0 && o->beta1 < 1) ||
	    !(o->beta2 >= 0 && o->beta2 < 1) || !(o->epsilon > 0))
		return fm_error_set(FM_EINVAL, "training: learning rate must "
				    "be > 0, momentum and betas in [0, 1), "
				    "epsilon > 0");
	return FM_OK;
}

/* ---- the halves -------------------------------------------------------- */

/* With two halves a batch is cut in two fixed halves, each with its own
 * workspace, gradients and dropout stream, and the parameters in two
 * fixed halves for the optimizer. Each step is two phases of two tasks:
 * the halves' gradients, then the halves' updates. The arithmetic of a
 * task does not depend on which thread runs it, so the weights depend
 * only on the number of halves, never on timing. */
#define HALVES 2

struct half {
	struct ml_workspace *ws;
	struct ml_workspace own_ws;
	float *grads;
	float *xb, *yb;
	struct ml_rng *rng;
	struct ml_rng own_rng;
	size_t p_lo, p_hi; /* parameters this half updates */
	double loss_sum;
	size_t correct;
};

struct train_job {
	struct ml_model *m;
	const struct ml_dataset *d;
	const struct ml_train_opts *o;
	struct opt_state st;
	float *state;          /* the optimizer's moments */
	struct ml_rng shuf;
	size_t *idx;           /* sample order */
	size_t B, n;
	int halves;            /* 1: no split, no helper */
	size_t s, b;           /* the step's batch */
	struct half h[HALVES];
	struct ml_sched sched;
};

/* Forward and backward of half k of batch [s, s + b). */
static void half_grads(void *arg, int k)
{
	struct train_job *j = arg;
	struct half *H = &j->h[k];
	struct ml_model *m = j->m;
	const struct ml_dataset *d = j->d;
	size_t first = j->halves == 1 ? j->b : (j->b + 1) / 2;
	size_t lo = k ? first : 0, cnt = k ? j->b - first : first;
	const float *out;

	if (cnt == 0) {
		memset(H->grads, 0, m->n_params * sizeof(float));
		return;
	}
	for (size_t r = 0; r < cnt; r++) {
		size_t i = j->idx[j->s + lo + r];

		memcpy(H->xb + r * m->in_size, d->x + i * d->x_size,
		       m->in_size * sizeof(float));
		memcpy(H->yb + r * d->y_size, d->y + i * d->y_size,
		       d->y_size * sizeof(float));
	}
	out = ml__forward(m, H->ws, H->xb, cnt, 1, H->rng);
	ml__loss(j->o->loss, j->o->from_logits, out, H->yb, cnt, m->out_size,
		 d->y_size, H->ws->dact[m->n_layers], 1.0 / (double)j->b,
		 &H->loss_sum, &H->correct);
	ml__backward(m, H->ws, H->grads, cnt);
}

/* The optimizer on half k of the parameters, with both halves'
 * gradients. */
static void half_update(void *arg, int k)
{
	struct train_job *j = arg;
	struct half *H = &j->h[k];

	for (int g = 1; g < j->halves; g++)
		add_into(j->m->grads + H->p_lo, j->h[g].grads + H->p_lo,
			 H->p_hi - H->p_lo);
	opt_step(j->m, &j->st, H->p_lo, H->p_hi);
}

static int halves_setup(struct train_job *j)
{
	struct ml_model *m = j->m;
	size_t per = j->halves == 1 ? j->B : (j->B + 1) / 2;
	/* parameter halves on 64-byte boundaries */
	size_t mid = ((m->n_params + 1) / 2 + 15) & ~(size_t)15;

	if (mid > m->n_params)
		mid = m->n_params;
	for (int k = 0; k < j->halves; k++) {
		struct half *H = &j->h[k];
		int err;

		H->ws = k ? &H->own_ws : &m->ws;
		H->rng = k ? &H->own_rng : &m->rng;
		if (k)
			ml_rng_seed(&H->own_rng,
				    j->o->seed ^ (0x1a2e5ull * (uint64_t)k));
		H->grads = k ? malloc((m->n_params + 1) * sizeof(float))
			     : m->grads;
		H->xb = malloc(per * m->in_size * sizeof(float) + 1);
		H->yb = malloc(per * j->d->y_size * sizeof(float) + 1);
		if (!H->grads || !H->xb || !H->yb)
			return fm_error_set(FM_ENOMEM,
					    "training: out of memory");
		err = ml__ws_ensure(m, H->ws, per, 1);
		if (err)
			return err;
		H->p_lo = k ? mid : 0;
		H->p_hi = k || j->halves == 1 ? m->n_params : mid;
	}
	return FM_OK;
}

/* ---- the loop --------------------------------------------------------- */

/* Buffers, order and seeds of a run over d; j was zeroed. */
static int job_setup(struct train_job *j, struct ml_model *m,
		     const struct ml_dataset *d,
		     const struct ml_train_opts *o)
{
	size_t n = d->n, n_state;

	j->m = m;
	j->d = d;
	j->o = o;
	j->st.o = o;
	j->n = n;
	j->B = (size_t)o->batch_size < n ? (size_t)o->batch_size : n;
	n_state = o->optimizer == ML_OPT_ADAM ? 2 * m->n_params :
		  o->momentum > 0 ? m->n_params : 0;
	j->idx = malloc(n * sizeof(*j->idx));
	j->state = calloc(n_state + 1, sizeof(float));
	if (!m->grads)
		m->grads = malloc((m->n_params + 1) * sizeof(float));
	if (!j->idx || !j->state || !m->grads)
		return fm_error_set(FM_ENOMEM, "training: out of memory");
	if (n_state) {
		j->st.m1 = j->state;
		j->st.m2 = o->optimizer == ML_OPT_ADAM ?
			   j->state + m->n_params : NULL;
	}
	for (size_t i = 0; i < n; i++)
		j->idx[i] = i;
	ml_rng_seed(&j->shuf, o->seed);
	ml_rng_seed(&m->rng, o->seed ^ 0x5eed0d00d5eedull);
	j->halves = ml__train_halves(j->B);
	return halves_setup(j);
}

/* Frees what job_setup allocated, the model's gradients included. */
static void job_cleanup(struct train_job *j)
{
	for (int k = 0; k < HALVES; k++) {
		struct half *H = &j->h[k];

		if (k) {
			ml__ws_free(&H->own_ws);
			free(H->grads);
		}
		free(H->xb);
		free(H->yb);
	}
	free(j->idx);
	free(j->state);
	if (j->m) {
		free(j->m->grads);
		j->m->grads = NULL;
	}
}

/* One pass over the data in batches of B; fills es. */
static int run_epoch(struct train_job *j, int ep, struct ml_epoch_stats *es)
{
	const struct ml_train_opts *o = j->o;
	size_t n = j->n, correct = 0;
	double t0, loss_sum = 0;

	if (o->shuffle)
		ml_rng_shuffle(&j->shuf, j->idx, n);
	for (int k = 0; k < j->halves; k++) {
		j->h[k].loss_sum = 0;
		j->h[k].correct = 0;
	}
	t0 = now_s();
	ml__sched_epoch_begin(&j->sched);
	for (size_t s = 0; s < n; s += j->B) {
		j->s = s;
		j->b = n - s < j->B ? n - s : j->B;
		ml__sched_step(&j->sched);
		ml__sched_phase(&j->sched, half_grads);
		j->st.t++;
		ml__sched_phase(&j->sched, half_update);
		if (o->on_batch)
			o->on_batch(o->cb_arg, s + j->b, n,
				    (j->h[0].loss_sum + j->h[1].loss_sum) /
					    (double)(s + j->b));
	}
	ml__sched_epoch_end(&j->sched);
	for (int k = 0; k < j->halves; k++) {
		loss_sum += j->h[k].loss_sum;
		correct += j->h[k].correct;
	}
	memset(es, 0, sizeof(*es));
	es->epoch = ep;
	es->samples = n;
	es->seconds = now_s() - t0;
	es->loss = loss_sum / (double)n;
	es->accuracy = (double)correct / (double)n;
	es->samples_per_s = es->seconds > 0 ? (double)n / es->seconds : 0;
	if (!isfinite(es->loss))
		return fm_error_set(FM_EUNPROCESSABLE, "training: the loss "
				    "became %g in epoch %d (try a smaller "
				    "learning rate)", es->loss, ep);
	return FM_OK;
}

int ml_train(struct ml_model *m, const struct ml_dataset *d,
	     const struct ml_train_opts *o)
{
	struct train_job j;
	int err;

	err = check_opts(o);
	if (err)
		return err;
	err = ml_data_check(m, d, o->loss);
	if (err)
		return err;
	if (d->n == 0)
		return fm_error_set(FM_EINVAL, "training: the data set is "
				    "empty");
	memset(&j, 0, sizeof(j));
	ml__sched_init(&j.sched, &j);
	err = job_setup(&j, m, d, o);
	if (err)
		goto done;
	/* without a helper the halves still split the same way */
	ml__sched_start(&j.sched, j.halves);
	for (int ep = 1; ep <= o->epochs; ep++) {
		struct ml_epoch_stats es;

		err = run_epoch(&j, ep, &es);
		if (err)
			goto done;
		if (o->on_epoch && o->on_epoch(o->cb_arg, m, &es))
			break;
		/* the callback may have evaluated with a larger batch */
		err = ml__ws_ensure(m, &m->ws, j.B, 1);
		if (err)
			goto done;
	}
done:
	ml__sched_cleanup(&j.sched);
	job_cleanup(&j);
	return err;
}
