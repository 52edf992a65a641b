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
 *   the proxy's namespace (server listeners: "<ip>:<port>|mtls" or "|plaintext", the
 *   decision taken with the DestinationRule the proxy's namespace sees); gRPC CDS, like
 *   Envoy's, the DestinationRule (an ISTIO_MUTUAL cluster's SANs come from the service's
 *   endpoints, which only change with the snapshot version already in the key); gateway LDS/RDS the
 * proxy namespace, the set of selected Gateways ("ns/name", in snapshot order) and the gateway
 * Service; sidecar RDS the proxy namespace (short-name domains, and the DestinationRules whose
 * consistent hash adds route hash policies; with the workloadSelector rules its labels match,
 * gateway RDS too), and the proxy labels when a mesh VirtualService uses
 * sourceLabels/ sourceNamespace; sidecar virtualInbound and inbound clusters the proxy's inbound
 *   ports and protocols (inbound clusters also the services on the port, named in their
 *   metadata); outbound clusters the DestinationRule the proxy sees
 *   ("ns/name", or every rule merged into it; it depends on the proxy namespace, and on its
 *   labels for workloadSelector rules).
 * - Invalidation is by key, never in place: a new snapshot version simply produces new
 *   keys. When a call brings a snapshot version newer than any seen, entries keyed by a
 *   snapshot version older than the previous one are dropped (pushes still pinned to the
 *   previous snapshot keep hitting). On top, the cache is an LRU bounded to
 *   GEN_CACHE_MAX_ENTRIES entries and GEN_CACHE_MAX_BYTES bytes of resource bytes.
 * - Thread safety: one mutex guards the table and the LRU list; it is never held while
 *   building or serializing. Two threads missing the same key both build; the second to
 *   insert adopts the first one's resource so all callers share one copy.
 *
 * The set memo (per push, per equivalence class of proxies):
 * - Most proxies of a push are alike: the same flavour, namespace and subscriptions. For
 *   them a whole xds_resource_set is computed once per (snapshot version, flavour, type,
 *   class) and copied (references only) to every proxy of the class, so the per-proxy
 *   cost of a push is a hash of its class inputs plus one verified lookup.
 * - The class inputs are the only proxy fields a generator can read: generators see the
 *   proxy as a gen_view (gen_internal.h) made from the class key, never the xds_proxy:
 *     always:  flavour and type (the gen_table row), the proxy namespace (gRPC FQDN
 *              completion, DestinationRule visibility for clusters, subsets, hash
 *              policies and gRPC server-listener mTLS, sidecar short-name domains, gateway
 *              Service choice), and the subscribed names in request order (or "wildcard");
 *     labels:  gateway LDS and RDS always (Gateway selectors, the gateway Service's
 *              selector); LDS and RDS of every flavour when the snapshot has an HTTP,
 *              TCP or TLS match with sourceLabels (which routes apply depends on them);
 *              LDS when a security policy has a selector (which policies apply);
 *              CDS, EDS and RDS when a DestinationRule of the proxy's namespace has a
 *              workloadSelector (which rule the proxy sees: policies, subsets, hash
 *              policies);
 *     IPs:     sidecar LDS and CDS (the inbound ports come from endpoints carrying one
 *              of the proxy's IPs);
 *     Sidecar: the Sidecar resource that scopes a sidecar or gRPC proxy (LDS, RDS, CDS,
 *              EDS), picked by mesh_snapshot_sidecar_for before the class is formed, so
 *              proxies under one Sidecar share whatever their labels; by address, which
 *              within one snapshot version is the object's identity. Resources whose bytes
 *              follow the scope (sidecar RDS, TCP listeners, virtualOutbound, gRPC RDS)
 *              name it, or what it decides, in their cache key.
 *     tracing: Envoy LDS whenever tracing can be on (enableTracing, a default tracing
 *              provider, a Telemetry with tracing): the values of istiod's per-proxy span
 *              tags (canonical revision and service labels, MESH_ID, CLUSTER_ID) and the
 *              Node's cluster, defaults applied, so replicas of a deployment share;
 *              listener keys name them with the namespace and Sidecar scope (telemetry.c).
 *   A generator that read labels or IPs where the class leaves them out would see them
 *   empty, and the golden and memo tests would show it.
 * - An entry stores copies of those inputs and a hit compares them all (not just the
 *   hash), so a memo hit can never hand one proxy another class's resources.
 * - Set identity: each entry carries an id (xds_resource_set.id). A new entry whose
 *   (name, hash) list equals the same class's entry at an older snapshot version takes
 *   that entry's id, so a stream that already sent it skips the type in O(1).
 * - Lifetime: entries of snapshot versions older than the previous one are dropped with
 *   the bytes cache's; at most GEN_MEMO_MAX entries (beyond, sets are simply not memoized).
 *
 * istiod's conflict gauges (pilot_conflict_inbound_listener,
 * pilot_conflict_outbound_listener_tcp_over_current_tcp):
 * - istiod records a conflict in the PushContext of the last full push, once per key (the
 *   proxy ID inbound, the listener name outbound: PushContext.AddMetric), where its
 *   listener builders resolve it, and the gauge is the number of keys. Here the generators
 *   note the same conflicts where they resolve them (gen_conflict_note; inbound per proxy
 *   from the inbound signature, so replicas sharing a memoized set are each counted); a full
 *   push of snapshot version v (xds_gen_conflicts_reset) starts a new, zeroed count that the
 *   regenerations from v on fill; notes from older snapshots are dropped. istiod publishes a
 *   push's count when the next full push starts (or within 10 s); ours follows as notes come.
 * - Keys are kept as 64-bit hashes, at most GEN_CONFLICT_MAX per kind (beyond, the gauge
 *   stops growing). cf.mu is a leaf lock, never taken with g->mu held; generation threads
 *   (every xDS shard) and the model thread (the reset) take it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"
#include "xds/gen/gen_internal.h"

#define GEN_CACHE_BUCKETS 8192u
#define GEN_CACHE_MAX_ENTRIES 50000u
#define GEN_CACHE_MAX_BYTES (256u * 1024 * 1024)
#define GEN_MEMO_BUCKETS 4096u
#define GEN_MEMO_MAX 16384u

/* One memoized set: the class inputs it was built for (copies) and the set. */
typedef struct gen_memo {
    struct gen_memo *hnext;
    uint64_t chash;   /* of the class inputs, without the version */
    uint64_t version; /* snapshot version */
    size_t ti;        /* gen_table row: flavour and type */
    char *ns;
    bool use_labels;
    mesh_labels labels;
    char **ips; /* NULL when IPs do not shape the type */
    size_t nips;
    bool wildcard;
    char **names;
    size_t nnames;
    const void *sidecar;  /* identity only, never dereferenced (the object may be gone) */
    char **trace;         /* GEN_TRACE_N values, NULL when tracing does not shape the type */
    xds_resource_set set; /* items referenced, id set */
} gen_memo;

/* The class inputs of one call (borrowed pointers). */
typedef struct gen_class {
    size_t ti;
    const char *ns;
    const mesh_labels *labels; /* NULL when labels do not shape the type */
    char *const *ips;          /* NULL when IPs do not shape the type */
    size_t nips;
    const char *const *names; /* NULL = wildcard */
    size_t nnames;
    const mesh_sidecar *sidecar; /* the Sidecar scoping the proxy, NULL for none */
    const char *const *trace;    /* GEN_TRACE_N span tag values, NULL when not an input */
    uint64_t hash;
} gen_class;

typedef struct gen_entry {
    struct gen_entry *hnext;       /* bucket chain */
    struct gen_entry *prev, *next; /* LRU: head = most recent */
    char *key;
    uint64_t khash;
    uint64_t snap_version; /* 0 for EDS entries */
    xds_resource *res;
} gen_entry;

/* The mesh config settings of a generator. Mesh config changes while running, so the
 * setters build a new one and swap it in (under mu), and each xds_gen_generate pins the
 * one it started with: a call never sees half of a change, and never a freed one. The
 * caches need no flush: a mesh config change comes with a new snapshot version (see
 * model_set_mesh), and the bytes cache and the memo are keyed by version. */
typedef struct gen_mesh {
    atomic_int refs;
    char *trust_domain;           /* NULL = cluster.local */
    xds_mesh_authz authz;         /* zero = no providers, no aliases */
    xds_mesh_telemetry telemetry; /* zero = istiod's defaults */
    bool registry_only;           /* outboundTrafficPolicy.mode REGISTRY_ONLY */
    bool ingress_tls;             /* ENABLE_TLS_ON_SIDECAR_INGRESS (start-only) */
} gen_mesh;

static void gen_mesh_release(gen_mesh *m);

/* What a sidecar's own IPs select in one snapshot, per IP: each endpoint at that IP with a
 * port, as (port, protocol of its service port, service), in shard order, which is the
 * order sidecar.c's inbound scan meets them. Sidecar LDS and CDS depend on the proxy's IPs
 * only through that, so two pods with the same signature (the replicas of a Deployment,
 * pods of the same ports and services) share one memo class and one generated set, where
 * a class per IP cost every pod its own listing and set. Built once per snapshot version,
 * on first use, in O(endpoints). */
typedef struct gen_ipsig_port {
    uint32_t port;
    int protocol;
    uint64_t host; /* hash of the hostname of the service first seen on the port */
} gen_ipsig_port;

typedef struct gen_ipsig {
    struct gen_ipsig *next;
    char *ip;
    strbuf sig; /* CDS: every (port, protocol, service): the inbound clusters' metadata */
    /* LDS: the inbound ports, each with the protocol first seen, sorted by port: the
     * virtualInbound chains (which name no service) */
    gen_ipsig_port *ports;
    size_t nports;
    char *lds;
    /* two services select the port with different protocols: istiod's inbound conflict
     * (reportInboundConflict), resolved as sidecar.c does, for the first one */
    bool conflict;
} gen_ipsig;

typedef struct gen_ipsig_idx {
    uint64_t version; /* 0: empty */
    gen_ipsig **b;
    size_t nb;
} gen_ipsig_idx;

static void gen_ipsig_clear(gen_ipsig_idx *x);

#define GEN_CONFLICT_MAX 4096

typedef struct gen_conflicts {
    pthread_mutex_t mu;
    uint64_t epoch; /* the snapshot version of the last full push: older notes are dropped */
    uint64_t keys[GEN_CONFLICT_KINDS][GEN_CONFLICT_MAX];
    size_t n[GEN_CONFLICT_KINDS];
    metric *gauge[GEN_CONFLICT_KINDS];
} gen_conflicts;

struct xds_gen {
    pthread_mutex_t mu;
    gen_mesh *mesh; /* guarded by mu; replaced whole by the setters */
    gen_entry *buckets[GEN_CACHE_BUCKETS];
    gen_entry *head, *tail;
    size_t n;
    size_t bytes;
    uint64_t newest, previous; /* snapshot versions seen */

    gen_memo *memo[GEN_MEMO_BUCKETS];
    size_t nmemo;
    uint64_t memo_seq; /* last set id handed out */
    uint64_t memo_hits, memo_misses;
    struct { /* what of a snapshot makes LDS/RDS depend on proxy labels (GEN_LABELS_*) */
        uint64_t version;
        unsigned uses;
    } sl[2];
    gen_ipsig_idx ipsig[2]; /* the inbound signatures of two snapshot versions (gen_ipsig) */
    gen_conflicts cf;       /* istiod's pilot_conflict_* gauges */
};

static const struct {
    xds_flavour flavour;
    const char *type_url;
    const gen_type_ops *ops;
    const char *tag;
} gen_table[] = {
    {XDS_FLAVOUR_GRPC, XDS_TYPE_LISTENER, &gen_grpc_lds, "grpc"},
    {XDS_FLAVOUR_GRPC, XDS_TYPE_ROUTE, &gen_grpc_rds, "grpc"},
    {XDS_FLAVOUR_GRPC, XDS_TYPE_CLUSTER, &gen_envoy_cds_outbound, "grpc"},
    {XDS_FLAVOUR_GRPC, XDS_TYPE_ENDPOINT, &gen_eds, "shared"},
    {XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_LISTENER, &gen_gw_lds, "gateway"},
    {XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_ROUTE, &gen_gw_rds, "gateway"},
    {XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_CLUSTER, &gen_envoy_cds_outbound, "envoy"},
    {XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_ENDPOINT, &gen_eds, "shared"},
    {XDS_FLAVOUR_ENVOY_GATEWAY, XDS_TYPE_SECRET, &gen_gw_sds, "gateway"},
    {XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_LISTENER, &gen_sc_lds, "sidecar"},
    {XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_ROUTE, &gen_sc_rds, "sidecar"},
    {XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_CLUSTER, &gen_sc_cds, "envoy"},
    {XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_ENDPOINT, &gen_eds, "shared"},
    /* credentialName of a DestinationRule: CA bundles of the sidecar's own namespace */
    {XDS_FLAVOUR_ENVOY_SIDECAR, XDS_TYPE_SECRET, &gen_sc_sds, "sidecar"},
};

xds_gen *xds_gen_new(void)
{
    xds_gen *g = xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->cf.mu, NULL);
    /* istiod's names and help texts (pilot/pkg/model/push_context.go) */
    g->cf.gauge[GEN_CONFLICT_INBOUND] = metric_gauge(
        "pilot_conflict_inbound_listener", "Number of conflicting inbound listeners.", NULL);
    g->cf.gauge[GEN_CONFLICT_OUTBOUND_TCP] =
        metric_gauge("pilot_conflict_outbound_listener_tcp_over_current_tcp",
                     "Number of conflicting tcp listeners with current tcp listener.", NULL);
    return g;
}

static void gen_entry_free(gen_entry *e)
{
    xds_resource_release(e->res);
    free(e->key);
    free(e);
}

static char **gen_strv_dup(const char *const *v, size_t n)
{
    char **d = xcalloc(n ? n : 1, sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = v[i] ? xstrdup(v[i]) : NULL;
    return d;
}

static void gen_memo_free(gen_memo *m)
{
    free(m->ns);
    mesh_labels_free(&m->labels);
    util_strv_free(m->ips, m->nips);
    util_strv_free(m->names, m->nnames);
    if (m->trace)
        util_strv_free(m->trace, GEN_TRACE_N);
    xds_resource_set_free(&m->set);
    free(m);
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
    for (size_t b = 0; b < GEN_MEMO_BUCKETS; b++) {
        gen_memo *m = g->memo[b];
        while (m) {
            gen_memo *next = m->hnext;
            gen_memo_free(m);
            m = next;
        }
    }
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->cf.mu);
    gen_mesh_release(g->mesh);
    gen_ipsig_clear(&g->ipsig[0]);
    gen_ipsig_clear(&g->ipsig[1]);
    free(g);
}

/* For a generator without settings: no providers, no aliases, istiod's telemetry. */
static const xds_mesh_authz gen_no_mesh_authz;
static const xds_mesh_telemetry gen_no_mesh_telemetry;

/* A copy of the generator's current settings (g->mu held), for a setter to change. */
static gen_mesh *gen_mesh_dup(const gen_mesh *o)
{
    gen_mesh *m = xcalloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    if (!o)
        return m;
    m->trust_domain = o->trust_domain ? xstrdup(o->trust_domain) : NULL;
    xds_mesh_authz_copy(&m->authz, &o->authz);
    xds_mesh_telemetry_copy(&m->telemetry, &o->telemetry);
    m->registry_only = o->registry_only;
    m->ingress_tls = o->ingress_tls;
    return m;
}

static void gen_mesh_release(gen_mesh *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    free(m->trust_domain);
    xds_mesh_authz_clear(&m->authz);
    xds_mesh_telemetry_clear(&m->telemetry);
    free(m);
}

/* Swaps in a copy of the current settings changed by one setter's part. */
static gen_mesh *gen_mesh_begin(xds_gen *g)
{
    pthread_mutex_lock(&g->mu);
    return gen_mesh_dup(g->mesh);
}

static void gen_mesh_commit(xds_gen *g, gen_mesh *m)
{
    gen_mesh *old = g->mesh;
    g->mesh = m;
    pthread_mutex_unlock(&g->mu);
    gen_mesh_release(old); /* calls still running keep their own reference */
}

void xds_gen_set_trust_domain(xds_gen *g, const char *trust_domain)
{
    gen_mesh *m = gen_mesh_begin(g);
    free(m->trust_domain);
    m->trust_domain = trust_domain && trust_domain[0] ? xstrdup(trust_domain) : NULL;
    gen_mesh_commit(g, m);
}

void xds_gen_set_sidecar_ingress_tls(xds_gen *g, bool on)
{
    gen_mesh *m = gen_mesh_begin(g);
    m->ingress_tls = on;
    gen_mesh_commit(g, m);
}

void xds_gen_set_mesh_authz(xds_gen *g, const xds_mesh_authz *a)
{
    gen_mesh *m = gen_mesh_begin(g);
    xds_mesh_authz_clear(&m->authz);
    if (a)
        xds_mesh_authz_copy(&m->authz, a);
    gen_mesh_commit(g, m);
}

void xds_gen_set_mesh_telemetry(xds_gen *g, const xds_mesh_telemetry *t)
{
    gen_mesh *m = gen_mesh_begin(g);
    xds_mesh_telemetry_clear(&m->telemetry);
    if (t)
        xds_mesh_telemetry_copy(&m->telemetry, t);
    gen_mesh_commit(g, m);
}

void xds_gen_set_outbound_mode(xds_gen *g, xds_outbound_mode mode)
{
    gen_mesh *m = gen_mesh_begin(g);
    m->registry_only = mode == XDS_OUTBOUND_REGISTRY_ONLY;
    gen_mesh_commit(g, m);
}

void xds_gen_set_mesh(xds_gen *g, const xds_mesh_authz *authz, const xds_mesh_telemetry *telemetry,
                      xds_outbound_mode mode)
{
    gen_mesh *m = gen_mesh_begin(g);
    xds_mesh_authz_clear(&m->authz);
    if (authz)
        xds_mesh_authz_copy(&m->authz, authz);
    xds_mesh_telemetry_clear(&m->telemetry);
    if (telemetry)
        xds_mesh_telemetry_copy(&m->telemetry, telemetry);
    m->registry_only = mode == XDS_OUTBOUND_REGISTRY_ONLY;
    gen_mesh_commit(g, m);
}

bool xds_type_is_wildcard(const xds_proxy *p, const char *type_url)
{
    if (!p || !type_url || p->flavour == XDS_FLAVOUR_GRPC)
        return false;
    return strcmp(type_url, XDS_TYPE_LISTENER) == 0 || strcmp(type_url, XDS_TYPE_CLUSTER) == 0;
}

const char *xds_cluster_hostname(const char *cluster_name)
{
    if (!cluster_name ||
        (!util_has_prefix(cluster_name, "outbound|") && !util_has_prefix(cluster_name, "inbound|")))
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
static void gen_ipsig_clear(gen_ipsig_idx *x)
{
    for (size_t b = 0; b < x->nb; b++) {
        gen_ipsig *e = x->b[b];
        while (e) {
            gen_ipsig *next = e->next;
            free(e->ip);
            strbuf_free(&e->sig);
            free(e->ports);
            free(e->lds);
            free(e);
            e = next;
        }
    }
    free(x->b);
    memset(x, 0, sizeof *x);
}

static gen_ipsig **gen_ipsig_slot(const gen_ipsig_idx *x, const char *ip)
{
    gen_ipsig **pp = &x->b[util_hash64(ip, strlen(ip), 0) % x->nb];
    while (*pp && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void gen_ipsig_build(gen_ipsig_idx *x, const mesh_snapshot *s)
{
    size_t neps = 0;
    for (size_t i = 0; i < s->nshards; i++)
        neps += s->shards[i]->neps;
    x->version = s->version;
    x->nb = neps / 2 + 16;
    x->b = xcalloc(x->nb, sizeof *x->b);
    for (size_t i = 0; i < s->nshards; i++) {
        const mesh_endpoint_shard *sh = s->shards[i];
        const mesh_service *svc = sh->neps ? mesh_snapshot_service(s, sh->hostname) : NULL;
        for (size_t e = 0; e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (!ep->address || !ep->port)
                continue;
            gen_ipsig **pp = gen_ipsig_slot(x, ep->address);
            if (!*pp) {
                *pp = xcalloc(1, sizeof **pp);
                (*pp)->ip = xstrdup(ep->address);
                strbuf_init(&(*pp)->sig, 0);
            }
            const mesh_port *sp = svc ? gen_service_port(svc, ep->service_port) : NULL;
            int proto = (int)(sp ? sp->protocol : MESH_PROTO_UNSUPPORTED);
            gen_ipsig *x1 = *pp;
            strbuf_appendf(&x1->sig, "%u/%d/%s;", ep->port, proto, svc ? svc->hostname : "-");
            const char *hn = svc ? svc->hostname : "-";
            uint64_t host = util_hash64(hn, strlen(hn), 0);
            size_t k = 0;
            while (k < x1->nports && x1->ports[k].port != ep->port)
                k++;
            if (k == x1->nports) {
                x1->ports = xrealloc(x1->ports, (x1->nports + 1) * sizeof *x1->ports);
                x1->ports[x1->nports].port = ep->port;
                x1->ports[x1->nports].host = host;
                x1->ports[x1->nports++].protocol = proto;
            } else if (x1->ports[k].protocol != proto && x1->ports[k].host != host) {
                x1->conflict = true;
            }
        }
    }
    for (size_t b = 0; b < x->nb; b++)
        for (gen_ipsig *e = x->b[b]; e; e = e->next) {
            /* insertion sort: a pod has a handful of ports */
            for (size_t i = 1; i < e->nports; i++)
                for (size_t j = i; j > 0 && e->ports[j - 1].port > e->ports[j].port; j--) {
                    gen_ipsig_port t = e->ports[j];
                    e->ports[j] = e->ports[j - 1];
                    e->ports[j - 1] = t;
                }
            strbuf l;
            strbuf_init(&l, 0);
            for (size_t i = 0; i < e->nports; i++)
                strbuf_appendf(&l, "%u/%d;", e->ports[i].port, e->ports[i].protocol);
            e->lds = strbuf_steal(&l, NULL);
        }
}

/* The inbound signature of IPs ips under s for LDS (lds) or CDS, in the call's arena:
 * "sig|sig|..." per IP; *conflict: whether one of the IPs has an inbound conflict. */
static char *gen_ipsig_of(xds_gen *g, const mesh_snapshot *s, char *const *ips, size_t nips,
                          bool lds, gen_arena *a, bool *conflict)
{
    gen_sbuf out = {0};
    pthread_mutex_lock(&g->mu);
    gen_ipsig_idx *x = g->ipsig[0].version == s->version   ? &g->ipsig[0]
                       : g->ipsig[1].version == s->version ? &g->ipsig[1]
                                                           : NULL;
    if (!x) { /* replace the older one; a call still on it has copied what it needed */
        x = g->ipsig[0].version <= g->ipsig[1].version ? &g->ipsig[0] : &g->ipsig[1];
        gen_ipsig_clear(x);
        gen_ipsig_build(x, s);
    }
    ga_cat(a, &out, "ipsig:");
    for (size_t i = 0; i < nips; i++) {
        gen_ipsig *e = ips[i] ? *gen_ipsig_slot(x, ips[i]) : NULL;
        const char *sig = !e ? "" : lds ? e->lds : e->sig.data;
        ga_cat(a, &out, "%s|", sig ? sig : "");
        *conflict = *conflict || (e && e->conflict);
    }
    pthread_mutex_unlock(&g->mu);
    return (char *)ga_sbuf_str(a, &out);
}

void gen_conflict_note(xds_gen *g, const mesh_snapshot *s, gen_conflict_kind kind, const char *key)
{
    if (!g || !s || !key || kind >= GEN_CONFLICT_KINDS)
        return;
    uint64_t h = util_hash64(key, strlen(key), 0);
    pthread_mutex_lock(&g->cf.mu);
    size_t n = g->cf.n[kind];
    if (s->version < g->cf.epoch || n >= GEN_CONFLICT_MAX)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (g->cf.keys[kind][i] == h)
            goto out;
    g->cf.keys[kind][n] = h;
    g->cf.n[kind] = n + 1;
    metric_set(g->cf.gauge[kind], NULL, (double)(n + 1));
out:
    pthread_mutex_unlock(&g->cf.mu);
}

void xds_gen_conflicts_reset(xds_gen *g, uint64_t version)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->cf.mu);
    if (version > g->cf.epoch) {
        g->cf.epoch = version;
        for (int k = 0; k < GEN_CONFLICT_KINDS; k++) {
            g->cf.n[k] = 0;
            metric_set(g->cf.gauge[k], NULL, 0);
        }
    }
    pthread_mutex_unlock(&g->cf.mu);
}

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
    for (size_t b = 0; b < GEN_MEMO_BUCKETS && g->nmemo; b++) {
        gen_memo **pp = &g->memo[b];
        while (*pp) {
            gen_memo *m = *pp;
            if (m->version < g->previous) {
                *pp = m->hnext;
                gen_memo_free(m);
                g->nmemo--;
            } else {
                pp = &m->hnext;
            }
        }
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

/* ---- the set memo -------------------------------------------------------------------------- */

static uint64_t gen_mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

/* Eight bytes at a time: the names of a gRPC client (thousands) are hashed per call. */
static uint64_t gen_hash_str(uint64_t h, const char *s)
{
    if (!s)
        return gen_mix(h, 0x51ed27c0ffee5eedULL);
    size_t n = strlen(s);
    h = gen_mix(h, n);
    for (; n >= 8; n -= 8, s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = gen_mix(h, w);
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return gen_mix(h, w);
}

static bool gen_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* What makes a snapshot's listeners and routes depend on the proxy's labels: a match (HTTP,
 * TCP or TLS) with sourceLabels (LDS and RDS), a security policy with a selector (LDS: the
 * inbound chains and their filters). Cached for the two newest versions; g->mu not held. */
enum { GEN_LABELS_SOURCE = 1, GEN_LABELS_SECURITY = 2 };
static unsigned gen_label_uses(xds_gen *g, const mesh_snapshot *s)
{
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < 2; i++) {
        if (g->sl[i].version == s->version && s->version) {
            unsigned u = g->sl[i].uses;
            pthread_mutex_unlock(&g->mu);
            return u;
        }
    }
    pthread_mutex_unlock(&g->mu);
    bool src = false;
    for (size_t v = 0; v < s->nvss && !src; v++) {
        const mesh_virtual_service *vs = s->vss[v];
        for (size_t i = 0; i < vs->nhttp && !src; i++)
            for (size_t m = 0; m < vs->http[i].nmatches && !src; m++)
                src = vs->http[i].matches[m].source_labels.n > 0;
        for (size_t i = 0; i < vs->ntcp && !src; i++)
            for (size_t m = 0; m < vs->tcp[i].nmatches && !src; m++)
                src = vs->tcp[i].matches[m].source_labels.n > 0;
        for (size_t i = 0; i < vs->ntls && !src; i++)
            for (size_t m = 0; m < vs->tls[i].nmatches && !src; m++)
                src = vs->tls[i].matches[m].source_labels.n > 0;
    }
    unsigned uses =
        (src ? GEN_LABELS_SOURCE : 0u) | (gen_security_uses_labels(s) ? GEN_LABELS_SECURITY : 0u);
    pthread_mutex_lock(&g->mu);
    int slot = g->sl[0].version <= g->sl[1].version ? 0 : 1;
    g->sl[slot].version = s->version;
    g->sl[slot].uses = uses;
    pthread_mutex_unlock(&g->mu);
    return uses;
}

/* Whether HCMs may carry istiod's tracing block (and so its per-proxy span tags) under t and
 * s: enableTracing, a default tracing provider, or a Telemetry that could configure it. */
static bool gen_tracing_possible(const xds_mesh_telemetry *t, const mesh_snapshot *s)
{
    if (!t || !t->tracing_off || t->default_tracing.n)
        return true;
    for (size_t i = 0; s && i < s->ntelemetries; i++)
        if (s->telemetries[i]->ntracing)
            return true;
    return false;
}

/* The values of istiod's per-proxy span tags (buildServiceTags), defaults applied. */
static const char *const *gen_trace_inputs(const xds_proxy *p, gen_arena *a)
{
    const char **v = ga_alloc(a, GEN_TRACE_N * sizeof *v);
    const char *rev = mesh_labels_get(&p->labels, "service.istio.io/canonical-revision");
    const char *svc = mesh_labels_get(&p->labels, "service.istio.io/canonical-name");
    v[GEN_TRACE_REVISION] = rev && *rev ? rev : "latest";
    v[GEN_TRACE_SERVICE] = svc && *svc ? svc : "unknown";
    v[GEN_TRACE_MESH_ID] = p->mesh_id && *p->mesh_id ? p->mesh_id : "unknown";
    v[GEN_TRACE_CLUSTER_ID] = p->cluster_id && *p->cluster_id ? p->cluster_id : "unknown";
    v[GEN_TRACE_NODE_CLUSTER] = p->node_cluster ? p->node_cluster : "";
    return v;
}

/* Fills k with the inputs that shape table row ti for proxy p (the list in the header). */
static void gen_class_init(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, size_t ti,
                           const char *const *names, size_t nnames, const xds_mesh_telemetry *tel,
                           gen_arena *a, gen_class *k)
{
    xds_flavour fl = gen_table[ti].flavour;
    const char *type = gen_table[ti].type_url;
    bool lds = strcmp(type, XDS_TYPE_LISTENER) == 0;
    bool rds = strcmp(type, XDS_TYPE_ROUTE) == 0;
    bool cds = strcmp(type, XDS_TYPE_CLUSTER) == 0;
    bool eds = strcmp(type, XDS_TYPE_ENDPOINT) == 0;
    memset(k, 0, sizeof *k);
    k->ti = ti;
    k->ns = p->ns;
    unsigned uses = (lds || rds) ? gen_label_uses(g, s) : 0;
    if ((fl == XDS_FLAVOUR_ENVOY_GATEWAY && (lds || rds)) ||
        ((lds || rds) && (uses & GEN_LABELS_SOURCE)) || (lds && (uses & GEN_LABELS_SECURITY)) ||
        ((cds || eds || rds) && mesh_snapshot_dr_selects(s, p->ns)) ||
        /* a Telemetry with a selector: which apply (stats, access logs) follows labels */
        (lds && fl != XDS_FLAVOUR_GRPC && mesh_snapshot_telemetry_selects(s, p->ns)))
        k->labels = &p->labels;
    k->names = names;
    k->nnames = names ? nnames : 0;
    /* tracing's span tags name the proxy's canonical service and revision, mesh and
     * cluster: replicas of one deployment share them, so they still share one set */
    if (lds && fl != XDS_FLAVOUR_GRPC && gen_tracing_possible(tel, s))
        k->trace = gen_trace_inputs(p, a);
    /* Sidecar scoping (istiod's SidecarScope) shapes sidecar and gRPC xDS; within one
     * snapshot version the object's address is its identity, and the class includes the
     * version, so proxies under the same Sidecar (or none) share sets and others do not */
    if (fl != XDS_FLAVOUR_ENVOY_GATEWAY && (lds || rds || cds || eds))
        k->sidecar = mesh_snapshot_sidecar_for(s, p->ns, &p->labels);
    if (fl == XDS_FLAVOUR_ENVOY_SIDECAR && (lds || cds)) {
        /* The IPs shape inbound listeners and clusters only through what they select (the
         * inbound signature), unless a Sidecar ingress listener's defaultEndpoint 0.0.0.0
         * names the proxy's own IP in the bytes */
        bool own_ip = false;
        for (size_t i = 0; k->sidecar && i < k->sidecar->ningress && !own_ip; i++) {
            const char *de = k->sidecar->ingress[i].default_endpoint;
            own_ip = de && (util_has_prefix(de, "0.0.0.0:") || util_has_prefix(de, "[::]:"));
        }
        static char *const no_ips[1] = {NULL};
        if (p->ips && !own_ip) {
            char **v = ga_alloc(a, sizeof *v);
            bool conflict = false;
            v[0] = gen_ipsig_of(g, s, p->ips, p->nips, lds, a, &conflict);
            k->ips = v;
            k->nips = 1;
            /* per proxy, before the memo: replicas that share a set are each counted, as
             * istiod counts every proxy ID; with Sidecar ingress listeners the inbound
             * ports are the Sidecar's, not the endpoints' */
            if (lds && conflict && p->id && !(k->sidecar && k->sidecar->ningress))
                gen_conflict_note(g, s, GEN_CONFLICT_INBOUND, p->id);
        } else {
            k->ips = p->ips ? p->ips : no_ips; /* non-NULL marks "used" */
            k->nips = p->ips ? p->nips : 0;
        }
    }

    uint64_t h = gen_mix(0x243F6A8885A308D3ULL, ti);
    h = gen_mix(h, (uint64_t)(uintptr_t)k->sidecar);
    h = gen_hash_str(h, k->ns);
    h = gen_mix(h, k->labels ? k->labels->n + 1 : 0);
    for (size_t i = 0; k->labels && i < k->labels->n; i++)
        h = gen_hash_str(gen_hash_str(h, k->labels->keys[i]), k->labels->vals[i]);
    h = gen_mix(h, k->ips ? k->nips + 1 : 0);
    for (size_t i = 0; i < k->nips; i++)
        h = gen_hash_str(h, k->ips[i]);
    h = gen_mix(h, names ? k->nnames + 1 : 0);
    for (size_t i = 0; i < k->nnames; i++)
        h = gen_hash_str(h, names[i]);
    h = gen_mix(h, k->trace != NULL);
    for (size_t i = 0; k->trace && i < GEN_TRACE_N; i++)
        h = gen_hash_str(h, k->trace[i]);
    k->hash = h;
}

/* Does memo entry m hold exactly the class k (every input compared)? */
static bool gen_memo_matches(const gen_memo *m, const gen_class *k)
{
    if (m->chash != k->hash || m->ti != k->ti || !gen_str_eq(m->ns, k->ns) ||
        m->sidecar != (const void *)k->sidecar)
        return false;
    if (m->use_labels != (k->labels != NULL))
        return false;
    if (k->labels) {
        if (m->labels.n != k->labels->n)
            return false;
        for (size_t i = 0; i < m->labels.n; i++)
            if (!gen_str_eq(m->labels.keys[i], k->labels->keys[i]) ||
                !gen_str_eq(m->labels.vals[i], k->labels->vals[i]))
                return false;
    }
    if ((m->ips != NULL) != (k->ips != NULL) || m->nips != k->nips)
        return false;
    for (size_t i = 0; i < m->nips; i++)
        if (!gen_str_eq(m->ips[i], k->ips[i]))
            return false;
    if ((m->trace != NULL) != (k->trace != NULL))
        return false;
    for (size_t i = 0; m->trace && i < GEN_TRACE_N; i++)
        if (!gen_str_eq(m->trace[i], k->trace[i]))
            return false;
    if (m->wildcard != (k->names == NULL) || m->nnames != k->nnames)
        return false;
    for (size_t i = 0; i < m->nnames; i++)
        if (!gen_str_eq(m->names[i], k->names[i]))
            return false;
    return true;
}

static void gen_set_copy(const xds_resource_set *src, xds_resource_set *dst)
{
    dst->items = xcalloc(src->n ? src->n : 1, sizeof *dst->items);
    for (size_t i = 0; i < src->n; i++) {
        xds_resource_retain(src->items[i]);
        dst->items[i] = src->items[i];
    }
    dst->n = src->n;
    dst->id = src->id;
}

static bool gen_set_same(const xds_resource_set *a, const xds_resource_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i] != b->items[i] && (a->items[i]->hash != b->items[i]->hash ||
                                           strcmp(a->items[i]->name, b->items[i]->name) != 0))
            return false;
    return true;
}

/* A copy of the memoized set for (k, version) into out; false when there is none. */
static bool gen_memo_get(xds_gen *g, const gen_class *k, uint64_t version, xds_resource_set *out)
{
    bool hit = false;
    pthread_mutex_lock(&g->mu);
    for (gen_memo *m = g->memo[k->hash & (GEN_MEMO_BUCKETS - 1)]; m; m = m->hnext) {
        if (m->version == version && gen_memo_matches(m, k)) {
            gen_set_copy(&m->set, out);
            hit = true;
            break;
        }
    }
    if (hit)
        g->memo_hits++;
    else
        g->memo_misses++;
    pthread_mutex_unlock(&g->mu);
    return hit;
}

/* Records a freshly built set and gives it its id (out->id): the id of an equal set this
 * class had at an older version, else a new one. Another thread's entry for the same
 * class and version wins (its id is used; both sets hold the same content). */
static void gen_memo_put(xds_gen *g, const gen_class *k, uint64_t version, xds_resource_set *out)
{
    pthread_mutex_lock(&g->mu);
    gen_memo *prev = NULL;
    size_t b = k->hash & (GEN_MEMO_BUCKETS - 1);
    for (gen_memo *m = g->memo[b]; m; m = m->hnext) {
        if (!gen_memo_matches(m, k))
            continue;
        if (m->version == version) {
            out->id = m->set.id;
            goto out;
        }
        if (m->version < version && (!prev || m->version > prev->version))
            prev = m;
    }
    out->id = prev && gen_set_same(&prev->set, out) ? prev->set.id : ++g->memo_seq;
    if (g->nmemo >= GEN_MEMO_MAX || version < g->previous)
        goto out;
    gen_memo *m = xcalloc(1, sizeof *m);
    m->chash = k->hash;
    m->version = version;
    m->ti = k->ti;
    m->ns = k->ns ? xstrdup(k->ns) : NULL;
    m->use_labels = k->labels != NULL;
    if (k->labels)
        mesh_labels_copy(k->labels, &m->labels);
    if (k->ips) {
        m->ips = gen_strv_dup((const char *const *)k->ips, k->nips);
        m->nips = k->nips;
    }
    m->sidecar = k->sidecar;
    if (k->trace)
        m->trace = gen_strv_dup(k->trace, GEN_TRACE_N);
    m->wildcard = k->names == NULL;
    if (k->names) {
        m->names = gen_strv_dup(k->names, k->nnames);
        m->nnames = k->nnames;
    }
    gen_set_copy(out, &m->set);
    m->hnext = g->memo[b];
    g->memo[b] = m;
    g->nmemo++;
out:
    pthread_mutex_unlock(&g->mu);
}

void xds_gen_memo_stats(xds_gen *g, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&g->mu);
    *hits = g->memo_hits;
    *misses = g->memo_misses;
    pthread_mutex_unlock(&g->mu);
}

/* ---- which changes can alter a type -------------------------------------------------------- *
 *
 * A full push carries the kinds that changed since the last one. A type is regenerated
 * for a proxy only when one of the kinds its generator reads changed:
 * - "services" = Service, ServiceEntry (both make mesh_service) and Namespace (rare; kept
 *   in every mask so a namespace change always means a full regeneration);
 * - "endpoints" = Pod, Endpoints, EndpointSlice (shards; also inbound ports for sidecars);
 * - gRPC LDS reads services (an API listener names its RDS route by service and port),
 *   and for server listeners endpoints and DestinationRules (whether <ip>:<port> is an
 *   endpoint of a service whose rule says ISTIO_MUTUAL); gRPC RDS reads services, VirtualServices
 * and DestinationRules (consistent-hash policies); CDS of gRPC and gateways (outbound clusters) and
 * EDS of every flavour read services, DestinationRules (policies, subsets) and endpoints. A
 * VirtualService whose destination names a subset only names the cluster
 * "outbound|port|subset|host": the cluster exists (or not) by the DestinationRule alone, and a
 * client that starts asking for it does so with a new subscription, which is answered at request
 * time.
 * - Envoy sidecar CDS: outbound clusters plus inbound clusters (endpoints), so services,
 *   DestinationRules, endpoints; sidecar LDS/RDS and gateway LDS/RDS read everything
 *   (Gateways, VirtualServices with TCP/TLS routes, inbound ports, Telemetries: the stats
 *   filters and access logs of every Envoy listener): every kind.
 * - SDS has no generator: every kind (it is cheap and always empty).
 */
#define K(k) (1u << (k))
_Static_assert(MESH_KIND__COUNT <= 32, "kinds_changed is a 32-bit mask");
#define GEN_K_SERVICES (K(MESH_KIND_SERVICE) | K(MESH_KIND_SERVICE_ENTRY) | K(MESH_KIND_NAMESPACE))
#define GEN_K_ENDPOINTS (K(MESH_KIND_POD) | K(MESH_KIND_ENDPOINTS) | K(MESH_KIND_ENDPOINT_SLICE))

uint32_t xds_type_kinds(const xds_proxy *p, const mesh_snapshot *s, const char *type_url)
{
    if (!p || !type_url)
        return ~0u;
    bool lds = strcmp(type_url, XDS_TYPE_LISTENER) == 0;
    bool rds = strcmp(type_url, XDS_TYPE_ROUTE) == 0;
    bool cds = strcmp(type_url, XDS_TYPE_CLUSTER) == 0;
    bool eds = strcmp(type_url, XDS_TYPE_ENDPOINT) == 0;
    /* Sidecar: the scope (one that starts or stops scoping p is a Sidecar change);
     * VirtualService: a scoped proxy also gets the services its imported VirtualServices
     * route to, so only a proxy a Sidecar scopes in s (unknown s: any) regenerates its
     * clusters for a VirtualService change; gateways have no scope */
    bool scoped = !s || mesh_snapshot_sidecar_for(s, p->ns, &p->labels) != NULL;
    uint32_t scope = p->flavour == XDS_FLAVOUR_ENVOY_GATEWAY
                         ? 0
                         : K(MESH_KIND_SIDECAR) | (scoped ? K(MESH_KIND_VIRTUAL_SERVICE) : 0);
    if (cds || eds) /* PeerAuthentication: auto mTLS per service and endpoint */
        return GEN_K_SERVICES | K(MESH_KIND_DESTINATION_RULE) | GEN_K_ENDPOINTS |
               K(MESH_KIND_PEER_AUTHENTICATION) | scope;
    if (p->flavour == XDS_FLAVOUR_GRPC && lds) /* server listeners: endpoints, mTLS, policy */
        return GEN_K_SERVICES | K(MESH_KIND_DESTINATION_RULE) | GEN_K_ENDPOINTS |
               K(MESH_KIND_PEER_AUTHENTICATION) | K(MESH_KIND_AUTHORIZATION_POLICY) |
               K(MESH_KIND_REQUEST_AUTHENTICATION) | scope;
    if (p->flavour == XDS_FLAVOUR_GRPC && rds)
        return GEN_K_SERVICES | K(MESH_KIND_VIRTUAL_SERVICE) | K(MESH_KIND_DESTINATION_RULE) |
               scope;
    return ~0u;
}
#undef K

static int gen_cmp_res(const void *a, const void *b)
{
    const xds_resource *x = *(const xds_resource *const *)a;
    const xds_resource *y = *(const xds_resource *const *)b;
    return strcmp(x->name, y->name);
}

int xds_gen_generate(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *type_url,
                     const char *const *names, size_t nnames, xds_resource_set *out)
{
    int rc = -1;
    gen_mesh *mesh = NULL;
    gen_arena a = {0};
    out->items = NULL;
    out->n = 0;
    out->id = 0;
    if (!g || !p || !s || !type_url)
        goto out;
    const gen_type_ops *ops = NULL;
    const char *tag = NULL;
    size_t ti = 0;
    for (size_t i = 0; i < sizeof gen_table / sizeof gen_table[0]; i++) {
        if (gen_table[i].flavour == p->flavour && strcmp(gen_table[i].type_url, type_url) == 0) {
            ops = gen_table[i].ops;
            tag = gen_table[i].tag;
            ti = i;
        }
    }
    if (!ops) {
        rc = 0; /* no generator for this type: nothing to send */
        goto out;
    }
    pthread_mutex_lock(&g->mu);
    gen_note_version(g, s->version);
    mesh = g->mesh;
    if (mesh)
        atomic_fetch_add(&mesh->refs, 1);
    pthread_mutex_unlock(&g->mu);

    gen_class k;
    gen_class_init(g, p, s, ti, names, nnames, mesh ? &mesh->telemetry : NULL, &a, &k);
    if (gen_memo_get(g, &k, s->version, out)) {
        rc = 0;
        goto out;
    }

    /* the generators match the proxy's own IPs (the class may hold their signature) */
    gen_view view = {.ns = k.ns, .sidecar = k.sidecar, .trace = k.trace};
    if (k.ips) {
        view.ips = p->ips;
        view.nips = p->ips ? p->nips : 0;
    }
    if (k.labels)
        view.labels = *k.labels;
    gen_ctx c = {.a = &a,
                 .gen = g,
                 .p = &view,
                 .s = s,
                 .grpc = p->flavour == XDS_FLAVOUR_GRPC,
                 .gateway = p->flavour == XDS_FLAVOUR_ENVOY_GATEWAY,
                 .trust_domain = mesh ? mesh->trust_domain : NULL,
                 .mesh_authz = mesh ? &mesh->authz : &gen_no_mesh_authz,
                 .telemetry = mesh ? &mesh->telemetry : &gen_no_mesh_telemetry,
                 .registry_only = mesh && mesh->registry_only,
                 .ingress_tls = mesh && mesh->ingress_tls};
    gen_items items = {0};
    ops->list(&c, names, nnames, &items);
    /* every Envoy listener carries the stats filters and access logs of the Telemetries
     * that apply to the proxy: they are part of each one's key */
    if (!c.grpc && strcmp(type_url, XDS_TYPE_LISTENER) == 0) {
        const char *tk = gen_telemetry_key(&c);
        for (size_t i = 0; i < items.n; i++)
            items.v[i].extra = ga_printf(&a, "%s|%s", items.v[i].extra ? items.v[i].extra : "", tk);
    }

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
    gen_memo_put(g, &k, s->version, out);
    rc = 0;
out:
    if (rc != 0)
        xds_resource_set_free(out);
    gen_arena_free(&a);
    gen_mesh_release(mesh);
    return rc;
}
