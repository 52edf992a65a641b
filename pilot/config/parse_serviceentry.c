/* parse_serviceentry: ServiceEntry (hosts, addresses, ports, resolution, location, static
 * endpoints, workload selector). Validated the way istiod's validation webhook
 * (pilot/pkg/config/validation) would, with the reasons worded like Istio's; fields we do not model
 * are accepted and ignored (listed by mesh_unsupported_fields). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

#define MS (1000000LL)

/* ---- ServiceEntry ---------------------------------------------------------------------- */

static int parse_se_endpoint(mp_ctx *c, const cJSON *e, const char *path, mesh_service_entry *o,
                             mesh_se_endpoint *ep)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *ports, *it;
    int64_t w = 0;
    bool have = false;

    if (mp_require_obj(c, e, path) != 0)
        return -1;
    if (mp_get_str(c, e, "address", path, &ep->address) != 0 ||
        mp_get_labels(c, e, "labels", path, &ep->labels) != 0 ||
        mp_get_str(c, e, "locality", path, &ep->locality) != 0 ||
        mp_get_str(c, e, "network", path, &ep->network) != 0 ||
        mp_get_str(c, e, "serviceAccount", path, &ep->service_account) != 0 ||
        mp_get_int(c, e, "weight", path, 0, UINT32_MAX, &w, &have) != 0 ||
        mp_get_obj(c, e, "ports", path, &ports) != 0)
        return -1;
    ep->weight = have ? (uint32_t)w : 0;
    if (ports) {
        mp_path(p, path, "ports");
        cJSON_ArrayForEach(it, ports)
        {
            const char *name = it->string ? it->string : "";
            uint32_t num = 0;
            mp_path(p2, p, name);
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= 1 && it->valuedouble <= 65535) ||
                it->valuedouble != (double)(uint32_t)it->valuedouble)
                return mp_fail(c, p2, "port number must be in the range 1..65535");
            num = (uint32_t)it->valuedouble;
            bool defined = false;
            for (size_t k = 0; k < o->nports; k++)
                defined = defined || (o->ports[k].name && strcmp(o->ports[k].name, name) == 0);
            if (!defined)
                return mp_fail(c, p2, "endpoint port %.64s is not defined by the service entry",
                               name);
            char buf[16];
            snprintf(buf, sizeof buf, "%u", (unsigned)num);
            /* mesh_labels is a sorted string map: reuse it for name -> number. */
            cJSON *tmp = cJSON_CreateObject();
            for (size_t k = 0; k < ep->ports.n; k++)
                cJSON_AddStringToObject(tmp, ep->ports.keys[k], ep->ports.vals[k]);
            cJSON_AddStringToObject(tmp, name, buf);
            mesh_labels_free(&ep->ports);
            mesh_labels_from_json(tmp, &ep->ports);
            cJSON_Delete(tmp);
        }
    }
    return 0;
}

int mp_parse_service_entry(mp_ctx *c, const cJSON *obj, mesh_service_entry *o)
{
    static const struct {
        const char *name;
        mesh_resolution r;
    } resolutions[] = {
        {"NONE", MESH_RESOLUTION_PASSTHROUGH},
        {"STATIC", MESH_RESOLUTION_CLIENT_SIDE_LB},
        {"DNS", MESH_RESOLUTION_DNS},
        {"DNS_ROUND_ROBIN", MESH_RESOLUTION_DNS_ROUND_ROBIN},
    };
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *spec, *arr, *it, *ws;
    char *loc = NULL, *res = NULL;
    size_t i;
    int rc = -1;

    if (mp_get_spec(c, obj, &spec) != 0)
        goto out;
    if (mp_get_strv(c, spec, "hosts", "spec", &o->hosts, &o->nhosts) != 0)
        goto out;
    if (!o->nhosts) {
        mp_fail(c, "spec.hosts", "service entry must have at least one host");
        goto out;
    }
    for (i = 0; i < o->nhosts; i++) {
        mp_pathi(p, "spec", "hosts", i);
        if (strcmp(o->hosts[i], "*") == 0) {
            mp_fail(c, p, "invalid host *");
            goto out;
        }
        const char *why = mp_check_wildcard_domain(o->hosts[i]);
        if (why) {
            mp_fail(c, p, "%s: %.128s", why, o->hosts[i]);
            goto out;
        }
    }
    if (mp_get_strv(c, spec, "addresses", "spec", &o->addresses, &o->naddresses) != 0)
        goto out;
    for (i = 0; i < o->naddresses; i++)
        if (!mp_is_cidr_or_ip(o->addresses[i])) {
            mp_fail(c, mp_pathi(p, "spec", "addresses", i), "invalid address %.64s",
                    o->addresses[i]);
            goto out;
        }

    /* No ports is valid (istiod: a host known only by name, e.g. for DNS proxying). */
    if (mp_get_arr(c, spec, "ports", "spec", &arr) != 0)
        goto out;
    if (arr && arr->child)
        o->ports = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->ports);
    FOR_EACH_OBJ(c, arr, "spec", "ports", i, it)
    {
        mesh_port *sp = &o->ports[i];
        char *proto = NULL;
        bool have = false;
        o->nports = i + 1;
        mp_pathi(p, "spec", "ports", i);
        if (mp_require_obj(c, it, p) != 0 ||
            mp_get_port(c, it, "number", p, &sp->port, &have) != 0 ||
            mp_get_port(c, it, "targetPort", p, &sp->target_port, NULL) != 0 ||
            mp_get_str(c, it, "name", p, &sp->name) != 0 ||
            mp_get_str(c, it, "protocol", p, &proto) != 0)
            goto out;
        if (!have) {
            free(proto);
            mp_fail(c, mp_path(p2, p, "number"), "port number is required");
            goto out;
        }
        if (sp->name && !mp_is_dns1123_label(sp->name)) {
            free(proto);
            mp_fail(c, mp_path(p2, p, "name"), "invalid port name: %.64s", sp->name);
            goto out;
        }
        if (proto && *proto) { /* "" is unset: sniffed, like no protocol at all */
            sp->protocol = mesh_protocol_parse(proto);
            if (sp->protocol == MESH_PROTO_UNSUPPORTED) {
                mp_fail(c, mp_path(p2, p, "protocol"), "%.32s is not a valid protocol", proto);
                free(proto);
                goto out;
            }
            free(proto);
        } else {
            free(proto);
            sp->protocol = mesh_protocol_from_port(sp->name, NULL);
        }
        for (size_t k = 0; k < i; k++) {
            if (o->ports[k].port == sp->port) {
                mp_fail(c, mp_path(p2, p, "number"), "service entry port %u already defined",
                        (unsigned)sp->port);
                goto out;
            }
            if (sp->name && o->ports[k].name && strcmp(sp->name, o->ports[k].name) == 0) {
                mp_fail(c, mp_path(p2, p, "name"), "service entry port name %.64s already defined",
                        sp->name);
                goto out;
            }
        }
    }

    if (mp_get_str(c, spec, "location", "spec", &loc) != 0 ||
        mp_get_str(c, spec, "resolution", "spec", &res) != 0)
        goto out;
    o->mesh_external = true;
    if (loc && strcmp(loc, "MESH_INTERNAL") == 0) {
        o->mesh_external = false;
    } else if (loc && strcmp(loc, "MESH_EXTERNAL") != 0) {
        mp_fail(c, "spec.location", "unknown location %.32s", loc);
        goto out;
    }
    o->resolution = MESH_RESOLUTION_PASSTHROUGH;
    if (res) {
        size_t k;
        for (k = 0; k < sizeof resolutions / sizeof resolutions[0]; k++)
            if (strcmp(resolutions[k].name, res) == 0)
                break;
        if (k == sizeof resolutions / sizeof resolutions[0]) {
            mp_fail(c, "spec.resolution", "unknown resolution %.32s", res);
            goto out;
        }
        o->resolution = resolutions[k].r;
    }

    if (mp_get_obj(c, spec, "workloadSelector", "spec", &ws) != 0)
        goto out;
    if (ws && mp_get_labels(c, ws, "labels", "spec.workloadSelector", &o->workload_selector) != 0)
        goto out;
    if (ws && mp_check_selector(c, "spec.workloadSelector.labels", &o->workload_selector) != 0)
        goto out;
    if (ws && o->workload_selector.n == 0)
        mp_warn(c, "spec.workloadSelector",
                "service entry: workload selector specified without labels, will be applied to "
                "all services in namespace");
    bool cidr = false;
    for (i = 0; i < o->naddresses; i++)
        cidr = cidr || strchr(o->addresses[i], '/');
    if (cidr && o->resolution != MESH_RESOLUTION_PASSTHROUGH &&
        o->resolution != MESH_RESOLUTION_CLIENT_SIDE_LB) {
        mp_fail(c, "spec.addresses",
                "CIDR addresses are allowed only for NONE/STATIC resolution types");
        goto out;
    }

    if (mp_get_arr(c, spec, "endpoints", "spec", &arr) != 0)
        goto out;
    if (arr && arr->child) {
        if (ws) {
            mp_fail(c, "spec",
                    "only one of WorkloadSelector or Endpoints is allowed in Service Entry");
            goto out;
        }
        o->endpoints = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->endpoints);
        FOR_EACH_OBJ(c, arr, "spec", "endpoints", i, it)
        {
            mesh_se_endpoint *ep = &o->endpoints[i];
            o->nendpoints = i + 1;
            mp_pathi(p, "spec", "endpoints", i);
            if (parse_se_endpoint(c, it, p, o, ep) != 0)
                goto out;
            mp_path(p2, p, "address");
            if (!ep->address || !*ep->address) {
                mp_fail(c, p2, "endpoint address is required");
                goto out;
            }
            bool unix_sock = util_has_prefix(ep->address, "unix://");
            if (o->resolution == MESH_RESOLUTION_CLIENT_SIDE_LB && !unix_sock &&
                !mp_is_ip(ep->address)) {
                mp_fail(c, p2, "endpoint address %.128s is not a valid IP address", ep->address);
                goto out;
            }
            if ((o->resolution == MESH_RESOLUTION_DNS ||
                 o->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN) &&
                !unix_sock && !mp_is_ip(ep->address) && mp_check_wildcard_domain(ep->address)) {
                mp_fail(c, p2, "endpoint address %.128s is not a valid FQDN or IP address",
                        ep->address);
                goto out;
            }
        }
    }

    if (ws && o->resolution != MESH_RESOLUTION_CLIENT_SIDE_LB)
        mp_warn(c, "spec.workloadSelector",
                "workloadSelector should not be set when resolution mode is %s",
                o->resolution == MESH_RESOLUTION_PASSTHROUGH ? "NONE"
                : o->resolution == MESH_RESOLUTION_DNS       ? "DNS"
                                                             : "DNS_ROUND_ROBIN");
    switch (o->resolution) {
    case MESH_RESOLUTION_PASSTHROUGH:
        if (o->nendpoints) {
            mp_fail(c, "spec.endpoints",
                    "no endpoints should be provided for resolution type none");
            goto out;
        }
        break;
    case MESH_RESOLUTION_CLIENT_SIDE_LB:
        if (!o->nendpoints && !ws) {
            mp_fail(c, "spec.endpoints",
                    "endpoints must be provided if service entry discovery mode is static");
            goto out;
        }
        break;
    case MESH_RESOLUTION_DNS:
    case MESH_RESOLUTION_DNS_ROUND_ROBIN:
        if (!o->nendpoints) {
            for (i = 0; i < o->nhosts; i++)
                if (strchr(o->hosts[i], '*')) {
                    mp_fail(c, mp_pathi(p, "spec", "hosts", i),
                            "hosts can not be wildcards when resolution is DNS and there are no "
                            "endpoints");
                    goto out;
                }
        }
        if (o->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN && o->nendpoints > 1) {
            mp_fail(c, "spec.endpoints",
                    "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN");
            goto out;
        }
        break;
    }
    if (mp_parse_export_to(c, spec, &o->export_to, &o->nexport_to) != 0)
        goto out;
    rc = 0;
out:
    free(loc);
    free(res);
    return rc;
}
