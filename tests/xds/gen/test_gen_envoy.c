/* test_gen_envoy: sidecar and gateway resources from tests/xds/gen/fixtures/envoy-mesh.yaml,
 * decoded back with protobuf-c. */
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

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfig;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;

#define REVIEWS "reviews.default.svc.cluster.local"

static mesh_snapshot *snap;
static xds_gen *gen;
static xds_proxy *sidecar, *gateway;

static int setup(void **state)
{
    (void)state;
    char path[1024];
    const char *src = getenv("PILOT_SRC");
    snprintf(path, sizeof path, "%s/tests/xds/gen/fixtures/envoy-mesh.yaml", src ? src : ".");
    snap = fx_snapshot_files(path, NULL);
    gen = xds_gen_new();
    sidecar = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=reviews,version=v1");
    gateway = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.1",
                       "app=istio-ingressgateway,istio=ingressgateway");
    return snap && gen ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xds_proxy_free(sidecar);
    xds_proxy_free(gateway);
    xds_gen_free(gen);
    mesh_snapshot_release(snap);
    return 0;
}

static Listener *get_listener(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    if (!r)
        fail_msg("listener %s missing", name);
    Listener *l = envoy__config__listener__v3__listener__unpack(NULL, r->len, r->bytes);
    assert_non_null(l);
    assert_string_equal(l->name, name);
    return l;
}

/* The chain's terminal filter (telemetry filters come before it: test_gen_telemetry). */
static HCM *chain_hcm(const Envoy__Config__Listener__V3__FilterChain *fc)
{
    assert_true(fc->n_filters >= 1);
    const Envoy__Config__Listener__V3__Filter *f = fc->filters[fc->n_filters - 1];
    assert_string_equal(f->name, "envoy.filters.network.http_connection_manager");
    HCM *h = fx_unpack_any(
        f->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    assert_non_null(h);
    assert_true(h->n_http_filters >= 1);
    assert_string_equal(h->http_filters[h->n_http_filters - 1]->name, "envoy.filters.http.router");
    return h;
}

static const char *chain_tcp_cluster(const Envoy__Config__Listener__V3__FilterChain *fc, char *buf,
                                     size_t len)
{
    const Envoy__Config__Listener__V3__Filter *f = fc->filters[fc->n_filters - 1];
    assert_string_equal(f->name, "envoy.filters.network.tcp_proxy");
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        fx_unpack_any(f->typed_config,
                      &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
    assert_non_null(tp);
    snprintf(buf, len, "%s", tp->cluster);
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    return buf;
}

static RouteConfig *get_route(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    if (!r)
        fail_msg("route %s missing", name);
    RouteConfig *rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->bytes);
    assert_non_null(rc);
    return rc;
}

static bool has_domain(const Envoy__Config__Route__V3__VirtualHost *vh, const char *d)
{
    for (size_t i = 0; i < vh->n_domains; i++)
        if (strcmp(vh->domains[i], d) == 0)
            return true;
    return false;
}

static void test_sidecar_lds(void **state)
{
    (void)state;
    assert_true(xds_type_is_wildcard(sidecar, XDS_TYPE_LISTENER));
    assert_true(xds_type_is_wildcard(sidecar, XDS_TYPE_CLUSTER));
    assert_false(xds_type_is_wildcard(sidecar, XDS_TYPE_ROUTE));
    assert_false(xds_type_is_wildcard(sidecar, XDS_TYPE_ENDPOINT));
    xds_resource_set set;
    fx_gen(gen, sidecar, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    char buf[256];

    Listener *vo = get_listener(&set, "virtualOutbound");
    assert_int_equal(vo->address->socket_address->port_value, 15001);
    assert_true(vo->use_original_dst && vo->use_original_dst->value);
    /* istiod's order: the blackhole for traffic addressed to 15001 itself, then the
     * catch-all to PassthroughCluster */
    assert_int_equal(vo->n_filter_chains, 2);
    assert_string_equal(vo->filter_chains[0]->name, "virtualOutbound-blackhole");
    assert_int_equal(vo->filter_chains[0]->filter_chain_match->destination_port->value, 15001);
    assert_string_equal(chain_tcp_cluster(vo->filter_chains[0], buf, sizeof buf),
                        "BlackHoleCluster");
    assert_string_equal(chain_tcp_cluster(vo->filter_chains[1], buf, sizeof buf),
                        "PassthroughCluster");
    protobuf_c_message_free_unpacked(&vo->base, NULL);

    Listener *vi = get_listener(&set, "virtualInbound");
    assert_int_equal(vi->address->socket_address->port_value, 15006);
    /* no PeerAuthentication: PERMISSIVE, as istiod: per port an Istio-ALPN mTLS chain and
     * a plaintext chain, the 15006 blackhole, and the passthrough in three (mTLS, the
     * app's own TLS, plaintext); the TLS inspector tells them apart */
    assert_int_equal(vi->n_listener_filters, 2);
    assert_string_equal(vi->listener_filters[0]->name, "envoy.filters.listener.original_dst");
    assert_string_equal(vi->listener_filters[1]->name, "envoy.filters.listener.tls_inspector");
    assert_int_equal(vi->n_filter_chains, 6);
    for (size_t i = 0; i < 2; i++) {
        const Envoy__Config__Listener__V3__FilterChain *fc = vi->filter_chains[i];
        assert_string_equal(fc->name, "0.0.0.0_9080");
        assert_int_equal(fc->filter_chain_match->destination_port->value, 9080);
        HCM *ih = chain_hcm(fc);
        assert_int_equal(
            ih->route_specifier_case,
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG);
        assert_string_equal(ih->route_config->virtual_hosts[0]->routes[0]->route->cluster,
                            "inbound|9080||");
        protobuf_c_message_free_unpacked(&ih->base, NULL);
    }
    assert_string_equal(vi->filter_chains[0]->filter_chain_match->transport_protocol, "tls");
    assert_int_equal(vi->filter_chains[0]->filter_chain_match->n_application_protocols, 5);
    assert_non_null(vi->filter_chains[0]->transport_socket);
    assert_string_equal(vi->filter_chains[1]->filter_chain_match->transport_protocol, "raw_buffer");
    assert_null(vi->filter_chains[1]->transport_socket);
    assert_string_equal(vi->filter_chains[2]->name, "virtualInbound-blackhole");
    assert_int_equal(vi->filter_chains[2]->filter_chain_match->destination_port->value, 15006);
    for (size_t i = 3; i < 6; i++) {
        assert_string_equal(vi->filter_chains[i]->name, "virtualInbound");
        assert_string_equal(chain_tcp_cluster(vi->filter_chains[i], buf, sizeof buf),
                            "InboundPassthroughCluster");
    }
    /* istiod's passthrough order and ALPNs: mTLS (istio-peer-exchange, istio), plaintext,
     * the app's own TLS */
    assert_non_null(vi->filter_chains[3]->transport_socket);
    assert_int_equal(vi->filter_chains[3]->filter_chain_match->n_application_protocols, 2);
    assert_string_equal(vi->filter_chains[4]->filter_chain_match->transport_protocol, "raw_buffer");
    assert_null(vi->filter_chains[5]->transport_socket);
    assert_string_equal(vi->filter_chains[5]->filter_chain_match->transport_protocol, "tls");
    protobuf_c_message_free_unpacked(&vi->base, NULL);

    Listener *h = get_listener(&set, "0.0.0.0_9080");
    assert_false(h->bind_to_port->value);
    HCM *hcm = chain_hcm(h->filter_chains[0]);
    assert_string_equal(hcm->rds->route_config_name, "9080");
    assert_int_equal(hcm->n_http_filters, 5);
    assert_string_equal(hcm->http_filters[0]->name, "istio.metadata_exchange");
    assert_string_equal(hcm->http_filters[1]->name, "envoy.filters.http.cors");
    assert_string_equal(hcm->http_filters[2]->name, "envoy.filters.http.fault");
    assert_string_equal(hcm->http_filters[3]->name, "istio.stats");
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    protobuf_c_message_free_unpacked(&h->base, NULL);

    /* mysql's own listener carries its VirtualService's 80/20 tcp split (checked in
     * test_gen_features and the protoc oracle); mysql-ro has no VirtualService */
    Listener *t = get_listener(&set, "10.96.0.21_3306");
    assert_string_equal(t->address->socket_address->address, "10.96.0.21");
    assert_string_equal(chain_tcp_cluster(t->filter_chains[0], buf, sizeof buf),
                        "outbound|3306||mysql-ro.default.svc.cluster.local");
    protobuf_c_message_free_unpacked(&t->base, NULL);
    assert_null(fx_find(&set, "0.0.0.0_3306"));
    xds_resource_set_free(&set);

    /* named request: only what exists */
    const char *names[] = {"virtualInbound", "0.0.0.0_1"};
    fx_gen(gen, sidecar, snap, XDS_TYPE_LISTENER, names, 2, &set);
    assert_int_equal(set.n, 1);
    xds_resource_set_free(&set);
}

static void test_sidecar_rds(void **state)
{
    (void)state;
    const char *names[] = {"9080"};
    xds_resource_set set;
    fx_gen(gen, sidecar, snap, XDS_TYPE_ROUTE, names, 1, &set);
    RouteConfig *rc = get_route(&set, "9080");
    assert_int_equal(rc->n_virtual_hosts, 2);
    const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[0];
    assert_string_equal(vh->name, REVIEWS ":9080");
    const char *want[] = {REVIEWS,
                          REVIEWS ":9080",
                          "reviews",
                          "reviews:9080",
                          "reviews.default",
                          "reviews.default:9080",
                          "reviews.default.svc",
                          "10.96.0.10",
                          "10.96.0.10:9080"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_true(has_domain(vh, want[i]));
    assert_int_equal(vh->n_routes, 1);
    const Envoy__Config__Route__V3__RouteAction *ra = vh->routes[0]->route;
    assert_int_equal(ra->weighted_clusters->n_clusters, 2);
    assert_string_equal(ra->weighted_clusters->clusters[1]->name, "outbound|9080|v2|" REVIEWS);
    assert_int_equal(ra->retry_policy->num_retries->value, 2); /* Istio's default */
    assert_non_null(ra->timeout);
    assert_int_equal(ra->timeout->seconds, 0);
    assert_string_equal(rc->virtual_hosts[1]->name, "allow_any");
    assert_string_equal(rc->virtual_hosts[1]->domains[0], "*");
    assert_string_equal(rc->virtual_hosts[1]->routes[0]->route->cluster, "PassthroughCluster");
    protobuf_c_message_free_unpacked(&rc->base, NULL);
    xds_resource_set_free(&set);

    /* from another namespace the bare short name is not a domain */
    xds_proxy *other = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "other", "10.1.9.9", NULL);
    fx_gen(gen, other, snap, XDS_TYPE_ROUTE, names, 1, &set);
    rc = get_route(&set, "9080");
    assert_false(has_domain(rc->virtual_hosts[0], "reviews"));
    assert_true(has_domain(rc->virtual_hosts[0], "reviews.default"));
    protobuf_c_message_free_unpacked(&rc->base, NULL);
    xds_resource_set_free(&set);
    xds_proxy_free(other);
}

static Cluster *get_cluster(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    if (!r)
        fail_msg("cluster %s missing", name);
    Cluster *c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->bytes);
    assert_non_null(c);
    return c;
}

/* The "istio" filter metadata of a Struct, as a field lookup. */
static const Google__Protobuf__Value *istio_field(const Envoy__Config__Core__V3__Metadata *md,
                                                  const char *key)
{
    for (size_t i = 0; md && i < md->n_filter_metadata; i++) {
        if (strcmp(md->filter_metadata[i]->key, "istio") != 0)
            continue;
        const Google__Protobuf__Struct *st = md->filter_metadata[i]->value;
        for (size_t k = 0; k < st->n_fields; k++)
            if (strcmp(st->fields[k]->key, key) == 0)
                return st->fields[k]->value;
    }
    return NULL;
}

static const char *istio_str(const Envoy__Config__Core__V3__Metadata *md, const char *key)
{
    const Google__Protobuf__Value *v = istio_field(md, key);
    return v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ? v->string_value : NULL;
}

/* istiod's metadata: clusters name their service and DestinationRule (and subset), routes
 * their VirtualService. */
static void test_istio_metadata(void **state)
{
    (void)state;
    xds_resource_set set;
    fx_gen(gen, sidecar, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    const char *drp = "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews";
    Cluster *c = get_cluster(&set, "outbound|9080|v2|" REVIEWS);
    assert_string_equal(istio_str(c->metadata, "config"), drp);
    assert_string_equal(istio_str(c->metadata, "subset"), "v2");
    const Google__Protobuf__Value *sv = istio_field(c->metadata, "services");
    assert_non_null(sv);
    assert_int_equal(sv->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    assert_int_equal(sv->list_value->n_values, 1);
    const Google__Protobuf__Struct *svc = sv->list_value->values[0]->struct_value;
    assert_non_null(svc);
    const char *want[][2] = {{"host", REVIEWS}, {"name", "reviews"}, {"namespace", "default"}};
    assert_int_equal(svc->n_fields, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(svc->fields[i]->key, want[i][0]);
        assert_string_equal(svc->fields[i]->value->string_value, want[i][1]);
    }
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = get_cluster(&set, "outbound|9080||" REVIEWS);
    assert_string_equal(istio_str(c->metadata, "config"), drp);
    assert_null(istio_field(c->metadata, "subset")); /* only subset clusters name one */
    protobuf_c_message_free_unpacked(&c->base, NULL);
    xds_resource_set_free(&set);

    const char *names[] = {"9080"};
    fx_gen(gen, sidecar, snap, XDS_TYPE_ROUTE, names, 1, &set);
    const xds_resource *r = fx_find(&set, "9080");
    assert_non_null(r);
    RouteConfig *rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->bytes);
    assert_non_null(rc);
    bool seen = false;
    for (size_t v = 0; v < rc->n_virtual_hosts; v++) {
        const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[v];
        if (strcmp(vh->name, REVIEWS ":9080") != 0)
            continue;
        assert_true(vh->n_routes > 0);
        for (size_t i = 0; i < vh->n_routes; i++) {
            assert_string_equal(istio_str(vh->routes[i]->metadata, "config"),
                                "/apis/networking.istio.io/v1/namespaces/default/"
                                "virtual-service/reviews");
            seen = true;
        }
    }
    assert_true(seen);
    protobuf_c_message_free_unpacked(&rc->base, NULL);
    xds_resource_set_free(&set);
}

static void test_sidecar_cds(void **state)
{
    (void)state;
    xds_resource_set set;
    fx_gen(gen, sidecar, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    Cluster *c = get_cluster(&set, "BlackHoleCluster");
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    assert_null(c->load_assignment);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = get_cluster(&set, "PassthroughCluster");
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST);
    assert_int_equal(c->lb_policy,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = get_cluster(&set, "InboundPassthroughCluster");
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = get_cluster(&set, "inbound|9080||");
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    assert_string_equal(c->load_assignment->endpoints[0]
                            ->lb_endpoints[0]
                            ->endpoint->address->socket_address->address,
                        "127.0.0.1");
    protobuf_c_message_free_unpacked(&c->base, NULL);

    c = get_cluster(&set, "outbound|9080||" REVIEWS);
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    assert_string_equal(c->eds_cluster_config->service_name, "outbound|9080||" REVIEWS);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM);
    assert_int_equal(c->connect_timeout->seconds, 3);
    assert_int_equal(c->circuit_breakers->thresholds[0]->max_connections->value, 10);
    assert_int_equal(c->outlier_detection->consecutive_5xx->value, 5);
    assert_int_equal(c->outlier_detection->interval->seconds, 10);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = get_cluster(&set, "outbound|9080|v1|" REVIEWS);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = get_cluster(&set, "outbound|3306||mysql.default.svc.cluster.local");
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
    assert_int_equal(c->connect_timeout->seconds, 10);
    assert_int_equal(c->circuit_breakers->thresholds[0]->max_connections->value, 4294967295u);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    xds_resource_set_free(&set);

    /* EDS subset v1 holds only the v1 pod */
    const char *names[] = {"outbound|9080|v1|" REVIEWS};
    fx_gen(gen, sidecar, snap, XDS_TYPE_ENDPOINT, names, 1, &set);
    assert_int_equal(set.n, 1);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
        envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, set.items[0]->len,
                                                                     set.items[0]->bytes);
    assert_int_equal(la->n_endpoints, 1);
    assert_int_equal(la->endpoints[0]->n_lb_endpoints, 1);
    assert_string_equal(
        la->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address->address, "10.1.0.5");
    protobuf_c_message_free_unpacked(&la->base, NULL);
    xds_resource_set_free(&set);
}

static void test_gateway(void **state)
{
    (void)state;
    xds_resource_set set;
    fx_gen(gen, gateway, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_int_equal(set.n, 4); /* 8080, 8443, 9999 and the 9443 TLS passthrough */
    Listener *l = get_listener(&set, "0.0.0.0_8080"); /* port 80 bound on targetPort 8080 */
    assert_int_equal(l->address->socket_address->port_value, 8080);
    HCM *h = chain_hcm(l->filter_chains[0]);
    assert_string_equal(h->rds->route_config_name, "http.8080");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    l = get_listener(&set, "0.0.0.0_8443");
    assert_int_equal(l->n_filter_chains, 1);
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
    assert_int_equal(fc->filter_chain_match->n_server_names, 1);
    assert_string_equal(fc->filter_chain_match->server_names[0], "reviews.example.com");
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *tls = fx_unpack_any(
        fc->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
    assert_non_null(tls);
    assert_string_equal(tls->common_tls_context->tls_certificate_sds_secret_configs[0]->name,
                        "kubernetes://reviews-cert");
    protobuf_c_message_free_unpacked(&tls->base, NULL);
    h = chain_hcm(fc);
    assert_string_equal(h->rds->route_config_name, "https.443.https.gw.default");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    assert_string_equal(l->listener_filters[0]->name, "envoy.filters.listener.tls_inspector");
    protobuf_c_message_free_unpacked(&l->base, NULL);
    assert_non_null(fx_find(&set, "0.0.0.0_9999")); /* no Service port: bound as is */
    xds_resource_set_free(&set);

    const char *rn[] = {"http.8080", "https.443.https.gw.default", "http.9999", "http.1"};
    fx_gen(gen, gateway, snap, XDS_TYPE_ROUTE, rn, 4, &set);
    assert_int_equal(set.n, 3);
    RouteConfig *rc = get_route(&set, "http.8080");
    assert_int_equal(rc->n_virtual_hosts, 1);
    const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[0];
    assert_string_equal(vh->name, "reviews.example.com:8080");
    assert_true(has_domain(vh, "reviews.example.com"));
    assert_int_equal(vh->require_tls,
                     ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__TLS_REQUIREMENT_TYPE__ALL);
    assert_int_equal(vh->n_routes, 2);
    const Envoy__Config__Route__V3__Route *r = vh->routes[0];
    assert_string_equal(r->match->prefix, "/api");
    assert_string_equal(r->route->cluster, "outbound|9080|v1|" REVIEWS);
    assert_string_equal(r->route->prefix_rewrite, "/");
    assert_int_equal(r->route->timeout->seconds, 5);
    assert_int_equal(r->route->retry_policy->num_retries->value, 2);
    assert_int_equal(r->n_request_headers_to_add, 1);
    assert_string_equal(r->request_headers_to_add[0]->header->key, "x-a");
    bool cors = false;
    for (size_t i = 0; i < r->n_typed_per_filter_config; i++)
        if (strcmp(r->typed_per_filter_config[i]->key, "envoy.filters.http.cors") == 0) {
            Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *cp =
                fx_unpack_any(r->typed_per_filter_config[i]->value,
                              &envoy__extensions__filters__http__cors__v3__cors_policy__descriptor);
            assert_non_null(cp);
            assert_string_equal(cp->allow_origin_string_match[0]->exact, "https://a.example.com");
            assert_string_equal(cp->allow_methods, "GET,POST");
            assert_string_equal(cp->max_age, "86400");
            protobuf_c_message_free_unpacked(&cp->base, NULL);
            cors = true;
        }
    assert_true(cors);
    assert_int_equal(vh->routes[1]->action_case, ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT);
    assert_string_equal(vh->routes[1]->redirect->path_redirect, "/new");
    protobuf_c_message_free_unpacked(&rc->base, NULL);

    rc = get_route(&set, "https.443.https.gw.default");
    assert_string_equal(rc->virtual_hosts[0]->name, "reviews.example.com:8443");
    assert_int_equal(rc->virtual_hosts[0]->require_tls, 0);
    protobuf_c_message_free_unpacked(&rc->base, NULL);

    rc = get_route(&set, "http.9999");
    assert_string_equal(rc->virtual_hosts[0]->name, "blackhole:9999");
    assert_string_equal(rc->virtual_hosts[0]->domains[0], "*");
    assert_int_equal(rc->virtual_hosts[0]->routes[0]->direct_response->status, 404);
    protobuf_c_message_free_unpacked(&rc->base, NULL);
    xds_resource_set_free(&set);

    /* CDS: every service's clusters */
    fx_gen(gen, gateway, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    assert_non_null(fx_find(&set, "outbound|9080|v1|" REVIEWS));
    assert_non_null(fx_find(&set, "outbound|3306||mysql.default.svc.cluster.local"));
    assert_null(fx_find(&set, "BlackHoleCluster"));
    xds_resource_set_free(&set);

    /* a gateway pod the Gateway does not select gets nothing */
    xds_proxy *other =
        fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.2", "istio=egressgateway");
    fx_gen(gen, other, snap, XDS_TYPE_LISTENER, NULL, 0, &set);
    assert_int_equal(set.n, 0);
    xds_resource_set_free(&set);
    xds_proxy_free(other);
}

/* The same bytes for the same inputs; a newer snapshot builds afresh. */
static void test_cache_versions(void **state)
{
    (void)state;
    const char *names[] = {"9080"};
    xds_resource_set a, b;
    fx_gen(gen, sidecar, snap, XDS_TYPE_ROUTE, names, 1, &a);
    fx_gen(gen, sidecar, snap, XDS_TYPE_ROUTE, names, 1, &b);
    assert_ptr_equal(a.items[0], b.items[0]);
    xds_resource_set_free(&b);
    mesh_snapshot fake = *snap; /* same content, newer version */
    fake.version = snap->version + 1;
    fx_gen(gen, sidecar, &fake, XDS_TYPE_ROUTE, names, 1, &b);
    assert_ptr_not_equal(a.items[0], b.items[0]);
    assert_int_equal(a.items[0]->hash, b.items[0]->hash);
    assert_int_equal(a.items[0]->len, b.items[0]->len);
    assert_memory_equal(a.items[0]->bytes, b.items[0]->bytes, a.items[0]->len);
    xds_resource_set_free(&a);
    xds_resource_set_free(&b);

    /* EDS survives a config-only version bump */
    const char *eds[] = {"outbound|9080||" REVIEWS};
    fx_gen(gen, sidecar, snap, XDS_TYPE_ENDPOINT, eds, 1, &a);
    fx_gen(gen, sidecar, &fake, XDS_TYPE_ENDPOINT, eds, 1, &b);
    assert_ptr_equal(a.items[0], b.items[0]);
    xds_resource_set_free(&a);
    xds_resource_set_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sidecar_lds),    cmocka_unit_test(test_sidecar_rds),
        cmocka_unit_test(test_sidecar_cds),    cmocka_unit_test(test_gateway),
        cmocka_unit_test(test_cache_versions), cmocka_unit_test(test_istio_metadata),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
