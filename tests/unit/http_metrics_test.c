/* The metrics registry and its Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "http/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int setup(void **state)
{
	struct http_metrics *m;

	if (http_metrics_new(&m))
		return -1;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	http_metrics_free(*state);
	return 0;
}

static char *render(struct http_metrics *m, struct buf *b)
{
	buf_cleanup(b);
	buf_init(b, 1 << 20);
	assert_int_equal(http_metrics_render(m, b), FM_OK);
	return b->data ? b->data : "";
}

static double pool_size(void *arg)
{
	return *(double *)arg;
}

static void test_http_metrics__counters_and_gauges(void **state)
{
	struct http_metrics *m = *state;
	struct http_metric *payouts, *queue;
	struct buf b = BUF_INIT(0);
	double pool = 3;

	assert_int_equal(http_metrics_counter(m, "fm_payouts_total",
					      "Payouts by state.", "state",
					      &payouts),
			 FM_OK);
	assert_int_equal(http_metrics_gauge(m, "fm_queue_depth",
					    "Queued payouts.", NULL, &queue),
			 FM_OK);
	assert_int_equal(http_metrics_gauge_fn(m, "fm_db_pool_in_use",
					       "Connections in use.",
					       pool_size, &pool),
			 FM_OK);
	http_metric_add(payouts, "confirmed", 2);
	http_metric_add(payouts, "failed", 1);
	http_metric_add(payouts, "confirmed", 1);
	http_metric_set(queue, NULL, 5);
	http_metric_add(queue, NULL, -2);
	pool = 7;
	assert_true(http_metric_value(payouts, "confirmed") == 3);
	assert_true(http_metric_value(payouts, "never") == 0);
	assert_string_equal(render(m, &b),
			    "# HELP fm_payouts_total Payouts by state.\n"
			    "# TYPE fm_payouts_total counter\n"
			    "fm_payouts_total{state=\"confirmed\"} 3\n"
			    "fm_payouts_total{state=\"failed\"} 1\n"
			    "# HELP fm_queue_depth Queued payouts.\n"
			    "# TYPE fm_queue_depth gauge\n"
			    "fm_queue_depth 3\n"
			    "# HELP fm_db_pool_in_use Connections in use.\n"
			    "# TYPE fm_db_pool_in_use gauge\n"
			    "fm_db_pool_in_use 7\n");
	buf_cleanup(&b);
}

static void test_http_metrics__refuses_bad_definitions(void **state)
{
	struct http_metrics *m = *state;
	struct http_metric *x;

	assert_int_equal(http_metrics_counter(m, "9lives", "h", NULL, &x),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "9lives"));
	assert_int_equal(http_metrics_counter(m, "a-b", "h", NULL, &x),
			 FM_EINVAL);
	assert_int_equal(http_metrics_counter(m, "", "h", NULL, &x), FM_EINVAL);
	assert_int_equal(http_metrics_counter(m, "ok", "h", "__reserved", &x),
			 FM_EINVAL);
	assert_int_equal(http_metrics_counter(m, "ok", "h", "a:b", &x),
			 FM_EINVAL);
	assert_int_equal(http_metrics_counter(m, "ok", "two\nlines", NULL, &x),
			 FM_EINVAL);
	assert_int_equal(http_metrics_counter(m, "ok_total", "h", NULL, &x),
			 FM_OK);
	assert_int_equal(http_metrics_gauge(m, "ok_total", "h", NULL, &x),
			 FM_ECONFLICT);
	assert_true(http_metrics_name_ok("a:b_c9"));
	assert_false(http_metrics_name_ok("a b"));
}

static void test_http_metrics__label_values_escaped(void **state)
{
	struct http_metrics *m = *state;
	struct http_metric *x;
	struct buf b = BUF_INIT(0);

	assert_int_equal(http_metrics_counter(m, "c_total", "back\\slash",
					      "v", &x),
			 FM_OK);
	http_metric_add(x, "a\"b\\c\nd", 1);
	assert_non_null(strstr(render(m, &b),
			       "c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
	assert_non_null(strstr(b.data, "# HELP c_total back\\\\slash\n"));
	buf_cleanup(&b);
}

static void test_http_metrics__series_are_bounded(void **state)
{
	struct http_metrics *m = *state;
	struct http_metric *x;
	struct buf b = BUF_INIT(0);
	char v[32];
	int lines = 0;

	assert_int_equal(http_metrics_counter(m, "by_user_total", "h", "user",
					      &x),
			 FM_OK);
	for (int i = 0; i < 200; i++) {
		snprintf(v, sizeof(v), "u%d", i);
		http_metric_add(x, v, 1);
	}
	render(m, &b);
	for (const char *p = b.data; (p = strstr(p, "by_user_total{")); p++)
		lines++;
	assert_int_equal(lines, HTTP_METRIC_MAX_SERIES);
	/* the first values keep their own series, the rest add up */
	assert_true(http_metric_value(x, "u0") == 1);
	assert_true(http_metric_value(x, "other") ==
		    200 - (HTTP_METRIC_MAX_SERIES - 1));
	buf_cleanup(&b);
}

static void test_http_metrics__value_format(void **state)
{
	struct buf b = BUF_INIT(1024);

	(void)state;
	assert_int_equal(http_metrics_append_value(&b, 12345678901.0), FM_OK);
	buf_appends(&b, " ");
	http_metrics_append_value(&b, 0.25);
	buf_appends(&b, " ");
	http_metrics_append_value(&b, NAN);
	buf_appends(&b, " ");
	http_metrics_append_value(&b, -INFINITY);
	buf_appends(&b, " ");
	http_metrics_append_value(&b, -3);
	assert_string_equal(b.data, "12345678901 0.25 NaN -Inf -3");
	buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_http_metrics__counters_and_gauges),
		T(test_http_metrics__refuses_bad_definitions),
		T(test_http_metrics__label_values_escaped),
		T(test_http_metrics__series_are_bounded),
		T(test_http_metrics__value_format),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
