/* HTTP/JSON server on libmicrohttpd (thread pool, epoll). A service gives
 * one table of routes; the server matches them, bounds bodies, checks
 * signatures through a verifier callback, answers errors as
 * {"error":{"code","message","request_id"}}, logs one access line per
 * request, serves /healthz and /metrics, and drains in-flight requests on
 * SIGTERM/SIGINT.
 *
 * Handlers run on the server's threads and may block (database calls);
 * while one blocks, the other connections that thread serves wait, so give
 * the pool as many threads as requests may block at once (e.g. the size of
 * the database pool). Routes flagged HTTP_SLOW run on threads apart. A handler either responds (http_respond_*) and
 * returns FM_OK, or returns an error code after fm_error_set(), which the
 * server turns into the JSON error with fm_err_http_status():
 *
 *   static int task_get(struct http_req *req, void *arg)
 *   {
 *           long long id;
 *           json_t *task = NULL;
 *           int err = http_req_param_int(req, "id", 1, INT64_MAX, &id);
 *           if (err)
 *                   return err;
 *           err = load_task(arg, id, &task);  // FM_ENOTFOUND -> 404
 *           if (err)
 *                   return err;
 *           return http_respond_json(req, 200, task);
 *   }
 *   static const struct http_route routes[] = {
 *           { "GET", "/v1/tasks/{id:int}", task_get, 0, 0 },
 *           { "POST", "/v1/tasks", task_create, 1 << 20,
 *             HTTP_SIGNED | HTTP_IDEMPOTENT },
 *   };
 *
 * and in main: http_server_new, http_server_start, http_server_run. */
#ifndef FM_HTTP_SERVER_H
#define FM_HTTP_SERVER_H

#include "http/metrics.h"
#include "http/route.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct http_server;
struct http_req;

typedef int (*http_handler_fn)(struct http_req *req, void *arg);

/* Authenticates a request to a route flagged HTTP_SIGNED, after its body
 * is read. Reads what it needs with http_req_method, http_req_target (the
 * path and query exactly as sent), http_req_body and http_req_header;
 * writes the authenticated identity (an address) into out (out_n bytes).
 * Returns FM_OK, or fm_error_set(FM_EAUTH (401) | FM_EFORBIDDEN (403) |
 * FM_EUNAVAIL (503), ...). */
typedef int (*http_verify_fn)(void *arg, const struct http_req *req,
			      char *out, size_t out_n);

/* Reports whether the service can serve (e.g. its database answers):
 * FM_OK, or an error with a message; /healthz then answers 503. */
typedef int (*http_health_fn)(void *arg);

enum http_route_flags {
	HTTP_SIGNED = 1 << 0,     /* the verifier must accept the request */
	HTTP_IDEMPOTENT = 1 << 1, /* the handler runs under opts.idempotent */
	/* The handler may take long (it downloads): it runs on one of
	 * opts.threads threads of its own, and the server thread that read
	 * the request goes on serving its other connections meanwhile. */
	HTTP_SLOW = 1 << 2,
};

/* Runs handler(req, handler_arg) for a route flagged HTTP_IDEMPOTENT, so
 * that the service can answer a repeated request (an Idempotency-Key) as
 * it answered the first one. Returns what a handler returns. */
typedef int (*http_idempotent_fn)(void *arg, struct http_req *req,
				  http_handler_fn handler, void *handler_arg);

/* Path patterns are literal segments and typed parameters,
 * "/v1/tasks/{id:int}" (types in http/route.h). A parameter that does not
 * fit its type is a 400 naming it, before the handler runs. When several
 * patterns match, literal segments win over parameters, leftmost first.
 * The strings are borrowed and must outlive the server. */
struct http_route {
	const char *method; /* GET, POST, PUT, PATCH or DELETE */
	const char *pattern;
	http_handler_fn handler;
	size_t max_body;    /* bytes; 0 takes http_server_opts.max_body */
	unsigned flags;     /* enum http_route_flags */
};

struct http_server_opts {
	const char *listen;        /* "host:port"; port 0 picks a free one */
	const char *name;          /* service name in logs ("taskd") */
	unsigned threads;          /* thread pool size */
	unsigned max_connections;  /* open connections at most (kept below
				    * the descriptor limit, which start
				    * raises to its hard limit) */
	unsigned idle_timeout_s;   /* a connection silent this long closes */
	unsigned drain_ms;         /* http_server_run's drain deadline */
	size_t max_body;           /* default body limit of a route */
	int access_log;            /* one info line per request */
	http_verify_fn verify;     /* required if any route is HTTP_SIGNED */
	void *verify_arg;
	http_health_fn health;     /* NULL: always healthy */
	void *health_arg;
	http_idempotent_fn idempotent; /* required if any route is
					* HTTP_IDEMPOTENT */
	void *idempotent_arg;
	/* A request's headers and body must have arrived this long after
	 * its connection opened (or the previous answer on it went out);
	 * bytes trickling in do not extend it. Past it the connection is
	 * cut. */
	unsigned request_timeout_s;
	unsigned max_per_ip;       /* connections from one address; 0: any */
};

#define HTTP_SERVER_OPTS_INIT \
	{ "127.0.0.1:0", "http", 4, 16384, 30, 10000, 1 << 20, 1, NULL, NULL, \
	  NULL, NULL, NULL, NULL, 10, 0 }

/* Limits of the request context. */
#define HTTP_REQ_ID_MAX 64       /* X-Request-Id accepted up to this length */
#define HTTP_AUTH_MAX 128        /* identity written by the verifier */
#define HTTP_IDEMPOTENCY_KEY_MAX 200

/* Checks the routes (methods, patterns, duplicates, a verifier for signed
 * routes) and sets up the server; nothing listens yet. routes and opts
 * strings are borrowed. arg is passed to every handler. */
int http_server_new(struct http_server **out,
		    const struct http_server_opts *opts,
		    const struct http_route *routes, size_t n_routes,
		    void *arg);
/* Stops the server without draining (if running) and frees it. */
void http_server_free(struct http_server *s);

/* Binds and starts the thread pool. Blocks SIGINT and SIGTERM in the
 * calling thread first, so that the server's threads inherit the mask
 * and are never interrupted by them. Errors: FM_EINVAL for a malformed
 * listen address, FM_EUNAVAIL when it cannot be bound. */
int http_server_start(struct http_server *s);
/* The port actually bound (useful with port 0); 0 before start. */
uint16_t http_server_port(const struct http_server *s);

/* Waits for SIGINT, SIGTERM or http_server_shutdown(), then stops with
 * http_server_stop(s, opts.drain_ms). While it waits it owns the SIGINT
 * and SIGTERM handlers (restored when it returns), so one server per
 * process runs it at a time. */
int http_server_run(struct http_server *s);
/* Asks http_server_run to return; callable from any thread and from a
 * signal handler. */
void http_server_shutdown(struct http_server *s);
/* Stops accepting connections, lets requests in flight finish (answering
 * with "Connection: close"; /healthz answers 503), then stops the threads.
 * Requests still unfinished after drain_ms are cut: FM_ETIMEOUT. */
int http_server_stop(struct http_server *s, unsigned drain_ms);

/* The server's metrics registry, for the service's own metrics. */
struct http_metrics *http_server_metrics(struct http_server *s);

/* ---- the request, inside a handler (or the verifier) ----
 * Returned strings are borrowed and valid until the handler returns. */
const char *http_req_method(const struct http_req *req);
/* The decoded path, without the query. */
const char *http_req_path(const struct http_req *req);
/* The request target as sent on the wire: path and query, undecoded. */
const char *http_req_target(const struct http_req *req);
const char *http_req_id(const struct http_req *req);
/* A request header (case-insensitive name); NULL if absent. */
const char *http_req_header(const struct http_req *req, const char *name);
/* The body (NUL-terminated; len may be NULL); "" when there is none. */
const char *http_req_body(const struct http_req *req, size_t *len);
/* The identity the verifier returned; NULL on routes not signed. */
const char *http_req_auth(const struct http_req *req);

/* A path parameter by name, already checked against its type; NULL when
 * the route has no such parameter. */
const char *http_req_param(const struct http_req *req, const char *name);
/* An {x:int} parameter; FM_EINVAL naming it if outside [min, max]. */
int http_req_param_int(const struct http_req *req, const char *name,
		       long long min, long long max, long long *out);

/* Query-string getters: an absent parameter gives def; a malformed or
 * out-of-range one is FM_EINVAL naming it ("query parameter limit:
 * expected an integer in [1, 100], got '500'"). Values are decoded. */
int http_req_query_str(const struct http_req *req, const char *key,
		       size_t max_len, const char *def, const char **out);
int http_req_query_int(const struct http_req *req, const char *key,
		       long long min, long long max, long long def,
		       long long *out);
/* true/false/1/0. */
int http_req_query_bool(const struct http_req *req, const char *key,
			int def, int *out);
/* One of choices (NULL-terminated); *out is its index, or def. */
int http_req_query_enum(const struct http_req *req, const char *key,
			const char *const *choices, int def, int *out);
/* 0x + 40 hex digits, returned lowercased into out (43 bytes). */
int http_req_query_addr(const struct http_req *req, const char *key,
			char out[43], int *present);
/* Refuses query parameters not in allowed (NULL-terminated). */
int http_req_query_no_unknown(const struct http_req *req,
			      const char *const *allowed);

/* The Idempotency-Key header: *out is NULL when absent; FM_EINVAL when
 * it is not 1 to HTTP_IDEMPOTENCY_KEY_MAX visible ASCII characters
 * (0x21..0x7e; a UUID fits). */
int http_req_idempotency_key(const struct http_req *req, const char **out);

/* Parses the body as JSON into a new reference; an empty or malformed
 * body is FM_EINVAL naming the line and column. */
int http_req_json(const struct http_req *req, json_t **out);

/* ---- responding: at most one response per request ----
 * Takes ownership of body (a NULL body is answered as out of memory). */
int http_respond_json(struct http_req *req, int status, json_t *body);
/* JSON already printed (by the database): takes ownership of the
 * malloc'd text of len bytes. */
int http_respond_json_text(struct http_req *req, int status, char *text,
			   size_t len);
/* Copies data. */
int http_respond_raw(struct http_req *req, int status, const char *ctype,
		     const void *data, size_t len);
/* The JSON error for code, with the current fm_error_msg(). Messages of
 * internal errors (status 500) are logged, and the client is told only
 * "internal error" and the request id. */
int http_respond_error(struct http_req *req, int code);
/* Adds a response header (copied); at most 8 per response. */
int http_resp_header(struct http_req *req, const char *name,
		     const char *value);

/* The response set so far, for code around handlers (e.g. recording an
 * answer under its Idempotency-Key): the status, 0 when none is set; the
 * body (borrowed, NUL-terminated), NULL when none is set. */
int http_resp_status(const struct http_req *req);
const char *http_resp_body(const struct http_req *req, size_t *len);
/* A response header added so far (case-insensitive name); NULL if none. */
const char *http_resp_header_get(const struct http_req *req,
				 const char *name);

#endif
