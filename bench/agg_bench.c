/* Aggregation throughput next to this machine's memory bandwidth.
 *
 * Prints one JSON object: the STREAM-style triad a = b + s c (3 arrays of
 * 256 MiB, 1 and 2 threads, bytes counted as 3 x array) measured in the
 * same run, then FedAvg of 100 updates of the seed MLP (101,770 floats)
 * and of 10 updates of a 10M-parameter model, plus median, trimmed mean,
 * Krum and centered clipping of the same inputs, each in GB/s of update
 * data read (k x n x 4 bytes per call) and as a share of the triad;
 * FedAvg also with 2 threads, next to the 2-thread triad.
 * Best of R repetitions after a warm-up (the machine is a shared VM).
 * Usage: agg_bench [--quick] */
#include "core/err.h"
#include "engine/agg.h"
#include "engine/ml.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float *falloc(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, n * sizeof(float))) {
		fprintf(stderr, "agg_bench: out of memory (%zu floats)\n", n);
		exit(1);
	}
	return p;
}

struct triad_part {
	float *a, *b, *c;
	size_t lo, hi;
	int init;
};

static void *triad_run(void *arg)
{
	struct triad_part *t = arg;

	if (t->init) {
		/* first touch by the thread that will use the pages */
		for (size_t i = t->lo; i < t->hi; i++) {
			t->a[i] = 0.0f;
			t->b[i] = 1.0f;
			t->c[i] = 2.0f;
		}
		return NULL;
	}
	for (size_t i = t->lo; i < t->hi; i++)
		t->a[i] = t->b[i] + 3.0f * t->c[i];
	return NULL;
}

static void triad_pass(struct triad_part *parts, int threads)
{
	pthread_t th[2];

	for (int i = 1; i < threads; i++)
		pthread_create(&th[i], NULL, triad_run, &parts[i]);
	triad_run(&parts[0]);
	for (int i = 1; i < threads; i++)
		pthread_join(th[i], NULL);
}

static double triad(size_t n, int threads, int reps)
{
	float *a = falloc(n), *b = falloc(n), *c = falloc(n);
	struct triad_part parts[2];
	double best = 1e30;

	for (int i = 0; i < threads; i++) {
		parts[i].a = a;
		parts[i].b = b;
		parts[i].c = c;
		parts[i].lo = n / (size_t)threads * (size_t)i;
		parts[i].hi = i == threads - 1 ? n :
			      n / (size_t)threads * (size_t)(i + 1);
		parts[i].init = 1;
	}
	triad_pass(parts, threads);
	for (int i = 0; i < threads; i++)
		parts[i].init = 0;
	for (int r = 0; r <= reps; r++) {
		double t = now(), dt;

		triad_pass(parts, threads);
		dt = now() - t;
		if (r && dt < best) /* r == 0 is the warm-up */
			best = dt;
	}
	if (a[n / 2] != 7.0f)
		fprintf(stderr, "agg_bench: triad result wrong\n");
	free(a);
	free(b);
	free(c);
	return 3.0 * (double)n * sizeof(float) / best / 1e9;
}

/* Best GB/s of update data read by one rule over k updates of n. */
static double rule_gbs(const float *const *upd, const double *w, size_t k,
		       size_t n, const struct ml_agg_opts *o, float *out,
		       int reps)
{
	double best = 1e30;

	for (int r = 0; r <= reps; r++) {
		double t = now(), dt;

		if (ml_agg_combine(out, upd, w, k, n, o, NULL, NULL)) {
			fprintf(stderr, "agg_bench: %s\n", fm_error_msg());
			exit(1);
		}
		dt = now() - t;
		if (r && dt < best)
			best = dt;
	}
	return (double)k * (double)n * sizeof(float) / best / 1e9;
}

static void bench_case(const char *name, size_t k, size_t n, int reps,
		       double triad1, double triad2, int last)
{
	const enum ml_agg_rule rules[] = {
		ML_AGG_FEDAVG, ML_AGG_MEDIAN, ML_AGG_TRIMMED_MEAN, ML_AGG_KRUM,
		ML_AGG_CENTERED_CLIP,
	};
	float *data = falloc(k * n), *out = falloc(n);
	const float **upd = malloc(k * sizeof(*upd));
	double *w = malloc(k * sizeof(*w));
	struct ml_rng rng;

	if (!upd || !w) {
		fprintf(stderr, "agg_bench: out of memory\n");
		exit(1);
	}
	ml_rng_seed(&rng, 1);
	for (size_t i = 0; i < k * n; i++)
		data[i] = (float)(ml_rng_uniform(&rng) - 0.5);
	for (size_t i = 0; i < k; i++) {
		upd[i] = data + i * n;
		w[i] = 100.0 + (double)i;
	}
	printf("  \"%s\": {\"updates\": %zu, \"params\": %zu, "
	       "\"bytes_read\": %zu", name, k, n, k * n * sizeof(float));
	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
		struct ml_agg_opts o = ML_AGG_OPTS_INIT;
		double g;

		o.rule = rules[r];
		o.krum_f = (int)((k - 3) / 2 < 2 ? (k - 3) / 2 : 2);
		o.clip_iters = 1;
		/* the robust rules are compute bound: fewer repetitions */
		g = rule_gbs(upd, w, k, n, &o, out,
			     r == 0 ? reps : reps / 3 + 1);
		printf(", \"%s_gbs\": %.2f", ml_agg_rule_name(rules[r]), g);
		if (r == 0) {
			printf(", \"fedavg_of_triad_1t\": %.2f", g / triad1);
			ml_agg_set_threads(2);
			g = rule_gbs(upd, w, k, n, &o, out, reps);
			ml_agg_set_threads(1);
			printf(", \"fedavg_gbs_2t\": %.2f, "
			       "\"fedavg_2t_of_triad_2t\": %.2f", g, g / triad2);
		}
		fflush(stdout);
	}
	printf("}%s\n", last ? "" : ",");
	free(data);
	free(out);
	free(upd);
	free(w);
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	size_t tn = (quick ? 32u : 256u) * 1024 * 1024 / sizeof(float);
	int reps = quick ? 3 : 10;
	double t1, t2;

	t1 = triad(tn, 1, reps);
	t2 = triad(tn, 2, reps);
	printf("{\n  \"triad_gbs_1t\": %.2f, \"triad_gbs_2t\": %.2f,\n", t1,
	       t2);
	bench_case("mlp_x100", 100, 101770, reps, t1, t2, 0);
	bench_case("10m_x10", 10, quick ? 1000000 : 10000000, reps, t1, t2, 1);
	printf("}\n");
	return 0;
}
