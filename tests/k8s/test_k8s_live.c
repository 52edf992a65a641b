/* Stays on the stand-in API server (tests/k8s/apiserver.py), on purpose: these checks need
 * misbehaviour on cue that a real kube-apiserver cannot be made to do: injected N failures
 * with chosen HTTP codes (backoff), watches dropped cleanly or reset at a chosen moment
 * while the server keeps writing, an ERROR 410 event inside an open watch, a restart into
 * an arbitrary replacement state with the same resourceVersion space, networking.istio.io
 * served at chosen versions only, core Endpoints without discovery.k8s.io, and token
 * tables. The real-server counterparts are test_e2e_k8s.sh, test_k8s_startup.py and the
 * tests/e2e k8s_* and ca_kube tests (realk8s.py).
 *
 * Live tests of the k8s module against the stand-in API server (tests/k8s/apiserver.py):
 * reflectors (initial paged list, watch events, re-watch after dropped watches without
 * loss, 410 -> relist with vanished objects deleted, server restart with changed state ->
 * exact convergence, injected failures -> backoff, fallbacks to core Endpoints and older
 * Istio versions), Secrets through istiod's field selector, Istio CRDs installed after
 * start (re-discovery), writes with their 409s, TokenReview, and token file rotation.
 *
 * "Converged" always means: the sink holds exactly the server's objects (same keys, same
 * resourceVersions) for every resource the source reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "k8s_testlib.h"
#include "k8s/k8s_internal.h"
#include "pilot/obs/metrics.h"

static const char *core_paths[] = {"/api/v1/namespaces", "/api/v1/services", "/api/v1/pods"};
/* What the source reads of Secrets: istiod's credentials field selector. */
static const char *secrets_path = "/api/v1/secrets?fieldSelector=type%21%3Dhelm.sh%2F"
                                  "release.v1%2Ctype%21%3Dkubernetes.io%2Fservice-account-token";
static const char *istio_plurals[] = {"gateways", "virtualservices", "destinationrules",
                                      "serviceentries", "sidecars"};

typedef struct live {
    standin srv;
    rec_sink rec;
    k8s_source *src;
    const char *istio_ver; /* version the server prefers; NULL = Istio not served */
    bool slices;
} live;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The server's view: "Kind ns/name" -> resourceVersion. */
static cJSON *server_state(live *l)
{
    cJSON *out = cJSON_CreateObject();
    char path[256];
    const char *paths[16];
    char bufs[8][128];
    int n = 0;

    for (size_t i = 0; i < 3; i++)
        paths[n++] = core_paths[i];
    paths[n++] = secrets_path;
    paths[n++] = l->slices ? "/apis/discovery.k8s.io/v1/endpointslices" : "/api/v1/endpoints";
    for (size_t i = 0; l->istio_ver != NULL && i < 5; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "/apis/networking.istio.io/%s/%s", l->istio_ver,
                 istio_plurals[i]);
        paths[n++] = bufs[i];
    }
    for (int i = 0; i < n; i++) {
        cJSON *list = NULL, *it;
        snprintf(path, sizeof(path), "%s", paths[i]);
        assert_int_equal(standin_call(&l->srv, "GET", path, NULL, &list), 200);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(list, "kind");
        char k[64];
        snprintf(k, sizeof(k), "%s", kind->valuestring);
        k[strlen(k) - 4] = '\0'; /* "ServiceList" -> "Service" */
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items"))
        {
            char key[512];
            cJSON_AddStringToObject(it, "kind", k);
            rec_key(it, key, sizeof(key));
            const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
            cJSON_AddStringToObject(
                out, key, cJSON_GetObjectItemCaseSensitive(md, "resourceVersion")->valuestring);
        }
        cJSON_Delete(list);
    }
    return out;
}

static bool converged_quiet(void *ud, bool verbose)
{
    live *l = ud;
    cJSON *want = server_state(l), *w;
    bool ok = true;
    pthread_mutex_lock(&l->rec.mu);
    if (cJSON_GetArraySize(want) != cJSON_GetArraySize(l->rec.objs)) {
        if (verbose)
            fprintf(stderr, "server has %d objects, sink %d\n", cJSON_GetArraySize(want),
                    cJSON_GetArraySize(l->rec.objs));
        ok = false;
    }
    cJSON_ArrayForEach(w, want)
    {
        const cJSON *have = cJSON_GetObjectItemCaseSensitive(l->rec.objs, w->string);
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(have, "metadata");
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
        if (!cJSON_IsString(rv) || strcmp(rv->valuestring, w->valuestring) != 0) {
            if (verbose)
                fprintf(stderr, "sink differs on %s (server rv %s)\n", w->string, w->valuestring);
            ok = false;
        }
    }
    pthread_mutex_unlock(&l->rec.mu);
    cJSON_Delete(want);
    return ok;
}

static bool converged(void *ud)
{
    return converged_quiet(ud, false);
}

static void assert_converged(live *l, int ms)
{
    if (!wait_for(converged, l, ms)) {
        converged_quiet(l, true);
        fail_msg("the sink did not converge to the server's state");
    }
}

/* n objects of every kind the source reads, named <prefix>-<i>, as a JSON array. */
static char *objects(const char *prefix, int n, const char *istio_ver, bool slices,
                     const char *vs_host)
{
    strbuf b;
    strbuf_init(&b, 0);
    strbuf_appends(&b, "[");
    for (int i = 0; i < n; i++) {
        strbuf_appendf(
            &b,
            "%s{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s-ns%d\"}},"
            "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s-svc%d\","
            "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.%d\",\"ports\":[{"
            "\"port\":80}]}},"
            "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s-pod%d\","
            "\"namespace\":\"default\",\"labels\":{\"app\":\"a\"}},\"status\":{\"podIP\":\"10.0.0.%"
            "d\"}},",
            i ? "," : "", prefix, i, prefix, i, i + 1, prefix, i, i + 1);
        /* A TLS credential the source reads, and the two Secret types it must not. */
        strbuf_appendf(
            &b,
            "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s-tls%d\","
            "\"namespace\":\"default\"},\"type\":\"kubernetes.io/"
            "tls\",\"data\":{\"tls.crt\":\"eA==\","
            "\"tls.key\":\"eQ==\"}},"
            "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s-tok%d\","
            "\"namespace\":\"default\"},\"type\":\"kubernetes.io/service-account-token\","
            "\"data\":{\"token\":\"eg==\"}},"
            "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"sh.helm.release."
            "v1.%s.v%d\","
            "\"namespace\":\"default\"},\"type\":\"helm.sh/"
            "release.v1\",\"data\":{\"release\":\"eg==\"}},",
            prefix, i, prefix, i, prefix, i);
        if (slices)
            strbuf_appendf(
                &b,
                "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                "\"metadata\":{\"name\":\"%s-svc%d-x\",\"namespace\":\"default\",\"labels\":"
                "{\"kubernetes.io/service-name\":\"%s-svc%d\"}},\"addressType\":\"IPv4\","
                "\"endpoints\":[{\"addresses\":[\"10.0.0.%d\"]}]},",
                prefix, i, prefix, i, i + 1);
        else
            strbuf_appendf(&b,
                           "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":"
                           "{\"name\":\"%s-svc%d\",\"namespace\":\"default\"},\"subsets\":[]},",
                           prefix, i);
        strbuf_appendf(&b,
                       "{\"apiVersion\":\"networking.istio.io/"
                       "%s\",\"kind\":\"Gateway\",\"metadata\":{\"name\":\"%s-gw%d\",\"namespace\":"
                       "\"default\"},\"spec\":{}},"
                       "{\"apiVersion\":\"networking.istio.io/"
                       "%s\",\"kind\":\"VirtualService\",\"metadata\":{\"name\":\"%s-vs%d\","
                       "\"namespace\":\"default\"},\"spec\":{\"hosts\":[\"%s\"]}},"
                       "{\"apiVersion\":\"networking.istio.io/"
                       "%s\",\"kind\":\"DestinationRule\",\"metadata\":{\"name\":\"%s-dr%d\","
                       "\"namespace\":\"default\"},\"spec\":{\"host\":\"x\"}},"
                       "{\"apiVersion\":\"networking.istio.io/"
                       "%s\",\"kind\":\"ServiceEntry\",\"metadata\":{\"name\":\"%s-se%d\","
                       "\"namespace\":\"default\"},\"spec\":{\"hosts\":[\"e.com\"]}}",
                       istio_ver, prefix, i, istio_ver, prefix, i, vs_host, istio_ver, prefix, i,
                       istio_ver, prefix, i);
    }
    strbuf_appends(&b, "]");
    return strbuf_steal(&b, NULL);
}

static void load(live *l, const char *prefix, int n)
{
    char *body = objects(prefix, n, l->istio_ver, l->slices, "h");
    cJSON *r = NULL;
    assert_int_equal(standin_call(&l->srv, "POST", "/_admin/load", body, &r), 200);
    cJSON_Delete(r);
    free(body);
}

static bool synced(void *ud)
{
    live *l = ud;
    pthread_mutex_lock(&l->rec.mu);
    bool s = l->rec.synced > 0;
    pthread_mutex_unlock(&l->rec.mu);
    return s;
}

/* Starts stand-in + source. extra: stand-in arguments. */
static int live_setup(live *l, const char *const *extra, const char *istio_ver, bool slices)
{
    memset(l, 0, sizeof(*l));
    l->istio_ver = istio_ver;
    l->slices = slices;
    int rc = standin_start(&l->srv, extra);
    if (rc != 0)
        return rc;
    rec_init(&l->rec);
    return 0;
}

static void live_start_source(live *l)
{
    k8s_config cfg = {
        .kubeconfig = l->srv.kubeconfig,
        .watch_timeout_min_s = 2,
        .watch_timeout_max_s = 4,
        .backoff_initial_ms = 50,
        .backoff_max_ms = 400,
        .page_limit = 3, /* several pages per list */
    };
    l->src = k8s_source_new(&cfg, rec_sink_of(&l->rec));
    assert_non_null(l->src);
    assert_int_equal(k8s_source_start(l->src), 0);
}

static void live_teardown(live *l)
{
    k8s_source_free(l->src);
    standin_stop(&l->srv);
    rec_free(&l->rec);
}

static double stat_of(live *l, const char *resource, const char *field)
{
    cJSON *st = k8s_source_stats(l->src), *e;
    double v = -1;
    cJSON_ArrayForEach(e, st)
    {
        if (strcmp(cJSON_GetObjectItem(e, "resource")->valuestring, resource) == 0)
            v = cJSON_GetObjectItem(e, field)->valuedouble;
    }
    cJSON_Delete(st);
    return v;
}

static double total_relists(live *l)
{
    cJSON *st = k8s_source_stats(l->src), *e;
    double v = 0;
    cJSON_ArrayForEach(e, st) v += cJSON_GetObjectItem(e, "relists")->valuedouble;
    cJSON_Delete(st);
    return v;
}

static void post_vs(live *l, const char *name, const char *host, long want)
{
    char path[200], body[400];
    snprintf(path, sizeof(path), "/apis/networking.istio.io/%s/namespaces/default/virtualservices",
             l->istio_ver);
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"networking.istio.io/%s\",\"kind\":"
             "\"VirtualService\",\"metadata\":{\"name\":\"%s\"},\"spec\":{\"hosts\":[\"%s\"]}}",
             l->istio_ver, name, host);
    assert_int_equal(standin_call(&l->srv, "POST", path, body, NULL), want);
}

static void del_path(live *l, const char *path)
{
    assert_int_equal(standin_call(&l->srv, "DELETE", path, NULL, NULL), 200);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_list_then_watch(void **state)
{
    live l;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    (void)state;
    load(&l, "a", 7); /* 7 per kind with pages of 3: three pages each */
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    pthread_mutex_lock(&l.rec.mu);
    assert_int_equal(l.rec.synced, 1);
    assert_string_equal(l.rec.last_origin, "kubernetes");
    /* List items get apiVersion and kind although the list omits them. */
    const cJSON *vs = cJSON_GetObjectItem(l.rec.objs, "VirtualService default/a-vs3");
    assert_non_null(vs);
    assert_string_equal(cJSON_GetObjectItem(vs, "apiVersion")->valuestring,
                        "networking.istio.io/v1");
    const cJSON *sl = cJSON_GetObjectItem(l.rec.objs, "EndpointSlice default/a-svc1-x");
    assert_non_null(sl);
    assert_string_equal(cJSON_GetObjectItem(sl, "apiVersion")->valuestring, "discovery.k8s.io/v1");
    pthread_mutex_unlock(&l.rec.mu);
    assert_true(k8s_source_synced(l.src));

    /* Watch: add, modify, delete. */
    post_vs(&l, "new-vs", "one", 201);
    post_vs(&l, "new-vs", "one", 409);
    char path[200], body[300];
    snprintf(path, sizeof(path),
             "/apis/networking.istio.io/v1/namespaces/default/virtualservices/a-vs0");
    snprintf(body, sizeof(body), "{\"spec\":{\"hosts\":[\"changed\"]}}");
    /* A JSON body is not a patch type: the stand-in refuses it like the real server. */
    assert_int_equal(standin_call(&l.srv, "PATCH", path, body, NULL), 415);
    del_path(&l, "/api/v1/namespaces/default/pods/a-pod2");
    del_path(&l, "/apis/networking.istio.io/v1/namespaces/default/gateways/a-gw6");
    assert_converged(&l, 5000);
    pthread_mutex_lock(&l.rec.mu);
    assert_null(cJSON_GetObjectItem(l.rec.objs, "Pod default/a-pod2"));
    assert_non_null(cJSON_GetObjectItem(l.rec.objs, "VirtualService default/new-vs"));
    pthread_mutex_unlock(&l.rec.mu);

    /* Stats, /debug/k8sz and metrics. */
    assert_int_equal((int)stat_of(&l, "virtualservices", "objects"), 8);
    assert_int_equal((int)stat_of(&l, "virtualservices", "relists"), 1);
    assert_true(stat_of(&l, "pods", "events") >= 8);
    void *ud = NULL;
    dbg_handler_fn fn = test_dbg_handler("/debug/k8sz", &ud);
    assert_non_null(fn);
    dbg_response resp = {0};
    strbuf_init(&resp.body, 0);
    fn(ud, NULL, &resp);
    cJSON *k8sz = cJSON_Parse(resp.body.data);
    assert_non_null(k8sz);
    /* + Sidecars and the 3 security.istio.io kinds */
    assert_int_equal(cJSON_GetArraySize(k8sz), 13);
    cJSON *first = cJSON_GetArrayItem(k8sz, 0);
    assert_string_equal(cJSON_GetObjectItem(first, "resource")->valuestring, "namespaces");
    assert_true(strlen(cJSON_GetObjectItem(first, "lastEventTime")->valuestring) > 10);
    assert_string_equal(cJSON_GetObjectItem(first, "state")->valuestring, "watching");
    cJSON_Delete(k8sz);
    strbuf_free(&resp.body);
    metric *cfg = metric_counter("pilot_k8s_cfg_events", "", "type,event");
    metric *reg = metric_counter("pilot_k8s_reg_events", "", "type,event");
    assert_true(metric_value(cfg, "VirtualService,add") >= 8);
    assert_true(metric_value(cfg, "Gateway,delete") >= 1);
    assert_true(metric_value(reg, "Pods,delete") >= 1);
    assert_true(metric_value(reg, "EndpointSlice,add") >= 7);
    live_teardown(&l);
}

static void test_drop_watches_no_loss(void **state)
{
    live l;
    (void)state;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "b", 4);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    double relists = total_relists(&l);
    for (int round = 0; round < 4; round++) {
        /* Clean ends and connection resets, with writes racing the re-watch. */
        standin_call(&l.srv, "POST",
                     round % 2 ? "/_admin/drop-watches?abrupt=1" : "/_admin/drop-watches", NULL,
                     NULL);
        char name[32];
        snprintf(name, sizeof(name), "drop-%d", round);
        post_vs(&l, name, "h", 201);
        assert_converged(&l, 8000);
    }
    /* Re-watching continued from the last resourceVersion: nothing was relisted. */
    assert_true(total_relists(&l) == relists);
    assert_true(stat_of(&l, "virtualservices", "watches") >= 5);
    live_teardown(&l);
}

static void test_compact_relist_deletes_vanished(void **state)
{
    live l;
    (void)state;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "c", 5);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    double relists = stat_of(&l, "virtualservices", "relists");

    /* Stalled watches miss the deletions; compaction then forgets them: only a relist
     * that reconciles can notice that these objects vanished. */
    standin_call(&l.srv, "POST", "/_admin/stall?seconds=30", NULL, NULL);
    del_path(&l, "/apis/networking.istio.io/v1/namespaces/default/virtualservices/c-vs1");
    del_path(&l, "/api/v1/namespaces/default/services/c-svc2");
    del_path(&l, "/api/v1/namespaces/c-ns3");
    post_vs(&l, "after-compact", "h", 201);
    standin_call(&l.srv, "POST", "/_admin/compact", NULL, NULL);
    assert_converged(&l, 8000);
    pthread_mutex_lock(&l.rec.mu);
    assert_null(cJSON_GetObjectItem(l.rec.objs, "VirtualService default/c-vs1"));
    assert_null(cJSON_GetObjectItem(l.rec.objs, "Service default/c-svc2"));
    assert_null(cJSON_GetObjectItem(l.rec.objs, "Namespace /c-ns3"));
    pthread_mutex_unlock(&l.rec.mu);
    assert_true(stat_of(&l, "virtualservices", "relists") > relists);
    standin_call(&l.srv, "POST", "/_admin/stall?seconds=0", NULL, NULL);

    /* HTTP 410 at watch start: reset the streams and compact before they come back. */
    relists = stat_of(&l, "services", "relists");
    standin_call(&l.srv, "POST", "/_admin/drop-watches?abrupt=1", NULL, NULL);
    del_path(&l, "/api/v1/namespaces/default/services/c-svc4");
    standin_call(&l.srv, "POST", "/_admin/compact", NULL, NULL);
    assert_converged(&l, 8000);
    assert_true(stat_of(&l, "services", "relists") > relists);
    live_teardown(&l);
}

static void test_restart_converges(void **state)
{
    live l;
    (void)state;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "d", 6);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    /* A new server state: some names kept (with new content), some gone, some new. */
    char *body = objects("d", 3, "v1", true, "moved");
    char *more = objects("e", 2, "v1", true, "x");
    body[strlen(body) - 1] = ',';
    strbuf b;
    strbuf_init(&b, 0);
    strbuf_appends(&b, body);
    strbuf_appends(&b, more + 1);
    assert_int_equal(standin_call(&l.srv, "POST", "/_admin/restart", b.data, NULL), 200);
    strbuf_free(&b);
    free(body);
    free(more);
    assert_converged(&l, 10000);
    pthread_mutex_lock(&l.rec.mu);
    assert_null(cJSON_GetObjectItem(l.rec.objs, "VirtualService default/d-vs4"));
    const cJSON *vs = cJSON_GetObjectItem(l.rec.objs, "VirtualService default/d-vs1");
    assert_non_null(vs);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(vs, "spec"), "hosts"), 0)
            ->valuestring,
        "moved");
    assert_non_null(cJSON_GetObjectItem(l.rec.objs, "Pod default/e-pod1"));
    pthread_mutex_unlock(&l.rec.mu);
    /* And it keeps watching the new server. */
    post_vs(&l, "post-restart", "h", 201);
    assert_converged(&l, 5000);
    live_teardown(&l);
}

static void test_failures_backoff(void **state)
{
    live l;
    (void)state;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "f", 2);
    /* The first lists fail: the source keeps trying with backoff and still syncs. */
    standin_call(&l.srv, "POST", "/_admin/fail?count=6&code=500", NULL, NULL);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 15000));
    assert_converged(&l, 5000);
    cJSON *st = k8s_source_stats(l.src), *e;
    double errors = 0;
    cJSON_ArrayForEach(e, st) errors += cJSON_GetObjectItem(e, "errors")->valuedouble;
    cJSON_Delete(st);
    assert_true(errors >= 6);
    /* Watches failing with 503 and then recovering. */
    standin_call(&l.srv, "POST", "/_admin/fail?count=10&code=503", NULL, NULL);
    standin_call(&l.srv, "POST", "/_admin/drop-watches?abrupt=1", NULL, NULL);
    post_vs(&l, "during-failures", "h", 201);
    assert_converged(&l, 15000);
    live_teardown(&l);
}

static void test_stall_then_resume(void **state)
{
    live l;
    (void)state;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "g", 2);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    standin_call(&l.srv, "POST", "/_admin/stall?seconds=2", NULL, NULL);
    post_vs(&l, "in-stall", "h", 201);
    sleep_ms(500);
    pthread_mutex_lock(&l.rec.mu);
    bool early = cJSON_GetObjectItem(l.rec.objs, "VirtualService default/in-stall") != NULL;
    pthread_mutex_unlock(&l.rec.mu);
    assert_false(early); /* the stream is stalled */
    assert_converged(&l, 8000);
    live_teardown(&l);
}

static void test_fallback_versions(void **state)
{
    live l;
    (void)state;
    static const char *const args[] = {"--no-endpointslices", "--istio-versions", "v1alpha3", NULL};
    int rc = live_setup(&l, args, "v1alpha3", false);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "h", 3);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    pthread_mutex_lock(&l.rec.mu);
    const cJSON *ep = cJSON_GetObjectItem(l.rec.objs, "Endpoints default/h-svc0");
    assert_non_null(ep);
    const cJSON *dr = cJSON_GetObjectItem(l.rec.objs, "DestinationRule default/h-dr2");
    assert_non_null(dr);
    assert_string_equal(cJSON_GetObjectItem(dr, "apiVersion")->valuestring,
                        "networking.istio.io/v1alpha3");
    pthread_mutex_unlock(&l.rec.mu);
    assert_int_equal((int)stat_of(&l, "endpoints", "objects"), 3);
    assert_true(stat_of(&l, "endpointslices", "objects") < 0);
    live_teardown(&l);
}

/* ---- writes ----------------------------------------------------------------------------- */

static void test_writes(void **state)
{
    (void)state;
    standin srv;
    char err[512];
    int rc = standin_start(&srv, NULL);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    k8s_config cfg = {.kubeconfig = srv.kubeconfig};
    k8s_client *c = k8s_client_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(k8s_client_namespace(c), "default");

    static const struct {
        k8s_kind kind;
        const char *body;
        const char *field, *v1, *v2;
    } kinds[] = {
        {K8S_CONFIGMAP,
         "{\"metadata\":{\"name\":\"istio-ca-root-cert\",\"labels\":"
         "{\"istio.io/config\":\"true\"}},\"data\":{\"root-cert.pem\":\"A\"}}",
         "data", "A", "B"},
        {K8S_SECRET,
         "{\"metadata\":{\"name\":\"istio-ca-secret\"},\"type\":\"istio.io/ca-root\","
         "\"data\":{\"root-cert.pem\":\"QQ==\"}}",
         "data", "QQ==", "Qg=="},
        {K8S_LEASE,
         "{\"metadata\":{\"name\":\"istio-leader\"},\"spec\":{\"holderIdentity\":"
         "\"A\",\"leaseDurationSeconds\":30}}",
         "spec", "A", "B"},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        cJSON *obj = cJSON_Parse(kinds[i].body), *out = NULL, *got = NULL, *upd = NULL;
        const char *key = kinds[i].kind == K8S_LEASE ? "holderIdentity" : "root-cert.pem";
        const char *name =
            cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name")->valuestring;
        print_message("kind %zu\n", i);
        assert_int_equal(k8s_get(c, kinds[i].kind, "istio-system", name, &got, err, sizeof(err)),
                         K8S_ENOTFOUND);
        assert_int_equal(k8s_create(c, kinds[i].kind, "istio-system", obj, &out, err, sizeof(err)),
                         0);
        const char *rv1 =
            cJSON_GetObjectItem(cJSON_GetObjectItem(out, "metadata"), "resourceVersion")
                ->valuestring;
        assert_non_null(rv1);
        assert_int_equal(k8s_create(c, kinds[i].kind, "istio-system", obj, NULL, err, sizeof(err)),
                         K8S_EEXISTS);
        assert_non_null(strstr(err, "already exists"));
        assert_int_equal(k8s_get(c, kinds[i].kind, "istio-system", name, &got, err, sizeof(err)),
                         0);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(got, kinds[i].field), key)->valuestring,
            kinds[i].v1);
        /* Update at the version read: accepted. */
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(got, kinds[i].field), key,
                                  cJSON_CreateString(kinds[i].v2));
        assert_int_equal(k8s_update(c, kinds[i].kind, NULL, got, &upd, err, sizeof(err)), 0);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(upd, kinds[i].field), key)->valuestring,
            kinds[i].v2);
        /* The same stale copy again: Conflict, told apart from AlreadyExists. */
        assert_int_equal(k8s_update(c, kinds[i].kind, NULL, got, NULL, err, sizeof(err)),
                         K8S_ECONFLICT);
        assert_non_null(strstr(err, "modified"));
        assert_int_equal(k8s_delete(c, kinds[i].kind, "istio-system", name, err, sizeof(err)), 0);
        assert_int_equal(k8s_delete(c, kinds[i].kind, "istio-system", name, err, sizeof(err)),
                         K8S_ENOTFOUND);
        assert_int_equal(k8s_update(c, kinds[i].kind, NULL, got, NULL, err, sizeof(err)),
                         K8S_ENOTFOUND);
        cJSON_Delete(obj);
        cJSON_Delete(out);
        cJSON_Delete(got);
        cJSON_Delete(upd);
    }
    /* Names that would change the URL are refused before any request. */
    assert_int_equal(k8s_get(c, K8S_SECRET, "istio-system", "../../x", NULL, err, sizeof(err)),
                     K8S_EINVAL);
    assert_int_equal(k8s_delete(c, K8S_SECRET, "a?b", "x", err, sizeof(err)), K8S_EINVAL);
    k8s_client_free(c);
    standin_stop(&srv);
}

static void test_token_review(void **state)
{
    (void)state;
    standin srv;
    char err[512];
    int rc = standin_start(&srv, NULL);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    assert_int_equal(
        standin_call(
            &srv, "POST", "/_admin/tokens",
            "{\"good\":{\"username\":\"system:serviceaccount:bookinfo:reviews\",\"groups\":"
            "[\"system:serviceaccounts\",\"system:serviceaccounts:bookinfo\",\"system:"
            "authenticated\"],"
            "\"audiences\":[\"istio-ca\"]},"
            "\"user\":{\"username\":\"alice\",\"groups\":[\"system:authenticated\"],\"audiences\":["
            "\"istio-ca\"]},"
            "\"nogroup\":{\"username\":\"system:serviceaccount:a:b\",\"groups\":[\"system:"
            "authenticated\"],\"audiences\":[\"istio-ca\"]},"
            "\"short\":{\"username\":\"system:serviceaccount:a\",\"groups\":[\"system:"
            "serviceaccounts\"],\"audiences\":[\"istio-ca\"]},"
            "\"witherr\":{\"username\":\"system:serviceaccount:a:b\",\"groups\":[\"system:"
            "serviceaccounts\"],\"audiences\":[\"istio-ca\"],\"error\":\"partial\"}}",
            NULL),
        200);
    k8s_config cfg = {.kubeconfig = srv.kubeconfig};
    k8s_client *c = k8s_client_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    static const struct {
        const char *token, *aud;
        int rc;
        const char *ns, *sa, *err_has;
    } cases[] = {
        {"good", "istio-ca", 0, "bookinfo", "reviews", NULL},
        {"good", "other-aud", K8S_EDENIED, NULL, NULL, "not authenticated"},
        {"unknown", "istio-ca", K8S_EDENIED, NULL, NULL, "invalid bearer token"},
        {"user", "istio-ca", K8S_EDENIED, NULL, NULL, "not in group"},
        {"nogroup", "istio-ca", K8S_EDENIED, NULL, NULL, "not in group"},
        {"short", "istio-ca", K8S_EDENIED, NULL, NULL, "<ns>:<sa>"},
        {"witherr", "istio-ca", K8S_EDENIED, NULL, NULL, "partial"},
        {"", "istio-ca", K8S_EINVAL, NULL, NULL, "no token"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *ns = NULL, *sa = NULL;
        err[0] = '\0';
        print_message("token %s aud %s\n", cases[i].token, cases[i].aud);
        assert_int_equal(
            k8s_token_review(c, cases[i].token, cases[i].aud, &ns, &sa, err, sizeof(err)),
            cases[i].rc);
        if (cases[i].rc == 0) {
            assert_string_equal(ns, cases[i].ns);
            assert_string_equal(sa, cases[i].sa);
        } else {
            assert_null(ns);
            assert_null(sa);
            assert_non_null(strstr(err, cases[i].err_has));
        }
        free(ns);
        free(sa);
    }
    k8s_token_status st;
    assert_int_equal(k8s_token_review_raw(c, "good", "istio-ca", &st, err, sizeof(err)), 0);
    assert_true(st.authenticated);
    assert_int_equal(st.ngroups, 3);
    k8s_token_status_free(&st);
    k8s_client_free(c);
    standin_stop(&srv);
}

/* The bearer token is re-read when its file changes (projected tokens rotate). */
static void test_token_file_rotation(void **state)
{
    (void)state;
    standin srv;
    char err[512], tok[320];
    long status = 0;
    int rc = standin_start(&srv, NULL);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    k8s_config cfg = {.kubeconfig = srv.kubeconfig};
    k8s_client *c = k8s_client_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    standin_call(&srv, "POST", "/_admin/auth", "{\"tokens\":[\"token-one\"]}", NULL);
    assert_int_equal(
        k8s_request(c, "GET", "/api/v1/namespaces", NULL, &status, NULL, err, sizeof(err)), 0);
    assert_int_equal(status, 200);
    standin_call(&srv, "POST", "/_admin/auth", "{\"tokens\":[\"token-two\"]}", NULL);
    assert_int_equal(
        k8s_request(c, "GET", "/api/v1/namespaces", NULL, &status, NULL, err, sizeof(err)), 0);
    assert_int_equal(status, 401);
    /* Replace the file atomically, as kubelet does. */
    snprintf(tok, sizeof(tok), "%s/token.new", srv.dir);
    FILE *f = fopen(tok, "w");
    assert_non_null(f);
    fputs("token-two\n", f);
    fclose(f);
    char dst[320];
    snprintf(dst, sizeof(dst), "%s/token", srv.dir);
    assert_int_equal(rename(tok, dst), 0);
    assert_int_equal(
        k8s_request(c, "GET", "/api/v1/namespaces", NULL, &status, NULL, err, sizeof(err)), 0);
    assert_int_equal(status, 200);
    k8s_client_free(c);
    standin_stop(&srv);
}

/* TLS: the server certificate is verified against the kubeconfig's CA, and a client
 * certificate authenticates us; a kubeconfig with another CA is refused. */
static void test_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/k8s-tls-XXXXXX", cmd[4096], err[512], kc[300];
    long status = 0;
    standin srv;

    if (mkdtemp(dir) == NULL || access("/usr/bin/openssl", X_OK) != 0)
        skip();
    snprintf(
        cmd, sizeof(cmd),
        "cd %s && exec >/dev/null 2>&1 && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out "
        "ca.pem && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout o.key -out "
        "other.pem && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=apiserver -keyout srv.key -out srv.csr && "
        "printf 'subjectAltName=IP:127.0.0.1' > san.ext && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile "
        "san.ext -out srv.pem && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=istiod -keyout cli.key -out cli.csr && "
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out "
        "cli.pem",
        dir);
    assert_int_equal(system(cmd), 0);
    char a1[300], a2[300], a3[300];
    snprintf(a1, sizeof(a1), "%s/srv.pem", dir);
    snprintf(a2, sizeof(a2), "%s/srv.key", dir);
    snprintf(a3, sizeof(a3), "%s/ca.pem", dir);
    const char *const args[] = {"--tls-cert", a1, "--tls-key", a2, "--client-ca", a3, NULL};
    int rc = standin_start(&srv, args);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    for (int good = 1; good >= 0; good--) {
        snprintf(kc, sizeof(kc), "%s/kc-%d", dir, good);
        FILE *f = fopen(kc, "w");
        assert_non_null(f);
        fprintf(f,
                "current-context: x\nclusters:\n- name: c\n  cluster:\n"
                "    server: https://127.0.0.1:%d\n    certificate-authority: %s\n"
                "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                "users:\n- name: u\n  user:\n    client-certificate: cli.pem\n"
                "    client-key: cli.key\n",
                srv.port, good ? "ca.pem" : "other.pem");
        fclose(f);
        k8s_config cfg = {.kubeconfig = kc};
        k8s_client *c = k8s_client_new(&cfg, err, sizeof(err));
        assert_non_null(c);
        rc = k8s_request(c, "GET", "/api/v1/namespaces", NULL, &status, NULL, err, sizeof(err));
        if (good) {
            assert_int_equal(rc, 0);
            assert_int_equal(status, 200);
        } else {
            assert_int_equal(rc, K8S_EFAIL);
            assert_non_null(strstr(err, "SSL"));
        }
        k8s_client_free(c);
    }
    standin_stop(&srv);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_config(void **state)
{
    (void)state;
    rec_sink rec;
    rec_init(&rec);
    k8s_config cfg = {.kubeconfig = "/nonexistent/kubeconfig"};
    assert_null(k8s_source_new(&cfg, rec_sink_of(&rec)));
    rec_free(&rec);
}

static bool has_key(live *l, const char *key)
{
    pthread_mutex_lock(&l->rec.mu);
    bool ok = cJSON_GetObjectItem(l->rec.objs, key) != NULL;
    pthread_mutex_unlock(&l->rec.mu);
    return ok;
}

static bool has_new_tls(void *ud)
{
    return has_key(ud, "Secret default/late-tls");
}

/* Secrets: the field selector keeps service-account tokens and Helm releases out of the
 * sink, in the list and in the watch; the stand-in refuses fields the real server does. */
static void test_secrets_selector(void **state)
{
    live l;
    (void)state;
    int rc = live_setup(&l, NULL, "v1", true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    load(&l, "s", 2);
    /* A Secret without a type is Opaque to the API server: it passes the selector. */
    assert_int_equal(standin_call(&l.srv, "POST", "/api/v1/namespaces/default/secrets",
                                  "{\"metadata\":{\"name\":\"untyped\"},\"data\":{}}", NULL),
                     201);
    live_start_source(&l);
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    assert_true(has_key(&l, "Secret default/s-tls1"));
    assert_true(has_key(&l, "Secret default/untyped"));
    assert_false(has_key(&l, "Secret default/s-tok1"));
    assert_false(has_key(&l, "Secret default/sh.helm.release.v1.s.v1"));
    /* Through the watch: a token first, then a TLS Secret; once the second is in, the
     * first would have been delivered too. */
    assert_int_equal(standin_call(&l.srv, "POST", "/api/v1/namespaces/default/secrets",
                                  "{\"metadata\":{\"name\":\"late-tok\"},\"type\":"
                                  "\"kubernetes.io/service-account-token\",\"data\":{}}",
                                  NULL),
                     201);
    assert_int_equal(standin_call(&l.srv, "POST", "/api/v1/namespaces/default/secrets",
                                  "{\"metadata\":{\"name\":\"late-tls\"},\"type\":"
                                  "\"kubernetes.io/tls\",\"data\":{\"tls.crt\":\"eA==\"}}",
                                  NULL),
                     201);
    assert_true(wait_for(has_new_tls, &l, 5000));
    assert_false(has_key(&l, "Secret default/late-tok"));
    assert_converged(&l, 5000);
    assert_true(stat_of(&l, "secrets", "objects") >= 4);
    /* Fields the real API server does not index are a 400 there and here. */
    assert_int_equal(
        standin_call(&l.srv, "GET", "/api/v1/secrets?fieldSelector=data.x%3Dy", NULL, NULL), 400);
    assert_int_equal(
        standin_call(&l.srv, "GET", "/api/v1/services?fieldSelector=type%3Dx", NULL, NULL), 400);
    assert_int_equal(standin_call(&l.srv, "GET",
                                  "/api/v1/configmaps?fieldSelector=metadata.name%3Dx", NULL, NULL),
                     200);
    live_teardown(&l);
}

static bool has_late_vs(void *ud)
{
    return has_key(ud, "VirtualService default/late-vs");
}

/* networking.istio.io served only after start (CRDs installed later): the source syncs
 * without it, re-runs discovery on its timer and starts the Istio reflectors then, without
 * a second synced call. */
static void test_istio_installed_later(void **state)
{
    live l;
    (void)state;
    static const char *const args[] = {"--istio-versions", "", NULL};
    int rc = live_setup(&l, args, NULL, true);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    setenv("PILOT_K8S_REDISCOVERY_INTERVAL", "200ms", 1);
    live_start_source(&l);
    unsetenv("PILOT_K8S_REDISCOVERY_INTERVAL");
    assert_true(wait_for(synced, &l, 10000));
    assert_converged(&l, 5000);
    assert_true(stat_of(&l, "virtualservices", "objects") < 0); /* no such reflector */
    sleep_ms(500);                                              /* a few quiet re-checks */
    assert_true(stat_of(&l, "virtualservices", "objects") < 0);

    assert_int_equal(standin_call(&l.srv, "POST", "/_admin/istio-versions?set=v1beta1", NULL, NULL),
                     200);
    l.istio_ver = "v1beta1";
    post_vs(&l, "late-vs", "late.example.com", 201);
    assert_true(wait_for(has_late_vs, &l, 5000));
    assert_converged(&l, 5000);
    pthread_mutex_lock(&l.rec.mu);
    const cJSON *vs = cJSON_GetObjectItem(l.rec.objs, "VirtualService default/late-vs");
    assert_string_equal(cJSON_GetObjectItem(vs, "apiVersion")->valuestring,
                        "networking.istio.io/v1beta1");
    assert_int_equal(l.rec.synced, 1);
    pthread_mutex_unlock(&l.rec.mu);
    assert_int_equal((int)stat_of(&l, "gateways", "objects"), 0);
    assert_true(wait_for((bool (*)(void *))k8s_source_synced, l.src, 5000));
    live_teardown(&l);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_token_review),
        cmocka_unit_test(test_token_file_rotation),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_list_then_watch),
        cmocka_unit_test(test_drop_watches_no_loss),
        cmocka_unit_test(test_compact_relist_deletes_vanished),
        cmocka_unit_test(test_restart_converges),
        cmocka_unit_test(test_failures_backoff),
        cmocka_unit_test(test_stall_then_resume),
        cmocka_unit_test(test_fallback_versions),
        cmocka_unit_test(test_secrets_selector),
        cmocka_unit_test(test_istio_installed_later),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
