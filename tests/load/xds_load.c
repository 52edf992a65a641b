/* xds_load: N simulated proxyless ADS clients on gRPC's C core client API.
 *
 * Each client opens one SotW stream (several streams share a channel, channels are spread
 * over several completion queues, one thread each), subscribes by name to LDS, RDS, CDS
 * and EDS for K services (gRPC naming: listener "host:port", route/cluster/EDS
 * "outbound|port||host"), and ACKs every response. Responses are not decoded: only the
 * top-level version, type and nonce are scanned, so the client spends little CPU.
 *
 * Phases: (1) connect all, wait until every client has ACKed all four types; (2) with
 * --vs FILE --vs-alt FILE, copy the alternative VirtualService over FILE and wait until
 * every client received a new RDS response: the time from the edit to the last ACK is
 * the convergence time. With --pid, reports the server's CPU seconds and RSS growth per
 * client from /proc.
 *
 * Usage: xds_load --target 127.0.0.1:15010 --clients N --services K --ns NS --port P
 *                 [--streams-per-channel 10] [--cqs 2] [--pid PID] [--vs F --vs-alt F2]
 *                 [--timeout SECONDS]
 * Exit 0 when every phase converged within the timeout, 1 otherwise.
 */
#include <getopt.h>
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
#include <grpc/support/time.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include "pilot/base/util.h"

#define SOTW "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
enum { T_LDS, T_RDS, T_CDS, T_EDS, T_N };
static const char *type_urls[T_N] = {
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
};

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
    bool initial_md_sent, initial_md_received;
    grpc_metadata_array initial_md;
    /* what to send: initial requests, then the latest ACK per type */
    int next_initial;
    bool ack_due[T_N];
    char nonce[T_N][64];
    char version[T_N][64];
    atomic_int responses[T_N];
    atomic_int_fast64_t last_rds_ns;
};

static struct {
    const char *target;
    int nclients, nservices, per_channel, ncqs, port, timeout_s;
    const char *ns, *vs, *vs_alt;
    int pid;
    char **names_lds, **names_other;
    client *clients;
    grpc_completion_queue **cqs;
    atomic_bool stop;
} L = {.target = "127.0.0.1:15010",
       .nclients = 10,
       .nservices = 10,
       .per_channel = 10,
       .ncqs = 2,
       .port = 80,
       .timeout_s = 120,
       .ns = "load"};

/* ---- requests --------------------------------------------------------------------------- */

static grpc_byte_buffer *pack_request(client *c, int t, bool with_node)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Envoy__Config__Core__V3__Node node;
    Envoy__Config__Core__V3__Locality loc;
    Google__Protobuf__Struct md;
    Google__Protobuf__Struct__FieldsEntry e, *ep = &e;
    Google__Protobuf__Value v;
    char id[160];
    envoy__service__discovery__v3__discovery_request__init(&req);
    req.type_url = (char *)type_urls[t];
    if (with_node) {
        envoy__config__core__v3__node__init(&node);
        envoy__config__core__v3__locality__init(&loc);
        google__protobuf__struct__init(&md);
        google__protobuf__struct__fields_entry__init(&e);
        google__protobuf__value__init(&v);
        snprintf(id, sizeof(id), "sidecar~10.%d.%d.%d~load-%d.%s~%s.svc.cluster.local",
                 (c->id >> 16) & 255, (c->id >> 8) & 255, c->id & 255, c->id, L.ns, L.ns);
        node.id = id;
        v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        v.string_value = "grpc";
        e.key = "GENERATOR";
        e.value = &v;
        md.fields = &ep;
        md.n_fields = 1;
        node.metadata = &md;
        loc.region = "r1";
        node.locality = &loc;
        req.node = &node;
    }
    req.resource_names = t == T_LDS ? L.names_lds : L.names_other;
    req.n_resource_names = (size_t)L.nservices;
    req.version_info = c->version[t];
    req.response_nonce = c->nonce[t];
    size_t n = protobuf_c_message_get_packed_size(&req.base);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void client_pump(client *c)
{
    if (c->sending || c->dead)
        return;
    int t = -1;
    bool with_node = false;
    if (c->next_initial < T_N) {
        t = c->next_initial++;
        with_node = t == 0;
    } else {
        for (int i = 0; i < T_N; i++)
            if (c->ack_due[i]) {
                t = i;
                c->ack_due[i] = false;
                break;
            }
    }
    if (t < 0)
        return;
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->initial_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->initial_md_sent = true;
    }
    c->send_buf = pack_request(c, t, with_node);
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

/* ---- responses: scan top-level fields 1 (version), 4 (type), 5 (nonce) ------------------ */

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

static void client_on_response(client *c, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    char ver[64] = "", type[128] = "", nonce[64] = "";
    while (p < end) {
        uint64_t tag, l;
        if (scan_varint(&p, end, &tag) != 0)
            return;
        if ((tag & 7) == 0) {
            if (scan_varint(&p, end, &l) != 0)
                return;
            continue;
        }
        if ((tag & 7) != 2 || scan_varint(&p, end, &l) != 0 || l > (uint64_t)(end - p))
            return;
        int f = (int)(tag >> 3);
        char *dst = f == 1 ? ver : f == 4 ? type : f == 5 ? nonce : NULL;
        size_t cap = f == 4 ? sizeof(type) : sizeof(ver);
        if (dst != NULL)
            snprintf(dst, cap, "%.*s", (int)(l < cap ? l : cap - 1), (const char *)p);
        p += l;
    }
    for (int t = 0; t < T_N; t++) {
        if (strcmp(type, type_urls[t]) != 0)
            continue;
        snprintf(c->version[t], sizeof(c->version[t]), "%s", ver);
        snprintf(c->nonce[t], sizeof(c->nonce[t]), "%s", nonce);
        c->ack_due[t] = true;
        if (t == T_RDS)
            atomic_store(&c->last_rds_ns, util_now_ns());
        atomic_fetch_add(&c->responses[t], 1);
    }
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

static int wait_all(int t, int min_responses, const char *what, int64_t t0)
{
    int64_t deadline = util_now_ns() + (int64_t)L.timeout_s * 1000000000LL;
    for (;;) {
        int done = 0, dead = 0;
        for (int i = 0; i < L.nclients; i++) {
            client *c = &L.clients[i];
            if (c->dead)
                dead++;
            bool ok = true;
            for (int k = 0; k < T_N; k++)
                if ((t < 0 || k == t) &&
                    atomic_load(&c->responses[k]) < (k == t || t < 0 ? min_responses : 0))
                    ok = false;
            done += ok;
        }
        if (done == L.nclients) {
            int64_t last = 0;
            if (t == T_RDS)
                for (int i = 0; i < L.nclients; i++)
                    if (atomic_load(&L.clients[i].last_rds_ns) > last)
                        last = atomic_load(&L.clients[i].last_rds_ns);
            double s = (double)((t == T_RDS ? last : util_now_ns()) - t0) / 1e9;
            printf("%s: %d clients in %.3f s\n", what, L.nclients, s);
            return 0;
        }
        if (util_now_ns() > deadline || dead == L.nclients) {
            printf("%s: only %d of %d clients (%d streams dead) after %d s\n", what, done,
                   L.nclients, dead, L.timeout_s);
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'}, {"clients", 1, 0, 'n'}, {"services", 1, 0, 'k'},
        {"ns", 1, 0, 's'},     {"port", 1, 0, 'p'},    {"streams-per-channel", 1, 0, 'c'},
        {"cqs", 1, 0, 'q'},    {"pid", 1, 0, 'P'},     {"vs", 1, 0, 'v'},
        {"vs-alt", 1, 0, 'a'}, {"timeout", 1, 0, 'T'}, {0, 0, 0, 0}};
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
        default:
            fprintf(stderr, "see the comment at the top of xds_load.c\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (L.nclients <= 0 || L.nservices <= 0 || L.per_channel <= 0 || L.ncqs <= 0)
        return 2;
    L.names_lds = xcalloc((size_t)L.nservices, sizeof(char *));
    L.names_other = xcalloc((size_t)L.nservices, sizeof(char *));
    for (int i = 0; i < L.nservices; i++) {
        L.names_lds[i] = xasprintf("svc-%d.%s.svc.cluster.local:%d", i, L.ns, L.port);
        L.names_other[i] = xasprintf("outbound|%d||svc-%d.%s.svc.cluster.local", L.port, i, L.ns);
    }

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
        /* distinct channels: a channel arg makes each its own subchannel/connection */
        grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = "xds_load.channel", .value.integer = i};
        grpc_channel_args ca = {1, &a};
        chans[i] = grpc_channel_create(L.target, creds, &ca);
    }
    grpc_channel_credentials_release(creds);

    double cpu0 = L.pid ? proc_cpu_s(L.pid) : 0;
    long rss0 = L.pid ? proc_rss_kb(L.pid) : 0;
    int64_t t0 = util_now_ns();
    L.clients = xcalloc((size_t)L.nclients, sizeof(client));
    grpc_slice method = grpc_slice_from_static_string(SOTW);
    for (int i = 0; i < L.nclients; i++) {
        client *c = &L.clients[i];
        c->id = i;
        c->cq = L.cqs[i % L.ncqs];
        c->t_recv = (ltag){0, c};
        c->t_send = (ltag){1, c};
        c->t_status = (ltag){2, c};
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
    int rc = wait_all(-1, 1, "initial: all clients ACKed LDS, RDS, CDS and EDS", t0);
    if (rc == 0 && L.pid) {
        usleep(500000);
        long rss1 = proc_rss_kb(L.pid);
        printf(
            "server: %.2f CPU s for the initial push, RSS %ld -> %ld MiB (%.1f KiB per client)\n",
            proc_cpu_s(L.pid) - cpu0, rss0 / 1024, rss1 / 1024, (double)(rss1 - rss0) / L.nclients);
    }
    if (rc == 0 && L.vs && L.vs_alt) {
        int *before = xcalloc((size_t)L.nclients, sizeof(int));
        for (int i = 0; i < L.nclients; i++)
            before[i] = atomic_load(&L.clients[i].responses[T_RDS]);
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
                    done += atomic_load(&L.clients[i].responses[T_RDS]) > before[i];
                if (done == L.nclients)
                    break;
                usleep(2000);
            }
            int64_t last = 0;
            for (int i = 0; i < L.nclients; i++)
                if (atomic_load(&L.clients[i].last_rds_ns) > last)
                    last = atomic_load(&L.clients[i].last_rds_ns);
            if (done == L.nclients) {
                usleep(300000);
                printf("VirtualService edit -> last client RDS: %.3f s (%d clients); server "
                       "%.2f CPU s\n",
                       (double)(last - t1) / 1e9, L.nclients,
                       L.pid ? proc_cpu_s(L.pid) - cpu1 : 0.0);
            } else {
                printf("VirtualService edit: only %d of %d clients updated\n", done, L.nclients);
                rc = -1;
            }
        }
        free(before);
    }

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
