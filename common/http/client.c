#include "http/client.h"

#include "core/err.h"
#include "core/fjson.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define HEADERS_MAX 16
#define BASE_URL_MAX 1024
#define PATH_MAX_LEN 8192

struct httpc_headers {
	struct curl_slist *list;
	int n;
};

struct httpc {
	struct httpc_opts o;
	char base[BASE_URL_MAX];
	CURL *curl;
	uint64_t rng;
	int too_large;   /* the last answer went past max_response */
	long retry_after; /* seconds, from the last answer; -1 if none */
	struct httpc_resp *resp;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int httpc_new(struct httpc **out, const struct httpc_opts *opts)
{
	struct httpc *c;
	size_t n;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return fm_error_set(FM_EINTERNAL, "libcurl: %s",
				    curl_easy_strerror(curl_init_rc));
	if (!opts->base_url || (strncmp(opts->base_url, "http://", 7) != 0 &&
				strncmp(opts->base_url, "https://", 8) != 0))
		return fm_error_set(FM_EINVAL, "base URL '%s': expected "
				    "http:// or https://",
				    opts->base_url ? opts->base_url : "");
	n = strlen(opts->base_url);
	while (n && opts->base_url[n - 1] == '/')
		n--;
	if (n >= BASE_URL_MAX || strpbrk(opts->base_url, " \t\r\n"))
		return fm_error_set(FM_EINVAL, "base URL: too long or contains "
				    "spaces");
	if (opts->retries < 0 || opts->max_response == 0 ||
	    opts->timeout_ms <= 0)
		return fm_error_set(FM_EINVAL, "client options: retries, "
				    "max_response and timeout_ms are out of "
				    "range");
	c = calloc(1, sizeof(*c));
	if (!c)
		return fm_error_set(FM_ENOMEM, "client: out of memory");
	c->o = *opts;
	memcpy(c->base, opts->base_url, n);
	c->base[n] = '\0';
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		return fm_error_set(FM_ENOMEM, "client: curl_easy_init failed");
	}
	if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->rng))
		c->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
	c->rng |= 1;
	*out = c;
	return FM_OK;
}

void httpc_free(struct httpc *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

void httpc_resp_init(struct httpc_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
}

void httpc_resp_cleanup(struct httpc_resp *r)
{
	buf_cleanup(&r->body);
	json_decref(r->json);
	r->json = NULL;
}

int httpc_headers_add(struct httpc_headers *h, const char *name,
		      const char *value)
{
	char line[2048];
	struct curl_slist *l;

	if (h->n == HEADERS_MAX)
		return fm_error_set(FM_EINVAL, "header %s: more than %d "
				    "headers", name, HEADERS_MAX);
	if (!*name || strpbrk(name, ":\r\n \t") || strpbrk(value, "\r\n"))
		return fm_error_set(FM_EINVAL, "header %s: malformed name or "
				    "value", name);
	if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >=
	    sizeof(line))
		return fm_error_set(FM_EINVAL, "header %s: longer than %zu "
				    "bytes", name, sizeof(line) - 1);
	l = curl_slist_append(h->list, line);
	if (!l)
		return fm_error_set(FM_ENOMEM, "header: out of memory");
	h->list = l;
	h->n++;
	return FM_OK;
}

static uint64_t next_rand(struct httpc *c)
{
	/* xorshift64: jitter needs spread, not secrecy */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct httpc *c = arg;

	if (buf_append(&c->resp->body, p, size * n)) {
		c->too_large = 1;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct httpc *c = arg;
	size_t len = size * n, k;
	char v[80];

	for (k = 0; k < len && p[k] != ':'; k++)
		;
	if (k == len)
		return len;
	snprintf(v, sizeof(v), "%.*s", (int)(len - k - 1), p + k + 1);
	v[strcspn(v, "\r\n")] = '\0';
	char *val = v + strspn(v, " \t");
	if (k == 12 && strncasecmp(p, "X-Request-Id", 12) == 0)
		snprintf(c->resp->request_id, sizeof(c->resp->request_id),
			 "%s", val);
	else if (k == 11 && strncasecmp(p, "Retry-After", 11) == 0 &&
		 strspn(val, "0123456789") == strlen(val) && *val &&
		 strlen(val) < 7)
		c->retry_after = atol(val);
	return len;
}

int httpc_err_from_name(const char *name)
{
	for (int code = FM_EINTERNAL; code >= FM_ETIMEOUT; code--)
		if (name && strcmp(fm_err_name(code), name) == 0)
			return code;
	return FM_EINTERNAL;
}

int httpc_err_from_status(long status)
{
	switch (status) {
	case 401:
		return FM_EAUTH;
	case 403:
		return FM_EFORBIDDEN;
	case 404:
		return FM_ENOTFOUND;
	case 409:
		return FM_ECONFLICT;
	case 413:
		return FM_ETOOLARGE;
	case 422:
		return FM_EUNPROCESSABLE;
	case 429:
	case 502:
	case 503:
		return FM_EUNAVAIL;
	case 504:
		return FM_ETIMEOUT;
	}
	return status >= 400 && status < 500 ? FM_EINVAL : FM_EINTERNAL;
}

static int is_idempotent(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	       strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0;
}

/* Maps a transport failure; *retry says whether another attempt is
 * safe. */
static int transport_error(struct httpc *c, const struct httpc_req *req,
			   CURLcode rc, const char *errbuf, int *retry)
{
	curl_off_t sent = 0;
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	int code;

	curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &sent);
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		code = FM_ETIMEOUT;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		code = FM_EINVAL;
		break;
	case CURLE_OUT_OF_MEMORY:
		code = FM_ENOMEM;
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (c->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
			*retry = 0;
			return fm_error_set(FM_ETOOLARGE, "%s %s%s: the answer "
					    "is over the limit of %zu bytes",
					    req->method, c->base, req->path,
					    c->o.max_response);
		}
		code = FM_EINTERNAL;
		break;
	default:
		code = FM_EUNAVAIL;
	}
	/* unsent requests are safe to repeat; sent ones only if the server
	 * can recognise the repeat */
	*retry = code != FM_EINVAL && code != FM_EINTERNAL && code != FM_ENOMEM &&
		 (sent == 0 || is_idempotent(req->method) ||
		  req->idempotency_key);
	return fm_error_set(code, "%s %s%s: %s", req->method, c->base,
			    req->path, why);
}

/* The error of a non-2xx answer. */
static int answer_error(struct httpc *c, const struct httpc_req *req,
			struct httpc_resp *resp)
{
	json_t *e = resp->json ? json_object_get(resp->json, "error") : NULL;
	const char *name = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	char snippet[201];
	size_t i;

	if (name && msg) {
		int code = httpc_err_from_name(name);
		if (code == FM_EINTERNAL && strcmp(name, "internal") != 0)
			code = httpc_err_from_status(resp->status);
		return fm_error_set(code, "%s", msg);
	}
	/* not one of ours (a proxy, a crash): show the start of the body */
	for (i = 0; i < resp->body.len && i < sizeof(snippet) - 1; i++) {
		char ch = resp->body.data[i];
		snippet[i] = (ch >= 0x20 && ch < 0x7f) ? ch : ' ';
	}
	snippet[i] = '\0';
	return fm_error_set(httpc_err_from_status(resp->status),
			    "%s %s%s: HTTP %ld%s%s", req->method, c->base,
			    req->path, resp->status, i ? ": " : "", snippet);
}

static void random_id(struct httpc *c, char out[17])
{
	uint64_t x = next_rand(c);
	for (int i = 0; i < 16; i++)
		out[i] = "0123456789abcdef"[(x >> (i * 4)) & 15];
	out[16] = '\0';
}

/* The request's headers into h, the caller's signature last. */
static int request_headers(struct httpc *c, const struct httpc_req *req,
			   const char *body, size_t body_len,
			   const char *ctype, const char *reqid,
			   struct httpc_headers *h)
{
	int err;

	err = httpc_headers_add(h, "Accept", "application/json");
	if (err)
		return err;
	if (body) {
		err = httpc_headers_add(h, "Content-Type", ctype);
		if (err)
			return err;
	}
	if (req->idempotency_key) {
		err = httpc_headers_add(h, "Idempotency-Key",
					req->idempotency_key);
		if (err)
			return err;
	}
	err = httpc_headers_add(h, "X-Request-Id", reqid);
	if (err)
		return err;
	if (c->o.sign)
		return c->o.sign(c->o.sign_arg, req->method, req->path,
				 body ? body : "", body ? body_len : 0, h);
	return FM_OK;
}

/* One exchange. Returns FM_OK when an answer arrived (any status). */
static int attempt(struct httpc *c, const struct httpc_req *req,
		   const char *body, size_t body_len, const char *ctype,
		   const char *reqid, struct httpc_resp *resp, int *retry)
{
	struct httpc_headers h = { NULL, 0 };
	char url[BASE_URL_MAX + PATH_MAX_LEN];
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *k = c->curl;
	CURLcode rc;
	int err;

	*retry = 0;
	snprintf(url, sizeof(url), "%s%s", c->base, req->path);
	buf_cleanup(&resp->body);
	buf_init(&resp->body, c->o.max_response);
	json_decref(resp->json);
	resp->json = NULL;
	resp->status = 0;
	resp->request_id[0] = '\0';
	c->too_large = 0;
	c->retry_after = -1;
	c->resp = resp;

	err = request_headers(c, req, body, body_len, ctype, reqid, &h);
	if (err)
		goto done;

	curl_easy_reset(k);
	curl_easy_setopt(k, CURLOPT_URL, url);
	curl_easy_setopt(k, CURLOPT_PATH_AS_IS, 1L); /* send what was signed */
	curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(k, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
	curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
	curl_easy_setopt(k, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)c->o.max_response);
	curl_easy_setopt(k, CURLOPT_USERAGENT, c->o.user_agent);
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, h.list);
	curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(k, CURLOPT_HEADERDATA, c);
	if (body) {
		curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body_len);
		curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
	}
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(k, CURLOPT_NOBODY, 1L); /* no body will come */
	else if (strcmp(req->method, "GET") != 0 || body)
		curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, req->method);

	rc = curl_easy_perform(k);
	if (rc != CURLE_OK) {
		err = transport_error(c, req, rc, errbuf, retry);
		goto done;
	}
	curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &resp->status);
	char *ct = NULL;
	curl_easy_getinfo(k, CURLINFO_CONTENT_TYPE, &ct);
	if (ct && resp->body.len && (strncasecmp(ct, "application/json", 16) == 0 ||
				     strstr(ct, "+json"))) {
		err = fj_parse(&resp->json, resp->body.data, resp->body.len,
			       "answer");
		if (err) {
			/* a 503 page is still worth another try */
			*retry = resp->status == 503;
			fm_error_prefix("%s %s%s", req->method, c->base,
					req->path);
			goto done;
		}
	}
	*retry = resp->status == 503;
done:
	/* the handle outlives this frame: leave it no pointer into it */
	curl_easy_setopt(k, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h.list);
	c->resp = NULL;
	return err;
}

static void backoff(struct httpc *c, int n)
{
	long ms = c->o.backoff_ms;
	struct timespec ts;

	for (int i = 1; i < n && ms < c->o.backoff_max_ms; i++)
		ms *= 2;
	if (ms > c->o.backoff_max_ms)
		ms = c->o.backoff_max_ms;
	/* full pause halved plus jitter, so clients spread out */
	if (ms > 1)
		ms = ms / 2 + (long)(next_rand(c) % (uint64_t)(ms / 2 + 1));
	if (c->retry_after > 0 && c->retry_after * 1000 > ms)
		ms = c->retry_after * 1000 < c->o.backoff_max_ms
			     ? c->retry_after * 1000
			     : c->o.backoff_max_ms;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

int httpc_send(struct httpc *c, const struct httpc_req *req,
	       struct httpc_resp *resp)
{
	const char *ctype = req->content_type ? req->content_type
					      : "application/octet-stream";
	const char *body = req->body;
	size_t body_len = req->body_len;
	char *dumped = NULL;
	char reqid[65];
	int err, retry = 0;

	if (!req->method || !req->path || req->path[0] != '/' ||
	    strlen(req->path) >= PATH_MAX_LEN ||
	    strpbrk(req->path, " \t\r\n"))
		return fm_error_set(FM_EINVAL, "request path '%.64s': expected "
				    "a path starting with '/', without "
				    "spaces", req->path ? req->path : "");
	if (req->json) {
		dumped = json_dumps(req->json, JSON_COMPACT);
		if (!dumped)
			return fm_error_set(FM_EINVAL, "%s %s: the body cannot "
					    "be encoded as JSON", req->method,
					    req->path);
		body = dumped;
		body_len = strlen(dumped);
		ctype = "application/json";
	}
	if (!body && !is_idempotent(req->method)) {
		body = ""; /* an empty body, with Content-Length: 0 */
		body_len = 0;
	}
	if (req->request_id)
		snprintf(reqid, sizeof(reqid), "%s", req->request_id);
	else
		random_id(c, reqid);
	for (resp->attempts = 1;; resp->attempts++) {
		err = attempt(c, req, body, body_len, ctype, reqid, resp,
			      &retry);
		if (!retry || resp->attempts > c->o.retries)
			break;
		backoff(c, resp->attempts);
	}
	free(dumped);
	if (err)
		return err;
	if (resp->status < 200 || resp->status > 299)
		return answer_error(c, req, resp);
	return FM_OK;
}

static int send_json(struct httpc *c, const char *method, const char *path,
		     const json_t *body, const char *key, json_t **out)
{
	struct httpc_req req = { 0 };
	struct httpc_resp resp;
	int err;

	req.method = method;
	req.path = path;
	req.json = body;
	req.idempotency_key = key;
	httpc_resp_init(&resp);
	err = httpc_send(c, &req, &resp);
	if (err)
		goto done;
	if (out) {
		*out = resp.json;
		resp.json = NULL;
	}
done:
	httpc_resp_cleanup(&resp);
	return err;
}

int httpc_get(struct httpc *c, const char *path, json_t **out)
{
	return send_json(c, "GET", path, NULL, NULL, out);
}

int httpc_post(struct httpc *c, const char *path, const json_t *body,
	       const char *idempotency_key, json_t **out)
{
	return send_json(c, "POST", path, body, idempotency_key, out);
}

int httpc_delete(struct httpc *c, const char *path, json_t **out)
{
	return send_json(c, "DELETE", path, NULL, NULL, out);
}
