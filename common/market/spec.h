/* Task specs: what a creator posts (schema/task.schema.json). Parsing
 * checks every field and names the first bad one by its path, e.g.
 * "task.training.batch_size: expected integer >= 1". */
#ifndef FM_MARKET_SPEC_H
#define FM_MARKET_SPEC_H

#include <jansson.h>
#include <stdint.h>

enum task_kind {
	TASK_MODEL_CONTRIBUTOR = 0,
	TASK_MODEL_ENGINEER,
	TASK_DATA_ANNOTATOR,
};

enum validation_strategy { VALIDATE_AUTO = 0, VALIDATE_MANUAL, VALIDATE_CUSTOM };

extern const char *const task_kind_names[];
extern const char *const validation_strategy_names[];
extern const char *const aggregation_rule_names[];
extern const char *const scoring_names[]; /* "flat", "shapley" */

enum { SCORING_FLAT = 0, SCORING_SHAPLEY };

struct task_spec {
	json_t *doc; /* the whole spec, normalized; owned */
	char task_id[67];  /* 0x + 64 hex: the escrow's taskId */
	const char *title; /* borrowed from doc */
	const char *description;
	enum task_kind kind;
	char reward_wei[80]; /* decimal */
	long long max_assignments; /* slots per round (results_per_round) */
	long long assignment_duration_s;
	long long expires_at; /* unix seconds */
	char validator[43]; /* lowercase 0x address; "" = the creator */
	enum validation_strategy strategy;
	long long auto_approval_delay_s;
	char assets[65]; /* bundle reference: sha256 hex of the manifest */
	long long min_results_per_round;
	int rule; /* index into aggregation_rule_names */
	long long max_result_bytes; /* a result bundle's size at most */
	/* the FedAvg weight one result may claim at most */
	long long max_examples_per_result;
	/* rounds: version r is the aggregate of round r */
	long long rounds;
	long long round_duration_s;
	long long max_payouts;  /* rounds x max_assignments: what the escrow funds */
	double target_accuracy; /* stop once a version reaches it; < 0: none */
	/* aggregation.mode "async": fold every async_buffer accepted results,
	 * weighted by (1 + staleness)^-staleness_exponent */
	int async;
	long long async_buffer;
	long long max_staleness;
	double staleness_exponent;
	/* aggregation.dp: central DP-FedAvg, accounted per round */
	int dp;
	double dp_clip, dp_noise, dp_delta;
	double dp_max_epsilon; /* < 0: no budget */
	/* reward.scoring "shapley": each round's pool (results_per_round x
	 * reward) split by contribution (market/reward.h) */
	int scoring; /* index into scoring_names */
	double floor_share;
	int shapley_method; /* -1: exact up to SPEC_EXACT_MAX results, else gtg */
	long long shapley_budget; /* gtg: coalitions evaluated at most */
};

/* max_result_bytes when the spec does not say, and its ceiling. */
#define SPEC_RESULT_BYTES_DEFAULT (256LL << 20)
#define SPEC_RESULT_BYTES_MAX (1LL << 30)
/* max_examples_per_result when the spec does not say, and its ceiling. */
#define SPEC_EXAMPLES_DEFAULT 100000LL
#define SPEC_EXAMPLES_MAX (1LL << 40)
/* rounds at most, and payouts of a task at most (the escrow's uint32). */
#define SPEC_ROUNDS_MAX 10000
#define SPEC_PAYOUTS_MAX 1000000
#define SPEC_DP_DELTA_DEFAULT 1e-5
#define SPEC_MAX_STALENESS_DEFAULT 4
#define SPEC_STALENESS_EXPONENT_DEFAULT 0.5
#define SPEC_FLOOR_SHARE_DEFAULT 0.2
#define SPEC_EXACT_MAX 8 /* results a round scores exactly (2^8 coalitions) */
#define SPEC_SHAPLEY_BUDGET_DEFAULT 128

/* Parses and checks spec (borrowed); now is the current unix time, for
 * lifetime_s. On success out owns a reference to a normalized copy. */
int task_spec_parse(struct task_spec *out, const json_t *spec, long long now);
void task_spec_cleanup(struct task_spec *s);

/* Checks "0x" + 40 hex and writes the lowercase form into out (43 bytes). */
int spec_address(char *out, const char *in, const char *path);
/* Checks "0x" + 64 hex and writes the lowercase form into out (67 bytes). */
int spec_hash32(char *out, const char *in, const char *path);
/* Checks a decimal uint256 without leading zeros. */
int spec_wei(const char *in, const char *path);
/* Multiplies a decimal uint256 by n, refusing overflow (out: 80 bytes). */
int spec_wei_mul(char *out, const char *wei, long long n);
/* The most one result may be paid (out: 80 bytes): the reward, or for
 * scoring "shapley" the round's pool (results_per_round x reward). */
int spec_result_cap(char *out, const struct task_spec *s);

#endif
