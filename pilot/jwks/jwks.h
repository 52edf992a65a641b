/* jwks: the control plane's JWKS resolver (istiod's JwksResolver): fetches the jwksUri of
 * every accepted RequestAuthentication rule so the jwt_authn filters can inline the keys.
 *
 * It learns the URIs from the snapshots the model publishes (a push callback, on the model
 * thread, that only swaps a list under a leaf lock), fetches on its own thread with
 * libcurl, and hands each new uri -> JWKS table to the model (model_set_jwks), whose next
 * snapshot carries it (mesh_snapshot.jwks) and is pushed in full. Generators never fetch.
 */
#ifndef PILOT_JWKS_JWKS_H
#define PILOT_JWKS_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include "pilot/model/model.h"

typedef struct jwks_fetcher jwks_fetcher;

typedef struct jwks_opts {
    int64_t refresh_ns;         /* after a success; 0: istiod's 20 min */
    int64_t retry_ns;           /* first retry after a failure, doubling; 0: 1 min */
    int64_t retry_max_ns;       /* 0: 60 min */
    int64_t evict_ns;           /* unused (or not refreshed) that long: dropped; 0: 7 days */
    int64_t default_timeout_ns; /* rules without a timeout; 0: 5 s */
    size_t max_body;            /* larger responses are failures; 0: 1 MiB */
} jwks_opts;

/* A fetcher for model m (opts NULL: istiod's values). Registers its push callback with
 * model_on_push, so call it before model_start. NULL on bad arguments. */
jwks_fetcher *jwks_fetcher_new(model *m, const jwks_opts *opts);
/* Starts the fetch thread. 0, or -1 (thread not created). */
int jwks_fetcher_start(jwks_fetcher *f);
/* Stops the thread (an ongoing transfer is aborted) and frees everything. Call after
 * model_stop (no push callback may run any more) and before model_free. NULL is fine. */
void jwks_fetcher_free(jwks_fetcher *f);

#endif
