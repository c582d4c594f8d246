/* Threads for the handlers of HTTP_SLOW routes: a handler that downloads
 * for minutes would otherwise hold the server thread that read its
 * request, and every other connection that thread serves would wait
 * (a second submission of the same assignment could not even be told
 * 409). The connection is suspended while the handler runs. */
#include "http/server_int.h"

#include "core/err.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

static void *slow_main(void *arg)
{
	struct http_server *s = arg;
	struct http_req *r;

	pthread_mutex_lock(&s->slow_lock);
	for (;;) {
		while (!s->slow_head && !s->slow_stop)
			pthread_cond_wait(&s->slow_cond, &s->slow_lock);
		r = s->slow_head;
		if (!r)
			break; /* stopping, and nothing is left */
		s->slow_head = r->slow_next;
		if (!s->slow_head)
			s->slow_tail = NULL;
		pthread_mutex_unlock(&s->slow_lock);
		log_ctx_set(r->id);
		http_srv_dispatch(r);
		log_ctx_set(NULL);
		atomic_store(&r->slow_state, 2);
		MHD_resume_connection(r->conn);
		pthread_mutex_lock(&s->slow_lock);
	}
	pthread_mutex_unlock(&s->slow_lock);
	return NULL;
}

int http_srv_slow_start(struct http_server *s)
{
	int any = 0, rc;

	for (size_t i = 0; i < s->n_routes; i++)
		any |= (s->routes[i].def.flags & HTTP_SLOW) != 0;
	if (!any)
		return FM_OK;
	s->slow_threads = calloc(s->o.threads, sizeof(*s->slow_threads));
	if (!s->slow_threads)
		return fm_error_set(FM_ENOMEM, "server: out of memory");
	s->slow_stop = 0;
	for (s->n_slow = 0; s->n_slow < s->o.threads; s->n_slow++) {
		rc = pthread_create(&s->slow_threads[s->n_slow], NULL,
				    slow_main, s);
		if (rc) {
			http_srv_slow_stop(s);
			return fm_error_set(FM_EINTERNAL, "server: slow "
					    "handler thread: %s", strerror(rc));
		}
	}
	return FM_OK;
}

void http_srv_slow_push(struct http_server *s, struct http_req *r)
{
	r->slow_next = NULL;
	pthread_mutex_lock(&s->slow_lock);
	if (s->slow_tail)
		s->slow_tail->slow_next = r;
	else
		s->slow_head = r;
	s->slow_tail = r;
	pthread_cond_signal(&s->slow_cond);
	pthread_mutex_unlock(&s->slow_lock);
}

void http_srv_slow_stop(struct http_server *s)
{
	if (!s->slow_threads)
		return;
	pthread_mutex_lock(&s->slow_lock);
	s->slow_stop = 1;
	pthread_cond_broadcast(&s->slow_cond);
	pthread_mutex_unlock(&s->slow_lock);
	for (unsigned i = 0; i < s->n_slow; i++)
		pthread_join(s->slow_threads[i], NULL);
	free(s->slow_threads);
	s->slow_threads = NULL;
	s->n_slow = 0;
}
