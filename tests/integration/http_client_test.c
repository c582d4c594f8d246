/* The HTTP client against a real server on loopback: JSON round trips,
 * error mapping, retries (and when not to retry), timeouts, size bounds,
 * request signing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"
#include "http_support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct svc {
	_Atomic int calls;      /* requests that reached a counting handler */
	_Atomic int fail_first; /* /flaky answers 503 this many times */
	_Atomic int signs;      /* signer invocations */
	char last_key[128];     /* Idempotency-Key seen last */
	char last_reqid[80];
};

struct fx {
	struct svc svc;
	struct http_server *s;
	struct httpc *c;
	unsigned port;
	char base[64];
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void remember(struct svc *svc, struct http_req *req)
{
	const char *k = http_req_header(req, "Idempotency-Key");

	snprintf(svc->last_key, sizeof(svc->last_key), "%s", k ? k : "");
	snprintf(svc->last_reqid, sizeof(svc->last_reqid), "%s",
		 http_req_id(req));
	atomic_fetch_add(&svc->calls, 1);
}

static int h_echo(struct http_req *req, void *arg)
{
	json_t *j = NULL;
	int err;

	remember(arg, req);
	if (strcmp(http_req_method(req), "POST") != 0)
		return http_respond_json(
			req, 200,
			json_pack("{s:s, s:s}", "method", http_req_method(req),
				  "target", http_req_target(req)));
	err = http_req_json(req, &j);
	if (err)
		return err;
	return http_respond_json(req, 201, j);
}

static int h_status(struct http_req *req, void *arg)
{
	long long code;
	int err = http_req_param_int(req, "code", 100, 599, &code);

	remember(arg, req);
	if (err)
		return err;
	switch (code) {
	case 409:
		return fm_error_set(FM_ECONFLICT, "task 9 has no slot left");
	case 422:
		return fm_error_set(FM_EUNPROCESSABLE, "weights: NaN at 3");
	case 403:
		return fm_error_set(FM_EFORBIDDEN, "not the validator");
	case 500:
		return fm_error_set(FM_EINTERNAL, "boom");
	case 503:
		return fm_error_set(FM_EUNAVAIL, "database is down");
	case 502:
		/* not our JSON: what a proxy would answer */
		return http_respond_raw(req, 502, "text/html",
					"<h1>Bad gateway</h1>", 20);
	}
	return http_respond_json(req, (int)code, json_object());
}

static int h_flaky(struct http_req *req, void *arg)
{
	struct svc *svc = arg;

	remember(svc, req);
	if (atomic_fetch_sub(&svc->fail_first, 1) > 0) {
		http_resp_header(req, "Retry-After", "0");
		return fm_error_set(FM_EUNAVAIL, "warming up");
	}
	return http_respond_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static int h_slow(struct http_req *req, void *arg)
{
	struct timespec t = { 0, 700 * 1000000L };

	remember(arg, req);
	nanosleep(&t, NULL);
	return http_respond_json(req, 200, json_object());
}

static int h_big(struct http_req *req, void *arg)
{
	static char big[100000];

	remember(arg, req);
	memset(big, 'x', sizeof(big));
	return http_respond_raw(req, 200, "text/plain", big, sizeof(big));
}

static int h_signed(struct http_req *req, void *arg)
{
	remember(arg, req);
	return http_respond_json(req, 200,
				 json_pack("{s:s}", "auth", http_req_auth(req)));
}

static const struct http_route routes[] = {
	{ "GET", "/echo", h_echo, 0, 0 },
	{ "POST", "/echo", h_echo, 0, 0 },
	{ "DELETE", "/echo/{id:int}", h_echo, 0, 0 },
	{ "GET", "/status/{code:int}", h_status, 0, 0 },
	{ "GET", "/flaky", h_flaky, 0, 0 },
	{ "POST", "/flaky", h_flaky, 0, 0 },
	{ "GET", "/slow", h_slow, 0, 0 },
	{ "POST", "/slow", h_slow, 0, 0 },
	{ "GET", "/big", h_big, 0, 0 },
	{ "POST", "/signed", h_signed, 0, HTTP_SIGNED },
	{ "GET", "/signed", h_signed, 0, HTTP_SIGNED },
};

static int counting_sign(void *arg, const char *method, const char *target,
			 const void *body, size_t len, struct httpc_headers *h)
{
	struct fx *f = arg;

	atomic_fetch_add(&f->svc.signs, 1);
	return http_test_sign("0x00000000000000000000000000000000000000aa",
			      method, target, body, len, h);
}

static int new_client(struct fx *f, struct httpc **out, int retries,
		      long timeout_ms, size_t max_response, int sign)
{
	struct httpc_opts o = HTTPC_OPTS_INIT;

	o.base_url = f->base;
	o.retries = retries;
	o.backoff_ms = 20;
	o.backoff_max_ms = 100;
	o.timeout_ms = timeout_ms;
	o.max_response = max_response;
	if (sign) {
		o.sign = counting_sign;
		o.sign_arg = f;
	}
	return httpc_new(out, &o);
}

static int setup(void **state)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct fx *f = calloc(1, sizeof(*f));
	char listen[64];

	if (!f)
		return -1;
	f->port = http_test_port(1);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", f->port);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u/", f->port);
	o.listen = listen;
	o.name = "clienttestd";
	o.verify = http_test_verify;
	o.drain_ms = 2000;
	if (http_server_new(&f->s, &o, routes,
			    sizeof(routes) / sizeof(routes[0]), &f->svc) ||
	    http_test_start(f->s) || new_client(f, &f->c, 3, 5000, 1 << 20, 0)) {
		fprintf(stderr, "setup: %s\n", fm_error_msg());
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	httpc_free(f->c);
	http_server_free(f->s);
	free(f);
	return 0;
}

static void test_http_client__json_round_trip(void **state)
{
	struct fx *f = *state;
	json_t *body = json_pack("{s:i, s:s}", "n", 7, "s", "é\"x");
	json_t *out = NULL;

	assert_int_equal(httpc_post(f->c, "/echo", body, "key-1", &out), FM_OK);
	assert_true(json_equal(out, body));
	assert_string_equal(f->svc.last_key, "key-1");
	json_decref(out);
	out = NULL;
	assert_int_equal(httpc_get(f->c, "/echo?a=1&b=%20", &out), FM_OK);
	assert_string_equal(json_string_value(json_object_get(out, "target")),
			    "/echo?a=1&b=%20");
	assert_string_equal(f->svc.last_key, "");
	json_decref(out);
	out = NULL;
	/* HEAD: the answer's headers only */
	struct httpc_req head = { .method = "HEAD", .path = "/echo" };
	struct httpc_resp hr;
	httpc_resp_init(&hr);
	assert_int_equal(httpc_send(f->c, &head, &hr), FM_OK);
	assert_int_equal(hr.status, 200);
	assert_int_equal(hr.body.len, 0);
	assert_true(hr.request_id[0] != '\0');
	httpc_resp_cleanup(&hr);
	assert_int_equal(httpc_delete(f->c, "/echo/5", &out), FM_OK);
	assert_string_equal(json_string_value(json_object_get(out, "method")),
			    "DELETE");
	json_decref(out);
	json_decref(body);
}

static void test_http_client__service_errors_map_to_codes(void **state)
{
	struct fx *f = *state;
	json_t *out = NULL;

	assert_int_equal(httpc_get(f->c, "/status/409", &out), FM_ECONFLICT);
	assert_string_equal(fm_error_msg(), "task 9 has no slot left");
	assert_null(out);
	assert_int_equal(httpc_get(f->c, "/status/422", &out),
			 FM_EUNPROCESSABLE);
	assert_string_equal(fm_error_msg(), "weights: NaN at 3");
	assert_int_equal(httpc_get(f->c, "/status/403", &out), FM_EFORBIDDEN);
	assert_int_equal(httpc_get(f->c, "/status/500", &out), FM_EINTERNAL);
	assert_int_equal(httpc_get(f->c, "/nowhere", &out), FM_ENOTFOUND);
	assert_int_equal(httpc_get(f->c, "/status/abc", &out), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "path parameter code"));
	assert_int_equal(httpc_get(f->c, "/status/204", &out), FM_OK);
	/* a body that is not our error JSON maps from the status */
	atomic_store(&f->svc.calls, 0);
	assert_int_equal(httpc_get(f->c, "/status/502", &out), FM_EUNAVAIL);
	assert_non_null(strstr(fm_error_msg(), "HTTP 502"));
	assert_non_null(strstr(fm_error_msg(), "Bad gateway"));
	assert_int_equal(atomic_load(&f->svc.calls), 1); /* 502: no retry */
}

static void test_http_client__no_retry_on_other_statuses(void **state)
{
	struct fx *f = *state;
	static const char *const paths[] = { "/status/409", "/status/500",
					     "/status/400", "/status/422" };

	for (size_t i = 0; i < 4; i++) {
		atomic_store(&f->svc.calls, 0);
		assert_true(httpc_get(f->c, paths[i], NULL) != FM_OK);
		assert_int_equal(atomic_load(&f->svc.calls), 1);
	}
}

static void test_http_client__retries_503_then_succeeds(void **state)
{
	struct fx *f = *state;
	struct httpc_req req = { 0 };
	struct httpc_resp r;
	char first_reqid[80];

	atomic_store(&f->svc.fail_first, 2);
	atomic_store(&f->svc.calls, 0);
	req.method = "GET";
	req.path = "/flaky";
	req.request_id = "trace-42";
	httpc_resp_init(&r);
	assert_int_equal(httpc_send(f->c, &req, &r), FM_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(atomic_load(&f->svc.calls), 3);
	/* every attempt carries the same request id */
	assert_string_equal(r.request_id, "trace-42");
	assert_string_equal(f->svc.last_reqid, "trace-42");
	httpc_resp_cleanup(&r);

	/* more 503s than retries: the service's error comes back */
	atomic_store(&f->svc.fail_first, 10);
	atomic_store(&f->svc.calls, 0);
	assert_int_equal(httpc_get(f->c, "/flaky", NULL), FM_EUNAVAIL);
	assert_string_equal(fm_error_msg(), "warming up");
	assert_int_equal(atomic_load(&f->svc.calls), 4);
	snprintf(first_reqid, sizeof(first_reqid), "%s", f->svc.last_reqid);
	assert_int_equal(strlen(first_reqid), 16);
	atomic_store(&f->svc.fail_first, 0);
}

static void test_http_client__transport_errors(void **state)
{
	struct fx *f = *state;
	struct httpc_opts o = HTTPC_OPTS_INIT;
	struct httpc_req req = { 0 };
	struct httpc_resp r;
	struct httpc *c;
	char base[64];
	double t0;

	/* a port nobody listens on: retried, then unavailable */
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", http_test_port(39));
	o.base_url = base;
	o.retries = 2;
	o.backoff_ms = 50;
	o.backoff_max_ms = 200;
	assert_int_equal(httpc_new(&c, &o), FM_OK);
	req.method = "POST"; /* never sent, so safe to retry even unkeyed */
	req.path = "/echo";
	httpc_resp_init(&r);
	t0 = now_s();
	assert_int_equal(httpc_send(c, &req, &r), FM_EUNAVAIL);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.status, 0);
	assert_true(now_s() - t0 >= 0.05); /* backed off at least 25+50 ms */
	assert_non_null(strstr(fm_error_msg(), base));
	httpc_resp_cleanup(&r);
	httpc_free(c);
	(void)f;
}

static void test_http_client__timeout_and_post_retry_rule(void **state)
{
	struct fx *f = *state;
	struct httpc_req req = { 0 };
	struct httpc_resp r;
	struct httpc *c;

	assert_int_equal(new_client(f, &c, 2, 250, 1 << 20, 0), FM_OK);
	httpc_resp_init(&r);
	/* an idempotent GET is retried after a timeout */
	atomic_store(&f->svc.calls, 0);
	req.method = "GET";
	req.path = "/slow";
	assert_int_equal(httpc_send(c, &req, &r), FM_ETIMEOUT);
	assert_int_equal(r.attempts, 3);
	/* a POST that reached the server is not repeated without a key */
	req.method = "POST";
	assert_int_equal(httpc_send(c, &req, &r), FM_ETIMEOUT);
	assert_int_equal(r.attempts, 1);
	/* with an Idempotency-Key it is */
	req.idempotency_key = "k-77";
	assert_int_equal(httpc_send(c, &req, &r), FM_ETIMEOUT);
	assert_int_equal(r.attempts, 3);
	httpc_resp_cleanup(&r);
	httpc_free(c);
	/* let the slow handlers finish before the server goes */
	struct timespec t = { 0, 800 * 1000000L };
	nanosleep(&t, NULL);
	assert_int_equal(atomic_load(&f->svc.calls), 3 + 1 + 3);
	assert_string_equal(f->svc.last_key, "k-77");
}

static void test_http_client__response_size_bound(void **state)
{
	struct fx *f = *state;
	struct httpc *c;
	struct httpc_req req = { 0 };
	struct httpc_resp r;

	assert_int_equal(new_client(f, &c, 3, 5000, 10000, 0), FM_OK);
	req.method = "GET";
	req.path = "/big";
	httpc_resp_init(&r);
	atomic_store(&f->svc.calls, 0);
	assert_int_equal(httpc_send(c, &req, &r), FM_ETOOLARGE);
	assert_non_null(strstr(fm_error_msg(), "10000 bytes"));
	assert_int_equal(r.attempts, 1);
	assert_int_equal(atomic_load(&f->svc.calls), 1);
	httpc_resp_cleanup(&r);
	httpc_free(c);
	/* the same answer fits a larger bound */
	assert_int_equal(new_client(f, &c, 0, 5000, 100000, 0), FM_OK);
	httpc_resp_init(&r);
	assert_int_equal(httpc_send(c, &req, &r), FM_OK);
	assert_int_equal(r.body.len, 100000);
	assert_null(r.json);
	httpc_resp_cleanup(&r);
	httpc_free(c);
}

static void test_http_client__signer_runs_per_attempt(void **state)
{
	struct fx *f = *state;
	struct httpc *c;
	json_t *body = json_pack("{s:s}", "x", "y");
	json_t *out = NULL;

	assert_int_equal(new_client(f, &c, 3, 5000, 1 << 20, 1), FM_OK);
	assert_int_equal(httpc_post(c, "/signed?q=1", body, NULL, &out), FM_OK);
	assert_string_equal(json_string_value(json_object_get(out, "auth")),
			    "0x00000000000000000000000000000000000000aa");
	json_decref(out);
	out = NULL;
	assert_int_equal(httpc_get(c, "/signed", &out), FM_OK);
	json_decref(out);
	assert_int_equal(atomic_load(&f->svc.signs), 2);
	/* unsigned client: refused */
	assert_int_equal(httpc_post(f->c, "/signed", body, NULL, NULL),
			 FM_EAUTH);
	/* retried attempts are signed again */
	atomic_store(&f->svc.signs, 0);
	atomic_store(&f->svc.fail_first, 2);
	assert_int_equal(httpc_post(c, "/flaky", body, "k", NULL), FM_OK);
	assert_int_equal(atomic_load(&f->svc.signs), 3);
	json_decref(body);
	httpc_free(c);
}

static void test_http_client__bad_input_is_refused(void **state)
{
	struct fx *f = *state;
	struct httpc_opts o = HTTPC_OPTS_INIT;
	struct httpc *c = NULL;
	struct httpc_headers *none = NULL;

	assert_int_equal(httpc_get(f->c, "echo", NULL), FM_EINVAL);
	assert_int_equal(httpc_get(f->c, "/echo x", NULL), FM_EINVAL);
	assert_int_equal(httpc_get(f->c, "/echo\r\nX: y", NULL), FM_EINVAL);
	o.base_url = "ftp://example";
	assert_int_equal(httpc_new(&c, &o), FM_EINVAL);
	o.base_url = NULL;
	assert_int_equal(httpc_new(&c, &o), FM_EINVAL);
	o.base_url = "http://127.0.0.1:1";
	o.retries = -1;
	assert_int_equal(httpc_new(&c, &o), FM_EINVAL);
	assert_null(c);
	(void)none;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_http_client__json_round_trip),
		T(test_http_client__service_errors_map_to_codes),
		T(test_http_client__no_retry_on_other_statuses),
		T(test_http_client__retries_503_then_succeeds),
		T(test_http_client__transport_errors),
		T(test_http_client__timeout_and_post_retry_rule),
		T(test_http_client__response_size_bound),
		T(test_http_client__signer_runs_per_attempt),
		T(test_http_client__bad_input_is_refused),
#undef T
	};

	log_init("http_client_test", LOG_INFO, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
