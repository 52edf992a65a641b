/* test_stream: the ADS protocol state machines (xds/ads/stream.c) without gRPC.
 *
 * The generator, resources and metrics are replaced by small fakes in this file so every
 * rule can be checked in isolation: the initial answer, ACK, NACK not resent, stale nonce
 * ignored, subscription change, unchanged pushes skipped, EDS-only pushes filtered by
 * host, Delta subscribe/unsubscribe/removed_resources/initial_resource_versions, the
 * hand-written wire encoding (decoded back with protobuf-c), and bad nodes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"
#include "xds/ads/stream_internal.h"
#include "xds/gen/gen.h"

/* ---- fakes: resources, generator, labels, metrics ------------------------------------- */

xds_resource *xds_resource_new(const char *type_url, const char *name, const void *msg)
{
    (void)type_url;
    (void)name;
    (void)msg;
    return NULL;
}

static xds_resource *fake_res(const char *type_url, const char *name, const char *content)
{
    xds_resource *r = xcalloc(1, sizeof(*r));
    atomic_init(&r->refs, 1);
    r->name = xstrdup(name);
    r->type_url = type_url;
    r->len = strlen(content);
    r->bytes = (uint8_t *)xstrdup(content);
    r->hash = util_hash64(content, r->len, 0);
    return r;
}

void xds_resource_retain(xds_resource *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void xds_resource_release(xds_resource *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->name);
    free(r->bytes);
    free(r);
}

void xds_resource_set_free(xds_resource_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        xds_resource_release(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

/* The fake world: per type, up to 8 (name, content) pairs sorted by name. */
#define WORLD_MAX 8
static struct {
    const char *name;
    const char *content;
} world[XT_COUNT][WORLD_MAX];
static int gen_calls;
/* When set, the generator hands out one shared resource per (type, slot, content), as the
 * real bytes cache does, so equal sets are equal pointers (the shared-body cache's key). */
static bool fake_share;
static xds_resource *shared_res[XT_COUNT][WORLD_MAX];

static void world_set(int t, const char *name, const char *content)
{
    for (int i = 0; i < WORLD_MAX; i++) {
        if (world[t][i].name != NULL && strcmp(world[t][i].name, name) == 0) {
            world[t][i].content = content;
            if (content == NULL)
                world[t][i].name = NULL;
            return;
        }
    }
    for (int i = 0; i < WORLD_MAX && content != NULL; i++)
        if (world[t][i].name == NULL) {
            world[t][i].name = name;
            world[t][i].content = content;
            return;
        }
}

static int cmp_res(const void *a, const void *b)
{
    return strcmp((*(xds_resource *const *)a)->name, (*(xds_resource *const *)b)->name);
}

xds_gen *xds_gen_new(void)
{
    return NULL;
}
void xds_gen_free(xds_gen *g)
{
    (void)g;
}

bool xds_type_is_wildcard(const xds_proxy *p, const char *type_url)
{
    if (p->flavour == XDS_FLAVOUR_GRPC)
        return false;
    return strcmp(type_url, XDS_TYPE_LISTENER) == 0 || strcmp(type_url, XDS_TYPE_CLUSTER) == 0;
}

int xds_gen_generate(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *type_url,
                     const char *const *names, size_t nnames, xds_resource_set *out)
{
    (void)g;
    (void)p;
    (void)s;
    int t = xds_type_index(type_url);
    gen_calls++;
    out->items = xcalloc(WORLD_MAX, sizeof(*out->items));
    out->n = 0;
    for (int i = 0; i < WORLD_MAX; i++) {
        if (world[t][i].name == NULL)
            continue;
        bool want = names == NULL;
        for (size_t j = 0; j < nnames && !want; j++)
            want = strcmp(names[j], world[t][i].name) == 0;
        if (!want)
            continue;
        xds_resource **sr = &shared_res[t][i];
        if (fake_share && (*sr == NULL || strcmp((*sr)->name, world[t][i].name) != 0 ||
                           (*sr)->len != strlen(world[t][i].content) ||
                           memcmp((*sr)->bytes, world[t][i].content, (*sr)->len) != 0)) {
            xds_resource_release(*sr);
            *sr = fake_res(type_url, world[t][i].name, world[t][i].content);
        }
        if (fake_share)
            xds_resource_retain(*sr);
        out->items[out->n++] =
            fake_share ? *sr : fake_res(type_url, world[t][i].name, world[t][i].content);
    }
    qsort(out->items, out->n, sizeof(*out->items), cmp_res);
    return 0;
}

/* The kinds each type depends on, per test (default: every kind). */
static uint32_t fake_type_kinds[XT_COUNT] = {~0u, ~0u, ~0u, ~0u, ~0u};

uint32_t xds_type_kinds(const xds_proxy *p, const mesh_snapshot *s, const char *type_url)
{
    (void)p;
    (void)s;
    return fake_type_kinds[xds_type_index(type_url)];
}

const char *xds_cluster_hostname(const char *cluster_name)
{
    const char *p = cluster_name;
    for (int i = 0; i < 3; i++) {
        p = strchr(p, '|');
        if (p == NULL)
            return NULL;
        p++;
    }
    return p;
}

cJSON *xds_resource_to_json(const xds_resource *r)
{
    (void)r;
    return NULL;
}

int mesh_labels_from_json(const cJSON *obj, mesh_labels *out)
{
    memset(out, 0, sizeof(*out));
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        out->keys = xrealloc(out->keys, (out->n + 1) * sizeof(char *));
        out->vals = xrealloc(out->vals, (out->n + 1) * sizeof(char *));
        out->keys[out->n] = xstrdup(c->string);
        out->vals[out->n] = xstrdup(c->valuestring);
        out->n++;
    }
    return 0;
}

void mesh_labels_free(mesh_labels *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->vals[i]);
    }
    free(l->keys);
    free(l->vals);
    memset(l, 0, sizeof(*l));
}

/* Metrics: counters keyed by "name{labels}". */
struct metric {
    const char *name;
};
#define MAXM 64
static struct {
    char key[128];
    double v;
} mvals[MAXM];
static struct metric metrics_pool[16];
static int nmetrics;

static metric *fake_metric(const char *name)
{
    metrics_pool[nmetrics].name = name;
    return &metrics_pool[nmetrics++];
}
metric *metric_counter(const char *n, const char *h, const char *l)
{
    (void)h;
    (void)l;
    return fake_metric(n);
}
metric *metric_gauge(const char *n, const char *h, const char *l)
{
    (void)h;
    (void)l;
    return fake_metric(n);
}
metric *metric_histogram(const char *n, const char *h, const char *l, const double *b, size_t nb)
{
    (void)h;
    (void)l;
    (void)b;
    (void)nb;
    return fake_metric(n);
}

static double *mslot(metric *m, const char *labels)
{
    char key[128];
    snprintf(key, sizeof(key), "%s{%s}", m->name, labels ? labels : "");
    for (int i = 0; i < MAXM; i++)
        if (strcmp(mvals[i].key, key) == 0)
            return &mvals[i].v;
    for (int i = 0; i < MAXM; i++)
        if (mvals[i].key[0] == '\0') {
            snprintf(mvals[i].key, sizeof(mvals[i].key), "%s", key);
            return &mvals[i].v;
        }
    return &mvals[0].v;
}
void metric_add(metric *m, const char *l, double v)
{
    *mslot(m, l) += v;
}
void metric_set(metric *m, const char *l, double v)
{
    *mslot(m, l) = v;
}
/* Counts observations under the metric's key and sums their values under "<name>_sum". */
static metric config_size_sum = {"pilot_xds_config_size_bytes_sum"};
void metric_observe(metric *m, const char *l, double v)
{
    *mslot(m, l) += 1;
    if (m == xds_m.config_size)
        *mslot(&config_size_sum, l) += v;
}
double metric_value(metric *m, const char *l)
{
    return *mslot(m, l);
}

/* ---- helpers --------------------------------------------------------------------------- */

static mesh_snapshot snap1 = {.version = 1, .version_str = "2026-01-01T00:00:00Z/1"};
static mesh_snapshot snap2 = {.version = 2, .version_str = "2026-01-01T00:00:01Z/2"};
static xds_stream_env env = {NULL, "cluster.local"};

typedef struct {
    Envoy__Config__Core__V3__Node node;
    Google__Protobuf__Struct md;
    Google__Protobuf__Struct__FieldsEntry gen_entry, *entries[1];
    Google__Protobuf__Value gen_val;
} fake_node;

static void node_init(fake_node *n, const char *id, bool grpc)
{
    envoy__config__core__v3__node__init(&n->node);
    google__protobuf__struct__init(&n->md);
    n->node.id = (char *)id;
    n->node.metadata = &n->md;
    if (grpc) {
        google__protobuf__struct__fields_entry__init(&n->gen_entry);
        google__protobuf__value__init(&n->gen_val);
        n->gen_val.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        n->gen_val.string_value = "grpc";
        n->gen_entry.key = "GENERATOR";
        n->gen_entry.value = &n->gen_val;
        n->entries[0] = &n->gen_entry;
        n->md.fields = n->entries;
        n->md.n_fields = 1;
    }
}

static int sotw(xds_stream *st, mesh_snapshot *snap, Envoy__Config__Core__V3__Node *node, int t,
                const char *nonce, const char *const *names, size_t n, const char *error)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Google__Rpc__Status status;
    envoy__service__discovery__v3__discovery_request__init(&req);
    req.node = node;
    req.type_url = (char *)xds_type_url(t);
    req.response_nonce = (char *)(nonce ? nonce : "");
    req.resource_names = (char **)names;
    req.n_resource_names = n;
    if (error != NULL) {
        google__rpc__status__init(&status);
        status.code = 3;
        status.message = (char *)error;
        req.error_detail = &status;
    }
    return xds_stream_on_request(st, &env, snap, &req);
}

/* Pops and decodes one SotW response (NULL when none). */
static Envoy__Service__Discovery__V3__DiscoveryResponse *pop_sotw(xds_stream *st)
{
    xds_msg *m = xds_stream_pop(st);
    if (m == NULL)
        return NULL;
    size_t len;
    uint8_t *b = xds_msg_flatten(m, &len);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b);
    assert_non_null(r);
    free(b);
    xds_msg_free(m);
    return r;
}

static Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *pop_delta(xds_stream *st)
{
    xds_msg *m = xds_stream_pop(st);
    if (m == NULL)
        return NULL;
    size_t len;
    uint8_t *b = xds_msg_flatten(m, &len);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, b);
    assert_non_null(r);
    free(b);
    xds_msg_free(m);
    return r;
}

static void free_sotw(Envoy__Service__Discovery__V3__DiscoveryResponse *r)
{
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static int setup(void **state)
{
    (void)state;
    memset(world, 0, sizeof(world));
    memset(mvals, 0, sizeof(mvals));
    nmetrics = 0;
    memset(&xds_m, 0, sizeof(xds_m));
    xds_metrics_init();
    world_set(XT_CDS, "outbound|80||a.default.svc.cluster.local", "cluster-a");
    world_set(XT_CDS, "outbound|80||b.default.svc.cluster.local", "cluster-b");
    world_set(XT_EDS, "outbound|80||a.default.svc.cluster.local", "eds-a");
    world_set(XT_EDS, "outbound|80||b.default.svc.cluster.local", "eds-b");
    world_set(XT_LDS, "a.default.svc.cluster.local:80", "listener-a");
    return 0;
}

#define ID_OK "sidecar~10.0.0.1~pod-1.default~default.svc.cluster.local"
#define CA "outbound|80||a.default.svc.cluster.local"
#define CB "outbound|80||b.default.svc.cluster.local"

/* ---- SotW ------------------------------------------------------------------------------ */

static void test_sotw_initial_and_ack(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, false, 1, "ipv4:127.0.0.1:1");
    assert_int_equal(sotw(&st, &snap1, &n.node, XT_CDS, "", NULL, 0, NULL), 0);
    assert_string_equal(st.conn_id, "pod-1.default-1");
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = pop_sotw(&st);
    assert_non_null(r);
    assert_string_equal(r->version_info, snap1.version_str);
    assert_string_equal(r->type_url, XDS_TYPE_CLUSTER);
    assert_int_equal(r->n_resources, 2); /* wildcard: everything */
    assert_string_equal(r->resources[0]->type_url, XDS_TYPE_CLUSTER);
    assert_int_equal(r->resources[0]->value.len, strlen("cluster-a"));
    assert_memory_equal(r->resources[0]->value.data, "cluster-a", 9);
    assert_true(r->nonce[0] != '\0');
    /* pilot_xds_config_size_bytes: one observation of the two resources' 18 bytes */
    assert_true(metric_value(xds_m.config_size, XDS_TYPE_CLUSTER) == 1);
    assert_true(metric_value(&config_size_sum, XDS_TYPE_CLUSTER) == 18);
    char nonce[64];
    snprintf(nonce, sizeof(nonce), "%s", r->nonce);
    free_sotw(r);
    assert_null(xds_stream_pop(&st));

    /* ACK without change: nothing */
    assert_int_equal(sotw(&st, &snap1, NULL, XT_CDS, nonce, NULL, 0, NULL), 0);
    assert_null(xds_stream_pop(&st));
    assert_string_equal(st.t[XT_CDS].nonce_acked, nonce);
    assert_null(st.t[XT_CDS].last_error);

    /* empty nonce again (reconnect semantics): always answered, even when unchanged */
    assert_int_equal(sotw(&st, &snap1, NULL, XT_CDS, "", NULL, 0, NULL), 0);
    r = pop_sotw(&st);
    assert_non_null(r);
    assert_string_not_equal(r->nonce, nonce); /* nonces are unique */
    free_sotw(r);
    xds_stream_cleanup(&st);
}

static void test_sotw_nack_and_stale(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, false, 2, "p");
    const char *names[] = {CA};
    sotw(&st, &snap1, &n.node, XT_EDS, "", names, 1, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = pop_sotw(&st);
    assert_int_equal(r->n_resources, 1);
    char nonce[64];
    snprintf(nonce, sizeof(nonce), "%s", r->nonce);
    free_sotw(r);

    /* NACK: counted, error kept, nothing resent */
    assert_int_equal(sotw(&st, &snap1, NULL, XT_EDS, nonce, names, 1, "bad endpoint"), 0);
    assert_null(xds_stream_pop(&st));
    assert_string_equal(st.t[XT_EDS].last_error, "bad endpoint");
    assert_true(metric_value(xds_m.rejects, "eds") == 1);
    assert_string_equal(st.t[XT_EDS].nonce_acked, "");

    /* stale nonce with a new subscription: ignored */
    const char *both[] = {CA, CB};
    assert_int_equal(sotw(&st, &snap1, NULL, XT_EDS, "not-a-nonce", both, 2, NULL), 0);
    assert_null(xds_stream_pop(&st));
    assert_int_equal(st.t[XT_EDS].nnames, 1);
    assert_true(metric_value(xds_m.expired_nonce, "eds") == 1);

    /* matching nonce with a changed subscription: answered with the new set */
    assert_int_equal(sotw(&st, &snap1, NULL, XT_EDS, nonce, both, 2, NULL), 0);
    r = pop_sotw(&st);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 2);
    free_sotw(r);
    assert_null(st.t[XT_EDS].last_error); /* an ACK clears the error */
    xds_stream_cleanup(&st);
}

static void test_sotw_push(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, false, 3, "p");
    const char *names[] = {CA};
    sotw(&st, &snap1, &n.node, XT_CDS, "", NULL, 0, NULL);
    sotw(&st, &snap1, NULL, XT_EDS, "", names, 1, NULL);
    sotw(&st, &snap1, NULL, XT_LDS, "", NULL, 0, NULL);
    for (int i = 0; i < 3; i++)
        free_sotw(pop_sotw(&st));

    /* nothing changed: a full push sends nothing */
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 0);
    assert_null(xds_stream_pop(&st));

    /* one cluster changed: CDS only, full set, new version */
    world_set(XT_CDS, CB, "cluster-b2");
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 1);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = pop_sotw(&st);
    assert_string_equal(r->type_url, XDS_TYPE_CLUSTER);
    assert_string_equal(r->version_info, snap2.version_str);
    assert_int_equal(r->n_resources, 2);
    free_sotw(r);

    /* order CDS, EDS, LDS when several change */
    world_set(XT_CDS, CA, "cluster-a2");
    world_set(XT_EDS, CA, "eds-a2");
    world_set(XT_LDS, "a.default.svc.cluster.local:80", "listener-a2");
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 3);
    const char *order[] = {XDS_TYPE_CLUSTER, XDS_TYPE_ENDPOINT, XDS_TYPE_LISTENER};
    for (int i = 0; i < 3; i++) {
        r = pop_sotw(&st);
        assert_string_equal(r->type_url, order[i]);
        free_sotw(r);
    }

    /* EDS-only push: only for a watched cluster's host */
    world_set(XT_EDS, CA, "eds-a3");
    char *other[] = {"b.default.svc.cluster.local"};
    assert_int_equal(xds_stream_push(&st, &env, &snap2, false, other, 1, 1), 0);
    char *mine[] = {"a.default.svc.cluster.local"};
    world_set(XT_CDS, CA, "cluster-a3"); /* changed, but an EDS push sends only EDS */
    assert_int_equal(xds_stream_push(&st, &env, &snap2, false, mine, 1, 1), 1);
    r = pop_sotw(&st);
    assert_string_equal(r->type_url, XDS_TYPE_ENDPOINT);
    free_sotw(r);

    /* a removed cluster is omitted from the next full set */
    world_set(XT_CDS, CB, NULL);
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 1);
    r = pop_sotw(&st);
    assert_int_equal(r->n_resources, 1);
    free_sotw(r);
    xds_stream_cleanup(&st);
}

static void test_sotw_queue_coalesces(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, false, 4, "p");
    sotw(&st, &snap1, &n.node, XT_CDS, "", NULL, 0, NULL);
    /* not written yet: a newer CDS replaces the queued one */
    world_set(XT_CDS, CA, "cluster-a9");
    xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1);
    assert_int_equal(st.outq_len, 1);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = pop_sotw(&st);
    assert_string_equal(r->version_info, snap2.version_str);
    assert_string_equal(r->nonce, st.t[XT_CDS].nonce_sent);
    free_sotw(r);
    xds_stream_cleanup(&st);
}

/* RDS and EDS pushes send only what changed (gRPC and Envoy keep the rest); a removal
 * sends the whole set again. A full push skips the types its changed kinds cannot alter. */
static void test_sotw_partial_and_kinds(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, false, 6, "p");
    world_set(XT_RDS, "r1", "route-1");
    world_set(XT_RDS, "r2", "route-2");
    world_set(XT_RDS, "r3", "route-3");
    const char *routes[] = {"r1", "r2", "r3"};
    sotw(&st, &snap1, &n.node, XT_CDS, "", NULL, 0, NULL);
    sotw(&st, &snap1, NULL, XT_RDS, "", routes, 3, NULL);
    free_sotw(pop_sotw(&st));
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = pop_sotw(&st);
    assert_int_equal(r->n_resources, 3); /* a new subscription gets everything */
    free_sotw(r);

    world_set(XT_RDS, "r2", "route-2b");
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 1);
    r = pop_sotw(&st);
    assert_string_equal(r->type_url, XDS_TYPE_ROUTE);
    assert_int_equal(r->n_resources, 1);
    free_sotw(r);
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 0);

    world_set(XT_RDS, "r3", NULL);
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 1);
    r = pop_sotw(&st);
    assert_int_equal(r->n_resources, 2); /* r1 and r2: the whole current set */
    free_sotw(r);

    /* CDS depends (in this fake) on DestinationRules only */
    fake_type_kinds[XT_CDS] = 1u << MESH_KIND_DESTINATION_RULE;
    world_set(XT_CDS, CA, "cluster-a7");
    world_set(XT_RDS, "r1", "route-1b");
    assert_int_equal(
        xds_stream_push_kinds(&st, &env, &snap2, true, 1u << MESH_KIND_VIRTUAL_SERVICE, NULL, 0, 1),
        1);
    r = pop_sotw(&st);
    assert_string_equal(r->type_url, XDS_TYPE_ROUTE);
    free_sotw(r);
    assert_null(xds_stream_pop(&st));
    assert_int_equal(xds_stream_push_kinds(&st, &env, &snap2, true,
                                           1u << MESH_KIND_DESTINATION_RULE, NULL, 0, 1),
                     1);
    r = pop_sotw(&st);
    assert_string_equal(r->type_url, XDS_TYPE_CLUSTER);
    assert_int_equal(r->n_resources, 2); /* CDS is state of the world: always whole */
    free_sotw(r);
    fake_type_kinds[XT_CDS] = ~0u;
    xds_stream_cleanup(&st);
}

static void test_no_snapshot_answers_on_first_push(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, "sidecar~10.0.0.1~client.default~default.svc.cluster.local", true);
    xds_stream_init(&st, false, 5, "p");
    const char *names[] = {"missing.default.svc.cluster.local:80"};
    assert_int_equal(sotw(&st, NULL, &n.node, XT_LDS, "", names, 1, NULL), 0);
    assert_null(xds_stream_pop(&st));
    assert_int_equal(st.proxy->flavour, XDS_FLAVOUR_GRPC);
    /* gRPC names what it wants: the answer exists even though it is empty */
    assert_int_equal(xds_stream_push(&st, &env, &snap1, true, NULL, 0, 1), 1);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = pop_sotw(&st);
    assert_int_equal(r->n_resources, 0);
    free_sotw(r);
    xds_stream_cleanup(&st);
}

/* ---- node errors ----------------------------------------------------------------------- */

static void test_bad_nodes(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        bool null_node;
        const char *want;
    } cases[] = {
        {"sidecar~10.0.0.1~pod.default", false,
         "node ID \"sidecar~10.0.0.1~pod.default\": must have 4 parts"},
        {"proxy~10.0.0.1~pod.default~default.svc.cluster.local", false,
         "invalid node type \"proxy\""},
        {"sidecar~notanip~pod.default~default.svc.cluster.local", false, "no valid IP address"},
        {"", false, "node ID \"\""},
        {NULL, true, "node: missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xds_stream st;
        fake_node n;
        node_init(&n, cases[i].id, false);
        xds_stream_init(&st, i % 2 == 1, 10 + i, "p");
        int rc;
        if (st.delta) {
            Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req;
            envoy__service__discovery__v3__delta_discovery_request__init(&req);
            req.node = cases[i].null_node ? NULL : &n.node;
            req.type_url = XDS_TYPE_CLUSTER;
            rc = xds_stream_on_request(&st, &env, &snap1, &req);
        } else {
            rc = sotw(&st, &snap1, cases[i].null_node ? NULL : &n.node, XT_CDS, "", NULL, 0, NULL);
        }
        assert_int_equal(rc, -1);
        assert_int_equal(st.close_code, 3);
        if (strstr(st.close_msg, cases[i].want) == NULL)
            fail_msg("case %zu: %s does not contain %s", i, st.close_msg, cases[i].want);
        assert_null(xds_stream_pop(&st));
        xds_stream_cleanup(&st);
    }
}

/* ---- Delta ----------------------------------------------------------------------------- */

static int
delta(xds_stream *st, Envoy__Config__Core__V3__Node *node, int t, const char *nonce,
      const char *const *sub, size_t nsub, const char *const *unsub, size_t nunsub,
      Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry **irv,
      size_t nirv)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req;
    envoy__service__discovery__v3__delta_discovery_request__init(&req);
    req.node = node;
    req.type_url = (char *)xds_type_url(t);
    req.response_nonce = (char *)(nonce ? nonce : "");
    req.resource_names_subscribe = (char **)sub;
    req.n_resource_names_subscribe = nsub;
    req.resource_names_unsubscribe = (char **)unsub;
    req.n_resource_names_unsubscribe = nunsub;
    req.initial_resource_versions = irv;
    req.n_initial_resource_versions = nirv;
    return xds_stream_on_request(st, &env, &snap1, &req);
}

static void test_delta(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, true, 20, "p");

    /* wildcard CDS; the client already has cluster-a at our version */
    char ver[24];
    snprintf(ver, sizeof(ver), "%016llx", (unsigned long long)util_hash64("cluster-a", 9, 0));
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry e, *ep = &e;
    envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
        &e);
    e.key = CA;
    e.value = ver;
    assert_int_equal(delta(&st, &n.node, XT_CDS, "", NULL, 0, NULL, 0, &ep, 1), 0);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = pop_delta(&st);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 1); /* only b: a matched its initial version */
    assert_string_equal(r->resources[0]->name, CB);
    assert_non_null(r->resources[0]->resource);
    assert_int_equal(strlen(r->resources[0]->version), 16);
    assert_string_equal(r->resources[0]->resource->type_url, XDS_TYPE_CLUSTER);
    assert_memory_equal(r->resources[0]->resource->value.data, "cluster-b", 9);
    char nonce[64];
    snprintf(nonce, sizeof(nonce), "%s", r->nonce);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);

    /* ACK: nothing */
    assert_int_equal(delta(&st, NULL, XT_CDS, nonce, NULL, 0, NULL, 0, NULL, 0), 0);
    assert_null(xds_stream_pop(&st));
    assert_string_equal(st.t[XT_CDS].nonce_acked, nonce);

    /* EDS: subscribe a and b, then unsubscribe a */
    const char *ab[] = {CA, CB};
    delta(&st, NULL, XT_EDS, "", ab, 2, NULL, 0, NULL, 0);
    r = pop_delta(&st);
    assert_int_equal(r->n_resources, 2);
    snprintf(nonce, sizeof(nonce), "%s", r->nonce);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
    const char *a[] = {CA};
    delta(&st, NULL, XT_EDS, nonce, NULL, 0, a, 1, NULL, 0);
    assert_null(xds_stream_pop(&st)); /* unsubscribe needs no answer */
    assert_int_equal(st.t[XT_EDS].nnames, 1);

    /* a changes: not subscribed any more, nothing sent; b removed: removed_resources */
    world_set(XT_EDS, CA, "eds-a-new");
    char *ha[] = {"a.default.svc.cluster.local"};
    assert_int_equal(xds_stream_push(&st, &env, &snap2, false, ha, 1, 1), 0);
    world_set(XT_EDS, CB, NULL);
    world_set(XT_CDS, CB, NULL);
    assert_int_equal(xds_stream_push(&st, &env, &snap2, true, NULL, 0, 1), 2);
    r = pop_delta(&st);
    assert_string_equal(r->type_url, XDS_TYPE_CLUSTER);
    assert_int_equal(r->n_resources, 0);
    assert_int_equal(r->n_removed_resources, 1);
    assert_string_equal(r->removed_resources[0], CB);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
    r = pop_delta(&st);
    assert_string_equal(r->type_url, XDS_TYPE_ENDPOINT);
    assert_int_equal(r->n_removed_resources, 1);
    assert_string_equal(r->removed_resources[0], CB);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);

    /* subscribing to a missing name is answered with it removed (the client stops waiting) */
    const char *missing[] = {"outbound|80||nope.default.svc.cluster.local"};
    delta(&st, NULL, XT_EDS, "", missing, 1, NULL, 0, NULL, 0);
    r = pop_delta(&st);
    assert_non_null(r);
    assert_int_equal(r->n_removed_resources, 1);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
    xds_stream_cleanup(&st);
}

/* The outbox byte cap: one message alone is always queued, a backlog past the cap (the
 * outbox plus the message being written) ends the stream with RESOURCE_EXHAUSTED, reason
 * "outbox", naming the node and the limit; what the cap refused is not queued. */
static void test_outbox_bytes_cap(void **state)
{
    (void)state;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, true, 21, "p");
    st.outq_max_bytes = 10;
    const char *ab[] = {CA, CB};
    assert_int_equal(delta(&st, &n.node, XT_EDS, "", ab, 2, NULL, 0, NULL, 0), 0);
    assert_int_equal(st.outq_len, 1); /* alone it is queued, over the cap or not */
    size_t one = st.outq_bytes;
    assert_true(one > 10);
    st.outq_max_bytes = one + one / 2;
    char want[64];
    snprintf(want, sizeof(want), "limit of %zu", st.outq_max_bytes);

    /* written (popped, in flight) and asked again: the in-flight bytes count too */
    xds_msg *m = xds_stream_pop(&st);
    assert_int_equal(st.outq_bytes, 0);
    st.inflight_bytes = m->total;
    delta(&st, NULL, XT_EDS, "", NULL, 0, ab, 2, NULL, 0);
    assert_int_equal(delta(&st, NULL, XT_EDS, "", ab, 2, NULL, 0, NULL, 0), 0);
    assert_int_equal(st.close_code, 8);
    assert_string_equal(st.close_reason, "outbox");
    assert_non_null(strstr(st.close_msg, ID_OK));
    assert_non_null(strstr(st.close_msg, want));
    assert_int_equal(st.outq_len, 0); /* refused, not queued */
    xds_msg_free(m);
    xds_stream_cleanup(&st);

    /* the default cap is far above a normal answer */
    xds_stream_init(&st, true, 22, "p");
    assert_int_equal(delta(&st, &n.node, XT_EDS, "", ab, 2, NULL, 0, NULL, 0), 0);
    delta(&st, NULL, XT_EDS, "", NULL, 0, ab, 2, NULL, 0);
    assert_int_equal(delta(&st, NULL, XT_EDS, "", ab, 2, NULL, 0, NULL, 0), 0);
    assert_int_equal(st.outq_len, 2);
    assert_int_equal(st.close_code, 0);
    assert_null(st.close_reason);
    xds_stream_cleanup(&st);
}

/* initial_resource_versions: many entries, unsorted, a name twice (the last wins), merged
 * at once: the answer sends only what the client lacks and removes every name it holds
 * that we do not generate, in time linear in the entries. Above the cap the stream is
 * refused with the reason. */
static void test_delta_initial_versions(void **state)
{
    (void)state;
    enum { N = 60000 };
    typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry Irv;
    Irv *ev = calloc(N, sizeof(*ev));
    Irv **ep = calloc(N, sizeof(*ep));
    char(*names)[40] = calloc(N, sizeof(*names));
    char ver[24];
    snprintf(ver, sizeof(ver), "%016llx", (unsigned long long)util_hash64("cluster-a", 9, 0));
    for (int i = 0; i < N; i++) {
        envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
            &ev[i]);
        snprintf(names[i], sizeof(names[i]), "outbound|80||s%05d.x", N - i); /* descending */
        ev[i].key = names[i];
        ev[i].value = "0000000000000001";
        ep[i] = &ev[i];
    }
    ev[N - 2].key = CA; /* first: a stale version of cluster-a */
    ev[N - 1].key = CA; /* then the current one: a is not resent */
    ev[N - 1].value = ver;
    xds_stream st;
    fake_node n;
    node_init(&n, ID_OK, false);
    xds_stream_init(&st, true, 21, "p");
    assert_int_equal(delta(&st, &n.node, XT_CDS, "", NULL, 0, NULL, 0, ep, N), 0);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = pop_delta(&st);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 1);
    assert_string_equal(r->resources[0]->name, CB);
    assert_int_equal(r->n_removed_resources, N - 2);
    for (size_t i = 1; i < r->n_removed_resources; i++)
        assert_true(strcmp(r->removed_resources[i - 1], r->removed_resources[i]) < 0);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
    const xds_type_state *ts = &st.t[XT_CDS];
    assert_int_equal(ts->nknown, 2); /* a (announced, current) and b (sent) */
    xds_stream_cleanup(&st);

    /* above the cap: refused, naming the field and the limit */
    Irv **many = calloc(100001, sizeof(*many));
    for (int i = 0; i < 100001; i++)
        many[i] = &ev[i % N];
    xds_stream_init(&st, true, 22, "p");
    assert_int_equal(delta(&st, &n.node, XT_CDS, "", NULL, 0, NULL, 0, many, 100001), -1);
    assert_int_equal(st.close_code, 3);
    assert_non_null(strstr(st.close_msg, "initial_resource_versions: 100001 entries"));
    xds_stream_cleanup(&st);
    free(many);
    free(names);
    free(ep);
    free(ev);
}

/* ---- shared bodies ---------------------------------------------------------------------- */

/* One whole response of stream st (flattened), and the length before its nonce (field 5,
 * the last one here). */
static uint8_t *pop_raw(xds_stream *st, bool delta, size_t *len, size_t *body_len)
{
    xds_msg *m = xds_stream_pop(st);
    assert_non_null(m);
    uint8_t *b = xds_msg_flatten(m, len);
    xds_msg_free(m);
    const char *nonce;
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *d = NULL;
    if (delta) {
        d = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, *len, b);
        assert_non_null(d);
        assert_int_equal(d->n_removed_resources, 0);
        nonce = d->nonce;
    } else {
        r = envoy__service__discovery__v3__discovery_response__unpack(NULL, *len, b);
        assert_non_null(r);
        nonce = r->nonce;
    }
    size_t nl = strlen(nonce);
    assert_true(nl > 0 && nl < 128);
    *body_len = *len - 2 - nl;
    assert_int_equal(b[*body_len], (5 << 3) | 2);
    assert_int_equal(b[*body_len + 1], nl);
    assert_memory_equal(b + *body_len + 2, nonce, nl);
    if (d != NULL)
        envoy__service__discovery__v3__delta_discovery_response__free_unpacked(d, NULL);
    if (r != NULL)
        free_sotw(r);
    return b;
}

static void first_request(xds_stream *st, const xds_stream_env *e, mesh_snapshot *snap, int t)
{
    fake_node n;
    node_init(&n, ID_OK, false);
    if (st->delta) {
        Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req;
        envoy__service__discovery__v3__delta_discovery_request__init(&req);
        req.node = &n.node;
        req.type_url = (char *)xds_type_url(t);
        assert_int_equal(xds_stream_on_request(st, e, snap, &req), 0);
    } else {
        Envoy__Service__Discovery__V3__DiscoveryRequest req;
        envoy__service__discovery__v3__discovery_request__init(&req);
        req.node = &n.node;
        req.type_url = (char *)xds_type_url(t);
        assert_int_equal(xds_stream_on_request(st, e, snap, &req), 0);
    }
}

/* Streams with the same set get one encoding (from the second sighting on), byte for byte
 * what a stream without the cache is sent but for the nonce; SotW and Delta apart; a new
 * snapshot version or a changed resource is a new set. */
static void test_shared_bodies(void **state)
{
    (void)state;
    fake_share = true;
    xds_stream_env shared = {NULL, "cluster.local", xds_body_cache_new(1 << 20)};
    for (int delta = 0; delta <= 1; delta++) {
        xds_stream ref, st[3];
        size_t ref_len, ref_body;
        xds_stream_init(&ref, delta, 100, "p");
        first_request(&ref, &env, &snap1, XT_CDS);
        uint8_t *want = pop_raw(&ref, delta, &ref_len, &ref_body);
        for (int i = 0; i < 3; i++) {
            size_t len, body;
            xds_stream_init(&st[i], delta, 101 + (uint64_t)i, "p");
            first_request(&st[i], &shared, &snap1, XT_CDS);
            uint8_t *got = pop_raw(&st[i], delta, &len, &body);
            assert_int_equal(body, ref_body);
            assert_memory_equal(got, want, ref_body);
            free(got);
            xds_body_stats bs;
            xds_body_cache_stats(shared.bodies, &bs);
            /* the first stream is encoded alone, the second builds the body, the third hits */
            assert_int_equal(bs.first_seen, 1 + 2 * (uint64_t)delta);
            assert_int_equal(bs.builds, (uint64_t)(i >= 1) + (uint64_t)delta);
            assert_int_equal(bs.hits, (uint64_t)(i >= 2) + (uint64_t)delta);
        }
        /* a push at a new version: a new set (seen once), still the right bytes */
        world_set(XT_CDS, CB, "cluster-b2");
        assert_int_equal(xds_stream_push(&st[0], &shared, &snap2, true, NULL, 0, 0), 1);
        size_t len, body;
        uint8_t *got = pop_raw(&st[0], delta, &len, &body);
        assert_true(memmem(got, body, "cluster-b2", 10) != NULL);
        assert_true(memmem(got, body, snap2.version_str, strlen(snap2.version_str)) != NULL);
        free(got);
        world_set(XT_CDS, CB, "cluster-b");
        free(want);
        xds_stream_cleanup(&ref);
        for (int i = 0; i < 3; i++)
            xds_stream_cleanup(&st[i]);
    }
    xds_body_stats bs;
    xds_body_cache_stats(shared.bodies, &bs);
    /* SotW: snap1 encoded, snap2 seen once; Delta: snap1 encoded (its snap2 push carries
     * only the changed resource: per stream, never looked up) */
    assert_true(bs.entries == 3 && bs.bytes > 0);
    xds_body_cache_free(shared.bodies);
    for (int t = 0; t < XT_COUNT; t++)
        for (int i = 0; i < WORLD_MAX; i++) {
            xds_resource_release(shared_res[t][i]);
            shared_res[t][i] = NULL;
        }
    fake_share = false;
}

/* A cache over its byte budget keeps only its newest entry; a body evicted while a stream
 * still has it queued stays whole until that message is gone (ASan checks). */
static void test_shared_bodies_evicted(void **state)
{
    (void)state;
    fake_share = true;
    xds_stream_env tiny = {NULL, "cluster.local", xds_body_cache_new(1)};
    xds_stream a, b, c;
    xds_stream_init(&a, false, 1, "p");
    xds_stream_init(&b, false, 2, "p");
    xds_stream_init(&c, false, 3, "p");
    size_t len, body, want_len, want_body;
    first_request(&a, &tiny, &snap1, XT_CDS); /* seen once */
    uint8_t *want = pop_raw(&a, false, &want_len, &want_body);
    first_request(&b, &tiny, &snap1, XT_CDS); /* encoded, queued in b's outbox */
    first_request(&c, &tiny, &snap1, XT_EDS); /* another set: the CDS entry is evicted */
    xds_body_stats bs;
    xds_body_cache_stats(tiny.bodies, &bs);
    assert_int_equal(bs.builds, 1);
    assert_int_equal(bs.entries, 1);
    xds_body_cache_free(tiny.bodies); /* even the cache gone: b's message holds the body */
    uint8_t *got = pop_raw(&b, false, &len, &body);
    assert_int_equal(body, want_body);
    assert_memory_equal(got, want, body);
    free(got);
    free(want);
    xds_stream_cleanup(&a);
    xds_stream_cleanup(&b);
    xds_stream_cleanup(&c);
    for (int t = 0; t < XT_COUNT; t++)
        for (int i = 0; i < WORLD_MAX; i++) {
            xds_resource_release(shared_res[t][i]);
            shared_res[t][i] = NULL;
        }
    fake_share = false;
}

/* SotW streams that subscribe to the same names share one interned list; a different
 * list is its own; the last stream to drop a list frees it (ASan checks). */
static void test_shared_subscriptions(void **state)
{
    (void)state;
    xds_stream a, b, c;
    fake_node n;
    node_init(&n, ID_OK, false);
    const char *ab[] = {CB, CA, CA}, *ba[] = {CA, CB}, *one[] = {CA};
    xds_stream_init(&a, false, 1, "p");
    xds_stream_init(&b, false, 2, "p");
    xds_stream_init(&c, false, 3, "p");
    assert_int_equal(sotw(&a, &snap1, &n.node, XT_EDS, "", ab, 3, NULL), 0);
    assert_int_equal(sotw(&b, &snap1, &n.node, XT_EDS, "", ba, 2, NULL), 0);
    assert_int_equal(sotw(&c, &snap1, &n.node, XT_EDS, "", one, 1, NULL), 0);
    assert_int_equal(a.t[XT_EDS].nnames, 2);
    assert_ptr_equal(a.t[XT_EDS].names, b.t[XT_EDS].names); /* sorted, unique: the same */
    assert_ptr_not_equal(a.t[XT_EDS].names, c.t[XT_EDS].names);
    assert_string_equal(a.t[XT_EDS].names[0], CA);
    /* b narrows its subscription: its own list again, a keeps the shared one */
    assert_int_equal(sotw(&b, &snap1, NULL, XT_EDS, "", one, 1, NULL), 0);
    assert_ptr_equal(b.t[XT_EDS].names, c.t[XT_EDS].names);
    assert_int_equal(a.t[XT_EDS].nnames, 2);
    assert_string_equal(a.t[XT_EDS].names[1], CB);
    xds_stream_cleanup(&a);
    xds_stream_cleanup(&b);
    xds_stream_cleanup(&c);

    /* Delta: a subscription built up request by request is shared once it settles; an
     * unsubscribe takes a private copy first, the other stream keeps its names */
    const char *only_b[] = {CB};
    xds_stream_init(&a, true, 4, "p");
    xds_stream_init(&b, true, 5, "p");
    assert_int_equal(delta(&a, &n.node, XT_EDS, "", ab, 3, NULL, 0, NULL, 0), 0);
    assert_int_equal(delta(&b, &n.node, XT_EDS, "", one, 1, NULL, 0, NULL, 0), 0);
    assert_ptr_not_equal(a.t[XT_EDS].names, b.t[XT_EDS].names);
    assert_int_equal(delta(&b, NULL, XT_EDS, "", only_b, 1, NULL, 0, NULL, 0), 0);
    assert_ptr_equal(a.t[XT_EDS].names, b.t[XT_EDS].names);
    assert_int_equal(delta(&b, NULL, XT_EDS, "", NULL, 0, one, 1, NULL, 0), 0);
    assert_int_equal(b.t[XT_EDS].nnames, 1);
    assert_string_equal(b.t[XT_EDS].names[0], CB);
    assert_int_equal(a.t[XT_EDS].nnames, 2);
    assert_string_equal(a.t[XT_EDS].names[0], CA);
    xds_stream_cleanup(&a);
    xds_stream_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sotw_initial_and_ack, setup),
        cmocka_unit_test_setup(test_sotw_nack_and_stale, setup),
        cmocka_unit_test_setup(test_sotw_push, setup),
        cmocka_unit_test_setup(test_sotw_queue_coalesces, setup),
        cmocka_unit_test_setup(test_sotw_partial_and_kinds, setup),
        cmocka_unit_test_setup(test_no_snapshot_answers_on_first_push, setup),
        cmocka_unit_test_setup(test_bad_nodes, setup),
        cmocka_unit_test_setup(test_delta, setup),
        cmocka_unit_test_setup(test_delta_initial_versions, setup),
        cmocka_unit_test_setup(test_outbox_bytes_cap, setup),
        cmocka_unit_test_setup(test_shared_bodies, setup),
        cmocka_unit_test_setup(test_shared_bodies_evicted, setup),
        cmocka_unit_test_setup(test_shared_subscriptions, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
