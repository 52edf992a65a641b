/* naming: cluster names (outbound|port|subset|host), host matching, and what a proxy may
 * see: exportTo visibility of services, VirtualServices and DestinationRules, and the keys
 * that name a proxy's view of them in the bytes cache. */
/* Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * (immutable) snapshot, so it takes no locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* ---- naming and lookups ------------------------------------------------------------------ */

char *gen_cluster_name(gen_ctx *c, uint32_t port, const char *subset, const char *host)
{
    return ga_printf(c->a, "outbound|%u|%s|%s", port, subset ? subset : "", host);
}

bool gen_parse_cluster_name(gen_ctx *c, const char *name, uint32_t *port, char **subset,
                            char **host)
{
    if (!util_has_prefix(name, "outbound|"))
        return false;
    const char *p = name + strlen("outbound|");
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    if (end == p || *end != '|' || v == 0 || v > 65535)
        return false;
    const char *sub = end + 1;
    const char *bar = strchr(sub, '|');
    if (!bar || bar[1] == '\0')
        return false;
    *port = (uint32_t)v;
    char *s = ga_alloc(c->a, (size_t)(bar - sub) + 1);
    memcpy(s, sub, (size_t)(bar - sub));
    *subset = s;
    *host = ga_strdup(c->a, bar + 1);
    return true;
}

const mesh_port *gen_service_port(const mesh_service *svc, uint32_t port)
{
    for (size_t i = 0; i < svc->nports; i++)
        if (svc->ports[i].port == port)
            return &svc->ports[i];
    return NULL;
}

const mesh_subset *gen_dr_subset(const mesh_destination_rule *dr, const char *name)
{
    if (!dr || !name)
        return NULL;
    for (size_t i = 0; i < dr->nsubsets; i++)
        if (dr->subsets[i].name && strcmp(dr->subsets[i].name, name) == 0)
            return &dr->subsets[i];
    return NULL;
}

/* Two host patterns intersect when either is "*", or one is a "*.suffix" wildcard the
 * other ends with, or they are equal. */
bool gen_host_match(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    if (strcmp(a, "*") == 0 || strcmp(b, "*") == 0)
        return true;
    if (strcmp(a, b) == 0)
        return true;
    if (a[0] == '*' && util_has_suffix(b, a + 1))
        return true;
    if (b[0] == '*' && util_has_suffix(a, b + 1))
        return true;
    return false;
}

bool gen_vs_bound_to(const mesh_virtual_service *vs, const char *gateway)
{
    if (vs->ngateways == 0)
        return strcmp(gateway, "mesh") == 0;
    for (size_t i = 0; i < vs->ngateways; i++)
        if (vs->gateways[i] && strcmp(vs->gateways[i], gateway) == 0)
            return true;
    return false;
}

/* exportTo: empty or "*" everyone, "." the owner's namespace, "~" nobody, else the listed
 * namespaces. A proxy without a namespace sees everything. */
static bool gen_exported(char *const *to, size_t n, const char *owner_ns, const char *proxy_ns)
{
    if (!proxy_ns || n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        const char *e = to[i];
        if (!e)
            continue;
        if (strcmp(e, "*") == 0 || strcmp(e, proxy_ns) == 0 ||
            (strcmp(e, ".") == 0 && owner_ns && strcmp(owner_ns, proxy_ns) == 0))
            return true;
    }
    return false;
}

static bool gen_export_restricted(char *const *to, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (to[i] && strcmp(to[i], "*") != 0)
            return true;
    return false;
}

bool gen_service_exported(gen_ctx *c, const mesh_service *svc)
{
    /* proxyless gRPC keeps seeing everything exportTo hides: its LDS (gen_grpc.c) does not
     * filter by it yet, and a listener without its cluster would be worse than no
     * restriction */
    if (c->grpc || !svc)
        return true;
    char *const *to = svc->export_to;
    size_t n = svc->nexport_to;
    /* none of its own: mesh config defaultServiceExportTo */
    mesh_export_or_default(&to, &n, c->s->export_defaults.svc, c->s->export_defaults.nsvc);
    return gen_exported(to, n, svc->meta.ns, c->p->ns);
}

bool gen_service_visible(gen_ctx *c, const mesh_service *svc)
{
    return gen_service_exported(c, svc) && gen_scope_service(c, svc, 0);
}

bool gen_vs_visible(gen_ctx *c, const mesh_virtual_service *vs)
{
    if (c->grpc || !vs)
        return true;
    char *const *to = vs->export_to;
    size_t n = vs->nexport_to;
    /* none of its own: mesh config defaultVirtualServiceExportTo */
    mesh_export_or_default(&to, &n, c->s->export_defaults.vs, c->s->export_defaults.nvs);
    return gen_exported(to, n, vs->meta.ns, c->p->ns);
}

const mesh_virtual_service *gen_mesh_vs_for_host(gen_ctx *c, const char *hostname)
{
    /* Istio: an exact host wins over a wildcard; among equals the first in snapshot order. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->s->nvss; i++) {
            const mesh_virtual_service *vs = c->s->vss[i];
            if (!gen_vs_bound_to(vs, "mesh") || !gen_vs_visible(c, vs) || !gen_scope_vs(c, i))
                continue;
            for (size_t h = 0; h < vs->nhosts; h++) {
                const char *vh = vs->fqdn_hosts ? vs->fqdn_hosts[h] : vs->hosts[h];
                if (!vh)
                    continue;
                if (pass == 0 ? strcmp(vh, hostname) == 0
                              : (vh[0] == '*' && gen_host_match(vh, hostname)))
                    return vs;
            }
        }
    }
    return NULL;
}

char *gen_vs_proxy_key(gen_ctx *c, const mesh_virtual_service *vs)
{
    /* exportTo makes the VirtualService a proxy sees depend on its namespace */
    char *const *to = vs ? vs->export_to : NULL;
    size_t nto = vs ? vs->nexport_to : 0;
    mesh_export_or_default(&to, &nto, c->s->export_defaults.vs, c->s->export_defaults.nvs);
    bool uses = vs && !c->grpc && gen_export_restricted(to, nto);
    for (size_t i = 0; vs && i < vs->nhttp && !uses; i++)
        for (size_t m = 0; m < vs->http[i].nmatches && !uses; m++)
            uses = vs->http[i].matches[m].source_labels.n ||
                   (vs->http[i].matches[m].source_namespace &&
                    vs->http[i].matches[m].source_namespace[0]);
    if (!uses)
        return ga_strdup(c->a, "");
    /* the labels and namespace of the proxy decide which matches apply */
    char *k = ga_printf(c->a, "ns=%s", c->p->ns ? c->p->ns : "");
    for (size_t i = 0; i < c->p->labels.n; i++)
        k = ga_printf(c->a, "%s,%s=%s", k, c->p->labels.keys[i], c->p->labels.vals[i]);
    return k;
}

Google__Protobuf__Struct *gen_config_metadata(gen_ctx *c, Envoy__Config__Core__V3__Metadata **md,
                                              const char *kind, const char *ns, const char *name)
{
    Google__Protobuf__Struct *st = NULL;
    for (size_t i = 0; *md && i < (*md)->n_filter_metadata; i++)
        if (strcmp((*md)->filter_metadata[i]->key, "istio") == 0)
            st = (*md)->filter_metadata[i]->value;
    if (!st) {
        st = gen_struct_str(c, NULL, NULL);
        if (!*md) {
            *md = gen_filter_metadata(c, "istio", st);
        } else {
            Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *e =
                GA_MSG(c->a, Envoy__Config__Core__V3__Metadata__FilterMetadataEntry,
                       envoy__config__core__v3__metadata__filter_metadata_entry__init);
            e->key = ga_strdup(c->a, "istio");
            e->value = st;
            GA_PUSH(c->a, (*md)->filter_metadata, (*md)->n_filter_metadata, e);
        }
    }
    if (kind)
        gen_struct_set_str(c, st, "config",
                           ga_printf(c->a, "/apis/networking.istio.io/v1/namespaces/%s/%s/%s",
                                     ns ? ns : "", kind, name ? name : ""));
    return st;
}

const mesh_destination_rule *gen_dr(gen_ctx *c, const char *hostname)
{
    return mesh_snapshot_destination_rule(c->s, hostname, c->p->ns, &c->p->labels, NULL);
}

char *gen_dr_key(gen_ctx *c, const char *hostname)
{
    const char *key = NULL;
    mesh_snapshot_destination_rule(c->s, hostname, c->p->ns, &c->p->labels, &key);
    return ga_strdup(c->a, key ? key : "-");
}

char *gen_dr_selector_key(gen_ctx *c)
{
    if (!mesh_snapshot_dr_selects(c->s, c->p->ns))
        return ga_strdup(c->a, "");
    gen_sbuf b = {0};
    ga_cat(c->a, &b, "drsel=");
    for (size_t i = 0; i < c->s->ndrs; i++) {
        const mesh_destination_rule *dr = c->s->drs[i];
        if (dr->has_workload_selector && dr->meta.ns && strcmp(dr->meta.ns, c->p->ns) == 0 &&
            mesh_labels_subset(&dr->workload_selector, &c->p->labels))
            ga_cat(c->a, &b, "%s,", dr->meta.name);
    }
    return (char *)ga_sbuf_str(c->a, &b);
}
