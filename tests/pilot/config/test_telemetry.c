/* test_telemetry: the Telemetry parser and validator (pilot/config/parse_telemetry.c): one
 * table of specs (JSON with single quotes) accepted with a check on the parsed struct, or
 * refused with the message istiod gives; then the warnings and the unsupported-field walker.
 *
 * The cases follow istiod's TestValidateTelemetry and TestValidateTelemetryFilter
 * (pkg/config/validation/validation_test.go), named as there, plus the shapes the CRD's
 * JSON can take (enums by name and number, null entries). Every parsed object is released,
 * so ASan's leak checker covers the free paths, half-built ones included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/base/util.h"
#include "pilot/config/mesh.h"

#define TELX(api, spec)                                                                            \
    "{'apiVersion':'telemetry.istio.io/" api "','kind':'Telemetry',"                               \
    "'metadata':{'name':'tel','namespace':'foo'},'spec':" spec "}"
#define TEL(spec) TELX("v1", spec)
#define ENVTAG "'customTags':{'clusterID':{'environment':{'name':'FOO'}}}"
#define GWREF "'group':'gateway.networking.k8s.io','kind':'Gateway'"

static cJSON *parse_json(const char *sq)
{
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static void chk_metrics(const mesh_object *o)
{
    assert_int_equal(o->kind, MESH_KIND_TELEMETRY);
    const mesh_telemetry *t = o->u.tel;
    assert_int_equal(t->selector.n, 1);
    assert_int_equal(t->nmetrics, 1);
    const mesh_tel_metrics *m = &t->metrics[0];
    assert_int_equal(m->providers.n, 1);
    assert_string_equal(m->providers.v[0], "prometheus");
    assert_int_equal(m->reporting_interval_ns, 15000000000LL);
    assert_int_equal(m->noverrides, 3);
    const mesh_tel_metrics_override *a = &m->overrides[0];
    assert_int_equal(a->metric, MESH_TEL_REQUEST_COUNT);
    assert_int_equal(a->mode, MESH_TEL_CLIENT);
    assert_int_equal(a->disabled, MESH_TRI_UNSET);
    /* sorted by name */
    assert_int_equal(a->ntags, 2);
    assert_string_equal(a->tags[0].name, "request_host");
    assert_false(a->tags[0].remove);
    assert_string_equal(a->tags[0].value, "request.host");
    assert_string_equal(a->tags[1].name, "request_protocol");
    assert_true(a->tags[1].remove);
    assert_null(a->tags[1].value);
    const mesh_tel_metrics_override *b = &m->overrides[1];
    assert_int_equal(b->metric, MESH_TEL_ALL_METRICS);
    assert_int_equal(b->mode, MESH_TEL_SERVER);
    assert_int_equal(b->disabled, MESH_TRI_TRUE);
    const mesh_tel_metrics_override *c = &m->overrides[2];
    assert_string_equal(c->custom_metric, "my_metric");
    assert_int_equal(c->disabled, MESH_TRI_FALSE);
    assert_int_equal(c->metric, MESH_TEL_ALL_METRICS);
}

static void chk_logging(const mesh_object *o)
{
    const mesh_telemetry *t = o->u.tel;
    assert_int_equal(t->nlogging, 2);
    assert_string_equal(t->logging[0].providers.v[0], "envoy");
    assert_string_equal(t->logging[0].filter, "response.code >= 400");
    assert_int_equal(t->logging[0].mode, MESH_TEL_CLIENT_AND_SERVER);
    assert_int_equal(t->logging[1].disabled, MESH_TRI_TRUE);
    assert_int_equal(t->logging[1].mode, MESH_TEL_SERVER);
    assert_null(t->logging[1].filter);
}

static void chk_tracing(const mesh_object *o)
{
    const mesh_telemetry *t = o->u.tel;
    assert_int_equal(t->ntracing, 1);
    assert_true(t->tracing[0].random_sampling_percentage == 12.5);
    assert_int_equal(t->tracing[0].disable_span_reporting, MESH_TRI_FALSE);
    assert_int_equal(t->tracing[0].ncustom_tags, 1);
}

static void chk_v1alpha1(const mesh_object *o)
{
    assert_int_equal(o->kind, MESH_KIND_TELEMETRY);
    /* enums by number, as proto3 JSON allows */
    assert_int_equal(o->u.tel->metrics[0].overrides[0].metric, MESH_TEL_REQUEST_DURATION);
    assert_int_equal(o->u.tel->metrics[0].overrides[0].mode, MESH_TEL_SERVER);
}

static void chk_target_ref(const mesh_object *o)
{
    assert_int_equal(o->u.tel->ntarget_refs, 1);
    assert_string_equal(o->u.tel->target_refs[0].name, "foo");
}

typedef struct pcase {
    const char *name;
    const char *json;
    int rc;
    const char *err;
    void (*check)(const mesh_object *o);
} pcase;

static const pcase cases[] = {
    {"empty", TEL("{}"), 0, NULL, NULL},
    {"metrics",
     TEL("{'selector':{'matchLabels':{'app':'reviews'}},'metrics':[{'providers':[{'name':"
         "'prometheus'}],'reportingInterval':'15s','overrides':["
         "{'match':{'metric':'REQUEST_COUNT','mode':'CLIENT'},'tagOverrides':{"
         "'request_protocol':{'operation':'REMOVE'},'request_host':{'value':'request.host'}}},"
         "{'match':{'mode':'SERVER'},'disabled':true},"
         "{'match':{'customMetric':'my_metric'},'disabled':false}]}]}"),
     0, NULL, chk_metrics},
    {"access logging",
     TEL("{'accessLogging':[{'providers':[{'name':'envoy'}],'filter':{'expression':"
         "'response.code >= 400'}},{'match':{'mode':'SERVER'},'disabled':true}]}"),
     0, NULL, chk_logging},
    {"tracing with a good custom tag",
     TEL("{'tracing':[{'randomSamplingPercentage':12.5,'disableSpanReporting':false," ENVTAG "}]}"),
     0, NULL, chk_tracing},
    {"v1alpha1, enums by number",
     TELX("v1alpha1", "{'metrics':[{'overrides':[{'match':{'metric':2,'mode':2}}]}]}"), 0, NULL,
     chk_v1alpha1},
    {"good metrics operation",
     TEL("{'metrics':[{'overrides':[{'tagOverrides':{'my-tag':{'operation':'UPSERT',"
         "'value':'some-cel-expression'}}}]}]}"),
     0, NULL, NULL},
    {"multi-accessloggings",
     TEL("{'accessLogging':[{'providers':[{'name':'envoy'}]},{'providers':[{'name':'otel'}]}]}"), 0,
     NULL, NULL},
    {"multi-accesslogging-providers",
     TEL("{'accessLogging':[{'providers':[{'name':'envoy'},{'name':'otel'}]}]}"), 0, NULL, NULL},
    {"good targetRef", TEL("{'tracing':[{" ENVTAG "}],'targetRef':{" GWREF ",'name':'foo'}}"), 0,
     NULL, chk_target_ref},
    {"filter: connection.mtls && contains",
     TEL("{'accessLogging':[{'filter':{'expression':"
         "'connection.mtls && request.url_path.contains(\\\"v1beta3\\\")'}}]}"),
     0, NULL, NULL},
    {"filter: response.code", TEL("{'accessLogging':[{'filter':{'expression':'response.code'}}]}"),
     0, NULL, NULL},
    {"null list entries", TEL("{'metrics':[null],'accessLogging':[null],'tracing':[null]}"), 0,
     NULL, NULL},
    {"null targetRef beside a selector",
     TEL("{'targetRef':null,'selector':{'matchLabels':{'app':'a'}}}"), 0, NULL, NULL},
    /* rejected, with istiod's reasons */
    {"bad randomSamplingPercentage", TEL("{'tracing':[{'randomSamplingPercentage':101}]}"), -1,
     "=Telemetry foo/tel: spec.tracing[0].randomSamplingPercentage: randomSamplingPercentage must "
     "be in range [0.0, 100.0]",
     NULL},
    {"negative randomSamplingPercentage", TEL("{'tracing':[{'randomSamplingPercentage':-1}]}"), -1,
     "randomSamplingPercentage must be in range [0.0, 100.0]", NULL},
    {"tracing with a nil custom tag", TEL("{'tracing':[{'customTags':{'clusterID':null}}]}"), -1,
     "spec.tracing[0].customTags.clusterID: tag 'clusterID' may not have a nil value", NULL},
    {"empty literal tag", TEL("{'tracing':[{'customTags':{'a':{'literal':{'value':''}}}}]}"), -1,
     "spec.tracing[0].customTags.a.literal: literal tag value may not be empty", NULL},
    {"empty header tag", TEL("{'tracing':[{'customTags':{'a':{'header':{}}}}]}"), -1,
     "header tag name may not be empty", NULL},
    {"bad metrics operation",
     TEL("{'metrics':[{'overrides':[{'tagOverrides':{'my-tag':{'operation':'UPSERT',"
         "'value':''}}}]}]}"),
     -1,
     "=Telemetry foo/tel: spec.metrics[0].overrides[0].tagOverrides.my-tag: tagOverrides.value "
     "must be set when operation is UPSERT",
     NULL},
    {"REMOVE with a value",
     TEL("{'metrics':[{'overrides':[{'tagOverrides':{'t':{'operation':'REMOVE','value':'x'}}}]}]}"),
     -1, "tagOverrides.value may only be set when operation is UPSERT", NULL},
    {"null override", TEL("{'metrics':[{'overrides':[null]}]}"), -1,
     "spec.metrics[0].overrides[0]: tagOverrides may not be null", NULL},
    {"null tag override", TEL("{'metrics':[{'overrides':[{'tagOverrides':{'t':null}}]}]}"), -1,
     "tagOverrides may not be null", NULL},
    {"empty customMetric", TEL("{'metrics':[{'overrides':[{'match':{'customMetric':''}}]}]}"), -1,
     "spec.metrics[0].overrides[0].match: customMetric may not be empty", NULL},
    {"unknown metric", TEL("{'metrics':[{'overrides':[{'match':{'metric':'REQUESTS'}}]}]}"), -1,
     "spec.metrics[0].overrides[0].match.metric: unknown value REQUESTS", NULL},
    {"unknown mode", TEL("{'accessLogging':[{'match':{'mode':'BOTH'}}]}"), -1,
     "spec.accessLogging[0].match.mode: unknown value BOTH", NULL},
    {"unknown operation",
     TEL("{'metrics':[{'overrides':[{'tagOverrides':{'t':{'operation':'DROP'}}}]}]}"), -1,
     "tagOverrides.t.operation: unknown value DROP", NULL},
    {"empty provider name", TEL("{'metrics':[{'providers':[{'name':''}]}]}"), -1,
     "=Telemetry foo/tel: spec.metrics[0].providers[0].name: providers.name may not be empty",
     NULL},
    {"provider without name", TEL("{'accessLogging':[{'providers':[{}]}]}"), -1,
     "spec.accessLogging[0].providers[0].name: providers.name may not be empty", NULL},
    {"tracing provider null", TEL("{'tracing':[{'providers':[null]}]}"), -1,
     "providers.name may not be empty", NULL},
    {"bad filter", TEL("{'accessLogging':[{'filter':{'expression':')++++'}}]}"), -1,
     "spec.accessLogging[0].filter.expression: must be a valid CEL expression", NULL},
    {"empty filter", TEL("{'accessLogging':[{'filter':{}}]}"), -1, "must be a valid CEL expression",
     NULL},
    {"unterminated string filter",
     TEL("{'accessLogging':[{'filter':{'expression':'request.path == \\\"a'}}]}"), -1,
     "must be a valid CEL expression", NULL},
    {"bad reportingInterval", TEL("{'metrics':[{'reportingInterval':'soon'}]}"), -1,
     "spec.metrics[0].reportingInterval: invalid duration soon", NULL},
    {"bad targetRef - empty name", TEL("{'tracing':[{" ENVTAG "}],'targetRef':{" GWREF "}}"), -1,
     "targetRef name must be set", NULL},
    {"bad targetRef - non-empty namespace",
     TEL("{'tracing':[{" ENVTAG "}],'targetRef':{" GWREF ",'name':'foo','namespace':'bar'}}"), -1,
     "targetRef namespace must not be set", NULL},
    {"bad targetRef - wrong group",
     TEL("{'targetRef':{'group':'wrong-group','kind':'Gateway','name':'foo'}}"), -1,
     "but was wrong-group/Gateway", NULL},
    {"bad targetRef - wrong kind",
     TEL("{'targetRef':{'group':'gateway.networking.k8s.io','kind':'wrong-kind','name':'foo'}}"),
     -1, "but was gateway.networking.k8s.io/wrong-kind", NULL},
    {"targetRef and selector cannot both be set",
     TEL("{'targetRef':{" GWREF ",'name':'foo'},'selector':{'matchLabels':{'app':'httpbin'}}}"), -1,
     "=Telemetry foo/tel: spec: only one of targetRefs or workloadSelector can be set", NULL},
    {"wildcard selector", TEL("{'selector':{'matchLabels':{'app':'*'}}}"), -1,
     "wildcard is not supported in selector", NULL},
    {"metrics not a list", TEL("{'metrics':{}}"), -1, "spec.metrics", NULL},
    /* a failure after earlier entries were built: freed without leaks */
    {"half built",
     TEL("{'metrics':[{'providers':[{'name':'prometheus'}],'overrides':[{'tagOverrides':{"
         "'a':{'value':'x'},'b':{'operation':'REMOVE'}}},{'match':{'customMetric':'c'},"
         "'tagOverrides':{'x':{'value':''}}}]}],'accessLogging':[{'filter':{'expression':'a'}}]}"),
     -1, "spec.metrics[0].overrides[1].tagOverrides.x", NULL},
};

static void test_cases(void **state)
{
    (void)state;
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pcase *t = &cases[i];
        cJSON *j = parse_json(t->json);
        char err[512] = "untouched";
        mesh_object o = {0};
        if (!j)
            fail_msg("case %s: test JSON does not parse", t->name);
        int rc = mesh_parse(j, &opts, &o, err, sizeof err);
        if (rc != t->rc)
            fail_msg("case %s: rc %d, want %d (err: %s)", t->name, rc, t->rc, err);
        if (rc == -1) {
            if (t->err[0] == '=' ? strcmp(err, t->err + 1) != 0 : !strstr(err, t->err))
                fail_msg("case %s:\n  got  %s\n  want %s", t->name, err, t->err);
        }
        if (rc == 0 && t->check)
            t->check(&o);
        if (rc == 0)
            mesh_object_release(o);
        cJSON_Delete(j);
    }
}

static void test_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *api, *kind;
        mesh_kind want;
    } k[] = {
        {"telemetry.istio.io/v1", "Telemetry", MESH_KIND_TELEMETRY},
        {"telemetry.istio.io/v1alpha1", "Telemetry", MESH_KIND_TELEMETRY},
        {"telemetry.istio.io/v1beta1", "Telemetry", MESH_KIND_UNKNOWN},
        {"networking.istio.io/v1", "Telemetry", MESH_KIND_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "apiVersion", k[i].api);
        cJSON_AddStringToObject(j, "kind", k[i].kind);
        assert_int_equal(mesh_kind_of(j), k[i].want);
        cJSON_Delete(j);
    }
    assert_string_equal(mesh_kind_name(MESH_KIND_TELEMETRY), "Telemetry");
    assert_string_equal(mesh_kind_api_version(MESH_KIND_TELEMETRY), "telemetry.istio.io/v1");
}

static void test_unsupported(void **state)
{
    (void)state;
    cJSON *j = parse_json(TEL("{'selector':{'matchLabels':{'app':'a'}},'metrics':[{'overrides':"
                              "[{'match':{'metric':'REQUEST_COUNT'},'tagOverrides':{'x':{'value':"
                              "'y'}}}]}],'tracing':[{'providers':[{'name':'zipkin'}],"
                              "'customTags':{'t':{'literal':{'value':'v'}}}}],"
                              "'accessLogging':[{'filter':{'expression':'true'}}],"
                              "'futureField':1}"));
    char **paths = NULL;
    size_t n = 0;
    mesh_unsupported_fields(j, &paths, &n);
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "spec.futureField");
    util_strv_free(paths, n);
    cJSON_Delete(j);
}

static void test_warnings(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } w[] = {
        {TEL("{'selector':{}}"), "spec.selector: workload selector specified without labels"},
        {TEL("{'tracing':[{'providers':[{'name':'a'},{'name':'b'}]}]}"),
         "spec.tracing[0]: multiple providers is not currently supported"},
        {TEL("{'tracing':[{},{}]}"), "spec.tracing: multiple tracing is not currently supported"},
        {TEL("{'metrics':[{'overrides':[{'tagOverrides':{'':{'value':'x'}}}]}]}"),
         "tagOverrides.name may not be empty"},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        mesh_warnings ws = {0};
        mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit", .warnings = &ws};
        cJSON *j = parse_json(w[i].json);
        char err[256] = "";
        mesh_object o = {0};
        if (mesh_parse(j, &opts, &o, err, sizeof err) != 0)
            fail_msg("warning case %zu refused: %s", i, err);
        assert_int_equal(ws.n, 1);
        if (!strstr(ws.msg[0], w[i].want))
            fail_msg("warning case %zu: got %s, want %s", i, ws.msg[0], w[i].want);
        mesh_object_release(o);
        mesh_warnings_free(&ws);
        cJSON_Delete(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
