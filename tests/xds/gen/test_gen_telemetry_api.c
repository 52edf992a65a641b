/* test_gen_telemetry_api: the Telemetry API (telemetry.istio.io) as istiod 1.24 applies it to
 * Envoy listeners: which Telemetries apply (root namespace, namespace, workload selector),
 * metrics merged per provider and mode into istio.stats configs, access logging merged per
 * provider and class into file access logs with CEL filters, mesh config defaultProviders
 * and extensionProviders, and the cache keys and memo classes that carry them.
 *
 * The metrics and access logging tables are istiod's own TestTelemetryFilters
 * (pilot/pkg/model/telemetry_test.go) and TestAccessLogging / TestAccessLoggingWithFilter
 * (telemetry_logging_test.go), case by case under the same names, with their Telemetries as
 * YAML and their expectations read from the generated listeners: the stats configs as
 * compact JSON (istiod's protojson with proto names), the access logs as the providers
 * they come from ("legacy": istiod falls back to mesh config accessLogFile). The waypoint
 * and service-attached (targetRef) cases are left out: we serve neither. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* app (HTTP 9080, TCP 5432) at 10.1.0.5, labels app=test, and a Gateway in default that
 * selects the same labels (the gateway class). */
static const char *const base_yaml =
    "apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: default}\n"
    "spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 9080}, {name: tcp-db, port: 5432}],"
    " selector: {app: test}}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: app-1, namespace: default, labels: {app: test}}\n"
    "spec: {serviceAccountName: app}\nstatus: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}\n---\n"
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: app-1, namespace: "
    "default, labels: {kubernetes.io/service-name: app}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9080, protocol: TCP}, {name: tcp-db, port: "
    "5432, protocol: TCP}]\nendpoints:\n"
    "- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: app-1, namespace: default}}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
    "spec:\n  selector: {app: test}\n  servers:\n"
    "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app-gw, "
    "namespace: default}\n"
    "spec:\n  hosts: ['*']\n  gateways: [gw]\n"
    "  http: [{route: [{destination: {host: app, port: {number: 9080}}}]}]\n";

/* A Telemetry document: name, namespace, spec (YAML flow style). */
#define TEL(name, ns, spec)                                                                        \
    "---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: " name              \
    ", namespace: " ns "}\nspec: " spec "\n"

/* ---- reading the generated listeners --------------------------------------------------- */

static cJSON *listener_json(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    if (!r)
        fail_msg("no listener %s", name);
    cJSON *j = xds_resource_to_json(r);
    assert_non_null(j);
    return j;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const cJSON *tc(const cJSON *filter)
{
    return get(filter, "typed_config");
}

/* The HCM of the first chain of l that has one (destination port port, 0: any), or NULL. */
static const cJSON *hcm_of(const cJSON *l, uint32_t port)
{
    const cJSON *fc;
    cJSON_ArrayForEach(fc, get(l, "filter_chains"))
    {
        const cJSON *m = get(get(fc, "filter_chain_match"), "destination_port");
        if (port && (!cJSON_IsNumber(m) || (uint32_t)m->valuedouble != port))
            continue;
        const cJSON *f;
        cJSON_ArrayForEach(f, get(fc, "filters"))
        {
            const cJSON *n = get(f, "name");
            if (cJSON_IsString(n) &&
                !strcmp(n->valuestring, "envoy.filters.network.http_connection_manager"))
                return tc(f);
        }
    }
    return NULL;
}

/* The istio.stats configs of a filter list, compact JSON joined by '|'. */
static void stats_of(const cJSON *filters, strbuf *out)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, filters)
    {
        const cJSON *n = get(f, "name");
        if (!cJSON_IsString(n) || strcmp(n->valuestring, "istio.stats") != 0)
            continue;
        char *s = cJSON_PrintUnformatted(get(tc(f), "value"));
        strbuf_appendf(out, "%s%s", out->len ? "|" : "", s);
        free(s);
    }
}

/* "provider[?cel]" for each access log, by path: /dev/stdout is the built-in envoy, /dev/X
 * the provider X, /dev/legacy mesh config's accessLogFile. */
static void logs_of(const cJSON *logs, strbuf *out)
{
    const cJSON *al;
    cJSON_ArrayForEach(al, logs)
    {
        const cJSON *path = get(tc(al), "path");
        const char *p = cJSON_IsString(path) ? path->valuestring : "?";
        if (!strcmp(p, "/dev/stdout"))
            p = "envoy";
        else if (!strncmp(p, "/dev/", 5))
            p += 5;
        strbuf_appendf(out, "%s%s", out->len ? "," : "", p);
        const cJSON *flt = get(al, "filter");
        const cJSON *and = get(get(flt, "and_filter"), "filters");
        const cJSON *x;
        if (get(flt, "response_flag_filter"))
            strbuf_appendf(out, "+NR");
        cJSON_ArrayForEach(x, and)
        {
            if (get(x, "response_flag_filter"))
                strbuf_appendf(out, "+NR");
            else
                flt = x;
        }
        const cJSON *e = get(tc(get(flt, "extension_filter")), "expression");
        if (cJSON_IsString(e))
            strbuf_appendf(out, "?%s", e->valuestring);
    }
}

typedef enum { C_OUT_HTTP, C_OUT_TCP, C_IN_HTTP, C_GATEWAY, C_VIRTUAL_OUT, C_VIRTUAL_IN } cls;

/* What a class of listener gets under telemetry settings mt: its stats configs and its
 * access logs (of the HCM or tcp_proxy; for C_VIRTUAL_* the listener's own). */
static void observe(const mesh_snapshot *s, const xds_mesh_telemetry *mt, cls k, strbuf *stats,
                    strbuf *logs)
{
    xds_gen *g = xds_gen_new();
    xds_gen_set_mesh_telemetry(g, mt);
    xds_proxy *p = fx_proxy(k == C_GATEWAY ? XDS_FLAVOUR_ENVOY_GATEWAY : XDS_FLAVOUR_ENVOY_SIDECAR,
                            "default", "10.1.0.5", "app=test");
    xds_resource_set set;
    fx_gen(g, p, s, XDS_TYPE_LISTENER, NULL, 0, &set);
    strbuf_init(stats, 0);
    strbuf_init(logs, 0);
    cJSON *l = NULL;
    const cJSON *h = NULL;
    switch (k) {
    case C_OUT_HTTP:
        l = listener_json(&set, "0.0.0.0_9080");
        h = hcm_of(l, 0);
        break;
    case C_IN_HTTP:
        l = listener_json(&set, "virtualInbound");
        h = hcm_of(l, 9080);
        break;
    case C_GATEWAY:
        l = listener_json(&set, "0.0.0.0_80");
        h = hcm_of(l, 0);
        break;
    case C_OUT_TCP: {
        l = listener_json(&set, "10.0.0.10_5432");
        const cJSON *fcs = get(l, "filter_chains");
        const cJSON *filters = get(cJSON_GetArrayItem(fcs, cJSON_GetArraySize(fcs) - 1), "filters");
        stats_of(filters, stats);
        logs_of(get(tc(cJSON_GetArrayItem(filters, cJSON_GetArraySize(filters) - 1)), "access_log"),
                logs);
        break;
    }
    case C_VIRTUAL_OUT:
    case C_VIRTUAL_IN:
        l = listener_json(&set, k == C_VIRTUAL_OUT ? "virtualOutbound" : "virtualInbound");
        logs_of(get(l, "access_log"), logs);
        break;
    }
    if (h) {
        stats_of(get(h, "http_filters"), stats);
        logs_of(get(h, "access_log"), logs);
    } else if (k == C_OUT_HTTP || k == C_IN_HTTP || k == C_GATEWAY) {
        fail_msg("no HCM in class %d", (int)k);
    }
    cJSON_Delete(l);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
}

static mesh_snapshot *snap_with(const char *tel)
{
    mesh_snapshot *s = fx_snapshot(base_yaml, tel ? tel : "", NULL);
    assert_non_null(s);
    return s;
}

/* ---- metrics: istiod's TestTelemetryFilters ------------------------------------------ */

#define PROM "providers: [{name: prometheus}]"
#define OVERRIDES                                                                                  \
    "overrides: [{match: {metric: REQUEST_COUNT}, tagOverrides: {remove: {operation: REMOVE}, "    \
    "add: {operation: UPSERT, value: bar}}}]"
#define DISABLED_ALL                                                                               \
    "{metrics: [{overrides: [{match: {metric: ALL_METRICS}, disabled: true}], " PROM "}]}"
#define EMPTY_PROM "{metrics: [{" PROM "}]}"
#define OVERRIDES_PROM "{metrics: [{" PROM ", " OVERRIDES "}]}"
#define CFG                                                                                        \
    "{\"metrics\":[{\"dimensions\":{\"add\":\"bar\"},\"name\":\"requests_total\",\"tags_to_"       \
    "remove\":[\"remove\"]}]}"
#define ALL_NAMES(d, rc)                                                                           \
    "{\"metrics\":[{" d "\"name\":\"request_messages_total\"" rc "},{" d                           \
    "\"name\":\"response_messages_total\"" rc "},{" d "\"name\":\"requests_total\"" rc "},{" d     \
    "\"name\":\"request_duration_milliseconds\"" rc "},{" d "\"name\":\"request_bytes\"" rc        \
    "},{" d "\"name\":\"response_bytes\"" rc "},{" d                                               \
    "\"name\":\"tcp_connections_closed_total\"" rc "},{" d                                         \
    "\"name\":\"tcp_connections_opened_total\"" rc "},{" d                                         \
    "\"name\":\"tcp_received_bytes_total\"" rc "},{" d "\"name\":\"tcp_sent_bytes_total\"" rc      \
    "}]}"
#define BAR "\"dimensions\":{\"add\":\"bar\"},"
#define RM ",\"tags_to_remove\":[\"remove\"]"

typedef struct mcase {
    const char *name;
    const char *tel;
    int defaults; /* 0: defaultProviders unset in istiod's test (metrics: []); 1: [prometheus] */
    cls k;
    const char *want;
} mcase;

static const mcase mcases[] = {
    {"empty", NULL, 0, C_OUT_HTTP, ""},
    {"disabled-prometheus", TEL("t0", "istio-system", DISABLED_ALL), 0, C_OUT_HTTP, ""},
    {"disabled-prometheus-implicit",
     TEL("t0", "istio-system", "{metrics: [{overrides: [{disabled: true}], " PROM "}]}"), 0,
     C_OUT_HTTP, ""},
    {"disabled-then-empty",
     TEL("t0", "istio-system", DISABLED_ALL) TEL("t1", "default", EMPTY_PROM), 0, C_OUT_HTTP, ""},
    {"disabled-then-reenable",
     TEL("t0", "istio-system", DISABLED_ALL) TEL(
         "t1", "default", "{metrics: [{" PROM ", overrides: [{match: {metric: ALL_METRICS}}]}]}"),
     0, C_OUT_HTTP, ALL_NAMES("", "")},
    {"disabled-then-overrides",
     TEL("t0", "istio-system", DISABLED_ALL) TEL("t1", "default", OVERRIDES_PROM), 0, C_OUT_HTTP,
     CFG},
    {"default prometheus", TEL("t0", "istio-system", EMPTY_PROM), 0, C_OUT_HTTP, "{}"},
    {"default provider prometheus", NULL, 1, C_OUT_HTTP, "{}"},
    {"prometheus overrides", TEL("t0", "istio-system", OVERRIDES_PROM), 0, C_OUT_HTTP, CFG},
    {"prometheus overrides all metrics",
     TEL("t0", "istio-system",
         "{metrics: [{" PROM ", overrides: [{tagOverrides: {remove: {operation: REMOVE}, add: "
         "{operation: UPSERT, value: bar}}}]}]}"),
     0, C_OUT_HTTP, ALL_NAMES(BAR, RM)},
    {"prometheus overrides all metrics first",
     TEL("t0", "istio-system",
         "{metrics: [{" PROM ", overrides: [{tagOverrides: {remove: {operation: REMOVE}, add: "
         "{operation: UPSERT, value: bar}}}, {match: {metric: REQUEST_COUNT}, tagOverrides: "
         "{add: {value: add-override}}}]}]}"),
     0, C_OUT_HTTP,
     "{\"metrics\":[{" BAR "\"name\":\"request_messages_total\"" RM "},{" BAR
     "\"name\":\"response_messages_total\"" RM "},{\"dimensions\":{\"add\":\"add-override\"},"
     "\"name\":\"requests_total\"" RM "},{" BAR "\"name\":\"request_duration_milliseconds\"" RM
     "},{" BAR "\"name\":\"request_bytes\"" RM "},{" BAR "\"name\":\"response_bytes\"" RM "},{" BAR
     "\"name\":\"tcp_connections_closed_total\"" RM "},{" BAR
     "\"name\":\"tcp_connections_opened_total\"" RM "},{" BAR
     "\"name\":\"tcp_received_bytes_total\"" RM "},{" BAR "\"name\":\"tcp_sent_bytes_total\"" RM
     "}]}"},
    {"prometheus overrides all metrics secondary",
     TEL("t0", "istio-system",
         "{metrics: [{" PROM ", overrides: [{match: {metric: REQUEST_COUNT}, tagOverrides: {add: "
         "{value: add-override}}}, {tagOverrides: {remove: {operation: REMOVE}, add: "
         "{operation: UPSERT, value: bar}}}]}]}"),
     0, C_OUT_HTTP, ALL_NAMES(BAR, RM)},
    {"prometheus overrides TCP", TEL("t0", "istio-system", OVERRIDES_PROM), 0, C_OUT_TCP, CFG},
    {"reporting-interval",
     TEL("t0", "istio-system", "{metrics: [{" PROM ", reportingInterval: 15s}]}"), 0, C_OUT_HTTP,
     "{\"tcp_reporting_duration\":\"15s\"}"},
    {"override-interval",
     TEL("t0", "istio-system", "{metrics: [{" PROM ", reportingInterval: 15s}]}")
         TEL("t1", "default", "{metrics: [{" PROM ", reportingInterval: 10s}]}"),
     0, C_OUT_HTTP, "{\"tcp_reporting_duration\":\"10s\"}"},
    {"namespace overrides merge without provider",
     TEL("t0", "istio-system", EMPTY_PROM) TEL("t1", "default", "{metrics: [{" OVERRIDES "}]}"), 0,
     C_OUT_HTTP, CFG},
    {"namespace overrides merge with default provider",
     TEL("t1", "default", "{metrics: [{" OVERRIDES "}]}"), 1, C_OUT_HTTP, CFG},
    /* ours: the classes and modes istiod's table does not cover */
    {"server side: no Host fallback", TEL("t0", "istio-system", OVERRIDES_PROM), 0, C_IN_HTTP,
     "{\"disable_host_header_fallback\":true,\"metrics\":[{\"dimensions\":{\"add\":\"bar\"},"
     "\"name\":\"requests_total\",\"tags_to_remove\":[\"remove\"]}]}"},
    {"gateway: client metrics, no Host fallback", TEL("t0", "istio-system", OVERRIDES_PROM), 0,
     C_GATEWAY,
     "{\"disable_host_header_fallback\":true,\"metrics\":[{\"dimensions\":{\"add\":\"bar\"},"
     "\"name\":\"requests_total\",\"tags_to_remove\":[\"remove\"]}]}"},
    {"client disabled: the server side keeps its filter",
     TEL("t0", "default", "{metrics: [{overrides: [{match: {mode: CLIENT}, disabled: true}]}]}"), 1,
     C_IN_HTTP, "{\"disable_host_header_fallback\":true}"},
    {"client disabled: no client filter",
     TEL("t0", "default", "{metrics: [{overrides: [{match: {mode: CLIENT}, disabled: true}]}]}"), 1,
     C_OUT_TCP, ""},
    {"one metric dropped, per mode",
     TEL("t0", "default",
         "{metrics: [{overrides: [{match: {metric: TCP_SENT_BYTES, mode: SERVER}, disabled: "
         "true}, {match: {customMetric: my_total}, disabled: false}]}]}"),
     1, C_IN_HTTP,
     "{\"disable_host_header_fallback\":true,\"metrics\":[{\"name\":\"tcp_sent_bytes_total\","
     "\"drop\":true},{\"name\":\"my_total\"}]}"},
    {"workload selector over namespace",
     TEL("t0", "default", "{metrics: [{" OVERRIDES "}]}")
         TEL("t1", "default",
             "{selector: {matchLabels: {app: test}}, metrics: [{overrides: [{match: {metric: "
             "REQUEST_COUNT}, tagOverrides: {add: {value: workload}}}]}]}")
             TEL("t2", "default",
                 "{selector: {matchLabels: {app: other}}, metrics: [{overrides: [{disabled: "
                 "true}]}]}"),
     1, C_OUT_HTTP,
     "{\"metrics\":[{\"dimensions\":{\"add\":\"workload\"},\"name\":\"requests_total\","
     "\"tags_to_remove\":[\"remove\"]}]}"},
    {"another namespace's Telemetry does not apply",
     TEL("t0", "other", "{metrics: [{overrides: [{disabled: true}]}]}"), 1, C_OUT_HTTP, "{}"},
    {"a targetRef Telemetry does not apply to sidecars",
     TEL("t0", "default",
         "{targetRef: {kind: Service, name: app}, metrics: [{overrides: [{disabled: true}]}]}"),
     1, C_OUT_HTTP, "{}"},
    {"a provider that is not prometheus: no filter",
     TEL("t0", "istio-system", "{metrics: [{providers: [{name: stackdriver}]}]}"), 1, C_OUT_HTTP,
     ""},
    {"two prometheus providers, by name",
     TEL("t0", "istio-system",
         "{metrics: [{providers: [{name: prometheus}, {name: prom-b}], "
         "reportingInterval: 5s}]}"),
     1, C_OUT_HTTP, "{\"tcp_reporting_duration\":\"5s\"}|{\"tcp_reporting_duration\":\"5s\"}"},
};

static xds_tel_provider test_providers[] = {
    {.name = "envoy-json",
     .kind = XDS_TEL_PROVIDER_FILE_LOG,
     .path = "/dev/envoy-json",
     .format = XDS_TEL_LOG_FORMAT_LABELS},
    {.name = "prom-b", .kind = XDS_TEL_PROVIDER_PROMETHEUS},
    {.name = "zipkin", .kind = XDS_TEL_PROVIDER_OTHER},
};

static char *prometheus_only[] = {"prometheus"};

static void test_metrics(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mcases / sizeof mcases[0]; i++) {
        const mcase *t = &mcases[i];
        mesh_snapshot *s = snap_with(t->tel);
        xds_mesh_telemetry mt = {.has_default_metrics = true,
                                 .default_metrics = {prometheus_only, t->defaults ? 1 : 0},
                                 .providers = test_providers,
                                 .nproviders = 3};
        strbuf stats, logs;
        observe(s, &mt, t->k, &stats, &logs);
        if (strcmp(stats.data ? stats.data : "", t->want) != 0)
            fail_msg("metrics case %s:\n  got  %s\n  want %s", t->name, stats.data, t->want);
        assert_int_equal(logs.len, 0); /* no accessLogFile, no logging providers */
        strbuf_free(&stats);
        strbuf_free(&logs);
        mesh_snapshot_release(s);
    }
}

/* ---- access logging: istiod's TestAccessLogging and TestAccessLoggingWithFilter ---------- */

#define AL(body) "{accessLogging: [" body "]}"
#define ENVOY AL("{providers: [{name: envoy}]}")
#define CLIENT AL("{match: {mode: CLIENT}, providers: [{name: envoy}]}")
#define CLIENT_DISABLED AL("{match: {mode: CLIENT}, providers: [{name: envoy}], disabled: true}")
#define SERVER AL("{match: {mode: SERVER}, providers: [{name: envoy}]}")
#define SERVER_DISABLED AL("{match: {mode: SERVER}, providers: [{name: envoy}], disabled: true}")
#define SERVER_AND_CLIENT AL("{match: {mode: CLIENT_AND_SERVER}, providers: [{name: envoy}]}")
#define DEFAULT_JSON AL("{providers: [{name: envoy-json}]}")
#define SC_DIFFERENT                                                                               \
    AL("{match: {mode: SERVER}, providers: [{name: envoy}]}, {match: {mode: CLIENT}, providers: "  \
       "[{name: envoy-json}]}")

typedef struct lcase {
    const char *name;
    const char *tel;
    cls k;
    const char *defaults; /* defaultProviders.accessLogging, one name or NULL */
    const char *want;     /* "legacy": no Telemetry access logging, mesh config's log */
} lcase;

static const lcase lcases[] = {
    {"empty", NULL, C_OUT_HTTP, NULL, "legacy"},
    {"prometheus-mesh", TEL("t0", "istio-system", "{metrics: [{providers: [{name: envoy}]}]}"),
     C_OUT_HTTP, NULL, "legacy"},
    {"prometheus-namespace", TEL("t0", "default", "{metrics: [{providers: [{name: envoy}]}]}"),
     C_OUT_HTTP, NULL, "legacy"},
    {"prometheus-workload",
     TEL("t0", "default",
         "{selector: {matchLabels: {app: test}}, metrics: [{providers: [{name: envoy}]}]}"),
     C_OUT_HTTP, NULL, "legacy"},
    {"default provider only", NULL, C_OUT_HTTP, "envoy", "envoy"},
    {"provider only", TEL("t0", "istio-system", ENVOY), C_OUT_HTTP, NULL, "envoy"},
    {"client - gateway", TEL("t0", "istio-system", CLIENT), C_GATEWAY, NULL, "envoy"},
    {"client - outbound", TEL("t0", "istio-system", CLIENT), C_OUT_HTTP, NULL, "envoy"},
    {"client - inbound", TEL("t0", "istio-system", CLIENT), C_IN_HTTP, NULL, "legacy"},
    {"client - disabled server",
     TEL("t0", "istio-system", CLIENT) TEL("t1", "default", SERVER_DISABLED), C_OUT_HTTP, NULL,
     "envoy"},
    {"client - disabled client",
     TEL("t0", "istio-system", CLIENT) TEL("t1", "default", CLIENT_DISABLED), C_OUT_HTTP, NULL, ""},
    {"client - disabled - enabled",
     TEL("t0", "istio-system", CLIENT) TEL("t1", "default", CLIENT_DISABLED)
         TEL("t2", "default",
             "{selector: {matchLabels: {app: test}}, accessLogging: [{match: {mode: CLIENT}, "
             "providers: [{name: envoy}]}]}"),
     C_OUT_HTTP, NULL, "envoy"},
    {"server - gateway", TEL("t0", "istio-system", SERVER), C_GATEWAY, NULL, "legacy"},
    {"server - inbound", TEL("t0", "istio-system", SERVER), C_IN_HTTP, NULL, "envoy"},
    {"server - outbound", TEL("t0", "istio-system", SERVER), C_OUT_HTTP, NULL, "legacy"},
    {"server and client - gateway", TEL("t0", "istio-system", SERVER_AND_CLIENT), C_GATEWAY, NULL,
     "envoy"},
    {"server and client - inbound", TEL("t0", "istio-system", SERVER_AND_CLIENT), C_IN_HTTP, NULL,
     "envoy"},
    {"server and client - outbound", TEL("t0", "istio-system", SERVER_AND_CLIENT), C_OUT_HTTP, NULL,
     "envoy"},
    {"override default", TEL("t0", "istio-system", ENVOY), C_OUT_HTTP, "stackdriver", "envoy"},
    {"override namespace", TEL("t0", "istio-system", ENVOY) TEL("t1", "default", DEFAULT_JSON),
     C_OUT_HTTP, NULL, "envoy-json"},
    {"empty config inherits", TEL("t0", "istio-system", ENVOY) TEL("t1", "default", AL("{}")),
     C_OUT_HTTP, NULL, "envoy"},
    {"stackdriver",
     TEL("t0", "istio-system", ENVOY)
         TEL("t1", "default", AL("{providers: [{name: stackdriver}]}")),
     C_OUT_HTTP, NULL, "legacy"},
    {"default envoy JSON", TEL("t0", "istio-system", DEFAULT_JSON), C_OUT_HTTP, NULL, "envoy-json"},
    {"disable config",
     TEL("t0", "istio-system", ENVOY) TEL("t1", "default", AL("{disabled: true}")), C_OUT_HTTP,
     NULL, ""},
    {"disable default", TEL("t1", "default", AL("{disabled: true}")), C_OUT_HTTP, "envoy", ""},
    {"non existing", TEL("t1", "default", AL("{providers: [{name: custom-provider}]}")), C_OUT_HTTP,
     "envoy", "legacy"},
    {"server - multi filters",
     TEL("t0", "istio-system",
         AL("{match: {mode: SERVER}, providers: [{name: envoy}]}, {match: {mode: "
            "CLIENT_AND_SERVER}, providers: [{name: envoy}]}")),
     C_OUT_HTTP, NULL, "envoy"},
    {"server - multi filters disabled",
     TEL("t0", "istio-system",
         AL("{match: {mode: SERVER}, providers: [{name: envoy}]}, {match: {mode: "
            "CLIENT_AND_SERVER}, providers: [{name: envoy}], disabled: true}")),
     C_OUT_HTTP, NULL, ""},
    {"multi accesslogging",
     TEL("t0", "istio-system", ENVOY) TEL(
         "t1", "default", AL("{providers: [{name: envoy}]}, {providers: [{name: envoy-json}]}")),
     C_OUT_HTTP, NULL, "envoy,envoy-json"},
    {"multi accesslogging with disabled",
     TEL("t0", "istio-system", ENVOY)
         TEL("t1", "default",
             AL("{providers: [{name: envoy}]}, {providers: [{name: envoy-json}], disabled: true}")),
     C_OUT_HTTP, NULL, "envoy"},
    {"multi accesslogging - multi providers",
     TEL("t0", "istio-system", ENVOY)
         TEL("t1", "default",
             AL("{providers: [{name: envoy}, {name: envoy-json}]}, {providers: [{name: envoy}]}")),
     C_OUT_HTTP, NULL, "envoy,envoy-json"},
    {"server and client different - inbound", TEL("t0", "istio-system", SC_DIFFERENT), C_IN_HTTP,
     NULL, "envoy"},
    {"server and client different - outbound", TEL("t0", "istio-system", SC_DIFFERENT), C_OUT_HTTP,
     NULL, "envoy-json"},
    /* TestAccessLoggingWithFilter (outbound) */
    {"filter",
     TEL("t0", "default",
         AL("{providers: [{name: envoy-json}], filter: {expression: 'response.code >= 400'}}")),
     C_OUT_HTTP, "envoy", "envoy-json?response.code >= 400"},
    {"namespace-filter",
     TEL("t0", "istio-system",
         AL("{providers: [{name: envoy-json}], filter: {expression: 'response.code >= 400'}}"))
         TEL("t1", "default",
             AL("{providers: [{name: envoy-json}], filter: {expression: 'response.code >= "
                "500'}}")),
     C_OUT_HTTP, "envoy", "envoy-json?response.code >= 500"},
    {"multi-accesslogging",
     TEL("t0", "default",
         AL("{providers: [{name: envoy-json}], filter: {expression: 'response.code >= 500'}}, "
            "{providers: [{name: envoy-json}], filter: {expression: 'response.code >= 400'}}")),
     C_OUT_HTTP, "envoy", "envoy-json?response.code >= 400"},
    {"multi-accesslogging-nil",
     TEL("t0", "default",
         AL("{providers: [{name: envoy-json}], filter: {expression: 'response.code >= 500'}}, "
            "{providers: [{name: envoy-json}]}")),
     C_OUT_HTTP, "envoy", "envoy-json"},
    {"server-and-client-different",
     TEL("t0", "default",
         AL("{match: {mode: CLIENT}, providers: [{name: envoy-json}], filter: {expression: "
            "'response.code >= 500'}}, {match: {mode: SERVER}, providers: [{name: envoy-json}], "
            "filter: {expression: 'response.code >= 400'}}")),
     C_OUT_HTTP, "envoy", "envoy-json?response.code >= 500"},
    /* ours: tcp_proxy and the listeners' own (NR) logs follow the same rules */
    {"tcp_proxy", TEL("t0", "istio-system", CLIENT), C_OUT_TCP, NULL, "envoy"},
    {"virtualOutbound: NR and the filter",
     TEL("t0", "istio-system",
         AL("{providers: [{name: envoy}], filter: {expression: 'response.code >= 400'}}")),
     C_VIRTUAL_OUT, NULL, "envoy+NR?response.code >= 400"},
    {"virtualInbound: server logs disabled", TEL("t0", "istio-system", SERVER_DISABLED),
     C_VIRTUAL_IN, "envoy", ""},
    {"virtualInbound: legacy NR log", NULL, C_VIRTUAL_IN, NULL, "legacy+NR"},
    {"a kind of provider without access logs",
     TEL("t0", "default", AL("{providers: [{name: zipkin}]}")), C_OUT_HTTP, NULL, "legacy"},
    {"provider names ignore case", TEL("t0", "default", AL("{providers: [{name: Envoy-JSON}]}")),
     C_OUT_HTTP, NULL, "envoy-json"},
};

static void test_access_logging(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lcases / sizeof lcases[0]; i++) {
        const lcase *t = &lcases[i];
        mesh_snapshot *s = snap_with(t->tel);
        char *dflt[1] = {(char *)t->defaults};
        xds_mesh_telemetry mt = {.access_log_file = "/dev/legacy",
                                 .default_access_logging = {dflt, t->defaults ? 1 : 0},
                                 .providers = test_providers,
                                 .nproviders = 3};
        strbuf stats, logs;
        observe(s, &mt, t->k, &stats, &logs);
        if (strcmp(logs.data ? logs.data : "", t->want) != 0)
            fail_msg("logging case %s:\n  got  %s\n  want %s", t->name, logs.data, t->want);
        strbuf_free(&stats);
        strbuf_free(&logs);
        mesh_snapshot_release(s);
    }
}

/* The provider's format: the built-in envoy follows mesh config's encoding; envoy-json
 * (labels without any) is istiod's default JSON; a text provider its text. */
static void test_provider_formats(void **state)
{
    (void)state;
    mesh_snapshot *s = snap_with(
        TEL("t0", "istio-system",
            AL("{providers: [{name: envoy}, {name: envoy-json}, {name: text}, {name: labels}]}")));
    xds_tel_provider ps[] = {
        {.name = "envoy-json",
         .kind = XDS_TEL_PROVIDER_FILE_LOG,
         .format = XDS_TEL_LOG_FORMAT_LABELS},
        {.name = "text",
         .kind = XDS_TEL_PROVIDER_FILE_LOG,
         .path = "/dev/text",
         .format = XDS_TEL_LOG_FORMAT_TEXT,
         .text = "%START_TIME% %REQ_WITHOUT_QUERY(:PATH)%"},
        {.name = "labels",
         .kind = XDS_TEL_PROVIDER_FILE_LOG,
         .path = "/dev/labels",
         .format = XDS_TEL_LOG_FORMAT_LABELS,
         .labels = "{\"code\":\"%RESPONSE_CODE%\"}"},
    };
    xds_mesh_telemetry mt = {.access_log_encoding = XDS_ACCESS_LOG_JSON,
                             .access_log_format = "{\"mesh\":\"%START_TIME%\"}",
                             .providers = ps,
                             .nproviders = 3};
    xds_gen *g = xds_gen_new();
    xds_gen_set_mesh_telemetry(g, &mt);
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=test");
    xds_resource_set set;
    fx_gen(g, p, s, XDS_TYPE_LISTENER, NULL, 0, &set);
    cJSON *l = listener_json(&set, "0.0.0.0_9080");
    const cJSON *logs = get(hcm_of(l, 0), "access_log");
    assert_int_equal(cJSON_GetArraySize(logs), 4);
    /* sorted by provider name: envoy, envoy-json, labels, text */
    const cJSON *f0 = get(tc(cJSON_GetArrayItem(logs, 0)), "log_format");
    char *s0 = cJSON_PrintUnformatted(get(f0, "json_format"));
    assert_string_equal(s0, "{\"mesh\":\"%START_TIME%\"}");
    free(s0);
    const cJSON *a1 = tc(cJSON_GetArrayItem(logs, 1));
    assert_string_equal(get(a1, "path")->valuestring, "/dev/stdout");
    assert_non_null(get(get(get(a1, "log_format"), "json_format"), "upstream_cluster"));
    const cJSON *f2 = get(tc(cJSON_GetArrayItem(logs, 2)), "log_format");
    char *s2 = cJSON_PrintUnformatted(get(f2, "json_format"));
    assert_string_equal(s2, "{\"code\":\"%RESPONSE_CODE%\"}");
    free(s2);
    const cJSON *f3 = get(tc(cJSON_GetArrayItem(logs, 3)), "log_format");
    assert_string_equal(get(get(f3, "text_format_source"), "inline_string")->valuestring,
                        "%START_TIME% %REQ_WITHOUT_QUERY(:PATH)%\n");
    /* the operator needs its formatter extension */
    assert_string_equal(get(cJSON_GetArrayItem(get(f3, "formatters"), 0), "name")->valuestring,
                        "envoy.formatter.req_without_query");
    cJSON_Delete(l);
    xds_resource_set_free(&set);
    xds_proxy_free(p);
    xds_gen_free(g);
    mesh_snapshot_release(s);
}

/* ---- keys and memo classes ------------------------------------------------------------- */

static const xds_resource *find_res(const xds_resource_set *set, const char *name)
{
    const xds_resource *r = fx_find(set, name);
    assert_non_null(r);
    return r;
}

/* A selector Telemetry makes listeners depend on the labels; a namespace one on the
 * namespace; without Telemetries, proxies of different namespaces and labels share the
 * outbound HTTP listener's bytes (one cached resource) when tracing is off; with istiod's
 * default tracing on, the span tags name the proxy's namespace, so they do not. */
static void test_keys(void **state)
{
    (void)state;
    for (int tracing = 0; tracing < 2; tracing++) {
        mesh_snapshot *s =
            snap_with(TEL("t0", "default",
                          "{selector: {matchLabels: {app: test}}, metrics: [{overrides: "
                          "[{match: {mode: CLIENT}, disabled: true}]}]}")
                          TEL("t1", "other", AL("{providers: [{name: envoy}]}")));
        xds_gen *g = xds_gen_new();
        xds_mesh_telemetry mt = {.tracing_off = !tracing};
        xds_gen_set_mesh_telemetry(g, &mt);
        xds_proxy *a = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=test");
        xds_proxy *b = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.6", "app=else");
        xds_proxy *c = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "other", "10.1.0.7", "app=else");
        xds_proxy *d = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "third", "10.1.0.8", "app=test");
        xds_resource_set sa, sb, sc, sd;
        fx_gen(g, a, s, XDS_TYPE_LISTENER, NULL, 0, &sa);
        fx_gen(g, b, s, XDS_TYPE_LISTENER, NULL, 0, &sb);
        fx_gen(g, c, s, XDS_TYPE_LISTENER, NULL, 0, &sc);
        fx_gen(g, d, s, XDS_TYPE_LISTENER, NULL, 0, &sd);
        const xds_resource *ra = find_res(&sa, "0.0.0.0_9080"), *rb = find_res(&sb, "0.0.0.0_9080");
        const xds_resource *rc = find_res(&sc, "0.0.0.0_9080"), *rd = find_res(&sd, "0.0.0.0_9080");
        assert_true(ra->hash != rb->hash); /* a: no client stats */
        assert_true(rc->hash != rb->hash); /* c: access logs */
        if (!tracing) {
            assert_true(rb == rd); /* no Telemetry applies to either: shared bytes */
        } else {
            assert_true(rb->hash != rd->hash); /* istio.namespace default vs third */
            cJSON *j = xds_resource_to_json(rd);
            char *txt = cJSON_PrintUnformatted(j);
            assert_non_null(
                strstr(txt, "{\"tag\":\"istio.namespace\",\"literal\":{\"value\":\"third\"}}"));
            free(txt);
            cJSON_Delete(j);
        }
        xds_resource_set_free(&sa);
        xds_resource_set_free(&sb);
        xds_resource_set_free(&sc);
        xds_resource_set_free(&sd);
        xds_proxy_free(a);
        xds_proxy_free(b);
        xds_proxy_free(c);
        xds_proxy_free(d);
        xds_gen_free(g);
        mesh_snapshot_release(s);
    }
}

/* A Telemetry change reaches Envoy listeners (and only them among the Envoy types that do
 * not read every kind). */
static void test_type_kinds(void **state)
{
    (void)state;
    const uint32_t tel = 1u << MESH_KIND_TELEMETRY;
    xds_proxy *sc = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5", "app=test");
    xds_proxy *gw = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "default", "10.1.0.5", "app=test");
    xds_proxy *gr = fx_proxy(XDS_FLAVOUR_GRPC, "default", "10.1.0.5", "app=test");
    assert_true(xds_type_kinds(sc, NULL, XDS_TYPE_LISTENER) & tel);
    assert_true(xds_type_kinds(gw, NULL, XDS_TYPE_LISTENER) & tel);
    assert_false(xds_type_kinds(sc, NULL, XDS_TYPE_CLUSTER) & tel);
    assert_false(xds_type_kinds(sc, NULL, XDS_TYPE_ENDPOINT) & tel);
    assert_false(xds_type_kinds(gr, NULL, XDS_TYPE_LISTENER) & tel); /* no telemetry filters */
    xds_proxy_free(sc);
    xds_proxy_free(gw);
    xds_proxy_free(gr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics),          cmocka_unit_test(test_access_logging),
        cmocka_unit_test(test_provider_formats), cmocka_unit_test(test_keys),
        cmocka_unit_test(test_type_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
