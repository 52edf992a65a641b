/* parse_virtualservice: VirtualService (http with matches, retries, faults, CORS,
 * rewrites, redirects, mirrors and delegation; tcp; tls). Stricter than Istio in one place,
 * by design: weights of a route with several destinations must sum to 100, since gRPC's
 * xDS client refuses weighted clusters that do not sum to the total weight. Validated the way
 * istiod's validation webhook (pilot/pkg/config/validation) would, with the reasons worded like
 * Istio's; fields we do not model are accepted and ignored (listed by mesh_unsupported_fields). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

#define MS (1000000LL)

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
    cJSON_ArrayForEach(it, hm)
    {
        const char *name = it->string ? it->string : "";
        mp_path(p2, p, name);
        mesh_header_match *h = &(*out)[*n];
        *h = (mesh_header_match){0};
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
        if (mp_parse_string_match(c, it, p2, false, true, &h->match) != 0)
            return -1;
        h->present = h->match.kind == MESH_MATCH_NONE;
    }
    return 0;
}

static int parse_http_match(mp_ctx *c, const cJSON *m, const char *path, mesh_http_match *out)
{
    static const char *const fields[] = {"uri", "scheme", "method", "authority"};
    mesh_string_match *dst[] = {&out->uri, &out->scheme, &out->method, &out->authority};
    char p[MP_PATH_MAX];
    int64_t port = 0;

    if (mp_require_obj(c, m, path) != 0)
        return -1;
    if (mp_get_str(c, m, "name", path, &out->name) != 0)
        return -1;
    for (size_t f = 0; f < 4; f++) {
        const cJSON *sm;
        if (mp_get_obj(c, m, fields[f], path, &sm) != 0)
            return -1;
        /* uri allows an empty prefix (Envoy does); the others do not. */
        if (sm &&
            mp_parse_string_match(c, sm, mp_path(p, path, fields[f]), true, f == 0, dst[f]) != 0)
            return -1;
    }
    if (parse_header_matches(c, m, "headers", path, false, &out->headers, &out->nheaders) != 0 ||
        parse_header_matches(c, m, "withoutHeaders", path, true, &out->headers, &out->nheaders) !=
            0 ||
        parse_header_matches(c, m, "queryParams", path, false, &out->query_params,
                             &out->nquery_params) != 0)
        return -1;
    if (mp_get_int(c, m, "port", path, 0, 65535, &port, NULL) != 0)
        return -1;
    out->port = (uint32_t)port;
    if (mp_get_labels(c, m, "sourceLabels", path, &out->source_labels) != 0 ||
        mp_get_str(c, m, "sourceNamespace", path, &out->source_namespace) != 0 ||
        mp_parse_gateways(c, m, path, &out->gateways, &out->ngateways) != 0 ||
        mp_get_bool(c, m, "ignoreUriCase", path, &out->ignore_uri_case, NULL) != 0)
        return -1;
    if (out->source_namespace && !mp_is_dns1123_label(out->source_namespace))
        return mp_fail(c, mp_path(p, path, "sourceNamespace"),
                       "sourceNamespace match %.64s is invalid", out->source_namespace);
    return 0;
}

static bool retry_on_ok(const char *policy)
{
    static const char *const known[] = {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
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
    if (mp_get_duration(c, r, "perTryTimeout", path, MS, &out->retries.per_try_timeout_ns, NULL) !=
            0 ||
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
                return mp_fail(c, mp_path(p, path, "retryOn"),
                               "%.64s is not a valid retryOn policy", tok);
        }
    }
    return 0;
}

static int parse_fault(mp_ctx *c, const cJSON *f, const char *path, mesh_http_route *out)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *delay, *abort_;
    bool have = false;

    if (mp_get_obj(c, f, "delay", path, &delay) != 0 ||
        mp_get_obj(c, f, "abort", path, &abort_) != 0)
        return -1;
    if (!delay && !abort_)
        return mp_fail(c, path, "fault must contain at least one of abort or delay");
    if (delay) {
        mp_path(p, path, "delay");
        int64_t pct = 0;
        bool have_pct = false;
        out->has_fault_delay = true;
        out->fault_delay.percent = 100;
        if (mp_parse_percentage(c, delay, "percentage", p, &out->fault_delay.percent, &have) != 0)
            return -1;
        if (!have) {
            /* deprecated integer "percent" */
            if (mp_get_int(c, delay, "percent", p, 0, 100, &pct, &have_pct) != 0)
                return -1;
            if (have_pct)
                out->fault_delay.percent = (double)pct;
        }
        if (cJSON_GetObjectItemCaseSensitive(delay, "exponentialDelay"))
            return mp_fail(c, mp_path(p2, p, "exponentialDelay"),
                           "exponentialDelay not supported yet");
        if (mp_get_duration(c, delay, "fixedDelay", p, MS, &out->fault_delay.fixed_delay_ns,
                            &have) != 0)
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
        if (mp_parse_percentage(c, abort_, "percentage", p, &out->fault_abort.percent, &have) != 0)
            return -1;
        if (mp_get_int(c, abort_, "httpStatus", p, INT32_MIN, INT32_MAX, &st, &have_st) != 0 ||
            mp_get_str(c, abort_, "grpcStatus", p, &out->fault_abort.grpc_status) != 0)
            return -1;
        if (have_st) {
            if (st < 200 || st > 599)
                return mp_fail(c, mp_path(p2, p, "httpStatus"),
                               "HTTP status %lld is not in range 200-599", (long long)st);
            out->fault_abort.http_status = (uint32_t)st;
        } else if (!out->fault_abort.grpc_status) {
            if (cJSON_GetObjectItemCaseSensitive(abort_, "http2Error"))
                return mp_fail(c, mp_path(p2, p, "http2Error"),
                               "HTTP/2 abort fault injection not supported yet");
            return mp_fail(c, p, "abort must specify httpStatus or grpcStatus");
        }
    }
    return 0;
}

static int parse_cors(mp_ctx *c, const cJSON *cp, const char *path, mesh_http_route *out)
{
    static const char *const methods[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                          "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"};
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
        out->cors.allow_origins =
            xcalloc((size_t)cJSON_GetArraySize(origins), sizeof(mesh_string_match));
        FOR_EACH_OBJ(c, origins, path, "allowOrigins", i, it)
        {
            out->cors.nallow_origins = i + 1;
            if (mp_parse_string_match(c, it, mp_pathi(p, path, "allowOrigins", i), true, false,
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
    if (mp_get_strv(c, cp, "allowMethods", path, &out->cors.allow_methods,
                    &out->cors.nallow_methods) != 0 ||
        mp_get_strv(c, cp, "allowHeaders", path, &out->cors.allow_headers,
                    &out->cors.nallow_headers) != 0 ||
        mp_get_strv(c, cp, "exposeHeaders", path, &out->cors.expose_headers,
                    &out->cors.nexpose_headers) != 0)
        return -1;
    for (i = 0; i < out->cors.nallow_methods; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++)
            ok = ok || strcmp(methods[k], out->cors.allow_methods[i]) == 0;
        if (!ok)
            return mp_fail(c, mp_pathi(p, path, "allowMethods", i),
                           "%.32s is not a valid HTTP method", out->cors.allow_methods[i]);
    }
    if (mp_get_duration(c, cp, "maxAge", path, MS, &out->cors.max_age_ns, NULL) != 0)
        return -1;
    if (out->cors.max_age_ns > 0 && out->cors.max_age_ns % 1000000000LL != 0)
        return mp_fail(c, mp_path(p, path, "maxAge"),
                       "max_age duration is accurate only to seconds precision");
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
    if (mp_require_obj(c, h, path) != 0)
        return -1;
    if (mp_get_str(c, h, "name", path, &r->name) != 0)
        return -1;

    if (mp_get_arr(c, h, "match", path, &arr) != 0)
        return -1;
    if (arr && arr->child) {
        r->matches = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *r->matches);
        FOR_EACH_OBJ(c, arr, path, "match", i, it)
        {
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
            return mp_fail(c, mp_path(p, path, "delegate"),
                           "delegate HTTP route cannot contain delegate");
        if (redirect)
            return mp_fail(c, path, "root HTTP route %.64s must not specify redirect",
                           r->name ? r->name : "");
        if (has_route)
            return mp_fail(c, path, "root HTTP route %.64s must not specify route",
                           r->name ? r->name : "");
        /* Delegation is accepted and ignored: the route stays empty. */
    } else if (redirect) {
        if (has_route)
            return mp_fail(c, path, "HTTP route cannot contain both route and redirect");
        if (fault)
            return mp_fail(c, path, "HTTP route cannot contain both fault and redirect");
        if (rewrite)
            return mp_fail(c, path, "HTTP route rule cannot contain both rewrite and redirect");
        if (direct)
            return mp_fail(c, path,
                           "HTTP route rule cannot contain both direct_response and redirect");
    } else if (direct) {
        if (has_route)
            return mp_fail(c, path, "HTTP route cannot contain both route and direct_response");
        if (fault)
            return mp_fail(c, path, "HTTP route cannot contain both fault and direct_response");
        if (rewrite)
            return mp_fail(c, path,
                           "HTTP route rule cannot contain both rewrite and direct_response");
    } else if (!has_route) {
        return mp_fail(c, path, "HTTP route, redirect or direct_response is required");
    }

    if (mp_parse_route_destinations(c, h, path, false, &r->route, &r->nroute) != 0)
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
        if (!r->redirect.uri && !r->redirect.authority && !r->redirect.scheme && !have_port &&
            !derive)
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
        if (body &&
            mp_get_str(c, body, "string", mp_path(p2, p, "body"), &r->direct_response.body) != 0)
            return -1;
    }

    if (rewrite) {
        mp_path(p, path, "rewrite");
        if (mp_require_obj(c, rewrite, p) != 0)
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
                return mp_fail(
                    c, p2,
                    "UriRegexRewrite requires both Rewrite and Match fields to be specified");
            if (!r->rewrite.uri_regex_rewrite)
                return mp_fail(
                    c, p2,
                    "UriRegexRewrite requires both Rewrite and Match fields to be specified");
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
        if (mp_require_obj(c, fault, mp_path(p, path, "fault")) != 0 ||
            parse_fault(c, fault, p, r) != 0)
            return -1;
    }

    if (mp_get_obj(c, h, "mirror", path, &o) != 0)
        return -1;
    if (o) {
        r->has_mirror = true;
        if (mp_parse_destination(c, o, mp_path(p, path, "mirror"), &r->mirror) != 0)
            return -1;
        if (cJSON_GetObjectItemCaseSensitive(h, "mirrors"))
            return mp_fail(c, path, "HTTP route cannot contain both mirror and mirrors");
    }
    if (mp_parse_percentage(c, h, "mirrorPercentage", path, &r->mirror_percent, &have) != 0)
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
    return mp_parse_headers(c, h, path, &r->headers);
}

static int parse_l4_route(mp_ctx *c, const cJSON *t, const char *path, bool tls, mesh_l4_route *r)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *arr, *it;
    size_t i;

    if (mp_require_obj(c, t, path) != 0)
        return -1;
    if (mp_get_arr(c, t, "match", path, &arr) != 0)
        return -1;
    if (tls && (!arr || !arr->child))
        return mp_fail(c, mp_path(p, path, "match"),
                       "TLS route must have at least one match condition");
    if (arr && arr->child) {
        r->matches = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *r->matches);
        FOR_EACH_OBJ(c, arr, path, "match", i, it)
        {
            mesh_l4_match *m = &r->matches[i];
            int64_t port = 0;
            r->nmatches = i + 1;
            mp_pathi(p, path, "match", i);
            if (mp_require_obj(c, it, p) != 0)
                return -1;
            if (mp_get_int(c, it, "port", p, 0, 65535, &port, NULL) != 0 ||
                mp_get_strv(c, it, "destinationSubnets", p, &m->destination_subnets,
                            &m->ndestination_subnets) != 0 ||
                mp_get_labels(c, it, "sourceLabels", p, &m->source_labels) != 0 ||
                mp_parse_gateways(c, it, p, &m->gateways, &m->ngateways) != 0)
                return -1;
            m->port = (uint32_t)port;
            for (size_t k = 0; k < m->ndestination_subnets; k++)
                if (!mp_is_cidr_or_ip(m->destination_subnets[k]))
                    return mp_fail(c, mp_pathi(p2, p, "destinationSubnets", k),
                                   "%.64s is not a valid IP address or CIDR",
                                   m->destination_subnets[k]);
            if (tls) {
                if (mp_get_strv(c, it, "sniHosts", p, &m->sni_hosts, &m->nsni_hosts) != 0)
                    return -1;
                if (!m->nsni_hosts)
                    return mp_fail(c, mp_path(p2, p, "sniHosts"),
                                   "TLS match must have at least one SNI host");
                for (size_t k = 0; k < m->nsni_hosts; k++) {
                    const char *why = mp_check_wildcard_domain(m->sni_hosts[k]);
                    if (why && strcmp(m->sni_hosts[k], "*") != 0)
                        return mp_fail(c, mp_pathi(p2, p, "sniHosts", k), "%s: %.128s", why,
                                       m->sni_hosts[k]);
                }
            }
        }
    }
    return mp_parse_route_destinations(c, t, path, true, &r->route, &r->nroute);
}

int mp_parse_virtual_service(mp_ctx *c, const cJSON *obj, mesh_virtual_service *o)
{
    char p[MP_PATH_MAX];
    const cJSON *spec, *arr, *it;
    size_t i;
    char **gws = NULL;
    size_t ngws = 0;
    int rc = -1;

    if (mp_get_spec(c, obj, &spec) != 0)
        goto out;
    const char *sem = mesh_labels_get(&o->meta.annotations, "internal.istio.io/route-semantics");
    o->ingress_semantics = sem && strcmp(sem, "ingress") == 0;
    if (mp_get_strv(c, spec, "hosts", "spec", &o->hosts, &o->nhosts) != 0 ||
        mp_get_strv(c, spec, "gateways", "spec", &gws, &ngws) != 0)
        goto out;
    o->fqdn_hosts = o->nhosts ? xcalloc(o->nhosts, sizeof(char *)) : NULL;

    bool applies_to_mesh = ngws == 0;
    for (i = 0; i < ngws; i++) {
        if (mp_check_gateway_name(c, mp_pathi(p, "spec", "gateways", i), gws[i]) != 0)
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
                mp_fail(c, p,
                        "wildcard host * is not allowed for virtual services bound to the mesh "
                        "gateway");
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
            o->gateways[i] = mp_resolve_gateway(gws[i], c->ns);
        o->ngateways = ngws;
    }

    if (mp_get_arr(c, spec, "http", "spec", &arr) != 0)
        goto out;
    if (arr && arr->child) {
        o->http = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->http);
        FOR_EACH_OBJ(c, arr, "spec", "http", i, it)
        {
            o->nhttp = i + 1;
            if (parse_http_route(c, it, mp_pathi(p, "spec", "http", i), delegate_vs, &o->http[i]) !=
                0)
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
            mp_fail(c, mp_path(p, "spec", key),
                    "delegate virtual service must have no %s route specified", key);
            goto out;
        }
        *dst = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof **dst);
        FOR_EACH_OBJ(c, arr, "spec", key, i, it)
        {
            *nd = i + 1;
            if (parse_l4_route(c, it, mp_pathi(p, "spec", key, i), pass == 1, &(*dst)[i]) != 0)
                goto out;
        }
    }
    if (!o->nhttp && !o->ntcp && !o->ntls) {
        mp_fail(c, "spec", "http, tcp or tls must be provided in virtual service");
        goto out;
    }
    if (mp_parse_export_to(c, spec, &o->export_to, &o->nexport_to) != 0)
        goto out;
    rc = 0;
out:
    util_strv_free(gws, ngws);
    return rc;
}
