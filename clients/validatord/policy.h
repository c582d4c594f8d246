/* The validator daemon's decisions: one round of a task's submitted
 * results judged together against the task's validation policy. */
#ifndef FM_CLIENTS_VALIDATORD_POLICY_H
#define FM_CLIENTS_VALIDATORD_POLICY_H

#include "cli/cli.h"
#include "cli/round.h"
#include "engine/ml.h"

#include <jansson.h>
#include <stddef.h>

/* What a verdict is based on. */
struct policy_in {
	const json_t *task;              /* as taskd returns it */
	const struct ml_dataset *holdout; /* NULL: none for this task */
	const json_t *gold;              /* {item id: label} or NULL */
	long round_wait_s;               /* how long to wait for a pool */
};

/* One decision to post. */
struct verdict {
	char result_id[37];
	char contributor[43];
	int accept;
	char reason[512];
	json_t *metrics; /* owned */
};

/* Judges the task's submitted results. Fills *out with *n verdicts
 * (free with verdicts_free); *n is 0 when there is nothing to decide yet
 * (no submission, or the round's pool is still filling). */
int policy_judge(struct cli *c, const struct policy_in *in,
		 struct verdict **out, size_t *n);
void verdicts_free(struct verdict *v, size_t n);

/* 1 while a round's submitted results (submitted: as many as were read
 * now) wait for more before they are judged: fewer than st's
 * min_results with the round's accepted ones, or, in a synchronous
 * round, a slot without a result yet (task.round's submitted, accepted
 * and rejected below results_per_round). The daemon judges them anyway
 * round_wait_s after the oldest, or near the round's deadline. */
int round_pool_waits(const json_t *task, const struct round_state *st,
		     size_t submitted);

#endif
