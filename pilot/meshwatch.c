/* meshwatch: see meshwatch.h. */
#include "pilot/meshwatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/cfgdir/filewatch.h"
#include "pilot/model/debug_model.h"

#define MW_LOG "default"
#define MW_CONFIGMAP "istio"
#define MW_KEY "mesh"

struct pilot_meshwatch {
    pthread_mutex_t mu;
    char *trust_domain; /* the one in force, fixed at start (see meshwatch.h) */
    uint64_t cur_hash;  /* of the text last applied; guarded by mu */
    bool have_hash;
    model *m;
    xds_server *xds;
    wh_injector *winj; /* guarded by mu; NULL: no webhooks */
    char *cm_ns;       /* follow ConfigMap cm_ns/istio; NULL = not */
    cfgdir_filewatch *fw;
    source_sink next;
};

/* /debug/mesh shows what is in force: the text as written, with istiod's defaults filled
 * in (it parsed a moment ago, so it parses again). */
static void mw_show(const char *text, size_t len, const char *root_ns, const char *trust_domain)
{
    cJSON **docs = NULL;
    size_t ndocs = 0;
    char err[64];
    if (yaml_to_json_docs(text, len, &docs, &ndocs, err, sizeof err) != 0)
        ndocs = 0;
    model_debug_set_mesh(ndocs ? docs[0] : NULL, root_ns, trust_domain);
    for (size_t i = 0; i < ndocs; i++)
        cJSON_Delete(docs[i]);
    free(docs);
}

/* One new version of the mesh config text from `where`; applied whole or refused whole. */
static void mw_apply_text(pilot_meshwatch *w, const char *text, size_t len, const char *where)
{
    uint64_t h = util_hash64(text, len, 0);
    pilot_mesh nm;
    char err[512];
    pthread_mutex_lock(&w->mu);
    if (w->have_hash && h == w->cur_hash)
        goto out; /* the same bytes again (a resync, a touch) */
    if (flags_mesh_parse(text, len, where, &nm, err, sizeof err) != 0) {
        LOG_ERR(MW_LOG, "mesh config refused, the last good one stays in force: %s", err);
        goto out;
    }
    if (strcmp(nm.trust_domain, w->trust_domain) != 0)
        LOG_WARN(MW_LOG,
                 "%s: trustDomain %s -> %s takes effect at the next start (the CA signs "
                 "for %s); the rest is applied now",
                 where, w->trust_domain, nm.trust_domain, w->trust_domain);
    /* generators before the model: the full push the model makes must find them */
    xds_server_set_mesh(w->xds, &nm.mesh_authz, &nm.mesh_telemetry, nm.outbound_mode);
    model_set_mesh(w->m, nm.root_namespace, nm.auto_mtls_off, &nm.export_defaults, &nm.ingress);
    wh_injector_set_proxy_config(w->winj, nm.default_config); /* the next injections */
    mw_show(text, len, nm.root_namespace, w->trust_domain);
    flags_mesh_clear(&nm);
    w->cur_hash = h;
    w->have_hash = true;
    LOG_INFO(MW_LOG, "mesh config reloaded from %s: full push", where);
out:
    pthread_mutex_unlock(&w->mu);
}

static void mw_file_changed(void *ud, const char *path, const char *text, size_t len)
{
    char where[160];
    snprintf(where, sizeof where, "--meshConfig: %.100s", path);
    mw_apply_text(ud, text, len, where);
}

/* ---- ConfigMap istio through the Kubernetes source's sink ------------------------------ */

static bool mw_is_ours(const pilot_meshwatch *w, const cJSON *obj)
{
    if (!w->cm_ns)
        return false;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    return kind && ns && name && strcmp(kind, "ConfigMap") == 0 && strcmp(ns, w->cm_ns) == 0 &&
           strcmp(name, MW_CONFIGMAP) == 0;
}

static void mw_event(void *ud, source_event_type type, cJSON *obj, const char *origin)
{
    pilot_meshwatch *w = ud;
    if (!mw_is_ours(w, obj)) {
        w->next.event(w->next.ud, type, obj, origin);
        return;
    }
    char where[160];
    snprintf(where, sizeof where, "ConfigMap %s/%s key %s", w->cm_ns, MW_CONFIGMAP, MW_KEY);
    /* deleted, or without the key: Istio's defaults, as istiod's ConfigMap watcher */
    const char *text = "";
    if (type == SOURCE_EV_UPSERT) {
        const cJSON *v =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "data"), MW_KEY);
        if (v && !cJSON_IsString(v)) {
            LOG_ERR(MW_LOG,
                    "mesh config refused, the last good one stays in force: %s: "
                    "not a string",
                    where);
            cJSON_Delete(obj);
            return;
        }
        if (v)
            text = v->valuestring;
    }
    if (strlen(text) > FLAGS_MESH_CONFIG_MAX)
        LOG_ERR(MW_LOG,
                "mesh config refused, the last good one stays in force: %s: over %u "
                "bytes",
                where, FLAGS_MESH_CONFIG_MAX);
    else
        mw_apply_text(w, text, strlen(text), where);
    cJSON_Delete(obj);
}

static void mw_synced(void *ud, const char *name)
{
    pilot_meshwatch *w = ud;
    w->next.synced(w->next.ud, name);
}

void pilot_meshwatch_set_injector(pilot_meshwatch *w, wh_injector *wi)
{
    pthread_mutex_lock(&w->mu);
    w->winj = wi;
    pthread_mutex_unlock(&w->mu);
}

const char *pilot_meshwatch_configmap(const pilot_meshwatch *w, const char **name)
{
    *name = w->cm_ns ? MW_CONFIGMAP : NULL;
    return w->cm_ns;
}

source_sink pilot_meshwatch_sink(pilot_meshwatch *w, source_sink next)
{
    w->next = next;
    return (source_sink){.event = mw_event, .synced = mw_synced, .ud = w};
}

/* ---- lifecycle ------------------------------------------------------------------------- */

pilot_meshwatch *pilot_meshwatch_start(const pilot_flags *f, bool in_k8s, const char *system_ns,
                                       model *m, xds_server *xds)
{
    pilot_meshwatch *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    w->m = m;
    w->xds = xds;
    w->trust_domain = xstrdup(f->mesh.trust_domain);
    if (f->mesh_config && f->mesh_config[0]) {
        w->fw = cfgdir_filewatch_start(f->mesh_config, FLAGS_MESH_CONFIG_MAX, mw_file_changed, w);
        if (!w->fw) {
            pilot_meshwatch_stop(w);
            return NULL;
        }
        LOG_INFO(MW_LOG, "following --meshConfig %s", f->mesh_config);
    } else if (in_k8s) {
        w->cm_ns = xstrdup(system_ns);
        LOG_INFO(MW_LOG, "following ConfigMap %s/%s key %s", system_ns, MW_CONFIGMAP, MW_KEY);
    }
    return w;
}

void pilot_meshwatch_stop(pilot_meshwatch *w)
{
    if (!w)
        return;
    cfgdir_filewatch_stop(w->fw);
    free(w->trust_domain);
    free(w->cm_ns);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
