/* A request's way through the server: libmicrohttpd's callbacks, the
 * request id, routing and path parameters, the body limit, the
 * verifier, the handler (or the service's idempotency wrapper around
 * it), and the access log line. */
#include "http/server_int.h"

#include "core/err.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

void http_srv_quote(char *out, size_t n, const char *s)
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

/* Adds method (and HEAD with GET) to the Allow list of a 405. */
static void allow_add(char *allow, size_t n, const char *method)
{
	size_t l = strlen(allow);

	if (strstr(allow, method))
		return;
	snprintf(allow + l, n - l, "%s%s", l ? ", " : "", method);
	if (strcmp(method, "GET") == 0) {
		l = strlen(allow);
		snprintf(allow + l, n - l, ", HEAD");
	}
}

/* Answers a request no route took: 404, or 405 when another method
 * would have matched (allowed lists those). */
static void refuse(struct http_req *r, int path_hit, const char *allowed)
{
	char q[72];

	http_srv_quote(q, sizeof(q), r->path);
	if (!path_hit) {
		http_srv_fail(r, FM_ENOTFOUND, "no route for %s", q);
		return;
	}
	http_srv_fail(r, FM_EINVAL, "method %s is not allowed on %s "
		      "(allowed: %s)", r->method, q, allowed);
	r->status = 405;
	http_resp_header(r, MHD_HTTP_HEADER_ALLOW, allowed);
}

/* Checks the path parameters of the matched route against their types
 * and records them; on failure answers 400 and returns nonzero. */
static int take_params(struct http_req *r, char **segs, int n)
{
	for (int i = 0; i < n; i++) {
		const struct http_seg *g = &r->route->pat.segs[i];
		char q[72];

		if (g->type == HTTP_SEG_LIT)
			continue;
		if (!http_param_ok(g->type, segs[i])) {
			http_srv_quote(q, sizeof(q), segs[i]);
			http_srv_fail(r, FM_EINVAL, "path parameter %.*s: "
				      "expected %s, got '%s'", (int)g->len,
				      g->text, http_param_expect(g->type), q);
			return -1;
		}
		r->pnames[r->n_params] = g->text;
		r->pname_len[r->n_params] = g->len;
		r->pvals[r->n_params++] = segs[i];
	}
	return 0;
}

/* Finds the route; on failure answers 404, 405 or 400 and returns
 * nonzero. */
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
		http_srv_fail(r, FM_ENOMEM, "out of memory");
		return -1;
	}
	rc = http_path_split(r->path_buf, segs, &n);
	for (size_t i = 0; rc == 0 && i < s->n_routes; i++) {
		struct croute *c = &s->routes[i];

		if (!http_pattern_match(&c->pat, segs, n))
			continue;
		path_hit = 1;
		if (strcmp(c->def.method, method) != 0)
			allow_add(allow, sizeof(allow), c->def.method);
		else if (!best || c->pat.spec > best->pat.spec)
			best = c;
	}
	if (!best) {
		refuse(r, path_hit, allow);
		return -1;
	}
	r->route = best;
	return take_params(r, segs, n);
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind,
				     const char *key, const char *value)
{
	int *n = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		n[0]++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		n[1]++;
	return MHD_YES;
}

/* A body whose length two headers could state differently is refused:
 * a proxy in front may read it the other way (request smuggling). */
static int framing_ok(struct http_req *r)
{
	int n[2] = { 0, 0 };

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_framing, n);
	if (n[0] > 1)
		http_srv_fail(r, FM_EINVAL, "more than one Content-Length "
			      "header");
	else if (n[1] > 1 || (n[1] && n[0]))
		http_srv_fail(r, FM_EINVAL, "Transfer-Encoding with "
			      "Content-Length or given twice");
	else
		return 1;
	r->bad_framing = 1;
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
	if (!framing_ok(r) || route(r))
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
			http_srv_fail(r, FM_ETOOLARGE, "request body of %s bytes "
				      "is over the limit of %zu bytes", cl,
				      max);
	}
}

static int has_body(const struct http_req *r)
{
	const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0") != 0) ||
	       http_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* The verifier of a signed route: the identity it returns is the
 * request's. */
static int authenticate(struct http_req *r)
{
	struct http_server *s = r->srv;
	int err;

	err = s->o.verify(s->o.verify_arg, r, r->auth, sizeof(r->auth));
	r->auth[sizeof(r->auth) - 1] = '\0';
	if (err)
		return err;
	if (!r->auth[0])
		return fm_error_set(FM_EINTERNAL, "the verifier accepted the "
				    "request without an identity");
	r->authed = 1;
	return FM_OK;
}

void http_srv_dispatch(struct http_req *r)
{
	struct http_server *s = r->srv;
	const struct http_route *def = &r->route->def;
	int err;

	fm_error_clear();
	if (def->flags & HTTP_SIGNED) {
		err = authenticate(r);
		if (err)
			goto done;
	}
	if (def->flags & HTTP_IDEMPOTENT)
		err = s->o.idempotent(s->o.idempotent_arg, r, def->handler,
				      s->arg);
	else
		err = def->handler(r, s->arg);
done:
	if (r->status)
		return;
	if (err == FM_OK)
		err = fm_error_set(FM_EINTERNAL, "%s %s: the handler sent no "
				   "response", def->method, def->pattern);
	http_respond_error(r, err);
}

enum MHD_Result http_srv_on_request(void *cls, struct MHD_Connection *conn,
				    const char *url, const char *method,
				    const char *version, const char *upload,
				    size_t *upload_size, void **req_cls)
{
	struct http_req *r = *req_cls;
	enum MHD_Result ret = MHD_YES;

	(void)cls;
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
		if (r->status && (has_body(r) || r->bad_framing)) {
			http_srv_conn_reading(r->srv, conn, 0);
			ret = http_srv_queue(r);
		}
		goto out;
	}
	log_ctx_set(r->id);
	if (*upload_size) {
		/* libmicrohttpd cannot answer in the middle of a chunked
		 * body: the rest is read and dropped, so the 413 goes out at
		 * its end; the request deadline bounds how long that lasts */
		if (!r->status &&
		    buf_append(&r->body, upload, *upload_size))
			http_srv_fail(r, FM_ETOOLARGE, "request body is over "
				      "the limit of %zu bytes", r->body.max);
		*upload_size = 0;
		goto out;
	}
	if (atomic_load(&r->slow_state) == 0) {
		http_srv_conn_reading(r->srv, conn, 0);
		if (!r->status && (r->route->def.flags & HTTP_SLOW) &&
		    r->srv->n_slow) {
			/* called again once the slow thread answered */
			MHD_suspend_connection(conn);
			atomic_store(&r->slow_state, 1);
			http_srv_slow_push(r->srv, r);
			goto out;
		}
		if (!r->status)
			http_srv_dispatch(r);
	}
	ret = http_srv_queue(r);
out:
	log_ctx_set(NULL);
	return ret;
}

void *http_srv_on_uri(void *cls, const char *uri,
		      struct MHD_Connection *conn)
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
	if (r->route && http_srv_route_is_probe(r->route) && r->status == 200)
		level = LOG_DEBUG;
	log_at(level, "%s %s %d %zuB %.1fms %s%s%s%s",
		 r->method[0] ? r->method : "-", r->target,
		 r->queued ? r->status : 0, r->queued ? r->resp_len : 0, ms,
		 addr, r->authed ? " auth=" : "", r->authed ? r->auth : "",
		 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
		 : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			 ? " (timed out)"
			 : " (aborted)");
}

void http_srv_on_done(void *cls, struct MHD_Connection *conn,
		      void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_req *r = *req_cls;
	struct timespec t1;
	uint64_t us;

	/* the next request on this connection has its own deadline */
	http_srv_conn_reading(s, conn, 1);
	if (!r)
		return;
	*req_cls = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (uint64_t)(t1.tv_sec - r->t0.tv_sec) * 1000000u +
	     (uint64_t)((t1.tv_nsec - r->t0.tv_nsec) / 1000);
	if (r->queued)
		http_srv_stats_add(r->route ? &r->route->stats
					    : &s->unmatched,
				   r->status, us);
	if (s->o.access_log) {
		log_ctx_set(r->id[0] ? r->id : NULL);
		access_log(r, (double)us / 1000.0, toe);
		log_ctx_set(NULL);
	}
	req_free(r);
	atomic_fetch_sub(&s->in_flight, 1);
}

void http_srv_on_mhd_log(void *cls, const char *fmt, va_list ap)
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

