/* run and abandon: a contributor following a task's rounds. In each
 * round run takes a slot (or resumes its own active assignment of the
 * round, sending a model trained for it before without training again),
 * trains from the current version, sends the result with the version it
 * trained from, then waits for the round's version and goes on. What it
 * needs to go on lives in the marketplace (its assignments of the task,
 * by round) and in work_dir (the model trained for an assignment), so
 * the same command run again resumes where it stopped. */
#include "contributor.h"

#include "cli/rounds.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* How long run keeps waiting while the marketplace does not answer. */
#define RUN_DOWN_MAX_S 120

struct run {
	struct cli *c;
	char tid[67];
	const char *data, *attack;
	int want; /* rounds to take part in; 0: all */
	int done; /* rounds taken part in so far */
};

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s,
			       (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts))
		;
}

static int read_task(struct run *r, json_t **out)
{
	struct api *a = NULL;
	int err = cli_api(r->c, 0, &a);

	if (err)
		return err;
	cli_on(r->c, CLI_ON_TASK);
	err = api_task(a, r->tid, out);
	if (!err)
		cli_on(r->c, CLI_ON_NONE);
	return err;
}

/* This contributor's assignments of the task (every round). */
static int my_assignments(struct run *r, json_t **out)
{
	char path[200];
	struct api *a = NULL;
	json_t *list = NULL;
	int err = cli_api(r->c, 1, &a);

	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/assignments?contributor=%s&task=%s",
		 r->c->addr, r->tid);
	err = api_get(a, API_ASSIGND, path, &list);
	if (err)
		return err;
	*out = json_incref(json_object_get(list, "assignments"));
	json_decref(list);
	return *out ? FM_OK : fm_error_set(FM_EUNAVAIL, "assignd answered no "
					  "assignments list");
}

static int unreachable(int err)
{
	return err == FM_EUNAVAIL || err == FM_ETIMEOUT;
}

/* What the task's current round holds, for the waiting line. */
static void round_line(char *out, size_t n, const json_t *task)
{
	const json_t *rd = json_object_get(task, "round");

	if (!json_is_object(rd)) {
		out[0] = '\0';
		return;
	}
	snprintf(out, n, " (round %d %s: %lld accepted, %lld submitted, "
		 "%lld in training; deadline %s)", rounds_current(task),
		 cli_show(rd, "state"),
		 (long long)json_integer_value(json_object_get(rd, "accepted")),
		 (long long)json_integer_value(json_object_get(rd,
							      "submitted")),
		 (long long)json_integer_value(json_object_get(rd, "active")),
		 cli_show(rd, "deadline_at"));
}

/* Waits until round `round` has its version (the task's current round
 * moved past it) or the task takes no more work. Looks again after 1 s,
 * then 2, 4 and every 5 s: never longer without reading the task. */
static int wait_version(struct run *r, int round)
{
	json_t *t = NULL;
	double pause = 0, down = 0;
	char line[256];
	int said = 0, err;

	contrib_on_stop(r->c, "interrupted while waiting for version %d of "
			"task %s; what was sent stays sent: run the same "
			"command again to go on\n", round, r->tid);
	for (;;) {
		err = read_task(r, &t);
		if (unreachable(err) && down < RUN_DOWN_MAX_S) {
			if (!down)
				fprintf(stderr, "%s %s: %s; trying again\n",
					r->c->prog, r->c->cmd, fm_error_msg());
			pause = rounds_backoff(pause);
			sleep_s(pause);
			down += pause;
			continue;
		}
		if (err)
			break;
		down = 0;
		if (strcmp(cli_str(t, "state"), "open") ||
		    rounds_current(t) > round)
			break;
		if (!said) {
			round_line(line, sizeof(line), t);
			fprintf(stderr, "waiting for version %d of task %s%s\n",
				round, r->tid, line);
			said = 1;
		}
		json_decref(t);
		t = NULL;
		pause = rounds_backoff(pause);
		sleep_s(pause);
	}
	contrib_on_stop(r->c, NULL);
	json_decref(t);
	return err;
}

/* One round's line in --json: one object per round, on one line. */
static void print_round(struct run *r, json_t *j)
{
	if (!j)
		return;
	json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(j);
	(void)r;
}

/* Takes part in the current round: resumes p's assignment or takes a
 * slot, trains unless a model was trained for it here before, sends.
 * *took says whether a slot was taken (its refusal is no failure). */
static int one_round(struct run *r, const struct rounds_plan *p,
		     const json_t *task, int *took)
{
	struct cli *c = r->c;
	int resumed = p->step == ROUNDS_RESUME, before = 0, err;
	json_t *s = NULL, *res = NULL;
	char aid[37];

	*took = 0;
	if (resumed) {
		err = cli_uuid(aid, cli_str(p->assignment, "id"),
			       "assignment id");
	} else {
		err = contrib_assign(c, r->tid, aid, NULL);
		*took = !err;
	}
	if (err)
		return err;
	if (!c->json)
		printf("round %d of %d: assignment %s of task %s%s\n",
		       p->round, rounds_total(task), aid, r->tid,
		       resumed ? " (resumed)" : "");
	if (resumed && contrib_trained(c, aid, &s) == FM_OK) {
		before = 1;
		if (!c->json)
			fprintf(stderr, "sending the model trained for it "
				"before (from version %lld), without training "
				"again\n",
				(long long)json_integer_value(json_object_get(
					s, "base_version")));
	} else {
		err = contrib_train(c, aid, r->data, r->attack, &s);
		if (err)
			goto done;
	}
	if (!c->json)
		contrib_print_trained(c, s);
	err = contrib_send(c, aid, NULL, 0, -1, &res);
	if (err)
		goto done;
	r->done++;
	if (c->json)
		print_round(r, json_pack("{s:i, s:s, s:b, s:b, s:O, s:O}",
					 "round", p->round, "assignment", aid,
					 "resumed", resumed, "trained_before",
					 before, "training", s, "result",
					 res));
	else
		contrib_print_sent(c, res);
done:
	json_decref(s);
	json_decref(res);
	return err;
}

/* A conflict in the round's work: the round moved on without it (it
 * closed, or the task ended, while training), or a slot was refused
 * (none left, the round closing): say so and go on (*moved: the
 * round or the task moved on); else it fails. */
static int conflict(struct run *r, const struct rounds_plan *p, int took,
		    int *moved)
{
	char msg[FM_ERR_MSG_MAX];
	json_t *t = NULL;
	int err;

	snprintf(msg, sizeof(msg), "%s", fm_error_msg());
	err = read_task(r, &t);
	if (err)
		return err;
	*moved = strcmp(cli_str(t, "state"), "open") ||
		 rounds_current(t) > p->round;
	json_decref(t);
	if (*moved)
		fprintf(stderr, "%s %s: round %d went on without this "
			"contributor: %s\n", r->c->prog, r->c->cmd, p->round,
			msg);
	else if (p->step == ROUNDS_TAKE && !took)
		fprintf(stderr, "%s %s: no slot in round %d: %s\n",
			r->c->prog, r->c->cmd, p->round, msg);
	else
		return fm_error_set(FM_ECONFLICT, "%s", msg);
	return FM_OK;
}

/* Why run stops at a task that takes no more work: a failure when it
 * took part in no round. */
static int stopped(struct run *r, const json_t *task)
{
	const char *why = rounds_end_reason(task), *st = cli_str(task, "state");

	if (!strcmp(st, "draft") || !strcmp(st, "funded"))
		return fm_error_set(FM_ECONFLICT, "task %s is %s, not open yet: "
				    "run this again once it opens (see 'show "
				    "%s')", r->tid, st, r->tid);
	if (!r->done)
		return fm_error_set(FM_ECONFLICT, "task %s is %s (%s): it "
				    "takes no more results", r->tid,
				    cli_str(task, "state"), why);
	fprintf(stderr, "task %s is %s: %s; this run took part in %d "
		"round(s)\n", r->tid, cli_str(task, "state"), why, r->done);
	return FM_OK;
}

/* Rounds until r->want are done or the task ends. */
static int follow(struct run *r)
{
	struct rounds_plan p;
	json_t *task = NULL, *mine = NULL;
	int err, took;

	for (;;) {
		json_decref(task);
		json_decref(mine);
		task = mine = NULL;
		err = read_task(r, &task);
		if (err)
			break;
		err = my_assignments(r, &mine);
		if (err)
			break;
		rounds_plan(&p, task, mine);
		if (p.step == ROUNDS_STOP) {
			err = stopped(r, task);
			break;
		}
		if (p.step == ROUNDS_SENT) {
			r->done++;
			fprintf(stderr, "round %d: your result for assignment "
				"%s was sent already (%s)\n", p.round,
				cli_str(p.assignment, "id"),
				cli_str(p.assignment, "state"));
			if (r->c->json)
				print_round(r, json_pack(
					"{s:i, s:s, s:b, s:s}", "round",
					p.round, "assignment",
					cli_str(p.assignment, "id"),
					"sent_before", 1, "state",
					cli_str(p.assignment, "state")));
		} else if (p.step == ROUNDS_FULL) {
			fprintf(stderr, "round %d of task %s %s\n", p.round,
				r->tid,
				!strcmp(cli_str(json_object_get(task, "round"),
						"state"), "closing")
					? "is closing"
					: "has no free slot");
		} else {
			int before = r->done, moved = 0;

			err = one_round(r, &p, task, &took);
			if (err == FM_ECONFLICT)
				err = conflict(r, &p, took, &moved);
			if (err)
				break;
			if (moved)
				continue; /* the round went on: look again */
			if (r->done == before)
				p.step = ROUNDS_FULL; /* no slot: wait */
		}
		if (r->want && r->done >= r->want) {
			if (r->want > 1 || r->c->json)
				fprintf(stderr, "took part in %d round(s) of "
					"task %s\n", r->done, r->tid);
			break;
		}
		if (p.step != ROUNDS_FULL && p.round >= rounds_total(task)) {
			fprintf(stderr, "round %d was the last of task %s\n",
				p.round, r->tid);
			break;
		}
		err = wait_version(r, p.round);
		if (err)
			break;
	}
	json_decref(task);
	json_decref(mine);
	return err;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *rounds = "1";
	struct run r = { .c = c };
	const struct opt opts[] = {
		{ "--data", OPT_STR, &r.data, "PATH", DATA_HELP, 0, 0 },
		{ "--rounds", OPT_STR, &rounds, "N|all",
		  "rounds to take part in from the current one (1); all: "
		  "until the task ends", 0, 0 },
		{ "--attack", OPT_STR, &r.attack, "KIND", ATTACK_HELP, 0, 0 },
		OPT_END,
	};
	int code;

	c->about =
		"In each round: take a slot in the task's current round (or "
		"resume your\nactive assignment of it, sending a model "
		"trained for it before as it is),\ntrain from the current "
		"version, send the result with that version, then\nwait for "
		"the round's version (looking every 1 s, doubling to 5 s) "
		"and go\non. A round full or closing is waited out. A round "
		"whose result you sent\nalready counts, so the same command "
		"run again goes on where it stopped.\nStops after --rounds "
		"rounds, after the task's last round, or when the\ntask "
		"ends (saying why). --json prints one JSON object per round, "
		"one a\nline: round, assignment, resumed, trained_before, "
		"training, result (or\nsent_before and state).\n";
	if (!cli_parse(c, opts, argc, argv, "TASK --data PATH [--rounds N|all]",
		       pos, 1, 1, &code))
		return code;
	if (!r.data)
		return cli_usage(c, "--data is required");
	if (rounds_parse_count(&r.want, rounds))
		return cli_usage(c, "%s", fm_error_msg());
	if (cli_task_id(r.tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	return follow(&r) ? cli_fail(c) : CLI_OK;
}

int cmd_abandon(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	const struct opt opts[] = { OPT_END };
	struct api *a = NULL;
	json_t *as = NULL;
	char aid[37], path[120];
	int code, err;

	c->about = "The assignment ends as abandoned and its slot in its "
		   "round is free for\nanyone (you too) to take. Only an "
		   "active assignment, before its deadline.\n";
	if (!cli_parse(c, opts, argc, argv, "ASSIGNMENT", pos, 1, 1, &code))
		return code;
	if (cli_uuid(aid, pos[0], "assignment"))
		return cli_usage(c, "%s", fm_error_msg());
	err = cli_api(c, 1, &a);
	if (err)
		return cli_fail(c);
	snprintf(path, sizeof(path), "/v1/assignments/%s/abandon", aid);
	cli_on(c, CLI_ON_ASSIGNMENT);
	err = api_post(a, API_ASSIGND, path, NULL, &as);
	if (err)
		return cli_fail(c);
	if (c->json)
		cli_print_json(as);
	else
		printf("assignment %s of task %s is %s: its slot in round %d "
		       "is free again\n", aid, cli_show(as, "task_id"),
		       cli_show(as, "state"), rounds_of(as));
	json_decref(as);
	return CLI_OK;
}
