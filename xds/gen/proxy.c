/* proxy: parses an Envoy Node (from a stream's first request) into an xds_proxy, the way
 * istiod's ParseServiceNodeWithMetadata does: a four-part node ID
 * "type~ip~pod.namespace~namespace.svc.domain", IPs from INSTANCE_IPS (else part 2),
 * config namespace from NAMESPACE (else from the DNS domain), labels from LABELS.
 *
 * Pure function of its input; runs on whichever xds thread owns the stream.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "xds/gen/gen.h"

/* Limits on outside input: a node ID and a metadata value are short in practice. */
#define PROXY_MAX_ID 1024
#define PROXY_MAX_DEPTH 16
#define PROXY_MAX_IPS 16

static cJSON *proxy_value_json(const Google__Protobuf__Value *v, int depth);

static cJSON *proxy_struct_json(const Google__Protobuf__Struct *st, int depth)
{
    cJSON *o = cJSON_CreateObject();
    if (st == NULL || depth > PROXY_MAX_DEPTH)
        return o;
    for (size_t i = 0; i < st->n_fields; i++) {
        const Google__Protobuf__Struct__FieldsEntry *f = st->fields[i];
        if (f == NULL || f->key == NULL)
            continue;
        cJSON_AddItemToObject(o, f->key, proxy_value_json(f->value, depth + 1));
    }
    return o;
}

static cJSON *proxy_value_json(const Google__Protobuf__Value *v, int depth)
{
    if (v == NULL || depth > PROXY_MAX_DEPTH)
        return cJSON_CreateNull();
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        return cJSON_CreateNumber(v->number_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        return cJSON_CreateString(v->string_value ? v->string_value : "");
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        return cJSON_CreateBool(v->bool_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        return proxy_struct_json(v->struct_value, depth + 1);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
        cJSON *a = cJSON_CreateArray();
        if (v->list_value != NULL)
            for (size_t i = 0; i < v->list_value->n_values; i++)
                cJSON_AddItemToArray(a, proxy_value_json(v->list_value->values[i], depth + 1));
        return a;
    }
    default:
        return cJSON_CreateNull();
    }
}

static char *proxy_meta_string(const cJSON *md, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, key);
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return NULL;
    return xstrdup(v->valuestring);
}

static bool proxy_valid_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void proxy_add_ip(xds_proxy *p, const char *ip, size_t len)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp) || p->nips >= PROXY_MAX_IPS)
        return;
    memcpy(tmp, ip, len);
    tmp[len] = '\0';
    if (!proxy_valid_ip(tmp))
        return;
    p->ips = xrealloc(p->ips, (p->nips + 1) * sizeof(*p->ips));
    p->ips[p->nips++] = xstrdup(tmp);
}

static int proxy_node_type(const char *s, xds_node_type *out)
{
    static const struct {
        const char *name;
        xds_node_type t;
    } types[] = {
        {"sidecar", XDS_NODE_SIDECAR},
        {"router", XDS_NODE_ROUTER},
        {"waypoint", XDS_NODE_WAYPOINT},
        {"ztunnel", XDS_NODE_ZTUNNEL},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].t;
            return 0;
        }
    return -1;
}

int xds_proxy_from_node(const void *node_v, const char *domain, xds_proxy **out, char *err,
                        size_t errlen)
{
    const Envoy__Config__Core__V3__Node *node = node_v;
    xds_proxy *p = NULL;
    char *parts[4] = {0};
    char *idcopy = NULL;
    int rc = -1;
    (void)domain;

    *out = NULL;
    if (node == NULL) {
        snprintf(err, errlen, "node: missing (the first request of a stream must carry it)");
        goto out;
    }
    const char *id = node->id ? node->id : "";
    if (id[0] == '\0') {
        snprintf(err, errlen, "node ID \"\": must not be empty");
        goto out;
    }
    if (strlen(id) > PROXY_MAX_ID) {
        snprintf(err, errlen, "node ID \"%.64s...\": longer than %d bytes", id, PROXY_MAX_ID);
        goto out;
    }
    idcopy = xstrdup(id);
    size_t np = 0;
    for (char *s = idcopy; s != NULL; np++) {
        if (np < 4)
            parts[np] = s;
        s = strchr(s, '~');
        if (s != NULL)
            *s++ = '\0';
    }
    if (np != 4) {
        snprintf(err, errlen,
                 "node ID \"%s\": must have 4 parts separated by ~ "
                 "(type~ip~pod.namespace~namespace.svc.cluster.local), got %zu",
                 id, np);
        goto out;
    }

    p = xcalloc(1, sizeof(*p));
    p->id = xstrdup(id);
    if (proxy_node_type(parts[0], &p->type) != 0) {
        snprintf(err, errlen,
                 "node ID \"%s\": invalid node type \"%s\" (valid types: "
                 "sidecar, router, waypoint, ztunnel)",
                 id, parts[0]);
        goto out;
    }
    p->metadata = proxy_struct_json(node->metadata, 0);

    const cJSON *ips = cJSON_GetObjectItemCaseSensitive(p->metadata, "INSTANCE_IPS");
    if (cJSON_IsString(ips) && ips->valuestring[0] != '\0') {
        const char *s = ips->valuestring;
        while (*s) {
            size_t n = strcspn(s, ",");
            proxy_add_ip(p, s, n);
            s += n;
            if (*s == ',')
                s++;
        }
    } else {
        proxy_add_ip(p, parts[1], strlen(parts[1]));
    }
    if (p->nips == 0) {
        snprintf(err, errlen,
                 "node ID \"%s\": no valid IP address in the node ID or "
                 "metadata INSTANCE_IPS",
                 id);
        goto out;
    }

    const char *dot = strchr(parts[2], '.');
    p->pod_name = dot ? xstrndup(parts[2], (size_t)(dot - parts[2])) : xstrdup(parts[2]);
    p->dns_domain = xstrdup(parts[3]);
    p->ns = proxy_meta_string(p->metadata, "NAMESPACE");
    if (p->ns == NULL) {
        /* istiod: the first label of a multi-label DNS domain ("ns.svc.cluster.local"),
         * else the part after the pod name ("pod.ns"). */
        const char *d = strchr(parts[3], '.');
        if (d != NULL && d != parts[3])
            p->ns = xstrndup(parts[3], (size_t)(d - parts[3]));
        else if (dot != NULL && dot[1] != '\0')
            p->ns = xstrdup(dot + 1);
        else
            p->ns = xstrdup("");
    }

    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(p->metadata, "LABELS");
    if (labels != NULL && !cJSON_IsNull(labels)) {
        if (!cJSON_IsObject(labels)) {
            snprintf(err, errlen,
                     "node ID \"%s\": metadata LABELS must be a struct of "
                     "strings",
                     id);
            goto out;
        }
        const cJSON *l;
        cJSON_ArrayForEach(l, labels)
        {
            if (!cJSON_IsString(l)) {
                snprintf(err, errlen,
                         "node ID \"%s\": metadata LABELS[\"%s\"] must be a "
                         "string",
                         id, l->string ? l->string : "");
                goto out;
            }
        }
        if (mesh_labels_from_json(labels, &p->labels) != 0) {
            snprintf(err, errlen, "node ID \"%s\": metadata LABELS is invalid", id);
            goto out;
        }
    }

    p->istio_version = proxy_meta_string(p->metadata, "ISTIO_VERSION");
    p->cluster_id = proxy_meta_string(p->metadata, "CLUSTER_ID");
    if (p->cluster_id == NULL)
        p->cluster_id = xstrdup("Kubernetes");
    p->mesh_id = proxy_meta_string(p->metadata, "MESH_ID");
    p->node_cluster = node->cluster && *node->cluster ? xstrdup(node->cluster) : NULL;
    p->service_account = proxy_meta_string(p->metadata, "SERVICE_ACCOUNT");
    p->workload_name = proxy_meta_string(p->metadata, "WORKLOAD_NAME");
    p->node_name = proxy_meta_string(p->metadata, "NODE_NAME");

    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(p->metadata, "GENERATOR");
    if (cJSON_IsString(gen) && strcmp(gen->valuestring, "grpc") == 0)
        p->flavour = XDS_FLAVOUR_GRPC;
    else if (p->type == XDS_NODE_ROUTER)
        p->flavour = XDS_FLAVOUR_ENVOY_GATEWAY;
    else
        p->flavour = XDS_FLAVOUR_ENVOY_SIDECAR;

    if (node->locality != NULL) {
        const Envoy__Config__Core__V3__Locality *loc = node->locality;
        p->region = xstrdup(loc->region ? loc->region : "");
        p->zone = xstrdup(loc->zone ? loc->zone : "");
        p->subzone = xstrdup(loc->sub_zone ? loc->sub_zone : "");
    } else {
        p->region = xstrdup("");
        p->zone = xstrdup("");
        p->subzone = xstrdup("");
    }
    *out = p;
    p = NULL;
    rc = 0;
out:
    xds_proxy_free(p);
    free(idcopy);
    return rc;
}

void xds_proxy_free(xds_proxy *p)
{
    if (p == NULL)
        return;
    free(p->id);
    for (size_t i = 0; i < p->nips; i++)
        free(p->ips[i]);
    free(p->ips);
    free(p->pod_name);
    free(p->ns);
    free(p->dns_domain);
    mesh_labels_free(&p->labels);
    free(p->istio_version);
    free(p->cluster_id);
    free(p->mesh_id);
    free(p->node_cluster);
    free(p->service_account);
    free(p->workload_name);
    free(p->node_name);
    free(p->region);
    free(p->zone);
    free(p->subzone);
    cJSON_Delete(p->metadata);
    free(p);
}
