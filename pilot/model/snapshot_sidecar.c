/* snapshot_sidecar: which Sidecar resource scopes a sidecar proxy (istiod's
 * getSidecarScope / initSidecarScopes in pilot/pkg/model/push_context.go). Any thread: it
 * reads an immutable snapshot and takes no lock.
 *
 * snapshot->sidecars is sorted by (namespace, name), so a namespace's Sidecars are one run
 * found by bisection: that run is the per-namespace index, with nothing to build or keep
 * in step. */
#include <string.h>

#include "pilot/model/snapshot.h"

/* The first index whose namespace is >= ns. */
static size_t ns_lower_bound(const mesh_snapshot *s, const char *ns)
{
    size_t lo = 0, hi = s->nsidecars;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->sidecars[mid]->meta.ns, ns) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* istiod's sortConfigByCreationTime: creationTimestamp, then name (one namespace here).
 * RFC 3339 timestamps as the API server writes them ("2026-12-02T12:00:00Z") order as
 * strings; none (a file from the config directory) is Go's zero time, the oldest. */
static bool older(const mesh_sidecar *a, const mesh_sidecar *b)
{
    const char *ta = a->meta.creation_timestamp ? a->meta.creation_timestamp : "";
    const char *tb = b->meta.creation_timestamp ? b->meta.creation_timestamp : "";
    int c = strcmp(ta, tb);
    return c != 0 ? c < 0 : strcmp(a->meta.name, b->meta.name) < 0;
}

/* In ns: the oldest Sidecar whose selector matches labels (when with_selectors), else
 * the oldest without a selector. */
static const mesh_sidecar *pick_in(const mesh_snapshot *s, const char *ns,
                                   const mesh_labels *labels, bool with_selectors)
{
    const mesh_sidecar *sel = NULL, *dflt = NULL;
    mesh_labels none = {0};
    if (!labels)
        labels = &none;
    for (size_t i = ns_lower_bound(s, ns);
         i < s->nsidecars && strcmp(s->sidecars[i]->meta.ns, ns) == 0; i++) {
        const mesh_sidecar *sc = s->sidecars[i];
        if (!sc->has_selector) {
            if (!dflt || older(sc, dflt))
                dflt = sc;
        } else if (with_selectors && mesh_labels_subset(&sc->selector, labels) &&
                   (!sel || older(sc, sel))) {
            sel = sc;
        }
    }
    return sel ? sel : dflt;
}

const mesh_sidecar *mesh_snapshot_sidecar_for(const mesh_snapshot *s, const char *proxy_ns,
                                              const mesh_labels *proxy_labels)
{
    if (!s || !s->nsidecars || !proxy_ns)
        return NULL;
    const mesh_sidecar *sc = pick_in(s, proxy_ns, proxy_labels, true);
    if (sc)
        return sc;
    /* the mesh default: only a selector-less Sidecar of the root namespace */
    if (!s->root_ns || strcmp(s->root_ns, proxy_ns) == 0)
        return NULL;
    return pick_in(s, s->root_ns, NULL, false);
}
