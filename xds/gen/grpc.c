/* gen_grpc: resources for proxyless gRPC clients (node metadata GENERATOR: grpc).
 *
 * gRPC names everything it wants (no wildcards): LDS "host:port" -> an API listener whose
 * HttpConnectionManager points at RDS "outbound|port||fqdn" -> one virtual host whose
 * routes name EDS clusters (LOGICAL_DNS for DNS ServiceEntries: gRPC takes only IPs in
 * EDS). Everything here stays inside what gRPC C core 1.51 accepts
 * (see ISTIO-FACTS.md, "What gRPC's own xDS clients accept"): legacy header matchers,
 * explicit total_weight, no num_retries 0, ROUND_ROBIN only, fault and router filters
 * only, router last. Runs on the caller's thread; no locks.
 */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

#define GRPC_INBOUND_PREFIX "xds.istio.io/grpc/lds/inbound/"

/* "greeter" / "greeter.ns" / "greeter.ns.svc" / FQDN, completed against the proxy's
 * namespace the way Kubernetes DNS search paths would. */
static char *grpc_fqdn(gen_ctx *c, const char *host)
{
    const char *domain = c->s->domain ? c->s->domain : "cluster.local";
    const char *ns = c->p->ns ? c->p->ns : "default";
    size_t dots = 0;
    for (const char *q = host; *q; q++)
        dots += *q == '.';
    if (dots == 0)
        return ga_printf(c->a, "%s.%s.svc.%s", host, ns, domain);
    if (dots == 1)
        return ga_printf(c->a, "%s.svc.%s", host, domain);
    if (util_has_suffix(host, ".svc"))
        return ga_printf(c->a, "%s.%s", host, domain);
    return ga_strdup(c->a, host);
}

/* Splits "host:port"; false when the port is missing or not a number. */
static bool grpc_split(gen_ctx *c, const char *name, char **host, uint32_t *port)
{
    const char *colon = strrchr(name, ':');
    if (!colon || colon == name || !colon[1])
        return false;
    char *end;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (*end || v == 0 || v > 65535)
        return false;
    char *h = ga_alloc(c->a, (size_t)(colon - name) + 1);
    memcpy(h, name, (size_t)(colon - name));
    *host = h;
    *port = (uint32_t)v;
    return true;
}

/* ---- LDS ------------------------------------------------------------------------------------ *
 *
 * Server listeners ("xds.istio.io/grpc/lds/inbound/<ip>:<port>", asked for by gRPC servers
 * created with xds=True), mTLS and policy. gRPC has no usable PERMISSIVE (its filter-chain
 * match cannot tell TLS from plaintext), so, as istiod's grpcgen: the PeerAuthentication
 * mode of the workload's port (the workload found as the endpoint at <ip>:<port>, its pod
 * labels selecting policies) decides; STRICT requires mTLS (DownstreamTlsContext, client
 * certificate required, both from the bootstrap's certificate-provider instance
 * "default"), DISABLE is plaintext, and PERMISSIVE becomes mTLS when clients will use it:
 * the pod says security.istio.io/tlsMode: istio (auto mTLS, istiod's rule), or the
 * DestinationRule the server's namespace sees sets ISTIO_MUTUAL for the service port;
 * plaintext otherwise. The HCM carries the workload's AuthorizationPolicies as gRPC RBAC
 * filters (gRFC A41).
 */

/* marks an inbound item that requires mTLS (gen_item.ref) */
static const char GRPC_MTLS[] = "mtls";

/* "[::1]" -> "::1"; other hosts unchanged */
static char *grpc_bare_ip(gen_ctx *c, const char *host)
{
    char *ip = ga_strdup(c->a, host);
    if (ip[0] == '[') {
        ip++;
        char *rb = strchr(ip, ']');
        if (rb)
            *rb = '\0';
    }
    return ip;
}

static bool grpc_inbound_mtls(gen_ctx *c, const char *ip, uint32_t port)
{
    for (size_t i = 0; i < c->s->nshards; i++) {
        const mesh_endpoint_shard *sh = c->s->shards[i];
        for (size_t e = 0; e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (ep->port != port || !ep->address || strcmp(ep->address, ip) != 0)
                continue;
            mesh_mtls_mode m = gen_peer_mtls(c->s, sh->ns, &ep->labels, port);
            if (m != MESH_MTLS_PERMISSIVE)
                return m == MESH_MTLS_STRICT;
            const char *tm = mesh_labels_get(&ep->labels, "security.istio.io/tlsMode");
            if (tm && strcmp(tm, "istio") == 0)
                return true;
            /* the server side: workloadSelector rules shape outbound traffic only */
            const mesh_destination_rule *dr =
                mesh_snapshot_destination_rule(c->s, sh->hostname, c->p->ns, NULL, NULL);
            const mesh_traffic_policy *tp = gen_policy(dr, ep->service_port, NULL);
            if (tp && tp->has_tls && tp->tls.mode == MESH_TLS_ISTIO_MUTUAL)
                return true;
        }
    }
    /* not an endpoint we know: the namespace's (or mesh's) own mode */
    return gen_peer_mtls(c->s, c->p->ns, &c->p->labels, port) == MESH_MTLS_STRICT;
}

static void grpc_lds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    for (size_t i = 0; names && i < nnames; i++) {
        const char *n = names[i];
        if (!n)
            continue;
        if (util_has_prefix(n, GRPC_INBOUND_PREFIX)) {
            char *hp = ga_strdup(c->a, n + strlen(GRPC_INBOUND_PREFIX));
            char *host;
            uint32_t port;
            if (!grpc_split(c, hp, &host, &port))
                continue;
            /* the mTLS decision is part of the key: it depends on endpoints and rules the
             * name alone does not show */
            bool mtls = grpc_inbound_mtls(c, grpc_bare_ip(c, host), port);
            gen_item it = {.name = ga_strdup(c->a, n),
                           .extra = ga_printf(c->a, "%s|%s|%s", hp, mtls ? "mtls" : "plaintext",
                                              gen_workload_security_key(c)),
                           .port = port,
                           .ref = mtls ? GRPC_MTLS : NULL};
            gen_items_add(c, out, &it);
            continue;
        }
        char *host;
        uint32_t port;
        if (!grpc_split(c, n, &host, &port))
            continue;
        char *fqdn = grpc_fqdn(c, host);
        const mesh_service *svc = mesh_snapshot_service(c->s, fqdn);
        /* istiod's grpcgen lists only the services of the proxy's Sidecar scope: a client
         * confined by a Sidecar finds nothing else (the listener does not exist) */
        if (!svc || !gen_service_port(svc, port) || !gen_scope_service(c, svc, port))
            continue;
        gen_item it = {.name = ga_strdup(c->a, n), .extra = fqdn, .svc = svc, .port = port};
        gen_items_add(c, out, &it);
    }
}

/* A server listener that lets a gRPC xDS server serve: one filter chain whose inline
 * route has a non_forwarding_action (what gRPC servers require), the router as the only
 * HTTP filter (1.51 NACKs fault on servers), and the mTLS transport socket when required. */
static ProtobufCMessage *grpc_inbound_listener(gen_ctx *c, const gen_item *it)
{
    char *ip = ga_strdup(c->a, it->name + strlen(GRPC_INBOUND_PREFIX));
    char *colon = strrchr(ip, ':');
    if (colon)
        *colon = '\0';
    ip = grpc_bare_ip(c, ip);
    bool mtls = it->ref == GRPC_MTLS;
    Envoy__Config__Listener__V3__Listener *l = GA_MSG(c->a, Envoy__Config__Listener__V3__Listener,
                                                      envoy__config__listener__v3__listener__init);
    l->name = ga_strdup(c->a, it->name);
    l->address = gen_address(c, ip, it->port);
    l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND;

    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
        gen_hcm(c, "inbound", "unused");
    h->http_filters[0] = h->http_filters[h->n_http_filters - 1]; /* the router only */
    h->n_http_filters = 1;
    gen_hcm_security_filters(c, h); /* RBAC ahead of the router */
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteConfiguration,
               envoy__config__route__v3__route_configuration__init);
    rc->name = ga_printf(c->a, "inbound|%u", it->port);
    Envoy__Config__Route__V3__VirtualHost *vh = gen_vhost(c, "inbound|hostname");
    gen_vhost_domain(c, vh, "*");
    Envoy__Config__Route__V3__Route *r = gen_catchall_route(c, "/");
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION;
    r->non_forwarding_action = GA_MSG(c->a, Envoy__Config__Route__V3__NonForwardingAction,
                                      envoy__config__route__v3__non_forwarding_action__init);
    GA_PUSH(c->a, vh->routes, vh->n_routes, r);
    GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
    h->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    h->route_config = rc;

    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    fc->name = ga_strdup(c->a, mtls ? "inbound-mtls" : "inbound-plaintext");
    GA_PUSH(c->a, fc->filters, fc->n_filters,
            gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base));
    if (mtls) {
        /* gRPC servers refuse match_subject_alt_names: any identity of our root is let in */
        Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
            GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext,
                   envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__init);
        d->common_tls_context = gen_grpc_common_tls(c, NULL, 0);
        d->require_client_certificate = gen_bool(c, true);
        fc->transport_socket = gen_tls_transport_socket(c, &d->base);
    }
    GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
    return &l->base;
}

static ProtobufCMessage *grpc_lds_build(gen_ctx *c, const gen_item *it)
{
    if (!it->svc)
        return grpc_inbound_listener(c, it);
    Envoy__Config__Listener__V3__Listener *l = GA_MSG(c->a, Envoy__Config__Listener__V3__Listener,
                                                      envoy__config__listener__v3__listener__init);
    l->name = ga_strdup(c->a, it->name);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
        gen_hcm(c, it->name, gen_cluster_name(c, it->port, NULL, it->extra));
    l->api_listener = GA_MSG(c->a, Envoy__Config__Listener__V3__ApiListener,
                             envoy__config__listener__v3__api_listener__init);
    l->api_listener->api_listener = gen_any(c, &h->base);
    return &l->base;
}

const gen_type_ops gen_grpc_lds = {grpc_lds_list, grpc_lds_build};

/* ---- RDS ------------------------------------------------------------------------------------ */

static void grpc_rds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    for (size_t i = 0; names && i < nnames; i++) {
        uint32_t port;
        char *subset, *host;
        if (!names[i] || !gen_parse_cluster_name(c, names[i], &port, &subset, &host) || subset[0])
            continue;
        const mesh_service *svc = mesh_snapshot_service(c->s, host);
        if (!svc || !gen_service_port(svc, port) || !gen_scope_service(c, svc, port))
            continue;
        /* routes depend on mesh VirtualServices (snapshot), sourceLabels matches and which
         * VirtualServices the Sidecar imports */
        const mesh_virtual_service *vs = gen_mesh_vs_for_host(c, host);
        gen_item it = {.name = ga_strdup(c->a, names[i]),
                       .extra = ga_printf(c->a, "%s|%s/%s", gen_vs_proxy_key(c, vs),
                                          vs ? vs->meta.ns : "", vs ? vs->meta.name : "-"),
                       .svc = svc,
                       .port = port};
        gen_items_add(c, out, &it);
    }
}

/* The names a client may dial a service by: "name", "name.ns", "name.ns.svc" and the
 * FQDN, each with and without ":port". gRPC matches the target authority against these. */
static void grpc_domains(gen_ctx *c, Envoy__Config__Route__V3__VirtualHost *vh, const char *fqdn,
                         uint32_t port)
{
    gen_vhost_domain(c, vh, fqdn);
    gen_vhost_domain(c, vh, ga_printf(c->a, "%s:%u", fqdn, port));
    const char *svc = strstr(fqdn, ".svc.");
    if (!svc)
        return;
    char *base = ga_alloc(c->a, (size_t)(svc - fqdn) + 5);
    memcpy(base, fqdn, (size_t)(svc - fqdn));
    char *dot = strchr(base, '.');
    if (dot) {
        char *name = ga_alloc(c->a, (size_t)(dot - base) + 1);
        memcpy(name, base, (size_t)(dot - base));
        gen_vhost_domain(c, vh, name);
        gen_vhost_domain(c, vh, ga_printf(c->a, "%s:%u", name, port));
    }
    gen_vhost_domain(c, vh, base);
    gen_vhost_domain(c, vh, ga_printf(c->a, "%s:%u", base, port));
    gen_vhost_domain(c, vh, ga_printf(c->a, "%s.svc", base));
    gen_vhost_domain(c, vh, ga_printf(c->a, "%s.svc:%u", base, port));
}

static ProtobufCMessage *grpc_rds_build(gen_ctx *c, const gen_item *it)
{
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteConfiguration,
               envoy__config__route__v3__route_configuration__init);
    rc->name = ga_strdup(c->a, it->name);
    Envoy__Config__Route__V3__VirtualHost *vh =
        gen_vhost(c, ga_printf(c->a, "%s:%u", it->svc->hostname, it->port));
    grpc_domains(c, vh, it->svc->hostname, it->port);
    const mesh_virtual_service *vs = gen_mesh_vs_for_host(c, it->svc->hostname);
    if (vs) {
        gen_route_opts o = {.gateway = "mesh", .port = it->port};
        gen_vs_routes(c, vs, &o, &vh->routes, &vh->n_routes);
    }
    if (vh->n_routes == 0) /* gRPC NACKs a virtual host without routes */
        GA_PUSH(c->a, vh->routes, vh->n_routes, gen_default_route(c, it->name, false));
    GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
    return &rc->base;
}

const gen_type_ops gen_grpc_rds = {grpc_rds_list, grpc_rds_build};
