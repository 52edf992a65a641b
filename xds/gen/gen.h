/* gen: the contract between the ADS server (xds/ads/server.c, xds/ads/stream.c) and the resource
 * generators (xds/gen/).
 *
 * The server parses a proxy's node once per stream (xds_proxy_from_node), keeps
 * per-connection subscriptions, versions and nonces, and asks xds_gen_generate for the
 * resources of one type for one proxy from one pinned snapshot. Generators return
 * refcounted xds_resource values whose bytes are shared by every proxy that needs the same
 * resource under the same inputs (see the cache in xds/gen/gen.c).
 */
#ifndef XDS_GEN_GEN_H
#define XDS_GEN_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pilot/model/snapshot.h"

#define XDS_TYPE_LISTENER "type.googleapis.com/envoy.config.listener.v3.Listener"
#define XDS_TYPE_ROUTE "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
#define XDS_TYPE_CLUSTER "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define XDS_TYPE_ENDPOINT "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define XDS_TYPE_SECRET "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

typedef enum {
    XDS_NODE_SIDECAR = 0,
    XDS_NODE_ROUTER, /* gateways */
    XDS_NODE_WAYPOINT,
    XDS_NODE_ZTUNNEL,
} xds_node_type;

typedef enum {
    XDS_FLAVOUR_ENVOY_SIDECAR = 0,
    XDS_FLAVOUR_ENVOY_GATEWAY,
    XDS_FLAVOUR_GRPC, /* metadata GENERATOR: grpc */
} xds_flavour;

/* A connected proxy's identity, parsed from its Node; immutable once built. */
typedef struct xds_proxy {
    char *id; /* the full node ID */
    xds_node_type type;
    xds_flavour flavour;
    char **ips; /* INSTANCE_IPS, else node ID part 2 */
    size_t nips;
    char *pod_name;        /* node ID part 3 before the first '.' */
    char *ns;              /* NAMESPACE metadata, else from part 3/4 */
    char *dns_domain;      /* node ID part 4 */
    mesh_labels labels;    /* LABELS metadata */
    char *istio_version;   /* ISTIO_VERSION, may be NULL */
    char *cluster_id;      /* CLUSTER_ID, default "Kubernetes" */
    char *service_account; /* SERVICE_ACCOUNT, may be NULL */
    char *workload_name;
    char *node_name;
    char *mesh_id;                 /* MESH_ID, may be NULL */
    char *node_cluster;            /* the Node's cluster (Envoy's service cluster), may be NULL */
    char *region, *zone, *subzone; /* node locality */
    cJSON *metadata;               /* the node metadata as JSON, for /debug/adsz */
} xds_proxy;

/* Parses a node (an Envoy__Config__Core__V3__Node*, typed void* here to keep protobuf-c
 * headers out of this one). Returns 0 and a new proxy, or -1 with err naming the problem
 * ("node ID \"x\" must have 4 parts separated by ~"). */
int xds_proxy_from_node(const void *node, const char *domain, xds_proxy **out, char *err,
                        size_t errlen);
void xds_proxy_free(xds_proxy *p);

/* One generated resource: the serialized message (not wrapped in Any). */
typedef struct xds_resource {
    atomic_int refs;
    char *name;
    const char *type_url; /* one of the XDS_TYPE_* constants */
    uint8_t *bytes;
    size_t len;
    uint64_t hash; /* of bytes: the resource version in delta xDS */
} xds_resource;

/* Serializes msg (a ProtobufCMessage*) into a new resource with one reference. */
xds_resource *xds_resource_new(const char *type_url, const char *name, const void *msg);
void xds_resource_retain(xds_resource *r);
void xds_resource_release(xds_resource *r);

typedef struct xds_resource_set {
    xds_resource **items; /* sorted by name, each holding one reference */
    size_t n;
    /* Identity of the content, 0 = unknown. Two sets with the same non-zero id hold the
     * same (name, hash) list, so a stream that sent id X may skip a set with id X in O(1).
     * Set by xds_gen_generate from its per-class memo (ids survive snapshot versions
     * while a class's content does not change). */
    uint64_t id;
} xds_resource_set;

void xds_resource_set_free(xds_resource_set *s);

typedef struct xds_gen xds_gen;

xds_gen *xds_gen_new(void);
void xds_gen_free(xds_gen *g);
/* The SPIFFE trust domain peer identities are named in (proxyless gRPC mTLS SANs). NULL or
 * "" = "cluster.local" (the default). Any time, like the mesh config settings below. */
void xds_gen_set_trust_domain(xds_gen *g, const char *trust_domain);

/* istiod's ENABLE_TLS_ON_SIDECAR_INGRESS (off by default, as istiod): a Sidecar ingress
 * listener's `tls` terminates TLS on its port when the port's PeerAuthentication mode is
 * DISABLE. Set at start, like the trust domain. */
void xds_gen_set_sidecar_ingress_tls(xds_gen *g, bool on);

/* ---- mesh config that shapes authorization ------------------------------------------- */

/* An ext_authz provider of mesh config extensionProviders (envoyExtAuthzHttp or
 * envoyExtAuthzGrpc), as written: istiod checks it (and resolves its service in the
 * registry) when it builds the filters, so a bad one only makes the CUSTOM policies that
 * name it deny; so does xds/gen/authz.c. */
typedef enum {
    XDS_EXT_AUTHZ_HTTP = 0,
    XDS_EXT_AUTHZ_GRPC,
} xds_ext_authz_kind;

typedef struct xds_strlist {
    char **v;
    size_t n;
} xds_strlist;

typedef struct xds_ext_authz_provider {
    char *name;
    xds_ext_authz_kind kind;
    char *service;         /* "<fqdn>" or "<namespace>/<fqdn>" */
    int64_t port;          /* as written; valid is [1, 65535] */
    int64_t timeout_ns;    /* -1: unset (istiod's 600s) */
    bool fail_open;        /* failOpen */
    char *status_on_error; /* as written, NULL when unset */
    /* includeRequestBodyInCheck, when with_body */
    bool with_body;
    uint32_t max_request_bytes;
    bool allow_partial_message;
    bool pack_as_bytes;
    /* envoyExtAuthzHttp only */
    char *path_prefix;                            /* NULL when unset */
    xds_strlist include_request_headers_in_check; /* includeRequestHeadersInCheck */
    xds_strlist include_headers_in_check;         /* deprecated: used when the one above is empty */
    xds_strlist headers_to_upstream_on_allow;
    xds_strlist headers_to_downstream_on_deny;
    xds_strlist headers_to_downstream_on_allow;
    xds_strlist additional_header_keys;   /* includeAdditionalHeadersInCheck, sorted by key */
    xds_strlist additional_header_values; /* the value of each key, same order */
} xds_ext_authz_provider;

typedef struct xds_mesh_authz {
    xds_strlist trust_domain_aliases;  /* trustDomainAliases */
    xds_ext_authz_provider *providers; /* the ext_authz extensionProviders, in file order */
    size_t nproviders;
} xds_mesh_authz;

/* Frees what m holds (not m) and zeroes it. */
void xds_mesh_authz_clear(xds_mesh_authz *m);
/* A deep copy of src into *dst (which it overwrites). */
void xds_mesh_authz_copy(xds_mesh_authz *dst, const xds_mesh_authz *src);
/* The mesh config authorization settings this generator uses (copied; NULL = none). May
 * be called any time; see xds_gen_set_mesh for how a change reaches the caches. */
void xds_gen_set_mesh_authz(xds_gen *g, const xds_mesh_authz *m);

/* ---- mesh config that shapes telemetry ----------------------------------------------- */

typedef enum {
    XDS_ACCESS_LOG_TEXT = 0, /* accessLogEncoding TEXT (istiod's default) */
    XDS_ACCESS_LOG_JSON,
} xds_access_log_encoding;

/* A telemetry extensionProvider of mesh config, as the Telemetry API resolves provider
 * names (istiod's fetchProvider: first by name, ignoring case). The built-in prometheus,
 * stackdriver and envoy (file access log to /dev/stdout) providers need no entry; an entry
 * of the same name replaces the built-in one. */
typedef enum {
    XDS_TEL_PROVIDER_OTHER = 0, /* a kind we do not build (datadog, skywalking, ALS, ...) */
    XDS_TEL_PROVIDER_PROMETHEUS,
    XDS_TEL_PROVIDER_FILE_LOG, /* envoyFileAccessLog */
    XDS_TEL_PROVIDER_ZIPKIN,   /* zipkin (tracing) */
    XDS_TEL_PROVIDER_OTEL,     /* opentelemetry (tracing) */
} xds_tel_provider_kind;

/* A name/value pair of a tracing provider (opentelemetry http.headers,
 * grpc.initialMetadata). */
typedef struct xds_tel_header {
    char *name, *value;
} xds_tel_header;

typedef enum {
    XDS_TEL_LOG_FORMAT_NONE = 0, /* logFormat unset */
    XDS_TEL_LOG_FORMAT_TEXT,     /* logFormat.text (may be empty: istiod's default text) */
    XDS_TEL_LOG_FORMAT_LABELS,   /* logFormat.labels (JSON; empty: istiod's default JSON) */
} xds_tel_log_format;

typedef struct xds_tel_provider {
    char *name;
    xds_tel_provider_kind kind;
    char *path; /* envoyFileAccessLog.path; NULL or "" = /dev/stdout */
    xds_tel_log_format format;
    char *text;   /* logFormat.text */
    char *labels; /* logFormat.labels as a JSON object text */
    /* zipkin and opentelemetry: the collector, resolved in the registry when used */
    char *service;              /* "<fqdn>" or "<namespace>/<fqdn>" */
    int64_t port;               /* as written */
    uint32_t max_tag_length;    /* maxTagLength, 0 = unset */
    bool enable_64bit_trace_id; /* zipkin enable64bitTraceId */
    char *trace_path;           /* zipkin path; opentelemetry http.path */
    bool otel_http;             /* opentelemetry: http (else grpc) */
    int64_t timeout_ns;         /* opentelemetry http/grpc timeout; -1 unset */
    xds_tel_header *headers;    /* http.headers or grpc.initialMetadata */
    size_t nheaders;
    bool has_headers; /* grpc.initialMetadata written (even empty) */
} xds_tel_provider;

/* What istiod reads from mesh config for its telemetry filters: the legacy access log
 * fields (used when no Telemetry resource or default provider configures access logs),
 * defaultProviders and the telemetry extensionProviders. */
typedef struct xds_mesh_telemetry {
    char *access_log_file; /* accessLogFile; NULL = no access logs */
    xds_access_log_encoding access_log_encoding;
    char *access_log_format;     /* accessLogFormat as written; NULL = istiod's default */
    bool no_listener_access_log; /* disableEnvoyListenerLog */
    /* defaultProviders.metrics, when has_default_metrics; else Istio's install default,
     * metrics: [prometheus] */
    bool has_default_metrics;
    xds_strlist default_metrics;
    xds_strlist default_access_logging; /* defaultProviders.accessLogging */
    xds_tel_provider *providers;        /* the telemetry extensionProviders, in file order */
    size_t nproviders;
    /* tracing (istiod's configureTracing): enableTracing (istiod's default true, so
     * tracing_off is its negation), defaultProviders.tracing, and the proxies'
     * defaultConfig.tracing: sampling (0 = unset: trace_sampling_default), custom_tags,
     * max_path_tag_length (0 = unset) */
    bool tracing_off;
    xds_strlist default_tracing;
    double trace_sampling;
    double trace_sampling_default;   /* PILOT_TRACE_SAMPLING, when has_trace_sampling_default */
    bool has_trace_sampling_default; /* else istiod's 1.0 */
    uint32_t max_path_tag_length;
    mesh_trace_tag *trace_tags; /* sorted by tag */
    size_t ntrace_tags;
} xds_mesh_telemetry;

/* Frees what m holds (not m) and zeroes it. */
void xds_mesh_telemetry_clear(xds_mesh_telemetry *m);
/* A deep copy of src into *dst (which it overwrites). */
void xds_mesh_telemetry_copy(xds_mesh_telemetry *dst, const xds_mesh_telemetry *src);
/* The telemetry settings this generator uses (copied; NULL = istiod's defaults: stats on,
 * no access log). Any time, like the authorization settings. */
void xds_gen_set_mesh_telemetry(xds_gen *g, const xds_mesh_telemetry *m);

/* ---- mesh config outboundTrafficPolicy ------------------------------------------------ */

typedef enum {
    XDS_OUTBOUND_ALLOW_ANY = 0, /* istiod's default */
    XDS_OUTBOUND_REGISTRY_ONLY,
} xds_outbound_mode;

/* Mesh config outboundTrafficPolicy.mode: where sidecars send traffic to hosts outside the
 * registry (PassthroughCluster, or BlackHoleCluster and a 502 block_all route) unless their
 * Sidecar's outboundTrafficPolicy says otherwise. Any time, like the telemetry settings. */
void xds_gen_set_outbound_mode(xds_gen *g, xds_outbound_mode mode);

/* Replaces the mesh config settings above at once (copied; NULL = none / istiod's
 * defaults), any time, also while other threads generate: a call already running keeps the
 * settings it started with. The caches are keyed by snapshot version, so the change must
 * come with a new snapshot (the model's model_set_mesh makes one, pushed in full) for the
 * bytes to follow. */
void xds_gen_set_mesh(xds_gen *g, const xds_mesh_authz *authz, const xds_mesh_telemetry *telemetry,
                      xds_outbound_mode mode);

/* True when an empty subscription to type_url means "everything" for this proxy:
 * LDS and CDS for Envoy proxies; never for gRPC (it names what it wants). */
bool xds_type_is_wildcard(const xds_proxy *p, const char *type_url);

/* The resources of type_url that proxy p should have under snapshot s. With a wildcard
 * subscription (names NULL) every resource of the type; otherwise only those named that
 * exist (absent names are simply missing from *out). Thread-safe; the bytes cache is
 * shared across calls, keyed by snapshot version and the inputs that shape a resource.
 * Returns 0, or -1 on an internal error (logged). */
int xds_gen_generate(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *type_url,
                     const char *const *names, size_t nnames, xds_resource_set *out);

/* The mesh kinds (bit 1 << mesh_kind) whose change can alter what type_url holds for
 * proxy p under snapshot s (the new one; NULL: as if a Sidecar scoped p); a full push
 * whose mesh_push_request.kinds_changed has none of them can skip the type for p. The
 * rules (and why) are in xds/gen/gen.c. */
uint32_t xds_type_kinds(const xds_proxy *p, const mesh_snapshot *s, const char *type_url);

/* A full push of snapshot version `version` starts: istiod's pilot_conflict_* gauges drop
 * to 0 and count the conflicts the generations from that version on find (istiod keeps them
 * per full push's PushContext). An older or repeated version changes nothing. Any thread. */
void xds_gen_conflicts_reset(xds_gen *g, uint64_t version);

/* Memo statistics, for tests and /debug: lookups answered from the memo, and sets built. */
void xds_gen_memo_stats(xds_gen *g, uint64_t *hits, uint64_t *misses);

/* The hostname an EDS/CDS cluster name refers to ("outbound|9080|v1|reviews.default.svc.
 * cluster.local" -> "reviews.default.svc.cluster.local"), or NULL. Points into name. */
const char *xds_cluster_hostname(const char *cluster_name);

/* Envoy ConfigDump-style JSON of a resource (proto field names, Any unpacked), for
 * /debug/config_dump. Returns a new cJSON or NULL. */
cJSON *xds_resource_to_json(const xds_resource *r);

#endif
