/* Unit tests of the k8s module's pure parts: kubeconfig parsing (table-driven), watch
 * stream line splitting across every chunk boundary, backoff, and the key set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "k8s/k8s_internal.h"

/* ---- kubeconfig ----------------------------------------------------------------------- */

static char tmpdir[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define CLUSTERS(srv, extra) "clusters:\n- name: c1\n  cluster:\n    server: " srv "\n" extra
#define CTX(ctxextra)                                                                              \
    "contexts:\n- name: x\n  context:\n    cluster: c1\n    user: u1\n" ctxextra                   \
    "- name: other\n  context:\n    cluster: c2\n    user: u2\n"

typedef struct kc_case {
    const char *name;
    const char *yaml;
    const char *context;
    int rc;
    const char *err_has; /* substring of the error */
    const char *server;
    const char *ca; /* expected CA bytes */
    const char *token;
    const char *token_file_suffix;
    const char *cert, *key;
    const char *ns;
    bool insecure;
} kc_case;

static const kc_case kc_cases[] = {
    {"token and CA data",
     "apiVersion: v1\nkind: Config\ncurrent-context: x\n" CLUSTERS(
         "https://10.0.0.1:6443/", "    certificate-authority-data: Q0EtUEVN\n")
         CTX("    namespace: istio-system\n") "users:\n- name: u1\n  user:\n    token: abc.def\n",
     NULL, 0, NULL, "https://10.0.0.1:6443", "CA-PEM", "abc.def", NULL, NULL, NULL, "istio-system",
     false},
    {"CA file relative to the kubeconfig, tokenFile",
     "current-context: x\n" CLUSTERS("https://h:443", "    certificate-authority: ca.pem\n")
         CTX("") "users:\n- name: u1\n  user:\n    tokenFile: tok\n",
     NULL, 0, NULL, "https://h:443", "FILE-CA\n", NULL, "/tok", NULL, NULL, "default", false},
    {"client cert data, plain http, insecure flag",
     "current-context: x\n" CLUSTERS("http://127.0.0.1:8080",
                                     "    insecure-skip-tls-verify: true\n")
         CTX("") "users:\n- name: u1\n  user:\n    client-certificate-data: Q0VSVA==\n"
                 "    client-key-data: S0VZMQ==\n",
     NULL, 0, NULL, "http://127.0.0.1:8080", NULL, NULL, NULL, "CERT", "KEY1", "default", true},
    {"client cert files",
     "current-context: x\n" CLUSTERS("https://h", "")
         CTX("") "users:\n- name: u1\n  user:\n    client-certificate: cert.pem\n    client-key: "
                 "key.pem\n",
     NULL, 0, NULL, "https://h", NULL, NULL, NULL, "FILE-CERT\n", "FILE-KEY\n", "default", false},
    {"data wins over file",
     "current-context: x\n" CLUSTERS("https://h", "    certificate-authority-data: REFUQQ==\n"
                                                  "    certificate-authority: /nonexistent\n")
         CTX("") "users:\n- name: u1\n  user: {token: t}\n",
     NULL, 0, NULL, "https://h", "DATA", "t", NULL, NULL, NULL, "default", false},
    {"explicit context overrides current-context",
     "current-context: x\n" CLUSTERS("https://h", "") "- name: c2\n  cluster:\n    server: "
                                                      "https://second:6443\n" CTX(
                                                          "") "users:\n- name: u1\n  user: {token: "
                                                              "t}\n- name: u2\n  user: {token: "
                                                              "t2}\n",
     "other", 0, NULL, "https://second:6443", NULL, "t2", NULL, NULL, NULL, "default", false},
    {"no current-context", CLUSTERS("https://h", "") CTX(""), NULL, K8S_EINVAL, "current-context",
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"context missing", "current-context: nope\n" CLUSTERS("https://h", "") CTX(""), NULL,
     K8S_EINVAL, "context \"nope\" not found", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"cluster missing", "current-context: other\n" CLUSTERS("https://h", "") CTX(""), NULL,
     K8S_EINVAL, "cluster \"c2\" not found", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"bad scheme", "current-context: x\n" CLUSTERS("ftp://h", "") CTX(""), NULL, K8S_EINVAL,
     "must start with https:// or http://", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"no server", "current-context: x\nclusters:\n- name: c1\n  cluster: {}\n" CTX(""), NULL,
     K8S_EINVAL, "server is not set", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"bad base64",
     "current-context: x\n" CLUSTERS("https://h", "    certificate-authority-data: '@@@'\n")
         CTX(""),
     NULL, K8S_EINVAL, "not valid base64", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"CA file missing",
     "current-context: x\n" CLUSTERS("https://h", "    certificate-authority: missing.pem\n")
         CTX(""),
     NULL, K8S_EINVAL, "missing.pem", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"exec plugin refused",
     "current-context: x\n" CLUSTERS("https://h", "")
         CTX("") "users:\n- name: u1\n  user:\n    exec: {command: aws}\n",
     NULL, K8S_EINVAL, "not supported", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"cert without key",
     "current-context: x\n" CLUSTERS("https://h", "")
         CTX("") "users:\n- name: u1\n  user:\n    client-certificate-data: Q0VSVA==\n",
     NULL, K8S_EINVAL, "given together", NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"not YAML", "current-context: [x\n", NULL, K8S_EINVAL, "kubeconfig: line", NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, false},
    {"not a mapping", "- a\n- b\n", NULL, K8S_EINVAL, "not a mapping", NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, false},
};

static void check_blob(const char *want, const char *have, size_t len)
{
    if (want == NULL) {
        assert_null(have);
        return;
    }
    assert_non_null(have);
    assert_int_equal(strlen(want), len);
    assert_memory_equal(want, have, len);
}

static void test_kubeconfig_table(void **state)
{
    (void)state;
    write_file("ca.pem", "FILE-CA\n");
    write_file("cert.pem", "FILE-CERT\n");
    write_file("key.pem", "FILE-KEY\n");
    for (size_t i = 0; i < sizeof(kc_cases) / sizeof(kc_cases[0]); i++) {
        const kc_case *tc = &kc_cases[i];
        k8s_conn c;
        char err[512] = "";
        print_message("case: %s\n", tc->name);
        int rc = k8s_kubeconfig_parse(tc->yaml, strlen(tc->yaml), tmpdir, tc->context, &c, err,
                                      sizeof(err));
        assert_int_equal(rc, tc->rc);
        if (rc != 0) {
            assert_non_null(strstr(err, tc->err_has));
            continue;
        }
        assert_string_equal(c.server, tc->server);
        check_blob(tc->ca, c.ca_pem, c.ca_len);
        check_blob(tc->cert, c.cert_pem, c.cert_len);
        check_blob(tc->key, c.key_pem, c.key_len);
        if (tc->token)
            assert_string_equal(c.token, tc->token);
        else
            assert_null(c.token);
        if (tc->token_file_suffix) {
            assert_non_null(c.token_file);
            assert_true(util_has_suffix(c.token_file, tc->token_file_suffix));
            assert_true(util_has_prefix(c.token_file, tmpdir));
        } else {
            assert_null(c.token_file);
        }
        assert_string_equal(c.namespace, tc->ns);
        assert_int_equal(c.insecure, tc->insecure);
        k8s_conn_free(&c);
    }
}

static void test_kubeconfig_load_file(void **state)
{
    (void)state;
    char p[512], err[256];
    k8s_conn c;
    write_file("kc.yaml",
               "current-context: x\n" CLUSTERS("https://h", "    certificate-authority: ca.pem\n")
                   CTX("") "users:\n- name: u1\n  user: {token: t}\n");
    write_file("ca.pem", "FILE-CA\n");
    snprintf(p, sizeof(p), "%s/kc.yaml", tmpdir);
    assert_int_equal(k8s_kubeconfig_load(p, NULL, &c, err, sizeof(err)), 0);
    check_blob("FILE-CA\n", c.ca_pem, c.ca_len);
    k8s_conn_free(&c);
    assert_int_equal(k8s_kubeconfig_load("/nonexistent/kc", NULL, &c, err, sizeof(err)),
                     K8S_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/kc"));
}

static void test_incluster(void **state)
{
    (void)state;
    char err[256];
    k8s_conn c;

    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(k8s_incluster_load(tmpdir, &c, err, sizeof(err)), K8S_EINVAL);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    write_file("ca.crt", "SA-CA\n");
    write_file("namespace", "istio-system\n");
    write_file("token", "tok\n");
    assert_int_equal(k8s_incluster_load(tmpdir, &c, err, sizeof(err)), 0);
    assert_string_equal(c.server, "https://10.96.0.1:443");
    check_blob("SA-CA\n", c.ca_pem, c.ca_len);
    assert_string_equal(c.namespace, "istio-system");
    assert_true(util_has_suffix(c.token_file, "/token"));
    k8s_conn_free(&c);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(k8s_incluster_load(tmpdir, &c, err, sizeof(err)), 0);
    assert_string_equal(c.server, "https://[fd00::1]:443");
    k8s_conn_free(&c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

/* ---- lines ---------------------------------------------------------------------------- */

typedef struct lines {
    char got[16][128];
    int n;
    int stop_at; /* return 7 from the callback at this line index, -1 never */
} lines;

static int collect_line(void *ud, const char *line, size_t len)
{
    lines *l = ud;
    assert_true(l->n < 16);
    assert_true(len < 128);
    memcpy(l->got[l->n], line, len);
    l->got[l->n][len] = '\0';
    return l->n++ == l->stop_at ? 7 : 0;
}

static void test_lines_every_split(void **state)
{
    (void)state;
    /* CRLF, an empty line, multi-byte UTF-8 and a line longer than some chunks. */
    static const char stream[] =
        "{\"type\":\"ADDED\",\"object\":{\"a\":1}}\n"
        "{\"type\":\"MODIFIED\",\"object\":{\"é\":\"ü\"}}\r\n"
        "\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n"
        "tail-without-newline";
    static const char *want[] = {
        "{\"type\":\"ADDED\",\"object\":{\"a\":1}}",
        "{\"type\":\"MODIFIED\",\"object\":{\"é\":\"ü\"}}",
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}",
    };
    size_t n = strlen(stream);

    /* Two splits at every pair of positions: every chunking into three pieces. */
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 7) {
            k8s_linebuf lb;
            lines l = {.stop_at = -1};
            k8s_linebuf_init(&lb, 1024);
            assert_int_equal(k8s_linebuf_feed(&lb, stream, a, collect_line, &l), 0);
            assert_int_equal(k8s_linebuf_feed(&lb, stream + a, b - a, collect_line, &l), 0);
            assert_int_equal(k8s_linebuf_feed(&lb, stream + b, n - b, collect_line, &l), 0);
            assert_int_equal(l.n, 3);
            for (int i = 0; i < 3; i++)
                assert_string_equal(l.got[i], want[i]);
            /* The unfinished tail is kept for the next chunk. */
            assert_int_equal(lb.partial.len, strlen("tail-without-newline"));
            k8s_linebuf_free(&lb);
        }
    }
    /* Byte by byte. */
    k8s_linebuf lb;
    lines l = {.stop_at = -1};
    k8s_linebuf_init(&lb, 1024);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(k8s_linebuf_feed(&lb, stream + i, 1, collect_line, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.got[1], want[1]);
    k8s_linebuf_free(&lb);
}

static void test_lines_limits(void **state)
{
    (void)state;
    k8s_linebuf lb;
    lines l = {.stop_at = -1};
    char big[100];

    memset(big, 'x', sizeof(big));
    k8s_linebuf_init(&lb, 64);
    /* A line over the maximum, whether it arrives whole or in pieces, is an error. */
    assert_int_equal(k8s_linebuf_feed(&lb, big, 50, collect_line, &l), 0);
    assert_int_equal(k8s_linebuf_feed(&lb, big, 50, collect_line, &l), -1);
    assert_int_equal(lb.partial.len, 0);
    char whole[80];
    memset(whole, 'y', 70);
    whole[70] = '\n';
    assert_int_equal(k8s_linebuf_feed(&lb, whole, 71, collect_line, &l), -1);
    assert_int_equal(l.n, 0);
    /* After an error a fresh stream works. */
    assert_int_equal(k8s_linebuf_feed(&lb, "ok\n", 3, collect_line, &l), 0);
    assert_int_equal(l.n, 1);
    /* The callback's non-zero value stops feeding and is returned. */
    lines s = {.stop_at = 1};
    assert_int_equal(k8s_linebuf_feed(&lb, "a\nb\nc\n", 6, collect_line, &s), 7);
    assert_int_equal(s.n, 2);
    k8s_linebuf_free(&lb);
}

/* ---- backoff -------------------------------------------------------------------------- */

static void test_backoff(void **state)
{
    (void)state;
    static const int64_t bases[] = {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000};
    k8s_backoff b;
    bool varied = false;
    int64_t first = -1;

    for (uint64_t seed = 1; seed <= 20; seed++) {
        k8s_backoff_init(&b, 0, 0, seed);
        for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
            int64_t d = k8s_backoff_next(&b);
            assert_true(d >= bases[i]);
            assert_true(d < bases[i] + bases[i] / 2);
            if (i == 0) {
                if (first >= 0 && d != first)
                    varied = true;
                first = d;
            }
        }
        k8s_backoff_reset(&b);
        int64_t d = k8s_backoff_next(&b);
        assert_true(d >= 800 && d < 1200);
    }
    assert_true(varied); /* jitter: different seeds, different delays */
    k8s_backoff_init(&b, 100, 250, 3);
    assert_true(k8s_backoff_next(&b) < 150);
    assert_true(k8s_backoff_next(&b) >= 200);
    int64_t d = k8s_backoff_next(&b);
    assert_true(d >= 250 && d < 375);
}

/* ---- key set -------------------------------------------------------------------------- */

static void test_keyset(void **state)
{
    (void)state;
    k8s_keyset s;
    char k[64];

    k8s_keyset_init(&s);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "ns%d/pod-%d", i % 7, i);
        k8s_keyent *e = k8s_keyset_put(&s, k);
        assert_null(e->rv);
        e->rv = xasprintf("%d", i);
    }
    assert_int_equal(s.count, 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(k, sizeof(k), "ns%d/pod-%d", i % 7, i);
        assert_true(k8s_keyset_del(&s, k));
        assert_false(k8s_keyset_del(&s, k));
    }
    assert_int_equal(s.count, 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "ns%d/pod-%d", i % 7, i);
        k8s_keyent *e = k8s_keyset_get(&s, k);
        if (i % 2) {
            assert_non_null(e);
            assert_int_equal(atoi(e->rv), i);
        } else {
            assert_null(e);
        }
    }
    /* Churn through tombstones without growing without bound. */
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof(k), "churn/%d-%d", round, i);
            k8s_keyset_put(&s, k);
        }
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof(k), "churn/%d-%d", round, i);
            assert_true(k8s_keyset_del(&s, k));
        }
    }
    assert_int_equal(s.count, 2500);
    assert_true(s.cap <= 16384);
    assert_true(k8s_keyset_bytes(&s) > 2500 * 32);
    k8s_keyset_free(&s);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/k8s-unit-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_table), cmocka_unit_test(test_kubeconfig_load_file),
        cmocka_unit_test(test_incluster),        cmocka_unit_test(test_lines_every_split),
        cmocka_unit_test(test_lines_limits),     cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_keyset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
