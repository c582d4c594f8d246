/* A task's rounds as status and watch show them. */
#include "cli/view.h"

#include "chain/u256.h"
#include "cli/rounds.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int view_rounds_load(struct cli *c, const json_t *task, json_t **out)
{
	char path[160];
	struct api *a = NULL;
	json_t *doc = NULL, *list;
	int err;

	if (!rounds_known(task)) {
		*out = json_array();
		return *out ? FM_OK : fm_error_set(FM_ENOMEM, "out of memory");
	}
	err = cli_api(c, 0, &a);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/tasks/%s/rounds",
		 json_string_value(json_object_get(task, "id")));
	err = api_get(a, API_TASKD, path, &doc);
	if (err)
		return err;
	list = json_object_get(doc, "rounds");
	if (!json_is_array(list)) {
		json_decref(doc);
		return fm_error_set(FM_EUNAVAIL, "taskd: GET %s answered no "
				    "rounds list", path);
	}
	*out = json_incref(list);
	json_decref(doc);
	return FM_OK;
}

int view_refund_wei(char *out, const json_t *task, const json_t *rounds)
{
	struct chain_u256 left, v;
	const json_t *r;
	size_t i;

	if (chain_u256_parse(&left, cli_str(task, "funded_wei"), "funded_wei"))
		return FM_EINVAL;
	json_array_foreach(rounds, i, r) {
		const char *owed = cli_str(r, "owed_wei");

		if (!owed[0])
			continue;
		if (chain_u256_parse(&v, owed, "owed_wei"))
			return FM_EINVAL;
		/* never below zero, whatever the figures say */
		if (chain_u256_cmp(&v, &left) > 0)
			v = left;
		chain_u256_sub(&left, &left, &v);
	}
	chain_u256_to_dec(out, 80, &left);
	return FM_OK;
}

/* "0.7012", or "-" when v is not a number. */
static void num_or_dash(char *out, size_t n, const json_t *v, int digits)
{
	if (json_is_number(v))
		snprintf(out, n, "%.*f", digits, json_number_value(v));
	else
		snprintf(out, n, "-");
}

static long long int_of(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* "sync, 3 result(s) a round (at least 2), target accuracy 0.8000,
 * epsilon 1.2300 so far, epsilon budget 4" */
static void settings_line(char *out, size_t n, const json_t *t)
{
	const json_t *spec = json_object_get(t, "spec");
	const json_t *dp = json_object_get(json_object_get(spec, "aggregation"),
					   "dp");
	size_t len;

	len = (size_t)snprintf(out, n, "%s, %lld result(s) a round (at least "
			       "%lld)",
			       rounds_async(t) ? "async" : "sync",
			       int_of(t, "results_per_round")
				       ? int_of(t, "results_per_round")
				       : int_of(t, "max_assignments"),
			       int_of(t, "min_results_per_round"));
	if (len < n && json_is_number(json_object_get(t, "target_accuracy")))
		len += (size_t)snprintf(out + len, n - len,
					", target accuracy %.4f",
					json_number_value(json_object_get(
						t, "target_accuracy")));
	if (len < n && json_is_number(json_object_get(t, "epsilon")))
		len += (size_t)snprintf(out + len, n - len,
					", epsilon %.4f so far",
					json_number_value(json_object_get(
						t, "epsilon")));
	if (len < n && json_is_number(json_object_get(dp, "max_epsilon")))
		snprintf(out + len, n - len, ", epsilon budget %g",
			 json_number_value(json_object_get(dp, "max_epsilon")));
}

static void print_table(struct cli *c, const json_t *rounds)
{
	const json_t *r;
	size_t i;

	printf("  %sround  state      version  accepted  rejected  accuracy  "
	       "epsilon  paid%s\n", cli_c(c, CLI_DIM), cli_c(c, CLI_RESET));
	json_array_foreach(rounds, i, r) {
		char ver[16], acc[16], eps[16], paid[96], owed[96];

		if (json_is_integer(json_object_get(r, "version")))
			snprintf(ver, sizeof(ver), "v%lld",
				 int_of(r, "version"));
		else
			snprintf(ver, sizeof(ver), "-");
		num_or_dash(acc, sizeof(acc), json_object_get(r, "accuracy"),
			    4);
		num_or_dash(eps, sizeof(eps), json_object_get(r, "epsilon"),
			    3);
		cli_format_wei(paid, sizeof(paid), cli_str(r, "paid_wei")[0]
				   ? cli_str(r, "paid_wei") : "0");
		printf("  %5lld  %-9s  %-7s  %8lld  %8lld  %8s  %7s  %s",
		       int_of(r, "round"), cli_show(r, "state"), ver,
		       int_of(r, "accepted"), int_of(r, "rejected"), acc, eps,
		       paid);
		if (cli_str(r, "owed_wei")[0] &&
		    strcmp(cli_str(r, "owed_wei"), cli_str(r, "paid_wei"))) {
			cli_format_wei(owed, sizeof(owed),
				       cli_str(r, "owed_wei"));
			printf(" (of %s owed)", owed);
		}
		printf("\n");
	}
}

/* The current round: its state, deadline and counts. */
static void print_current(const json_t *t)
{
	const json_t *rd = json_object_get(t, "round");

	if (!json_is_object(rd) || !strcmp(cli_str(t, "state"), "closed"))
		return;
	printf("  round %lld %s until %s%s: %lld in training, %lld "
	       "submitted, %lld accepted, %lld rejected%s\n",
	       int_of(rd, "round"), cli_show(rd, "state"),
	       cli_show(rd, "deadline_at"),
	       json_is_true(json_object_get(rd, "extended")) ? " (extended)"
							      : "",
	       int_of(rd, "active"), int_of(rd, "submitted"),
	       int_of(rd, "accepted"), int_of(rd, "rejected"),
	       json_is_true(json_object_get(rd, "ready"))
		       ? "; ready for its version" : "");
}

void view_rounds_print(struct cli *c, const json_t *task,
		       const json_t *rounds)
{
	char line[256], left[80], text[96];
	const char *why = json_string_value(json_object_get(task,
							    "end_reason"));

	if (!rounds_known(task))
		return;
	settings_line(line, sizeof(line), task);
	printf("rounds: %d, current round %d, version %d (%s)\n",
	       rounds_total(task), rounds_current(task), rounds_version(task),
	       line);
	if (json_array_size(rounds))
		print_table(c, rounds);
	print_current(task);
	if (why)
		printf("  ended: %s%s%s\n", cli_c(c, CLI_BOLD), why,
		       cli_c(c, CLI_RESET));
	if (strcmp(cli_show(task, "refund_state"), "none") &&
	    !view_refund_wei(left, task, rounds)) {
		cli_format_wei(text, sizeof(text), left);
		printf("  refund: %s %s%s%s\n", text,
		       cli_show(task, "refund_state"),
		       json_is_string(json_object_get(task, "refund_tx"))
			       ? " in transaction " : "",
		       json_is_string(json_object_get(task, "refund_tx"))
			       ? cli_show(task, "refund_tx") : "");
	}
}
