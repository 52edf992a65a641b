/* test_gen_authn: RequestAuthentication -> envoy.filters.http.jwt_authn (xds/gen/authn.c),
 * called directly on snapshots built from YAML and decoded back with protobuf-c:
 * providers "origins-<i>" sorted by issuer, their fields, the keys inlined (the rule's
 * jwks, the snapshot's fetched table, else istiod's public-only JWKS), the requirement
 * rule for one and for several providers, selection by namespace and labels, and nothing
 * for proxyless gRPC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "gen_fixture.h"
#include "pilot/base/util.h"
#include "pilot/model/snapshot.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication JwtAuthn;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider JwtProvider;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirement JwtReq;

#define RA_HEAD(ns, name)                                                                          \
    "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: " name      \
    "\n  namespace: " ns "\n"

static const char *yaml = RA_HEAD(
    "foo",
    "zeta") "spec:\n"
            "  selector:\n    matchLabels:\n      app: httpbin\n"
            "  jwtRules:\n"
            "  - issuer: https://b.example.com\n"
            "    audiences: [aud1, aud2]\n"
            "    jwksUri: https://b.example.com/jwks\n"
            "    fromHeaders:\n    - name: x-jwt\n      prefix: 'Bearer '\n"
            "    fromParams: [token]\n"
            "    fromCookies: [session]\n"
            "    forwardOriginalToken: true\n"
            "    outputPayloadToHeader: x-payload\n"
            "    outputClaimToHeaders:\n    - header: x-sub\n      claim: sub\n"
            "---\n" RA_HEAD(
                "istio-system",
                "mesh") "spec:\n"
                        "  jwtRules:\n"
                        "  - issuer: https://a.example.com\n"
                        "    jwks: '{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"abc\"}]}'\n"
                        "---\n" RA_HEAD("bar", "other") "spec:\n"
                                                        "  jwtRules:\n"
                                                        "  - issuer: https://c.example.com\n"
                                                        "    jwksUri: https://c.example.com/jwks\n";

static mesh_snapshot *snap;

static int setup(void **state)
{
    (void)state;
    snap = fx_snapshot(yaml, NULL);
    return snap && snap->nras == 3 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mesh_snapshot_release(snap);
    return 0;
}

/* Runs the builder for a proxy in ns with labels; returns the decoded filter config or
 * NULL when no filter was added. */
static JwtAuthn *build(const char *ns, const char *labels, bool grpc)
{
    gen_arena a = {0};
    gen_view v = {.ns = ns};
    if (labels) {
        const char *eq = strchr(labels, '=');
        char *k = xstrndup(labels, (size_t)(eq - labels));
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, k, eq + 1);
        assert_int_equal(mesh_labels_from_json(o, &v.labels), 0);
        cJSON_Delete(o);
        free(k);
    }
    gen_ctx c = {.a = &a, .p = &v, .s = snap, .grpc = grpc};
    gen_hfilter **f = NULL;
    size_t n = 0;
    gen_authn_http_filters(&c, &f, &n);
    JwtAuthn *ja = NULL;
    if (n) {
        assert_int_equal(n, 1);
        assert_string_equal(f[0]->name, "envoy.filters.http.jwt_authn");
        ja = fx_unpack_any(
            f[0]->typed_config,
            &envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__descriptor);
        assert_non_null(ja);
    }
    mesh_labels_free(&v.labels);
    gen_arena_free(&a);
    return ja;
}

static const JwtProvider *provider(const JwtAuthn *ja, const char *name)
{
    for (size_t i = 0; i < ja->n_providers; i++)
        if (strcmp(ja->providers[i]->key, name) == 0)
            return ja->providers[i]->value;
    fail_msg("provider %s missing", name);
    return NULL;
}

static const char *inline_jwks(const JwtProvider *p)
{
    assert_int_equal(
        p->jwks_source_specifier_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_PROVIDER__JWKS_SOURCE_SPECIFIER_LOCAL_JWKS);
    assert_int_equal(p->local_jwks->specifier_case,
                     ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING);
    return p->local_jwks->inline_string;
}

/* {provider OR allow_missing} */
static void check_or_missing(const JwtReq *r, const char *name)
{
    assert_int_equal(
        r->requires_type_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ANY);
    assert_int_equal(r->requires_any->n_requirements, 2);
    assert_string_equal(r->requires_any->requirements[0]->provider_name, name);
    assert_int_equal(
        r->requires_any->requirements[1]->requires_type_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_ALLOW_MISSING);
}

static void test_two_providers(void **state)
{
    (void)state;
    JwtAuthn *ja = build("foo", "app=httpbin", false);
    assert_non_null(ja);
    assert_true(ja->bypass_cors_preflight);
    assert_int_equal(ja->n_providers, 2);
    /* sorted by issuer: the mesh-wide a.example.com first */
    const JwtProvider *p0 = provider(ja, "origins-0"), *p1 = provider(ja, "origins-1");
    assert_string_equal(p0->issuer, "https://a.example.com");
    assert_string_equal(inline_jwks(p0),
                        "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"abc\"}]}");
    assert_string_equal(p1->issuer, "https://b.example.com");
    assert_int_equal(p1->n_audiences, 2);
    assert_string_equal(p1->audiences[1], "aud2");
    assert_true(p1->forward);
    assert_string_equal(p1->forward_payload_header, "x-payload");
    assert_string_equal(p1->payload_in_metadata, "payload");
    assert_int_equal(p1->normalize_payload_in_metadata->n_space_delimited_claims, 2);
    assert_string_equal(p1->normalize_payload_in_metadata->space_delimited_claims[0], "permission");
    assert_string_equal(p1->normalize_payload_in_metadata->space_delimited_claims[1], "scope");
    assert_int_equal(p1->n_from_headers, 1);
    assert_string_equal(p1->from_headers[0]->name, "x-jwt");
    assert_string_equal(p1->from_headers[0]->value_prefix, "Bearer ");
    assert_string_equal(p1->from_params[0], "token");
    assert_string_equal(p1->from_cookies[0], "session");
    assert_int_equal(p1->n_claim_to_headers, 1);
    assert_string_equal(p1->claim_to_headers[0]->header_name, "x-sub");
    assert_string_equal(p1->claim_to_headers[0]->claim_name, "sub");
    assert_false(p1->clear_route_cache);
    /* not fetched (no table): istiod's public-only key, so tokens fail to verify */
    assert_non_null(strstr(inline_jwks(p1), "\"n\": \"0xObjM0UvS_oaazjpEYlAbwctEJ4L8pH3OuTb7"));

    /* OR{origins-0, origins-1, AND{OR{origins-0, missing}, OR{origins-1, missing}}} */
    assert_int_equal(ja->n_rules, 1);
    assert_string_equal(ja->rules[0]->match->prefix, "/");
    const JwtReq *top = ja->rules[0]->requires;
    assert_int_equal(
        top->requires_type_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ANY);
    assert_int_equal(top->requires_any->n_requirements, 3);
    assert_string_equal(top->requires_any->requirements[0]->provider_name, "origins-0");
    assert_string_equal(top->requires_any->requirements[1]->provider_name, "origins-1");
    const JwtReq *all = top->requires_any->requirements[2];
    assert_int_equal(
        all->requires_type_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ALL);
    assert_int_equal(all->requires_all->n_requirements, 2);
    check_or_missing(all->requires_all->requirements[0], "origins-0");
    check_or_missing(all->requires_all->requirements[1], "origins-1");
    protobuf_c_message_free_unpacked(&ja->base, NULL);
}

static void test_one_provider(void **state)
{
    (void)state;
    /* labels do not match foo/zeta: only the mesh-wide rule */
    JwtAuthn *ja = build("foo", "app=other", false);
    assert_non_null(ja);
    assert_int_equal(ja->n_providers, 1);
    assert_string_equal(provider(ja, "origins-0")->issuer, "https://a.example.com");
    check_or_missing(ja->rules[0]->requires, "origins-0");
    protobuf_c_message_free_unpacked(&ja->base, NULL);
}

static void test_fetched_table(void **state)
{
    (void)state;
    /* the fetcher's table: c.example.com known, b.example.com not */
    mesh_jwks_table *t = mesh_jwks_table_new(2);
    t->v[0].uri = xstrdup("https://c.example.com/jwks");
    t->v[0].jwks = xstrdup("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"c1\"}]}");
    t->v[1].uri = xstrdup("https://a.example.com/unused");
    t->v[1].jwks = xstrdup("{\"keys\":[]}");
    mesh_jwks_table_sort(t);
    assert_non_null(mesh_jwks_table_find(t, "https://c.example.com/jwks"));
    assert_null(mesh_jwks_table_find(t, "https://b.example.com/jwks"));
    snap->jwks = t; /* the snapshot releases it */

    JwtAuthn *ja = build("bar", NULL, false);
    assert_non_null(ja);
    assert_int_equal(ja->n_providers, 2);
    const JwtProvider *c = provider(ja, "origins-1");
    assert_string_equal(c->issuer, "https://c.example.com");
    assert_string_equal(inline_jwks(c), "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"c1\"}]}");
    protobuf_c_message_free_unpacked(&ja->base, NULL);

    ja = build("foo", "app=httpbin", false);
    assert_non_null(strstr(inline_jwks(provider(ja, "origins-1")), "0xObjM0UvS"));
    protobuf_c_message_free_unpacked(&ja->base, NULL);
}

static void test_none(void **state)
{
    (void)state;
    /* proxyless gRPC has no JWT filter */
    assert_null(build("foo", "app=httpbin", true));
    /* a snapshot without RequestAuthentications in reach */
    mesh_snapshot *saved = snap;
    snap = fx_snapshot("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: baz\n", NULL);
    assert_null(build("baz", NULL, false));
    mesh_snapshot_release(snap);
    snap = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_providers),
        cmocka_unit_test(test_one_provider),
        cmocka_unit_test(test_fetched_table),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
