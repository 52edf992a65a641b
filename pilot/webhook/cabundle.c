/* cabundle: keeps the caBundle of our webhook configurations (MutatingWebhookConfiguration
 * istio-sidecar-injector, ValidatingWebhookConfiguration istio-validator-istio-system, or
 * their -<revision> names) equal to our root, as istiod's webhook patcher does: the API
 * server only calls a webhook whose certificate chains to the caBundle it holds.
 *
 * Every replica runs it and it is idempotent: each pass GETs both configurations and PUTs
 * only those whose caBundle differs, with the resourceVersion it read, so replicas racing
 * on the same root meet a 409 and find nothing to do on the next pass. A configuration
 * that does not exist (not installed) is left alone. Passes run at start, every
 * WH_CABUNDLE_PERIOD_S (someone may re-apply the manifest and blank the bundle) and when
 * wh_cabundle_kick says the root changed.
 *
 * Threads: one of its own; the mutex guards only stop/kick. k8s_request is thread-safe.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/k8s.h"
#include "pilot/base/log.h"
#include "pilot/webhook/cabundle.h"
#include "pilot/webhook/webhook_internal.h"

#define WH_CABUNDLE_PERIOD_S 10
#define WH_MAX_CONFIG_BYTES (4u << 20)

struct wh_cabundle {
    k8s_client *kc;
    char *mutating;   /* istio-sidecar-injector[-rev] */
    char *validating; /* istio-validator[-rev]-<ns> */
    wh_root_fn root;
    void *root_ud;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kicked;
    char last_err[512]; /* logged once per distinct error */
};

/* One configuration: 1 patched, 0 already current or absent, <0 K8S_E*. */
static int sync_one(k8s_client *kc, const char *resource, const char *name, const char *b64,
                    char *err, size_t errlen)
{
    char path[512];
    long status = 0;
    strbuf resp;
    cJSON *doc = NULL;
    char *body = NULL;
    int rc = K8S_EFAIL;

    strbuf_init(&resp, WH_MAX_CONFIG_BYTES);
    snprintf(path, sizeof path, "/apis/admissionregistration.k8s.io/v1/%s/%s", resource, name);
    if (k8s_request(kc, "GET", path, NULL, &status, &resp, err, errlen) != 0)
        goto out;
    if (status == 404) {
        rc = 0;
        goto out;
    }
    if (status != 200) {
        snprintf(err, errlen, "GET %s: HTTP %ld", path, status);
        rc = status == 403 || status == 401 ? K8S_EDENIED : K8S_EFAIL;
        goto out;
    }
    doc = cJSON_ParseWithLength(resp.data ? resp.data : "", resp.len);
    cJSON *hooks = cJSON_GetObjectItemCaseSensitive(doc, "webhooks");
    if (!cJSON_IsArray(hooks)) {
        snprintf(err, errlen, "GET %s: no webhooks", path);
        goto out;
    }
    bool changed = false;
    cJSON *w;
    cJSON_ArrayForEach(w, hooks)
    {
        cJSON *cc = cJSON_GetObjectItemCaseSensitive(w, "clientConfig");
        if (!cJSON_IsObject(cc))
            continue;
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(cc, "caBundle");
        if (cJSON_IsString(cur) && strcmp(cur->valuestring, b64) == 0)
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(cc, "caBundle");
        cJSON_AddStringToObject(cc, "caBundle", b64);
        changed = true;
    }
    if (!changed) {
        rc = 0;
        goto out;
    }
    body = cJSON_PrintUnformatted(doc); /* carries the resourceVersion it was read at */
    strbuf_reset(&resp);
    if (k8s_request(kc, "PUT", path, body, &status, &resp, err, errlen) != 0)
        goto out;
    if (status == 409) {
        snprintf(err, errlen, "PUT %s: conflict (another writer), retried next pass", path);
        rc = K8S_ECONFLICT;
        goto out;
    }
    if (status != 200) {
        snprintf(err, errlen, "PUT %s: HTTP %ld", path, status);
        rc = status == 403 || status == 401 ? K8S_EDENIED : K8S_EFAIL;
        goto out;
    }
    rc = 1;
out:
    free(body);
    cJSON_Delete(doc);
    strbuf_free(&resp);
    return rc;
}

int wh_cabundle_sync(k8s_client *kc, const char *mutating, const char *validating,
                     const char *root_pem, int *patched, char *err, size_t errlen)
{
    int rc = 0, r;
    *patched = 0;
    char *b64 = wh_base64(root_pem, strlen(root_pem));
    if ((r = sync_one(kc, "mutatingwebhookconfigurations", mutating, b64, err, errlen)) < 0)
        rc = r;
    else
        *patched += r;
    if (rc == 0) {
        if ((r = sync_one(kc, "validatingwebhookconfigurations", validating, b64, err, errlen)) < 0)
            rc = r;
        else
            *patched += r;
    }
    free(b64);
    return rc;
}

static void pass(wh_cabundle *cb)
{
    char err[512] = "";
    int patched = 0;
    char *root = cb->root(cb->root_ud);
    if (!root)
        return;
    int rc =
        wh_cabundle_sync(cb->kc, cb->mutating, cb->validating, root, &patched, err, sizeof err);
    free(root);
    if (rc != 0 && rc != K8S_ECONFLICT) {
        if (strcmp(err, cb->last_err) != 0)
            LOG_WARN(WH_LOG, "webhook caBundle: %s", err);
        snprintf(cb->last_err, sizeof cb->last_err, "%s", err);
        return;
    }
    cb->last_err[0] = '\0';
    if (patched)
        LOG_INFO(WH_LOG, "patched the caBundle of %d webhook configuration(s) (%s, %s)", patched,
                 cb->mutating, cb->validating);
}

static void *cabundle_main(void *arg)
{
    wh_cabundle *cb = arg;
    pthread_mutex_lock(&cb->mu);
    while (!cb->stop) {
        pthread_mutex_unlock(&cb->mu);
        pass(cb);
        pthread_mutex_lock(&cb->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += WH_CABUNDLE_PERIOD_S;
        while (!cb->stop && !cb->kicked)
            if (pthread_cond_timedwait(&cb->cv, &cb->mu, &ts) != 0)
                break;
        cb->kicked = false;
    }
    pthread_mutex_unlock(&cb->mu);
    return NULL;
}

wh_cabundle *wh_cabundle_start(k8s_client *kc, const char *revision, const char *istio_ns,
                               wh_root_fn root, void *root_ud)
{
    wh_cabundle *cb = xcalloc(1, sizeof(*cb));
    bool rev = revision && *revision && strcmp(revision, "default") != 0;
    cb->kc = kc;
    cb->root = root;
    cb->root_ud = root_ud;
    cb->mutating =
        rev ? xasprintf("istio-sidecar-injector-%s", revision) : xstrdup("istio-sidecar-injector");
    cb->validating = rev ? xasprintf("istio-validator-%s-%s", revision, istio_ns)
                         : xasprintf("istio-validator-%s", istio_ns);
    pthread_mutex_init(&cb->mu, NULL);
    pthread_cond_init(&cb->cv, NULL);
    if (pthread_create(&cb->thread, NULL, cabundle_main, cb) != 0) {
        LOG_ERR(WH_LOG, "cannot start the webhook caBundle thread");
        wh_cabundle_stop(cb);
        return NULL;
    }
    cb->started = true;
    return cb;
}

void wh_cabundle_kick(wh_cabundle *cb)
{
    if (!cb)
        return;
    pthread_mutex_lock(&cb->mu);
    cb->kicked = true;
    pthread_cond_signal(&cb->cv);
    pthread_mutex_unlock(&cb->mu);
}

void wh_cabundle_stop(wh_cabundle *cb)
{
    if (!cb)
        return;
    if (cb->started) {
        pthread_mutex_lock(&cb->mu);
        cb->stop = true;
        pthread_cond_signal(&cb->cv);
        pthread_mutex_unlock(&cb->mu);
        pthread_join(cb->thread, NULL);
    }
    pthread_cond_destroy(&cb->cv);
    pthread_mutex_destroy(&cb->mu);
    free(cb->mutating);
    free(cb->validating);
    free(cb);
}
