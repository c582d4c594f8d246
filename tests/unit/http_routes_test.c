/* Route tables are checked when the server is made, before anything
 * listens; and the client's mapping of statuses and error names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"

#include <string.h>

static int handler(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200, json_object());
}

static int verify(void *arg, const struct http_req *req, char *out,
		  size_t n)
{
	(void)arg;
	(void)req;
	(void)out;
	(void)n;
	return fm_error_set(FM_EAUTH, "no");
}

/* Makes a server from one or two routes; returns the error and leaves
 * fm_error_msg() for the caller to check. */
static int try_routes(const struct http_route *r, size_t n, int with_verify)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct http_server *s = NULL;
	int err;

	if (with_verify)
		o.verify = verify;
	err = http_server_new(&s, &o, r, n, NULL);
	if (!err)
		assert_non_null(s);
	http_server_free(s);
	return err;
}

static void expect_bad(const char *method, const char *pattern,
		       const char *msg_part)
{
	struct http_route r = { method, pattern, handler, 0, 0 };

	assert_int_equal(try_routes(&r, 1, 0), FM_EINVAL);
	if (!strstr(fm_error_msg(), msg_part))
		fail_msg("'%s' does not mention '%s'", fm_error_msg(),
			 msg_part);
}

static void test_http_server__bad_patterns_refused(void **state)
{
	(void)state;
	expect_bad("GET", "v1/tasks", "must start with '/'");
	expect_bad("GET", "/v1//tasks", "empty segment");
	expect_bad("GET", "/v1/tasks/", "empty segment");
	expect_bad("GET", "/v1/{id", "malformed parameter");
	expect_bad("GET", "/v1/{}", "malformed parameter");
	expect_bad("GET", "/v1/{:int}", "without a name");
	expect_bad("GET", "/v1/x{id}", "whole segment");
	expect_bad("GET", "/v1/{id:float}", "unknown parameter type");
	expect_bad("GET", "/v1/{id}/{id}", "named twice");
	expect_bad("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
		   "more than 16 segments");
	expect_bad("GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
		   "more than 8 parameters");
	expect_bad("FETCH", "/v1", "not one of GET");
	expect_bad(NULL, "/v1", "method");
	expect_bad("GET", NULL, "pattern");
}

static void test_http_server__duplicate_routes_refused(void **state)
{
	struct http_route two[2] = {
		{ "GET", "/v1/tasks/{id:int}", handler, 0, 0 },
		{ "GET", "/v1/tasks/{task}", handler, 0, 0 },
	};

	(void)state;
	assert_int_equal(try_routes(two, 2, 0), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "same as"));
	/* another method, or a literal in place of the parameter, is fine */
	two[1].method = "POST";
	assert_int_equal(try_routes(two, 2, 0), FM_OK);
	two[1].method = "GET";
	two[1].pattern = "/v1/tasks/search";
	assert_int_equal(try_routes(two, 2, 0), FM_OK);
	/* the built-in routes are taken */
	two[1].pattern = "/healthz";
	assert_int_equal(try_routes(two, 2, 0), FM_EINVAL);
	two[1].pattern = "/metrics";
	assert_int_equal(try_routes(two, 2, 0), FM_EINVAL);
	two[1].method = "POST";
	assert_int_equal(try_routes(two, 2, 0), FM_OK);
}

static void test_http_server__signed_route_needs_verifier(void **state)
{
	struct http_route r = { "POST", "/v1/tasks", handler, 0, HTTP_SIGNED };
	struct http_route noh = { "POST", "/v1/tasks", NULL, 0, 0 };

	(void)state;
	assert_int_equal(try_routes(&r, 1, 0), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "no verifier"));
	assert_int_equal(try_routes(&r, 1, 1), FM_OK);
	assert_int_equal(try_routes(&noh, 1, 0), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "no handler"));
}

static void test_httpc__error_names_round_trip(void **state)
{
	(void)state;
	for (int code = FM_EINTERNAL; code >= FM_ETIMEOUT; code--)
		assert_int_equal(httpc_err_from_name(fm_err_name(code)), code);
	assert_int_equal(httpc_err_from_name("no_such_code"), FM_EINTERNAL);
	assert_int_equal(httpc_err_from_name(NULL), FM_EINTERNAL);
}

static void test_httpc__statuses_map_to_codes(void **state)
{
	static const struct {
		long status;
		int code;
	} cases[] = {
		{ 400, FM_EINVAL },	  { 401, FM_EAUTH },
		{ 403, FM_EFORBIDDEN },	  { 404, FM_ENOTFOUND },
		{ 405, FM_EINVAL },	  { 409, FM_ECONFLICT },
		{ 413, FM_ETOOLARGE },	  { 422, FM_EUNPROCESSABLE },
		{ 429, FM_EUNAVAIL },	  { 500, FM_EINTERNAL },
		{ 502, FM_EUNAVAIL },	  { 503, FM_EUNAVAIL },
		{ 504, FM_ETIMEOUT },	  { 418, FM_EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(httpc_err_from_status(cases[i].status),
				 cases[i].code);
	/* and each status the server gives a code maps back to it */
	for (int code = FM_EINVAL; code >= FM_EUNPROCESSABLE; code--)
		assert_int_equal(httpc_err_from_status(fm_err_http_status(code)),
				 code);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_server__bad_patterns_refused),
		cmocka_unit_test(test_http_server__duplicate_routes_refused),
		cmocka_unit_test(test_http_server__signed_route_needs_verifier),
		cmocka_unit_test(test_httpc__error_names_round_trip),
		cmocka_unit_test(test_httpc__statuses_map_to_codes),
	};

	log_init("http_routes_test", LOG_WARN, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
