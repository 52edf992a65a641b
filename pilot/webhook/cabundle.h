/* cabundle: the controller that keeps our webhook configurations' caBundle equal to our
 * root (see cabundle.c for the protocol). Kubernetes mode only. */
#ifndef PILOT_WEBHOOK_CABUNDLE_H
#define PILOT_WEBHOOK_CABUNDLE_H

#include "k8s/k8s.h"

/* The current root as a heap PEM string (caller frees), NULL when none. */
typedef char *(*wh_root_fn)(void *ud);

typedef struct wh_cabundle wh_cabundle;

/* Starts the controller for MutatingWebhookConfiguration istio-sidecar-injector[-rev]
 * and ValidatingWebhookConfiguration istio-validator[-rev]-<istio_ns>. kc is borrowed
 * and must outlive it. NULL when the thread cannot start (logged). */
wh_cabundle *wh_cabundle_start(k8s_client *kc, const char *revision, const char *istio_ns,
                               wh_root_fn root, void *root_ud);
/* The root changed: run a pass now. */
void wh_cabundle_kick(wh_cabundle *cb);
void wh_cabundle_stop(wh_cabundle *cb);

/* One pass (the thread's body, for tests): sets every webhook's clientConfig.caBundle in
 * both configurations to base64(root_pem), writing only those that differ. Returns 0
 * (*patched = configurations written; an absent one counts as current) or a K8S_E* code
 * (K8S_ECONFLICT: another writer won, retry). */
int wh_cabundle_sync(k8s_client *kc, const char *mutating, const char *validating,
                     const char *root_pem, int *patched, char *err, size_t errlen);

#endif
