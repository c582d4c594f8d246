/* Housekeeping the services' sweepers run: expiry of assignments past
 * their deadline, of tasks past their lifetime and of drafts unfunded
 * too long, the auto strategy's approvals, and the cursors of log
 * scans. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"

#include <stdio.h>
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
	PGresult *r = NULL;
	int err = db_exec(c, &r,
			  "WITH x AS (UPDATE tasks SET state = 'expired',"
			  " end_reason = 'expired',"
			  " refund_state = CASE WHEN funded_wei IS NULL THEN"
			  "  'none' ELSE 'queued' END, updated_at = now()"
			  " WHERE state IN ('open', 'draft') AND"
			  " expires_at < now() RETURNING id),"
			  " k AS (UPDATE task_rounds SET state = 'failed',"
			  " closed_at = now() WHERE task_id IN (SELECT id"
			  " FROM x) AND state IN ('open', 'closing')"
			  " RETURNING 1)"
			  " SELECT count(*) FROM x",
			  0, NULL);

	if (err)
		return err;
	*n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
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

struct drafts_arg {
	const char *ttl;
	int n;
};

static int expire_drafts_fn(struct db_conn *c, void *arg)
{
	struct drafts_arg *a = arg;
	int err = db_execp(c, NULL,
			   "UPDATE tasks SET state = 'expired', refund_state ="
			   " 'none', end_reason = 'expired', updated_at ="
			   " now() WHERE state = 'draft'"
			   " AND created_at < now() - make_interval(secs =>"
			   " $1::int)",
			   a->ttl);

	if (err)
		return err;
	a->n = (int)db_last_rows(c);
	return FM_OK;
}

int market_expire_drafts(struct db_pool *p, long ttl_s, int *n)
{
	char ttl[24];
	struct drafts_arg a = { ttl, 0 };
	int err;

	*n = 0;
	snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
	err = db_tx(p, DB_READ_COMMITTED, expire_drafts_fn, NULL, &a);
	if (err)
		return err;
	*n = a.n;
	return FM_OK;
}

int market_draft_ids(struct db_pool *p, json_t **out, const char *after,
		     int limit)
{
	char lim[16];

	snprintf(lim, sizeof(lim), "%d", limit);
	return mkt_read_json(p, out, "drafts",
			     "SELECT json_build_object('ids', coalesce("
			     " (SELECT json_agg(id ORDER BY id) FROM (SELECT id"
			     " FROM tasks WHERE state = 'draft' AND id > $1"
			     " ORDER BY id LIMIT $2::int) d), '[]'::json))",
			     DB_ARGS(after, lim));
}

int market_cursor_get(struct db_pool *p, const char *name,
		      unsigned long long *block, int *found)
{
	json_t *o = NULL;
	int err = mkt_read_json(p, &o, "cursor",
				"SELECT json_build_object('block', (SELECT"
				" block FROM chain_cursors WHERE name = $1))",
				DB_ARGS(name));
	json_t *b;

	if (err)
		return err;
	b = json_object_get(o, "block");
	*found = json_is_integer(b);
	if (*found)
		*block = (unsigned long long)json_integer_value(b);
	json_decref(o);
	return FM_OK;
}

struct cursor_arg {
	const char *name, *block;
};

static int cursor_set_fn(struct db_conn *c, void *arg)
{
	struct cursor_arg *a = arg;

	return db_execp(c, NULL,
			"INSERT INTO chain_cursors (name, block) VALUES ($1,"
			" $2::bigint) ON CONFLICT (name) DO UPDATE SET block ="
			" EXCLUDED.block, updated_at = now()",
			a->name, a->block);
}

int market_cursor_set(struct db_pool *p, const char *name,
		      unsigned long long block)
{
	char b[24];
	struct cursor_arg a = { name, b };

	snprintf(b, sizeof(b), "%llu", block);
	return db_tx(p, DB_AUTOCOMMIT, cursor_set_fn, NULL, &a);
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
