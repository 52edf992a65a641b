/* debug_model: the model's debug endpoints (/debug/configz, /debug/registryz,
 * /debug/endpointShardz), registered in the table of debug.h. */
#ifndef PILOT_MODEL_DEBUG_MODEL_H
#define PILOT_MODEL_DEBUG_MODEL_H

#include "pilot/model/model.h"

/* Registers the handlers; m must outlive the HTTP servers. */
void model_debug_register(model *m);
/* Registers /debug/mesh: the mesh config file at path (read now, as it was loaded; NULL or
 * "": none) with the defaults of the fields we read (rootNamespace, trustDomain,
 * enableAutoMtls) where it has none. */
void model_debug_register_mesh(const char *path, const char *root_ns, const char *trust_domain);
/* Shows mesh (a mesh config as JSON, copied; NULL: none) on /debug/mesh from now on, with
 * the same defaults: for whoever follows the mesh config as it changes. Any thread. */
struct cJSON;
void model_debug_set_mesh(const struct cJSON *mesh, const char *root_ns, const char *trust_domain);
/* Takes /debug/mesh off the table (waiting for running calls) and frees what it showed. */
void model_debug_unregister_mesh(void);

#endif
