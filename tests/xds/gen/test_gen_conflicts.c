/* test_gen_conflicts: istiod's pilot_conflict_* gauges, counted where the sidecar generator
 * resolves the conflicts (xds/gen/sidecar.c, gen.c):
 * - outbound: two TCP services on one VIP and port make one listener; the second is a
 *   pilot_conflict_outbound_listener_tcp_over_current_tcp, once per listener name however
 *   many proxies meet it; HTTP services sharing 0.0.0.0_<port> are not a conflict; on a
 *   Sidecar egress bind an HTTP and a TCP service on one port are one;
 * - inbound: two services selecting one pod port with different protocols are a
 *   pilot_conflict_inbound_listener per proxy (replicas sharing a memoized set included);
 *   the same protocol is not;
 * - a full push (xds_gen_conflicts_reset) starts the count afresh; generations from older
 *   snapshots no longer count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gen_fixture.h"
#include "pilot/obs/metrics.h"
#include "xds/gen/gen_internal.h"

#define IN_GAUGE "pilot_conflict_inbound_listener"
#define OUT_GAUGE "pilot_conflict_outbound_listener_tcp_over_current_tcp"

static double gauge(const char *name)
{
    return metric_value(metric_gauge(name, "", NULL), NULL);
}

static void lds(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *want_listener)
{
    xds_resource_set set;
    fx_gen(g, p, s, XDS_TYPE_LISTENER, NULL, 0, &set);
    if (want_listener)
        assert_non_null(fx_find(&set, want_listener));
    xds_resource_set_free(&set);
}

/* Two ServiceEntries on one address and TCP port; two HTTP services on port 80. */
#define DB(n)                                                                                      \
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"                                     \
    "metadata: {name: db" n ", namespace: a}\n"                                                    \
    "spec:\n  hosts: [db" n ".example.com]\n  addresses: [240.0.0.10]\n  resolution: STATIC\n"     \
    "  ports: [{number: 5432, name: tcp-db, protocol: TCP}]\n"                                     \
    "  endpoints: [{address: 10.9.0." n "}]\n---\n"
#define WEB_API                                                                                    \
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\n"                         \
    "spec:\n  clusterIP: 10.96.3.1\n  ports: [{name: http, port: 80}]\n"                           \
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: a}\n"                    \
    "spec:\n  clusterIP: 10.96.3.2\n  ports: [{name: http, port: 80}]\n"
static const char *OUTBOUND = DB("1") DB("2") WEB_API;
static const char *OUTBOUND_ONE = DB("1") WEB_API;

static void test_outbound_tcp_over_tcp(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(OUTBOUND, NULL);
    xds_gen *g = xds_gen_new();
    xds_gen_conflicts_reset(g, s->version);
    assert_true(gauge(OUT_GAUGE) == 0 && gauge(IN_GAUGE) == 0);
    xds_proxy *p1 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.1", NULL);
    xds_proxy *p2 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.1.0.2", NULL);
    lds(g, p1, s, "240.0.0.10_5432");
    assert_true(gauge(OUT_GAUGE) == 1); /* db2 over db1; 0.0.0.0_80 is shared, no conflict */
    lds(g, p2, s, "240.0.0.10_5432");   /* another class, the same listener name */
    assert_true(gauge(OUT_GAUGE) == 1);
    assert_true(gauge(IN_GAUGE) == 0);

    /* a full push of a newer snapshot: the count starts again, and a generation still on
     * the old one (a proxy class not memoized yet) no longer counts */
    xds_gen_conflicts_reset(g, s->version + 1);
    assert_true(gauge(OUT_GAUGE) == 0);
    xds_proxy *p3 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "c", "10.1.0.3", NULL);
    lds(g, p3, s, "240.0.0.10_5432");
    assert_true(gauge(OUT_GAUGE) == 0);
    xds_gen_conflicts_reset(g, s->version); /* older: nothing changes */
    lds(g, p3, s, "240.0.0.10_5432");
    assert_true(gauge(OUT_GAUGE) == 0);
    xds_proxy_free(p3);

    /* without the second entry: no conflict */
    mesh_snapshot *one = fx_snapshot(OUTBOUND_ONE, NULL);
    xds_gen *g1 = xds_gen_new();
    xds_gen_conflicts_reset(g1, one->version);
    lds(g1, p1, one, "240.0.0.10_5432");
    assert_true(gauge(OUT_GAUGE) == 0);
    xds_gen_free(g1);
    mesh_snapshot_release(one);
    xds_proxy_free(p1);
    xds_proxy_free(p2);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* A Sidecar whose egress listener binds 127.0.0.5: HTTP web and TCP db on port 7000 both
 * want 127.0.0.5_7000 (istiod: no HTTP ALPN match off the wildcard, so the chains clash). */
static const char *BIND =
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.4.1\n  ports: [{name: http, port: 7000}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.4.2\n  ports: [{name: tcp, port: 7000}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s, namespace: a}\n"
    "spec:\n  egress: [{bind: 127.0.0.5, hosts: [\"./*\"]}]\n";

static void test_outbound_bind(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(BIND, NULL);
    xds_gen *g = xds_gen_new();
    xds_gen_conflicts_reset(g, s->version);
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.1", NULL);
    lds(g, p, s, "127.0.0.5_7000");
    assert_true(gauge(OUT_GAUGE) == 1);
    xds_proxy_free(p);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Pods 10.3.0.1 and 10.3.0.2 behind two Services on target port 8080: http-web (HTTP) and
 * tcp-raw (TCP); pod 10.3.0.9 behind two HTTP Services on 9090. */
static const char *INBOUND =
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.5.1\n  ports: [{name: http-web, port: 80, targetPort: 8080}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: raw, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.5.2\n  ports: [{name: tcp-raw, port: 81, targetPort: 8080}]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: web, namespace: a, labels: {kubernetes.io/service-name: web}}\n"
    "addressType: IPv4\nports: [{name: http-web, port: 8080, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.3.0.1]}, {addresses: [10.3.0.2]}]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: raw, namespace: a, labels: {kubernetes.io/service-name: raw}}\n"
    "addressType: IPv4\nports: [{name: tcp-raw, port: 8080, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.3.0.1]}, {addresses: [10.3.0.2]}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: h1, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.5.3\n  ports: [{name: http, port: 90, targetPort: 9090}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: h2, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.5.4\n  ports: [{name: http, port: 91, targetPort: 9090}]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: h1, namespace: a, labels: {kubernetes.io/service-name: h1}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9090, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.3.0.9]}]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: h2, namespace: a, labels: {kubernetes.io/service-name: h2}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9090, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.3.0.9]}]\n";

static void test_inbound(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(INBOUND, NULL);
    xds_gen *g = xds_gen_new();
    xds_gen_conflicts_reset(g, s->version);
    xds_proxy *same = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.3.0.9", NULL);
    lds(g, same, s, "virtualInbound");
    assert_true(gauge(IN_GAUGE) == 0); /* two HTTP services on 9090: no conflict */
    xds_proxy *r1 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.3.0.1", NULL);
    xds_proxy *r2 = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.3.0.2", NULL);
    uint64_t h0, m0, h1, m1;
    lds(g, r1, s, "virtualInbound");
    assert_true(gauge(IN_GAUGE) == 1);
    xds_gen_memo_stats(g, &h0, &m0);
    lds(g, r2, s, "virtualInbound");
    xds_gen_memo_stats(g, &h1, &m1);
    assert_true(h1 == h0 + 1);         /* the replica's set came from the memo, */
    assert_true(gauge(IN_GAUGE) == 2); /* and it is counted all the same */
    lds(g, r1, s, NULL);               /* the same proxy again: once */
    assert_true(gauge(IN_GAUGE) == 2);
    assert_true(gauge(OUT_GAUGE) == 0);
    xds_proxy_free(same);
    xds_proxy_free(r1);
    xds_proxy_free(r2);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbound_tcp_over_tcp),
        cmocka_unit_test(test_outbound_bind),
        cmocka_unit_test(test_inbound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
