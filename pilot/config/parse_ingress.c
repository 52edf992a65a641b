/* Kubernetes Ingress and IngressClass (networking.k8s.io/v1): the fields istiod's ingress
 * controller (pilot/pkg/config/kube/ingress) reads, kept as written. The API server has
 * validated the objects already; we check types and shapes so a config-directory file
 * gets the same clear error. The conversion into a Gateway and VirtualServices is the
 * model's (pilot/model/ingress.c): it needs mesh config and the Services. */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

static int ing_path(mp_ctx *c, const cJSON *it, const char *p, mesh_ingress_path *o)
{
    char p2[MP_PATH_MAX], p3[MP_PATH_MAX];
    char *type = NULL;
    const cJSON *backend, *svc, *port;
    int rc = -1;
    if (!cJSON_IsObject(it)) {
        mp_fail(c, p, "must be an object");
        goto out;
    }
    if (mp_get_str(c, it, "path", p, &o->path) != 0 ||
        mp_get_str(c, it, "pathType", p, &type) != 0 ||
        mp_get_obj(c, it, "backend", p, &backend) != 0)
        goto out;
    if (!type || strcmp(type, "ImplementationSpecific") == 0)
        o->type = MESH_INGRESS_PATH_IMPLEMENTATION_SPECIFIC;
    else if (strcmp(type, "Exact") == 0)
        o->type = MESH_INGRESS_PATH_EXACT;
    else if (strcmp(type, "Prefix") == 0)
        o->type = MESH_INGRESS_PATH_PREFIX;
    else {
        mp_fail(c, mp_path(p2, p, "pathType"),
                "%.32s: want Exact, Prefix or ImplementationSpecific", type);
        goto out;
    }
    if (!backend) {
        mp_fail(c, mp_path(p2, p, "backend"), "required");
        goto out;
    }
    mp_path(p2, p, "backend");
    if (mp_get_obj(c, backend, "service", p2, &svc) != 0)
        goto out;
    if (svc) {
        mp_path(p3, p2, "service");
        if (mp_get_str(c, svc, "name", p3, &o->service) != 0 ||
            mp_get_obj(c, svc, "port", p3, &port) != 0)
            goto out;
        if (!o->service || !*o->service) {
            mp_fail(c, mp_path(p2, p3, "name"), "required");
            goto out;
        }
        char pp[MP_PATH_MAX];
        mp_path(pp, p3, "port");
        bool has_num = false;
        if (mp_get_port(c, port, "number", pp, &o->port, &has_num) != 0 ||
            mp_get_str(c, port, "name", pp, &o->port_name) != 0)
            goto out;
        if (!has_num && (!o->port_name || !*o->port_name)) {
            mp_fail(c, pp, "a port number or name is required");
            goto out;
        }
    }
    rc = 0;
out:
    free(type);
    return rc;
}

int mp_parse_ingress(mp_ctx *c, const cJSON *obj, mesh_ingress *o)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *spec, *arr, *it, *dflt;
    int rc = -1;
    const char *cls = mesh_labels_get(&o->meta.annotations, "kubernetes.io/ingress.class");
    o->class_annotation = cls ? xstrdup(cls) : NULL;
    if (mp_get_obj(c, obj, "spec", "", &spec) != 0)
        goto out;
    if (mp_get_str(c, spec, "ingressClassName", "spec", &o->class_name) != 0 ||
        mp_get_obj(c, spec, "defaultBackend", "spec", &dflt) != 0)
        goto out;
    o->has_default_backend = dflt != NULL;
    if (mp_get_arr(c, spec, "tls", "spec", &arr) != 0)
        goto out;
    if (arr && cJSON_GetArraySize(arr) > 0) {
        o->tls = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->tls);
        cJSON_ArrayForEach(it, arr)
        {
            mesh_ingress_tls *t = &o->tls[o->ntls];
            mp_pathi(p, "spec", "tls", o->ntls++);
            if (!cJSON_IsObject(it)) {
                mp_fail(c, p, "must be an object");
                goto out;
            }
            if (mp_get_strv(c, it, "hosts", p, &t->hosts, &t->nhosts) != 0 ||
                mp_get_str(c, it, "secretName", p, &t->secret_name) != 0)
                goto out;
        }
    }
    if (mp_get_arr(c, spec, "rules", "spec", &arr) != 0)
        goto out;
    if (arr && cJSON_GetArraySize(arr) > 0) {
        o->rules = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->rules);
        cJSON_ArrayForEach(it, arr)
        {
            mesh_ingress_rule *r = &o->rules[o->nrules];
            mp_pathi(p, "spec", "rules", o->nrules++);
            const cJSON *http, *paths, *pit;
            if (!cJSON_IsObject(it)) {
                mp_fail(c, p, "must be an object");
                goto out;
            }
            if (mp_get_str(c, it, "host", p, &r->host) != 0 ||
                mp_get_obj(c, it, "http", p, &http) != 0)
                goto out;
            if (r->host && *r->host && !mp_is_dns1123_subdomain(r->host) &&
                !(r->host[0] == '*' && r->host[1] == '.' && mp_is_dns1123_subdomain(r->host + 2))) {
                mp_fail(c, mp_path(p2, p, "host"), "%.64s is not a valid host", r->host);
                goto out;
            }
            r->has_http = http != NULL;
            mp_path(p2, p, "http");
            if (mp_get_arr(c, http, "paths", p2, &paths) != 0)
                goto out;
            if (!paths || cJSON_GetArraySize(paths) == 0)
                continue;
            r->paths = xcalloc((size_t)cJSON_GetArraySize(paths), sizeof *r->paths);
            cJSON_ArrayForEach(pit, paths)
            {
                char pp[MP_PATH_MAX];
                mp_pathi(pp, p2, "paths", r->npaths);
                if (ing_path(c, pit, pp, &r->paths[r->npaths++]) != 0)
                    goto out;
            }
        }
    }
    rc = 0;
out:
    return rc;
}

int mp_parse_ingress_class(mp_ctx *c, const cJSON *obj, mesh_ingress_class *o)
{
    const cJSON *spec;
    if (mp_get_obj(c, obj, "spec", "", &spec) != 0 ||
        mp_get_str(c, spec, "controller", "spec", &o->controller) != 0)
        return -1;
    return 0;
}

void mp_free_ingress(mesh_ingress *o)
{
    free(o->class_annotation);
    free(o->class_name);
    for (size_t i = 0; i < o->ntls; i++) {
        for (size_t k = 0; k < o->tls[i].nhosts; k++)
            free(o->tls[i].hosts[k]);
        free(o->tls[i].hosts);
        free(o->tls[i].secret_name);
    }
    free(o->tls);
    for (size_t i = 0; i < o->nrules; i++) {
        for (size_t k = 0; k < o->rules[i].npaths; k++) {
            free(o->rules[i].paths[k].path);
            free(o->rules[i].paths[k].service);
            free(o->rules[i].paths[k].port_name);
        }
        free(o->rules[i].paths);
        free(o->rules[i].host);
    }
    free(o->rules);
}
