#include "service/svc.h"

#include "chain/keystore.h"
#include "chain/reqsig.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "core/sha256.h"
#include "market/market.h"
#include "market/spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API_VERSION "1"

static void usage(FILE *f, const char *name, const char *extra)
{
	fprintf(f,
		"usage: fedmarket-%s [--config FILE] [--listen HOST:PORT]\n"
		"  --config FILE   settings file (default: $FEDMARKET_CONFIG or "
		"~/.config/fedmarket/config)\n"
		"  --listen ADDR   overrides %s_listen\n"
		"  --routes        print the route table and exit\n"
		"Settings come from FEDMARKET_* environment variables too; see "
		"`fedmarket-admin config`.\n%s",
		name, name, extra ? extra : "");
}

/* The address field of a keystore v3 file needs no password. */
static int keystore_address(char out[43], const char *path)
{
	uint8_t a[CHAIN_ADDR_LEN];
	int err = ks_peek_address(a, path);

	if (err)
		return err;
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, a, CHAIN_ADDR_LEN);
	return FM_OK;
}

int svc_init(struct svc *s, const char *name, int argc, char **argv,
	     const char *usage_extra, int *exit_code)
{
	const char *config = NULL;
	int level, removed = 0, err;

	memset(s, 0, sizeof(*s));
	s->tmp.lock_fd = -1;
	s->name = name;
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout, name, usage_extra);
			*exit_code = 0;
			return 0;
		} else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			config = argv[++i];
		} else if (!strcmp(argv[i], "--routes")) {
			/* handled by svc_main */
		} else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			s->listen = argv[++i];
		} else {
			fprintf(stderr, "fedmarket-%s: unknown argument \"%s\"\n",
				name, argv[i]);
			usage(stderr, name, usage_extra);
			*exit_code = 2;
			return 0;
		}
	}
	*exit_code = 2;
	if (cfg_load(&s->cfg, config)) {
		fprintf(stderr, "fedmarket-%s: %s\n", name, fm_error_msg());
		return 0;
	}
	level = log_level_parse(s->cfg.log_level);
	log_init(name, (enum log_level)level, s->cfg.log_json);
	if (s->cfg.operator_address[0]) {
		err = spec_address(s->operator_address,
				   s->cfg.operator_address, "operator_address");
	} else if (s->cfg.operator_keystore[0]) {
		err = keystore_address(s->operator_address,
				       s->cfg.operator_keystore);
	} else {
		err = FM_OK;
	}
	if (err) {
		fprintf(stderr, "fedmarket-%s: %s\n", name, fm_error_msg());
		return 0;
	}
	*exit_code = 1;
	err = tmpdir_open(&s->tmp, name, s->cfg.idempotency_lease_s, &removed);
	if (err) {
		fprintf(stderr, "fedmarket-%s: %s\n", name, fm_error_msg());
		return 0;
	}
	if (removed)
		log_info("removed %d temporary folder(s) of stopped processes",
			 removed);
	err = db_pool_new(&s->db, s->cfg.database_url,
			  (int)s->cfg.db_pool_size);
	if (err) {
		fprintf(stderr, "fedmarket-%s: %s\n", name, fm_error_msg());
		return 0;
	}
	*exit_code = 0;
	return 1;
}

const char *svc_listen(const struct svc *s, const char *configured)
{
	return s->listen ? s->listen : configured;
}

void svc_cleanup(struct svc *s)
{
	http_server_free(s->http);
	s->http = NULL;
	db_pool_free(s->db);
	s->db = NULL;
	tmpdir_close(&s->tmp);
}

int svc_wait(struct svc *s, long ms)
{
	struct timespec until;
	int stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->stop_lock);
	while (!s->stopping &&
	       pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &until) !=
		       ETIMEDOUT)
		;
	stop = s->stopping;
	pthread_mutex_unlock(&s->stop_lock);
	return stop;
}

static void *sweeper_main(void *arg)
{
	struct svc *s = arg;

	while (!svc_wait(s, s->cfg.sweep_interval_s * 1000))
		if (s->sweep(s))
			log_warn("periodic work failed: %s", fm_error_msg());
	return NULL;
}

static void *worker_main(void *arg)
{
	struct svc *s = arg;

	if (s->background(s))
		log_error("background work stopped: %s", fm_error_msg());
	return NULL;
}

static int health(void *arg)
{
	struct svc *s = arg;
	struct db_conn *c = NULL;
	int err = db_acquire(s->db, &c, 2000);

	if (err)
		return err;
	err = db_exec(c, NULL, "SELECT 1", 0, NULL);
	db_release(s->db, c);
	return err;
}

/* The HTTP server of s, started: verifier, health check and
 * idempotency wrapper are the service's. */
static int start_http(struct svc *s, const struct http_route *routes,
		      size_t n, const char *listen)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	int err;

	o.listen = listen;
	o.name = s->name;
	o.threads = (unsigned)s->cfg.http_threads;
	o.max_connections = (unsigned)s->cfg.http_max_connections;
	o.max_per_ip = (unsigned)s->cfg.http_max_connections_per_ip;
	o.request_timeout_s = (unsigned)s->cfg.http_request_timeout_s;
	o.max_body = (size_t)s->cfg.max_body_bytes;
	o.verify = svc_verify;
	o.verify_arg = s;
	o.health = health;
	o.health_arg = s;
	o.idempotent = svc_idempotent;
	o.idempotent_arg = s;
	err = http_server_new(&s->http, &o, routes, n, s);
	if (err)
		return err;
	return http_server_start(s->http);
}

int svc_serve(struct svc *s, const struct http_route *routes, size_t n,
	      const char *listen)
{
	int err = start_http(s, routes, n, listen);

	if (err) {
		log_error("cannot serve on %s: %s", listen, fm_error_msg());
		return 1;
	}
	log_info("listening on %s", listen);
	/* started after the server so it inherits the blocked signals */
	if (s->sweep &&
	    pthread_create(&s->sweeper, NULL, sweeper_main, s) == 0)
		s->sweeper_started = 1;
	if (s->background &&
	    pthread_create(&s->worker, NULL, worker_main, s) == 0)
		s->worker_started = 1;
	err = http_server_run(s->http);
	pthread_mutex_lock(&s->stop_lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->stop_cond);
	pthread_mutex_unlock(&s->stop_lock);
	if (s->sweeper_started)
		pthread_join(s->sweeper, NULL);
	if (s->worker_started)
		pthread_join(s->worker, NULL);
	log_info("stopped%s", err ? " (some requests were cut)" : "");
	return 0;
}

int svc_info(struct http_req *req, void *arg)
{
	struct svc *s = arg;
	json_t *o = json_pack("{s:s, s:s, s:I, s:s?, s:s?, s:{s:s}}",
			      "api_version", API_VERSION, "service", s->name,
			      "chain_id", (json_int_t)s->cfg.chain_id,
			      "escrow_address",
			      s->cfg.escrow_address[0] ? s->cfg.escrow_address
						       : NULL,
			      "operator_address",
			      s->operator_address[0] ? s->operator_address
						     : NULL,
			      "storage", "url", s->cfg.storage_url);

	return http_respond_json(req, 200, o);
}

/* ------------------------------------------------------------ idempotency */

static void request_hash(char out[65], struct http_req *req)
{
	struct buf b = BUF_INIT((size_t)1 << 31);
	size_t len = 0;
	const char *body = http_req_body(req, &len);
	char body_hash[65];

	fm_sha256_hex(body_hash, body, len);
	if (buf_appendf(&b, "%s\n%s\n%s", http_req_method(req),
			http_req_target(req), body_hash))
		out[0] = '\0';
	else
		fm_sha256_hex(out, b.data, b.len);
	buf_cleanup(&b);
}

struct idem_claim {
	const char *address, *key, *method, *path, *hash;
	char lease[24]; /* seconds */
	/* what the claim found */
	int fresh;
	int status;
	long long lease_left; /* seconds, of a request in progress */
	char *response;
	char stored_hash[65];
};

static void claim_drop(void *arg)
{
	struct idem_claim *a = arg;

	free(a->response);
	a->response = NULL;
}

static int claim_fn(struct db_conn *c, void *arg)
{
	struct idem_claim *a = arg;
	PGresult *r = NULL;
	int err;

	err = db_execp(c, NULL,
		       "INSERT INTO idempotency_keys (address, key, method,"
		       " path, request_sha256, lease_until) VALUES ($1, $2,"
		       " $3, $4, $5, now() + make_interval(secs => $6::int))"
		       " ON CONFLICT DO NOTHING",
		       a->address, a->key, a->method, a->path, a->hash,
		       a->lease);
	if (err)
		return err;
	a->fresh = db_last_rows(c) == 1;
	if (a->fresh)
		return FM_OK;
	/* the same request, unanswered, whose holder's lease ran out: the
	 * holder died; this one runs it */
	err = db_execp(c, NULL,
		       "UPDATE idempotency_keys SET lease_until = now() +"
		       " make_interval(secs => $4::int) WHERE address = $1"
		       " AND key = $2 AND request_sha256 = $3 AND status IS"
		       " NULL AND lease_until < now()",
		       a->address, a->key, a->hash, a->lease);
	if (err)
		return err;
	a->fresh = db_last_rows(c) == 1;
	if (a->fresh) {
		log_warn("Idempotency-Key %s: its lease ran out unanswered; "
			 "running the request again", a->key);
		return FM_OK;
	}
	err = db_execp(c, &r,
		       "SELECT request_sha256, status, response,"
		       " ceil(greatest(extract(epoch FROM lease_until -"
		       " now()), 1))::bigint AS lease_left FROM"
		       " idempotency_keys WHERE address = $1 AND key = $2",
		       a->address, a->key);
	if (err)
		return err;
	if (PQntuples(r) == 1) {
		snprintf(a->stored_hash, sizeof(a->stored_hash), "%s",
			 db_str(r, 0, "request_sha256", ""));
		a->status = (int)db_int(r, 0, "status", 0);
		a->lease_left = db_int(r, 0, "lease_left", 1);
		a->response = strdup(db_str(r, 0, "response", ""));
	}
	PQclear(r);
	return FM_OK;
}

/* Records the answer given under (address, key). A 5xx, or an answer
 * that says when to try again (Retry-After: busy, being checked), is
 * forgotten so that a retry can run. */
static void idem_store(struct svc *s, const char *address, const char *key,
		       int status, const char *body, int transient)
{
	struct db_conn *c = NULL;
	char st[16];
	int err;

	snprintf(st, sizeof(st), "%d", status);
	err = db_acquire(s->db, &c, 5000);
	if (err)
		goto done;
	if (status >= 500 || transient)
		/* forget it: a retry must be able to run */
		err = db_execp(c, NULL,
			       "DELETE FROM idempotency_keys WHERE address = $1"
			       " AND key = $2",
			       address, key);
	else
		err = db_execp(c, NULL,
			       "UPDATE idempotency_keys SET status = $3::int,"
			       " response = $4 WHERE address = $1 AND key = $2",
			       address, key, st, body);
done:
	db_release(s->db, c);
	if (err)
		log_warn("idempotency key %s not recorded: %s", key,
			 fm_error_msg());
}

/* A key seen before: the first answer again, when the request is the
 * same one and was answered. */
static int replay(struct http_req *req, const struct idem_claim *claim)
{
	json_t *body = NULL;
	int err;

	if (strcmp(claim->stored_hash, claim->hash) != 0)
		return fm_error_set(FM_ECONFLICT,
				    "Idempotency-Key \"%s\" was already used "
				    "for a different request",
				    claim->key);
	if (claim->status == 0) {
		char after[24];

		snprintf(after, sizeof(after), "%lld", claim->lease_left);
		http_resp_header(req, "Retry-After", after);
		return fm_error_set(FM_ECONFLICT,
				    "a request with Idempotency-Key \"%s\" is "
				    "still being processed",
				    claim->key);
	}
	err = fj_parse(&body, claim->response, strlen(claim->response),
		       "stored response");
	if (err)
		return err;
	http_resp_header(req, "Idempotent-Replayed", "true");
	return http_respond_json(req, claim->status, body);
}

int svc_idempotent(void *arg, struct http_req *req, http_handler_fn handler,
		   void *handler_arg)
{
	struct svc *s = arg;
	const char *key = NULL;
	const char *address = http_req_auth(req);
	struct idem_claim claim = { 0 };
	char hash[65];
	int err;

	err = http_req_idempotency_key(req, &key);
	if (err)
		return err;
	if (!key || !address)
		return handler(req, handler_arg);
	request_hash(hash, req);
	claim.address = address;
	claim.key = key;
	claim.method = http_req_method(req);
	claim.path = http_req_target(req);
	claim.hash = hash;
	snprintf(claim.lease, sizeof(claim.lease), "%ld",
		 s->cfg.idempotency_lease_s);
	err = db_tx(s->db, DB_READ_COMMITTED, claim_fn, claim_drop, &claim);
	if (err)
		return err;
	if (!claim.fresh) {
		err = replay(req, &claim);
		goto done;
	}
	err = handler(req, handler_arg);
	if (err) {
		/* the error answer is recorded too: the same request gets it
		 * again */
		http_respond_error(req, err);
		err = FM_OK;
	}
	idem_store(s, address, key, http_resp_status(req),
		   http_resp_body(req, NULL) ? http_resp_body(req, NULL) : "",
		   http_resp_header_get(req, "Retry-After") != NULL);
done:
	free(claim.response);
	return err;
}

/* ---------------------------------------------------------- verification */

/* reqsig_verify on a request, at the current time; nonce_out
 * (REQSIG_NONCE_MAX + 1 bytes) gets the nonce for the replay check. */
static int verify_http(uint8_t out[CHAIN_ADDR_LEN], char *nonce_out,
		       const struct http_req *req, long max_skew_s)
{
	struct reqsig_msg m;
	const char *nonce = http_req_header(req, REQSIG_HDR_NONCE);
	int err;

	m.method = http_req_method(req);
	m.target = http_req_target(req);
	m.body = http_req_body(req, &m.body_len);
	err = reqsig_verify(out, &m, http_req_header(req, REQSIG_HDR_ADDRESS),
			    http_req_header(req, REQSIG_HDR_TIMESTAMP), nonce,
			    http_req_header(req, REQSIG_HDR_SIGNATURE),
			    (int64_t)time(NULL), max_skew_s);
	if (err)
		return err;
	snprintf(nonce_out, REQSIG_NONCE_MAX + 1, "%s", nonce);
	return FM_OK;
}

int svc_verify(void *arg, const struct http_req *req, char *out, size_t n)
{
	struct svc *s = arg;
	uint8_t addr[CHAIN_ADDR_LEN];
	char nonce[REQSIG_NONCE_MAX + 1];
	char hex[CHAIN_ADDR_HEX] = "0x";
	int err;

	err = verify_http(addr, nonce, req, s->cfg.signature_max_skew_s);
	if (err)
		return err;
	/* identities are lowercase addresses throughout the database */
	hex_encode(hex + 2, addr, CHAIN_ADDR_LEN);
	err = market_nonce_use(s->db, hex, nonce, s->cfg.signature_max_skew_s);
	if (err)
		return err;
	snprintf(out, n, "%s", hex);
	return FM_OK;
}

int svc_main(const struct svc_def *def, int argc, char **argv)
{
	struct svc s;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--routes") != 0)
			continue;
		printf("GET /healthz\nGET /metrics\n");
		for (size_t k = 0; k < def->n_routes; k++)
			printf("%s %s\n", def->routes[k].method,
			       def->routes[k].pattern);
		return 0;
	}
	if (!svc_init(&s, def->name, argc, argv, NULL, &rc))
		return rc;
	s.sweep = def->sweep;
	s.background = def->background;
	if (def->init && def->init(&s)) {
		fprintf(stderr, "fedmarket-%s: %s\n", def->name,
			fm_error_msg());
		svc_cleanup(&s);
		return 1;
	}
	rc = svc_serve(&s, def->routes, def->n_routes,
		       svc_listen(&s, (const char *)&s.cfg +
					      def->listen_offset));
	svc_cleanup(&s);
	return rc;
}
