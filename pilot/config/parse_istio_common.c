/* parse_istio_common: what the Istio kinds share: frees of every Istio object, spec and
 * exportTo, percentages, gateway references, string matches, destinations, header
 * operations and weighted route destinations. Validated the way istiod's validation webhook
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

/* ---- frees -------------------------------------------------------------------------- */

static void free_string_match(mesh_string_match *m)
{
    free(m->value);
}

static void free_header_match(mesh_header_match *h)
{
    free(h->name);
    free_string_match(&h->match);
}

static void free_header_ops(mesh_header_ops *o)
{
    for (size_t i = 0; i < o->nset; i++) {
        free(o->set[i].key);
        free(o->set[i].value);
    }
    free(o->set);
    for (size_t i = 0; i < o->nadd; i++) {
        free(o->add[i].key);
        free(o->add[i].value);
    }
    free(o->add);
    util_strv_free(o->remove, o->nremove);
}

static void free_headers(mesh_headers *h)
{
    free_header_ops(&h->request);
    free_header_ops(&h->response);
}

static void free_destination(mesh_destination *d)
{
    free(d->host);
    free(d->subset);
}

static void free_route_destinations(mesh_route_destination *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free_destination(&r[i].destination);
        free_headers(&r[i].headers);
    }
    free(r);
}

static void free_http_match(mesh_http_match *m)
{
    free(m->name);
    free_string_match(&m->uri);
    free_string_match(&m->scheme);
    free_string_match(&m->method);
    free_string_match(&m->authority);
    for (size_t i = 0; i < m->nheaders; i++)
        free_header_match(&m->headers[i]);
    free(m->headers);
    for (size_t i = 0; i < m->nquery_params; i++)
        free_header_match(&m->query_params[i]);
    free(m->query_params);
    mesh_labels_free(&m->source_labels);
    free(m->source_namespace);
    util_strv_free(m->gateways, m->ngateways);
}

static void free_http_route(mesh_http_route *r)
{
    free(r->name);
    for (size_t i = 0; i < r->nmatches; i++)
        free_http_match(&r->matches[i]);
    free(r->matches);
    free_route_destinations(r->route, r->nroute);
    free(r->redirect.uri);
    free(r->redirect.authority);
    free(r->redirect.scheme);
    free(r->direct_response.body);
    free(r->rewrite.uri);
    free(r->rewrite.authority);
    free(r->rewrite.uri_regex);
    free(r->rewrite.uri_regex_rewrite);
    free(r->retries.retry_on);
    free(r->fault_abort.grpc_status);
    free_destination(&r->mirror);
    for (size_t i = 0; i < r->cors.nallow_origins; i++)
        free_string_match(&r->cors.allow_origins[i]);
    free(r->cors.allow_origins);
    util_strv_free(r->cors.allow_methods, r->cors.nallow_methods);
    util_strv_free(r->cors.allow_headers, r->cors.nallow_headers);
    util_strv_free(r->cors.expose_headers, r->cors.nexpose_headers);
    free_headers(&r->headers);
}

static void free_l4_route(mesh_l4_route *r)
{
    for (size_t i = 0; i < r->nmatches; i++) {
        mesh_l4_match *m = &r->matches[i];
        util_strv_free(m->sni_hosts, m->nsni_hosts);
        util_strv_free(m->destination_subnets, m->ndestination_subnets);
        mesh_labels_free(&m->source_labels);
        util_strv_free(m->gateways, m->ngateways);
    }
    free(r->matches);
    free_route_destinations(r->route, r->nroute);
}

void mp_free_virtual_service(mesh_virtual_service *o)
{
    util_strv_free(o->hosts, o->nhosts);
    util_strv_free(o->fqdn_hosts, o->nhosts);
    util_strv_free(o->gateways, o->ngateways);
    for (size_t i = 0; i < o->nhttp; i++)
        free_http_route(&o->http[i]);
    free(o->http);
    for (size_t i = 0; i < o->ntcp; i++)
        free_l4_route(&o->tcp[i]);
    free(o->tcp);
    for (size_t i = 0; i < o->ntls; i++)
        free_l4_route(&o->tls[i]);
    free(o->tls);
    util_strv_free(o->export_to, o->nexport_to);
}

static void free_traffic_policy(mesh_traffic_policy *tp)
{
    free(tp->hash.http_header_name);
    free(tp->hash.http_cookie_name);
    free(tp->tls.sni);
    free(tp->tls.credential_name);
    free(tp->tls.ca_certificates);
    free(tp->tls.client_certificate);
    free(tp->tls.private_key);
    util_strv_free(tp->tls.subject_alt_names, tp->tls.nsubject_alt_names);
}

void mp_free_destination_rule(mesh_destination_rule *o)
{
    free(o->host);
    free(o->fqdn_host);
    if (o->policy) {
        free_traffic_policy(o->policy);
        free(o->policy);
    }
    for (size_t i = 0; i < o->nport_policies; i++)
        free_traffic_policy(&o->port_policies[i].policy);
    free(o->port_policies);
    for (size_t i = 0; i < o->nsubsets; i++) {
        free(o->subsets[i].name);
        mesh_labels_free(&o->subsets[i].labels);
        if (o->subsets[i].policy) {
            free_traffic_policy(o->subsets[i].policy);
            free(o->subsets[i].policy);
        }
    }
    free(o->subsets);
    mesh_labels_free(&o->workload_selector);
    util_strv_free(o->export_to, o->nexport_to);
}

void mp_free_gateway(mesh_gateway *o)
{
    mesh_labels_free(&o->selector);
    for (size_t i = 0; i < o->nservers; i++) {
        mesh_gateway_server *s = &o->servers[i];
        free(s->port_name);
        util_strv_free(s->hosts, s->nhosts);
        util_strv_free(s->host_namespaces, s->nhosts);
        free(s->name);
        free(s->tls.credential_name);
        util_strv_free(s->tls.subject_alt_names, s->tls.nsubject_alt_names);
    }
    free(o->servers);
}

void mp_free_service_entry(mesh_service_entry *o)
{
    util_strv_free(o->hosts, o->nhosts);
    util_strv_free(o->addresses, o->naddresses);
    for (size_t i = 0; i < o->nports; i++) {
        free(o->ports[i].name);
        free(o->ports[i].target_port_name);
    }
    free(o->ports);
    for (size_t i = 0; i < o->nendpoints; i++) {
        mesh_se_endpoint *e = &o->endpoints[i];
        free(e->address);
        mesh_labels_free(&e->ports);
        mesh_labels_free(&e->labels);
        free(e->locality);
        free(e->network);
        free(e->service_account);
    }
    free(o->endpoints);
    mesh_labels_free(&o->workload_selector);
    util_strv_free(o->export_to, o->nexport_to);
}

/* ---- shared pieces ------------------------------------------------------------------ */

int mp_check_selector(mp_ctx *c, const char *path, const mesh_labels *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!*l->keys[i])
            return mp_fail(c, path, "empty key is not supported in selector: \"=%.64s\"",
                           l->vals[i]);
        if (strchr(l->keys[i], '*') || strchr(l->vals[i], '*'))
            return mp_fail(c, path, "wildcard is not supported in selector: \"%.64s=%.64s\"",
                           l->keys[i], l->vals[i]);
    }
    return 0;
}

int mp_tls_mode(mp_ctx *c, const char *path, const char *mode, const char *const *names, size_t n,
                int *out)
{
    char p[MP_PATH_MAX];
    for (size_t k = 1; k < n; k++) {
        if (strcmp(names[k], mode) == 0) {
            *out = (int)k;
            return 0;
        }
    }
    return mp_fail(c, mp_path(p, path, "mode"), "unknown TLS mode %.32s", mode);
}

int mp_require_obj(mp_ctx *c, const cJSON *it, const char *path)
{
    return cJSON_IsObject(it) ? 0 : mp_fail(c, path, "must be an object");
}

int mp_get_spec(mp_ctx *c, const cJSON *obj, const cJSON **spec)
{
    if (mp_get_obj(c, obj, "spec", "", spec) != 0)
        return -1;
    if (!*spec)
        return mp_fail(c, "spec", "required");
    return 0;
}

int mp_parse_export_to(mp_ctx *c, const cJSON *spec, char ***out, size_t *n)
{
    char p[MP_PATH_MAX];
    if (mp_get_strv(c, spec, "exportTo", "spec", out, n) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        const char *e = (*out)[i];
        if (strcmp(e, ".") != 0 && strcmp(e, "*") != 0 && strcmp(e, "~") != 0 &&
            !mp_is_dns1123_label(e))
            return mp_fail(c, mp_pathi(p, "spec", "exportTo", i),
                           "exportTo must be ., * or a namespace name, got %.64s", e);
        if (strcmp(e, "*") == 0 && *n > 1)
            return mp_fail(c, mp_pathi(p, "spec", "exportTo", i),
                           "* cannot be combined with other values");
    }
    return 0;
}

/* A wrapped percentage {"value": 12.5} in [0, 100]. */
int mp_parse_percentage(mp_ctx *c, const cJSON *obj, const char *key, const char *path, double *out,
                        bool *present)
{
    char p[MP_PATH_MAX];
    const cJSON *pc;
    *present = false;
    if (mp_get_obj(c, obj, key, path, &pc) != 0)
        return -1;
    if (!pc)
        return 0;
    mp_path(p, path, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pc, "value");
    double d = 0;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v))
            return mp_fail(c, p, "value must be a number");
        d = v->valuedouble;
    }
    if (!(d >= 0 && d <= 100))
        return mp_fail(c, p, "percentage %g must be in range [0..100]", d);
    *out = d;
    *present = true;
    return 0;
}

/* "mesh", "ns/name", "./name", "name" or the old "name.ns.svc.domain" form. */
int mp_check_gateway_name(mp_ctx *c, const char *path, const char *g)
{
    if (strcmp(g, "mesh") == 0)
        return 0;
    const char *slash = strchr(g, '/');
    if (slash) {
        size_t nl = (size_t)(slash - g);
        char ns[64];
        if (nl == 0 || !slash[1] || nl >= sizeof ns)
            return mp_fail(c, path, "config namespace and gateway name cannot be empty");
        memcpy(ns, g, nl);
        ns[nl] = '\0';
        if (strcmp(ns, ".") != 0 && !mp_is_dns1123_label(ns))
            return mp_fail(c, path, "invalid value for namespace: %.64s", ns);
        if (strchr(slash + 1, '/') || !mp_is_dns1123_subdomain(slash + 1))
            return mp_fail(c, path, "invalid gateway name: %.128s", g);
        return 0;
    }
    if (!mp_is_dns1123_subdomain(g))
        return mp_fail(c, path, "invalid gateway name: %.128s", g);
    return 0;
}

char *mp_resolve_gateway(const char *g, const char *ns)
{
    if (strcmp(g, "mesh") == 0)
        return xstrdup(g);
    if (util_has_prefix(g, "./"))
        return xasprintf("%s/%s", ns, g + 2);
    if (strchr(g, '/'))
        return xstrdup(g);
    const char *dot = strchr(g, '.');
    if (dot) {
        /* "name.namespace[.svc.cluster.local]" */
        const char *dot2 = strchr(dot + 1, '.');
        size_t nsl = dot2 ? (size_t)(dot2 - dot - 1) : strlen(dot + 1);
        return xasprintf("%.*s/%.*s", (int)nsl, dot + 1, (int)(dot - g), g);
    }
    return xasprintf("%s/%s", ns, g);
}

int mp_parse_gateways(mp_ctx *c, const cJSON *obj, const char *path, char ***out, size_t *n)
{
    char p[MP_PATH_MAX];
    if (mp_get_strv(c, obj, "gateways", path, out, n) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (mp_check_gateway_name(c, mp_pathi(p, path, "gateways", i), (*out)[i]) != 0)
            return -1;
        char *r = mp_resolve_gateway((*out)[i], c->ns);
        free((*out)[i]);
        (*out)[i] = r;
    }
    return 0;
}

/* exact | prefix | regex. need_one: an empty match object is an error (uri, scheme...);
 * otherwise it means "present" (headers, queryParams). */
int mp_parse_string_match(mp_ctx *c, const cJSON *m, const char *path, bool need_one,
                          bool allow_empty_prefix, mesh_string_match *out)
{
    static const struct {
        const char *key;
        mesh_match_kind kind;
    } keys[] = {
        {"exact", MESH_MATCH_EXACT}, {"prefix", MESH_MATCH_PREFIX}, {"regex", MESH_MATCH_REGEX}};
    char p[MP_PATH_MAX];
    int found = 0;

    if (mp_require_obj(c, m, path) != 0)
        return -1;
    for (size_t k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keys[k].key);
        if (!v || cJSON_IsNull(v))
            continue;
        mp_path(p, path, keys[k].key);
        if (!cJSON_IsString(v))
            return mp_fail(c, p, "must be a string");
        if (++found > 1)
            return mp_fail(c, path, "only one of exact, prefix or regex may be set");
        if (keys[k].kind == MESH_MATCH_PREFIX && !*v->valuestring && !allow_empty_prefix)
            return mp_fail(c, p, "prefix string match should not be empty");
        if (keys[k].kind == MESH_MATCH_REGEX) {
            if (!*v->valuestring)
                return mp_fail(c, p, "regex string match should not be empty");
            const char *why = mp_check_regex(v->valuestring);
            if (why)
                return mp_fail(c, p, "%s: %.128s", why, v->valuestring);
        }
        out->kind = keys[k].kind;
        free(out->value);
        out->value = xstrdup(v->valuestring);
    }
    if (!found && need_one)
        return mp_fail(c, path, "one of exact, prefix or regex is required");
    return 0;
}

int mp_parse_destination(mp_ctx *c, const cJSON *d, const char *path, mesh_destination *out)
{
    char p[MP_PATH_MAX];
    char *host = NULL;
    const cJSON *port;
    if (mp_require_obj(c, d, path) != 0)
        return -1;
    if (mp_get_str(c, d, "host", path, &host) != 0)
        return -1;
    if (!host || !*host) {
        free(host);
        return mp_fail(c, mp_path(p, path, "host"), "destination host is required");
    }
    if (strcmp(host, "*") == 0) {
        free(host);
        return mp_fail(c, mp_path(p, path, "host"), "invalid destination host *");
    }
    const char *why = mp_check_wildcard_domain(host);
    if (why) {
        mp_fail(c, mp_path(p, path, "host"), "%s: %.128s", why, host);
        free(host);
        return -1;
    }
    out->host = mesh_resolve_host(host, c->ns, c->domain);
    free(host);
    if (mp_get_str(c, d, "subset", path, &out->subset) != 0)
        return -1;
    if (out->subset && !mp_is_dns1123_label(out->subset))
        return mp_fail(c, mp_path(p, path, "subset"), "subset name is invalid: %.64s", out->subset);
    if (mp_get_obj(c, d, "port", path, &port) != 0)
        return -1;
    if (port && mp_get_port(c, port, "number", mp_path(p, path, "port"), &out->port, NULL) != 0)
        return -1;
    return 0;
}

/* Header names for add/set/remove: never the pseudo-headers or Host (Envoy owns them),
 * except :authority/host in a request set/add. */
static int check_header_op_name(mp_ctx *c, const char *path, const char *name, bool authority_ok)
{
    if (!*name)
        return mp_fail(c, path, "header name must not be empty");
    bool authority = strcasecmp(name, ":authority") == 0 || strcasecmp(name, "host") == 0;
    if (authority && authority_ok)
        return 0;
    if (name[0] == ':' || strcasecmp(name, "host") == 0)
        return mp_fail(
            c, path, "invalid header %.64s: header cannot have \":\" prefix or be \"host\"", name);
    for (const char *q = name; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 127 || strchr("()<>@,;:\\\"/[]?={}", *q))
            return mp_fail(c, path, "%.64s is not a valid header name", name);
    return 0;
}

static int parse_kv_map(mp_ctx *c, const cJSON *obj, const char *key, const char *path,
                        bool authority_ok, mesh_kv **out, size_t *n)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *m, *it;
    if (mp_get_obj(c, obj, key, path, &m) != 0)
        return -1;
    if (!m || !m->child)
        return 0;
    mp_path(p, path, key);
    *out = xcalloc((size_t)cJSON_GetArraySize(m), sizeof **out);
    cJSON_ArrayForEach(it, m)
    {
        mp_path(p2, p, it->string ? it->string : "");
        if (!cJSON_IsString(it))
            return mp_fail(c, p2, "must be a string");
        if (check_header_op_name(c, p2, it->string, authority_ok) != 0)
            return -1;
        (*out)[*n].key = xstrdup(it->string);
        (*out)[(*n)++].value = xstrdup(it->valuestring);
    }
    return 0;
}

static int parse_header_ops(mp_ctx *c, const cJSON *obj, const char *key, const char *path,
                            bool request, mesh_header_ops *out)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *o;
    if (mp_get_obj(c, obj, key, path, &o) != 0)
        return -1;
    if (!o)
        return 0;
    mp_path(p, path, key);
    if (parse_kv_map(c, o, "set", p, request, &out->set, &out->nset) != 0 ||
        parse_kv_map(c, o, "add", p, request, &out->add, &out->nadd) != 0 ||
        mp_get_strv(c, o, "remove", p, &out->remove, &out->nremove) != 0)
        return -1;
    for (size_t i = 0; i < out->nremove; i++)
        if (check_header_op_name(c, mp_pathi(p2, p, "remove", i), out->remove[i], false) != 0)
            return -1;
    return 0;
}

int mp_parse_headers(mp_ctx *c, const cJSON *obj, const char *path, mesh_headers *out)
{
    char p[MP_PATH_MAX];
    const cJSON *h;
    if (mp_get_obj(c, obj, "headers", path, &h) != 0)
        return -1;
    if (!h)
        return 0;
    mp_path(p, path, "headers");
    if (parse_header_ops(c, h, "request", p, true, &out->request) != 0 ||
        parse_header_ops(c, h, "response", p, false, &out->response) != 0)
        return -1;
    return 0;
}

/* route: [{destination, weight, headers}]. Weights >= 0 (int32), any total but 0 across
 * several destinations; a single destination always takes all traffic (weight 100). */
int mp_parse_route_destinations(mp_ctx *c, const cJSON *obj, const char *path, bool need_one,
                                mesh_route_destination **out, size_t *n)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *arr, *it;
    size_t i;
    int64_t sum = 0;

    if (mp_get_arr(c, obj, "route", path, &arr) != 0)
        return -1;
    if (!arr || !arr->child) {
        if (need_one)
            return mp_fail(c, mp_path(p, path, "route"),
                           "at least one route destination is required");
        return 0;
    }
    *out = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof **out);
    FOR_EACH_OBJ(c, arr, path, "route", i, it)
    {
        mesh_route_destination *rd = &(*out)[i];
        *n = i + 1;
        mp_pathi(p, path, "route", i);
        if (mp_require_obj(c, it, p) != 0)
            return -1;
        const cJSON *d;
        if (mp_get_obj(c, it, "destination", p, &d) != 0)
            return -1;
        if (!d)
            return mp_fail(c, mp_path(p2, p, "destination"), "destination is required");
        if (mp_parse_destination(c, d, mp_path(p2, p, "destination"), &rd->destination) != 0)
            return -1;
        int64_t w = 0;
        if (mp_get_int(c, it, "weight", p, INT32_MIN, INT32_MAX, &w, NULL) != 0)
            return -1;
        if (w < 0)
            return mp_fail(c, mp_path(p2, p, "weight"), "weight %lld < 0", (long long)w);
        rd->weight = (int32_t)w;
        sum += w;
        if (mp_parse_headers(c, it, p, &rd->headers) != 0)
            return -1;
    }
    /* Like istiod: any total is accepted and traffic splits in proportion (the generators
     * state the total), except none at all across several destinations. */
    if (*n == 1)
        (*out)[0].weight = 100;
    else if (sum == 0)
        return mp_fail(c, mp_path(p, path, "route"), "total destination weight = 0");
    return 0;
}

/* ---- targetRef / targetRefs (security policies) ------------------------------------ */

static int mp_target_ref(mp_ctx *c, const cJSON *it, const char *path, mesh_target_ref *r)
{
    static const struct {
        const char *group, *kind;
    } allowed[] = {
        {"core", "Service"},
        {"networking.istio.io", "ServiceEntry"},
        {"gateway.networking.k8s.io", "Gateway"},
        {"gateway.networking.k8s.io", "GatewayClass"},
    };
    if (mp_require_obj(c, it, path) != 0 || mp_get_str(c, it, "group", path, &r->group) != 0 ||
        mp_get_str(c, it, "kind", path, &r->kind) != 0 ||
        mp_get_str(c, it, "name", path, &r->name) != 0 ||
        mp_get_str(c, it, "namespace", path, &r->ns) != 0)
        return -1;
    if (!r->name || !*r->name)
        return mp_fail(c, path, "targetRef name must be set");
    if (r->ns && *r->ns)
        return mp_fail(c, path,
                       "targetRef namespace must not be set; cross namespace referencing is not "
                       "supported");
    const char *g = r->group && *r->group ? r->group : "core";
    for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++)
        if (r->kind && !strcmp(allowed[k].kind, r->kind) && !strcmp(allowed[k].group, g))
            return 0;
    return mp_fail(
        c, path,
        "targetRef must be to one of [core/v1/Service networking.istio.io/v1/ServiceEntry "
        "gateway.networking.k8s.io/v1/Gateway gateway.networking.k8s.io/v1/GatewayClass] "
        "but was %.64s/%.64s",
        r->group ? r->group : "", r->kind ? r->kind : "");
}

int mp_parse_target_refs(mp_ctx *c, const cJSON *spec, mesh_target_ref **out, size_t *n)
{
    const cJSON *one = NULL, *many = NULL, *it;
    char p[MP_PATH_MAX];
    size_t i;

    if (mp_get_obj(c, spec, "targetRef", "spec", &one) != 0 ||
        mp_get_arr(c, spec, "targetRefs", "spec", &many) != 0)
        return -1;
    size_t total = (one ? 1 : 0) + (many ? (size_t)cJSON_GetArraySize(many) : 0);
    if (!total)
        return 0;
    *out = xcalloc(total, sizeof **out);
    if (one) {
        (*n)++;
        if (mp_target_ref(c, one, "spec.targetRef", &(*out)[0]) != 0)
            return -1;
    }
    FOR_EACH_OBJ(c, many, "spec", "targetRefs", i, it)
    {
        mesh_target_ref *r = &(*out)[(*n)++];
        if (mp_target_ref(c, it, mp_pathi(p, "spec", "targetRefs", i), r) != 0)
            return -1;
    }
    return 0;
}

void mp_free_target_refs(mesh_target_ref *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].group);
        free(v[i].kind);
        free(v[i].name);
        free(v[i].ns);
    }
    free(v);
}
