/* gen_gateway: listeners and routes for Envoy gateways (router~ nodes).
 *
 * A gateway proxy gets every Gateway whose selector is a subset of its labels, in any
 * namespace. Each server port binds on the gateway Service's targetPort (istio-ingressgateway
 * maps 80->8080); HTTP servers share "http.<bind port>", TLS-terminated HTTPS servers get
 * "https.<port>.<portName>.<gwName>.<gwNs>" each. TLS PASSTHROUGH servers get one filter
 * chain per VirtualService tls route match (server_names = its sniHosts the server
 * admits) with a tcp_proxy; TCP servers (and TLS servers terminated here) a tcp_proxy from
 * the first applicable tcp route, weighted when it has several destinations.
 * AUTO_PASSTHROUGH is not generated. Virtual hosts come from VirtualServices
 * bound to the gateway whose hosts intersect the server's. Clusters and endpoints are the
 * shared outbound ones (gen_common.c). Runs on the caller's thread; no locks.
 */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* The VirtualServices bound to one selected Gateway, in snapshot order. */
typedef struct gw_vs_list {
    const mesh_virtual_service **v;
    size_t n;
} gw_vs_list;

typedef struct gw_server {
    const mesh_gateway *gw;
    const mesh_gateway_server *srv;
    uint32_t bind; /* listener port */
    char *gw_key;  /* "ns/name" */
    const gw_vs_list *vss;
    char *route; /* its RDS name ("http.<bind>", "https.<port>.<name>.<gw>.<ns>"), or NULL */
} gw_server;

typedef struct gw_ctx {
    gw_server *servers;
    size_t nservers;
    const char *prefix;  /* proxy namespace + gateway service */
    const char *key;     /* prefix + selected gateways: the cache input of listeners */
    const char *lds_key; /* key + the policies selecting the gateway (lazily) */
    gen_strmap routes;   /* route name -> gw_route_servers (lazily, for RDS) */
} gw_ctx;

/* The servers (indexes into gw_ctx.servers) that share one route name. */
typedef struct gw_route_servers {
    size_t *v;
    size_t n;
} gw_route_servers;

static bool gw_is_http(const mesh_gateway_server *srv)
{
    return mesh_protocol_is_http(srv->protocol);
}

/* The server terminates TLS here: SIMPLE, MUTUAL, ISTIO_MUTUAL or OPTIONAL_MUTUAL (not
 * PASSTHROUGH, AUTO_PASSTHROUGH or unset). */
static bool gw_tls_terminated(const mesh_gateway_server *srv)
{
    return srv->has_tls &&
           (srv->tls.mode == MESH_SERVER_TLS_SIMPLE || srv->tls.mode == MESH_SERVER_TLS_MUTUAL ||
            srv->tls.mode == MESH_SERVER_TLS_ISTIO_MUTUAL ||
            srv->tls.mode == MESH_SERVER_TLS_OPTIONAL_MUTUAL);
}

/* HTTPS terminated here (not passthrough): gets its own filter chain and route. */
static bool gw_is_https_term(const mesh_gateway_server *srv)
{
    return srv->protocol == MESH_PROTO_HTTPS && gw_tls_terminated(srv);
}

/* TLS passed through untouched: routed on SNI by the VirtualService tls routes. */
static bool gw_is_passthrough(const mesh_gateway_server *srv)
{
    return (srv->protocol == MESH_PROTO_HTTPS || srv->protocol == MESH_PROTO_TLS) && srv->has_tls &&
           srv->tls.mode == MESH_SERVER_TLS_PASSTHROUGH;
}

/* TLS terminated here, then opaque TCP: tcp routes behind a TLS transport socket. */
static bool gw_is_tls_tcp(const mesh_gateway_server *srv)
{
    return srv->protocol == MESH_PROTO_TLS && gw_tls_terminated(srv);
}

/* Plain TCP (and the other opaque protocols): tcp routes. */
static bool gw_is_tcp(const mesh_gateway_server *srv)
{
    return !mesh_protocol_is_http(srv->protocol) && srv->protocol != MESH_PROTO_HTTPS &&
           srv->protocol != MESH_PROTO_TLS && srv->protocol != MESH_PROTO_UDP;
}

static char *gw_https_route_name(gen_ctx *c, const gw_server *s)
{
    return ga_printf(c->a, "https.%u.%s.%s.%s", s->srv->port,
                     s->srv->port_name ? s->srv->port_name : "", s->gw->meta.name, s->gw->meta.ns);
}

/* The Service in front of this gateway pod: its selector matches the proxy's labels; one
 * in the proxy's namespace wins. */
static const mesh_service *gw_service(gen_ctx *c)
{
    const mesh_service *any = NULL;
    for (size_t i = 0; i < c->s->nservices; i++) {
        const mesh_service *svc = c->s->services[i];
        if (!svc->selector.n || !mesh_labels_subset(&svc->selector, &c->p->labels))
            continue;
        if (c->p->ns && svc->meta.ns && strcmp(svc->meta.ns, c->p->ns) == 0)
            return svc;
        if (!any)
            any = svc;
    }
    return any;
}

static gw_ctx *gw_get(gen_ctx *c)
{
    if (c->fctx)
        return c->fctx;
    gw_ctx *g = ga_alloc(c->a, sizeof *g);
    const mesh_service *svc = gw_service(c);
    /* the namespace picks the DestinationRules routes see (consistent-hash policies) */
    gen_sbuf key = {0};
    ga_cat(c->a, &key, "ns=%s;svc=%s;", c->p->ns ? c->p->ns : "", svc ? svc->hostname : "-");
    g->prefix = ga_strdup(c->a, key.s);
    ga_cat(c->a, &key, "gws=");
    /* selected Gateways by "ns/name", each with the VirtualServices bound to it: a server
     * then visits only its own, so the cost is linear in Gateways plus bindings (scanning
     * every VirtualService per server was quadratic) */
    gen_strmap bound = {0};
    for (size_t i = 0; i < c->s->ngws; i++) {
        const mesh_gateway *gw = c->s->gws[i];
        if (!mesh_labels_subset(&gw->selector, &c->p->labels))
            continue;
        char *gk = ga_printf(c->a, "%s/%s", gw->meta.ns, gw->meta.name);
        ga_cat(c->a, &key, "%s,", gk);
        void **slot = gen_strmap_slot(c->a, &bound, gk, true);
        if (!*slot)
            *slot = ga_alloc(c->a, sizeof(gw_vs_list));
        for (size_t k = 0; k < gw->nservers; k++) {
            gw_server s = {.gw = gw, .srv = &gw->servers[k], .gw_key = gk, .vss = *slot};
            s.bind = gw->servers[k].port;
            const mesh_port *sp = svc ? gen_service_port(svc, s.bind) : NULL;
            if (sp && sp->target_port)
                s.bind = sp->target_port;
            GA_PUSH(c->a, g->servers, g->nservers, s);
        }
    }
    g->key = ga_sbuf_str(c->a, &key);
    for (size_t i = 0; i < g->nservers; i++) {
        gw_server *sv = &g->servers[i];
        if (gw_is_http(sv->srv))
            sv->route = ga_printf(c->a, "http.%u", sv->bind);
        else if (gw_is_https_term(sv->srv))
            sv->route = gw_https_route_name(c, sv);
    }
    for (size_t v = 0; bound.n && v < c->s->nvss; v++) {
        const mesh_virtual_service *vs = c->s->vss[v];
        for (size_t k = 0; k < vs->ngateways; k++) {
            void **slot =
                vs->gateways[k] ? gen_strmap_slot(c->a, &bound, vs->gateways[k], false) : NULL;
            gw_vs_list *l = slot ? *slot : NULL;
            if (l && !(l->n && l->v[l->n - 1] == vs)) /* a gateway listed twice: once */
                GA_PUSH(c->a, l->v, l->n, vs);
        }
    }
    c->fctx = g;
    return g;
}

/* ---- LDS ------------------------------------------------------------------------------------ */

static void gw_lds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    gw_ctx *g = gw_get(c);
    uint32_t *ports = NULL;
    size_t nports = 0;
    for (size_t i = 0; i < g->nservers; i++) {
        const gw_server *s = &g->servers[i];
        if (!gw_is_http(s->srv) && !gw_is_https_term(s->srv) && !gw_is_passthrough(s->srv) &&
            !gw_is_tls_tcp(s->srv) && !gw_is_tcp(s->srv))
            continue; /* AUTO_PASSTHROUGH (and UDP) are not generated */
        bool seen = false;
        for (size_t k = 0; k < nports && !seen; k++)
            seen = ports[k] == s->bind;
        if (seen)
            continue;
        GA_PUSH(c->a, ports, nports, s->bind);
        char *name = ga_printf(c->a, "0.0.0.0_%u", s->bind);
        if (names && !gen_names_has(names, nnames, name))
            continue;
        /* the policies that select the gateway shape its listeners' filters */
        if (!g->lds_key)
            g->lds_key = ga_printf(c->a, "%s|%s", g->key, gen_workload_security_key(c));
        gen_item it = {.name = name, .extra = (char *)g->lds_key, .port = s->bind};
        gen_items_add(c, out, &it);
    }
}

static Envoy__Config__Core__V3__TransportSocket *gw_downstream_tls(gen_ctx *c, const gw_server *s,
                                                                   bool http)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct;
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        gen_downstream_tls_new(c, &ct);
    if (http) {
        GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "h2"));
        GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "http/1.1"));
    }
    /* ISTIO_MUTUAL serves the gateway's own workload certificate, not a Secret */
    const char *cred =
        s->srv->tls.mode == MESH_SERVER_TLS_ISTIO_MUTUAL ? NULL : s->srv->tls.credential_name;
    gen_sds_certificate(c, ct, cred);
    if (s->srv->tls.mode != MESH_SERVER_TLS_SIMPLE) {
        gen_sds_validation(c, ct, cred);
        d->require_client_certificate =
            gen_bool(c, s->srv->tls.mode != MESH_SERVER_TLS_OPTIONAL_MUTUAL);
    } else {
        d->require_client_certificate = gen_bool(c, false);
    }
    return gen_tls_transport_socket(c, &d->base);
}

/* A filter chain terminating the server's TLS: matched on its hosts as SNI ("*" matches
 * any, so it adds no name); the caller adds the filters. */
static Envoy__Config__Listener__V3__FilterChain *gw_tls_chain(gen_ctx *c, const gw_server *s,
                                                              bool http)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    fc->filter_chain_match = GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChainMatch,
                                    envoy__config__listener__v3__filter_chain_match__init);
    for (size_t h = 0; h < s->srv->nhosts; h++)
        if (s->srv->hosts[h] && strcmp(s->srv->hosts[h], "*") != 0)
            GA_PUSH(c->a, fc->filter_chain_match->server_names,
                    fc->filter_chain_match->n_server_names, ga_strdup(c->a, s->srv->hosts[h]));
    fc->transport_socket = gw_downstream_tls(c, s, http);
    return fc;
}

/* Does the server's host entry admit a VirtualService in vs_ns? ("*" any, "." the
 * gateway's own namespace, else that namespace.) */
static bool gw_host_ns_ok(const gw_server *s, size_t h, const char *vs_ns)
{
    const char *hn = s->srv->host_namespaces ? s->srv->host_namespaces[h] : NULL;
    if (!hn || !hn[0] || strcmp(hn, "*") == 0)
        return true;
    if (strcmp(hn, ".") == 0)
        return strcmp(vs_ns, s->gw->meta.ns) == 0;
    return strcmp(vs_ns, hn) == 0;
}

/* Is host (a VS host or an SNI name) admitted by one of the server's hosts for a
 * VirtualService in vs_ns? */
static bool gw_server_admits(const gw_server *s, const char *host, const char *vs_ns)
{
    for (size_t h = 0; h < s->srv->nhosts; h++)
        if (s->srv->hosts[h] && gen_host_match(s->srv->hosts[h], host) &&
            gw_host_ns_ok(s, h, vs_ns))
            return true;
    return false;
}

/* A VirtualService this server routes for: bound to the gateway, visible to the proxy,
 * one of its hosts admitted by the server. */
static bool gw_vs_applies(gen_ctx *c, const gw_server *s, const mesh_virtual_service *vs)
{
    if (!gen_vs_bound_to(vs, s->gw_key) || !gen_vs_visible(c, vs))
        return false;
    for (size_t h = 0; h < vs->nhosts; h++)
        if (vs->hosts[h] && gw_server_admits(s, vs->hosts[h], vs->meta.ns))
            return true;
    return false;
}

/* TCP server: the first applicable tcp route of the first VirtualService that has one. */
static Envoy__Config__Listener__V3__Filter *gw_tcp_filter(gen_ctx *c, const gw_server *s)
{
    for (size_t v = 0; v < s->vss->n; v++) {
        const mesh_virtual_service *vs = s->vss->v[v];
        if (!vs->ntcp || !gw_vs_applies(c, s, vs))
            continue;
        const mesh_l4_route *r = gen_vs_tcp_route(c, vs, s->gw_key, s->srv->port);
        if (r)
            return gen_tcp_route_filter(c, r, s->srv->port);
    }
    return NULL;
}

/* A TCP chain's filters, in istiod's order: the metadata exchange when s terminates Istio
 * mTLS (ISTIO_MUTUAL tcp routes: the peer is a sidecar; s NULL: never), the gateway's
 * network RBAC, istio.stats, then f. */
static void gw_tcp_filters(gen_ctx *c, const gw_server *s,
                           Envoy__Config__Listener__V3__FilterChain *fc,
                           Envoy__Config__Listener__V3__Filter *f)
{
    if (s && s->srv->has_tls && s->srv->tls.mode == MESH_SERVER_TLS_ISTIO_MUTUAL)
        gen_tcp_mx_filter(c, &fc->filters, &fc->n_filters);
    gen_authz_network_filters(c, &fc->filters, &fc->n_filters);
    gen_tcp_stats_filter(c, GEN_CLASS_GATEWAY, &fc->filters, &fc->n_filters);
    GA_PUSH(c->a, fc->filters, fc->n_filters, f);
}

/* PASSTHROUGH server: one filter chain per applicable tls route match, on the match's SNI
 * names the server admits; a name already claimed by an earlier chain stays with it
 * (Envoy refuses two chains with the same match). */
static size_t gw_passthrough_chains(gen_ctx *c, const gw_server *s, gen_strmap *used,
                                    Envoy__Config__Listener__V3__Listener *l)
{
    size_t added = 0;
    for (size_t v = 0; v < s->vss->n; v++) {
        const mesh_virtual_service *vs = s->vss->v[v];
        if (!vs->ntls || !gw_vs_applies(c, s, vs))
            continue;
        for (size_t r = 0; r < vs->ntls; r++) {
            const mesh_l4_route *tr = &vs->tls[r];
            for (size_t m = 0; m < tr->nmatches; m++) {
                const mesh_l4_match *mm = &tr->matches[m];
                if (!gen_l4_match_applies(c, mm, s->gw_key, s->srv->port))
                    continue;
                Envoy__Config__Listener__V3__FilterChainMatch *fcm =
                    GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChainMatch,
                           envoy__config__listener__v3__filter_chain_match__init);
                for (size_t h = 0; h < mm->nsni_hosts; h++) {
                    const char *sni = mm->sni_hosts[h];
                    if (!sni || gen_strmap_slot(c->a, used, sni, false) ||
                        !gw_server_admits(s, sni, vs->meta.ns))
                        continue;
                    gen_strset_add(c->a, used, sni);
                    GA_PUSH(c->a, fcm->server_names, fcm->n_server_names, ga_strdup(c->a, sni));
                }
                if (fcm->n_server_names == 0)
                    continue;
                Envoy__Config__Listener__V3__FilterChain *fc =
                    GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
                           envoy__config__listener__v3__filter_chain__init);
                fc->filter_chain_match = fcm;
                gw_tcp_filters(c, NULL, fc, gen_tcp_route_filter(c, tr, s->srv->port));
                GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
                added++;
            }
        }
    }
    return added;
}

/* The gateway's HCM with the authentication and authorization filters of the policies
 * that select the gateway workload (istiod applies them to gateways as to sidecars) and
 * the gateway's telemetry. */
static Envoy__Config__Listener__V3__Filter *gw_hcm_filter(gen_ctx *c, uint32_t bind,
                                                          const char *route)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
        gen_hcm(c, ga_printf(c->a, "outbound_0.0.0.0_%u", bind), route);
    gen_hcm_security_filters(c, h);
    gen_hcm_telemetry(c, h, GEN_CLASS_GATEWAY);
    return gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base);
}

static ProtobufCMessage *gw_lds_build(gen_ctx *c, const gen_item *it)
{
    gw_ctx *g = gw_get(c);
    c->tel_class = GEN_CLASS_GATEWAY; /* for the tcp_proxy filters' access logs */
    Envoy__Config__Listener__V3__Listener *l = GA_MSG(c->a, Envoy__Config__Listener__V3__Listener,
                                                      envoy__config__listener__v3__listener__init);
    l->name = ga_strdup(c->a, it->name);
    l->address = gen_address(c, "0.0.0.0", it->port);
    l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND;
    bool plain_done = false, any_tls = false; /* one chain without a match per listener */
    gen_strmap used = {0};                    /* SNI names claimed by a chain */
    for (size_t i = 0; i < g->nservers; i++) {
        const gw_server *s = &g->servers[i];
        if (s->bind != it->port)
            continue;
        Envoy__Config__Listener__V3__FilterChain *fc = NULL;
        if (gw_is_http(s->srv)) {
            if (plain_done)
                continue; /* all plain HTTP servers on a port share one chain and route */
            plain_done = true;
            fc = GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
                        envoy__config__listener__v3__filter_chain__init);
            GA_PUSH(c->a, fc->filters, fc->n_filters,
                    gw_hcm_filter(c, s->bind, ga_printf(c->a, "http.%u", s->bind)));
        } else if (gw_is_https_term(s->srv)) {
            any_tls = true;
            fc = gw_tls_chain(c, s, true);
            GA_PUSH(c->a, fc->filters, fc->n_filters,
                    gw_hcm_filter(c, s->bind, gw_https_route_name(c, s)));
        } else if (gw_is_passthrough(s->srv)) {
            if (gw_passthrough_chains(c, s, &used, l))
                any_tls = true;
        } else if (gw_is_tls_tcp(s->srv)) {
            Envoy__Config__Listener__V3__Filter *f = gw_tcp_filter(c, s);
            if (!f)
                continue; /* no tcp route for this server */
            any_tls = true;
            fc = gw_tls_chain(c, s, false);
            gw_tcp_filters(c, s, fc, f);
        } else if (gw_is_tcp(s->srv)) {
            if (plain_done)
                continue;
            Envoy__Config__Listener__V3__Filter *f = gw_tcp_filter(c, s);
            if (!f)
                continue; /* no tcp route: nothing to listen for */
            plain_done = true;
            fc = GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
                        envoy__config__listener__v3__filter_chain__init);
            gw_tcp_filters(c, s, fc, f);
        }
        if (fc)
            GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
    }
    if (l->n_filter_chains == 0)
        return NULL;
    if (any_tls) {
        gen_add_tls_inspector(c, l);
    }
    gen_listener_access_log(c, l);
    return &l->base;
}

const gen_type_ops gen_gw_lds = {gw_lds_list, gw_lds_build};

/* ---- RDS ------------------------------------------------------------------------------------ */

/* Route name -> the servers that share it, built once per call. */
static const gw_route_servers *gw_route_index(gen_ctx *c, gw_ctx *g, const char *route)
{
    if (!g->routes.n) {
        for (size_t i = 0; i < g->nservers; i++) {
            if (!g->servers[i].route)
                continue;
            void **slot = gen_strmap_slot(c->a, &g->routes, g->servers[i].route, true);
            if (!*slot)
                *slot = ga_alloc(c->a, sizeof(gw_route_servers));
            gw_route_servers *rs = *slot;
            GA_PUSH(c->a, rs->v, rs->n, i);
        }
    }
    void **slot = gen_strmap_slot(c->a, &g->routes, route, false);
    return slot ? *slot : NULL;
}

static void gw_rds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    gw_ctx *g = gw_get(c);
    gen_strmap wanted = {0}, seen = {0};
    for (size_t i = 0; names && i < nnames; i++)
        if (names[i])
            gen_strset_add(c->a, &wanted, names[i]);
    for (size_t i = 0; i < g->nservers; i++) {
        const gw_server *s = &g->servers[i];
        if (!s->route || (names && !gen_strmap_slot(c->a, &wanted, s->route, false)) ||
            !gen_strset_add(c->a, &seen, s->route))
            continue;
        /* a route depends on the Gateways of the servers that share it, not on every
         * selected Gateway: with one route per HTTPS server, a key naming them all made
         * the keys (and the cache) grow as N^2 */
        const gw_route_servers *rs = gw_route_index(c, g, s->route);
        gen_sbuf k = {0};
        ga_cat(c->a, &k, "%sgws=", g->prefix);
        for (size_t j = 0; rs && j < rs->n; j++)
            ga_cat(c->a, &k, "%s,", g->servers[rs->v[j]].gw_key);
        ga_cat(c->a, &k, "%s", gen_dr_selector_key(c)); /* hash policies */
        gen_item it = {.name = s->route, .extra = k.s, .port = s->bind};
        gen_items_add(c, out, &it);
    }
}

/* Istio's buildGatewayVirtualHostDomains: "*" alone; a wildcard keeps the port; any other
 * host also matches any port ("host:*") for gateways behind a load balancer. */
static void gw_domains(gen_ctx *c, Envoy__Config__Route__V3__VirtualHost *vh, const char *host,
                       uint32_t port)
{
    gen_vhost_domain(c, vh, host);
    if (strcmp(host, "*") == 0)
        return;
    if (host[0] == '*')
        gen_vhost_domain(c, vh, ga_printf(c->a, "%s:%u", host, port));
    else
        gen_vhost_domain(c, vh, ga_printf(c->a, "%s:*", host));
}

static void gw_server_vhosts(gen_ctx *c, const gw_server *s, uint32_t port,
                             Envoy__Config__Route__V3__RouteConfiguration *rc, gen_strmap *names)
{
    for (size_t v = 0; v < s->vss->n; v++) {
        const mesh_virtual_service *vs = s->vss->v[v];
        if (!gen_vs_bound_to(vs, s->gw_key) || !gen_vs_visible(c, vs))
            continue;
        for (size_t vh_i = 0; vh_i < vs->nhosts; vh_i++) {
            const char *vhost = vs->hosts[vh_i];
            const char *host = NULL;
            for (size_t h = 0; h < s->srv->nhosts && !host; h++) {
                const char *sh = s->srv->hosts[h];
                if (!sh || !gen_host_match(sh, vhost) || !gw_host_ns_ok(s, h, vs->meta.ns))
                    continue;
                /* the more specific of the two names the virtual host */
                host = (strcmp(sh, "*") == 0 || (sh[0] == '*' && vhost[0] != '*')) ? vhost : sh;
                if (vhost[0] == '*' && sh[0] == '*' && strlen(vhost) > strlen(sh))
                    host = vhost;
            }
            if (!host)
                continue;
            char *vname = ga_printf(c->a, "%s:%u", host, port);
            if (gen_strmap_slot(c->a, names, vname, false))
                continue; /* Istio: first VirtualService wins a duplicate domain */
            Envoy__Config__Route__V3__VirtualHost *vh = gen_vhost(c, vname);
            gw_domains(c, vh, host, port);
            gen_route_opts o = {
                .gateway = s->gw_key, .port = s->srv->port, .default_retries = true};
            gen_vs_routes(c, vs, &o, &vh->routes, &vh->n_routes);
            if (vh->n_routes == 0)
                continue;
            gen_strset_add(c->a, names, vname);
            if (s->srv->has_tls && s->srv->tls.https_redirect)
                vh->require_tls = ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__TLS_REQUIREMENT_TYPE__ALL;
            GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
        }
    }
}

static ProtobufCMessage *gw_rds_build(gen_ctx *c, const gen_item *it)
{
    gw_ctx *g = gw_get(c);
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteConfiguration,
               envoy__config__route__v3__route_configuration__init);
    rc->name = ga_strdup(c->a, it->name);
    rc->validate_clusters = gen_bool(c, false);
    gen_strmap names = {0}; /* virtual host names so far */
    const gw_route_servers *rs = gw_route_index(c, g, it->name);
    for (size_t i = 0; rs && i < rs->n; i++) {
        const gw_server *s = &g->servers[rs->v[i]];
        gw_server_vhosts(c, s, s->bind, rc, &names);
    }
    if (rc->n_virtual_hosts == 0) {
        /* nothing bound: answer 404 rather than leave Envoy without a route */
        Envoy__Config__Route__V3__VirtualHost *vh =
            gen_vhost(c, ga_printf(c->a, "blackhole:%u", it->port));
        gen_vhost_domain(c, vh, "*");
        Envoy__Config__Route__V3__Route *r = gen_catchall_route(c, "/");
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
        r->direct_response = GA_MSG(c->a, Envoy__Config__Route__V3__DirectResponseAction,
                                    envoy__config__route__v3__direct_response_action__init);
        r->direct_response->status = 404;
        GA_PUSH(c->a, vh->routes, vh->n_routes, r);
        GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
    }
    return &rc->base;
}

const gen_type_ops gen_gw_rds = {gw_rds_list, gw_rds_build};
