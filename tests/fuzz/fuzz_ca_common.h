/* fuzz_ca_common: one in-memory CA per process for the certs targets (EC P-256: quick to
 * create and to sign with), and the checks every issued chain must pass. */
#ifndef TESTS_FUZZ_CA_COMMON_H
#define TESTS_FUZZ_CA_COMMON_H

#include <stdbool.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "certs/ca.h"

#define FUZZ_CA_NS "default"
#define FUZZ_CA_SA "fuzz"
#define FUZZ_CA_URI "spiffe://cluster.local/ns/" FUZZ_CA_NS "/sa/" FUZZ_CA_SA

static ca *fuzz_ca(void)
{
    static ca *c;
    if (c == NULL) {
        ca_opts o = {.cacerts_dir = "", .key_type = CA_KEY_EC_P256};
        char err[256] = "";
        fuzz_quiet();
        if (ca_new(&o, &c, err, sizeof(err)) != CA_OK) {
            fprintf(stderr, "ca_new: %s\n", err);
            abort();
        }
    }
    return c;
}

/* The leaf names exactly the authenticated identity, whatever the CSR asked for, and is
 * signed by the chain's root. */
static void fuzz_check_chain(char *const *chain, size_t n)
{
    FUZZ_CHECK(n >= 2);
    BIO *b = BIO_new_mem_buf(chain[0], -1);
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(chain[n - 1], -1);
    X509 *root = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    FUZZ_CHECK(leaf != NULL && root != NULL);
    FUZZ_CHECK(X509_verify(leaf, X509_get0_pubkey(root)) == 1 || n > 2);
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    FUZZ_CHECK(names != NULL && sk_GENERAL_NAME_num(names) == 1);
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
    FUZZ_CHECK(gn->type == GEN_URI);
    const ASN1_IA5STRING *u = gn->d.uniformResourceIdentifier;
    FUZZ_CHECK((size_t)ASN1_STRING_length(u) == strlen(FUZZ_CA_URI) &&
               memcmp(ASN1_STRING_get0_data(u), FUZZ_CA_URI, strlen(FUZZ_CA_URI)) == 0);
    GENERAL_NAMES_free(names);
    X509_free(leaf);
    X509_free(root);
}

#endif
