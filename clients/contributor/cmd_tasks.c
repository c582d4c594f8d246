/* list-tasks, show, status, earnings: what a contributor reads. */
#include "contributor.h"

#include "chain/rpc.h"
#include "chain/u256.h"
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

int cmd_status(struct cli *c, int argc, char **argv)
{
	const struct opt opts[] = { OPT_END };
	struct api *a = NULL;
	json_t *list = NULL, *as;
	char path[120];
	size_t i;
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "", NULL, 0, 0, &code))
		return code;
	err = cli_identity(c);
	if (err)
		return cli_fail(c);
	err = cli_api(c, 0, &a);
	if (err)
		return cli_fail(c);
	snprintf(path, sizeof(path), "/v1/assignments?contributor=%s", c->addr);
	err = api_get(a, API_ASSIGND, path, &list);
	if (err)
		return cli_fail(c);
	if (c->json)
		cli_print_json(json_object_get(list, "assignments"));
	else if (!json_array_size(json_object_get(list, "assignments")))
		printf("no assignments yet: find a task with list-tasks, then "
		       "assign TASK\n");
	json_array_foreach(json_object_get(list, "assignments"), i, as) {
		if (c->json)
			break;
		printf("%s  %-9s task %s\n    deadline %s\n",
		       json_string_value(json_object_get(as, "id")),
		       json_string_value(json_object_get(as, "state")),
		       json_string_value(json_object_get(as, "task_id")),
		       json_string_value(json_object_get(as, "deadline_at")));
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
	const struct opt opts[] = { OPT_END };
	char q[80], total[80], bal_dec[CHAIN_U256_DEC_MAX], t1[96], t2[96];
	struct chain_rpc *r = NULL;
	struct chain_u256 bal;
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "", NULL, 0, 0, &code))
		return code;
	err = cli_identity(c);
	if (err)
		return cli_fail(c);
	snprintf(q, sizeof(q), "?contributor=%s", c->addr);
	if (!c->json)
		printf("payouts to %s:\n", c->addr);
	err = view_payouts(c, q, total);
	if (err)
		goto done;
	err = chain_rpc_new(&r, c->cfg.rpc_url, NULL);
	if (err)
		goto done;
	err = chain_rpc_balance(r, &bal, c->key.addr);
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
