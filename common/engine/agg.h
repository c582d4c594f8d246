/* Aggregation of federated updates: k flat float32 vectors of n
 * coordinates each (the models' flat parameter vectors, or their
 * differences from the round's base model) combined into one.
 *
 * FedAvg is linear, so it gives the same model whether it averages models
 * or deltas. The median, trimmed mean and Krum are translation invariant;
 * centered clipping is not: give it deltas, its radius is measured from
 * the starting center. The robust rules ignore weights on purpose: an
 * attacker could claim any example count. */
#ifndef FM_ENGINE_AGG_H
#define FM_ENGINE_AGG_H

#include <stddef.h>

/* Most updates one call combines (Krum keeps a k x k distance table). */
#define ML_AGG_MAX_UPDATES 2048
#define ML_AGG_MAX_THREADS 64

enum ml_agg_rule {
	ML_AGG_FEDAVG = 0,
	ML_AGG_MEDIAN,
	ML_AGG_TRIMMED_MEAN,
	ML_AGG_KRUM,
	ML_AGG_CENTERED_CLIP,
};

struct ml_agg_opts {
	enum ml_agg_rule rule;
	int uniform;       /* fedavg: equal weights instead of the given ones */
	double trim;       /* trimmed_mean: fraction cut at each end,
			    * [0, 0.5) */
	int krum_f;        /* krum: attackers assumed; needs k >= 2f + 3 */
	int krum_m;        /* krum: best-scored updates averaged, 1..k: 1 is
			    * Krum, more is Multi-Krum (k - f is usual) */
	double clip_tau;   /* centered_clip: clipping radius, > 0 */
	int clip_iters;    /* centered_clip: iterations, >= 1 */
};

#define ML_AGG_OPTS_INIT { ML_AGG_FEDAVG, 0, 0.1, 0, 1, 1.0, 3 }

/* "fedavg", "median", "trimmed_mean", "krum", "centered_clip". */
int ml_agg_rule_parse(enum ml_agg_rule *out, const char *name);
const char *ml_agg_rule_name(enum ml_agg_rule rule);

/* Checks the options against k updates (trim leaves at least one value,
 * Krum has enough honest updates, ...): FM_EINVAL naming the option. */
int ml_agg_opts_check(const struct ml_agg_opts *o, size_t k);

/* Index of the first NaN or infinity in v, or n when all are finite. */
size_t ml_agg_first_nonfinite(const float *v, size_t n);

/* Combines the k updates upd[0..k-1] (n floats each) into out (n floats,
 * may not alias an update). weights: k example counts, finite and > 0,
 * used by fedavg unless o->uniform; NULL means uniform. center: where
 * centered clipping starts (n floats, NULL = zeros); other rules ignore
 * it. chosen: NULL or k ints set to 1 for the updates Krum selected
 * (all 1 for the other rules). A non-finite value in an update is
 * FM_EUNPROCESSABLE naming the update and coordinate. On failure out
 * and chosen hold nothing meaningful. */
int ml_agg_combine(float *out, const float *const *upd, const double *weights,
		   size_t k, size_t n, const struct ml_agg_opts *o,
		   const float *center, int *chosen);

/* out = sum_i w[i] * upd[i] with the given weights as they are (no
 * normalisation), summed in double; the FedAvg kernel. Updates of weight
 * 0 are not read. FM_EUNPROCESSABLE naming the update and coordinate when
 * an input is not finite, or when the sum leaves the float range. */
int ml_agg_wsum(float *out, const float *const *upd, const double *w,
		size_t k, size_t n);

/* The weight of an update in asynchronous aggregation (FedBuff's
 * polynomial discount): n_examples x (1 + staleness)^-exponent, where
 * staleness counts the versions published since the update's base
 * (version being built - 1 - base version). A fresh update (staleness 0)
 * keeps its example count; exponent 0 ignores staleness. A negative
 * staleness counts as 0 and a negative exponent as 0. */
double ml_agg_staleness_weight(double n_examples, double staleness,
			       double exponent);

/* Threads ml_agg_wsum (so FedAvg, Multi-Krum's average and DP-FedAvg)
 * splits the coordinates over: 1 (the default) to ML_AGG_MAX_THREADS.
 * Results do not depend on it. Process-wide: set it before aggregating,
 * not while another thread aggregates. */
void ml_agg_set_threads(int n);

#endif
