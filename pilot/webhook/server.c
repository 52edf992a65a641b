/* server: the HTTPS server of the webhooks, on libmicrohttpd with its TLS (Debian builds
 * it with GnuTLS). The certificate is not given once (MHD_OPTION_HTTPS_MEM_CERT) but
 * handed to GnuTLS on each handshake by a retrieve callback, which asks the provider
 * whether it changed: a renewal reaches the next connection without restarting the
 * daemon or dropping requests in flight.
 *
 * Threads: libmicrohttpd's polling thread accepts; one thread per connection reads the
 * body (bounded by WH_MAX_BODY), runs wh_handle and writes the reply, so a slow client or
 * a slow review stalls only its own connection. Locks: cred_mu guards the credentials and
 * the owner pointer; it is taken in the handshake callback and around start/stop, and the
 * provider is called with it held (the provider takes only its own lock).
 */
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "pilot/base/log.h"
#include "pilot/obs/debug.h"
#include "pilot/webhook/webhook_internal.h"

#define WH_MAX_CHAIN 8
#define WH_MAX_CONNECTIONS 128
#define WH_CONNECTION_TIMEOUT_S 30

/* One certificate generation, in GnuTLS's form. */
typedef struct wh_creds {
    gnutls_pcert_st pcerts[WH_MAX_CHAIN];
    unsigned npcerts;
    gnutls_privkey_t key;
    bool loaded;
} wh_creds;

struct wh_server {
    struct MHD_Daemon *daemon;
    int port;
    wh_config cfg;
    wh_cred_fn cred;
    void *cred_ud;
    /* Under cred_mu. The previous generation stays alive until the next renewal: a
     * handshake that picked it up may still be running when the certificate changes. */
    wh_creds cur, prev;
    uint64_t gen;
};

/* GnuTLS's retrieve callback carries no user pointer: the one running server. */
static pthread_mutex_t cred_mu = PTHREAD_MUTEX_INITIALIZER;
static wh_server *cred_owner;

static void creds_free(wh_creds *c)
{
    if (!c->loaded)
        return;
    for (unsigned i = 0; i < c->npcerts; i++)
        gnutls_pcert_deinit(&c->pcerts[i]);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    memset(c, 0, sizeof(*c));
}

static int creds_import(wh_creds *c, const char *cert_pem, const char *key_pem)
{
    int rc = -1, r;
    memset(c, 0, sizeof(*c));
    gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    c->npcerts = WH_MAX_CHAIN;
    r = gnutls_pcert_list_import_x509_raw(c->pcerts, &c->npcerts, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (r < 0) {
        LOG_ERR(WH_LOG, "serving certificate: %s", gnutls_strerror(r));
        c->npcerts = 0;
        goto out;
    }
    c->loaded = true;
    if ((r = gnutls_privkey_init(&c->key)) < 0 ||
        (r = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        LOG_ERR(WH_LOG, "serving key: %s", gnutls_strerror(r));
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        creds_free(c);
    return rc;
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

/* Asks the provider for a newer certificate (cred_mu held). Returns 0 when s->cur holds a
 * usable certificate. */
static int creds_refresh(wh_server *s)
{
    char *cert = NULL, *key = NULL;
    uint64_t gen = 0;
    int r = s->cred(s->cred_ud, s->gen, &cert, &key, &gen);
    if (r == 1) {
        wh_creds next;
        if (creds_import(&next, cert, key) == 0) {
            creds_free(&s->prev);
            s->prev = s->cur;
            s->cur = next;
            if (s->gen)
                LOG_INFO(WH_LOG, "serving certificate renewed (generation %llu)",
                         (unsigned long long)gen);
            s->gen = gen;
        }
    }
    wipe_free(cert);
    wipe_free(key);
    return s->cur.loaded ? 0 : -1;
}

static int cert_cb(gnutls_session_t sess, const gnutls_datum_t *req_ca_dn, int nreqs,
                   const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **pcert,
                   unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)sess;
    (void)req_ca_dn;
    (void)nreqs;
    (void)algos;
    (void)nalgos;
    int rc = -1;
    pthread_mutex_lock(&cred_mu);
    wh_server *s = cred_owner;
    if (s && creds_refresh(s) == 0) {
        *pcert = s->cur.pcerts;
        *pcert_length = s->cur.npcerts;
        *pkey = s->cur.key;
        rc = 0;
    }
    pthread_mutex_unlock(&cred_mu);
    return rc;
}

/* ---- requests ------------------------------------------------------------------------- */

typedef struct wh_conn {
    strbuf body;
    bool too_big;
} wh_conn;

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    wh_conn *c = *con_cls;
    if (c) {
        strbuf_free(&c->body);
        free(c);
        *con_cls = NULL;
    }
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, wh_reply *r)
{
    size_t len = 0;
    char *body = strbuf_steal(&r->body, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    wh_server *s = cls;
    wh_conn *c = *con_cls;
    if (!c) {
        /* First call: headers only. */
        c = xcalloc(1, sizeof(*c));
        strbuf_init(&c->body, WH_MAX_BODY);
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* Past the cap the rest is read and dropped, so the client gets its 400 instead
         * of a reset connection. */
        if (!c->too_big && strbuf_append(&c->body, upload_data, *upload_data_size) != 0) {
            c->too_big = true;
            strbuf_free(&c->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    wh_reply r;
    wh_reply_init(&r);
    if (c->too_big) {
        r.status = 400;
        r.content_type = "text/plain; charset=utf-8";
        strbuf_appendf(&r.body, "request body larger than %u bytes\n", WH_MAX_BODY);
    } else {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        wh_handle(&s->cfg, method, url, ct, c->body.data, c->body.len, &r);
    }
    enum MHD_Result rc = queue_reply(conn, &r);
    wh_reply_free(&r);
    return rc;
}

/* ---- the server ----------------------------------------------------------------------- */

wh_server *wh_server_start(const wh_server_opts *o)
{
    wh_metrics_init();
    wh_server *s = xcalloc(1, sizeof(*s));
    int fd = -1;
    bool owner = false;
    s->cfg = o->cfg;
    s->cred = o->cred;
    s->cred_ud = o->cred_ud;

    if (!MHD_is_feature_supported(MHD_FEATURE_TLS) ||
        !MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK)) {
        LOG_ERR(WH_LOG, "%s: this libmicrohttpd has no TLS certificate callback", o->addr);
        goto fail;
    }
    if (!o->cred) {
        LOG_ERR(WH_LOG, "%s: no serving certificate provider", o->addr);
        goto fail;
    }
    pthread_mutex_lock(&cred_mu);
    if (cred_owner) {
        pthread_mutex_unlock(&cred_mu);
        LOG_ERR(WH_LOG, "%s: a webhook server already runs in this process", o->addr);
        goto fail;
    }
    int cr = creds_refresh(s);
    if (cr == 0) {
        cred_owner = s;
        owner = true;
    }
    pthread_mutex_unlock(&cred_mu);
    if (cr != 0) {
        LOG_ERR(WH_LOG, "%s: no serving certificate", o->addr);
        goto fail;
    }
    if ((fd = dbg_listen_socket(o->addr, &s->port)) < 0)
        goto fail;
    /* Replies go out as header and body writes: without this, Nagle holds the second until
     * the client's delayed ACK (40 ms per review). Accepted sockets inherit it. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->daemon = MHD_start_daemon(MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION |
                                     MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                                 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_HTTPS_CERT_CALLBACK, cert_cb,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)WH_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WH_CONNECTION_TIMEOUT_S,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        LOG_ERR(WH_LOG, "%s: cannot start the HTTPS server", o->addr);
        close(fd);
        goto fail;
    }
    LOG_INFO(WH_LOG, "webhook server (/inject, /validate) listening on %s (port %d, TLS)", o->addr,
             s->port);
    return s;
fail:
    pthread_mutex_lock(&cred_mu);
    if (owner)
        cred_owner = NULL;
    creds_free(&s->cur);
    creds_free(&s->prev);
    pthread_mutex_unlock(&cred_mu);
    free(s);
    return NULL;
}

int wh_server_port(const wh_server *s)
{
    return s ? s->port : -1;
}

void wh_server_stop(wh_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon); /* joins the connection threads */
    pthread_mutex_lock(&cred_mu);
    if (cred_owner == s)
        cred_owner = NULL;
    creds_free(&s->cur);
    creds_free(&s->prev);
    pthread_mutex_unlock(&cred_mu);
    free(s);
}
