/* snapshot_telemetry: which Telemetry resources apply to a proxy (istiod's
 * applicableTelemetries in pilot/pkg/model/telemetry.go). Any thread: it reads an
 * immutable snapshot and takes no lock.
 *
 * snapshot->telemetries is sorted by (namespace, name), so a namespace's Telemetries are one
 * run found by bisection, as for Sidecars (snapshot_sidecar.c). */
#include <string.h>

#include "pilot/model/snapshot.h"

static size_t tel_lower_bound(const mesh_snapshot *s, const char *ns)
{
    return mesh_meta_ns_lower_bound((void *const *)s->telemetries, s->ntelemetries, ns);
}

static bool tel_older(const mesh_telemetry *a, const mesh_telemetry *b)
{
    return mesh_meta_older(&a->meta, &b->meta);
}

static bool tel_ns_wide(const mesh_telemetry *t)
{
    return t->selector.n == 0 && t->ntarget_refs == 0;
}

/* The oldest namespace-wide Telemetry of ns, or NULL. */
static const mesh_telemetry *tel_ns_default(const mesh_snapshot *s, const char *ns)
{
    const mesh_telemetry *best = NULL;
    for (size_t i = tel_lower_bound(s, ns);
         i < s->ntelemetries && strcmp(s->telemetries[i]->meta.ns, ns) == 0; i++)
        if (tel_ns_wide(s->telemetries[i]) && (!best || tel_older(s->telemetries[i], best)))
            best = s->telemetries[i];
    return best;
}

size_t mesh_snapshot_telemetries_for(const mesh_snapshot *s, const char *proxy_ns,
                                     const mesh_labels *proxy_labels, const mesh_telemetry **out)
{
    size_t n = 0;
    mesh_labels none = {0};
    if (!s || !s->ntelemetries || !proxy_ns)
        return 0;
    if (!proxy_labels)
        proxy_labels = &none;
    const mesh_telemetry *t = s->root_ns ? tel_ns_default(s, s->root_ns) : NULL;
    if (t)
        out[n++] = t;
    if (!s->root_ns || strcmp(s->root_ns, proxy_ns) != 0) {
        t = tel_ns_default(s, proxy_ns);
        if (t)
            out[n++] = t;
    }
    /* the workload's own: every match, oldest first (insertion sort: a handful) */
    size_t first = n;
    for (size_t i = tel_lower_bound(s, proxy_ns);
         i < s->ntelemetries && strcmp(s->telemetries[i]->meta.ns, proxy_ns) == 0; i++) {
        t = s->telemetries[i];
        if (tel_ns_wide(t) || t->ntarget_refs || !mesh_labels_subset(&t->selector, proxy_labels))
            continue;
        size_t j = n++;
        for (; j > first && tel_older(t, out[j - 1]); j--)
            out[j] = out[j - 1];
        out[j] = t;
    }
    return n;
}

bool mesh_snapshot_telemetry_selects(const mesh_snapshot *s, const char *proxy_ns)
{
    if (!s || !proxy_ns)
        return false;
    for (size_t i = tel_lower_bound(s, proxy_ns);
         i < s->ntelemetries && strcmp(s->telemetries[i]->meta.ns, proxy_ns) == 0; i++)
        if (s->telemetries[i]->selector.n)
            return true;
    return false;
}
