/* debug_xds: the xDS debug endpoints — /debug/syncz, /debug/adsz (and /debug/connections)
 * and /debug/config_dump — built from the live streams.
 *
 * Handlers run on the HTTP thread; they read streams only inside xds_server_visit (each
 * shard's lock held) and copy what they need into JSON there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pilot/base/util.h"
#include "pilot/obs/debug.h"
#include "xds/ads/stream_internal.h"
#include "xds/gen/gen.h"

static const char *dbgx_node_type(xds_node_type t)
{
    switch (t) {
    case XDS_NODE_ROUTER:
        return "router";
    case XDS_NODE_WAYPOINT:
        return "waypoint";
    case XDS_NODE_ZTUNNEL:
        return "ztunnel";
    default:
        return "sidecar";
    }
}

/* Part 3 of the node ID ("pod.namespace"), copied into out. */
static void dbgx_proxy_name(const xds_proxy *p, char *out, size_t outlen)
{
    const char *s = strchr(p->id, '~');
    s = s ? strchr(s + 1, '~') : NULL;
    if (s == NULL) {
        snprintf(out, outlen, "%s", p->id);
        return;
    }
    s++;
    size_t n = strcspn(s, "~");
    snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), s);
}

static void dbgx_time(int64_t wall_ns, char *out, size_t outlen)
{
    if (wall_ns <= 0) {
        out[0] = '\0';
        return;
    }
    util_format_time(wall_ns, out, outlen);
}

/* ---- /debug/syncz -------------------------------------------------------------------- */

typedef struct {
    cJSON *arr;
    const char *ns;
} syncz_ctx;

static void syncz_visit(void *ud, const xds_stream *st)
{
    syncz_ctx *x = ud;
    const xds_proxy *p = st->proxy;
    char name[256], tbuf[40];
    if (x->ns != NULL && x->ns[0] != '\0' && strcmp(p->ns ? p->ns : "", x->ns) != 0)
        return;
    dbgx_proxy_name(p, name, sizeof(name));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "cluster_id", p->cluster_id ? p->cluster_id : "Kubernetes");
    cJSON_AddStringToObject(o, "proxy", name);
    cJSON_AddStringToObject(o, "proxy_type", dbgx_node_type(p->type));
    cJSON_AddStringToObject(o, "proxy_version", p->istio_version ? p->istio_version : "");
    cJSON_AddStringToObject(o, "istio_version", p->istio_version ? p->istio_version : "");
    static const struct {
        int t;
        const char *key;
    } keys[] = {
        {XT_CDS, "cluster"},
        {XT_LDS, "listener"},
        {XT_RDS, "route"},
        {XT_EDS, "endpoint"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char k[48];
        const xds_type_state *ts = &st->t[keys[i].t];
        snprintf(k, sizeof(k), "%s_sent", keys[i].key);
        cJSON_AddStringToObject(o, k, ts->nonce_sent);
        snprintf(k, sizeof(k), "%s_acked", keys[i].key);
        cJSON_AddStringToObject(o, k, ts->nonce_acked);
    }
    cJSON_AddStringToObject(o, "extensionconfig_sent", "");
    cJSON_AddStringToObject(o, "extensionconfig_acked", "");
    cJSON *res = cJSON_AddObjectToObject(o, "resources");
    for (int t = 0; t < XT_COUNT; t++) {
        const xds_type_state *ts = &st->t[t];
        if (!ts->watched)
            continue;
        cJSON *r = cJSON_AddObjectToObject(res, xds_type_url(t));
        cJSON_AddStringToObject(r, "sent", ts->nonce_sent);
        cJSON_AddStringToObject(r, "acked", ts->nonce_acked);
        dbgx_time(ts->sent_wall_ns, tbuf, sizeof(tbuf));
        cJSON_AddStringToObject(r, "sentTime", tbuf);
        cJSON_AddStringToObject(r, "lastError", ts->last_error ? ts->last_error : "");
    }
    cJSON_AddItemToArray(x->arr, o);
}

static void dbgx_syncz(void *ud, const dbg_request *req, dbg_response *resp)
{
    syncz_ctx x = {cJSON_CreateArray(), dbg_arg(req, "namespace")};
    xds_server_visit(ud, syncz_visit, &x);
    dbg_send_json(req, resp, x.arr);
    cJSON_Delete(x.arr);
}

/* ---- /debug/adsz, /debug/connections -------------------------------------------------- */

static cJSON *labels_json(const mesh_labels *l)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddStringToObject(o, l->keys[i], l->vals[i]);
    return o;
}

static void adsz_visit(void *ud, const xds_stream *st)
{
    cJSON *clients = ud;
    const xds_proxy *p = st->proxy;
    char tbuf[40];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "connectionId", st->conn_id);
    dbgx_time(st->connected_wall_ns, tbuf, sizeof(tbuf));
    cJSON_AddStringToObject(o, "connectedAt", tbuf);
    cJSON_AddStringToObject(o, "address", st->peer);
    cJSON_AddItemToObject(o, "labels", labels_json(&p->labels));
    cJSON_AddItemToObject(o, "metadata",
                          p->metadata ? cJSON_Duplicate(p->metadata, 1) : cJSON_CreateObject());
    cJSON *loc = cJSON_AddObjectToObject(o, "locality");
    if (p->region && p->region[0])
        cJSON_AddStringToObject(loc, "region", p->region);
    if (p->zone && p->zone[0])
        cJSON_AddStringToObject(loc, "zone", p->zone);
    if (p->subzone && p->subzone[0])
        cJSON_AddStringToObject(loc, "sub_zone", p->subzone);
    cJSON *w = cJSON_AddObjectToObject(o, "watches");
    for (int t = 0; t < XT_COUNT; t++) {
        const xds_type_state *ts = &st->t[t];
        if (!ts->watched)
            continue;
        cJSON *names = cJSON_AddArrayToObject(w, xds_type_url(t));
        if (ts->wildcard)
            cJSON_AddItemToArray(names, cJSON_CreateString("*"));
        for (size_t i = 0; i < ts->nnames; i++)
            cJSON_AddItemToArray(names, cJSON_CreateString(ts->names[i]));
    }
    cJSON_AddItemToArray(clients, o);
}

static void dbgx_adsz(void *ud, const dbg_request *req, dbg_response *resp)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *clients = cJSON_CreateArray();
    xds_server_visit(ud, adsz_visit, clients);
    cJSON_AddNumberToObject(root, "totalClients", cJSON_GetArraySize(clients));
    cJSON_AddItemToObject(root, "clients", clients);
    dbg_send_json(req, resp, root);
    cJSON_Delete(root);
}

/* ---- /debug/config_dump -------------------------------------------------------------- */

typedef struct {
    const char *id;
    bool include_eds;
    const char *types; /* "cds,lds" or NULL for all */
    bool found;
    int exact; /* 1 when the match was on part 3 exactly */
    cJSON *dump;
} dump_ctx;

static bool dump_want(const dump_ctx *x, const char *short_name)
{
    if (x->types == NULL || x->types[0] == '\0')
        return true;
    const char *s = x->types;
    size_t n = strlen(short_name);
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len == n && strncmp(s, short_name, n) == 0)
            return true;
        s += len;
        if (*s == ',')
            s++;
    }
    return false;
}

/* Private keys never leave the process: "[redacted]" like istiod. */
static void dump_redact(cJSON *j)
{
    cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        if (c->string != NULL && strcmp(c->string, "private_key") == 0 && cJSON_IsObject(c)) {
            cJSON *v;
            cJSON_ArrayForEach(v, c)
            {
                if (cJSON_IsString(v))
                    cJSON_SetValuestring(v, "[redacted]");
            }
        } else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            dump_redact(c);
        }
    }
}

static cJSON *dump_resource(const xds_known *k, const char *type_url)
{
    cJSON *j = xds_resource_to_json(k->res);
    if (j == NULL)
        j = cJSON_CreateObject();
    if (cJSON_GetObjectItemCaseSensitive(j, "@type") == NULL)
        cJSON_AddStringToObject(j, "@type", type_url);
    dump_redact(j);
    return j;
}

/* Envoy's admin config dump, one section per type. The sections differ only in these
 * names and in which of the shared fields they carry, in Envoy's order: an entry is
 * {name?, [active_state {] version_info, <field>, last_updated? [}]}. */
typedef struct dump_section {
    const char *want; /* the ?types= short name */
    int type;         /* XT_* */
    const char *type_url;
    const char *admin_type; /* the section's @type */
    const char *list;       /* the section's list of entries */
    const char *field;      /* the entry's resource */
    bool section_version;   /* version_info on the section too */
    bool entry_name;        /* name on the entry */
    bool active_state;      /* the entry's fields inside "active_state" (listeners) */
    bool last_updated;
    bool eds; /* only with include_eds */
} dump_section;

static const dump_section dump_sections[] = {
    {"cds", XT_CDS, XDS_TYPE_CLUSTER, "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
     "dynamic_active_clusters", "cluster", true, false, false, true, false},
    {"lds", XT_LDS, XDS_TYPE_LISTENER, "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
     "dynamic_listeners", "listener", true, true, true, true, false},
    {"rds", XT_RDS, XDS_TYPE_ROUTE, "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
     "dynamic_route_configs", "route_config", false, false, false, true, false},
    {"sds", XT_SDS, XDS_TYPE_SECRET, "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
     "dynamic_active_secrets", "secret", false, true, false, false, false},
    {"eds", XT_EDS, XDS_TYPE_ENDPOINT, "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
     "dynamic_endpoint_configs", "endpoint_config", false, false, false, false, true},
};

static void dump_build(dump_ctx *x, const xds_stream *st)
{
    cJSON *configs = cJSON_AddArrayToObject(x->dump, "configs");
    char tbuf[40];
    for (size_t s = 0; s < sizeof dump_sections / sizeof dump_sections[0]; s++) {
        const dump_section *ds = &dump_sections[s];
        if ((ds->eds && !x->include_eds) || !dump_want(x, ds->want))
            continue;
        const xds_type_state *ts = &st->t[ds->type];
        if (ds->last_updated)
            dbgx_time(ts->sent_wall_ns, tbuf, sizeof(tbuf));
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "@type", ds->admin_type);
        if (ds->section_version)
            cJSON_AddStringToObject(d, "version_info", ts->version_sent);
        cJSON *a = cJSON_AddArrayToObject(d, ds->list);
        for (size_t i = 0; i < ts->nknown; i++) {
            if (ts->known[i].res == NULL)
                continue;
            cJSON *e = cJSON_CreateObject();
            if (ds->entry_name)
                cJSON_AddStringToObject(e, "name", ts->known[i].name);
            cJSON *in = ds->active_state ? cJSON_AddObjectToObject(e, "active_state") : e;
            cJSON_AddStringToObject(in, "version_info", ts->version_sent);
            cJSON_AddItemToObject(in, ds->field, dump_resource(&ts->known[i], ds->type_url));
            if (ds->last_updated)
                cJSON_AddStringToObject(in, "last_updated", tbuf);
            cJSON_AddItemToArray(a, e);
        }
        cJSON_AddItemToArray(configs, d);
    }
}

static void dump_visit(void *ud, const xds_stream *st)
{
    dump_ctx *x = ud;
    char name[256];
    dbgx_proxy_name(st->proxy, name, sizeof(name));
    int exact = strcmp(name, x->id) == 0 || strcmp(st->conn_id, x->id) == 0;
    if (x->found && (x->exact || !exact))
        return;
    if (!exact && strstr(st->proxy->id, x->id) == NULL && strstr(st->conn_id, x->id) == NULL)
        return;
    if (x->dump != NULL)
        cJSON_Delete(x->dump);
    x->dump = cJSON_CreateObject();
    x->found = true;
    x->exact = exact;
    dump_build(x, st);
}

static void dbgx_config_dump(void *ud, const dbg_request *req, dbg_response *resp)
{
    const char *id = dbg_arg(req, "proxyID");
    if (id == NULL || id[0] == '\0') {
        resp->status = 400;
        resp->content_type = "text/plain";
        strbuf_appends(&resp->body, "You must provide a proxyID in the query string");
        return;
    }
    dump_ctx x = {.id = id,
                  .include_eds = dbg_arg(req, "include_eds") != NULL,
                  .types = dbg_arg(req, "types")};
    xds_server_visit(ud, dump_visit, &x);
    if (!x.found) {
        resp->status = 404;
        resp->content_type = "text/plain";
        strbuf_appends(&resp->body, "Proxy not connected to this Pilot instance");
        return;
    }
    dbg_send_json(req, resp, x.dump);
    cJSON_Delete(x.dump);
}

void xds_debug_register(struct xds_server *s)
{
    dbg_register("/debug/syncz",
                 "Synchronization status of all Envoys connected to this Pilot instance",
                 dbgx_syncz, s);
    dbg_register("/debug/adsz", "Status and debug interface for ADS", dbgx_adsz, s);
    dbg_register("/debug/connections", "Information about the connected XDS clients", dbgx_adsz, s);
    dbg_register("/debug/config_dump",
                 "ConfigDump in the form of the Envoy admin config dump API for passed in proxyID",
                 dbgx_config_dump, s);
}

void xds_debug_unregister(struct xds_server *s)
{
    static const char *const paths[] = {"/debug/syncz", "/debug/adsz", "/debug/connections",
                                        "/debug/config_dump"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        dbg_unregister(paths[i], s);
}
