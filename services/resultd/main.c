/* resultd: contributors submit the result of an active assignment; the
 * result bundle is fetched, verified against its hashes and checked with
 * the engine before it is recorded. One submission of an assignment is
 * checked at a time, and result_checks_max of all at once within
 * result_tmp_max_bytes of temporary space; more are told to come back
 * (503 with Retry-After). */
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "http/server.h"
#include "market/market.h"
#include "service/budget.h"
#include "service/checks.h"
#include "service/svc.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The body of a result: the bundle and, optionally, the examples count,
 * the contributor's own metrics and the version it trained from. in
 * borrows from body. */
static int read_result(struct market_result_in *in, const json_t *body)
{
	static const char *const keys[] = { "bundle", "num_examples",
					    "metrics", "base_version", NULL };
	json_t *metrics = NULL;
	int err;

	in->has_base_version = json_object_get(body, "base_version") != NULL;
	err = fj_int_opt(body, "", "base_version", 0, SPEC_ROUNDS_MAX, 0,
			 &in->base_version);
	if (err)
		return err;

	err = fj_no_unknown(body, "", keys);
	if (err)
		return err;
	err = fj_str(body, "", "bundle", 64, &in->bundle_ref);
	if (err)
		return err;
	/* an integer here; its range is the task's (examples_ok) */
	err = fj_int_opt(body, "", "num_examples", LLONG_MIN, LLONG_MAX, 0,
			 &in->num_examples);
	if (err)
		return err;
	err = fj_obj_opt(body, "", "metrics", &metrics);
	if (err)
		return err;
	in->reported_metrics = metrics;
	return FM_OK;
}

/* num_examples is a FedAvg weight: at least 1 and at most the task's
 * max_examples_per_result (its default for tasks posted before it), so
 * no result outweighs the rest by claiming more. */
static int examples_ok(const json_t *task, long long n, int given)
{
	const json_t *v = json_object_get(json_object_get(task, "spec"),
					  "max_examples_per_result");
	long long cap = json_is_integer(v) && json_integer_value(v) > 0
		? (long long)json_integer_value(v) : SPEC_EXAMPLES_DEFAULT;

	if (!given)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "num_examples: required: the examples the "
				    "result was trained on, 1 to %lld "
				    "(task.max_examples_per_result)",
				    cap);
	if (n < 1 || n > cap)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "num_examples: %lld is not in 1 to %lld "
				    "(task.max_examples_per_result)",
				    n, cap);
	return FM_OK;
}

/* Seconds a client told 503 waits before trying again. */
#define BUSY_RETRY_S "5"

static struct budget budget;

static int init(struct svc *s)
{
	budget_init(&budget, (unsigned)s->cfg.result_checks_max,
		    (uint64_t)s->cfg.result_tmp_max_bytes);
	return FM_OK;
}

static int submit(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	struct market_result_in in = { 0 };
	json_t *body = NULL, *task = NULL, *checks = NULL, *out = NULL;
	const char *id = http_req_param(req, "id");
	long long retry_s = 0;
	char after[24];
	int claimed = 0, slot = 0, err;

	err = http_req_json(req, &body);
	if (err)
		goto done;
	err = read_result(&in, body);
	if (err)
		goto done;
	/* the assignment is claimed before a byte is downloaded: another
	 * submission of it meanwhile is refused at once */
	in.assignment_id = id;
	in.contributor = http_req_auth(req);
	err = market_submit_claim(s->db, &task, &in,
				  s->cfg.idempotency_lease_s, &retry_s);
	if (err == FM_ECONFLICT && retry_s > 0) {
		snprintf(after, sizeof(after), "%lld", retry_s);
		http_resp_header(req, "Retry-After", after);
	}
	if (err)
		goto done;
	claimed = 1;
	err = examples_ok(task, in.num_examples,
			  json_object_get(body, "num_examples") != NULL);
	if (err)
		goto done;
	err = budget_take_slot(&budget);
	if (err)
		goto busy;
	slot = 1;
	err = checks_result(&checks, s, task, in.bundle_ref, &budget);
	if (err == FM_EUNAVAIL)
		goto busy;
	if (err)
		goto done;
	in.checks = checks;
	err = market_result_submit(s->db, &out, &in);
	if (err)
		goto done;
	err = http_respond_json(req, 201, out);
	goto done;
busy:
	http_resp_header(req, "Retry-After", BUSY_RETRY_S);
done:
	if (slot)
		budget_give_slot(&budget);
	if (claimed)
		market_submit_release(s->db, id);
	json_decref(body);
	json_decref(task);
	json_decref(checks);
	return err;
}

static int show(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *out = NULL;
	int err = market_result_get(s->db, &out, http_req_param(req, "id"));

	return err ? err : http_respond_json(req, 200, out);
}

static int list(struct http_req *req, void *arg)
{
	static const char *const allowed[] = { "state", NULL };
	static const char *const states[] = { "submitted", "accepted",
					      "rejected", NULL };
	struct svc *s = arg;
	json_t *out = NULL;
	int st = -1;
	int err;

	err = http_req_query_no_unknown(req, allowed);
	if (err)
		return err;
	err = http_req_query_enum(req, "state", states, -1, &st);
	if (err)
		return err;
	err = market_result_list(s->db, &out, http_req_param(req, "id"),
				 st < 0 ? NULL : states[st]);
	return err ? err : http_respond_json(req, 200, out);
}

static const struct http_route routes[] = {
	{ "GET", "/v1/info", svc_info, 0, 0 },
	{ "POST", "/v1/assignments/{id:uuid}/result", submit, 65536,
	  HTTP_SIGNED | HTTP_IDEMPOTENT | HTTP_SLOW },
	{ "GET", "/v1/results/{id:uuid}", show, 0, 0 },
	{ "GET", "/v1/tasks/{id:hash}/results", list, 0, 0 },
};

int main(int argc, char **argv)
{
	static const struct svc_def def = {
		"resultd", routes, sizeof(routes) / sizeof(routes[0]), init,
		NULL, NULL, offsetof(struct fm_config, resultd_listen)
	};

	return svc_main(&def, argc, argv);
}
