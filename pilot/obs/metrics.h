/* metrics: a small Prometheus registry rendered as text on --monitoringAddr /metrics.
 *
 * Metric names are Istio's, unprefixed (pilot_xds_pushes, ...). Labels are given as one
 * comma-separated list of names at creation ("type,event") and one comma-separated list
 * of values per update ("services,add"). Thread-safe: one mutex per metric.
 */
#ifndef PILOT_OBS_METRICS_H
#define PILOT_OBS_METRICS_H

#include <stddef.h>

#include "pilot/base/util.h"

typedef struct metric metric;

metric *metric_counter(const char *name, const char *help, const char *label_names);
metric *metric_gauge(const char *name, const char *help, const char *label_names);
/* buckets are upper bounds, ascending; +Inf is added. */
metric *metric_histogram(const char *name, const char *help, const char *label_names,
                         const double *buckets, size_t nbuckets);

/* label_values is NULL for an unlabelled metric. */
void metric_add(metric *m, const char *label_values, double v);
void metric_set(metric *m, const char *label_values, double v);
void metric_observe(metric *m, const char *label_values, double v);
/* Reads a counter or gauge value (0 when never set): for tests. */
double metric_value(metric *m, const char *label_values);

/* Appends every registered metric in Prometheus text exposition format. */
void metrics_render(strbuf *out);

#endif
