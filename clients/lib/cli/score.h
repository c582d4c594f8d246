/* The validator's scoring of a round that pays by contribution
 * (reward.scoring "shapley"): the Shapley value of each accepted update
 * for the held-out metric of the FedAvg aggregate of any subset of them
 * (engine/shapley.h), exact for up to SPEC_EXACT_MAX updates and
 * GTG-Shapley beyond (or as the task's reward.method says), seeded by
 * the round so that anyone can reproduce it; the result is the round's
 * scoring report (market/score_report.h) with each result's amount. */
#ifndef FM_CLI_SCORE_H
#define FM_CLI_SCORE_H

#include "engine/ml.h"

#include <jansson.h>

struct score_in {
	const json_t *task;  /* the task as the API shows it */
	long long round;
	const struct ml_model *base; /* the version the round trained from */
	struct ml_model *const *models; /* the round's accepted updates */
	const double *weights;          /* their example counts */
	const char *const *result_ids;
	const char *const *contributors;
	size_t k;
	const struct ml_dataset *holdout;
	const char *base_ref, *aggregate_ref; /* bundle references */
};

/* 1 when the task pays by contribution. */
int score_wanted(const json_t *task);

/* Scores the round into *report (new reference). */
int score_round(json_t **report, const struct score_in *in);

#endif
