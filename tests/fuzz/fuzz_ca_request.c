/* fuzz_ca_request: bytes as the body of IstioCertificateService/CreateCertificate ->
 * ca_service_create_certificate, authenticated by a client certificate whose URI SAN is a
 * fixed identity (the path a workload renewing its certificate takes). Covers the
 * IstioCertificateRequest decoding (csr, validity_duration, metadata) and the CSR path.
 *
 * Properties: the status is one of the documented codes; OK comes with a response that
 * decodes and whose chain names the caller; any other status with a message and no body.
 */
#include "ca.pb-c.h"
#include "fuzz_ca_common.h"
#include "certs/ca_service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ca_service *svc;
    static const char *const sans[] = {FUZZ_CA_URI};
    const ca_caller auth = {
        .peer = "ipv4:127.0.0.1:40000", .peer_uri_sans = sans, .npeer_uri_sans = 1};
    uint8_t *resp = NULL;
    size_t rlen = 0;
    char *msg = NULL;

    if (svc == NULL)
        svc = ca_service_new(fuzz_ca(), NULL, NULL);
    int code = ca_service_create_certificate(svc, &auth, data, size, &resp, &rlen, &msg);
    FUZZ_CHECK(code == 0 || code == 3 || code == 13 || code == 16);
    FUZZ_CHECK(code != 16); /* the identity is fixed and valid */
    if (code == 0) {
        FUZZ_CHECK(msg == NULL && resp != NULL);
        Istio__V1__Auth__IstioCertificateResponse *r =
            istio__v1__auth__istio_certificate_response__unpack(NULL, rlen, resp);
        FUZZ_CHECK(r != NULL);
        fuzz_check_chain(r->cert_chain, r->n_cert_chain);
        istio__v1__auth__istio_certificate_response__free_unpacked(r, NULL);
    } else {
        FUZZ_CHECK(resp == NULL && msg != NULL && msg[0] != '\0');
    }
    free(resp);
    free(msg);
    return 0;
}
