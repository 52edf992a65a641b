/* debug_model: /debug/configz, /debug/registryz, /debug/endpointShardz (and endpointz),
 * /debug/authorizationz, /debug/telemetryz, /debug/networkz, /debug/push_status and
 * /debug/mesh in Istio's JSON shapes (ISTIO-FACTS.md; istiod's pilot/pkg/xds/debug.go).
 * Runs on the HTTP threads; reads one retained snapshot.
 */
#include "pilot/model/debug_model.h"
#include "pilot/model/configz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/model/model_internal.h"
#include "pilot/obs/debug.h"
#include "pilot/obs/metrics.h"

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

const cJSON *mesh_snapshot_configz_spec(const mesh_snapshot *s, const char *kind, const char *ns,
                                        const char *name)
{
    const cJSON *it;
    if (s->configz == NULL || s->configz->items == NULL)
        return NULL;
    cJSON_ArrayForEach(it, s->configz->items)
    {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "kind"));
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
        if (k && n && o && strcmp(k, kind) == 0 && strcmp(n, name) == 0 && strcmp(o, ns) == 0)
            return cJSON_GetObjectItemCaseSensitive(it, "spec");
    }
    return NULL;
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

/* ---- /debug/authorizationz, /debug/telemetryz, /debug/networkz, /debug/push_status -------- */

/* The objects of one kind in configz (Kubernetes-shaped, with their spec), by kind name. */
static cJSON *configz_of_kind(const mesh_snapshot *s, const char *kind, const char *ns)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *it;
    if (s->configz == NULL || s->configz->items == NULL)
        return out;
    cJSON_ArrayForEach(it, s->configz->items)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "kind");
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(md, "namespace");
        if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0)
            continue;
        if (ns != NULL && (!cJSON_IsString(n) || strcmp(n->valuestring, ns) != 0))
            continue;
        cJSON_AddItemToArray(out, cJSON_Duplicate(it, 1));
    }
    return out;
}

/* istiod's AuthorizationDebug: {"authorization_policies": {"namespace_to_policies":
 * {ns: [{name, namespace, annotations, spec}]}, "root_namespace"}} from the accepted
 * AuthorizationPolicies (configz order: namespace, then name). */
static void h_authorizationz(void *ud, const dbg_request *req, dbg_response *resp)
{
    mesh_snapshot *s = snap_or_503(ud, resp);
    if (!s)
        return;
    cJSON *root = cJSON_CreateObject();
    cJSON *ap = cJSON_AddObjectToObject(root, "authorization_policies");
    cJSON *byns = cJSON_AddObjectToObject(ap, "namespace_to_policies");
    cJSON *all = configz_of_kind(s, "AuthorizationPolicy", NULL);
    cJSON *it;
    cJSON_ArrayForEach(it, all)
    {
        cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
        const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
        cJSON *list = cJSON_GetObjectItemCaseSensitive(byns, ns ? ns : "");
        if (list == NULL)
            list = cJSON_AddArrayToObject(byns, ns ? ns : "");
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", name ? name : "");
        cJSON_AddStringToObject(p, "namespace", ns ? ns : "");
        cJSON *ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
        cJSON_AddItemToObject(p, "annotations", ann ? cJSON_Duplicate(ann, 1) : cJSON_CreateNull());
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(it, "spec");
        cJSON_AddItemToObject(p, "spec", spec ? cJSON_Duplicate(spec, 1) : cJSON_CreateObject());
        cJSON_AddItemToArray(list, p);
    }
    cJSON_Delete(all);
    cJSON_AddStringToObject(ap, "root_namespace", s->root_ns ? s->root_ns : "");
    dbg_send_json(req, resp, root);
    cJSON_Delete(root);
    mesh_snapshot_release(s);
}

/* istiod's TelemetryDebug: {"telemetries": {"namespace_to_telemetries": {ns: [{name,
 * namespace, spec}]}, "root_namespace"}} from the accepted Telemetries, each namespace's in
 * istiod's order (creationTimestamp, then name). istiod's per-proxy form (?proxyID=) is not
 * offered. */
static bool tz_older(const mesh_telemetry *a, const mesh_telemetry *b)
{
    const char *ta = a->meta.creation_timestamp ? a->meta.creation_timestamp : "";
    const char *tb = b->meta.creation_timestamp ? b->meta.creation_timestamp : "";
    int c = strcmp(ta, tb);
    return c != 0 ? c < 0 : strcmp(a->meta.name, b->meta.name) < 0;
}

static void h_telemetryz(void *ud, const dbg_request *req, dbg_response *resp)
{
    mesh_snapshot *s = snap_or_503(ud, resp);
    if (!s)
        return;
    cJSON *root = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(root, "telemetries");
    cJSON *byns = cJSON_AddObjectToObject(t, "namespace_to_telemetries");
    const mesh_telemetry **run = xcalloc(s->ntelemetries + 1, sizeof *run);
    for (size_t i = 0; i < s->ntelemetries;) {
        /* one namespace's run (the array is sorted by namespace), sorted by age */
        size_t n = 0;
        const char *ns = s->telemetries[i]->meta.ns;
        for (; i < s->ntelemetries && strcmp(s->telemetries[i]->meta.ns, ns) == 0; i++) {
            size_t j = n++;
            for (; j > 0 && tz_older(s->telemetries[i], run[j - 1]); j--)
                run[j] = run[j - 1];
            run[j] = s->telemetries[i];
        }
        cJSON *list = cJSON_AddArrayToObject(byns, ns);
        for (size_t k = 0; k < n; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", run[k]->meta.name);
            cJSON_AddStringToObject(o, "namespace", run[k]->meta.ns);
            const cJSON *spec =
                mesh_snapshot_configz_spec(s, "Telemetry", run[k]->meta.ns, run[k]->meta.name);
            cJSON_AddItemToObject(o, "spec",
                                  spec ? cJSON_Duplicate(spec, 1) : cJSON_CreateObject());
            cJSON_AddItemToArray(list, o);
        }
    }
    free(run);
    cJSON_AddStringToObject(t, "root_namespace", s->root_ns ? s->root_ns : "");
    dbg_send_json(req, resp, root);
    cJSON_Delete(root);
    mesh_snapshot_release(s);
}

/* istiod's NetworkManager.AllGateways(): cross-network gateways. Networks (meshNetworks,
 * topology.istio.io/network) are not modelled: no gateway, which Go writes as null. */
static void h_networkz(void *ud, const dbg_request *req, dbg_response *resp)
{
    (void)ud;
    cJSON *n = cJSON_CreateNull();
    dbg_send_json(req, resp, n);
    cJSON_Delete(n);
}

/* istiod's LastPushStatus.StatusJSON(): {metric: {key: {proxy, message}}}. The conditions
 * istiod records there (duplicate clusters and domains, conflicting listeners, clusters
 * without instances) are not detected by our generators, so the map is empty; it is the
 * status of the last push (an empty body before the first one, as istiod writes then). */
static void h_push_status(void *ud, const dbg_request *req, dbg_response *resp)
{
    mesh_snapshot *s = model_snapshot(ud);
    if (!s)
        return; /* istiod: an empty body before the first push */
    cJSON *o = cJSON_CreateObject();
    dbg_send_json(req, resp, o);
    cJSON_Delete(o);
    mesh_snapshot_release(s);
}

/* ---- pilot_services, pilot_virt_services (istiod's gauges, set on each push) ------------- */

static metric *m_services, *m_virt_services;

static void metrics_on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req)
{
    (void)ud;
    (void)req;
    metric_set(m_services, NULL, (double)snap->nservices);
    metric_set(m_virt_services, NULL, (double)snap->nvss);
}

/* ---- /debug/mesh ------------------------------------------------------------------------ */

/* The mesh config /debug/mesh shows; replaced whole when the mesh config changes. mesh_mu
 * guards the pointer (setters may run on any thread); a handler call holds its copy as ud,
 * and a replaced copy is freed only once no call of it runs (dbg_unregister). */
static pthread_mutex_t mesh_mu = PTHREAD_MUTEX_INITIALIZER;
static cJSON *dbg_mesh;

static void h_mesh(void *ud, const dbg_request *req, dbg_response *resp)
{
    dbg_send_json(req, resp, ud);
}

static void mesh_default(cJSON *o, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key) == NULL)
        cJSON_AddItemToObject(o, key, v);
    else
        cJSON_Delete(v);
}

void model_debug_set_mesh(const cJSON *mesh, const char *root_ns, const char *trust_domain)
{
    cJSON *copy = cJSON_IsObject(mesh) ? cJSON_Duplicate(mesh, 1) : cJSON_CreateObject();
    mesh_default(copy, "rootNamespace", cJSON_CreateString(root_ns ? root_ns : "istio-system"));
    mesh_default(copy, "trustDomain",
                 cJSON_CreateString(trust_domain ? trust_domain : "cluster.local"));
    mesh_default(copy, "enableAutoMtls", cJSON_CreateBool(1));
    pthread_mutex_lock(&mesh_mu);
    cJSON *old = dbg_mesh;
    dbg_mesh = copy;
    dbg_register("/debug/mesh", "Active mesh config", h_mesh, copy); /* replaces old's */
    if (old != NULL) {
        dbg_unregister("/debug/mesh", old); /* waits for calls still showing old */
        cJSON_Delete(old);
    }
    pthread_mutex_unlock(&mesh_mu);
}

void model_debug_register_mesh(const char *path, const char *root_ns, const char *trust_domain)
{
    cJSON *mesh = NULL;
    if (path != NULL && path[0] != '\0') {
        FILE *f = fopen(path, "rb");
        strbuf b;
        strbuf_init(&b, 4u << 20);
        char chunk[4096];
        size_t n;
        while (f != NULL && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
            if (strbuf_append(&b, chunk, n) != 0)
                break;
        if (f != NULL)
            fclose(f);
        cJSON **docs = NULL;
        size_t ndocs = 0;
        char err[256];
        if (b.len > 0 && yaml_to_json_docs(b.data, b.len, &docs, &ndocs, err, sizeof err) == 0) {
            for (size_t i = 0; i < ndocs; i++) {
                if (mesh == NULL && cJSON_IsObject(docs[i]))
                    mesh = docs[i];
                else
                    cJSON_Delete(docs[i]);
            }
            free(docs);
        }
        strbuf_free(&b);
    }
    model_debug_set_mesh(mesh, root_ns, trust_domain);
    cJSON_Delete(mesh);
}

void model_debug_unregister_mesh(void)
{
    pthread_mutex_lock(&mesh_mu);
    if (dbg_mesh != NULL) {
        dbg_unregister("/debug/mesh", dbg_mesh);
        cJSON_Delete(dbg_mesh);
        dbg_mesh = NULL;
    }
    pthread_mutex_unlock(&mesh_mu);
}

void model_debug_register(model *m)
{
    if (m_services == NULL) {
        m_services = metric_gauge("pilot_services", "Total services known to pilot.", NULL);
        m_virt_services =
            metric_gauge("pilot_virt_services", "Total virtual services known to pilot.", NULL);
    }
    model_on_push(m, metrics_on_push, NULL);
    dbg_register("/debug/unsupportedz",
                 "Accepted objects with fields that have no effect here, per object",
                 h_unsupportedz, m);
    dbg_register("/debug/configz", "Debug support for config", h_configz, m);
    dbg_register("/debug/registryz", "Debug support for registry", h_registryz, m);
    dbg_register("/debug/endpointShardz", "Info about the endpoint shards", h_endpoint_shardz, m);
    dbg_register("/debug/endpointz", "Obsolete, use endpointShardz", h_endpoint_shardz, m);
    dbg_register("/debug/authorizationz", "Internal authorization policies", h_authorizationz, m);
    dbg_register("/debug/telemetryz", "Debug Telemetry configuration", h_telemetryz, m);
    dbg_register("/debug/networkz", "List cross-network gateways", h_networkz, m);
    dbg_register("/debug/push_status", "Last PushContext Details", h_push_status, m);
}
