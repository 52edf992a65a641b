/* eds: ClusterLoadAssignments: a service's endpoints selected by port and subset,
 * grouped by locality, and their listing for the bytes cache (keyed by endpoint content). */
/* Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * (immutable) snapshot, so it takes no locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* ---- endpoints ------------------------------------------------------------------------------- */

static const mesh_labels *gen_subset_labels(gen_ctx *c, const char *host, const char *subset)
{
    if (!subset || !subset[0])
        return NULL;
    const mesh_subset *ss = gen_dr_subset(gen_dr(c, host), subset);
    return ss ? &ss->labels : NULL;
}

static bool gen_ep_selected(const mesh_endpoint *ep, uint32_t port, const mesh_labels *sel)
{
    if (ep->service_port != port)
        return false;
    if (sel && !mesh_labels_subset(sel, &ep->labels))
        return false;
    return true;
}

/* EDS names are only ever requested by name; a wildcard request (names NULL) gets every
 * cluster's assignment. The key extra is a hash of exactly the endpoint fields that shape
 * the message, so an endpoint change in one shard only invalidates that shard's entries. */
static void gen_eds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    gen_items all = {0};
    if (!names) {
        gen_list_outbound_clusters(c, NULL, 0, &all);
    } else {
        for (size_t i = 0; i < nnames; i++) {
            uint32_t port;
            char *subset, *host;
            if (!names[i] || !gen_parse_cluster_name(c, names[i], &port, &subset, &host))
                continue;
            const mesh_service *svc = mesh_snapshot_service(c->s, host);
            if (!svc || !gen_service_port(svc, port) || !gen_service_visible(c, svc) ||
                !gen_scope_service(c, svc, port))
                continue;
            gen_item it = {
                .name = ga_strdup(c->a, names[i]), .svc = svc, .port = port, .subset = subset};
            gen_items_add(c, &all, &it);
        }
    }
    for (size_t i = 0; i < all.n; i++) {
        gen_item it = all.v[i];
        const mesh_labels *sel = gen_subset_labels(c, it.svc->hostname, it.subset);
        if (it.subset && it.subset[0] && !sel)
            continue; /* unknown subset: the cluster does not exist */
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, it.svc->hostname);
        uint64_t h = util_hash64(it.name, strlen(it.name), 1469598103934665603ULL);
        for (size_t e = 0; sh && e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (!gen_ep_selected(ep, it.port, sel))
                continue;
            h = util_hash64(ep->address ? ep->address : "", strlen(ep->address ? ep->address : ""),
                            h);
            uint32_t mtls = !c->grpc && gen_endpoint_tls_istio(c->s, sh, ep);
            uint32_t nums[5] = {ep->port, ep->weight, ep->ready, (uint32_t)e, mtls};
            h = util_hash64(nums, sizeof nums, h);
            h = util_hash64(ep->locality ? ep->locality : "",
                            strlen(ep->locality ? ep->locality : ""), h);
        }
        it.extra = ga_printf(c->a, "%llu/%016llx", sh ? (unsigned long long)sh->version : 0ULL,
                             (unsigned long long)h);
        it.eds = true;
        gen_items_add(c, out, &it);
    }
}

static ProtobufCMessage *gen_eds_build(gen_ctx *c, const gen_item *it)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
        GA_MSG(c->a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
               envoy__config__endpoint__v3__cluster_load_assignment__init);
    la->cluster_name = ga_strdup(c->a, it->name);
    const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, it->svc->hostname);
    if (!sh)
        return &la->base;
    const mesh_labels *sel = gen_subset_labels(c, it->svc->hostname, it->subset);

    /* distinct localities, sorted, each a group; a locality message is always present
     * (gRPC drops endpoints without one) */
    char **locs = NULL;
    size_t nlocs = 0;
    for (size_t e = 0; e < sh->neps; e++) {
        if (!gen_ep_selected(&sh->eps[e], it->port, sel))
            continue;
        const char *l = sh->eps[e].locality ? sh->eps[e].locality : "";
        bool seen = false;
        for (size_t k = 0; k < nlocs && !seen; k++)
            seen = strcmp(locs[k], l) == 0;
        if (!seen)
            GA_PUSH(c->a, locs, nlocs, (char *)l);
    }
    if (nlocs > 1)
        qsort(locs, nlocs, sizeof *locs, util_strp_cmp);
    for (size_t k = 0; k < nlocs; k++) {
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle =
            GA_MSG(c->a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                   envoy__config__endpoint__v3__locality_lb_endpoints__init);
        lle->locality = GA_MSG(c->a, Envoy__Config__Core__V3__Locality,
                               envoy__config__core__v3__locality__init);
        /* "region/zone/subzone" */
        char *l = ga_strdup(c->a, locs[k]);
        char *z = strchr(l, '/');
        char *sz = NULL;
        if (z) {
            *z++ = '\0';
            sz = strchr(z, '/');
            if (sz)
                *sz++ = '\0';
        }
        lle->locality->region = l;
        lle->locality->zone = z ? z : ga_strdup(c->a, "");
        lle->locality->sub_zone = sz ? sz : ga_strdup(c->a, "");
        uint32_t total = 0;
        for (size_t e = 0; e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (!gen_ep_selected(ep, it->port, sel) ||
                strcmp(ep->locality ? ep->locality : "", locs[k]) != 0 || !ep->address)
                continue;
            /* gRPC NACKs duplicate addresses: keep the first (prefer a ready one) */
            bool dup = false;
            for (size_t d = 0; d < la->n_endpoints && !dup; d++) {
                Envoy__Config__Endpoint__V3__LocalityLbEndpoints *g = la->endpoints[d];
                for (size_t x = 0; x < g->n_lb_endpoints && !dup; x++) {
                    Envoy__Config__Core__V3__SocketAddress *sa =
                        g->lb_endpoints[x]->endpoint->address->socket_address;
                    dup = sa->port_value == ep->port && strcmp(sa->address, ep->address) == 0;
                }
            }
            for (size_t x = 0; x < lle->n_lb_endpoints && !dup; x++) {
                Envoy__Config__Core__V3__SocketAddress *sa =
                    lle->lb_endpoints[x]->endpoint->address->socket_address;
                if (sa->port_value == ep->port && strcmp(sa->address, ep->address) == 0) {
                    dup = true;
                    if (ep->ready)
                        lle->lb_endpoints[x]->health_status =
                            ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
                }
            }
            if (dup)
                continue;
            Envoy__Config__Endpoint__V3__LbEndpoint *lb = gen_lb_endpoint(c, ep->address, ep->port);
            lb->health_status = ep->ready ? ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY
                                          : ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY;
            uint32_t w = ep->weight ? ep->weight : 1;
            lb->load_balancing_weight = gen_u32(c, w);
            /* auto mTLS: the cluster's transport_socket_matches pick Istio mTLS for these */
            if (!c->grpc && gen_endpoint_tls_istio(c->s, sh, ep))
                lb->metadata = gen_filter_metadata(c, "envoy.transport_socket_match",
                                                   gen_struct_str(c, "tlsMode", "istio"));
            total += w;
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints, lb);
        }
        if (lle->n_lb_endpoints == 0)
            continue;
        /* gRPC silently drops a locality without a weight */
        lle->load_balancing_weight = gen_u32(c, total ? total : 1);
        lle->priority = 0;
        GA_PUSH(c->a, la->endpoints, la->n_endpoints, lle);
    }
    return &la->base;
}

const gen_type_ops gen_eds = {gen_eds_list, gen_eds_build};
