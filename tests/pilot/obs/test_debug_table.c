/* test_debug_table: the debug table's ownership rules (pilot/obs/debug.h) under races.
 *
 * Requests go through the real HTTP server (pilot/obs/http.c on 127.0.0.1:0, libcurl
 * clients) while other threads register and unregister handlers whose ud they free right
 * after dbg_unregister returns, and free the help text right after dbg_register: a
 * handler call on a freed ud or a page written from a freed help string is a
 * heap-use-after-free under ASan and a data race under TSan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pilot/base/util.h"
#include "pilot/obs/debug.h"

#define OWNER_LIVE 0x4c495645u
#define OWNER_DEAD 0xdeadu

/* What a registrant owns and frees after dbg_unregister. */
typedef struct owner {
    unsigned magic;
    int id;
    int sleep_us;
    atomic_bool entered, left;
} owner;

static atomic_int bad_calls; /* a handler saw its owner not live */
static atomic_int handler_calls;

static void owner_handler(void *ud, const dbg_request *req, dbg_response *resp)
{
    owner *o = ud;
    (void)req;
    if (o->magic != OWNER_LIVE)
        atomic_fetch_add(&bad_calls, 1);
    atomic_store(&o->entered, true);
    if (o->sleep_us > 0)
        usleep((useconds_t)o->sleep_us);
    /* still live after the sleep: dbg_unregister has not returned meanwhile */
    if (o->magic != OWNER_LIVE)
        atomic_fetch_add(&bad_calls, 1);
    strbuf_appendf(&resp->body, "{\"owner\":%d}", o->id);
    atomic_fetch_add(&handler_calls, 1);
    atomic_store(&o->left, true);
}

static owner *owner_new(int id, int sleep_us)
{
    owner *o = xcalloc(1, sizeof(*o));
    o->magic = OWNER_LIVE;
    o->id = id;
    o->sleep_us = sleep_us;
    atomic_init(&o->entered, false);
    atomic_init(&o->left, false);
    return o;
}

static void owner_free(owner *o)
{
    o->magic = OWNER_DEAD;
    free(o);
}

/* Registers with a help text freed at once: the table must keep its own copy. */
static void register_owner(const char *path, owner *o)
{
    char *help = xasprintf("owner %d of %s", o->id, path);
    dbg_register(path, help, owner_handler, o);
    memset(help, 'x', strlen(help));
    free(help);
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

/* GETs path on c (kept alive between calls); returns the status, 0 on a transport error. */
static long get(CURL *c, int port, const char *path)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = 0;
    if (curl_easy_perform(c) != CURLE_OK)
        return 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

typedef struct get_job {
    int port;
    const char *path;
    long status;
} get_job;

static void *get_thread(void *arg)
{
    get_job *j = arg;
    CURL *c = curl_easy_init();
    j->status = get(c, j->port, j->path);
    curl_easy_cleanup(c);
    return NULL;
}

static void wait_entered(owner *o)
{
    for (int i = 0; i < 2000 && !atomic_load(&o->entered); i++)
        usleep(1000);
    assert_true(atomic_load(&o->entered));
}

/* dbg_unregister returns only after the running call of its entry is done, also when a
 * later registration replaced that entry meanwhile; then the path answers 404 or the new
 * owner. */
static void test_unregister_waits(void **state)
{
    (void)state;
    dbg_server *srv = dbg_server_start("127.0.0.1:0", false);
    assert_non_null(srv);
    int port = dbg_server_port(srv);

    owner *a = owner_new(1, 300000);
    register_owner("/debug/slow", a);
    get_job j = {port, "/debug/slow", 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, get_thread, &j), 0);
    wait_entered(a);
    dbg_unregister("/debug/slow", a);
    assert_true(atomic_load(&a->left));
    owner_free(a);
    pthread_join(t, NULL);
    assert_int_equal(j.status, 200);

    CURL *c = curl_easy_init();
    assert_int_equal(get(c, port, "/debug/slow"), 404);

    /* replaced while running: the first owner's unregister still waits for its call */
    a = owner_new(2, 300000);
    owner *b = owner_new(3, 0);
    register_owner("/debug/slow", a);
    j.status = 0;
    assert_int_equal(pthread_create(&t, NULL, get_thread, &j), 0);
    wait_entered(a);
    register_owner("/debug/slow", b);
    dbg_unregister("/debug/slow", a); /* not b's entry: b stays listed */
    assert_true(atomic_load(&a->left));
    owner_free(a);
    pthread_join(t, NULL);
    assert_int_equal(j.status, 200);
    assert_int_equal(get(c, port, "/debug/slow"), 200);
    assert_true(atomic_load(&b->left));
    dbg_unregister("/debug/slow", b);
    owner_free(b);
    assert_int_equal(get(c, port, "/debug/slow"), 404);
    /* nothing registered with that ud: returns at once */
    dbg_unregister("/debug/slow", NULL);
    dbg_unregister("/debug/never", NULL);
    curl_easy_cleanup(c);
    dbg_server_stop(srv);
    assert_int_equal(atomic_load(&bad_calls), 0);
}

#define RACE_OWNERS 4
#define RACE_CLIENTS 3
#define RACE_ROUNDS 120

static atomic_bool race_stop;
static int race_port;
static atomic_int race_errors; /* a request that failed or answered other than 200/404 */

static const char *const race_paths[] = {"/debug/race0", "/debug/race1"};

static void *race_owner(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = (uint64_t)id * 0x9e3779b97f4a7c15ull + 1;
    for (int r = 0; r < RACE_ROUNDS; r++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        /* two owners per path: registrations replace each other's entries */
        const char *path = race_paths[id % 2];
        owner *o = owner_new(id * 1000 + r, (int)((rng >> 33) % 300));
        register_owner(path, o);
        usleep((useconds_t)((rng >> 40) % 2000));
        dbg_unregister(path, o);
        owner_free(o);
    }
    return NULL;
}

static void *race_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    static const char *const paths[] = {"/debug/race0", "/debug/race1", "/debug", "/debug/list"};
    CURL *c = curl_easy_init();
    for (int i = 0; !atomic_load(&race_stop); i++) {
        long st = get(c, race_port, paths[(i + id) % 4]);
        if (st != 200 && st != 404)
            atomic_fetch_add(&race_errors, 1);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Owners register, unregister and free while clients request their paths and the index
 * pages (which copy every help text). */
static void test_race(void **state)
{
    (void)state;
    dbg_server *srv = dbg_server_start("127.0.0.1:0", false);
    assert_non_null(srv);
    race_port = dbg_server_port(srv);
    atomic_store(&race_stop, false);
    int calls0 = atomic_load(&handler_calls);
    pthread_t owners[RACE_OWNERS], clients[RACE_CLIENTS];
    for (int i = 0; i < RACE_CLIENTS; i++)
        assert_int_equal(pthread_create(&clients[i], NULL, race_client, (void *)(intptr_t)i), 0);
    for (int i = 0; i < RACE_OWNERS; i++)
        assert_int_equal(pthread_create(&owners[i], NULL, race_owner, (void *)(intptr_t)i), 0);
    for (int i = 0; i < RACE_OWNERS; i++)
        pthread_join(owners[i], NULL);
    atomic_store(&race_stop, true);
    for (int i = 0; i < RACE_CLIENTS; i++)
        pthread_join(clients[i], NULL);
    dbg_server_stop(srv);
    assert_int_equal(atomic_load(&bad_calls), 0);
    assert_int_equal(atomic_load(&race_errors), 0);
    /* the race was real: handlers did run while owners came and went */
    assert_true(atomic_load(&handler_calls) > calls0);
    printf("handler calls during the race: %d\n", atomic_load(&handler_calls) - calls0);
}

/* Unregistering while no server runs, and re-registering a path many times, leaves one
 * entry per path (the table does not fill up with replaced entries). */
static void test_replace_many(void **state)
{
    (void)state;
    owner *o = owner_new(7, 0);
    for (int i = 0; i < 1000; i++)
        register_owner("/debug/again", o);
    dbg_server *srv = dbg_server_start("127.0.0.1:0", false);
    assert_non_null(srv);
    CURL *c = curl_easy_init();
    assert_int_equal(get(c, dbg_server_port(srv), "/debug/again"), 200);
    curl_easy_cleanup(c);
    dbg_server_stop(srv);
    dbg_unregister("/debug/again", o);
    owner_free(o);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unregister_waits),
        cmocka_unit_test(test_race),
        cmocka_unit_test(test_replace_many),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
