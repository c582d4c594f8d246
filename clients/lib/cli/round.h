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
	int version;      /* its number; the round makes version + 1 */
	json_t *versions; /* every version entry (array) */
	/* the accepted results the next version combines (array): in a
	 * synchronous task with rounds, those of round version + 1; else
	 * every accepted result that no version holds yet */
	json_t *pending;
	/* results the round wants before it is published unasked: the
	 * buffer of an asynchronous task, else min_results_per_round */
	long long min_results;
	int async;        /* aggregation mode "async" */
	double staleness_exponent; /* async: weight (1 + staleness)^-this */
	int ready;        /* task.round.ready: 1, 0, or -1 (not told) */
	/* spec.max_examples_per_result: a result weighs at most this many
	 * examples; 0: the default */
	long long max_examples;
};

/* Reads the task's versions and accepted results. */
int round_state_load(struct cli *c, const json_t *task,
		     struct round_state *out);
void round_state_cleanup(struct round_state *s);

/* The weight of result r in FedAvg: its example count (1 when it gives
 * none), at most s->max_examples whatever it claims, in an asynchronous task times (1 + staleness)^-exponent
 * (ml_agg_staleness_weight), staleness = s->version - r's base_version:
 * the versions published since r's base. */
double round_weight(const struct round_state *s, const json_t *r);

/* How a round runs. */
struct round_opts {
	const struct ml_dataset *holdout; /* NULL: nothing is measured */
	int force_small; /* publish fewer than min_results results */
	int force_worse; /* publish a version that measures worse */
	/* a version that measures worse is replaced by a copy of the
	 * current one (rule "kept"), so the task's rounds go on */
	int keep_worse;
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
	int kept;          /* ... and the current one was published again */
	char reason[512];  /* why it measured worse (refused or kept) */
	int base_version;  /* the version the round started from */
	size_t inputs;     /* how many accepted results it combined */
	/* a task paying by contribution: the round's scoring report
	 * (cli/score.h) and its blob reference, published with the
	 * version */
	json_t *scoring;
	char scoring_ref[65];
};

void round_report_cleanup(struct round_report *r);

/* Runs the round: FM_ECONFLICT when fewer than min_results results wait
 * (unless force_small; none at all always), naming how many. With
 * held-out data the new version, the current one and every input are
 * measured; a new version worse than the current one (lower accuracy,
 * or higher loss where the task's loss is mean squared error) is not
 * published unless force_worse: FM_OK with out->refused set, or with
 * keep_worse the current version's bundle published again as the next
 * version (rule "kept", out->kept; its metrics say why under "kept" and
 * hold the refused aggregate's figures under "aggregate"). In an
 * asynchronous task each result's update is taken from its own base
 * version and weighted by round_weight. The figures of the versions go
 * into the published version's metrics. */
int round_publish(struct cli *c, const json_t *task,
		  const struct round_opts *o, struct round_report *out);

/* One line for logs: "held-out accuracy 0.7012 (version 1: 0.6500;
 * results 1b2c3d4e 0.6600, ...)". */
void round_scores_line(char *out, size_t n, const json_t *scores);

#endif
