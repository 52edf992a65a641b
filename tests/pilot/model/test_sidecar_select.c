/* test_sidecar_select: which Sidecar scopes a proxy (mesh_snapshot_sidecar_for), as istiod's
 * getSidecarScope: a matching workloadSelector in the proxy's namespace beats that
 * namespace's selector-less Sidecar, which beats the root namespace's selector-less one;
 * the oldest (creationTimestamp, then name) wins a tie; another namespace's Sidecars never
 * apply, the root namespace's selectors included. Built through the model, so the
 * snapshot's Sidecar array is the one the model sorts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pilot/model/model.h"

/* sel: NULL = no workloadSelector, "" = one without labels, else "app" label value. */
static void add_sc(model *m, const char *ns, const char *name, const char *created, const char *sel)
{
    char buf[1024], selbuf[128] = "";
    if (sel && *sel)
        snprintf(selbuf, sizeof selbuf, "\"workloadSelector\":{\"labels\":{\"app\":\"%s\"}},", sel);
    else if (sel)
        snprintf(selbuf, sizeof selbuf, "\"workloadSelector\":{},");
    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"Sidecar\",\"metadata\":{"
             "\"name\":\"%s\",\"namespace\":\"%s\",\"creationTimestamp\":\"%s\"},\"spec\":{%s"
             "\"egress\":[{\"hosts\":[\"./*\"]}]}}",
             name, ns, created, selbuf);
    cJSON *obj = cJSON_Parse(buf);
    assert_non_null(obj);
    source_sink s = model_sink(m);
    s.event(s.ud, SOURCE_EV_UPSERT, obj, "sc.yaml");
}

typedef struct {
    const char *ns, *app; /* the proxy; app NULL = no labels */
    const char *want;     /* "ns/name" or NULL */
} sel_case;

static void check(const mesh_snapshot *s, const sel_case *c)
{
    mesh_labels l = {0};
    if (c->app)
        mesh_labels_set(&l, "app", c->app);
    const mesh_sidecar *sc = mesh_snapshot_sidecar_for(s, c->ns, &l);
    char got[256] = "(none)";
    if (sc)
        snprintf(got, sizeof got, "%s/%s", sc->meta.ns, sc->meta.name);
    if (c->want ? strcmp(got, c->want) != 0 : sc != NULL)
        fail_msg("proxy %s app=%s: got %s, want %s", c->ns, c->app ? c->app : "-", got,
                 c->want ? c->want : "(none)");
    mesh_labels_free(&l);
}

static void test_select(void **state)
{
    (void)state;
    model_opts o = {.domain = "cluster.local", .debounce_after_ns = 1, .debounce_max_ns = 1};
    model *m = model_new(&o);
    assert_non_null(m);
    /* root (istio-system): a mesh default, a younger one, and a selector that must never
     * reach other namespaces */
    add_sc(m, "istio-system", "mesh-default", "2026-01-01T00:00:00Z", NULL);
    add_sc(m, "istio-system", "a-younger-default", "2026-02-01T00:00:00Z", NULL);
    add_sc(m, "istio-system", "root-web", "2025-01-01T00:00:00Z", "web");
    /* ns a: a namespace default, two matching selectors (the older wins although its name
     * sorts last), one for another app */
    add_sc(m, "a", "ns-default", "2025-01-01T00:00:00Z", NULL);
    add_sc(m, "a", "z-web-old", "2026-01-01T00:00:00Z", "web");
    add_sc(m, "a", "b-web-new", "2026-03-01T00:00:00Z", "web");
    add_sc(m, "a", "api", "2026-01-01T00:00:00Z", "api");
    /* ns b: selectors only, same timestamp (the name breaks the tie), and one without
     * labels, which istiod treats as a selector matching every workload */
    add_sc(m, "b", "y-web", "2026-01-01T00:00:00Z", "web");
    add_sc(m, "b", "x-web", "2026-01-01T00:00:00Z", "web");
    add_sc(m, "b", "empty-selector", "2026-06-01T00:00:00Z", "");
    /* ns zz: only a selector for another app */
    add_sc(m, "zz", "db", "2026-01-01T00:00:00Z", "db");
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    assert_int_equal(s->nsidecars, 11);

    static const sel_case cases[] = {
        {"a", "web", "a/z-web-old"},                /* selector beats default; oldest wins */
        {"a", "api", "a/api"},                      /* */
        {"a", "other", "a/ns-default"},             /* no selector matches: namespace default */
        {"a", NULL, "a/ns-default"},                /* */
        {"b", "web", "b/x-web"},                    /* same age: by name */
        {"b", "other", "b/empty-selector"},         /* an empty selector matches all */
        {"zz", "web", "istio-system/mesh-default"}, /* root default, not root-web */
        {"zz", "db", "zz/db"},                      /* */
        {"c", "web", "istio-system/mesh-default"},  /* no Sidecar in c: the mesh default */
        {"istio-system", "web", "istio-system/root-web"}, /* the root's own selectors */
        {"istio-system", "x", "istio-system/mesh-default"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(s, &cases[i]);
    mesh_snapshot_release(s);
    model_free(m);
}

/* No root default: a namespace without Sidecars gets none, and a root namespace with only
 * selectors is no mesh default. */
static void test_no_default(void **state)
{
    (void)state;
    model_opts o = {.domain = "cluster.local",
                    .debounce_after_ns = 1,
                    .debounce_max_ns = 1,
                    .root_namespace = "mesh-root"};
    model *m = model_new(&o);
    add_sc(m, "mesh-root", "web", "2026-01-01T00:00:00Z", "web");
    add_sc(m, "istio-system", "not-root", "2026-01-01T00:00:00Z", NULL);
    add_sc(m, "a", "web", "2026-01-01T00:00:00Z", "web");
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    static const sel_case cases[] = {
        {"a", "web", "a/web"},
        {"a", "api", NULL},
        {"c", "web", NULL},
        {"mesh-root", "web", "mesh-root/web"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(s, &cases[i]);
    assert_null(mesh_snapshot_sidecar_for(s, NULL, NULL));
    mesh_snapshot_release(s);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_no_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
