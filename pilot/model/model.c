/* model: the config store, the debounce and the publication of snapshots (see model.h).
 *
 * Threads: sources call the sink from their own threads; everything else here runs on the
 * model thread (or on the caller of model_flush when the thread was never started).
 * Locks: `mu` guards the mailbox, the flush counters and the synced count; `snap_mu`
 * guards the published snapshot pointer. They are never held together, nor while calling
 * out to mesh_parse, the builder or push callbacks.
 *
 * The mailbox never drops an event. It keeps the latest state per object, like
 * client-go's DeltaFIFO: an event for an object already queued replaces that entry's
 * content in place (keeping its place in line), so a burst costs memory in the number of
 * distinct objects, not of events. Only when MODEL_MAILBOX_MAX distinct objects wait does
 * a source block (backpressure) until the model thread takes the queue; "synced" markers
 * are never coalesced and keep their place after everything queued before them.
 */
#include "pilot/model/model.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/model/model_internal.h"
#include "pilot/obs/metrics.h"

#define MODEL_MAILBOX_MAX 100000     /* distinct objects queued before sources wait */
#define MODEL_MAILBOX_BUCKETS 65536u /* power of two */
#define MODEL_MAX_CALLBACKS 8

typedef struct mbox_item {
    int type; /* source_event_type, or MBOX_SYNCED */
    cJSON *obj;
    char *origin;
    char *key; /* "group/Kind/namespace/name"; NULL for synced markers */
    uint64_t khash;
    struct mbox_item *next;  /* queue order */
    struct mbox_item *hnext; /* bucket chain of the key index */
} mbox_item;

#define MBOX_SYNCED 100

typedef struct strset {
    char **v;
    size_t n, cap;
} strset;

typedef enum model_trigger {
    TRIGGER_ENDPOINT,
    TRIGGER_SERVICE,
    TRIGGER_CONFIG,
    TRIGGER_NAMESPACE,
    TRIGGER_SECRET,
    TRIGGER_UNKNOWN, /* a JWKS refresh, as istiod's JWT resolver reports it */
    TRIGGER__COUNT
} model_trigger;

struct model {
    char *domain;
    char *root_ns;
    char *cluster_id;
    bool auto_mtls_off;
    int64_t debounce_after_ns;
    int64_t debounce_max_ns;
    int nsources;

    pthread_t thread;
    bool started;

    pthread_mutex_t mu;
    pthread_cond_t cv;       /* mailbox non-empty, flush requested, stop */
    pthread_cond_t flush_cv; /* flush done */
    pthread_cond_t room_cv;  /* the mailbox was taken: a waiting source may queue */
    mbox_item *head, *tail;
    mbox_item **index; /* key -> queued item, MODEL_MAILBOX_BUCKETS chains */
    size_t qlen;       /* distinct entries queued */
    uint64_t coalesced, waits;
    bool stop;
    uint64_t flush_req, flush_done;

    struct {
        model_push_fn fn;
        void *ud;
    } cbs[MODEL_MAX_CALLBACKS];
    int ncbs;

    /* model-thread state */
    store stores[MESH_KIND__COUNT];
    int synced;
    bool dirty; /* changes not yet in a snapshot */
    bool force_full;
    uint32_t kinds_changed;
    int64_t first_ev_ns, last_ev_ns;
    int nevents;
    uint32_t triggers[TRIGGER__COUNT]; /* changes merged into the pending push, by reason */
    strset dirty_hosts, dirty_pods, dirty_ips;
    uint64_t version_seq, shard_seq;
    int64_t last_push_ns;
    mesh_snapshot *current; /* == published; the model's own reference */

    /* Accepted objects with fields we do not implement: {"Kind/ns/name": ["spec...", ...]},
     * written by the model thread, read by /debug/unsupportedz; unsup_mu is a leaf lock. */
    pthread_mutex_t unsup_mu;
    cJSON *unsupported;

    pthread_mutex_t snap_mu;
    mesh_snapshot *published;
    atomic_bool ready;

    /* JWKS from the fetcher (model_set_jwks): jwks_next is guarded by `mu` until the model
     * thread takes it; jwks (what the next snapshot carries) and jwks_changed are the
     * model thread's. */
    mesh_jwks_table *jwks_next;
    bool jwks_next_set;
    mesh_jwks_table *jwks;
    bool jwks_changed;

    /* Mesh config (model_set_mesh): the next values guarded by `mu` until the model thread
     * takes them into root_ns and auto_mtls_off. */
    char *mesh_next_root_ns;
    bool mesh_next_auto_mtls_off;
    mesh_export_defaults mesh_next_export;
    mesh_ingress_settings mesh_next_ingress;
    bool mesh_next_set;
    mesh_export_defaults export_defaults; /* the model thread's; every snapshot a copy */
    mesh_ingress_settings ingress;        /* the model thread's (Ingress conversion) */
    char *ingress_ns;                     /* K8S_INGRESS_NS */
};

static metric *m_inbound, *m_rejects, *m_services, *m_vservices, *m_debounce, *m_build,
    *m_coalesced, *m_waits, *m_triggers;

static void model_metrics_init(void)
{
    static const double debounce_buckets[] = {.01, .1, 1, 3, 5, 10, 20, 30};
    static const double build_buckets[] = {.01, .1, .5, 1, 3, 5};
    m_inbound = metric_counter("pilot_inbound_updates",
                               "Total number of updates received by pilot.", "type");
    m_rejects =
        metric_counter("pilot_total_rejected_configs",
                       "Total number of configs that Pilot had to reject or ignore.", "type");
    m_services = metric_gauge("pilot_services", "Total services known to pilot.", NULL);
    m_vservices =
        metric_gauge("pilot_virt_services", "Total virtual services known to pilot.", NULL);
    m_debounce = metric_histogram("pilot_debounce_time",
                                  "Delay in seconds between the first config enters debouncing "
                                  "and the merged push request is pushed into the push queue.",
                                  NULL, debounce_buckets,
                                  sizeof(debounce_buckets) / sizeof(debounce_buckets[0]));
    m_build = metric_histogram("pilot_pushcontext_init_seconds",
                               "Total time in seconds Pilot takes to init pushContext.", NULL,
                               build_buckets, sizeof(build_buckets) / sizeof(build_buckets[0]));
    m_coalesced = metric_counter("pilot_model_coalesced_events",
                                 "Config events merged into a queued event for the same object "
                                 "(latest state kept).",
                                 NULL);
    m_triggers = metric_counter("pilot_push_triggers",
                                "Total number of times a push was triggered, labeled by reason "
                                "for the push.",
                                "type");
    m_waits = metric_counter("pilot_model_source_waits",
                             "Times a config source waited because the model mailbox held its "
                             "maximum of distinct objects.",
                             NULL);
}

/* ---- small string set (deduplicated at build time) ---------------------------------------- */

static void strset_add(strset *s, const char *v)
{
    if (!v)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xrealloc(s->v, s->cap * sizeof(char *));
    }
    s->v[s->n++] = xstrdup(v);
}

static void strset_clear(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ---- store -------------------------------------------------------------------------------- */

static size_t store_slot(const store *st, const char *key)
{
    return (size_t)(util_hash64(key, strlen(key), 0) % st->nbuckets);
}

store_entry *store_get(const store *st, const char *key)
{
    if (!st->nbuckets)
        return NULL;
    for (store_entry *e = st->buckets[store_slot(st, key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void store_grow(store *st)
{
    size_t nb = st->nbuckets ? st->nbuckets * 2 : 64;
    store_entry **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < st->nbuckets; i++) {
        store_entry *e = st->buckets[i];
        while (e) {
            store_entry *next = e->next;
            size_t slot = (size_t)(util_hash64(e->key, strlen(e->key), 0) % nb);
            e->next = b[slot];
            b[slot] = e;
            e = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = nb;
}

static void entry_free(store_entry *e)
{
    mesh_object_release(e->obj);
    cJSON_Delete(e->configz);
    for (size_t i = 0; i < e->nbuilt; i++)
        snap_service_release(e->built[i]);
    free(e->built);
    free(e->key);
    free(e);
}

/* Inserts e (replacing and freeing an entry with the same key). */
static void store_put(store *st, store_entry *e)
{
    if (st->n >= st->nbuckets)
        store_grow(st);
    store_entry **pp = &st->buckets[store_slot(st, e->key)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, e->key) == 0) {
            store_entry *old = *pp;
            e->next = old->next;
            *pp = e;
            entry_free(old);
            return;
        }
    }
    e->next = NULL;
    *pp = e;
    st->n++;
}

/* Unlinks the entry for key and returns it (caller frees), or NULL. */
static store_entry *store_take(store *st, const char *key)
{
    if (!st->nbuckets)
        return NULL;
    for (store_entry **pp = &st->buckets[store_slot(st, key)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            store_entry *e = *pp;
            *pp = e->next;
            st->n--;
            return e;
        }
    }
    return NULL;
}

static void store_free(store *st)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        store_entry *e = st->buckets[i];
        while (e) {
            store_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(st->buckets);
    memset(st, 0, sizeof(*st));
}

static int cmp_entry(const void *a, const void *b)
{
    const mesh_meta *x = (*(store_entry *const *)a)->obj.u.meta;
    const mesh_meta *y = (*(store_entry *const *)b)->obj.u.meta;
    int c = strcmp(x->ns ? x->ns : "", y->ns ? y->ns : "");
    return c ? c : strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

store_entry **store_sorted(const store *st, size_t *n)
{
    store_entry **v = xmalloc((st->n ? st->n : 1) * sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < st->nbuckets; i++)
        for (store_entry *e = st->buckets[i]; e; e = e->next)
            v[k++] = e;
    qsort(v, k, sizeof(*v), cmp_entry);
    *n = k;
    return v;
}

/* ---- events ------------------------------------------------------------------------------- */

static bool kind_is_istio(mesh_kind k)
{
    return k == MESH_KIND_GATEWAY || k == MESH_KIND_VIRTUAL_SERVICE ||
           k == MESH_KIND_DESTINATION_RULE || k == MESH_KIND_SERVICE_ENTRY ||
           k == MESH_KIND_PEER_AUTHENTICATION || k == MESH_KIND_REQUEST_AUTHENTICATION ||
           k == MESH_KIND_AUTHORIZATION_POLICY || k == MESH_KIND_SIDECAR ||
           k == MESH_KIND_TELEMETRY;
}

static bool kind_is_eds(mesh_kind k)
{
    return k == MESH_KIND_ENDPOINTS || k == MESH_KIND_ENDPOINT_SLICE || k == MESH_KIND_POD;
}

#define EDS_KINDS                                                                                  \
    ((1u << MESH_KIND_ENDPOINTS) | (1u << MESH_KIND_ENDPOINT_SLICE) | (1u << MESH_KIND_POD))

static const char *update_type(mesh_kind k)
{
    if (kind_is_eds(k))
        return "eds";
    if (k == MESH_KIND_SERVICE)
        return "svc";
    return "config";
}

/* istiod's push TriggerReason for a change of kind k (the "type" of pilot_push_triggers). */
static model_trigger trigger_of(mesh_kind k)
{
    switch (k) {
    case MESH_KIND_SERVICE:
    case MESH_KIND_SERVICE_ENTRY:
        return TRIGGER_SERVICE;
    case MESH_KIND_NAMESPACE:
        return TRIGGER_NAMESPACE;
    case MESH_KIND_SECRET:
        return TRIGGER_SECRET;
    default:
        return kind_is_eds(k) ? TRIGGER_ENDPOINT : TRIGGER_CONFIG;
    }
}

static const char *const trigger_names[TRIGGER__COUNT] = {"endpoint",  "service", "config",
                                                          "namespace", "secret",  "unknown"};

static char *make_key(mesh_kind k, const char *ns, const char *name)
{
    if (k == MESH_KIND_NAMESPACE || k == MESH_KIND_INGRESS_CLASS) /* cluster-scoped */
        return xstrdup(name ? name : "");
    return xasprintf("%s/%s", ns && *ns ? ns : "default", name ? name : "");
}

/* Kubernetes-shaped copy of an accepted Istio object for /debug/configz. */
static cJSON *configz_json(mesh_kind k, const cJSON *obj, const mesh_meta *meta)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "kind", mesh_kind_name(k));
    cJSON_AddStringToObject(out, "apiVersion", mesh_kind_api_version(k));
    cJSON *md = cJSON_AddObjectToObject(out, "metadata");
    cJSON_AddStringToObject(md, "name", meta->name ? meta->name : "");
    cJSON_AddStringToObject(md, "namespace", meta->ns ? meta->ns : "");
    if (meta->resource_version)
        cJSON_AddStringToObject(md, "resourceVersion", meta->resource_version);
    const cJSON *omd = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(omd, "labels");
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(omd, "annotations");
    if (cJSON_IsObject(labels))
        cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(labels, true));
    if (cJSON_IsObject(ann))
        cJSON_AddItemToObject(md, "annotations", cJSON_Duplicate(ann, true));
    if (meta->creation_timestamp)
        cJSON_AddStringToObject(md, "creationTimestamp", meta->creation_timestamp);
    else
        cJSON_AddNullToObject(md, "creationTimestamp");
    if (meta->uid)
        cJSON_AddStringToObject(md, "uid", meta->uid);
    cJSON_AddNumberToObject(md, "generation", (double)meta->generation);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    cJSON_AddItemToObject(out, "spec", spec ? cJSON_Duplicate(spec, true) : cJSON_CreateObject());
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
    if (status)
        cJSON_AddItemToObject(out, "status", cJSON_Duplicate(status, true));
    return out;
}

/* Records which endpoints an object touches, for endpoint-only builds. */
static void note_eds_change(model *m, const mesh_object *o)
{
    if (o->kind == MESH_KIND_ENDPOINT_SLICE || o->kind == MESH_KIND_ENDPOINTS) {
        const mesh_endpoint_slice *sl = o->u.slice;
        if (sl->service_name) {
            char *h = model_k8s_hostname(sl->service_name, sl->meta.ns, m->domain);
            strset_add(&m->dirty_hosts, h);
            free(h);
        }
    } else if (o->kind == MESH_KIND_POD) {
        const mesh_pod *p = o->u.pod;
        char *key = make_key(MESH_KIND_POD, p->meta.ns, p->meta.name);
        strset_add(&m->dirty_pods, key);
        free(key);
        for (size_t i = 0; i < p->nips; i++)
            strset_add(&m->dirty_ips, p->ips[i]);
    }
}

static void note_change(model *m, mesh_kind k)
{
    int64_t now = util_now_ns();
    if (!m->dirty)
        m->first_ev_ns = now;
    m->dirty = true;
    m->last_ev_ns = now;
    m->kinds_changed |= 1u << k;
    /* Ingresses reach the proxies as the Gateways and VirtualServices they make (ingress.c):
     * what a push skips or sends is decided by those kinds */
    if (k == MESH_KIND_INGRESS || k == MESH_KIND_INGRESS_CLASS)
        m->kinds_changed |= (1u << MESH_KIND_GATEWAY) | (1u << MESH_KIND_VIRTUAL_SERVICE);
    m->nevents++;
    m->triggers[trigger_of(k)]++;
    metric_add(m_inbound, update_type(k), 1);
}

/* Records what of an accepted Istio object has no effect here, and says so once: when the
 * object is first accepted with such fields, or when the list changes. */
static void note_unsupported(model *m, mesh_kind k, const mesh_meta *meta, const cJSON *obj,
                             const char *origin)
{
    char **paths = NULL;
    size_t n = 0;
    mesh_unsupported_fields(obj, &paths, &n);
    char *id = xasprintf("%s/%s/%s", mesh_kind_name(k), meta->ns ? meta->ns : "", meta->name);
    cJSON *list = NULL;
    if (n > 0) {
        list = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(paths[i]));
    }
    pthread_mutex_lock(&m->unsup_mu);
    cJSON *old = cJSON_GetObjectItemCaseSensitive(m->unsupported, id);
    bool changed = list ? !old || !cJSON_Compare(old, list, true) : old != NULL;
    if (changed) {
        cJSON_DeleteItemFromObjectCaseSensitive(m->unsupported, id);
        if (list)
            cJSON_AddItemToObject(m->unsupported, id, list);
    } else {
        cJSON_Delete(list);
    }
    pthread_mutex_unlock(&m->unsup_mu);
    if (changed && n > 0) {
        strbuf b;
        strbuf_init(&b, 2048);
        for (size_t i = 0; i < n; i++)
            strbuf_appendf(&b, "%s%s", i ? ", " : "", paths[i]);
        LOG_WARN("config", "%s: %s %s/%s: accepted, but these fields have no effect here: %s",
                 origin, mesh_kind_name(k), meta->ns ? meta->ns : "", meta->name,
                 b.data ? b.data : "");
        strbuf_free(&b);
    }
    util_strv_free(paths, n);
    free(id);
}

static void forget_unsupported(model *m, mesh_kind k, const char *ns, const char *name)
{
    char *id = xasprintf("%s/%s/%s", mesh_kind_name(k), ns ? ns : "", name);
    pthread_mutex_lock(&m->unsup_mu);
    cJSON_DeleteItemFromObjectCaseSensitive(m->unsupported, id);
    pthread_mutex_unlock(&m->unsup_mu);
    free(id);
}

cJSON *model_unsupported_json(model *m)
{
    pthread_mutex_lock(&m->unsup_mu);
    cJSON *copy = cJSON_Duplicate(m->unsupported, true);
    pthread_mutex_unlock(&m->unsup_mu);
    return copy;
}

static void apply_upsert(model *m, cJSON *obj, const char *origin)
{
    char err[512] = "";
    mesh_parse_opts opts = {.domain = m->domain, .source = origin};
    mesh_object o;
    int rc = mesh_parse(obj, &opts, &o, err, sizeof(err));
    if (rc == -2)
        return;
    if (rc != 0) {
        mesh_kind k = mesh_kind_of(obj);
        LOG_WARN("config", "%s: %s", origin, err[0] ? err : "invalid object");
        metric_add(m_rejects, k == MESH_KIND_UNKNOWN ? "Unknown" : mesh_kind_name(k), 1);
        return;
    }
    /* Hashing the printed text (~4.6 us for a 1.6 KB Pod) stays on purpose: a tree walk
     * (~1.5 us) made tests/bench/bench_model slower overall. The printer's buffer growth
     * is a large allocation, which makes glibc consolidate the small chunks this event's
     * cJSON_Delete just freed while they are hot; without it they pile up and the next
     * large allocation (inside a snapshot build) consolidates millions of them at once.
     * docs/BENCHMARKS.md "## Model" has the numbers. */
    char *printed = cJSON_PrintUnformatted(obj);
    uint64_t hash = printed ? util_hash64(printed, strlen(printed), 0) : 0;
    free(printed);

    store *st = &m->stores[o.kind];
    char *key = make_key(o.kind, o.u.meta->ns, o.u.meta->name);
    store_entry *old = store_get(st, key);
    if (old && old->hash == hash && hash != 0) {
        /* The same object again (a file rewritten unchanged): nothing to do. */
        free(key);
        mesh_object_release(o);
        return;
    }
    if (old && kind_is_eds(o.kind))
        note_eds_change(m, &old->obj);
    if (kind_is_eds(o.kind))
        note_eds_change(m, &o);

    store_entry *e = xcalloc(1, sizeof(*e));
    e->key = key;
    e->obj = o;
    e->hash = hash;
    if (kind_is_istio(o.kind)) {
        e->configz = configz_json(o.kind, obj, o.u.meta);
        note_unsupported(m, o.kind, o.u.meta, obj, origin);
    }
    store_put(st, e);
    note_change(m, o.kind);
}

static void apply_delete(model *m, const cJSON *obj)
{
    mesh_kind k = mesh_kind_of(obj);
    if (k == MESH_KIND_UNKNOWN || k < 0 || k >= MESH_KIND__COUNT)
        return;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    if (!name)
        return;
    char *key = make_key(k, ns, name);
    store_entry *e = store_take(&m->stores[k], key);
    free(key);
    if (!e)
        return;
    if (kind_is_eds(k))
        note_eds_change(m, &e->obj);
    if (kind_is_istio(k))
        forget_unsupported(m, k, ns, name);
    entry_free(e);
    note_change(m, k);
}

static void apply_item(model *m, mbox_item *it)
{
    if (it->type == MBOX_SYNCED) {
        m->synced++;
        LOG_INFO("model", "source %s synced (%d of %d)", it->origin ? it->origin : "?", m->synced,
                 m->nsources);
        if (m->synced == m->nsources) {
            /* The first snapshot must reflect the whole initial state. */
            if (!m->dirty)
                m->first_ev_ns = util_now_ns();
            m->dirty = true;
            m->force_full = true;
            m->last_ev_ns = util_now_ns();
        }
    } else if (it->type == SOURCE_EV_UPSERT) {
        apply_upsert(m, it->obj, it->origin ? it->origin : "?");
    } else {
        apply_delete(m, it->obj);
    }
}

static void item_free(mbox_item *it)
{
    cJSON_Delete(it->obj);
    free(it->origin);
    free(it->key);
    free(it);
}

/* ---- building and publishing -------------------------------------------------------------- */

static void reset_pending(model *m)
{
    m->dirty = false;
    m->force_full = false;
    m->jwks_changed = false;
    m->kinds_changed = 0;
    m->first_ev_ns = m->last_ev_ns = 0;
    m->nevents = 0;
    memset(m->triggers, 0, sizeof(m->triggers));
    strset_clear(&m->dirty_hosts);
    strset_clear(&m->dirty_pods);
    strset_clear(&m->dirty_ips);
}

/* True when service account `sa` serves some endpoint of shard s. */
static bool shard_has_sa(const mesh_endpoint_shard *s, const char *sa)
{
    for (size_t i = 0; s && i < s->neps; i++)
        if (s->eps[i].service_account && strcmp(s->eps[i].service_account, sa) == 0)
            return true;
    return false;
}

/* Whether the service accounts behind a hostname differ between two shards. Istio makes
 * that a full push, not EDS alone: the identities are baked into clusters (the SPIFFE SANs
 * a client verifies), not only into endpoints. */
static bool shard_identities_changed(const mesh_endpoint_shard *a, const mesh_endpoint_shard *b)
{
    for (size_t i = 0; a && i < a->neps; i++)
        if (a->eps[i].service_account && !shard_has_sa(b, a->eps[i].service_account))
            return true;
    for (size_t i = 0; b && i < b->neps; i++)
        if (b->eps[i].service_account && !shard_has_sa(a, b->eps[i].service_account))
            return true;
    return false;
}

static bool all_synced(const model *m)
{
    return m->synced >= m->nsources;
}

static void build_and_publish(model *m)
{
    int64_t now = util_now_ns();
    bool first = m->current == NULL;
    bool full = first || m->force_full || m->jwks_changed || (m->kinds_changed & ~EDS_KINDS) != 0;
    if (!m->dirty && !first)
        return;

    char **changed = NULL;
    size_t nchanged = 0;
    model_build_in in = {
        .domain = m->domain,
        .cluster_id = m->cluster_id,
        .stores = m->stores,
        .prev = m->current,
        .full = full,
        .kinds_changed = first ? ~0u : m->kinds_changed,
        .dirty_hosts = m->dirty_hosts.v,
        .ndirty_hosts = m->dirty_hosts.n,
        .dirty_pods = m->dirty_pods.v,
        .ndirty_pods = m->dirty_pods.n,
        .dirty_ips = m->dirty_ips.v,
        .ndirty_ips = m->dirty_ips.n,
        .shard_seq = &m->shard_seq,
        .jwks = m->jwks,
        .export_defaults = &m->export_defaults,
        .ingress = &m->ingress,
        .ingress_ns = m->ingress_ns,
    };
    mesh_snapshot *snap = model_build(&in, &changed, &nchanged);
    int64_t built_ns = util_now_ns();
    metric_observe(m_build, NULL, (double)(built_ns - now) / 1e9);

    mesh_push_request req = {
        .full = full,
        .endpoint_hosts = changed,
        .nendpoint_hosts = nchanged,
        /* the first snapshot and a resync replace everything: every kind "changed" (the
         * xDS server skips types by these bits) */
        .kinds_changed = first || m->force_full ? ~0u
                         : m->jwks_changed
                             ? m->kinds_changed | 1u << MESH_KIND_REQUEST_AUTHENTICATION
                             : m->kinds_changed,
        .start_ns = m->first_ev_ns ? m->first_ev_ns : now,
    };
    for (size_t i = 0; !full && i < nchanged; i++) {
        if (shard_identities_changed(mesh_snapshot_shard(m->current, changed[i]),
                                     mesh_snapshot_shard(snap, changed[i]))) {
            LOG_DEBUG("model", "service accounts of %s changed: full push", changed[i]);
            full = req.full = true;
        }
    }
    int nevents = m->nevents;
    for (int i = 0; i < TRIGGER__COUNT; i++)
        if (m->triggers[i])
            metric_add(m_triggers, trigger_names[i], m->triggers[i]);
    int64_t since_change = m->last_ev_ns ? now - m->last_ev_ns : 0;
    int64_t debounce = m->first_ev_ns ? now - m->first_ev_ns : 0;
    reset_pending(m);

    if (!full && nchanged == 0) {
        /* Endpoint objects changed but no shard did (a pod annotation, say): no push. */
        mesh_snapshot_release(snap);
        free(changed);
        return;
    }

    snap->version = ++m->version_seq;
    snap->created_wall_ns = util_wall_ns();
    char ts[32];
    util_format_time(snap->created_wall_ns, ts, sizeof(ts));
    snprintf(snap->version_str, sizeof(snap->version_str), "%s/%llu", ts,
             (unsigned long long)snap->version);
    snap->domain = xstrdup(m->domain);
    snap->root_ns = xstrdup(m->root_ns);
    snap->cluster_id = xstrdup(m->cluster_id);
    snap->auto_mtls = !m->auto_mtls_off;
    mesh_export_defaults_copy(&snap->export_defaults, &m->export_defaults);

    pthread_mutex_lock(&m->snap_mu);
    mesh_snapshot *old = m->published;
    m->published = snap;
    pthread_mutex_unlock(&m->snap_mu);
    m->current = snap;
    mesh_snapshot_release(old);

    metric_set(m_services, NULL, (double)snap->nservices);
    metric_set(m_vservices, NULL, (double)snap->nvss);
    metric_observe(m_debounce, NULL, (double)debounce / 1e9);
    LOG_INFO("model",
             "Push debounce stable[%llu] %d for config %s: %.1f ms since last change, "
             "%.1f ms since last push, full %s",
             (unsigned long long)snap->version, nevents, full ? "full" : "endpoints",
             (double)since_change / 1e6,
             m->last_push_ns ? (double)(now - m->last_push_ns) / 1e6 : 0.0,
             full ? "true" : "false");
    m->last_push_ns = now;

    if (all_synced(m) && !atomic_load(&m->ready)) {
        atomic_store(&m->ready, true);
        LOG_INFO("model", "ready: %zu services, %zu virtual services, version %s", snap->nservices,
                 snap->nvss, snap->version_str);
    }
    for (int i = 0; i < m->ncbs; i++)
        m->cbs[i].fn(m->cbs[i].ud, snap, &req);

    for (size_t i = 0; i < nchanged; i++)
        free(changed[i]);
    free(changed);
}

/* ---- the thread ---------------------------------------------------------------------------- */

/* Takes the whole queue (m->mu held): empties the key index by walking the items taken
 * (every indexed item is in the queue), so the cost is that of the items, and wakes a
 * source waiting for room. */
static mbox_item *mbox_take(model *m)
{
    mbox_item *list = m->head;
    for (mbox_item *it = list; it; it = it->next)
        if (it->key)
            m->index[it->khash & (MODEL_MAILBOX_BUCKETS - 1)] = NULL;
    m->head = m->tail = NULL;
    m->qlen = 0;
    pthread_cond_broadcast(&m->room_cv);
    return list;
}

/* Something other than a source's object changed (the JWKS, the mesh config): counted and
 * debounced as one config event. */
static void mark_changed(model *m)
{
    int64_t now = util_now_ns();
    if (!m->dirty)
        m->first_ev_ns = now;
    m->dirty = true;
    m->last_ev_ns = now;
    m->nevents++;
    m->triggers[TRIGGER_UNKNOWN]++;
}

/* A table the fetcher handed (m->mu not held): the next snapshot carries it, as a config
 * change (debounced like one, pushed in full: the jwt_authn filters inline the keys). */
static void apply_jwks(model *m, mesh_jwks_table *t)
{
    mesh_jwks_table_release(m->jwks);
    m->jwks = t;
    m->jwks_changed = true;
    mark_changed(m);
}

/* Takes the table the fetcher handed, if any (m->mu held). */
static bool take_jwks(model *m, mesh_jwks_table **t)
{
    if (!m->jwks_next_set)
        return false;
    *t = m->jwks_next;
    m->jwks_next = NULL;
    m->jwks_next_set = false;
    return true;
}

void model_set_jwks(model *m, mesh_jwks_table *t)
{
    if (!m) {
        mesh_jwks_table_release(t);
        return;
    }
    pthread_mutex_lock(&m->mu);
    mesh_jwks_table *old = m->jwks_next;
    m->jwks_next = t;
    m->jwks_next_set = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    mesh_jwks_table_release(old);
}

/* A new mesh config (m->mu not held): what the model keeps of it replaced, and the next
 * snapshot pushed in full with every kind changed, debounced like a config change: the
 * generators read mesh settings that shape every type. */
static void apply_mesh(model *m, char *root_ns, bool auto_mtls_off, mesh_export_defaults *exp,
                       mesh_ingress_settings *ing)
{
    mesh_export_defaults_clear(&m->export_defaults);
    m->export_defaults = *exp; /* taken */
    /* the Ingress conversion reads these: rebuild what it makes (the build reuses arrays
     * whose kinds did not change) */
    if (!mesh_ingress_settings_equal(&m->ingress, ing))
        m->kinds_changed |= (1u << MESH_KIND_INGRESS) | (1u << MESH_KIND_GATEWAY) |
                            (1u << MESH_KIND_VIRTUAL_SERVICE);
    mesh_ingress_settings_clear(&m->ingress);
    m->ingress = *ing; /* taken */
    if (strcmp(m->root_ns, root_ns) != 0)
        LOG_INFO("model", "mesh config: rootNamespace %s -> %s", m->root_ns, root_ns);
    free(m->root_ns);
    m->root_ns = root_ns;
    m->auto_mtls_off = auto_mtls_off;
    m->force_full = true;
    mark_changed(m);
}

void model_set_mesh(model *m, const char *root_namespace, bool auto_mtls_off,
                    const mesh_export_defaults *export_defaults,
                    const mesh_ingress_settings *ingress)
{
    mesh_ingress_settings ing;
    mesh_ingress_settings_copy(&ing, ingress);
    char *rn = xstrdup(root_namespace && *root_namespace ? root_namespace : "istio-system");
    mesh_export_defaults exp;
    mesh_export_defaults_copy(&exp, export_defaults);
    pthread_mutex_lock(&m->mu);
    free(m->mesh_next_root_ns);
    m->mesh_next_root_ns = rn;
    m->mesh_next_auto_mtls_off = auto_mtls_off;
    mesh_export_defaults_clear(&m->mesh_next_export);
    m->mesh_next_export = exp;
    mesh_ingress_settings_clear(&m->mesh_next_ingress);
    m->mesh_next_ingress = ing;
    m->mesh_next_set = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void drain_and_apply(model *m, mbox_item *list)
{
    while (list) {
        mbox_item *next = list->next;
        apply_item(m, list);
        item_free(list);
        list = next;
    }
}

/* The mesh config model_set_mesh handed over, applied (m->mu not held on entry). */
static void take_and_apply_mesh(model *m)
{
    pthread_mutex_lock(&m->mu);
    if (!m->mesh_next_set) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    char *rn = m->mesh_next_root_ns;
    bool off = m->mesh_next_auto_mtls_off;
    mesh_export_defaults exp = m->mesh_next_export;
    mesh_ingress_settings ing = m->mesh_next_ingress;
    memset(&m->mesh_next_export, 0, sizeof m->mesh_next_export);
    memset(&m->mesh_next_ingress, 0, sizeof m->mesh_next_ingress);
    m->mesh_next_root_ns = NULL;
    m->mesh_next_set = false;
    pthread_mutex_unlock(&m->mu);
    apply_mesh(m, rn, off, &exp, &ing);
}

static void *model_thread(void *arg)
{
    model *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (m->stop)
            break;
        if (m->head) {
            mbox_item *list = mbox_take(m);
            pthread_mutex_unlock(&m->mu);
            drain_and_apply(m, list);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        mesh_jwks_table *jt;
        if (take_jwks(m, &jt)) {
            pthread_mutex_unlock(&m->mu);
            apply_jwks(m, jt);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        if (m->mesh_next_set) {
            pthread_mutex_unlock(&m->mu);
            take_and_apply_mesh(m);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        if (m->flush_req > m->flush_done) {
            uint64_t target = m->flush_req;
            pthread_mutex_unlock(&m->mu);
            build_and_publish(m);
            pthread_mutex_lock(&m->mu);
            m->flush_done = target;
            pthread_cond_broadcast(&m->flush_cv);
            continue;
        }
        if (m->dirty && all_synced(m)) {
            int64_t now = util_now_ns();
            int64_t deadline = m->last_ev_ns + m->debounce_after_ns;
            if (m->first_ev_ns + m->debounce_max_ns < deadline)
                deadline = m->first_ev_ns + m->debounce_max_ns;
            if (now >= deadline) {
                pthread_mutex_unlock(&m->mu);
                build_and_publish(m);
                pthread_mutex_lock(&m->mu);
                continue;
            }
            struct timespec ts = {.tv_sec = deadline / 1000000000,
                                  .tv_nsec = deadline % 1000000000};
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            continue;
        }
        pthread_cond_wait(&m->cv, &m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- sink ---------------------------------------------------------------------------------- */

/* The identity of an object for coalescing: API group (not version: v1 and v1beta1 of a
 * VirtualService are one object), kind, namespace, name. NULL when obj lacks them (then
 * the event is queued on its own and the parser reports the problem). */
static char *mbox_key(const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *av = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    if (!av || !kind || !name)
        return NULL;
    const char *slash = strchr(av, '/');
    int glen = slash ? (int)(slash - av) : 0; /* core group "" for "v1" */
    return xasprintf("%.*s/%s/%s/%s", glen, av, kind, ns ? ns : "", name);
}

static void enqueue(model *m, int type, cJSON *obj, const char *origin)
{
    char *key = type == MBOX_SYNCED ? NULL : mbox_key(obj);
    uint64_t h = key ? util_hash64(key, strlen(key), 1469598103934665603ULL) : 0;
    pthread_mutex_lock(&m->mu);
    if (key) {
        for (mbox_item *q = m->index[h & (MODEL_MAILBOX_BUCKETS - 1)]; q; q = q->hnext) {
            if (q->khash != h || strcmp(q->key, key) != 0)
                continue;
            /* Latest state wins, in the first event's place in line. */
            cJSON *old = q->obj;
            char *old_origin = q->origin;
            q->type = type;
            q->obj = obj;
            q->origin = xstrdup(origin);
            m->coalesced++;
            pthread_mutex_unlock(&m->mu);
            metric_add(m_coalesced, NULL, 1);
            cJSON_Delete(old);
            free(old_origin);
            free(key);
            return;
        }
    }
    bool waited = false;
    while (m->qlen >= MODEL_MAILBOX_MAX && type != MBOX_SYNCED && !m->stop && m->started) {
        /* Backpressure: never drop. The model thread takes the whole queue at once. */
        if (!waited)
            m->waits++;
        waited = true;
        pthread_cond_wait(&m->room_cv, &m->mu);
    }
    mbox_item *it = xcalloc(1, sizeof(*it));
    it->type = type;
    it->obj = obj;
    it->origin = xstrdup(origin);
    it->key = key;
    it->khash = h;
    if (key) {
        mbox_item **b = &m->index[h & (MODEL_MAILBOX_BUCKETS - 1)];
        it->hnext = *b;
        *b = it;
    }
    if (m->tail)
        m->tail->next = it;
    else
        m->head = it;
    m->tail = it;
    m->qlen++;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (waited)
        metric_add(m_waits, NULL, 1);
}

static void sink_event(void *ud, source_event_type type, cJSON *obj, const char *origin)
{
    if (!obj)
        return;
    enqueue(ud, (int)type, obj, origin);
}

static void sink_synced(void *ud, const char *source_name)
{
    enqueue(ud, MBOX_SYNCED, NULL, source_name);
}

source_sink model_sink(model *m)
{
    source_sink s = {.event = sink_event, .synced = sink_synced, .ud = m};
    return s;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

model *model_new(const model_opts *opts)
{
    if (!opts || !opts->domain || !*opts->domain || opts->debounce_after_ns < 0 ||
        opts->debounce_max_ns < 0 || opts->nsources < 0)
        return NULL;
    model_metrics_init();
    model *m = xcalloc(1, sizeof(*m));
    m->domain = xstrdup(opts->domain);
    m->root_ns = xstrdup(opts->root_namespace && *opts->root_namespace ? opts->root_namespace
                                                                       : "istio-system");
    m->cluster_id =
        xstrdup(opts->cluster_id && *opts->cluster_id ? opts->cluster_id : "Kubernetes");
    mesh_export_defaults_copy(&m->export_defaults, opts->export_defaults);
    mesh_ingress_settings_copy(&m->ingress, opts->ingress);
    m->ingress_ns =
        xstrdup(opts->ingress_ns && *opts->ingress_ns ? opts->ingress_ns : "istio-system");
    m->auto_mtls_off = opts->auto_mtls_off;
    m->debounce_after_ns = opts->debounce_after_ns;
    m->debounce_max_ns = opts->debounce_max_ns;
    m->nsources = opts->nsources;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->snap_mu, NULL);
    pthread_mutex_init(&m->unsup_mu, NULL);
    m->unsupported = cJSON_CreateObject();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* util_now_ns' clock */
    pthread_cond_init(&m->cv, &ca);
    pthread_cond_init(&m->flush_cv, &ca);
    pthread_cond_init(&m->room_cv, &ca);
    pthread_condattr_destroy(&ca);
    m->index = xcalloc(MODEL_MAILBOX_BUCKETS, sizeof(*m->index));
    atomic_init(&m->ready, false);
    if (m->nsources == 0) {
        /* Nothing to wait for: the first (empty) snapshot is built right away. */
        m->dirty = true;
        m->force_full = true;
        m->first_ev_ns = m->last_ev_ns = util_now_ns();
    }
    return m;
}

void model_on_push(model *m, model_push_fn fn, void *ud)
{
    if (!m || !fn || m->ncbs == MODEL_MAX_CALLBACKS)
        return;
    m->cbs[m->ncbs].fn = fn;
    m->cbs[m->ncbs].ud = ud;
    m->ncbs++;
}

int model_start(model *m)
{
    if (!m || m->started)
        return -1;
    if (pthread_create(&m->thread, NULL, model_thread, m) != 0) {
        LOG_ERR("model", "cannot start the model thread: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&m->mu); /* sources read it to decide whether they may wait */
    m->started = true;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

void model_flush(model *m)
{
    if (!m)
        return;
    if (!m->started) {
        /* No thread: the caller plays the model thread. */
        pthread_mutex_lock(&m->mu);
        mbox_item *list = mbox_take(m);
        mesh_jwks_table *jt = NULL;
        bool have_jwks = take_jwks(m, &jt);
        pthread_mutex_unlock(&m->mu);
        drain_and_apply(m, list);
        if (have_jwks)
            apply_jwks(m, jt);
        take_and_apply_mesh(m);
        build_and_publish(m);
        return;
    }
    pthread_mutex_lock(&m->mu);
    uint64_t target = ++m->flush_req;
    pthread_cond_signal(&m->cv);
    while (m->flush_done < target && !m->stop)
        pthread_cond_wait(&m->flush_cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

mesh_snapshot *model_snapshot(model *m)
{
    pthread_mutex_lock(&m->snap_mu);
    mesh_snapshot *s = m->published;
    mesh_snapshot_retain(s);
    pthread_mutex_unlock(&m->snap_mu);
    return s;
}

bool model_ready(const model *m)
{
    return m && atomic_load(&m->ready);
}

void model_stop(model *m)
{
    if (!m || !m->started)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->cv);
    pthread_cond_broadcast(&m->flush_cv);
    pthread_cond_broadcast(&m->room_cv); /* a waiting source queues and returns */
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_mutex_lock(&m->mu);
    m->started = false;
    pthread_mutex_unlock(&m->mu);
}

void model_free(model *m)
{
    if (!m)
        return;
    model_stop(m);
    mbox_item *it = m->head;
    while (it) {
        mbox_item *next = it->next;
        item_free(it);
        it = next;
    }
    for (int k = 0; k < MESH_KIND__COUNT; k++)
        store_free(&m->stores[k]);
    reset_pending(m);
    mesh_snapshot_release(m->published);
    mesh_jwks_table_release(m->jwks_next);
    mesh_jwks_table_release(m->jwks);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->snap_mu);
    pthread_mutex_destroy(&m->unsup_mu);
    cJSON_Delete(m->unsupported);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->flush_cv);
    pthread_cond_destroy(&m->room_cv);
    free(m->index);
    free(m->domain);
    free(m->root_ns);
    free(m->mesh_next_root_ns);
    mesh_export_defaults_clear(&m->mesh_next_export);
    mesh_export_defaults_clear(&m->export_defaults);
    mesh_ingress_settings_clear(&m->mesh_next_ingress);
    mesh_ingress_settings_clear(&m->ingress);
    free(m->ingress_ns);
    free(m->cluster_id);
    free(m);
}
