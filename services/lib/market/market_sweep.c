/* Housekeeping the services' sweepers run: expiry of assignments past
 * their deadline and of tasks past their lifetime, and the auto
 * strategy's approvals. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"

#include <stdlib.h>

static int expire_assignments_fn(struct db_conn *c, void *arg)
{
	int *n = arg;
	PGresult *r = NULL;
	int err;

	/* expiry frees each slot; one statement keeps the count exact */
	err = db_exec(c, &r,
		      "WITH e AS (UPDATE assignments SET state = 'expired',"
		      " updated_at = now() WHERE state = 'active' AND"
		      " deadline_at < now() RETURNING task_id),"
		      " g AS (SELECT task_id, count(*) AS k FROM e"
		      "  GROUP BY task_id),"
		      " u AS (UPDATE tasks t SET slots_used = t.slots_used - g.k,"
		      "  updated_at = now() FROM g WHERE t.id = g.task_id"
		      "  RETURNING 1)"
		      " SELECT (SELECT count(*) FROM e)",
		      0, NULL);
	if (err)
		return err;
	*n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return FM_OK;
}

int market_expire_assignments(struct db_pool *p, int *n)
{
	int count = 0;
	int err;

	*n = 0;
	err = db_tx(p, DB_READ_COMMITTED, expire_assignments_fn, NULL, &count);
	if (err)
		return err;
	*n = count;
	return FM_OK;
}

static int expire_tasks_fn(struct db_conn *c, void *arg)
{
	int *n = arg;
	int err = db_exec(c, NULL,
			  "UPDATE tasks SET state = 'expired',"
			  " refund_state = CASE WHEN funded_wei IS NULL THEN"
			  "  'none' ELSE 'queued' END, updated_at = now()"
			  " WHERE state IN ('open', 'draft') AND"
			  " expires_at < now()",
			  0, NULL);

	if (err)
		return err;
	*n = (int)db_last_rows(c);
	return FM_OK;
}

int market_expire_tasks(struct db_pool *p, int *n)
{
	int count = 0;
	int err;

	*n = 0;
	err = db_tx(p, DB_READ_COMMITTED, expire_tasks_fn, NULL, &count);
	if (err)
		return err;
	*n = count;
	return FM_OK;
}

struct due_arg {
	json_t *result; /* result ids */
};

static int due_fn(struct db_conn *c, void *arg)
{
	struct due_arg *a = arg;
	PGresult *r = NULL;
	int err = db_exec(c, &r,
			  "SELECT r.id FROM results r WHERE r.state ="
			  " 'submitted' AND r.auto_accept_at <= now()"
			  " ORDER BY r.auto_accept_at LIMIT 500",
			  0, NULL);

	if (err)
		return err;
	a->result = json_array();
	if (!a->result) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(a->result,
				      json_string(PQgetvalue(r, i, 0)));
done:
	PQclear(r);
	return err;
}

/* Accepts one due result; *accepted is 0 when it was decided meanwhile. */
static int auto_accept_one(struct db_pool *p, const char *result_id,
			   int *accepted)
{
	struct market_decision_in in = {
		.result_id = result_id,
		.validator = "",
		.accept = 1,
		.reason = "auto-approved after the integrity checks",
		.automatic = 1,
	};
	json_t *res = NULL;
	int err = market_decide(p, &res, &in);

	json_decref(res);
	*accepted = err == FM_OK;
	return err == FM_ECONFLICT ? FM_OK : err;
}

int market_auto_accept(struct db_pool *p, int *n)
{
	struct due_arg due = { NULL };
	json_t *ids = NULL, *id;
	size_t i;
	int err;

	*n = 0;
	err = mkt_tx_json(p, DB_READ_COMMITTED, due_fn, &due, &ids);
	if (err)
		return err;
	json_array_foreach(ids, i, id) {
		int accepted = 0;

		err = auto_accept_one(p, json_string_value(id), &accepted);
		if (err)
			break;
		*n += accepted;
	}
	json_decref(ids);
	return err;
}
