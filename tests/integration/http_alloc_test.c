/* Allocation failures on the server's threads (curl's torture idea): the
 * Nth allocation made while serving a request fails, for N = 1, 2, ...
 * until a request needs fewer than N. Every request is answered or its
 * connection closed, nothing leaks, and the server keeps serving. The same
 * for the client's thread: every failure is an error (or recovered by
 * libcurl), never a crash or a leak.
 *
 * The program replaces malloc, calloc, realloc and free and forwards to
 * the next definition (glibc's, or the sanitizer's in a SAN build, which
 * then still checks every allocation and reports leaks). */
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

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* These run before the sanitizer runtime is set up: not instrumented. */
#define NOSAN __attribute__((no_sanitize("address", "undefined")))

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);

/* dlsym may allocate while the pointers above are being looked up */
static _Alignas(16) char boot[8192];
static size_t boot_used;

NOSAN static int in_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

NOSAN static void *boot_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (boot_used + n > sizeof(boot))
		return NULL;
	p = boot + boot_used;
	boot_used += n;
	return p; /* static storage: already zero */
}

NOSAN static void resolve(void)
{
	static _Atomic int state; /* 0 none, 1 resolving, 2 done */
	int zero = 0;

	if (atomic_load(&state) == 2)
		return;
	if (!atomic_compare_exchange_strong(&state, &zero, 1)) {
		while (atomic_load(&state) != 2)
			;
		return;
	}
	next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	atomic_store(&state, 2);
}

static _Atomic long countdown;   /* fail when it reaches 0; <0: off */
static _Atomic long live;        /* allocations not yet freed */
static _Atomic long failed;      /* allocations refused */
static _Thread_local int exempt; /* the test's own thread */
static _Atomic int fail_test_thread; /* 0: fail the server's threads */
static _Thread_local int paused;   /* not counting for a moment */
static _Thread_local int resolving;

NOSAN static int refuse(void)
{
	if (paused || exempt != atomic_load_explicit(&fail_test_thread,
					   memory_order_relaxed) ||
	    atomic_load_explicit(&countdown, memory_order_relaxed) < 0)
		return 0;
	if (atomic_fetch_sub(&countdown, 1) == 1) {
		atomic_fetch_add(&failed, 1);
		return 1;
	}
	return 0;
}

NOSAN static int ready(void)
{
	if (next_free)
		return 1;
	if (resolving)
		return 0;
	resolving = 1;
	resolve();
	resolving = 0;
	return next_free != NULL;
}

NOSAN void *malloc(size_t n)
{
	void *p;

	if (!ready())
		return boot_alloc(n);
	p = refuse() ? NULL : next_malloc(n);
	if (p)
		atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
	return p;
}

NOSAN void *calloc(size_t n, size_t size)
{
	void *p;

	if (!ready())
		return size && n > SIZE_MAX / size ? NULL : boot_alloc(n * size);
	p = refuse() ? NULL : next_calloc(n, size);
	if (p)
		atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
	return p;
}

NOSAN void *realloc(void *old, size_t n)
{
	void *p;

	if (!old)
		return malloc(n);
	if (in_boot(old) || !ready())
		return NULL; /* boot memory is never resized */
	if (refuse())
		return NULL;
	p = next_realloc(old, n);
	if (!p && n == 0)
		atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
	return p;
}

NOSAN void free(void *p)
{
	if (!p || in_boot(p))
		return;
	atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
	if (ready())
		next_free(p);
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
	if (!err)
		err = http_resp_header(req, "Location", "/echo/1");
	if (err) {
		json_decref(j);
		return err;
	}
	return http_respond_json(req, 201, j);
}

static int h_query(struct http_req *req, void *arg)
{
	static const char *const states[] = { "open", "closed", NULL };
	long long limit;
	int state, err;

	(void)arg;
	err = http_req_query_int(req, "limit", 1, 100, 10, &limit);
	if (!err)
		err = http_req_query_enum(req, "state", states, 0, &state);
	if (err)
		return err;
	return http_respond_json(req, 200,
				 json_pack("{s:I, s:s}", "limit", limit,
					   "state", states[state]));
}

static const struct http_route routes[] = {
	{ "POST", "/echo", h_echo, 0, 0 },
	{ "GET", "/q", h_query, 0, 0 },
	{ "POST", "/signed", h_echo, 0, HTTP_SIGNED },
};

static const char *const requests[] = {
	"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	"Content-Length: 7\r\nConnection: close\r\n\r\n{\"n\":1}",
	"GET /q?limit=5&state=closed HTTP/1.1\r\nHost: t\r\n"
	"Connection: close\r\n\r\n",
	"GET /q?state=nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	"GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	"POST /signed HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
	"Connection: close\r\n\r\n{}",
};

static void sleep_ms(long ms)
{
	struct timespec t = { 0, ms * 1000000L };

	nanosleep(&t, NULL);
}

/* Waits until the server's allocations are back to base (a request's
 * memory is freed after its answer is sent). */
static long settle(long base)
{
	for (int i = 0; i < 200 && atomic_load(&live) != base; i++)
		sleep_ms(5);
	return atomic_load(&live);
}

static void test_http_server__allocation_failures(void **state)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct http_server *s = NULL;
	struct buf b = BUF_INIT(1 << 20);
	char listen[64];
	unsigned port = http_test_port(2);
	long base;

	(void)state;
	exempt = 1;
	atomic_store(&countdown, -1);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	o.listen = listen;
	o.name = "alloctestd";
	o.threads = 2;
	o.access_log = 0;
	o.verify = http_test_verify;
	assert_int_equal(http_server_new(&s, &o, routes,
					 sizeof(routes) / sizeof(routes[0]),
					 NULL),
			 FM_OK);
	assert_int_equal(http_test_start(s), FM_OK);

	for (size_t k = 0; k < sizeof(requests) / sizeof(requests[0]); k++) {
		int expect, covered = 0;

		/* the answer with no failure, twice: the first warms up */
		http_test_raw(port, requests[k], &b);
		expect = http_test_raw(port, requests[k], &b);
		assert_true(expect >= 200);
		sleep_ms(20);
		base = atomic_load(&live);
		for (long n = 1; n < 5000 && !covered; n++) {
			long before = atomic_load(&failed);
			atomic_store(&countdown, n);
			int st = http_test_raw(port, requests[k], &b);
			atomic_store(&countdown, -1);
			if (atomic_load(&failed) == before) {
				/* the request needed fewer than n */
				assert_int_equal(st, expect);
				covered = 1;
				fprintf(stderr, "request %zu: %ld allocation "
					"points, each failed once\n", k, n - 1);
				continue;
			}
			/* an answer (any status) or a closed connection */
			assert_true(st == -1 || (st >= 200 && st <= 599));
			/* with a sanitizer some allocations bypass malloc
			 * (its strdup): LeakSanitizer checks at exit */
			if (!SANITIZED && settle(base) != base)
				fail_msg("request %zu, allocation %ld failed: "
					 "%ld allocations leaked", k, n,
					 atomic_load(&live) - base);
		}
		assert_true(covered);
		assert_int_equal(http_test_raw(port, requests[k], &b), expect);
	}
	assert_int_equal(http_server_stop(s, 2000), FM_OK);
	http_server_free(s);
	buf_cleanup(&b);
}

/* The test signature, with the hashing out of the torture: fm_sha256
 * cannot report a failure (OpenSSL's EVP can), so only the client's own
 * allocations and its headers are failed here. */
static int torture_sign(void *addr, const char *method, const char *target,
			const void *body, size_t len, struct httpc_headers *h)
{
	char tag[65];
	int err;

	paused = 1;
	err = http_test_tag(tag, method, target, body, len, addr);
	paused = 0;
	if (!err)
		err = httpc_headers_add(h, "X-Test-Addr", addr);
	return err ? err : httpc_headers_add(h, "X-Test-Sig", tag);
}

static void test_httpc__allocation_failures(void **state)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	struct httpc_opts co = HTTPC_OPTS_INIT;
	struct http_server *s = NULL;
	struct httpc *c = NULL;
	json_t *body = json_pack("{s:i}", "n", 3), *out = NULL;
	char listen[64], base_url[64];
	unsigned port = http_test_port(2);
	int covered = 0, err;
	long base, ref;

	(void)state;
	exempt = 1;
	atomic_store(&countdown, -1);
	atomic_store(&fail_test_thread, 1);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", port);
	o.listen = listen;
	o.access_log = 0;
	o.verify = http_test_verify;
	co.base_url = base_url;
	co.retries = 1;
	co.backoff_ms = 1;
	co.sign = torture_sign;
	co.sign_arg = "0x00000000000000000000000000000000000000aa";
	assert_int_equal(http_server_new(&s, &o, routes,
					 sizeof(routes) / sizeof(routes[0]),
					 NULL),
			 FM_OK);
	assert_int_equal(http_test_start(s), FM_OK);
	/* curl's global state is made once, on the first client */
	assert_int_equal(httpc_new(&c, &co), FM_OK);
	assert_int_equal(httpc_post(c, "/signed", body, "k", &out), FM_OK);
	json_decref(out);
	httpc_free(c);
	sleep_ms(20);
	base = atomic_load(&live);
	ref = base;
	/* each point fails twice: libcurl may set up a global once when an
	 * allocation fails, a leak shows again on the second failure */
	for (long n = 1; n < 20000 && !covered; n++) {
		long after[2] = { 0, 0 };
		for (int rep = 0; rep < 2 && !covered; rep++) {
			long before = atomic_load(&failed);
			c = NULL;
			out = NULL;
			atomic_store(&countdown, n);
			err = httpc_new(&c, &co);
			if (!err)
				err = httpc_post(c, "/signed", body, "k", &out);
			atomic_store(&countdown, -1);
			if (atomic_load(&failed) == before) {
				assert_int_equal(err, FM_OK);
				assert_int_equal(json_integer_value(
							 json_object_get(out, "n")),
						 3);
				covered = 1;
				fprintf(stderr, "client: %ld allocation points, "
					"each failed twice\n", n - 1);
			}
			json_decref(out);
			httpc_free(c);
			if (!SANITIZED)
				after[rep] = settle(rep ? after[0] : ref);
		}
		if (!SANITIZED && !covered && after[1] != after[0])
			fail_msg("client, allocation %ld failed (%s): %ld "
				 "allocations leaked", n,
				 err ? fm_error_msg() : "no error",
				 after[1] - after[0]);
		ref = after[1];
	}
	/* and what curl set up on the way stays small */
	if (!SANITIZED)
		assert_true(settle(base) - base <= 4);
	assert_true(covered);
	atomic_store(&fail_test_thread, 0);
	json_decref(body);
	assert_int_equal(http_server_stop(s, 2000), FM_OK);
	http_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_server__allocation_failures),
		cmocka_unit_test(test_httpc__allocation_failures),
	};

	log_init("http_alloc_test", LOG_WARN, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
