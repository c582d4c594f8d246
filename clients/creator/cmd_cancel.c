/* cancel TASK (through taskd: the operator refunds the unpaid rest) and
 * refund TASK (the creator's own refund() on the escrow after the
 * deadline). */
#include "creator.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "cli/work.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int cmd_cancel(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	const struct opt opts[] = { OPT_END };
	struct api *a = NULL;
	json_t *t = NULL;
	char tid[67], path[120];
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "TASK", pos, 1, 1, &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	snprintf(path, sizeof(path), "/v1/tasks/%s/cancel", tid);
	err = cli_api(c, 1, &a);
	if (!err)
		err = api_post(a, API_TASKD, path, NULL, &t);
	if (err)
		return cli_fail(c);
	if (c->json)
		cli_print_json(t);
	else
		printf("task %s is %s; the escrow's unpaid rest goes back to "
		       "you (refund %s)\n",
		       tid, json_string_value(json_object_get(t, "state")),
		       json_string_value(json_object_get(t, "refund_state")));
	json_decref(t);
	return CLI_OK;
}

int cmd_refund(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	long timeout = 120;
	const struct opt opts[] = {
		{ "--timeout", OPT_LONG, &timeout, "SECONDS",
		  "wait this long for the transaction (120)", 1, 86400 },
		OPT_END,
	};
	uint8_t escrow[CHAIN_ADDR_LEN], tid_b[32];
	char tid[67], op[CHAIN_ADDR_HEX], amount[CHAIN_U256_DEC_MAX];
	char text[96], hash[67];
	struct chain_rpc *r = NULL;
	struct chain_receipt rc = { 0 };
	struct escrow_task et;
	struct chain_tx tx;
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "TASK", pos, 1, 1, &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	chain_tx_init(&tx);
	err = hex_decode(tid_b, 32, tid);
	if (!err)
		err = cli_identity(c);
	if (!err)
		err = work_market_chain(c, escrow, op);
	if (!err)
		err = chain_rpc_new(&r, c->cfg.rpc_url, NULL);
	if (!err)
		err = escrow_get_task(r, &et, escrow, tid_b);
	if (err == FM_ENOTFOUND)
		err = fm_error_set(FM_ENOTFOUND, "task %s was never funded on "
				   "the escrow", tid);
	if (err)
		goto done;
	if (et.state != ESCROW_OPEN)
		err = fm_error_set(FM_ECONFLICT, "the escrow of task %s is "
				   "already %s", tid, escrow_state_name(et.state));
	else if (memcmp(et.creator, c->key.addr, CHAIN_ADDR_LEN))
		err = fm_error_set(FM_EFORBIDDEN, "task %s was funded by "
				   "another account; only its creator gets "
				   "the refund", tid);
	else if ((uint64_t)time(NULL) < et.deadline)
		err = fm_error_set(FM_ECONFLICT, "the escrow's deadline of "
				   "task %s is in %llu s; cancel the task to "
				   "be refunded earlier",
				   tid, (unsigned long long)(et.deadline -
							     (uint64_t)time(NULL)));
	if (!err)
		err = escrow_refund_tx(&tx, escrow, tid_b);
	if (!err)
		err = chain_rpc_send_tx(r, &rc, &tx, &c->key, timeout * 1000);
	if (err)
		goto done;
	chain_u256_to_dec(amount, sizeof(amount), &et.balance);
	hash[0] = '0';
	hash[1] = 'x';
	hex_encode(hash + 2, rc.tx_hash, 32);
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s, s:s}", "task_id", tid,
				      "refunded_wei", amount, "tx_hash", hash);

		cli_print_json(j);
		json_decref(j);
	} else {
		cli_format_wei(text, sizeof(text), amount);
		printf("refunded %s of task %s in transaction %s\n", text, tid,
		       hash);
	}
done:
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	chain_rpc_free(r);
	return err ? cli_fail(c) : CLI_OK;
}
