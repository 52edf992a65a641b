/* gen_internal: internals shared by the xDS generators (xds/gen/): the per-call arena that
 * owns every protobuf-c message built for one resource, and the route, cluster, endpoint
 * and listener builders the three flavours share.
 *
 * Messages are built in an arena and freed in one step after serialization: protobuf-c's
 * own free_unpacked cannot be used on hand-built trees, and one arena per resource keeps
 * the builders free of cleanup code.
 */
#ifndef XDS_GEN_GEN_INTERNAL_H
#define XDS_GEN_GEN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* gRPC 1.51 understands only the legacy (deprecated) HeaderMatcher fields, and a few other
 * deprecated fields (WeightedCluster.total_weight, RegexMatcher.google_re2,
 * Cluster.http2_protocol_options) are what older clients read; using them is deliberate. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/api_listener.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/listener/original_dst/v3/original_dst.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#include "pilot/config/mesh.h"
#include "xds/gen/gen.h"

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct gen_arena_chunk gen_arena_chunk;
typedef struct gen_arena {
    gen_arena_chunk *head;
} gen_arena;

void gen_arena_free(gen_arena *a);
void *ga_alloc(gen_arena *a, size_t n);       /* zeroed, max-aligned */
char *ga_strdup(gen_arena *a, const char *s); /* NULL -> "" */
char *ga_printf(gen_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends item to the arena array *arr of *n elements of size sz (capacity doubles at
 * powers of two, so no capacity field is needed). */
void ga_push_raw(gen_arena *a, void **arr, size_t *n, const void *item, size_t sz);
#define GA_PUSH(a, arr, n, item)                                                                   \
    do {                                                                                           \
        __typeof__(*(arr)) ga_tmp_ = (item);                                                       \
        ga_push_raw((a), (void **)&(arr), &(n), &ga_tmp_, sizeof ga_tmp_);                         \
    } while (0)
/* A string grown by appending (capacity doubles, in the arena): building a key of k parts
 * costs O(k), where re-printing the whole string for each part costs O(k^2). */
typedef struct gen_sbuf {
    char *s;
    size_t len, cap;
} gen_sbuf;
void ga_cat(gen_arena *a, gen_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *ga_sbuf_str(gen_arena *a, gen_sbuf *b); /* "" when nothing was appended */

/* An open-addressing map from strings (borrowed, must outlive the map) to pointers, in the
 * arena: the slot of key (created when create, else NULL when absent). As a set,
 * gen_strset_add says whether the key was new. */
typedef struct gen_strmap {
    const char **keys;
    void **vals;
    size_t cap, n;
} gen_strmap;
void **gen_strmap_slot(gen_arena *a, gen_strmap *m, const char *key, bool create);
bool gen_strset_add(gen_arena *a, gen_strmap *m, const char *key);

/* Allocates and initialises a protobuf-c message: GA_MSG(a, envoy__config__core__v3__address). */
#define GA_MSG(a, T, init)                                                                         \
    ({                                                                                             \
        T *m_ = ga_alloc((a), sizeof(T));                                                          \
        init(m_);                                                                                  \
        m_;                                                                                        \
    })

/* ---- one generation call ---------------------------------------------------------------- */

/* What a generator may read of the proxy: nothing but the inputs of its memo class
 * (gen.c builds it from the class key), so the compiler, not a comment, keeps the memo
 * and the generators in step: a proxy field that is not here cannot reach a generator,
 * and one that does not shape the type being generated is empty here. */
typedef struct gen_view {
    const char *ns;     /* the proxy namespace: part of every class */
    mesh_labels labels; /* empty unless labels shape this type */
    char *const *ips;   /* NULL unless the proxy's IPs shape this type */
    size_t nips;
    /* the Sidecar that scopes the proxy (mesh_snapshot_sidecar_for), NULL for none: its
     * identity is part of the class of sidecar and gRPC proxies (scope.c) */
    const mesh_sidecar *sidecar;
    /* Envoy LDS while tracing can be on (GEN_TRACE_*): the values of istiod's per-proxy span
     * tags (canonical revision and service from the labels, mesh and cluster ID from the
     * node metadata, defaults applied); NULL otherwise */
    const char *const *trace;
} gen_view;

/* The per-proxy inputs of tracing, in gen_view.trace: the span tags' values and the Node's
 * cluster (OpenTelemetry's service_name, "" when unset). */
enum {
    GEN_TRACE_REVISION = 0,
    GEN_TRACE_SERVICE,
    GEN_TRACE_MESH_ID,
    GEN_TRACE_CLUSTER_ID,
    GEN_TRACE_NODE_CLUSTER,
    GEN_TRACE_N
};

/* istiod's listener classes, which pick the metadata exchange and stats configuration. */
typedef enum {
    GEN_CLASS_SIDECAR_INBOUND = 0,
    GEN_CLASS_SIDECAR_OUTBOUND,
    GEN_CLASS_GATEWAY,
} gen_listener_class;

struct gen_scope;
struct gen_egress;
struct gen_tel;
struct gen_trace;

typedef struct gen_ctx {
    gen_arena *a;
    xds_gen *gen;      /* for gen_conflict_note */
    const gen_view *p; /* the proxy as its class sees it */
    const mesh_snapshot *s;
    bool grpc;                /* gRPC flavour: only what C core 1.51 accepts */
    bool gateway;             /* Envoy gateway flavour (part of the class, like grpc) */
    const char *trust_domain; /* SPIFFE trust domain of peer identities; NULL = cluster.local */
    const xds_mesh_authz *mesh_authz; /* trust domain aliases, ext_authz providers; may be NULL */
    const xds_mesh_telemetry *telemetry; /* access log and metrics settings; never NULL */
    void *fctx;                          /* flavour-specific per-call data, built lazily (arena) */
    /* the Telemetries that apply to the proxy and what they make of each class, built
     * once per call (telemetry.c) */
    struct gen_tel *tel;
    struct gen_trace *trace; /* the tracing specs, built once per call (tracing.c) */
    /* the class of the listener being built: the access logs of its tcp_proxy filters */
    gen_listener_class tel_class;
    bool registry_only;              /* mesh config outboundTrafficPolicy.mode REGISTRY_ONLY */
    bool ingress_tls;                /* ENABLE_TLS_ON_SIDECAR_INGRESS */
    struct gen_scope *scope;         /* the Sidecar scope, built once per call (scope.c) */
    const struct gen_egress *egress; /* set while building for one egress listener, else NULL */
} gen_ctx;

/* The conflicts istiod counts in its pilot_conflict_* gauges (gen.c says how). */
typedef enum {
    GEN_CONFLICT_INBOUND,      /* key: the proxy ID (two services, different protocols) */
    GEN_CONFLICT_OUTBOUND_TCP, /* key: the listener name (a TCP chain over an existing one) */
    GEN_CONFLICT_KINDS
} gen_conflict_kind;

/* Notes one conflict found while generating from s; a key already noted since the last full
 * push counts once, one from a snapshot older than that push is dropped. Any thread. */
void gen_conflict_note(xds_gen *g, const mesh_snapshot *s, gen_conflict_kind kind, const char *key);

/* One resource a proxy should get. `extra` is the proxy-specific input that shapes it
 * (part of the cache key); the other fields carry what the builder needs. */
typedef struct gen_item {
    char *name;
    char *extra;
    const mesh_service *svc;
    uint32_t port;
    const char *subset;
    const void *ref; /* flavour-specific */
    bool eds;        /* keyed by endpoint content, not snapshot version */
} gen_item;

typedef struct gen_items {
    gen_item *v;
    size_t n;
} gen_items;

void gen_items_add(gen_ctx *c, gen_items *it, const gen_item *item);
bool gen_names_has(const char *const *names, size_t nnames, const char *name);

/* Per type and flavour: list what the proxy should get (names NULL = wildcard), then
 * build one message (arena-owned) or NULL when it turns out not to exist. */
typedef struct gen_type_ops {
    void (*list)(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out);
    ProtobufCMessage *(*build)(gen_ctx *c, const gen_item *it);
} gen_type_ops;

extern const gen_type_ops gen_grpc_lds, gen_grpc_rds;
extern const gen_type_ops gen_gw_lds, gen_gw_rds;
extern const gen_type_ops gen_gw_sds; /* gateway credentials (gen_sds.c) */
extern const gen_type_ops gen_sc_sds; /* sidecars: CA bundles only (gen_sds.c) */
extern const gen_type_ops gen_sc_lds, gen_sc_rds, gen_sc_cds;
extern const gen_type_ops gen_envoy_cds_outbound; /* outbound clusters: gRPC and gateway CDS */
extern const gen_type_ops gen_eds;                /* every flavour */

/* ---- small builders ---------------------------------------------------------------------- */

Google__Protobuf__Any *gen_any(gen_ctx *c, const ProtobufCMessage *m);
Google__Protobuf__Duration *gen_duration(gen_ctx *c, int64_t ns);
Google__Protobuf__UInt32Value *gen_u32(gen_ctx *c, uint32_t v);
Google__Protobuf__UInt64Value *gen_u64(gen_ctx *c, uint64_t v);
Google__Protobuf__BoolValue *gen_bool(gen_ctx *c, bool v);
/* A Struct with one string field (key NULL: empty), and adding one to it. */
Google__Protobuf__Struct *gen_struct_str(gen_ctx *c, const char *key, const char *val);
void gen_struct_set_str(gen_ctx *c, Google__Protobuf__Struct *st, const char *key, const char *val);
/* A Struct (arena) holding a JSON object's members, converted as proto3 JSON maps onto
 * google.protobuf.Value; NULL when j is not an object. */
Google__Protobuf__Struct *gen_struct_from_json(gen_ctx *c, const cJSON *j);
/* Metadata with one filter_metadata entry. */
Envoy__Config__Core__V3__Metadata *gen_filter_metadata(gen_ctx *c, const char *filter,
                                                       Google__Protobuf__Struct *st);
/* TransportSocket "envoy.transport_sockets.raw_buffer" (plaintext). */
Envoy__Config__Core__V3__TransportSocket *gen_raw_buffer_socket(gen_ctx *c);
Envoy__Config__Core__V3__ConfigSource *gen_ads_source(gen_ctx *c);
/* The workload certificate and root ("default", "ROOTCA") come from the Istio agent's
 * local SDS server, which the agent's bootstrap names GEN_AGENT_SDS_CLUSTER; istiod never
 * serves them over ADS. Istio's exact shape: gRPC API source, V3, node on the first
 * message only. */
#define GEN_AGENT_SDS_CLUSTER "sds-grpc"
Envoy__Config__Core__V3__ConfigSource *gen_agent_sds_source(gen_ctx *c);
Envoy__Config__Core__V3__Address *gen_address(gen_ctx *c, const char *ip, uint32_t port);
Envoy__Type__Matcher__V3__RegexMatcher *gen_regex(gen_ctx *c, const char *re);
/* An LbEndpoint at ip:port (ip may be a DNS name for DNS clusters). */
Envoy__Config__Endpoint__V3__LbEndpoint *gen_lb_endpoint(gen_ctx *c, const char *ip, uint32_t port);

/* ---- naming and lookups ------------------------------------------------------------------ */

char *gen_cluster_name(gen_ctx *c, uint32_t port, const char *subset, const char *host);
/* Parses "outbound|port|subset|host"; subset "" when none. False for other names. */
bool gen_parse_cluster_name(gen_ctx *c, const char *name, uint32_t *port, char **subset,
                            char **host);
const mesh_port *gen_service_port(const mesh_service *svc, uint32_t port);
const mesh_subset *gen_dr_subset(const mesh_destination_rule *dr, const char *name);
/* Does a VirtualService/Gateway host pattern match a hostname (both may be wildcards)? */
bool gen_host_match(const char *pattern, const char *host);
/* The mesh VirtualService (bound to "mesh") that owns hostname, or NULL. */
const mesh_virtual_service *gen_mesh_vs_for_host(gen_ctx *c, const char *hostname);
bool gen_vs_bound_to(const mesh_virtual_service *vs, const char *gateway);
/* exportTo ("*", ".", "~", namespaces) against the proxy's namespace. Envoy flavours only:
 * for gRPC both answer true. */
bool gen_service_visible(gen_ctx *c, const mesh_service *svc);
bool gen_vs_visible(gen_ctx *c, const mesh_virtual_service *vs);
/* The proxy-specific input a VirtualService's routes depend on (sourceLabels /
 * sourceNamespace matches), for cache keys: "" when none. */
char *gen_vs_proxy_key(gen_ctx *c, const mesh_virtual_service *vs);

/* exportTo alone (gen_service_visible without the Sidecar scope). */
bool gen_service_exported(gen_ctx *c, const mesh_service *svc);

/* ---- Sidecar scope (scope.c) -------------------------------------------------------------- */

/* istiod's host.Name SubsetOf (n covered by o) and Matches (either covers the other). */
bool gen_host_subset_of(const char *n, const char *o);
bool gen_host_overlaps(const char *n, const char *o);
/* Does egress listener e import an object of namespace ns with this host, for a proxy of
 * proxy_ns ("./" entries)? vs: VirtualService matching (bidirectional for wildcards). */
bool gen_egress_imports(const mesh_sidecar_egress *e, const char *proxy_ns, const char *ns,
                        const char *host, bool vs);

typedef struct gen_scope_svc {
    bool in;         /* in CDS/EDS */
    bool all;        /* on every port, else on ports */
    uint32_t *ports; /* arena */
    size_t nports;
} gen_scope_svc;

/* One egress listener of the Sidecar and what it imports, per snapshot array index. */
typedef struct gen_egress {
    const mesh_sidecar_egress *e;
    uint8_t *svc; /* s->services[i] imported */
    uint8_t *vs;  /* s->vss[i] imported */
} gen_egress;

typedef struct gen_scope {
    const mesh_sidecar *sidecar; /* NULL: istiod's default scope (everything exported) */
    gen_egress *l;
    size_t nl;
    gen_scope_svc *svc; /* per s->services index: the union plus VirtualService destinations */
    bool allow_any;     /* outboundTrafficPolicy, the Sidecar's over mesh config's */
    /* where unknown traffic goes: PassthroughCluster, the egressProxy's cluster, or
     * BlackHoleCluster (REGISTRY_ONLY) */
    const char *egress_cluster;
    const char *key; /* "sc=ns/name" or "sc=-", for cache keys */
} gen_scope;

const gen_scope *gen_scope_get(gen_ctx *c);
/* Is svc (on port; 0 = any port) in the proxy's scope? Always for the default scope. */
bool gen_scope_service(gen_ctx *c, const mesh_service *svc, uint32_t port);
/* The egress listener that serves route (or listener) port, NULL for the default scope or
 * when none does. */
const gen_egress *gen_scope_egress_for_port(gen_ctx *c, uint32_t port);
/* Does listener eg import svc? (eg NULL: true only for the default scope.) */
bool gen_egress_has_service(gen_ctx *c, const gen_egress *eg, const mesh_service *svc);
/* Is s->vss[vs_index] imported (by c->egress when set, else by any listener)? */
bool gen_scope_vs(gen_ctx *c, size_t vs_index);
/* The index of svc in s->services (s->nservices when absent). */
size_t gen_service_index(const mesh_snapshot *s, const mesh_service *svc);

/* ---- route builders ----------------------------------------------------------------------- */

typedef struct gen_route_opts {
    const char *gateway;  /* "mesh" or "ns/name" */
    uint32_t port;        /* the port the routes serve (match.port filter, dest port) */
    bool default_retries; /* Istio's default retry policy when the VS has none */
} gen_route_opts;

/* The cluster name a route destination sends to (outbound|port|subset|host); ctx_port is
 * the port the route serves, used when the destination names none. Arena-owned. */
char *gen_dest_cluster(gen_ctx *c, const mesh_destination *d, uint32_t ctx_port);

/* Appends the routes of vs to *routes (arena array). Returns how many were added. */
size_t gen_vs_routes(gen_ctx *c, const mesh_virtual_service *vs, const gen_route_opts *o,
                     Envoy__Config__Route__V3__Route ***routes, size_t *nroutes);
/* A route named "default" matching every path under prefix; the caller sets the action. */
Envoy__Config__Route__V3__Route *gen_catchall_route(gen_ctx *c, const char *prefix);
Envoy__Config__Route__V3__Route *gen_default_route(gen_ctx *c, const char *cluster,
                                                   bool default_retries);
Envoy__Config__Route__V3__VirtualHost *gen_vhost(gen_ctx *c, const char *name);
void gen_vhost_domain(gen_ctx *c, Envoy__Config__Route__V3__VirtualHost *vh, const char *d);

/* ---- listener builders ------------------------------------------------------------------- */

/* A network Filter `name` whose typed_config is cfg packed in an Any. */
Envoy__Config__Listener__V3__Filter *gen_filter(gen_ctx *c, const char *name,
                                                const ProtobufCMessage *cfg);
/* Appends a ListenerFilter `name` (typed_config cfg) to l's listener_filters. */
void gen_listener_filter_add(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l, const char *name,
                             const ProtobufCMessage *cfg);
/* Appends the TLS inspector listener filter (SNI/ALPN for filter chain matches) to l. */
void gen_add_tls_inspector(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l);
/* HCM filter named envoy.filters.network.http_connection_manager with rds route_name. */
Envoy__Config__Listener__V3__Filter *gen_hcm_filter(gen_ctx *c, const char *stat_prefix,
                                                    const char *route_name);
Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
gen_hcm(gen_ctx *c, const char *stat_prefix, const char *route_name);
/* tcp_proxy to cluster; log: with the mesh config access log (istiod logs every tcp_proxy
 * but its blackhole chains'). */
Envoy__Config__Listener__V3__Filter *gen_tcp_proxy_filter(gen_ctx *c, const char *stat_prefix,
                                                          const char *cluster, bool log);

/* ---- telemetry (telemetry.c) ------------------------------------------------------------ */

/* An HCM's telemetry as istiod's default install has it: istio.metadata_exchange first
 * (ahead of the authentication and authorization filters, so their denials carry peer
 * metadata: call after gen_hcm_security_filters), istio.stats just before the router, and
 * the mesh config access log. Envoy flavours only. */
void gen_hcm_telemetry(
    gen_ctx *c,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h,
    gen_listener_class cls);
/* Appends the network istio.metadata_exchange filter (inbound chains, ISTIO_MUTUAL gateway
 * TCP servers) to *f. */
void gen_tcp_mx_filter(gen_ctx *c, Envoy__Config__Listener__V3__Filter ***f, size_t *n);
/* Appends the network istio.stats filters of cls to *f (one per prometheus provider in
 * force; nothing when metrics are off). */
void gen_tcp_stats_filter(gen_ctx *c, gen_listener_class cls,
                          Envoy__Config__Listener__V3__Filter ***f, size_t *n);
/* Appends the upstream istio.metadata_exchange filter to a cluster's filters: the client
 * half of the TCP exchange the inbound chains' filter answers (it acts only when the
 * upstream TLS negotiated ALPN istio-peer-exchange). istiod puts it on every outbound
 * cluster, subsets and PassthroughCluster included. */
void gen_cluster_mx_filter(gen_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl);
/* The listener-level access log (only connections no chain took, response flag NR) on l,
 * as istiod sets it on virtualInbound, virtualOutbound and gateway listeners. */
void gen_listener_access_log(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l);
/* The access logs of c->tel_class, appended to *logs: the Telemetry API's providers, else
 * the mesh config file access log (nothing without accessLogFile). */
void gen_access_log_add(gen_ctx *c, Envoy__Config__Accesslog__V3__AccessLog ***logs, size_t *n);
/* The Telemetries that apply to the proxy, in merge order (arena-owned array). */
const mesh_telemetry *const *gen_telemetries(gen_ctx *c, size_t *n);
/* istiod's fetchProvider (built-in prometheus, stackdriver, envoy, then mesh config's
 * extensionProviders, by name ignoring case), or NULL. */
const xds_tel_provider *gen_tel_provider(gen_ctx *c, const char *name);
/* istiod's configureTracing and the request ID extension on h, an Envoy HCM of class cls
 * (tracing.c): the Telemetry API's tracing, mesh config defaultProviders.tracing, else
 * enableTracing's provider-less block; a gRPC proxy gets nothing. */
void gen_hcm_tracing(
    gen_ctx *c,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h,
    gen_listener_class cls);
/* model.LookupCluster's service resolution: "<ns>/<host>" must name a service of that
 * namespace, "<host>" any. NULL when none. */
const mesh_service *gen_lookup_service(gen_ctx *c, const char *service);
/* The Telemetries that apply to the proxy ("tel=ns/a,ns/b" or "tel=-"), for the cache keys
 * of every listener: they shape its stats filters and access logs. Arena-owned. */
const char *gen_telemetry_key(gen_ctx *c);

/* ---- L4 routes (VirtualService tcp and tls) ----------------------------------------------- */

/* Does an L4 match clause apply to this gateway ("mesh" or "ns/name"), port (0 = any) and
 * proxy (sourceLabels)? */
bool gen_l4_match_applies(gen_ctx *c, const mesh_l4_match *m, const char *gateway, uint32_t port);
/* The first tcp route of vs that applies, or NULL. */
const mesh_l4_route *gen_vs_tcp_route(gen_ctx *c, const mesh_virtual_service *vs,
                                      const char *gateway, uint32_t port);
/* Whether vs's tcp/tls matches depend on the proxy's labels (for cache keys). */
bool gen_vs_l4_uses_labels(const mesh_virtual_service *vs);
/* tcp_proxy to the route's destinations: one cluster, or weighted_clusters when several
 * carry weight; NULL route = BlackHoleCluster. ctx_port resolves destinations without a
 * port (Istio's same-port rule). */
Envoy__Config__Listener__V3__Filter *gen_tcp_route_filter(gen_ctx *c, const mesh_l4_route *r,
                                                          uint32_t ctx_port);

/* ---- clusters and endpoints --------------------------------------------------------------- */

/* An outbound cluster for svc:port (subset may be NULL), with the DestinationRule's
 * traffic policy applied (gRPC: only what C core accepts). */
Envoy__Config__Cluster__V3__Cluster *gen_outbound_cluster(gen_ctx *c, const mesh_service *svc,
                                                          const mesh_port *port,
                                                          const char *subset);
/* istiod's telemetry metadata on a cluster: filter_metadata["istio"]["services"] = one
 * {host, name, namespace} per service (a ServiceEntry's name being its host). Returns the
 * "istio" Struct. */
Google__Protobuf__Struct *gen_cluster_services_metadata(gen_ctx *c,
                                                        Envoy__Config__Cluster__V3__Cluster *cl,
                                                        const mesh_service *const *svcs, size_t n);
/* Lists outbound clusters (all services x ports, plus DR subsets). */
void gen_list_outbound_clusters(gen_ctx *c, const char *const *names, size_t nnames,
                                gen_items *out);
/* The DestinationRule that shapes the proxy's outbound traffic to hostname (its labels
 * pick workloadSelector rules, so they are in the view whenever the proxy's namespace has
 * such a rule), or NULL. */
const mesh_destination_rule *gen_dr(gen_ctx *c, const char *hostname);
/* istiod's config info metadata: filter_metadata["istio"]["config"] =
 * "/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>" (kind in kebab case, e.g.
 * "destination-rule"; istiod writes the version it stores, always v1). Returns the
 * "istio" Struct so callers can add fields; *md is created when NULL. */
Google__Protobuf__Struct *gen_config_metadata(gen_ctx *c, Envoy__Config__Core__V3__Metadata **md,
                                              const char *kind, const char *ns, const char *name);
/* Identity of gen_dr's answer ("ns/name[,ns/name...]" or "-"), for cache keys. */
char *gen_dr_key(gen_ctx *c, const char *hostname);
/* The workloadSelector DestinationRules of the proxy's namespace its labels match
 * ("drsel=ns/a,ns/b"), "" when the namespace has none: for cache keys of resources that
 * read rules of many hosts (route hash policies). */
char *gen_dr_selector_key(gen_ctx *c);
/* Whether EDS marks this endpoint tlsMode=istio for auto mTLS: its pod says
 * security.istio.io/tlsMode: istio and its PeerAuthentication does not DISABLE the port. */
bool gen_endpoint_tls_istio(const mesh_snapshot *s, const mesh_endpoint_shard *sh,
                            const mesh_endpoint *ep);
/* The traffic policy of svc:port[/subset] under dr: the subset's, else the port's, else the
 * rule's; NULL when none. */
const mesh_traffic_policy *gen_policy(const mesh_destination_rule *dr, uint32_t port,
                                      const char *subset);
/* Istio's default circuit breakers (every threshold at its maximum) on cl. */
void gen_default_circuit_breakers(gen_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl);
/* istiod's traffic policy of an inbound cluster (buildInboundCluster): only the connection
 * pool, the defaults overridden by the DestinationRule of svc (port: its service port) as
 * the proxy's namespace sees it without selector rules, or wholly by the Sidecar's pool for
 * the port (sidecar_pool, NULL = none). */
void gen_inbound_policy(gen_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl,
                        const mesh_service *svc, uint32_t port, const mesh_conn_pool *sidecar_pool);

/* ---- workload security: policies that apply to the proxy's own workload ---------------- */

/* Does a security.istio.io policy (selector in namespace pns) apply to this proxy's
 * workload, as istiod selects: the proxy's namespace or the root namespace (s->root_ns),
 * an empty selector meaning the whole namespace (the mesh in the root namespace), else
 * every label of the selector on the proxy. Policies with targetRefs never apply to
 * sidecars or proxyless gRPC (they name gateways and waypoints). */
bool gen_policy_applies(gen_ctx *c, const mesh_meta *m, const mesh_labels *selector,
                        size_t ntarget_refs);
/* Whether some security policy of s has a selector (then LDS depends on proxy labels). */
bool gen_security_uses_labels(const mesh_snapshot *s);
/* The PeerAuthentication mode for a workload (namespace, labels) on one of its ports, as
 * istiod composes mesh, namespace and workload policies; never UNSET (PERMISSIVE). */
mesh_mtls_mode gen_peer_mtls(const mesh_snapshot *s, const char *ns, const mesh_labels *labels,
                             uint32_t port);
/* The policies that apply to the proxy's workload ("pa:ns/name,ra:...,ap:..."), for cache
 * keys of what they shape. Arena-owned. */
char *gen_workload_security_key(gen_ctx *c);
/* Istio mTLS in ct, through the agent's SDS: the workload certificate ("default"), peers
 * checked against the mesh root ("ROOTCA") and, when nsans > 0, one of the exact SANs. */
void gen_istio_mtls_context(gen_ctx *c,
                            Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                            char *const *sans, size_t nsans);

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter gen_hfilter;

gen_hfilter *gen_http_filter_new(gen_ctx *c, const char *name, const ProtobufCMessage *cfg);
/* Puts the authentication and authorization filters that apply to the proxy's workload
 * at the head of an inbound HCM's filters (listener.c). */
void gen_hcm_security_filters(
    gen_ctx *c,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h);

/* authn.c: the jwt_authn filter for the RequestAuthentications that apply to the proxy,
 * appended to *f (nothing when none apply). */
void gen_authn_http_filters(gen_ctx *c, gen_hfilter ***f, size_t *n);
/* authz.c: istiod's HTTP authorization filters for the AuthorizationPolicies that apply to
 * the proxy (CUSTOM ext_authz, DENY, ALLOW, AUDIT RBAC filters, in istiod's order),
 * appended to *f (nothing when none apply). c->grpc: what gRFC A41 servers accept. */
void gen_authz_http_filters(gen_ctx *c, gen_hfilter ***f, size_t *n);
/* authz.c: the network RBAC (and CUSTOM ext_authz) filters for a TCP chain (placed before
 * tcp_proxy). */
void gen_authz_network_filters(gen_ctx *c, Envoy__Config__Listener__V3__Filter ***f, size_t *n);

/* ---- TLS: proxyless gRPC (gRFC A29) and Envoy SDS ------------------------------------------ */

/* CommonTlsContext for gRPC's certificate providers: own certificate from instance
 * "default" (certificate "default"), peers validated against instance "default"
 * certificate "ROOTCA" and, when nsans > 0, one of the exact SANs. */
Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
gen_grpc_common_tls(gen_ctx *c, char *const *sans, size_t nsans);
/* Envoy TLS over SDS (on ADS): appends the certificate to present to ct, or makes ct
 * validate peers. cred NULL = the workload's own ("default", root "ROOTCA"), else the
 * Kubernetes Secret ("kubernetes://<cred>", CA "kubernetes://<cred>-cacert"). */
void gen_sds_certificate(gen_ctx *c,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                         const char *cred);
void gen_sds_validation(gen_ctx *c,
                        Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                        const char *cred);
/* A server's certificate from files in the proxy, served by its agent's SDS (istiod's
 * ApplyToCommonTLSContext for ServerTLSSettings without credentialName): "file-cert:
 * <cert>~<key>" (else "default"); with validate, client certificates checked against
 * "file-root:<ca>" (else "ROOTCA") and crl (a file; NULL or "" = none). */
void gen_file_server_tls(gen_ctx *c,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                         const char *cert, const char *key, const char *ca, const char *crl,
                         bool validate);
/* An empty DownstreamTlsContext with its CommonTlsContext (*ct), in the arena. */
Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *
gen_downstream_tls_new(gen_ctx *c,
                       Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext **ct);
/* TransportSocket "envoy.transport_sockets.tls" wrapping an Upstream/DownstreamTlsContext. */
Envoy__Config__Core__V3__TransportSocket *gen_tls_transport_socket(gen_ctx *c,
                                                                   const ProtobufCMessage *ctx);

#endif
