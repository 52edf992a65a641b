/* mesh_common: the small shared types of mesh.h (labels, protocols, kinds, host
 * resolution), object lifetime (retain/release/free) and the parser's typed JSON getters
 * and validation predicates. Pure functions: no locks, callable from any thread. */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

/* ---- labels ------------------------------------------------------------------------ */

bool mesh_labels_subset(const mesh_labels *sel, const mesh_labels *l)
{
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        const char *v = mesh_labels_get(l, sel->keys[i]);
        if (!v || strcmp(v, sel->vals[i]) != 0)
            return false;
    }
    return true;
}

const char *mesh_labels_get(const mesh_labels *l, const char *key)
{
    if (!l || !key)
        return NULL;
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->keys[mid], key);
        if (c == 0)
            return l->vals[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Inserts keeping keys sorted; a repeated key (cJSON keeps duplicates) replaces the value:
 * the last one wins, as in Go's JSON decoding. */
void mesh_labels_set(mesh_labels *l, const char *k, const char *v)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->keys[mid], k);
        if (c == 0) {
            free(l->vals[mid]);
            l->vals[mid] = xstrdup(v);
            return;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    l->keys = xrealloc(l->keys, (l->n + 1) * sizeof(char *));
    l->vals = xrealloc(l->vals, (l->n + 1) * sizeof(char *));
    memmove(l->keys + lo + 1, l->keys + lo, (l->n - lo) * sizeof(char *));
    memmove(l->vals + lo + 1, l->vals + lo, (l->n - lo) * sizeof(char *));
    l->keys[lo] = xstrdup(k);
    l->vals[lo] = xstrdup(v);
    l->n++;
}

int mesh_labels_from_json(const cJSON *obj, mesh_labels *out)
{
    mesh_labels l = {0};
    int rc = -1;
    const cJSON *it;

    if (obj && !cJSON_IsObject(obj) && !cJSON_IsNull(obj))
        goto out;
    if (obj && cJSON_IsObject(obj)) {
        cJSON_ArrayForEach(it, obj)
        {
            if (!cJSON_IsString(it) || !it->string)
                goto out;
            mesh_labels_set(&l, it->string, it->valuestring);
        }
    }
    *out = l;
    l = (mesh_labels){0};
    rc = 0;
out:
    mesh_labels_free(&l);
    return rc;
}

void mesh_labels_copy(const mesh_labels *src, mesh_labels *dst)
{
    dst->n = src->n;
    dst->keys = src->n ? xcalloc(src->n, sizeof(char *)) : NULL;
    dst->vals = src->n ? xcalloc(src->n, sizeof(char *)) : NULL;
    for (size_t i = 0; i < src->n; i++) {
        dst->keys[i] = xstrdup(src->keys[i]);
        dst->vals[i] = xstrdup(src->vals[i]);
    }
}

void mesh_trace_tags_free(mesh_trace_tag *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].tag);
        free(v[i].value);
        free(v[i].default_value);
    }
    free(v);
}

void mesh_labels_free(mesh_labels *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->vals[i]);
    }
    free(l->keys);
    free(l->vals);
    *l = (mesh_labels){0};
}

/* ---- protocols --------------------------------------------------------------------- */

static const struct {
    mesh_protocol p;
    const char *name;
} proto_names[] = {
    {MESH_PROTO_HTTP, "HTTP"},   {MESH_PROTO_HTTP2, "HTTP2"},       {MESH_PROTO_HTTPS, "HTTPS"},
    {MESH_PROTO_GRPC, "GRPC"},   {MESH_PROTO_GRPC_WEB, "GRPC-Web"}, {MESH_PROTO_TCP, "TCP"},
    {MESH_PROTO_TLS, "TLS"},     {MESH_PROTO_MONGO, "Mongo"},       {MESH_PROTO_REDIS, "Redis"},
    {MESH_PROTO_MYSQL, "MySQL"}, {MESH_PROTO_UDP, "UDP"},
};

const char *mesh_protocol_name(mesh_protocol p)
{
    for (size_t i = 0; i < sizeof proto_names / sizeof proto_names[0]; i++)
        if (proto_names[i].p == p)
            return proto_names[i].name;
    return "UnsupportedProtocol";
}

mesh_protocol mesh_protocol_parse(const char *s)
{
    if (!s)
        return MESH_PROTO_UNSUPPORTED;
    for (size_t i = 0; i < sizeof proto_names / sizeof proto_names[0]; i++)
        if (strcasecmp(proto_names[i].name, s) == 0)
            return proto_names[i].p;
    return MESH_PROTO_UNSUPPORTED;
}

mesh_protocol mesh_protocol_from_port(const char *port_name, const char *app_protocol)
{
    if (app_protocol && *app_protocol) {
        /* Kubernetes' standard appProtocol values, as Istio maps them. */
        if (strcasecmp(app_protocol, "kubernetes.io/h2c") == 0)
            return MESH_PROTO_HTTP2;
        if (strcasecmp(app_protocol, "kubernetes.io/ws") == 0)
            return MESH_PROTO_HTTP;
        if (strcasecmp(app_protocol, "kubernetes.io/wss") == 0)
            return MESH_PROTO_HTTPS;
        mesh_protocol p = mesh_protocol_parse(app_protocol);
        if (p != MESH_PROTO_UNSUPPORTED)
            return p;
    }
    if (!port_name || !*port_name)
        return MESH_PROTO_UNSUPPORTED;
    /* "grpc-web" contains the prefix separator itself. */
    if (strncasecmp(port_name, "grpc-web", 8) == 0 && (port_name[8] == '\0' || port_name[8] == '-'))
        return MESH_PROTO_GRPC_WEB;
    const char *dash = strchr(port_name, '-');
    size_t n = dash ? (size_t)(dash - port_name) : strlen(port_name);
    char prefix[32];
    if (n >= sizeof prefix)
        return MESH_PROTO_UNSUPPORTED;
    memcpy(prefix, port_name, n);
    prefix[n] = '\0';
    return mesh_protocol_parse(prefix);
}

bool mesh_protocol_is_http(mesh_protocol p)
{
    return p == MESH_PROTO_HTTP || p == MESH_PROTO_HTTP2 || p == MESH_PROTO_GRPC ||
           p == MESH_PROTO_GRPC_WEB;
}

/* ---- kinds ------------------------------------------------------------------------- */

typedef enum {
    KG_CORE = 0,
    KG_DISCOVERY,
    KG_NETWORKING,
    KG_SECURITY,
    KG_K8S_NETWORKING,
    KG_TELEMETRY
} kind_group;

static const struct {
    const char *kind;
    const char *api_version; /* what configz reports */
    kind_group group;
} kinds[MESH_KIND__COUNT] = {
    [MESH_KIND_NAMESPACE] = {"Namespace", "v1", KG_CORE},
    [MESH_KIND_SERVICE] = {"Service", "v1", KG_CORE},
    [MESH_KIND_POD] = {"Pod", "v1", KG_CORE},
    [MESH_KIND_ENDPOINTS] = {"Endpoints", "v1", KG_CORE},
    [MESH_KIND_ENDPOINT_SLICE] = {"EndpointSlice", "discovery.k8s.io/v1", KG_DISCOVERY},
    [MESH_KIND_GATEWAY] = {"Gateway", "networking.istio.io/v1", KG_NETWORKING},
    [MESH_KIND_VIRTUAL_SERVICE] = {"VirtualService", "networking.istio.io/v1", KG_NETWORKING},
    [MESH_KIND_DESTINATION_RULE] = {"DestinationRule", "networking.istio.io/v1", KG_NETWORKING},
    [MESH_KIND_SERVICE_ENTRY] = {"ServiceEntry", "networking.istio.io/v1", KG_NETWORKING},
    [MESH_KIND_SECRET] = {"Secret", "v1", KG_CORE},
    [MESH_KIND_PEER_AUTHENTICATION] = {"PeerAuthentication", "security.istio.io/v1", KG_SECURITY},
    [MESH_KIND_REQUEST_AUTHENTICATION] = {"RequestAuthentication", "security.istio.io/v1",
                                          KG_SECURITY},
    [MESH_KIND_AUTHORIZATION_POLICY] = {"AuthorizationPolicy", "security.istio.io/v1", KG_SECURITY},
    [MESH_KIND_SIDECAR] = {"Sidecar", "networking.istio.io/v1", KG_NETWORKING},
    [MESH_KIND_INGRESS] = {"Ingress", "networking.k8s.io/v1", KG_K8S_NETWORKING},
    [MESH_KIND_INGRESS_CLASS] = {"IngressClass", "networking.k8s.io/v1", KG_K8S_NETWORKING},
    [MESH_KIND_TELEMETRY] = {"Telemetry", "telemetry.istio.io/v1", KG_TELEMETRY},
};

/* The apiVersions each group is read in (istiod's: every served version, one schema). */
static bool kind_version_ok(kind_group g, const char *a)
{
    static const char *const versions[][4] = {
        [KG_CORE] = {"v1", NULL},
        [KG_DISCOVERY] = {"discovery.k8s.io/v1", "discovery.k8s.io/v1beta1", NULL},
        [KG_NETWORKING] = {"networking.istio.io/v1", "networking.istio.io/v1beta1",
                           "networking.istio.io/v1alpha3", NULL},
        [KG_SECURITY] = {"security.istio.io/v1", "security.istio.io/v1beta1", NULL},
        [KG_K8S_NETWORKING] = {"networking.k8s.io/v1", NULL},
        [KG_TELEMETRY] = {"telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1", NULL},
    };
    for (size_t i = 0; versions[g][i]; i++)
        if (strcmp(versions[g][i], a) == 0)
            return true;
    return false;
}

const char *mesh_kind_name(mesh_kind k)
{
    if (k < 0 || k >= MESH_KIND__COUNT)
        return "Unknown";
    return kinds[k].kind;
}

const char *mesh_kind_api_version(mesh_kind k)
{
    if (k < 0 || k >= MESH_KIND__COUNT)
        return "";
    return kinds[k].api_version;
}

mesh_kind mesh_kind_of(const cJSON *obj)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    const cJSON *kd = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    if (!cJSON_IsString(av) || !cJSON_IsString(kd))
        return MESH_KIND_UNKNOWN;
    const char *a = av->valuestring, *k = kd->valuestring;

    for (int i = 0; i < MESH_KIND__COUNT; i++)
        if (strcmp(kinds[i].kind, k) == 0 && kind_version_ok(kinds[i].group, a))
            return (mesh_kind)i;
    return MESH_KIND_UNKNOWN;
}

/* ---- hosts ------------------------------------------------------------------------- */

char *mesh_resolve_host(const char *host, const char *ns, const char *domain)
{
    if (!host)
        return NULL;
    if (!domain || !*domain)
        domain = "cluster.local";
    if (!ns || !*ns)
        ns = "default";
    size_t dots = 0;
    for (const char *p = host; *p; p++)
        dots += *p == '.';
    if (!*host || strchr(host, '*') || dots >= 2 || mp_is_ip(host))
        return xstrdup(host);
    if (dots == 1)
        return xasprintf("%s.svc.%s", host, domain);
    return xasprintf("%s.%s.svc.%s", host, ns, domain);
}

/* ---- lifetime ---------------------------------------------------------------------- */

char **mp_strv_dup(char *const *v, size_t n)
{
    if (!n)
        return NULL;
    char **out = xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = v[i] ? xstrdup(v[i]) : NULL;
    return out;
}

void mp_meta_free(mesh_meta *m)
{
    free(m->name);
    free(m->ns);
    free(m->resource_version);
    free(m->creation_timestamp);
    free(m->uid);
    free(m->source);
    mesh_labels_free(&m->labels);
    mesh_labels_free(&m->annotations);
}

void mp_object_free(mesh_kind k, mesh_meta *m)
{
    if (!m)
        return;
    switch (k) {
    case MESH_KIND_NAMESPACE:
        break;
    case MESH_KIND_SERVICE:
        mp_free_k8s_service((mesh_k8s_service *)m);
        break;
    case MESH_KIND_POD:
        mp_free_pod((mesh_pod *)m);
        break;
    case MESH_KIND_ENDPOINTS:
    case MESH_KIND_ENDPOINT_SLICE:
        mp_free_endpoint_slice((mesh_endpoint_slice *)m);
        break;
    case MESH_KIND_GATEWAY:
        mp_free_gateway((mesh_gateway *)m);
        break;
    case MESH_KIND_VIRTUAL_SERVICE:
        mp_free_virtual_service((mesh_virtual_service *)m);
        break;
    case MESH_KIND_DESTINATION_RULE:
        mp_free_destination_rule((mesh_destination_rule *)m);
        break;
    case MESH_KIND_SERVICE_ENTRY:
        mp_free_service_entry((mesh_service_entry *)m);
        break;
    case MESH_KIND_SECRET:
        mp_free_secret((mesh_secret *)m);
        break;
    case MESH_KIND_PEER_AUTHENTICATION:
        mp_free_peer_authentication((mesh_peer_authentication *)m);
        break;
    case MESH_KIND_REQUEST_AUTHENTICATION:
        mp_free_request_authentication((mesh_request_authentication *)m);
        break;
    case MESH_KIND_AUTHORIZATION_POLICY:
        mp_free_authorization_policy((mesh_authorization_policy *)m);
        break;
    case MESH_KIND_SIDECAR:
        mp_free_sidecar((mesh_sidecar *)m);
        break;
    case MESH_KIND_INGRESS:
        mp_free_ingress((mesh_ingress *)m);
        break;
    case MESH_KIND_INGRESS_CLASS:
        free(((mesh_ingress_class *)m)->controller);
        break;
    case MESH_KIND_TELEMETRY:
        mp_free_telemetry((mesh_telemetry *)m);
        break;
    default:
        break;
    }
    mp_meta_free(m);
    free(m);
}

void mesh_object_retain(mesh_object o)
{
    if (o.u.meta)
        atomic_fetch_add_explicit(&o.u.meta->refs, 1, memory_order_relaxed);
}

void mesh_object_release(mesh_object o)
{
    if (!o.u.meta)
        return;
    /* acq_rel: the thread that frees must see every other thread's last use. */
    if (atomic_fetch_sub_explicit(&o.u.meta->refs, 1, memory_order_acq_rel) == 1)
        mp_object_free(o.kind, o.u.meta);
}

/* ---- error reporting and paths ------------------------------------------------------ */

int mp_fail(mp_ctx *c, const char *path, const char *fmt, ...)
{
    if (c->failed)
        return -1;
    c->failed = true;
    if (!c->err || !c->errlen)
        return -1;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (c->ns && *c->ns)
        snprintf(c->err, c->errlen, "%s %s/%s: %s: %s", c->kind, c->ns, c->name ? c->name : "",
                 path, reason);
    else
        snprintf(c->err, c->errlen, "%s %s: %s: %s", c->kind, c->name ? c->name : "", path, reason);
    return -1;
}

void mp_warn(mp_ctx *c, const char *path, const char *fmt, ...)
{
    mesh_warnings *w = c->warnings;
    if (!w || w->n >= MESH_MAX_WARNINGS)
        return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (c->ns && *c->ns)
        w->msg[w->n++] =
            xasprintf("%s %s/%s: %s: %s", c->kind, c->ns, c->name ? c->name : "", path, reason);
    else
        w->msg[w->n++] = xasprintf("%s %s: %s: %s", c->kind, c->name ? c->name : "", path, reason);
}

void mesh_warnings_free(mesh_warnings *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->msg[i]);
    w->n = 0;
}

const char *mp_path(char *buf, const char *base, const char *key)
{
    if (base && *base)
        snprintf(buf, MP_PATH_MAX, "%s.%s", base, key);
    else
        snprintf(buf, MP_PATH_MAX, "%s", key);
    return buf;
}

const char *mp_pathi(char *buf, const char *base, const char *key, size_t i)
{
    if (base && *base)
        snprintf(buf, MP_PATH_MAX, "%s.%s[%zu]", base, key, i);
    else
        snprintf(buf, MP_PATH_MAX, "%s[%zu]", key, i);
    return buf;
}

/* ---- typed getters ------------------------------------------------------------------ */

/* Looks key up; NULL and JSON null both mean absent (YAML "key:" with no value). */
static const cJSON *get(const cJSON *obj, const char *key)
{
    if (!obj || !cJSON_IsObject(obj))
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

int mp_get_obj(mp_ctx *c, const cJSON *obj, const char *key, const char *path, const cJSON **out)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return mp_fail(c, mp_path(p, path, key), "must be an object");
    *out = v;
    return 0;
}

int mp_get_arr(mp_ctx *c, const cJSON *obj, const char *key, const char *path, const cJSON **out)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsArray(v))
        return mp_fail(c, mp_path(p, path, key), "must be a list");
    *out = v;
    return 0;
}

int mp_get_str(mp_ctx *c, const cJSON *obj, const char *key, const char *path, char **out)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return mp_fail(c, mp_path(p, path, key), "must be a string");
    free(*out);
    *out = xstrdup(v->valuestring);
    return 0;
}

int mp_get_bool(mp_ctx *c, const cJSON *obj, const char *key, const char *path, bool *out,
                bool *present)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    if (present)
        *present = false;
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return mp_fail(c, mp_path(p, path, key), "must be a boolean");
    *out = cJSON_IsTrue(v);
    if (present)
        *present = true;
    return 0;
}

int mp_get_int(mp_ctx *c, const cJSON *obj, const char *key, const char *path, int64_t min,
               int64_t max, int64_t *out, bool *present)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    if (present)
        *present = false;
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return mp_fail(c, mp_path(p, path, key), "must be an integer");
    double d = v->valuedouble;
    /* (double)INT64_MAX rounds up to 2^63: reject that before the cast can overflow. */
    if (d < (double)min || d > (double)max || d >= 9223372036854775807.0 ||
        d < -9223372036854775807.0)
        return mp_fail(c, mp_path(p, path, key), "%.0f out of range [%lld, %lld]", d,
                       (long long)min, (long long)max);
    *out = (int64_t)d;
    if (present)
        *present = true;
    return 0;
}

int mp_get_port(mp_ctx *c, const cJSON *obj, const char *key, const char *path, uint32_t *out,
                bool *present)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    if (present)
        *present = false;
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return mp_fail(c, mp_path(p, path, key), "port number must be an integer");
    if (v->valuedouble < 1 || v->valuedouble > 65535)
        return mp_fail(c, mp_path(p, path, key), "port number %.0f must be in the range 1..65535",
                       v->valuedouble);
    *out = (uint32_t)v->valuedouble;
    if (present)
        *present = true;
    return 0;
}

int mp_get_duration(mp_ctx *c, const cJSON *obj, const char *key, const char *path, int64_t min_ns,
                    int64_t *out, bool *present)
{
    char p[MP_PATH_MAX];
    const cJSON *v = get(obj, key);
    int64_t ns;
    if (present)
        *present = false;
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return mp_fail(c, mp_path(p, path, key), "duration must be a string like \"1.5s\"");
    if (util_parse_duration(v->valuestring, &ns) != 0)
        return mp_fail(c, mp_path(p, path, key), "invalid duration %.64s", v->valuestring);
    if (min_ns > 0 && ns < min_ns)
        return mp_fail(c, mp_path(p, path, key), "duration must be greater than 1ms");
    /* Istio stores durations as protobuf Durations truncated to ms in Envoy config. */
    if (min_ns > 0 && ns % 1000000 != 0)
        return mp_fail(c, mp_path(p, path, key), "only durations to ms precision are supported");
    *out = ns;
    if (present)
        *present = true;
    return 0;
}

int mp_get_strv(mp_ctx *c, const cJSON *obj, const char *key, const char *path, char ***out,
                size_t *n)
{
    char p[MP_PATH_MAX];
    const cJSON *arr, *it;
    if (mp_get_arr(c, obj, key, path, &arr) != 0)
        return -1;
    if (!arr)
        return 0;
    size_t cnt = (size_t)cJSON_GetArraySize(arr), i = 0;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it))
            return mp_fail(c, mp_pathi(p, path, key, i), "must be a string");
        i++;
    }
    util_strv_free(*out, *n);
    *out = cnt ? xcalloc(cnt, sizeof(char *)) : NULL;
    *n = cnt;
    i = 0;
    cJSON_ArrayForEach(it, arr)(*out)[i++] = xstrdup(it->valuestring);
    return 0;
}

int mp_get_labels(mp_ctx *c, const cJSON *obj, const char *key, const char *path, mesh_labels *out)
{
    char p[MP_PATH_MAX];
    const cJSON *m, *it;
    if (mp_get_obj(c, obj, key, path, &m) != 0)
        return -1;
    if (!m)
        return 0;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it))
            return mp_fail(c, mp_path(p, path, key), "value of %.64s must be a string",
                           it->string ? it->string : "");
        if (!it->string || !*it->string)
            return mp_fail(c, mp_path(p, path, key), "empty key");
    }
    mesh_labels_free(out);
    return mesh_labels_from_json(m, out) == 0 ? 0
                                              : mp_fail(c, mp_path(p, path, key), "invalid map");
}

/* ---- predicates --------------------------------------------------------------------- */

bool mp_is_dns1123_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '-'))
            return false;
    }
    return s[0] != '-' && s[n - 1] != '-';
}

bool mp_is_dns1123_subdomain(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253)
        return false;
    char buf[254];
    memcpy(buf, s, n + 1);
    char *save = NULL;
    if (buf[0] == '.' || buf[n - 1] == '.' || strstr(buf, ".."))
        return false;
    for (char *lab = strtok_r(buf, ".", &save); lab; lab = strtok_r(NULL, ".", &save))
        if (!mp_is_dns1123_label(lab))
            return false;
    return true;
}

/* Istio's host labels are case-insensitive DNS labels: letters, digits, '-', not at the
 * ends, at most 63 bytes. */
static bool host_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '-'))
            return false;
    }
    return true;
}

const char *mp_check_wildcard_domain(const char *host)
{
    size_t n = host ? strlen(host) : 0;
    if (n == 0)
        return "domain name must not be empty";
    if (n > 255)
        return "domain name too long (max 255)";
    if (strcmp(host, "*") == 0)
        return NULL;
    const char *p = host;
    /* First label: "*", or "*" + label chars (Istio's wildcard prefix "*foo.com"). */
    if (*p == '*') {
        p++;
        if (*p == '.') {
            p++;
        } else {
            const char *dot = strchr(p, '.');
            size_t ln = dot ? (size_t)(dot - p) : strlen(p);
            for (size_t i = 0; i < ln; i++)
                if (!(isalnum((unsigned char)p[i]) || p[i] == '-'))
                    return "wildcard is only allowed as the leftmost label prefix";
            if (!dot)
                return NULL;
            p = dot + 1;
        }
        if (!*p)
            return "wildcard must be followed by a domain";
    }
    /* The rest: dot-separated labels, a trailing dot allowed, TLD not all-numeric. */
    const char *last = p;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t ln = dot ? (size_t)(dot - p) : strlen(p);
        if (memchr(p, '*', ln))
            return "wildcard is only allowed as the leftmost label";
        if (!host_label_ok(p, ln))
            return "invalid DNS label";
        last = p;
        if (!dot)
            break;
        p = dot + 1;
        if (!*p)
            break; /* trailing dot */
    }
    const char *q = last;
    bool numeric = true;
    for (; *q && *q != '.'; q++)
        if (!isdigit((unsigned char)*q))
            numeric = false;
    if (numeric)
        return "top level domain cannot be all-numeric";
    return NULL;
}

bool mp_is_ip(const char *s)
{
    unsigned char buf[16];
    if (!s)
        return false;
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool mp_is_cidr_or_ip(const char *s)
{
    if (!s)
        return false;
    const char *slash = strchr(s, '/');
    if (!slash)
        return mp_is_ip(s);
    char ip[64];
    size_t n = (size_t)(slash - s);
    if (n == 0 || n >= sizeof ip)
        return false;
    memcpy(ip, s, n);
    ip[n] = '\0';
    unsigned char buf[16];
    int max;
    if (inet_pton(AF_INET, ip, buf) == 1)
        max = 32;
    else if (inet_pton(AF_INET6, ip, buf) == 1)
        max = 128;
    else
        return false;
    const char *b = slash + 1;
    if (!*b || strlen(b) > 3)
        return false;
    for (const char *q = b; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    return atoi(b) <= max;
}

/* RE2 (Envoy's and istiod's engine) has no C API, so its syntax is judged here: the
 * Perl-only constructs RE2 refuses are refused by name (lookahead and lookbehind,
 * backreferences, atomic groups, possessive quantifiers, repeat counts above 1000), and the
 * rest must compile as POSIX ERE unless it uses RE2-only syntax ERE lacks (\d, (?i)...). */
const char *mp_check_regex(const char *re)
{
    regex_t rx;
    if (!re)
        return "missing regex";
    if (strlen(re) > 4096)
        return "regex too long (max 4096)";
    bool in_class = false;
    for (const char *p = re; *p; p++) {
        if (*p == '\\') {
            if (!p[1])
                return "invalid regex: trailing backslash";
            if (!in_class && p[1] >= '1' && p[1] <= '9')
                return "invalid regex: backreferences are not supported by RE2";
            p++;
            continue;
        }
        if (in_class) {
            if (*p == ']')
                in_class = false;
            continue;
        }
        if (*p == '[') {
            in_class = true;
            if (p[1] == '^')
                p++;
            if (p[1] == ']')
                p++; /* a leading ] is literal */
            continue;
        }
        if (*p == '(' && p[1] == '?') {
            if (p[2] == '=' || p[2] == '!' || (p[2] == '<' && (p[3] == '=' || p[3] == '!')))
                return "invalid regex: lookaround is not supported by RE2";
            if (p[2] == '>')
                return "invalid regex: atomic groups are not supported by RE2";
        }
        if ((*p == '*' || *p == '+' || *p == '?' || *p == '}') && p[1] == '+')
            return "invalid regex: possessive quantifiers are not supported by RE2";
        if (*p == '{' && isdigit((unsigned char)p[1])) {
            char *end;
            long lo = strtol(p + 1, &end, 10), hi = lo;
            if (*end == ',' && isdigit((unsigned char)end[1]))
                hi = strtol(end + 1, &end, 10);
            if ((*end == '}' || *end == ',') && (lo > 1000 || hi > 1000))
                return "invalid regex: bad repetition operator (max 1000)";
        }
    }
    if (in_class)
        return "invalid regex: missing closing ]";
    /* RE2 syntax is mostly a superset of ERE; accept RE2-only escapes (\d, \w, (?i)...)
     * rather than reject what Istio accepts: only a failure on the plain ERE compile of
     * a pattern without such constructs counts. */
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) {
        if (strstr(re, "(?") || strchr(re, '\\'))
            return NULL;
        return "invalid regex";
    }
    regfree(&rx);
    return NULL;
}

bool mesh_meta_older(const mesh_meta *a, const mesh_meta *b)
{
    const char *ta = a->creation_timestamp ? a->creation_timestamp : "";
    const char *tb = b->creation_timestamp ? b->creation_timestamp : "";
    int c = strcmp(ta, tb);
    return c != 0 ? c < 0 : strcmp(a->name, b->name) < 0;
}

size_t mesh_meta_ns_lower_bound(void *const *items, size_t n, const char *ns)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(((const mesh_meta *)items[mid])->ns, ns) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
