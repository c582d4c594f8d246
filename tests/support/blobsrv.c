#include "blobsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_PATHS 64

struct blobsrv {
	char root[512];
	int fd;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping, active, held;
	char hold[256];
	unsigned hold_gen; /* bumped by each release */
	struct {
		char path[256];
		int gets;
	} count[MAX_PATHS];
	_Atomic uint64_t bytes;
};

struct conn {
	struct blobsrv *b;
	int fd;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void count_get(struct blobsrv *b, const char *path)
{
	int i;

	for (i = 0; i < MAX_PATHS && b->count[i].path[0]; i++)
		if (strcmp(b->count[i].path, path) == 0)
			break;
	if (i == MAX_PATHS)
		return;
	snprintf(b->count[i].path, sizeof(b->count[i].path), "%s", path);
	b->count[i].gets++;
}

/* Sends n bytes of file fd; 0 or -1. */
static int send_file(struct blobsrv *b, int sock, int fd, uint64_t n)
{
	char buf[65536];

	while (n) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));

		if (r <= 0 || send_all(sock, buf, (size_t)r))
			return -1;
		atomic_fetch_add(&b->bytes, (uint64_t)r);
		n -= (uint64_t)r;
	}
	return 0;
}

/* Waits for a release; 0, or -1 when the server stops. */
static int wait_release(struct blobsrv *b)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	unsigned gen = b->hold_gen;
	b->held++;
	while (!b->stopping && gen == b->hold_gen)
		pthread_cond_wait(&b->cond, &b->lock);
	b->held--;
	rc = b->stopping ? -1 : 0;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static void serve(struct blobsrv *b, int sock)
{
	char req[8192], method[8], path[512], full[1100], head[256];
	size_t got = 0;
	struct stat st;
	int fd = -1, held;

	while (got < sizeof(req) - 1) {
		ssize_t r = recv(sock, req + got, sizeof(req) - 1 - got, 0);

		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (sscanf(req, "%7s /%511s", method, path) != 2 ||
	    strstr(path, "..") || path[0] == '/') {
		const char *bad = "HTTP/1.1 400 Bad Request\r\nContent-Length:"
				  " 0\r\nConnection: close\r\n\r\n";
		send_all(sock, bad, strlen(bad));
		return;
	}
	snprintf(full, sizeof(full), "%s/%s", b->root, path);
	fd = open(full, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0"
				 "\r\nConnection: close\r\n\r\n";
		send_all(sock, nf, strlen(nf));
		goto done;
	}
	snprintf(head, sizeof(head),
		 "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n"
		 "Content-Type: application/octet-stream\r\n"
		 "Connection: close\r\n\r\n",
		 (long long)st.st_size);
	if (send_all(sock, head, strlen(head)) || strcmp(method, "GET"))
		goto done;
	pthread_mutex_lock(&b->lock);
	count_get(b, path);
	held = b->hold[0] && strcmp(b->hold, path) == 0;
	pthread_mutex_unlock(&b->lock);
	if (held) {
		uint64_t half = (uint64_t)st.st_size / 2;

		if (send_file(b, sock, fd, half) || wait_release(b))
			goto done;
		send_file(b, sock, fd, (uint64_t)st.st_size - half);
	} else {
		send_file(b, sock, fd, (uint64_t)st.st_size);
	}
done:
	if (fd >= 0)
		close(fd);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct blobsrv *b = c->b;

	serve(b, c->fd);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&b->lock);
	b->active--;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct blobsrv *b = arg;
	struct pollfd p = { .fd = b->fd, .events = POLLIN };

	for (;;) {
		pthread_mutex_lock(&b->lock);
		int stop = b->stopping;
		pthread_mutex_unlock(&b->lock);
		if (stop)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		int fd = accept(b->fd, NULL, NULL);
		if (fd < 0)
			continue;
		struct conn *c = malloc(sizeof(*c));
		pthread_t t;

		if (!c) {
			close(fd);
			continue;
		}
		struct timeval tv = { 5, 0 };

		/* a client that never sends must not keep stop waiting */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		c->b = b;
		c->fd = fd;
		pthread_mutex_lock(&b->lock);
		b->active++;
		pthread_mutex_unlock(&b->lock);
		if (pthread_create(&t, NULL, conn_main, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&b->lock);
			b->active--;
			pthread_mutex_unlock(&b->lock);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

int blobsrv_start(struct blobsrv **out, const char *root, int port)
{
	struct blobsrv *b = calloc(1, sizeof(*b));
	struct sockaddr_in a = { 0 };
	int one = 1;

	if (!b)
		return -1;
	snprintf(b->root, sizeof(b->root), "%s", root);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (b->fd < 0 ||
	    setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(b->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(b->fd, 128) ||
	    pthread_create(&b->acceptor, NULL, accept_main, b)) {
		if (b->fd >= 0)
			close(b->fd);
		free(b);
		return -1;
	}
	*out = b;
	return 0;
}

void blobsrv_stop(struct blobsrv *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = 1;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->acceptor, NULL);
	close(b->fd);
	pthread_mutex_lock(&b->lock);
	while (b->active > 0)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

void blobsrv_hold(struct blobsrv *b, const char *path)
{
	pthread_mutex_lock(&b->lock);
	snprintf(b->hold, sizeof(b->hold), "%s", path ? path : "");
	pthread_mutex_unlock(&b->lock);
}

void blobsrv_release(struct blobsrv *b)
{
	pthread_mutex_lock(&b->lock);
	b->hold[0] = '\0';
	b->hold_gen++;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

int blobsrv_gets(struct blobsrv *b, const char *path)
{
	int n = 0;

	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < MAX_PATHS && b->count[i].path[0]; i++)
		if (strcmp(b->count[i].path, path) == 0)
			n = b->count[i].gets;
	pthread_mutex_unlock(&b->lock);
	return n;
}

int blobsrv_held(struct blobsrv *b)
{
	int n;

	pthread_mutex_lock(&b->lock);
	n = b->held;
	pthread_mutex_unlock(&b->lock);
	return n;
}

uint64_t blobsrv_bytes(struct blobsrv *b)
{
	return atomic_load(&b->bytes);
}
