/* watchline: the pure pieces of a reflector: splitting a chunked watch stream into lines,
 * the retry backoff, and the set of keys a reflector has reported. No I/O, no threads:
 * each instance belongs to one reflector on the k8s thread. */
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_internal.h"

/* ---- lines ---------------------------------------------------------------------------- */

void k8s_linebuf_init(k8s_linebuf *lb, size_t max)
{
    strbuf_init(&lb->partial, max ? max : K8S_LINE_MAX);
}

void k8s_linebuf_reset(k8s_linebuf *lb)
{
    strbuf_reset(&lb->partial);
}

void k8s_linebuf_free(k8s_linebuf *lb)
{
    strbuf_free(&lb->partial);
}

static int deliver(const char *line, size_t len, k8s_line_fn fn, void *ud)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return 0;
    return fn(ud, line, len);
}

int k8s_linebuf_feed(k8s_linebuf *lb, const char *p, size_t n, k8s_line_fn fn, void *ud)
{
    const char *end = p + n;
    int rc = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            /* No end of line in this chunk: keep the tail for the next one. */
            if (strbuf_append(&lb->partial, p, (size_t)(end - p)) != 0) {
                strbuf_reset(&lb->partial);
                return -1;
            }
            return 0;
        }
        if (lb->partial.len > 0) {
            /* Finish the carried line; only this case copies. */
            if (strbuf_append(&lb->partial, p, (size_t)(nl - p)) != 0) {
                strbuf_reset(&lb->partial);
                return -1;
            }
            rc = deliver(lb->partial.data, lb->partial.len, fn, ud);
            strbuf_reset(&lb->partial);
        } else {
            if ((size_t)(nl - p) > lb->partial.max)
                return -1;
            rc = deliver(p, (size_t)(nl - p), fn, ud);
        }
        if (rc != 0)
            return rc;
        p = nl + 1;
    }
    return 0;
}

/* ---- backoff -------------------------------------------------------------------------- */

/* xorshift64*: small, seedable, good enough for jitter. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int64_t k8s_rand_range(uint64_t *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(rng_next(rng) % (uint64_t)(hi - lo + 1));
}

void k8s_backoff_init(k8s_backoff *b, int64_t initial_ms, int64_t max_ms, uint64_t seed)
{
    b->initial_ms = initial_ms > 0 ? initial_ms : 800;
    b->max_ms = max_ms > 0 ? max_ms : 30000;
    if (b->max_ms < b->initial_ms)
        b->max_ms = b->initial_ms;
    b->cur_ms = 0;
    b->rng = seed;
}

int64_t k8s_backoff_next(k8s_backoff *b)
{
    int64_t base;

    if (b->cur_ms == 0)
        base = b->initial_ms;
    else if (b->cur_ms >= b->max_ms / 2)
        base = b->max_ms;
    else
        base = b->cur_ms * 2;
    b->cur_ms = base;
    return base + k8s_rand_range(&b->rng, 0, base / 2 - (base >= 2 ? 1 : 0));
}

void k8s_backoff_reset(k8s_backoff *b)
{
    b->cur_ms = 0;
}

/* ---- key set -------------------------------------------------------------------------- */

char k8s_key_tomb[] = "";

void k8s_keyset_init(k8s_keyset *s)
{
    memset(s, 0, sizeof(*s));
}

static size_t slot_of(const k8s_keyset *s, const char *key)
{
    return (size_t)util_hash64(key, strlen(key), 0) & (s->cap - 1);
}

k8s_keyent *k8s_keyset_get(k8s_keyset *s, const char *key)
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = slot_of(s, key), n = 0; n < s->cap; i = (i + 1) & (s->cap - 1), n++) {
        k8s_keyent *e = &s->slots[i];
        if (e->key == NULL)
            return NULL;
        if (e->key != K8S_KEY_TOMB && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static void grow(k8s_keyset *s)
{
    k8s_keyset n = {0};
    n.cap = s->cap ? s->cap * 2 : 64;
    /* Shrinking the load after many deletes: rehash at the same size is enough. */
    if (s->count * 4 < s->cap)
        n.cap = s->cap;
    n.slots = xcalloc(n.cap, sizeof(*n.slots));
    for (size_t i = 0; i < s->cap; i++) {
        k8s_keyent *e = &s->slots[i];
        if (e->key == NULL || e->key == K8S_KEY_TOMB)
            continue;
        size_t j = slot_of(&n, e->key);
        while (n.slots[j].key != NULL)
            j = (j + 1) & (n.cap - 1);
        n.slots[j] = *e;
        n.count++;
        n.used++;
    }
    free(s->slots);
    *s = n;
}

k8s_keyent *k8s_keyset_put(k8s_keyset *s, const char *key)
{
    k8s_keyent *e = k8s_keyset_get(s, key);
    if (e != NULL)
        return e;
    if ((s->used + 1) * 4 > s->cap * 3)
        grow(s);
    size_t i = slot_of(s, key);
    while (s->slots[i].key != NULL && s->slots[i].key != K8S_KEY_TOMB)
        i = (i + 1) & (s->cap - 1);
    e = &s->slots[i];
    if (e->key == NULL)
        s->used++;
    e->key = xstrdup(key);
    e->rv = NULL;
    e->gen = 0;
    s->count++;
    return e;
}

bool k8s_keyset_del(k8s_keyset *s, const char *key)
{
    k8s_keyent *e = k8s_keyset_get(s, key);
    if (e == NULL)
        return false;
    free(e->key);
    free(e->rv);
    e->key = K8S_KEY_TOMB;
    e->rv = NULL;
    s->count--;
    return true;
}

void k8s_keyset_free(k8s_keyset *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].key != NULL && s->slots[i].key != K8S_KEY_TOMB) {
            free(s->slots[i].key);
            free(s->slots[i].rv);
        }
    }
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

size_t k8s_keyset_bytes(const k8s_keyset *s)
{
    size_t n = s->cap * sizeof(k8s_keyent);
    for (size_t i = 0; i < s->cap; i++) {
        const k8s_keyent *e = &s->slots[i];
        if (e->key == NULL || e->key == K8S_KEY_TOMB)
            continue;
        /* malloc rounds small blocks to 16 bytes plus an 8-byte header. */
        n += ((strlen(e->key) + 1 + 8 + 15) & ~(size_t)15);
        if (e->rv)
            n += ((strlen(e->rv) + 1 + 8 + 15) & ~(size_t)15);
    }
    return n;
}
