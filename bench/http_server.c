/* A trivial service for bench/http.sh: GET /ping answers {"ok":true},
 * GET /v1/items/{id:int} echoes the id. Usage:
 *   http_server PORT THREADS ACCESS_LOG(0|1)
 * Runs until SIGTERM/SIGINT, then drains. */
#include "core/err.h"
#include "core/log.h"
#include "http/server.h"

#include <stdio.h>
#include <stdlib.h>

static int ping(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static int item(struct http_req *req, void *arg)
{
	long long id;
	int err = http_req_param_int(req, "id", 0, 1000000000, &id);

	(void)arg;
	if (err)
		return err;
	return http_respond_json(req, 200, json_pack("{s:I}", "id", id));
}

static const struct http_route routes[] = {
	{ "GET", "/ping", ping, 0, 0 },
	{ "GET", "/v1/items/{id:int}", item, 0, 0 },
};

int main(int argc, char **argv)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct http_server *s = NULL;
	char listen[64];
	int err;

	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT THREADS ACCESS_LOG\n", argv[0]);
		return 2;
	}
	log_init("http-bench", LOG_INFO, 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
	o.listen = listen;
	o.name = "http-bench";
	o.threads = (unsigned)atoi(argv[2]);
	o.access_log = atoi(argv[3]);
	err = http_server_new(&s, &o, routes, sizeof(routes) / sizeof(routes[0]),
			      NULL);
	if (!err)
		err = http_server_start(s);
	if (!err)
		err = http_server_run(s);
	if (err)
		fprintf(stderr, "http-bench: %s\n", fm_error_msg());
	http_server_free(s);
	return err ? 1 : 0;
}
