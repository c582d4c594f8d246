/* What the HTTP server's files share: the server, a request on its way
 * through, and the statistics kept per route. Private to
 * services/lib/http; the public surface is http/server.h. */
#ifndef FM_HTTP_SERVER_INT_H
#define FM_HTTP_SERVER_INT_H

#include "core/buf.h"
#include "http/server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Latency buckets of a route (bounds in server_metrics.c), the last one
 * +Inf. */
#define HTTP_SRV_BUCKETS 15
#define HTTP_SRV_STATUS_MIN 100
#define HTTP_SRV_STATUS_SLOTS 500

struct route_stats {
	_Atomic uint64_t status[HTTP_SRV_STATUS_SLOTS]; /* by status - 100 */
	_Atomic uint64_t bucket[HTTP_SRV_BUCKETS];      /* not cumulative */
	_Atomic uint64_t sum_us;
};

struct croute {
	struct http_route def;
	struct http_pattern pat;
	struct route_stats stats;
};

struct http_conn;

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
	/* open connections, for the reaper (server_conn.c) */
	pthread_mutex_t conns_lock;
	pthread_cond_t reaper_cond;
	struct http_conn *conns;
	_Atomic int n_conns;
	int conns_ready, reaper_started, reaper_stop;
	pthread_t reaper;
	struct http_metric *cut;
	/* handlers of HTTP_SLOW routes (server_slow.c) */
	pthread_mutex_t slow_lock;
	pthread_cond_t slow_cond;
	struct http_req *slow_head, *slow_tail;
	pthread_t *slow_threads;
	unsigned n_slow;
	int slow_stop;
};

#define HTTP_SRV_RESP_HEADERS_MAX 8

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
	int bad_framing; /* the body's length is ambiguous: close */
	/* HTTP_SLOW: 1 while a slow thread runs the handler, 2 once it
	 * answered; the connection is suspended meanwhile */
	_Atomic int slow_state;
	struct http_req *slow_next;
	struct buf body;
	struct timespec t0;
	/* the response being prepared */
	int status;
	char *resp;
	size_t resp_len;
	char ctype[96];
	struct {
		char *name, *value;
	} hdr[HTTP_SRV_RESP_HEADERS_MAX];
	int n_hdr;
};

/* server_request.c: libmicrohttpd's callbacks, and a value quoted for a
 * message (at most 64 bytes of untrusted s; control and non-ASCII bytes
 * become '?', so messages stay one valid line). */
enum MHD_Result http_srv_on_request(void *cls, struct MHD_Connection *conn,
				    const char *url, const char *method,
				    const char *version, const char *upload,
				    size_t *upload_size, void **req_cls);
void *http_srv_on_uri(void *cls, const char *uri,
		      struct MHD_Connection *conn);
void http_srv_on_done(void *cls, struct MHD_Connection *conn,
		      void **req_cls, enum MHD_RequestTerminationCode toe);
void http_srv_on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void http_srv_quote(char *out, size_t n, const char *s);

/* server_request.c: the verifier, then the handler (or the idempotency
 * wrapper around it); sets the response. */
void http_srv_dispatch(struct http_req *r);

/* server_slow.c: the threads of HTTP_SLOW handlers. A request handed to
 * them (its connection suspended) is dispatched there, marked answered,
 * and its connection resumed; libmicrohttpd then calls back for the
 * answer. Stopping runs what is queued first. */
int http_srv_slow_start(struct http_server *s);
void http_srv_slow_push(struct http_server *s, struct http_req *r);
void http_srv_slow_stop(struct http_server *s);

/* server_respond.c: an error answered by the server itself (routing,
 * limits, auth), and handing the response to libmicrohttpd. */
void http_srv_fail(struct http_req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum MHD_Result http_srv_queue(struct http_req *r);

/* server_conn.c: each open connection's socket and when its request
 * began; a reaper thread cuts (shutdown) the connections whose request
 * has not arrived whole within request_timeout_s. The descriptor limit. */
void http_srv_on_conn(void *cls, struct MHD_Connection *conn,
		      void **socket_ctx,
		      enum MHD_ConnectionNotificationCode code);
/* The request on r's connection is read whole (0), or a new one is
 * awaited from now (1). */
void http_srv_conn_reading(struct http_server *s,
			   struct MHD_Connection *conn, int reading);
int http_srv_conns_init(struct http_server *s);
void http_srv_conns_cleanup(struct http_server *s);
int http_srv_reaper_start(struct http_server *s);
void http_srv_reaper_stop(struct http_server *s);
/* Raises the soft RLIMIT_NOFILE to the hard one; returns how many
 * connections fit in it beside the process's other descriptors (at most
 * want). */
unsigned http_srv_fd_capacity(unsigned want);

/* server_metrics.c: the built-in /healthz and /metrics routes, the
 * statistics of an answered request, and whether a route is one of the
 * probes and scrapes that come every few seconds. */
extern const struct http_route http_srv_builtin[];
extern const size_t http_srv_n_builtin;
void http_srv_stats_add(struct route_stats *st, int status, uint64_t us);
int http_srv_route_is_probe(const struct croute *c);

#endif
