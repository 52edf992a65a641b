/* stream: ADS request handling and push generation per stream (see stream.h).
 *
 * Request rules (istiod's): error_detail set = NACK (counted, error kept, nothing
 * resent); a response_nonce other than the last one sent = stale (counted, ignored); the
 * matching nonce = ACK (answer only when the subscription changed); an empty nonce = a new
 * subscription or a reconnect (always answered). Delta applies subscribe/unsubscribe on
 * every request, since losing a delta would lose the subscription.
 *
 * Responses are encoded by hand in protobuf wire format so each resource's shared bytes
 * become one segment referencing the xds_resource, not a per-proxy copy.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"
#include "xds/ads/stream_internal.h"

#define LOG_SCOPE "ads"
/* Subscriptions are outside input: bound them. */
#define STREAM_MAX_NAMES 100000

xds_metrics xds_m;

void xds_metrics_init(void)
{
    static const double conv_buckets[] = {.1, .5, 1, 3, 5, 10, 20, 30};
    static const double time_buckets[] = {.01, .1, 1, 3, 5, 10, 20, 30};
    static const double send_buckets[] = {.0001, .001, .01, .1, 1, 10};
    if (xds_m.pushes != NULL)
        return;
    xds_m.xds = metric_gauge("pilot_xds", "Number of endpoints connected to this pilot using XDS.",
                             "version");
    xds_m.pushes = metric_counter("pilot_xds_pushes",
                                  "Pilot build and send errors for lds, rds, cds and eds.", "type");
    xds_m.rejects =
        metric_counter("pilot_total_xds_rejects",
                       "Total number of XDS responses from pilot rejected by proxy.", "type");
    xds_m.expired_nonce = metric_counter(
        "pilot_xds_expired_nonce", "Total number of XDS requests with an expired nonce.", "type");
    xds_m.push_time =
        metric_histogram("pilot_xds_push_time",
                         "Total time in seconds Pilot takes to push lds, rds, cds "
                         "and eds.",
                         "type", time_buckets, sizeof(time_buckets) / sizeof(time_buckets[0]));
    xds_m.convergence =
        metric_histogram("pilot_proxy_convergence_time",
                         "Delay in seconds between config change and a proxy "
                         "receiving all required configuration.",
                         NULL, conv_buckets, sizeof(conv_buckets) / sizeof(conv_buckets[0]));
    xds_m.send_time =
        metric_histogram("pilot_xds_send_time",
                         "Total time in seconds Pilot takes to send generated "
                         "configuration.",
                         NULL, send_buckets, sizeof(send_buckets) / sizeof(send_buckets[0]));
    xds_m.internal_errors = metric_counter("pilot_total_xds_internal_errors",
                                           "Total number of internal XDS errors in pilot.", NULL);
    /* istiod's boundaries: 10K, 1M, the 4M gRPC default limit, 10M, 40M */
    static const double size_buckets[] = {1, 10000, 1000000, 4000000, 10000000, 40000000};
    xds_m.config_size = metric_histogram(
        "pilot_xds_config_size_bytes", "Distribution of configuration sizes pushed to clients",
        "type", size_buckets, sizeof(size_buckets) / sizeof(size_buckets[0]));
    xds_m.queue_time = metric_histogram(
        "pilot_proxy_queue_time",
        "Time in seconds, a proxy is in the push queue before being dequeued.", NULL, conv_buckets,
        sizeof(conv_buckets) / sizeof(conv_buckets[0])); /* istiod's buckets */
    xds_m.limit_closes = metric_counter(
        "pilot_xds_limit_closes",
        "Total number of XDS streams closed by a server limit (outbox: responses queued for "
        "a client that does not read; send_timeout: a send that did not complete in time).",
        "reason");
}

/* ---- types ----------------------------------------------------------------------------- */

static const struct {
    const char *url, *short_name;
} stream_types[XT_COUNT] = {
    [XT_CDS] = {XDS_TYPE_CLUSTER, "cds"},  [XT_EDS] = {XDS_TYPE_ENDPOINT, "eds"},
    [XT_LDS] = {XDS_TYPE_LISTENER, "lds"}, [XT_RDS] = {XDS_TYPE_ROUTE, "rds"},
    [XT_SDS] = {XDS_TYPE_SECRET, "sds"},
};

const char *xds_type_url(int t)
{
    return stream_types[t].url;
}
const char *xds_type_short(int t)
{
    return stream_types[t].short_name;
}

int xds_type_index(const char *type_url)
{
    if (type_url == NULL)
        return -1;
    for (int t = 0; t < XT_COUNT; t++)
        if (strcmp(type_url, stream_types[t].url) == 0)
            return t;
    return -1;
}

/* ---- message encoding ------------------------------------------------------------------ */

static void msg_reserve(xds_msg *m, size_t n)
{
    if (m->len + n <= m->cap)
        return;
    size_t cap = m->cap ? m->cap * 2 : 256;
    while (cap < m->len + n)
        cap *= 2;
    m->buf = xrealloc(m->buf, cap);
    m->cap = cap;
}

static xds_seg *msg_seg(xds_msg *m)
{
    if (m->nsegs == m->capsegs) {
        m->capsegs = m->capsegs ? m->capsegs * 2 : 8;
        m->segs = xrealloc(m->segs, m->capsegs * sizeof(*m->segs));
    }
    xds_seg *s = &m->segs[m->nsegs++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void msg_put(xds_msg *m, const void *p, size_t n)
{
    if (n == 0)
        return;
    msg_reserve(m, n);
    memcpy(m->buf + m->len, p, n);
    xds_seg *last = m->nsegs ? &m->segs[m->nsegs - 1] : NULL;
    if (last != NULL && last->res == NULL && last->off + last->len == m->len)
        last->len += n;
    else {
        xds_seg *s = msg_seg(m);
        s->off = m->len;
        s->len = n;
    }
    m->len += n;
    m->total += n;
}

static void msg_put_res(xds_msg *m, xds_resource *r)
{
    if (r->len == 0)
        return;
    xds_seg *s = msg_seg(m);
    xds_resource_retain(r);
    s->res = r;
    s->len = r->len;
    m->total += r->len;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void msg_varint(xds_msg *m, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    msg_put(m, b, n);
}

/* Length-delimited field header: tag (wire type 2) and length. */
static void msg_ld(xds_msg *m, unsigned field, size_t len)
{
    msg_varint(m, ((uint64_t)field << 3) | 2);
    msg_varint(m, len);
}

static size_t ld_size(unsigned field, size_t len)
{
    return varint_len(((uint64_t)field << 3) | 2) + varint_len(len) + len;
}

static void msg_str(xds_msg *m, unsigned field, const char *s)
{
    size_t n = strlen(s);
    msg_ld(m, field, n);
    msg_put(m, s, n);
}

/* google.protobuf.Any { type_url = 1; value = 2; } */
static size_t any_size(const xds_resource *r)
{
    return ld_size(1, strlen(r->type_url)) + ld_size(2, r->len);
}

static void msg_any(xds_msg *m, unsigned field, xds_resource *r)
{
    msg_ld(m, field, any_size(r));
    msg_str(m, 1, r->type_url);
    msg_ld(m, 2, r->len);
    msg_put_res(m, r);
}

static void msg_put_body(xds_msg *m, xds_body *b)
{
    if (b->len == 0)
        return;
    xds_seg *s = msg_seg(m);
    xds_body_retain(b);
    s->body = b;
    s->len = b->len;
    m->total += b->len;
}

void xds_msg_free(xds_msg *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nsegs; i++) {
        if (m->segs[i].res != NULL)
            xds_resource_release(m->segs[i].res);
        if (m->segs[i].body != NULL)
            xds_body_release(m->segs[i].body);
    }
    free(m->segs);
    free(m->buf);
    free(m);
}

uint8_t *xds_msg_flatten(const xds_msg *m, size_t *len)
{
    uint8_t *out = xmalloc(m->total ? m->total : 1);
    size_t o = 0;
    for (size_t i = 0; i < m->nsegs; i++) {
        const xds_seg *s = &m->segs[i];
        memcpy(out + o,
               s->res    ? s->res->bytes
               : s->body ? s->body->bytes
                         : m->buf + s->off,
               s->len);
        o += s->len;
    }
    *len = o;
    return out;
}

/* ---- shared bodies --------------------------------------------------------------------- */

void xds_body_retain(xds_body *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void xds_body_release(xds_body *b)
{
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

#define BODY_BUCKETS 1024u
#define BODY_MAX_ENTRIES 4096u

/* One set seen: its key, and once seen twice its encoding and what verifies a hit. */
typedef struct body_entry {
    struct body_entry *hnext, *prev, *next; /* bucket chain; LRU (head = most recent) */
    uint64_t key;
    bool delta;
    int type;
    char *version;
    xds_resource **items; /* retained; NULL while seen once */
    size_t n;
    xds_body *body;   /* retained; NULL while seen once */
    size_t res_bytes; /* the resources' bytes (pilot_xds_config_size_bytes) */
} body_entry;

struct xds_body_cache {
    pthread_mutex_t mu;
    body_entry *buckets[BODY_BUCKETS];
    body_entry *head, *tail;
    size_t n, bytes, max_bytes;
    uint64_t hits, builds, first_seen;
};

xds_body_cache *xds_body_cache_new(size_t max_bytes)
{
    xds_body_cache *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static size_t body_cost(const body_entry *e)
{
    return sizeof(*e) + e->n * sizeof(*e->items) + (e->body ? e->body->len : 0);
}

static void body_entry_free(body_entry *e)
{
    for (size_t i = 0; e->items != NULL && i < e->n; i++)
        xds_resource_release(e->items[i]);
    free(e->items);
    xds_body_release(e->body);
    free(e->version);
    free(e);
}

static void body_unlink(xds_body_cache *c, body_entry *e)
{
    body_entry **pp = &c->buckets[e->key % BODY_BUCKETS];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->n--;
    c->bytes -= body_cost(e);
}

static void body_link(xds_body_cache *c, body_entry *e)
{
    body_entry **b = &c->buckets[e->key % BODY_BUCKETS];
    e->hnext = *b;
    *b = e;
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
    c->n++;
    c->bytes += body_cost(e);
    /* the newest entry always stays, whatever its size */
    while (c->tail != e && (c->bytes > c->max_bytes || c->n > BODY_MAX_ENTRIES)) {
        body_entry *old = c->tail;
        body_unlink(c, old);
        body_entry_free(old);
    }
}

void xds_body_cache_free(xds_body_cache *c)
{
    if (c == NULL)
        return;
    while (c->head != NULL) {
        body_entry *e = c->head;
        body_unlink(c, e);
        body_entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void xds_body_cache_stats(xds_body_cache *c, xds_body_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = (xds_body_stats){c->hits, c->builds, c->first_seen, c->n, c->bytes};
    pthread_mutex_unlock(&c->mu);
}

static uint64_t body_key(bool delta, int t, const char *version, const xds_resource_set *set)
{
    uint64_t h = util_hash64(version, strlen(version), ((uint64_t)t << 1) | delta);
    for (size_t i = 0; i < set->n; i++)
        h = util_hash64(&set->items[i], sizeof(set->items[i]), h);
    return h ? h : 1;
}

static bool body_matches(const body_entry *e, uint64_t key, bool delta, int t, const char *version,
                         const xds_resource_set *set)
{
    if (e->key != key || e->delta != delta || e->type != t || strcmp(e->version, version) != 0)
        return false;
    if (e->items == NULL)
        return true; /* seen once: the hash is all there is (it only decides to encode) */
    if (e->n != set->n)
        return false;
    for (size_t i = 0; i < set->n; i++)
        if (e->items[i] != set->items[i])
            return false;
    return true;
}

static void body_put(xds_body *b, size_t *o, const void *p, size_t n)
{
    memcpy(b->bytes + *o, p, n);
    *o += n;
}

static void body_varint(xds_body *b, size_t *o, uint64_t v)
{
    while (v >= 0x80) {
        b->bytes[(*o)++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->bytes[(*o)++] = (uint8_t)v;
}

static void body_ld(xds_body *b, size_t *o, unsigned field, size_t len)
{
    body_varint(b, o, ((uint64_t)field << 3) | 2);
    body_varint(b, o, len);
}

static void body_str(xds_body *b, size_t *o, unsigned field, const char *s)
{
    size_t n = strlen(s);
    body_ld(b, o, field, n);
    body_put(b, o, s, n);
}

/* The Delta Resource { name = 3; version = 1; resource = 2 (Any) } of r, and its version. */
static size_t delta_res_size(const xds_resource *r, char ver[24])
{
    snprintf(ver, 24, "%016" PRIx64, r->hash);
    return ld_size(3, strlen(r->name)) + ld_size(1, strlen(ver)) + ld_size(2, any_size(r));
}

/* The body of a response carrying all of set: version (1), the resources (2), type URL
 * (4); the same bytes stream_respond_* write before the nonce. */
static xds_body *body_encode(bool delta, int t, const char *version, const xds_resource_set *set,
                             size_t *res_bytes)
{
    char ver[24];
    size_t len = ld_size(1, strlen(version)) + ld_size(4, strlen(xds_type_url(t)));
    *res_bytes = 0;
    for (size_t i = 0; i < set->n; i++) {
        const xds_resource *r = set->items[i];
        len += ld_size(2, delta ? delta_res_size(r, ver) : any_size(r));
        *res_bytes += r->len;
    }
    xds_body *b = xmalloc(sizeof(*b) + (len ? len : 1));
    atomic_init(&b->refs, 1);
    b->len = len;
    size_t o = 0;
    body_str(b, &o, 1, version);
    for (size_t i = 0; i < set->n; i++) {
        const xds_resource *r = set->items[i];
        if (delta) {
            body_ld(b, &o, 2, delta_res_size(r, ver));
            body_str(b, &o, 3, r->name);
            body_str(b, &o, 1, ver);
        }
        body_ld(b, &o, 2, any_size(r));
        body_str(b, &o, 1, r->type_url);
        body_ld(b, &o, 2, r->len);
        body_put(b, &o, r->bytes, r->len);
    }
    body_str(b, &o, 4, xds_type_url(t));
    return b;
}

/* The shared body of a response carrying all of set (a new reference), or NULL: no cache,
 * or the first sighting of the set (the caller encodes per stream). */
static xds_body *body_get(xds_body_cache *c, bool delta, int t, const char *version,
                          const xds_resource_set *set, size_t *res_bytes)
{
    if (c == NULL)
        return NULL;
    uint64_t key = body_key(delta, t, version, set);
    xds_body *b = NULL;
    pthread_mutex_lock(&c->mu);
    body_entry *e = c->buckets[key % BODY_BUCKETS];
    while (e != NULL && !body_matches(e, key, delta, t, version, set))
        e = e->hnext;
    if (e != NULL && e->body != NULL) {
        body_unlink(c, e); /* to the LRU head */
        body_link(c, e);
        c->hits++;
        *res_bytes = e->res_bytes;
        xds_body_retain(e->body);
        b = e->body;
        goto out;
    }
    if (e == NULL) { /* first sighting: remember the key only */
        e = xcalloc(1, sizeof(*e));
        *e = (body_entry){.key = key, .delta = delta, .type = t, .version = xstrdup(version)};
        body_link(c, e);
        c->first_seen++;
        goto out;
    }
    /* the second sighting: encode (under the lock: a copy of bytes at hand, no generation) */
    body_unlink(c, e);
    e->items = xmalloc((set->n ? set->n : 1) * sizeof(*e->items));
    for (size_t i = 0; i < set->n; i++) {
        xds_resource_retain(set->items[i]);
        e->items[i] = set->items[i];
    }
    e->n = set->n;
    e->body = body_encode(delta, t, version, set, &e->res_bytes);
    body_link(c, e);
    c->builds++;
    *res_bytes = e->res_bytes;
    xds_body_retain(e->body);
    b = e->body;
out:
    pthread_mutex_unlock(&c->mu);
    return b;
}

/* ---- small sorted-set helpers ---------------------------------------------------------- */

static ssize_t names_find(char *const *names, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(names[mid], name);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Sorted unique copy of in[0..n), "*" dropped (reported through *star). */
static char **names_set(char *const *in, size_t n, size_t *out_n, bool *star)
{
    char **v = xcalloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    *star = false;
    for (size_t i = 0; i < n && i < STREAM_MAX_NAMES; i++) {
        if (in[i] == NULL)
            continue;
        if (strcmp(in[i], "*") == 0) {
            *star = true;
            continue;
        }
        v[k++] = xstrdup(in[i]);
    }
    qsort(v, k, sizeof(*v), util_strp_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && strcmp(v[u - 1], v[i]) == 0)
            free(v[i]);
        else
            v[u++] = v[i];
    }
    *out_n = u;
    return v;
}

/* Interned subscriptions: thousands of sidecars subscribe EDS to the same thousands of
 * cluster names; one sorted list per distinct subscription instead of a copy per stream.
 * The refcount is kept under the table's mutex (a leaf lock; two shard threads). */
typedef struct xds_names {
    struct xds_names *hnext;
    uint64_t hash;
    size_t refs;
    size_t n;
    char **v;
} xds_names;

#define NAMES_BUCKETS 1024u
static struct {
    pthread_mutex_t mu;
    xds_names *buckets[NAMES_BUCKETS];
} names_tab = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t names_hash(char *const *v, size_t n)
{
    uint64_t h = n;
    for (size_t i = 0; i < n; i++)
        h = util_hash64(v[i], strlen(v[i]) + 1, h);
    return h;
}

static bool names_equal(char *const *a, size_t na, char *const *b, size_t nb);

/* Makes ts's subscription the sorted unique owned list v[0..n): the interned copy when
 * one exists (v is freed), else v becomes the interned list. */
static void names_adopt(xds_type_state *ts, char **v, size_t n)
{
    if (n == 0) { /* nothing to share */
        ts->names = v;
        ts->nnames = 0;
        return;
    }
    uint64_t h = names_hash(v, n);
    pthread_mutex_lock(&names_tab.mu);
    xds_names **b = &names_tab.buckets[h % NAMES_BUCKETS], *e = *b;
    while (e != NULL && (e->hash != h || !names_equal(e->v, e->n, v, n)))
        e = e->hnext;
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        *e = (xds_names){*b, h, 0, n, v};
        *b = e;
        v = NULL;
    }
    e->refs++;
    pthread_mutex_unlock(&names_tab.mu);
    util_strv_free(v, v ? n : 0);
    ts->names_shared = e;
    ts->names = e->v;
    ts->nnames = n;
}

/* Drops ts's subscription (its reference, or its own list). */
static void names_drop(xds_type_state *ts)
{
    xds_names *e = ts->names_shared;
    if (e == NULL) {
        util_strv_free(ts->names, ts->nnames);
    } else {
        bool last = false;
        pthread_mutex_lock(&names_tab.mu);
        if (--e->refs == 0) {
            xds_names **pp = &names_tab.buckets[e->hash % NAMES_BUCKETS];
            while (*pp != e)
                pp = &(*pp)->hnext;
            *pp = e->hnext;
            last = true;
        }
        pthread_mutex_unlock(&names_tab.mu);
        if (last) {
            util_strv_free(e->v, e->n);
            free(e);
        }
    }
    ts->names_shared = NULL;
    ts->names = NULL;
    ts->nnames = 0;
}

/* Before changing ts->names in place (Delta): a private copy of a shared list. */
static void names_own(xds_type_state *ts)
{
    if (ts->names_shared == NULL)
        return;
    size_t n = ts->nnames;
    char **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(ts->names[i]);
    names_drop(ts);
    ts->names = v;
    ts->nnames = n;
}

static bool names_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* Merges the sorted, unique, owned names add[0..nadd) into the subscription, dropping
 * any beyond STREAM_MAX_NAMES (and freeing them). One linear merge per request: a Delta
 * request may subscribe thousands of names, and inserting them one by one was quadratic. */
static void names_merge(xds_type_state *ts, char **add, size_t nadd)
{
    names_own(ts);
    size_t room = ts->nnames < STREAM_MAX_NAMES ? STREAM_MAX_NAMES - ts->nnames : 0;
    for (size_t i = room; i < nadd; i++)
        free(add[i]);
    if (nadd > room)
        nadd = room;
    if (nadd == 0)
        return;
    char **v = xmalloc((ts->nnames + nadd) * sizeof(*v));
    size_t i = 0, j = 0, k = 0;
    while (i < ts->nnames || j < nadd) {
        if (j == nadd || (i < ts->nnames && strcmp(ts->names[i], add[j]) < 0))
            v[k++] = ts->names[i++];
        else
            v[k++] = add[j++];
    }
    free(ts->names);
    ts->names = v;
    ts->nnames = k;
}

static void names_remove(xds_type_state *ts, const char *name)
{
    ssize_t i = names_find(ts->names, ts->nnames, name);
    if (i < 0)
        return;
    names_own(ts);
    free(ts->names[i]);
    memmove(&ts->names[i], &ts->names[i + 1], (ts->nnames - (size_t)i - 1) * sizeof(char *));
    ts->nnames--;
}

static void known_clear_one(xds_known *k)
{
    if (k->own_name)
        free((char *)k->name);
    if (k->res != NULL)
        xds_resource_release(k->res);
}

/* Makes k what was sent of r: r retained, its name borrowed. */
static void known_set_res(xds_known *k, xds_resource *r)
{
    xds_resource_retain(r);
    known_clear_one(k);
    *k = (xds_known){r->name, r->hash, true, false, r};
}

static void known_free(xds_type_state *ts)
{
    for (size_t i = 0; i < ts->nknown; i++)
        known_clear_one(&ts->known[i]);
    free(ts->known);
    ts->known = NULL;
    ts->nknown = 0;
}

static ssize_t known_find(const xds_type_state *ts, const char *name)
{
    size_t lo = 0, hi = ts->nknown;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ts->known[mid].name, name);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void known_remove(xds_type_state *ts, const char *name)
{
    ssize_t i = known_find(ts, name);
    if (i < 0)
        return;
    known_clear_one(&ts->known[i]);
    memmove(&ts->known[i], &ts->known[i + 1], (ts->nknown - (size_t)i - 1) * sizeof(xds_known));
    ts->nknown--;
}

/* Applies what a response carried to ts->known in one merge (both lists are sorted by
 * name): the set's items flagged in `sent` are stored with their bytes, the known entries
 * flagged in `gone` (NULL: none) are dropped. Linear: putting and removing one name at a
 * time shifted the array each time, quadratic in a large set. */
static void known_apply(xds_type_state *ts, const xds_resource_set *set, const bool *sent,
                        const bool *gone)
{
    xds_known *out = xcalloc(ts->nknown + set->n + 1, sizeof(*out));
    size_t a = 0, b = 0, k = 0;
    for (;;) {
        while (b < set->n && !sent[b])
            b++;
        if (a == ts->nknown && b == set->n)
            break;
        int c = a == ts->nknown ? 1
                : b == set->n   ? -1
                                : strcmp(ts->known[a].name, set->items[b]->name);
        if (c < 0) {
            if (gone && gone[a])
                known_clear_one(&ts->known[a]);
            else
                out[k++] = ts->known[a];
            a++;
            continue;
        }
        xds_resource *r = set->items[b++];
        xds_known *dst = &out[k++];
        if (c == 0)
            *dst = ts->known[a++]; /* replaced below: its name and reference go */
        known_set_res(dst, r);
    }
    free(ts->known);
    ts->known = out;
    ts->nknown = k;
}

/* One initial_resource_versions entry, parsed. */
typedef struct known_init {
    const char *name;
    uint64_t hash;
    bool valid;
    size_t order; /* position in the request: the last of duplicate names wins */
} known_init;

static int known_init_cmp(const void *a, const void *b)
{
    const known_init *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* Merges the client's initial_resource_versions into ts->known in one pass: sort the
 * entries (n log n), keep the last of each name, then merge the two sorted lists (linear).
 * Inserting one at a time was quadratic in the entries. The caller caps n. */
static void known_merge_initial(
    xds_type_state *ts,
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *const *e,
    size_t n)
{
    known_init *v = xcalloc(n ? n : 1, sizeof(*v));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i] == NULL || e[i]->key == NULL || e[i]->value == NULL)
            continue;
        char *end = NULL;
        v[m] = (known_init){e[i]->key, strtoull(e[i]->value, &end, 16),
                            end != e[i]->value && *end == '\0', i};
        m++;
    }
    qsort(v, m, sizeof(*v), known_init_cmp);
    size_t u = 0; /* unique names, the last entry of each */
    for (size_t i = 0; i < m; i++) {
        if (u > 0 && strcmp(v[u - 1].name, v[i].name) == 0)
            v[u - 1] = v[i];
        else
            v[u++] = v[i];
    }
    xds_known *out = xcalloc(ts->nknown + u ? ts->nknown + u : 1, sizeof(*out));
    size_t a = 0, b = 0, k = 0;
    while (a < ts->nknown || b < u) {
        int c = a == ts->nknown ? 1 : b == u ? -1 : strcmp(ts->known[a].name, v[b].name);
        if (c < 0) {
            out[k++] = ts->known[a++];
            continue;
        }
        if (c == 0) { /* the client's word replaces what we had for that name */
            known_clear_one(&ts->known[a]);
            a++;
        }
        out[k++] = (xds_known){xstrdup(v[b].name), v[b].hash, v[b].valid, true, NULL};
        b++;
    }
    free(ts->known);
    ts->known = out;
    ts->nknown = k;
    free(v);
}

/* ---- stream lifecycle ------------------------------------------------------------------ */

void xds_stream_init(xds_stream *st, bool delta, uint64_t seq, const char *peer)
{
    memset(st, 0, sizeof(*st));
    st->delta = delta;
    st->seq = seq;
    snprintf(st->peer, sizeof(st->peer), "%s", peer ? peer : "");
    st->connected_wall_ns = util_wall_ns();
}

void xds_stream_cleanup(xds_stream *st)
{
    for (int t = 0; t < XT_COUNT; t++) {
        xds_type_state *ts = &st->t[t];
        names_drop(ts);
        known_free(ts);
        free(ts->last_error);
    }
    xds_msg *m;
    while ((m = xds_stream_pop(st)) != NULL)
        xds_msg_free(m);
    if (st->proxy != NULL)
        metric_add(xds_m.xds, st->proxy->istio_version ? st->proxy->istio_version : "", -1);
    xds_proxy_free(st->proxy);
    memset(st, 0, sizeof(*st));
}

xds_msg *xds_stream_pop(xds_stream *st)
{
    xds_msg *m = st->outq_head;
    if (m == NULL)
        return NULL;
    st->outq_head = m->next;
    if (st->outq_head == NULL)
        st->outq_tail = NULL;
    st->outq_len--;
    st->outq_bytes -= m->total;
    m->next = NULL;
    return m;
}

/* Ends the stream for a full outbox (see XDS_OUTQ_MAX, XDS_OUTQ_MAX_BYTES). */
static void stream_outq_full(xds_stream *st, const char *what)
{
    if (st->close_code != 0)
        return;
    st->close_code = 8; /* GRPC_STATUS_RESOURCE_EXHAUSTED */
    st->close_reason = "outbox";
    snprintf(st->close_msg, sizeof(st->close_msg), "node %s: %s: the client is not reading",
             st->proxy != NULL ? st->proxy->id : st->peer, what);
}

/* Appends m to the outbox. SotW: a queued, not yet written response of the same type is
 * replaced, since the newer one carries the type's full current state. Delta responses
 * are increments and are never replaced (replace=false). A client that stops reading
 * while asking for more overflows XDS_OUTQ_MAX and the stream ends (RESOURCE_EXHAUSTED). */
static void stream_enqueue(xds_stream *st, xds_msg *m, bool replace)
{
    m->enq_ns = util_now_ns();
    xds_msg **slot = NULL;
    for (xds_msg **pp = &st->outq_head; replace && *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->type == m->type) {
            slot = pp;
            break;
        }
    }
    /* What would wait unsent besides m: the outbox (less a response m replaces) and the
     * message being written. */
    size_t max = st->outq_max_bytes ? st->outq_max_bytes : XDS_OUTQ_MAX_BYTES;
    size_t pending = st->outq_bytes - (slot != NULL ? (*slot)->total : 0) + st->inflight_bytes;
    if (pending > 0 && (pending > max || m->total > max - pending)) {
        char what[160];
        snprintf(what, sizeof(what), "%zu response bytes queued, over the limit of %zu",
                 pending + m->total, max);
        xds_msg_free(m);
        stream_outq_full(st, what);
        return;
    }
    if (slot != NULL) {
        xds_msg *old = *slot;
        m->next = old->next;
        *slot = m;
        if (st->outq_tail == old)
            st->outq_tail = m;
        st->outq_bytes += m->total - old->total;
        xds_msg_free(old);
        return;
    }
    if (st->outq_len >= XDS_OUTQ_MAX) {
        char what[160];
        snprintf(what, sizeof(what), "more than %d responses queued", XDS_OUTQ_MAX);
        xds_msg_free(m);
        stream_outq_full(st, what);
        return;
    }
    st->outq_bytes += m->total;
    if (st->outq_tail != NULL)
        st->outq_tail->next = m;
    else
        st->outq_head = m;
    st->outq_tail = m;
    st->outq_len++;
}

static void stream_new_nonce(xds_stream *st, char *out, size_t outlen)
{
    static _Atomic uint64_t counter;
    uint64_t n = ++counter;
    uint32_t r = (uint32_t)util_hash64(&n, sizeof(n), (uint64_t)util_now_ns() ^ st->seq);
    snprintf(out, outlen, "%" PRIx64 "-%08x", n, r);
}

/* ---- generating and answering ---------------------------------------------------------- */

static int stream_generate(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap, int t,
                           xds_resource_set *set)
{
    xds_type_state *ts = &st->t[t];
    memset(set, 0, sizeof(*set));
    if (!ts->wildcard && ts->nnames == 0)
        return 0; /* nothing subscribed: the empty set */
    int rc = xds_gen_generate(env->gen, st->proxy, snap, xds_type_url(t),
                              ts->wildcard ? NULL : (const char *const *)ts->names,
                              ts->wildcard ? 0 : ts->nnames, set);
    if (rc != 0) {
        metric_add(xds_m.internal_errors, NULL, 1);
        LOG_ERR(LOG_SCOPE, "%s: generating %s failed", st->conn_id, xds_type_short(t));
    }
    return rc;
}

static bool set_matches_known(const xds_resource_set *set, const xds_type_state *ts)
{
    if (set->n != ts->nknown)
        return false;
    for (size_t i = 0; i < set->n; i++) {
        const xds_known *k = &ts->known[i];
        if (!k->hash_valid || k->hash != set->items[i]->hash ||
            strcmp(k->name, set->items[i]->name) != 0)
            return false;
    }
    return true;
}

static void stream_record_sent(xds_stream *st, int t, const char *version, const char *nonce,
                               int64_t start_ns)
{
    xds_type_state *ts = &st->t[t];
    snprintf(ts->version_sent, sizeof(ts->version_sent), "%s", version);
    snprintf(ts->nonce_sent, sizeof(ts->nonce_sent), "%s", nonce);
    ts->sent_wall_ns = util_wall_ns();
    ts->push_start_ns = start_ns;
    ts->force = false;
    ts->responses++;
    metric_add(xds_m.pushes, xds_type_short(t), 1);
}

/* SotW partial answers: for RDS and EDS the protocol does not require the whole set in
 * every response (only LDS and CDS are "state of the world"; gRPC and Envoy keep the RDS
 * and EDS resources a response leaves out), so a push that changed some of them and
 * removed none sends only those. Marks in changed[] the items whose (name, hash) the
 * client does not have; returns how many, or -1 when a known resource is gone (then the
 * whole set is sent, as before). Both lists are sorted by name: one merge walk. */
static ssize_t sotw_changed(const xds_resource_set *set, const xds_type_state *ts, bool *changed)
{
    size_t i = 0, k = 0, n = 0;
    while (i < set->n || k < ts->nknown) {
        int c = i == set->n       ? 1
                : k == ts->nknown ? -1
                                  : strcmp(set->items[i]->name, ts->known[k].name);
        if (c > 0)
            return -1; /* known[k] is no longer generated */
        if (c < 0) {
            changed[i++] = true;
            n++;
            continue;
        }
        changed[i] = !ts->known[k].hash_valid || ts->known[k].hash != set->items[i]->hash;
        n += changed[i];
        i++;
        k++;
    }
    return (ssize_t)n;
}

static bool outq_has_type(const xds_stream *st, int t)
{
    for (const xds_msg *m = st->outq_head; m != NULL; m = m->next)
        if (m->type == t)
            return true;
    return false;
}

/* SotW: the current set of the type (what the subscription selects); for RDS and EDS
 * pushes only the changed resources (sotw_changed). */
static int stream_respond_sotw(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap,
                               int t, xds_resource_set *set, int64_t start_ns)
{
    xds_type_state *ts = &st->t[t];
    if (!ts->force && set->id != 0 && set->id == ts->sent_set_id)
        return 0; /* the very set the client has: O(1) */
    bool *changed = NULL;
    ssize_t nchanged = -1;
    /* A partial response must not be replaced in the outbox by another partial one, and
     * must not follow a queued full one it could be reordered with: only on a clear
     * outbox for the type. */
    if (!ts->force && (t == XT_RDS || t == XT_EDS) && ts->nknown > 0 && !outq_has_type(st, t)) {
        changed = xcalloc(set->n ? set->n : 1, sizeof(bool));
        nchanged = sotw_changed(set, ts, changed);
        if (nchanged == 0) {
            free(changed);
            ts->sent_set_id = set->id;
            return 0;
        }
    } else if (!ts->force && set_matches_known(set, ts)) {
        ts->sent_set_id = set->id;
        return 0;
    }
    bool partial = nchanged > 0;
    char nonce[48];
    stream_new_nonce(st, nonce, sizeof(nonce));
    xds_msg *m = xcalloc(1, sizeof(*m));
    m->type = t;
    size_t bytes = 0;
    xds_body *body =
        partial ? NULL : body_get(env->bodies, false, t, snap->version_str, set, &bytes);
    if (body != NULL) { /* the same bytes as below, encoded once for every stream */
        msg_put_body(m, body);
        xds_body_release(body);
    } else {
        msg_str(m, 1, snap->version_str);
        for (size_t i = 0; i < set->n; i++) {
            if (!partial || changed[i]) {
                msg_any(m, 2, set->items[i]);
                bytes += set->items[i]->len;
            }
        }
        msg_str(m, 4, xds_type_url(t));
    }
    /* as istiod: the resources' bytes, by full type URL */
    metric_observe(xds_m.config_size, xds_type_url(t), (double)bytes);
    msg_str(m, 5, nonce);

    if (partial) {
        known_apply(ts, set, changed, NULL);
    } else {
        known_free(ts);
        ts->known = xcalloc(set->n ? set->n : 1, sizeof(*ts->known));
        for (size_t i = 0; i < set->n; i++)
            known_set_res(&ts->known[i], set->items[i]);
        ts->nknown = set->n;
    }
    free(changed);
    ts->sent_set_id = set->id;
    stream_record_sent(st, t, snap->version_str, nonce, start_ns);
    stream_enqueue(st, m, !partial);
    return 1;
}

/* Is name in set (sorted by name)? */
static bool set_has(const xds_resource_set *set, const char *name)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(set->items[mid]->name, name);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Delta: what changed against what the client has, plus removals in scope. new_subs are
 * names subscribed by the request being answered (absent ones are reported removed, so
 * the client does not wait for them). */
static int stream_respond_delta(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap,
                                int t, xds_resource_set *set, char *const *new_subs, size_t nnew,
                                int64_t start_ns)
{
    xds_type_state *ts = &st->t[t];
    if (!ts->force && nnew == 0 && set->id != 0 && set->id == ts->sent_set_id)
        return 0; /* reconciled against this very set already, subscriptions unchanged */
    size_t nchanged = 0;
    bool *changed = xcalloc(set->n ? set->n : 1, sizeof(bool));
    char **removed = NULL;
    bool *gone = NULL;
    size_t nremoved = 0;
    int rc = 0;

    for (size_t i = 0; i < set->n; i++) {
        ssize_t k = known_find(ts, set->items[i]->name);
        if (k < 0 || !ts->known[k].hash_valid || ts->known[k].hash != set->items[i]->hash) {
            changed[i] = true;
            nchanged++;
        } else if (ts->known[k].res == NULL) {
            /* announced by the client with the same version: remember the bytes */
            known_set_res(&ts->known[k], set->items[i]);
        }
    }
    /* removals: known names no longer generated */
    removed = xcalloc(ts->nknown + nnew + 1, sizeof(char *));
    gone = xcalloc(ts->nknown + 1, sizeof(bool));
    for (size_t i = 0; i < ts->nknown; i++) {
        const char *name = ts->known[i].name;
        bool in_scope = ts->wildcard || names_find(ts->names, ts->nnames, name) >= 0;
        bool present = set_has(set, name);
        if (in_scope && !present) {
            removed[nremoved++] = xstrdup(name);
            gone[i] = true;
        }
    }
    for (size_t i = 0; i < nnew; i++) {
        bool present = set_has(set, new_subs[i]);
        if (!present && known_find(ts, new_subs[i]) < 0)
            removed[nremoved++] = xstrdup(new_subs[i]);
    }
    ts->sent_set_id = set->id;
    if (nchanged == 0 && nremoved == 0 && !ts->force)
        goto out;

    char nonce[48];
    stream_new_nonce(st, nonce, sizeof(nonce));
    xds_msg *m = xcalloc(1, sizeof(*m));
    m->type = t;
    size_t bytes = 0;
    /* every resource of the set and no removal: what every stream with this set is sent */
    xds_body *body = nchanged == set->n && nremoved == 0
                         ? body_get(env->bodies, true, t, snap->version_str, set, &bytes)
                         : NULL;
    if (body != NULL) {
        msg_put_body(m, body);
        xds_body_release(body);
    } else {
        msg_str(m, 1, snap->version_str);
        for (size_t i = 0; i < set->n; i++) {
            if (!changed[i])
                continue;
            xds_resource *r = set->items[i];
            char ver[24];
            size_t rsz = delta_res_size(r, ver);
            msg_ld(m, 2, rsz);
            msg_str(m, 3, r->name);
            msg_str(m, 1, ver);
            msg_any(m, 2, r);
            bytes += r->len;
        }
        msg_str(m, 4, xds_type_url(t));
    }
    metric_observe(xds_m.config_size, xds_type_url(t), (double)bytes);
    msg_str(m, 5, nonce);
    for (size_t i = 0; i < nremoved; i++)
        msg_str(m, 6, removed[i]);
    known_apply(ts, set, changed, gone);
    stream_enqueue(st, m, false);
    stream_record_sent(st, t, snap->version_str, nonce, start_ns);
    rc = 1;
out:
    for (size_t i = 0; i < nremoved; i++)
        free(removed[i]);
    free(removed);
    free(gone);
    free(changed);
    return rc;
}

static int stream_answer(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap, int t,
                         char *const *new_subs, size_t nnew, int64_t start_ns)
{
    xds_resource_set set;
    int64_t t0 = util_now_ns();
    if (snap == NULL || st->proxy == NULL)
        return 0; /* answered by the first push (force stays set) */
    if (stream_generate(st, env, snap, t, &set) != 0)
        return 0;
    int rc = st->delta ? stream_respond_delta(st, env, snap, t, &set, new_subs, nnew, start_ns)
                       : stream_respond_sotw(st, env, snap, t, &set, start_ns);
    xds_resource_set_free(&set);
    if (rc > 0)
        metric_observe(xds_m.push_time, xds_type_short(t), (double)(util_now_ns() - t0) / 1e9);
    return rc;
}

/* ---- requests -------------------------------------------------------------------------- */

static int stream_first(xds_stream *st, const xds_stream_env *env, const void *node)
{
    char err[400];
    if (st->proxy != NULL)
        return 0;
    if (xds_proxy_from_node(node, env->domain, &st->proxy, err, sizeof(err)) != 0) {
        st->close_code = 3; /* GRPC_STATUS_INVALID_ARGUMENT */
        snprintf(st->close_msg, sizeof(st->close_msg), "%s", err);
        LOG_WARN(LOG_SCOPE, "ADS: %s: rejecting stream: %s", st->peer, err);
        return -1;
    }
    const char *p3 = strchr(strchr(st->proxy->id, '~') + 1, '~') + 1;
    size_t n = strcspn(p3, "~");
    snprintf(st->conn_id, sizeof(st->conn_id), "%.*s-%" PRIu64, (int)(n > 120 ? 120 : n), p3,
             st->seq);
    metric_add(xds_m.xds, st->proxy->istio_version ? st->proxy->istio_version : "", 1);
    LOG_INFO(LOG_SCOPE, "ADS: new %sconnection for node:%s", st->delta ? "delta " : "",
             st->conn_id);
    return 0;
}

int xds_stream_identify(xds_stream *st, const xds_stream_env *env, const void *node)
{
    return stream_first(st, env, node);
}

void xds_stream_queue(xds_stream *st, xds_msg *m)
{
    stream_enqueue(st, m, false);
}

static void stream_nack(xds_stream *st, int t, const char *version, const char *nonce,
                        const char *msg)
{
    xds_type_state *ts = &st->t[t];
    metric_add(xds_m.rejects, xds_type_short(t), 1);
    free(ts->last_error);
    ts->last_error = xstrdup(msg && msg[0] ? msg : "(no message)");
    LOG_WARN(LOG_SCOPE, "ADS:%s: ACK ERROR %s version %s nonce %s: %s", xds_type_short(t),
             st->conn_id, version ? version : "", nonce ? nonce : "", ts->last_error);
}

/* Bounded copy that tolerates src pointing into the same stream state (version is
 * ts->version_sent on an ACK): snprintf's restrict contract does not. */
static void copy_field(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memmove(dst, src, n);
    dst[n] = '\0';
}

static void stream_ack(xds_stream *st, int t, const char *version, const char *nonce)
{
    xds_type_state *ts = &st->t[t];
    copy_field(ts->nonce_acked, sizeof(ts->nonce_acked), nonce);
    copy_field(ts->version_acked, sizeof(ts->version_acked), version ? version : "");
    free(ts->last_error);
    ts->last_error = NULL;
    if (ts->push_start_ns > 0) {
        metric_observe(xds_m.convergence, NULL, (double)(util_now_ns() - ts->push_start_ns) / 1e9);
        ts->push_start_ns = 0;
    }
}

#define STREAM_REQ_CLOSE (-1)  /* the node was refused: close the stream */
#define STREAM_REQ_IGNORE (-2) /* a type we do not serve: ignore the request */

/* What every request (SotW or delta) does first: identify the proxy from the stream's
 * first node, then the resource type. Returns the type index, or STREAM_REQ_*. */
static int stream_req_type(xds_stream *st, const xds_stream_env *env, const void *node,
                           const char *type_url)
{
    if (stream_first(st, env, node) != 0)
        return STREAM_REQ_CLOSE;
    int t = xds_type_index(type_url);
    if (t < 0) {
        LOG_DEBUG(LOG_SCOPE, "ADS: %s: ignoring unknown type %s", st->conn_id,
                  type_url ? type_url : "");
        return STREAM_REQ_IGNORE;
    }
    return t;
}

static int stream_on_sotw(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap,
                          const Envoy__Service__Discovery__V3__DiscoveryRequest *req)
{
    int t = stream_req_type(st, env, req->node, req->type_url);
    if (t < 0)
        return t == STREAM_REQ_CLOSE ? -1 : 0;
    xds_type_state *ts = &st->t[t];
    const char *nonce = req->response_nonce ? req->response_nonce : "";
    if (req->error_detail != NULL) {
        stream_nack(st, t, req->version_info, nonce, req->error_detail->message);
        return 0;
    }
    if (nonce[0] != '\0' && strcmp(nonce, ts->nonce_sent) != 0) {
        metric_add(xds_m.expired_nonce, xds_type_short(t), 1);
        LOG_DEBUG(LOG_SCOPE, "ADS:%s: %s: expired nonce %s (sent %s)", xds_type_short(t),
                  st->conn_id, nonce, ts->nonce_sent);
        return 0;
    }
    size_t nn;
    bool star;
    char **names = names_set(req->resource_names, req->n_resource_names, &nn, &star);
    bool wildcard = star || (nn == 0 && xds_type_is_wildcard(st->proxy, xds_type_url(t)));
    bool changed =
        !ts->watched || wildcard != ts->wildcard || !names_equal(names, nn, ts->names, ts->nnames);
    if (nonce[0] != '\0')
        stream_ack(st, t, req->version_info, nonce);
    if (nonce[0] != '\0' && !changed) {
        util_strv_free(names, nn);
        return 0; /* a plain ACK */
    }
    names_drop(ts);
    names_adopt(ts, names, nn);
    ts->wildcard = wildcard;
    ts->watched = true;
    ts->force = true;
    stream_answer(st, env, snap, t, NULL, 0, 0);
    return 0;
}

static int stream_on_delta(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap,
                           const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req)
{
    int t = stream_req_type(st, env, req->node, req->type_url);
    if (t < 0)
        return t == STREAM_REQ_CLOSE ? -1 : 0;
    xds_type_state *ts = &st->t[t];
    const char *nonce = req->response_nonce ? req->response_nonce : "";
    bool first = !ts->watched;
    bool respond = first;
    char **new_subs = NULL;
    size_t nnew = 0;

    if (req->error_detail != NULL)
        stream_nack(st, t, ts->version_sent, nonce, req->error_detail->message);
    else if (nonce[0] != '\0' && strcmp(nonce, ts->nonce_sent) != 0)
        metric_add(xds_m.expired_nonce, xds_type_short(t), 1);
    else if (nonce[0] != '\0')
        stream_ack(st, t, ts->version_sent, nonce);

    ts->watched = true;
    if (req->n_resource_names_unsubscribe > 0 || req->n_resource_names_subscribe > 0)
        ts->sent_set_id = 0; /* the scope changed: reconcile in full next time */
    for (size_t i = 0; i < req->n_resource_names_unsubscribe; i++) {
        const char *n = req->resource_names_unsubscribe[i];
        if (strcmp(n, "*") == 0) {
            ts->wildcard = false;
            continue;
        }
        names_remove(ts, n);
        known_remove(ts, n);
    }
    if (req->n_resource_names_subscribe > 0) {
        bool star;
        size_t nsub;
        char **sub =
            names_set(req->resource_names_subscribe, req->n_resource_names_subscribe, &nsub, &star);
        if (star) {
            if (!ts->wildcard)
                respond = true;
            ts->wildcard = true;
        }
        /* keep the names not yet subscribed (sub stays sorted), then merge them in */
        size_t k = 0;
        for (size_t i = 0; i < nsub; i++) {
            if (names_find(ts->names, ts->nnames, sub[i]) < 0)
                sub[k++] = sub[i];
            else
                free(sub[i]);
        }
        names_merge(ts, sub, k);
        /* the merged names (owned by ts now) are the ones to answer for */
        new_subs = xcalloc(k ? k : 1, sizeof(char *));
        for (size_t i = 0; i < k && nnew < k; i++)
            if (names_find(ts->names, ts->nnames, sub[i]) >= 0)
                new_subs[nnew++] = sub[i];
        if (nnew > 0)
            respond = true;
        free(sub);
    }
    if (first) {
        if (req->n_resource_names_subscribe == 0 &&
            xds_type_is_wildcard(st->proxy, xds_type_url(t)))
            ts->wildcard = true;
        if (req->n_initial_resource_versions > STREAM_MAX_NAMES) {
            st->close_code = 3; /* GRPC_STATUS_INVALID_ARGUMENT */
            snprintf(st->close_msg, sizeof(st->close_msg),
                     "initial_resource_versions: %zu entries for %s, at most %d",
                     req->n_initial_resource_versions, xds_type_short(t), STREAM_MAX_NAMES);
            LOG_WARN(LOG_SCOPE, "ADS: %s: rejecting stream: %s", st->peer, st->close_msg);
            free(new_subs);
            return -1;
        }
        known_merge_initial(ts, req->initial_resource_versions, req->n_initial_resource_versions);
        ts->force = true;
    }
    if (respond && req->error_detail == NULL)
        stream_answer(st, env, snap, t, new_subs, nnew, 0);
    free(new_subs); /* borrowed ts->names: only now may the list be replaced */
    if (ts->names_shared == NULL && ts->nnames > 0) {
        /* a changed subscription: share it with the streams that have the same one */
        char **v = ts->names;
        size_t n = ts->nnames;
        ts->names = NULL;
        ts->nnames = 0;
        names_adopt(ts, v, n);
    }
    return 0;
}

int xds_stream_on_request(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap,
                          const void *req)
{
    return st->delta ? stream_on_delta(st, env, snap, req) : stream_on_sotw(st, env, snap, req);
}

/* ---- pushes ---------------------------------------------------------------------------- */

static bool stream_eds_affected(const xds_type_state *ts, char *const *hosts, size_t nhosts)
{
    if (ts->wildcard)
        return true;
    for (size_t i = 0; i < ts->nnames; i++) {
        const char *h = xds_cluster_hostname(ts->names[i]);
        if (h == NULL)
            continue;
        for (size_t j = 0; j < nhosts; j++)
            if (strcmp(h, hosts[j]) == 0)
                return true;
    }
    return false;
}

int xds_stream_push_kinds(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap, bool full,
                          uint32_t kinds, char *const *hosts, size_t nhosts, int64_t start_ns)
{
    int queued = 0;
    if (st->proxy == NULL || snap == NULL)
        return 0;
    for (int t = 0; t < XT_COUNT; t++) {
        xds_type_state *ts = &st->t[t];
        if (!ts->watched)
            continue;
        if (!full && !ts->force && (t != XT_EDS || !stream_eds_affected(ts, hosts, nhosts)))
            continue;
        /* a change that cannot alter this type for this proxy: what it has is current */
        if (full && !ts->force && (kinds & xds_type_kinds(st->proxy, snap, xds_type_url(t))) == 0)
            continue;
        queued += stream_answer(st, env, snap, t, NULL, 0, start_ns);
    }
    return queued;
}

int xds_stream_push(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap, bool full,
                    char *const *hosts, size_t nhosts, int64_t start_ns)
{
    return xds_stream_push_kinds(st, env, snap, full, ~0u, hosts, nhosts, start_ns);
}
