/* taskd: creators post tasks (the assets bundle verified, the model
 * loaded by the engine, the escrow funding checked on chain), everyone
 * lists and reads them, their rounds and their model versions, creators
 * cancel. A creator holds max_drafts_per_creator unfunded drafts at
 * most. A sweeper opens drafts as the escrow's Funded logs name them,
 * expires drafts unfunded for draft_ttl_s and tasks past their expiry,
 * and closes, extends or fails rounds past their deadline. */
#include "core/err.h"
#include "core/log.h"
#include "http/server.h"
#include "market/market.h"
#include "service/checks.h"
#include "service/funding.h"
#include "service/svc.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

/* Opens the task just created, whose funding is already on chain. The
 * sweeper opens funded drafts too and may have come first: the task was
 * created and opened all the same, so it is read again. On success
 * *task is the open task. */
static int open_funded(struct svc *s, json_t **task, const char *task_id,
		       const char *funding_tx, const char *funded_wei)
{
	json_t *opened = NULL;
	int err = market_task_open(s->db, &opened, task_id, funding_tx,
				   funded_wei);

	if (err == FM_ECONFLICT)
		err = market_task_get(s->db, &opened, task_id);
	if (err)
		return err;
	json_decref(*task);
	*task = opened;
	return FM_OK;
}

static int create(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	struct task_spec spec = { 0 };
	struct market_chain_info chain = { s->operator_address,
					   s->cfg.escrow_address,
					   s->cfg.chain_id };
	json_t *body = NULL, *task = NULL;
	char funding_tx[67], funded[80], total[80];
	int funded_ok = 0, err;

	if (!s->operator_address[0] || !s->cfg.escrow_address[0])
		return fm_error_set(FM_EUNAVAIL,
				    "taskd is not configured with an escrow "
				    "and operator address");
	err = http_req_json(req, &body);
	if (err)
		goto done;
	err = task_spec_parse(&spec, body, (long long)time(NULL));
	/* the body is JSON but not a valid task: 422, naming the field */
	if (err == FM_EINVAL)
		err = fm_error_set(FM_EUNPROCESSABLE, "%s", fm_error_msg());
	if (err)
		goto done;
	/* the escrow holds the whole of it in one uint256 */
	if (spec_wei_mul(total, spec.reward_wei, spec.max_payouts)) {
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "task.reward_wei x rounds x results_per_round: "
				   "over 2^256 - 1 wei, more than the escrow "
				   "can hold");
		goto done;
	}
	err = checks_assets(s, &spec);
	if (err)
		goto done;
	err = checks_funding(s, &spec, http_req_auth(req), funding_tx, funded,
			     &funded_ok);
	if (err)
		goto done;
	err = market_task_create_limited(s->db, &task, &spec,
					 http_req_auth(req), &chain,
					 s->cfg.max_drafts_per_creator);
	if (err)
		goto done;
	/* funded since the check, its log may be behind the sweeper's
	 * cursor already: look once more now that the draft exists */
	if (!funded_ok &&
	    checks_funding(s, &spec, http_req_auth(req), funding_tx, funded,
			   &funded_ok) != FM_OK)
		funded_ok = 0;
	if (funded_ok) {
		err = open_funded(s, &task, spec.task_id, funding_tx, funded);
		if (err)
			goto done;
	}
	err = http_respond_json(req, 201, task);
	task = NULL; /* the response owns it */
done:
	json_decref(task);
	task_spec_cleanup(&spec);
	json_decref(body);
	return err;
}

static int show(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	char *text;
	size_t len = 0;
	int err = market_task_get_text(s->db, &text, &len,
				       http_req_param(req, "id"));

	return err ? err : http_respond_json_text(req, 200, text, len);
}

static int list(struct http_req *req, void *arg)
{
	static const char *const allowed[] = { "state", "kind", "creator",
					       "min_reward", "limit", "cursor",
					       NULL };
	static const char *const states[] = { "draft", "funded", "open",
					      "closed", "expired",
					      "cancelled", NULL };
	struct svc *s = arg;
	struct market_task_filter f = { 0 };
	long long limit = 50;
	int st = -1, kind = -1;
	char *text;
	size_t len = 0;
	int err;

	err = http_req_query_no_unknown(req, allowed);
	if (err)
		return err;
	err = http_req_query_enum(req, "state", states, -1, &st);
	if (err)
		return err;
	err = http_req_query_enum(req, "kind", task_kind_names, -1, &kind);
	if (err)
		return err;
	err = http_req_query_str(req, "creator", 42, NULL, &f.creator);
	if (err)
		return err;
	err = http_req_query_str(req, "min_reward", 78, NULL, &f.min_reward);
	if (err)
		return err;
	err = http_req_query_str(req, "cursor", 128, NULL, &f.cursor);
	if (err)
		return err;
	err = http_req_query_int(req, "limit", 1, 200, 50, &limit);
	if (err)
		return err;
	f.state = st < 0 ? NULL : states[st];
	f.kind = kind < 0 ? NULL : task_kind_names[kind];
	f.limit = (int)limit;
	err = market_task_list_text(s->db, &text, &len, &f);
	return err ? err : http_respond_json_text(req, 200, text, len);
}

static int models(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *out = NULL;
	int err = market_model_list(s->db, &out, http_req_param(req, "id"));

	return err ? err : http_respond_json(req, 200, out);
}

static int rounds(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	char *text;
	size_t len = 0;
	int err = market_round_list_text(s->db, &text, &len,
					 http_req_param(req, "id"));

	return err ? err : http_respond_json_text(req, 200, text, len);
}

static int cancel(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *out = NULL;
	int err = market_task_cancel(s->db, &out, http_req_param(req, "id"),
				     http_req_auth(req));

	return err ? err : http_respond_json(req, 200, out);
}

static int sweep(struct svc *s)
{
	int n = 0, err;

	err = funding_sweep(s, &n);
	if (n)
		log_info("opened %d funded task(s)", n);
	if (err)
		log_warn("funding sweep: %s", fm_error_msg());
	err = market_expire_drafts(s->db, s->cfg.draft_ttl_s, &n);
	if (err)
		return err;
	if (n)
		log_info("expired %d draft(s) left unfunded for %ld s", n,
			 s->cfg.draft_ttl_s);
	err = market_expire_tasks(s->db, &n);
	if (err)
		return err;
	if (n)
		log_info("expired %d task(s)", n);
	err = market_sweep_rounds(s->db, &n);
	if (err)
		return err;
	if (n)
		log_info("%d round(s) past their deadline closed, extended or "
			 "failed", n);
	return FM_OK;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/info", svc_info, 0, 0 },
	{ "GET", "/v1/tasks", list, 0, 0 },
	{ "POST", "/v1/tasks", create, 1 << 20,
	  HTTP_SIGNED | HTTP_IDEMPOTENT | HTTP_SLOW },
	{ "GET", "/v1/tasks/{id:hash}", show, 0, 0 },
	{ "GET", "/v1/tasks/{id:hash}/models", models, 0, 0 },
	{ "GET", "/v1/tasks/{id:hash}/rounds", rounds, 0, 0 },
	{ "POST", "/v1/tasks/{id:hash}/cancel", cancel, 4096,
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
};

int main(int argc, char **argv)
{
	static const struct svc_def def = {
		"taskd", routes, sizeof(routes) / sizeof(routes[0]), NULL, sweep,
		NULL, offsetof(struct fm_config, taskd_listen)
	};

	return svc_main(&def, argc, argv);
}
