/* fuzz_csr: bytes as a workload's CSR PEM -> ca_sign_csr for a fixed identity. The CA
 * takes only the key from the CSR; whatever else the CSR says, a signed leaf must name
 * exactly spiffe://cluster.local/ns/default/sa/fuzz. */
#include "fuzz_ca_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **chain = NULL;
    size_t n = 0;
    char err[256];

    ca *c = fuzz_ca();
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    /* data is not NUL-terminated: the CA must go by size alone */
    int rc = ca_sign_csr(c, (const char *)data, size, FUZZ_CA_NS, FUZZ_CA_SA, 3600, &chain, &n,
                         err, sizeof(err));
    FUZZ_CHECK(rc == CA_OK || rc == CA_EINVAL || rc == CA_EINTERNAL);
    if (rc == CA_OK) {
        fuzz_check_chain(chain, n);
        ca_chain_free(chain, n);
    } else {
        FUZZ_CHECK(chain == NULL);
        FUZZ_CHECK(strnlen(err, sizeof(err)) > 0 && strnlen(err, sizeof(err)) < sizeof(err));
    }
    return 0;
}
