/* The HTTP server on loopback, driven by the real client and by raw
 * sockets for what a well-behaved client never sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"
#include "http_support.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct svc {
	_Atomic int slow_started;
	_Atomic int health_err;
	struct http_metric *custom;
};

struct fx {
	struct svc svc;
	struct http_server *s;
	struct httpc *c;
	unsigned port;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* ---- the test service ---- */

static int h_item(struct http_req *req, void *arg)
{
	long long id;
	int err;

	(void)arg;
	err = http_req_param_int(req, "id", 0, 1000000, &id);
	if (err)
		return err;
	return http_respond_json(req, 200, json_pack("{s:I}", "id", id));
}

static int h_special(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200, json_pack("{s:b}", "special", 1));
}

static int h_typed(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200,
				 json_pack("{s:s, s:s, s:s}", "addr",
					   http_req_param(req, "a"), "hash",
					   http_req_param(req, "h"), "uuid",
					   http_req_param(req, "u")));
}

static int h_query(struct http_req *req, void *arg)
{
	static const char *const states[] = { "open", "closed", NULL };
	static const char *const known[] = { "limit", "state", "flag",
					     "owner", "name", NULL };
	long long limit;
	int state, flag, has_owner, err;
	const char *name;
	char owner[43];

	(void)arg;
	err = http_req_query_no_unknown(req, known);
	if (!err)
		err = http_req_query_int(req, "limit", 1, 100, 10, &limit);
	if (!err)
		err = http_req_query_enum(req, "state", states, 0, &state);
	if (!err)
		err = http_req_query_bool(req, "flag", 0, &flag);
	if (!err)
		err = http_req_query_addr(req, "owner", owner, &has_owner);
	if (!err)
		err = http_req_query_str(req, "name", 8, "none", &name);
	if (err)
		return err;
	return http_respond_json(
		req, 200,
		json_pack("{s:I, s:s, s:b, s:s, s:s}", "limit", limit, "state",
			  states[state], "flag", flag, "owner",
			  has_owner ? owner : "", "name", name));
}

static int h_echo(struct http_req *req, void *arg)
{
	json_t *j = NULL;
	long long n;
	int err;

	(void)arg;
	err = http_req_json(req, &j);
	if (!err)
		err = fj_int(j, "", "n", 0, 10, &n);
	if (err) {
		json_decref(j);
		return err;
	}
	return http_respond_json(req, 201, j);
}

static int h_fail(struct http_req *req, void *arg)
{
	const char *kind = http_req_param(req, "kind");

	(void)arg;
	if (strcmp(kind, "conflict") == 0)
		return fm_error_set(FM_ECONFLICT, "no slot left on task 7");
	if (strcmp(kind, "internal") == 0)
		return fm_error_set(FM_EINTERNAL, "secret SQL detail");
	if (strcmp(kind, "unavail") == 0)
		return fm_error_set(FM_EUNAVAIL, "database is down");
	if (strcmp(kind, "unprocessable") == 0)
		return fm_error_set(FM_EUNPROCESSABLE, "model: wrong shape");
	return FM_OK; /* "none": a handler bug, no response */
}

static int h_slow(struct http_req *req, void *arg)
{
	struct svc *svc = arg;
	long long ms;
	int err = http_req_query_int(req, "ms", 0, 10000, 500, &ms);

	if (err)
		return err;
	atomic_fetch_add(&svc->slow_started, 1);
	sleep_ms((long)ms);
	return http_respond_json(req, 200, json_pack("{s:I}", "slept", ms));
}

static int h_signed(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200,
				 json_pack("{s:s, s:s}", "auth",
					   http_req_auth(req), "target",
					   http_req_target(req)));
}

static int h_header(struct http_req *req, void *arg)
{
	struct svc *svc = arg;
	int err = http_resp_header(req, "X-Custom", "yes");

	http_metric_add(svc->custom, "hit", 1);
	if (!err)
		err = http_respond_raw(req, 200, "text/plain", "plain", 5);
	return err;
}

static int h_idem(struct http_req *req, void *arg)
{
	const char *key;
	int err;

	(void)arg;
	err = http_req_idempotency_key(req, &key);
	if (err)
		return err;
	if (key && strcmp(key, "conflict") == 0)
		return fm_error_set(FM_ECONFLICT, "already taken");
	return http_respond_json(req, 200, json_pack("{s:s?}", "key", key));
}

/* The server's idempotency wrapper: code around the handler of an
 * HTTP_IDEMPOTENT route, which answers errors itself and reads back what
 * was answered, as an idempotency record would. */
static int record(void *arg, struct http_req *req, http_handler_fn handler,
		  void *handler_arg)
{
	const char *body;
	char copy[256];
	size_t len = 1;
	int err;

	(void)arg;
	assert_int_equal(http_resp_status(req), 0);
	assert_null(http_resp_body(req, &len));
	assert_int_equal(len, 0);
	err = handler(req, handler_arg);
	if (err && !http_resp_status(req))
		http_respond_error(req, err);
	body = http_resp_body(req, &len);
	assert_non_null(body);
	assert_int_equal(strlen(body), len);
	snprintf(copy, sizeof(copy), "%d %s", http_resp_status(req), body);
	return http_resp_header(req, "X-Recorded", copy);
}

static const struct http_route routes[] = {
	{ "POST", "/idem", h_idem, 0, HTTP_IDEMPOTENT },
	{ "GET", "/items/{id:int}", h_item, 0, 0 },
	{ "DELETE", "/items/{id:int}", h_item, 0, 0 },
	{ "GET", "/items/special", h_special, 0, 0 },
	{ "GET", "/t/{a:addr}/{h:hash}/{u:uuid}", h_typed, 0, 0 },
	{ "GET", "/q", h_query, 0, 0 },
	{ "POST", "/echo", h_echo, 64, 0 },
	{ "GET", "/fail/{kind}", h_fail, 0, 0 },
	{ "GET", "/slow", h_slow, 0, 0 },
	{ "GET", "/slow-apart", h_slow, 0, HTTP_SLOW },
	{ "POST", "/signed", h_signed, 0, HTTP_SIGNED },
	{ "GET", "/header", h_header, 0, 0 },
};

static int health(void *arg)
{
	struct svc *svc = arg;

	if (atomic_load(&svc->health_err))
		return fm_error_set(FM_EUNAVAIL, "database: connection "
				    "refused");
	return FM_OK;
}

/* Options of the next fixture, for the tests of connection limits. */
static unsigned fx_request_timeout_s = 10, fx_max_per_ip;

static int fx_start(struct fx *f, unsigned port_k, unsigned threads)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct httpc_opts co = HTTPC_OPTS_INIT;
	char listen[64], base[64];
	int err;

	f->port = http_test_port(port_k);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", f->port);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
	o.listen = listen;
	o.name = "testd";
	o.threads = threads;
	o.idle_timeout_s = 1;
	o.request_timeout_s = fx_request_timeout_s;
	o.max_per_ip = fx_max_per_ip;
	o.drain_ms = 5000;
	o.max_body = 1024;
	o.verify = http_test_verify;
	o.health = health;
	o.health_arg = &f->svc;
	o.idempotent = record;
	err = http_server_new(&f->s, &o, routes,
			      sizeof(routes) / sizeof(routes[0]), &f->svc);
	if (!err)
		err = http_metrics_counter(http_server_metrics(f->s),
					   "testd_hits_total", "Header hits.",
					   "kind", &f->svc.custom);
	if (!err)
		err = http_test_start(f->s);
	co.base_url = base;
	co.retries = 0;
	if (!err)
		err = httpc_new(&f->c, &co);
	return err;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || fx_start(f, 0, 4)) {
		fprintf(stderr, "setup: %s\n", fm_error_msg());
		return -1;
	}
	*state = f;
	return 0;
}

/* One server thread. */
static int setup_one_thread(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || fx_start(f, 0, 1)) {
		fprintf(stderr, "setup: %s\n", fm_error_msg());
		return -1;
	}
	*state = f;
	return 0;
}

/* A 2 s request deadline and 8 connections per address. */
static int setup_strict(void **state)
{
	int rc;

	fx_request_timeout_s = 2;
	fx_max_per_ip = 8;
	rc = setup(state);
	fx_request_timeout_s = 10;
	fx_max_per_ip = 0;
	return rc;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	httpc_free(f->c);
	http_server_free(f->s);
	free(f);
	return 0;
}

/* Sends one request with the real client; returns the status (0 on a
 * transport error). resp is reset first. */
static long call(struct fx *f, const char *method, const char *path,
		 const char *body, struct httpc_resp *resp)
{
	struct httpc_req r = { 0 };

	httpc_resp_cleanup(resp);
	httpc_resp_init(resp);
	r.method = method;
	r.path = path;
	if (body) {
		r.body = body;
		r.body_len = strlen(body);
		r.content_type = "application/json";
	}
	httpc_send(f->c, &r, resp);
	return resp->status;
}

static const char *err_code(const struct httpc_resp *r)
{
	return json_string_value(json_object_get(
		json_object_get(r->json, "error"), "code"));
}

static const char *err_msg(const struct httpc_resp *r)
{
	const char *m = json_string_value(json_object_get(
		json_object_get(r->json, "error"), "message"));
	return m ? m : "";
}

/* ---- tests ---- */

static void test_http_server__routes_and_typed_params(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/items/42", NULL, &r), 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "id")),
			 42);
	assert_int_equal(call(f, "DELETE", "/items/7", NULL, &r), 200);
	assert_int_equal(call(f, "GET", "/items/abc", NULL, &r), 400);
	assert_string_equal(err_code(&r), "invalid_argument");
	assert_non_null(strstr(err_msg(&r), "path parameter id"));
	assert_non_null(strstr(err_msg(&r), "'abc'"));
	/* typed, but out of the handler's range */
	assert_int_equal(call(f, "GET", "/items/2000000", NULL, &r), 400);
	assert_non_null(strstr(err_msg(&r), "[0, 1000000]"));
	/* over int64 */
	assert_int_equal(call(f, "GET", "/items/99999999999999999999", NULL,
			      &r), 400);
	assert_int_equal(call(f, "GET", "/items/-1", NULL, &r), 400);
	assert_int_equal(
		call(f, "GET",
		     "/t/0xAbCdEf0123456789abcdef0123456789ABCDEF01/"
		     "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/"
		     "123e4567-e89b-12d3-a456-426614174000",
		     NULL, &r),
		200);
	assert_string_equal(json_string_value(json_object_get(r.json, "uuid")),
			    "123e4567-e89b-12d3-a456-426614174000");
	assert_int_equal(
		call(f, "GET",
		     "/t/0x12/"
		     "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/"
		     "123e4567-e89b-12d3-a456-426614174000",
		     NULL, &r),
		400);
	assert_non_null(strstr(err_msg(&r), "path parameter a"));
	assert_int_equal(
		call(f, "GET",
		     "/t/0xAbCdEf0123456789abcdef0123456789ABCDEF01/"
		     "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/"
		     "123e4567-e89b-12d3-a456-42661417400g",
		     NULL, &r),
		400);
	assert_non_null(strstr(err_msg(&r), "path parameter u"));
	/* a non-UTF-8 byte in a parameter still gives valid JSON */
	assert_int_equal(call(f, "GET", "/items/%FF", NULL, &r), 400);
	assert_non_null(r.json);
	httpc_resp_cleanup(&r);
}

static void test_http_server__literal_beats_param(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/items/special", NULL, &r), 200);
	assert_true(json_is_true(json_object_get(r.json, "special")));
	httpc_resp_cleanup(&r);
}

static void test_http_server__unknown_route_and_wrong_method(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	char allow[128];
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/nope", NULL, &r), 404);
	assert_string_equal(err_code(&r), "not_found");
	assert_int_equal(call(f, "GET", "/items/1/", NULL, &r), 404);
	assert_int_equal(call(f, "GET", "//items/1", NULL, &r), 404);
	assert_int_equal(call(f, "POST", "/items/1", "{}", &r), 405);
	/* 405 names the methods that exist, in the Allow header */
	assert_int_equal(http_test_raw(f->port,
				       "PATCH /items/3 HTTP/1.1\r\nHost: t\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 405);
	assert_int_equal(http_test_header(b.data, "Allow", allow,
					  sizeof(allow)),
			 0);
	assert_string_equal(allow, "GET, HEAD, DELETE");
	assert_int_equal(http_test_raw(f->port,
				       "HEAD /items/3 HTTP/1.1\r\nHost: t\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 200);
	httpc_resp_cleanup(&r);
	buf_cleanup(&b);
}

static void test_http_server__query_getters(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/q", NULL, &r), 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "limit")),
			 10);
	assert_string_equal(json_string_value(json_object_get(r.json, "name")),
			    "none");
	assert_int_equal(
		call(f, "GET",
		     "/q?limit=100&state=closed&flag&name=a%20b&owner="
		     "0xAbCdEf0123456789abcdef0123456789ABCDEF01",
		     NULL, &r),
		200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "limit")),
			 100);
	assert_string_equal(json_string_value(json_object_get(r.json, "state")),
			    "closed");
	assert_true(json_is_true(json_object_get(r.json, "flag")));
	assert_string_equal(json_string_value(json_object_get(r.json, "name")),
			    "a b");
	assert_string_equal(json_string_value(json_object_get(r.json, "owner")),
			    "0xabcdef0123456789abcdef0123456789abcdef01");

	assert_int_equal(call(f, "GET", "/q?limit=101", NULL, &r), 400);
	assert_string_equal(err_msg(&r), "query parameter limit: expected an "
			    "integer in [1, 100], got '101'");
	assert_int_equal(call(f, "GET", "/q?limit=5x", NULL, &r), 400);
	assert_int_equal(call(f, "GET", "/q?limit=", NULL, &r), 400);
	assert_int_equal(call(f, "GET", "/q?state=gone", NULL, &r), 400);
	assert_non_null(strstr(err_msg(&r), "one of open, closed"));
	assert_int_equal(call(f, "GET", "/q?flag=maybe", NULL, &r), 400);
	assert_int_equal(call(f, "GET", "/q?owner=0x1234", NULL, &r), 400);
	assert_int_equal(call(f, "GET", "/q?name=123456789", NULL, &r), 400);
	assert_non_null(strstr(err_msg(&r), "longer than 8"));
	assert_int_equal(call(f, "GET", "/q?limt=5", NULL, &r), 400);
	assert_string_equal(err_msg(&r),
			    "query parameter limt is not known here");
	httpc_resp_cleanup(&r);
}

static void test_http_server__json_body_errors(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "POST", "/echo", "{\"n\":3}", &r), 201);
	assert_int_equal(json_integer_value(json_object_get(r.json, "n")), 3);
	assert_int_equal(call(f, "POST", "/echo", "{\"n\":", &r), 400);
	assert_non_null(strstr(err_msg(&r), "request body: invalid JSON at "
					    "line 1"));
	assert_int_equal(call(f, "POST", "/echo", "", &r), 400);
	assert_non_null(strstr(err_msg(&r), "empty body"));
	assert_int_equal(call(f, "POST", "/echo", "{\"m\":1}", &r), 400);
	assert_string_equal(err_msg(&r), "n: required field is missing");
	assert_int_equal(call(f, "POST", "/echo", "{\"n\":11}", &r), 400);
	assert_non_null(strstr(err_msg(&r), "n: expected"));
	assert_int_equal(call(f, "POST", "/echo", "{\"n\":1,\"n\":2}", &r),
			 400);
	httpc_resp_cleanup(&r);
}

static void test_http_server__body_limit_before_reading(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	struct httpc_resp r;
	char big[200];
	int fd;

	/* the headers alone announce too much: the answer comes without a
	 * single body byte sent */
	fd = http_test_connect(f->port);
	assert_true(fd >= 0);
	const char *h = "POST /echo HTTP/1.1\r\nHost: t\r\n"
			"Content-Type: application/json\r\n"
			"Content-Length: 100000000\r\n\r\n";
	assert_int_equal(http_test_send(fd, h, strlen(h)), 0);
	assert_int_equal(http_test_read_response(fd, &b), 413);
	assert_non_null(strstr(b.data, "\"too_large\""));
	assert_non_null(strstr(b.data, "100000000 bytes is over the limit of "
				       "64 bytes"));
	close(fd);

	/* the route's own limit (64), not the server's (1024) */
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	memcpy(big + sizeof(big) - 8, "\"n\":1}", 7);
	httpc_resp_init(&r);
	assert_int_equal(call(f, "POST", "/echo", big, &r), 413);
	assert_string_equal(err_code(&r), "too_large");
	httpc_resp_cleanup(&r);
	buf_cleanup(&b);
}

static void test_http_server__chunked_body_limit(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	char req[1024];
	char chunk[101];

	memset(chunk, 'a', 100);
	chunk[100] = '\0';
	snprintf(req, sizeof(req),
		 "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n64\r\n%s\r\n0\r\n\r\n",
		 chunk);
	assert_int_equal(http_test_raw(f->port, req, &b), 413);
	assert_non_null(strstr(b.data, "over the limit of 64 bytes"));
	/* a small chunked body is fine */
	assert_int_equal(http_test_raw(f->port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Connection: close\r\n"
				       "Transfer-Encoding: chunked\r\n\r\n"
				       "7\r\n{\"n\":2}\r\n0\r\n\r\n",
				       &b),
			 201);
	buf_cleanup(&b);
}

static void test_http_server__request_id(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	char id[128];

	assert_int_equal(http_test_raw(f->port,
				       "GET /nope HTTP/1.1\r\nHost: t\r\n"
				       "X-Request-Id: abc-123.x:y\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 404);
	assert_int_equal(http_test_header(b.data, "X-Request-Id", id,
					  sizeof(id)),
			 0);
	assert_string_equal(id, "abc-123.x:y");
	assert_non_null(strstr(b.data, "\"request_id\":\"abc-123.x:y\""));
	/* unsafe ids are replaced by a generated one */
	assert_int_equal(http_test_raw(f->port,
				       "GET /items/1 HTTP/1.1\r\nHost: t\r\n"
				       "X-Request-Id: bad id\"\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 200);
	assert_int_equal(http_test_header(b.data, "X-Request-Id", id,
					  sizeof(id)),
			 0);
	assert_int_equal(strlen(id), 16);
	assert_int_equal(strspn(id, "0123456789abcdef"), 16);
	buf_cleanup(&b);
}

static void test_http_server__handler_errors(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/fail/conflict", NULL, &r), 409);
	assert_string_equal(err_code(&r), "conflict");
	assert_string_equal(err_msg(&r), "no slot left on task 7");
	assert_int_equal(call(f, "GET", "/fail/unprocessable", NULL, &r), 422);
	assert_int_equal(call(f, "GET", "/fail/unavail", NULL, &r), 503);
	assert_string_equal(err_msg(&r), "database is down");
	/* internal details stay in the log */
	assert_int_equal(call(f, "GET", "/fail/internal", NULL, &r), 500);
	assert_string_equal(err_msg(&r), "internal error");
	assert_null(strstr(r.body.data, "secret"));
	assert_int_equal(call(f, "GET", "/fail/none", NULL, &r), 500);
	assert_int_equal(call(f, "GET", "/header", NULL, &r), 200);
	assert_string_equal(r.body.data, "plain");
	httpc_resp_cleanup(&r);
}

static void test_http_server__idempotency_key(void **state)
{
	struct fx *f = *state;
	struct httpc_req req = { 0 };
	struct httpc_resp r;
	char long_key[HTTP_IDEMPOTENCY_KEY_MAX + 50];

	httpc_resp_init(&r);
	req.method = "POST";
	req.path = "/idem";
	assert_int_equal(httpc_send(f->c, &req, &r), FM_OK);
	assert_true(json_is_null(json_object_get(r.json, "key")));
	req.idempotency_key = "123e4567-e89b-12d3-a456-426614174000";
	assert_int_equal(httpc_send(f->c, &req, &r), FM_OK);
	assert_string_equal(json_string_value(json_object_get(r.json, "key")),
			    req.idempotency_key);
	req.idempotency_key = "has space";
	assert_int_equal(httpc_send(f->c, &req, &r), FM_EINVAL);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(fm_error_msg(), "Idempotency-Key"));
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	req.idempotency_key = long_key;
	assert_int_equal(httpc_send(f->c, &req, &r), FM_EINVAL);
	long_key[HTTP_IDEMPOTENCY_KEY_MAX] = '\0';
	assert_int_equal(httpc_send(f->c, &req, &r), FM_OK);
	httpc_resp_cleanup(&r);
}

static void test_http_server__response_readable_around_handler(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	char rec[512];

	assert_int_equal(http_test_raw(f->port,
				       "POST /idem HTTP/1.1\r\nHost: t\r\n"
				       "Idempotency-Key: a/b\"c\r\n"
				       "Content-Length: 0\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 200);
	assert_int_equal(http_test_header(b.data, "X-Recorded", rec,
					  sizeof(rec)),
			 0);
	assert_string_equal(rec, "200 {\"key\":\"a/b\\\"c\"}");
	/* an error answered by the code around the handler is readable too */
	assert_int_equal(http_test_raw(f->port,
				       "POST /idem HTTP/1.1\r\nHost: t\r\n"
				       "Idempotency-Key: conflict\r\n"
				       "X-Request-Id: rec-1\r\n"
				       "Content-Length: 0\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 409);
	assert_int_equal(http_test_header(b.data, "X-Recorded", rec,
					  sizeof(rec)),
			 0);
	assert_string_equal(rec, "409 {\"error\":{\"code\":\"conflict\","
				 "\"message\":\"already taken\","
				 "\"request_id\":\"rec-1\"}}");
	buf_cleanup(&b);
}

static long signed_call(struct fx *f, const char *addr, const char *path,
			const char *sign_body, const char *send_body,
			struct buf *out)
{
	struct buf req = BUF_INIT(1 << 16);
	char tag[65];
	long st;

	assert_int_equal(http_test_tag(tag, "POST", path, sign_body,
				       strlen(sign_body), addr),
			 FM_OK);
	buf_appendf(&req,
		    "POST %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		    "X-Test-Addr: %s\r\nX-Test-Sig: %s\r\n"
		    "Content-Length: %zu\r\n\r\n%s",
		    path, addr, tag, strlen(send_body), send_body);
	st = http_test_raw(f->port, req.data, out);
	buf_cleanup(&req);
	return st;
}

static void test_http_server__signed_routes(void **state)
{
	struct fx *f = *state;
	const char *addr = "0x00000000000000000000000000000000000000aa";
	struct buf b = BUF_INIT(1 << 20);
	struct httpc_resp r;
	json_t *j;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "POST", "/signed", "{}", &r), 401);
	assert_string_equal(err_code(&r), "unauthenticated");
	/* the verifier sees the target with its query, as sent */
	assert_int_equal(signed_call(f, addr, "/signed?x=%41", "{}", "{}", &b),
			 200);
	j = json_loads(strstr(b.data, "\r\n\r\n") + 4, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "auth")),
			    addr);
	assert_string_equal(json_string_value(json_object_get(j, "target")),
			    "/signed?x=%41");
	json_decref(j);
	/* a body changed after signing */
	assert_int_equal(signed_call(f, addr, "/signed", "{}", "{\"a\":1}", &b),
			 401);
	assert_non_null(strstr(b.data, "does not match"));
	/* a valid signature by an address that may not */
	assert_int_equal(signed_call(f, http_test_banned, "/signed", "{}", "{}",
				     &b),
			 403);
	assert_non_null(strstr(b.data, "\"forbidden\""));
	httpc_resp_cleanup(&r);
	buf_cleanup(&b);
}

static void test_http_server__healthz(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;

	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/healthz", NULL, &r), 200);
	assert_string_equal(json_string_value(json_object_get(r.json,
							      "status")),
			    "ok");
	struct buf b = BUF_INIT(1 << 20);
	char text[4096];
	FILE *log = tmpfile();
	size_t n;

	/* the check's own message (hosts, ports) goes to the log only */
	assert_non_null(log);
	log_set_stream(log);
	atomic_store(&f->svc.health_err, 1);
	assert_int_equal(call(f, "GET", "/healthz", NULL, &r), 503);
	assert_string_equal(err_msg(&r), "testd is not ready");
	assert_int_equal(http_test_raw(f->port,
				       "GET /healthz HTTP/1.1\r\nHost: t\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 503);
	assert_null(strstr(b.data, "connection refused"));
	atomic_store(&f->svc.health_err, 0);
	log_set_stream(NULL);
	rewind(log);
	n = fread(text, 1, sizeof(text) - 1, log);
	text[n] = '\0';
	fclose(log);
	assert_non_null(strstr(text, "database: connection refused"));
	buf_cleanup(&b);
	assert_int_equal(call(f, "GET", "/healthz", NULL, &r), 200);
	httpc_resp_cleanup(&r);
}

static void test_http_server__access_log(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	char text[8192];
	FILE *log = tmpfile();
	size_t n;

	assert_non_null(log);
	log_set_stream(log);
	assert_int_equal(http_test_raw(f->port,
				       "GET /items/7?x=1 HTTP/1.1\r\nHost: t\r\n"
				       "X-Request-Id: acc-1\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 200);
	assert_int_equal(http_test_raw(f->port,
				       "GET /healthz HTTP/1.1\r\nHost: t\r\n"
				       "X-Request-Id: acc-2\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 200);
	atomic_store(&f->svc.health_err, 1);
	assert_int_equal(http_test_raw(f->port,
				       "GET /healthz HTTP/1.1\r\nHost: t\r\n"
				       "X-Request-Id: acc-3\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 503);
	atomic_store(&f->svc.health_err, 0);
	/* the line is written when the answer is complete */
	http_server_stop(f->s, 2000);
	log_set_stream(NULL);
	rewind(log);
	n = fread(text, 1, sizeof(text) - 1, log);
	text[n] = '\0';
	fclose(log);
	assert_non_null(strstr(text, "[acc-1] GET /items/7?x=1 200 8B "));
	assert_non_null(strstr(text, " 127.0.0.1\n"));
	/* a passing probe stays out of the info log, a failing one does not */
	assert_null(strstr(text, "[acc-2]"));
	assert_non_null(strstr(text, "[acc-3] GET /healthz 503 "));
	buf_cleanup(&b);
}

/* The value of the sample named exactly line_prefix ("name{labels}"). */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void metrics_text(struct fx *f, struct httpc_resp *r)
{
	assert_int_equal(call(f, "GET", "/metrics", NULL, r), 200);
	assert_non_null(r->body.data);
}

static void test_http_server__metrics_text_parses(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;
	regex_t line_re;
	double deadline;
	char *save = NULL;

	httpc_resp_init(&r);
	for (int i = 0; i < 5; i++)
		assert_int_equal(call(f, "GET", "/items/1", NULL, &r), 200);
	assert_int_equal(call(f, "GET", "/items/x", NULL, &r), 400);
	assert_int_equal(call(f, "GET", "/nowhere", NULL, &r), 404);
	assert_int_equal(call(f, "GET", "/header", NULL, &r), 200);
	assert_int_equal(call(f, "GET", "/header", NULL, &r), 200);

	/* counts land when each response is complete: wait for them */
	deadline = now_s() + 5;
	do {
		metrics_text(f, &r);
	} while (sample(r.body.data,
			"fm_http_requests_total{route=\"/header\","
			"method=\"GET\",status=\"200\"}") != 2 &&
		 now_s() < deadline);

	assert_true(sample(r.body.data, "fm_http_requests_total{route=\"/items/"
				       "{id:int}\",method=\"GET\",status=\"200\"}") == 5);
	assert_true(sample(r.body.data, "fm_http_requests_total{route=\"/items/"
				       "{id:int}\",method=\"GET\",status=\"400\"}") == 1);
	assert_true(sample(r.body.data, "fm_http_requests_total{route="
				       "\"unmatched\",method=\"other\",status="
				       "\"404\"}") == 1);
	assert_true(sample(r.body.data, "fm_http_request_duration_seconds_count"
				       "{route=\"/items/{id:int}\",method="
				       "\"GET\"}") == 6);
	assert_true(sample(r.body.data, "fm_http_request_duration_seconds_bucket"
				       "{route=\"/items/{id:int}\",method="
				       "\"GET\",le=\"+Inf\"}") == 6);
	assert_true(sample(r.body.data, "testd_hits_total{kind=\"hit\"}") == 2);
	assert_non_null(strstr(r.body.data, "# TYPE fm_http_request_duration_"
					    "seconds histogram\n"));

	/* every line is a comment or "name{labels} value" */
	assert_int_equal(
		regcomp(&line_re,
			"^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|"
			"[a-zA-Z_:][a-zA-Z0-9_:]*"
			"(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\\})?"
			" (-?[0-9.]+(e[-+]?[0-9]+)?|NaN|[+-]Inf))$",
			REG_EXTENDED | REG_NOSUB),
		0);
	double prev = -1;
	char series[512] = "";
	for (char *l = strtok_r(r.body.data, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (regexec(&line_re, l, 0, NULL, 0) != 0)
			fail_msg("metrics line does not parse: %s", l);
		/* buckets of one series never decrease */
		char *le = strstr(l, ",le=\"");
		if (le && strstr(l, "_bucket{")) {
			double v = strtod(strrchr(l, ' ') + 1, NULL);
			if (strncmp(l, series, (size_t)(le - l)) == 0)
				assert_true(v >= prev);
			snprintf(series, sizeof(series), "%.*s", (int)(le - l),
				 l);
			prev = v;
		}
	}
	regfree(&line_re);
	httpc_resp_cleanup(&r);
}

static void assert_still_serving(struct fx *f)
{
	struct buf b = BUF_INIT(1 << 20);

	assert_int_equal(http_test_raw(f->port,
				       "GET /items/5 HTTP/1.1\r\nHost: t\r\n"
				       "Connection: close\r\n\r\n",
				       &b),
			 200);
	buf_cleanup(&b);
}

static void test_http_server__malformed_http(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	struct buf big = BUF_INIT(1 << 20);
	int st;

	st = http_test_raw(f->port,
			   "GET /items/1 HTTP/1.1\r\nHost: t\r\n"
			   "Broken header line\r\nConnection: close\r\n\r\n",
			   &b);
	assert_int_equal(st, 400);
	st = http_test_raw(f->port, "GET /items/1 HTTP/9.9\r\n\r\n", &b);
	assert_true(st >= 400 && st < 600);
	/* headers beyond the connection's memory */
	buf_appends(&big, "GET /items/1 HTTP/1.1\r\nHost: t\r\nX-Big: ");
	for (int i = 0; i < 64 * 1024; i++)
		buf_appends(&big, "a");
	buf_appends(&big, "\r\nConnection: close\r\n\r\n");
	st = http_test_raw(f->port, big.data, &b);
	assert_true(st == 431 || st == 413 || st == 400 || st == -1);
	/* and the server still answers */
	assert_still_serving(f);
	buf_cleanup(&b);
	buf_cleanup(&big);
}

/* A body whose length two headers could state two ways is refused and
 * the connection closed: what follows cannot be read as a request. */
static void test_http_server__ambiguous_body_length(void **state)
{
	static const char *const reqs[] = {
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n"
		"Content-Length: 40\r\n\r\n{\"n\":1}",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
		"content-length: 7\r\n\r\n{\"n\":1}",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n"
		"Transfer-Encoding: chunked\r\n\r\n7\r\n{\"n\":1}\r\n0\r\n\r\n",
	};
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	char rest[64];

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		int fd = http_test_connect(f->port);

		assert_true(fd >= 0);
		assert_int_equal(http_test_send(fd, reqs[i], strlen(reqs[i])),
				 0);
		buf_reset(&b);
		assert_int_equal(http_test_read_response(fd, &b), 400);
		assert_non_null(strstr(b.data, "\"invalid_argument\""));
		/* closed: no second answer to bytes of the first request */
		assert_true(recv(fd, rest, sizeof(rest), 0) <= 0);
		close(fd);
	}
	assert_still_serving(f);
	buf_cleanup(&b);
}

/* Seconds until the server closes fd, sending a header line every
 * 200 ms meanwhile; -1 if still open after limit_s. */
static double trickle_until_closed(int fd, double limit_s)
{
	double t0 = now_s();
	char c[256];

	while (now_s() - t0 < limit_s) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 200) > 0) {
			ssize_t n = recv(fd, c, sizeof(c), MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno != EAGAIN))
				return now_s() - t0;
		}
		if (send(fd, "X-Slow: y\r\n", 11, MSG_NOSIGNAL) < 0)
			return now_s() - t0;
	}
	return -1;
}

/* Slowloris: a request whose headers trickle in, a byte now and then so
 * that the idle timeout (1 s here) never fires, is cut at the request
 * deadline (2 s), counted from the connection's opening. A connection
 * that answered requests keeps serving: the deadline counts again from
 * each answer. */
static void test_http_server__request_deadline(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	const char *get = "GET /items/3 HTTP/1.1\r\nHost: t\r\n\r\n";
	struct httpc_resp r;
	double t;
	int fd;

	fd = http_test_connect(f->port);
	assert_true(fd >= 0);
	assert_int_equal(http_test_send(fd, "GET /items/1 HTTP/1.1\r\n", 23),
			 0);
	t = trickle_until_closed(fd, 6);
	close(fd);
	if (t < 1.5 || t > 3.5)
		fail_msg("a trickling request was cut after %.2f s, not at "
			 "its 2 s deadline", t);

	fd = http_test_connect(f->port);
	assert_true(fd >= 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(http_test_send(fd, get, strlen(get)), 0);
		buf_reset(&b);
		assert_int_equal(http_test_read_response(fd, &b), 200);
		sleep_ms(700);
	}
	close(fd);
	httpc_resp_init(&r);
	assert_int_equal(call(f, "GET", "/metrics", NULL, &r), 200);
	assert_true(sample(r.body.data, "fm_http_requests_cut_total") >= 1);
	httpc_resp_cleanup(&r);
	buf_cleanup(&b);
}

/* With a limit per address, connections past it are closed at once and
 * a freed one is usable again. */
static void test_http_server__connections_per_address(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	const char *get = "GET /items/3 HTTP/1.1\r\nHost: t\r\n\r\n";
	int fds[8], extra;
	char c;

	for (int i = 0; i < 8; i++) {
		fds[i] = http_test_connect(f->port);
		assert_true(fds[i] >= 0);
	}
	extra = http_test_connect(f->port);
	assert_true(extra >= 0);
	http_test_send(extra, get, strlen(get));
	struct pollfd p = { .fd = extra, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 500), 1);
	assert_true(recv(extra, &c, 1, 0) <= 0);
	close(extra);
	/* the others are served */
	assert_int_equal(http_test_send(fds[0], get, strlen(get)), 0);
	assert_int_equal(http_test_read_response(fds[0], &b), 200);
	close(fds[7]);
	sleep_ms(100);
	extra = http_test_connect(f->port);
	assert_true(extra >= 0);
	assert_int_equal(http_test_send(extra, get, strlen(get)), 0);
	buf_reset(&b);
	assert_int_equal(http_test_read_response(extra, &b), 200);
	close(extra);
	for (int i = 0; i < 7; i++)
		close(fds[i]);
	buf_cleanup(&b);
}

/* A chunked body megabytes over the limit is read to its end and
 * answered 413, not dropped unanswered. */
static void test_http_server__chunked_body_far_over_limit(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	static char chunk[65536 + 16];
	const char *h = "POST /echo HTTP/1.1\r\nHost: t\r\n"
			"Transfer-Encoding: chunked\r\n\r\n";
	int fd = http_test_connect(f->port);
	size_t n;

	assert_true(fd >= 0);
	assert_int_equal(http_test_send(fd, h, strlen(h)), 0);
	n = (size_t)snprintf(chunk, sizeof(chunk), "10000\r\n");
	memset(chunk + n, 'a', 65536);
	memcpy(chunk + n + 65536, "\r\n", 2);
	for (int i = 0; i < 48; i++) /* 3 MiB */
		assert_int_equal(http_test_send(fd, chunk, n + 65538), 0);
	assert_int_equal(http_test_send(fd, "0\r\n\r\n", 5), 0);
	assert_int_equal(http_test_read_response(fd, &b), 413);
	assert_non_null(strstr(b.data, "over the limit of 64 bytes"));
	close(fd);
	buf_cleanup(&b);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Applies one random edit to m (len bytes, capacity cap). */
static size_t mutate(char *m, size_t len, size_t cap, uint64_t *rng)
{
	static const char *const bits[] = { "\r\n", "%", "{", "}", "\"",
					    "\r\n\r\n", ":", "/", "99999999999",
					    "\xff", " ", "?" };
	size_t at = len ? (size_t)(xorshift(rng) % len) : 0;
	size_t n = 1 + (size_t)(xorshift(rng) % 16);

	switch (xorshift(rng) % 4) {
	case 0: /* overwrite a byte */
		if (len)
			m[at] = (char)(xorshift(rng) & 0xff);
		return len;
	case 1: /* delete a run */
		if (at + n > len)
			n = len - at;
		memmove(m + at, m + at + n, len - at - n);
		return len - n;
	case 2: { /* insert a token the parser cares about */
		const char *t = bits[xorshift(rng) % (sizeof(bits) / sizeof(bits[0]))];
		size_t tl = strlen(t);
		if (len + tl > cap)
			return len;
		memmove(m + at + tl, m + at, len - at);
		memcpy(m + at, t, tl);
		return len + tl;
	}
	default: /* repeat a run */
		if (at + n > len)
			n = len - at;
		if (len + n > cap)
			return len;
		memmove(m + at + n, m + at, len - at);
		return len + n;
	}
}

static void test_http_server__survives_garbled_requests(void **state)
{
	static const char *const seeds[] = {
		"GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/"
		"json\r\nContent-Length: 7\r\n\r\n{\"n\":1}",
		"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
		"\r\n\r\n7\r\n{\"n\":2}\r\n0\r\n\r\n",
		"GET /q?limit=5&state=open&name=x%20y&owner=0xabcdefabcdefabcdef"
		"abcdefabcdefabcdefabcd HTTP/1.1\r\nHost: t\r\n\r\n",
		"POST /signed?x=1 HTTP/1.1\r\nHost: t\r\nX-Test-Addr: 0xaa\r\n"
		"X-Test-Sig: 00\r\nContent-Length: 2\r\n\r\n{}",
		"GET /t/0xAbCdEf0123456789abcdef0123456789ABCDEF01/0x0123456789ab"
		"cdef0123456789abcdef0123456789abcdef0123456789abcdef/123e4567-e8"
		"9b-12d3-a456-426614174000 HTTP/1.1\r\nHost: t\r\n\r\n",
	};
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	uint64_t rng = 0x9e3779b97f4a7c15ULL; /* fixed: reproducible */
	int by_class[6] = { 0 };
	char m[8192], chunk[4096], ct[128];

	for (int i = 0; i < 200; i++) {
		const char *seed = seeds[xorshift(&rng) % (sizeof(seeds) /
							   sizeof(seeds[0]))];
		size_t len = strlen(seed);
		int fd, edits = 1 + (int)(xorshift(&rng) % 4);
		ssize_t got;

		memcpy(m, seed, len);
		for (int e = 0; e < edits; e++)
			len = mutate(m, len, sizeof(m), &rng);
		fd = http_test_connect(f->port);
		assert_true(fd >= 0);
		http_test_send(fd, m, len);
		shutdown(fd, SHUT_WR); /* no more bytes: answer or close */
		buf_reset(&b);
		while ((got = recv(fd, chunk, sizeof(chunk), 0)) > 0)
			assert_int_equal(buf_append(&b, chunk, (size_t)got), 0);
		close(fd);
		if (b.len < 12 || strncmp(b.data, "HTTP/1.", 7) != 0) {
			by_class[0]++; /* closed without an answer */
			continue;
		}
		int st = atoi(b.data + 9);
		assert_true(st >= 100 && st <= 599);
		by_class[st / 100]++;
		/* whatever we answered as JSON is JSON */
		char *body = strstr(b.data, "\r\n\r\n");
		if (body && body[4] &&
		    http_test_header(b.data, "Content-Type", ct, sizeof(ct)) == 0 &&
		    strcmp(ct, "application/json") == 0) {
			json_t *j = json_loads(body + 4, JSON_DISABLE_EOF_CHECK,
					       NULL);
			if (!j)
				fail_msg("request %d: answer is not JSON: %s", i,
					 body + 4);
			json_decref(j);
		}
	}
	fprintf(stderr, "garbled: %d closed, %d 2xx, %d 4xx, %d 5xx\n",
		by_class[0], by_class[2], by_class[4], by_class[5]);
	/* the edits reach both the happy paths and the refusals */
	assert_true(by_class[2] > 0);
	assert_true(by_class[4] > 0);
	assert_still_serving(f);
	buf_cleanup(&b);
}

static void test_http_server__slow_client_does_not_block(void **state)
{
	struct fx *f = *state;
	struct httpc_resp r;
	int fds[12];
	double t0;
	char c;

	/* connections that never finish their headers */
	for (int i = 0; i < 12; i++) {
		fds[i] = http_test_connect(f->port);
		assert_true(fds[i] >= 0);
		assert_int_equal(http_test_send(fds[i], "GET /items/1 HTTP/1.1\r\n"
							"Host: t\r\n", 32),
				 0);
	}
	httpc_resp_init(&r);
	t0 = now_s();
	for (int i = 0; i < 20; i++)
		assert_int_equal(call(f, "GET", "/items/2", NULL, &r), 200);
	assert_true(now_s() - t0 < 2.0);
	/* the idle timeout (1 s) closes them */
	t0 = now_s();
	for (int i = 0; i < 12; i++) {
		assert_true(recv(fds[i], &c, 1, 0) <= 0);
		close(fds[i]);
	}
	assert_true(now_s() - t0 < 5.0);
	httpc_resp_cleanup(&r);
}

struct par {
	struct fx *f;
	int k;
	int ok;
};

static void *par_client(void *arg)
{
	struct par *p = arg;
	struct httpc_opts o = HTTPC_OPTS_INIT;
	struct httpc *c = NULL;
	char base[64], path[64];
	json_t *j;

	snprintf(base, sizeof(base), "http://127.0.0.1:%u", p->f->port);
	o.base_url = base;
	o.retries = 0;
	if (httpc_new(&c, &o))
		return NULL;
	for (int i = 0; i < 50; i++) {
		int id = p->k * 1000 + i;
		snprintf(path, sizeof(path), "/items/%d", id);
		j = NULL;
		if (httpc_get(c, path, &j) == FM_OK &&
		    json_integer_value(json_object_get(j, "id")) == id)
			p->ok++;
		json_decref(j);
	}
	httpc_free(c);
	return NULL;
}

static void test_http_server__parallel_clients(void **state)
{
	struct fx *f = *state;
	pthread_t t[16];
	struct par p[16];
	struct httpc_resp r;
	const char *series = "fm_http_requests_total{route=\"/items/{id:int}\","
			     "method=\"GET\",status=\"200\"}";
	double deadline;
	int total = 0;

	for (int i = 0; i < 16; i++) {
		p[i] = (struct par){ f, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, par_client, &p[i]),
				 0);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		total += p[i].ok;
	}
	assert_int_equal(total, 16 * 50);
	httpc_resp_init(&r);
	deadline = now_s() + 5;
	do
		metrics_text(f, &r);
	while (sample(r.body.data, series) != 800 && now_s() < deadline);
	assert_true(sample(r.body.data, series) == 800);
	httpc_resp_cleanup(&r);
}

struct slowcall {
	unsigned port;
	long ms;
	long status;
	int err;
	const char *route; /* NULL: /slow */
};

static void *slow_client(void *arg)
{
	struct slowcall *s = arg;
	struct httpc_opts o = HTTPC_OPTS_INIT;
	struct httpc_req req = { 0 };
	struct httpc_resp r;
	struct httpc *c;
	char base[64], path[64];

	snprintf(base, sizeof(base), "http://127.0.0.1:%u", s->port);
	snprintf(path, sizeof(path), "%s?ms=%ld",
		 s->route ? s->route : "/slow", s->ms);
	o.base_url = base;
	o.retries = 0;
	s->err = httpc_new(&c, &o);
	if (s->err)
		return NULL;
	req.method = "GET";
	req.path = path;
	httpc_resp_init(&r);
	s->err = httpc_send(c, &req, &r);
	s->status = r.status;
	httpc_resp_cleanup(&r);
	httpc_free(c);
	return NULL;
}

struct stopper {
	struct http_server *s;
	unsigned drain_ms;
	int err;
};

static void *stop_thread(void *arg)
{
	struct stopper *st = arg;

	st->err = http_server_stop(st->s, st->drain_ms);
	return NULL;
}

static void wait_started(struct fx *f, int n)
{
	double deadline = now_s() + 5;

	while (atomic_load(&f->svc.slow_started) < n && now_s() < deadline)
		sleep_ms(5);
	assert_true(atomic_load(&f->svc.slow_started) >= n);
}

/* The handler of an HTTP_SLOW route runs apart: with a single server
 * thread, other requests are answered while it works, and a drain waits
 * for its answer. */
static void test_http_server__slow_route_runs_apart(void **state)
{
	struct fx *f = *state;
	struct slowcall sc = { f->port, 1500, 0, 0, "/slow-apart" };
	struct httpc_resp r;
	pthread_t tc;
	double t0;

	assert_int_equal(pthread_create(&tc, NULL, slow_client, &sc), 0);
	wait_started(f, 1);
	httpc_resp_init(&r);
	t0 = now_s();
	for (int i = 0; i < 5; i++)
		assert_int_equal(call(f, "GET", "/items/4", NULL, &r), 200);
	if (now_s() - t0 > 0.5)
		fail_msg("5 requests took %.2f s beside a slow handler",
			 now_s() - t0);
	httpc_resp_cleanup(&r);
	pthread_join(tc, NULL);
	assert_int_equal(sc.err, FM_OK);
	assert_int_equal(sc.status, 200);

	sc = (struct slowcall){ f->port, 800, 0, 0, "/slow-apart" };
	assert_int_equal(pthread_create(&tc, NULL, slow_client, &sc), 0);
	wait_started(f, 2);
	assert_int_equal(http_server_stop(f->s, 5000), FM_OK);
	pthread_join(tc, NULL);
	assert_int_equal(sc.status, 200);
}

static void test_http_server__drain_finishes_in_flight(void **state)
{
	struct fx *f = *state;
	struct slowcall sc = { f->port, 800, 0, 0, NULL };
	struct stopper st = { f->s, 5000, -1 };
	struct buf b = BUF_INIT(1 << 20);
	pthread_t tc, ts;
	char v[64];
	int keep;

	/* a kept-alive connection, used again during the drain */
	keep = http_test_connect(f->port);
	assert_true(keep >= 0);
	const char *hz = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
	assert_int_equal(http_test_send(keep, hz, strlen(hz)), 0);
	assert_int_equal(http_test_read_response(keep, &b), 200);

	assert_int_equal(pthread_create(&tc, NULL, slow_client, &sc), 0);
	wait_started(f, 1);
	assert_int_equal(pthread_create(&ts, NULL, stop_thread, &st), 0);
	sleep_ms(150);
	/* draining: no new connections; health says unavailable and the
	 * connection is closed after the answer */
	assert_int_equal(http_test_connect(f->port), -1);
	assert_int_equal(http_test_send(keep, hz, strlen(hz)), 0);
	assert_int_equal(http_test_read_response(keep, &b), 503);
	assert_int_equal(http_test_header(b.data, "Connection", v, sizeof(v)),
			 0);
	assert_string_equal(v, "close");
	close(keep);

	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
	assert_int_equal(sc.err, FM_OK);
	assert_int_equal(sc.status, 200);
	assert_int_equal(st.err, FM_OK);
	assert_int_equal(http_test_connect(f->port), -1);
	buf_cleanup(&b);
}

static void test_http_server__drain_deadline_cuts(void **state)
{
	struct fx *f = *state;
	struct slowcall sc = { f->port, 1500, 0, 0, NULL };
	pthread_t tc;
	double t0;
	int err;

	assert_int_equal(pthread_create(&tc, NULL, slow_client, &sc), 0);
	wait_started(f, 1);
	t0 = now_s();
	err = http_server_stop(f->s, 200);
	assert_int_equal(err, FM_ETIMEOUT);
	assert_non_null(strstr(fm_error_msg(), "still in flight"));
	/* stopping waits for the running handler, but not for 5 s */
	assert_true(now_s() - t0 < 3.0);
	pthread_join(tc, NULL);
}

struct runner {
	struct http_server *s;
	int err;
	_Atomic int done;
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;

	r->err = http_server_run(r->s);
	atomic_store(&r->done, 1);
	return NULL;
}

static void test_http_server__sigterm_drains(void **state)
{
	struct fx *f = *state;
	struct slowcall sc = { f->port, 600, 0, 0, NULL };
	struct runner rn = { f->s, -1, 0 };
	pthread_t tc, tr;

	/* http_server_start blocked SIGTERM in this thread; the threads
	 * made here inherit that, so the signal goes to http_server_run */
	assert_int_equal(pthread_create(&tr, NULL, run_thread, &rn), 0);
	assert_int_equal(pthread_create(&tc, NULL, slow_client, &sc), 0);
	wait_started(f, 1);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	pthread_join(tc, NULL);
	pthread_join(tr, NULL);
	assert_int_equal(sc.status, 200);
	assert_int_equal(rn.err, FM_OK);
	assert_int_equal(http_test_connect(f->port), -1);
}

static void test_http_server__shutdown_call_stops_run(void **state)
{
	struct fx *f = *state;
	struct runner rn = { f->s, -1, 0 };
	pthread_t tr;
	double deadline;

	assert_int_equal(pthread_create(&tr, NULL, run_thread, &rn), 0);
	sleep_ms(50);
	assert_int_equal(atomic_load(&rn.done), 0);
	http_server_shutdown(f->s);
	deadline = now_s() + 5;
	while (!atomic_load(&rn.done) && now_s() < deadline)
		sleep_ms(5);
	assert_int_equal(atomic_load(&rn.done), 1);
	pthread_join(tr, NULL);
	assert_int_equal(rn.err, FM_OK);
}

static void test_http_server__listen_errors(void **state)
{
	struct fx *f = *state;
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct http_server *s = NULL;
	char listen[64];

	/* the port the fixture holds */
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", f->port);
	o.listen = listen;
	assert_int_equal(http_server_new(&s, &o, NULL, 0, NULL), FM_OK);
	assert_int_equal(http_server_start(s), FM_EUNAVAIL);
	assert_non_null(strstr(fm_error_msg(), "in use"));
	http_server_free(s);
	s = NULL;
	o.listen = "127.0.0.1";
	assert_int_equal(http_server_new(&s, &o, NULL, 0, NULL), FM_OK);
	assert_int_equal(http_server_start(s), FM_EINVAL);
	http_server_free(s);
	s = NULL;
	o.listen = "127.0.0.1:0";
	assert_int_equal(http_server_new(&s, &o, NULL, 0, NULL), FM_OK);
	assert_int_equal(http_server_start(s), FM_OK);
	assert_true(http_server_port(s) > 0);
	assert_int_equal(http_server_stop(s, 1000), FM_OK);
	assert_int_equal(http_server_port(s), 0);
	http_server_free(s);
}

/* An HTTP_IDEMPOTENT route needs the code to run it through. */
static void test_http_server__idempotent_route_needs_its_wrapper(void **state)
{
	static const struct http_route idem[] = {
		{ "POST", "/idem", h_idem, 0, HTTP_IDEMPOTENT },
	};
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct http_server *s = NULL;

	(void)state;
	assert_int_equal(http_server_new(&s, &o, idem, 1, NULL), FM_EINVAL);
	assert_null(s);
	assert_non_null(strstr(fm_error_msg(), "no idempotency handler"));
	o.idempotent = record;
	assert_int_equal(http_server_new(&s, &o, idem, 1, NULL), FM_OK);
	http_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_http_server__routes_and_typed_params),
		T(test_http_server__literal_beats_param),
		T(test_http_server__unknown_route_and_wrong_method),
		T(test_http_server__query_getters),
		T(test_http_server__json_body_errors),
		T(test_http_server__body_limit_before_reading),
		T(test_http_server__chunked_body_limit),
		T(test_http_server__ambiguous_body_length),
		T(test_http_server__chunked_body_far_over_limit),
		cmocka_unit_test_setup_teardown(
			test_http_server__request_deadline, setup_strict,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_http_server__connections_per_address,
			setup_strict, teardown),
		T(test_http_server__request_id),
		T(test_http_server__handler_errors),
		T(test_http_server__idempotency_key),
		T(test_http_server__response_readable_around_handler),
		T(test_http_server__signed_routes),
		T(test_http_server__healthz),
		T(test_http_server__access_log),
		T(test_http_server__metrics_text_parses),
		T(test_http_server__malformed_http),
		T(test_http_server__survives_garbled_requests),
		T(test_http_server__slow_client_does_not_block),
		T(test_http_server__parallel_clients),
		cmocka_unit_test_setup_teardown(
			test_http_server__slow_route_runs_apart,
			setup_one_thread, teardown),
		T(test_http_server__drain_finishes_in_flight),
		T(test_http_server__drain_deadline_cuts),
		T(test_http_server__sigterm_drains),
		T(test_http_server__shutdown_call_stops_run),
		T(test_http_server__listen_errors),
		cmocka_unit_test(
			test_http_server__idempotent_route_needs_its_wrapper),
#undef T
	};

	log_init("http_server_test", LOG_INFO, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
