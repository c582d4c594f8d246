/* Responses: the body and headers a handler sets, JSON errors, and the
 * answer handed to libmicrohttpd. */
#include "http/server_int.h"

#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

	if (req->n_hdr == HTTP_SRV_RESP_HEADERS_MAX)
		return fm_error_set(FM_EINTERNAL, "response header %s: more "
				    "than %d headers", name,
				    HTTP_SRV_RESP_HEADERS_MAX);
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

const char *http_resp_header_get(const struct http_req *req,
				 const char *name)
{
	for (int i = 0; i < req->n_hdr; i++)
		if (strcasecmp(req->hdr[i].name, name) == 0)
			return req->hdr[i].value;
	return NULL;
}

void http_srv_fail(struct http_req *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fm_error_vset(code, fmt, ap);
	va_end(ap);
	http_respond_error(r, code);
}

enum MHD_Result http_srv_queue(struct http_req *r)
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
