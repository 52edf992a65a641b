/* values: the injector's settings from Istio's istio-sidecar-injector ConfigMap (or the
 * files istiod reads from ./var/lib/istio/inject when they exist), as istiod's
 * pkg/kube/inject (watcher.go, webhook.go's updateConfig, inject.go's Config) reads them:
 *
 *   data.config  YAML: policy (enabled | disabled; anything else turns injection off, as
 *                istiod does), neverInjectSelector / alwaysInjectSelector (lists of label
 *                selectors), injectedAnnotations, defaultTemplates. `templates` and
 *                `aliases` are not read: the default "sidecar" template is built in C
 *                (inject.c), so a changed template text has no effect here (logged).
 *   data.values  the Helm values (JSON or YAML): the fields the default template reads
 *                (the table below), each type-checked.
 *
 * /debug/inject shows the config's `templates` as istiod does (its RawTemplates: name ->
 * template text, `{}` before any settings): the text the ConfigMap holds, which tools
 * read, though the injection itself is inject.c's.
 *
 * Both keys must be present and every field we read must have its type, or the whole
 * ConfigMap is refused with a line naming the key and field, and the last good settings
 * stay (istiod keeps its last config too). A delete keeps them as well.
 *
 * Threads: wh_injector_apply runs on a source thread (k8s or cfgdir), acquire on webhook
 * threads; `mu` guards the current pointer (and the files' state); settings are immutable
 * and refcounted, so a review keeps the ones it started with. mu is a leaf lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pilot/base/log.h"
#include "pilot/base/yaml.h"
#include "pilot/obs/debug.h"
#include "pilot/webhook/webhook_internal.h"

#define WH_CM_NAME "istio-sidecar-injector"
#define WH_FILE_MAX (4u << 20)
#define WH_MAX_SINKS 4
#define WH_FILES_CHECK_NS 1000000000LL

struct wh_settings {
    atomic_int refs;
    cJSON *config; /* object */
    cJSON *values; /* object */
};

typedef struct wh_sink_ctx {
    wh_injector *wi;
    source_sink next;
} wh_sink_ctx;

typedef struct file_sig {
    bool present;
    struct timespec mtime;
    off_t size;
    ino_t ino;
} file_sig;

struct wh_injector {
    pthread_mutex_t mu;
    wh_settings *cur;
    char *ns, *name, *dir;
    bool files; /* dir/config existed at start: files win, the ConfigMap is ignored */
    int64_t next_check_ns;
    file_sig sig[2]; /* config, values */
    wh_sink_ctx sinks[WH_MAX_SINKS];
    size_t nsinks;
    /* mesh config defaultConfig (compact JSON) as it is now, guarded by mu; NULL: none set
     * (wh_config.inject.proxy_config, the one at start, applies) */
    char *mesh_proxy_config;
    bool mesh_proxy_config_set;
};

/* ---- the values the template reads ------------------------------------------------------ */

typedef enum { VT_STR, VT_TAG, VT_BOOL, VT_INT, VT_OBJ, VT_STRARR } vtype;

static const struct {
    const char *path;
    vtype t;
} vfields[] = {
    {"global.hub", VT_STR},
    {"global.tag", VT_TAG},
    {"global.variant", VT_STR},
    {"global.imagePullPolicy", VT_STR},
    {"global.imagePullSecrets", VT_STRARR},
    {"global.proxy.image", VT_STR},
    {"global.proxy_init.image", VT_STR},
    {"global.proxy_init.forceApplyIptables", VT_BOOL},
    {"global.proxy.resources", VT_OBJ},
    {"global.proxy.lifecycle", VT_OBJ},
    {"global.proxy.logLevel", VT_STR},
    {"global.proxy.componentLogLevel", VT_STR},
    {"global.logging.level", VT_STR},
    {"global.proxy.holdApplicationUntilProxyStarts", VT_BOOL},
    {"global.proxy.privileged", VT_BOOL},
    {"global.proxy.capNetBindService", VT_BOOL},
    {"global.proxy.statusPort", VT_INT},
    {"global.proxy.clusterDomain", VT_STR},
    {"global.proxy.includeIPRanges", VT_STR},
    {"global.proxy.excludeIPRanges", VT_STR},
    {"global.proxy.includeInboundPorts", VT_STR},
    {"global.proxy.excludeInboundPorts", VT_STR},
    {"global.proxy.includeOutboundPorts", VT_STR},
    {"global.proxy.excludeOutboundPorts", VT_STR},
    {"global.proxy.readinessInitialDelaySeconds", VT_INT},
    {"global.proxy.readinessPeriodSeconds", VT_INT},
    {"global.proxy.readinessFailureThreshold", VT_INT},
    {"global.proxy.startupProbe.enabled", VT_BOOL},
    {"global.proxy.startupProbe.failureThreshold", VT_INT},
    {"global.proxy.outlierLogPath", VT_STR},
    {"global.logAsJson", VT_BOOL},
    {"global.network", VT_STR},
    {"global.meshID", VT_STR},
    {"global.multiCluster.clusterName", VT_STR},
    {"global.caAddress", VT_STR},
    {"global.istioNamespace", VT_STR},
    {"global.pilotCertProvider", VT_STR},
    {"global.sds.token.aud", VT_STR},
    {"global.mountMtlsCerts", VT_BOOL},
    {"global.sts.servicePort", VT_INT},
    {"pilot.cni.enabled", VT_BOOL},
    {"sidecarInjectorWebhook.rewriteAppHTTPProbe", VT_BOOL},
    {"revision", VT_STR},
};

/* The node at a dotted path; NULL when a step is absent. *bad is set when a step that
 * must be an object is something else. */
static const cJSON *vget(const cJSON *root, const char *path, bool *bad)
{
    char seg[64];
    const cJSON *cur = root;
    const char *p = path;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!cJSON_IsObject(cur)) {
            if (bad && !cJSON_IsNull(cur))
                *bad = true;
            return NULL;
        }
        cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        p = dot ? dot + 1 : p + n;
    }
    return cJSON_IsNull(cur) ? NULL : cur;
}

static const char *vtype_name(vtype t)
{
    switch (t) {
    case VT_STR:
        return "a string";
    case VT_TAG:
        return "a string or a number";
    case VT_BOOL:
        return "true or false";
    case VT_INT:
        return "a whole number";
    case VT_OBJ:
        return "a mapping";
    default:
        return "a list of strings";
    }
}

static bool vtype_ok(const cJSON *v, vtype t)
{
    switch (t) {
    case VT_STR:
        return cJSON_IsString(v);
    case VT_TAG:
        return cJSON_IsString(v) || cJSON_IsNumber(v);
    case VT_BOOL:
        return cJSON_IsBool(v);
    case VT_INT:
        return cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble &&
               v->valuedouble >= 0 && v->valuedouble <= 2147483647.0;
    case VT_OBJ:
        return cJSON_IsObject(v);
    default: {
        if (!cJSON_IsArray(v))
            return false;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) if (!cJSON_IsString(it)) return false;
        return true;
    }
    }
}

static int check_values(const cJSON *values, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof vfields / sizeof vfields[0]; i++) {
        bool bad = false;
        const cJSON *v = vget(values, vfields[i].path, &bad);
        if (bad || (v && !vtype_ok(v, vfields[i].t))) {
            snprintf(err, errlen, "values: %s: want %s", vfields[i].path, vtype_name(vfields[i].t));
            return -1;
        }
    }
    return 0;
}

/* ---- config ------------------------------------------------------------------------------ */

static int check_string_map(const cJSON *m, const char *what, char *err, size_t errlen)
{
    if (!m || cJSON_IsNull(m))
        return 0;
    if (!cJSON_IsObject(m)) {
        snprintf(err, errlen, "config: %s: want a mapping of strings", what);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "config: %s.%s: want a string", what, it->string);
            return -1;
        }
    }
    return 0;
}

/* A list of metav1.LabelSelector: the shape is checked here (istiod's YAML decoding
 * refuses wrong types); an unknown operator only makes that selector skipped when used,
 * as in istiod. */
static int check_selectors(const cJSON *l, const char *what, char *err, size_t errlen)
{
    if (!l || cJSON_IsNull(l))
        return 0;
    if (!cJSON_IsArray(l)) {
        snprintf(err, errlen, "config: %s: want a list of label selectors", what);
        return -1;
    }
    int i = 0;
    const cJSON *sel;
    cJSON_ArrayForEach(sel, l)
    {
        char sub[96];
        snprintf(sub, sizeof sub, "%s[%d].matchLabels", what, i);
        if (!cJSON_IsObject(sel)) {
            snprintf(err, errlen, "config: %s[%d]: want a label selector", what, i);
            return -1;
        }
        if (check_string_map(cJSON_GetObjectItemCaseSensitive(sel, "matchLabels"), sub, err,
                             errlen) != 0)
            return -1;
        const cJSON *me = cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions"), *e;
        if (me && !cJSON_IsNull(me) && !cJSON_IsArray(me)) {
            snprintf(err, errlen, "config: %s[%d].matchExpressions: want a list", what, i);
            return -1;
        }
        int j = 0;
        cJSON_ArrayForEach(e, (cJSON_IsArray(me) ? me : NULL))
        {
            const cJSON *vals = cJSON_GetObjectItemCaseSensitive(e, "values"), *v;
            bool ok = cJSON_IsObject(e) &&
                      cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "key")) &&
                      cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "operator")) &&
                      (!vals || cJSON_IsNull(vals) || cJSON_IsArray(vals));
            cJSON_ArrayForEach(v, (cJSON_IsArray(vals) ? vals : NULL)) ok = ok && cJSON_IsString(v);
            if (!ok) {
                snprintf(err, errlen,
                         "config: %s[%d].matchExpressions[%d]: want key, operator and a list "
                         "of string values",
                         what, i, j);
                return -1;
            }
            j++;
        }
        i++;
    }
    return 0;
}

static int check_config(const cJSON *c, char *err, size_t errlen)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "policy");
    if (p && !cJSON_IsNull(p) && !cJSON_IsString(p)) {
        snprintf(err, errlen, "config: policy: want enabled or disabled");
        return -1;
    }
    if (check_selectors(cJSON_GetObjectItemCaseSensitive(c, "neverInjectSelector"),
                        "neverInjectSelector", err, errlen) != 0 ||
        check_selectors(cJSON_GetObjectItemCaseSensitive(c, "alwaysInjectSelector"),
                        "alwaysInjectSelector", err, errlen) != 0 ||
        check_string_map(cJSON_GetObjectItemCaseSensitive(c, "injectedAnnotations"),
                         "injectedAnnotations", err, errlen) != 0)
        return -1;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(c, "defaultTemplates"), *it;
    if (dt && !cJSON_IsNull(dt) && !vtype_ok(dt, VT_STRARR)) {
        snprintf(err, errlen, "config: defaultTemplates: want a list of template names");
        return -1;
    }
    cJSON_ArrayForEach(it, (cJSON_IsArray(dt) ? dt : NULL))
    {
        if (strcmp(it->valuestring, "sidecar") != 0)
            LOG_WARN(WH_LOG,
                     "injector config: defaultTemplates names \"%s\": only the built-in "
                     "\"sidecar\" template is applied",
                     it->valuestring);
    }
    return 0;
}

static cJSON *parse_mapping(const char *text, const char *key, char *err, size_t errlen)
{
    cJSON **docs = NULL, *out = NULL;
    size_t n = 0;
    char yerr[200];
    if (yaml_to_json_docs(text, strlen(text), &docs, &n, yerr, sizeof yerr) != 0) {
        snprintf(err, errlen, "%s: %s", key, yerr);
        return NULL;
    }
    if (n > 1 || (n == 1 && !cJSON_IsObject(docs[0]) && !cJSON_IsNull(docs[0])))
        snprintf(err, errlen, "%s: want one mapping", key);
    else if (n == 1 && cJSON_IsObject(docs[0]))
        out = docs[0], docs[0] = NULL;
    else
        out = cJSON_CreateObject(); /* empty text: an empty mapping, as istiod reads it */
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(docs[i]);
    free(docs);
    if (out && !err[0])
        return out;
    cJSON_Delete(out);
    return NULL;
}

wh_settings *wh_settings_parse(const char *config, const char *values, char *err, size_t errlen)
{
    wh_settings *s = NULL;
    cJSON *c = NULL, *v = NULL;
    err[0] = '\0';
    if (!(c = parse_mapping(config, "config", err, errlen)) ||
        !(v = parse_mapping(values, "values", err, errlen)))
        goto fail;
    if (check_config(c, err, errlen) != 0 || check_values(v, err, errlen) != 0)
        goto fail;
    s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->config = c;
    s->values = v;
    return s;
fail:
    cJSON_Delete(c);
    cJSON_Delete(v);
    return NULL;
}

void wh_settings_release(wh_settings *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    cJSON_Delete(s->config);
    cJSON_Delete(s->values);
    free(s);
}

/* ---- resolution -------------------------------------------------------------------------- */

static const char *rstr(const wh_settings *s, const char *path, const char *base, const char *def)
{
    const cJSON *v = s ? vget(s->values, path, NULL) : NULL;
    if (cJSON_IsString(v) && *v->valuestring)
        return v->valuestring;
    return base && *base ? base : def;
}

/* Like rstr, but an empty string in the values is kept (the chart's "" means "none"). */
static const char *rstr_empty(const wh_settings *s, const char *path, const char *def)
{
    const cJSON *v = s ? vget(s->values, path, NULL) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}

static bool rbool(const wh_settings *s, const char *path, bool def)
{
    const cJSON *v = s ? vget(s->values, path, NULL) : NULL;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int rnum(const wh_settings *s, const char *path, int def)
{
    const cJSON *v = s ? vget(s->values, path, NULL) : NULL;
    return cJSON_IsNumber(v) ? (int)v->valuedouble : def;
}

static const cJSON *rtree(const wh_settings *s, const char *path, const cJSON *def)
{
    const cJSON *v = s ? vget(s->values, path, NULL) : NULL;
    return v ? v : def;
}

/* The chart's default global.proxy.resources (as the API server prints them), for the
 * no-ConfigMap case; built once, never freed. */
static cJSON *def_res;
static pthread_once_t def_res_once = PTHREAD_ONCE_INIT;

static void def_res_init(void)
{
    def_res = cJSON_Parse("{\"limits\":{\"cpu\":\"2\",\"memory\":\"1Gi\"},"
                          "\"requests\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}");
}

void wh_values_resolve(const wh_inject_values *b, const wh_settings *s, wh_values *o)
{
    pthread_once(&def_res_once, def_res_init);
    memset(o, 0, sizeof *o);
    o->hub = rstr(s, "global.hub", b->hub, "docker.io/istio");
    const cJSON *tag = s ? vget(s->values, "global.tag", NULL) : NULL;
    if (cJSON_IsNumber(tag)) {
        snprintf(o->tag_buf, sizeof o->tag_buf, "%.15g", tag->valuedouble);
        o->tag = o->tag_buf;
    } else {
        o->tag = rstr(s, "global.tag", b->tag, "1.24.0");
    }
    o->variant = rstr_empty(s, "global.variant", "");
    o->image = rstr(s, "global.proxy.image", b->image, "proxyv2");
    o->init_image = rstr(s, "global.proxy_init.image", NULL, "proxyv2");
    o->pull_policy = rstr_empty(s, "global.imagePullPolicy", "");
    o->cluster_id = rstr(s, "global.multiCluster.clusterName", b->cluster_id, "Kubernetes");
    const cJSON *cn = s ? vget(s->values, "global.multiCluster.clusterName", NULL) : NULL;
    o->cluster_from_values = cJSON_IsString(cn) && *cn->valuestring;
    o->network = rstr(s, "global.network", b->network, "");
    o->mesh_id = rstr(s, "global.meshID", b->mesh_id, NULL);
    o->trust_domain = b->trust_domain && *b->trust_domain ? b->trust_domain : "cluster.local";
    o->istio_namespace = rstr(s, "global.istioNamespace", b->istio_namespace, "istio-system");
    o->cluster_domain = rstr(s, "global.proxy.clusterDomain", b->cluster_domain, "cluster.local");
    o->revision = b->revision ? b->revision : "";
    /* CA_ADDR follows the values' revision (the chart's .Values.revision) when there are
     * values, else ours. */
    const cJSON *vr = s ? vget(s->values, "revision", NULL) : NULL;
    o->values_revision = cJSON_IsString(vr) ? vr->valuestring : o->revision;
    o->ca_address = rstr(s, "global.caAddress", b->ca_address, NULL);
    o->proxy_config = b->proxy_config;
    o->log_level = rstr(s, "global.proxy.logLevel", b->log_level, "warning");
    o->component_log_level =
        rstr(s, "global.proxy.componentLogLevel", b->component_log_level, "misc:error");
    o->agent_log_level = rstr(s, "global.logging.level", b->agent_log_level, "default:info");
    o->cert_provider = rstr(s, "global.pilotCertProvider", NULL, "istiod");
    o->audience = rstr(s, "global.sds.token.aud", NULL, "istio-ca");
    o->include_ip_ranges = rstr_empty(s, "global.proxy.includeIPRanges", "*");
    o->exclude_ip_ranges = rstr_empty(s, "global.proxy.excludeIPRanges", "");
    o->include_inbound_ports = rstr_empty(s, "global.proxy.includeInboundPorts", "*");
    o->exclude_inbound_ports = rstr_empty(s, "global.proxy.excludeInboundPorts", "");
    o->include_outbound_ports = rstr_empty(s, "global.proxy.includeOutboundPorts", "");
    o->exclude_outbound_ports = rstr_empty(s, "global.proxy.excludeOutboundPorts", "");
    o->outlier_log_path = rstr_empty(s, "global.proxy.outlierLogPath", "");
    o->resources = rtree(s, "global.proxy.resources", def_res);
    o->lifecycle = rtree(s, "global.proxy.lifecycle", NULL);
    if (cJSON_IsObject(o->lifecycle) && !o->lifecycle->child)
        o->lifecycle = NULL; /* the template's `if`: an empty mapping is false */
    o->pull_secrets = rtree(s, "global.imagePullSecrets", NULL);
    snprintf(o->status_port, sizeof o->status_port, "%d",
             rnum(s, "global.proxy.statusPort", 15020));
    o->ready_initial = rnum(s, "global.proxy.readinessInitialDelaySeconds", 0);
    o->ready_period = rnum(s, "global.proxy.readinessPeriodSeconds", 15);
    o->ready_failure = rnum(s, "global.proxy.readinessFailureThreshold", 4);
    o->startup_enabled = rbool(s, "global.proxy.startupProbe.enabled", true);
    o->startup_failure = rnum(s, "global.proxy.startupProbe.failureThreshold", 600);
    o->sts_port = rnum(s, "global.sts.servicePort", 0);
    o->hold = rbool(s, "global.proxy.holdApplicationUntilProxyStarts", false);
    o->privileged = rbool(s, "global.proxy.privileged", false);
    o->log_as_json = rbool(s, "global.logAsJson", false);
    o->mount_mtls = rbool(s, "global.mountMtlsCerts", false);
    o->cap_bind = rbool(s, "global.proxy.capNetBindService", false);
    o->force_apply = rbool(s, "global.proxy_init.forceApplyIptables", false);
    o->rewrite_probes = rbool(s, "sidecarInjectorWebhook.rewriteAppHTTPProbe", true);
    o->native = b->native_sidecars;
    o->policy = WH_POLICY_ENABLED;
    if (s) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s->config, "policy"));
        o->policy = p && strcmp(p, "enabled") == 0    ? WH_POLICY_ENABLED
                    : p && strcmp(p, "disabled") == 0 ? WH_POLICY_DISABLED
                                                      : WH_POLICY_OFF;
        o->never_sel = cJSON_GetObjectItemCaseSensitive(s->config, "neverInjectSelector");
        o->always_sel = cJSON_GetObjectItemCaseSensitive(s->config, "alwaysInjectSelector");
        o->injected_annotations =
            cJSON_GetObjectItemCaseSensitive(s->config, "injectedAnnotations");
        if (!cJSON_IsArray(o->never_sel))
            o->never_sel = NULL;
        if (!cJSON_IsArray(o->always_sel))
            o->always_sel = NULL;
        if (!cJSON_IsObject(o->injected_annotations))
            o->injected_annotations = NULL;
    }
}

/* ---- label selectors --------------------------------------------------------------------- */

static bool in_values(const cJSON *vals, const char *v)
{
    const cJSON *it;
    cJSON_ArrayForEach(it,
                       vals) if (cJSON_IsString(it) && strcmp(it->valuestring, v) == 0) return true;
    return false;
}

int wh_selector_matches(const cJSON *sel, const cJSON *labels)
{
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(sel, "matchLabels");
    const cJSON *me = cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions");
    const cJSON *it;
    bool empty = true, match = true;
    cJSON_ArrayForEach(it, (cJSON_IsObject(ml) ? ml : NULL))
    {
        const char *have =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, it->string));
        empty = false;
        if (!have || !cJSON_IsString(it) || strcmp(have, it->valuestring) != 0)
            match = false;
    }
    cJSON_ArrayForEach(it, (cJSON_IsArray(me) ? me : NULL))
    {
        const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "key"));
        const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "operator"));
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(it, "values");
        int nvals = cJSON_IsArray(vals) ? cJSON_GetArraySize(vals) : 0;
        if (!key || !op)
            return -1;
        const char *have = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, key));
        empty = false;
        /* metav1.LabelSelectorAsSelector's rules: In/NotIn need values, Exists and
         * DoesNotExist must have none */
        if (strcmp(op, "In") == 0 || strcmp(op, "NotIn") == 0) {
            if (nvals == 0)
                return -1;
            bool in = have && in_values(vals, have);
            if (strcmp(op, "In") == 0 ? !in : in)
                match = false;
        } else if (strcmp(op, "Exists") == 0 || strcmp(op, "DoesNotExist") == 0) {
            if (nvals != 0)
                return -1;
            if ((have != NULL) != (strcmp(op, "Exists") == 0))
                match = false;
        } else {
            return -1;
        }
    }
    return !empty && match;
}

/* ---- the store --------------------------------------------------------------------------- */

static char *read_small_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    strbuf b;
    char buf[8192];
    size_t n;
    char *out = NULL;
    strbuf_init(&b, WH_FILE_MAX);
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (strbuf_append(&b, buf, n) != 0) {
            snprintf(err, errlen, "%s: larger than %u bytes", path, WH_FILE_MAX);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    strbuf_appends(&b, "");
    out = strbuf_steal(&b, NULL);
    if (!out)
        out = xstrdup("");
out:
    if (f)
        fclose(f);
    strbuf_free(&b);
    return out;
}

static file_sig sig_of(const char *path)
{
    struct stat st;
    file_sig s = {0};
    if (stat(path, &st) == 0) {
        s.present = true;
        s.mtime = st.st_mtim;
        s.size = st.st_size;
        s.ino = st.st_ino;
    }
    return s;
}

static bool sig_eq(const file_sig *a, const file_sig *b)
{
    return a->present == b->present && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->size == b->size && a->ino == b->ino;
}

/* Swaps in s (owned); the old settings go when their last review ends. Under mu. */
static void swap_locked(wh_injector *wi, wh_settings *s)
{
    wh_settings *old = wi->cur;
    wi->cur = s;
    wh_settings_release(old);
}

/* Files mode: re-reads dir/config and dir/values when either changed. Under mu. */
static void files_check_locked(wh_injector *wi)
{
    char pc[4096], pv[4096], err[512] = "";
    snprintf(pc, sizeof pc, "%s/config", wi->dir);
    snprintf(pv, sizeof pv, "%s/values", wi->dir);
    file_sig sc = sig_of(pc), sv = sig_of(pv);
    if (wi->cur && sig_eq(&sc, &wi->sig[0]) && sig_eq(&sv, &wi->sig[1]))
        return;
    wi->sig[0] = sc;
    wi->sig[1] = sv;
    char *c = read_small_file(pc, err, sizeof err);
    char *v = c ? read_small_file(pv, err, sizeof err) : NULL;
    wh_settings *s = v ? wh_settings_parse(c, v, err, sizeof err) : NULL;
    if (s) {
        swap_locked(wi, s);
        LOG_INFO(WH_LOG, "injector settings read from %s", wi->dir);
    } else {
        LOG_WARN(WH_LOG, "injector settings in %s refused, keeping the last good ones: %s", wi->dir,
                 err);
    }
    free(c);
    free(v);
}

/* /debug/inject: istiod's injectTemplateHandler, the current settings' templates by name
 * (string entries only: istiod's map[string]string refuses anything else). */
static void h_inject(void *ud, const dbg_request *req, dbg_response *resp)
{
    wh_settings *s = wh_injector_acquire(ud);
    cJSON *out = cJSON_CreateObject();
    const cJSON *t = s ? cJSON_GetObjectItemCaseSensitive(s->config, "templates") : NULL;
    const cJSON *it;
    if (cJSON_IsObject(t)) {
        cJSON_ArrayForEach(it, t)
        {
            if (cJSON_IsString(it))
                cJSON_AddStringToObject(out, it->string, it->valuestring);
        }
    }
    dbg_send_json(req, resp, out);
    cJSON_Delete(out);
    wh_settings_release(s);
}

wh_injector *wh_injector_new(const char *istio_ns, const char *revision, const char *dir)
{
    wh_injector *wi = xcalloc(1, sizeof *wi);
    pthread_mutex_init(&wi->mu, NULL);
    wi->ns = xstrdup(istio_ns && *istio_ns ? istio_ns : "istio-system");
    if (revision && *revision && strcmp(revision, "default") != 0)
        wi->name = xasprintf("%s-%s", WH_CM_NAME, revision);
    else
        wi->name = xstrdup(WH_CM_NAME);
    if (dir && *dir) {
        char pc[4096];
        snprintf(pc, sizeof pc, "%s/config", dir);
        wi->dir = xstrdup(dir);
        wi->files = sig_of(pc).present;
        if (wi->files) {
            LOG_INFO(WH_LOG, "injector settings from %s (the ConfigMap %s/%s is not read)", dir,
                     wi->ns, wi->name);
            files_check_locked(wi);
            wi->next_check_ns = util_now_ns() + WH_FILES_CHECK_NS;
        }
    }
    dbg_register("/debug/inject", "Active inject template", h_inject, wi);
    return wi;
}

void wh_injector_free(wh_injector *wi)
{
    if (!wi)
        return;
    dbg_unregister("/debug/inject", wi); /* waits for a handler call still reading wi */
    wh_settings_release(wi->cur);
    pthread_mutex_destroy(&wi->mu);
    free(wi->mesh_proxy_config);
    free(wi->ns);
    free(wi->name);
    free(wi->dir);
    free(wi);
}

void wh_injector_set_proxy_config(wh_injector *wi, const char *json)
{
    if (!wi)
        return;
    char *c = json ? xstrdup(json) : NULL;
    pthread_mutex_lock(&wi->mu);
    free(wi->mesh_proxy_config);
    wi->mesh_proxy_config = c;
    wi->mesh_proxy_config_set = true;
    pthread_mutex_unlock(&wi->mu);
}

bool wh_injector_proxy_config(wh_injector *wi, char **json)
{
    *json = NULL;
    if (!wi)
        return false;
    pthread_mutex_lock(&wi->mu);
    bool set = wi->mesh_proxy_config_set;
    if (set && wi->mesh_proxy_config)
        *json = xstrdup(wi->mesh_proxy_config);
    pthread_mutex_unlock(&wi->mu);
    return set;
}

const char *wh_injector_configmap(const wh_injector *wi)
{
    return wi->name;
}

const char *wh_injector_namespace(const wh_injector *wi)
{
    return wi->ns;
}

wh_settings *wh_injector_acquire(wh_injector *wi)
{
    if (!wi)
        return NULL;
    pthread_mutex_lock(&wi->mu);
    if (wi->files && util_now_ns() >= wi->next_check_ns) {
        files_check_locked(wi);
        wi->next_check_ns = util_now_ns() + WH_FILES_CHECK_NS;
    }
    wh_settings *s = wi->cur;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&wi->mu);
    return s;
}

int wh_injector_apply(wh_injector *wi, const cJSON *cm, char *err, size_t errlen)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
    const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "config"));
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "values"));
    char why[400] = "";
    wh_settings *s = NULL;
    /* istiod's readConfigMap messages */
    if (!c)
        snprintf(why, sizeof why, "missing ConfigMap config key \"config\"");
    else if (!v)
        snprintf(why, sizeof why, "missing ConfigMap values key \"values\"");
    else
        s = wh_settings_parse(c, v, why, sizeof why);
    if (!s) {
        snprintf(err, errlen, "ConfigMap %s/%s: %s", wi->ns, wi->name, why);
        return -1;
    }
    pthread_mutex_lock(&wi->mu);
    swap_locked(wi, s);
    pthread_mutex_unlock(&wi->mu);
    return 0;
}

static bool is_ours(const wh_injector *wi, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    return kind && strcmp(kind, "ConfigMap") == 0 && name && strcmp(name, wi->name) == 0 && ns &&
           strcmp(ns, wi->ns) == 0;
}

static void sink_event(void *ud, source_event_type type, cJSON *obj, const char *origin)
{
    wh_sink_ctx *x = ud;
    wh_injector *wi = x->wi;
    char err[600];
    if (!is_ours(wi, obj)) {
        x->next.event(x->next.ud, type, obj, origin);
        return;
    }
    if (wi->files)
        LOG_DEBUG(WH_LOG, "ConfigMap %s/%s ignored: the settings come from %s", wi->ns, wi->name,
                  wi->dir);
    else if (type == SOURCE_EV_DELETE)
        LOG_WARN(WH_LOG, "ConfigMap %s/%s deleted (%s): keeping the last injector settings", wi->ns,
                 wi->name, origin);
    else if (wh_injector_apply(wi, obj, err, sizeof err) != 0)
        LOG_WARN(WH_LOG, "%s (%s): refused, keeping the last good injector settings", err, origin);
    else
        LOG_INFO(WH_LOG, "injector settings from ConfigMap %s/%s (%s)", wi->ns, wi->name, origin);
    cJSON_Delete(obj);
}

static void sink_synced(void *ud, const char *source_name)
{
    wh_sink_ctx *x = ud;
    if (x->next.synced)
        x->next.synced(x->next.ud, source_name);
}

source_sink wh_injector_sink(wh_injector *wi, source_sink next)
{
    if (!wi || wi->nsinks >= WH_MAX_SINKS)
        return next; /* nothing to take, or (a programming error) too many sources */
    wh_sink_ctx *x = &wi->sinks[wi->nsinks++];
    x->wi = wi;
    x->next = next;
    return (source_sink){.event = sink_event, .synced = sink_synced, .ud = x};
}
