/* What the server counts of its answers, and its built-in routes:
 * /healthz and /metrics (route counters and latency histograms in the
 * Prometheus text format, then the service's own metrics). */
#include "http/server_int.h"

#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

#define N_BUCKETS HTTP_SRV_BUCKETS
#define STATUS_MIN HTTP_SRV_STATUS_MIN
#define STATUS_SLOTS HTTP_SRV_STATUS_SLOTS

/* Upper bounds of the latency buckets in microseconds; the last bucket
 * is +Inf. */
static const uint64_t bucket_us[] = { 500,    1000,    2500,   5000,
				      10000,  25000,   50000,  100000,
				      250000, 500000,  1000000, 2500000,
				      5000000, 10000000 };
_Static_assert(sizeof(bucket_us) / sizeof(bucket_us[0]) + 1 == N_BUCKETS,
	       "one bound per bucket but the last");

void http_srv_stats_add(struct route_stats *st, int status, uint64_t us)
{
	size_t b = 0;

	if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_SLOTS)
		atomic_fetch_add_explicit(&st->status[status - STATUS_MIN], 1,
					  memory_order_relaxed);
	while (b < N_BUCKETS - 1 && us > bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&st->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->sum_us, us, memory_order_relaxed);
}

static int health_handler(struct http_req *req, void *arg)
{
	struct http_server *s = req->srv;
	int err;

	(void)arg;
	if (atomic_load(&s->draining))
		return fm_error_set(FM_EUNAVAIL, "%s is shutting down",
				    s->o.name);
	if (s->o.health) {
		err = s->o.health(s->o.health_arg);
		if (err) {
			/* the detail (hosts, ports) is for the operator, not
			 * for whoever asks */
			log_warn("%s is not ready: %s", s->o.name,
				 fm_error_msg());
			return fm_error_set(FM_EUNAVAIL, "%s is not ready",
					    s->o.name);
		}
	}
	return http_respond_json(req, 200,
				 json_pack("{s:s, s:s}", "status", "ok",
					   "service", s->o.name));
}

/* name{route="...",method="..." -- the caller closes the braces. */
static int render_series(struct buf *b, const char *name,
			 const struct croute *c)
{
	int err = buf_appendf(b, "%s{route=\"", name);

	if (err)
		return err;
	err = http_metrics_append_label(b, c ? c->def.pattern : "unmatched");
	if (err)
		return err;
	return buf_appendf(b, "\",method=\"%s\"", c ? c->def.method : "other");
}

static int render_counts(struct buf *b, const struct croute *c,
			 const struct route_stats *st)
{
	int err = FM_OK;

	for (int i = 0; i < STATUS_SLOTS; i++) {
		uint64_t n = atomic_load(&st->status[i]);

		if (!n)
			continue;
		err = render_series(b, "fm_http_requests_total", c);
		if (err)
			return err;
		err = buf_appendf(b, ",status=\"%d\"} %llu\n", i + STATUS_MIN,
				  (unsigned long long)n);
		if (err)
			return err;
	}
	return FM_OK;
}

static int render_histogram(struct buf *b, const struct croute *c,
			    const struct route_stats *st)
{
	uint64_t cum = 0;
	int err;

	for (size_t i = 0; i < N_BUCKETS; i++)
		cum += atomic_load(&st->bucket[i]);
	if (!cum)
		return FM_OK;
	cum = 0;
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += atomic_load(&st->bucket[i]);
		err = render_series(b, "fm_http_request_duration_seconds_bucket",
				    c);
		if (err)
			return err;
		if (i < N_BUCKETS - 1)
			err = buf_appendf(b, ",le=\"%g\"} %llu\n",
					  (double)bucket_us[i] / 1e6,
					  (unsigned long long)cum);
		else
			err = buf_appendf(b, ",le=\"+Inf\"} %llu\n",
					  (unsigned long long)cum);
		if (err)
			return err;
	}
	err = render_series(b, "fm_http_request_duration_seconds_sum", c);
	if (err)
		return err;
	err = buf_appendf(b, "} %.6f\n",
			  (double)atomic_load(&st->sum_us) / 1e6);
	if (err)
		return err;
	err = render_series(b, "fm_http_request_duration_seconds_count", c);
	if (err)
		return err;
	return buf_appendf(b, "} %llu\n", (unsigned long long)cum);
}

/* Every route's series of one family, then the unmatched requests'. */
static int render_routes(struct buf *b, const struct http_server *s,
			 int (*render)(struct buf *, const struct croute *,
				       const struct route_stats *))
{
	int err;

	for (size_t i = 0; i < s->n_routes; i++) {
		err = render(b, &s->routes[i], &s->routes[i].stats);
		if (err)
			return err;
	}
	return render(b, NULL, &s->unmatched);
}

static int render_all(struct buf *b, struct http_server *s)
{
	int err;

	err = buf_appends(b, "# HELP fm_http_requests_total HTTP requests "
			  "answered, by route, method and status.\n"
			  "# TYPE fm_http_requests_total counter\n");
	if (err)
		return err;
	err = render_routes(b, s, render_counts);
	if (err)
		return err;
	err = buf_appends(b, "# HELP fm_http_request_duration_seconds "
			  "Time from the request line to the end of "
			  "the response.\n"
			  "# TYPE fm_http_request_duration_seconds "
			  "histogram\n");
	if (err)
		return err;
	err = render_routes(b, s, render_histogram);
	if (err)
		return err;
	err = buf_appendf(b, "# HELP fm_http_requests_in_flight "
			  "Requests received and not yet answered.\n"
			  "# TYPE fm_http_requests_in_flight gauge\n"
			  "fm_http_requests_in_flight %d\n",
			  atomic_load(&s->in_flight));
	if (err)
		return err;
	return http_metrics_render(s->metrics, b);
}

static int metrics_handler(struct http_req *req, void *arg)
{
	struct buf b = BUF_INIT(64u << 20);
	int err;

	(void)arg;
	err = render_all(&b, req->srv);
	if (err)
		goto done;
	err = http_respond_raw(req, 200,
			       "text/plain; version=0.0.4; charset=utf-8",
			       b.data, b.len);
done:
	buf_cleanup(&b);
	return err;
}

const struct http_route http_srv_builtin[] = {
	{ "GET", "/healthz", health_handler, 0, 0 },
	{ "GET", "/metrics", metrics_handler, 0, 0 },
};
const size_t http_srv_n_builtin =
	sizeof(http_srv_builtin) / sizeof(http_srv_builtin[0]);

int http_srv_route_is_probe(const struct croute *c)
{
	return c->def.handler == health_handler ||
	       c->def.handler == metrics_handler;
}
