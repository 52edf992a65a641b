/* webhook_internal: what the webhook's files share (review.c, validate.c, inject.c,
 * jsonpatch.c, server.c). Not a public contract. */
#ifndef PILOT_WEBHOOK_WEBHOOK_INTERNAL_H
#define PILOT_WEBHOOK_WEBHOOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "pilot/webhook/webhook.h"

#define WH_LOG "webhook"

/* An AdmissionReview's request, borrowed from its cJSON tree. */
typedef struct wh_review {
    const char *api_version; /* "admission.k8s.io/v1" or "admission.k8s.io/v1beta1" */
    const char *uid;         /* never NULL or empty (checked) */
    const char *operation;   /* "CREATE", "UPDATE", "DELETE", "CONNECT"; "" when absent */
    const char *ns;          /* request.namespace, "" when absent */
    const char *name;        /* request.name, "" when absent */
    const cJSON *object;     /* request.object, NULL when absent */
    bool dry_run;
} wh_review;

/* The answer: owned strings, freed by wh_verdict_free. */
typedef struct wh_verdict {
    bool allowed;
    char *message; /* denied: the reason (response.status.message) */
    char *warnings[8];
    size_t nwarnings;
    char *patch;  /* allowed with a JSONPatch (text, not yet base64) */
    bool skipped; /* /inject: the pod needs no sidecar (sidecar_injection_skip_total) */
    bool failed;  /* /inject: the template could not be run (sidecar_injection_failure_total) */
} wh_verdict;

void wh_verdict_free(wh_verdict *v);
/* Registers istiod's sidecar_injection_* metrics (idempotent; the server calls it at start so
 * they read 0 before the first request). */
void wh_metrics_init(void);
/* Sets allowed=false with a printf message (the first one wins). */
void wh_deny(wh_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* /inject/<key>/<value>/...: istiod's path parameters. */
typedef struct wh_inject_params {
    char cluster[128]; /* "cluster": ISTIO_META_CLUSTER_ID, "" = the configured one */
    char network[128]; /* "net": ISTIO_META_NETWORK */
} wh_inject_params;

/* ---- values (values.c) ------------------------------------------------------------------ */

/* The injection policy of the ConfigMap's `config` (istiod's InjectionPolicy). */
typedef enum { WH_POLICY_ENABLED = 0, WH_POLICY_DISABLED, WH_POLICY_OFF } wh_policy;

/* One parsed istio-sidecar-injector (immutable, refcounted): the trees the resolved values
 * borrow from. */
typedef struct wh_settings wh_settings;

/* Everything the default "sidecar" template reads, resolved for one injection: the
 * ConfigMap's values where given, else cfg->inject's, else Istio 1.24's chart defaults.
 * Strings and trees are borrowed from the settings and cfg (both outlive the injection). */
typedef struct wh_values {
    const char *hub, *tag, *variant, *image, *init_image, *pull_policy;
    const char *cluster_id, *network, *mesh_id, *trust_domain, *istio_namespace;
    const char *cluster_domain, *revision, *values_revision, *ca_address, *proxy_config;
    const char *log_level, *component_log_level, *agent_log_level, *cert_provider, *audience;
    const char *include_ip_ranges, *exclude_ip_ranges, *include_inbound_ports;
    const char *exclude_inbound_ports, *include_outbound_ports, *exclude_outbound_ports;
    const char *outlier_log_path;
    const cJSON *resources;    /* global.proxy.resources; NULL: none */
    const cJSON *lifecycle;    /* global.proxy.lifecycle; NULL: none */
    const cJSON *pull_secrets; /* global.imagePullSecrets (strings); NULL: none */
    char status_port[16];      /* global.proxy.statusPort, "15020" */
    char tag_buf[64];          /* a numeric tag, printed */
    int ready_initial, ready_period, ready_failure, startup_failure, sts_port;
    bool startup_enabled, hold, privileged, log_as_json, mount_mtls, cap_bind, force_apply;
    bool rewrite_probes, native;
    bool cluster_from_values; /* clusterName came from the ConfigMap (istiod's proxyEnvs) */
    /* config */
    wh_policy policy;
    const cJSON *never_sel, *always_sel; /* arrays of LabelSelectors; NULL: none */
    const cJSON *injected_annotations;   /* object; NULL: none */
} wh_values;

/* The current settings with a reference (NULL when none: no ConfigMap yet); release it
 * with wh_settings_release. Files mode re-reads changed files at most once a second. */
wh_settings *wh_injector_acquire(wh_injector *wi);
void wh_settings_release(wh_settings *s);
/* Parses a ConfigMap's `config` (YAML) and `values` (JSON or YAML): NULL with err naming
 * the key and field when refused. */
wh_settings *wh_settings_parse(const char *config, const char *values, char *err, size_t errlen);
/* Fills *out from base (the flags) and s (NULL: none). */
void wh_values_resolve(const wh_inject_values *base, const wh_settings *s, wh_values *out);
/* A metav1.LabelSelector (matchLabels, matchExpressions) against labels: 1 matches, 0 does
 * not, -1 the selector is invalid. An empty selector matches nothing here, as istiod skips
 * it. */
int wh_selector_matches(const cJSON *sel, const cJSON *labels);

/* Validation of request.object with mesh_parse (validate.c). */
void wh_validate(const wh_config *cfg, const wh_review *rv, wh_verdict *out);
/* Sidecar injection of the Pod in request.object (inject.c): allowed with no patch when the
 * pod is not to be injected. */
void wh_inject(const wh_config *cfg, const wh_inject_params *pp, const wh_review *rv,
               wh_verdict *out);
/* The pod Istio's injector would produce from pod (a new tree). NULL either when the pod
 * is not to be injected (*why says why, err "") or when injection fails (err holds the
 * reason: a bad annotation; istiod refuses such a pod). ns: the namespace when the pod has
 * none. pp may be NULL. */
cJSON *wh_inject_pod(const wh_config *cfg, const wh_inject_params *pp, const cJSON *pod,
                     const char *ns, const char **why, char *err, size_t errlen);

/* RFC 6902 patch turning from into to, as JSON text (heap): objects are compared key by
 * key, anything else (arrays included) replaced whole when it differs. */
char *wh_json_patch(const cJSON *from, const cJSON *to);
/* RFC 4648 base64 of n bytes, heap, NUL-terminated. */
char *wh_base64(const char *p, size_t n);

#endif
