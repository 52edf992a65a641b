/* server: the gRPC server (C core API) carrying ADS (SotW and Delta) and unary methods
 * registered by other modules (the CA's CreateCertificate).
 *
 * Threads and ownership (read this before touching anything here):
 * - The server has XDS_SHARDS "shards", each one completion queue driven by one thread
 *   (shard_main). New calls are requested on every shard's queue, so gRPC spreads
 *   connections over the shards; a call, its xds_stream and its push state are owned by
 *   the shard thread that accepted it and are only mutated there.
 * - The C API has no wake-up for a completion queue: each shard polls it with a
 *   SHARD_POLL_MS deadline and then checks its mailbox.
 * - The model thread calls xds_server_on_push: it merges the snapshot and the push request
 *   into each shard's mailbox under mbox_lock (full wins, endpoint host sets union) and
 *   returns. The shard thread drains the mailbox into one pending push per connection
 *   (merged the same way) and runs them with bounded concurrency (srv->inflight, shared
 *   by all shards, at most max_concurrent_pushes connections being written a push).
 * - Debug handlers (debug_xds.c, libmicrohttpd's thread) read streams through
 *   xds_server_visit, which takes each shard's lock in turn. A shard thread holds its
 *   lock while it changes what the debug handlers read: the connection list and the
 *   stream state (xds_stream_on_request, xds_stream_push). The outbox is not read by them.
 * - Lock order: shard->lock and shard->mbox_lock are never held together.
 *
 * Per call at most one RECV_MESSAGE and one SEND_MESSAGE are outstanding (gRPC's rule);
 * responses wait in the stream's bounded outbox (stream.h).
 *
 * Limits: no outside input may hold what other streams need or grow memory without bound.
 * A client that stops reading leaves its SEND_MESSAGE pending (HTTP/2 flow control). The
 * shard never waits for it (sends are asynchronous), but a push holds one of the shared
 * push slots until the stream's outbox drains: a slot held longer than SRV_SLOT_HOLD_NS is
 * given back (the stream goes on writing without one), so the other streams keep
 * converging. A send not done after PILOT_XDS_SEND_TIMEOUT (60 s) cancels that stream with
 * DEADLINE_EXCEEDED; an outbox past its byte cap (PILOT_XDS_OUTBOX_MAX_BYTES, 64 MiB)
 * cancels it with RESOURCE_EXHAUSTED (stream.h). Each is counted in
 * pilot_xds_limit_closes{reason}. The endpoint hosts merged into a pending push (the
 * mailbox's, a connection's) are capped at SRV_MAX_PUSH_HOSTS: past it the push is full.
 *
 * Shutdown: gRPC aborts the process (assertion in grpc_cq_begin_op) when a batch is started
 * on a completion queue after grpc_completion_queue_shutdown, and a shard keeps handling
 * completions (a failed RECV ends the stream with a status, a push starts a SEND) until its
 * queue reports GRPC_QUEUE_SHUTDOWN. So the shard's own driver shuts its queue down
 * (shard_close_cq, on the shard thread when it runs) and sets cq_down first; nothing is
 * started on that queue afterwards (srv_conn_start_batch, srv_oneshot_start and shard_on_accept
 * check it). Unary workers are the only other threads that start batches: once
 * srv->stopping is set none is spawned (srv_unary_handle answers UNAVAILABLE itself) and
 * xds_server_free waits for the running ones before any queue is shut down.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "pilot/base/log.h"
#include "pilot/base/pbdepth.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"
#include "xds/ads/server_internal.h"

/* ---- helpers --------------------------------------------------------------------------- */

/* Adds the hosts not yet in *dst (a small set: linear is fine, host lists are short). */
static void hosts_union(char ***dst, size_t *ndst, char *const *src, size_t nsrc)
{
    for (size_t i = 0; i < nsrc; i++) {
        bool have = false;
        for (size_t j = 0; j < *ndst && !have; j++)
            have = strcmp((*dst)[j], src[i]) == 0;
        if (have)
            continue;
        *dst = xrealloc(*dst, (*ndst + 1) * sizeof(char *));
        (*dst)[(*ndst)++] = xstrdup(src[i]);
    }
}

/* hosts_union, then turn *full on (freeing the set) past SRV_MAX_PUSH_HOSTS: a full push
 * covers every host, and a client that never drains must not make the set grow. */
static void hosts_merge_capped(bool *full, char ***dst, size_t *ndst, char *const *src, size_t nsrc)
{
    if (*full)
        return;
    hosts_union(dst, ndst, src, nsrc > SRV_MAX_PUSH_HOSTS + 1 ? SRV_MAX_PUSH_HOSTS + 1 : nsrc);
    if (*ndst <= SRV_MAX_PUSH_HOSTS)
        return;
    util_strv_free(*dst, *ndst);
    *dst = NULL;
    *ndst = 0;
    *full = true;
}

static void res_slice_unref(void *p)
{
    xds_resource_release(p);
}

static void body_slice_unref(void *p)
{
    xds_body_release(p);
}

/* The message as gRPC slices, no byte copied: resources and shared bodies are slices that
 * hold a reference, and m's own buffer (the framing between them, the nonce) is handed to
 * one slice whose pieces are sub-slices of it (one reference count, where a copied slice
 * per piece was a malloc per resource per send). Takes m->buf. */
static grpc_byte_buffer *msg_to_bb(xds_msg *m)
{
    grpc_slice stack[32];
    grpc_slice *sl = m->nsegs <= 32 ? stack : xmalloc(m->nsegs * sizeof(grpc_slice));
    grpc_slice buf = m->buf != NULL ? grpc_slice_new(m->buf, m->len, free) : grpc_empty_slice();
    m->buf = NULL;
    m->cap = 0;
    for (size_t i = 0; i < m->nsegs; i++) {
        const xds_seg *s = &m->segs[i];
        if (s->res != NULL) {
            xds_resource_retain(s->res);
            sl[i] = grpc_slice_new_with_user_data(s->res->bytes, s->len, res_slice_unref, s->res);
        } else if (s->body != NULL) {
            xds_body_retain(s->body);
            sl[i] =
                grpc_slice_new_with_user_data(s->body->bytes, s->len, body_slice_unref, s->body);
        } else {
            sl[i] = grpc_slice_sub(buf, s->off, s->off + s->len);
        }
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(sl, m->nsegs);
    for (size_t i = 0; i < m->nsegs; i++)
        grpc_slice_unref(sl[i]);
    grpc_slice_unref(buf);
    if (sl != stack)
        free(sl);
    return bb;
}

/* ---- accepting calls ------------------------------------------------------------------- */

static void shard_post_accept(srv_accept *a)
{
    xds_server *srv = a->sh->srv;
    grpc_call_error e;
    if (atomic_load(&srv->stopping))
        return;
    a->call = NULL;
    a->payload = NULL;
    grpc_metadata_array_init(&a->md);
    if (a->kind == ACC_GENERIC) {
        grpc_call_details_init(&a->details);
        e = grpc_server_request_call(srv->server, &a->call, &a->details, &a->md, a->sh->cq,
                                     a->sh->cq, &a->tag);
    } else {
        void *h = a->kind == ACC_SOTW    ? srv->m_sotw
                  : a->kind == ACC_DELTA ? srv->m_delta
                                         : srv->unary[a->kind - ACC_UNARY0].handle;
        e = grpc_server_request_registered_call(srv->server, h, &a->call, &a->deadline, &a->md,
                                                a->kind >= ACC_UNARY0 ? &a->payload : NULL,
                                                a->sh->cq, a->sh->cq, &a->tag);
    }
    if (e != GRPC_CALL_OK) {
        LOG_ERR(LOG_SCOPE, "requesting a call failed: %d", (int)e);
        grpc_metadata_array_destroy(&a->md);
        if (a->kind == ACC_GENERIC)
            grpc_call_details_destroy(&a->details);
        return;
    }
    a->sh->accepts_out++;
}

static void accept_reset(srv_accept *a)
{
    grpc_metadata_array_destroy(&a->md);
    if (a->kind == ACC_GENERIC)
        grpc_call_details_destroy(&a->details);
    if (a->payload != NULL) {
        grpc_byte_buffer_destroy(a->payload);
        a->payload = NULL;
    }
}

/* ---- streams ----------------------------------------------------------------------------- */

static void conn_pump(srv_conn *c);

void srv_conn_start_batch(srv_conn *c, const grpc_op *ops, size_t n, srv_tag *tag)
{
    if (c->sh->cq_down) {
        /* the server is going away and the call with it: a batch now would abort */
        grpc_call_cancel(c->call, NULL);
        return;
    }
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        LOG_ERR(LOG_SCOPE, "%s: start_batch failed: %d", c->st.conn_id, (int)e);
        metric_add(xds_m.internal_errors, NULL, 1);
        grpc_call_cancel(c->call, NULL);
        return;
    }
    c->ops++;
}

static void conn_post_recv(srv_conn *c)
{
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    srv_conn_start_batch(c, &op, 1, &c->t_recv);
}

/* Ends the stream with a status once the write in flight (if any) is done. */
static void conn_finish(srv_conn *c, int code, const char *msg)
{
    if (c->finishing || c->closed)
        return;
    c->finishing = true;
    c->status_code = code;
    snprintf(c->status_msg, sizeof(c->status_msg), "%s", msg ? msg : "");
    conn_pump(c);
}

static void conn_send_status(srv_conn *c)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->initial_md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        c->initial_md_sent = true;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)c->status_code;
    grpc_slice details = grpc_slice_from_copied_string(c->status_msg);
    ops[n].data.send_status_from_server.status_details = &details;
    n++;
    c->status_sent = true;
    c->send_start_ns = util_now_ns(); /* a status stuck behind flow control times out too */
    srv_conn_start_batch(c, ops, n, &c->t_status);
    grpc_slice_unref(details);
}

static void pq_add(srv_shard *sh, srv_conn *c)
{
    if (c->in_pq)
        return;
    c->in_pq = true;
    c->pq_next = NULL;
    if (sh->pq_tail != NULL)
        sh->pq_tail->pq_next = c;
    else
        sh->pq_head = c;
    sh->pq_tail = c;
}

static void pq_remove(srv_shard *sh, srv_conn *c)
{
    if (!c->in_pq)
        return;
    srv_conn *prev = NULL;
    for (srv_conn *p = sh->pq_head; p != NULL; prev = p, p = p->pq_next) {
        if (p != c)
            continue;
        if (prev != NULL)
            prev->pq_next = p->pq_next;
        else
            sh->pq_head = p->pq_next;
        if (sh->pq_tail == p)
            sh->pq_tail = prev;
        break;
    }
    c->in_pq = false;
}

static void conn_push_done(srv_conn *c)
{
    if (!c->push_inflight)
        return;
    c->push_inflight = false;
    atomic_fetch_sub(&c->sh->srv->inflight, 1);
}

/* A limit ends the stream (see "Limits" above): cancel the call with code and msg at once,
 * since what is queued would never be read, and give back what it holds. The call's
 * batches then fail and TAG_CLOSE frees it as usual. */
static void conn_limit_close(srv_conn *c, grpc_status_code code, const char *reason,
                             const char *msg)
{
    if (c->limit_closed || c->closed)
        return;
    c->limit_closed = true;
    c->finishing = true;
    c->status_sent = true; /* the cancel carries the status: nothing more is written */
    c->push_pending = false;
    pq_remove(c->sh, c);
    conn_push_done(c);
    xds_msg *m;
    while ((m = xds_stream_pop(&c->st)) != NULL)
        xds_msg_free(m);
    metric_add(xds_m.limit_closes, reason, 1);
    LOG_WARN(LOG_SCOPE, "ADS: \"%s\" %s: closing the stream: %s", c->st.peer, c->st.conn_id, msg);
    grpc_call_cancel_with_status(c->call, code, msg, NULL);
}

/* The stream state asked for the end (st.close_code): a limit cancels, anything else
 * (a refused node) is a status after what is queued. */
static void conn_end_stream(srv_conn *c)
{
    if (c->st.close_reason != NULL)
        conn_limit_close(c, (grpc_status_code)c->st.close_code, c->st.close_reason,
                         c->st.close_msg);
    else
        conn_finish(c, c->st.close_code, c->st.close_msg);
}

/* Starts the next write, or the status when finishing and the outbox is drained. */
static void conn_pump(srv_conn *c)
{
    if (c->send_active || c->status_sent || c->closed)
        return;
    if (c->finishing) {
        conn_push_done(c);
        conn_send_status(c);
        return;
    }
    if (c->st.close_code != 0) {
        conn_end_stream(c);
        return;
    }
    xds_msg *m = xds_stream_pop(&c->st);
    if (m == NULL) {
        conn_push_done(c);
        if (c->push_pending)
            pq_add(c->sh, c);
        return;
    }
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->initial_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->initial_md_sent = true;
    }
    c->send_buf = msg_to_bb(m);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->send_buf;
    n++;
    c->inflight = m;
    c->st.inflight_bytes = m->total;
    c->send_active = true;
    c->send_start_ns = util_now_ns();
    srv_conn_start_batch(c, ops, n, &c->t_send);
}

static srv_conn *conn_new(srv_shard *sh, grpc_call *call, bool delta, const grpc_metadata_array *md)
{
    srv_conn *c = xcalloc(1, sizeof(*c));
    char *peer = grpc_call_get_peer(call);
    xds_stream_init(&c->st, delta, atomic_fetch_add(&sh->srv->conn_seq, 1) + 1, peer);
    gpr_free(peer);
    c->st.outq_max_bytes = sh->srv->outbox_max_bytes;
    c->sh = sh;
    c->call = call;
    c->t_recv = (srv_tag){TAG_RECV, c};
    c->t_send = (srv_tag){TAG_SEND, c};
    c->t_close = (srv_tag){TAG_CLOSE, c};
    c->t_status = (srv_tag){TAG_STATUS, c};

    pthread_mutex_lock(&sh->lock);
    c->next = sh->conns;
    if (sh->conns != NULL)
        sh->conns->prev = c;
    sh->conns = c;
    sh->nconns++;
    pthread_mutex_unlock(&sh->lock);

    grpc_op op = {0};
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    srv_conn_start_batch(c, &op, 1, &c->t_close);
    conn_post_recv(c);
    if (srv_call_secure(call)) {
        char why[400];
        c->secure = true;
        if (srv_conn_authenticate(c, md, why, sizeof(why)) == 0) {
            LOG_WARN(LOG_SCOPE, "ADS: %s: %s", c->st.peer, why);
            conn_finish(c, GRPC_STATUS_UNAUTHENTICATED, why);
        }
    }
    return c;
}

/* Frees c once the call is over and no batch is outstanding. */
static void conn_maybe_free(srv_conn *c)
{
    if (!c->closed || c->ops > 0)
        return;
    srv_shard *sh = c->sh;
    pthread_mutex_lock(&sh->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        sh->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    sh->nconns--;
    pthread_mutex_unlock(&sh->lock);
    pq_remove(sh, c);
    conn_push_done(c);
    if (c->st.proxy != NULL)
        LOG_INFO(LOG_SCOPE, "ADS: \"%s\" %s terminated", c->st.peer, c->st.conn_id);
    xds_msg_free(c->inflight);
    if (c->send_buf != NULL)
        grpc_byte_buffer_destroy(c->send_buf);
    if (c->recv_buf != NULL)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->held != NULL)
        grpc_byte_buffer_destroy(c->held);
    util_strv_free(c->push_hosts, c->npush_hosts);
    for (int i = 0; i < c->nids; i++) {
        free(c->id_ns[i]);
        free(c->id_sa[i]);
    }
    xds_stream_cleanup(&c->st);
    grpc_call_unref(c->call);
    free(c);
}

static mesh_snapshot *shard_snapshot(srv_shard *sh)
{
    if (sh->snap == NULL && sh->srv->snapshot != NULL)
        sh->snap = sh->srv->snapshot(sh->srv->snapshot_ud);
    return sh->snap;
}

static void conn_on_recv(srv_conn *c, bool ok)
{
    grpc_byte_buffer *bb = c->recv_buf;
    c->recv_buf = NULL;
    if (!ok || bb == NULL) {
        /* the client half-closed (or the call is dead): end it cleanly */
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        conn_finish(c, GRPC_STATUS_OK, "");
        return;
    }
    if (c->finishing) {
        grpc_byte_buffer_destroy(bb);
        return;
    }
    if (c->auth_pending) {
        /* the token is being reviewed: keep the request, read nothing more until then */
        c->held = bb;
        return;
    }
    grpc_byte_buffer_reader rd;
    grpc_slice sl = grpc_empty_slice();
    if (grpc_byte_buffer_reader_init(&rd, bb)) {
        sl = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
    }
    grpc_byte_buffer_destroy(bb);
    const ProtobufCMessageDescriptor *d =
        c->st.delta ? &envoy__service__discovery__v3__delta_discovery_request__descriptor
                    : &envoy__service__discovery__v3__discovery_request__descriptor;
    /* Node metadata is a Struct that nests without end: refuse deep input before
     * protobuf-c's recursive unpack can exhaust the stack. */
    ProtobufCMessage *req = NULL;
    if (pb_depth_ok(d, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), PB_MAX_DEPTH))
        req = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
    grpc_slice_unref(sl);
    if (req == NULL) {
        conn_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                    c->st.delta ? "cannot decode DeltaDiscoveryRequest"
                                : "cannot decode DiscoveryRequest");
        return;
    }
    if (c->secure && c->st.proxy == NULL) {
        char why[sizeof(((srv_conn *)0)->status_msg)];
        if (!srv_conn_identity_ok(c, req, why, sizeof(why))) {
            LOG_WARN(LOG_SCOPE, "ADS: %s: %s", c->st.peer, why);
            protobuf_c_message_free_unpacked(req, NULL);
            conn_finish(c, GRPC_STATUS_PERMISSION_DENIED, why);
            return;
        }
    }
    mesh_snapshot *snap = shard_snapshot(c->sh);
    int rc;
    if (xds_debug_type(
            c->st.delta
                ? ((const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *)req)->type_url
                : ((const Envoy__Service__Discovery__V3__DiscoveryRequest *)req)->type_url)) {
        rc = srv_debug_request(c, req, snap); /* debug_ads.c: takes the lock itself */
    } else {
        pthread_mutex_lock(&c->sh->lock);
        rc = xds_stream_on_request(&c->st, &c->sh->srv->env, snap, req);
        pthread_mutex_unlock(&c->sh->lock);
    }
    protobuf_c_message_free_unpacked(req, NULL);
    if (rc != 0 || c->st.close_code != 0) {
        conn_end_stream(c);
        return;
    }
    conn_post_recv(c);
    conn_pump(c);
}

static void conn_on_send(srv_conn *c, bool ok)
{
    c->send_active = false;
    c->st.inflight_bytes = 0;
    if (c->inflight != NULL) {
        metric_observe(xds_m.send_time, NULL, (double)(util_now_ns() - c->inflight->enq_ns) / 1e9);
        xds_msg_free(c->inflight);
        c->inflight = NULL;
    }
    if (c->send_buf != NULL) {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
    }
    if (!ok) {
        conn_push_done(c);
        return; /* the call is broken; TAG_CLOSE follows */
    }
    conn_pump(c);
}

/* ---- the shard loop -------------------------------------------------------------------- */

static void shard_on_accept(srv_shard *sh, srv_accept *a, bool ok)
{
    sh->accepts_out--;
    if (!ok || a->call == NULL) {
        accept_reset(a);
        return; /* server shutting down */
    }
    grpc_call *call = a->call;
    if (sh->cq_down) {
        /* matched before the server shut down, seen after the queue was: no batch may
         * start, and a stream without its RECV_CLOSE would never be freed */
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        accept_reset(a);
        return;
    }
    switch (a->kind) {
    case ACC_SOTW:
    case ACC_DELTA:
        conn_new(sh, call, a->kind == ACC_DELTA, &a->md);
        break;
    case ACC_GENERIC: {
        char method[256];
        size_t n = GRPC_SLICE_LENGTH(a->details.method);
        snprintf(method, sizeof(method), "%.*s", (int)(n > 200 ? 200 : n),
                 (const char *)GRPC_SLICE_START_PTR(a->details.method));
        LOG_DEBUG(LOG_SCOPE, "unknown method %s", method);
        char msg[300];
        snprintf(msg, sizeof(msg), "unknown method %s", method);
        srv_oneshot_start(sh, call, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
        break;
    }
    default:
        srv_unary_handle(sh, a);
        break;
    }
    accept_reset(a);
    shard_post_accept(a);
}

/* Moves the mailbox into every connection's pending push. */
/* A token review answered (srv_reviews_apply): refuse the stream, or go on with the
 * request that waited for it. */
static void conn_resume_auth(srv_conn *c, const srv_review *r)
{
    if (c->finishing) {
        if (c->held != NULL)
            grpc_byte_buffer_destroy(c->held);
        c->held = NULL;
        return;
    }
    if (!r->ok) {
        LOG_WARN(LOG_SCOPE, "ADS: %s: %s", c->st.peer, r->why);
        if (c->held != NULL) {
            grpc_byte_buffer_destroy(c->held);
            c->held = NULL;
        }
        conn_finish(c, GRPC_STATUS_UNAUTHENTICATED, r->why);
        return;
    }
    if (c->held != NULL) {
        c->recv_buf = c->held;
        c->held = NULL;
        conn_on_recv(c, true);
    }
}

static void shard_drain_mailbox(srv_shard *sh)
{
    if (!atomic_exchange(&sh->mbox_flag, false))
        return;
    srv_reviews_apply(sh, conn_resume_auth);
    pthread_mutex_lock(&sh->mbox_lock);
    mesh_snapshot *snap = sh->mbox_snap;
    bool full = sh->mbox_full;
    uint32_t kinds = sh->mbox_kinds;
    char **hosts = sh->mbox_hosts;
    size_t nhosts = sh->mbox_nhosts;
    int64_t start = sh->mbox_start_ns;
    bool has = sh->mbox_has;
    sh->mbox_snap = NULL;
    sh->mbox_hosts = NULL;
    sh->mbox_nhosts = 0;
    sh->mbox_full = false;
    sh->mbox_kinds = 0;
    sh->mbox_has = false;
    sh->mbox_start_ns = 0;
    pthread_mutex_unlock(&sh->mbox_lock);
    if (!has)
        return;
    if (snap != NULL) {
        if (sh->snap != NULL)
            mesh_snapshot_release(sh->snap);
        sh->snap = snap;
    }
    /* The list changes only on this thread: walking it without the lock is safe. */
    for (srv_conn *c = sh->conns; c != NULL; c = c->next) {
        if (c->finishing || c->closed)
            continue;
        if (!c->push_pending) {
            c->push_full = full;
            c->push_kinds = kinds;
            c->push_start_ns = start;
        } else {
            c->push_full = c->push_full || full;
            c->push_kinds |= kinds;
            if (start > 0 && (c->push_start_ns == 0 || start < c->push_start_ns))
                c->push_start_ns = start;
        }
        hosts_merge_capped(&c->push_full, &c->push_hosts, &c->npush_hosts, hosts, nhosts);
        c->push_pending = true;
        pq_add(sh, c);
    }
    util_strv_free(hosts, nhosts);
}

/* Runs queued pushes while a slot is free. A connection still writing keeps its pending
 * push; conn_pump requeues it when its outbox drains. */
static void shard_run_pushes(srv_shard *sh)
{
    xds_server *srv = sh->srv;
    while (sh->pq_head != NULL && atomic_load(&srv->inflight) < srv->max_pushes) {
        srv_conn *c = sh->pq_head;
        sh->pq_head = c->pq_next;
        if (sh->pq_head == NULL)
            sh->pq_tail = NULL;
        c->in_pq = false;
        if (!c->push_pending || c->finishing || c->closed)
            continue;
        if (c->send_active || c->st.outq_head != NULL)
            continue;
        if (sh->snap == NULL)
            continue;
        c->push_pending = false;
        /* istiod's pilot_proxy_queue_time: since the push's start (its first event) */
        if (c->push_start_ns > 0)
            metric_observe(xds_m.queue_time, NULL,
                           (double)(util_now_ns() - c->push_start_ns) / 1e9);
        pthread_mutex_lock(&sh->lock);
        int n = xds_stream_push_kinds(&c->st, &srv->env, sh->snap, c->push_full, c->push_kinds,
                                      c->push_hosts, c->npush_hosts, c->push_start_ns);
        pthread_mutex_unlock(&sh->lock);
        util_strv_free(c->push_hosts, c->npush_hosts);
        c->push_hosts = NULL;
        c->npush_hosts = 0;
        c->push_full = false;
        c->push_kinds = 0;
        if (n > 0 && !c->push_inflight) {
            c->push_inflight = true;
            c->slot_ns = util_now_ns();
            atomic_fetch_add(&srv->inflight, 1);
        }
        conn_pump(c);
    }
}

static void shard_handle(srv_shard *sh, grpc_event ev)
{
    srv_tag *tag = ev.tag;
    bool ok = ev.success != 0;
    switch (tag->kind) {
    case TAG_ACCEPT:
        shard_on_accept(sh, tag->obj, ok);
        return;
    case TAG_ONESHOT:
        srv_oneshot_done(tag->obj);
        return;
    case TAG_SHUTDOWN:
        atomic_store(&sh->srv->shutdown_done, true);
        return;
    default:
        break;
    }
    srv_conn *c = tag->obj;
    c->ops--;
    switch (tag->kind) {
    case TAG_RECV:
        conn_on_recv(c, ok);
        break;
    case TAG_SEND:
        conn_on_send(c, ok);
        break;
    case TAG_STATUS:
        c->status_done = true;
        break;
    case TAG_CLOSE:
        c->closed = true;
        conn_push_done(c);
        break;
    default:
        break;
    }
    conn_maybe_free(c);
}

/* Shuts the queue down from its only driver, so that no batch of that driver is started
 * after it (see the top of this file). */
static void shard_close_cq(srv_shard *sh)
{
    if (sh->cq_down)
        return;
    sh->cq_down = true;
    grpc_completion_queue_shutdown(sh->cq);
}

/* The shard's watch over writes (see "Limits" above), every SRV_CHECK_NS: a push slot held
 * past slot_hold_ns is given back, a write pending past send_timeout_ns ends its stream.
 * Walks the list without the lock: it changes only on this thread. */
static void shard_check_sends(srv_shard *sh)
{
    xds_server *srv = sh->srv;
    int64_t now = util_now_ns();
    if (now < sh->next_check_ns)
        return;
    sh->next_check_ns = now + SRV_CHECK_NS;
    for (srv_conn *c = sh->conns; c != NULL; c = c->next) {
        if (c->closed || c->limit_closed)
            continue;
        if (c->push_inflight && now - c->slot_ns > srv->slot_hold_ns) {
            LOG_DEBUG(LOG_SCOPE,
                      "ADS: %s: push still writing after %" PRId64 " ms: giving its slot back",
                      c->st.conn_id, (now - c->slot_ns) / 1000000);
            conn_push_done(c);
        }
        bool writing = c->send_active || (c->status_sent && !c->status_done);
        if (writing && now - c->send_start_ns > srv->send_timeout_ns) {
            char msg[400];
            snprintf(msg, sizeof(msg),
                     "node %s: a send did not complete within %.3g s "
                     "(PILOT_XDS_SEND_TIMEOUT): the client is not reading",
                     c->st.proxy != NULL ? c->st.proxy->id : c->st.peer,
                     (double)srv->send_timeout_ns / 1e9);
            conn_limit_close(c, GRPC_STATUS_DEADLINE_EXCEEDED, "send_timeout", msg);
        }
    }
}

static void *shard_main(void *arg)
{
    srv_shard *sh = arg;
    for (;;) {
        if (atomic_load(&sh->close_cq))
            shard_close_cq(sh);
        gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(SHARD_POLL_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(sh->cq, dl, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            shard_handle(sh, ev);
        shard_drain_mailbox(sh);
        shard_check_sends(sh);
        shard_run_pushes(sh);
    }
    return NULL;
}

/* ---- push notifications from the model thread ------------------------------------------ */

void xds_server_on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req)
{
    xds_server *srv = ud;
    /* a full push is istiod's new PushContext: the conflict gauges count afresh */
    if (snap != NULL && (req == NULL || req->full))
        xds_gen_conflicts_reset(srv->gen, snap->version);
    for (int i = 0; i < XDS_SHARDS; i++) {
        srv_shard *sh = &srv->shards[i];
        pthread_mutex_lock(&sh->mbox_lock);
        if (snap != NULL) {
            mesh_snapshot_retain(snap);
            if (sh->mbox_snap != NULL)
                mesh_snapshot_release(sh->mbox_snap);
            sh->mbox_snap = snap;
        }
        bool full = req == NULL || req->full;
        sh->mbox_full = sh->mbox_full || full;
        /* no request (or a full one naming no kind): assume every kind changed */
        uint32_t kinds = req != NULL ? req->kinds_changed : ~0u;
        sh->mbox_kinds |= full && kinds == 0 ? ~0u : kinds;
        if (req != NULL)
            hosts_merge_capped(&sh->mbox_full, &sh->mbox_hosts, &sh->mbox_nhosts,
                               req->endpoint_hosts, req->nendpoint_hosts);
        int64_t start = req != NULL ? req->start_ns : 0;
        if (start > 0 && (sh->mbox_start_ns == 0 || start < sh->mbox_start_ns))
            sh->mbox_start_ns = start;
        sh->mbox_has = true;
        pthread_mutex_unlock(&sh->mbox_lock);
        atomic_store(&sh->mbox_flag, true);
    }
}

/* ---- public API ------------------------------------------------------------------------ */

/* Debian's abseil keeps mutex deadlock detection on, a large share of gRPC's CPU under
 * load; switch it off when the symbol is there (C++ name, so looked up, not linked). */
static void server_tune_abseil(void)
{
    void (*set_mode)(int) = (void (*)(int))dlsym(
        RTLD_DEFAULT, "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE");
    if (set_mode != NULL)
        set_mode(0); /* OnDeadlockCycle::kIgnore */
}

static void server_int_arg(grpc_arg *args, size_t *n, const char *key, int64_t v)
{
    args[*n].type = GRPC_ARG_INTEGER;
    args[*n].key = (char *)key;
    args[*n].value.integer = v > INT32_MAX ? INT32_MAX : (int)v;
    (*n)++;
}

/* PILOT_XDS_OUTBOX_MAX_BYTES: a byte count > 0; anything else is the default (logged). */
static size_t server_env_outbox(void)
{
    const char *ev = getenv("PILOT_XDS_OUTBOX_MAX_BYTES");
    if (ev == NULL || *ev == '\0')
        return XDS_OUTQ_MAX_BYTES;
    char *end = NULL;
    unsigned long long v = strtoull(ev, &end, 10);
    if (end == ev || *end != '\0' || v == 0 || ev[0] == '-') {
        LOG_WARN(LOG_SCOPE, "PILOT_XDS_OUTBOX_MAX_BYTES=%.64s is not a byte count: using %zu", ev,
                 XDS_OUTQ_MAX_BYTES);
        return XDS_OUTQ_MAX_BYTES;
    }
    return (size_t)v;
}

/* PILOT_XDS_SEND_TIMEOUT: seconds ("3", "0.5") or a Go duration ("3s"), in [1ms, 24h]. */
static int64_t server_env_send_timeout(void)
{
    const char *ev = getenv("PILOT_XDS_SEND_TIMEOUT");
    if (ev == NULL || *ev == '\0')
        return SRV_SEND_TIMEOUT_NS;
    char *end = NULL;
    double secs = strtod(ev, &end);
    int64_t ns = 0;
    if (end != ev && *end == '\0')
        ns = secs >= 0 && secs <= 86400 ? (int64_t)(secs * 1e9) : 0;
    else if (util_parse_duration(ev, &ns) != 0)
        ns = 0;
    if (ns < 1000000LL || ns > 86400LL * 1000000000LL) {
        LOG_WARN(LOG_SCOPE, "PILOT_XDS_SEND_TIMEOUT=%.64s is not a time in [1ms, 24h]: using 60s",
                 ev);
        return SRV_SEND_TIMEOUT_NS;
    }
    return ns;
}

/* ns -> ms for gRPC's integer arguments: 0 stays 0 (off), anything else at least 1 ms. */
static int64_t server_ms(int64_t ns)
{
    return ns <= 0 ? 0 : ns < 1000000 ? 1 : ns / 1000000;
}

xds_server *xds_server_new(const xds_server_opts *opts)
{
    if (opts == NULL || opts->grpc_addr == NULL)
        return NULL;
    xds_server *s = xcalloc(1, sizeof(*s));
    s->addr = xstrdup(opts->grpc_addr);
    s->domain = xstrdup(opts->domain ? opts->domain : "cluster.local");
    s->snapshot = opts->snapshot;
    s->snapshot_ud = opts->snapshot_ud;
    s->opts_age_ms = server_ms(opts->max_connection_age_ns);
    s->opts_grace_ms = server_ms(opts->max_connection_age_grace_ns);
    s->opts_ka_time_ms = server_ms(opts->keepalive_time_ns);
    s->opts_ka_timeout_ms = server_ms(opts->keepalive_timeout_ns);
    if (opts->secure_addr != NULL && opts->secure_addr[0] != '\0' && opts->secure_creds != NULL) {
        s->secure_addr = xstrdup(opts->secure_addr);
        s->secure_creds = opts->secure_creds;
    }
    s->trust_domain =
        xstrdup(opts->trust_domain && opts->trust_domain[0] ? opts->trust_domain : "cluster.local");
    s->review = opts->review;
    s->review_ud = opts->review_ud;
    s->max_pushes = opts->max_concurrent_pushes;
    if (s->max_pushes <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->max_pushes = (int)(15 + 5 * (cores > 0 ? cores : 1));
        if (s->max_pushes > 100)
            s->max_pushes = 100;
    }
    s->outbox_max_bytes = server_env_outbox();
    s->send_timeout_ns = server_env_send_timeout();
    s->slot_hold_ns = s->send_timeout_ns < SRV_SLOT_HOLD_NS ? s->send_timeout_ns : SRV_SLOT_HOLD_NS;
    xds_metrics_init();
    s->gen = xds_gen_new();
    xds_gen_set_trust_domain(s->gen, s->trust_domain);
    xds_gen_set_mesh_authz(s->gen, opts->mesh_authz);
    xds_gen_set_mesh_telemetry(s->gen, opts->mesh_telemetry);
    xds_gen_set_outbound_mode(s->gen, opts->outbound_mode);
    xds_gen_set_sidecar_ingress_tls(s->gen, opts->sidecar_ingress_tls);
    s->env.gen = s->gen;
    s->env.domain = s->domain;
    s->env.bodies = xds_body_cache_new(SRV_BODY_CACHE_BYTES);
    for (int i = 0; i < XDS_SHARDS; i++) {
        srv_shard *sh = &s->shards[i];
        sh->srv = s;
        sh->idx = i;
        pthread_mutex_init(&sh->lock, NULL);
        pthread_mutex_init(&sh->mbox_lock, NULL);
    }
    /* Before the HTTP servers start (pilot/obs/debug.h). A push that arrives before
     * xds_server_start waits in the mailboxes. */
    xds_debug_register(s);
    return s;
}

void xds_server_register_unary(xds_server *s, const char *method, xds_unary_fn fn, void *ud)
{
    if (s->started || s->nunary >= SRV_MAX_UNARY) {
        LOG_ERR(LOG_SCOPE, "cannot register %s: too late or too many methods", method);
        return;
    }
    s->unary[s->nunary++] = (srv_unary){xstrdup(method), fn, ud, NULL};
}

static char *server_bind_addr(const char *addr)
{
    if (addr[0] == ':')
        return xasprintf("[::]%s", addr);
    return xstrdup(addr);
}

int xds_server_start(xds_server *s)
{
    int rc = -1;
    char *addr = server_bind_addr(s->addr);
    grpc_server_credentials *creds = NULL;

    server_tune_abseil();
    grpc_init();
    grpc_arg args[8];
    size_t nargs = 0;
    server_int_arg(args, &nargs, GRPC_ARG_ALLOW_REUSEPORT, 0);
    if (s->opts_age_ms > 0) {
        server_int_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_MS, s->opts_age_ms);
        server_int_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, s->opts_grace_ms);
    }
    if (s->opts_ka_time_ms > 0) {
        server_int_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIME_MS, s->opts_ka_time_ms);
        server_int_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, s->opts_ka_timeout_ms);
        server_int_arg(args, &nargs, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        /* Envoy pings every 30s by default (istiod allows 15s: keepalive.EnforcementPolicy) */
        server_int_arg(args, &nargs, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 15000);
    }
    grpc_channel_args cargs = {nargs, args};
    s->server = grpc_server_create(&cargs, NULL);
    s->m_sotw = grpc_server_register_method(s->server, METHOD_SOTW, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    s->m_delta =
        grpc_server_register_method(s->server, METHOD_DELTA, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    for (int i = 0; i < s->nunary; i++)
        s->unary[i].handle = grpc_server_register_method(
            s->server, s->unary[i].method, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    for (int i = 0; i < XDS_SHARDS; i++) {
        s->shards[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->shards[i].cq, NULL);
    }
    creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, addr, creds);
    if (s->port <= 0) {
        LOG_ERR(LOG_SCOPE, "cannot bind gRPC address %s", addr);
        goto out;
    }
    if (s->secure_addr != NULL) {
        char *saddr = server_bind_addr(s->secure_addr);
        s->secure_port = grpc_server_add_http2_port(s->server, saddr, s->secure_creds);
        if (s->secure_port <= 0) {
            LOG_ERR(LOG_SCOPE, "cannot bind secure gRPC address %s", saddr);
            free(saddr);
            goto out;
        }
        LOG_INFO(LOG_SCOPE, "gRPC over TLS (ADS, CA) listening on %s, port %d", saddr,
                 s->secure_port);
        free(saddr);
    }
    grpc_server_start(s->server);
    s->started = true;
    for (int i = 0; i < XDS_SHARDS; i++) {
        srv_shard *sh = &s->shards[i];
        sh->acc_sotw = (srv_accept){.tag = {TAG_ACCEPT, &sh->acc_sotw}, .sh = sh, .kind = ACC_SOTW};
        sh->acc_delta =
            (srv_accept){.tag = {TAG_ACCEPT, &sh->acc_delta}, .sh = sh, .kind = ACC_DELTA};
        sh->acc_generic =
            (srv_accept){.tag = {TAG_ACCEPT, &sh->acc_generic}, .sh = sh, .kind = ACC_GENERIC};
        shard_post_accept(&sh->acc_sotw);
        shard_post_accept(&sh->acc_delta);
        shard_post_accept(&sh->acc_generic);
        for (int u = 0; u < s->nunary; u++) {
            sh->acc_unary[u] = (srv_accept){
                .tag = {TAG_ACCEPT, &sh->acc_unary[u]}, .sh = sh, .kind = ACC_UNARY0 + u};
            shard_post_accept(&sh->acc_unary[u]);
        }
    }
    for (int i = 0; i < XDS_SHARDS; i++) {
        if (pthread_create(&s->shards[i].thread, NULL, shard_main, &s->shards[i]) != 0) {
            LOG_ERR(LOG_SCOPE, "cannot start xds thread");
            goto out;
        }
        s->shards[i].thread_started = true;
    }
    LOG_INFO(LOG_SCOPE, "gRPC (ADS) listening on %s, port %d", addr, s->port);
    rc = 0;
out:
    if (creds != NULL)
        grpc_server_credentials_release(creds);
    free(addr);
    return rc;
}

int xds_server_port(const xds_server *s)
{
    return s ? s->port : 0;
}

int xds_server_secure_port(const xds_server *s)
{
    return s ? s->secure_port : 0;
}

void xds_server_set_mesh(xds_server *s, const xds_mesh_authz *authz,
                         const xds_mesh_telemetry *telemetry, xds_outbound_mode mode)
{
    xds_gen_set_mesh(s->gen, authz, telemetry, mode);
}

void xds_server_free(xds_server *s)
{
    if (s == NULL)
        return;
    /* No debug handler may read the shards once they start going away. */
    xds_debug_unregister(s);
    atomic_store(&s->stopping, true);
    if (s->server != NULL) {
        s->shutdown_tag = (srv_tag){TAG_SHUTDOWN, NULL};
        grpc_server_shutdown_and_notify(s->server, s->shards[0].cq, &s->shutdown_tag);
        grpc_server_cancel_all_calls(s->server);
        /* Unary workers hold calls and answer on the shards' queues: let them finish. */
        while (atomic_load(&s->unary_workers) > 0 || atomic_load(&s->review_workers) > 0)
            usleep(2000);
        if (s->shards[0].thread_started) {
            while (!atomic_load(&s->shutdown_done))
                usleep(5000);
        } else {
            /* no thread drains the queue: wait for the tag here */
            for (;;) {
                grpc_event ev = grpc_completion_queue_next(
                    s->shards[0].cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_OP_COMPLETE && ev.tag == &s->shutdown_tag)
                    break;
                if (ev.type == GRPC_OP_COMPLETE)
                    shard_handle(&s->shards[0], ev);
            }
        }
        grpc_server_destroy(s->server);
    }
    for (int i = 0; i < XDS_SHARDS; i++)
        atomic_store(&s->shards[i].close_cq, true); /* seen within SHARD_POLL_MS */
    for (int i = 0; i < XDS_SHARDS; i++) {
        srv_shard *sh = &s->shards[i];
        if (sh->cq == NULL)
            continue;
        if (sh->thread_started) {
            pthread_join(sh->thread, NULL);
        } else {
            shard_close_cq(sh);
            for (;;) {
                grpc_event ev =
                    grpc_completion_queue_next(sh->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                    break;
                if (ev.type == GRPC_OP_COMPLETE)
                    shard_handle(sh, ev);
            }
        }
        grpc_completion_queue_destroy(sh->cq);
    }
    for (int i = 0; i < XDS_SHARDS; i++) {
        srv_shard *sh = &s->shards[i];
        while (sh->conns != NULL) { /* only when calls could not be cancelled */
            srv_conn *c = sh->conns;
            sh->conns = c->next;
            xds_stream_cleanup(&c->st);
            free(c);
        }
        if (sh->snap != NULL)
            mesh_snapshot_release(sh->snap);
        if (sh->mbox_snap != NULL)
            mesh_snapshot_release(sh->mbox_snap);
        util_strv_free(sh->mbox_hosts, sh->mbox_nhosts);
        while (sh->reviews_done != NULL) { /* answered after the shard stopped */
            srv_review *r = sh->reviews_done;
            sh->reviews_done = r->next;
            free(r->ns);
            free(r->sa);
            free(r);
        }
        pthread_mutex_destroy(&sh->lock);
        pthread_mutex_destroy(&sh->mbox_lock);
    }
    if (s->started || s->server != NULL)
        grpc_shutdown();
    for (int i = 0; i < s->nunary; i++)
        free(s->unary[i].method);
    xds_body_cache_free(s->env.bodies);
    xds_gen_free(s->gen);
    free(s->addr);
    free(s->domain);
    free(s->secure_addr);
    free(s->trust_domain);
    free(s);
}

/* ---- for debug_xds.c ------------------------------------------------------------------- */

void xds_server_visit(xds_server *s, xds_stream_visit_fn fn, void *ud)
{
    for (int i = 0; i < XDS_SHARDS; i++) {
        srv_shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        for (srv_conn *c = sh->conns; c != NULL; c = c->next)
            if (c->st.proxy != NULL)
                fn(ud, &c->st);
        pthread_mutex_unlock(&sh->lock);
    }
}

size_t xds_server_connections(xds_server *s)
{
    size_t n = 0;
    for (int i = 0; i < XDS_SHARDS; i++) {
        pthread_mutex_lock(&s->shards[i].lock);
        n += s->shards[i].nconns;
        pthread_mutex_unlock(&s->shards[i].lock);
    }
    return n;
}
