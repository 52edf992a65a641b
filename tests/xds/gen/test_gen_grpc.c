/* test_gen_grpc: resources for proxyless gRPC clients, decoded back with protobuf-c and
 * checked against what gRPC C core 1.51 accepts (ISTIO-FACTS.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "xds/gen/gen_internal.h"

static const char *FIXTURE =
    "apiVersion: v1\nkind: Service\nmetadata: {name: greeter, namespace: grpc}\n"
    "spec:\n  clusterIP: 10.96.5.5\n  selector: {app: greeter}\n"
    "  ports: [{name: grpc, port: 50051, targetPort: 50051}]\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: greeter-v1, namespace: grpc, labels: {app: "
    "greeter, version: v1}}\n"
    "spec: {serviceAccountName: greeter}\nstatus: {podIP: 127.0.10.1, podIPs: [{ip: 127.0.10.1}]}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: greeter-v2, namespace: grpc, labels: {app: "
    "greeter, version: v2}}\n"
    "spec: {serviceAccountName: greeter}\nstatus: {podIP: 127.0.10.2, podIPs: [{ip: 127.0.10.2}]}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: greeter-v2b, namespace: grpc, labels: {app: "
    "greeter, version: v2}}\n"
    "spec: {serviceAccountName: greeter}\nstatus: {podIP: 127.0.10.3, podIPs: [{ip: 127.0.10.3}]}\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: greeter-1, namespace: grpc, labels: {kubernetes.io/service-name: greeter}}\n"
    "addressType: IPv4\nports: [{name: grpc, port: 50051, protocol: TCP}]\n"
    "endpoints:\n"
    "- {addresses: [127.0.10.1], zone: zone-a, targetRef: {kind: Pod, name: greeter-v1, namespace: "
    "grpc}}\n"
    "- {addresses: [127.0.10.2], zone: zone-b, targetRef: {kind: Pod, name: greeter-v2, namespace: "
    "grpc}}\n"
    "- {addresses: [127.0.10.3], conditions: {ready: false}, zone: zone-b, targetRef: {kind: Pod, "
    "name: greeter-v2b, namespace: grpc}}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: greeter, "
    "namespace: grpc}\n"
    "spec:\n  host: greeter\n  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n"
    "  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: greeter, "
    "namespace: grpc}\n"
    "spec:\n  hosts: [greeter]\n  http:\n"
    "  - match: [{headers: {x-canary: {exact: \"yes\"}}}, {headers: {x-pfx: {prefix: ab}, x-re: "
    "{regex: \"a.*\"}}}]\n"
    "    route: [{destination: {host: greeter, subset: v2}}]\n"
    "    fault: {abort: {percentage: {value: 50}, grpcStatus: UNAVAILABLE}}\n"
    "    retries: {attempts: 3, retryOn: unavailable}\n"
    "    timeout: 2s\n"
    "  - match: [{uri: {prefix: /helloworld.Greeter/}}]\n"
    "    retries: {attempts: 0}\n"
    "    route:\n"
    "    - {destination: {host: greeter, subset: v1}, weight: 80}\n"
    "    - {destination: {host: greeter, subset: v2}, weight: 20}\n"
    "  - route: [{destination: {host: greeter}}]\n";

static mesh_snapshot *snap;
static xds_gen *gen;
static xds_proxy *client;

static int setup(void **state)
{
    (void)state;
    snap = fx_snapshot(FIXTURE, NULL);
    gen = xds_gen_new();
    client = fx_proxy(XDS_FLAVOUR_GRPC, "grpc", "127.0.0.9", "app=client");
    return snap && gen && client ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xds_proxy_free(client);
    xds_gen_free(gen);
    mesh_snapshot_release(snap);
    return 0;
}

#define CL_NAME "outbound|50051||greeter.grpc.svc.cluster.local"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;

static void test_lds_api_listener(void **state)
{
    (void)state;
    const char *names[] = {"greeter:50051", "greeter.grpc:50051", "nope:1", "greeter:1",
                           "greeter.grpc.svc.cluster.local:50051"};
    xds_resource_set set;
    fx_gen(gen, client, snap, XDS_TYPE_LISTENER, names, 5, &set);
    assert_int_equal(set.n, 3); /* unknown service and unknown port are absent */
    for (size_t i = 0; i < set.n; i++) {
        Envoy__Config__Listener__V3__Listener *l = envoy__config__listener__v3__listener__unpack(
            NULL, set.items[i]->len, set.items[i]->bytes);
        assert_non_null(l);
        assert_string_equal(l->name, set.items[i]->name);
        assert_non_null(l->api_listener);
        HCM *h = fx_unpack_any(
            l->api_listener->api_listener,
            &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
        assert_non_null(h);
        assert_int_equal(
            h->route_specifier_case,
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS);
        assert_string_equal(h->rds->route_config_name, CL_NAME);
        assert_int_equal(h->rds->config_source->config_source_specifier_case,
                         ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS);
        assert_int_equal(h->n_http_filters, 2);
        assert_string_equal(h->http_filters[0]->name, "envoy.filters.http.fault");
        assert_string_equal(h->http_filters[1]->name, "envoy.filters.http.router");
        protobuf_c_message_free_unpacked(&h->base, NULL);
        protobuf_c_message_free_unpacked(&l->base, NULL);
    }
    xds_resource_set_free(&set);

    /* no names: gRPC never gets wildcard listeners */
    assert_false(xds_type_is_wildcard(client, XDS_TYPE_LISTENER));
    assert_false(xds_type_is_wildcard(client, XDS_TYPE_CLUSTER));
    fx_gen(gen, client, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_int_equal(set.n, 0);
    xds_resource_set_free(&set);

    /* the server-side listener */
    const char *in[] = {"xds.istio.io/grpc/lds/inbound/127.0.10.1:50051"};
    fx_gen(gen, client, snap, XDS_TYPE_LISTENER, in, 1, &set);
    assert_int_equal(set.n, 1);
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(NULL, set.items[0]->len, set.items[0]->bytes);
    assert_non_null(l);
    assert_string_equal(l->address->socket_address->address, "127.0.10.1");
    assert_int_equal(l->address->socket_address->port_value, 50051);
    assert_int_equal(l->n_filter_chains, 1);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

/* Every rule from "What gRPC's own xDS clients accept" that applies to a route config. */
static void check_grpc_route_config(const Envoy__Config__Route__V3__RouteConfiguration *rc)
{
    assert_true(rc->n_virtual_hosts > 0);
    for (size_t v = 0; v < rc->n_virtual_hosts; v++) {
        const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[v];
        assert_true(vh->n_domains > 0);
        assert_true(vh->n_routes > 0);
        for (size_t r = 0; r < vh->n_routes; r++) {
            const Envoy__Config__Route__V3__Route *rt = vh->routes[r];
            assert_non_null(rt->match);
            assert_int_not_equal(rt->match->path_specifier_case,
                                 ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER__NOT_SET);
            for (size_t h = 0; h < rt->match->n_headers; h++)
                assert_int_not_equal(
                    rt->match->headers[h]->header_match_specifier_case,
                    ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH);
            assert_int_equal(rt->action_case, ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE);
            const Envoy__Config__Route__V3__RouteAction *ra = rt->route;
            if (ra->retry_policy) {
                assert_non_null(ra->retry_policy->num_retries);
                assert_true(ra->retry_policy->num_retries->value > 0);
            }
            if (ra->cluster_specifier_case ==
                ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
                uint32_t sum = 0;
                for (size_t k = 0; k < ra->weighted_clusters->n_clusters; k++) {
                    assert_non_null(ra->weighted_clusters->clusters[k]->weight);
                    assert_true(ra->weighted_clusters->clusters[k]->weight->value > 0);
                    sum += ra->weighted_clusters->clusters[k]->weight->value;
                }
                uint32_t total = ra->weighted_clusters->total_weight
                                     ? ra->weighted_clusters->total_weight->value
                                     : 100;
                assert_int_equal(sum, total);
            } else {
                assert_int_equal(ra->cluster_specifier_case,
                                 ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER);
            }
        }
    }
}

static void test_rds_routes(void **state)
{
    (void)state;
    const char *names[] = {CL_NAME, "outbound|9||nope.grpc.svc.cluster.local"};
    xds_resource_set set;
    fx_gen(gen, client, snap, XDS_TYPE_ROUTE, names, 2, &set);
    assert_int_equal(set.n, 1);
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        envoy__config__route__v3__route_configuration__unpack(NULL, set.items[0]->len,
                                                              set.items[0]->bytes);
    assert_non_null(rc);
    assert_string_equal(rc->name, CL_NAME);
    check_grpc_route_config(rc);
    assert_int_equal(rc->n_virtual_hosts, 1);
    const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[0];
    const char *want_domains[] = {"greeter", "greeter:50051", "greeter.grpc:50051",
                                  "greeter.grpc.svc.cluster.local",
                                  "greeter.grpc.svc.cluster.local:50051"};
    for (size_t i = 0; i < 5; i++) {
        bool found = false;
        for (size_t d = 0; d < vh->n_domains; d++)
            found |= strcmp(vh->domains[d], want_domains[i]) == 0;
        assert_true(found);
    }
    /* route 1 has two matches -> two routes; then the weighted route; then the catch-all */
    assert_int_equal(vh->n_routes, 4);
    const Envoy__Config__Route__V3__Route *r0 = vh->routes[0], *r1 = vh->routes[1];
    assert_int_equal(r0->match->n_headers, 1);
    assert_string_equal(r0->match->headers[0]->name, "x-canary");
    assert_int_equal(r0->match->headers[0]->header_match_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH);
    assert_string_equal(r0->match->headers[0]->exact_match, "yes");
    assert_int_equal(r1->match->n_headers, 2);
    bool saw_prefix = false, saw_regex = false;
    for (size_t h = 0; h < 2; h++) {
        if (r1->match->headers[h]->header_match_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH) {
            saw_prefix = true;
            assert_string_equal(r1->match->headers[h]->prefix_match, "ab");
        }
        if (r1->match->headers[h]->header_match_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH) {
            saw_regex = true;
            assert_string_equal(r1->match->headers[h]->safe_regex_match->regex, "a.*");
        }
    }
    assert_true(saw_prefix && saw_regex);
    assert_string_equal(r0->route->cluster, "outbound|50051|v2|greeter.grpc.svc.cluster.local");
    assert_int_equal(r0->route->retry_policy->num_retries->value, 3);
    assert_non_null(r0->route->max_stream_duration);
    assert_int_equal(r0->route->max_stream_duration->max_stream_duration->seconds, 2);
    /* fault per route */
    assert_int_equal(r0->n_typed_per_filter_config, 1);
    assert_string_equal(r0->typed_per_filter_config[0]->key, "envoy.filters.http.fault");
    Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *f =
        fx_unpack_any(r0->typed_per_filter_config[0]->value,
                      &envoy__extensions__filters__http__fault__v3__httpfault__descriptor);
    assert_non_null(f);
    assert_non_null(f->abort);
    assert_int_equal(
        f->abort->error_type_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_GRPC_STATUS);
    assert_int_equal(f->abort->grpc_status, 14);
    assert_int_equal(f->abort->percentage->numerator, 500000);
    assert_int_equal(f->abort->percentage->denominator,
                     ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION);
    protobuf_c_message_free_unpacked(&f->base, NULL);
    /* weighted route: attempts 0 means no retry policy at all (never num_retries 0) */
    const Envoy__Config__Route__V3__Route *r2 = vh->routes[2];
    assert_string_equal(r2->match->prefix, "/helloworld.Greeter/");
    assert_null(r2->route->retry_policy);
    assert_int_equal(r2->route->cluster_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
    assert_int_equal(r2->route->weighted_clusters->n_clusters, 2);
    assert_string_equal(r2->route->weighted_clusters->clusters[0]->name,
                        "outbound|50051|v1|greeter.grpc.svc.cluster.local");
    assert_int_equal(r2->route->weighted_clusters->clusters[0]->weight->value, 80);
    assert_int_equal(r2->route->weighted_clusters->total_weight->value, 100);
    assert_string_equal(vh->routes[3]->route->cluster, CL_NAME);
    protobuf_c_message_free_unpacked(&rc->base, NULL);
    xds_resource_set_free(&set);
}

static void check_grpc_cluster(const Envoy__Config__Cluster__V3__Cluster *c)
{
    assert_int_equal(c->cluster_discovery_type_case,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE);
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN);
    assert_non_null(c->eds_cluster_config);
    assert_string_equal(c->eds_cluster_config->service_name, c->name);
    assert_int_equal(c->eds_cluster_config->eds_config->config_source_specifier_case,
                     ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS);
    assert_null(c->transport_socket);
}

static void check_grpc_cla(const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la)
{
    for (size_t i = 0; i < la->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *g = la->endpoints[i];
        assert_non_null(g->locality);
        assert_non_null(g->load_balancing_weight);
        assert_true(g->load_balancing_weight->value >= 1);
        assert_int_equal(g->priority, 0);
        for (size_t k = 0; k < g->n_lb_endpoints; k++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *e = g->lb_endpoints[k];
            assert_non_null(e->load_balancing_weight);
            assert_true(e->load_balancing_weight->value >= 1);
            const Envoy__Config__Core__V3__SocketAddress *sa = e->endpoint->address->socket_address;
            /* no duplicate addresses anywhere in the assignment */
            for (size_t j = 0; j < la->n_endpoints; j++)
                for (size_t m = 0; m < la->endpoints[j]->n_lb_endpoints; m++) {
                    if (j == i && m == k)
                        continue;
                    const Envoy__Config__Core__V3__SocketAddress *o =
                        la->endpoints[j]->lb_endpoints[m]->endpoint->address->socket_address;
                    assert_false(o->port_value == sa->port_value &&
                                 strcmp(o->address, sa->address) == 0);
                }
        }
    }
}

static void test_cds_eds(void **state)
{
    (void)state;
    const char *names[] = {CL_NAME, "outbound|50051|v1|greeter.grpc.svc.cluster.local",
                           "outbound|50051|v2|greeter.grpc.svc.cluster.local",
                           "outbound|50051|v9|greeter.grpc.svc.cluster.local"};
    xds_resource_set set;
    fx_gen(gen, client, snap, XDS_TYPE_CLUSTER, names, 4, &set);
    assert_int_equal(set.n, 3); /* v9 is no subset */
    for (size_t i = 0; i < set.n; i++) {
        Envoy__Config__Cluster__V3__Cluster *c = envoy__config__cluster__v3__cluster__unpack(
            NULL, set.items[i]->len, set.items[i]->bytes);
        assert_non_null(c);
        check_grpc_cluster(c);
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    xds_resource_set_free(&set);

    fx_gen(gen, client, snap, XDS_TYPE_ENDPOINT, names, 4, &set);
    assert_int_equal(set.n, 3);
    struct {
        const char *name;
        size_t localities, healthy, unhealthy;
    } want[] = {
        {"outbound|50051|v1|greeter.grpc.svc.cluster.local", 1, 1, 0},
        {"outbound|50051|v2|greeter.grpc.svc.cluster.local", 1, 1, 1},
        {CL_NAME, 2, 2, 1},
    };
    for (size_t w = 0; w < 3; w++) {
        const xds_resource *r = fx_find(&set, want[w].name);
        assert_non_null(r);
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
            envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->bytes);
        assert_non_null(la);
        assert_string_equal(la->cluster_name, want[w].name);
        check_grpc_cla(la);
        assert_int_equal(la->n_endpoints, want[w].localities);
        size_t h = 0, u = 0;
        for (size_t i = 0; i < la->n_endpoints; i++)
            for (size_t k = 0; k < la->endpoints[i]->n_lb_endpoints; k++) {
                Envoy__Config__Endpoint__V3__LbEndpoint *e = la->endpoints[i]->lb_endpoints[k];
                assert_int_equal(e->endpoint->address->socket_address->port_value, 50051);
                if (e->health_status == ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY)
                    h++;
                else if (e->health_status == ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY)
                    u++;
            }
        assert_int_equal(h, want[w].healthy);
        assert_int_equal(u, want[w].unhealthy);
        protobuf_c_message_free_unpacked(&la->base, NULL);
    }
    xds_resource_set_free(&set);
}

/* The gRPC rules on every resource a client could be sent, for every service. */
static void test_every_resource_obeys_grpc_rules(void **state)
{
    (void)state;
    xds_resource_set cds;
    fx_gen(gen, client, snap, XDS_TYPE_CLUSTER, NULL, 0, &cds); /* all clusters */
    assert_true(cds.n >= 3);
    const char **names = calloc(cds.n, sizeof *names);
    for (size_t i = 0; i < cds.n; i++) {
        names[i] = cds.items[i]->name;
        Envoy__Config__Cluster__V3__Cluster *c = envoy__config__cluster__v3__cluster__unpack(
            NULL, cds.items[i]->len, cds.items[i]->bytes);
        check_grpc_cluster(c);
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    xds_resource_set eds, rds;
    fx_gen(gen, client, snap, XDS_TYPE_ENDPOINT, names, cds.n, &eds);
    assert_int_equal(eds.n, cds.n);
    for (size_t i = 0; i < eds.n; i++) {
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
            envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, eds.items[i]->len,
                                                                         eds.items[i]->bytes);
        check_grpc_cla(la);
        protobuf_c_message_free_unpacked(&la->base, NULL);
    }
    fx_gen(gen, client, snap, XDS_TYPE_ROUTE, names, cds.n, &rds);
    assert_true(rds.n >= 1);
    for (size_t i = 0; i < rds.n; i++) {
        Envoy__Config__Route__V3__RouteConfiguration *rc =
            envoy__config__route__v3__route_configuration__unpack(NULL, rds.items[i]->len,
                                                                  rds.items[i]->bytes);
        check_grpc_route_config(rc);
        protobuf_c_message_free_unpacked(&rc->base, NULL);
    }
    free(names);
    xds_resource_set_free(&cds);
    xds_resource_set_free(&eds);
    xds_resource_set_free(&rds);
}

/* Two proxies asking for the same thing share the same bytes; a proxy in another
 * namespace resolves short names differently and gets its own listener entry. */
static void test_cache_shares(void **state)
{
    (void)state;
    xds_proxy *other = fx_proxy(XDS_FLAVOUR_GRPC, "grpc", "127.0.0.8", "app=other");
    xds_proxy *elsewhere = fx_proxy(XDS_FLAVOUR_GRPC, "default", "127.0.0.7", NULL);
    const char *names[] = {CL_NAME};
    xds_resource_set a, b;
    fx_gen(gen, client, snap, XDS_TYPE_CLUSTER, names, 1, &a);
    fx_gen(gen, other, snap, XDS_TYPE_CLUSTER, names, 1, &b);
    assert_int_equal(a.n, 1);
    assert_ptr_equal(a.items[0], b.items[0]);
    assert_true(atomic_load(&a.items[0]->refs) >= 3);
    xds_resource_set_free(&a);
    xds_resource_set_free(&b);

    const char *lds[] = {"greeter:50051"};
    fx_gen(gen, client, snap, XDS_TYPE_LISTENER, lds, 1, &a);
    fx_gen(gen, elsewhere, snap, XDS_TYPE_LISTENER, lds, 1, &b);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 0); /* greeter.default does not exist */
    xds_resource_set_free(&a);
    xds_resource_set_free(&b);
    xds_proxy_free(other);
    xds_proxy_free(elsewhere);
}

static void test_cluster_hostname(void **state)
{
    (void)state;
    assert_string_equal(xds_cluster_hostname("outbound|9080|v1|reviews.default.svc.cluster.local"),
                        "reviews.default.svc.cluster.local");
    assert_string_equal(xds_cluster_hostname("outbound|9080||reviews.default.svc.cluster.local"),
                        "reviews.default.svc.cluster.local");
    assert_null(xds_cluster_hostname("inbound|9080||"));
    assert_null(xds_cluster_hostname("BlackHoleCluster"));
    assert_null(xds_cluster_hostname("outbound|9080"));
    assert_null(xds_cluster_hostname(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lds_api_listener),
        cmocka_unit_test(test_rds_routes),
        cmocka_unit_test(test_cds_eds),
        cmocka_unit_test(test_every_resource_obeys_grpc_rules),
        cmocka_unit_test(test_cache_shares),
        cmocka_unit_test(test_cluster_hostname),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
