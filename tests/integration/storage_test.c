/* Integration tests of common/storage against the stack's real servers:
 * nginx WebDAV (FM_DAV_URL) and the SigV4-checking S3 server
 * (FEDMARKET_S3_*). Retry and cut-off behaviour is checked against a
 * small HTTP server in this program that misbehaves on purpose, on an
 * ephemeral loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "storage/blob.h"
#include "storage/bundle.h"
#include "storage/store.h"
#include "dirfx.h"
#include "testenv.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct fm_config cfg;
static char work[512]; /* scratch folder under FM_VAR */
static char dav_url[512];
static unsigned run_id;

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

/* A fresh empty folder under work. */
static void fresh_dir(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", work, name);
	assert_int_equal(tenv_sh("rm -rf '%s' && mkdir -p '%s'", out, out), 0);
}

static struct store *open_or_fail(const char *url)
{
	struct store *s = NULL;

	if (store_open(&s, url, &cfg))
		fail_msg("store_open(%s): %s", url, fm_error_msg());
	return s;
}

/* ---- round trips shared by the network backends ---- */

static void round_trip(struct store *s)
{
	struct buf b = BUF_INIT(1 << 20);
	char src[600], dst[600], *data;
	uint64_t size = 0;
	size_t n = 300000;

	data = malloc(n);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 251);
	assert_int_equal(store_put_mem(s, "rt/mem.bin", data, n, NULL), FM_OK);
	assert_int_equal(store_head(s, "rt/mem.bin", &size), FM_OK);
	assert_int_equal(size, n);
	assert_int_equal(store_get_mem(s, "rt/mem.bin", &b, NULL), FM_OK);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, data, n);

	snprintf(src, sizeof(src), "%s/rt-src.bin", work);
	snprintf(dst, sizeof(dst), "%s/rt-dst.bin", work);
	write_file(src, data, n / 2);
	assert_int_equal(store_put_file(s, "rt/file.bin", src, NULL), FM_OK);
	assert_int_equal(store_get_file(s, "rt/file.bin", dst, NULL), FM_OK);
	assert_int_equal(tenv_sh("cmp -s '%s' '%s'", src, dst), 0);

	/* empty objects are objects too */
	assert_int_equal(store_put_mem(s, "rt/empty", "", 0, NULL), FM_OK);
	assert_int_equal(store_get_mem(s, "rt/empty", &b, NULL), FM_OK);
	assert_int_equal(b.len, 0);

	assert_int_equal(store_delete(s, "rt/mem.bin"), FM_OK);
	assert_int_equal(store_head(s, "rt/mem.bin", NULL), FM_ENOTFOUND);
	assert_int_equal(store_get_mem(s, "rt/mem.bin", &b, NULL),
			 FM_ENOTFOUND);
	assert_int_equal(store_delete(s, "rt/mem.bin"), FM_OK);
	buf_cleanup(&b);
	free(data);
}

static void bundle_round_trip(struct store *s, const char *tag)
{
	struct store_bundle_info info = {
		.kind = STORE_KIND_TASK_ASSETS, .name = "assets", .version = "2",
		.description = "integration",
	};
	struct store_ref ref;
	json_t *m = NULL;
	char src[600], dst[600], p[700];

	snprintf(src, sizeof(src), "%s/bundle-%s", work, tag);
	snprintf(dst, sizeof(dst), "%s/pulled-%s", work, tag);
	assert_int_equal(tenv_sh("rm -rf '%s' '%s' && mkdir -p '%s/data/x'",
				 src, dst, src), 0);
	snprintf(p, sizeof(p), "%s/spec.json", src);
	write_file(p, "{\"epochs\":3}", 12);
	snprintf(p, sizeof(p), "%s/data/x/train %u.csv", src, run_id);
	write_file(p, "a,b\n1,2\n", 8);
	snprintf(p, sizeof(p), "%s/data/empty", src);
	write_file(p, "", 0);
	if (store_bundle_push(s, &ref, NULL, src, &info, NULL))
		fail_msg("push: %s", fm_error_msg());
	if (store_bundle_pull(s, &ref, dst, &m, NULL))
		fail_msg("pull: %s", fm_error_msg());
	assert_int_equal(json_array_size(json_object_get(m, "files")), 3);
	assert_int_equal(tenv_sh("diff -r '%s' '%s'", src, dst), 0);
	json_decref(m);
}

/* Overwrites blob ref with other bytes of the same length, as a broken or
 * hostile store would, and checks both kinds of download refuse it. */
static void tamper_detected(struct store *s, const char *tag)
{
	struct buf b = BUF_INIT(1024);
	struct store_ref ref;
	char key[80], dir[600], dst[700], text[64];

	snprintf(text, sizeof(text), "genuine %s %u", tag, run_id);
	assert_int_equal(store_blob_put_mem(s, &ref, text, strlen(text)),
			 FM_OK);
	store_blob_key(key, &ref);
	text[0] = 'G';
	assert_int_equal(store_put_mem(s, key, text, strlen(text), NULL),
			 FM_OK);
	assert_int_equal(store_blob_get_mem(s, &ref, &b), FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "does not match"));
	fresh_dir(dir, sizeof(dir), "tamper");
	snprintf(dst, sizeof(dst), "%s/blob", dir);
	assert_int_equal(store_blob_get_file(s, &ref, UINT64_MAX, dst, NULL),
			 FM_EUNPROCESSABLE);
	assert_int_equal(dirfx_count(dir), 0);
	buf_cleanup(&b);
}

/* ---- WebDAV ---- */

struct seen {
	uint64_t last, total;
	int calls, backwards;
};

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
	struct seen *p = ud;

	if (done < p->last)
		p->backwards = 1;
	p->last = done;
	if (total)
		p->total = total;
	p->calls++;
}

static void test_storage__dav_round_trip(void **state)
{
	struct seen up = { 0 }, down = { 0 };
	struct store_xfer x = { .progress = on_progress };
	char url[600], src[600], dst[600];
	struct store *s;
	char *data = calloc(1, 3 << 20);

	(void)state;
	assert_non_null(data);
	snprintf(url, sizeof(url), "%s/rt-%u", dav_url, run_id);
	s = open_or_fail(url);
	round_trip(s);
	/* progress moves forward and ends at the size */
	snprintf(src, sizeof(src), "%s/progress.src", work);
	snprintf(dst, sizeof(dst), "%s/progress.dst", work);
	write_file(src, data, 3 << 20);
	x.progress_ud = &up;
	assert_int_equal(store_put_file(s, "p", src, &x), FM_OK);
	x.progress_ud = &down;
	assert_int_equal(store_get_file(s, "p", dst, &x), FM_OK);
	assert_true(up.calls > 0 && down.calls > 0);
	assert_false(up.backwards || down.backwards);
	assert_int_equal(up.last, 3 << 20);
	assert_int_equal(up.total, 3 << 20);
	assert_int_equal(down.last, 3 << 20);
	free(data);
	store_free(s);
}

static void test_storage__dav_bundle_and_tamper(void **state)
{
	char url[600];
	struct store *s;

	(void)state;
	snprintf(url, sizeof(url), "%s/b-%u", dav_url, run_id);
	s = open_or_fail(url);
	bundle_round_trip(s, "dav");
	tamper_detected(s, "dav");
	store_free(s);
}

static long peak_rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void reset_peak_rss(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "5", 1), 1);
	close(fd);
}

/* 1 GiB through WebDAV and back as a verified blob; the process must not
 * grow by more than a few buffers. */
static void test_storage__gib_blob_streams_in_bounded_memory(void **state)
{
	const size_t chunk = 1 << 20, chunks = 1024;
	char url[600], src[600], dst[600], key[80], *buf;
	struct store_ref ref;
	struct store *s;
	uint64_t size = 0;
	long before, grew;
	FILE *f;

	(void)state;
	snprintf(url, sizeof(url), "%s/gib-%u", dav_url, run_id);
	s = open_or_fail(url);
	snprintf(src, sizeof(src), "%s/gib.src", work);
	snprintf(dst, sizeof(dst), "%s/gib.dst", work);
	buf = malloc(chunk);
	assert_non_null(buf);
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (char)(i * 131 + (i >> 9));
	f = fopen(src, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < chunks; i++) {
		memcpy(buf, &i, sizeof(i)); /* every MiB differs */
		assert_int_equal(fwrite(buf, 1, chunk, f), chunk);
	}
	assert_int_equal(fclose(f), 0);
	free(buf);

	reset_peak_rss();
	before = peak_rss_kib();
	if (store_blob_put_file(s, &ref, &size, src, NULL))
		fail_msg("put: %s", fm_error_msg());
	assert_int_equal(size, (uint64_t)chunk * chunks);
	if (store_blob_get_file(s, &ref, size, dst, NULL))
		fail_msg("get: %s", fm_error_msg());
	grew = peak_rss_kib() - before;
	print_message("1 GiB up and down: peak RSS grew by %ld KiB\n", grew);
	assert_true(grew < 64 * 1024);
	assert_int_equal(tenv_sh("cmp -s '%s' '%s'", src, dst), 0);
	store_blob_key(key, &ref);
	assert_int_equal(store_delete(s, key), FM_OK);
	unlink(src);
	unlink(dst);
	store_free(s);
}

/* ---- S3 ---- */

static void s3_url(char *out, size_t n, const char *bucket)
{
	snprintf(out, n, "s3://%s-%u/pre/fix", bucket, run_id);
}

static int count_keys(void *ud, const char *key, uint64_t size)
{
	int *n = ud;

	if ((strcmp(key, "rt/file.bin") == 0 && size == 150000) ||
	    (strcmp(key, "rt/empty") == 0 && size == 0))
		++*n;
	else
		fail_msg("unexpected key %s (%llu bytes)", key,
			 (unsigned long long)size);
	return 0;
}

static void test_storage__s3_round_trip_and_list(void **state)
{
	char url[128];
	struct store *s;
	int count = 0;

	(void)state;
	s3_url(url, sizeof(url), "rt");
	s = open_or_fail(url);
	/* a missing bucket is named, then created on request */
	assert_int_equal(store_put_mem(s, "k", "v", 1, NULL), FM_ENOTFOUND);
	assert_non_null(strstr(fm_error_msg(), "does not exist"));
	assert_int_equal(store_ensure(s), FM_OK);
	assert_int_equal(store_ensure(s), FM_OK);
	round_trip(s);
	/* round_trip leaves rt/file.bin and rt/empty */
	assert_int_equal(store_list(s, "rt/", count_keys, &count), FM_OK);
	assert_int_equal(count, 2);
	store_free(s);
}

static void test_storage__s3_bundle_and_tamper(void **state)
{
	char url[128];
	struct store *s;

	(void)state;
	s3_url(url, sizeof(url), "bundle");
	s = open_or_fail(url);
	assert_int_equal(store_ensure(s), FM_OK);
	bundle_round_trip(s, "s3");
	tamper_detected(s, "s3");
	store_free(s);
}

static void test_storage__s3_wrong_secret_is_an_auth_error(void **state)
{
	struct fm_config bad = cfg;
	struct buf b = BUF_INIT(64);
	char url[128];
	struct store *s = NULL;

	(void)state;
	s3_url(url, sizeof(url), "auth");
	s = open_or_fail(url);
	assert_int_equal(store_ensure(s), FM_OK);
	assert_int_equal(store_put_mem(s, "secret", "x", 1, NULL), FM_OK);
	store_free(s);
	snprintf(bad.s3_secret_key, sizeof(bad.s3_secret_key), "not-%s",
		 cfg.s3_secret_key);
	assert_int_equal(store_open(&s, url, &bad), FM_OK);
	assert_int_equal(store_get_mem(s, "secret", &b, NULL), FM_EAUTH);
	assert_non_null(strstr(fm_error_msg(), "SignatureDoesNotMatch"));
	assert_null(strstr(fm_error_msg(), bad.s3_secret_key));
	assert_int_equal(store_put_mem(s, "other", "y", 1, NULL), FM_EAUTH);
	assert_int_equal(store_head(s, "secret", NULL), FM_EAUTH);
	store_free(s);
	buf_cleanup(&b);
}

/* ---- a server that misbehaves on purpose ---- */

enum fault { F_503_THEN_OK, F_STATUS, F_STALL, F_CUT };

#define STALL_MAX 16

struct fault_srv {
	int fd, port, stop[2];
	enum fault mode;
	int fail_first; /* F_503_THEN_OK: how many 503s first */
	int status;     /* F_STATUS */
	int requests;
	int stalled[STALL_MAX]; /* F_STALL: connections left hanging */
	int nstalled;
	pthread_t th;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Reads one request head (and drains a body by Content-Length). */
static int read_request(int fd)
{
	char buf[8192];
	size_t len = 0;
	long body = 0;
	char *end = NULL, *cl;

	while (!end && len < sizeof(buf) - 1) {
		ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return -1;
	cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl)
		body = strtol(cl + 17, NULL, 10);
	if (strcasestr(buf, "\r\nExpect: 100-continue"))
		send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	body -= (long)(len - (size_t)(end + 4 - buf));
	while (body > 0) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r <= 0)
			return -1;
		body -= r;
	}
	return 0;
}

static void *fault_main(void *arg)
{
	struct fault_srv *f = arg;
	char resp[256];

	for (;;) {
		struct pollfd p[2] = { { f->fd, POLLIN, 0 },
				       { f->stop[0], POLLIN, 0 } };
		int c;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		c = accept(f->fd, NULL, NULL);
		if (c < 0)
			continue;
		while (read_request(c) == 0) {
			int n = __atomic_add_fetch(&f->requests, 1,
						   __ATOMIC_SEQ_CST);

			if (f->mode == F_STALL && f->nstalled < STALL_MAX) {
				/* never answer; keep accepting the retries */
				f->stalled[f->nstalled++] = c;
				c = -1;
				break;
			}
			if (f->mode == F_CUT) {
				static char half[500000];

				snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\n"
					 "Content-Length: 1000000\r\n\r\n");
				send_all(c, resp, strlen(resp));
				send_all(c, half, sizeof(half));
				break; /* and hang up halfway */
			}
			if (f->mode == F_503_THEN_OK && n > f->fail_first)
				snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\n"
					 "Content-Length: 5\r\n\r\nhello");
			else
				snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\n"
					 "Content-Length: 0\r\n\r\n",
					 f->mode == F_STATUS ? f->status : 503);
			send_all(c, resp, strlen(resp));
		}
		if (c >= 0)
			close(c);
	}
	for (int i = 0; i < f->nstalled; i++)
		close(f->stalled[i]);
	return NULL;
}

static void fault_start(struct fault_srv *f, enum fault mode)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	f->mode = mode;
	f->requests = 0;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pipe(f->stop), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fault_main, f), 0);
}

static void fault_stop(struct fault_srv *f)
{
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	pthread_join(f->th, NULL);
	close(f->fd);
	close(f->stop[0]);
	close(f->stop[1]);
}

static struct store *fault_store(const struct fault_srv *f, int retries)
{
	struct store_limits lim;
	struct store *s;
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f->port);
	s = open_or_fail(url);
	store_get_limits(s, &lim);
	lim.retries = retries;
	lim.backoff_ms = 10;
	lim.timeout_ms = 300;
	assert_int_equal(store_set_limits(s, &lim), FM_OK);
	return s;
}

static void test_storage__retries_5xx_then_succeeds(void **state)
{
	struct fault_srv f = { .fail_first = 2 };
	struct buf b = BUF_INIT(64);
	struct store *s;

	(void)state;
	fault_start(&f, F_503_THEN_OK);
	s = fault_store(&f, 3);
	assert_int_equal(store_get_mem(s, "k", &b, NULL), FM_OK);
	assert_string_equal(b.data, "hello");
	assert_int_equal(f.requests, 3);
	/* uploads are sent again from the start */
	f.requests = 0;
	assert_int_equal(store_put_mem(s, "k", "body", 4, NULL), FM_OK);
	assert_int_equal(f.requests, 3);
	/* and a server that stays down is reported after the retries */
	store_free(s);
	f.requests = 0;
	f.fail_first = 100;
	s = fault_store(&f, 2);
	assert_int_equal(store_get_mem(s, "k", &b, NULL), FM_EUNAVAIL);
	assert_int_equal(f.requests, 3);
	store_free(s);
	fault_stop(&f);
	buf_cleanup(&b);
}

/* Retries are logged; the password in the URL never is. */
static void test_storage__credentials_never_logged(void **state)
{
	struct fault_srv f = { .fail_first = 1 };
	struct buf b = BUF_INIT(64);
	struct store_limits lim;
	struct store *s = NULL;
	char url[96], *logged = NULL;
	size_t logged_len = 0;
	FILE *mem;

	(void)state;
	fault_start(&f, F_503_THEN_OK);
	snprintf(url, sizeof(url), "http://alice:pw-s3cr3t@127.0.0.1:%d/x",
		 f.port);
	assert_int_equal(store_open(&s, url, &cfg), FM_OK);
	store_get_limits(s, &lim);
	lim.backoff_ms = 1;
	assert_int_equal(store_set_limits(s, &lim), FM_OK);
	mem = open_memstream(&logged, &logged_len);
	assert_non_null(mem);
	log_init("storage-test", LOG_DEBUG, 0);
	log_set_stream(mem);
	assert_int_equal(store_get_mem(s, "k", &b, NULL), FM_OK);
	log_set_stream(NULL);
	log_init("storage-test", LOG_ERROR, 0);
	fclose(mem);
	assert_non_null(strstr(logged, "retry 1 of"));
	assert_null(strstr(logged, "s3cr3t"));
	assert_null(strstr(logged, "alice"));
	assert_null(strstr(store_url(s), "s3cr3t"));
	free(logged);
	store_free(s);
	fault_stop(&f);
	buf_cleanup(&b);
}

static void test_storage__no_retry_on_4xx(void **state)
{
	static const int codes[] = { 400, 401, 403, 404, 409 };
	static const int errs[] = { FM_EINVAL, FM_EAUTH, FM_EFORBIDDEN,
				    FM_ENOTFOUND, FM_ECONFLICT };
	struct fault_srv f = { 0 };
	struct buf b = BUF_INIT(64);
	struct store *s;

	(void)state;
	fault_start(&f, F_STATUS);
	s = fault_store(&f, 3);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		f.status = codes[i];
		f.requests = 0;
		assert_int_equal(store_get_mem(s, "k", &b, NULL), errs[i]);
		assert_int_equal(f.requests, 1);
	}
	store_free(s);
	fault_stop(&f);
	buf_cleanup(&b);
}

static void test_storage__timeouts_are_retried(void **state)
{
	struct fault_srv f = { 0 };
	struct buf b = BUF_INIT(64);
	struct store *s;

	(void)state;
	fault_start(&f, F_STALL);
	s = fault_store(&f, 1);
	assert_int_equal(store_get_mem(s, "k", &b, NULL), FM_ETIMEOUT);
	assert_non_null(strstr(fm_error_msg(), "timed out"));
	assert_int_equal(f.requests, 2);
	store_free(s);
	fault_stop(&f);
	buf_cleanup(&b);
}

static void test_storage__cut_off_download_leaves_nothing(void **state)
{
	struct fault_srv f = { 0 };
	struct store_ref ref;
	char dir[600], dst[700];
	struct store *s;

	(void)state;
	fault_start(&f, F_CUT);
	s = fault_store(&f, 3);
	fresh_dir(dir, sizeof(dir), "cut");
	snprintf(dst, sizeof(dst), "%s/object", dir);
	assert_int_equal(store_get_file(s, "k", dst, NULL), FM_EUNAVAIL);
	assert_non_null(strstr(fm_error_msg(), "cut off"));
	assert_int_equal(f.requests, 1); /* not a timeout or 5xx: no retry */
	assert_int_equal(store_ref_parse(&ref, "2cf24dba5fb0a30e26e83b2ac5b9e"
					 "29e1b161e5c1fa7425e73043362938b9824"),
			 FM_OK);
	assert_int_equal(store_blob_get_file(s, &ref, UINT64_MAX, dst, NULL),
			 FM_EUNAVAIL);
	assert_int_equal(dirfx_count(dir), 0);
	store_free(s);
	fault_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage__dav_round_trip),
		cmocka_unit_test(test_storage__dav_bundle_and_tamper),
		cmocka_unit_test(test_storage__s3_round_trip_and_list),
		cmocka_unit_test(test_storage__s3_bundle_and_tamper),
		cmocka_unit_test(test_storage__s3_wrong_secret_is_an_auth_error),
		cmocka_unit_test(test_storage__retries_5xx_then_succeeds),
		cmocka_unit_test(test_storage__credentials_never_logged),
		cmocka_unit_test(test_storage__no_retry_on_4xx),
		cmocka_unit_test(test_storage__timeouts_are_retried),
		cmocka_unit_test(test_storage__cut_off_download_leaves_nothing),
		cmocka_unit_test(test_storage__gib_blob_streams_in_bounded_memory),
	};
	int rc;

	if (cfg_load(&cfg, NULL)) {
		fprintf(stderr, "config: %s\n", fm_error_msg());
		return 1;
	}
	log_init("storage-test", LOG_ERROR, 0);
	snprintf(dav_url, sizeof(dav_url), "%s", tenv_require("FM_DAV_URL"));
	tenv_require("FEDMARKET_S3_ENDPOINT");
	run_id = (unsigned)time(NULL) ^ ((unsigned)getpid() << 8);
	snprintf(work, sizeof(work), "%s/storage-test-%u",
		 tenv_require("FM_VAR"), run_id);
	if (tenv_sh("mkdir -p '%s'", work) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	tenv_sh("rm -rf '%s'", work);
	return rc;
}
