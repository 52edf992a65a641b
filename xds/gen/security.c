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
