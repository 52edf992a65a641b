/* ca_kube: see ca_kube.h. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "certs/ca_kube.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

#define CA_KUBE_LOG "ca"
/* A PEM set is a few kilobytes; anything far larger in the Secret is refused. */
#define CA_KUBE_PEM_MAX (256 * 1024)
#define CA_KUBE_RETRIES 4
#define CA_KUBE_BACKOFF_MIN_MS 500
#define CA_KUBE_BACKOFF_MAX_MS 30000

/* ---- base64 (Secret data) --------------------------------------------------------------- */

static char *b64_encode(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

/* Returns a NUL-terminated heap string, or NULL when v is not base64 or too large. */
static char *b64_decode(const char *v)
{
    size_t n = strlen(v);
    if (n % 4 != 0 || n > CA_KUBE_PEM_MAX)
        return NULL;
    char *out = xmalloc(n / 4 * 3 + 1);
    int len = n ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)v, (int)n) : 0;
    if (len < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as data bytes. */
    for (size_t i = n; i > 0 && v[i - 1] == '='; i--)
        len--;
    out[len] = '\0';
    if (strlen(out) != (size_t)len) { /* a NUL inside: not PEM */
        OPENSSL_cleanse(out, (size_t)len);
        free(out);
        return NULL;
    }
    return out;
}

/* ---- istio-ca-secret -------------------------------------------------------------------- */

static const struct {
    const char *key;
    size_t off;
} secret_keys[] = {
    {"ca-cert.pem", offsetof(ca_pem_set, ca_cert)},
    {"ca-key.pem", offsetof(ca_pem_set, ca_key)},
    {"root-cert.pem", offsetof(ca_pem_set, root_cert)},
    {"cert-chain.pem", offsetof(ca_pem_set, cert_chain)},
    {"key.pem", offsetof(ca_pem_set, key_pem)},
};
#define NSECRET_KEYS (sizeof(secret_keys) / sizeof(secret_keys[0]))

static char **pem_slot(ca_pem_set *s, size_t i)
{
    return (char **)((char *)s + secret_keys[i].off);
}

static int secret_to_pems(const cJSON *obj, ca_pem_set *out, char *err, size_t errlen)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < NSECRET_KEYS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, secret_keys[i].key);
        const char *s = cJSON_GetStringValue(v);
        char *dec = s ? b64_decode(s) : xstrdup("");
        if (dec == NULL) {
            snprintf(err, errlen, "Secret %s: data.%s is not base64 PEM text", CA_KUBE_SECRET,
                     secret_keys[i].key);
            ca_pem_set_free(out);
            return CA_EINVAL;
        }
        *pem_slot(out, i) = dec;
    }
    return CA_OK;
}

/* Sets data.<key> = base64(pem) for every key of the set on obj. */
static void pems_to_data(cJSON *obj, ca_pem_set *s)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "data");
    cJSON *data = cJSON_AddObjectToObject(obj, "data");
    for (size_t i = 0; i < NSECRET_KEYS; i++) {
        const char *pem = *pem_slot(s, i);
        char *b = b64_encode(pem ? pem : "");
        cJSON_AddStringToObject(data, secret_keys[i].key, b);
        OPENSSL_cleanse(b, strlen(b));
        free(b);
    }
}

/* Wipes the key material a Secret object carries before it is freed. */
static void secret_delete(cJSON *obj)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    cJSON *k = cJSON_GetObjectItemCaseSensitive(data, "ca-key.pem");
    if (cJSON_IsString(k) && k->valuestring)
        OPENSSL_cleanse(k->valuestring, strlen(k->valuestring));
    cJSON_Delete(obj);
}

static cJSON *secret_new(const char *ns, ca_pem_set *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Secret");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", CA_KUBE_SECRET);
    cJSON_AddStringToObject(md, "namespace", ns);
    cJSON_AddStringToObject(o, "type", CA_KUBE_SECRET_TYPE);
    pems_to_data(o, s);
    return o;
}

static int ca_from_secret(const cJSON *obj, const ca_opts *base, ca **out, char *err, size_t errlen)
{
    ca_pem_set set;
    int rc = secret_to_pems(obj, &set, err, errlen);
    if (rc != CA_OK)
        return rc;
    ca_opts o = *base;
    o.import = &set;
    o.state_dir = NULL;
    rc = ca_new(&o, out, err, errlen);
    ca_pem_set_free(&set);
    return rc;
}

int ca_kube_new_ca(k8s_client *kc, const char *ns, const ca_opts *base, ca **out, char *err,
                   size_t errlen)
{
    int rc = CA_EINTERNAL;
    cJSON *obj = NULL, *mine = NULL;
    ca *c = NULL;
    ca_pem_set set = {0};
    ca_opts o = *base;
    o.import = NULL;
    o.state_dir = NULL;
    char kerr[256];
    *out = NULL;

    int krc = k8s_get(kc, K8S_SECRET, ns, CA_KUBE_SECRET, &obj, kerr, sizeof(kerr));
    if (krc == 0) {
        rc = ca_from_secret(obj, &o, &c, err, errlen);
        if (rc == CA_OK && ca_get_source(c) != CA_SOURCE_PLUGIN)
            LOG_INFO(CA_KUBE_LOG, "using the root in Secret %s/%s", ns, CA_KUBE_SECRET);
        goto out;
    }
    if (krc != K8S_ENOTFOUND) {
        rc = CA_EUNAVAILABLE;
        snprintf(err, errlen, "reading Secret %s/%s: %s", ns, CA_KUBE_SECRET, kerr);
        goto out;
    }
    /* No Secret: a plug-in CA, or a new root to store. */
    if ((rc = ca_new(&o, &c, err, errlen)) != CA_OK || ca_get_source(c) == CA_SOURCE_PLUGIN)
        goto out;
    if ((rc = ca_export(c, &set)) != CA_OK) {
        snprintf(err, errlen, "cannot export the new root");
        goto out;
    }
    mine = secret_new(ns, &set);
    krc = k8s_create(kc, K8S_SECRET, ns, mine, NULL, kerr, sizeof(kerr));
    if (krc == 0) {
        LOG_INFO(CA_KUBE_LOG, "stored the new self-signed root in Secret %s/%s", ns,
                 CA_KUBE_SECRET);
        rc = CA_OK;
        goto out;
    }
    if (krc != K8S_EEXISTS) {
        rc = CA_EUNAVAILABLE;
        snprintf(err, errlen, "creating Secret %s/%s: %s", ns, CA_KUBE_SECRET, kerr);
        goto out;
    }
    /* Another replica won the race: its root is the mesh's root, ours is dropped. */
    LOG_INFO(CA_KUBE_LOG, "Secret %s/%s appeared meanwhile (409): using its root", ns,
             CA_KUBE_SECRET);
    ca_free(c);
    c = NULL;
    if ((krc = k8s_get(kc, K8S_SECRET, ns, CA_KUBE_SECRET, &obj, kerr, sizeof(kerr))) != 0) {
        rc = CA_EUNAVAILABLE;
        snprintf(err, errlen, "reading Secret %s/%s after 409: %s", ns, CA_KUBE_SECRET, kerr);
        goto out;
    }
    rc = ca_from_secret(obj, &o, &c, err, errlen);
out:
    if (obj)
        secret_delete(obj);
    if (mine)
        secret_delete(mine);
    ca_pem_set_free(&set);
    if (rc != CA_OK) {
        ca_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

int ca_kube_store_root(k8s_client *kc, const char *ns, ca *c, char *err, size_t errlen)
{
    int rc = CA_EINTERNAL;
    ca_pem_set set = {0};
    char kerr[256] = "";
    if (ca_export(c, &set) != CA_OK) {
        snprintf(err, errlen, "cannot export the root");
        return CA_EINTERNAL;
    }
    for (int i = 0; i < CA_KUBE_RETRIES; i++) {
        cJSON *cur = NULL;
        int krc = k8s_get(kc, K8S_SECRET, ns, CA_KUBE_SECRET, &cur, kerr, sizeof(kerr));
        if (krc == K8S_ENOTFOUND) {
            cJSON *o = secret_new(ns, &set);
            krc = k8s_create(kc, K8S_SECRET, ns, o, NULL, kerr, sizeof(kerr));
            secret_delete(o);
            if (krc == K8S_EEXISTS)
                continue;
        } else if (krc == 0) {
            pems_to_data(cur, &set);
            krc = k8s_update(kc, K8S_SECRET, ns, cur, NULL, kerr, sizeof(kerr));
            secret_delete(cur);
            if (krc == K8S_ECONFLICT || krc == K8S_ENOTFOUND)
                continue;
        }
        if (krc == 0)
            rc = CA_OK;
        break;
    }
    if (rc != CA_OK)
        snprintf(err, errlen, "writing Secret %s/%s: %s", ns, CA_KUBE_SECRET,
                 kerr[0] ? kerr : "conflicts persisted");
    ca_pem_set_free(&set);
    return rc;
}

/* ---- root distribution ------------------------------------------------------------------ */

struct ca_kube_dist {
    k8s_client *kc;
    ca *ca;
    source_sink inner;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    bool stop;
    char **nss; /* namespaces that should hold the ConfigMap */
    size_t nns;
    char **dirty; /* namespaces whose ConfigMap must be checked, unique */
    size_t ndirty;
    bool all_dirty;
    char *root_pem;
    int64_t retry_at_ns; /* after a failed write: wait until then */
    int64_t backoff_ms;
    /* Leader election (ca_kube_dist_guard): with a guard, only the leader writes, and only
     * after the guard's fence said yes; a follower keeps the namespace set and nothing else. */
    bool (*guard)(void *ud);
    void *guard_ud;
    bool leading;
};

/* Linear sets: a cluster has tens to a few thousand namespaces and events are rare. */
static ssize_t set_find(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return (ssize_t)i;
    return -1;
}

static void set_add(char ***v, size_t *n, const char *s)
{
    if (set_find(*v, *n, s) >= 0)
        return;
    *v = xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = xstrdup(s);
}

static void set_del(char **v, size_t *n, const char *s)
{
    ssize_t i = set_find(v, *n, s);
    if (i < 0)
        return;
    free(v[i]);
    v[i] = v[--*n];
}

/* Empties the set, keeping its array; returns the new count (0). */
static size_t set_clear(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    return 0;
}

static void set_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool ns_excluded(const char *ns)
{
    return strcmp(ns, "kube-public") == 0 || strcmp(ns, "kube-node-lease") == 0;
}

static const char *json_str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_GetStringValue(v);
}

/* The ConfigMap is what we would write. */
static bool cm_matches(const cJSON *cm, const char *root)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(cm, "metadata");
    const char *lbl = json_str(md, "labels", "istio.io/config");
    const char *data = json_str(cm, "data", "root-cert.pem");
    return lbl && strcmp(lbl, "true") == 0 && data && root && strcmp(data, root) == 0;
}

static void cm_apply(cJSON *cm, const char *ns, const char *root)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(cm, "metadata");
    if (!cJSON_IsObject(md)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cm, "metadata");
        md = cJSON_AddObjectToObject(cm, "metadata");
        cJSON_AddStringToObject(md, "name", CA_KUBE_ROOT_CONFIGMAP);
        cJSON_AddStringToObject(md, "namespace", ns);
    }
    cJSON *lbl = cJSON_GetObjectItemCaseSensitive(md, "labels");
    if (!cJSON_IsObject(lbl)) {
        cJSON_DeleteItemFromObjectCaseSensitive(md, "labels");
        lbl = cJSON_AddObjectToObject(md, "labels");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(lbl, "istio.io/config");
    cJSON_AddStringToObject(lbl, "istio.io/config", "true");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
    if (!cJSON_IsObject(data)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cm, "data");
        data = cJSON_AddObjectToObject(cm, "data");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(data, "root-cert.pem");
    cJSON_AddStringToObject(data, "root-cert.pem", root);
}

/* Makes the namespace's ConfigMap right: create, or update what differs; 409s retried. */
static int dist_ensure(ca_kube_dist *d, const char *ns, const char *root)
{
    char err[256] = "";
    int krc = K8S_ECONFLICT;
    for (int i = 0; i < CA_KUBE_RETRIES; i++) {
        cJSON *cur = NULL;
        krc = k8s_get(d->kc, K8S_CONFIGMAP, ns, CA_KUBE_ROOT_CONFIGMAP, &cur, err, sizeof(err));
        if (krc == K8S_ENOTFOUND) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "apiVersion", "v1");
            cJSON_AddStringToObject(o, "kind", "ConfigMap");
            cm_apply(o, ns, root);
            krc = k8s_create(d->kc, K8S_CONFIGMAP, ns, o, NULL, err, sizeof(err));
            cJSON_Delete(o);
            if (krc == 0)
                LOG_INFO(CA_KUBE_LOG, "created ConfigMap %s/%s", ns, CA_KUBE_ROOT_CONFIGMAP);
            if (krc == K8S_EEXISTS)
                continue;
            break;
        }
        if (krc != 0)
            break;
        if (cm_matches(cur, root)) {
            cJSON_Delete(cur);
            break;
        }
        cm_apply(cur, ns, root);
        krc = k8s_update(d->kc, K8S_CONFIGMAP, ns, cur, NULL, err, sizeof(err));
        cJSON_Delete(cur);
        if (krc == 0)
            LOG_INFO(CA_KUBE_LOG, "updated ConfigMap %s/%s", ns, CA_KUBE_ROOT_CONFIGMAP);
        if (krc != K8S_ECONFLICT && krc != K8S_ENOTFOUND)
            break;
    }
    if (krc != 0)
        LOG_WARN(CA_KUBE_LOG, "ConfigMap %s/%s: %s; will retry", ns, CA_KUBE_ROOT_CONFIGMAP,
                 err[0] ? err : "conflicts persisted");
    return krc;
}

static void *dist_main(void *arg)
{
    ca_kube_dist *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        if (d->all_dirty) {
            d->all_dirty = false;
            for (size_t i = 0; i < d->nns; i++)
                set_add(&d->dirty, &d->ndirty, d->nss[i]);
        }
        if (d->guard && !d->leading)
            d->ndirty = set_clear(d->dirty, d->ndirty); /* the leader does it; all when we lead */
        int64_t now = util_now_ns();
        if (d->ndirty == 0 || now < d->retry_at_ns) {
            /* Nothing to do (or backing off): sleep until told, or until the retry. */
            int64_t wake_ns = d->ndirty ? d->retry_at_ns : now + 10000000000LL;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t rel = wake_ns - now;
            ts.tv_sec += rel / 1000000000LL;
            ts.tv_nsec += rel % 1000000000LL;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
            continue;
        }
        char *ns = d->dirty[0];
        d->dirty[0] = d->dirty[--d->ndirty];
        char *root = xstrdup(d->root_pem);
        bool (*guard)(void *) = d->guard;
        void *gud = d->guard_ud;
        pthread_mutex_unlock(&d->mu);
        int krc = guard && !guard(gud) ? -1 : dist_ensure(d, ns, root);
        pthread_mutex_lock(&d->mu);
        if (krc != 0 && set_find(d->nss, d->nns, ns) >= 0) {
            set_add(&d->dirty, &d->ndirty, ns);
            d->retry_at_ns = util_now_ns() + d->backoff_ms * 1000000LL;
            d->backoff_ms = d->backoff_ms * 2 > CA_KUBE_BACKOFF_MAX_MS ? CA_KUBE_BACKOFF_MAX_MS
                                                                       : d->backoff_ms * 2;
        } else if (krc == 0) {
            d->backoff_ms = CA_KUBE_BACKOFF_MIN_MS;
        }
        free(ns);
        free(root);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

ca_kube_dist *ca_kube_dist_new(k8s_client *kc, ca *c)
{
    ca_kube_dist *d = xcalloc(1, sizeof(*d));
    d->kc = kc;
    d->ca = c;
    d->root_pem = ca_root_pem(c);
    d->backoff_ms = CA_KUBE_BACKOFF_MIN_MS;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    return d;
}

int ca_kube_dist_start(ca_kube_dist *d)
{
    if (pthread_create(&d->thread, NULL, dist_main, d) != 0) {
        LOG_ERR(CA_KUBE_LOG, "cannot start the root distribution thread");
        return -1;
    }
    d->started = true;
    return 0;
}

void ca_kube_dist_stop(ca_kube_dist *d)
{
    if (d == NULL || !d->started)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    d->started = false;
}

void ca_kube_dist_free(ca_kube_dist *d)
{
    if (d == NULL)
        return;
    ca_kube_dist_stop(d);
    set_free(d->nss, d->nns);
    set_free(d->dirty, d->ndirty);
    free(d->root_pem);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void ca_kube_dist_guard(ca_kube_dist *d, bool (*guard)(void *ud), void *ud)
{
    pthread_mutex_lock(&d->mu);
    d->guard = guard;
    d->guard_ud = ud;
    pthread_mutex_unlock(&d->mu);
}

void ca_kube_dist_leading(ca_kube_dist *d, bool leading)
{
    pthread_mutex_lock(&d->mu);
    d->leading = leading;
    if (leading) {
        /* a new leader checks every namespace: the last one may have died mid-way */
        d->all_dirty = true;
        d->retry_at_ns = 0;
    }
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void ca_kube_dist_root_changed(ca_kube_dist *d)
{
    char *root = ca_root_pem(d->ca);
    pthread_mutex_lock(&d->mu);
    free(d->root_pem);
    d->root_pem = root;
    d->all_dirty = true;
    d->retry_at_ns = 0;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* Runs on the k8s source thread: records names only. */
static void dist_event(void *ud, source_event_type type, cJSON *obj, const char *origin)
{
    ca_kube_dist *d = ud;
    const char *kind = json_str(obj, "kind", NULL);
    const char *name = json_str(obj, "metadata", "name");
    bool is_ns = kind && strcmp(kind, "Namespace") == 0 && name;
    bool is_cm = kind && strcmp(kind, "ConfigMap") == 0;

    if (is_ns && !ns_excluded(name)) {
        const char *phase = json_str(obj, "status", "phase");
        bool gone = type == SOURCE_EV_DELETE || (phase && strcmp(phase, "Terminating") == 0);
        pthread_mutex_lock(&d->mu);
        if (gone) {
            set_del(d->nss, &d->nns, name);
            set_del(d->dirty, &d->ndirty, name);
        } else if (set_find(d->nss, d->nns, name) < 0) {
            set_add(&d->nss, &d->nns, name);
            set_add(&d->dirty, &d->ndirty, name);
            pthread_cond_signal(&d->cv);
        }
        pthread_mutex_unlock(&d->mu);
    }
    if (is_cm) {
        const char *ns = json_str(obj, "metadata", "namespace");
        if (ns && name && strcmp(name, CA_KUBE_ROOT_CONFIGMAP) == 0) {
            pthread_mutex_lock(&d->mu);
            /* Our own writes come back as events too: only a difference makes work. */
            if (set_find(d->nss, d->nns, ns) >= 0 &&
                (type == SOURCE_EV_DELETE || !cm_matches(obj, d->root_pem))) {
                set_add(&d->dirty, &d->ndirty, ns);
                pthread_cond_signal(&d->cv);
            }
            pthread_mutex_unlock(&d->mu);
        }
        cJSON_Delete(obj);
        return;
    }
    d->inner.event(d->inner.ud, type, obj, origin);
}

static void dist_synced(void *ud, const char *source_name)
{
    ca_kube_dist *d = ud;
    d->inner.synced(d->inner.ud, source_name);
}

source_sink ca_kube_dist_sink(ca_kube_dist *d, source_sink inner)
{
    d->inner = inner;
    return (source_sink){.event = dist_event, .synced = dist_synced, .ud = d};
}
