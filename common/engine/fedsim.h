/* Federated evaluation and TensorFlow Federated-style simulation: a data
 * set split over N simulated clients (IID, Dirichlet label skew, or
 * label-sorted shards), rounds of local training from the global model,
 * optional attackers and central differential privacy, aggregation with
 * any rule of engine/agg.h, and evaluation of every round. */
#ifndef FM_ENGINE_FEDSIM_H
#define FM_ENGINE_FEDSIM_H

#include <stddef.h>
#include <stdint.h>

#include "engine/agg.h"
#include "engine/ml.h"

/* ---- federated evaluation --------------------------------------------- */

/* Combines per-shard results into one: loss and accuracy weighted by each
 * shard's example count, n the total. FM_EINVAL when the shards hold no
 * example or a shard's loss or accuracy is not finite. */
int ml_fed_eval_combine(struct ml_eval *out, const struct ml_eval *shards,
			size_t k);

/* Evaluates m on each of the k shards (per_shard, when not NULL, gets the
 * k results) and combines them. */
int ml_fed_evaluate(struct ml_model *m, const struct ml_dataset *shards,
		    size_t k, enum ml_loss loss, int from_logits,
		    struct ml_eval *per_shard, struct ml_eval *out);

/* ---- splitting a data set over clients -------------------------------- */

enum ml_fed_split_kind {
	ML_FED_SPLIT_IID,       /* shuffled, dealt in equal parts */
	ML_FED_SPLIT_DIRICHLET, /* each class spread by Dir(alpha) shares */
	ML_FED_SPLIT_SHARDS,    /* sorted by label, K shards per client */
};

struct ml_fed_split_spec {
	enum ml_fed_split_kind kind;
	double alpha; /* dirichlet: concentration, > 0 */
	int shards;   /* shards: per client, >= 1 */
};

/* "iid", "dirichlet:ALPHA", "shards:K". */
int ml_fed_split_parse(struct ml_fed_split_spec *out, const char *text);

/* Client c holds samples idx[off[c] .. off[c + 1]). */
struct ml_fed_split {
	size_t clients;
	size_t *off; /* clients + 1 */
	size_t *idx; /* off[clients] sample indices */
};

/* Splits the n labelled samples of d (one class index in [0, classes) per
 * sample) over clients, deterministically under seed. Every client gets
 * at least one sample (Dirichlet draws are repeated until so), or
 * FM_EINVAL says why it cannot. */
int ml_fed_split_make(struct ml_fed_split *out,
		      const struct ml_fed_split_spec *spec,
		      const struct ml_dataset *d, int classes, size_t clients,
		      uint64_t seed);
void ml_fed_split_cleanup(struct ml_fed_split *s);

/* Gamma(shape, 1) and a Dirichlet(alpha, ..., alpha) draw of k shares. */
double ml_fed_gamma(struct ml_rng *r, double shape);
void ml_fed_dirichlet(struct ml_rng *r, double alpha, double *out, size_t k);

/* ---- attacks ------------------------------------------------------------ */

enum ml_fed_attack_kind {
	ML_FED_ATTACK_NONE,
	ML_FED_ATTACK_SIGN_FLIP, /* delta -> -scale * delta */
	ML_FED_ATTACK_SCALE,     /* delta -> scale * delta */
	ML_FED_ATTACK_NOISE,     /* delta -> N(0, scale^2) per coordinate */
};

struct ml_fed_attack {
	enum ml_fed_attack_kind kind;
	double scale;
};

/* "none", "sign_flip[:K]" (K default 1), "scale:K", "noise[:S]" (S
 * default 1). */
int ml_fed_attack_parse(struct ml_fed_attack *out, const char *text);
/* Replaces an honest update (a delta from the global model) by the
 * attack's. */
void ml_fed_attack_apply(const struct ml_fed_attack *a, float *delta,
			 size_t n, struct ml_rng *r);

/* ---- simulation --------------------------------------------------------- */

/* What one round did, passed to the round callback. */
struct ml_fed_round {
	int round;              /* 1-based */
	size_t participants;
	size_t malicious;       /* attackers among the participants */
	size_t dp_clipped;      /* updates longer than the DP clip */
	double train_loss;      /* example-weighted mean of the clients' last
				 * local epoch */
	double test_loss;
	double test_accuracy;
	/* federated evaluation of the new global model on every client's own
	 * data, example-weighted (NAN unless fed_eval) */
	double client_loss;
	double client_accuracy;
	double epsilon;         /* after this round; NAN without DP */
	double seconds;
};

/* A non-zero return stops the simulation (and is returned). */
typedef int (*ml_fed_round_fn)(void *arg, const struct ml_fed_round *r);

struct ml_fed_sim_opts {
	size_t clients;
	int rounds;
	/* Each round every client takes part with this probability (Poisson
	 * sampling, what the DP accountant assumes) when DP is on; without
	 * DP, round(sample_rate * clients) clients (at least 1) are drawn
	 * without replacement. 1 = all clients every round. A round with
	 * fewer participants than the rule needs (Krum: 2f + 3) fails. */
	double sample_rate;
	struct ml_train_opts local;     /* epochs, batch, optimizer, loss;
					 * its callbacks are not called */
	struct ml_fed_split_spec split;
	int classes;                    /* labels in [0, classes) */
	struct ml_agg_opts agg;
	size_t malicious;               /* attackers, chosen once by seed */
	struct ml_fed_attack attack;
	double dp_clip;                 /* > 0 turns central DP on */
	double dp_noise;                /* noise multiplier sigma */
	double dp_delta;                /* for the reported epsilon */
	int fed_eval;                   /* also evaluate on the clients */
	uint64_t seed;
	ml_fed_round_fn on_round;
	void *cb_arg;
};

/* Defaults: 10 clients, 5 rounds, sample rate 1, IID, FedAvg, no
 * attackers, no DP, delta 1e-5, Keras' local training defaults. */
void ml_fed_sim_opts_init(struct ml_fed_sim_opts *o);

/* Runs the simulation on global (updated in place to the final model):
 * train is split over the clients, test evaluates every round. Under DP
 * the robust rules do not apply (the accountant covers DP-FedAvg only):
 * FM_EINVAL. */
int ml_fed_simulate(struct ml_model *global, const struct ml_dataset *train,
		    const struct ml_dataset *test,
		    const struct ml_fed_sim_opts *o);

#endif
