#include "http/metrics.h"

#include "core/err.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_GAUGE_FN };

struct series {
	char value[HTTP_METRIC_LABEL_MAX + 1];
	double v;
};

struct http_metric {
	struct http_metrics *reg;
	enum metric_kind kind;
	char *name;
	char *help;
	char *label; /* NULL: one unlabeled series in series[0] */
	struct series *series;
	size_t n_series;
	double (*fn)(void *arg);
	void *fn_arg;
};

struct http_metrics {
	pthread_mutex_t lock;
	struct http_metric **items;
	size_t n, cap;
};

/* Registered metrics per registry; a service registers a handful. */
#define METRICS_MAX 256

int http_metrics_new(struct http_metrics **out)
{
	struct http_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return fm_error_set(FM_ENOMEM, "metrics: out of memory");
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return FM_OK;
}

static void metric_free(struct http_metric *x)
{
	if (!x)
		return;
	free(x->name);
	free(x->help);
	free(x->label);
	free(x->series);
	free(x);
}

void http_metrics_free(struct http_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		metric_free(m->items[i]);
	free(m->items);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int http_metrics_name_ok(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == ':'))
			return 0;
	}
	return 1;
}

static int label_name_ok(const char *s)
{
	/* label names are metric names without ':'; "__" is reserved */
	return http_metrics_name_ok(s) && !strchr(s, ':') &&
	       strncmp(s, "__", 2) != 0;
}

static int metric_add(struct http_metrics *m, enum metric_kind kind,
		      const char *name, const char *help, const char *label,
		      struct http_metric **out)
{
	struct http_metric *x = NULL;
	int err = FM_OK;

	if (!http_metrics_name_ok(name))
		return fm_error_set(FM_EINVAL, "metric name '%s': expected "
				    "[a-zA-Z_:][a-zA-Z0-9_:]*",
				    name ? name : "(null)");
	if (label && !label_name_ok(label))
		return fm_error_set(FM_EINVAL, "metric %s: label name '%s' "
				    "is not valid", name, label);
	if (!help || strpbrk(help, "\n\r"))
		return fm_error_set(FM_EINVAL, "metric %s: help must be one "
				    "line", name);

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->items[i]->name, name) == 0) {
			err = fm_error_set(FM_ECONFLICT, "metric %s is "
					   "already registered", name);
			goto done;
		}
	}
	if (m->n >= METRICS_MAX) {
		err = fm_error_set(FM_ETOOLARGE, "metric %s: more than %d "
				   "metrics", name, METRICS_MAX);
		goto done;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct http_metric **p = realloc(m->items, cap * sizeof(*p));
		if (!p) {
			err = fm_error_set(FM_ENOMEM, "metrics: out of memory");
			goto done;
		}
		m->items = p;
		m->cap = cap;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		goto oom;
	x->reg = m;
	x->kind = kind;
	x->name = strdup(name);
	x->help = strdup(help);
	x->label = label ? strdup(label) : NULL;
	x->series = calloc(label ? HTTP_METRIC_MAX_SERIES : 1,
			   sizeof(*x->series));
	if (!x->name || !x->help || (label && !x->label) || !x->series)
		goto oom;
	if (!label)
		x->n_series = 1;
	m->items[m->n++] = x;
	*out = x;
	x = NULL;
	goto done;
oom:
	err = fm_error_set(FM_ENOMEM, "metrics: out of memory");
done:
	pthread_mutex_unlock(&m->lock);
	metric_free(x);
	return err;
}

int http_metrics_counter(struct http_metrics *m, const char *name,
			 const char *help, const char *label,
			 struct http_metric **out)
{
	return metric_add(m, KIND_COUNTER, name, help, label, out);
}

int http_metrics_gauge(struct http_metrics *m, const char *name,
		       const char *help, const char *label,
		       struct http_metric **out)
{
	return metric_add(m, KIND_GAUGE, name, help, label, out);
}

int http_metrics_gauge_fn(struct http_metrics *m, const char *name,
			  const char *help, double (*fn)(void *arg),
			  void *arg)
{
	struct http_metric *x;
	int err;

	FM_ASSERT(fn);
	err = metric_add(m, KIND_GAUGE_FN, name, help, NULL, &x);
	if (err)
		return err;
	pthread_mutex_lock(&m->lock);
	x->fn = fn;
	x->fn_arg = arg;
	pthread_mutex_unlock(&m->lock);
	return FM_OK;
}

/* The series for label_value, created if there is room; called locked. */
static struct series *series_get(struct http_metric *x, const char *value,
				 int create)
{
	char v[HTTP_METRIC_LABEL_MAX + 1];

	if (!x->label) {
		FM_ASSERT(!value);
		return &x->series[0];
	}
	FM_ASSERT(value);
	snprintf(v, sizeof(v), "%s", value);
	for (size_t i = 0; i < x->n_series; i++)
		if (strcmp(x->series[i].value, v) == 0)
			return &x->series[i];
	if (!create)
		return NULL;
	if (x->n_series == HTTP_METRIC_MAX_SERIES - 1 &&
	    strcmp(v, "other") != 0)
		return series_get(x, "other", 1);
	if (x->n_series == HTTP_METRIC_MAX_SERIES)
		return &x->series[HTTP_METRIC_MAX_SERIES - 1];
	memcpy(x->series[x->n_series].value, v, sizeof(v));
	return &x->series[x->n_series++];
}

void http_metric_add(struct http_metric *x, const char *label_value,
		     double v)
{
	FM_ASSERT(x->kind != KIND_GAUGE_FN);
	FM_ASSERT(x->kind != KIND_COUNTER || v >= 0);
	pthread_mutex_lock(&x->reg->lock);
	series_get(x, label_value, 1)->v += v;
	pthread_mutex_unlock(&x->reg->lock);
}

void http_metric_set(struct http_metric *x, const char *label_value,
		     double v)
{
	FM_ASSERT(x->kind == KIND_GAUGE);
	pthread_mutex_lock(&x->reg->lock);
	series_get(x, label_value, 1)->v = v;
	pthread_mutex_unlock(&x->reg->lock);
}

double http_metric_value(struct http_metric *x, const char *label_value)
{
	struct series *s;
	double v = 0;

	pthread_mutex_lock(&x->reg->lock);
	if (x->kind == KIND_GAUGE_FN) {
		v = x->fn(x->fn_arg);
	} else {
		s = series_get(x, label_value, 0);
		if (s)
			v = s->v;
	}
	pthread_mutex_unlock(&x->reg->lock);
	return v;
}

int http_metrics_append_value(struct buf *out, double v)
{
	if (isnan(v))
		return buf_appends(out, "NaN");
	if (isinf(v))
		return buf_appends(out, v > 0 ? "+Inf" : "-Inf");
	/* counts are integers: print them without an exponent */
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return buf_appendf(out, "%.0f", v);
	return buf_appendf(out, "%.17g", v);
}

int http_metrics_append_label(struct buf *out, const char *s)
{
	int err = FM_OK;

	for (; *s && !err; s++) {
		if (*s == '\\')
			err = buf_appends(out, "\\\\");
		else if (*s == '"')
			err = buf_appends(out, "\\\"");
		else if (*s == '\n')
			err = buf_appends(out, "\\n");
		else
			err = buf_append(out, s, 1);
	}
	return err;
}

static int render_header(const struct http_metric *x, struct buf *out)
{
	static const char *const types[] = { "counter", "gauge", "gauge" };
	int err;

	err = buf_appendf(out, "# HELP %s ", x->name);
	/* help text escapes only backslash; newlines were refused */
	for (const char *p = x->help; !err && *p; p++)
		err = *p == '\\' ? buf_appends(out, "\\\\")
				 : buf_append(out, p, 1);
	if (err)
		return err;
	return buf_appendf(out, "\n# TYPE %s %s\n", x->name, types[x->kind]);
}

/* name{label="value"} v, or name v for a metric without a label. */
static int render_series(const struct http_metric *x, size_t i,
			 struct buf *out)
{
	int err = buf_appends(out, x->name);

	if (err)
		return err;
	if (x->label) {
		err = buf_appendf(out, "{%s=\"", x->label);
		if (err)
			return err;
		err = http_metrics_append_label(out, x->series[i].value);
		if (err)
			return err;
		err = buf_appends(out, "\"}");
		if (err)
			return err;
	}
	err = buf_appends(out, " ");
	if (err)
		return err;
	err = http_metrics_append_value(out, x->series[i].v);
	if (err)
		return err;
	return buf_appends(out, "\n");
}

static int render_one(struct http_metric *x, struct buf *out)
{
	int err;

	err = render_header(x, out);
	if (err)
		return err;
	if (x->kind == KIND_GAUGE_FN) {
		err = buf_appendf(out, "%s ", x->name);
		if (err)
			return err;
		err = http_metrics_append_value(out, x->fn(x->fn_arg));
		if (err)
			return err;
		return buf_appends(out, "\n");
	}
	for (size_t i = 0; i < x->n_series; i++) {
		err = render_series(x, i, out);
		if (err)
			return err;
	}
	return FM_OK;
}

int http_metrics_render(struct http_metrics *m, struct buf *out)
{
	int err = FM_OK;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n && !err; i++)
		err = render_one(m->items[i], out);
	pthread_mutex_unlock(&m->lock);
	return err;
}
