/* ca_service: Istio's IstioCertificateService.CreateCertificate, backed by the built-in CA
 * (ca.h). Transport-neutral: the caller (pilot/ca_setup.c registers it as a unary method
 * of the xDS gRPC server) describes who is asking in a ca_caller.
 *
 * Who may ask, first that succeeds:
 *   1. a verified client certificate whose URI SAN is spiffe://<our trust domain>/ns/<ns>/sa/<sa>
 *      (a workload renewing with the certificate it already holds);
 *   2. a Kubernetes service account JWT in "authorization: Bearer", checked by the
 *      TokenReview callback with audience "istio-ca".
 * Anything else is UNAUTHENTICATED (16) and nothing is signed. The issued certificate names
 * exactly the authenticated identity.
 *
 * Metrics (pilot/obs/metrics.h, Istio's names): citadel_server_csr_count,
 * citadel_server_success_cert_issuance_count, citadel_server_authentication_failure_count,
 * citadel_server_csr_parsing_err_count, citadel_server_csr_sign_err_count, and the gauge
 * citadel_server_root_cert_expiry_timestamp.
 *
 * Threads: the handler runs on gRPC server threads, concurrently; the service holds no
 * mutable state of its own (the CA and metrics lock internally).
 */
#ifndef CERTS_CA_SERVICE_H
#define CERTS_CA_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "certs/ca.h"

#define CA_SERVICE_METHOD "/istio.v1.auth.IstioCertificateService/CreateCertificate"
#define CA_TOKEN_AUDIENCE "istio-ca"

/* Checks a bearer token (TokenReview against the API server, implemented in k8s/).
 * Accept only status.authenticated true, no status.error, groups containing
 * system:serviceaccounts and username system:serviceaccount:<ns>:<sa>.
 * Returns 0 with *ns and *sa set to heap strings (the service frees them), or a negative
 * value with a reason in err (no secret in it: never echo the token). Called on a gRPC
 * server thread; may block for the API round trip. */
typedef int (*ca_token_review_fn)(void *ud, const char *token, const char *audience, char **ns,
                                  char **sa, char *err, size_t errlen);

/* Who is asking, as the transport saw it. Borrowed for the call. */
typedef struct ca_caller {
    const char *peer;                 /* "ipv4:127.0.0.1:1234", for logs */
    const char *bearer_token;         /* from "authorization: Bearer ...", or NULL */
    const char *const *peer_uri_sans; /* URI SANs of a verified client certificate */
    size_t npeer_uri_sans;
    bool secure; /* the call came over TLS */
} ca_caller;

typedef struct ca_service ca_service;

/* c is borrowed and must outlive the service. review may be NULL (then only client
 * certificates authenticate). Registers the metrics on first use. */
ca_service *ca_service_new(ca *c, ca_token_review_fn review, void *review_ud);
void ca_service_free(ca_service *s);

/* Refreshes citadel_server_root_cert_expiry_timestamp (call after ca_rotate_if_needed). */
void ca_service_update_root_metric(ca_service *s);

/* Answers one CreateCertificate request (CA_SERVICE_METHOD); ud is the ca_service.
 * Returns 0 (OK) with *resp an IstioCertificateResponse (malloc'd), or
 * 3 INVALID_ARGUMENT (undecodable request, bad CSR, TTL above the maximum),
 * 16 UNAUTHENTICATED, 13 INTERNAL, with *status_message (malloc'd) saying why. */
int ca_service_create_certificate(void *ud, const ca_caller *auth, const uint8_t *req,
                                  size_t req_len, uint8_t **resp, size_t *resp_len,
                                  char **status_message);

#endif
