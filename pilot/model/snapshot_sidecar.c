/* snapshot_sidecar: which Sidecar resource scopes a sidecar proxy (istiod's
 * getSidecarScope / initSidecarScopes in pilot/pkg/model/push_context.go). Any thread: it
 * reads an immutable snapshot and takes no lock.
 *
 * snapshot->sidecars is sorted by (namespace, name), so a namespace's Sidecars are one run
 * found by bisection: that run is the per-namespace index, with nothing to build or keep
 * in step. */
#include <string.h>

#include "pilot/model/snapshot.h"

/* In ns: the oldest Sidecar whose selector matches labels (when with_selectors), else
 * the oldest without a selector. */
static const mesh_sidecar *pick_in(const mesh_snapshot *s, const char *ns,
                                   const mesh_labels *labels, bool with_selectors)
{
    const mesh_sidecar *sel = NULL, *dflt = NULL;
    mesh_labels none = {0};
    if (!labels)
        labels = &none;
    for (size_t i = mesh_meta_ns_lower_bound((void *const *)s->sidecars, s->nsidecars, ns);
         i < s->nsidecars && strcmp(s->sidecars[i]->meta.ns, ns) == 0; i++) {
        const mesh_sidecar *sc = s->sidecars[i];
        if (!sc->has_selector) {
            if (!dflt || mesh_meta_older(&sc->meta, &dflt->meta))
                dflt = sc;
        } else if (with_selectors && mesh_labels_subset(&sc->selector, labels) &&
                   (!sel || mesh_meta_older(&sc->meta, &sel->meta))) {
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
