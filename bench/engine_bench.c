/* The engine's side of bench/engine.sh, measured like
 * shared/bench/torch_mlp_baseline.py: Fashion-MNIST loaded and scaled
 * first (not timed), then per-epoch training samples/s (the training loop
 * only: gather, forward, loss, backward, Adam), test accuracy, and
 * inference samples/s over the 10k test images (median of repeated
 * passes at each evaluation batch size). One JSON object per line. */
#include "core/err.h"
#include "engine/ml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D "/usr/share/datasets/fashion-mnist/"
#define MAX_RUNS 64

struct run {
	struct ml_dataset *test;
	double sps[MAX_RUNS];
	int n;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Peak resident memory of this process in MiB (VmHWM). */
static double peak_rss_mb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lf kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb / 1024;
}

static int on_epoch(void *arg, struct ml_model *m,
		    const struct ml_epoch_stats *s)
{
	struct run *r = arg;
	struct ml_eval ev;
	double t = now_s();

	if (ml_evaluate(m, r->test, ML_LOSS_SPARSE_CE, 1, 10000, &ev))
		return 1;
	printf("{\"type\": \"epoch\", \"epoch\": %d, \"train_samples_per_s\": "
	       "%.1f, \"train_s\": %.4f, \"train_loss\": %.5f, "
	       "\"test_accuracy\": %.4f, \"eval_s\": %.4f}\n", s->epoch,
	       s->samples_per_s, s->seconds, s->loss, ev.accuracy, now_s() - t);
	fflush(stdout);
	if (r->n < MAX_RUNS)
		r->sps[r->n++] = s->samples_per_s;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: engine_bench MODEL_DIR EPOCHS BATCH "
		"[EVAL_BATCH...] (EPOCHS 0: evaluation only)\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct ml_dataset tr, te;
	struct ml_model *m = NULL;
	struct ml_train_opts o;
	struct run r = { 0 };
	double t0, load_s;
	int epochs, batch;

	ml_blas_setup(argc, argv);
	if (argc < 4)
		return usage();
	epochs = atoi(argv[2]);
	batch = atoi(argv[3]);
	if (epochs < 0 || batch < 1)
		return usage();
	t0 = now_s();
	if (ml_model_load(&m, argv[1]) ||
	    ml_dataset_load_idx(&tr, D "train-images-idx3-ubyte.gz",
				D "train-labels-idx1-ubyte.gz") ||
	    ml_dataset_load_idx(&te, D "t10k-images-idx3-ubyte.gz",
				D "t10k-labels-idx1-ubyte.gz")) {
		fprintf(stderr, "engine_bench: %s\n", fm_error_msg());
		return 1;
	}
	ml_dataset_scale(&tr, 255);
	ml_dataset_scale(&te, 255);
	load_s = now_s() - t0;
	printf("{\"type\": \"config\", \"engine\": \"%s\", \"openblas_core\": "
	       "\"%s\", \"OPENBLAS_CORETYPE\": \"%s\", \"batch_size\": %d, "
	       "\"epochs\": %d, \"params\": %zu, \"data_load_s\": %.4f}\n",
	       ML_VERSION, ml_blas_corename(),
	       getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "",
	       batch, epochs, ml_model_param_count(m), load_s);
	ml_train_opts_init(&o);
	o.epochs = epochs;
	o.batch_size = batch;
	o.from_logits = 1;
	o.on_epoch = on_epoch;
	o.cb_arg = &r;
	r.test = &te;
	if (epochs && ml_train(m, &tr, &o)) {
		fprintf(stderr, "engine_bench: %s\n", fm_error_msg());
		return 1;
	}
	if (r.n)
		printf("{\"type\": \"summary\", \"median_train_samples_per_s\": "
		       "%.1f, \"batch_size\": %d}\n", median(r.sps, r.n), batch);
	for (int a = 4; a < argc; a++) {
		int eb = atoi(argv[a]);
		double times[20];
		struct ml_eval ev;

		if (eb < 1)
			return usage();
		ml_evaluate(m, &te, ML_LOSS_SPARSE_CE, 1, eb, &ev); /* warm */
		for (int i = 0; i < 20; i++) {
			double t = now_s();

			ml_evaluate(m, &te, ML_LOSS_SPARSE_CE, 1, eb, &ev);
			times[i] = now_s() - t;
		}
		printf("{\"type\": \"eval\", \"batch_size\": %d, \"samples\": "
		       "%zu, \"samples_per_s_median\": %.1f}\n", eb, te.n,
		       (double)te.n / median(times, 20));
	}
	printf("{\"type\": \"memory\", \"peak_rss_mb\": %.1f, \"data_mb\": "
	       "%.1f}\n", peak_rss_mb(),
	       (double)((tr.n + te.n) * (tr.x_size + tr.y_size) *
			sizeof(float)) / (1024 * 1024));
	ml_dataset_cleanup(&tr);
	ml_dataset_cleanup(&te);
	ml_model_free(m);
	return 0;
}
