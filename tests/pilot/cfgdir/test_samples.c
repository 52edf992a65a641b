/* test_samples: the bundled sample mesh (manifests/samples) parses and hangs together.
 *
 * Every file is read with yaml_to_json_docs; the kinds present are counted; the
 * cross-references a real cluster would guarantee are checked (EndpointSlice targetRefs
 * name Pods with the same IP, Service selectors and DestinationRule subsets select Pods,
 * VirtualService destinations name existing subsets, weights sum to 100), and the whole
 * directory goes through cfgdir once; every object passes mesh_parse (istiod's validation
 * rules) with no field the parser would ignore. Needs PILOT_SRC (set by meson). */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/cfgdir/cfgdir.h"
#include "pilot/config/mesh.h"

#define NOBJ_MAX 256

static cJSON *objs[NOBJ_MAX];
static size_t nobjs;
static char *samples_dir;

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* "?" rather than NULL: these name objects in failure messages */
static const char *kind_of(const cJSON *o)
{
    const char *k = str_at(o, "kind", NULL);
    return k ? k : "?";
}

static const char *name_of(const cJSON *o)
{
    const char *n = str_at(o, "metadata", "name");
    return n ? n : "?";
}
static const char *ns_of(const cJSON *o)
{
    const char *ns = str_at(o, "metadata", "namespace");
    return ns ? ns : "default";
}

static const cJSON *find(const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < nobjs; i++)
        if (strcmp(kind_of(objs[i]), kind) == 0 && strcmp(ns_of(objs[i]), ns) == 0 &&
            strcmp(name_of(objs[i]), name) == 0)
            return objs[i];
    return NULL;
}

static size_t count_kind(const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < nobjs; i++)
        n += strcmp(kind_of(objs[i]), kind) == 0;
    return n;
}

/* Every label in sel is on the object's metadata.labels. */
static bool labels_match(const cJSON *sel, const cJSON *obj)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
    const cJSON *l;
    cJSON_ArrayForEach(l, sel)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, l->string);
        if (!cJSON_IsString(v) || !cJSON_IsString(l) || strcmp(v->valuestring, l->valuestring))
            return false;
    }
    return true;
}

static size_t pods_selected(const char *ns, const cJSON *sel)
{
    size_t n = 0;
    for (size_t i = 0; i < nobjs; i++)
        if (strcmp(kind_of(objs[i]), "Pod") == 0 && strcmp(ns_of(objs[i]), ns) == 0 &&
            labels_match(sel, objs[i]))
            n++;
    return n;
}

/* "catalog", "catalog.demo", "greeter.default.svc.cluster.local" -> the Service. */
static const cJSON *service_for_host(const char *host, const char *ns)
{
    char name[128], hns[128];
    const char *dot = strchr(host, '.');
    if (!dot) {
        snprintf(name, sizeof name, "%s", host);
        snprintf(hns, sizeof hns, "%s", ns);
    } else {
        snprintf(name, sizeof name, "%.*s", (int)(dot - host), host);
        const char *d2 = strchr(dot + 1, '.');
        snprintf(hns, sizeof hns, "%.*s", d2 ? (int)(d2 - dot - 1) : (int)strlen(dot + 1), dot + 1);
    }
    return find("Service", hns, name);
}

static const cJSON *dr_for_host(const char *host, const char *ns)
{
    const cJSON *svc = service_for_host(host, ns);
    for (size_t i = 0; svc && i < nobjs; i++) {
        if (strcmp(kind_of(objs[i]), "DestinationRule") != 0)
            continue;
        const char *h = str_at(objs[i], "spec", "host");
        if (h && service_for_host(h, ns_of(objs[i])) == svc)
            return objs[i];
    }
    return NULL;
}

static int load_all(void **state)
{
    (void)state;
    const char *src = getenv("PILOT_SRC");
    if (!src) {
        fprintf(stderr, "PILOT_SRC not set: run through meson test\n");
        exit(77);
    }
    samples_dir = xasprintf("%s/manifests/samples", src);
    DIR *d = opendir(samples_dir);
    if (!d) {
        fprintf(stderr, "%s: cannot open\n", samples_dir);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !util_has_suffix(e->d_name, ".yaml"))
            continue;
        char *path = xasprintf("%s/%s", samples_dir, e->d_name);
        FILE *f = fopen(path, "r");
        strbuf b;
        char chunk[4096], err[256];
        size_t r;
        strbuf_init(&b, 1 << 20);
        while (f && (r = fread(chunk, 1, sizeof chunk, f)) > 0)
            strbuf_append(&b, chunk, r);
        if (f)
            fclose(f);
        cJSON **docs = NULL;
        size_t n = 0;
        if (yaml_to_json_docs(b.data ? b.data : "", b.len, &docs, &n, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", path, err);
            closedir(d);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (nobjs == NOBJ_MAX || !str_at(docs[i], "kind", NULL) ||
                !str_at(docs[i], "metadata", "name")) {
                fprintf(stderr, "%s: document %zu: no kind/name, or too many\n", path, i + 1);
                return -1;
            }
            objs[nobjs++] = docs[i];
        }
        free(docs);
        strbuf_free(&b);
        free(path);
    }
    closedir(d);
    return 0;
}

static int free_all(void **state)
{
    (void)state;
    for (size_t i = 0; i < nobjs; i++)
        cJSON_Delete(objs[i]);
    free(samples_dir);
    return 0;
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(count_kind("Namespace"), 3);
    assert_int_equal(count_kind("Service"), 6);
    assert_int_equal(count_kind("Pod"), 10);
    assert_int_equal(count_kind("EndpointSlice"), 6);
    assert_int_equal(count_kind("Gateway"), 1);
    assert_int_equal(count_kind("VirtualService"), 5);
    assert_int_equal(count_kind("DestinationRule"), 5);
    assert_int_equal(nobjs, 36);
    /* the gRPC service the xDS client tests call */
    const cJSON *g = find("Service", "default", "greeter");
    assert_non_null(g);
    const cJSON *port = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g, "spec"), "ports"), 0);
    assert_string_equal(str_at(port, "name", NULL), "grpc");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(port, "port")->valueint, 50051);
}

static void test_pods_and_slices(void **state)
{
    (void)state;
    for (size_t i = 0; i < nobjs; i++) {
        const cJSON *o = objs[i];
        if (strcmp(kind_of(o), "Pod") == 0) {
            const char *ip = str_at(o, "status", "podIP");
            assert_non_null(ip);
            if (strncmp(ip, "127.0.0.", 8) != 0)
                fail_msg("pod %s: IP %s is not a loopback address", name_of(o), ip);
        }
        if (strcmp(kind_of(o), "EndpointSlice") == 0) {
            const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels");
            const char *svc = str_at(labels, "kubernetes.io/service-name", NULL);
            assert_non_null(svc);
            assert_non_null(find("Service", ns_of(o), svc));
            const cJSON *ep;
            cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(o, "endpoints"))
            {
                const cJSON *ref = cJSON_GetObjectItemCaseSensitive(ep, "targetRef");
                const cJSON *pod =
                    find("Pod", str_at(ref, "namespace", NULL), str_at(ref, "name", NULL));
                if (!pod)
                    fail_msg("slice %s: targetRef %s names no pod", name_of(o),
                             str_at(ref, "name", NULL));
                const cJSON *addr =
                    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ep, "addresses"), 0);
                assert_string_equal(addr->valuestring, str_at(pod, "status", "podIP"));
            }
        }
        if (strcmp(kind_of(o), "Service") == 0) {
            const cJSON *sel = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(o, "spec"), "selector");
            if (pods_selected(ns_of(o), sel) == 0)
                fail_msg("service %s/%s selects no pod", ns_of(o), name_of(o));
        }
    }
}

static void test_istio_references(void **state)
{
    (void)state;
    for (size_t i = 0; i < nobjs; i++) {
        const cJSON *o = objs[i];
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
        if (strcmp(kind_of(o), "DestinationRule") == 0) {
            const cJSON *svc = service_for_host(str_at(spec, "host", NULL), ns_of(o));
            if (!svc)
                fail_msg("DestinationRule %s: host names no service", name_of(o));
            const cJSON *lb = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(spec, "trafficPolicy"), "loadBalancer");
            assert_string_equal(str_at(lb, "simple", NULL), "ROUND_ROBIN");
            const cJSON *ss;
            cJSON_ArrayForEach(ss, cJSON_GetObjectItemCaseSensitive(spec, "subsets"))
            {
                if (pods_selected(ns_of(svc), cJSON_GetObjectItemCaseSensitive(ss, "labels")) == 0)
                    fail_msg("DestinationRule %s subset %s selects no pod", name_of(o),
                             str_at(ss, "name", NULL));
            }
        }
        if (strcmp(kind_of(o), "VirtualService") == 0) {
            const cJSON *gws = cJSON_GetObjectItemCaseSensitive(spec, "gateways");
            const cJSON *gw;
            cJSON_ArrayForEach(gw, gws) assert_non_null(find("Gateway", ns_of(o), gw->valuestring));
            const cJSON *h;
            cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(spec, "http"))
            {
                const cJSON *route = cJSON_GetObjectItemCaseSensitive(h, "route"), *r;
                int total = 0, n = 0;
                cJSON_ArrayForEach(r, route)
                {
                    const cJSON *dst = cJSON_GetObjectItemCaseSensitive(r, "destination");
                    const char *host = str_at(dst, "host", NULL),
                               *subset = str_at(dst, "subset", NULL);
                    const cJSON *w = cJSON_GetObjectItemCaseSensitive(r, "weight");
                    if (!service_for_host(host, ns_of(o)))
                        fail_msg("VirtualService %s: destination %s is no service", name_of(o),
                                 host);
                    if (subset) {
                        const cJSON *dr = dr_for_host(host, ns_of(o)), *ss;
                        bool found = false;
                        cJSON_ArrayForEach(
                            ss, cJSON_GetObjectItemCaseSensitive(
                                    cJSON_GetObjectItemCaseSensitive(dr, "spec"), "subsets"))
                            found = found || strcmp(str_at(ss, "name", NULL), subset) == 0;
                        if (!found)
                            fail_msg("VirtualService %s: subset %s of %s is undefined", name_of(o),
                                     subset, host);
                    }
                    total += w ? w->valueint : 0;
                    n++;
                }
                assert_true(n >= 1);
                if (n > 1 && total != 100)
                    fail_msg("VirtualService %s: weights sum to %d", name_of(o), total);
            }
        }
    }
    /* what the brief promised the tests: header match, fault, retry, timeout, 80/20 */
    const cJSON *vs = find("VirtualService", "default", "greeter");
    assert_non_null(vs);
    char *s = cJSON_PrintUnformatted(vs);
    assert_non_null(strstr(s, "\"end-user\":{\"exact\":\"jason\"}"));
    assert_non_null(strstr(s, "\"abort\":{\"percentage\":{\"value\":100},\"httpStatus\":503}"));
    assert_non_null(strstr(s, "\"weight\":80"));
    assert_non_null(strstr(s, "\"retries\":{\"attempts\":2"));
    assert_non_null(strstr(s, "\"timeout\":\"5s\""));
    free(s);
}

/* Every sample object is valid for the model: mesh_parse accepts it (rc 0, not even
 * skipped), and it uses no field the parser does not model. */
static void test_mesh_parse_accepts_all(void **state)
{
    (void)state;
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "manifests/samples"};
    for (size_t i = 0; i < nobjs; i++) {
        mesh_object mo;
        char err[512] = "";
        int rc = mesh_parse(objs[i], &opts, &mo, err, sizeof err);
        if (rc != 0)
            fail_msg("%s %s/%s: mesh_parse rc %d: %s", kind_of(objs[i]), ns_of(objs[i]),
                     name_of(objs[i]), rc, err);
        assert_int_equal(mo.kind, mesh_kind_of(objs[i]));
        mesh_object_release(mo);

        char **paths = NULL;
        size_t npaths = 0;
        mesh_unsupported_fields(objs[i], &paths, &npaths);
        for (size_t k = 0; k < npaths; k++) {
            fprintf(stderr, "%s %s/%s: unsupported field %s\n", kind_of(objs[i]), ns_of(objs[i]),
                    name_of(objs[i]), paths[k]);
            free(paths[k]);
        }
        free(paths);
        assert_int_equal(npaths, 0);
    }
}

/* ---- the directory through cfgdir ---- */

typedef struct csink {
    pthread_mutex_t mu;
    size_t upserts, deletes;
    int synced;
} csink;

static void cs_event(void *ud, source_event_type t, cJSON *obj, const char *origin)
{
    csink *cs = ud;
    (void)origin;
    pthread_mutex_lock(&cs->mu);
    if (t == SOURCE_EV_UPSERT)
        cs->upserts++;
    else
        cs->deletes++;
    pthread_mutex_unlock(&cs->mu);
    cJSON_Delete(obj);
}

static void cs_synced(void *ud, const char *name)
{
    csink *cs = ud;
    (void)name;
    pthread_mutex_lock(&cs->mu);
    cs->synced++;
    pthread_mutex_unlock(&cs->mu);
}

static void test_cfgdir_reads_samples(void **state)
{
    (void)state;
    csink cs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cfgdir *c = cfgdir_new(samples_dir, (source_sink){cs_event, cs_synced, &cs});
    assert_non_null(c);
    assert_int_equal(cfgdir_start(c), 0);
    pthread_mutex_lock(&cs.mu);
    assert_int_equal(cs.upserts, nobjs);
    assert_int_equal(cs.deletes, 0);
    assert_int_equal(cs.synced, 1);
    pthread_mutex_unlock(&cs.mu);
    cfgdir_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_pods_and_slices),
        cmocka_unit_test(test_istio_references),
        cmocka_unit_test(test_mesh_parse_accepts_all),
        cmocka_unit_test(test_cfgdir_reads_samples),
    };
    return cmocka_run_group_tests(tests, load_all, free_all);
}
