/* mesh: the typed mesh objects, and the parser and validator that make them
 * (pilot/config/parse*.c).
 *
 * The objects are the contract between the parser, the model thread that joins them into
 * snapshots (pilot/model/, whose snapshot type is in pilot/model/snapshot.h) and the xDS
 * generators (xds/gen/). Everything reachable from a published snapshot is immutable:
 * readers on any thread may use it without locks for as long as they hold a reference.
 *
 * Ownership: every mesh_* object below is created by mesh_parse() (or the model, for
 * services built from Kubernetes Services and endpoints) and owned through its header's
 * refcount. A snapshot holds one reference to each object it lists; a new snapshot built
 * beside the old one reuses unchanged objects by taking another reference.
 */
#ifndef PILOT_CONFIG_MESH_H
#define PILOT_CONFIG_MESH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- shared small types ------------------------------------------------------------- */

/* Sorted by key; keys unique. */
typedef struct mesh_labels {
    size_t n;
    char **keys;
    char **vals;
} mesh_labels;

/* True when every key=value of sel is in l (an empty sel matches everything). */
bool mesh_labels_subset(const mesh_labels *sel, const mesh_labels *l);
const char *mesh_labels_get(const mesh_labels *l, const char *key);

struct mesh_meta;
/* istiod's sortConfigByCreationTime: is a older than b? creationTimestamp first (RFC 3339
 * timestamps as the API server writes them order as strings; none, a config-directory
 * file, is Go's zero time, the oldest), then name. */
bool mesh_meta_older(const struct mesh_meta *a, const struct mesh_meta *b);
/* In items[0..n) (pointers to objects that start with their mesh_meta, sorted by namespace
 * first), the first index whose namespace is >= ns: a namespace's objects are one run. */
size_t mesh_meta_ns_lower_bound(void *const *items, size_t n, const char *ns);
/* From a JSON object of string values; non-string values are an error (-1). */
int mesh_labels_from_json(const cJSON *obj, mesh_labels *out);
void mesh_labels_copy(const mesh_labels *src, mesh_labels *dst);
/* Sets key to val (copied), replacing a value already there; keeps the keys sorted. */
void mesh_labels_set(mesh_labels *l, const char *key, const char *val);
void mesh_labels_free(mesh_labels *l);

typedef enum {
    MESH_PROTO_UNSUPPORTED = 0, /* unknown: treated as TCP */
    MESH_PROTO_HTTP,
    MESH_PROTO_HTTP2,
    MESH_PROTO_HTTPS,
    MESH_PROTO_GRPC,
    MESH_PROTO_GRPC_WEB,
    MESH_PROTO_TCP,
    MESH_PROTO_TLS,
    MESH_PROTO_MONGO,
    MESH_PROTO_REDIS,
    MESH_PROTO_MYSQL,
    MESH_PROTO_UDP,
} mesh_protocol;

/* Istio's names: "HTTP", "HTTP2", "HTTPS", "GRPC", "GRPC-Web", "TCP", "TLS", "Mongo",
 * "Redis", "MySQL", "UDP", "UnsupportedProtocol". */
const char *mesh_protocol_name(mesh_protocol p);
/* Case-insensitive Istio protocol name ("http", "HTTP2", "grpc"...), else UNSUPPORTED. */
mesh_protocol mesh_protocol_parse(const char *s);
/* Protocol of a Kubernetes Service port: appProtocol first, then the port name prefix
 * before '-' ("http-web" -> HTTP, "grpc" -> GRPC), else UNSUPPORTED (sniffed as TCP). */
mesh_protocol mesh_protocol_from_port(const char *port_name, const char *app_protocol);
bool mesh_protocol_is_http(mesh_protocol p); /* HTTP, HTTP2, GRPC, GRPC-Web */

/* Common header of every refcounted model object. */
typedef struct mesh_meta {
    atomic_int refs;
    char *name;
    char *ns;
    char *resource_version;   /* may be NULL */
    char *creation_timestamp; /* RFC 3339, may be NULL */
    char *uid;                /* may be NULL */
    int64_t generation;
    mesh_labels labels;
    mesh_labels annotations;
    char *source; /* file path, or "kubernetes" */
} mesh_meta;

/* ---- Services and endpoints ---------------------------------------------------------- */

typedef struct mesh_port {
    char *name;             /* may be NULL for a single unnamed port */
    uint32_t port;          /* service port */
    uint32_t target_port;   /* numeric targetPort, 0 when named or absent */
    char *target_port_name; /* named targetPort, or NULL */
    mesh_protocol protocol;
} mesh_port;

typedef enum {
    MESH_RESOLUTION_CLIENT_SIDE_LB = 0, /* Istio's model.Resolution values */
    MESH_RESOLUTION_DNS = 1,
    MESH_RESOLUTION_PASSTHROUGH = 2,
    MESH_RESOLUTION_DNS_ROUND_ROBIN = 3,
} mesh_resolution;

typedef struct mesh_service {
    mesh_meta meta;
    char *hostname; /* "reviews.default.svc.cluster.local", or a ServiceEntry host */
    mesh_port *ports;
    size_t nports;
    char **vips; /* cluster IPs ("None" is not a VIP); may be empty */
    size_t nvips;
    mesh_labels selector; /* pod selector (Kubernetes) or workloadSelector (SE) */
    bool mesh_external;   /* ServiceEntry location MESH_EXTERNAL */
    mesh_resolution resolution;
    bool headless;
    char **export_to; /* empty = "*" */
    size_t nexport_to;
    char *from_service_entry; /* "ns/name" of the ServiceEntry that made it, else NULL */
} mesh_service;

typedef struct mesh_endpoint {
    char *address;         /* IP */
    uint32_t port;         /* the target port on the endpoint */
    char *port_name;       /* matches mesh_port.name of the service port it serves */
    uint32_t service_port; /* the mesh_port.port it serves */
    mesh_labels labels;    /* from the Pod (targetRef), or the SE endpoint's labels */
    char *service_account; /* Pod spec.serviceAccountName, may be NULL */
    char *pod_name;        /* may be NULL */
    char *node_name;       /* may be NULL */
    char *locality;        /* "region/zone/subzone", may be "" */
    bool ready;
    uint32_t weight; /* load-balancing weight, >= 1 */
} mesh_endpoint;

/* All endpoints of one service hostname, immutable once published. */
typedef struct mesh_endpoint_shard {
    atomic_int refs;
    char *hostname;
    char *ns;
    mesh_endpoint *eps;
    size_t neps;
    uint64_t version; /* bumps whenever the shard's content changes */
} mesh_endpoint_shard;

/* ---- Istio networking resources ------------------------------------------------------ */

typedef enum {
    MESH_MATCH_NONE = 0,
    MESH_MATCH_EXACT,
    MESH_MATCH_PREFIX,
    MESH_MATCH_REGEX
} mesh_match_kind;

typedef struct mesh_string_match {
    mesh_match_kind kind;
    char *value;
} mesh_string_match;

typedef struct mesh_header_match {
    char *name;              /* lower-case header name */
    mesh_string_match match; /* kind NONE with present=true means "present" */
    bool present;
    bool invert; /* withoutHeaders */
} mesh_header_match;

typedef struct mesh_http_match {
    char *name;
    mesh_string_match uri, scheme, method, authority;
    mesh_header_match *headers;
    size_t nheaders;
    mesh_header_match *query_params;
    size_t nquery_params;
    uint32_t port; /* 0 = any */
    mesh_labels source_labels;
    char *source_namespace;
    char **gateways; /* resolved "ns/name" or "mesh" */
    size_t ngateways;
    bool ignore_uri_case;
} mesh_http_match;

typedef struct mesh_destination {
    char *host;    /* as written, with short names resolved to FQDN */
    char *subset;  /* may be NULL */
    uint32_t port; /* 0 = the service's only port / same port */
} mesh_destination;

typedef struct mesh_kv {
    char *key;
    char *value;
} mesh_kv;

typedef struct mesh_header_ops {
    mesh_kv *set;
    size_t nset;
    mesh_kv *add;
    size_t nadd;
    char **remove;
    size_t nremove;
} mesh_header_ops;

typedef struct mesh_headers {
    mesh_header_ops request;
    mesh_header_ops response;
} mesh_headers;

typedef struct mesh_route_destination {
    mesh_destination destination;
    int32_t weight; /* >= 0, any total (not 0 when several); a single destination gets 100 */
    mesh_headers headers;
} mesh_route_destination;

typedef struct mesh_http_route {
    char *name;
    mesh_http_match *matches;
    size_t nmatches;
    mesh_route_destination *route;
    size_t nroute;

    bool has_redirect;
    struct {
        char *uri, *authority, *scheme;
        uint32_t port;
        uint32_t redirect_code; /* 0 = 301 */
    } redirect;

    bool has_direct_response;
    struct {
        uint32_t status;
        char *body;
    } direct_response;

    bool has_rewrite;
    struct {
        char *uri, *authority;
        char *uri_regex, *uri_regex_rewrite;
    } rewrite;

    int64_t timeout_ns; /* -1 unset */

    bool has_retries;
    struct {
        int32_t attempts;
        int64_t per_try_timeout_ns; /* -1 unset */
        char *retry_on;             /* may be NULL */
    } retries;

    bool has_fault_delay;
    struct {
        double percent; /* 0..100 */
        int64_t fixed_delay_ns;
    } fault_delay;
    bool has_fault_abort;
    struct {
        double percent;
        uint32_t http_status; /* 0 when grpc_status given */
        char *grpc_status;    /* e.g. "UNAVAILABLE", or NULL */
    } fault_abort;

    bool has_mirror;
    mesh_destination mirror;
    double mirror_percent; /* 100 when unset */

    bool has_cors;
    struct {
        mesh_string_match *allow_origins;
        size_t nallow_origins;
        char **allow_methods;
        size_t nallow_methods;
        char **allow_headers;
        size_t nallow_headers;
        char **expose_headers;
        size_t nexpose_headers;
        int64_t max_age_ns;    /* -1 unset */
        int allow_credentials; /* -1 unset, 0, 1 */
    } cors;

    mesh_headers headers;
} mesh_http_route;

typedef struct mesh_l4_match {
    uint32_t port;
    char **sni_hosts; /* TLS routes */
    size_t nsni_hosts;
    char **destination_subnets;
    size_t ndestination_subnets;
    mesh_labels source_labels;
    char **gateways;
    size_t ngateways;
} mesh_l4_match;

typedef struct mesh_l4_route {
    mesh_l4_match *matches;
    size_t nmatches;
    mesh_route_destination *route;
    size_t nroute;
} mesh_l4_route;

typedef struct mesh_virtual_service {
    mesh_meta meta;
    char **hosts; /* as written ("reviews", "*.example.com", "*") */
    size_t nhosts;
    char **fqdn_hosts; /* short names completed in the VS namespace */
    char **gateways;   /* resolved "ns/name" or "mesh"; empty input -> {"mesh"} */
    size_t ngateways;
    mesh_http_route *http;
    size_t nhttp;
    mesh_l4_route *tcp;
    size_t ntcp;
    mesh_l4_route *tls;
    size_t ntls;
    char **export_to;
    size_t nexport_to;
    /* annotation internal.istio.io/route-semantics: ingress (what istiod's Ingress
     * conversion writes): a uri prefix matches whole path segments */
    bool ingress_semantics;
} mesh_virtual_service;

typedef enum {
    MESH_LB_UNSET = 0,
    MESH_LB_ROUND_ROBIN,
    MESH_LB_LEAST_REQUEST,
    MESH_LB_RANDOM,
    MESH_LB_PASSTHROUGH,
    MESH_LB_RING_HASH, /* consistentHash */
} mesh_lb;

typedef enum {
    MESH_TLS_UNSET = 0,
    MESH_TLS_DISABLE,
    MESH_TLS_SIMPLE,
    MESH_TLS_MUTUAL,
    MESH_TLS_ISTIO_MUTUAL,
} mesh_client_tls_mode;

typedef struct mesh_traffic_policy {
    mesh_lb lb;
    struct {
        char *http_header_name; /* consistentHash.httpHeaderName */
        bool use_source_ip;
        char *http_cookie_name;
        uint64_t minimum_ring_size;
    } hash;

    bool has_connection_pool;
    struct {
        int32_t tcp_max_connections;    /* -1 unset */
        int64_t tcp_connect_timeout_ns; /* -1 unset */
        int32_t http1_max_pending_requests;
        int32_t http2_max_requests;
        int32_t max_requests_per_connection;
        int32_t max_retries;
        int64_t idle_timeout_ns;
    } connection_pool; /* int fields -1 when unset */

    bool has_outlier_detection;
    struct {
        int32_t consecutive_5xx_errors;     /* -1 unset */
        int32_t consecutive_gateway_errors; /* -1 unset */
        int64_t interval_ns;                /* -1 unset */
        int64_t base_ejection_time_ns;      /* -1 unset */
        int32_t max_ejection_percent;       /* -1 unset */
    } outlier_detection;

    bool has_tls;
    struct {
        mesh_client_tls_mode mode;
        char *sni;
        char *credential_name;
        char **subject_alt_names;
        size_t nsubject_alt_names;
        char *ca_certificates;    /* a file in the proxy (SIMPLE/MUTUAL), may be NULL */
        char *client_certificate; /* a file in the proxy (MUTUAL), may be NULL */
        char *private_key;        /* a file in the proxy (MUTUAL), may be NULL */
        bool insecure_skip_verify;
    } tls;
} mesh_traffic_policy;

typedef struct mesh_port_traffic_policy {
    uint32_t port;
    mesh_traffic_policy policy;
} mesh_port_traffic_policy;

typedef struct mesh_subset {
    char *name;
    mesh_labels labels;
    mesh_traffic_policy *policy; /* NULL = inherit the rule's */
} mesh_subset;

typedef struct mesh_destination_rule {
    mesh_meta meta;
    char *host;                  /* as written */
    char *fqdn_host;             /* short name completed in the DR namespace */
    mesh_traffic_policy *policy; /* may be NULL */
    mesh_port_traffic_policy *port_policies;
    size_t nport_policies;
    mesh_subset *subsets;
    size_t nsubsets;
    /* workloadSelector present (even `{}`, which selects every workload): the rule then
     * applies only to outbound traffic of matching proxies in its own namespace */
    bool has_workload_selector;
    mesh_labels workload_selector; /* workloadSelector.matchLabels */
    char **export_to;
    size_t nexport_to;
} mesh_destination_rule;

typedef enum {
    MESH_SERVER_TLS_UNSET = 0,
    MESH_SERVER_TLS_PASSTHROUGH,
    MESH_SERVER_TLS_SIMPLE,
    MESH_SERVER_TLS_MUTUAL,
    MESH_SERVER_TLS_AUTO_PASSTHROUGH,
    MESH_SERVER_TLS_ISTIO_MUTUAL,
    MESH_SERVER_TLS_OPTIONAL_MUTUAL,
} mesh_server_tls_mode;

typedef struct mesh_gateway_server {
    uint32_t port;
    char *port_name;
    mesh_protocol protocol;
    char **hosts;           /* "ns/host" prefixes stripped into host_namespaces */
    char **host_namespaces; /* parallel to hosts: "*", "." or a namespace */
    size_t nhosts;
    char *name; /* server name, may be NULL */
    bool has_tls;
    struct {
        mesh_server_tls_mode mode;
        bool https_redirect;
        char *credential_name;
        char **subject_alt_names;
        size_t nsubject_alt_names;
    } tls;
} mesh_gateway_server;

typedef struct mesh_gateway {
    mesh_meta meta;
    mesh_labels selector; /* empty = selects every gateway proxy */
    mesh_gateway_server *servers;
    size_t nservers;
} mesh_gateway;

typedef struct mesh_se_endpoint {
    char *address;
    mesh_labels ports; /* port name -> number, as strings */
    mesh_labels labels;
    char *locality;
    char *network;
    uint32_t weight;
    char *service_account;
} mesh_se_endpoint;

typedef struct mesh_service_entry {
    mesh_meta meta;
    char **hosts;
    size_t nhosts;
    char **addresses;
    size_t naddresses;
    mesh_port *ports;
    size_t nports;
    bool mesh_external; /* location MESH_EXTERNAL (default MESH_EXTERNAL) */
    mesh_resolution resolution;
    mesh_se_endpoint *endpoints;
    size_t nendpoints;
    mesh_labels workload_selector;
    char **export_to;
    size_t nexport_to;
} mesh_service_entry;

/* ---- Istio security resources (security.istio.io v1, v1beta1) ------------------------- */

/* A list of strings as written (order kept). */
typedef struct mesh_strv {
    char **v;
    size_t n;
} mesh_strv;

/* targetRef / targetRefs (gateway.networking.k8s.io PolicyTargetReference): the policy
 * applies to what the reference names instead of a selector. ns "" = the policy's own. */
typedef struct mesh_target_ref {
    char *group;
    char *kind; /* "Gateway", "Service", "ServiceEntry", "GatewayClass" */
    char *name;
    char *ns;
} mesh_target_ref;

typedef enum {
    MESH_MTLS_UNSET = 0, /* inherit from the namespace / root namespace; PERMISSIVE at the top */
    MESH_MTLS_DISABLE,
    MESH_MTLS_PERMISSIVE,
    MESH_MTLS_STRICT,
} mesh_mtls_mode;

typedef struct mesh_port_mtls {
    uint32_t port; /* the workload (container) port */
    mesh_mtls_mode mode;
} mesh_port_mtls;

typedef struct mesh_peer_authentication {
    mesh_meta meta;
    mesh_labels selector;      /* empty = namespace-wide (mesh-wide in the root namespace) */
    mesh_mtls_mode mode;       /* spec.mtls.mode */
    mesh_port_mtls *port_mtls; /* spec.portLevelMtls, sorted by port, ports unique */
    size_t nport_mtls;
} mesh_peer_authentication;

/* One JWT rule of a RequestAuthentication. */
typedef struct mesh_jwt_header {
    char *name;
    char *prefix; /* may be NULL */
} mesh_jwt_header;

typedef struct mesh_jwt_claim_header {
    char *header;
    char *claim;
} mesh_jwt_claim_header;

typedef struct mesh_jwt_rule {
    char *issuer;
    mesh_strv audiences;
    char *jwks_uri; /* may be NULL */
    char *jwks;     /* inline JWKS JSON, may be NULL */
    mesh_jwt_header *from_headers;
    size_t nfrom_headers;
    mesh_strv from_params;
    mesh_strv from_cookies;
    char *output_payload_to_header; /* may be NULL */
    bool forward_original_token;
    mesh_jwt_claim_header *output_claim_to_headers;
    size_t noutput_claim_to_headers;
    int64_t timeout_ns; /* JWKS fetch timeout, -1 unset */
} mesh_jwt_rule;

typedef struct mesh_request_authentication {
    mesh_meta meta;
    mesh_labels selector;
    mesh_target_ref *target_refs; /* targetRef and targetRefs together */
    size_t ntarget_refs;
    mesh_jwt_rule *jwt_rules;
    size_t njwt_rules;
} mesh_request_authentication;

/* The fields of an AuthorizationPolicy rule's source, operation: each has its positive
 * and its not- form (principals / notPrincipals ...). */
typedef enum {
    MESH_AZ_PRINCIPALS = 0,
    MESH_AZ_REQUEST_PRINCIPALS,
    MESH_AZ_NAMESPACES,
    MESH_AZ_IP_BLOCKS,
    MESH_AZ_REMOTE_IP_BLOCKS,
    MESH_AZ_SERVICE_ACCOUNTS, /* "sa" (the policy's namespace) or "ns/sa" */
    MESH_AZ_TRUST_DOMAINS,    /* exact, "*", "x*" or "*x" */
    MESH_AZ_SOURCE__COUNT,
} mesh_az_source_field;

typedef enum {
    MESH_AZ_HOSTS = 0,
    MESH_AZ_PORTS,
    MESH_AZ_METHODS,
    MESH_AZ_PATHS,
    MESH_AZ_OPERATION__COUNT,
} mesh_az_operation_field;

typedef struct mesh_az_source {
    mesh_strv values[MESH_AZ_SOURCE__COUNT];
    mesh_strv not_values[MESH_AZ_SOURCE__COUNT];
} mesh_az_source;

typedef struct mesh_az_operation {
    mesh_strv values[MESH_AZ_OPERATION__COUNT]; /* ports as written ("8080") */
    mesh_strv not_values[MESH_AZ_OPERATION__COUNT];
} mesh_az_operation;

typedef struct mesh_az_condition {
    char *key; /* "source.ip", "request.headers[x-token]", "request.auth.claims[iss]", ... */
    mesh_strv values;
    mesh_strv not_values;
} mesh_az_condition;

typedef struct mesh_az_rule {
    mesh_az_source *from; /* each entry's `source` */
    size_t nfrom;
    mesh_az_operation *to; /* each entry's `operation` */
    size_t nto;
    mesh_az_condition *when;
    size_t nwhen;
} mesh_az_rule;

typedef enum {
    MESH_AZ_ALLOW = 0,
    MESH_AZ_DENY,
    MESH_AZ_AUDIT,
    MESH_AZ_CUSTOM,
} mesh_az_action;

typedef struct mesh_authorization_policy {
    mesh_meta meta;
    mesh_labels selector; /* empty = every workload of the namespace (root: the mesh) */
    mesh_target_ref *target_refs;
    size_t ntarget_refs;
    mesh_az_action action;
    char *provider; /* CUSTOM: spec.provider.name */
    /* spec.rules: none = matches nothing (an ALLOW policy without rules denies all);
     * one empty rule matches everything. */
    mesh_az_rule *rules;
    size_t nrules;
    bool dry_run; /* annotation istio.io/dry-run: "true" */
} mesh_authorization_policy;

/* ---- Sidecar (networking.istio.io v1, v1beta1, v1alpha3) ------------------------------ */

typedef enum {
    MESH_CAPTURE_DEFAULT = 0,
    MESH_CAPTURE_IPTABLES,
    MESH_CAPTURE_NONE,
} mesh_capture_mode;

typedef struct mesh_sidecar_port {
    uint32_t number;        /* 0: a Unix domain socket listener (egress, bind unix://) */
    char *protocol_name;    /* as written; NULL = sniffed */
    mesh_protocol protocol; /* UNSUPPORTED when unset; istiod's HTTP_PROXY reads as HTTP */
    char *name;             /* may be NULL */
} mesh_sidecar_port;

/* ConnectionPoolSettings as a Sidecar carries it (ingress[].connectionPool,
 * inboundConnectionPool). Integers -1 and durations -1 when unset. */
typedef struct mesh_conn_pool {
    bool has_tcp, has_http;
    int32_t tcp_max_connections;
    int64_t tcp_connect_timeout_ns;
    int64_t tcp_max_connection_duration_ns;
    int64_t tcp_idle_timeout_ns;
    int64_t tcp_keepalive_time_ns;
    int64_t tcp_keepalive_interval_ns;
    int64_t tcp_keepalive_probes;
    int32_t http1_max_pending_requests;
    int32_t http2_max_requests;
    int32_t max_requests_per_connection;
    int32_t max_retries;
    int64_t http_idle_timeout_ns;
    int h2_upgrade_policy; /* 0 DEFAULT, 1 DO_NOT_UPGRADE, 2 UPGRADE */
    bool use_client_protocol;
    int32_t max_concurrent_streams;
} mesh_conn_pool;

typedef struct mesh_sidecar_ingress {
    mesh_sidecar_port port;
    char *bind; /* IP, or NULL */
    mesh_capture_mode capture_mode;
    char *default_endpoint; /* "127.0.0.1:8080", "[::1]:8080", ":8080", "unix://...", NULL */
    bool has_tls;
    struct {
        mesh_server_tls_mode mode; /* PASSTHROUGH, SIMPLE, MUTUAL or OPTIONAL_MUTUAL */
        char *server_certificate, *private_key, *ca_certificates, *ca_crl;
        char **cipher_suites;
        size_t ncipher_suites;
        int min_protocol_version; /* 0 TLS_AUTO, 1 TLSV1_0 ... 4 TLSV1_3 */
        int max_protocol_version;
    } tls;
    mesh_conn_pool *connection_pool; /* NULL = the inbound default */
} mesh_sidecar_ingress;

/* One egress hosts[] entry "ns/dnsName", split. ns is the namespace the entry names,
 * with "." resolved to the Sidecar's own namespace; "*" means any. exclude: the entry was
 * "~ns/host" (istiod's exclusion; a bare "~" is any namespace, so "~" with host "*"
 * imports nothing). */
typedef struct mesh_sidecar_host {
    char *ns;
    char *host; /* "*", "*.example.com", "foo.example.com" */
    bool exclude;
    /* ns was written ".": istiod reads it as the namespace of the proxy the Sidecar scopes,
     * which differs from the Sidecar's own for a root-namespace (mesh default) Sidecar */
    bool dot;
} mesh_sidecar_host;

typedef struct mesh_sidecar_egress {
    bool has_port; /* false: the catch-all listener (last in the list) */
    mesh_sidecar_port port;
    char *bind; /* IP, "unix:///path", "unix://@name", or NULL */
    mesh_capture_mode capture_mode;
    mesh_sidecar_host *hosts;
    size_t nhosts;
} mesh_sidecar_egress;

typedef enum {
    MESH_OUTBOUND_UNSET = 0, /* the mesh config's */
    MESH_OUTBOUND_REGISTRY_ONLY,
    MESH_OUTBOUND_ALLOW_ANY,
} mesh_outbound_mode;

typedef struct mesh_sidecar {
    mesh_meta meta;
    bool has_selector;    /* workloadSelector present (even without labels) */
    mesh_labels selector; /* workloadSelector.labels */
    mesh_sidecar_ingress *ingress;
    size_t ningress;
    mesh_sidecar_egress *egress;
    size_t negress;
    mesh_outbound_mode outbound_mode;
    bool has_egress_proxy;
    mesh_destination egress_proxy;           /* host as written, subset, port */
    mesh_conn_pool *inbound_connection_pool; /* may be NULL */
} mesh_sidecar;

/* ---- Telemetry (telemetry.istio.io v1, v1alpha1) --------------------------------------- */

/* WorkloadMode: which side of the traffic a metrics override, access log or tracing entry
 * applies to. */
typedef enum {
    MESH_TEL_CLIENT_AND_SERVER = 0,
    MESH_TEL_CLIENT,
    MESH_TEL_SERVER,
} mesh_tel_mode;

/* MetricSelector.IstioMetric, in the API's enum order (ALL_METRICS is 0). */
typedef enum {
    MESH_TEL_ALL_METRICS = 0,
    MESH_TEL_REQUEST_COUNT,
    MESH_TEL_REQUEST_DURATION,
    MESH_TEL_REQUEST_SIZE,
    MESH_TEL_RESPONSE_SIZE,
    MESH_TEL_TCP_OPENED_CONNECTIONS,
    MESH_TEL_TCP_CLOSED_CONNECTIONS,
    MESH_TEL_TCP_SENT_BYTES,
    MESH_TEL_TCP_RECEIVED_BYTES,
    MESH_TEL_GRPC_REQUEST_MESSAGES,
    MESH_TEL_GRPC_RESPONSE_MESSAGES,
    MESH_TEL_METRIC__COUNT,
} mesh_tel_metric;

/* "ALL_METRICS", "REQUEST_COUNT", ...; NULL out of range. */
const char *mesh_tel_metric_name(mesh_tel_metric m);

/* A wrapped bool (google.protobuf.BoolValue): istiod tells "unset" from false. */
typedef enum { MESH_TRI_UNSET = 0, MESH_TRI_FALSE, MESH_TRI_TRUE } mesh_tri;

typedef struct mesh_tel_tag_override {
    char *name;
    bool remove; /* operation REMOVE; else UPSERT value */
    char *value; /* NULL for REMOVE */
} mesh_tel_tag_override;

typedef struct mesh_tel_metrics_override {
    mesh_tel_mode mode;     /* match.mode */
    mesh_tel_metric metric; /* match.metric; ALL_METRICS when no match or no metric */
    char *custom_metric;    /* match.customMetric, NULL when unset (then metric applies) */
    mesh_tri disabled;
    mesh_tel_tag_override *tags; /* tagOverrides, sorted by name, names unique */
    size_t ntags;
} mesh_tel_metrics_override;

typedef struct mesh_tel_metrics {
    mesh_strv providers; /* names; none = inherit */
    mesh_tel_metrics_override *overrides;
    size_t noverrides;
    int64_t reporting_interval_ns; /* -1 unset */
} mesh_tel_metrics;

typedef struct mesh_tel_access_logging {
    mesh_strv providers;
    mesh_tel_mode mode; /* match.mode */
    mesh_tri disabled;
    char *filter; /* filter.expression (CEL), NULL without a filter */
} mesh_tel_access_logging;

/* A tracing custom tag (Telemetry tracing[].customTags, mesh config
 * defaultConfig.tracing.custom_tags): a literal value, or an environment variable or request
 * header with a default. Kind NONE (none of the three set) adds nothing, as in istiod. */
typedef enum {
    MESH_TRACE_TAG_NONE = 0,
    MESH_TRACE_TAG_LITERAL,
    MESH_TRACE_TAG_ENVIRONMENT,
    MESH_TRACE_TAG_HEADER,
} mesh_trace_tag_kind;

typedef struct mesh_trace_tag {
    char *tag; /* the span tag's name (the map key) */
    mesh_trace_tag_kind kind;
    char *value;         /* literal.value, or environment/header .name */
    char *default_value; /* environment/header defaultValue; NULL when unset */
} mesh_trace_tag;

/* Frees n tags and the array. */
void mesh_trace_tags_free(mesh_trace_tag *v, size_t n);

typedef struct mesh_tel_tracing {
    mesh_strv providers;
    mesh_tel_mode mode;
    double random_sampling_percentage; /* -1 unset, else [0, 100] */
    mesh_tri disable_span_reporting;
    mesh_tri use_request_id_for_trace_sampling;
    bool has_custom_tags;        /* customTags written (even empty): it replaces the level's */
    mesh_trace_tag *custom_tags; /* sorted by tag */
    size_t ncustom_tags;
} mesh_tel_tracing;

typedef struct mesh_telemetry {
    mesh_meta meta;
    mesh_labels selector; /* empty = namespace-wide (mesh-wide in the root namespace) */
    mesh_target_ref *target_refs;
    size_t ntarget_refs;
    mesh_tel_metrics *metrics;
    size_t nmetrics;
    mesh_tel_access_logging *logging; /* accessLogging */
    size_t nlogging;
    mesh_tel_tracing *tracing;
    size_t ntracing;
} mesh_telemetry;

/* ---- Kubernetes objects the model joins ---------------------------------------------- */

typedef struct mesh_k8s_service_port {
    char *name;
    uint32_t port;
    uint32_t target_port;
    char *target_port_name;
    char *app_protocol;
    char *protocol; /* TCP/UDP/SCTP */
} mesh_k8s_service_port;

typedef struct mesh_k8s_service {
    mesh_meta meta;
    char *type;         /* ClusterIP, NodePort, LoadBalancer, ExternalName */
    char **cluster_ips; /* spec.clusterIPs or [spec.clusterIP], without "None" */
    size_t ncluster_ips;
    bool headless;
    char *external_name;
    mesh_k8s_service_port *ports;
    size_t nports;
    mesh_labels selector;
    bool has_selector;
} mesh_k8s_service;

typedef struct mesh_pod {
    mesh_meta meta; /* labels kept; annotations dropped (memory) */
    char **ips;     /* status.podIPs or status.podIP */
    size_t nips;
    char *service_account;
    char *node_name;
    char *phase;
    bool ready; /* condition Ready=True */
} mesh_pod;

typedef struct mesh_slice_endpoint {
    char **addresses;
    size_t naddresses;
    bool ready; /* missing = true */
    bool serving;
    bool terminating;
    char *node_name;
    char *zone;
    char *target_pod; /* targetRef.name when kind Pod, else NULL */
    char *target_ns;
} mesh_slice_endpoint;

typedef struct mesh_slice_port {
    char *name; /* "" when unnamed */
    uint32_t port;
    char *protocol;
    char *app_protocol;
} mesh_slice_port;

/* An EndpointSlice, or a core/v1 Endpoints object flattened into the same shape. */
typedef struct mesh_endpoint_slice {
    mesh_meta meta;
    char *service_name; /* label kubernetes.io/service-name, or Endpoints name */
    char *address_type;
    mesh_slice_endpoint *endpoints;
    size_t nendpoints;
    mesh_slice_port *ports;
    size_t nports;
} mesh_endpoint_slice;

typedef struct mesh_namespace {
    mesh_meta meta;
} mesh_namespace;

/* A Kubernetes Secret reduced to the gateway credentials SDS serves (Istio's credentials
 * controller): the certificate chain and key from "cert"/"key" (generic) or
 * "tls.crt"/"tls.key" (kubernetes.io/tls), the CA bundle from "cacert" or "ca.crt".
 * Values are the decoded bytes (PEM), never logged or shown by debug endpoints; absent
 * keys are NULL with length 0. Annotations are dropped (kubectl's last-applied annotation
 * repeats the data). Service-account-token and Helm release Secrets are skipped. */
typedef struct mesh_secret {
    mesh_meta meta;
    char *type;    /* "kubernetes.io/tls", "Opaque", ... */
    uint8_t *cert; /* certificate chain */
    size_t cert_len;
    uint8_t *key; /* private key */
    size_t key_len;
    uint8_t *ca_cert; /* CA bundle for client certificate validation */
    size_t ca_cert_len;
} mesh_secret;

/* ---- Kubernetes Ingress (networking.k8s.io/v1), served as istiod's ingress controller -- */

typedef enum {
    MESH_INGRESS_PATH_IMPLEMENTATION_SPECIFIC = 0, /* also pathType absent */
    MESH_INGRESS_PATH_EXACT,
    MESH_INGRESS_PATH_PREFIX,
} mesh_ingress_path_type;

typedef struct mesh_ingress_path {
    char *path; /* may be NULL */
    mesh_ingress_path_type type;
    char *service;   /* backend.service.name; NULL: no service backend (resource) */
    uint32_t port;   /* backend.service.port.number, 0 when named */
    char *port_name; /* backend.service.port.name, NULL when numbered */
} mesh_ingress_path;

typedef struct mesh_ingress_rule {
    char *host; /* NULL or "" = any */
    bool has_http;
    mesh_ingress_path *paths;
    size_t npaths;
} mesh_ingress_rule;

typedef struct mesh_ingress_tls {
    char **hosts;
    size_t nhosts;
    char *secret_name; /* NULL: the entry is skipped, as istiod */
} mesh_ingress_tls;

typedef struct mesh_ingress {
    mesh_meta meta;
    char *class_annotation; /* kubernetes.io/ingress.class, NULL when absent */
    char *class_name;       /* spec.ingressClassName, NULL when absent */
    mesh_ingress_tls *tls;
    size_t ntls;
    mesh_ingress_rule *rules;
    size_t nrules;
    bool has_default_backend; /* istiod ignores it (logged) */
} mesh_ingress;

/* networking.k8s.io/v1 IngressClass (cluster-scoped: meta.ns ""). */
typedef struct mesh_ingress_class {
    mesh_meta meta;
    char *controller; /* spec.controller; istiod's is "istio.io/ingress-controller" */
} mesh_ingress_class;

/* ---- parsing and validation ---------------------------------------------------------- */

typedef enum {
    MESH_KIND_NAMESPACE = 0,
    MESH_KIND_SERVICE,
    MESH_KIND_POD,
    MESH_KIND_ENDPOINTS,
    MESH_KIND_ENDPOINT_SLICE,
    MESH_KIND_GATEWAY,
    MESH_KIND_VIRTUAL_SERVICE,
    MESH_KIND_DESTINATION_RULE,
    MESH_KIND_SERVICE_ENTRY,
    MESH_KIND_SECRET, /* gateway credentials (core/v1 Secret) */
    MESH_KIND_PEER_AUTHENTICATION,
    MESH_KIND_REQUEST_AUTHENTICATION,
    MESH_KIND_AUTHORIZATION_POLICY,
    MESH_KIND_SIDECAR,       /* networking.istio.io Sidecar */
    MESH_KIND_INGRESS,       /* networking.k8s.io Ingress */
    MESH_KIND_INGRESS_CLASS, /* networking.k8s.io IngressClass */
    MESH_KIND_TELEMETRY,     /* telemetry.istio.io Telemetry */
    MESH_KIND__COUNT,
    MESH_KIND_UNKNOWN = -1,
} mesh_kind;

/* "Namespace", "Service", ..., "VirtualService". */
const char *mesh_kind_name(mesh_kind k);
/* Kubernetes apiVersion we report in configz ("v1", "discovery.k8s.io/v1",
 * "networking.istio.io/v1", "security.istio.io/v1"). */
const char *mesh_kind_api_version(mesh_kind k);
/* Kind from an object's apiVersion + kind; MESH_KIND_UNKNOWN for kinds we skip
 * (Deployment, ServiceAccount...) and for unknown apiVersions of known kinds. */
mesh_kind mesh_kind_of(const cJSON *obj);

/* A parsed, validated object: exactly one member set, matching kind. */
typedef struct mesh_object {
    mesh_kind kind;
    union {
        mesh_meta *meta; /* every variant starts with mesh_meta */
        mesh_namespace *ns;
        mesh_k8s_service *svc;
        mesh_pod *pod;
        mesh_endpoint_slice *slice;
        mesh_gateway *gw;
        mesh_virtual_service *vs;
        mesh_destination_rule *dr;
        mesh_service_entry *se;
        mesh_secret *secret;
        mesh_peer_authentication *pa;
        mesh_request_authentication *ra;
        mesh_authorization_policy *ap;
        mesh_sidecar *sc;
        mesh_ingress *ing;
        mesh_ingress_class *ingc;
        mesh_telemetry *tel;
    } u;
} mesh_object;

/* What istiod accepts but warns about (a deprecated field, a setting with no effect): the
 * validation webhook returns these as the review's warnings. Bounded: later ones are
 * dropped. Each message is "<Kind> <ns>/<name>: <field path>: <reason>". */
#define MESH_MAX_WARNINGS 8
typedef struct mesh_warnings {
    size_t n;
    char *msg[MESH_MAX_WARNINGS];
} mesh_warnings;
void mesh_warnings_free(mesh_warnings *w);

typedef struct mesh_parse_opts {
    const char *domain;      /* "cluster.local" */
    const char *source;      /* file path or "kubernetes", copied into meta.source */
    mesh_warnings *warnings; /* NULL: warnings are not collected */
} mesh_parse_opts;

/* Parses and validates obj (a Kubernetes-shaped object: apiVersion, kind, metadata, spec)
 * the way istiod's validation webhook would. A missing metadata.namespace means "default".
 * Returns 0 and sets *out (one reference, release with mesh_object_release), or:
 *   -1 invalid: err holds "<Kind> <ns>/<name>: <field path>: <reason>", *out untouched;
 *   -2 a kind we skip quietly (err empty).
 * Never keeps a pointer into obj. */
int mesh_parse(const cJSON *obj, const mesh_parse_opts *opts, mesh_object *out, char *err,
               size_t errlen);

/* Fields present in obj that the parser does not model ("spec.http[].mirrors"), for the
 * conformance report: appends "path" strings to *paths (caller frees each and the array). */
void mesh_unsupported_fields(const cJSON *obj, char ***paths, size_t *npaths);

void mesh_object_retain(mesh_object o);
void mesh_object_release(mesh_object o);

/* FQDN of a host as written in namespace ns: "reviews" -> "reviews.ns.svc.<domain>",
 * "reviews.default" -> "reviews.default.svc.<domain>", FQDNs and wildcards unchanged. */
char *mesh_resolve_host(const char *host, const char *ns, const char *domain);

#endif
