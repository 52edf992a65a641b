/* k8s_source: every reflector on one libcurl multi handle, driven by one thread, feeding
 * a source_sink.
 *
 * Thread "k8s" (started by k8s_source_start) does API discovery, then loops: start the
 * reflectors whose wait is over, let curl move bytes, hand finished transfers back to
 * their reflector, poll until the next deadline. While an Istio group (networking.istio.io,
 * security.istio.io) is not served (CRDs installed after istiod), discovery is repeated
 * every rediscover_ms and the group's reflectors start when it appears. It calls the sink
 * from this thread. The
 * only lock is s->mu, a leaf lock for the stats read by /debug/k8sz; it is never held
 * while calling the sink or curl.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/k8s_internal.h"
#include "pilot/base/log.h"
#include "pilot/obs/debug.h"
#include "pilot/obs/metrics.h"

struct k8s_source {
    k8s_config cfg; /* strings owned below */
    char *kubeconfig, *context, *sa_dir;
    k8s_client *client;
    source_sink sink;
    CURLM *multi;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu;
    k8s_reflector **refl;
    size_t nrefl;
    size_t nsynced;
    bool discovered;
    bool sync_reported;     /* sink.synced was called (once per source, ever) */
    uint32_t istio_missing; /* bit i: istio_groups[i] not served at the last discovery */
    int64_t rediscover_at_ns;
    uint64_t rng;
    /* k8s_config.extra_configmaps: their field selectors, NULL = none */
    char *extra_cm_sel[K8S_EXTRA_CONFIGMAPS];
    k8s_resdef extra_cm[K8S_EXTRA_CONFIGMAPS];
};

static metric *m_reg_events, *m_cfg_events;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void)
{
    m_reg_events =
        metric_counter("pilot_k8s_reg_events", "Events from k8s registry.", "type,event");
    m_cfg_events = metric_counter("pilot_k8s_cfg_events", "Events from k8s config.", "type,event");
}

/* What we read. Versions are settled by discovery (k8s_source_start's thread). */
static const k8s_resdef res_namespaces = {"", "Namespace", "namespaces", "Namespaces", false};
static const k8s_resdef res_services = {"", "Service", "services", "Services", false};
static const k8s_resdef res_pods = {"", "Pod", "pods", "Pods", false};
static const k8s_resdef res_slices = {"discovery.k8s.io", "EndpointSlice", "endpointslices",
                                      "EndpointSlice", false};
static const k8s_resdef res_endpoints = {"", "Endpoints", "endpoints", "Endpoints", false};
/* Kubernetes Ingresses and their classes: istiod's ingress controller (pilot/model/ingress.c) */
static const k8s_resdef res_ingresses = {"networking.k8s.io", "Ingress", "ingresses", "Ingress",
                                         false};
static const k8s_resdef res_ingress_classes = {"networking.k8s.io", "IngressClass",
                                               "ingressclasses", "IngressClass", false};
/* The CA's root ConfigMaps (k8s_config.ca_root_configmaps), only those. */
static const k8s_resdef res_root_cms = {
    "",           "ConfigMap", "configmaps",
    "ConfigMaps", false,       "fieldSelector=metadata.name%3Distio-ca-root-cert"};
/* Gateway credentials (SDS kubernetes://<name>), filtered like istiod's credentials
 * controller (SecretsFieldSelector): every Secret but service-account tokens and Helm
 * release records, the two kinds that are numerous, large and never credentials. */
static const k8s_resdef res_secrets = {"",
                                       "Secret",
                                       "secrets",
                                       "Secrets",
                                       false,
                                       "fieldSelector=type%21%3Dhelm.sh%2Frelease.v1%2C"
                                       "type%21%3Dkubernetes.io%2Fservice-account-token"};
static const k8s_resdef res_networking[] = {
    {"networking.istio.io", "Gateway", "gateways", "Gateway", true},
    {"networking.istio.io", "VirtualService", "virtualservices", "VirtualService", true},
    {"networking.istio.io", "DestinationRule", "destinationrules", "DestinationRule", true},
    {"networking.istio.io", "ServiceEntry", "serviceentries", "ServiceEntry", true},
    {"networking.istio.io", "Sidecar", "sidecars", "Sidecar", true},
};
static const k8s_resdef res_security[] = {
    {"security.istio.io", "PeerAuthentication", "peerauthentications", "PeerAuthentication", true},
    {"security.istio.io", "RequestAuthentication", "requestauthentications",
     "RequestAuthentication", true},
    {"security.istio.io", "AuthorizationPolicy", "authorizationpolicies", "AuthorizationPolicy",
     true},
};

static const k8s_resdef res_telemetry[] = {
    {"telemetry.istio.io", "Telemetry", "telemetries", "Telemetry", true},
};

/* The Istio groups, each read in the newest version served (the CRDs serve every version
 * with one schema, like Istio's) and each waited for on its own: a cluster may have
 * networking.istio.io's CRDs before security.istio.io's. */
typedef struct istio_group {
    const char *name;
    const char *versions[4]; /* newest first, NULL-terminated */
    const k8s_resdef *res;
    size_t nres;
} istio_group;

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
static const istio_group istio_groups[] = {
    {"networking.istio.io",
     {"v1", "v1beta1", "v1alpha3", NULL},
     res_networking,
     NELEM(res_networking)},
    {"security.istio.io", {"v1", "v1beta1", NULL}, res_security, NELEM(res_security)},
    {"telemetry.istio.io", {"v1", "v1alpha1", NULL}, res_telemetry, NELEM(res_telemetry)},
};
_Static_assert(NELEM(istio_groups) <= 32, "k8s_source.istio_missing is a 32-bit mask");

/* ---- internals for reflector.c ---------------------------------------------------------- */

CURLM *k8s_source_multi(struct k8s_source *s)
{
    return s->multi;
}
k8s_client *k8s_source_client(struct k8s_source *s)
{
    return s->client;
}
const k8s_config *k8s_source_config(struct k8s_source *s)
{
    return &s->cfg;
}
void k8s_source_lock(struct k8s_source *s)
{
    pthread_mutex_lock(&s->mu);
}
void k8s_source_unlock(struct k8s_source *s)
{
    pthread_mutex_unlock(&s->mu);
}
uint64_t *k8s_source_rng(struct k8s_source *s)
{
    return &s->rng;
}

void k8s_source_emit(struct k8s_source *s, k8s_reflector *r, source_event_type t, cJSON *obj,
                     int metric_event)
{
    metric_add(r->def.config ? m_cfg_events : m_reg_events, r->label[metric_event], 1);
    s->sink.event(s->sink.ud, t, obj, "kubernetes");
}

void k8s_source_reflector_synced(struct k8s_source *s)
{
    bool all;

    pthread_mutex_lock(&s->mu);
    s->nsynced++;
    all = s->nsynced == s->nrefl && !s->sync_reported;
    if (all)
        s->sync_reported = true;
    pthread_mutex_unlock(&s->mu);
    /* Reflectors added later (CRDs installed after start) do not report again: the model
     * counts one synced call per source. */
    if (all) {
        LOG_INFO("k8s", "every initial list is in (%zu resources)", s->nrefl);
        if (s->sink.synced != NULL)
            s->sink.synced(s->sink.ud, "kubernetes");
    }
}

/* ---- debug ------------------------------------------------------------------------------ */

cJSON *k8s_source_stats(k8s_source *s)
{
    cJSON *arr = cJSON_CreateArray();

    if (s == NULL)
        return arr;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nrefl; i++)
        cJSON_AddItemToArray(arr, k8s_reflector_stats(s->refl[i]));
    pthread_mutex_unlock(&s->mu);
    return arr;
}

bool k8s_source_synced(k8s_source *s)
{
    bool ok;
    pthread_mutex_lock(&s->mu);
    ok = s->discovered && s->nsynced == s->nrefl;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void k8sz(void *ud, const dbg_request *req, dbg_response *resp)
{
    cJSON *j = k8s_source_stats(ud);
    dbg_send_json(req, resp, j);
    cJSON_Delete(j);
}

/* ---- discovery -------------------------------------------------------------------------- */

/* Sleeps up to ms, waking early on stop. Returns true when stopping. */
static bool nap(k8s_source *s, int64_t ms)
{
    int64_t until = util_now_ns() + ms * 1000000LL;
    while (!atomic_load(&s->stop)) {
        int64_t left = until - util_now_ns();
        if (left <= 0)
            return false;
        struct timespec ts = {0, (long)(left < 50000000 ? left : 50000000)};
        nanosleep(&ts, NULL);
    }
    return true;
}

static bool group_has(const cJSON *groups, const char *group, const char *version)
{
    const cJSON *g, *v;
    cJSON_ArrayForEach(g, groups)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(g, "name");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, group) != 0)
            continue;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(g, "versions"))
        {
            const cJSON *ver = cJSON_GetObjectItemCaseSensitive(v, "version");
            if (cJSON_IsString(ver) && strcmp(ver->valuestring, version) == 0)
                return true;
        }
    }
    return false;
}

static void add_refl(k8s_source *s, const k8s_resdef *def, const char *version)
{
    k8s_reflector *r = k8s_reflector_new(s, def, version);
    pthread_mutex_lock(&s->mu);
    s->refl = xrealloc(s->refl, (s->nrefl + 1) * sizeof(*s->refl));
    s->refl[s->nrefl++] = r;
    pthread_mutex_unlock(&s->mu);
}

/* One GET /apis. Returns the group list document (caller deletes) or NULL with err set. */
static cJSON *fetch_groups(k8s_source *s, char *err, size_t errlen)
{
    strbuf b;
    cJSON *doc = NULL;
    long status = 0;

    strbuf_init(&b, 16u << 20);
    if (k8s_request(s->client, "GET", "/apis", NULL, &status, &b, err, errlen) != 0)
        goto out;
    if (status != 200) {
        snprintf(err, errlen, "GET /apis: HTTP %ld", status);
        goto out;
    }
    if ((doc = cJSON_ParseWithLength(b.data ? b.data : "", b.len)) == NULL)
        snprintf(err, errlen, "GET /apis: the reply is not JSON");
out:
    strbuf_free(&b);
    return doc;
}

/* Adds the reflectors of Istio group g when it is served (newest version first). Returns
 * false when the group is not served. */
static bool add_istio(k8s_source *s, const istio_group *g, const cJSON *groups)
{
    const char *ver = NULL;

    for (size_t i = 0; g->versions[i] != NULL && ver == NULL; i++)
        if (group_has(groups, g->name, g->versions[i]))
            ver = g->versions[i];
    if (ver == NULL)
        return false;
    if (ver != g->versions[0])
        LOG_INFO("k8s", "%s/%s is not served: using %s", g->name, g->versions[0], ver);
    for (size_t i = 0; i < g->nres; i++)
        add_refl(s, &g->res[i], ver);
    return true;
}

/* GET /apis until it answers; then create the reflectors for what is served. Returns
 * false when stopped first. */
static bool discover(k8s_source *s)
{
    k8s_backoff bo;
    cJSON *doc = NULL;
    const cJSON *groups;
    bool ok = false;

    k8s_backoff_init(&bo, s->cfg.backoff_initial_ms, s->cfg.backoff_max_ms, s->rng);
    for (;;) {
        char err[256] = "";
        if ((doc = fetch_groups(s, err, sizeof(err))) != NULL)
            break;
        int64_t d = k8s_backoff_next(&bo);
        LOG_WARN("k8s", "API discovery: %s; retrying in %lld ms", err, (long long)d);
        if (nap(s, d))
            goto out;
    }
    groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    add_refl(s, &res_namespaces, "v1");
    add_refl(s, &res_services, "v1");
    add_refl(s, &res_pods, "v1");
    add_refl(s, &res_secrets, "v1");
    if (s->cfg.ca_root_configmaps)
        add_refl(s, &res_root_cms, "v1");
    for (size_t i = 0; i < K8S_EXTRA_CONFIGMAPS; i++)
        if (s->extra_cm_sel[i])
            add_refl(s, &s->extra_cm[i], "v1");
    if (group_has(groups, "discovery.k8s.io", "v1")) {
        add_refl(s, &res_slices, "v1");
    } else {
        LOG_WARN("k8s", "discovery.k8s.io/v1 is not served: reading core v1 Endpoints");
        add_refl(s, &res_endpoints, "v1");
    }
    if (group_has(groups, "networking.k8s.io", "v1")) {
        add_refl(s, &res_ingresses, "v1");
        add_refl(s, &res_ingress_classes, "v1");
    }
    for (size_t i = 0; i < NELEM(istio_groups); i++) {
        if (add_istio(s, &istio_groups[i], groups))
            continue;
        LOG_WARN("k8s",
                 "%s is not served (CRDs not installed?): none of its config yet; "
                 "checking again every %d ms",
                 istio_groups[i].name, s->cfg.rediscover_ms);
        s->istio_missing |= 1u << i;
    }
    if (s->istio_missing != 0)
        s->rediscover_at_ns = util_now_ns() + (int64_t)s->cfg.rediscover_ms * 1000000LL;
    pthread_mutex_lock(&s->mu);
    s->discovered = true;
    pthread_mutex_unlock(&s->mu);
    ok = true;
out:
    cJSON_Delete(doc);
    return ok;
}

/* The timer for groups that were missing. A failed or negative answer waits for the next
 * period, quietly (the first discovery already said what is missing). The request is
 * synchronous on this thread, bounded by the client's timeout; watches keep their bytes in
 * the kernel meanwhile. */
static void rediscover(k8s_source *s)
{
    char err[256] = "";
    cJSON *doc = fetch_groups(s, err, sizeof(err));

    s->rediscover_at_ns = util_now_ns() + (int64_t)s->cfg.rediscover_ms * 1000000LL;
    if (doc == NULL) {
        LOG_DEBUG("k8s", "API re-discovery: %s", err);
        return;
    }
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    for (size_t i = 0; i < NELEM(istio_groups); i++) {
        if (!(s->istio_missing & (1u << i)) || !add_istio(s, &istio_groups[i], groups))
            continue;
        LOG_INFO("k8s", "%s is now served: reading its config", istio_groups[i].name);
        s->istio_missing &= ~(1u << i);
    }
    cJSON_Delete(doc);
}

/* ---- the loop --------------------------------------------------------------------------- */

static void *run(void *arg)
{
    k8s_source *s = arg;

    if (!discover(s))
        return NULL;
    while (!atomic_load(&s->stop)) {
        int64_t now = util_now_ns(), next = now + 1000000000LL;
        int running = 0, left = 0;
        CURLMsg *msg;

        if (s->istio_missing != 0) {
            if (s->rediscover_at_ns <= now)
                rediscover(s);
            if (s->istio_missing != 0 && s->rediscover_at_ns < next)
                next = s->rediscover_at_ns;
        }

        for (size_t i = 0; i < s->nrefl; i++) {
            k8s_reflector *r = s->refl[i];
            if (r->state != K8S_R_WAIT)
                continue;
            if (r->next_at_ns <= now)
                k8s_reflector_begin(r);
            else if (r->next_at_ns < next)
                next = r->next_at_ns;
        }
        curl_multi_perform(s->multi, &running);
        while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
            k8s_reflector *r = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            if (r != NULL)
                k8s_reflector_done(r, msg->data.result);
        }
        /* Reflectors rescheduled with no delay start on the next turn at once. */
        for (size_t i = 0; i < s->nrefl; i++)
            if (s->refl[i]->state == K8S_R_WAIT && s->refl[i]->next_at_ns < next)
                next = s->refl[i]->next_at_ns;
        int64_t wait_ms = (next - util_now_ns()) / 1000000LL;
        if (wait_ms > 0)
            curl_multi_poll(s->multi, NULL, 0, (int)(wait_ms > 1000 ? 1000 : wait_ms), NULL);
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

k8s_source *k8s_source_new(const k8s_config *cfg, source_sink sink)
{
    k8s_source *s;
    char err[512];

    if (sink.event == NULL) {
        LOG_ERR("k8s", "k8s_source_new: the sink has no event callback");
        return NULL;
    }
    s = xcalloc(1, sizeof(*s));
    if (cfg != NULL)
        s->cfg = *cfg;
    s->kubeconfig = s->cfg.kubeconfig ? xstrdup(s->cfg.kubeconfig) : NULL;
    s->context = s->cfg.context ? xstrdup(s->cfg.context) : NULL;
    s->sa_dir = s->cfg.sa_dir ? xstrdup(s->cfg.sa_dir) : NULL;
    s->cfg.kubeconfig = s->kubeconfig;
    s->cfg.context = s->context;
    s->cfg.sa_dir = s->sa_dir;
    for (size_t i = 0; i < K8S_EXTRA_CONFIGMAPS; i++) {
        /* by name and namespace: the API server filters, we list one object */
        static const char dns[] = "abcdefghijklmnopqrstuvwxyz0123456789-.";
        const char *ns = s->cfg.extra_configmaps[i].ns, *name = s->cfg.extra_configmaps[i].name;
        if (!ns || !name)
            continue;
        if (*ns && *name && strspn(ns, dns) == strlen(ns) && strspn(name, dns) == strlen(name)) {
            s->extra_cm_sel[i] = xasprintf(
                "fieldSelector=metadata.name%%3D%s%%2Cmetadata.namespace%%3D%s", name, ns);
            s->extra_cm[i] = (k8s_resdef){"",           "ConfigMap", "configmaps",
                                          "ConfigMaps", false,       s->extra_cm_sel[i]};
        } else {
            LOG_WARN("k8s", "ConfigMap %s/%s: not a valid name, not watched", ns, name);
        }
    }
    memset(s->cfg.extra_configmaps, 0, sizeof s->cfg.extra_configmaps); /* borrowed: not kept */
    if (s->cfg.rediscover_ms <= 0) {
        /* PILOT_K8S_REDISCOVERY_INTERVAL (a Go duration) lets tests shorten it. */
        const char *ev = getenv("PILOT_K8S_REDISCOVERY_INTERVAL");
        int64_t ns = 0;
        if (ev && *ev &&
            (util_parse_duration(ev, &ns) != 0 || ns < 1000000LL || ns > 3600LL * 1000000000LL)) {
            LOG_WARN("k8s",
                     "PILOT_K8S_REDISCOVERY_INTERVAL=%.64s is not a duration in "
                     "[1ms, 1h]: using 30s",
                     ev);
            ns = 0;
        }
        s->cfg.rediscover_ms = ns > 0 ? (int)(ns / 1000000LL) : 30000;
    }
    s->sink = sink;
    s->rng = (uint64_t)util_now_ns() ^ (uint64_t)(uintptr_t)s;
    atomic_init(&s->stop, false);
    pthread_mutex_init(&s->mu, NULL);
    s->client = k8s_client_new(&s->cfg, err, sizeof(err));
    if (s->client == NULL) {
        LOG_ERR("k8s", "Kubernetes configuration: %s", err);
        goto fail;
    }
    s->multi = curl_multi_init();
    if (s->multi == NULL) {
        LOG_ERR("k8s", "curl_multi_init failed");
        goto fail;
    }
    pthread_once(&metrics_once, metrics_init);
    dbg_register("/debug/k8sz",
                 "Kubernetes reflectors: resource, resourceVersion, events, "
                 "relists, last event time",
                 k8sz, s);
    LOG_INFO("k8s", "API server %s", k8s_client_server(s->client));
    return s;
fail:
    k8s_client_free(s->client);
    pthread_mutex_destroy(&s->mu);
    free(s->kubeconfig);
    free(s->context);
    free(s->sa_dir);
    for (size_t i = 0; i < K8S_EXTRA_CONFIGMAPS; i++)
        free(s->extra_cm_sel[i]);
    free(s);
    return NULL;
}

int k8s_source_start(k8s_source *s)
{
    if (s == NULL || s->started)
        return -1;
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        LOG_ERR("k8s", "cannot start the k8s thread");
        return -1;
    }
    s->started = true;
    return 0;
}

void k8s_source_free(k8s_source *s)
{
    if (s == NULL)
        return;
    /* Off the debug table first: dbg_unregister returns once no /debug/k8sz call still
     * reads s, and none starts afterwards (pilot/obs/debug.h, ownership). */
    dbg_unregister("/debug/k8sz", s);
    if (s->started) {
        atomic_store(&s->stop, true);
        curl_multi_wakeup(s->multi);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; i < s->nrefl; i++)
        k8s_reflector_free(s->refl[i]);
    free(s->refl);
    curl_multi_cleanup(s->multi);
    k8s_client_free(s->client);
    pthread_mutex_destroy(&s->mu);
    free(s->kubeconfig);
    free(s->context);
    free(s->sa_dir);
    for (size_t i = 0; i < K8S_EXTRA_CONFIGMAPS; i++)
        free(s->extra_cm_sel[i]);
    free(s);
}
