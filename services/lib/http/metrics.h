/* A small registry of counters and gauges rendered in the Prometheus text
 * format. Every HTTP server owns one (http_server_metrics) and serves it on
 * /metrics after its own request metrics; services register their own
 * there. All functions are thread-safe. */
#ifndef FM_HTTP_METRICS_H
#define FM_HTTP_METRICS_H

#include "core/buf.h"

struct http_metrics;
struct http_metric;

/* Distinct label values kept per metric; later ones are counted under the
 * value "other", so a label fed from input cannot grow memory. */
#define HTTP_METRIC_MAX_SERIES 64
/* Longest label value kept (bytes); longer values are cut. */
#define HTTP_METRIC_LABEL_MAX 63

int http_metrics_new(struct http_metrics **out);
void http_metrics_free(struct http_metrics *m);

/* Registers a counter (only grows) or a gauge named name (a valid
 * Prometheus metric name, unique in m) with a one-line help text. label is
 * NULL for a single series, or a label name ("state") for one series per
 * label value. *out is borrowed and lives as long as m. */
int http_metrics_counter(struct http_metrics *m, const char *name,
			 const char *help, const char *label,
			 struct http_metric **out);
int http_metrics_gauge(struct http_metrics *m, const char *name,
		       const char *help, const char *label,
		       struct http_metric **out);
/* A gauge whose value is read by calling fn(arg) at each rendering (e.g. a
 * connection pool's size). fn runs under the registry's lock: it must be
 * quick and must not call into the registry. */
int http_metrics_gauge_fn(struct http_metrics *m, const char *name,
			  const char *help, double (*fn)(void *arg),
			  void *arg);

/* label_value is NULL for a metric registered without a label. Adding a
 * negative amount to a counter, or setting a counter, is a programmer
 * error (FM_ASSERT). */
void http_metric_add(struct http_metric *x, const char *label_value,
		     double v);
void http_metric_set(struct http_metric *x, const char *label_value,
		     double v);
/* The current value of one series (0 if never touched). */
double http_metric_value(struct http_metric *x, const char *label_value);

/* Appends the text exposition of every metric in m to out. */
int http_metrics_render(struct http_metrics *m, struct buf *out);

/* Helpers for writing the text format (used by the server as well). */
int http_metrics_append_value(struct buf *out, double v);
/* Appends s escaped as a label value (backslash, quote, newline). */
int http_metrics_append_label(struct buf *out, const char *s);
/* 1 if s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
int http_metrics_name_ok(const char *s);

#endif
