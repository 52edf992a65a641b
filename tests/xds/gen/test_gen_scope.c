/* test_gen_scope: Sidecar scoping (xds/gen/scope.c) and outboundTrafficPolicy, as istiod's
 * SidecarScope applies them: which hosts an egress listener imports, and what that leaves
 * in a sidecar's CDS, EDS, LDS and RDS and in a proxyless gRPC client's LDS; the memo class
 * following the Sidecar; BlackHoleCluster / PassthroughCluster / egressProxy for unknown
 * traffic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

/* a: productpage, reviews (HTTP 9080), db (TCP 5432); b: ratings (9080), other (8000);
 * istio-system: istiod. Sidecars: a's namespace default (every host of "." and of
 * istio-system), c's for app=narrow (one HTTP listener on 9080 for every host of b,
 * REGISTRY_ONLY), d's (b's other only,
 * ALLOW_ANY through other as egressProxy). A VirtualService in a sends reviews to b's
 * ratings. e has no Sidecar. */
static const char *MESH =
    "apiVersion: v1\nkind: Service\nmetadata: {name: productpage, namespace: a}\n"
    "spec: {clusterIP: 10.96.0.1, selector: {app: productpage}, ports: [{name: http, port: "
    "9080}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: a}\n"
    "spec: {clusterIP: 10.96.0.2, selector: {app: reviews}, ports: [{name: http, port: 9080}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: a}\n"
    "spec: {clusterIP: 10.96.0.3, selector: {app: db}, ports: [{name: tcp-db, port: 5432}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: b}\n"
    "spec: {clusterIP: 10.96.1.1, selector: {app: ratings}, ports: [{name: http, port: 9080}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: b}\n"
    "spec: {clusterIP: 10.96.1.2, selector: {app: other}, ports: [{name: http, port: 8000}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: istiod, namespace: istio-system}\n"
    "spec: {clusterIP: 10.96.9.9, selector: {app: istiod}, ports: [{name: grpc-xds, port: "
    "15010}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: reviews, namespace: a}\n"
    "spec: {hosts: [reviews], http: [{route: [{destination: {host: "
    "ratings.b.svc.cluster.local}}]}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, "
    "namespace: a}\n"
    "spec: {egress: [{hosts: [\"./*\", \"istio-system/*\"]}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: narrow, namespace: "
    "c}\n"
    "spec:\n  workloadSelector: {labels: {app: narrow}}\n"
    "  egress: [{port: {number: 9080, protocol: HTTP, name: http}, hosts: [\"b/*\"]}]\n"
    "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: egress, "
    "namespace: d}\n"
    "spec:\n  egress: [{hosts: [\"b/other.b.svc.cluster.local\"]}]\n"
    "  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n"
    "    egressProxy: {host: other.b.svc.cluster.local, port: {number: 8000}}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: in, namespace: "
    "f}\n"
    "spec:\n  ingress:\n"
    "  - {port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: "
    "\"127.0.0.1:8080\"}\n"
    "  - {port: {number: 7070, protocol: TCP, name: tcp}, defaultEndpoint: \"0.0.0.0:7000\"}\n"
    "  - {port: {number: 6060, protocol: TCP, name: tcp-od}}\n"
    "  - {port: {number: 5050, protocol: TCP, name: tcp-uds}, defaultEndpoint: "
    "\"unix:///var/run/app.sock\"}\n"
    "  - {port: {number: 4040, protocol: HTTP, name: http-own}, captureMode: NONE, bind: "
    "10.1.0.40, defaultEndpoint: \"127.0.0.1:4000\"}\n"
    /* t: ingress listeners with their own tls, mTLS off but for port 7443 */
    "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: t, "
    "namespace: t}\n"
    "spec: {selector: {matchLabels: {app: t}}, mtls: {mode: DISABLE}, portLevelMtls: {7443: "
    "{mode: STRICT}}}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: tls, namespace: "
    "t}\n"
    "spec:\n  inboundConnectionPool: {tcp: {maxConnections: 7, connectTimeout: 2s}}\n"
    "  ingress:\n"
    "  - port: {number: 9443, protocol: HTTPS, name: https}\n"
    "    defaultEndpoint: 127.0.0.1:9080\n"
    "    tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: "
    "/etc/certs/key.pem, minProtocolVersion: TLSV1_2, cipherSuites: "
    "[ECDHE-RSA-AES128-GCM-SHA256]}\n"
    "  - port: {number: 8443, protocol: TLS, name: tls}\n"
    "    bind: 10.1.0.50\n"
    "    defaultEndpoint: 127.0.0.1:8080\n"
    "    tls: {mode: MUTUAL, serverCertificate: /etc/certs/cert.pem, privateKey: "
    "/etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/crl.pem}\n"
    "    connectionPool: {http: {http2MaxRequests: 9}}\n"
    "  - port: {number: 7443, protocol: HTTPS, name: https-strict}\n"
    "    defaultEndpoint: 127.0.0.1:7080\n"
    "    tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: "
    "/etc/certs/key.pem}\n";

static mesh_snapshot *snap;

static int setup(void **state)
{
    (void)state;
    snap = fx_snapshot(MESH, NULL);
    return snap && snap->nsidecars == 5 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mesh_snapshot_release(snap);
    return 0;
}

/* ---- host matching tables ------------------------------------------------------------------ */

static void test_host_match(void **state)
{
    (void)state;
    static const struct {
        const char *n, *o;
        bool subset, overlaps;
    } t[] = {
        {"foo.com", "foo.com", true, true},
        {"foo.com", "bar.com", false, false},
        {"foo.com", "*.com", true, true},
        {"*.com", "foo.com", false, true},
        {"*.foo.com", "foo.com", false, false},
        {"foo.com", "*", true, true},
        {"*", "foo.com", false, true},
        {"*.foo.com", "*.com", true, true},
        {"*.com", "*.foo.com", false, true},
        {"*", "*", true, true},
        {"a.b.svc.cluster.local", "*.svc.cluster.local", true, true},
        {"a.b.svc.cluster.local", "*.c.svc.cluster.local", false, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(gen_host_subset_of(t[i].n, t[i].o), t[i].subset);
        assert_int_equal(gen_host_overlaps(t[i].n, t[i].o), t[i].overlaps);
    }
}

static void test_egress_imports(void **state)
{
    (void)state;
    /* as parse_sidecar.c splits "." + "*" (dot), "*" + "api.example.com", "~" + "*" and
     * "b" + "*.example.com" */
    mesh_sidecar_host hs[] = {
        {.ns = "istio-system", .host = "*", .dot = true},
        {.ns = "*", .host = "api.example.com"},
        {.ns = "*", .host = "*", .exclude = true},
        {.ns = "b", .host = "*.example.com"},
    };
    mesh_sidecar_egress e = {.hosts = hs, .nhosts = 4};
    static const struct {
        const char *proxy_ns, *ns, *host;
        bool vs, want;
    } t[] = {
        /* "." is the scoped proxy's namespace, not the (root) Sidecar's */
        {"a", "a", "x.a.svc.cluster.local", false, true},
        {"a", "istio-system", "istiod.istio-system.svc.cluster.local", false, false},
        {"istio-system", "istio-system", "istiod.istio-system.svc.cluster.local", false, true},
        /* namespace "*": any namespace, that host only */
        {"a", "z", "api.example.com", false, true},
        {"a", "z", "web.example.com", false, false},
        /* "~" imports nothing */
        {"a", "q", "q.q.svc.cluster.local", false, false},
        /* b's hosts under the wildcard */
        {"a", "b", "web.example.com", false, true},
        {"a", "c", "web.example.com", false, false},
        /* a service host "*.example.com" is no subset of "api.example.com"; a VirtualService
         * host may cover the import */
        {"a", "z", "*.example.com", false, false},
        {"a", "z", "*.example.com", true, true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_int_equal(gen_egress_imports(&e, t[i].proxy_ns, t[i].ns, t[i].host, t[i].vs),
                         t[i].want);
}

/* ---- what a scoped proxy gets -------------------------------------------------------------- */

#define C(port, host) "outbound|" #port "||" host
#define PP "productpage.a.svc.cluster.local"
#define RV "reviews.a.svc.cluster.local"
#define DB "db.a.svc.cluster.local"
#define RT "ratings.b.svc.cluster.local"
#define OT "other.b.svc.cluster.local"
#define ID "istiod.istio-system.svc.cluster.local"

static char *res_json(const xds_resource *r)
{
    cJSON *j = xds_resource_to_json(r);
    assert_non_null(j);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static bool json_has(const xds_resource *r, const char *needle)
{
    char *s = res_json(r);
    bool has = strstr(s, needle) != NULL;
    free(s);
    return has;
}

static void test_cds_eds_scope(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.9", "app=x");
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_non_null(fx_find(&set, C(9080, PP)));
    assert_non_null(fx_find(&set, C(9080, RV)));
    assert_non_null(fx_find(&set, C(5432, DB)));
    assert_non_null(fx_find(&set, C(15010, ID)));
    /* outside a and istio-system: only what the imported VirtualService routes to */
    assert_non_null(fx_find(&set, C(9080, RT)));
    assert_null(fx_find(&set, C(8000, OT)));
    assert_non_null(fx_find(&set, "BlackHoleCluster"));
    assert_non_null(fx_find(&set, "PassthroughCluster"));
    assert_non_null(fx_find(&set, "InboundPassthroughCluster"));
    assert_int_equal(set.n, 8);
    xds_resource_set_free(&set);
    const char *eds[] = {C(8000, OT), C(9080, PP), C(9080, RT)};
    fx_gen(g, p, snap, XDS_TYPE_ENDPOINT, eds, 3, &set);
    assert_int_equal(set.n, 2);
    assert_null(fx_find(&set, C(8000, OT)));
    xds_resource_set_free(&set);
    /* e has no Sidecar: the whole mesh */
    xds_proxy *e = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "e", "10.1.0.10", NULL);
    fx_gen(g, e, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_non_null(fx_find(&set, C(8000, OT)));
    assert_int_equal(set.n, 9);
    xds_resource_set_free(&set);
    xds_proxy_free(e);
    xds_proxy_free(p);
    xds_gen_free(g);
}

static void test_lds_rds_scope(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.9", NULL);
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_non_null(fx_find(&set, "0.0.0.0_9080"));
    assert_non_null(fx_find(&set, "10.96.0.3_5432"));
    assert_non_null(fx_find(&set, "0.0.0.0_15010"));
    assert_null(fx_find(&set, "0.0.0.0_8000"));
    assert_true(json_has(fx_find(&set, "virtualOutbound"), "\"cluster\":\"PassthroughCluster\""));
    xds_resource_set_free(&set);
    fx_gen(g, p, snap, XDS_TYPE_ROUTE, NULL, 0, &set);
    assert_null(fx_find(&set, "8000"));
    const xds_resource *r = fx_find(&set, "9080");
    assert_non_null(r);
    assert_true(json_has(r, "\"name\":\"" PP ":9080\""));
    assert_true(json_has(r, "\"name\":\"" RV ":9080\""));
    /* the VirtualService's destination is a cluster, not a virtual host of its own */
    assert_false(json_has(r, "\"name\":\"" RT ":9080\""));
    assert_true(json_has(r, "\"cluster\":\"" C(9080, RT) "\""));
    assert_true(json_has(r, "\"name\":\"allow_any\""));
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

/* c's app=narrow Sidecar: one HTTP egress listener on 9080 importing b, REGISTRY_ONLY. */
static void test_egress_port_registry_only(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "c", "10.1.0.11", "app=narrow");
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_int_equal(set.n, 3); /* virtualOutbound, virtualInbound, 0.0.0.0_9080 */
    assert_non_null(fx_find(&set, "0.0.0.0_9080"));
    const xds_resource *vo = fx_find(&set, "virtualOutbound");
    assert_true(json_has(vo, "\"cluster\":\"BlackHoleCluster\""));
    assert_false(json_has(vo, "PassthroughCluster\""));
    xds_resource_set_free(&set);
    fx_gen(g, p, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_non_null(fx_find(&set, C(9080, RT)));
    assert_null(fx_find(&set, C(8000, OT))); /* b's, but not on the listener's port */
    assert_null(fx_find(&set, C(9080, PP)));
    assert_int_equal(set.n, 4);
    xds_resource_set_free(&set);
    fx_gen(g, p, snap, XDS_TYPE_ROUTE, NULL, 0, &set);
    assert_int_equal(set.n, 1);
    const xds_resource *r = fx_find(&set, "9080");
    assert_true(json_has(r, "\"name\":\"" RT ":9080\""));
    assert_false(json_has(r, PP));
    assert_true(json_has(r, "\"name\":\"block_all\""));
    assert_true(json_has(r, "\"status\":502"));
    assert_false(json_has(r, "allow_any"));
    xds_resource_set_free(&set);
    /* the same namespace without the label: no Sidecar, whole mesh, ALLOW_ANY */
    xds_proxy *q = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "c", "10.1.0.12", "app=wide");
    fx_gen(g, q, snap, XDS_TYPE_ROUTE, NULL, 0, &set);
    assert_non_null(fx_find(&set, "8000"));
    assert_true(json_has(fx_find(&set, "9080"), "\"name\":\"allow_any\""));
    xds_resource_set_free(&set);
    xds_proxy_free(q);
    xds_proxy_free(p);
    xds_gen_free(g);
}

static void test_egress_proxy_and_mesh_mode(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_gen_set_outbound_mode(g, XDS_OUTBOUND_REGISTRY_ONLY);
    xds_proxy *d = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "d", "10.1.0.13", NULL);
    xds_proxy *e = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "e", "10.1.0.14", NULL);
    xds_resource_set set;
    /* d's Sidecar says ALLOW_ANY through its egressProxy, over mesh config */
    fx_gen(g, d, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_true(json_has(fx_find(&set, "virtualOutbound"), "\"cluster\":\"" C(8000, OT) "\""));
    assert_non_null(fx_find(&set, "0.0.0.0_8000"));
    assert_null(fx_find(&set, "0.0.0.0_9080"));
    xds_resource_set_free(&set);
    fx_gen(g, d, snap, XDS_TYPE_ROUTE, NULL, 0, &set);
    const xds_resource *r = fx_find(&set, "8000");
    assert_true(json_has(r, "\"name\":\"allow_any\""));
    assert_true(json_has(r, "\"cluster\":\"" C(8000, OT) "\""));
    xds_resource_set_free(&set);
    /* e has no Sidecar: mesh config's REGISTRY_ONLY */
    fx_gen(g, e, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_true(json_has(fx_find(&set, "virtualOutbound"), "\"cluster\":\"BlackHoleCluster\""));
    xds_resource_set_free(&set);
    fx_gen(g, e, snap, XDS_TYPE_ROUTE, NULL, 0, &set);
    assert_true(json_has(fx_find(&set, "9080"), "\"name\":\"block_all\""));
    xds_resource_set_free(&set);
    xds_proxy_free(d);
    xds_proxy_free(e);
    xds_gen_free(g);
}

/* f's Sidecar has ingress listeners: the inbound ports and where each goes. */
static void test_ingress(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "f", "10.1.0.40", NULL);
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    const xds_resource *vi = fx_find(&set, "virtualInbound");
    assert_non_null(vi);
    assert_true(json_has(vi, "\"name\":\"0.0.0.0_9080\""));
    assert_true(json_has(vi, "\"name\":\"0.0.0.0_7070\""));
    assert_true(json_has(vi, "\"cluster\":\"inbound|6060||\""));
    assert_true(json_has(vi, "\"cluster\":\"inbound|5050||\""));
    assert_true(json_has(vi, "envoy.filters.network.http_connection_manager"));
    /* captureMode NONE: not a virtualInbound chain but a listener of its own, bound to
     * bind:port (bind_to_port left at Envoy's true), HTTP to inbound|4040|| */
    assert_false(json_has(vi, "\"name\":\"0.0.0.0_4040\""));
    const xds_resource *own = fx_find(&set, "10.1.0.40_4040");
    assert_non_null(own);
    assert_true(json_has(own, "\"address\":\"10.1.0.40\",\"port_value\":4040"));
    assert_true(json_has(own, "\"traffic_direction\":\"INBOUND\""));
    assert_false(json_has(own, "bind_to_port"));
    assert_false(json_has(own, "destination_port"));
    assert_true(json_has(own, "envoy.filters.network.http_connection_manager"));
    assert_true(json_has(own, "inbound|4040||"));
    xds_resource_set_free(&set);
    fx_gen(g, p, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    const xds_resource *c9 = fx_find(&set, "inbound|9080||");
    const xds_resource *c7 = fx_find(&set, "inbound|7070||");
    const xds_resource *c6 = fx_find(&set, "inbound|6060||");
    const xds_resource *c5 = fx_find(&set, "inbound|5050||");
    assert_non_null(c9);
    assert_non_null(c7);
    assert_non_null(c6);
    assert_non_null(c5);
    assert_true(json_has(c9, "\"address\":\"127.0.0.1\",\"port_value\":8080"));
    assert_true(json_has(c7, "\"address\":\"10.1.0.40\",\"port_value\":7000"));
    assert_true(json_has(c6, "\"type\":\"ORIGINAL_DST\""));
    assert_false(json_has(c6, "load_assignment"));
    assert_true(json_has(c5, "\"pipe\":{\"path\":\"/var/run/app.sock\"}"));
    const xds_resource *c4 = fx_find(&set, "inbound|4040||");
    assert_non_null(c4);
    assert_true(json_has(c4, "\"address\":\"127.0.0.1\",\"port_value\":4000"));
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

/* The filter chains of listener r named name: how many, and the first (owned by *doc). */
static const cJSON *chain_named(const xds_resource *r, const char *name, size_t *n, cJSON **doc)
{
    *doc = xds_resource_to_json(r);
    assert_non_null(*doc);
    const cJSON *first = NULL, *fc;
    *n = 0;
    cJSON_ArrayForEach(fc, cJSON_GetObjectItemCaseSensitive(*doc, "filter_chains"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fc, "name");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0 && (*n)++ == 0)
            first = fc;
    }
    return first;
}

static bool cjson_has(const cJSON *j, const char *needle)
{
    char *s = cJSON_PrintUnformatted(j);
    bool has = strstr(s, needle) != NULL;
    free(s);
    return has;
}

/* t's Sidecar ingress `tls` with ENABLE_TLS_ON_SIDECAR_INGRESS: on a port whose mTLS is
 * DISABLE one chain terminating the given TLS (files through the agent's SDS; HTTPS then
 * served as HTTP, TLS as TCP), named "<bind>_<port>" and carrying the Sidecar's config
 * metadata; on the STRICT port Istio mTLS as always; without the flag, no custom TLS. */
static void test_ingress_tls(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_gen_set_sidecar_ingress_tls(g, true);
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "t", "10.1.0.50", "app=t");
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    const xds_resource *vi = fx_find(&set, "virtualInbound");
    assert_non_null(vi);
    size_t n;
    cJSON *doc;
    const cJSON *fc = chain_named(vi, "0.0.0.0_9443", &n, &doc);
    assert_int_equal(n, 1);
    assert_true(cjson_has(fc, "\"transport_protocol\":\"tls\""));
    assert_true(cjson_has(fc, "envoy.filters.network.http_connection_manager"));
    assert_true(cjson_has(fc, "\"stat_prefix\":\"inbound_0.0.0.0_9443\""));
    assert_true(cjson_has(fc, "\"tls_certificate_sds_secret_configs\":[{\"name\":\"file-cert:/etc/"
                              "certs/cert.pem~/etc/certs/key.pem\""));
    assert_true(cjson_has(fc, "\"alpn_protocols\":[\"h2\",\"http/1.1\"]"));
    assert_true(cjson_has(fc, "\"require_client_certificate\":false"));
    assert_true(cjson_has(fc, "\"tls_minimum_protocol_version\":\"TLSv1_2\""));
    assert_true(cjson_has(fc, "\"cipher_suites\":[\"ECDHE-RSA-AES128-GCM-SHA256\"]"));
    assert_false(cjson_has(fc, "ROOTCA"));
    assert_false(cjson_has(fc, "validation_context"));
    assert_true(
        cjson_has(fc, "\"config\":\"/apis/networking.istio.io/v1/namespaces/t/sidecar/tls\""));
    cJSON_Delete(doc);
    fc = chain_named(vi, "10.1.0.50_8443", &n, &doc);
    assert_int_equal(n, 1);
    assert_true(cjson_has(fc, "envoy.filters.network.tcp_proxy"));
    assert_false(cjson_has(fc, "http_connection_manager"));
    assert_true(cjson_has(fc, "\"require_client_certificate\":true"));
    assert_true(cjson_has(fc, "\"name\":\"file-root:/etc/certs/ca.pem\""));
    assert_true(cjson_has(fc, "\"crl\":{\"filename\":\"/etc/certs/crl.pem\"}"));
    assert_false(cjson_has(fc, "tls_params"));
    cJSON_Delete(doc);
    /* STRICT: the port's own tls does not apply (istiod's MTLSDisable condition) */
    fc = chain_named(vi, "0.0.0.0_7443", &n, &doc);
    assert_int_equal(n, 1);
    assert_true(cjson_has(fc, "\"name\":\"ROOTCA\""));
    assert_false(cjson_has(fc, "file-cert:"));
    cJSON_Delete(doc);
    xds_resource_set_free(&set);

    /* inbound clusters: istiod's default circuit breakers, replaced by the Sidecar's pools
     * (the ingress listener's own for 8443, inboundConnectionPool for the others) */
    fx_gen(g, p, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    const xds_resource *c9 = fx_find(&set, "inbound|9443||");
    const xds_resource *c8 = fx_find(&set, "inbound|8443||");
    assert_non_null(c9);
    assert_non_null(c8);
    assert_true(json_has(c9, "\"max_connections\":7,\"max_pending_requests\":4294967295"));
    assert_true(json_has(c9, "\"connect_timeout\":\"2s\""));
    assert_true(json_has(c8, "\"max_connections\":4294967295"));
    assert_true(json_has(c8, "\"max_requests\":9,"));
    assert_true(json_has(c8, "\"connect_timeout\":\"10s\""));
    xds_resource_set_free(&set);
    xds_gen_free(g);

    /* without ENABLE_TLS_ON_SIDECAR_INGRESS the plaintext chain of mTLS DISABLE */
    g = xds_gen_new();
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    vi = fx_find(&set, "virtualInbound");
    assert_non_null(vi);
    fc = chain_named(vi, "0.0.0.0_9443", &n, &doc);
    assert_int_equal(n, 1);
    assert_true(cjson_has(fc, "\"transport_protocol\":\"raw_buffer\""));
    assert_false(cjson_has(fc, "file-cert:"));
    cJSON_Delete(doc);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

/* ---- memo classes follow the Sidecar ----------------------------------------------------- */

static void same_as_fresh(const xds_proxy *p, const char *type, const char *const *names, size_t n,
                          const xds_resource_set *got)
{
    xds_gen *f = xds_gen_new();
    xds_resource_set want;
    fx_gen(f, p, snap, type, names, n, &want);
    assert_int_equal(want.n, got->n);
    for (size_t i = 0; i < want.n; i++) {
        assert_string_equal(want.items[i]->name, got->items[i]->name);
        assert_true(want.items[i]->hash == got->items[i]->hash);
    }
    xds_resource_set_free(&want);
    xds_gen_free(f);
}

static void test_memo_follows_sidecar(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    /* two proxies of a (one Sidecar), c's narrow and wide workloads (Sidecar or none) */
    xds_proxy *ps[] = {
        fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.20", "app=one"),
        fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.21", "app=two"),
        fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "c", "10.1.0.22", "app=narrow"),
        fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "c", "10.1.0.23", "app=wide"),
    };
    static const char *const types[] = {XDS_TYPE_ROUTE, XDS_TYPE_ENDPOINT};
    const char *eds[] = {C(9080, RT), C(8000, OT)};
    const char *rds[] = {"9080", "8000"};
    for (size_t t = 0; t < 2; t++) {
        const char *const *names = t == 0 ? rds : eds;
        xds_resource_set sets[4];
        uint64_t h0, m0, h1, m1;
        for (size_t i = 0; i < 4; i++) {
            xds_gen_memo_stats(g, &h0, &m0);
            fx_gen(g, ps[i], snap, types[t], names, 2, &sets[i]);
            xds_gen_memo_stats(g, &h1, &m1);
            /* the second proxy of a is a hit; every other one a class of its own */
            assert_int_equal(h1 - h0, i == 1 ? 1 : 0);
            same_as_fresh(ps[i], types[t], names, 2, &sets[i]);
        }
        assert_true(sets[0].id == sets[1].id);
        assert_true(sets[0].items[0] == sets[1].items[0]); /* shared bytes */
        assert_true(sets[2].id != sets[3].id);
        assert_true(sets[2].n == 1 && sets[3].n == 2); /* narrow: 9080 only */
        if (t == 0) /* the same route name, different virtual hosts: not one cache entry */
            assert_true(fx_find(&sets[2], "9080")->hash != fx_find(&sets[3], "9080")->hash);
        for (size_t i = 0; i < 4; i++)
            xds_resource_set_free(&sets[i]);
    }
    for (size_t i = 0; i < 4; i++)
        xds_proxy_free(ps[i]);
    xds_gen_free(g);
}

/* ---- proxyless gRPC ------------------------------------------------------------------------ */

static void test_grpc_scope(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_proxy *a = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.1.0.30", NULL);
    xds_proxy *e = fx_proxy(XDS_FLAVOUR_GRPC, "e", "10.1.0.31", NULL);
    const char *lds[] = {"other.b:8000", "productpage.a:9080"};
    const char *cds[] = {C(9080, PP), C(8000, OT)};
    xds_resource_set set;
    fx_gen(g, a, snap, XDS_TYPE_LISTENER, lds, 2, &set);
    assert_int_equal(set.n, 1);
    assert_non_null(fx_find(&set, "productpage.a:9080"));
    xds_resource_set_free(&set);
    fx_gen(g, a, snap, XDS_TYPE_CLUSTER, cds, 2, &set);
    assert_int_equal(set.n, 1);
    assert_null(fx_find(&set, C(8000, OT)));
    xds_resource_set_free(&set);
    fx_gen(g, e, snap, XDS_TYPE_LISTENER, lds, 2, &set);
    assert_int_equal(set.n, 2);
    xds_resource_set_free(&set);
    xds_proxy_free(a);
    xds_proxy_free(e);
    xds_gen_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_match),
        cmocka_unit_test(test_egress_imports),
        cmocka_unit_test(test_cds_eds_scope),
        cmocka_unit_test(test_lds_rds_scope),
        cmocka_unit_test(test_egress_port_registry_only),
        cmocka_unit_test(test_egress_proxy_and_mesh_mode),
        cmocka_unit_test(test_ingress),
        cmocka_unit_test(test_ingress_tls),
        cmocka_unit_test(test_memo_follows_sidecar),
        cmocka_unit_test(test_grpc_scope),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
