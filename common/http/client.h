/* HTTP/JSON client on libcurl, for the CLIs and for services calling each
 * other. A client keeps its connection alive between requests and is not
 * thread-safe: use one per thread.
 *
 * Retries: a transport error or a 503 answer is retried up to
 * opts.retries times with exponential backoff and jitter (a Retry-After
 * header lengthens the pause, up to backoff_max_ms). Other statuses are
 * never retried. A POST or PATCH whose request may have reached the server
 * is retried only when it carries an Idempotency-Key. The signer runs for
 * every attempt, so each attempt has a fresh timestamp and nonce.
 *
 * Errors: a non-2xx answer with a JSON error body
 * {"error":{"code","message"}} comes back as the fm_err code of that name
 * with the service's message; other answers map from the status (404 ->
 * FM_ENOTFOUND, 409 -> FM_ECONFLICT, ...). Transport errors are
 * FM_EUNAVAIL (no connection), FM_ETIMEOUT, or FM_ETOOLARGE (an answer
 * over max_response). */
#ifndef FM_HTTP_CLIENT_H
#define FM_HTTP_CLIENT_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>

struct httpc;
struct httpc_headers;

/* Adds headers to one attempt of a request, computed from what is sent:
 * method, target (path and query exactly as sent) and body. Returns FM_OK
 * or an error that fails the request (not retried). */
typedef int (*httpc_sign_fn)(void *arg, const char *method,
			     const char *target, const void *body,
			     size_t len, struct httpc_headers *h);

struct httpc_opts {
	const char *base_url;    /* "http://127.0.0.1:8080" (no path) */
	long timeout_ms;         /* one attempt, from connect to last byte */
	long connect_timeout_ms;
	size_t max_response;     /* bytes of answer body at most */
	int retries;             /* further attempts after the first */
	long backoff_ms;         /* first pause; doubles each retry */
	long backoff_max_ms;
	httpc_sign_fn sign;      /* NULL: requests are not signed */
	void *sign_arg;
	const char *user_agent;
};

#define HTTPC_OPTS_INIT \
	{ NULL, 30000, 5000, 16u << 20, 3, 100, 2000, NULL, NULL, \
	  "fedmarket" }

struct httpc_req {
	const char *method;          /* GET, POST, PUT, PATCH, DELETE */
	const char *path;            /* "/v1/tasks?state=open" */
	const json_t *json;          /* the body as JSON, or: */
	const void *body;            /* a raw body of body_len bytes */
	size_t body_len;
	const char *content_type;    /* for a raw body */
	const char *idempotency_key; /* sent as Idempotency-Key */
	const char *request_id;      /* X-Request-Id; NULL: one is made */
};

struct httpc_resp {
	long status;     /* 0 when no answer was received */
	struct buf body; /* the answer's bytes */
	json_t *json;    /* parsed when the answer is JSON, else NULL */
	char request_id[65];
	int attempts;
};

int httpc_new(struct httpc **out, const struct httpc_opts *opts);
void httpc_free(struct httpc *c);

void httpc_resp_init(struct httpc_resp *r);
/* Frees the body and the JSON. Idempotent. */
void httpc_resp_cleanup(struct httpc_resp *r);

/* Sends req (retrying as above) and fills resp, which must have been
 * initialised; resp holds the last answer even when an error is returned.
 * Returns FM_OK for a 2xx answer. */
int httpc_send(struct httpc *c, const struct httpc_req *req,
	       struct httpc_resp *resp);

/* JSON shortcuts: on a 2xx answer *out is the parsed body (a new
 * reference; NULL when the body is empty). */
int httpc_get(struct httpc *c, const char *path, json_t **out);
int httpc_post(struct httpc *c, const char *path, const json_t *body,
	       const char *idempotency_key, json_t **out);
int httpc_delete(struct httpc *c, const char *path, json_t **out);

/* For signers: adds "name: value" to the attempt (at most 16 headers). */
int httpc_headers_add(struct httpc_headers *h, const char *name,
		      const char *value);

/* The fm_err code whose fm_err_name() is name; FM_EINTERNAL if none. */
int httpc_err_from_name(const char *name);
/* The fm_err code for an HTTP status without a JSON error body. */
int httpc_err_from_status(long status);

#endif
