/* Unit tests for certs/: roots (RSA, ECDSA, state directory, plug-in directory, import,
 * rotation), CSR signing checked by the openssl CLI, the serving certificate, and the
 * CreateCertificate handler with protobuf-c-packed requests.
 *
 * CSRs come from `openssl req` (an implementation we did not write); chains are checked
 * with `openssl verify` and SANs/dates with `openssl x509`. Needs openssl on PATH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.pb-c.h"
#include "certs/ca.h"
#include "certs/ca_service.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"

static char tmpdir[256];

/* ---- helpers ----------------------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char cmd[4096];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *full = xasprintf("cd '%s' && (%s) >/dev/null 2>&1", tmpdir, cmd);
    int st = system(full);
    free(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs a command in tmpdir and returns its stdout (heap). */
static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char cmd[4096];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *full = xasprintf("cd '%s' && (%s) 2>&1", tmpdir, cmd);
    FILE *p = popen(full, "r");
    free(full);
    strbuf sb;
    strbuf_init(&sb, 1 << 20);
    strbuf_appends(&sb, "");
    char buf[1024];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0) {
        strbuf_append(&sb, buf, n);
    }
    if (p) {
        pclose(p);
    }
    return strbuf_steal(&sb, NULL);
}

static char *path_of(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static char *read_file(const char *name)
{
    char *path = path_of(name);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f) {
        return NULL;
    }
    strbuf sb;
    strbuf_init(&sb, 1 << 20);
    strbuf_appends(&sb, "");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        strbuf_append(&sb, buf, n);
    }
    fclose(f);
    return strbuf_steal(&sb, NULL);
}

static void write_file(const char *name, const char *data)
{
    char *path = path_of(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
    free(path);
}

static X509 *pem_to_x509(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* The one URI SAN of x (heap), or NULL when the SAN is not exactly one URI. */
static char *only_uri_san(X509 *x)
{
    int crit = -1;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    char *out = NULL;
    if (names && sk_GENERAL_NAME_num(names) == 1 && crit == 1) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
        if (gn->type == GEN_URI) {
            out = xstrndup((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                           (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier));
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

static time_t x509_time(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return timegm(&tm);
}

static ca *new_ca(ca_key_type kt)
{
    ca_opts o = {.cacerts_dir = "", .key_type = kt};
    ca *c = NULL;
    char err[256] = "";
    int rc = ca_new(&o, &c, err, sizeof(err));
    if (rc != CA_OK) {
        fail_msg("ca_new: %s", err);
    }
    return c;
}

static char *csr_of(const char *name, size_t *len)
{
    char *file = xasprintf("%s.csr", name);
    char *pem = read_file(file);
    free(file);
    assert_non_null(pem);
    *len = strlen(pem);
    return pem;
}

/* Signs CSR file name for default/bookinfo and writes leaf.pem, root.pem. */
static int sign_file(ca *c, const char *name, int64_t ttl, char ***chain, size_t *n, char *err,
                     size_t errlen)
{
    size_t len;
    char *pem = csr_of(name, &len);
    int rc = ca_sign_csr(c, pem, len, "default", "bookinfo", ttl, chain, n, err, errlen);
    if (rc == CA_OK) {
        /* The certified key is the CSR's, bit for bit. */
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        X509 *leaf = pem_to_x509((*chain)[0]);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), X509_REQ_get0_pubkey(req)), 1);
        X509_free(leaf);
        X509_REQ_free(req);
        BIO_free(b);
    }
    free(pem);
    if (rc == CA_OK) {
        write_file("leaf.pem", (*chain)[0]);
        write_file("root.pem", (*chain)[*n - 1]);
    }
    return rc;
}

/* ---- fixtures ---------------------------------------------------------------------- */

static const char *REQ = "openssl req -new -nodes -subj /CN=workload";

static int group_setup(void **state)
{
    (void)state;
    if (system("openssl version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: openssl CLI not found\n");
        exit(77);
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_ca.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        return -1;
    }
    struct {
        const char *name, *keyopt;
    } gen[] = {
        {"rsa2048", "-newkey rsa:2048"},
        {"ec256", "-newkey ec -pkeyopt ec_paramgen_curve:P-256"},
        {"ec384", "-newkey ec -pkeyopt ec_paramgen_curve:P-384"},
        {"rsa1024", "-newkey rsa:1024"},
        {"ed25519", "-newkey ed25519"},
        {"ec521", "-newkey ec -pkeyopt ec_paramgen_curve:P-521"},
    };
    for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
        if (sh("%s %s -keyout %s.key -out %s.csr", REQ, gen[i].keyopt, gen[i].name, gen[i].name) !=
            0) {
            fprintf(stderr, "openssl req failed for %s\n", gen[i].name);
            return -1;
        }
    }
    /* A CSR asking for someone else's identity every way it can. */
    if (sh("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-keyout evil.key -out evil.csr -subj '/CN=admin/O=system:masters' "
           "-addext 'subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,"
           "DNS:evil.example.com' -addext 'basicConstraints=critical,CA:TRUE'") != 0) {
        return -1;
    }
    /* A CSR whose signature no longer matches: flip the last byte of the DER (inside the
     * signature BIT STRING). */
    char *pem = read_file("ec256.csr");
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    unsigned char *der = NULL;
    int dlen = i2d_X509_REQ(req, &der);
    X509_REQ_free(req);
    der[dlen - 1] ^= 0x01;
    b = BIO_new(BIO_s_mem());
    PEM_write_bio(b, "CERTIFICATE REQUEST", "", der, dlen);
    OPENSSL_free(der);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *broken = xstrndup(p, (size_t)n);
    BIO_free(b);
    write_file("broken.csr", broken);
    free(broken);
    if (sh("openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-keyout foreign.key -out plugin-foreign.pem -days 30 -subj /O=cluster.local") != 0) {
        return -1;
    }
    write_file("garbage.csr", "this is not a CSR\n");
    write_file("badb64.csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA!!!!\n-----END CERTIFICATE "
                             "REQUEST-----\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (tmpdir[0]) {
        char *cmd = xasprintf("rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", tmpdir);
        }
        free(cmd);
    }
    return 0;
}

/* ---- roots ------------------------------------------------------------------------- */

static void check_root(ca *c, int want_pkey, int want_bits)
{
    char *pem = ca_root_pem(c);
    X509 *x = pem_to_x509(pem);
    assert_non_null(x);
    EVP_PKEY *pk = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_base_id(pk), want_pkey);
    assert_int_equal(EVP_PKEY_get_bits(pk), want_bits);

    char subj[256];
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
    assert_string_equal(subj, "/O=cluster.local");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_int_equal(X509_verify(x, pk), 1);

    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

    time_t nb = x509_time(X509_get0_notBefore(x)), na = x509_time(X509_get0_notAfter(x));
    time_t life = na - nb;
    assert_true(life >= CA_DEFAULT_ROOT_TTL_S && life <= CA_DEFAULT_ROOT_TTL_S + 120);
    assert_true(nb <= time(NULL));
    assert_true(ca_root_not_after(c) == na);

    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_false(BN_is_negative(serial));
    assert_true(BN_num_bits(serial) > 64 && BN_num_bits(serial) <= 128);
    BN_free(serial);
    X509_free(x);
    free(pem);
}

static void test_root_rsa(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_RSA2048);
    assert_int_equal(ca_get_source(c), CA_SOURCE_CREATED);
    check_root(c, EVP_PKEY_RSA, 2048);
    ca_free(c);
}

static void test_root_ec(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_EC_P256);
    check_root(c, EVP_PKEY_EC, 256);
    ca_free(c);
}

/* ---- signing ----------------------------------------------------------------------- */

static void check_leaf_props(const char *leaf_pem, time_t ttl)
{
    X509 *x = pem_to_x509(leaf_pem);
    assert_non_null(x);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    char *uri = only_uri_san(x);
    assert_non_null(uri);
    assert_string_equal(uri, "spiffe://cluster.local/ns/default/sa/bookinfo");
    free(uri);
    time_t nb = x509_time(X509_get0_notBefore(x)), na = x509_time(X509_get0_notAfter(x));
    time_t now = time(NULL);
    assert_true(nb <= now - CA_CLOCK_SKEW_S + 5 && nb >= now - CA_CLOCK_SKEW_S - 30);
    assert_true(na - nb == ttl + CA_CLOCK_SKEW_S);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_false(BN_is_negative(serial));
    assert_true(BN_num_bits(serial) > 64 && BN_num_bits(serial) <= 128);
    BN_free(serial);
    X509_free(x);
}

static void test_sign_table(void **state)
{
    (void)state;
    static const struct {
        const char *csr;
        int rc;
        const char *err; /* substring of the reason */
    } cases[] = {
        {"rsa2048", CA_OK, NULL},
        {"ec256", CA_OK, NULL},
        {"ec384", CA_OK, NULL},
        {"rsa1024", CA_EINVAL, "RSA key of 1024 bits refused"},
        {"ed25519", CA_EINVAL, "ED25519 key refused"},
        {"ec521", CA_EINVAL, "EC curve secp521r1 refused"},
        {"broken", CA_EINVAL, "signature does not verify"},
        {"garbage", CA_EINVAL, "not a PEM CERTIFICATE REQUEST"},
        {"badb64", CA_EINVAL, "not a PEM CERTIFICATE REQUEST"},
    };
    ca_key_type roots[] = {CA_KEY_RSA2048, CA_KEY_EC_P256};
    for (size_t r = 0; r < 2; r++) {
        ca *c = new_ca(roots[r]);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char **chain = NULL;
            size_t n = 0;
            char err[256] = "";
            int rc = sign_file(c, cases[i].csr, 0, &chain, &n, err, sizeof(err));
            if (rc != cases[i].rc) {
                fail_msg("%s (root %zu): rc %d, want %d (%s)", cases[i].csr, r, rc, cases[i].rc,
                         err);
            }
            if (rc != CA_OK) {
                assert_null(chain);
                if (!strstr(err, cases[i].err)) {
                    fail_msg("%s: reason \"%s\" lacks \"%s\"", cases[i].csr, err, cases[i].err);
                }
                continue;
            }
            assert_int_equal(n, 2);
            char *root = ca_root_pem(c);
            assert_string_equal(chain[1], root);
            free(root);
            check_leaf_props(chain[0], CA_DEFAULT_WORKLOAD_TTL_S);
            assert_int_equal(sh("openssl verify -CAfile root.pem leaf.pem"), 0);
            /* Usable on both ends of mTLS. */
            assert_int_equal(sh("openssl verify -purpose sslserver -CAfile root.pem leaf.pem"), 0);
            assert_int_equal(sh("openssl verify -purpose sslclient -CAfile root.pem leaf.pem"), 0);
            /* A foreign root does not verify it (the check can fail). */
            assert_int_not_equal(sh("openssl verify -CAfile plugin-foreign.pem leaf.pem"), 0);
            char *out = sh_out("openssl x509 -in leaf.pem -noout -ext subjectAltName -dates");
            if (!strstr(out, "URI:spiffe://cluster.local/ns/default/sa/bookinfo") ||
                !strstr(out, "notBefore=") || !strstr(out, "critical")) {
                fail_msg("%s: openssl x509 says:\n%s", cases[i].csr, out);
            }
            free(out);
            ca_chain_free(chain, n);
        }
        ca_free(c);
    }
}

static void test_csr_identity_ignored(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_EC_P256);
    char **chain = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(sign_file(c, "evil", 0, &chain, &n, err, sizeof(err)), CA_OK);
    check_leaf_props(chain[0], CA_DEFAULT_WORKLOAD_TTL_S);
    char *out = sh_out("openssl x509 -in leaf.pem -noout -ext subjectAltName -subject");
    assert_non_null(strstr(out, "URI:spiffe://cluster.local/ns/default/sa/bookinfo"));
    assert_null(strstr(out, "kube-system"));
    assert_null(strstr(out, "evil.example.com"));
    assert_null(strstr(out, "masters"));
    assert_null(strstr(out, "admin"));
    free(out);
    ca_chain_free(chain, n);

    /* Identities that would break out of the URI are refused. */
    size_t len;
    char *pem = csr_of("ec256", &len);
    assert_int_equal(ca_sign_csr(c, pem, len, "default/sa/x", "y", 0, &chain, &n, err, sizeof(err)),
                     CA_EINVAL);
    assert_int_equal(ca_sign_csr(c, pem, len, "default", "", 0, &chain, &n, err, sizeof(err)),
                     CA_EINVAL);
    assert_int_equal(ca_sign_csr(c, pem, len, "Default", "sa", 0, &chain, &n, err, sizeof(err)),
                     CA_EINVAL);
    free(pem);
    ca_free(c);
}

static void test_ttl(void **state)
{
    (void)state;
    static const struct {
        int64_t ttl;
        int rc;
        int64_t want;
    } cases[] = {
        {0, CA_OK, CA_DEFAULT_WORKLOAD_TTL_S},
        {-5, CA_OK, CA_DEFAULT_WORKLOAD_TTL_S},
        {3600, CA_OK, 3600},
        {CA_DEFAULT_MAX_WORKLOAD_TTL_S, CA_OK, CA_DEFAULT_MAX_WORKLOAD_TTL_S},
        {CA_DEFAULT_MAX_WORKLOAD_TTL_S + 1, CA_EINVAL, 0},
        {INT64_MAX, CA_EINVAL, 0},
    };
    ca *c = new_ca(CA_KEY_EC_P256);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char **chain = NULL;
        size_t n = 0;
        char err[256] = "";
        int rc = sign_file(c, "ec256", cases[i].ttl, &chain, &n, err, sizeof(err));
        assert_int_equal(rc, cases[i].rc);
        if (rc == CA_OK) {
            check_leaf_props(chain[0], cases[i].want);
            ca_chain_free(chain, n);
        } else {
            assert_non_null(strstr(err, "greater than the max allowed TTL"));
        }
    }
    ca_free(c);
}

/* ---- persistence, plug-in, import, rotation ---------------------------------------- */

static void test_state_dir(void **state)
{
    (void)state;
    char *dir = path_of("state");
    ca_opts o = {.cacerts_dir = "", .state_dir = dir, .key_type = CA_KEY_EC_P256};
    ca *c = NULL;
    char err[256] = "";
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_OK);
    assert_int_equal(ca_get_source(c), CA_SOURCE_STATE_DIR);
    char *root1 = ca_root_pem(c);

    char *key = xasprintf("%s/ca-key.pem", dir);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *cert = read_file("state/ca-cert.pem");
    char *rootf = read_file("state/root-cert.pem");
    assert_string_equal(cert, root1);
    assert_string_equal(rootf, root1);
    free(cert);
    free(rootf);

    /* A leaf from the first run verifies against the reloaded root. */
    char **chain = NULL;
    size_t n = 0;
    assert_int_equal(sign_file(c, "ec256", 0, &chain, &n, err, sizeof(err)), CA_OK);
    ca_chain_free(chain, n);
    ca_free(c);

    o.key_type = CA_KEY_RSA2048; /* ignored on reload: the stored key is used */
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_OK);
    char *root2 = ca_root_pem(c);
    assert_string_equal(root1, root2);
    write_file("root.pem", root2);
    assert_int_equal(sh("openssl verify -CAfile root.pem leaf.pem"), 0);
    ca_free(c);

    /* A key that does not match the certificate is refused, not replaced. */
    assert_int_equal(sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                        "-out state/ca-key.pem"),
                     0);
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "does not match"));

    free(root1);
    free(root2);
    free(key);
    free(dir);
}

/* Makes a plug-in cacerts directory: an RSA root and an EC intermediate signed by it. */
static void make_plugin_dir(const char *d)
{
    assert_int_equal(
        sh("mkdir -p %s && cd %s && "
           "openssl req -x509 -new -newkey rsa:2048 -nodes -keyout root-key.pem "
           "-out root-cert.pem -days 3650 -subj '/O=Plugin Root' "
           "-addext 'basicConstraints=critical,CA:TRUE' "
           "-addext 'keyUsage=critical,keyCertSign,cRLSign' && "
           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout ca-key.pem -out inter.csr -subj '/O=Plugin Intermediate' && "
           "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
           "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' > ext.cnf && "
           "openssl x509 -req -in inter.csr -CA root-cert.pem -CAkey root-key.pem "
           "-set_serial 4242 -days 365 -extfile ext.cnf -out ca-cert.pem && "
           "cat ca-cert.pem root-cert.pem > cert-chain.pem",
           d, d),
        0);
}

static void test_plugin_wins(void **state)
{
    (void)state;
    make_plugin_dir("plugin");
    char *plug = path_of("plugin");
    char *sdir = path_of("state-unused");
    ca_opts o = {.cacerts_dir = plug, .state_dir = sdir};
    ca *c = NULL;
    char err[256] = "";
    if (ca_new(&o, &c, err, sizeof(err)) != CA_OK) {
        fail_msg("plug-in: %s", err);
    }
    assert_int_equal(ca_get_source(c), CA_SOURCE_PLUGIN);
    assert_int_not_equal(access(sdir, F_OK), 0); /* the state dir was never touched */

    char **chain = NULL;
    size_t n = 0;
    assert_int_equal(sign_file(c, "ec256", 0, &chain, &n, err, sizeof(err)), CA_OK);
    assert_int_equal(n, 3);
    write_file("inter.pem", chain[1]);
    char *inter = read_file("plugin/ca-cert.pem");
    char *root = read_file("plugin/root-cert.pem");
    assert_string_equal(chain[1], inter);
    assert_string_equal(chain[2], root);
    assert_int_equal(sh("openssl verify -CAfile root.pem -untrusted inter.pem leaf.pem"), 0);
    /* Without the intermediate the leaf does not reach the root: the chain is needed. */
    assert_int_not_equal(sh("openssl verify -CAfile root.pem leaf.pem"), 0);
    ca_chain_free(chain, n);

    /* Plug-in roots are the operator's: never rotated, even when about to expire. */
    bool rotated = true;
    assert_int_equal(ca_rotate_if_needed(c, time(NULL) + 400 * 86400, &rotated, err, sizeof(err)),
                     CA_OK);
    assert_false(rotated);
    ca_free(c);

    /* Without cert-chain.pem the intermediate still goes into the response. */
    assert_int_equal(sh("rm plugin/cert-chain.pem"), 0);
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_OK);
    assert_int_equal(sign_file(c, "ec384", 0, &chain, &n, err, sizeof(err)), CA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(chain[1], inter);
    ca_chain_free(chain, n);
    ca_free(c);

    /* A plug-in whose key belongs to another certificate is refused. */
    assert_int_equal(sh("cp plugin/root-key.pem plugin/ca-key.pem"), 0);
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_EINVAL);
    assert_non_null(strstr(err, "ca-key.pem does not match ca-cert.pem"));
    /* ... and so is one whose root is not the intermediate's issuer. */
    make_plugin_dir("plugin2");
    assert_int_equal(sh("cp plugin/root-cert.pem plugin2/root-cert.pem && "
                        "cp plugin/root-cert.pem plugin2/cert-chain.pem"),
                     0);
    char *plug2 = path_of("plugin2");
    o.cacerts_dir = plug2;
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_EINVAL);
    assert_non_null(strstr(err, "does not chain to root-cert.pem"));

    free(plug2);
    free(inter);
    free(root);
    free(plug);
    free(sdir);
}

static void test_export_import(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_RSA2048);
    ca_pem_set s;
    assert_int_equal(ca_export(c, &s), CA_OK);
    assert_non_null(strstr(s.ca_key, "PRIVATE KEY"));
    assert_string_equal(s.ca_cert, s.root_cert);
    assert_string_equal(s.cert_chain, "");
    assert_string_equal(s.key_pem, "");

    ca_opts o = {.cacerts_dir = "", .import = &s};
    ca *c2 = NULL;
    char err[256] = "";
    assert_int_equal(ca_new(&o, &c2, err, sizeof(err)), CA_OK);
    assert_int_equal(ca_get_source(c2), CA_SOURCE_IMPORTED);
    char *r1 = ca_root_pem(c), *r2 = ca_root_pem(c2);
    assert_string_equal(r1, r2);
    char **chain = NULL;
    size_t n = 0;
    assert_int_equal(sign_file(c2, "rsa2048", 0, &chain, &n, err, sizeof(err)), CA_OK);
    write_file("root.pem", r1);
    assert_int_equal(sh("openssl verify -CAfile root.pem leaf.pem"), 0);
    ca_chain_free(chain, n);
    ca_free(c2);

    /* A secret missing its key is refused with the key named. */
    char *saved = s.ca_key;
    s.ca_key = NULL;
    assert_int_equal(ca_new(&o, &c2, err, sizeof(err)), CA_EINVAL);
    assert_null(c2);
    assert_non_null(strstr(err, "ca-key.pem"));
    s.ca_key = saved;
    free(r1);
    free(r2);
    ca_pem_set_free(&s);
    assert_null(s.ca_key);
    ca_free(c);
}

static void test_rotation(void **state)
{
    (void)state;
    char *dir = path_of("rot");
    ca_opts o = {.cacerts_dir = "", .state_dir = dir, .root_ttl_s = 1000};
    ca *c = NULL;
    char err[256] = "";
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_OK);
    char *old_pem = ca_root_pem(c);
    X509 *old = pem_to_x509(old_pem);
    time_t now = time(NULL);

    char **chain = NULL;
    size_t n = 0;
    /* A 24h leaf under a 1000s root: its life is capped at the root's. */
    assert_int_equal(sign_file(c, "ec256", 0, &chain, &n, err, sizeof(err)), CA_OK);
    X509 *leaf = pem_to_x509(chain[0]);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(old)), 0);
    X509_free(leaf);
    ca_chain_free(chain, n);

    bool rotated = true;
    assert_int_equal(ca_rotate_if_needed(c, now + 100, &rotated, err, sizeof(err)), CA_OK);
    assert_false(rotated); /* 90% of its life left */
    assert_int_equal(ca_rotate_if_needed(c, now + 900, &rotated, err, sizeof(err)), CA_OK);
    assert_true(rotated); /* < 20% left */

    char *new_pem = ca_root_pem(c);
    X509 *nw = pem_to_x509(new_pem);
    assert_string_not_equal(old_pem, new_pem);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(old), X509_get0_pubkey(nw)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(old), X509_get_subject_name(nw)), 0);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(old), X509_get0_serialNumber(nw)),
                         0);
    time_t na = x509_time(X509_get0_notAfter(nw));
    assert_true(na >= now + 900 + 1000 && na <= now + 900 + 1000 + 5);
    assert_true(ca_root_not_after(c) == na);

    /* The leaf issued under the old root verifies against the new one (same key). */
    write_file("root.pem", new_pem);
    assert_int_equal(
        sh("openssl verify -attime %lld -CAfile root.pem leaf.pem", (long long)now + 900), 0);
    /* The state directory holds the new root, the same key file. */
    char *disk = read_file("rot/ca-cert.pem");
    assert_string_equal(disk, new_pem);
    free(disk);
    ca_free(c);
    assert_int_equal(ca_new(&o, &c, err, sizeof(err)), CA_OK);
    char *reloaded = ca_root_pem(c);
    assert_string_equal(reloaded, new_pem);
    free(reloaded);
    ca_free(c);

    X509_free(old);
    X509_free(nw);
    free(old_pem);
    free(new_pem);
    free(dir);
}

static void test_serving_cert(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_EC_P256);
    const char *names[] = {"istiod.istio-system.svc.cluster.local", "istiod.istio-system.svc",
                           "localhost", "localhost"};
    ca_serving_cert sc;
    char err[256] = "";
    assert_int_equal(ca_issue_serving_cert(c, names, 4, 3600, &sc, err, sizeof(err)), CA_OK);
    write_file("serving.pem", sc.cert_chain_pem);
    write_file("root.pem", sc.root_pem);
    assert_int_equal(sh("openssl verify -CAfile root.pem -purpose sslserver serving.pem"), 0);
    char *out = sh_out("openssl x509 -in serving.pem -noout -ext subjectAltName");
    assert_non_null(strstr(out, "DNS:istiod.istio-system.svc, "
                                "DNS:istiod.istio-system.svc.cluster.local, DNS:localhost"));
    assert_null(strstr(out, "localhost, DNS:localhost"));
    free(out);
    assert_true(sc.not_after - sc.not_before == 3600 + CA_CLOCK_SKEW_S);
    assert_true(sc.renew_at > time(NULL) && sc.renew_at < sc.not_after);

    /* The key is the certificate's. */
    BIO *b = BIO_new_mem_buf(sc.key_pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    X509 *x = pem_to_x509(sc.cert_chain_pem);
    assert_int_equal(X509_check_private_key(x, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    ca_serving_cert_free(&sc);

    const char *bad[] = {"bad name!"};
    assert_int_equal(ca_issue_serving_cert(c, bad, 1, 0, &sc, err, sizeof(err)), CA_EINVAL);
    assert_null(sc.key_pem);
    ca_free(c);
}

/* ---- the handler ------------------------------------------------------------------- */

typedef struct review_state {
    int calls;
} review_state;

/* A stand-in TokenReview: "good" is default/productpage, "badname" returns an identity that
 * must not reach a URI, anything else is refused like a foreign or invalid token. */
static int fake_review(void *ud, const char *token, const char *audience, char **ns, char **sa,
                       char *err, size_t errlen)
{
    review_state *rs = ud;
    rs->calls++;
    assert_string_equal(audience, "istio-ca");
    if (strcmp(token, "good") == 0) {
        *ns = xstrdup("default");
        *sa = xstrdup("productpage");
        return 0;
    }
    if (strcmp(token, "badname") == 0) {
        *ns = xstrdup("default/sa/admin");
        *sa = xstrdup("x");
        return 0;
    }
    snprintf(err, errlen, "token not authenticated");
    return -1;
}

static uint8_t *pack_req(const char *csr, int64_t ttl, size_t *len)
{
    Istio__V1__Auth__IstioCertificateRequest r = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
    r.csr = (char *)csr;
    r.validity_duration = ttl;
    *len = istio__v1__auth__istio_certificate_request__get_packed_size(&r);
    uint8_t *buf = xmalloc(*len + 1);
    istio__v1__auth__istio_certificate_request__pack(&r, buf);
    return buf;
}

typedef struct call_result {
    int code;
    char *msg;
    char *uri; /* the leaf's SPIFFE SAN on success */
    size_t nchain;
} call_result;

static call_result call(ca_service *svc, const ca_caller *auth, const uint8_t *req, size_t len)
{
    call_result r = {0};
    uint8_t *resp = NULL;
    size_t rlen = 0;
    r.code = ca_service_create_certificate(svc, auth, req, len, &resp, &rlen, &r.msg);
    if (r.code == 0) {
        assert_null(r.msg);
        Istio__V1__Auth__IstioCertificateResponse *out =
            istio__v1__auth__istio_certificate_response__unpack(NULL, rlen, resp);
        assert_non_null(out);
        r.nchain = out->n_cert_chain;
        X509 *leaf = pem_to_x509(out->cert_chain[0]);
        r.uri = only_uri_san(leaf);
        X509_free(leaf);
        write_file("leaf.pem", out->cert_chain[0]);
        write_file("root.pem", out->cert_chain[out->n_cert_chain - 1]);
        istio__v1__auth__istio_certificate_response__free_unpacked(out, NULL);
    } else {
        assert_null(resp);
        assert_non_null(r.msg);
    }
    free(resp);
    return r;
}

static void result_free(call_result *r)
{
    free(r->msg);
    free(r->uri);
}

static strbuf log_lines;

static void log_capture(const char *scope, log_level lvl, const char *line, void *ud)
{
    (void)scope;
    (void)lvl;
    (void)ud;
    strbuf_appends(&log_lines, line);
    strbuf_appends(&log_lines, "\n");
}

static double mval(const char *name)
{
    return metric_value(metric_counter(name, "", NULL), NULL);
}

static void test_handler(void **state)
{
    (void)state;
    strbuf_init(&log_lines, 1 << 20);
    log_set_hook(log_capture, NULL);
    char lerr[64];
    assert_int_equal(log_configure("ca:debug", lerr, sizeof(lerr)), 0);

    ca *c = new_ca(CA_KEY_EC_P256);
    review_state rs = {0};
    ca_service *svc = ca_service_new(c, fake_review, &rs);
    assert_true(metric_value(metric_gauge("citadel_server_root_cert_expiry_timestamp", "", NULL),
                             NULL) == (double)ca_root_not_after(c));
    double csr0 = mval("citadel_server_csr_count");
    double ok0 = mval("citadel_server_success_cert_issuance_count");

    size_t len, rlen;
    char *csr = csr_of("ec256", &len);
    uint8_t *req = pack_req(csr, 0, &rlen);

    static const struct {
        const char *name;
        const char *token;
        const char *san; /* client certificate URI SAN */
        int code;
        const char *want; /* SAN of the leaf, or a substring of the message */
        int review_calls;
    } cases[] = {
        {"no credentials", NULL, NULL, 16, "no client certificate and no bearer token", 0},
        {"empty token", "", NULL, 16, "authenticate failure", 0},
        {"invalid token", "invalid", NULL, 16, "token not authenticated", 1},
        {"foreign token", "foreign-cluster", NULL, 16, "token review failed", 1},
        {"review returns a bad name", "badname", NULL, 16, "invalid service account", 1},
        {"good token", "good", NULL, 0, "spiffe://cluster.local/ns/default/sa/productpage", 1},
        {"client cert renewal", NULL, "spiffe://cluster.local/ns/foo/sa/bar", 0,
         "spiffe://cluster.local/ns/foo/sa/bar", 0},
        {"client cert wins over token", "good", "spiffe://cluster.local/ns/foo/sa/bar", 0,
         "spiffe://cluster.local/ns/foo/sa/bar", 0},
        {"foreign trust domain cert", NULL, "spiffe://evil.org/ns/foo/sa/bar", 16,
         "no SPIFFE identity in this trust domain", 0},
        {"foreign cert, then token", "good", "spiffe://evil.org/ns/foo/sa/bar", 0,
         "spiffe://cluster.local/ns/default/sa/productpage", 1},
        {"malformed SPIFFE", NULL, "spiffe://cluster.local/ns/foo", 16, "authenticate", 0},
    };
    int successes = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *sans[1] = {cases[i].san};
        ca_caller auth = {.peer = "ipv4:127.0.0.1:5555",
                          .bearer_token = cases[i].token,
                          .peer_uri_sans = cases[i].san ? sans : NULL,
                          .npeer_uri_sans = cases[i].san ? 1 : 0};
        rs.calls = 0;
        call_result r = call(svc, &auth, req, rlen);
        if (r.code != cases[i].code) {
            fail_msg("%s: code %d (%s), want %d", cases[i].name, r.code, r.msg ? r.msg : "",
                     cases[i].code);
        }
        assert_int_equal(rs.calls, cases[i].review_calls);
        if (r.code == 0) {
            successes++;
            assert_int_equal(r.nchain, 2);
            assert_non_null(r.uri);
            assert_string_equal(r.uri, cases[i].want);
            assert_int_equal(sh("openssl verify -CAfile root.pem leaf.pem"), 0);
        } else if (!strstr(r.msg, cases[i].want)) {
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].name, r.msg, cases[i].want);
        }
        result_free(&r);
    }
    assert_true(mval("citadel_server_csr_count") - csr0 ==
                (double)(sizeof(cases) / sizeof(cases[0])));
    assert_true(mval("citadel_server_success_cert_issuance_count") - ok0 == successes);
    strbuf prom;
    strbuf_init(&prom, 1 << 20);
    metrics_render(&prom);
    assert_non_null(strstr(prom.data, "citadel_server_csr_count"));
    assert_non_null(strstr(prom.data, "citadel_server_root_cert_expiry_timestamp"));
    strbuf_free(&prom);
    free(req);

    /* Bad requests from an authenticated caller: INVALID_ARGUMENT with a reason. */
    ca_caller good = {.peer = "ipv4:127.0.0.1:5555", .bearer_token = "good"};
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    call_result r = call(svc, &good, garbage, sizeof(garbage));
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.msg, "does not decode"));
    result_free(&r);

    req = pack_req("not a csr", 0, &rlen);
    r = call(svc, &good, req, rlen);
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.msg, "csr:"));
    result_free(&r);
    free(req);

    char *weak = csr_of("rsa1024", &len);
    req = pack_req(weak, 0, &rlen);
    r = call(svc, &good, req, rlen);
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.msg, "1024"));
    result_free(&r);
    free(req);
    free(weak);

    req = pack_req(csr, CA_DEFAULT_MAX_WORKLOAD_TTL_S + 1, &rlen);
    r = call(svc, &good, req, rlen);
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.msg, "greater than the max allowed TTL"));
    result_free(&r);
    free(req);

    req = pack_req(csr, 7200, &rlen);
    r = call(svc, &good, req, rlen);
    assert_int_equal(r.code, 0);
    char *dates = sh_out("openssl x509 -in leaf.pem -noout -enddate");
    assert_non_null(strstr(dates, "notAfter="));
    free(dates);
    result_free(&r);
    free(req);

    /* An empty request (proto3 defaults: no CSR) from an authenticated caller. */
    uint8_t *none = NULL;
    r = call(svc, &good, none, 0);
    assert_int_equal(r.code, 3);
    result_free(&r);

    /* Nothing the CA logged carries key material; the log did record the refusals. */
    ca_pem_set s;
    assert_int_equal(ca_export(c, &s), CA_OK);
    ca_pem_set_free(&s);
    log_set_hook(NULL, NULL);
    assert_non_null(strstr(log_lines.data, "refused"));
    assert_non_null(strstr(log_lines.data, "issued a certificate"));
    assert_null(strstr(log_lines.data, "PRIVATE KEY"));
    assert_null(strstr(log_lines.data, "BEGIN"));
    strbuf_free(&log_lines);
    assert_int_equal(log_configure("ca:info", lerr, sizeof(lerr)), 0);

    free(csr);
    ca_service_free(svc);
    ca_free(c);
}

/* A CA without TokenReview accepts only client certificates. */
static void test_handler_no_review(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_EC_P256);
    ca_service *svc = ca_service_new(c, NULL, NULL);
    size_t len, rlen;
    char *csr = csr_of("ec256", &len);
    uint8_t *req = pack_req(csr, 0, &rlen);
    ca_caller auth = {.bearer_token = "good"};
    call_result r = call(svc, &auth, req, rlen);
    assert_int_equal(r.code, 16);
    assert_non_null(strstr(r.msg, "no TokenReview"));
    result_free(&r);
    free(req);
    free(csr);
    ca_service_free(svc);
    ca_free(c);
}

/* Hostile bytes: random corruptions of a valid request and of its CSR never crash (ASan
 * watches), never sign for anyone but the caller, and always answer OK or
 * INVALID_ARGUMENT. A poor man's fuzzer with a fixed seed, so failures reproduce. */
static void test_handler_mutations(void **state)
{
    (void)state;
    ca *c = new_ca(CA_KEY_EC_P256);
    ca_service *svc = ca_service_new(c, NULL, NULL);
    const char *sans[] = {"spiffe://cluster.local/ns/foo/sa/bar"};
    ca_caller auth = {.peer_uri_sans = sans, .npeer_uri_sans = 1};
    size_t len, rlen;
    char *csr = csr_of("ec256", &len);
    uint8_t *req = pack_req(csr, 0, &rlen);
    char lerr[64];
    assert_int_equal(log_configure("ca:none", lerr, sizeof(lerr)), 0);
    unsigned seed = 12345;
    int ok = 0, bad = 0;
    for (int i = 0; i < 1500; i++) {
        bool on_csr = i % 2;
        uint8_t *buf;
        size_t blen;
        char *mcsr = NULL;
        if (on_csr) {
            mcsr = xstrdup(csr);
            int flips = 1 + (int)(rand_r(&seed) % 4);
            for (int f = 0; f < flips; f++) {
                mcsr[rand_r(&seed) % len] = (char)(1 + rand_r(&seed) % 255);
            }
            buf = pack_req(mcsr, (int64_t)(rand_r(&seed) % 100000), &blen);
        } else {
            blen = rlen;
            buf = xmalloc(rlen);
            memcpy(buf, req, rlen);
            int flips = 1 + (int)(rand_r(&seed) % 4);
            for (int f = 0; f < flips; f++) {
                buf[rand_r(&seed) % rlen] = (uint8_t)rand_r(&seed);
            }
            blen -= rand_r(&seed) % 3 == 0 ? rand_r(&seed) % rlen : 0;
        }
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        char *msg = NULL;
        int code = ca_service_create_certificate(svc, &auth, buf, blen, &resp, &resp_len, &msg);
        if (code == 0) {
            ok++;
            Istio__V1__Auth__IstioCertificateResponse *out =
                istio__v1__auth__istio_certificate_response__unpack(NULL, resp_len, resp);
            assert_non_null(out);
            X509 *leaf = pem_to_x509(out->cert_chain[0]);
            char *uri = only_uri_san(leaf);
            assert_non_null(uri);
            assert_string_equal(uri, sans[0]);
            free(uri);
            X509_free(leaf);
            istio__v1__auth__istio_certificate_response__free_unpacked(out, NULL);
        } else {
            bad++;
            if (code != 3) {
                fail_msg("mutation %d: code %d (%s)", i, code, msg);
            }
        }
        free(resp);
        free(msg);
        free(buf);
        free(mcsr);
    }
    assert_true(bad > 0);
    assert_int_equal(log_configure("ca:info", lerr, sizeof(lerr)), 0);
    free(req);
    free(csr);
    ca_service_free(svc);
    ca_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_rsa),
        cmocka_unit_test(test_root_ec),
        cmocka_unit_test(test_sign_table),
        cmocka_unit_test(test_csr_identity_ignored),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_state_dir),
        cmocka_unit_test(test_plugin_wins),
        cmocka_unit_test(test_export_import),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_serving_cert),
        cmocka_unit_test(test_handler),
        cmocka_unit_test(test_handler_no_review),
        cmocka_unit_test(test_handler_mutations),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
