/* test_snapshot: lookups on a built snapshot (services and shards by hostname, gateways by
 * namespace/name) and the DestinationRule choice (exact host before wildcard, proxy
 * namespace, then the service's, then the root namespace from mesh config, nothing else;
 * exportTo respected), how several rules for one host in one namespace merge (istiod's
 * mergeDestinationRule) and which proxies workloadSelector rules reach. */
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
    const mesh_destination_rule *dr =
        mesh_snapshot_destination_rule(s, "ext.example.com", "a", NULL, NULL);
    assert_non_null(dr);
    assert_string_equal(dr->meta.name, "root-ext");
    /* istio-system is now just a namespace: its wildcard does not reach web.a */
    assert_null(mesh_snapshot_destination_rule(s, "web.a.svc.cluster.local", "a", NULL, NULL));
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
        const mesh_destination_rule *dr =
            mesh_snapshot_destination_rule(s, c->host, c->proxy_ns, NULL, NULL);
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

/* A DestinationRule in ns from JSON written with single quotes; ts is its
 * creationTimestamp (istiod's merge order) or NULL. */
static void add_dr_spec(model *m, const char *ns, const char *name, const char *ts,
                        const char *spec)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{'apiVersion':'networking.istio.io/v1','kind':'DestinationRule','metadata':"
             "{'name':'%s','namespace':'%s'%s%s%s},'spec':%s}",
             name, ns, ts ? ",'creationTimestamp':'" : "", ts ? ts : "", ts ? "'" : "", spec);
    for (char *p = buf; *p; p++)
        if (*p == '\'')
            *p = '"';
    add(m, buf);
}

static mesh_snapshot *build_merge(model **mp)
{
    model_opts o = {.domain = "cluster.local", .debounce_after_ns = 1, .debounce_max_ns = 1};
    *mp = model_new(&o);
    assert_non_null(*mp);
    model *m = *mp;
    add_svc(m, "m", "web");
    add_svc(m, "m", "api");
    add_svc(m, "m", "db");
    add_svc(m, "m", "sel");
    add_svc(m, "m", "two");
    /* web.m: the older rule wins the top-level policy although its name sorts later; the
     * newer one adds its new subset (v1 is a duplicate and dropped) */
    add_dr_spec(m, "m", "z-old", "2024-01-01T00:00:00Z",
                "{'host':'web','trafficPolicy':{'loadBalancer':{'simple':'RANDOM'}},"
                "'subsets':[{'name':'v1','labels':{'v':'1'}}]}");
    add_dr_spec(m, "m", "a-new", "2024-01-02T00:00:00Z",
                "{'host':'web','trafficPolicy':{'loadBalancer':{'simple':'ROUND_ROBIN'}},"
                "'subsets':[{'name':'v1','labels':{'v':'x'}},{'name':'v2','labels':{'v':'2'}}]}");
    /* api.m: the first has no policy, so the second's is taken */
    add_dr_spec(m, "m", "api-a", NULL, "{'host':'api','subsets':[{'name':'v1'}]}");
    add_dr_spec(m, "m", "api-b", NULL,
                "{'host':'api','trafficPolicy':{'loadBalancer':{'simple':'RANDOM'}}}");
    /* db.m: different exportTo sets do not merge; at home the last applies */
    add_dr_spec(m, "m", "db-all", NULL, "{'host':'db','exportTo':['*']}");
    add_dr_spec(m, "m", "db-home", NULL, "{'host':'db','exportTo':['.']}");
    /* sel.m: a selector rule for app=a, one without selector; in ns q only a selector rule */
    add_dr_spec(m, "m", "sel-a", NULL,
                "{'host':'sel','workloadSelector':{'matchLabels':{'app':'a'}},"
                "'subsets':[{'name':'s1'}]}");
    add_dr_spec(m, "m", "sel-all", NULL, "{'host':'sel','subsets':[{'name':'s0'}]}");
    add_dr_spec(
        m, "q", "sel-q", NULL,
        "{'host':'sel.m.svc.cluster.local','workloadSelector':{'matchLabels':{'app':'a'}}}");
    /* two.m: equal selectors merge, different ones stay apart */
    add_dr_spec(m, "m", "two-1", NULL,
                "{'host':'two','workloadSelector':{'matchLabels':{'app':'a','v':'1'}},"
                "'subsets':[{'name':'t1'}]}");
    add_dr_spec(m, "m", "two-2", NULL,
                "{'host':'two','workloadSelector':{'matchLabels':{'v':'1','app':'a'}},"
                "'subsets':[{'name':'t2'}]}");
    add_dr_spec(m, "m", "two-3", NULL,
                "{'host':'two','workloadSelector':{'matchLabels':{'app':'b'}},"
                "'subsets':[{'name':'t3'}]}");
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    return s;
}

static const char *subset_names(const mesh_destination_rule *dr, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; dr && i < dr->nsubsets; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "", dr->subsets[i].name);
    return buf;
}

static void test_destination_rule_merge(void **state)
{
    (void)state;
    model *m;
    mesh_snapshot *s = build_merge(&m);
    char buf[128];
    const char *key;
    const char *from[] = {"m", "other"};
    for (size_t i = 0; i < 2; i++) {
        const mesh_destination_rule *dr =
            mesh_snapshot_destination_rule(s, "web.m.svc.cluster.local", from[i], NULL, &key);
        assert_non_null(dr);
        assert_string_equal(dr->meta.name, "z-old");
        assert_string_equal(key, "m/z-old,m/a-new");
        assert_string_equal(subset_names(dr, buf, sizeof buf), "v1,v2");
        assert_string_equal(dr->subsets[0].labels.vals[0], "1");
        assert_non_null(dr->policy);
        assert_int_equal(dr->policy->lb, MESH_LB_RANDOM);
    }
    const mesh_destination_rule *dr =
        mesh_snapshot_destination_rule(s, "api.m.svc.cluster.local", "m", NULL, &key);
    assert_non_null(dr);
    assert_string_equal(key, "m/api-a,m/api-b");
    assert_string_equal(subset_names(dr, buf, sizeof buf), "v1");
    assert_non_null(dr->policy);
    assert_int_equal(dr->policy->lb, MESH_LB_RANDOM);
    /* the parsed rules themselves are untouched */
    for (size_t i = 0; i < s->ndrs; i++)
        if (strcmp(s->drs[i]->meta.name, "api-a") == 0)
            assert_null(s->drs[i]->policy);

    mesh_snapshot_destination_rule(s, "db.m.svc.cluster.local", "m", NULL, &key);
    assert_string_equal(key, "m/db-home");
    mesh_snapshot_destination_rule(s, "db.m.svc.cluster.local", "other", NULL, &key);
    assert_string_equal(key, "m/db-all");
    mesh_snapshot_release(s);
    model_free(m);
}

typedef struct sel_case {
    const char *host, *ns, *app, *v; /* the proxy: namespace, labels app and v (NULL: none) */
    bool inbound;                    /* labels NULL */
    const char *want;                /* key or NULL */
} sel_case;

static const sel_case sel_cases[] = {
    {"sel.m.svc.cluster.local", "m", "a", NULL, false, "m/sel-a"},
    {"sel.m.svc.cluster.local", "m", "b", NULL, false, "m/sel-all"},
    {"sel.m.svc.cluster.local", "m", "a", NULL, true, "m/sel-all"},      /* inbound: no selectors */
    {"sel.m.svc.cluster.local", "other", "a", NULL, false, "m/sel-all"}, /* never exported */
    {"sel.m.svc.cluster.local", "q", "a", NULL, false, "q/sel-q"},
    /* istiod: the proxy namespace's list is final even when no rule in it applies */
    {"sel.m.svc.cluster.local", "q", "b", NULL, false, NULL},
    {"two.m.svc.cluster.local", "m", "a", "1", false, "m/two-1,m/two-2"},
    {"two.m.svc.cluster.local", "m", "b", "1", false, "m/two-3"},
    {"two.m.svc.cluster.local", "m", "a", NULL, false, NULL},
};

static void test_destination_rule_selector(void **state)
{
    (void)state;
    model *m;
    mesh_snapshot *s = build_merge(&m);
    assert_true(mesh_snapshot_dr_selects(s, "m"));
    assert_true(mesh_snapshot_dr_selects(s, "q"));
    assert_false(mesh_snapshot_dr_selects(s, "other"));
    for (size_t i = 0; i < sizeof(sel_cases) / sizeof(sel_cases[0]); i++) {
        const sel_case *c = &sel_cases[i];
        mesh_labels l = {0};
        if (c->app)
            mesh_labels_set(&l, "app", c->app);
        if (c->v)
            mesh_labels_set(&l, "v", c->v);
        const char *key = NULL;
        const mesh_destination_rule *dr =
            mesh_snapshot_destination_rule(s, c->host, c->ns, c->inbound ? NULL : &l, &key);
        mesh_labels_free(&l);
        if (!c->want ? dr != NULL : (!key || strcmp(key, c->want) != 0))
            fail_msg("case %zu %s from %s: got %s, want %s", i, c->host, c->ns,
                     key ? key : "(none)", c->want ? c->want : "(none)");
    }
    char buf[64];
    mesh_labels l = {0};
    mesh_labels_set(&l, "app", "a");
    mesh_labels_set(&l, "v", "1");
    const mesh_destination_rule *dr =
        mesh_snapshot_destination_rule(s, "two.m.svc.cluster.local", "m", &l, NULL);
    mesh_labels_free(&l);
    assert_string_equal(subset_names(dr, buf, sizeof buf), "t1,t2");
    mesh_snapshot_release(s);
    model_free(m);
}

int main(void)
{
    char err[128];
    log_configure("default:error", err, sizeof(err));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destination_rule),
        cmocka_unit_test(test_destination_rule_root_namespace),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_destination_rule_merge),
        cmocka_unit_test(test_destination_rule_selector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
