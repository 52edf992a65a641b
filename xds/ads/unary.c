/* unary: one-shot calls: the unary methods other modules register (the CA's
 * CreateCertificate), answered on worker threads so a slow handler never holds a shard,
 * and UNIMPLEMENTED for unknown methods. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "xds/ads/server_internal.h"

/* ---- one-shot calls: unary methods and UNIMPLEMENTED ----------------------------------- */

/* sh: the shard whose thread calls this; NULL on a unary worker (xds_server_free waits for
 * those before shutting any queue down). */
void srv_oneshot_start(srv_shard *sh, grpc_call *call, int code, const char *msg,
                       grpc_byte_buffer *resp)
{
    if (sh != NULL && sh->cq_down) {
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        if (resp != NULL)
            grpc_byte_buffer_destroy(resp);
        return;
    }
    srv_oneshot *o = xcalloc(1, sizeof(*o));
    o->tag = (srv_tag){TAG_ONESHOT, o};
    o->call = call;
    o->resp = resp;
    o->details = grpc_slice_from_copied_string(msg ? msg : "");
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (resp != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = resp;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n].data.send_status_from_server.status_details = &o->details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &o->cancelled;
    n++;
    if (grpc_call_start_batch(call, ops, n, &o->tag, NULL) != GRPC_CALL_OK) {
        LOG_ERR(LOG_SCOPE, "unary: start_batch failed");
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        if (resp != NULL)
            grpc_byte_buffer_destroy(resp);
        grpc_slice_unref(o->details);
        free(o);
    }
}

void srv_oneshot_done(srv_oneshot *o)
{
    if (o->resp != NULL)
        grpc_byte_buffer_destroy(o->resp);
    grpc_slice_unref(o->details);
    grpc_call_unref(o->call);
    free(o);
}

/* A unary call taken off the shard: handlers may block (the CA's TokenReview is an API
 * server round trip, up to curl's 30 s), which must not stall the ADS streams of a shard.
 * Each runs on a short-lived detached thread, at most SRV_MAX_UNARY_WORKERS at once;
 * beyond that the shard runs it inline, which is the backpressure. The batch that answers
 * is started from the worker (grpc_call_start_batch is thread-safe) and completes on the
 * shard's queue like any other. */
typedef struct srv_unary_job {
    xds_server *srv;
    srv_shard *sh; /* the accepting shard (runs the job when not threaded) */
    srv_unary *u;
    grpc_call *call;
    char *peer; /* gpr_malloc'd */
    char *token;
    char **sans;
    size_t nsans;
    bool secure;
    grpc_slice req;
    bool threaded;
    bool refuse; /* the server is stopping: answer without the handler */
} srv_unary_job;

static void unary_run(srv_unary_job *j)
{
    xds_call_auth auth = {0};
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    char *status_msg = NULL;
    auth.peer = j->peer;
    auth.secure = j->secure;
    auth.bearer_token = j->token;
    auth.peer_uri_sans = (const char *const *)j->sans;
    auth.npeer_uri_sans = j->nsans;
    int code = GRPC_STATUS_UNAVAILABLE;
    if (j->refuse)
        status_msg = xstrdup("server is shutting down");
    else
        code = j->u->fn(j->u->ud, &auth, GRPC_SLICE_START_PTR(j->req), GRPC_SLICE_LENGTH(j->req),
                        &resp, &resp_len, &status_msg);
    grpc_byte_buffer *bb = NULL;
    if (code == GRPC_STATUS_OK) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)resp, resp_len);
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
    }
    srv_oneshot_start(j->threaded ? NULL : j->sh, j->call, code, status_msg, bb);
    grpc_slice_unref(j->req);
    free(resp);
    free(status_msg);
    free(j->token);
    for (size_t i = 0; i < j->nsans; i++)
        free(j->sans[i]);
    free(j->sans);
    gpr_free(j->peer);
    if (j->threaded)
        atomic_fetch_sub(&j->srv->unary_workers, 1);
    free(j);
}

static void *unary_thread(void *arg)
{
    unary_run(arg);
    return NULL;
}

void srv_unary_handle(srv_shard *sh, srv_accept *a)
{
    srv_unary_job *j = xcalloc(1, sizeof(*j));
    j->srv = sh->srv;
    j->sh = sh;
    j->u = &sh->srv->unary[a->kind - ACC_UNARY0];
    j->call = a->call;
    j->peer = grpc_call_get_peer(a->call);
    j->secure = srv_call_secure(a->call);
    j->token = srv_md_bearer(&a->md);
    j->req = grpc_empty_slice();
    grpc_auth_context *ctx = grpc_call_auth_context(a->call);
    if (ctx != NULL) {
        grpc_auth_property_iterator it =
            grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_SAN_PROPERTY_NAME);
        const grpc_auth_property *p;
        while ((p = grpc_auth_property_iterator_next(&it)) != NULL && j->nsans < 16) {
            if (p->value_length > 9 && strncmp(p->value, "spiffe://", 9) == 0) {
                j->sans = xrealloc(j->sans, (j->nsans + 1) * sizeof(char *));
                j->sans[j->nsans++] = xstrndup(p->value, p->value_length);
            }
        }
        grpc_auth_context_release(ctx);
    }
    if (a->payload != NULL) {
        grpc_byte_buffer_reader rd;
        if (grpc_byte_buffer_reader_init(&rd, a->payload)) {
            j->req = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
        }
    }
    /* Count first, then look at stopping (xds_server_free does the reverse): either it
     * waits for this worker or this sees stopping; a worker spawned after its wait would
     * start a batch on a queue that may be shut down, and outlive srv. */
    bool busy = atomic_fetch_add(&sh->srv->unary_workers, 1) >= SRV_MAX_UNARY_WORKERS;
    j->refuse = atomic_load(&sh->srv->stopping);
    if (!busy && !j->refuse) {
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        j->threaded = true;
        int rc = pthread_create(&t, &attr, unary_thread, j);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            return;
        j->threaded = false;
    }
    atomic_fetch_sub(&sh->srv->unary_workers, 1);
    unary_run(j);
}
