/* The marketplace's state machine on PostgreSQL: tasks, assignments,
 * results, decisions, model versions and payouts. Every transition is one
 * transaction guarded by the current state (UPDATE ... WHERE state = x),
 * so concurrent requests cannot over-assign, double-decide or double-pay.
 * Objects come back as JSON in the API's shape (schema/openapi.yaml);
 * *out is a new reference owned by the caller. */
#ifndef FM_MARKET_MARKET_H
#define FM_MARKET_MARKET_H

#include "db/db.h"
#include "market/spec.h"

#include <jansson.h>

struct market_chain_info {
	const char *operator_address;
	const char *escrow_address;
	long chain_id;
};

/* Records a task from a checked spec in state "draft", with model version
 * 0 = the assets bundle. FM_ECONFLICT when the task id exists. */
int market_task_create(struct db_pool *p, json_t **out,
		       const struct task_spec *s, const char *creator,
		       const struct market_chain_info *chain);
/* The same, refusing (FM_ECONFLICT) a creator who holds max_drafts
 * drafts already (0: no limit). */
int market_task_create_limited(struct db_pool *p, json_t **out,
			       const struct task_spec *s, const char *creator,
			       const struct market_chain_info *chain,
			       long max_drafts);
/* draft -> open once the escrow funding was verified on chain. */
int market_task_open(struct db_pool *p, json_t **out, const char *task_id,
		     const char *funding_tx, const char *funded_wei);
int market_task_get(struct db_pool *p, json_t **out, const char *task_id);
/* The same as JSON text (malloc'd, *len bytes), for answering without
 * parsing and printing it again. */
int market_task_get_text(struct db_pool *p, char **out, size_t *len,
			 const char *task_id);
/* {"rounds": [...]}: every round of a task so far, with its counts, its
 * payouts and its version's figures. */
int market_round_list_text(struct db_pool *p, char **out, size_t *len,
			   const char *task_id);
int market_round_list(struct db_pool *p, json_t **out, const char *task_id);

struct market_task_filter {
	const char *state;      /* NULL: any */
	const char *kind;       /* NULL: any */
	const char *creator;    /* NULL: any */
	const char *min_reward; /* decimal wei, NULL: any */
	const char *cursor;     /* from a previous page's next_cursor */
	int limit;              /* 1..200 */
};
/* {"tasks":[...], "next_cursor": "..." | null}, newest first. */
int market_task_list(struct db_pool *p, json_t **out,
		     const struct market_task_filter *f);
int market_task_list_text(struct db_pool *p, char **out, size_t *len,
			  const struct market_task_filter *f);
/* By the creator only: draft/open -> cancelled; live assignments are
 * abandoned and results still waiting for a decision are rejected ("task
 * cancelled"), in the same transaction. */
int market_task_cancel(struct db_pool *p, json_t **out, const char *task_id,
		       const char *caller);

/* Takes a slot of the task's current round. Refuses: task not open or
 * expired (409), the round closing (409), no slot left in the round
 * (409), the creator (403), a second live assignment in the round
 * (409). */
int market_assign(struct db_pool *p, json_t **out, const char *task_id,
		  const char *contributor);
int market_assignment_get(struct db_pool *p, json_t **out, const char *id);
/* {"assignments":[...]} of one contributor, optionally one task. */
int market_assignment_list(struct db_pool *p, json_t **out,
			   const char *contributor, const char *task_id);
int market_heartbeat(struct db_pool *p, json_t **out, const char *id,
		     const char *contributor);
int market_abandon(struct db_pool *p, json_t **out, const char *id,
		   const char *contributor);

struct market_result_in {
	const char *assignment_id;
	const char *contributor;
	const char *bundle_ref;
	long long num_examples;
	const json_t *reported_metrics; /* object or NULL */
	const json_t *checks;           /* what the service verified */
	int has_base_version;  /* 0: the version before the assignment's
				* round */
	long long base_version; /* the version it trained from */
};
/* Claims the active assignment in->assignment_id of in->contributor for
 * one submission, for lease_s seconds, before anything is downloaded;
 * *task (new reference) is its task. Refuses: no such assignment (404),
 * another's (403), not active or past its deadline (409), a result
 * trained from a version the task no longer takes (409), and a
 * submission already being checked (409; *retry_s, may be NULL, is the
 * seconds its claim has left). */
int market_submit_claim(struct db_pool *p, json_t **task,
			const struct market_result_in *in, long lease_s,
			long long *retry_s);
/* Ends a claim, once the submission was recorded or refused. */
void market_submit_release(struct db_pool *p, const char *assignment_id);
/* active -> submitted, with the result row, in one transaction. sync
 * tasks take results trained from the current version only; async ones
 * from a version at most max_staleness versions old (409 otherwise). */
int market_result_submit(struct db_pool *p, json_t **out,
			 const struct market_result_in *in);
int market_result_get(struct db_pool *p, json_t **out, const char *id);
/* {"results":[...]}; state may be NULL. */
int market_result_list(struct db_pool *p, json_t **out, const char *task_id,
		       const char *state);

struct market_decision_in {
	const char *result_id;
	const char *validator; /* the caller; must be the task's validator */
	int accept;
	const char *reason; /* required to reject */
	const json_t *metrics;
	int automatic; /* the auto strategy, not a person */
};
/* submitted -> accepted | rejected, the decision row, the assignment's
 * state, and for an accept the payout row: one transaction. A second
 * decision on one result is FM_ECONFLICT, and so is an accept past the
 * task's rounds x results_per_round payouts. The accept that fills the
 * last round ends the task (rounds_done). */
int market_decide(struct db_pool *p, json_t **out,
		  const struct market_decision_in *in);

/* Publishes version N+1 (N = the current version), the aggregate of
 * round N+1: sync tasks list accepted results of that round, async ones
 * accepted results in no version. By the task's validator or creator.
 * In the same transaction: the round is published with its epsilon (dp
 * tasks), the round's undecided results are rejected (sync), and the
 * task either ends (its last round, target_accuracy reached, or the
 * privacy budget spent) or opens round N+2. A second publisher of the
 * same version gets FM_ECONFLICT "version N+1 was already published". */
int market_model_publish(struct db_pool *p, json_t **out, const char *task_id,
			 const char *caller, const char *bundle_ref,
			 const char *rule, const json_t *metrics,
			 const json_t *result_ids);
/* As market_model_publish, for a task paying by contribution: report
 * (the round's scoring report, market/score_report.h, stored as blob
 * report_ref) is checked against the round and fixes each accepted
 * result's payout in the same transaction. A task paying a flat reward
 * takes no report; one paying by contribution requires it, and every
 * accepted result of a sync round in the version. */
int market_model_publish_scored(struct db_pool *p, json_t **out,
				const char *task_id, const char *caller,
				const char *bundle_ref, const char *rule,
				const json_t *metrics, const json_t *result_ids,
				const json_t *report, const char *report_ref);
/* {"models":[{version, bundle_ref, results:[...], ...}]} */
int market_model_list(struct db_pool *p, json_t **out, const char *task_id);

/* {"payouts":[...]} filtered by contributor and/or task (NULL = any). */
int market_payout_list(struct db_pool *p, json_t **out,
		       const char *contributor, const char *task_id);

/* Housekeeping; each returns how many rows it changed in *n. */
int market_expire_assignments(struct db_pool *p, int *n);
int market_expire_tasks(struct db_pool *p, int *n);
/* Drafts still unfunded ttl_s after they were posted expire. */
int market_expire_drafts(struct db_pool *p, long ttl_s, int *n);
/* Rounds past their deadline: with enough results (sync: accepted;
 * async: pending) the round is closing; without, its deadline moves
 * once by round_duration_s; after that, or a closing round not
 * published within round_duration_s, the round fails and its task ends
 * (short_round). */
int market_sweep_rounds(struct db_pool *p, int *n);

/* Up to limit ids of drafts after the id after ("" first), in id order:
 * {"ids": [...]}. */
int market_draft_ids(struct db_pool *p, json_t **out, const char *after,
		     int limit);

/* A block cursor by name (e.g. how far a log scan read): *found is 0
 * when there is none yet. */
int market_cursor_get(struct db_pool *p, const char *name,
		      unsigned long long *block, int *found);
int market_cursor_set(struct db_pool *p, const char *name,
		      unsigned long long block);
/* Accepts submitted results of auto-strategy tasks whose delay passed. */
int market_auto_accept(struct db_pool *p, int *n);

/* Signed-request replay protection: records (address, nonce); a nonce
 * already seen is FM_EAUTH. Old nonces (older than max_age_s) are pruned
 * now and then. */
int market_nonce_use(struct db_pool *p, const char *address,
		     const char *nonce, long max_age_s);

#endif
