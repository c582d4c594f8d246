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

/* Positional arguments (the update folders) are the ones that are not an
 * option or an option's value. */
static int take_positional(const struct opt *opts, int *argc, char **argv,
			   const char **pos, size_t *npos)
{
	int out = 1;

	*npos = 0;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		const struct opt *o;
		size_t len;

		if (strncmp(a, "--", 2) != 0 && strcmp(a, "-h") != 0) {
			if (*npos == ML_AGG_MAX_UPDATES)
				return cli_usage_error(CMD, "more than %d "
						       "updates",
						       ML_AGG_MAX_UPDATES);
			pos[(*npos)++] = a;
			continue;
		}
		argv[out++] = argv[i];
		len = strchr(a, '=') ? (size_t)(strchr(a, '=') - a) : strlen(a);
		for (o = opts; o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, a, len))
				break;
		/* the value of "--name value" stays with its option */
		if (o->name && o->type != OPT_FLAG && !strchr(a, '=') &&
		    i + 1 < *argc)
			argv[out++] = argv[++i];
	}
	*argc = out;
	return CLI_OK;
}

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
	for (; i < k && !err; i++) {
		snprintf(path, sizeof(path), "%s/examples", dirs[i]);
		err = buf_read_file(&b, path);
		if (err == FM_ENOTFOUND || err == FM_EIO)
			err = fm_error_set(FM_EINVAL, "update %zu (%s): no "
					   "example count: write %s or pass "
					   "--examples (or --uniform)", i,
					   dirs[i], path);
		if (!err)
			err = parse_count(b.data, path, &w[i]);
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
	if (!err)
		err = ml_dp_acct_epsilon(&acct, delta, eps, NULL);
	return err;
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

int cmd_aggregate(int argc, char **argv)
{
	struct fed_flags ff;
	const char *base_dir = NULL, *out_dir = NULL, *examples = NULL;
	const char **dirs = NULL;
	struct ml_model *base = NULL, **upd = NULL;
	const float **delta = NULL;
	float *agg = NULL, *b;
	double *w = NULL, sample_rate = 1.0;
	struct dp_report dp = { 0, 0.0, NAN };
	int *chosen = NULL, rc = CLI_OK, err = FM_OK, use_delta, threads = 1;
	int dp_rounds = 0;
	size_t k = 0, n = 0;
	struct ml_rng rng;

	fed_flags_init(&ff);
	const struct opt opts[] = {
		{ "--base", OPT_STR, &base_dir, "DIR", "the round's base model",
		  0, 0 },
		{ "--out", OPT_STR, &out_dir, "DIR", "where to write the "
		  "aggregate", 0, 0 },
		{ "--examples", OPT_STR, &examples, "N,N,..", "example count "
		  "of each update (else UPDATE_DIR/examples)", 0, 0 },
		{ "--threads", OPT_INT, &threads, "N", "threads of the "
		  "weighted sums (1)", 1, ML_AGG_MAX_THREADS },
		{ "--dp-rounds", OPT_INT, &dp_rounds, "R", "DP: report epsilon "
		  "after R rounds like this one", 1, 100000000 },
		{ "--sample-rate", OPT_NUM, &sample_rate, "Q", "DP: the "
		  "chance each client had to take part (1)", 1e-9, 1 },
		OPTS_FED(&ff),
		{ NULL, 0, NULL, NULL, NULL, 0, 0 },
	};

	dirs = malloc(ML_AGG_MAX_UPDATES * sizeof(*dirs));
	if (!dirs) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	rc = take_positional(opts, &argc, argv, dirs, &k);
	if (!rc)
		rc = opts_parse(opts, argc, argv, CMD, "--base DIR --out DIR "
				"[options] UPDATE_DIR...");
	if (!rc)
		rc = fed_flags_finish(&ff, CMD);
	if (rc)
		goto done;
	if (!base_dir || !out_dir || k == 0) {
		rc = cli_usage_error(CMD, "--base, --out and at least one "
				     "update folder are required");
		goto done;
	}
	if (dp_rounds && ff.dp_clip == 0) {
		rc = cli_usage_error(CMD, "--dp-rounds needs --dp-clip");
		goto done;
	}
	ml_agg_set_threads(threads);
	upd = calloc(k, sizeof(*upd));
	delta = calloc(k, sizeof(*delta));
	w = calloc(k, sizeof(*w));
	chosen = calloc(k, sizeof(*chosen));
	if (!upd || !delta || !w || !chosen) {
		err = fm_error_set(FM_ENOMEM, "out of memory (%zu updates)",
				   k);
		goto done;
	}
	/* counts matter to weighted FedAvg only, but a given list is checked
	 * in any case: a malformed one is a mistake */
	if ((ff.agg.rule == ML_AGG_FEDAVG && !ff.agg.uniform &&
	     !ff.dp_clip) || examples) {
		err = load_counts(w, examples, dirs, k);
		if (err)
			goto done;
	}
	err = ml_model_load(&base, base_dir);
	if (err) {
		fm_error_prefix("base %s", base_dir);
		goto done;
	}
	b = ml_model_params(base, &n);
	/* all updates are held at once: refuse early what cannot fit */
	if ((double)k * (double)n * sizeof(float) > phys_bytes()) {
		err = fm_error_set(FM_ETOOLARGE, "%zu updates of %zu "
				   "parameters need %.1f GB, more than this "
				   "machine's memory", k, n,
				   (double)k * (double)n * 4e-9);
		goto done;
	}
	use_delta = ff.dp_clip > 0 || ff.agg.rule == ML_AGG_CENTERED_CLIP;
	for (size_t i = 0; i < k; i++) {
		float *p;

		err = ml_model_load(&upd[i], dirs[i]);
		if (!err)
			err = ml_model_same_arch(base, upd[i]);
		if (!err)
			err = ml_model_check_finite(upd[i]);
		if (err) {
			fm_error_prefix("update %zu (%s)", i, dirs[i]);
			goto done;
		}
		/* FedAvg, the median, trimmed mean and Krum give the same
		 * model from models as from differences, and exactly the
		 * model when all agree; clipping needs differences */
		p = ml_model_params(upd[i], NULL);
		if (use_delta)
			for (size_t j = 0; j < n; j++)
				p[j] -= b[j];
		delta[i] = p;
	}
	agg = malloc((n ? n : 1) * sizeof(*agg));
	if (!agg) {
		err = fm_error_set(FM_ENOMEM, "out of memory (%zu parameters)",
				   n);
		goto done;
	}
	if (ff.dp_clip > 0) {
		/* unseeded DP noise must be unpredictable */
		if (!ff.seed_set)
			err = ml_dp_random_seed(&ff.seed);
		if (err)
			goto done;
		ml_rng_seed(&rng, ff.seed);
		err = ml_dp_fedavg(agg, delta, k, n, ff.dp_clip, ff.dp_noise,
				   (double)k, &rng, &dp.clipped);
		dp.noise_sd = ff.dp_noise * ff.dp_clip / (double)k;
		if (!err && dp_rounds > 0)
			err = round_epsilon(&dp.epsilon, sample_rate,
					    ff.dp_noise, dp_rounds,
					    ff.dp_delta);
		for (size_t i = 0; i < k; i++)
			chosen[i] = 1;
	} else {
		err = ml_agg_combine(agg, delta, w, k, n, &ff.agg, NULL,
				     chosen);
	}
	if (err)
		goto done;
	for (size_t j = 0; j < n; j++)
		b[j] = use_delta ? b[j] + agg[j] : agg[j];
	err = ml_model_check_finite(base);
	if (err) {
		fm_error_prefix("the aggregate");
		goto done;
	}
	err = ml_model_save(base, out_dir);
	if (err) {
		fm_error_prefix("%s", out_dir);
		goto done;
	}
	print_result(&ff, out_dir, k, n, chosen, &dp);
done:
	if (err)
		rc = cli_fail();
	for (size_t i = 0; upd && i < k; i++)
		ml_model_free(upd[i]);
	ml_model_free(base);
	free(upd);
	free(delta);
	free(agg);
	free(w);
	free(chosen);
	free(dirs);
	return rc;
}
