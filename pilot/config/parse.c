/* mesh_parse: entry point of the parser: kind dispatch and metadata. The kind bodies live
 * in parse_k8s.c and parse_virtualservice.c and the other parse_<kind>.c. Pure function of its
 * input: no globals, no locks; the returned object shares nothing with the cJSON tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

static size_t kind_size(mesh_kind k)
{
    switch (k) {
    case MESH_KIND_NAMESPACE:
        return sizeof(mesh_namespace);
    case MESH_KIND_SERVICE:
        return sizeof(mesh_k8s_service);
    case MESH_KIND_POD:
        return sizeof(mesh_pod);
    case MESH_KIND_ENDPOINTS:
    case MESH_KIND_ENDPOINT_SLICE:
        return sizeof(mesh_endpoint_slice);
    case MESH_KIND_GATEWAY:
        return sizeof(mesh_gateway);
    case MESH_KIND_VIRTUAL_SERVICE:
        return sizeof(mesh_virtual_service);
    case MESH_KIND_DESTINATION_RULE:
        return sizeof(mesh_destination_rule);
    case MESH_KIND_SERVICE_ENTRY:
        return sizeof(mesh_service_entry);
    case MESH_KIND_SECRET:
        return sizeof(mesh_secret);
    case MESH_KIND_PEER_AUTHENTICATION:
        return sizeof(mesh_peer_authentication);
    case MESH_KIND_REQUEST_AUTHENTICATION:
        return sizeof(mesh_request_authentication);
    case MESH_KIND_AUTHORIZATION_POLICY:
        return sizeof(mesh_authorization_policy);
    case MESH_KIND_SIDECAR:
        return sizeof(mesh_sidecar);
    case MESH_KIND_INGRESS:
        return sizeof(mesh_ingress);
    case MESH_KIND_INGRESS_CLASS:
        return sizeof(mesh_ingress_class);
    case MESH_KIND_TELEMETRY:
        return sizeof(mesh_telemetry);
    default:
        return 0;
    }
}

/* Names from outside input are printed in errors before they are validated: bound them. */
static void copy_bounded(char *dst, size_t dstlen, const char *s)
{
    snprintf(dst, dstlen, "%s", s ? s : "");
}

static int parse_meta(mp_ctx *c, const cJSON *obj, mesh_kind kind, const mesh_parse_opts *opts,
                      mesh_meta *m)
{
    const cJSON *md;
    int64_t gen = 0;

    if (mp_get_obj(c, obj, "metadata", "", &md) != 0)
        return -1;
    if (!md)
        return mp_fail(c, "metadata", "required");
    if (mp_get_str(c, md, "name", "metadata", &m->name) != 0)
        return -1;
    if (!m->name || !*m->name)
        return mp_fail(c, "metadata.name", "required");
    if (strlen(m->name) > 253)
        return mp_fail(c, "metadata.name", "longer than 253 characters");
    if (kind == MESH_KIND_NAMESPACE) {
        m->ns = xstrdup("");
        if (!mp_is_dns1123_label(m->name))
            return mp_fail(c, "metadata.name", "%s is not a valid DNS-1123 label", c->name);
    } else if (kind == MESH_KIND_INGRESS_CLASS) { /* cluster-scoped too */
        m->ns = xstrdup("");
        if (!mp_is_dns1123_subdomain(m->name))
            return mp_fail(c, "metadata.name", "%s is not a valid DNS-1123 subdomain", c->name);
    } else {
        if (mp_get_str(c, md, "namespace", "metadata", &m->ns) != 0)
            return -1;
        if (!m->ns || !*m->ns) {
            free(m->ns);
            m->ns = xstrdup("default");
        }
        if (!mp_is_dns1123_label(m->ns))
            return mp_fail(c, "metadata.namespace", "%s is not a valid DNS-1123 label", c->ns);
    }
    if (mp_get_str(c, md, "resourceVersion", "metadata", &m->resource_version) != 0 ||
        mp_get_str(c, md, "creationTimestamp", "metadata", &m->creation_timestamp) != 0 ||
        mp_get_str(c, md, "uid", "metadata", &m->uid) != 0 ||
        mp_get_int(c, md, "generation", "metadata", 0, INT64_MAX, &gen, NULL) != 0 ||
        mp_get_labels(c, md, "labels", "metadata", &m->labels) != 0)
        return -1;
    m->generation = gen;
    /* Pods are the most numerous objects and their annotations (often large JSON blobs)
     * are never read: keep them out of memory. A Secret's annotations may repeat its data
     * (kubectl's last-applied-configuration): never keep them. */
    if (kind != MESH_KIND_POD && kind != MESH_KIND_SECRET &&
        mp_get_labels(c, md, "annotations", "metadata", &m->annotations) != 0)
        return -1;
    m->source = xstrdup(opts && opts->source ? opts->source : "");
    atomic_init(&m->refs, 1);
    return 0;
}

static int parse_body(mp_ctx *c, const cJSON *obj, mesh_kind k, mesh_meta *m)
{
    switch (k) {
    case MESH_KIND_NAMESPACE:
        return mp_parse_namespace(c, obj, (mesh_namespace *)m);
    case MESH_KIND_SERVICE:
        return mp_parse_service(c, obj, (mesh_k8s_service *)m);
    case MESH_KIND_POD:
        return mp_parse_pod(c, obj, (mesh_pod *)m);
    case MESH_KIND_ENDPOINTS:
        return mp_parse_endpoints(c, obj, (mesh_endpoint_slice *)m);
    case MESH_KIND_ENDPOINT_SLICE:
        return mp_parse_endpoint_slice(c, obj, (mesh_endpoint_slice *)m);
    case MESH_KIND_GATEWAY:
        return mp_parse_gateway(c, obj, (mesh_gateway *)m);
    case MESH_KIND_VIRTUAL_SERVICE:
        return mp_parse_virtual_service(c, obj, (mesh_virtual_service *)m);
    case MESH_KIND_DESTINATION_RULE:
        return mp_parse_destination_rule(c, obj, (mesh_destination_rule *)m);
    case MESH_KIND_SERVICE_ENTRY:
        return mp_parse_service_entry(c, obj, (mesh_service_entry *)m);
    case MESH_KIND_SECRET:
        return mp_parse_secret(c, obj, (mesh_secret *)m);
    case MESH_KIND_PEER_AUTHENTICATION:
        return mp_parse_peer_authentication(c, obj, (mesh_peer_authentication *)m);
    case MESH_KIND_REQUEST_AUTHENTICATION:
        return mp_parse_request_authentication(c, obj, (mesh_request_authentication *)m);
    case MESH_KIND_AUTHORIZATION_POLICY:
        return mp_parse_authorization_policy(c, obj, (mesh_authorization_policy *)m);
    case MESH_KIND_SIDECAR:
        return mp_parse_sidecar(c, obj, (mesh_sidecar *)m);
    case MESH_KIND_INGRESS:
        return mp_parse_ingress(c, obj, (mesh_ingress *)m);
    case MESH_KIND_INGRESS_CLASS:
        return mp_parse_ingress_class(c, obj, (mesh_ingress_class *)m);
    case MESH_KIND_TELEMETRY:
        return mp_parse_telemetry(c, obj, (mesh_telemetry *)m);
    default:
        return -1;
    }
}

int mesh_parse(const cJSON *obj, const mesh_parse_opts *opts, mesh_object *out, char *err,
               size_t errlen)
{
    int rc = -1;
    mesh_meta *m = NULL;
    char name[128], ns[64];
    mp_ctx c = {0};
    size_t nwarn0 = 0;

    if (err && errlen)
        err[0] = '\0';
    mesh_kind k = mesh_kind_of(obj);
    if (k == MESH_KIND_UNKNOWN) {
        rc = -2;
        goto out;
    }

    /* The error prefix needs the name before the metadata is validated. */
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(md, "name");
    const cJSON *jns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    copy_bounded(name, sizeof name, cJSON_IsString(jn) ? jn->valuestring : "");
    copy_bounded(ns, sizeof ns,
                 k == MESH_KIND_NAMESPACE                   ? ""
                 : cJSON_IsString(jns) && *jns->valuestring ? jns->valuestring
                                                            : "default");
    c.kind = mesh_kind_name(k);
    c.ns = ns;
    c.name = name;
    c.domain = opts && opts->domain && *opts->domain ? opts->domain : "cluster.local";
    c.err = err;
    c.errlen = errlen;
    c.warnings = opts ? opts->warnings : NULL;
    nwarn0 = c.warnings ? c.warnings->n : 0;

    m = xcalloc(1, kind_size(k));
    if (parse_meta(&c, obj, k, opts, m) != 0)
        goto out;
    int brc = parse_body(&c, obj, k, m);
    if (brc == -2 && !c.failed) {
        rc = -2; /* a kind of object we skip quietly (e.g. service-account tokens) */
        goto out;
    }
    if (brc != 0) {
        if (!c.failed)
            mp_fail(&c, "spec", "invalid");
        goto out;
    }
    out->kind = k;
    out->u.meta = m;
    m = NULL;
    rc = 0;
out:
    if (m)
        mp_object_free(k, m);
    /* an invalid or skipped object has no warnings: drop the ones this call added */
    while (rc != 0 && c.warnings && c.warnings->n > nwarn0)
        free(c.warnings->msg[--c.warnings->n]);
    return rc;
}
