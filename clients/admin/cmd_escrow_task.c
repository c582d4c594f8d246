/* escrow-task: a task's deposit, payouts and state, read on chain. */
#include "admin.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "cli/cli.h"
#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A Unix time as "2025-01-31 12:00:00 UTC". */
static void format_time(char *out, size_t n, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, n, "%llu", (unsigned long long)t);
}

static void print_task(int json, const char *task_hex,
		       const struct escrow_task *t)
{
	char creator[CHAIN_ADDR_HEX], op[CHAIN_ADDR_HEX];
	char reward[CHAIN_U256_DEC_MAX], balance[CHAIN_U256_DEC_MAX];
	char reward_eth[96], balance_eth[96], when[64];
	json_t *j;

	chain_address_to_hex(creator, t->creator);
	chain_address_to_hex(op, t->operator);
	chain_u256_to_dec(reward, sizeof(reward), &t->reward);
	chain_u256_to_dec(balance, sizeof(balance), &t->balance);
	if (!json) {
		/* for people: ether and dates; --json keeps wei and seconds */
		cli_format_wei(reward_eth, sizeof(reward_eth), reward);
		cli_format_wei(balance_eth, sizeof(balance_eth), balance);
		format_time(when, sizeof(when), t->deadline);
		printf("task         %s\nstate        %s\ncreator      %s\n"
		       "operator     %s\nreward       %s\n"
		       "payouts      %u of %u\nbalance      %s\n"
		       "deadline     %s\n", task_hex,
		       escrow_state_name(t->state), creator, op, reward_eth,
		       t->paid_count, t->max_payouts, balance_eth, when);
		return;
	}
	/* wei amounts are strings: they exceed JSON's safe integers */
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:I}",
		      "task_id", task_hex, "state",
		      escrow_state_name(t->state), "creator", creator,
		      "operator", op, "reward_wei", reward, "paid_count",
		      (int)t->paid_count, "max_payouts", (int)t->max_payouts,
		      "balance_wei", balance, "deadline",
		      (json_int_t)t->deadline);
	if (j)
		json_dumpf(j, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(j);
}

int cmd_escrow_task(struct admin *a, int argc, char **argv)
{
	const char *rpc_url = NULL, *escrow_hex = NULL, *pos[1] = { NULL };
	int json = 0, code, err;
	const struct opt opts[] = {
		{ "--rpc-url", OPT_STR, &rpc_url, "URL",
		  "the chain node (default: rpc_url)", 0, 0 },
		{ "--escrow", OPT_STR, &escrow_hex, "ADDRESS",
		  "the escrow contract (default: escrow_address)", 0, 0 },
		{ "--json", OPT_FLAG, &json, NULL, "machine-readable output", 0,
		  0 },
		OPT_END,
	};
	struct opt_spec s = {
		.opts = opts, .pos = pos, .min_pos = 1, .max_pos = 1,
		.synopsis = "[--rpc-url URL] [--escrow ADDRESS] [--json] "
			    "TASK_ID",
	};
	struct chain_rpc *rpc = NULL;
	struct escrow_task t;
	uint8_t escrow[20], task[32];

	if (!admin_parse(a, &s, argc, argv, &code))
		return code;
	if (!escrow_hex)
		escrow_hex = a->cfg.escrow_address;
	if (!escrow_hex[0])
		return admin_usage(a, "no escrow: give --escrow or set "
				   "escrow_address");
	if (chain_address_parse(escrow, escrow_hex, "--escrow"))
		return admin_usage(a, "%s", fm_error_msg());
	if (strlen(pos[0]) != 66 || strncmp(pos[0], "0x", 2) ||
	    hex_decode(task, 32, pos[0]))
		return admin_usage(a, "TASK_ID: expected 0x and 64 hex digits");
	err = chain_rpc_new(&rpc, rpc_url ? rpc_url : a->cfg.rpc_url, NULL);
	if (err)
		goto done;
	err = escrow_get_task(rpc, &t, escrow, task);
	if (err)
		goto done;
	print_task(json, pos[0], &t);
done:
	chain_rpc_free(rpc);
	return err ? admin_fail(a) : CLI_OK;
}
