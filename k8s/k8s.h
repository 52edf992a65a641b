/* k8s: the Kubernetes API client, the reflectors that feed the mesh model, and the few
 * writes the control plane makes (ConfigMap, Secret, Lease, TokenReview).
 *
 * Threads: a k8s_source runs one thread of its own that drives every list and watch on a
 * single libcurl multi handle and calls the source_sink from that thread. A k8s_client is
 * shared read-mostly: its synchronous calls (writes, TokenReview) may run on any thread at
 * once, each on its own curl easy handle; the only mutable state (a token re-read from its
 * file) sits behind the client's mutex.
 *
 * Errors: functions return 0 or one of the negative K8S_E* codes below and write a one-line
 * message into err (when err is non-NULL).
 */
#ifndef K8S_K8S_H
#define K8S_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pilot/base/source.h"

enum {
    K8S_OK = 0,
    K8S_EFAIL = -1,     /* transport failure, bad reply, or an unexpected HTTP status */
    K8S_ENOTFOUND = -2, /* HTTP 404 */
    K8S_EEXISTS = -3,   /* HTTP 409 AlreadyExists on create */
    K8S_ECONFLICT = -4, /* HTTP 409 Conflict on update: re-get, re-apply, retry */
    K8S_EINVAL = -5,    /* bad arguments or configuration */
    K8S_EDENIED = -6,   /* HTTP 401/403, or a TokenReview that did not authenticate */
};

#define K8S_EXTRA_CONFIGMAPS 2

typedef struct k8s_config {
    const char *kubeconfig; /* a kubeconfig file; NULL or "" = in-cluster config */
    const char *context;    /* NULL = the kubeconfig's current-context */
    const char *sa_dir; /* in-cluster files; NULL = /var/run/secrets/kubernetes.io/serviceaccount */
    /* Tuning, 0 = the client-go-like default. Tests shorten them. */
    int watch_timeout_min_s; /* 300: each watch asks for a random timeoutSeconds in [min,max] */
    int watch_timeout_max_s; /* 600 */
    int backoff_initial_ms;  /* 800 */
    int backoff_max_ms;      /* 30000 */
    int page_limit;          /* 500 */
    int rediscover_ms;       /* 30000 (env PILOT_K8S_REDISCOVERY_INTERVAL): how often API
                              * discovery is repeated while an Istio group (networking or
                              * security.istio.io) is not served, so CRDs installed later are
                              * picked up */
    /* Also reflect the ConfigMaps named istio-ca-root-cert (every namespace) into the sink,
     * for the CA's root distribution (certs/ca_kube.h consumes them before the model). */
    bool ca_root_configmaps;
    /* Also reflect these ConfigMaps, each one by namespace and name, into the sink (the
     * sidecar injector's istio-sidecar-injector[-rev] and the mesh config's istio, in
     * istiod's namespace); a NULL name = none. Names are DNS labels. */
    struct {
        const char *ns, *name;
    } extra_configmaps[K8S_EXTRA_CONFIGMAPS];
} k8s_config;

/* ---- client ------------------------------------------------------------------------- */

typedef struct k8s_client k8s_client;

/* Reads the kubeconfig (or the in-cluster files). Returns NULL with err set on failure. */
k8s_client *k8s_client_new(const k8s_config *cfg, char *err, size_t errlen);
void k8s_client_free(k8s_client *c);
/* "https://10.96.0.1:443", no trailing slash. */
const char *k8s_client_server(const k8s_client *c);
/* The namespace of the kubeconfig context or the in-cluster namespace file ("default"). */
const char *k8s_client_namespace(const k8s_client *c);

/* One synchronous request. path starts with '/' and may carry a query. body may be NULL.
 * On return *status holds the HTTP status (0 when none arrived) and resp (when non-NULL)
 * the reply body, bounded to 64 MiB. Returns 0 whenever a reply arrived, whatever its
 * status; K8S_EFAIL on transport failure. */
struct strbuf;
int k8s_request(k8s_client *c, const char *method, const char *path, const char *body, long *status,
                struct strbuf *resp, char *err, size_t errlen);

/* ---- writes --------------------------------------------------------------------------- */

typedef enum {
    K8S_CONFIGMAP = 0,
    K8S_SECRET,
    K8S_LEASE,
} k8s_kind;

/* Each returns 0 and, when out is non-NULL, the server's copy of the object (caller
 * deletes it); or a K8S_E* code with out untouched. obj is borrowed. The namespace is ns,
 * or obj's metadata.namespace when ns is NULL. */
int k8s_create(k8s_client *c, k8s_kind kind, const char *ns, const cJSON *obj, cJSON **out,
               char *err, size_t errlen); /* K8S_EEXISTS if present */
int k8s_get(k8s_client *c, k8s_kind kind, const char *ns, const char *name, cJSON **out, char *err,
            size_t errlen); /* K8S_ENOTFOUND */
/* PUT; obj must carry metadata.name and should carry the metadata.resourceVersion it was
 * read at: a stale one gives K8S_ECONFLICT. */
int k8s_update(k8s_client *c, k8s_kind kind, const char *ns, const cJSON *obj, cJSON **out,
               char *err, size_t errlen); /* K8S_ECONFLICT, K8S_ENOTFOUND */
int k8s_delete(k8s_client *c, k8s_kind kind, const char *ns, const char *name, char *err,
               size_t errlen); /* K8S_ENOTFOUND */

/* ---- leader election (lease.c) ------------------------------------------------------- */

typedef struct k8s_lease k8s_lease;
/* Called on the election thread when we start (true) or stop (false) leading. */
typedef void (*k8s_lease_fn)(void *ud, bool leading);

typedef struct k8s_lease_opts {
    const char *ns, *name; /* the Lease: istiod's namespace, the election's name */
    const char *identity;  /* holderIdentity: the pod name */
    int64_t duration_ns;   /* 0: 30 s (istiod); renew deadline 1/2 of it, retry 1/4 */
    k8s_lease_fn on_change;
    void *ud;
} k8s_lease_opts;

/* Starts campaigning on its own thread (kc borrowed, must outlive it). NULL on bad opts. */
k8s_lease *k8s_lease_start(k8s_client *kc, const k8s_lease_opts *o);
/* True while we hold the Lease and the renew deadline has not passed since the last
 * renewal. */
bool k8s_lease_leading(k8s_lease *l);
/* Call before every write the election guards: true only while leading and the Lease was
 * confirmed (an update with our last resourceVersion) within the last second, so a leader
 * that was paused past its lease never writes. May block for one API request. */
bool k8s_lease_fence(k8s_lease *l);
/* Stops campaigning, releases the Lease when held (holder "", as client-go's
 * ReleaseOnCancel), frees. on_change is not called. NULL is fine. */
void k8s_lease_stop(k8s_lease *l);

/* ---- TokenReview ---------------------------------------------------------------------- */

typedef struct k8s_token_status {
    bool authenticated;
    char *username; /* NULL when absent */
    char **groups;
    size_t ngroups;
    char *error; /* status.error, NULL when absent */
} k8s_token_status;

/* POSTs a TokenReview with spec{token, audiences:[audience]} (audience may be NULL).
 * Returns 0 when the API server answered (st filled; free with k8s_token_status_free). */
int k8s_token_review_raw(k8s_client *c, const char *token, const char *audience,
                         k8s_token_status *st, char *err, size_t errlen);
void k8s_token_status_free(k8s_token_status *st);

/* The CA's authenticator. ud is a k8s_client*. Returns 0 only when status.authenticated is
 * true, status.error is empty, the groups contain system:serviceaccounts and the username
 * is system:serviceaccount:<ns>:<sa>; then *ns and *sa are new strings for the caller.
 * Otherwise a K8S_E* code (K8S_EDENIED for a rejected token) with err saying why. */
int k8s_token_review(void *ud, const char *token, const char *audience, char **ns, char **sa,
                     char *err, size_t errlen);

/* ---- source (reflectors) -------------------------------------------------------------- */

typedef struct k8s_source k8s_source;

/* Builds the client and the reflectors; registers /debug/k8sz and the pilot_k8s_* metrics.
 * Returns NULL (logged) when the configuration cannot be read. No thread yet. */
k8s_source *k8s_source_new(const k8s_config *cfg, source_sink sink);
/* Starts the thread: API discovery (retried with backoff until the API server answers),
 * then every reflector's list and watch. 0 or -1. */
int k8s_source_start(k8s_source *s);
/* Stops the thread, closes every stream, frees everything. NULL is fine. */
void k8s_source_free(k8s_source *s);
/* The /debug/k8sz document: [{resource, apiVersion, kind, state, resourceVersion,
 * lastEventTime, relists, watches, events, objects, synced}], new, for the caller. */
cJSON *k8s_source_stats(k8s_source *s);
/* True once every reflector finished its initial list. */
bool k8s_source_synced(k8s_source *s);

#endif
