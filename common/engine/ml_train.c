/* Training (mini-batch SGD and Adam), evaluation and prediction. Every
 * buffer is allocated before the loop starts. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_BATCH 1024

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
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
			return fm_error_set(FM_EINVAL, "data: target %zu of "
					    "sample %zu is not finite",
					    i % d->y_size, i / d->y_size);
	return FM_OK;
}

int ml_dataset_check_labels(const struct ml_dataset *d, int classes)
{
	for (size_t i = 0; i < d->n; i++) {
		float v = d->y[i * d->y_size];

		if (!(v >= 0 && v < (float)classes) || v != floorf(v))
			return fm_error_set(FM_EINVAL, "data: label %g of "
					    "sample %zu is not a class in "
					    "[0, %d)", (double)v, i, classes);
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

static void opt_step(struct ml_model *m, struct opt_state *s)
{
	const struct ml_train_opts *o = s->o;

	s->t++;
	if (o->optimizer == ML_OPT_ADAM) {
		double alpha = o->lr * sqrt(1.0 - pow(o->beta2, (double)s->t)) /
			       (1.0 - pow(o->beta1, (double)s->t));

		adam_step(m->params, m->grads, s->m1, s->m2, m->n_params,
			  (float)alpha, (float)o->beta1, (float)o->beta2,
			  (float)o->epsilon);
	} else {
		sgd_step(m->params, m->grads, s->m1, m->n_params, (float)o->lr,
			 (float)o->momentum, o->nesterov);
	}
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

/* ---- the loop --------------------------------------------------------- */

int ml_train(struct ml_model *m, const struct ml_dataset *d,
	     const struct ml_train_opts *o)
{
	struct opt_state st = { o, NULL, NULL, 0 };
	struct ml_rng shuf;
	size_t *idx = NULL;
	float *xb = NULL, *yb = NULL, *state = NULL;
	size_t B = (size_t)o->batch_size, n = d->n, n_state;
	int err;

	err = check_opts(o);
	if (!err)
		err = ml_data_check(m, d, o->loss);
	if (err)
		return err;
	if (n == 0)
		return fm_error_set(FM_EINVAL, "training: the data set is "
				    "empty");
	if (B > n)
		B = n;
	n_state = o->optimizer == ML_OPT_ADAM ? 2 * m->n_params :
		  o->momentum > 0 ? m->n_params : 0;
	idx = malloc(n * sizeof(*idx));
	xb = malloc(B * m->in_size * sizeof(float));
	yb = malloc(B * d->y_size * sizeof(float) + 1);
	state = calloc(n_state + 1, sizeof(float));
	if (!m->grads)
		m->grads = malloc((m->n_params + 1) * sizeof(float));
	if (!idx || !xb || !yb || !state || !m->grads) {
		err = fm_error_set(FM_ENOMEM, "training: out of memory");
		goto done;
	}
	err = ml__ws_ensure(m, &m->ws, B, 1);
	if (err)
		goto done;
	if (n_state) {
		st.m1 = state;
		st.m2 = o->optimizer == ML_OPT_ADAM ? state + m->n_params : NULL;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	ml_rng_seed(&shuf, o->seed);
	ml_rng_seed(&m->rng, o->seed ^ 0x5eed0d00d5eedull);
	for (int ep = 1; ep <= o->epochs; ep++) {
		struct ml_epoch_stats es = { ep, n, 0, 0, 0, 0 };
		size_t correct = 0;
		double loss_sum = 0, t0;

		if (o->shuffle)
			ml_rng_shuffle(&shuf, idx, n);
		t0 = now_s();
		for (size_t s = 0; s < n; s += B) {
			size_t b = n - s < B ? n - s : B;
			const float *out;

			for (size_t r = 0; r < b; r++) {
				memcpy(xb + r * m->in_size,
				       d->x + idx[s + r] * d->x_size,
				       m->in_size * sizeof(float));
				memcpy(yb + r * d->y_size,
				       d->y + idx[s + r] * d->y_size,
				       d->y_size * sizeof(float));
			}
			out = ml__forward(m, &m->ws, xb, b, 1);
			ml__loss(o->loss, o->from_logits, out, yb, b,
				 m->out_size, d->y_size, m->ws.dact[m->n_layers],
				 1.0 / (double)b, &loss_sum, &correct);
			ml__backward(m, b);
			opt_step(m, &st);
			if (o->on_batch)
				o->on_batch(o->cb_arg, s + b, n,
					    loss_sum / (double)(s + b));
		}
		es.seconds = now_s() - t0;
		es.loss = loss_sum / (double)n;
		es.accuracy = (double)correct / (double)n;
		es.samples_per_s = es.seconds > 0 ? (double)n / es.seconds : 0;
		if (!isfinite(es.loss)) {
			err = fm_error_set(FM_EUNPROCESSABLE, "training: the "
					   "loss became %g in epoch %d (try a "
					   "smaller learning rate)", es.loss,
					   ep);
			goto done;
		}
		if (o->on_epoch && o->on_epoch(o->cb_arg, m, &es))
			break;
		/* the callback may have evaluated with a larger batch */
		err = ml__ws_ensure(m, &m->ws, B, 1);
		if (err)
			goto done;
	}
done:
	free(idx);
	free(xb);
	free(yb);
	free(state);
	free(m->grads);
	m->grads = NULL;
	return err;
}

/* ---- inference, split across threads -------------------------------- */

#define MAX_INFER_THREADS 16
/* Chunks per thread: threads take chunks as they finish, so one thread
 * the OS delays does not hold the others up. */
#define CHUNKS_PER_THREAD 8
#define MIN_CHUNK 64

struct infer_job {
	struct ml_model *m;
	const float *x, *y;
	size_t y_size, n, chunk;
	enum ml_loss loss;
	int from_logits;
	float *out;               /* predictions, or NULL */
	atomic_size_t next;       /* next chunk to take */
	double *loss_sum;         /* per chunk, summed in order at the end */
	size_t *correct;          /* per chunk */
};

struct infer_worker {
	struct infer_job *job;
	struct ml_workspace *ws;
};

static void *infer_run(void *arg)
{
	struct infer_worker *w = arg;
	struct infer_job *j = w->job;
	struct ml_model *m = j->m;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) * j->chunk < j->n) {
		size_t s = i * j->chunk;
		size_t b = j->n - s < j->chunk ? j->n - s : j->chunk;
		const float *o = ml__forward(m, w->ws, j->x + s * m->in_size, b,
					     0);

		if (j->out)
			memcpy(j->out + s * m->out_size, o,
			       b * m->out_size * sizeof(float));
		if (j->y)
			ml__loss(j->loss, j->from_logits, o,
				 j->y + s * j->y_size, b, m->out_size,
				 j->y_size, NULL, 0, &j->loss_sum[i],
				 &j->correct[i]);
	}
	return NULL;
}

/* Runs n samples through m in chunks of at most B, on up to
 * ml__infer_threads(n) threads with a workspace each. Per-chunk sums are
 * added in chunk order, so results do not depend on timing. */
static int infer(struct ml_model *m, const float *x, const float *y,
		 size_t y_size, size_t n, size_t B, enum ml_loss loss,
		 int from_logits, float *out, double *loss_sum,
		 size_t *correct)
{
	struct ml_workspace extra[MAX_INFER_THREADS] = { { 0 } };
	struct infer_worker w[MAX_INFER_THREADS];
	pthread_t tid[MAX_INFER_THREADS];
	int started[MAX_INFER_THREADS] = { 0 };
	int T = ml__infer_threads(n), err = FM_OK;
	struct infer_job j = { m, x, y, y_size, n, B, loss, from_logits, out,
			       0, NULL, NULL };
	size_t chunks;

	if (T > MAX_INFER_THREADS)
		T = MAX_INFER_THREADS;
	if (T > 1 && n / ((size_t)T * CHUNKS_PER_THREAD) < j.chunk)
		j.chunk = n / ((size_t)T * CHUNKS_PER_THREAD);
	if (j.chunk < MIN_CHUNK)
		j.chunk = B < MIN_CHUNK ? B : MIN_CHUNK;
	if (j.chunk > n)
		j.chunk = n ? n : 1;
	chunks = (n + j.chunk - 1) / j.chunk;
	atomic_init(&j.next, 0);
	j.loss_sum = calloc(chunks + 1, sizeof(double));
	j.correct = calloc(chunks + 1, sizeof(size_t));
	if (!j.loss_sum || !j.correct) {
		err = fm_error_set(FM_ENOMEM, "inference: out of memory");
		goto done;
	}
	for (int t = 0; t < T; t++) {
		w[t].job = &j;
		w[t].ws = t ? &extra[t] : &m->ws;
		err = ml__ws_ensure(m, w[t].ws, j.chunk, 0);
		if (err)
			goto done;
	}
	if (T > 1)
		ml__parallel_begin();
	for (int t = 1; t < T; t++)
		started[t] = pthread_create(&tid[t], NULL, infer_run, &w[t]) == 0;
	infer_run(&w[0]);
	for (int t = 1; t < T; t++)
		if (started[t])
			pthread_join(tid[t], NULL);
	if (T > 1)
		ml__parallel_end();
	for (size_t i = 0; i < chunks; i++) {
		*loss_sum += j.loss_sum[i];
		*correct += j.correct[i];
	}
done:
	for (int t = 1; t < T; t++)
		ml__ws_free(&extra[t]);
	free(j.loss_sum);
	free(j.correct);
	return err;
}

int ml_evaluate(struct ml_model *m, const struct ml_dataset *d,
		enum ml_loss loss, int from_logits, int batch_size,
		struct ml_eval *out)
{
	size_t B = batch_size > 0 ? (size_t)batch_size : EVAL_BATCH;
	size_t correct = 0;
	double sum = 0;
	int err;

	err = ml_data_check(m, d, loss);
	if (!err)
		err = infer(m, d->x, d->y, d->y_size, d->n, B, loss,
			    from_logits, NULL, &sum, &correct);
	if (err)
		return err;
	out->n = d->n;
	out->loss = d->n ? sum / (double)d->n : 0;
	out->accuracy = d->n ? (double)correct / (double)d->n : 0;
	return FM_OK;
}

int ml_predict(struct ml_model *m, const float *x, size_t n, float *out)
{
	double sum = 0;
	size_t correct = 0;

	return infer(m, x, NULL, 0, n, EVAL_BATCH, ML_LOSS_MSE, 0, out, &sum,
		     &correct);
}
