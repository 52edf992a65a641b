/* test_gen_tracing: the HCM tracing block and request ID extension as istiod 1.24 writes
 * them (pilot/pkg/networking/core/tracing.go), from mesh config (read by flags_mesh_parse,
 * as pilot-discovery reads --meshConfig) and Telemetry resources.
 *
 * The table is istiod's TestConfigureTracing (tracing_test.go), case by case under the same
 * names. istiod's test stubs the cluster lookup ("testcluster"/"testhost") and hands
 * configureTracingFromTelemetry a TracingConfig by hand; here each case goes the whole way
 * (mesh config and Telemetry YAML -> Telemetries.Tracing -> the listener), so:
 * - the collector is a real Service (zipkin.istio-system:9411, ...), named by FQDN, and the
 *   cluster and authority are its outbound cluster and hostname;
 * - the per-proxy ProxyConfig istiod's cases put in node metadata is mesh config's
 *   defaultConfig (what a proxy without its own PROXY_CONFIG gets);
 * - where istiod's hand-made spec has no provider and is not disabled (a spec
 *   Telemetries.Tracing never makes: no provider means disabled), the result is no tracing;
 * - useRequestIdForTraceSampling is true unless a Telemetry says otherwise (istiod's
 *   Tracing() starts each spec so; its hand-made "default providers" spec does not);
 * - providers we do not build (datadog, skywalking) give no tracing; the skywalking mode
 *   cases use zipkin;
 * - "with nil custom tag" under Telemetry and the resource detector / Dynatrace sampler
 *   cases are left out: our validation refuses a nil tag (as istiod's webhook), and
 *   resourceDetectors and samplers are not built. */
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
#include "pilot/flags.h"
#include "xds/gen/gen_internal.h"

/* app (HTTP 9080) at 10.1.0.5 in default, and the collectors of the cases. */
static const char *const base_yaml =
    "apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: default}\n"
    "spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 9080}], selector: {app: test}}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: app-1, namespace: default, labels: "
    "{app: test}}\n"
    "spec: {serviceAccountName: app}\nstatus: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}\n---\n"
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: app-1, namespace: "
    "default, labels: {kubernetes.io/service-name: app}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9080, protocol: TCP}]\nendpoints:\n"
    "- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: app-1, namespace: default}}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: zipkin, namespace: istio-system}\n"
    "spec: {clusterIP: 10.0.0.20, ports: [{name: http-query, port: 9411}]}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: otel-collector, namespace: istio-system}\n"
    "spec: {clusterIP: 10.0.0.21, ports: [{name: grpc-otlp, port: 4317}]}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: my-o11y-backend, namespace: istio-system}\n"
    "spec: {clusterIP: 10.0.0.22, ports: [{name: https, port: 443}]}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: tracing, "
    "namespace: istio-system}\n"
    "spec: {hosts: [tracing.example.com], ports: [{number: 8090, name: grpc, protocol: GRPC}], "
    "resolution: DNS, location: MESH_EXTERNAL}\n";

#define ZIPKIN_FQDN "zipkin.istio-system.svc.cluster.local"
#define ZIPKIN_CLUSTER "outbound|9411||" ZIPKIN_FQDN

/* mesh config extensionProviders entries */
#define P_ZIPKIN(extra)                                                                            \
    "- {name: foo, zipkin: {service: " ZIPKIN_FQDN ", port: 9411, maxTagLength: 256" extra "}}\n"
#define P_OTEL_GRPC                                                                                \
    "- {name: opentelemetry, opentelemetry: {service: otel-collector.istio-system.svc.cluster."    \
    "local, port: 4317, maxTagLength: 256}}\n"
#define P_OTEL_HTTP                                                                                \
    "- {name: opentelemetry, opentelemetry: {service: my-o11y-backend.istio-system.svc.cluster."   \
    "local, port: 443, maxTagLength: 256, http: {path: /v1/traces, timeout: 3s, headers: "         \
    "[{name: custom-header, value: custom-value}]}}}\n"
#define P_OTEL_GRPC_MD                                                                             \
    "- {name: opentelemetry, opentelemetry: {service: tracing.example.com, port: 8090, "           \
    "maxTagLength: 256, grpc: {timeout: 3s, initialMetadata: [{name: Authentication, value: "      \
    "token-xxxxx}]}}}\n"

/* the proxy config of istiod's fakeOptsNoTelemetryAPI / fakeOptsMeshAndTelemetryAPI */
#define PC_TRACING                                                                                 \
    "defaultConfig: {tracing: {sampling: 55.55, maxPathTagLength: 13, customTags: {test: "         \
    "{environment: {name: FOO}}}}}\n"

/* A root-namespace Telemetry with one tracing entry (YAML flow style). */
#define TEL(entry)                                                                                 \
    "---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh-default, "     \
    "namespace: istio-system}\nspec: {tracing: [" entry "]}\n"

/* the entry of istiod's fakeTracingSpec(provider, 99.999, false, true) */
#define SPEC(provider)                                                                             \
    "{providers: [{name: " provider "}], randomSamplingPercentage: 99.999, customTags: "           \
    "{test: {environment: {name: FOO}}}}"

/* expected JSON (xds_resource_to_json, compact) */
#define SAMPLING(r)                                                                                \
    "\"client_sampling\":{\"value\":100},\"random_sampling\":{\"value\":" r "},"                   \
    "\"overall_sampling\":{\"value\":100},"
#define DRY(tag, key)                                                                              \
    "{\"tag\":\"istio.authorization.dry_run." tag "\",\"metadata\":{\"kind\":{\"request\":{}},"    \
    "\"metadata_key\":{\"key\":\"envoy.filters.http.rbac\",\"path\":[{\"key\":\"istio_dry_"        \
    "run_" key "\"}]}}}"
#define LIT(tag, v) "{\"tag\":\"istio." tag "\",\"literal\":{\"value\":\"" v "\"}}"
/* istiod's default span tags for a proxy without labels, cluster or mesh ID, sorted */
#define DRY_ALLOW_NAME DRY("allow_policy.name", "allow_shadow_effective_policy_id")
#define DRY_ALLOW_RESULT DRY("allow_policy.result", "allow_shadow_engine_result")
#define DRY_DENY_NAME DRY("deny_policy.name", "deny_shadow_effective_policy_id")
#define DRY_DENY_RESULT DRY("deny_policy.result", "deny_shadow_engine_result")
#define LIT_REV LIT("canonical_revision", "latest")
#define LIT_SVC LIT("canonical_service", "unknown")
#define LIT_CLUSTER LIT("cluster_id", "unknown")
#define LIT_MESH LIT("mesh_id", "unknown")
#define LIT_NS LIT("namespace", "default")
#define TAGS                                                                                       \
    "\"custom_tags\":[" DRY_ALLOW_NAME "," DRY_ALLOW_RESULT "," DRY_DENY_NAME "," DRY_DENY_RESULT  \
    "," LIT_REV "," LIT_SVC "," LIT_CLUSTER "," LIT_MESH "," LIT_NS
#define ENV_TAG ",{\"tag\":\"test\",\"environment\":{\"name\":\"FOO\"}}"
#define MPL(n) "\"max_path_tag_length\":" n ","
#define ZIPKIN_PROVIDER(endpoint, b128)                                                            \
    ",\"provider\":{\"name\":\"envoy.tracers.zipkin\",\"typed_config\":{\"@type\":\"type."         \
    "googleapis.com/envoy.config.trace.v3.ZipkinConfig\",\"collector_cluster\":\"" ZIPKIN_CLUSTER  \
    "\",\"collector_endpoint\":\"" endpoint "\"," b128 "\"shared_span_context\":false,"            \
    "\"collector_endpoint_version\":\"HTTP_JSON\",\"collector_hostname\":\"" ZIPKIN_FQDN "\"}}"
#define B128 "\"trace_id_128bit\":true,"
#define OTEL_PROVIDER(cfg)                                                                         \
    ",\"provider\":{\"name\":\"envoy.tracers.opentelemetry\",\"typed_config\":{\"@type\":\"type."  \
    "googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig\"," cfg "}}"

typedef struct tracing_case {
    const char *name;
    const char *mesh;      /* mesh config YAML */
    const char *telemetry; /* Telemetry YAML, or "" */
    bool inbound;          /* the sidecar's inbound HCM (SERVER), else its outbound (CLIENT) */
    const char *want;      /* the HCM's tracing as compact JSON, NULL for none */
    bool want_request_id;  /* use_request_id_for_trace_sampling */
} tracing_case;

static const tracing_case cases[] = {
    {"no telemetry api", "enableTracing: true\n" PC_TRACING, "", false,
     "{" SAMPLING("55.55") MPL("13") TAGS ENV_TAG "]}", true},
    {"default providers",
     "enableTracing: true\ndefaultConfig: {tracing: {sampling: 55.5}}\n"
     "defaultProviders: {tracing: [foo]}\nextensionProviders:\n" P_ZIPKIN(""),
     "", true, "{" SAMPLING("55.5") MPL("256") TAGS "]" ZIPKIN_PROVIDER("/api/v2/spans", B128) "}",
     true},
    {"no telemetry api and nil custom tag",
     "enableTracing: true\ndefaultConfig: {tracing: {sampling: 55.55, maxPathTagLength: 13, "
     "customTags: {test: null}}}\n",
     "", false, "{" SAMPLING("55.55") MPL("13") TAGS "]}", true},
    {"only telemetry api (no provider)", "extensionProviders:\n" P_ZIPKIN(""),
     TEL("{randomSamplingPercentage: 99.999, customTags: {test: {environment: {name: FOO}}}}"),
     false, NULL, true},
    {"only telemetry api (with provider)", "extensionProviders:\n" P_ZIPKIN(""), TEL(SPEC("foo")),
     false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" ZIPKIN_PROVIDER("/api/v2/spans", B128) "}",
     true},
    {"zipkin enable 64bit trace id", "extensionProviders:\n" P_ZIPKIN(", enable64bitTraceId: true"),
     TEL(SPEC("foo")), false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" ZIPKIN_PROVIDER("/api/v2/spans", "") "}",
     true},
    {"both tracing enabled (no provider)",
     "enableTracing: true\n" PC_TRACING "extensionProviders:\n" P_ZIPKIN(""),
     TEL("{randomSamplingPercentage: 99.999, customTags: {test: {environment: {name: FOO}}}}"),
     false, NULL, true},
    {"both tracing disabled (no provider)",
     "enableTracing: false\n" PC_TRACING "extensionProviders:\n" P_ZIPKIN(""),
     TEL("{randomSamplingPercentage: 99.999, customTags: {test: {environment: {name: FOO}}}}"),
     false, NULL, true},
    {"both tracing enabled (with provider)",
     "enableTracing: true\n" PC_TRACING "extensionProviders:\n" P_ZIPKIN(""), TEL(SPEC("foo")),
     false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" ZIPKIN_PROVIDER("/api/v2/spans", B128) "}",
     true},
    {"both tracing disabled (with provider)",
     "enableTracing: false\n" PC_TRACING "extensionProviders:\n" P_ZIPKIN(""), TEL(SPEC("foo")),
     false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" ZIPKIN_PROVIDER("/api/v2/spans", B128) "}",
     true},
    /* not built: no tracing */
    {"basic config (with datadog provider)",
     "extensionProviders:\n- {name: datadog, datadog: {service: " ZIPKIN_FQDN
     ", port: 9411, maxTagLength: 256}}\n",
     TEL(SPEC("datadog")), false, NULL, true},
    {"basic config (with skywalking provider)",
     "extensionProviders:\n- {name: foo, skywalking: {service: " ZIPKIN_FQDN ", port: 9411}}\n",
     TEL(SPEC("foo")), false, NULL, true},
    {"basic config (with opentelemetry provider via grpc)", "extensionProviders:\n" P_OTEL_GRPC,
     TEL(SPEC("opentelemetry")), false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" OTEL_PROVIDER(
         "\"grpc_service\":{\"envoy_grpc\":{\"cluster_name\":\"outbound|4317||otel-collector."
         "istio-system.svc.cluster.local\",\"authority\":\"otel-collector.istio-system.svc."
         "cluster.local\"}}") "}",
     true},
    {"basic config (with opentelemetry provider via http)", "extensionProviders:\n" P_OTEL_HTTP,
     TEL(SPEC("opentelemetry")), false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" OTEL_PROVIDER(
         "\"http_service\":{\"http_uri\":{\"uri\":\"my-o11y-backend.istio-system.svc.cluster."
         "local/v1/traces\",\"cluster\":\"outbound|443||my-o11y-backend.istio-system.svc."
         "cluster.local\",\"timeout\":\"3s\"},\"request_headers_to_add\":[{\"header\":{\"key\":"
         "\"custom-header\",\"value\":\"custom-value\"},\"append_action\":"
         "\"OVERWRITE_IF_EXISTS_OR_ADD\"}]}") "}",
     true},
    {"client-only config for server", "extensionProviders:\n" P_ZIPKIN(""),
     TEL("{match: {mode: CLIENT}, providers: [{name: foo}], randomSamplingPercentage: 99.999, "
         "useRequestIdForTraceSampling: false}"),
     true, NULL, true},
    {"server-only config for skywalking server", "extensionProviders:\n" P_ZIPKIN(""),
     TEL("{match: {mode: SERVER}, providers: [{name: foo}], randomSamplingPercentage: 99.999, "
         "useRequestIdForTraceSampling: false, customTags: {test: {environment: {name: FOO}}}}"),
     true,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" ZIPKIN_PROVIDER("/api/v2/spans", B128) "}",
     false},
    {"invalid provider",
     "enableTracing: true\n" PC_TRACING "extensionProviders:\n"
     "- {name: foo, prometheus: {}}\n",
     TEL(SPEC("foo")), false, NULL, true},
    {"basic config (with opentelemetry provider via grpc with initial metadata)",
     "extensionProviders:\n" P_OTEL_GRPC_MD, TEL(SPEC("opentelemetry")), false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG "]" OTEL_PROVIDER(
         "\"grpc_service\":{\"envoy_grpc\":{\"cluster_name\":\"outbound|8090||tracing.example."
         "com\",\"authority\":\"tracing.example.com\"},\"timeout\":\"3s\",\"initial_metadata\":"
         "[{\"key\":\"Authentication\",\"value\":\"token-xxxxx\"}]}") "}",
     true},
    {"only telemetry api (with provider)",
     "extensionProviders:\n" P_ZIPKIN(", path: /custom/path/api/v2/spans"), TEL(SPEC("foo")), false,
     "{" SAMPLING("99.999") MPL("256") TAGS ENV_TAG
     "]" ZIPKIN_PROVIDER("/custom/path/api/v2/spans", B128) "}",
     true},
};

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The HCM of the first chain of l that has one (destination port port, 0: any). */
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
                return get(f, "typed_config");
        }
    }
    return NULL;
}

static void mc_parse(const char *yaml, pilot_mesh *m)
{
    char err[512];
    if (flags_mesh_parse(yaml, strlen(yaml), "mesh", m, err, sizeof err) != 0)
        fail_msg("mesh config: %s", err);
}

/* The tracing JSON (NULL: none) and request ID setting of proxy p's HCM. */
static char *observe(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, bool inbound,
                     bool *use_request_id)
{
    xds_resource_set set;
    fx_gen(g, p, s, XDS_TYPE_LISTENER, NULL, 0, &set);
    const xds_resource *r = fx_find(&set, inbound ? "virtualInbound" : "0.0.0.0_9080");
    assert_non_null(r);
    cJSON *l = xds_resource_to_json(r);
    const cJSON *h = hcm_of(l, inbound ? 9080 : 0);
    assert_non_null(h);
    const cJSON *tr = get(h, "tracing");
    char *out = tr ? cJSON_PrintUnformatted(tr) : NULL;
    const cJSON *u = get(get(get(h, "request_id_extension"), "typed_config"),
                         "use_request_id_for_trace_sampling");
    assert_true(cJSON_IsBool(u));
    *use_request_id = cJSON_IsTrue(u);
    cJSON_Delete(l);
    xds_resource_set_free(&set);
    return out;
}

static xds_proxy *app_proxy(const char *labels, const char *ip)
{
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", ip, labels);
    free(p->cluster_id); /* istiod's cases have no cluster ID */
    p->cluster_id = NULL;
    return p;
}

static void test_configure_tracing(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tracing_case *tc = &cases[i];
        pilot_mesh m;
        mc_parse(tc->mesh, &m);
        mesh_snapshot *s = fx_snapshot(base_yaml, tc->telemetry, NULL);
        xds_gen *g = xds_gen_new();
        xds_gen_set_mesh_telemetry(g, &m.mesh_telemetry);
        xds_proxy *p = app_proxy("app=test", "10.1.0.5");
        bool rid = false;
        char *got = observe(g, p, s, tc->inbound, &rid);
        bool same = tc->want ? got && !strcmp(got, tc->want) : got == NULL;
        if (!same || rid != tc->want_request_id) {
            print_message("case \"%s\":\n  want %s (request id %d)\n  got  %s (request id %d)\n",
                          tc->name, tc->want ? tc->want : "none", tc->want_request_id,
                          got ? got : "none", rid);
            failed++;
        }
        free(got);
        xds_proxy_free(p);
        xds_gen_free(g);
        mesh_snapshot_release(s);
        flags_mesh_clear(&m);
    }
    assert_int_equal(failed, 0);
}

/* The per-proxy span tags: canonical service and revision from the labels, mesh and
 * cluster ID from the node; replicas of one deployment share the listener set, another
 * revision does not. */
static void test_proxy_tags(void **state)
{
    (void)state;
    pilot_mesh m;
    mc_parse("", &m);
    mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
    xds_gen *g = xds_gen_new();
    xds_gen_set_mesh_telemetry(g, &m.mesh_telemetry);
    const char *v1 = "app=test,service.istio.io/canonical-name=app,"
                     "service.istio.io/canonical-revision=v1";
    xds_proxy *a = app_proxy(v1, "10.1.0.5");
    xds_proxy *b = app_proxy(v1, "10.1.0.5");
    xds_proxy *c = app_proxy("app=test,service.istio.io/canonical-name=app,"
                             "service.istio.io/canonical-revision=v2",
                             "10.1.0.5");
    a->mesh_id = xstrdup("mesh1");
    b->mesh_id = xstrdup("mesh1");
    a->cluster_id = xstrdup("c1");
    b->cluster_id = xstrdup("c1");
    xds_resource_set sa, sb, sc;
    fx_gen(g, a, s, XDS_TYPE_LISTENER, NULL, 0, &sa);
    fx_gen(g, b, s, XDS_TYPE_LISTENER, NULL, 0, &sb);
    fx_gen(g, c, s, XDS_TYPE_LISTENER, NULL, 0, &sc);
    assert_true(sa.id != 0 && sa.id == sb.id);
    assert_true(sc.id != sa.id);
    bool rid;
    char *ta = observe(g, a, s, false, &rid);
    char *tc = observe(g, c, s, false, &rid);
    assert_non_null(strstr(ta, LIT("canonical_revision", "v1")));
    assert_non_null(strstr(ta, LIT("canonical_service", "app")));
    assert_non_null(strstr(ta, LIT("mesh_id", "mesh1")));
    assert_non_null(strstr(ta, LIT("cluster_id", "c1")));
    assert_non_null(strstr(ta, "\"random_sampling\":{\"value\":1}"));
    assert_non_null(strstr(tc, LIT("canonical_revision", "v2")));
    free(ta);
    free(tc);
    xds_resource_set_free(&sa);
    xds_resource_set_free(&sb);
    xds_resource_set_free(&sc);
    xds_proxy_free(a);
    xds_proxy_free(b);
    xds_proxy_free(c);
    xds_gen_free(g);
    mesh_snapshot_release(s);
    flags_mesh_clear(&m);
}

/* enableTracing false and no Telemetry tracing: no tracing block, the request ID extension
 * stays, and the span tag inputs leave the class (pods of other deployments share). A
 * provider whose service or port is not in the registry, or whose service the proxy's
 * Sidecar leaves out: no tracing (so no cluster that CDS lacks is named). */
static void test_off_and_unresolved(void **state)
{
    (void)state;
    pilot_mesh m;
    mc_parse("enableTracing: false\n", &m);
    mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
    xds_gen *g = xds_gen_new();
    xds_gen_set_mesh_telemetry(g, &m.mesh_telemetry);
    xds_proxy *a = app_proxy("app=test,service.istio.io/canonical-name=a", "10.1.0.5");
    xds_proxy *b = app_proxy("app=test,service.istio.io/canonical-name=b", "10.1.0.5");
    bool rid = false;
    char *t = observe(g, a, s, false, &rid);
    assert_null(t);
    assert_true(rid);
    xds_resource_set sa, sb;
    fx_gen(g, a, s, XDS_TYPE_LISTENER, NULL, 0, &sa);
    fx_gen(g, b, s, XDS_TYPE_LISTENER, NULL, 0, &sb);
    assert_true(sa.id == sb.id);
    xds_resource_set_free(&sa);
    xds_resource_set_free(&sb);
    xds_gen_free(g);
    mesh_snapshot_release(s);
    flags_mesh_clear(&m);

    static const char *const bad[] = {
        "defaultProviders: {tracing: [foo]}\nextensionProviders:\n"
        "- {name: foo, zipkin: {service: nope.istio-system.svc.cluster.local, port: 9411}}\n",
        "defaultProviders: {tracing: [foo]}\nextensionProviders:\n"
        "- {name: foo, zipkin: {service: " ZIPKIN_FQDN ", port: 9412}}\n",
        "defaultProviders: {tracing: [foo]}\nextensionProviders:\n"
        "- {name: foo, zipkin: {service: default/" ZIPKIN_FQDN ", port: 9411}}\n",
        "defaultProviders: {tracing: [missing]}\n",
        "defaultProviders: {tracing: [foo]}\nextensionProviders:\n" P_ZIPKIN(""),
    };
    /* the last one under a Sidecar whose egress leaves istio-system out */
    const char *sidecar = "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: "
                          "{name: default, namespace: default}\nspec: {egress: [{hosts: "
                          "[./*]}]}\n";
    size_t nbad = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < nbad; i++) {
        mc_parse(bad[i], &m);
        s = fx_snapshot(base_yaml, i + 1 == nbad ? sidecar : "", NULL);
        g = xds_gen_new();
        xds_gen_set_mesh_telemetry(g, &m.mesh_telemetry);
        t = observe(g, a, s, false, &rid);
        if (t)
            fail_msg("case %zu: want no tracing, got %s", i, t);
        xds_gen_free(g);
        mesh_snapshot_release(s);
        flags_mesh_clear(&m);
    }
    xds_proxy_free(a);
    xds_proxy_free(b);
}

/* PILOT_TRACE_SAMPLING: the sampling of proxies whose defaultConfig sets none; out of range
 * means 1. defaultConfig.tracing.sampling above 100 means 1 too (proxyConfigSamplingValue). */
static void test_sampling_sources(void **state)
{
    (void)state;
    static const struct {
        const char *env, *mesh, *want;
    } t[] = {
        {"42.5", "", "{\"value\":42.5}"},
        {"101", "", "{\"value\":1}"},
        {"42.5", "defaultConfig: {tracing: {sampling: 7}}\n", "{\"value\":7}"},
        {NULL, "defaultConfig: {tracing: {sampling: 150}}\n", "{\"value\":1}"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].env)
            setenv("PILOT_TRACE_SAMPLING", t[i].env, 1);
        else
            unsetenv("PILOT_TRACE_SAMPLING");
        pilot_mesh m;
        mc_parse(t[i].mesh, &m);
        mesh_snapshot *s = fx_snapshot(base_yaml, NULL);
        xds_gen *g = xds_gen_new();
        xds_gen_set_mesh_telemetry(g, &m.mesh_telemetry);
        xds_proxy *p = app_proxy("app=test", "10.1.0.5");
        bool rid;
        char *got = observe(g, p, s, false, &rid);
        assert_non_null(got);
        cJSON *j = cJSON_Parse(got);
        char *rs = cJSON_PrintUnformatted(get(j, "random_sampling"));
        if (strcmp(rs, t[i].want) != 0)
            fail_msg("case %zu: random_sampling %s, want %s", i, rs, t[i].want);
        free(rs);
        cJSON_Delete(j);
        free(got);
        xds_proxy_free(p);
        xds_gen_free(g);
        mesh_snapshot_release(s);
        flags_mesh_clear(&m);
    }
    unsetenv("PILOT_TRACE_SAMPLING");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configure_tracing),
        cmocka_unit_test(test_proxy_tags),
        cmocka_unit_test(test_off_and_unresolved),
        cmocka_unit_test(test_sampling_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
