/* gen_security: which security.istio.io policies apply to the proxy's own workload, the
 * selection every policy kind shares (istiod's PolicyMatcher for sidecars). */
#include <string.h>

#include "xds/gen/gen_internal.h"

bool gen_policy_applies(gen_ctx *c, const mesh_meta *m, const mesh_labels *selector,
                        size_t ntarget_refs)
{
    if (ntarget_refs || !m->ns || !c->p->ns)
        return false;
    bool own = strcmp(m->ns, c->p->ns) == 0;
    bool root = c->s->root_ns && strcmp(m->ns, c->s->root_ns) == 0;
    if (!own && !root)
        return false;
    return mesh_labels_subset(selector, &c->p->labels);
}

bool gen_security_uses_labels(const mesh_snapshot *s)
{
    for (size_t i = 0; i < s->npas; i++)
        if (s->pas[i]->selector.n)
            return true;
    for (size_t i = 0; i < s->nras; i++)
        if (s->ras[i]->selector.n)
            return true;
    for (size_t i = 0; i < s->naps; i++)
        if (s->aps[i]->selector.n)
            return true;
    return false;
}

/* istiod's ComposePeerAuthentication: of the policies that can apply to a workload (in its
 * namespace with a matching selector, or selector-less in its namespace or the root
 * namespace), the oldest of each level; mesh, then namespace, then workload each override
 * the level above unless UNSET; a workload policy's port-level mode overrides its own for
 * that port (UNSET inherits). PERMISSIVE when nothing says otherwise. Root-namespace
 * policies with a selector are ignored, as istiod does. */
static bool pa_older(const mesh_peer_authentication *a, const mesh_peer_authentication *b)
{
    if (!b)
        return true;
    const char *ta = a->meta.creation_timestamp ? a->meta.creation_timestamp : "";
    const char *tb = b->meta.creation_timestamp ? b->meta.creation_timestamp : "";
    int k = strcmp(ta, tb);
    return k < 0 || (k == 0 && strcmp(a->meta.name, b->meta.name) < 0);
}

mesh_mtls_mode gen_peer_mtls(const mesh_snapshot *s, const char *ns, const mesh_labels *labels,
                             uint32_t port)
{
    const mesh_peer_authentication *mesh = NULL, *nsp = NULL, *wl = NULL;
    const char *root = s->root_ns ? s->root_ns : "istio-system";
    for (size_t i = 0; ns && i < s->npas; i++) {
        const mesh_peer_authentication *pa = s->pas[i];
        bool in_root = strcmp(pa->meta.ns, root) == 0;
        bool in_ns = strcmp(pa->meta.ns, ns) == 0;
        if (pa->selector.n == 0) {
            if (in_root && pa_older(pa, mesh))
                mesh = pa;
            else if (!in_root && in_ns && pa_older(pa, nsp))
                nsp = pa;
        } else if (!in_root && in_ns && mesh_labels_subset(&pa->selector, labels) &&
                   pa_older(pa, wl)) {
            wl = pa;
        }
    }
    mesh_mtls_mode m = MESH_MTLS_PERMISSIVE;
    if (mesh && mesh->mode != MESH_MTLS_UNSET)
        m = mesh->mode;
    if (nsp && nsp->mode != MESH_MTLS_UNSET)
        m = nsp->mode;
    if (!wl)
        return m;
    if (wl->mode != MESH_MTLS_UNSET)
        m = wl->mode;
    for (size_t i = 0; i < wl->nport_mtls; i++)
        if (wl->port_mtls[i].port == port && wl->port_mtls[i].mode != MESH_MTLS_UNSET)
            return wl->port_mtls[i].mode;
    return m;
}

char *gen_workload_security_key(gen_ctx *c)
{
    gen_sbuf k = {0};
    ga_cat(c->a, &k, "sec=");
    for (size_t i = 0; i < c->s->npas; i++)
        if (gen_policy_applies(c, &c->s->pas[i]->meta, &c->s->pas[i]->selector, 0))
            ga_cat(c->a, &k, "pa:%s/%s,", c->s->pas[i]->meta.ns, c->s->pas[i]->meta.name);
    for (size_t i = 0; i < c->s->nras; i++) {
        const mesh_request_authentication *r = c->s->ras[i];
        if (gen_policy_applies(c, &r->meta, &r->selector, r->ntarget_refs))
            ga_cat(c->a, &k, "ra:%s/%s,", r->meta.ns, r->meta.name);
    }
    for (size_t i = 0; i < c->s->naps; i++) {
        const mesh_authorization_policy *ap = c->s->aps[i];
        if (gen_policy_applies(c, &ap->meta, &ap->selector, ap->ntarget_refs))
            ga_cat(c->a, &k, "ap:%s/%s,", ap->meta.ns, ap->meta.name);
    }
    return k.s;
}
