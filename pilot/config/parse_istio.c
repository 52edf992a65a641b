/* mesh_parse_istio: Gateway, VirtualService, DestinationRule and ServiceEntry, parsed and
 * validated the way istiod's validation webhook (pilot/pkg/config/validation) would, with
 * the reasons worded like Istio's. Fields we do not model are accepted and ignored (they
 * are listed by mesh_unsupported_fields). Stricter than Istio in one place, by design:
 * weights of a route with several destinations must sum to 100, since gRPC's xDS client
 * refuses weighted clusters that do not sum to the total weight. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/config/parse_internal.h"
#include "pilot/base/util.h"

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
    mp_strv_free(o->remove, o->nremove);
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
    mp_strv_free(m->gateways, m->ngateways);
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
    mp_strv_free(r->cors.allow_methods, r->cors.nallow_methods);
    mp_strv_free(r->cors.allow_headers, r->cors.nallow_headers);
    mp_strv_free(r->cors.expose_headers, r->cors.nexpose_headers);
    free_headers(&r->headers);
}

static void free_l4_route(mesh_l4_route *r)
{
    for (size_t i = 0; i < r->nmatches; i++) {
        mesh_l4_match *m = &r->matches[i];
        mp_strv_free(m->sni_hosts, m->nsni_hosts);
        mp_strv_free(m->destination_subnets, m->ndestination_subnets);
        mesh_labels_free(&m->source_labels);
        mp_strv_free(m->gateways, m->ngateways);
    }
    free(r->matches);
    free_route_destinations(r->route, r->nroute);
}

void mp_free_virtual_service(mesh_virtual_service *o)
{
    mp_strv_free(o->hosts, o->nhosts);
    mp_strv_free(o->fqdn_hosts, o->nhosts);
    mp_strv_free(o->gateways, o->ngateways);
    for (size_t i = 0; i < o->nhttp; i++)
        free_http_route(&o->http[i]);
    free(o->http);
    for (size_t i = 0; i < o->ntcp; i++)
        free_l4_route(&o->tcp[i]);
    free(o->tcp);
    for (size_t i = 0; i < o->ntls; i++)
        free_l4_route(&o->tls[i]);
    free(o->tls);
    mp_strv_free(o->export_to, o->nexport_to);
}

static void free_traffic_policy(mesh_traffic_policy *tp)
{
    free(tp->hash.http_header_name);
    free(tp->hash.http_cookie_name);
    free(tp->tls.sni);
    free(tp->tls.credential_name);
    mp_strv_free(tp->tls.subject_alt_names, tp->tls.nsubject_alt_names);
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
    mp_strv_free(o->export_to, o->nexport_to);
}

void mp_free_gateway(mesh_gateway *o)
{
    mesh_labels_free(&o->selector);
    for (size_t i = 0; i < o->nservers; i++) {
        mesh_gateway_server *s = &o->servers[i];
        free(s->port_name);
        mp_strv_free(s->hosts, s->nhosts);
        mp_strv_free(s->host_namespaces, s->nhosts);
        free(s->name);
        free(s->tls.credential_name);
        mp_strv_free(s->tls.subject_alt_names, s->tls.nsubject_alt_names);
    }
    free(o->servers);
}

void mp_free_service_entry(mesh_service_entry *o)
{
    mp_strv_free(o->hosts, o->nhosts);
    mp_strv_free(o->addresses, o->naddresses);
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
    mp_strv_free(o->export_to, o->nexport_to);
}

/* ---- shared pieces ------------------------------------------------------------------ */

/* Iterates an optional list of objects: "for each item of obj[key], an object". */
#define FOR_EACH_OBJ(c, arr, path, key, i, it)                                              \
    for (i = 0, it = (arr) ? (arr)->child : NULL; it; it = it->next, i++)

static int require_obj(mp_ctx *c, const cJSON *it, const char *path)
{
    return cJSON_IsObject(it) ? 0 : mp_fail(c, path, "must be an object");
}

static int get_spec(mp_ctx *c, const cJSON *obj, const cJSON **spec)
{
    if (mp_get_obj(c, obj, "spec", "", spec) != 0)
        return -1;
    if (!*spec)
        return mp_fail(c, "spec", "required");
    return 0;
}

static int parse_export_to(mp_ctx *c, const cJSON *spec, char ***out, size_t *n)
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
static int parse_percentage(mp_ctx *c, const cJSON *obj, const char *key, const char *path,
                            double *out, bool *present)
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
static int check_gateway_name(mp_ctx *c, const char *path, const char *g)
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

static char *resolve_gateway(const char *g, const char *ns)
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

static int parse_gateways(mp_ctx *c, const cJSON *obj, const char *path, char ***out, size_t *n)
{
    char p[MP_PATH_MAX];
    if (mp_get_strv(c, obj, "gateways", path, out, n) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (check_gateway_name(c, mp_pathi(p, path, "gateways", i), (*out)[i]) != 0)
            return -1;
        char *r = resolve_gateway((*out)[i], c->ns);
        free((*out)[i]);
        (*out)[i] = r;
    }
    return 0;
}

/* exact | prefix | regex. need_one: an empty match object is an error (uri, scheme...);
 * otherwise it means "present" (headers, queryParams). */
static int parse_string_match(mp_ctx *c, const cJSON *m, const char *path, bool need_one,
                              bool allow_empty_prefix, mesh_string_match *out)
{
    static const struct {
        const char *key;
        mesh_match_kind kind;
    } keys[] = { { "exact", MESH_MATCH_EXACT },
                 { "prefix", MESH_MATCH_PREFIX },
                 { "regex", MESH_MATCH_REGEX } };
    char p[MP_PATH_MAX];
    int found = 0;

    if (require_obj(c, m, path) != 0)
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

static int parse_destination(mp_ctx *c, const cJSON *d, const char *path, mesh_destination *out)
{
    char p[MP_PATH_MAX];
    char *host = NULL;
    const cJSON *port;
    if (require_obj(c, d, path) != 0)
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
        return mp_fail(c, path, "invalid header %.64s: header cannot have \":\" prefix or be \"host\"", name);
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
    cJSON_ArrayForEach(it, m) {
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

static int parse_headers(mp_ctx *c, const cJSON *obj, const char *path, mesh_headers *out)
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

/* route: [{destination, weight, headers}]. Weights 0..100; with several destinations they
 * must sum to 100; a single destination always takes all traffic (weight 100). */
static int parse_route_destinations(mp_ctx *c, const cJSON *obj, const char *path,
                                    bool need_one, mesh_route_destination **out, size_t *n)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *arr, *it;
    size_t i;
    int64_t sum = 0;

    if (mp_get_arr(c, obj, "route", path, &arr) != 0)
        return -1;
    if (!arr || !arr->child) {
        if (need_one)
            return mp_fail(c, mp_path(p, path, "route"), "at least one route destination is required");
        return 0;
    }
    *out = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof **out);
    FOR_EACH_OBJ(c, arr, path, "route", i, it) {
        mesh_route_destination *rd = &(*out)[i];
        *n = i + 1;
        mp_pathi(p, path, "route", i);
        if (require_obj(c, it, p) != 0)
            return -1;
        const cJSON *d;
        if (mp_get_obj(c, it, "destination", p, &d) != 0)
            return -1;
        if (!d)
            return mp_fail(c, mp_path(p2, p, "destination"), "destination is required");
        if (parse_destination(c, d, mp_path(p2, p, "destination"), &rd->destination) != 0)
            return -1;
        int64_t w = 0;
        if (mp_get_int(c, it, "weight", p, INT32_MIN, INT32_MAX, &w, NULL) != 0)
            return -1;
        if (w < 0 || w > 100)
            return mp_fail(c, mp_path(p2, p, "weight"), "weight %lld must be in range [0..100]",
                           (long long)w);
        rd->weight = (int32_t)w;
        sum += w;
        if (parse_headers(c, it, p, &rd->headers) != 0)
            return -1;
    }
    if (*n == 1) {
        (*out)[0].weight = 100;
    } else if (sum != 100) {
        mp_pathi(p, path, "route", *n - 1);
        return mp_fail(c, mp_path(p2, p, "weight"), "weights sum to %lld, want 100", (long long)sum);
    }
    return 0;
}

/* ---- VirtualService ------------------------------------------------------------------ */

static int parse_header_matches(mp_ctx *c, const cJSON *m, const char *key, const char *path,
                                bool invert, mesh_header_match **out, size_t *n)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *hm, *it;
    if (mp_get_obj(c, m, key, path, &hm) != 0)
        return -1;
    if (!hm || !hm->child)
        return 0;
    mp_path(p, path, key);
    *out = xrealloc(*out, (*n + (size_t)cJSON_GetArraySize(hm)) * sizeof **out);
    cJSON_ArrayForEach(it, hm) {
        const char *name = it->string ? it->string : "";
        mp_path(p2, p, name);
        mesh_header_match *h = &(*out)[*n];
        *h = (mesh_header_match){ 0 };
        (*n)++;
        if (!*name)
            return mp_fail(c, p2, "header name must not be empty");
        h->name = xstrdup(name);
        for (char *q = h->name; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        h->invert = invert;
        if (cJSON_IsNull(it)) {
            return mp_fail(c, p2, "header match %.64s cannot be null", name);
        }
        /* Istio: in withoutHeaders, regex "*" is a presence match, not a regex. */
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(it, "regex");
        if (invert && cJSON_IsString(rx) && strcmp(rx->valuestring, "*") == 0) {
            h->present = true;
            continue;
        }
        if (parse_string_match(c, it, p2, false, true, &h->match) != 0)
            return -1;
        h->present = h->match.kind == MESH_MATCH_NONE;
    }
    return 0;
}

static int parse_http_match(mp_ctx *c, const cJSON *m, const char *path, mesh_http_match *out)
{
    static const char *const fields[] = { "uri", "scheme", "method", "authority" };
    mesh_string_match *dst[] = { &out->uri, &out->scheme, &out->method, &out->authority };
    char p[MP_PATH_MAX];
    int64_t port = 0;

    if (require_obj(c, m, path) != 0)
        return -1;
    if (mp_get_str(c, m, "name", path, &out->name) != 0)
        return -1;
    for (size_t f = 0; f < 4; f++) {
        const cJSON *sm;
        if (mp_get_obj(c, m, fields[f], path, &sm) != 0)
            return -1;
        /* uri allows an empty prefix (Envoy does); the others do not. */
        if (sm && parse_string_match(c, sm, mp_path(p, path, fields[f]), true, f == 0, dst[f]) != 0)
            return -1;
    }
    if (parse_header_matches(c, m, "headers", path, false, &out->headers, &out->nheaders) != 0 ||
        parse_header_matches(c, m, "withoutHeaders", path, true, &out->headers, &out->nheaders) != 0 ||
        parse_header_matches(c, m, "queryParams", path, false, &out->query_params,
                             &out->nquery_params) != 0)
        return -1;
    if (mp_get_int(c, m, "port", path, 0, 65535, &port, NULL) != 0)
        return -1;
    out->port = (uint32_t)port;
    if (mp_get_labels(c, m, "sourceLabels", path, &out->source_labels) != 0 ||
        mp_get_str(c, m, "sourceNamespace", path, &out->source_namespace) != 0 ||
        parse_gateways(c, m, path, &out->gateways, &out->ngateways) != 0 ||
        mp_get_bool(c, m, "ignoreUriCase", path, &out->ignore_uri_case, NULL) != 0)
        return -1;
    if (out->source_namespace && !mp_is_dns1123_label(out->source_namespace))
        return mp_fail(c, mp_path(p, path, "sourceNamespace"), "sourceNamespace match %.64s is invalid",
                       out->source_namespace);
    return 0;
}

static bool retry_on_ok(const char *policy)
{
    static const char *const known[] = {
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
        "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
        "retriable-headers", "http3-post-connect-failure", "cancelled", "deadline-exceeded",
        "internal", "resource-exhausted", "unavailable",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(policy, known[i]) == 0)
            return true;
    /* A bare HTTP status code is retried as a retriable status code. */
    size_t n = strlen(policy);
    if (n != 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)policy[i]))
            return false;
    int code = atoi(policy);
    return code >= 100 && code <= 599;
}

static int parse_retries(mp_ctx *c, const cJSON *r, const char *path, mesh_http_route *out)
{
    char p[MP_PATH_MAX];
    int64_t attempts = 0;
    bool have = false;
    out->has_retries = true;
    out->retries.per_try_timeout_ns = -1;
    if (mp_get_int(c, r, "attempts", path, INT32_MIN, INT32_MAX, &attempts, &have) != 0)
        return -1;
    if (attempts < 0)
        return mp_fail(c, mp_path(p, path, "attempts"), "attempts cannot be negative");
    out->retries.attempts = (int32_t)attempts;
    if (mp_get_duration(c, r, "perTryTimeout", path, MS, &out->retries.per_try_timeout_ns, NULL) != 0 ||
        mp_get_str(c, r, "retryOn", path, &out->retries.retry_on) != 0)
        return -1;
    if (out->retries.retry_on) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", out->retries.retry_on);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            char *end = tok + strlen(tok);
            while (end > tok && end[-1] == ' ')
                *--end = '\0';
            if (!*tok)
                continue;
            if (!retry_on_ok(tok))
                return mp_fail(c, mp_path(p, path, "retryOn"), "%.64s is not a valid retryOn policy",
                               tok);
        }
    }
    return 0;
}

static int parse_fault(mp_ctx *c, const cJSON *f, const char *path, mesh_http_route *out)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *delay, *abort_;
    bool have = false;

    if (mp_get_obj(c, f, "delay", path, &delay) != 0 || mp_get_obj(c, f, "abort", path, &abort_) != 0)
        return -1;
    if (!delay && !abort_)
        return mp_fail(c, path, "fault must contain at least one of abort or delay");
    if (delay) {
        mp_path(p, path, "delay");
        int64_t pct = 0;
        bool have_pct = false;
        out->has_fault_delay = true;
        out->fault_delay.percent = 100;
        if (parse_percentage(c, delay, "percentage", p, &out->fault_delay.percent, &have) != 0)
            return -1;
        if (!have) {
            /* deprecated integer "percent" */
            if (mp_get_int(c, delay, "percent", p, 0, 100, &pct, &have_pct) != 0)
                return -1;
            if (have_pct)
                out->fault_delay.percent = (double)pct;
        }
        if (cJSON_GetObjectItemCaseSensitive(delay, "exponentialDelay"))
            return mp_fail(c, mp_path(p2, p, "exponentialDelay"), "exponentialDelay not supported yet");
        if (mp_get_duration(c, delay, "fixedDelay", p, MS, &out->fault_delay.fixed_delay_ns, &have) != 0)
            return -1;
        if (!have)
            return mp_fail(c, mp_path(p2, p, "fixedDelay"), "required");
    }
    if (abort_) {
        mp_path(p, path, "abort");
        int64_t st = 0;
        bool have_st = false;
        out->has_fault_abort = true;
        out->fault_abort.percent = 100;
        if (parse_percentage(c, abort_, "percentage", p, &out->fault_abort.percent, &have) != 0)
            return -1;
        if (mp_get_int(c, abort_, "httpStatus", p, INT32_MIN, INT32_MAX, &st, &have_st) != 0 ||
            mp_get_str(c, abort_, "grpcStatus", p, &out->fault_abort.grpc_status) != 0)
            return -1;
        if (have_st) {
            if (st < 200 || st > 599)
                return mp_fail(c, mp_path(p2, p, "httpStatus"), "HTTP status %lld is not in range 200-599",
                               (long long)st);
            out->fault_abort.http_status = (uint32_t)st;
        } else if (!out->fault_abort.grpc_status) {
            if (cJSON_GetObjectItemCaseSensitive(abort_, "http2Error"))
                return mp_fail(c, mp_path(p2, p, "http2Error"), "HTTP/2 abort fault injection not supported yet");
            return mp_fail(c, p, "abort must specify httpStatus or grpcStatus");
        }
    }
    return 0;
}

static int parse_cors(mp_ctx *c, const cJSON *cp, const char *path, mesh_http_route *out)
{
    static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                           "OPTIONS", "TRACE", "PATCH", "*" };
    char p[MP_PATH_MAX];
    const cJSON *origins, *it;
    size_t i;
    bool have = false, cred = false;

    out->has_cors = true;
    out->cors.max_age_ns = -1;
    out->cors.allow_credentials = -1;
    if (mp_get_arr(c, cp, "allowOrigins", path, &origins) != 0)
        return -1;
    if (origins && origins->child) {
        out->cors.allow_origins = xcalloc((size_t)cJSON_GetArraySize(origins), sizeof(mesh_string_match));
        FOR_EACH_OBJ(c, origins, path, "allowOrigins", i, it) {
            out->cors.nallow_origins = i + 1;
            if (parse_string_match(c, it, mp_pathi(p, path, "allowOrigins", i), true, false,
                                   &out->cors.allow_origins[i]) != 0)
                return -1;
        }
    } else {
        /* deprecated allowOrigin: exact strings */
        char **legacy = NULL;
        size_t nl = 0;
        if (mp_get_strv(c, cp, "allowOrigin", path, &legacy, &nl) != 0)
            return -1;
        if (nl) {
            out->cors.allow_origins = xcalloc(nl, sizeof(mesh_string_match));
            for (i = 0; i < nl; i++) {
                out->cors.allow_origins[i].kind = MESH_MATCH_EXACT;
                out->cors.allow_origins[i].value = legacy[i];
            }
            out->cors.nallow_origins = nl;
            free(legacy);
        }
    }
    if (mp_get_strv(c, cp, "allowMethods", path, &out->cors.allow_methods, &out->cors.nallow_methods) != 0 ||
        mp_get_strv(c, cp, "allowHeaders", path, &out->cors.allow_headers, &out->cors.nallow_headers) != 0 ||
        mp_get_strv(c, cp, "exposeHeaders", path, &out->cors.expose_headers,
                    &out->cors.nexpose_headers) != 0)
        return -1;
    for (i = 0; i < out->cors.nallow_methods; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++)
            ok = ok || strcmp(methods[k], out->cors.allow_methods[i]) == 0;
        if (!ok)
            return mp_fail(c, mp_pathi(p, path, "allowMethods", i), "%.32s is not a valid HTTP method",
                           out->cors.allow_methods[i]);
    }
    if (mp_get_duration(c, cp, "maxAge", path, MS, &out->cors.max_age_ns, NULL) != 0)
        return -1;
    if (out->cors.max_age_ns > 0 && out->cors.max_age_ns % 1000000000LL != 0)
        return mp_fail(c, mp_path(p, path, "maxAge"), "max_age duration is accurate only to seconds precision");
    if (mp_get_bool(c, cp, "allowCredentials", path, &cred, &have) != 0)
        return -1;
    if (have)
        out->cors.allow_credentials = cred ? 1 : 0;
    return 0;
}

static int parse_http_route(mp_ctx *c, const cJSON *h, const char *path, bool delegate_vs,
                            mesh_http_route *r)
{
    char p[MP_PATH_MAX];
    const cJSON *arr, *it, *o;
    size_t i;
    bool have = false;

    r->timeout_ns = -1;
    r->mirror_percent = 100;
    if (require_obj(c, h, path) != 0)
        return -1;
    if (mp_get_str(c, h, "name", path, &r->name) != 0)
        return -1;

    if (mp_get_arr(c, h, "match", path, &arr) != 0)
        return -1;
    if (arr && arr->child) {
        r->matches = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *r->matches);
        FOR_EACH_OBJ(c, arr, path, "match", i, it) {
            r->nmatches = i + 1;
            if (parse_http_match(c, it, mp_pathi(p, path, "match", i), &r->matches[i]) != 0)
                return -1;
        }
    }

    const cJSON *delegate = cJSON_GetObjectItemCaseSensitive(h, "delegate");
    const cJSON *route = cJSON_GetObjectItemCaseSensitive(h, "route");
    const cJSON *redirect = cJSON_GetObjectItemCaseSensitive(h, "redirect");
    const cJSON *direct = cJSON_GetObjectItemCaseSensitive(h, "directResponse");
    const cJSON *fault = cJSON_GetObjectItemCaseSensitive(h, "fault");
    const cJSON *rewrite = cJSON_GetObjectItemCaseSensitive(h, "rewrite");
    bool has_route = cJSON_IsArray(route) && route->child;
    redirect = cJSON_IsNull(redirect) ? NULL : redirect;
    direct = cJSON_IsNull(direct) ? NULL : direct;
    fault = cJSON_IsNull(fault) ? NULL : fault;
    rewrite = cJSON_IsNull(rewrite) ? NULL : rewrite;
    delegate = cJSON_IsNull(delegate) ? NULL : delegate;

    /* Conflicts first, with Istio's wording. */
    if (delegate) {
        if (delegate_vs)
            return mp_fail(c, mp_path(p, path, "delegate"), "delegate HTTP route cannot contain delegate");
        if (redirect)
            return mp_fail(c, path, "root HTTP route %.64s must not specify redirect", r->name ? r->name : "");
        if (has_route)
            return mp_fail(c, path, "root HTTP route %.64s must not specify route", r->name ? r->name : "");
        /* Delegation is accepted and ignored: the route stays empty. */
    } else if (redirect) {
        if (has_route)
            return mp_fail(c, path, "HTTP route cannot contain both route and redirect");
        if (fault)
            return mp_fail(c, path, "HTTP route cannot contain both fault and redirect");
        if (rewrite)
            return mp_fail(c, path, "HTTP route rule cannot contain both rewrite and redirect");
        if (direct)
            return mp_fail(c, path, "HTTP route rule cannot contain both direct_response and redirect");
    } else if (direct) {
        if (has_route)
            return mp_fail(c, path, "HTTP route cannot contain both route and direct_response");
        if (fault)
            return mp_fail(c, path, "HTTP route cannot contain both fault and direct_response");
        if (rewrite)
            return mp_fail(c, path, "HTTP route rule cannot contain both rewrite and direct_response");
    } else if (!has_route) {
        return mp_fail(c, path, "HTTP route, redirect or direct_response is required");
    }

    if (parse_route_destinations(c, h, path, false, &r->route, &r->nroute) != 0)
        return -1;

    if (mp_get_obj(c, h, "redirect", path, &o) != 0)
        return -1;
    if (o) {
        int64_t port = 0, code = 0;
        bool have_port = false;
        mp_path(p, path, "redirect");
        r->has_redirect = true;
        if (mp_get_str(c, o, "uri", p, &r->redirect.uri) != 0 ||
            mp_get_str(c, o, "authority", p, &r->redirect.authority) != 0 ||
            mp_get_str(c, o, "scheme", p, &r->redirect.scheme) != 0 ||
            mp_get_int(c, o, "port", p, 1, 65535, &port, &have_port) != 0 ||
            mp_get_int(c, o, "redirectCode", p, 0, INT32_MAX, &code, NULL) != 0)
            return -1;
        r->redirect.port = (uint32_t)port;
        bool derive = cJSON_GetObjectItemCaseSensitive(o, "derivePort") != NULL;
        if (!r->redirect.uri && !r->redirect.authority && !r->redirect.scheme && !have_port && !derive)
            return mp_fail(c, p, "redirect must specify URI, authority, scheme, or port");
        if (code != 0 && (code < 300 || code > 399)) {
            char p2[MP_PATH_MAX];
            return mp_fail(c, mp_path(p2, p, "redirectCode"),
                           "%lld is not a valid redirect code, must be 3xx", (long long)code);
        }
        r->redirect.redirect_code = (uint32_t)code;
    }

    if (mp_get_obj(c, h, "directResponse", path, &o) != 0)
        return -1;
    if (o) {
        int64_t st = 0;
        const cJSON *body;
        char p2[MP_PATH_MAX];
        mp_path(p, path, "directResponse");
        r->has_direct_response = true;
        if (mp_get_int(c, o, "status", p, INT32_MIN, INT32_MAX, &st, &have) != 0)
            return -1;
        if (!have || st < 200 || st > 599)
            return mp_fail(c, mp_path(p2, p, "status"), "status %lld must be in the range 200-599",
                           (long long)st);
        r->direct_response.status = (uint32_t)st;
        if (mp_get_obj(c, o, "body", p, &body) != 0)
            return -1;
        if (body && mp_get_str(c, body, "string", mp_path(p2, p, "body"), &r->direct_response.body) != 0)
            return -1;
    }

    if (rewrite) {
        mp_path(p, path, "rewrite");
        if (require_obj(c, rewrite, p) != 0)
            return -1;
        r->has_rewrite = true;
        if (mp_get_str(c, rewrite, "uri", p, &r->rewrite.uri) != 0 ||
            mp_get_str(c, rewrite, "authority", p, &r->rewrite.authority) != 0 ||
            mp_get_obj(c, rewrite, "uriRegexRewrite", p, &o) != 0)
            return -1;
        if (o) {
            char p2[MP_PATH_MAX];
            mp_path(p2, p, "uriRegexRewrite");
            if (mp_get_str(c, o, "match", p2, &r->rewrite.uri_regex) != 0 ||
                mp_get_str(c, o, "rewrite", p2, &r->rewrite.uri_regex_rewrite) != 0)
                return -1;
            if (!r->rewrite.uri_regex || !*r->rewrite.uri_regex)
                return mp_fail(c, p2, "UriRegexRewrite requires both Rewrite and Match fields to be specified");
            if (!r->rewrite.uri_regex_rewrite)
                return mp_fail(c, p2, "UriRegexRewrite requires both Rewrite and Match fields to be specified");
            const char *why = mp_check_regex(r->rewrite.uri_regex);
            if (why)
                return mp_fail(c, p2, "%s: %.128s", why, r->rewrite.uri_regex);
            if (r->rewrite.uri)
                return mp_fail(c, p, "rewrite may only contain one of URI or UriRegexRewrite");
        }
        if (!r->rewrite.uri && !r->rewrite.authority && !r->rewrite.uri_regex)
            return mp_fail(c, p, "rewrite must specify URI, authority, or uriRegexRewrite");
    }

    if (mp_get_duration(c, h, "timeout", path, MS, &r->timeout_ns, NULL) != 0)
        return -1;
    if (mp_get_obj(c, h, "retries", path, &o) != 0)
        return -1;
    if (o && parse_retries(c, o, mp_path(p, path, "retries"), r) != 0)
        return -1;
    if (fault) {
        if (require_obj(c, fault, mp_path(p, path, "fault")) != 0 || parse_fault(c, fault, p, r) != 0)
            return -1;
    }

    if (mp_get_obj(c, h, "mirror", path, &o) != 0)
        return -1;
    if (o) {
        r->has_mirror = true;
        if (parse_destination(c, o, mp_path(p, path, "mirror"), &r->mirror) != 0)
            return -1;
        if (cJSON_GetObjectItemCaseSensitive(h, "mirrors"))
            return mp_fail(c, path, "HTTP route cannot contain both mirror and mirrors");
    }
    if (parse_percentage(c, h, "mirrorPercentage", path, &r->mirror_percent, &have) != 0)
        return -1;
    if (!have) {
        int64_t pct = 0;
        bool hp = false;
        if (mp_get_int(c, h, "mirrorPercent", path, 0, 100, &pct, &hp) != 0)
            return -1;
        if (!hp && mp_get_int(c, h, "mirror_percent", path, 0, 100, &pct, &hp) != 0)
            return -1;
        if (hp)
            r->mirror_percent = (double)pct;
    }

    if (mp_get_obj(c, h, "corsPolicy", path, &o) != 0)
        return -1;
    if (o && parse_cors(c, o, mp_path(p, path, "corsPolicy"), r) != 0)
        return -1;
    return parse_headers(c, h, path, &r->headers);
}

static int parse_l4_route(mp_ctx *c, const cJSON *t, const char *path, bool tls,
                          mesh_l4_route *r)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *arr, *it;
    size_t i;

    if (require_obj(c, t, path) != 0)
        return -1;
    if (mp_get_arr(c, t, "match", path, &arr) != 0)
        return -1;
    if (tls && (!arr || !arr->child))
        return mp_fail(c, mp_path(p, path, "match"), "TLS route must have at least one match condition");
    if (arr && arr->child) {
        r->matches = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *r->matches);
        FOR_EACH_OBJ(c, arr, path, "match", i, it) {
            mesh_l4_match *m = &r->matches[i];
            int64_t port = 0;
            r->nmatches = i + 1;
            mp_pathi(p, path, "match", i);
            if (require_obj(c, it, p) != 0)
                return -1;
            if (mp_get_int(c, it, "port", p, 0, 65535, &port, NULL) != 0 ||
                mp_get_strv(c, it, "destinationSubnets", p, &m->destination_subnets,
                            &m->ndestination_subnets) != 0 ||
                mp_get_labels(c, it, "sourceLabels", p, &m->source_labels) != 0 ||
                parse_gateways(c, it, p, &m->gateways, &m->ngateways) != 0)
                return -1;
            m->port = (uint32_t)port;
            for (size_t k = 0; k < m->ndestination_subnets; k++)
                if (!mp_is_cidr_or_ip(m->destination_subnets[k]))
                    return mp_fail(c, mp_pathi(p2, p, "destinationSubnets", k),
                                   "%.64s is not a valid IP address or CIDR", m->destination_subnets[k]);
            if (tls) {
                if (mp_get_strv(c, it, "sniHosts", p, &m->sni_hosts, &m->nsni_hosts) != 0)
                    return -1;
                if (!m->nsni_hosts)
                    return mp_fail(c, mp_path(p2, p, "sniHosts"), "TLS match must have at least one SNI host");
                for (size_t k = 0; k < m->nsni_hosts; k++) {
                    const char *why = mp_check_wildcard_domain(m->sni_hosts[k]);
                    if (why && strcmp(m->sni_hosts[k], "*") != 0)
                        return mp_fail(c, mp_pathi(p2, p, "sniHosts", k), "%s: %.128s", why,
                                       m->sni_hosts[k]);
                }
            }
        }
    }
    return parse_route_destinations(c, t, path, true, &r->route, &r->nroute);
}

int mp_parse_virtual_service(mp_ctx *c, const cJSON *obj, mesh_virtual_service *o)
{
    char p[MP_PATH_MAX];
    const cJSON *spec, *arr, *it;
    size_t i;
    char **gws = NULL;
    size_t ngws = 0;
    int rc = -1;

    if (get_spec(c, obj, &spec) != 0)
        goto out;
    if (mp_get_strv(c, spec, "hosts", "spec", &o->hosts, &o->nhosts) != 0 ||
        mp_get_strv(c, spec, "gateways", "spec", &gws, &ngws) != 0)
        goto out;
    o->fqdn_hosts = o->nhosts ? xcalloc(o->nhosts, sizeof(char *)) : NULL;

    bool applies_to_mesh = ngws == 0;
    for (i = 0; i < ngws; i++) {
        if (check_gateway_name(c, mp_pathi(p, "spec", "gateways", i), gws[i]) != 0)
            goto out;
        applies_to_mesh = applies_to_mesh || strcmp(gws[i], "mesh") == 0;
    }
    /* No hosts: a delegate VirtualService (features.EnableVirtualServiceDelegate). */
    bool delegate_vs = o->nhosts == 0;
    if (delegate_vs && ngws) {
        mp_fail(c, "spec.gateways", "delegate virtual service must have no gateways specified");
        goto out;
    }
    for (i = 0; i < o->nhosts; i++) {
        const char *h = o->hosts[i];
        mp_pathi(p, "spec", "hosts", i);
        if (strcmp(h, "*") == 0) {
            if (applies_to_mesh) {
                mp_fail(c, p, "wildcard host * is not allowed for virtual services bound to the mesh gateway");
                goto out;
            }
        } else {
            const char *why = mp_check_wildcard_domain(h);
            if (why && !mp_is_ip(h)) {
                mp_fail(c, p, "%s: %.128s", why, h);
                goto out;
            }
        }
        o->fqdn_hosts[i] = mesh_resolve_host(h, c->ns, c->domain);
    }

    if (ngws == 0) {
        o->gateways = xcalloc(1, sizeof(char *));
        o->gateways[0] = xstrdup("mesh");
        o->ngateways = 1;
    } else {
        o->gateways = xcalloc(ngws, sizeof(char *));
        for (i = 0; i < ngws; i++)
            o->gateways[i] = resolve_gateway(gws[i], c->ns);
        o->ngateways = ngws;
    }

    if (mp_get_arr(c, spec, "http", "spec", &arr) != 0)
        goto out;
    if (arr && arr->child) {
        o->http = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->http);
        FOR_EACH_OBJ(c, arr, "spec", "http", i, it) {
            o->nhttp = i + 1;
            if (parse_http_route(c, it, mp_pathi(p, "spec", "http", i), delegate_vs, &o->http[i]) != 0)
                goto out;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *key = pass == 0 ? "tcp" : "tls";
        mesh_l4_route **dst = pass == 0 ? &o->tcp : &o->tls;
        size_t *nd = pass == 0 ? &o->ntcp : &o->ntls;
        if (mp_get_arr(c, spec, key, "spec", &arr) != 0)
            goto out;
        if (!arr || !arr->child)
            continue;
        if (delegate_vs) {
            mp_fail(c, mp_path(p, "spec", key), "delegate virtual service must have no %s route specified", key);
            goto out;
        }
        *dst = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof **dst);
        FOR_EACH_OBJ(c, arr, "spec", key, i, it) {
            *nd = i + 1;
            if (parse_l4_route(c, it, mp_pathi(p, "spec", key, i), pass == 1, &(*dst)[i]) != 0)
                goto out;
        }
    }
    if (!o->nhttp && !o->ntcp && !o->ntls) {
        mp_fail(c, "spec", "http, tcp or tls must be provided in virtual service");
        goto out;
    }
    if (parse_export_to(c, spec, &o->export_to, &o->nexport_to) != 0)
        goto out;
    rc = 0;
out:
    mp_strv_free(gws, ngws);
    return rc;
}

/* ---- DestinationRule ------------------------------------------------------------------ */

static int parse_lb(mp_ctx *c, const cJSON *lb, const char *path, mesh_traffic_policy *tp)
{
    static const struct {
        const char *name;
        mesh_lb lb;
    } simple[] = {
        { "UNSPECIFIED", MESH_LB_UNSET },       { "ROUND_ROBIN", MESH_LB_ROUND_ROBIN },
        { "LEAST_CONN", MESH_LB_LEAST_REQUEST }, { "LEAST_REQUEST", MESH_LB_LEAST_REQUEST },
        { "RANDOM", MESH_LB_RANDOM },           { "PASSTHROUGH", MESH_LB_PASSTHROUGH },
    };
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    char *s = NULL;
    const cJSON *ch, *o;
    int rc = -1;
    int64_t ring = 0;

    if (mp_get_str(c, lb, "simple", path, &s) != 0 || mp_get_obj(c, lb, "consistentHash", path, &ch) != 0)
        goto out;
    if (s && ch) {
        mp_fail(c, path, "only one of simple or consistentHash may be set");
        goto out;
    }
    if (s) {
        size_t k;
        for (k = 0; k < sizeof simple / sizeof simple[0]; k++)
            if (strcmp(simple[k].name, s) == 0)
                break;
        if (k == sizeof simple / sizeof simple[0]) {
            mp_fail(c, mp_path(p, path, "simple"), "unknown load balancer %.32s", s);
            goto out;
        }
        tp->lb = simple[k].lb;
    }
    if (ch) {
        mp_path(p, path, "consistentHash");
        tp->lb = MESH_LB_RING_HASH;
        if (mp_get_str(c, ch, "httpHeaderName", p, &tp->hash.http_header_name) != 0 ||
            mp_get_bool(c, ch, "useSourceIp", p, &tp->hash.use_source_ip, NULL) != 0 ||
            mp_get_int(c, ch, "minimumRingSize", p, 0, INT64_MAX, &ring, NULL) != 0 ||
            mp_get_obj(c, ch, "httpCookie", p, &o) != 0)
            goto out;
        if (o) {
            mp_path(p2, p, "httpCookie");
            int64_t ttl = 0;
            if (mp_get_str(c, o, "name", p2, &tp->hash.http_cookie_name) != 0 ||
                mp_get_duration(c, o, "ttl", p2, 0, &ttl, NULL) != 0)
                goto out;
            if (!tp->hash.http_cookie_name || !*tp->hash.http_cookie_name) {
                mp_fail(c, p2, "name required for HttpCookie");
                goto out;
            }
        }
        if (mp_get_obj(c, ch, "ringHash", p, &o) != 0)
            goto out;
        if (o && mp_get_int(c, o, "minimumRingSize", mp_path(p2, p, "ringHash"), 0, INT64_MAX, &ring, NULL) != 0)
            goto out;
        tp->hash.minimum_ring_size = (uint64_t)ring;
    }
    rc = 0;
out:
    free(s);
    return rc;
}

static int get_i32(mp_ctx *c, const cJSON *o, const char *key, const char *path, int64_t min,
                   int64_t max, int32_t *out)
{
    int64_t v = 0;
    bool have = false;
    if (mp_get_int(c, o, key, path, min, max, &v, &have) != 0)
        return -1;
    if (have)
        *out = (int32_t)v;
    return 0;
}

static int parse_tls_client(mp_ctx *c, const cJSON *t, const char *path, mesh_traffic_policy *tp)
{
    static const char *const modes[] = { "", "DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL" };
    char p[MP_PATH_MAX];
    char *mode = NULL, *cert = NULL, *key = NULL, *ca = NULL;
    int rc = -1;

    tp->has_tls = true;
    if (mp_get_str(c, t, "mode", path, &mode) != 0 ||
        mp_get_str(c, t, "sni", path, &tp->tls.sni) != 0 ||
        mp_get_str(c, t, "credentialName", path, &tp->tls.credential_name) != 0 ||
        mp_get_strv(c, t, "subjectAltNames", path, &tp->tls.subject_alt_names,
                    &tp->tls.nsubject_alt_names) != 0 ||
        mp_get_str(c, t, "clientCertificate", path, &cert) != 0 ||
        mp_get_str(c, t, "privateKey", path, &key) != 0 ||
        mp_get_str(c, t, "caCertificates", path, &ca) != 0)
        goto out;
    tp->tls.mode = MESH_TLS_DISABLE; /* the enum's zero value */
    if (mode) {
        size_t k;
        for (k = 1; k < sizeof modes / sizeof modes[0]; k++)
            if (strcmp(modes[k], mode) == 0)
                break;
        if (k == sizeof modes / sizeof modes[0]) {
            mp_fail(c, mp_path(p, path, "mode"), "unknown TLS mode %.32s", mode);
            goto out;
        }
        tp->tls.mode = (mesh_client_tls_mode)k;
    }
    bool has_cred = tp->tls.credential_name && *tp->tls.credential_name;
    if (tp->tls.mode == MESH_TLS_MUTUAL && !has_cred) {
        if (!cert || !*cert) {
            mp_fail(c, path, "client certificate required for mutual tls");
            goto out;
        }
        if (!key || !*key) {
            mp_fail(c, path, "private key required for mutual tls");
            goto out;
        }
    }
    if (tp->tls.mode == MESH_TLS_ISTIO_MUTUAL && (cert || key || ca || has_cred)) {
        mp_fail(c, path, "cannot specify client certificates or CA certificate or credentialName "
                         "if mode is ISTIO_MUTUAL");
        goto out;
    }
    rc = 0;
out:
    free(mode);
    free(cert);
    free(key);
    free(ca);
    return rc;
}

/* One traffic policy; port_out non-NULL only at the top level (portLevelSettings). */
static int parse_traffic_policy(mp_ctx *c, const cJSON *t, const char *path, mesh_traffic_policy *tp,
                                mesh_port_traffic_policy **port_out, size_t *nport_out)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *o, *o2, *arr, *it;
    size_t i;

    tp->connection_pool.tcp_max_connections = -1;
    tp->connection_pool.tcp_connect_timeout_ns = -1;
    tp->connection_pool.http1_max_pending_requests = -1;
    tp->connection_pool.http2_max_requests = -1;
    tp->connection_pool.max_requests_per_connection = -1;
    tp->connection_pool.max_retries = -1;
    tp->connection_pool.idle_timeout_ns = -1;
    tp->outlier_detection.consecutive_5xx_errors = -1;
    tp->outlier_detection.consecutive_gateway_errors = -1;
    tp->outlier_detection.interval_ns = -1;
    tp->outlier_detection.base_ejection_time_ns = -1;
    tp->outlier_detection.max_ejection_percent = -1;

    if (require_obj(c, t, path) != 0)
        return -1;
    if (mp_get_obj(c, t, "loadBalancer", path, &o) != 0)
        return -1;
    if (o && parse_lb(c, o, mp_path(p, path, "loadBalancer"), tp) != 0)
        return -1;

    if (mp_get_obj(c, t, "connectionPool", path, &o) != 0)
        return -1;
    if (o) {
        mp_path(p, path, "connectionPool");
        tp->has_connection_pool = true;
        if (mp_get_obj(c, o, "tcp", p, &o2) != 0)
            return -1;
        if (o2) {
            mp_path(p2, p, "tcp");
            if (get_i32(c, o2, "maxConnections", p2, 0, INT32_MAX,
                        &tp->connection_pool.tcp_max_connections) != 0 ||
                mp_get_duration(c, o2, "connectTimeout", p2, MS,
                                &tp->connection_pool.tcp_connect_timeout_ns, NULL) != 0)
                return -1;
        }
        if (mp_get_obj(c, o, "http", p, &o2) != 0)
            return -1;
        if (o2) {
            mp_path(p2, p, "http");
            if (get_i32(c, o2, "http1MaxPendingRequests", p2, 0, INT32_MAX,
                        &tp->connection_pool.http1_max_pending_requests) != 0 ||
                get_i32(c, o2, "http2MaxRequests", p2, 0, INT32_MAX,
                        &tp->connection_pool.http2_max_requests) != 0 ||
                get_i32(c, o2, "maxRequestsPerConnection", p2, 0, INT32_MAX,
                        &tp->connection_pool.max_requests_per_connection) != 0 ||
                get_i32(c, o2, "maxRetries", p2, 0, INT32_MAX, &tp->connection_pool.max_retries) != 0 ||
                mp_get_duration(c, o2, "idleTimeout", p2, MS, &tp->connection_pool.idle_timeout_ns,
                                NULL) != 0)
                return -1;
        }
    }

    if (mp_get_obj(c, t, "outlierDetection", path, &o) != 0)
        return -1;
    if (o) {
        int32_t legacy = -1;
        int32_t min_health = -1;
        mp_path(p, path, "outlierDetection");
        tp->has_outlier_detection = true;
        if (get_i32(c, o, "consecutiveErrors", p, 0, INT32_MAX, &legacy) != 0 ||
            get_i32(c, o, "consecutive5xxErrors", p, 0, INT32_MAX,
                    &tp->outlier_detection.consecutive_5xx_errors) != 0 ||
            get_i32(c, o, "consecutiveGatewayErrors", p, 0, INT32_MAX,
                    &tp->outlier_detection.consecutive_gateway_errors) != 0 ||
            mp_get_duration(c, o, "interval", p, MS, &tp->outlier_detection.interval_ns, NULL) != 0 ||
            mp_get_duration(c, o, "baseEjectionTime", p, MS, &tp->outlier_detection.base_ejection_time_ns,
                            NULL) != 0 ||
            get_i32(c, o, "maxEjectionPercent", p, 0, 100, &tp->outlier_detection.max_ejection_percent) != 0 ||
            get_i32(c, o, "minHealthPercent", p, 0, 100, &min_health) != 0)
            return -1;
        /* Istio maps the deprecated consecutiveErrors onto gateway errors. */
        if (legacy >= 0 && tp->outlier_detection.consecutive_gateway_errors < 0)
            tp->outlier_detection.consecutive_gateway_errors = legacy;
    }

    if (mp_get_obj(c, t, "tls", path, &o) != 0)
        return -1;
    if (o && parse_tls_client(c, o, mp_path(p, path, "tls"), tp) != 0)
        return -1;

    if (!port_out)
        return 0;
    if (mp_get_arr(c, t, "portLevelSettings", path, &arr) != 0)
        return -1;
    if (!arr || !arr->child)
        return 0;
    *port_out = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof **port_out);
    FOR_EACH_OBJ(c, arr, path, "portLevelSettings", i, it) {
        mesh_port_traffic_policy *pp = &(*port_out)[i];
        bool have = false;
        *nport_out = i + 1;
        mp_pathi(p, path, "portLevelSettings", i);
        if (require_obj(c, it, p) != 0 || mp_get_obj(c, it, "port", p, &o) != 0)
            return -1;
        if (o && mp_get_port(c, o, "number", mp_path(p2, p, "port"), &pp->port, &have) != 0)
            return -1;
        if (!have)
            return mp_fail(c, mp_path(p2, p, "port"), "portTrafficPolicy must have valid port");
        for (size_t k = 0; k < i; k++)
            if ((*port_out)[k].port == pp->port)
                return mp_fail(c, mp_path(p2, p, "port"), "duplicate port %u in portLevelSettings",
                               (unsigned)pp->port);
        if (parse_traffic_policy(c, it, p, &pp->policy, NULL, NULL) != 0)
            return -1;
    }
    return 0;
}

int mp_parse_destination_rule(mp_ctx *c, const cJSON *obj, mesh_destination_rule *o)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *spec, *t, *arr, *it, *ws;
    size_t i;

    if (get_spec(c, obj, &spec) != 0)
        return -1;
    if (mp_get_str(c, spec, "host", "spec", &o->host) != 0)
        return -1;
    if (!o->host || !*o->host)
        return mp_fail(c, "spec.host", "destination rule must have a host");
    const char *why = mp_check_wildcard_domain(o->host);
    if (why)
        return mp_fail(c, "spec.host", "%s: %.128s", why, o->host);
    o->fqdn_host = mesh_resolve_host(o->host, c->ns, c->domain);

    if (mp_get_obj(c, spec, "trafficPolicy", "spec", &t) != 0)
        return -1;
    if (t) {
        o->policy = xcalloc(1, sizeof *o->policy);
        if (parse_traffic_policy(c, t, "spec.trafficPolicy", o->policy, &o->port_policies,
                                 &o->nport_policies) != 0)
            return -1;
    }

    if (mp_get_arr(c, spec, "subsets", "spec", &arr) != 0)
        return -1;
    if (arr && arr->child) {
        o->subsets = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->subsets);
        FOR_EACH_OBJ(c, arr, "spec", "subsets", i, it) {
            mesh_subset *s = &o->subsets[i];
            o->nsubsets = i + 1;
            mp_pathi(p, "spec", "subsets", i);
            if (require_obj(c, it, p) != 0 || mp_get_str(c, it, "name", p, &s->name) != 0)
                return -1;
            if (!s->name || !mp_is_dns1123_label(s->name))
                return mp_fail(c, mp_path(p2, p, "name"), "subset name is invalid: %.64s",
                               s->name ? s->name : "");
            for (size_t k = 0; k < i; k++)
                if (strcmp(o->subsets[k].name, s->name) == 0)
                    return mp_fail(c, mp_path(p2, p, "name"), "duplicate subset name %.64s", s->name);
            if (mp_get_labels(c, it, "labels", p, &s->labels) != 0 ||
                mp_get_obj(c, it, "trafficPolicy", p, &t) != 0)
                return -1;
            if (t) {
                s->policy = xcalloc(1, sizeof *s->policy);
                if (parse_traffic_policy(c, t, mp_path(p2, p, "trafficPolicy"), s->policy, NULL, NULL) != 0)
                    return -1;
            }
        }
    }
    if (mp_get_obj(c, spec, "workloadSelector", "spec", &ws) != 0)
        return -1;
    if (ws && mp_get_labels(c, ws, "matchLabels", "spec.workloadSelector", &o->workload_selector) != 0)
        return -1;
    return parse_export_to(c, spec, &o->export_to, &o->nexport_to);
}

/* ---- Gateway -------------------------------------------------------------------------- */

static int parse_server_tls(mp_ctx *c, const cJSON *t, const char *path, mesh_gateway_server *s)
{
    static const char *const modes[] = { "", "PASSTHROUGH", "SIMPLE", "MUTUAL",
                                         "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL" };
    char p[MP_PATH_MAX];
    char *mode = NULL, *cert = NULL, *key = NULL, *ca = NULL;
    char **creds = NULL;
    size_t ncreds = 0;
    int rc = -1;

    s->has_tls = true;
    s->tls.mode = MESH_SERVER_TLS_PASSTHROUGH; /* the enum's zero value */
    if (mp_get_bool(c, t, "httpsRedirect", path, &s->tls.https_redirect, NULL) != 0 ||
        mp_get_str(c, t, "mode", path, &mode) != 0 ||
        mp_get_str(c, t, "credentialName", path, &s->tls.credential_name) != 0 ||
        mp_get_strv(c, t, "credentialNames", path, &creds, &ncreds) != 0 ||
        mp_get_strv(c, t, "subjectAltNames", path, &s->tls.subject_alt_names,
                    &s->tls.nsubject_alt_names) != 0 ||
        mp_get_str(c, t, "serverCertificate", path, &cert) != 0 ||
        mp_get_str(c, t, "privateKey", path, &key) != 0 ||
        mp_get_str(c, t, "caCertificates", path, &ca) != 0)
        goto out;
    if (mode) {
        size_t k;
        for (k = 1; k < sizeof modes / sizeof modes[0]; k++)
            if (strcmp(modes[k], mode) == 0)
                break;
        if (k == sizeof modes / sizeof modes[0]) {
            mp_fail(c, mp_path(p, path, "mode"), "unknown TLS mode %.32s", mode);
            goto out;
        }
        s->tls.mode = (mesh_server_tls_mode)k;
    }
    if (!s->tls.credential_name && ncreds)
        s->tls.credential_name = xstrdup(creds[0]);
    bool has_cred = s->tls.credential_name && *s->tls.credential_name;
    bool terminates = s->tls.mode == MESH_SERVER_TLS_SIMPLE || s->tls.mode == MESH_SERVER_TLS_MUTUAL ||
                      s->tls.mode == MESH_SERVER_TLS_OPTIONAL_MUTUAL;
    if (terminates && !has_cred) {
        const char *m = s->tls.mode == MESH_SERVER_TLS_SIMPLE ? "SIMPLE" : "MUTUAL";
        if (!cert || !*cert) {
            mp_fail(c, path, "%s TLS requires a server certificate", m);
            goto out;
        }
        if (!key || !*key) {
            mp_fail(c, path, "%s TLS requires a private key", m);
            goto out;
        }
        if (s->tls.mode != MESH_SERVER_TLS_SIMPLE && (!ca || !*ca)) {
            mp_fail(c, path, "MUTUAL TLS requires a client CA bundle");
            goto out;
        }
    }
    if (s->tls.mode == MESH_SERVER_TLS_ISTIO_MUTUAL && (cert || key || ca || has_cred)) {
        mp_fail(c, path, "ISTIO_MUTUAL TLS cannot have associated credentials");
        goto out;
    }
    rc = 0;
out:
    free(mode);
    free(cert);
    free(key);
    free(ca);
    mp_strv_free(creds, ncreds);
    return rc;
}

static int parse_server(mp_ctx *c, const cJSON *sv, const char *path, mesh_gateway_server *s)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *port, *t;
    char *proto = NULL;
    char **hosts = NULL;
    size_t nhosts = 0;
    bool have = false;
    int rc = -1;

    if (require_obj(c, sv, path) != 0)
        goto out;
    if (mp_get_str(c, sv, "name", path, &s->name) != 0 || mp_get_obj(c, sv, "port", path, &port) != 0)
        goto out;
    mp_path(p, path, "port");
    if (!port) {
        mp_fail(c, p, "server must have a port");
        goto out;
    }
    if (mp_get_port(c, port, "number", p, &s->port, &have) != 0 ||
        mp_get_str(c, port, "protocol", p, &proto) != 0 ||
        mp_get_str(c, port, "name", p, &s->port_name) != 0)
        goto out;
    if (!have) {
        mp_fail(c, mp_path(p2, p, "number"), "port number is required");
        goto out;
    }
    if (!proto || !*proto) {
        mp_fail(c, mp_path(p2, p, "protocol"), "protocol must be set");
        goto out;
    }
    s->protocol = mesh_protocol_parse(proto);
    if (s->protocol == MESH_PROTO_UNSUPPORTED) {
        mp_fail(c, mp_path(p2, p, "protocol"),
                "invalid protocol %.32s, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, "
                "REDIS, MYSQL, TCP, TLS, HTTPS",
                proto);
        goto out;
    }

    if (mp_get_strv(c, sv, "hosts", path, &hosts, &nhosts) != 0)
        goto out;
    if (!nhosts) {
        mp_fail(c, mp_path(p, path, "hosts"), "server config must contain at least one host");
        goto out;
    }
    s->hosts = xcalloc(nhosts, sizeof(char *));
    s->host_namespaces = xcalloc(nhosts, sizeof(char *));
    s->nhosts = nhosts;
    for (size_t i = 0; i < nhosts; i++) {
        const char *h = hosts[i];
        const char *slash = strchr(h, '/');
        mp_pathi(p, path, "hosts", i);
        if (slash) {
            s->host_namespaces[i] = xstrndup(h, (size_t)(slash - h));
            s->hosts[i] = xstrdup(slash + 1);
        } else {
            s->host_namespaces[i] = xstrdup("*");
            s->hosts[i] = xstrdup(h);
        }
        const char *hns = s->host_namespaces[i];
        if (strcmp(hns, ".") != 0 && strcmp(hns, "*") != 0 && !mp_is_dns1123_label(hns)) {
            mp_fail(c, p, "invalid namespace value %.64s in host %.128s", hns, h);
            goto out;
        }
        const char *why = strcmp(s->hosts[i], "*") == 0 ? NULL : mp_check_wildcard_domain(s->hosts[i]);
        if (why && !mp_is_ip(s->hosts[i])) {
            mp_fail(c, p, "%s: %.128s", why, h);
            goto out;
        }
    }

    if (mp_get_obj(c, sv, "tls", path, &t) != 0)
        goto out;
    if (t && parse_server_tls(c, t, mp_path(p, path, "tls"), s) != 0)
        goto out;
    if (!t && (s->protocol == MESH_PROTO_HTTPS || s->protocol == MESH_PROTO_TLS)) {
        mp_fail(c, mp_path(p, path, "tls"), "server must have TLS settings for HTTPS/TLS protocols");
        goto out;
    }
    if (t && mesh_protocol_is_http(s->protocol) && !s->tls.https_redirect) {
        mp_fail(c, mp_path(p, path, "tls"), "server cannot have TLS settings for plain text HTTP ports");
        goto out;
    }
    rc = 0;
out:
    free(proto);
    mp_strv_free(hosts, nhosts);
    return rc;
}

int mp_parse_gateway(mp_ctx *c, const cJSON *obj, mesh_gateway *o)
{
    char p[MP_PATH_MAX];
    const cJSON *spec, *arr, *it;
    size_t i;

    if (get_spec(c, obj, &spec) != 0)
        return -1;
    if (mp_get_labels(c, spec, "selector", "spec", &o->selector) != 0 ||
        mp_get_arr(c, spec, "servers", "spec", &arr) != 0)
        return -1;
    if (!arr || !arr->child)
        return mp_fail(c, "spec.servers", "gateway must have at least one server");
    o->servers = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->servers);
    FOR_EACH_OBJ(c, arr, "spec", "servers", i, it) {
        o->nservers = i + 1;
        if (parse_server(c, it, mp_pathi(p, "spec", "servers", i), &o->servers[i]) != 0)
            return -1;
        /* Istio: port names, when given, must be unique within a Gateway's servers. */
        for (size_t k = 0; k < i; k++) {
            const mesh_gateway_server *a = &o->servers[k], *b = &o->servers[i];
            if (a->port_name && b->port_name && *a->port_name && strcmp(a->port_name, b->port_name) == 0 &&
                a->port != b->port)
                return mp_fail(c, mp_pathi(p, "spec", "servers", i),
                               "port names in servers must be unique: duplicate name %.64s", b->port_name);
        }
    }
    return 0;
}

/* ---- ServiceEntry ---------------------------------------------------------------------- */

static int parse_se_endpoint(mp_ctx *c, const cJSON *e, const char *path, mesh_service_entry *o,
                             mesh_se_endpoint *ep)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *ports, *it;
    int64_t w = 0;
    bool have = false;

    if (require_obj(c, e, path) != 0)
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
        cJSON_ArrayForEach(it, ports) {
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
                return mp_fail(c, p2, "endpoint port %.64s is not defined by the service entry", name);
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
        { "NONE", MESH_RESOLUTION_PASSTHROUGH },
        { "STATIC", MESH_RESOLUTION_CLIENT_SIDE_LB },
        { "DNS", MESH_RESOLUTION_DNS },
        { "DNS_ROUND_ROBIN", MESH_RESOLUTION_DNS_ROUND_ROBIN },
    };
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *spec, *arr, *it, *ws;
    char *loc = NULL, *res = NULL;
    size_t i;
    int rc = -1;

    if (get_spec(c, obj, &spec) != 0)
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
            mp_fail(c, mp_pathi(p, "spec", "addresses", i), "invalid address %.64s", o->addresses[i]);
            goto out;
        }

    if (mp_get_arr(c, spec, "ports", "spec", &arr) != 0)
        goto out;
    if (!arr || !arr->child) {
        mp_fail(c, "spec.ports", "service entry must have at least one port");
        goto out;
    }
    o->ports = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->ports);
    FOR_EACH_OBJ(c, arr, "spec", "ports", i, it) {
        mesh_port *sp = &o->ports[i];
        char *proto = NULL;
        bool have = false;
        o->nports = i + 1;
        mp_pathi(p, "spec", "ports", i);
        if (require_obj(c, it, p) != 0 || mp_get_port(c, it, "number", p, &sp->port, &have) != 0 ||
            mp_get_port(c, it, "targetPort", p, &sp->target_port, NULL) != 0 ||
            mp_get_str(c, it, "name", p, &sp->name) != 0 || mp_get_str(c, it, "protocol", p, &proto) != 0)
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
        if (proto) {
            sp->protocol = mesh_protocol_parse(proto);
            if (sp->protocol == MESH_PROTO_UNSUPPORTED) {
                mp_fail(c, mp_path(p2, p, "protocol"), "%.32s is not a valid protocol", proto);
                free(proto);
                goto out;
            }
            free(proto);
        } else {
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

    if (mp_get_str(c, spec, "location", "spec", &loc) != 0 || mp_get_str(c, spec, "resolution", "spec", &res) != 0)
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

    if (mp_get_arr(c, spec, "endpoints", "spec", &arr) != 0)
        goto out;
    if (arr && arr->child) {
        if (ws) {
            mp_fail(c, "spec", "only one of WorkloadSelector or Endpoints is allowed in Service Entry");
            goto out;
        }
        o->endpoints = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->endpoints);
        FOR_EACH_OBJ(c, arr, "spec", "endpoints", i, it) {
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
            if (o->resolution == MESH_RESOLUTION_CLIENT_SIDE_LB && !unix_sock && !mp_is_ip(ep->address)) {
                mp_fail(c, p2, "endpoint address %.128s is not a valid IP address", ep->address);
                goto out;
            }
            if ((o->resolution == MESH_RESOLUTION_DNS || o->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN) &&
                !unix_sock && !mp_is_ip(ep->address) && mp_check_wildcard_domain(ep->address)) {
                mp_fail(c, p2, "endpoint address %.128s is not a valid FQDN or IP address", ep->address);
                goto out;
            }
        }
    }

    switch (o->resolution) {
    case MESH_RESOLUTION_PASSTHROUGH:
        if (o->nendpoints) {
            mp_fail(c, "spec.endpoints", "no endpoints should be provided for resolution type none");
            goto out;
        }
        break;
    case MESH_RESOLUTION_CLIENT_SIDE_LB:
        if (!o->nendpoints && !ws) {
            mp_fail(c, "spec.endpoints", "endpoints must be provided if service entry discovery mode is static");
            goto out;
        }
        break;
    case MESH_RESOLUTION_DNS:
    case MESH_RESOLUTION_DNS_ROUND_ROBIN:
        if (!o->nendpoints) {
            for (i = 0; i < o->nhosts; i++)
                if (strchr(o->hosts[i], '*')) {
                    mp_fail(c, mp_pathi(p, "spec", "hosts", i),
                            "hosts can not be wildcards when resolution is DNS and there are no endpoints");
                    goto out;
                }
        }
        if (o->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN && o->nendpoints > 1) {
            mp_fail(c, "spec.endpoints", "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN");
            goto out;
        }
        break;
    }
    if (parse_export_to(c, spec, &o->export_to, &o->nexport_to) != 0)
        goto out;
    rc = 0;
out:
    free(loc);
    free(res);
    return rc;
}
