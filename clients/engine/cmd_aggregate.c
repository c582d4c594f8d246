/* aggregate --base DIR --out DIR [--rule R and its options] [--dp-clip C
 * --dp-noise SIGMA] [--examples N,N,...] UPDATE_DIR...
 *
 * Each update is a model of the base's architecture (TensorFlow.js
 * folder); its example count comes from --examples or from the file
 * UPDATE_DIR/examples (one integer). Centered clipping and DP combine
 * the updates' differences from the base (clipping is measured from it);
 * the result is written to --out only when everything succeeded. */
#include "fedcli.h"

#include "core/buf.h"
#include "core/err.h"
#include "engine/dp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "aggregate"
#define MAX_EXAMPLES 1e15 /* per update */

static int parse_count(const char *text, const char *what, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')
		end++;
	if (errno || end == text || *end || !(v >= 1 && v <= MAX_EXAMPLES) ||
	    v != floor(v))
		return fm_error_set(FM_EINVAL, "%s: '%.32s' is not an example "
				    "count in 1..%.0f", what, text,
				    MAX_EXAMPLES);
	*out = v;
	return FM_OK;
}

/* Example counts from --examples "N,N,..." or each UPDATE_DIR/examples. */
static int load_counts(double *w, const char *list, const char **dirs,
		       size_t k)
{
	struct buf b = BUF_INIT(64);
	char path[4096], item[64];
	size_t i = 0;
	int err = FM_OK;

	if (list) {
		const char *p = list;

		for (; i < k && *p; i++) {
			size_t len = strcspn(p, ",");

			snprintf(item, sizeof(item), "%.*s",
				 (int)(len < 63 ? len : 63), p);
			err = parse_count(item, "--examples", &w[i]);
			if (err)
				return err;
			p += len + (p[len] == ',');
		}
		if (i != k || *p)
			return fm_error_set(FM_EINVAL, "--examples: %zu "
					    "updates need %zu counts", k, k);
		return FM_OK;
	}
	for (; i < k; i++) {
		snprintf(path, sizeof(path), "%s/examples", dirs[i]);
		err = buf_read_file(&b, path);
		if (err == FM_ENOTFOUND || err == FM_EIO)
			err = fm_error_set(FM_EINVAL, "update %zu (%s): no "
					   "example count: write %s or pass "
					   "--examples (or --uniform)", i,
					   dirs[i], path);
		if (err)
			break;
		err = parse_count(b.data, path, &w[i]);
		if (err)
			break;
	}
	buf_cleanup(&b);
	return err;
}

/* Physical memory in bytes (a huge value when unknown). */
static double phys_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (double)pages * (double)size : 1e300;
}

/* epsilon after rounds of the sampled Gaussian mechanism. */
static int round_epsilon(double *eps, double q, double sigma, int rounds,
			 double delta)
{
	struct ml_dp_acct acct;
	int err;

	ml_dp_acct_init(&acct);
	err = ml_dp_acct_add(&acct, q, sigma, rounds);
	if (err)
		return err;
	return ml_dp_acct_epsilon(&acct, delta, eps, NULL);
}

/* What the DP step did, for the report. */
struct dp_report {
	size_t clipped;
	double noise_sd;
	double epsilon; /* NAN unless --dp-rounds */
};

static void print_result(const struct fed_flags *ff, const char *out,
			 size_t k, size_t n, const int *chosen,
			 const struct dp_report *dp)
{
	if (ff->json) {
		printf("{\"rule\": \"%s\", \"updates\": %zu, \"params\": %zu, "
		       "\"out\": \"%s\"", ml_agg_rule_name(ff->agg.rule), k,
		       n, out);
		if (ff->agg.rule == ML_AGG_KRUM) {
			printf(", \"chosen\": [");
			for (size_t i = 0, c = 0; i < k; i++)
				if (chosen[i])
					printf("%s%zu", c++ ? ", " : "", i);
			printf("]");
		}
		if (ff->dp_clip > 0)
			printf(", \"dp_clip\": %g, \"dp_noise\": %g, "
			       "\"dp_clipped\": %zu, \"noise_stddev\": %g",
			       ff->dp_clip, ff->dp_noise, dp->clipped,
			       dp->noise_sd);
		if (!isnan(dp->epsilon))
			printf(", \"epsilon\": %.6f, \"delta\": %g",
			       dp->epsilon, ff->dp_delta);
		printf("}\n");
		return;
	}
	printf("aggregated %zu updates with %s", k,
	       ml_agg_rule_name(ff->agg.rule));
	if (ff->agg.rule == ML_AGG_KRUM) {
		printf(" (chosen:");
		for (size_t i = 0; i < k; i++)
			if (chosen[i])
				printf(" %zu", i);
		printf(")");
	}
	if (ff->dp_clip > 0)
		printf(", DP: %zu clipped, noise stddev %g", dp->clipped,
		       dp->noise_sd);
	if (!isnan(dp->epsilon))
		printf(", (%.4f, %g)-DP so far", dp->epsilon, ff->dp_delta);
	printf(" into %s\n", out);
}

/* The command line. */
struct agg_args {
	struct fed_flags ff;
	const char *base_dir, *out_dir, *examples;
	const char **dirs; /* the update folders */
	int k;
	int threads, dp_rounds;
	double sample_rate;
};

/* The models of one aggregation: the base and the k updates, held as
 * parameters (or their differences from the base: use_delta). */
struct agg_round {
	struct ml_model *base, **upd;
	const float **delta;
	double *w;   /* example counts */
	int *chosen; /* the updates the rule used */
	float *agg;
	size_t k, n;
	int use_delta;
};

/* Parses and checks the line; 1 to go on, else 0 with *code. */
static int parse_args(struct agg_args *a, int argc, char **argv, int *code)
{
	const struct opt opts[] = {
		{ "--base", OPT_STR, &a->base_dir, "DIR",
		  "the round's base model", 0, 0 },
		{ "--out", OPT_STR, &a->out_dir, "DIR",
		  "where to write the aggregate", 0, 0 },
		{ "--examples", OPT_STR, &a->examples, "N,N,..", "example "
		  "count of each update (else UPDATE_DIR/examples)", 0, 0 },
		{ "--threads", OPT_INT, &a->threads, "N", "threads of the "
		  "weighted sums (1)", 1, ML_AGG_MAX_THREADS },
		{ "--dp-rounds", OPT_INT, &a->dp_rounds, "R", "DP: report "
		  "epsilon after R rounds like this one", 1, 100000000 },
		{ "--sample-rate", OPT_NUM, &a->sample_rate, "Q", "DP: the "
		  "chance each client had to take part (1)", 1e-9, 1 },
		OPTS_FED(&a->ff),
		OPT_END,
	};
	struct opt_spec s = {
		.cmd = CMD, .opts = opts, .pos = a->dirs,
		.max_pos = ML_AGG_MAX_UPDATES, .npos = &a->k,
		.synopsis = "--base DIR --out DIR [options] UPDATE_DIR...",
	};

	if (!engine_parse(&s, argc, argv, code))
		return 0;
	*code = fed_flags_finish(&a->ff, CMD);
	if (*code)
		return 0;
	if (!a->base_dir || !a->out_dir || a->k == 0) {
		*code = engine_usage(CMD, "--base, --out and at least one "
				     "update folder are required");
		return 0;
	}
	if (a->dp_rounds && a->ff.dp_clip == 0) {
		*code = engine_usage(CMD, "--dp-rounds needs --dp-clip");
		return 0;
	}
	return 1;
}

static int round_alloc(struct agg_round *r, size_t k)
{
	r->k = k;
	r->upd = calloc(k, sizeof(*r->upd));
	r->delta = calloc(k, sizeof(*r->delta));
	r->w = calloc(k, sizeof(*r->w));
	r->chosen = calloc(k, sizeof(*r->chosen));
	if (!r->upd || !r->delta || !r->w || !r->chosen)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu updates)",
				    k);
	return FM_OK;
}

static void round_cleanup(struct agg_round *r)
{
	for (size_t i = 0; r->upd && i < r->k; i++)
		ml_model_free(r->upd[i]);
	ml_model_free(r->base);
	free(r->upd);
	free(r->delta);
	free(r->agg);
	free(r->w);
	free(r->chosen);
}

/* Update i, checked against the base; its parameters (or difference
 * from the base) become r->delta[i]. */
static int load_update(struct agg_round *r, size_t i, const char *dir)
{
	const float *b = ml_model_params(r->base, NULL);
	float *p;
	int err;

	err = ml_model_load(&r->upd[i], dir);
	if (err)
		goto done;
	err = ml_model_same_arch(r->base, r->upd[i]);
	if (err)
		goto done;
	err = ml_model_check_finite(r->upd[i]);
	if (err)
		goto done;
	/* FedAvg, the median, trimmed mean and Krum give the same model from
	 * models as from differences, and exactly the model when all agree;
	 * clipping needs differences */
	p = ml_model_params(r->upd[i], NULL);
	if (r->use_delta)
		for (size_t j = 0; j < r->n; j++)
			p[j] -= b[j];
	r->delta[i] = p;
done:
	if (err)
		fm_error_prefix("update %zu (%s)", i, dir);
	return err;
}

/* The base and every update, refused early when they cannot fit. */
static int load_models(struct agg_round *r, const struct agg_args *a)
{
	int err = ml_model_load(&r->base, a->base_dir);

	if (err)
		return fm_error_prefix("base %s", a->base_dir);
	ml_model_params(r->base, &r->n);
	/* all updates are held at once */
	if ((double)r->k * (double)r->n * sizeof(float) > phys_bytes())
		return fm_error_set(FM_ETOOLARGE, "%zu updates of %zu "
				    "parameters need %.1f GB, more than this "
				    "machine's memory", r->k, r->n,
				    (double)r->k * (double)r->n * 4e-9);
	for (size_t i = 0; i < r->k; i++) {
		err = load_update(r, i, a->dirs[i]);
		if (err)
			return err;
	}
	r->agg = malloc((r->n ? r->n : 1) * sizeof(*r->agg));
	if (!r->agg)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu parameters)",
				    r->n);
	return FM_OK;
}

/* DP FedAvg of the differences: clipped, summed, noised. */
static int combine_dp(struct agg_round *r, struct agg_args *a,
		      struct dp_report *dp)
{
	struct fed_flags *ff = &a->ff;
	struct ml_rng rng;
	int err;

	/* unseeded DP noise must be unpredictable */
	if (!ff->seed_set) {
		err = ml_dp_random_seed(&ff->seed);
		if (err)
			return err;
	}
	ml_rng_seed(&rng, ff->seed);
	err = ml_dp_fedavg(r->agg, r->delta, r->k, r->n, ff->dp_clip,
			   ff->dp_noise, (double)r->k, &rng, &dp->clipped);
	if (err)
		return err;
	dp->noise_sd = ff->dp_noise * ff->dp_clip / (double)r->k;
	for (size_t i = 0; i < r->k; i++)
		r->chosen[i] = 1;
	if (a->dp_rounds > 0)
		return round_epsilon(&dp->epsilon, a->sample_rate,
				     ff->dp_noise, a->dp_rounds,
				     ff->dp_delta);
	return FM_OK;
}

/* The base moved to the aggregate, checked and written to --out. */
static int save_aggregate(struct agg_round *r, const char *out)
{
	float *b = ml_model_params(r->base, NULL);
	int err;

	for (size_t j = 0; j < r->n; j++)
		b[j] = r->use_delta ? b[j] + r->agg[j] : r->agg[j];
	err = ml_model_check_finite(r->base);
	if (err)
		return fm_error_prefix("the aggregate");
	err = ml_model_save(r->base, out);
	if (err)
		return fm_error_prefix("%s", out);
	return FM_OK;
}

int cmd_aggregate(int argc, char **argv)
{
	struct agg_args a = { .threads = 1, .sample_rate = 1.0 };
	struct agg_round r = { 0 };
	struct dp_report dp = { 0, 0.0, NAN };
	const struct fed_flags *ff = &a.ff;
	int code = CLI_OK, err = FM_OK;

	fed_flags_init(&a.ff);
	a.dirs = malloc(ML_AGG_MAX_UPDATES * sizeof(*a.dirs));
	if (!a.dirs) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	if (!parse_args(&a, argc, argv, &code))
		goto done;
	ml_agg_set_threads(a.threads);
	err = round_alloc(&r, (size_t)a.k);
	if (err)
		goto done;
	/* counts matter to weighted FedAvg only, but a given list is checked
	 * in any case: a malformed one is a mistake */
	if ((ff->agg.rule == ML_AGG_FEDAVG && !ff->agg.uniform &&
	     !ff->dp_clip) || a.examples) {
		err = load_counts(r.w, a.examples, a.dirs, r.k);
		if (err)
			goto done;
	}
	r.use_delta = ff->dp_clip > 0 ||
		      ff->agg.rule == ML_AGG_CENTERED_CLIP;
	err = load_models(&r, &a);
	if (err)
		goto done;
	if (ff->dp_clip > 0)
		err = combine_dp(&r, &a, &dp);
	else
		err = ml_agg_combine(r.agg, r.delta, r.w, r.k, r.n, &ff->agg,
				     NULL, r.chosen);
	if (err)
		goto done;
	err = save_aggregate(&r, a.out_dir);
	if (err)
		goto done;
	print_result(ff, a.out_dir, r.k, r.n, r.chosen, &dp);
done:
	if (err)
		code = engine_fail(CMD);
	round_cleanup(&r);
	free(a.dirs);
	return code;
}
