/* Helpers for the HTTP tests: loopback ports, raw socket exchanges, and a
 * test request signature (a sha256 tag over method, target, body and
 * address) standing in for the EIP-191 one. */
#ifndef FM_TESTS_HTTP_SUPPORT_H
#define FM_TESTS_HTTP_SUPPORT_H

#include "core/buf.h"
#include "http/client.h"
#include "http/server.h"

#include <stddef.h>

/* $FM_PORT_BASE (55380 if unset) + 10 + k; k < 40. */
unsigned http_test_port(unsigned k);

/* http_server_start, retried for up to 5 s while the port is taken: the
 * test ports lie in the kernel's ephemeral range, so an outgoing
 * connection (anyone's) can hold one for a moment. */
int http_test_start(struct http_server *s);

/* Connects to 127.0.0.1:port; -1 on failure. Receive timeout 10 s. */
int http_test_connect(unsigned port);
/* Sends all of s. 0 or -1. */
int http_test_send(int fd, const char *s, size_t n);
/* Reads one HTTP response (headers, then Content-Length bytes) into out;
 * returns the status, or -1 on EOF/timeout before a full response. */
int http_test_read_response(int fd, struct buf *out);
/* Connects, sends raw, reads one response; returns its status. */
int http_test_raw(unsigned port, const char *raw, struct buf *out);
/* The value of a header in a raw response (copied into v); 0 if found. */
int http_test_header(const char *resp, const char *name, char *v,
		     size_t n);

/* Test signature: X-Test-Addr and X-Test-Sig headers. */
int http_test_sign(void *addr, const char *method, const char *target,
		   const void *body, size_t len, struct httpc_headers *h);
/* Accepts what http_test_sign made; FM_EAUTH otherwise; FM_EFORBIDDEN
 * for the address http_test_banned. */
int http_test_verify(void *arg, const struct http_req *req, char *out,
		     size_t out_n);
extern const char http_test_banned[];
/* The tag as http_test_sign computes it (hex into out, 65 bytes). */
int http_test_tag(char out[65], const char *method, const char *target,
		  const void *body, size_t len, const char *addr);

#endif
