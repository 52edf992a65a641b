/* json: protobuf-c messages to proto3-style JSON (cJSON) for /debug/config_dump.
 *
 * Generic over ProtobufCMessageDescriptor: proto field names, enums by name, 64-bit
 * integers as strings, bytes as base64, repeated fields as arrays, only the set member of
 * a oneof, proto3 defaults omitted. Well-known types get their JSON forms: Any unpacked as
 * {"@type": url, ...} (for the types we know), Duration "1.5s", wrappers as bare values,
 * Struct/Value/ListValue as JSON, Timestamp RFC 3339, Empty {}. Pure function of its
 * input; any thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/access_loggers/filters/cel/v3/cel.pb-c.h"
#include "envoy/extensions/formatter/cel/v3/cel.pb-c.h"
#include "envoy/extensions/formatter/metadata/v3/metadata.pb-c.h"
#include "envoy/extensions/formatter/req_without_query/v3/req_without_query.pb-c.h"
#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/ext_authz/v3/ext_authz.pb-c.h"
#include "envoy/extensions/filters/network/ext_authz/v3/ext_authz.pb-c.h"
#include "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.pb-c.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "envoy/config/trace/v3/opentelemetry.pb-c.h"
#include "envoy/config/trace/v3/zipkin.pb-c.h"
#include "envoy/extensions/request_id/uuid/v3/uuid.pb-c.h"
#include "udpa/type/v1/typed_struct.pb-c.h"
#include "pilot/base/util.h"
#include "xds/gen/gen.h"
#include "xds/gen/gen_internal.h"

/* Nesting bound: Any inside Any inside... cannot recurse without limit on hostile bytes. */
#define JSON_MAX_DEPTH 64

static const ProtobufCMessageDescriptor *const json_registry[] = {
    &envoy__config__listener__v3__listener__descriptor,
    &envoy__config__route__v3__route_configuration__descriptor,
    &envoy__config__cluster__v3__cluster__descriptor,
    &envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
    &envoy__extensions__filters__http__router__v3__router__descriptor,
    &envoy__extensions__filters__http__fault__v3__httpfault__descriptor,
    &envoy__extensions__filters__http__cors__v3__cors__descriptor,
    &envoy__extensions__filters__http__cors__v3__cors_policy__descriptor,
    &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor,
    &envoy__extensions__filters__listener__original_dst__v3__original_dst__descriptor,
    &envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__descriptor,
    &envoy__extensions__filters__listener__http_inspector__v3__http_inspector__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__secret__descriptor,
    &envoy__extensions__transport_sockets__raw_buffer__v3__raw_buffer__descriptor,
    &envoy__extensions__filters__http__rbac__v3__rbac__descriptor,
    &envoy__extensions__filters__network__rbac__v3__rbac__descriptor,
    &envoy__extensions__filters__http__ext_authz__v3__ext_authz__descriptor,
    &envoy__extensions__filters__network__ext_authz__v3__ext_authz__descriptor,
    &envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__descriptor,
    &envoy__extensions__access_loggers__file__v3__file_access_log__descriptor,
    &envoy__extensions__access_loggers__filters__cel__v3__expression_filter__descriptor,
    &envoy__extensions__formatter__cel__v3__cel__descriptor,
    &envoy__extensions__formatter__metadata__v3__metadata__descriptor,
    &envoy__extensions__formatter__req_without_query__v3__req_without_query__descriptor,
    &udpa__type__v1__typed_struct__descriptor,
    &envoy__config__trace__v3__zipkin_config__descriptor,
    &envoy__config__trace__v3__open_telemetry_config__descriptor,
    &envoy__extensions__request_id__uuid__v3__uuid_request_id_config__descriptor,
};

static const ProtobufCMessageDescriptor *json_lookup(const char *type_url)
{
    if (!type_url)
        return NULL;
    const char *slash = strrchr(type_url, '/');
    const char *full = slash ? slash + 1 : type_url;
    for (size_t i = 0; i < sizeof json_registry / sizeof json_registry[0]; i++)
        if (strcmp(json_registry[i]->name, full) == 0)
            return json_registry[i];
    return NULL;
}

static cJSON *json_base64(const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = 4 * ((n + 2) / 3);
    char *o = malloc(olen + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        o[j++] = tbl[(v >> 18) & 63];
        o[j++] = tbl[(v >> 12) & 63];
        o[j++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        o[j++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    o[j] = '\0';
    cJSON *s = cJSON_CreateString(o);
    free(o);
    return s;
}

static cJSON *json_message(const ProtobufCMessage *m, int depth);

static cJSON *json_i64(int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    return cJSON_CreateString(b);
}

static cJSON *json_u64(uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, v);
    return cJSON_CreateString(b);
}

/* One scalar or message value at p (a pointer to the field storage). */
static cJSON *json_value(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return cJSON_CreateNumber(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return cJSON_CreateNumber(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_i64(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_u64(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return cJSON_CreateNumber(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return cJSON_CreateNumber(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return cJSON_CreateBool(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? cJSON_CreateString(ev->name) : cJSON_CreateNumber(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return cJSON_CreateString(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return json_base64(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? json_message(m, depth + 1) : cJSON_CreateNull();
    }
    }
    return cJSON_CreateNull();
}

static size_t json_type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    default:
        return 4;
    }
}

/* Is a proto3 singular field at its default (and so omitted)? */
static bool json_is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    default: {
        static const uint8_t zero[16];
        return memcmp(p, zero, json_type_size(f->type)) == 0;
    }
    }
}

static void json_duration(char *b, size_t n, int64_t sec, int32_t nanos)
{
    if (nanos == 0) {
        snprintf(b, n, "%" PRId64 "s", sec);
        return;
    }
    bool neg = sec < 0 || nanos < 0;
    uint64_t s = (uint64_t)(sec < 0 ? -sec : sec);
    uint32_t ns = (uint32_t)(nanos < 0 ? -nanos : nanos);
    char frac[16];
    snprintf(frac, sizeof frac, "%09u", ns);
    size_t l = strlen(frac);
    while (l > 0 && frac[l - 1] == '0')
        frac[--l] = '\0';
    snprintf(b, n, "%s%" PRIu64 ".%ss", neg ? "-" : "", s, frac);
}

static cJSON *json_struct_value(const Google__Protobuf__Value *v, int depth);

static cJSON *json_struct(const Google__Protobuf__Struct *st, int depth)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < st->n_fields; i++)
        cJSON_AddItemToObject(o, st->fields[i]->key ? st->fields[i]->key : "",
                              json_struct_value(st->fields[i]->value, depth + 1));
    return o;
}

static cJSON *json_struct_value(const Google__Protobuf__Value *v, int depth)
{
    if (!v || depth > JSON_MAX_DEPTH)
        return cJSON_CreateNull();
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        return cJSON_CreateNumber(v->number_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        return cJSON_CreateString(v->string_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        return cJSON_CreateBool(v->bool_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        return json_struct(v->struct_value, depth + 1);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; v->list_value && i < v->list_value->n_values; i++)
            cJSON_AddItemToArray(a, json_struct_value(v->list_value->values[i], depth + 1));
        return a;
    }
    default:
        return cJSON_CreateNull();
    }
}

/* Moves every member of src to the end of dst (keeping their order) and deletes src, so an
 * Any's fields follow its "@type". src may be NULL. */
static void json_move_members(cJSON *dst, cJSON *src)
{
    while (src && src->child) {
        cJSON *it = src->child;
        cJSON_DetachItemViaPointer(src, it);
        const char *k = it->string;
        it->string = NULL;
        cJSON_AddItemToObject(dst, k, it);
        cJSON_free((void *)k);
    }
    cJSON_Delete(src);
}

static cJSON *json_any(const Google__Protobuf__Any *any, int depth)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "@type", any->type_url ? any->type_url : "");
    const ProtobufCMessageDescriptor *d = json_lookup(any->type_url);
    ProtobufCMessage *inner =
        d ? protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data) : NULL;
    if (!inner) {
        cJSON_AddItemToObject(o, "value", json_base64(any->value.data, any->value.len));
        return o;
    }
    cJSON *fields = json_message(inner, depth + 1);
    protobuf_c_message_free_unpacked(inner, NULL);
    json_move_members(o, fields);
    return o;
}

/* protoc makes a "<Field>Entry" message {key = 1, value = 2} for each map field; proto3
 * JSON renders maps as objects. */
static bool json_is_map_entry(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || !f->descriptor)
        return false;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    return d->n_fields == 2 && util_has_suffix(d->name, "Entry") &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

static cJSON *json_map(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *entries,
                       size_t cnt, int depth)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &d->fields[0], *vf = &d->fields[1];
    cJSON *o = cJSON_CreateObject();
    for (size_t k = 0; k < cnt; k++) {
        const char *e = (const char *)entries[k];
        char kb[32];
        const char *key = kb;
        if (kf->type == PROTOBUF_C_TYPE_STRING) {
            key = *(char *const *)(e + kf->offset);
            if (!key)
                key = "";
        } else {
            cJSON *kv = json_value(kf, e + kf->offset, depth);
            if (cJSON_IsString(kv))
                snprintf(kb, sizeof kb, "%s", kv->valuestring);
            else
                snprintf(kb, sizeof kb, "%.0f", kv ? kv->valuedouble : 0.0);
            cJSON_Delete(kv);
        }
        cJSON_AddItemToObject(o, key, json_value(vf, e + vf->offset, depth));
    }
    return o;
}

static cJSON *json_message(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > JSON_MAX_DEPTH)
        return cJSON_CreateNull();
    const char *n = d->name;
    if (strcmp(n, "google.protobuf.Any") == 0)
        return json_any((const Google__Protobuf__Any *)m, depth);
    if (strcmp(n, "google.protobuf.Duration") == 0) {
        const Google__Protobuf__Duration *du = (const void *)m;
        char b[64];
        json_duration(b, sizeof b, du->seconds, du->nanos);
        return cJSON_CreateString(b);
    }
    if (strcmp(n, "google.protobuf.Timestamp") == 0) {
        const Google__Protobuf__Timestamp *ts = (const void *)m;
        time_t t = (time_t)ts->seconds;
        struct tm tm;
        char b[64] = "";
        if (gmtime_r(&t, &tm))
            strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return cJSON_CreateString(b);
    }
    if (strcmp(n, "google.protobuf.Struct") == 0)
        return json_struct((const Google__Protobuf__Struct *)m, depth);
    if (strcmp(n, "google.protobuf.Value") == 0)
        return json_struct_value((const Google__Protobuf__Value *)m, depth);
    if (util_has_prefix(n, "google.protobuf.") && util_has_suffix(n, "Value") && d->n_fields == 1) {
        /* wrappers: the bare value */
        const ProtobufCFieldDescriptor *f = &d->fields[0];
        return json_value(f, (const char *)m + f->offset, depth);
    }

    cJSON *o = cJSON_CreateObject();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t cnt = *(const size_t *)(base + f->quantifier_offset);
            if (cnt == 0)
                continue;
            const char *arr = *(char *const *)(base + f->offset);
            if (json_is_map_entry(f)) {
                cJSON_AddItemToObject(o, f->name,
                                      json_map(f, (ProtobufCMessage *const *)arr, cnt, depth));
                continue;
            }
            size_t sz = json_type_size(f->type);
            cJSON *a = cJSON_CreateArray();
            for (size_t k = 0; k < cnt; k++)
                cJSON_AddItemToArray(a, json_value(f, arr + k * sz, depth));
            cJSON_AddItemToObject(o, f->name, a);
            continue;
        }
        const void *p = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                continue;
        } else if (json_is_default(f, p)) {
            continue;
        }
        cJSON_AddItemToObject(o, f->name, json_value(f, p, depth));
    }
    return o;
}

cJSON *xds_resource_to_json(const xds_resource *r)
{
    if (!r || !r->type_url)
        return NULL;
    const ProtobufCMessageDescriptor *d = json_lookup(r->type_url);
    if (!d)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, r->len, r->bytes);
    if (!m)
        return NULL;
    cJSON *fields = json_message(m, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!fields)
        return NULL;
    /* ConfigDump entries are Anys: lead with "@type" */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "@type", r->type_url);
    json_move_members(o, fields);
    return o;
}
