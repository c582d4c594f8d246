/* The HTTP server's request path on raw bytes from a client:
 * libmicrohttpd's parser, then the server's own handling (body framing,
 * routing and typed path parameters, query getters, body limits and
 * chunked bodies, JSON bodies, the verifier of signed routes, the
 * idempotency wrapper, handlers run apart (HTTP_SLOW: the connection
 * suspended and resumed), error answers, the connection tracker). A server
 * starts once on loopback; each input goes on a new connection, which is
 * shut for writing and read until the server closes it. */
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h_item(struct http_req *req, void *arg)
{
	long long id;
	int err = http_req_param_int(req, "id", 0, 1000000, &id);

	(void)arg;
	if (err)
		return err;
	return http_respond_json(req, 200, json_pack("{s:I}", "id", id));
}

static int h_typed(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200,
				 json_pack("{s:s, s:s, s:s}", "a",
					   http_req_param(req, "a"), "h",
					   http_req_param(req, "h"), "u",
					   http_req_param(req, "u")));
}

static int h_query(struct http_req *req, void *arg)
{
	static const char *const states[] = { "open", "closed", NULL };
	static const char *const known[] = { "limit", "state", "flag",
					     "owner", "name", NULL };
	long long limit = 0;
	int state = 0, flag = 0, has_owner = 0, err;
	const char *name = NULL;
	char owner[43];

	(void)arg;
	err = http_req_query_no_unknown(req, known);
	if (!err)
		err = http_req_query_int(req, "limit", 1, 100, 10, &limit);
	if (!err)
		err = http_req_query_enum(req, "state", states, 0, &state);
	if (!err)
		err = http_req_query_bool(req, "flag", 0, &flag);
	if (!err)
		err = http_req_query_addr(req, "owner", owner, &has_owner);
	if (!err)
		err = http_req_query_str(req, "name", 8, "none", &name);
	if (err)
		return err;
	return http_respond_json(req, 200,
				 json_pack("{s:I, s:s, s:b, s:s, s:s}", "limit",
					   limit, "state", states[state],
					   "flag", flag, "owner",
					   has_owner ? owner : "", "name",
					   name));
}

static int h_echo(struct http_req *req, void *arg)
{
	json_t *j = NULL;
	long long n;
	int err;

	(void)arg;
	err = http_req_json(req, &j);
	if (!err)
		err = fj_int(j, "", "n", 0, 10, &n);
	if (err) {
		json_decref(j);
		return err;
	}
	return http_respond_json(req, 201, j);
}

static int h_signed(struct http_req *req, void *arg)
{
	(void)arg;
	return http_respond_json(req, 200,
				 json_pack("{s:s}", "who", http_req_auth(req)));
}

/* Accepts an X-Fuzz-Addr of 1 to 42 letters and digits. */
static int verify(void *arg, const struct http_req *req, char *out,
		  size_t out_n)
{
	const char *a = http_req_header(req, "X-Fuzz-Addr");
	size_t n = a ? strlen(a) : 0;

	(void)arg;
	if (n == 0 || n > 42 || strspn(a, "0123456789abcdefx") != n)
		return fm_error_set(FM_EAUTH, "X-Fuzz-Addr: missing or bad");
	snprintf(out, out_n, "%s", a);
	return FM_OK;
}

/* The wrapper's part that reads the request: its key. */
static int idempotent(void *arg, struct http_req *req, http_handler_fn fn,
		      void *fn_arg)
{
	const char *key = NULL;
	int err = http_req_idempotency_key(req, &key);

	(void)arg;
	return err ? err : fn(req, fn_arg);
}

static const struct http_route routes[] = {
	{ "GET", "/items/{id:int}", h_item, 0, 0 },
	{ "GET", "/t/{a:addr}/{h:hash}/{u:uuid}", h_typed, 0, 0 },
	{ "GET", "/q", h_query, 0, 0 },
	{ "POST", "/echo", h_echo, 256, 0 },
	{ "PUT", "/echo", h_echo, 0, HTTP_SLOW },
	{ "POST", "/signed", h_signed, 1024, HTTP_SIGNED | HTTP_IDEMPOTENT },
};

static struct http_server *srv;
static uint16_t port;

static int start(void)
{
	struct http_server_opts o = HTTP_SERVER_OPTS_INIT;
	sigset_t set;

	log_init("http_fuzz", LOG_OFF, 0);
	o.listen = "127.0.0.1:0";
	o.name = "fuzzd";
	o.threads = 2;
	o.max_connections = 64;
	o.idle_timeout_s = 2;
	o.request_timeout_s = 3;
	o.max_body = 4096;
	o.access_log = 0;
	o.verify = verify;
	o.idempotent = idempotent;
	if (http_server_new(&srv, &o, routes,
			    sizeof(routes) / sizeof(routes[0]), NULL) ||
	    http_server_start(srv)) {
		fprintf(stderr, "http_fuzz: %s\n", fm_error_msg());
		abort();
	}
	port = http_server_port(srv);
	/* the server's threads keep SIGINT and SIGTERM blocked; libFuzzer's
	 * own thread takes them again */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return 0;
}

/* Sends the input, waits for the first answer (50 ms at most), closes
 * the sending side, and reads until the server closes (or 5 s pass: a
 * hang shows as libFuzzer's timeout). The end of the stream must come
 * after the server read the bytes: sent with them, libmicrohttpd's
 * edge-triggered epoll would see it only at the idle timeout. */
static void exchange(const uint8_t *data, size_t size)
{
	struct sockaddr_in a = { 0 };
	char buf[65536];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return;
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto done;
	for (size_t off = 0; off < size;) {
		ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		(void)poll(&p, 1, 50);
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 5000) <= 0 ||
		    recv(fd, buf, sizeof(buf), 0) <= 0)
			break;
	}
done:
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready)
		ready = !start();
	if (size > 65536)
		return 0;
	exchange(data, size);
	return 0;
}
