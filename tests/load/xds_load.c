/* xds_load: N simulated ADS clients on gRPC's C core client API.
 *
 * Two flavours, each over SotW or (--delta) Delta; several streams share a channel,
 * channels are spread over several completion queues, one thread each:
 * - grpc (default): proxyless gRPC clients. Each subscribes by name to LDS, RDS, CDS and
 *   EDS for K services (gRPC naming: listener "host:port", route/cluster/EDS
 *   "outbound|port||host") and ACKs every response.
 * - envoy: Envoy sidecars. Each sends a sidecar node as istio-agent does (id
 *   "sidecar~IP~pod.ns~ns.svc.cluster.local", metadata ISTIO_VERSION, LABELS, NAMESPACE,
 *   INSTANCE_IPS, ...), then follows Envoy's warming order: wildcard CDS; EDS for the
 *   clusters of type EDS that CDS returned; once EDS arrived, wildcard LDS; RDS for the
 *   route names the listeners' HttpConnectionManagers name. Every response is ACKed; a
 *   change in the clusters or route names re-subscribes EDS or RDS (Delta: subscribe and
 *   unsubscribe the difference). Sidecar i is a distinct pod of the generated mesh:
 *   endpoint (i / K) of service (i % K) (run_load.py gives every service two endpoints,
 *   10.98.a.b and 10.99.a.b), so each has its own IP, labels and inbound port as real pods
 *   do; past 2K sidecars the IPs repeat. --pods P makes sidecar i pod i % P instead (P = 1:
 *   every sidecar is the same pod, so the generators' per-IP classes are all one: the
 *   ceiling of what sharing between pods could give).
 * Responses are scanned, not decoded: top-level version, type and nonce; for Envoy CDS a
 * cluster's name and type; for LDS the listener's filter chains down to the HCM's RDS
 * route name. A response that cannot be scanned is NACKed (and counted): a healthy run
 * reports "nacks 0".
 *
 * Phases: (1) connect all, wait until every client is served: it has a response of every
 * type it asks for (Envoy: RDS and EDS only when LDS/CDS named some) and ACKed each; (2)
 * with --vs FILE --vs-alt FILE, copy the alternative VirtualService over FILE and wait
 * until every client received a new RDS response: the time from the edit to the last one
 * is the convergence time. With --pid, reports the server's CPU seconds and RSS growth
 * per client from /proc. Before phase 2 the loopback bandwidth is measured (a TCP
 * transfer over 127.0.0.1, --loopback-mb MiB, best of three) and the bytes the clients
 * received in each phase divided by it are printed as that phase's byte floor: the
 * least time moving those bytes could take on this machine.
 *
 * The last line is a JSON summary ("result: {...}") that tests/bench/run.sh tabulates.
 *
 * Usage: xds_load --target 127.0.0.1:15010 --clients N --services K --ns NS --port P
 *                 [--flavour grpc|envoy] [--delta] [--streams-per-channel 10] [--cqs 2]
 *                 [--pid PID] [--vs F --vs-alt F2] [--timeout SECONDS] [--loopback-mb 256]
 *                 [--linger SECONDS]   (stay connected after the result line) [--pods P]
 * Exit 0 when every phase converged within the timeout with no NACK, 1 otherwise.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include "pilot/base/util.h"

#define SOTW "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define DELTA "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define HCM_TYPE                                                                                   \
    "type.googleapis.com/"                                                                         \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
enum { T_LDS, T_RDS, T_CDS, T_EDS, T_N };
static const char *type_urls[T_N] = {
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
};
/* The order an Envoy acts on due requests: clusters before endpoints before listeners. */
static const int envoy_order[T_N] = {T_CDS, T_EDS, T_LDS, T_RDS};

/* ---- interned names and shared name lists ----------------------------------------------- */

/* Every resource name the clients see is interned once (thousands of clients name the
 * same clusters), so per-client lists are arrays of pointers. */
static struct {
    pthread_mutex_t mu;
    char **slot;
    size_t cap, n;
} I = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *intern(const uint8_t *p, size_t len)
{
    uint64_t h = util_hash64(p, len, 7);
    pthread_mutex_lock(&I.mu);
    if (2 * (I.n + 1) > I.cap) {
        size_t cap = I.cap ? I.cap * 2 : 4096;
        char **slot = xcalloc(cap, sizeof(*slot));
        for (size_t i = 0; i < I.cap; i++) {
            if (I.slot[i] == NULL)
                continue;
            size_t j = util_hash64(I.slot[i], strlen(I.slot[i]), 7) & (cap - 1);
            while (slot[j] != NULL)
                j = (j + 1) & (cap - 1);
            slot[j] = I.slot[i];
        }
        free(I.slot);
        I.slot = slot;
        I.cap = cap;
    }
    size_t j = h & (I.cap - 1);
    while (I.slot[j] != NULL &&
           (strncmp(I.slot[j], (const char *)p, len) != 0 || I.slot[j][len] != '\0'))
        j = (j + 1) & (I.cap - 1);
    if (I.slot[j] == NULL) {
        I.slot[j] = xstrndup((const char *)p, len);
        I.n++;
    }
    const char *s = I.slot[j];
    pthread_mutex_unlock(&I.mu);
    return s;
}

/* An immutable, refcounted, sorted list of names (a subscription). */
typedef struct nlist {
    atomic_int refs;
    size_t n;
    const char *v[];
} nlist;

static nlist *nlist_new(size_t n)
{
    nlist *l = xmalloc(sizeof(*l) + (n ? n : 1) * sizeof(char *));
    atomic_init(&l->refs, 1);
    l->n = n;
    return l;
}

static nlist *nlist_ref(nlist *l)
{
    if (l != NULL)
        atomic_fetch_add(&l->refs, 1);
    return l;
}

static void nlist_unref(nlist *l)
{
    if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1)
        free(l);
}

static size_t nlist_len(const nlist *l)
{
    return l ? l->n : 0;
}

static bool nlist_eq(const nlist *a, const nlist *b)
{
    if (a == b)
        return true;
    if (nlist_len(a) != nlist_len(b))
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/* Sorts and de-duplicates v[0..n) into a new list (v is reordered). */
static nlist *nlist_from(const char **v, size_t n)
{
    qsort(v, n, sizeof(*v), util_strp_cmp);
    nlist *l = nlist_new(n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(l->v[k - 1], v[i]) != 0)
            l->v[k++] = v[i];
    l->n = k;
    return l;
}

/* ---- clients ------------------------------------------------------------------------------ */

/* A CDS or LDS resource an Envoy client has: a cluster (eds: of type EDS) or a listener
 * (the route names its HttpConnectionManagers ask for over RDS). */
typedef struct kres {
    const char *name;
    bool eds;
    const char **routes;
    size_t nroutes;
} kres;

typedef struct tstate {
    nlist *want;     /* the names this type should be subscribed to; NULL: none (yet) */
    nlist *subd;     /* the names last requested */
    bool want_known; /* Envoy RDS/EDS: LDS/CDS said which names (possibly none) */
    bool requested;  /* a first request was sent */
    bool ack_due, sub_due, nack_due;
    char nonce[64], version[64];
    char nack_msg[128];
    kres *known; /* Envoy CDS and LDS: what the client holds, sorted by name */
    size_t nknown;
    atomic_int responses, acks, nacks;
} tstate;

typedef struct client client;
typedef struct {
    int kind;
    client *c;
} ltag; /* kind 0 recv, 1 send, 2 status */

struct client {
    int id;
    grpc_call *call;
    grpc_completion_queue *cq;
    ltag t_recv, t_send, t_status;
    grpc_byte_buffer *recv_buf, *send_buf;
    grpc_metadata_array trailing;
    grpc_status_code status;
    grpc_slice details;
    bool sending, dead;
    bool initial_md_sent, initial_md_received, node_sent;
    grpc_metadata_array initial_md;
    int sending_type; /* the type of the request being sent */
    bool sending_ack; /* it ACKs (or NACKs) a response */
    bool sending_nack;
    tstate t[T_N];
    atomic_int_fast64_t last_rds_ns;
    atomic_int_fast64_t served_ns; /* 0 until served (phase 1) */
};

enum { FL_GRPC, FL_ENVOY };

static struct {
    const char *target;
    int nclients, nservices, per_channel, ncqs, port, timeout_s, loopback_mb, linger_s;
    int pods; /* Envoy: sidecars are pods 0..pods-1 of the mesh over and over; 0 = distinct */
    int flavour;
    bool delta;
    const char *ns, *vs, *vs_alt;
    int pid;
    nlist *names[T_N]; /* gRPC flavour: the names every client subscribes to */
    client *clients;
    grpc_completion_queue **cqs;
    atomic_bool stop;
    atomic_uint_fast64_t rx_bytes; /* response bytes received, all clients */
    atomic_int nacks;
} L = {.target = "127.0.0.1:15010",
       .nclients = 10,
       .nservices = 10,
       .per_channel = 10,
       .ncqs = 2,
       .port = 80,
       .timeout_s = 120,
       .loopback_mb = 256,
       .ns = "load"};

/* ---- the node ------------------------------------------------------------------------------ */

/* A google.protobuf.Struct under construction: fields point into the arrays. */
#define MS_MAX 24
typedef struct mstruct {
    Google__Protobuf__Struct s;
    Google__Protobuf__Struct__FieldsEntry *ep[MS_MAX];
    Google__Protobuf__Struct__FieldsEntry e[MS_MAX];
    Google__Protobuf__Value v[MS_MAX];
} mstruct;

static void ms_init(mstruct *m)
{
    google__protobuf__struct__init(&m->s);
    m->s.fields = m->ep;
}

static Google__Protobuf__Value *ms_add(mstruct *m, const char *key)
{
    size_t i = m->s.n_fields++;
    google__protobuf__struct__fields_entry__init(&m->e[i]);
    google__protobuf__value__init(&m->v[i]);
    m->e[i].key = (char *)key;
    m->e[i].value = &m->v[i];
    m->ep[i] = &m->e[i];
    return &m->v[i];
}

static void ms_str(mstruct *m, const char *key, const char *val)
{
    Google__Protobuf__Value *v = ms_add(m, key);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)val;
}

static void ms_num(mstruct *m, const char *key, double val)
{
    Google__Protobuf__Value *v = ms_add(m, key);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    v->number_value = val;
}

static void ms_sub(mstruct *m, const char *key, mstruct *sub)
{
    Google__Protobuf__Value *v = ms_add(m, key);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    v->struct_value = &sub->s;
}

/* The strings of one client's node (they must outlive the packing). */
typedef struct nodebuf {
    char id[192], ip[32], pod[64], app[32], wname[48], ports[128], owner[160], status[320];
} nodebuf;

/* Sidecar i: the pod behind endpoint (i / K) % 2 of service i % K (run_load.py's mesh). */
static void envoy_node(const client *c, nodebuf *b, mstruct *md, mstruct *labels,
                       mstruct *annotations, mstruct *proxy_config)
{
    int pod = L.pods > 0 ? c->id % L.pods : c->id;
    int svc = pod % L.nservices, which = (pod / L.nservices) % 2;
    snprintf(b->ip, sizeof(b->ip), "10.%d.%d.%d", which ? 99 : 98, svc / 250, svc % 250 + 1);
    snprintf(b->app, sizeof(b->app), "svc-%d", svc);
    snprintf(b->wname, sizeof(b->wname), "svc-%d-v1", svc);
    snprintf(b->pod, sizeof(b->pod), "svc-%d-v1-5f7c9d8b6-%05d", svc, c->id);
    snprintf(b->id, sizeof(b->id), "sidecar~%s~%s.%s~%s.svc.cluster.local", b->ip, b->pod, L.ns,
             L.ns);
    snprintf(b->ports, sizeof(b->ports),
             "[{\"name\":\"grpc\",\"containerPort\":8080,\"protocol\":\"TCP\"}]");
    snprintf(b->owner, sizeof(b->owner), "kubernetes://apis/apps/v1/namespaces/%s/deployments/%s",
             L.ns, b->wname);
    snprintf(b->status, sizeof(b->status),
             "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],"
             "\"volumes\":[\"workload-socket\",\"credential-socket\",\"workload-certs\","
             "\"istio-envoy\",\"istio-data\",\"istio-podinfo\",\"istio-token\","
             "\"istiod-ca-cert\"],\"imagePullSecrets\":null,\"revision\":\"default\"}");
    ms_init(labels);
    ms_str(labels, "app", b->app);
    ms_str(labels, "version", "v1");
    ms_str(labels, "pod-template-hash", "5f7c9d8b6");
    ms_str(labels, "security.istio.io/tlsMode", "istio");
    ms_str(labels, "service.istio.io/canonical-name", b->app);
    ms_str(labels, "service.istio.io/canonical-revision", "v1");
    ms_init(annotations);
    ms_str(annotations, "kubectl.kubernetes.io/default-container", "app");
    ms_str(annotations, "kubectl.kubernetes.io/default-logs-container", "app");
    ms_str(annotations, "istio.io/rev", "default");
    ms_str(annotations, "sidecar.istio.io/status", b->status);
    ms_str(annotations, "kubernetes.io/config.source", "api");
    ms_init(proxy_config);
    ms_str(proxy_config, "binaryPath", "/usr/local/bin/envoy");
    ms_str(proxy_config, "configPath", "./etc/istio/proxy");
    ms_str(proxy_config, "controlPlaneAuthPolicy", "MUTUAL_TLS");
    ms_str(proxy_config, "discoveryAddress", "istiod.istio-system.svc:15012");
    ms_str(proxy_config, "drainDuration", "45s");
    ms_num(proxy_config, "proxyAdminPort", 15000);
    ms_str(proxy_config, "serviceCluster", "istio-proxy");
    ms_num(proxy_config, "statNameLength", 189);
    ms_num(proxy_config, "statusPort", 15020);
    ms_init(md);
    ms_str(md, "ISTIO_VERSION", "1.24.6");
    ms_str(md, "NAMESPACE", L.ns);
    ms_sub(md, "LABELS", labels);
    ms_sub(md, "ANNOTATIONS", annotations);
    ms_sub(md, "PROXY_CONFIG", proxy_config);
    ms_str(md, "INSTANCE_IPS", b->ip);
    ms_str(md, "CLUSTER_ID", "Kubernetes");
    ms_str(md, "MESH_ID", "cluster.local");
    ms_str(md, "INTERCEPTION_MODE", "REDIRECT");
    ms_str(md, "NAME", b->pod);
    ms_str(md, "WORKLOAD_NAME", b->wname);
    ms_str(md, "OWNER", b->owner);
    ms_str(md, "SERVICE_ACCOUNT", "default");
    ms_str(md, "NODE_NAME", "node-1");
    ms_str(md, "POD_PORTS", b->ports);
    ms_str(md, "APP_CONTAINERS", "app");
    ms_str(md, "ENVOY_PROMETHEUS_PORT", "15090");
    ms_str(md, "ENVOY_STATUS_PORT", "15021");
    ms_str(md, "ISTIO_PROXY_SHA", "c9b3ad9f0e7b5f1b7c9d8e6f5a4b3c2d1e0f9a8b");
    ms_str(md, "PILOT_SAN", "istiod.istio-system.svc");
}

/* The proxyless node the gRPC flavour always sent (kept so its numbers stay comparable). */
static void grpc_node(const client *c, nodebuf *b, mstruct *md)
{
    snprintf(b->id, sizeof(b->id), "sidecar~10.%d.%d.%d~load-%d.%s~%s.svc.cluster.local",
             (c->id >> 16) & 255, (c->id >> 8) & 255, c->id & 255, c->id, L.ns, L.ns);
    ms_init(md);
    ms_str(md, "GENERATOR", "grpc");
}

/* ---- requests --------------------------------------------------------------------------- */

/* Names in a but not in b (both sorted): borrowed pointers in *out (caller frees). */
static size_t names_minus(const nlist *a, const nlist *b, char ***out)
{
    size_t na = nlist_len(a), nb = nlist_len(b), i = 0, j = 0, k = 0;
    *out = xcalloc(na ? na : 1, sizeof(char *));
    while (i < na) {
        int cmp = j == nb ? -1 : strcmp(a->v[i], b->v[j]);
        if (cmp < 0)
            (*out)[k++] = (char *)a->v[i++];
        else if (cmp > 0)
            j++;
        else
            i++, j++;
    }
    return k;
}

static grpc_byte_buffer *pack_request(client *c, int t)
{
    tstate *ts = &c->t[t];
    Envoy__Config__Core__V3__Node node;
    Envoy__Config__Core__V3__Locality loc;
    mstruct md, labels, annotations, proxy_config;
    nodebuf nb;
    Google__Rpc__Status err;
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest dreq;
    char **sub = NULL, **unsub = NULL;
    bool with_node = !c->node_sent;
    if (with_node) {
        envoy__config__core__v3__node__init(&node);
        envoy__config__core__v3__locality__init(&loc);
        if (L.flavour == FL_ENVOY)
            envoy_node(c, &nb, &md, &labels, &annotations, &proxy_config);
        else
            grpc_node(c, &nb, &md);
        node.id = nb.id;
        node.cluster = L.flavour == FL_ENVOY ? "svc.load" : "";
        node.metadata = &md.s;
        loc.region = "r1";
        node.locality = &loc;
        c->node_sent = true;
    }
    google__rpc__status__init(&err);
    err.code = 3; /* INVALID_ARGUMENT */
    err.message = ts->nack_msg;
    ProtobufCMessage *msg;
    if (!L.delta) {
        envoy__service__discovery__v3__discovery_request__init(&req);
        req.type_url = (char *)type_urls[t];
        req.node = with_node ? &node : NULL;
        req.resource_names = ts->want ? (char **)ts->want->v : NULL;
        req.n_resource_names = nlist_len(ts->want);
        req.version_info = ts->version;
        req.response_nonce = ts->nonce;
        req.error_detail = ts->nack_due ? &err : NULL;
        msg = &req.base;
    } else {
        envoy__service__discovery__v3__delta_discovery_request__init(&dreq);
        dreq.type_url = (char *)type_urls[t];
        dreq.node = with_node ? &node : NULL;
        dreq.n_resource_names_subscribe = names_minus(ts->want, ts->subd, &sub);
        dreq.resource_names_subscribe = sub;
        dreq.n_resource_names_unsubscribe = names_minus(ts->subd, ts->want, &unsub);
        dreq.resource_names_unsubscribe = unsub;
        /* a NACK or an ACK carries the nonce; a subscription change alone need not */
        dreq.response_nonce = ts->ack_due || ts->nack_due ? ts->nonce : "";
        dreq.error_detail = ts->nack_due ? &err : NULL;
        msg = &dreq.base;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    free(sub);
    free(unsub);
    /* what the server now has as this type's subscription */
    if (ts->subd != ts->want) {
        nlist_unref(ts->subd);
        ts->subd = nlist_ref(ts->want);
    }
    return bb;
}

/* The next request this client owes, or -1. */
static int client_next(client *c)
{
    if (L.flavour == FL_GRPC) {
        for (int t = 0; t < T_N; t++)
            if (!c->t[t].requested || c->t[t].ack_due || c->t[t].sub_due || c->t[t].nack_due)
                return t;
        return -1;
    }
    if (!c->t[T_CDS].requested)
        return T_CDS;
    for (int i = 0; i < T_N; i++) {
        tstate *ts = &c->t[envoy_order[i]];
        if (ts->ack_due || ts->sub_due || ts->nack_due)
            return envoy_order[i];
    }
    /* listeners once the clusters are warm: EDS answered, or CDS named no EDS cluster */
    const tstate *eds = &c->t[T_EDS];
    if (!c->t[T_LDS].requested && eds->want_known &&
        (nlist_len(eds->want) == 0 || atomic_load(&eds->responses) > 0))
        return T_LDS;
    return -1;
}

static void client_pump(client *c)
{
    if (c->sending || c->dead)
        return;
    int t = client_next(c);
    if (t < 0)
        return;
    tstate *ts = &c->t[t];
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->initial_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->initial_md_sent = true;
    }
    c->send_buf = pack_request(c, t);
    c->sending_type = t;
    c->sending_ack = ts->ack_due && !ts->nack_due;
    c->sending_nack = ts->nack_due;
    ts->requested = true;
    ts->ack_due = ts->sub_due = ts->nack_due = false;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->send_buf;
    n++;
    c->sending = true;
    grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL);
}

static void client_post_recv(client *c)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->initial_md_received) {
        /* the first receive takes the server's initial metadata too */
        c->initial_md_received = true;
        grpc_metadata_array_init(&c->initial_md);
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
        n++;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &c->recv_buf;
    n++;
    grpc_call_start_batch(c->call, ops, n, &c->t_recv, NULL);
}

/* Served: every type the client asks for answered and ACKed (Envoy RDS/EDS only when the
 * listeners/clusters named some). */
static void client_check_served(client *c)
{
    if (atomic_load(&c->served_ns) != 0)
        return;
    for (int t = 0; t < T_N; t++) {
        const tstate *ts = &c->t[t];
        if (L.flavour == FL_ENVOY && (t == T_RDS || t == T_EDS)) {
            if (!ts->want_known)
                return;
            if (nlist_len(ts->want) == 0)
                continue;
        }
        if (atomic_load(&ts->responses) == 0 || atomic_load(&ts->acks) == 0)
            return;
    }
    atomic_store(&c->served_ns, util_now_ns());
}

/* ---- responses: a protobuf wire scanner --------------------------------------------------- */

typedef struct pbr {
    const uint8_t *p, *end;
} pbr;

static int scan_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int sh = 0; *p < end && sh < 64; sh += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* The next field: 1 with its number, and either its varint (*v) or its bytes (*data,
 * *len) for length-delimited ones; 0 at the end; -1 when malformed. */
static int pb_next(pbr *r, uint32_t *field, uint64_t *v, const uint8_t **data, size_t *len)
{
    uint64_t tag, l;
    if (r->p >= r->end)
        return 0;
    if (scan_varint(&r->p, r->end, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *data = NULL;
    *len = 0;
    *v = 0;
    switch (tag & 7) {
    case 0:
        return scan_varint(&r->p, r->end, v) == 0 ? 1 : -1;
    case 1:
    case 5: {
        size_t w = (tag & 7) == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < w)
            return -1;
        r->p += w;
        return 1;
    }
    case 2:
        if (scan_varint(&r->p, r->end, &l) != 0 || l > (uint64_t)(r->end - r->p))
            return -1;
        *data = r->p;
        *len = (size_t)l;
        r->p += l;
        return 1;
    default:
        return -1;
    }
}

/* The bytes of length-delimited field `want` (the last one) of a message; 0 found, 1
 * absent, -1 malformed. */
static int pb_get(const uint8_t *p, size_t n, uint32_t want, const uint8_t **data, size_t *len)
{
    pbr r = {p, p + n};
    uint32_t f;
    uint64_t v;
    const uint8_t *d;
    size_t l;
    int rc, found = 1;
    while ((rc = pb_next(&r, &f, &v, &d, &l)) == 1)
        if (f == want && d != NULL) {
            *data = d;
            *len = l;
            found = 0;
        }
    return rc < 0 ? -1 : found;
}

/* Route names of one HttpConnectionManager typed_config (an Any): Rds (3) → route_config_name
 * (2). Appended to *v (grown as needed). */
static int hcm_routes(const uint8_t *any, size_t n, const char ***v, size_t *nv, size_t *cap)
{
    const uint8_t *tu, *val, *rds, *name;
    size_t ltu, lval, lrds, lname;
    if (pb_get(any, n, 1, &tu, &ltu) != 0 || ltu != strlen(HCM_TYPE) ||
        memcmp(tu, HCM_TYPE, ltu) != 0)
        return 0; /* not an HCM (tcp_proxy, ...) */
    if (pb_get(any, n, 2, &val, &lval) < 0)
        return -1;
    int rc = pb_get(val, lval, 3, &rds, &lrds);
    if (rc != 0)
        return rc < 0 ? -1 : 0; /* inline route_config: nothing to ask for */
    if (pb_get(rds, lrds, 2, &name, &lname) != 0)
        return -1;
    if (*nv == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = xrealloc(*v, *cap * sizeof(char *));
    }
    (*v)[(*nv)++] = intern(name, lname);
    return 0;
}

/* Listener: name (1), filter_chains (3) and default_filter_chain (25) → filters (3) →
 * typed_config (4). */
static int scan_listener(const uint8_t *p, size_t n, kres *out)
{
    pbr r = {p, p + n};
    uint32_t f;
    uint64_t v;
    const uint8_t *d;
    size_t l, cap = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    while ((rc = pb_next(&r, &f, &v, &d, &l)) == 1) {
        if (f == 1 && d != NULL)
            out->name = intern(d, l);
        if ((f != 3 && f != 25) || d == NULL)
            continue;
        pbr fc = {d, d + l};
        uint32_t f2;
        const uint8_t *d2;
        size_t l2;
        int rc2;
        while ((rc2 = pb_next(&fc, &f2, &v, &d2, &l2)) == 1) {
            const uint8_t *tc;
            size_t ltc;
            if (f2 != 3 || d2 == NULL)
                continue;
            int g = pb_get(d2, l2, 4, &tc, &ltc);
            if (g < 0 || (g == 0 && hcm_routes(tc, ltc, &out->routes, &out->nroutes, &cap) < 0))
                return -1;
        }
        if (rc2 < 0)
            return -1;
    }
    return rc < 0 || out->name == NULL ? -1 : 0;
}

/* Cluster: name (1), type (2; EDS = 3). */
static int scan_cluster(const uint8_t *p, size_t n, kres *out)
{
    pbr r = {p, p + n};
    uint32_t f;
    uint64_t v;
    const uint8_t *d;
    size_t l;
    int rc;
    memset(out, 0, sizeof(*out));
    while ((rc = pb_next(&r, &f, &v, &d, &l)) == 1) {
        if (f == 1 && d != NULL)
            out->name = intern(d, l);
        else if (f == 2 && d == NULL)
            out->eds = v == 3;
    }
    return rc < 0 || out->name == NULL ? -1 : 0;
}

static int kres_cmp(const void *a, const void *b)
{
    return strcmp(((const kres *)a)->name, ((const kres *)b)->name);
}

static void kres_free(kres *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].routes);
    free(v);
}

/* Applies a CDS or LDS response to ts->known: SotW replaces it, Delta merges the
 * resources in (newer wins) and drops the removed names. */
static void known_apply(tstate *ts, kres *add, size_t nadd, const char **removed, size_t nrem)
{
    if (nadd > 1) /* add and removed may be NULL when empty: qsort wants a pointer */
        qsort(add, nadd, sizeof(*add), kres_cmp);
    if (!L.delta) {
        kres_free(ts->known, ts->nknown);
        ts->known = add;
        ts->nknown = nadd;
        return;
    }
    if (nrem > 1)
        qsort(removed, nrem, sizeof(*removed), util_strp_cmp);
    kres *out = xcalloc(ts->nknown + nadd + 1, sizeof(*out));
    size_t i = 0, j = 0, k = 0;
    while (i < ts->nknown || j < nadd) {
        int c = i == ts->nknown ? 1 : j == nadd ? -1 : strcmp(ts->known[i].name, add[j].name);
        if (c < 0) {
            const char *nm = ts->known[i].name;
            if (nrem > 0 && bsearch(&nm, removed, nrem, sizeof(*removed), util_strp_cmp))
                free(ts->known[i].routes);
            else
                out[k++] = ts->known[i];
            i++;
            continue;
        }
        if (c == 0)
            free(ts->known[i++].routes);
        out[k++] = add[j++];
    }
    free(ts->known);
    free(add);
    ts->known = out;
    ts->nknown = k;
}

/* After CDS or LDS: the EDS or RDS names the client wants now; re-subscribes on a change. */
static void derive_want(client *c, int from)
{
    tstate *src = &c->t[from], *dst = &c->t[from == T_CDS ? T_EDS : T_RDS];
    size_t n = 0, cap = 16;
    const char **v = xmalloc(cap * sizeof(char *));
    for (size_t i = 0; i < src->nknown; i++) {
        const kres *k = &src->known[i];
        size_t add = from == T_CDS ? (k->eds ? 1 : 0) : k->nroutes;
        if (n + add > cap) {
            while (n + add > cap)
                cap *= 2;
            v = xrealloc(v, cap * sizeof(char *));
        }
        if (from == T_CDS && k->eds)
            v[n++] = k->name;
        for (size_t r = 0; from == T_LDS && r < k->nroutes; r++)
            v[n++] = k->routes[r];
    }
    nlist *want = nlist_from(v, n);
    free(v);
    dst->want_known = true;
    if (nlist_eq(want, dst->want)) {
        nlist_unref(want);
        return;
    }
    nlist_unref(dst->want);
    dst->want = want;
    if (!nlist_eq(want, dst->subd) || !dst->requested)
        dst->sub_due = nlist_len(want) > 0 || dst->requested;
}

static void set_nack(tstate *ts, const char *why)
{
    snprintf(ts->nack_msg, sizeof(ts->nack_msg), "xds_load: %s", why);
    ts->nack_due = true;
    atomic_fetch_add(&ts->nacks, 1);
    atomic_fetch_add(&L.nacks, 1);
}

/* One response. SotW: version (1), resources (2, Any), type (4), nonce (5). Delta:
 * system_version_info (1), resources (2, Resource: name 3, resource 2 = Any), type (4),
 * nonce (5), removed_resources (6). */
static void client_on_response(client *c, const uint8_t *p, size_t len)
{
    pbr r = {p, p + len};
    uint32_t f;
    uint64_t v;
    const uint8_t *d;
    size_t l;
    char ver[64] = "", type[128] = "", nonce[64] = "";
    const uint8_t **res = NULL;
    size_t *res_len = NULL, nres = 0, capres = 0;
    const char **removed = NULL;
    size_t nrem = 0, caprem = 0;
    int rc;
    atomic_fetch_add(&L.rx_bytes, len);
    while ((rc = pb_next(&r, &f, &v, &d, &l)) == 1) {
        if (d == NULL)
            continue;
        if (f == 2) {
            if (nres == capres) {
                capres = capres ? capres * 2 : 64;
                res = xrealloc(res, capres * sizeof(*res));
                res_len = xrealloc(res_len, capres * sizeof(*res_len));
            }
            res[nres] = d;
            res_len[nres++] = l;
        } else if (f == 6 && L.delta) {
            if (nrem == caprem) {
                caprem = caprem ? caprem * 2 : 16;
                removed = xrealloc(removed, caprem * sizeof(*removed));
            }
            removed[nrem++] = intern(d, l);
        } else if (f == 1 || f == 4 || f == 5) {
            char *dst = f == 1 ? ver : f == 4 ? type : nonce;
            size_t cap = f == 4 ? sizeof(type) : sizeof(ver);
            snprintf(dst, cap, "%.*s", (int)(l < cap ? l : cap - 1), (const char *)d);
        }
    }
    int t = -1;
    for (int i = 0; i < T_N; i++)
        if (strcmp(type, type_urls[i]) == 0)
            t = i;
    if (t < 0)
        goto out; /* not a type we asked for (or unreadable): nothing to ACK against */
    tstate *ts = &c->t[t];
    snprintf(ts->nonce, sizeof(ts->nonce), "%s", nonce);
    if (rc < 0) {
        set_nack(ts, "malformed response");
        goto counted;
    }
    if (L.flavour == FL_ENVOY && (t == T_CDS || t == T_LDS)) {
        kres *add = xcalloc(nres ? nres : 1, sizeof(*add));
        size_t nadd = 0;
        for (size_t i = 0; i < nres; i++) {
            const uint8_t *any = res[i], *val;
            size_t lany = res_len[i], lval;
            if (L.delta && pb_get(res[i], res_len[i], 2, &any, &lany) != 0)
                continue; /* a Delta Resource without a body: nothing to scan */
            if (pb_get(any, lany, 2, &val, &lval) < 0 ||
                (t == T_CDS ? scan_cluster(val, lval, &add[nadd])
                            : scan_listener(val, lval, &add[nadd])) != 0) {
                kres_free(add, nadd + 1);
                set_nack(ts, t == T_CDS ? "unreadable cluster" : "unreadable listener");
                goto counted;
            }
            nadd++;
        }
        known_apply(ts, add, nadd, removed, nrem);
        derive_want(c, t);
    }
    snprintf(ts->version, sizeof(ts->version), "%s", ver);
    ts->ack_due = true;
counted:
    if (t == T_RDS)
        atomic_store(&c->last_rds_ns, util_now_ns());
    atomic_fetch_add(&ts->responses, 1);
out:
    free(res);
    free(res_len);
    free(removed);
}

static void *cq_thread(void *arg)
{
    grpc_completion_queue *cq = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        ltag *tg = ev.tag;
        client *c = tg->c;
        if (tg->kind == 1) {
            grpc_byte_buffer_destroy(c->send_buf);
            c->send_buf = NULL;
            c->sending = false;
            if (!ev.success)
                c->dead = true;
            else if (c->sending_ack)
                atomic_fetch_add(&c->t[c->sending_type].acks, 1);
            client_check_served(c);
            client_pump(c);
        } else if (tg->kind == 0) {
            if (!ev.success || c->recv_buf == NULL) {
                c->dead = true;
                continue;
            }
            grpc_byte_buffer_reader rd;
            grpc_byte_buffer_reader_init(&rd, c->recv_buf);
            grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            grpc_byte_buffer_destroy(c->recv_buf);
            c->recv_buf = NULL;
            client_on_response(c, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
            grpc_slice_unref(s);
            client_post_recv(c);
            client_pump(c);
        } else {
            c->dead = true;
        }
    }
    return NULL;
}

/* ---- measuring ---------------------------------------------------------------------------- */

static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

typedef struct lb_arg {
    int port;
    size_t bytes;
} lb_arg;

static void *loopback_writer(void *arg)
{
    lb_arg *a = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static char buf[256 * 1024];
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        for (size_t sent = 0; sent < a->bytes;) {
            ssize_t n = write(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Bytes per second one TCP connection moves over 127.0.0.1 now, best of three; 0 on error. */
static double loopback_bps(size_t mb)
{
    double best = 0;
    for (int round = 0; round < 3 && mb > 0; round++) {
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t sl = sizeof(sa);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0 ||
            getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
            if (lfd >= 0)
                close(lfd);
            return 0;
        }
        lb_arg a = {ntohs(sa.sin_port), mb << 20};
        pthread_t th;
        int64_t t0 = util_now_ns();
        pthread_create(&th, NULL, loopback_writer, &a);
        int fd = accept(lfd, NULL, NULL);
        size_t got = 0;
        static char buf[256 * 1024];
        ssize_t n;
        while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
            got += (size_t)n;
        double s = (double)(util_now_ns() - t0) / 1e9;
        pthread_join(th, NULL);
        if (fd >= 0)
            close(fd);
        close(lfd);
        if (got == a.bytes && s > 0 && (double)got / s > best)
            best = (double)got / s;
    }
    return best;
}

static int wait_served(int64_t t0, double *secs)
{
    int64_t deadline = util_now_ns() + (int64_t)L.timeout_s * 1000000000LL;
    for (;;) {
        int done = 0, dead = 0;
        int64_t last = 0;
        for (int i = 0; i < L.nclients; i++) {
            client *c = &L.clients[i];
            int64_t s = atomic_load(&c->served_ns);
            dead += c->dead;
            done += s != 0;
            if (s > last)
                last = s;
        }
        if (done == L.nclients) {
            *secs = (double)(last - t0) / 1e9;
            printf("initial: all %d clients served (every type answered and ACKed) in %.3f s\n",
                   L.nclients, *secs);
            return 0;
        }
        if (util_now_ns() > deadline || dead == L.nclients) {
            int have[T_N] = {0};
            for (int i = 0; i < L.nclients; i++)
                for (int t = 0; t < T_N; t++)
                    have[t] += atomic_load(&L.clients[i].t[t].responses) > 0;
            printf("initial: only %d of %d clients served (%d streams dead) after %d s; with "
                   "LDS %d, RDS %d, CDS %d, EDS %d\n",
                   done, L.nclients, dead, L.timeout_s, have[T_LDS], have[T_RDS], have[T_CDS],
                   have[T_EDS]);
            return -1;
        }
        usleep(5000);
    }
}

static int copy_file(const char *from, const char *to)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.load-tmp", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    int rc = -1;
    if (in && out) {
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, out);
        rc = 0;
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return rc == 0 ? rename(tmp, to) : -1;
}

/* The gRPC flavour's subscriptions: the same K names per type for every client. */
static void grpc_names(void)
{
    for (int t = 0; t < T_N; t++) {
        const char **v = xcalloc((size_t)L.nservices, sizeof(char *));
        for (int i = 0; i < L.nservices; i++) {
            char *s = t == T_LDS
                          ? xasprintf("svc-%d.%s.svc.cluster.local:%d", i, L.ns, L.port)
                          : xasprintf("outbound|%d||svc-%d.%s.svc.cluster.local", L.port, i, L.ns);
            v[i] = intern((const uint8_t *)s, strlen(s));
            free(s);
        }
        L.names[t] = nlist_from(v, (size_t)L.nservices);
        free(v);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"target", 1, 0, 't'},
                                         {"clients", 1, 0, 'n'},
                                         {"services", 1, 0, 'k'},
                                         {"ns", 1, 0, 's'},
                                         {"port", 1, 0, 'p'},
                                         {"streams-per-channel", 1, 0, 'c'},
                                         {"cqs", 1, 0, 'q'},
                                         {"pid", 1, 0, 'P'},
                                         {"vs", 1, 0, 'v'},
                                         {"vs-alt", 1, 0, 'a'},
                                         {"timeout", 1, 0, 'T'},
                                         {"flavour", 1, 0, 'f'},
                                         {"delta", 0, 0, 'd'},
                                         {"loopback-mb", 1, 0, 'b'},
                                         {"linger", 1, 0, 'g'},
                                         {"pods", 1, 0, 'o'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            L.target = optarg;
            break;
        case 'n':
            L.nclients = atoi(optarg);
            break;
        case 'k':
            L.nservices = atoi(optarg);
            break;
        case 's':
            L.ns = optarg;
            break;
        case 'p':
            L.port = atoi(optarg);
            break;
        case 'c':
            L.per_channel = atoi(optarg);
            break;
        case 'q':
            L.ncqs = atoi(optarg);
            break;
        case 'P':
            L.pid = atoi(optarg);
            break;
        case 'v':
            L.vs = optarg;
            break;
        case 'a':
            L.vs_alt = optarg;
            break;
        case 'T':
            L.timeout_s = atoi(optarg);
            break;
        case 'f':
            if (strcmp(optarg, "grpc") == 0)
                L.flavour = FL_GRPC;
            else if (strcmp(optarg, "envoy") == 0)
                L.flavour = FL_ENVOY;
            else {
                fprintf(stderr, "--flavour: grpc or envoy, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'd':
            L.delta = true;
            break;
        case 'b':
            L.loopback_mb = atoi(optarg);
            break;
        case 'g':
            L.linger_s = atoi(optarg);
            break;
        case 'o':
            L.pods = atoi(optarg);
            break;
        default:
            fprintf(stderr, "see the comment at the top of xds_load.c\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (L.nclients <= 0 || L.nservices <= 0 || L.per_channel <= 0 || L.ncqs <= 0 ||
        L.loopback_mb < 0) {
        fprintf(stderr, "--clients, --services, --streams-per-channel and --cqs must be > 0\n");
        return 2;
    }
    if (L.flavour == FL_GRPC)
        grpc_names();

    grpc_init();
    L.cqs = xcalloc((size_t)L.ncqs, sizeof(*L.cqs));
    pthread_t *threads = xcalloc((size_t)L.ncqs, sizeof(pthread_t));
    for (int i = 0; i < L.ncqs; i++) {
        L.cqs[i] = grpc_completion_queue_create_for_next(NULL);
        pthread_create(&threads[i], NULL, cq_thread, L.cqs[i]);
    }
    int nch = (L.nclients + L.per_channel - 1) / L.per_channel;
    grpc_channel **chans = xcalloc((size_t)nch, sizeof(*chans));
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    for (int i = 0; i < nch; i++) {
        /* distinct channels: a channel arg makes each its own subchannel/connection; a
         * sidecar's CDS over 1000 services is larger than gRPC's 4 MiB default */
        grpc_arg a[2] = {{.type = GRPC_ARG_INTEGER, .key = "xds_load.channel", .value.integer = i},
                         {.type = GRPC_ARG_INTEGER,
                          .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                          .value.integer = -1}};
        grpc_channel_args ca = {2, a};
        chans[i] = grpc_channel_create(L.target, creds, &ca);
    }
    grpc_channel_credentials_release(creds);

    printf("flavour %s, %s, %d clients, %d services\n", L.flavour == FL_ENVOY ? "envoy" : "grpc",
           L.delta ? "delta" : "sotw", L.nclients, L.nservices);
    double cpu0 = L.pid ? proc_cpu_s(L.pid) : 0;
    long rss0 = L.pid ? proc_rss_kb(L.pid) : 0;
    int64_t t0 = util_now_ns();
    L.clients = xcalloc((size_t)L.nclients, sizeof(client));
    grpc_slice method = grpc_slice_from_static_string(L.delta ? DELTA : SOTW);
    for (int i = 0; i < L.nclients; i++) {
        client *c = &L.clients[i];
        c->id = i;
        c->cq = L.cqs[i % L.ncqs];
        c->t_recv = (ltag){0, c};
        c->t_send = (ltag){1, c};
        c->t_status = (ltag){2, c};
        if (L.flavour == FL_GRPC)
            for (int t = 0; t < T_N; t++)
                c->t[t].want = nlist_ref(L.names[t]);
        c->call =
            grpc_channel_create_call(chans[i / L.per_channel], NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                     method, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_metadata_array_init(&c->trailing);
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        op.data.recv_status_on_client.trailing_metadata = &c->trailing;
        op.data.recv_status_on_client.status = &c->status;
        op.data.recv_status_on_client.status_details = &c->details;
        grpc_call_start_batch(c->call, &op, 1, &c->t_status, NULL);
    }
    /* the pump runs on the cq threads afterwards; start each client's first send here,
     * before any completion for it can arrive on its thread */
    for (int i = 0; i < L.nclients; i++) {
        client_post_recv(&L.clients[i]);
        client_pump(&L.clients[i]);
    }
    double served_s = -1, init_cpu = -1, rss_per = -1, edit_s = -1, edit_cpu = -1, bps = 0;
    double spread_s = -1, rss_settled = -1;
    long rss1 = -1;
    uint64_t init_bytes = 0, edit_bytes = 0;
    int rc = wait_served(t0, &served_s);
    int64_t served_at = util_now_ns();
    if (rc == 0) {
        usleep(500000);
        init_bytes = atomic_load(&L.rx_bytes);
        if (L.pid) {
            rss1 = proc_rss_kb(L.pid);
            init_cpu = proc_cpu_s(L.pid) - cpu0;
            rss_per = (double)(rss1 - rss0) / L.nclients;
            printf("server: %.2f CPU s for the initial push (%.0f us per client), RSS %ld -> "
                   "%ld MiB (%.1f KiB per client)\n",
                   init_cpu, init_cpu * 1e6 / L.nclients, rss0 / 1024, rss1 / 1024, rss_per);
        }
        bps = loopback_bps((size_t)L.loopback_mb);
        if (L.pid) {
            /* again once the burst is over (the server gives freed heap back when idle) */
            int64_t settle = served_at + 3000000000LL - util_now_ns();
            if (settle > 0)
                usleep((useconds_t)(settle / 1000));
            rss_settled = (double)(proc_rss_kb(L.pid) - rss0) / L.nclients;
            printf("server: RSS 3 s after the last client was served: %.1f KiB per client\n",
                   rss_settled);
        }
        if (bps > 0)
            printf("loopback: %.0f MB/s; initial push %.1f MB received -> byte floor %.3f s\n",
                   bps / 1e6, (double)init_bytes / 1e6, (double)init_bytes / bps);
    }
    if (rc == 0 && L.vs && L.vs_alt) {
        int *before = xcalloc((size_t)L.nclients, sizeof(int));
        for (int i = 0; i < L.nclients; i++)
            before[i] = atomic_load(&L.clients[i].t[T_RDS].responses);
        uint64_t bytes0 = atomic_load(&L.rx_bytes);
        double cpu1 = L.pid ? proc_cpu_s(L.pid) : 0;
        int64_t t1 = util_now_ns();
        if (copy_file(L.vs_alt, L.vs) != 0) {
            perror("copying the VirtualService");
            rc = -1;
        } else {
            /* wait until every client has one more RDS response than before */
            int64_t deadline = t1 + (int64_t)L.timeout_s * 1000000000LL;
            int done = 0;
            while (util_now_ns() < deadline) {
                done = 0;
                for (int i = 0; i < L.nclients; i++)
                    done += atomic_load(&L.clients[i].t[T_RDS].responses) > before[i];
                if (done == L.nclients)
                    break;
                usleep(2000);
            }
            /* each client took one RDS response since the edit: the earliest of them is when
             * the push reached the first client (after inotify, the debounce and the build) */
            int64_t last = 0, first = INT64_MAX;
            for (int i = 0; i < L.nclients; i++) {
                int64_t r = atomic_load(&L.clients[i].last_rds_ns);
                last = r > last ? r : last;
                first = r < first ? r : first;
            }
            if (done == L.nclients) {
                usleep(300000);
                edit_s = (double)(last - t1) / 1e9;
                spread_s = (double)(last - first) / 1e9;
                edit_cpu = L.pid ? proc_cpu_s(L.pid) - cpu1 : -1;
                edit_bytes = atomic_load(&L.rx_bytes) - bytes0;
                printf("VirtualService edit -> last client RDS: %.3f s (%d clients); server "
                       "%.2f CPU s (%.0f us per client); %.2f MB received",
                       edit_s, L.nclients, edit_cpu, edit_cpu * 1e6 / L.nclients,
                       (double)edit_bytes / 1e6);
                printf("; first client -> last client %.3f s", spread_s);
                if (bps > 0)
                    printf(" -> byte floor %.4f s, edit %.1fx and first-to-last %.1fx the floor",
                           (double)edit_bytes / bps, edit_s / ((double)edit_bytes / bps),
                           spread_s / ((double)edit_bytes / bps));
                printf("\n");
            } else {
                printf("VirtualService edit: only %d of %d clients updated\n", done, L.nclients);
                rc = -1;
            }
        }
        free(before);
    }
    int have[T_N] = {0}; /* clients with at least one response of each type */
    for (int i = 0; i < L.nclients; i++)
        for (int t = 0; t < T_N; t++)
            have[t] += atomic_load(&L.clients[i].t[t].responses) > 0;
    int nacks = atomic_load(&L.nacks);
    printf("nacks %d\n", nacks);
    if (nacks > 0)
        rc = -1;
    printf("result: {\"flavour\":\"%s\",\"delta\":%s,\"clients\":%d,\"services\":%d,"
           "\"served_s\":%.3f,\"init_cpu_s\":%.2f,\"rss_kb_per_client\":%.1f,"
           "\"rss_settled_kb_per_client\":%.1f,"
           "\"rss_mb\":%.1f,\"init_mb\":%.2f,\"edit_s\":%.4f,\"edit_cpu_s\":%.3f,"
           "\"edit_mb\":%.3f,\"edit_spread_s\":%.4f,\"loopback_mbps\":%.0f,\"nacks\":%d,"
           "\"with\":{\"lds\":%d,\"rds\":%d,\"cds\":%d,\"eds\":%d},\"ok\":%s}\n",
           L.flavour == FL_ENVOY ? "envoy" : "grpc", L.delta ? "true" : "false", L.nclients,
           L.nservices, served_s, init_cpu, rss_per, rss_settled, rss1 / 1024.0,
           (double)init_bytes / 1e6, edit_s, edit_cpu, (double)edit_bytes / 1e6, spread_s,
           bps / 1e6, nacks, have[T_LDS], have[T_RDS], have[T_CDS], have[T_EDS],
           rc == 0 ? "true" : "false");

    /* streams stay open (and keep ACKing) while the caller inspects the server */
    if (L.linger_s > 0)
        sleep((unsigned)L.linger_s);
    atomic_store(&L.stop, true);
    for (int i = 0; i < L.nclients; i++)
        grpc_call_cancel(L.clients[i].call, NULL);
    usleep(200000);
    for (int i = 0; i < L.ncqs; i++)
        grpc_completion_queue_shutdown(L.cqs[i]);
    for (int i = 0; i < L.ncqs; i++)
        pthread_join(threads[i], NULL);
    fflush(stdout);
    _exit(rc == 0 ? 0 : 1); /* skip teardown of thousands of calls: the OS frees it */
}
