/* The contributor's work: assignments (take, keep alive, give up),
 * results, the validator's decisions on them, and the payouts an accept
 * writes. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSIGNMENT_BY_ID \
	"SELECT " ASSIGNMENT_JSON " FROM assignments a WHERE a.id = $1::uuid"
#define RESULT_BY_ID \
	"SELECT " RESULT_JSON " FROM results r WHERE r.id = $1::uuid"

/* ----------------------------------------------------------- assignments */

struct assign_arg {
	json_t *result;
	const char *task_id, *contributor;
};

/* Why a task gave no slot to contributor. */
static int assign_refusal(struct db_conn *c, const struct assign_arg *a)
{
	PGresult *r = NULL;
	const char *state, *round_state, *why;
	long long round;
	int err;

	err = db_execp(c, &r,
		       "SELECT t.state, t.creator, t.expires_at > now() AS live,"
		       " t.current_round, t.max_assignments, t.end_reason,"
		       " coalesce(k.state, 'open') AS round_state FROM tasks t"
		       " LEFT JOIN task_rounds k ON k.task_id = t.id AND"
		       " k.round = t.current_round WHERE t.id = $1",
		       a->task_id);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		err = fm_error_set(FM_ENOTFOUND, "task not found");
		goto done;
	}
	state = db_str(r, 0, "state", "");
	round_state = db_str(r, 0, "round_state", "");
	why = db_str(r, 0, "end_reason", NULL);
	round = db_int(r, 0, "current_round", 1);
	if (!strcmp(db_str(r, 0, "creator", ""), a->contributor))
		err = fm_error_set(FM_EFORBIDDEN,
				   "a creator cannot take their own task");
	else if (strcmp(state, "open") != 0 && why)
		err = fm_error_set(FM_ECONFLICT, "task is %s (%s), not open",
				   state, why);
	else if (strcmp(state, "open") != 0)
		err = fm_error_set(FM_ECONFLICT, "task is %s, not open", state);
	else if (!db_bool(r, 0, "live"))
		err = fm_error_set(FM_ECONFLICT, "task has expired");
	else if (!strcmp(round_state, "closing"))
		err = fm_error_set(FM_ECONFLICT,
				   "round %lld is closing: wait for version "
				   "%lld",
				   round, round);
	else if (strcmp(round_state, "open") != 0)
		err = fm_error_set(FM_ECONFLICT,
				   "round %lld is %s: it takes no assignments",
				   round, round_state);
	else
		err = fm_error_set(FM_ECONFLICT,
				   "no slot left: all %lld slots of round %lld "
				   "of this task are taken",
				   db_int(r, 0, "max_assignments", 0), round);
done:
	PQclear(r);
	return err;
}

/* The one live assignment contributor holds in the current round. */
static int assign_held(struct db_conn *c, const struct assign_arg *a)
{
	PGresult *r = NULL;
	long long round = 1;
	int err;

	err = db_execp(c, &r, "SELECT current_round FROM tasks WHERE id = $1",
		       a->task_id);
	if (err)
		return err;
	if (PQntuples(r) == 1)
		round = db_int(r, 0, "current_round", 1);
	PQclear(r);
	return fm_error_set(FM_ECONFLICT,
			    "you already hold an assignment of round %lld of "
			    "this task",
			    round);
}

/* One statement takes a slot of the current round, records the account
 * and the assignment: one round trip and one commit. The guarded UPDATE
 * is the slot (it cannot pass max_assignments, nor be taken while the
 * round is closing); when it matches nothing, a second look says why.
 * A publish moves current_round in the same row, so the slot is in the
 * round current when it is taken. */
static int assign_fn(struct db_conn *c, void *arg)
{
	struct assign_arg *a = arg;
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "WITH slot AS (UPDATE tasks t SET slots_used ="
		       " t.slots_used + 1, updated_at = now() WHERE t.id = $1"
		       " AND t.state = 'open' AND t.expires_at > now()"
		       " AND t.slots_used < t.max_assignments"
		       " AND t.creator <> $2 AND NOT EXISTS (SELECT 1 FROM"
		       " task_rounds k WHERE k.task_id = t.id AND"
		       " k.round = t.current_round AND k.state <> 'open')"
		       " RETURNING t.assignment_duration_s, t.current_round),"
		       " acct AS (INSERT INTO accounts (address) SELECT $2"
		       " FROM slot ON CONFLICT DO NOTHING),"
		       " a AS (INSERT INTO assignments (task_id, contributor,"
		       " deadline_at, round) SELECT $1, $2, now() +"
		       " make_interval(secs => slot.assignment_duration_s),"
		       " slot.current_round FROM slot RETURNING *)"
		       " SELECT " ASSIGNMENT_JSON " FROM a",
		       a->task_id, a->contributor);
	if (err == FM_ECONFLICT)
		return assign_held(c, a);
	if (err)
		return err;
	if (PQntuples(r) == 1)
		err = fj_parse(&a->result, PQgetvalue(r, 0, 0),
			       (size_t)PQgetlength(r, 0, 0), "database row");
	else
		err = assign_refusal(c, a);
	PQclear(r);
	return err;
}

int market_assign(struct db_pool *p, json_t **out, const char *task_id,
		  const char *contributor)
{
	char id[67];
	struct assign_arg a = { NULL, id, contributor };
	int err = spec_hash32(id, task_id, "task id");

	if (err)
		return err;
	return mkt_tx_json(p, DB_AUTOCOMMIT, assign_fn, &a, out);
}

int market_assignment_get(struct db_pool *p, json_t **out, const char *id)
{
	int err = mkt_check_uuid(id, "assignment id");

	if (err)
		return err;
	return mkt_read_json(p, out, "assignment", ASSIGNMENT_BY_ID,
			     DB_ARGS(id));
}

int market_assignment_list(struct db_pool *p, json_t **out,
			   const char *contributor, const char *task_id)
{
	char addr[43], tid[67];
	int err = spec_address(addr, contributor, "contributor");

	if (err)
		return err;
	if (task_id) {
		err = spec_hash32(tid, task_id, "task_id");
		if (err)
			return err;
	}
	return mkt_read_json(p, out, "assignments",
			     "SELECT json_build_object('assignments',"
			     " coalesce(json_agg(" ASSIGNMENT_JSON
			     " ORDER BY a.created_at DESC), '[]'::json))"
			     " FROM assignments a WHERE a.contributor = $1"
			     " AND ($2::text IS NULL OR a.task_id = $2)",
			     DB_ARGS(addr, task_id ? tid : NULL));
}

struct live_arg {
	json_t *result;
	const char *id, *contributor;
	int abandon;
};

/* The assignment is the contributor's, active and in time (locked). */
static int live_check(struct db_conn *c, const struct live_arg *a)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT contributor, state, deadline_at < now() AS late"
		       " FROM assignments WHERE id = $1::uuid FOR UPDATE",
		       a->id);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ENOTFOUND, "assignment not found");
	else if (strcmp(db_str(r, 0, "contributor", ""), a->contributor))
		err = fm_error_set(FM_EFORBIDDEN,
				   "this assignment belongs to another "
				   "contributor");
	else if (strcmp(db_str(r, 0, "state", ""), "active"))
		err = fm_error_set(FM_ECONFLICT, "assignment is %s, not active",
				   db_str(r, 0, "state", ""));
	else if (db_bool(r, 0, "late"))
		err = fm_error_set(FM_ECONFLICT,
				   "assignment has passed its deadline");
	PQclear(r);
	return err;
}

/* Gives the assignment up and frees its slot. */
static int abandon(struct db_conn *c, const char *id)
{
	int err = db_execp(c, NULL,
			   "UPDATE assignments SET state = 'abandoned',"
			   " updated_at = now() WHERE id = $1::uuid",
			   id);

	if (err)
		return err;
	return db_execp(c, NULL,
			"UPDATE tasks SET slots_used = slots_used - 1,"
			" updated_at = now() WHERE id = (SELECT task_id FROM"
			" assignments WHERE id = $1::uuid)",
			id);
}

static int live_fn(struct db_conn *c, void *arg)
{
	struct live_arg *a = arg;
	int err;

	err = live_check(c, a);
	if (err)
		return err;
	if (a->abandon)
		err = abandon(c, a->id);
	else
		err = db_execp(c, NULL,
			       "UPDATE assignments SET heartbeat_at = now(),"
			       " updated_at = now() WHERE id = $1::uuid",
			       a->id);
	if (err)
		return err;
	return mkt_row_json(c, &a->result, "assignment", ASSIGNMENT_BY_ID,
			    DB_ARGS(a->id));
}

static int live_op(struct db_pool *p, json_t **out, const char *id,
		   const char *contributor, int abandon_it)
{
	struct live_arg a = { NULL, id, contributor, abandon_it };
	int err = mkt_check_uuid(id, "assignment id");

	if (err)
		return err;
	return mkt_tx_json(p, DB_READ_COMMITTED, live_fn, &a, out);
}

int market_heartbeat(struct db_pool *p, json_t **out, const char *id,
		     const char *contributor)
{
	return live_op(p, out, id, contributor, 0);
}

int market_abandon(struct db_pool *p, json_t **out, const char *id,
		   const char *contributor)
{
	return live_op(p, out, id, contributor, 1);
}

/* --------------------------------------------------------------- results */

struct submit_arg {
	json_t *result;
	const struct market_result_in *in;
	const char *metrics, *checks;
};

/* Where the task is, and the round of the assignment a result is for. */
struct versions {
	long long current_version, current_round, round, max_staleness;
	int async;
};

static void versions_read(struct versions *v, const PGresult *r)
{
	v->current_version = db_int(r, 0, "current_version", 0);
	v->current_round = db_int(r, 0, "current_round", 1);
	v->max_staleness = db_int(r, 0, "max_staleness", 0);
	v->async = db_bool(r, 0, "async");
}

/* The version columns versions_read reads, of tasks t. */
#define VERSION_COLS \
	" t.current_version, t.current_round, t.max_staleness," \
	" t.agg_mode = 'async' AS async"

/* Why a result trained from in's base version may not join the task now
 * (FM_OK when it may). sync: from the current version, in the current
 * round; async: from a version at most max_staleness versions old. */
static int version_refusal(const struct versions *v,
			   const struct market_result_in *in)
{
	long long base = in->has_base_version ? in->base_version
					      : v->round - 1;
	long long cur = v->current_version;

	if (!v->async && base != cur)
		return fm_error_set(FM_ECONFLICT,
				    "result trained from version %lld; the "
				    "current version is %lld (pull it and "
				    "train again)",
				    base, cur);
	if (!v->async && v->round != v->current_round)
		return fm_error_set(FM_ECONFLICT,
				    "assignment of round %lld; the current "
				    "round is %lld (take an assignment of it)",
				    v->round, v->current_round);
	if (base > cur)
		return fm_error_set(FM_ECONFLICT,
				    "version %lld does not exist yet", base);
	if (cur - base > v->max_staleness)
		return fm_error_set(FM_ECONFLICT,
				    "result trained from version %lld is %lld "
				    "versions old; this task accepts at most "
				    "%lld (current version %lld)",
				    base, cur - base, v->max_staleness, cur);
	return FM_OK;
}

/* Why the guarded submit matched no assignment. */
static int submit_refusal(struct db_conn *c, const struct market_result_in *in)
{
	PGresult *r = NULL;
	const char *state;
	long long round, cur_round;
	int err;

	err = db_execp(c, &r,
		       "SELECT a.contributor, a.state, a.round,"
		       " a.deadline_at < now() AS late, t.current_round,"
		       " t.current_version, t.end_reason FROM assignments a"
		       " JOIN tasks t ON t.id = a.task_id"
		       " WHERE a.id = $1::uuid",
		       in->assignment_id);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		err = fm_error_set(FM_ENOTFOUND, "assignment not found");
		goto done;
	}
	state = db_str(r, 0, "state", "");
	round = db_int(r, 0, "round", 1);
	cur_round = db_int(r, 0, "current_round", 1);
	if (strcmp(db_str(r, 0, "contributor", ""), in->contributor))
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the assignee can submit a result");
	else if (!strcmp(state, "expired") && round < cur_round)
		/* its round was published without it */
		err = fm_error_set(FM_ECONFLICT,
				   "assignment is expired, not active: round "
				   "%lld is over and the current version is "
				   "%lld (take an assignment of round %lld and "
				   "train from it)",
				   round, db_int(r, 0, "current_version", 0),
				   cur_round);
	else if (!strcmp(state, "expired") &&
		 db_str(r, 0, "end_reason", NULL))
		err = fm_error_set(FM_ECONFLICT,
				   "assignment is expired, not active: the "
				   "task ended (%s)",
				   db_str(r, 0, "end_reason", ""));
	else if (strcmp(state, "active"))
		err = fm_error_set(FM_ECONFLICT, "assignment is %s, not active",
				   state);
	else
		err = fm_error_set(FM_ECONFLICT,
				   "assignment has passed its deadline");
done:
	PQclear(r);
	return err;
}

/* Locks the task of the assignment against a publish (which moves its
 * version) and reads where it is; *found is 0 without such an
 * assignment. */
static int submit_lock_task(struct db_conn *c, struct versions *v,
			    const char *assignment_id, int *found)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT" VERSION_COLS " FROM tasks t WHERE t.id ="
		       " (SELECT task_id FROM assignments WHERE id ="
		       " $1::uuid) FOR KEY SHARE",
		       assignment_id);
	if (err)
		return err;
	*found = PQntuples(r) == 1;
	if (*found)
		versions_read(v, r);
	PQclear(r);
	return FM_OK;
}

/* A result with in's bundle or the same weights (checks' weights_sha256)
 * as an earlier result of the task, another contributor's or one of the
 * same round, is refused: copies are not paid (models only: honest
 * annotators agree, and labels are judged by gold and majority). The
 * contributor's own
 * model of an earlier round is no copy: a round that kept its version
 * trains again from the same one, and training is deterministic.
 * Submissions of one task queue on an advisory lock for the rest of the
 * transaction, so of two racing copies the second sees the first. */
static int copy_refusal(struct db_conn *c, const struct market_result_in *in,
			long long round)
{
	char rd[24];
	const char *w = json_string_value(
		json_object_get(in->checks, "weights_sha256"));
	PGresult *r = NULL;
	int err;

	snprintf(rd, sizeof(rd), "%lld", round);
	err = db_execp(c, NULL,
		       "SELECT pg_advisory_xact_lock(hashtextextended("
		       "'submit:' || (SELECT task_id FROM assignments WHERE"
		       " id = $1::uuid), 0))",
		       in->assignment_id);
	if (err)
		return err;
	err = db_execp(c, &r,
		       "SELECT id, bundle_ref = $2 AS same_bundle FROM results"
		       " WHERE task_id = (SELECT task_id FROM assignments"
		       " WHERE id = $1::uuid) AND (bundle_ref = $2 OR ($3 <> ''"
		       " AND checks->>'weights_sha256' = $3)) AND"
		       " (contributor <> $4 OR round = $5::int) AND"
		       " (SELECT kind FROM tasks WHERE id = task_id) <>"
		       " 'data_annotator'"
		       " ORDER BY submitted_at LIMIT 1",
		       in->assignment_id, in->bundle_ref, w ? w : "",
		       in->contributor, rd);
	if (err)
		return err;
	if (PQntuples(r) == 1)
		err = fm_error_set(FM_ECONFLICT,
				   "result %s of this task has the same %s: "
				   "copies are not paid",
				   db_str(r, 0, "id", ""),
				   db_bool(r, 0, "same_bundle") ? "bundle"
								: "weights");
	PQclear(r);
	return err;
}

static int submit_fn(struct db_conn *c, void *arg)
{
	struct submit_arg *a = arg;
	const struct market_result_in *in = a->in;
	struct versions v = { 0 };
	PGresult *r = NULL;
	char n[24], base[24];
	int found = 0, err;

	err = submit_lock_task(c, &v, in->assignment_id, &found);
	if (err)
		return err;
	if (!found)
		return submit_refusal(c, in);
	/* guarded: only the assignee, only while active and in time */
	err = db_execp(c, &r,
		       "UPDATE assignments SET state = 'submitted',"
		       " updated_at = now() WHERE id = $1::uuid"
		       " AND contributor = $2 AND state = 'active'"
		       " AND deadline_at >= now() RETURNING round",
		       in->assignment_id, in->contributor);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return submit_refusal(c, in);
	}
	v.round = db_int(r, 0, "round", 1);
	PQclear(r);
	err = version_refusal(&v, in);
	if (err)
		return err;
	err = copy_refusal(c, in, v.round);
	if (err)
		return err;
	snprintf(n, sizeof(n), "%lld", in->num_examples);
	snprintf(base, sizeof(base), "%lld",
		 in->has_base_version ? in->base_version : v.round - 1);
	return mkt_row_json(
		c, &a->result, "result",
		"WITH r AS (INSERT INTO results (assignment_id, task_id,"
		" contributor, bundle_ref, num_examples, reported_metrics,"
		" checks, auto_accept_at, round, base_version)"
		" SELECT a.id, a.task_id, a.contributor, $2, $3::bigint,"
		"  $4::jsonb, $5::jsonb,"
		"  CASE WHEN t.validation_strategy = 'auto' THEN now() +"
		"   make_interval(secs => t.auto_approval_delay_s) END,"
		"  t.current_round, $6::int"
		" FROM assignments a JOIN tasks t ON t.id = a.task_id"
		" WHERE a.id = $1::uuid RETURNING *)"
		" SELECT " RESULT_JSON " FROM r",
		DB_ARGS(in->assignment_id, in->bundle_ref, n, a->metrics,
			a->checks, base));
}

/* A base version, when given, is a version number. */
static int base_version_ok(const struct market_result_in *in)
{
	if (in->has_base_version &&
	    (in->base_version < 0 || in->base_version > SPEC_ROUNDS_MAX))
		return fm_error_set(FM_EINVAL,
				    "base_version: expected integer in "
				    "[0, %d]",
				    SPEC_ROUNDS_MAX);
	return FM_OK;
}

int market_result_submit(struct db_pool *p, json_t **out,
			 const struct market_result_in *in)
{
	struct submit_arg a = { NULL, in, NULL, NULL };
	char *metrics = NULL, *checks = NULL;
	int err = mkt_check_uuid(in->assignment_id, "assignment id");

	if (err)
		return err;
	if (!mkt_bundle_ref_ok(in->bundle_ref))
		return fm_error_set(FM_EINVAL,
				    "bundle: expected a bundle reference "
				    "(64 lowercase hex digits)");
	if (in->num_examples < 0)
		return fm_error_set(FM_EINVAL,
				    "num_examples: expected integer >= 0");
	err = base_version_ok(in);
	if (err)
		return err;
	metrics = mkt_dump_or_empty(in->reported_metrics);
	checks = mkt_dump_or_empty(in->checks);
	if (!metrics || !checks) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	a.metrics = metrics;
	a.checks = checks;
	err = mkt_tx_json(p, DB_READ_COMMITTED, submit_fn, &a, out);
done:
	free(metrics);
	free(checks);
	return err;
}

struct claim_arg {
	json_t *result; /* the task */
	const struct market_result_in *in;
	const char *lease;
	long long retry_s;
};

/* Why the claim matched no assignment: submit_refusal's answers, or a
 * submission being checked. */
static int claim_refusal(struct db_conn *c, struct claim_arg *a)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT ceil(greatest(extract(epoch FROM"
		       " submit_lease_until - now()), 1))::bigint AS left_s"
		       " FROM assignments WHERE id = $1::uuid AND"
		       " contributor = $2 AND state = 'active' AND"
		       " deadline_at >= now() AND submit_lease_until >= now()",
		       a->in->assignment_id, a->in->contributor);
	if (err)
		return err;
	if (PQntuples(r) == 1) {
		a->retry_s = db_int(r, 0, "left_s", 1);
		PQclear(r);
		return fm_error_set(FM_ECONFLICT,
				    "a result for this assignment is being "
				    "checked");
	}
	PQclear(r);
	return submit_refusal(c, a->in);
}

/* The claim, and the task of the assignment, refused before anything is
 * downloaded when the task no longer takes a result trained from in's
 * version (the claim is then rolled back). */
static int claim_fn(struct db_conn *c, void *arg)
{
	struct claim_arg *a = arg;
	struct versions v = { 0 };
	PGresult *r = NULL, *t = NULL;
	int err;

	err = db_execp(c, &r,
		       "UPDATE assignments SET submit_lease_until = now() +"
		       " make_interval(secs => $3::int) WHERE id = $1::uuid"
		       " AND contributor = $2 AND state = 'active' AND"
		       " deadline_at >= now() AND (submit_lease_until IS NULL"
		       " OR submit_lease_until < now()) RETURNING task_id,"
		       " round",
		       a->in->assignment_id, a->in->contributor, a->lease);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return claim_refusal(c, a);
	}
	v.round = db_int(r, 0, "round", 1);
	err = mkt_row_first(c, &t, "task",
			    "SELECT " TASK_JSON " AS j," VERSION_COLS
			    " FROM tasks t WHERE t.id = $1",
			    DB_ARGS(PQgetvalue(r, 0, 0)));
	if (err)
		goto done;
	versions_read(&v, t);
	err = version_refusal(&v, a->in);
	if (err)
		goto done;
	err = fj_parse(&a->result, db_str(t, 0, "j", ""),
		       (size_t)PQgetlength(t, 0, 0), "database row");
done:
	PQclear(t);
	PQclear(r);
	return err;
}

int market_submit_claim(struct db_pool *p, json_t **task,
			const struct market_result_in *in, long lease_s,
			long long *retry_s)
{
	char lease[24];
	struct claim_arg a = { NULL, in, lease, 0 };
	int err = mkt_check_uuid(in->assignment_id, "assignment id");

	if (err)
		return err;
	err = base_version_ok(in);
	if (err)
		return err;
	snprintf(lease, sizeof(lease), "%ld", lease_s);
	err = mkt_tx_json(p, DB_READ_COMMITTED, claim_fn, &a, task);
	if (retry_s)
		*retry_s = a.retry_s;
	return err;
}

void market_submit_release(struct db_pool *p, const char *assignment_id)
{
	struct db_conn *c = NULL;
	int err = db_acquire(p, &c, 5000);

	if (!err)
		err = db_execp(c, NULL,
			       "UPDATE assignments SET submit_lease_until ="
			       " NULL WHERE id = $1::uuid",
			       assignment_id);
	db_release(p, c);
	if (err)
		log_warn("assignment %s: claim not released (it lapses with "
			 "its lease): %s", assignment_id, fm_error_msg());
}

int market_result_get(struct db_pool *p, json_t **out, const char *id)
{
	int err = mkt_check_uuid(id, "result id");

	if (err)
		return err;
	return mkt_read_json(p, out, "result", RESULT_BY_ID, DB_ARGS(id));
}

int market_result_list(struct db_pool *p, json_t **out, const char *task_id,
		       const char *state)
{
	char tid[67];
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	return mkt_read_json(p, out, "results",
			     "SELECT json_build_object('results',"
			     " coalesce(json_agg(" RESULT_JSON
			     " ORDER BY r.submitted_at), '[]'::json))"
			     " FROM results r WHERE r.task_id = $1"
			     " AND ($2::text IS NULL OR r.state = $2)",
			     DB_ARGS(tid, state));
}

/* ------------------------------------------------------------- decisions */

struct decide_arg {
	json_t *result;
	const struct market_decision_in *in;
	const char *metrics;
};

/* What a decision needs to know of its result and task, read under the
 * result's lock. */
struct decided {
	char task_id[67];
	char contributor[43];
	char reward[80];
	char validator[43];
	int scored; /* pays by contribution: amounts come with its version */
};

/* Locks the result and checks that in may decide on it now. */
static int decide_check(struct db_conn *c, struct decided *d,
			const struct market_decision_in *in)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT r.state, r.assignment_id, r.task_id,"
		       " r.contributor, t.validator, t.reward_wei::text AS"
		       " reward, t.spec #>> '{reward,scoring}' = 'shapley'"
		       " AS scored FROM results r JOIN tasks t ON t.id ="
		       " r.task_id WHERE r.id = $1::uuid FOR UPDATE OF r",
		       in->result_id);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		err = fm_error_set(FM_ENOTFOUND, "result not found");
		goto done;
	}
	if (!in->automatic &&
	    strcmp(db_str(r, 0, "validator", ""), in->validator)) {
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the task's validator can decide on "
				   "its results");
		goto done;
	}
	if (strcmp(db_str(r, 0, "state", ""), "submitted")) {
		err = fm_error_set(FM_ECONFLICT,
				   "result was already decided (%s)",
				   db_str(r, 0, "state", ""));
		goto done;
	}
	snprintf(d->task_id, sizeof(d->task_id), "%s",
		 db_str(r, 0, "task_id", ""));
	snprintf(d->contributor, sizeof(d->contributor), "%s",
		 db_str(r, 0, "contributor", ""));
	snprintf(d->reward, sizeof(d->reward), "%s",
		 db_str(r, 0, "reward", ""));
	snprintf(d->validator, sizeof(d->validator), "%s",
		 db_str(r, 0, "validator", ""));
	d->scored = db_bool(r, 0, "scored");
done:
	PQclear(r);
	return err;
}

/* The verdict on the result, its decision row and its assignment. */
static int record_verdict(struct db_conn *c, const struct decide_arg *a,
			  const struct decided *d)
{
	const struct market_decision_in *in = a->in;
	const char *verdict = in->accept ? "accepted" : "rejected";
	int err;

	err = db_execp(c, NULL,
		       "UPDATE results SET state = $2, decided_at = now()"
		       " WHERE id = $1::uuid AND state = 'submitted'",
		       in->result_id, verdict);
	if (err)
		return err;
	if (db_last_rows(c) != 1)
		return fm_error_set(FM_ECONFLICT, "result was already decided");
	err = db_execp(c, NULL,
		       "INSERT INTO decisions (result_id, validator,"
		       " decision, reason, metrics, automatic)"
		       " VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6)",
		       in->result_id, d->validator,
		       in->accept ? "accept" : "reject", in->reason, a->metrics,
		       in->automatic ? "true" : "false");
	if (err)
		return err;
	return db_execp(c, NULL,
			"UPDATE assignments SET state = $2,"
			" updated_at = now() WHERE id = (SELECT"
			" assignment_id FROM results WHERE id = $1::uuid)"
			" AND state = 'submitted'",
			in->result_id, verdict);
}

/* Locks the task of a result first (as publish and the sweeper do), so
 * that accepts of one task count its payouts one at a time. */
static int decide_lock_task(struct db_conn *c, const char *result_id)
{
	return db_execp(c, NULL,
			"SELECT 1 FROM tasks WHERE id = (SELECT task_id FROM"
			" results WHERE id = $1::uuid) FOR NO KEY UPDATE",
			result_id);
}

/* An accept past rounds x results_per_round would pay more than the
 * escrow holds. */
static int accept_room(struct db_conn *c, const struct decided *d)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT t.rounds * t.max_assignments AS most,"
		       " (SELECT count(*) FROM results r WHERE r.task_id ="
		       " t.id AND r.state = 'accepted') AS n FROM tasks t"
		       " WHERE t.id = $1",
		       d->task_id);
	if (err)
		return err;
	if (PQntuples(r) == 1 && db_int(r, 0, "n", 0) >= db_int(r, 0, "most", 0))
		err = fm_error_set(FM_ECONFLICT,
				   "all %lld payouts of this task (rounds x "
				   "results_per_round) are taken",
				   db_int(r, 0, "most", 0));
	PQclear(r);
	return err;
}

/* An accept writes the payout (the outbox row, paid by the worker); the
 * accept that fills the last round ends the task, whose last round then
 * waits for its version. Not so for a task paying by contribution. */
static int write_payout(struct db_conn *c, const char *result_id,
			const struct decided *d)
{
	PGresult *r = NULL;
	int full, err;

	/* a task paying by contribution fixes its amounts, and ends, when
	 * it publishes the round's version with the scoring report */
	if (d->scored)
		return FM_OK;
	err = db_execp(c, NULL,
		       "INSERT INTO payouts (result_id, task_id,"
		       " contributor, amount_wei)"
		       " VALUES ($1::uuid, $2, $3, $4::numeric)",
		       result_id, d->task_id, d->contributor, d->reward);
	if (err)
		return err;
	err = db_execp(c, &r,
		       "SELECT t.state = 'open' AND t.current_round = t.rounds"
		       " AND (SELECT count(*) FROM results r WHERE r.task_id ="
		       " t.id AND r.round = t.current_round AND r.state ="
		       " 'accepted') >= t.max_assignments AS full"
		       " FROM tasks t WHERE t.id = $1",
		       d->task_id);
	if (err)
		return err;
	full = PQntuples(r) == 1 && db_bool(r, 0, "full");
	PQclear(r);
	if (!full)
		return FM_OK;
	err = db_execp(c, NULL,
		       "UPDATE task_rounds k SET state = 'closing' FROM tasks t"
		       " WHERE t.id = k.task_id AND k.task_id = $1 AND"
		       " k.round = t.current_round AND k.state = 'open'",
		       d->task_id);
	if (err)
		return err;
	return mkt_task_end(c, d->task_id, "rounds_done");
}

static int decide_fn(struct db_conn *c, void *arg)
{
	struct decide_arg *a = arg;
	struct decided d;
	int err;

	err = decide_lock_task(c, a->in->result_id);
	if (err)
		return err;
	err = decide_check(c, &d, a->in);
	if (err)
		return err;
	if (a->in->accept) {
		err = accept_room(c, &d);
		if (err)
			return err;
	}
	err = record_verdict(c, a, &d);
	if (err)
		return err;
	if (a->in->accept)
		err = write_payout(c, a->in->result_id, &d);
	else
		/* a rejected assignment frees its slot */
		err = db_execp(c, NULL,
			       "UPDATE tasks SET slots_used = slots_used - 1,"
			       " updated_at = now() WHERE id = $1",
			       d.task_id);
	if (err)
		return err;
	return mkt_row_json(c, &a->result, "result", RESULT_BY_ID,
			    DB_ARGS(a->in->result_id));
}

int market_decide(struct db_pool *p, json_t **out,
		  const struct market_decision_in *in)
{
	struct decide_arg a = { NULL, in, NULL };
	char *metrics = NULL;
	int err = mkt_check_uuid(in->result_id, "result id");

	if (err)
		return err;
	if (!in->accept && (!in->reason || !in->reason[0]))
		return fm_error_set(FM_EINVAL,
				    "reason: required to reject a result");
	if (in->reason && strlen(in->reason) > 2000)
		return fm_error_set(FM_EINVAL,
				    "reason: expected at most 2000 bytes");
	metrics = mkt_dump_or_empty(in->metrics);
	if (!metrics)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a.metrics = metrics;
	err = mkt_tx_json(p, DB_READ_COMMITTED, decide_fn, &a, out);
	free(metrics);
	return err;
}

/* --------------------------------------------------------------- payouts */

int market_payout_list(struct db_pool *p, json_t **out,
		       const char *contributor, const char *task_id)
{
	char addr[43], tid[67];
	int err;

	if (contributor) {
		err = spec_address(addr, contributor, "contributor");
		if (err)
			return err;
	}
	if (task_id) {
		err = spec_hash32(tid, task_id, "task_id");
		if (err)
			return err;
	}
	return mkt_read_json(p, out, "payouts",
			     "SELECT json_build_object('payouts', coalesce("
			     "json_agg(" PAYOUT_JSON " ORDER BY y.id DESC),"
			     " '[]'::json)) FROM payouts y"
			     " WHERE ($1::text IS NULL OR y.contributor = $1)"
			     " AND ($2::text IS NULL OR y.task_id = $2)",
			     DB_ARGS(contributor ? addr : NULL,
				     task_id ? tid : NULL));
}
