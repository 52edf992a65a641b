/* parse_internal: internals shared by the parser's files (mesh_common.c, parse.c,
 * parse_k8s.c, parse_istio_common.c and the other parse_<kind>.c, unsupported.c). Not a
 * public contract.
 *
 * The parser keeps the FIRST error only: every mp_* helper that fails writes
 * "<Kind> <ns>/<name>: <path>: <reason>" into the context (unless an error is already
 * there) and returns -1; callers propagate -1 up and the object built so far is freed by
 * its kind's free function, which copes with half-built objects (counts are set before
 * arrays are filled, everything else starts zeroed).
 */
#ifndef PILOT_CONFIG_PARSE_INTERNAL_H
#define PILOT_CONFIG_PARSE_INTERNAL_H

#include <stdarg.h>

#include "pilot/config/mesh.h"

/* Longest field path we report; deeper paths are truncated, never overflowed. */
#define MP_PATH_MAX 256

typedef struct mp_ctx {
    const char *kind; /* "VirtualService" */
    const char *ns;   /* "" for cluster-scoped objects */
    const char *name;
    const char *domain; /* "cluster.local" */
    char *err;
    size_t errlen;
    bool failed;
    mesh_warnings *warnings; /* NULL: not collected */
} mp_ctx;

/* Records the first error; always returns -1. */
int mp_fail(mp_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a warning (what istiod accepts but warns about), when collected. */
void mp_warn(mp_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Child path helpers: "<base>.<key>" and "<base>.<key>[<i>]" into a caller buffer. */
const char *mp_path(char *buf, const char *base, const char *key);
const char *mp_pathi(char *buf, const char *base, const char *key, size_t i);

/* Typed getters. Each looks up key in obj (obj may be NULL: "absent"). A present value of
 * the wrong JSON type is an error naming <path>.<key>. Outputs are untouched when absent
 * (so callers pre-set defaults), and *present (when non-NULL) says whether it was there. */
int mp_get_obj(mp_ctx *c, const cJSON *obj, const char *key, const char *path, const cJSON **out);
int mp_get_arr(mp_ctx *c, const cJSON *obj, const char *key, const char *path, const cJSON **out);
/* String copied with xstrdup (an existing *out is freed first). */
int mp_get_str(mp_ctx *c, const cJSON *obj, const char *key, const char *path, char **out);
int mp_get_bool(mp_ctx *c, const cJSON *obj, const char *key, const char *path, bool *out,
                bool *present);
/* Integer in [min, max]; a number with a fraction is an error. */
int mp_get_int(mp_ctx *c, const cJSON *obj, const char *key, const char *path, int64_t min,
               int64_t max, int64_t *out, bool *present);
/* A port number 1..65535. */
int mp_get_port(mp_ctx *c, const cJSON *obj, const char *key, const char *path, uint32_t *out,
                bool *present);
/* Go duration string; min_ns > 0 requires at least that much (Istio: 1ms). */
int mp_get_duration(mp_ctx *c, const cJSON *obj, const char *key, const char *path, int64_t min_ns,
                    int64_t *out, bool *present);
/* Array of strings; absent leaves *out NULL, *n 0. */
int mp_get_strv(mp_ctx *c, const cJSON *obj, const char *key, const char *path, char ***out,
                size_t *n);
/* Object of string values. */
int mp_get_labels(mp_ctx *c, const cJSON *obj, const char *key, const char *path, mesh_labels *out);

/* Validation predicates (Istio's labels/host rules). */
bool mp_is_dns1123_label(const char *s);
bool mp_is_dns1123_subdomain(const char *s);
/* Nil when valid, else a static reason string. */
const char *mp_check_wildcard_domain(const char *host);
bool mp_is_ip(const char *s);
bool mp_is_cidr_or_ip(const char *s);
/* Judges a regex by RE2's syntax (what Envoy and istiod use); returns a static reason or
 * NULL. */
const char *mp_check_regex(const char *re);

/* Memory. */
char **mp_strv_dup(char *const *v, size_t n);
void mp_meta_free(mesh_meta *m);

/* Per-kind parsers: fill a freshly zeroed object (meta already parsed into *meta).
 * Return 0 or -1 (error in c). */
int mp_parse_namespace(mp_ctx *c, const cJSON *obj, mesh_namespace *o);
int mp_parse_service(mp_ctx *c, const cJSON *obj, mesh_k8s_service *o);
int mp_parse_pod(mp_ctx *c, const cJSON *obj, mesh_pod *o);
int mp_parse_endpoints(mp_ctx *c, const cJSON *obj, mesh_endpoint_slice *o);
int mp_parse_endpoint_slice(mp_ctx *c, const cJSON *obj, mesh_endpoint_slice *o);
int mp_parse_gateway(mp_ctx *c, const cJSON *obj, mesh_gateway *o);
int mp_parse_virtual_service(mp_ctx *c, const cJSON *obj, mesh_virtual_service *o);
int mp_parse_destination_rule(mp_ctx *c, const cJSON *obj, mesh_destination_rule *o);
int mp_parse_service_entry(mp_ctx *c, const cJSON *obj, mesh_service_entry *o);
/* 0, -1 (error in c) or -2: a Secret kind that never holds gateway credentials. */
int mp_parse_secret(mp_ctx *c, const cJSON *obj, mesh_secret *o);
int mp_parse_peer_authentication(mp_ctx *c, const cJSON *obj, mesh_peer_authentication *o);
int mp_parse_request_authentication(mp_ctx *c, const cJSON *obj, mesh_request_authentication *o);
int mp_parse_authorization_policy(mp_ctx *c, const cJSON *obj, mesh_authorization_policy *o);
int mp_parse_sidecar(mp_ctx *c, const cJSON *obj, mesh_sidecar *o);
int mp_parse_ingress(mp_ctx *c, const cJSON *obj, mesh_ingress *o);
int mp_parse_ingress_class(mp_ctx *c, const cJSON *obj, mesh_ingress_class *o);
int mp_parse_telemetry(mp_ctx *c, const cJSON *obj, mesh_telemetry *o);

/* Per-kind frees of the body (not the meta, not the struct itself). */
void mp_free_k8s_service(mesh_k8s_service *o);
void mp_free_pod(mesh_pod *o);
void mp_free_endpoint_slice(mesh_endpoint_slice *o);
void mp_free_gateway(mesh_gateway *o);
void mp_free_virtual_service(mesh_virtual_service *o);
void mp_free_destination_rule(mesh_destination_rule *o);
void mp_free_service_entry(mesh_service_entry *o);
void mp_free_secret(mesh_secret *o); /* wipes the key bytes before freeing */
void mp_free_peer_authentication(mesh_peer_authentication *o);
void mp_free_request_authentication(mesh_request_authentication *o);
void mp_free_authorization_policy(mesh_authorization_policy *o);
void mp_free_sidecar(mesh_sidecar *o);
void mp_free_ingress(mesh_ingress *o);
void mp_free_telemetry(mesh_telemetry *o);

/* Frees the object whatever its kind: body, meta, struct. */
void mp_object_free(mesh_kind k, mesh_meta *m);

/* ---- shared by the Istio kinds (parse_istio_common.c) ---------------------------- */

/* Iterates an optional list of objects: "for each item of obj[key], an object". */
#define FOR_EACH_OBJ(c, arr, path, key, i, it)                                                     \
    for (i = 0, it = (arr) ? (arr)->child : NULL; it; it = it->next, i++)

/* The index of mode in names[1..n) (names[0] is the enum's unset value) into *out, or -1
 * with "<path>.mode: unknown TLS mode X" (the client and server TLS settings share it). */
int mp_tls_mode(mp_ctx *c, const char *path, const char *mode, const char *const *names, size_t n,
                int *out);
int mp_require_obj(mp_ctx *c, const cJSON *it, const char *path);
/* A workload selector's labels: no empty key, no '*' in a key or value (istiod). */
int mp_check_selector(mp_ctx *c, const char *path, const mesh_labels *l);
int mp_get_spec(mp_ctx *c, const cJSON *obj, const cJSON **spec);
int mp_parse_export_to(mp_ctx *c, const cJSON *spec, char ***out, size_t *n);
/* A wrapped percentage {"value": 12.5} in [0, 100]. */
int mp_parse_percentage(mp_ctx *c, const cJSON *obj, const char *key, const char *path, double *out,
                        bool *present);
/* "mesh", "ns/name", "./name", "name" or the old "name.ns.svc.domain" form. */
int mp_check_gateway_name(mp_ctx *c, const char *path, const char *g);
char *mp_resolve_gateway(const char *g, const char *ns);
int mp_parse_gateways(mp_ctx *c, const cJSON *obj, const char *path, char ***out, size_t *n);
/* exact | prefix | regex. need_one: an empty match object is an error (uri, scheme...);
 * otherwise it means "present" (headers, queryParams). */
int mp_parse_string_match(mp_ctx *c, const cJSON *m, const char *path, bool need_one,
                          bool allow_empty_prefix, mesh_string_match *out);
int mp_parse_destination(mp_ctx *c, const cJSON *d, const char *path, mesh_destination *out);
int mp_parse_headers(mp_ctx *c, const cJSON *obj, const char *path, mesh_headers *out);
/* route: [{destination, weight, headers}]. Weights >= 0 (int32), any total but 0 across
 * several destinations (istiod's rule); a single destination always takes all traffic
 * (weight 100). */
/* spec.targetRef and spec.targetRefs together (istiod's policy target rules: a name, no
 * namespace, a Service, ServiceEntry, Gateway or GatewayClass); out and n hold what was parsed so
 * far on error (free with mp_free_target_refs). */
int mp_parse_target_refs(mp_ctx *c, const cJSON *spec, mesh_target_ref **out, size_t *n);
void mp_free_target_refs(mesh_target_ref *v, size_t n);
int mp_parse_route_destinations(mp_ctx *c, const cJSON *obj, const char *path, bool need_one,
                                mesh_route_destination **out, size_t *n);

#endif
