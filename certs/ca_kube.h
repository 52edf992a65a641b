/* ca_kube: the CA's Kubernetes side (kube mode).
 *
 * - The self-signed root lives in Secret istio-ca-secret (type istio.io/ca-root, keys
 *   ca-cert.pem, ca-key.pem, root-cert.pem, empty cert-chain.pem and key.pem) in istiod's
 *   namespace, so every replica and every restart signs with the same root. A plug-in CA
 *   directory (cacerts) wins over it when present.
 * - The trust anchor is distributed as ConfigMap istio-ca-root-cert (key root-cert.pem,
 *   label istio.io/config: "true") in every namespace except kube-public and
 *   kube-node-lease: created for new namespaces, restored when deleted or edited, updated
 *   after a rotation. The distributor learns namespaces and root ConfigMaps from the
 *   Kubernetes source (k8s_config.ca_root_configmaps) through a sink placed in front of the
 *   model's (ca_kube_dist_sink).
 *
 * Threads: the sink runs on the k8s source thread and only records names; the writes run
 * on the distributor's own thread (one API request at a time, retried with backoff).
 * ca_kube_dist_root_changed may be called from any thread.
 */
#ifndef CERTS_CA_KUBE_H
#define CERTS_CA_KUBE_H

#include <stddef.h>

#include "certs/ca.h"
#include "k8s/k8s.h"
#include "pilot/base/source.h"

#define CA_KUBE_SECRET "istio-ca-secret"
#define CA_KUBE_SECRET_TYPE "istio.io/ca-root"
#define CA_KUBE_ROOT_CONFIGMAP "istio-ca-root-cert"

/* Creates the CA for kube mode: base's plug-in directory when it holds a CA; else the
 * root in Secret istio-ca-secret of namespace ns; else a new root (base->key_type) written
 * there — when another replica created the Secret first (409), its root is read and used
 * instead. base->import and base->state_dir are ignored. Returns CA_OK with *out, or a
 * CA_E* code with err set: CA_EUNAVAILABLE when a Kubernetes request failed (worth
 * retrying), others when the root itself is at fault. */
int ca_kube_new_ca(k8s_client *kc, const char *ns, const ca_opts *base, ca **out, char *err,
                   size_t errlen);

/* Writes c's current root into istio-ca-secret (after a rotation): get, update, retry on
 * 409. Returns CA_OK or CA_EINTERNAL with err set. */
int ca_kube_store_root(k8s_client *kc, const char *ns, ca *c, char *err, size_t errlen);

typedef struct ca_kube_dist ca_kube_dist;

/* kc and c are borrowed and must outlive the distributor. */
ca_kube_dist *ca_kube_dist_new(k8s_client *kc, ca *c);
/* Starts the writer thread. 0 or -1. */
int ca_kube_dist_start(ca_kube_dist *d);
/* Stops the writer thread only (no write after it returns; the sink and the setters stay
 * usable). NULL is fine. */
void ca_kube_dist_stop(ca_kube_dist *d);
/* Stops the thread and frees. NULL is fine. Stop the k8s source (which calls the sink)
 * first. */
void ca_kube_dist_free(ca_kube_dist *d);
/* A sink that watches Namespace and istio-ca-root-cert ConfigMap events, forwards every
 * other event (and Namespaces) to inner, and drops the ConfigMaps (the model has no use
 * for them). The returned sink refers to d. */
source_sink ca_kube_dist_sink(ca_kube_dist *d, source_sink inner);
/* Leader election: with a guard set (before start), the distributor writes only while told
 * it leads (ca_kube_dist_leading) and only after guard(ud) said yes just before each write
 * (k8s_lease_fence); becoming leader checks every namespace. Without a guard every replica
 * writes (the single-replica behaviour). */
void ca_kube_dist_guard(ca_kube_dist *d, bool (*guard)(void *ud), void *ud);
void ca_kube_dist_leading(ca_kube_dist *d, bool leading);
/* The root changed (rotation): rewrite every namespace's ConfigMap. */
void ca_kube_dist_root_changed(ca_kube_dist *d);

#endif
