/* Connections: each one's socket and when the request it awaits began,
 * kept from libmicrohttpd's connection callback, and a reaper thread
 * that shuts down the sockets whose request has not arrived whole by
 * the deadline. libmicrohttpd's own timeout counts silence only, so a
 * client sending a byte now and then would hold a connection for ever.
 * Also the descriptor limit, raised so that connections are not bounded
 * by the 1024 descriptors a process starts with. */
#include "http/server_int.h"

#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

/* How often the reaper looks. */
#define REAP_EVERY_MS 200
/* Descriptors kept for everything but connections (database, storage,
 * epoll and eventfds, logs). */
#define FD_RESERVE 512

struct http_conn {
	int fd;
	int reading;       /* a request is awaited or being read */
	int cut;           /* already shut down */
	struct timespec since;
	struct http_conn *prev, *next;
};

static double elapsed_s(const struct timespec *since,
			const struct timespec *now)
{
	return (double)(now->tv_sec - since->tv_sec) +
	       (double)(now->tv_nsec - since->tv_nsec) / 1e9;
}

static double conns_open(void *arg)
{
	struct http_server *s = arg;

	return (double)atomic_load(&s->n_conns);
}

int http_srv_conns_init(struct http_server *s)
{
	int err;

	pthread_mutex_init(&s->conns_lock, NULL);
	pthread_cond_init(&s->reaper_cond, NULL);
	err = http_metrics_gauge_fn(s->metrics, "fm_http_connections_open",
				    "Open HTTP connections.", conns_open, s);
	if (err)
		return err;
	return http_metrics_counter(s->metrics, "fm_http_requests_cut_total",
				    "Connections cut because their request "
				    "did not arrive within the deadline.",
				    NULL, &s->cut);
}

void http_srv_conns_cleanup(struct http_server *s)
{
	pthread_mutex_destroy(&s->conns_lock);
	pthread_cond_destroy(&s->reaper_cond);
}

void http_srv_on_conn(void *cls, struct MHD_Connection *conn,
		      void **socket_ctx,
		      enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	struct http_conn *c = *socket_ctx;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn,
					     MHD_CONNECTION_INFO_CONNECTION_FD);
		c = calloc(1, sizeof(*c));
		if (!c || !ci) {
			/* untracked, it has the idle timeout still */
			free(c);
			return;
		}
		c->fd = ci->connect_fd;
		c->reading = 1;
		clock_gettime(CLOCK_MONOTONIC, &c->since);
		pthread_mutex_lock(&s->conns_lock);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		pthread_mutex_unlock(&s->conns_lock);
		atomic_fetch_add(&s->n_conns, 1);
		*socket_ctx = c;
		return;
	}
	if (!c)
		return;
	/* libmicrohttpd closes the socket after this returns: unlinked under
	 * the lock, the reaper never shuts down a descriptor reused since */
	pthread_mutex_lock(&s->conns_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&s->conns_lock);
	atomic_fetch_sub(&s->n_conns, 1);
	free(c);
	*socket_ctx = NULL;
}

void http_srv_conn_reading(struct http_server *s,
			   struct MHD_Connection *conn, int reading)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn,
					MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_conn *c = ci ? ci->socket_context : NULL;

	if (!c)
		return;
	pthread_mutex_lock(&s->conns_lock);
	c->reading = reading;
	if (reading)
		clock_gettime(CLOCK_MONOTONIC, &c->since);
	pthread_mutex_unlock(&s->conns_lock);
}

/* Cuts the connections past the deadline; returns how many. */
static int reap(struct http_server *s, const struct timespec *now)
{
	double limit = (double)s->o.request_timeout_s;
	int n = 0;

	for (struct http_conn *c = s->conns; c; c = c->next) {
		if (!c->reading || c->cut || elapsed_s(&c->since, now) < limit)
			continue;
		/* libmicrohttpd sees the end of the stream and closes */
		shutdown(c->fd, SHUT_RDWR);
		c->cut = 1;
		n++;
	}
	return n;
}

static void *reaper_main(void *arg)
{
	struct http_server *s = arg;
	struct timespec now, wake;
	int n;

	pthread_mutex_lock(&s->conns_lock);
	while (!s->reaper_stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		n = reap(s, &now);
		if (n) {
			http_metric_add(s->cut, NULL, n);
			log_debug("%s: cut %d connection(s) whose request did "
				  "not arrive within %u s", s->o.name, n,
				  s->o.request_timeout_s);
		}
		clock_gettime(CLOCK_REALTIME, &wake);
		wake.tv_nsec += REAP_EVERY_MS * 1000000L;
		if (wake.tv_nsec >= 1000000000L) {
			wake.tv_sec++;
			wake.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->reaper_cond, &s->conns_lock, &wake);
	}
	pthread_mutex_unlock(&s->conns_lock);
	return NULL;
}

int http_srv_reaper_start(struct http_server *s)
{
	int rc;

	s->reaper_stop = 0;
	rc = pthread_create(&s->reaper, NULL, reaper_main, s);
	if (rc)
		return fm_error_set(FM_EINTERNAL, "server: reaper thread: %s",
				    strerror(rc));
	s->reaper_started = 1;
	return FM_OK;
}

void http_srv_reaper_stop(struct http_server *s)
{
	if (!s->reaper_started)
		return;
	pthread_mutex_lock(&s->conns_lock);
	s->reaper_stop = 1;
	pthread_cond_signal(&s->reaper_cond);
	pthread_mutex_unlock(&s->conns_lock);
	pthread_join(s->reaper, NULL);
	s->reaper_started = 0;
}

unsigned http_srv_fd_capacity(unsigned want)
{
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return want;
	room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE
					    : rl.rlim_cur / 2;
	return room < want ? (unsigned)room : want;
}
