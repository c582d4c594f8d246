/* Route patterns and matching; route tables are checked when the server
 * is made, before anything listens; the client's mapping of statuses and
 * error names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "http/client.h"
#include "http/route.h"
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

static void test_http_route__pattern_parse(void **state)
{
	struct http_pattern p;

	(void)state;
	assert_int_equal(http_pattern_parse(&p, "/v1/tasks/{id:int}/results/"
					       "{who:addr}/{x}"),
			 FM_OK);
	assert_int_equal(p.n_segs, 6);
	assert_int_equal(p.segs[0].type, HTTP_SEG_LIT);
	assert_int_equal(p.segs[0].len, 2);
	assert_memory_equal(p.segs[0].text, "v1", 2);
	assert_int_equal(p.segs[2].type, HTTP_SEG_INT);
	assert_memory_equal(p.segs[2].text, "id", 2);
	assert_int_equal(p.segs[4].type, HTTP_SEG_ADDR);
	assert_int_equal(p.segs[5].type, HTTP_SEG_STR);
	assert_int_equal(p.segs[5].len, 1);
	assert_int_equal(http_pattern_parse(&p, "/"), FM_OK);
	assert_int_equal(p.n_segs, 0);
	assert_int_equal(http_pattern_parse(&p, "/a/{b:uuid}/{c:hash}"), FM_OK);
	assert_int_equal(http_pattern_parse(&p, "/a/{b:}"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "unknown parameter type ''"));
	assert_int_equal(http_pattern_parse(&p, "/a/{b}}"), FM_EINVAL);
	assert_int_equal(http_pattern_parse(&p, "/a/{{b}"), FM_EINVAL);
}

static char *split(char *buf, char **segs, int *n, int *rc)
{
	*rc = http_path_split(buf, segs, n);
	return buf;
}

static void test_http_route__path_split(void **state)
{
	char *segs[HTTP_MAX_SEGMENTS];
	char a[] = "/v1/tasks/7", b[] = "/", c[] = "/a//b", d[] = "/a/",
	     e[] = "a/b", f[] = "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16",
	     g[] = "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17";
	int n, rc;

	(void)state;
	split(a, segs, &n, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(n, 3);
	assert_string_equal(segs[0], "v1");
	assert_string_equal(segs[2], "7");
	split(b, segs, &n, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(n, 0);
	split(c, segs, &n, &rc);
	assert_int_equal(rc, -1);
	split(d, segs, &n, &rc);
	assert_int_equal(rc, -1);
	split(e, segs, &n, &rc);
	assert_int_equal(rc, -1);
	split(f, segs, &n, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(n, 16);
	split(g, segs, &n, &rc);
	assert_int_equal(rc, -1);
}

static void test_http_route__match_and_specificity(void **state)
{
	struct http_pattern by_id, search, other;
	char path[] = "/v1/tasks/search", *segs[HTTP_MAX_SEGMENTS];
	int n;

	(void)state;
	assert_int_equal(http_pattern_parse(&by_id, "/v1/tasks/{id:int}"), 0);
	assert_int_equal(http_pattern_parse(&search, "/v1/tasks/search"), 0);
	assert_int_equal(http_pattern_parse(&other, "/v1/{x}/{y}"), 0);
	assert_int_equal(http_path_split(path, segs, &n), 0);
	/* all three match the shape; the literal one is the most specific */
	assert_true(http_pattern_match(&by_id, segs, n));
	assert_true(http_pattern_match(&search, segs, n));
	assert_true(http_pattern_match(&other, segs, n));
	assert_true(search.spec > by_id.spec);
	assert_true(by_id.spec > other.spec);
	segs[1] = "models";
	assert_false(http_pattern_match(&by_id, segs, n));
	assert_true(http_pattern_match(&other, segs, n));
	assert_false(http_pattern_match(&by_id, segs, 2));
	/* names and types do not make patterns different */
	struct http_pattern by_name;
	assert_int_equal(http_pattern_parse(&by_name, "/v1/tasks/{name}"), 0);
	assert_true(http_pattern_same(&by_id, &by_name));
	assert_false(http_pattern_same(&by_id, &search));
	assert_false(http_pattern_same(&by_id, &other));
}

static void test_http_route__param_types(void **state)
{
	static const struct {
		enum http_seg_type t;
		const char *v;
		int ok;
	} cases[] = {
		{ HTTP_SEG_INT, "0", 1 },
		{ HTTP_SEG_INT, "9223372036854775807", 1 },
		{ HTTP_SEG_INT, "9223372036854775808", 0 },
		{ HTTP_SEG_INT, "-1", 0 },
		{ HTTP_SEG_INT, "+1", 0 },
		{ HTTP_SEG_INT, " 1", 0 },
		{ HTTP_SEG_INT, "1e3", 0 },
		{ HTTP_SEG_ADDR, "0x52908400098527886E0F7030069857D2E4169EE7", 1 },
		{ HTTP_SEG_ADDR, "0X52908400098527886e0f7030069857d2e4169ee7", 1 },
		{ HTTP_SEG_ADDR, "52908400098527886E0F7030069857D2E4169EE7", 0 },
		{ HTTP_SEG_ADDR, "0x52908400098527886E0F7030069857D2E4169EE", 0 },
		{ HTTP_SEG_ADDR, "0xg2908400098527886E0F7030069857D2E4169EE7", 0 },
		{ HTTP_SEG_HASH, "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", 1 },
		{ HTTP_SEG_HASH, "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a47", 0 },
		{ HTTP_SEG_UUID, "123e4567-e89b-12d3-a456-426614174000", 1 },
		{ HTTP_SEG_UUID, "123e4567e89b-12d3-a456-4266141740000", 0 },
		{ HTTP_SEG_STR, "anything goes", 1 },
		{ HTTP_SEG_STR, "", 0 },
	};
	char long_str[300];
	long long x;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (http_param_ok(cases[i].t, cases[i].v) != cases[i].ok)
			fail_msg("type %d, '%s': expected %d", cases[i].t,
				 cases[i].v, cases[i].ok);
	memset(long_str, 'a', sizeof(long_str) - 1);
	long_str[sizeof(long_str) - 1] = '\0';
	assert_false(http_param_ok(HTTP_SEG_STR, long_str));
	assert_int_equal(http_parse_int("-42", &x), 0);
	assert_int_equal(x, -42);
	assert_int_equal(http_parse_int("-", &x), -1);
	assert_int_equal(http_parse_int("", &x), -1);
	assert_int_equal(http_parse_int("12 ", &x), -1);
	assert_string_equal(http_param_expect(HTTP_SEG_INT),
			    "a non-negative integer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_server__bad_patterns_refused),
		cmocka_unit_test(test_http_server__duplicate_routes_refused),
		cmocka_unit_test(test_http_server__signed_route_needs_verifier),
		cmocka_unit_test(test_httpc__error_names_round_trip),
		cmocka_unit_test(test_http_route__pattern_parse),
		cmocka_unit_test(test_http_route__path_split),
		cmocka_unit_test(test_http_route__match_and_specificity),
		cmocka_unit_test(test_http_route__param_types),
		cmocka_unit_test(test_httpc__statuses_map_to_codes),
	};

	log_init("http_routes_test", LOG_WARN, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
