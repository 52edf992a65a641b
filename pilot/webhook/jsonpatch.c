/* jsonpatch: the RFC 6902 patch the injector answers with, computed as a difference
 * between the pod we were sent and the pod we made (as istiod does with jsonpatch.
 * CreatePatch). Objects are compared key by key (a changed annotation is one op); arrays
 * and scalars that differ are replaced whole, which applies to the same result as a
 * finer diff and keeps the ops independent of array positions the API server may shift.
 * Recursion follows the pods' depth, which the injector built (cJSON's nesting limit
 * bounds what came in). */
#include <stdlib.h>
#include <string.h>

#include "pilot/webhook/webhook_internal.h"

/* Appends "/<key>" with RFC 6901 escaping (~ -> ~0, / -> ~1). */
static void ptr_push(strbuf *p, const char *key)
{
    strbuf_appends(p, "/");
    for (const char *k = key; *k; k++) {
        if (*k == '~')
            strbuf_appends(p, "~0");
        else if (*k == '/')
            strbuf_appends(p, "~1");
        else
            strbuf_append(p, k, 1);
    }
}

static void add_op(cJSON *ops, const char *op, const char *path, const cJSON *value)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", op);
    cJSON_AddStringToObject(o, "path", path);
    if (value)
        cJSON_AddItemToObject(o, "value", cJSON_Duplicate(value, 1));
    cJSON_AddItemToArray(ops, o);
}

static void diff(cJSON *ops, strbuf *path, const cJSON *a, const cJSON *b)
{
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        size_t base = path->len;
        const cJSON *it;
        cJSON_ArrayForEach(it, a)
        {
            if (!cJSON_GetObjectItemCaseSensitive(b, it->string)) {
                ptr_push(path, it->string);
                add_op(ops, "remove", path->data, NULL);
                path->len = base;
                path->data[base] = '\0';
            }
        }
        cJSON_ArrayForEach(it, b)
        {
            const cJSON *old = cJSON_GetObjectItemCaseSensitive(a, it->string);
            ptr_push(path, it->string);
            if (!old)
                add_op(ops, "add", path->data, it);
            else
                diff(ops, path, old, it);
            path->len = base;
            path->data[base] = '\0';
        }
        return;
    }
    if (!cJSON_Compare(a, b, true))
        add_op(ops, "replace", path->len ? path->data : "", b);
}

char *wh_json_patch(const cJSON *from, const cJSON *to)
{
    cJSON *ops = cJSON_CreateArray();
    strbuf path;
    strbuf_init(&path, 0);
    strbuf_appends(&path, "");
    diff(ops, &path, from, to);
    char *text = cJSON_PrintUnformatted(ops);
    cJSON_Delete(ops);
    strbuf_free(&path);
    return text;
}
