/* test_filewatch: the --meshConfig file watch against a real temporary directory and
 * inotify: an in-place rewrite, an atomic rename, the kubelet's ConfigMap swap (a new
 * hidden directory, "..data" renamed onto it), a delete then re-create, and a rewrite with
 * the same bytes (no delivery). Deliveries are collected under a mutex and awaited with a
 * deadline; "nothing delivered" is proved by a later change whose delivery comes first in
 * line: a delivery for the no-op would have to come before it. */
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pilot/base/util.h"
#include "pilot/cfgdir/filewatch.h"

#define WAIT_NS (10LL * 1000 * 1000 * 1000)

typedef struct got {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *texts[32];
    size_t n;
} got;

static void on_change(void *ud, const char *path, const char *text, size_t len)
{
    got *g = ud;
    (void)path;
    pthread_mutex_lock(&g->mu);
    if (g->n < 32)
        g->texts[g->n++] = xstrndup(text, len);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* The i-th delivery (waits for it), or NULL after the deadline. */
static const char *wait_nth(got *g, size_t i)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_NS / 1000000000LL;
    const char *r = NULL;
    pthread_mutex_lock(&g->mu);
    while (g->n <= i)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT)
            break;
    if (g->n > i)
        r = g->texts[i];
    pthread_mutex_unlock(&g->mu);
    return r;
}

static size_t count(got *g)
{
    pthread_mutex_lock(&g->mu);
    size_t n = g->n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

typedef struct fixture {
    char dir[64];
    char path[128];
    got g;
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/filewatch-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/mesh", f->dir);
    pthread_mutex_init(&f->g.mu, NULL);
    pthread_cond_init(&f->g.cv, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < f->g.n; i++)
        free(f->g.texts[i]);
    pthread_mutex_destroy(&f->g.mu);
    pthread_cond_destroy(&f->g.cv);
    free(f);
    return 0;
}

static void test_in_place_and_rename(void **state)
{
    fixture *f = *state;
    put(f->path, "rootNamespace: a\n");
    cfgdir_filewatch *w = cfgdir_filewatch_start(f->path, 1 << 20, on_change, &f->g);
    assert_non_null(w);
    /* the baseline is not delivered; an in-place rewrite is */
    put(f->path, "rootNamespace: b\n");
    assert_string_equal(wait_nth(&f->g, 0), "rootNamespace: b\n");
    /* the same bytes again: nothing; then an atomic rename: delivered, and first */
    put(f->path, "rootNamespace: b\n");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/.mesh.tmp", f->dir);
    put(tmp, "rootNamespace: c\n");
    assert_int_equal(rename(tmp, f->path), 0);
    assert_string_equal(wait_nth(&f->g, 1), "rootNamespace: c\n");
    /* deleted: nothing delivered (the last one stays in force); re-created: delivered */
    assert_int_equal(unlink(f->path), 0);
    usleep(100 * 1000);
    assert_int_equal(count(&f->g), 2);
    put(f->path, "rootNamespace: d\n");
    assert_string_equal(wait_nth(&f->g, 2), "rootNamespace: d\n");
    cfgdir_filewatch_stop(w);
    assert_int_equal(count(&f->g), 3);
}

/* What the kubelet does to a ConfigMap volume: dir/mesh -> ..data/mesh, ..data ->
 * ..2026_1 (a real directory); an update writes ..2026_2, points a new symlink at it and
 * renames that over ..data; the old directory goes away. */
static void cm_version(fixture *f, const char *ver, const char *text, const char *old)
{
    char d[160], file[200], link[160], data[160];
    snprintf(d, sizeof d, "%s/%s", f->dir, ver);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(file, sizeof file, "%s/mesh", d);
    put(file, text);
    snprintf(link, sizeof link, "%s/..data_tmp", f->dir);
    assert_int_equal(symlink(ver, link), 0);
    snprintf(data, sizeof data, "%s/..data", f->dir);
    assert_int_equal(rename(link, data), 0);
    if (old) {
        char od[160], of[200];
        snprintf(od, sizeof od, "%s/%s", f->dir, old);
        snprintf(of, sizeof of, "%s/mesh", od);
        assert_int_equal(unlink(of), 0);
        assert_int_equal(rmdir(od), 0);
    }
}

static void test_configmap_swap(void **state)
{
    fixture *f = *state;
    cm_version(f, "..2026_1", "trustDomain: one\n", NULL);
    assert_int_equal(symlink("..data/mesh", f->path), 0);
    cfgdir_filewatch *w = cfgdir_filewatch_start(f->path, 1 << 20, on_change, &f->g);
    assert_non_null(w);
    cm_version(f, "..2026_2", "trustDomain: two\n", "..2026_1");
    assert_string_equal(wait_nth(&f->g, 0), "trustDomain: two\n");
    cm_version(f, "..2026_3", "trustDomain: three\n", "..2026_2");
    assert_string_equal(wait_nth(&f->g, 1), "trustDomain: three\n");
    /* an in-place write inside the current version's directory is seen too */
    char file[200];
    snprintf(file, sizeof file, "%s/..2026_3/mesh", f->dir);
    put(file, "trustDomain: four\n");
    assert_string_equal(wait_nth(&f->g, 2), "trustDomain: four\n");
    cfgdir_filewatch_stop(w);
    assert_int_equal(count(&f->g), 3);
}

static void test_too_big_and_missing_dir(void **state)
{
    fixture *f = *state;
    put(f->path, "a: 1\n");
    cfgdir_filewatch *w = cfgdir_filewatch_start(f->path, 8, on_change, &f->g);
    assert_non_null(w);
    put(f->path, "a: 123456789\n"); /* over 8 bytes: skipped */
    put(f->path, "b: 2\n");
    assert_string_equal(wait_nth(&f->g, 0), "b: 2\n");
    cfgdir_filewatch_stop(w);
    assert_int_equal(count(&f->g), 1);
    assert_null(cfgdir_filewatch_start("/nonexistent-dir-xyz/mesh", 8, on_change, &f->g));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_place_and_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_and_missing_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
