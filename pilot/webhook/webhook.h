/* webhook: istiod's admission webhooks on --httpsAddr (default ":15017", Service port 443
 * "https-webhook"): sidecar injection (/inject, /inject/<key>/<value>...), config validation
 * (/validate, /validate/) and /ready, over HTTPS with the serving certificate our CA issues
 * for istiod.istio-system.svc.
 *
 *   wh_handle        one request in, one reply out: no socket, no TLS (the unit tests
 *                    drive it directly); validate.c and inject.c behind it
 *   wh_server_start  libmicrohttpd with GnuTLS; the certificate is asked from a provider
 *                    on each handshake, so a renewal reaches new connections without a
 *                    restart (like certs/ca_tls.h does for gRPC)
 *   wh_cabundle_*    keeps the caBundle of our two webhook configurations equal to our root
 *                    (cabundle.c)
 *
 * Validation is mesh_parse (pilot/config), the function ingestion uses, so the webhook and
 * the model can never disagree about what is valid.
 *
 * Threads: libmicrohttpd's (one polling thread, one thread per connection); handlers share
 * only the immutable wh_config. The TLS credentials sit behind one mutex (server.c); the
 * caBundle controller has a thread of its own (cabundle.c).
 */
#ifndef PILOT_WEBHOOK_WEBHOOK_H
#define PILOT_WEBHOOK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pilot/base/source.h"
#include "pilot/base/util.h"

/* Largest request body read (an AdmissionReview of a big pod is a few hundred KB; the
 * API server refuses objects over 3 MB): larger ones get 400 without being kept. */
#define WH_MAX_BODY (4u << 20)
/* Largest reply (a JSONPatch is at most a few times the pod). */
#define WH_MAX_REPLY (16u << 20)

/* What the injection template reads from Istio's values (the istio-sidecar-injector
 * ConfigMap in istiod); NULL or 0 fields take the defaults of the Istio release our
 * manifests install (1.24: docker.io/istio, 1.24.0). Strings are borrowed. */
typedef struct wh_inject_values {
    const char *hub;                 /* "docker.io/istio" */
    const char *tag;                 /* "1.24.0" */
    const char *image;               /* "proxyv2" */
    const char *cluster_id;          /* "Kubernetes" (global.multiCluster.clusterName) */
    const char *network;             /* "" (global.network) */
    const char *trust_domain;        /* "cluster.local" (meshConfig.trustDomain) */
    const char *mesh_id;             /* NULL: the trust domain (global.meshID) */
    const char *istio_namespace;     /* "istio-system" */
    const char *cluster_domain;      /* "cluster.local" (global.proxy.clusterDomain) */
    const char *revision;            /* "": default */
    const char *ca_address;          /* NULL: istiod[-<rev>].<istio ns>.svc:15012 */
    const char *proxy_config;        /* meshConfig.defaultConfig as JSON, NULL: {} */
    const char *log_level;           /* proxy log level, "warning" */
    const char *component_log_level; /* "misc:error" */
    const char *agent_log_level;     /* global.logging.level, "default:info" */
    bool native_sidecars;            /* ENABLE_NATIVE_SIDECARS: istio-proxy as a native
                                      * sidecar (an init container, restartPolicy Always) */
} wh_inject_values;

/* The injector's settings from Istio's istio-sidecar-injector ConfigMap (values.c): its
 * `values` (Helm values as JSON) override wh_inject_values field by field, its `config`
 * gives the policy, the always/never selectors and injectedAnnotations. Thread-safe: a
 * review takes a reference to the current settings; an update swaps them. */
typedef struct wh_injector wh_injector;

/* istio_ns: where the ConfigMap lives; revision "" = default (ConfigMap
 * istio-sidecar-injector, else istio-sidecar-injector-<rev>, as istiod names it); dir: when
 * dir/config exists at start, dir/config and dir/values are read instead of the ConfigMap
 * and re-read when they change (istiod's ./var/lib/istio/inject), NULL = none. Strings are
 * copied. Registers /debug/inject (the settings' templates, as istiod shows them) until
 * wh_injector_free, which must not run inside a debug handler. */
wh_injector *wh_injector_new(const char *istio_ns, const char *revision, const char *dir);
void wh_injector_free(wh_injector *wi);
/* Mesh config defaultConfig changed (compact JSON, copied; NULL: none): the next
 * injections' PROXY_CONFIG, instead of wh_config.inject.proxy_config. Any thread. */
void wh_injector_set_proxy_config(wh_injector *wi, const char *json);
/* Whether a defaultConfig was set since start; *json then a copy (caller frees; NULL for
 * none). */
bool wh_injector_proxy_config(wh_injector *wi, char **json);
/* The ConfigMap's name, "istio-sidecar-injector[-<rev>]". */
const char *wh_injector_configmap(const wh_injector *wi);
/* The namespace it is read from (istiod's). */
const char *wh_injector_namespace(const wh_injector *wi);
/* Applies a ConfigMap object (Kubernetes JSON, borrowed): 0 when its settings replace the
 * current ones; -1 with err naming the key and field when it is refused whole (the last
 * good settings stay). */
int wh_injector_apply(wh_injector *wi, const cJSON *cm, char *err, size_t errlen);
/* A sink in front of next that takes our ConfigMap (upserts applied, refusals logged,
 * a delete keeps the last good settings, as istiod does) and passes everything else on.
 * wi and next must outlive the sources that call it. */
source_sink wh_injector_sink(wh_injector *wi, source_sink next);

typedef struct wh_config {
    const char *domain; /* DNS suffix for validation's host completion, "cluster.local" */
    wh_inject_values inject;
    wh_injector *injector; /* NULL: the values above and Istio's defaults only */
    /* /ready: 200 once ready(ud) says so (NULL: always ready), else 503. */
    bool (*ready)(void *ud);
    void *ready_ud;
} wh_config;

typedef struct wh_reply {
    int status;               /* HTTP status, 200 unless set */
    const char *content_type; /* static string */
    strbuf body;              /* bounded by WH_MAX_REPLY */
} wh_reply;

/* Initialises r (status 200, JSON, empty body); wh_reply_free releases the body. */
void wh_reply_init(wh_reply *r);
void wh_reply_free(wh_reply *r);

/* Serves one request: method and path from the request line (path without the query),
 * content_type the request's header (NULL when absent), body the whole request body.
 * Never fails: bad input gets a 4xx reply or a denied review naming the reason. */
void wh_handle(const wh_config *cfg, const char *method, const char *path, const char *content_type,
               const char *body, size_t len, wh_reply *out);

/* ---- the HTTPS server (server.c) -------------------------------------------------------- */

/* The serving certificate, asked on each TLS handshake: when the provider's generation
 * differs from have_gen it returns 1 with fresh heap copies of the chain (leaf first) and
 * key (PEM; the caller wipes and frees them) and *gen; 0 when unchanged; -1 when it has
 * none. Runs on libmicrohttpd's threads under the server's credential mutex. */
typedef int (*wh_cred_fn)(void *ud, uint64_t have_gen, char **cert_chain_pem, char **key_pem,
                          uint64_t *gen);

typedef struct wh_server_opts {
    const char *addr; /* ":15017", "127.0.0.1:0" = a free port */
    wh_config cfg;    /* copied; its strings must outlive the server */
    wh_cred_fn cred;
    void *cred_ud;
} wh_server_opts;

typedef struct wh_server wh_server;

/* Binds, loads the first certificate and starts serving. NULL (logged) when the address
 * cannot be bound, there is no certificate, or another webhook server runs in this process
 * (GnuTLS's certificate callback has no user pointer: one server at a time). */
wh_server *wh_server_start(const wh_server_opts *o);
int wh_server_port(const wh_server *s);
void wh_server_stop(wh_server *s);

#endif
