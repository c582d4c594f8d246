/* Evaluation and prediction: samples through a model in chunks, split
 * across threads. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_BATCH 1024
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
	if (err)
		return err;
	err = infer(m, d->x, d->y, d->y_size, d->n, B, loss, from_logits,
		    NULL, &sum, &correct);
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
