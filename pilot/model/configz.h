/* configz: what /debug/configz shows, for readers of a snapshot outside pilot/model (the xDS
 * debug endpoints): every accepted object as Kubernetes-shaped JSON. */
#ifndef PILOT_MODEL_CONFIGZ_H
#define PILOT_MODEL_CONFIGZ_H

#include "pilot/model/snapshot.h"

struct cJSON;
/* The spec of the accepted object kind/ns/name ("Sidecar", "default", "scope"), borrowed from
 * s (valid while s is held), or NULL. A scan of the snapshot's objects: for debug use. */
const struct cJSON *mesh_snapshot_configz_spec(const mesh_snapshot *s, const char *kind,
                                               const char *ns, const char *name);

#endif
