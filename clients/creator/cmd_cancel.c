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

/* GET of task tid's results in state (NULL: all). */
static int results_in(struct api *a, const char *tid, const char *state,
		      json_t **out)
{
	char path[160];

	snprintf(path, sizeof(path), "/v1/tasks/%s/results%s%s", tid,
		 state ? "?state=" : "", state ? state : "");
	return api_get(a, API_RESULTD, path, out);
}

#define LISTED 3 /* results named in the message; the rest counted */

/* FM_ECONFLICT naming the results of task tid that wait for a decision
 * (ids and contributors), unless there are none. */
static int none_undecided(struct api *a, const char *tid)
{
	char list[LISTED * 96] = "", more[64] = "";
	json_t *page = NULL, *rs, *r;
	size_t i, n, len = 0;
	int err = results_in(a, tid, "submitted", &page);

	if (err)
		return err;
	rs = json_object_get(page, "results");
	n = json_array_size(rs);
	json_array_foreach(rs, i, r) {
		if (i == LISTED || len >= sizeof(list) - 1)
			break;
		len += (size_t)snprintf(list + len, sizeof(list) - len,
					"%s %s from %s", i ? "," : "",
					cli_show(r, "id"),
					cli_show(r, "contributor"));
	}
	if (n > LISTED)
		snprintf(more, sizeof(more), " and %zu more (list-results "
			 "--state submitted)", n - LISTED);
	if (n)
		err = fm_error_set(FM_ECONFLICT, "task %s has %zu result(s) "
				   "waiting for a decision:%s%s", tid, n, list,
				   more);
	json_decref(page);
	return err;
}

/* Prints the results the cancel rejected (their reason says so). */
static void print_cancelled(struct api *a, const char *tid)
{
	json_t *page = NULL, *r;
	size_t i;

	if (results_in(a, tid, "rejected", &page))
		return; /* the cancel itself is done; this is only a report */
	json_array_foreach(json_object_get(page, "results"), i, r)
		if (!strcmp(cli_str(json_object_get(r, "decision"), "reason"),
			    "task cancelled"))
			printf("result %s from %s rejected: task cancelled\n",
			       cli_show(r, "id"), cli_show(r, "contributor"));
	json_decref(page);
}

int cmd_cancel(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	int force = 0, code, err;
	const struct opt opts[] = {
		{ "--force", OPT_FLAG, &force, NULL,
		  "cancel even while results wait for a decision: they are "
		  "rejected (\"task cancelled\") and not paid", 0, 0 },
		OPT_END,
	};
	struct api *a = NULL;
	json_t *t = NULL;
	char tid[67], path[120];

	if (!cli_parse(c, opts, argc, argv, "TASK [--force]", pos, 1, 1,
		       &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	snprintf(path, sizeof(path), "/v1/tasks/%s/cancel", tid);
	err = cli_api(c, 1, &a);
	if (err)
		return cli_fail(c);
	cli_on(c, CLI_ON_TASK);
	err = api_task(a, tid, &t);
	if (err)
		return cli_fail(c);
	json_decref(t);
	t = NULL;
	cli_on(c, CLI_ON_NONE);
	/* the cancel rejects what waits; a result is never dropped unseen */
	if (!force && none_undecided(a, tid))
		return fm_error_code() == FM_ECONFLICT
			       ? cli_fail_hint(c, "accept or reject them first "
					       "('accept RESULT', 'reject "
					       "RESULT --reason TEXT'), or "
					       "cancel with --force to reject "
					       "them as \"task cancelled\"")
			       : cli_fail(c);
	cli_on(c, CLI_ON_TASK);
	err = api_post(a, API_TASKD, path, NULL, &t);
	if (err)
		return cli_fail(c);
	if (c->json) {
		cli_print_json(t);
	} else {
		print_cancelled(a, tid);
		printf("task %s is %s; the escrow's unpaid rest goes back to "
		       "you (refund %s)\n",
		       tid, cli_show(t, "state"), cli_show(t, "refund_state"));
	}
	json_decref(t);
	return CLI_OK;
}

/* The escrow's record of task tid (funded by this creator, open and
 * past its deadline) and an open connection to the chain. */
static int refundable(struct cli *c, const char *tid,
		      const uint8_t tid_b[32], struct chain_rpc **r,
		      uint8_t escrow[CHAIN_ADDR_LEN], struct escrow_task *et)
{
	char op[CHAIN_ADDR_HEX];
	uint64_t now;
	int err;

	err = cli_identity(c);
	if (err)
		return err;
	err = work_market_chain(c, escrow, op);
	if (err)
		return err;
	cli_on(c, CLI_ON_CHAIN);
	err = chain_rpc_new(r, c->cfg.rpc_url, NULL);
	if (err)
		return err;
	err = escrow_get_task(*r, et, escrow, tid_b);
	if (err == FM_ENOTFOUND)
		return fm_error_set(FM_ENOTFOUND, "task %s was never funded on "
				    "the escrow", tid);
	if (err)
		return err;
	if (et->state != ESCROW_OPEN)
		return fm_error_set(FM_ECONFLICT, "the escrow of task %s is "
				    "already %s", tid,
				    escrow_state_name(et->state));
	if (memcmp(et->creator, c->key.addr, CHAIN_ADDR_LEN))
		return fm_error_set(FM_EFORBIDDEN, "task %s was funded by "
				    "another account; only its creator gets "
				    "the refund", tid);
	now = (uint64_t)time(NULL);
	if (now < et->deadline)
		return fm_error_set(FM_ECONFLICT, "the escrow's deadline of "
				    "task %s is in %llu s; cancel the task to "
				    "be refunded earlier", tid,
				    (unsigned long long)(et->deadline - now));
	return FM_OK;
}

static void print_refund(struct cli *c, const char *tid,
			 const struct escrow_task *et,
			 const struct chain_receipt *rc)
{
	char amount[CHAIN_U256_DEC_MAX], text[96], hash[67];

	chain_u256_to_dec(amount, sizeof(amount), &et->balance);
	hash[0] = '0';
	hash[1] = 'x';
	hex_encode(hash + 2, rc->tx_hash, 32);
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s, s:s}", "task_id", tid,
				      "refunded_wei", amount, "tx_hash", hash);

		cli_print_json(j);
		json_decref(j);
		return;
	}
	cli_format_wei(text, sizeof(text), amount);
	printf("refunded %s of task %s in transaction %s\n", text, tid, hash);
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
	struct chain_rpc *r = NULL;
	struct chain_receipt rc = { 0 };
	struct escrow_task et;
	struct chain_tx tx;
	char tid[67];
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "TASK", pos, 1, 1, &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	chain_tx_init(&tx);
	err = hex_decode(tid_b, 32, tid);
	if (err)
		goto done;
	err = refundable(c, tid, tid_b, &r, escrow, &et);
	if (err)
		goto done;
	err = escrow_refund_tx(&tx, escrow, tid_b);
	if (err)
		goto done;
	err = chain_rpc_send_tx(r, &rc, &tx, &c->key, timeout * 1000);
	if (err)
		goto done;
	print_refund(c, tid, &et, &rc);
done:
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	chain_rpc_free(r);
	return err ? cli_fail(c) : CLI_OK;
}
