/* gen_authz: AuthorizationPolicy -> Envoy RBAC filters, as istiod's
 * pilot/pkg/security/authz/builder and its model/ generators build them for sidecars, and
 * as pilot/pkg/networking/grpcgen builds them for proxyless gRPC servers (gRFC A41), with
 * the fixes listed at gen_authz_http_filters.
 *
 * A rule becomes one RBAC policy "ns[<ns>]-policy[<name>]-rule[<i>]": an OR of
 * permissions (one per `to`, else one from the `when` keys alone) and an OR of principals
 * (one per `from`), each an AND of the fields set, in istiod's order (principals,
 * requestPrincipals, namespaces, remoteIpBlocks, ipBlocks, then the principal-side `when`
 * keys; hosts, methods, paths, ports, then the permission-side `when` keys). A field that
 * cannot be expressed on the chain being built (HTTP-only fields on TCP; for gRPC, Envoy
 * dynamic metadata, URI templates and headers A41 refuses) follows istiod's rule: an ALLOW
 * rule is dropped whole (allows less), a DENY, AUDIT or CUSTOM rule loses the condition
 * (denies more).
 *
 * Runs on the calling xDS shard thread; reads only the pinned snapshot; every message
 * lives in c->a. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Config__Rbac__V3__RBAC Rbac;
typedef Envoy__Config__Rbac__V3__Policy Policy;
typedef Envoy__Config__Rbac__V3__Permission Perm;
typedef Envoy__Config__Rbac__V3__Principal Prin;
typedef Envoy__Type__Matcher__V3__StringMatcher StrM;
typedef Envoy__Type__Matcher__V3__ValueMatcher ValM;
typedef Envoy__Type__Matcher__V3__MetadataMatcher MetaM;
typedef Envoy__Config__Route__V3__HeaderMatcher HdrM;
typedef Envoy__Config__Core__V3__CidrRange Cidr;

#define RBAC_HTTP "envoy.filters.http.rbac"
#define RBAC_TCP "envoy.filters.network.rbac"
#define JWT_FILTER "envoy.filters.http.jwt_authn"
#define EXT_AUTHZ_PREFIX "istio-ext-authz"
#define BAD_CUSTOM_SUFFIX "-deny-due-to-bad-CUSTOM-action"

/* ---- the model: istiod's rule lists ------------------------------------------------------ */

typedef enum {
    /* permission side */
    K_HOST,
    K_METHOD,
    K_PATH,
    K_PORT,
    K_DEST_IP,
    K_SNI,
    K_ENVOY_FILTER, /* extended: all values in one matcher */
    /* principal side */
    K_PRINCIPAL,
    K_REQ_PRINCIPAL, /* extended */
    K_NAMESPACE,
    K_REMOTE_IP,
    K_SRC_IP,
    K_SERVICE_ACCOUNT,
    K_TRUST_DOMAIN,
    K_REQ_HEADER,
    K_AUDIENCES,  /* extended */
    K_PRESENTER,  /* extended */
    K_REQ_CLAIMS, /* extended */
} az_kind;

typedef struct az_item {
    az_kind k;
    const char *key; /* the `when` key (headers, claims, envoy filters) */
    char *const *v;
    size_t nv;
    char *const *nots;
    size_t nnots;
} az_item;

typedef struct az_list {
    az_item *it;
    size_t n;
} az_list;

/* One build: the chain kind and the action whose error rule applies. */
typedef struct az_gen {
    gen_ctx *c;
    const mesh_authorization_policy *ap;
    bool tcp;
    Envoy__Config__Rbac__V3__RBAC__Action action;
} az_gen;

static bool extended(az_kind k)
{
    return k == K_ENVOY_FILTER || k == K_REQ_PRINCIPAL || k == K_AUDIENCES || k == K_PRESENTER ||
           k == K_REQ_CLAIMS;
}

static void push_item(gen_ctx *c, az_list *l, az_kind k, const char *key, const mesh_strv *v,
                      const mesh_strv *nots)
{
    static const mesh_strv none = {0};
    v = v ? v : &none;
    nots = nots ? nots : &none;
    if (!v->n && !nots->n)
        return;
    az_item it = {k, key, v->v, v->n, nots->v, nots->n};
    GA_PUSH(c->a, l->it, l->n, it);
}

static void append_list(gen_ctx *c, az_list *dst, const az_list *src)
{
    for (size_t i = 0; i < src->n; i++)
        GA_PUSH(c->a, dst->it, dst->n, src->it[i]);
}

/* The `when` keys, split between permission and principal as istiod's model.New does.
 * Returns false for a key istiod does not know (the parser refuses those already). */
static bool when_item(gen_ctx *c, const mesh_az_condition *w, az_list *perm, az_list *prin)
{
    static const struct {
        const char *key;
        az_kind k;
        bool perm;
    } exact[] = {
        {"destination.ip", K_DEST_IP, true},
        {"destination.port", K_PORT, true},
        {"connection.sni", K_SNI, true},
        {"source.ip", K_SRC_IP, false},
        {"remote.ip", K_REMOTE_IP, false},
        {"source.namespace", K_NAMESPACE, false},
        {"source.trustDomain", K_TRUST_DOMAIN, false},
        {"source.serviceAccount", K_SERVICE_ACCOUNT, false},
        {"source.principal", K_PRINCIPAL, false},
        {"request.auth.principal", K_REQ_PRINCIPAL, false},
        {"request.auth.audiences", K_AUDIENCES, false},
        {"request.auth.presenter", K_PRESENTER, false},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(w->key, exact[i].key)) {
            push_item(c, exact[i].perm ? perm : prin, exact[i].k, w->key, &w->values,
                      &w->not_values);
            return true;
        }
    if (!strncmp(w->key, "experimental.envoy.filters.", 27))
        push_item(c, perm, K_ENVOY_FILTER, w->key, &w->values, &w->not_values);
    else if (!strncmp(w->key, "request.headers", 15))
        push_item(c, prin, K_REQ_HEADER, w->key, &w->values, &w->not_values);
    else if (!strncmp(w->key, "request.auth.claims", 19))
        push_item(c, prin, K_REQ_CLAIMS, w->key, &w->values, &w->not_values);
    else
        return false;
    return true;
}

/* ---- small matchers ---------------------------------------------------------------------- */

/* Go's regexp.QuoteMeta. */
static char *quote_meta(gen_ctx *c, const char *s, size_t n)
{
    char *o = ga_alloc(c->a, 2 * n + 1), *q = o;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\.+*?()|[]{}^$", s[i]))
            *q++ = '\\';
        *q++ = s[i];
    }
    *q = '\0';
    return o;
}

static StrM *sm_new(gen_ctx *c, int kase, const char *v, bool ignore_case)
{
    StrM *m = GA_MSG(c->a, StrM, envoy__type__matcher__v3__string_matcher__init);
    m->match_pattern_case = kase;
    m->ignore_case = ignore_case;
    switch (kase) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        m->exact = ga_strdup(c->a, v);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        m->prefix = ga_strdup(c->a, v);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        m->suffix = ga_strdup(c->a, v);
        break;
    default:
        m->safe_regex = gen_regex(c, v);
        break;
    }
    return m;
}
#define SM_EXACT ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT
#define SM_PREFIX ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX
#define SM_SUFFIX ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX
#define SM_REGEX ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX

/* istiod's matcher.StringMatcherWithPrefix: "*" any non-empty, "*x" suffix (a regex when
 * a prefix is prepended), "x*" prefix, else exact. */
static StrM *sm_with_prefix(gen_ctx *c, const char *v, const char *prefix)
{
    size_t n = strlen(v);
    if (!strcmp(v, "*"))
        return sm_new(c, SM_REGEX, ".+", false);
    if (v[0] == '*') {
        if (!*prefix)
            return sm_new(c, SM_SUFFIX, v + 1, false);
        return sm_new(c, SM_REGEX, ga_printf(c->a, "%s.*%s", prefix, quote_meta(c, v + 1, n - 1)),
                      false);
    }
    if (n && v[n - 1] == '*')
        return sm_new(c, SM_PREFIX, ga_printf(c->a, "%s%.*s", prefix, (int)(n - 1), v), false);
    return sm_new(c, SM_EXACT, ga_printf(c->a, "%s%s", prefix, v), false);
}

static StrM *sm_plain(gen_ctx *c, const char *v)
{
    return sm_with_prefix(c, v, "");
}

/* istiod's HeaderMatcher / HostMatcher: "*" presence, "*x" suffix, "x*" prefix, else
 * exact; hosts compare case-insensitively. gRPC gets the legacy fields every release
 * reads (1.51 refuses string_match), case-insensitive forms as RE2 (?i) regexes. */
static HdrM *header_matcher(az_gen *g, const char *name, const char *v, bool ignore_case)
{
    gen_ctx *c = g->c;
    HdrM *h = GA_MSG(c->a, HdrM, envoy__config__route__v3__header_matcher__init);
    size_t n = strlen(v);
    int kase = SM_EXACT;
    const char *val = v;
    h->name = ga_strdup(c->a, name);
    if (!strcmp(v, "*")) {
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
        h->present_match = true;
        return h;
    }
    if (v[0] == '*') {
        kase = SM_SUFFIX;
        val = v + 1;
    } else if (v[n - 1] == '*') {
        kase = SM_PREFIX;
        val = ga_printf(c->a, "%.*s", (int)(n - 1), v);
    }
    if (!c->grpc) {
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        h->string_match = sm_new(c, kase, val, ignore_case);
        return h;
    }
    if (ignore_case) {
        const char *q = quote_meta(c, val, strlen(val));
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH;
        h->safe_regex_match =
            gen_regex(c, ga_printf(c->a, "(?i)%s%s%s", kase == SM_SUFFIX ? ".*" : "", q,
                                   kase == SM_PREFIX ? ".*" : ""));
        return h;
    }
    switch (kase) {
    case SM_SUFFIX:
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH;
        h->suffix_match = ga_strdup(c->a, val);
        break;
    case SM_PREFIX:
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH;
        h->prefix_match = ga_strdup(c->a, val);
        break;
    default:
        h->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH;
        h->exact_match = ga_strdup(c->a, val);
        break;
    }
    return h;
}

/* "10.0.0.1" -> 10.0.0.1/32, "10.0.0.0/8" as written (address not masked, as istiod). */
static Cidr *cidr(gen_ctx *c, const char *s)
{
    char ip[INET6_ADDRSTRLEN + 1], out[INET6_ADDRSTRLEN];
    unsigned char buf[16];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    int af, max;
    if (n >= sizeof ip)
        return NULL;
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, buf) == 1)
        af = AF_INET, max = 32;
    else if (inet_pton(AF_INET6, ip, buf) == 1)
        af = AF_INET6, max = 128;
    else
        return NULL;
    long bits = max;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || bits < 0 || bits > max)
            return NULL;
    }
    if (!inet_ntop(af, buf, out, sizeof out))
        return NULL;
    Cidr *r = GA_MSG(c->a, Cidr, envoy__config__core__v3__cidr_range__init);
    r->address_prefix = ga_strdup(c->a, out);
    r->prefix_len = gen_u32(c, (uint32_t)bits);
    return r;
}

static ValM *vm_string(gen_ctx *c, StrM *m)
{
    ValM *v = GA_MSG(c->a, ValM, envoy__type__matcher__v3__value_matcher__init);
    v->match_pattern_case = ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_STRING_MATCH;
    v->string_match = m;
    return v;
}

static ValM *vm_list_one_of(gen_ctx *c, ValM *one)
{
    Envoy__Type__Matcher__V3__ListMatcher *l = GA_MSG(c->a, Envoy__Type__Matcher__V3__ListMatcher,
                                                      envoy__type__matcher__v3__list_matcher__init);
    l->match_pattern_case = ENVOY__TYPE__MATCHER__V3__LIST_MATCHER__MATCH_PATTERN_ONE_OF;
    l->one_of = one;
    ValM *v = GA_MSG(c->a, ValM, envoy__type__matcher__v3__value_matcher__init);
    v->match_pattern_case = ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_LIST_MATCH;
    v->list_match = l;
    return v;
}

/* istiod's OrMatcher: a single matcher stands alone. */
static ValM *vm_or(gen_ctx *c, ValM **ms, size_t n)
{
    if (n == 1)
        return ms[0];
    Envoy__Type__Matcher__V3__OrMatcher *o = GA_MSG(c->a, Envoy__Type__Matcher__V3__OrMatcher,
                                                    envoy__type__matcher__v3__or_matcher__init);
    o->value_matchers = ms;
    o->n_value_matchers = n;
    ValM *v = GA_MSG(c->a, ValM, envoy__type__matcher__v3__value_matcher__init);
    v->match_pattern_case = ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_OR_MATCH;
    v->or_match = o;
    return v;
}

static ValM *vm_string_or(gen_ctx *c, char *const *v, size_t n)
{
    ValM **ms = ga_alloc(c->a, n * sizeof *ms);
    for (size_t i = 0; i < n; i++)
        ms[i] = vm_string(c, sm_plain(c, v[i]));
    return vm_or(c, ms, n);
}

static MetaM *meta_matcher(gen_ctx *c, const char *filter, const char *const *keys, size_t nkeys,
                           ValM *value)
{
    MetaM *m = GA_MSG(c->a, MetaM, envoy__type__matcher__v3__metadata_matcher__init);
    m->filter = ga_strdup(c->a, filter);
    m->path = ga_alloc(c->a, nkeys * sizeof *m->path);
    for (size_t i = 0; i < nkeys; i++) {
        Envoy__Type__Matcher__V3__MetadataMatcher__PathSegment *s =
            GA_MSG(c->a, Envoy__Type__Matcher__V3__MetadataMatcher__PathSegment,
                   envoy__type__matcher__v3__metadata_matcher__path_segment__init);
        s->segment_case = ENVOY__TYPE__MATCHER__V3__METADATA_MATCHER__PATH_SEGMENT__SEGMENT_KEY;
        s->key = ga_strdup(c->a, keys[i]);
        m->path[m->n_path++] = s;
    }
    m->value = value;
    return m;
}

/* A JWT claim (list or single value) under jwt_authn's payload: istiod's
 * MetadataListValueMatcherForJWTClaims, which matches a list holding the value or the
 * value itself. */
static MetaM *jwt_claims_matcher(gen_ctx *c, char *const *claims, size_t nclaims, ValM *value)
{
    const char **keys = ga_alloc(c->a, (nclaims + 1) * sizeof *keys);
    keys[0] = "payload";
    for (size_t i = 0; i < nclaims; i++)
        keys[i + 1] = claims[i];
    ValM **two = ga_alloc(c->a, 2 * sizeof *two);
    two[0] = vm_list_one_of(c, value);
    two[1] = value;
    ValM *v = GA_MSG(c->a, ValM, envoy__type__matcher__v3__value_matcher__init);
    v->match_pattern_case = ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_OR_MATCH;
    v->or_match = GA_MSG(c->a, Envoy__Type__Matcher__V3__OrMatcher,
                         envoy__type__matcher__v3__or_matcher__init);
    v->or_match->value_matchers = two;
    v->or_match->n_value_matchers = 2;
    return meta_matcher(c, JWT_FILTER, keys, nclaims + 1, v);
}

/* ---- permissions and principals ---------------------------------------------------------- */

static Perm *perm_new(gen_ctx *c, int kase)
{
    Perm *p = GA_MSG(c->a, Perm, envoy__config__rbac__v3__permission__init);
    p->rule_case = kase;
    return p;
}

static Perm *perm_set(gen_ctx *c, bool and, Perm **v, size_t n)
{
    Perm *p = perm_new(c, and? ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_AND_RULES
                             : ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_OR_RULES);
    Envoy__Config__Rbac__V3__Permission__Set *s =
        GA_MSG(c->a, Envoy__Config__Rbac__V3__Permission__Set,
               envoy__config__rbac__v3__permission__set__init);
    s->rules = v;
    s->n_rules = n;
    if (and)
        p->and_rules = s;
    else
        p->or_rules = s;
    return p;
}

static Perm *perm_any(gen_ctx *c)
{
    Perm *p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY);
    p->any = true;
    return p;
}

static Perm *perm_not(gen_ctx *c, Perm *x)
{
    Perm *p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_NOT_RULE);
    p->not_rule = x;
    return p;
}

static Prin *prin_new(gen_ctx *c, int kase)
{
    Prin *p = GA_MSG(c->a, Prin, envoy__config__rbac__v3__principal__init);
    p->identifier_case = kase;
    return p;
}

static Prin *prin_set(gen_ctx *c, bool and, Prin **v, size_t n)
{
    Prin *p = prin_new(c, and? ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS
                             : ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS);
    Envoy__Config__Rbac__V3__Principal__Set *s =
        GA_MSG(c->a, Envoy__Config__Rbac__V3__Principal__Set,
               envoy__config__rbac__v3__principal__set__init);
    s->ids = v;
    s->n_ids = n;
    if (and)
        p->and_ids = s;
    else
        p->or_ids = s;
    return p;
}

static Prin *prin_any(gen_ctx *c)
{
    Prin *p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY);
    p->any = true;
    return p;
}

static Prin *prin_not(gen_ctx *c, Prin *x)
{
    Prin *p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID);
    p->not_id = x;
    return p;
}

static Prin *prin_authenticated(gen_ctx *c, StrM *name)
{
    Prin *p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED);
    p->authenticated = GA_MSG(c->a, Envoy__Config__Rbac__V3__Principal__Authenticated,
                              envoy__config__rbac__v3__principal__authenticated__init);
    p->authenticated->principal_name = name;
    return p;
}

static Prin *prin_metadata(gen_ctx *c, MetaM *m)
{
    Prin *p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_METADATA);
    p->metadata = m;
    return p;
}

/* istiod's trust domain handling with one trust domain and no aliases: a principal
 * "<td>/ns/<ns>/sa/<sa>" naming cluster.local (or a pattern matching ours) is rewritten to
 * our trust domain (trustdomain.Bundle.ReplaceTrustDomainAliases). */
static bool td_prefix_match(const char *a, const char *pattern)
{
    size_t pl = strlen(pattern);
    return pl && pattern[pl - 1] == '*' && !strncmp(a, pattern, pl - 1);
}

static bool td_suffix_match(const char *a, const char *pattern)
{
    size_t al = strlen(a), pl = strlen(pattern);
    return pl && pattern[0] == '*' && al >= pl - 1 && !strcmp(a + al - (pl - 1), pattern + 1);
}

static const char *migrate_principal(az_gen *g, const char *principal)
{
    const char *td = g->c->trust_domain ? g->c->trust_domain : "cluster.local";
    const char *slash = strchr(principal, '/');
    size_t parts = 1;
    for (const char *q = principal; *q; q++)
        parts += *q == '/';
    if (parts != 5 || !slash)
        return principal;
    char *ptd = ga_printf(g->c->a, "%.*s", (int)(slash - principal), principal);
    if (!strcmp(ptd, "*"))
        return principal;
    bool match = !strcmp(ptd, td) || !strcmp(td, "*") || td_prefix_match(ptd, td) ||
                 td_prefix_match(td, ptd) || td_suffix_match(ptd, td) || td_suffix_match(td, ptd);
    if (!match && strcmp(ptd, "cluster.local") != 0)
        return principal;
    if (td_suffix_match(td, ptd))
        return principal;
    return ga_printf(g->c->a, "%s%s", td, slash);
}

/* One value of a non-extended item as a permission: 0, or -1 when it cannot be expressed
 * on this chain (*out NULL). */
static int perm_value(az_gen *g, const az_item *it, const char *v, Perm **out)
{
    gen_ctx *c = g->c;
    Perm *p = NULL;
    *out = NULL;
    switch (it->k) {
    case K_HOST:
    case K_METHOD:
        if (g->tcp)
            return -1;
        p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_HEADER);
        p->header = it->k == K_HOST ? header_matcher(g, ":authority", v, true)
                                    : header_matcher(g, ":method", v, false);
        break;
    case K_PATH:
        if (g->tcp)
            return -1;
        if (strstr(v, "{*}") || strstr(v, "{**}")) {
            /* Envoy's uri_template extension; A41 servers know no such permission */
            if (c->grpc)
                return -1;
            /* UriTemplateMatchConfig { string path_template = 1; } by hand: the extension's
             * proto is not among the generated ones. */
            size_t cap = strlen(v) * 2 + 1, n = 0;
            char *t = ga_alloc(c->a, cap);
            for (const char *q = v; *q;) {
                if (!strncmp(q, "{**}", 4))
                    memcpy(t + n, "**", 2), n += 2, q += 4;
                else if (!strncmp(q, "{*}", 3))
                    t[n++] = '*', q += 3;
                else
                    t[n++] = *q++;
            }
            size_t hdr = n < 128 ? 2 : 3;
            Google__Protobuf__Any *any =
                GA_MSG(c->a, Google__Protobuf__Any, google__protobuf__any__init);
            any->type_url = ga_strdup(
                c->a, "type.googleapis.com/"
                      "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig");
            any->value.data = ga_alloc(c->a, n + hdr);
            any->value.data[0] = 0x0a; /* field 1, length-delimited */
            if (hdr == 2) {
                any->value.data[1] = (uint8_t)n;
            } else {
                any->value.data[1] = (uint8_t)(0x80 | (n & 0x7f));
                any->value.data[2] = (uint8_t)(n >> 7);
            }
            memcpy(any->value.data + hdr, t, n);
            any->value.len = n + hdr;
            Envoy__Config__Core__V3__TypedExtensionConfig *x =
                GA_MSG(c->a, Envoy__Config__Core__V3__TypedExtensionConfig,
                       envoy__config__core__v3__typed_extension_config__init);
            x->name = ga_strdup(c->a, "uri-template");
            x->typed_config = any;
            p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_URI_TEMPLATE);
            p->uri_template = x;
            break;
        }
        p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_URL_PATH);
        p->url_path = GA_MSG(c->a, Envoy__Type__Matcher__V3__PathMatcher,
                             envoy__type__matcher__v3__path_matcher__init);
        p->url_path->rule_case = ENVOY__TYPE__MATCHER__V3__PATH_MATCHER__RULE_PATH;
        p->url_path->path = sm_plain(c, v);
        break;
    case K_PORT: {
        char *end;
        unsigned long port = strtoul(v, &end, 10);
        if (!*v || *end || port > 65535)
            return -1;
        p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_PORT);
        p->destination_port = (uint32_t)port;
        break;
    }
    case K_DEST_IP:
        p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_IP);
        if (!(p->destination_ip = cidr(c, v)))
            return -1;
        break;
    case K_SNI:
        p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_REQUESTED_SERVER_NAME);
        p->requested_server_name = sm_plain(c, v);
        break;
    default:
        return -1; /* a principal-side key: istiod's "unimplemented" */
    }
    *out = p;
    return 0;
}

/* "experimental.envoy.filters.a.b[c]": all values in one metadata matcher on filter
 * envoy.filters.a.b, key c; "[v]" values match inside a list. */
static int perm_envoy_filter(az_gen *g, const az_item *it, char *const *v, size_t n, Perm **out)
{
    gen_ctx *c = g->c;
    *out = NULL;
    if (c->grpc)
        return -1; /* Envoy dynamic metadata: never present on a gRPC server */
    const char *k = it->key + strlen("experimental.");
    const char *open = strchr(k, '[');
    size_t kl = strlen(k);
    if (!open)
        return -1;
    const char *filter = ga_printf(c->a, "%.*s", (int)(open - k), k);
    size_t end = kl && k[kl - 1] == ']' ? kl - 1 : kl;
    const char *key = ga_printf(c->a, "%.*s", (int)(end - (size_t)(open + 1 - k)), open + 1);
    ValM **ms = ga_alloc(c->a, n * sizeof *ms);
    for (size_t i = 0; i < n; i++) {
        const char *s = v[i];
        size_t sl = strlen(s);
        if (sl >= 2 && s[0] == '[' && s[sl - 1] == ']') {
            /* strings.Trim(value, "[]") */
            const char *b = s, *e = s + sl;
            while (b < e && (*b == '[' || *b == ']'))
                b++;
            while (e > b && (e[-1] == '[' || e[-1] == ']'))
                e--;
            ms[i] = vm_list_one_of(
                c, vm_string(c, sm_plain(c, ga_printf(c->a, "%.*s", (int)(e - b), b))));
        } else {
            ms[i] = vm_string(c, sm_plain(c, s));
        }
    }
    Perm *p = perm_new(c, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_METADATA);
    p->metadata = meta_matcher(c, filter, &key, 1, vm_or(c, ms, n));
    *out = p;
    return 0;
}

/* "[name]" -> name; NULL when not of that form (istiod's extractNameInBrackets). */
static char *in_brackets(gen_ctx *c, const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || s[0] != '[' || s[n - 1] != ']')
        return NULL;
    return ga_printf(c->a, "%.*s", (int)(n - 2), s + 1);
}

static Prin *prin_value(az_gen *g, const az_item *it, const char *v)
{
    gen_ctx *c = g->c;
    Prin *p;
    switch (it->k) {
    case K_SRC_IP:
    case K_REMOTE_IP: {
        Cidr *r = cidr(c, v);
        if (!r)
            return NULL;
        if (it->k == K_SRC_IP) {
            p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_DIRECT_REMOTE_IP);
            p->direct_remote_ip = r;
        } else {
            p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_REMOTE_IP);
            p->remote_ip = r;
        }
        return p;
    }
    case K_NAMESPACE: {
        /* the namespace between "/ns/" and "/", '*' as ".*", literal parts quoted */
        char *re = ga_strdup(c->a, ".*/ns/");
        for (const char *q = v;;) {
            const char *star = strchr(q, '*');
            size_t n = star ? (size_t)(star - q) : strlen(q);
            re = ga_printf(c->a, "%s%s%s", re, quote_meta(c, q, n), star ? ".*" : "");
            if (!star)
                break;
            q = star + 1;
        }
        return prin_authenticated(c, sm_new(c, SM_REGEX, ga_printf(c->a, "%s/.*", re), false));
    }
    case K_SERVICE_ACCOUNT: {
        const char *slash = strchr(v, '/');
        const char *ns = slash ? ga_printf(c->a, "%.*s", (int)(slash - v), v) : g->ap->meta.ns;
        const char *sa = slash ? slash + 1 : v;
        return prin_authenticated(
            c, sm_new(c, SM_REGEX,
                      ga_printf(c->a, "spiffe://.+/ns/%s/(.+/|)sa/%s(/.+)?",
                                quote_meta(c, ns, strlen(ns)), quote_meta(c, sa, strlen(sa))),
                      false));
    }
    case K_TRUST_DOMAIN: {
        const char *star = strchr(v, '*');
        if (!strcmp(v, "*"))
            return prin_authenticated(c, sm_new(c, SM_PREFIX, "spiffe://", false));
        if (!star)
            return prin_authenticated(
                c, sm_new(c, SM_PREFIX, ga_printf(c->a, "spiffe://%s/", v), false));
        return prin_authenticated(
            c, sm_new(c, SM_REGEX,
                      ga_printf(c->a, "spiffe://%s[^/]*%s/.*", quote_meta(c, v, (size_t)(star - v)),
                                quote_meta(c, star + 1, strlen(star + 1))),
                      false));
    }
    case K_PRINCIPAL:
        return prin_authenticated(c, sm_with_prefix(c, migrate_principal(g, v), "spiffe://"));
    case K_REQ_HEADER: {
        if (g->tcp)
            return NULL;
        char *name = in_brackets(c, it->key + strlen("request.headers"));
        if (!name)
            return NULL;
        /* A41: a grpc- header or :scheme in a matcher NACKs the listener */
        if (c->grpc && (!strncmp(name, "grpc-", 5) || !strcmp(name, ":scheme")))
            return NULL;
        p = prin_new(c, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_HEADER);
        p->header = header_matcher(g, name, v, false);
        return p;
    }
    default:
        return NULL;
    }
}

/* The JWT-derived keys: all values in one principal. NULL when not expressible. */
static Prin *prin_extended(az_gen *g, const az_item *it, char *const *v, size_t n)
{
    gen_ctx *c = g->c;
    if (g->tcp || c->grpc) /* HTTP only; gRPC servers have no jwt_authn metadata */
        return NULL;
    if (it->k == K_REQ_PRINCIPAL) {
        Prin ** or = ga_alloc(c->a, n * sizeof * or);
        for (size_t i = 0; i < n; i++) {
            const char *val = v[i], *slash = strrchr(val, '/');
            size_t vl = strlen(val);
            const char *iss = slash ? ga_printf(c->a, "%.*s", (int)(slash - val), val) : val;
            const char *sub = slash ? slash + 1 : "";
            StrM *mi, *ms;
            if (!strcmp(val, "*")) {
                mi = sm_new(c, SM_REGEX, ".+", false);
                ms = sm_new(c, SM_REGEX, ".+", false);
            } else if (val[0] == '*') {
                if (slash) {
                    mi = !strcmp(iss, "*") ? sm_new(c, SM_REGEX, ".+", false)
                                           : sm_new(c, SM_SUFFIX, iss + 1, false);
                    ms = sm_new(c, SM_EXACT, sub, false);
                } else {
                    mi = sm_new(c, SM_REGEX, ".+", false);
                    ms = sm_new(c, SM_SUFFIX, val + 1, false);
                }
            } else if (val[vl - 1] == '*') {
                if (slash) {
                    mi = sm_new(c, SM_EXACT, iss, false);
                    ms = !strcmp(sub, "*")
                             ? sm_new(c, SM_REGEX, ".+", false)
                             : sm_new(c, SM_PREFIX,
                                      ga_printf(c->a, "%.*s", (int)(strlen(sub) - 1), sub), false);
                } else {
                    mi = sm_new(c, SM_PREFIX, ga_printf(c->a, "%.*s", (int)(vl - 1), val), false);
                    ms = sm_new(c, SM_REGEX, ".+", false);
                }
            } else {
                mi = sm_new(c, SM_EXACT, iss, false);
                ms = sm_new(c, SM_EXACT, sub, false);
            }
            const char *ki[2] = {"payload", "iss"}, *ks[2] = {"payload", "sub"};
            Prin **and = ga_alloc(c->a, 2 * sizeof *and);
            and[0] = prin_metadata(c, meta_matcher(c, JWT_FILTER, ki, 2, vm_string(c, mi)));
            and[1] = prin_metadata(c, meta_matcher(c, JWT_FILTER, ks, 2, vm_string(c, ms)));
            or [i] = prin_set(c, true, and, 2);
        }
        return n == 1 ? or [0] : prin_set(c, false, or, n);
    }
    char *claims_buf[1];
    char *const *claims = claims_buf;
    size_t nclaims = 1;
    if (it->k == K_AUDIENCES) {
        claims_buf[0] = "aud";
    } else if (it->k == K_PRESENTER) {
        claims_buf[0] = "azp";
    } else {
        /* request.auth.claims[a][b] -> [a, b]; else the whole bracket ([a]) */
        const char *s = it->key + strlen("request.auth.claims");
        char **list = NULL;
        size_t nl = 0;
        bool ok = true;
        for (const char *q = s; *q;) {
            const char *e = q[0] == '[' ? strpbrk(q + 1, "[]") : NULL;
            if (!e || *e != ']') {
                ok = false;
                break;
            }
            GA_PUSH(c->a, list, nl, ga_printf(c->a, "%.*s", (int)(e - q - 1), q + 1));
            q = e + 1;
        }
        if (!ok || !nl) {
            char *one = in_brackets(c, s);
            if (!one)
                return NULL;
            list = ga_alloc(c->a, sizeof *list);
            list[0] = one;
            nl = 1;
        }
        claims = list;
        nclaims = nl;
    }
    return prin_metadata(c, jwt_claims_matcher(c, claims, nclaims, vm_string_or(c, v, n)));
}

/* istiod's checkError: an error stops an ALLOW rule, is ignored otherwise. */
static bool fatal(const az_gen *g)
{
    return g->action == ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW;
}

/* One item's permissions (values OR'ed, notValues OR'ed under a NOT) appended to and[]. */
static int item_perms(az_gen *g, const az_item *it, Perm ***and, size_t *nand)
{
    gen_ctx *c = g->c;
    for (int neg = 0; neg < 2; neg++) {
        char *const *v = neg ? it->nots : it->v;
        size_t n = neg ? it->nnots : it->nv;
        if (!n)
            continue;
        Perm *p = NULL;
        if (extended(it->k)) {
            if (perm_envoy_filter(g, it, v, n, &p) != 0 && fatal(g))
                return -1;
        } else {
            Perm ** or = NULL;
            size_t nor = 0;
            for (size_t i = 0; i < n; i++) {
                Perm *x;
                if (perm_value(g, it, v[i], &x) != 0 && fatal(g))
                    return -1;
                if (x)
                    GA_PUSH(c->a, or, nor, x);
            }
            if (nor)
                p = perm_set(c, false, or, nor);
        }
        if (p)
            GA_PUSH(c->a, *and, *nand, neg ? perm_not(c, p) : p);
    }
    return 0;
}

static int item_prins(az_gen *g, const az_item *it, Prin ***and, size_t *nand)
{
    gen_ctx *c = g->c;
    for (int neg = 0; neg < 2; neg++) {
        char *const *v = neg ? it->nots : it->v;
        size_t n = neg ? it->nnots : it->nv;
        if (!n)
            continue;
        Prin *p = NULL;
        if (extended(it->k)) {
            if (!(p = prin_extended(g, it, v, n)) && fatal(g))
                return -1;
        } else {
            Prin ** or = NULL;
            size_t nor = 0;
            for (size_t i = 0; i < n; i++) {
                Prin *x = prin_value(g, it, v[i]);
                if (!x && fatal(g))
                    return -1;
                if (x)
                    GA_PUSH(c->a, or, nor, x);
            }
            if (nor)
                p = prin_set(c, false, or, nor);
        }
        if (p)
            GA_PUSH(c->a, *and, *nand, neg ? prin_not(c, p) : p);
    }
    return 0;
}

/* istiod's model.New + Generate for one rule: the policy, or NULL when the rule is
 * skipped on this chain. */
static Policy *rule_policy(az_gen *g, const mesh_az_rule *r)
{
    gen_ctx *c = g->c;
    az_list bperm = {0}, bprin = {0};
    for (size_t i = 0; i < r->nwhen; i++)
        if (!when_item(c, &r->when[i], &bperm, &bprin))
            return NULL; /* "unknown attribute" */

    Policy *pol = GA_MSG(c->a, Policy, envoy__config__rbac__v3__policy__init);
    size_t nperm = r->nto ? r->nto : 1;
    for (size_t t = 0; t < nperm; t++) {
        az_list l = {0};
        if (r->nto) {
            const mesh_az_operation *o = &r->to[t];
            static const struct {
                mesh_az_operation_field f;
                az_kind k;
            } order[] = {{MESH_AZ_HOSTS, K_HOST},
                         {MESH_AZ_METHODS, K_METHOD},
                         {MESH_AZ_PATHS, K_PATH},
                         {MESH_AZ_PORTS, K_PORT}};
            for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
                push_item(c, &l, order[k].k, NULL, &o->values[order[k].f],
                          &o->not_values[order[k].f]);
        }
        append_list(c, &l, &bperm);
        Perm **and = NULL;
        size_t nand = 0;
        for (size_t i = 0; i < l.n; i++)
            if (item_perms(g, &l.it[i], &and, &nand) != 0)
                return NULL;
        if (!nand)
            GA_PUSH(c->a, and, nand, perm_any(c));
        GA_PUSH(c->a, pol->permissions, pol->n_permissions, perm_set(c, true, and, nand));
    }
    size_t nprin = r->nfrom ? r->nfrom : 1;
    for (size_t f = 0; f < nprin; f++) {
        az_list l = {0};
        if (r->nfrom) {
            const mesh_az_source *s = &r->from[f];
            static const struct {
                mesh_az_source_field f;
                az_kind k;
            } order[] = {{MESH_AZ_PRINCIPALS, K_PRINCIPAL},
                         {MESH_AZ_REQUEST_PRINCIPALS, K_REQ_PRINCIPAL},
                         {MESH_AZ_NAMESPACES, K_NAMESPACE},
                         {MESH_AZ_REMOTE_IP_BLOCKS, K_REMOTE_IP},
                         {MESH_AZ_IP_BLOCKS, K_SRC_IP}};
            for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
                push_item(c, &l, order[k].k, NULL, &s->values[order[k].f],
                          &s->not_values[order[k].f]);
        }
        append_list(c, &l, &bprin);
        Prin **and = NULL;
        size_t nand = 0;
        for (size_t i = 0; i < l.n; i++)
            if (item_prins(g, &l.it[i], &and, &nand) != 0)
                return NULL;
        if (!nand)
            GA_PUSH(c->a, and, nand, prin_any(c));
        GA_PUSH(c->a, pol->principals, pol->n_principals, prin_set(c, true, and, nand));
    }
    return pol;
}

/* istiod's rbacPolicyMatchNever: what a policy without rules contributes. */
static Policy *policy_never(gen_ctx *c)
{
    Policy *pol = GA_MSG(c->a, Policy, envoy__config__rbac__v3__policy__init);
    GA_PUSH(c->a, pol->permissions, pol->n_permissions, perm_not(c, perm_any(c)));
    GA_PUSH(c->a, pol->principals, pol->n_principals, prin_not(c, prin_any(c)));
    return pol;
}

/* ---- RBAC configs ---------------------------------------------------------------------- */

static Rbac *rbac_new(gen_ctx *c, Envoy__Config__Rbac__V3__RBAC__Action action)
{
    Rbac *r = GA_MSG(c->a, Rbac, envoy__config__rbac__v3__rbac__init);
    r->action = action;
    return r;
}

static void rbac_add(gen_ctx *c, Rbac *r, const char *name, Policy *p)
{
    Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *e =
        GA_MSG(c->a, Envoy__Config__Rbac__V3__RBAC__PoliciesEntry,
               envoy__config__rbac__v3__rbac__policies_entry__init);
    e->key = ga_strdup(c->a, name);
    e->value = p;
    GA_PUSH(c->a, r->policies, r->n_policies, e);
}

static int entry_cmp(const void *a, const void *b)
{
    const Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

/* Policies in key order, as Go's deterministic map encoding sends them. */
static void rbac_sort(Rbac *r)
{
    if (r && r->n_policies > 1)
        qsort(r->policies, r->n_policies, sizeof *r->policies, entry_cmp);
}

/* Whether ap takes part in this build: selected for the proxy and of the kind wanted. */
static bool ap_wanted(gen_ctx *c, const mesh_authorization_policy *ap, mesh_az_action want)
{
    if (ap->action != want)
        return false;
    return gen_policy_applies(c, &ap->meta, &ap->selector, ap->ntarget_refs);
}

/* istiod's Builder.build for one action (ALLOW, DENY or AUDIT): enforced and dry-run rules
 * apart; false when no policy of that action applies. */
static bool build_local(gen_ctx *c, mesh_az_action want, bool tcp, Rbac **rules, Rbac **shadow)
{
    static const Envoy__Config__Rbac__V3__RBAC__Action act[] = {
        [MESH_AZ_ALLOW] = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW,
        [MESH_AZ_DENY] = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY,
        [MESH_AZ_AUDIT] = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__LOG,
        [MESH_AZ_CUSTOM] = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY,
    };
    bool any = false;
    *rules = *shadow = NULL;
    for (size_t i = 0; i < c->s->naps; i++) {
        const mesh_authorization_policy *ap = c->s->aps[i];
        if (!ap_wanted(c, ap, want))
            continue;
        any = true;
        Rbac **dst = ap->dry_run ? shadow : rules;
        if (!*dst)
            *dst = rbac_new(c, act[want]);
        az_gen g = {c, ap, tcp, act[want]};
        for (size_t k = 0; k < ap->nrules; k++) {
            Policy *p = rule_policy(&g, &ap->rules[k]);
            if (p)
                rbac_add(
                    c, *dst,
                    ga_printf(c->a, "ns[%s]-policy[%s]-rule[%zu]", ap->meta.ns, ap->meta.name, k),
                    p);
        }
        if (!ap->nrules)
            rbac_add(c, *dst,
                     ga_printf(c->a, "ns[%s]-policy[%s]-rule[0]", ap->meta.ns, ap->meta.name),
                     policy_never(c));
    }
    rbac_sort(*rules);
    rbac_sort(*shadow);
    return any;
}

/* istiod's shadowRuleStatPrefix, which reads a missing RBAC as ALLOW. */
static char *shadow_prefix(const Rbac *shadow)
{
    if (!shadow || shadow->action == ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW)
        return "istio_dry_run_allow_";
    if (shadow->action == ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY)
        return "istio_dry_run_deny_";
    return "";
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* CUSTOM: ext_authz providers come from mesh config extensionProviders, which is not
 * modelled yet, so every provider is "not found" and istiod's answer to that applies:
 * per provider (sorted), an RBAC filter that DENIES what the enforced (not dry-run) CUSTOM
 * rules match, named "istio-ext-authz-<provider>-ns[..]-policy[..]-rule[i]-deny-due-to-bad-
 * CUSTOM-action". Built once per chain kind; appends one Rbac per provider to *out. */
static void build_custom(gen_ctx *c, bool tcp, Rbac ***out, size_t *nout)
{
    char **providers = NULL;
    size_t np = 0;
    for (size_t i = 0; i < c->s->naps; i++) {
        const mesh_authorization_policy *ap = c->s->aps[i];
        if (!ap_wanted(c, ap, MESH_AZ_CUSTOM) || !ap->provider ||
            gen_names_has((const char *const *)providers, np, ap->provider))
            continue;
        GA_PUSH(c->a, providers, np, ga_strdup(c->a, ap->provider));
    }
    if (np > 1)
        qsort(providers, np, sizeof *providers, str_cmp);
    for (size_t k = 0; k < np; k++) {
        Rbac *r = rbac_new(c, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
        for (size_t i = 0; i < c->s->naps; i++) {
            const mesh_authorization_policy *ap = c->s->aps[i];
            if (!ap_wanted(c, ap, MESH_AZ_CUSTOM) || !ap->provider ||
                strcmp(ap->provider, providers[k]) != 0 || ap->dry_run)
                continue;
            az_gen g = {c, ap, tcp, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY};
            for (size_t n = 0; n < ap->nrules; n++) {
                Policy *p = rule_policy(&g, &ap->rules[n]);
                if (p)
                    rbac_add(c, r,
                             ga_printf(c->a, EXT_AUTHZ_PREFIX "-%s-ns[%s]-policy[%s]-rule[%zu]%s",
                                       ap->provider, ap->meta.ns, ap->meta.name, n,
                                       BAD_CUSTOM_SUFFIX),
                             p);
            }
        }
        rbac_sort(r);
        GA_PUSH(c->a, *out, *nout, r);
    }
}

/* ---- proxyless gRPC (gRFC A41) ------------------------------------------------------------ */

/* What istiod's grpcgen builds, corrected where it fails open: one DENY filter
 * ("envoy.filters.http.rbac.DENY") then one ALLOW filter ("envoy.filters.http.rbac"), policy
 * names "<ns>-<name>-<i>". AUDIT is left out (A41 ignores LOG) and so are dry-run policies
 * (A41 has no shadow rules; grpcgen enforces them). CUSTOM policies deny what they match:
 * gRPC servers have no ext_authz, and failing closed is what Envoy does without a provider
 * (grpcgen drops them). An ALLOW policy without rules denies all, and ALLOW policies whose
 * rules all dropped still give an ALLOW filter that denies all (grpcgen drops the filter). */
static void grpc_filters(gen_ctx *c, gen_hfilter ***f, size_t *n)
{
    static const struct {
        mesh_az_action a;
        Envoy__Config__Rbac__V3__RBAC__Action act;
    } kinds[] = {
        {MESH_AZ_DENY, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY},
        {MESH_AZ_CUSTOM, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY},
        {MESH_AZ_ALLOW, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW},
    };
    Rbac *deny = rbac_new(c, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    Rbac *allow = NULL;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t i = 0; i < c->s->naps; i++) {
            const mesh_authorization_policy *ap = c->s->aps[i];
            if (ap->dry_run || !ap_wanted(c, ap, kinds[k].a))
                continue;
            Rbac *dst = deny;
            if (kinds[k].a == MESH_AZ_ALLOW)
                dst = allow ? allow : (allow = rbac_new(c, kinds[k].act));
            az_gen g = {c, ap, false, kinds[k].act};
            for (size_t r = 0; r < ap->nrules; r++) {
                Policy *p = rule_policy(&g, &ap->rules[r]);
                if (p)
                    rbac_add(c, dst, ga_printf(c->a, "%s-%s-%zu", ap->meta.ns, ap->meta.name, r),
                             p);
            }
            if (!ap->nrules)
                rbac_add(c, dst, ga_printf(c->a, "%s-%s-0", ap->meta.ns, ap->meta.name),
                         policy_never(c));
        }
    }
    if (deny->n_policies) {
        rbac_sort(deny);
        Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *h =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
                   envoy__extensions__filters__http__rbac__v3__rbac__init);
        h->rules = deny;
        GA_PUSH(c->a, *f, *n, gen_http_filter_new(c, RBAC_HTTP ".DENY", &h->base));
    }
    if (allow) {
        rbac_sort(allow);
        Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *h =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
                   envoy__extensions__filters__http__rbac__v3__rbac__init);
        h->rules = allow;
        GA_PUSH(c->a, *f, *n, gen_http_filter_new(c, RBAC_HTTP, &h->base));
    }
}

/* ---- entry points -------------------------------------------------------------------------- */

static const mesh_az_action local_order[] = {MESH_AZ_AUDIT, MESH_AZ_DENY, MESH_AZ_ALLOW};

void gen_authz_http_filters(gen_ctx *c, gen_hfilter ***f, size_t *n)
{
    if (!c->s->naps)
        return;
    if (c->grpc) {
        grpc_filters(c, f, n);
        return;
    }
    Rbac **custom = NULL;
    size_t ncustom = 0;
    build_custom(c, false, &custom, &ncustom);
    for (size_t i = 0; i < ncustom; i++) {
        Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *h =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
                   envoy__extensions__filters__http__rbac__v3__rbac__init);
        h->rules = custom[i];
        GA_PUSH(c->a, *f, *n, gen_http_filter_new(c, RBAC_HTTP, &h->base));
    }
    for (size_t k = 0; k < sizeof local_order / sizeof local_order[0]; k++) {
        Rbac *rules, *shadow;
        if (!build_local(c, local_order[k], false, &rules, &shadow))
            continue;
        Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *h =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
                   envoy__extensions__filters__http__rbac__v3__rbac__init);
        h->rules = rules;
        h->shadow_rules = shadow;
        h->shadow_rules_stat_prefix = shadow_prefix(shadow);
        GA_PUSH(c->a, *f, *n, gen_http_filter_new(c, RBAC_HTTP, &h->base));
    }
}

void gen_authz_network_filters(gen_ctx *c, Envoy__Config__Listener__V3__Filter ***f, size_t *n)
{
    if (!c->s->naps || c->grpc) /* A41: no network RBAC on gRPC servers */
        return;
    Rbac **custom = NULL;
    size_t ncustom = 0;
    build_custom(c, true, &custom, &ncustom);
    for (size_t i = 0; i < ncustom; i++) {
        Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *t =
            GA_MSG(c->a, Envoy__Extensions__Filters__Network__Rbac__V3__RBAC,
                   envoy__extensions__filters__network__rbac__v3__rbac__init);
        t->rules = custom[i];
        t->stat_prefix = "tcp.";
        GA_PUSH(c->a, *f, *n, gen_filter(c, RBAC_TCP, &t->base));
    }
    for (size_t k = 0; k < sizeof local_order / sizeof local_order[0]; k++) {
        Rbac *rules, *shadow;
        if (!build_local(c, local_order[k], true, &rules, &shadow))
            continue;
        Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *t =
            GA_MSG(c->a, Envoy__Extensions__Filters__Network__Rbac__V3__RBAC,
                   envoy__extensions__filters__network__rbac__v3__rbac__init);
        t->rules = rules;
        t->shadow_rules = shadow;
        t->stat_prefix = "tcp.";
        t->shadow_rules_stat_prefix = shadow_prefix(shadow);
        GA_PUSH(c->a, *f, *n, gen_filter(c, RBAC_TCP, &t->base));
    }
}
