/* validationd: the task's validator accepts or rejects results (an accept
 * writes its payout row in the same transaction), the auto strategy's
 * approvals, model version publishing, and the payout listing. */
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "http/server.h"
#include "market/market.h"
#include "service/svc.h"

#include <stddef.h>
#include <string.h>

static int decide(struct http_req *req, void *arg)
{
	static const char *const keys[] = { "decision", "reason", "metrics",
					    NULL };
	static const char *const verdicts[] = { "accept", "reject", NULL };
	struct svc *s = arg;
	struct market_decision_in in = { 0 };
	json_t *body = NULL, *out = NULL;
	int verdict, err;

	err = http_req_json(req, &body);
	if (!err)
		err = fj_no_unknown(body, "", keys);
	if (!err)
		err = fj_enum(body, "", "decision", verdicts, &verdict);
	if (!err)
		err = fj_str_opt(body, "", "reason", 2000, NULL, &in.reason);
	if (!err && json_object_get(body, "metrics") &&
	    !json_is_object(json_object_get(body, "metrics")))
		err = fm_error_set(FM_EINVAL, "metrics: expected an object");
	if (!err) {
		in.result_id = http_req_param(req, "id");
		in.validator = http_req_auth(req);
		in.accept = verdict == 0;
		in.metrics = json_object_get(body, "metrics");
		err = market_decide(s->db, &out, &in);
	}
	json_decref(body);
	return err ? err : svc_reply(req, 200, out);
}
SVC_IDEMPOTENT(decide)

static int publish(struct http_req *req, void *arg)
{
	static const char *const keys[] = { "bundle", "rule", "metrics",
					    "results", NULL };
	struct svc *s = arg;
	json_t *body = NULL, *results = NULL, *out = NULL;
	const char *bundle = NULL, *rule = NULL;
	int err;

	err = http_req_json(req, &body);
	if (!err)
		err = fj_no_unknown(body, "", keys);
	if (!err)
		err = fj_str(body, "", "bundle", 64, &bundle);
	if (!err)
		err = fj_str_opt(body, "", "rule", 64, NULL, &rule);
	if (!err)
		err = fj_arr(body, "", "results", 100000, &results);
	if (!err && json_object_get(body, "metrics") &&
	    !json_is_object(json_object_get(body, "metrics")))
		err = fm_error_set(FM_EINVAL, "metrics: expected an object");
	if (!err)
		err = market_model_publish(s->db, &out,
					   http_req_param(req, "id"),
					   http_req_auth(req), bundle, rule,
					   json_object_get(body, "metrics"),
					   results);
	json_decref(body);
	return err ? err : svc_reply(req, 201, out);
}
SVC_IDEMPOTENT(publish)

static int payouts(struct http_req *req, void *arg)
{
	static const char *const allowed[] = { "contributor", "task", NULL };
	struct svc *s = arg;
	const char *who = NULL, *task = NULL;
	json_t *out = NULL;
	int err = http_req_query_no_unknown(req, allowed);

	if (!err)
		err = http_req_query_str(req, "contributor", 42, NULL, &who);
	if (!err)
		err = http_req_query_str(req, "task", 66, NULL, &task);
	if (!err)
		err = market_payout_list(s->db, &out, who, task);
	return err ? err : http_respond_json(req, 200, out);
}

static int sweep(struct svc *s)
{
	int n = 0;
	int err = market_auto_accept(s->db, &n);

	if (!err && n)
		log_info("auto-accepted %d result(s)", n);
	return err;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/info", svc_info, 0, 0 },
	{ "POST", "/v1/results/{id:uuid}/decision", decide_idem, 65536,
	  HTTP_SIGNED },
	{ "POST", "/v1/tasks/{id:hash}/models", publish_idem, 1 << 22,
	  HTTP_SIGNED },
	{ "GET", "/v1/payouts", payouts, 0, 0 },
};

int main(int argc, char **argv)
{
	static const struct svc_def def = {
		"validationd", routes, sizeof(routes) / sizeof(routes[0]), sweep,
		offsetof(struct fm_config, validationd_listen)
	};

	return svc_main(&def, argc, argv);
}
