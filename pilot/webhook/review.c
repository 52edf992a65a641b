/* review: the transport-neutral side of the webhooks: routing, request checks, the
 * AdmissionReview envelope (admission.k8s.io v1 and v1beta1 share its shape) and the
 * reply. Like istiod's serve(): an empty body is 400, a Content-Type other than
 * application/json 415, a body that is not an AdmissionReview 400 with the reason; a
 * decodable review always gets a review back, allowed or denied. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/log.h"
#include "pilot/obs/metrics.h"
#include "pilot/webhook/webhook_internal.h"

void wh_reply_init(wh_reply *r)
{
    r->status = 200;
    r->content_type = "application/json";
    strbuf_init(&r->body, WH_MAX_REPLY);
}

void wh_reply_free(wh_reply *r)
{
    strbuf_free(&r->body);
}

void wh_verdict_free(wh_verdict *v)
{
    free(v->message);
    for (size_t i = 0; i < v->nwarnings; i++)
        free(v->warnings[i]);
    free(v->patch);
    memset(v, 0, sizeof(*v));
}

void wh_deny(wh_verdict *v, const char *fmt, ...)
{
    v->allowed = false;
    if (v->message)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    v->message = xstrdup(buf);
}

char *wh_base64(const char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    const unsigned char *s = (const unsigned char *)p;
    for (; i + 2 < n; i += 3) {
        out[o++] = tab[s[i] >> 2];
        out[o++] = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        out[o++] = tab[s[i + 2] & 63];
    }
    if (i < n) {
        out[o++] = tab[s[i] >> 2];
        if (i + 1 < n) {
            out[o++] = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
            out[o++] = tab[(s[i + 1] & 15) << 2];
        } else {
            out[o++] = tab[(s[i] & 3) << 4];
            out[o++] = '=';
        }
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static void reply_text(wh_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_text(wh_reply *r, int status, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    strbuf_reset(&r->body);
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    strbuf_appendf(&r->body, "%s\n", buf);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Checks the envelope: the reason on failure (static or in why_buf), NULL when usable. */
static const char *decode_review(const cJSON *doc, wh_review *rv)
{
    memset(rv, 0, sizeof(*rv));
    if (!cJSON_IsObject(doc))
        return "could not decode body: not a JSON object";
    const char *kind = str_of(doc, "kind");
    const char *av = str_of(doc, "apiVersion");
    if (!kind || strcmp(kind, "AdmissionReview") != 0)
        return "could not decode body: kind must be AdmissionReview";
    if (!av ||
        (strcmp(av, "admission.k8s.io/v1") != 0 && strcmp(av, "admission.k8s.io/v1beta1") != 0))
        return "could not decode body: apiVersion must be admission.k8s.io/v1 or v1beta1";
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(doc, "request");
    if (!cJSON_IsObject(req))
        return "could not decode body: request is required";
    rv->api_version = av;
    rv->uid = str_of(req, "uid");
    if (!rv->uid || !*rv->uid)
        return "could not decode body: request.uid is required";
    rv->operation = str_of(req, "operation");
    rv->ns = str_of(req, "namespace");
    rv->name = str_of(req, "name");
    if (!rv->operation)
        rv->operation = "";
    if (!rv->ns)
        rv->ns = "";
    if (!rv->name)
        rv->name = "";
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(req, "object");
    rv->object = cJSON_IsNull(obj) ? NULL : obj;
    rv->dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "dryRun"));
    return NULL;
}

/* {"apiVersion", "kind": "AdmissionReview", "response": {uid, allowed, status, warnings,
 * patch, patchType}} */
static void encode_review(const wh_review *rv, const wh_verdict *v, wh_reply *r)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "kind", "AdmissionReview");
    cJSON_AddStringToObject(doc, "apiVersion", rv->api_version);
    cJSON *resp = cJSON_AddObjectToObject(doc, "response");
    cJSON_AddStringToObject(resp, "uid", rv->uid);
    cJSON_AddBoolToObject(resp, "allowed", v->allowed);
    if (!v->allowed) {
        cJSON *st = cJSON_AddObjectToObject(resp, "status");
        cJSON_AddStringToObject(st, "message", v->message ? v->message : "denied");
    }
    if (v->nwarnings) {
        cJSON *w = cJSON_AddArrayToObject(resp, "warnings");
        for (size_t i = 0; i < v->nwarnings; i++)
            cJSON_AddItemToArray(w, cJSON_CreateString(v->warnings[i]));
    }
    if (v->allowed && v->patch) {
        char *b64 = wh_base64(v->patch, strlen(v->patch));
        cJSON_AddStringToObject(resp, "patch", b64);
        cJSON_AddStringToObject(resp, "patchType", "JSONPatch");
        free(b64);
    }
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text || strbuf_appends(&r->body, text) != 0) {
        reply_text(r, 500, "could not encode response");
    }
    free(text);
}

/* istiod's injection metrics (pkg/kube/inject/monitoring.go), counted as istiod counts
 * them: every /inject request; a failure for each request refused before a review could be
 * answered and for a template that could not run; a skip for a pod left alone; a success for
 * every review answered (a skip or a template failure is answered too). */
static struct {
    metric *requests, *success, *failure, *skip, *time;
} inj_metrics;
static pthread_once_t inj_metrics_once = PTHREAD_ONCE_INIT;

static void inj_metrics_init(void)
{
    static const double buckets[] = {.1, 1, 3, 5, 10, 20, 30, 60};
    inj_metrics.requests = metric_counter("sidecar_injection_requests_total",
                                          "Total number of sidecar injection requests.", NULL);
    inj_metrics.success =
        metric_counter("sidecar_injection_success_total",
                       "Total number of successful sidecar injection requests.", NULL);
    inj_metrics.failure =
        metric_counter("sidecar_injection_failure_total",
                       "Total number of failed sidecar injection requests.", NULL);
    inj_metrics.skip = metric_counter("sidecar_injection_skip_total",
                                      "Total number of skipped sidecar injection requests.", NULL);
    inj_metrics.time = metric_histogram("sidecar_injection_time_seconds",
                                        "Total time taken for injection in seconds.", NULL, buckets,
                                        sizeof(buckets) / sizeof(buckets[0]));
}

void wh_metrics_init(void)
{
    pthread_once(&inj_metrics_once, inj_metrics_init);
}

/* "/inject/cluster/c1/net/n1": istiod's key/value path parameters; unknown keys are
 * ignored, a dangling key is an error. */
static int parse_inject_path(const char *path, wh_inject_params *pp)
{
    memset(pp, 0, sizeof(*pp));
    const char *p = path + strlen("/inject");
    while (*p == '/')
        p++;
    while (*p) {
        const char *ks = p;
        const char *ke = strchr(ks, '/');
        if (!ke)
            return -1;
        const char *vs = ke + 1;
        const char *ve = strchr(vs, '/');
        size_t kl = (size_t)(ke - ks), vl = ve ? (size_t)(ve - vs) : strlen(vs);
        if (vl == 0)
            return -1;
        char *dst = NULL;
        if (kl == 7 && strncmp(ks, "cluster", 7) == 0)
            dst = pp->cluster;
        else if (kl == 3 && strncmp(ks, "net", 3) == 0)
            dst = pp->network;
        if (dst) {
            if (vl >= sizeof(pp->cluster))
                return -1;
            memcpy(dst, vs, vl);
            dst[vl] = '\0';
        }
        p = ve ? ve + 1 : vs + vl;
    }
    return 0;
}

void wh_handle(const wh_config *cfg, const char *method, const char *path, const char *content_type,
               const char *body, size_t len, wh_reply *out)
{
    cJSON *doc = NULL;
    wh_verdict v = {0};
    wh_inject_params pp;
    bool inject = false;
    int64_t t0 = util_now_ns();

    if (strcmp(path, "/ready") == 0) {
        out->content_type = "text/plain; charset=utf-8";
        out->status = !cfg->ready || cfg->ready(cfg->ready_ud) ? 200 : 503;
        goto out;
    }
    if (strcmp(path, "/inject") == 0 || strncmp(path, "/inject/", 8) == 0) {
        inject = true;
        wh_metrics_init();
        metric_add(inj_metrics.requests, NULL, 1);
        if (parse_inject_path(path, &pp) != 0) {
            reply_text(out, 400, "bad path parameters in %.200s", path);
            goto out;
        }
    } else if (strcmp(path, "/validate") != 0 && strncmp(path, "/validate/", 10) != 0) {
        reply_text(out, 404, "404 page not found");
        goto out;
    }
    if (strcmp(method, "POST") != 0) {
        reply_text(out, 405, "method not allowed");
        goto out;
    }
    if (!body || len == 0) {
        reply_text(out, 400, "no body found");
        goto out;
    }
    /* Media type only: "application/json; charset=utf-8" is fine too. */
    size_t ctl = content_type ? strcspn(content_type, ";") : 0;
    while (ctl && content_type[ctl - 1] == ' ')
        ctl--;
    if (!content_type || ctl != 16 || strncasecmp(content_type, "application/json", 16) != 0) {
        reply_text(out, 415, "invalid Content-Type, want `application/json`");
        goto out;
    }
    /* cJSON refuses nesting deeper than CJSON_NESTING_LIMIT (1000) and needs the length
     * (the body is not NUL-terminated). */
    doc = cJSON_ParseWithLength(body, len);
    if (!doc) {
        reply_text(out, 400, "could not decode body: not JSON (or nested too deeply)");
        goto out;
    }
    wh_review rv;
    const char *why = decode_review(doc, &rv);
    if (why) {
        reply_text(out, 400, "%s", why);
        goto out;
    }
    if (inject)
        wh_inject(cfg, &pp, &rv, &v);
    else
        wh_validate(cfg, &rv, &v);
    encode_review(&rv, &v, out);
    if (inject) {
        if (v.skipped)
            metric_add(inj_metrics.skip, NULL, 1);
        if (v.failed)
            metric_add(inj_metrics.failure, NULL, 1);
        if (out->status == 200)
            metric_add(inj_metrics.success, NULL, 1);
    }
out:
    if (inject) {
        if (out->status != 200)
            metric_add(inj_metrics.failure, NULL, 1);
        metric_observe(inj_metrics.time, NULL, (double)(util_now_ns() - t0) / 1e9);
    }
    wh_verdict_free(&v);
    cJSON_Delete(doc);
}
