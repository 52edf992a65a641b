/* validate: /validate, istiod's config validation webhook (pkg/webhooks/validation/server),
 * answered by mesh_parse, the function ingestion runs on every object, so what the webhook
 * admits the model accepts and what it refuses the model would have refused with the same
 * message. Like istiod: only CREATE and UPDATE are checked (DELETE and CONNECT are
 * allowed), top-level fields other than apiVersion, kind, metadata, spec and status are
 * refused, and the answer to an invalid object is "configuration is invalid: <reason>".
 * The kinds judged are mesh_kind_of's: networking.istio.io's Gateway, VirtualService,
 * DestinationRule, ServiceEntry, Sidecar, security.istio.io's PeerAuthentication,
 * RequestAuthentication, AuthorizationPolicy and telemetry.istio.io's Telemetry, in every
 * version ingestion reads. Unlike istiod, an Istio kind we do not model (EnvoyFilter,
 * WasmPlugin...) is allowed rather than
 * refused as unrecognized: we cannot judge it, and refusing would block config istiod
 * accepts. Kubernetes kinds (which the API server validates) are allowed as well. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/log.h"
#include "pilot/config/mesh.h"
#include "pilot/webhook/webhook_internal.h"

static bool is_istio_group(const char *api_version)
{
    static const char *const groups[] = {"networking.istio.io/", "security.istio.io/",
                                         "telemetry.istio.io/", "extensions.istio.io/"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (util_has_prefix(api_version, groups[i]))
            return true;
    return false;
}

void wh_validate(const wh_config *cfg, const wh_review *rv, wh_verdict *out)
{
    cJSON *obj = NULL;
    mesh_warnings warn = {0};
    const char *dry = rv->dry_run ? " (dry run)" : "";

    out->allowed = true;
    if (strcmp(rv->operation, "CREATE") != 0 && strcmp(rv->operation, "UPDATE") != 0)
        goto out;
    if (!cJSON_IsObject(rv->object)) {
        wh_deny(out, "cannot decode configuration: request.object must be an object%s", dry);
        goto out;
    }
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(rv->object, "apiVersion");
    const cJSON *kd = cJSON_GetObjectItemCaseSensitive(rv->object, "kind");
    if (!cJSON_IsString(av) || !cJSON_IsString(kd) || !is_istio_group(av->valuestring))
        goto out;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(rv->object, "metadata");
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(md, "name");
    const cJSON *jns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    const char *name = cJSON_IsString(jn) ? jn->valuestring : rv->name;
    const char *ns = cJSON_IsString(jns) && *jns->valuestring ? jns->valuestring : rv->ns;
    const cJSON *it;
    cJSON_ArrayForEach(it, rv->object)
    {
        static const char *const valid[] = {"apiVersion", "kind", "metadata", "spec", "status"};
        bool ok = false;
        for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
            ok = ok || (it->string && strcmp(it->string, valid[i]) == 0);
        if (!ok) {
            wh_deny(out, "unknown field \"%.64s\" on %.64s resource %.64s/%.253s%s",
                    it->string ? it->string : "", kd->valuestring, ns, name, dry);
            goto out;
        }
    }
    if (mesh_kind_of(rv->object) == MESH_KIND_UNKNOWN)
        goto out; /* an Istio kind we do not model */

    /* The object of a CREATE may leave its namespace to the request: fill it in, so the
     * host completion and the message use the namespace the object will live in. */
    obj = cJSON_Duplicate(rv->object, 1);
    if (!obj) {
        wh_deny(out, "cannot decode configuration: out of memory%s", dry);
        goto out;
    }
    if (*rv->ns && !(cJSON_IsString(jns) && *jns->valuestring)) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        if (cJSON_IsObject(m)) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "namespace");
            cJSON_AddStringToObject(m, "namespace", rv->ns);
        }
    }
    char err[1024];
    mesh_object mo = {0};
    mesh_parse_opts po = {.domain = cfg->domain, .source = "webhook", .warnings = &warn};
    int rc = mesh_parse(obj, &po, &mo, err, sizeof err);
    if (rc == -1) {
        LOG_INFO(WH_LOG, "configuration is invalid: %s%s", err, dry);
        wh_deny(out, "configuration is invalid: %s%s", err, dry);
        goto out;
    }
    if (rc == 0)
        mesh_object_release(mo);
    for (size_t i = 0;
         i < warn.n && out->nwarnings < sizeof out->warnings / sizeof out->warnings[0]; i++) {
        out->warnings[out->nwarnings++] = warn.msg[i];
        warn.msg[i] = NULL;
    }
out:
    mesh_warnings_free(&warn);
    cJSON_Delete(obj);
}
