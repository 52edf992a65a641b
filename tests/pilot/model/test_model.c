/* test_model: the model's translation of Kubernetes and Istio objects into services and
 * endpoint shards, reuse between snapshots, rejection of invalid objects, deletes and the
 * debounce. The model runs without its thread (model_flush plays it) except in the
 * debounce tests. */
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

#include <cjson/cJSON.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/model/model.h"
#include "pilot/model/model_internal.h"
#include "pilot/obs/metrics.h"

#define SVC_REVIEWS                                                                                \
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"reviews\","              \
    "\"namespace\":\"default\",\"labels\":{\"app\":\"reviews\"}},\"spec\":{\"clusterIP\":"         \
    "\"10.96.0.10\",\"selector\":{\"app\":\"reviews\"},\"ports\":[{\"name\":\"http\","             \
    "\"port\":9080,\"targetPort\":9080}]}}"

#define SLICE_REVIEWS(addr)                                                                        \
    "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{"            \
    "\"name\":\"reviews-abc\",\"namespace\":\"default\",\"labels\":{"                              \
    "\"kubernetes.io/service-name\":\"reviews\"}},\"addressType\":\"IPv4\",\"ports\":[{"           \
    "\"name\":\"http\",\"port\":9080,\"protocol\":\"TCP\"}],\"endpoints\":[{\"addresses\":"        \
    "[\"" addr "\"],\"zone\":\"zone-a\",\"targetRef\":{\"kind\":\"Pod\",\"name\":"                 \
    "\"reviews-v1\",\"namespace\":\"default\"}}]}"

#define POD_REVIEWS(version)                                                                       \
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"reviews-v1\","               \
    "\"namespace\":\"default\",\"labels\":{\"app\":\"reviews\",\"version\":\"" version             \
    "\"}},\"spec\":{\"serviceAccountName\":\"bookinfo-reviews\",\"nodeName\":\"node1\"},"          \
    "\"status\":{\"podIP\":\"10.1.0.5\",\"podIPs\":[{\"ip\":\"10.1.0.5\"}]}}"

#define VS_REVIEWS(dest)                                                                           \
    "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\",\"metadata\":{"        \
    "\"name\":\"reviews\",\"namespace\":\"default\"},\"spec\":{\"hosts\":[\"reviews\"],"           \
    "\"http\":[{\"route\":[{\"destination\":{\"host\":\"" dest "\"}}]}]}}"

#define VS_BROKEN                                                                                  \
    "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\",\"metadata\":{"        \
    "\"name\":\"reviews\",\"namespace\":\"default\"},\"spec\":{\"hosts\":[\"reviews\"],"           \
    "\"http\":[{\"route\":[{\"destination\":{\"host\":\"\"}}]}]}}"

#define SE_WIKI                                                                                    \
    "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\",\"metadata\":{"          \
    "\"name\":\"wiki\",\"namespace\":\"default\"},\"spec\":{\"hosts\":[\"en.wikipedia.org\","      \
    "\"de.wikipedia.org\"],\"location\":\"MESH_EXTERNAL\",\"resolution\":\"DNS\","                 \
    "\"ports\":[{\"number\":443,\"name\":\"https\",\"protocol\":\"TLS\"}]}}"

#define SE_STATIC                                                                                  \
    "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\",\"metadata\":{"          \
    "\"name\":\"db\",\"namespace\":\"prod\"},\"spec\":{\"hosts\":[\"db.internal\"],"               \
    "\"location\":\"MESH_INTERNAL\",\"resolution\":\"STATIC\",\"ports\":[{\"number\":5432,"        \
    "\"name\":\"tcp-pg\",\"protocol\":\"TCP\"}],\"endpoints\":[{\"address\":\"10.2.0.1\","         \
    "\"labels\":{\"role\":\"primary\"},\"ports\":{\"tcp-pg\":6432}},{\"address\":"                 \
    "\"10.2.0.2\",\"weight\":3}]}}"

#define ENDPOINTS_RATINGS                                                                          \
    "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"ratings\","            \
    "\"namespace\":\"default\"},\"subsets\":[{\"addresses\":[{\"ip\":\"10.1.0.9\"}],"              \
    "\"ports\":[{\"name\":\"http\",\"port\":9080}]}]}"

#define SVC_RATINGS                                                                                \
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"ratings\","              \
    "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.11\",\"ports\":[{"               \
    "\"name\":\"http\",\"port\":9080,\"appProtocol\":\"grpc\"}]}}"

#define POD_RATINGS_BY_IP                                                                          \
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"ratings-1\","                \
    "\"namespace\":\"default\",\"labels\":{\"app\":\"ratings\"}},\"spec\":{"                       \
    "\"serviceAccountName\":\"ratings-sa\"},\"status\":{\"podIP\":\"10.1.0.9\"}}"

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct push_log {
    atomic_int n;
    bool last_full;
    char hosts[512];
} push_log;

static void on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req)
{
    (void)snap;
    push_log *p = ud;
    p->last_full = req->full;
    p->hosts[0] = '\0';
    for (size_t i = 0; i < req->nendpoint_hosts; i++) {
        if (i)
            strncat(p->hosts, ",", sizeof(p->hosts) - strlen(p->hosts) - 1);
        strncat(p->hosts, req->endpoint_hosts[i], sizeof(p->hosts) - strlen(p->hosts) - 1);
    }
    atomic_fetch_add(&p->n, 1);
}

static model *new_model(int nsources, int64_t after_ms, int64_t max_ms)
{
    model_opts o = {.domain = "cluster.local",
                    .debounce_after_ns = after_ms * 1000000,
                    .debounce_max_ns = max_ms * 1000000,
                    .nsources = nsources};
    model *m = model_new(&o);
    assert_non_null(m);
    return m;
}

static void send_obj(model *m, source_event_type t, const char *json)
{
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    source_sink s = model_sink(m);
    s.event(s.ud, t, obj, "test.yaml");
}

/* One line per endpoint: "addr:port>svcport name sa labels loc ready weight". */
static void format_shard(const mesh_endpoint_shard *sh, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; sh && i < sh->neps; i++) {
        const mesh_endpoint *e = &sh->eps[i];
        char labels[512] = "";
        for (size_t j = 0; j < e->labels.n; j++)
            snprintf(labels + strlen(labels), sizeof(labels) - strlen(labels), "%s%s=%s",
                     j ? "," : "", e->labels.keys[j], e->labels.vals[j]);
        snprintf(out + strlen(out), len - strlen(out), "%s%s:%u>%u %s sa=%s {%s} loc=%s %s w%u",
                 i ? "; " : "", e->address, e->port, e->service_port,
                 e->port_name ? e->port_name : "-", e->service_account ? e->service_account : "-",
                 labels, e->locality ? e->locality : "-", e->ready ? "ready" : "unready",
                 e->weight);
    }
}

/* ---- translation table ------------------------------------------------------------------- */

typedef struct xlate_case {
    const char *name;
    const char *objs[6];
    const char *host;  /* service to check */
    const char *ports; /* "name:port:PROTO,..." */
    const char *vips;  /* comma list */
    int resolution;
    bool external;
    const char *endpoints; /* format_shard output */
} xlate_case;

static const xlate_case xlate_cases[] = {
    {"k8s service + slice + pod by targetRef",
     {SVC_REVIEWS, SLICE_REVIEWS("10.1.0.5"), POD_REVIEWS("v1")},
     "reviews.default.svc.cluster.local",
     "http:9080:HTTP",
     "10.96.0.10",
     0,
     false,
     "10.1.0.5:9080>9080 http sa=bookinfo-reviews {app=reviews,kubernetes.io/hostname=node1,"
     "topology.istio.io/cluster=Kubernetes,topology.kubernetes.io/zone=zone-a,version=v1} "
     "loc=/zone-a ready w1"},
    {"slice without pod: no labels",
     {SVC_REVIEWS, SLICE_REVIEWS("10.1.0.7")},
     "reviews.default.svc.cluster.local",
     "http:9080:HTTP",
     "10.96.0.10",
     0,
     false,
     "10.1.0.7:9080>9080 http sa=- {topology.istio.io/cluster=Kubernetes,"
     "topology.kubernetes.io/zone=zone-a} loc=/zone-a ready w1"},
    {"core Endpoints, pod matched by IP, appProtocol",
     {SVC_RATINGS, ENDPOINTS_RATINGS, POD_RATINGS_BY_IP},
     "ratings.default.svc.cluster.local",
     "http:9080:GRPC",
     "10.96.0.11",
     0,
     false,
     "10.1.0.9:9080>9080 http sa=ratings-sa {app=ratings,topology.istio.io/cluster=Kubernetes} "
     "loc= ready w1"},
    {"ServiceEntry DNS without endpoints: the host itself",
     {SE_WIKI},
     "de.wikipedia.org",
     "https:443:TLS",
     "",
     1,
     true,
     "de.wikipedia.org:443>443 https sa=- {topology.istio.io/cluster=Kubernetes} loc= ready w1"},
    {"ServiceEntry static endpoints with port map and weight",
     {SE_STATIC},
     "db.internal",
     "tcp-pg:5432:TCP",
     "",
     0,
     false,
     "10.2.0.1:6432>5432 tcp-pg sa=- {role=primary,topology.istio.io/cluster=Kubernetes} loc= "
     "ready w1; 10.2.0.2:5432>5432 tcp-pg sa=- {topology.istio.io/cluster=Kubernetes} loc= "
     "ready w3"},
};

static void test_translation(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(xlate_cases) / sizeof(xlate_cases[0]); c++) {
        const xlate_case *tc = &xlate_cases[c];
        model *m = new_model(0, 100, 1000);
        for (size_t i = 0; i < 6 && tc->objs[i]; i++)
            send_obj(m, SOURCE_EV_UPSERT, tc->objs[i]);
        model_flush(m);
        mesh_snapshot *s = model_snapshot(m);
        assert_non_null(s);
        const mesh_service *svc = mesh_snapshot_service(s, tc->host);
        if (!svc)
            fail_msg("%s: no service %s", tc->name, tc->host);
        char buf[1024] = "";
        for (size_t i = 0; i < svc->nports; i++)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s:%u:%s", i ? "," : "",
                     svc->ports[i].name ? svc->ports[i].name : "", svc->ports[i].port,
                     mesh_protocol_name(svc->ports[i].protocol));
        if (strcmp(buf, tc->ports) != 0)
            fail_msg("%s: ports %s, want %s", tc->name, buf, tc->ports);
        buf[0] = '\0';
        for (size_t i = 0; i < svc->nvips; i++)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "",
                     svc->vips[i]);
        if (strcmp(buf, tc->vips) != 0)
            fail_msg("%s: vips %s, want %s", tc->name, buf, tc->vips);
        assert_int_equal(svc->resolution, tc->resolution);
        assert_int_equal(svc->mesh_external, tc->external);
        format_shard(mesh_snapshot_shard(s, tc->host), buf, sizeof(buf));
        if (strcmp(buf, tc->endpoints) != 0)
            fail_msg("%s:\n got  %s\n want %s", tc->name, buf, tc->endpoints);
        assert_true(model_ready(m));
        mesh_snapshot_release(s);
        model_free(m);
    }
}

/* --clusterID labels every workload instance (istiod's AugmentLabels) and names the
 * registry in the snapshot; a locality becomes region/zone/subzone labels. */
static void test_cluster_id_labels(void **state)
{
    (void)state;
    model_opts o = {.domain = "cluster.local",
                    .debounce_after_ns = 100000000,
                    .debounce_max_ns = 1000000000,
                    .cluster_id = "east-1"};
    model *m = model_new(&o);
    assert_non_null(m);
    send_obj(m, SOURCE_EV_UPSERT,
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\","
             "\"metadata\":{\"name\":\"db\",\"namespace\":\"prod\"},\"spec\":{\"hosts\":"
             "[\"db.internal\"],\"resolution\":\"STATIC\",\"ports\":[{\"number\":5432,"
             "\"name\":\"tcp-pg\",\"protocol\":\"TCP\"}],\"endpoints\":[{\"address\":"
             "\"10.2.0.1\",\"locality\":\"us-east1/us-east1-b/rack7\",\"labels\":{"
             "\"topology.istio.io/cluster\":\"spoofed\"}}]}}");
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    assert_string_equal(s->cluster_id, "east-1");
    char buf[1024];
    format_shard(mesh_snapshot_shard(s, "db.internal"), buf, sizeof(buf));
    assert_string_equal(buf,
                        "10.2.0.1:5432>5432 tcp-pg sa=- {topology.istio.io/cluster=east-1,"
                        "topology.istio.io/subzone=rack7,topology.kubernetes.io/region=us-east1,"
                        "topology.kubernetes.io/zone=us-east1-b} "
                        "loc=us-east1/us-east1-b/rack7 ready w1");
    mesh_snapshot_release(s);
    model_free(m);
}

static double trigger_count(const char *type)
{
    strbuf out;
    strbuf_init(&out, 0);
    metrics_render(&out);
    char key[128];
    snprintf(key, sizeof key, "\npilot_push_triggers{type=\"%s\"} ", type);
    const char *p = out.data ? strstr(out.data, key) : NULL;
    double v = p ? strtod(p + strlen(key), NULL) : 0;
    strbuf_free(&out);
    return v;
}

/* pilot_push_triggers counts the changes merged into each push by istiod's reason. */
static void test_push_triggers(void **state)
{
    (void)state;
    model *m = new_model(0, 100, 1000);
    model_flush(m); /* the initial snapshot is no trigger */
    double svc = trigger_count("service"), ep = trigger_count("endpoint"),
           cfg = trigger_count("config");
    send_obj(m, SOURCE_EV_UPSERT, SVC_REVIEWS);
    send_obj(m, SOURCE_EV_UPSERT, SLICE_REVIEWS("10.1.0.5"));
    send_obj(m, SOURCE_EV_UPSERT, POD_REVIEWS("v1"));
    send_obj(m, SOURCE_EV_UPSERT, VS_REVIEWS("reviews"));
    model_flush(m);
    assert_true(trigger_count("service") - svc == 1);
    assert_true(trigger_count("endpoint") - ep == 2);
    assert_true(trigger_count("config") - cfg == 1);
    model_flush(m); /* nothing pending: nothing counted twice */
    assert_true(trigger_count("config") - cfg == 1);
    model_free(m);
}

static void test_services_sorted_and_se_hosts(void **state)
{
    (void)state;
    model *m = new_model(0, 100, 1000);
    send_obj(m, SOURCE_EV_UPSERT, SE_WIKI);
    send_obj(m, SOURCE_EV_UPSERT, SVC_REVIEWS);
    send_obj(m, SOURCE_EV_UPSERT, SVC_RATINGS);
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_int_equal(s->nservices, 4);
    for (size_t i = 1; i < s->nservices; i++)
        assert_true(strcmp(s->services[i - 1]->hostname, s->services[i]->hostname) < 0);
    const mesh_service *en = mesh_snapshot_service(s, "en.wikipedia.org");
    assert_non_null(en);
    assert_string_equal(en->from_service_entry, "default/wiki");
    assert_null(mesh_snapshot_service(s, "nope.default.svc.cluster.local"));
    assert_int_equal(s->nshards, s->nservices);
    mesh_snapshot_release(s);
    model_free(m);
}

/* ---- reuse between snapshots ------------------------------------------------------------- */

static void test_endpoint_only_change_shares_config(void **state)
{
    (void)state;
    push_log pl = {0};
    model *m = new_model(0, 100, 1000);
    model_on_push(m, on_push, &pl);
    send_obj(m, SOURCE_EV_UPSERT, SVC_REVIEWS);
    send_obj(m, SOURCE_EV_UPSERT, SVC_RATINGS);
    send_obj(m, SOURCE_EV_UPSERT, VS_REVIEWS("reviews"));
    send_obj(m, SOURCE_EV_UPSERT, SLICE_REVIEWS("10.1.0.5"));
    send_obj(m, SOURCE_EV_UPSERT, POD_REVIEWS("v1"));
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 1);
    assert_true(pl.last_full);
    mesh_snapshot *s1 = model_snapshot(m);

    send_obj(m, SOURCE_EV_UPSERT, SLICE_REVIEWS("10.1.0.6"));
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 2);
    assert_false(pl.last_full);
    assert_string_equal(pl.hosts, "reviews.default.svc.cluster.local");
    mesh_snapshot *s2 = model_snapshot(m);
    assert_ptr_not_equal(s1, s2);
    assert_true(s2->version > s1->version);
    assert_ptr_equal(s1->services, s2->services);
    assert_ptr_equal(s1->vss, s2->vss);
    assert_ptr_equal(s1->drs, s2->drs);
    assert_ptr_equal(s1->configz, s2->configz);
    assert_ptr_not_equal(s1->shards, s2->shards);
    const mesh_endpoint_shard *r1 = mesh_snapshot_shard(s1, "ratings.default.svc.cluster.local");
    const mesh_endpoint_shard *r2 = mesh_snapshot_shard(s2, "ratings.default.svc.cluster.local");
    assert_ptr_equal(r1, r2); /* untouched shard shared */
    const mesh_endpoint_shard *v1 = mesh_snapshot_shard(s1, "reviews.default.svc.cluster.local");
    const mesh_endpoint_shard *v2 = mesh_snapshot_shard(s2, "reviews.default.svc.cluster.local");
    assert_true(v2->version > v1->version);
    assert_string_equal(v2->eps[0].address, "10.1.0.6");
    assert_string_equal(v1->eps[0].address, "10.1.0.5"); /* the old snapshot is immutable */

    /* A pod label change re-reads the shard of the service its slice feeds. */
    send_obj(m, SOURCE_EV_UPSERT, POD_REVIEWS("v2"));
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 3);
    assert_false(pl.last_full);
    assert_string_equal(pl.hosts, "reviews.default.svc.cluster.local");

    /* The same pod again: no change, no push. */
    send_obj(m, SOURCE_EV_UPSERT, POD_REVIEWS("v2"));
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 3);

    /* A different service account behind the service is a full push (clusters carry the
     * SPIFFE identities), and back again likewise. */
    char *pod = xstrdup(POD_REVIEWS("v2"));
    char *sa = strstr(pod, "bookinfo-reviews");
    memcpy(sa, "bookinfo-REVIEWS", 16);
    send_obj(m, SOURCE_EV_UPSERT, pod);
    free(pod);
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 4);
    assert_true(pl.last_full);
    send_obj(m, SOURCE_EV_UPSERT, POD_REVIEWS("v2"));
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 5);
    assert_true(pl.last_full);

    /* A config change is a full push that still shares the unchanged service array. */
    send_obj(m, SOURCE_EV_UPSERT, VS_REVIEWS("ratings"));
    model_flush(m);
    assert_int_equal(atomic_load(&pl.n), 6);
    assert_true(pl.last_full);
    mesh_snapshot *s3 = model_snapshot(m);
    assert_ptr_equal(s3->services, s2->services);
    assert_ptr_not_equal(s3->vss, s2->vss);
    assert_ptr_not_equal(s3->configz, s2->configz);

    mesh_snapshot_release(s1);
    mesh_snapshot_release(s2);
    mesh_snapshot_release(s3);
    model_free(m);
}

/* ---- invalid objects, deletes ------------------------------------------------------------- */

static char warn_line[1024];
static void log_hook(const char *scope, log_level lvl, const char *line, void *ud)
{
    (void)ud;
    if (lvl == LOG_WARN && strcmp(scope, "config") == 0)
        snprintf(warn_line, sizeof(warn_line), "%s", line);
}

static void test_invalid_keeps_last_valid(void **state)
{
    (void)state;
    model *m = new_model(0, 100, 1000);
    send_obj(m, SOURCE_EV_UPSERT, VS_REVIEWS("reviews"));
    model_flush(m);
    metric *rejects = metric_counter("pilot_total_rejected_configs", "", "type");
    double before = metric_value(rejects, "VirtualService");

    warn_line[0] = '\0';
    log_set_hook(log_hook, NULL);
    send_obj(m, SOURCE_EV_UPSERT, VS_BROKEN);
    model_flush(m);
    log_set_hook(NULL, NULL);
    assert_non_null(strstr(warn_line, "test.yaml"));
    assert_non_null(strstr(warn_line, "default/reviews"));
    assert_true(metric_value(rejects, "VirtualService") == before + 1);

    mesh_snapshot *s = model_snapshot(m);
    assert_int_equal(s->nvss, 1);
    assert_string_equal(s->vss[0]->http[0].route[0].destination.host,
                        "reviews.default.svc.cluster.local");
    assert_int_equal(cJSON_GetArraySize(s->configz->items), 1);
    mesh_snapshot_release(s);
    model_free(m);
}

static void test_delete(void **state)
{
    (void)state;
    model *m = new_model(0, 100, 1000);
    send_obj(m, SOURCE_EV_UPSERT, SVC_REVIEWS);
    send_obj(m, SOURCE_EV_UPSERT, SLICE_REVIEWS("10.1.0.5"));
    send_obj(m, SOURCE_EV_UPSERT, VS_REVIEWS("reviews"));
    model_flush(m);
    send_obj(m, SOURCE_EV_DELETE,
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\","
             "\"metadata\":{\"name\":\"reviews\",\"namespace\":\"default\"}}");
    send_obj(m, SOURCE_EV_DELETE,
             "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
             "\"metadata\":{\"name\":\"reviews-abc\",\"namespace\":\"default\"}}");
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_int_equal(s->nvss, 0);
    assert_int_equal(cJSON_GetArraySize(s->configz->items), 0);
    const mesh_endpoint_shard *sh = mesh_snapshot_shard(s, "reviews.default.svc.cluster.local");
    assert_non_null(sh);
    assert_int_equal(sh->neps, 0);
    mesh_snapshot_release(s);
    send_obj(m, SOURCE_EV_DELETE,
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"reviews\","
             "\"namespace\":\"default\"}}");
    model_flush(m);
    s = model_snapshot(m);
    assert_int_equal(s->nservices, 0);
    assert_null(mesh_snapshot_shard(s, "reviews.default.svc.cluster.local"));
    mesh_snapshot_release(s);
    model_free(m);
}

/* Accepted fields with no effect are listed per object (and logged once), and the entry goes
 * with the object. */
static void test_unsupported_listed(void **state)
{
    (void)state;
    model *m = new_model(0, 100, 1000);
    send_obj(m, SOURCE_EV_UPSERT,
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\","
             "\"metadata\":{\"name\":\"reviews\",\"namespace\":\"default\"},\"spec\":{"
             "\"hosts\":[\"reviews\"],\"http\":[{\"mirrors\":[{\"destination\":{\"host\":"
             "\"ratings\"}}],\"route\":[{\"destination\":{\"host\":\"reviews\"}}]}]}}");
    /* the same object again without them, before the model ran: only the latest is applied */
    send_obj(m, SOURCE_EV_UPSERT, VS_REVIEWS("reviews"));
    model_flush(m);
    cJSON *u = model_unsupported_json(m);
    assert_null(cJSON_GetObjectItemCaseSensitive(u, "VirtualService/default/reviews"));
    cJSON_Delete(u);
    send_obj(m, SOURCE_EV_UPSERT,
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\","
             "\"metadata\":{\"name\":\"reviews\",\"namespace\":\"default\"},\"spec\":{"
             "\"hosts\":[\"reviews\"],\"http\":[{\"mirrors\":[{\"destination\":{\"host\":"
             "\"ratings\"}}],\"route\":[{\"destination\":{\"host\":\"reviews\"}}]}]}}");
    model_flush(m);
    u = model_unsupported_json(m);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(u, "VirtualService/default/reviews");
    assert_non_null(list);
    assert_true(cJSON_GetArraySize(list) >= 1);
    bool mirrors = false;
    cJSON *p;
    cJSON_ArrayForEach(p, list) mirrors = mirrors || strstr(p->valuestring, "mirrors") != NULL;
    assert_true(mirrors);
    cJSON_Delete(u);
    send_obj(m, SOURCE_EV_DELETE,
             "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\","
             "\"metadata\":{\"name\":\"reviews\",\"namespace\":\"default\"}}");
    model_flush(m);
    u = model_unsupported_json(m);
    assert_int_equal(cJSON_GetArraySize(u), 0);
    cJSON_Delete(u);
    model_free(m);
}

/* ---- the mailbox never drops ----------------------------------------------------------------- */

#define BURST_OBJECTS 25000
#define BURST_ROUNDS 20 /* 500,000 events in all */

static cJSON *burst_service(int i, int round)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s%d\","
             "\"namespace\":\"ns%d\",\"labels\":{\"round\":\"%d\"}},\"spec\":{\"ports\":"
             "[{\"name\":\"http\",\"port\":80}]}}",
             i, i % 50, round);
    return cJSON_Parse(buf);
}

/* What the source last said of object i: deleted (-1) or the round of its last upsert. */
static int burst_final(int i)
{
    int last = -1;
    for (int r = 0; r < BURST_ROUNDS; r++)
        last = (i + r) % 7 == 0 ? -1 : r; /* every seventh (object, round) is a delete */
    return last;
}

/* 500,000 events with the model paused (no thread, nothing applied): the final state must
 * equal the source's, every delete included. The mailbox held 100,000 events at most
 * before; it now keeps the latest state per object. */
static void test_burst_never_drops(void **state)
{
    (void)state;
    model *m = new_model(0, 100, 1000);
    source_sink sink = model_sink(m);
    for (int r = 0; r < BURST_ROUNDS; r++) {
        for (int i = 0; i < BURST_OBJECTS; i++) {
            cJSON *o = burst_service(i, r);
            if ((i + r) % 7 == 0) {
                cJSON_DeleteItemFromObject(o, "spec");
                sink.event(sink.ud, SOURCE_EV_DELETE, o, "burst");
            } else {
                sink.event(sink.ud, SOURCE_EV_UPSERT, o, "burst");
            }
        }
    }
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    size_t alive = 0;
    for (int i = 0; i < BURST_OBJECTS; i++) {
        char host[64];
        snprintf(host, sizeof host, "s%d.ns%d.svc.cluster.local", i, i % 50);
        const mesh_service *svc = mesh_snapshot_service(s, host);
        int want = burst_final(i);
        if (want < 0) {
            assert_null(svc);
            continue;
        }
        alive++;
        assert_non_null(svc);
        char round[16];
        snprintf(round, sizeof round, "%d", want);
        assert_string_equal(mesh_labels_get(&svc->meta.labels, "round"), round);
    }
    assert_int_equal(s->nservices, alive);
    assert_true(alive > 0 && alive < BURST_OBJECTS);
    mesh_snapshot_release(s);
    model_free(m);
}

/* More distinct objects than the mailbox takes while the model thread runs: the source
 * waits instead of dropping, and every object arrives. */
typedef struct {
    model *m;
    int n;
} burst_writer;

static void *burst_write(void *arg)
{
    burst_writer *w = arg;
    source_sink sink = model_sink(w->m);
    for (int i = 0; i < w->n; i++)
        sink.event(sink.ud, SOURCE_EV_UPSERT, burst_service(i, 0), "burst");
    sink.synced(sink.ud, "burst");
    return NULL;
}

static void test_backpressure_with_thread(void **state)
{
    (void)state;
    model *m = new_model(1, 1, 50);
    assert_int_equal(model_start(m), 0);
    burst_writer w = {.m = m, .n = 120000}; /* above the mailbox's 100,000 objects */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, burst_write, &w), 0);
    pthread_join(t, NULL);
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    assert_int_equal(s->nservices, (size_t)w.n);
    mesh_snapshot_release(s);
    model_free(m);
}

/* ---- readiness and debounce (with the model thread) ----------------------------------------- */

static void wait_pushes(push_log *pl, int n, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 5 && atomic_load(&pl->n) < n; i++)
        usleep(5000);
}

static void test_ready_after_sync(void **state)
{
    (void)state;
    push_log pl = {0};
    model *m = new_model(1, 20, 1000);
    model_on_push(m, on_push, &pl);
    assert_int_equal(model_start(m), 0);
    send_obj(m, SOURCE_EV_UPSERT, SVC_REVIEWS);
    usleep(100000);
    assert_false(model_ready(m)); /* the source has not synced: no build yet */
    assert_int_equal(atomic_load(&pl.n), 0);
    source_sink sk = model_sink(m);
    sk.synced(sk.ud, "test");
    wait_pushes(&pl, 1, 3000);
    assert_int_equal(atomic_load(&pl.n), 1);
    assert_true(model_ready(m));
    mesh_snapshot *s = model_snapshot(m);
    assert_int_equal(s->nservices, 1);
    mesh_snapshot_release(s);
    model_free(m);
}

static void test_debounce_merges(void **state)
{
    (void)state;
    push_log pl = {0};
    model *m = new_model(0, 150, 10000);
    model_on_push(m, on_push, &pl);
    assert_int_equal(model_start(m), 0);
    wait_pushes(&pl, 1, 3000); /* the initial empty snapshot */
    assert_int_equal(atomic_load(&pl.n), 1);
    /* Five events 20 ms apart, well inside the 150 ms quiet period: one push. */
    send_obj(m, SOURCE_EV_UPSERT, SVC_REVIEWS);
    for (int i = 0; i < 4; i++) {
        usleep(20000);
        send_obj(m, SOURCE_EV_UPSERT, i % 2 ? VS_REVIEWS("reviews") : VS_REVIEWS("ratings"));
    }
    send_obj(m, SOURCE_EV_UPSERT, SVC_RATINGS);
    wait_pushes(&pl, 2, 3000);
    usleep(400000);
    assert_int_equal(atomic_load(&pl.n), 2);
    mesh_snapshot *s = model_snapshot(m);
    assert_int_equal(s->nservices, 2);
    assert_int_equal(s->nvss, 1);
    mesh_snapshot_release(s);
    model_free(m);
}

static void test_debounce_max(void **state)
{
    (void)state;
    push_log pl = {0};
    /* Events every 40 ms never leave 200 ms of quiet; the 300 ms cap still pushes. */
    model *m = new_model(0, 200, 300);
    model_on_push(m, on_push, &pl);
    assert_int_equal(model_start(m), 0);
    wait_pushes(&pl, 1, 3000);
    int base = atomic_load(&pl.n);
    for (int i = 0; i < 25; i++) {
        send_obj(m, SOURCE_EV_UPSERT, i % 2 ? VS_REVIEWS("reviews") : VS_REVIEWS("ratings"));
        usleep(40000);
    }
    assert_true(atomic_load(&pl.n) >= base + 1);
    model_free(m);
}

int main(void)
{
    char err[128];
    log_configure("default:error,config:warn", err, sizeof(err));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translation),
        cmocka_unit_test(test_cluster_id_labels),
        cmocka_unit_test(test_push_triggers),
        cmocka_unit_test(test_services_sorted_and_se_hosts),
        cmocka_unit_test(test_endpoint_only_change_shares_config),
        cmocka_unit_test(test_invalid_keeps_last_valid),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_unsupported_listed),
        cmocka_unit_test(test_burst_never_drops),
        cmocka_unit_test(test_backpressure_with_thread),
        cmocka_unit_test(test_ready_after_sync),
        cmocka_unit_test(test_debounce_merges),
        cmocka_unit_test(test_debounce_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
