/* gen: the generator dispatch table and the shared bytes cache.
 *
 * Dispatch: xds_gen_generate looks up (proxy flavour, type URL) in gen_table and gets a
 * gen_type_ops: `list` names the resources the proxy should have (every one for a
 * wildcard subscription, else only the requested names that exist) together with the
 * proxy-specific input that shapes each; `build` makes one protobuf-c message in a
 * per-call arena. Types without a generator (SDS here) answer an empty set.
 *
 * Caching and invalidation (copy for docs/ARCHITECTURE.md):
 * - Every resource is serialized once per distinct input and shared, refcounted, by all
 *   proxies that need it: the cache maps a key to an xds_resource (bytes + hash) and each
 *   caller gets its own reference.
 * - Key = "<tag>|<type URL>|<name>|<version>|<extra>".
 *   tag: "grpc", "sidecar", "gateway" for per-flavour LDS/RDS; "envoy" for Envoy CDS (the
 *   sidecar and gateway outbound clusters are identical); "shared" for EDS (the same
 *   ClusterLoadAssignment serves gRPC and Envoy).
 *   version: the snapshot version for everything but EDS; EDS uses "eds" instead and its
 *   extra carries the endpoint shard's version plus a hash of exactly the endpoint fields
 *   the assignment is built from (address, port, weight, readiness, locality, after the
 *   subset filter), so an EDS entry survives config-only snapshots and an endpoint change
 *   in one service invalidates only that service's entries.
 *   extra: the proxy-specific input: gRPC LDS the FQDN the requested name resolves to in
 *   the proxy's namespace; gateway LDS/RDS the proxy namespace, the set of selected
 *   Gateways ("ns/name", in snapshot order) and the gateway Service; sidecar RDS the proxy namespace (short-name
 *   domains, and the DestinationRules whose consistent hash adds route hash policies), and the proxy labels when a mesh VirtualService uses sourceLabels/
 *   sourceNamespace; sidecar virtualInbound and inbound clusters the proxy's inbound
 *   ports and protocols; outbound clusters the DestinationRule the proxy sees
 *   ("ns/name", which depends on the proxy namespace).
 * - Invalidation is by key, never in place: a new snapshot version simply produces new
 *   keys. When a call brings a snapshot version newer than any seen, entries keyed by a
 *   snapshot version older than the previous one are dropped (pushes still pinned to the
 *   previous snapshot keep hitting). On top, the cache is an LRU bounded to
 *   GEN_CACHE_MAX_ENTRIES entries and GEN_CACHE_MAX_BYTES bytes of resource bytes.
 * - Thread safety: one mutex guards the table and the LRU list; it is never held while
 *   building or serializing. Two threads missing the same key both build; the second to
 *   insert adopts the first one's resource so all callers share one copy.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gen_int.h"
#include "log.h"
#include "util.h"

#define GEN_CACHE_BUCKETS     8192u
#define GEN_CACHE_MAX_ENTRIES 50000u
#define GEN_CACHE_MAX_BYTES   (256u * 1024 * 1024)

typedef struct gen_entry {
    struct gen_entry *hnext;           /* bucket chain */
    struct gen_entry *prev, *next;     /* LRU: head = most recent */
    char *key;
    uint64_t khash;
    uint64_t snap_version;             /* 0 for EDS entries */
    xds_resource *res;
} gen_entry;

struct xds_gen {
    pthread_mutex_t mu;
    gen_entry *buckets[GEN_CACHE_BUCKETS];
    gen_entry *head, *tail;
    size_t n;
    size_t bytes;
    uint64_t newest, previous;         /* snapshot versions seen */
};

static const struct {
    xds_flavour flavour;
    const char *type_url;
    const gen_type_ops *ops;
    const char *tag;
} gen_table[] = {
    { XDS_FLAVOUR_GRPC, XDS_TYPE_LISTENER, &gen_grpc_lds, "grpc" },
    { XDS_FLAVOUR_GRPC, XDS_TYPE_ROUTE, &gen_grpc_rds, "grpc" },
    { XDS_FLAVOUR_GRPC, XDS_TYPE_CLUSTER, &gen_envoy_cds_outbound, "grpc" },
    { XDS_FLAVOUR_GRPC, XDS_TYPE_ENDPOINT, &gen_eds, "shared" },
    { XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_LISTENER, &gen_gw_lds, "gateway" },
    { XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_ROUTE, &gen_gw_rds, "gateway" },
    { XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_CLUSTER, &gen_envoy_cds_outbound, "envoy" },
    { XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_ENDPOINT, &gen_eds, "shared" },
    { XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_SECRET, &gen_gw_sds, "gateway" },
    { XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_LISTENER, &gen_sc_lds, "sidecar" },
    { XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_ROUTE, &gen_sc_rds, "sidecar" },
    { XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_CLUSTER, &gen_sc_cds, "envoy" },
    { XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_ENDPOINT, &gen_eds, "shared" },
};

xds_gen *xds_gen_new(void)
{
    xds_gen *g = xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

static void gen_entry_free(gen_entry *e)
{
    xds_resource_release(e->res);
    free(e->key);
    free(e);
}

void xds_gen_free(xds_gen *g)
{
    if (!g)
        return;
    gen_entry *e = g->head;
    while (e) {
        gen_entry *next = e->next;
        gen_entry_free(e);
        e = next;
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

bool xds_type_is_wildcard(const xds_proxy *p, const char *type_url)
{
    if (!p || !type_url || p->flavour == XDS_FLAVOUR_GRPC)
        return false;
    return strcmp(type_url, XDS_TYPE_LISTENER) == 0 || strcmp(type_url, XDS_TYPE_CLUSTER) == 0;
}

const char *xds_cluster_hostname(const char *cluster_name)
{
    if (!cluster_name || (!util_has_prefix(cluster_name, "outbound|") &&
                          !util_has_prefix(cluster_name, "inbound|")))
        return NULL;
    /* direction|port|subset|host: the host follows the third bar */
    const char *p = cluster_name;
    for (int i = 0; i < 3; i++) {
        p = strchr(p, '|');
        if (!p)
            return NULL;
        p++;
    }
    return *p ? p : NULL;
}

/* ---- the cache (callers hold g->mu) ------------------------------------------------------- */

static void gen_lru_unlink(xds_gen *g, gen_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        g->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        g->tail = e->prev;
    e->prev = e->next = NULL;
}

static void gen_lru_front(xds_gen *g, gen_entry *e)
{
    e->next = g->head;
    e->prev = NULL;
    if (g->head)
        g->head->prev = e;
    g->head = e;
    if (!g->tail)
        g->tail = e;
}

static void gen_remove(xds_gen *g, gen_entry *e)
{
    gen_entry **pp = &g->buckets[e->khash & (GEN_CACHE_BUCKETS - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    gen_lru_unlink(g, e);
    g->n--;
    g->bytes -= e->res->len;
    gen_entry_free(e);
}

static gen_entry *gen_find(xds_gen *g, const char *key, uint64_t kh)
{
    for (gen_entry *e = g->buckets[kh & (GEN_CACHE_BUCKETS - 1)]; e; e = e->hnext)
        if (e->khash == kh && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* A newer snapshot: forget entries built from snapshots older than the previous one. */
static void gen_note_version(xds_gen *g, uint64_t v)
{
    if (v <= g->newest)
        return;
    g->previous = g->newest;
    g->newest = v;
    gen_entry *e = g->head;
    while (e) {
        gen_entry *next = e->next;
        if (e->snap_version && e->snap_version < g->previous)
            gen_remove(g, e);
        e = next;
    }
}

/* Returns a new reference to the cached resource for key, or NULL. */
static xds_resource *gen_cache_get(xds_gen *g, const char *key, uint64_t kh)
{
    xds_resource *r = NULL;
    pthread_mutex_lock(&g->mu);
    gen_entry *e = gen_find(g, key, kh);
    if (e) {
        gen_lru_unlink(g, e);
        gen_lru_front(g, e);
        r = e->res;
        xds_resource_retain(r);
    }
    pthread_mutex_unlock(&g->mu);
    return r;
}

/* Inserts r (the caller keeps its reference); returns the resource callers should use
 * (an earlier insert by another thread wins), with a new reference. */
static xds_resource *gen_cache_put(xds_gen *g, const char *key, uint64_t kh, uint64_t snap_version,
                                   xds_resource *r)
{
    xds_resource *use;
    pthread_mutex_lock(&g->mu);
    gen_entry *e = gen_find(g, key, kh);
    if (e) {
        use = e->res;
    } else {
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->khash = kh;
        e->snap_version = snap_version;
        e->res = r;
        xds_resource_retain(r);
        size_t b = kh & (GEN_CACHE_BUCKETS - 1);
        e->hnext = g->buckets[b];
        g->buckets[b] = e;
        gen_lru_front(g, e);
        g->n++;
        g->bytes += r->len;
        while (g->tail && g->tail != e &&
               (g->n > GEN_CACHE_MAX_ENTRIES || g->bytes > GEN_CACHE_MAX_BYTES))
            gen_remove(g, g->tail);
        use = r;
    }
    xds_resource_retain(use);
    pthread_mutex_unlock(&g->mu);
    return use;
}

static int gen_cmp_res(const void *a, const void *b)
{
    const xds_resource *x = *(const xds_resource *const *)a;
    const xds_resource *y = *(const xds_resource *const *)b;
    return strcmp(x->name, y->name);
}

int xds_gen_generate(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s,
                     const char *type_url, const char *const *names, size_t nnames,
                     xds_resource_set *out)
{
    int rc = -1;
    gen_arena a = { 0 };
    out->items = NULL;
    out->n = 0;
    if (!g || !p || !s || !type_url)
        goto out;
    const gen_type_ops *ops = NULL;
    const char *tag = NULL;
    for (size_t i = 0; i < sizeof gen_table / sizeof gen_table[0]; i++) {
        if (gen_table[i].flavour == p->flavour && strcmp(gen_table[i].type_url, type_url) == 0) {
            ops = gen_table[i].ops;
            tag = gen_table[i].tag;
        }
    }
    if (!ops) {
        rc = 0; /* no generator for this type: nothing to send */
        goto out;
    }
    pthread_mutex_lock(&g->mu);
    gen_note_version(g, s->version);
    pthread_mutex_unlock(&g->mu);

    gen_ctx c = { .a = &a, .p = p, .s = s, .grpc = p->flavour == XDS_FLAVOUR_GRPC };
    gen_items items = { 0 };
    ops->list(&c, names, nnames, &items);

    out->items = xcalloc(items.n ? items.n : 1, sizeof *out->items);
    for (size_t i = 0; i < items.n; i++) {
        const gen_item *it = &items.v[i];
        char *key = it->eds ? ga_printf(&a, "%s|%s|%s|eds|%s", tag, type_url, it->name,
                                        it->extra ? it->extra : "")
                            : ga_printf(&a, "%s|%s|%s|%llu|%s", tag, type_url, it->name,
                                        (unsigned long long)s->version, it->extra ? it->extra : "");
        uint64_t kh = util_hash64(key, strlen(key), 1469598103934665603ULL);
        xds_resource *r = gen_cache_get(g, key, kh);
        if (!r) {
            ProtobufCMessage *m = ops->build(&c, it);
            if (!m)
                continue; /* turned out not to exist */
            xds_resource *built = xds_resource_new(type_url, it->name, m);
            if (!built) {
                LOG_ERR("ads", "cannot serialize %s %s", type_url, it->name);
                goto out;
            }
            r = gen_cache_put(g, key, kh, it->eds ? 0 : s->version, built);
            xds_resource_release(built);
        }
        out->items[out->n++] = r;
    }
    qsort(out->items, out->n, sizeof *out->items, gen_cmp_res);
    /* a name asked for twice is answered once */
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (w && strcmp(out->items[w - 1]->name, out->items[i]->name) == 0)
            xds_resource_release(out->items[i]);
        else
            out->items[w++] = out->items[i];
    }
    out->n = w;
    rc = 0;
out:
    if (rc != 0)
        xds_resource_set_free(out);
    gen_arena_free(&a);
    return rc;
}
