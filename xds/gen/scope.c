/* scope: what a Sidecar resource lets a proxy see (istiod's SidecarScope,
 * pilot/pkg/model/sidecar.go) and where its unknown outbound traffic goes.
 *
 * The Sidecar that scopes a proxy is part of its memo class (gen_view.sidecar, picked by
 * mesh_snapshot_sidecar_for); the scope itself is derived from it once per generation
 * call, in the call's arena: per egress listener the services and mesh VirtualServices
 * its hosts import, and their union plus the services those VirtualServices route to (what
 * CDS and EDS serve, with the ports they may use). No Sidecar (or one without egress) is
 * istiod's default scope, one catch-all `*`/`*` listener: everything exportTo lets the
 * proxy's namespace see, which is what the generators did before scoping, so that case
 * builds nothing. Runs on the caller's thread; touches only the arena and the immutable
 * snapshot, so it takes no locks.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* ---- host matching (pkg/config/host/name.go) ------------------------------------------- */

static bool wild(const char *h)
{
    return h && h[0] == '*';
}

bool gen_host_subset_of(const char *n, const char *o)
{
    if (!n || !o)
        return false;
    if (wild(n)) {
        if (!wild(o) || strlen(n) < strlen(o))
            return false;
        return util_has_suffix(n + 1, o + 1);
    }
    if (wild(o))
        return util_has_suffix(n, o + 1);
    return strcmp(n, o) == 0;
}

bool gen_host_overlaps(const char *n, const char *o)
{
    if (!n || !o)
        return false;
    if (wild(n) && wild(o))
        return strlen(n) < strlen(o) ? util_has_suffix(o + 1, n + 1)
                                     : util_has_suffix(n + 1, o + 1);
    if (wild(n))
        return util_has_suffix(o, n + 1);
    if (wild(o))
        return util_has_suffix(n, o + 1);
    return strcmp(n, o) == 0;
}

/* istiod's hostClassification: an exact import matches only the same exact host; otherwise
 * a service host must be a subset of the import (Matches), a VirtualService host may also
 * cover it (VSMatches without gateway semantics, the bidirectional Matches). */
static bool host_imports(const char *imported, const char *h, bool vs)
{
    if (strcmp(imported, h) == 0)
        return true;
    if (!wild(imported) && !wild(h))
        return false;
    return vs ? gen_host_overlaps(h, imported) : gen_host_subset_of(h, imported);
}

bool gen_egress_imports(const mesh_sidecar_egress *e, const char *proxy_ns, const char *ns,
                        const char *host, bool vs)
{
    if (!e || !host)
        return false;
    for (size_t i = 0; i < e->nhosts; i++) {
        const mesh_sidecar_host *h = &e->hosts[i];
        /* "~" is a namespace no object lives in: such an entry imports nothing */
        if (h->exclude || !h->ns || !h->host)
            continue;
        const char *hns = h->dot ? proxy_ns : h->ns;
        bool ns_ok = strcmp(hns, "*") == 0 || (ns && hns && strcmp(hns, ns) == 0);
        if (ns_ok && host_imports(h->host, host, vs))
            return true;
    }
    return false;
}

/* istiod's needsPortMatch: a listener on a port imports services on that port only, except
 * a generic HTTP_PROXY listener. */
static bool egress_port_match(const mesh_sidecar_egress *e)
{
    return e && e->has_port && e->port.number != 0 &&
           !(e->port.protocol_name && strcasecmp(e->port.protocol_name, "HTTP_PROXY") == 0);
}

/* ---- the scope ---------------------------------------------------------------------------- */

size_t gen_service_index(const mesh_snapshot *s, const mesh_service *svc)
{
    size_t lo = 0, hi = s->nservices;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(s->services[mid]->hostname, svc->hostname);
        if (d == 0)
            return s->services[mid] == svc ? mid : s->nservices;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return s->nservices;
}

static void scope_add_port(gen_ctx *c, gen_scope *sc, size_t i, uint32_t port)
{
    gen_scope_svc *v = &sc->svc[i];
    v->in = true;
    if (v->all || port == 0) {
        v->all = true;
        return;
    }
    for (size_t k = 0; k < v->nports; k++)
        if (v->ports[k] == port)
            return;
    GA_PUSH(c->a, v->ports, v->nports, port);
}

/* A VirtualService destination brings its service into CDS/EDS (istiod's
 * collectImportedServices): the listener's port when it matches ports, else the
 * destination's port, else every port. */
static void scope_add_dest(gen_ctx *c, gen_scope *sc, const mesh_sidecar_egress *e,
                           const mesh_destination *d)
{
    if (!d || !d->host)
        return;
    const mesh_service *svc = mesh_snapshot_service(c->s, d->host);
    if (!svc || !gen_service_exported(c, svc))
        return;
    size_t i = gen_service_index(c->s, svc);
    if (i >= c->s->nservices)
        return;
    uint32_t port = egress_port_match(e) ? e->port.number : d->port;
    if (port && !gen_service_port(svc, port))
        return; /* istiod drops a destination on a port the service does not have */
    scope_add_port(c, sc, i, port);
}

/* istiod's virtualServiceDestinationsFilteredBySourceNamespace: an HTTP route counts
 * unless every match names another sourceNamespace. */
static bool route_for_ns(const mesh_http_route *r, const char *ns)
{
    if (r->nmatches == 0)
        return true;
    for (size_t m = 0; m < r->nmatches; m++) {
        const char *sn = r->matches[m].source_namespace;
        if (!sn || !sn[0] || (ns && strcmp(sn, ns) == 0))
            return true;
    }
    return false;
}

static void scope_vs_dests(gen_ctx *c, gen_scope *sc, const mesh_sidecar_egress *e,
                           const mesh_virtual_service *vs)
{
    for (size_t r = 0; r < vs->nhttp; r++) {
        const mesh_http_route *hr = &vs->http[r];
        if (!route_for_ns(hr, c->p->ns))
            continue;
        for (size_t d = 0; d < hr->nroute; d++)
            scope_add_dest(c, sc, e, &hr->route[d].destination);
        if (hr->has_mirror)
            scope_add_dest(c, sc, e, &hr->mirror);
    }
    for (size_t r = 0; r < vs->ntcp; r++)
        for (size_t d = 0; d < vs->tcp[r].nroute; d++)
            scope_add_dest(c, sc, e, &vs->tcp[r].route[d].destination);
    for (size_t r = 0; r < vs->ntls; r++)
        for (size_t d = 0; d < vs->tls[r].nroute; d++)
            scope_add_dest(c, sc, e, &vs->tls[r].route[d].destination);
}

static void scope_listener(gen_ctx *c, gen_scope *sc, gen_egress *l)
{
    const mesh_snapshot *s = c->s;
    const mesh_sidecar_egress *e = l->e;
    l->svc = ga_alloc(c->a, s->nservices + 1);
    l->vs = ga_alloc(c->a, s->nvss + 1);
    bool pm = egress_port_match(e);
    for (size_t i = 0; i < s->nservices; i++) {
        const mesh_service *svc = s->services[i];
        if (!gen_service_exported(c, svc) ||
            !gen_egress_imports(e, c->p->ns, svc->meta.ns, svc->hostname, false))
            continue;
        if (pm && !gen_service_port(svc, e->port.number))
            continue;
        l->svc[i] = 1;
        scope_add_port(c, sc, i, pm ? e->port.number : 0);
    }
    for (size_t v = 0; v < s->nvss; v++) {
        const mesh_virtual_service *vs = s->vss[v];
        if (!gen_vs_bound_to(vs, "mesh") || !gen_vs_visible(c, vs))
            continue;
        for (size_t h = 0; h < vs->nhosts; h++) {
            const char *vh = vs->fqdn_hosts ? vs->fqdn_hosts[h] : vs->hosts[h];
            if (vh && gen_egress_imports(e, c->p->ns, vs->meta.ns, vh, true)) {
                l->vs[v] = 1;
                break;
            }
        }
    }
}

const gen_scope *gen_scope_get(gen_ctx *c)
{
    if (c->scope)
        return c->scope;
    gen_scope *sc = ga_alloc(c->a, sizeof *sc);
    const mesh_sidecar *side = c->p->sidecar;
    sc->sidecar = side && side->negress ? side : NULL;
    /* the Sidecar's outboundTrafficPolicy when it has one, else mesh config's */
    bool allow_any = !c->registry_only;
    if (side && side->outbound_mode != MESH_OUTBOUND_UNSET)
        allow_any = side->outbound_mode == MESH_OUTBOUND_ALLOW_ANY;
    sc->allow_any = allow_any;
    if (!allow_any)
        sc->egress_cluster = "BlackHoleCluster";
    else if (side && side->outbound_mode != MESH_OUTBOUND_UNSET && side->has_egress_proxy &&
             side->egress_proxy.host)
        sc->egress_cluster = gen_cluster_name(c, side->egress_proxy.port, side->egress_proxy.subset,
                                              side->egress_proxy.host);
    else
        sc->egress_cluster = "PassthroughCluster";
    sc->key = side ? ga_printf(c->a, "sc=%s/%s", side->meta.ns ? side->meta.ns : "",
                               side->meta.name ? side->meta.name : "")
                   : "sc=-";
    c->scope = sc;
    if (!sc->sidecar)
        return sc;
    sc->svc = ga_alloc(c->a, (c->s->nservices + 1) * sizeof *sc->svc);
    sc->nl = side->negress;
    sc->l = ga_alloc(c->a, sc->nl * sizeof *sc->l);
    for (size_t i = 0; i < sc->nl; i++) {
        sc->l[i].e = &side->egress[i];
        scope_listener(c, sc, &sc->l[i]);
    }
    for (size_t i = 0; i < sc->nl; i++)
        for (size_t v = 0; v < c->s->nvss; v++)
            if (sc->l[i].vs[v])
                scope_vs_dests(c, sc, sc->l[i].e, c->s->vss[v]);
    return sc;
}

bool gen_scope_service(gen_ctx *c, const mesh_service *svc, uint32_t port)
{
    const gen_scope *sc = gen_scope_get(c);
    if (!sc->sidecar || !svc)
        return true;
    size_t i = gen_service_index(c->s, svc);
    if (i >= c->s->nservices || !sc->svc[i].in)
        return false;
    if (port == 0 || sc->svc[i].all)
        return true;
    for (size_t k = 0; k < sc->svc[i].nports; k++)
        if (sc->svc[i].ports[k] == port)
            return true;
    return false;
}

const gen_egress *gen_scope_egress_for_port(gen_ctx *c, uint32_t port)
{
    const gen_scope *sc = gen_scope_get(c);
    /* istiod's GetEgressListenerForRDS: the listener on the port, else the catch-all (which
     * validation puts last); Unix socket listeners (port 0) serve no numbered route */
    for (size_t i = 0; i < sc->nl; i++) {
        const mesh_sidecar_egress *e = sc->l[i].e;
        if (!e->has_port || (e->port.number == port && port != 0))
            return &sc->l[i];
    }
    return NULL;
}

bool gen_egress_has_service(gen_ctx *c, const gen_egress *eg, const mesh_service *svc)
{
    if (!eg)
        return !gen_scope_get(c)->sidecar;
    size_t i = gen_service_index(c->s, svc);
    return i < c->s->nservices && eg->svc[i];
}

bool gen_scope_vs(gen_ctx *c, size_t vs_index)
{
    const gen_scope *sc = gen_scope_get(c);
    if (!sc->sidecar)
        return true;
    if (c->egress)
        return c->egress->vs[vs_index] != 0;
    for (size_t i = 0; i < sc->nl; i++)
        if (sc->l[i].vs[vs_index])
            return true;
    return false;
}
