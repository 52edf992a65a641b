/* ca_service: CreateCertificate — unpack, authenticate, sign, pack. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.pb-c.h"
#include "certs/ca_service.h"
#include "pilot/base/log.h"
#include "pilot/base/pbdepth.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"

#define CA_SVC_LOG "ca"
/* A request is a CSR (bounded by sign.c at 64 KiB) plus a little metadata. */
#define CA_MAX_REQUEST (128 * 1024)
/* Service account JWTs are around a kilobyte; refuse absurd ones before any round trip. */
#define CA_MAX_TOKEN (16 * 1024)

/* gRPC status codes (grpc/status.h), spelled out so this file needs no gRPC header. */
enum {
    CA_GRPC_OK = 0,
    CA_GRPC_INVALID_ARGUMENT = 3,
    CA_GRPC_INTERNAL = 13,
    CA_GRPC_UNAUTHENTICATED = 16,
};

struct ca_service {
    ca *ca;
    ca_token_review_fn review;
    void *review_ud;
};

/* Metrics are process-wide (one registry): registered once whatever the number of
 * services. */
static struct {
    metric *csr;
    metric *success;
    metric *auth_fail;
    metric *parse_err;
    metric *sign_err;
    metric *root_expiry;
} ca_metrics;
static pthread_once_t ca_metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void)
{
    ca_metrics.csr = metric_counter("citadel_server_csr_count",
                                    "The number of CSRs received by Citadel server.", NULL);
    ca_metrics.success = metric_counter("citadel_server_success_cert_issuance_count",
                                        "The number of certificates issuances that have "
                                        "succeeded.",
                                        NULL);
    ca_metrics.auth_fail = metric_counter("citadel_server_authentication_failure_count",
                                          "The number of authentication failures.", NULL);
    ca_metrics.parse_err = metric_counter("citadel_server_csr_parsing_err_count",
                                          "The number of errors occurred when parsing the "
                                          "CSR.",
                                          NULL);
    ca_metrics.sign_err =
        metric_counter("citadel_server_csr_sign_err_count",
                       "The number of errors occurred when signing the CSR.", NULL);
    ca_metrics.root_expiry = metric_gauge("citadel_server_root_cert_expiry_timestamp",
                                          "The unix timestamp, in seconds, when Citadel root "
                                          "cert will expire. A negative time indicates the "
                                          "cert is expired.",
                                          NULL);
}

ca_service *ca_service_new(ca *c, ca_token_review_fn review, void *review_ud)
{
    pthread_once(&ca_metrics_once, metrics_init);
    ca_service *s = xcalloc(1, sizeof(*s));
    s->ca = c;
    s->review = review;
    s->review_ud = review_ud;
    ca_service_update_root_metric(s);
    return s;
}

void ca_service_free(ca_service *s)
{
    free(s);
}

void ca_service_update_root_metric(ca_service *s)
{
    metric_set(ca_metrics.root_expiry, NULL, (double)ca_root_not_after(s->ca));
}

/* Finds the caller's identity. Returns 0 with *ns and *sa (heap) and *how naming the method,
 * or -1 with a reason in why. */
static int authenticate(ca_service *s, const ca_caller *auth, char **ns, char **sa,
                        const char **how, char *why, size_t whylen)
{
    *ns = *sa = NULL;
    size_t nsans = auth ? auth->npeer_uri_sans : 0;
    for (size_t i = 0; i < nsans; i++) {
        if (auth->peer_uri_sans[i] &&
            ca_parse_spiffe(s->ca, auth->peer_uri_sans[i], ns, sa) == CA_OK) {
            *how = "client certificate";
            return 0;
        }
    }
    const char *tok = auth ? auth->bearer_token : NULL;
    if (!tok || !*tok) {
        snprintf(why, whylen, "%s",
                 nsans ? "client certificate has no SPIFFE identity in this trust domain and "
                         "no bearer token was given"
                       : "no client certificate and no bearer token");
        return -1;
    }
    if (!s->review) {
        snprintf(why, whylen, "bearer tokens are not accepted (no TokenReview configured)");
        return -1;
    }
    if (strnlen(tok, CA_MAX_TOKEN + 1) > CA_MAX_TOKEN) {
        snprintf(why, whylen, "bearer token longer than %d bytes", CA_MAX_TOKEN);
        return -1;
    }
    char err[256] = "";
    if (s->review(s->review_ud, tok, CA_TOKEN_AUDIENCE, ns, sa, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "token review failed: %s", err[0] ? err : "refused");
        goto fail;
    }
    /* The callback's answer goes into a URI: check it like any outside input. */
    if (!ca_valid_k8s_name(*ns, 63) || !ca_valid_k8s_name(*sa, 253)) {
        snprintf(why, whylen, "token review returned an invalid service account identity");
        goto fail;
    }
    *how = "token review";
    return 0;
fail:
    free(*ns);
    free(*sa);
    *ns = *sa = NULL;
    return -1;
}

int ca_service_create_certificate(void *ud, const ca_caller *auth, const uint8_t *req,
                                  size_t req_len, uint8_t **resp, size_t *resp_len,
                                  char **status_message)
{
    ca_service *s = ud;
    int code = CA_GRPC_INTERNAL;
    char why[512] = "";
    char *ns = NULL, *sa = NULL;
    char **chain = NULL;
    size_t nchain = 0;
    const char *how = "";
    const char *peer = auth && auth->peer ? auth->peer : "unknown peer";
    Istio__V1__Auth__IstioCertificateRequest *in = NULL;

    *resp = NULL;
    *resp_len = 0;
    *status_message = NULL;
    metric_add(ca_metrics.csr, NULL, 1);

    if (req_len > CA_MAX_REQUEST) {
        code = CA_GRPC_INVALID_ARGUMENT;
        snprintf(why, sizeof(why), "request of %zu bytes exceeds %d", req_len, CA_MAX_REQUEST);
        metric_add(ca_metrics.parse_err, NULL, 1);
        goto out;
    }
    /* metadata is a Struct: bound its nesting before protobuf-c's recursive unpack */
    if (pb_depth_ok(&istio__v1__auth__istio_certificate_request__descriptor, req, req_len,
                    PB_MAX_DEPTH))
        in = istio__v1__auth__istio_certificate_request__unpack(NULL, req_len, req);
    if (!in) {
        code = CA_GRPC_INVALID_ARGUMENT;
        snprintf(why, sizeof(why), "IstioCertificateRequest does not decode");
        metric_add(ca_metrics.parse_err, NULL, 1);
        goto out;
    }
    if (authenticate(s, auth, &ns, &sa, &how, why, sizeof(why)) != 0) {
        code = CA_GRPC_UNAUTHENTICATED;
        metric_add(ca_metrics.auth_fail, NULL, 1);
        goto out;
    }
    /* metadata (ImpersonatedIdentity for ztunnel) is not honoured: every certificate is
     * for the caller itself. */
    const char *csr = in->csr ? in->csr : "";
    int rc = ca_sign_csr(s->ca, csr, strlen(csr), ns, sa, in->validity_duration, &chain, &nchain,
                         why, sizeof(why));
    if (rc != CA_OK) {
        code = rc == CA_EINVAL ? CA_GRPC_INVALID_ARGUMENT : CA_GRPC_INTERNAL;
        metric_add(rc == CA_EINVAL ? ca_metrics.parse_err : ca_metrics.sign_err, NULL, 1);
        goto out;
    }

    Istio__V1__Auth__IstioCertificateResponse out =
        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
    out.n_cert_chain = nchain;
    out.cert_chain = chain;
    size_t n = istio__v1__auth__istio_certificate_response__get_packed_size(&out);
    *resp = xmalloc(n ? n : 1);
    *resp_len = istio__v1__auth__istio_certificate_response__pack(&out, *resp);
    metric_add(ca_metrics.success, NULL, 1);
    LOG_DEBUG(CA_SVC_LOG, "issued a certificate for spiffe://%s/ns/%s/sa/%s to %s (%s)",
              ca_trust_domain(s->ca), ns, sa, peer, how);
    code = CA_GRPC_OK;
out:
    if (code != CA_GRPC_OK) {
        if (code == CA_GRPC_UNAUTHENTICATED) {
            *status_message = xasprintf("request authenticate failure: %s", why);
        } else {
            *status_message = xstrdup(why[0] ? why : "certificate signing failed");
        }
        LOG_WARN(CA_SVC_LOG, "CreateCertificate from %s refused: %s", peer, *status_message);
    }
    ca_chain_free(chain, nchain);
    istio__v1__auth__istio_certificate_request__free_unpacked(in, NULL);
    free(ns);
    free(sa);
    return code;
}
