/* snapshot: the immutable, versioned, refcounted mesh snapshot the model thread publishes
 * (pilot/model/model.c) and every reader works from: the xDS generators and server, the
 * debug endpoints. A reader retains the snapshot it started with, so it always sees one
 * consistent mesh; nothing reachable from it changes while a reference is held.
 */
#ifndef PILOT_MODEL_SNAPSHOT_H
#define PILOT_MODEL_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pilot/config/mesh.h"

/* ---- JWKS fetched by the control plane ------------------------------------------------ */

/* One jwksUri of an accepted RequestAuthentication and the key set last fetched from it
 * (pilot/jwks). The fetcher lists only URIs it holds keys for; an absent URI (or a NULL
 * jwks) means no fetch has succeeded: generators then inline istiod's public-only JWKS,
 * so tokens fail to verify while requests without a token pass. */
typedef struct mesh_jwks_entry {
    char *uri;
    char *jwks;
} mesh_jwks_entry;

/* Immutable once handed to the model; refcounted so consecutive snapshots share it.
 * Entries sorted by uri (strcmp), unique. */
typedef struct mesh_jwks_table {
    atomic_int refs;
    size_t n;
    mesh_jwks_entry *v;
} mesh_jwks_table;

/* A table of n zeroed entries with one reference; the caller fills and sorts it
 * (mesh_jwks_table_sort) before sharing it. */
mesh_jwks_table *mesh_jwks_table_new(size_t n);
void mesh_jwks_table_sort(mesh_jwks_table *t);
void mesh_jwks_table_retain(mesh_jwks_table *t);
void mesh_jwks_table_release(mesh_jwks_table *t);
/* The entry for uri, or NULL (bisection). */
const mesh_jwks_entry *mesh_jwks_table_find(const mesh_jwks_table *t, const char *uri);

/* ---- the snapshot ---------------------------------------------------------------------- */

/* Mesh config defaultServiceExportTo, defaultVirtualServiceExportTo and
 * defaultDestinationRuleExportTo: the exportTo of an object that has none ("*", ".", "~" or
 * namespaces, as in exportTo). An empty list is istiod's default, every namespace. */
typedef struct mesh_export_defaults {
    char **svc;
    size_t nsvc;
    char **vs;
    size_t nvs;
    char **dr;
    size_t ndr;
} mesh_export_defaults;

/* Mesh config for istiod's Kubernetes Ingress controller: which Ingresses are served
 * (ingressControllerMode, ingressClass) and which gateway proxies serve them (ingressSelector,
 * else ingressService, as the label istio=<value>). */
typedef enum {
    MESH_INGRESS_STRICT = 0, /* istiod's default: only Ingresses of class ingressClass */
    MESH_INGRESS_DEFAULT,    /* also Ingresses without a class */
    MESH_INGRESS_OFF,
} mesh_ingress_mode;

typedef struct mesh_ingress_settings {
    char *ingress_class; /* NULL: "istio" */
    mesh_ingress_mode mode;
    char *ingress_service;  /* NULL: "istio-ingressgateway" */
    char *ingress_selector; /* NULL: none */
} mesh_ingress_settings;

/* A deep copy of src into *dst (which it overwrites); src NULL: the defaults. */
void mesh_ingress_settings_copy(mesh_ingress_settings *dst, const mesh_ingress_settings *src);
void mesh_ingress_settings_clear(mesh_ingress_settings *d);
bool mesh_ingress_settings_equal(const mesh_ingress_settings *a, const mesh_ingress_settings *b);

/* A deep copy of src into *dst (which it overwrites); src NULL: empty. */
void mesh_export_defaults_copy(mesh_export_defaults *dst, const mesh_export_defaults *src);
/* Frees what d holds (not d) and zeroes it. */
void mesh_export_defaults_clear(mesh_export_defaults *d);
/* The exportTo that applies to an object with (to, n): its own, else the default (dto, dn)
 * (replaced in place). */
static inline void mesh_export_or_default(char *const **to, size_t *n, char *const *dto, size_t dn)
{
    if (*n == 0) {
        *to = dto;
        *n = dn;
    }
}

/* Everything the xDS generators and debug endpoints read. Arrays are sorted by
 * (namespace, name) for Istio kinds and by hostname for services, so lookups can bisect
 * and output is deterministic. Each listed object is held by one reference. */
typedef struct mesh_snapshot {
    atomic_int refs;
    uint64_t version;     /* strictly increasing */
    char version_str[48]; /* "2026-11-26T15:00:00Z/7", Istio's push version shape */
    int64_t created_wall_ns;
    char *domain;
    char *root_ns;    /* mesh config rootNamespace: rules there apply mesh-wide */
    char *cluster_id; /* --clusterID: the cluster this registry describes */
    bool auto_mtls;   /* mesh config enableAutoMtls (default true) */
    mesh_export_defaults export_defaults; /* mesh config default*ExportTo (owned) */

    mesh_service **services; /* Kubernetes Services and ServiceEntry hosts */
    size_t nservices;
    mesh_virtual_service **vss;
    size_t nvss;
    mesh_destination_rule **drs;
    size_t ndrs;
    /* drs merged and indexed as istiod's setDestinationRules (per namespace and host, exact
     * hosts bisected, wildcards apart; see snapshot.c), built with the array and shared
     * with it, so a lookup costs a bisection, not a scan. */
    struct mesh_dr_index *dr_index;
    mesh_gateway **gws;
    size_t ngws;
    mesh_service_entry **ses;
    size_t nses;
    mesh_namespace **namespaces;
    size_t nnamespaces;
    /* security.istio.io, each sorted by (namespace, name) */
    mesh_peer_authentication **pas;
    size_t npas;
    mesh_request_authentication **ras;
    size_t nras;
    mesh_authorization_policy **aps;
    size_t naps;
    /* networking.istio.io Sidecars, sorted by (namespace, name): a namespace's are one run,
     * found by bisection (mesh_snapshot_sidecar_for). */
    mesh_sidecar **sidecars;
    size_t nsidecars;
    /* telemetry.istio.io Telemetries, sorted by (namespace, name) like the Sidecars: a
     * namespace's are one run (mesh_snapshot_telemetries_for). */
    mesh_telemetry **telemetries;
    size_t ntelemetries;

    /* Endpoints, per service hostname, sorted by hostname. Kept apart so an endpoint-only
     * change builds a new snapshot that shares every config array above. */
    mesh_endpoint_shard **shards;
    size_t nshards;

    /* For /debug/configz: every accepted object as Kubernetes-shaped JSON, in kind order
     * then (namespace, name). Owned by the snapshot (shared with the next when unchanged). */
    struct mesh_configz *configz;

    /* Secrets holding gateway credentials, sorted by (namespace, name); only SDS reads
     * them. Never part of configz. */
    mesh_secret **secrets;
    size_t nsecrets;

    /* jwksUri -> JWKS JSON as the JWKS fetcher last handed it to the model (NULL until
     * then), sorted by uri. Not built from the store: carried over unchanged between
     * snapshots until the fetcher hands a new table, which makes a full push. */
    mesh_jwks_table *jwks;
} mesh_snapshot;

void mesh_snapshot_retain(mesh_snapshot *s);
void mesh_snapshot_release(mesh_snapshot *s);

const mesh_service *mesh_snapshot_service(const mesh_snapshot *s, const char *hostname);
const mesh_endpoint_shard *mesh_snapshot_shard(const mesh_snapshot *s, const char *hostname);
/* The DestinationRule a proxy in proxy_ns with labels uses for an FQDN host, as istiod
 * picks it (PushContext.destinationRule, then SidecarScope.DestinationRule): the proxy's
 * namespace first (for a proxy in the root namespace, its private rules), then what the
 * service's namespace exports to proxy_ns, then what the root namespace (s->root_ns)
 * exports; each time the most specific host (exact, then the longest wildcard suffix).
 * Several rules for one host in one namespace are merged as istiod merges them (the
 * result is owned by the snapshot and names the first rule in meta). A rule with a
 * workloadSelector applies only to proxies of its own namespace whose labels match it;
 * labels NULL (inbound use) means none matches. *key (optional) gets the snapshot-owned
 * identity of the result for cache keys, "ns/name[,ns/name...]" (every rule merged into
 * it), NULL when there is none. */
const mesh_destination_rule *
mesh_snapshot_destination_rule(const mesh_snapshot *s, const char *hostname, const char *proxy_ns,
                               const mesh_labels *labels, const char **key);
/* Whether some DestinationRule of proxy_ns has a workloadSelector: then which rule a proxy
 * of proxy_ns sees depends on its labels. */
bool mesh_snapshot_dr_selects(const mesh_snapshot *s, const char *proxy_ns);
const mesh_gateway *mesh_snapshot_gateway(const mesh_snapshot *s, const char *ns, const char *name);
/* The Secret ns/name, or NULL. */
const mesh_secret *mesh_snapshot_secret(const mesh_snapshot *s, const char *ns, const char *name);
/* The Sidecar that scopes a sidecar proxy in proxy_ns with labels proxy_labels, as istiod's
 * getSidecarScope picks it: among proxy_ns's Sidecars with a workloadSelector (even one
 * without labels) that matches, the oldest (creationTimestamp, then name); else proxy_ns's
 * oldest Sidecar without workloadSelector; else that of the root namespace (s->root_ns,
 * the mesh default); else NULL. Never another namespace's selector. O(log n + the
 * Sidecars of the two namespaces). Borrowed from s. */
const mesh_sidecar *mesh_snapshot_sidecar_for(const mesh_snapshot *s, const char *proxy_ns,
                                              const mesh_labels *proxy_labels);

/* The Telemetries that apply to a proxy in proxy_ns with labels proxy_labels, in istiod's
 * merge order (applicableTelemetries, pilot/pkg/model/telemetry.go): the root namespace's
 * (s->root_ns) oldest Telemetry without selector or targetRefs, then proxy_ns's oldest one
 * (when proxy_ns is not the root namespace), then every Telemetry of proxy_ns whose
 * selector matches the labels, oldest first (creationTimestamp, then name). Later entries
 * override earlier ones. targetRefs name Gateway API gateways and waypoints, which we do not
 * serve: such Telemetries never apply. Fills out (room for s->ntelemetries entries,
 * borrowed from s) and returns how many. */
size_t mesh_snapshot_telemetries_for(const mesh_snapshot *s, const char *proxy_ns,
                                     const mesh_labels *proxy_labels, const mesh_telemetry **out);
/* Whether some Telemetry of proxy_ns has a selector: then which apply depends on labels. */
bool mesh_snapshot_telemetry_selects(const mesh_snapshot *s, const char *proxy_ns);

/* What changed between two snapshots; handed to the push scheduler. */
typedef struct mesh_push_request {
    bool full;             /* config changed: every type for every proxy */
    char **endpoint_hosts; /* EDS-only: the hostnames whose shards changed */
    size_t nendpoint_hosts;
    uint32_t kinds_changed; /* bit (1 << mesh_kind) for each kind that changed */
    int64_t start_ns;       /* monotonic time of the first event merged in */
} mesh_push_request;

#endif
