/* test_cfgdir: the config-directory source against a real temporary tree and inotify.
 *
 * Events are collected by a test sink under a mutex and awaited with a deadline. To prove
 * that something was NOT sent (an unchanged object, a malformed file), the test writes
 * two marker files one after the other (new names each time) and waits for each one's
 * event: the second cannot be in the directory listing of the pass that saw the first, so
 * it arrives in a later pass, after everything the earlier change caused. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/cfgdir/cfgdir.h"

#define WAIT_NS (10LL * 1000 * 1000 * 1000)

typedef struct tev {
    source_event_type type;
    cJSON *obj;
    char *origin;
} tev;

typedef struct tsink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tev *evs;
    size_t n, cap;
    int synced;
    char *synced_name;
    strbuf logs; /* every "config" error line */
} tsink;

static void ts_event(void *ud, source_event_type type, cJSON *obj, const char *origin)
{
    tsink *ts = ud;
    pthread_mutex_lock(&ts->mu);
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 32;
        ts->evs = xrealloc(ts->evs, ts->cap * sizeof *ts->evs);
    }
    ts->evs[ts->n++] = (tev){type, obj, xstrdup(origin)};
    pthread_cond_broadcast(&ts->cv);
    pthread_mutex_unlock(&ts->mu);
}

static void ts_synced(void *ud, const char *name)
{
    tsink *ts = ud;
    pthread_mutex_lock(&ts->mu);
    ts->synced++;
    free(ts->synced_name);
    ts->synced_name = xstrdup(name);
    pthread_mutex_unlock(&ts->mu);
}

static void ts_log(const char *scope, log_level lvl, const char *line, void *ud)
{
    tsink *ts = ud;
    if (strcmp(scope, "config") != 0 || lvl != LOG_ERROR)
        return;
    pthread_mutex_lock(&ts->mu);
    strbuf_appends(&ts->logs, line);
    strbuf_appends(&ts->logs, "\n");
    pthread_mutex_unlock(&ts->mu);
}

static const char *ev_name(const tev *e)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(e->obj, "metadata");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(md, "name");
    return cJSON_IsString(n) ? n->valuestring : "";
}

static const char *ev_kind(const tev *e)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(e->obj, "kind");
    return cJSON_IsString(k) ? k->valuestring : "";
}

/* Index of the first event at or after `from` with this type, kind and name, or -1. */
static long ts_find_locked(tsink *ts, size_t from, source_event_type type, const char *kind,
                           const char *name)
{
    for (size_t i = from; i < ts->n; i++)
        if (ts->evs[i].type == type && strcmp(ev_kind(&ts->evs[i]), kind) == 0 &&
            strcmp(ev_name(&ts->evs[i]), name) == 0)
            return (long)i;
    return -1;
}

/* Waits until such an event arrives (at index >= from). Returns its index or -1. */
static long ts_wait(tsink *ts, size_t from, source_event_type type, const char *kind,
                    const char *name)
{
    int64_t deadline = util_now_ns() + WAIT_NS;
    long idx;
    pthread_mutex_lock(&ts->mu);
    while ((idx = ts_find_locked(ts, from, type, kind, name)) < 0) {
        int64_t left = deadline - util_now_ns();
        if (left <= 0)
            break;
        struct timespec ts_abs;
        clock_gettime(CLOCK_REALTIME, &ts_abs);
        int64_t step = left < 50000000 ? left : 50000000;
        ts_abs.tv_nsec += step;
        ts_abs.tv_sec += ts_abs.tv_nsec / 1000000000;
        ts_abs.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&ts->cv, &ts->mu, &ts_abs);
    }
    pthread_mutex_unlock(&ts->mu);
    return idx;
}

static size_t ts_count(tsink *ts)
{
    pthread_mutex_lock(&ts->mu);
    size_t n = ts->n;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

/* Events in [from, to) of this type and kind/name (name NULL: any). */
static size_t ts_count_in(tsink *ts, size_t from, size_t to, source_event_type type,
                          const char *kind, const char *name)
{
    size_t n = 0;
    pthread_mutex_lock(&ts->mu);
    for (size_t i = from; i < to && i < ts->n; i++)
        if (ts->evs[i].type == type && strcmp(ev_kind(&ts->evs[i]), kind) == 0 &&
            (!name || strcmp(ev_name(&ts->evs[i]), name) == 0))
            n++;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

static void ts_init(tsink *ts)
{
    memset(ts, 0, sizeof *ts);
    pthread_mutex_init(&ts->mu, NULL);
    pthread_cond_init(&ts->cv, NULL);
    strbuf_init(&ts->logs, 0);
    strbuf_appends(&ts->logs, "");
    log_set_hook(ts_log, ts);
}

static void ts_free(tsink *ts)
{
    log_set_hook(NULL, NULL);
    for (size_t i = 0; i < ts->n; i++) {
        cJSON_Delete(ts->evs[i].obj);
        free(ts->evs[i].origin);
    }
    free(ts->evs);
    free(ts->synced_name);
    strbuf_free(&ts->logs);
    pthread_mutex_destroy(&ts->mu);
    pthread_cond_destroy(&ts->cv);
}

static bool ts_logged(tsink *ts, const char *needle)
{
    pthread_mutex_lock(&ts->mu);
    bool found = strstr(ts->logs.data, needle) != NULL;
    pthread_mutex_unlock(&ts->mu);
    return found;
}

static source_sink sink_of(tsink *ts)
{
    return (source_sink){ts_event, ts_synced, ts};
}

/* ---- the tree ---- */

static char *mktree(void)
{
    char tmpl[] = "/tmp/test_cfgdir.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rmtree(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Writes rel under dir in place (open, write, close: one IN_CLOSE_WRITE). */
static void put(const char *dir, const char *rel, const char *content)
{
    char *p = xasprintf("%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    free(p);
}

static void sub(const char *dir, const char *rel)
{
    char *p = xasprintf("%s/%s", dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

static char *cm(const char *name, const char *value)
{
    return xasprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
                     "  namespace: demo\ndata:\n  v: \"%s\"\n",
                     name, value);
}

/* Writes two marker objects, each in a file of its own, and waits for both: every event
 * caused before has arrived. Returns the event count then. */
static size_t barrier(tsink *ts, const char *dir)
{
    static int seq;
    for (int i = 0; i < 2; i++) {
        char name[32], file[48];
        snprintf(name, sizeof name, "marker-%04d", ++seq);
        snprintf(file, sizeof file, "zz-%s.yaml", name);
        char *y = cm(name, "m");
        put(dir, file, y);
        free(y);
        assert_true(ts_wait(ts, 0, SOURCE_EV_UPSERT, "ConfigMap", name) >= 0);
    }
    return ts_count(ts);
}

/* Events in [from, to) that are not markers. */
static size_t ts_real(tsink *ts, size_t from, size_t to)
{
    size_t n = 0;
    pthread_mutex_lock(&ts->mu);
    for (size_t i = from; i < to && i < ts->n; i++)
        n += strncmp(ev_name(&ts->evs[i]), "marker-", 7) != 0;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

/* ---- tests ---- */

static void test_bad_dir(void **state)
{
    (void)state;
    tsink ts;
    ts_init(&ts);
    assert_null(cfgdir_new("/nonexistent/config/dir", sink_of(&ts)));
    assert_true(ts_logged(&ts, "/nonexistent/config/dir"));
    char *dir = mktree();
    put(dir, "file.yaml", "a: 1\n");
    char *file = xasprintf("%s/file.yaml", dir);
    assert_null(cfgdir_new(file, sink_of(&ts)));
    assert_true(ts_logged(&ts, "not a directory"));
    free(file);
    rmtree(dir);
    ts_free(&ts);
}

static void test_initial_scan(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);

    put(dir, "namespaces.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n"
        "---\n# empty documents are skipped\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n");
    sub(dir, "nested");
    sub(dir, "nested/deeper");
    put(dir, "nested/deeper/svc.yml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n"
        "spec: {ports: [{name: http-web, port: 8080}]}\n");
    put(dir, "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: one, namespace: demo}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: two, namespace: demo}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {namespace: demo}}\n");
    /* typed list as the API returns it: items without kind/apiVersion */
    put(dir, "typed.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"ServiceList\", \"items\": ["
        "{\"metadata\": {\"name\": \"catalog\", \"namespace\": \"demo\"}}]}\n");
    put(dir, "gw.json",
        "{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"Gateway\","
        " \"metadata\": {\"name\": \"gw\"}, \"spec\": {\"selector\": {\"istio\": "
        "\"ingressgateway\"}}}");
    put(dir, "notes.txt", "apiVersion: v1\nkind: Namespace\nmetadata: {name: txt}\n");
    put(dir, ".hidden.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: hidden1}\n");
    sub(dir, ".git");
    put(dir, ".git/x.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: hidden2}\n");

    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    /* the first scan is delivered before start returns, then synced */
    assert_int_equal(ts.synced, 1);
    assert_string_equal(ts.synced_name, "configdir");
    size_t n = ts_count(&ts);
    assert_int_equal(n, 7);
    assert_true(ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "Namespace", "demo") >= 0);
    assert_true(ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "Namespace", "other") >= 0);
    assert_true(ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "ConfigMap", "one") >= 0);
    assert_true(ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "ConfigMap", "two") >= 0);
    assert_true(ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "Gateway", "gw") >= 0);
    long svc = ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "Service", "web");
    assert_true(svc >= 0);
    long typed = ts_find_locked(&ts, 0, SOURCE_EV_UPSERT, "Service", "catalog");
    assert_true(typed >= 0);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(ts.evs[typed].obj, "apiVersion")->valuestring, "v1");
    /* origin is the file; the object arrives whole and typed */
    char *want = xasprintf("%s/nested/deeper/svc.yml", dir);
    assert_string_equal(ts.evs[svc].origin, want);
    free(want);
    cJSON *port =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(ts.evs[svc].obj, "spec"), "ports"),
                           0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(port, "port")->valueint, 8080);
    /* the nameless list item is refused with its file, document and index */
    assert_true(ts_logged(
        &ts, "list.yaml: document 1: items[2]: ConfigMap: missing field \"metadata.name\""));

    cfgdir_free(c);
    rmtree(dir);
    ts_free(&ts);
}

static void test_modify_and_remove(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);
    char *a = cm("a", "1"), *b = cm("b", "1"), *cc = cm("c", "1"), *b2 = cm("b", "2"),
         *d = cm("d", "1");

    char *v1 = xasprintf("%s---\n%s---\n%s", a, b, cc);
    put(dir, "cms.yaml", v1);
    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    assert_int_equal(ts_count(&ts), 3);

    /* a unchanged, b changed, c dropped, d new */
    size_t from = ts_count(&ts);
    char *v2 = xasprintf("%s---\n%s---\n%s", a, b2, d);
    put(dir, "cms.yaml", v2);
    assert_true(ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "b") >= 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "d") >= 0);
    long del = ts_wait(&ts, from, SOURCE_EV_DELETE, "ConfigMap", "c");
    assert_true(del >= 0);
    size_t to = barrier(&ts, dir);
    assert_int_equal(ts_count_in(&ts, from, to, SOURCE_EV_UPSERT, "ConfigMap", "a"), 0);
    assert_int_equal(ts_count_in(&ts, from, to, SOURCE_EV_UPSERT, "ConfigMap", "b"), 1);
    assert_int_equal(ts_count_in(&ts, from, to, SOURCE_EV_DELETE, "ConfigMap", NULL), 1);
    assert_int_equal(ts_real(&ts, from, to), 3);
    /* the delete carries the identity */
    pthread_mutex_lock(&ts.mu);
    cJSON *dobj = ts.evs[del].obj;
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dobj, "apiVersion")->valuestring, "v1");
    cJSON *md = cJSON_GetObjectItemCaseSensitive(dobj, "metadata");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "namespace")->valuestring, "demo");
    pthread_mutex_unlock(&ts.mu);

    /* rewriting identical bytes sends nothing */
    from = ts_count(&ts);
    put(dir, "cms.yaml", v2);
    to = barrier(&ts, dir);
    assert_int_equal(ts_real(&ts, from, to), 0);

    /* renaming keeps the objects: no delete, the objects come from the new name */
    from = ts_count(&ts);
    char *p1 = xasprintf("%s/cms.yaml", dir), *p2 = xasprintf("%s/renamed.yaml", dir);
    assert_int_equal(rename(p1, p2), 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "a") >= 0);
    to = barrier(&ts, dir);
    assert_int_equal(ts_count_in(&ts, from, to, SOURCE_EV_DELETE, "ConfigMap", NULL), 0);

    /* removal deletes everything the file had */
    from = ts_count(&ts);
    assert_int_equal(unlink(p2), 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_DELETE, "ConfigMap", "a") >= 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_DELETE, "ConfigMap", "b") >= 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_DELETE, "ConfigMap", "d") >= 0);
    to = barrier(&ts, dir);
    assert_int_equal(ts_real(&ts, from, to), 3);

    free(p1);
    free(p2);
    free(v1);
    free(v2);
    free(a);
    free(b);
    free(cc);
    free(b2);
    free(d);
    cfgdir_free(c);
    rmtree(dir);
    ts_free(&ts);
}

static void test_malformed_keeps_objects(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);
    char *a = cm("a", "1"), *a2 = cm("a", "2");
    put(dir, "a.yaml", a);
    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    assert_int_equal(ts_count(&ts), 1);

    size_t from = ts_count(&ts);
    put(dir, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n bad: [\n");
    size_t to = barrier(&ts, dir);
    assert_int_equal(ts_real(&ts, from, to), 0); /* no delete, no upsert */
    char *want = xasprintf("%s/a.yaml: line 5 column 2:", dir);
    assert_true(ts_logged(&ts, want));
    free(want);

    /* fixed again: the diff is against the last good objects */
    from = ts_count(&ts);
    put(dir, "a.yaml", a2);
    assert_true(ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "a") >= 0);
    to = barrier(&ts, dir);
    assert_int_equal(ts_real(&ts, from, to), 1);

    /* a malformed JSON file is reported with its position too, and sends nothing */
    from = ts_count(&ts);
    put(dir, "b.json", "{\"apiVersion\": \"v1\",\n \"kind\": }");
    to = barrier(&ts, dir);
    assert_int_equal(ts_real(&ts, from, to), 0);
    assert_true(ts_logged(&ts, "b.json: line 2 column"));

    /* a file over the size limit is skipped with an error (sparse: costs no disk) */
    char *big = xasprintf("%s/big.yaml", dir);
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 17 << 20), 0);
    close(fd);
    barrier(&ts, dir);
    assert_true(ts_logged(&ts, "big.yaml: file is 17825792 bytes, larger than"));
    free(big);

    free(a);
    free(a2);
    cfgdir_free(c);
    rmtree(dir);
    ts_free(&ts);
}

static void test_new_subdirectories(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);
    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    assert_int_equal(ts_count(&ts), 0);
    assert_int_equal(ts.synced, 1);

    /* a directory made after the start is watched and read */
    sub(dir, "later");
    char *y = cm("in-later", "1");
    put(dir, "later/x.yaml", y);
    free(y);
    assert_true(ts_wait(&ts, 0, SOURCE_EV_UPSERT, "ConfigMap", "in-later") >= 0);
    /* and later changes below it are seen through its own watch */
    size_t from = ts_count(&ts);
    y = cm("in-later", "2");
    put(dir, "later/x.yaml", y);
    free(y);
    assert_true(ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "in-later") >= 0);

    /* a populated directory moved in from outside */
    char *outside = mktree();
    char *nested = xasprintf("%s/deep", outside);
    assert_int_equal(mkdir(nested, 0755), 0);
    y = cm("moved-in", "1");
    put(nested, "m.yaml", y);
    free(y);
    char *target = xasprintf("%s/movedin", dir);
    from = ts_count(&ts);
    assert_int_equal(rename(outside, target), 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "moved-in") >= 0);

    /* and moved out again: its objects go */
    char *away = xasprintf("%s.away", target);
    from = ts_count(&ts);
    char *away_parent = xasprintf("%s-away", dir);
    assert_int_equal(mkdir(away_parent, 0755), 0);
    free(away);
    away = xasprintf("%s/movedin", away_parent);
    assert_int_equal(rename(target, away), 0);
    assert_true(ts_wait(&ts, from, SOURCE_EV_DELETE, "ConfigMap", "moved-in") >= 0);
    /* a whole subtree removed */
    from = ts_count(&ts);
    char *later = xasprintf("%s/later", dir);
    nftw(later, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_true(ts_wait(&ts, from, SOURCE_EV_DELETE, "ConfigMap", "in-later") >= 0);

    free(later);
    free(away);
    free(nested);
    free(target);
    free(outside);
    rmtree(away_parent);
    cfgdir_free(c);
    rmtree(dir);
    ts_free(&ts);
}

/* An object defined in two files survives the removal of one of them. */
static void test_same_object_two_files(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);
    char *v1 = cm("shared", "from-a"), *v2 = cm("shared", "from-b");
    put(dir, "a.yaml", v1);
    put(dir, "b.yaml", v2);
    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    assert_int_equal(ts_count(&ts), 2);

    size_t from = ts_count(&ts);
    char *pb = xasprintf("%s/b.yaml", dir);
    assert_int_equal(unlink(pb), 0);
    long idx = ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "shared");
    assert_true(idx >= 0);
    size_t to = barrier(&ts, dir);
    assert_int_equal(ts_count_in(&ts, from, to, SOURCE_EV_DELETE, "ConfigMap", "shared"), 0);
    pthread_mutex_lock(&ts.mu);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(ts.evs[idx].obj, "data");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "v")->valuestring, "from-a");
    pthread_mutex_unlock(&ts.mu);

    free(pb);
    free(v1);
    free(v2);
    cfgdir_free(c);
    rmtree(dir);
    ts_free(&ts);
}

/* A file being rewritten in place is not read half-way: while its writer has it open
 * (truncated, half written) passes come and go without touching its objects. */
static void test_half_written_file_waits(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);
    char *v1 = cm("slow", "1"), *v2 = cm("slow", "2");
    put(dir, "slow.yaml", v1);
    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    assert_int_equal(ts_count(&ts), 1);

    size_t from = ts_count(&ts);
    char *p = xasprintf("%s/slow.yaml", dir);
    int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
    assert_true(fd >= 0);
    size_t half = strlen(v2) / 2;
    assert_int_equal(write(fd, v2, half), (ssize_t)half);
    size_t to = barrier(&ts, dir); /* at least one full pass while it is open */
    assert_int_equal(ts_real(&ts, from, to), 0);
    assert_int_equal(write(fd, v2 + half, strlen(v2) - half), (ssize_t)(strlen(v2) - half));
    close(fd);
    long idx = ts_wait(&ts, from, SOURCE_EV_UPSERT, "ConfigMap", "slow");
    assert_true(idx >= 0);
    to = barrier(&ts, dir);
    assert_int_equal(ts_real(&ts, from, to), 1);
    assert_false(ts_logged(&ts, "slow.yaml"));
    pthread_mutex_lock(&ts.mu);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(ts.evs[idx].obj, "data");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "v")->valuestring, "2");
    pthread_mutex_unlock(&ts.mu);

    free(p);
    free(v1);
    free(v2);
    cfgdir_free(c);
    rmtree(dir);
    ts_free(&ts);
}

/* Editors write in bursts: many quick rewrites end in one reload with the final content. */
static void test_coalescing_and_prompt_stop(void **state)
{
    (void)state;
    tsink ts;
    char *dir = mktree();
    ts_init(&ts);
    cfgdir *c = cfgdir_new(dir, sink_of(&ts));
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        char *y = cm("burst", v);
        put(dir, "burst.yaml", y);
        free(y);
    }
    size_t to = barrier(&ts, dir);
    size_t n = ts_count_in(&ts, 0, to, SOURCE_EV_UPSERT, "ConfigMap", "burst");
    assert_true(n >= 1 && n < 20);
    /* the last event carries the final content */
    pthread_mutex_lock(&ts.mu);
    cJSON *last = NULL;
    for (size_t i = 0; i < to; i++)
        if (strcmp(ev_name(&ts.evs[i]), "burst") == 0)
            last = ts.evs[i].obj;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(last, "data");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(data, "v")->valuestring, "19");
    pthread_mutex_unlock(&ts.mu);

    int64_t t0 = util_now_ns();
    cfgdir_free(c);
    assert_true(util_now_ns() - t0 < 1000LL * 1000 * 1000);
    rmtree(dir);
    ts_free(&ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_dir),
        cmocka_unit_test(test_initial_scan),
        cmocka_unit_test(test_modify_and_remove),
        cmocka_unit_test(test_malformed_keeps_objects),
        cmocka_unit_test(test_new_subdirectories),
        cmocka_unit_test(test_same_object_two_files),
        cmocka_unit_test(test_half_written_file_waits),
        cmocka_unit_test(test_coalescing_and_prompt_stop),
    };
    if (getenv("CFGDIR_DEBUG")) /* shows every event the source sends */
        log_configure("config:debug", NULL, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
