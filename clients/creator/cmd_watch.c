/* watch TASK: a task's rounds, live. It reads the task and its rounds
 * every --interval seconds, prints them again only when something
 * changed, and ends (exit 0) once the task is over, saying why. */
#include "creator.h"

#include "cli/rounds.h"
#include "cli/view.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long watch keeps trying while the marketplace does not answer. */
#define WATCH_DOWN_MAX_S 300

static int read_state(struct cli *c, const char *tid, json_t **task,
		      json_t **rounds)
{
	struct api *a = NULL;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	cli_on(c, CLI_ON_TASK);
	err = api_task(a, tid, task);
	if (err)
		return err;
	cli_on(c, CLI_ON_NONE);
	err = view_rounds_load(c, *task, rounds);
	if (err) {
		json_decref(*task);
		*task = NULL;
	}
	return err;
}

/* What the user sees, as one string: a change in it is worth a print. */
static char *snapshot(const json_t *task, const json_t *rounds)
{
	json_t *j = json_pack("{s:O, s:O}", "task", task, "rounds", rounds);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

static void print_change(struct cli *c, const json_t *task,
			 json_t *rounds)
{
	char stamp[16];
	time_t now = time(NULL);
	struct tm tm;
	json_t *j;

	if (c->json) {
		j = json_deep_copy(task);
		if (!j)
			return;
		json_object_set(j, "rounds_list", rounds);
		json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(j);
		fflush(stdout);
		return;
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	printf("%s[%s]%s task %s %s%s%s, version %d, %lld/%lld slots free\n",
	       cli_c(c, CLI_DIM), stamp, cli_c(c, CLI_RESET),
	       cli_str(task, "id"), cli_c(c, CLI_BOLD), cli_show(task, "state"),
	       cli_c(c, CLI_RESET), rounds_version(task),
	       (long long)json_integer_value(json_object_get(task,
							    "slots_free")),
	       (long long)json_integer_value(json_object_get(task,
							    "max_assignments")));
	view_rounds_print(c, task, rounds);
	fflush(stdout);
}

static void sleep_s(long s)
{
	struct timespec ts = { s, 0 };

	while (nanosleep(&ts, &ts))
		;
}

int cmd_watch(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	long interval = 2, down = 0;
	const struct opt opts[] = {
		{ "--interval", OPT_LONG, &interval, "SECONDS",
		  "how often to look (2)", 1, 3600 },
		OPT_END,
	};
	json_t *task = NULL, *rounds = NULL;
	char tid[67], *last = NULL, *now;
	int code, err;

	c->about = "Prints the task's state and rounds (as status does), "
		   "then again whenever\nthey change, until the task is over "
		   "(ended, with its last version\npublished); then says why "
		   "it ended and exits 0. --json prints the task\nwith "
		   "\"rounds_list\" as one JSON object a line, at each "
		   "change.\n";
	if (!cli_parse(c, opts, argc, argv, "TASK [--interval SECONDS]", pos,
		       1, 1, &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	for (;;) {
		err = read_state(c, tid, &task, &rounds);
		if ((err == FM_EUNAVAIL || err == FM_ETIMEOUT) && last &&
		    down < WATCH_DOWN_MAX_S) {
			if (!down)
				fprintf(stderr, "%s %s: %s; trying again every "
					"%ld s\n", c->prog, c->cmd,
					fm_error_msg(), interval);
			sleep_s(interval);
			down += interval;
			continue;
		}
		if (err)
			break;
		down = 0;
		now = snapshot(task, rounds);
		if (!now) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			break;
		}
		if (!last || strcmp(now, last))
			print_change(c, task, rounds);
		free(last);
		last = now;
		if (rounds_task_over(task)) {
			fprintf(stderr, "task %s is %s: %s\n", tid,
				cli_str(task, "state"),
				rounds_end_reason(task));
			break;
		}
		json_decref(task);
		json_decref(rounds);
		task = rounds = NULL;
		sleep_s(interval);
	}
	free(last);
	json_decref(task);
	json_decref(rounds);
	return err ? cli_fail(c) : CLI_OK;
}
