/* Model versions: publishing version N+1 from accepted results, and the
 * list of a task's versions. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"
#include "core/fjson.h"
#include "engine/dp.h"
#include "market/score_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct publish_arg {
	json_t *result;
	const char *task_id, *caller, *bundle_ref, *rule, *metrics;
	const json_t *result_ids;
	double accuracy; /* metrics.accuracy; < 0: none */
	const json_t *report; /* scoring report, or NULL */
	const char *report_ref;
};

/* The task as a publish reads it, under its lock. */
struct pub_task {
	char state[16], end_reason[24];
	long long version; /* the one being published */
	long long rounds;
	int async;
	double target; /* < 0: none */
	int dp;
	double noise, delta, max_eps; /* max_eps < 0: none */
	char version_s[24];
};

static void pub_task_read(struct pub_task *t, const PGresult *r)
{
	snprintf(t->state, sizeof(t->state), "%s", db_str(r, 0, "state", ""));
	snprintf(t->end_reason, sizeof(t->end_reason), "%s",
		 db_str(r, 0, "end_reason", ""));
	t->version = db_int(r, 0, "current_version", 0) + 1;
	t->rounds = db_int(r, 0, "rounds", 1);
	t->async = db_bool(r, 0, "async");
	t->target = strtod(db_str(r, 0, "target", "-1"), NULL);
	t->dp = db_bool(r, 0, "dp");
	t->noise = strtod(db_str(r, 0, "noise", "0"), NULL);
	t->delta = strtod(db_str(r, 0, "delta", "1e-5"), NULL);
	t->max_eps = strtod(db_str(r, 0, "max_eps", "-1"), NULL);
	snprintf(t->version_s, sizeof(t->version_s), "%lld", t->version);
}

/* Locks the task and checks that caller may publish. */
static int lock_task(struct db_conn *c, struct pub_task *t,
		     const struct publish_arg *a)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT creator, validator, state, end_reason,"
		       " current_version, rounds, agg_mode = 'async' AS async,"
		       " coalesce(target_accuracy, -1) AS target,"
		       " jsonb_typeof(spec #> '{aggregation,dp}') = 'object'"
		       "  AS dp,"
		       " coalesce(spec #>> '{aggregation,dp,noise}', '0')"
		       "  AS noise,"
		       " coalesce(spec #>> '{aggregation,dp,delta}', '1e-5')"
		       "  AS delta,"
		       " coalesce(spec #>> '{aggregation,dp,max_epsilon}', '-1')"
		       "  AS max_eps"
		       " FROM tasks WHERE id = $1 FOR UPDATE",
		       a->task_id);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ENOTFOUND, "task not found");
	else if (strcmp(db_str(r, 0, "validator", ""), a->caller) &&
		 strcmp(db_str(r, 0, "creator", ""), a->caller))
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the task's validator or creator can "
				   "publish a model version");
	else
		pub_task_read(t, r);
	PQclear(r);
	return err;
}

/* Why results[i] (id) cannot go into the version being published. */
static int result_refusal(struct db_conn *c, const struct publish_arg *a,
			  const struct pub_task *t, size_t i, const char *id)
{
	PGresult *r = NULL;
	long long in_version, round;
	int err;

	err = db_execp(c, &r,
		       "SELECT r.state, r.round, (SELECT v.version FROM"
		       " model_version_results v WHERE v.result_id = r.id)"
		       " AS in_version FROM results r WHERE r.id = $2::uuid"
		       " AND r.task_id = $1",
		       a->task_id, id);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		err = fm_error_set(FM_ECONFLICT,
				   "results[%zu]: %s is not a result of this "
				   "task",
				   i, id);
		goto done;
	}
	in_version = db_int(r, 0, "in_version", -1);
	round = db_int(r, 0, "round", 1);
	if (in_version == t->version)
		err = fm_error_set(FM_ECONFLICT,
				   "results[%zu]: %s is listed twice", i, id);
	else if (in_version >= 0)
		err = fm_error_set(FM_ECONFLICT,
				   "version %lld was already published "
				   "(results[%zu]: %s is part of it)",
				   in_version, i, id);
	else if (strcmp(db_str(r, 0, "state", ""), "accepted"))
		err = fm_error_set(FM_ECONFLICT,
				   "results[%zu]: %s is %s, not accepted", i,
				   id, db_str(r, 0, "state", ""));
	else if (!t->async && round < t->version)
		err = fm_error_set(FM_ECONFLICT,
				   "version %lld was already published "
				   "(results[%zu]: %s is a result of round "
				   "%lld)",
				   round, i, id, round);
	else
		err = fm_error_set(FM_ECONFLICT,
				   "results[%zu]: %s is a result of round "
				   "%lld, not of round %lld",
				   i, id, round, t->version);
done:
	PQclear(r);
	return err;
}

/* Ties result i to the version: sync, an accepted result of the round;
 * async, an accepted result in no version yet. */
static int add_result(struct db_conn *c, const struct publish_arg *a,
		      const struct pub_task *t, size_t i, const json_t *id)
{
	int err;

	if (!json_is_string(id) ||
	    mkt_check_uuid(json_string_value(id), "results[]"))
		return fm_error_set(FM_EINVAL,
				    "results[%zu]: expected a result id", i);
	err = db_execp(c, NULL,
		       "INSERT INTO model_version_results (task_id,"
		       " version, result_id) SELECT $1::text, $2::int,"
		       " r.id FROM results r WHERE r.id = $3::uuid AND"
		       " r.task_id = $1::text AND r.state = 'accepted' AND"
		       " ($4::bool OR r.round = $2::int) AND NOT EXISTS"
		       " (SELECT 1 FROM model_version_results v WHERE"
		       " v.result_id = r.id)",
		       a->task_id, t->version_s, json_string_value(id),
		       t->async ? "true" : "false");
	if (err)
		return err;
	if (db_last_rows(c) != 1)
		return result_refusal(c, a, t, i, json_string_value(id));
	return FM_OK;
}

/* A task that takes no version now: one already published by another
 * (named from the results, when they say so), or ended. */
static int task_refusal(struct db_conn *c, const struct publish_arg *a,
			const struct pub_task *t)
{
	json_t *id;
	size_t i;
	int err;

	json_array_foreach(a->result_ids, i, id) {
		if (!json_is_string(id) ||
		    mkt_check_uuid(json_string_value(id), "results[]"))
			break;
		err = result_refusal(c, a, t, i, json_string_value(id));
		if (err != FM_ECONFLICT ||
		    strstr(fm_error_msg(), "already published"))
			return err;
	}
	if (t->version > t->rounds)
		return fm_error_set(FM_ECONFLICT,
				    "version %lld was already published: it "
				    "was the task's last",
				    t->rounds);
	if (t->end_reason[0])
		return fm_error_set(FM_ECONFLICT,
				    "task is %s (%s): it takes no more "
				    "versions",
				    t->state, t->end_reason);
	return fm_error_set(FM_ECONFLICT, "task is %s: it takes no versions",
			    t->state);
}

/* Whether the task takes version t->version now: open, or ended by the
 * accept that filled its last round; its round is open or closing. */
static int round_check(struct db_conn *c, const struct publish_arg *a,
		       const struct pub_task *t)
{
	PGresult *r = NULL;
	int err;

	if (t->version > t->rounds ||
	    !(!strcmp(t->state, "open") ||
	      (!strcmp(t->state, "closed") &&
	       !strcmp(t->end_reason, "rounds_done") &&
	       t->version == t->rounds)))
		return task_refusal(c, a, t);
	err = db_execp(c, &r,
		       "SELECT state FROM task_rounds WHERE task_id = $1 AND"
		       " round = $2::int FOR UPDATE",
		       a->task_id, t->version_s);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ECONFLICT, "round %lld has not opened",
				   t->version);
	else if (strcmp(db_str(r, 0, "state", ""), "open") &&
		 strcmp(db_str(r, 0, "state", ""), "closing"))
		err = fm_error_set(FM_ECONFLICT, "round %lld is %s",
				   t->version, db_str(r, 0, "state", ""));
	PQclear(r);
	return err;
}

/* epsilon after steps rounds of the Gaussian mechanism with every
 * contributor taking part (q = 1): the engine's RDP accountant. */
static int round_epsilon(double *eps, const struct pub_task *t,
			 long long steps)
{
	struct ml_dp_acct acct;
	int err;

	ml_dp_acct_init(&acct);
	err = ml_dp_acct_add(&acct, 1.0, t->noise, (long)steps);
	if (err)
		return err;
	return ml_dp_acct_epsilon(&acct, t->delta, eps, NULL);
}

/* sync: the round's results still waiting are rejected and its active
 * assignments expire, freeing their slots. */
static int close_round(struct db_conn *c, const struct publish_arg *a,
		       const struct pub_task *t)
{
	char why[80];

	snprintf(why, sizeof(why),
		 "round %lld closed before this result was decided",
		 t->version);
	return db_execp(
		c, NULL,
		"WITH w AS (UPDATE results SET state = 'rejected',"
		" decided_at = now() WHERE task_id = $1 AND round = $2::int"
		" AND state = 'submitted' RETURNING id, assignment_id),"
		" d AS (INSERT INTO decisions (result_id, validator, decision,"
		" reason, automatic) SELECT w.id, t.validator, 'reject', $3,"
		" true FROM w CROSS JOIN tasks t WHERE t.id = $1),"
		" r AS (UPDATE assignments SET state = 'rejected',"
		" updated_at = now() WHERE id IN (SELECT assignment_id FROM w)"
		" AND state = 'submitted')"
		" UPDATE assignments SET state = 'expired', updated_at = now()"
		" WHERE task_id = $1 AND round = $2::int AND state = 'active'",
		a->task_id, t->version_s, why);
}

/* Why the task ends with this version, or NULL: its last round, its
 * target accuracy reached, or no room in its privacy budget for one
 * more round (eps_next). */
static const char *end_reason(const struct publish_arg *a,
			      const struct pub_task *t, double eps_next)
{
	if (t->version >= t->rounds)
		return "rounds_done";
	if (t->target > 0 && a->accuracy >= t->target)
		return "target_reached";
	if (t->dp && t->max_eps > 0 && eps_next > t->max_eps)
		return "privacy_budget";
	return NULL;
}

/* The accepted results the report must score: a sync round's every
 * accepted result (all of which the version must name), else the
 * version's. */
static int scored_ids(struct db_conn *c, const struct publish_arg *a,
		      const struct pub_task *t, json_t **ids)
{
	PGresult *r = NULL;
	size_t named = json_array_size(a->result_ids);
	int err;

	if (t->async) {
		*ids = json_incref((json_t *)a->result_ids);
		return FM_OK;
	}
	err = db_execp(c, &r,
		       "SELECT coalesce(json_agg(id ORDER BY id), '[]')"
		       " FROM results WHERE task_id = $1 AND round = $2::int"
		       " AND state = 'accepted'",
		       a->task_id, t->version_s);
	if (err)
		return err;
	err = fj_parse(ids, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0),
		       "database row");
	PQclear(r);
	if (err)
		return err;
	if (json_array_size(*ids) != named) {
		err = fm_error_set(FM_ECONFLICT,
				   "results: round %lld accepted %zu results "
				   "and a task paying by contribution pays "
				   "them all: the version names %zu",
				   t->version, json_array_size(*ids), named);
		json_decref(*ids);
		*ids = NULL;
	}
	return err;
}

/* One payout per result the report pays something, with its score. */
static int insert_scored(struct db_conn *c, const struct publish_arg *a,
			 const struct pub_task *t, const json_t *amounts)
{
	char hash[67], phi[40];
	size_t i;
	json_t *x;
	int err;

	snprintf(hash, sizeof(hash), "0x%s", a->report_ref);
	json_array_foreach(json_object_get(a->report, "results"), i, x) {
		const char *rid = json_string_value(json_object_get(
			x, "result_id"));
		const char *amount = json_string_value(json_object_get(amounts,
								       rid));

		if (!amount || !strcmp(amount, "0"))
			continue;
		snprintf(phi, sizeof(phi), "%.17g",
			 json_number_value(json_object_get(x, "phi")));
		err = db_execp(c, NULL,
			       "INSERT INTO payouts (result_id, task_id,"
			       " contributor, amount_wei, round, report_hash,"
			       " score) SELECT id, task_id, contributor,"
			       " $3::numeric, $4::int, $5, $6::float8 FROM"
			       " results WHERE id = $1::uuid AND task_id = $2",
			       rid, a->task_id, amount, t->version_s, hash, phi);
		if (err)
			return err;
	}
	return FM_OK;
}

/* A task paying by contribution: the round's scoring report, checked
 * against the round and its own numbers, fixes the amounts. */
static int scored_payouts(struct db_conn *c, const struct publish_arg *a,
			  const struct pub_task *t)
{
	PGresult *r = NULL;
	json_t *ids = NULL, *amounts = NULL;
	struct score_expect e = { a->task_id, t->version, NULL, 0, NULL };
	char pool[80];
	int scored, err;

	err = db_execp(c, &r,
		       "SELECT spec #>> '{reward,scoring}' = 'shapley' AS"
		       " scored, coalesce((spec #>> '{reward,floor_share}')"
		       "::float8, 0) AS floor_share, (reward_wei *"
		       " max_assignments)::text AS pool FROM tasks"
		       " WHERE id = $1",
		       a->task_id);
	if (err)
		return err;
	scored = db_bool(r, 0, "scored");
	e.floor_share = strtod(db_str(r, 0, "floor_share", "0"), NULL);
	snprintf(pool, sizeof(pool), "%s", db_str(r, 0, "pool", "0"));
	PQclear(r);
	if (!scored && a->report)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "scoring: this task pays a flat reward per "
				    "accepted result: publish without a "
				    "scoring report");
	if (!scored)
		return FM_OK;
	if (!a->report)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "scoring: this task pays by contribution: "
				    "publish the version with the round's "
				    "scoring report");
	err = scored_ids(c, a, t, &ids);
	if (err)
		return err;
	e.pool_wei = pool;
	e.result_ids = ids;
	err = score_report_verify(a->report, &e, &amounts);
	if (!err)
		err = insert_scored(c, a, t, amounts);
	json_decref(ids);
	json_decref(amounts);
	return err;
}

static int publish_fn(struct db_conn *c, void *arg)
{
	struct publish_arg *a = arg;
	struct pub_task t;
	char eps_s[40] = "";
	double eps = 0, eps_next = 0;
	const char *reason;
	size_t i;
	json_t *id;
	int err;

	err = lock_task(c, &t, a);
	if (err)
		return err;
	err = round_check(c, a, &t);
	if (err)
		return err;
	err = db_execp(c, NULL,
		       "INSERT INTO model_versions (task_id, version,"
		       " bundle_ref, rule, metrics, created_by)"
		       " VALUES ($1, $2::int, $3, $4, $5::jsonb, $6)",
		       a->task_id, t.version_s, a->bundle_ref, a->rule,
		       a->metrics, a->caller);
	if (err == FM_ECONFLICT)
		return fm_error_set(FM_ECONFLICT,
				    "version %lld was already published",
				    t.version);
	if (err)
		return err;
	json_array_foreach(a->result_ids, i, id) {
		err = add_result(c, a, &t, i, id);
		if (err)
			return err;
	}
	/* before the end checks, which refund what is not paid */
	err = scored_payouts(c, a, &t);
	if (err)
		return err;
	/* noise 0 bounds nothing: no epsilon is recorded */
	if (t.dp && t.noise > 0) {
		err = round_epsilon(&eps, &t, t.version);
		if (!err)
			err = round_epsilon(&eps_next, &t, t.version + 1);
		if (err)
			return err;
		snprintf(eps_s, sizeof(eps_s), "%.17g", eps);
	}
	err = db_execp(c, NULL,
		       "WITH k AS (UPDATE task_rounds SET state = 'published',"
		       " version = $2::int, closed_at = now(),"
		       " epsilon = nullif($3, '')::float8 WHERE task_id = $1"
		       " AND round = $2::int)"
		       " UPDATE tasks SET current_version = $2::int,"
		       " epsilon = nullif($3, '')::float8, updated_at = now()"
		       " WHERE id = $1",
		       a->task_id, t.version_s, eps_s);
	if (!err && !t.async)
		err = close_round(c, a, &t);
	if (err)
		return err;
	reason = end_reason(a, &t, eps_next);
	if (reason)
		err = mkt_task_end(c, a->task_id, reason);
	else
		/* round version + 1 opens; only assignments still at work
		 * (async) hold slots of it */
		err = db_execp(
			c, NULL,
			"WITH k AS (INSERT INTO task_rounds (task_id, round,"
			" deadline_at) SELECT id, $2::int + 1, now() +"
			" make_interval(secs => round_duration_s) FROM tasks"
			" WHERE id = $1)"
			" UPDATE tasks SET current_round = $2::int + 1,"
			" slots_used = (SELECT count(*) FROM assignments WHERE"
			"  task_id = $1 AND state IN ('active', 'submitted')),"
			" updated_at = now() WHERE id = $1",
			a->task_id, t.version_s);
	if (err)
		return err;
	return mkt_row_json(c, &a->result, "model version",
			    "SELECT " MODEL_JSON " FROM model_versions m"
			    " WHERE m.task_id = $1 AND m.version = $2::int",
			    DB_ARGS(a->task_id, t.version_s));
}

int market_model_publish_scored(struct db_pool *p, json_t **out,
				const char *task_id, const char *caller,
				const char *bundle_ref, const char *rule,
				const json_t *metrics, const json_t *result_ids,
				const json_t *report, const char *report_ref)
{
	char tid[67];
	char *m = NULL;
	struct publish_arg a = { NULL, tid, caller, bundle_ref, rule, NULL,
				 result_ids, -1, report, report_ref };
	json_t *acc = json_object_get(metrics, "accuracy");
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	if (!mkt_bundle_ref_ok(bundle_ref))
		return fm_error_set(FM_EINVAL,
				    "bundle: expected a bundle reference (64 "
				    "lowercase hex digits)");
	if (!json_is_array(result_ids) || json_array_size(result_ids) == 0 ||
	    json_array_size(result_ids) > 100000)
		return fm_error_set(FM_EINVAL,
				    "results: expected a non-empty array of "
				    "result ids");
	if (report && !mkt_bundle_ref_ok(report_ref))
		return fm_error_set(FM_EINVAL,
				    "scoring.report: expected a blob reference "
				    "(64 lowercase hex digits)");
	if (json_is_number(acc))
		a.accuracy = json_number_value(acc);
	m = mkt_dump_or_empty(metrics);
	if (!m)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a.metrics = m;
	err = mkt_tx_json(p, DB_READ_COMMITTED, publish_fn, &a, out);
	free(m);
	return err;
}

int market_model_publish(struct db_pool *p, json_t **out, const char *task_id,
			 const char *caller, const char *bundle_ref,
			 const char *rule, const json_t *metrics,
			 const json_t *result_ids)
{
	return market_model_publish_scored(p, out, task_id, caller,
					   bundle_ref, rule, metrics,
					   result_ids, NULL, NULL);
}

int market_model_list(struct db_pool *p, json_t **out, const char *task_id)
{
	char tid[67];
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	return mkt_read_json(p, out, "models",
			     "SELECT json_build_object('models', coalesce("
			     "json_agg(" MODEL_JSON " ORDER BY m.version),"
			     " '[]'::json)) FROM model_versions m"
			     " WHERE m.task_id = $1",
			     DB_ARGS(tid));
}
