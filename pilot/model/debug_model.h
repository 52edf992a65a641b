/* debug_model: the model's debug endpoints (/debug/configz, /debug/registryz,
 * /debug/endpointShardz), registered in the table of debug.h. */
#ifndef PILOT_MODEL_DEBUG_MODEL_H
#define PILOT_MODEL_DEBUG_MODEL_H

#include "pilot/model/model.h"

/* Registers the handlers; m must outlive the HTTP servers. */
void model_debug_register(model *m);

#endif
