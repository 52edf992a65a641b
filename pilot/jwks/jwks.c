/* jwks: the JWKS resolver (see jwks.h), istiod's pilot/pkg/model/jwks_resolver.go in the
 * shape our snapshots need.
 *
 * Design. Generators read only the immutable snapshot and never block, so fetched key
 * sets must be in the snapshot before a generator runs. The fetcher is a separate stage
 * above the model (layer 3, like certs/ and the webhook: it needs model.h to post and
 * snapshot.h to learn), with its own thread and one curl easy handle per transfer:
 *   1. learn: a model_on_push callback (model thread) lists the jwksUris of the accepted
 *      RequestAuthentication rules that carry no inline jwks, sorted and deduplicated,
 *      and swaps that list in under `mu` when it differs. Nothing else happens there.
 *   2. fetch: the fetch thread merges the list into its entries, fetches each new URI at
 *      once (timeout: the rule's, else 5 s; several rules for one URI: the longest),
 *      refreshes every entry every 20 minutes after a success, and after a failure
 *      retries after 1 minute, doubling up to 60 minutes. A failed refresh keeps the last
 *      good keys. Only a 2xx JSON object with a "keys" array is a JWKS (istiod's
 *      validateJWKSFormat); bodies over max_body, redirects to other schemes and
 *      link-local peers (cloud metadata) are failures.
 *   3. hand over: when the set of known key sets changes, a new immutable
 *      mesh_jwks_table (uri -> JWKS, sorted) goes to model_set_jwks; the model's next
 *      snapshot carries it and is pushed in full (debounced like a config change).
 *   4. forget: an entry no snapshot has wanted for evict_ns (istiod: 7 days) is dropped;
 *      keys not refreshed successfully for evict_ns are dropped too (fail closed).
 * A URI whose keys are unknown (first fetch pending or failed) is simply absent from the
 * table: the generator inlines istiod's public-only JWKS, so a token fails to verify and
 * a request without one passes, as with istiod after a failed fetch.
 *
 * Threads and locks: the push callback runs on the model thread and takes only `mu` (a
 * leaf). The fetch thread owns the entries; it takes `mu` to take the wanted list and to
 * sleep, never while fetching or calling model_set_jwks (which takes the model's mailbox
 * lock). `stop` is also read by curl's progress callback to abort a transfer.
 */
#include "pilot/jwks/jwks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"

#define NS_PER_S 1000000000LL
#define JWKS_REFRESH_NS (20 * 60 * NS_PER_S)
#define JWKS_RETRY_NS (60 * NS_PER_S)
#define JWKS_RETRY_MAX_NS (60 * 60 * NS_PER_S)
#define JWKS_EVICT_NS (7 * 24 * 60 * 60 * NS_PER_S)
#define JWKS_TIMEOUT_NS (5 * NS_PER_S)
#define JWKS_MAX_BODY (1u << 20)
#define JWKS_MAX_URIS 10000 /* distinct URIs tracked; more are ignored (and logged) */

typedef struct want {
    char *uri;
    int64_t timeout_ns;
} want;

typedef struct entry {
    char *uri;
    char *jwks; /* last good key set, or NULL */
    int64_t timeout_ns;
    bool wanted;          /* in the latest snapshot's list */
    int64_t last_used_ns; /* last time it was wanted */
    int64_t last_ok_ns;   /* last successful fetch */
    int64_t next_ns;      /* next fetch due (wanted entries) */
    int64_t backoff_ns;   /* retry interval after failures; 0 after a success */
} entry;

struct jwks_fetcher {
    model *m;
    jwks_opts o;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    want *wants; /* under mu: the latest list, sorted by uri */
    size_t nwants;
    bool wants_new;
    atomic_bool stop;

    /* fetch thread */
    entry *ents; /* sorted by uri */
    size_t nents;
    bool dirty; /* the known key sets changed since the last table */
};

static metric *m_ok, *m_fail;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void jwks_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m_ok =
        metric_counter("pilot_jwks_resolver_network_fetch_success_total",
                       "Total number of successfully network fetch by pilot jwks resolver", NULL);
    m_fail = metric_counter("pilot_jwks_resolver_network_fetch_fail_total",
                            "Total number of failed network fetch by pilot jwks resolver", NULL);
}

static void wants_free(want *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i].uri);
    free(w);
}

static int cmp_want(const void *a, const void *b)
{
    return strcmp(((const want *)a)->uri, ((const want *)b)->uri);
}

/* ---- learning: the push callback (model thread) ---------------------------------------- */

static void on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req)
{
    jwks_fetcher *f = ud;
    if (!snap || (req && !req->full))
        return; /* endpoint-only: the RequestAuthentications are the previous ones */
    want *w = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < snap->nras; i++) {
        const mesh_request_authentication *ra = snap->ras[i];
        for (size_t k = 0; k < ra->njwt_rules; k++) {
            const mesh_jwt_rule *r = &ra->jwt_rules[k];
            if (!r->jwks_uri || (r->jwks && *r->jwks))
                continue; /* an inline jwks wins: nothing to fetch */
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                w = xrealloc(w, cap * sizeof(*w));
            }
            w[n].uri = xstrdup(r->jwks_uri);
            w[n].timeout_ns = r->timeout_ns > 0 ? r->timeout_ns : f->o.default_timeout_ns;
            n++;
        }
    }
    if (n > 1)
        qsort(w, n, sizeof(*w), cmp_want);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out && strcmp(w[out - 1].uri, w[i].uri) == 0) {
            if (w[i].timeout_ns > w[out - 1].timeout_ns)
                w[out - 1].timeout_ns = w[i].timeout_ns;
            free(w[i].uri);
            continue;
        }
        w[out++] = w[i];
    }
    n = out;

    pthread_mutex_lock(&f->mu);
    bool same = n == f->nwants;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(w[i].uri, f->wants[i].uri) == 0 && w[i].timeout_ns == f->wants[i].timeout_ns;
    if (!same) {
        want *old = f->wants;
        size_t nold = f->nwants;
        f->wants = w;
        f->nwants = n;
        f->wants_new = true;
        pthread_cond_signal(&f->cv);
        w = old;
        n = nold;
    }
    pthread_mutex_unlock(&f->mu);
    wants_free(w, n);
}

/* ---- entries (fetch thread) -------------------------------------------------------------- */

static entry *entry_find(jwks_fetcher *f, const char *uri, size_t *pos)
{
    size_t lo = 0, hi = f->nents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->ents[mid].uri, uri);
        if (c == 0) {
            *pos = mid;
            return &f->ents[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

static void entry_remove(jwks_fetcher *f, size_t i)
{
    if (f->ents[i].jwks)
        f->dirty = true;
    free(f->ents[i].uri);
    free(f->ents[i].jwks);
    memmove(&f->ents[i], &f->ents[i + 1], (f->nents - i - 1) * sizeof(entry));
    f->nents--;
}

/* Applies a new wanted list (owned, freed here). */
static void merge_wants(jwks_fetcher *f, want *w, size_t n, int64_t now)
{
    for (size_t i = 0; i < f->nents; i++) {
        if (f->ents[i].wanted)
            f->ents[i].last_used_ns = now;
        f->ents[i].wanted = false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t pos;
        entry *e = entry_find(f, w[i].uri, &pos);
        if (!e) {
            if (f->nents >= JWKS_MAX_URIS) {
                LOG_WARN("jwks", "more than %d jwksUris: not fetching %s", JWKS_MAX_URIS, w[i].uri);
                continue;
            }
            f->ents = xrealloc(f->ents, (f->nents + 1) * sizeof(entry));
            memmove(&f->ents[pos + 1], &f->ents[pos], (f->nents - pos) * sizeof(entry));
            f->nents++;
            e = &f->ents[pos];
            memset(e, 0, sizeof(*e));
            e->uri = w[i].uri;
            w[i].uri = NULL;
            e->next_ns = now; /* new: fetch at once */
        }
        e->wanted = true;
        e->last_used_ns = now;
        e->timeout_ns = w[i].timeout_ns;
    }
    wants_free(w, n);
}

/* istiod's eviction: unused, or not refreshed successfully, for evict_ns. */
static void evict(jwks_fetcher *f, int64_t now)
{
    for (size_t i = f->nents; i-- > 0;) {
        entry *e = &f->ents[i];
        if (!e->wanted && now - e->last_used_ns >= f->o.evict_ns) {
            LOG_INFO("jwks", "Removed cached JWT public key from %s (unused)", e->uri);
            entry_remove(f, i);
        } else if (e->jwks && now - e->last_ok_ns >= f->o.evict_ns) {
            LOG_WARN("jwks", "JWT public key from %s not refreshed for too long: dropped", e->uri);
            free(e->jwks);
            e->jwks = NULL;
            f->dirty = true;
        }
    }
}

/* ---- one transfer ---------------------------------------------------------------------- */

typedef struct body {
    char *data;
    size_t len;
    size_t max;
    bool toobig;
} body;

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    body *b = ud;
    size_t n = sz * nm;
    if (b->len + n > b->max) {
        b->toobig = true;
        return 0; /* aborts the transfer */
    }
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&((jwks_fetcher *)ud)->stop) ? 1 : 0;
}

/* istiod refuses link-local peers (169.254/16 with the cloud metadata address, fe80::/10)
 * when it dials a jwksUri; so do we, at connect time (after DNS). */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud, (void)purpose;
    if (a->family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->addr;
        uint32_t ip = ntohl(in->sin_addr.s_addr);
        if ((ip >> 16) == 0xa9fe) /* 169.254.0.0/16 */
            return CURL_SOCKET_BAD;
    } else if (a->family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->addr;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
            return CURL_SOCKET_BAD;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 169 && b[13] == 254)
            return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* validateJWKSFormat: a JSON object with a "keys" array. */
static bool jwks_format_ok(const char *s)
{
    cJSON *doc = cJSON_Parse(s);
    bool ok = cJSON_IsObject(doc) && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "keys"));
    cJSON_Delete(doc);
    return ok;
}

/* GETs uri. 0 and *out (malloc'd JWKS) on success; -1 with a reason in err. */
static int fetch(jwks_fetcher *f, const char *uri, int64_t timeout_ns, char **out, char *err,
                 size_t errlen)
{
    int rc = -1;
    body b = {.max = f->o.max_body};
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot create a curl handle");
        goto out;
    }
    long ms = (long)(timeout_ns / 1000000);
    curl_easy_setopt(h, CURLOPT_URL, uri);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L); /* Go's client follows up to 10 */
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pilot-discovery");
    CURLcode cc = curl_easy_perform(h);
    if (b.toobig) {
        snprintf(err, errlen, "response larger than %zu bytes", b.max);
        goto out;
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        snprintf(err, errlen, "status %ld, message %.100s", status, b.data ? b.data : "");
        goto out;
    }
    if (!b.data || !jwks_format_ok(b.data)) {
        /* istiod: never inline a body that is not a JWKS (an SSRF'd URI would leak it) */
        snprintf(err, errlen, "not a valid JWKS (a JSON object with a \"keys\" array)");
        goto out;
    }
    *out = b.data;
    b.data = NULL;
    rc = 0;
out:
    if (h)
        curl_easy_cleanup(h);
    free(b.data);
    return rc;
}

/* Two key sets are the same when their JSON is (formatting aside). */
static bool jwks_equal(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    bool eq = x && y && cJSON_Compare(x, y, true);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

/* Fetches every wanted entry that is due. The entry array does not change meanwhile (only
 * this thread changes it), so the URI is copied only for the log lines' sake. */
static void fetch_due(jwks_fetcher *f)
{
    for (size_t i = 0; i < f->nents && !atomic_load(&f->stop); i++) {
        entry *e = &f->ents[i];
        int64_t now = util_now_ns();
        if (!e->wanted || e->next_ns > now)
            continue;
        char err[256] = "";
        char *got = NULL;
        if (fetch(f, e->uri, e->timeout_ns, &got, err, sizeof err) != 0) {
            if (atomic_load(&f->stop))
                return;
            metric_add(m_fail, NULL, 1);
            e->backoff_ns = e->backoff_ns ? e->backoff_ns * 2 : f->o.retry_ns;
            if (e->backoff_ns > f->o.retry_max_ns)
                e->backoff_ns = f->o.retry_max_ns;
            e->next_ns = util_now_ns() + e->backoff_ns;
            LOG_ERR("jwks", "Failed to fetch public key from jwks URI %s: %s%s", e->uri, err,
                    e->jwks ? " (keeping the last keys)" : "");
            continue;
        }
        metric_add(m_ok, NULL, 1);
        e->backoff_ns = 0;
        e->last_ok_ns = util_now_ns();
        e->next_ns = e->last_ok_ns + f->o.refresh_ns;
        if (e->jwks && jwks_equal(e->jwks, got)) {
            free(got);
            continue;
        }
        LOG_INFO("jwks", "%s cached JWT public key from %s", e->jwks ? "Updated" : "Fetched",
                 e->uri);
        free(e->jwks);
        e->jwks = got;
        f->dirty = true;
    }
}

/* Hands the model a new table when the known key sets changed. */
static void hand_over(jwks_fetcher *f)
{
    if (!f->dirty)
        return;
    size_t n = 0;
    for (size_t i = 0; i < f->nents; i++)
        n += f->ents[i].jwks != NULL;
    mesh_jwks_table *t = mesh_jwks_table_new(n);
    size_t k = 0;
    for (size_t i = 0; i < f->nents; i++) {
        if (!f->ents[i].jwks)
            continue;
        t->v[k].uri = xstrdup(f->ents[i].uri);
        t->v[k].jwks = xstrdup(f->ents[i].jwks);
        k++;
    }
    mesh_jwks_table_sort(t); /* already in order; cheap, and the contract says sorted */
    f->dirty = false;
    model_set_jwks(f->m, t);
}

static void *fetch_thread(void *arg)
{
    jwks_fetcher *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!atomic_load(&f->stop)) {
        if (f->wants_new) {
            want *w = f->wants;
            size_t n = f->nwants;
            /* keep our copy of the list for the callback's comparison: duplicate it */
            want *mine = n ? xcalloc(n, sizeof(*mine)) : NULL;
            for (size_t i = 0; i < n; i++) {
                mine[i].uri = xstrdup(w[i].uri);
                mine[i].timeout_ns = w[i].timeout_ns;
            }
            f->wants_new = false;
            pthread_mutex_unlock(&f->mu);
            merge_wants(f, mine, n, util_now_ns());
            pthread_mutex_lock(&f->mu);
            continue;
        }
        pthread_mutex_unlock(&f->mu);
        int64_t now = util_now_ns();
        evict(f, now);
        fetch_due(f);
        hand_over(f);
        /* sleep until the next fetch is due, an hour at most (eviction), or a new list */
        now = util_now_ns();
        int64_t wake = now + 60 * 60 * NS_PER_S;
        for (size_t i = 0; i < f->nents; i++)
            if (f->ents[i].wanted && f->ents[i].next_ns < wake)
                wake = f->ents[i].next_ns;
        pthread_mutex_lock(&f->mu);
        if (wake > now && !f->wants_new && !atomic_load(&f->stop)) {
            struct timespec ts = {.tv_sec = wake / NS_PER_S, .tv_nsec = wake % NS_PER_S};
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

jwks_fetcher *jwks_fetcher_new(model *m, const jwks_opts *opts)
{
    if (!m)
        return NULL;
    pthread_once(&curl_once, jwks_global_init);
    jwks_fetcher *f = xcalloc(1, sizeof(*f));
    f->m = m;
    if (opts)
        f->o = *opts;
    if (f->o.refresh_ns <= 0)
        f->o.refresh_ns = JWKS_REFRESH_NS;
    if (f->o.retry_ns <= 0)
        f->o.retry_ns = JWKS_RETRY_NS;
    if (f->o.retry_max_ns <= 0)
        f->o.retry_max_ns = JWKS_RETRY_MAX_NS;
    if (f->o.evict_ns <= 0)
        f->o.evict_ns = JWKS_EVICT_NS;
    if (f->o.default_timeout_ns <= 0)
        f->o.default_timeout_ns = JWKS_TIMEOUT_NS;
    if (!f->o.max_body)
        f->o.max_body = JWKS_MAX_BODY;
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* util_now_ns' clock */
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&f->stop, false);
    model_on_push(m, on_push, f);
    return f;
}

int jwks_fetcher_start(jwks_fetcher *f)
{
    if (!f || f->started)
        return -1;
    if (pthread_create(&f->thread, NULL, fetch_thread, f) != 0) {
        LOG_ERR("jwks", "cannot start the JWKS fetch thread: %s", strerror(errno));
        return -1;
    }
    f->started = true;
    return 0;
}

void jwks_fetcher_free(jwks_fetcher *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->stop, true);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->started)
        pthread_join(f->thread, NULL);
    for (size_t i = 0; i < f->nents; i++) {
        free(f->ents[i].uri);
        free(f->ents[i].jwks);
    }
    free(f->ents);
    wants_free(f->wants, f->nwants);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}
