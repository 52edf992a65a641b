/* bench_model: the model's side of a large Kubernetes cluster. S Services, S
 * EndpointSlices and P Pods (Kubernetes-shaped JSON like a real cluster's: the pod shape
 * of tests/k8s/bench_k8s.c plus the metadata the API server adds) go through the model's
 * sink exactly as the k8s source hands them over (one cJSON object per event), and we
 * measure
 *   1. events applied per CPU-second of the model thread (mesh_parse + hash + store +
 *      dirty tracking), per kind;
 *   2. snapshot build CPU: the first full build of the whole mesh, a full build after a
 *      VirtualService edit, and endpoint-only builds (one slice, one pod);
 *   3. bytes retained per pod (mallinfo2 in-use bytes before/after, and VmRSS), in the
 *      store alone and with the snapshot built on top;
 *   4. a burst of P pod MODIFIED events (a label change on every pod) merged into one
 *      build, and the push request it produces (hosts, endpoints to re-send).
 *
 * How the clock is split: the model runs without its thread (model_flush applies the
 * queued events and builds on the caller's thread, as tests/pilot/model/test_model.c drives
 * it), so every number is one thread's CPU time with nothing competing for the allocator.
 * model_build is wrapped by the linker (-Wl,--wrap=model_build) to time each build; apply
 * CPU = model_flush's CPU minus its build CPU. Generating and cJSON-parsing the text is
 * done before the clock starts (that is the k8s source's cost, measured by
 * tests/k8s/bench_k8s). The pod and slice phases flush every 5,000 events (their builds
 * are trivial: no service exists yet, and their CPU is reported apart); the services
 * phase and the pod burst are one flush each, i.e. one debounced build. Peak memory is
 * therefore the burst's 50,000 parsed pods queued at once (a few hundred MB).
 *
 * Usage: bench_model [services] [pods]     (default 10000 50000), one JSON line on stdout
 *        bench_model --smoke                (100 services, 300 pods, checks the results)
 * Every run checks what it built (service and endpoint counts, labels after the burst,
 * push request contents) and exits 1 on a mismatch, so the smoke run is a real test. */
/* _GNU_SOURCE (mallinfo2) comes from the project arguments */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/model/model.h"
#include "pilot/model/model_internal.h"

/* ---- build timing (linker wrap) ------------------------------------------------------- */

mesh_snapshot *__real_model_build(const model_build_in *in, char ***changed, size_t *nchanged);
mesh_snapshot *__wrap_model_build(const model_build_in *in, char ***changed, size_t *nchanged);

static bool bm_wrapped;
static double bm_build_cpu; /* summed over builds since the last reset */
static int bm_builds;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

mesh_snapshot *__wrap_model_build(const model_build_in *in, char ***changed, size_t *nchanged)
{
    bm_wrapped = true;
    double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    mesh_snapshot *s = __real_model_build(in, changed, nchanged);
    bm_build_cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
    bm_builds++;
    return s;
}

/* ---- push requests ----------------------------------------------------------------------- */

typedef struct push_stat {
    int n; /* pushes since reset */
    bool full;
    size_t nhosts;     /* endpoint_hosts of the last push */
    size_t host_bytes; /* their lengths + NUL */
    size_t neps;       /* endpoints in the changed shards */
} push_stat;

static push_stat bm_push;

static void on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req)
{
    (void)ud;
    bm_push.n++;
    bm_push.full = req->full;
    bm_push.nhosts = req->nendpoint_hosts;
    bm_push.host_bytes = 0;
    bm_push.neps = 0;
    for (size_t i = 0; i < req->nendpoint_hosts; i++) {
        bm_push.host_bytes += strlen(req->endpoint_hosts[i]) + 1;
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(snap, req->endpoint_hosts[i]);
        bm_push.neps += sh ? sh->neps : 0;
    }
}

/* ---- the cluster's objects ------------------------------------------------------------- */

/* Pod j backs service j % nsvc; service i lives in namespace ns-(i % 50). */
static void gen_pod(strbuf *b, int j, int nsvc, const char *version, int rev)
{
    int s = j % nsvc;
    strbuf_appendf(
        b,
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"svc-%d-7d9f8c6b5-%05d\","
        "\"generateName\":\"svc-%d-7d9f8c6b5-\",\"namespace\":\"ns-%d\",\"uid\":"
        "\"5c1e0a7d-0000-4000-8000-%012d\",\"resourceVersion\":\"%d\",\"creationTimestamp\":"
        "\"2026-11-26T10:00:00Z\",\"labels\":{\"app\":\"svc-%d\",\"version\":\"%s\","
        "\"pod-template-hash\":\"7d9f8c6b5\",\"security.istio.io/tlsMode\":\"istio\"},"
        "\"annotations\":{\"kubectl.kubernetes.io/default-container\":\"app\",\"rev\":\"%d\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
        "\"svc-%d-7d9f8c6b5\",\"uid\":\"0f3a2b1c-0000-4000-8000-%012d\",\"controller\":true}]},"
        "\"spec\":{\"serviceAccountName\":\"sa-%d\",\"nodeName\":\"node-%d\",\"containers\":"
        "[{\"name\":\"app\",\"image\":\"docker.io/example/"
        "app:1.0\",\"ports\":[{\"containerPort\":8080,"
        "\"protocol\":\"TCP\"}],\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\","
        "\"value\":\"2\"}],"
        "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}},{\"name\":\"istio-"
        "proxy\","
        "\"image\":\"docker.io/istio/proxyv2:1.24.0\",\"args\":[\"proxy\",\"sidecar\"]}]},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%d.%d.%d\",\"podIPs\":[{\"ip\":"
        "\"10.%d.%d.%d\"}],\"hostIP\":\"192.0.2.%d\","
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"ContainersReady\","
        "\"status\":\"True\"},{\"type\":\"PodScheduled\",\"status\":\"True\"}],"
        "\"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":0},"
        "{\"name\":\"istio-proxy\",\"ready\":true,\"restartCount\":0}]}}",
        s, j, s, s % 50, j, 1000 + rev * 1000000 + j, s, version, rev, s, s, s, j % 100,
        1 + j / 65536, (j / 256) % 256, j % 256, 1 + j / 65536, (j / 256) % 256, j % 256, j % 100);
}

static void gen_service(strbuf *b, int i)
{
    strbuf_appendf(
        b,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\","
        "\"namespace\":\"ns-%d\",\"uid\":\"7a1d0c3e-0000-4000-8000-%012d\",\"resourceVersion\":"
        "\"%d\",\"creationTimestamp\":\"2026-11-26T09:00:00Z\",\"labels\":{\"app\":\"svc-%d\"}},"
        "\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.%d.%d.%d\",\"clusterIPs\":"
        "[\"10.%d.%d.%d\"],\"selector\":{\"app\":\"svc-%d\"},\"sessionAffinity\":\"None\","
        "\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080,\"protocol\":\"TCP\"}]},"
        "\"status\":{\"loadBalancer\":{}}}",
        i, i % 50, i, 500 + i, i, 96 + i / 65536, (i / 256) % 256, i % 256, 96 + i / 65536,
        (i / 256) % 256, i % 256, i);
}

/* The slice of service i: one endpoint per pod j = i, i + nsvc, ...; the endpoint of pod
 * `unready` (or none when -1) is not ready. */
static void gen_slice(strbuf *b, int i, int nsvc, int npod, int unready)
{
    strbuf_appendf(
        b,
        "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{"
        "\"name\":\"svc-%d-x7k2p\",\"generateName\":\"svc-%d-\",\"namespace\":\"ns-%d\","
        "\"uid\":\"9e4b0d2f-0000-4000-8000-%012d\",\"resourceVersion\":\"%d\","
        "\"creationTimestamp\":\"2026-11-26T09:00:00Z\",\"generation\":1,\"labels\":{"
        "\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\","
        "\"kubernetes.io/service-name\":\"svc-%d\",\"app\":\"svc-%d\"},\"annotations\":{"
        "\"endpoints.kubernetes.io/last-change-trigger-time\":\"2026-11-26T10:00:00Z\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"name\":\"svc-%d\","
        "\"uid\":\"7a1d0c3e-0000-4000-8000-%012d\",\"controller\":true,"
        "\"blockOwnerDeletion\":true}]},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\","
        "\"port\":8080,\"protocol\":\"TCP\"}],\"endpoints\":[",
        i, i, i % 50, i, 700 + i + (unready >= 0 ? 1000000 : 0), i, i, i, i);
    for (int j = i; j < npod; j += nsvc) {
        bool ready = j != unready;
        strbuf_appendf(
            b,
            "%s{\"addresses\":[\"10.%d.%d.%d\"],\"conditions\":{\"ready\":%s,\"serving\":%s,"
            "\"terminating\":false},\"nodeName\":\"node-%d\",\"zone\":\"zone-%c\","
            "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"svc-%d-7d9f8c6b5-%05d\",\"namespace\":"
            "\"ns-%d\",\"uid\":\"5c1e0a7d-0000-4000-8000-%012d\"}}",
            j == i ? "" : ",", 1 + j / 65536, (j / 256) % 256, j % 256, ready ? "true" : "false",
            ready ? "true" : "false", j % 100, 'a' + j % 3, i, j, i % 50, j);
    }
    strbuf_appends(b, "]}");
}

static const char VS_JSON[] =
    "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\",\"metadata\":{"
    "\"name\":\"svc-0\",\"namespace\":\"ns-0\"},\"spec\":{\"hosts\":[\"svc-0\"],\"http\":[{"
    "\"route\":[{\"destination\":{\"host\":\"svc-0\"}}]}]}}";

/* ---- measurement helpers ----------------------------------------------------------------- */

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static double heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

typedef struct phase {
    const char *name;
    int events;
    double apply_cpu; /* model thread: apply (and dirty bookkeeping) */
    double build_cpu; /* model thread: model_build */
    int builds;
    double enqueue_cpu; /* source side: sink.event calls */
    double heap_delta;  /* bytes still allocated after the phase */
    long rss_delta_kb;
    push_stat push;
} phase;

typedef enum { OBJ_POD, OBJ_SLICE, OBJ_SERVICE } obj_kind;

typedef struct gen_args {
    obj_kind kind;
    int nsvc, npod;
    const char *version; /* pods */
    int rev;
} gen_args;

static double thread_cpu(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

/* Generates `count` objects (parsed before the clock), hands them to the sink and flushes
 * every `chunk` events. */
static void run_phase(model *m, phase *ph, const gen_args *g, int count, int chunk)
{
    source_sink sink = model_sink(m);
    strbuf b;
    strbuf_init(&b, 0);
    cJSON **objs = xcalloc((size_t)chunk, sizeof(cJSON *));
    double heap0 = heap_bytes();
    long rss0 = rss_kb();
    bm_build_cpu = 0;
    bm_builds = 0;
    memset(&bm_push, 0, sizeof(bm_push));
    double flush_cpu = 0;
    ph->enqueue_cpu = 0;
    for (int done = 0; done < count;) {
        int n = count - done < chunk ? count - done : chunk;
        for (int i = 0; i < n; i++) {
            strbuf_reset(&b);
            if (g->kind == OBJ_POD)
                gen_pod(&b, done + i, g->nsvc, g->version, g->rev);
            else if (g->kind == OBJ_SLICE)
                gen_slice(&b, done + i, g->nsvc, g->npod, -1);
            else
                gen_service(&b, done + i);
            objs[i] = cJSON_Parse(b.data);
            if (!objs[i]) {
                fprintf(stderr, "bench_model: generated JSON does not parse: %.200s\n", b.data);
                exit(1);
            }
        }
        double t0 = thread_cpu();
        for (int i = 0; i < n; i++)
            sink.event(sink.ud, SOURCE_EV_UPSERT, objs[i], "kubernetes");
        double t1 = thread_cpu();
        model_flush(m);
        flush_cpu += thread_cpu() - t1;
        ph->enqueue_cpu += t1 - t0;
        done += n;
    }
    strbuf_free(&b);
    free(objs);
    ph->events = count;
    ph->build_cpu = bm_build_cpu;
    ph->builds = bm_builds;
    ph->apply_cpu = flush_cpu - bm_build_cpu;
    ph->heap_delta = heap_bytes() - heap0;
    ph->rss_delta_kb = rss_kb() - rss0;
    ph->push = bm_push;
}

/* One object as JSON text through the sink, then a flush: the build's cost. */
static void run_one(model *m, phase *ph, const char *json)
{
    source_sink sink = model_sink(m);
    bm_build_cpu = 0;
    bm_builds = 0;
    memset(&bm_push, 0, sizeof(bm_push));
    sink.event(sink.ud, SOURCE_EV_UPSERT, cJSON_Parse(json), "kubernetes");
    double t0 = thread_cpu();
    model_flush(m);
    ph->events = 1;
    ph->build_cpu = bm_build_cpu;
    ph->builds = bm_builds;
    ph->apply_cpu = thread_cpu() - t0 - bm_build_cpu;
    ph->push = bm_push;
}

/* ---- checks ------------------------------------------------------------------------------ */

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bench_model: check failed: " __VA_ARGS__);                            \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Every service has its shard with one ready endpoint per pod carrying `version`. */
static void check_mesh(model *m, int nsvc, int npod, const char *version)
{
    mesh_snapshot *s = model_snapshot(m);
    CHECK(s && s->nservices == (size_t)nsvc, "%zu services, want %d", s ? s->nservices : 0, nsvc);
    size_t bad = 0, eps = 0;
    for (size_t i = 0; s && i < s->nshards; i++) {
        const mesh_endpoint_shard *sh = s->shards[i];
        eps += sh->neps;
        for (size_t k = 0; k < sh->neps; k++) {
            const char *v = mesh_labels_get(&sh->eps[k].labels, "version");
            if (!v || strcmp(v, version) != 0 || !sh->eps[k].service_account ||
                sh->eps[k].port != 8080 || sh->eps[k].service_port != 80)
                bad++;
        }
    }
    CHECK(eps == (size_t)npod, "%zu endpoints, want %d", eps, npod);
    CHECK(bad == 0, "%zu endpoints without the pod's labels (version=%s), port or account", bad,
          version);
    mesh_snapshot_release(s);
}

/* ---- output ------------------------------------------------------------------------------ */

static void print_phase(const phase *ph, bool last)
{
    printf("\"%s\":{\"events\":%d,\"apply_cpu_s\":%.4f,\"events_per_cpu_s\":%.0f,"
           "\"enqueue_cpu_s\":%.4f,\"builds\":%d,\"build_cpu_s\":%.4f,"
           "\"heap_delta_bytes\":%.0f,\"rss_delta_kb\":%ld,\"push\":{\"n\":%d,\"full\":%s,"
           "\"endpoint_hosts\":%zu,\"host_bytes\":%zu,\"endpoints\":%zu}}%s",
           ph->name, ph->events, ph->apply_cpu,
           ph->apply_cpu > 0 ? ph->events / ph->apply_cpu : 0.0, ph->enqueue_cpu, ph->builds,
           ph->build_cpu, ph->heap_delta, ph->rss_delta_kb, ph->push.n,
           ph->push.full ? "true" : "false", ph->push.nhosts, ph->push.host_bytes, ph->push.neps,
           last ? "" : ",");
}

int main(int argc, char **argv)
{
    bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    int nsvc = smoke ? 100 : argc > 1 ? atoi(argv[1]) : 10000;
    int npod = smoke ? 300 : argc > 2 ? atoi(argv[2]) : 50000;
    if (nsvc < 1 || npod < nsvc || npod > 16000000 || nsvc > 1000000) {
        fprintf(stderr, "usage: bench_model [services] [pods]  (pods >= services)\n");
        return 2;
    }
    char err[128];
    log_configure("default:warn", err, sizeof(err)); /* one info line per build otherwise */

    model_opts o = {.domain = "cluster.local",
                    .debounce_after_ns = 100 * 1000000LL,
                    .debounce_max_ns = 10 * 1000000000LL,
                    .nsources = 0};
    model *m = model_new(&o);
    if (!m)
        return 1;
    model_on_push(m, on_push, NULL);
    model_flush(m); /* the empty first snapshot (no thread: this one plays it) */
    if (!bm_wrapped) {
        fprintf(stderr, "bench_model: model_build was not wrapped (link with "
                        "-Wl,--wrap=model_build)\n");
        return 1;
    }
    double heap0 = heap_bytes();
    long rss0 = rss_kb();

    /* Pods first, then slices, then services: the pod and slice flushes are cheap
     * endpoint-only builds (no service to shard yet), and the services' flush is the first
     * full build of the whole mesh, as after a real initial sync. */
    phase pods = {.name = "apply_pods"}, slices = {.name = "apply_slices"},
          svcs = {.name = "apply_services"};
    gen_args g = {.nsvc = nsvc, .npod = npod, .version = "v1", .rev = 0};
    g.kind = OBJ_POD;
    run_phase(m, &pods, &g, npod, 5000);
    g.kind = OBJ_SLICE;
    run_phase(m, &slices, &g, nsvc, 5000);
    g.kind = OBJ_SERVICE;
    run_phase(m, &svcs, &g, nsvc, nsvc);
    double heap_loaded = heap_bytes() - heap0;
    long rss_loaded = rss_kb() - rss0;
    check_mesh(m, nsvc, npod, "v1");
    CHECK(svcs.push.full && svcs.push.nhosts == (size_t)nsvc,
          "services push: full %d, %zu hosts, want %d", svcs.push.full, svcs.push.nhosts, nsvc);

    /* A VirtualService: a full build with nothing endpoint-related changed. */
    phase vs = {.name = "vs_full_build"};
    mesh_snapshot *before = model_snapshot(m);
    run_one(m, &vs, VS_JSON);
    mesh_snapshot *after = model_snapshot(m);
    CHECK(vs.push.full && vs.push.nhosts == 0, "VirtualService push: full %d, %zu hosts",
          vs.push.full, vs.push.nhosts);
    CHECK(after != before && after->nvss == 1 && after->shards == before->shards,
          "VirtualService build: a new snapshot (%d) with the VS (%zu) sharing every shard (%d)",
          after != before, after->nvss, after->shards == before->shards);
    mesh_snapshot_release(before);
    mesh_snapshot_release(after);

    /* One slice: one endpoint goes unready. */
    phase one_slice = {.name = "one_slice_build"};
    strbuf b;
    strbuf_init(&b, 0);
    gen_slice(&b, nsvc / 2, nsvc, npod, nsvc / 2);
    run_one(m, &one_slice, b.data);
    CHECK(!one_slice.push.full && one_slice.push.nhosts == 1,
          "slice push: full %d, %zu hosts, want 1", one_slice.push.full, one_slice.push.nhosts);

    /* One pod's labels. */
    phase one_pod = {.name = "one_pod_build"};
    strbuf_reset(&b);
    gen_pod(&b, 7 % npod, nsvc, "canary", 1);
    run_one(m, &one_pod, b.data);
    CHECK(!one_pod.push.full && one_pod.push.nhosts == 1, "pod push: full %d, %zu hosts, want 1",
          one_pod.push.full, one_pod.push.nhosts);

    /* The burst: every pod relabelled, merged into one build. */
    phase burst = {.name = "pod_burst"};
    g.kind = OBJ_POD;
    g.version = "v2";
    g.rev = 2;
    run_phase(m, &burst, &g, npod, npod);
    CHECK(!burst.push.full && burst.push.nhosts == (size_t)nsvc && burst.push.neps == (size_t)npod,
          "burst push: full %d, %zu hosts, %zu endpoints; want %d hosts, %d endpoints",
          burst.push.full, burst.push.nhosts, burst.push.neps, nsvc, npod);
    /* the unready endpoint of the slice edit is still there, so restore it before checking */
    strbuf_reset(&b);
    gen_slice(&b, nsvc / 2, nsvc, npod, -1);
    phase restore = {.name = "restore"};
    run_one(m, &restore, b.data);
    check_mesh(m, nsvc, npod, "v2");

    /* The same pod again is no change at all (the model's content hash); an annotation
     * change is applied (the hash differs) but moves no endpoint, so nothing is pushed. */
    phase same = {.name = "same"}, annot = {.name = "annot"};
    strbuf_reset(&b);
    gen_pod(&b, 0, nsvc, "v2", 2);
    run_one(m, &same, b.data);
    CHECK(same.builds == 0 && same.push.n == 0, "identical pod: %d builds, %d pushes", same.builds,
          same.push.n);
    strbuf_reset(&b);
    gen_pod(&b, 0, nsvc, "v2", 3);
    run_one(m, &annot, b.data);
    CHECK(annot.builds == 1 && annot.push.n == 0,
          "annotation-only pod change: %d builds, "
          "%d pushes, want 1 and 0",
          annot.builds, annot.push.n);
    strbuf_free(&b);

    printf("{\"services\":%d,\"slices\":%d,\"pods\":%d,", nsvc, nsvc, npod);
    print_phase(&pods, false);
    print_phase(&slices, false);
    print_phase(&svcs, false);
    print_phase(&vs, false);
    print_phase(&one_slice, false);
    print_phase(&one_pod, false);
    print_phase(&burst, false);
    double all_events = pods.events + slices.events + svcs.events;
    double all_apply = pods.apply_cpu + slices.apply_cpu + svcs.apply_cpu;
    printf("\"initial_events_per_cpu_s\":%.0f,\"full_build_cpu_s\":%.4f,"
           "\"store_bytes_per_pod\":%.0f,\"store_bytes_per_slice\":%.0f,"
           "\"model_bytes_per_pod\":%.0f,\"rss_kb_per_pod\":%.2f}\n",
           all_apply > 0 ? all_events / all_apply : 0.0, svcs.build_cpu, pods.heap_delta / npod,
           slices.heap_delta / nsvc, heap_loaded / npod, (double)rss_loaded / npod);

    model_free(m);
    if (failures) {
        fprintf(stderr, "bench_model: %d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
