/* debug_model: /debug/configz, /debug/registryz and /debug/endpointShardz in Istio's JSON
 * shapes (ISTIO-FACTS.md). Runs on the HTTP threads; reads one retained snapshot.
 */
#include "pilot/model/debug_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pilot/base/util.h"
#include "pilot/model/model_internal.h"
#include "pilot/obs/debug.h"

/* Istio's model.HealthStatus values. */
#define DBG_HEALTHY 1
#define DBG_UNHEALTHY 2

/* --clusterID names the registry's shards and addresses, as istiod's cluster ID does. */
static const char *dbg_cluster(const mesh_snapshot *s)
{
    return s->cluster_id ? s->cluster_id : "Kubernetes";
}

static cJSON *labels_json(const mesh_labels *l)
{
    if (!l->n)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddStringToObject(o, l->keys[i], l->vals[i]);
    return o;
}

/* Go's sets marshal as {"member": {}}; empty sets as null. */
static cJSON *set_json(char *const *v, size_t n)
{
    if (!n)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++)
        if (!cJSON_GetObjectItemCaseSensitive(o, v[i]))
            cJSON_AddItemToObject(o, v[i], cJSON_CreateObject());
    return o;
}

static char *spiffe(const char *domain, const char *ns, const char *sa)
{
    return xasprintf("spiffe://%s/ns/%s/sa/%s", domain ? domain : "cluster.local", ns, sa);
}

static mesh_snapshot *snap_or_503(model *m, dbg_response *resp)
{
    mesh_snapshot *s = model_snapshot(m);
    if (!s) {
        resp->status = 503;
        resp->content_type = "text/plain; charset=utf-8";
        strbuf_appends(&resp->body, "no snapshot built yet\n");
    }
    return s;
}

/* ---- /debug/configz ----------------------------------------------------------------------- */

static void h_configz(void *ud, const dbg_request *req, dbg_response *resp)
{
    mesh_snapshot *s = snap_or_503(ud, resp);
    if (!s)
        return;
    if (s->configz && s->configz->items) {
        dbg_send_json(req, resp, s->configz->items);
    } else {
        cJSON *empty = cJSON_CreateArray();
        dbg_send_json(req, resp, empty);
        cJSON_Delete(empty);
    }
    mesh_snapshot_release(s);
}

/* ---- /debug/registryz --------------------------------------------------------------------- */

/* Sorted unique service accounts of a shard, as SPIFFE identities. */
static cJSON *shard_service_accounts(const mesh_snapshot *s, const mesh_endpoint_shard *sh,
                                     bool as_set)
{
    cJSON *out = as_set ? cJSON_CreateObject() : cJSON_CreateArray();
    for (size_t i = 0; sh && i < sh->neps; i++) {
        const mesh_endpoint *ep = &sh->eps[i];
        if (!ep->service_account || !*ep->service_account)
            continue;
        char *id = spiffe(s->domain, sh->ns, ep->service_account);
        if (as_set) {
            if (!cJSON_GetObjectItemCaseSensitive(out, id))
                cJSON_AddItemToObject(out, id, cJSON_CreateObject());
        } else {
            bool seen = false;
            const cJSON *it;
            cJSON_ArrayForEach(it, out) if (strcmp(it->valuestring, id) == 0) seen = true;
            if (!seen)
                cJSON_AddItemToArray(out, cJSON_CreateString(id));
        }
        free(id);
    }
    return out;
}

static cJSON *service_json(const mesh_snapshot *s, const mesh_service *svc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *attr = cJSON_AddObjectToObject(o, "Attributes");
    cJSON_AddStringToObject(attr, "ServiceRegistry",
                            svc->from_service_entry ? "External" : "Kubernetes");
    cJSON_AddStringToObject(attr, "Name", svc->from_service_entry ? svc->hostname : svc->meta.name);
    cJSON_AddStringToObject(attr, "Namespace", svc->meta.ns ? svc->meta.ns : "");
    cJSON_AddItemToObject(attr, "Labels", labels_json(&svc->meta.labels));
    cJSON_AddItemToObject(attr, "ExportTo", set_json(svc->export_to, svc->nexport_to));
    cJSON_AddItemToObject(attr, "LabelSelectors", labels_json(&svc->selector));

    cJSON *ports = cJSON_AddArrayToObject(o, "ports");
    for (size_t i = 0; i < svc->nports; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", svc->ports[i].name ? svc->ports[i].name : "");
        cJSON_AddNumberToObject(p, "port", svc->ports[i].port);
        cJSON_AddStringToObject(p, "protocol", mesh_protocol_name(svc->ports[i].protocol));
        cJSON_AddItemToArray(ports, p);
    }
    cJSON *sas = shard_service_accounts(s, mesh_snapshot_shard(s, svc->hostname), false);
    if (cJSON_GetArraySize(sas) > 0)
        cJSON_AddItemToObject(o, "serviceAccounts", sas);
    else
        cJSON_Delete(sas);
    cJSON_AddStringToObject(o, "creationTime",
                            svc->meta.creation_timestamp ? svc->meta.creation_timestamp
                                                         : "0001-01-01T00:00:00Z");
    cJSON_AddStringToObject(o, "hostname", svc->hostname);
    cJSON *vips = cJSON_AddObjectToObject(o, "clusterVIPs");
    cJSON *addrs = cJSON_AddObjectToObject(vips, "Addresses");
    if (svc->nvips) {
        cJSON *list = cJSON_AddArrayToObject(addrs, dbg_cluster(s));
        for (size_t i = 0; i < svc->nvips; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(svc->vips[i]));
    }
    cJSON_AddStringToObject(o, "defaultAddress", svc->nvips ? svc->vips[0] : "0.0.0.0");
    cJSON_AddNumberToObject(o, "Resolution", svc->resolution);
    cJSON_AddBoolToObject(o, "MeshExternal", svc->mesh_external);
    cJSON_AddStringToObject(o, "ResourceVersion",
                            svc->meta.resource_version ? svc->meta.resource_version : "");
    return o;
}

static void h_registryz(void *ud, const dbg_request *req, dbg_response *resp)
{
    mesh_snapshot *s = snap_or_503(ud, resp);
    if (!s)
        return;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < s->nservices; i++)
        cJSON_AddItemToArray(arr, service_json(s, s->services[i]));
    dbg_send_json(req, resp, arr);
    cJSON_Delete(arr);
    mesh_snapshot_release(s);
}

/* ---- /debug/endpointShardz ---------------------------------------------------------------- */

static cJSON *endpoint_json(const mesh_snapshot *s, const mesh_endpoint_shard *sh,
                            const mesh_endpoint *ep)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "Labels", labels_json(&ep->labels));
    cJSON_AddStringToObject(o, "Address", ep->address);
    cJSON_AddStringToObject(o, "ServicePortName", ep->port_name ? ep->port_name : "");
    if (ep->service_account && *ep->service_account) {
        char *id = spiffe(s->domain, sh->ns, ep->service_account);
        cJSON_AddStringToObject(o, "ServiceAccount", id);
        free(id);
    } else {
        cJSON_AddStringToObject(o, "ServiceAccount", "");
    }
    cJSON_AddStringToObject(o, "Network", "");
    cJSON *loc = cJSON_AddObjectToObject(o, "Locality");
    cJSON_AddStringToObject(loc, "Label", ep->locality ? ep->locality : "");
    cJSON_AddStringToObject(loc, "ClusterID", dbg_cluster(s));
    cJSON_AddNumberToObject(o, "EndpointPort", ep->port);
    cJSON_AddNumberToObject(o, "LbWeight", ep->weight);
    const char *tls = mesh_labels_get(&ep->labels, "security.istio.io/tlsMode");
    cJSON_AddStringToObject(o, "TLSMode", tls ? tls : "disabled");
    cJSON_AddStringToObject(o, "Namespace", sh->ns ? sh->ns : "");
    cJSON_AddStringToObject(o, "WorkloadName", ep->pod_name ? ep->pod_name : "");
    cJSON_AddStringToObject(o, "HostName", "");
    cJSON_AddStringToObject(o, "SubDomain", "");
    cJSON_AddNumberToObject(o, "HealthStatus", ep->ready ? DBG_HEALTHY : DBG_UNHEALTHY);
    cJSON_AddStringToObject(o, "NodeName", ep->node_name ? ep->node_name : "");
    return o;
}

static void h_endpoint_shardz(void *ud, const dbg_request *req, dbg_response *resp)
{
    mesh_snapshot *s = snap_or_503(ud, resp);
    if (!s)
        return;
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < s->nshards; i++) {
        const mesh_endpoint_shard *sh = s->shards[i];
        const mesh_service *svc = mesh_snapshot_service(s, sh->hostname);
        if (!sh->neps)
            continue; /* Istio lists only hostnames that have endpoints */
        cJSON *byns = cJSON_GetObjectItemCaseSensitive(root, sh->hostname);
        if (!byns)
            byns = cJSON_AddObjectToObject(root, sh->hostname);
        cJSON *entry = cJSON_AddObjectToObject(byns, sh->ns ? sh->ns : "");
        cJSON *shards = cJSON_AddObjectToObject(entry, "Shards");
        char key[256];
        snprintf(key, sizeof(key), "%s/%s",
                 svc && svc->from_service_entry ? "External" : "Kubernetes", dbg_cluster(s));
        cJSON *list = cJSON_AddArrayToObject(shards, key);
        for (size_t j = 0; j < sh->neps; j++)
            cJSON_AddItemToArray(list, endpoint_json(s, sh, &sh->eps[j]));
        cJSON_AddItemToObject(entry, "ServiceAccounts", shard_service_accounts(s, sh, true));
    }
    dbg_send_json(req, resp, root);
    cJSON_Delete(root);
    mesh_snapshot_release(s);
}

/* Istio has no such endpoint: istiod silently ignores what it does not know less often,
 * and an operator here should learn which accepted fields did nothing. */
static void h_unsupportedz(void *ud, const dbg_request *req, dbg_response *resp)
{
    cJSON *j = model_unsupported_json(ud);
    dbg_send_json(req, resp, j);
    cJSON_Delete(j);
}

void model_debug_register(model *m)
{
    dbg_register("/debug/unsupportedz",
                 "Accepted objects with fields that have no effect here, per object",
                 h_unsupportedz, m);
    dbg_register("/debug/configz", "Debug support for config", h_configz, m);
    dbg_register("/debug/registryz", "Debug support for registry", h_registryz, m);
    dbg_register("/debug/endpointShardz", "Info about the endpoint shards", h_endpoint_shardz, m);
}
