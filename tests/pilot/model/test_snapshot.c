/* test_snapshot: lookups on a built snapshot (services and shards by hostname, gateways by
 * namespace/name) and the DestinationRule choice (exact host before wildcard, proxy
 * namespace, then the service's, then the root namespace from mesh config, nothing else;
 * exportTo respected). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pilot/base/log.h"
#include "pilot/model/model.h"

static void add(model *m, const char *json)
{
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    source_sink s = model_sink(m);
    s.event(s.ud, SOURCE_EV_UPSERT, obj, "snap.yaml");
}

static void add_dr(model *m, const char *ns, const char *name, const char *host,
                   const char *export_to)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"DestinationRule\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"host\":\"%s\""
             "%s%s%s}}",
             name, ns, host, export_to ? ",\"exportTo\":[\"" : "", export_to ? export_to : "",
             export_to ? "\"]" : "");
    add(m, buf);
}

static void add_svc(model *m, const char *ns, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}",
             name, ns);
    add(m, buf);
}

static void add_gw(model *m, const char *ns, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"Gateway\",\"metadata\":"
             "{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"selector\":{\"istio\":"
             "\"ingressgateway\"},\"servers\":[{\"port\":{\"number\":80,\"name\":\"http\","
             "\"protocol\":\"HTTP\"},\"hosts\":[\"*\"]}]}}",
             name, ns);
    add(m, buf);
}

static mesh_snapshot *build_root(model **mp, const char *root)
{
    model_opts o = {.domain = "cluster.local",
                    .debounce_after_ns = 1,
                    .debounce_max_ns = 1,
                    .root_namespace = root};
    *mp = model_new(&o);
    assert_non_null(*mp);
    model *m = *mp;
    const char *nss[] = {"a", "b", "default", "istio-system", "zz"};
    for (size_t i = 0; i < 5; i++) {
        add_svc(m, nss[i], "web");
        add_gw(m, nss[i], "gw");
    }
    add_svc(m, "b", "api");
    /* web.b: a rule in b (its own), one in a, one in the root namespace. */
    add_dr(m, "b", "web-b", "web.b.svc.cluster.local", NULL);
    add_dr(m, "a", "web-in-a", "web.b.svc.cluster.local", NULL);
    add_dr(m, "istio-system", "root-wild", "*.svc.cluster.local", NULL);
    add_dr(m, "istio-system", "root-web-zz", "web.zz.svc.cluster.local", NULL);
    /* api.b: a wildcard in b, a more specific wildcard in b, and a private one in a. */
    add_dr(m, "b", "wild", "*.cluster.local", NULL);
    add_dr(m, "b", "wild-b", "*.b.svc.cluster.local", NULL);
    add_dr(m, "default", "private", "api.b.svc.cluster.local", ".");
    /* only.here: a rule in a namespace that is neither the proxy's, the service's nor the
     * root (istiod ignores it; we once fell back to any namespace) */
    add_dr(m, "zz", "stray", "only.here.example", NULL);
    /* mesh-root: the root namespace when mesh config says so */
    add_dr(m, "mesh-root", "root-ext", "ext.example.com", NULL);
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    return s;
}

static mesh_snapshot *build(model **mp)
{
    return build_root(mp, NULL);
}

typedef struct dr_case {
    const char *host;
    const char *proxy_ns;
    const char *want; /* "ns/name" or NULL */
} dr_case;

static const dr_case dr_cases[] = {
    {"web.b.svc.cluster.local", "a", "a/web-in-a"}, /* proxy namespace first */
    {"web.b.svc.cluster.local", "zz", "b/web-b"},   /* then the service's */
    {"web.b.svc.cluster.local", NULL, "b/web-b"},
    {"web.a.svc.cluster.local", "a", "istio-system/root-wild"},     /* then the root */
    {"web.zz.svc.cluster.local", "zz", "istio-system/root-web-zz"}, /* exact beats wildcard */
    {"api.b.svc.cluster.local", "zz", "b/wild-b"},                  /* longest wildcard */
    {"api.b.svc.cluster.local", "default", "default/private"},      /* "." visible at home */
    {"api.b.svc.cluster.local", "a", "b/wild-b"},                   /* ... and nowhere else */
    {"example.com", "a", NULL},
    {"only.here.example", "a", NULL},        /* no fallback to an unrelated namespace */
    {"only.here.example", "zz", "zz/stray"}, /* ... but the proxy's own applies */
    {"ext.example.com", "a", NULL},          /* mesh-root is not the root by default */
};

/* With rootNamespace: mesh-root, its rules apply mesh-wide and istio-system's do not. */
static void test_destination_rule_root_namespace(void **state)
{
    (void)state;
    model *m;
    mesh_snapshot *s = build_root(&m, "mesh-root");
    assert_string_equal(s->root_ns, "mesh-root");
    const mesh_destination_rule *dr = mesh_snapshot_destination_rule(s, "ext.example.com", "a");
    assert_non_null(dr);
    assert_string_equal(dr->meta.name, "root-ext");
    /* istio-system is now just a namespace: its wildcard does not reach web.a */
    assert_null(mesh_snapshot_destination_rule(s, "web.a.svc.cluster.local", "a"));
    mesh_snapshot_release(s);
    model_free(m);
}

static void test_destination_rule(void **state)
{
    (void)state;
    model *m;
    mesh_snapshot *s = build(&m);
    for (size_t i = 0; i < sizeof(dr_cases) / sizeof(dr_cases[0]); i++) {
        const dr_case *c = &dr_cases[i];
        const mesh_destination_rule *dr = mesh_snapshot_destination_rule(s, c->host, c->proxy_ns);
        char got[256] = "(none)";
        if (dr)
            snprintf(got, sizeof(got), "%s/%s", dr->meta.ns, dr->meta.name);
        if (!c->want ? dr != NULL : strcmp(got, c->want) != 0)
            fail_msg("case %zu %s from %s: got %s, want %s", i, c->host,
                     c->proxy_ns ? c->proxy_ns : "-", got, c->want ? c->want : "(none)");
    }
    mesh_snapshot_release(s);
    model_free(m);
}

static void test_lookups(void **state)
{
    (void)state;
    model *m;
    mesh_snapshot *s = build(&m);
    assert_int_equal(s->nservices, 6);
    const char *hosts[] = {"web.a.svc.cluster.local", "api.b.svc.cluster.local",
                           "web.zz.svc.cluster.local", "web.istio-system.svc.cluster.local"};
    for (size_t i = 0; i < 4; i++) {
        const mesh_service *svc = mesh_snapshot_service(s, hosts[i]);
        assert_non_null(svc);
        assert_string_equal(svc->hostname, hosts[i]);
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(s, hosts[i]);
        assert_non_null(sh);
        assert_string_equal(sh->hostname, hosts[i]);
    }
    assert_null(mesh_snapshot_service(s, "web.c.svc.cluster.local"));
    assert_null(mesh_snapshot_service(s, ""));
    assert_null(mesh_snapshot_shard(s, "zzz"));
    assert_int_equal(s->ngws, 5);
    const char *nss[] = {"a", "b", "default", "istio-system", "zz"};
    for (size_t i = 0; i < 5; i++) {
        const mesh_gateway *gw = mesh_snapshot_gateway(s, nss[i], "gw");
        assert_non_null(gw);
        assert_string_equal(gw->meta.ns, nss[i]);
    }
    assert_null(mesh_snapshot_gateway(s, "c", "gw"));
    assert_null(mesh_snapshot_gateway(s, "a", "gx"));
    /* Istio arrays are sorted by (namespace, name). */
    for (size_t i = 1; i < s->ndrs; i++) {
        int c = strcmp(s->drs[i - 1]->meta.ns, s->drs[i]->meta.ns);
        assert_true(c < 0 ||
                    (c == 0 && strcmp(s->drs[i - 1]->meta.name, s->drs[i]->meta.name) < 0));
    }
    /* Retain/release: a snapshot outlives the model that built it. */
    mesh_snapshot_retain(s);
    model_free(m);
    assert_non_null(mesh_snapshot_service(s, hosts[0]));
    mesh_snapshot_release(s);
    mesh_snapshot_release(s);
}

int main(void)
{
    char err[128];
    log_configure("default:error", err, sizeof(err));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destination_rule),
        cmocka_unit_test(test_destination_rule_root_namespace),
        cmocka_unit_test(test_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
