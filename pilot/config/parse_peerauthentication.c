/* parse_peerauthentication: PeerAuthentication (security.istio.io v1, v1beta1): selector,
 * mtls.mode and portLevelMtls, validated as istiod's ValidatePeerAuthentication does (the
 * reasons worded like Istio's). */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

static int pa_mode(mp_ctx *c, const cJSON *m, const char *path, mesh_mtls_mode *out)
{
    static const char *const modes[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT"};
    char *mode = NULL;
    int rc = -1;

    *out = MESH_MTLS_UNSET;
    if (mp_get_str(c, m, "mode", path, &mode) != 0)
        goto out;
    if (!mode || strcmp(mode, "UNSET") == 0) {
        rc = 0;
        goto out;
    }
    for (size_t k = 1; k < sizeof modes / sizeof modes[0]; k++) {
        if (strcmp(modes[k], mode) == 0) {
            *out = (mesh_mtls_mode)k;
            rc = 0;
            goto out;
        }
    }
    char p[MP_PATH_MAX];
    mp_fail(c, mp_path(p, path, "mode"), "unknown mTLS mode %.32s", mode);
out:
    free(mode);
    return rc;
}

static int pa_cmp_port(const void *a, const void *b)
{
    const mesh_port_mtls *x = a, *y = b;
    return x->port < y->port ? -1 : x->port > y->port;
}

int mp_parse_peer_authentication(mp_ctx *c, const cJSON *obj, mesh_peer_authentication *o)
{
    const cJSON *spec, *sel = NULL, *mtls = NULL, *plm = NULL, *it;
    char p[MP_PATH_MAX];
    size_t i;

    if (mp_get_spec(c, obj, &spec) != 0 || mp_get_obj(c, spec, "selector", "spec", &sel) != 0 ||
        mp_get_obj(c, spec, "mtls", "spec", &mtls) != 0 ||
        mp_get_obj(c, spec, "portLevelMtls", "spec", &plm) != 0)
        return -1;
    if (sel && mp_get_labels(c, sel, "matchLabels", "spec.selector", &o->selector) != 0)
        return -1;
    if (sel && mp_check_selector(c, "spec.selector.matchLabels", &o->selector) != 0)
        return -1;
    if (mtls && pa_mode(c, mtls, "spec.mtls", &o->mode) != 0)
        return -1;
    if (!plm)
        return 0;
    size_t n = (size_t)cJSON_GetArraySize(plm);
    if (o->selector.n == 0 && n)
        return mp_fail(c, "spec.portLevelMtls",
                       "mesh/namespace peer authentication cannot have port level mTLS");
    if (n == 0)
        return mp_fail(c, "spec.portLevelMtls",
                       "port level mTLS, if defined, must have at least one element");
    o->port_mtls = xcalloc(n, sizeof *o->port_mtls);
    FOR_EACH_OBJ(c, plm, "spec", "portLevelMtls", i, it)
    {
        /* a map keyed by the port number as a string */
        char *end = NULL;
        long port = it->string ? strtol(it->string, &end, 10) : 0;
        if (!it->string || !*it->string || *end || port <= 0 || port > 65535)
            return mp_fail(c, mp_path(p, "spec.portLevelMtls", it->string ? it->string : ""),
                           "port must be in range 1..65535");
        if (mp_require_obj(c, it, p) != 0)
            return -1;
        o->port_mtls[o->nport_mtls].port = (uint32_t)port;
        if (pa_mode(c, it, p, &o->port_mtls[o->nport_mtls].mode) != 0)
            return -1;
        o->nport_mtls++;
    }
    qsort(o->port_mtls, o->nport_mtls, sizeof *o->port_mtls, pa_cmp_port);
    return 0;
}

void mp_free_peer_authentication(mesh_peer_authentication *o)
{
    mesh_labels_free(&o->selector);
    free(o->port_mtls);
}
