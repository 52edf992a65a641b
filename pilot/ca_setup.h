/* ca_setup: the built-in CA wired into pilot-discovery (main.c calls these in order).
 *
 *   pilot_ca_new        root: plug-in dir (--caCertsDir) > Kubernetes Secret istio-ca-secret
 *                       (kube mode) > state directory (--caStateDir, config-directory mode);
 *                       the TLS serving certificate when a secure port is configured
 *   pilot_ca_xds_opts   fills the xDS server's secure port, credentials and TokenReview
 *   pilot_ca_register   CreateCertificate on the gRPC server (plaintext only when no TLS port)
 *   pilot_ca_sink       kube mode: the root distributor's sink in front of the model's
 *   pilot_ca_start      the rotation timer (and, kube mode, the ConfigMap writer)
 *   pilot_ca_free       after the xDS server and the k8s source are gone
 *
 * Threads: one timer thread of its own (rotation and serving-certificate renewal); the
 * distributor's thread in kube mode (certs/ca_kube.h).
 */
#ifndef PILOT_CA_SETUP_H
#define PILOT_CA_SETUP_H

#include <stdbool.h>
#include <stdint.h>

#include "k8s/k8s.h"
#include "pilot/base/source.h"
#include "pilot/flags.h"
#include "xds/ads/server.h"

typedef struct pilot_ca pilot_ca;

/* kube: the Kubernetes API is in use (--kubeconfig or in-cluster). Returns NULL (logged)
 * when the CA cannot start: the process should exit. */
pilot_ca *pilot_ca_new(const pilot_flags *f, bool kube);

/* Sleeps up to ms between start-up retries; returns true when start-up should give up
 * (a shutdown signal arrived). */
typedef bool (*pilot_ca_wait_fn)(void *ud, int64_t ms);
/* Like pilot_ca_new, but in kube mode a failing API server (unreachable, 5xx, 403...) is
 * retried like istiod does, with backoff from 1 s doubling to 30 s and a log line only
 * when the error changes or a minute passed; wait(ud, ms) sleeps between attempts.
 * Returns NULL when the CA cannot start or wait said stop. wait NULL = no retry. */
pilot_ca *pilot_ca_new_wait(const pilot_flags *f, bool kube, pilot_ca_wait_fn wait, void *ud);
/* The serving certificate for the webhooks (pilot/webhook's wh_cred_fn, ud the pilot_ca):
 * the one the TLS gRPC port uses, renewed with it. */
int pilot_ca_serving_cert(void *ud, uint64_t have_gen, char **cert_chain_pem, char **key_pem,
                          uint64_t *gen);
/* The root as a heap PEM string (the webhooks' caBundle; ud the pilot_ca). */
char *pilot_ca_root_pem(void *ud);
/* The Kubernetes client of kube mode (NULL otherwise). */
k8s_client *pilot_ca_kube_client(pilot_ca *p);
/* The secure gRPC address in effect ("" = none). */
const char *pilot_ca_secure_addr(const pilot_ca *p);
void pilot_ca_xds_opts(pilot_ca *p, xds_server_opts *xo);
void pilot_ca_register(pilot_ca *p, xds_server *xds);
source_sink pilot_ca_sink(pilot_ca *p, source_sink inner);
int pilot_ca_start(pilot_ca *p);
void pilot_ca_free(pilot_ca *p);

#endif
