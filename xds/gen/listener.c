/* listener: listener filters, the HTTP connection manager and its filter chain, and the
 * L4 (VirtualService tcp and tls) routes to tcp_proxy, shared by sidecars and gateways. */
/* Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * (immutable) snapshot, so it takes no locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* ---- listeners ----------------------------------------------------------------------------- */

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;

Envoy__Config__Listener__V3__Filter *gen_filter(gen_ctx *c, const char *name,
                                                const ProtobufCMessage *cfg)
{
    Envoy__Config__Listener__V3__Filter *f = GA_MSG(c->a, Envoy__Config__Listener__V3__Filter,
                                                    envoy__config__listener__v3__filter__init);
    f->name = ga_strdup(c->a, name);
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = gen_any(c, cfg);
    return f;
}

void gen_listener_filter_add(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l, const char *name,
                             const ProtobufCMessage *cfg)
{
    Envoy__Config__Listener__V3__ListenerFilter *lf =
        GA_MSG(c->a, Envoy__Config__Listener__V3__ListenerFilter,
               envoy__config__listener__v3__listener_filter__init);
    lf->name = ga_strdup(c->a, name);
    lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    lf->typed_config = gen_any(c, cfg);
    GA_PUSH(c->a, l->listener_filters, l->n_listener_filters, lf);
}

void gen_add_tls_inspector(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l)
{
    Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
        GA_MSG(c->a, Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector,
               envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__init);
    gen_listener_filter_add(c, l, "envoy.filters.listener.tls_inspector", &ti->base);
}

gen_hfilter *gen_http_filter_new(gen_ctx *c, const char *name, const ProtobufCMessage *cfg)
{
    HttpFilter *f =
        GA_MSG(c->a, HttpFilter,
               envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init);
    f->name = ga_strdup(c->a, name);
    f->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = gen_any(c, cfg);
    return f;
}

static void gen_http_filter(gen_ctx *c, HCM *h, const char *name, const ProtobufCMessage *cfg)
{
    GA_PUSH(c->a, h->http_filters, h->n_http_filters, gen_http_filter_new(c, name, cfg));
}

void gen_hcm_security_filters(gen_ctx *c, HCM *h)
{
    gen_hfilter **f = NULL;
    size_t n = 0;
    gen_authn_http_filters(c, &f, &n);
    gen_authz_http_filters(c, &f, &n);
    if (!n)
        return;
    /* istiod's order: authentication, then authorization, ahead of every other filter */
    gen_hfilter **all = ga_alloc(c->a, (n + h->n_http_filters) * sizeof *all);
    memcpy(all, f, n * sizeof *all);
    memcpy(all + n, h->http_filters, h->n_http_filters * sizeof *all);
    h->http_filters = all;
    h->n_http_filters += n;
}

HCM *gen_hcm(gen_ctx *c, const char *stat_prefix, const char *route_name)
{
    HCM *h = GA_MSG(
        c->a, HCM,
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init);
    h->stat_prefix = ga_strdup(c->a, stat_prefix);
    h->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    h->rds = GA_MSG(c->a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds,
                    envoy__extensions__filters__network__http_connection_manager__v3__rds__init);
    h->rds->config_source = gen_ads_source(c);
    h->rds->route_config_name = ga_strdup(c->a, route_name);
    if (!c->grpc) {
        Envoy__Extensions__Filters__Http__Cors__V3__Cors *cors =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Cors__V3__Cors,
                   envoy__extensions__filters__http__cors__v3__cors__init);
        gen_http_filter(c, h, "envoy.filters.http.cors", &cors->base);
    }
    Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *fault =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault,
               envoy__extensions__filters__http__fault__v3__httpfault__init);
    gen_http_filter(c, h, "envoy.filters.http.fault", &fault->base);
    Envoy__Extensions__Filters__Http__Router__V3__Router *router =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Router__V3__Router,
               envoy__extensions__filters__http__router__v3__router__init);
    /* gRPC and Envoy both need the router last */
    gen_http_filter(c, h, "envoy.filters.http.router", &router->base);
    return h;
}

Envoy__Config__Listener__V3__Filter *gen_hcm_filter(gen_ctx *c, const char *stat_prefix,
                                                    const char *route_name)
{
    HCM *h = gen_hcm(c, stat_prefix, route_name);
    return gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base);
}

Envoy__Config__Listener__V3__Filter *gen_tcp_proxy_filter(gen_ctx *c, const char *stat_prefix,
                                                          const char *cluster, bool log)
{
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        GA_MSG(c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__init);
    tp->stat_prefix = ga_strdup(c->a, stat_prefix);
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
    tp->cluster = ga_strdup(c->a, cluster);
    if (log)
        gen_access_log_add(c, &tp->access_log, &tp->n_access_log);
    return gen_filter(c, "envoy.filters.network.tcp_proxy", &tp->base);
}

/* ---- L4 routes (VirtualService tcp and tls) -------------------------------------------------- */

bool gen_l4_match_applies(gen_ctx *c, const mesh_l4_match *m, const char *gateway, uint32_t port)
{
    if (m->port && port && m->port != port)
        return false;
    if (m->ngateways) {
        bool found = false;
        for (size_t i = 0; i < m->ngateways && !found; i++)
            found = m->gateways[i] && strcmp(m->gateways[i], gateway) == 0;
        if (!found)
            return false;
    }
    if (m->source_labels.n && !mesh_labels_subset(&m->source_labels, &c->p->labels))
        return false;
    return true;
}

const mesh_l4_route *gen_vs_tcp_route(gen_ctx *c, const mesh_virtual_service *vs,
                                      const char *gateway, uint32_t port)
{
    /* Istio: the first tcp route with a matching clause (or none) wins */
    for (size_t i = 0; vs && i < vs->ntcp; i++) {
        const mesh_l4_route *r = &vs->tcp[i];
        if (r->nmatches == 0)
            return r;
        for (size_t m = 0; m < r->nmatches; m++)
            if (gen_l4_match_applies(c, &r->matches[m], gateway, port))
                return r;
    }
    return NULL;
}

bool gen_vs_l4_uses_labels(const mesh_virtual_service *vs)
{
    for (size_t i = 0; vs && i < vs->ntcp; i++)
        for (size_t m = 0; m < vs->tcp[i].nmatches; m++)
            if (vs->tcp[i].matches[m].source_labels.n)
                return true;
    for (size_t i = 0; vs && i < vs->ntls; i++)
        for (size_t m = 0; m < vs->tls[i].nmatches; m++)
            if (vs->tls[i].matches[m].source_labels.n)
                return true;
    return false;
}

Envoy__Config__Listener__V3__Filter *gen_tcp_route_filter(gen_ctx *c, const mesh_l4_route *r,
                                                          uint32_t ctx_port)
{
    /* weight 0 carries no traffic and Envoy rejects it in weighted_clusters */
    size_t live = 0, last = 0;
    for (size_t i = 0; r && i < r->nroute; i++) {
        if (r->nroute > 1 && r->route[i].weight <= 0)
            continue;
        live++;
        last = i;
    }
    if (live <= 1) {
        const char *cl =
            live ? gen_dest_cluster(c, &r->route[last].destination, ctx_port) : "BlackHoleCluster";
        return gen_tcp_proxy_filter(c, cl, cl, true);
    }
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        GA_MSG(c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__init);
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc = GA_MSG(
        c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster,
        envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__init);
    for (size_t i = 0; i < r->nroute; i++) {
        if (r->route[i].weight <= 0)
            continue;
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight
            *cw = GA_MSG(
                c->a,
                Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight,
                envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__cluster_weight__init);
        cw->name = gen_dest_cluster(c, &r->route[i].destination, ctx_port);
        cw->weight = (uint32_t)r->route[i].weight;
        GA_PUSH(c->a, wc->clusters, wc->n_clusters, cw);
    }
    /* Istio names the stats of a split after the first destination's cluster */
    tp->stat_prefix = ga_strdup(c->a, wc->clusters[0]->name);
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
    tp->weighted_clusters = wc;
    gen_access_log_add(c, &tp->access_log, &tp->n_access_log);
    return gen_filter(c, "envoy.filters.network.tcp_proxy", &tp->base);
}
