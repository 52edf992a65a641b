/* gen_authn: RequestAuthentication -> Envoy jwt_authn, as istiod's policy applier builds it
 * (pilot/pkg/security/authn/policy_applier.go, convertToEnvoyJwtConfig, with the default
 * PILOT_JWT_ENABLE_REMOTE_JWKS=false: istiod fetches every jwksUri and inlines the keys).
 *
 * - The jwtRules of every RequestAuthentication that applies to the proxy's workload (its
 *   namespace, then the root namespace, each in (namespace, name) order), sorted by issuer
 *   (stable), become providers "origins-<i>" in that order.
 * - Each provider: issuer, audiences, forward, forward_payload_header, the token locations,
 *   claim_to_headers, payload_in_metadata "payload" with scope and permission normalized
 *   as space-delimited claims, and local_jwks inline: the rule's own jwks, else the key set
 *   the control plane fetched for its jwksUri (the snapshot's table), else istiod's
 *   public-only JWKS (a public key whose private half was discarded: a token fails to
 *   verify, a request without one still passes).
 * - One rule for every path: a token, if present, must be valid, a missing token passes
 *   (allow_missing); with several providers the OR of each provider alone and the AND of
 *   {provider OR allow_missing}, so providers sharing a location still pass. CORS
 *   preflights bypass the filter.
 * - Who may call is AuthorizationPolicy's: requestPrincipals and request.auth.* match the
 *   verified payload that this filter writes into its own dynamic metadata
 *   ("envoy.filters.http.jwt_authn" / "payload"), which is how current istiod does it (the
 *   old istio_authn filter is gone; real Envoy and its validator accept exactly this).
 *
 * Reads only the snapshot; never blocks. Proxyless gRPC has no JWT filter: nothing. */
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "pilot/model/snapshot.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication JwtAuthn;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider JwtProvider;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirement JwtReq;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirementOrList JwtOr;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirementAndList JwtAnd;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__RequirementRule JwtRule;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication__ProvidersEntry
    ProvidersEntry;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtHeader JwtHeader;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtClaimToHeader JwtClaimToHeader;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider__NormalizePayload
    NormalizePayload;

/* istiod's PublicOnlyJwks (pilot/pkg/model/jwks_resolver.go), byte for byte: what a proxy
 * gets while a jwksUri's keys are unknown. */
static const char gen_public_only_jwks[] =
    "{\n"
    "  \"keys\": [\n"
    "    {\n"
    "      \"kty\": \"RSA\",\n"
    "      \"e\": \"AQAB\",\n"
    "      \"n\": "
    "\"0xObjM0UvS_oaazjpEYlAbwctEJ4L8pH3OuTb7qth7gUwqet-EzQB4dgFdvSdMgrLnSncQGRjpEYz3F3viIbH-"
    "3EN3TxSlPNviHxeOdyiBVfumN8dMxbLvVJUpfNOnvmMxJcl-8NNjAwcOjk4otSALaYgYYyOPyvKtgVdrQr-"
    "FoubWX4yrjxW-MJ2-7OBeepUUNOsVwGV23YX03sVkkyvY3otRflkBcY3_HKpBxJl9wk2GyOShN4_PNUF9-"
    "vwfnvOXMbCDX-w4PTef4geeb_GiT40YCKHTKMSPVanGRn5GExIWmki-mmqh94-mPTJyBR74ShspL3BxPZitDL574T1w"
    "\"\n"
    "    }\n"
    "  ]\n"
    "}";

#define GEN_JWT_FILTER "envoy.filters.http.jwt_authn"
#define GEN_JWT_PAYLOAD "payload" /* istiod's EnvoyJwtFilterPayload */

/* The key set a provider inlines (istiod's BuildLocalJwks). */
static const char *rule_jwks(gen_ctx *c, const mesh_jwt_rule *r)
{
    if (r->jwks && *r->jwks)
        return r->jwks;
    const mesh_jwks_entry *e = mesh_jwks_table_find(c->s->jwks, r->jwks_uri);
    if (e && e->jwks)
        return e->jwks;
    return gen_public_only_jwks;
}

static JwtProvider *provider(gen_ctx *c, const mesh_jwt_rule *r)
{
    gen_arena *a = c->a;
    JwtProvider *p =
        GA_MSG(a, JwtProvider, envoy__extensions__filters__http__jwt_authn__v3__jwt_provider__init);
    p->issuer = ga_strdup(a, r->issuer);
    for (size_t i = 0; i < r->audiences.n; i++)
        GA_PUSH(a, p->audiences, p->n_audiences, ga_strdup(a, r->audiences.v[i]));
    p->forward = r->forward_original_token;
    if (r->output_payload_to_header)
        p->forward_payload_header = ga_strdup(a, r->output_payload_to_header);
    p->payload_in_metadata = ga_strdup(a, GEN_JWT_PAYLOAD);
    NormalizePayload *np = GA_MSG(
        a, NormalizePayload,
        envoy__extensions__filters__http__jwt_authn__v3__jwt_provider__normalize_payload__init);
    /* istiod's default space-delimited claims (spaceDelimitedClaims is not modelled) */
    GA_PUSH(a, np->space_delimited_claims, np->n_space_delimited_claims,
            ga_strdup(a, "permission"));
    GA_PUSH(a, np->space_delimited_claims, np->n_space_delimited_claims, ga_strdup(a, "scope"));
    p->normalize_payload_in_metadata = np;
    for (size_t i = 0; i < r->noutput_claim_to_headers; i++) {
        JwtClaimToHeader *h =
            GA_MSG(a, JwtClaimToHeader,
                   envoy__extensions__filters__http__jwt_authn__v3__jwt_claim_to_header__init);
        h->header_name = ga_strdup(a, r->output_claim_to_headers[i].header);
        h->claim_name = ga_strdup(a, r->output_claim_to_headers[i].claim);
        GA_PUSH(a, p->claim_to_headers, p->n_claim_to_headers, h);
    }
    for (size_t i = 0; i < r->nfrom_headers; i++) {
        JwtHeader *h =
            GA_MSG(a, JwtHeader, envoy__extensions__filters__http__jwt_authn__v3__jwt_header__init);
        h->name = ga_strdup(a, r->from_headers[i].name);
        if (r->from_headers[i].prefix)
            h->value_prefix = ga_strdup(a, r->from_headers[i].prefix);
        GA_PUSH(a, p->from_headers, p->n_from_headers, h);
    }
    for (size_t i = 0; i < r->from_params.n; i++)
        GA_PUSH(a, p->from_params, p->n_from_params, ga_strdup(a, r->from_params.v[i]));
    for (size_t i = 0; i < r->from_cookies.n; i++)
        GA_PUSH(a, p->from_cookies, p->n_from_cookies, ga_strdup(a, r->from_cookies.v[i]));
    /* as istiod: a gateway picks its route after authentication (claims may steer it) */
    p->clear_route_cache = c->gateway;
    Envoy__Config__Core__V3__DataSource *ds =
        GA_MSG(a, Envoy__Config__Core__V3__DataSource, envoy__config__core__v3__data_source__init);
    ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    ds->inline_string = ga_strdup(a, rule_jwks(c, r));
    p->jwks_source_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_PROVIDER__JWKS_SOURCE_SPECIFIER_LOCAL_JWKS;
    p->local_jwks = ds;
    return p;
}

static JwtReq *req_new(gen_ctx *c)
{
    return GA_MSG(c->a, JwtReq,
                  envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement__init);
}

static JwtReq *req_provider(gen_ctx *c, const char *name)
{
    JwtReq *r = req_new(c);
    r->requires_type_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_PROVIDER_NAME;
    r->provider_name = ga_strdup(c->a, name);
    return r;
}

static JwtReq *req_any(gen_ctx *c, JwtReq **v, size_t n)
{
    JwtOr *o =
        GA_MSG(c->a, JwtOr,
               envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement_or_list__init);
    o->requirements = v;
    o->n_requirements = n;
    JwtReq *r = req_new(c);
    r->requires_type_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ANY;
    r->requires_any = o;
    return r;
}

/* {provider OR allow_missing}: a token for this provider, if there is one, must verify. */
static JwtReq *req_provider_or_missing(gen_ctx *c, const char *name)
{
    JwtReq **v = ga_alloc(c->a, 2 * sizeof *v);
    v[0] = req_provider(c, name);
    v[1] = req_new(c);
    v[1]->requires_type_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_ALLOW_MISSING;
    v[1]->allow_missing = GA_MSG(c->a, Google__Protobuf__Empty, google__protobuf__empty__init);
    return req_any(c, v, 2);
}

/* Rules of the applicable policies, then a stable sort by issuer (istiod sorts by issuer;
 * a stable order keeps equal issuers in policy order, so the output is deterministic). */
static size_t collect_rules(gen_ctx *c, const mesh_jwt_rule ***out)
{
    const mesh_jwt_rule **v = NULL;
    size_t n = 0;
    const char *root = c->s->root_ns;
    /* the proxy's namespace first, then the root namespace, as istiod looks them up */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->s->nras; i++) {
            const mesh_request_authentication *ra = c->s->ras[i];
            bool in_root = root && ra->meta.ns && strcmp(ra->meta.ns, root) == 0;
            bool in_own = c->p->ns && ra->meta.ns && strcmp(ra->meta.ns, c->p->ns) == 0;
            if (pass == 0 ? !in_own : (!in_root || in_own))
                continue;
            if (!gen_policy_applies(c, &ra->meta, &ra->selector, ra->ntarget_refs))
                continue;
            for (size_t k = 0; k < ra->njwt_rules; k++)
                GA_PUSH(c->a, v, n, (const mesh_jwt_rule *)&ra->jwt_rules[k]);
        }
    }
    for (size_t i = 1; i < n; i++) {
        const mesh_jwt_rule *x = v[i];
        size_t j = i;
        while (j > 0 &&
               strcmp(v[j - 1]->issuer ? v[j - 1]->issuer : "", x->issuer ? x->issuer : "") > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    *out = v;
    return n;
}

void gen_authn_http_filters(gen_ctx *c, gen_hfilter ***f, size_t *n)
{
    if (c->grpc || !c->s)
        return;
    const mesh_jwt_rule **rules;
    size_t nrules = collect_rules(c, &rules);
    if (!nrules)
        return;

    gen_arena *a = c->a;
    JwtAuthn *ja = GA_MSG(
        a, JwtAuthn, envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__init);
    JwtReq **inner_and = ga_alloc(a, nrules * sizeof *inner_and);
    JwtReq **outer_or = ga_alloc(a, (nrules + 1) * sizeof *outer_or);
    for (size_t i = 0; i < nrules; i++) {
        char *name = ga_printf(a, "origins-%zu", i);
        ProvidersEntry *e = GA_MSG(
            a, ProvidersEntry,
            envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__providers_entry__init);
        e->key = name;
        e->value = provider(c, rules[i]);
        GA_PUSH(a, ja->providers, ja->n_providers, e);
        inner_and[i] = req_provider_or_missing(c, name);
        outer_or[i] = req_provider(c, name);
    }

    JwtReq *top;
    if (nrules == 1) {
        top = inner_and[0];
    } else {
        /* OR{P1, P2, ..., AND{OR{P1, allow_missing}, OR{P2, allow_missing}, ...}} */
        JwtAnd *all =
            GA_MSG(a, JwtAnd,
                   envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement_and_list__init);
        all->requirements = inner_and;
        all->n_requirements = nrules;
        JwtReq *and_req = req_new(c);
        and_req->requires_type_case =
            ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ALL;
        and_req->requires_all = all;
        outer_or[nrules] = and_req;
        top = req_any(c, outer_or, nrules + 1);
    }

    JwtRule *rule =
        GA_MSG(a, JwtRule, envoy__extensions__filters__http__jwt_authn__v3__requirement_rule__init);
    rule->match = GA_MSG(a, Envoy__Config__Route__V3__RouteMatch,
                         envoy__config__route__v3__route_match__init);
    rule->match->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    rule->match->prefix = ga_strdup(a, "/");
    rule->requirement_type_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__REQUIREMENT_RULE__REQUIREMENT_TYPE_REQUIRES;
    rule->requires = top;
    GA_PUSH(a, ja->rules, ja->n_rules, rule);
    ja->bypass_cors_preflight = true;

    GA_PUSH(a, *f, *n, gen_http_filter_new(c, GEN_JWT_FILTER, &ja->base));
}
