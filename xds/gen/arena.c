/* arena: the per-call arena every generator allocates from (freed in one step when
 * xds_gen_generate returns), the item list, and the small message builders (Any, wrappers,
 * durations, ADS config sources, addresses, endpoints, regexes) the flavours share. */
/* Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * (immutable) snapshot, so it takes no locks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.pb-c.h"
#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* ---- arena ---------------------------------------------------------------------------- */

struct gen_arena_chunk {
    gen_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define GA_CHUNK 16384

void gen_arena_free(gen_arena *a)
{
    gen_arena_chunk *ch = a->head;
    while (ch) {
        gen_arena_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    a->head = NULL;
}

void *ga_alloc(gen_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    gen_arena_chunk *ch = a->head;
    if (!ch || ch->cap - ch->used < n) {
        size_t cap = n > GA_CHUNK ? n : GA_CHUNK;
        ch = xmalloc(sizeof *ch + cap);
        ch->used = 0;
        ch->cap = cap;
        ch->next = a->head;
        a->head = ch;
    }
    void *p = ch->data + ch->used;
    ch->used += n;
    memset(p, 0, n);
    return p;
}

char *ga_strdup(gen_arena *a, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *d = ga_alloc(a, n + 1);
    memcpy(d, s, n + 1);
    return d;
}

char *ga_printf(gen_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *d = ga_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void ga_push_raw(gen_arena *a, void **arr, size_t *n, const void *item, size_t sz)
{
    size_t k = *n;
    if (k == 0 || (k & (k - 1)) == 0) {
        /* k is 0 or a power of two: the array is full; double it */
        size_t cap = k ? 2 * k : 1;
        void *na = ga_alloc(a, cap * sz);
        if (k)
            memcpy(na, *arr, k * sz);
        *arr = na;
    }
    memcpy((char *)*arr + k * sz, item, sz);
    *n = k + 1;
}

void gen_items_add(gen_ctx *c, gen_items *it, const gen_item *item)
{
    GA_PUSH(c->a, it->v, it->n, *item);
}

bool gen_names_has(const char *const *names, size_t nnames, const char *name)
{
    for (size_t i = 0; i < nnames; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* ---- growing strings and string maps ------------------------------------------------------ */

void ga_cat(gen_arena *a, gen_sbuf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (b->len + (size_t)n + 1 > b->cap) {
        /* doubling keeps a key of k parts O(k) to build (the dropped copies stay in the
         * arena, at most as much again) */
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *ns = ga_alloc(a, cap);
        if (b->len)
            memcpy(ns, b->s, b->len);
        b->s = ns;
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

const char *ga_sbuf_str(gen_arena *a, gen_sbuf *b)
{
    return b->s ? b->s : ga_strdup(a, "");
}

void **gen_strmap_slot(gen_arena *a, gen_strmap *m, const char *key, bool create)
{
    if (!m->cap && !create)
        return NULL;
    if (create && (m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        const char **nk = ga_alloc(a, ncap * sizeof *nk);
        void **nv = ga_alloc(a, ncap * sizeof *nv);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t h = util_hash64(m->keys[i], strlen(m->keys[i]), 0) & (ncap - 1);
            while (nk[h])
                h = (h + 1) & (ncap - 1);
            nk[h] = m->keys[i];
            nv[h] = m->vals[i];
        }
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t h = util_hash64(key, strlen(key), 0) & (m->cap - 1);
    while (m->keys[h]) {
        if (strcmp(m->keys[h], key) == 0)
            return &m->vals[h];
        h = (h + 1) & (m->cap - 1);
    }
    if (!create)
        return NULL;
    m->keys[h] = key;
    m->n++;
    return &m->vals[h];
}

bool gen_strset_add(gen_arena *a, gen_strmap *m, const char *key)
{
    size_t n = m->n;
    gen_strmap_slot(a, m, key, true);
    return m->n > n;
}

/* ---- small builders ---------------------------------------------------------------------- */

Google__Protobuf__Any *gen_any(gen_ctx *c, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *any = GA_MSG(c->a, Google__Protobuf__Any, google__protobuf__any__init);
    any->type_url = ga_printf(c->a, "type.googleapis.com/%s", m->descriptor->name);
    size_t len = protobuf_c_message_get_packed_size(m);
    any->value.data = ga_alloc(c->a, len);
    any->value.len = protobuf_c_message_pack(m, any->value.data);
    return any;
}

Google__Protobuf__Duration *gen_duration(gen_ctx *c, int64_t ns)
{
    Google__Protobuf__Duration *d =
        GA_MSG(c->a, Google__Protobuf__Duration, google__protobuf__duration__init);
    if (ns < 0)
        ns = 0;
    d->seconds = ns / 1000000000;
    d->nanos = (int32_t)(ns % 1000000000);
    return d;
}

Google__Protobuf__UInt32Value *gen_u32(gen_ctx *c, uint32_t v)
{
    Google__Protobuf__UInt32Value *w =
        GA_MSG(c->a, Google__Protobuf__UInt32Value, google__protobuf__uint32_value__init);
    w->value = v;
    return w;
}

Google__Protobuf__UInt64Value *gen_u64(gen_ctx *c, uint64_t v)
{
    Google__Protobuf__UInt64Value *w =
        GA_MSG(c->a, Google__Protobuf__UInt64Value, google__protobuf__uint64_value__init);
    w->value = v;
    return w;
}

Google__Protobuf__BoolValue *gen_bool(gen_ctx *c, bool v)
{
    Google__Protobuf__BoolValue *w =
        GA_MSG(c->a, Google__Protobuf__BoolValue, google__protobuf__bool_value__init);
    w->value = v;
    return w;
}

Google__Protobuf__Struct *gen_struct_str(gen_ctx *c, const char *key, const char *val)
{
    Google__Protobuf__Struct *st =
        GA_MSG(c->a, Google__Protobuf__Struct, google__protobuf__struct__init);
    if (key)
        gen_struct_set_str(c, st, key, val);
    return st;
}

void gen_struct_set_str(gen_ctx *c, Google__Protobuf__Struct *st, const char *key, const char *val)
{
    Google__Protobuf__Struct__FieldsEntry *e = GA_MSG(c->a, Google__Protobuf__Struct__FieldsEntry,
                                                      google__protobuf__struct__fields_entry__init);
    e->key = ga_strdup(c->a, key);
    e->value = GA_MSG(c->a, Google__Protobuf__Value, google__protobuf__value__init);
    e->value->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    e->value->string_value = ga_strdup(c->a, val);
    GA_PUSH(c->a, st->fields, st->n_fields, e);
}

/* Nesting bound of gen_value_from_json: the input is mesh config, but a Struct nested
 * without limit would overflow the stack here and in protobuf-c's packer. */
#define GEN_JSON_MAX_DEPTH 32

static Google__Protobuf__Struct *gen_struct_from_json_depth(gen_ctx *c, const cJSON *j, int depth);

static Google__Protobuf__Value *gen_value_from_json(gen_ctx *c, const cJSON *j, int depth)
{
    Google__Protobuf__Value *v =
        GA_MSG(c->a, Google__Protobuf__Value, google__protobuf__value__init);
    if (cJSON_IsString(j)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        v->string_value = ga_strdup(c->a, j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        v->number_value = j->valuedouble;
    } else if (cJSON_IsBool(j)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        v->bool_value = cJSON_IsTrue(j);
    } else if (cJSON_IsObject(j) && depth < GEN_JSON_MAX_DEPTH) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        v->struct_value = gen_struct_from_json_depth(c, j, depth + 1);
    } else if (cJSON_IsArray(j) && depth < GEN_JSON_MAX_DEPTH) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        v->list_value =
            GA_MSG(c->a, Google__Protobuf__ListValue, google__protobuf__list_value__init);
        const cJSON *it;
        cJSON_ArrayForEach(it, j)
        {
            GA_PUSH(c->a, v->list_value->values, v->list_value->n_values,
                    gen_value_from_json(c, it, depth + 1));
        }
    } else {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE; /* null, or nested too deep */
    }
    return v;
}

static Google__Protobuf__Struct *gen_struct_from_json_depth(gen_ctx *c, const cJSON *j, int depth)
{
    Google__Protobuf__Struct *st =
        GA_MSG(c->a, Google__Protobuf__Struct, google__protobuf__struct__init);
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        Google__Protobuf__Struct__FieldsEntry *e =
            GA_MSG(c->a, Google__Protobuf__Struct__FieldsEntry,
                   google__protobuf__struct__fields_entry__init);
        e->key = ga_strdup(c->a, it->string);
        e->value = gen_value_from_json(c, it, depth);
        GA_PUSH(c->a, st->fields, st->n_fields, e);
    }
    return st;
}

Google__Protobuf__Struct *gen_struct_from_json(gen_ctx *c, const cJSON *j)
{
    return cJSON_IsObject(j) ? gen_struct_from_json_depth(c, j, 0) : NULL;
}

Envoy__Config__Core__V3__Metadata *gen_filter_metadata(gen_ctx *c, const char *filter,
                                                       Google__Protobuf__Struct *st)
{
    Envoy__Config__Core__V3__Metadata *md =
        GA_MSG(c->a, Envoy__Config__Core__V3__Metadata, envoy__config__core__v3__metadata__init);
    Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *e =
        GA_MSG(c->a, Envoy__Config__Core__V3__Metadata__FilterMetadataEntry,
               envoy__config__core__v3__metadata__filter_metadata_entry__init);
    e->key = ga_strdup(c->a, filter);
    e->value = st;
    GA_PUSH(c->a, md->filter_metadata, md->n_filter_metadata, e);
    return md;
}

Envoy__Config__Core__V3__TransportSocket *gen_raw_buffer_socket(gen_ctx *c)
{
    Envoy__Extensions__TransportSockets__RawBuffer__V3__RawBuffer *rb =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__RawBuffer__V3__RawBuffer,
               envoy__extensions__transport_sockets__raw_buffer__v3__raw_buffer__init);
    Envoy__Config__Core__V3__TransportSocket *ts =
        GA_MSG(c->a, Envoy__Config__Core__V3__TransportSocket,
               envoy__config__core__v3__transport_socket__init);
    ts->name = ga_strdup(c->a, "envoy.transport_sockets.raw_buffer");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = gen_any(c, &rb->base);
    return ts;
}

Envoy__Config__Core__V3__ConfigSource *gen_ads_source(gen_ctx *c)
{
    Envoy__Config__Core__V3__ConfigSource *cs = GA_MSG(
        c->a, Envoy__Config__Core__V3__ConfigSource, envoy__config__core__v3__config_source__init);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs->ads = GA_MSG(c->a, Envoy__Config__Core__V3__AggregatedConfigSource,
                     envoy__config__core__v3__aggregated_config_source__init);
    return cs;
}

Envoy__Config__Core__V3__ConfigSource *gen_agent_sds_source(gen_ctx *c)
{
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc *eg =
        GA_MSG(c->a, Envoy__Config__Core__V3__GrpcService__EnvoyGrpc,
               envoy__config__core__v3__grpc_service__envoy_grpc__init);
    eg->cluster_name = GEN_AGENT_SDS_CLUSTER;
    Envoy__Config__Core__V3__GrpcService *gs = GA_MSG(c->a, Envoy__Config__Core__V3__GrpcService,
                                                      envoy__config__core__v3__grpc_service__init);
    gs->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    gs->envoy_grpc = eg;
    Envoy__Config__Core__V3__ApiConfigSource *api =
        GA_MSG(c->a, Envoy__Config__Core__V3__ApiConfigSource,
               envoy__config__core__v3__api_config_source__init);
    api->api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    api->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    api->n_grpc_services = 1;
    api->grpc_services = ga_alloc(c->a, sizeof *api->grpc_services);
    api->grpc_services[0] = gs;
    api->set_node_on_first_message_only = true;
    Envoy__Config__Core__V3__ConfigSource *cs = GA_MSG(
        c->a, Envoy__Config__Core__V3__ConfigSource, envoy__config__core__v3__config_source__init);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    cs->api_config_source = api;
    return cs;
}

Envoy__Config__Core__V3__Address *gen_address(gen_ctx *c, const char *ip, uint32_t port)
{
    Envoy__Config__Core__V3__Address *a =
        GA_MSG(c->a, Envoy__Config__Core__V3__Address, envoy__config__core__v3__address__init);
    Envoy__Config__Core__V3__SocketAddress *sa =
        GA_MSG(c->a, Envoy__Config__Core__V3__SocketAddress,
               envoy__config__core__v3__socket_address__init);
    sa->address = ga_strdup(c->a, ip);
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    a->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    a->socket_address = sa;
    return a;
}

Envoy__Config__Endpoint__V3__LbEndpoint *gen_lb_endpoint(gen_ctx *c, const char *ip, uint32_t port)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *lb =
        GA_MSG(c->a, Envoy__Config__Endpoint__V3__LbEndpoint,
               envoy__config__endpoint__v3__lb_endpoint__init);
    lb->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    lb->endpoint = GA_MSG(c->a, Envoy__Config__Endpoint__V3__Endpoint,
                          envoy__config__endpoint__v3__endpoint__init);
    lb->endpoint->address = gen_address(c, ip, port);
    return lb;
}

Envoy__Type__Matcher__V3__RegexMatcher *gen_regex(gen_ctx *c, const char *re)
{
    Envoy__Type__Matcher__V3__RegexMatcher *m =
        GA_MSG(c->a, Envoy__Type__Matcher__V3__RegexMatcher,
               envoy__type__matcher__v3__regex_matcher__init);
    m->regex = ga_strdup(c->a, re);
    /* google_re2 is deprecated but older clients (gRPC 1.51) look for it. */
    m->engine_type_case = ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__ENGINE_TYPE_GOOGLE_RE2;
    m->google_re2 = GA_MSG(c->a, Envoy__Type__Matcher__V3__RegexMatcher__GoogleRE2,
                           envoy__type__matcher__v3__regex_matcher__google_re2__init);
    return m;
}
