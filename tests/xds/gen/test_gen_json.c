/* test_gen_json: xds_resource_to_json shapes (proto field names, enums by name, 64-bit as
 * strings, Any unpacked with "@type", Duration "1.5s", wrappers bare) on generated
 * resources and on hand-built messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

static const char *FIXTURE =
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
    "spec: {clusterIP: 10.96.1.1, selector: {app: web}, ports: [{name: http, port: 80, targetPort: "
    "8080}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, "
    "namespace: default}\n"
    "spec: {host: web, trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, "
    "minimumRingSize: 2048}}}}\n";

static cJSON *path(cJSON *o, const char *p)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", p);
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
        char *end;
        long idx = strtol(k, &end, 10);
        o = (*end == '\0' && cJSON_IsArray(o)) ? cJSON_GetArrayItem(o, (int)idx)
                                               : cJSON_GetObjectItemCaseSensitive(o, k);
    }
    return o;
}

static const char *str(cJSON *o, const char *p)
{
    cJSON *v = path(o, p);
    if (!cJSON_IsString(v))
        fail_msg("%s is not a string", p);
    return v->valuestring;
}

static void test_cluster_json(void **state)
{
    (void)state;
    mesh_snapshot *s = fx_snapshot(FIXTURE, NULL);
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.1.1", NULL);
    const char *names[] = {"outbound|80||web.default.svc.cluster.local"};
    xds_resource_set set;
    fx_gen(g, p, s, XDS_TYPE_CLUSTER, names, 1, &set);
    assert_int_equal(set.n, 1);
    cJSON *j = xds_resource_to_json(set.items[0]);
    assert_non_null(j);
    assert_string_equal(j->child->string, "@type"); /* leads, like a ConfigDump Any */
    assert_string_equal(str(j, "@type"), XDS_TYPE_CLUSTER);
    assert_string_equal(str(j, "name"), "outbound|80||web.default.svc.cluster.local");
    assert_string_equal(str(j, "type"), "EDS");
    assert_string_equal(str(j, "lb_policy"), "RING_HASH");
    assert_string_equal(str(j, "connect_timeout"), "10s");
    assert_string_equal(str(j, "eds_cluster_config.service_name"),
                        "outbound|80||web.default.svc.cluster.local");
    assert_non_null(path(j, "eds_cluster_config.eds_config.ads"));
    assert_string_equal(str(j, "eds_cluster_config.eds_config.resource_api_version"), "V3");
    /* UInt64Value: a bare value, as a string (proto3 JSON for 64-bit integers) */
    assert_string_equal(str(j, "ring_hash_lb_config.minimum_ring_size"), "2048");
    /* UInt32Value: a bare number */
    cJSON *mc = path(j, "circuit_breakers.thresholds.0.max_connections");
    assert_true(cJSON_IsNumber(mc));
    assert_true(mc->valuedouble == 4294967295.0);
    assert_true(cJSON_IsTrue(path(j, "circuit_breakers.thresholds.0.track_remaining")));
    /* proto3 defaults are omitted */
    assert_null(path(j, "alt_stat_name"));
    assert_null(path(j, "per_connection_buffer_limit_bytes"));
    cJSON_Delete(j);
    xds_resource_set_free(&set);

    /* a listener: Any unpacked with its @type, repeated filters as arrays */
    const char *ln[] = {"0.0.0.0_80"};
    fx_gen(g, p, s, XDS_TYPE_LISTENER, ln, 1, &set);
    assert_int_equal(set.n, 1);
    j = xds_resource_to_json(set.items[0]);
    assert_non_null(j);
    assert_true(cJSON_IsFalse(path(j, "bind_to_port")));
    assert_int_equal((int)path(j, "address.socket_address.port_value")->valuedouble, 80);
    cJSON *hcm = path(j, "filter_chains.0.filters.0.typed_config");
    assert_string_equal(
        str(hcm, "@type"),
        "type.googleapis.com/"
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
    assert_string_equal(str(hcm, "rds.route_config_name"), "80");
    assert_true(cJSON_IsArray(path(hcm, "http_filters")));
    assert_string_equal(str(hcm, "http_filters.4.name"), "envoy.filters.http.router");
    assert_string_equal(str(hcm, "http_filters.4.typed_config.@type"),
                        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
    /* Istio's filters are TypedStructs, shown decoded */
    assert_string_equal(str(hcm, "http_filters.0.name"), "istio.metadata_exchange");
    assert_string_equal(str(hcm, "http_filters.0.typed_config.type_url"),
                        "type.googleapis.com/io.istio.http.peer_metadata.Config");
    assert_true(cJSON_IsArray(path(hcm, "http_filters.0.typed_config.value.upstream_discovery")));
    cJSON_Delete(j);
    xds_resource_set_free(&set);

    /* map fields (typed_per_filter_config) are objects keyed by the map key */
    const char *rn[] = {"80"};
    fx_gen(g, p, s, XDS_TYPE_ROUTE, rn, 1, &set);
    assert_int_equal(set.n, 1);
    j = xds_resource_to_json(set.items[0]);
    assert_non_null(j);
    cJSON *hp = path(j, "virtual_hosts.0.routes.0.route.hash_policy.0.header.header_name");
    assert_non_null(hp);
    assert_string_equal(hp->valuestring, "x-user");
    cJSON_Delete(j);
    xds_resource_set_free(&set);

    xds_proxy_free(p);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* Durations with fractions, int64 fields, bytes and an unknown Any. */
static void test_scalars(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    c.name = "x";
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = 1;
    d.nanos = 500000000;
    c.connect_timeout = &d;
    Envoy__Config__Cluster__V3__OutlierDetection od =
        ENVOY__CONFIG__CLUSTER__V3__OUTLIER_DETECTION__INIT;
    Google__Protobuf__Duration d2 = GOOGLE__PROTOBUF__DURATION__INIT;
    d2.nanos = 1000000;
    od.interval = &d2;
    c.outlier_detection = &od;
    Envoy__Config__Core__V3__TransportSocket ts = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    uint8_t raw[] = {0xde, 0xad, 0xbe};
    any.type_url = "type.googleapis.com/unknown.Thing";
    any.value.data = raw;
    any.value.len = 3;
    ts.name = "t";
    ts.config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts.typed_config = &any;
    c.transport_socket = &ts;
    Envoy__Config__Cluster__V3__Cluster__CommonLbConfig cl =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__INIT;
    c.common_lb_config = &cl;

    xds_resource *r = xds_resource_new(XDS_TYPE_CLUSTER, "x", &c);
    assert_non_null(r);
    cJSON *j = xds_resource_to_json(r);
    assert_non_null(j);
    assert_string_equal(str(j, "connect_timeout"), "1.5s");
    assert_string_equal(str(j, "outlier_detection.interval"), "0.001s");
    assert_string_equal(str(j, "transport_socket.typed_config.@type"),
                        "type.googleapis.com/unknown.Thing");
    assert_string_equal(str(j, "transport_socket.typed_config.value"), "3q2+");
    assert_true(cJSON_IsObject(path(j, "common_lb_config")));
    /* an enum at its default is omitted (proto3) */
    assert_null(path(j, "lb_policy"));
    cJSON_Delete(j);
    xds_resource_release(r);

    /* garbage bytes do not crash: NULL */
    xds_resource bad = {.name = "bad",
                        .type_url = XDS_TYPE_CLUSTER,
                        .bytes = (uint8_t *)"\xff\xff\xff\xff",
                        .len = 4};
    assert_null(xds_resource_to_json(&bad));
    assert_null(xds_resource_to_json(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_json),
        cmocka_unit_test(test_scalars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
