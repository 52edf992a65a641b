/* gen_authz: AuthorizationPolicy -> Envoy RBAC filters. PLACEHOLDER being written. */
#include "xds/gen/gen_internal.h"

void gen_authz_http_filters(gen_ctx *c, gen_hfilter ***f, size_t *n)
{
    (void)c, (void)f, (void)n;
}

void gen_authz_network_filters(gen_ctx *c, Envoy__Config__Listener__V3__Filter ***f, size_t *n)
{
    (void)c, (void)f, (void)n;
}
