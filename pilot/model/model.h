/* model: the config store and service registry, owned by the model thread.
 *
 * Sources post events (source.h) from any thread into a bounded mailbox; the model thread
 * applies them through mesh_parse() (an invalid object is rejected alone, logged with its
 * origin, kind, namespace/name and field; a modified object that becomes invalid keeps its
 * last valid version), debounces (PILOT_DEBOUNCE_AFTER of quiet, at most
 * PILOT_DEBOUNCE_MAX after the first event), builds the next mesh_snapshot beside the
 * current one (reusing unchanged objects by reference; endpoint-only changes rebuild only
 * the changed shards), publishes it with one pointer swap and calls the push callback.
 *
 * Locks: one mutex guards the mailbox, one guards the published snapshot pointer; neither
 * is held while calling out.
 */
#ifndef PILOT_MODEL_MODEL_H
#define PILOT_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "pilot/base/source.h"
#include "pilot/model/snapshot.h"

typedef struct model model;

typedef struct model_opts {
    const char *domain;         /* "cluster.local" */
    int64_t debounce_after_ns;  /* PILOT_DEBOUNCE_AFTER, default 100ms */
    int64_t debounce_max_ns;    /* PILOT_DEBOUNCE_MAX, default 10s */
    int nsources;               /* sources that must report synced before ready */
    const char *root_namespace; /* mesh config rootNamespace; NULL: "istio-system" */
    const char *cluster_id;     /* --clusterID; NULL: "Kubernetes" */
    bool auto_mtls_off;         /* mesh config enableAutoMtls: false */
    const mesh_export_defaults *export_defaults; /* mesh config default*ExportTo (copied) */
    const mesh_ingress_settings *ingress;        /* mesh config ingress* (copied; NULL: defaults) */
    const char
        *ingress_ns; /* K8S_INGRESS_NS: the Ingress Gateways' namespace; NULL: istio-system */
} model_opts;

/* Called on the model thread after each publish. snap is borrowed: retain to keep it. */
typedef void (*model_push_fn)(void *ud, mesh_snapshot *snap, const mesh_push_request *req);

/* Returns NULL only on bad opts. Starts no thread until model_start. */
model *model_new(const model_opts *opts);
/* Registers the push callback; call before model_start. Several may be registered. */
void model_on_push(model *m, model_push_fn fn, void *ud);
/* A sink for one source; ud of the sink is the model. */
source_sink model_sink(model *m);
int model_start(model *m);
/* Stops the model thread: no push callback runs after it returns (call it before freeing
 * what the callbacks use, e.g. the xDS server). The published snapshot stays readable.
 * Idempotent. */
void model_stop(model *m);
/* Stops the thread (model_stop), releases everything. */
void model_free(model *m);

/* Hands the model the JWKS fetcher's latest table (any thread; never blocks beyond the
 * mailbox lock). Takes the caller's reference (t may be NULL: no table). The next snapshot
 * carries it and is pushed in full, debounced like a config change; a table handed
 * before the model took the previous one replaces it. */
void model_set_jwks(model *m, mesh_jwks_table *t);

/* A new mesh config (any thread; never blocks beyond the mailbox lock): rootNamespace
 * (NULL or "": istio-system), enableAutoMtls and the default*ExportTo lists (copied; NULL:
 * none). The next snapshot carries them and is
 * pushed in full with every kind changed, debounced like a config change, so settings the
 * xDS generators read from mesh config (set on them before this call) reach every proxy.
 * A call before the model took the previous one replaces it. */
void model_set_mesh(model *m, const char *root_namespace, bool auto_mtls_off,
                    const mesh_export_defaults *export_defaults,
                    const mesh_ingress_settings *ingress);

/* The current snapshot with one reference for the caller, or NULL before the first build. */
mesh_snapshot *model_snapshot(model *m);
/* True once every source reported synced and the first snapshot is published. */
bool model_ready(const model *m);

/* Tests: apply every queued event and publish now, ignoring the debounce. */
void model_flush(model *m);

#endif
