/* test_gen_telemetry: the telemetry istiod's default install configures (Istio 1.24): the
 * istio.metadata_exchange and istio.stats filters of sidecar inbound, sidecar outbound
 * and gateway HCMs and TCP chains, in istiod's order around the router and the
 * authorization filters, their TypedStruct configs, and the mesh config access logs
 * (only with accessLogFile; TEXT and JSON, formatters). Decoded back with protobuf-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "gen_fixture.h"
#include "udpa/type/v1/typed_struct.pb-c.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Listener__V3__FilterChain Chain;
typedef Envoy__Config__Listener__V3__Filter Filter;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;
typedef Envoy__Config__Accesslog__V3__AccessLog AccessLog;
typedef Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog FileLog;
typedef Udpa__Type__V1__TypedStruct TypedStruct;

/* app (HTTP 9080, TCP 5432) runs at 10.1.0.5 with a sidecar and an ALLOW policy; the
 * ingress gateway serves HTTP 80 (-> 8080), TCP 31400 and ISTIO_MUTUAL TLS 15443. */
static const char *const yaml =
    "apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: default}\n"
    "spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 9080}, {name: tcp-db, port: 5432}],"
    " selector: {app: app}}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: app-1, namespace: default, labels: {app: app}}\n"
    "spec: {serviceAccountName: app}\nstatus: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}\n---\n"
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: app-1, namespace: "
    "default, labels: {kubernetes.io/service-name: app}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9080, protocol: TCP}, {name: tcp-db, port: "
    "5432, protocol: TCP}]\nendpoints:\n"
    "- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: app-1, namespace: default}}\n---\n"
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
    "metadata: {name: allow, namespace: default}\n"
    "spec: {selector: {matchLabels: {app: app}}, action: ALLOW, rules: [{from: [{source: "
    "{principals: [\"cluster.local/ns/default/sa/client\"]}}]}]}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: istio-ingressgateway, namespace: "
    "istio-system}\n"
    "spec: {clusterIP: 10.0.0.99, selector: {istio: ingressgateway}, ports: [{name: http2, "
    "port: 80, targetPort: 8080}, {name: tcp, port: 31400, targetPort: 31400}, {name: tls, "
    "port: 15443, targetPort: 15443}]}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: "
    "istio-system}\n"
    "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
    "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n"
    "  - port: {number: 31400, name: tcp, protocol: TCP}\n    hosts: ['*']\n"
    "  - port: {number: 15443, name: tls, protocol: TLS}\n    hosts: ['*']\n"
    "    tls: {mode: ISTIO_MUTUAL}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app-gw, "
    "namespace: default}\n"
    "spec:\n  hosts: ['*']\n  gateways: [istio-system/gw]\n"
    "  http: [{route: [{destination: {host: app, port: {number: 9080}}}]}]\n"
    "  tcp: [{route: [{destination: {host: app, port: {number: 5432}}}]}]\n";

static mesh_snapshot *snap;

static int setup(void **state)
{
    (void)state;
    snap = fx_snapshot(yaml, NULL);
    return snap ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mesh_snapshot_release(snap);
    return 0;
}

/* The listeners a proxy gets under telemetry settings t (NULL: defaults). One generator
 * per call: fixture snapshots share version 1. */
static void listeners(xds_flavour f, const char *ns, const char *ip, const char *labels,
                      const xds_mesh_telemetry *t, xds_resource_set *set)
{
    xds_gen *g = xds_gen_new();
    assert_non_null(g);
    if (t)
        xds_gen_set_mesh_telemetry(g, t);
    xds_proxy *p = fx_proxy(f, ns, ip, labels);
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, NULL, 0, set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

static Listener *listener(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    assert_non_null(r);
    Listener *l = envoy__config__listener__v3__listener__unpack(NULL, r->len, r->bytes);
    assert_non_null(l);
    return l;
}

/* "a,b,c": the filter names of a chain, or of an HCM. */
static void chain_names(const Chain *fc, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < fc->n_filters; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s", n ? "," : "", fc->filters[i]->name);
    }
}

static void hcm_names(const HCM *h, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < h->n_http_filters; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s", n ? "," : "", h->http_filters[i]->name);
    }
}

static HCM *chain_hcm(const Chain *fc)
{
    const Filter *f = fc->filters[fc->n_filters - 1];
    assert_string_equal(f->name, "envoy.filters.network.http_connection_manager");
    HCM *h = fx_unpack_any(
        f->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    assert_non_null(h);
    return h;
}

static TcpProxy *chain_tcp_proxy(const Chain *fc)
{
    const Filter *f = fc->filters[fc->n_filters - 1];
    assert_string_equal(f->name, "envoy.filters.network.tcp_proxy");
    TcpProxy *tp =
        fx_unpack_any(f->typed_config,
                      &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
    assert_non_null(tp);
    return tp;
}

static const Google__Protobuf__Value *struct_get(const Google__Protobuf__Struct *st,
                                                 const char *key)
{
    for (size_t i = 0; st && i < st->n_fields; i++)
        if (strcmp(st->fields[i]->key, key) == 0)
            return st->fields[i]->value;
    return NULL;
}

/* The TypedStruct of a filter's typed_config: checks its Istio type_url and that the
 * config has key (NULL: is empty). */
static void check_typed_struct(const Google__Protobuf__Any *any, const char *type_url,
                               const char *key)
{
    TypedStruct *ts = fx_unpack_any(any, &udpa__type__v1__typed_struct__descriptor);
    assert_non_null(ts);
    assert_string_equal(ts->type_url, type_url);
    assert_non_null(ts->value);
    if (key)
        assert_non_null(struct_get(ts->value, key));
    else
        assert_int_equal(ts->value->n_fields, 0);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
}

#define PEER_MD "type.googleapis.com/io.istio.http.peer_metadata.Config"
#define TCP_MX "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"
#define STATS "type.googleapis.com/stats.PluginConfig"

static bool chain_port(const Chain *fc, uint32_t port)
{
    const Envoy__Config__Listener__V3__FilterChainMatch *m = fc->filter_chain_match;
    uint32_t p = m && m->destination_port ? m->destination_port->value : 0;
    return p == port;
}

static void test_sidecar_inbound(void **state)
{
    (void)state;
    xds_resource_set set;
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", NULL, &set);
    Listener *l = listener(&set, "virtualInbound");
    char buf[512];
    size_t http = 0, tcp = 0, bh = 0;
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        const Chain *fc = l->filter_chains[i];
        chain_names(fc, buf, sizeof buf);
        if (chain_port(fc, 9080)) {
            /* istiod: the network metadata exchange ahead of the HCM on inbound HTTP */
            assert_string_equal(buf, "istio.metadata_exchange,"
                                     "envoy.filters.network.http_connection_manager");
            check_typed_struct(fc->filters[0]->typed_config, TCP_MX, "protocol");
            HCM *h = chain_hcm(fc);
            hcm_names(h, buf, sizeof buf);
            /* mx first (ahead of RBAC), stats just before the router */
            assert_string_equal(buf, "istio.metadata_exchange,envoy.filters.http.rbac,"
                                     "envoy.filters.http.cors,envoy.filters.http.fault,"
                                     "istio.stats,envoy.filters.http.router");
            check_typed_struct(h->http_filters[0]->typed_config, PEER_MD, "downstream_discovery");
            check_typed_struct(h->http_filters[0]->typed_config, PEER_MD, "downstream_propagation");
            check_typed_struct(h->http_filters[4]->typed_config, STATS,
                               "disable_host_header_fallback");
            assert_int_equal(h->n_access_log, 0); /* no accessLogFile */
            protobuf_c_message_free_unpacked(&h->base, NULL);
            http++;
        } else if (chain_port(fc, 5432) || (!fc->filter_chain_match->destination_port &&
                                            strcmp(fc->name, "virtualInbound") == 0)) {
            assert_string_equal(buf, "istio.metadata_exchange,envoy.filters.network.rbac,"
                                     "istio.stats,envoy.filters.network.tcp_proxy");
            check_typed_struct(fc->filters[2]->typed_config, STATS, "disable_host_header_fallback");
            TcpProxy *tp = chain_tcp_proxy(fc);
            assert_int_equal(tp->n_access_log, 0);
            protobuf_c_message_free_unpacked(&tp->base, NULL);
            tcp++;
        } else if (chain_port(fc, 15006)) {
            assert_string_equal(buf, "istio.metadata_exchange,istio.stats,"
                                     "envoy.filters.network.tcp_proxy");
            bh++;
        }
    }
    assert_int_equal(http, 2); /* PERMISSIVE: mTLS and plaintext */
    assert_int_equal(tcp, 6);  /* 5432 and the passthrough, 3 each */
    assert_int_equal(bh, 1);
    assert_int_equal(l->n_access_log, 0);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

static void test_sidecar_outbound(void **state)
{
    (void)state;
    xds_resource_set set;
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", NULL, &set);
    char buf[512];
    Listener *l = listener(&set, "0.0.0.0_9080");
    assert_int_equal(l->n_filter_chains, 1);
    chain_names(l->filter_chains[0], buf, sizeof buf);
    assert_string_equal(buf, "envoy.filters.network.http_connection_manager");
    HCM *h = chain_hcm(l->filter_chains[0]);
    hcm_names(h, buf, sizeof buf);
    assert_string_equal(buf, "istio.metadata_exchange,envoy.filters.http.cors,"
                             "envoy.filters.http.fault,istio.stats,envoy.filters.http.router");
    check_typed_struct(h->http_filters[0]->typed_config, PEER_MD, "upstream_discovery");
    check_typed_struct(h->http_filters[0]->typed_config, PEER_MD, "upstream_propagation");
    check_typed_struct(h->http_filters[3]->typed_config, STATS, NULL); /* client: {} */
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* outbound TCP: stats only; the metadata exchange is the cluster's in istiod */
    l = listener(&set, "10.0.0.10_5432");
    chain_names(l->filter_chains[l->n_filter_chains - 1], buf, sizeof buf);
    assert_string_equal(buf, "istio.stats,envoy.filters.network.tcp_proxy");
    protobuf_c_message_free_unpacked(&l->base, NULL);

    l = listener(&set, "virtualOutbound");
    chain_names(l->filter_chains[0], buf, sizeof buf);
    assert_string_equal(buf, "istio.stats,envoy.filters.network.tcp_proxy");
    chain_names(l->default_filter_chain, buf, sizeof buf);
    assert_string_equal(buf, "istio.stats,envoy.filters.network.tcp_proxy");
    assert_int_equal(l->n_access_log, 0);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

static void test_gateway(void **state)
{
    (void)state;
    xds_resource_set set;
    listeners(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.2.0.1", "istio=ingressgateway", NULL,
              &set);
    char buf[512];
    Listener *l = listener(&set, "0.0.0.0_8080");
    HCM *h = chain_hcm(l->filter_chains[0]);
    hcm_names(h, buf, sizeof buf);
    assert_string_equal(buf, "istio.metadata_exchange,envoy.filters.http.cors,"
                             "envoy.filters.http.fault,istio.stats,envoy.filters.http.router");
    /* a gateway is a client of the mesh: upstream exchange, no Host fallback */
    check_typed_struct(h->http_filters[0]->typed_config, PEER_MD, "upstream_discovery");
    check_typed_struct(h->http_filters[3]->typed_config, STATS, "disable_host_header_fallback");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    l = listener(&set, "0.0.0.0_31400");
    chain_names(l->filter_chains[0], buf, sizeof buf);
    assert_string_equal(buf, "istio.stats,envoy.filters.network.tcp_proxy");
    check_typed_struct(l->filter_chains[0]->filters[0]->typed_config, STATS,
                       "disable_host_header_fallback");
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* ISTIO_MUTUAL: the peer is a sidecar, so the metadata exchange too (istiod's rule) */
    l = listener(&set, "0.0.0.0_15443");
    chain_names(l->filter_chains[0], buf, sizeof buf);
    assert_string_equal(buf, "istio.metadata_exchange,istio.stats,"
                             "envoy.filters.network.tcp_proxy");
    assert_int_equal(l->n_access_log, 0);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

/* The file access log of a list: exactly one, to path; its format. */
static FileLog *file_log(AccessLog *const *logs, size_t n, const char *path)
{
    assert_int_equal(n, 1);
    assert_string_equal(logs[0]->name, "envoy.access_loggers.file");
    FileLog *fl =
        fx_unpack_any(logs[0]->typed_config,
                      &envoy__extensions__access_loggers__file__v3__file_access_log__descriptor);
    assert_non_null(fl);
    assert_string_equal(fl->path, path);
    assert_int_equal(
        fl->access_log_format_case,
        ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT);
    return fl;
}

static void test_access_log_text(void **state)
{
    (void)state;
    xds_mesh_telemetry t = {.access_log_file = "/dev/stdout"};
    xds_resource_set set;
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", &t, &set);
    Listener *l = listener(&set, "virtualInbound");
    size_t http = 0, tcp = 0;
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        const Chain *fc = l->filter_chains[i];
        if (chain_port(fc, 9080)) {
            HCM *h = chain_hcm(fc);
            FileLog *fl = file_log(h->access_log, h->n_access_log, "/dev/stdout");
            const char *text = fl->log_format->text_format_source->inline_string;
            assert_non_null(strstr(text, "[%START_TIME%] \"%REQ(:METHOD)%"));
            assert_non_null(strstr(text, "%UPSTREAM_CLUSTER_RAW%"));
            assert_int_equal(text[strlen(text) - 1], '\n');
            assert_int_equal(fl->log_format->n_formatters, 0);
            protobuf_c_message_free_unpacked(&fl->base, NULL);
            protobuf_c_message_free_unpacked(&h->base, NULL);
            http++;
        } else {
            TcpProxy *tp = chain_tcp_proxy(fc);
            if (chain_port(fc, 15006)) {
                assert_int_equal(tp->n_access_log, 0); /* istiod: the blackhole is not logged */
            } else {
                FileLog *fl = file_log(tp->access_log, tp->n_access_log, "/dev/stdout");
                protobuf_c_message_free_unpacked(&fl->base, NULL);
                tcp++;
            }
            protobuf_c_message_free_unpacked(&tp->base, NULL);
        }
    }
    assert_int_equal(http, 2);
    assert_int_equal(tcp, 6);
    /* the listener logs only connections no chain took */
    FileLog *fl = file_log(l->access_log, l->n_access_log, "/dev/stdout");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    assert_non_null(l->access_log[0]->filter);
    assert_non_null(l->access_log[0]->filter->response_flag_filter);
    assert_int_equal(l->access_log[0]->filter->response_flag_filter->n_flags, 1);
    assert_string_equal(l->access_log[0]->filter->response_flag_filter->flags[0], "NR");
    protobuf_c_message_free_unpacked(&l->base, NULL);

    l = listener(&set, "0.0.0.0_9080");
    HCM *h = chain_hcm(l->filter_chains[0]);
    fl = file_log(h->access_log, h->n_access_log, "/dev/stdout");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    assert_int_equal(l->n_access_log, 0); /* per-port outbound listeners: none (istiod's) */
    protobuf_c_message_free_unpacked(&l->base, NULL);

    l = listener(&set, "virtualOutbound");
    TcpProxy *tp = chain_tcp_proxy(l->default_filter_chain);
    fl = file_log(tp->access_log, tp->n_access_log, "/dev/stdout");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    assert_int_equal(l->n_access_log, 1);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);

    /* a custom format gets its newline and the formatter extensions it uses */
    t.access_log_format = "%REQ_WITHOUT_QUERY(:PATH)% %METADATA(ROUTE:a)%";
    t.no_listener_access_log = true;
    listeners(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.2.0.1", "istio=ingressgateway", &t,
              &set);
    l = listener(&set, "0.0.0.0_8080");
    assert_int_equal(l->n_access_log, 0); /* disableEnvoyListenerLog */
    h = chain_hcm(l->filter_chains[0]);
    fl = file_log(h->access_log, h->n_access_log, "/dev/stdout");
    assert_string_equal(fl->log_format->text_format_source->inline_string,
                        "%REQ_WITHOUT_QUERY(:PATH)% %METADATA(ROUTE:a)%\n");
    assert_int_equal(fl->log_format->n_formatters, 2);
    assert_string_equal(fl->log_format->formatters[0]->name, "envoy.formatter.req_without_query");
    assert_string_equal(fl->log_format->formatters[1]->name, "envoy.formatter.metadata");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    l = listener(&set, "0.0.0.0_31400");
    tp = chain_tcp_proxy(l->filter_chains[0]);
    fl = file_log(tp->access_log, tp->n_access_log, "/dev/stdout");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

static void test_access_log_json(void **state)
{
    (void)state;
    xds_mesh_telemetry t = {.access_log_file = "/dev/stdout",
                            .access_log_encoding = XDS_ACCESS_LOG_JSON};
    xds_resource_set set;
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", &t, &set);
    Listener *l = listener(&set, "0.0.0.0_9080");
    HCM *h = chain_hcm(l->filter_chains[0]);
    FileLog *fl = file_log(h->access_log, h->n_access_log, "/dev/stdout");
    assert_int_equal(fl->log_format->format_case,
                     ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT);
    const Google__Protobuf__Struct *st = fl->log_format->json_format;
    assert_int_equal(st->n_fields, 24); /* istiod's EnvoyJSONLogFormatIstio */
    const Google__Protobuf__Value *v = struct_get(st, "upstream_cluster");
    assert_non_null(v);
    assert_string_equal(v->string_value, "%UPSTREAM_CLUSTER%");
    assert_non_null(fl->log_format->json_format_options);
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);

    t.access_log_format = "{\"path\": \"%REQ_WITHOUT_QUERY(:PATH)%\", \"n\": {\"code\": "
                          "\"%RESPONSE_CODE%\"}}";
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", &t, &set);
    l = listener(&set, "0.0.0.0_9080");
    h = chain_hcm(l->filter_chains[0]);
    fl = file_log(h->access_log, h->n_access_log, "/dev/stdout");
    st = fl->log_format->json_format;
    assert_int_equal(st->n_fields, 2);
    v = struct_get(st, "n");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    assert_string_equal(struct_get(v->struct_value, "code")->string_value, "%RESPONSE_CODE%");
    assert_int_equal(fl->log_format->n_formatters, 1);
    assert_string_equal(fl->log_format->formatters[0]->name, "envoy.formatter.req_without_query");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);

    /* not a JSON object: istiod's default format */
    t.access_log_format = "[1, 2]";
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", &t, &set);
    l = listener(&set, "0.0.0.0_9080");
    h = chain_hcm(l->filter_chains[0]);
    fl = file_log(h->access_log, h->n_access_log, "/dev/stdout");
    assert_int_equal(fl->log_format->json_format->n_fields, 24);
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

/* defaultProviders.metrics without prometheus: no istio.stats; the exchange stays (istiod
 * adds it whatever the providers). */
static void test_no_metrics(void **state)
{
    (void)state;
    xds_mesh_telemetry t = {.has_default_metrics = true}; /* defaultProviders.metrics: [] */
    xds_resource_set set;
    listeners(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app", &t, &set);
    char buf[512];
    Listener *l = listener(&set, "0.0.0.0_9080");
    HCM *h = chain_hcm(l->filter_chains[0]);
    hcm_names(h, buf, sizeof buf);
    assert_string_equal(buf, "istio.metadata_exchange,envoy.filters.http.cors,"
                             "envoy.filters.http.fault,envoy.filters.http.router");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    l = listener(&set, "virtualInbound");
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        chain_names(l->filter_chains[i], buf, sizeof buf);
        assert_null(strstr(buf, "istio.stats"));
    }
    protobuf_c_message_free_unpacked(&l->base, NULL);
    xds_resource_set_free(&set);
}

/* The client half of the TCP exchange rides on the cluster (istiod's TCPClusterMx). */
static void test_passthrough_cluster(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=app");
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_CLUSTER, NULL, 0, &set);
    const xds_resource *r = fx_find(&set, "PassthroughCluster");
    assert_non_null(r);
    Envoy__Config__Cluster__V3__Cluster *cl =
        envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->bytes);
    assert_non_null(cl);
    assert_int_equal(cl->n_filters, 1);
    assert_string_equal(cl->filters[0]->name, "istio.metadata_exchange");
    check_typed_struct(cl->filters[0]->typed_config, TCP_MX, "enable_discovery");
    protobuf_c_message_free_unpacked(&cl->base, NULL);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

/* Proxyless gRPC gets none of it (Envoy's extensions only). */
static void test_grpc_untouched(void **state)
{
    (void)state;
    xds_gen *g = xds_gen_new();
    xds_mesh_telemetry t = {.access_log_file = "/dev/stdout"};
    xds_gen_set_mesh_telemetry(g, &t);
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_GRPC, "default", "10.1.0.5", "app=app");
    const char *names[] = {"xds.istio.io/grpc/lds/inbound/10.1.0.5:9080"};
    xds_resource_set set;
    fx_gen(g, p, snap, XDS_TYPE_LISTENER, names, 1, &set);
    assert_int_equal(set.n, 1);
    for (size_t i = 0; i < set.n; i++) {
        Listener *l = envoy__config__listener__v3__listener__unpack(NULL, set.items[i]->len,
                                                                    set.items[i]->bytes);
        assert_non_null(l);
        for (size_t k = 0; k < l->n_filter_chains; k++) {
            HCM *h = chain_hcm(l->filter_chains[k]);
            char buf[512];
            hcm_names(h, buf, sizeof buf);
            assert_null(strstr(buf, "istio."));
            assert_int_equal(h->n_access_log, 0);
            protobuf_c_message_free_unpacked(&h->base, NULL);
        }
        protobuf_c_message_free_unpacked(&l->base, NULL);
    }
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sidecar_inbound),
        cmocka_unit_test(test_sidecar_outbound),
        cmocka_unit_test(test_gateway),
        cmocka_unit_test(test_access_log_text),
        cmocka_unit_test(test_access_log_json),
        cmocka_unit_test(test_no_metrics),
        cmocka_unit_test(test_passthrough_cluster),
        cmocka_unit_test(test_grpc_untouched),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
