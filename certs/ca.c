/* ca: the root of the built-in CA — load (plug-in directory, imported Secret, state
 * directory), create (self-signed), rotate (same key), export. Signing is in sign.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "certs/ca_internal.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

#define CA_LOG "ca"
/* A PEM file larger than this is not a certificate bundle we want to parse. */
#define CA_MAX_PEM_FILE (1024 * 1024)
/* Root-cert bundles and plug-in chains hold a handful of certificates, never hundreds. */
#define CA_MAX_CHAIN_CERTS 16

int ca__fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ca__free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* The OpenSSL error queue as a short string (and cleared), for error messages. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "unknown error");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* What a PEM writer put in memory BIO b, as a heap string; frees b. NULL when b is NULL
 * or the write failed (written != 1). */
static char *bio_pem(BIO *b, int written)
{
    char *out = NULL;
    if (b && written == 1) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        out = xstrndup(p, (size_t)n);
    }
    BIO_free(b);
    return out;
}

char *ca__x509_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    return bio_pem(b, b ? PEM_write_bio_X509(b, x) : 0);
}

char *ca__key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_secmem());
    return bio_pem(b, b ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) : 0);
}

int ca__set_random_serial(X509 *x)
{
    unsigned char raw[16];
    int rc = -1;
    BIGNUM *bn = NULL;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        goto out;
    }
    /* Positive and exactly 128 bits of randomness at most: clear the top bit so the DER
     * INTEGER needs no sign byte (RFC 5280 caps serials at 20 octets) and make it
     * non-zero. */
    raw[0] &= 0x7f;
    raw[0] |= 0x40;
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
        goto out;
    }
    rc = 0;
out:
    BN_free(bn);
    return rc;
}

const EVP_MD *ca__digest_for(EVP_PKEY *k)
{
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC && EVP_PKEY_get_bits(k) > 256) {
        return EVP_sha384();
    }
    return EVP_sha256();
}

static void material_free(ca_material *m)
{
    if (!m) {
        return;
    }
    EVP_PKEY_free(m->key);
    X509_free(m->cert);
    X509_free(m->root);
    free(m->ca_cert_pem);
    free(m->root_pem);
    free(m->cert_chain_pem);
    ca_chain_free(m->tail, m->ntail);
    free(m);
}

ca_material *ca__material_get(ca *c)
{
    pthread_mutex_lock(&c->mu);
    ca_material *m = c->cur;
    atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return m;
}

void ca__material_put(ca_material *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        material_free(m);
    }
}

/* Never prompt on a terminal for an encrypted key: refuse it instead. */
static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Parses every certificate of a PEM bundle. Returns a stack (possibly empty) or NULL with
 * err set when a block is not a certificate or there are too many. */
static STACK_OF(X509) * parse_pem_certs(const char *pem, const char *what, char *err, size_t errlen)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!sk || !b) {
        goto fail;
    }
    for (;;) {
        /* Peek for another PEM block before parsing, so trailing whitespace is fine but a
         * corrupt block is an error rather than a silent stop. */
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long len = 0;
        if (PEM_read_bio(b, &name, &header, &data, &len) != 1) {
            ERR_clear_error();
            break;
        }
        bool is_cert = strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0;
        const unsigned char *p = data;
        X509 *x = is_cert ? d2i_X509(NULL, &p, len) : NULL;
        bool trailing = x && p != data + len;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (!x || trailing) {
            X509_free(x);
            ca__fail(CA_EINVAL, err, errlen, "%s: block %d is not a valid certificate", what,
                     sk_X509_num(sk) + 1);
            goto fail;
        }
        if (sk_X509_num(sk) >= CA_MAX_CHAIN_CERTS) {
            X509_free(x);
            ca__fail(CA_EINVAL, err, errlen, "%s: more than %d certificates", what,
                     CA_MAX_CHAIN_CERTS);
            goto fail;
        }
        sk_X509_push(sk, x);
    }
    BIO_free(b);
    return sk;
fail:
    BIO_free(b);
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
    return NULL;
}

static char *certs_pem(STACK_OF(X509) * sk)
{
    strbuf sb;
    strbuf_init(&sb, 0);
    strbuf_appends(&sb, "");
    for (int i = 0; i < sk_X509_num(sk); i++) {
        char *p = ca__x509_pem(sk_X509_value(sk, i));
        if (!p) {
            strbuf_free(&sb);
            return NULL;
        }
        strbuf_appends(&sb, p);
        free(p);
    }
    return strbuf_steal(&sb, NULL);
}

/* Builds one generation from the four PEM texts of a cacerts directory or Secret and
 * checks that they make a usable CA: the key matches ca-cert, ca-cert is a CA, and ca-cert
 * chains to root-cert through cert-chain. */
static int material_from_pems(const char *ca_cert, const char *ca_key, const char *root_cert,
                              const char *cert_chain, const char *origin, ca_material **out,
                              char *err, size_t errlen)
{
    int rc = CA_EINVAL;
    char why[256];
    ca_material *m = xcalloc(1, sizeof(*m));
    atomic_init(&m->refs, 1);
    STACK_OF(X509) *certs = NULL, *roots = NULL, *chain = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *vctx = NULL;
    BIO *kb = NULL;

    if (!(certs = parse_pem_certs(ca_cert, "ca-cert.pem", err, errlen))) {
        goto out;
    }
    if (sk_X509_num(certs) < 1) {
        ca__fail(rc, err, errlen, "%s: ca-cert.pem holds no certificate", origin);
        goto out;
    }
    m->cert = sk_X509_shift(certs); /* the stack's reference moves to m->cert */

    kb = BIO_new_mem_buf(ca_key, -1);
    m->key = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_password_cb, NULL) : NULL;
    if (!m->key) {
        /* The reason is safe to show: OpenSSL never echoes key bytes. */
        ca__fail(rc, err, errlen, "%s: ca-key.pem is not an unencrypted private key (%s)", origin,
                 ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (X509_check_private_key(m->cert, m->key) != 1) {
        ERR_clear_error();
        ca__fail(rc, err, errlen, "%s: ca-key.pem does not match ca-cert.pem", origin);
        goto out;
    }
    if (X509_check_ca(m->cert) < 1) {
        ca__fail(rc, err, errlen, "%s: ca-cert.pem is not a CA certificate", origin);
        goto out;
    }
    if (!(roots = parse_pem_certs(root_cert, "root-cert.pem", err, errlen))) {
        goto out;
    }
    if (sk_X509_num(roots) < 1) {
        ca__fail(rc, err, errlen, "%s: root-cert.pem holds no certificate", origin);
        goto out;
    }
    m->root = sk_X509_value(roots, 0);
    X509_up_ref(m->root);
    if (!(chain = parse_pem_certs(cert_chain ? cert_chain : "", "cert-chain.pem", err, errlen))) {
        goto out;
    }

    /* ca-cert must reach a root of root-cert.pem. Time is not checked here: an expired
     * plug-in CA is reported below, not refused, so the operator sees why leaves fail. */
    store = X509_STORE_new();
    vctx = X509_STORE_CTX_new();
    if (!store || !vctx) {
        rc = ca__fail(CA_EINTERNAL, err, errlen, "%s: out of memory", origin);
        goto out;
    }
    for (int i = 0; i < sk_X509_num(roots); i++) {
        X509_STORE_add_cert(store, sk_X509_value(roots, i));
    }
    X509_STORE_set_flags(store, X509_V_FLAG_NO_CHECK_TIME);
    if (X509_STORE_CTX_init(vctx, store, m->cert, chain) != 1 || X509_verify_cert(vctx) != 1) {
        int e = X509_STORE_CTX_get_error(vctx);
        ERR_clear_error();
        ca__fail(rc, err, errlen,
                 "%s: ca-cert.pem does not chain to root-cert.pem via cert-chain.pem: %s", origin,
                 X509_verify_cert_error_string(e));
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(m->cert)) <= 0) {
        LOG_WARN(CA_LOG, "%s: ca-cert.pem has expired: issued certificates will not verify",
                 origin);
    }

    m->self_signed = X509_cmp(m->cert, m->root) == 0;
    m->ca_cert_pem = ca__x509_pem(m->cert);
    m->root_pem = certs_pem(roots);
    m->cert_chain_pem = certs_pem(chain);
    if (!m->ca_cert_pem || !m->root_pem || !m->cert_chain_pem) {
        rc = ca__fail(CA_EINTERNAL, err, errlen, "%s: cannot encode certificates", origin);
        goto out;
    }
    /* Response tail: the signing certificate when it is an intermediate, then what
     * cert-chain.pem adds (skipping repeats of ca-cert and any root), then the roots. */
    m->tail = xcalloc((size_t)sk_X509_num(chain) + 2, sizeof(char *));
    if (!m->self_signed) {
        m->tail[m->ntail++] = xstrdup(m->ca_cert_pem);
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        bool skip = X509_cmp(x, m->cert) == 0;
        for (int j = 0; !skip && j < sk_X509_num(roots); j++) {
            skip = X509_cmp(x, sk_X509_value(roots, j)) == 0;
        }
        if (!skip) {
            m->tail[m->ntail++] = ca__x509_pem(x);
        }
    }
    m->tail[m->ntail++] = xstrdup(m->root_pem);
    for (size_t i = 0; i < m->ntail; i++) {
        if (!m->tail[i]) {
            rc = ca__fail(CA_EINTERNAL, err, errlen, "%s: cannot encode chain", origin);
            goto out;
        }
    }
    rc = CA_OK;
out:
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    BIO_free(kb);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(roots, X509_free);
    sk_X509_pop_free(chain, X509_free);
    if (rc != CA_OK) {
        material_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

static EVP_PKEY *gen_key(ca_key_type t)
{
    if (t == CA_KEY_EC_P256) {
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

/* A self-signed root for key, subject subj (a rotation keeps the old one) or else
 * O=<org>, valid from now - skew to now + ttl. */
static X509 *make_root(EVP_PKEY *key, const X509_NAME *subj, const char *org, time_t now,
                       int64_t ttl_s)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    X509V3_CTX v3;
    bool ok = false;
    if (!x || X509_set_version(x, X509_VERSION_3) != 1 || ca__set_random_serial(x) != 0) {
        goto out;
    }
    name = subj ? X509_NAME_dup(subj) : X509_NAME_new();
    if (!name ||
        (!subj && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org,
                                             -1, -1, 0) != 1) ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1) {
        goto out;
    }
    if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -CA_CLOCK_SKEW_S, &now) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), (int)(ttl_s / 86400), (long)(ttl_s % 86400),
                          &now) ||
        X509_set_pubkey(x, key) != 1) {
        goto out;
    }
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        add_ext(x, &v3, NID_subject_key_identifier, "hash")) {
        goto out;
    }
    if (X509_sign(x, key, ca__digest_for(key)) <= 0) {
        goto out;
    }
    ok = true;
out:
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* A generation for a self-signed root: cert is root, chain empty. */
static int material_self_signed(EVP_PKEY *key, X509 *root, ca_material **out, char *err,
                                size_t errlen)
{
    int rc = CA_EINTERNAL;
    char *cert_pem = ca__x509_pem(root);
    char *key_pem = ca__key_pem(key);
    if (!cert_pem || !key_pem) {
        ca__fail(rc, err, errlen, "cannot encode the self-signed root");
        *out = NULL;
        goto out;
    }
    rc = material_from_pems(cert_pem, key_pem, cert_pem, "", "self-signed root", out, err, errlen);
out:
    free(cert_pem);
    ca__free_secret(key_pem);
    return rc;
}

/* Reads a whole (small) file. Returns a heap string, or NULL with errno set (ENOENT when
 * absent, EFBIG when larger than CA_MAX_PEM_FILE). */
static char *read_small_file(const char *path)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        goto fail;
    }
    if (st.st_size > CA_MAX_PEM_FILE) {
        errno = EFBIG;
        goto fail;
    }
    /* Sized by fstat but read to EOF in case the file changes under us. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = xmalloc(cap);
    for (;;) {
        if (len + 1 == cap) {
            if (cap > CA_MAX_PEM_FILE) {
                errno = EFBIG;
                goto fail;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        errno = EINVAL;
        goto fail;
    }
    close(fd);
    return buf;
fail : {
    int e = errno;
    if (buf) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
    }
    close(fd);
    errno = e;
    return NULL;
}
}

/* Writes path atomically (temporary file, fsync, rename) with the given mode. */
static int write_file_atomic(const char *dir, const char *name, const char *data, mode_t mode,
                             char *err, size_t errlen)
{
    int rc = CA_EINTERNAL;
    char *path = xasprintf("%s/%s", dir, name);
    char *tmp = xasprintf("%s/.%s.tmp", dir, name);
    unlink(tmp);
    /* Created with the final mode from the start: the key is never world-readable, not
     * even for an instant. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        ca__fail(rc, err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ca__fail(rc, err, errlen, "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        ca__fail(rc, err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        ca__fail(rc, err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = CA_OK;
out:
    free(path);
    free(tmp);
    return rc;
}

/* Saves a generation to the state directory in the istio-ca-secret layout. The key is
 * written only when write_key (a rotation keeps the file already there). */
static int save_state(const char *dir, const ca_material *m, bool write_key, char *err,
                      size_t errlen)
{
    int rc;
    if (write_key) {
        char *key_pem = ca__key_pem(m->key);
        if (!key_pem) {
            return ca__fail(CA_EINTERNAL, err, errlen, "cannot encode the root key");
        }
        rc = write_file_atomic(dir, "ca-key.pem", key_pem, 0600, err, errlen);
        ca__free_secret(key_pem);
        if (rc != CA_OK) {
            return rc;
        }
    }
    if ((rc = write_file_atomic(dir, "cert-chain.pem", m->cert_chain_pem, 0644, err, errlen)) !=
            CA_OK ||
        (rc = write_file_atomic(dir, "root-cert.pem", m->root_pem, 0644, err, errlen)) != CA_OK) {
        return rc;
    }
    /* ca-cert.pem last: its presence marks a complete state directory. */
    return write_file_atomic(dir, "ca-cert.pem", m->ca_cert_pem, 0644, err, errlen);
}

typedef struct pem_files {
    char *ca_cert, *ca_key, *root_cert, *cert_chain;
} pem_files;

static void pem_files_free(pem_files *f)
{
    free(f->ca_cert);
    ca__free_secret(f->ca_key);
    free(f->root_cert);
    free(f->cert_chain);
    memset(f, 0, sizeof(*f));
}

/* Reads the four files of a cacerts-style directory. cert-chain.pem may be absent.
 * Returns CA_OK, or CA_EINVAL naming the missing or unreadable file. */
static int read_pem_dir(const char *dir, pem_files *f, char *err, size_t errlen)
{
    static const char *names[] = {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"};
    char **slots[] = {&f->ca_cert, &f->ca_key, &f->root_cert, &f->cert_chain};
    for (size_t i = 0; i < 4; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        *slots[i] = read_small_file(path);
        int e = errno;
        if (!*slots[i] && i == 3 && e == ENOENT) {
            *slots[i] = xstrdup("");
        } else if (!*slots[i]) {
            ca__fail(CA_EINVAL, err, errlen, "%s: %s", path, strerror(e));
            free(path);
            pem_files_free(f);
            return CA_EINVAL;
        }
        free(path);
    }
    return CA_OK;
}

static bool file_exists(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    bool ok = access(path, F_OK) == 0;
    free(path);
    return ok;
}

static int create_self_signed(ca *c, ca_key_type kt, ca_material **out, char *err, size_t errlen)
{
    int rc = CA_EINTERNAL;
    char why[256];
    X509 *root = NULL;
    EVP_PKEY *key = gen_key(kt);
    *out = NULL;
    if (!key) {
        ca__fail(rc, err, errlen, "root key generation failed: %s", ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (!(root = make_root(key, NULL, c->trust_domain, time(NULL), c->root_ttl_s))) {
        ca__fail(rc, err, errlen, "root certificate creation failed: %s",
                 ssl_reason(why, sizeof(why)));
        goto out;
    }
    rc = material_self_signed(key, root, out, err, errlen);
out:
    X509_free(root);
    EVP_PKEY_free(key);
    return rc;
}

/* Config-directory mode: load the root kept in dir, or create it there on first start. */
static int load_or_create_state(ca *c, const ca_opts *o, ca_material **out, char *err,
                                size_t errlen)
{
    int rc;
    pem_files f = {0};
    const char *dir = o->state_dir;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return ca__fail(CA_EINTERNAL, err, errlen, "state directory %s: %s", dir, strerror(errno));
    }
    if (file_exists(dir, "ca-key.pem")) {
        char *kpath = xasprintf("%s/ca-key.pem", dir);
        struct stat st;
        if (stat(kpath, &st) == 0 && (st.st_mode & 077)) {
            LOG_WARN(CA_LOG, "%s is readable by group or others (mode %03o); tightening to 0600",
                     kpath, (unsigned)(st.st_mode & 0777));
            chmod(kpath, 0600);
        }
        free(kpath);
        /* A key without its certificate is left alone for the operator to look at:
         * creating a new root over it would silently orphan every issued certificate. */
        if ((rc = read_pem_dir(dir, &f, err, errlen)) != CA_OK) {
            return rc;
        }
        char origin[512];
        snprintf(origin, sizeof(origin), "state directory %s", dir);
        rc = material_from_pems(f.ca_cert, f.ca_key, f.root_cert, f.cert_chain, origin, out, err,
                                errlen);
        pem_files_free(&f);
        if (rc == CA_OK) {
            LOG_INFO(CA_LOG, "loaded the self-signed root from %s", dir);
        }
        return rc;
    }
    if ((rc = create_self_signed(c, o->key_type, out, err, errlen)) != CA_OK) {
        return rc;
    }
    if ((rc = save_state(dir, *out, true, err, errlen)) != CA_OK) {
        material_free(*out);
        *out = NULL;
        return rc;
    }
    LOG_INFO(CA_LOG, "created a self-signed root (%s) in %s",
             o->key_type == CA_KEY_EC_P256 ? "ECDSA P-256" : "RSA 2048", dir);
    return CA_OK;
}

int ca_new(const ca_opts *o, ca **out, char *err, size_t errlen)
{
    int rc = CA_EINVAL;
    ca_material *m = NULL;
    ca *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->trust_domain =
        xstrdup(o->trust_domain && *o->trust_domain ? o->trust_domain : CA_DEFAULT_TRUST_DOMAIN);
    c->root_ttl_s = o->root_ttl_s > 0 ? o->root_ttl_s : CA_DEFAULT_ROOT_TTL_S;
    c->default_ttl_s = o->default_ttl_s > 0 ? o->default_ttl_s : CA_DEFAULT_WORKLOAD_TTL_S;
    c->max_ttl_s = o->max_ttl_s > 0 ? o->max_ttl_s : CA_DEFAULT_MAX_WORKLOAD_TTL_S;
    if (c->default_ttl_s > c->max_ttl_s) {
        ca__fail(rc, err, errlen, "default workload TTL %llds exceeds the maximum %llds",
                 (long long)c->default_ttl_s, (long long)c->max_ttl_s);
        goto out;
    }
    if (!ca_valid_k8s_name(c->trust_domain, 253)) {
        ca__fail(rc, err, errlen, "trust domain \"%s\" is not a valid DNS name", c->trust_domain);
        goto out;
    }

    const char *plug = o->cacerts_dir ? o->cacerts_dir : CA_DEFAULT_CACERTS_DIR;
    if (*plug && file_exists(plug, "ca-key.pem")) {
        pem_files f = {0};
        char origin[512];
        snprintf(origin, sizeof(origin), "plug-in CA %s", plug);
        if ((rc = read_pem_dir(plug, &f, err, errlen)) != CA_OK) {
            goto out;
        }
        rc = material_from_pems(f.ca_cert, f.ca_key, f.root_cert, f.cert_chain, origin, &m, err,
                                errlen);
        pem_files_free(&f);
        c->source = CA_SOURCE_PLUGIN;
        if (rc == CA_OK) {
            LOG_INFO(CA_LOG, "using the plug-in CA certificates in %s", plug);
        }
    } else if (o->import) {
        const ca_pem_set *s = o->import;
        if (!s->ca_cert || !s->ca_key || !s->root_cert) {
            rc = ca__fail(CA_EINVAL, err, errlen,
                          "istio-ca-secret: ca-cert.pem, ca-key.pem and root-cert.pem are "
                          "required");
            goto out;
        }
        rc = material_from_pems(s->ca_cert, s->ca_key, s->root_cert, s->cert_chain,
                                "istio-ca-secret", &m, err, errlen);
        c->source = CA_SOURCE_IMPORTED;
    } else if (o->state_dir && *o->state_dir) {
        c->state_dir = xstrdup(o->state_dir);
        rc = load_or_create_state(c, o, &m, err, errlen);
        c->source = CA_SOURCE_STATE_DIR;
    } else {
        rc = create_self_signed(c, o->key_type, &m, err, errlen);
        c->source = CA_SOURCE_CREATED;
        if (rc == CA_OK) {
            LOG_INFO(CA_LOG, "created an in-memory self-signed root for %s", c->trust_domain);
        }
    }
    if (rc != CA_OK) {
        goto out;
    }
    c->cur = m;
out:
    if (rc != CA_OK) {
        ca_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

void ca_free(ca *c)
{
    if (!c) {
        return;
    }
    ca__material_put(c->cur);
    pthread_mutex_destroy(&c->mu);
    free(c->trust_domain);
    free(c->state_dir);
    free(c);
}

ca_source ca_get_source(const ca *c)
{
    return c->source;
}

const char *ca_trust_domain(const ca *c)
{
    return c->trust_domain;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return timegm(&tm);
}

time_t ca_root_not_after(ca *c)
{
    ca_material *m = ca__material_get(c);
    time_t t = asn1_to_time(X509_get0_notAfter(m->root));
    ca__material_put(m);
    return t;
}

char *ca_root_pem(ca *c)
{
    ca_material *m = ca__material_get(c);
    char *s = xstrdup(m->root_pem);
    ca__material_put(m);
    return s;
}

int ca_export(ca *c, ca_pem_set *out)
{
    memset(out, 0, sizeof(*out));
    ca_material *m = ca__material_get(c);
    char *key = ca__key_pem(m->key);
    if (!key) {
        ca__material_put(m);
        return CA_EINTERNAL;
    }
    out->ca_cert = xstrdup(m->ca_cert_pem);
    out->ca_key = key;
    out->root_cert = xstrdup(m->root_pem);
    out->cert_chain = xstrdup(m->cert_chain_pem);
    out->key_pem = xstrdup("");
    ca__material_put(m);
    return CA_OK;
}

void ca_pem_set_free(ca_pem_set *s)
{
    if (!s) {
        return;
    }
    free(s->ca_cert);
    ca__free_secret(s->ca_key);
    free(s->root_cert);
    free(s->cert_chain);
    ca__free_secret(s->key_pem);
    memset(s, 0, sizeof(*s));
}

int ca_rotate_if_needed(ca *c, time_t now, bool *rotated, char *err, size_t errlen)
{
    int rc = CA_OK;
    X509 *root = NULL;
    ca_material *next = NULL;
    ca_material *m = ca__material_get(c);
    *rotated = false;
    if (c->source == CA_SOURCE_PLUGIN || !m->self_signed) {
        goto out;
    }
    time_t nb = asn1_to_time(X509_get0_notBefore(m->cert));
    time_t na = asn1_to_time(X509_get0_notAfter(m->cert));
    double life = difftime(na, nb), left = difftime(na, now);
    if (life > 0 && left >= CA_ROOT_ROTATE_FRACTION * life) {
        goto out;
    }
    /* Same key and subject: leaves issued under the old root keep verifying (their issuer
     * name and authority key id still match), so nothing has to be reissued at once. */
    if (!(root = make_root(m->key, X509_get_subject_name(m->cert), c->trust_domain, now,
                           c->root_ttl_s))) {
        char why[256];
        rc = ca__fail(CA_EINTERNAL, err, errlen, "root rotation failed: %s",
                      ssl_reason(why, sizeof(why)));
        goto out;
    }
    if ((rc = material_self_signed(m->key, root, &next, err, errlen)) != CA_OK) {
        goto out;
    }
    if (c->state_dir && (rc = save_state(c->state_dir, next, false, err, errlen)) != CA_OK) {
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    ca_material *old = c->cur;
    c->cur = next;
    next = NULL;
    pthread_mutex_unlock(&c->mu);
    ca__material_put(old);
    *rotated = true;
    LOG_INFO(CA_LOG, "rotated the self-signed root (same key); it was due to expire at %lld",
             (long long)na);
out:
    X509_free(root);
    ca__material_put(next);
    ca__material_put(m);
    return rc;
}
