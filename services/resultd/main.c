/* resultd: contributors submit the result of an active assignment; the
 * result bundle is fetched, verified against its hashes and checked with
 * the engine before it is recorded. */
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "http/server.h"
#include "market/market.h"
#include "service/svc.h"
#include "service/checks.h"

#include <stddef.h>
#include <string.h>

static int submit(struct http_req *req, void *arg)
{
	static const char *const keys[] = { "bundle", "num_examples",
					    "metrics", NULL };
	struct svc *s = arg;
	struct market_result_in in = { 0 };
	json_t *body = NULL, *assignment = NULL, *task = NULL, *checks = NULL;
	json_t *out = NULL, *metrics = NULL;
	const char *bundle = NULL;
	int err;

	err = http_req_json(req, &body);
	if (!err)
		err = fj_no_unknown(body, "", keys);
	if (!err)
		err = fj_str(body, "", "bundle", 64, &bundle);
	if (!err)
		err = fj_int_opt(body, "", "num_examples", 0, 1LL << 40, 0,
				 &in.num_examples);
	if (!err)
		err = fj_obj_opt(body, "", "metrics", &metrics);
	/* cheap state checks first: no download for a request that cannot
	 * succeed */
	if (!err)
		err = market_assignment_get(s->db, &assignment,
					    http_req_param(req, "id"));
	if (!err && strcmp(json_string_value(json_object_get(
				   assignment, "contributor")),
			   http_req_auth(req)))
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the assignee can submit a result");
	if (!err && strcmp(json_string_value(json_object_get(assignment,
							     "state")),
			   "active"))
		err = fm_error_set(FM_ECONFLICT, "assignment is %s, not active",
				   json_string_value(json_object_get(
					   assignment, "state")));
	if (!err)
		err = market_task_get(
			s->db, &task,
			json_string_value(json_object_get(assignment,
							  "task_id")));
	if (!err)
		err = checks_result(&checks, s, task, bundle);
	if (!err) {
		in.assignment_id = http_req_param(req, "id");
		in.contributor = http_req_auth(req);
		in.bundle_ref = bundle;
		in.reported_metrics = metrics;
		in.checks = checks;
		err = market_result_submit(s->db, &out, &in);
	}
	json_decref(body);
	json_decref(assignment);
	json_decref(task);
	json_decref(checks);
	return err ? err : http_respond_json(req, 201, out);
}
SVC_IDEMPOTENT(submit)

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
	int err = http_req_query_no_unknown(req, allowed);

	if (!err)
		err = http_req_query_enum(req, "state", states, -1, &st);
	if (!err)
		err = market_result_list(s->db, &out,
					 http_req_param(req, "id"),
					 st < 0 ? NULL : states[st]);
	return err ? err : http_respond_json(req, 200, out);
}

static const struct http_route routes[] = {
	{ "GET", "/v1/info", svc_info, 0, 0 },
	{ "POST", "/v1/assignments/{id:uuid}/result", submit_idem, 65536,
	  HTTP_SIGNED },
	{ "GET", "/v1/results/{id:uuid}", show, 0, 0 },
	{ "GET", "/v1/tasks/{id:hash}/results", list, 0, 0 },
};

int main(int argc, char **argv)
{
	static const struct svc_def def = {
		"resultd", routes, sizeof(routes) / sizeof(routes[0]), NULL, NULL,
		NULL, offsetof(struct fm_config, resultd_listen)
	};

	return svc_main(&def, argc, argv);
}
