/* What the market files share: the API's JSON shapes, built in SQL so
 * that one statement reads and shapes a row, and the helpers that run
 * such statements. Private to services/lib/market. */
#ifndef FM_MARKET_MARKET_INT_H
#define FM_MARKET_MARKET_INT_H

#include "db/db.h"

#include <jansson.h>
#include <stddef.h>

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

/* One row of the tasks table as the API shows it. */
#define TASK_BY_ID "SELECT " TASK_JSON " FROM tasks t WHERE t.id = $1"

/* A transaction whose answer is one JSON object. The argument struct of
 * its callback starts with `json_t *result`, which the callback sets;
 * the object reaches *out only once the transaction committed, and an
 * attempt that did not commit has its result dropped (C places a
 * struct's first member at the struct's own address). */
int mkt_tx_json(struct db_pool *p, enum db_isolation iso, db_tx_fn fn,
		void *arg, json_t **out);

/* Runs sql into *r; a query with no row is FM_ENOTFOUND naming what. */
int mkt_row_first(struct db_conn *c, PGresult **r, const char *what,
		  const char *sql, int n, const char *const *params);
/* Runs sql and parses column 0 of row 0 as JSON into *out. */
int mkt_row_json(struct db_conn *c, json_t **out, const char *what,
		 const char *sql, int n, const char *const *params);

/* One read-only statement on a pooled connection, its own snapshot (no
 * BEGIN/COMMIT round trips): column 0 of row 0 parsed into *out, or
 * copied as malloc'd text of *len bytes, for answers passed on as the
 * database shaped them. */
int mkt_read_json(struct db_pool *p, json_t **out, const char *what,
		  const char *sql, int n, const char *const *params);
int mkt_read_text(struct db_pool *p, char **out, size_t *len,
		  const char *what, const char *sql, int n,
		  const char *const *params);
/* Parses a text from mkt_read_text (when err is FM_OK), freeing it. */
int mkt_text_to_json(int err, char *text, size_t len, json_t **out);

/* JSON text of an optional object: "{}" when absent. Free with free(). */
char *mkt_dump_or_empty(const json_t *o);
int mkt_ensure_account(struct db_conn *c, const char *address);
/* Checks an id before it reaches SQL, so a malformed one is a 400 with a
 * clear message rather than a cast error. */
int mkt_check_uuid(const char *id, const char *what);
/* A bundle reference: 64 lowercase hex digits. */
int mkt_bundle_ref_ok(const char *ref);

#endif
