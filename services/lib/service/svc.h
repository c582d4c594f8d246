/* What the four services share: configuration, logging and the database
 * pool at start-up; signed-request verification (EIP-191 signature, clock
 * skew, nonce replay in PostgreSQL); Idempotency-Key handling for POSTs;
 * GET /v1/info; a sweeper thread for periodic work; the HTTP server's run
 * loop with a graceful stop on SIGTERM. */
#ifndef FM_SERVICE_SVC_H
#define FM_SERVICE_SVC_H

#include "core/cfg.h"
#include "db/db.h"
#include "http/server.h"
#include "service/tmpdir.h"

#include <jansson.h>
#include <pthread.h>

struct svc;

typedef int (*svc_sweep_fn)(struct svc *s);

struct svc {
	const char *name;
	const char *listen; /* --listen, or NULL for the configured one */
	struct fm_config cfg;
	struct db_pool *db;
	struct http_server *http;
	char operator_address[43]; /* lowercase; "" when not configured */
	svc_sweep_fn sweep;        /* periodic work, or NULL */
	svc_sweep_fn background;   /* long-running work, or NULL */
	void *ctx;                 /* the service's own state */
	struct tmpdir tmp;         /* where checks download */
	pthread_t sweeper, worker;
	int sweeper_started, worker_started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stopping;
};

/* Parses the common options (--config FILE, --listen ADDR, --help),
 * loads the configuration, starts logging, makes the service's temporary
 * folder (removing those of killed processes) and opens the database
 * pool.
 * Returns 1 to go on, or 0 when main should return *exit_code (0 after
 * --help, 2 for usage, 1 for a runtime failure; reported on stderr). */
int svc_init(struct svc *s, const char *name, int argc, char **argv,
	     const char *usage_extra, int *exit_code);
void svc_cleanup(struct svc *s);

/* Serves routes on listen until SIGTERM/SIGINT, running s->sweep every
 * sweep_interval_s meanwhile; drains requests in flight before returning.
 * Returns the exit code. */
int svc_serve(struct svc *s, const struct http_route *routes, size_t n,
	      const char *listen);
/* Sleeps up to ms; returns 1 when the service is stopping. */
int svc_wait(struct svc *s, long ms);

/* The address to listen on: --listen, else configured. */
const char *svc_listen(const struct svc *s, const char *configured);

/* The verifier of signed routes (http_verify_fn); arg is the svc. */
int svc_verify(void *arg, const struct http_req *req, char *out, size_t n);

/* GET /v1/info: chain id, escrow and operator addresses, storage hint,
 * API version. */
int svc_info(struct http_req *req, void *arg);

/* The server's http_idempotent_fn (arg is the svc), so routes flagged
 * HTTP_IDEMPOTENT keep Idempotency-Key semantics when the request
 * carries the header: the same key and request get the first answer
 * again; the same key with another request is 409; a 5xx answer, or
 * one with Retry-After, is forgotten so the client can retry. A request
 * in progress holds its
 * key for idempotency_lease_s: meanwhile the same request is 409 with
 * Retry-After; after it (the process died) a retry runs it again. */
int svc_idempotent(void *arg, struct http_req *req, http_handler_fn handler,
		   void *handler_arg);

/* A service: its routes, periodic work and where it listens. */
struct svc_def {
	const char *name;
	const struct http_route *routes;
	size_t n_routes;
	svc_sweep_fn init;    /* after start-up, before serving; NULL: none */
	svc_sweep_fn sweep;   /* NULL: none */
	/* runs in its own thread while serving; must return soon after
	 * svc_wait reports the stop */
	svc_sweep_fn background;
	size_t listen_offset; /* offsetof(struct fm_config, x_listen) */
};

/* The whole main of a service: options (plus --routes, which prints the
 * route table), start-up, serving, shutdown. Returns the exit code. */
int svc_main(const struct svc_def *def, int argc, char **argv);

#endif
