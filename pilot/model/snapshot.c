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
    release_items(s->gws);
    release_items(s->ses);
    release_items(s->namespaces);
    release_items(s->shards);
    release_items(s->secrets);
    snap_configz_release(s->configz);
    free(s->domain);
    free(s);
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

/* Istio's root namespace: rules there apply mesh-wide. */
#define SNAP_ROOT_NS "istio-system"

/* How well rule host h matches hostname: -1 no match, otherwise larger is more specific
 * (an exact match beats every wildcard). */
static long host_match_score(const char *h, const char *hostname)
{
    if (!h)
        return -1;
    if (strcmp(h, hostname) == 0)
        return 1L << 30;
    if (strcmp(h, "*") == 0)
        return 0;
    if (h[0] == '*' && h[1] == '.' && util_has_suffix(hostname, h + 1) &&
        strlen(hostname) > strlen(h + 1))
        return (long)strlen(h);
    return -1;
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

/* Best rule for hostname among those in namespace ns (any namespace when NULL). */
static const mesh_destination_rule *dr_best(const mesh_snapshot *s, const char *hostname,
                                            const char *ns, const char *proxy_ns)
{
    const mesh_destination_rule *best = NULL;
    long best_score = -1;
    for (size_t i = 0; i < s->ndrs; i++) {
        const mesh_destination_rule *dr = s->drs[i];
        if (ns && strcmp(dr->meta.ns, ns) != 0)
            continue;
        long score = host_match_score(dr->fqdn_host ? dr->fqdn_host : dr->host, hostname);
        if (score <= best_score)
            continue;
        if (!dr_visible(dr, proxy_ns))
            continue;
        best = dr;
        best_score = score;
    }
    return best;
}

const mesh_destination_rule *
mesh_snapshot_destination_rule(const mesh_snapshot *s, const char *hostname, const char *proxy_ns)
{
    const mesh_destination_rule *dr = NULL;
    if (!s || !hostname)
        return NULL;
    if (proxy_ns && (dr = dr_best(s, hostname, proxy_ns, proxy_ns)))
        return dr;
    const mesh_service *svc = mesh_snapshot_service(s, hostname);
    if (svc && svc->meta.ns && (dr = dr_best(s, hostname, svc->meta.ns, proxy_ns)))
        return dr;
    if ((dr = dr_best(s, hostname, SNAP_ROOT_NS, proxy_ns)))
        return dr;
    return dr_best(s, hostname, NULL, proxy_ns);
}
