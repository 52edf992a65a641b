/* test_secret: core/v1 Secrets as gateway credentials (pilot/mesh_parse_k8s.c).
 *
 * One table: a Secret (JSON with single quotes), the expected return code, a substring
 * the error must contain, what must NOT appear in the error (key material), and the
 * decoded cert / key / CA bytes expected (NULL = absent). Istio's credentials controller
 * is the reference: "cert"/"key" beat "tls.crt"/"tls.key", "cacert" beats "ca.crt",
 * empty values count as absent, service-account tokens and Helm releases are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/config/mesh.h"

#define SECRET(type, rest)                                                                         \
    "{'apiVersion':'v1','kind':'Secret','metadata':{'name':'cred','namespace':'istio-system',"     \
    "'annotations':{'kubectl.kubernetes.io/last-applied-configuration':'{tls.key: "                \
    "S0VZLVBFTQ==}'}},"                                                                            \
    "'type':'" type "'" rest "}"

/* base64 of "CERT-PEM", "KEY-PEM", "CA-PEM", "GCERT", "GKEY", "GCA" */
#define B_CERT "Q0VSVC1QRU0="
#define B_KEY "S0VZLVBFTQ=="
#define B_CA "Q0EtUEVN"
#define B_GC "R0NFUlQ="
#define B_GK "R0tFWQ=="
#define B_GA "R0NB"

typedef struct secret_case {
    const char *name;
    const char *json;
    int rc;
    const char *err_has;
    const char *err_lacks;
    const char *cert, *key, *ca;
} secret_case;

static const secret_case cases[] = {
    {"tls type",
     SECRET("kubernetes.io/tls",
            ",'data':{'tls.crt':'" B_CERT "','tls.key':'" B_KEY "','ca.crt':'" B_CA "'}"),
     0, NULL, NULL, "CERT-PEM", "KEY-PEM", "CA-PEM"},
    {"generic keys",
     SECRET("Opaque", ",'data':{'cert':'" B_GC "','key':'" B_GK "','cacert':'" B_GA "'}"), 0, NULL,
     NULL, "GCERT", "GKEY", "GCA"},
    {"generic pair wins, cacert wins",
     SECRET("Opaque", ",'data':{'tls.crt':'" B_CERT "','tls.key':'" B_KEY "','cert':'" B_GC
                      "','key':'" B_GK "','ca.crt':'" B_CA "','cacert':'" B_GA "'}"),
     0, NULL, NULL, "GCERT", "GKEY", "GCA"},
    {"incomplete generic pair falls back to tls",
     SECRET("Opaque", ",'data':{'cert':'" B_GC "','tls.crt':'" B_CERT "','tls.key':'" B_KEY "'}"),
     0, NULL, NULL, "CERT-PEM", "KEY-PEM", NULL},
    {"cert without key: no pair", SECRET("kubernetes.io/tls", ",'data':{'tls.crt':'" B_CERT "'}"),
     0, NULL, NULL, NULL, NULL, NULL},
    {"CA only (MUTUAL -cacert secret)", SECRET("Opaque", ",'data':{'ca.crt':'" B_CA "'}"), 0, NULL,
     NULL, NULL, NULL, "CA-PEM"},
    {"empty values are absent",
     SECRET("kubernetes.io/tls", ",'data':{'tls.crt':'','tls.key':'" B_KEY "','ca.crt':''}"), 0,
     NULL, NULL, NULL, NULL, NULL},
    {"stringData overrides data",
     SECRET("Opaque",
            ",'data':{'cert':'" B_GC "','key':'" B_GK "'},'stringData':{'key':'PLAIN-KEY'}"),
     0, NULL, NULL, "GCERT", "PLAIN-KEY", NULL},
    {"base64 folded over lines",
     SECRET("kubernetes.io/tls",
            ",'data':{'tls.crt':'Q0VS\\nVC1Q\\nRU0=','tls.key':'S0VZ LVBF TQ=='}"),
     0, NULL, NULL, "CERT-PEM", "KEY-PEM", NULL},
    {"unpadded base64",
     SECRET("kubernetes.io/tls", ",'data':{'tls.crt':'Q0VSVC1QRU0','tls.key':'S0VZLVBFTQ'}"), 0,
     NULL, NULL, "CERT-PEM", "KEY-PEM", NULL},
    {"no data at all", SECRET("Opaque", ""), 0, NULL, NULL, NULL, NULL, NULL},
    {"invalid base64 names the key, not the value",
     SECRET("kubernetes.io/tls", ",'data':{'tls.crt':'" B_CERT "','tls.key':'c2VjcmV0!!'}"), -1,
     "Secret istio-system/cred: data.tls.key: invalid base64", "c2VjcmV0", NULL, NULL, NULL},
    {"a lone trailing base64 character",
     SECRET("kubernetes.io/tls", ",'data':{'tls.key':'S0VZLVBFTQ==Q'}"), -1,
     "data.tls.key: invalid base64", NULL, NULL, NULL, NULL},
    {"one dangling character", SECRET("Opaque", ",'data':{'cacert':'R0NBQ'}"), -1,
     "data.cacert: invalid base64", NULL, NULL, NULL, NULL},
    {"non-string value", SECRET("Opaque", ",'data':{'key':42}"), -1, "data.key: must be a string",
     NULL, NULL, NULL, NULL},
    {"data not an object", SECRET("Opaque", ",'data':['x']"), -1, "data", NULL, NULL, NULL, NULL},
    {"service-account tokens are skipped",
     SECRET("kubernetes.io/service-account-token", ",'data':{'token':'" B_KEY "'}"), -2, NULL, NULL,
     NULL, NULL, NULL},
    {"helm releases are skipped", SECRET("helm.sh/release.v1", ",'data':{'release':'eA=='}"), -2,
     NULL, NULL, NULL, NULL, NULL},
};

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

static void check_bytes(const char *what, const char *want, const uint8_t *got, size_t n)
{
    if (!want) {
        if (got)
            fail_msg("%s: expected absent, got %zu bytes", what, n);
        assert_int_equal(n, 0);
        return;
    }
    if (!got)
        fail_msg("%s: expected \"%s\", got nothing", what, want);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
}

static void test_secret_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const secret_case *tc = &cases[i];
        cJSON *j = parse_json(tc->json);
        if (!j)
            fail_msg("case %s: fixture JSON does not parse", tc->name);
        mesh_parse_opts opts = {.domain = "cluster.local", .source = "test"};
        mesh_object o = {0};
        char err[512];
        int rc = mesh_parse(j, &opts, &o, err, sizeof err);
        if (rc != tc->rc)
            fail_msg("case %s: rc %d, want %d (err \"%s\")", tc->name, rc, tc->rc, err);
        if (tc->err_has && !strstr(err, tc->err_has))
            fail_msg("case %s: error \"%s\" lacks \"%s\"", tc->name, err, tc->err_has);
        if (tc->err_lacks && strstr(err, tc->err_lacks))
            fail_msg("case %s: error \"%s\" shows secret data", tc->name, err);
        if (rc == -2)
            assert_string_equal(err, "");
        if (rc == 0) {
            assert_int_equal(o.kind, MESH_KIND_SECRET);
            const mesh_secret *s = o.u.secret;
            assert_string_equal(s->meta.name, "cred");
            assert_string_equal(s->meta.ns, "istio-system");
            /* the last-applied annotation repeats the data: it must not be kept */
            assert_int_equal(s->meta.annotations.n, 0);
            check_bytes(tc->name, tc->cert, s->cert, s->cert_len);
            check_bytes(tc->name, tc->key, s->key, s->key_len);
            check_bytes(tc->name, tc->ca, s->ca_cert, s->ca_cert_len);
            mesh_object_release(o);
        }
        cJSON_Delete(j);
    }
}

static void test_secret_kind(void **state)
{
    (void)state;
    cJSON *j = parse_json("{'apiVersion':'v1','kind':'Secret','metadata':{'name':'x'}}");
    assert_int_equal(mesh_kind_of(j), MESH_KIND_SECRET);
    assert_string_equal(mesh_kind_name(MESH_KIND_SECRET), "Secret");
    assert_string_equal(mesh_kind_api_version(MESH_KIND_SECRET), "v1");
    mesh_object o = {0};
    char err[256];
    /* no type: Opaque, default namespace */
    assert_int_equal(mesh_parse(j, NULL, &o, err, sizeof err), 0);
    assert_string_equal(o.u.secret->type, "Opaque");
    assert_string_equal(o.u.secret->meta.ns, "default");
    mesh_object_release(o);
    cJSON_Delete(j);
    /* a foreign apiVersion is not ours */
    j = parse_json("{'apiVersion':'example.com/v1','kind':'Secret','metadata':{'name':'x'}}");
    assert_int_equal(mesh_kind_of(j), MESH_KIND_UNKNOWN);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_table),
        cmocka_unit_test(test_secret_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
