/* test_webhook: the webhooks without sockets (wh_handle), table-driven: the request checks
 * and the AdmissionReview envelope, /validate answered by the ingestion parser (same
 * message), and /inject's behaviours (policy, re-injection, path parameters, bad
 * annotations, JSONPatch that applies to the injected pod). Istio's golden pods are in
 * inject_golden.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pilot/obs/metrics.h"
#include "pilot/webhook/webhook_internal.h"

static const wh_config cfg = {.domain = "cluster.local"};

/* Single quotes for readability, made double before use. */
static char *dq(const char *sq)
{
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

#define REVIEW(op, obj)                                                                            \
    "{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':{'uid':'u-1',"         \
    "'operation':'" op "','namespace':'default','object':" obj "}}"
#define VS_BAD                                                                                     \
    "{'apiVersion':'networking.istio.io/v1','kind':'VirtualService','metadata':{'name':'reviews'"  \
    "},'spec':{'hosts':['reviews'],'http':[{'route':[{'destination':{'host':'a'},'weight':50},{"   \
    "'destination':{'host':'b'},'weight':-5}]}]}}"
#define VS_OK                                                                                      \
    "{'apiVersion':'networking.istio.io/v1beta1','kind':'VirtualService','metadata':{'name':'r'}," \
    "'spec':{'hosts':['reviews'],'http':[{'route':[{'destination':{'host':'a'},'weight':30},{"     \
    "'destination':{'host':'b'},'weight':30}]}]}}"
/* istiod refuses port-level mTLS without a workload selector (ValidatePeerAuthentication). */
#define PA_BAD                                                                                     \
    "{'apiVersion':'security.istio.io/v1','kind':'PeerAuthentication','metadata':{'name':'pa-bad'" \
    "},'spec':{'mtls':{'mode':'STRICT'},'portLevelMtls':{'8080':{'mode':'DISABLE'}}}}"
#define PA_OK                                                                                      \
    "{'apiVersion':'security.istio.io/v1beta1','kind':'PeerAuthentication','metadata':{'name':'"   \
    "pa'},'spec':{'selector':{'matchLabels':{'app':'r'}},'mtls':{'mode':'STRICT'},"                \
    "'portLevelMtls':{'8080':{'mode':'DISABLE'}}}}"
#define POD(extra_md, extra_spec)                                                                  \
    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p','namespace':'default'" extra_md "},"   \
    "'spec':{'containers':[{'name':'app','image':'x','ports':[{'containerPort':80}]}]" extra_spec  \
    "}}"

typedef struct hcase {
    const char *name;
    const char *path, *ctype, *body; /* body in single quotes */
    int status;
    const char *has; /* substring of the reply */
} hcase;

static const hcase hcases[] = {
    {"ready", "/ready", NULL, NULL, 200, ""},
    {"unknown path", "/nope", "application/json", "{}", 404, "not found"},
    {"empty body", "/validate", "application/json", "", 400, "no body found"},
    {"wrong content type", "/validate", "text/plain", "{}", 415, "application/json"},
    {"not json", "/validate", "application/json", "{nope", 400, "not JSON"},
    {"wrong kind", "/validate", "application/json",
     "{'apiVersion':'admission.k8s.io/v1','kind':'Pod','request':{'uid':'x'}}", 400,
     "kind must be AdmissionReview"},
    {"missing uid", "/validate", "application/json",
     "{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':{}}", 400,
     "request.uid is required"},
    {"bad api version", "/inject", "application/json",
     "{'apiVersion':'admission.k8s.io/v2','kind':'AdmissionReview','request':{'uid':'x'}}", 400,
     "apiVersion"},
    {"invalid vs denied with the parser's message", "/validate", "application/json",
     REVIEW("CREATE", VS_BAD), 200,
     "'allowed':false,'status':{'message':'configuration is invalid: VirtualService "
     "default/reviews: spec.http[0].route[1].weight: weight -5 < 0'}"},
    {"valid vs allowed (weights need not sum to 100)", "/validate/", "application/json",
     REVIEW("UPDATE", VS_OK), 200, "'uid':'u-1','allowed':true}"},
    {"invalid peer authentication denied with istiod's reason", "/validate", "application/json",
     REVIEW("CREATE", PA_BAD), 200,
     "'allowed':false,'status':{'message':'configuration is invalid: PeerAuthentication "
     "default/pa-bad: spec.portLevelMtls: mesh/namespace peer authentication cannot have port "
     "level mTLS'}"},
    {"valid peer authentication (v1beta1) allowed", "/validate", "application/json",
     REVIEW("CREATE", PA_OK), 200, "'uid':'u-1','allowed':true}"},
    {"delete allowed", "/validate", "application/json", REVIEW("DELETE", VS_BAD), 200,
     "'allowed':true"},
    {"unknown istio kind allowed", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'networking.istio.io/v1alpha3','kind':'EnvoyFilter',"
                      "'metadata':{'name':'s'},'spec':{'configPatches':7}}"),
     200, "'allowed':true"},
    /* Sidecars are judged now (they were the "unknown kind" case above), istiod's reasons */
    {"invalid sidecar denied with istiod's reason", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'networking.istio.io/v1','kind':'Sidecar','metadata':{'"
                      "name':'s'},'spec':{'egress':[{'hosts':['*']}]}}"),
     200,
     "'allowed':false,'status':{'message':'configuration is invalid: Sidecar default/s: "
     "spec.egress[0].hosts[0]: host must be of form namespace/dnsName'}"},
    {"empty sidecar denied", "/validate", "application/json",
     REVIEW("UPDATE", "{'apiVersion':'networking.istio.io/v1beta1','kind':'Sidecar','metadata':"
                      "{'name':'s'},'spec':{}}"),
     200,
     "'message':'configuration is invalid: Sidecar default/s: spec: sidecar: empty "
     "configuration provided'}"},
    {"valid sidecar (v1alpha3) allowed", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'networking.istio.io/v1alpha3','kind':'Sidecar',"
                      "'metadata':{'name':'s'},'spec':{'egress':[{'hosts':['./*','istio-system/"
                      "*']}]}}"),
     200, "'uid':'u-1','allowed':true}"},
    {"sidecar warning returned", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'networking.istio.io/v1','kind':'Sidecar','metadata':{'"
                      "name':'s'},'spec':{'workloadSelector':{},'egress':[{'hosts':['*/*']}]}}"),
     200,
     "'warnings':['Sidecar default/s: spec.workloadSelector: sidecar: workload selector "
     "specified without labels, will be applied to all services in namespace']"},
    /* Telemetry is judged too (telemetry.istio.io v1 and v1alpha1), istiod's reasons */
    {"invalid telemetry denied with istiod's reason", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'telemetry.istio.io/v1','kind':'Telemetry','metadata':{'"
                      "name':'t'},'spec':{'tracing':[{'randomSamplingPercentage':101}]}}"),
     200,
     "'allowed':false,'status':{'message':'configuration is invalid: Telemetry default/t: "
     "spec.tracing[0].randomSamplingPercentage: randomSamplingPercentage must be in range "
     "[0.0, 100.0]'}"},
    {"valid telemetry (v1alpha1) allowed", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'telemetry.istio.io/v1alpha1','kind':'Telemetry',"
                      "'metadata':{'name':'t'},'spec':{'metrics':[{'overrides':[{'match':{"
                      "'metric':'REQUEST_COUNT'},'tagOverrides':{'x':{'value':'y'}}}]}]}}"),
     200, "'uid':'u-1','allowed':true}"},
    {"telemetry warning returned", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'telemetry.istio.io/v1','kind':'Telemetry','metadata':{'"
                      "name':'t'},'spec':{'tracing':[{},{}]}}"),
     200,
     "'warnings':['Telemetry default/t: spec.tracing: multiple tracing is not currently "
     "supported']"},
    {"kubernetes kind allowed", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'v1','kind':'Service','metadata':{'name':'S_S'}}"), 200,
     "'allowed':true"},
    {"unknown top-level field denied", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'networking.istio.io/v1','kind':'Gateway','metadata':{'"
                      "name':'g'},'spec':{},'extra':1}"),
     200, "unknown field \\\"extra\\\" on Gateway resource default/g"},
    {"object missing", "/validate", "application/json",
     "{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':{'uid':'x','"
     "operation':'CREATE'}}",
     200, "cannot decode configuration"},
    {"warning answered", "/validate", "application/json",
     REVIEW("CREATE", "{'apiVersion':'networking.istio.io/v1','kind':'DestinationRule','"
                      "metadata':{'name':'d'},'spec':{'host':'r','workloadSelector':{}}}"),
     200, "'warnings':['DestinationRule default/d: spec.workloadSelector: workload selector"},
    {"v1beta1 echoed", "/validate", "application/json",
     "{'apiVersion':'admission.k8s.io/v1beta1','kind':'AdmissionReview','request':{'uid':'b',"
     "'operation':'CREATE','object':" VS_OK "}}",
     200, "'apiVersion':'admission.k8s.io/v1beta1','response':{'uid':'b','allowed':true"},
    {"inject patch", "/inject", "application/json", REVIEW("CREATE", POD("", "")), 200,
     "'patchType':'JSONPatch'"},
    {"inject path parameters", "/inject/cluster/c2/net/n2", "application/json",
     REVIEW("CREATE", POD("", "")), 200, "'patchType':'JSONPatch'"},
    {"inject dangling path key", "/inject/cluster", "application/json",
     REVIEW("CREATE", POD("", "")), 400, "bad path parameters"},
    {"host network not injected", "/inject", "application/json",
     REVIEW("CREATE", POD("", ",'hostNetwork':true")), 200, "'allowed':true}"},
    {"opted out not injected", "/inject", "application/json",
     REVIEW("CREATE", POD(",'annotations':{'sidecar.istio.io/inject':'false'}", "")), 200,
     "'allowed':true}"},
    {"bad annotation denied", "/inject", "application/json",
     REVIEW("CREATE",
            POD(",'annotations':{'traffic.sidecar.istio.io/includeInboundPorts':'x'}", "")),
     200, "'allowed':false,'status':{'message':'failed to run injection template: invalid value"},
    {"get refused", "/validate", "application/json", "{}", 405, "method"},
};

static void test_handle_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hcases / sizeof hcases[0]; i++) {
        const hcase *t = &hcases[i];
        char *body = dq(t->body ? t->body : "");
        char *has = dq(t->has);
        wh_reply r;
        wh_reply_init(&r);
        wh_handle(&cfg, strcmp(t->name, "get refused") == 0 ? "GET" : "POST", t->path, t->ctype,
                  body, strlen(body), &r);
        const char *got = r.body.data ? r.body.data : "";
        if (r.status != t->status)
            fail_msg("%s: status %d, want %d (%s)", t->name, r.status, t->status, got);
        if (!strstr(got, has))
            fail_msg("%s:\n  got  %s\n  want substring %s", t->name, got, has);
        wh_reply_free(&r);
        free(body);
        free(has);
    }
}

/* Bodies a hostile client may send: deep nesting, many containers. Never a crash. */
static void test_hostile(void **state)
{
    (void)state;
    /* 100000 nested arrays: cJSON's nesting limit refuses them */
    size_t n = 100000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    wh_reply r;
    wh_reply_init(&r);
    wh_handle(&cfg, "POST", "/validate", "application/json", deep, 2 * n, &r);
    assert_int_equal(r.status, 400);
    wh_reply_free(&r);
    free(deep);

    /* a pod with 1000 containers: refused as not injectable, allowed untouched */
    strbuf b;
    strbuf_init(&b, 0);
    strbuf_appends(&b, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                       "\"request\":{\"uid\":\"u\",\"operation\":\"CREATE\",\"object\":{"
                       "\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[");
    for (int i = 0; i < 1000; i++)
        strbuf_appendf(&b, "%s{\"name\":\"c%d\",\"image\":\"x\"}", i ? "," : "", i);
    strbuf_appends(&b, "]}}}}");
    wh_reply_init(&r);
    wh_handle(&cfg, "POST", "/inject", "application/json", b.data, b.len, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"allowed\":true}"));
    wh_reply_free(&r);
    strbuf_free(&b);
}

/* Minimal RFC 6902 apply (add/replace/remove on object paths, replace at array paths by
 * whole value) to check our patch turns the original into the injected pod. */
static cJSON *resolve(cJSON *root, const char *path, char *last, size_t lastlen)
{
    cJSON *cur = root;
    char tok[512];
    const char *p = path;
    while (*p == '/') {
        const char *e = strchr(p + 1, '/');
        size_t n = e ? (size_t)(e - p - 1) : strlen(p + 1);
        size_t o = 0;
        for (size_t k = 0; k < n && o + 1 < sizeof tok; k++) {
            if (p[1 + k] == '~' && k + 1 < n) {
                tok[o++] = p[2 + k] == '1' ? '/' : '~';
                k++;
            } else {
                tok[o++] = p[1 + k];
            }
        }
        tok[o] = '\0';
        if (!e) {
            snprintf(last, lastlen, "%s", tok);
            return cur;
        }
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        p = e;
    }
    return NULL;
}

static void test_patch_applies(void **state)
{
    (void)state;
    char *pod_text = dq(POD(",'labels':{'app':'reviews','version':'v1'},'annotations':{'a/b':'c'"
                            ",'prometheus.io/scrape':'true','prometheus.io/port':'9090'}",
                            ""));
    cJSON *orig = cJSON_Parse(pod_text);
    const char *why = NULL;
    char err[256];
    cJSON *want = wh_inject_pod(&cfg, NULL, orig, "default", &why, err, sizeof err);
    assert_non_null(want);
    char *patch = wh_json_patch(orig, want);
    cJSON *ops = cJSON_Parse(patch);
    cJSON *doc = cJSON_Duplicate(orig, 1), *op;
    cJSON_ArrayForEach(op, ops)
    {
        const char *kind = cJSON_GetObjectItem(op, "op")->valuestring;
        char last[512];
        cJSON *parent =
            resolve(doc, cJSON_GetObjectItem(op, "path")->valuestring, last, sizeof last);
        assert_non_null(parent);
        cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
        if (strcmp(kind, "remove") != 0)
            cJSON_AddItemToObject(parent, last,
                                  cJSON_Duplicate(cJSON_GetObjectItem(op, "value"), 1));
    }
    assert_true(cJSON_Compare(doc, want, false));
    /* labels, prometheus merge and the status annotation are in the pod */
    cJSON *md = cJSON_GetObjectItem(want, "metadata");
    cJSON *lab = cJSON_GetObjectItem(md, "labels"), *ann = cJSON_GetObjectItem(md, "annotations");
    assert_string_equal(cJSON_GetObjectItem(lab, "service.istio.io/canonical-name")->valuestring,
                        "reviews");
    assert_string_equal(
        cJSON_GetObjectItem(lab, "service.istio.io/canonical-revision")->valuestring, "v1");
    assert_string_equal(cJSON_GetObjectItem(ann, "prometheus.io/port")->valuestring, "15020");
    assert_non_null(cJSON_GetObjectItem(ann, "sidecar.istio.io/status"));
    cJSON_Delete(doc);
    cJSON_Delete(ops);
    free(patch);

    /* Injecting the injected pod again: the same pod, one istio-proxy. */
    cJSON *again = wh_inject_pod(&cfg, NULL, want, "default", &why, err, sizeof err);
    assert_non_null(again);
    assert_true(cJSON_Compare(again, want, true));
    cJSON_Delete(again);
    cJSON_Delete(want);
    cJSON_Delete(orig);
    free(pod_text);
}

/* Path parameters /inject/cluster/<c>/net/<n>: the envs move last, the network label set. */
static void test_path_params(void **state)
{
    (void)state;
    char *pod_text = dq(POD("", ""));
    cJSON *orig = cJSON_Parse(pod_text);
    wh_inject_params pp = {.cluster = "c2", .network = "n2"};
    const char *why;
    char err[256];
    cJSON *pod = wh_inject_pod(&cfg, &pp, orig, "default", &why, err, sizeof err);
    assert_non_null(pod);
    cJSON *proxy =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 1);
    cJSON *env = cJSON_GetObjectItem(proxy, "env");
    int n = cJSON_GetArraySize(env);
    cJSON *a = cJSON_GetArrayItem(env, n - 2), *b = cJSON_GetArrayItem(env, n - 1);
    assert_string_equal(cJSON_GetObjectItem(a, "name")->valuestring, "ISTIO_META_CLUSTER_ID");
    assert_string_equal(cJSON_GetObjectItem(a, "value")->valuestring, "c2");
    assert_string_equal(cJSON_GetObjectItem(b, "name")->valuestring, "ISTIO_META_NETWORK");
    assert_string_equal(cJSON_GetObjectItem(b, "value")->valuestring, "n2");
    cJSON *lab = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "labels");
    assert_string_equal(cJSON_GetObjectItem(lab, "topology.istio.io/network")->valuestring, "n2");
    cJSON_Delete(pod);
    cJSON_Delete(orig);
    free(pod_text);
}

/* istiod's sidecar_injection_* counters move as istiod moves them. */
static double inj_count(const char *name)
{
    strbuf out;
    strbuf_init(&out, 0);
    metrics_render(&out);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = out.data ? strstr(out.data, key) : NULL;
    double v = p ? strtod(p + strlen(key), NULL) : -1;
    strbuf_free(&out);
    return v;
}

static void inj_post(const char *path, const char *ctype, const char *sq_body)
{
    char *body = dq(sq_body);
    wh_reply r;
    wh_reply_init(&r);
    wh_handle(&cfg, "POST", path, ctype, body, strlen(body), &r);
    wh_reply_free(&r);
    free(body);
}

static void test_injection_metrics(void **state)
{
    (void)state;
    wh_metrics_init();
    static const char *const names[] = {
        "sidecar_injection_requests_total", "sidecar_injection_success_total",
        "sidecar_injection_skip_total", "sidecar_injection_failure_total"};
    double before[4];
    for (int i = 0; i < 4; i++) {
        before[i] = inj_count(names[i]);
        assert_true(before[i] >= 0); /* registered before the first request */
    }
    inj_post("/inject", "application/json", REVIEW("CREATE", POD("", "")));
    inj_post("/inject", "application/json",
             REVIEW("CREATE", POD(",'annotations':{'sidecar.istio.io/inject':'false'}", "")));
    inj_post("/inject", "text/plain", "{}");
    inj_post(
        "/inject", "application/json",
        REVIEW("CREATE",
               POD(",'annotations':{'traffic.sidecar.istio.io/includeInboundPorts':'x'}", "")));
    inj_post("/validate", "application/json", REVIEW("CREATE", VS_OK)); /* not an injection */
    /* 4 requests; answered: patch, skip, template failure; failed: content type, template */
    static const double want[] = {4, 3, 1, 2};
    for (int i = 0; i < 4; i++)
        if (inj_count(names[i]) - before[i] != want[i])
            fail_msg("%s moved by %g, want %g", names[i], inj_count(names[i]) - before[i], want[i]);
    strbuf out;
    strbuf_init(&out, 0);
    metrics_render(&out);
    assert_non_null(strstr(out.data, "sidecar_injection_time_seconds_count "));
    strbuf_free(&out);
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } b[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        char *s = wh_base64(b[i].in, strlen(b[i].in));
        assert_string_equal(s, b[i].out);
        free(s);
    }
}

/* ---- the injector's settings (values.c): ConfigMap, policy, revision, native sidecars ---- */

/* Injects pod (single quotes) with c: the injected pod, or NULL with *why / err set. */
static cJSON *inject_sq(const wh_config *c, const char *pod_sq, const char **why, char *err,
                        size_t errlen)
{
    char *js = dq(pod_sq);
    cJSON *in = cJSON_Parse(js);
    free(js);
    assert_non_null(in);
    cJSON *out = wh_inject_pod(c, NULL, in, "default", why, err, errlen);
    cJSON_Delete(in);
    return out;
}

static cJSON *cm_sq(const char *name, const char *config, const char *values_sq)
{
    char *v = values_sq ? dq(values_sq) : NULL;
    cJSON *cm = cJSON_CreateObject();
    cJSON_AddStringToObject(cm, "apiVersion", "v1");
    cJSON_AddStringToObject(cm, "kind", "ConfigMap");
    cJSON *md = cJSON_AddObjectToObject(cm, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", "istio-system");
    cJSON *data = cJSON_AddObjectToObject(cm, "data");
    if (config)
        cJSON_AddStringToObject(data, "config", config);
    if (v)
        cJSON_AddStringToObject(data, "values", v);
    free(v);
    return cm;
}

static cJSON *named(const cJSON *arr, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
        if (n && strcmp(n, name) == 0)
            return (cJSON *)it;
    }
    return NULL;
}

static cJSON *spec_list(const cJSON *pod, const char *list)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), list);
}

static const char *env_of(const cJSON *c, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        named(cJSON_GetObjectItemCaseSensitive(c, "env"), name), "value"));
}

static bool has_arg(const cJSON *c, const char *arg)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(c, "args"))
    {
        if (cJSON_IsString(a) && strcmp(a->valuestring, arg) == 0)
            return true;
    }
    return false;
}

static const char *md_str(const cJSON *pod, const char *map, const char *key)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, map), key));
}

static const char *path_str(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    x = b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
    x = c ? cJSON_GetObjectItemCaseSensitive(x, c) : x;
    return cJSON_GetStringValue(x);
}

#define GOOD_VALUES                                                                                \
    "{'global':{'hub':'reg.example/istio','tag':'9.9','imagePullPolicy':'Always','logAsJson':"     \
    "true,'network':'net1','meshID':'mesh1','imagePullSecrets':['regcred'],'proxy':{'logLevel':"   \
    "'debug','statusPort':15999,'privileged':true,'excludeIPRanges':'10.0.0.0/8','resources':{"    \
    "'requests':{'cpu':'1'}},'holdApplicationUntilProxyStarts':true},'proxy_init':{'image':"       \
    "'other.example/init:1'}},'sidecarInjectorWebhook':{'rewriteAppHTTPProbe':false}}"
#define PROBE_POD                                                                                  \
    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p','namespace':'default'},'spec':{"       \
    "'containers':[{'name':'app','image':'x','readinessProbe':{'httpGet':{'port':80}}}]}}"

/* Every value the template reads from the ConfigMap reaches the pod. */
static void test_injector_values(void **state)
{
    (void)state;
    char err[600];
    const char *why;
    wh_injector *wi = wh_injector_new("istio-system", "", NULL);
    wh_config c = {.domain = "cluster.local", .injector = wi};
    assert_string_equal(wh_injector_configmap(wi), "istio-sidecar-injector");
    cJSON *cm = cm_sq("istio-sidecar-injector", "policy: enabled\n", GOOD_VALUES);
    assert_int_equal(wh_injector_apply(wi, cm, err, sizeof err), 0);
    cJSON_Delete(cm);

    cJSON *pod = inject_sq(&c, PROBE_POD, &why, err, sizeof err);
    assert_non_null(pod);
    cJSON *cs = spec_list(pod, "containers");
    /* holdApplicationUntilProxyStarts: the proxy first, with the postStart wait */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cs->child, "name")),
                        "istio-proxy");
    cJSON *proxy = named(cs, "istio-proxy"),
          *init = named(spec_list(pod, "initContainers"), "istio-init");
    assert_non_null(init);
    assert_string_equal(path_str(proxy, "image", NULL, NULL), "reg.example/istio/proxyv2:9.9");
    assert_string_equal(path_str(init, "image", NULL, NULL), "other.example/init:1");
    assert_string_equal(path_str(proxy, "imagePullPolicy", NULL, NULL), "Always");
    assert_string_equal(path_str(init, "imagePullPolicy", NULL, NULL), "Always");
    assert_string_equal(path_str(proxy, "resources", "requests", "cpu"), "1");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(proxy, "resources"), "limits"));
    assert_true(has_arg(proxy, "--proxyLogLevel=debug"));
    assert_true(has_arg(proxy, "--log_as_json"));
    assert_true(has_arg(init, "--log_as_json"));
    assert_true(has_arg(init, "10.0.0.0/8"));
    assert_true(has_arg(init, "15090,15021,15999"));
    assert_true(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(proxy, "securityContext"), "privileged")));
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(proxy, "lifecycle"), "postStart"));
    assert_string_equal(env_of(proxy, "ISTIO_META_NETWORK"), "net1");
    assert_string_equal(env_of(proxy, "ISTIO_META_MESH_ID"), "mesh1");
    assert_string_equal(md_str(pod, "labels", "topology.istio.io/network"), "net1");
    assert_non_null(named(spec_list(pod, "imagePullSecrets"), "regcred"));
    /* rewriteAppHTTPProbe false: the app's probe is left alone */
    assert_null(env_of(proxy, "ISTIO_KUBE_APP_PROBERS"));
    cJSON *app = named(cs, "app");
    assert_int_equal(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(app, "readinessProbe"), "httpGet"), "port")
            ->valueint,
        80);
    cJSON_Delete(pod);
    wh_injector_free(wi);
}

typedef struct counted {
    int events, synced;
} counted;

static void count_event(void *ud, source_event_type type, cJSON *obj, const char *origin)
{
    (void)type;
    (void)origin;
    ((counted *)ud)->events++;
    cJSON_Delete(obj);
}

static void count_synced(void *ud, const char *name)
{
    (void)name;
    ((counted *)ud)->synced++;
}

/* A bad ConfigMap is refused whole (naming key and field); the last good values stay, also
 * through the sink and on delete; other objects pass through the sink. */
static void test_injector_refuses_bad(void **state)
{
    (void)state;
    char err[600];
    const char *why;
    wh_injector *wi = wh_injector_new("istio-system", NULL, NULL);
    wh_config c = {.domain = "cluster.local", .injector = wi};
    cJSON *cm = cm_sq("istio-sidecar-injector", "policy: enabled\n", GOOD_VALUES);
    assert_int_equal(wh_injector_apply(wi, cm, err, sizeof err), 0);
    cJSON_Delete(cm);
    static const struct {
        const char *config, *values, *msg;
    } bad[] = {
        {"policy: enabled", "{'global':{'hub':5}}", "values: global.hub: want a string"},
        {"policy: enabled", "{'global':{'proxy':{'statusPort':'x'}}}",
         "values: global.proxy.statusPort: want a whole number"},
        {"policy: enabled", "{'global':'flat'}", "values: global.hub: want a string"},
        {"policy: enabled", "[1]", "values: want one mapping"},
        {"policy: enabled", NULL, "missing ConfigMap values key \"values\""},
        {NULL, "{}", "missing ConfigMap config key \"config\""},
        {"neverInjectSelector: {a: b}", "{}",
         "config: neverInjectSelector: want a list of label selectors"},
        {"injectedAnnotations: {a: [1]}", "{}", "config: injectedAnnotations.a: want a string"},
        {"policy: [x]", "{}", "config: policy: want enabled or disabled"},
        {"policy: enabled\n  bad: : indent", "{}", "config: "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm = cm_sq("istio-sidecar-injector", bad[i].config, bad[i].values);
        assert_int_equal(wh_injector_apply(wi, cm, err, sizeof err), -1);
        if (!strstr(err, bad[i].msg) || !strstr(err, "istio-system/istio-sidecar-injector"))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].msg);
        cJSON_Delete(cm);
    }
    counted n = {0};
    source_sink sink = wh_injector_sink(wi, (source_sink){count_event, count_synced, &n});
    sink.event(sink.ud, SOURCE_EV_UPSERT,
               cm_sq("istio-sidecar-injector", "policy: enabled", "{'global':{'tag':[]}}"), "t");
    sink.event(sink.ud, SOURCE_EV_DELETE, cm_sq("istio-sidecar-injector", NULL, NULL), "t");
    sink.event(sink.ud, SOURCE_EV_UPSERT, cm_sq("other", "x", "{}"), "t");
    sink.synced(sink.ud, "t");
    assert_int_equal(n.events, 1); /* only the other ConfigMap went on */
    assert_int_equal(n.synced, 1);
    cJSON *pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_non_null(pod);
    assert_string_equal(
        path_str(named(spec_list(pod, "containers"), "istio-proxy"), "image", NULL, NULL),
        "reg.example/istio/proxyv2:9.9");
    cJSON_Delete(pod);
    /* a good one through the sink applies to the next review */
    sink.event(sink.ud, SOURCE_EV_UPSERT,
               cm_sq("istio-sidecar-injector", "policy: enabled", "{'global':{'tag':1.25}}"), "t");
    pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_non_null(pod);
    assert_string_equal(
        path_str(named(spec_list(pod, "containers"), "istio-proxy"), "image", NULL, NULL),
        "docker.io/istio/proxyv2:1.25");
    cJSON_Delete(pod);
    wh_injector_free(wi);
}

/* istiod's injectRequired: policy, never/always selectors; injectedAnnotations. */
static void test_injector_policy(void **state)
{
    (void)state;
    char err[600];
    const char *why;
    wh_injector *wi = wh_injector_new("istio-system", "", NULL);
    wh_config c = {.domain = "cluster.local", .injector = wi};
    cJSON *cm = cm_sq("istio-sidecar-injector",
                      "policy: disabled\n"
                      "neverInjectSelector:\n- matchExpressions:\n  - {key: tier, operator: In, "
                      "values: [db]}\n"
                      "alwaysInjectSelector:\n- matchLabels: {app: web}\n"
                      "injectedAnnotations: {example.com/injected: 'yes'}\n",
                      "{}");
    assert_int_equal(wh_injector_apply(wi, cm, err, sizeof err), 0);
    cJSON_Delete(cm);
    static const struct {
        const char *md;
        bool injected;
    } cases[] = {
        {"", false}, /* disabled and nothing asks */
        {",'labels':{'app':'web'}", true},
        {",'labels':{'app':'web','tier':'db'}", false}, /* never wins over always */
        {",'labels':{'tier':'db'},'annotations':{'sidecar.istio.io/inject':'true'}", true},
        {",'labels':{'app':'web','sidecar.istio.io/inject':'false'}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char pod_sq[512];
        snprintf(pod_sq, sizeof pod_sq,
                 "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p','namespace':'default'%s},"
                 "'spec':{'containers':[{'name':'app','image':'x'}]}}",
                 cases[i].md);
        cJSON *pod = inject_sq(&c, pod_sq, &why, err, sizeof err);
        if ((pod != NULL) != cases[i].injected)
            fail_msg("case %zu: injected=%d, why=%s", i, pod != NULL, why ? why : "");
        if (pod)
            assert_string_equal(md_str(pod, "annotations", "example.com/injected"), "yes");
        cJSON_Delete(pod);
    }
    /* a policy neither enabled nor disabled turns injection off, as in istiod */
    cm = cm_sq("istio-sidecar-injector", "policy: sometimes\n", "{}");
    assert_int_equal(wh_injector_apply(wi, cm, err, sizeof err), 0);
    cJSON_Delete(cm);
    cJSON *pod = inject_sq(&c, POD(",'annotations':{'sidecar.istio.io/inject':'true'}", ""), &why,
                           err, sizeof err);
    assert_null(pod);
    assert_non_null(strstr(why, "policy"));
    /* LabelSelector semantics */
    cJSON *labels = cJSON_Parse("{\"a\":\"1\",\"b\":\"2\"}");
    static const struct {
        const char *sel;
        int want;
    } sels[] = {
        {"{}", 0},
        {"{\"matchLabels\":{\"a\":\"1\"}}", 1},
        {"{\"matchLabels\":{\"a\":\"2\"}}", 0},
        {"{\"matchExpressions\":[{\"key\":\"c\",\"operator\":\"DoesNotExist\"}]}", 1},
        {"{\"matchExpressions\":[{\"key\":\"b\",\"operator\":\"NotIn\",\"values\":[\"2\"]}]}", 0},
        {"{\"matchExpressions\":[{\"key\":\"b\",\"operator\":\"Exists\"}],\"matchLabels\":{\"a\":"
         "\"1\"}}",
         1},
        {"{\"matchExpressions\":[{\"key\":\"b\",\"operator\":\"In\"}]}", -1},
        {"{\"matchExpressions\":[{\"key\":\"b\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}", -1},
    };
    for (size_t i = 0; i < sizeof sels / sizeof sels[0]; i++) {
        cJSON *sel = cJSON_Parse(sels[i].sel);
        if (wh_selector_matches(sel, labels) != sels[i].want)
            fail_msg("selector %s: got %d", sels[i].sel, wh_selector_matches(sel, labels));
        cJSON_Delete(sel);
    }
    cJSON_Delete(labels);
    wh_injector_free(wi);
}

/* REVISION: the injected revision label/status and CA_ADDR follow it; the ConfigMap name. */
static void test_revision(void **state)
{
    (void)state;
    char err[600];
    const char *why;
    wh_injector *wi = wh_injector_new("istio-system", "canary", NULL);
    assert_string_equal(wh_injector_configmap(wi), "istio-sidecar-injector-canary");
    wh_config c = {.domain = "cluster.local", .inject = {.revision = "canary"}};
    cJSON *pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_non_null(pod);
    assert_string_equal(md_str(pod, "annotations", "istio.io/rev"), "canary");
    assert_non_null(
        strstr(md_str(pod, "annotations", "sidecar.istio.io/status"), "\"revision\":\"canary\""));
    assert_string_equal(env_of(named(spec_list(pod, "containers"), "istio-proxy"), "CA_ADDR"),
                        "istiod-canary.istio-system.svc:15012");
    cJSON_Delete(pod);
    /* with values, CA_ADDR follows the values' revision (the chart's .Values.revision) */
    c.injector = wi;
    cJSON *cm = cm_sq("istio-sidecar-injector-canary", "policy: enabled",
                      "{'revision':'blue','global':{'istioNamespace':'mesh-system'}}");
    assert_int_equal(wh_injector_apply(wi, cm, err, sizeof err), 0);
    cJSON_Delete(cm);
    pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_non_null(pod);
    assert_string_equal(env_of(named(spec_list(pod, "containers"), "istio-proxy"), "CA_ADDR"),
                        "istiod-blue.mesh-system.svc:15012");
    assert_string_equal(md_str(pod, "annotations", "istio.io/rev"), "canary");
    cJSON_Delete(pod);
    wh_injector_free(wi);
}

/* ENABLE_NATIVE_SIDECARS and sidecar.istio.io/nativeSidecar: istio-proxy an init container
 * (restartPolicy Always, right after istio-init, drained on preStop). */
static void test_native_sidecar(void **state)
{
    (void)state;
    char err[600];
    const char *why;
    wh_config c = {.domain = "cluster.local", .inject = {.native_sidecars = true}};
    cJSON *pod = inject_sq(&c, POD("", ",'initContainers':[{'name':'setup','image':'x'}]"), &why,
                           err, sizeof err);
    assert_non_null(pod);
    assert_null(named(spec_list(pod, "containers"), "istio-proxy"));
    cJSON *ic = spec_list(pod, "initContainers");
    assert_int_equal(cJSON_GetArraySize(ic), 3);
    static const char *const order[] = {"istio-init", "istio-proxy", "setup"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(ic, i), "name")), order[i]);
    cJSON *proxy = named(ic, "istio-proxy");
    assert_string_equal(path_str(proxy, "restartPolicy", NULL, NULL), "Always");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(proxy, "lifecycle"), "preStop"));
    assert_non_null(strstr(md_str(pod, "annotations", "sidecar.istio.io/status"),
                           "\"initContainers\":[\"istio-init\",\"istio-proxy\"],"
                           "\"containers\":null"));
    cJSON_Delete(pod);
    /* the annotation wins over the setting, either way */
    pod = inject_sq(&c, POD(",'annotations':{'sidecar.istio.io/nativeSidecar':'false'}", ""), &why,
                    err, sizeof err);
    assert_non_null(pod);
    assert_non_null(named(spec_list(pod, "containers"), "istio-proxy"));
    assert_null(named(spec_list(pod, "initContainers"), "istio-proxy"));
    cJSON_Delete(pod);
    c.inject.native_sidecars = false;
    pod = inject_sq(&c, POD(",'annotations':{'sidecar.istio.io/nativeSidecar':'true'}", ""), &why,
                    err, sizeof err);
    assert_non_null(pod);
    assert_null(named(spec_list(pod, "containers"), "istio-proxy"));
    assert_non_null(named(spec_list(pod, "initContainers"), "istio-proxy"));
    cJSON_Delete(pod);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* istiod's ./var/lib/istio/inject: the files win over the ConfigMap, and a change is read. */
static void test_injector_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/wh_inject_XXXXXX", pc[64], pv[64], err[600];
    const char *why;
    assert_non_null(mkdtemp(dir));
    snprintf(pc, sizeof pc, "%s/config", dir);
    snprintf(pv, sizeof pv, "%s/values", dir);
    write_file(pc, "policy: enabled\n");
    write_file(pv, "{\"global\": {\"tag\": \"from-file\"}}\n");
    wh_injector *wi = wh_injector_new("istio-system", "", dir);
    wh_config c = {.domain = "cluster.local", .injector = wi};
    counted n = {0};
    source_sink sink = wh_injector_sink(wi, (source_sink){count_event, count_synced, &n});
    sink.event(sink.ud, SOURCE_EV_UPSERT,
               cm_sq("istio-sidecar-injector", "policy: enabled", "{'global':{'tag':'cm'}}"), "t");
    assert_int_equal(n.events, 0);
    cJSON *pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_non_null(pod);
    assert_string_equal(
        path_str(named(spec_list(pod, "containers"), "istio-proxy"), "image", NULL, NULL),
        "docker.io/istio/proxyv2:from-file");
    cJSON_Delete(pod);
    /* changed files are read again (checked at most once a second); a bad change is
     * refused and the last good values stay */
    write_file(pv, "{\"global\": {\"tag\": \"second-version\"}}\n");
    struct timespec ts = {1, 100000000};
    nanosleep(&ts, NULL);
    pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_string_equal(
        path_str(named(spec_list(pod, "containers"), "istio-proxy"), "image", NULL, NULL),
        "docker.io/istio/proxyv2:second-version");
    cJSON_Delete(pod);
    write_file(pv, "{\"global\": {\"tag\": {}}}\n");
    nanosleep(&ts, NULL);
    pod = inject_sq(&c, POD("", ""), &why, err, sizeof err);
    assert_string_equal(
        path_str(named(spec_list(pod, "containers"), "istio-proxy"), "image", NULL, NULL),
        "docker.io/istio/proxyv2:second-version");
    cJSON_Delete(pod);
    wh_injector_free(wi);
    unlink(pc);
    unlink(pv);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handle_table),    cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_patch_applies),   cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_base64),          cmocka_unit_test(test_injection_metrics),
        cmocka_unit_test(test_injector_values), cmocka_unit_test(test_injector_refuses_bad),
        cmocka_unit_test(test_injector_policy), cmocka_unit_test(test_revision),
        cmocka_unit_test(test_native_sidecar),  cmocka_unit_test(test_injector_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
