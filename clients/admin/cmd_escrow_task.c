/* escrow-task: a task's deposit, payouts and state, read on chain. */
#include "admin.h"

#include "chain/escrow.h"
#include "cli/keys_cmd.h"
#include "chain/rpc.h"
#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"[--rpc-url URL] [--escrow ADDRESS] [--json] TASK_ID";

enum { OPT_RPC = 1, OPT_ESCROW, OPT_JSON, OPT_HELP };

static void print_task(int json, const char *task_hex,
		       const struct escrow_task *t)
{
	char creator[CHAIN_ADDR_HEX], op[CHAIN_ADDR_HEX];
	char reward[CHAIN_U256_DEC_MAX], balance[CHAIN_U256_DEC_MAX];
	json_t *j;

	chain_address_to_hex(creator, t->creator);
	chain_address_to_hex(op, t->operator);
	chain_u256_to_dec(reward, sizeof(reward), &t->reward);
	chain_u256_to_dec(balance, sizeof(balance), &t->balance);
	if (!json) {
		printf("task         %s\nstate        %s\ncreator      %s\n"
		       "operator     %s\nreward       %s wei\n"
		       "payouts      %u of %u\nbalance      %s wei\n"
		       "deadline     %llu\n", task_hex,
		       escrow_state_name(t->state), creator, op, reward,
		       t->paid_count, t->max_payouts, balance,
		       (unsigned long long)t->deadline);
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

int cmd_escrow_task(int argc, char **argv, struct fm_config *cfg)
{
	static const struct option longopts[] = {
		{ "rpc-url", required_argument, NULL, OPT_RPC },
		{ "escrow", required_argument, NULL, OPT_ESCROW },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *rpc_url = cfg->rpc_url, *escrow_hex = cfg->escrow_address;
	const char *cmd = "escrow-task";
	struct chain_rpc *rpc = NULL;
	struct escrow_task t;
	uint8_t escrow[20], task[32];
	int json = 0, c, err;

	optind = 0;
	opterr = 0;
	while ((c = keys_getopt(argc, argv, longopts)) != -1) {
		switch (c) {
		case OPT_RPC: rpc_url = optarg; break;
		case OPT_ESCROW: escrow_hex = optarg; break;
		case OPT_JSON: json = 1; break;
		case OPT_HELP:
			printf("usage: fedmarket-admin %s %s\n", cmd,
			       usage_text);
			return 0;
		default:
			return admin_usage(cmd, usage_text, "unknown option "
					   "or missing value (options are "
					   "not abbreviated)");
		}
	}
	if (optind + 1 != argc)
		return admin_usage(cmd, usage_text, "expected one TASK_ID");
	if (!escrow_hex[0])
		return admin_usage(cmd, usage_text, "no escrow: give --escrow "
				   "or set escrow_address");
	if (chain_address_parse(escrow, escrow_hex, "--escrow"))
		return admin_usage(cmd, usage_text, "%s", fm_error_msg());
	if (strlen(argv[optind]) != 66 || strncmp(argv[optind], "0x", 2) ||
	    hex_decode(task, 32, argv[optind]))
		return admin_usage(cmd, usage_text, "TASK_ID: expected 0x and "
				   "64 hex digits");
	err = chain_rpc_new(&rpc, rpc_url, NULL);
	if (!err)
		err = escrow_get_task(rpc, &t, escrow, task);
	if (!err)
		print_task(json, argv[optind], &t);
	chain_rpc_free(rpc);
	return err ? admin_fail(cmd) : 0;
}
