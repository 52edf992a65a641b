/* test_requestauthentication: RequestAuthentication parsing and istiod's validation
 * (ValidateRequestAuthentication, validateJwtRule), one table of cases: an object (JSON
 * with single quotes), the expected return code, a substring of the error (exact when it
 * starts with '='), and an optional check of the parsed struct. Then the unsupported-field
 * walker and the warning for an empty selector. Every object is released (ASan's leak
 * checker covers the free paths, half-built objects included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/base/util.h"
#include "pilot/config/mesh.h"

#define RA_V(ver, spec)                                                                            \
    "{'apiVersion':'security.istio.io/" ver "','kind':'RequestAuthentication',"                    \
    "'metadata':{'name':'jwt','namespace':'foo'},'spec':" spec "}"
#define RA(spec) RA_V("v1", spec)
#define RULE(r) RA("{'jwtRules':[" r "]}")
#define ISS "'issuer':'https://example.com'"

static cJSON *parse_json(const char *sq)
{
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static void chk_full(const mesh_object *o)
{
    const mesh_request_authentication *ra = o->u.ra;
    assert_int_equal(o->kind, MESH_KIND_REQUEST_AUTHENTICATION);
    assert_string_equal(mesh_labels_get(&ra->selector, "app"), "httpbin");
    assert_int_equal(ra->njwt_rules, 2);
    const mesh_jwt_rule *r = &ra->jwt_rules[0];
    assert_string_equal(r->issuer, "https://example.com");
    assert_int_equal(r->audiences.n, 2);
    assert_string_equal(r->audiences.v[1], "b");
    assert_string_equal(r->jwks_uri, "https://example.com/.well-known/jwks.json");
    assert_null(r->jwks);
    assert_int_equal(r->nfrom_headers, 2);
    assert_string_equal(r->from_headers[0].name, "x-jwt");
    assert_string_equal(r->from_headers[0].prefix, "Bearer ");
    assert_null(r->from_headers[1].prefix);
    assert_int_equal(r->from_params.n, 1);
    assert_string_equal(r->from_params.v[0], "token");
    assert_int_equal(r->from_cookies.n, 1);
    assert_string_equal(r->output_payload_to_header, "x-payload");
    assert_true(r->forward_original_token);
    assert_int_equal(r->noutput_claim_to_headers, 1);
    assert_string_equal(r->output_claim_to_headers[0].header, "x-sub");
    assert_string_equal(r->output_claim_to_headers[0].claim, "sub");
    assert_int_equal(r->timeout_ns, 2500000000LL);
    const mesh_jwt_rule *r2 = &ra->jwt_rules[1];
    assert_string_equal(r2->issuer, "other");
    assert_non_null(r2->jwks);
    assert_null(r2->jwks_uri);
    assert_int_equal(r2->timeout_ns, -1);
    assert_false(r2->forward_original_token);
}

static void chk_target_refs(const mesh_object *o)
{
    const mesh_request_authentication *ra = o->u.ra;
    assert_int_equal(ra->ntarget_refs, 2);
    assert_string_equal(ra->target_refs[0].kind, "Gateway");
    assert_string_equal(ra->target_refs[1].kind, "Service");
    assert_int_equal(ra->selector.n, 0);
}

static void chk_v1beta1(const mesh_object *o)
{
    assert_int_equal(o->kind, MESH_KIND_REQUEST_AUTHENTICATION);
    assert_int_equal(o->u.ra->njwt_rules, 1);
    assert_null(o->u.ra->jwt_rules[0].jwks_uri); /* "" is unset */
}

typedef struct pcase {
    const char *name;
    const char *json;
    int rc;
    const char *err;
    void (*check)(const mesh_object *o);
} pcase;

static const pcase cases[] = {
    {"full",
     RA("{'selector':{'matchLabels':{'app':'httpbin'}},'jwtRules':[{" ISS ","
        "'audiences':['a','b'],'jwksUri':'https://example.com/.well-known/jwks.json',"
        "'fromHeaders':[{'name':'x-jwt','prefix':'Bearer '},{'name':'authorization'}],"
        "'fromParams':['token'],'fromCookies':['session'],"
        "'outputPayloadToHeader':'x-payload','forwardOriginalToken':true,"
        "'outputClaimToHeaders':[{'header':'x-sub','claim':'sub'}],'timeout':'2.5s'},"
        "{'issuer':'other','jwks':'{\\'keys\\':[{\\'kty\\':\\'RSA\\',\\'e\\':\\'AQAB\\',"
        "\\'n\\':\\'xyz\\'}]}'}]}"),
     0, NULL, chk_full},
    {"v1beta1 and empty jwksUri", RA_V("v1beta1", "{'jwtRules':[{" ISS ",'jwksUri':''}]}"), 0, NULL,
     chk_v1beta1},
    {"empty spec", RA("{}"), 0, NULL, NULL},
    {"jwksUri only (no issuer)", RULE("{'jwksUri':'http://jwks.example.com:8080/keys'}"), 0, NULL,
     NULL},
    {"jwks and jwksUri together",
     RULE("{" ISS ",'jwksUri':'https://e.com/k',"
          "'jwks':'{\\'kty\\':\\'oct\\',\\'k\\':\\'x\\'}'}"),
     0, NULL, NULL},
    {"ipv6 jwksUri", RULE("{" ISS ",'jwksUri':'https://[::1]:8443/k'}"), 0, NULL, NULL},
    {"targetRefs",
     RA("{'targetRefs':[{'group':'gateway.networking.k8s.io','kind':'Gateway',"
        "'name':'gw'},{'kind':'Service','name':'svc'}]}"),
     0, NULL, chk_target_refs},
    /* rejected, with istiod's reasons */
    {"no issuer no jwksUri", RULE("{'audiences':['a']}"), -1,
     "=RequestAuthentication foo/jwt: spec.jwtRules[0].issuer: issuer or jwksUri must be non-empty "
     "string",
     NULL},
    {"empty audience", RULE("{" ISS ",'audiences':['a','']}"), -1,
     "spec.jwtRules[0].audiences[1]: audience must be non-empty string", NULL},
    {"jwksUri scheme", RULE("{" ISS ",'jwksUri':'ftp://example.com/k'}"), -1,
     "spec.jwtRules[0].jwksUri: URI scheme \"ftp\" is not supported", NULL},
    {"jwksUri without scheme", RULE("{" ISS ",'jwksUri':'example.com/k'}"), -1,
     "URI scheme \"\" is not supported", NULL},
    {"jwksUri bad port", RULE("{" ISS ",'jwksUri':'http://example.com:abc/k'}"), -1,
     "spec.jwtRules[0].jwksUri: parse \"http://example.com:abc/k\": invalid port after host", NULL},
    {"jwks not json", RULE("{" ISS ",'jwks':'not json'}"), -1,
     "spec.jwtRules[0].jwks: jwks parse error:", NULL},
    {"jwks key without kty", RULE("{" ISS ",'jwks':'{\\'keys\\':[{\\'e\\':\\'AQAB\\'}]}'}"), -1,
     "jwks parse error: failed to parse key", NULL},
    {"fromHeaders empty name", RULE("{" ISS ",'fromHeaders':[{'prefix':'Bearer '}]}"), -1,
     "spec.jwtRules[0].fromHeaders[0].name: location header name must be non-empty string", NULL},
    {"fromHeaders null", RULE("{" ISS ",'fromHeaders':[null]}"), -1,
     "location header name must be non-null", NULL},
    {"fromParams empty", RULE("{" ISS ",'fromParams':['']}"), -1,
     "spec.jwtRules[0].fromParams[0]: location query must be non-empty string", NULL},
    {"fromCookies empty", RULE("{" ISS ",'fromCookies':['a','']}"), -1,
     "spec.jwtRules[0].fromCookies[1]: cookie name must be non-empty string", NULL},
    {"claim header missing claim", RULE("{" ISS ",'outputClaimToHeaders':[{'header':'x-a'}]}"), -1,
     "outputClaimToHeaders header and claim value must be non-empty string", NULL},
    {"claim header bad name",
     RULE("{" ISS ",'outputClaimToHeaders':[{'header':'x:a',"
          "'claim':'sub'}]}"),
     -1,
     "spec.jwtRules[0].outputClaimToHeaders[0].header: header name x:a is not a valid header name",
     NULL},
    {"timeout too small", RULE("{" ISS ",'timeout':'0.5ms'}"), -1,
     "spec.jwtRules[0].timeout: duration must be greater than 1ms", NULL},
    {"timeout precision", RULE("{" ISS ",'timeout':'1.0005s'}"), -1,
     "only durations to ms precision are supported", NULL},
    {"timeout not a duration", RULE("{" ISS ",'timeout':'soon'}"), -1, "invalid duration", NULL},
    {"selector and targetRef",
     RA("{'selector':{'matchLabels':{'app':'a'}},"
        "'targetRef':{'kind':'Gateway','group':"
        "'gateway.networking.k8s.io','name':'gw'}}"),
     -1,
     "=RequestAuthentication foo/jwt: spec: only one of targetRefs or workloadSelector can be set",
     NULL},
    {"selector wildcard", RA("{'selector':{'matchLabels':{'app':'a*'}}}"), -1,
     "wildcard is not supported in selector", NULL},
    {"targetRef no name",
     RA("{'targetRef':{'kind':'Gateway','group':'gateway.networking.k8s.io'}}"), -1,
     "spec.targetRef: targetRef name must be set", NULL},
    {"targetRef namespace", RA("{'targetRefs':[{'kind':'Service','name':'s','namespace':'bar'}]}"),
     -1, "spec.targetRefs[0]: targetRef namespace must not be set; cross namespace referencing",
     NULL},
    {"targetRef kind", RA("{'targetRef':{'kind':'Pod','name':'p'}}"), -1,
     "targetRef must be to one of [core/v1/Service networking.istio.io/v1/ServiceEntry "
     "gateway.networking.k8s.io/v1/Gateway gateway.networking.k8s.io/v1/GatewayClass] but was /Pod",
     NULL},
    {"jwtRules not a list", RA("{'jwtRules':{}}"), -1, "spec.jwtRules", NULL},
    {"rule not an object", RULE("'x'"), -1, "spec.jwtRules[0]: must be an object", NULL},
    {"issuer not a string", RULE("{'issuer':1}"), -1, "spec.jwtRules[0].issuer", NULL},
    /* a failure after earlier rules and lists were built: freed without leaks */
    {"half built",
     RA("{'targetRefs':[{'kind':'Service','name':'s'}],'jwtRules':[{" ISS ","
        "'audiences':['a'],'fromHeaders':[{'name':'h'}],"
        "'outputClaimToHeaders':[{'header':'x','claim':'c'}]},{" ISS ","
        "'fromHeaders':[{'name':'h'}],'timeout':'bad'}]}"),
     -1, "spec.jwtRules[1].timeout", NULL},
};

static void test_cases(void **state)
{
    (void)state;
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pcase *t = &cases[i];
        cJSON *j = parse_json(t->json);
        char err[512] = "untouched";
        mesh_object o = {0};
        if (!j)
            fail_msg("case %s: test JSON does not parse", t->name);
        int rc = mesh_parse(j, &opts, &o, err, sizeof err);
        if (rc != t->rc)
            fail_msg("case %s: rc %d, want %d (err: %s)", t->name, rc, t->rc, err);
        if (rc == -1) {
            if (t->err[0] == '=' ? strcmp(err, t->err + 1) != 0 : !strstr(err, t->err))
                fail_msg("case %s:\n  got  %s\n  want %s", t->name, err, t->err);
        }
        if (rc == 0 && t->check)
            t->check(&o);
        if (rc == 0)
            mesh_object_release(o);
        cJSON_Delete(j);
    }
}

static void test_unsupported(void **state)
{
    (void)state;
    cJSON *j = parse_json(RA("{'selector':{'matchLabels':{'app':'a'}},'jwtRules':[{" ISS ","
                             "'jwksUri':'https://e.com/k','spaceDelimitedClaims':['roles'],"
                             "'outputClaimToHeaders':[{'header':'x','claim':'c'}]}]}"));
    char **paths = NULL;
    size_t n = 0;
    mesh_unsupported_fields(j, &paths, &n);
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "spec.jwtRules[].spaceDelimitedClaims");
    util_strv_free(paths, n);
    cJSON_Delete(j);
}

static void test_warning(void **state)
{
    (void)state;
    mesh_warnings w = {0};
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit", .warnings = &w};
    cJSON *j = parse_json(RA("{'selector':{}}"));
    char err[256] = "";
    mesh_object o = {0};
    assert_int_equal(mesh_parse(j, &opts, &o, err, sizeof err), 0);
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(w.msg[0], "spec.selector: workload selector specified without labels"));
    mesh_object_release(o);
    mesh_warnings_free(&w);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
