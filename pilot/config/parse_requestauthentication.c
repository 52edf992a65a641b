/* parse_requestauthentication: RequestAuthentication (security.istio.io v1, v1beta1):
 * selector, targetRef/targetRefs and jwtRules, validated as istiod's
 * ValidateRequestAuthentication and validateJwtRule do (the reasons worded like Istio's).
 * The first error wins, as everywhere in the parser; a half-built object is freed by
 * mp_free_request_authentication (counts are raised only once an element is zeroed). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

/* ---- jwtRules (validateJwtRule) ----------------------------------------------------------- */

/* security.ParseJwksURI: Go's url.Parse, then an http or https scheme; a port, when
 * written, must be a number. Returns a static reason, or NULL when the URI is acceptable;
 * the caller words the scheme error itself (it quotes the scheme). */
static const char *ra_jwks_uri_reason(const char *uri, char *scheme, size_t scheme_len)
{
    size_t i = 0;
    scheme[0] = '\0';
    for (const char *q = uri; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return "net/url: invalid control character in URL";
    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    if (isalpha((unsigned char)uri[0])) {
        while (uri[i] &&
               (isalnum((unsigned char)uri[i]) || uri[i] == '+' || uri[i] == '-' || uri[i] == '.'))
            i++;
        if (uri[i] == ':' && i < scheme_len) {
            for (size_t k = 0; k < i; k++)
                scheme[k] = (char)tolower((unsigned char)uri[k]);
            scheme[i] = '\0';
        } else {
            i = 0;
        }
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        return "scheme";
    const char *a = uri + i + 1;
    if (strncmp(a, "//", 2) != 0)
        return NULL; /* opaque ("http:x"): Go accepts it, with no host */
    a += 2;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t k = 0; k < alen; k++)
        if (a[k] == '@')
            at = a + k;
    const char *host = at ? at + 1 : a;
    const char *end = a + alen;
    const char *colon = NULL;
    if (*host == '[') {
        const char *rb = memchr(host, ']', (size_t)(end - host));
        if (!rb)
            return "missing ']' in host";
        if (rb + 1 < end && rb[1] != ':')
            return "invalid port after host";
        colon = rb + 1 < end ? rb + 1 : NULL;
    } else {
        for (const char *q = host; q < end; q++)
            if (*q == ':')
                colon = q;
    }
    if (colon) {
        if (end - colon - 1 > 5)
            return "invalid port after host";
        for (const char *q = colon + 1; q < end; q++)
            if (!isdigit((unsigned char)*q))
                return "invalid port after host";
    }
    return NULL;
}

/* jwk.Parse, loosely: a JSON object that is either one key (with a string "kty") or a set
 * {"keys": [key, ...]}. Returns a static reason or NULL. */
static const char *ra_jwks_reason(const char *jwks)
{
    cJSON *doc = cJSON_Parse(jwks);
    const char *why = NULL;
    if (!cJSON_IsObject(doc)) {
        why = "failed to unmarshal JWK set: not a JSON object";
        goto out;
    }
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    if (!keys) {
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "kty")))
            why = "failed to parse key: invalid key type (kty)";
        goto out;
    }
    if (!cJSON_IsArray(keys)) {
        why = "failed to unmarshal JWK set: \"keys\" is not an array";
        goto out;
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, keys)
    {
        if (!cJSON_IsObject(k) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(k, "kty"))) {
            why = "failed to parse key: invalid key type (kty)";
            goto out;
        }
    }
out:
    cJSON_Delete(doc);
    return why;
}

/* ValidateStrictHTTPHeaderName: ^[-_A-Za-z0-9]+$ */
static bool ra_strict_header_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

static int ra_nonempty(mp_ctx *c, const char *path, const char *key, const mesh_strv *v,
                       const char *reason)
{
    char p[MP_PATH_MAX];
    for (size_t i = 0; i < v->n; i++)
        if (!*v->v[i])
            return mp_fail(c, mp_pathi(p, path, key, i), "%s", reason);
    return 0;
}

static int ra_from_headers(mp_ctx *c, const cJSON *rule, const char *path, mesh_jwt_rule *r)
{
    const cJSON *arr, *it;
    char p[MP_PATH_MAX];
    size_t i;

    if (mp_get_arr(c, rule, "fromHeaders", path, &arr) != 0)
        return -1;
    if (!arr || !cJSON_GetArraySize(arr))
        return 0;
    r->from_headers = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *r->from_headers);
    FOR_EACH_OBJ(c, arr, path, "fromHeaders", i, it)
    {
        mesh_jwt_header *h = &r->from_headers[r->nfrom_headers++];
        mp_pathi(p, path, "fromHeaders", i);
        if (cJSON_IsNull(it))
            return mp_fail(c, p, "location header name must be non-null");
        if (mp_require_obj(c, it, p) != 0 || mp_get_str(c, it, "name", p, &h->name) != 0 ||
            mp_get_str(c, it, "prefix", p, &h->prefix) != 0)
            return -1;
        if (!h->name || !*h->name) {
            char q[MP_PATH_MAX];
            return mp_fail(c, mp_path(q, p, "name"),
                           "location header name must be non-empty string");
        }
        if (h->prefix && !*h->prefix) {
            free(h->prefix);
            h->prefix = NULL;
        }
    }
    return 0;
}

static int ra_claim_headers(mp_ctx *c, const cJSON *rule, const char *path, mesh_jwt_rule *r)
{
    const cJSON *arr, *it;
    char p[MP_PATH_MAX];
    size_t i;

    if (mp_get_arr(c, rule, "outputClaimToHeaders", path, &arr) != 0)
        return -1;
    if (!arr || !cJSON_GetArraySize(arr))
        return 0;
    r->output_claim_to_headers =
        xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *r->output_claim_to_headers);
    FOR_EACH_OBJ(c, arr, path, "outputClaimToHeaders", i, it)
    {
        mesh_jwt_claim_header *h = &r->output_claim_to_headers[r->noutput_claim_to_headers++];
        mp_pathi(p, path, "outputClaimToHeaders", i);
        if (cJSON_IsNull(it))
            return mp_fail(c, p, "outputClaimToHeaders must not be null");
        if (mp_require_obj(c, it, p) != 0 || mp_get_str(c, it, "header", p, &h->header) != 0 ||
            mp_get_str(c, it, "claim", p, &h->claim) != 0)
            return -1;
        if (!h->header || !*h->header || !h->claim || !*h->claim)
            return mp_fail(c, p,
                           "outputClaimToHeaders header and claim value must be non-empty string");
        if (!ra_strict_header_name(h->header)) {
            char q[MP_PATH_MAX];
            return mp_fail(c, mp_path(q, p, "header"),
                           "header name %.128s is not a valid header name", h->header);
        }
    }
    return 0;
}

static int ra_jwt_rule(mp_ctx *c, const cJSON *rule, const char *path, mesh_jwt_rule *r)
{
    char p[MP_PATH_MAX];
    bool present;

    r->timeout_ns = -1;
    if (mp_require_obj(c, rule, path) != 0 ||
        mp_get_str(c, rule, "issuer", path, &r->issuer) != 0 ||
        mp_get_strv(c, rule, "audiences", path, &r->audiences.v, &r->audiences.n) != 0 ||
        mp_get_str(c, rule, "jwksUri", path, &r->jwks_uri) != 0 ||
        mp_get_str(c, rule, "jwks", path, &r->jwks) != 0 ||
        mp_get_strv(c, rule, "fromParams", path, &r->from_params.v, &r->from_params.n) != 0 ||
        mp_get_strv(c, rule, "fromCookies", path, &r->from_cookies.v, &r->from_cookies.n) != 0 ||
        mp_get_str(c, rule, "outputPayloadToHeader", path, &r->output_payload_to_header) != 0 ||
        mp_get_bool(c, rule, "forwardOriginalToken", path, &r->forward_original_token, NULL) != 0)
        return -1;
    /* proto3 strings: "" is unset */
    if (r->jwks_uri && !*r->jwks_uri) {
        free(r->jwks_uri);
        r->jwks_uri = NULL;
    }
    if (r->jwks && !*r->jwks) {
        free(r->jwks);
        r->jwks = NULL;
    }
    if (r->output_payload_to_header && !*r->output_payload_to_header) {
        free(r->output_payload_to_header);
        r->output_payload_to_header = NULL;
    }
    if (ra_nonempty(c, path, "audiences", &r->audiences, "audience must be non-empty string") != 0)
        return -1;
    if ((!r->issuer || !*r->issuer) && !r->jwks_uri)
        return mp_fail(c, mp_path(p, path, "issuer"), "issuer or jwksUri must be non-empty string");
    if (r->jwks_uri) {
        char scheme[32];
        const char *why = ra_jwks_uri_reason(r->jwks_uri, scheme, sizeof scheme);
        if (why && strcmp(why, "scheme") == 0)
            return mp_fail(c, mp_path(p, path, "jwksUri"), "URI scheme \"%s\" is not supported",
                           scheme);
        if (why)
            return mp_fail(c, mp_path(p, path, "jwksUri"), "parse \"%.200s\": %s", r->jwks_uri,
                           why);
    }
    if (r->jwks) {
        const char *why = ra_jwks_reason(r->jwks);
        if (why)
            return mp_fail(c, mp_path(p, path, "jwks"), "jwks parse error: %s", why);
    }
    if (ra_from_headers(c, rule, path, r) != 0)
        return -1;
    if (ra_nonempty(c, path, "fromParams", &r->from_params,
                    "location query must be non-empty string") != 0 ||
        ra_nonempty(c, path, "fromCookies", &r->from_cookies,
                    "cookie name must be non-empty string") != 0)
        return -1;
    if (ra_claim_headers(c, rule, path, r) != 0)
        return -1;
    if (mp_get_duration(c, rule, "timeout", path, 1000000, &r->timeout_ns, &present) != 0)
        return -1;
    if (!present)
        r->timeout_ns = -1;
    return 0;
}

int mp_parse_request_authentication(mp_ctx *c, const cJSON *obj, mesh_request_authentication *o)
{
    const cJSON *spec, *sel = NULL, *rules = NULL, *it;
    char p[MP_PATH_MAX];
    size_t i;

    if (mp_get_spec(c, obj, &spec) != 0 || mp_get_obj(c, spec, "selector", "spec", &sel) != 0 ||
        mp_get_arr(c, spec, "jwtRules", "spec", &rules) != 0)
        return -1;
    /* validateOneOfSelectorType: a selector, a targetRef and targetRefs count one each */
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(spec, "targetRefs");
    int set = (sel != NULL) + (cJSON_GetObjectItemCaseSensitive(spec, "targetRef") != NULL) +
              (cJSON_IsArray(many) && cJSON_GetArraySize(many) > 0);
    if (set > 1)
        return mp_fail(c, "spec", "only one of targetRefs or workloadSelector can be set");
    if (sel) {
        if (mp_get_labels(c, sel, "matchLabels", "spec.selector", &o->selector) != 0 ||
            mp_check_selector(c, "spec.selector.matchLabels", &o->selector) != 0)
            return -1;
        if (o->selector.n == 0)
            mp_warn(c, "spec.selector", "workload selector specified without labels");
    }
    if (mp_parse_target_refs(c, spec, &o->target_refs, &o->ntarget_refs) != 0)
        return -1;
    if (!rules || !cJSON_GetArraySize(rules))
        return 0;
    o->jwt_rules = xcalloc((size_t)cJSON_GetArraySize(rules), sizeof *o->jwt_rules);
    FOR_EACH_OBJ(c, rules, "spec", "jwtRules", i, it)
    {
        mesh_jwt_rule *r = &o->jwt_rules[o->njwt_rules++];
        if (ra_jwt_rule(c, it, mp_pathi(p, "spec", "jwtRules", i), r) != 0)
            return -1;
    }
    return 0;
}

static void ra_free_rule(mesh_jwt_rule *r)
{
    free(r->issuer);
    util_strv_free(r->audiences.v, r->audiences.n);
    free(r->jwks_uri);
    free(r->jwks);
    for (size_t i = 0; i < r->nfrom_headers; i++) {
        free(r->from_headers[i].name);
        free(r->from_headers[i].prefix);
    }
    free(r->from_headers);
    util_strv_free(r->from_params.v, r->from_params.n);
    util_strv_free(r->from_cookies.v, r->from_cookies.n);
    free(r->output_payload_to_header);
    for (size_t i = 0; i < r->noutput_claim_to_headers; i++) {
        free(r->output_claim_to_headers[i].header);
        free(r->output_claim_to_headers[i].claim);
    }
    free(r->output_claim_to_headers);
}

void mp_free_request_authentication(mesh_request_authentication *o)
{
    mesh_labels_free(&o->selector);
    mp_free_target_refs(o->target_refs, o->ntarget_refs);
    for (size_t i = 0; i < o->njwt_rules; i++)
        ra_free_rule(&o->jwt_rules[i]);
    free(o->jwt_rules);
}
