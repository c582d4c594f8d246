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

/* How a round runs. */
struct round_opts {
	const struct ml_dataset *holdout; /* NULL: nothing is measured */
	int force_small; /* publish fewer than min_results results */
	int force_worse; /* publish a version that measures worse */
};

/* What a round did. scores (model tasks): {"measured": bool, "metric":
 * "accuracy" or "loss", "examples": n, "rule", "current": {"version",
 * "accuracy", "loss"}, "inputs": [{"result", "contributor", "accuracy",
 * "loss"}], "next": {"version", "accuracy", "loss"}}; the figures are
 * held out when measured, else inputs carry the validator's (when it
 * recorded some). */
struct round_report {
	json_t *version;   /* the published version entry; NULL if refused */
	json_t *scores;    /* NULL for data-annotation tasks */
	int refused;       /* the new version measured worse: not published */
	char reason[512];  /* why, when refused */
	int base_version;  /* the version the round started from */
	size_t inputs;     /* how many accepted results it combined */
};

void round_report_cleanup(struct round_report *r);

/* Runs the round: FM_ECONFLICT when fewer than min_results results wait
 * (unless force_small), naming how many. With held-out data the new
 * version, the current one and every input are measured; a new version
 * worse than the current one (lower accuracy, or higher loss where the
 * task's loss is mean squared error) is not published unless
 * force_worse: FM_OK with out->refused set. The figures of the versions
 * go into the published version's metrics. */
int round_publish(struct cli *c, const json_t *task,
		  const struct round_opts *o, struct round_report *out);

/* One line for logs: "held-out accuracy 0.7012 (version 1: 0.6500;
 * results 1b2c3d4e 0.6600, ...)". */
void round_scores_line(char *out, size_t n, const json_t *scores);

#endif
