/* test_gen_mtls: PeerAuthentication and auto mTLS as istiod applies them: the inbound
 * chains per mode (mesh, namespace, workload, port level, precedence), the outbound
 * clusters' transport_socket_matches and EDS tlsMode metadata, and proxyless gRPC server
 * listeners and clients. Decoded back with protobuf-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.pb-c.h"
#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Listener__V3__FilterChain Chain;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext Upstream;
typedef Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext Downstream;

#define REVIEWS "reviews.default.svc.cluster.local"

/* reviews (HTTP 9080) in default: v1 has a sidecar (tlsMode istio), v2 does not; api in
 * "shop" (HTTP 8080, TCP 9090) with a sidecar; db in "legacy" with a sidecar. */
static const char *const base_yaml =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
    "spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 9080}], selector: {app: "
    "reviews}}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: reviews-v1, namespace: default, labels: {app: "
    "reviews, version: v1, security.istio.io/tlsMode: istio}}\n"
    "spec: {serviceAccountName: reviews}\nstatus: {podIP: 10.1.0.5, podIPs: [{ip: "
    "10.1.0.5}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: reviews-v2, namespace: default, labels: {app: "
    "reviews, version: v2}}\n"
    "spec: {serviceAccountName: reviews}\nstatus: {podIP: 10.1.0.6, podIPs: [{ip: "
    "10.1.0.6}]}\n---\n"
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: reviews-1, "
    "namespace: default, labels: {kubernetes.io/service-name: reviews}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9080, protocol: TCP}]\nendpoints:\n"
    "- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: reviews-v1, namespace: default}}\n"
    "- {addresses: [10.1.0.6], targetRef: {kind: Pod, name: reviews-v2, namespace: default}}\n"
    "---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
    "spec: {clusterIP: 10.0.0.20, ports: [{name: http, port: 8080}, {name: tcp-raw, port: "
    "9090}], selector: {app: api}}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: api-1, namespace: shop, labels: {app: api, "
    "security.istio.io/tlsMode: istio}}\n"
    "spec: {serviceAccountName: api}\nstatus: {podIP: 10.2.0.5, podIPs: [{ip: 10.2.0.5}]}\n---\n"
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: api-1, namespace: "
    "shop, labels: {kubernetes.io/service-name: api}}\n"
    "addressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}, {name: tcp-raw, port: "
    "9090, protocol: TCP}]\nendpoints:\n"
    "- {addresses: [10.2.0.5], targetRef: {kind: Pod, name: api-1, namespace: shop}}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: legacy}\n"
    "spec: {clusterIP: 10.0.0.30, ports: [{name: tcp-db, port: 5432}], selector: {app: db}}\n"
    "---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: db-1, namespace: legacy, labels: {app: db, "
    "security.istio.io/tlsMode: istio}}\n"
    "spec: {serviceAccountName: db}\nstatus: {podIP: 10.3.0.5, podIPs: [{ip: 10.3.0.5}]}\n---\n"
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-1, namespace: "
    "legacy, labels: {kubernetes.io/service-name: db}}\n"
    "addressType: IPv4\nports: [{name: tcp-db, port: 5432, protocol: TCP}]\nendpoints:\n"
    "- {addresses: [10.3.0.5], targetRef: {kind: Pod, name: db-1, namespace: legacy}}\n";

#define PA(ns, name, rest)                                                                         \
    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " name           \
    ", namespace: " ns "}\nspec: " rest "\n"

/* Every fixture snapshot is version 1, and the generator's memo is keyed by version (the
 * real model's versions only grow): one generator per call. */
static xds_gen *gen;

static void gen_begin(void)
{
    gen = xds_gen_new();
    assert_non_null(gen);
}

static void gen_end(void)
{
    xds_gen_free(gen);
    gen = NULL;
}

static Listener *inbound(const mesh_snapshot *s, xds_flavour f, const char *ns, const char *ip,
                         const char *labels)
{
    gen_begin();
    xds_proxy *p = fx_proxy(f, ns, ip, labels);
    xds_resource_set set;
    fx_gen(gen, p, s, XDS_TYPE_LISTENER, NULL, 0, &set);
    const xds_resource *r = fx_find(&set, "virtualInbound");
    assert_non_null(r);
    Listener *l = envoy__config__listener__v3__listener__unpack(NULL, r->len, r->bytes);
    assert_non_null(l);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    gen_end();
    return l;
}

/* The transport protocols of the chains for destination port (0: the passthrough chains
 * named virtualInbound), in order, e.g. "tls+,raw" ("+" marks a terminating chain). */
static void chains_of(const Listener *l, uint32_t port, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        const Chain *fc = l->filter_chains[i];
        const Envoy__Config__Listener__V3__FilterChainMatch *m = fc->filter_chain_match;
        if (!m || !m->transport_protocol || !m->transport_protocol[0])
            continue;
        uint32_t p = m->destination_port ? m->destination_port->value : 0;
        if (p != port)
            continue;
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s%s%s", n ? "," : "",
                 strcmp(m->transport_protocol, "tls") == 0 ? "tls" : "raw",
                 m->n_application_protocols ? "/istio" : "", fc->transport_socket ? "+" : "");
    }
}

static void check_downstream(const Chain *fc, bool http)
{
    assert_non_null(fc->transport_socket);
    assert_string_equal(fc->transport_socket->name, "envoy.transport_sockets.tls");
    Downstream *d = fx_unpack_any(
        fc->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
    assert_non_null(d);
    assert_true(d->require_client_certificate && d->require_client_certificate->value);
    const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct =
        d->common_tls_context;
    assert_int_equal(ct->n_alpn_protocols, http ? 2 : 3);
    assert_string_equal(ct->alpn_protocols[0], http ? "h2" : "istio-peer-exchange");
    assert_int_equal(
        ct->tls_params->tls_minimum_protocol_version,
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2);
    assert_int_equal(ct->tls_params->n_cipher_suites, 6);
    assert_int_equal(ct->n_tls_certificate_sds_secret_configs, 1);
    assert_string_equal(ct->tls_certificate_sds_secret_configs[0]->name, "default");
    assert_string_equal(ct->tls_certificate_sds_secret_configs[0]
                            ->sds_config->api_config_source->grpc_services[0]
                            ->envoy_grpc->cluster_name,
                        GEN_AGENT_SDS_CLUSTER);
    assert_string_equal(ct->combined_validation_context->validation_context_sds_secret_config->name,
                        "ROOTCA");
    /* any identity of our root may call: no SAN restriction inbound */
    assert_int_equal(
        ct->combined_validation_context->default_validation_context->n_match_subject_alt_names, 0);
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

static void test_default_permissive(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
    Listener *l = inbound(s, XDS_FLAVOUR_ENVOY_SIDECAR, "shop", "10.2.0.5", "app=api");
    char buf[256];
    chains_of(l, 8080, buf, sizeof buf);
    assert_string_equal(buf, "tls/istio+,raw"); /* HTTP: mTLS or plaintext */
    chains_of(l, 9090, buf, sizeof buf);
    assert_string_equal(buf, "tls/istio+,tls,raw"); /* TCP: also the app's own TLS */
    chains_of(l, 0, buf, sizeof buf);
    assert_string_equal(buf, "tls/istio+,raw,tls"); /* istiod's order for the passthrough */
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        const Chain *fc = l->filter_chains[i];
        if (fc->transport_socket)
            check_downstream(fc, fc->filter_chain_match->destination_port &&
                                     fc->filter_chain_match->destination_port->value == 8080);
    }
    protobuf_c_message_free_unpacked(&l->base, NULL);
    mesh_snapshot_release(s);
}

static void test_mesh_strict_namespace_disable(void **state)
{
    (void)state;
    mesh_snapshot *s =
        fx_snapshot(base_yaml, PA("istio-system", "default", "{mtls: {mode: STRICT}}"),
                    "---\n" PA("legacy", "off", "{mtls: {mode: DISABLE}}"), NULL);
    char buf[256];
    Listener *l = inbound(s, XDS_FLAVOUR_ENVOY_SIDECAR, "shop", "10.2.0.5", "app=api");
    chains_of(l, 8080, buf, sizeof buf);
    assert_string_equal(buf, "tls+");
    chains_of(l, 9090, buf, sizeof buf);
    assert_string_equal(buf, "tls+");
    chains_of(l, 0, buf, sizeof buf);
    assert_string_equal(buf, "tls+"); /* undeclared ports: no plaintext either */
    protobuf_c_message_free_unpacked(&l->base, NULL);

    l = inbound(s, XDS_FLAVOUR_ENVOY_SIDECAR, "legacy", "10.3.0.5", "app=db");
    chains_of(l, 5432, buf, sizeof buf);
    assert_string_equal(buf, "raw");
    chains_of(l, 0, buf, sizeof buf);
    assert_string_equal(buf, "raw");
    /* nothing matches on TLS: no inspector */
    for (size_t i = 0; i < l->n_listener_filters; i++)
        assert_string_not_equal(l->listener_filters[i]->name,
                                "envoy.filters.listener.tls_inspector");
    protobuf_c_message_free_unpacked(&l->base, NULL);
    mesh_snapshot_release(s);
}

static void test_workload_and_port_level(void **state)
{
    (void)state;
    mesh_snapshot *s =
        fx_snapshot(base_yaml, PA("shop", "ns", "{mtls: {mode: STRICT}}"),
                    "---\n" PA("shop", "api",
                               "{selector: {matchLabels: {app: api}}, portLevelMtls: {9090: "
                               "{mode: DISABLE}, 8080: {mode: UNSET}}}"),
                    /* root-namespace policies with a selector are ignored, as istiod does */
                    "---\n" PA("istio-system", "sel",
                               "{selector: {matchLabels: {app: api}}, mtls: {mode: "
                               "DISABLE}}"),
                    NULL);
    char buf[256];
    Listener *l = inbound(s, XDS_FLAVOUR_ENVOY_SIDECAR, "shop", "10.2.0.5", "app=api");
    chains_of(l, 8080, buf, sizeof buf);
    assert_string_equal(buf, "tls+"); /* UNSET inherits the workload's (here the namespace's) */
    chains_of(l, 9090, buf, sizeof buf);
    assert_string_equal(buf, "raw");
    protobuf_c_message_free_unpacked(&l->base, NULL);
    /* the same IP but other labels: the selector does not match */
    l = inbound(s, XDS_FLAVOUR_ENVOY_SIDECAR, "shop", "10.2.0.5", "app=other");
    chains_of(l, 9090, buf, sizeof buf);
    assert_string_equal(buf, "tls+");
    protobuf_c_message_free_unpacked(&l->base, NULL);
    mesh_snapshot_release(s);
}

static void test_oldest_policy_wins(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(
        base_yaml,
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a-new, "
        "namespace: shop, creationTimestamp: '2026-02-01T00:00:00Z'}\nspec: {mtls: {mode: "
        "DISABLE}}\n---\n"
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: z-old, "
        "namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec: {mtls: {mode: "
        "STRICT}}\n",
        NULL);
    char buf[256];
    Listener *l = inbound(s, XDS_FLAVOUR_ENVOY_SIDECAR, "shop", "10.2.0.5", "app=api");
    chains_of(l, 8080, buf, sizeof buf);
    assert_string_equal(buf, "tls+");
    protobuf_c_message_free_unpacked(&l->base, NULL);
    mesh_snapshot_release(s);
}

static Cluster *cluster(const mesh_snapshot *s, xds_flavour f, const char *ns, const char *name)
{
    gen_begin();
    xds_proxy *p = fx_proxy(f, ns, "10.9.0.1", NULL);
    xds_resource_set set;
    const char *names[] = {name};
    fx_gen(gen, p, s, XDS_TYPE_CLUSTER, f == XDS_FLAVOUR_GRPC ? names : NULL,
           f == XDS_FLAVOUR_GRPC ? 1 : 0, &set);
    const xds_resource *r = fx_find(&set, name);
    assert_non_null(r);
    Cluster *c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->bytes);
    assert_non_null(c);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    gen_end();
    return c;
}

static void test_auto_mtls_cluster(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
    Cluster *c = cluster(s, XDS_FLAVOUR_ENVOY_SIDECAR, "default", "outbound|9080||" REVIEWS);
    assert_null(c->transport_socket);
    assert_int_equal(c->n_transport_socket_matches, 2);
    const Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *m =
        c->transport_socket_matches[0];
    assert_string_equal(m->name, "tlsMode-istio");
    assert_int_equal(m->match->n_fields, 1);
    assert_string_equal(m->match->fields[0]->key, "tlsMode");
    assert_string_equal(m->match->fields[0]->value->string_value, "istio");
    Upstream *u = fx_unpack_any(
        m->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
    assert_non_null(u);
    assert_string_equal(u->sni, "outbound_.9080_._." REVIEWS);
    assert_int_equal(u->common_tls_context->n_alpn_protocols, 2);
    assert_string_equal(u->common_tls_context->alpn_protocols[0], "istio-peer-exchange");
    assert_string_equal(u->common_tls_context->alpn_protocols[1], "istio");
    const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *dv =
        u->common_tls_context->combined_validation_context->default_validation_context;
    assert_int_equal(dv->n_match_subject_alt_names, 1);
    assert_string_equal(dv->match_subject_alt_names[0]->exact,
                        "spiffe://cluster.local/ns/default/sa/reviews");
    protobuf_c_message_free_unpacked(&u->base, NULL);
    const Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *d =
        c->transport_socket_matches[1];
    assert_string_equal(d->name, "tlsMode-disabled");
    assert_int_equal(d->match->n_fields, 0);
    assert_string_equal(d->transport_socket->name, "envoy.transport_sockets.raw_buffer");
    protobuf_c_message_free_unpacked(&c->base, NULL);

    /* the namespace DISABLEs mTLS: no auto mTLS for its services */
    mesh_snapshot *s2 =
        fx_snapshot(base_yaml, PA("legacy", "off", "{mtls: {mode: DISABLE}}"), NULL);
    c = cluster(s2, XDS_FLAVOUR_ENVOY_SIDECAR, "default",
                "outbound|5432||db.legacy.svc.cluster.local");
    assert_int_equal(c->n_transport_socket_matches, 0);
    assert_null(c->transport_socket);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    mesh_snapshot_release(s2);
    mesh_snapshot_release(s);
}

static void test_destination_rule_wins(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(
        base_yaml,
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, "
        "namespace: default}\nspec: {host: reviews, trafficPolicy: {tls: {mode: DISABLE}}}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a, "
        "namespace: shop}\nspec: {host: api, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}\n",
        NULL);
    Cluster *c = cluster(s, XDS_FLAVOUR_ENVOY_SIDECAR, "default", "outbound|9080||" REVIEWS);
    assert_int_equal(c->n_transport_socket_matches, 0);
    assert_null(c->transport_socket);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = cluster(s, XDS_FLAVOUR_ENVOY_SIDECAR, "default",
                "outbound|8080||api.shop.svc.cluster.local");
    assert_int_equal(c->n_transport_socket_matches, 0);
    assert_non_null(c->transport_socket); /* explicit: mTLS to every endpoint */
    protobuf_c_message_free_unpacked(&c->base, NULL);
    mesh_snapshot_release(s);
}

/* "addr:tlsMode" per endpoint of the assignment, e.g. "10.1.0.5:istio,10.1.0.6:-". */
static void eds_modes(const mesh_snapshot *s, xds_flavour f, const char *name, char *buf,
                      size_t len)
{
    gen_begin();
    xds_proxy *p = fx_proxy(f, "default", "10.9.0.1", NULL);
    xds_resource_set set;
    const char *names[] = {name};
    fx_gen(gen, p, s, XDS_TYPE_ENDPOINT, names, 1, &set);
    const xds_resource *r = fx_find(&set, name);
    assert_non_null(r);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
        envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->bytes);
    assert_non_null(la);
    buf[0] = '\0';
    for (size_t g = 0; g < la->n_endpoints; g++) {
        for (size_t e = 0; e < la->endpoints[g]->n_lb_endpoints; e++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *lb = la->endpoints[g]->lb_endpoints[e];
            const char *mode = "-";
            if (lb->metadata) {
                assert_int_equal(lb->metadata->n_filter_metadata, 1);
                assert_string_equal(lb->metadata->filter_metadata[0]->key,
                                    "envoy.transport_socket_match");
                mode = lb->metadata->filter_metadata[0]->value->fields[0]->value->string_value;
            }
            size_t n = strlen(buf);
            snprintf(buf + n, len - n, "%s%s:%s", n ? "," : "",
                     lb->endpoint->address->socket_address->address, mode);
        }
    }
    protobuf_c_message_free_unpacked(&la->base, NULL);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    gen_end();
}

static void test_eds_tls_mode(void **state)
{
    (void)state;
    char buf[256];
    mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
    eds_modes(s, XDS_FLAVOUR_ENVOY_SIDECAR, "outbound|9080||" REVIEWS, buf, sizeof buf);
    assert_string_equal(buf, "10.1.0.5:istio,10.1.0.6:-");
    /* gRPC ignores the metadata: none is sent */
    eds_modes(s, XDS_FLAVOUR_GRPC, "outbound|9080||" REVIEWS, buf, sizeof buf);
    assert_string_equal(buf, "10.1.0.5:-,10.1.0.6:-");
    mesh_snapshot_release(s);
    /* a workload policy DISABLEs v1's port: its endpoint is plaintext for auto mTLS */
    s = fx_snapshot(base_yaml,
                    PA("default", "v1",
                       "{selector: {matchLabels: {version: v1}}, mtls: {mode: "
                       "DISABLE}}"),
                    NULL);
    eds_modes(s, XDS_FLAVOUR_ENVOY_SIDECAR, "outbound|9080||" REVIEWS, buf, sizeof buf);
    assert_string_equal(buf, "10.1.0.5:-,10.1.0.6:-");
    mesh_snapshot_release(s);
}

static bool grpc_server_mtls(const mesh_snapshot *s, const char *ns, const char *hostport)
{
    gen_begin();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_GRPC, ns, "10.9.0.1", NULL);
    char name[128];
    snprintf(name, sizeof name, "xds.istio.io/grpc/lds/inbound/%s", hostport);
    const char *names[] = {name};
    xds_resource_set set;
    fx_gen(gen, p, s, XDS_TYPE_LISTENER, names, 1, &set);
    const xds_resource *r = fx_find(&set, name);
    assert_non_null(r);
    Listener *l = envoy__config__listener__v3__listener__unpack(NULL, r->len, r->bytes);
    assert_non_null(l);
    assert_int_equal(l->n_filter_chains, 1);
    bool mtls = l->filter_chains[0]->transport_socket != NULL;
    assert_string_equal(l->filter_chains[0]->name, mtls ? "inbound-mtls" : "inbound-plaintext");
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    gen_end();
    return mtls;
}

static void test_grpc_server_and_client(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
    /* PERMISSIVE: mTLS where the pod says tlsMode istio (clients will use it), else not */
    assert_true(grpc_server_mtls(s, "default", "10.1.0.5:9080"));
    assert_false(grpc_server_mtls(s, "default", "10.1.0.6:9080"));
    assert_false(grpc_server_mtls(s, "default", "10.7.7.7:9080")); /* unknown endpoint */
    /* client: every endpoint of api has a sidecar -> mTLS; reviews is mixed -> plaintext */
    Cluster *c =
        cluster(s, XDS_FLAVOUR_GRPC, "default", "outbound|8080||api.shop.svc.cluster.local");
    assert_non_null(c->transport_socket);
    assert_int_equal(c->n_transport_socket_matches, 0);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = cluster(s, XDS_FLAVOUR_GRPC, "default", "outbound|9080||" REVIEWS);
    assert_null(c->transport_socket);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    mesh_snapshot_release(s);

    s = fx_snapshot(base_yaml, PA("default", "strict", "{mtls: {mode: STRICT}}"),
                    "---\n" PA("shop", "off", "{mtls: {mode: DISABLE}}"), NULL);
    assert_true(grpc_server_mtls(s, "default", "10.1.0.6:9080"));
    assert_true(grpc_server_mtls(s, "default", "10.7.7.7:9080"));
    assert_false(grpc_server_mtls(s, "shop", "10.2.0.5:8080"));
    c = cluster(s, XDS_FLAVOUR_GRPC, "default", "outbound|8080||api.shop.svc.cluster.local");
    assert_null(c->transport_socket); /* the server's namespace DISABLEs mTLS */
    protobuf_c_message_free_unpacked(&c->base, NULL);
    mesh_snapshot_release(s);
}

/* The TLS origination context of cluster name under a DR trafficPolicy tls block. */
static Upstream *origination(const char *tls, const char *name)
{
    char dr[512];
    snprintf(dr, sizeof dr,
             "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: o, "
             "namespace: default}\nspec: {host: reviews, trafficPolicy: {tls: %s}}\n",
             tls);
    mesh_snapshot *s = fx_snapshot(base_yaml, dr, NULL);
    Cluster *c = cluster(s, XDS_FLAVOUR_ENVOY_SIDECAR, "default", name);
    assert_int_equal(c->n_transport_socket_matches, 0); /* the rule's choice, no auto mTLS */
    assert_non_null(c->transport_socket);
    Upstream *u = fx_unpack_any(
        c->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
    assert_non_null(u);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    mesh_snapshot_release(s);
    return u;
}

static const Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *
root_of(const Upstream *u)
{
    const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct =
        u->common_tls_context;
    assert_int_equal(
        ct->validation_context_type_case,
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT);
    return ct->combined_validation_context->validation_context_sds_secret_config;
}

static void test_tls_origination(void **state)
{
    (void)state;
    /* SIMPLE without a CA: the proxy's system roots through the agent, never our mesh
     * root; no SNI unless the rule names one (the server is outside the mesh) */
    Upstream *u = origination("{mode: SIMPLE}", "outbound|9080||" REVIEWS);
    assert_true(u->sni == NULL || u->sni[0] == '\0');
    assert_string_equal(root_of(u)->name, "file-root:system");
    assert_string_equal(
        root_of(u)->sds_config->api_config_source->grpc_services[0]->envoy_grpc->cluster_name,
        GEN_AGENT_SDS_CLUSTER);
    assert_int_equal(u->common_tls_context->n_tls_certificate_sds_secret_configs, 0);
    protobuf_c_message_free_unpacked(&u->base, NULL);

    u = origination("{mode: SIMPLE, sni: api.example.com, caCertificates: /etc/ca.pem, "
                    "subjectAltNames: [api.example.com]}",
                    "outbound|9080||" REVIEWS);
    assert_string_equal(u->sni, "api.example.com");
    assert_string_equal(root_of(u)->name, "file-root:/etc/ca.pem");
    assert_int_equal(u->common_tls_context->combined_validation_context->default_validation_context
                         ->n_match_subject_alt_names,
                     1);
    protobuf_c_message_free_unpacked(&u->base, NULL);

    u = origination("{mode: SIMPLE, insecureSkipVerify: true}", "outbound|9080||" REVIEWS);
    assert_int_equal(
        u->common_tls_context->validation_context_type_case,
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT);
    assert_null(u->common_tls_context->validation_context->trusted_ca);
    protobuf_c_message_free_unpacked(&u->base, NULL);

    /* MUTUAL with files: the agent serves them */
    u = origination("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}",
                    "outbound|9080||" REVIEWS);
    assert_int_equal(u->common_tls_context->n_tls_certificate_sds_secret_configs, 1);
    assert_string_equal(u->common_tls_context->tls_certificate_sds_secret_configs[0]->name,
                        "file-cert:/c.pem~/k.pem");
    assert_string_equal(root_of(u)->name, "file-root:system");
    protobuf_c_message_free_unpacked(&u->base, NULL);

    /* MUTUAL with a credential: the Secret over ADS, CA from <cred>-cacert */
    u = origination("{mode: MUTUAL, credentialName: client-cred}", "outbound|9080||" REVIEWS);
    assert_string_equal(u->common_tls_context->tls_certificate_sds_secret_configs[0]->name,
                        "kubernetes://client-cred");
    assert_true(u->common_tls_context->tls_certificate_sds_secret_configs[0]->sds_config->ads !=
                NULL);
    assert_string_equal(root_of(u)->name, "kubernetes://client-cred-cacert");
    protobuf_c_message_free_unpacked(&u->base, NULL);
}

/* A policy selecting the ingress gateway reaches its HTTP and TCP chains. */
static void test_gateway_policies(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(
        base_yaml,
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: "
        "istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - {port: "
        "{number: 80, name: http, protocol: HTTP}, hosts: ['*']}\n  - {port: {number: 31400, "
        "name: tcp, protocol: TCP}, hosts: ['*']}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: t, "
        "namespace: istio-system}\nspec:\n  hosts: ['*']\n  gateways: [gw]\n  tcp:\n  - "
        "route: [{destination: {host: db.legacy.svc.cluster.local, port: {number: 5432}}}]\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
        "ingress, namespace: istio-system}\nspec:\n  selector: {matchLabels: {istio: "
        "ingressgateway}}\n  action: DENY\n  rules:\n  - from:\n    - source: {ipBlocks: "
        "[10.9.9.0/24]}\n---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        "metadata: {name: jwt, namespace: istio-system}\nspec:\n  selector: {matchLabels: "
        "{istio: ingressgateway}}\n  jwtRules:\n  - {issuer: https://issuer.example.com, jwks: "
        "'{\"keys\": []}'}\n",
        NULL);
    gen_begin();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.1",
                            "app=istio-ingressgateway,istio=ingressgateway");
    xds_resource_set set;
    fx_gen(gen, p, s, XDS_TYPE_LISTENER, NULL, 0, &set);
    size_t seen_http = 0, seen_tcp = 0;
    for (size_t i = 0; i < set.n; i++) {
        Listener *l = envoy__config__listener__v3__listener__unpack(NULL, set.items[i]->len,
                                                                    set.items[i]->bytes);
        assert_non_null(l);
        for (size_t k = 0; k < l->n_filter_chains; k++) {
            const Chain *fc = l->filter_chains[k];
            const char *first = fc->filters[0]->name;
            if (strcmp(first, "envoy.filters.network.rbac") == 0) {
                seen_tcp++;
                continue;
            }
            assert_string_equal(first, "envoy.filters.network.http_connection_manager");
            Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
                *h = fx_unpack_any(
                    fc->filters[0]->typed_config,
                    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
            assert_non_null(h);
            /* after the metadata exchange: authentication (a gateway re-picks its route
             * after it), then RBAC */
            assert_string_equal(h->http_filters[0]->name, "istio.metadata_exchange");
            assert_string_equal(h->http_filters[1]->name, "envoy.filters.http.jwt_authn");
            Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication *ja = fx_unpack_any(
                h->http_filters[1]->typed_config,
                &envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__descriptor);
            assert_non_null(ja);
            assert_int_equal(ja->n_providers, 1);
            assert_true(ja->providers[0]->value->clear_route_cache);
            protobuf_c_message_free_unpacked(&ja->base, NULL);
            assert_string_equal(h->http_filters[2]->name, "envoy.filters.http.rbac");
            seen_http++;
            protobuf_c_message_free_unpacked(&h->base, NULL);
        }
        protobuf_c_message_free_unpacked(&l->base, NULL);
    }
    assert_int_equal(seen_http, 1);
    assert_int_equal(seen_tcp, 1);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    gen_end();
    mesh_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_permissive),
        cmocka_unit_test(test_mesh_strict_namespace_disable),
        cmocka_unit_test(test_workload_and_port_level),
        cmocka_unit_test(test_oldest_policy_wins),
        cmocka_unit_test(test_auto_mtls_cluster),
        cmocka_unit_test(test_destination_rule_wins),
        cmocka_unit_test(test_eds_tls_mode),
        cmocka_unit_test(test_grpc_server_and_client),
        cmocka_unit_test(test_tls_origination),
        cmocka_unit_test(test_gateway_policies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
