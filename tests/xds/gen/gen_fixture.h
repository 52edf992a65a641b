/* gen_fixture: snapshots and proxies for the generator tests, built the way the real
 * control plane builds them (yaml_to_json_docs -> model sink -> model_flush). */
#ifndef TESTS_XDS_GEN_FIXTURE_H
#define TESTS_XDS_GEN_FIXTURE_H

#include <stddef.h>

#include "pilot/config/mesh.h"
#include "xds/gen/gen.h"

/* Every document of each YAML text becomes one event; NULL-terminated list.
 * Returns a snapshot with one reference (release with mesh_snapshot_release). */
mesh_snapshot *fx_snapshot(const char *yaml, ...);
/* Same, under mesh config default*ExportTo lists (copied). */
mesh_snapshot *fx_snapshot_export(const mesh_export_defaults *d, const char *yaml, ...);
/* Same, from files; NULL-terminated. NULL when a file cannot be read. */
mesh_snapshot *fx_snapshot_files(const char *path, ...);

/* A proxy by hand: labels "k=v,k=v" (may be NULL). Free with xds_proxy_free. */
xds_proxy *fx_proxy(xds_flavour f, const char *ns, const char *ip, const char *labels);

/* Generates and asserts success. names NULL = wildcard. */
void fx_gen(xds_gen *g, const xds_proxy *p, const mesh_snapshot *s, const char *type,
            const char *const *names, size_t nnames, xds_resource_set *out);
const xds_resource *fx_find(const xds_resource_set *set, const char *name);

/* Unpacks an Any's value when its type_url names desc; NULL otherwise. Caller frees with
 * protobuf_c_message_free_unpacked. */
void *fx_unpack_any(const void *any, const void *desc);

#endif
