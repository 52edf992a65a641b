/* gen_dump: writes every Envoy-flavoured resource generated from YAML fixtures to a
 * directory, for the protoc --decode oracle (tests/xds/protoc_oracle.sh).
 * Usage: gen_dump OUTDIR FIXTURE.yaml...
 * OUTDIR/index lines: "<flavour> <type_url> <file> <name>"; OUTDIR/all.json: every
 * resource as config_dump JSON (private keys redacted), for the golden file comparison.
 * SDS is asked with a wildcard: every credential of the proxy's namespace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "model.h"
#include "util.h"
#include "yaml.h"

/* Like /debug/config_dump (xds/debug_xds.c): private keys never appear in JSON. */
static void redact(cJSON *j)
{
    cJSON *c;
    cJSON_ArrayForEach(c, j) {
        if (c->string && strcmp(c->string, "private_key") == 0 && cJSON_IsObject(c)) {
            cJSON *v;
            cJSON_ArrayForEach(v, c)
                if (cJSON_IsString(v))
                    cJSON_SetValuestring(v, "[redacted]");
        } else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            redact(c);
        }
    }
}

static int dump(FILE *idx, cJSON *all, const char *dir, const char *flav, xds_gen *g,
                const xds_proxy *p, const mesh_snapshot *s, int *seq)
{
    static const char *const types[] = { XDS_TYPE_LISTENER, XDS_TYPE_ROUTE, XDS_TYPE_CLUSTER,
                                         XDS_TYPE_ENDPOINT, XDS_TYPE_SECRET };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        xds_resource_set set;
        if (xds_gen_generate(g, p, s, types[t], NULL, 0, &set) != 0)
            return -1;
        for (size_t i = 0; i < set.n; i++) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%d.bin", dir, *seq);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(set.items[i]->bytes, 1, set.items[i]->len, f) != set.items[i]->len) {
                if (f)
                    fclose(f);
                xds_resource_set_free(&set);
                return -1;
            }
            fclose(f);
            fprintf(idx, "%s %s %d.bin %s\n", flav, types[t], *seq, set.items[i]->name);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "flavour", flav);
            cJSON_AddStringToObject(e, "name", set.items[i]->name);
            cJSON *j = xds_resource_to_json(set.items[i]);
            if (j)
                redact(j);
            cJSON_AddItemToObject(e, "resource", j ? j : cJSON_CreateNull());
            cJSON_AddItemToArray(all, e);
            (*seq)++;
        }
        xds_resource_set_free(&set);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: gen_dump OUTDIR FIXTURE.yaml...\n");
        return 2;
    }
    model_opts o = { .domain = "cluster.local", .debounce_after_ns = 1000000,
                     .debounce_max_ns = 10000000 };
    model *m = model_new(&o);
    source_sink sink = model_sink(m);
    for (int a = 2; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) {
            fprintf(stderr, "gen_dump: cannot read %s\n", argv[a]);
            return 1;
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
            fprintf(stderr, "gen_dump: %s: %s\n", argv[a], err);
            return 1;
        }
        for (size_t i = 0; i < ndocs; i++)
            sink.event(sink.ud, SOURCE_EV_UPSERT, docs[i], argv[a]);
        free(docs);
        strbuf_free(&b);
    }
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    model_free(m);
    char ip[] = "10.1.0.5";
    xds_proxy *sc = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "default", ip, "app=reviews,version=v1");
    xds_proxy *gw = fx_proxy(XDS_FLAVOUR_ENVOY_GATEWAY, "istio-system", "10.0.0.1",
                             "app=istio-ingressgateway,istio=ingressgateway");
    xds_gen *g = xds_gen_new();
    char path[2048];
    snprintf(path, sizeof path, "%s/index", argv[1]);
    FILE *idx = fopen(path, "w");
    int seq = 0, rc = 1;
    cJSON *all = cJSON_CreateArray();
    if (idx && s && dump(idx, all, argv[1], "sidecar", g, sc, s, &seq) == 0 &&
        dump(idx, all, argv[1], "gateway", g, gw, s, &seq) == 0) {
        snprintf(path, sizeof path, "%s/all.json", argv[1]);
        FILE *jf = fopen(path, "w");
        char *txt = cJSON_Print(all);
        if (jf && txt && fputs(txt, jf) >= 0 && fputc('\n', jf) != EOF)
            rc = 0;
        if (jf)
            fclose(jf);
        free(txt);
    }
    cJSON_Delete(all);
    if (idx)
        fclose(idx);
    xds_gen_free(g);
    xds_proxy_free(sc);
    xds_proxy_free(gw);
    if (s)
        mesh_snapshot_release(s);
    return rc;
}
