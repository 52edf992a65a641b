/* resource: refcounted serialized xDS resources, shared between proxies and threads.
 * The bytes are immutable once built; only the refcount changes (atomically). */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "pilot/base/util.h"
#include "xds/gen/gen.h"

/* type_url is stored as a pointer: point it at our constants so a caller's temporary
 * string can never dangle. */
static const char *resource_type_const(const char *t)
{
    static const char *const known[] = {XDS_TYPE_LISTENER, XDS_TYPE_ROUTE, XDS_TYPE_CLUSTER,
                                        XDS_TYPE_ENDPOINT, XDS_TYPE_SECRET};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (t && strcmp(t, known[i]) == 0)
            return known[i];
    return NULL;
}

xds_resource *xds_resource_new(const char *type_url, const char *name, const void *msg)
{
    const ProtobufCMessage *m = msg;
    if (!m || !name)
        return NULL;
    xds_resource *r = xcalloc(1, sizeof *r);
    atomic_init(&r->refs, 1);
    r->name = xstrdup(name);
    r->type_url = resource_type_const(type_url);
    if (!r->type_url) {
        /* an unknown type keeps its own copy, owned by nobody: refuse instead */
        free(r->name);
        free(r);
        return NULL;
    }
    r->len = protobuf_c_message_get_packed_size(m);
    r->bytes = xmalloc(r->len ? r->len : 1);
    size_t n = protobuf_c_message_pack(m, r->bytes);
    r->len = n;
    r->hash = util_hash64(r->bytes, r->len, 1469598103934665603ULL);
    return r;
}

void xds_resource_retain(xds_resource *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
}

void xds_resource_release(xds_resource *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->name);
    free(r->bytes);
    free(r);
}

void xds_resource_set_free(xds_resource_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        xds_resource_release(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = 0;
    s->id = 0;
}
