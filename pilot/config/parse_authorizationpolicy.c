/* parse_authorizationpolicy: AuthorizationPolicy (security.istio.io v1, v1beta1).
 * PLACEHOLDER being written: refuses every object for now. */
#include <stdlib.h>

#include "pilot/config/parse_internal.h"

int mp_parse_authorization_policy(mp_ctx *c, const cJSON *obj, mesh_authorization_policy *o)
{
    (void)obj;
    (void)o;
    return mp_fail(c, "spec", "AuthorizationPolicy is not supported yet");
}

void mp_free_authorization_policy(mesh_authorization_policy *o)
{
    (void)o;
}
