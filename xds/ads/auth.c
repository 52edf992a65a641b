/* auth: who a stream on the secure port is. A verified client certificate's SPIFFE URI
 * SAN of our trust domain, else a bearer JWT the TokenReview callback accepts (audience
 * istio-ca); the node the stream then sends must name that namespace and service account.
 * Runs on the shard thread that owns the connection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "xds/ads/server_internal.h"

/* ---- authentication on the secure port ------------------------------------------------- */

/* The token of "authorization: Bearer <t>", or NULL. */
char *srv_md_bearer(const grpc_metadata_array *md)
{
    char *token = NULL;
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        size_t kn = GRPC_SLICE_LENGTH(m->key);
        if (kn != 13 || memcmp(GRPC_SLICE_START_PTR(m->key), "authorization", 13) != 0)
            continue;
        size_t n = GRPC_SLICE_LENGTH(m->value);
        const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
        if (n > 7 && strncasecmp(v, "Bearer ", 7) == 0 && n < SRV_MAX_TOKEN) {
            free(token);
            token = xstrndup(v + 7, n - 7);
        }
    }
    return token;
}

/* True when the call arrived over TLS. */
bool srv_call_secure(grpc_call *call)
{
    bool secure = false;
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    if (ctx == NULL)
        return false;
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    secure = p != NULL && p->value_length == strlen(GRPC_SSL_TRANSPORT_SECURITY_TYPE) &&
             memcmp(p->value, GRPC_SSL_TRANSPORT_SECURITY_TYPE, p->value_length) == 0;
    grpc_auth_context_release(ctx);
    return secure;
}

/* spiffe://<td>/ns/<ns>/sa/<sa> with our trust domain: sets heap *ns and *sa. */
static bool spiffe_parse(const char *td, const char *uri, size_t n, char **ns, char **sa)
{
    size_t tdl = strlen(td);
    if (n < 9 || n > 600 || strncmp(uri, "spiffe://", 9) != 0)
        return false;
    const char *p = uri + 9, *end = uri + n;
    if ((size_t)(end - p) < tdl + 4 || strncmp(p, td, tdl) != 0 || strncmp(p + tdl, "/ns/", 4) != 0)
        return false;
    p += tdl + 4;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (slash == NULL || slash == p || (size_t)(end - slash) < 5 || strncmp(slash, "/sa/", 4) != 0)
        return false;
    const char *s = slash + 4;
    if (s == end || memchr(s, '/', (size_t)(end - s)) != NULL)
        return false;
    *ns = xstrndup(p, (size_t)(slash - p));
    *sa = xstrndup(s, (size_t)(end - s));
    return true;
}

void srv_conn_add_id(srv_conn *c, char *ns, char *sa)
{
    if (c->nids >= SRV_MAX_IDS) {
        free(ns);
        free(sa);
        return;
    }
    c->id_ns[c->nids] = ns;
    c->id_sa[c->nids] = sa;
    c->nids++;
}

/* Istio's authenticate for ADS on the secure port: client certificate SPIFFE identities,
 * else a TokenReview'd JWT. Returns true when the caller proved at least one identity;
 * false with why filled otherwise. A token review blocks this shard for its round trip. */
/* One token review on its own thread: the TokenReview call may take up to its timeout
 * (30 s against a stalled API server), so it never runs on a shard thread, where it would
 * hold every other stream of the shard. */
typedef struct review_job {
    xds_server *srv;
    srv_shard *sh;
    char *token;
    srv_review r;
} review_job;

static void *review_thread(void *arg)
{
    review_job *j = arg;
    xds_server *srv = j->srv;
    char err[256] = "";
    char *ns = NULL, *sa = NULL;
    if (srv->review(srv->review_ud, j->token, SRV_TOKEN_AUDIENCE, &ns, &sa, err, sizeof(err)) ==
            0 &&
        ns && sa) {
        j->r.ok = true;
        j->r.ns = ns;
        j->r.sa = sa;
    } else {
        free(ns);
        free(sa);
        snprintf(j->r.why, sizeof(j->r.why), "authentication failure: token review: %s",
                 err[0] ? err : "refused");
    }
    explicit_bzero(j->token, strlen(j->token));
    free(j->token);
    srv_review *done = xmalloc(sizeof(*done));
    *done = j->r;
    srv_shard *sh = j->sh;
    pthread_mutex_lock(&sh->mbox_lock);
    done->next = sh->reviews_done;
    sh->reviews_done = done;
    pthread_mutex_unlock(&sh->mbox_lock);
    atomic_store(&sh->mbox_flag, true);
    free(j);
    atomic_fetch_sub(&srv->review_workers, 1);
    return NULL;
}

int srv_conn_authenticate(srv_conn *c, const grpc_metadata_array *md, char *why, size_t whylen)
{
    xds_server *srv = c->sh->srv;
    grpc_auth_context *ctx = grpc_call_auth_context(c->call);
    if (ctx != NULL) {
        grpc_auth_property_iterator it =
            grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_SAN_PROPERTY_NAME);
        const grpc_auth_property *p;
        while ((p = grpc_auth_property_iterator_next(&it)) != NULL) {
            char *ns = NULL, *sa = NULL;
            if (spiffe_parse(srv->trust_domain, p->value, p->value_length, &ns, &sa))
                srv_conn_add_id(c, ns, sa);
        }
        grpc_auth_context_release(ctx);
    }
    if (c->nids > 0)
        return 1;
    char *token = srv_md_bearer(md);
    if (token == NULL) {
        snprintf(why, whylen,
                 "authentication failure: no client certificate with a SPIFFE "
                 "identity and no bearer token");
        return 0;
    }
    if (srv->review == NULL) {
        snprintf(why, whylen,
                 "authentication failure: bearer tokens are not accepted here "
                 "(no TokenReview configured)");
        free(token);
        return 0;
    }
    /* Count first, then look at stopping (xds_server_free does the reverse), as for unary
     * workers: either it waits for this worker or this sees stopping. */
    bool busy = atomic_fetch_add(&srv->review_workers, 1) >= SRV_MAX_REVIEWS;
    if (busy || atomic_load(&srv->stopping)) {
        atomic_fetch_sub(&srv->review_workers, 1);
        snprintf(why, whylen, "%s",
                 busy ? "too many token reviews in flight: retry later" : "the server is stopping");
        free(token);
        return 0;
    }
    review_job *j = xcalloc(1, sizeof(*j));
    j->srv = srv;
    j->sh = c->sh;
    j->token = token;
    j->r.conn_seq = c->st.seq;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, review_thread, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&srv->review_workers, 1);
        free(j->token);
        free(j);
        snprintf(why, whylen, "cannot start a token review: %s", strerror(rc));
        return 0;
    }
    c->auth_pending = true;
    return 2;
}

void srv_reviews_apply(srv_shard *sh, void (*resume)(srv_conn *c, const srv_review *r))
{
    pthread_mutex_lock(&sh->mbox_lock);
    srv_review *list = sh->reviews_done;
    sh->reviews_done = NULL;
    pthread_mutex_unlock(&sh->mbox_lock);
    while (list != NULL) {
        srv_review *r = list;
        list = r->next;
        srv_conn *c = sh->conns; /* the list changes only on this thread */
        while (c != NULL && c->st.seq != r->conn_seq)
            c = c->next;
        if (c != NULL && c->auth_pending) {
            c->auth_pending = false;
            if (r->ok) {
                srv_conn_add_id(c, r->ns, r->sa);
                r->ns = r->sa = NULL;
            }
            resume(c, r);
        }
        free(r->ns);
        free(r->sa);
        free(r);
    }
}

/* Istio's checkConnectionIdentity: some proven identity must match the node's namespace
 * and (when given) service account. Returns true, or false with why filled. */
bool srv_conn_identity_ok(srv_conn *c, const void *req, char *why, size_t whylen)
{
    const void *node =
        c->st.delta
            ? (const void *)((const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *)req)
                  ->node
            : (const void *)((const Envoy__Service__Discovery__V3__DiscoveryRequest *)req)->node;
    xds_proxy *p = NULL;
    char err[400];
    if (node == NULL || xds_proxy_from_node(node, c->sh->srv->domain, &p, err, sizeof(err)) != 0)
        return true; /* the stream rejects a bad node itself, with its own message */
    bool ok = false;
    for (int i = 0; i < c->nids && !ok; i++) {
        if (p->ns && p->ns[0] && strcmp(p->ns, c->id_ns[i]) != 0)
            continue;
        if (p->service_account && p->service_account[0] &&
            strcmp(p->service_account, c->id_sa[i]) != 0)
            continue;
        ok = true;
    }
    if (!ok)
        snprintf(why, whylen,
                 "authorization failed: no identities ([spiffe://%s/ns/%s/sa/%s%s]) "
                 "matched %s/%s",
                 c->sh->srv->trust_domain, c->id_ns[0], c->id_sa[0], c->nids > 1 ? " ..." : "",
                 p->ns ? p->ns : "", p->service_account ? p->service_account : "");
    xds_proxy_free(p);
    return ok;
}
