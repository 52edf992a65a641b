/* wh_inject_tool: reads one Pod (JSON or YAML) on stdin, prints the pod our injector makes
 * (JSON), or {"skipped": why} / {"error": reason}. Values are those Istio's injection golden
 * files were made with (hub gcr.io/istio-testing, tag latest), so inject_golden.py can
 * compare with them. Flags: --hub H --tag T --cluster C (the /inject path parameter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/webhook/webhook_internal.h"

int main(int argc, char **argv)
{
    int rc = 1;
    wh_config cfg = {.domain = "cluster.local",
                     .inject = {.hub = "gcr.io/istio-testing", .tag = "latest"}};
    wh_inject_params pp = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--hub") == 0)
            cfg.inject.hub = argv[i + 1];
        else if (strcmp(argv[i], "--tag") == 0)
            cfg.inject.tag = argv[i + 1];
        else if (strcmp(argv[i], "--cluster") == 0)
            snprintf(pp.cluster, sizeof pp.cluster, "%s", argv[i + 1]);
    }
    strbuf in;
    strbuf_init(&in, 64u << 20);
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
    return rc;
}
