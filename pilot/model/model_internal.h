/* model_internal: what pilot/model/model.c, pilot/model/build.c, pilot/model/snapshot.c and
 * pilot/debug_model.c share and nobody else needs.
 *
 * Shared arrays: the object arrays of a mesh_snapshot (services, vss, drs, ...) are
 * allocated behind a small refcounted header so that a snapshot built for an endpoint-only
 * change can point at the very same arrays as the previous one. snap_arr_* manage them;
 * the element release function is chosen by the array's kind.
 */
#ifndef PILOT_MODEL_MODEL_INTERNAL_H
#define PILOT_MODEL_MODEL_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "pilot/model/model.h"
#include "pilot/model/snapshot.h"

/* Element kinds of a shared array: a mesh_kind for parsed objects, or one of these. */
#define SNAP_ARR_SERVICES (-10)
#define SNAP_ARR_SHARDS (-11)

typedef struct snap_arr {
    atomic_int refs;
    int kind;
    size_t n;
    void *items[];
} snap_arr;

/* A new array of n slots (filled by the caller), one reference. */
snap_arr *snap_arr_new(int kind, size_t n);
/* The header of an items pointer taken from a snapshot (never NULL for a built snapshot). */
snap_arr *snap_arr_of(void *items);
void snap_arr_retain(snap_arr *a);
/* Drops one reference; the last one releases every element and frees the array. */
void snap_arr_release(snap_arr *a);

/* /debug/configz content: a JSON array of Kubernetes-shaped objects, immutable once
 * published (cJSON printing only reads). */
struct mesh_configz {
    atomic_int refs;
    cJSON *items;
};
struct mesh_configz *snap_configz_new(cJSON *items);
void snap_configz_retain(struct mesh_configz *c);
void snap_configz_release(struct mesh_configz *c);

/* Refcounted services and shards built by the model (not by mesh_parse). */
mesh_service *snap_service_new(void);
void snap_service_retain(mesh_service *s);
void snap_service_release(mesh_service *s);
mesh_endpoint_shard *snap_shard_new(const char *hostname, const char *ns);
void snap_shard_retain(mesh_endpoint_shard *sh);
void snap_shard_release(mesh_endpoint_shard *sh);
void snap_endpoint_clear(mesh_endpoint *ep);
/* True when both shards list the same endpoints in the same order. */
bool snap_shard_equal(const mesh_endpoint_shard *a, const mesh_endpoint_shard *b);
/* Deep copy of a mesh_meta's strings and labels (refs set to 1). */
void snap_meta_copy(const mesh_meta *src, mesh_meta *dst);
void snap_meta_clear(mesh_meta *m);

/* A bare snapshot with refs 1 and every array unset; the builder fills it. */
mesh_snapshot *snap_new(void);

/* ---- the model thread's store (model.c) ------------------------------------------------ */

typedef struct store_entry {
    char *key;            /* "ns/name"; a Namespace's name alone */
    mesh_object obj;      /* one reference */
    uint64_t hash;        /* of the accepted JSON: a re-sent identical object is no change */
    cJSON *configz;       /* Istio kinds: Kubernetes-shaped copy for /debug/configz */
    mesh_service **built; /* services made from this Service / ServiceEntry, cached */
    size_t nbuilt;
    bool built_done;
    struct store_entry *next; /* hash chain */
} store_entry;

typedef struct store {
    store_entry **buckets;
    size_t nbuckets;
    size_t n;
} store;

store_entry *store_get(const store *st, const char *key);
/* Entries sorted by (namespace, name); caller frees the array (not the entries). */
store_entry **store_sorted(const store *st, size_t *n);

/* Accepted Istio objects with fields that have no effect here, {"Kind/ns/name": [paths]}:
 * a copy for the caller (any thread). */
cJSON *model_unsupported_json(model *m);

/* The DestinationRule index of a snapshot (snapshot.c), built with its drs array and shared
 * with it. */
/* dflt: mesh config defaultDestinationRuleExportTo (copied), for rules without exportTo. */
struct mesh_dr_index *snap_dr_index_new(mesh_destination_rule *const *drs, size_t n,
                                        char *const *dflt, size_t ndflt);
/* Was x built with exactly these defaults? (Reused only then.) */
bool snap_dr_index_has_defaults(const struct mesh_dr_index *x, char *const *dflt, size_t ndflt);
void snap_dr_index_retain(struct mesh_dr_index *x);
void snap_dr_index_release(struct mesh_dr_index *x);

/* ---- snapshot building (model_build.c), on the model thread ------------------------------ */

typedef struct model_build_in {
    const char *domain;
    const char *cluster_id;    /* --clusterID: the registry's cluster, a label on endpoints */
    store *stores;             /* MESH_KIND__COUNT of them */
    const mesh_snapshot *prev; /* NULL for the first build */
    bool full;
    uint32_t kinds_changed;
    char **dirty_hosts; /* endpoint-only builds: hostnames of changed slices */
    size_t ndirty_hosts;
    char **dirty_pods; /* "ns/name" of changed pods */
    size_t ndirty_pods;
    char **dirty_ips; /* their old and new IPs */
    size_t ndirty_ips;
    uint64_t *shard_seq;   /* model-wide shard version counter */
    mesh_jwks_table *jwks; /* the fetcher's latest table (the snapshot takes a reference) */
    const mesh_export_defaults *export_defaults; /* mesh config default*ExportTo; NULL: none */
    const mesh_ingress_settings *ingress;        /* mesh config ingress*; NULL: defaults */
    const char *ingress_ns;                      /* the Ingress Gateways' namespace */
} model_build_in;

/* istiod's Kubernetes Ingress controller (ingress.c): the Gateways and VirtualServices the
 * processed Ingresses of in->stores make, as the Istio objects istiod lists, appended to the
 * cJSON arrays gws and vss (the caller's). */
void model_ingress_docs(const model_build_in *in, cJSON *gws, cJSON *vss);
/* One of those documents parsed (the object with one reference, the caller's), or NULL,
 * logged, when it does not validate or is not of kind want. */
void *model_ingress_parse(const model_build_in *in, const cJSON *doc, mesh_kind want);

/* Builds the next snapshot beside in->prev (version fields left for the caller). On return
 * *changed (malloc'd strings, caller frees) lists the hostnames whose shard differs from
 * prev's, removed ones included. */
mesh_snapshot *model_build(const model_build_in *in, char ***changed, size_t *nchanged);

/* Hostname of a Kubernetes Service: "<name>.<ns>.svc.<domain>" (malloc'd). */
char *model_k8s_hostname(const char *name, const char *ns, const char *domain);

#endif
