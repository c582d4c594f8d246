/* The server's life: routes checked at creation, the listening socket,
 * libmicrohttpd's thread pool, the wait for a signal, and the drain of
 * requests in flight. A request's own way is in server_request.c. */
#include "http/server_int.h"

#include "core/err.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH",
				       "DELETE", NULL };

static int check_route(const struct http_server *s, size_t i)
{
	struct croute *c = &s->routes[i];
	int known = 0, err;

	for (int m = 0; methods[m]; m++)
		if (c->def.method && strcmp(c->def.method, methods[m]) == 0)
			known = 1;
	if (!known)
		return fm_error_set(FM_EINVAL, "route %s: method '%s' is not "
				    "one of GET, POST, PUT, PATCH, DELETE",
				    c->def.pattern ? c->def.pattern : "(null)",
				    c->def.method ? c->def.method : "(null)");
	err = http_pattern_parse(&c->pat, c->def.pattern);
	if (err)
		return fm_error_prefix("route %s", c->def.method);
	if (!c->def.handler)
		return fm_error_set(FM_EINVAL, "route %s %s: no handler",
				    c->def.method, c->def.pattern);
	if ((c->def.flags & HTTP_SIGNED) && !s->o.verify)
		return fm_error_set(FM_EINVAL, "route %s %s is signed but the "
				    "server has no verifier", c->def.method,
				    c->def.pattern);
	if ((c->def.flags & HTTP_IDEMPOTENT) && !s->o.idempotent)
		return fm_error_set(FM_EINVAL, "route %s %s is idempotent but "
				    "the server has no idempotency handler",
				    c->def.method, c->def.pattern);
	for (size_t j = 0; j < i; j++)
		if (strcmp(s->routes[j].def.method, c->def.method) == 0 &&
		    http_pattern_same(&s->routes[j].pat, &c->pat))
			return fm_error_set(FM_EINVAL, "route %s %s: same as "
					    "route %s %s", c->def.method,
					    c->def.pattern,
					    s->routes[j].def.method,
					    s->routes[j].def.pattern);
	return FM_OK;
}

int http_server_new(struct http_server **out,
		    const struct http_server_opts *opts,
		    const struct http_route *routes, size_t n_routes,
		    void *arg)
{
	struct http_server *s = NULL;
	int err = FM_OK;

	s = calloc(1, sizeof(*s));
	if (!s)
		return fm_error_set(FM_ENOMEM, "server: out of memory");
	s->o = *opts;
	s->arg = arg;
	s->listen_fd = -1;
	s->wake_fd = -1;
	if (!s->o.name)
		s->o.name = "http";
	if (!s->o.threads)
		s->o.threads = 1;
	if (!s->o.listen) {
		err = fm_error_set(FM_EINVAL, "server: no listen address");
		goto done;
	}
	s->n_routes = n_routes + http_srv_n_builtin;
	s->routes = calloc(s->n_routes, sizeof(*s->routes));
	if (!s->routes) {
		err = fm_error_set(FM_ENOMEM, "server: out of memory");
		goto done;
	}
	for (size_t i = 0; i < s->n_routes; i++) {
		s->routes[i].def = i < n_routes ? routes[i]
						: http_srv_builtin[i - n_routes];
		err = check_route(s, i);
		if (err)
			goto done;
	}
	err = http_metrics_new(&s->metrics);
	if (err)
		goto done;
	err = http_srv_conns_init(s);
	pthread_mutex_init(&s->slow_lock, NULL);
	pthread_cond_init(&s->slow_cond, NULL);
	s->conns_ready = 1;
	if (err)
		goto done;
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0)
		err = fm_error_set(FM_EINTERNAL, "server: eventfd: %s",
				   strerror(errno));
done:
	if (err) {
		http_server_free(s);
		return err;
	}
	*out = s;
	return FM_OK;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	if (s->d)
		http_server_stop(s, 0);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->conns_ready) {
		http_srv_conns_cleanup(s);
		pthread_mutex_destroy(&s->slow_lock);
		pthread_cond_destroy(&s->slow_cond);
	}
	http_metrics_free(s->metrics);
	free(s->routes);
	free(s);
}

/* Binds "host:port" ("[v6]:port"; empty host or "*" is every address). */
static int bind_listen(struct http_server *s, int *family)
{
	char host[256], port[8];
	const char *l = s->o.listen, *colon;
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, rc, err = FM_OK;

	if (l[0] == '[') {
		const char *e = strchr(l, ']');
		if (!e || e[1] != ':')
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(e - l - 1), l + 1);
		colon = e + 1;
	} else {
		colon = strrchr(l, ':');
		if (!colon || (size_t)(colon - l) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - l), l);
	}
	if (!colon[1] || strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atoi(colon + 1) > 65535)
		goto bad;
	snprintf(port, sizeof(port), "%s", colon + 1);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port,
			 &hints, &ai);
	if (rc)
		return fm_error_set(FM_EINVAL, "listen %s: %s", l,
				    gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = fm_error_set(FM_EUNAVAIL, "listen %s: %s", l,
				   strerror(errno));
		goto done;
	}
	*family = ai->ai_family;
	s->port = ntohs(ss.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&ss)->sin6_port
				: ((struct sockaddr_in *)&ss)->sin_port);
	s->listen_fd = fd;
	fd = -1;
done:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return err;
bad:
	return fm_error_set(FM_EINVAL, "listen '%s': expected host:port",
			    l);
}

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int http_server_start(struct http_server *s)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;
	sigset_t set;
	unsigned conns;
	int family = AF_INET, err;

	FM_ASSERT(!s->d);
	block_signals(&set);
	atomic_store(&s->draining, 0);
	if (!s->o.request_timeout_s)
		s->o.request_timeout_s = 1;
	/* libmicrohttpd refuses connections past its limit, and accept()
	 * fails past the descriptor limit: both far above what an
	 * attacker's trickling sockets reach cheaply */
	conns = http_srv_fd_capacity(s->o.max_connections);
	if (conns < s->o.max_connections)
		log_warn("%s: %u connections at most (max_connections is %u; "
			 "raise the hard limit of open files)", s->o.name,
			 conns, s->o.max_connections);
	if (conns < s->o.threads)
		conns = s->o.threads;
	err = bind_listen(s, &family);
	if (!err)
		err = http_srv_slow_start(s);
	if (err) {
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		s->listen_fd = -1;
		s->port = 0;
		return err;
	}
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(
		flags, 0, NULL, NULL, http_srv_on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, http_srv_on_mhd_log, s,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->o.threads,
		MHD_OPTION_CONNECTION_LIMIT, conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)s->o.max_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->o.idle_timeout_s,
		MHD_OPTION_URI_LOG_CALLBACK, http_srv_on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, http_srv_on_done, s,
		MHD_OPTION_NOTIFY_CONNECTION, http_srv_on_conn, s,
		MHD_OPTION_END);
	if (!s->d) {
		http_srv_slow_stop(s);
		close(s->listen_fd);
		s->listen_fd = -1;
		s->port = 0;
		return fm_error_set(FM_EUNAVAIL, "listen %s: the HTTP daemon "
				    "did not start", s->o.listen);
	}
	err = http_srv_reaper_start(s);
	if (err) {
		http_server_stop(s, 0);
		return err;
	}
	log_info("%s listening on %s (port %u, %u threads, %u connections, "
		 "requests within %u s)", s->o.name, s->o.listen,
		 (unsigned)s->port, s->o.threads, conns,
		 s->o.request_timeout_s);
	return FM_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->d ? s->port : 0;
}

struct http_metrics *http_server_metrics(struct http_server *s)
{
	return s->metrics;
}

void http_server_shutdown(struct http_server *s)
{
	uint64_t one = 1;
	ssize_t rc = write(s->wake_fd, &one, sizeof(one));

	(void)rc; /* a full counter already means "wake up" */
}

/* The eventfd of the server in http_server_run, for the signal handler:
 * threads that libraries start before main (OpenBLAS does) do not block
 * signals, so the handler may run on any thread. */
static volatile sig_atomic_t run_signal;
static int run_wake_fd = -1;

static void on_signal(int sig)
{
	int saved = errno;
	uint64_t one = 1;

	run_signal = sig;
	if (run_wake_fd >= 0 && write(run_wake_fd, &one, sizeof(one)) < 0)
		run_signal = sig; /* the counter is already non-zero */
	errno = saved;
}

int http_server_run(struct http_server *s)
{
	struct sigaction sa = { 0 }, old_int, old_term;
	struct pollfd pfd = { .fd = s->wake_fd, .events = POLLIN };
	sigset_t set;
	uint64_t v;

	FM_ASSERT(run_wake_fd < 0); /* one running server per process */
	run_signal = 0;
	run_wake_fd = s->wake_fd;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	/* this thread takes the signals; the server's threads keep them
	 * blocked so their system calls are not interrupted */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR && !run_signal)
		;
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	run_wake_fd = -1;
	if (read(s->wake_fd, &v, sizeof(v)) < 0)
		v = 0; /* nothing left to consume */
	if (run_signal)
		log_info("%s: %s received, draining", s->o.name,
			 strsignal(run_signal));
	else
		log_info("%s: shutdown requested, draining", s->o.name);
	return http_server_stop(s, s->o.drain_ms);
}

int http_server_stop(struct http_server *s, unsigned drain_ms)
{
	struct timespec now, end, nap = { 0, 2000000 };
	MHD_socket lfd;
	int left;

	if (!s->d)
		return FM_OK;
	atomic_store(&s->draining, 1);
	lfd = MHD_quiesce_daemon(s->d);
	/* the kernel would still complete handshakes on the open socket:
	 * stop listening now, close once the threads are gone */
	if (lfd != MHD_INVALID_SOCKET)
		shutdown(lfd, SHUT_RD);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += drain_ms / 1000;
	end.tv_nsec += (long)(drain_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (atomic_load(&s->in_flight) <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		nanosleep(&nap, NULL);
	}
	left = atomic_load(&s->in_flight);
	http_srv_reaper_stop(s);
	/* slow handlers finish (the daemon's threads would wait for theirs
	 * too) before the daemon frees their connections */
	http_srv_slow_stop(s);
	MHD_stop_daemon(s->d);
	s->d = NULL;
	/* after quiesce the listening socket is ours to close */
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	s->listen_fd = -1;
	if (left > 0) {
		log_warn("%s stopped: %d requests were still in flight after "
			 "%u ms", s->o.name, left, drain_ms);
		return fm_error_set(FM_ETIMEOUT, "%s: %d requests still in "
				    "flight after %u ms", s->o.name, left,
				    drain_ms);
	}
	log_info("%s stopped", s->o.name);
	return FM_OK;
}
