#include "http/server.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- routes ---- */

/* Latency buckets in microseconds; the last bucket is +Inf. */
static const uint64_t bucket_us[] = { 500,    1000,    2500,   5000,
				      10000,  25000,   50000,  100000,
				      250000, 500000,  1000000, 2500000,
				      5000000, 10000000 };
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]) + 1)
#define STATUS_MIN 100
#define STATUS_SLOTS 500

struct route_stats {
	_Atomic uint64_t status[STATUS_SLOTS]; /* by status - 100 */
	_Atomic uint64_t bucket[N_BUCKETS];    /* not cumulative */
	_Atomic uint64_t sum_us;
};

struct croute {
	struct http_route def;
	struct http_pattern pat;
	struct route_stats stats;
};

struct http_server {
	struct http_server_opts o;
	struct croute *routes; /* the service's, then the built-in ones */
	size_t n_routes;
	struct route_stats unmatched;
	void *arg;
	struct http_metrics *metrics;
	struct MHD_Daemon *d;
	int listen_fd;
	uint16_t port;
	int wake_fd;
	_Atomic int in_flight;
	_Atomic int draining;
};

#define RESP_HEADERS_MAX 8
/* Chunked body bytes read and dropped after the limit, to answer 413. */
#define DISCARD_MAX (1u << 20)

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct croute *route; /* NULL when no route matched */
	char *target;         /* as sent */
	char method[16];
	const char *path;     /* MHD's decoded url */
	char *path_buf;       /* path split into segments for params */
	const char *pnames[HTTP_MAX_PARAMS];
	size_t pname_len[HTTP_MAX_PARAMS];
	const char *pvals[HTTP_MAX_PARAMS];
	int n_params;
	char id[HTTP_REQ_ID_MAX + 1];
	char auth[HTTP_AUTH_MAX];
	int authed;
	int started;
	int queued;
	size_t discarded; /* body bytes dropped after an early answer */
	struct buf body;
	struct timespec t0;
	/* the response being prepared */
	int status;
	char *resp;
	size_t resp_len;
	char ctype[96];
	struct {
		char *name, *value;
	} hdr[RESP_HEADERS_MAX];
	int n_hdr;
};

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH",
				       "DELETE", NULL };

/* Copies at most 64 bytes of untrusted s for a message: control and
 * non-ASCII bytes become '?', so messages stay one valid line. */
static void quote_value(char *out, size_t n, const char *s)
{
	size_t i = 0;

	for (; *s && i + 4 < n && i < 64; s++)
		out[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (*s && i + 4 <= n) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

/* ---- responses ---- */

static int set_body(struct http_req *r, int status, const char *ctype,
		    char *data, size_t len)
{
	if (r->status) {
		free(data);
		log_error("%s %s: a second response was refused", r->method,
			  r->target);
		return fm_error_set(FM_EINTERNAL, "response already set");
	}
	r->status = status;
	r->resp = data;
	r->resp_len = len;
	snprintf(r->ctype, sizeof(r->ctype), "%s", ctype);
	return FM_OK;
}

int http_respond_json(struct http_req *req, int status, json_t *body)
{
	char *s;

	if (!body) {
		fm_error_set(FM_ENOMEM, "response: out of memory");
		return http_respond_error(req, FM_ENOMEM);
	}
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s) {
		fm_error_set(FM_ENOMEM, "response: out of memory");
		return http_respond_error(req, FM_ENOMEM);
	}
	return set_body(req, status, "application/json", s, strlen(s));
}

int http_respond_raw(struct http_req *req, int status, const char *ctype,
		     const void *data, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy) {
		fm_error_set(FM_ENOMEM, "response: out of memory");
		return http_respond_error(req, FM_ENOMEM);
	}
	if (len)
		memcpy(copy, data, len);
	copy[len] = '\0';
	return set_body(req, status, ctype, copy, len);
}

int http_respond_json_text(struct http_req *req, int status, char *text,
			   size_t len)
{
	return set_body(req, status, "application/json", text, len);
}

/* The error body; message is untrusted text made ASCII if jansson refuses
 * it as UTF-8. */
static json_t *error_json(int code, const char *message, const char *id)
{
	char safe[FM_ERR_MSG_MAX];
	json_t *j;

	j = json_pack("{s:{s:s, s:s, s:s}}", "error", "code",
		      fm_err_name(code), "message", message, "request_id", id);
	if (j)
		return j;
	snprintf(safe, sizeof(safe), "%s", message);
	for (char *p = safe; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return json_pack("{s:{s:s, s:s, s:s}}", "error", "code",
			 fm_err_name(code), "message", safe, "request_id", id);
}

int http_respond_error(struct http_req *req, int code)
{
	const char *msg = fm_error_msg();
	int status = fm_err_http_status(code);
	json_t *j;
	char *s;

	if (code == FM_OK)
		code = FM_EINTERNAL;
	if (!msg[0])
		msg = fm_err_name(code);
	if (status == 500) {
		/* details of a bug or a local failure stay in the log */
		log_error("%s %s: %s", req->method, req->target, msg);
		msg = "internal error";
	}
	j = error_json(code, msg, req->id);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		/* nothing left to allocate with: a fixed answer */
		static const char oom[] = "{\"error\":{\"code\":\"out_of_memory\","
					  "\"message\":\"out of memory\"}}";
		s = strdup(oom);
		if (!s)
			return FM_ENOMEM;
		status = fm_err_http_status(FM_ENOMEM);
	}
	return set_body(req, status, "application/json", s, strlen(s));
}

int http_resp_header(struct http_req *req, const char *name,
		     const char *value)
{
	char *n, *v;

	if (req->n_hdr == RESP_HEADERS_MAX)
		return fm_error_set(FM_EINTERNAL, "response header %s: more "
				    "than %d headers", name, RESP_HEADERS_MAX);
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return fm_error_set(FM_EINTERNAL, "response header %s: "
				    "contains a line break", name);
	n = strdup(name);
	v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return fm_error_set(FM_ENOMEM, "response header: out of "
				    "memory");
	}
	req->hdr[req->n_hdr].name = n;
	req->hdr[req->n_hdr].value = v;
	req->n_hdr++;
	return FM_OK;
}

/* An error answered by the server itself (routing, limits, auth). */
static void fail(struct http_req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct http_req *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fm_error_vset(code, fmt, ap);
	va_end(ap);
	http_respond_error(r, code);
}

static enum MHD_Result queue(struct http_req *r)
{
	struct http_server *s = r->srv;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->resp)
		resp = MHD_create_response_from_buffer(r->resp_len, r->resp,
						       MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, (void *)"",
						       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	r->resp = NULL; /* MHD frees it with the response */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	/* browsers must not reinterpret an error body as HTML */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (int i = 0; i < r->n_hdr; i++)
		MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
	if (atomic_load(&s->draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	r->queued = ret == MHD_YES;
	return ret;
}

/* ---- request handling ---- */

/* 1 if v is 1 to max characters of [A-Za-z0-9._:-]: safe in headers,
 * logs and JSON as it is. */
static int token_ok(const char *v, size_t max)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > max)
		return 0;
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		      (*v >= '0' && *v <= '9') || strchr("._:-", *v)))
			return 0;
	return 1;
}

static void request_id(struct http_req *r)
{
	static _Atomic uint64_t seq;
	const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    "X-Request-Id");
	uint8_t rnd[8];

	if (token_ok(v, HTTP_REQ_ID_MAX)) {
		snprintf(r->id, sizeof(r->id), "%s", v);
		return;
	}
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t x = atomic_fetch_add(&seq, 1) ^
			     ((uint64_t)r->t0.tv_nsec << 20);
		memcpy(rnd, &x, sizeof(rnd));
	}
	hex_encode(r->id, rnd, sizeof(rnd));
}

/* Finds the route; on failure answers 404 or 405 and returns nonzero. */
static int route(struct http_req *r)
{
	struct http_server *s = r->srv;
	char *segs[HTTP_MAX_SEGMENTS];
	const char *method = r->method;
	struct croute *best = NULL;
	char allow[64] = "";
	int n, rc, path_hit = 0;

	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	r->path_buf = strdup(r->path);
	if (!r->path_buf) {
		fail(r, FM_ENOMEM, "out of memory");
		return -1;
	}
	rc = http_path_split(r->path_buf, segs, &n);
	for (size_t i = 0; rc == 0 && i < s->n_routes; i++) {
		struct croute *c = &s->routes[i];
		if (!http_pattern_match(&c->pat, segs, n))
			continue;
		path_hit = 1;
		if (strcmp(c->def.method, method) != 0) {
			if (!strstr(allow, c->def.method)) {
				size_t l = strlen(allow);
				snprintf(allow + l, sizeof(allow) - l, "%s%s",
					 l ? ", " : "", c->def.method);
				if (strcmp(c->def.method, "GET") == 0) {
					l = strlen(allow);
					snprintf(allow + l, sizeof(allow) - l,
						 ", HEAD");
				}
			}
			continue;
		}
		if (!best || c->pat.spec > best->pat.spec)
			best = c;
	}
	if (!best) {
		char q[72];
		quote_value(q, sizeof(q), r->path);
		if (!path_hit) {
			fail(r, FM_ENOTFOUND, "no route for %s", q);
		} else {
			fail(r, FM_EINVAL, "method %s is not allowed on %s "
			     "(allowed: %s)", r->method, q, allow);
			r->status = 405;
			http_resp_header(r, MHD_HTTP_HEADER_ALLOW, allow);
		}
		return -1;
	}
	r->route = best;
	for (int i = 0; i < n; i++) {
		const struct http_seg *g = &best->pat.segs[i];
		char q[72];
		if (g->type == HTTP_SEG_LIT)
			continue;
		if (!http_param_ok(g->type, segs[i])) {
			quote_value(q, sizeof(q), segs[i]);
			fail(r, FM_EINVAL, "path parameter %.*s: expected %s, "
			     "got '%s'", (int)g->len, g->text,
			     http_param_expect(g->type), q);
			return -1;
		}
		r->pnames[r->n_params] = g->text;
		r->pname_len[r->n_params] = g->len;
		r->pvals[r->n_params++] = segs[i];
	}
	return 0;
}

/* First call for a request: routing and the body limit, before any body
 * byte is read. */
static void begin(struct http_req *r, const char *url, const char *method)
{
	const char *cl;
	size_t max;

	snprintf(r->method, sizeof(r->method), "%s", method);
	r->path = url;
	request_id(r);
	log_ctx_set(r->id);
	if (route(r))
		return;
	max = r->route->def.max_body ? r->route->def.max_body
				     : r->srv->o.max_body;
	buf_init(&r->body, max);
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(cl, &end, 10);
		if (errno || *end || v > max)
			fail(r, FM_ETOOLARGE, "request body of %s bytes is over "
			     "the limit of %zu bytes", cl, max);
	}
}

static int has_body(const struct http_req *r)
{
	const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0") != 0) ||
	       http_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static void dispatch(struct http_req *r)
{
	struct http_server *s = r->srv;
	int err = FM_OK;

	fm_error_clear();
	if (r->route->def.flags & HTTP_SIGNED) {
		err = s->o.verify(s->o.verify_arg, r, r->auth,
				  sizeof(r->auth));
		r->auth[sizeof(r->auth) - 1] = '\0';
		if (!err && !r->auth[0])
			err = fm_error_set(FM_EINTERNAL, "the verifier "
					   "accepted the request without an "
					   "identity");
		if (err)
			goto done;
		r->authed = 1;
	}
	err = r->route->def.handler(r, s->arg);
done:
	if (r->status)
		return;
	if (!err)
		err = fm_error_set(FM_EINTERNAL, "%s %s: the handler sent no "
				   "response", r->route->def.method,
				   r->route->def.pattern);
	http_respond_error(r, err);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct http_req *r = *req_cls;
	enum MHD_Result ret = MHD_YES;

	(void)cls;
	(void)conn;
	(void)version;
	if (!r)
		return MHD_NO; /* the URI callback ran out of memory */
	if (r->queued) {
		*upload_size = 0; /* answered early: discard the rest */
		return MHD_YES;
	}
	if (!r->started) {
		r->started = 1;
		begin(r, url, method);
		/* answering now refuses the body unread but closes the
		 * connection; without a body, answer at the last call and
		 * keep it open */
		if (r->status && has_body(r))
			ret = queue(r);
		goto out;
	}
	log_ctx_set(r->id);
	if (*upload_size) {
		/* libmicrohttpd cannot answer in the middle of a chunked
		 * body: the rest is discarded, up to a bound, then the
		 * connection is dropped */
		if (r->status) {
			r->discarded += *upload_size;
			if (r->discarded > DISCARD_MAX)
				ret = MHD_NO;
		} else if (buf_append(&r->body, upload, *upload_size)) {
			fail(r, FM_ETOOLARGE, "request body is over the limit "
			     "of %zu bytes", r->body.max);
		}
		*upload_size = 0;
		goto out;
	}
	if (!r->status)
		dispatch(r);
	ret = queue(r);
out:
	log_ctx_set(NULL);
	return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *s = cls;
	struct http_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->target = strdup(uri);
	if (!r->target) {
		free(r);
		return NULL;
	}
	r->srv = s;
	r->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	atomic_fetch_add(&s->in_flight, 1);
	return r;
}

static void stats_add(struct route_stats *st, int status, uint64_t us)
{
	size_t b = 0;

	if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_SLOTS)
		atomic_fetch_add_explicit(&st->status[status - STATUS_MIN], 1,
					  memory_order_relaxed);
	while (b < N_BUCKETS - 1 && us > bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&st->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->sum_us, us, memory_order_relaxed);
}

static void req_free(struct http_req *r)
{
	buf_cleanup(&r->body);
	for (int i = 0; i < r->n_hdr; i++) {
		free(r->hdr[i].name);
		free(r->hdr[i].value);
	}
	free(r->resp);
	free(r->path_buf);
	free(r->target);
	free(r);
}

static int health_handler(struct http_req *req, void *arg);
static int metrics_handler(struct http_req *req, void *arg);

static void access_log(struct http_req *r, double ms,
		       enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	char addr[INET6_ADDRSTRLEN] = "-";

	ci = MHD_get_connection_info(r->conn,
				     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)(const void *)sa)
					   ->sin_addr,
				  addr, sizeof(addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)(const void *)sa)
					   ->sin6_addr,
				  addr, sizeof(addr));
	}
	/* probes and scrapes come every few seconds: keep them out of the
	 * info log unless they fail */
	enum log_level level = LOG_INFO;
	if (r->route && (r->route->def.handler == health_handler ||
			 r->route->def.handler == metrics_handler) &&
	    r->status == 200)
		level = LOG_DEBUG;
	log_at(level, "%s %s %d %zuB %.1fms %s%s%s%s",
		 r->method[0] ? r->method : "-", r->target,
		 r->queued ? r->status : 0, r->queued ? r->resp_len : 0, ms, addr, r->authed ? " auth=" : "",
		 r->authed ? r->auth : "",
		 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
		 : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			 ? " (timed out)"
			 : " (aborted)");
}

static void on_done(void *cls, struct MHD_Connection *conn, void **req_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_req *r = *req_cls;
	struct timespec t1;
	uint64_t us;

	(void)conn;
	if (!r)
		return;
	*req_cls = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (uint64_t)(t1.tv_sec - r->t0.tv_sec) * 1000000u +
	     (uint64_t)((t1.tv_nsec - r->t0.tv_nsec) / 1000);
	if (r->queued)
		stats_add(r->route ? &r->route->stats : &s->unmatched,
			  r->status, us);
	if (s->o.access_log) {
		log_ctx_set(r->id[0] ? r->id : NULL);
		access_log(r, (double)us / 1000.0, toe);
		log_ctx_set(NULL);
	}
	req_free(r);
	atomic_fetch_sub(&s->in_flight, 1);
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("libmicrohttpd: %s", msg);
}

/* ---- request accessors ---- */

const char *http_req_method(const struct http_req *req)
{
	return req->method;
}

const char *http_req_path(const struct http_req *req)
{
	return req->path;
}

const char *http_req_target(const struct http_req *req)
{
	return req->target;
}

const char *http_req_id(const struct http_req *req)
{
	return req->id;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_body(const struct http_req *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.data ? req->body.data : "";
}

const char *http_req_auth(const struct http_req *req)
{
	return req->authed ? req->auth : NULL;
}

const char *http_req_param(const struct http_req *req, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < req->n_params; i++)
		if (req->pname_len[i] == n &&
		    memcmp(req->pnames[i], name, n) == 0)
			return req->pvals[i];
	return NULL;
}

int http_req_param_int(const struct http_req *req, const char *name,
		       long long min, long long max, long long *out)
{
	const char *v = http_req_param(req, name);
	char q[72];
	long long x;

	if (!v)
		return fm_error_set(FM_EINTERNAL, "path parameter %s: not in "
				    "the route", name);
	if (http_parse_int(v, &x) || x < min || x > max) {
		quote_value(q, sizeof(q), v);
		return fm_error_set(FM_EINVAL, "path parameter %s: expected "
				    "an integer in [%lld, %lld], got '%s'",
				    name, min, max, q);
	}
	*out = x;
	return FM_OK;
}

/* The decoded value of a query parameter: 1 and *v set (to "" for a bare
 * "?key"), or 0 when absent. */
static int query_get(const struct http_req *req, const char *key,
		     const char **v)
{
	const char *val = NULL;
	size_t len = 0;

	if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND,
					  key, strlen(key), &val,
					  &len) != MHD_YES)
		return 0;
	*v = val ? val : "";
	return 1;
}

int http_req_query_str(const struct http_req *req, const char *key,
		       size_t max_len, const char *def, const char **out)
{
	const char *v;

	if (!query_get(req, key, &v)) {
		*out = def;
		return FM_OK;
	}
	if (strlen(v) > max_len)
		return fm_error_set(FM_EINVAL, "query parameter %s: longer "
				    "than %zu bytes", key, max_len);
	*out = v;
	return FM_OK;
}

int http_req_query_int(const struct http_req *req, const char *key,
		       long long min, long long max, long long def,
		       long long *out)
{
	const char *v;
	long long x;
	char q[72];

	if (!query_get(req, key, &v)) {
		*out = def;
		return FM_OK;
	}
	if (http_parse_int(v, &x) || x < min || x > max) {
		quote_value(q, sizeof(q), v);
		return fm_error_set(FM_EINVAL, "query parameter %s: expected "
				    "an integer in [%lld, %lld], got '%s'",
				    key, min, max, q);
	}
	*out = x;
	return FM_OK;
}

int http_req_query_bool(const struct http_req *req, const char *key,
			int def, int *out)
{
	const char *v;
	char q[72];

	if (!query_get(req, key, &v)) {
		*out = def;
		return FM_OK;
	}
	if (!*v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = 1;
	} else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = 0;
	} else {
		quote_value(q, sizeof(q), v);
		return fm_error_set(FM_EINVAL, "query parameter %s: expected "
				    "true or false, got '%s'", key, q);
	}
	return FM_OK;
}

int http_req_query_enum(const struct http_req *req, const char *key,
			const char *const *choices, int def, int *out)
{
	struct buf list = BUF_INIT(FM_ERR_MSG_MAX);
	const char *v;
	char q[72];
	int err;

	if (!query_get(req, key, &v)) {
		*out = def;
		return FM_OK;
	}
	for (int i = 0; choices[i]; i++) {
		if (strcmp(v, choices[i]) == 0) {
			*out = i;
			return FM_OK;
		}
	}
	for (int i = 0; choices[i]; i++)
		if (buf_appendf(&list, "%s%s", i ? ", " : "", choices[i]))
			break;
	quote_value(q, sizeof(q), v);
	err = fm_error_set(FM_EINVAL, "query parameter %s: expected one of "
			   "%s, got '%s'", key, list.data ? list.data : "?",
			   q);
	buf_cleanup(&list);
	return err;
}

int http_req_query_addr(const struct http_req *req, const char *key,
			char out[43], int *present)
{
	const char *v;
	char q[72];

	*present = 0;
	if (!query_get(req, key, &v))
		return FM_OK;
	if (!http_param_ok(HTTP_SEG_ADDR, v)) {
		quote_value(q, sizeof(q), v);
		return fm_error_set(FM_EINVAL, "query parameter %s: expected "
				    "an address (0x and 40 hex digits), got "
				    "'%s'", key, q);
	}
	out[0] = '0';
	out[1] = 'x';
	for (int i = 2; i < 42; i++)
		out[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + 32 : v[i]);
	out[42] = '\0';
	*present = 1;
	return FM_OK;
}

struct unknown_ctx {
	const char *const *allowed;
	char bad[72];
};

static enum MHD_Result check_known(void *cls, enum MHD_ValueKind kind,
				   const char *key, const char *value)
{
	struct unknown_ctx *u = cls;

	(void)kind;
	(void)value;
	for (int i = 0; u->allowed[i]; i++)
		if (strcmp(key, u->allowed[i]) == 0)
			return MHD_YES;
	quote_value(u->bad, sizeof(u->bad), key);
	return MHD_NO;
}

int http_req_query_no_unknown(const struct http_req *req,
			      const char *const *allowed)
{
	struct unknown_ctx u = { allowed, "" };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
				  check_known, &u);
	if (u.bad[0])
		return fm_error_set(FM_EINVAL, "query parameter %s is not "
				    "known here", u.bad);
	return FM_OK;
}

int http_req_idempotency_key(const struct http_req *req, const char **out)
{
	const char *v = http_req_header(req, "Idempotency-Key");
	size_t n = v ? strlen(v) : 0;

	*out = NULL;
	for (size_t i = 0; v && i < n; i++)
		if (v[i] < 0x21 || v[i] > 0x7e)
			n = 0;
	if (v && (n == 0 || n > HTTP_IDEMPOTENCY_KEY_MAX))
		return fm_error_set(FM_EINVAL, "Idempotency-Key: expected 1 to "
				    "%d printable characters without spaces",
				    HTTP_IDEMPOTENCY_KEY_MAX);
	*out = v;
	return FM_OK;
}

int http_resp_status(const struct http_req *req)
{
	return req->status;
}

const char *http_resp_body(const struct http_req *req, size_t *len)
{
	if (len)
		*len = req->status ? req->resp_len : 0;
	return req->status ? req->resp : NULL;
}

int http_req_json(const struct http_req *req, json_t **out)
{
	if (req->body.len == 0)
		return fm_error_set(FM_EINVAL, "request body: expected a JSON "
				    "document, got an empty body");
	return fj_parse(out, req->body.data, req->body.len, "request body");
}

/* ---- built-in routes ---- */

static int health_handler(struct http_req *req, void *arg)
{
	struct http_server *s = req->srv;
	int err;

	(void)arg;
	if (atomic_load(&s->draining))
		return fm_error_set(FM_EUNAVAIL, "%s is shutting down",
				    s->o.name);
	if (s->o.health) {
		err = s->o.health(s->o.health_arg);
		if (err && err != FM_EUNAVAIL) {
			char msg[FM_ERR_MSG_MAX];
			snprintf(msg, sizeof(msg), "%s", fm_error_msg());
			err = fm_error_set(FM_EUNAVAIL, "%s", msg);
		}
		if (err)
			return err;
	}
	return http_respond_json(req, 200,
				 json_pack("{s:s, s:s}", "status", "ok",
					   "service", s->o.name));
}

static int render_labels(struct buf *b, const struct croute *c)
{
	int err = buf_appends(b, "{route=\"");

	if (!err)
		err = http_metrics_append_label(b, c ? c->def.pattern
						     : "unmatched");
	if (!err)
		err = buf_appendf(b, "\",method=\"%s\"",
				  c ? c->def.method : "other");
	return err;
}

static int render_route(struct buf *b, const struct croute *c,
			const struct route_stats *st, int histogram)
{
	uint64_t cum = 0, n;
	int err = FM_OK;

	if (!histogram) {
		for (int i = 0; i < STATUS_SLOTS && !err; i++) {
			n = atomic_load(&st->status[i]);
			if (!n)
				continue;
			err = buf_appends(b, "fm_http_requests_total");
			if (!err)
				err = render_labels(b, c);
			if (!err)
				err = buf_appendf(b, ",status=\"%d\"} %llu\n",
						  i + STATUS_MIN,
						  (unsigned long long)n);
		}
		return err;
	}
	for (size_t i = 0; i < N_BUCKETS; i++)
		cum += atomic_load(&st->bucket[i]);
	if (!cum)
		return FM_OK;
	cum = 0;
	for (size_t i = 0; i < N_BUCKETS && !err; i++) {
		cum += atomic_load(&st->bucket[i]);
		err = buf_appends(b, "fm_http_request_duration_seconds_bucket");
		if (!err)
			err = render_labels(b, c);
		if (!err && i < N_BUCKETS - 1)
			err = buf_appendf(b, ",le=\"%g\"} %llu\n",
					  (double)bucket_us[i] / 1e6,
					  (unsigned long long)cum);
		else if (!err)
			err = buf_appendf(b, ",le=\"+Inf\"} %llu\n",
					  (unsigned long long)cum);
	}
	if (!err)
		err = buf_appends(b, "fm_http_request_duration_seconds_sum");
	if (!err)
		err = render_labels(b, c);
	if (!err)
		err = buf_appendf(b, "} %.6f\n",
				  (double)atomic_load(&st->sum_us) / 1e6);
	if (!err)
		err = buf_appends(b, "fm_http_request_duration_seconds_count");
	if (!err)
		err = render_labels(b, c);
	if (!err)
		err = buf_appendf(b, "} %llu\n", (unsigned long long)cum);
	return err;
}

static int metrics_handler(struct http_req *req, void *arg)
{
	struct http_server *s = req->srv;
	struct buf b = BUF_INIT(64u << 20);
	int err;

	(void)arg;
	err = buf_appends(&b, "# HELP fm_http_requests_total HTTP requests "
			  "answered, by route, method and status.\n"
			  "# TYPE fm_http_requests_total counter\n");
	for (int h = 0; h < 2 && !err; h++) {
		if (h)
			err = buf_appends(
				&b, "# HELP fm_http_request_duration_seconds "
				    "Time from the request line to the end of "
				    "the response.\n"
				    "# TYPE fm_http_request_duration_seconds "
				    "histogram\n");
		for (size_t i = 0; i < s->n_routes && !err; i++)
			err = render_route(&b, &s->routes[i],
					   &s->routes[i].stats, h);
		if (!err)
			err = render_route(&b, NULL, &s->unmatched, h);
	}
	if (!err)
		err = buf_appendf(&b, "# HELP fm_http_requests_in_flight "
				  "Requests received and not yet answered.\n"
				  "# TYPE fm_http_requests_in_flight gauge\n"
				  "fm_http_requests_in_flight %d\n",
				  atomic_load(&s->in_flight));
	if (!err)
		err = http_metrics_render(s->metrics, &b);
	if (!err)
		err = http_respond_raw(req, 200,
				       "text/plain; version=0.0.4; "
				       "charset=utf-8",
				       b.data, b.len);
	buf_cleanup(&b);
	return err;
}

static const struct http_route builtin_routes[] = {
	{ "GET", "/healthz", health_handler, 0, 0 },
	{ "GET", "/metrics", metrics_handler, 0, 0 },
};
#define N_BUILTIN (sizeof(builtin_routes) / sizeof(builtin_routes[0]))

/* ---- lifecycle ---- */

static int check_route(const struct http_server *s, size_t i)
{
	struct croute *c = &s->routes[i];
	int known = 0, err;

	for (int m = 0; methods[m]; m++)
		if (c->def.method && strcmp(c->def.method, methods[m]) == 0)
			known = 1;
	if (!known)
		return fm_error_set(FM_EINVAL, "route %s: method '%s' is not "
				    "one of GET, POST, PUT, PATCH, DELETE",
				    c->def.pattern ? c->def.pattern : "(null)",
				    c->def.method ? c->def.method : "(null)");
	err = http_pattern_parse(&c->pat, c->def.pattern);
	if (err)
		return fm_error_prefix("route %s", c->def.method);
	if (!c->def.handler)
		return fm_error_set(FM_EINVAL, "route %s %s: no handler",
				    c->def.method, c->def.pattern);
	if ((c->def.flags & HTTP_SIGNED) && !s->o.verify)
		return fm_error_set(FM_EINVAL, "route %s %s is signed but the "
				    "server has no verifier", c->def.method,
				    c->def.pattern);
	for (size_t j = 0; j < i; j++)
		if (strcmp(s->routes[j].def.method, c->def.method) == 0 &&
		    http_pattern_same(&s->routes[j].pat, &c->pat))
			return fm_error_set(FM_EINVAL, "route %s %s: same as "
					    "route %s %s", c->def.method,
					    c->def.pattern,
					    s->routes[j].def.method,
					    s->routes[j].def.pattern);
	return FM_OK;
}

int http_server_new(struct http_server **out,
		    const struct http_server_opts *opts,
		    const struct http_route *routes, size_t n_routes,
		    void *arg)
{
	struct http_server *s = NULL;
	int err = FM_OK;

	s = calloc(1, sizeof(*s));
	if (!s)
		return fm_error_set(FM_ENOMEM, "server: out of memory");
	s->o = *opts;
	s->arg = arg;
	s->listen_fd = -1;
	s->wake_fd = -1;
	if (!s->o.name)
		s->o.name = "http";
	if (!s->o.threads)
		s->o.threads = 1;
	if (!s->o.listen) {
		err = fm_error_set(FM_EINVAL, "server: no listen address");
		goto done;
	}
	s->n_routes = n_routes + N_BUILTIN;
	s->routes = calloc(s->n_routes, sizeof(*s->routes));
	if (!s->routes) {
		err = fm_error_set(FM_ENOMEM, "server: out of memory");
		goto done;
	}
	for (size_t i = 0; i < s->n_routes && !err; i++) {
		s->routes[i].def = i < n_routes ? routes[i]
						: builtin_routes[i - n_routes];
		err = check_route(s, i);
	}
	if (err)
		goto done;
	err = http_metrics_new(&s->metrics);
	if (err)
		goto done;
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0)
		err = fm_error_set(FM_EINTERNAL, "server: eventfd: %s",
				   strerror(errno));
done:
	if (err) {
		http_server_free(s);
		return err;
	}
	*out = s;
	return FM_OK;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	if (s->d)
		http_server_stop(s, 0);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	http_metrics_free(s->metrics);
	free(s->routes);
	free(s);
}

/* Binds "host:port" ("[v6]:port"; empty host or "*" is every address). */
static int bind_listen(struct http_server *s, int *family)
{
	char host[256], port[8];
	const char *l = s->o.listen, *colon;
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, rc, err = FM_OK;

	if (l[0] == '[') {
		const char *e = strchr(l, ']');
		if (!e || e[1] != ':')
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(e - l - 1), l + 1);
		colon = e + 1;
	} else {
		colon = strrchr(l, ':');
		if (!colon || (size_t)(colon - l) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - l), l);
	}
	if (!colon[1] || strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atoi(colon + 1) > 65535)
		goto bad;
	snprintf(port, sizeof(port), "%s", colon + 1);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port,
			 &hints, &ai);
	if (rc)
		return fm_error_set(FM_EINVAL, "listen %s: %s", l,
				    gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = fm_error_set(FM_EUNAVAIL, "listen %s: %s", l,
				   strerror(errno));
		goto done;
	}
	*family = ai->ai_family;
	s->port = ntohs(ss.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&ss)->sin6_port
				: ((struct sockaddr_in *)&ss)->sin_port);
	s->listen_fd = fd;
	fd = -1;
done:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return err;
bad:
	return fm_error_set(FM_EINVAL, "listen '%s': expected host:port",
			    l);
}

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int http_server_start(struct http_server *s)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	sigset_t set;
	int family = AF_INET, err;

	FM_ASSERT(!s->d);
	block_signals(&set);
	atomic_store(&s->draining, 0);
	err = bind_listen(s, &family);
	if (err)
		return err;
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_LISTEN_SOCKET,
		(MHD_socket)s->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned int)s->o.threads, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)s->o.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->o.idle_timeout_s,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_END);
	if (!s->d) {
		close(s->listen_fd);
		s->listen_fd = -1;
		s->port = 0;
		return fm_error_set(FM_EUNAVAIL, "listen %s: the HTTP daemon "
				    "did not start", s->o.listen);
	}
	log_info("%s listening on %s (port %u, %u threads)", s->o.name,
		 s->o.listen, (unsigned)s->port, s->o.threads);
	return FM_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->d ? s->port : 0;
}

struct http_metrics *http_server_metrics(struct http_server *s)
{
	return s->metrics;
}

void http_server_shutdown(struct http_server *s)
{
	uint64_t one = 1;
	ssize_t rc = write(s->wake_fd, &one, sizeof(one));

	(void)rc; /* a full counter already means "wake up" */
}

/* The eventfd of the server in http_server_run, for the signal handler:
 * threads that libraries start before main (OpenBLAS does) do not block
 * signals, so the handler may run on any thread. */
static volatile sig_atomic_t run_signal;
static int run_wake_fd = -1;

static void on_signal(int sig)
{
	int saved = errno;
	uint64_t one = 1;

	run_signal = sig;
	if (run_wake_fd >= 0 && write(run_wake_fd, &one, sizeof(one)) < 0)
		run_signal = sig; /* the counter is already non-zero */
	errno = saved;
}

int http_server_run(struct http_server *s)
{
	struct sigaction sa = { 0 }, old_int, old_term;
	struct pollfd pfd = { .fd = s->wake_fd, .events = POLLIN };
	sigset_t set;
	uint64_t v;

	FM_ASSERT(run_wake_fd < 0); /* one running server per process */
	run_signal = 0;
	run_wake_fd = s->wake_fd;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	/* this thread takes the signals; the server's threads keep them
	 * blocked so their system calls are not interrupted */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR && !run_signal)
		;
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	run_wake_fd = -1;
	if (read(s->wake_fd, &v, sizeof(v)) < 0)
		v = 0; /* nothing left to consume */
	if (run_signal)
		log_info("%s: %s received, draining", s->o.name,
			 strsignal(run_signal));
	else
		log_info("%s: shutdown requested, draining", s->o.name);
	return http_server_stop(s, s->o.drain_ms);
}

int http_server_stop(struct http_server *s, unsigned drain_ms)
{
	struct timespec now, end, nap = { 0, 2000000 };
	MHD_socket lfd;
	int left;

	if (!s->d)
		return FM_OK;
	atomic_store(&s->draining, 1);
	lfd = MHD_quiesce_daemon(s->d);
	/* the kernel would still complete handshakes on the open socket:
	 * stop listening now, close once the threads are gone */
	if (lfd != MHD_INVALID_SOCKET)
		shutdown(lfd, SHUT_RD);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += drain_ms / 1000;
	end.tv_nsec += (long)(drain_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (atomic_load(&s->in_flight) <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		nanosleep(&nap, NULL);
	}
	left = atomic_load(&s->in_flight);
	MHD_stop_daemon(s->d);
	s->d = NULL;
	/* after quiesce the listening socket is ours to close */
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	s->listen_fd = -1;
	if (left > 0) {
		log_warn("%s stopped: %d requests were still in flight after "
			 "%u ms", s->o.name, left, drain_ms);
		return fm_error_set(FM_ETIMEOUT, "%s: %d requests still in "
				    "flight after %u ms", s->o.name, left,
				    drain_ms);
	}
	log_info("%s stopped", s->o.name);
	return FM_OK;
}
