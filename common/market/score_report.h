/* The scoring report of a round that pays by contribution: what the
 * validator measured (every evaluated coalition's held-out metric, the
 * method, budget and seed, the models' hashes) and what each accepted
 * result is paid. Stored content-addressed; its sha256 goes on chain in
 * Scored(taskId, round, reportHash). Anyone can recompute the amounts
 * from the report's own numbers, and the service does before it pays.
 *
 * {"format": "fedmarket-scoring/1", "task_id", "round", "models":
 *  {"base", "aggregate"}, "method", "budget", "seed", "truncation",
 *  "metric", "pool_wei", "floor_share", "v_empty", "v_all",
 *  "results": [{"result_id", "contributor", "phi", "weight_ppm",
 *               "amount_wei"}],
 *  "evaluations": [{"coalition": [i, ...], "value"}]} */
#ifndef FM_MARKET_SCORE_REPORT_H
#define FM_MARKET_SCORE_REPORT_H

#include <jansson.h>

#define SCORE_REPORT_FORMAT "fedmarket-scoring/1"

/* Sets each result's weight_ppm and amount_wei from its phi, the pool and
 * the floor share (market/reward.h). */
int score_report_amounts(json_t *report);

/* What a report must agree with. */
struct score_expect {
	const char *task_id;    /* 0x + 64 hex, lowercase */
	long long round;
	const char *pool_wei;   /* decimal */
	double floor_share;
	const json_t *result_ids; /* the round's accepted results */
};

/* Checks the report against e and its own numbers: FM_EUNPROCESSABLE
 * naming the first disagreement. On success *amounts (new reference)
 * maps each result id to its amount in wei (decimal strings). */
int score_report_verify(const json_t *report, const struct score_expect *e,
			json_t **amounts);

#endif
