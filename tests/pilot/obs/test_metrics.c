/* test_metrics: Prometheus text exposition of counters, gauges and histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"

static char *render(void)
{
    strbuf b;
    strbuf_init(&b, 0);
    metrics_render(&b);
    return strbuf_steal(&b, NULL);
}

static void expect_line(const char *text, const char *line)
{
    char *want = xasprintf("\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("missing line \"%s\" in:\n%s", line, text);
    free(want);
}

static void test_counter_gauge(void **state)
{
    (void)state;
    metric *c = metric_counter("t_events_total", "Events seen.", "type,event");
    metric_add(c, "svc,add", 1);
    metric_add(c, "svc,add", 2);
    metric_add(c, "eds,update", 1);
    metric *g = metric_gauge("t_services", "Services known.", NULL);
    metric_set(g, NULL, 7);
    metric_set(g, NULL, 5);
    metric *q = metric_gauge("t_quoted", "Quoting.", "v");
    metric_set(q, "a\"b\\c", 0.25);
    /* Same name again returns the same metric. */
    assert_ptr_equal(metric_counter("t_events_total", "x", "type,event"), c);
    assert_true(metric_value(c, "svc,add") == 3);
    assert_true(metric_value(c, "none,none") == 0);
    assert_true(metric_value(g, NULL) == 5);

    char *t = render();
    expect_line(t, "# HELP t_events_total Events seen.");
    expect_line(t, "# TYPE t_events_total counter");
    expect_line(t, "t_events_total{type=\"svc\",event=\"add\"} 3");
    expect_line(t, "t_events_total{type=\"eds\",event=\"update\"} 1");
    expect_line(t, "# TYPE t_services gauge");
    expect_line(t, "t_services 5");
    expect_line(t, "t_quoted{v=\"a\\\"b\\\\c\"} 0.25");
    expect_line(t, "# TYPE istiod_uptime_seconds gauge");
    free(t);
}

static void test_histogram(void **state)
{
    (void)state;
    static const double b[] = {0.1, 1, 10};
    metric *h = metric_histogram("t_push_time", "Push time.", "type", b, 3);
    metric_observe(h, "cds", 0.05);
    metric_observe(h, "cds", 0.5);
    metric_observe(h, "cds", 0.5);
    metric_observe(h, "cds", 100);
    char *t = render();
    expect_line(t, "# TYPE t_push_time histogram");
    expect_line(t, "t_push_time_bucket{type=\"cds\",le=\"0.1\"} 1");
    expect_line(t, "t_push_time_bucket{type=\"cds\",le=\"1\"} 3");
    expect_line(t, "t_push_time_bucket{type=\"cds\",le=\"10\"} 3");
    expect_line(t, "t_push_time_bucket{type=\"cds\",le=\"+Inf\"} 4");
    expect_line(t, "t_push_time_sum{type=\"cds\"} 101.05");
    expect_line(t, "t_push_time_count{type=\"cds\"} 4");
    free(t);

    metric *u = metric_histogram("t_plain_hist", "Unlabelled.", NULL, b, 3);
    metric_observe(u, NULL, 2);
    t = render();
    expect_line(t, "t_plain_hist_bucket{le=\"1\"} 0");
    expect_line(t, "t_plain_hist_bucket{le=\"10\"} 1");
    expect_line(t, "t_plain_hist_count 1");
    free(t);
}

static void test_unset_counter_renders_zero(void **state)
{
    (void)state;
    metric_counter("t_never", "Never incremented.", NULL);
    char *t = render();
    expect_line(t, "t_never 0");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_unset_counter_renders_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
