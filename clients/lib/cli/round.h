/* A task's aggregation round, shared by `fedmarket-creator aggregate` and
 * the validator daemon: the accepted results that no model version holds
 * yet are combined with the task's rule (aggregation.rule, with central
 * DP when aggregation.dp is set) into the next version, which is pushed
 * to storage and published. model_engineer tasks publish the best
 * accepted model; data_annotator tasks publish the majority labels. */
#ifndef FM_CLI_ROUND_H
#define FM_CLI_ROUND_H

#include "cli/cli.h"
#include "engine/ml.h"

#include <jansson.h>

/* What a round sees before it runs. */
struct round_state {
	json_t *current;  /* newest model version entry (new reference) */
	int version;      /* its number */
	json_t *pending;  /* accepted results not in any version (array) */
	long long min_results; /* aggregation.min_results_per_round */
};

/* Reads the task's versions and accepted results. */
int round_state_load(struct cli *c, const json_t *task,
		     struct round_state *out);
void round_state_cleanup(struct round_state *s);

/* Runs the round: FM_ECONFLICT when fewer than min_results results wait
 * (unless force), naming how many. holdout (may be NULL) evaluates the
 * new version and the one before it; the figures go into the version's
 * metrics. *out (may be NULL) gets the published version entry. */
int round_publish(struct cli *c, const json_t *task,
		  const struct ml_dataset *holdout, int force, json_t **out);

#endif
