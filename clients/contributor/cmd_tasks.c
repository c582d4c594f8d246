/* list-tasks, show, status, earnings: what a contributor reads. */
#include "contributor.h"

#include "chain/rpc.h"
#include "chain/u256.h"
#include "cli/rounds.h"
#include "cli/view.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int cmd_list_tasks(struct cli *c, int argc, char **argv)
{
	struct view_task_query q = { "open", NULL, NULL, NULL, 0 };
	int all = 0, code;
	const struct opt opts[] = {
		{ "--kind", OPT_STR, &q.kind, "K",
		  "model_contributor, model_engineer or data_annotator", 0, 0 },
		{ "--min-reward", OPT_STR, &q.min_reward, "AMOUNT",
		  "at least this reward (wei, or \"0.1 ether\")", 0, 0 },
		{ "--all", OPT_FLAG, &all, NULL, "tasks in any state", 0, 0 },
		{ "--limit", OPT_LONG, &q.limit, "N", "at most N tasks (50)", 1,
		  200 },
		OPT_END,
	};

	if (!cli_parse(c, opts, argc, argv, "[--kind K] [--min-reward W]",
		       NULL, 0, 0, &code))
		return code;
	if (all)
		q.state = NULL;
	return view_tasks(c, &q) ? cli_fail(c) : CLI_OK;
}

int cmd_show(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	const struct opt opts[] = { OPT_END };
	char tid[67];
	int code;

	if (!cli_parse(c, opts, argc, argv, "TASK", pos, 1, 1, &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	return view_task(c, tid, 0) ? cli_fail(c) : CLI_OK;
}

/* The member of arr whose key equals value, or NULL. */
static json_t *find_by(const json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (!strcmp(cli_str(v, key), value))
			return v;
	return NULL;
}

/* The result of assignment as (its task's results are read once, into
 * by_task), or NULL when it has none. */
static int result_of(struct api *a, json_t *by_task, const json_t *as,
		     json_t **out)
{
	const char *tid = cli_str(as, "task_id");
	json_t *list = json_object_get(by_task, tid);
	char path[160];
	int err;

	if (!list) {
		snprintf(path, sizeof(path), "/v1/tasks/%s/results", tid);
		err = api_get(a, API_RESULTD, path, &list);
		if (err)
			return err;
		json_object_set_new(by_task, tid, list);
	}
	*out = find_by(json_object_get(list, "results"), "assignment_id",
		       cli_str(as, "id"));
	return FM_OK;
}

/* Adds to each assignment that got a result its "result" (with the
 * decision and its reason) and, once accepted, its "payout". */
static int add_outcomes(struct api *a, const char *addr, json_t *list)
{
	json_t *by_task = json_object(), *pays = NULL, *as, *r;
	char path[120];
	size_t i;
	int err;

	if (!by_task)
		return fm_error_set(FM_ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/v1/payouts?contributor=%s", addr);
	err = api_get(a, API_VALIDATIOND, path, &pays);
	if (err)
		goto done;
	json_array_foreach(list, i, as) {
		const char *st = cli_str(as, "state");

		if (strcmp(st, "submitted") && strcmp(st, "accepted") &&
		    strcmp(st, "rejected"))
			continue;
		err = result_of(a, by_task, as, &r);
		if (err)
			goto done;
		if (!r)
			continue;
		json_object_set(as, "result", r);
		json_object_set(as, "payout",
				find_by(json_object_get(pays, "payouts"),
					"result_id", cli_str(r, "id")));
	}
done:
	json_decref(by_task);
	json_decref(pays);
	return err;
}

/* What became of an assignment's result: the reason of a rejection, the
 * payout of an acceptance. */
static void print_outcome(struct cli *c, const json_t *as)
{
	const json_t *r = json_object_get(as, "result");
	const json_t *p = json_object_get(as, "payout");
	const char *st = cli_str(r, "state");
	char amount[96];

	if (!r)
		return;
	printf("    result %s ", cli_show(r, "id"));
	if (!strcmp(st, "rejected")) {
		printf("%srejected%s: %s\n", cli_c(c, CLI_RED),
		       cli_c(c, CLI_RESET),
		       cli_show(json_object_get(r, "decision"), "reason"));
	} else if (!strcmp(st, "submitted")) {
		printf("submitted: waiting for the validator's decision\n");
	} else if (!p) {
		printf("%saccepted%s; its payout is not queued yet\n",
		       cli_c(c, CLI_GREEN), cli_c(c, CLI_RESET));
	} else {
		cli_format_wei(amount, sizeof(amount), cli_show(p, "amount_wei"));
		printf("%saccepted%s; payout of %s %s", cli_c(c, CLI_GREEN),
		       cli_c(c, CLI_RESET), amount, cli_show(p, "state"));
		if (json_is_string(json_object_get(p, "tx_hash")))
			printf(" in transaction %s", cli_show(p, "tx_hash"));
		printf("\n");
	}
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	const struct opt opts[] = { CLI_OPT_ADDRESS(c), OPT_END };
	struct api *a = NULL;
	json_t *list = NULL, *all, *as;
	char path[120];
	size_t i;
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "[--address ADDR]", NULL, 0, 0,
		       &code))
		return code;
	err = cli_address(c);
	if (err)
		return cli_fail(c);
	err = cli_api(c, 0, &a);
	if (err)
		return cli_fail(c);
	snprintf(path, sizeof(path), "/v1/assignments?contributor=%s", c->addr);
	err = api_get(a, API_ASSIGND, path, &list);
	if (err)
		return cli_fail(c);
	all = json_object_get(list, "assignments");
	err = add_outcomes(a, c->addr, all);
	if (err) {
		json_decref(list);
		return cli_fail(c);
	}
	if (c->json)
		cli_print_json(all);
	else if (!json_array_size(all))
		printf("no assignments yet: find a task with list-tasks, then "
		       "assign TASK\n");
	json_array_foreach(all, i, as) {
		if (c->json)
			break;
		printf("%s  %-9s task %s", cli_show(as, "id"),
		       cli_show(as, "state"), cli_show(as, "task_id"));
		if (json_is_integer(json_object_get(as, "round")))
			printf(", round %d", rounds_of(as));
		printf("\n    deadline %s\n", cli_show(as, "deadline_at"));
		print_outcome(c, as);
	}
	json_decref(list);
	return CLI_OK;
}

/* One JSON object: address, balance, confirmed total and the payouts. */
static int earnings_json(struct cli *c, const char *q, const char *total,
			 const char *balance)
{
	char path[120];
	struct api *a = NULL;
	json_t *list = NULL, *j;
	int err = cli_api(c, 0, &a);

	if (err)
		return cli_fail(c);
	snprintf(path, sizeof(path), "/v1/payouts%s", q);
	err = api_get(a, API_VALIDATIOND, path, &list);
	if (err)
		return cli_fail(c);
	j = json_pack("{s:s, s:s, s:s, s:O}", "address", c->addr,
		      "balance_wei", balance, "confirmed_wei", total, "payouts",
		      json_object_get(list, "payouts"));
	if (j)
		cli_print_json(j);
	json_decref(j);
	json_decref(list);
	return CLI_OK;
}

int cmd_earnings(struct cli *c, int argc, char **argv)
{
	const struct opt opts[] = { CLI_OPT_ADDRESS(c), OPT_END };
	char q[80], total[80], bal_dec[CHAIN_U256_DEC_MAX], t1[96], t2[96];
	struct chain_rpc *r = NULL;
	struct chain_u256 bal;
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "[--address ADDR]", NULL, 0, 0,
		       &code))
		return code;
	err = cli_address(c);
	if (err)
		return cli_fail(c);
	snprintf(q, sizeof(q), "?contributor=%s", c->addr);
	if (!c->json)
		printf("payouts to %s:\n", c->addr);
	err = view_payouts(c, q, total);
	if (err)
		goto done;
	cli_on(c, CLI_ON_CHAIN);
	err = chain_rpc_new(&r, c->cfg.rpc_url, NULL);
	if (err)
		goto done;
	err = chain_rpc_balance(r, &bal, c->addr_b);
done:
	chain_rpc_free(r);
	if (err)
		return cli_fail(c);
	chain_u256_to_dec(bal_dec, sizeof(bal_dec), &bal);
	if (!c->json) {
		cli_format_wei(t1, sizeof(t1), total);
		cli_format_wei(t2, sizeof(t2), bal_dec);
		printf("confirmed: %s%s%s; balance on chain: %s\n",
		       cli_c(c, CLI_GREEN), t1, cli_c(c, CLI_RESET), t2);
		return CLI_OK;
	}
	return earnings_json(c, q, total, bal_dec);
}
