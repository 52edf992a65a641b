/* route: VirtualService HTTP routes to Envoy routes (matches, destinations and weights,
 * hash policies, retries, timeouts, faults, CORS, header operations, rewrites, redirects,
 * mirrors) for every flavour; gRPC gets only what gRPC's xDS client accepts. */
/* Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * (immutable) snapshot, so it takes no locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

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
static HeaderMatcher *gen_header_matcher(gen_ctx *c, const char *name, const mesh_string_match *m,
                                         bool present, bool invert)
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

/* ingress: the VirtualService has Ingress semantics (istiod's UseIngressSemantics): a uri
 * prefix other than "/" matches whole path segments (path_separated_prefix, without a
 * trailing "/"). Not for gRPC, whose routing has no such matcher. */
static Envoy__Config__Route__V3__RouteMatch *gen_route_match(gen_ctx *c, const mesh_http_match *m,
                                                             bool ingress)
{
    Envoy__Config__Route__V3__RouteMatch *rm = GA_MSG(c->a, Envoy__Config__Route__V3__RouteMatch,
                                                      envoy__config__route__v3__route_match__init);
    const mesh_string_match *uri = m ? &m->uri : NULL;
    if (uri && uri->kind == MESH_MATCH_EXACT) {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
        rm->path = ga_strdup(c->a, uri->value);
    } else if (uri && uri->kind == MESH_MATCH_PREFIX && ingress && !c->grpc && uri->value &&
               uri->value[0] && strcmp(uri->value, "/") != 0) {
        rm->path_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX;
        size_t n = strlen(uri->value);
        if (n > 1 && uri->value[n - 1] == '/') /* strings.TrimSuffix: one */
            n--;
        char *p = ga_alloc(c->a, n + 1);
        memcpy(p, uri->value, n);
        p[n] = '\0';
        rm->path_separated_prefix = p;
    } else if (uri && uri->kind == MESH_MATCH_REGEX) {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
        rm->safe_regex = gen_regex(c, uri->value);
    } else {
        rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        rm->prefix = ga_strdup(
            c->a, uri && uri->kind == MESH_MATCH_PREFIX && uri->value && uri->value[0] ? uri->value
                                                                                       : "/");
    }
    if (!m)
        return rm;
    if (m->ignore_uri_case)
        rm->case_sensitive = gen_bool(c, false);
    static const struct {
        size_t off;
        const char *hdr;
    } pseudo[] = {
        {offsetof(mesh_http_match, scheme), ":scheme"},
        {offsetof(mesh_http_match, method), ":method"},
        {offsetof(mesh_http_match, authority), ":authority"},
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
    Envoy__Type__V3__FractionalPercent *fp =
        GA_MSG(c->a, Envoy__Type__V3__FractionalPercent, envoy__type__v3__fractional_percent__init);
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
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
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

char *gen_dest_cluster(gen_ctx *c, const mesh_destination *d, uint32_t ctx_port)
{
    return gen_cluster_name(c, gen_dest_port(c, d, ctx_port), d->subset, d->host);
}

static Envoy__Config__Route__V3__RetryPolicy *gen_retry(gen_ctx *c, const char *retry_on,
                                                        uint32_t attempts, int64_t per_try_ns)
{
    Envoy__Config__Route__V3__RetryPolicy *rp = GA_MSG(
        c->a, Envoy__Config__Route__V3__RetryPolicy, envoy__config__route__v3__retry_policy__init);
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
    const mesh_destination_rule *dr = gen_dr(c, host);
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
        hp->connection_properties = GA_MSG(
            c->a, Envoy__Config__Route__V3__RouteAction__HashPolicy__ConnectionProperties,
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
    uint64_t total64 = 0;
    for (size_t i = 0; i < hr->nroute; i++) {
        if (hr->nroute > 1 && hr->route[i].weight <= 0)
            continue;
        live++;
        last = i;
        total64 += hr->route[i].weight > 0 ? (uint64_t)hr->route[i].weight : 100;
    }
    /* Weights need not sum to 100 (istiod's rule): total_weight states the sum, which gRPC
     * requires to match. A sum past uint32 is scaled down (each weight stays >= 1). */
    uint64_t scale_div = total64 > UINT32_MAX ? total64 / (UINT32_MAX / 2) + 1 : 1;
    uint32_t total = 0;
    for (size_t i = 0; scale_div > 1 && i < hr->nroute; i++) {
        uint32_t w = (uint32_t)((uint64_t)hr->route[i].weight / scale_div);
        if (hr->route[i].weight > 0)
            total += w ? w : 1;
    }
    if (scale_div == 1)
        total = (uint32_t)total64;
    if (live <= 1) {
        ra->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
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
            uint32_t w = (uint32_t)((uint64_t)hr->route[i].weight / scale_div);
            cw->weight = gen_u32(c, w ? w : 1);
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
            ra->max_stream_duration =
                GA_MSG(c->a, Envoy__Config__Route__V3__RouteAction__MaxStreamDuration,
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
    struct {
        char **v;
        size_t n;
        char **out;
    } lists[] = {
        {hr->cors.allow_methods, hr->cors.nallow_methods, &cp->allow_methods},
        {hr->cors.allow_headers, hr->cors.nallow_headers, &cp->allow_headers},
        {hr->cors.expose_headers, hr->cors.nexpose_headers, &cp->expose_headers},
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
    r->match = gen_route_match(c, m, vs->ingress_semantics);
    /* istiod names the VirtualService on every route made from it (gRPC too: grpcgen
     * builds its routes with the sidecar's route translation) */
    gen_config_metadata(c, &r->metadata, "virtual-service", vs->meta.ns, vs->meta.name);
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
        case 302:
            ra->response_code =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__FOUND;
            break;
        case 303:
            ra->response_code =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__SEE_OTHER;
            break;
        case 307:
            ra->response_code =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__TEMPORARY_REDIRECT;
            break;
        case 308:
            ra->response_code =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__PERMANENT_REDIRECT;
            break;
        default:
            ra->response_code =
                ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__MOVED_PERMANENTLY;
            break;
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
            dr->body->specifier_case =
                ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
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
    Envoy__Config__Route__V3__VirtualHost *vh = GA_MSG(
        c->a, Envoy__Config__Route__V3__VirtualHost, envoy__config__route__v3__virtual_host__init);
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
