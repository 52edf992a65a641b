/* server_internal: the ADS server's shared state (shards, connections, one-shot calls),
 * for its three files: server.c (gRPC hosting, shards, streams, push scheduling), auth.c
 * (who a caller on the secure port is) and unary.c (unary methods and UNIMPLEMENTED).
 * The thread and ownership rules are at the top of server.c. Nothing outside xds/ads/.
 */
#ifndef XDS_ADS_SERVER_INTERNAL_H
#define XDS_ADS_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "xds/ads/server.h"
#include "xds/ads/stream_internal.h"

#define LOG_SCOPE "ads"
#define XDS_SHARDS 2
#define SHARD_POLL_MS 50
#define SRV_MAX_UNARY 8
#define SRV_MAX_UNARY_WORKERS 16 /* unary calls running off the shard threads at once */
#define SRV_MAX_IDS 4            /* SPIFFE identities kept per secure stream */
#define SRV_MAX_TOKEN 16384      /* bearer tokens are about a kilobyte */
#define SRV_TOKEN_AUDIENCE "istio-ca"
/* Limits on what a client that stops reading can hold (server.c, "Limits"). */
#define SRV_SEND_TIMEOUT_NS (60LL * 1000000000LL) /* PILOT_XDS_SEND_TIMEOUT overrides */
#define SRV_SLOT_HOLD_NS (2LL * 1000000000LL)     /* a push slot held longer is given back */
#define SRV_CHECK_NS (100LL * 1000000LL)          /* how often a shard looks for stuck sends */
#define SRV_MAX_PUSH_HOSTS 1024 /* endpoint hosts merged into one pending push, then full */
/* Shared response bodies kept for reuse (stream_internal.h, xds_body_cache): a few
 * versions of every class's sets at a 1000-service mesh. Bodies being sent outlive it. */
#define SRV_BODY_CACHE_BYTES ((size_t)128 << 20)

#define METHOD_SOTW                                                                                \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define METHOD_DELTA                                                                               \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

typedef enum {
    TAG_ACCEPT,   /* a requested call arrived (srv_accept) */
    TAG_RECV,     /* RECV_MESSAGE done (srv_conn) */
    TAG_SEND,     /* SEND_MESSAGE done */
    TAG_CLOSE,    /* RECV_CLOSE_ON_SERVER done: the call is over */
    TAG_STATUS,   /* SEND_STATUS_FROM_SERVER done */
    TAG_ONESHOT,  /* a unary or unimplemented call's single batch done (srv_oneshot) */
    TAG_SHUTDOWN, /* grpc_server_shutdown_and_notify */
} tag_kind;

typedef struct srv_tag {
    tag_kind kind;
    void *obj;
} srv_tag;

typedef struct srv_shard srv_shard;

enum { ACC_SOTW = 0, ACC_DELTA, ACC_GENERIC, ACC_UNARY0 };

typedef struct srv_accept {
    srv_tag tag;
    srv_shard *sh;
    int kind; /* ACC_*, ACC_UNARY0 + i for unary method i */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details;
} srv_accept;

typedef struct srv_conn {
    xds_stream st;
    srv_shard *sh;
    grpc_call *call;
    srv_tag t_recv, t_send, t_close, t_status;
    int ops; /* outstanding batches */
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    xds_msg *inflight; /* the message being written */
    int cancelled;
    bool closed; /* RECV_CLOSE_ON_SERVER completed */
    bool send_active, initial_md_sent, status_sent, status_done, finishing;
    int status_code;
    char status_msg[512];

    /* the one pending push of this connection (merged) */
    bool push_pending, push_full, in_pq, push_inflight;
    uint32_t push_kinds; /* mesh kinds changed (bits), merged like push_full */
    char **push_hosts;
    size_t npush_hosts;
    int64_t push_start_ns;
    int64_t slot_ns; /* when push_inflight took its slot */

    /* The write in flight (message or status) started at send_start_ns; a limit that ended
     * the stream cancelled the call (limit_closed) and nothing is written afterwards. */
    int64_t send_start_ns;
    bool limit_closed;

    /* Secure port: the identities the caller proved (client certificate or JWT). A token
     * is reviewed on a worker thread (auth.c): until the answer the first request waits
     * in `held` and nothing else is read, so no outside input blocks the shard. */
    bool secure;
    bool auth_pending;
    grpc_byte_buffer *held;
    char *id_ns[SRV_MAX_IDS], *id_sa[SRV_MAX_IDS];
    int nids;

    struct srv_conn *prev, *next; /* shard list, under shard->lock */
    struct srv_conn *pq_next;     /* push queue, shard thread only */
} srv_conn;

/* A call answered with one batch: a unary method or UNIMPLEMENTED. */
typedef struct srv_oneshot {
    srv_tag tag;
    grpc_call *call;
    grpc_byte_buffer *resp;
    char *msg;
    grpc_slice details;
    int cancelled;
} srv_oneshot;

struct srv_shard {
    xds_server *srv;
    int idx;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool thread_started;
    atomic_bool close_cq; /* xds_server_free asks the shard thread to shut cq down */
    bool cq_down;         /* cq is shut down: start nothing on it (its driver only) */

    pthread_mutex_t lock; /* the connection list and stream debug state */
    srv_conn *conns;
    size_t nconns;

    srv_accept acc_sotw, acc_delta, acc_generic;
    srv_accept acc_unary[SRV_MAX_UNARY];
    int accepts_out; /* outstanding accept requests */

    pthread_mutex_t mbox_lock; /* the mailbox below */
    bool mbox_has;
    mesh_snapshot *mbox_snap;
    bool mbox_full;
    uint32_t mbox_kinds;
    char **mbox_hosts;
    size_t mbox_nhosts;
    int64_t mbox_start_ns;
    atomic_bool mbox_flag;           /* cheap check without the lock */
    struct srv_review *reviews_done; /* token reviews answered, under mbox_lock */

    mesh_snapshot *snap;         /* latest snapshot this shard pushed (shard thread) */
    srv_conn *pq_head, *pq_tail; /* connections whose push waits for a slot */
    int64_t next_check_ns;       /* next look for stuck sends (shard thread) */
};

typedef struct srv_unary {
    char *method;
    xds_unary_fn fn;
    void *ud;
    void *handle;
} srv_unary;

struct xds_server {
    char *addr;
    char *domain;
    char *secure_addr; /* NULL: no TLS port */
    struct grpc_server_credentials *secure_creds;
    char *trust_domain;
    xds_token_review_fn review;
    void *review_ud;
    int secure_port;
    xds_snapshot_fn snapshot; /* the current snapshot, for a stream's first push */
    int64_t opts_age_ms, opts_grace_ms, opts_ka_time_ms, opts_ka_timeout_ms; /* 0 = off */
    void *snapshot_ud;
    int max_pushes;
    size_t outbox_max_bytes; /* per stream, PILOT_XDS_OUTBOX_MAX_BYTES or the default */
    int64_t send_timeout_ns; /* PILOT_XDS_SEND_TIMEOUT or SRV_SEND_TIMEOUT_NS */
    int64_t slot_hold_ns;    /* min(SRV_SLOT_HOLD_NS, send_timeout_ns) */
    int port;
    grpc_server *server;
    void *m_sotw, *m_delta;
    srv_unary unary[SRV_MAX_UNARY];
    int nunary;
    srv_shard shards[XDS_SHARDS];
    xds_gen *gen;
    xds_stream_env env;
    atomic_int inflight;       /* connections being written a push, all shards */
    atomic_int unary_workers;  /* unary calls running on their own threads */
    atomic_int review_workers; /* token reviews running on their own threads */
    atomic_bool stopping;
    atomic_bool shutdown_done;
    atomic_uint_fast64_t conn_seq;
    srv_tag shutdown_tag;
    bool started;
};
/* server.c */
void srv_conn_start_batch(srv_conn *c, const grpc_op *ops, size_t n, srv_tag *tag);

/* auth.c: the identity of a stream on the secure port (client certificate or bearer
 * token), checked against the node it then sends. */
#define SRV_MAX_REVIEWS 64 /* token reviews in flight at once, all shards */
typedef struct srv_review {
    uint64_t conn_seq; /* the stream asking (it may be gone by the answer) */
    bool ok;
    char *ns, *sa;
    char why[400];
    struct srv_review *next;
} srv_review;
bool srv_call_secure(grpc_call *call);
/* The token of "authorization: Bearer <t>" (heap string), or NULL. */
char *srv_md_bearer(const grpc_metadata_array *md);
/* 1: authenticated by its client certificate; 0: refused (why says why); 2: a bearer token
 * review was started on a worker thread, whose answer srv_reviews_apply takes. */
int srv_conn_authenticate(srv_conn *c, const grpc_metadata_array *md, char *why, size_t whylen);
/* On the shard thread: applies the answered reviews to their streams (resume finishes a
 * stream on failure, else processes its held request). */
void srv_reviews_apply(srv_shard *sh, void (*resume)(srv_conn *c, const srv_review *r));
void srv_conn_add_id(srv_conn *c, char *ns, char *sa);
bool srv_conn_identity_ok(srv_conn *c, const void *req, char *why, size_t whylen);

/* debug_ads.c: a request whose type is one of istiod's debug types (xds_debug_type), on
 * the shard thread without the shard lock (the answer visits every shard): identifies the
 * proxy, queues the answer on the stream. Returns 0, or -1 with c->st.close_code/close_msg
 * set when the stream must end (a bad node, a debug request the caller may not make). */
int srv_debug_request(srv_conn *c, const void *req, mesh_snapshot *snap);

/* unary.c */
void srv_oneshot_start(srv_shard *sh, grpc_call *call, int code, const char *msg,
                       grpc_byte_buffer *resp);
void srv_oneshot_done(srv_oneshot *o);
void srv_unary_handle(srv_shard *sh, srv_accept *a);

#endif
