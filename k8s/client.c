/* client: curl easy handles that talk to the API server: TLS verified against the
 * cluster CA (plain http only when the server URL says so), a bearer token (re-read when
 * its file changes, as projected service-account tokens rotate) or a client certificate.
 *
 * Any thread may call into a client; the token cache is behind c->mu. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "k8s/k8s_internal.h"
#include "pilot/base/log.h"

#define K8S_RESP_MAX (64u << 20)
#define K8S_TOKEN_MAX (64u << 10)

struct k8s_client {
    k8s_conn conn;
    pthread_mutex_t mu;
    char *file_token;     /* last token read from conn.token_file */
    struct stat token_st; /* identity of the file it came from */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
/* "pilot-discovery/k8s (<pod>)": the API server's audit log then tells replicas apart. */
static char user_agent[160] = "pilot-discovery/k8s";

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *pod = getenv("POD_NAME");
    if (pod && *pod)
        snprintf(user_agent, sizeof(user_agent), "pilot-discovery/k8s (%.100s)", pod);
}

k8s_client *k8s_client_new(const k8s_config *cfg, char *err, size_t errlen)
{
    k8s_client *c;
    int rc;

    pthread_once(&curl_once, curl_init_once);
    c = xcalloc(1, sizeof(*c));
    if (cfg != NULL && cfg->kubeconfig != NULL && cfg->kubeconfig[0] != '\0')
        rc = k8s_kubeconfig_load(cfg->kubeconfig, cfg->context, &c->conn, err, errlen);
    else
        rc = k8s_incluster_load(cfg ? cfg->sa_dir : NULL, &c->conn, err, errlen);
    if (rc != 0) {
        free(c);
        return NULL;
    }
    if (c->conn.insecure)
        LOG_WARN("k8s", "insecure-skip-tls-verify is set: the API server's certificate "
                        "is not verified");
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void k8s_client_free(k8s_client *c)
{
    if (c == NULL)
        return;
    k8s_conn_free(&c->conn);
    if (c->file_token != NULL) {
        OPENSSL_cleanse(c->file_token, strlen(c->file_token));
        free(c->file_token);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *k8s_client_server(const k8s_client *c)
{
    return c->conn.server;
}

const char *k8s_client_namespace(const k8s_client *c)
{
    return c->conn.namespace ? c->conn.namespace : "default";
}

/* The current bearer token as a new "Authorization: Bearer ..." header line, or NULL when
 * none is configured. Re-reads the token file when its inode, size or mtime changed; if a
 * read fails the last good token is kept (kubelet replaces the file atomically). */
static int auth_header(k8s_client *c, char **out, char *err, size_t errlen)
{
    int rc = 0;

    *out = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->conn.token_file != NULL) {
        struct stat st;
        if (stat(c->conn.token_file, &st) == 0 &&
            (c->file_token == NULL || st.st_ino != c->token_st.st_ino ||
             st.st_size != c->token_st.st_size || st.st_mtim.tv_sec != c->token_st.st_mtim.tv_sec ||
             st.st_mtim.tv_nsec != c->token_st.st_mtim.tv_nsec)) {
            FILE *f = fopen(c->conn.token_file, "rb");
            char *buf = xmalloc(K8S_TOKEN_MAX + 1);
            size_t n = f ? fread(buf, 1, K8S_TOKEN_MAX, f) : 0;
            if (f != NULL)
                fclose(f);
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                n--;
            buf[n] = '\0';
            if (n > 0) {
                if (c->file_token != NULL) {
                    OPENSSL_cleanse(c->file_token, strlen(c->file_token));
                    free(c->file_token);
                }
                c->file_token = xstrdup(buf);
                c->token_st = st;
                LOG_DEBUG("k8s", "read token from %s", c->conn.token_file);
            }
            OPENSSL_cleanse(buf, K8S_TOKEN_MAX + 1);
            free(buf);
        }
        if (c->file_token == NULL && c->conn.token == NULL) {
            snprintf(err, errlen, "token file %s cannot be read", c->conn.token_file);
            rc = K8S_EFAIL;
            goto out;
        }
    }
    {
        const char *t = c->file_token ? c->file_token : c->conn.token;
        if (t != NULL)
            *out = xasprintf("Authorization: Bearer %s", t);
    }
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

CURL *k8s_client_easy(k8s_client *c, const char *path, struct curl_slist **hdrs, char *err,
                      size_t errlen)
{
    CURL *e = NULL;
    char *auth = NULL, *url = NULL;
    struct curl_slist *h = NULL;

    *hdrs = NULL;
    if (auth_header(c, &auth, err, errlen) != 0)
        return NULL;
    e = curl_easy_init();
    if (e == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        goto out;
    }
    url = xasprintf("%s%s", c->conn.server, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (c->conn.ca_pem != NULL) {
        struct curl_blob b = {c->conn.ca_pem, c->conn.ca_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    }
    if (c->conn.insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->conn.cert_pem != NULL) {
        struct curl_blob cb = {c->conn.cert_pem, c->conn.cert_len, CURL_BLOB_COPY};
        struct curl_blob kb = {c->conn.key_pem, c->conn.key_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (auth != NULL)
        h = curl_slist_append(h, auth);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    *hdrs = h;
out:
    if (auth != NULL) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    free(url);
    return e;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    strbuf *b = ud;
    if (strbuf_append(b, p, size * n) != 0)
        return 0; /* too big: curl fails the transfer with CURLE_WRITE_ERROR */
    return size * n;
}

int k8s_request(k8s_client *c, const char *method, const char *path, const char *body, long *status,
                strbuf *resp, char *err, size_t errlen)
{
    struct curl_slist *h = NULL;
    strbuf local;
    CURL *e;
    CURLcode cr;
    int rc = K8S_EFAIL;

    *status = 0;
    strbuf_init(&local, K8S_RESP_MAX);
    e = k8s_client_easy(c, path, &h, err, errlen);
    if (e == NULL)
        goto out;
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    if (body != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp ? resp : &local);
    cr = curl_easy_perform(e);
    if (cr != CURLE_OK) {
        snprintf(err, errlen, "%s %s%s: %s", method, c->conn.server, path, curl_easy_strerror(cr));
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    rc = 0;
out:
    if (e != NULL)
        curl_easy_cleanup(e);
    curl_slist_free_all(h);
    strbuf_free(&local);
    return rc;
}
