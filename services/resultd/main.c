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

/* The body of a result: the bundle and, optionally, the examples count
 * and the contributor's own metrics. in borrows from body. */
static int read_result(struct market_result_in *in, const json_t *body)
{
	static const char *const keys[] = { "bundle", "num_examples",
					    "metrics", NULL };
	json_t *metrics = NULL;
	int err;

	err = fj_no_unknown(body, "", keys);
	if (err)
		return err;
	err = fj_str(body, "", "bundle", 64, &in->bundle_ref);
	if (err)
		return err;
	err = fj_int_opt(body, "", "num_examples", 0, 1LL << 40, 0,
			 &in->num_examples);
	if (err)
		return err;
	err = fj_obj_opt(body, "", "metrics", &metrics);
	if (err)
		return err;
	in->reported_metrics = metrics;
	return FM_OK;
}

/* The cheap state checks first, so that no bundle is downloaded for a
 * request that cannot succeed: the caller's assignment, still active.
 * Then its task. */
static int load_task(struct svc *s, json_t **task, const char *assignment_id,
		     const char *caller)
{
	json_t *a = NULL;
	const char *state;
	int err;

	err = market_assignment_get(s->db, &a, assignment_id);
	if (err)
		return err;
	if (strcmp(json_string_value(json_object_get(a, "contributor")),
		   caller)) {
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the assignee can submit a result");
		goto done;
	}
	state = json_string_value(json_object_get(a, "state"));
	if (strcmp(state, "active")) {
		err = fm_error_set(FM_ECONFLICT, "assignment is %s, not active",
				   state);
		goto done;
	}
	err = market_task_get(s->db, task,
			      json_string_value(json_object_get(a,
								"task_id")));
done:
	json_decref(a);
	return err;
}

static int submit(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	struct market_result_in in = { 0 };
	json_t *body = NULL, *task = NULL, *checks = NULL, *out = NULL;
	int err;

	err = http_req_json(req, &body);
	if (err)
		goto done;
	err = read_result(&in, body);
	if (err)
		goto done;
	err = load_task(s, &task, http_req_param(req, "id"),
			http_req_auth(req));
	if (err)
		goto done;
	err = checks_result(&checks, s, task, in.bundle_ref);
	if (err)
		goto done;
	in.assignment_id = http_req_param(req, "id");
	in.contributor = http_req_auth(req);
	in.checks = checks;
	err = market_result_submit(s->db, &out, &in);
	if (err)
		goto done;
	err = http_respond_json(req, 201, out);
done:
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
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
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
