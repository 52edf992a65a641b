/* reflector: list+watch of one resource, the way client-go's Reflector does it.
 *
 *   WAIT --begin--> LIST (pages of page_limit, following continue) --last page--> WATCH
 *   WATCH --clean close--> WATCH again from the last resourceVersion (no relist)
 *   WATCH --410 (HTTP status or ERROR event)--> LIST
 *   any error --backoff 0.8 s doubling to 30 s, jittered--> retry (a watch the server
 *   accepted that delivered events or stayed open a second before it failed starts over)
 *
 * A list reconciles: every item is marked with the list's generation and, once the last
 * page is in, objects the sink knew that the list no longer has get a DELETE, so the sink
 * converges to the server's state after any gap. Items whose resourceVersion did not
 * change since we last reported them are not re-sent.
 *
 * Runs only on the source's thread; the stats fields are written under the source lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_internal.h"
#include "pilot/base/log.h"

#define LIST_PAGE_MAX (512u << 20)
#define ERRBODY_MAX 4096
#define WATCH_GRACE_S 30 /* a watch still open this long past its timeout is stalled */
#define SHORT_WATCH_NS 1000000000LL

static const char *obj_str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? xstrdup(s) : NULL;
}

k8s_reflector *k8s_reflector_new(struct k8s_source *src, const k8s_resdef *def, const char *version)
{
    k8s_reflector *r = xcalloc(1, sizeof(*r));
    const k8s_config *cfg = k8s_source_config(src);
    static const char *evs[3] = {"add", "update", "delete"};

    r->src = src;
    r->def = *def;
    if (def->group[0] == '\0') {
        r->api_version = xstrdup(version);
        r->path = xasprintf("/api/%s/%s", version, def->plural);
    } else {
        r->api_version = xasprintf("%s/%s", def->group, version);
        r->path = xasprintf("/apis/%s/%s/%s", def->group, version, def->plural);
    }
    r->need_list = true;
    strbuf_init(&r->body, LIST_PAGE_MAX);
    strbuf_init(&r->errbody, ERRBODY_MAX);
    k8s_linebuf_init(&r->lines, K8S_LINE_MAX);
    k8s_keyset_init(&r->known);
    k8s_backoff_init(&r->backoff, cfg->backoff_initial_ms, cfg->backoff_max_ms,
                     util_hash64(r->path, strlen(r->path), (uint64_t)util_now_ns()));
    for (int i = 0; i < 3; i++)
        r->label[i] = xasprintf("%s,%s", def->metric_type, evs[i]);
    r->next_at_ns = 0;
    return r;
}

static void end_transfer(k8s_reflector *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(k8s_source_multi(r->src), r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
}

void k8s_reflector_free(k8s_reflector *r)
{
    if (r == NULL)
        return;
    end_transfer(r);
    strbuf_free(&r->body);
    strbuf_free(&r->errbody);
    k8s_linebuf_free(&r->lines);
    k8s_keyset_free(&r->known);
    free(r->api_version);
    free(r->path);
    free(r->rv);
    free(r->cont);
    free(r->list_rv);
    for (int i = 0; i < 3; i++)
        free(r->label[i]);
    free(r);
}

static void set_state(k8s_reflector *r, k8s_rstate st)
{
    k8s_source_lock(r->src);
    r->state = st;
    if (st == K8S_R_WATCH)
        r->st_watches++;
    k8s_source_unlock(r->src);
}

static void note_rv(k8s_reflector *r, const char *rv)
{
    if (rv == NULL || rv[0] == '\0')
        return;
    set_str(&r->rv, rv);
    k8s_source_lock(r->src);
    snprintf(r->st_rv, sizeof(r->st_rv), "%s", rv);
    k8s_source_unlock(r->src);
}

/* Refreshes the stats' object count and retained bytes (a walk of the key set, so only at
 * the end of a list or a watch, not per event). */
static void update_key_bytes(k8s_reflector *r)
{
    size_t bytes =
        r->key_bytes_dirty || r->st_key_bytes == 0 ? k8s_keyset_bytes(&r->known) : r->st_key_bytes;
    r->key_bytes_dirty = false;
    k8s_source_lock(r->src);
    r->st_objects = r->known.count;
    r->st_key_bytes = bytes;
    k8s_source_unlock(r->src);
}

static void schedule(k8s_reflector *r, int64_t delay_ms, bool list)
{
    end_transfer(r);
    update_key_bytes(r);
    if (list)
        r->need_list = true;
    r->next_at_ns = util_now_ns() + delay_ms * 1000000LL;
    set_state(r, K8S_R_WAIT);
}

static void schedule_error(k8s_reflector *r, bool list, const char *why)
{
    int64_t d = k8s_backoff_next(&r->backoff);
    LOG_WARN("k8s", "%s %s: %s; retrying in %lld ms", list ? "list" : "watch", r->path, why,
             (long long)d);
    k8s_source_lock(r->src);
    r->st_errors++;
    k8s_source_unlock(r->src);
    schedule(r, d, list);
}

/* A failed request: the curl error, or the HTTP status and the start of the reply body. */
static void schedule_failure(k8s_reflector *r, bool list, CURLcode cr, long status)
{
    char why[160];

    if (cr != CURLE_OK)
        snprintf(why, sizeof(why), "%s", curl_easy_strerror(cr));
    else
        snprintf(why, sizeof(why), "HTTP %ld %.100s", status,
                 r->errbody.data ? r->errbody.data : "");
    schedule_error(r, list, why);
}

/* ---- object delivery ------------------------------------------------------------------ */

/* The key of obj ("ns/name", or "name" when cluster-scoped); NULL when it has no name. */
static char *key_of(const cJSON *obj)
{
    const char *name = obj_str(obj, "metadata", "name");
    const char *ns = obj_str(obj, "metadata", "namespace");
    if (name == NULL || name[0] == '\0')
        return NULL;
    return ns && ns[0] ? xasprintf("%s/%s", ns, name) : xstrdup(name);
}

/* List items carry no apiVersion or kind: set them so the sink sees what kubectl shows. */
static void set_type(k8s_reflector *r, cJSON *obj)
{
    if (obj_str(obj, "apiVersion", NULL) == NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
        cJSON_AddStringToObject(obj, "apiVersion", r->api_version);
    }
    if (obj_str(obj, "kind", NULL) == NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
        cJSON_AddStringToObject(obj, "kind", r->def.kind);
    }
}

static void count_event(k8s_reflector *r)
{
    k8s_source_lock(r->src);
    r->st_events++;
    r->st_last_event_wall_ns = util_wall_ns();
    r->st_objects = r->known.count;
    k8s_source_unlock(r->src);
    r->key_bytes_dirty = true;
}

/* Takes obj. During a list, gen marks it seen; an unchanged object is not re-sent. */
static void upsert(k8s_reflector *r, cJSON *obj, bool listing)
{
    char *key = key_of(obj);
    const char *rv = obj_str(obj, "metadata", "resourceVersion");
    k8s_keyent *e;
    bool fresh;

    if (key == NULL) {
        LOG_WARN("k8s", "%s: an object without metadata.name was ignored", r->path);
        cJSON_Delete(obj);
        return;
    }
    e = k8s_keyset_get(&r->known, key);
    fresh = e == NULL;
    if (fresh)
        e = k8s_keyset_put(&r->known, key);
    if (listing)
        e->gen = r->list_gen;
    if (!fresh && listing && rv != NULL && e->rv != NULL && strcmp(rv, e->rv) == 0) {
        cJSON_Delete(obj); /* unchanged since we last reported it */
        free(key);
        return;
    }
    set_str(&e->rv, rv);
    free(key);
    set_type(r, obj);
    count_event(r);
    k8s_source_emit(r->src, r, SOURCE_EV_UPSERT, obj, fresh ? 0 : 1);
}

static void delete_obj(k8s_reflector *r, cJSON *obj)
{
    char *key = key_of(obj);
    if (key == NULL) {
        cJSON_Delete(obj);
        return;
    }
    k8s_keyset_del(&r->known, key);
    free(key);
    set_type(r, obj);
    count_event(r);
    k8s_source_emit(r->src, r, SOURCE_EV_DELETE, obj, 2);
}

/* After the last page: everything not seen in this list is gone. */
static void reconcile(k8s_reflector *r)
{
    char **gone = NULL;
    size_t ngone = 0;

    for (size_t i = 0; i < r->known.cap; i++) {
        k8s_keyent *e = &r->known.slots[i];
        if (e->key == NULL || e->key == K8S_KEY_TOMB || e->gen == r->list_gen)
            continue;
        if (ngone % 64 == 0)
            gone = xrealloc(gone, (ngone + 64) * sizeof(*gone));
        gone[ngone++] = xstrdup(e->key);
    }
    for (size_t i = 0; i < ngone; i++) {
        cJSON *obj = cJSON_CreateObject(), *md;
        char *slash = strchr(gone[i], '/');
        md = cJSON_AddObjectToObject(obj, "metadata");
        if (slash != NULL) {
            *slash = '\0';
            cJSON_AddStringToObject(md, "name", slash + 1);
            cJSON_AddStringToObject(md, "namespace", gone[i]);
        } else {
            cJSON_AddStringToObject(md, "name", gone[i]);
        }
        LOG_DEBUG("k8s", "%s: %s%s%s vanished while away: deleted", r->path, gone[i],
                  slash ? "/" : "", slash ? slash + 1 : "");
        delete_obj(r, obj);
        free(gone[i]);
    }
    free(gone);
}

/* ---- list ----------------------------------------------------------------------------- */

static size_t on_list_data(char *p, size_t size, size_t n, void *ud)
{
    k8s_reflector *r = ud;
    long status = 0;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        strbuf_append(&r->errbody, p, size * n < ERRBODY_MAX / 2 ? size * n : ERRBODY_MAX / 2);
        return size * n;
    }
    if (strbuf_append(&r->body, p, size * n) != 0)
        return 0;
    return size * n;
}

static size_t on_watch_data(char *p, size_t size, size_t n, void *ud);

static int start(k8s_reflector *r, const char *path, bool watch, long timeout_s)
{
    char err[256];

    r->easy = k8s_client_easy(k8s_source_client(r->src), path, &r->hdrs, err, sizeof(err));
    if (r->easy == NULL) {
        schedule_error(r, r->need_list, err);
        return -1;
    }
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, watch ? on_watch_data : on_list_data);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, timeout_s);
    strbuf_reset(&r->body);
    strbuf_reset(&r->errbody);
    k8s_linebuf_reset(&r->lines);
    if (curl_multi_add_handle(k8s_source_multi(r->src), r->easy) != CURLM_OK) {
        schedule_error(r, r->need_list, "curl_multi_add_handle failed");
        return -1;
    }
    return 0;
}

static void begin_list_page(k8s_reflector *r)
{
    const k8s_config *cfg = k8s_source_config(r->src);
    int limit = cfg->page_limit > 0 ? cfg->page_limit : 500;
    char *path;

    if (r->cont != NULL) {
        char *esc = curl_easy_escape(NULL, r->cont, 0);
        path = xasprintf("%s?limit=%d&continue=%s%s%s", r->path, limit, esc ? esc : "",
                         r->def.selector ? "&" : "", r->def.selector ? r->def.selector : "");
        curl_free(esc);
    } else {
        path = xasprintf("%s?limit=%d%s%s", r->path, limit, r->def.selector ? "&" : "",
                         r->def.selector ? r->def.selector : "");
    }
    set_state(r, K8S_R_LIST);
    start(r, path, false, 300);
    free(path);
}

static void begin_watch(k8s_reflector *r)
{
    const k8s_config *cfg = k8s_source_config(r->src);
    int lo = cfg->watch_timeout_min_s > 0 ? cfg->watch_timeout_min_s : 300;
    int hi = cfg->watch_timeout_max_s > 0 ? cfg->watch_timeout_max_s : 600;
    int64_t t = k8s_rand_range(k8s_source_rng(r->src), lo, hi < lo ? lo : hi);
    char *path = xasprintf("%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true"
                           "&timeoutSeconds=%lld%s%s",
                           r->path, r->rv ? r->rv : "0", (long long)t, r->def.selector ? "&" : "",
                           r->def.selector ? r->def.selector : "");

    r->abort_relist = r->abort_bad = false;
    r->watch_start_ns = util_now_ns();
    r->watch_events = 0;
    set_state(r, K8S_R_WATCH);
    start(r, path, true, (long)t + WATCH_GRACE_S);
    free(path);
}

void k8s_reflector_begin(k8s_reflector *r)
{
    if (r->need_list) {
        r->need_list = false;
        r->list_gen++;
        set_str(&r->cont, NULL);
        set_str(&r->list_rv, NULL);
        k8s_source_lock(r->src);
        r->st_relists++;
        k8s_source_unlock(r->src);
        begin_list_page(r);
    } else {
        begin_watch(r);
    }
}

/* A full list page arrived: deliver its items. Returns 0, or -1 for a malformed reply. */
static int list_page(k8s_reflector *r)
{
    cJSON *doc = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    cJSON *items, *it;
    const char *rv, *cont;

    strbuf_reset(&r->body);
    if (doc == NULL)
        return -1;
    items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    rv = obj_str(doc, "metadata", "resourceVersion");
    if (!cJSON_IsArray(items) && !cJSON_IsNull(items) && items != NULL) {
        cJSON_Delete(doc);
        return -1;
    }
    if (r->list_rv == NULL && rv != NULL)
        set_str(&r->list_rv, rv);
    cont = obj_str(doc, "metadata", "continue");
    set_str(&r->cont, cont && cont[0] ? cont : NULL);
    /* Hand each item over without copying it. */
    while (items != NULL && (it = items->child) != NULL) {
        cJSON_DetachItemViaPointer(items, it);
        if (cJSON_IsObject(it))
            upsert(r, it, true);
        else
            cJSON_Delete(it);
    }
    cJSON_Delete(doc);
    return 0;
}

static void list_done(k8s_reflector *r, CURLcode cr, long status)
{
    if (cr == CURLE_OK && status == 200) {
        if (list_page(r) != 0) {
            set_str(&r->cont, NULL);
            schedule_error(r, true, "the list reply is not a JSON list");
            return;
        }
        end_transfer(r);
        if (r->cont != NULL) {
            begin_list_page(r);
            return;
        }
        reconcile(r);
        note_rv(r, r->list_rv);
        update_key_bytes(r);
        k8s_backoff_reset(&r->backoff);
        if (!r->synced) {
            k8s_source_lock(r->src);
            r->synced = true;
            k8s_source_unlock(r->src);
            LOG_INFO("k8s", "%s: initial list done (%zu objects, resourceVersion %s)", r->path,
                     r->known.count, r->rv ? r->rv : "");
            k8s_source_reflector_synced(r->src);
        }
        begin_watch(r);
        return;
    }
    if (cr == CURLE_OK && status == 410) {
        /* The continue token expired: start over with a fresh list. */
        LOG_INFO("k8s", "%s: list continue token expired, listing again", r->path);
        schedule(r, 0, true);
        return;
    }
    schedule_failure(r, true, cr, status);
}

/* ---- watch ---------------------------------------------------------------------------- */

static int on_line(void *ud, const char *line, size_t len)
{
    k8s_reflector *r = ud;
    cJSON *ev = cJSON_ParseWithLength(line, len);
    const char *type = obj_str(ev, "type", NULL);
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    int rc = 0;

    if (ev == NULL || type == NULL || !cJSON_IsObject(obj)) {
        LOG_WARN("k8s", "%s: malformed watch event (%zu bytes), restarting the watch", r->path,
                 len);
        r->abort_bad = true;
        rc = 1;
        goto out;
    }
    if (strcmp(type, "ERROR") == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        const char *msg = obj_str(obj, "message", NULL);
        if (cJSON_IsNumber(code) && code->valueint == 410)
            LOG_INFO("k8s", "%s: watch expired (410 %s), relisting", r->path, msg ? msg : "");
        else
            LOG_WARN("k8s", "%s: watch error %d: %s, relisting", r->path,
                     cJSON_IsNumber(code) ? code->valueint : 0, msg ? msg : "");
        r->abort_relist = true;
        rc = 1;
        goto out;
    }
    r->watch_events++;
    note_rv(r, obj_str(obj, "metadata", "resourceVersion"));
    if (strcmp(type, "BOOKMARK") == 0)
        goto out;
    cJSON_DetachItemViaPointer(ev, obj);
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        upsert(r, obj, false);
    } else if (strcmp(type, "DELETED") == 0) {
        delete_obj(r, obj);
    } else {
        LOG_WARN("k8s", "%s: unknown watch event type %s ignored", r->path, type);
        cJSON_Delete(obj);
    }
out:
    cJSON_Delete(ev);
    return rc;
}

static size_t on_watch_data(char *p, size_t size, size_t n, void *ud)
{
    k8s_reflector *r = ud;
    long status = 0;
    int rc;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        strbuf_append(&r->errbody, p, size * n < ERRBODY_MAX / 2 ? size * n : ERRBODY_MAX / 2);
        return size * n;
    }
    rc = k8s_linebuf_feed(&r->lines, p, size * n, on_line, r);
    if (rc == -1) {
        LOG_WARN("k8s", "%s: a watch event exceeds %u bytes, restarting the watch", r->path,
                 K8S_LINE_MAX);
        r->abort_bad = true;
    }
    return rc == 0 ? size * n : 0; /* 0 makes curl end the transfer */
}

static void watch_done(k8s_reflector *r, CURLcode cr, long status)
{
    if (r->abort_relist) {
        schedule(r, 0, true);
        return;
    }
    if (r->abort_bad) {
        schedule_error(r, false, "bad watch stream");
        return;
    }
    if (cr == CURLE_OK && status == 410) {
        LOG_INFO("k8s", "%s: resourceVersion %s too old (410), relisting", r->path,
                 r->rv ? r->rv : "");
        schedule(r, 0, true);
        return;
    }
    if ((cr == CURLE_OK && status == 200) || cr == CURLE_OPERATION_TIMEDOUT) {
        /* The server ended the watch (its timeout) or we gave up on a stalled one:
         * carry on from the last resourceVersion. A watch that closes at once with
         * nothing in it is treated as an error so a flapping server is not hammered. */
        if (r->watch_events == 0 && util_now_ns() - r->watch_start_ns < SHORT_WATCH_NS) {
            schedule_error(r, false, "watch closed immediately");
            return;
        }
        LOG_DEBUG("k8s", "%s: watch ended, re-watching from %s", r->path, r->rv ? r->rv : "");
        k8s_backoff_reset(&r->backoff);
        schedule(r, 0, false);
        return;
    }
    /* A watch the server accepted (200) that delivered events, or stayed open for a while
     * (a quiet resource has no events), worked: the server was healthy, so this cut starts
     * a new outage and its retry starts from the initial delay. Without this the delay only
     * grew (faults a few seconds apart made each recovery slower, up to 45 s), found by
     * tests/k8s/fault_campaign.py. */
    if (status == 200 &&
        (r->watch_events > 0 || util_now_ns() - r->watch_start_ns >= SHORT_WATCH_NS))
        k8s_backoff_reset(&r->backoff);
    schedule_failure(r, false, cr, status);
}

void k8s_reflector_done(k8s_reflector *r, CURLcode cr)
{
    long status = 0;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->state == K8S_R_LIST)
        list_done(r, cr, status);
    else
        watch_done(r, cr, status);
}

cJSON *k8s_reflector_stats(const k8s_reflector *r)
{
    static const char *states[] = {"waiting", "listing", "watching"};
    cJSON *o = cJSON_CreateObject();
    char when[40] = "";

    cJSON_AddStringToObject(o, "resource", r->def.plural);
    cJSON_AddStringToObject(o, "apiVersion", r->api_version);
    cJSON_AddStringToObject(o, "kind", r->def.kind);
    cJSON_AddStringToObject(o, "state", states[r->state]);
    cJSON_AddBoolToObject(o, "synced", r->synced);
    cJSON_AddStringToObject(o, "resourceVersion", r->st_rv);
    if (r->st_last_event_wall_ns != 0)
        util_format_time(r->st_last_event_wall_ns, when, sizeof(when));
    cJSON_AddStringToObject(o, "lastEventTime", when);
    cJSON_AddNumberToObject(o, "events", (double)r->st_events);
    cJSON_AddNumberToObject(o, "relists", (double)r->st_relists);
    cJSON_AddNumberToObject(o, "watches", (double)r->st_watches);
    cJSON_AddNumberToObject(o, "errors", (double)r->st_errors);
    cJSON_AddNumberToObject(o, "objects", (double)r->st_objects);
    /* What the reflector itself keeps per object (key and resourceVersion, for relist
     * reconciliation); the objects live in the model. */
    cJSON_AddNumberToObject(o, "retainedBytes", (double)r->st_key_bytes);
    return o;
}
