/* test_gen_grpc_tls: proxyless gRPC mTLS (gRFC A29), decoded back with protobuf-c.
 * - CDS: DestinationRule tls ISTIO_MUTUAL (rule, port level, subset) gives the cluster an
 *   UpstreamTlsContext with certificate-provider instance "default" (certificate "default",
 *   root "ROOTCA") and the service's SPIFFE identities as exact SAN matchers (per port,
 *   sorted, unique; the rule's subjectAltNames win; the trust domain is configurable);
 *   DISABLE, SIMPLE, MUTUAL and no rule stay plaintext for gRPC.
 * - LDS: a server listener requires mTLS exactly when <ip>:<port> is an endpoint of a
 *   service whose rule (as the server's namespace sees it) says ISTIO_MUTUAL for that port,
 *   with a router-only HCM; the decision is part of the cache key.
 * - Push skipping: gRPC LDS now depends on DestinationRules and endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

#define POD(name, ns, app, ver, sa, ip)                                                            \
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns                    \
    ", labels: {app: " app ", version: " ver "}}\nspec: {serviceAccountName: " sa "}\n"            \
    "status: {podIP: " ip ", podIPs: [{ip: " ip "}]}\n"
#define SVC(name, ports)                                                                           \
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: grpc}\n"            \
    "spec:\n  selector: {app: " name "}\n  ports: " ports "\n"
#define SLICE(name, svc, ports, eps)                                                               \
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: " name            \
    ", namespace: grpc, labels: {kubernetes.io/service-name: " svc "}}\naddressType: IPv4\n"       \
    "ports: " ports "\nendpoints: " eps "\n"
#define EP(ip, pod) "{addresses: [" ip "], targetRef: {kind: Pod, name: " pod ", namespace: grpc}}"
#define DR(name, ns, host, spec)                                                                   \
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " name       \
    ", namespace: " ns "}\nspec:\n  host: " host "\n" spec

static const char *FIXTURE =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: grpc}\n"
    "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n" SVC(
        "greeter", "[{name: grpc, port: 50051}, {name: grpc-admin, port: 50052}]")
        POD("greeter-v1", "grpc", "greeter", "v1", "greeter", "127.0.20.1")
            POD("greeter-v2", "grpc", "greeter", "v2", "greeter-canary", "127.0.20.2")
                POD("greeter-v2b", "grpc", "greeter", "v2", "greeter-canary", "127.0.20.5")
    /* port 50051 on every pod, 50052 on v1 only: SANs are per port */
    SLICE("greeter-a", "greeter", "[{name: grpc, port: 50051}]",
          "[" EP("127.0.20.2", "greeter-v2") ", " EP("127.0.20.1", "greeter-v1") ", " EP(
              "127.0.20.5", "greeter-v2b") "]")
        SLICE("greeter-b", "greeter", "[{name: grpc-admin, port: 50052}]",
              "[" EP("127.0.20.1", "greeter-v1") "]")
            DR("greeter", "grpc", "greeter",
               "  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n"
               "    portLevelSettings: [{port: {number: 50052}, tls: {mode: DISABLE}}]\n"
               "  subsets:\n  - {name: v1, labels: {version: v1}}\n"
               "  - {name: v2, labels: {version: v2}, trafficPolicy: {tls: {mode: DISABLE}}}\n")
    /* the same host as namespace "other" sees it: plaintext */
    DR("greeter-other", "other", "greeter.grpc.svc.cluster.local",
       "  trafficPolicy:\n    tls: {mode: DISABLE}\n") SVC("pinned", "[{name: grpc, port: 7000}]")
        POD("pinned-1", "grpc", "pinned", "v1", "pinned", "127.0.20.3")
            SLICE("pinned-a", "pinned", "[{name: grpc, port: 7000}]",
                  "[" EP("127.0.20.3", "pinned-1") "]")
                DR("pinned", "grpc", "pinned",
                   "  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL, subjectAltNames: "
                   "[spiffe://example.com/ns/x/sa/y]}\n")
                    SVC("simple", "[{name: grpc, port: 7001}]")
                        DR("simple", "grpc", "simple",
                           "  trafficPolicy:\n    tls: {mode: SIMPLE, sni: simple.example.com}\n")
                            SVC("plain", "[{name: grpc, port: 7002}]")
                                POD("plain-1", "grpc", "plain", "v1", "plain", "127.0.20.4")
                                    SLICE("plain-a", "plain", "[{name: grpc, port: 7002}]",
                                          "[" EP("127.0.20.4", "plain-1") "]");

#define GREETER "greeter.grpc.svc.cluster.local"
#define SA(td, sa) "spiffe://" td "/ns/grpc/sa/" sa

typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext UpTls;
typedef Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext DownTls;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTls;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;

static mesh_snapshot *snap;
static xds_gen *gen;
static xds_proxy *client, *client_other, *sidecar;

static int setup(void **state)
{
    (void)state;
    snap = fx_snapshot(FIXTURE, NULL);
    gen = xds_gen_new();
    client = fx_proxy(XDS_FLAVOUR_GRPC, "grpc", "127.0.20.1", "app=greeter");
    client_other = fx_proxy(XDS_FLAVOUR_GRPC, "other", "127.0.20.1", "app=greeter");
    sidecar = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "grpc", "127.0.30.1", "app=x");
    return snap && gen && client && client_other && sidecar ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xds_proxy_free(client);
    xds_proxy_free(client_other);
    xds_proxy_free(sidecar);
    xds_gen_free(gen);
    mesh_snapshot_release(snap);
    return 0;
}

/* The checks every gRPC CommonTlsContext shares: own certificate and root from the
 * certificate-provider instance "default" in the A29 fields (no deprecated ones, which
 * grpc-go would read instead and lose the identity), SANs exactly `sans` (NULL-terminated). */
static void check_common(const CommonTls *ct, const char *const *sans)
{
    assert_non_null(ct);
    assert_non_null(ct->tls_certificate_provider_instance);
    assert_string_equal(ct->tls_certificate_provider_instance->instance_name, "default");
    assert_string_equal(ct->tls_certificate_provider_instance->certificate_name, "default");
    assert_int_equal(ct->n_tls_certificate_sds_secret_configs, 0);
    assert_int_equal(
        ct->validation_context_type_case,
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT);
    const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        ct->validation_context;
    assert_non_null(vc->ca_certificate_provider_instance);
    assert_string_equal(vc->ca_certificate_provider_instance->instance_name, "default");
    assert_string_equal(vc->ca_certificate_provider_instance->certificate_name, "ROOTCA");
    size_t n = 0;
    while (sans && sans[n])
        n++;
    assert_int_equal(vc->n_match_subject_alt_names, n);
    for (size_t i = 0; i < n; i++) {
        const Envoy__Type__Matcher__V3__StringMatcher *m = vc->match_subject_alt_names[i];
        assert_int_equal(m->match_pattern_case,
                         ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT);
        assert_string_equal(m->exact, sans[i]);
    }
}

/* The UpstreamTlsContext of cluster `name` for proxy p, or NULL when it is plaintext
 * (asserts the transport socket's shape when present). Free with free_unpacked. */
static UpTls *cluster_tls(xds_gen *g, const xds_proxy *p, const char *name)
{
    const char *names[] = {name};
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_CLUSTER, names, 1, &set);
    assert_int_equal(set.n, 1);
    Envoy__Config__Cluster__V3__Cluster *cl =
        envoy__config__cluster__v3__cluster__unpack(NULL, set.items[0]->len, set.items[0]->bytes);
    assert_non_null(cl);
    assert_string_equal(cl->name, name);
    UpTls *u = NULL;
    if (cl->transport_socket) {
        assert_string_equal(cl->transport_socket->name, "envoy.transport_sockets.tls");
        u = fx_unpack_any(
            cl->transport_socket->typed_config,
            &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
        assert_non_null(u);
    }
    protobuf_c_message_free_unpacked(&cl->base, NULL);
    xds_resource_set_free(&set);
    return u;
}

static void test_cds_istio_mutual(void **state)
{
    (void)state;
    static const struct {
        const char *cluster;
        const char *sans[4]; /* NULL-terminated; sans[0] NULL and plain: no TLS */
        bool plain;
    } cases[] = {
        /* rule-level ISTIO_MUTUAL: identities of every endpoint on 50051, sorted, unique */
        {"outbound|50051||" GREETER,
         {SA("cluster.local", "greeter"), SA("cluster.local", "greeter-canary")},
         false},
        /* a subset without its own policy inherits the rule's */
        {"outbound|50051|v1|" GREETER,
         {SA("cluster.local", "greeter"), SA("cluster.local", "greeter-canary")},
         false},
        /* a subset policy saying DISABLE wins */
        {"outbound|50051|v2|" GREETER, {NULL}, true},
        /* port level DISABLE wins over the rule */
        {"outbound|50052||" GREETER, {NULL}, true},
        /* the rule's own subjectAltNames replace the service's identities */
        {"outbound|7000||pinned.grpc.svc.cluster.local", {"spiffe://example.com/ns/x/sa/y"}, false},
        /* SIMPLE (and MUTUAL) are not for proxyless gRPC, as istiod: plaintext */
        {"outbound|7001||simple.grpc.svc.cluster.local", {NULL}, true},
        /* no rule: plaintext as before */
        {"outbound|7002||plain.grpc.svc.cluster.local", {NULL}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        UpTls *u = cluster_tls(gen, client, cases[i].cluster);
        if (cases[i].plain) {
            assert_null(u);
            continue;
        }
        assert_non_null(u);
        check_common(u->common_tls_context, cases[i].sans);
        assert_string_equal(u->sni, ""); /* istiod's grpcgen sends none */
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }

    /* the namespace "other" sees its own rule for greeter (DISABLE) */
    assert_null(cluster_tls(gen, client_other, "outbound|50051||" GREETER));

    /* an Envoy sidecar still gets SDS-based TLS for SIMPLE, with the rule's SNI */
    UpTls *u = cluster_tls(gen, sidecar, "outbound|7001||simple.grpc.svc.cluster.local");
    assert_non_null(u);
    assert_string_equal(u->sni, "simple.example.com");
    assert_null(u->common_tls_context->tls_certificate_provider_instance);
    protobuf_c_message_free_unpacked(&u->base, NULL);
}

/* An SDS reference the Istio agent answers: name, and Istio's exact config source (the
 * agent's local "sds-grpc" cluster, gRPC, V3, node on the first message only). */
static void check_agent_sds(const Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sc,
                            const char *name)
{
    assert_non_null(sc);
    assert_string_equal(sc->name, name);
    const Envoy__Config__Core__V3__ConfigSource *cs = sc->sds_config;
    assert_non_null(cs);
    assert_int_equal(cs->resource_api_version, ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
    assert_int_equal(
        cs->config_source_specifier_case,
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE);
    const Envoy__Config__Core__V3__ApiConfigSource *api = cs->api_config_source;
    assert_int_equal(api->api_type, ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC);
    assert_int_equal(api->transport_api_version, ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
    assert_true(api->set_node_on_first_message_only);
    assert_int_equal(api->n_grpc_services, 1);
    assert_int_equal(api->grpc_services[0]->target_specifier_case,
                     ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC);
    assert_string_equal(api->grpc_services[0]->envoy_grpc->cluster_name, "sds-grpc");
}

/* Envoy's ISTIO_MUTUAL: the workload certificate "default" and the root "ROOTCA" come from
 * the agent's SDS, never from us over ADS (istiod serves neither; an Envoy asking ADS for
 * them would wait for ever). */
static void test_cds_istio_mutual_envoy_sds(void **state)
{
    (void)state;
    UpTls *u = cluster_tls(gen, sidecar, "outbound|50051||" GREETER);
    assert_non_null(u);
    const CommonTls *ct = u->common_tls_context;
    assert_int_equal(ct->n_tls_certificate_sds_secret_configs, 1);
    check_agent_sds(ct->tls_certificate_sds_secret_configs[0], "default");
    assert_int_equal(
        ct->validation_context_type_case,
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT);
    check_agent_sds(ct->combined_validation_context->validation_context_sds_secret_config,
                    "ROOTCA");
    /* and the peer must be one of greeter's identities on this port, as for gRPC */
    const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *dv =
        ct->combined_validation_context->default_validation_context;
    assert_int_equal(dv->n_match_subject_alt_names, 2);
    assert_string_equal(dv->match_subject_alt_names[0]->exact, SA("cluster.local", "greeter"));
    assert_string_equal(dv->match_subject_alt_names[1]->exact,
                        SA("cluster.local", "greeter-canary"));
    /* istiod's in-mesh ALPN for an HTTP/2 (gRPC) port: h2 after Istio's two */
    assert_int_equal(ct->n_alpn_protocols, 3);
    assert_string_equal(ct->alpn_protocols[0], "istio-peer-exchange");
    assert_string_equal(ct->alpn_protocols[1], "istio");
    assert_string_equal(ct->alpn_protocols[2], "h2");
    protobuf_c_message_free_unpacked(&u->base, NULL);
}

static void test_cds_trust_domain(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_gen_set_trust_domain(g, "example.org");
    UpTls *u = cluster_tls(g, client, "outbound|50051||" GREETER);
    const char *want[] = {SA("example.org", "greeter"), SA("example.org", "greeter-canary"), NULL};
    assert_non_null(u);
    check_common(u->common_tls_context, want);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    xds_gen_set_trust_domain(g, ""); /* back to the default; no leak when set twice */
    xds_gen_free(g);
}

/* The inbound listener for name as p gets it; *tls the DownstreamTlsContext or NULL. */
static void inbound(const xds_proxy *p, const char *name, DownTls **tls)
{
    xds_resource_set set;
    const char *names[] = {name};
    fx_gen(gen, p, snap, XDS_TYPE_LISTENER, names, 1, &set);
    assert_int_equal(set.n, 1);
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(NULL, set.items[0]->len, set.items[0]->bytes);
    assert_non_null(l);
    assert_string_equal(l->name, name);
    assert_null(l->api_listener);
    assert_int_equal(l->n_listener_filters, 0);
    assert_int_equal(l->n_filter_chains, 1);
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
    assert_int_equal(fc->n_filters, 1);
    HCM *h = fx_unpack_any(
        fc->filters[0]->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    assert_non_null(h);
    /* gRPC servers NACK the fault filter: the router alone */
    assert_int_equal(h->n_http_filters, 1);
    assert_string_equal(h->http_filters[0]->name, "envoy.filters.http.router");
    assert_int_equal(
        h->route_specifier_case,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG);
    assert_int_equal(h->route_config->virtual_hosts[0]->routes[0]->action_case,
                     ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION);
    *tls = NULL;
    if (fc->transport_socket) {
        assert_string_equal(fc->transport_socket->name, "envoy.transport_sockets.tls");
        *tls = fx_unpack_any(
            fc->transport_socket->typed_config,
            &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
        assert_non_null(*tls);
        assert_string_equal(fc->name, "inbound-mtls");
    } else {
        assert_string_equal(fc->name, "inbound-plaintext");
    }
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

#define IN "xds.istio.io/grpc/lds/inbound/"

static void test_lds_inbound_mtls(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool other_ns;
        bool mtls;
    } cases[] = {
        {IN "127.0.20.1:50051", false, true},  /* endpoint of greeter, ISTIO_MUTUAL */
        {IN "127.0.20.2:50051", false, true},  /* the subset's DISABLE does not matter */
        {IN "127.0.20.1:50052", false, false}, /* port level DISABLE */
        {IN "127.0.20.3:7000", false, true},   /* pinned SANs: still mTLS, no SANs served */
        {IN "127.0.20.4:7002", false, false},  /* no rule */
        {IN "127.0.20.9:50051", false, false}, /* not an endpoint */
        {IN "127.0.20.1:50051", true, false},  /* namespace "other" sees DISABLE (same gen,
                                                * same name: the decision is in the key) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        DownTls *d;
        inbound(cases[i].other_ns ? client_other : client, cases[i].name, &d);
        if (!cases[i].mtls) {
            assert_null(d);
            continue;
        }
        assert_non_null(d);
        assert_non_null(d->require_client_certificate);
        assert_true(d->require_client_certificate->value);
        assert_null(d->require_sni);
        const char *none[] = {NULL};
        check_common(d->common_tls_context, none); /* gRPC servers refuse SAN matchers */
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
}

static void test_lds_depends_on_rules_and_endpoints(void **state)
{
    (void)state;
    uint32_t k = xds_type_kinds(client, NULL, XDS_TYPE_LISTENER);
    assert_true(k & (1u << MESH_KIND_DESTINATION_RULE));
    assert_true(k & (1u << MESH_KIND_ENDPOINT_SLICE));
    assert_true(k & (1u << MESH_KIND_SERVICE));
    /* a Sidecar scope imports what its VirtualServices route to: listeners follow both */
    assert_true(k & (1u << MESH_KIND_VIRTUAL_SERVICE));
    assert_true(k & (1u << MESH_KIND_SIDECAR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cds_istio_mutual),
        cmocka_unit_test(test_cds_istio_mutual_envoy_sds),
        cmocka_unit_test(test_cds_trust_domain),
        cmocka_unit_test(test_lds_inbound_mtls),
        cmocka_unit_test(test_lds_depends_on_rules_and_endpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
