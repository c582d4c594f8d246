#include "market/spec.h"

#include "chain/u256.h"
#include "core/err.h"
#include "core/fjson.h"
#include "engine/dp.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <time.h>

const char *const task_kind_names[] = { "model_contributor", "model_engineer",
					"data_annotator", NULL };
const char *const validation_strategy_names[] = { "auto", "manual", "custom",
						  NULL };
const char *const aggregation_rule_names[] = { "fedavg", "median",
					       "trimmed_mean", "krum",
					       "centered_clip", NULL };
const char *const scoring_names[] = { "flat", "shapley", NULL };
static const char *const shapley_methods[] = { "exact", "gtg", "auto",
					       NULL };
static const char *const optimizer_names[] = { "adam", "sgd", NULL };
static const char *const loss_names[] = {
	"sparse_categorical_crossentropy", "categorical_crossentropy",
	"binary_crossentropy", "mean_squared_error", NULL
};
static const char *const data_kinds[] = { "image", "tabular", NULL };
static const char *const data_formats[] = { "idx", "csv", NULL };

#define MAX_DURATION_S 31536000LL /* a year */
#define MAX_ASSIGNMENTS 100000

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return s[n] == '\0';
}

static void lower_copy(char *out, const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = '\0';
}

int spec_address(char *out, const char *in, const char *path)
{
	if (!in || strncmp(in, "0x", 2) != 0 || strlen(in) != 42 ||
	    !is_hex(in + 2, 40))
		return fm_error_set(FM_EINVAL,
				    "%s: expected an address (0x and 40 hex "
				    "digits)",
				    path);
	lower_copy(out, in, 42);
	return FM_OK;
}

int spec_hash32(char *out, const char *in, const char *path)
{
	if (!in || strncmp(in, "0x", 2) != 0 || strlen(in) != 66 ||
	    !is_hex(in + 2, 64))
		return fm_error_set(FM_EINVAL,
				    "%s: expected 0x and 64 hex digits", path);
	lower_copy(out, in, 66);
	return FM_OK;
}

/* 2^256 - 1 */
static const char uint256_max[] = "1157920892373161954235709850086879078532"
				  "69984665640564039457584007913129639935";

static int dec_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

int spec_wei(const char *in, const char *path)
{
	size_t n = in ? strlen(in) : 0;

	if (n == 0 || n > 78 || (n > 1 && in[0] == '0'))
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)in[i]))
			goto bad;
	if (dec_cmp(in, uint256_max) > 0)
		goto bad;
	return FM_OK;
bad:
	return fm_error_set(FM_EINVAL,
			    "%s: expected an amount in wei as a decimal string "
			    "(e.g. \"1000000000000000\")",
			    path);
}

/* wei x n into *p; fails on a bad amount or an overflow. */
static int wei_mul(struct chain_u256 *p, const char *wei, uint64_t n)
{
	struct chain_u256 a;
	int err;

	err = spec_wei(wei, "amount");
	if (err)
		return err;
	err = chain_u256_parse(&a, wei, "amount");
	if (err)
		return err;
	return chain_u256_mul_u64(p, &a, n);
}

int spec_wei_mul(char *out, const char *wei, long long n)
{
	struct chain_u256 p;

	if (n < 0)
		return fm_error_set(FM_EINVAL, "amount out of range");
	if (wei_mul(&p, wei, (uint64_t)n))
		return fm_error_set(FM_EINVAL,
				    "reward_wei x payouts exceeds "
				    "uint256");
	chain_u256_to_dec(out, 80, &p);
	return FM_OK;
}

int spec_result_cap(char *out, const struct task_spec *s)
{
	return spec_wei_mul(out, s->reward_wei,
			    s->scoring == SCORING_SHAPLEY ? s->max_assignments
							  : 1);
}

static int parse_time(const char *s, long long *out, const char *path)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0))
		return fm_error_set(FM_EINVAL,
				    "%s: expected a UTC time such as "
				    "\"2026-12-01T00:00:00Z\"",
				    path);
	*out = (long long)timegm(&tm);
	return FM_OK;
}

static int check_preprocessing(const json_t *pre)
{
	static const char *const keys[] = { "scale", "normalize", "resize",
					    NULL };
	static const char *const norm_names[] = { "none", "scale",
						  "standardize", NULL };
	const char *p = "task.training.data.preprocessing";
	double scale;
	int k, err;

	err = fj_no_unknown(pre, p, keys);
	if (err)
		return err;
	err = fj_num_opt(pre, p, "scale", 1e-9, 1e9, 1, &scale);
	if (err)
		return err;
	return fj_enum_opt(pre, p, "normalize", norm_names, 0, &k);
}

static int check_data(const json_t *data)
{
	static const char *const keys[] = { "kind", "format", "shape",
					    "columns", "inputs", "label_column",
					    "labels", "num_classes",
					    "preprocessing", NULL };
	const char *p = "task.training.data";
	json_t *shape, *pre, *labels;
	long long nc;
	int k, err;

	err = fj_no_unknown(data, p, keys);
	if (err)
		return err;
	err = fj_enum(data, p, "kind", data_kinds, &k);
	if (err)
		return err;
	err = fj_enum(data, p, "format", data_formats, &k);
	if (err)
		return err;
	if (json_object_get(data, "shape")) {
		err = fj_arr(data, p, "shape", 4, &shape);
		if (err)
			return err;
		for (size_t i = 0; i < json_array_size(shape); i++) {
			json_t *d = json_array_get(shape, i);

			if (!json_is_integer(d) || json_integer_value(d) < 1 ||
			    json_integer_value(d) > 65536)
				return fm_error_set(FM_EINVAL,
						    "%s.shape[%zu]: expected "
						    "integer in [1, 65536]",
						    p, i);
		}
	}
	err = fj_int_opt(data, p, "num_classes", 1, 100000, 0, &nc);
	if (err)
		return err;
	if (json_object_get(data, "labels")) {
		err = fj_arr(data, p, "labels", 100000, &labels);
		if (err)
			return err;
		for (size_t i = 0; i < json_array_size(labels); i++)
			if (!json_is_string(json_array_get(labels, i)))
				return fm_error_set(FM_EINVAL,
						    "%s.labels[%zu]: expected "
						    "string",
						    p, i);
	}
	pre = json_object_get(data, "preprocessing");
	if (pre)
		return check_preprocessing(pre);
	return FM_OK;
}

static int check_training(const json_t *spec, enum task_kind kind)
{
	static const char *const keys[] = { "epochs", "batch_size",
					    "learning_rate", "optimizer",
					    "momentum", "loss", "from_logits",
					    "metrics", "data", "seed", NULL };
	const char *p = "task.training";
	json_t *t = json_object_get(spec, "training"), *data;
	long long v;
	double d;
	int k, b, err;

	if (!t) {
		if (kind == TASK_DATA_ANNOTATOR)
			return FM_OK;
		return fm_error_set(FM_EINVAL,
				    "task.training: required for %s tasks",
				    task_kind_names[kind]);
	}
	err = fj_no_unknown(t, p, keys);
	if (err)
		return err;
	err = fj_int(t, p, "epochs", 1, 1000, &v);
	if (err)
		return err;
	err = fj_int(t, p, "batch_size", 1, 65536, &v);
	if (err)
		return err;
	err = fj_num(t, p, "learning_rate", 1e-9, 10, &d);
	if (err)
		return err;
	err = fj_enum(t, p, "optimizer", optimizer_names, &k);
	if (err)
		return err;
	err = fj_num_opt(t, p, "momentum", 0, 1, 0, &d);
	if (err)
		return err;
	err = fj_enum(t, p, "loss", loss_names, &k);
	if (err)
		return err;
	err = fj_bool_opt(t, p, "from_logits", 0, &b);
	if (err)
		return err;
	err = fj_int_opt(t, p, "seed", 0, LLONG_MAX, 0, &v);
	if (err)
		return err;
	err = fj_obj(t, p, "data", &data);
	if (err)
		return err;
	return check_data(data);
}

static int check_validation(struct task_spec *s, const json_t *spec)
{
	static const char *const keys[] = {
		"strategy", "auto_approval_delay_s", "min_accuracy",
		"min_improvement", "max_loss", "max_distance_from_median",
		"gold_min_agreement", NULL
	};
	const char *p = "task.validation";
	json_t *v;
	double d;
	int k, err;

	err = fj_obj(spec, "task", "validation", &v);
	if (err)
		return err;
	err = fj_no_unknown(v, p, keys);
	if (err)
		return err;
	err = fj_enum(v, p, "strategy", validation_strategy_names, &k);
	if (err)
		return err;
	s->strategy = (enum validation_strategy)k;
	err = fj_int_opt(v, p, "auto_approval_delay_s", 0, MAX_DURATION_S, 0,
			 &s->auto_approval_delay_s);
	if (err)
		return err;
	err = fj_num_opt(v, p, "min_accuracy", 0, 1, 0, &d);
	if (err)
		return err;
	err = fj_num_opt(v, p, "min_improvement", -1, 1, 0, &d);
	if (err)
		return err;
	err = fj_num_opt(v, p, "max_loss", 0, 1e9, 1e9, &d);
	if (err)
		return err;
	err = fj_num_opt(v, p, "max_distance_from_median", 0, 1e9, 1e9, &d);
	if (err)
		return err;
	return fj_num_opt(v, p, "gold_min_agreement", 0, 1, 0, &d);
}

/* A budget one round already exceeds would end the task before it
 * began: the epsilon of one round (every contributor in it, noise as
 * the noise multiplier) by the accountant the marketplace records. */
static int first_round_fits(const struct task_spec *s)
{
	struct ml_dp_acct acct;
	double eps;
	int err;

	ml_dp_acct_init(&acct);
	err = ml_dp_acct_add(&acct, 1.0, s->dp_noise, 1);
	if (!err)
		err = ml_dp_acct_epsilon(&acct, s->dp_delta, &eps, NULL);
	if (err)
		return fm_error_prefix("task.aggregation.dp");
	if (eps > s->dp_max_epsilon)
		return fm_error_set(FM_EINVAL,
				    "task.aggregation.dp.max_epsilon: %g is "
				    "spent by one round already (epsilon %.3f "
				    "at noise %g, delta %g): raise noise or "
				    "max_epsilon",
				    s->dp_max_epsilon, eps, s->dp_noise,
				    s->dp_delta);
	return FM_OK;
}

static int check_dp(struct task_spec *s, const json_t *dp)
{
	static const char *const keys[] = { "clip", "noise", "delta",
					    "max_epsilon", NULL };
	const char *p = "task.aggregation.dp";
	int err;

	err = fj_no_unknown(dp, p, keys);
	if (err)
		return err;
	err = fj_num(dp, p, "clip", 1e-9, 1e9, &s->dp_clip);
	if (err)
		return err;
	err = fj_num(dp, p, "noise", 0, 1e3, &s->dp_noise);
	if (err)
		return err;
	err = fj_num_opt(dp, p, "delta", 1e-12, 0.1, SPEC_DP_DELTA_DEFAULT,
			 &s->dp_delta);
	if (err)
		return err;
	err = fj_num_opt(dp, p, "max_epsilon", 1e-6, 1e6, -1,
			 &s->dp_max_epsilon);
	if (err)
		return err;
	if (s->dp_max_epsilon > 0 && s->dp_noise <= 0)
		return fm_error_set(FM_EINVAL,
				    "%s.max_epsilon: needs noise > 0 (without "
				    "noise every round spends an unbounded "
				    "epsilon)",
				    p);
	if (s->dp_max_epsilon > 0) {
		err = first_round_fits(s);
		if (err)
			return err;
	}
	s->dp = 1;
	return FM_OK;
}

static const char *const agg_modes[] = { "sync", "async", NULL };

/* aggregation.mode and aggregation.async. */
static int check_async(struct task_spec *s, const json_t *a)
{
	static const char *const keys[] = { "buffer", "max_staleness",
					    "staleness_exponent", NULL };
	const char *p = "task.aggregation.async";
	json_t *as = NULL;
	int err;

	err = fj_enum_opt(a, "task.aggregation", "mode", agg_modes, 0,
			  &s->async);
	if (err)
		return err;
	err = fj_obj_opt(a, "task.aggregation", "async", &as);
	if (err)
		return err;
	if (as && !s->async)
		return fm_error_set(FM_EINVAL,
				    "task.aggregation.async: only with "
				    "mode \"async\"");
	s->async_buffer = s->min_results_per_round;
	s->max_staleness = SPEC_MAX_STALENESS_DEFAULT;
	s->staleness_exponent = SPEC_STALENESS_EXPONENT_DEFAULT;
	if (!as)
		return FM_OK;
	err = fj_no_unknown(as, p, keys);
	if (err)
		return err;
	err = fj_int_opt(as, p, "buffer", 1, s->max_assignments,
			 s->min_results_per_round, &s->async_buffer);
	if (err)
		return err;
	err = fj_int_opt(as, p, "max_staleness", 0, SPEC_ROUNDS_MAX,
			 SPEC_MAX_STALENESS_DEFAULT, &s->max_staleness);
	if (err)
		return err;
	return fj_num_opt(as, p, "staleness_exponent", 0, 8,
			  SPEC_STALENESS_EXPONENT_DEFAULT,
			  &s->staleness_exponent);
}

/* min_results_per_round: at the top level or (older specs) under
 * aggregation; both must agree. */
static int min_results(struct task_spec *s, const json_t *spec,
		       const json_t *a)
{
	long long top = 0, agg = 0;
	int err;

	err = fj_int_opt(spec, "task", "min_results_per_round", 1,
			 MAX_ASSIGNMENTS, 0, &top);
	if (err)
		return err;
	if (a) {
		err = fj_int_opt(a, "task.aggregation",
				 "min_results_per_round", 1, MAX_ASSIGNMENTS,
				 0, &agg);
		if (err)
			return err;
	}
	if (top && agg && top != agg)
		return fm_error_set(FM_EINVAL,
				    "task.min_results_per_round: %lld differs "
				    "from task.aggregation.min_results_per_"
				    "round %lld",
				    top, agg);
	s->min_results_per_round = top ? top : agg ? agg : 1;
	if (s->min_results_per_round > s->max_assignments)
		return fm_error_set(FM_EINVAL,
				    "task.min_results_per_round: %lld exceeds "
				    "results_per_round %lld",
				    s->min_results_per_round,
				    s->max_assignments);
	return FM_OK;
}

static int check_aggregation(struct task_spec *s, const json_t *spec)
{
	static const char *const keys[] = { "rule", "min_results_per_round",
					    "trim_fraction", "krum_f",
					    "clip_radius", "dp", "mode",
					    "async", NULL };
	const char *p = "task.aggregation";
	json_t *a = json_object_get(spec, "aggregation"), *dp;
	long long v;
	double d;
	int err;

	s->rule = 0;
	s->dp_max_epsilon = -1;
	if (a) {
		err = fj_no_unknown(a, p, keys);
		if (err)
			return err;
	}
	err = min_results(s, spec, a);
	if (err)
		return err;
	if (!a) {
		s->async_buffer = s->min_results_per_round;
		s->max_staleness = SPEC_MAX_STALENESS_DEFAULT;
		s->staleness_exponent = SPEC_STALENESS_EXPONENT_DEFAULT;
		return FM_OK;
	}
	err = fj_enum_opt(a, p, "rule", aggregation_rule_names, 0, &s->rule);
	if (err)
		return err;
	err = fj_num_opt(a, p, "trim_fraction", 0, 0.49, 0.1, &d);
	if (err)
		return err;
	err = fj_int_opt(a, p, "krum_f", 0, MAX_ASSIGNMENTS, 0, &v);
	if (err)
		return err;
	err = fj_num_opt(a, p, "clip_radius", 0, 1e9, 1, &d);
	if (err)
		return err;
	err = check_async(s, a);
	if (err)
		return err;
	dp = json_object_get(a, "dp");
	if (dp && !json_is_null(dp))
		return check_dp(s, dp);
	return FM_OK;
}

/* task_id, title, description and kind. */
static int parse_identity(struct task_spec *s, const json_t *spec)
{
	const char *str;
	int k, err;

	err = fj_str(spec, "task", "task_id", 66, &str);
	if (err)
		return err;
	err = spec_hash32(s->task_id, str, "task.task_id");
	if (err)
		return err;
	err = fj_str(spec, "task", "title", 200, &s->title);
	if (err)
		return err;
	if (!s->title[0])
		return fm_error_set(FM_EINVAL, "task.title: must not be empty");
	err = fj_str_opt(spec, "task", "description", 20000, "",
			 &s->description);
	if (err)
		return err;
	err = fj_enum(spec, "task", "kind", task_kind_names, &k);
	if (err)
		return err;
	s->kind = (enum task_kind)k;
	return FM_OK;
}

/* reward: {per_result_wei, scoring, floor_share, method, budget}; the
 * per-result amount may also be the older top-level reward_wei. */
static int parse_scoring(struct task_spec *s, const json_t *spec,
			 const char **wei)
{
	static const char *const keys[] = { "per_result_wei", "scoring",
					    "floor_share", "method", "budget",
					    NULL };
	const char *p = "task.reward";
	const char *top = NULL, *per = NULL;
	json_t *r = NULL;
	int method = 2, err;

	s->floor_share = SPEC_FLOOR_SHARE_DEFAULT;
	s->shapley_method = -1;
	s->shapley_budget = SPEC_SHAPLEY_BUDGET_DEFAULT;
	err = fj_obj_opt(spec, "task", "reward", &r);
	if (err)
		return err;
	/* without a reward object, reward_wei is required */
	err = r ? fj_str_opt(spec, "task", "reward_wei", 78, NULL, &top)
		: fj_str(spec, "task", "reward_wei", 78, &top);
	if (err)
		return err;
	if (!r) {
		*wei = top;
		return FM_OK;
	}
	err = fj_no_unknown(r, p, keys);
	if (err)
		return err;
	err = fj_str_opt(r, p, "per_result_wei", 78, NULL, &per);
	if (err)
		return err;
	if (!per && !top)
		return fm_error_set(FM_EINVAL, "task.reward.per_result_wei: "
				    "required");
	if (per && top && strcmp(per, top))
		return fm_error_set(FM_EINVAL, "task.reward.per_result_wei: "
				    "%s differs from task.reward_wei %s",
				    per, top);
	*wei = per ? per : top;
	err = fj_enum_opt(r, p, "scoring", scoring_names, SCORING_FLAT,
			  &s->scoring);
	if (err)
		return err;
	err = fj_num_opt(r, p, "floor_share", 0, 1, SPEC_FLOOR_SHARE_DEFAULT,
			 &s->floor_share);
	if (err)
		return err;
	err = fj_enum_opt(r, p, "method", shapley_methods, 2, &method);
	if (err)
		return err;
	s->shapley_method = method == 2 ? -1 : method;
	err = fj_int_opt(r, p, "budget", 2, 1 << 20,
			 SPEC_SHAPLEY_BUDGET_DEFAULT, &s->shapley_budget);
	if (err)
		return err;
	if (s->scoring == SCORING_FLAT &&
	    (json_object_get(r, "floor_share") ||
	     json_object_get(r, "method") || json_object_get(r, "budget")))
		return fm_error_set(FM_EINVAL, "task.reward: floor_share, "
				    "method and budget apply to scoring "
				    "\"shapley\" only");
	return FM_OK;
}

/* reward, results_per_round (or its older name max_assignments) and
 * assignment_duration_s. */
static int parse_reward(struct task_spec *s, const json_t *spec)
{
	long long per_round = 0, slots = 0;
	const char *str = NULL;
	int err;

	err = parse_scoring(s, spec, &str);
	if (err)
		return err;
	err = spec_wei(str, json_object_get(spec, "reward_wei")
				    ? "task.reward_wei"
				    : "task.reward.per_result_wei");
	if (err)
		return err;
	if (strcmp(str, "0") == 0)
		return fm_error_set(FM_EINVAL, "%s: must be greater than 0",
				    json_object_get(spec, "reward_wei")
					    ? "task.reward_wei"
					    : "task.reward.per_result_wei");
	snprintf(s->reward_wei, sizeof(s->reward_wei), "%s", str);
	err = fj_int_opt(spec, "task", "results_per_round", 1,
			 MAX_ASSIGNMENTS, 0, &per_round);
	if (err)
		return err;
	if (!per_round || json_object_get(spec, "max_assignments")) {
		err = fj_int(spec, "task", "max_assignments", 1,
			     MAX_ASSIGNMENTS, &slots);
		if (err)
			return err;
	}
	if (per_round && slots && per_round != slots)
		return fm_error_set(FM_EINVAL,
				    "task.results_per_round: %lld differs from "
				    "task.max_assignments %lld (give one)",
				    per_round, slots);
	s->max_assignments = per_round ? per_round : slots;
	return fj_int(spec, "task", "assignment_duration_s", 60,
		      MAX_DURATION_S, &s->assignment_duration_s);
}

/* rounds, round_duration_s, target_accuracy; the payouts the escrow
 * funds. */
static int parse_rounds(struct task_spec *s, const json_t *spec)
{
	int err;

	err = fj_int_opt(spec, "task", "rounds", 1, SPEC_ROUNDS_MAX, 1,
			 &s->rounds);
	if (err)
		return err;
	err = fj_int_opt(spec, "task", "round_duration_s", 60, MAX_DURATION_S,
			 s->assignment_duration_s, &s->round_duration_s);
	if (err)
		return err;
	err = fj_num_opt(spec, "task", "target_accuracy", 1e-9, 1, -1,
			 &s->target_accuracy);
	if (err)
		return err;
	s->max_payouts = s->rounds * s->max_assignments;
	if (s->max_payouts > SPEC_PAYOUTS_MAX)
		return fm_error_set(FM_EINVAL,
				    "task.rounds: %lld rounds x %lld results "
				    "per round exceeds %d payouts",
				    s->rounds, s->max_assignments,
				    SPEC_PAYOUTS_MAX);
	return FM_OK;
}

/* expires_at, given or as now + lifetime_s; at least a minute ahead. */
static int parse_expiry(struct task_spec *s, const json_t *spec,
			long long now)
{
	const char *str;
	long long lifetime;
	int err;

	if (json_object_get(spec, "expires_at")) {
		if (json_object_get(spec, "lifetime_s"))
			return fm_error_set(FM_EINVAL,
					    "task: give lifetime_s or "
					    "expires_at, not both");
		err = fj_str(spec, "task", "expires_at", 40, &str);
		if (err)
			return err;
		err = parse_time(str, &s->expires_at, "task.expires_at");
		if (err)
			return err;
	} else {
		err = fj_int(spec, "task", "lifetime_s", 60, MAX_DURATION_S,
			     &lifetime);
		if (err)
			return err;
		s->expires_at = now + lifetime;
	}
	if (s->expires_at <= now + 60)
		return fm_error_set(FM_EINVAL,
				    "task.expires_at: must be at least a "
				    "minute in the future");
	return FM_OK;
}

/* validator, validation, training and aggregation. */
static int parse_rules(struct task_spec *s, const json_t *spec)
{
	const char *str;
	int err;

	err = fj_str_opt(spec, "task", "validator", 42, NULL, &str);
	if (err)
		return err;
	if (str) {
		err = spec_address(s->validator, str, "task.validator");
		if (err)
			return err;
	}
	err = check_validation(s, spec);
	if (err)
		return err;
	err = check_training(spec, s->kind);
	if (err)
		return err;
	return check_aggregation(s, spec);
}

/* Every round setting spelled out in the stored spec, so services and
 * clients read one form whatever the creator left to its default. */
static int normalize_rounds(struct task_spec *s)
{
	json_t *d = s->doc, *a = json_object_get(d, "aggregation");
	int err = 0;

	err |= json_object_set_new(d, "max_assignments",
				   json_integer(s->max_assignments));
	err |= json_object_set_new(d, "results_per_round",
				   json_integer(s->max_assignments));
	err |= json_object_set_new(d, "rounds", json_integer(s->rounds));
	err |= json_object_set_new(d, "reward_wei", json_string(s->reward_wei));
	err |= json_object_set_new(
		d, "reward",
		s->scoring == SCORING_SHAPLEY
			? json_pack("{s:s, s:s, s:f, s:s, s:I}",
				    "per_result_wei", s->reward_wei, "scoring",
				    "shapley", "floor_share", s->floor_share,
				    "method",
				    shapley_methods[s->shapley_method < 0
							    ? 2
							    : s->shapley_method],
				    "budget", (json_int_t)s->shapley_budget)
			: json_pack("{s:s, s:s}", "per_result_wei",
				    s->reward_wei, "scoring", "flat"));
	err |= json_object_set_new(d, "round_duration_s",
				   json_integer(s->round_duration_s));
	err |= json_object_set_new(d, "min_results_per_round",
				   json_integer(s->min_results_per_round));
	if (!a) {
		a = json_object();
		err |= json_object_set_new(d, "aggregation", a);
	}
	err |= json_object_set_new(a, "min_results_per_round",
				   json_integer(s->min_results_per_round));
	err |= json_object_set_new(a, "mode", json_string(agg_modes[s->async]));
	if (s->async)
		err |= json_object_set_new(
			a, "async",
			json_pack("{s:I, s:I, s:f}", "buffer",
				  (json_int_t)s->async_buffer, "max_staleness",
				  (json_int_t)s->max_staleness,
				  "staleness_exponent",
				  s->staleness_exponent));
	if (s->dp)
		err |= json_object_set_new(json_object_get(a, "dp"), "delta",
					   json_real(s->dp_delta));
	return err ? fm_error_set(FM_ENOMEM, "out of memory") : FM_OK;
}

int task_spec_parse(struct task_spec *out, const json_t *spec, long long now)
{
	static const char *const keys[] = {
		"task_id", "title", "description", "kind", "reward_wei",
		"max_assignments", "assignment_duration_s", "lifetime_s",
		"expires_at", "validator", "validation", "training",
		"aggregation", "assets", "max_result_bytes",
		"max_examples_per_result", "rounds",
		"results_per_round", "round_duration_s",
		"min_results_per_round", "target_accuracy", "reward", NULL
	};
	struct task_spec s;
	const char *str;
	int err;

	memset(&s, 0, sizeof(s));
	if (!json_is_object(spec))
		return fm_error_set(FM_EINVAL, "task: expected a JSON object");
	err = fj_no_unknown(spec, "task", keys);
	if (err)
		return err;
	err = parse_identity(&s, spec);
	if (err)
		return err;
	err = parse_reward(&s, spec);
	if (err)
		return err;
	err = parse_rounds(&s, spec);
	if (err)
		return err;
	err = parse_expiry(&s, spec, now);
	if (err)
		return err;
	err = parse_rules(&s, spec);
	if (err)
		return err;
	err = fj_int_opt(spec, "task", "max_result_bytes", 1,
			 SPEC_RESULT_BYTES_MAX, SPEC_RESULT_BYTES_DEFAULT,
			 &s.max_result_bytes);
	if (err)
		return err;
	err = fj_int_opt(spec, "task", "max_examples_per_result", 1,
			 SPEC_EXAMPLES_MAX, SPEC_EXAMPLES_DEFAULT,
			 &s.max_examples_per_result);
	if (err)
		return err;
	err = fj_str(spec, "task", "assets", 64, &str);
	if (err)
		return err;
	if (strlen(str) != 64 || !is_hex(str, 64))
		return fm_error_set(FM_EINVAL,
				    "task.assets: expected a bundle reference "
				    "(64 hex digits)");
	lower_copy(s.assets, str, 64);

	s.doc = json_deep_copy(spec);
	if (!s.doc)
		return fm_error_set(FM_ENOMEM, "out of memory");
	/* normalized forms, so the stored spec agrees with the columns */
	json_object_set_new(s.doc, "task_id", json_string(s.task_id));
	json_object_set_new(s.doc, "assets", json_string(s.assets));
	err = normalize_rounds(&s);
	if (err) {
		json_decref(s.doc);
		return err;
	}
	/* borrowed strings now point into the copy */
	s.title = json_string_value(json_object_get(s.doc, "title"));
	s.description = json_string_value(json_object_get(s.doc,
							   "description"));
	if (!s.description)
		s.description = "";
	*out = s;
	return FM_OK;
}

void task_spec_cleanup(struct task_spec *s)
{
	json_decref(s->doc);
	s->doc = NULL;
}
