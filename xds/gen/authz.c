/* gen_authz: AuthorizationPolicy -> Envoy RBAC and ext_authz filters, as istiod's
 * pilot/pkg/security/authz/builder and its model/ generators build them for sidecars, and
 * as pilot/pkg/networking/grpcgen builds them for proxyless gRPC servers (gRFC A41), with
 * the fixes listed at gen_authz_http_filters.
 *
 * A rule becomes one RBAC policy "ns[<ns>]-policy[<name>]-rule[<i>]": an OR of
 * permissions (one per `to`, else one from the `when` keys alone) and an OR of principals
 * (one per `from`), each an AND of the fields set, in istiod's order (principals,
 * requestPrincipals, serviceAccounts, trustDomains, namespaces, remoteIpBlocks, ipBlocks,
 * then the principal-side `when` keys; hosts, methods, paths, ports, then the
 * permission-side `when` keys). Principals and trust domains then go through istiod's
 * trust domain bundle (our trust domain and mesh config trustDomainAliases). A field that
 * cannot be expressed on the chain being built (HTTP-only fields on TCP; for gRPC, Envoy
 * dynamic metadata, URI templates and headers A41 refuses) follows istiod's rule: an ALLOW
 * rule is dropped whole (allows less), a DENY, AUDIT or CUSTOM rule loses the condition
 * (denies more).
 *
 * CUSTOM policies become, per provider, an RBAC filter that marks what they match and the
 * ext_authz filter of the mesh config provider that the mark enables; without a working
 * provider, an RBAC filter that denies it (see custom_filters).
 *
 * Runs on the calling xDS shard thread; reads only the pinned snapshot and the mesh
 * config settings (c->mesh_authz, fixed for the process); every message lives in c->a. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/config/core/v3/grpc_service.pb-c.h"
#include "envoy/config/core/v3/http_uri.pb-c.h"
#include "envoy/extensions/filters/http/ext_authz/v3/ext_authz.pb-c.h"
#include "envoy/extensions/filters/network/ext_authz/v3/ext_authz.pb-c.h"
#include "envoy/type/v3/http_status.pb-c.h"
#include "pilot/base/util.h"
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
#define EXT_AUTHZ_HTTP "envoy.filters.http.ext_authz"
#define EXT_AUTHZ_TCP "envoy.filters.network.ext_authz"
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

/* istiod's trustdomain.Bundle: our trust domain, then mesh config trustDomainAliases. */
static size_t td_bundle(gen_ctx *c, const char ***out)
{
    const xds_strlist *al = c->mesh_authz ? &c->mesh_authz->trust_domain_aliases : NULL;
    size_t n = 1 + (al ? al->n : 0);
    const char **v = ga_alloc(c->a, n * sizeof *v);
    v[0] = c->trust_domain ? c->trust_domain : "cluster.local";
    for (size_t i = 1; i < n; i++)
        v[i] = al->v[i - 1];
    *out = v;
    return n;
}

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

/* trustdomain's stringMatch: the pattern may be on either side. */
static bool td_string_match(const char *a, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = list[i];
        if (!strcmp(a, s) || !strcmp(s, "*") || td_prefix_match(a, s) || td_prefix_match(s, a) ||
            td_suffix_match(a, s) || td_suffix_match(s, a))
            return true;
    }
    return false;
}

static bool strs_has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* Bundle.ReplaceTrustDomainAliases: a principal "<td>/ns/<ns>/sa/<sa>" whose trust domain
 * is one of the bundle's (or cluster.local, which stands for ours) becomes one principal
 * per trust domain of the bundle; others are kept as written. */
static void replace_td_aliases(gen_ctx *c, char *const *in, size_t nin, char ***out, size_t *nout)
{
    const char **tds;
    size_t ntds = td_bundle(c, &tds);
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < nin; i++) {
        const char *pr = in[i], *slash = strchr(pr, '/');
        size_t parts = 1;
        for (const char *q = pr; *q; q++)
            parts += *q == '/';
        char *ptd = slash ? ga_printf(c->a, "%.*s", (int)(slash - pr), pr) : NULL;
        if (parts != 5 || !strcmp(ptd, "*") ||
            (!td_string_match(ptd, tds, ntds) && strcmp(ptd, "cluster.local") != 0)) {
            GA_PUSH(c->a, *out, *nout, (char *)pr);
            continue;
        }
        size_t first = *nout;
        for (size_t k = 0; k < ntds; k++) {
            /* a principal trust domain "*x" that matches this one stays as written */
            char *np =
                td_suffix_match(tds[k], ptd) ? (char *)pr : ga_printf(c->a, "%s%s", tds[k], slash);
            if (!strs_has(*out + first, *nout - first, np))
                GA_PUSH(c->a, *out, *nout, np);
        }
    }
}

/* Bundle.ExpandTrustDomainAliases: a trust domain of the bundle stands for all of them;
 * duplicates dropped, first kept. */
static void expand_td_aliases(gen_ctx *c, char *const *in, size_t nin, char ***out, size_t *nout)
{
    const char **tds;
    size_t ntds = td_bundle(c, &tds);
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < nin; i++) {
        bool known = strs_has((char *const *)tds, ntds, in[i]);
        for (size_t k = 0; k < (known ? ntds : 1); k++) {
            char *v = known ? (char *)tds[k] : in[i];
            if (!strs_has(*out, *nout, v))
                GA_PUSH(c->a, *out, *nout, v);
        }
    }
}

/* istiod's Model.MigrateTrustDomain, on the items of one principal list. */
static void migrate_trust_domain(gen_ctx *c, az_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        az_item *it = &l->it[i];
        void (*fn)(gen_ctx *, char *const *, size_t, char ***, size_t *) =
            it->k == K_PRINCIPAL      ? replace_td_aliases
            : it->k == K_TRUST_DOMAIN ? expand_td_aliases
                                      : NULL;
        if (!fn)
            continue;
        char **v;
        size_t n;
        if (it->nv) {
            fn(c, it->v, it->nv, &v, &n);
            it->v = v;
            it->nv = n;
        }
        if (it->nnots) {
            fn(c, it->nots, it->nnots, &v, &n);
            it->nots = v;
            it->nnots = n;
        }
    }
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
        return prin_authenticated(c, sm_with_prefix(c, v, "spiffe://"));
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
                         {MESH_AZ_SERVICE_ACCOUNTS, K_SERVICE_ACCOUNT},
                         {MESH_AZ_TRUST_DOMAINS, K_TRUST_DOMAIN},
                         {MESH_AZ_NAMESPACES, K_NAMESPACE},
                         {MESH_AZ_REMOTE_IP_BLOCKS, K_REMOTE_IP},
                         {MESH_AZ_IP_BLOCKS, K_SRC_IP}};
            for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
                push_item(c, &l, order[k].k, NULL, &s->values[order[k].f],
                          &s->not_values[order[k].f]);
        }
        append_list(c, &l, &bprin);
        migrate_trust_domain(c, &l);
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

/* ---- CUSTOM: ext_authz ------------------------------------------------------------------ */

/* The rules of one provider's CUSTOM policies, named
 * "istio-ext-authz-<provider>-ns[..]-policy[..]-rule[i]": enforced ones in rules, dry-run
 * ones in dry (istiod keeps both, empty, once the provider is seen). */
typedef struct custom_set {
    const char *provider;
    Rbac *rules, *dry;
} custom_set;

/* istiod's Builder.build with IsCustomBuilder: one set per provider named by a CUSTOM
 * policy that applies, sorted by provider. */
static size_t custom_sets(gen_ctx *c, bool tcp, custom_set **out)
{
    custom_set *v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->s->naps; i++) {
        const mesh_authorization_policy *ap = c->s->aps[i];
        if (!ap_wanted(c, ap, MESH_AZ_CUSTOM) || !ap->provider)
            continue;
        size_t k;
        for (k = 0; k < n && strcmp(v[k].provider, ap->provider) != 0; k++)
            ;
        if (k == n) {
            custom_set cs = {ap->provider, rbac_new(c, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY),
                             rbac_new(c, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY)};
            GA_PUSH(c->a, v, n, cs);
        }
        Rbac *dst = ap->dry_run ? v[k].dry : v[k].rules;
        az_gen g = {c, ap, tcp, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY};
        for (size_t r = 0; r < ap->nrules; r++) {
            Policy *p = rule_policy(&g, &ap->rules[r]);
            if (p)
                rbac_add(c, dst,
                         ga_printf(c->a, EXT_AUTHZ_PREFIX "-%s-ns[%s]-policy[%s]-rule[%zu]",
                                   ap->provider, ap->meta.ns, ap->meta.name, r),
                         p);
        }
    }
    for (size_t i = 1; i < n; i++) /* insertion sort by provider: a handful at most */
        for (size_t j = i; j > 0 && strcmp(v[j - 1].provider, v[j].provider) > 0; j--) {
            custom_set t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        rbac_sort(v[i].rules);
        rbac_sort(v[i].dry);
    }
    *out = v;
    return n;
}

/* istiod's getBadCustomDenyRules: what the enforced rules match is denied. */
static Rbac *bad_custom_rules(gen_ctx *c, const Rbac *rules)
{
    Rbac *r = rbac_new(c, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    for (size_t i = 0; i < rules->n_policies; i++)
        rbac_add(c, r, ga_printf(c->a, "%s" BAD_CUSTOM_SUFFIX, rules->policies[i]->key),
                 rules->policies[i]->value);
    return r;
}

/* validateProviderName: a DNS-1123 label. */
static bool provider_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* istiod's parseStatusOnError: "" none (*code -1), else a code of envoy.type.v3.StatusCode
 * (0, "Empty", included). */
static bool status_on_error(const char *s, int *code)
{
    char *end;
    *code = -1;
    if (!s || !*s)
        return true;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 999)
        return false;
    *code = (int)v;
    return protobuf_c_enum_descriptor_get_value(&envoy__type__v3__status_code__descriptor,
                                                (int)v) != NULL;
}

static bool has_single_wildcard(const xds_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], "*"))
            return true;
    return false;
}

/* model.LookupCluster: "<ns>/<host>" must name a service of that namespace, "<host>" any.
 * The snapshot keeps one service per hostname (the first by Kubernetes, then ServiceEntry
 * ns/name), so istiod's "found in multiple namespaces" cannot arise here. NULL when none. */
const mesh_service *gen_lookup_service(gen_ctx *c, const char *service)
{
    const char *slash = strchr(service, '/');
    const char *host = slash ? slash + 1 : service;
    if (!*host || strchr(host, '/'))
        return NULL;
    const mesh_service *svc = mesh_snapshot_service(c->s, host);
    if (svc && slash &&
        (strlen(svc->meta.ns) != (size_t)(slash - service) ||
         strncmp(svc->meta.ns, service, (size_t)(slash - service)) != 0))
        return NULL;
    return svc;
}

/* The provider the mesh config names so, or NULL; with *ok false when istiod would report
 * it broken (processExtensionProvider: name, duplicates, validation, LookupCluster). */
static const xds_ext_authz_provider *find_provider(gen_ctx *c, const char *name,
                                                   const mesh_service **svc, int *status, bool *ok)
{
    const xds_mesh_authz *m = c->mesh_authz;
    const xds_ext_authz_provider *p = NULL;
    size_t seen = 0;
    *ok = false;
    for (size_t i = 0; m && i < m->nproviders; i++)
        if (m->providers[i].name && !strcmp(m->providers[i].name, name)) {
            p = &m->providers[i]; /* the last one wins, as istiod's map */
            seen++;
        }
    if (!p)
        return NULL;
    *svc = NULL;
    if (seen > 1 || !provider_name_ok(p->name) || p->port < 1 || p->port > 65535 ||
        !status_on_error(p->status_on_error, status))
        return p;
    if (p->kind == XDS_EXT_AUTHZ_HTTP &&
        ((p->path_prefix && *p->path_prefix && p->path_prefix[0] != '/') ||
         has_single_wildcard(&p->include_request_headers_in_check) ||
         has_single_wildcard(&p->include_headers_in_check) ||
         has_single_wildcard(&p->headers_to_downstream_on_deny) ||
         has_single_wildcard(&p->headers_to_downstream_on_allow) ||
         has_single_wildcard(&p->headers_to_upstream_on_allow)))
        return p;
    if (!p->service || !(*svc = gen_lookup_service(c, p->service)))
        return p;
    *ok = true;
    return p;
}

/* istiod's generateHeaders: "*x" suffix, "x*" prefix, else exact, all ignoring case. */
static Envoy__Type__Matcher__V3__ListStringMatcher *header_list(gen_ctx *c, const xds_strlist *l)
{
    if (!l->n)
        return NULL;
    Envoy__Type__Matcher__V3__ListStringMatcher *m =
        GA_MSG(c->a, Envoy__Type__Matcher__V3__ListStringMatcher,
               envoy__type__matcher__v3__list_string_matcher__init);
    m->patterns = ga_alloc(c->a, l->n * sizeof *m->patterns);
    for (size_t i = 0; i < l->n; i++) {
        const char *h = l->v[i];
        size_t n = strlen(h);
        if (h[0] == '*')
            m->patterns[i] = sm_new(c, SM_SUFFIX, h + 1, true);
        else if (n && h[n - 1] == '*')
            m->patterns[i] = sm_new(c, SM_PREFIX, ga_printf(c->a, "%.*s", (int)(n - 1), h), true);
        else
            m->patterns[i] = sm_new(c, SM_EXACT, h, true);
    }
    m->n_patterns = l->n;
    return m;
}

/* generateFilterMatcherForProvider: run ext_authz when the shadow RBAC's effective policy
 * is one of this provider's ("istio-ext-authz-<provider>..."). */
static MetaM *filter_enabled(gen_ctx *c, const char *rbac_filter, const char *provider)
{
    const char *key = "istio_ext_authz_shadow_effective_policy_id";
    return meta_matcher(
        c, rbac_filter, &key, 1,
        vm_string(c,
                  sm_new(c, SM_PREFIX, ga_printf(c->a, EXT_AUTHZ_PREFIX "-%s", provider), false)));
}

static Google__Protobuf__Duration *provider_timeout(gen_ctx *c, const xds_ext_authz_provider *p)
{
    return gen_duration(c, p->timeout_ns >= 0 ? p->timeout_ns : 600 * 1000000000LL);
}

static Envoy__Config__Core__V3__GrpcService *
provider_grpc(gen_ctx *c, const xds_ext_authz_provider *p, const mesh_service *svc)
{
    Envoy__Config__Core__V3__GrpcService *g = GA_MSG(c->a, Envoy__Config__Core__V3__GrpcService,
                                                     envoy__config__core__v3__grpc_service__init);
    g->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    g->envoy_grpc = GA_MSG(c->a, Envoy__Config__Core__V3__GrpcService__EnvoyGrpc,
                           envoy__config__core__v3__grpc_service__envoy_grpc__init);
    g->envoy_grpc->cluster_name = gen_cluster_name(c, (uint32_t)p->port, "", svc->hostname);
    g->envoy_grpc->authority = ga_strdup(c->a, svc->hostname);
    g->timeout = provider_timeout(c, p);
    return g;
}

/* istiod's generateHTTPConfig / generateGRPCConfig, HTTP filter side. */
static Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthz *
ext_authz_http(gen_ctx *c, const xds_ext_authz_provider *p, const mesh_service *svc, int status)
{
    Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthz *x =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthz,
               envoy__extensions__filters__http__ext_authz__v3__ext_authz__init);
    if (status >= 0) {
        x->status_on_error =
            GA_MSG(c->a, Envoy__Type__V3__HttpStatus, envoy__type__v3__http_status__init);
        x->status_on_error->code = (Envoy__Type__V3__StatusCode)status;
    }
    x->failure_mode_allow = p->fail_open;
    x->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    x->filter_enabled_metadata = filter_enabled(c, RBAC_HTTP, p->name);
    if (p->with_body) {
        x->with_request_body =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__ExtAuthz__V3__BufferSettings,
                   envoy__extensions__filters__http__ext_authz__v3__buffer_settings__init);
        x->with_request_body->max_request_bytes = p->max_request_bytes;
        x->with_request_body->allow_partial_message = p->allow_partial_message;
        x->with_request_body->pack_as_bytes = p->pack_as_bytes;
    }
    if (p->kind == XDS_EXT_AUTHZ_GRPC) {
        x->services_case =
            ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_GRPC_SERVICE;
        x->grpc_service = provider_grpc(c, p, svc);
        return x;
    }
    Envoy__Extensions__Filters__Http__ExtAuthz__V3__HttpService *h =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__ExtAuthz__V3__HttpService,
               envoy__extensions__filters__http__ext_authz__v3__http_service__init);
    h->path_prefix = ga_strdup(c->a, p->path_prefix);
    h->server_uri =
        GA_MSG(c->a, Envoy__Config__Core__V3__HttpUri, envoy__config__core__v3__http_uri__init);
    h->server_uri->timeout = provider_timeout(c, p);                  /* required */
    h->server_uri->uri = ga_printf(c->a, "http://%s", svc->hostname); /* required, unused */
    h->server_uri->http_upstream_type_case =
        ENVOY__CONFIG__CORE__V3__HTTP_URI__HTTP_UPSTREAM_TYPE_CLUSTER;
    h->server_uri->cluster = gen_cluster_name(c, (uint32_t)p->port, "", svc->hostname);
    if (p->additional_header_keys.n) {
        h->authorization_request =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__ExtAuthz__V3__AuthorizationRequest,
                   envoy__extensions__filters__http__ext_authz__v3__authorization_request__init);
        for (size_t i = 0; i < p->additional_header_keys.n; i++) {
            Envoy__Config__Core__V3__HeaderValue *hv =
                GA_MSG(c->a, Envoy__Config__Core__V3__HeaderValue,
                       envoy__config__core__v3__header_value__init);
            hv->key = ga_strdup(c->a, p->additional_header_keys.v[i]);
            hv->value = ga_strdup(c->a, p->additional_header_values.v[i]);
            GA_PUSH(c->a, h->authorization_request->headers_to_add,
                    h->authorization_request->n_headers_to_add, hv);
        }
    }
    if (p->headers_to_upstream_on_allow.n || p->headers_to_downstream_on_deny.n ||
        p->headers_to_downstream_on_allow.n) {
        h->authorization_response =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__ExtAuthz__V3__AuthorizationResponse,
                   envoy__extensions__filters__http__ext_authz__v3__authorization_response__init);
        h->authorization_response->allowed_upstream_headers =
            header_list(c, &p->headers_to_upstream_on_allow);
        h->authorization_response->allowed_client_headers =
            header_list(c, &p->headers_to_downstream_on_deny);
        h->authorization_response->allowed_client_headers_on_success =
            header_list(c, &p->headers_to_downstream_on_allow);
    }
    x->services_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_HTTP_SERVICE;
    x->http_service = h;
    x->allowed_headers =
        header_list(c, p->include_request_headers_in_check.n ? &p->include_request_headers_in_check
                                                             : &p->include_headers_in_check);
    return x;
}

/* The network filter of a gRPC provider (HTTP providers have none). */
static Envoy__Extensions__Filters__Network__ExtAuthz__V3__ExtAuthz *
ext_authz_tcp(gen_ctx *c, const xds_ext_authz_provider *p, const mesh_service *svc)
{
    Envoy__Extensions__Filters__Network__ExtAuthz__V3__ExtAuthz *x =
        GA_MSG(c->a, Envoy__Extensions__Filters__Network__ExtAuthz__V3__ExtAuthz,
               envoy__extensions__filters__network__ext_authz__v3__ext_authz__init);
    x->stat_prefix = "tcp.";
    x->failure_mode_allow = p->fail_open;
    x->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    x->grpc_service = provider_grpc(c, p, svc);
    x->filter_enabled_metadata = filter_enabled(c, RBAC_TCP, p->name);
    return x;
}

/* One step of the CUSTOM filters for a chain: the RBAC config to put (bad: deny) and,
 * for a working provider, its ext_authz config after it. */
typedef struct custom_filter {
    Rbac *rules, *shadow; /* shadow != NULL: the marking RBAC of a working provider */
    const xds_ext_authz_provider *p;
    const mesh_service *svc;
    int status;
} custom_filter;

/* istiod's buildHTTP/buildTCP with IsCustomBuilder. A provider the mesh config does not
 * define, or defines badly, denies what its enforced rules match (the RBAC filter named
 * "...-deny-due-to-bad-CUSTOM-action"), and so do all of them when several providers
 * apply to one workload (istiod's PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS, off by
 * default). A working provider gets an RBAC filter that only marks the request (its rules
 * as shadow rules, stat prefix istio_ext_authz_; dry-run rules as rules, which istiod
 * also does) and an ext_authz filter enabled by that mark. On TCP, HTTP providers are
 * left out. */
static size_t custom_filters(gen_ctx *c, bool tcp, custom_filter **out)
{
    custom_set *sets;
    size_t n = custom_sets(c, tcp, &sets), nf = 0;
    custom_filter *f = NULL;
    for (size_t i = 0; i < n; i++) {
        custom_filter cf = {0};
        bool ok = false;
        if (n == 1)
            cf.p = find_provider(c, sets[i].provider, &cf.svc, &cf.status, &ok);
        if (!ok) {
            cf.rules = bad_custom_rules(c, sets[i].rules);
            cf.p = NULL;
        } else if (tcp && cf.p->kind == XDS_EXT_AUTHZ_HTTP) {
            continue;
        } else {
            cf.shadow = sets[i].rules;
            cf.rules = sets[i].dry->n_policies ? sets[i].dry : NULL;
        }
        GA_PUSH(c->a, f, nf, cf);
    }
    *out = f;
    return nf;
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
    custom_filter *cf;
    size_t ncf = custom_filters(c, false, &cf);
    for (size_t i = 0; i < ncf; i++) {
        Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *h =
            GA_MSG(c->a, Envoy__Extensions__Filters__Http__Rbac__V3__RBAC,
                   envoy__extensions__filters__http__rbac__v3__rbac__init);
        h->rules = cf[i].rules;
        if (cf[i].shadow) {
            h->shadow_rules = cf[i].shadow;
            h->shadow_rules_stat_prefix = "istio_ext_authz_";
        }
        GA_PUSH(c->a, *f, *n, gen_http_filter_new(c, RBAC_HTTP, &h->base));
        if (cf[i].p)
            GA_PUSH(
                c->a, *f, *n,
                gen_http_filter_new(c, EXT_AUTHZ_HTTP,
                                    &ext_authz_http(c, cf[i].p, cf[i].svc, cf[i].status)->base));
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
    custom_filter *cf;
    size_t ncf = custom_filters(c, true, &cf);
    for (size_t i = 0; i < ncf; i++) {
        Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *t =
            GA_MSG(c->a, Envoy__Extensions__Filters__Network__Rbac__V3__RBAC,
                   envoy__extensions__filters__network__rbac__v3__rbac__init);
        t->rules = cf[i].rules;
        t->stat_prefix = "tcp.";
        if (cf[i].shadow) {
            t->shadow_rules = cf[i].shadow;
            t->shadow_rules_stat_prefix = "istio_ext_authz_";
        }
        GA_PUSH(c->a, *f, *n, gen_filter(c, RBAC_TCP, &t->base));
        if (cf[i].p)
            GA_PUSH(c->a, *f, *n,
                    gen_filter(c, EXT_AUTHZ_TCP, &ext_authz_tcp(c, cf[i].p, cf[i].svc)->base));
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

/* ---- mesh config storage ------------------------------------------------------------------ */

static void strlist_clear(xds_strlist *l)
{
    util_strv_free(l->v, l->n);
    l->v = NULL;
    l->n = 0;
}

static void strlist_copy(xds_strlist *d, const xds_strlist *s)
{
    d->v = xcalloc(s->n ? s->n : 1, sizeof *d->v);
    for (size_t i = 0; i < s->n; i++)
        d->v[i] = xstrdup(s->v[i]);
    d->n = s->n;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void xds_mesh_authz_clear(xds_mesh_authz *m)
{
    strlist_clear(&m->trust_domain_aliases);
    for (size_t i = 0; i < m->nproviders; i++) {
        xds_ext_authz_provider *p = &m->providers[i];
        free(p->name);
        free(p->service);
        free(p->status_on_error);
        free(p->path_prefix);
        strlist_clear(&p->include_request_headers_in_check);
        strlist_clear(&p->include_headers_in_check);
        strlist_clear(&p->headers_to_upstream_on_allow);
        strlist_clear(&p->headers_to_downstream_on_deny);
        strlist_clear(&p->headers_to_downstream_on_allow);
        strlist_clear(&p->additional_header_keys);
        strlist_clear(&p->additional_header_values);
    }
    free(m->providers);
    memset(m, 0, sizeof *m);
}

void xds_mesh_authz_copy(xds_mesh_authz *d, const xds_mesh_authz *s)
{
    memset(d, 0, sizeof *d);
    strlist_copy(&d->trust_domain_aliases, &s->trust_domain_aliases);
    d->providers = xcalloc(s->nproviders ? s->nproviders : 1, sizeof *d->providers);
    d->nproviders = s->nproviders;
    for (size_t i = 0; i < s->nproviders; i++) {
        const xds_ext_authz_provider *p = &s->providers[i];
        xds_ext_authz_provider *q = &d->providers[i];
        *q = *p;
        q->name = dup_or_null(p->name);
        q->service = dup_or_null(p->service);
        q->status_on_error = dup_or_null(p->status_on_error);
        q->path_prefix = dup_or_null(p->path_prefix);
        strlist_copy(&q->include_request_headers_in_check, &p->include_request_headers_in_check);
        strlist_copy(&q->include_headers_in_check, &p->include_headers_in_check);
        strlist_copy(&q->headers_to_upstream_on_allow, &p->headers_to_upstream_on_allow);
        strlist_copy(&q->headers_to_downstream_on_deny, &p->headers_to_downstream_on_deny);
        strlist_copy(&q->headers_to_downstream_on_allow, &p->headers_to_downstream_on_allow);
        strlist_copy(&q->additional_header_keys, &p->additional_header_keys);
        strlist_copy(&q->additional_header_values, &p->additional_header_values);
    }
}
