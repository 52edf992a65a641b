/* fuzz_node: bytes as an envoy.config.core.v3.Node (protobuf-c) -> xds_proxy_from_node,
 * which every ADS stream runs on the node of its first request: node ID splitting,
 * metadata Struct -> JSON, INSTANCE_IPS, LABELS, locality. */
#include <string.h>

#include "envoy/config/core/v3/base.pb-c.h"

#include "fuzz.h"
#include "pilot/base/pbdepth.h"
#include "xds/gen/gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xds_proxy *p = NULL;
    char err[256];

    fuzz_quiet();
    /* the server refuses deep nesting before unpacking (pbdepth.h); so does this target */
    Envoy__Config__Core__V3__Node *node = NULL;
    if (pb_depth_ok(&envoy__config__core__v3__node__descriptor, data, size, PB_MAX_DEPTH))
        node = envoy__config__core__v3__node__unpack(NULL, size, data);
    if (node == NULL)
        return 0;
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    int rc = xds_proxy_from_node(node, "cluster.local", &p, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(p == NULL);
        FUZZ_CHECK(strnlen(err, sizeof(err)) > 0);
        goto out;
    }
    /* what the stream and the generators read without checking */
    FUZZ_CHECK(p != NULL && p->id != NULL && p->ns != NULL && p->pod_name != NULL);
    FUZZ_CHECK(p->dns_domain != NULL && p->cluster_id != NULL && p->nips > 0);
    FUZZ_CHECK(p->region != NULL && p->zone != NULL && p->subzone != NULL);
    for (size_t i = 0; i < p->nips; i++)
        FUZZ_CHECK(p->ips[i] != NULL && p->ips[i][0] != '\0');
    for (size_t i = 0; i < p->labels.n; i++)
        FUZZ_CHECK(p->labels.keys[i] != NULL && p->labels.vals[i] != NULL);
    /* /debug/adsz prints the metadata */
    char *js = cJSON_PrintUnformatted(p->metadata);
    FUZZ_CHECK(js != NULL);
    free(js);
    xds_proxy_free(p);
out:
    envoy__config__core__v3__node__free_unpacked(node, NULL);
    return 0;
}
