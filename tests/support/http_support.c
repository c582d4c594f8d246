#include "http_support.h"

#include "core/err.h"
#include "core/sha256.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

const char http_test_banned[] = "0x00000000000000000000000000000000000000bb";

unsigned http_test_port(unsigned k)
{
	const char *b = getenv("FM_PORT_BASE");
	unsigned base = b && *b ? (unsigned)atoi(b) : 25380;

	return base + 10 + k;
}

int http_test_start(struct http_server *s)
{
	struct timespec nap = { 0, 100 * 1000000L };
	int err = http_server_start(s);

	for (int i = 0; i < 50 && err == FM_EUNAVAIL &&
			strstr(fm_error_msg(), "in use");
	     i++) {
		nanosleep(&nap, NULL);
		err = http_server_start(s);
	}
	return err;
}

int http_test_connect(unsigned port)
{
	struct sockaddr_in a = { 0 };
	struct timeval tv = { 10, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

int http_test_send(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int http_test_header(const char *resp, const char *name, char *v, size_t n)
{
	size_t nl = strlen(name);
	const char *end = strstr(resp, "\r\n\r\n");

	for (const char *p = strstr(resp, "\r\n"); p && (!end || p < end);
	     p = strstr(p + 2, "\r\n")) {
		const char *h = p + 2;
		if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
			h += nl + 1;
			h += strspn(h, " ");
			snprintf(v, n, "%.*s", (int)strcspn(h, "\r\n"), h);
			return 0;
		}
	}
	return -1;
}

static int read_response(int fd, struct buf *out, int head_only)
{
	char chunk[4096], v[32];
	size_t head = 0;
	long want = -1;

	buf_reset(out);
	for (;;) {
		if (out->data && !head) {
			char *e = strstr(out->data, "\r\n\r\n");
			if (e) {
				head = (size_t)(e - out->data) + 4;
				want = head_only ||
						       http_test_header(
							       out->data,
							       "Content-Length",
							       v, sizeof(v))
					       ? 0
					       : atol(v);
			}
		}
		if (head && out->len >= head + (size_t)want)
			return atoi(out->data + 9);
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
		if (r <= 0)
			return -1;
		if (buf_append(out, chunk, (size_t)r))
			return -1;
	}
}

int http_test_read_response(int fd, struct buf *out)
{
	return read_response(fd, out, 0);
}

int http_test_raw(unsigned port, const char *raw, struct buf *out)
{
	int fd = http_test_connect(port), st = -1;

	if (fd < 0)
		return -1;
	/* the answer to HEAD has a Content-Length but no body */
	if (http_test_send(fd, raw, strlen(raw)) == 0)
		st = read_response(fd, out, strncmp(raw, "HEAD ", 5) == 0);
	close(fd);
	return st;
}

int http_test_tag(char out[65], const char *method, const char *target,
		  const void *body, size_t len, const char *addr)
{
	struct buf b = BUF_INIT(SIZE_MAX);
	int err = buf_appendf(&b, "%s\n%s\n", method, target);

	if (!err)
		err = buf_append(&b, body, len);
	if (!err)
		err = buf_appendf(&b, "\n%s", addr);
	if (!err)
		fm_sha256_hex(out, b.data, b.len);
	buf_cleanup(&b);
	return err;
}

int http_test_sign(void *addr, const char *method, const char *target,
		   const void *body, size_t len, struct httpc_headers *h)
{
	char tag[65];
	int err;

	err = http_test_tag(tag, method, target, body, len, addr);
	if (!err)
		err = httpc_headers_add(h, "X-Test-Addr", addr);
	return err ? err : httpc_headers_add(h, "X-Test-Sig", tag);
}

int http_test_verify(void *arg, const struct http_req *req, char *out,
		     size_t out_n)
{
	const char *addr = http_req_header(req, "X-Test-Addr");
	const char *sig = http_req_header(req, "X-Test-Sig");
	const char *body;
	char tag[65];
	size_t len;

	(void)arg;
	if (!addr || !sig)
		return fm_error_set(FM_EAUTH, "missing X-Test-Addr or "
				    "X-Test-Sig");
	body = http_req_body(req, &len);
	if (http_test_tag(tag, http_req_method(req), http_req_target(req),
			  body, len, addr))
		return fm_error_code();
	if (strcmp(tag, sig) != 0)
		return fm_error_set(FM_EAUTH, "signature does not match the "
				    "request");
	if (strcmp(addr, http_test_banned) == 0)
		return fm_error_set(FM_EFORBIDDEN, "%s may not do this",
				    addr);
	snprintf(out, out_n, "%s", addr);
	return FM_OK;
}
