#include "cli/rounds.h"

#include "core/err.h"

#include <stdlib.h>
#include <string.h>

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static int int_or(const json_t *o, const char *k, int def)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

int rounds_total(const json_t *task)
{
	int n = int_or(task, "rounds", 1);

	return n < 1 ? 1 : n;
}

int rounds_version(const json_t *task)
{
	return int_or(task, "current_version", 0);
}

int rounds_current(const json_t *task)
{
	return int_or(task, "current_round", rounds_version(task) + 1);
}

int rounds_async(const json_t *task)
{
	const char *m = json_string_value(json_object_get(task,
							  "aggregation_mode"));

	if (!m)
		m = json_string_value(json_object_get(
			json_object_get(json_object_get(task, "spec"),
					"aggregation"),
			"mode"));
	return m && !strcmp(m, "async");
}

int rounds_of(const json_t *item)
{
	int r = int_or(item, "round", 1);

	return r < 1 ? 1 : r;
}

int rounds_base_version(const json_t *result)
{
	return int_or(result, "base_version", rounds_of(result) - 1);
}

int rounds_known(const json_t *task)
{
	return json_is_integer(json_object_get(task, "current_round"));
}

int rounds_ready(const json_t *task)
{
	const json_t *r = json_object_get(task, "round");

	if (!json_is_object(r))
		return -1;
	return json_is_true(json_object_get(r, "ready"));
}

const char *rounds_end_reason(const json_t *task)
{
	const char *why = json_string_value(json_object_get(task,
							    "end_reason"));

	return why && why[0] ? why : str_of(task, "state");
}

int rounds_task_over(const json_t *task)
{
	const char *st = str_of(task, "state");

	if (!strcmp(st, "open") || !strcmp(st, "draft") ||
	    !strcmp(st, "funded"))
		return 0;
	/* closed by the last round's last accept: its version is to come */
	if (!strcmp(rounds_end_reason(task), "rounds_done") &&
	    rounds_version(task) < rounds_total(task))
		return 0;
	return 1;
}

void rounds_plan(struct rounds_plan *out, const json_t *task,
		 const json_t *assignments)
{
	const json_t *round = json_object_get(task, "round"), *a;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->round = rounds_current(task);
	if (strcmp(str_of(task, "state"), "open"))
		return; /* ROUNDS_STOP */
	json_array_foreach(assignments, i, a) {
		const char *st = str_of(a, "state");

		if (rounds_of(a) != out->round)
			continue;
		if (!strcmp(st, "active")) {
			out->step = ROUNDS_RESUME;
			out->assignment = a;
			return;
		}
		if (!strcmp(st, "submitted") || !strcmp(st, "accepted") ||
		    !strcmp(st, "rejected")) {
			out->step = ROUNDS_SENT;
			out->assignment = a;
			return;
		}
	}
	if (!strcmp(str_of(round, "state"), "closing") ||
	    (json_is_integer(json_object_get(task, "slots_free")) &&
	     json_integer_value(json_object_get(task, "slots_free")) <= 0)) {
		out->step = ROUNDS_FULL;
		return;
	}
	out->step = ROUNDS_TAKE;
}

double rounds_backoff(double prev)
{
	double next = prev > 0 ? prev * 2 : ROUNDS_WAIT_FIRST_S;

	return next > ROUNDS_WAIT_MAX_S ? ROUNDS_WAIT_MAX_S : next;
}

int rounds_parse_count(int *out, const char *text)
{
	char *end = NULL;
	long n;

	if (!text || !text[0])
		return fm_error_set(FM_EINVAL, "--rounds: expected a count or "
				    "\"all\"");
	if (!strcmp(text, "all")) {
		*out = 0;
		return FM_OK;
	}
	n = strtol(text, &end, 10);
	if (*end || n < 1 || n > 10000)
		return fm_error_set(FM_EINVAL, "--rounds %s: expected a count "
				    "from 1 to 10000, or \"all\"", text);
	*out = (int)n;
	return FM_OK;
}
