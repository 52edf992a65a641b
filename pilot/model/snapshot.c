/* snapshot: lifetime and lookups of mesh_snapshot (see mesh.h), and the shared pieces the
 * model builds snapshots from (see model_internal.h).
 *
 * Any thread: a published snapshot is immutable, so lookups take no lock; refcounts are
 * atomic. The last release of a snapshot drops one reference on each shared array, and the
 * last reference on an array releases its elements.
 */
#include <stdio.h>
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
    release_items(s->sidecars);
    release_items(s->telemetries);
    snap_configz_release(s->configz);
    mesh_jwks_table_release(s->jwks);
    free(s->domain);
    free(s->root_ns);
    mesh_export_defaults_clear(&s->export_defaults);
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

/* ---- DestinationRules by host ------------------------------------------------------------ *
 *
 * Built as istiod's setDestinationRules: rules in (workloadSelector first, creation time,
 * name) order are merged per namespace and host into consolidated rules (mergeDestinationRule),
 * in three pools: what a namespace's own proxies see ("local": exported to ".", "*", the
 * namespace or anyone), what it exports ("exported": all but private-only rules) and its
 * private-only rules ("private", istiod's rootNamespaceLocal, kept for every namespace so
 * the index does not depend on the root namespace). The key of a consolidated rule names
 * every rule merged into it, so generated bytes keyed by it change when any of them does.
 */

typedef struct dr_cons {
    const mesh_destination_rule *dr; /* the first rule, or merged once another joined it */
    mesh_destination_rule *merged;   /* owned shallow copy with its own subsets array */
    const char *const *export_to;    /* the exportTo set (borrowed); selector rules: {"."} */
    size_t nexport_to;
    char *key; /* "ns/name[,ns/name...]" */
} dr_cons;

typedef struct dr_group { /* one host in one namespace of one pool */
    const char *ns;
    const char *host;
    dr_cons *v;
    size_t n;
} dr_group;

typedef struct dr_pool {
    dr_group *exact; /* sorted by (ns, host) */
    size_t nexact;
    dr_group *wild; /* "*" and "*.suffix" hosts, sorted by (ns, host) */
    size_t nwild;
} dr_pool;

struct mesh_dr_index {
    atomic_int refs;
    char **dflt; /* mesh config defaultDestinationRuleExportTo it was built with (owned) */
    size_t ndflt;
    dr_pool local, exported, priv;
    const char **sel_ns; /* namespaces holding a workloadSelector rule, sorted, unique */
    size_t nsel_ns;
};

static const char *const dr_private_set[] = {"."};

static const char *dr_host(const mesh_destination_rule *dr)
{
    return dr->fqdn_host ? dr->fqdn_host : dr->host;
}

static const char *dr_ns(const mesh_destination_rule *dr)
{
    return dr->meta.ns ? dr->meta.ns : "";
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* (ns, host), then istiod's sortConfigBySelectorAndCreationTime: selector rules first, then
 * creation time (RFC 3339 strings compare as times; none sorts first, like a zero time),
 * then name. */
static int dr_order_cmp(const void *a, const void *b)
{
    const mesh_destination_rule *x = *(const mesh_destination_rule *const *)a;
    const mesh_destination_rule *y = *(const mesh_destination_rule *const *)b;
    int c = strcmp(dr_ns(x), dr_ns(y));
    if (c == 0)
        c = strcmp(dr_host(x), dr_host(y));
    if (c == 0 && x->has_workload_selector != y->has_workload_selector)
        return x->has_workload_selector ? -1 : 1;
    if (c == 0)
        c = strcmp(nz(x->meta.creation_timestamp), nz(y->meta.creation_timestamp));
    return c ? c : strcmp(nz(x->meta.name), nz(y->meta.name));
}

static bool set_has(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* Distinct members of an exportTo list (it may repeat a value). */
static size_t set_len(const char *const *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] && !set_has(v, i, v[i]))
            k++;
    return k;
}

static bool set_superset(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    for (size_t i = 0; i < nb; i++)
        if (b[i] && !set_has(a, na, b[i]))
            return false;
    return true;
}

static bool set_equal(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    return set_superset(a, na, b, nb) && set_superset(b, nb, a, na);
}

/* Map equality of two selectors (order does not matter). */
static bool selector_equal(const mesh_labels *a, const mesh_labels *b)
{
    return a->n == b->n && mesh_labels_subset(a, b) && mesh_labels_subset(b, a);
}

/* Room for one more in an array of n elements of size sz that grows by doubling at powers of
 * two (so building from many rules costs O(n), and no capacity field is kept). */
static void *grow(void *v, size_t n, size_t sz)
{
    return n == 0 || (n & (n - 1)) == 0 ? xrealloc(v, (n ? 2 * n : 1) * sz) : v;
}

static void cons_add(dr_group *g, const mesh_destination_rule *dr, const char *const *to,
                     size_t nto)
{
    g->v = grow(g->v, g->n, sizeof(*g->v));
    dr_cons *c = &g->v[g->n++];
    memset(c, 0, sizeof(*c));
    c->dr = dr;
    c->export_to = to;
    c->nexport_to = nto;
    size_t len = strlen(dr_ns(dr)) + strlen(nz(dr->meta.name)) + 2;
    c->key = xmalloc(len);
    snprintf(c->key, len, "%s/%s", dr_ns(dr), nz(dr->meta.name));
}

/* rule's new subsets and, when the consolidated rule has none, its top-level trafficPolicy
 * (with its portLevelSettings, which istiod keeps inside trafficPolicy) join c. */
static void cons_absorb(dr_cons *c, const mesh_destination_rule *rule)
{
    if (!c->merged) {
        c->merged = xmalloc(sizeof(*c->merged));
        *c->merged = *c->dr; /* borrowed fields; only subsets is re-allocated */
        c->merged->subsets = xcalloc(c->dr->nsubsets ? c->dr->nsubsets : 1, sizeof(mesh_subset));
        if (c->dr->nsubsets)
            memcpy(c->merged->subsets, c->dr->subsets, c->dr->nsubsets * sizeof(mesh_subset));
        c->dr = c->merged;
    }
    mesh_destination_rule *m = c->merged;
    size_t klen = strlen(c->key), add = strlen(dr_ns(rule)) + strlen(nz(rule->meta.name)) + 3;
    c->key = xrealloc(c->key, klen + add);
    snprintf(c->key + klen, add, ",%s/%s", dr_ns(rule), nz(rule->meta.name));
    for (size_t i = 0; i < rule->nsubsets; i++) {
        bool dup = false;
        for (size_t k = 0; k < m->nsubsets && !dup; k++)
            dup = strcmp(nz(m->subsets[k].name), nz(rule->subsets[i].name)) == 0;
        if (dup)
            continue; /* istiod counts it (DuplicatedSubsets) and keeps the first */
        m->subsets = xrealloc(m->subsets, (m->nsubsets + 1) * sizeof(*m->subsets));
        m->subsets[m->nsubsets++] = rule->subsets[i];
    }
    if (!m->policy && rule->policy) {
        m->policy = rule->policy;
        m->port_policies = rule->port_policies;
        m->nport_policies = rule->nport_policies;
    }
}

/* istiod's mergeDestinationRule (with ENABLE_ENHANCED_DESTINATIONRULE_MERGE, its default),
 * literally: the exportTo sets decide whether a rule may merge into an earlier entry, the
 * selectors whether it must, and the value appendSeparately has after the last earlier
 * entry whether it also stands alone (so a rule without selector may both feed a selector
 * rule and stand alone, and rules with different exportTo stay apart). */
static void dr_merge(dr_group *g, const mesh_destination_rule *rule, const char *const *to,
                     size_t nto)
{
    bool separately = true;
    size_t n = g->n;
    for (size_t i = 0; i < n; i++) {
        dr_cons *c = &g->v[i];
        if (set_equal(to, nto, c->export_to, c->nexport_to)) {
            separately = false;
        } else if (set_len(c->export_to, c->nexport_to) > 0 &&
                   set_superset(to, nto, c->export_to, c->nexport_to)) {
            separately = true;
        } else {
            separately = true;
            continue;
        }
        bool sel = rule->has_workload_selector, esel = c->dr->has_workload_selector;
        if (sel && esel && !selector_equal(&rule->workload_selector, &c->dr->workload_selector)) {
            separately = true;
            continue;
        }
        if (sel == esel)
            separately = false;
        cons_absorb(c, rule);
    }
    if (separately || n == 0)
        cons_add(g, rule, to, nto);
}

static void pool_push(dr_group **arr, size_t *n, dr_group *g)
{
    *arr = grow(*arr, *n, sizeof(**arr));
    (*arr)[(*n)++] = *g;
}

static void pool_free(dr_pool *p)
{
    dr_group *lists[2] = {p->exact, p->wild};
    size_t ns[2] = {p->nexact, p->nwild};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < ns[l]; i++) {
            for (size_t k = 0; k < lists[l][i].n; k++) {
                dr_cons *c = &lists[l][i].v[k];
                if (c->merged)
                    free(c->merged->subsets);
                free(c->merged);
                free(c->key);
            }
            free(lists[l][i].v);
        }
        free(lists[l]);
    }
}

struct mesh_dr_index *snap_dr_index_new(mesh_destination_rule *const *drs, size_t n,
                                        char *const *dflt, size_t ndflt)
{
    struct mesh_dr_index *x = xcalloc(1, sizeof(*x));
    atomic_init(&x->refs, 1);
    x->dflt = xcalloc(ndflt ? ndflt : 1, sizeof(*x->dflt));
    for (size_t i = 0; i < ndflt; i++)
        x->dflt[x->ndflt++] = xstrdup(dflt[i] ? dflt[i] : "");
    const mesh_destination_rule **v = xcalloc(n ? n : 1, sizeof(*v));
    size_t nv = 0;
    for (size_t i = 0; i < n; i++)
        if (drs[i] && dr_host(drs[i]))
            v[nv++] = drs[i];
    qsort(v, nv, sizeof(*v), dr_order_cmp);
    x->sel_ns = xcalloc(nv ? nv : 1, sizeof(*x->sel_ns));
    for (size_t i = 0; i < nv;) {
        const char *ns = dr_ns(v[i]), *host = dr_host(v[i]);
        size_t end = i;
        while (end < nv && strcmp(dr_ns(v[end]), ns) == 0 && strcmp(dr_host(v[end]), host) == 0)
            end++;
        dr_group g[3] = {{ns, host, NULL, 0}, {ns, host, NULL, 0}, {ns, host, NULL, 0}};
        for (size_t k = i; k < end; k++) {
            const mesh_destination_rule *r = v[k];
            /* rules with a selector are never exported (istiod: exportTo {"."}) */
            const char *const *to =
                r->has_workload_selector ? dr_private_set : (const char *const *)r->export_to;
            size_t nto = r->has_workload_selector ? 1 : r->nexport_to;
            /* no exportTo of its own: mesh config defaultDestinationRuleExportTo */
            mesh_export_or_default((char *const **)&to, &nto, x->dflt, x->ndflt);
            if (r->has_workload_selector &&
                (x->nsel_ns == 0 || strcmp(x->sel_ns[x->nsel_ns - 1], ns) != 0))
                x->sel_ns[x->nsel_ns++] = ns;
            if (nto == 0 || set_has(to, nto, "*") || set_has(to, nto, ".") || set_has(to, nto, ns))
                dr_merge(&g[0], r, to, nto);
            size_t len = set_len(to, nto);
            bool private_only = len == 1 && (set_has(to, nto, ".") || set_has(to, nto, ns));
            dr_merge(&g[private_only ? 2 : 1], r, to, nto);
        }
        dr_pool *pools[3] = {&x->local, &x->exported, &x->priv};
        for (int p = 0; p < 3; p++) {
            if (!g[p].n)
                continue;
            if (host[0] == '*')
                pool_push(&pools[p]->wild, &pools[p]->nwild, &g[p]);
            else
                pool_push(&pools[p]->exact, &pools[p]->nexact, &g[p]);
        }
        i = end;
    }
    free(v);
    return x;
}

bool snap_dr_index_has_defaults(const struct mesh_dr_index *x, char *const *dflt, size_t ndflt)
{
    if (!x || x->ndflt != ndflt)
        return false;
    for (size_t i = 0; i < ndflt; i++)
        if (strcmp(x->dflt[i], dflt[i] ? dflt[i] : "") != 0)
            return false;
    return true;
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
    pool_free(&x->local);
    pool_free(&x->exported);
    pool_free(&x->priv);
    free(x->sel_ns);
    util_strv_free(x->dflt, x->ndflt);
    free(x);
}

static int group_cmp(const dr_group *g, const char *ns, const char *host)
{
    int c = strcmp(g->ns, ns);
    return c ? c : strcmp(g->host, host);
}

/* First index in a (ns, host)-sorted list not below (ns, host). */
static size_t group_lower(const dr_group *v, size_t n, const char *ns, const char *host)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (group_cmp(&v[mid], ns, host) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* istiod's MostSpecificHostMatch within namespace ns of a pool: the exact host (a wildcard
 * hostname looks for itself among the wildcards), else the longest wildcard whose suffix
 * ends the hostname. */
static const dr_group *pool_match(const dr_pool *p, const char *ns, const char *hostname)
{
    bool wild = hostname[0] == '*';
    const dr_group *v = wild ? p->wild : p->exact;
    size_t n = wild ? p->nwild : p->nexact;
    size_t i = group_lower(v, n, ns, hostname);
    if (i < n && group_cmp(&v[i], ns, hostname) == 0)
        return &v[i];
    const char *needle = wild ? hostname + 1 : hostname;
    const dr_group *best = NULL;
    for (i = group_lower(p->wild, p->nwild, ns, ""); i < p->nwild && !strcmp(p->wild[i].ns, ns);
         i++) {
        const char *h = p->wild[i].host;
        if (util_has_suffix(needle, h + 1) && (!best || strlen(h) > strlen(best->host)))
            best = &p->wild[i];
    }
    return best;
}

/* exportTo of an exported rule against the client's namespace (istiod's
 * getExportedDestinationRuleFromNamespace; "." is not checked: the rule's own namespace
 * found it in its local pool first). A proxy without namespace sees every rule. */
static bool cons_exported_to(const dr_cons *c, const char *client_ns)
{
    return !client_ns || c->nexport_to == 0 || set_has(c->export_to, c->nexport_to, "*") ||
           set_has(c->export_to, c->nexport_to, client_ns);
}

/* istiod's SidecarScope.DestinationRule: a workloadSelector rule of the proxy's own
 * namespace whose selector its labels satisfy (labels NULL: none does), else the last
 * rule without selector. filter: only rules exported to proxy_ns count. *found says
 * whether any rule of g counted (then the search stops here, even with no answer). */
static const dr_cons *group_pick(const dr_group *g, const char *proxy_ns, const mesh_labels *labels,
                                 bool filter, bool *found)
{
    const dr_cons *all = NULL;
    *found = false;
    for (size_t i = 0; g && i < g->n; i++) {
        const dr_cons *c = &g->v[i];
        if (filter && !cons_exported_to(c, proxy_ns))
            continue;
        *found = true;
        if (!c->dr->has_workload_selector) {
            all = c;
            continue;
        }
        if (labels && proxy_ns && strcmp(dr_ns(c->dr), proxy_ns) == 0 &&
            mesh_labels_subset(&c->dr->workload_selector, labels))
            return c;
    }
    return all;
}

const mesh_destination_rule *
mesh_snapshot_destination_rule(const mesh_snapshot *s, const char *hostname, const char *proxy_ns,
                               const mesh_labels *labels, const char **key)
{
    const dr_cons *c = NULL;
    bool found = false;
    if (key)
        *key = NULL;
    if (!s || !hostname || !s->dr_index)
        return NULL;
    const struct mesh_dr_index *x = s->dr_index;
    const char *root = s->root_ns ? s->root_ns : "istio-system";
    /* 1. the proxy's namespace (a proxy in the root namespace: its private rules) */
    if (proxy_ns && strcmp(proxy_ns, root) != 0)
        c = group_pick(pool_match(&x->local, proxy_ns, hostname), proxy_ns, labels, false, &found);
    else if (proxy_ns)
        c = group_pick(pool_match(&x->priv, root, hostname), proxy_ns, labels, false, &found);
    /* 2. what the service's namespace exports, 3. what the root namespace exports */
    const mesh_service *svc = found ? NULL : mesh_snapshot_service(s, hostname);
    if (!found && svc && svc->meta.ns)
        c = group_pick(pool_match(&x->exported, svc->meta.ns, hostname), proxy_ns, labels, true,
                       &found);
    if (!found)
        c = group_pick(pool_match(&x->exported, root, hostname), proxy_ns, labels, true, &found);
    if (c && key)
        *key = c->key;
    return c ? c->dr : NULL;
}

bool mesh_snapshot_dr_selects(const mesh_snapshot *s, const char *proxy_ns)
{
    if (!s || !s->dr_index || !proxy_ns)
        return false;
    const struct mesh_dr_index *x = s->dr_index;
    return x->nsel_ns &&
           bsearch(&proxy_ns, x->sel_ns, x->nsel_ns, sizeof(*x->sel_ns), util_strp_cmp) != NULL;
}

/* ---- mesh config exportTo defaults ------------------------------------------------------ */

static char **strv_dup(char *const *v, size_t n)
{
    char **d = xcalloc(n ? n : 1, sizeof(*d));
    for (size_t i = 0; i < n; i++)
        d[i] = xstrdup(v[i] ? v[i] : "");
    return d;
}

void mesh_export_defaults_copy(mesh_export_defaults *dst, const mesh_export_defaults *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src)
        return;
    dst->svc = strv_dup(src->svc, src->nsvc), dst->nsvc = src->nsvc;
    dst->vs = strv_dup(src->vs, src->nvs), dst->nvs = src->nvs;
    dst->dr = strv_dup(src->dr, src->ndr), dst->ndr = src->ndr;
}

void mesh_export_defaults_clear(mesh_export_defaults *d)
{
    util_strv_free(d->svc, d->nsvc);
    util_strv_free(d->vs, d->nvs);
    util_strv_free(d->dr, d->ndr);
    memset(d, 0, sizeof(*d));
}

void mesh_ingress_settings_copy(mesh_ingress_settings *dst, const mesh_ingress_settings *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src)
        return;
    dst->ingress_class = src->ingress_class ? xstrdup(src->ingress_class) : NULL;
    dst->mode = src->mode;
    dst->ingress_service = src->ingress_service ? xstrdup(src->ingress_service) : NULL;
    dst->ingress_selector = src->ingress_selector ? xstrdup(src->ingress_selector) : NULL;
}

void mesh_ingress_settings_clear(mesh_ingress_settings *d)
{
    free(d->ingress_class);
    free(d->ingress_service);
    free(d->ingress_selector);
    memset(d, 0, sizeof(*d));
}

static bool opt_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool mesh_ingress_settings_equal(const mesh_ingress_settings *a, const mesh_ingress_settings *b)
{
    return a->mode == b->mode && opt_str_eq(a->ingress_class, b->ingress_class) &&
           opt_str_eq(a->ingress_service, b->ingress_service) &&
           opt_str_eq(a->ingress_selector, b->ingress_selector);
}
