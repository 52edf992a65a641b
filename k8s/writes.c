/* writes: the objects the control plane itself writes (ConfigMaps for the root cert,
 * Secrets for the CA, Leases for leader election) and TokenReview for the CA's
 * authenticator. Each call is synchronous on its own curl easy handle, so any thread may
 * make one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_internal.h"
#include "pilot/base/log.h"

static const struct {
    const char *prefix; /* API path before /namespaces */
    const char *plural;
    const char *api_version;
    const char *kind;
} kinds[] = {
    [K8S_CONFIGMAP] = {"/api/v1", "configmaps", "v1", "ConfigMap"},
    [K8S_SECRET] = {"/api/v1", "secrets", "v1", "Secret"},
    [K8S_LEASE] = {"/apis/coordination.k8s.io/v1", "leases", "coordination.k8s.io/v1", "Lease"},
};

/* Names and namespaces go into the URL: accept only DNS-1123-ish characters so that no
 * input can change the path. */
static bool safe_name(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
              (*p >= 'A' && *p <= 'Z') || *p == '_'))
            return false;
    return true;
}

static const char *obj_field(const cJSON *obj, const char *field)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The Status message of an error reply, for err. */
static void status_message(const strbuf *b, long status, const char *what, char *err, size_t errlen)
{
    cJSON *j = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    snprintf(err, errlen, "%s: HTTP %ld: %s", what, status,
             cJSON_IsString(m) ? m->valuestring : "no message");
    cJSON_Delete(j);
}

static const char *status_reason(cJSON *j)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "reason");
    return cJSON_IsString(r) ? r->valuestring : "";
}

/* Maps an HTTP status to a K8S_E* code; 409 splits on the Status reason. */
static int map_status(long status, const strbuf *b)
{
    if (status >= 200 && status < 300)
        return 0;
    if (status == 404)
        return K8S_ENOTFOUND;
    if (status == 401 || status == 403)
        return K8S_EDENIED;
    if (status == 409) {
        cJSON *j = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
        int rc = strcmp(status_reason(j), "AlreadyExists") == 0 ? K8S_EEXISTS : K8S_ECONFLICT;
        cJSON_Delete(j);
        return rc;
    }
    if (status == 400 || status == 422)
        return K8S_EINVAL;
    return K8S_EFAIL;
}

static int call(k8s_client *c, const char *method, const char *path, const cJSON *obj,
                const char *what, cJSON **out, char *err, size_t errlen)
{
    char *body = obj ? cJSON_PrintUnformatted(obj) : NULL;
    strbuf b;
    long status = 0;
    int rc;

    strbuf_init(&b, 64u << 20);
    rc = k8s_request(c, method, path, body, &status, &b, err, errlen);
    if (rc != 0)
        goto out;
    rc = map_status(status, &b);
    if (rc != 0) {
        status_message(&b, status, what, err, errlen);
        goto out;
    }
    if (out != NULL) {
        cJSON *j = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
        if (j == NULL) {
            snprintf(err, errlen, "%s: reply is not JSON", what);
            rc = K8S_EFAIL;
            goto out;
        }
        *out = j;
    }
out:
    free(body);
    strbuf_free(&b);
    return rc;
}

static int target(k8s_kind kind, const char *ns, const cJSON *obj, const char *name,
                  const char **nsp, const char **namep, char *what, size_t whatlen, char *err,
                  size_t errlen)
{
    if ((unsigned)kind >= sizeof(kinds) / sizeof(kinds[0])) {
        snprintf(err, errlen, "unknown kind %d", (int)kind);
        return K8S_EINVAL;
    }
    if (ns == NULL && obj != NULL)
        ns = obj_field(obj, "namespace");
    if (name == NULL && obj != NULL)
        name = obj_field(obj, "name");
    snprintf(what, whatlen, "%s %s/%s", kinds[kind].kind, ns ? ns : "", name ? name : "");
    if (!safe_name(ns)) {
        snprintf(err, errlen, "%s: namespace is missing or malformed", what);
        return K8S_EINVAL;
    }
    if (namep != NULL && !safe_name(name)) {
        snprintf(err, errlen, "%s: metadata.name is missing or malformed", what);
        return K8S_EINVAL;
    }
    *nsp = ns;
    if (namep != NULL)
        *namep = name;
    return 0;
}

/* A copy of obj with apiVersion and kind set (the server insists they match). */
static cJSON *typed_copy(k8s_kind kind, const cJSON *obj)
{
    cJSON *o = cJSON_Duplicate(obj, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "kind");
    cJSON_AddStringToObject(o, "apiVersion", kinds[kind].api_version);
    cJSON_AddStringToObject(o, "kind", kinds[kind].kind);
    return o;
}

/* create (POST to the collection) or update (PUT to the object): obj is sent with
 * apiVersion and kind set; its metadata names the target unless ns is given. */
static int write_object(k8s_client *c, bool create, k8s_kind kind, const char *ns, const cJSON *obj,
                        cJSON **out, char *err, size_t errlen)
{
    const char *n, *nm;
    char what[300], *path;
    cJSON *o;
    int rc;

    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "%s: object is not a JSON object", create ? "create" : "update");
        return K8S_EINVAL;
    }
    rc = target(kind, ns, obj, NULL, &n, &nm, what, sizeof(what), err, errlen);
    if (rc != 0)
        return rc;
    o = typed_copy(kind, obj);
    path = create
               ? xasprintf("%s/namespaces/%s/%s", kinds[kind].prefix, n, kinds[kind].plural)
               : xasprintf("%s/namespaces/%s/%s/%s", kinds[kind].prefix, n, kinds[kind].plural, nm);
    rc = call(c, create ? "POST" : "PUT", path, o, what, out, err, errlen);
    free(path);
    cJSON_Delete(o);
    return rc;
}

/* get or delete: a bodiless request to the object ns/name. */
static int named_call(k8s_client *c, const char *method, k8s_kind kind, const char *ns,
                      const char *name, cJSON **out, char *err, size_t errlen)
{
    const char *n, *nm;
    char what[300], *path;
    int rc = target(kind, ns, NULL, name, &n, &nm, what, sizeof(what), err, errlen);

    if (rc != 0)
        return rc;
    path = xasprintf("%s/namespaces/%s/%s/%s", kinds[kind].prefix, n, kinds[kind].plural, nm);
    rc = call(c, method, path, NULL, what, out, err, errlen);
    free(path);
    return rc;
}

int k8s_create(k8s_client *c, k8s_kind kind, const char *ns, const cJSON *obj, cJSON **out,
               char *err, size_t errlen)
{
    return write_object(c, true, kind, ns, obj, out, err, errlen);
}

int k8s_get(k8s_client *c, k8s_kind kind, const char *ns, const char *name, cJSON **out, char *err,
            size_t errlen)
{
    return named_call(c, "GET", kind, ns, name, out, err, errlen);
}

int k8s_update(k8s_client *c, k8s_kind kind, const char *ns, const cJSON *obj, cJSON **out,
               char *err, size_t errlen)
{
    return write_object(c, false, kind, ns, obj, out, err, errlen);
}

int k8s_delete(k8s_client *c, k8s_kind kind, const char *ns, const char *name, char *err,
               size_t errlen)
{
    return named_call(c, "DELETE", kind, ns, name, NULL, err, errlen);
}

/* ---- TokenReview ---------------------------------------------------------------------- */

void k8s_token_status_free(k8s_token_status *st)
{
    if (st == NULL)
        return;
    free(st->username);
    for (size_t i = 0; i < st->ngroups; i++)
        free(st->groups[i]);
    free(st->groups);
    free(st->error);
    memset(st, 0, sizeof(*st));
}

int k8s_token_review_raw(k8s_client *c, const char *token, const char *audience,
                         k8s_token_status *st, char *err, size_t errlen)
{
    cJSON *req = cJSON_CreateObject(), *spec, *resp = NULL;
    const cJSON *status, *user, *v, *g;
    int rc;

    memset(st, 0, sizeof(*st));
    cJSON_AddStringToObject(req, "apiVersion", "authentication.k8s.io/v1");
    cJSON_AddStringToObject(req, "kind", "TokenReview");
    spec = cJSON_AddObjectToObject(req, "spec");
    cJSON_AddStringToObject(spec, "token", token ? token : "");
    if (audience != NULL && audience[0] != '\0') {
        cJSON *a = cJSON_AddArrayToObject(spec, "audiences");
        cJSON_AddItemToArray(a, cJSON_CreateString(audience));
    }
    rc = call(c, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", req, "TokenReview", &resp,
              err, errlen);
    if (rc != 0)
        goto out;
    status = cJSON_GetObjectItemCaseSensitive(resp, "status");
    if (!cJSON_IsObject(status)) {
        snprintf(err, errlen, "TokenReview: reply has no status");
        rc = K8S_EFAIL;
        goto out;
    }
    st->authenticated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "authenticated"));
    v = cJSON_GetObjectItemCaseSensitive(status, "error");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0')
        st->error = xstrdup(v->valuestring);
    user = cJSON_GetObjectItemCaseSensitive(status, "user");
    v = cJSON_GetObjectItemCaseSensitive(user, "username");
    if (cJSON_IsString(v))
        st->username = xstrdup(v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(user, "groups");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        st->groups = xcalloc((size_t)cJSON_GetArraySize(v), sizeof(char *));
        cJSON_ArrayForEach(g, v)
        {
            if (cJSON_IsString(g))
                st->groups[st->ngroups++] = xstrdup(g->valuestring);
        }
    }
out:
    cJSON_Delete(req);
    cJSON_Delete(resp);
    return rc;
}

int k8s_token_review(void *ud, const char *token, const char *audience, char **ns, char **sa,
                     char *err, size_t errlen)
{
    static const char prefix[] = "system:serviceaccount:";
    k8s_client *c = ud;
    k8s_token_status st;
    const char *rest, *colon;
    bool in_group = false;
    int rc;

    *ns = *sa = NULL;
    if (c == NULL || token == NULL || token[0] == '\0') {
        snprintf(err, errlen, "TokenReview: no token");
        return K8S_EINVAL;
    }
    rc = k8s_token_review_raw(c, token, audience, &st, err, errlen);
    if (rc != 0)
        return rc;
    rc = K8S_EDENIED;
    if (!st.authenticated) {
        snprintf(err, errlen, "token not authenticated: %s", st.error ? st.error : "no reason");
        goto out;
    }
    if (st.error != NULL) {
        snprintf(err, errlen, "token review error: %s", st.error);
        goto out;
    }
    for (size_t i = 0; i < st.ngroups; i++)
        if (strcmp(st.groups[i], "system:serviceaccounts") == 0)
            in_group = true;
    if (!in_group) {
        snprintf(err, errlen, "token user %s is not in group system:serviceaccounts",
                 st.username ? st.username : "(none)");
        goto out;
    }
    if (st.username == NULL || !util_has_prefix(st.username, prefix)) {
        snprintf(err, errlen, "token user %s is not a service account",
                 st.username ? st.username : "(none)");
        goto out;
    }
    rest = st.username + sizeof(prefix) - 1;
    colon = strchr(rest, ':');
    if (colon == NULL || colon == rest || colon[1] == '\0' || strchr(colon + 1, ':')) {
        snprintf(err, errlen, "token username %s is not system:serviceaccount:<ns>:<sa>",
                 st.username);
        goto out;
    }
    *ns = xstrndup(rest, (size_t)(colon - rest));
    *sa = xstrdup(colon + 1);
    rc = 0;
out:
    k8s_token_status_free(&st);
    return rc;
}
