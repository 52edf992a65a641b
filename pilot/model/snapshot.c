/* snapshot: lifetime and lookups of mesh_snapshot (see mesh.h), and the shared pieces the
 * model builds snapshots from (see model_internal.h).
 *
 * Any thread: a published snapshot is immutable, so lookups take no lock; refcounts are
 * atomic. The last release of a snapshot drops one reference on each shared array, and the
 * last reference on an array releases its elements.
 */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/mesh.h"
#include "pilot/model/model_internal.h"

/* ---- shared arrays ---------------------------------------------------------------------- */

snap_arr *snap_arr_new(int kind, size_t n)
{
    snap_arr *a = xcalloc(1, sizeof(*a) + n * sizeof(void *));
    atomic_init(&a->refs, 1);
    a->kind = kind;
    a->n = n;
    return a;
}

snap_arr *snap_arr_of(void *items)
{
    return (snap_arr *)((char *)items - offsetof(snap_arr, items));
}

void snap_arr_retain(snap_arr *a)
{
    if (a)
        atomic_fetch_add(&a->refs, 1);
}

void snap_arr_release(snap_arr *a)
{
    if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    for (size_t i = 0; i < a->n; i++) {
        if (!a->items[i])
            continue;
        if (a->kind == SNAP_ARR_SERVICES) {
            snap_service_release(a->items[i]);
        } else if (a->kind == SNAP_ARR_SHARDS) {
            snap_shard_release(a->items[i]);
        } else {
            mesh_object o = {.kind = (mesh_kind)a->kind};
            o.u.meta = a->items[i];
            mesh_object_release(o);
        }
    }
    free(a);
}

/* ---- configz ------------------------------------------------------------------------------ */

struct mesh_configz *snap_configz_new(cJSON *items)
{
    struct mesh_configz *c = xcalloc(1, sizeof(*c));
    atomic_init(&c->refs, 1);
    c->items = items;
    return c;
}

void snap_configz_retain(struct mesh_configz *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
}

void snap_configz_release(struct mesh_configz *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    cJSON_Delete(c->items);
    free(c);
}

/* ---- meta, services, shards ------------------------------------------------------------- */

void snap_meta_copy(const mesh_meta *src, mesh_meta *dst)
{
    memset(dst, 0, sizeof(*dst));
    atomic_init(&dst->refs, 1);
    dst->name = xstrdup(src->name);
    dst->ns = xstrdup(src->ns);
    dst->resource_version = xstrdup(src->resource_version);
    dst->creation_timestamp = xstrdup(src->creation_timestamp);
    dst->uid = xstrdup(src->uid);
    dst->generation = src->generation;
    mesh_labels_copy(&src->labels, &dst->labels);
    mesh_labels_copy(&src->annotations, &dst->annotations);
    dst->source = xstrdup(src->source);
}

void snap_meta_clear(mesh_meta *m)
{
    free(m->name);
    free(m->ns);
    free(m->resource_version);
    free(m->creation_timestamp);
    free(m->uid);
    mesh_labels_free(&m->labels);
    mesh_labels_free(&m->annotations);
    free(m->source);
    memset(m, 0, sizeof(*m));
}

mesh_service *snap_service_new(void)
{
    mesh_service *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->meta.refs, 1);
    return s;
}

void snap_service_retain(mesh_service *s)
{
    if (s)
        atomic_fetch_add(&s->meta.refs, 1);
}

void snap_service_release(mesh_service *s)
{
    if (!s || atomic_fetch_sub(&s->meta.refs, 1) != 1)
        return;
    snap_meta_clear(&s->meta);
    free(s->hostname);
    for (size_t i = 0; i < s->nports; i++) {
        free(s->ports[i].name);
        free(s->ports[i].target_port_name);
    }
    free(s->ports);
    for (size_t i = 0; i < s->nvips; i++)
        free(s->vips[i]);
    free(s->vips);
    mesh_labels_free(&s->selector);
    for (size_t i = 0; i < s->nexport_to; i++)
        free(s->export_to[i]);
    free(s->export_to);
    free(s->from_service_entry);
    free(s);
}

mesh_endpoint_shard *snap_shard_new(const char *hostname, const char *ns)
{
    mesh_endpoint_shard *sh = xcalloc(1, sizeof(*sh));
    atomic_init(&sh->refs, 1);
    sh->hostname = xstrdup(hostname);
    sh->ns = xstrdup(ns ? ns : "");
    return sh;
}

void snap_shard_retain(mesh_endpoint_shard *sh)
{
    if (sh)
        atomic_fetch_add(&sh->refs, 1);
}

void snap_endpoint_clear(mesh_endpoint *ep)
{
    free(ep->address);
    free(ep->port_name);
    mesh_labels_free(&ep->labels);
    free(ep->service_account);
    free(ep->pod_name);
    free(ep->node_name);
    free(ep->locality);
    memset(ep, 0, sizeof(*ep));
}

void snap_shard_release(mesh_endpoint_shard *sh)
{
    if (!sh || atomic_fetch_sub(&sh->refs, 1) != 1)
        return;
    for (size_t i = 0; i < sh->neps; i++)
        snap_endpoint_clear(&sh->eps[i]);
    free(sh->eps);
    free(sh->hostname);
    free(sh->ns);
    free(sh);
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool labels_equal(const mesh_labels *a, const mesh_labels *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->keys[i], b->keys[i]) != 0 || strcmp(a->vals[i], b->vals[i]) != 0)
            return false;
    return true;
}

bool snap_shard_equal(const mesh_endpoint_shard *a, const mesh_endpoint_shard *b)
{
    if (a->neps != b->neps || !str_eq(a->ns, b->ns))
        return false;
    for (size_t i = 0; i < a->neps; i++) {
        const mesh_endpoint *x = &a->eps[i], *y = &b->eps[i];
        if (x->port != y->port || x->service_port != y->service_port || x->ready != y->ready ||
            x->weight != y->weight || !str_eq(x->address, y->address) ||
            !str_eq(x->port_name, y->port_name) ||
            !str_eq(x->service_account, y->service_account) || !str_eq(x->pod_name, y->pod_name) ||
            !str_eq(x->node_name, y->node_name) || !str_eq(x->locality, y->locality) ||
            !labels_equal(&x->labels, &y->labels))
            return false;
    }
    return true;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

mesh_snapshot *snap_new(void)
{
    mesh_snapshot *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    return s;
}

void mesh_snapshot_retain(mesh_snapshot *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
}

static void release_items(void *items)
{
    if (items)
        snap_arr_release(snap_arr_of(items));
}

void mesh_snapshot_release(mesh_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    release_items(s->services);
    release_items(s->vss);
    release_items(s->drs);
    snap_dr_index_release(s->dr_index);
    release_items(s->gws);
    release_items(s->ses);
    release_items(s->namespaces);
    release_items(s->shards);
    release_items(s->secrets);
    release_items(s->pas);
    release_items(s->ras);
    release_items(s->aps);
    snap_configz_release(s->configz);
    mesh_jwks_table_release(s->jwks);
    free(s->domain);
    free(s->root_ns);
    free(s->cluster_id);
    free(s);
}

/* ---- JWKS table ------------------------------------------------------------------------ */

mesh_jwks_table *mesh_jwks_table_new(size_t n)
{
    mesh_jwks_table *t = xcalloc(1, sizeof(*t));
    atomic_init(&t->refs, 1);
    t->n = n;
    t->v = n ? xcalloc(n, sizeof(*t->v)) : NULL;
    return t;
}

static int cmp_jwks_entry(const void *a, const void *b)
{
    return strcmp(((const mesh_jwks_entry *)a)->uri, ((const mesh_jwks_entry *)b)->uri);
}

void mesh_jwks_table_sort(mesh_jwks_table *t)
{
    if (t && t->n > 1)
        qsort(t->v, t->n, sizeof(*t->v), cmp_jwks_entry);
}

void mesh_jwks_table_retain(mesh_jwks_table *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
}

void mesh_jwks_table_release(mesh_jwks_table *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].uri);
        free(t->v[i].jwks);
    }
    free(t->v);
    free(t);
}

const mesh_jwks_entry *mesh_jwks_table_find(const mesh_jwks_table *t, const char *uri)
{
    size_t lo = 0, hi = t && uri ? t->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid].uri, uri);
        if (c == 0)
            return &t->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const mesh_service *mesh_snapshot_service(const mesh_snapshot *s, const char *hostname)
{
    size_t lo = 0, hi = s->nservices;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->services[mid]->hostname, hostname);
        if (c == 0)
            return s->services[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const mesh_endpoint_shard *mesh_snapshot_shard(const mesh_snapshot *s, const char *hostname)
{
    size_t lo = 0, hi = s->nshards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->shards[mid]->hostname, hostname);
        if (c == 0)
            return s->shards[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int cmp_ns_name(const mesh_meta *m, const char *ns, const char *name)
{
    int c = strcmp(m->ns, ns);
    return c ? c : strcmp(m->name, name);
}

const mesh_gateway *mesh_snapshot_gateway(const mesh_snapshot *s, const char *ns, const char *name)
{
    size_t lo = 0, hi = s->ngws;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_ns_name(&s->gws[mid]->meta, ns, name);
        if (c == 0)
            return s->gws[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const mesh_secret *mesh_snapshot_secret(const mesh_snapshot *s, const char *ns, const char *name)
{
    if (!s || !ns || !name)
        return NULL;
    size_t lo = 0, hi = s->nsecrets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_ns_name(&s->secrets[mid]->meta, ns, name);
        if (c == 0)
            return s->secrets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- DestinationRules by host ------------------------------------------------------------ */

typedef struct dr_entry {
    const char *host; /* the rule's FQDN host */
    const char *ns;
    const mesh_destination_rule *dr;
} dr_entry;

struct mesh_dr_index {
    atomic_int refs;
    dr_entry *exact; /* sorted by (host, ns, then the rules' (ns, name) order) */
    size_t nexact;
    dr_entry *wild; /* "*" and "*.suffix" hosts, in the rules' order */
    size_t nwild;
};

static const char *dr_host(const mesh_destination_rule *dr)
{
    return dr->fqdn_host ? dr->fqdn_host : dr->host;
}

static int dr_entry_cmp(const void *a, const void *b)
{
    const dr_entry *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    if (c == 0)
        c = strcmp(x->ns, y->ns);
    return c != 0 ? c : (x->dr < y->dr ? -1 : x->dr > y->dr); /* drs[] order is by name */
}

struct mesh_dr_index *snap_dr_index_new(mesh_destination_rule *const *drs, size_t n)
{
    struct mesh_dr_index *x = xcalloc(1, sizeof(*x));
    atomic_init(&x->refs, 1);
    x->exact = xcalloc(n ? n : 1, sizeof(*x->exact));
    x->wild = xcalloc(n ? n : 1, sizeof(*x->wild));
    for (size_t i = 0; i < n; i++) {
        const char *h = dr_host(drs[i]);
        if (!h)
            continue;
        dr_entry e = {h, drs[i]->meta.ns ? drs[i]->meta.ns : "", drs[i]};
        if (h[0] == '*')
            x->wild[x->nwild++] = e;
        else
            x->exact[x->nexact++] = e;
    }
    /* the drs array is sorted by (ns, name) and pointers into it rise with i, so the
     * pointer breaks ties in name order */
    qsort(x->exact, x->nexact, sizeof(*x->exact), dr_entry_cmp);
    return x;
}

void snap_dr_index_retain(struct mesh_dr_index *x)
{
    if (x)
        atomic_fetch_add(&x->refs, 1);
}

void snap_dr_index_release(struct mesh_dr_index *x)
{
    if (!x || atomic_fetch_sub(&x->refs, 1) != 1)
        return;
    free(x->exact);
    free(x->wild);
    free(x);
}

/* exportTo: empty or "*" everywhere, "." its own namespace, else the namespaces listed. */
static bool dr_visible(const mesh_destination_rule *dr, const char *ns)
{
    if (!ns || dr->nexport_to == 0)
        return true;
    for (size_t i = 0; i < dr->nexport_to; i++) {
        const char *e = dr->export_to[i];
        if (strcmp(e, "*") == 0 || strcmp(e, ns) == 0 ||
            (strcmp(e, ".") == 0 && strcmp(dr->meta.ns, ns) == 0))
            return true;
    }
    return false;
}

/* The rule in namespace ns for hostname visible to proxy_ns: an exact host first (bisect),
 * else the longest matching wildcard. */
static const mesh_destination_rule *dr_best(const struct mesh_dr_index *x, const char *hostname,
                                            const char *ns, const char *proxy_ns)
{
    size_t lo = 0, hi = x->nexact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(x->exact[mid].host, hostname);
        if (c == 0)
            c = strcmp(x->exact[mid].ns, ns);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < x->nexact && strcmp(x->exact[i].host, hostname) == 0 &&
                        strcmp(x->exact[i].ns, ns) == 0;
         i++)
        if (dr_visible(x->exact[i].dr, proxy_ns))
            return x->exact[i].dr;
    const mesh_destination_rule *best = NULL;
    size_t best_len = 0;
    size_t hlen = strlen(hostname);
    for (size_t i = 0; i < x->nwild; i++) {
        const dr_entry *e = &x->wild[i];
        if (strcmp(e->ns, ns) != 0)
            continue;
        size_t len = strlen(e->host);
        bool match = strcmp(e->host, "*") == 0 || (e->host[1] == '.' && hlen > len - 1 &&
                                                   util_has_suffix(hostname, e->host + 1));
        if (!match || (best && len <= best_len) || !dr_visible(e->dr, proxy_ns))
            continue;
        best = e->dr;
        best_len = len;
    }
    return best;
}

const mesh_destination_rule *
mesh_snapshot_destination_rule(const mesh_snapshot *s, const char *hostname, const char *proxy_ns)
{
    const mesh_destination_rule *dr = NULL;
    if (!s || !hostname || !s->dr_index)
        return NULL;
    const char *root = s->root_ns ? s->root_ns : "istio-system";
    if (proxy_ns && (dr = dr_best(s->dr_index, hostname, proxy_ns, proxy_ns)))
        return dr;
    const mesh_service *svc = mesh_snapshot_service(s, hostname);
    if (svc && svc->meta.ns && (dr = dr_best(s->dr_index, hostname, svc->meta.ns, proxy_ns)))
        return dr;
    return dr_best(s->dr_index, hostname, root, proxy_ns);
}
