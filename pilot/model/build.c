/* model_build: the store -> snapshot translation, on the model thread (no locks).
 *
 * Services come from Kubernetes Services (hostname <name>.<ns>.svc.<domain>) and from
 * ServiceEntries (one service per host). Endpoint shards, one per service hostname, come
 * from EndpointSlices (or core Endpoints when a service has no slice) joined with Pods, and
 * from ServiceEntry endpoints. Whatever did not change is shared with the previous
 * snapshot by reference: whole arrays when their kinds did not change, single shards when
 * their content is equal.
 */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/model/model_internal.h"

char *model_k8s_hostname(const char *name, const char *ns, const char *domain)
{
    return xasprintf("%s.%s.svc.%s", name, ns && *ns ? ns : "default", domain);
}

static char **strv_dup(char *const *v, size_t n)
{
    if (!n)
        return NULL;
    char **out = xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

/* networking.istio.io/exportTo: "ns1, ns2" */
static void export_to_from_annotation(const mesh_meta *meta, mesh_service *s)
{
    const char *v = mesh_labels_get(&meta->annotations, "networking.istio.io/exportTo");
    if (!v)
        return;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if (e > p) {
            s->export_to = xrealloc(s->export_to, (s->nexport_to + 1) * sizeof(char *));
            s->export_to[s->nexport_to++] = xstrndup(p, (size_t)(e - p));
        }
        p = e;
    }
}

/* ---- services ----------------------------------------------------------------------------- */

static mesh_service *service_from_k8s(const mesh_k8s_service *ks, const char *domain)
{
    mesh_service *s = snap_service_new();
    snap_meta_copy(&ks->meta, &s->meta);
    s->hostname = model_k8s_hostname(ks->meta.name, ks->meta.ns, domain);
    if (ks->nports) {
        s->ports = xcalloc(ks->nports, sizeof(mesh_port));
        for (size_t i = 0; i < ks->nports; i++) {
            const mesh_k8s_service_port *kp = &ks->ports[i];
            mesh_port *p = &s->ports[i];
            p->name = kp->name && *kp->name ? xstrdup(kp->name) : NULL;
            p->port = kp->port;
            p->target_port = kp->target_port;
            p->target_port_name = xstrdup(kp->target_port_name);
            if (kp->protocol && strcmp(kp->protocol, "UDP") == 0)
                p->protocol = MESH_PROTO_UDP;
            else
                p->protocol = mesh_protocol_from_port(kp->name, kp->app_protocol);
        }
        s->nports = ks->nports;
    }
    s->vips = strv_dup(ks->cluster_ips, ks->ncluster_ips);
    s->nvips = ks->ncluster_ips;
    mesh_labels_copy(&ks->selector, &s->selector);
    s->headless = ks->headless;
    if (ks->type && strcmp(ks->type, "ExternalName") == 0)
        s->resolution = MESH_RESOLUTION_DNS;
    else if (ks->headless)
        s->resolution = MESH_RESOLUTION_PASSTHROUGH;
    else
        s->resolution = MESH_RESOLUTION_CLIENT_SIDE_LB;
    export_to_from_annotation(&ks->meta, s);
    return s;
}

static void services_from_se(const mesh_service_entry *se, store_entry *e)
{
    e->built = xcalloc(se->nhosts ? se->nhosts : 1, sizeof(mesh_service *));
    for (size_t h = 0; h < se->nhosts; h++) {
        mesh_service *s = snap_service_new();
        snap_meta_copy(&se->meta, &s->meta);
        s->hostname = xstrdup(se->hosts[h]);
        if (se->nports) {
            s->ports = xcalloc(se->nports, sizeof(mesh_port));
            for (size_t i = 0; i < se->nports; i++) {
                s->ports[i] = se->ports[i];
                s->ports[i].name = xstrdup(se->ports[i].name);
                s->ports[i].target_port_name = xstrdup(se->ports[i].target_port_name);
            }
            s->nports = se->nports;
        }
        s->vips = strv_dup(se->addresses, se->naddresses);
        s->nvips = se->naddresses;
        mesh_labels_copy(&se->workload_selector, &s->selector);
        s->mesh_external = se->mesh_external;
        s->resolution = se->resolution;
        s->export_to = strv_dup(se->export_to, se->nexport_to);
        s->nexport_to = se->nexport_to;
        s->from_service_entry = xasprintf("%s/%s", se->meta.ns, se->meta.name);
        e->built[e->nbuilt++] = s;
    }
}

typedef struct svc_item {
    mesh_service *svc;
    size_t prio; /* lower wins a hostname clash: Kubernetes first, then SEs by ns/name */
} svc_item;

static int cmp_svc_item(const void *a, const void *b)
{
    const svc_item *x = a, *y = b;
    int c = strcmp(x->svc->hostname, y->svc->hostname);
    if (c)
        return c;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

static void build_services(const model_build_in *in, mesh_snapshot *s)
{
    svc_item *items = NULL;
    size_t n = 0, cap = 0, prio = 0;
    static const mesh_kind kinds[] = {MESH_KIND_SERVICE, MESH_KIND_SERVICE_ENTRY};
    for (size_t k = 0; k < 2; k++) {
        size_t ne;
        store_entry **ents = store_sorted(&in->stores[kinds[k]], &ne);
        for (size_t i = 0; i < ne; i++) {
            store_entry *e = ents[i];
            if (!e->built_done) {
                if (kinds[k] == MESH_KIND_SERVICE) {
                    e->built = xcalloc(1, sizeof(mesh_service *));
                    e->built[0] = service_from_k8s(e->obj.u.svc, in->domain);
                    e->nbuilt = 1;
                } else {
                    services_from_se(e->obj.u.se, e);
                }
                e->built_done = true;
            }
            for (size_t j = 0; j < e->nbuilt; j++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    items = xrealloc(items, cap * sizeof(*items));
                }
                items[n].svc = e->built[j];
                items[n].prio = prio++;
                n++;
            }
        }
        free(ents);
    }
    if (n > 1)
        qsort(items, n, sizeof(*items), cmp_svc_item);
    snap_arr *a = snap_arr_new(SNAP_ARR_SERVICES, n);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out &&
            strcmp(((mesh_service *)a->items[out - 1])->hostname, items[i].svc->hostname) == 0) {
            LOG_DEBUG("model", "hostname %s defined twice: keeping %s/%s, ignoring %s/%s",
                      items[i].svc->hostname, ((mesh_service *)a->items[out - 1])->meta.ns,
                      ((mesh_service *)a->items[out - 1])->meta.name, items[i].svc->meta.ns,
                      items[i].svc->meta.name);
            continue;
        }
        snap_service_retain(items[i].svc);
        a->items[out++] = items[i].svc;
    }
    a->n = out;
    free(items);
    s->services = (mesh_service **)a->items;
    s->nservices = out;
}

/* ---- config arrays ------------------------------------------------------------------------ */

static void **config_array(const model_build_in *in, mesh_kind k, void **prev_items, size_t prev_n,
                           size_t *n)
{
    if (in->prev && prev_items && !(in->kinds_changed & (1u << k))) {
        snap_arr_retain(snap_arr_of(prev_items));
        *n = prev_n;
        return prev_items;
    }
    size_t ne;
    store_entry **ents = store_sorted(&in->stores[k], &ne);
    snap_arr *a = snap_arr_new(k, ne);
    for (size_t i = 0; i < ne; i++) {
        mesh_object_retain(ents[i]->obj);
        a->items[i] = ents[i]->obj.u.meta;
    }
    free(ents);
    *n = ne;
    return a->items;
}

/* What the Ingresses make (ingress.c), converted at most once per build. */
typedef struct ing_docs {
    bool done;
    cJSON *gws, *vss;
} ing_docs;

static void ing_docs_get(const model_build_in *in, ing_docs *d)
{
    if (d->done)
        return;
    d->done = true;
    d->gws = cJSON_CreateArray();
    d->vss = cJSON_CreateArray();
    model_ingress_docs(in, d->gws, d->vss);
}

static void ing_docs_free(ing_docs *d)
{
    cJSON_Delete(d->gws);
    cJSON_Delete(d->vss);
}

/* The kinds the Ingress-made objects depend on: a mesh config change marks every kind. */
static uint32_t ing_kinds(const model_build_in *in, mesh_kind k)
{
    uint32_t from = (1u << MESH_KIND_INGRESS) | (1u << MESH_KIND_INGRESS_CLASS);
    if (k == MESH_KIND_VIRTUAL_SERVICE && in->stores[MESH_KIND_INGRESS].n)
        from |= 1u << MESH_KIND_SERVICE; /* named backend ports */
    return from;
}

/* The Gateways or VirtualServices (k) of the store followed by those the Ingresses make,
 * reused from prev unless one of the kinds they come from changed. */
static void **config_array_ingress(const model_build_in *in, ing_docs *docs, mesh_kind k,
                                   void **prev_items, size_t prev_n, size_t *n)
{
    if (in->prev && prev_items && !(in->kinds_changed & ((1u << k) | ing_kinds(in, k)))) {
        snap_arr_retain(snap_arr_of(prev_items));
        *n = prev_n;
        return prev_items;
    }
    ing_docs_get(in, docs);
    const cJSON *conv = k == MESH_KIND_GATEWAY ? docs->gws : docs->vss;
    size_t ne;
    store_entry **ents = store_sorted(&in->stores[k], &ne);
    snap_arr *a = snap_arr_new(k, ne + (size_t)cJSON_GetArraySize(conv));
    for (size_t i = 0; i < ne; i++) {
        mesh_object_retain(ents[i]->obj);
        a->items[i] = ents[i]->obj.u.meta;
    }
    free(ents);
    size_t w = ne;
    const cJSON *d;
    cJSON_ArrayForEach(d, conv)
    {
        void *o = model_ingress_parse(in, d, k);
        if (o)
            a->items[w++] = o;
    }
    a->n = w; /* those that did not parse are left out */
    *n = w;
    return a->items;
}

static struct mesh_configz *build_configz(const model_build_in *in, ing_docs *docs)
{
    static const mesh_kind kinds[] = {MESH_KIND_GATEWAY,
                                      MESH_KIND_VIRTUAL_SERVICE,
                                      MESH_KIND_DESTINATION_RULE,
                                      MESH_KIND_SERVICE_ENTRY,
                                      MESH_KIND_PEER_AUTHENTICATION,
                                      MESH_KIND_REQUEST_AUTHENTICATION,
                                      MESH_KIND_AUTHORIZATION_POLICY,
                                      MESH_KIND_SIDECAR,
                                      MESH_KIND_TELEMETRY};
    const size_t nkinds = sizeof kinds / sizeof kinds[0];
    uint32_t mask = 0;
    for (size_t k = 0; k < nkinds; k++)
        mask |= 1u << kinds[k];
    mask |= ing_kinds(in, MESH_KIND_VIRTUAL_SERVICE);
    if (in->prev && in->prev->configz && !(in->kinds_changed & mask)) {
        snap_configz_retain(in->prev->configz);
        return in->prev->configz;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t k = 0; k < nkinds; k++) {
        size_t ne;
        store_entry **ents = store_sorted(&in->stores[kinds[k]], &ne);
        for (size_t i = 0; i < ne; i++)
            if (ents[i]->configz)
                cJSON_AddItemToArray(arr, cJSON_Duplicate(ents[i]->configz, true));
        free(ents);
    }
    /* as istiod, whose config store lists its ingress controller's objects too */
    ing_docs_get(in, docs);
    const cJSON *d;
    cJSON_ArrayForEach(d, docs->gws) cJSON_AddItemToArray(arr, cJSON_Duplicate(d, true));
    cJSON_ArrayForEach(d, docs->vss) cJSON_AddItemToArray(arr, cJSON_Duplicate(d, true));
    return snap_configz_new(arr);
}

/* ---- endpoints ---------------------------------------------------------------------------- */

typedef struct pod_ip {
    const char *ip;
    const mesh_pod *pod;
} pod_ip;

typedef struct build_ctx {
    const model_build_in *in;
    const mesh_endpoint_slice **slices; /* EndpointSlices sorted by ns, service, name */
    size_t nslices;
    const mesh_endpoint_slice **eps; /* core Endpoints, same order */
    size_t neps;
    pod_ip *ips; /* built on first use */
    size_t nips;
    bool ips_built;
} build_ctx;

static int cmp_slice(const void *a, const void *b)
{
    const mesh_endpoint_slice *x = *(const mesh_endpoint_slice *const *)a;
    const mesh_endpoint_slice *y = *(const mesh_endpoint_slice *const *)b;
    int c = strcmp(x->meta.ns, y->meta.ns);
    if (c)
        return c;
    c = strcmp(x->service_name ? x->service_name : "", y->service_name ? y->service_name : "");
    return c ? c : strcmp(x->meta.name, y->meta.name);
}

static const mesh_endpoint_slice **sorted_slices(store *st, size_t *n)
{
    size_t ne;
    store_entry **ents = store_sorted(st, &ne);
    const mesh_endpoint_slice **v = xmalloc((ne ? ne : 1) * sizeof(*v));
    for (size_t i = 0; i < ne; i++)
        v[i] = ents[i]->obj.u.slice;
    free(ents);
    qsort(v, ne, sizeof(*v), cmp_slice);
    *n = ne;
    return v;
}

static int cmp_pod_ip(const void *a, const void *b)
{
    return strcmp(((const pod_ip *)a)->ip, ((const pod_ip *)b)->ip);
}

static const mesh_pod *pod_by_ip(build_ctx *c, const char *ip)
{
    if (!c->ips_built) {
        store *st = &c->in->stores[MESH_KIND_POD];
        size_t cap = 0;
        for (size_t b = 0; b < st->nbuckets; b++) {
            for (store_entry *e = st->buckets[b]; e; e = e->next) {
                const mesh_pod *p = e->obj.u.pod;
                for (size_t i = 0; i < p->nips; i++) {
                    if (c->nips == cap) {
                        cap = cap ? cap * 2 : 64;
                        c->ips = xrealloc(c->ips, cap * sizeof(pod_ip));
                    }
                    c->ips[c->nips].ip = p->ips[i];
                    c->ips[c->nips].pod = p;
                    c->nips++;
                }
            }
        }
        if (c->nips > 1)
            qsort(c->ips, c->nips, sizeof(pod_ip), cmp_pod_ip);
        c->ips_built = true;
    }
    pod_ip key = {.ip = ip};
    pod_ip *hit = c->nips ? bsearch(&key, c->ips, c->nips, sizeof(pod_ip), cmp_pod_ip) : NULL;
    return hit ? hit->pod : NULL;
}

static const mesh_pod *pod_by_ref(build_ctx *c, const char *ns, const char *name)
{
    char *key = xasprintf("%s/%s", ns, name);
    store_entry *e = store_get(&c->in->stores[MESH_KIND_POD], key);
    free(key);
    return e ? e->obj.u.pod : NULL;
}

typedef struct ep_vec {
    mesh_endpoint *v;
    size_t n, cap;
} ep_vec;

static mesh_endpoint *ep_push(ep_vec *ev)
{
    if (ev->n == ev->cap) {
        ev->cap = ev->cap ? ev->cap * 2 : 8;
        ev->v = xrealloc(ev->v, ev->cap * sizeof(mesh_endpoint));
    }
    mesh_endpoint *ep = &ev->v[ev->n++];
    memset(ep, 0, sizeof(*ep));
    ep->weight = 1;
    return ep;
}

static bool name_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The service port a slice port serves: same name, or the only port of both. */
static const mesh_port *match_port(const mesh_service *svc, const mesh_endpoint_slice *sl,
                                   const mesh_slice_port *sp)
{
    for (size_t i = 0; i < svc->nports; i++)
        if (name_eq(svc->ports[i].name, sp->name))
            return &svc->ports[i];
    if (svc->nports == 1 && sl->nports == 1)
        return &svc->ports[0];
    return NULL;
}

static char *locality_of_zone(const char *zone)
{
    /* Istio's "region/zone"; the region comes from Node labels, which we do not watch. */
    return zone && *zone ? xasprintf("/%s", zone) : xstrdup("");
}

static void add_slice_endpoints(build_ctx *c, const mesh_service *svc,
                                const mesh_endpoint_slice *sl, ep_vec *ev)
{
    for (size_t i = 0; i < sl->nendpoints; i++) {
        const mesh_slice_endpoint *se = &sl->endpoints[i];
        const mesh_pod *pod = NULL;
        if (se->target_pod)
            pod = pod_by_ref(c, se->target_ns && *se->target_ns ? se->target_ns : sl->meta.ns,
                             se->target_pod);
        for (size_t a = 0; a < se->naddresses; a++) {
            const mesh_pod *p = pod;
            if (!p && !se->target_pod)
                p = pod_by_ip(c, se->addresses[a]);
            for (size_t k = 0; k < sl->nports; k++) {
                const mesh_port *mp = match_port(svc, sl, &sl->ports[k]);
                if (!mp)
                    continue;
                mesh_endpoint *ep = ep_push(ev);
                ep->address = xstrdup(se->addresses[a]);
                ep->port = sl->ports[k].port;
                ep->port_name = xstrdup(mp->name);
                ep->service_port = mp->port;
                if (p) {
                    mesh_labels_copy(&p->meta.labels, &ep->labels);
                    ep->service_account = xstrdup(p->service_account);
                    ep->pod_name = xstrdup(p->meta.name);
                }
                ep->node_name = xstrdup(se->node_name ? se->node_name : p ? p->node_name : NULL);
                ep->locality = locality_of_zone(se->zone);
                ep->ready = se->ready;
            }
        }
    }
}

/* Range [lo, hi) of slices of service ns/name. */
static void slice_range(const mesh_endpoint_slice **v, size_t n, const char *ns, const char *name,
                        size_t *lo_out, size_t *hi_out)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(v[mid]->meta.ns, ns);
        if (!cmp)
            cmp = strcmp(v[mid]->service_name ? v[mid]->service_name : "", name);
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < n && strcmp(v[end]->meta.ns, ns) == 0 && name_eq(v[end]->service_name, name))
        end++;
    *lo_out = lo;
    *hi_out = end;
}

static uint32_t se_endpoint_port(const mesh_se_endpoint *e, const mesh_port *p)
{
    const char *v = p->name ? mesh_labels_get(&e->ports, p->name) : NULL;
    if (v) {
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (*end == '\0' && n > 0 && n < 65536)
            return (uint32_t)n;
    }
    return p->target_port ? p->target_port : p->port;
}

static void add_se_endpoints(build_ctx *c, const mesh_service *svc, ep_vec *ev)
{
    store_entry *e = store_get(&c->in->stores[MESH_KIND_SERVICE_ENTRY], svc->from_service_entry);
    if (!e)
        return;
    const mesh_service_entry *se = e->obj.u.se;
    if (se->nendpoints) {
        for (size_t i = 0; i < se->nendpoints; i++) {
            const mesh_se_endpoint *x = &se->endpoints[i];
            for (size_t k = 0; k < se->nports; k++) {
                mesh_endpoint *ep = ep_push(ev);
                ep->address = xstrdup(x->address);
                ep->port = se_endpoint_port(x, &se->ports[k]);
                ep->port_name = xstrdup(se->ports[k].name);
                ep->service_port = se->ports[k].port;
                mesh_labels_copy(&x->labels, &ep->labels);
                ep->service_account = xstrdup(x->service_account);
                ep->locality = xstrdup(x->locality ? x->locality : "");
                ep->weight = x->weight ? x->weight : 1;
                ep->ready = true;
            }
        }
    } else if (se->workload_selector.n) {
        store *st = &c->in->stores[MESH_KIND_POD];
        for (size_t b = 0; b < st->nbuckets; b++) {
            for (store_entry *pe = st->buckets[b]; pe; pe = pe->next) {
                const mesh_pod *p = pe->obj.u.pod;
                if (strcmp(p->meta.ns, se->meta.ns) != 0 || !p->nips ||
                    !mesh_labels_subset(&se->workload_selector, &p->meta.labels))
                    continue;
                for (size_t k = 0; k < se->nports; k++) {
                    mesh_endpoint *ep = ep_push(ev);
                    ep->address = xstrdup(p->ips[0]);
                    ep->port =
                        se->ports[k].target_port ? se->ports[k].target_port : se->ports[k].port;
                    ep->port_name = xstrdup(se->ports[k].name);
                    ep->service_port = se->ports[k].port;
                    mesh_labels_copy(&p->meta.labels, &ep->labels);
                    ep->service_account = xstrdup(p->service_account);
                    ep->pod_name = xstrdup(p->meta.name);
                    ep->node_name = xstrdup(p->node_name);
                    ep->locality = xstrdup("");
                    ep->ready = p->ready;
                }
            }
        }
    } else if ((se->resolution == MESH_RESOLUTION_DNS ||
                se->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN) &&
               svc->hostname[0] != '*') {
        /* DNS without endpoints: the host itself, resolved by the proxy. */
        for (size_t k = 0; k < se->nports; k++) {
            mesh_endpoint *ep = ep_push(ev);
            ep->address = xstrdup(svc->hostname);
            ep->port = se->ports[k].target_port ? se->ports[k].target_port : se->ports[k].port;
            ep->port_name = xstrdup(se->ports[k].name);
            ep->service_port = se->ports[k].port;
            ep->locality = xstrdup("");
            ep->ready = true;
        }
    }
}

/* istiod's AugmentLabels: every workload instance also carries its cluster, locality and
 * node as labels, so DestinationRule subsets and selectors can name them. */
static void augment_labels(const build_ctx *c, mesh_endpoint *ep)
{
    if (c->in->cluster_id && *c->in->cluster_id)
        mesh_labels_set(&ep->labels, "topology.istio.io/cluster", c->in->cluster_id);
    if (ep->node_name && *ep->node_name)
        mesh_labels_set(&ep->labels, "kubernetes.io/hostname", ep->node_name);
    const char *loc = ep->locality ? ep->locality : "";
    static const char *const keys[] = {"topology.kubernetes.io/region",
                                       "topology.kubernetes.io/zone", "topology.istio.io/subzone"};
    for (size_t i = 0; i < 3 && *loc; i++) {
        const char *slash = strchr(loc, '/');
        size_t len = slash ? (size_t)(slash - loc) : strlen(loc);
        if (len) {
            char *v = xstrndup(loc, len);
            mesh_labels_set(&ep->labels, keys[i], v);
            free(v);
        }
        loc += len + (slash ? 1 : 0);
        if (!slash)
            break;
    }
}

static int cmp_ep(const void *a, const void *b)
{
    const mesh_endpoint *x = a, *y = b;
    int c = strcmp(x->address, y->address);
    if (c)
        return c;
    if (x->service_port != y->service_port)
        return x->service_port < y->service_port ? -1 : 1;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    return 0;
}

static mesh_endpoint_shard *compute_shard(build_ctx *c, const mesh_service *svc)
{
    mesh_endpoint_shard *sh = snap_shard_new(svc->hostname, svc->meta.ns);
    ep_vec ev = {0};
    if (svc->from_service_entry) {
        add_se_endpoints(c, svc, &ev);
    } else {
        size_t lo, hi;
        const mesh_endpoint_slice **v = c->slices;
        slice_range(c->slices, c->nslices, svc->meta.ns, svc->meta.name, &lo, &hi);
        if (lo == hi) {
            /* core/v1 Endpoints only when no slice exists for the service */
            v = c->eps;
            slice_range(c->eps, c->neps, svc->meta.ns, svc->meta.name, &lo, &hi);
        }
        for (size_t i = lo; i < hi; i++)
            add_slice_endpoints(c, svc, v[i], &ev);
    }
    for (size_t i = 0; i < ev.n; i++)
        augment_labels(c, &ev.v[i]);
    if (ev.n > 1) {
        qsort(ev.v, ev.n, sizeof(mesh_endpoint), cmp_ep);
        /* The same address and port listed twice (two slices during a migration):
         * proxies reject duplicates, keep the first. */
        size_t out = 1;
        for (size_t i = 1; i < ev.n; i++) {
            if (cmp_ep(&ev.v[out - 1], &ev.v[i]) == 0)
                snap_endpoint_clear(&ev.v[i]);
            else
                ev.v[out++] = ev.v[i];
        }
        ev.n = out;
    }
    sh->eps = ev.v;
    sh->neps = ev.n;
    return sh;
}

/* ---- dirty hosts of an endpoint-only build ------------------------------------------------ */

static bool in_sorted(char **v, size_t n, const char *s)
{
    return n && bsearch(&s, v, n, sizeof(char *), util_strp_cmp) != NULL;
}

typedef struct hostset {
    char **v;
    size_t n, cap;
} hostset;

static void hostset_add(hostset *h, char *owned)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = xrealloc(h->v, h->cap * sizeof(char *));
    }
    h->v[h->n++] = owned;
}

static void dirty_from_slices(const model_build_in *in, const mesh_endpoint_slice **v, size_t n,
                              char **pods, size_t npods, char **ips, size_t nips, hostset *out)
{
    for (size_t i = 0; i < n; i++) {
        const mesh_endpoint_slice *sl = v[i];
        bool hit = false;
        for (size_t j = 0; j < sl->nendpoints && !hit; j++) {
            const mesh_slice_endpoint *se = &sl->endpoints[j];
            if (se->target_pod) {
                char *key = xasprintf("%s/%s",
                                      se->target_ns && *se->target_ns ? se->target_ns : sl->meta.ns,
                                      se->target_pod);
                hit = in_sorted(pods, npods, key);
                free(key);
            }
            for (size_t a = 0; a < se->naddresses && !hit; a++)
                hit = in_sorted(ips, nips, se->addresses[a]);
        }
        if (hit && sl->service_name)
            hostset_add(out, model_k8s_hostname(sl->service_name, sl->meta.ns, in->domain));
    }
}

static void compute_dirty(const model_build_in *in, build_ctx *c, hostset *out)
{
    for (size_t i = 0; i < in->ndirty_hosts; i++)
        hostset_add(out, xstrdup(in->dirty_hosts[i]));
    if (!in->ndirty_pods && !in->ndirty_ips)
        goto out;
    char **pods = in->dirty_pods, **ips = in->dirty_ips;
    if (in->ndirty_pods > 1)
        qsort(pods, in->ndirty_pods, sizeof(char *), util_strp_cmp);
    if (in->ndirty_ips > 1)
        qsort(ips, in->ndirty_ips, sizeof(char *), util_strp_cmp);
    dirty_from_slices(in, c->slices, c->nslices, pods, in->ndirty_pods, ips, in->ndirty_ips, out);
    dirty_from_slices(in, c->eps, c->neps, pods, in->ndirty_pods, ips, in->ndirty_ips, out);
    /* ServiceEntries selecting pods: any pod change may move their endpoints. */
    store *st = &in->stores[MESH_KIND_SERVICE_ENTRY];
    for (size_t b = 0; b < st->nbuckets; b++)
        for (store_entry *e = st->buckets[b]; e; e = e->next)
            if (e->obj.u.se->workload_selector.n && !e->obj.u.se->nendpoints)
                for (size_t h = 0; h < e->obj.u.se->nhosts; h++)
                    hostset_add(out, xstrdup(e->obj.u.se->hosts[h]));
out:
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(char *), util_strp_cmp);
}

/* ---- the build ---------------------------------------------------------------------------- */

/* The DestinationRule index of s: prev's when the rules (same_drs) and the mesh config
 * default they were indexed with are unchanged, else a new one. */
static struct mesh_dr_index *build_dr_index(const model_build_in *in, const mesh_snapshot *s,
                                            bool same_drs)
{
    const mesh_snapshot *prev = in->prev;
    const mesh_export_defaults *d = in->export_defaults;
    char *const *dflt = d ? d->dr : NULL;
    size_t ndflt = d ? d->ndr : 0;
    if (prev && same_drs && snap_dr_index_has_defaults(prev->dr_index, dflt, ndflt)) {
        snap_dr_index_retain(prev->dr_index);
        return prev->dr_index;
    }
    return snap_dr_index_new(s->drs, s->ndrs, dflt, ndflt);
}

mesh_snapshot *model_build(const model_build_in *in, char ***changed, size_t *nchanged)
{
    const mesh_snapshot *prev = in->prev;
    mesh_snapshot *s = snap_new();
    /* The JWKS table is the fetcher's, not the store's: whatever the model holds now, the
     * very table of the previous snapshot unless the fetcher handed a new one. */
    mesh_jwks_table_retain(in->jwks);
    s->jwks = in->jwks;
    uint32_t svc_kinds = (1u << MESH_KIND_SERVICE) | (1u << MESH_KIND_SERVICE_ENTRY);

    if (prev && (!in->full || !(in->kinds_changed & svc_kinds))) {
        snap_arr_retain(snap_arr_of(prev->services));
        s->services = prev->services;
        s->nservices = prev->nservices;
    } else {
        build_services(in, s);
    }
    if (prev && !in->full) {
        /* Endpoint-only: every config array is the previous one. */
        s->vss = prev->vss, s->nvss = prev->nvss;
        s->drs = prev->drs, s->ndrs = prev->ndrs;
        s->gws = prev->gws, s->ngws = prev->ngws;
        s->ses = prev->ses, s->nses = prev->nses;
        s->namespaces = prev->namespaces, s->nnamespaces = prev->nnamespaces;
        s->secrets = prev->secrets, s->nsecrets = prev->nsecrets;
        s->pas = prev->pas, s->npas = prev->npas;
        s->ras = prev->ras, s->nras = prev->nras;
        s->aps = prev->aps, s->naps = prev->naps;
        s->sidecars = prev->sidecars, s->nsidecars = prev->nsidecars;
        s->telemetries = prev->telemetries, s->ntelemetries = prev->ntelemetries;
        snap_arr_retain(snap_arr_of(s->secrets));
        snap_arr_retain(snap_arr_of(s->pas));
        snap_arr_retain(snap_arr_of(s->ras));
        snap_arr_retain(snap_arr_of(s->aps));
        snap_arr_retain(snap_arr_of(s->sidecars));
        snap_arr_retain(snap_arr_of(s->telemetries));
        snap_arr_retain(snap_arr_of(s->vss));
        snap_arr_retain(snap_arr_of(s->drs));
        s->dr_index = build_dr_index(in, s, true);
        snap_arr_retain(snap_arr_of(s->gws));
        snap_arr_retain(snap_arr_of(s->ses));
        snap_arr_retain(snap_arr_of(s->namespaces));
        snap_configz_retain(prev->configz);
        s->configz = prev->configz;
    } else {
        ing_docs docs = {0};
        s->vss = (mesh_virtual_service **)config_array_ingress(in, &docs, MESH_KIND_VIRTUAL_SERVICE,
                                                               prev ? (void **)prev->vss : NULL,
                                                               prev ? prev->nvss : 0, &s->nvss);
        s->drs = (mesh_destination_rule **)config_array(in, MESH_KIND_DESTINATION_RULE,
                                                        prev ? (void **)prev->drs : NULL,
                                                        prev ? prev->ndrs : 0, &s->ndrs);
        s->dr_index = build_dr_index(in, s, prev && s->drs == prev->drs);
        s->gws = (mesh_gateway **)config_array_ingress(in, &docs, MESH_KIND_GATEWAY,
                                                       prev ? (void **)prev->gws : NULL,
                                                       prev ? prev->ngws : 0, &s->ngws);
        s->ses = (mesh_service_entry **)config_array(in, MESH_KIND_SERVICE_ENTRY,
                                                     prev ? (void **)prev->ses : NULL,
                                                     prev ? prev->nses : 0, &s->nses);
        s->namespaces = (mesh_namespace **)config_array(
            in, MESH_KIND_NAMESPACE, prev ? (void **)prev->namespaces : NULL,
            prev ? prev->nnamespaces : 0, &s->nnamespaces);
        /* gateway credentials: read by SDS only, never shown in configz */
        s->secrets =
            (mesh_secret **)config_array(in, MESH_KIND_SECRET, prev ? (void **)prev->secrets : NULL,
                                         prev ? prev->nsecrets : 0, &s->nsecrets);
        s->pas = (mesh_peer_authentication **)config_array(in, MESH_KIND_PEER_AUTHENTICATION,
                                                           prev ? (void **)prev->pas : NULL,
                                                           prev ? prev->npas : 0, &s->npas);
        s->ras = (mesh_request_authentication **)config_array(in, MESH_KIND_REQUEST_AUTHENTICATION,
                                                              prev ? (void **)prev->ras : NULL,
                                                              prev ? prev->nras : 0, &s->nras);
        s->aps = (mesh_authorization_policy **)config_array(in, MESH_KIND_AUTHORIZATION_POLICY,
                                                            prev ? (void **)prev->aps : NULL,
                                                            prev ? prev->naps : 0, &s->naps);
        s->sidecars = (mesh_sidecar **)config_array(in, MESH_KIND_SIDECAR,
                                                    prev ? (void **)prev->sidecars : NULL,
                                                    prev ? prev->nsidecars : 0, &s->nsidecars);
        s->telemetries = (mesh_telemetry **)config_array(
            in, MESH_KIND_TELEMETRY, prev ? (void **)prev->telemetries : NULL,
            prev ? prev->ntelemetries : 0, &s->ntelemetries);
        s->configz = build_configz(in, &docs);
        ing_docs_free(&docs);
    }

    /* Nothing a shard is made of changed (a VirtualService or Gateway edit, a resync with
     * no change): every shard is the previous one. Recomputing and comparing 10,000
     * shards cost ~0.2 CPU-s per such edit (tests/bench/bench_model). */
    uint32_t shard_kinds = svc_kinds | (1u << MESH_KIND_ENDPOINTS) |
                           (1u << MESH_KIND_ENDPOINT_SLICE) | (1u << MESH_KIND_POD);
    if (prev && s->services == prev->services && !(in->kinds_changed & shard_kinds)) {
        snap_arr_retain(snap_arr_of(prev->shards));
        s->shards = prev->shards;
        s->nshards = prev->nshards;
        *changed = NULL;
        *nchanged = 0;
        return s;
    }

    build_ctx c = {.in = in};
    c.slices = sorted_slices(&in->stores[MESH_KIND_ENDPOINT_SLICE], &c.nslices);
    c.eps = sorted_slices(&in->stores[MESH_KIND_ENDPOINTS], &c.neps);
    hostset dirty = {0};
    if (prev && !in->full)
        compute_dirty(in, &c, &dirty);

    hostset ch = {0};
    snap_arr *sa = snap_arr_new(SNAP_ARR_SHARDS, s->nservices);
    for (size_t i = 0; i < s->nservices; i++) {
        const mesh_service *svc = s->services[i];
        mesh_endpoint_shard *old =
            prev ? (mesh_endpoint_shard *)mesh_snapshot_shard(prev, svc->hostname) : NULL;
        if (old && !in->full && !in_sorted(dirty.v, dirty.n, svc->hostname)) {
            snap_shard_retain(old);
            sa->items[i] = old;
            continue;
        }
        mesh_endpoint_shard *sh = compute_shard(&c, svc);
        if (old && snap_shard_equal(old, sh)) {
            snap_shard_release(sh);
            snap_shard_retain(old);
            sa->items[i] = old;
            continue;
        }
        sh->version = ++*in->shard_seq;
        sa->items[i] = sh;
        hostset_add(&ch, xstrdup(svc->hostname));
    }
    s->shards = (mesh_endpoint_shard **)sa->items;
    s->nshards = s->nservices;
    /* Removed services: their endpoints are gone too. */
    for (size_t i = 0; prev && i < prev->nshards; i++)
        if (!mesh_snapshot_shard(s, prev->shards[i]->hostname))
            hostset_add(&ch, xstrdup(prev->shards[i]->hostname));

    for (size_t i = 0; i < dirty.n; i++)
        free(dirty.v[i]);
    free(dirty.v);
    free(c.slices);
    free(c.eps);
    free(c.ips);
    *changed = ch.v;
    *nchanged = ch.n;
    return s;
}
