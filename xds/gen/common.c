/* gen_common: the arena and the builders shared by the gRPC, gateway and sidecar
 * generators. Runs on whichever thread calls xds_gen_generate; touches only the call's
 * arena and the (immutable) snapshot, so it takes no locks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xds/gen/gen_internal.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

/* ---- arena ---------------------------------------------------------------------------- */

struct gen_arena_chunk {
    gen_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define GA_CHUNK 16384

void gen_arena_free(gen_arena *a)
{
    gen_arena_chunk *ch = a->head;
    while (ch) {
        gen_arena_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    a->head = NULL;
}

void *ga_alloc(gen_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    gen_arena_chunk *ch = a->head;
    if (!ch || ch->cap - ch->used < n) {
        size_t cap = n > GA_CHUNK ? n : GA_CHUNK;
        ch = xmalloc(sizeof *ch + cap);
        ch->used = 0;
        ch->cap = cap;
        ch->next = a->head;
        a->head = ch;
    }
    void *p = ch->data + ch->used;
    ch->used += n;
    memset(p, 0, n);
    return p;
}

char *ga_strdup(gen_arena *a, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *d = ga_alloc(a, n + 1);
    memcpy(d, s, n + 1);
    return d;
}

char *ga_printf(gen_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *d = ga_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void ga_push_raw(gen_arena *a, void **arr, size_t *n, const void *item, size_t sz)
{
    size_t k = *n;
    if (k == 0 || (k & (k - 1)) == 0) {
        /* k is 0 or a power of two: the array is full; double it */
        size_t cap = k ? 2 * k : 1;
        void *na = ga_alloc(a, cap * sz);
        if (k)
            memcpy(na, *arr, k * sz);
        *arr = na;
    }
    memcpy((char *)*arr + k * sz, item, sz);
    *n = k + 1;
}

void gen_items_add(gen_ctx *c, gen_items *it, const gen_item *item)
{
    GA_PUSH(c->a, it->v, it->n, *item);
}

bool gen_names_has(const char *const *names, size_t nnames, const char *name)
{
    for (size_t i = 0; i < nnames; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* ---- small builders ---------------------------------------------------------------------- */

Google__Protobuf__Any *gen_any(gen_ctx *c, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *any = GA_MSG(c->a, Google__Protobuf__Any, google__protobuf__any__init);
    any->type_url = ga_printf(c->a, "type.googleapis.com/%s", m->descriptor->name);
    size_t len = protobuf_c_message_get_packed_size(m);
    any->value.data = ga_alloc(c->a, len);
    any->value.len = protobuf_c_message_pack(m, any->value.data);
    return any;
}

Google__Protobuf__Duration *gen_duration(gen_ctx *c, int64_t ns)
{
    Google__Protobuf__Duration *d = GA_MSG(c->a, Google__Protobuf__Duration,
                                           google__protobuf__duration__init);
    if (ns < 0)
        ns = 0;
    d->seconds = ns / 1000000000;
    d->nanos = (int32_t)(ns % 1000000000);
    return d;
}

Google__Protobuf__UInt32Value *gen_u32(gen_ctx *c, uint32_t v)
{
    Google__Protobuf__UInt32Value *w = GA_MSG(c->a, Google__Protobuf__UInt32Value,
                                              google__protobuf__uint32_value__init);
    w->value = v;
    return w;
}

Google__Protobuf__UInt64Value *gen_u64(gen_ctx *c, uint64_t v)
{
    Google__Protobuf__UInt64Value *w = GA_MSG(c->a, Google__Protobuf__UInt64Value,
                                              google__protobuf__uint64_value__init);
    w->value = v;
    return w;
}

Google__Protobuf__BoolValue *gen_bool(gen_ctx *c, bool v)
{
    Google__Protobuf__BoolValue *w = GA_MSG(c->a, Google__Protobuf__BoolValue,
                                            google__protobuf__bool_value__init);
    w->value = v;
    return w;
}

Envoy__Config__Core__V3__ConfigSource *gen_ads_source(gen_ctx *c)
{
    Envoy__Config__Core__V3__ConfigSource *cs = GA_MSG(c->a, Envoy__Config__Core__V3__ConfigSource,
                                                       envoy__config__core__v3__config_source__init);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs->ads = GA_MSG(c->a, Envoy__Config__Core__V3__AggregatedConfigSource,
                     envoy__config__core__v3__aggregated_config_source__init);
    return cs;
}

Envoy__Config__Core__V3__Address *gen_address(gen_ctx *c, const char *ip, uint32_t port)
{
    Envoy__Config__Core__V3__Address *a = GA_MSG(c->a, Envoy__Config__Core__V3__Address,
                                                 envoy__config__core__v3__address__init);
    Envoy__Config__Core__V3__SocketAddress *sa =
        GA_MSG(c->a, Envoy__Config__Core__V3__SocketAddress,
               envoy__config__core__v3__socket_address__init);
    sa->address = ga_strdup(c->a, ip);
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    a->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    a->socket_address = sa;
    return a;
}

Envoy__Config__Endpoint__V3__LbEndpoint *gen_lb_endpoint(gen_ctx *c, const char *ip, uint32_t port)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *lb =
        GA_MSG(c->a, Envoy__Config__Endpoint__V3__LbEndpoint, envoy__config__endpoint__v3__lb_endpoint__init);
    lb->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    lb->endpoint = GA_MSG(c->a, Envoy__Config__Endpoint__V3__Endpoint, envoy__config__endpoint__v3__endpoint__init);
    lb->endpoint->address = gen_address(c, ip, port);
    return lb;
}

Envoy__Type__Matcher__V3__RegexMatcher *gen_regex(gen_ctx *c, const char *re)
{
    Envoy__Type__Matcher__V3__RegexMatcher *m = GA_MSG(c->a, Envoy__Type__Matcher__V3__RegexMatcher,
                                                       envoy__type__matcher__v3__regex_matcher__init);
    m->regex = ga_strdup(c->a, re);
    /* google_re2 is deprecated but older clients (gRPC 1.51) look for it. */
    m->engine_type_case = ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__ENGINE_TYPE_GOOGLE_RE2;
    m->google_re2 = GA_MSG(c->a, Envoy__Type__Matcher__V3__RegexMatcher__GoogleRE2,
                           envoy__type__matcher__v3__regex_matcher__google_re2__init);
    return m;
}

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

bool gen_service_visible(gen_ctx *c, const mesh_service *svc)
{
    /* proxyless gRPC keeps seeing everything: its LDS (gen_grpc.c) does not filter yet,
     * and a listener without its cluster would be worse than no restriction */
    if (c->grpc || !svc)
        return true;
    return gen_exported(svc->export_to, svc->nexport_to, svc->meta.ns, c->p->ns);
}

bool gen_vs_visible(gen_ctx *c, const mesh_virtual_service *vs)
{
    if (c->grpc || !vs)
        return true;
    return gen_exported(vs->export_to, vs->nexport_to, vs->meta.ns, c->p->ns);
}

const mesh_virtual_service *gen_mesh_vs_for_host(gen_ctx *c, const char *hostname)
{
    /* Istio: an exact host wins over a wildcard; among equals the first in snapshot order. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->s->nvss; i++) {
            const mesh_virtual_service *vs = c->s->vss[i];
            if (!gen_vs_bound_to(vs, "mesh") || !gen_vs_visible(c, vs))
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
    bool uses = vs && !c->grpc && gen_export_restricted(vs->export_to, vs->nexport_to);
    for (size_t i = 0; vs && i < vs->nhttp && !uses; i++)
        for (size_t m = 0; m < vs->http[i].nmatches && !uses; m++)
            uses = vs->http[i].matches[m].source_labels.n ||
                   (vs->http[i].matches[m].source_namespace && vs->http[i].matches[m].source_namespace[0]);
    if (!uses)
        return ga_strdup(c->a, "");
    /* the labels and namespace of the proxy decide which matches apply */
    char *k = ga_printf(c->a, "ns=%s", c->p->ns ? c->p->ns : "");
    for (size_t i = 0; i < c->p->labels.n; i++)
        k = ga_printf(c->a, "%s,%s=%s", k, c->p->labels.keys[i], c->p->labels.vals[i]);
    return k;
}

char *gen_dr_key(gen_ctx *c, const char *hostname)
{
    const mesh_destination_rule *dr = mesh_snapshot_destination_rule(c->s, hostname, c->p->ns);
    if (!dr)
        return ga_strdup(c->a, "-");
    return ga_printf(c->a, "%s/%s", dr->meta.ns, dr->meta.name);
}

/* ---- routes ------------------------------------------------------------------------------ */

typedef Envoy__Config__Route__V3__Route Route;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Config__Route__V3__HeaderMatcher HeaderMatcher;

static Envoy__Type__Matcher__V3__StringMatcher *gen_string_matcher(gen_ctx *c,
                                                                  const mesh_string_match *m)
{
    Envoy__Type__Matcher__V3__StringMatcher *sm =
        GA_MSG(c->a, Envoy__Type__Matcher__V3__StringMatcher,
               envoy__type__matcher__v3__string_matcher__init);
    switch (m->kind) {
    case MESH_MATCH_PREFIX:
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
        sm->prefix = ga_strdup(c->a, m->value);
        break;
    case MESH_MATCH_REGEX:
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
        sm->safe_regex = gen_regex(c, m->value);
        break;
    default:
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        sm->exact = ga_strdup(c->a, m->value);
        break;
    }
    return sm;
}

/* gRPC 1.51 NACKs HeaderMatcher.string_match: the gRPC flavour uses the legacy fields,
 * Envoy gets string_match like Istio sends. */
static HeaderMatcher *gen_header_matcher(gen_ctx *c, const char *name,
                                         const mesh_string_match *m, bool present, bool invert)
{
    HeaderMatcher *h = GA_MSG(c->a, HeaderMatcher, envoy__config__route__v3__header_matcher__init);
    h->name = ga_strdup(c->a, name);
    h->invert_match = invert;
    bool empty = !m->value || !m->value[0];
    if (m->kind == MESH_MATCH_NONE || (present && m->kind == MESH_MATCH_NONE) ||
        (m->kind == MESH_MATCH_PREFIX && empty)) {
        /* an empty prefix is invalid in Envoy: it means "present" */
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
        h->present_match = true;
        return h;
    }
    if (!c->grpc) {
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        h->string_match = gen_string_matcher(c, m);
        return h;
    }
    switch (m->kind) {
    case MESH_MATCH_PREFIX:
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH;
        h->prefix_match = ga_strdup(c->a, m->value);
        break;
    case MESH_MATCH_REGEX:
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH;
        h->safe_regex_match = gen_regex(c, m->value);
        break;
    default:
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH;
        h->exact_match = ga_strdup(c->a, m->value);
        break;
    }
    return h;
}

static Envoy__Config__Route__V3__RouteMatch *gen_route_match(gen_ctx *c, const mesh_http_match *m)
{
    Envoy__Config__Route__V3__RouteMatch *rm =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteMatch, envoy__config__route__v3__route_match__init);
    const mesh_string_match *uri = m ? &m->uri : NULL;
    if (uri && uri->kind == MESH_MATCH_EXACT) {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
        rm->path = ga_strdup(c->a, uri->value);
    } else if (uri && uri->kind == MESH_MATCH_REGEX) {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
        rm->safe_regex = gen_regex(c, uri->value);
    } else {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        rm->prefix = ga_strdup(c->a, uri && uri->kind == MESH_MATCH_PREFIX && uri->value &&
                                             uri->value[0] ? uri->value : "/");
    }
    if (!m)
        return rm;
    if (m->ignore_uri_case)
        rm->case_sensitive = gen_bool(c, false);
    static const struct { size_t off; const char *hdr; } pseudo[] = {
        { offsetof(mesh_http_match, scheme), ":scheme" },
        { offsetof(mesh_http_match, method), ":method" },
        { offsetof(mesh_http_match, authority), ":authority" },
    };
    for (size_t i = 0; i < sizeof pseudo / sizeof pseudo[0]; i++) {
        const mesh_string_match *sm = (const mesh_string_match *)((const char *)m + pseudo[i].off);
        if (sm->kind == MESH_MATCH_NONE)
            continue;
        GA_PUSH(c->a, rm->headers, rm->n_headers,
                gen_header_matcher(c, pseudo[i].hdr, sm, false, false));
    }
    for (size_t i = 0; i < m->nheaders; i++) {
        const mesh_header_match *hm = &m->headers[i];
        if (!hm->name)
            continue;
        GA_PUSH(c->a, rm->headers, rm->n_headers,
                gen_header_matcher(c, hm->name, &hm->match, hm->present, hm->invert));
    }
    if (!c->grpc) {
        for (size_t i = 0; i < m->nquery_params; i++) {
            const mesh_header_match *q = &m->query_params[i];
            Envoy__Config__Route__V3__QueryParameterMatcher *qm =
                GA_MSG(c->a, Envoy__Config__Route__V3__QueryParameterMatcher,
                       envoy__config__route__v3__query_parameter_matcher__init);
            qm->name = ga_strdup(c->a, q->name);
            if (q->match.kind == MESH_MATCH_NONE) {
                qm->query_parameter_match_specifier_case =
                    ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_PRESENT_MATCH;
                qm->present_match = true;
            } else {
                qm->query_parameter_match_specifier_case =
                    ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
                qm->string_match = gen_string_matcher(c, &q->match);
            }
            GA_PUSH(c->a, rm->query_parameters, rm->n_query_parameters, qm);
        }
    }
    return rm;
}

static Envoy__Type__V3__FractionalPercent *gen_percent(gen_ctx *c, double pct)
{
    Envoy__Type__V3__FractionalPercent *fp = GA_MSG(c->a, Envoy__Type__V3__FractionalPercent,
                                                    envoy__type__v3__fractional_percent__init);
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    /* Istio converts a double percentage to parts per million */
    fp->numerator = (uint32_t)(pct * 10000.0 + 0.5);
    fp->denominator = ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION;
    return fp;
}

static uint32_t gen_grpc_code(const char *s)
{
    static const char *const codes[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    for (uint32_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcasecmp(s, codes[i]) == 0)
            return i;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end != s && *end == '\0' && v <= 16)
        return (uint32_t)v;
    return 2; /* UNKNOWN */
}

static void gen_typed_per_filter(gen_ctx *c, Route *r, const char *key, const ProtobufCMessage *m)
{
    Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry *e =
        GA_MSG(c->a, Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry,
               envoy__config__route__v3__route__typed_per_filter_config_entry__init);
    e->key = ga_strdup(c->a, key);
    e->value = gen_any(c, m);
    GA_PUSH(c->a, r->typed_per_filter_config, r->n_typed_per_filter_config, e);
}

static void gen_header_ops(gen_ctx *c, const mesh_header_ops *ops,
                           Envoy__Config__Core__V3__HeaderValueOption ***add, size_t *nadd,
                           char ***rm, size_t *nrm)
{
    for (int pass = 0; pass < 2; pass++) {
        const mesh_kv *kv = pass == 0 ? ops->set : ops->add;
        size_t n = pass == 0 ? ops->nset : ops->nadd;
        for (size_t i = 0; i < n; i++) {
            Envoy__Config__Core__V3__HeaderValueOption *o =
                GA_MSG(c->a, Envoy__Config__Core__V3__HeaderValueOption,
                       envoy__config__core__v3__header_value_option__init);
            o->header = GA_MSG(c->a, Envoy__Config__Core__V3__HeaderValue,
                               envoy__config__core__v3__header_value__init);
            o->header->key = ga_strdup(c->a, kv[i].key);
            o->header->value = ga_strdup(c->a, kv[i].value);
            o->append_action =
                pass == 0
                    ? ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD
                    : ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD;
            GA_PUSH(c->a, *add, *nadd, o);
        }
    }
    for (size_t i = 0; i < ops->nremove; i++)
        GA_PUSH(c->a, *rm, *nrm, ga_strdup(c->a, ops->remove[i]));
}

/* The port a destination resolves to: explicit, else the service's only port, else the
 * port being routed (Istio's "same port" rule). 0 when the service has no such port. */
static uint32_t gen_dest_port(gen_ctx *c, const mesh_destination *d, uint32_t ctx_port)
{
    if (d->port)
        return d->port;
    const mesh_service *svc = mesh_snapshot_service(c->s, d->host);
    if (!svc)
        return ctx_port;
    if (svc->nports == 1)
        return svc->ports[0].port;
    if (gen_service_port(svc, ctx_port))
        return ctx_port;
    return svc->nports ? svc->ports[0].port : ctx_port;
}

static char *gen_dest_cluster(gen_ctx *c, const mesh_destination *d, uint32_t ctx_port)
{
    return gen_cluster_name(c, gen_dest_port(c, d, ctx_port), d->subset, d->host);
}

static Envoy__Config__Route__V3__RetryPolicy *gen_retry(gen_ctx *c, const char *retry_on,
                                                       uint32_t attempts, int64_t per_try_ns)
{
    Envoy__Config__Route__V3__RetryPolicy *rp =
        GA_MSG(c->a, Envoy__Config__Route__V3__RetryPolicy,
               envoy__config__route__v3__retry_policy__init);
    rp->retry_on = ga_strdup(c->a, retry_on && retry_on[0]
                                       ? retry_on
                                       : "connect-failure,refused-stream,unavailable,cancelled,"
                                         "retriable-status-codes");
    rp->num_retries = gen_u32(c, attempts);
    if (per_try_ns > 0)
        rp->per_try_timeout = gen_duration(c, per_try_ns);
    if (!c->grpc)
        rp->host_selection_retry_max_attempts = 5;
    return rp;
}

/* DestinationRule consistentHash needs a hash policy on the routes to the host. */
static void gen_hash_policy(gen_ctx *c, RouteAction *ra, const char *host, const char *subset)
{
    if (c->grpc || !host)
        return;
    const mesh_destination_rule *dr = mesh_snapshot_destination_rule(c->s, host, c->p->ns);
    const mesh_traffic_policy *tp = dr ? dr->policy : NULL;
    const mesh_subset *ss = gen_dr_subset(dr, subset);
    if (ss && ss->policy)
        tp = ss->policy;
    if (!tp || tp->lb != MESH_LB_RING_HASH)
        return;
    Envoy__Config__Route__V3__RouteAction__HashPolicy *hp =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__HashPolicy,
               envoy__config__route__v3__route_action__hash_policy__init);
    if (tp->hash.http_header_name) {
        hp->policy_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER;
        hp->header = GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__HashPolicy__Header,
                            envoy__config__route__v3__route_action__hash_policy__header__init);
        hp->header->header_name = ga_strdup(c->a, tp->hash.http_header_name);
    } else if (tp->hash.http_cookie_name) {
        hp->policy_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE;
        hp->cookie = GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__HashPolicy__Cookie,
                            envoy__config__route__v3__route_action__hash_policy__cookie__init);
        hp->cookie->name = ga_strdup(c->a, tp->hash.http_cookie_name);
    } else {
        hp->policy_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES;
        hp->connection_properties =
            GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__HashPolicy__ConnectionProperties,
                   envoy__config__route__v3__route_action__hash_policy__connection_properties__init);
        hp->connection_properties->source_ip = true;
    }
    GA_PUSH(c->a, ra->hash_policy, ra->n_hash_policy, hp);
}

static void gen_route_action(gen_ctx *c, Route *r, const mesh_http_route *hr,
                             const gen_route_opts *o)
{
    RouteAction *ra = GA_MSG(c->a, RouteAction, envoy__config__route__v3__route_action__init);
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = ra;

    /* destinations with weight 0 carry no traffic: Envoy and gRPC both reject them in
     * weighted_clusters, so drop them */
    size_t live = 0, last = 0;
    uint32_t total = 0;
    for (size_t i = 0; i < hr->nroute; i++) {
        if (hr->nroute > 1 && hr->route[i].weight <= 0)
            continue;
        live++;
        last = i;
        total += hr->route[i].weight > 0 ? (uint32_t)hr->route[i].weight : 100;
    }
    if (live <= 1) {
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        if (live == 0) {
            ra->cluster = ga_strdup(c->a, "BlackHoleCluster");
        } else {
            ra->cluster = gen_dest_cluster(c, &hr->route[last].destination, o->port);
            if (!c->grpc)
                gen_header_ops(c, &hr->route[last].headers.request, &r->request_headers_to_add,
                               &r->n_request_headers_to_add, &r->request_headers_to_remove,
                               &r->n_request_headers_to_remove);
            if (!c->grpc)
                gen_header_ops(c, &hr->route[last].headers.response, &r->response_headers_to_add,
                               &r->n_response_headers_to_add, &r->response_headers_to_remove,
                               &r->n_response_headers_to_remove);
        }
    } else {
        Envoy__Config__Route__V3__WeightedCluster *wc =
            GA_MSG(c->a, Envoy__Config__Route__V3__WeightedCluster,
                   envoy__config__route__v3__weighted_cluster__init);
        for (size_t i = 0; i < hr->nroute; i++) {
            if (hr->route[i].weight <= 0)
                continue;
            Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw =
                GA_MSG(c->a, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight,
                       envoy__config__route__v3__weighted_cluster__cluster_weight__init);
            cw->name = gen_dest_cluster(c, &hr->route[i].destination, o->port);
            cw->weight = gen_u32(c, (uint32_t)hr->route[i].weight);
            if (!c->grpc) {
                gen_header_ops(c, &hr->route[i].headers.request, &cw->request_headers_to_add,
                               &cw->n_request_headers_to_add, &cw->request_headers_to_remove,
                               &cw->n_request_headers_to_remove);
                gen_header_ops(c, &hr->route[i].headers.response, &cw->response_headers_to_add,
                               &cw->n_response_headers_to_add, &cw->response_headers_to_remove,
                               &cw->n_response_headers_to_remove);
            }
            GA_PUSH(c->a, wc->clusters, wc->n_clusters, cw);
        }
        /* gRPC 1.51 checks the sum against total_weight (default 100): state it */
        wc->total_weight = gen_u32(c, total);
        ra->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        ra->weighted_clusters = wc;
    }

    if (c->grpc) {
        if (hr->timeout_ns > 0) {
            ra->max_stream_duration = GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__MaxStreamDuration,
                                             envoy__config__route__v3__route_action__max_stream_duration__init);
            ra->max_stream_duration->max_stream_duration = gen_duration(c, hr->timeout_ns);
        }
    } else {
        /* Istio's default route timeout is 0: disabled */
        ra->timeout = gen_duration(c, hr->timeout_ns > 0 ? hr->timeout_ns : 0);
    }

    if (hr->has_retries) {
        if (hr->retries.attempts > 0)
            ra->retry_policy = gen_retry(c, hr->retries.retry_on, (uint32_t)hr->retries.attempts,
                                         hr->retries.per_try_timeout_ns);
    } else if (o->default_retries && !c->grpc) {
        ra->retry_policy = gen_retry(c, NULL, 2, -1);
    }

    if (c->grpc)
        return;

    if (hr->has_rewrite) {
        if (hr->rewrite.uri && hr->rewrite.uri[0])
            ra->prefix_rewrite = ga_strdup(c->a, hr->rewrite.uri);
        if (hr->rewrite.uri_regex && hr->rewrite.uri_regex[0]) {
            ra->regex_rewrite = GA_MSG(c->a, Envoy__Type__Matcher__V3__RegexMatchAndSubstitute,
                                       envoy__type__matcher__v3__regex_match_and_substitute__init);
            ra->regex_rewrite->pattern = gen_regex(c, hr->rewrite.uri_regex);
            ra->regex_rewrite->substitution = ga_strdup(c->a, hr->rewrite.uri_regex_rewrite);
        }
        if (hr->rewrite.authority && hr->rewrite.authority[0]) {
            ra->host_rewrite_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
            ra->host_rewrite_literal = ga_strdup(c->a, hr->rewrite.authority);
        }
    }
    if (hr->has_mirror) {
        Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *mp =
            GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy,
                   envoy__config__route__v3__route_action__request_mirror_policy__init);
        mp->cluster = gen_dest_cluster(c, &hr->mirror, o->port);
        mp->runtime_fraction = GA_MSG(c->a, Envoy__Config__Core__V3__RuntimeFractionalPercent,
                                      envoy__config__core__v3__runtime_fractional_percent__init);
        mp->runtime_fraction->default_value = gen_percent(c, hr->mirror_percent);
        mp->trace_sampled = gen_bool(c, false);
        GA_PUSH(c->a, ra->request_mirror_policies, ra->n_request_mirror_policies, mp);
    }
    /* consistent-hash routing needs a hash policy on the route */
    if (hr->nroute)
        gen_hash_policy(c, ra, hr->route[0].destination.host, hr->route[0].destination.subset);
}

static void gen_route_fault(gen_ctx *c, Route *r, const mesh_http_route *hr)
{
    if (!hr->has_fault_delay && !hr->has_fault_abort)
        return;
    Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *f =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault,
               envoy__extensions__filters__http__fault__v3__httpfault__init);
    if (hr->has_fault_delay) {
        f->delay = GA_MSG(c->a, Envoy__Extensions__Filters__Common__Fault__V3__FaultDelay,
                          envoy__extensions__filters__common__fault__v3__fault_delay__init);
        f->delay->percentage = gen_percent(c, hr->fault_delay.percent);
        f->delay->fault_delay_secifier_case =
            ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_FIXED_DELAY;
        f->delay->fixed_delay = gen_duration(c, hr->fault_delay.fixed_delay_ns);
    }
    if (hr->has_fault_abort) {
        f->abort = GA_MSG(c->a, Envoy__Extensions__Filters__Http__Fault__V3__FaultAbort,
                          envoy__extensions__filters__http__fault__v3__fault_abort__init);
        f->abort->percentage = gen_percent(c, hr->fault_abort.percent);
        if (hr->fault_abort.grpc_status && hr->fault_abort.grpc_status[0]) {
            f->abort->error_type_case =
                ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_GRPC_STATUS;
            f->abort->grpc_status = gen_grpc_code(hr->fault_abort.grpc_status);
        } else {
            f->abort->error_type_case =
                ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HTTP_STATUS;
            f->abort->http_status = hr->fault_abort.http_status ? hr->fault_abort.http_status : 500;
        }
    }
    gen_typed_per_filter(c, r, "envoy.filters.http.fault", &f->base);
}

static void gen_route_cors(gen_ctx *c, Route *r, const mesh_http_route *hr)
{
    Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *cp =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy,
               envoy__extensions__filters__http__cors__v3__cors_policy__init);
    for (size_t i = 0; i < hr->cors.nallow_origins; i++)
        GA_PUSH(c->a, cp->allow_origin_string_match, cp->n_allow_origin_string_match,
                gen_string_matcher(c, &hr->cors.allow_origins[i]));
    struct { char **v; size_t n; char **out; } lists[] = {
        { hr->cors.allow_methods, hr->cors.nallow_methods, &cp->allow_methods },
        { hr->cors.allow_headers, hr->cors.nallow_headers, &cp->allow_headers },
        { hr->cors.expose_headers, hr->cors.nexpose_headers, &cp->expose_headers },
    };
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        if (!lists[l].n)
            continue;
        size_t len = 1;
        for (size_t i = 0; i < lists[l].n; i++)
            len += strlen(lists[l].v[i] ? lists[l].v[i] : "") + 1;
        char *s = ga_alloc(c->a, len);
        for (size_t i = 0; i < lists[l].n; i++) {
            if (i)
                strcat(s, ",");
            strcat(s, lists[l].v[i] ? lists[l].v[i] : "");
        }
        *lists[l].out = s;
    }
    if (hr->cors.max_age_ns >= 0)
        cp->max_age = ga_printf(c->a, "%lld", (long long)(hr->cors.max_age_ns / 1000000000));
    if (hr->cors.allow_credentials >= 0)
        cp->allow_credentials = gen_bool(c, hr->cors.allow_credentials == 1);
    gen_typed_per_filter(c, r, "envoy.filters.http.cors", &cp->base);
}

static Route *gen_http_route(gen_ctx *c, const mesh_virtual_service *vs, const mesh_http_route *hr,
                             const mesh_http_match *m, const gen_route_opts *o)
{
    Route *r = GA_MSG(c->a, Route, envoy__config__route__v3__route__init);
    r->name = ga_strdup(c->a, hr->name ? hr->name : (m && m->name ? m->name : ""));
    r->match = gen_route_match(c, m);
    if (hr->has_redirect && !c->grpc) {
        Envoy__Config__Route__V3__RedirectAction *ra =
            GA_MSG(c->a, Envoy__Config__Route__V3__RedirectAction,
                   envoy__config__route__v3__redirect_action__init);
        if (hr->redirect.uri && hr->redirect.uri[0]) {
            ra->path_rewrite_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT;
            ra->path_redirect = ga_strdup(c->a, hr->redirect.uri);
        }
        if (hr->redirect.authority && hr->redirect.authority[0])
            ra->host_redirect = ga_strdup(c->a, hr->redirect.authority);
        ra->port_redirect = hr->redirect.port;
        if (hr->redirect.scheme && hr->redirect.scheme[0]) {
            ra->scheme_rewrite_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_SCHEME_REDIRECT;
            ra->scheme_redirect = ga_strdup(c->a, hr->redirect.scheme);
        }
        switch (hr->redirect.redirect_code) {
        case 302: ra->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__FOUND; break;
        case 303: ra->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__SEE_OTHER; break;
        case 307: ra->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__TEMPORARY_REDIRECT; break;
        case 308: ra->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__PERMANENT_REDIRECT; break;
        default: ra->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__MOVED_PERMANENTLY; break;
        }
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
        r->redirect = ra;
    } else if (hr->has_direct_response && !c->grpc) {
        Envoy__Config__Route__V3__DirectResponseAction *dr =
            GA_MSG(c->a, Envoy__Config__Route__V3__DirectResponseAction,
                   envoy__config__route__v3__direct_response_action__init);
        dr->status = hr->direct_response.status;
        if (hr->direct_response.body) {
            dr->body = GA_MSG(c->a, Envoy__Config__Core__V3__DataSource,
                              envoy__config__core__v3__data_source__init);
            dr->body->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
            dr->body->inline_string = ga_strdup(c->a, hr->direct_response.body);
        }
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
        r->direct_response = dr;
    } else if (hr->nroute > 0) {
        gen_route_action(c, r, hr, o);
    } else {
        return NULL; /* nothing to do with the traffic (or unsupported by gRPC) */
    }
    gen_route_fault(c, r, hr);
    if (!c->grpc) {
        if (hr->has_cors)
            gen_route_cors(c, r, hr);
        gen_header_ops(c, &hr->headers.request, &r->request_headers_to_add,
                       &r->n_request_headers_to_add, &r->request_headers_to_remove,
                       &r->n_request_headers_to_remove);
        gen_header_ops(c, &hr->headers.response, &r->response_headers_to_add,
                       &r->n_response_headers_to_add, &r->response_headers_to_remove,
                       &r->n_response_headers_to_remove);
    }
    (void)vs;
    return r;
}

/* Whether a match clause applies to this proxy/gateway/port (Istio drops the others). */
static bool gen_match_applies(gen_ctx *c, const mesh_http_match *m, const gen_route_opts *o)
{
    if (m->port && o->port && m->port != o->port)
        return false;
    if (m->ngateways) {
        bool found = false;
        for (size_t i = 0; i < m->ngateways; i++)
            if (m->gateways[i] && strcmp(m->gateways[i], o->gateway) == 0)
                found = true;
        if (!found)
            return false;
    }
    if (m->source_labels.n && !mesh_labels_subset(&m->source_labels, &c->p->labels))
        return false;
    if (m->source_namespace && m->source_namespace[0] && c->p->ns &&
        strcmp(m->source_namespace, c->p->ns) != 0)
        return false;
    return true;
}

size_t gen_vs_routes(gen_ctx *c, const mesh_virtual_service *vs, const gen_route_opts *o,
                     Route ***routes, size_t *nroutes)
{
    size_t added = 0;
    for (size_t i = 0; i < vs->nhttp; i++) {
        const mesh_http_route *hr = &vs->http[i];
        if (hr->nmatches == 0) {
            Route *r = gen_http_route(c, vs, hr, NULL, o);
            if (r) {
                GA_PUSH(c->a, *routes, *nroutes, r);
                added++;
            }
            /* a route without matches catches everything: later ones are unreachable */
            break;
        }
        for (size_t m = 0; m < hr->nmatches; m++) {
            if (!gen_match_applies(c, &hr->matches[m], o))
                continue;
            Route *r = gen_http_route(c, vs, hr, &hr->matches[m], o);
            if (r) {
                GA_PUSH(c->a, *routes, *nroutes, r);
                added++;
            }
        }
    }
    return added;
}

Route *gen_catchall_route(gen_ctx *c, const char *prefix)
{
    Route *r = GA_MSG(c->a, Route, envoy__config__route__v3__route__init);
    r->name = ga_strdup(c->a, "default");
    r->match = GA_MSG(c->a, Envoy__Config__Route__V3__RouteMatch,
                      envoy__config__route__v3__route_match__init);
    r->match->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    r->match->prefix = ga_strdup(c->a, prefix);
    return r;
}

Route *gen_default_route(gen_ctx *c, const char *cluster, bool default_retries)
{
    Route *r = gen_catchall_route(c, c->grpc ? "" : "/");
    RouteAction *ra = GA_MSG(c->a, RouteAction, envoy__config__route__v3__route_action__init);
    ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    ra->cluster = ga_strdup(c->a, cluster);
    if (!c->grpc) {
        ra->timeout = gen_duration(c, 0);
        if (default_retries)
            ra->retry_policy = gen_retry(c, NULL, 2, -1);
        uint32_t port;
        char *subset, *host;
        if (gen_parse_cluster_name(c, cluster, &port, &subset, &host))
            gen_hash_policy(c, ra, host, subset);
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = ra;
    return r;
}

Envoy__Config__Route__V3__VirtualHost *gen_vhost(gen_ctx *c, const char *name)
{
    Envoy__Config__Route__V3__VirtualHost *vh =
        GA_MSG(c->a, Envoy__Config__Route__V3__VirtualHost,
               envoy__config__route__v3__virtual_host__init);
    vh->name = ga_strdup(c->a, name);
    return vh;
}

void gen_vhost_domain(gen_ctx *c, Envoy__Config__Route__V3__VirtualHost *vh, const char *d)
{
    for (size_t i = 0; i < vh->n_domains; i++)
        if (strcmp(vh->domains[i], d) == 0)
            return;
    GA_PUSH(c->a, vh->domains, vh->n_domains, ga_strdup(c->a, d));
}

/* ---- listeners ----------------------------------------------------------------------------- */

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;

Envoy__Config__Listener__V3__Filter *gen_filter(gen_ctx *c, const char *name,
                                                const ProtobufCMessage *cfg)
{
    Envoy__Config__Listener__V3__Filter *f = GA_MSG(c->a, Envoy__Config__Listener__V3__Filter,
                                                    envoy__config__listener__v3__filter__init);
    f->name = ga_strdup(c->a, name);
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = gen_any(c, cfg);
    return f;
}

void gen_listener_filter_add(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l,
                             const char *name, const ProtobufCMessage *cfg)
{
    Envoy__Config__Listener__V3__ListenerFilter *lf =
        GA_MSG(c->a, Envoy__Config__Listener__V3__ListenerFilter,
               envoy__config__listener__v3__listener_filter__init);
    lf->name = ga_strdup(c->a, name);
    lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    lf->typed_config = gen_any(c, cfg);
    GA_PUSH(c->a, l->listener_filters, l->n_listener_filters, lf);
}

void gen_add_tls_inspector(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l)
{
    Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
        GA_MSG(c->a, Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector,
               envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__init);
    gen_listener_filter_add(c, l, "envoy.filters.listener.tls_inspector", &ti->base);
}

static void gen_http_filter(gen_ctx *c, HCM *h, const char *name, const ProtobufCMessage *cfg)
{
    HttpFilter *f = GA_MSG(c->a, HttpFilter,
                           envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init);
    f->name = ga_strdup(c->a, name);
    f->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = gen_any(c, cfg);
    GA_PUSH(c->a, h->http_filters, h->n_http_filters, f);
}

HCM *gen_hcm(gen_ctx *c, const char *stat_prefix, const char *route_name)
{
    HCM *h = GA_MSG(c->a, HCM,
                    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init);
    h->stat_prefix = ga_strdup(c->a, stat_prefix);
    h->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    h->rds = GA_MSG(c->a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds,
                    envoy__extensions__filters__network__http_connection_manager__v3__rds__init);
    h->rds->config_source = gen_ads_source(c);
    h->rds->route_config_name = ga_strdup(c->a, route_name);
    if (!c->grpc) {
        Envoy__Extensions__Filters__Http__Cors__V3__Cors *cors =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Cors__V3__Cors,
                   envoy__extensions__filters__http__cors__v3__cors__init);
        gen_http_filter(c, h, "envoy.filters.http.cors", &cors->base);
    }
    Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *fault =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault,
               envoy__extensions__filters__http__fault__v3__httpfault__init);
    gen_http_filter(c, h, "envoy.filters.http.fault", &fault->base);
    Envoy__Extensions__Filters__Http__Router__V3__Router *router =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Router__V3__Router,
               envoy__extensions__filters__http__router__v3__router__init);
    /* gRPC and Envoy both need the router last */
    gen_http_filter(c, h, "envoy.filters.http.router", &router->base);
    return h;
}

Envoy__Config__Listener__V3__Filter *gen_hcm_filter(gen_ctx *c, const char *stat_prefix,
                                                    const char *route_name)
{
    HCM *h = gen_hcm(c, stat_prefix, route_name);
    return gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base);
}

Envoy__Config__Listener__V3__Filter *gen_tcp_proxy_filter(gen_ctx *c, const char *stat_prefix,
                                                          const char *cluster)
{
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        GA_MSG(c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__init);
    tp->stat_prefix = ga_strdup(c->a, stat_prefix);
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
    tp->cluster = ga_strdup(c->a, cluster);
    return gen_filter(c, "envoy.filters.network.tcp_proxy", &tp->base);
}

/* ---- L4 routes (VirtualService tcp and tls) -------------------------------------------------- */

bool gen_l4_match_applies(gen_ctx *c, const mesh_l4_match *m, const char *gateway, uint32_t port)
{
    if (m->port && port && m->port != port)
        return false;
    if (m->ngateways) {
        bool found = false;
        for (size_t i = 0; i < m->ngateways && !found; i++)
            found = m->gateways[i] && strcmp(m->gateways[i], gateway) == 0;
        if (!found)
            return false;
    }
    if (m->source_labels.n && !mesh_labels_subset(&m->source_labels, &c->p->labels))
        return false;
    return true;
}

const mesh_l4_route *gen_vs_tcp_route(gen_ctx *c, const mesh_virtual_service *vs,
                                      const char *gateway, uint32_t port)
{
    /* Istio: the first tcp route with a matching clause (or none) wins */
    for (size_t i = 0; vs && i < vs->ntcp; i++) {
        const mesh_l4_route *r = &vs->tcp[i];
        if (r->nmatches == 0)
            return r;
        for (size_t m = 0; m < r->nmatches; m++)
            if (gen_l4_match_applies(c, &r->matches[m], gateway, port))
                return r;
    }
    return NULL;
}

bool gen_vs_l4_uses_labels(const mesh_virtual_service *vs)
{
    for (size_t i = 0; vs && i < vs->ntcp; i++)
        for (size_t m = 0; m < vs->tcp[i].nmatches; m++)
            if (vs->tcp[i].matches[m].source_labels.n)
                return true;
    for (size_t i = 0; vs && i < vs->ntls; i++)
        for (size_t m = 0; m < vs->tls[i].nmatches; m++)
            if (vs->tls[i].matches[m].source_labels.n)
                return true;
    return false;
}

Envoy__Config__Listener__V3__Filter *gen_tcp_route_filter(gen_ctx *c, const mesh_l4_route *r,
                                                          uint32_t ctx_port)
{
    /* weight 0 carries no traffic and Envoy rejects it in weighted_clusters */
    size_t live = 0, last = 0;
    for (size_t i = 0; r && i < r->nroute; i++) {
        if (r->nroute > 1 && r->route[i].weight <= 0)
            continue;
        live++;
        last = i;
    }
    if (live <= 1) {
        const char *cl = live ? gen_dest_cluster(c, &r->route[last].destination, ctx_port)
                              : "BlackHoleCluster";
        return gen_tcp_proxy_filter(c, cl, cl);
    }
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        GA_MSG(c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
               envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__init);
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc =
        GA_MSG(c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster,
               envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__init);
    for (size_t i = 0; i < r->nroute; i++) {
        if (r->route[i].weight <= 0)
            continue;
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight *cw =
            GA_MSG(c->a, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight,
                   envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__cluster_weight__init);
        cw->name = gen_dest_cluster(c, &r->route[i].destination, ctx_port);
        cw->weight = (uint32_t)r->route[i].weight;
        GA_PUSH(c->a, wc->clusters, wc->n_clusters, cw);
    }
    /* Istio names the stats of a split after the first destination's cluster */
    tp->stat_prefix = ga_strdup(c->a, wc->clusters[0]->name);
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
    tp->weighted_clusters = wc;
    return gen_filter(c, "envoy.filters.network.tcp_proxy", &tp->base);
}

/* ---- clusters ------------------------------------------------------------------------------ */

typedef Envoy__Config__Cluster__V3__Cluster Cluster;

/* The policy that applies to svc:port[/subset]: the subset's, else the port-level one, else
 * the rule's (a simplification of Istio's field-by-field merge). */
const mesh_traffic_policy *gen_policy(const mesh_destination_rule *dr, uint32_t port,
                                      const char *subset)
{
    if (!dr)
        return NULL;
    const mesh_subset *ss = gen_dr_subset(dr, subset);
    if (ss && ss->policy)
        return ss->policy;
    for (size_t i = 0; i < dr->nport_policies; i++)
        if (dr->port_policies[i].port == port)
            return &dr->port_policies[i].policy;
    return dr->policy;
}

/* Sorted, unique SPIFFE identities of the endpoints serving svc:port (Istio's
 * ServiceAccounts[host][port]): spiffe://<trust domain>/ns/<endpoint ns>/sa/<sa>. */
static void gen_service_sans(gen_ctx *c, const mesh_service *svc, uint32_t port,
                             char ***sans, size_t *nsans)
{
    const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, svc->hostname);
    const char *td = c->trust_domain ? c->trust_domain : "cluster.local";
    for (size_t i = 0; sh && i < sh->neps; i++) {
        const mesh_endpoint *ep = &sh->eps[i];
        if (ep->service_port != port || !ep->service_account || !ep->service_account[0])
            continue;
        char *id = ga_printf(c->a, "spiffe://%s/ns/%s/sa/%s", td,
                             sh->ns ? sh->ns : svc->meta.ns, ep->service_account);
        size_t k = 0;
        while (k < *nsans && strcmp((*sans)[k], id) < 0)
            k++;
        if (k < *nsans && strcmp((*sans)[k], id) == 0)
            continue;
        GA_PUSH(c->a, *sans, *nsans, id); /* grow by one, then shift into place */
        memmove(&(*sans)[k + 1], &(*sans)[k], (*nsans - 1 - k) * sizeof **sans);
        (*sans)[k] = id;
    }
}

Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
gen_grpc_common_tls(gen_ctx *c, char *const *sans, size_t nsans)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
               envoy__extensions__transport_sockets__tls__v3__common_tls_context__init);
    ct->tls_certificate_provider_instance =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateProviderPluginInstance,
               envoy__extensions__transport_sockets__tls__v3__certificate_provider_plugin_instance__init);
    ct->tls_certificate_provider_instance->instance_name = ga_strdup(c->a, "default");
    ct->tls_certificate_provider_instance->certificate_name = ga_strdup(c->a, "default");
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext *cv =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext,
               envoy__extensions__transport_sockets__tls__v3__common_tls_context__combined_certificate_validation_context__init);
    cv->default_validation_context =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
               envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init);
    for (size_t i = 0; i < nsans; i++) {
        Envoy__Type__Matcher__V3__StringMatcher *m =
            GA_MSG(c->a, Envoy__Type__Matcher__V3__StringMatcher,
                   envoy__type__matcher__v3__string_matcher__init);
        m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        m->exact = ga_strdup(c->a, sans[i]);
        GA_PUSH(c->a, cv->default_validation_context->match_subject_alt_names,
                cv->default_validation_context->n_match_subject_alt_names, m);
    }
    /* the (deprecated) CertificateProviderInstance is what istiod sends and gRPC 1.51 reads */
    cv->validation_context_certificate_provider_instance =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CertificateProviderInstance,
               envoy__extensions__transport_sockets__tls__v3__common_tls_context__certificate_provider_instance__init);
    cv->validation_context_certificate_provider_instance->instance_name = ga_strdup(c->a, "default");
    cv->validation_context_certificate_provider_instance->certificate_name = ga_strdup(c->a, "ROOTCA");
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    ct->combined_validation_context = cv;
    return ct;
}

static Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *
gen_sds_secret(gen_ctx *c, const char *name)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sc =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig,
               envoy__extensions__transport_sockets__tls__v3__sds_secret_config__init);
    sc->name = ga_strdup(c->a, name);
    sc->sds_config = gen_ads_source(c);
    return sc;
}

void gen_sds_certificate(gen_ctx *c,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                         const char *cred)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *cert =
        gen_sds_secret(c, cred ? ga_printf(c->a, "kubernetes://%s", cred) : "default");
    GA_PUSH(c->a, ct->tls_certificate_sds_secret_configs,
            ct->n_tls_certificate_sds_secret_configs, cert);
}

void gen_sds_validation(gen_ctx *c,
                        Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                        const char *cred)
{
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    ct->validation_context_sds_secret_config =
        gen_sds_secret(c, cred ? ga_printf(c->a, "kubernetes://%s-cacert", cred) : "ROOTCA");
}

Envoy__Config__Core__V3__TransportSocket *gen_tls_transport_socket(gen_ctx *c,
                                                                   const ProtobufCMessage *ctx)
{
    Envoy__Config__Core__V3__TransportSocket *ts =
        GA_MSG(c->a, Envoy__Config__Core__V3__TransportSocket,
               envoy__config__core__v3__transport_socket__init);
    /* gRPC requires exactly this name */
    ts->name = ga_strdup(c->a, "envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = gen_any(c, ctx);
    return ts;
}

static Envoy__Config__Core__V3__TransportSocket *gen_upstream_tls(gen_ctx *c,
                                                                const mesh_traffic_policy *tp,
                                                                const mesh_service *svc,
                                                                uint32_t port, const char *sni)
{
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
               envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__init);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct;
    if (c->grpc) {
        /* proxyless gRPC (istiod's grpcgen): ISTIO_MUTUAL only, certificates from the
         * bootstrap's certificate-provider instance "default" (certificate "default", root
         * "ROOTCA"); the peer must hold one of the service's identities (the rule's
         * subjectAltNames when given). No SNI unless the rule names one, like istiod. */
        char **sans = NULL;
        size_t nsans = 0;
        if (tp->tls.nsubject_alt_names) {
            sans = tp->tls.subject_alt_names;
            nsans = tp->tls.nsubject_alt_names;
        } else {
            gen_service_sans(c, svc, port, &sans, &nsans);
        }
        ct = gen_grpc_common_tls(c, sans, nsans);
        u->common_tls_context = ct;
        if (tp->tls.sni && tp->tls.sni[0])
            u->sni = ga_strdup(c->a, tp->tls.sni);
    } else {
        ct = GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
                    envoy__extensions__transport_sockets__tls__v3__common_tls_context__init);
        u->common_tls_context = ct;
        u->sni = ga_strdup(c->a, tp->tls.sni && tp->tls.sni[0] ? tp->tls.sni : sni);
        bool istio = tp->tls.mode == MESH_TLS_ISTIO_MUTUAL;
        /* ISTIO_MUTUAL presents the workload's own certificate, not a Secret */
        const char *cred = istio ? NULL : tp->tls.credential_name;
        if (istio || tp->tls.mode == MESH_TLS_MUTUAL)
            gen_sds_certificate(c, ct, cred);
        gen_sds_validation(c, ct, cred);
        if (istio) {
            GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "istio-peer-exchange"));
            GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "istio"));
        }
    }
    return gen_tls_transport_socket(c, &u->base);
}

static void gen_apply_policy(gen_ctx *c, Cluster *cl, const mesh_traffic_policy *tp,
                             const mesh_service *svc, uint32_t port, const char *sni)
{
    if (!tp)
        return;
    if (tp->has_connection_pool && tp->connection_pool.tcp_connect_timeout_ns > 0)
        cl->connect_timeout = gen_duration(c, tp->connection_pool.tcp_connect_timeout_ns);
    if (!c->grpc) {
        switch (tp->lb) {
        case MESH_LB_ROUND_ROBIN: cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN; break;
        case MESH_LB_RANDOM: cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM; break;
        case MESH_LB_RING_HASH:
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;
            cl->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG;
            cl->ring_hash_lb_config = GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig,
                                             envoy__config__cluster__v3__cluster__ring_hash_lb_config__init);
            cl->ring_hash_lb_config->minimum_ring_size =
                gen_u64(c, tp->hash.minimum_ring_size ? tp->hash.minimum_ring_size : 1024);
            break;
        case MESH_LB_PASSTHROUGH:
            cl->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
            cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
            cl->eds_cluster_config = NULL;
            break;
        default: break;
        }
        if (tp->has_connection_pool) {
            Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th = cl->circuit_breakers->thresholds[0];
            if (tp->connection_pool.tcp_max_connections >= 0)
                th->max_connections = gen_u32(c, (uint32_t)tp->connection_pool.tcp_max_connections);
            if (tp->connection_pool.http1_max_pending_requests >= 0)
                th->max_pending_requests = gen_u32(c, (uint32_t)tp->connection_pool.http1_max_pending_requests);
            if (tp->connection_pool.http2_max_requests >= 0)
                th->max_requests = gen_u32(c, (uint32_t)tp->connection_pool.http2_max_requests);
            if (tp->connection_pool.max_retries >= 0)
                th->max_retries = gen_u32(c, (uint32_t)tp->connection_pool.max_retries);
        }
        if (tp->has_outlier_detection) {
            Envoy__Config__Cluster__V3__OutlierDetection *od =
                GA_MSG(c->a, Envoy__Config__Cluster__V3__OutlierDetection,
                       envoy__config__cluster__v3__outlier_detection__init);
            if (tp->outlier_detection.consecutive_5xx_errors >= 0)
                od->consecutive_5xx = gen_u32(c, (uint32_t)tp->outlier_detection.consecutive_5xx_errors);
            else
                od->enforcing_consecutive_5xx = gen_u32(c, 0);
            if (tp->outlier_detection.consecutive_gateway_errors >= 0) {
                od->consecutive_gateway_failure =
                    gen_u32(c, (uint32_t)tp->outlier_detection.consecutive_gateway_errors);
                od->enforcing_consecutive_gateway_failure = gen_u32(c, 100);
            }
            if (tp->outlier_detection.interval_ns > 0)
                od->interval = gen_duration(c, tp->outlier_detection.interval_ns);
            if (tp->outlier_detection.base_ejection_time_ns > 0)
                od->base_ejection_time = gen_duration(c, tp->outlier_detection.base_ejection_time_ns);
            if (tp->outlier_detection.max_ejection_percent >= 0)
                od->max_ejection_percent = gen_u32(c, (uint32_t)tp->outlier_detection.max_ejection_percent);
            cl->outlier_detection = od;
        }
    }
    /* gRPC: only ISTIO_MUTUAL, as istiod (SIMPLE and MUTUAL would need a certificate
     * provider per credential in the client's bootstrap; they stay plaintext) */
    if (tp->has_tls && (tp->tls.mode == MESH_TLS_ISTIO_MUTUAL ||
                        (!c->grpc && (tp->tls.mode == MESH_TLS_SIMPLE || tp->tls.mode == MESH_TLS_MUTUAL))))
        cl->transport_socket = gen_upstream_tls(c, tp, svc, port, sni);
}

Cluster *gen_outbound_cluster(gen_ctx *c, const mesh_service *svc, const mesh_port *port,
                              const char *subset)
{
    Cluster *cl = GA_MSG(c->a, Cluster, envoy__config__cluster__v3__cluster__init);
    if (subset && !subset[0])
        subset = NULL;
    cl->name = gen_cluster_name(c, port->port, subset, svc->hostname);
    cl->connect_timeout = gen_duration(c, 10LL * 1000000000);
    cl->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    bool dns = svc->resolution == MESH_RESOLUTION_DNS ||
               svc->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN;
    bool passthrough = !c->grpc && svc->resolution == MESH_RESOLUTION_PASSTHROUGH;
    if (dns) {
        /* gRPC accepts only IPs in EDS, so a host name there gets the whole response
         * NACKed; its only DNS cluster type is LOGICAL_DNS with exactly one endpoint (gRPC
         * resolves it itself). Istio's grpcgen sends EDS here; this deliberately differs. */
        cl->type = svc->resolution == MESH_RESOLUTION_DNS && !c->grpc
                       ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS
                       : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS;
        /* DNS clusters carry their endpoints inline: the service's own host:port unless
         * the ServiceEntry lists endpoints */
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
            GA_MSG(c->a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
                   envoy__config__endpoint__v3__cluster_load_assignment__init);
        la->cluster_name = cl->name;
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle =
            GA_MSG(c->a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                   envoy__config__endpoint__v3__locality_lb_endpoints__init);
        lle->locality = GA_MSG(c->a, Envoy__Config__Core__V3__Locality, envoy__config__core__v3__locality__init);
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, svc->hostname);
        for (size_t i = 0; sh && i < sh->neps; i++) {
            if (sh->eps[i].service_port != port->port)
                continue;
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints,
                    gen_lb_endpoint(c, sh->eps[i].address, sh->eps[i].port));
            if (cl->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS)
                break;
        }
        if (lle->n_lb_endpoints == 0)
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints,
                    gen_lb_endpoint(c, svc->hostname, port->port));
        GA_PUSH(c->a, la->endpoints, la->n_endpoints, lle);
        cl->load_assignment = la;
        if (!c->grpc) {
            cl->dns_lookup_family = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY;
            /* as Istio's cluster builder: follow the records' TTL, else re-resolve at the
             * mesh config's dnsRefreshRate, whose default Istio raised to 60s (Envoy's own
             * 5s overloads DNS servers, since Envoy ignores negative-answer TTLs) */
            cl->respect_dns_ttl = true;
            cl->dns_refresh_rate = gen_duration(c, 60LL * 1000000000);
        }
    } else if (passthrough) {
        cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
        cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
    } else {
        cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
        cl->eds_cluster_config = GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
                                        envoy__config__cluster__v3__cluster__eds_cluster_config__init);
        cl->eds_cluster_config->eds_config = gen_ads_source(c);
        cl->eds_cluster_config->service_name = cl->name;
    }
    if (!passthrough) {
        /* gRPC refuses anything but ROUND_ROBIN/RING_HASH (and 1.51's ring hash crashes);
         * Envoy gets Istio's default, LEAST_REQUEST */
        cl->lb_policy = c->grpc ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN
                                : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
    }
    if (!c->grpc) {
        /* Istio's defaults: effectively unlimited, so only the DR's limits bite */
        cl->circuit_breakers = GA_MSG(c->a, Envoy__Config__Cluster__V3__CircuitBreakers,
                                      envoy__config__cluster__v3__circuit_breakers__init);
        Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th =
            GA_MSG(c->a, Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds,
                   envoy__config__cluster__v3__circuit_breakers__thresholds__init);
        th->max_connections = gen_u32(c, 4294967295u);
        th->max_pending_requests = gen_u32(c, 4294967295u);
        th->max_requests = gen_u32(c, 4294967295u);
        th->max_retries = gen_u32(c, 4294967295u);
        th->track_remaining = true;
        GA_PUSH(c->a, cl->circuit_breakers->thresholds, cl->circuit_breakers->n_thresholds, th);
        if (port->protocol == MESH_PROTO_HTTP2 || port->protocol == MESH_PROTO_GRPC ||
            port->protocol == MESH_PROTO_GRPC_WEB)
            cl->http2_protocol_options = GA_MSG(c->a, Envoy__Config__Core__V3__Http2ProtocolOptions,
                                                envoy__config__core__v3__http2_protocol_options__init);
    }
    const mesh_destination_rule *dr = mesh_snapshot_destination_rule(c->s, svc->hostname, c->p->ns);
    char *sni = ga_printf(c->a, "outbound_.%u_.%s_.%s", port->port, subset ? subset : "",
                          svc->hostname);
    gen_apply_policy(c, cl, gen_policy(dr, port->port, subset), svc, port->port, sni);
    return cl;
}

void gen_list_outbound_clusters(gen_ctx *c, const char *const *names, size_t nnames,
                                gen_items *out)
{
    if (names) {
        for (size_t i = 0; i < nnames; i++) {
            uint32_t port;
            char *subset, *host;
            if (!names[i] || !gen_parse_cluster_name(c, names[i], &port, &subset, &host))
                continue;
            const mesh_service *svc = mesh_snapshot_service(c->s, host);
            if (!svc || !gen_service_port(svc, port) || !gen_service_visible(c, svc))
                continue;
            if (subset[0] &&
                !gen_dr_subset(mesh_snapshot_destination_rule(c->s, host, c->p->ns), subset))
                continue;
            gen_item it = { .name = ga_strdup(c->a, names[i]), .extra = gen_dr_key(c, host),
                            .svc = svc, .port = port, .subset = subset };
            gen_items_add(c, out, &it);
        }
        return;
    }
    for (size_t i = 0; i < c->s->nservices; i++) {
        const mesh_service *svc = c->s->services[i];
        if (!gen_service_visible(c, svc))
            continue;
        const mesh_destination_rule *dr =
            mesh_snapshot_destination_rule(c->s, svc->hostname, c->p->ns);
        char *drk = gen_dr_key(c, svc->hostname);
        for (size_t p = 0; p < svc->nports; p++) {
            gen_item it = { .name = gen_cluster_name(c, svc->ports[p].port, NULL, svc->hostname),
                            .extra = drk, .svc = svc, .port = svc->ports[p].port, .subset = "" };
            gen_items_add(c, out, &it);
            for (size_t k = 0; dr && k < dr->nsubsets; k++) {
                if (!dr->subsets[k].name)
                    continue;
                gen_item st = { .name = gen_cluster_name(c, svc->ports[p].port, dr->subsets[k].name,
                                                         svc->hostname),
                                .extra = drk, .svc = svc, .port = svc->ports[p].port,
                                .subset = dr->subsets[k].name };
                gen_items_add(c, out, &st);
            }
        }
    }
}

static ProtobufCMessage *gen_outbound_cluster_build(gen_ctx *c, const gen_item *it)
{
    const mesh_port *port = gen_service_port(it->svc, it->port);
    if (!port)
        return NULL;
    return &gen_outbound_cluster(c, it->svc, port, it->subset)->base;
}

const gen_type_ops gen_envoy_cds_outbound = { gen_list_outbound_clusters, gen_outbound_cluster_build };

/* ---- endpoints ------------------------------------------------------------------------------- */

static const mesh_labels *gen_subset_labels(gen_ctx *c, const char *host, const char *subset)
{
    if (!subset || !subset[0])
        return NULL;
    const mesh_subset *ss = gen_dr_subset(mesh_snapshot_destination_rule(c->s, host, c->p->ns), subset);
    return ss ? &ss->labels : NULL;
}

static bool gen_ep_selected(const mesh_endpoint *ep, uint32_t port, const mesh_labels *sel)
{
    if (ep->service_port != port)
        return false;
    if (sel && !mesh_labels_subset(sel, &ep->labels))
        return false;
    return true;
}

/* EDS names are only ever requested by name; a wildcard request (names NULL) gets every
 * cluster's assignment. The key extra is a hash of exactly the endpoint fields that shape
 * the message, so an endpoint change in one shard only invalidates that shard's entries. */
static void gen_eds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    gen_items all = { 0 };
    if (!names) {
        gen_list_outbound_clusters(c, NULL, 0, &all);
    } else {
        for (size_t i = 0; i < nnames; i++) {
            uint32_t port;
            char *subset, *host;
            if (!names[i] || !gen_parse_cluster_name(c, names[i], &port, &subset, &host))
                continue;
            const mesh_service *svc = mesh_snapshot_service(c->s, host);
            if (!svc || !gen_service_port(svc, port) || !gen_service_visible(c, svc))
                continue;
            gen_item it = { .name = ga_strdup(c->a, names[i]), .svc = svc, .port = port,
                            .subset = subset };
            gen_items_add(c, &all, &it);
        }
    }
    for (size_t i = 0; i < all.n; i++) {
        gen_item it = all.v[i];
        const mesh_labels *sel = gen_subset_labels(c, it.svc->hostname, it.subset);
        if (it.subset && it.subset[0] && !sel)
            continue; /* unknown subset: the cluster does not exist */
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, it.svc->hostname);
        uint64_t h = util_hash64(it.name, strlen(it.name), 1469598103934665603ULL);
        for (size_t e = 0; sh && e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (!gen_ep_selected(ep, it.port, sel))
                continue;
            h = util_hash64(ep->address ? ep->address : "", strlen(ep->address ? ep->address : ""), h);
            uint32_t nums[4] = { ep->port, ep->weight, ep->ready, (uint32_t)e };
            h = util_hash64(nums, sizeof nums, h);
            h = util_hash64(ep->locality ? ep->locality : "", strlen(ep->locality ? ep->locality : ""), h);
        }
        it.extra = ga_printf(c->a, "%llu/%016llx", sh ? (unsigned long long)sh->version : 0ULL,
                             (unsigned long long)h);
        it.eds = true;
        gen_items_add(c, out, &it);
    }
}

static int gen_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static ProtobufCMessage *gen_eds_build(gen_ctx *c, const gen_item *it)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
        GA_MSG(c->a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
               envoy__config__endpoint__v3__cluster_load_assignment__init);
    la->cluster_name = ga_strdup(c->a, it->name);
    const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, it->svc->hostname);
    if (!sh)
        return &la->base;
    const mesh_labels *sel = gen_subset_labels(c, it->svc->hostname, it->subset);

    /* distinct localities, sorted, each a group; a locality message is always present
     * (gRPC drops endpoints without one) */
    char **locs = NULL;
    size_t nlocs = 0;
    for (size_t e = 0; e < sh->neps; e++) {
        if (!gen_ep_selected(&sh->eps[e], it->port, sel))
            continue;
        const char *l = sh->eps[e].locality ? sh->eps[e].locality : "";
        bool seen = false;
        for (size_t k = 0; k < nlocs && !seen; k++)
            seen = strcmp(locs[k], l) == 0;
        if (!seen)
            GA_PUSH(c->a, locs, nlocs, (char *)l);
    }
    if (nlocs > 1)
        qsort(locs, nlocs, sizeof *locs, gen_cmp_str);
    for (size_t k = 0; k < nlocs; k++) {
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle =
            GA_MSG(c->a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                   envoy__config__endpoint__v3__locality_lb_endpoints__init);
        lle->locality = GA_MSG(c->a, Envoy__Config__Core__V3__Locality, envoy__config__core__v3__locality__init);
        /* "region/zone/subzone" */
        char *l = ga_strdup(c->a, locs[k]);
        char *z = strchr(l, '/');
        char *sz = NULL;
        if (z) {
            *z++ = '\0';
            sz = strchr(z, '/');
            if (sz)
                *sz++ = '\0';
        }
        lle->locality->region = l;
        lle->locality->zone = z ? z : ga_strdup(c->a, "");
        lle->locality->sub_zone = sz ? sz : ga_strdup(c->a, "");
        uint32_t total = 0;
        for (size_t e = 0; e < sh->neps; e++) {
            const mesh_endpoint *ep = &sh->eps[e];
            if (!gen_ep_selected(ep, it->port, sel) ||
                strcmp(ep->locality ? ep->locality : "", locs[k]) != 0 || !ep->address)
                continue;
            /* gRPC NACKs duplicate addresses: keep the first (prefer a ready one) */
            bool dup = false;
            for (size_t d = 0; d < la->n_endpoints && !dup; d++) {
                Envoy__Config__Endpoint__V3__LocalityLbEndpoints *g = la->endpoints[d];
                for (size_t x = 0; x < g->n_lb_endpoints && !dup; x++) {
                    Envoy__Config__Core__V3__SocketAddress *sa = g->lb_endpoints[x]->endpoint->address->socket_address;
                    dup = sa->port_value == ep->port && strcmp(sa->address, ep->address) == 0;
                }
            }
            for (size_t x = 0; x < lle->n_lb_endpoints && !dup; x++) {
                Envoy__Config__Core__V3__SocketAddress *sa = lle->lb_endpoints[x]->endpoint->address->socket_address;
                if (sa->port_value == ep->port && strcmp(sa->address, ep->address) == 0) {
                    dup = true;
                    if (ep->ready)
                        lle->lb_endpoints[x]->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
                }
            }
            if (dup)
                continue;
            Envoy__Config__Endpoint__V3__LbEndpoint *lb = gen_lb_endpoint(c, ep->address, ep->port);
            lb->health_status = ep->ready ? ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY
                                          : ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY;
            uint32_t w = ep->weight ? ep->weight : 1;
            lb->load_balancing_weight = gen_u32(c, w);
            total += w;
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints, lb);
        }
        if (lle->n_lb_endpoints == 0)
            continue;
        /* gRPC silently drops a locality without a weight */
        lle->load_balancing_weight = gen_u32(c, total ? total : 1);
        lle->priority = 0;
        GA_PUSH(c->a, la->endpoints, la->n_endpoints, lle);
    }
    return &la->base;
}

const gen_type_ops gen_eds = { gen_eds_list, gen_eds_build };
