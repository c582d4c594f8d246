/* assignd: contributors take a slot of a task, keep it alive, or give it
 * up; a sweeper expires assignments past their deadline and frees their
 * slots (Mechanical Turk's assignment semantics). */
#include "core/err.h"
#include "core/log.h"
#include "http/server.h"
#include "market/market.h"
#include "service/svc.h"

#include <stddef.h>

static int take(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *a = NULL;
	int err = market_assign(s->db, &a, http_req_param(req, "id"),
				http_req_auth(req));

	return err ? err : http_respond_json(req, 201, a);
}

static int show(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *a = NULL;
	int err = market_assignment_get(s->db, &a, http_req_param(req, "id"));

	return err ? err : http_respond_json(req, 200, a);
}

static int list(struct http_req *req, void *arg)
{
	static const char *const allowed[] = { "contributor", "task", NULL };
	struct svc *s = arg;
	char who[43];
	const char *task = NULL;
	int present = 0;
	json_t *a = NULL;
	int err;

	err = http_req_query_no_unknown(req, allowed);
	if (err)
		return err;
	err = http_req_query_addr(req, "contributor", who, &present);
	if (err)
		return err;
	if (!present)
		return fm_error_set(FM_EINVAL,
				    "query parameter contributor: required");
	err = http_req_query_str(req, "task", 66, NULL, &task);
	if (err)
		return err;
	err = market_assignment_list(s->db, &a, who, task);
	return err ? err : http_respond_json(req, 200, a);
}

static int heartbeat(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *a = NULL;
	int err = market_heartbeat(s->db, &a, http_req_param(req, "id"),
				   http_req_auth(req));

	return err ? err : http_respond_json(req, 200, a);
}

static int abandon(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *a = NULL;
	int err = market_abandon(s->db, &a, http_req_param(req, "id"),
				 http_req_auth(req));

	return err ? err : http_respond_json(req, 200, a);
}

static int sweep(struct svc *s)
{
	int n = 0;
	int err = market_expire_assignments(s->db, &n);

	if (err)
		return err;
	if (n)
		log_info("expired %d assignment(s); their slots are free", n);
	return FM_OK;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/info", svc_info, 0, 0 },
	{ "POST", "/v1/tasks/{id:hash}/assignments", take, 4096,
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
	{ "GET", "/v1/assignments", list, 0, 0 },
	{ "GET", "/v1/assignments/{id:uuid}", show, 0, 0 },
	{ "POST", "/v1/assignments/{id:uuid}/heartbeat", heartbeat, 4096,
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
	{ "POST", "/v1/assignments/{id:uuid}/abandon", abandon, 4096,
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
};

int main(int argc, char **argv)
{
	static const struct svc_def def = {
		"assignd", routes, sizeof(routes) / sizeof(routes[0]), NULL, sweep,
		NULL, offsetof(struct fm_config, assignd_listen)
	};

	return svc_main(&def, argc, argv);
}
