/* parse_telemetry: Telemetry (telemetry.istio.io v1, v1alpha1): selector, targetRef(s),
 * metrics (providers, overrides with match and tagOverrides, reportingInterval),
 * accessLogging (providers, match, disabled, filter) and tracing (providers, match,
 * randomSamplingPercentage, disableSpanReporting, useRequestIdForTraceSampling, customTags),
 * validated as istiod's ValidateTelemetry does (the reasons worded like Istio's). The first
 * error wins, as everywhere in the parser; a half-built object is freed by
 * mp_free_telemetry (counts are raised only once an element is zeroed). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

static const char *const tel_metric_names[MESH_TEL_METRIC__COUNT] = {
    "ALL_METRICS",        "REQUEST_COUNT",          "REQUEST_DURATION",       "REQUEST_SIZE",
    "RESPONSE_SIZE",      "TCP_OPENED_CONNECTIONS", "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES",
    "TCP_RECEIVED_BYTES", "GRPC_REQUEST_MESSAGES",  "GRPC_RESPONSE_MESSAGES",
};

const char *mesh_tel_metric_name(mesh_tel_metric m)
{
    return m >= 0 && m < MESH_TEL_METRIC__COUNT ? tel_metric_names[m] : NULL;
}

/* A proto3 JSON enum at obj[key]: its name, or its number; absent leaves *out. */
static int tel_enum(mp_ctx *c, const cJSON *obj, const char *key, const char *path,
                    const char *const *names, size_t n, int *out)
{
    char p[MP_PATH_MAX];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)n &&
        v->valuedouble == floor(v->valuedouble)) {
        *out = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v))
        for (size_t k = 0; k < n; k++)
            if (strcmp(names[k], v->valuestring) == 0) {
                *out = (int)k;
                return 0;
            }
    return mp_fail(c, mp_path(p, path, key), "unknown value %.64s",
                   cJSON_IsString(v) ? v->valuestring : "(not a string)");
}

static int tel_mode(mp_ctx *c, const cJSON *obj, const char *path, mesh_tel_mode *out)
{
    static const char *const modes[] = {"CLIENT_AND_SERVER", "CLIENT", "SERVER"};
    int m = MESH_TEL_CLIENT_AND_SERVER;
    if (tel_enum(c, obj, "mode", path, modes, 3, &m) != 0)
        return -1;
    *out = (mesh_tel_mode)m;
    return 0;
}

/* A google.protobuf.BoolValue: a bare JSON bool (null = unset). */
static int tel_tri(mp_ctx *c, const cJSON *obj, const char *key, const char *path, mesh_tri *out)
{
    bool b = false, present = false;
    if (mp_get_bool(c, obj, key, path, &b, &present) != 0)
        return -1;
    *out = !present ? MESH_TRI_UNSET : b ? MESH_TRI_TRUE : MESH_TRI_FALSE;
    return 0;
}

/* providers: [{name}] (validateTelemetryProviders: every name set). */
static int tel_providers(mp_ctx *c, const cJSON *obj, const char *path, mesh_strv *out)
{
    const cJSON *arr = NULL, *it;
    char p[MP_PATH_MAX], q[MP_PATH_MAX];
    size_t i;
    if (mp_get_arr(c, obj, "providers", path, &arr) != 0)
        return -1;
    if (!arr || !cJSON_GetArraySize(arr))
        return 0;
    out->v = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *out->v);
    FOR_EACH_OBJ(c, arr, path, "providers", i, it)
    {
        mp_pathi(p, path, "providers", i);
        if (cJSON_IsNull(it))
            return mp_fail(c, p, "providers.name may not be empty");
        if (mp_require_obj(c, it, p) != 0)
            return -1;
        char **name = &out->v[out->n++];
        if (mp_get_str(c, it, "name", p, name) != 0)
            return -1;
        if (!*name || !**name)
            return mp_fail(c, mp_path(q, p, "name"), "providers.name may not be empty");
    }
    return 0;
}

static int tel_cmp_tag(const void *a, const void *b)
{
    return strcmp(((const mesh_tel_tag_override *)a)->name,
                  ((const mesh_tel_tag_override *)b)->name);
}

static int tel_tag_overrides(mp_ctx *c, const cJSON *o, const char *path,
                             mesh_tel_metrics_override *mo)
{
    static const char *const ops[] = {"UPSERT", "REMOVE"};
    const cJSON *tags = NULL, *it;
    char base[MP_PATH_MAX], p[MP_PATH_MAX];
    if (mp_get_obj(c, o, "tagOverrides", path, &tags) != 0)
        return -1;
    if (!tags || !cJSON_GetArraySize(tags))
        return 0;
    mp_path(base, path, "tagOverrides");
    mo->tags = xcalloc((size_t)cJSON_GetArraySize(tags), sizeof *mo->tags);
    cJSON_ArrayForEach(it, tags)
    {
        mp_path(p, base, it->string ? it->string : "");
        if (cJSON_IsNull(it))
            return mp_fail(c, p, "tagOverrides may not be null");
        if (mp_require_obj(c, it, p) != 0)
            return -1;
        if (!it->string || !*it->string)
            mp_warn(c, p, "tagOverrides.name may not be empty");
        mesh_tel_tag_override *t = &mo->tags[mo->ntags++];
        t->name = xstrdup(it->string ? it->string : "");
        int op = 0;
        if (tel_enum(c, it, "operation", p, ops, 2, &op) != 0 ||
            mp_get_str(c, it, "value", p, &t->value) != 0)
            return -1;
        t->remove = op == 1;
        bool has_value = t->value && *t->value;
        if (!t->remove && !has_value)
            return mp_fail(c, p, "tagOverrides.value must be set when operation is UPSERT");
        if (t->remove && has_value)
            return mp_fail(c, p, "tagOverrides.value may only be set when operation is UPSERT");
        if (t->remove) {
            free(t->value);
            t->value = NULL;
        }
    }
    /* a JSON object may repeat a key: the last one wins, as in a Go map */
    qsort(mo->tags, mo->ntags, sizeof *mo->tags, tel_cmp_tag);
    size_t w = 0;
    for (size_t k = 0; k < mo->ntags; k++) {
        if (w && strcmp(mo->tags[w - 1].name, mo->tags[k].name) == 0) {
            free(mo->tags[w - 1].name);
            free(mo->tags[w - 1].value);
            mo->tags[w - 1] = mo->tags[k];
        } else {
            mo->tags[w++] = mo->tags[k];
        }
    }
    mo->ntags = w;
    return 0;
}

static int tel_override(mp_ctx *c, const cJSON *o, const char *path, mesh_tel_metrics_override *mo)
{
    const cJSON *match = NULL;
    char p[MP_PATH_MAX];
    mo->metric = MESH_TEL_ALL_METRICS;
    if (cJSON_IsNull(o))
        return mp_fail(c, path, "tagOverrides may not be null");
    if (mp_require_obj(c, o, path) != 0 || mp_get_obj(c, o, "match", path, &match) != 0 ||
        tel_tri(c, o, "disabled", path, &mo->disabled) != 0 ||
        tel_tag_overrides(c, o, path, mo) != 0)
        return -1;
    if (!match)
        return 0;
    mp_path(p, path, "match");
    int m = MESH_TEL_ALL_METRICS;
    if (tel_mode(c, match, p, &mo->mode) != 0 ||
        tel_enum(c, match, "metric", p, tel_metric_names, MESH_TEL_METRIC__COUNT, &m) != 0 ||
        mp_get_str(c, match, "customMetric", p, &mo->custom_metric) != 0)
        return -1;
    mo->metric = (mesh_tel_metric)m;
    if (mo->custom_metric && cJSON_GetObjectItemCaseSensitive(match, "metric"))
        return mp_fail(c, p, "only one of metric or customMetric can be set");
    if (mo->custom_metric && !*mo->custom_metric)
        return mp_fail(c, p, "customMetric may not be empty");
    return 0;
}

static int tel_metrics(mp_ctx *c, const cJSON *spec, mesh_telemetry *o)
{
    const cJSON *arr = NULL, *it, *ov = NULL, *x;
    char p[MP_PATH_MAX], q[MP_PATH_MAX];
    size_t i, k;
    if (mp_get_arr(c, spec, "metrics", "spec", &arr) != 0)
        return -1;
    if (!arr || !cJSON_GetArraySize(arr))
        return 0;
    o->metrics = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->metrics);
    FOR_EACH_OBJ(c, arr, "spec", "metrics", i, it)
    {
        mp_pathi(p, "spec", "metrics", i);
        mesh_tel_metrics *m = &o->metrics[o->nmetrics++];
        m->reporting_interval_ns = -1;
        if (cJSON_IsNull(it))
            continue; /* istiod skips a null entry */
        if (mp_require_obj(c, it, p) != 0 || tel_providers(c, it, p, &m->providers) != 0 ||
            mp_get_arr(c, it, "overrides", p, &ov) != 0 ||
            mp_get_duration(c, it, "reportingInterval", p, 0, &m->reporting_interval_ns, NULL) != 0)
            return -1;
        if (!ov || !cJSON_GetArraySize(ov))
            continue;
        m->overrides = xcalloc((size_t)cJSON_GetArraySize(ov), sizeof *m->overrides);
        FOR_EACH_OBJ(c, ov, p, "overrides", k, x)
        {
            mesh_tel_metrics_override *mo = &m->overrides[m->noverrides++];
            if (tel_override(c, x, mp_pathi(q, p, "overrides", k), mo) != 0)
                return -1;
        }
    }
    return 0;
}

/* A light check of a CEL expression (istiod parses it with cel-go; we do not carry a CEL
 * parser): not blank, string literals closed, brackets balanced and nested, and not ending
 * in a binary operator. Returns a static reason or NULL. */
static const char *tel_cel_reason(const char *e)
{
    char stack[64];
    size_t depth = 0;
    const char *last = NULL; /* last non-space character outside literals */
    for (const char *s = e; *s; s++) {
        if (isspace((unsigned char)*s))
            continue;
        if (*s == '"' || *s == '\'') {
            char q = *s;
            for (s++; *s && *s != q; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (!*s)
                return "Syntax error: unterminated string literal";
            last = s;
            continue;
        }
        if (*s == '(' || *s == '[' || *s == '{') {
            if (depth == sizeof stack)
                return "expression nested too deeply";
            stack[depth++] = *s == '(' ? ')' : *s == '[' ? ']' : '}';
        } else if (*s == ')' || *s == ']' || *s == '}') {
            if (!depth || stack[depth - 1] != *s)
                return "Syntax error: mismatched brackets";
            depth--;
        }
        last = s;
    }
    if (!last)
        return "Syntax error: mismatched input '<EOF>'";
    if (depth)
        return "Syntax error: missing closing bracket";
    if (strchr("=!<>&|+-*/%?:.,", *last))
        return "Syntax error: the expression ends in an operator";
    return NULL;
}

static int tel_access_logging(mp_ctx *c, const cJSON *spec, mesh_telemetry *o)
{
    const cJSON *arr = NULL, *it, *match = NULL, *filter = NULL;
    char p[MP_PATH_MAX], q[MP_PATH_MAX];
    size_t i;
    if (mp_get_arr(c, spec, "accessLogging", "spec", &arr) != 0)
        return -1;
    if (!arr || !cJSON_GetArraySize(arr))
        return 0;
    o->logging = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->logging);
    FOR_EACH_OBJ(c, arr, "spec", "accessLogging", i, it)
    {
        mp_pathi(p, "spec", "accessLogging", i);
        mesh_tel_access_logging *l = &o->logging[o->nlogging++];
        if (cJSON_IsNull(it))
            continue;
        if (mp_require_obj(c, it, p) != 0 || mp_get_obj(c, it, "match", p, &match) != 0 ||
            mp_get_obj(c, it, "filter", p, &filter) != 0 ||
            tel_tri(c, it, "disabled", p, &l->disabled) != 0)
            return -1;
        if (match && tel_mode(c, match, mp_path(q, p, "match"), &l->mode) != 0)
            return -1;
        if (filter) {
            char r[MP_PATH_MAX];
            mp_path(q, p, "filter");
            if (mp_get_str(c, filter, "expression", q, &l->filter) != 0)
                return -1;
            if (!l->filter)
                l->filter = xstrdup("");
            const char *why = tel_cel_reason(l->filter);
            if (why)
                return mp_fail(c, mp_path(r, q, "expression"), "must be a valid CEL expression, %s",
                               why);
        }
        if (tel_providers(c, it, p, &l->providers) != 0)
            return -1;
    }
    return 0;
}

static int tel_cmp_trace_tag(const void *a, const void *b)
{
    return strcmp(((const mesh_trace_tag *)a)->tag, ((const mesh_trace_tag *)b)->tag);
}

/* customTags: {name: {literal: {value}} | {header: {name, defaultValue}} |
 * {environment: {name, defaultValue}}} (validateTelemetryTracing), kept sorted by name. */
static int tel_custom_tags(mp_ctx *c, const cJSON *t, const char *path, mesh_tel_tracing *tr)
{
    const cJSON *tags = NULL, *it;
    char base[MP_PATH_MAX], p[MP_PATH_MAX];
    if (mp_get_obj(c, t, "customTags", path, &tags) != 0)
        return -1;
    if (!tags)
        return 0;
    tr->has_custom_tags = true;
    tr->custom_tags = xcalloc((size_t)cJSON_GetArraySize(tags) + 1, sizeof *tr->custom_tags);
    mp_path(base, path, "customTags");
    cJSON_ArrayForEach(it, tags)
    {
        mp_path(p, base, it->string ? it->string : "");
        if (!it->string || !*it->string)
            return mp_fail(c, p, "tag name may not be empty");
        if (cJSON_IsNull(it))
            return mp_fail(c, p, "tag '%.64s' may not have a nil value", it->string);
        if (mp_require_obj(c, it, p) != 0)
            return -1;
        static const struct {
            const char *type, *field, *reason;
            mesh_trace_tag_kind kind;
        } kinds[] = {
            {"literal", "value", "literal tag value may not be empty", MESH_TRACE_TAG_LITERAL},
            {"header", "name", "header tag name may not be empty", MESH_TRACE_TAG_HEADER},
            {"environment", "name", "environment tag name may not be empty",
             MESH_TRACE_TAG_ENVIRONMENT},
        };
        mesh_trace_tag *tag = &tr->custom_tags[tr->ncustom_tags++];
        tag->tag = xstrdup(it->string);
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            const cJSON *v = NULL;
            char *s = NULL;
            if (mp_get_obj(c, it, kinds[k].type, p, &v) != 0)
                return -1;
            if (!v)
                continue;
            char q[MP_PATH_MAX];
            if (mp_get_str(c, v, kinds[k].field, mp_path(q, p, kinds[k].type), &s) != 0)
                return -1;
            if (!s || !*s) {
                free(s);
                return mp_fail(c, q, "%s", kinds[k].reason);
            }
            /* a oneof: the last kind written wins as a proto decoder keeps one */
            free(tag->value);
            free(tag->default_value);
            tag->default_value = NULL;
            tag->value = s;
            tag->kind = kinds[k].kind;
            if (kinds[k].kind != MESH_TRACE_TAG_LITERAL &&
                mp_get_str(c, v, "defaultValue", q, &tag->default_value) != 0)
                return -1;
        }
    }
    if (tr->ncustom_tags > 1)
        qsort(tr->custom_tags, tr->ncustom_tags, sizeof *tr->custom_tags, tel_cmp_trace_tag);
    return 0;
}

static int tel_tracing(mp_ctx *c, const cJSON *spec, mesh_telemetry *o)
{
    const cJSON *arr = NULL, *it, *match = NULL;
    char p[MP_PATH_MAX], q[MP_PATH_MAX];
    size_t i;
    if (mp_get_arr(c, spec, "tracing", "spec", &arr) != 0)
        return -1;
    if (!arr || !cJSON_GetArraySize(arr))
        return 0;
    if (cJSON_GetArraySize(arr) > 1)
        mp_warn(c, "spec.tracing", "multiple tracing is not currently supported");
    o->tracing = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->tracing);
    FOR_EACH_OBJ(c, arr, "spec", "tracing", i, it)
    {
        mp_pathi(p, "spec", "tracing", i);
        mesh_tel_tracing *t = &o->tracing[o->ntracing++];
        t->random_sampling_percentage = -1;
        if (cJSON_IsNull(it))
            continue;
        if (mp_require_obj(c, it, p) != 0 || mp_get_obj(c, it, "match", p, &match) != 0 ||
            tel_providers(c, it, p, &t->providers) != 0 ||
            tel_tri(c, it, "disableSpanReporting", p, &t->disable_span_reporting) != 0 ||
            tel_tri(c, it, "useRequestIdForTraceSampling", p,
                    &t->use_request_id_for_trace_sampling) != 0)
            return -1;
        if (match && tel_mode(c, match, mp_path(q, p, "match"), &t->mode) != 0)
            return -1;
        if (t->providers.n > 1)
            mp_warn(c, p, "multiple providers is not currently supported");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "randomSamplingPercentage");
        if (r && !cJSON_IsNull(r)) {
            mp_path(q, p, "randomSamplingPercentage");
            if (!cJSON_IsNumber(r) || !isfinite(r->valuedouble))
                return mp_fail(c, q, "want a number");
            if (r->valuedouble < 0 || r->valuedouble > 100)
                return mp_fail(c, q, "randomSamplingPercentage must be in range [0.0, 100.0]");
            t->random_sampling_percentage = r->valuedouble;
        }
        if (tel_custom_tags(c, it, p, t) != 0)
            return -1;
    }
    return 0;
}

int mp_parse_telemetry(mp_ctx *c, const cJSON *obj, mesh_telemetry *o)
{
    const cJSON *spec, *sel = NULL;

    if (mp_get_spec(c, obj, &spec) != 0 || mp_get_obj(c, spec, "selector", "spec", &sel) != 0)
        return -1;
    /* validateOneOfSelectorType: a selector, a targetRef and targetRefs count one each */
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(spec, "targetRef");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(spec, "targetRefs");
    int set = (sel != NULL) + (one != NULL && !cJSON_IsNull(one)) +
              (cJSON_IsArray(many) && cJSON_GetArraySize(many) > 0);
    if (set > 1)
        return mp_fail(c, "spec", "only one of targetRefs or workloadSelector can be set");
    if (sel) {
        if (mp_get_labels(c, sel, "matchLabels", "spec.selector", &o->selector) != 0 ||
            mp_check_selector(c, "spec.selector.matchLabels", &o->selector) != 0)
            return -1;
        if (o->selector.n == 0)
            mp_warn(c, "spec.selector", "workload selector specified without labels");
    }
    if (mp_parse_target_refs(c, spec, &o->target_refs, &o->ntarget_refs) != 0 ||
        tel_metrics(c, spec, o) != 0 || tel_tracing(c, spec, o) != 0 ||
        tel_access_logging(c, spec, o) != 0)
        return -1;
    return 0;
}

void mp_free_telemetry(mesh_telemetry *o)
{
    mesh_labels_free(&o->selector);
    mp_free_target_refs(o->target_refs, o->ntarget_refs);
    for (size_t i = 0; i < o->nmetrics; i++) {
        mesh_tel_metrics *m = &o->metrics[i];
        util_strv_free(m->providers.v, m->providers.n);
        for (size_t k = 0; k < m->noverrides; k++) {
            mesh_tel_metrics_override *mo = &m->overrides[k];
            free(mo->custom_metric);
            for (size_t t = 0; t < mo->ntags; t++) {
                free(mo->tags[t].name);
                free(mo->tags[t].value);
            }
            free(mo->tags);
        }
        free(m->overrides);
    }
    free(o->metrics);
    for (size_t i = 0; i < o->nlogging; i++) {
        util_strv_free(o->logging[i].providers.v, o->logging[i].providers.n);
        free(o->logging[i].filter);
    }
    free(o->logging);
    for (size_t i = 0; i < o->ntracing; i++) {
        util_strv_free(o->tracing[i].providers.v, o->tracing[i].providers.n);
        mesh_trace_tags_free(o->tracing[i].custom_tags, o->tracing[i].ncustom_tags);
    }
    free(o->tracing);
}
