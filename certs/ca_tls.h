/* ca_tls: TLS server credentials for istiod's secure gRPC port (--secureGRPCAddr), backed
 * by a serving certificate from our own CA.
 *
 * The certificate carries the DNS names istiod.istio-system.svc (+ .<domain>),
 * istiod.istio-system and istiod, and is renewed half-way through its life. gRPC asks for
 * the certificate through a config fetcher on every new connection: the fetcher answers
 * "unchanged" (a mutex and a time comparison) unless the certificate was renewed since it
 * last answered, so a renewal reaches new connections without a restart while existing
 * connections keep theirs.
 *
 * Clients may present a certificate (requested, not required: JWT-only clients exist); a
 * presented certificate must chain to our root, or the handshake fails.
 *
 * Threads: the fetcher runs on gRPC threads; ca_tls_renew_if_needed on any thread; one
 * mutex guards the current certificate.
 */
#ifndef CERTS_CA_TLS_H
#define CERTS_CA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "certs/ca.h"

struct grpc_server_credentials;
typedef struct ca_tls ca_tls;

/* c is borrowed and must outlive the ca_tls. domain: the cluster DNS suffix
 * ("cluster.local"); ttl_s <= 0: the CA's default workload TTL. Issues the first
 * certificate now. Returns NULL with err set when that fails. Calls grpc_init (balanced
 * in ca_tls_free). */
ca_tls *ca_tls_new(ca *c, const char *domain, int64_t ttl_s, char *err, size_t errlen);
void ca_tls_free(ca_tls *t);

/* New server credentials using the fetcher (the caller releases them with
 * grpc_server_credentials_release once the port is added). */
struct grpc_server_credentials *ca_tls_server_credentials(ca_tls *t);

/* Issues a new certificate when the current one is past its renew_at, or always when
 * force (after a root rotation, so the trust anchor given to gRPC follows). Returns true
 * when it renewed. */
bool ca_tls_renew_if_needed(ca_tls *t, bool force);

/* Copies of the certificate in use for servers other than gRPC (the webhooks on
 * --httpsAddr): the chain (leaf first) and the key as heap PEM strings the caller frees
 * (wipe the key). *gen (may be NULL) is bumped on every renewal, so a caller can tell
 * "unchanged" without comparing PEM. Returns 0, or -1 when no certificate exists. */
int ca_tls_export(ca_tls *t, char **cert_chain_pem, char **key_pem, uint64_t *gen);
/* The generation of the certificate in use (cheap: a mutex and a read). */
uint64_t ca_tls_generation(ca_tls *t);

/* notAfter of the certificate in use (tests, logs). */
time_t ca_tls_not_after(ca_tls *t);

#endif
