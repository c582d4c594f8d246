/* Tasks: posting (draft), opening once funded, reading, listing by
 * pages, cancelling. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct create_arg {
	json_t *result;
	const struct task_spec *s;
	const char *creator;
	const struct market_chain_info *chain;
	const char *spec; /* the spec document as stored */
	long max_drafts;  /* 0: no limit */
};

/* The creator's drafts stay under max_drafts: counted under a lock on
 * the creator, so concurrent posts cannot both take the last one. */
static int drafts_room(struct db_conn *c, const struct create_arg *a)
{
	PGresult *r = NULL;
	long long n;
	int err;

	if (a->max_drafts <= 0)
		return FM_OK;
	err = db_execp(c, NULL,
		       "SELECT pg_advisory_xact_lock(hashtext('drafts ' ||"
		       " $1))", a->creator);
	if (err)
		return err;
	err = db_execp(c, &r,
		       "SELECT count(*) AS n FROM tasks WHERE creator = $1"
		       " AND state = 'draft'", a->creator);
	if (err)
		return err;
	n = db_int(r, 0, "n", 0);
	PQclear(r);
	if (n >= a->max_drafts)
		return fm_error_set(FM_ECONFLICT,
				    "%s has %lld unfunded drafts, the most "
				    "allowed (max_drafts_per_creator): fund "
				    "or cancel one first", a->creator, n);
	return FM_OK;
}

/* The round settings of s as text for SQL: target_accuracy is NULL
 * (none) when absent, the async ones keep their defaults in sync mode. */
struct round_cols {
	char rounds[24], dur[24], min[24], target[32], buffer[24],
		staleness[24];
};

static void round_cols(struct round_cols *o, const struct task_spec *s)
{
	snprintf(o->rounds, sizeof(o->rounds), "%lld", s->rounds);
	snprintf(o->dur, sizeof(o->dur), "%lld", s->round_duration_s);
	snprintf(o->min, sizeof(o->min), "%lld", s->min_results_per_round);
	snprintf(o->target, sizeof(o->target), "%.17g", s->target_accuracy);
	snprintf(o->buffer, sizeof(o->buffer), "%lld",
		 s->async ? s->async_buffer : 1);
	snprintf(o->staleness, sizeof(o->staleness), "%lld",
		 s->async ? s->max_staleness : 0);
}

static int insert_task(struct db_conn *c, const struct create_arg *a,
		       const char *validator)
{
	const struct task_spec *s = a->s;
	struct round_cols rc;
	char maxa[24], dur[24], exp[24], delay[24], chain_id[24];
	int err;

	snprintf(maxa, sizeof(maxa), "%lld", s->max_assignments);
	snprintf(dur, sizeof(dur), "%lld", s->assignment_duration_s);
	snprintf(exp, sizeof(exp), "%lld", s->expires_at);
	snprintf(delay, sizeof(delay), "%lld", s->auto_approval_delay_s);
	snprintf(chain_id, sizeof(chain_id), "%ld", a->chain->chain_id);
	round_cols(&rc, s);
	err = db_execp(c, NULL,
		       "INSERT INTO tasks (id, creator, validator, operator,"
		       " escrow_address, chain_id, title, description, kind,"
		       " reward_wei, max_assignments, assignment_duration_s,"
		       " expires_at, validation_strategy,"
		       " auto_approval_delay_s, assets_ref, spec, rounds,"
		       " round_duration_s, min_results, target_accuracy,"
		       " agg_mode, async_buffer, max_staleness)"
		       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
		       " $11, $12, to_timestamp($13::bigint), $14, $15, $16,"
		       " $17::jsonb, $18::int, $19::int, $20::int,"
		       " CASE WHEN $21::float8 > 0 THEN $21::float8 END, $22,"
		       " $23::int, $24::int)",
		       s->task_id, a->creator, validator,
		       a->chain->operator_address, a->chain->escrow_address,
		       chain_id, s->title, s->description,
		       task_kind_names[s->kind], s->reward_wei, maxa, dur, exp,
		       validation_strategy_names[s->strategy], delay, s->assets,
		       a->spec, rc.rounds, rc.dur, rc.min, rc.target,
		       s->async ? "async" : "sync", rc.buffer, rc.staleness);
	if (err == FM_ECONFLICT)
		return fm_error_set(FM_ECONFLICT, "task %s already exists",
				    s->task_id);
	return err;
}

static int create_fn(struct db_conn *c, void *arg)
{
	struct create_arg *a = arg;
	const struct task_spec *s = a->s;
	const char *validator = s->validator[0] ? s->validator : a->creator;
	int err;

	err = mkt_ensure_account(c, a->creator);
	if (err)
		return err;
	err = drafts_room(c, a);
	if (err)
		return err;
	err = mkt_ensure_account(c, validator);
	if (err)
		return err;
	err = insert_task(c, a, validator);
	if (err)
		return err;
	err = db_execp(c, NULL,
		       "INSERT INTO model_versions (task_id, version,"
		       " bundle_ref, created_by) VALUES ($1, 0, $2, $3)",
		       s->task_id, s->assets, a->creator);
	if (err)
		return err;
	return mkt_row_json(c, &a->result, "task", TASK_BY_ID,
			    DB_ARGS(s->task_id));
}

int market_task_create(struct db_pool *p, json_t **out,
		       const struct task_spec *s, const char *creator,
		       const struct market_chain_info *chain)
{
	return market_task_create_limited(p, out, s, creator, chain, 0);
}

int market_task_create_limited(struct db_pool *p, json_t **out,
			       const struct task_spec *s, const char *creator,
			       const struct market_chain_info *chain,
			       long max_drafts)
{
	struct create_arg a = { NULL, s, creator, chain, NULL, max_drafts };
	char *spec = json_dumps(s->doc, JSON_COMPACT | JSON_SORT_KEYS);
	int err;

	if (!spec)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a.spec = spec;
	err = mkt_tx_json(p, DB_READ_COMMITTED, create_fn, &a, out);
	free(spec);
	return err;
}

struct open_arg {
	json_t *result;
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
	return mkt_row_json(c, &a->result, "task", TASK_BY_ID, DB_ARGS(a->id));
}

int market_task_open(struct db_pool *p, json_t **out, const char *task_id,
		     const char *funding_tx, const char *funded_wei)
{
	struct open_arg a = { NULL, task_id, funding_tx, funded_wei };

	return mkt_tx_json(p, DB_READ_COMMITTED, open_fn, &a, out);
}

int market_task_get_text(struct db_pool *p, char **out, size_t *len,
			 const char *task_id)
{
	char id[67];
	int err = spec_hash32(id, task_id, "task id");

	*out = NULL;
	if (err)
		return err;
	return mkt_read_text(p, out, len, "task", TASK_BY_ID, DB_ARGS(id));
}

int market_task_get(struct db_pool *p, json_t **out, const char *task_id)
{
	char *text;
	size_t len = 0;
	int err = market_task_get_text(p, &text, &len, task_id);

	return mkt_text_to_json(err, text, len, out);
}

/* "<created_at in microseconds>.<task id>" into its halves (ts 24 bytes,
 * id 67 bytes). */
static int parse_cursor(char *ts, char *id, const char *cursor)
{
	const char *dot = strchr(cursor, '.');
	size_t tl = dot ? (size_t)(dot - cursor) : 0;

	if (!dot || tl == 0 || tl >= 24 ||
	    strspn(cursor, "0123456789") != tl ||
	    spec_hash32(id, dot + 1, "cursor"))
		return fm_error_set(FM_EINVAL, "cursor: not a cursor returned "
				    "by this API");
	memcpy(ts, cursor, tl);
	ts[tl] = '\0';
	return FM_OK;
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
		err = parse_cursor(cur_ts, cur_id, f->cursor);
		if (err)
			return err;
		ts = cur_ts;
		cid = cur_id;
	}
	/* one row more than asked tells whether a next page exists; the page
	 * is shaped in SQL and sent as PostgreSQL wrote it */
	snprintf(limit, sizeof(limit), "%d", lim);
	snprintf(more, sizeof(more), "%d", lim + 1);
	return mkt_read_text(
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
		DB_ARGS(f->state, f->kind, f->creator ? creator : NULL,
			f->min_reward, ts, cid, more, limit));
}

int market_task_list(struct db_pool *p, json_t **out,
		     const struct market_task_filter *f)
{
	char *text;
	size_t len = 0;
	int err = market_task_list_text(p, &text, &len, f);

	return mkt_text_to_json(err, text, len, out);
}

struct cancel_arg {
	json_t *result;
	const char *id, *caller;
};

/* Who may cancel, and when: the creator, while draft or open. */
static int cancel_allowed(struct db_conn *c, const struct cancel_arg *a)
{
	PGresult *r = NULL;
	const char *state;
	int err;

	err = db_execp(c, &r,
		       "SELECT creator, state FROM tasks WHERE id = $1"
		       " FOR UPDATE",
		       a->id);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		err = fm_error_set(FM_ENOTFOUND, "task not found");
		goto done;
	}
	if (strcmp(db_str(r, 0, "creator", ""), a->caller) != 0) {
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the task's creator can cancel it");
		goto done;
	}
	state = db_str(r, 0, "state", "");
	if (strcmp(state, "draft") != 0 && strcmp(state, "open") != 0)
		err = fm_error_set(FM_ECONFLICT,
				   "task is %s; only draft or open tasks can "
				   "be cancelled",
				   state);
done:
	PQclear(r);
	return err;
}

static int cancel_fn(struct db_conn *c, void *arg)
{
	struct cancel_arg *a = arg;
	int err;

	err = cancel_allowed(c, a);
	if (err)
		return err;
	/* results still waiting for a decision are rejected with the
	 * cancel, so none stays submitted (and unpaid) for ever; their
	 * assignments and the active ones give their slots back */
	err = db_execp(c, NULL,
		       "WITH w AS (UPDATE results SET state = 'rejected',"
		       " decided_at = now() WHERE task_id = $1 AND"
		       " state = 'submitted' RETURNING id, assignment_id),"
		       " d AS (INSERT INTO decisions (result_id, validator,"
		       " decision, reason, automatic) SELECT w.id, $2,"
		       " 'reject', 'task cancelled', true FROM w),"
		       " r AS (UPDATE assignments SET state = 'rejected',"
		       " updated_at = now() WHERE id IN (SELECT assignment_id"
		       " FROM w) AND state = 'submitted' RETURNING 1),"
		       " e AS (UPDATE assignments SET state = 'abandoned',"
		       " updated_at = now() WHERE task_id = $1 AND"
		       " state = 'active' RETURNING 1),"
		       " k AS (UPDATE task_rounds SET state = 'failed',"
		       " closed_at = now() WHERE task_id = $1 AND state IN"
		       " ('open', 'closing') RETURNING 1)"
		       " UPDATE tasks SET state = 'cancelled',"
		       " end_reason = 'cancelled',"
		       " slots_used = slots_used - (SELECT count(*) FROM e)"
		       " - (SELECT count(*) FROM r),"
		       " refund_state = CASE WHEN funded_wei IS NULL"
		       "  THEN 'none' ELSE 'queued' END,"
		       " updated_at = now() WHERE id = $1",
		       a->id, a->caller);
	if (err)
		return err;
	return mkt_row_json(c, &a->result, "task", TASK_BY_ID, DB_ARGS(a->id));
}

int market_task_cancel(struct db_pool *p, json_t **out, const char *task_id,
		       const char *caller)
{
	char id[67];
	struct cancel_arg a = { NULL, id, caller };
	int err = spec_hash32(id, task_id, "task id");

	if (err)
		return err;
	return mkt_tx_json(p, DB_READ_COMMITTED, cancel_fn, &a, out);
}
