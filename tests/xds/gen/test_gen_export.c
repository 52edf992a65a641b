/* test_gen_export: mesh config defaultServiceExportTo, defaultVirtualServiceExportTo and
 * defaultDestinationRuleExportTo, as istiod applies them: to objects without exportTo of
 * their own, never to those with one; "." meaning the object's own namespace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gen_fixture.h"

/* echo in a and b; b's echo with exportTo "*" of its own; a DestinationRule in b (no
 * exportTo) and a VirtualService in b (no exportTo) for b's echo. */
static const char *MESH =
    "apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: a}\n"
    "spec:\n  clusterIP: 10.96.1.1\n  ports: [{name: http, port: 80}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: b}\n"
    "spec:\n  clusterIP: 10.96.2.2\n  ports: [{name: http, port: 80}]\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: open, namespace: b,\n"
    "  annotations: {networking.istio.io/exportTo: \"*\"}}\n"
    "spec:\n  clusterIP: 10.96.2.3\n  ports: [{name: http, port: 81}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    "metadata: {name: echo, namespace: b}\n"
    "spec:\n  host: echo.b.svc.cluster.local\n  subsets: [{name: v1, labels: {version: v1}}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: echo, namespace: b}\n"
    "spec:\n  hosts: [echo.b.svc.cluster.local]\n  http:\n"
    "  - timeout: 7s\n    route: [{destination: {host: echo.b.svc.cluster.local}}]\n";

static bool has(const xds_resource_set *set, const char *name)
{
    return fx_find(set, name) != NULL;
}

static void test_defaults(void **state)
{
    (void)state;
    char *dot[] = {"."};
    mesh_export_defaults d = {.svc = dot, .nsvc = 1, .vs = dot, .nvs = 1, .dr = dot, .ndr = 1};
    mesh_snapshot *open = fx_snapshot(MESH, NULL);
    mesh_snapshot *priv = fx_snapshot_export(&d, MESH, NULL);
    xds_proxy *pa = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.1", NULL);
    xds_proxy *pb = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "b", "10.2.0.1", NULL);
    const char *b_echo = "outbound|80||echo.b.svc.cluster.local";
    const char *b_open = "outbound|81||open.b.svc.cluster.local";
    const char *a_echo = "outbound|80||echo.a.svc.cluster.local";

    /* istiod's defaults: everything everywhere */
    xds_gen *g = xds_gen_new();
    xds_resource_set set = {0};
    fx_gen(g, pa, open, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_true(has(&set, b_echo) && has(&set, b_open) && has(&set, a_echo));
    xds_resource_set_free(&set);
    assert_non_null(
        mesh_snapshot_destination_rule(open, "echo.b.svc.cluster.local", "a", NULL, NULL));
    xds_gen_free(g);

    /* defaults ".": b's echo (no exportTo) is b's alone; open keeps its own "*" */
    g = xds_gen_new();
    fx_gen(g, pa, priv, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_false(has(&set, b_echo));
    assert_true(has(&set, b_open) && has(&set, a_echo));
    xds_resource_set_free(&set);
    fx_gen(g, pb, priv, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_true(has(&set, b_echo) && has(&set, a_echo) == false);
    xds_resource_set_free(&set);
    /* the DestinationRule: seen in b only */
    assert_null(mesh_snapshot_destination_rule(priv, "echo.b.svc.cluster.local", "a", NULL, NULL));
    assert_non_null(
        mesh_snapshot_destination_rule(priv, "echo.b.svc.cluster.local", "b", NULL, NULL));
    /* the VirtualService: b's proxies get its 7s timeout on the route for echo.b, not a's
     * (a has no route to b's echo at all: the service is not exported to it) */
    fx_gen(g, pb, priv, XDS_TYPE_ROUTE, (const char *const[]){"80"}, 1, &set);
    const xds_resource *r80 = fx_find(&set, "80");
    assert_non_null(r80);
    assert_non_null(memmem(r80->bytes, r80->len, "echo.b.svc.cluster.local", 24));
    xds_resource_set_free(&set);
    xds_gen_free(g);

    xds_proxy_free(pa);
    xds_proxy_free(pb);
    mesh_snapshot_release(open);
    mesh_snapshot_release(priv);
}

/* Only the VirtualService default: the service stays visible, its route loses b's rule. */
static void test_vs_default_alone(void **state)
{
    (void)state;
    char *dot[] = {"."};
    mesh_export_defaults d = {.vs = dot, .nvs = 1};
    mesh_snapshot *s = fx_snapshot_export(&d, MESH, NULL);
    mesh_snapshot *o = fx_snapshot(MESH, NULL);
    xds_proxy *pa = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "a", "10.1.0.1", NULL);
    /* one generator per snapshot: fixture snapshots all have version 1, the cache's key */
    xds_gen *g = xds_gen_new(), *g2 = xds_gen_new();
    xds_resource_set with = {0}, without = {0};
    fx_gen(g, pa, o, XDS_TYPE_ROUTE, (const char *const[]){"80"}, 1, &with);
    fx_gen(g2, pa, s, XDS_TYPE_ROUTE, (const char *const[]){"80"}, 1, &without);
    const xds_resource *a = fx_find(&with, "80"), *b = fx_find(&without, "80");
    assert_non_null(a);
    assert_non_null(b);
    /* istiod's default: the 7 s timeout (Duration seconds 7) is in a's route; not under "." */
    assert_true(a->hash != b->hash);
    xds_resource_set_free(&with);
    xds_resource_set_free(&without);
    xds_gen_free(g);
    xds_gen_free(g2);
    xds_proxy_free(pa);
    mesh_snapshot_release(s);
    mesh_snapshot_release(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_vs_default_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
