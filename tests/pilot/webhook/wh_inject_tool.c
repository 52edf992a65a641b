/* wh_inject_tool: reads one Pod (JSON or YAML) on stdin, prints the pod our injector makes
 * (JSON), or {"skipped": why} / {"error": reason}. Values are those Istio's injection golden
 * files were made with (hub gcr.io/istio-testing, tag latest), so inject_golden.py can
 * compare with them. Flags: --hub H --tag T --cluster C (the /inject path parameter),
 * --values FILE (an istio-sidecar-injector `values`, applied as that ConfigMap would be;
 * --config FILE its `config`, default "policy: enabled"), --native true|false
 * (ENABLE_NATIVE_SIDECARS), --proxy-config JSON (mesh config defaultConfig), --revision R. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/webhook/webhook_internal.h"

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    strbuf b;
    char buf[65536];
    size_t n;
    strbuf_init(&b, 16u << 20);
    while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
        if (strbuf_append(&b, buf, n) != 0)
            break;
    if (f)
        fclose(f);
    strbuf_appends(&b, "");
    return strbuf_steal(&b, NULL);
}

int main(int argc, char **argv)
{
    int rc = 1;
    wh_config cfg = {.domain = "cluster.local",
                     .inject = {.hub = "gcr.io/istio-testing", .tag = "latest"}};
    wh_inject_params pp = {0};
    const char *values_file = NULL, *config_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--values") == 0)
            values_file = argv[i + 1];
        else if (strcmp(argv[i], "--config") == 0)
            config_file = argv[i + 1];
        else if (strcmp(argv[i], "--native") == 0)
            cfg.inject.native_sidecars = strcmp(argv[i + 1], "true") == 0;
        else if (strcmp(argv[i], "--proxy-config") == 0)
            cfg.inject.proxy_config = argv[i + 1];
        else if (strcmp(argv[i], "--revision") == 0)
            cfg.inject.revision = argv[i + 1];
        else if (strcmp(argv[i], "--hub") == 0)
            cfg.inject.hub = argv[i + 1];
        else if (strcmp(argv[i], "--tag") == 0)
            cfg.inject.tag = argv[i + 1];
        else if (strcmp(argv[i], "--cluster") == 0)
            snprintf(pp.cluster, sizeof pp.cluster, "%s", argv[i + 1]);
    }
    strbuf in;
    strbuf_init(&in, 64u << 20);
    if (values_file) {
        char err[600], *values = read_all(values_file);
        char *config = config_file ? read_all(config_file) : strdup("policy: enabled\n");
        cJSON *cm = cJSON_CreateObject();
        cJSON *data = cJSON_AddObjectToObject(cm, "data");
        cJSON_AddStringToObject(data, "values", values ? values : "");
        cJSON_AddStringToObject(data, "config", config ? config : "");
        cfg.injector = wh_injector_new("istio-system", cfg.inject.revision, NULL);
        int arc = wh_injector_apply(cfg.injector, cm, err, sizeof err);
        cJSON_Delete(cm);
        free(values);
        free(config);
        if (arc != 0) {
            fprintf(stderr, "%s\n", err);
            goto out;
        }
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (strbuf_append(&in, buf, n) != 0)
            goto out;
    cJSON **docs = NULL;
    size_t nd = 0;
    char err[512];
    if (yaml_to_json_docs(in.data ? in.data : "", in.len, &docs, &nd, err, sizeof err) != 0 ||
        nd != 1) {
        fprintf(stderr, "input: %s\n", nd != 1 ? "want one document" : err);
        goto out;
    }
    const char *why = NULL;
    cJSON *pod = wh_inject_pod(&cfg, &pp, docs[0], "default", &why, err, sizeof err);
    cJSON *res = pod;
    if (!pod) {
        res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, err[0] ? "error" : "skipped", err[0] ? err : why);
    }
    char *s = cJSON_Print(res);
    puts(s);
    free(s);
    cJSON_Delete(res);
    cJSON_Delete(docs[0]);
    free(docs);
    rc = 0;
out:
    strbuf_free(&in);
    wh_injector_free(cfg.injector);
    return rc;
}
