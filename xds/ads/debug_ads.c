/* debug_xds: the xDS debug endpoints — /debug/syncz, /debug/adsz (and /debug/connections)
 * and /debug/config_dump — built from the live streams, and the same over xDS (istiod's
 * istio.io/debug types, at the end of this file).
 *
 * Handlers run on the HTTP thread (the xDS answers on the asking stream's shard thread);
 * they read streams only inside xds_server_visit (each shard's lock held) and copy what
 * they need there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "pilot_version.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/model/configz.h"
#include "pilot/obs/debug.h"
#include "xds/ads/server_internal.h"
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

/* ---- /debug/instancesz ----------------------------------------------------------------- */

/* istiod's instancesz: {proxy ID: [ServiceTarget {Service, Port {name, port, protocol,
 * TargetPort}}]}, the service ports whose endpoints carry one of the proxy's IPs. Service
 * has only the fields a reader keys on (hostname, Attributes.Name/Namespace), not the full
 * registryz shape. */
typedef struct inst_ctx {
    cJSON *root;
    const mesh_snapshot *snap;
} inst_ctx;

static bool proxy_has_ip(const xds_proxy *p, const char *ip)
{
    for (size_t i = 0; i < p->nips; i++)
        if (strcmp(p->ips[i], ip) == 0)
            return true;
    return false;
}

static void inst_visit(void *ud, const xds_stream *st)
{
    inst_ctx *x = ud;
    char id[256];
    dbgx_proxy_name(st->proxy, id, sizeof(id));
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; x->snap != NULL && i < x->snap->nshards; i++) {
        const mesh_endpoint_shard *sh = x->snap->shards[i];
        const mesh_service *svc = mesh_snapshot_service(x->snap, sh->hostname);
        if (svc == NULL)
            continue;
        for (size_t j = 0; j < sh->neps; j++) {
            const mesh_endpoint *ep = &sh->eps[j];
            if (!proxy_has_ip(st->proxy, ep->address))
                continue;
            for (size_t k = 0; k < svc->nports; k++) {
                const mesh_port *sp = &svc->ports[k];
                if (sp->port != ep->service_port)
                    continue;
                cJSON *t = cJSON_CreateObject();
                cJSON *sv = cJSON_AddObjectToObject(t, "Service");
                cJSON *attr = cJSON_AddObjectToObject(sv, "Attributes");
                cJSON_AddStringToObject(attr, "Name", svc->meta.name ? svc->meta.name : "");
                cJSON_AddStringToObject(attr, "Namespace", svc->meta.ns ? svc->meta.ns : "");
                cJSON_AddStringToObject(sv, "hostname", svc->hostname);
                cJSON *port = cJSON_AddObjectToObject(t, "Port");
                cJSON_AddStringToObject(port, "name", sp->name ? sp->name : "");
                cJSON_AddNumberToObject(port, "port", sp->port);
                cJSON_AddStringToObject(port, "protocol", mesh_protocol_name(sp->protocol));
                cJSON_AddNumberToObject(port, "TargetPort", ep->port);
                cJSON_AddItemToArray(list, t);
            }
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(x->root, id); /* the newest connection wins */
    cJSON_AddItemToObject(x->root, id, list);
}

static void dbgx_instancesz(void *ud, const dbg_request *req, dbg_response *resp)
{
    struct xds_server *s = ud;
    mesh_snapshot *snap = s->snapshot != NULL ? s->snapshot(s->snapshot_ud) : NULL;
    inst_ctx x = {cJSON_CreateObject(), snap};
    xds_server_visit(s, inst_visit, &x);
    dbg_send_json(req, resp, x.root);
    cJSON_Delete(x.root);
    if (snap != NULL)
        mesh_snapshot_release(snap);
}

/* ---- /debug/sidecarz -------------------------------------------------------------------- */

/* istiod's sidecarz: the proxy's SidecarScope, {version, name, namespace, sidecar,
 * outboundTrafficPolicy, ...}. We give the Sidecar that scopes the proxy (istiod's choice,
 * mesh_snapshot_sidecar_for) with its spec as accepted (configz); the scope's computed
 * service and DestinationRule lists (services, servicesByHostname, egressListenerServices,
 * destinationRules) are not built as one object here and are left out. */
typedef struct sidecarz_ctx {
    const char *id;
    bool found;
    char ns[128];
    mesh_labels labels;
} sidecarz_ctx;

static void sidecarz_visit(void *ud, const xds_stream *st)
{
    sidecarz_ctx *x = ud;
    if (x->found || strstr(st->conn_id, x->id) == NULL)
        return;
    x->found = true;
    snprintf(x->ns, sizeof x->ns, "%s", st->proxy->ns ? st->proxy->ns : "");
    /* copied: the stream may go once the shard lock is released */
    x->labels.n = st->proxy->labels.n;
    x->labels.keys = xcalloc(x->labels.n + 1, sizeof(char *));
    x->labels.vals = xcalloc(x->labels.n + 1, sizeof(char *));
    for (size_t i = 0; i < x->labels.n; i++) {
        x->labels.keys[i] = xstrdup(st->proxy->labels.keys[i]);
        x->labels.vals[i] = xstrdup(st->proxy->labels.vals[i]);
    }
}

static void dbgx_sidecarz(void *ud, const dbg_request *req, dbg_response *resp)
{
    struct xds_server *s = ud;
    const char *id = dbg_arg(req, "proxyID");
    if (id == NULL || id[0] == '\0') {
        resp->status = 400;
        resp->content_type = "text/plain";
        strbuf_appends(&resp->body, "You must provide a proxyID in the query string\n");
        return;
    }
    sidecarz_ctx x = {.id = id};
    xds_server_visit(s, sidecarz_visit, &x);
    if (!x.found) {
        resp->status = 404;
        resp->content_type = "text/plain";
        strbuf_appends(&resp->body, "Proxy not connected to this Pilot instance. It may be "
                                    "connected to another instance.\n");
        return;
    }
    mesh_snapshot *snap = s->snapshot != NULL ? s->snapshot(s->snapshot_ud) : NULL;
    cJSON *o = cJSON_CreateObject();
    const mesh_sidecar *sc = snap ? mesh_snapshot_sidecar_for(snap, x.ns, &x.labels) : NULL;
    cJSON_AddStringToObject(o, "version", snap ? snap->version_str : "");
    /* istiod's default scope (no Sidecar) is named "default" in the proxy's namespace */
    cJSON_AddStringToObject(o, "name", sc ? sc->meta.name : "default");
    cJSON_AddStringToObject(o, "namespace", sc ? sc->meta.ns : x.ns);
    const cJSON *spec =
        sc ? mesh_snapshot_configz_spec(snap, "Sidecar", sc->meta.ns, sc->meta.name) : NULL;
    cJSON_AddItemToObject(o, "sidecar", spec ? cJSON_Duplicate(spec, 1) : cJSON_CreateNull());
    const cJSON *otp =
        spec ? cJSON_GetObjectItemCaseSensitive(spec, "outboundTrafficPolicy") : NULL;
    cJSON_AddItemToObject(o, "outboundTrafficPolicy",
                          otp ? cJSON_Duplicate(otp, 1) : cJSON_CreateNull());
    dbg_send_json(req, resp, o);
    cJSON_Delete(o);
    if (snap != NULL)
        mesh_snapshot_release(snap);
    util_strv_free(x.labels.keys, x.labels.n);
    util_strv_free(x.labels.vals, x.labels.n);
}

/* Off-loopback HTTP callers of /debug/ (pilot/obs/debug.h): a bearer JWT reviewed as the
 * secure xDS port reviews one (audience istio-ca). istiod's other authenticator, the client
 * certificate, cannot succeed on these plain-HTTP ports. */
static int dbgx_http_auth(void *ud, const char *token, char *err, size_t errlen)
{
    struct xds_server *s = ud;
    char *ns = NULL, *sa = NULL;
    int rc = s->review(s->review_ud, token, SRV_TOKEN_AUDIENCE, &ns, &sa, err, errlen);
    if (rc == 0 && (ns == NULL || sa == NULL))
        rc = -1;
    free(ns);
    free(sa);
    return rc;
}

void xds_debug_register(struct xds_server *s)
{
    if (s->review != NULL)
        dbg_set_authenticator(dbgx_http_auth, s);
    dbg_register("/debug/syncz",
                 "Synchronization status of all Envoys connected to this Pilot instance",
                 dbgx_syncz, s);
    dbg_register("/debug/adsz", "Status and debug interface for ADS", dbgx_adsz, s);
    dbg_register("/debug/connections", "Information about the connected XDS clients", dbgx_adsz, s);
    dbg_register("/debug/config_dump",
                 "ConfigDump in the form of the Envoy admin config dump API for passed in proxyID",
                 dbgx_config_dump, s);
    dbg_register("/debug/instancesz", "Debug support for service instances", dbgx_instancesz, s);
    dbg_register("/debug/sidecarz", "Debug sidecar scope for a proxy", dbgx_sidecarz, s);
}

void xds_debug_unregister(struct xds_server *s)
{
    if (s->review != NULL)
        dbg_set_authenticator(NULL, NULL); /* waits for reviews in progress */
    static const char *const paths[] = {"/debug/syncz",       "/debug/adsz",
                                        "/debug/connections", "/debug/config_dump",
                                        "/debug/instancesz",  "/debug/sidecarz"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        dbg_unregister(paths[i], s);
}

/* ---- debug over xDS (istiod's StatusGen and DebugGen) --------------------------------------
 *
 * Requests whose type URL starts with "istio.io/debug" never start a watch: each is answered
 * once, from the live streams, by a response that names the control plane as istiod's do.
 *  - istio.io/debug/syncz: one envoy.service.status.v3.ClientConfig per connected proxy
 *    (connections whose node sent PROXY_CONFIG, or ztunnels: not istioctl's own), with each
 *    watched type's SYNCED / STALE / NOT_SENT / ERROR;
 *  - istio.io/debug/config_dump, one resource name (a proxy ID or part of one): that proxy's
 *    admin ClustersConfigDump, ListenersConfigDump, RoutesConfigDump and SecretsConfigDump as
 *    Anys (what it was last sent; secrets by name only, key material never leaves);
 *  - istio.io/debug, one resource name ("syncz", "config_dump?proxyID=x", "connections"...):
 *    the body of that /debug/ handler as an Any of type istio.io/debug. Only for a caller
 *    with a verified identity (the secure port), and off istiod's system namespace only for
 *    config_dump, ndsz and edsz.
 * The protobuf is written by hand (dbgx_pb below): these few admin and status messages are
 * not in the bindings we generate, and their wire form is short.
 * Runs on the stream's shard thread without its lock (the answers visit every shard). */

#define DBGX_TYPE "istio.io/debug"
#define DBGX_SYNCZ DBGX_TYPE "/syncz"
#define DBGX_CONFIG_DUMP DBGX_TYPE "/config_dump"
#define DBGX_CLIENT_CONFIG "type.googleapis.com/envoy.service.status.v3.ClientConfig"
#define DBGX_MAX_BYTES (256u << 20) /* an answer, like the HTTP body limit */

/* envoy.service.status.v3.ConfigStatus */
enum { CS_SYNCED = 1, CS_NOT_SENT = 2, CS_STALE = 3, CS_ERROR = 4 };

/* A protobuf message being written: fields appended in order, nested messages written into
 * their own buffer first and then appended with their length. */
typedef strbuf dbgx_pb;

static void pb_init(dbgx_pb *b)
{
    strbuf_init(b, DBGX_MAX_BYTES);
}

static void pb_varint(dbgx_pb *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    strbuf_append(b, t, n);
}

/* A field that would pass DBGX_MAX_BYTES is left out whole (the buffer rolled back), so
 * what is written always decodes: an answer that large loses fields, never its framing. */
static void pb_bytes(dbgx_pb *b, unsigned field, const void *p, size_t n)
{
    size_t old = b->len;
    pb_varint(b, ((uint64_t)field << 3) | 2);
    pb_varint(b, n);
    if (b->len < old + 2 || (n > 0 && strbuf_append(b, p, n) != 0)) {
        b->len = old;
        if (b->data != NULL)
            b->data[old] = '\0';
    }
}

static void pb_str(dbgx_pb *b, unsigned field, const char *s)
{
    if (s != NULL && s[0] != '\0') /* proto3: empty strings are not written */
        pb_bytes(b, field, s, strlen(s));
}

static void pb_uint(dbgx_pb *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

/* Appends child as field and frees it. */
static void pb_msg(dbgx_pb *b, unsigned field, dbgx_pb *child)
{
    pb_bytes(b, field, child->data, child->len);
    strbuf_free(child);
}

/* google.protobuf.Any { type_url = 1; value = 2; } */
static void pb_any(dbgx_pb *b, unsigned field, const char *type_url, const void *p, size_t n)
{
    dbgx_pb a;
    pb_init(&a);
    pb_str(&a, 1, type_url);
    if (n > 0)
        pb_bytes(&a, 2, p, n);
    pb_msg(b, field, &a);
}

/* google.protobuf.Timestamp { seconds = 1; nanos = 2; } from wall-clock ns (> 0). */
static void pb_time(dbgx_pb *b, unsigned field, int64_t wall_ns)
{
    dbgx_pb t;
    pb_init(&t);
    pb_uint(&t, 1, (uint64_t)(wall_ns / 1000000000));
    pb_uint(&t, 2, (uint64_t)(wall_ns % 1000000000));
    pb_msg(b, field, &t);
}

/* One string field of a google.protobuf.Struct (fields = 1, a map entry {key 1, Value 2};
 * Value.string_value = 3); empty values are left out, as istiod's omitempty metadata. */
static void pb_struct_str(dbgx_pb *b, const char *key, const char *val)
{
    if (val == NULL || val[0] == '\0')
        return;
    dbgx_pb e, v;
    pb_init(&e);
    pb_init(&v);
    pb_str(&v, 3, val);
    pb_str(&e, 1, key);
    pb_msg(&e, 2, &v);
    pb_msg(b, 1, &e);
}

/* The istiod instance identity in every debug answer (istioctl prints its ID), the JSON of
 * istiod's IstioControlPlaneInstance: POD_NAME and the build. */
static char *dbgx_control_plane_id(void)
{
    cJSON *o = cJSON_CreateObject();
    const char *pod = getenv("POD_NAME");
    cJSON_AddStringToObject(o, "Component", "istiod");
    cJSON_AddStringToObject(o, "ID", pod ? pod : "");
    cJSON *info = cJSON_AddObjectToObject(o, "Info");
    cJSON_AddStringToObject(info, "version", PILOT_REPORTED_VERSION);
    cJSON_AddStringToObject(info, "revision", PILOT_GIT_REVISION);
    cJSON_AddStringToObject(info, "golang_version", "");
    cJSON_AddStringToObject(info, "status", "Clean");
    cJSON_AddStringToObject(info, "tag", PILOT_REPORTED_VERSION);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The answer being built: resources (name + Any bytes) for a SotW or Delta response. */
typedef struct dbgx_res {
    char *name;
    dbgx_pb any; /* a whole google.protobuf.Any message */
} dbgx_res;

typedef struct dbgx_answer {
    dbgx_res *v;
    size_t n, cap;
} dbgx_answer;

static void answer_add(dbgx_answer *a, const char *name, const char *type_url, const void *p,
                       size_t n)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    dbgx_res *r = &a->v[a->n++];
    r->name = xstrdup(name ? name : "");
    pb_init(&r->any);
    pb_str(&r->any, 1, type_url);
    if (n > 0)
        pb_bytes(&r->any, 2, p, n);
}

static void answer_free(dbgx_answer *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].name);
        strbuf_free(&a->v[i].any);
    }
    free(a->v);
}

/* ---- istio.io/debug/syncz ---- */

static int sync_status(const xds_type_state *ts)
{
    if (ts->last_error != NULL)
        return CS_ERROR;
    if (ts->nonce_sent[0] == '\0')
        return CS_NOT_SENT;
    return strcmp(ts->nonce_acked, ts->nonce_sent) == 0 ? CS_SYNCED : CS_STALE;
}

/* istiod's isProxy || isZtunnel: a node that sent PROXY_CONFIG (every Envoy istio-agent
 * starts), or a ztunnel. istioctl's own debug stream sends neither. */
static bool sync_listed(const xds_proxy *p)
{
    return p->type == XDS_NODE_ZTUNNEL ||
           (p->metadata != NULL && cJSON_GetObjectItemCaseSensitive(p->metadata, "PROXY_CONFIG"));
}

static int cmp_type_idx(const void *a, const void *b)
{
    return strcmp(xds_type_url(*(const int *)a), xds_type_url(*(const int *)b));
}

static void xsyncz_visit(void *ud, const xds_stream *st)
{
    dbgx_answer *a = ud;
    const xds_proxy *p = st->proxy;
    if (!sync_listed(p))
        return;
    char id[256];
    dbgx_proxy_name(p, id, sizeof(id));
    dbgx_pb cc, node, meta;
    pb_init(&cc);
    pb_init(&node);
    pb_init(&meta);
    pb_str(&node, 1, id);
    pb_struct_str(&meta, "CLUSTER_ID", p->cluster_id ? p->cluster_id : "Kubernetes");
    pb_struct_str(&meta, "ISTIO_VERSION", p->istio_version);
    pb_struct_str(&meta, "NAMESPACE", p->ns);
    pb_msg(&node, 3, &meta);
    pb_msg(&cc, 1, &node);
    int order[XT_COUNT], n = 0;
    for (int t = 0; t < XT_COUNT; t++)
        if (st->t[t].watched)
            order[n++] = t;
    qsort(order, (size_t)n, sizeof(int), cmp_type_idx); /* istiod sorts by type URL */
    for (int i = 0; i < n; i++) {
        const xds_type_state *ts = &st->t[order[i]];
        dbgx_pb g;
        pb_init(&g);
        pb_str(&g, 1, xds_type_url(order[i]));
        if (ts->sent_wall_ns > 0)
            pb_time(&g, 5, ts->sent_wall_ns);
        pb_uint(&g, 6, (uint64_t)sync_status(ts));
        if (ts->last_error != NULL) {
            dbgx_pb e;
            pb_init(&e);
            if (ts->sent_wall_ns > 0)
                pb_time(&e, 2, ts->sent_wall_ns);
            pb_str(&e, 3, ts->last_error);
            pb_msg(&g, 8, &e);
        }
        pb_msg(&cc, 3, &g);
    }
    answer_add(a, id, DBGX_CLIENT_CONFIG, cc.data, cc.len);
    strbuf_free(&cc);
}

/* ---- istio.io/debug/config_dump ---- */

typedef struct xdump_ctx {
    const char *id;
    bool found;
    dbgx_answer *a;
} xdump_ctx;

/* Envoy's admin.v3 *ConfigDump messages for one stream, as istiod's connectionConfigDump
 * fills them: clusters and listeners with the section's version, routes and secrets with
 * the entries' only. Field numbers are admin/v3/{clusters,listeners,routes,secrets}.proto. */
static void xdump_visit(void *ud, const xds_stream *st)
{
    xdump_ctx *x = ud;
    if (x->found || strstr(st->conn_id, x->id) == NULL)
        return; /* istiod's getProxyConnection: the first connection ID containing it */
    x->found = true;
    for (size_t s = 0; s < sizeof dump_sections / sizeof dump_sections[0]; s++) {
        const dump_section *ds = &dump_sections[s];
        if (ds->eds)
            continue;
        const xds_type_state *ts = &st->t[ds->type];
        dbgx_pb d;
        pb_init(&d);
        if (ds->section_version)
            pb_str(&d, 1, ts->version_sent);
        for (size_t i = 0; i < ts->nknown; i++) {
            const xds_known *k = &ts->known[i];
            if (k->res == NULL)
                continue;
            dbgx_pb e;
            pb_init(&e);
            switch (ds->type) {
            case XT_CDS: /* ClustersConfigDump.dynamic_active_clusters = 3 */
                pb_str(&e, 1, ts->version_sent);
                pb_any(&e, 2, ds->type_url, k->res->bytes, k->res->len);
                pb_msg(&d, 3, &e);
                break;
            case XT_LDS: { /* ListenersConfigDump.dynamic_listeners = 3 */
                dbgx_pb as;
                pb_init(&as);
                pb_str(&as, 1, ts->version_sent);
                pb_any(&as, 2, ds->type_url, k->res->bytes, k->res->len);
                pb_str(&e, 1, k->name);
                pb_msg(&e, 2, &as);
                pb_msg(&d, 3, &e);
                break;
            }
            case XT_RDS: /* RoutesConfigDump.dynamic_route_configs = 3 */
                pb_str(&e, 1, ts->version_sent);
                pb_any(&e, 2, ds->type_url, k->res->bytes, k->res->len);
                pb_msg(&d, 3, &e);
                break;
            default: /* SecretsConfigDump.dynamic_active_secrets = 2: name and version */
                pb_str(&e, 1, k->name);
                pb_str(&e, 2, ts->version_sent);
                pb_msg(&d, 2, &e);
                break;
            }
        }
        answer_add(x->a, "", ds->admin_type, d.data, d.len);
        strbuf_free(&d);
    }
}

/* ---- istio.io/debug: the HTTP handlers, for a verified caller ---- */

/* istiod's activeNamespaceDebuggers: what a caller outside the system namespace may ask. */
static bool xdebug_open_to_all(const char *name)
{
    size_t n = strcspn(name, "?");
    return (n == 11 && strncmp(name, "config_dump", n) == 0) ||
           (n == 4 && (strncmp(name, "ndsz", n) == 0 || strncmp(name, "edsz", n) == 0));
}

/* The index of the identity the node was checked against (istiod's VerifiedIdentity), or -1
 * when the caller proved none (the plaintext port). */
static int xdebug_verified(const srv_conn *c)
{
    if (!c->secure || c->nids == 0)
        return -1;
    const char *pns = c->st.proxy->ns;
    for (int i = 0; i < c->nids; i++)
        if (pns == NULL || pns[0] == '\0' || strcmp(pns, c->id_ns[i]) == 0)
            return i;
    return 0;
}

static int xdebug_http(srv_conn *c, char *const *names, size_t nnames, dbgx_answer *a)
{
    xds_stream *st = &c->st;
    int id = xdebug_verified(c);
    if (id < 0) {
        LOG_WARN(LOG_SCOPE,
                 "proxy %s is not authorized to receive debug. Ensure you are connecting over "
                 "TLS port and are authenticated.",
                 st->proxy->id);
        st->close_code = GRPC_STATUS_UNAUTHENTICATED;
        snprintf(st->close_msg, sizeof(st->close_msg), "authentication required");
        return -1;
    }
    if (nnames != 1) {
        st->close_code = GRPC_STATUS_INVALID_ARGUMENT;
        snprintf(st->close_msg, sizeof(st->close_msg), "exactly one debug request is required");
        return -1;
    }
    const char *sys = getenv("POD_NAMESPACE");
    if (sys == NULL || sys[0] == '\0')
        sys = "istio-system"; /* istiod's default system namespace */
    if (strcmp(c->id_ns[id], sys) != 0 && !xdebug_open_to_all(names[0])) {
        st->close_code = GRPC_STATUS_PERMISSION_DENIED;
        snprintf(st->close_msg, sizeof(st->close_msg),
                 "the debug info is not available for current identity: "
                 "\"spiffe://%s/ns/%s/sa/%s\"",
                 c->sh->srv->trust_domain, c->id_ns[id], c->id_sa[id]);
        return -1;
    }
    char *target = xasprintf("/debug/%s", names[0]);
    dbg_response resp = {.status = 200};
    strbuf_init(&resp.body, DBGX_MAX_BYTES);
    dbg_call(target, &resp);
    /* as istiod: the handler's body, whatever its status */
    answer_add(a, names[0], DBGX_TYPE, resp.body.data, resp.body.len);
    strbuf_free(&resp.body);
    free(target);
    return 0;
}

/* ---- the response ---- */

static void xdebug_nonce(char *out, size_t n)
{
    static _Atomic uint64_t counter;
    snprintf(out, n, "debug-%" PRIu64 "-%" PRIx64, ++counter, (uint64_t)util_wall_ns());
}

/* Wraps the answer in a DiscoveryResponse (version 1, resources 2, type_url 4, nonce 5,
 * control_plane 6) or a DeltaDiscoveryResponse (system_version_info 1, resources 2 as
 * Resource {version 1, resource 2, name 3}, type_url 4, nonce 5, control_plane 7). */
static xds_msg *xdebug_msg(const xds_stream *st, const char *version, const char *type_url,
                           const dbgx_answer *a)
{
    dbgx_pb m, cp;
    pb_init(&m);
    pb_init(&cp);
    pb_str(&m, 1, version);
    for (size_t i = 0; i < a->n; i++) {
        if (!st->delta) {
            pb_bytes(&m, 2, a->v[i].any.data, a->v[i].any.len);
            continue;
        }
        dbgx_pb r;
        pb_init(&r);
        pb_str(&r, 1, version);
        pb_bytes(&r, 2, a->v[i].any.data, a->v[i].any.len);
        pb_str(&r, 3, a->v[i].name);
        pb_msg(&m, 2, &r);
    }
    pb_str(&m, 4, type_url);
    char nonce[64];
    xdebug_nonce(nonce, sizeof(nonce));
    pb_str(&m, 5, nonce);
    char *id = dbgx_control_plane_id();
    pb_str(&cp, 1, id);
    free(id);
    pb_msg(&m, st->delta ? 7 : 6, &cp);
    xds_msg *out = xcalloc(1, sizeof(*out));
    out->type = -1; /* never replaced in the outbox by a response of a served type */
    size_t len = 0;
    out->buf = (uint8_t *)strbuf_steal(&m, &len);
    out->len = out->cap = out->total = len;
    out->segs = xcalloc(1, sizeof(*out->segs));
    out->segs[0] = (xds_seg){0, len, NULL};
    out->nsegs = out->capsegs = len > 0 ? 1 : 0;
    return out;
}

bool xds_debug_type(const char *type_url)
{
    return type_url != NULL && strncmp(type_url, DBGX_TYPE, strlen(DBGX_TYPE)) == 0;
}

int srv_debug_request(srv_conn *c, const void *req, mesh_snapshot *snap)
{
    xds_stream *st = &c->st;
    const void *node;
    const char *type_url;
    char *const *names;
    size_t nnames;
    if (st->delta) {
        const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *d = req;
        node = d->node;
        type_url = d->type_url;
        names = d->resource_names_subscribe;
        nnames = d->n_resource_names_subscribe;
    } else {
        const Envoy__Service__Discovery__V3__DiscoveryRequest *r = req;
        node = r->node;
        type_url = r->type_url;
        names = r->resource_names;
        nnames = r->n_resource_names;
    }
    pthread_mutex_lock(&c->sh->lock);
    int rc = xds_stream_identify(st, &c->sh->srv->env, node);
    pthread_mutex_unlock(&c->sh->lock);
    if (rc != 0)
        return -1;
    /* Every debug request is answered, whatever its response_nonce, as istiod does: istioctl's
     * client (pkg/adsc) puts a nonce on every request, its first included, and never
     * acknowledges a debug answer. */
    dbgx_answer a = {0};
    if (strcmp(type_url, DBGX_SYNCZ) == 0) {
        xds_server_visit(c->sh->srv, xsyncz_visit, &a);
    } else if (strcmp(type_url, DBGX_CONFIG_DUMP) == 0) {
        if (nnames == 1) {
            xdump_ctx x = {.id = names[0], .a = &a};
            xds_server_visit(c->sh->srv, xdump_visit, &x);
            if (!x.found)
                LOG_INFO(LOG_SCOPE,
                         "%s failed: config dump could not find connection for "
                         "proxyID \"%s\"",
                         DBGX_CONFIG_DUMP, names[0]);
        } else {
            LOG_INFO(LOG_SCOPE, "%s with %zu ResourceNames", DBGX_CONFIG_DUMP, nnames);
        }
    } else if (strcmp(type_url, DBGX_TYPE) == 0) {
        rc = xdebug_http(c, names, nnames, &a);
    } else {
        /* istiod's StatusGen answers any other istio.io/debug/ type with no resources */
    }
    if (rc == 0)
        xds_stream_queue(st, xdebug_msg(st, snap ? snap->version_str : "", type_url, &a));
    answer_free(&a);
    return rc;
}
