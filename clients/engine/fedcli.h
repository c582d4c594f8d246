/* What the federated commands (aggregate, simulate) share: the rule
 * options, the differential-privacy options, and their checks. */
#ifndef FM_CLIENTS_ENGINE_FEDCLI_H
#define FM_CLIENTS_ENGINE_FEDCLI_H

#include "cli.h"
#include "engine/agg.h"

struct fed_flags {
	const char *rule;          /* --rule */
	struct ml_agg_opts agg;    /* rule options */
	double dp_clip;            /* 0 = no DP */
	double dp_noise;
	double dp_delta;           /* of the reported epsilon */
	const char *seed_text;     /* --seed, parsed by fed_flags_finish */
	uint64_t seed;
	int seed_set;
	int json;
};

/* Option rows for the rule, DP, seed and output flags. */
#define OPTS_FED(f) \
	{ "--rule", OPT_STR, &(f)->rule, "R", "fedavg (default), median, " \
	  "trimmed_mean, krum or centered_clip", 0, 0 }, \
	{ "--uniform", OPT_FLAG, &(f)->agg.uniform, NULL, \
	  "fedavg: equal weights, not example counts", 0, 0 }, \
	{ "--trim", OPT_NUM, &(f)->agg.trim, "F", \
	  "trimmed_mean: fraction cut at each end (0.1)", 0, 0.4999 }, \
	{ "--krum-f", OPT_INT, &(f)->agg.krum_f, "N", \
	  "krum: attackers assumed (0)", 0, ML_AGG_MAX_UPDATES }, \
	{ "--krum-m", OPT_INT, &(f)->agg.krum_m, "M", \
	  "krum: best updates averaged (1 = Krum, > 1 Multi-Krum)", 1, \
	  ML_AGG_MAX_UPDATES }, \
	{ "--clip-tau", OPT_NUM, &(f)->agg.clip_tau, "X", \
	  "centered_clip: clipping radius (1)", 1e-30, 1e30 }, \
	{ "--clip-iters", OPT_INT, &(f)->agg.clip_iters, "N", \
	  "centered_clip: iterations (3)", 1, 1000 }, \
	{ "--dp-clip", OPT_NUM, &(f)->dp_clip, "C", \
	  "DP: clip each update to L2 norm C (turns DP on)", 1e-30, 1e30 }, \
	{ "--dp-noise", OPT_NUM, &(f)->dp_noise, "SIGMA", \
	  "DP: noise multiplier (stddev SIGMA * C on the sum)", 0, 1e6 }, \
	{ "--dp-delta", OPT_NUM, &(f)->dp_delta, "D", \
	  "DP: delta of the reported epsilon (1e-5)", 1e-300, 0.999999 }, \
	{ "--seed", OPT_STR, &(f)->seed_text, "N", "random seed (noise, " \
	  "sampling, splits)", 0, 0 }, \
	{ "--json", OPT_FLAG, &(f)->json, NULL, "JSON output", 0, 0 }

void fed_flags_init(struct fed_flags *f);
/* Parses --rule into f->agg.rule and --seed, and checks the DP flags go
 * together (--dp-noise needs --dp-clip; DP needs the fedavg rule); a
 * usage error is printed and CLI_USAGE returned. */
int fed_flags_finish(struct fed_flags *f, const char *cmd);

#endif
