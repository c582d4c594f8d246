/* What the market files share: the API's JSON shapes, built in SQL so
 * that one statement reads and shapes a row, and the helpers that run
 * such statements. Private to services/lib/market. */
#ifndef FM_MARKET_MARKET_INT_H
#define FM_MARKET_MARKET_INT_H

#include "db/db.h"

#include <jansson.h>
#include <stddef.h>

/* Counts of round k of task t: its active assignments, its results by
 * state, and the accepted results no version holds yet (pending: of the
 * round in sync mode, of any round in async mode). */
#define ROUND_COUNTS \
	"(SELECT (SELECT count(*) FROM assignments a WHERE a.task_id =" \
	"  k.task_id AND a.round = k.round AND a.state = 'active') AS active," \
	"  count(*) FILTER (WHERE r.state = 'submitted') AS submitted," \
	"  count(*) FILTER (WHERE r.state = 'accepted') AS accepted," \
	"  count(*) FILTER (WHERE r.state = 'rejected') AS rejected," \
	"  (SELECT count(*) FROM results p WHERE p.task_id = k.task_id" \
	"   AND p.state = 'accepted' AND (t.agg_mode = 'async' OR" \
	"   p.round = k.round) AND NOT EXISTS (SELECT 1 FROM" \
	"   model_version_results v WHERE v.result_id = p.id)) AS pending" \
	"  FROM results r WHERE r.task_id = k.task_id AND r.round = k.round)"

/* Whether the validator should publish round k (counts n) now. */
#define ROUND_READY \
	"(k.state IN ('open', 'closing') AND CASE WHEN t.agg_mode = 'sync'" \
	" THEN k.state = 'closing' OR n.accepted >= t.max_assignments OR" \
	"  (n.accepted + n.rejected >= t.max_assignments AND" \
	"   n.accepted >= t.min_results)" \
	" ELSE n.pending >= t.async_buffer OR (k.state = 'closing' AND" \
	"  n.pending >= t.min_results) END)"

/* The current round of task t with its counts; NULL for drafts. */
#define ROUND_NOW_JSON \
	"(SELECT json_build_object('round', k.round, 'state', k.state," \
	"  'opened_at', fm_ts(k.opened_at)," \
	"  'deadline_at', fm_ts(k.deadline_at), 'extended', k.extended," \
	"  'active', n.active, 'submitted', n.submitted," \
	"  'accepted', n.accepted, 'rejected', n.rejected," \
	"  'pending', n.pending, 'ready', " ROUND_READY ")" \
	" FROM task_rounds k CROSS JOIN LATERAL " ROUND_COUNTS " n" \
	" WHERE k.task_id = t.id AND k.round = t.current_round)"

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
	" 'updated_at', fm_ts(t.updated_at), 'spec', t.spec," \
	" 'rounds', t.rounds, 'round_duration_s', t.round_duration_s," \
	" 'results_per_round', t.max_assignments," \
	" 'min_results_per_round', t.min_results," \
	" 'target_accuracy', t.target_accuracy," \
	" 'aggregation_mode', t.agg_mode, 'current_round', t.current_round," \
	" 'end_reason', t.end_reason, 'epsilon', t.epsilon," \
	" 'round', " ROUND_NOW_JSON ")"

#define ASSIGNMENT_JSON \
	"json_build_object('id', a.id, 'task_id', a.task_id," \
	" 'contributor', a.contributor, 'state', a.state," \
	" 'round', a.round, 'created_at', fm_ts(a.created_at)," \
	" 'deadline_at', fm_ts(a.deadline_at)," \
	" 'heartbeat_at', fm_ts(a.heartbeat_at)," \
	" 'updated_at', fm_ts(a.updated_at))"

#define RESULT_JSON \
	"json_build_object('id', r.id, 'assignment_id', r.assignment_id," \
	" 'task_id', r.task_id, 'contributor', r.contributor," \
	" 'bundle_ref', r.bundle_ref, 'num_examples', r.num_examples," \
	" 'reported_metrics', r.reported_metrics, 'checks', r.checks," \
	" 'state', r.state, 'round', r.round," \
	" 'base_version', r.base_version," \
	" 'submitted_at', fm_ts(r.submitted_at)," \
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
	" 'confirmed_at', fm_ts(y.confirmed_at), 'round', y.round," \
	" 'report', substr(y.report_hash, 3), 'score', y.score)"

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

/* Ends task_id, which the caller locked: closed for reason (an
 * end_reason), live assignments expire, results still waiting for a
 * decision are rejected ("the task ended (reason)"), and the refund is
 * queued when the funding exceeds the task's payouts. The round rows are
 * the caller's. */
int mkt_task_end(struct db_conn *c, const char *task_id, const char *reason);

/* JSON text of an optional object: "{}" when absent. Free with free(). */
char *mkt_dump_or_empty(const json_t *o);
int mkt_ensure_account(struct db_conn *c, const char *address);
/* Checks an id before it reaches SQL, so a malformed one is a 400 with a
 * clear message rather than a cast error. */
int mkt_check_uuid(const char *id, const char *what);
/* A bundle reference: 64 lowercase hex digits. */
int mkt_bundle_ref_ok(const char *ref);

#endif
