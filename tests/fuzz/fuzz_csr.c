/* fuzz_csr: bytes as a workload's CSR -> ca_sign_csr for a fixed identity. The CA
 * takes only the key from the CSR; whatever else the CSR says, a signed leaf must name
 * exactly spiffe://cluster.local/ns/default/sa/fuzz.
 *
 * Input: PEM text as a client sends it when it starts with "-----"; anything else is
 * taken as DER and wrapped in a CERTIFICATE REQUEST PEM first, so mutations reach the
 * ASN.1 (key types, curves, signatures) instead of dying in base64. */
#include <openssl/bio.h>

#include "fuzz_ca_common.h"

/* PEM-wraps der; returns a heap string (caller frees) and its length. */
static char *pem_wrap(const uint8_t *der, size_t n, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    char *p;
    FUZZ_CHECK(b != NULL);
    FUZZ_CHECK(PEM_write_bio(b, "CERTIFICATE REQUEST", "", der, (long)n) > 0);
    long l = BIO_get_mem_data(b, &p);
    out = malloc((size_t)l);
    FUZZ_CHECK(out != NULL);
    memcpy(out, p, (size_t)l); /* not NUL-terminated, like the wire */
    *len = (size_t)l;
    BIO_free(b);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **chain = NULL;
    size_t n = 0;
    char err[256];

    ca *c = fuzz_ca();
    char *wrapped = NULL;
    if (size > 0 && (size < 5 || memcmp(data, "-----", 5) != 0)) {
        wrapped = pem_wrap(data, size, &size);
        data = (const uint8_t *)wrapped;
    }
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    /* data is not NUL-terminated: the CA must go by size alone */
    int rc = ca_sign_csr(c, (const char *)data, size, FUZZ_CA_NS, FUZZ_CA_SA, 3600, &chain, &n, err,
                         sizeof(err));
    FUZZ_CHECK(rc == CA_OK || rc == CA_EINVAL || rc == CA_EINTERNAL);
    if (rc == CA_OK) {
        fuzz_check_chain(chain, n);
        ca_chain_free(chain, n);
    } else {
        FUZZ_CHECK(chain == NULL);
        FUZZ_CHECK(strnlen(err, sizeof(err)) > 0 && strnlen(err, sizeof(err)) < sizeof(err));
    }
    free(wrapped);
    return 0;
}
