/* What the CLIs show: task lists, one task with its results, versions,
 * payouts and escrow, result lists, payouts. Text on a terminal (colours
 * as cli_c allows) or JSON with --json. */
#ifndef FM_CLI_VIEW_H
#define FM_CLI_VIEW_H

#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>

struct view_task_query {
	const char *state;      /* NULL: any */
	const char *kind;       /* NULL: any */
	const char *creator;    /* NULL: any */
	const char *min_reward; /* amount ("0.1 ether", wei), NULL: any */
	long limit;             /* 0: 50 */
};

/* GET /v1/tasks with the query, printed as a table. */
int view_tasks(struct cli *c, const struct view_task_query *q);

/* One task: its fields, then (when full) its rounds (view_rounds_print;
 * in JSON "rounds_list", the rounds of GET /v1/tasks/{id}/rounds), model
 * versions, results by state, payouts and the escrow's balance on
 * chain. */
int view_task(struct cli *c, const char *task_id, int full);

/* What a contributor needs to train for a task spec: epochs, batch,
 * optimizer, loss, the data's format, CSV columns, label column and
 * preprocessing; lines on f. */
void view_training(FILE *f, const json_t *spec);

/* Results of a task (state NULL: all); FM_ENOTFOUND when the task does
 * not exist. */
int view_results(struct cli *c, const char *task_id, const char *state);

/* The task's rounds (GET /v1/tasks/{id}/rounds, its "rounds" array:
 * round, state, version, accepted, rejected, paid_wei, owed_wei,
 * accuracy, epsilon, ...) into *out; an empty array for a task from a
 * marketplace without rounds. */
int view_rounds_load(struct cli *c, const json_t *task, json_t **out);

/* The rounds part of a task's status on stdout: its round settings, a
 * table of rounds (round, state, version, accepted, rejected, held-out
 * accuracy, epsilon, paid), the current round, why it ended and the
 * refund. Nothing for a task without rounds. */
void view_rounds_print(struct cli *c, const json_t *task,
		       const json_t *rounds);

/* What is left of a task's escrow for its creator, in wei (out: 80
 * bytes): funded_wei minus every payout of its rounds (owed_wei).
 * FM_EINVAL when the figures are missing. */
int view_refund_wei(char *out, const json_t *task, const json_t *rounds);

/* GET path on validationd's /v1/payouts?... as a table; *total_wei
 * (80 bytes, may be NULL) gets the sum of confirmed payouts. */
int view_payouts(struct cli *c, const char *query, char *total_wei);

#endif
