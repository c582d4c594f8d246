/* The request as a handler reads it: method, target, headers, body,
 * path parameters and query parameters, each checked against what the
 * handler expects. */
#include "http/server_int.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>
#include <string.h>

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
		http_srv_quote(q, sizeof(q), v);
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
		http_srv_quote(q, sizeof(q), v);
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
		http_srv_quote(q, sizeof(q), v);
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
	http_srv_quote(q, sizeof(q), v);
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
		http_srv_quote(q, sizeof(q), v);
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
	http_srv_quote(u->bad, sizeof(u->bad), key);
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

int http_req_json(const struct http_req *req, json_t **out)
{
	if (req->body.len == 0)
		return fm_error_set(FM_EINVAL, "request body: expected a JSON "
				    "document, got an empty body");
	return fj_parse(out, req->body.data, req->body.len, "request body");
}
