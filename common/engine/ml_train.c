/* Training (mini-batch SGD and Adam), evaluation and prediction. Every
 * buffer is allocated before the loop starts. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
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

static long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static double now_s(void)
{
	return (double)mono_ns() * 1e-9;
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

/* ---- the loop --------------------------------------------------------- */

/* With two threads a batch is cut in two fixed halves, each with its own
 * workspace, gradients and dropout stream, and the parameters in two
 * fixed halves for the optimizer. Each step is two phases of two tasks
 * (the halves' gradients, then the halves' updates); either thread takes
 * whichever task is next. The arithmetic of a task does not depend on
 * who runs it, so the weights depend only on the number of halves, never
 * on timing; and when the other thread is slow to come (a busy machine),
 * the calling thread simply runs both tasks itself. */
#define HALVES 2
/* How long a thread spins waiting for the other before it sleeps (the
 * helper) or yields (the caller): a phase lasts tens to hundreds of
 * microseconds. The spin is a plain loop: in a virtual machine PAUSE
 * can hand the CPU back to the host, which stalls the whole step. */
#define SPIN_NS 200000L

/* Spins until *a differs from v or SPIN_NS passed; 1 if it changed. */
static int spin_while_equal(_Atomic uint64_t *a, uint64_t v,
			    const atomic_int *quit)
{
	long until = mono_ns() + SPIN_NS;

	for (;;) {
		for (int i = 0; i < 64; i++) {
			if (atomic_load(a) != v || atomic_load(quit))
				return 1;
			__asm__ volatile("" ::: "memory");
		}
		if (mono_ns() > until)
			return 0;
	}
}

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
	struct opt_state *st;
	const size_t *idx;
	size_t B, n;
	int halves;            /* 1: no split, no helper */
	size_t s, b;           /* the step's batch */
	/* phase number << 32 | tasks claimed; phases count from 1, odd
	 * ones compute gradients, even ones update */
	_Atomic uint64_t phase;
	atomic_int finished;   /* tasks of the current phase done */
	atomic_int quit, sleeping;
	/* 1 while the caller runs every task alone (see pace()) */
	atomic_int solo;
	int stage, stage_steps;
	long stage_start, helped_ns, solo_ns;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct half h[HALVES];
};

/* Forward and backward of half k of batch [s, s + b). */
static void half_grads(struct train_job *j, int k)
{
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
static void half_update(struct train_job *j, int k)
{
	struct half *H = &j->h[k];

	for (int g = 1; g < j->halves; g++)
		add_into(j->m->grads + H->p_lo, j->h[g].grads + H->p_lo,
			 H->p_hi - H->p_lo);
	opt_step(j->m, j->st, H->p_lo, H->p_hi);
}

/* Claims and runs one task of the current phase; 0 when none is left. */
static int run_task(struct train_job *j)
{
	uint64_t v = atomic_load(&j->phase);

	while ((uint32_t)v < (uint32_t)j->halves) {
		if (atomic_compare_exchange_weak(&j->phase, &v, v + 1)) {
			int k = (int)(uint32_t)v;

			if ((v >> 32) % 2 == 1)
				half_grads(j, k);
			else
				half_update(j, k);
			atomic_fetch_add(&j->finished, 1);
			return 1;
		}
	}
	return 0;
}

/* Opens the next phase, runs what the helper does not take, and returns
 * when all of its tasks are done. */
static void run_phase(struct train_job *j)
{
	uint64_t v = atomic_load(&j->phase);
	long start;
	int spins = 0;

	atomic_store(&j->finished, 0);
	atomic_store(&j->phase, ((v >> 32) + 1) << 32);
	if (atomic_load(&j->sleeping) && !atomic_load(&j->solo)) {
		pthread_mutex_lock(&j->mu);
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
	}
	while (run_task(j))
		;
	start = mono_ns();
	/* a task the helper took: it is running it now */
	while (atomic_load(&j->finished) < j->halves) {
		if (++spins % 4096 == 0 && mono_ns() > start + SPIN_NS)
			sched_yield();
		__asm__ volatile("" ::: "memory");
	}
}

/* Who runs the steps. With the helper a step takes the caller's task and
 * its wait for the helper's; alone, both tasks. Which is faster depends
 * on what else the machine runs, so the caller times PROBE_STEPS steps
 * each way and keeps the faster, for RUN_STEPS steps with the helper or
 * SOLO_STEPS alone: a busy spell (OpenBLAS' own threads still spinning
 * after an evaluation, say) passes, and going alone when the helper could
 * help costs the most. The tasks stay the same either way, and so do the
 * weights. */
#define PROBE_STEPS 32
#define RUN_STEPS 1024
#define SOLO_STEPS 128

enum { PACE_PROBE_HELPED, PACE_PROBE_SOLO, PACE_RUN };

/* Each epoch starts by probing: the epoch before may have ended in an
 * evaluation that changed who has the CPUs. */
static void pace_restart(struct train_job *j)
{
	j->stage = PACE_PROBE_HELPED;
	atomic_store(&j->solo, 0);
	j->stage_steps = 0;
	j->stage_start = mono_ns();
}

static void pace(struct train_job *j)
{
	long now, per;

	if (++j->stage_steps < (j->stage != PACE_RUN	 ? PROBE_STEPS
				: atomic_load(&j->solo) ? SOLO_STEPS
							 : RUN_STEPS))
		return;
	now = mono_ns();
	per = (now - j->stage_start) / j->stage_steps;
	switch (j->stage) {
	case PACE_PROBE_HELPED:
		j->helped_ns = per;
		j->stage = PACE_PROBE_SOLO;
		atomic_store(&j->solo, 1);
		break;
	case PACE_PROBE_SOLO:
		j->solo_ns = per;
		j->stage = PACE_RUN;
		atomic_store(&j->solo, j->solo_ns < j->helped_ns);
		break;
	default:
		j->stage = PACE_PROBE_HELPED;
		atomic_store(&j->solo, 0);
		break;
	}
	j->stage_steps = 0;
	j->stage_start = now;
}

static void *helper_main(void *arg)
{
	struct train_job *j = arg;

	while (!atomic_load(&j->quit)) {
		uint64_t v = atomic_load(&j->phase);

		if (!atomic_load(&j->solo) &&
		    (run_task(j) || spin_while_equal(&j->phase, v, &j->quit)))
			continue;
		pthread_mutex_lock(&j->mu);
		atomic_store(&j->sleeping, 1);
		/* a phase opened just before this may be missed: the caller
		 * runs it alone and the next one wakes this thread */
		while ((atomic_load(&j->phase) == v || atomic_load(&j->solo)) &&
		       !atomic_load(&j->quit))
			pthread_cond_wait(&j->cv, &j->mu);
		atomic_store(&j->sleeping, 0);
		pthread_mutex_unlock(&j->mu);
	}
	return NULL;
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

static void halves_cleanup(struct train_job *j)
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
}

int ml_train(struct ml_model *m, const struct ml_dataset *d,
	     const struct ml_train_opts *o)
{
	struct opt_state st = { o, NULL, NULL, 0 };
	struct train_job j;
	struct ml_rng shuf;
	size_t *idx = NULL;
	float *state = NULL;
	size_t B = (size_t)o->batch_size, n = d->n, n_state;
	pthread_t tid;
	int helper = 0, err;

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
	memset(&j, 0, sizeof(j));
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.cv, NULL);
	n_state = o->optimizer == ML_OPT_ADAM ? 2 * m->n_params :
		  o->momentum > 0 ? m->n_params : 0;
	idx = malloc(n * sizeof(*idx));
	state = calloc(n_state + 1, sizeof(float));
	if (!m->grads)
		m->grads = malloc((m->n_params + 1) * sizeof(float));
	if (!idx || !state || !m->grads) {
		err = fm_error_set(FM_ENOMEM, "training: out of memory");
		goto done;
	}
	if (n_state) {
		st.m1 = state;
		st.m2 = o->optimizer == ML_OPT_ADAM ? state + m->n_params : NULL;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	ml_rng_seed(&shuf, o->seed);
	ml_rng_seed(&m->rng, o->seed ^ 0x5eed0d00d5eedull);
	j.m = m;
	j.d = d;
	j.o = o;
	j.st = &st;
	j.idx = idx;
	j.B = B;
	j.n = n;
	j.halves = ml__train_halves(B);
	/* phase 0 has nothing to claim */
	atomic_store(&j.phase, (uint64_t)j.halves);
	err = halves_setup(&j);
	if (err)
		goto done;
	if (j.halves > 1)
		/* without a helper the halves still split the same way */
		helper = pthread_create(&tid, NULL, helper_main, &j) == 0;
	for (int ep = 1; ep <= o->epochs; ep++) {
		struct ml_epoch_stats es = { ep, n, 0, 0, 0, 0 };
		double t0, loss_sum = 0;
		size_t correct = 0;

		if (o->shuffle)
			ml_rng_shuffle(&shuf, idx, n);
		for (int k = 0; k < j.halves; k++) {
			j.h[k].loss_sum = 0;
			j.h[k].correct = 0;
		}
		t0 = now_s();
		if (helper) {
			/* one OpenBLAS thread per training thread */
			ml__parallel_begin();
			pace_restart(&j);
		}
		for (size_t s = 0; s < n; s += B) {
			j.s = s;
			j.b = n - s < B ? n - s : B;
			if (helper)
				pace(&j);
			run_phase(&j);
			st.t++;
			run_phase(&j);
			if (o->on_batch)
				o->on_batch(o->cb_arg, s + j.b, n,
					    (j.h[0].loss_sum +
					     j.h[1].loss_sum) /
						    (double)(s + j.b));
		}
		if (helper)
			ml__parallel_end();
		for (int k = 0; k < j.halves; k++) {
			loss_sum += j.h[k].loss_sum;
			correct += j.h[k].correct;
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
	if (helper) {
		pthread_mutex_lock(&j.mu);
		atomic_store(&j.quit, 1);
		pthread_cond_signal(&j.cv);
		pthread_mutex_unlock(&j.mu);
		pthread_join(tid, NULL);
	}
	if (j.m)
		halves_cleanup(&j);
	pthread_mutex_destroy(&j.mu);
	pthread_cond_destroy(&j.cv);
	free(idx);
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
					     0, NULL);

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
