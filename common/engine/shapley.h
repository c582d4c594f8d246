/* Contribution scores of a round's updates: the Shapley value of each
 * update for a held-out metric of the aggregate of any subset (coalition)
 * of the round's updates; the empty coalition is the base model.
 *
 * - exact: every one of the 2^k coalitions is evaluated once, in Gray-code
 *   order, so a value function can move from one aggregate to the next by
 *   adding or removing a single update (ml_shapley_fedavg_value does);
 * - GTG-Shapley (Liu et al., ACM TIST 2022): sub-models are rebuilt from
 *   the round's updates (never retrained), permutations are sampled guided
 *   (each cycle of k permutations puts every update first once), a
 *   permutation stops once its prefix is within `truncation` of the full
 *   round's gain (the rest add nothing), the whole round is skipped when
 *   the round gained nothing, and sampling stops at convergence or at the
 *   evaluation budget. Coalitions seen before cost nothing.
 *
 * Deterministic under the seed: the same updates, data and options give
 * the same scores and the same list of evaluated coalitions. */
#ifndef FM_ENGINE_SHAPLEY_H
#define FM_ENGINE_SHAPLEY_H

#include "engine/ml.h"

#include <stddef.h>
#include <stdint.h>

#define ML_SHAPLEY_MAX 64       /* updates per round: coalitions are masks */
#define ML_SHAPLEY_EXACT_MAX 20 /* 2^20 coalitions */

/* *out = the value of coalition (bit i set: update i is in it). */
typedef int (*ml_shapley_value_fn)(void *arg, uint64_t coalition,
				   double *out);

enum ml_shapley_method { ML_SHAPLEY_EXACT = 0, ML_SHAPLEY_GTG };

struct ml_shapley_opts {
	enum ml_shapley_method method;
	size_t budget;     /* gtg: most distinct coalitions evaluated, the
			    * empty and the full one included; 0: 16 k */
	uint64_t seed;     /* gtg: the permutations */
	double truncation; /* gtg: a permutation stops once v(all) - v(prefix)
			    * is within this fraction of v(all) - v(empty) */
	double tolerance;  /* gtg: converged once a cycle of permutations
			    * moves the scores by less than this fraction of
			    * their sum of magnitudes; 0: use the budget */
};

/* Truncating at a quarter of the round's gain and spending the whole
 * budget ranked 10 non-IID Fashion-MNIST updates like exact Shapley
 * (Spearman 0.92 on average) with 5% of its evaluations (bench/shapley.sh). */
#define ML_SHAPLEY_OPTS_INIT { ML_SHAPLEY_EXACT, 0, 0, 0.25, 0 }

/* One evaluated coalition. */
struct ml_shapley_eval {
	uint64_t coalition;
	double value;
};

struct ml_shapley_result {
	size_t k;
	double *phi;          /* k scores; sum = v_all - v_empty (exact) */
	double v_empty, v_all;
	size_t evaluations;   /* distinct coalitions evaluated */
	size_t permutations;  /* gtg: sampled (0 for exact) */
	struct ml_shapley_eval *evals; /* evaluations of them, in order */
};

int ml_shapley_method_parse(enum ml_shapley_method *out, const char *name);
const char *ml_shapley_method_name(enum ml_shapley_method m);

/* Scores k updates (1 <= k <= ML_SHAPLEY_MAX; exact needs k <=
 * ML_SHAPLEY_EXACT_MAX) with value. FM_EINVAL for bad options, the value
 * function's error otherwise, or FM_EUNPROCESSABLE for a value that is
 * not finite. On success out owns its arrays
 * (ml_shapley_result_cleanup). */
int ml_shapley(struct ml_shapley_result *out, size_t k,
	       ml_shapley_value_fn value, void *arg,
	       const struct ml_shapley_opts *o);
void ml_shapley_result_cleanup(struct ml_shapley_result *r);

/* A value function for FedAvg rounds: v(S) is the held-out metric of the
 * model whose parameters are the weighted mean of the updates in S (the
 * base parameters for the empty S). The running sum is kept in double
 * and moved by one update when the next coalition differs by one, so the
 * exact method's Gray-code walk costs one update per coalition. */
enum ml_shapley_metric { ML_SHAPLEY_ACCURACY = 0, ML_SHAPLEY_NEG_LOSS };

struct ml_shapley_fedavg {
	struct ml_model *model;   /* of the round's architecture; its
				   * parameters are overwritten */
	const float *base;        /* n */
	const float *const *updates; /* k parameter vectors of n */
	const double *weights;    /* k, > 0; NULL: equal */
	size_t k, n;
	const struct ml_dataset *data;
	enum ml_loss loss;
	int from_logits;
	enum ml_shapley_metric metric;
	/* state: set up by ml_shapley_fedavg_init */
	double *sum;              /* n: sum of w_i * update_i over members */
	double wsum;
	uint64_t members;
};

int ml_shapley_fedavg_init(struct ml_shapley_fedavg *f);
int ml_shapley_fedavg_value(void *arg, uint64_t coalition, double *out);
void ml_shapley_fedavg_cleanup(struct ml_shapley_fedavg *f);

/* Spearman's rank correlation of a and b (n >= 2; ties get their mean
 * rank); 0 when either side is constant. */
double ml_spearman(const double *a, const double *b, size_t n);

#endif
