/* sign: CSR checks and issuing — workload certificates with a SPIFFE URI SAN, and istiod's
 * own DNS-SAN serving certificate.
 *
 * Only the CSR's public key is used: its subject and extensions are ignored, so a workload
 * can never ask for someone else's identity. The identity comes from the caller's
 * authentication (ca_service.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "certs/ca_internal.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

/* A CSR is a few hundred bytes (a kilobyte or two for RSA-4096); anything far larger is
 * not a CSR. */
#define CA_MAX_CSR_LEN (64 * 1024)
/* Bigger RSA keys are legal but only make verification slow for everyone else. */
#define CA_MAX_RSA_BITS 8192
#define CA_MAX_URI_LEN 2048

void ca_chain_free(char **chain, size_t n)
{
    if (!chain) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(chain[i]);
    }
    free(chain);
}

static bool is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

bool ca_valid_k8s_name(const char *s, size_t maxlen)
{
    if (!s) {
        return false;
    }
    size_t n = strnlen(s, maxlen + 1);
    if (n == 0 || n > maxlen || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '.') {
            return false;
        }
    }
    return true;
}

int ca_parse_spiffe(const ca *c, const char *uri, char **ns, char **sa)
{
    static const char scheme[] = "spiffe://";
    *ns = *sa = NULL;
    if (!uri || strnlen(uri, CA_MAX_URI_LEN + 1) > CA_MAX_URI_LEN ||
        strncmp(uri, scheme, sizeof(scheme) - 1) != 0) {
        return CA_EINVAL;
    }
    const char *td = uri + sizeof(scheme) - 1;
    const char *slash = strchr(td, '/');
    size_t tdlen = strlen(c->trust_domain);
    if (!slash || (size_t)(slash - td) != tdlen || strncmp(td, c->trust_domain, tdlen) != 0 ||
        strncmp(slash, "/ns/", 4) != 0) {
        return CA_EINVAL;
    }
    const char *nsp = slash + 4;
    const char *sam = strstr(nsp, "/sa/");
    if (!sam) {
        return CA_EINVAL;
    }
    char *n = xstrndup(nsp, (size_t)(sam - nsp));
    char *a = xstrdup(sam + 4);
    if (!ca_valid_k8s_name(n, 63) || !ca_valid_k8s_name(a, 253)) {
        free(n);
        free(a);
        return CA_EINVAL;
    }
    *ns = n;
    *sa = a;
    return CA_OK;
}

/* The leaf's public key must be one Envoy and gRPC clients handle well and that is strong
 * enough: RSA 2048..8192 or ECDSA on P-256/P-384. */
static int check_leaf_key(EVP_PKEY *pk, char *err, size_t errlen)
{
    int id = EVP_PKEY_get_base_id(pk);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(pk);
        if (bits < 2048 || bits > CA_MAX_RSA_BITS) {
            return ca__fail(CA_EINVAL, err, errlen,
                            "csr: RSA key of %d bits refused (2048 to %d required)", bits,
                            CA_MAX_RSA_BITS);
        }
        return CA_OK;
    }
    if (id == EVP_PKEY_EC) {
        char g[80];
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pk, g, sizeof(g), &glen) != 1) {
            ERR_clear_error();
            return ca__fail(CA_EINVAL, err, errlen,
                            "csr: EC key without a named curve refused (P-256 or P-384)");
        }
        int nid = OBJ_sn2nid(g);
        if (nid == NID_undef) {
            nid = EC_curve_nist2nid(g);
        }
        if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1) {
            return ca__fail(CA_EINVAL, err, errlen,
                            "csr: EC curve %s refused (P-256 or P-384 required)", g);
        }
        return CA_OK;
    }
    const char *sn = OBJ_nid2sn(id);
    return ca__fail(CA_EINVAL, err, errlen,
                    "csr: %s key refused (RSA >= 2048 or ECDSA P-256/P-384 required)",
                    id != NID_undef && sn ? sn : "unknown");
}

/* Parses and checks a PEM CSR: one CERTIFICATE REQUEST block, an accepted key, a valid
 * self-signature. Returns the CSR (caller frees) or NULL with err set. */
static X509_REQ *parse_csr(const char *pem, size_t len, char *err, size_t errlen)
{
    X509_REQ *req = NULL;
    BIO *b = NULL;
    if (!pem || len == 0) {
        ca__fail(CA_EINVAL, err, errlen, "csr: empty");
        goto fail;
    }
    if (len > CA_MAX_CSR_LEN) {
        ca__fail(CA_EINVAL, err, errlen, "csr: %zu bytes, larger than the %d allowed", len,
                 CA_MAX_CSR_LEN);
        goto fail;
    }
    b = BIO_new_mem_buf(pem, (int)len);
    if (!b || !(req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL))) {
        ca__fail(CA_EINVAL, err, errlen, "csr: not a PEM CERTIFICATE REQUEST");
        goto fail;
    }
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    if (!pk) {
        ca__fail(CA_EINVAL, err, errlen, "csr: public key unreadable");
        goto fail;
    }
    if (check_leaf_key(pk, err, errlen) != CA_OK) {
        goto fail;
    }
    if (X509_REQ_verify(req, pk) != 1) {
        ca__fail(CA_EINVAL, err, errlen, "csr: signature does not verify");
        goto fail;
    }
    BIO_free(b);
    ERR_clear_error();
    return req;
fail:
    X509_REQ_free(req);
    BIO_free(b);
    ERR_clear_error();
    return NULL;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static int push_name(GENERAL_NAMES *names, int type, const char *value)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!gn || !s || ASN1_STRING_set(s, value, (int)strlen(value)) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(s);
        return -1;
    }
    GENERAL_NAME_set0_value(gn, type, s);
    if (!sk_GENERAL_NAME_push(names, gn)) {
        GENERAL_NAME_free(gn);
        return -1;
    }
    return 0;
}

/* Copies a SubjectPublicKeyInfo into x as it is encoded. X509_set_pubkey would re-encode
 * the key through OpenSSL 3.0's encoder machinery, which costs ~0.35 ms per certificate
 * (more than an ECDSA signature); the bytes are the same. Returns 0, or -1 for parameter
 * types other than none, NULL (RSA) or a named curve (EC), which callers never pass. */
static int copy_spki(X509 *x, X509_PUBKEY *src)
{
    ASN1_OBJECT *alg = NULL;
    const unsigned char *bits = NULL;
    int nbits = 0, ptype = V_ASN1_UNDEF;
    X509_ALGOR *pa = NULL;
    const void *pval = NULL;
    if (X509_PUBKEY_get0_param(&alg, &bits, &nbits, &pa, src) != 1 || nbits <= 0) {
        return -1;
    }
    X509_ALGOR_get0(NULL, &ptype, &pval, pa);
    void *pdup = NULL;
    if (ptype == V_ASN1_OBJECT) {
        if (!(pdup = OBJ_dup(pval))) {
            return -1;
        }
    } else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) {
        return -1;
    }
    ASN1_OBJECT *adup = OBJ_dup(alg);
    unsigned char *kdup = OPENSSL_memdup(bits, (size_t)nbits);
    if (!adup || !kdup ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), adup, ptype, pdup, kdup, nbits) != 1) {
        ASN1_OBJECT_free(adup);
        ASN1_OBJECT_free(pdup);
        OPENSSL_free(kdup);
        return -1;
    }
    return 0;
}

/* Issues an end-entity certificate for pub (or, cheaper, spki) under generation m: empty subject,
 * the given SANs (critical, as RFC 5280 requires with an empty subject), not a CA,
 * digitalSignature+keyEncipherment, serverAuth+clientAuth, valid from now minus the clock
 * skew allowance to now + ttl (never beyond the signing certificate). */
static X509 *issue_leaf(ca_material *m, EVP_PKEY *pub, X509_PUBKEY *spki, GENERAL_NAMES *san,
                        time_t now, int64_t ttl_s)
{
    bool ok = false;
    X509V3_CTX v3;
    X509 *x = X509_new();
    if (!x || X509_set_version(x, X509_VERSION_3) != 1 || ca__set_random_serial(x) != 0 ||
        X509_set_issuer_name(x, X509_get_subject_name(m->cert)) != 1) {
        goto out;
    }
    if (!(spki && copy_spki(x, spki) == 0) && X509_set_pubkey(x, pub) != 1) {
        goto out;
    }
    if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -CA_CLOCK_SKEW_S, &now) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), (int)(ttl_s / 86400), (long)(ttl_s % 86400),
                          &now)) {
        goto out;
    }
    if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(m->cert)) > 0 &&
        !X509_set1_notAfter(x, X509_get0_notAfter(m->cert))) {
        goto out;
    }
    X509V3_set_ctx(&v3, m->cert, x, NULL, NULL, 0);
    if (add_conf_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
        add_conf_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        add_conf_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth")) {
        goto out;
    }
    /* The authority key id lets verifiers pick the right root among several with the same
     * name (a rotated root has the same key, so the id still matches). */
    if (X509_get0_subject_key_id(m->cert) &&
        add_conf_ext(x, &v3, NID_authority_key_identifier, "keyid")) {
        goto out;
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, san, 1, X509V3_ADD_DEFAULT) != 1) {
        goto out;
    }
    if (X509_sign(x, m->key, ca__digest_for(m->key)) <= 0) {
        goto out;
    }
    ok = true;
out:
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

int ca_sign_csr(ca *c, const char *csr_pem, size_t csr_len, const char *ns, const char *sa,
                int64_t ttl_s, char ***chain, size_t *nchain, char *err, size_t errlen)
{
    int rc = CA_EINVAL;
    X509_REQ *req = NULL;
    X509 *leaf = NULL;
    GENERAL_NAMES *san = NULL;
    ca_material *m = NULL;
    char *uri = NULL;
    *chain = NULL;
    *nchain = 0;

    if (!ca_valid_k8s_name(ns, 63)) {
        ca__fail(rc, err, errlen, "identity: namespace is not a valid Kubernetes name");
        goto out;
    }
    if (!ca_valid_k8s_name(sa, 253)) {
        ca__fail(rc, err, errlen, "identity: service account is not a valid Kubernetes name");
        goto out;
    }
    if (ttl_s <= 0) {
        ttl_s = c->default_ttl_s;
    }
    if (ttl_s > c->max_ttl_s) {
        /* Istio refuses rather than clamps, so a client never gets less than it asked for
         * without knowing. */
        ca__fail(rc, err, errlen,
                 "validity_duration: requested TTL %llds is greater than the max allowed TTL "
                 "%llds",
                 (long long)ttl_s, (long long)c->max_ttl_s);
        goto out;
    }
    if (!(req = parse_csr(csr_pem, csr_len, err, errlen))) {
        goto out;
    }

    rc = CA_EINTERNAL;
    uri = xasprintf("spiffe://%s/ns/%s/sa/%s", c->trust_domain, ns, sa);
    san = sk_GENERAL_NAME_new_null();
    if (!san || push_name(san, GEN_URI, uri) != 0) {
        ca__fail(rc, err, errlen, "cannot build the SAN");
        goto out;
    }
    m = ca__material_get(c);
    if (!(leaf = issue_leaf(m, X509_REQ_get0_pubkey(req), X509_REQ_get_X509_PUBKEY(req), san,
                            time(NULL), ttl_s))) {
        ERR_clear_error();
        ca__fail(rc, err, errlen, "signing failed");
        goto out;
    }
    char **out = xcalloc(m->ntail + 1, sizeof(char *));
    if (!(out[0] = ca__x509_pem(leaf))) {
        free(out);
        ca__fail(rc, err, errlen, "cannot encode the certificate");
        goto out;
    }
    for (size_t i = 0; i < m->ntail; i++) {
        out[i + 1] = xstrdup(m->tail[i]);
    }
    *chain = out;
    *nchain = m->ntail + 1;
    rc = CA_OK;
out:
    ca__material_put(m);
    sk_GENERAL_NAME_pop_free(san, GENERAL_NAME_free);
    X509_free(leaf);
    X509_REQ_free(req);
    free(uri);
    return rc;
}

static bool valid_dns_name(const char *s)
{
    size_t n = strnlen(s, 254);
    if (n == 0 || n > 253) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!is_lower_alnum(ch) && !(ch >= 'A' && ch <= 'Z') && ch != '-' && ch != '.' &&
            !(ch == '*' && i == 0 && s[1] == '.')) {
            return false;
        }
    }
    return true;
}

static time_t asn1_time_t(const ASN1_TIME *t)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

int ca_issue_serving_cert(ca *c, const char *const *dns_names, size_t ndns, int64_t ttl_s,
                          ca_serving_cert *out, char *err, size_t errlen)
{
    int rc = CA_EINVAL;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    GENERAL_NAMES *san = NULL;
    ca_material *m = NULL;
    strbuf sb;
    strbuf_init(&sb, 0);
    memset(out, 0, sizeof(*out));

    if (ttl_s <= 0) {
        ttl_s = c->default_ttl_s;
    }
    if (ttl_s > c->max_ttl_s) {
        ca__fail(rc, err, errlen, "serving certificate TTL %llds exceeds the maximum %llds",
                 (long long)ttl_s, (long long)c->max_ttl_s);
        goto out;
    }
    rc = CA_EINTERNAL;
    san = sk_GENERAL_NAME_new_null();
    if (!san || push_name(san, GEN_DNS, CA_ISTIOD_DNS_NAME) != 0) {
        ca__fail(rc, err, errlen, "cannot build the SAN");
        goto out;
    }
    for (size_t i = 0; i < ndns; i++) {
        if (!dns_names[i] || !valid_dns_name(dns_names[i])) {
            rc = ca__fail(CA_EINVAL, err, errlen, "dns name %zu is not a valid hostname", i);
            goto out;
        }
        bool dup = strcmp(dns_names[i], CA_ISTIOD_DNS_NAME) == 0;
        for (size_t j = 0; j < i && !dup; j++) {
            dup = strcmp(dns_names[i], dns_names[j]) == 0;
        }
        if (!dup && push_name(san, GEN_DNS, dns_names[i]) != 0) {
            ca__fail(rc, err, errlen, "cannot build the SAN");
            goto out;
        }
    }
    if (!(key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))) {
        ca__fail(rc, err, errlen, "serving key generation failed");
        goto out;
    }
    m = ca__material_get(c);
    if (!(leaf = issue_leaf(m, key, NULL, san, time(NULL), ttl_s))) {
        ca__fail(rc, err, errlen, "signing the serving certificate failed");
        goto out;
    }
    char *pem = ca__x509_pem(leaf);
    if (!pem) {
        ca__fail(rc, err, errlen, "cannot encode the certificate");
        goto out;
    }
    strbuf_appends(&sb, pem);
    free(pem);
    for (size_t i = 0; i + 1 < m->ntail; i++) {
        strbuf_appends(&sb, m->tail[i]);
    }
    if (!(out->key_pem = ca__key_pem(key))) {
        ca__fail(rc, err, errlen, "cannot encode the key");
        goto out;
    }
    out->cert_chain_pem = strbuf_steal(&sb, NULL);
    out->root_pem = xstrdup(m->root_pem);
    out->not_before = asn1_time_t(X509_get0_notBefore(leaf));
    out->not_after = asn1_time_t(X509_get0_notAfter(leaf));
    out->renew_at = out->not_before + (out->not_after - out->not_before) / 2;
    rc = CA_OK;
out:
    ERR_clear_error();
    if (rc != CA_OK) {
        ca_serving_cert_free(out);
    }
    strbuf_free(&sb);
    ca__material_put(m);
    sk_GENERAL_NAME_pop_free(san, GENERAL_NAME_free);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return rc;
}

void ca_serving_cert_free(ca_serving_cert *s)
{
    if (!s) {
        return;
    }
    free(s->cert_chain_pem);
    ca__free_secret(s->key_pem);
    free(s->root_pem);
    memset(s, 0, sizeof(*s));
}
