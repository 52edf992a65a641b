/* test_gen_memo: the per-class set memo of xds/gen/gen.c and the push-skipping rules
 * (xds_type_kinds).
 *
 * The property that matters: a memo hit must give a proxy exactly what a generator
 * without any memo gives it. Every case below generates for a list of proxies through one
 * shared xds_gen (so later proxies can hit earlier ones' entries) and compares each set,
 * (name, hash) by (name, hash), with a fresh xds_gen's answer for that proxy alone. On top,
 * proxies that differ only in inputs the type does not read must share one set (same id,
 * same resource pointers), and proxies that differ in an input it does read must not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

/* greeter in namespaces a and b (different endpoints), two Gateways selecting different
 * gateway pods, a DestinationRule with subsets in a. */
static const char *BASE =
    "apiVersion: v1\nkind: Service\nmetadata: {name: greeter, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.1.1\n  selector: {app: greeter}\n"
    "  ports: [{name: grpc, port: 50051, targetPort: 50051}]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: greeter-a, namespace: a, labels: {kubernetes.io/service-name: greeter}}\n"
    "addressType: IPv4\nports: [{name: grpc, port: 50051, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.1.0.1]}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: greeter, namespace: b}\n"
    "spec:\n  clusterIP: 10.96.2.2\n  selector: {app: greeter}\n"
    "  ports: [{name: grpc, port: 50051, targetPort: 50051}]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: greeter-b, namespace: b, labels: {kubernetes.io/service-name: greeter}}\n"
    "addressType: IPv4\nports: [{name: grpc, port: 50051, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.2.0.1]}, {addresses: [10.2.0.2]}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    "metadata: {name: greeter, namespace: a}\n"
    "spec:\n  host: greeter\n  subsets: [{name: v1, labels: {version: v1}}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw1, namespace: gw}\n"
    "spec:\n  selector: {istio: gw-1}\n"
    "  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw2, namespace: gw}\n"
    "spec:\n  selector: {istio: gw-2}\n"
    "  servers: [{port: {number: 8080, name: http-alt, protocol: HTTP}, hosts: [\"*\"]}]\n";

/* A mesh VirtualService with a timeout on every route. */
static const char *PLAIN_VS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: "
                              "{name: greeter, namespace: a}\n"
                              "spec:\n  hosts: [greeter]\n  http:\n"
                              "  - timeout: 1s\n"
                              "    route: [{destination: {host: greeter}}]\n";

/* A namespace Sidecar for a: imports only its own namespace. */
static const char *SIDECAR_A = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: "
                               "{name: default, namespace: a}\n"
                               "spec:\n  egress: [{hosts: [\"./*\"]}]\n";

/* A mesh VirtualService whose first route applies only to clients labelled app=canary. */
static const char *SOURCE_LABELS = "apiVersion: networking.istio.io/v1\nkind: "
                                   "VirtualService\nmetadata: {name: greeter, namespace: a}\n"
                                   "spec:\n  hosts: [greeter]\n  http:\n"
                                   "  - match: [{sourceLabels: {app: canary}}]\n"
                                   "    timeout: 1s\n"
                                   "    route: [{destination: {host: greeter}}]\n"
                                   "  - route: [{destination: {host: greeter}}]\n";

static const char *const GRPC_LDS[] = {"greeter:50051"};
static const char *const GRPC_RDS[] = {"outbound|50051||greeter.a.svc.cluster.local",
                                       "outbound|50051||greeter.b.svc.cluster.local"};
static const char *const GRPC_EDS[] = {"outbound|50051||greeter.a.svc.cluster.local",
                                       "outbound|50051|v1|greeter.a.svc.cluster.local",
                                       "outbound|50051||greeter.b.svc.cluster.local"};

/* Asserts that what g gives p equals what a fresh generator gives it; returns the set. */
static void gen_checked(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *type,
                        const char *const *names, size_t nnames, xds_resource_set *out)
{
    xds_gen *fresh = xds_gen_new();
    xds_resource_set ref;
    fx_gen(fresh, p, s, type, names, nnames, &ref);
    fx_gen(g, p, s, type, names, nnames, out);
    assert_int_equal(out->n, ref.n);
    for (size_t i = 0; i < ref.n; i++) {
        assert_string_equal(out->items[i]->name, ref.items[i]->name);
        assert_true(out->items[i]->hash == ref.items[i]->hash);
    }
    assert_true(out->id != 0);
    xds_resource_set_free(&ref);
    xds_gen_free(fresh);
}

static bool same_content(const xds_resource_set *a, const xds_resource_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i]->name, b->items[i]->name) != 0 ||
            a->items[i]->hash != b->items[i]->hash)
            return false;
    return true;
}

/* gRPC: the namespace shapes every type (FQDN completion, DR visibility); two clients
 * alike share, one in another namespace does not get their sets. */
static void test_grpc_namespaces(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *a1 = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.1", "app=x");
    xds_proxy *a2 = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.2", "app=y");
    xds_proxy *b1 = fx_proxy(XDS_FLAVOUR_GRPC, "b", "10.9.0.3", "app=x");
    static const struct {
        const char *type;
        const char *const *names;
        size_t n;
    } cases[] = {
        {XDS_TYPE_LISTENER, GRPC_LDS, 1},
        {XDS_TYPE_ROUTE, GRPC_RDS, 2},
        {XDS_TYPE_CLUSTER, GRPC_EDS, 3},
        {XDS_TYPE_ENDPOINT, GRPC_EDS, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        xds_resource_set sa1, sa2, sb1;
        uint64_t h0, m0, h1, m1;
        xds_gen_memo_stats(g, &h0, &m0);
        gen_checked(g, a1, s, cases[c].type, cases[c].names, cases[c].n, &sa1);
        gen_checked(g, a2, s, cases[c].type, cases[c].names, cases[c].n, &sa2);
        gen_checked(g, b1, s, cases[c].type, cases[c].names, cases[c].n, &sb1);
        xds_gen_memo_stats(g, &h1, &m1);
        assert_true(h1 - h0 >= 1); /* a2 was answered from a1's entry */
        /* labels do not shape gRPC sets here (no sourceLabels): a1 and a2 share */
        assert_true(sa1.id == sa2.id);
        for (size_t i = 0; i < sa1.n; i++)
            assert_ptr_equal(sa1.items[i], sa2.items[i]);
        assert_true(sb1.id != sa1.id);
        /* "greeter:50051" resolves to greeter.b for b1 (CDS/EDS name FQDNs, and the DR
         * of greeter.a applies in every namespace: there the contents agree) */
        if (strcmp(cases[c].type, XDS_TYPE_LISTENER) == 0)
            assert_false(same_content(&sa1, &sb1));
        xds_resource_set_free(&sa1);
        xds_resource_set_free(&sa2);
        xds_resource_set_free(&sb1);
    }
    /* other names are another class */
    xds_resource_set one, two;
    gen_checked(g, a1, s, XDS_TYPE_ROUTE, GRPC_RDS, 1, &one);
    gen_checked(g, a1, s, XDS_TYPE_ROUTE, GRPC_RDS, 2, &two);
    assert_int_equal(one.n, 1);
    assert_int_equal(two.n, 2);
    assert_true(one.id != two.id);
    xds_resource_set_free(&one);
    xds_resource_set_free(&two);
    xds_proxy_free(a1);
    xds_proxy_free(a2);
    xds_proxy_free(b1);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* sourceLabels: only when the snapshot uses them do labels split a class. */
static void test_source_labels(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, SOURCE_LABELS, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *canary = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.1", "app=canary");
    xds_proxy *plain = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.2", "app=plain");
    xds_proxy *plain2 = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.3", "app=plain");
    xds_resource_set c1, p1, p2;
    gen_checked(g, canary, s, XDS_TYPE_ROUTE, GRPC_RDS, 1, &c1);
    gen_checked(g, plain, s, XDS_TYPE_ROUTE, GRPC_RDS, 1, &p1);
    gen_checked(g, plain2, s, XDS_TYPE_ROUTE, GRPC_RDS, 1, &p2);
    assert_false(same_content(&c1, &p1)); /* the canary-only route */
    assert_true(c1.id != p1.id);
    assert_true(p1.id == p2.id);
    xds_resource_set_free(&c1);
    xds_resource_set_free(&p1);
    xds_resource_set_free(&p2);
    xds_proxy_free(canary);
    xds_proxy_free(plain);
    xds_proxy_free(plain2);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* A DestinationRule with a workloadSelector in a: canary clients of greeter get its
 * policy and subsets, the others the rule without selector (BASE's). */
static const char *DR_SELECTOR = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                                 "metadata: {name: greeter-canary, namespace: a}\n"
                                 "spec:\n  host: greeter\n"
                                 "  workloadSelector: {matchLabels: {app: canary}}\n"
                                 "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"
                                 "  subsets: [{name: v2, labels: {version: v2}}]\n";

/* The same, with a consistent hash: the canary's routes to greeter get a hash policy. */
static const char *DR_SELECTOR_HASH =
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    "metadata: {name: greeter-canary, namespace: a}\n"
    "spec:\n  host: greeter\n"
    "  workloadSelector: {matchLabels: {app: canary}}\n"
    "  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n";

static Envoy__Config__Cluster__V3__Cluster *cluster_of(const xds_resource_set *set, const char *n)
{
    const xds_resource *r = fx_find(set, n);
    return r ? envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->bytes) : NULL;
}

/* workloadSelector rules: labels split the CDS/EDS class only in the rule's namespace, and
 * two sidecars there with different labels get different clusters. */
static void test_dr_selector(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, DR_SELECTOR, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *canary = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.9.0.1", "app=canary");
    xds_proxy *plain = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.9.0.1", "app=plain");
    xds_proxy *plain2 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.9.0.1", "app=plain");
    xds_proxy *b1 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.9.0.1", "app=canary");
    xds_proxy *b2 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.9.0.1", "app=plain");
    xds_resource_set c1, p1, p2, s1, s2;
    gen_checked(g, canary, s, XDS_TYPE_CLUSTER, NULL, 0, &c1);
    gen_checked(g, plain, s, XDS_TYPE_CLUSTER, NULL, 0, &p1);
    gen_checked(g, plain2, s, XDS_TYPE_CLUSTER, NULL, 0, &p2);
    assert_false(same_content(&c1, &p1));
    assert_true(p1.id == p2.id);
    const char *def = "outbound|50051||greeter.a.svc.cluster.local";
    Envoy__Config__Cluster__V3__Cluster *cc = cluster_of(&c1, def), *pc = cluster_of(&p1, def);
    assert_non_null(cc);
    assert_non_null(pc);
    assert_int_equal(cc->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM);
    assert_int_equal(pc->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
    protobuf_c_message_free_unpacked(&cc->base, NULL);
    protobuf_c_message_free_unpacked(&pc->base, NULL);
    assert_non_null(fx_find(&c1, "outbound|50051|v2|greeter.a.svc.cluster.local"));
    assert_null(fx_find(&c1, "outbound|50051|v1|greeter.a.svc.cluster.local"));
    assert_non_null(fx_find(&p1, "outbound|50051|v1|greeter.a.svc.cluster.local"));
    assert_null(fx_find(&p1, "outbound|50051|v2|greeter.a.svc.cluster.local"));
    /* the rule is not exported: b's clients are alike whatever their labels */
    gen_checked(g, b1, s, XDS_TYPE_CLUSTER, NULL, 0, &s1);
    gen_checked(g, b2, s, XDS_TYPE_CLUSTER, NULL, 0, &s2);
    assert_true(s1.id == s2.id);
    xds_resource_set_free(&s1);
    xds_resource_set_free(&s2);
    /* EDS: the v2 subset exists only for the canary */
    const char *eds[] = {"outbound|50051|v2|greeter.a.svc.cluster.local"};
    gen_checked(g, canary, s, XDS_TYPE_ENDPOINT, eds, 1, &s1);
    gen_checked(g, plain, s, XDS_TYPE_ENDPOINT, eds, 1, &s2);
    assert_int_equal(s1.n, 1);
    assert_int_equal(s2.n, 0);
    xds_resource_set_free(&s1);
    xds_resource_set_free(&s2);
    xds_resource_set_free(&c1);
    xds_resource_set_free(&p1);
    xds_resource_set_free(&p2);
    xds_proxy_free(canary);
    xds_proxy_free(plain);
    xds_proxy_free(plain2);
    xds_proxy_free(b1);
    xds_proxy_free(b2);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Sidecar RDS reads the rules of every host it routes to: the cache key names the
 * selector rules the proxy matches, so the canary's hash policy is not served to others. */
static void test_dr_selector_routes(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, DR_SELECTOR_HASH, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *canary = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.9.0.1", "app=canary");
    xds_proxy *plain = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.9.0.1", "app=plain");
    const char *rds[] = {"50051"};
    xds_resource_set c1, p1;
    gen_checked(g, canary, s, XDS_TYPE_ROUTE, rds, 1, &c1);
    gen_checked(g, plain, s, XDS_TYPE_ROUTE, rds, 1, &p1);
    assert_int_equal(c1.n, 1);
    assert_false(same_content(&c1, &p1));
    xds_resource_set_free(&c1);
    xds_resource_set_free(&p1);
    xds_proxy_free(canary);
    xds_proxy_free(plain);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Gateways: the selected Gateways (labels) shape LDS/RDS; pods of one gateway share. */
static void test_gateways(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *g1a = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "gw", "10.8.0.1", "istio=gw-1");
    xds_proxy *g1b = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "gw", "10.8.0.2", "istio=gw-1");
    xds_proxy *g2 = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "gw", "10.8.0.3", "istio=gw-2");
    xds_resource_set a, b, c;
    gen_checked(g, g1a, s, XDS_TYPE_LISTENER, NULL, 0, &a);
    gen_checked(g, g2, s, XDS_TYPE_LISTENER, NULL, 0, &c);
    gen_checked(g, g1b, s, XDS_TYPE_LISTENER, NULL, 0, &b);
    assert_true(a.id == b.id);
    assert_true(a.id != c.id);
    assert_false(same_content(&a, &c)); /* port 80 vs 8080 */
    xds_resource_set_free(&a);
    xds_resource_set_free(&b);
    xds_resource_set_free(&c);
    /* clusters do not depend on the gateway selection: one set for both */
    gen_checked(g, g1a, s, XDS_TYPE_CLUSTER, NULL, 0, &a);
    gen_checked(g, g2, s, XDS_TYPE_CLUSTER, NULL, 0, &c);
    assert_true(a.id == c.id);
    xds_resource_set_free(&a);
    xds_resource_set_free(&c);
    xds_proxy_free(g1a);
    xds_proxy_free(g1b);
    xds_proxy_free(g2);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Sidecars: the IPs shape LDS and CDS (inbound), not RDS or EDS. */
static void test_sidecar_ips(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *workload = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.1", "app=greeter");
    xds_proxy *other = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.7.7", "app=greeter");
    static const char *const types[] = {XDS_TYPE_LISTENER, XDS_TYPE_CLUSTER};
    for (size_t t = 0; t < 2; t++) {
        xds_resource_set w, o;
        gen_checked(g, workload, s, types[t], NULL, 0, &w);
        gen_checked(g, other, s, types[t], NULL, 0, &o);
        assert_true(w.id != o.id);
        assert_false(same_content(&w, &o)); /* inbound port 50051 only for the workload */
        xds_resource_set_free(&w);
        xds_resource_set_free(&o);
    }
    xds_resource_set w, o;
    const char *const rds[] = {"50051"};
    gen_checked(g, workload, s, XDS_TYPE_ROUTE, rds, 1, &w);
    gen_checked(g, other, s, XDS_TYPE_ROUTE, rds, 1, &o);
    assert_true(w.id == o.id);
    xds_resource_set_free(&w);
    xds_resource_set_free(&o);
    xds_proxy_free(workload);
    xds_proxy_free(other);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Replicas: sidecars whose IPs select the same inbound endpoints (greeter-b's two pods)
 * share one class for LDS and CDS, and what the second gets from the memo is what a fresh
 * generator makes for it; a pod of another namespace's greeter (same port, another
 * service) shares the listeners (ports and protocols) but not the clusters. */
static void test_sidecar_replicas_share(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BASE, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *r1 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.2.0.1", "app=greeter");
    xds_proxy *r2 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.2.0.2", "app=greeter");
    xds_proxy *a1 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.1.0.1", "app=greeter");
    static const char *const types[] = {XDS_TYPE_LISTENER, XDS_TYPE_CLUSTER};
    for (size_t t = 0; t < 2; t++) {
        xds_resource_set x1, x2, xa, fresh;
        uint64_t h0, m0, h1, m1;
        gen_checked(g, r1, s, types[t], NULL, 0, &x1);
        xds_gen_memo_stats(g, &h0, &m0);
        gen_checked(g, r2, s, types[t], NULL, 0, &x2);
        xds_gen_memo_stats(g, &h1, &m1);
        assert_true(x1.id == x2.id && h1 == h0 + 1 && m1 == m0); /* answered from the memo */
        xds_gen *g2 = xds_gen_new();
        gen_checked(g2, r2, s, types[t], NULL, 0, &fresh);
        assert_true(same_content(&x2, &fresh));
        xds_gen_free(g2);
        gen_checked(g, a1, s, types[t], NULL, 0, &xa);
        if (t == 0) { /* the same inbound port and protocol: the same listeners */
            assert_true(xa.id == x1.id);
        } else { /* the inbound cluster's metadata names greeter.a */
            assert_true(xa.id != x1.id);
            assert_false(same_content(&xa, &x1));
        }
        xds_resource_set_free(&x1);
        xds_resource_set_free(&x2);
        xds_resource_set_free(&xa);
        xds_resource_set_free(&fresh);
    }
    xds_proxy_free(r1);
    xds_proxy_free(r2);
    xds_proxy_free(a1);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Ids survive a snapshot version whose change leaves the class's set as it was, and
 * change when the content does. */
static void test_ids_across_versions(void **state)
{
    (void)state;
    mesh_snapshot *s1 = fx_snapshot(BASE, NULL);
    mesh_snapshot *s2 = fx_snapshot(BASE, PLAIN_VS, NULL);
    mesh_snapshot v2 = *s2; /* the same content under a newer version */
    v2.version = s1->version + 1;
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.1", "app=plain");
    xds_resource_set l1, l2, r1, r2;
    gen_checked(g, p, s1, XDS_TYPE_LISTENER, GRPC_LDS, 1, &l1);
    gen_checked(g, p, s1, XDS_TYPE_ROUTE, GRPC_RDS, 1, &r1);
    gen_checked(g, p, &v2, XDS_TYPE_LISTENER, GRPC_LDS, 1, &l2);
    gen_checked(g, p, &v2, XDS_TYPE_ROUTE, GRPC_RDS, 1, &r2);
    assert_true(l1.id == l2.id); /* a VirtualService does not touch LDS */
    assert_true(r1.id != r2.id); /* but does change the routes */
    xds_resource_set_free(&l1);
    xds_resource_set_free(&l2);
    xds_resource_set_free(&r1);
    xds_resource_set_free(&r2);
    xds_proxy_free(p);
    xds_gen_free(g);
    mesh_snapshot_release(s1);
    mesh_snapshot_release(s2);
}

/* The rules a full push skips types by. */
static void test_type_kinds(void **state)
{
    (void)state;
    xds_proxy *grpc = fx_proxy(XDS_FLAVOUR_GRPC, "a", "10.9.0.1", NULL);
    xds_proxy *sc = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.9.0.2", NULL);
    xds_proxy *gw = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "gw", "10.9.0.3", NULL);
    const uint32_t vs = 1u << MESH_KIND_VIRTUAL_SERVICE, dr = 1u << MESH_KIND_DESTINATION_RULE;
    const uint32_t svc = 1u << MESH_KIND_SERVICE, se = 1u << MESH_KIND_SERVICE_ENTRY;
    const uint32_t eps = 1u << MESH_KIND_ENDPOINT_SLICE, gwk = 1u << MESH_KIND_GATEWAY;
    const uint32_t ns = 1u << MESH_KIND_NAMESPACE;
    static const char *const all[] = {XDS_TYPE_LISTENER, XDS_TYPE_ROUTE, XDS_TYPE_CLUSTER,
                                      XDS_TYPE_ENDPOINT, XDS_TYPE_SECRET};
    /* a VirtualService edit: gRPC routes, and, because a Sidecar scope imports the
     * services its VirtualServices route to, gRPC listeners, clusters and endpoints; so do
     * Sidecar edits. Gateways have no Sidecar scope. */
    const uint32_t sck = 1u << MESH_KIND_SIDECAR;
    assert_true((xds_type_kinds(grpc, NULL, XDS_TYPE_ROUTE) & vs) != 0);
    for (size_t t = 0; t < 4; t++)
        assert_true((xds_type_kinds(grpc, NULL, all[t]) & (vs | sck)) == (vs | sck));
    assert_true((xds_type_kinds(sc, NULL, XDS_TYPE_CLUSTER) & (vs | sck)) == (vs | sck));
    assert_true((xds_type_kinds(gw, NULL, XDS_TYPE_CLUSTER) & (vs | sck)) == 0);
    /* DestinationRules: clusters, endpoints (subsets), gRPC routes (hash policies) */
    assert_true((xds_type_kinds(grpc, NULL, XDS_TYPE_CLUSTER) & dr) != 0);
    assert_true((xds_type_kinds(grpc, NULL, XDS_TYPE_ENDPOINT) & dr) != 0);
    assert_true((xds_type_kinds(grpc, NULL, XDS_TYPE_ROUTE) & dr) != 0);
    /* with the snapshot known, only a proxy a Sidecar scopes regenerates clusters,
     * endpoints and gRPC listeners for a VirtualService edit (a stream of edits must not
     * rebuild every unscoped sidecar's clusters); a Sidecar edit reaches all of them */
    mesh_snapshot *plain = fx_snapshot(BASE, NULL);
    mesh_snapshot *scoped = fx_snapshot(BASE, SIDECAR_A, NULL);
    for (size_t t = 0; t < 4; t++) {
        if (t == 1) /* gRPC routes are made of VirtualServices */
            continue;
        assert_true((xds_type_kinds(grpc, plain, all[t]) & vs) == 0);
        assert_true((xds_type_kinds(grpc, plain, all[t]) & sck) != 0);
        assert_true((xds_type_kinds(grpc, scoped, all[t]) & vs) != 0);
    }
    assert_true((xds_type_kinds(grpc, plain, XDS_TYPE_ROUTE) & vs) != 0);
    assert_true((xds_type_kinds(sc, plain, XDS_TYPE_CLUSTER) & (vs | sck)) == sck);
    assert_true((xds_type_kinds(sc, scoped, XDS_TYPE_ENDPOINT) & (vs | sck)) == (vs | sck));
    mesh_snapshot_release(plain);
    mesh_snapshot_release(scoped);
    /* Gateways change nothing of a gRPC client or of any flavour's clusters */
    for (size_t t = 0; t < 4; t++)
        assert_true((xds_type_kinds(grpc, NULL, all[t]) & gwk) == 0);
    assert_true((xds_type_kinds(sc, NULL, XDS_TYPE_CLUSTER) & gwk) == 0);
    assert_true((xds_type_kinds(gw, NULL, XDS_TYPE_CLUSTER) & (gwk | vs)) == 0);
    /* services, ServiceEntries and namespaces reach every type of every flavour; Envoy
     * listeners and routes (and SDS) depend on every kind */
    const xds_proxy *ps[] = {grpc, sc, gw};
    for (size_t p = 0; p < 3; p++)
        for (size_t t = 0; t < 5; t++)
            assert_true((xds_type_kinds(ps[p], NULL, all[t]) & (svc | se | ns)) == (svc | se | ns));
    for (size_t t = 0; t < 2; t++) {
        assert_true(xds_type_kinds(sc, NULL, all[t]) == ~0u);
        assert_true(xds_type_kinds(gw, NULL, all[t]) == ~0u);
    }
    /* endpoints reach clusters and endpoints, and sidecar inbound listeners */
    assert_true((xds_type_kinds(grpc, NULL, XDS_TYPE_ENDPOINT) & eps) != 0);
    assert_true((xds_type_kinds(sc, NULL, XDS_TYPE_CLUSTER) & eps) != 0);
    assert_true((xds_type_kinds(sc, NULL, XDS_TYPE_LISTENER) & eps) != 0);
    xds_proxy_free(grpc);
    xds_proxy_free(sc);
    xds_proxy_free(gw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_namespaces),
        cmocka_unit_test(test_source_labels),
        cmocka_unit_test(test_dr_selector),
        cmocka_unit_test(test_dr_selector_routes),
        cmocka_unit_test(test_gateways),
        cmocka_unit_test(test_sidecar_ips),
        cmocka_unit_test(test_ids_across_versions),
        cmocka_unit_test(test_type_kinds),
        cmocka_unit_test(test_sidecar_replicas_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
