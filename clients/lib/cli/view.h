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

/* One task: its fields, then (when full) its model versions, results by
 * state, payouts and the escrow's balance on chain. */
int view_task(struct cli *c, const char *task_id, int full);

/* What a contributor needs to train for a task spec: epochs, batch,
 * optimizer, loss, the data's format, CSV columns, label column and
 * preprocessing; lines on f. */
void view_training(FILE *f, const json_t *spec);

/* Results of a task (state NULL: all); FM_ENOTFOUND when the task does
 * not exist. */
int view_results(struct cli *c, const char *task_id, const char *state);

/* GET path on validationd's /v1/payouts?... as a table; *total_wei
 * (80 bytes, may be NULL) gets the sum of confirmed payouts. */
int view_payouts(struct cli *c, const char *query, char *total_wei);

#endif
