/* gen_fixture: see gen_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "gen_fixture.h"
#include "google/protobuf/any.pb-c.h"
#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/model/model.h"

static void fx_feed(model *m, const char *yaml, size_t len)
{
    cJSON **docs = NULL;
    size_t ndocs = 0;
    char err[256];
    int rc = yaml_to_json_docs(yaml, len, &docs, &ndocs, err, sizeof err);
    if (rc != 0)
        fail_msg("yaml: %s", err);
    source_sink sink = model_sink(m);
    for (size_t i = 0; i < ndocs; i++)
        sink.event(sink.ud, SOURCE_EV_UPSERT, docs[i], "fixture.yaml"); /* takes ownership */
    free(docs);
}

static mesh_snapshot *fx_finish(model *m)
{
    model_flush(m);
    mesh_snapshot *s = model_snapshot(m);
    assert_non_null(s);
    model_free(m);
    return s;
}

static model *fx_model_export(const mesh_export_defaults *d)
{
    model_opts o = {.domain = "cluster.local",
                    .debounce_after_ns = 1000000,
                    .debounce_max_ns = 10000000,
                    .nsources = 0,
                    .export_defaults = d};
    model *m = model_new(&o);
    assert_non_null(m);
    return m;
}

static model *fx_model(void)
{
    return fx_model_export(NULL);
}

mesh_snapshot *fx_snapshot_export(const mesh_export_defaults *d, const char *yaml, ...)
{
    model *m = fx_model_export(d);
    va_list ap;
    va_start(ap, yaml);
    for (const char *y = yaml; y; y = va_arg(ap, const char *))
        fx_feed(m, y, strlen(y));
    va_end(ap);
    return fx_finish(m);
}

mesh_snapshot *fx_snapshot(const char *yaml, ...)
{
    model *m = fx_model();
    va_list ap;
    va_start(ap, yaml);
    for (const char *y = yaml; y; y = va_arg(ap, const char *))
        fx_feed(m, y, strlen(y));
    va_end(ap);
    return fx_finish(m);
}

mesh_snapshot *fx_snapshot_files(const char *path, ...)
{
    model *m = fx_model();
    va_list ap;
    va_start(ap, path);
    bool ok = true;
    for (const char *p = path; p; p = va_arg(ap, const char *)) {
        FILE *f = fopen(p, "rb");
        if (!f) {
            ok = false;
            continue;
        }
        strbuf b;
        strbuf_init(&b, 16 << 20);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            assert_int_equal(strbuf_append(&b, buf, n), 0);
        fclose(f);
        fx_feed(m, b.data ? b.data : "", b.len);
        strbuf_free(&b);
    }
    va_end(ap);
    if (!ok) {
        model_free(m);
        return NULL;
    }
    return fx_finish(m);
}

xds_proxy *fx_proxy(xds_flavour f, const char *ns, const char *ip, const char *labels)
{
    xds_proxy *p = xcalloc(1, sizeof *p);
    p->type = f == XDS_FLAVOUR_ENVOY_GATEWAY ? XDS_NODE_ROUTER : XDS_NODE_SIDECAR;
    p->flavour = f;
    p->ns = xstrdup(ns);
    p->ips = xcalloc(1, sizeof *p->ips);
    p->ips[0] = xstrdup(ip);
    p->nips = 1;
    p->id = xasprintf("%s~%s~pod.%s~%s.svc.cluster.local",
                      f == XDS_FLAVOUR_ENVOY_GATEWAY ? "router" : "sidecar", ip, ns, ns);
    p->dns_domain = xasprintf("%s.svc.cluster.local", ns);
    p->cluster_id = xstrdup("Kubernetes");
    if (labels && labels[0]) {
        cJSON *o = cJSON_CreateObject();
        char *dup = xstrdup(labels), *save = NULL;
        for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            assert_non_null(eq);
            *eq = '\0';
            cJSON_AddStringToObject(o, kv, eq + 1);
        }
        assert_int_equal(mesh_labels_from_json(o, &p->labels), 0);
        cJSON_Delete(o);
        free(dup);
    }
    return p;
}

void fx_gen(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *type,
            const char *const *names, size_t nnames, xds_resource_set *out)
{
    assert_int_equal(xds_gen_generate(g, p, s, type, names, nnames, out), 0);
    for (size_t i = 1; i < out->n; i++)
        assert_true(strcmp(out->items[i - 1]->name, out->items[i]->name) < 0);
}

const xds_resource *fx_find(const xds_resource_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

void *fx_unpack_any(const void *anyp, const void *descp)
{
    const Google__Protobuf__Any *any = anyp;
    const ProtobufCMessageDescriptor *d = descp;
    if (!any || !any->type_url)
        return NULL;
    char want[512];
    snprintf(want, sizeof want, "type.googleapis.com/%s", d->name);
    if (strcmp(any->type_url, want) != 0)
        return NULL;
    return protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
}
