/* test_jwks: the JWKS fetcher (pilot/jwks) against a local HTTP server
 * (jwks_server.py), with a real model thread: a jwksUri of an accepted
 * RequestAuthentication is fetched and the next snapshot carries its keys (pushed in
 * full); a failing URI stays out of the table (the generator then inlines the fake
 * JWKS); a refresh that changes the keys makes a new snapshot and push; a slow server
 * never holds up the model; stopping aborts a transfer in progress. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pilot/base/util.h"
#include "pilot/jwks/jwks.h"
#include "pilot/model/model.h"

#define KEYS1 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"e\":\"AQAB\",\"n\":\"one\"}]}"
#define KEYS2 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k2\",\"e\":\"AQAB\",\"n\":\"two\"}]}"

static char dir[64];
static pid_t server_pid;
static int port;

static void write_file(const char *name, const char *body)
{
    char p[128], tmp[140];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    assert_int_equal(rename(tmp, p), 0); /* the server never sees half a file */
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_jwks.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    write_file("keys.json", KEYS1);
    write_file("slow.json", KEYS1);
    write_file("notjwks.json", "{\"hello\":1}");
    char script[1024];
    const char *src = getenv("PILOT_SRC");
    snprintf(script, sizeof script, "%s/tests/pilot/jwks/jwks_server.py", src ? src : ".");
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    server_pid = fork();
    if (server_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    if (!f || fscanf(f, "%d", &port) != 1)
        return -1;
    fclose(f);
    return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    const char *names[] = {"keys.json", "slow.json", "notjwks.json"};
    char p[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* ---- a model with the fetcher, and a push recorder ------------------------------------ */

static atomic_int pushes, full_pushes_with_ra;

static void on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req)
{
    (void)ud, (void)snap;
    atomic_fetch_add(&pushes, 1);
    if (req->full && (req->kinds_changed & (1u << MESH_KIND_REQUEST_AUTHENTICATION)))
        atomic_fetch_add(&full_pushes_with_ra, 1);
}

static void post_ra(model *m, const char *name, const char *uri1, const char *uri2)
{
    char *js = xasprintf("{\"apiVersion\":\"security.istio.io/v1\",\"kind\":"
                         "\"RequestAuthentication\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
                         "\"foo\"},\"spec\":{\"jwtRules\":[{\"issuer\":\"a\",\"jwksUri\":\"%s\","
                         "\"timeout\":\"2s\"}%s%s%s]}}",
                         name, uri1, uri2 ? ",{\"issuer\":\"b\",\"jwksUri\":\"" : "",
                         uri2 ? uri2 : "", uri2 ? "\"}" : "");
    cJSON *obj = cJSON_Parse(js);
    free(js);
    assert_non_null(obj);
    source_sink s = model_sink(m);
    s.event(s.ud, SOURCE_EV_UPSERT, obj, "test");
}

static void post_namespace(model *m, const char *name)
{
    char *js = xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
                         "{\"name\":\"%s\"}}",
                         name);
    cJSON *obj = cJSON_Parse(js);
    free(js);
    source_sink s = model_sink(m);
    s.event(s.ud, SOURCE_EV_UPSERT, obj, "test");
}

static char *uri(const char *path)
{
    return xasprintf("http://127.0.0.1:%d/%s", port, path);
}

/* The JWKS the current snapshot carries for u (a copy), or NULL. */
static char *snapshot_jwks(model *m, const char *u)
{
    mesh_snapshot *s = model_snapshot(m);
    const mesh_jwks_entry *e = s ? mesh_jwks_table_find(s->jwks, u) : NULL;
    char *out = e && e->jwks ? xstrdup(e->jwks) : NULL;
    mesh_snapshot_release(s);
    return out;
}

/* Waits up to 10 s for the snapshot to carry want (a substring) for u. */
static bool wait_jwks(model *m, const char *u, const char *want)
{
    for (int i = 0; i < 1000; i++) {
        char *j = snapshot_jwks(m, u);
        bool ok = j && strstr(j, want);
        free(j);
        if (ok)
            return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static model *new_model(jwks_fetcher **f)
{
    model_opts mo = {.domain = "cluster.local",
                     .debounce_after_ns = 10 * 1000000LL,
                     .debounce_max_ns = 100 * 1000000LL,
                     .nsources = 0};
    model *m = model_new(&mo);
    assert_non_null(m);
    jwks_opts jo = {.refresh_ns = 300 * 1000000LL, .retry_ns = 200 * 1000000LL};
    *f = jwks_fetcher_new(m, &jo);
    assert_non_null(*f);
    model_on_push(m, on_push, NULL);
    assert_int_equal(model_start(m), 0);
    assert_int_equal(jwks_fetcher_start(*f), 0);
    return m;
}

static void free_model(model *m, jwks_fetcher *f)
{
    model_stop(m);
    jwks_fetcher_free(f);
    model_free(m);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_fetch_fail_refresh(void **state)
{
    (void)state;
    jwks_fetcher *f;
    model *m = new_model(&f);
    char *ok = uri("keys.json"), *missing = uri("missing.json"), *bad = uri("notjwks.json");
    post_ra(m, "jwt", ok, missing);
    post_ra(m, "jwt2", bad, NULL);

    /* fetched: the next snapshot carries the keys, pushed in full */
    assert_true(wait_jwks(m, ok, "\"k1\""));
    assert_true(atomic_load(&full_pushes_with_ra) >= 1);
    /* a 404 and a body that is not a JWKS: not in the table (generators inline the fake
     * JWKS), still retried */
    char *j = snapshot_jwks(m, missing);
    assert_null(j);
    j = snapshot_jwks(m, bad);
    assert_null(j);

    /* the failing URI starts working: the retry picks it up */
    write_file("missing.json", KEYS2);
    assert_true(wait_jwks(m, missing, "\"k2\""));

    /* the server rotates its keys: the refresh brings them, with a new push */
    int before = atomic_load(&full_pushes_with_ra);
    write_file("keys.json", KEYS2);
    assert_true(wait_jwks(m, ok, "\"k2\""));
    assert_true(atomic_load(&full_pushes_with_ra) > before);

    /* same keys re-served on later refreshes: no new push */
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    int settled = atomic_load(&pushes);
    ts.tv_nsec = 900 * 1000000L;
    nanosleep(&ts, NULL);
    assert_int_equal(atomic_load(&pushes), settled);

    char p[128];
    snprintf(p, sizeof p, "%s/missing.json", dir);
    unlink(p);
    free(ok);
    free(missing);
    free(bad);
    free_model(m, f);
}

static void test_slow_server_never_blocks(void **state)
{
    (void)state;
    jwks_fetcher *f;
    model *m = new_model(&f);
    char *slow = uri("slow/slow.json");
    post_ra(m, "slow", slow, NULL);
    model_flush(m);
    /* the transfer takes 3 s (timeout 2 s: it fails); meanwhile the model publishes */
    int64_t t0 = util_now_ns();
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "ns%d", i);
        post_namespace(m, name);
        model_flush(m);
    }
    int64_t took = util_now_ns() - t0;
    assert_true(took < 1000 * 1000000LL);
    mesh_snapshot *s = model_snapshot(m);
    assert_true(s->nnamespaces >= 5);
    mesh_snapshot_release(s);
    assert_null(snapshot_jwks(m, slow));

    /* stopping aborts the transfer in progress (well before the 2 s timeout) */
    t0 = util_now_ns();
    free_model(m, f);
    assert_true(util_now_ns() - t0 < 1500 * 1000000LL);
    free(slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_fail_refresh),
        cmocka_unit_test(test_slow_server_never_blocks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
