/* The libcurl transfer engine shared by http(s):// and s3://, and the
 * http(s):// backend (GET/HEAD, PUT/DELETE on WebDAV-style servers). */
#include "storage/store_int.h"

#include "core/err.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Large buffers cut per-chunk overhead on fast links (loopback, LAN). */
#define HTTP_RECV_BUFFER (512L * 1024)
#define HTTP_SEND_BUFFER (512L * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe: run it once, whoever comes first */
static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int curl_handle(struct store *s)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return fm_error_set(FM_EINTERNAL, "libcurl did not start: %s",
				    curl_easy_strerror(curl_init_rc));
	if (!s->curl)
		s->curl = curl_easy_init();
	if (!s->curl)
		return fm_error_set(FM_ENOMEM, "cannot create a curl handle");
	return FM_OK;
}

struct xfer {
	struct store *s;
	struct store__req *r;
	int err;     /* set by a callback that stopped the transfer */
	int started; /* first body byte seen */
	int body_ok; /* 2xx answer going to the sink */
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *t = ud;
	struct store__req *r = t->r;
	size_t n = size * nmemb;

	if (!t->started) {
		long status = 0;
		curl_off_t cl = -1;

		t->started = 1;
		curl_easy_getinfo(t->s->curl, CURLINFO_RESPONSE_CODE, &status);
		t->body_ok = status >= 200 && status < 300 && r->sink;
		if (t->body_ok) {
			curl_easy_getinfo(t->s->curl,
					  CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
					  &cl);
			t->err = store__sink_announce(
				r->sink, cl >= 0 ? (uint64_t)cl : STORE_UNKNOWN);
			if (t->err)
				return 0;
		}
	}
	if (!t->body_ok) {
		size_t room = sizeof(r->err_body) - 1 - r->err_len;
		size_t k = n < room ? n : room;

		memcpy(r->err_body + r->err_len, p, k);
		r->err_len += k;
		r->err_body[r->err_len] = '\0';
		return n;
	}
	t->err = store__sink_put(r->sink, p, n);
	return t->err ? 0 : n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *t = ud;
	size_t got = 0;

	t->err = t->r->src->read(t->r->src, p, size * nmemb, &got);
	return t->err ? CURL_READFUNC_ABORT : got;
}

/* curl rewinds the body when it must send it again (a dead reused
 * connection, an auth round trip). */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct xfer *t = ud;

	if (offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	t->err = t->r->src->rewind(t->r->src);
	return t->err ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *t = ud;
	const struct store_xfer *x = t->r->x;

	if (t->r->src)
		x->progress(x->progress_ud, (uint64_t)ulnow,
			    (uint64_t)ultotal);
	else
		x->progress(x->progress_ud, (uint64_t)dlnow,
			    (uint64_t)dltotal);
	return 0;
}

static int setup(struct store *s, struct store__req *r, struct xfer *t,
		 struct curl_slist **hdrs, char *errbuf)
{
	CURL *c = s->curl;
	char h[160];
	struct curl_slist *l;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->lim.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->lim.stall_timeout_s);
	if (s->lim.timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->lim.timeout_ms);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	if (s->user[0]) {
		curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->pass);
	}
	if (s->sigv4[0])
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
	else if (s->user[0])
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	if (r->payload_sha) {
		snprintf(h, sizeof(h), "x-amz-content-sha256: %s",
			 r->payload_sha);
		l = curl_slist_append(*hdrs, h);
		if (!l)
			return fm_error_set(FM_ENOMEM, "out of memory");
		*hdrs = l;
	}
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_SEND_BUFFER);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->src->size);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, t);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, t);
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (*hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	if (r->x && r->x->progress) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
	}
	return FM_OK;
}

static void backoff_sleep(const struct store *s, int attempt)
{
	long ms = s->lim.backoff_ms;
	struct timespec ts;

	for (int i = 1; i < attempt && ms < 30000; i++)
		ms *= 2;
	/* up to +25% so that many clients do not retry in step */
	if (ms > 3)
		ms += (long)((unsigned)getpid() * 2654435761u +
			     (unsigned)attempt * 40503u) % (ms / 4 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int transport_error(const struct store__req *r, CURLcode rc,
			   const char *errbuf, int attempts)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return fm_error_set(FM_ETIMEOUT, "%s %s: timed out (%d "
				    "attempt%s): %s", r->method, r->url,
				    attempts, attempts == 1 ? "" : "s", why);
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return fm_error_set(FM_EUNAVAIL, "%s %s: transfer cut off: %s",
				    r->method, r->url, why);
	default:
		return fm_error_set(FM_EUNAVAIL, "%s %s: %s", r->method,
				    r->url, why);
	}
}

/* Before a retry: the body from its start, the sink emptied. */
static int rewind_req(struct store__req *r)
{
	int err;

	if (r->src) {
		err = r->src->rewind(r->src);
		if (err)
			return err;
	}
	if (r->sink && r->sink->got)
		return store__sink_restart(r->sink);
	return FM_OK;
}

/* One exchange on s->curl; *rc is curl's result. */
static int perform(struct store *s, struct store__req *r, struct xfer *t,
		   char *errbuf, CURLcode *rc)
{
	struct curl_slist *hdrs = NULL;
	int err;

	*rc = CURLE_OK;
	err = setup(s, r, t, &hdrs, errbuf);
	if (err)
		goto done;
	*rc = curl_easy_perform(s->curl);
done:
	/* the handle outlives this frame's buffers */
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	return err;
}

/* The status and Content-Length of the answer into r. */
static void read_answer(struct store *s, struct store__req *r)
{
	curl_off_t cl = -1;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (cl >= 0)
		r->length = (uint64_t)cl;
}

/* A 2xx GET's body is complete (an empty one never reached the sink). */
static int finish_body(struct store__req *r, const struct xfer *t)
{
	int err;

	if (r->status < 200 || r->status >= 300 || !r->sink ||
	    strcmp(r->method, "GET") != 0)
		return FM_OK;
	if (!t->started) {
		err = store__sink_announce(r->sink, 0);
		if (err)
			return err;
	}
	return store__sink_finish(r->sink);
}

int store__http_do(struct store *s, struct store__req *r)
{
	char errbuf[CURL_ERROR_SIZE];
	int err;

	err = curl_handle(s);
	if (err)
		return err;
	for (int attempt = 0;; attempt++) {
		struct xfer t = { .s = s, .r = r };
		CURLcode rc;
		int retry;

		errbuf[0] = '\0';
		r->status = 0;
		r->err_len = 0;
		r->err_body[0] = '\0';
		r->length = STORE_UNKNOWN;
		if (attempt > 0) {
			backoff_sleep(s, attempt);
			err = rewind_req(r);
			if (err)
				return err;
		}
		err = perform(s, r, &t, errbuf, &rc);
		if (err)
			return err;
		if (t.err)
			return t.err; /* our source or sink stopped it */
		if (rc == CURLE_OK)
			read_answer(s, r);
		retry = rc == CURLE_OPERATION_TIMEDOUT ||
			(rc == CURLE_OK && r->status >= 500);
		if (retry && attempt < s->lim.retries) {
			log_warn("storage: %s %s: %s; retry %d of %d",
				 r->method, r->url,
				 rc == CURLE_OK ? "server error" : "timed out",
				 attempt + 1, s->lim.retries);
			continue;
		}
		if (rc != CURLE_OK)
			return transport_error(r, rc, errbuf, attempt + 1);
		return finish_body(r, &t);
	}
}

int store__http_status_error(const struct store *s, const char *what,
			     long status)
{
	switch (status) {
	case 401:
		return fm_error_set(FM_EAUTH, "%s: %s refused the credentials "
				    "(401)", what, s->url);
	case 403:
		return fm_error_set(FM_EFORBIDDEN, "%s: %s refused access "
				    "(403)", what, s->url);
	case 404:
		return fm_error_set(FM_ENOTFOUND, "%s: not found in %s", what,
				    s->url);
	case 405:
	case 501:
		return fm_error_set(FM_EINVAL, "%s: %s does not allow this "
				    "method (%ld): is it a WebDAV store?", what,
				    s->url, status);
	case 409:
		return fm_error_set(FM_ECONFLICT, "%s: %s answered 409 "
				    "Conflict", what, s->url);
	case 413:
		return fm_error_set(FM_ETOOLARGE, "%s: %s refused the size "
				    "(413)", what, s->url);
	default:
		if (status >= 500)
			return fm_error_set(FM_EUNAVAIL, "%s: %s answered %ld",
					    what, s->url, status);
		return fm_error_set(FM_EINVAL, "%s: %s answered %ld", what,
				    s->url, status);
	}
}

/* ---- http(s):// backend ---- */

static int key_url(const struct store *s, const char *key, char *out,
		   size_t n)
{
	if (snprintf(out, n, "%s%s", s->base, key) >= (int)n)
		return fm_error_set(FM_EINVAL, "%s: URL is too long", key);
	return FM_OK;
}

static int http_simple(struct store *s, const char *method, const char *key,
		       struct store__src *src, struct store__sink *k,
		       const struct store_xfer *x, struct store__req *r)
{
	char url[4096];
	int err = key_url(s, key, url, sizeof(url));

	if (err)
		return err;
	r->method = method;
	r->url = url;
	r->src = src;
	r->sink = k;
	r->x = x;
	return store__http_do(s, r);
}

static int http_put(struct store *s, const char *key, struct store__src *src,
		    const struct store_xfer *x)
{
	struct store__req r = { 0 };
	int err = http_simple(s, "PUT", key, src, NULL, x, &r);

	if (err)
		return err;
	if (r.status < 200 || r.status >= 300)
		return store__http_status_error(s, key, r.status);
	return FM_OK;
}

static int http_get(struct store *s, const char *key, struct store__sink *k,
		    const struct store_xfer *x)
{
	struct store__req r = { 0 };
	int err = http_simple(s, "GET", key, NULL, k, x, &r);

	if (err)
		return err;
	if (r.status < 200 || r.status >= 300)
		return store__http_status_error(s, key, r.status);
	return FM_OK;
}

static int http_head(struct store *s, const char *key, uint64_t *size)
{
	struct store__req r = { 0 };
	int err = http_simple(s, "HEAD", key, NULL, NULL, NULL, &r);

	if (err)
		return err;
	if (r.status < 200 || r.status >= 300)
		return store__http_status_error(s, key, r.status);
	if (r.length == STORE_UNKNOWN)
		return fm_error_set(FM_EUNAVAIL, "%s: %s gave no size for it",
				    key, s->url);
	*size = r.length;
	return FM_OK;
}

static int http_del(struct store *s, const char *key)
{
	struct store__req r = { 0 };
	int err = http_simple(s, "DELETE", key, NULL, NULL, NULL, &r);

	if (err)
		return err;
	if (r.status != 404 && (r.status < 200 || r.status >= 300))
		return store__http_status_error(s, key, r.status);
	return FM_OK;
}

static int http_ensure(struct store *s)
{
	(void)s;
	return FM_OK;
}

void store__http_free(struct store *s)
{
	if (s->curl)
		curl_easy_cleanup(s->curl);
	s->curl = NULL;
}

static const struct store__ops http_ops = {
	.put = http_put,
	.get = http_get,
	.head = http_head,
	.del = http_del,
	.ensure = http_ensure,
	.list = NULL,
	.free = store__http_free,
};

/* Splits url into a base without credentials (s->base, ending in '/'),
 * the credentials, and a display URL. */
int store__http_split(struct store *s, const char *url, const char *what)
{
	CURLU *u = curl_url();
	char *user = NULL, *pass = NULL, *query = NULL, *frag = NULL;
	char *clean = NULL;
	size_t n;
	int err = FM_OK;

	if (!u)
		return fm_error_set(FM_ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		err = fm_error_set(FM_EINVAL, "%s: not a valid URL", what);
		goto done;
	}
	curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if (query || frag) {
		err = fm_error_set(FM_EINVAL, "%s: a query or fragment is not "
				   "allowed in a storage URL", what);
		goto done;
	}
	if ((user && strlen(user) >= sizeof(s->user)) ||
	    (pass && strlen(pass) >= sizeof(s->pass))) {
		err = fm_error_set(FM_EINVAL, "%s: user name or password is "
				   "too long", what);
		goto done;
	}
	snprintf(s->user, sizeof(s->user), "%s", user ? user : "");
	snprintf(s->pass, sizeof(s->pass), "%s", pass ? pass : "");
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &clean, 0) != CURLUE_OK) {
		err = fm_error_set(FM_EINVAL, "%s: not a valid URL", what);
		goto done;
	}
	n = strlen(clean);
	if (n + 2 > sizeof(s->url) || n + 2 + STORE_KEY_MAX > sizeof(s->base)) {
		err = fm_error_set(FM_EINVAL, "%s: URL is too long", what);
		goto done;
	}
	snprintf(s->base, sizeof(s->base), "%s%s", clean,
		 clean[n - 1] == '/' ? "" : "/");
	snprintf(s->url, sizeof(s->url), "%s", s->base);
done:
	if (pass)
		explicit_bzero(pass, strlen(pass));
	curl_free(user);
	curl_free(pass);
	curl_free(query);
	curl_free(frag);
	curl_free(clean);
	curl_url_cleanup(u);
	return err;
}

int store__http_open(struct store *s, const char *url)
{
	int err = store__http_split(s, url, "storage URL");

	if (err)
		return err;
	s->ops = &http_ops;
	s->scheme = STORE_HTTP;
	return FM_OK;
}
