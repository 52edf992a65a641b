/* gen_dump: writes the resources the generators make from YAML fixtures to a directory,
 * for the protoc --decode oracle (tests/xds/gen/protoc_oracle.sh) and the golden files
 * (tests/xds/gen/golden_check.sh).
 * Usage: gen_dump [--flavours LIST] [--grpc-ns NS] [--grpc-lds NAME]... OUTDIR FIXTURE.yaml...
 *   --flavours   comma-separated, in output order, from: sidecar, gateway, grpc-client,
 *                grpc-server (default "sidecar,gateway", the Envoy flavours)
 *   --grpc-ns    the gRPC client node's namespace (default "default")
 *   --grpc-lds   a listener the gRPC client asks for, as the target authority of
 *                xds:///host:port (repeatable; default: host:port of every service port)
 *   --access-log PATH, --access-log-encoding TEXT|JSON, --access-log-format F
 *                mesh config accessLogFile, accessLogEncoding, accessLogFormat
 *   --outbound-mode REGISTRY_ONLY|ALLOW_ANY  mesh config outboundTrafficPolicy.mode
 *   --sidecar-ingress-tls true|false  istiod's ENABLE_TLS_ON_SIDECAR_INGRESS
 *   --mesh-config FILE  a mesh config read as --meshConfig is (pilot/flags.c); its
 *                telemetry (tracing included) and authorization settings replace the
 *                --access-log* ones
 * OUTDIR/index lines: "<flavour> <type_url> <file> <name>"; OUTDIR/all.json: every
 * resource as config_dump JSON (private keys redacted), for the golden file comparison.
 * Envoy nodes ask for every type with a wildcard (SDS: every credential of the proxy's
 * namespace). gRPC nodes name everything, as gRPC's xDS client does: the client asks LDS for
 * its --grpc-lds names, then RDS for the route configurations those listeners name, CDS for
 * the clusters the routes name, EDS for the clusters' service_name; each gRPC server (one node
 * per endpoint IP of the snapshot, in that endpoint's namespace) asks LDS for
 * xds.istio.io/grpc/lds/inbound/<ip>:<port> of every port it serves, then follows what those
 * listeners name the same way. Names are asked for sorted and unique, so the output is
 * deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "pilot/flags.h"
#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/model/model.h"

/* A sorted, unique list of names (what a gRPC node asks for next). */
typedef struct {
    char **v;
    size_t n, cap;
} name_set;

static void names_add(name_set *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], name) == 0)
            return;
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? ns->cap * 2 : 16;
        ns->v = xrealloc(ns->v, ns->cap * sizeof *ns->v);
    }
    ns->v[ns->n++] = xstrdup(name);
}

static int names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort(name_set *ns)
{
    if (ns->n > 1)
        qsort(ns->v, ns->n, sizeof *ns->v, names_cmp);
}

static void names_free(name_set *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof *ns);
}

/* What the gRPC client asks for next, collected from the resources of one step. */
typedef struct {
    name_set routes;   /* HttpConnectionManager rds.route_config_name */
    name_set clusters; /* RouteAction cluster / weighted_clusters names */
    name_set eds;      /* EDS clusters' eds_cluster_config.service_name (else the name) */
} grpc_refs;

static void refs_walk(cJSON *j, grpc_refs *r)
{
    if (cJSON_IsObject(j)) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
        cJSON *rds = cJSON_GetObjectItemCaseSensitive(j, "rds");
        const char *rc =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rds, "route_config_name"));
        if (rc)
            names_add(&r->routes, rc);
        cJSON *route = cJSON_GetObjectItemCaseSensitive(j, "route");
        const char *cl = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(route, "cluster"));
        if (cl)
            names_add(&r->clusters, cl);
        cJSON *wc = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "weighted_clusters"), "clusters");
        cJSON *w;
        cJSON_ArrayForEach(w, wc)
        {
            const char *wn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w, "name"));
            if (wn)
                names_add(&r->clusters, wn);
        }
        cJSON *eds = cJSON_GetObjectItemCaseSensitive(j, "eds_cluster_config");
        if (eds) {
            const char *sn =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(eds, "service_name"));
            if (sn || name)
                names_add(&r->eds, sn ? sn : name);
        }
    }
    cJSON *c;
    cJSON_ArrayForEach(c, j) if (cJSON_IsObject(c) || cJSON_IsArray(c)) refs_walk(c, r);
}

/* Like /debug/config_dump (xds/ads/debug_ads.c): private keys never appear in JSON. */
static void redact(cJSON *j)
{
    cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        if (c->string && strcmp(c->string, "private_key") == 0 && cJSON_IsObject(c)) {
            cJSON *v;
            cJSON_ArrayForEach(v, c) if (cJSON_IsString(v)) cJSON_SetValuestring(v, "[redacted]");
        } else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            redact(c);
        }
    }
}

typedef struct {
    FILE *idx;
    cJSON *all;
    const char *dir;
    int seq;
} dump_out;

/* Writes one generated set: a .bin file and an index line per resource, and appends the
 * JSON to all.json's array. refs (may be NULL) collects what the resources name. */
static int emit(dump_out *o, const char *flav, const char *type, const xds_resource_set *set,
                grpc_refs *refs)
{
    for (size_t i = 0; i < set->n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%d.bin", o->dir, o->seq);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(set->items[i]->bytes, 1, set->items[i]->len, f) != set->items[i]->len) {
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        fprintf(o->idx, "%s %s %d.bin %s\n", flav, type, o->seq, set->items[i]->name);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "flavour", flav);
        cJSON_AddStringToObject(e, "name", set->items[i]->name);
        cJSON *j = xds_resource_to_json(set->items[i]);
        if (j) {
            redact(j);
            if (refs)
                refs_walk(j, refs);
        }
        cJSON_AddItemToObject(e, "resource", j ? j : cJSON_CreateNull());
        cJSON_AddItemToArray(o->all, e);
        o->seq++;
    }
    return 0;
}

static int dump_envoy(dump_out *o, const char *flav, xds_gen *g, const xds_proxy *p,
                      const mesh_snapshot *s)
{
    static const char *const types[] = {XDS_TYPE_LISTENER, XDS_TYPE_ROUTE, XDS_TYPE_CLUSTER,
                                        XDS_TYPE_ENDPOINT, XDS_TYPE_SECRET};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        xds_resource_set set;
        if (xds_gen_generate(g, p, s, types[t], NULL, 0, &set) != 0)
            return -1;
        int rc = emit(o, flav, types[t], &set, NULL);
        xds_resource_set_free(&set);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* LDS for lds, then each type for the names the previous ones referenced. */
static int dump_grpc(dump_out *o, const char *flav, xds_gen *g, const xds_proxy *p,
                     const mesh_snapshot *s, name_set *lds)
{
    static const char *const types[] = {XDS_TYPE_LISTENER, XDS_TYPE_ROUTE, XDS_TYPE_CLUSTER,
                                        XDS_TYPE_ENDPOINT};
    grpc_refs refs = {0};
    name_set *want[] = {lds, &refs.routes, &refs.clusters, &refs.eds};
    int rc = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0] && rc == 0; t++) {
        names_sort(want[t]);
        if (want[t]->n == 0) /* gRPC asks nothing of a type nobody referenced */
            continue;
        xds_resource_set set;
        if (xds_gen_generate(g, p, s, types[t], (const char *const *)want[t]->v, want[t]->n,
                             &set) != 0) {
            rc = -1;
            break;
        }
        rc = emit(o, flav, types[t], &set, &refs);
        xds_resource_set_free(&set);
    }
    names_free(&refs.routes);
    names_free(&refs.clusters);
    names_free(&refs.eds);
    return rc;
}

static bool is_ip(const char *a, bool *v6)
{
    unsigned char buf[16];
    *v6 = inet_pton(AF_INET6, a, buf) == 1;
    return *v6 || inet_pton(AF_INET, a, buf) == 1;
}

/* One gRPC server node per endpoint IP (sorted), asking for the inbound listener of every
 * target port that IP serves. DNS ServiceEntry endpoints that are hostnames are no servers. */
static int dump_grpc_servers(dump_out *o, xds_gen *g, const mesh_snapshot *s)
{
    name_set ips = {0};
    for (size_t i = 0; i < s->nshards; i++)
        for (size_t e = 0; e < s->shards[i]->neps; e++) {
            bool v6;
            if (is_ip(s->shards[i]->eps[e].address, &v6))
                names_add(&ips, s->shards[i]->eps[e].address);
        }
    names_sort(&ips);
    int rc = 0;
    for (size_t k = 0; k < ips.n && rc == 0; k++) {
        name_set lds = {0};
        const char *ns = NULL;
        for (size_t i = 0; i < s->nshards; i++)
            for (size_t e = 0; e < s->shards[i]->neps; e++) {
                const mesh_endpoint *ep = &s->shards[i]->eps[e];
                if (strcmp(ep->address, ips.v[k]) != 0)
                    continue;
                bool v6;
                is_ip(ep->address, &v6);
                char *n = xasprintf(v6 ? "xds.istio.io/grpc/lds/inbound/[%s]:%u"
                                       : "xds.istio.io/grpc/lds/inbound/%s:%u",
                                    ep->address, ep->port);
                names_add(&lds, n);
                free(n);
                if (!ns)
                    ns = s->shards[i]->ns;
            }
        xds_proxy *p = fx_proxy(XDS_FLAVOUR_GRPC, ns ? ns : "default", ips.v[k], NULL);
        rc = dump_grpc(o, "grpc-server", g, p, s, &lds);
        xds_proxy_free(p);
        names_free(&lds);
    }
    names_free(&ips);
    return rc;
}

static mesh_snapshot *load(char **files, int nfiles)
{
    model_opts o = {
        .domain = "cluster.local", .debounce_after_ns = 1000000, .debounce_max_ns = 10000000};
    model *m = model_new(&o);
    source_sink sink = model_sink(m);
    for (int a = 0; a < nfiles; a++) {
        FILE *f = fopen(files[a], "rb");
        if (!f) {
            fprintf(stderr, "gen_dump: cannot read %s\n", files[a]);
            model_free(m);
            return NULL;
        }
        strbuf b;
        strbuf_init(&b, 16 << 20);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            strbuf_append(&b, buf, n);
        fclose(f);
        cJSON **docs = NULL;
        size_t ndocs = 0;
        char err[256];
        if (yaml_to_json_docs(b.data ? b.data : "", b.len, &docs, &ndocs, err, sizeof err) != 0) {
            fprintf(stderr, "gen_dump: %s: %s\n", files[a], err);
            strbuf_free(&b);
            model_free(m);
            return NULL;
        }
        for (size_t i = 0; i < ndocs; i++)
            sink.event(sink.ud, SOURCE_EV_UPSERT, docs[i], files[a]);
        free(docs);
        strbuf_free(&b);
    }
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    model_free(m);
    return s;
}

static int usage(void)
{
    fprintf(stderr, "usage: gen_dump [--flavours sidecar,gateway,grpc-client,grpc-server] "
                    "[--grpc-ns NS] [--grpc-lds HOST:PORT]... [--access-log PATH] "
                    "[--access-log-encoding TEXT|JSON] [--access-log-format F] "
                    "[--outbound-mode REGISTRY_ONLY|ALLOW_ANY] [--sidecar-ingress-tls true] "
                    "[--mesh-config FILE] "
                    "OUTDIR FIXTURE.yaml...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *flavours = "sidecar,gateway", *grpc_ns = "default";
    name_set client_lds = {0};
    xds_mesh_telemetry tel = {0}; /* borrowed from argv; copied by the generator */
    xds_outbound_mode outbound = XDS_OUTBOUND_ALLOW_ANY;
    bool ingress_tls = false;
    const char *mesh_config = NULL;
    int a = 1;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (a + 1 >= argc)
            return usage();
        if (strcmp(argv[a], "--flavours") == 0)
            flavours = argv[a + 1];
        else if (strcmp(argv[a], "--grpc-ns") == 0)
            grpc_ns = argv[a + 1];
        else if (strcmp(argv[a], "--grpc-lds") == 0)
            names_add(&client_lds, argv[a + 1]);
        else if (strcmp(argv[a], "--access-log") == 0)
            tel.access_log_file = argv[a + 1];
        else if (strcmp(argv[a], "--access-log-encoding") == 0)
            tel.access_log_encoding =
                strcmp(argv[a + 1], "JSON") == 0 ? XDS_ACCESS_LOG_JSON : XDS_ACCESS_LOG_TEXT;
        else if (strcmp(argv[a], "--access-log-format") == 0)
            tel.access_log_format = argv[a + 1];
        else if (strcmp(argv[a], "--outbound-mode") == 0)
            outbound = strcmp(argv[a + 1], "REGISTRY_ONLY") == 0 ? XDS_OUTBOUND_REGISTRY_ONLY
                                                                 : XDS_OUTBOUND_ALLOW_ANY;
        else if (strcmp(argv[a], "--sidecar-ingress-tls") == 0)
            ingress_tls = strcmp(argv[a + 1], "true") == 0;
        else if (strcmp(argv[a], "--mesh-config") == 0)
            mesh_config = argv[a + 1];
        else
            return usage();
    }
    if (argc - a < 2)
        return usage();
    const char *dir = argv[a];
    mesh_snapshot *s = load(argv + a + 1, argc - a - 1);
    if (!s)
        return 1;
    if (client_lds.n == 0)
        for (size_t i = 0; i < s->nservices; i++)
            for (size_t k = 0; k < s->services[i]->nports; k++) {
                char *n =
                    xasprintf("%s:%u", s->services[i]->hostname, s->services[i]->ports[k].port);
                names_add(&client_lds, n);
                free(n);
            }
    pilot_flags fl = {0};
    if (mesh_config) {
        char ferr[512];
        char *fargv[] = {"pilot-discovery", "discovery", "--meshConfig", (char *)mesh_config};
        if (flags_parse(4, fargv, &fl, ferr, sizeof ferr) != 0) {
            fprintf(stderr, "gen_dump: %s\n", ferr);
            flags_free(&fl);
            mesh_snapshot_release(s);
            return 1;
        }
    }
    xds_gen *g = xds_gen_new();
    xds_gen_set_mesh_telemetry(g, mesh_config ? &fl.mesh.mesh_telemetry : &tel);
    if (mesh_config)
        xds_gen_set_mesh_authz(g, &fl.mesh.mesh_authz);
    xds_gen_set_outbound_mode(g, outbound);
    xds_gen_set_sidecar_ingress_tls(g, ingress_tls);
    char path[2048];
    snprintf(path, sizeof path, "%s/index", dir);
    dump_out o = {.idx = fopen(path, "w"), .all = cJSON_CreateArray(), .dir = dir};
    int rc = o.idx ? 0 : 1;
    char *list = xstrdup(flavours), *save = NULL;
    for (char *f = strtok_r(list, ",", &save); f && rc == 0; f = strtok_r(NULL, ",", &save)) {
        xds_proxy *p = NULL;
        if (strcmp(f, "sidecar") == 0) {
            p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", "10.1.0.5",
                         "app=reviews,version=v1");
            rc = dump_envoy(&o, f, g, p, s) == 0 ? 0 : 1;
        } else if (strcmp(f, "gateway") == 0) {
            p = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.1",
                         "app=istio-ingressgateway,istio=ingressgateway");
            rc = dump_envoy(&o, f, g, p, s) == 0 ? 0 : 1;
        } else if (strcmp(f, "grpc-client") == 0) {
            p = fx_proxy(XDS_FLAVOUR_GRPC, grpc_ns, "10.250.0.1", "app=grpc-client");
            rc = dump_grpc(&o, f, g, p, s, &client_lds) == 0 ? 0 : 1;
        } else if (strcmp(f, "grpc-server") == 0) {
            rc = dump_grpc_servers(&o, g, s) == 0 ? 0 : 1;
        } else {
            fprintf(stderr, "gen_dump: unknown flavour \"%s\"\n", f);
            rc = 2;
        }
        xds_proxy_free(p);
    }
    free(list);
    if (rc == 0) {
        rc = 1;
        snprintf(path, sizeof path, "%s/all.json", dir);
        FILE *jf = fopen(path, "w");
        char *txt = cJSON_Print(o.all);
        if (jf && txt && fputs(txt, jf) >= 0 && fputc('\n', jf) != EOF)
            rc = 0;
        if (jf)
            fclose(jf);
        free(txt);
    }
    cJSON_Delete(o.all);
    if (o.idx)
        fclose(o.idx);
    xds_gen_free(g);
    if (mesh_config)
        flags_free(&fl);
    names_free(&client_lds);
    mesh_snapshot_release(s);
    return rc;
}
