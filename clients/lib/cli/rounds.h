/* A task's rounds as the clients read them from the marketplace's JSON:
 * the task's rounds, current_round, aggregation_mode, end_reason and
 * "round" (the current round, with "ready"), and the "round" and
 * "base_version" of assignments and results. Round r trains from
 * version r - 1 and makes version r. A task, assignment or result from
 * a marketplace without rounds lacks these fields: it reads as a
 * one-round task, everything in round 1 and trained from version 0.
 * Also what `fedmarket-contributor run` decides from them. */
#ifndef FM_CLI_ROUNDS_H
#define FM_CLI_ROUNDS_H

#include <jansson.h>

/* "rounds", else 1. */
int rounds_total(const json_t *task);
/* "current_version", else 0. */
int rounds_version(const json_t *task);
/* "current_round", else current_version + 1. */
int rounds_current(const json_t *task);
/* 1 when the task aggregates asynchronously (aggregation_mode, else
 * spec.aggregation.mode is "async"). */
int rounds_async(const json_t *task);
/* The round of an assignment or result: "round", else 1. */
int rounds_of(const json_t *item);
/* The version a result was trained from: "base_version", else its
 * round - 1. */
int rounds_base_version(const json_t *result);
/* 1 when the task JSON knows rounds (it has "current_round"). */
int rounds_known(const json_t *task);
/* Whether the current round waits for its version (task.round.ready):
 * 1 or 0; -1 when the task does not say (no "round"). */
int rounds_ready(const json_t *task);
/* Why the task takes no more work: its end_reason, else its state
 * ("cancelled", "expired", ...). */
const char *rounds_end_reason(const json_t *task);
/* 1 when the task has ended and nothing more will happen to it: not
 * open (nor a draft or funded), and not a task closed by its full last
 * round whose version is still to be published. */
int rounds_task_over(const json_t *task);

/* What a contributor following the rounds does next. */
enum rounds_step {
	ROUNDS_STOP = 0, /* the task is not open: see rounds_end_reason */
	ROUNDS_TAKE,     /* take a slot in the current round */
	ROUNDS_RESUME,   /* train (or send) for the active assignment */
	ROUNDS_SENT,     /* this round's result was sent already */
	ROUNDS_FULL,     /* no slot free in the round (or it is closing):
			  * wait for its version */
};

struct rounds_plan {
	enum rounds_step step;
	int round;                /* the task's current round */
	const json_t *assignment; /* RESUME, SENT: the round's (borrowed) */
};

/* The next step from the task and the contributor's assignments of it
 * (GET /v1/assignments?contributor=&task=, its "assignments" array): an
 * active assignment of the current round is resumed; one whose result
 * was sent (submitted, accepted or rejected) ends the round for this
 * contributor; expired or given-back ones do not count. */
void rounds_plan(struct rounds_plan *out, const json_t *task,
		 const json_t *assignments);

/* Pauses between looks while waiting for a version: 1 s, doubling, at
 * most 5 s. prev 0 gives the first. */
#define ROUNDS_WAIT_FIRST_S 1.0
#define ROUNDS_WAIT_MAX_S 5.0
double rounds_backoff(double prev);

/* Parses --rounds: "all" (out = 0) or a count 1..10000. */
int rounds_parse_count(int *out, const char *text);

#endif
