/* metrics: see metrics.h. Any thread. Locks: the registry mutex (creation, rendering's
 * walk of the list), then one metric's own mutex; never the other way round.
 *
 * Metrics live for the whole process: the registry is a global list that is never freed,
 * so pointers handed out stay valid (and reachable, so leak checkers stay quiet).
 */
#include "pilot/obs/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"

enum { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM };

/* A label set with many values is a bug elsewhere; cap the series so it cannot grow
 * without bound. */
#define METRIC_MAX_SERIES 4096
#define METRIC_MAX_LABELS 8

typedef struct series {
    char *labels; /* the comma-separated values, "" when unlabelled */
    double value; /* counter / gauge */
    double sum;   /* histogram */
    uint64_t count;
    uint64_t *buckets; /* per bound, not cumulative */
} series;

struct metric {
    char *name;
    char *help;
    int type;
    char *label_names[METRIC_MAX_LABELS];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    pthread_mutex_t mu;
    series *s;
    size_t ns, cap;
    struct metric *next;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *reg_head, *reg_tail;
static metric *uptime_metric;
static int64_t start_ns;

static metric *metric_create_locked(const char *name, const char *help, int type,
                                    const char *label_names, const double *buckets,
                                    size_t nbuckets);

/* Called with reg_mu held. */
static void registry_init_locked(void)
{
    if (uptime_metric)
        return;
    start_ns = util_now_ns();
    uptime_metric =
        metric_create_locked("istiod_uptime_seconds", "Current istiod server uptime in seconds",
                             MT_GAUGE, NULL, NULL, 0);
}

static metric *metric_create_locked(const char *name, const char *help, int type,
                                    const char *label_names, const double *buckets, size_t nbuckets)
{
    for (struct metric *m = reg_head; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m; /* creation is idempotent: modules may create lazily */
    struct metric *m = xcalloc(1, sizeof(*m));
    m->name = xstrdup(name);
    m->help = xstrdup(help ? help : "");
    m->type = type;
    pthread_mutex_init(&m->mu, NULL);
    if (label_names && *label_names) {
        const char *p = label_names;
        while (*p && m->nlabels < METRIC_MAX_LABELS) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            m->label_names[m->nlabels++] = xstrndup(p, n);
            p = e ? e + 1 : p + n;
        }
    }
    if (type == MT_HISTOGRAM && nbuckets) {
        m->bounds = xmalloc(nbuckets * sizeof(double));
        memcpy(m->bounds, buckets, nbuckets * sizeof(double));
        m->nbounds = nbuckets;
    }
    if (reg_tail)
        reg_tail->next = m;
    else
        reg_head = m;
    reg_tail = m;
    return m;
}

static metric *metric_create(const char *name, const char *help, int type, const char *label_names,
                             const double *buckets, size_t nbuckets)
{
    pthread_mutex_lock(&reg_mu);
    registry_init_locked();
    metric *m = metric_create_locked(name, help, type, label_names, buckets, nbuckets);
    pthread_mutex_unlock(&reg_mu);
    return m;
}

metric *metric_counter(const char *name, const char *help, const char *label_names)
{
    return metric_create(name, help, MT_COUNTER, label_names, NULL, 0);
}

metric *metric_gauge(const char *name, const char *help, const char *label_names)
{
    return metric_create(name, help, MT_GAUGE, label_names, NULL, 0);
}

metric *metric_histogram(const char *name, const char *help, const char *label_names,
                         const double *buckets, size_t nbuckets)
{
    return metric_create(name, help, MT_HISTOGRAM, label_names, buckets, nbuckets);
}

/* Called with m->mu held. NULL when the series cap is reached. */
static series *series_get(metric *m, const char *label_values, bool create)
{
    const char *lv = label_values ? label_values : "";
    for (size_t i = 0; i < m->ns; i++)
        if (strcmp(m->s[i].labels, lv) == 0)
            return &m->s[i];
    if (!create || m->ns >= METRIC_MAX_SERIES)
        return NULL;
    if (m->ns == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->s = xrealloc(m->s, m->cap * sizeof(series));
    }
    series *s = &m->s[m->ns++];
    memset(s, 0, sizeof(*s));
    s->labels = xstrdup(lv);
    if (m->type == MT_HISTOGRAM)
        s->buckets = xcalloc(m->nbounds ? m->nbounds : 1, sizeof(uint64_t));
    return s;
}

void metric_add(metric *m, const char *label_values, double v)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = series_get(m, label_values, true);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&m->mu);
}

void metric_set(metric *m, const char *label_values, double v)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = series_get(m, label_values, true);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&m->mu);
}

void metric_observe(metric *m, const char *label_values, double v)
{
    if (!m || m->type != MT_HISTOGRAM)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = series_get(m, label_values, true);
    if (s) {
        s->sum += v;
        s->count++;
        for (size_t i = 0; i < m->nbounds; i++) {
            if (v <= m->bounds[i]) {
                s->buckets[i]++;
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
}

double metric_value(metric *m, const char *label_values)
{
    double v = 0;
    if (!m)
        return 0;
    pthread_mutex_lock(&m->mu);
    series *s = series_get(m, label_values, false);
    if (s)
        v = m->type == MT_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* ---- rendering ----------------------------------------------------------------------------- */

static void append_number(strbuf *out, double v)
{
    if (isnan(v))
        strbuf_appends(out, "NaN");
    else if (isinf(v))
        strbuf_appends(out, v > 0 ? "+Inf" : "-Inf");
    else
        strbuf_appendf(out, "%.15g", v);
}

static void append_escaped(strbuf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            strbuf_appends(out, "\\\\");
        else if (s[i] == '"')
            strbuf_appends(out, "\\\"");
        else if (s[i] == '\n')
            strbuf_appends(out, "\\n");
        else
            strbuf_append(out, &s[i], 1);
    }
}

/* Writes `{a="x",b="y"` plus extra (`le="0.1"`) and `}`; nothing when both are empty. */
static void append_labels(strbuf *out, const metric *m, const char *values, const char *extra)
{
    bool any = false;
    const char *p = values;
    for (size_t i = 0; i < m->nlabels && p && *p; i++) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        strbuf_appends(out, any ? "," : "{");
        strbuf_appendf(out, "%s=\"", m->label_names[i]);
        append_escaped(out, p, n);
        strbuf_appends(out, "\"");
        any = true;
        p = e ? e + 1 : NULL;
    }
    if (extra) {
        strbuf_appends(out, any ? "," : "{");
        strbuf_appends(out, extra);
        any = true;
    }
    if (any)
        strbuf_appends(out, "}");
}

static void render_metric(strbuf *out, metric *m)
{
    static const char *type_names[] = {"counter", "gauge", "histogram"};
    strbuf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                   type_names[m->type]);
    /* An unlabelled counter or gauge exists from creation, as with Prometheus' Go client. */
    if (m->ns == 0 && m->nlabels == 0 && m->type != MT_HISTOGRAM)
        strbuf_appendf(out, "%s 0\n", m->name);
    for (size_t i = 0; i < m->ns; i++) {
        series *s = &m->s[i];
        if (m->type != MT_HISTOGRAM) {
            strbuf_appends(out, m->name);
            append_labels(out, m, s->labels, NULL);
            strbuf_appends(out, " ");
            append_number(out, s->value);
            strbuf_appends(out, "\n");
            continue;
        }
        uint64_t cum = 0;
        for (size_t b = 0; b <= m->nbounds; b++) {
            char le[64];
            if (b < m->nbounds) {
                cum += s->buckets[b];
                snprintf(le, sizeof(le), "le=\"%.15g\"", m->bounds[b]);
            } else {
                cum = s->count;
                snprintf(le, sizeof(le), "le=\"+Inf\"");
            }
            strbuf_appendf(out, "%s_bucket", m->name);
            append_labels(out, m, s->labels, le);
            strbuf_appendf(out, " %llu\n", (unsigned long long)cum);
        }
        strbuf_appendf(out, "%s_sum", m->name);
        append_labels(out, m, s->labels, NULL);
        strbuf_appends(out, " ");
        append_number(out, s->sum);
        strbuf_appendf(out, "\n%s_count", m->name);
        append_labels(out, m, s->labels, NULL);
        strbuf_appendf(out, " %llu\n", (unsigned long long)s->count);
    }
}

void metrics_render(strbuf *out)
{
    pthread_mutex_lock(&reg_mu);
    registry_init_locked();
    metric_set(uptime_metric, NULL, (double)(util_now_ns() - start_ns) / 1e9);
    for (struct metric *m = reg_head; m; m = m->next) {
        pthread_mutex_lock(&m->mu);
        render_metric(out, m);
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&reg_mu);
}
