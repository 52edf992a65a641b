/* parse_requestauthentication: RequestAuthentication (security.istio.io v1, v1beta1).
 * PLACEHOLDER being written: refuses every object for now. */
#include <stdlib.h>

#include "pilot/config/parse_internal.h"

int mp_parse_request_authentication(mp_ctx *c, const cJSON *obj, mesh_request_authentication *o)
{
    (void)obj;
    (void)o;
    return mp_fail(c, "spec", "RequestAuthentication is not supported yet");
}

void mp_free_request_authentication(mesh_request_authentication *o)
{
    (void)o;
}
