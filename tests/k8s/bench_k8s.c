/* Stays on the stand-in API server (tests/k8s/apiserver.py): it bulk-loads 10^4-10^5
 * objects in one request (/_admin/load), which a real server would take minutes to write,
 * and it measures only this process's CPU.
 *
 * bench_k8s: how fast the k8s source turns the API server's JSON into sink events, and
 * what it keeps per object. The stand-in API server is loaded with S services and P pods
 * (realistic pod bodies, ~1.6 KB of JSON each); then we measure
 *   1. the initial paged list: objects per CPU-second of this process (decode + reconcile
 *      + hand-off to the sink), and wall time to synced;
 *   2. a burst of P MODIFIED watch events (every pod re-written): events per CPU-second;
 *   3. bytes the reflector retains per pod (its key set for relist reconciliation).
 * CPU is this process's user+system time, so the Python stand-in's cost is excluded.
 * Usage: bench_k8s [services] [pods]   (default 10000 50000); PILOT_SRC must be set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "k8s_testlib.h"
#include "k8s/k8s_internal.h"

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void)
{
    return (double)util_now_ns() / 1e9;
}

static char *chunk(const char *kind, int from, int to, int rev)
{
    strbuf b;
    strbuf_init(&b, 0);
    strbuf_appends(&b, "[");
    for (int i = from; i < to; i++) {
        if (i > from)
            strbuf_appends(&b, ",");
        if (strcmp(kind, "svc") == 0) {
            strbuf_appendf(
                &b,
                "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\","
                "\"namespace\":\"ns-%d\",\"labels\":{\"app\":\"svc-%d\"}},\"spec\":{\"clusterIP\":"
                "\"10.%d.%d.%d\",\"selector\":{\"app\":\"svc-%d\"},\"ports\":[{\"name\":\"http\","
                "\"port\":80,\"targetPort\":8080,\"protocol\":\"TCP\"}]}}",
                i, i % 50, i, 96 + i / 65536, (i / 256) % 256, i % 256, i);
        } else {
            strbuf_appendf(
                &b,
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"svc-%d-7d9f8c6b5-"
                "%05d\","
                "\"namespace\":\"ns-%d\",\"labels\":{\"app\":\"svc-%d\",\"version\":\"v1\","
                "\"pod-template-hash\":\"7d9f8c6b5\",\"security.istio.io/tlsMode\":\"istio\"},"
                "\"annotations\":{\"kubectl.kubernetes.io/"
                "default-container\":\"app\",\"rev\":\"%d\"},"
                "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
                "\"svc-%d-7d9f8c6b5\",\"uid\":\"0f3a2b1c-0000-4000-8000-%012d\",\"controller\":"
                "true}]},"
                "\"spec\":{\"serviceAccountName\":\"sa-%d\",\"nodeName\":\"node-%d\","
                "\"containers\":"
                "[{\"name\":\"app\",\"image\":\"docker.io/example/"
                "app:1.0\",\"ports\":[{\"containerPort\":8080,"
                "\"protocol\":\"TCP\"}],\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\","
                "\"value\":\"2\"}],"
                "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}},{\"name\":"
                "\"istio-proxy\","
                "\"image\":\"docker.io/istio/proxyv2:1.24.0\",\"args\":[\"proxy\",\"sidecar\"]}]},"
                "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%d.%d.%d\",\"hostIP\":\"192.0.2.%"
                "d\","
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":"
                "\"ContainersReady\","
                "\"status\":\"True\"},{\"type\":\"PodScheduled\",\"status\":\"True\"}],"
                "\"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":0},"
                "{\"name\":\"istio-proxy\",\"ready\":true,\"restartCount\":0}]}}",
                i % 10000, i, (i % 10000) % 50, i % 10000, rev, i % 10000, i, i % 10000, i % 100,
                1 + i / 65536, (i / 256) % 256, i % 256, i % 100);
        }
    }
    strbuf_appends(&b, "]");
    return strbuf_steal(&b, NULL);
}

static void load_chunk(standin *s, const char *kind, int from, int to, int rev)
{
    char *body = chunk(kind, from, to, rev);
    if (standin_call(s, "POST", "/_admin/load", body, NULL) != 200) {
        fprintf(stderr, "load failed\n");
        exit(1);
    }
    free(body);
}

typedef struct counter {
    rec_sink unused;
    volatile long events;
    volatile int synced;
} counter;

static void on_event(void *ud, source_event_type t, cJSON *obj, const char *origin)
{
    (void)t;
    (void)origin;
    __atomic_add_fetch(&((counter *)ud)->events, 1, __ATOMIC_RELAXED);
    cJSON_Delete(obj);
}

static void on_synced(void *ud, const char *name)
{
    (void)name;
    __atomic_store_n(&((counter *)ud)->synced, 1, __ATOMIC_RELEASE);
}

static double stat_of(k8s_source *src, const char *res, const char *field)
{
    cJSON *st = k8s_source_stats(src), *e;
    double v = 0;
    cJSON_ArrayForEach(e, st) if (strcmp(cJSON_GetObjectItem(e, "resource")->valuestring, res) == 0)
        v = cJSON_GetObjectItem(e, field)->valuedouble;
    cJSON_Delete(st);
    return v;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    int nsvc = argc > 1 ? atoi(argv[1]) : 10000, npod = argc > 2 ? atoi(argv[2]) : 50000;
    standin s;
    counter c = {0};
    int rc = standin_start(&s, NULL);

    if (rc != 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fprintf(stderr, "loading %d services and %d pods into the stand-in...\n", nsvc, npod);
    for (int i = 0; i < nsvc; i += 2000)
        load_chunk(&s, "svc", i, i + 2000 < nsvc ? i + 2000 : nsvc, 0);
    for (int i = 0; i < npod; i += 2000)
        load_chunk(&s, "pod", i, i + 2000 < npod ? i + 2000 : npod, 0);

    source_sink sink = {.event = on_event, .synced = on_synced, .ud = &c};
    k8s_config cfg = {.kubeconfig = s.kubeconfig};
    double c0 = cpu_s(), w0 = wall_s();
    k8s_source *src = k8s_source_new(&cfg, sink);
    if (src == NULL || k8s_source_start(src) != 0)
        return 1;
    while (!__atomic_load_n(&c.synced, __ATOMIC_ACQUIRE))
        sleep_ms(5);
    double c1 = cpu_s(), w1 = wall_s();
    long listed = c.events;
    double ci = cpu_s();
    sleep_ms(2000); /* idle cost: 8 open watches, nothing changing */
    double idle = (cpu_s() - ci) / 2.0;
    double pod_bytes = stat_of(src, "pods", "retainedBytes") / npod;

    /* Rewrite every pod: P MODIFIED events on the pods watch. The stand-in logs them
     * while loading; we time from the first to the last event seen. */
    long before = c.events;
    int nchunks = (npod + 1999) / 2000;
    char **bodies = xcalloc((size_t)nchunks, sizeof(char *));
    for (int i = 0; i < nchunks; i++) /* built before the clock starts */
        bodies[i] = chunk("pod", i * 2000, (i + 1) * 2000 < npod ? (i + 1) * 2000 : npod, 1);
    c1 = cpu_s();
    w1 = wall_s();
    for (int i = 0; i < nchunks; i++) {
        if (standin_call(&s, "POST", "/_admin/load", bodies[i], NULL) != 200)
            return 1;
        free(bodies[i]);
    }
    free(bodies);
    double c2 = cpu_s(), w2 = wall_s();
    while (c.events < before + npod)
        sleep_ms(5);
    double c3 = cpu_s(), w3 = wall_s();
    (void)c2;
    (void)w2;

    printf("{\"services\":%d,\"pods\":%d,"
           "\"list_objects\":%ld,\"list_wall_s\":%.2f,\"list_cpu_s\":%.2f,"
           "\"list_objects_per_cpu_s\":%.0f,"
           "\"watch_events\":%d,\"watch_cpu_s\":%.2f,\"watch_events_per_cpu_s\":%.0f,"
           "\"watch_wall_s_incl_server\":%.2f,"
           "\"retained_bytes_per_pod\":%.1f,\"idle_cpu_fraction\":%.4f}\n",
           nsvc, npod, listed, w1 - w0, c1 - c0, listed / (c1 - c0), npod, c3 - c1,
           npod / (c3 - c1), w3 - w1, pod_bytes, idle);
    k8s_source_free(src);
    standin_stop(&s);
    curl_global_cleanup();
    return 0;
}
