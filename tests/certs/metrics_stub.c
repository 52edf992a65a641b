/* A minimal stand-in for pilot/metrics.c so the CA tests and benchmark link without the
 * whole pilot: unlabelled counters and gauges only, enough to read back what ca_service
 * records. Same contract as metrics.h (creation idempotent by name, thread-safe). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

struct metric {
    char *name;
    double value;
    struct metric *next;
};

static pthread_mutex_t stub_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *stub_head;

static metric *stub_get(const char *name)
{
    pthread_mutex_lock(&stub_mu);
    struct metric *m = stub_head;
    while (m && strcmp(m->name, name) != 0) {
        m = m->next;
    }
    if (!m) {
        m = xcalloc(1, sizeof(*m));
        m->name = xstrdup(name);
        m->next = stub_head;
        stub_head = m;
    }
    pthread_mutex_unlock(&stub_mu);
    return m;
}

metric *metric_counter(const char *name, const char *help, const char *label_names)
{
    (void)help;
    (void)label_names;
    return stub_get(name);
}

metric *metric_gauge(const char *name, const char *help, const char *label_names)
{
    (void)help;
    (void)label_names;
    return stub_get(name);
}

metric *metric_histogram(const char *name, const char *help, const char *label_names,
                         const double *buckets, size_t nbuckets)
{
    (void)help;
    (void)label_names;
    (void)buckets;
    (void)nbuckets;
    return stub_get(name);
}

void metric_add(metric *m, const char *label_values, double v)
{
    (void)label_values;
    pthread_mutex_lock(&stub_mu);
    m->value += v;
    pthread_mutex_unlock(&stub_mu);
}

void metric_set(metric *m, const char *label_values, double v)
{
    (void)label_values;
    pthread_mutex_lock(&stub_mu);
    m->value = v;
    pthread_mutex_unlock(&stub_mu);
}

void metric_observe(metric *m, const char *label_values, double v)
{
    metric_add(m, label_values, v);
}

double metric_value(metric *m, const char *label_values)
{
    (void)label_values;
    pthread_mutex_lock(&stub_mu);
    double v = m->value;
    pthread_mutex_unlock(&stub_mu);
    return v;
}

void metrics_render(strbuf *out)
{
    pthread_mutex_lock(&stub_mu);
    for (struct metric *m = stub_head; m; m = m->next) {
        strbuf_appendf(out, "%s %g\n", m->name, m->value);
    }
    pthread_mutex_unlock(&stub_mu);
}
