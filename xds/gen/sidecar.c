/* gen_sidecar: listeners, routes and clusters for Envoy sidecars (sidecar~ nodes).
 *
 * Outbound: virtualOutbound (15001, original destination) falls through to per-port HTTP
 * listeners "0.0.0.0_<port>" (RDS "<port>", not bound) and per-VIP TCP listeners
 * "<vip>_<port>" (mesh VirtualService tcp routes, weighted when split, and tls routes as
 * SNI filter chains on TLS/HTTPS ports); unmatched traffic goes to PassthroughCluster.
 * Services and VirtualServices not exported to the proxy's namespace (exportTo) are left
 * out; DestinationRule exportTo is applied by mesh_snapshot_destination_rule.
 * Inbound: virtualInbound (15006) has filter chains per port of the proxy's own workload
 * (found by matching the proxy's IPs among endpoints) to "inbound|<port>||" clusters, else
 * InboundPassthroughCluster. The chains of a port follow its PeerAuthentication mode as
 * istiod lays them out (filterchain_options.go): STRICT one TLS chain requiring a client
 * certificate from our root, PERMISSIVE an Istio-ALPN TLS chain beside the plaintext one,
 * DISABLE plaintext only; HTTP chains carry the workload's authentication and
 * authorization filters, TCP chains its network RBAC. Ports of unknown protocol are served
 * as TCP (istiod sniffs them). Runs on the caller's thread; no locks.
 */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

typedef struct sc_inbound {
    uint32_t port; /* the workload's (target) port */
    mesh_protocol protocol;
    const mesh_service **svcs; /* whose endpoints are the proxy on port (cluster metadata) */
    size_t nsvcs;
    /* a Sidecar ingress listener's defaultEndpoint, resolved: NULL = the app on
     * 127.0.0.1:port (no ingress), "" = original destination (none given), "unix://..."
     * or an IP, with ep_port */
    const char *ep;
    uint32_t ep_port;
    /* the Sidecar ingress listener the port comes from, NULL for the workload's own */
    const mesh_sidecar_ingress *ig;
    /* with captureMode NONE: a listener of its own bound to bind:port instead of a
     * virtualInbound chain, as istiod's inboundCustomListener */
    bool bound;
    /* a Sidecar ingress listener's bind, 0.0.0.0 when not given (NULL for the workload's
     * own ports): istiod names the port's chains (and listener) "<bind>_<port>" */
    const char *bind;
} sc_inbound;

typedef struct sc_ctx {
    sc_inbound *in;
    size_t nin;
    char *in_key;
} sc_ctx;

static bool sc_proxy_has_ip(gen_ctx *c, const char *ip)
{
    for (size_t i = 0; ip && i < c->p->nips; i++)
        if (c->p->ips[i] && strcmp(c->p->ips[i], ip) == 0)
            return true;
    return false;
}

static int sc_cmp_in(const void *a, const void *b)
{
    const sc_inbound *x = a, *y = b;
    return x->port < y->port ? -1 : x->port > y->port;
}

/* The proxy's first IP of one family, else that family's loopback (istiod's choice for a
 * defaultEndpoint of 0.0.0.0 / [::]). */
static const char *sc_own_ip(gen_ctx *c, bool v6)
{
    for (size_t i = 0; i < c->p->nips; i++)
        if (c->p->ips[i] && (strchr(c->p->ips[i], ':') != NULL) == v6)
            return c->p->ips[i];
    return v6 ? "::1" : "127.0.0.1";
}

/* istiod's buildInboundChainConfigs with a Sidecar that has ingress listeners: the inbound
 * ports are the Sidecar's (the workload's service ports are not merged in, istiod's
 * default), each to "inbound|<port>||" whose endpoint is defaultEndpoint: 127.0.0.1 (or
 * [::1]) the loopback, 0.0.0.0 (or [::]) the proxy's own IP, unix:// a socket, none the
 * original destination. A port the services also name keeps their telemetry metadata.
 * A listener with captureMode NONE gets a listener of its own (sc_inbound.bound). */
static void sc_ingress(gen_ctx *c, sc_ctx *x)
{
    const mesh_sidecar *sc = c->p->sidecar;
    sc_inbound *in = NULL;
    size_t nin = 0;
    for (size_t i = 0; i < sc->ningress; i++) {
        const mesh_sidecar_ingress *ig = &sc->ingress[i];
        if (!ig->port.number)
            continue;
        bool dup = false;
        for (size_t k = 0; k < nin && !dup; k++)
            dup = in[k].port == ig->port.number; /* istiod keeps the first */
        if (dup)
            continue;
        sc_inbound v = {.port = ig->port.number,
                        .protocol = ig->port.protocol,
                        .ep = "",
                        .ig = ig,
                        .bound = ig->capture_mode == MESH_CAPTURE_NONE,
                        .bind = ig->bind && *ig->bind ? ig->bind : "0.0.0.0"};
        for (size_t k = 0; k < x->nin; k++)
            if (x->in[k].port == v.port) {
                v.svcs = x->in[k].svcs;
                v.nsvcs = x->in[k].nsvcs;
            }
        const char *de = ig->default_endpoint;
        if (de && util_has_prefix(de, "unix://")) {
            v.ep = de;
        } else if (de && *de) {
            const char *colon = strrchr(de, ':');
            v.ep_port = colon ? (uint32_t)strtoul(colon + 1, NULL, 10) : 0;
            size_t hl = colon ? (size_t)(colon - de) : 0;
            char *host = ga_alloc(c->a, hl + 1);
            memcpy(host, de, hl);
            bool v6 = host[0] == '[';
            if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0)
                v.ep = sc_own_ip(c, v6);
            else if (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0)
                v.ep = v6 ? "::1" : "127.0.0.1";
            else
                continue; /* validation admits no other host */
        }
        GA_PUSH(c->a, in, nin, v);
    }
    x->in = in;
    x->nin = nin;
}

static sc_ctx *sc_get(gen_ctx *c)
{
    if (c->fctx)
        return c->fctx;
    sc_ctx *x = ga_alloc(c->a, sizeof *x);
    for (size_t i = 0; i < c->s->nshards; i++) {
        const mesh_endpoint_shard *sh = c->s->shards[i];
        const mesh_service *svc = NULL;
        for (size_t e = 0; e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (!sc_proxy_has_ip(c, ep->address) || !ep->port)
                continue;
            if (!svc)
                svc = mesh_snapshot_service(c->s, sh->hostname);
            size_t k = 0;
            while (k < x->nin && x->in[k].port != ep->port)
                k++;
            if (k == x->nin) {
                const mesh_port *sp = svc ? gen_service_port(svc, ep->service_port) : NULL;
                sc_inbound in = {.port = ep->port,
                                 .protocol = sp ? sp->protocol : MESH_PROTO_UNSUPPORTED};
                GA_PUSH(c->a, x->in, x->nin, in);
            }
            /* istiod's inbound telemetry metadata: each service on the port once */
            sc_inbound *in = &x->in[k];
            if (svc && !svc->mesh_external && (in->nsvcs == 0 || in->svcs[in->nsvcs - 1] != svc))
                GA_PUSH(c->a, in->svcs, in->nsvcs, svc);
        }
    }
    if (c->p->sidecar && c->p->sidecar->ningress)
        sc_ingress(c, x);
    if (x->nin > 1)
        qsort(x->in, x->nin, sizeof *x->in, sc_cmp_in);
    x->in_key = ga_strdup(c->a, "in=");
    for (size_t k = 0; k < x->nin; k++)
        x->in_key =
            ga_printf(c->a, "%s%u/%d/%s:%u%s@%s,", x->in_key, x->in[k].port, (int)x->in[k].protocol,
                      x->in[k].ep ? x->in[k].ep : "-", x->in[k].ep_port,
                      x->in[k].bound ? "/bound" : "", x->in[k].bind ? x->in[k].bind : "");
    /* ingress chains carry the Sidecar's name (metadata) and its tls settings */
    if (c->p->sidecar && c->p->sidecar->ningress)
        x->in_key = ga_printf(c->a, "%ssc=%s/%s,", x->in_key, c->p->sidecar->meta.ns,
                              c->p->sidecar->meta.name);
    c->fctx = x;
    return x;
}

/* ---- LDS ------------------------------------------------------------------------------------ */

enum { SC_L_VOUT = 1, SC_L_VIN, SC_L_HTTP, SC_L_TCP, SC_L_INBOUND_BOUND };
/* or'ed into a listener kind: the listener binds its port (captureMode NONE) */
#define SC_L_BOUND ((uintptr_t)0x100)

static bool sc_port_seen(const gen_items *it, const char *name)
{
    for (size_t k = 0; k < it->n; k++)
        if (strcmp(it->v[k].name, name) == 0)
            return true;
    return false;
}

/* A listener of this egress listener (items from `from` on) took name n before a service
 * port of kind `tcp` (else HTTP) could: istiod's buildSidecarOutboundListener merges the
 * two into one listener entry and counts pilot_conflict_outbound_listener_tcp_over_current_tcp
 * when two filter chains have the same match (mergeTCPFilterChains): always for TCP over
 * TCP (both default chains match everything), for HTTP and TCP only off the wildcard
 * address (there its HTTP chains match on HTTP ALPNs, so they differ); HTTP over HTTP shares
 * the listener, no conflict. A name taken by an earlier egress listener is not one (istiod's
 * locked entries). We keep the first, as istiod keeps the first of two matching chains. */
static void sc_note_outbound_conflict(gen_ctx *c, const gen_items *all, size_t from, const char *n,
                                      const char *addr, bool tcp)
{
    for (size_t k = from; k < all->n; k++) {
        if (strcmp(all->v[k].name, n) != 0)
            continue;
        uintptr_t kind = (uintptr_t)all->v[k].ref & ~SC_L_BOUND;
        bool cur_tcp = kind == SC_L_TCP;
        if (kind != SC_L_TCP && kind != SC_L_HTTP)
            return;
        if ((tcp && cur_tcp) || (tcp != cur_tcp && strcmp(addr, "0.0.0.0") != 0))
            gen_conflict_note(c->gen, c->s, GEN_CONFLICT_OUTBOUND_TCP, n);
        return;
    }
}

/* The outbound listeners of one egress listener of the proxy's scope (eg NULL: istiod's
 * default catch-all over every exported service), as istiod's buildSidecarOutboundListeners
 * lays them out: a listener on a port is "<bind>_<port>" (HTTP: bind or 0.0.0.0; TCP: bind
 * or each service VIP) for the services it imports; the catch-all makes one per service
 * port, except where an earlier listener already took the name (istiod's locked entries).
 * captureMode NONE (and a unix bind) binds the port, on 127.0.0.1 without a bind. */
static void sc_lds_egress(gen_ctx *c, const gen_egress *eg, const char *tcp_key, gen_items *all)
{
    size_t from = all->n; /* what this egress listener adds */
    const mesh_sidecar_egress *e = eg ? eg->e : NULL;
    if (e && e->has_port && e->port.number == 0)
        return; /* a Unix domain socket listener: not built (see README) */
    bool bound = e && (e->capture_mode == MESH_CAPTURE_NONE ||
                       (e->bind && util_has_prefix(e->bind, "unix://")));
    const char *bind = e && e->bind ? e->bind : bound ? "127.0.0.1" : NULL;
    uintptr_t bflag = bound ? SC_L_BOUND : 0;
    const char *bkey = bound ? "|bound" : "";
    for (size_t i = 0; i < c->s->nservices; i++) {
        const mesh_service *svc = c->s->services[i];
        if (!gen_service_exported(c, svc) || !gen_egress_has_service(c, eg, svc))
            continue;
        for (size_t p = 0; p < svc->nports; p++) {
            const mesh_port *mp = &svc->ports[p];
            uint32_t port = mp->port;
            mesh_protocol proto = mp->protocol;
            if (e && e->has_port) {
                if (port != e->port.number)
                    continue;
                /* the listener's declared protocol, not the service's */
                proto = e->port.protocol;
            }
            if (mesh_protocol_is_http(proto)) {
                const char *addr = bind ? bind : "0.0.0.0";
                char *n = ga_printf(c->a, "%s_%u", addr, port);
                if (sc_port_seen(all, n)) {
                    sc_note_outbound_conflict(c, all, from, n, addr, false);
                    continue;
                }
                gen_item it = {.name = n,
                               .extra = ga_strdup(c->a, bkey),
                               .port = port,
                               .subset = addr,
                               .ref = (void *)(SC_L_HTTP | bflag)};
                gen_items_add(c, all, &it);
                continue;
            }
            for (size_t v = 0; v < (bind ? 1 : svc->nvips); v++) {
                const char *addr = bind ? bind : svc->vips[v];
                char *n = ga_printf(c->a, "%s_%u", addr, port);
                if (sc_port_seen(all, n)) {
                    sc_note_outbound_conflict(c, all, from, n, addr, true);
                    continue;
                }
                gen_item it = {.name = n,
                               .extra = ga_printf(c->a, "%s%s", tcp_key, bkey),
                               .svc = svc,
                               .port = port,
                               .subset = addr,
                               .ref = (void *)(SC_L_TCP | bflag)};
                gen_items_add(c, all, &it);
            }
        }
    }
}

/* Every outbound listener of the proxy's scope, egress listener by egress listener. */
static void sc_lds_outbound(gen_ctx *c, gen_items *all)
{
    const gen_scope *sc = gen_scope_get(c);
    /* TCP listeners follow the mesh VirtualService tcp/tls routes the proxy sees (exportTo:
     * its namespace; the Sidecar's imports) and, when a match uses sourceLabels, its labels */
    char *tcp_key = ga_printf(c->a, "ns=%s|%s", c->p->ns ? c->p->ns : "", sc->key);
    for (size_t v = 0; v < c->s->nvss; v++) {
        if (gen_vs_l4_uses_labels(c->s->vss[v])) {
            for (size_t k = 0; k < c->p->labels.n; k++)
                tcp_key = ga_printf(c->a, "%s,%s=%s", tcp_key, c->p->labels.keys[k],
                                    c->p->labels.vals[k]);
            break;
        }
    }
    if (!sc->sidecar)
        sc_lds_egress(c, NULL, tcp_key, all);
    for (size_t l = 0; l < sc->nl; l++)
        sc_lds_egress(c, &sc->l[l], ga_printf(c->a, "%s|l%zu", tcp_key, l), all);
}

static void sc_lds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    sc_ctx *x = sc_get(c);
    gen_items all = {0};
    gen_item vo = {.name = ga_strdup(c->a, "virtualOutbound"),
                   .extra = ga_strdup(c->a, gen_scope_get(c)->egress_cluster),
                   .ref = (void *)(uintptr_t)SC_L_VOUT};
    gen_item vi = {.name = ga_strdup(c->a, "virtualInbound"),
                   .extra = ga_printf(c->a, "%s|%s", x->in_key, gen_workload_security_key(c)),
                   .ref = (void *)(uintptr_t)SC_L_VIN};
    gen_items_add(c, &all, &vo);
    gen_items_add(c, &all, &vi);
    /* captureMode NONE ingress listeners, before the outbound ones: a name an outbound
     * listener would take too stays the inbound one's (istiod builds inbound first) */
    for (size_t k = 0; k < x->nin; k++) {
        if (!x->in[k].bound)
            continue;
        char *name = ga_printf(c->a, "%s_%u", x->in[k].bind, x->in[k].port);
        if (sc_port_seen(&all, name))
            continue;
        gen_item b = {.name = name,
                      .port = x->in[k].port,
                      .extra = vi.extra,
                      .ref = (void *)(uintptr_t)SC_L_INBOUND_BOUND};
        gen_items_add(c, &all, &b);
    }
    sc_lds_outbound(c, &all);
    for (size_t i = 0; i < all.n; i++)
        if (!names || gen_names_has(names, nnames, all.v[i].name))
            gen_items_add(c, out, &all.v[i]);
}

static Envoy__Config__Listener__V3__Listener *sc_listener(gen_ctx *c, const char *name,
                                                          const char *ip, uint32_t port)
{
    Envoy__Config__Listener__V3__Listener *l = GA_MSG(c->a, Envoy__Config__Listener__V3__Listener,
                                                      envoy__config__listener__v3__listener__init);
    l->name = ga_strdup(c->a, name);
    l->address = gen_address(c, ip, port);
    return l;
}

static Envoy__Config__Listener__V3__FilterChain *sc_chain(gen_ctx *c, const char *name,
                                                          Envoy__Config__Listener__V3__Filter *f)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    fc->name = ga_strdup(c->a, name);
    GA_PUSH(c->a, fc->filters, fc->n_filters, f);
    return fc;
}

/* An outbound TCP chain: istio.stats (client side), then f. No metadata exchange here:
 * istiod does it for outbound TCP in the cluster's filters. */
static Envoy__Config__Listener__V3__FilterChain *
sc_out_tcp_chain(gen_ctx *c, const char *name, Envoy__Config__Listener__V3__Filter *f)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    fc->name = ga_strdup(c->a, name);
    gen_tcp_stats_filter(c, GEN_CLASS_SIDECAR_OUTBOUND, &fc->filters, &fc->n_filters);
    GA_PUSH(c->a, fc->filters, fc->n_filters, f);
    return fc;
}

/* Inbound HTTP: an inline route straight to the local inbound cluster. */
static Envoy__Config__Listener__V3__Filter *sc_inbound_http(gen_ctx *c, const char *chain,
                                                            uint32_t port, const char *cluster)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
        gen_hcm(c, ga_printf(c->a, "inbound_%s", chain), "");
    gen_hcm_security_filters(c, h);
    gen_hcm_telemetry(c, h, GEN_CLASS_SIDECAR_INBOUND);
    /* as istiod on every inbound HCM: the caller's identity reaches the app in XFCC */
    h->forward_client_cert_details =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__FORWARD_CLIENT_CERT_DETAILS__APPEND_FORWARD;
    h->set_current_client_cert_details = GA_MSG(
        c->a,
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__SetCurrentClientCertDetails,
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__set_current_client_cert_details__init);
    h->set_current_client_cert_details->subject = gen_bool(c, true);
    h->set_current_client_cert_details->dns = true;
    h->set_current_client_cert_details->uri = true;
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteConfiguration,
               envoy__config__route__v3__route_configuration__init);
    rc->name = ga_strdup(c->a, cluster);
    rc->validate_clusters = gen_bool(c, false);
    Envoy__Config__Route__V3__VirtualHost *vh =
        gen_vhost(c, ga_printf(c->a, "inbound|http|%u", port));
    gen_vhost_domain(c, vh, "*");
    Envoy__Config__Route__V3__Route *r = gen_default_route(c, cluster, false);
    GA_PUSH(c->a, vh->routes, vh->n_routes, r);
    GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
    h->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    h->route_config = rc;
    return gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base);
}

/* "<vip>_<port>" for a non-HTTP service port. A mesh VirtualService for the host may
 * route it: tls routes (TLS/HTTPS ports) become filter chains on their sniHosts, the first
 * applicable tcp route the default chain (weighted when split); without either, straight
 * to the service's own cluster. */
static Envoy__Config__Listener__V3__Listener *sc_tcp_listener(gen_ctx *c, const gen_item *it)
{
    Envoy__Config__Listener__V3__Listener *l = sc_listener(c, it->name, it->subset, it->port);
    if (!((uintptr_t)it->ref & SC_L_BOUND))
        l->bind_to_port = gen_bool(c, false);
    l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND;
    /* the VirtualServices of the egress listener that serves the port */
    c->egress = gen_scope_egress_for_port(c, it->port);
    const mesh_virtual_service *vs = gen_mesh_vs_for_host(c, it->svc->hostname);
    c->egress = NULL;
    const mesh_port *mp = gen_service_port(it->svc, it->port);
    bool tls = mp && (mp->protocol == MESH_PROTO_TLS || mp->protocol == MESH_PROTO_HTTPS);
    const char **used = NULL;
    size_t nused = 0;
    for (size_t r = 0; vs && tls && r < vs->ntls; r++) {
        const mesh_l4_route *tr = &vs->tls[r];
        for (size_t m = 0; m < tr->nmatches; m++) {
            const mesh_l4_match *mm = &tr->matches[m];
            if (!gen_l4_match_applies(c, mm, "mesh", it->port))
                continue;
            Envoy__Config__Listener__V3__FilterChainMatch *fcm =
                GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChainMatch,
                       envoy__config__listener__v3__filter_chain_match__init);
            for (size_t h = 0; h < mm->nsni_hosts; h++) {
                const char *sni = mm->sni_hosts[h];
                bool dup = !sni;
                for (size_t k = 0; k < nused && !dup; k++)
                    dup = strcmp(used[k], sni) == 0;
                if (dup)
                    continue; /* Envoy refuses two chains with the same match */
                GA_PUSH(c->a, used, nused, sni);
                GA_PUSH(c->a, fcm->server_names, fcm->n_server_names, ga_strdup(c->a, sni));
            }
            if (fcm->n_server_names == 0)
                continue;
            Envoy__Config__Listener__V3__FilterChain *fc =
                sc_out_tcp_chain(c, ga_printf(c->a, "%s_tls_%zu_%zu", it->name, r, m),
                                 gen_tcp_route_filter(c, tr, it->port));
            fc->filter_chain_match = fcm;
            GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
        }
    }
    if (l->n_filter_chains) {
        gen_add_tls_inspector(c, l);
    }
    const mesh_l4_route *tcp = vs ? gen_vs_tcp_route(c, vs, "mesh", it->port) : NULL;
    char *cl = gen_cluster_name(c, it->port, NULL, it->svc->hostname);
    Envoy__Config__Listener__V3__Filter *f =
        tcp ? gen_tcp_route_filter(c, tcp, it->port) : gen_tcp_proxy_filter(c, cl, cl, true);
    GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, sc_out_tcp_chain(c, it->name, f));
    return l;
}

/* ---- inbound mTLS ------------------------------------------------------------------------- */

/* istiod's ALPN sets (pilot/pkg/networking/core/listener.go, networking/util). */
static const char *const sc_alpn_all_istio[] = {
    "istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2", NULL};
static const char *const sc_alpn_tcp_mxc[] = {"istio-peer-exchange", "istio", NULL};
static const char *const sc_ciphers[] = {
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",   "AES256-GCM-SHA384",           "AES128-GCM-SHA256"};
#define SC_N(a) (sizeof(a) / sizeof((a)[0]))

/* One filter chain layout of a port (istiod's FilterChainMatchOptions). */
typedef struct sc_fc_opt {
    const char *transport;   /* "tls" or "raw_buffer" */
    const char *const *alpn; /* the ALPNs matched (NULL-terminated), or NULL */
    bool terminate;          /* DownstreamTlsContext with client certificates */
} sc_fc_opt;

/* A declared port's chains (TCP or HTTP), or the passthrough's: istiod's "auto" options,
 * of which we keep the TCP ones (mTLS with Istio's TCP ALPNs, plaintext, the app's TLS). */
static size_t sc_fc_opts(mesh_mtls_mode mode, bool http, bool passthrough, sc_fc_opt out[3])
{
    switch (mode) {
    case MESH_MTLS_STRICT:
        out[0] = (sc_fc_opt){"tls", NULL, true};
        return 1;
    case MESH_MTLS_PERMISSIVE:
        if (passthrough) {
            out[0] = (sc_fc_opt){"tls", sc_alpn_tcp_mxc, true};
            out[1] = (sc_fc_opt){"raw_buffer", NULL, false};
            out[2] = (sc_fc_opt){"tls", NULL, false};
            return 3;
        }
        out[0] = (sc_fc_opt){"tls", sc_alpn_all_istio, true};
        if (http) {
            out[1] = (sc_fc_opt){"raw_buffer", NULL, false};
            return 2;
        }
        out[1] = (sc_fc_opt){"tls", NULL, false}; /* the app's own TLS, passed through */
        out[2] = (sc_fc_opt){"raw_buffer", NULL, false};
        return 3;
    default:
        out[0] = (sc_fc_opt){"raw_buffer", NULL, false};
        return 1;
    }
}

/* istiod's BuildInboundTLS: the workload certificate, client certificates required and
 * checked against the mesh root; ALPN h2/http1.1 (TCP adds istio-peer-exchange). */
static Envoy__Config__Core__V3__TransportSocket *sc_downstream_tls(gen_ctx *c, bool http)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct;
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        gen_downstream_tls_new(c, &ct);
    d->require_client_certificate = gen_bool(c, true);
    if (!http)
        GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols,
                ga_strdup(c->a, "istio-peer-exchange"));
    GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "h2"));
    GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "http/1.1"));
    Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *tp =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters,
               envoy__extensions__transport_sockets__tls__v3__tls_parameters__init);
    tp->tls_minimum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2;
    tp->tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    for (size_t i = 0; i < SC_N(sc_ciphers); i++)
        GA_PUSH(c->a, tp->cipher_suites, tp->n_cipher_suites, ga_strdup(c->a, sc_ciphers[i]));
    ct->tls_params = tp;
    gen_istio_mtls_context(c, ct, NULL, 0);
    return gen_tls_transport_socket(c, &d->base);
}

static Envoy__Config__Listener__V3__FilterChainMatch *sc_fcm(gen_ctx *c, uint32_t port,
                                                             const sc_fc_opt *o)
{
    Envoy__Config__Listener__V3__FilterChainMatch *m =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChainMatch,
               envoy__config__listener__v3__filter_chain_match__init);
    if (port)
        m->destination_port = gen_u32(c, port);
    m->transport_protocol = ga_strdup(c->a, o->transport);
    for (size_t i = 0; o->alpn && o->alpn[i]; i++)
        GA_PUSH(c->a, m->application_protocols, m->n_application_protocols,
                ga_strdup(c->a, o->alpn[i]));
    return m;
}

/* An inbound TCP chain's filters, in istiod's order: metadata exchange first (so RBAC
 * denials still carry the peer's metadata), the workload's network RBAC, istio.stats
 * (server side), then tcp_proxy to cluster. */
static Envoy__Config__Listener__V3__FilterChain *sc_tcp_chain(gen_ctx *c, const char *name,
                                                              const char *cluster)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    fc->name = ga_strdup(c->a, name);
    gen_tcp_mx_filter(c, &fc->filters, &fc->n_filters);
    gen_authz_network_filters(c, &fc->filters, &fc->n_filters);
    gen_tcp_stats_filter(c, GEN_CLASS_SIDECAR_INBOUND, &fc->filters, &fc->n_filters);
    GA_PUSH(c->a, fc->filters, fc->n_filters, gen_tcp_proxy_filter(c, cluster, cluster, true));
    return fc;
}

/* An inbound HTTP chain: the network metadata exchange (istiod puts it ahead of the HCM on
 * inbound HTTP chains too), then the HCM. */
static Envoy__Config__Listener__V3__FilterChain *sc_http_chain(gen_ctx *c, const char *name,
                                                               uint32_t port, const char *cluster)
{
    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    fc->name = ga_strdup(c->a, name);
    gen_tcp_mx_filter(c, &fc->filters, &fc->n_filters);
    GA_PUSH(c->a, fc->filters, fc->n_filters, sc_inbound_http(c, name, port, cluster));
    return fc;
}

/* istiod's BuildListenerTLSContext for a Sidecar ingress listener's own `tls` (files in
 * the proxy; validation admits no credentialName, SANs or ISTIO_MUTUAL there): ALPN
 * h2/http1.1, client certificates required for MUTUAL, checked for OPTIONAL_MUTUAL too;
 * the versions and cipher suites given, for every mode but PASSTHROUGH. */
static Envoy__Config__Core__V3__TransportSocket *sc_ingress_tls(gen_ctx *c,
                                                                const mesh_sidecar_ingress *ig)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct;
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        gen_downstream_tls_new(c, &ct);
    GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "h2"));
    GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "http/1.1"));
    mesh_server_tls_mode mode = ig->tls.mode;
    d->require_client_certificate = gen_bool(c, mode == MESH_SERVER_TLS_MUTUAL);
    gen_file_server_tls(c, ct, ig->tls.server_certificate, ig->tls.private_key,
                        ig->tls.ca_certificates, ig->tls.ca_crl,
                        mode == MESH_SERVER_TLS_MUTUAL || mode == MESH_SERVER_TLS_OPTIONAL_MUTUAL);
    if (mode != MESH_SERVER_TLS_PASSTHROUGH &&
        (ig->tls.min_protocol_version || ig->tls.max_protocol_version || ig->tls.ncipher_suites)) {
        Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *tp =
            GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters,
                   envoy__extensions__transport_sockets__tls__v3__tls_parameters__init);
        /* the API's TLS_AUTO .. TLSV1_3 are Envoy's TLS_AUTO .. TLSv1_3, in order */
        tp->tls_minimum_protocol_version = ig->tls.min_protocol_version;
        tp->tls_maximum_protocol_version = ig->tls.max_protocol_version;
        for (size_t i = 0; i < ig->tls.ncipher_suites; i++)
            GA_PUSH(c->a, tp->cipher_suites, tp->n_cipher_suites,
                    ga_strdup(c->a, ig->tls.cipher_suites[i]));
        ct->tls_params = tp;
    }
    return gen_tls_transport_socket(c, &d->base);
}

/* The name of an inbound port's chains: "<bind>_<port>" (istiod's getListenerName). */
static const char *sc_chain_name(gen_ctx *c, const sc_inbound *in)
{
    return ga_printf(c->a, "%s_%u", in->bind ? in->bind : "0.0.0.0", in->port);
}

/* One inbound port's chains on l, as its PeerAuthentication mode lays them out; *need_tls
 * set when one matches TLS. match_port: filter on the destination port (virtualInbound),
 * not on a listener of the port's own. A Sidecar ingress listener's own `tls` (with
 * ENABLE_TLS_ON_SIDECAR_INGRESS) applies only where the mode is DISABLE, as istiod: one
 * chain terminating it, HTTPS then served as HTTP and TLS as TCP. */
static void sc_inbound_port_chains(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l,
                                   const sc_inbound *in, bool match_port, bool *need_tls)
{
    sc_fc_opt opts[3];
    uint32_t port = in->port;
    const char *chain = sc_chain_name(c, in);
    mesh_protocol proto = in->protocol;
    char *cl = ga_printf(c->a, "inbound|%u||", port);
    mesh_mtls_mode mode = gen_peer_mtls(c->s, c->p->ns, &c->p->labels, port);
    bool own_tls = in->ig && in->ig->has_tls && c->ingress_tls && mode == MESH_MTLS_DISABLE;
    if (own_tls)
        proto = proto == MESH_PROTO_HTTPS ? MESH_PROTO_HTTP
                : proto == MESH_PROTO_TLS ? MESH_PROTO_TCP
                                          : proto;
    bool http = mesh_protocol_is_http(proto);
    size_t n = 1;
    if (own_tls)
        opts[0] = (sc_fc_opt){"tls", NULL, true};
    else
        n = sc_fc_opts(mode, http, false, opts);
    for (size_t o = 0; o < n; o++) {
        Envoy__Config__Listener__V3__FilterChain *fc =
            http ? sc_http_chain(c, chain, port, cl) : sc_tcp_chain(c, chain, cl);
        fc->filter_chain_match = sc_fcm(c, match_port ? port : 0, &opts[o]);
        if (opts[o].terminate)
            fc->transport_socket = own_tls ? sc_ingress_tls(c, in->ig) : sc_downstream_tls(c, http);
        /* istiod's config metadata on the chains a Sidecar's ingress made */
        if (in->ig)
            gen_config_metadata(c, &fc->metadata, "sidecar", c->p->sidecar->meta.ns,
                                c->p->sidecar->meta.name);
        *need_tls |= strcmp(opts[o].transport, "tls") == 0;
        GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
    }
}

/* A Sidecar ingress listener with captureMode NONE: bound to its own address and port. */
static Envoy__Config__Listener__V3__Listener *sc_inbound_bound_listener(gen_ctx *c,
                                                                        const gen_item *it)
{
    sc_ctx *x = sc_get(c);
    const sc_inbound *in = NULL;
    for (size_t k = 0; k < x->nin && !in; k++)
        if (x->in[k].bound && x->in[k].port == it->port)
            in = &x->in[k];
    if (!in)
        return NULL;
    Envoy__Config__Listener__V3__Listener *l = sc_listener(c, it->name, in->bind, in->port);
    l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND;
    bool need_tls = false;
    sc_inbound_port_chains(c, l, in, false, &need_tls);
    if (need_tls)
        gen_add_tls_inspector(c, l);
    gen_listener_access_log(c, l);
    return l;
}

static Envoy__Config__Listener__V3__Listener *sc_inbound_listener(gen_ctx *c, const char *name)
{
    sc_ctx *x = sc_get(c);
    Envoy__Config__Listener__V3__Listener *l = sc_listener(c, name, "0.0.0.0", 15006);
    l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND;
    Envoy__Extensions__Filters__Listener__OriginalDst__V3__OriginalDst *od =
        GA_MSG(c->a, Envoy__Extensions__Filters__Listener__OriginalDst__V3__OriginalDst,
               envoy__extensions__filters__listener__original_dst__v3__original_dst__init);
    gen_listener_filter_add(c, l, "envoy.filters.listener.original_dst", &od->base);
    bool need_tls = false;
    sc_fc_opt opts[3];
    for (size_t k = 0; k < x->nin; k++)
        if (!x->in[k].bound) /* those have a listener of their own */
            sc_inbound_port_chains(c, l, &x->in[k], true, &need_tls);
    /* traffic addressed to 15006 itself would loop; counted, not logged (istiod's) */
    Envoy__Config__Listener__V3__FilterChain *bh =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    bh->name = ga_strdup(c->a, "virtualInbound-blackhole");
    gen_tcp_mx_filter(c, &bh->filters, &bh->n_filters);
    gen_tcp_stats_filter(c, GEN_CLASS_SIDECAR_INBOUND, &bh->filters, &bh->n_filters);
    GA_PUSH(c->a, bh->filters, bh->n_filters,
            gen_tcp_proxy_filter(c, "BlackHoleCluster", "BlackHoleCluster", false));
    bh->filter_chain_match = GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChainMatch,
                                    envoy__config__listener__v3__filter_chain_match__init);
    bh->filter_chain_match->destination_port = gen_u32(c, 15006);
    GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, bh);
    /* ports the workload does not declare: passed through, under the workload's mode */
    size_t n = sc_fc_opts(gen_peer_mtls(c->s, c->p->ns, &c->p->labels, 0), false, true, opts);
    for (size_t o = 0; o < n; o++) {
        Envoy__Config__Listener__V3__FilterChain *fc =
            sc_tcp_chain(c, "virtualInbound", "InboundPassthroughCluster");
        fc->filter_chain_match = sc_fcm(c, 0, &opts[o]);
        if (opts[o].terminate)
            fc->transport_socket = sc_downstream_tls(c, false);
        need_tls |= strcmp(opts[o].transport, "tls") == 0;
        GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
    }
    if (need_tls)
        gen_add_tls_inspector(c, l);
    gen_listener_access_log(c, l);
    return l;
}

static ProtobufCMessage *sc_lds_build(gen_ctx *c, const gen_item *it)
{
    Envoy__Config__Listener__V3__Listener *l = NULL;
    uintptr_t kind = (uintptr_t)it->ref & ~SC_L_BOUND;
    /* the class the tcp_proxy filters' access logs follow (Telemetry match.mode) */
    c->tel_class = kind == SC_L_VIN || kind == SC_L_INBOUND_BOUND ? GEN_CLASS_SIDECAR_INBOUND
                                                                  : GEN_CLASS_SIDECAR_OUTBOUND;
    switch (kind) {
    case SC_L_VOUT: {
        /* istiod's buildOutboundCatchAllNetworkFiltersOnly: unknown destinations go to
         * PassthroughCluster (ALLOW_ANY), the egressProxy's cluster, or BlackHoleCluster
         * (REGISTRY_ONLY), the cluster also naming the stats */
        const char *eg = gen_scope_get(c)->egress_cluster;
        l = sc_listener(c, it->name, "0.0.0.0", 15001);
        l->use_original_dst = gen_bool(c, true);
        l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND;
        l->default_filter_chain =
            sc_out_tcp_chain(c, "PassthroughFilterChain", gen_tcp_proxy_filter(c, eg, eg, true));
        /* istiod's blackholeFilterChain first: traffic addressed to 15001 itself (not
         * redirected to it by iptables) goes nowhere, so it cannot loop back in */
        Envoy__Config__Listener__V3__FilterChain *bh = sc_out_tcp_chain(
            c, "virtualOutbound-blackhole",
            gen_tcp_proxy_filter(c, "BlackHoleCluster", "BlackHoleCluster", false));
        bh->filter_chain_match = GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChainMatch,
                                        envoy__config__listener__v3__filter_chain_match__init);
        bh->filter_chain_match->destination_port = gen_u32(c, 15001);
        GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, bh);
        GA_PUSH(c->a, l->filter_chains, l->n_filter_chains,
                sc_out_tcp_chain(c, "virtualOutbound-catchall-tcp",
                                 gen_tcp_proxy_filter(c, eg, eg, true)));
        gen_listener_access_log(c, l);
        break;
    }
    case SC_L_VIN:
        l = sc_inbound_listener(c, it->name);
        break;
    case SC_L_INBOUND_BOUND:
        l = sc_inbound_bound_listener(c, it);
        break;
    case SC_L_HTTP: {
        const char *addr = it->subset ? it->subset : "0.0.0.0";
        l = sc_listener(c, it->name, addr, it->port);
        if (!((uintptr_t)it->ref & SC_L_BOUND))
            l->bind_to_port = gen_bool(c, false);
        l->traffic_direction = ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND;
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
            gen_hcm(c, ga_printf(c->a, "outbound_%s_%u", addr, it->port),
                    ga_printf(c->a, "%u", it->port));
        gen_hcm_telemetry(c, h, GEN_CLASS_SIDECAR_OUTBOUND);
        GA_PUSH(c->a, l->filter_chains, l->n_filter_chains,
                sc_chain(c, ga_printf(c->a, "%s_%u", addr, it->port),
                         gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base)));
        break;
    }
    case SC_L_TCP:
        l = sc_tcp_listener(c, it);
        break;
    default:
        return NULL;
    }
    return &l->base;
}

const gen_type_ops gen_sc_lds = {sc_lds_list, sc_lds_build};

/* ---- RDS ------------------------------------------------------------------------------------ */

static void sc_rds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    const gen_scope *sc = gen_scope_get(c);
    gen_items all = {0};
    /* the routes the HTTP listeners name (their ports); a port's virtual hosts are those of
     * the egress listener serving it (gen_scope_egress_for_port) */
    gen_items lds = {0};
    sc_lds_outbound(c, &lds);
    for (size_t i = 0; i < lds.n; i++) {
        if (((uintptr_t)lds.v[i].ref & ~SC_L_BOUND) != SC_L_HTTP)
            continue;
        char *n = ga_printf(c->a, "%u", lds.v[i].port);
        if (sc_port_seen(&all, n))
            continue;
        /* short names depend on the proxy namespace; routes on its labels (sourceLabels),
         * the Sidecar's imports and where unknown hosts go */
        gen_item it = {.name = n,
                       .port = lds.v[i].port,
                       .extra = ga_printf(c->a, "ns=%s%s|%s|%s", c->p->ns ? c->p->ns : "",
                                          gen_dr_selector_key(c), sc->key, sc->egress_cluster)};
        gen_items_add(c, &all, &it);
    }
    for (size_t i = 0; i < all.n; i++) {
        if (names && !gen_names_has(names, nnames, all.v[i].name))
            continue;
        /* any mesh VS using source matches makes the routes depend on the proxy labels */
        for (size_t v = 0; v < c->s->nvss; v++) {
            char *k = gen_vs_proxy_key(c, c->s->vss[v]);
            if (k[0]) {
                all.v[i].extra = ga_printf(c->a, "%s|%s|%s", k, sc->key, sc->egress_cluster);
                break;
            }
        }
        gen_items_add(c, out, &all.v[i]);
    }
}

/* Envoy rejects a domain repeated across virtual hosts: the route's domains so far. */
static void sc_domain(gen_ctx *c, gen_strmap *used, Envoy__Config__Route__V3__VirtualHost *vh,
                      char *d)
{
    if (gen_strset_add(c->a, used, d))
        gen_vhost_domain(c, vh, d);
}

static ProtobufCMessage *sc_rds_build(gen_ctx *c, const gen_item *it)
{
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteConfiguration,
               envoy__config__route__v3__route_configuration__init);
    rc->name = ga_strdup(c->a, it->name);
    rc->validate_clusters = gen_bool(c, false);
    gen_strmap used = {0};
    uint32_t port = it->port;
    const gen_scope *sc = gen_scope_get(c);
    const gen_egress *eg = gen_scope_egress_for_port(c, port);
    c->egress = eg; /* VirtualServices: those this listener imports */
    for (size_t i = 0; i < c->s->nservices; i++) {
        const mesh_service *svc = c->s->services[i];
        const mesh_port *mp = gen_service_port(svc, port);
        if (!mp || !gen_service_exported(c, svc) || !gen_egress_has_service(c, eg, svc))
            continue;
        /* a listener declared HTTP serves its services' routes whatever they declare */
        if (!mesh_protocol_is_http(mp->protocol) && !(eg && eg->e->has_port))
            continue;
        Envoy__Config__Route__V3__VirtualHost *vh =
            gen_vhost(c, ga_printf(c->a, "%s:%u", svc->hostname, port));
        sc_domain(c, &used, vh, ga_strdup(c->a, svc->hostname));
        sc_domain(c, &used, vh, ga_printf(c->a, "%s:%u", svc->hostname, port));
        const char *dot_svc = strstr(svc->hostname, ".svc.");
        if (dot_svc && svc->meta.ns) {
            char *base = ga_alloc(c->a, (size_t)(dot_svc - svc->hostname) + 1);
            memcpy(base, svc->hostname, (size_t)(dot_svc - svc->hostname));
            char *dot = strchr(base, '.');
            if (dot && c->p->ns && strcmp(c->p->ns, svc->meta.ns) == 0) {
                char *name = ga_alloc(c->a, (size_t)(dot - base) + 1);
                memcpy(name, base, (size_t)(dot - base));
                sc_domain(c, &used, vh, name);
                sc_domain(c, &used, vh, ga_printf(c->a, "%s:%u", name, port));
            }
            sc_domain(c, &used, vh, ga_printf(c->a, "%s.svc", base));
            sc_domain(c, &used, vh, ga_printf(c->a, "%s.svc:%u", base, port));
            sc_domain(c, &used, vh, base);
            sc_domain(c, &used, vh, ga_printf(c->a, "%s:%u", base, port));
        }
        for (size_t v = 0; v < svc->nvips; v++) {
            sc_domain(c, &used, vh, ga_strdup(c->a, svc->vips[v]));
            sc_domain(c, &used, vh, ga_printf(c->a, "%s:%u", svc->vips[v], port));
        }
        if (vh->n_domains == 0)
            continue;
        const mesh_virtual_service *vs = gen_mesh_vs_for_host(c, svc->hostname);
        if (vs) {
            gen_route_opts o = {.gateway = "mesh", .port = port, .default_retries = true};
            gen_vs_routes(c, vs, &o, &vh->routes, &vh->n_routes);
        }
        if (!vs || vh->n_routes == 0)
            GA_PUSH(c->a, vh->routes, vh->n_routes,
                    gen_default_route(c, gen_cluster_name(c, port, NULL, svc->hostname), true));
        GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
    }
    c->egress = NULL;
    /* istiod's buildCatchAllVirtualHost: ALLOW_ANY passes unknown hosts to
     * PassthroughCluster (or the egressProxy's cluster), REGISTRY_ONLY answers 502 */
    Envoy__Config__Route__V3__Route *r = gen_catchall_route(c, "/");
    Envoy__Config__Route__V3__VirtualHost *any = NULL;
    if (sc->allow_any) {
        any = gen_vhost(c, "allow_any");
        Envoy__Config__Route__V3__RouteAction *ra =
            GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction,
                   envoy__config__route__v3__route_action__init);
        ra->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        ra->cluster = ga_strdup(c->a, sc->egress_cluster);
        ra->timeout = gen_duration(c, 0);
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
        r->route = ra;
        r->name = ga_strdup(c->a, "allow_any");
    } else {
        any = gen_vhost(c, "block_all");
        Envoy__Config__Route__V3__DirectResponseAction *dr =
            GA_MSG(c->a, Envoy__Config__Route__V3__DirectResponseAction,
                   envoy__config__route__v3__direct_response_action__init);
        dr->status = 502;
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
        r->direct_response = dr;
        r->name = ga_strdup(c->a, "block_all");
    }
    gen_vhost_domain(c, any, "*");
    GA_PUSH(c->a, any->routes, any->n_routes, r);
    GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, any);
    return &rc->base;
}

const gen_type_ops gen_sc_rds = {sc_rds_list, sc_rds_build};

/* ---- CDS ------------------------------------------------------------------------------------ */

enum { SC_C_OUT = 0, SC_C_IN, SC_C_BLACKHOLE, SC_C_PASSTHROUGH, SC_C_INPASSTHROUGH };

/* istiod's InboundConnectionPoolForPort: the Sidecar ingress listener's pool for port,
 * else the Sidecar's inboundConnectionPool; NULL without either. */
static const mesh_conn_pool *sc_inbound_pool(gen_ctx *c, uint32_t port)
{
    const mesh_sidecar *sc = c->p->sidecar;
    if (!sc)
        return NULL;
    for (size_t i = 0; i < sc->ningress; i++)
        if (sc->ingress[i].port.number == port && sc->ingress[i].connection_pool)
            return sc->ingress[i].connection_pool;
    return sc->inbound_connection_pool;
}

/* The service port of svc that targets the workload port (istiod's ServicePort of the
 * inbound instance), else port itself. */
static uint32_t sc_service_port(const mesh_service *svc, uint32_t port)
{
    for (size_t i = 0; svc && i < svc->nports; i++)
        if (svc->ports[i].target_port == port)
            return svc->ports[i].port;
    return port;
}

static void sc_cds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    sc_ctx *x = sc_get(c);
    gen_list_outbound_clusters(c, names, nnames, out);
    static const struct {
        const char *name;
        int kind;
    } fixed[] = {
        {"BlackHoleCluster", SC_C_BLACKHOLE},
        {"PassthroughCluster", SC_C_PASSTHROUGH},
        {"InboundPassthroughCluster", SC_C_INPASSTHROUGH},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (names && !gen_names_has(names, nnames, fixed[i].name))
            continue;
        gen_item it = {.name = ga_strdup(c->a, fixed[i].name),
                       .extra = ga_strdup(c->a, ""),
                       .ref = (void *)(uintptr_t)fixed[i].kind};
        gen_items_add(c, out, &it);
    }
    for (size_t k = 0; k < x->nin; k++) {
        char *n = ga_printf(c->a, "inbound|%u||", x->in[k].port);
        if (names && !gen_names_has(names, nnames, n))
            continue;
        /* the services on the port are in the cluster's metadata */
        gen_sbuf key = {0};
        ga_cat(c->a, &key, "%d|%s:%u|", (int)x->in[k].protocol, x->in[k].ep ? x->in[k].ep : "-",
               x->in[k].ep_port);
        for (size_t v = 0; v < x->in[k].nsvcs; v++)
            ga_cat(c->a, &key, "%s,", x->in[k].svcs[v]->hostname);
        /* the connection pool: the first service's rule, or the Sidecar's pool */
        const char *drk = NULL;
        if (x->in[k].nsvcs)
            mesh_snapshot_destination_rule(c->s, x->in[k].svcs[0]->hostname, c->p->ns, NULL, &drk);
        const mesh_conn_pool *pool = sc_inbound_pool(c, x->in[k].port);
        ga_cat(c->a, &key, "|dr=%s|pool=%s", drk ? drk : "-",
               pool ? ga_printf(c->a, "%s/%s", c->p->sidecar->meta.ns, c->p->sidecar->meta.name)
                    : "-");
        gen_item it = {.name = n,
                       .port = x->in[k].port,
                       .extra = (char *)ga_sbuf_str(c->a, &key),
                       .ref = (void *)(uintptr_t)SC_C_IN};
        gen_items_add(c, out, &it);
    }
}

static ProtobufCMessage *sc_cds_build(gen_ctx *c, const gen_item *it)
{
    int kind = (int)(uintptr_t)it->ref;
    if (kind == SC_C_OUT)
        return gen_envoy_cds_outbound.build(c, it);
    Envoy__Config__Cluster__V3__Cluster *cl = GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster,
                                                     envoy__config__cluster__v3__cluster__init);
    cl->name = ga_strdup(c->a, it->name);
    cl->connect_timeout = gen_duration(c, 10LL * 1000000000);
    cl->cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    switch (kind) {
    case SC_C_BLACKHOLE:
        cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
        break;
    case SC_C_PASSTHROUGH:
    case SC_C_INPASSTHROUGH:
        cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
        cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
        if (kind == SC_C_PASSTHROUGH) /* istiod's, like its other outbound clusters */
            gen_cluster_mx_filter(c, cl);
        break;
    case SC_C_IN: {
        const sc_ctx *x = sc_get(c);
        const sc_inbound *in = NULL;
        for (size_t k = 0; k < x->nin; k++)
            if (x->in[k].port == it->port)
                in = &x->in[k];
        if (in && in->ep && !in->ep[0]) {
            /* a Sidecar ingress without defaultEndpoint: where the connection was going */
            cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
        } else {
            /* the app behind the sidecar: localhost:port, or the ingress's defaultEndpoint */
            cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
            Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
                GA_MSG(c->a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
                       envoy__config__endpoint__v3__cluster_load_assignment__init);
            la->cluster_name = cl->name;
            Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle =
                GA_MSG(c->a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                       envoy__config__endpoint__v3__locality_lb_endpoints__init);
            Envoy__Config__Endpoint__V3__LbEndpoint *lb = gen_lb_endpoint(
                c, in && in->ep ? in->ep : "127.0.0.1", in && in->ep ? in->ep_port : it->port);
            if (in && in->ep && util_has_prefix(in->ep, "unix://")) {
                Envoy__Config__Core__V3__Address *ad = lb->endpoint->address;
                ad->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE;
                ad->pipe = GA_MSG(c->a, Envoy__Config__Core__V3__Pipe,
                                  envoy__config__core__v3__pipe__init);
                ad->pipe->path = ga_strdup(c->a, in->ep + strlen("unix://"));
            }
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints, lb);
            GA_PUSH(c->a, la->endpoints, la->n_endpoints, lle);
            cl->load_assignment = la;
        }
        mesh_protocol pr = (mesh_protocol)atoi(it->extra);
        if (pr == MESH_PROTO_HTTP2 || pr == MESH_PROTO_GRPC || pr == MESH_PROTO_GRPC_WEB)
            cl->http2_protocol_options =
                GA_MSG(c->a, Envoy__Config__Core__V3__Http2ProtocolOptions,
                       envoy__config__core__v3__http2_protocol_options__init);
        for (size_t k = 0; k < x->nin; k++)
            if (x->in[k].port == it->port && x->in[k].nsvcs)
                gen_cluster_services_metadata(c, cl, x->in[k].svcs, x->in[k].nsvcs);
        const mesh_service *svc = in && in->nsvcs ? in->svcs[0] : NULL;
        gen_inbound_policy(c, cl, svc, sc_service_port(svc, it->port),
                           sc_inbound_pool(c, it->port));
        /* istiod: no cleanup of an inbound original-destination cluster's hosts */
        if (cl->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST) {
            /* the largest protobuf Duration (more than gen_duration's int64 ns holds) */
            cl->cleanup_interval = gen_duration(c, 0);
            cl->cleanup_interval->seconds = 315576000000LL;
        }
        break;
    }
    default:
        return NULL;
    }
    return &cl->base;
}

const gen_type_ops gen_sc_cds = {sc_cds_list, sc_cds_build};
