/* stream: the per-stream ADS protocol state machines (SotW and Delta), sans I/O.
 *
 * A stream takes decoded requests and push notifications and produces encoded responses
 * (xds_msg) in its bounded outbox; the gRPC layer (server.c) moves the outbox onto the
 * wire one message at a time. Nothing here touches gRPC, so the state machines are unit
 * tested directly (tests/xds/ads/test_stream.c).
 *
 * Threads: a stream is owned by one xds thread (the one driving its completion queue);
 * the debug fields (nonces, versions, errors, watches) are written under that thread's
 * shard lock, which the debug handlers take to read them.
 */
#ifndef XDS_ADS_STREAM_INTERNAL_H
#define XDS_ADS_STREAM_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xds/gen/gen.h"

/* Type indexes in push order: CDS, EDS, LDS, RDS, SDS. */
enum { XT_CDS = 0, XT_EDS, XT_LDS, XT_RDS, XT_SDS, XT_COUNT };

const char *xds_type_url(int t);
const char *xds_type_short(int t);        /* "cds", "eds", ... (metric labels) */
int xds_type_index(const char *type_url); /* -1 when not one we serve */

/* A response body encoded once and shared by every stream that sends the same set
 * (xds_body_cache below): refcounted, immutable. */
typedef struct xds_body {
    atomic_long refs;
    size_t len;
    uint8_t bytes[];
} xds_body;

void xds_body_retain(xds_body *b);
void xds_body_release(xds_body *b);

/* One encoded DiscoveryResponse or DeltaDiscoveryResponse. The bytes are the
 * concatenation of segments; a segment lies in buf, or is a whole xds_resource's bytes, or
 * a whole shared body (either held by a reference), so resource bytes are never copied
 * per proxy. */
typedef struct xds_seg {
    size_t off, len;   /* in buf when res and body are NULL */
    xds_resource *res; /* retained */
    xds_body *body;    /* retained */
} xds_seg;

typedef struct xds_msg {
    struct xds_msg *next;
    int type; /* XT_* */
    uint8_t *buf;
    size_t len, cap;
    xds_seg *segs;
    size_t nsegs, capsegs;
    size_t total;   /* wire size */
    int64_t enq_ns; /* monotonic, when queued (pilot_xds_send_time) */
} xds_msg;

void xds_msg_free(xds_msg *m);
/* Copies the message into one contiguous buffer (tests, small messages). */
uint8_t *xds_msg_flatten(const xds_msg *m, size_t *len);

/* What the client has of one resource: the last version sent (or, in Delta, announced by
 * the client in initial_resource_versions, res NULL then). Sorted by name. The name is the
 * resource's own (res->name, borrowed: res is retained) unless own_name says it is a copy
 * (initial_resource_versions entries): a copy per stream per resource was a fifth of a
 * sidecar's server memory. */
typedef struct xds_known {
    const char *name;
    uint64_t hash;
    bool hash_valid;
    bool own_name;
    xds_resource *res; /* retained, NULL for initial_resource_versions entries */
} xds_known;

typedef struct xds_type_state {
    bool watched; /* the client asked for this type on this stream */
    bool wildcard;
    char **names; /* subscribed names, sorted, unique */
    size_t nnames;
    /* Non-NULL: names is this interned list's array, shared with every stream subscribed
     * to the same names (read-only; a Delta change takes a private copy first). */
    struct xds_names *names_shared;
    xds_known *known;
    size_t nknown;
    bool force;           /* answer on the next generation even if nothing changed */
    uint64_t sent_set_id; /* xds_resource_set.id of the last set answered, 0 = none */
    char nonce_sent[48];
    char version_sent[48];
    int64_t sent_wall_ns;
    char nonce_acked[48];
    char version_acked[48];
    char *last_error;      /* last NACK's message, NULL when the last answer was an ACK */
    int64_t push_start_ns; /* start of the push the last response carried, 0 = none */
    uint64_t responses;
} xds_type_state;

/* Encoded response bodies shared between streams ("one encoding per set"). A response
 * that carries a whole set (SotW LDS/CDS, and RDS/EDS when not partial; Delta when every
 * resource of the set is sent and nothing is removed) is the same bytes for every stream
 * that has that set, but for the nonce: protobuf fields may come in any order, so the body
 * (version, resources, type URL) is encoded once and the nonce appended per stream, and a
 * send is one refcounted slice plus a few bytes instead of a slice per resource. Keyed by
 * (SotW/Delta, type, snapshot version, the resource pointers: equal pointers are equal
 * bytes, the generators' cache shares them); a hit compares them all, not just a hash.
 * A set is encoded on its second sighting only, so a set one stream alone has (a sidecar's
 * own CDS) costs no flat copy. An LRU bounded in bytes and entries; thread-safe (one
 * mutex, a leaf lock held only for lookups and inserts). */
typedef struct xds_body_cache xds_body_cache;
xds_body_cache *xds_body_cache_new(size_t max_bytes);
void xds_body_cache_free(xds_body_cache *c);
typedef struct xds_body_stats {
    uint64_t hits, builds, first_seen; /* shared, encoded, seen once (not encoded) */
    size_t entries, bytes;             /* now */
} xds_body_stats;
void xds_body_cache_stats(xds_body_cache *c, xds_body_stats *out);

/* Hooks from the stream into the process: metrics and the convergence clock. */
typedef struct xds_stream_env {
    xds_gen *gen;
    const char *domain;
    xds_body_cache *bodies; /* NULL: every response encoded per stream */
} xds_stream_env;

typedef struct xds_stream {
    bool delta;
    xds_proxy *proxy;  /* NULL until the first request */
    char conn_id[160]; /* "<pod>.<ns>-<n>" once the proxy is known */
    uint64_t seq;      /* connection counter, unique per process */
    char peer[96];
    int64_t connected_wall_ns;
    xds_type_state t[XT_COUNT];

    xds_msg *outq_head, *outq_tail;
    size_t outq_len;
    size_t outq_bytes;     /* wire bytes of the messages in the outbox */
    size_t inflight_bytes; /* set by the I/O layer: the message being written, 0 = none */
    size_t outq_max_bytes; /* the byte cap below for this stream; 0 = XDS_OUTQ_MAX_BYTES */

    /* Set when the stream must end: a gRPC status code and message. */
    int close_code;
    char close_msg[512];
    /* Set with close_code when a limit ended the stream: the reason label of
     * pilot_xds_limit_closes ("outbox"). The I/O layer then cancels the call at once
     * instead of writing what is queued first: the client is not reading it. */
    const char *close_reason;
} xds_stream;

/* The most responses queued per stream. Pushes wait for an empty outbox (server.c), SotW
 * replaces a queued response of the same type, so only a client that keeps asking without
 * reading reaches it. */
#define XDS_OUTQ_MAX 64
/* The most response bytes queued but not yet written per stream (the outbox plus the
 * message being written; PILOT_XDS_OUTBOX_MAX_BYTES overrides, server.c). One message on
 * its own is always allowed, whatever its size (it is what the mesh needs); a backlog
 * past the cap ends the stream with RESOURCE_EXHAUSTED, so a client that asks without
 * reading cannot grow the server's memory without bound. */
#define XDS_OUTQ_MAX_BYTES ((size_t)64 << 20)

void xds_stream_init(xds_stream *st, bool delta, uint64_t seq, const char *peer);
void xds_stream_cleanup(xds_stream *st);

/* Handle one decoded request (Envoy__Service__Discovery__V3__DiscoveryRequest* or
 * Delta...Request*, per st->delta). snap may be NULL before the first snapshot: the
 * subscription is recorded and the answer waits for the first push. Returns 0, or -1
 * with st->close_code/close_msg set when the stream must end (bad node). */
int xds_stream_on_request(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap,
                          const void *req);

/* A push: full (every watched type) or EDS-only for the given endpoint hostnames.
 * Types whose generated set did not change are skipped unless an answer is owed.
 * Returns the number of responses queued. */
int xds_stream_push(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap, bool full,
                    char *const *hosts, size_t nhosts, int64_t start_ns);
/* The same, told which mesh kinds changed (mesh_push_request.kinds_changed, merged over
 * the pushes this one stands for): a full push skips, per type, what xds_type_kinds says
 * those kinds cannot alter for this proxy. xds_stream_push is this with every kind. */
int xds_stream_push_kinds(xds_stream *st, const xds_stream_env *env, mesh_snapshot *snap, bool full,
                          uint32_t kinds, char *const *hosts, size_t nhosts, int64_t start_ns);

/* Identifies the proxy from the stream's first node (a no-op once known), as a request of
 * a served type does first. Returns 0, or -1 with st->close_code/close_msg set. */
int xds_stream_identify(xds_stream *st, const xds_stream_env *env, const void *node);
/* Queues m (taken) in the outbox as a response of no served type (m->type -1: never
 * replaced); the outbox limits apply as to any response. */
void xds_stream_queue(xds_stream *st, xds_msg *m);

/* Takes the next message to write (caller frees), or NULL. */
xds_msg *xds_stream_pop(xds_stream *st);

/* Metric handles, created once per process by xds_metrics_init (server.c calls it). */
struct metric;
typedef struct xds_metrics {
    struct metric *xds;             /* pilot_xds{version} gauge */
    struct metric *pushes;          /* pilot_xds_pushes{type} */
    struct metric *rejects;         /* pilot_total_xds_rejects{type} */
    struct metric *expired_nonce;   /* pilot_xds_expired_nonce{type} */
    struct metric *push_time;       /* pilot_xds_push_time{type} */
    struct metric *convergence;     /* pilot_proxy_convergence_time */
    struct metric *send_time;       /* pilot_xds_send_time */
    struct metric *internal_errors; /* pilot_total_xds_internal_errors */
    struct metric *limit_closes;    /* pilot_xds_limit_closes{reason} */
    struct metric *config_size;     /* pilot_xds_config_size_bytes{type} */
    struct metric *queue_time;      /* pilot_proxy_queue_time */
} xds_metrics;

extern xds_metrics xds_m;
void xds_metrics_init(void);

/* ---- between server.c and debug_xds.c ---- */
struct xds_server;
typedef void (*xds_stream_visit_fn)(void *ud, const xds_stream *st);
/* Calls fn for every stream whose proxy is known, each shard's lock held during its
 * streams: fn must be quick and must not call back into the server. */
void xds_server_visit(struct xds_server *s, xds_stream_visit_fn fn, void *ud);
size_t xds_server_connections(struct xds_server *s);
/* debug_ads.c: is type_url one of istiod's debug types ("istio.io/debug", "istio.io/debug/...")?
 * Those never start a watch; the server answers them apart (srv_debug_request). */
bool xds_debug_type(const char *type_url);
/* Registers /debug/syncz, /debug/adsz, /debug/connections and /debug/config_dump. */
void xds_debug_register(struct xds_server *s);
/* Takes them off the debug table again, waiting for running calls (xds_server_free). */
void xds_debug_unregister(struct xds_server *s);

#endif
