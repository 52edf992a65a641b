/* ca_internal: what ca.c (root) and sign.c (issuing) share. Not for other modules. */
#ifndef CERTS_CA_INTERNAL_H
#define CERTS_CA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/ca.h"

/* One immutable generation of signing material. Refcounted: a signature in flight keeps
 * the generation it started with even if a rotation publishes the next one. */
typedef struct ca_material {
    atomic_int refs;
    EVP_PKEY *key;        /* signing key (ca-key.pem) */
    X509 *cert;           /* signing certificate (ca-cert.pem) */
    X509 *root;           /* first certificate of root-cert.pem */
    bool self_signed;     /* cert is the root: rotation applies */
    char *ca_cert_pem;    /* canonical PEM of cert */
    char *root_pem;       /* root-cert.pem, every certificate re-encoded */
    char *cert_chain_pem; /* cert-chain.pem as loaded (canonical), "" when none */
    /* What follows the leaf in every response: intermediates (one PEM each) then
     * root_pem as the last entry. */
    char **tail;
    size_t ntail;
} ca_material;

struct ca {
    pthread_mutex_t mu; /* guards cur */
    ca_material *cur;
    ca_source source;
    char *trust_domain;
    char *state_dir; /* NULL unless CA_SOURCE_STATE_DIR */
    int64_t root_ttl_s;
    int64_t default_ttl_s;
    int64_t max_ttl_s;
};

/* The current generation with one reference for the caller. */
ca_material *ca__material_get(ca *c);
void ca__material_put(ca_material *m);

/* Writes into err (if any) with snprintf; returns code, for `return ca__fail(...)`. */
int ca__fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A positive 128-bit random serial number set on x. Returns 0 or -1. */
int ca__set_random_serial(X509 *x);
/* The digest to sign with for key k (SHA-384 for EC keys above 256 bits, else SHA-256). */
const EVP_MD *ca__digest_for(EVP_PKEY *k);
/* PEM encodings as heap strings, NULL on failure. */
char *ca__x509_pem(X509 *x);
char *ca__key_pem(EVP_PKEY *k);
/* Frees a string holding a secret after wiping it. */
void ca__free_secret(char *s);

#endif
