/* inject: /inject, the pod Istio 1.24's injector makes with its default "sidecar" template
 * (injection-template.yaml in Istio's istio-discovery chart, and the post-processing in
 * its pkg/kube/inject/webhook.go), written here as C that builds the same
 * JSON rather than as a template engine:
 *
 *   1. policy: hostNetwork pods, kube-system and kube-public are left alone; the label
 *      (else annotation) sidecar.istio.io/inject y/yes/true/on injects, any other value
 *      does not, none means "inject" (the webhook's selectors already chose the pod);
 *   2. a pod injected before (sidecar.istio.io/status) loses the containers that status
 *      names first, so injecting twice gives the same pod, never two proxies;
 *   3. the template's labels, annotations, istio-init (istio-iptables' arguments),
 *      istio-proxy and volumes, from the values and the pod's sidecar.istio.io/...,
 *      traffic.sidecar.istio.io/..., status/readiness and proxy.istio.io/config annotations;
 *   4. merged into the pod the way a strategic merge patch does (maps by key, containers
 *      and volumes by name), a user's own istio-proxy container re-applied on top;
 *   5. post-processing: the /inject/cluster/<c>/net/<n> overrides, prometheus merge
 *      (annotations moved to ISTIO_PROMETHEUS_ANNOTATIONS, scrape pointed at 15020), app
 *      probe rewriting (ISTIO_KUBE_APP_PROBERS, probes sent to /app-health/<c>/...), the
 *      status annotation, and istio-proxy placed last (first with
 *      holdApplicationUntilProxyStarts), istio-init last among init containers.
 *
 * Values come from values.c (the istio-sidecar-injector ConfigMap over the flags); with
 * native sidecars (ENABLE_NATIVE_SIDECARS or sidecar.istio.io/nativeSidecar) istio-proxy is
 * the template's second init container, placed right after istio-init.
 *
 * Not supported (the pod is still injected, these inputs are ignored): CNI mode,
 * templates other than "sidecar" (inject.istio.io/templates), OpenShift UID ranges,
 * ProxyConfig custom resources, lightstep/datadog tracer extras.
 *
 * Pure function of its inputs and the settings it holds a reference to; runs on any
 * webhook thread.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/log.h"
#include "pilot/base/yaml.h"
#include "pilot/webhook/webhook_internal.h"

#define PROXY_NAME "istio-proxy"
#define INIT_NAME "istio-init"
#define STATUS_PORT_DEFAULT "15020"
/* Bounds on what a pod can make us build: beyond them the pod is refused, not truncated. */
#define WH_MAX_CONTAINERS 256

typedef struct inj {
    const wh_config *cfg;
    const wh_values *v;  /* resolved: the ConfigMap's values over the flags' */
    const cJSON *ann;    /* the pod's annotations (object or NULL) */
    const cJSON *labels; /* the pod's labels */
    const char *ns;
    char deploy_name[256];
    char owner[512];
    cJSON *proxy_config; /* merged ProxyConfig (mesh defaultConfig + annotation) */
    const char *mode;    /* interception mode */
    bool native;         /* istio-proxy as a native sidecar (an init container) */
    char cluster[128], network[128];
    bool cluster_env; /* ISTIO_META_CLUSTER_ID is istiod's proxyEnvs: moved last */
    char err[512];
} inj;

/* ---- small helpers --------------------------------------------------------------------- */

static const char *sget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The annotation's value, else def. */
static const char *anno(const inj *in, const char *key, const char *def)
{
    const char *s = sget(in->ann, key);
    return s ? s : def;
}

static bool has_anno(const inj *in, const char *key)
{
    return sget(in->ann, key) != NULL;
}

static const char *or_default(const char *s, const char *def)
{
    return s && *s ? s : def;
}

static cJSON *obj_child(cJSON *parent, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!cJSON_IsObject(o)) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
        o = cJSON_AddObjectToObject(parent, key);
    }
    return o;
}

static cJSON *arr_child(cJSON *parent, const char *key)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!cJSON_IsArray(a)) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
        a = cJSON_AddArrayToObject(parent, key);
    }
    return a;
}

static void set_str(cJSON *o, const char *key, const char *val)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateString(val));
    else
        cJSON_AddStringToObject(o, key, val);
}

static void set_item(cJSON *o, const char *key, cJSON *item)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, item);
    else
        cJSON_AddItemToObject(o, key, item);
}

static cJSON *find_named(const cJSON *arr, const char *name)
{
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = sget(it, "name");
        if (n && strcmp(n, name) == 0)
            return it;
    }
    return NULL;
}

static void remove_named(cJSON *arr, const char *name)
{
    int i = 0;
    cJSON *it = arr ? arr->child : NULL;
    while (it) {
        cJSON *next = it->next;
        const char *n = sget(it, "name");
        if (n && strcmp(n, name) == 0)
            cJSON_DeleteItemFromArray(arr, i);
        else
            i++;
        it = next;
    }
}

static cJSON *str_array(const char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

/* YAML bool as the injector reads annotations (y/yes/true/on). */
static bool truthy(const char *s)
{
    return s && (strcasecmp(s, "y") == 0 || strcasecmp(s, "yes") == 0 ||
                 strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0);
}

/* strconv.ParseBool: 1 true, 0 false, -1 not a bool. */
static int parse_bool(const char *s)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; s && i < 6; i++) {
        if (strcmp(s, t[i]) == 0)
            return 1;
        if (strcmp(s, f[i]) == 0)
            return 0;
    }
    return -1;
}

/* ---- validation of the annotations istiod checks (pkg/kube/inject/validate.go) --------- */

static bool port_list_ok(const char *s, bool allow_star)
{
    if (allow_star && strcmp(s, "*") == 0)
        return true;
    const char *p = s;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p) {
            long v = 0;
            for (const char *q = p; q < t; q++) {
                if (!isdigit((unsigned char)*q))
                    return false;
                v = v * 10 + (*q - '0');
                if (v > 65535)
                    return false;
            }
        }
        p = *e ? e + 1 : e;
    }
    return true;
}

static bool cidr_list_ok(const char *s, bool allow_star)
{
    if (allow_star && strcmp(s, "*") == 0)
        return true;
    char buf[128];
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n) {
            if (n >= sizeof buf || !memchr(p, '/', n))
                return false;
            memcpy(buf, p, n);
            buf[n] = '\0';
            char *slash = strchr(buf, '/');
            *slash = '\0';
            char *end;
            long bits = strtol(slash + 1, &end, 10);
            unsigned char a[16];
            int max = inet_pton(AF_INET, buf, a) == 1    ? 32
                      : inet_pton(AF_INET6, buf, a) == 1 ? 128
                                                         : -1;
            if (max < 0 || *end || slash[1] == '\0' || bits < 0 || bits > max)
                return false;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    return true;
}

static bool uint32_ok(const char *s)
{
    if (!*s)
        return false;
    unsigned long long v = 0;
    for (const char *q = s; *q; q++) {
        if (!isdigit((unsigned char)*q))
            return false;
        v = v * 10 + (unsigned)(*q - '0');
        if (v > 0xffffffffULL)
            return false;
    }
    return true;
}

/* 0, or -1 with in->err naming the annotation (istiod refuses the pod then). */
static int validate_annotations(inj *in)
{
    static const struct {
        const char *name;
        int kind; /* 0 mode, 1 bool, 2 port, 3 uint32, 4 include ranges, 5 exclude ranges,
                   * 6 include ports, 7 port list */
    } checks[] = {
        {"sidecar.istio.io/interceptionMode", 0},
        {"sidecar.istio.io/enableCoreDump", 1},
        {"status.sidecar.istio.io/port", 2},
        {"readiness.status.sidecar.istio.io/initialDelaySeconds", 3},
        {"readiness.status.sidecar.istio.io/periodSeconds", 3},
        {"readiness.status.sidecar.istio.io/failureThreshold", 3},
        {"traffic.sidecar.istio.io/includeOutboundIPRanges", 4},
        {"traffic.sidecar.istio.io/excludeOutboundIPRanges", 5},
        {"traffic.sidecar.istio.io/includeInboundPorts", 6},
        {"traffic.sidecar.istio.io/excludeInboundPorts", 7},
        {"traffic.sidecar.istio.io/excludeOutboundPorts", 7},
        {"prometheus.istio.io/merge-metrics", 1},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        const char *v = sget(in->ann, checks[i].name);
        if (!v)
            continue;
        bool ok = true;
        switch (checks[i].kind) {
        case 0:
            ok = strcmp(v, "REDIRECT") == 0 || strcmp(v, "TPROXY") == 0 || strcmp(v, "NONE") == 0;
            break;
        case 1:
            ok = parse_bool(v) >= 0;
            break;
        case 2:
            ok = port_list_ok(v, false) && !strchr(v, ',') && *v;
            break;
        case 3:
            ok = uint32_ok(v);
            break;
        case 4:
            ok = cidr_list_ok(v, true);
            break;
        case 5:
            ok = cidr_list_ok(v, false);
            break;
        case 6:
            ok = port_list_ok(v, true);
            break;
        default:
            ok = port_list_ok(v, false);
            break;
        }
        if (!ok) {
            snprintf(in->err, sizeof in->err, "invalid value '%.128s' for annotation '%s'", v,
                     checks[i].name);
            return -1;
        }
    }
    return 0;
}

/* ---- policy ---------------------------------------------------------------------------- */

/* The first selector of list (never/alwaysInjectSelector) the labels match; an invalid
 * one is skipped with a warning, as istiod does. */
static bool any_selector(const cJSON *list, const cJSON *labels, const char *what)
{
    const cJSON *sel;
    cJSON_ArrayForEach(sel, list)
    {
        int m = wh_selector_matches(sel, labels);
        if (m < 0)
            LOG_WARN(WH_LOG, "Invalid selector for %s: skipped", what);
        if (m > 0)
            return true;
    }
    return false;
}

/* NULL when the pod is to be injected, else why not (istiod's injectRequired). */
static const char *skip_reason(const wh_values *v, const cJSON *pod, const char *ns)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "hostNetwork")))
        return "hostNetwork pod";
    if (strcmp(ns, "kube-system") == 0 || strcmp(ns, "kube-public") == 0)
        return "system namespace";
    const char *sel =
        sget(cJSON_GetObjectItemCaseSensitive(md, "annotations"), "sidecar.istio.io/inject");
    const char *lbl =
        sget(cJSON_GetObjectItemCaseSensitive(md, "labels"), "sidecar.istio.io/inject");
    if (lbl)
        sel = lbl; /* the label is the newer API and wins */
    bool use_default = !sel || !*sel, inject = truthy(sel);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    if (use_default && any_selector(v->never_sel, labels, "NeverInjectSelector"))
        return "the pod's labels match neverInjectSelector";
    if (use_default && any_selector(v->always_sel, labels, "AlwaysInjectSelector")) {
        use_default = false;
        inject = true;
    }
    if (v->policy == WH_POLICY_OFF)
        return "injection policy is neither enabled nor disabled";
    if (use_default && v->policy == WH_POLICY_DISABLED)
        return "policy disabled and the pod does not ask for injection";
    if (!use_default && !inject)
        return "sidecar.istio.io/inject is false";
    return NULL;
}

/* ---- ProxyConfig ----------------------------------------------------------------------- */

static void json_merge(cJSON *dst, const cJSON *src)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, src)
    {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it))
            json_merge(cur, it);
        else
            set_item(dst, it->string, cJSON_Duplicate(it, 1));
    }
}

/* Parses YAML or JSON text into an object (NULL when it is not one). */
static cJSON *parse_object(const char *text)
{
    cJSON **docs = NULL, *out = NULL;
    size_t n = 0;
    char err[128];
    if (!text || yaml_to_json_docs(text, strlen(text), &docs, &n, err, sizeof err) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!out && cJSON_IsObject(docs[i]))
            out = docs[i];
        else
            cJSON_Delete(docs[i]);
    }
    free(docs);
    return out;
}

/* PROXY_CONFIG: the mesh's defaultConfig with the proxy.istio.io/config annotation on top,
 * less the fields equal to Istio's defaults (cleanProxyConfig: keeps pod specs small). */
static int build_proxy_config(inj *in)
{
    static const struct {
        const char *key, *str;
        double num;
    } defaults[] = {
        {"configPath", "./etc/istio/proxy", 0},
        {"binaryPath", "/usr/local/bin/envoy", 0},
        {"controlPlaneAuthPolicy", "MUTUAL_TLS", 0},
        {"serviceCluster", "istio-proxy", 0},
        {"drainDuration", "45s", 0},
        {"terminationDrainDuration", "5s", 0},
        {"discoveryAddress", "istiod.istio-system.svc:15012", 0},
        {"proxyAdminPort", NULL, 15000},
        {"statNameLength", NULL, 189},
        {"statusPort", NULL, 15020},
        {"concurrency", NULL, 2},
    };
    in->proxy_config = parse_object(in->v->proxy_config);
    if (!in->proxy_config)
        in->proxy_config = cJSON_CreateObject();
    const char *a = sget(in->ann, "proxy.istio.io/config");
    if (a) {
        cJSON *o = parse_object(a);
        if (!o) {
            snprintf(in->err, sizeof in->err,
                     "invalid value for annotation 'proxy.istio.io/config': not a YAML mapping");
            return -1;
        }
        json_merge(in->proxy_config, o);
        cJSON_Delete(o);
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(in->proxy_config, defaults[i].key);
        if ((defaults[i].str && cJSON_IsString(v) &&
             strcmp(v->valuestring, defaults[i].str) == 0) ||
            (!defaults[i].str && cJSON_IsNumber(v) && v->valuedouble == defaults[i].num))
            cJSON_DeleteItemFromObjectCaseSensitive(in->proxy_config, defaults[i].key);
    }
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(in->proxy_config, "proxyMetadata");
    if (cJSON_IsObject(pm) && !pm->child)
        cJSON_DeleteItemFromObjectCaseSensitive(in->proxy_config, "proxyMetadata");
    return 0;
}

/* ProxyConfig's or the values' holdApplicationUntilProxyStarts (reorderPod's holdPod). */
static bool hold_application(const inj *in)
{
    return in->v->hold || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                              in->proxy_config, "holdApplicationUntilProxyStarts"));
}

/* ---- pieces of the template ------------------------------------------------------------ */

static cJSON *env_value(const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    if (*value) /* corev1.EnvVar omits an empty value */
        cJSON_AddStringToObject(e, "value", value);
    return e;
}

static cJSON *env_field(const char *name, const char *path)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON *vf = cJSON_AddObjectToObject(e, "valueFrom");
    cJSON *fr = cJSON_AddObjectToObject(vf, "fieldRef");
    cJSON_AddStringToObject(fr, "fieldPath", path);
    return e;
}

/* resourceFieldRef as the API server returns it (divisor "0"), as istiod's patch has it. */
static cJSON *env_resource(const char *name, const char *resource)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON *vf = cJSON_AddObjectToObject(e, "valueFrom");
    cJSON *rr = cJSON_AddObjectToObject(vf, "resourceFieldRef");
    cJSON_AddStringToObject(rr, "divisor", "0");
    cJSON_AddStringToObject(rr, "resource", resource);
    return e;
}

/* The template's "resources": the proxyCPU/Memory(+Limit) annotations, else the values'
 * default (requests 100m/128Mi, limits 2 CPUs/1Gi). */
static cJSON *resources(const inj *in)
{
    const char *cpu = sget(in->ann, "sidecar.istio.io/proxyCPU");
    const char *mem = sget(in->ann, "sidecar.istio.io/proxyMemory");
    const char *cpul = sget(in->ann, "sidecar.istio.io/proxyCPULimit");
    const char *meml = sget(in->ann, "sidecar.istio.io/proxyMemoryLimit");
    cJSON *r = cJSON_CreateObject();
    if (cpu || mem || cpul || meml) {
        if (cpul || meml) {
            cJSON *l = cJSON_AddObjectToObject(r, "limits");
            if (cpul)
                cJSON_AddStringToObject(l, "cpu", cpul);
            if (meml)
                cJSON_AddStringToObject(l, "memory", meml);
        }
        if (cpu || mem) {
            cJSON *q = cJSON_AddObjectToObject(r, "requests");
            if (cpu)
                cJSON_AddStringToObject(q, "cpu", cpu);
            if (mem)
                cJSON_AddStringToObject(q, "memory", mem);
        }
        return r;
    }
    cJSON_Delete(r);
    /* global.proxy.resources; an empty mapping is false in the template: no resources */
    if (!cJSON_IsObject(in->v->resources) || !in->v->resources->child)
        return NULL;
    return cJSON_Duplicate(in->v->resources, 1);
}

static void add_resources(const inj *in, cJSON *c)
{
    cJSON *r = resources(in);
    if (r)
        cJSON_AddItemToObject(c, "resources", r);
}

/* istiod's ProxyImage: hub/image:tag with the image type (values' global.variant, else
 * ProxyConfig image.imageType, else the proxyImageType annotation) replacing a known one in
 * the tag. */
static void proxy_image(const inj *in, char *buf, size_t len)
{
    const char *type = in->v->variant;
    const cJSON *pimg = cJSON_GetObjectItemCaseSensitive(in->proxy_config, "image");
    if (cJSON_IsObject(pimg)) {
        const char *t = sget(pimg, "imageType");
        type = t ? t : "";
    }
    type = anno(in, "sidecar.istio.io/proxyImageType", type);
    char t[128];
    snprintf(t, sizeof t, "%s", in->v->tag);
    if (*type) {
        static const char *const known[] = {"-distroless", "-debug"};
        for (size_t i = 0; i < 2; i++)
            if (util_has_suffix(t, known[i])) {
                t[strlen(t) - strlen(known[i])] = '\0';
                break;
            }
        if (strcmp(type, "default") != 0) {
            size_t n = strlen(t);
            snprintf(t + n, sizeof t - n, "-%s", type);
        }
    }
    snprintf(buf, len, "%s/%s:%s", in->v->hub, in->v->image, t);
}

/* The template's image choice: the proxyImage annotation (else the values' image) when it
 * holds a '/', else the ProxyImage. */
static const char *container_image(const inj *in, const char *values_image, const char *proxy)
{
    const char *a = anno(in, "sidecar.istio.io/proxyImage", values_image);
    return strchr(a, '/') ? a : proxy;
}

/* excludeInboundPort: the status port added to the excluded inbound ports unless there
 * already, or unless the status port is 0. */
static void exclude_inbound(const inj *in, char *out, size_t len)
{
    const char *sp = anno(in, "status.sidecar.istio.io/port", in->v->status_port);
    const char *ex =
        anno(in, "traffic.sidecar.istio.io/excludeInboundPorts", in->v->exclude_inbound_ports);
    out[0] = '\0';
    if (!*sp || strcmp(sp, "0") == 0) {
        snprintf(out, len, "%s", ex);
        return;
    }
    size_t o = 0;
    const char *p = ex;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == strlen(sp) && strncmp(p, sp, n) == 0) {
            snprintf(out, len, "%s", ex);
            return;
        }
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n && o + n + 2 < len) {
            o += (size_t)snprintf(out + o, len - o, "%s%.*s", o ? "," : "", (int)n, p);
        }
        p = e ? e + 1 : p + strlen(p);
    }
    snprintf(out + o, len - o, "%s%s", o ? "," : "", sp);
}

static cJSON *init_container(const inj *in, const char *image)
{
    char excl[512], dports[600];
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", INIT_NAME);
    cJSON_AddStringToObject(c, "image", image);
    exclude_inbound(in, excl, sizeof excl);
    if (*excl)
        snprintf(dports, sizeof dports, "15090,15021,%s", excl);
    else
        snprintf(dports, sizeof dports, "15090,15021");
    cJSON *args = cJSON_AddArrayToObject(c, "args");
    const char *fixed[] = {
        "istio-iptables",
        "-p",
        "15001",
        "-z",
        "15006",
        "-u",
        "1337",
        "-m",
        in->mode,
        "-i",
        anno(in, "traffic.sidecar.istio.io/includeOutboundIPRanges", in->v->include_ip_ranges),
        "-x",
        anno(in, "traffic.sidecar.istio.io/excludeOutboundIPRanges", in->v->exclude_ip_ranges),
        "-b",
        anno(in, "traffic.sidecar.istio.io/includeInboundPorts", in->v->include_inbound_ports),
        "-d",
        dports};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        cJSON_AddItemToArray(args, cJSON_CreateString(fixed[i]));
    /* each given by its annotation, else (the port lists) by a non-empty value */
    const struct {
        const char *ann, *flag, *def;
    } opt[] = {
        {"traffic.sidecar.istio.io/includeOutboundPorts", "-q", in->v->include_outbound_ports},
        {"traffic.sidecar.istio.io/excludeOutboundPorts", "-o", in->v->exclude_outbound_ports},
        {"traffic.sidecar.istio.io/kubevirtInterfaces", "-k", ""},
        {"traffic.sidecar.istio.io/excludeInterfaces", "-c", ""},
    };
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        const char *v = anno(in, opt[i].ann, opt[i].def);
        if (has_anno(in, opt[i].ann) || *v) {
            cJSON_AddItemToArray(args, cJSON_CreateString(opt[i].flag));
            cJSON_AddItemToArray(args, cJSON_CreateString(v));
        }
    }
    char lvl[256];
    snprintf(lvl, sizeof lvl, "--log_output_level=%s",
             anno(in, "sidecar.istio.io/agentLogLevel", in->v->agent_log_level));
    cJSON_AddItemToArray(args, cJSON_CreateString(lvl));
    if (in->v->log_as_json)
        cJSON_AddItemToArray(args, cJSON_CreateString("--log_as_json"));
    if (in->v->force_apply)
        cJSON_AddItemToArray(args, cJSON_CreateString("--force-apply"));
    if (*in->v->pull_policy)
        cJSON_AddStringToObject(c, "imagePullPolicy", in->v->pull_policy);
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(in->proxy_config, "proxyMetadata");
    if (cJSON_IsObject(pm) && pm->child) {
        cJSON *env = cJSON_AddArrayToObject(c, "env");
        const cJSON *it;
        cJSON_ArrayForEach(it, pm)
        {
            if (cJSON_IsString(it))
                cJSON_AddItemToArray(env, env_value(it->string, it->valuestring));
        }
    }
    add_resources(in, c);
    cJSON *sc = cJSON_AddObjectToObject(c, "securityContext");
    cJSON_AddBoolToObject(sc, "allowPrivilegeEscalation", in->v->privileged);
    cJSON *caps = cJSON_AddObjectToObject(sc, "capabilities");
    const char *add[] = {"NET_ADMIN", "NET_RAW"}, *drop[] = {"ALL"};
    cJSON_AddItemToObject(caps, "add", str_array(add, 2));
    cJSON_AddItemToObject(caps, "drop", str_array(drop, 1));
    cJSON_AddBoolToObject(sc, "privileged", in->v->privileged);
    cJSON_AddFalseToObject(sc, "readOnlyRootFilesystem");
    cJSON_AddNumberToObject(sc, "runAsGroup", 0);
    cJSON_AddFalseToObject(sc, "runAsNonRoot");
    cJSON_AddNumberToObject(sc, "runAsUser", 0);
    return c;
}

static cJSON *probe_ready(int period, int failure, int initial)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "failureThreshold", failure);
    cJSON *hg = cJSON_AddObjectToObject(p, "httpGet");
    cJSON_AddStringToObject(hg, "path", "/healthz/ready");
    cJSON_AddNumberToObject(hg, "port", 15021);
    /* always written, as the template does: a re-injection's merge must reset an old
     * value (dropped again when 0, see drop_zero_delays) */
    cJSON_AddNumberToObject(p, "initialDelaySeconds", initial);
    cJSON_AddNumberToObject(p, "periodSeconds", period);
    cJSON_AddNumberToObject(p, "timeoutSeconds", 3);
    return p;
}

static int anno_int(const inj *in, const char *key, int def)
{
    const char *v = sget(in->ann, key);
    return v && uint32_ok(v) && strlen(v) < 10 ? atoi(v) : def;
}

/* ISTIO_META_POD_PORTS: the template's JSON list, one port per line. */
static char *pod_ports(const cJSON *containers)
{
    strbuf b;
    strbuf_init(&b, WH_MAX_REPLY);
    strbuf_appends(&b, "[");
    bool first = true;
    const cJSON *c, *p;
    cJSON_ArrayForEach(c, containers)
    {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
        {
            /* corev1.ContainerPort's field order, empty fields omitted */
            static const char *const keys[] = {"name", "hostPort", "containerPort", "protocol",
                                               "hostIP"};
            cJSON *o = cJSON_CreateObject();
            for (size_t k = 0; k < 5; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[k]);
                if ((cJSON_IsString(v) && *v->valuestring) ||
                    (cJSON_IsNumber(v) && v->valuedouble != 0))
                    cJSON_AddItemToObject(o, keys[k], cJSON_Duplicate(v, 1));
            }
            char *s = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (s && strcmp(s, "{}") != 0)
                strbuf_appendf(&b, "\n    %s%s", first ? "" : ",", s);
            if (s && strcmp(s, "{}") != 0)
                first = false;
            free(s);
        }
    }
    strbuf_appends(&b, "\n]");
    return strbuf_steal(&b, NULL);
}

static cJSON *volume_mount(const char *name, const char *path)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "mountPath", path);
    cJSON_AddStringToObject(m, "name", name);
    return m;
}

/* The user's JSON map of extra volumes/mounts (sidecar.istio.io/userVolume[Mount]), each
 * entry's key its name. */
static void add_user_entries(const inj *in, const char *annotation, cJSON *arr)
{
    const char *a = sget(in->ann, annotation);
    cJSON *o = a ? cJSON_Parse(a) : NULL;
    cJSON *map = cJSON_IsObject(o) ? o : NULL, *it;
    cJSON_ArrayForEach(it, map)
    {
        if (!cJSON_IsObject(it))
            continue;
        cJSON *e = cJSON_Duplicate(it, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(e, "name");
        cJSON_AddStringToObject(e, "name", it->string);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_Delete(o);
}

static cJSON *proxy_container(const inj *in, const cJSON *spec, const char *image)
{
    char buf[1024];
    cJSON *c = cJSON_CreateObject();
    bool tproxy = strcmp(in->mode, "TPROXY") == 0;
    bool bind =
        strcmp(anno(in, "sidecar.istio.io/capNetBindService", in->v->cap_bind ? "true" : "false"),
               "true") == 0;
    const cJSON *containers = cJSON_GetObjectItemCaseSensitive(spec, "containers");

    cJSON_AddStringToObject(c, "name", PROXY_NAME);
    cJSON_AddStringToObject(c, "image", image);
    if (in->native)
        cJSON_AddStringToObject(c, "restartPolicy", "Always");
    cJSON *ports = cJSON_AddArrayToObject(c, "ports");
    cJSON *pp = cJSON_CreateObject();
    cJSON_AddNumberToObject(pp, "containerPort", 15090);
    cJSON_AddStringToObject(pp, "name", "http-envoy-prom");
    cJSON_AddStringToObject(pp, "protocol", "TCP");
    cJSON_AddItemToArray(ports, pp);

    cJSON *args = cJSON_AddArrayToObject(c, "args");
    cJSON_AddItemToArray(args, cJSON_CreateString("proxy"));
    cJSON_AddItemToArray(args, cJSON_CreateString("sidecar"));
    cJSON_AddItemToArray(args, cJSON_CreateString("--domain"));
    snprintf(buf, sizeof buf, "$(POD_NAMESPACE).svc.%s", in->v->cluster_domain);
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "--proxyLogLevel=%s",
             anno(in, "sidecar.istio.io/logLevel", in->v->log_level));
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "--proxyComponentLogLevel=%s",
             anno(in, "sidecar.istio.io/componentLogLevel", in->v->component_log_level));
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "--log_output_level=%s",
             anno(in, "sidecar.istio.io/agentLogLevel", in->v->agent_log_level));
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
    if (in->v->sts_port) {
        snprintf(buf, sizeof buf, "--stsPort=%d", in->v->sts_port);
        cJSON_AddItemToArray(args, cJSON_CreateString(buf));
    }
    if (in->v->log_as_json)
        cJSON_AddItemToArray(args, cJSON_CreateString("--log_as_json"));
    if (*in->v->outlier_log_path) {
        snprintf(buf, sizeof buf, "--outlierLogPath=%s", in->v->outlier_log_path);
        cJSON_AddItemToArray(args, cJSON_CreateString(buf));
    }

    /* the values' lifecycle, else the hold (not with native sidecars, which start first
     * anyway), else a native sidecar's drain on preStop */
    if (in->v->lifecycle) {
        cJSON_AddItemToObject(c, "lifecycle", cJSON_Duplicate(in->v->lifecycle, 1));
    } else if (hold_application(in) && !in->native) {
        cJSON *lc = cJSON_AddObjectToObject(c, "lifecycle");
        cJSON *ps = cJSON_AddObjectToObject(lc, "postStart");
        cJSON *ex = cJSON_AddObjectToObject(ps, "exec");
        const char *cmd[] = {"pilot-agent", "wait"};
        cJSON_AddItemToObject(ex, "command", str_array(cmd, 2));
    } else if (in->native) {
        cJSON *lc = cJSON_AddObjectToObject(c, "lifecycle");
        cJSON *ps = cJSON_AddObjectToObject(lc, "preStop");
        cJSON *ex = cJSON_AddObjectToObject(ps, "exec");
        snprintf(buf, sizeof buf, "--debug-port=%s",
                 anno(in, "status.sidecar.istio.io/port", in->v->status_port));
        const char *cmd[] = {"pilot-agent", "request", buf, "POST", "drain"};
        cJSON_AddItemToObject(ex, "command", str_array(cmd, 5));
    }

    cJSON *env = cJSON_AddArrayToObject(c, "env");
    cJSON_AddItemToArray(env, env_value("PILOT_CERT_PROVIDER", in->v->cert_provider));
    const char *rev = in->v->values_revision;
    if (in->v->ca_address && *in->v->ca_address)
        snprintf(buf, sizeof buf, "%s", in->v->ca_address);
    else
        snprintf(buf, sizeof buf, "istiod%s%s.%s.svc:15012", *rev ? "-" : "", rev,
                 in->v->istio_namespace);
    cJSON_AddItemToArray(env, env_value("CA_ADDR", buf));
    cJSON_AddItemToArray(env, env_field("POD_NAME", "metadata.name"));
    cJSON_AddItemToArray(env, env_field("POD_NAMESPACE", "metadata.namespace"));
    cJSON_AddItemToArray(env, env_field("INSTANCE_IP", "status.podIP"));
    cJSON_AddItemToArray(env, env_field("SERVICE_ACCOUNT", "spec.serviceAccountName"));
    cJSON_AddItemToArray(env, env_field("HOST_IP", "status.hostIP"));
    cJSON_AddItemToArray(env, env_resource("ISTIO_CPU_LIMIT", "limits.cpu"));
    char *pc = cJSON_PrintUnformatted(in->proxy_config);
    snprintf(buf, sizeof buf, "%s\n", pc ? pc : "{}");
    if (pc && strlen(pc) + 2 > sizeof buf) {
        char *big = xasprintf("%s\n", pc);
        cJSON_AddItemToArray(env, env_value("PROXY_CONFIG", big));
        free(big);
    } else {
        cJSON_AddItemToArray(env, env_value("PROXY_CONFIG", buf));
    }
    free(pc);
    char *ports_json = pod_ports(containers);
    cJSON_AddItemToArray(env, env_value("ISTIO_META_POD_PORTS", ports_json ? ports_json : "[\n]"));
    free(ports_json);
    strbuf apps;
    strbuf_init(&apps, WH_MAX_REPLY);
    const cJSON *it;
    cJSON_ArrayForEach(it, containers)
    {
        const char *n = sget(it, "name");
        if (n && strcmp(n, PROXY_NAME) != 0)
            strbuf_appendf(&apps, "%s%s", apps.len ? "," : "", n);
    }
    cJSON_AddItemToArray(env, env_value("ISTIO_META_APP_CONTAINERS", apps.data ? apps.data : ""));
    strbuf_free(&apps);
    cJSON_AddItemToArray(env, env_resource("GOMEMLIMIT", "limits.memory"));
    cJSON_AddItemToArray(env, env_resource("GOMAXPROCS", "limits.cpu"));
    cJSON_AddItemToArray(env, env_value("ISTIO_META_CLUSTER_ID", in->v->cluster_id));
    cJSON_AddItemToArray(env, env_field("ISTIO_META_NODE_NAME", "spec.nodeName"));
    cJSON_AddItemToArray(env, env_value("ISTIO_META_INTERCEPTION_MODE", in->mode));
    if (in->deploy_name[0])
        cJSON_AddItemToArray(env, env_value("ISTIO_META_WORKLOAD_NAME", in->deploy_name));
    if (in->owner[0])
        cJSON_AddItemToArray(env, env_value("ISTIO_META_OWNER", in->owner));
    if (has_anno(in, "sidecar.istio.io/bootstrapOverride"))
        cJSON_AddItemToArray(env, env_value("ISTIO_BOOTSTRAP_OVERRIDE",
                                            "/etc/istio/custom-bootstrap/custom_bootstrap.json"));
    const char *td = in->v->trust_domain;
    cJSON_AddItemToArray(env, env_value("ISTIO_META_MESH_ID", or_default(in->v->mesh_id, td)));
    cJSON_AddItemToArray(env, env_value("TRUST_DOMAIN", td));
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(in->proxy_config, "proxyMetadata");
    if (!cJSON_IsObject(pm))
        pm = NULL;
    cJSON_ArrayForEach(it, pm)
    {
        if (cJSON_IsString(it))
            cJSON_AddItemToArray(env, env_value(it->string, it->valuestring));
    }

    if (*in->v->pull_policy)
        cJSON_AddStringToObject(c, "imagePullPolicy", in->v->pull_policy);
    if (strcmp(anno(in, "status.sidecar.istio.io/port", in->v->status_port), "0") != 0) {
        if (in->v->startup_enabled)
            cJSON_AddItemToObject(c, "startupProbe", probe_ready(1, in->v->startup_failure, 0));
        cJSON_AddItemToObject(
            c, "readinessProbe",
            probe_ready(anno_int(in, "readiness.status.sidecar.istio.io/periodSeconds",
                                 in->v->ready_period),
                        anno_int(in, "readiness.status.sidecar.istio.io/failureThreshold",
                                 in->v->ready_failure),
                        anno_int(in, "readiness.status.sidecar.istio.io/initialDelaySeconds",
                                 in->v->ready_initial)));
    }

    cJSON *sc = cJSON_AddObjectToObject(c, "securityContext");
    cJSON_AddBoolToObject(sc, "allowPrivilegeEscalation", in->v->privileged);
    cJSON *caps = cJSON_AddObjectToObject(sc, "capabilities");
    if (tproxy || bind) {
        cJSON *add = cJSON_AddArrayToObject(caps, "add");
        if (tproxy)
            cJSON_AddItemToArray(add, cJSON_CreateString("NET_ADMIN"));
        if (bind)
            cJSON_AddItemToArray(add, cJSON_CreateString("NET_BIND_SERVICE"));
    }
    const char *drop[] = {"ALL"};
    cJSON_AddItemToObject(caps, "drop", str_array(drop, 1));
    cJSON_AddBoolToObject(sc, "privileged", in->v->privileged);
    cJSON_AddTrueToObject(sc, "readOnlyRootFilesystem");
    cJSON_AddNumberToObject(sc, "runAsGroup", 1337);
    cJSON_AddBoolToObject(sc, "runAsNonRoot", !(tproxy || bind));
    cJSON_AddNumberToObject(sc, "runAsUser", tproxy || bind ? 0 : 1337);

    add_resources(in, c);
    cJSON *vm = cJSON_AddArrayToObject(c, "volumeMounts");
    cJSON_AddItemToArray(vm,
                         volume_mount("workload-socket", "/var/run/secrets/workload-spiffe-uds"));
    cJSON_AddItemToArray(vm, volume_mount("credential-socket", "/var/run/secrets/credential-uds"));
    cJSON_AddItemToArray(
        vm, volume_mount("workload-certs", "/var/run/secrets/workload-spiffe-credentials"));
    bool istiod_certs = strcmp(in->v->cert_provider, "istiod") == 0;
    if (istiod_certs)
        cJSON_AddItemToArray(vm, volume_mount("istiod-ca-cert", "/var/run/secrets/istio"));
    cJSON_AddItemToArray(vm, volume_mount("istio-data", "/var/lib/istio/data"));
    if (has_anno(in, "sidecar.istio.io/bootstrapOverride"))
        cJSON_AddItemToArray(
            vm, volume_mount("custom-bootstrap-volume", "/etc/istio/custom-bootstrap"));
    cJSON_AddItemToArray(vm, volume_mount("istio-envoy", "/etc/istio/proxy"));
    cJSON_AddItemToArray(vm, volume_mount("istio-token", "/var/run/secrets/tokens"));
    if (in->v->mount_mtls) {
        cJSON *m = volume_mount("istio-certs", "/etc/certs/");
        cJSON_AddTrueToObject(m, "readOnly");
        cJSON_AddItemToArray(vm, m);
    }
    cJSON_AddItemToArray(vm, volume_mount("istio-podinfo", "/etc/istio/pod"));
    add_user_entries(in, "sidecar.istio.io/userVolumeMount", vm);
    return c;
}

static cJSON *template_volumes(const inj *in, const cJSON *spec)
{
    cJSON *v = cJSON_CreateArray(), *o, *x;
    /* emptyDir without a body: the template's "emptyDir:" is null, so the volume has no
     * source in istiod's patch (the API server defaults it to an emptyDir) */
    const char *bare[] = {"workload-socket", "credential-socket", "workload-certs"};
    for (size_t i = 0; i < 3; i++) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", bare[i]);
        cJSON_AddItemToArray(v, o);
    }
    const char *bo = sget(in->ann, "sidecar.istio.io/bootstrapOverride");
    if (bo) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "configMap"), "name", bo);
        cJSON_AddStringToObject(o, "name", "custom-bootstrap-volume");
        cJSON_AddItemToArray(v, o);
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "emptyDir"), "medium", "Memory");
    cJSON_AddStringToObject(o, "name", "istio-envoy");
    cJSON_AddItemToArray(v, o);
    o = cJSON_CreateObject();
    cJSON_AddObjectToObject(o, "emptyDir");
    cJSON_AddStringToObject(o, "name", "istio-data");
    cJSON_AddItemToArray(v, o);
    o = cJSON_CreateObject();
    x = cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "downwardAPI"), "items");
    const char *fields[] = {"labels", "annotations"};
    for (size_t i = 0; i < 2; i++) {
        cJSON *item = cJSON_CreateObject();
        char fp[64];
        snprintf(fp, sizeof fp, "metadata.%s", fields[i]);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(item, "fieldRef"), "fieldPath", fp);
        cJSON_AddStringToObject(item, "path", fields[i]);
        cJSON_AddItemToArray(x, item);
    }
    cJSON_AddStringToObject(o, "name", "istio-podinfo");
    cJSON_AddItemToArray(v, o);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "istio-token");
    x = cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "projected"), "sources");
    cJSON *src = cJSON_CreateObject();
    cJSON *sat = cJSON_AddObjectToObject(src, "serviceAccountToken");
    cJSON_AddStringToObject(sat, "audience", in->v->audience);
    cJSON_AddNumberToObject(sat, "expirationSeconds", 43200);
    cJSON_AddStringToObject(sat, "path", "istio-token");
    cJSON_AddItemToArray(x, src);
    cJSON_AddItemToArray(v, o);
    if (strcmp(in->v->cert_provider, "istiod") == 0) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "configMap"), "name",
                                "istio-ca-root-cert");
        cJSON_AddStringToObject(o, "name", "istiod-ca-cert");
        cJSON_AddItemToArray(v, o);
    }
    if (in->v->mount_mtls) {
        const char *sa = sget(spec, "serviceAccountName");
        char sn[300];
        snprintf(sn, sizeof sn, "istio.%.256s", sa && *sa ? sa : "default");
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", "istio-certs");
        x = cJSON_AddObjectToObject(o, "secret");
        cJSON_AddTrueToObject(x, "optional");
        cJSON_AddStringToObject(x, "secretName", sn);
        cJSON_AddItemToArray(v, o);
    }
    add_user_entries(in, "sidecar.istio.io/userVolume", v);
    return v;
}

/* ---- workload identity (kube.GetDeployMetaFromPod) --------------------------------------- */

static void deploy_meta(inj *in, const cJSON *md)
{
    const char *name = sget(md, "name");
    const char *gen = sget(md, "generateName");
    const char *kind = "Pod", *api = "v1";
    char dn[256];
    snprintf(dn, sizeof dn, "%s", name ? name : "");
    if (gen && *gen) {
        const cJSON *ref;
        cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(md, "ownerReferences"))
        {
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
                continue;
            const char *rk = sget(ref, "kind"), *ra = sget(ref, "apiVersion");
            const char *rn = sget(ref, "name");
            kind = rk ? rk : "";
            api = ra ? ra : "";
            snprintf(dn, sizeof dn, "%s", rn ? rn : "");
            const char *hash = sget(in->labels, "pod-template-hash");
            size_t dl = strlen(dn), hl = hash ? strlen(hash) : 0;
            if (strcmp(kind, "ReplicaSet") == 0 && hl && dl > hl + 1 &&
                strcmp(dn + dl - hl, hash) == 0 && dn[dl - hl - 1] == '-') {
                dn[dl - hl - 1] = '\0';
                kind = "Deployment";
            } else if (strcmp(kind, "ReplicationController") == 0 &&
                       sget(in->labels, "deploymentconfig")) {
                snprintf(dn, sizeof dn, "%s", sget(in->labels, "deploymentconfig"));
                kind = "DeploymentConfig";
            } else if (strcmp(kind, "Job") == 0) {
                /* a CronJob's job is "<cronjob>-<8 to 10 digits>" */
                const char *dash = strrchr(dn, '-');
                size_t nd = dash ? strlen(dash + 1) : 0;
                bool digits = nd >= 8 && nd <= 10;
                for (size_t k = 0; digits && k < nd; k++)
                    digits = isdigit((unsigned char)dash[1 + k]);
                if (digits && dash > dn) {
                    dn[dash - dn] = '\0';
                    kind = "CronJob";
                    api = "batch/v1";
                }
            }
            break;
        }
    }
    if (!dn[0])
        snprintf(dn, sizeof dn, "%s", name ? name : "");
    snprintf(in->deploy_name, sizeof in->deploy_name, "%s", dn);
    if (*api && dn[0]) {
        char lk[64];
        size_t k = 0;
        for (; kind[k] && k + 1 < sizeof lk; k++)
            lk[k] = (char)tolower((unsigned char)kind[k]);
        lk[k] = '\0';
        snprintf(in->owner, sizeof in->owner, "kubernetes://apis/%s/namespaces/%s/%ss/%s", api,
                 in->ns, lk, dn);
    }
}

/* ---- merging (strategic merge patch semantics for what the template touches) ------------- */

/* The merge key of a list a strategic merge merges item by item; NULL: replaced whole. */
static const char *merge_key(const char *list)
{
    static const struct {
        const char *list, *key;
    } keys[] = {{"env", "name"},
                {"volumeMounts", "mountPath"},
                {"ports", "containerPort"},
                {"containers", "name"},
                {"initContainers", "name"},
                {"volumes", "name"},
                {"imagePullSecrets", "name"}};
    for (size_t i = 0; list && i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].list, list) == 0)
            return keys[i].key;
    return NULL;
}

static cJSON *find_by_key(const cJSON *arr, const char *key, const cJSON *val)
{
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_Compare(cJSON_GetObjectItemCaseSensitive(it, key), val, true))
            return it;
    }
    return NULL;
}

static void smp_merge(cJSON *dst, const cJSON *patch);

static int index_by_key(const cJSON *arr, const char *key, const cJSON *item)
{
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(item, key);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (kv && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(it, key), kv, true))
            return i;
        i++;
    }
    return -1;
}

/* Merges patch items into dst by key, in the order a strategic merge gives: the patch's
 * items (each merged with dst's item of the same key) and dst's other items, interleaved
 * by their place in dst, an item only in the patch going first. */
static void smp_merge_list(cJSON *dst, const cJSON *patch, const char *key)
{
    cJSON *server = cJSON_Duplicate(dst, 1), *left = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, patch)
    {
        const cJSON *kv = cJSON_GetObjectItemCaseSensitive(it, key);
        cJSON *cur = kv ? find_by_key(server, key, kv) : NULL;
        cJSON *m = cur ? cJSON_Duplicate(cur, 1) : cJSON_Duplicate(it, 1);
        if (cur && cJSON_IsObject(cur) && cJSON_IsObject(it))
            smp_merge(m, it);
        else if (cur) {
            cJSON_Delete(m);
            m = cJSON_Duplicate(it, 1);
        }
        cJSON_AddItemToArray(left, m);
    }
    while (dst->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(dst, dst->child));
    cJSON *l = left->child, *r = server->child;
    while (l || r) {
        /* server-only items: skip those the patch also names */
        if (r && index_by_key(left, key, r) >= 0) {
            r = r->next;
            continue;
        }
        bool take_left = l && (!r || index_by_key(server, key, l) < 0 ||
                               index_by_key(server, key, l) < index_by_key(server, key, r));
        cJSON *src = take_left ? l : r;
        cJSON_AddItemToArray(dst, cJSON_Duplicate(src, 1));
        if (take_left)
            l = l->next;
        else
            r = r->next;
    }
    cJSON_Delete(left);
    cJSON_Delete(server);
}

static void smp_merge(cJSON *dst, const cJSON *patch)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, patch)
    {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, it->string);
        const char *key = merge_key(it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it))
            smp_merge(cur, it);
        else if (key && cJSON_IsArray(cur) && cJSON_IsArray(it))
            smp_merge_list(cur, it, key);
        else
            set_item(dst, it->string, cJSON_Duplicate(it, 1));
    }
}

/* Moves the item named name to the front or the back of arr. */
static void move_named(cJSON *arr, const char *name, bool first)
{
    int i = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = sget(it, "name");
        if (n && strcmp(n, name) == 0)
            break;
        i++;
    }
    if (!it)
        return;
    cJSON *d = cJSON_DetachItemFromArray(arr, i);
    if (first)
        cJSON_InsertItemInArray(arr, 0, d);
    else
        cJSON_AddItemToArray(arr, d);
}

/* ---- post-processing ------------------------------------------------------------------- */

/* strutil.SanitizeLabelName: anything not [a-zA-Z0-9_] becomes '_'. */
static void sanitize(const char *in, char *out, size_t len)
{
    size_t i = 0;
    for (; in[i] && i + 1 < len; i++)
        out[i] = isalnum((unsigned char)in[i]) || in[i] == '_' ? in[i] : '_';
    out[i] = '\0';
}

static const char *prom_kind(const char *key)
{
    char s[128];
    sanitize(key, s, sizeof s);
    if (strcmp(s, "prometheus_io_scrape") == 0)
        return "scrape";
    if (strcmp(s, "prometheus_io_path") == 0)
        return "path";
    if (strcmp(s, "prometheus_io_port") == 0)
        return "port";
    return NULL;
}

static void clear_prometheus(cJSON *ann)
{
    cJSON *it = ann ? ann->child : NULL;
    while (it) {
        cJSON *next = it->next;
        if (it->string && prom_kind(it->string))
            cJSON_Delete(cJSON_DetachItemViaPointer(ann, it));
        it = next;
    }
}

static void prometheus_merge(const inj *in, cJSON *ann, cJSON *proxy)
{
    const char *scrape = NULL, *path = NULL, *port = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, ann)
    {
        const char *k = it->string ? prom_kind(it->string) : NULL;
        if (!k || !cJSON_IsString(it))
            continue;
        if (strcmp(k, "scrape") == 0)
            scrape = it->valuestring;
        else if (strcmp(k, "path") == 0)
            path = it->valuestring;
        else
            port = it->valuestring;
    }
    if (scrape && parse_bool(scrape) == 0)
        return;
    const char *mm = sget(in->ann, "prometheus.istio.io/merge-metrics");
    if (mm && parse_bool(mm) == 0)
        return;
    if (port && strcmp(port, STATUS_PORT_DEFAULT) == 0)
        return; /* already ours: re-injected, or the user points at the agent */
    if (proxy && (scrape || path || port)) {
        cJSON *sc = cJSON_CreateObject();
        cJSON_AddStringToObject(sc, "scrape", scrape ? scrape : "");
        cJSON_AddStringToObject(sc, "path", path ? path : "");
        cJSON_AddStringToObject(sc, "port", port ? port : "");
        char *s = cJSON_PrintUnformatted(sc);
        cJSON_Delete(sc);
        cJSON_AddItemToArray(arr_child(proxy, "env"),
                             env_value("ISTIO_PROMETHEUS_ANNOTATIONS", s ? s : "{}"));
        free(s);
    }
    clear_prometheus(ann);
    set_str(ann, "prometheus.io/port", STATUS_PORT_DEFAULT);
    set_str(ann, "prometheus.io/path", "/stats/prometheus");
    set_str(ann, "prometheus.io/scrape", "true");
}

/* The prober the agent runs for a probe (KubeAppProbers entry), NULL when it has none or
 * its port is the status port (already rewritten) or a name the container lacks. */
static cJSON *app_prober(const cJSON *probe, const cJSON *c, int status_port)
{
    if (!cJSON_IsObject(probe))
        return NULL;
    const cJSON *hg = cJSON_GetObjectItemCaseSensitive(probe, "httpGet");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(probe, "tcpSocket");
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(probe, "grpc");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(probe, "timeoutSeconds");
    cJSON *p = cJSON_CreateObject();
    if (cJSON_IsObject(hg) || cJSON_IsObject(ts)) {
        const cJSON *act = cJSON_IsObject(hg) ? hg : ts;
        cJSON *a = cJSON_CreateObject();
        /* corev1's field order: path, port, host, scheme, httpHeaders (tcp: port, host) */
        static const char *const keys[] = {"path", "port", "host", "scheme", "httpHeaders"};
        for (size_t k = 0; k < 5; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(act, keys[k]);
            if (!v || (cJSON_IsString(v) && !*v->valuestring && k != 1))
                continue;
            if (k == 1 && cJSON_IsString(v)) {
                /* a named port: the container's number for it */
                const cJSON *cp, *num = NULL;
                cJSON_ArrayForEach(cp, cJSON_GetObjectItemCaseSensitive(c, "ports"))
                {
                    const char *n = sget(cp, "name");
                    if (n && strcmp(n, v->valuestring) == 0)
                        num = cJSON_GetObjectItemCaseSensitive(cp, "containerPort");
                }
                if (!cJSON_IsNumber(num)) {
                    cJSON_Delete(a);
                    cJSON_Delete(p);
                    return NULL;
                }
                cJSON_AddNumberToObject(a, "port", num->valuedouble);
                continue;
            }
            if (k == 1 && cJSON_IsNumber(v) && v->valueint == status_port) {
                cJSON_Delete(a);
                cJSON_Delete(p);
                return NULL;
            }
            cJSON_AddItemToObject(a, keys[k], cJSON_Duplicate(v, 1));
        }
        cJSON_AddItemToObject(p, cJSON_IsObject(hg) ? "httpGet" : "tcpSocket", a);
    } else if (cJSON_IsObject(gr)) {
        cJSON_AddItemToObject(p, "grpc", cJSON_Duplicate(gr, 1));
    } else {
        cJSON_Delete(p);
        return NULL;
    }
    if (cJSON_IsNumber(to) && to->valuedouble != 0)
        cJSON_AddNumberToObject(p, "timeoutSeconds", to->valuedouble);
    return p;
}

/* The probe sent to the agent instead (convertAppProber). */
static void rewrite_probe(cJSON *c, const char *key, const char *url, int status_port)
{
    cJSON *probe = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!cJSON_IsObject(probe))
        return;
    cJSON *hg = cJSON_GetObjectItemCaseSensitive(probe, "httpGet");
    if (cJSON_IsObject(hg)) {
        set_item(hg, "port", cJSON_CreateNumber(status_port));
        set_str(hg, "path", url);
        const char *sch = sget(hg, "scheme");
        if (sch && strcmp(sch, "HTTPS") == 0)
            set_str(hg, "scheme", "HTTP");
        return;
    }
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(probe, "tcpSocket")) ||
        cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(probe, "grpc"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(probe, "tcpSocket");
        cJSON_DeleteItemFromObjectCaseSensitive(probe, "grpc");
        cJSON *n = cJSON_AddObjectToObject(probe, "httpGet");
        cJSON_AddStringToObject(n, "path", url);
        cJSON_AddNumberToObject(n, "port", status_port);
    }
}

static int cmp_item_name(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

static void probe_rewrite(const inj *in, cJSON *spec, cJSON *proxy, bool previously_injected)
{
    /* the annotation, else the values' sidecarInjectorWebhook.rewriteAppHTTPProbe */
    const char *rw = sget(in->ann, "sidecar.istio.io/rewriteAppHTTPProbers");
    if (rw ? parse_bool(rw) == 0 : !in->v->rewrite_probes)
        return;
    const char *sps = anno(in, "status.sidecar.istio.io/port", STATUS_PORT_DEFAULT);
    int sp = uint32_ok(sps) && strlen(sps) < 6 ? atoi(sps) : 15020;
    static const char *const probes[] = {"readinessProbe", "livenessProbe", "startupProbe"};
    static const char *const ends[] = {"readyz", "livez", "startupz"};
    const char *lists[] = {"initContainers", "containers"};
    cJSON *out = cJSON_CreateObject();
    for (int pass = 0; pass < 2; pass++) {
        for (size_t l = 0; l < 2; l++) {
            cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, lists[l]))
            {
                const char *n = sget(c, "name");
                if (!n || strcmp(n, PROXY_NAME) == 0)
                    continue;
                for (size_t k = 0; k < 3; k++) {
                    char url[320];
                    snprintf(url, sizeof url, "/app-health/%.256s/%s", n, ends[k]);
                    if (pass == 0) {
                        cJSON *p =
                            app_prober(cJSON_GetObjectItemCaseSensitive(c, probes[k]), c, sp);
                        if (p)
                            set_item(out, url, p);
                    } else {
                        rewrite_probe(c, probes[k], url, sp);
                    }
                }
            }
        }
    }
    if (out->child && proxy) {
        /* Go marshals a map with sorted keys */
        size_t n = (size_t)cJSON_GetArraySize(out), i = 0;
        cJSON **items = xcalloc(n, sizeof *items);
        while (out->child)
            items[i++] = cJSON_DetachItemViaPointer(out, out->child);
        qsort(items, n, sizeof *items, cmp_item_name);
        for (i = 0; i < n; i++)
            cJSON_AddItemToObject(out, items[i]->string, items[i]);
        free(items);
        cJSON *env = arr_child(proxy, "env");
        cJSON *old = find_named(env, "ISTIO_KUBE_APP_PROBERS");
        if (previously_injected && old) {
            cJSON *prev = cJSON_Parse(sget(old, "value") ? sget(old, "value") : "");
            const cJSON *pv = cJSON_IsObject(prev) ? prev : NULL, *it;
            cJSON_ArrayForEach(it, pv) set_item(out, it->string, cJSON_Duplicate(it, 1));
            cJSON_Delete(prev);
            char *s = cJSON_PrintUnformatted(out);
            set_str(old, "value", s ? s : "{}");
            free(s);
        } else if (!previously_injected) {
            char *s = cJSON_PrintUnformatted(out);
            cJSON_AddItemToArray(env, env_value("ISTIO_KUBE_APP_PROBERS", s ? s : "{}"));
            free(s);
        }
    }
    cJSON_Delete(out);
}

/* sidecar.istio.io/status: what the template added, so a later injection can strip it. */
static char *status_annotation(const inj *in, const cJSON *tspec)
{
    static const char *const lists[] = {"initContainers", "containers", "volumes",
                                        "imagePullSecrets"};
    cJSON *st = cJSON_CreateObject();
    for (size_t l = 0; l < 4; l++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(tspec, lists[l]);
        if (!cJSON_IsArray(arr) || !arr->child) {
            cJSON_AddNullToObject(st, lists[l]);
            continue;
        }
        cJSON *names = cJSON_AddArrayToObject(st, lists[l]);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) cJSON_AddItemToArray(
            names, cJSON_CreateString(sget(it, "name") ? sget(it, "name") : ""));
    }
    cJSON_AddStringToObject(st, "revision", or_default(in->v->revision, "default"));
    char *s = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    return s;
}

/* istiod's proxyEnvs (the /inject/cluster/<c>/net/<n> path, the values' clusterName, any
 * network): those envs leave their place and go last, sorted (updateClusterEnvs). */
static void cluster_envs(const inj *in, cJSON *proxy)
{
    cJSON *env = arr_child(proxy, "env");
    if (in->cluster_env)
        remove_named(env, "ISTIO_META_CLUSTER_ID");
    if (in->network[0])
        remove_named(env, "ISTIO_META_NETWORK");
    if (in->cluster_env)
        cJSON_AddItemToArray(env, env_value("ISTIO_META_CLUSTER_ID", in->cluster));
    if (in->network[0])
        cJSON_AddItemToArray(env, env_value("ISTIO_META_NETWORK", in->network));
}

/* adjustInitContainerUser: a user's istio-proxy with its own runAsUser makes istio-iptables
 * exempt that uid (-u), except uid 0; in TPROXY mode the proxy must still run as root. */
static void adjust_init_user(const inj *in, const cJSON *user, cJSON *spec)
{
    const cJSON *usc = cJSON_GetObjectItemCaseSensitive(user, "securityContext");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(usc, "runAsUser");
    const cJSON *gid = cJSON_GetObjectItemCaseSensitive(usc, "runAsGroup");
    cJSON *init = find_named(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"), INIT_NAME);
    if ((!cJSON_IsNumber(uid) && !cJSON_IsNumber(gid)) || !init)
        return;
    const char *pc_mode = sget(in->proxy_config, "interceptionMode");
    const char *am = sget(in->ann, "sidecar.istio.io/interceptionMode");
    bool tproxy = (pc_mode && strcmp(pc_mode, "TPROXY") == 0) || (am && strcmp(am, "TPROXY") == 0);
    if (tproxy && cJSON_IsNumber(uid)) {
        cJSON *p = find_named(cJSON_GetObjectItemCaseSensitive(spec, "containers"), PROXY_NAME);
        if (!p)
            p = find_named(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"), PROXY_NAME);
        cJSON *sc = p ? cJSON_GetObjectItemCaseSensitive(p, "securityContext") : NULL;
        if (cJSON_IsObject(sc))
            set_item(sc, "runAsUser", cJSON_CreateNumber(0));
    }
    if (!cJSON_IsNumber(uid) || uid->valuedouble == 0)
        return;
    cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(init, "args"))
    {
        if (cJSON_IsString(a) && strcmp(a->valuestring, "-u") == 0 && a->next) {
            char u[32];
            snprintf(u, sizeof u, "%.0f", uid->valuedouble);
            cJSON_ReplaceItemViaPointer(cJSON_GetObjectItemCaseSensitive(init, "args"), a->next,
                                        cJSON_CreateString(u));
            return;
        }
    }
}

/* ---- the injection ------------------------------------------------------------------- */

cJSON *wh_inject_pod(const wh_config *cfg, const wh_inject_params *pp, const cJSON *pod_in,
                     const char *ns_req, const char **why, char *err, size_t errlen)
{
    wh_settings *settings = wh_injector_acquire(cfg->injector);
    wh_values vals;
    wh_values_resolve(&cfg->inject, settings, &vals);
    /* mesh config defaultConfig as it is now (pilot/meshwatch.c follows it) */
    char *mesh_pc = NULL;
    if (wh_injector_proxy_config(cfg->injector, &mesh_pc))
        vals.proxy_config = mesh_pc;
    inj in = {.cfg = cfg, .v = &vals};
    cJSON *pod = NULL, *tmpl_spec = NULL, *orig_proxy = NULL, *orig_init = NULL;
    char image[512];
    char *st = NULL;

    *why = NULL;
    err[0] = '\0';
    if (!cJSON_IsObject(pod_in)) {
        *why = "request.object is not a Pod";
        goto fail;
    }
    pod = cJSON_Duplicate(pod_in, 1);
    if (!pod) {
        *why = "out of memory";
        goto fail;
    }
    cJSON *md = obj_child(pod, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields"); /* large, never read */
    const char *ns = sget(md, "namespace");
    if (!ns || !*ns) {
        set_str(md, "namespace", ns_req && *ns_req ? ns_req : "default");
        ns = sget(md, "namespace");
    }
    in.ns = ns;
    cJSON *spec = obj_child(pod, "spec");
    cJSON *containers = arr_child(spec, "containers");
    if (cJSON_GetArraySize(containers) > WH_MAX_CONTAINERS ||
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "initContainers")) >
            WH_MAX_CONTAINERS) {
        *why = "more than 256 containers";
        goto fail;
    }
    if ((*why = skip_reason(&vals, pod, ns)) != NULL)
        goto fail;
    cJSON *ann = obj_child(md, "annotations");
    cJSON *labels = obj_child(md, "labels");
    in.ann = ann;
    in.labels = labels;

    if (validate_annotations(&in) != 0 || build_proxy_config(&in) != 0) {
        snprintf(err, errlen, "%s", in.err);
        goto fail;
    }
    const char *nat = sget(ann, "sidecar.istio.io/nativeSidecar");
    in.native = nat ? strcmp(nat, "true") == 0 : vals.native;
    const char *pc_mode = sget(in.proxy_config, "interceptionMode");
    in.mode = anno(&in, "sidecar.istio.io/interceptionMode", pc_mode ? pc_mode : "REDIRECT");
    /* extractClusterAndNetwork: the path over the values, the pod's label over both */
    snprintf(in.cluster, sizeof in.cluster, "%s",
             pp && pp->cluster[0] ? pp->cluster : vals.cluster_id);
    in.cluster_env = (pp && pp->cluster[0]) || vals.cluster_from_values;
    snprintf(in.network, sizeof in.network, "%s",
             pp && pp->network[0] ? pp->network : vals.network);
    const char *lnet = sget(labels, "topology.istio.io/network");
    if (lnet)
        snprintf(in.network, sizeof in.network, "%s", lnet);
    deploy_meta(&in, md);

    /* A pod injected before: the template sees it without what we added (stripPod). */
    const char *prev_status = sget(ann, "sidecar.istio.io/status");
    bool previously = prev_status != NULL;
    cJSON *stripped = cJSON_Duplicate(spec, 1);
    if (previously) {
        cJSON *ps = cJSON_Parse(prev_status);
        const cJSON *it;
        cJSON_ArrayForEach(
            it, cJSON_GetObjectItemCaseSensitive(ps, "containers")) if (cJSON_IsString(it))
            remove_named(cJSON_GetObjectItemCaseSensitive(stripped, "containers"), it->valuestring);
        cJSON_ArrayForEach(
            it, cJSON_GetObjectItemCaseSensitive(ps, "initContainers")) if (cJSON_IsString(it))
            remove_named(cJSON_GetObjectItemCaseSensitive(stripped, "initContainers"),
                         it->valuestring);
        cJSON_Delete(ps);
    } else {
        /* a user's own istio-proxy / istio-init: their fields win over the template's */
        cJSON *u = find_named(containers, PROXY_NAME);
        orig_proxy = u ? cJSON_Duplicate(u, 1) : NULL;
        u = find_named(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"), INIT_NAME);
        orig_init = u ? cJSON_Duplicate(u, 1) : NULL;
    }

    /* ---- the template ---- */
    proxy_image(&in, image, sizeof image);
    tmpl_spec = cJSON_CreateObject();
    cJSON *tinit = cJSON_AddArrayToObject(tmpl_spec, "initContainers");
    if (strcmp(in.mode, "NONE") != 0)
        cJSON_AddItemToArray(tinit,
                             init_container(&in, container_image(&in, vals.init_image, image)));
    /* a native sidecar is the template's second init container; else its one container */
    cJSON *tcont = cJSON_AddArrayToObject(tmpl_spec, "containers");
    cJSON_AddItemToArray(in.native ? tinit : tcont,
                         proxy_container(&in, stripped, container_image(&in, vals.image, image)));
    cJSON_AddItemToObject(tmpl_spec, "volumes", template_volumes(&in, stripped));
    const cJSON *ps_it;
    cJSON *tsecrets = cJSON_AddArrayToObject(tmpl_spec, "imagePullSecrets");
    cJSON_ArrayForEach(ps_it, vals.pull_secrets)
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ps_it->valuestring);
        cJSON_AddItemToArray(tsecrets, o);
    }

    /* labels and annotations */
    char cname[64];
    const char *cn = or_default(sget(labels, "service.istio.io/canonical-name"),
                                or_default(sget(labels, "app.kubernetes.io/name"),
                                           or_default(sget(labels, "app"), in.deploy_name)));
    snprintf(cname, sizeof cname, "%.63s", cn);
    for (size_t n = strlen(cname); n && cname[n - 1] == '-'; n--)
        cname[n - 1] = '\0';
    const char *crev = or_default(sget(labels, "service.istio.io/canonical-revision"),
                                  or_default(sget(labels, "app.kubernetes.io/version"),
                                             or_default(sget(labels, "version"), "latest")));
    char crev_buf[256];
    snprintf(crev_buf, sizeof crev_buf, "%s", crev);
    const char *tls = or_default(sget(labels, "security.istio.io/tlsMode"), "istio");
    char tls_buf[64];
    snprintf(tls_buf, sizeof tls_buf, "%s", tls);
    set_str(labels, "security.istio.io/tlsMode", tls_buf);
    set_str(labels, "service.istio.io/canonical-name", cname);
    set_str(labels, "service.istio.io/canonical-revision", crev_buf);
    if (in.network[0])
        set_str(labels, "topology.istio.io/network", in.network);
    set_str(ann, "istio.io/rev", or_default(vals.revision, "default"));
    const cJSON *first_app = NULL, *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(stripped, "containers"))
    {
        const char *n = sget(it, "name");
        if (n && strcmp(n, PROXY_NAME) != 0) {
            first_app = it;
            break;
        }
    }
    if (first_app) {
        char fa[256];
        snprintf(fa, sizeof fa, "%s", sget(first_app, "name"));
        if (!sget(ann, "kubectl.kubernetes.io/default-logs-container"))
            set_str(ann, "kubectl.kubernetes.io/default-logs-container", fa);
        if (!sget(ann, "kubectl.kubernetes.io/default-container"))
            set_str(ann, "kubectl.kubernetes.io/default-container", fa);
    }
    cJSON_Delete(stripped);
    stripped = NULL;

    /* ---- merge into the pod ---- */
    /* a native proxy: a user's istio-proxy among the containers moves to the init
     * containers' end first, so the template merges into it (RunTemplate's moveContainer) */
    if (in.native && find_named(containers, PROXY_NAME)) {
        int idx = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, containers)
        {
            if (sget(c, "name") && strcmp(sget(c, "name"), PROXY_NAME) == 0)
                break;
            idx++;
        }
        cJSON_AddItemToArray(arr_child(spec, "initContainers"),
                             cJSON_DetachItemFromArray(containers, idx));
    }
    smp_merge_list(arr_child(spec, "initContainers"), tinit, "name");
    smp_merge_list(containers, tcont, "name");
    smp_merge_list(arr_child(spec, "volumes"),
                   cJSON_GetObjectItemCaseSensitive(tmpl_spec, "volumes"), "name");
    if (tsecrets->child)
        smp_merge_list(arr_child(spec, "imagePullSecrets"), tsecrets, "name");
    /* reapplyOverwrittenContainers: the user's own containers of the template's names win;
     * a native proxy's override is an init container's (the template's order) */
    if (orig_proxy || orig_init) {
        cJSON *ov = cJSON_CreateObject();
        cJSON *ic_list = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
        if (orig_proxy && !in.native) {
            cJSON *o = cJSON_Duplicate(orig_proxy, 1);
            const char *img = sget(o, "image");
            if (img && strcmp(img, "auto") == 0)
                cJSON_DeleteItemFromObjectCaseSensitive(o, "image");
            smp_merge(find_named(containers, PROXY_NAME), o);
            cJSON_AddItemToArray(cJSON_AddArrayToObject(ov, "containers"), o);
        }
        cJSON *ov_init = NULL;
        const cJSON *const inits[] = {strcmp(in.mode, "NONE") != 0 ? orig_init : NULL,
                                      in.native ? orig_proxy : NULL};
        const char *const init_names[] = {INIT_NAME, PROXY_NAME};
        for (size_t k = 0; k < 2; k++) {
            if (!inits[k])
                continue;
            cJSON *o = cJSON_Duplicate(inits[k], 1);
            const char *img = sget(o, "image");
            if (img && strcmp(img, "auto") == 0)
                cJSON_DeleteItemFromObjectCaseSensitive(o, "image");
            smp_merge(find_named(ic_list, init_names[k]), o);
            if (!ov_init)
                ov_init = cJSON_AddArrayToObject(ov, "initContainers");
            cJSON_AddItemToArray(ov_init, o);
        }
        char *s = cJSON_PrintUnformatted(ov);
        cJSON_Delete(ov);
        set_str(ann, "proxy.istio.io/overrides", s ? s : "{}");
        free(s);
        adjust_init_user(&in, orig_proxy, spec);
    }
    if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "initContainers")))
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "initContainers");

    /* ---- post-processing ---- */
    cJSON *ic = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
    cJSON *proxy = find_named(containers, PROXY_NAME);
    cJSON *native_proxy = find_named(ic, PROXY_NAME);
    if (!proxy)
        proxy = native_proxy;
    static const char *const own_probes[] = {"startupProbe", "readinessProbe"};
    for (size_t k = 0; proxy && k < 2; k++) {
        /* a zero delay is not printed by istiod's Go types (omitempty) */
        cJSON *pr = cJSON_GetObjectItemCaseSensitive(proxy, own_probes[k]);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(pr, "initialDelaySeconds");
        if (cJSON_IsNumber(d) && d->valuedouble == 0)
            cJSON_DeleteItemFromObjectCaseSensitive(pr, "initialDelaySeconds");
    }
    if (proxy)
        cluster_envs(&in, proxy);
    prometheus_merge(&in, ann, proxy);
    probe_rewrite(&in, spec, proxy, previously);
    st = status_annotation(&in, tmpl_spec);
    set_str(ann, "sidecar.istio.io/status", st ? st : "{}");
    cJSON_ArrayForEach(it, vals.injected_annotations)
    {
        if (cJSON_IsString(it))
            set_str(ann, it->string, it->valuestring);
    }
    /* reorderPod: the proxy last among containers (first when holding the application);
     * a native proxy right after istio-init, so the other init containers are in the mesh;
     * else istio-init last, so they run before traffic is captured */
    move_named(containers, PROXY_NAME, hold_application(&in));
    if (ic && native_proxy) {
        move_named(ic, PROXY_NAME, true);
        move_named(ic, INIT_NAME, true);
    } else if (ic) {
        move_named(ic, INIT_NAME, false);
    }

    free(st);
    cJSON_Delete(tmpl_spec);
    cJSON_Delete(orig_proxy);
    cJSON_Delete(orig_init);
    cJSON_Delete(in.proxy_config);
    wh_settings_release(settings);
    free(mesh_pc);
    return pod;
fail:
    cJSON_Delete(pod);
    cJSON_Delete(in.proxy_config);
    wh_settings_release(settings);
    free(mesh_pc);
    return NULL;
}

void wh_inject(const wh_config *cfg, const wh_inject_params *pp, const wh_review *rv,
               wh_verdict *out)
{
    const char *why = NULL;
    char err[512];
    cJSON *orig = NULL, *pod = NULL;
    out->allowed = true;
    if (strcmp(rv->operation, "CREATE") != 0 && *rv->operation)
        goto out; /* the webhook is registered for CREATE; anything else passes untouched */
    if (!cJSON_IsObject(rv->object)) {
        wh_deny(out, "could not decode the Pod: request.object must be an object");
        goto out;
    }
    /* The patch is relative to the pod as istiod sees it: managedFields dropped (large,
     * never read) and the request's namespace filled in. */
    orig = cJSON_Duplicate(rv->object, 1);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(orig, "metadata");
    if (cJSON_IsObject(md)) {
        cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
        const char *ns = sget(md, "namespace");
        if ((!ns || !*ns) && *rv->ns)
            set_str(md, "namespace", rv->ns);
    }
    pod = wh_inject_pod(cfg, pp, orig, rv->ns, &why, err, sizeof err);
    if (!pod && err[0]) {
        LOG_INFO(WH_LOG, "injection of %s/%s failed: %s", rv->ns, rv->name, err);
        out->failed = true;
        wh_deny(out, "failed to run injection template: %s", err);
        goto out;
    }
    if (!pod) {
        LOG_DEBUG(WH_LOG, "not injecting %s/%s: %s", rv->ns, rv->name, why ? why : "");
        out->skipped = true;
        goto out;
    }
    out->patch = wh_json_patch(orig, pod);
out:
    cJSON_Delete(pod);
    cJSON_Delete(orig);
}
