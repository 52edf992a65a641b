/* gen_authn: RequestAuthentication -> Envoy jwt_authn. PLACEHOLDER being written. */
#include "xds/gen/gen_internal.h"

void gen_authn_http_filters(gen_ctx *c, gen_hfilter ***f, size_t *n)
{
    (void)c, (void)f, (void)n;
}
