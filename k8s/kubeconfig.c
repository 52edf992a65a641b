/* kubeconfig: where the API server is and how to authenticate, from a kubeconfig file (the
 * fields kubectl uses) or from the in-cluster service account files. Runs once at start on
 * the caller's thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "k8s/k8s_internal.h"
#include "pilot/base/log.h"
#include "pilot/base/yaml.h"

#define KC_MAX_FILE (4u << 20) /* a kubeconfig, certificate or token file */

/* The kubeconfig as JSON: its first YAML document (pilot/base/yaml.h types scalars like
 * Kubernetes' loader does). */
static cJSON *yaml_parse_one(const char *buf, size_t len, char *err, size_t errlen)
{
    cJSON **docs = NULL, *out = NULL;
    size_t ndocs = 0;

    if (yaml_to_json_docs(buf, len, &docs, &ndocs, err, errlen) != 0)
        return NULL;
    if (ndocs == 0)
        snprintf(err, errlen, "empty document");
    else
        out = docs[0];
    for (size_t i = 1; i < ndocs; i++)
        cJSON_Delete(docs[i]);
    free(docs);
    return out;
}

/* ---- helpers -------------------------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    strbuf b;
    char tmp[8192];
    size_t n;
    int rc = K8S_EINVAL;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return K8S_EINVAL;
    }
    strbuf_init(&b, KC_MAX_FILE);
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        if (strbuf_append(&b, tmp, n) != 0) {
            snprintf(err, errlen, "%s: larger than %u bytes", path, KC_MAX_FILE);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    if (b.data == NULL)
        strbuf_append(&b, "", 0);
    *out = strbuf_steal(&b, outlen);
    rc = 0;
out:
    strbuf_free(&b);
    fclose(f);
    return rc;
}

static int b64_decode(const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in), k = 0, pad = 0;
    char *clean = xmalloc(n + 1);
    unsigned char *dec;
    int len;

    for (size_t i = 0; i < n; i++) /* kubeconfigs sometimes wrap long data */
        if (in[i] != '\n' && in[i] != '\r' && in[i] != ' ' && in[i] != '\t')
            clean[k++] = in[i];
    clean[k] = '\0';
    if (k % 4 != 0) {
        free(clean);
        return -1;
    }
    if (k >= 1 && clean[k - 1] == '=')
        pad++;
    if (k >= 2 && clean[k - 2] == '=')
        pad++;
    dec = xmalloc(k / 4 * 3 + 1);
    len = EVP_DecodeBlock(dec, (const unsigned char *)clean, (int)k);
    free(clean);
    if (len < 0) {
        free(dec);
        return -1;
    }
    len -= (int)pad;
    dec[len] = '\0';
    *out = (char *)dec;
    *outlen = (size_t)len;
    return 0;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* The entry of list `field` whose name is `name`, returning its `inner` object. */
static const cJSON *named(const cJSON *root, const char *field, const char *inner, const char *name)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, field), *e;
    cJSON_ArrayForEach(e, arr)
    {
        const char *n = jstr(e, "name");
        if (n != NULL && strcmp(n, name) == 0) {
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(e, inner);
            return cJSON_IsObject(in) ? in : NULL;
        }
    }
    return NULL;
}

static char *resolve(const char *base_dir, const char *path)
{
    if (path[0] == '/' || base_dir == NULL || base_dir[0] == '\0')
        return xstrdup(path);
    return xasprintf("%s/%s", base_dir, path);
}

/* Field data (base64) wins over field file, as in client-go. */
static int data_or_file(const cJSON *o, const char *data_key, const char *file_key,
                        const char *base_dir, const char *what, char **out, size_t *outlen,
                        char *err, size_t errlen)
{
    const char *d = jstr(o, data_key), *f = jstr(o, file_key);
    if (d != NULL) {
        if (b64_decode(d, out, outlen) != 0) {
            snprintf(err, errlen, "%s %s: not valid base64", what, data_key);
            return K8S_EINVAL;
        }
        return 0;
    }
    if (f != NULL) {
        char *p = resolve(base_dir, f), sub[256];
        int rc = read_file(p, out, outlen, sub, sizeof(sub));
        if (rc != 0)
            snprintf(err, errlen, "%s %s: %s", what, file_key, sub);
        free(p);
        return rc;
    }
    return 0;
}

void k8s_conn_free(k8s_conn *c)
{
    free(c->server);
    free(c->ca_pem);
    free(c->cert_pem);
    if (c->key_pem != NULL)
        OPENSSL_cleanse(c->key_pem, c->key_len);
    free(c->key_pem);
    if (c->token != NULL)
        OPENSSL_cleanse(c->token, strlen(c->token));
    free(c->token);
    free(c->token_file);
    free(c->namespace);
    memset(c, 0, sizeof(*c));
}

static int check_server(const char *server, const char *what, char *err, size_t errlen)
{
    if (!util_has_prefix(server, "https://") && !util_has_prefix(server, "http://")) {
        snprintf(err, errlen, "%s: server \"%s\" must start with https:// or http://", what,
                 server);
        return K8S_EINVAL;
    }
    return 0;
}

int k8s_kubeconfig_parse(const char *buf, size_t len, const char *base_dir, const char *context,
                         k8s_conn *out, char *err, size_t errlen)
{
    char sub[256];
    cJSON *root = NULL;
    const cJSON *ctx, *cluster, *user;
    const char *cname, *clname, *uname, *s;
    k8s_conn c = {0};
    int rc = K8S_EINVAL;

    memset(out, 0, sizeof(*out));
    root = yaml_parse_one(buf, len, sub, sizeof(sub));
    if (root == NULL) {
        snprintf(err, errlen, "kubeconfig: %s", sub);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "kubeconfig: not a mapping");
        goto out;
    }
    cname = context ? context : jstr(root, "current-context");
    if (cname == NULL) {
        snprintf(err, errlen, "kubeconfig: current-context is not set");
        goto out;
    }
    ctx = named(root, "contexts", "context", cname);
    if (ctx == NULL) {
        snprintf(err, errlen, "kubeconfig: context \"%s\" not found in contexts", cname);
        goto out;
    }
    clname = jstr(ctx, "cluster");
    if (clname == NULL || (cluster = named(root, "clusters", "cluster", clname)) == NULL) {
        snprintf(err, errlen, "kubeconfig: context \"%s\": cluster \"%s\" not found", cname,
                 clname ? clname : "");
        goto out;
    }
    s = jstr(cluster, "server");
    if (s == NULL) {
        snprintf(err, errlen, "kubeconfig: cluster \"%s\": server is not set", clname);
        goto out;
    }
    if (check_server(s, "kubeconfig", err, errlen) != 0)
        goto out;
    c.server = xstrdup(s);
    while (util_has_suffix(c.server, "/"))
        c.server[strlen(c.server) - 1] = '\0';
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cluster, "insecure-skip-tls-verify");
        c.insecure = cJSON_IsTrue(v) || (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0);
    }
    snprintf(sub, sizeof(sub), "kubeconfig: cluster \"%s\":", clname);
    if (data_or_file(cluster, "certificate-authority-data", "certificate-authority", base_dir, sub,
                     &c.ca_pem, &c.ca_len, err, errlen) != 0)
        goto out;
    s = jstr(ctx, "namespace");
    c.namespace = xstrdup(s ? s : "default");

    uname = jstr(ctx, "user");
    user = uname ? named(root, "users", "user", uname) : NULL;
    if (uname != NULL && user == NULL) {
        snprintf(err, errlen, "kubeconfig: context \"%s\": user \"%s\" not found", cname, uname);
        goto out;
    }
    if (user != NULL) {
        snprintf(sub, sizeof(sub), "kubeconfig: user \"%s\":", uname);
        if (cJSON_GetObjectItemCaseSensitive(user, "exec") != NULL ||
            cJSON_GetObjectItemCaseSensitive(user, "auth-provider") != NULL) {
            snprintf(err, errlen,
                     "%s exec and auth-provider credentials are not supported; "
                     "use token, tokenFile or a client certificate",
                     sub);
            goto out;
        }
        if ((s = jstr(user, "token")) != NULL)
            c.token = xstrdup(s);
        if ((s = jstr(user, "tokenFile")) != NULL)
            c.token_file = resolve(base_dir, s);
        if (data_or_file(user, "client-certificate-data", "client-certificate", base_dir, sub,
                         &c.cert_pem, &c.cert_len, err, errlen) != 0 ||
            data_or_file(user, "client-key-data", "client-key", base_dir, sub, &c.key_pem,
                         &c.key_len, err, errlen) != 0)
            goto out;
        if ((c.cert_pem == NULL) != (c.key_pem == NULL)) {
            snprintf(err, errlen, "%s client certificate and key must be given together", sub);
            goto out;
        }
    }
    *out = c;
    memset(&c, 0, sizeof(c));
    rc = 0;
out:
    k8s_conn_free(&c);
    cJSON_Delete(root);
    return rc;
}

int k8s_kubeconfig_load(const char *path, const char *context, k8s_conn *out, char *err,
                        size_t errlen)
{
    char *buf = NULL, *dir = NULL, *slash;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err, errlen);

    if (rc != 0)
        return rc;
    dir = xstrdup(path);
    slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        dir[0] = '\0';
    rc = k8s_kubeconfig_parse(buf, len, dir, context, out, err, errlen);
    free(dir);
    free(buf);
    return rc;
}

int k8s_incluster_load(const char *sa_dir, k8s_conn *out, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    k8s_conn c = {0};
    char *p = NULL, *ns = NULL;
    size_t nslen = 0;
    int rc = K8S_EINVAL;

    memset(out, 0, sizeof(*out));
    if (sa_dir == NULL)
        sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
        snprintf(err, errlen,
                 "not in a cluster: KUBERNETES_SERVICE_HOST and "
                 "KUBERNETES_SERVICE_PORT are not set (give --kubeconfig)");
        goto out;
    }
    /* An IPv6 service address needs brackets in a URL. */
    c.server = strchr(host, ':') ? xasprintf("https://[%s]:%s", host, port)
                                 : xasprintf("https://%s:%s", host, port);
    c.token_file = xasprintf("%s/token", sa_dir);
    p = xasprintf("%s/ca.crt", sa_dir);
    if (read_file(p, &c.ca_pem, &c.ca_len, err, errlen) != 0)
        goto out;
    free(p);
    p = xasprintf("%s/namespace", sa_dir);
    if (read_file(p, &ns, &nslen, err, errlen) == 0) {
        while (nslen > 0 && (ns[nslen - 1] == '\n' || ns[nslen - 1] == ' '))
            ns[--nslen] = '\0';
        c.namespace = ns;
        ns = NULL;
    } else {
        c.namespace = xstrdup("default");
    }
    *out = c;
    memset(&c, 0, sizeof(c));
    rc = 0;
out:
    free(p);
    free(ns);
    k8s_conn_free(&c);
    return rc;
}
