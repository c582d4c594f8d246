#include "cli/view.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "chain/u256.h"
#include "cli/rounds.h"
#include "cli/work.h"
#include "core/err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static long long int_of(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static enum cli_color state_color(const char *s)
{
	if (!strcmp(s, "open") || !strcmp(s, "accepted") ||
	    !strcmp(s, "confirmed"))
		return CLI_GREEN;
	if (!strcmp(s, "rejected") || !strcmp(s, "failed") ||
	    !strcmp(s, "cancelled") || !strcmp(s, "expired"))
		return CLI_RED;
	return CLI_YELLOW;
}

/* Appends "&key=value" (value URL-encoded) to q. */
static int add_query(char *q, size_t n, const char *key, const char *value)
{
	char *enc;
	size_t len = strlen(q);

	if (!value)
		return FM_OK;
	enc = curl_easy_escape(NULL, value, 0);
	if (!enc)
		return fm_error_set(FM_ENOMEM, "out of memory");
	if ((size_t)snprintf(q + len, n - len, "%s%s=%s", len ? "&" : "?", key,
			     enc) >= n - len) {
		curl_free(enc);
		return fm_error_set(FM_EINVAL, "%s: too long", key);
	}
	curl_free(enc);
	return FM_OK;
}

/* The query string of q ("?state=open&limit=50"). */
static int task_query(char *query, size_t n, const struct view_task_query *q)
{
	char wei[CHAIN_U256_DEC_MAX], limit[24];
	struct chain_u256 min;
	int err;

	query[0] = '\0';
	err = add_query(query, n, "state", q->state);
	if (err)
		return err;
	err = add_query(query, n, "kind", q->kind);
	if (err)
		return err;
	err = add_query(query, n, "creator", q->creator);
	if (err)
		return err;
	if (q->min_reward) {
		err = chain_u256_parse(&min, q->min_reward, "--min-reward");
		if (err)
			return err;
		chain_u256_to_dec(wei, sizeof(wei), &min);
		err = add_query(query, n, "min_reward", wei);
		if (err)
			return err;
	}
	snprintf(limit, sizeof(limit), "%ld", q->limit ? q->limit : 50);
	return add_query(query, n, "limit", limit);
}

int view_tasks(struct cli *c, const struct view_task_query *q)
{
	char query[1024], path[1100];
	struct api *a = NULL;
	json_t *page = NULL, *t;
	size_t i;
	int err;

	err = task_query(query, sizeof(query), q);
	if (err)
		return err;
	err = cli_api(c, 0, &a);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/tasks%s", query);
	err = api_get(a, API_TASKD, path, &page);
	if (err)
		return err;
	if (c->json) {
		cli_print_json(json_object_get(page, "tasks"));
		json_decref(page);
		return FM_OK;
	}
	if (!json_array_size(json_object_get(page, "tasks")))
		printf("no tasks match\n");
	json_array_foreach(json_object_get(page, "tasks"), i, t) {
		char reward[96], rnd[48] = "";

		cli_format_wei(reward, sizeof(reward), cli_show(t, "reward_wei"));
		if (rounds_total(t) > 1)
			snprintf(rnd, sizeof(rnd), ", round %d of %d",
				 rounds_current(t), rounds_total(t));
		printf("%s%s%s  %s%-9s%s %-17s %s, %lld/%lld slots free, v%lld"
		       "%s\n    %s\n",
		       cli_c(c, CLI_BOLD), cli_show(t, "id"), cli_c(c, CLI_RESET),
		       cli_c(c, state_color(cli_show(t, "state"))),
		       cli_show(t, "state"), cli_c(c, CLI_RESET), cli_show(t, "kind"),
		       reward, int_of(t, "slots_free"),
		       int_of(t, "max_assignments"),
		       int_of(t, "current_version"), rnd, cli_show(t, "title"));
	}
	json_decref(page);
	return FM_OK;
}

static void print_metric(const json_t *m, const char *k)
{
	json_t *v = json_object_get(m, k);

	if (json_is_number(v))
		printf(", %s %.4f", k, json_number_value(v));
}

static void print_result_line(struct cli *c, const json_t *r)
{
	const json_t *d = json_object_get(r, "decision");

	printf("  %s  %s%-9s%s %s, %lld examples", cli_show(r, "id"),
	       cli_c(c, state_color(cli_show(r, "state"))), cli_show(r, "state"),
	       cli_c(c, CLI_RESET), cli_show(r, "contributor"),
	       int_of(r, "num_examples"));
	print_metric(json_object_get(d, "metrics"), "accuracy");
	if (json_is_string(json_object_get(d, "reason")))
		printf("\n      reason: %s", cli_show(d, "reason"));
	printf("\n");
}

int view_results(struct cli *c, const char *task_id, const char *state)
{
	char path[200];
	struct api *a = NULL;
	json_t *list = NULL, *t = NULL, *r;
	size_t i;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	/* a task without results and a task that does not exist differ */
	cli_on(c, CLI_ON_TASK);
	err = api_task(a, task_id, &t);
	json_decref(t);
	if (err)
		return err;
	cli_on(c, CLI_ON_NONE);
	snprintf(path, sizeof(path), "/v1/tasks/%s/results%s%s", task_id,
		 state ? "?state=" : "", state ? state : "");
	err = api_get(a, API_RESULTD, path, &list);
	if (err)
		return err;
	if (c->json)
		cli_print_json(json_object_get(list, "results"));
	else if (!json_array_size(json_object_get(list, "results")))
		printf("no results%s%s\n", state ? " in state " : "",
		       state ? state : "");
	else
		json_array_foreach(json_object_get(list, "results"), i, r)
			print_result_line(c, r);
	json_decref(list);
	return FM_OK;
}

int view_payouts(struct cli *c, const char *query, char *total_wei)
{
	char path[300];
	struct api *a = NULL;
	json_t *list = NULL, *p;
	struct chain_u256 sum = chain_u256_from_u64(0), v;
	size_t i;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/payouts%s", query);
	err = api_get(a, API_VALIDATIOND, path, &list);
	if (err)
		return err;
	json_array_foreach(json_object_get(list, "payouts"), i, p) {
		char amount[96];

		if (!strcmp(cli_show(p, "state"), "confirmed") &&
		    !chain_u256_parse(&v, cli_show(p, "amount_wei"), "amount"))
			chain_u256_add(&sum, &sum, &v);
		if (c->json)
			continue;
		cli_format_wei(amount, sizeof(amount), cli_show(p, "amount_wei"));
		printf("  %s %s%-9s%s to %s for result %s\n      tx %s\n",
		       amount, cli_c(c, state_color(cli_show(p, "state"))),
		       cli_show(p, "state"), cli_c(c, CLI_RESET),
		       cli_show(p, "contributor"), cli_show(p, "result_id"),
		       cli_show(p, "tx_hash"));
		/* paid by contribution: the score and the report it is in */
		if (json_is_string(json_object_get(p, "report")))
			printf("      round %lld, Shapley score %+.4f, scoring "
			       "report %s\n",
			       (long long)json_integer_value(
				       json_object_get(p, "round")),
			       json_number_value(json_object_get(p, "score")),
			       cli_show(p, "report"));
	}
	if (c->json && !total_wei)
		cli_print_json(json_object_get(list, "payouts"));
	if (total_wei)
		chain_u256_to_dec(total_wei, 80, &sum);
	json_decref(list);
	return FM_OK;
}

/* The escrow's view of the task, into j (JSON) or printed. */
static int escrow_view(struct cli *c, const char *task_id, json_t *j)
{
	uint8_t escrow[CHAIN_ADDR_LEN], tid[32];
	char op[CHAIN_ADDR_HEX], bal[CHAIN_U256_DEC_MAX], text[96];
	struct chain_rpc *r = NULL;
	struct escrow_task t;
	int err = work_market_chain(c, escrow, op);

	if (err)
		return err;
	err = hex_decode(tid, 32, task_id);
	if (err)
		return err;
	cli_on(c, CLI_ON_CHAIN);
	err = chain_rpc_new(&r, c->cfg.rpc_url, NULL);
	if (err)
		return err;
	err = escrow_get_task(r, &t, escrow, tid);
	chain_rpc_free(r);
	if (err)
		return err;
	cli_on(c, CLI_ON_NONE);
	chain_u256_to_dec(bal, sizeof(bal), &t.balance);
	if (j) {
		json_object_set_new(j, "escrow",
				    json_pack("{s:s, s:s, s:i, s:i, s:I}",
					      "state",
					      escrow_state_name(t.state),
					      "balance_wei", bal, "paid_count",
					      (int)t.paid_count, "max_payouts",
					      (int)t.max_payouts, "deadline",
					      (json_int_t)t.deadline));
		return FM_OK;
	}
	cli_format_wei(text, sizeof(text), bal);
	printf("escrow: %s, holds %s, %u of %u payouts made\n",
	       escrow_state_name(t.state), text, t.paid_count, t.max_payouts);
	return FM_OK;
}

/* What status shows besides the task: its model versions, results and
 * (in JSON) payouts. */
struct task_view {
	json_t *t, *models, *results, *pays, *rounds;
};

static int load_view(struct cli *c, const char *task_id, int full,
		     struct task_view *v)
{
	char path[200];
	struct api *a = NULL;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	cli_on(c, CLI_ON_TASK);
	err = api_task(a, task_id, &v->t);
	if (err || !full)
		return err;
	cli_on(c, CLI_ON_NONE);
	snprintf(path, sizeof(path), "/v1/tasks/%s/models", task_id);
	err = api_get(a, API_TASKD, path, &v->models);
	if (err)
		return err;
	err = view_rounds_load(c, v->t, &v->rounds);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/tasks/%s/results", task_id);
	err = api_get(a, API_RESULTD, path, &v->results);
	if (err || !c->json)
		return err;
	snprintf(path, sizeof(path), "/v1/payouts?task=%s", task_id);
	return api_get(a, API_VALIDATIOND, path, &v->pays);
}

static void print_task_head(struct cli *c, const json_t *t)
{
	char reward[96];

	cli_format_wei(reward, sizeof(reward), cli_show(t, "reward_wei"));
	printf("%s%s%s\n  %s%s%s  %s, reward %s, %lld/%lld slots free\n"
	       "  creator %s, validator %s (%s)\n  expires %s\n",
	       cli_c(c, CLI_BOLD), cli_show(t, "title"), cli_c(c, CLI_RESET),
	       cli_c(c, state_color(cli_show(t, "state"))), cli_show(t, "state"),
	       cli_c(c, CLI_RESET), cli_show(t, "kind"), reward,
	       int_of(t, "slots_free"), int_of(t, "max_assignments"),
	       cli_show(t, "creator"), cli_show(t, "validator"),
	       cli_show(t, "validation_strategy"), cli_show(t, "expires_at"));
	if (json_string_length(json_object_get(t, "description")))
		printf("  %s\n", cli_show(t, "description"));
	if (json_is_string(json_object_get(t, "funding_tx")))
		printf("  funded in transaction %s\n", cli_show(t, "funding_tx"));
	/* with rounds, the rounds part says it with its amount */
	if (strcmp(cli_show(t, "refund_state"), "none") && !rounds_known(t)) {
		printf("  refund %s", cli_show(t, "refund_state"));
		if (json_is_string(json_object_get(t, "refund_tx")))
			printf(" in transaction %s", cli_show(t, "refund_tx"));
		printf("\n");
	}
}

/* "a, b, c" of a JSON array of strings or numbers, into out. */
static void join(char *out, size_t n, const json_t *arr)
{
	size_t i, len = 0;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(arr, i, v) {
		char one[64];

		if (json_is_string(v))
			snprintf(one, sizeof(one), "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(one, sizeof(one), "%lld",
				 (long long)json_integer_value(v));
		else
			continue;
		if (len + strlen(one) + 3 >= n) {
			snprintf(out + len, n - len, "%s...", len ? ", " : "");
			return;
		}
		len += (size_t)snprintf(out + len, n - len, "%s%s",
					len ? ", " : "", one);
	}
}

void view_training(FILE *f, const json_t *spec)
{
	const json_t *t = json_object_get(spec, "training");
	const json_t *d = json_object_get(t, "data");
	const json_t *pre = json_object_get(d, "preprocessing");
	const json_t *cols = json_object_get(d, "inputs"), *rs;
	char list[512];

	if (!json_is_object(t))
		return;
	fprintf(f, "  training: %lld epoch(s), batch %lld, %s at learning "
		   "rate %g, loss %s%s\n",
		(long long)json_integer_value(json_object_get(t, "epochs")),
		(long long)json_integer_value(json_object_get(t, "batch_size")),
		cli_show(t, "optimizer"),
		json_number_value(json_object_get(t, "learning_rate")),
		cli_show(t, "loss"),
		json_is_true(json_object_get(t, "from_logits"))
			? " (from logits)"
			: "");
	if (!json_is_object(d))
		return;
	fprintf(f, "  data: %s, %s", cli_show(d, "kind"), cli_show(d, "format"));
	if (!strcmp(cli_show(d, "format"), "idx"))
		fprintf(f, " (--data: a folder with *images* and *labels* "
			   "files, or IMAGES,LABELS)");
	else if (!strcmp(cli_show(d, "format"), "csv"))
		fprintf(f, " (--data: a CSV file whose header names the "
			   "columns)");
	fprintf(f, "\n");
	if (json_array_size(json_object_get(d, "shape"))) {
		join(list, sizeof(list), json_object_get(d, "shape"));
		fprintf(f, "  sample shape: [%s]\n", list);
	}
	if (!json_is_array(cols))
		cols = json_object_get(d, "columns");
	if (json_array_size(cols)) {
		join(list, sizeof(list), cols);
		fprintf(f, "  CSV columns: %s\n", list);
	}
	if (json_is_string(json_object_get(d, "label_column")))
		fprintf(f, "  label column: %s\n", cli_show(d, "label_column"));
	if (json_array_size(json_object_get(d, "labels"))) {
		join(list, sizeof(list), json_object_get(d, "labels"));
		fprintf(f, "  classes: %s\n", list);
	} else if (json_is_integer(json_object_get(d, "num_classes"))) {
		fprintf(f, "  classes: %lld\n",
			(long long)json_integer_value(
				json_object_get(d, "num_classes")));
	}
	rs = json_object_get(pre, "resize");
	if (json_is_number(json_object_get(pre, "scale")))
		fprintf(f, "  preprocessing: values divided by %g\n",
			json_number_value(json_object_get(pre, "scale")));
	else if (json_is_string(json_object_get(pre, "normalize")))
		fprintf(f, "  preprocessing: normalize %s\n",
			cli_show(pre, "normalize"));
	if (json_array_size(rs) == 2)
		fprintf(f, "  preprocessing: resized to %lldx%lld\n",
			(long long)json_integer_value(json_array_get(rs, 0)),
			(long long)json_integer_value(json_array_get(rs, 1)));
}

/* Versions, results, payouts and escrow under the task's head. */
static int print_task_rest(struct cli *c, const char *task_id,
			   const struct task_view *v)
{
	char q[120];
	json_t *m, *r;
	size_t i;
	int err;

	printf("model versions:\n");
	json_array_foreach(json_object_get(v->models, "models"), i, m) {
		printf("  v%lld  %s", int_of(m, "version"),
		       cli_show(m, "bundle_ref"));
		if (json_is_string(json_object_get(m, "rule")))
			printf("  %s of %zu results", cli_show(m, "rule"),
			       json_array_size(json_object_get(m, "results")));
		print_metric(json_object_get(m, "metrics"), "accuracy");
		printf("\n");
	}
	printf("results:\n");
	if (!json_array_size(json_object_get(v->results, "results")))
		printf("  none yet\n");
	json_array_foreach(json_object_get(v->results, "results"), i, r)
		print_result_line(c, r);
	printf("payouts:\n");
	snprintf(q, sizeof(q), "?task=%s", task_id);
	err = view_payouts(c, q, NULL);
	if (err)
		return err;
	if (escrow_view(c, task_id, NULL))
		printf("escrow: not readable (%s)\n", fm_error_msg());
	return FM_OK;
}

int view_task(struct cli *c, const char *task_id, int full)
{
	struct task_view v = { 0 };
	int err;

	err = load_view(c, task_id, full, &v);
	if (err)
		goto done;
	if (c->json) {
		if (full) {
			json_object_set(v.t, "payouts",
					json_object_get(v.pays, "payouts"));
			json_object_set(v.t, "models",
					json_object_get(v.models, "models"));
			json_object_set(v.t, "results",
					json_object_get(v.results, "results"));
			/* "rounds" is the task's count of rounds */
			json_object_set(v.t, "rounds_list", v.rounds);
			escrow_view(c, task_id, v.t); /* best effort */
		}
		cli_print_json(v.t);
		goto done;
	}
	print_task_head(c, v.t);
	/* show: the settings and the current round, no table */
	view_rounds_print(c, v.t, v.rounds);
	if (full)
		err = print_task_rest(c, task_id, &v);
	else
		view_training(stdout, json_object_get(v.t, "spec"));
done:
	json_decref(v.t);
	json_decref(v.models);
	json_decref(v.results);
	json_decref(v.pays);
	json_decref(v.rounds);
	return err;
}
