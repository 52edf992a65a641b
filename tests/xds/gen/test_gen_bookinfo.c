/* test_gen_bookinfo: acceptance on Istio's own bookinfo sample through the ingress
 * gateway (ISTIO-FACTS.md, "Bookinfo through the ingress gateway"). Needs
 * $PILOT_SHARED/istio; exits 77 (skipped) without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

static char bookinfo[1024], gateway_yaml[1024];

static void test_bookinfo_ingress(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot_files(bookinfo, gateway_yaml, NULL);
    assert_non_null(s);
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.1",
                            "app=istio-ingressgateway,istio=ingressgateway");
    xds_resource_set lds, rds, cds;
    fx_gen(g, p, s, XDS_TYPE_LISTENER, NULL, 0, &lds);
    assert_int_equal(lds.n, 1);
    assert_string_equal(lds.items[0]->name, "0.0.0.0_8080");
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(NULL, lds.items[0]->len, lds.items[0]->bytes);
    assert_int_equal(l->address->socket_address->port_value, 8080);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
        fx_unpack_any(
            l->filter_chains[0]->filters[0]->typed_config,
            &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    assert_non_null(h);
    assert_string_equal(h->rds->route_config_name, "http.8080");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    const char *rn[] = {"http.8080"};
    fx_gen(g, p, s, XDS_TYPE_ROUTE, rn, 1, &rds);
    assert_int_equal(rds.n, 1);
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        envoy__config__route__v3__route_configuration__unpack(NULL, rds.items[0]->len,
                                                              rds.items[0]->bytes);
    assert_int_equal(rc->n_virtual_hosts, 1);
    const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[0];
    assert_string_equal(vh->name, "*:8080");
    assert_int_equal(vh->n_domains, 1);
    assert_string_equal(vh->domains[0], "*");
    static const struct {
        bool exact;
        const char *path;
    } want[] = {
        {true, "/productpage"}, {false, "/static"},          {true, "/login"},
        {true, "/logout"},      {false, "/api/v1/products"},
    };
    assert_int_equal(vh->n_routes, 5);
    for (size_t i = 0; i < 5; i++) {
        const Envoy__Config__Route__V3__Route *r = vh->routes[i];
        if (want[i].exact) {
            assert_int_equal(r->match->path_specifier_case,
                             ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH);
            assert_string_equal(r->match->path, want[i].path);
        } else {
            assert_int_equal(r->match->path_specifier_case,
                             ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX);
            assert_string_equal(r->match->prefix, want[i].path);
        }
        assert_string_equal(r->route->cluster,
                            "outbound|9080||productpage.default.svc.cluster.local");
    }
    protobuf_c_message_free_unpacked(&rc->base, NULL);

    /* every cluster a route names exists in CDS */
    fx_gen(g, p, s, XDS_TYPE_CLUSTER, NULL, 0, &cds);
    assert_non_null(fx_find(&cds, "outbound|9080||productpage.default.svc.cluster.local"));
    assert_non_null(fx_find(&cds, "outbound|9080||reviews.default.svc.cluster.local"));
    xds_resource_set_free(&lds);
    xds_resource_set_free(&rds);
    xds_resource_set_free(&cds);
    xds_proxy_free(p);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

int main(void)
{
    const char *shared = getenv("PILOT_SHARED");
    snprintf(bookinfo, sizeof bookinfo, "%s/istio/samples/bookinfo/platform/kube/bookinfo.yaml",
             shared ? shared : "");
    snprintf(gateway_yaml, sizeof gateway_yaml,
             "%s/istio/samples/bookinfo/networking/bookinfo-gateway.yaml", shared ? shared : "");
    if (!shared || access(bookinfo, R_OK) != 0 || access(gateway_yaml, R_OK) != 0) {
        printf("SKIP: Istio's bookinfo sample not found under $PILOT_SHARED/istio\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bookinfo_ingress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
