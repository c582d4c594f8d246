#include "market/market.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* API shapes, built in SQL so one statement reads and shapes a row. */
#define TASK_JSON \
	"json_build_object('id', t.id, 'creator', t.creator," \
	" 'validator', t.validator, 'operator', t.operator," \
	" 'escrow_address', t.escrow_address, 'chain_id', t.chain_id," \
	" 'title', t.title, 'description', t.description, 'kind', t.kind," \
	" 'state', t.state, 'reward_wei', t.reward_wei::text," \
	" 'max_assignments', t.max_assignments, 'slots_used', t.slots_used," \
	" 'slots_free', t.max_assignments - t.slots_used," \
	" 'assignment_duration_s', t.assignment_duration_s," \
	" 'expires_at', fm_ts(t.expires_at)," \
	" 'validation_strategy', t.validation_strategy," \
	" 'auto_approval_delay_s', t.auto_approval_delay_s," \
	" 'assets', t.assets_ref, 'current_version', t.current_version," \
	" 'funding_tx', t.funding_tx, 'funded_wei', t.funded_wei::text," \
	" 'refund_state', t.refund_state, 'refund_tx', t.refund_tx," \
	" 'created_at', fm_ts(t.created_at)," \
	" 'updated_at', fm_ts(t.updated_at), 'spec', t.spec)"

#define ASSIGNMENT_JSON \
	"json_build_object('id', a.id, 'task_id', a.task_id," \
	" 'contributor', a.contributor, 'state', a.state," \
	" 'created_at', fm_ts(a.created_at)," \
	" 'deadline_at', fm_ts(a.deadline_at)," \
	" 'heartbeat_at', fm_ts(a.heartbeat_at)," \
	" 'updated_at', fm_ts(a.updated_at))"

#define RESULT_JSON \
	"json_build_object('id', r.id, 'assignment_id', r.assignment_id," \
	" 'task_id', r.task_id, 'contributor', r.contributor," \
	" 'bundle_ref', r.bundle_ref, 'num_examples', r.num_examples," \
	" 'reported_metrics', r.reported_metrics, 'checks', r.checks," \
	" 'state', r.state, 'submitted_at', fm_ts(r.submitted_at)," \
	" 'auto_accept_at', fm_ts(r.auto_accept_at)," \
	" 'decided_at', fm_ts(r.decided_at)," \
	" 'decision', (SELECT json_build_object('decision', d.decision," \
	"   'reason', d.reason, 'metrics', d.metrics," \
	"   'validator', d.validator, 'automatic', d.automatic," \
	"   'created_at', fm_ts(d.created_at))" \
	"   FROM decisions d WHERE d.result_id = r.id))"

#define PAYOUT_JSON \
	"json_build_object('id', y.id, 'result_id', y.result_id," \
	" 'task_id', y.task_id, 'contributor', y.contributor," \
	" 'amount_wei', y.amount_wei::text, 'state', y.state," \
	" 'tx_hash', y.tx_hash, 'block_number', y.block_number," \
	" 'gas_used', y.gas_used, 'attempts', y.attempts," \
	" 'last_error', y.last_error, 'created_at', fm_ts(y.created_at)," \
	" 'confirmed_at', fm_ts(y.confirmed_at))"

#define MODEL_JSON \
	"json_build_object('task_id', m.task_id, 'version', m.version," \
	" 'bundle_ref', m.bundle_ref, 'rule', m.rule, 'metrics', m.metrics," \
	" 'created_by', m.created_by, 'created_at', fm_ts(m.created_at)," \
	" 'results', coalesce((SELECT json_agg(v.result_id ORDER BY" \
	"   v.result_id) FROM model_version_results v" \
	"   WHERE v.task_id = m.task_id AND v.version = m.version)," \
	"   '[]'::json))"

/* JSON text of an optional object: "{}" when absent. Free with free(). */
static char *dump_or_empty(const json_t *o)
{
	return o ? json_dumps(o, JSON_COMPACT) : strdup("{}");
}

/* Runs sql into *r; a query with no row is FM_ENOTFOUND naming what. */
static int row_first(struct db_conn *c, PGresult **r, const char *what,
		     const char *sql, int n, const char *const *params)
{
	int err = db_exec(c, r, sql, n, params);

	if (err)
		return err;
	if (PQntuples(*r) == 0) {
		PQclear(*r);
		*r = NULL;
		return fm_error_set(FM_ENOTFOUND, "%s not found", what);
	}
	return FM_OK;
}

/* Runs sql and parses column 0 of row 0 as JSON into *out. */
static int row_json(struct db_conn *c, json_t **out, const char *what,
		    const char *sql, int n, const char *const *params)
{
	PGresult *r = NULL;
	int err = row_first(c, &r, what, sql, n, params);

	if (err)
		return err;
	err = fj_parse(out, PQgetvalue(r, 0, 0),
		       (size_t)PQgetlength(r, 0, 0), "database row");
	PQclear(r);
	return err;
}

#define row_jsonp(c, out, what, sql, ...) \
	row_json((c), (out), (what), (sql), \
		 (int)(sizeof((const char *[]){ __VA_ARGS__ }) / \
		       sizeof(const char *)), \
		 (const char *const[]){ __VA_ARGS__ })

/* Read-only statement on a pooled connection: column 0 of row 0 parsed
 * into *out, or (out NULL) copied as a malloc'd text into *text, for
 * answers passed on as the database shaped them. */
struct read_arg {
	json_t **out;
	char **text;
	size_t *len;
	const char *what;
	const char *sql;
	int n;
	const char *const *params;
};

static int read_fn(struct db_conn *c, void *arg)
{
	struct read_arg *a = arg;
	PGresult *r = NULL;
	size_t n;
	int err;

	if (a->out)
		return row_json(c, a->out, a->what, a->sql, a->n, a->params);
	err = row_first(c, &r, a->what, a->sql, a->n, a->params);
	if (err)
		return err;
	if (PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return fm_error_set(FM_ENOTFOUND, "%s not found", a->what);
	}
	n = (size_t)PQgetlength(r, 0, 0);
	*a->text = malloc(n + 1);
	if (*a->text) {
		memcpy(*a->text, PQgetvalue(r, 0, 0), n + 1);
		*a->len = n;
	}
	PQclear(r);
	return *a->text ? FM_OK : fm_error_set(FM_ENOMEM, "out of memory");
}

/* One statement is its own snapshot: no BEGIN/COMMIT round trips. */
static int read_text(struct db_pool *p, char **out, size_t *len,
		     const char *what, const char *sql, int n,
		     const char *const *params)
{
	struct read_arg a = { NULL, out, len, what, sql, n, params };

	*out = NULL;
	return db_tx(p, DB_AUTOCOMMIT, read_fn, &a);
}

#define read_textp(p, out, len, what, sql, ...) \
	read_text((p), (out), (len), (what), (sql), \
		  (int)(sizeof((const char *[]){ __VA_ARGS__ }) / \
			sizeof(const char *)), \
		  (const char *const[]){ __VA_ARGS__ })

/* Parses a text from read_text, freeing it. */
static int text_to_json(int err, char *text, size_t len, json_t **out)
{
	if (!err)
		err = fj_parse(out, text, len, "database row");
	free(text);
	return err;
}

static int read_json(struct db_pool *p, json_t **out, const char *what,
		     const char *sql, int n, const char *const *params)
{
	struct read_arg a = { out, NULL, NULL, what, sql, n, params };

	return db_tx(p, DB_AUTOCOMMIT, read_fn, &a);
}

#define read_jsonp(p, out, what, sql, ...) \
	read_json((p), (out), (what), (sql), \
		  (int)(sizeof((const char *[]){ __VA_ARGS__ }) / \
			sizeof(const char *)), \
		  (const char *const[]){ __VA_ARGS__ })

static int ensure_account(struct db_conn *c, const char *address)
{
	return db_execp(c, NULL,
			"INSERT INTO accounts (address) VALUES ($1)"
			" ON CONFLICT DO NOTHING",
			address);
}

/* Checks an id before it reaches SQL, so a malformed one is a 400 with a
 * clear message rather than a cast error. */
static int check_uuid(const char *id, const char *what)
{
	static const int dash[] = { 8, 13, 18, 23 };
	size_t n = id ? strlen(id) : 0;

	if (n != 36)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		int want_dash = 0;

		for (size_t k = 0; k < 4; k++)
			want_dash |= (int)i == dash[k];
		if (want_dash ? id[i] != '-'
			      : !((id[i] >= '0' && id[i] <= '9') ||
				  (id[i] >= 'a' && id[i] <= 'f') ||
				  (id[i] >= 'A' && id[i] <= 'F')))
			goto bad;
	}
	return FM_OK;
bad:
	return fm_error_set(FM_EINVAL, "%s: expected a UUID", what);
}

/* ---------------------------------------------------------------- tasks */

struct create_arg {
	json_t **out;
	const struct task_spec *s;
	const char *creator;
	const struct market_chain_info *chain;
};

static int create_fn(struct db_conn *c, void *arg)
{
	struct create_arg *a = arg;
	const struct task_spec *s = a->s;
	const char *validator = s->validator[0] ? s->validator : a->creator;
	char maxa[24], dur[24], exp[24], delay[24];
	char *spec = NULL;
	int err;

	snprintf(maxa, sizeof(maxa), "%lld", s->max_assignments);
	snprintf(dur, sizeof(dur), "%lld", s->assignment_duration_s);
	snprintf(exp, sizeof(exp), "%lld", s->expires_at);
	snprintf(delay, sizeof(delay), "%lld", s->auto_approval_delay_s);
	spec = json_dumps(s->doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!spec)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = ensure_account(c, a->creator);
	if (!err)
		err = ensure_account(c, validator);
	if (!err) {
		char chain_id[24];

		snprintf(chain_id, sizeof(chain_id), "%ld", a->chain->chain_id);
		err = db_execp(
			c, NULL,
			"INSERT INTO tasks (id, creator, validator, operator,"
			" escrow_address, chain_id, title, description, kind,"
			" reward_wei, max_assignments, assignment_duration_s,"
			" expires_at, validation_strategy,"
			" auto_approval_delay_s, assets_ref, spec)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
			" $11, $12, to_timestamp($13::bigint), $14, $15, $16,"
			" $17::jsonb)",
			s->task_id, a->creator, validator,
			a->chain->operator_address, a->chain->escrow_address,
			chain_id, s->title, s->description,
			task_kind_names[s->kind], s->reward_wei, maxa, dur, exp,
			validation_strategy_names[s->strategy], delay,
			s->assets, spec);
		if (err == FM_ECONFLICT)
			err = fm_error_set(FM_ECONFLICT,
					   "task %s already exists",
					   s->task_id);
	}
	if (!err)
		err = db_execp(c, NULL,
			       "INSERT INTO model_versions (task_id, version,"
			       " bundle_ref, created_by) VALUES ($1, 0, $2, $3)",
			       s->task_id, s->assets, a->creator);
	if (!err)
		err = row_jsonp(c, a->out, "task",
				"SELECT " TASK_JSON " FROM tasks t WHERE t.id = $1",
				s->task_id);
	free(spec);
	return err;
}

int market_task_create(struct db_pool *p, json_t **out,
		       const struct task_spec *s, const char *creator,
		       const struct market_chain_info *chain)
{
	struct create_arg a = { out, s, creator, chain };

	return db_tx(p, DB_READ_COMMITTED, create_fn, &a);
}

struct open_arg {
	json_t **out;
	const char *id, *tx, *wei;
};

static int open_fn(struct db_conn *c, void *arg)
{
	struct open_arg *a = arg;
	int err;

	err = db_execp(c, NULL,
		       "UPDATE tasks SET state = 'open', funding_tx = $2,"
		       " funded_wei = $3::numeric, updated_at = now()"
		       " WHERE id = $1 AND state = 'draft'",
		       a->id, a->tx, a->wei);
	if (err)
		return err;
	if (db_last_rows(c) == 0)
		return fm_error_set(FM_ECONFLICT,
				    "task %s is not a draft awaiting funding",
				    a->id);
	return row_jsonp(c, a->out, "task",
			 "SELECT " TASK_JSON " FROM tasks t WHERE t.id = $1",
			 a->id);
}

int market_task_open(struct db_pool *p, json_t **out, const char *task_id,
		     const char *funding_tx, const char *funded_wei)
{
	struct open_arg a = { out, task_id, funding_tx, funded_wei };

	return db_tx(p, DB_READ_COMMITTED, open_fn, &a);
}

int market_task_get_text(struct db_pool *p, char **out, size_t *len,
			 const char *task_id)
{
	char id[67];
	int err = spec_hash32(id, task_id, "task id");

	*out = NULL;
	if (err)
		return err;
	return read_textp(p, out, len, "task",
			  "SELECT " TASK_JSON " FROM tasks t WHERE t.id = $1",
			  id);
}

int market_task_get(struct db_pool *p, json_t **out, const char *task_id)
{
	char *text;
	size_t len = 0;
	int err = market_task_get_text(p, &text, &len, task_id);

	return text_to_json(err, text, len, out);
}

int market_task_list_text(struct db_pool *p, char **out, size_t *len,
			  const struct market_task_filter *f)
{
	char limit[16], more[16], cur_ts[24] = "", cur_id[67] = "",
					     creator[43] = "";
	const char *ts = NULL, *cid = NULL;
	int err, lim = f->limit < 1 ? 50 : f->limit > 200 ? 200 : f->limit;

	*out = NULL;
	if (f->creator) {
		err = spec_address(creator, f->creator, "creator");
		if (err)
			return err;
	}
	if (f->min_reward) {
		err = spec_wei(f->min_reward, "min_reward");
		if (err)
			return err;
	}
	if (f->cursor) {
		/* "<created_at in microseconds>.<task id>" */
		const char *dot = strchr(f->cursor, '.');
		size_t tl = dot ? (size_t)(dot - f->cursor) : 0;

		if (!dot || tl == 0 || tl >= sizeof(cur_ts) ||
		    strspn(f->cursor, "0123456789") != tl ||
		    spec_hash32(cur_id, dot + 1, "cursor"))
			return fm_error_set(FM_EINVAL,
					    "cursor: not a cursor returned "
					    "by this API");
		memcpy(cur_ts, f->cursor, tl);
		cur_ts[tl] = '\0';
		ts = cur_ts;
		cid = cur_id;
	}
	/* one row more than asked tells whether a next page exists; the page
	 * is shaped in SQL and sent as PostgreSQL wrote it */
	snprintf(limit, sizeof(limit), "%d", lim);
	snprintf(more, sizeof(more), "%d", lim + 1);
	return read_textp(
		p, out, len, "tasks",
		"SELECT json_build_object('tasks', coalesce(json_agg(x.j"
		" ORDER BY x.n) FILTER (WHERE x.n <= $8::int), '[]'::json),"
		" 'next_cursor', CASE WHEN count(*) > $8::int THEN"
		" min(x.us::text || '.' || x.id) FILTER (WHERE x.n = $8::int)"
		" END) FROM ("
		"  SELECT " TASK_JSON " AS j, t.id,"
		"   (extract(epoch FROM t.created_at) * 1000000)::bigint AS us,"
		"   row_number() OVER (ORDER BY t.created_at DESC, t.id DESC)"
		"    AS n"
		"  FROM tasks t"
		"  WHERE ($1::text IS NULL OR t.state = $1)"
		"   AND ($2::text IS NULL OR t.kind = $2)"
		"   AND ($3::text IS NULL OR t.creator = $3)"
		"   AND ($4::numeric IS NULL OR t.reward_wei >= $4::numeric)"
		"   AND ($5::bigint IS NULL OR"
		"    ((extract(epoch FROM t.created_at) * 1000000)::bigint, t.id)"
		"     < ($5::bigint, $6::text))"
		"  ORDER BY t.created_at DESC, t.id DESC LIMIT $7::int) x",
		f->state, f->kind, f->creator ? creator : NULL, f->min_reward,
		ts, cid, more, limit);
}

int market_task_list(struct db_pool *p, json_t **out,
		     const struct market_task_filter *f)
{
	char *text;
	size_t len = 0;
	int err = market_task_list_text(p, &text, &len, f);

	return text_to_json(err, text, len, out);
}

struct cancel_arg {
	json_t **out;
	const char *id, *caller;
};

static int cancel_fn(struct db_conn *c, void *arg)
{
	struct cancel_arg *a = arg;
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT creator, state FROM tasks WHERE id = $1"
		       " FOR UPDATE",
		       a->id);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ENOTFOUND, "task not found");
	else if (strcmp(db_str(r, 0, "creator", ""), a->caller) != 0)
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the task's creator can cancel it");
	else if (strcmp(db_str(r, 0, "state", ""), "draft") != 0 &&
		 strcmp(db_str(r, 0, "state", ""), "open") != 0)
		err = fm_error_set(FM_ECONFLICT,
				   "task is %s; only draft or open tasks can "
				   "be cancelled",
				   db_str(r, 0, "state", ""));
	PQclear(r);
	if (err)
		return err;
	err = db_execp(c, NULL,
		       "WITH e AS (UPDATE assignments SET state = 'abandoned',"
		       " updated_at = now() WHERE task_id = $1 AND"
		       " state = 'active' RETURNING 1)"
		       " UPDATE tasks SET state = 'cancelled',"
		       " slots_used = slots_used - (SELECT count(*) FROM e),"
		       " refund_state = CASE WHEN funded_wei IS NULL"
		       "  THEN 'none' ELSE 'queued' END,"
		       " updated_at = now() WHERE id = $1",
		       a->id);
	if (!err)
		err = row_jsonp(c, a->out, "task",
				"SELECT " TASK_JSON " FROM tasks t WHERE t.id = $1",
				a->id);
	return err;
}

int market_task_cancel(struct db_pool *p, json_t **out, const char *task_id,
		       const char *caller)
{
	char id[67];
	struct cancel_arg a = { out, id, caller };
	int err = spec_hash32(id, task_id, "task id");

	return err ? err : db_tx(p, DB_READ_COMMITTED, cancel_fn, &a);
}

/* ----------------------------------------------------------- assignments */

struct assign_arg {
	json_t **out;
	const char *task_id, *contributor;
};

/* One statement takes the slot, records the account and the assignment:
 * one round trip and one commit. The guarded UPDATE is the slot (it
 * cannot pass max_assignments); when it matches nothing, a second look
 * says why. */
static int assign_fn(struct db_conn *c, void *arg)
{
	struct assign_arg *a = arg;
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "WITH slot AS (UPDATE tasks SET slots_used ="
		       " slots_used + 1, updated_at = now() WHERE id = $1"
		       " AND state = 'open' AND expires_at > now()"
		       " AND slots_used < max_assignments AND creator <> $2"
		       " RETURNING assignment_duration_s),"
		       " acct AS (INSERT INTO accounts (address) SELECT $2"
		       " FROM slot ON CONFLICT DO NOTHING),"
		       " a AS (INSERT INTO assignments (task_id, contributor,"
		       " deadline_at) SELECT $1, $2, now() + make_interval("
		       "secs => slot.assignment_duration_s) FROM slot"
		       " RETURNING *)"
		       " SELECT " ASSIGNMENT_JSON " FROM a",
		       a->task_id, a->contributor);
	if (err == FM_ECONFLICT)
		return fm_error_set(FM_ECONFLICT, "you already hold an "
				    "assignment of this task");
	if (err)
		return err;
	if (PQntuples(r) == 1) {
		err = fj_parse(a->out, PQgetvalue(r, 0, 0),
			       (size_t)PQgetlength(r, 0, 0), "database row");
		PQclear(r);
		return err;
	}
	PQclear(r);
	err = db_execp(c, &r,
		       "SELECT state, creator, expires_at > now() AS live"
		       " FROM tasks WHERE id = $1",
		       a->task_id);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ENOTFOUND, "task not found");
	else if (!strcmp(db_str(r, 0, "creator", ""), a->contributor))
		err = fm_error_set(FM_EFORBIDDEN,
				   "a creator cannot take their own task");
	else if (strcmp(db_str(r, 0, "state", ""), "open") != 0)
		err = fm_error_set(FM_ECONFLICT, "task is %s, not open",
				   db_str(r, 0, "state", ""));
	else if (!db_bool(r, 0, "live"))
		err = fm_error_set(FM_ECONFLICT, "task has expired");
	else
		err = fm_error_set(FM_ECONFLICT,
				   "no slot left: all assignments of this "
				   "task are taken");
	PQclear(r);
	return err;
}

int market_assign(struct db_pool *p, json_t **out, const char *task_id,
		  const char *contributor)
{
	char id[67];
	struct assign_arg a = { out, id, contributor };
	int err = spec_hash32(id, task_id, "task id");

	return err ? err : db_tx(p, DB_AUTOCOMMIT, assign_fn, &a);
}

int market_assignment_get(struct db_pool *p, json_t **out, const char *id)
{
	int err = check_uuid(id, "assignment id");

	if (err)
		return err;
	return read_jsonp(p, out, "assignment",
			  "SELECT " ASSIGNMENT_JSON
			  " FROM assignments a WHERE a.id = $1::uuid",
			  id);
}

int market_assignment_list(struct db_pool *p, json_t **out,
			   const char *contributor, const char *task_id)
{
	char addr[43], tid[67];
	int err = spec_address(addr, contributor, "contributor");

	if (!err && task_id)
		err = spec_hash32(tid, task_id, "task_id");
	if (err)
		return err;
	return read_jsonp(p, out, "assignments",
			  "SELECT json_build_object('assignments',"
			  " coalesce(json_agg(" ASSIGNMENT_JSON
			  " ORDER BY a.created_at DESC), '[]'::json))"
			  " FROM assignments a WHERE a.contributor = $1"
			  " AND ($2::text IS NULL OR a.task_id = $2)",
			  addr, task_id ? tid : NULL);
}

struct live_arg {
	json_t **out;
	const char *id, *contributor;
	int abandon;
};

static int live_fn(struct db_conn *c, void *arg)
{
	struct live_arg *a = arg;
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
	if (err)
		return err;
	if (a->abandon) {
		err = db_execp(c, NULL,
			       "UPDATE assignments SET state = 'abandoned',"
			       " updated_at = now() WHERE id = $1::uuid",
			       a->id);
		if (!err)
			err = db_execp(c, NULL,
				       "UPDATE tasks SET slots_used ="
				       " slots_used - 1, updated_at = now()"
				       " WHERE id = (SELECT task_id FROM"
				       " assignments WHERE id = $1::uuid)",
				       a->id);
	} else {
		err = db_execp(c, NULL,
			       "UPDATE assignments SET heartbeat_at = now(),"
			       " updated_at = now() WHERE id = $1::uuid",
			       a->id);
	}
	if (err)
		return err;
	return row_jsonp(c, a->out, "assignment",
			 "SELECT " ASSIGNMENT_JSON
			 " FROM assignments a WHERE a.id = $1::uuid",
			 a->id);
}

static int live_op(struct db_pool *p, json_t **out, const char *id,
		   const char *contributor, int abandon)
{
	struct live_arg a = { out, id, contributor, abandon };
	int err = check_uuid(id, "assignment id");

	return err ? err : db_tx(p, DB_READ_COMMITTED, live_fn, &a);
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
	json_t **out;
	const struct market_result_in *in;
	const char *metrics, *checks;
};

static int submit_fn(struct db_conn *c, void *arg)
{
	struct submit_arg *a = arg;
	char n[24];
	int err;

	/* guarded: only the assignee, only while active and in time */
	err = db_execp(c, NULL,
		       "UPDATE assignments SET state = 'submitted',"
		       " updated_at = now() WHERE id = $1::uuid"
		       " AND contributor = $2 AND state = 'active'"
		       " AND deadline_at >= now()",
		       a->in->assignment_id, a->in->contributor);
	if (err)
		return err;
	if (db_last_rows(c) == 0) {
		PGresult *r = NULL;

		err = db_execp(c, &r,
			       "SELECT contributor, state,"
			       " deadline_at < now() AS late"
			       " FROM assignments WHERE id = $1::uuid",
			       a->in->assignment_id);
		if (err)
			return err;
		if (PQntuples(r) == 0)
			err = fm_error_set(FM_ENOTFOUND,
					   "assignment not found");
		else if (strcmp(db_str(r, 0, "contributor", ""),
				a->in->contributor))
			err = fm_error_set(FM_EFORBIDDEN,
					   "only the assignee can submit a "
					   "result");
		else if (strcmp(db_str(r, 0, "state", ""), "active"))
			err = fm_error_set(FM_ECONFLICT,
					   "assignment is %s, not active",
					   db_str(r, 0, "state", ""));
		else
			err = fm_error_set(FM_ECONFLICT,
					   "assignment has passed its "
					   "deadline");
		PQclear(r);
		return err;
	}
	snprintf(n, sizeof(n), "%lld", a->in->num_examples);
	return row_jsonp(
		c, a->out, "result",
		"WITH r AS (INSERT INTO results (assignment_id, task_id,"
		" contributor, bundle_ref, num_examples, reported_metrics,"
		" checks, auto_accept_at)"
		" SELECT a.id, a.task_id, a.contributor, $2, $3::bigint,"
		"  $4::jsonb, $5::jsonb,"
		"  CASE WHEN t.validation_strategy = 'auto' THEN now() +"
		"   make_interval(secs => t.auto_approval_delay_s) END"
		" FROM assignments a JOIN tasks t ON t.id = a.task_id"
		" WHERE a.id = $1::uuid RETURNING *)"
		" SELECT " RESULT_JSON " FROM r",
		a->in->assignment_id, a->in->bundle_ref, n, a->metrics,
		a->checks);
}

int market_result_submit(struct db_pool *p, json_t **out,
			 const struct market_result_in *in)
{
	struct submit_arg a = { out, in, NULL, NULL };
	char *metrics = NULL, *checks = NULL;
	int err = check_uuid(in->assignment_id, "assignment id");

	if (err)
		return err;
	if (strlen(in->bundle_ref) != 64 ||
	    strspn(in->bundle_ref, "0123456789abcdef") != 64)
		return fm_error_set(FM_EINVAL,
				    "bundle: expected a bundle reference "
				    "(64 lowercase hex digits)");
	if (in->num_examples < 0)
		return fm_error_set(FM_EINVAL,
				    "num_examples: expected integer >= 0");
	metrics = dump_or_empty(in->reported_metrics);
	checks = dump_or_empty(in->checks);
	a.metrics = metrics;
	a.checks = checks;
	if (!metrics || !checks)
		err = fm_error_set(FM_ENOMEM, "out of memory");
	else
		err = db_tx(p, DB_READ_COMMITTED, submit_fn, &a);
	free(metrics);
	free(checks);
	return err;
}

int market_result_get(struct db_pool *p, json_t **out, const char *id)
{
	int err = check_uuid(id, "result id");

	if (err)
		return err;
	return read_jsonp(p, out, "result",
			  "SELECT " RESULT_JSON
			  " FROM results r WHERE r.id = $1::uuid",
			  id);
}

int market_result_list(struct db_pool *p, json_t **out, const char *task_id,
		       const char *state)
{
	char tid[67];
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	return read_jsonp(p, out, "results",
			  "SELECT json_build_object('results',"
			  " coalesce(json_agg(" RESULT_JSON
			  " ORDER BY r.submitted_at), '[]'::json))"
			  " FROM results r WHERE r.task_id = $1"
			  " AND ($2::text IS NULL OR r.state = $2)",
			  tid, state);
}

/* ------------------------------------------------------------- decisions */

struct decide_arg {
	json_t **out;
	const struct market_decision_in *in;
	const char *metrics;
};

static int decide_fn(struct db_conn *c, void *arg)
{
	struct decide_arg *a = arg;
	const struct market_decision_in *in = a->in;
	const char *verdict = in->accept ? "accepted" : "rejected";
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT r.state, r.assignment_id, r.task_id,"
		       " r.contributor, t.validator, t.reward_wei::text AS"
		       " reward FROM results r JOIN tasks t ON t.id = r.task_id"
		       " WHERE r.id = $1::uuid FOR UPDATE OF r",
		       in->result_id);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ENOTFOUND, "result not found");
	else if (!in->automatic &&
		 strcmp(db_str(r, 0, "validator", ""), in->validator))
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the task's validator can decide on "
				   "its results");
	else if (strcmp(db_str(r, 0, "state", ""), "submitted"))
		err = fm_error_set(FM_ECONFLICT,
				   "result was already decided (%s)",
				   db_str(r, 0, "state", ""));
	if (err) {
		PQclear(r);
		return err;
	}
	char task_id[67], contributor[43], reward[80], validator[43];

	snprintf(task_id, sizeof(task_id), "%s", db_str(r, 0, "task_id", ""));
	snprintf(contributor, sizeof(contributor), "%s",
		 db_str(r, 0, "contributor", ""));
	snprintf(reward, sizeof(reward), "%s", db_str(r, 0, "reward", ""));
	snprintf(validator, sizeof(validator), "%s",
		 db_str(r, 0, "validator", ""));
	PQclear(r);

	err = db_execp(c, NULL,
		       "UPDATE results SET state = $2, decided_at = now()"
		       " WHERE id = $1::uuid AND state = 'submitted'",
		       in->result_id, verdict);
	if (!err && db_last_rows(c) != 1)
		err = fm_error_set(FM_ECONFLICT, "result was already decided");
	if (!err)
		err = db_execp(c, NULL,
			       "INSERT INTO decisions (result_id, validator,"
			       " decision, reason, metrics, automatic)"
			       " VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6)",
			       in->result_id, validator,
			       in->accept ? "accept" : "reject", in->reason,
			       a->metrics, in->automatic ? "true" : "false");
	if (!err)
		err = db_execp(c, NULL,
			       "UPDATE assignments SET state = $2,"
			       " updated_at = now() WHERE id = (SELECT"
			       " assignment_id FROM results WHERE id = $1::uuid)"
			       " AND state = 'submitted'",
			       in->result_id, verdict);
	if (err)
		return err;
	if (in->accept) {
		/* the outbox row: written with the accept, paid by the
		 * worker */
		err = db_execp(c, NULL,
			       "INSERT INTO payouts (result_id, task_id,"
			       " contributor, amount_wei)"
			       " VALUES ($1::uuid, $2, $3, $4::numeric)",
			       in->result_id, task_id, contributor, reward);
		if (!err)
			err = db_execp(c, NULL,
				       "UPDATE tasks SET state = 'closed',"
				       " updated_at = now() WHERE id = $1"
				       " AND state = 'open' AND max_assignments"
				       " <= (SELECT count(*) FROM assignments"
				       "  WHERE task_id = $1 AND state ="
				       "  'accepted')",
				       task_id);
	} else {
		/* a rejected assignment frees its slot */
		err = db_execp(c, NULL,
			       "UPDATE tasks SET slots_used = slots_used - 1,"
			       " updated_at = now() WHERE id = $1",
			       task_id);
	}
	if (err)
		return err;
	return row_jsonp(c, a->out, "result",
			 "SELECT " RESULT_JSON
			 " FROM results r WHERE r.id = $1::uuid",
			 in->result_id);
}

int market_decide(struct db_pool *p, json_t **out,
		  const struct market_decision_in *in)
{
	struct decide_arg a = { out, in, NULL };
	char *metrics = NULL;
	int err = check_uuid(in->result_id, "result id");

	if (err)
		return err;
	if (!in->accept && (!in->reason || !in->reason[0]))
		return fm_error_set(FM_EINVAL,
				    "reason: required to reject a result");
	if (in->reason && strlen(in->reason) > 2000)
		return fm_error_set(FM_EINVAL,
				    "reason: expected at most 2000 bytes");
	metrics = dump_or_empty(in->metrics);
	if (!metrics)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a.metrics = metrics;
	err = db_tx(p, DB_READ_COMMITTED, decide_fn, &a);
	free(metrics);
	return err;
}

/* ---------------------------------------------------------------- models */

struct publish_arg {
	json_t **out;
	const char *task_id, *caller, *bundle_ref, *rule, *metrics;
	const json_t *result_ids;
};

static int publish_fn(struct db_conn *c, void *arg)
{
	struct publish_arg *a = arg;
	PGresult *r = NULL;
	char version[24];
	size_t i;
	json_t *id;
	int err;

	err = db_execp(c, &r,
		       "SELECT creator, validator, current_version FROM tasks"
		       " WHERE id = $1 FOR UPDATE",
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
	if (!err)
		snprintf(version, sizeof(version), "%lld",
			 db_int(r, 0, "current_version", 0) + 1);
	PQclear(r);
	if (err)
		return err;
	err = db_execp(c, NULL,
		       "INSERT INTO model_versions (task_id, version,"
		       " bundle_ref, rule, metrics, created_by)"
		       " VALUES ($1, $2::int, $3, $4, $5::jsonb, $6)",
		       a->task_id, version, a->bundle_ref, a->rule, a->metrics,
		       a->caller);
	json_array_foreach(a->result_ids, i, id) {
		if (err)
			break;
		if (!json_is_string(id) ||
		    check_uuid(json_string_value(id), "results[]")) {
			err = fm_error_set(FM_EINVAL,
					   "results[%zu]: expected a result "
					   "id",
					   i);
			break;
		}
		err = db_execp(c, NULL,
			       "INSERT INTO model_version_results (task_id,"
			       " version, result_id) SELECT $1::text, $2::int,"
			       " r.id FROM results r WHERE r.id = $3::uuid AND"
			       " r.task_id = $1::text AND r.state = 'accepted'",
			       a->task_id, version, json_string_value(id));
		if (!err && db_last_rows(c) != 1)
			err = fm_error_set(FM_ECONFLICT,
					   "results[%zu]: %s is not an "
					   "accepted result of this task",
					   i, json_string_value(id));
		else if (err == FM_ECONFLICT)
			err = fm_error_set(FM_ECONFLICT,
					   "results[%zu]: %s is already part "
					   "of an earlier version",
					   i, json_string_value(id));
	}
	if (!err)
		err = db_execp(c, NULL,
			       "UPDATE tasks SET current_version = $2::int,"
			       " updated_at = now() WHERE id = $1",
			       a->task_id, version);
	if (!err)
		err = row_jsonp(c, a->out, "model version",
				"SELECT " MODEL_JSON " FROM model_versions m"
				" WHERE m.task_id = $1 AND m.version = $2::int",
				a->task_id, version);
	return err;
}

int market_model_publish(struct db_pool *p, json_t **out, const char *task_id,
			 const char *caller, const char *bundle_ref,
			 const char *rule, const json_t *metrics,
			 const json_t *result_ids)
{
	char tid[67];
	char *m = NULL;
	struct publish_arg a = { out, tid, caller, bundle_ref, rule, NULL,
				 result_ids };
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	if (!bundle_ref || strlen(bundle_ref) != 64 ||
	    strspn(bundle_ref, "0123456789abcdef") != 64)
		return fm_error_set(FM_EINVAL,
				    "bundle: expected a bundle reference (64 "
				    "lowercase hex digits)");
	if (!json_is_array(result_ids) || json_array_size(result_ids) == 0 ||
	    json_array_size(result_ids) > 100000)
		return fm_error_set(FM_EINVAL,
				    "results: expected a non-empty array of "
				    "result ids");
	m = dump_or_empty(metrics);
	if (!m)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a.metrics = m;
	err = db_tx(p, DB_READ_COMMITTED, publish_fn, &a);
	free(m);
	return err;
}

int market_model_list(struct db_pool *p, json_t **out, const char *task_id)
{
	char tid[67];
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	return read_jsonp(p, out, "models",
			  "SELECT json_build_object('models', coalesce("
			  "json_agg(" MODEL_JSON " ORDER BY m.version),"
			  " '[]'::json)) FROM model_versions m"
			  " WHERE m.task_id = $1",
			  tid);
}

int market_payout_list(struct db_pool *p, json_t **out,
		       const char *contributor, const char *task_id)
{
	char addr[43], tid[67];
	int err = FM_OK;

	if (contributor)
		err = spec_address(addr, contributor, "contributor");
	if (!err && task_id)
		err = spec_hash32(tid, task_id, "task_id");
	if (err)
		return err;
	return read_jsonp(p, out, "payouts",
			  "SELECT json_build_object('payouts', coalesce("
			  "json_agg(" PAYOUT_JSON " ORDER BY y.id DESC),"
			  " '[]'::json)) FROM payouts y"
			  " WHERE ($1::text IS NULL OR y.contributor = $1)"
			  " AND ($2::text IS NULL OR y.task_id = $2)",
			  contributor ? addr : NULL, task_id ? tid : NULL);
}

/* ---------------------------------------------------------- housekeeping */

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
	*n = 0;
	return db_tx(p, DB_READ_COMMITTED, expire_assignments_fn, n);
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

	if (!err)
		*n = (int)db_last_rows(c);
	return err;
}

int market_expire_tasks(struct db_pool *p, int *n)
{
	*n = 0;
	return db_tx(p, DB_READ_COMMITTED, expire_tasks_fn, n);
}

static int due_fn(struct db_conn *c, void *arg)
{
	json_t **ids = arg;
	PGresult *r = NULL;
	int err = db_exec(c, &r,
			  "SELECT r.id FROM results r WHERE r.state ="
			  " 'submitted' AND r.auto_accept_at <= now()"
			  " ORDER BY r.auto_accept_at LIMIT 500",
			  0, NULL);

	if (err)
		return err;
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(*ids, json_string(PQgetvalue(r, i, 0)));
	PQclear(r);
	return FM_OK;
}

int market_auto_accept(struct db_pool *p, int *n)
{
	json_t *ids = json_array();
	size_t i;
	json_t *id;
	int err;

	*n = 0;
	if (!ids)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = db_tx(p, DB_READ_COMMITTED, due_fn, &ids);
	json_array_foreach(ids, i, id) {
		struct market_decision_in in = {
			.result_id = json_string_value(id),
			.validator = "",
			.accept = 1,
			.reason = "auto-approved after the integrity checks",
			.automatic = 1,
		};
		json_t *res = NULL;

		if (err)
			break;
		err = market_decide(p, &res, &in);
		if (err == FM_ECONFLICT) /* decided meanwhile */
			err = FM_OK;
		else if (!err)
			(*n)++;
		json_decref(res);
	}
	json_decref(ids);
	return err;
}

struct nonce_arg {
	const char *address, *nonce;
	char max_age[24];
};

static int nonce_fn(struct db_conn *c, void *arg)
{
	struct nonce_arg *a = arg;
	int err;

	/* Committed without waiting for the disk: whatever the request
	 * then changes commits later in the same log, and waiting for that
	 * makes the nonce durable too; a crash before it loses a nonce
	 * whose request had no effect. One fsync per request, not two. */
	err = db_execp(c, NULL,
		       "WITH async AS (SELECT set_config("
		       "'synchronous_commit', 'off', true))"
		       " INSERT INTO request_nonces (address, nonce)"
		       " SELECT $1, $2 FROM async ON CONFLICT DO NOTHING",
		       a->address, a->nonce);
	if (err)
		return err;
	if (db_last_rows(c) == 0)
		return fm_error_set(FM_EAUTH,
				    "request nonce was already used (replay)");
	/* prune now and then; nonces older than the skew cannot replay */
	if (rand() % 256 == 0)
		err = db_execp(c, NULL,
			       "DELETE FROM request_nonces WHERE seen_at <"
			       " now() - make_interval(secs => $1::int)",
			       a->max_age);
	return err;
}

int market_nonce_use(struct db_pool *p, const char *address,
		     const char *nonce, long max_age_s)
{
	struct nonce_arg a = { address, nonce, "" };

	snprintf(a.max_age, sizeof(a.max_age), "%ld", max_age_s * 2);
	if (!nonce || strlen(nonce) < 16 || strlen(nonce) > 128)
		return fm_error_set(FM_EAUTH,
				    "request nonce must be 16 to 128 "
				    "characters");
	return db_tx(p, DB_AUTOCOMMIT, nonce_fn, &a);
}
