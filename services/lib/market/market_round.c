/* Rounds: the end of a task, the list of its rounds, and the sweeper
 * that closes, extends or fails rounds past their deadline. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mkt_task_end(struct db_conn *c, const char *task_id, const char *reason)
{
	char why[64];

	snprintf(why, sizeof(why), "the task ended (%s)", reason);
	/* the refund waits for the payouts written so far (earlier
	 * statements of this transaction included) */
	return db_execp(
		c, NULL,
		"WITH w AS (UPDATE results SET state = 'rejected',"
		" decided_at = now() WHERE task_id = $1 AND"
		" state = 'submitted' RETURNING id, assignment_id),"
		" d AS (INSERT INTO decisions (result_id, validator, decision,"
		" reason, automatic) SELECT w.id, t.validator, 'reject', $3,"
		" true FROM w CROSS JOIN tasks t WHERE t.id = $1),"
		" r AS (UPDATE assignments SET state = 'rejected',"
		" updated_at = now() WHERE id IN (SELECT assignment_id FROM w)"
		" AND state = 'submitted' RETURNING 1),"
		" e AS (UPDATE assignments SET state = 'expired',"
		" updated_at = now() WHERE task_id = $1 AND state = 'active'"
		" RETURNING 1)"
		" UPDATE tasks SET state = 'closed', end_reason = $2,"
		" slots_used = greatest(0, slots_used - (SELECT count(*)"
		"  FROM e) - (SELECT count(*) FROM r)),"
		" refund_state = CASE WHEN refund_state = 'none' AND"
		"  funded_wei > (SELECT coalesce(sum(y.amount_wei), 0) FROM"
		"  payouts y WHERE y.task_id = $1) THEN 'queued'"
		"  ELSE refund_state END,"
		" updated_at = now() WHERE id = $1",
		task_id, reason, why);
}

/* ---------------------------------------------------------------- list */

#define ROUNDS_OF_TASK \
	"SELECT CASE WHEN EXISTS (SELECT 1 FROM tasks WHERE id = $1) THEN" \
	" (SELECT json_build_object('rounds', coalesce(json_agg(" \
	"  json_build_object('round', k.round, 'state', k.state," \
	"   'opened_at', fm_ts(k.opened_at)," \
	"   'deadline_at', fm_ts(k.deadline_at), 'extended', k.extended," \
	"   'closed_at', fm_ts(k.closed_at), 'version', k.version," \
	"   'accepted', n.accepted, 'rejected', n.rejected," \
	"   'submitted', n.submitted, 'paid_wei', y.paid::text," \
	"   'owed_wei', y.owed::text, 'accuracy', m.metrics -> 'accuracy'," \
	"   'loss', m.metrics -> 'loss', 'epsilon', k.epsilon)" \
	"  ORDER BY k.round), '[]'::json))" \
	"  FROM task_rounds k JOIN tasks t ON t.id = k.task_id" \
	"  CROSS JOIN LATERAL " ROUND_COUNTS " n" \
	"  CROSS JOIN LATERAL (SELECT coalesce(sum(p.amount_wei)" \
	"   FILTER (WHERE p.state = 'confirmed'), 0) AS paid," \
	"   coalesce(sum(p.amount_wei), 0) AS owed FROM payouts p" \
	"   JOIN results x ON x.id = p.result_id WHERE p.task_id =" \
	"   k.task_id AND x.round = k.round) y" \
	"  LEFT JOIN model_versions m ON m.task_id = k.task_id AND" \
	"   m.version = k.version" \
	"  WHERE k.task_id = $1)" \
	" END"

int market_round_list_text(struct db_pool *p, char **out, size_t *len,
			   const char *task_id)
{
	char id[67];
	int err = spec_hash32(id, task_id, "task id");

	*out = NULL;
	if (err)
		return err;
	return mkt_read_text(p, out, len, "task", ROUNDS_OF_TASK, DB_ARGS(id));
}

int market_round_list(struct db_pool *p, json_t **out, const char *task_id)
{
	char *text;
	size_t len = 0;
	int err = market_round_list_text(p, &text, &len, task_id);

	return mkt_text_to_json(err, text, len, out);
}

/* --------------------------------------------------------------- sweeper */

struct due_round {
	const char *task_id, *round;
	int changed;
};

/* One round past its deadline, under its task's lock: closing, extended
 * or failed (and its task ended). */
static int sweep_round_fn(struct db_conn *c, void *arg)
{
	struct due_round *a = arg;
	PGresult *r = NULL;
	const char *st;
	int err;

	a->changed = 0;
	err = db_execp(c, &r,
		       "SELECT 1 FROM tasks WHERE id = $1 AND state = 'open'"
		       " AND current_round = $2::int FOR UPDATE",
		       a->task_id, a->round);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		goto done; /* moved on meanwhile */
	PQclear(r);
	r = NULL;
	err = db_execp(
		c, &r,
		"SELECT k.state, k.extended, CASE WHEN t.agg_mode = 'sync'"
		" THEN n.accepted ELSE n.pending END >= t.min_results AS enough"
		" FROM task_rounds k JOIN tasks t ON t.id = k.task_id"
		" CROSS JOIN LATERAL " ROUND_COUNTS " n"
		" WHERE k.task_id = $1 AND k.round = $2::int AND"
		" k.state IN ('open', 'closing') AND k.deadline_at < now()"
		" FOR UPDATE OF k",
		a->task_id, a->round);
	if (err)
		goto done;
	if (PQntuples(r) == 0)
		goto done;
	st = db_str(r, 0, "state", "");
	a->changed = 1;
	if (!strcmp(st, "open") && db_bool(r, 0, "enough")) {
		/* the validator has round_duration_s more to publish it */
		err = db_execp(c, NULL,
			       "UPDATE task_rounds k SET state = 'closing',"
			       " deadline_at = now() + make_interval(secs =>"
			       " t.round_duration_s) FROM tasks t WHERE"
			       " t.id = k.task_id AND k.task_id = $1 AND"
			       " k.round = $2::int",
			       a->task_id, a->round);
		goto done;
	}
	if (!strcmp(st, "open") && !db_bool(r, 0, "extended")) {
		err = db_execp(c, NULL,
			       "UPDATE task_rounds k SET extended = true,"
			       " deadline_at = k.deadline_at + make_interval("
			       "secs => t.round_duration_s) FROM tasks t WHERE"
			       " t.id = k.task_id AND k.task_id = $1 AND"
			       " k.round = $2::int",
			       a->task_id, a->round);
		goto done;
	}
	err = db_execp(c, NULL,
		       "UPDATE task_rounds SET state = 'failed', closed_at ="
		       " now() WHERE task_id = $1 AND round = $2::int",
		       a->task_id, a->round);
	if (!err)
		err = mkt_task_end(c, a->task_id, "short_round");
done:
	PQclear(r);
	return err;
}

struct due_list {
	json_t *result; /* [[task_id, round], ...] */
};

static int due_rounds_fn(struct db_conn *c, void *arg)
{
	struct due_list *a = arg;
	PGresult *r = NULL;
	int err;

	err = db_exec(c, &r,
		      "SELECT k.task_id, k.round FROM task_rounds k JOIN tasks"
		      " t ON t.id = k.task_id AND t.current_round = k.round"
		      " WHERE k.state IN ('open', 'closing') AND"
		      " k.deadline_at < now() AND t.state = 'open'"
		      " ORDER BY k.deadline_at LIMIT 500",
		      0, NULL);
	if (err)
		return err;
	a->result = json_array();
	if (!a->result) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (int i = 0; i < PQntuples(r); i++)
		if (json_array_append_new(a->result,
					  json_pack("[ss]", PQgetvalue(r, i, 0),
						    PQgetvalue(r, i, 1)))) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			goto done;
		}
done:
	PQclear(r);
	return err;
}

int market_sweep_rounds(struct db_pool *p, int *n)
{
	struct due_list due = { NULL };
	json_t *list = NULL, *row;
	size_t i;
	int err;

	*n = 0;
	err = mkt_tx_json(p, DB_AUTOCOMMIT, due_rounds_fn, &due, &list);
	if (err)
		return err;
	json_array_foreach(list, i, row) {
		struct due_round a = {
			json_string_value(json_array_get(row, 0)),
			json_string_value(json_array_get(row, 1)), 0
		};

		err = db_tx(p, DB_READ_COMMITTED, sweep_round_fn, NULL, &a);
		if (err)
			break;
		*n += a.changed;
	}
	json_decref(list);
	return err;
}
