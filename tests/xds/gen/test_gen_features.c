/* test_gen_features: gateway credentials over SDS, TLS passthrough / TCP / TLS-terminated
 * TCP gateway servers, sidecar tcp and tls routes, and exportTo, from
 * tests/xds/gen/fixtures/features.yaml, decoded back with protobuf-c. One generator (and so
 * one bytes cache) serves every proxy, so the cache keys are checked too: proxies that
 * must see different resources under the same name get different bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Listener__V3__FilterChain FilterChain;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;
typedef Envoy__Extensions__TransportSockets__Tls__V3__Secret Secret;
typedef Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext DownstreamTls;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfig;

#define DB "db.default.svc.cluster.local"
#define BACKEND "backend.default.svc.cluster.local"
#define BACKEND2 "backend-v2.default.svc.cluster.local"

static mesh_snapshot *snap;
static xds_gen *gen;
static xds_proxy *gw, *gw_default, *sc_default, *sc_team;

static int setup(void **state)
{
    (void)state;
    char path[1024];
    const char *src = getenv("PILOT_SRC");
    snprintf(path, sizeof path, "%s/tests/xds/gen/fixtures/features.yaml", src ? src : ".");
    snap = fx_snapshot_files(path, NULL);
    gen = xds_gen_new();
    const char *gwl = "app=istio-ingressgateway,istio=ingressgateway";
    gw = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.1", gwl);
    gw_default = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "default", "10.0.0.2", gwl);
    sc_default = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.9", "app=client");
    sc_team = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "team-a", "10.2.0.9", "app=client");
    return snap && gen ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xds_proxy_free(gw);
    xds_proxy_free(gw_default);
    xds_proxy_free(sc_default);
    xds_proxy_free(sc_team);
    xds_gen_free(gen);
    mesh_snapshot_release(snap);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static Listener *listener(const xds_proxy *p, const char *name)
{
    xds_resource_set set;
    fx_gen(gen, p, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    const xds_resource *r = fx_find(&set, name);
    if (!r)
        fail_msg("listener %s missing", name);
    Listener *l = envoy__config__listener__v3__listener__unpack(NULL, r->len, r->bytes);
    assert_non_null(l);
    xds_resource_set_free(&set);
    return l;
}

static bool has_resource(const xds_proxy *p, const char *type, const char *name)
{
    xds_resource_set set;
    fx_gen(gen, p, snap, type, NULL, 0, &set);
    bool found = fx_find(&set, name) != NULL;
    xds_resource_set_free(&set);
    return found;
}

/* The chain's terminal tcp_proxy: only telemetry filters before it (test_gen_telemetry). */
static TcpProxy *tcp_proxy_of(const FilterChain *fc)
{
    assert_true(fc->n_filters >= 1);
    for (size_t i = 0; i + 1 < fc->n_filters; i++)
        assert_int_equal(strncmp(fc->filters[i]->name, "istio.", 6), 0);
    const Envoy__Config__Listener__V3__Filter *f = fc->filters[fc->n_filters - 1];
    assert_string_equal(f->name, "envoy.filters.network.tcp_proxy");
    TcpProxy *tp =
        fx_unpack_any(f->typed_config,
                      &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
    assert_non_null(tp);
    return tp;
}

static void free_tp(TcpProxy *tp)
{
    protobuf_c_message_free_unpacked(&tp->base, NULL);
}

/* tcp_proxy to one cluster */
static void assert_tcp_cluster(const FilterChain *fc, const char *cluster)
{
    TcpProxy *tp = tcp_proxy_of(fc);
    assert_int_equal(
        tp->cluster_specifier_case,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER);
    assert_string_equal(tp->cluster, cluster);
    free_tp(tp);
}

/* tcp_proxy weighted over two clusters */
static void assert_tcp_split(const FilterChain *fc, const char *c1, uint32_t w1, const char *c2,
                             uint32_t w2)
{
    TcpProxy *tp = tcp_proxy_of(fc);
    assert_int_equal(
        tp->cluster_specifier_case,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
    assert_int_equal(tp->weighted_clusters->n_clusters, 2);
    assert_string_equal(tp->weighted_clusters->clusters[0]->name, c1);
    assert_int_equal(tp->weighted_clusters->clusters[0]->weight, w1);
    assert_string_equal(tp->weighted_clusters->clusters[1]->name, c2);
    assert_int_equal(tp->weighted_clusters->clusters[1]->weight, w2);
    assert_string_equal(tp->stat_prefix, c1);
    free_tp(tp);
}

static void assert_server_names(const FilterChain *fc, size_t n, const char *const *want)
{
    assert_non_null(fc->filter_chain_match);
    assert_int_equal(fc->filter_chain_match->n_server_names, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(fc->filter_chain_match->server_names[i], want[i]);
}

static bool has_tls_inspector(const Listener *l)
{
    for (size_t i = 0; i < l->n_listener_filters; i++)
        if (strcmp(l->listener_filters[i]->name, "envoy.filters.listener.tls_inspector") == 0)
            return true;
    return false;
}

/* ---- SDS ----------------------------------------------------------------------------------- */

static Secret *secret(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    if (!r)
        fail_msg("secret %s missing", name);
    assert_string_equal(r->type_url, XDS_TYPE_SECRET);
    Secret *s =
        envoy__extensions__transport_sockets__tls__v3__secret__unpack(NULL, r->len, r->bytes);
    assert_non_null(s);
    assert_string_equal(s->name, name);
    return s;
}

static void assert_inline(const Envoy__Config__Core__V3__DataSource *d, const char *want)
{
    assert_non_null(d);
    assert_int_equal(d->specifier_case,
                     ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES);
    assert_int_equal(d->inline_bytes.len, strlen(want));
    assert_memory_equal(d->inline_bytes.data, want, strlen(want));
}

static void test_sds_gateway(void **state)
{
    (void)state;
    static const char *const names[] = {
        "kubernetes://ingress-cert",              /* kubernetes.io/tls: tls.crt + tls.key */
        "kubernetes://mtls-cert",                 /* generic: cert + key */
        "kubernetes://mtls-cert-cacert",          /* no mtls-cert-cacert Secret: falls back */
        "kubernetes://istio-system/ingress-cert", /* own namespace spelled out */
        "kubernetes://ingress-cert-cacert",       /* ingress-cert has no CA: absent */
        "kubernetes://other-cert",                /* in default: not the gateway's namespace */
        "kubernetes://default/other-cert",        /* cross-namespace: refused */
        "kubernetes://missing",
        "default",
        "ROOTCA", /* the node agent's, not istiod's */
    };
    size_t n = sizeof names / sizeof names[0];
    xds_resource_set set;
    fx_gen(gen, gw, snap, XDS_TYPE_SECRET, names, n, &set);
    assert_int_equal(set.n, 4);

    Secret *s = secret(&set, "kubernetes://ingress-cert");
    assert_int_equal(s->type_case,
                     ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE);
    assert_inline(s->tls_certificate->certificate_chain, "CERT-PEM");
    assert_inline(s->tls_certificate->private_key, "KEY-PEM");
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s = secret(&set, "kubernetes://mtls-cert");
    assert_inline(s->tls_certificate->certificate_chain, "GCERT");
    assert_inline(s->tls_certificate->private_key, "GKEY");
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s = secret(&set, "kubernetes://mtls-cert-cacert");
    assert_int_equal(
        s->type_case,
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT);
    assert_inline(s->validation_context->trusted_ca, "GCA");
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s = secret(&set, "kubernetes://istio-system/ingress-cert");
    assert_inline(s->tls_certificate->private_key, "KEY-PEM");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    xds_resource_set_free(&set);

    /* a gateway deployed in default gets default's Secrets, and the same name resolves
     * there (the cache must not hand it istio-system's bytes) */
    static const char *const dn[] = {"kubernetes://other-cert", "kubernetes://other-cert-cacert",
                                     "kubernetes://ingress-cert"};
    fx_gen(gen, gw_default, snap, XDS_TYPE_SECRET, dn, 3, &set);
    assert_int_equal(set.n, 2);
    s = secret(&set, "kubernetes://other-cert-cacert");
    assert_inline(s->validation_context->trusted_ca, "CA-PEM");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    assert_null(fx_find(&set, "kubernetes://ingress-cert"));
    xds_resource_set_free(&set);

    /* sidecars (a DestinationRule's credentialName) get their namespace's CA bundles only:
     * no key material without the SubjectAccessReview istiod runs */
    fx_gen(gen, sc_default, snap, XDS_TYPE_SECRET, dn, 3, &set);
    assert_int_equal(set.n, 1);
    s = secret(&set, "kubernetes://other-cert-cacert");
    assert_inline(s->validation_context->trusted_ca, "CA-PEM");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    assert_null(fx_find(&set, "kubernetes://other-cert"));
    xds_resource_set_free(&set);
}

static void test_sds_json(void **state)
{
    (void)state;
    static const char *const names[] = {"kubernetes://ingress-cert"};
    xds_resource_set set;
    fx_gen(gen, gw, snap, XDS_TYPE_SECRET, names, 1, &set);
    assert_int_equal(set.n, 1);
    /* config_dump shape (debug_xds.c then redacts private_key) */
    cJSON *j = xds_resource_to_json(set.items[0]);
    assert_non_null(j);
    cJSON *tc = cJSON_GetObjectItemCaseSensitive(j, "tls_certificate");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(tc, "private_key"));
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(tc, "certificate_chain"), "inline_bytes")),
        "Q0VSVC1QRU0=");
    cJSON_Delete(j);
    xds_resource_set_free(&set);
}

/* ---- gateway servers --------------------------------------------------------------------- */

static void test_gateway_listeners_listed(void **state)
{
    (void)state;
    xds_resource_set set;
    fx_gen(gen, gw, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_int_equal(set.n, 4);
    assert_non_null(fx_find(&set, "0.0.0.0_8443"));  /* HTTPS 443 on targetPort 8443 */
    assert_non_null(fx_find(&set, "0.0.0.0_9443"));  /* passthrough */
    assert_non_null(fx_find(&set, "0.0.0.0_9444"));  /* TLS-terminated TCP */
    assert_non_null(fx_find(&set, "0.0.0.0_31400")); /* TCP */
    xds_resource_set_free(&set);
    /* TCP and passthrough servers have no routes */
    fx_gen(gen, gw, snap, XDS_TYPE_ROUTE, NULL, 0, &set);
    assert_int_equal(set.n, 1);
    assert_non_null(fx_find(&set, "https.443.https.gw.istio-system"));
    xds_resource_set_free(&set);
}

static void test_gateway_passthrough(void **state)
{
    (void)state;
    Listener *l = listener(gw, "0.0.0.0_9443");
    assert_true(has_tls_inspector(l));
    assert_int_equal(l->n_filter_chains, 2);
    /* first match: a.pass on port 9443 */
    static const char *const a[] = {"a.pass.example.com"};
    assert_server_names(l->filter_chains[0], 1, a);
    assert_null(l->filter_chains[0]->transport_socket); /* passed through, not terminated */
    assert_tcp_cluster(l->filter_chains[0], "outbound|443||" BACKEND);
    /* second: a.pass already claimed, c.other not admitted by the server's hosts */
    static const char *const b[] = {"b.pass.example.com"};
    assert_server_names(l->filter_chains[1], 1, b);
    assert_tcp_split(l->filter_chains[1], "outbound|443||" BACKEND, 75, "outbound|443||" BACKEND2,
                     25);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void test_gateway_tcp(void **state)
{
    (void)state;
    Listener *l = listener(gw, "0.0.0.0_31400");
    assert_int_equal(l->address->socket_address->port_value, 31400);
    assert_int_equal(l->n_filter_chains, 1);
    assert_null(l->filter_chains[0]->filter_chain_match);
    assert_false(has_tls_inspector(l));
    assert_tcp_split(l->filter_chains[0], "outbound|5432|v1|" DB, 50, "outbound|5432|v2|" DB, 50);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void test_gateway_tls_terminated_tcp(void **state)
{
    (void)state;
    Listener *l = listener(gw, "0.0.0.0_9444");
    assert_true(has_tls_inspector(l));
    assert_int_equal(l->n_filter_chains, 1);
    FilterChain *fc = l->filter_chains[0];
    static const char *const h[] = {"mtls.example.com"};
    assert_server_names(fc, 1, h);
    assert_non_null(fc->transport_socket);
    DownstreamTls *d = fx_unpack_any(
        fc->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
    assert_non_null(d);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct = d->common_tls_context;
    assert_int_equal(ct->n_tls_certificate_sds_secret_configs, 1);
    assert_string_equal(ct->tls_certificate_sds_secret_configs[0]->name, "kubernetes://mtls-cert");
    assert_string_equal(ct->validation_context_sds_secret_config->name,
                        "kubernetes://mtls-cert-cacert");
    assert_int_equal(ct->n_alpn_protocols, 0); /* opaque TCP: no HTTP ALPN */
    assert_true(d->require_client_certificate->value);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    /* the tcp-gw route matches port 31400 only: mtls-tcp's route applies */
    assert_tcp_cluster(fc, "outbound|443||" BACKEND);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

/* ---- sidecar tcp and tls routes ------------------------------------------------------------ */

static void test_sidecar_tcp_route(void **state)
{
    (void)state;
    Listener *l = listener(sc_default, "10.96.1.1_5432");
    assert_int_equal(l->n_filter_chains, 1);
    assert_tcp_split(l->filter_chains[0], "outbound|5432|v1|" DB, 70, "outbound|5432|v2|" DB, 30);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    /* the db VirtualService is exported to "." only: team-a goes straight to the service,
     * from the same cache (the listener's key carries the proxy namespace) */
    l = listener(sc_team, "10.96.1.1_5432");
    assert_int_equal(l->n_filter_chains, 1);
    assert_tcp_cluster(l->filter_chains[0], "outbound|5432||" DB);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void test_sidecar_tls_route(void **state)
{
    (void)state;
    Listener *l = listener(sc_default, "10.96.1.3_443");
    assert_true(has_tls_inspector(l));
    assert_int_equal(l->n_filter_chains, 2);
    static const char *const sni[] = {BACKEND};
    assert_server_names(l->filter_chains[0], 1, sni);
    assert_tcp_cluster(l->filter_chains[0], "outbound|443||" BACKEND2);
    /* other SNI names: the service itself */
    assert_null(l->filter_chains[1]->filter_chain_match);
    assert_tcp_cluster(l->filter_chains[1], "outbound|443||" BACKEND);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    /* a TLS service without a VirtualService: one plain chain, no inspector */
    l = listener(sc_default, "10.96.1.4_443");
    assert_false(has_tls_inspector(l));
    assert_int_equal(l->n_filter_chains, 1);
    assert_tcp_cluster(l->filter_chains[0], "outbound|443||" BACKEND2);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

/* ---- exportTo ------------------------------------------------------------------------------ */

static const char *route_cluster(const xds_proxy *p, const char *rds, const char *vhost)
{
    static char buf[256];
    const char *names[1] = {rds};
    xds_resource_set set;
    fx_gen(gen, p, snap, XDS_TYPE_ROUTE, names, 1, &set);
    const xds_resource *r = fx_find(&set, rds);
    if (!r)
        fail_msg("route %s missing", rds);
    RouteConfig *rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->bytes);
    assert_non_null(rc);
    buf[0] = '\0';
    for (size_t i = 0; i < rc->n_virtual_hosts; i++) {
        if (strcmp(rc->virtual_hosts[i]->name, vhost) != 0)
            continue;
        assert_true(rc->virtual_hosts[i]->n_routes > 0);
        snprintf(buf, sizeof buf, "%s", rc->virtual_hosts[i]->routes[0]->route->cluster);
    }
    protobuf_c_message_free_unpacked(&rc->base, NULL);
    xds_resource_set_free(&set);
    return buf[0] ? buf : NULL;
}

static void test_export_to_services(void **state)
{
    (void)state;
    const char *priv = "outbound|8081||private.team-a.svc.cluster.local";
    const char *nobody = "outbound|7000||nobody.team-a.svc.cluster.local";
    /* exportTo "." on the Service: team-a only */
    assert_true(has_resource(sc_team, XDS_TYPE_CLUSTER, priv));
    assert_false(has_resource(sc_default, XDS_TYPE_CLUSTER, priv));
    assert_false(has_resource(gw, XDS_TYPE_CLUSTER, priv));
    assert_true(has_resource(sc_team, XDS_TYPE_LISTENER, "0.0.0.0_8081"));
    assert_false(has_resource(sc_default, XDS_TYPE_LISTENER, "0.0.0.0_8081"));
    assert_false(has_resource(sc_default, XDS_TYPE_ROUTE, "8081"));
    /* a named request for a hidden cluster answers nothing either */
    const char *names[] = {priv};
    xds_resource_set set;
    fx_gen(gen, sc_default, snap, XDS_TYPE_CLUSTER, names, 1, &set);
    assert_int_equal(set.n, 0);
    xds_resource_set_free(&set);
    fx_gen(gen, sc_default, snap, XDS_TYPE_ENDPOINT, names, 1, &set);
    assert_int_equal(set.n, 0);
    xds_resource_set_free(&set);
    /* "~": nobody, not even its own namespace */
    assert_false(has_resource(sc_team, XDS_TYPE_CLUSTER, nobody));
    assert_false(has_resource(sc_team, XDS_TYPE_LISTENER, "10.96.2.2_7000"));
}

static void test_export_to_vs_and_dr(void **state)
{
    (void)state;
    const char *vh = "web.default.svc.cluster.local:80";
    /* the web VirtualService (exportTo ".") sends default's sidecars to the canary... */
    const char *c = route_cluster(sc_default, "80", vh);
    assert_non_null(c);
    assert_string_equal(c, "outbound|80||web-canary.default.svc.cluster.local");
    /* ...while team-a, sharing the cache, keeps the service's default route */
    c = route_cluster(sc_team, "80", vh);
    assert_non_null(c);
    assert_string_equal(c, "outbound|80||web.default.svc.cluster.local");
    /* the web DestinationRule (exportTo ".") gives subsets to default only */
    const char *canary = "outbound|80|canary|web.default.svc.cluster.local";
    assert_true(has_resource(sc_default, XDS_TYPE_CLUSTER, canary));
    assert_false(has_resource(sc_team, XDS_TYPE_CLUSTER, canary));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sds_gateway),
        cmocka_unit_test(test_sds_json),
        cmocka_unit_test(test_gateway_listeners_listed),
        cmocka_unit_test(test_gateway_passthrough),
        cmocka_unit_test(test_gateway_tcp),
        cmocka_unit_test(test_gateway_tls_terminated_tcp),
        cmocka_unit_test(test_sidecar_tcp_route),
        cmocka_unit_test(test_sidecar_tls_route),
        cmocka_unit_test(test_export_to_services),
        cmocka_unit_test(test_export_to_vs_and_dr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
