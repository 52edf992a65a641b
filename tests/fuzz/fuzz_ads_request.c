/* fuzz_ads_request: a whole ADS stream driven by the fuzzer, as far as it goes without a
 * network: the bytes server.c receives (DiscoveryRequest or DeltaDiscoveryRequest), the
 * same protobuf-c unpack, xds_stream_on_request with the REAL generators on a small mesh
 * snapshot, pushes between two snapshots, and the hand-written response encoding.
 *
 * Input: byte 0 = mode (bit 0: Delta, bit 1: no snapshot until the first push, as before
 * the first build), then operations, each one byte then its operand:
 *   0, 1  request:  u16 little-endian length, that many bytes of the request message.
 *         A response_nonce of "=" is replaced by the nonce last sent for the request's
 *         type (fuzzers cannot guess nonces; this makes ACK and NACK reachable).
 *   2     full push of the other snapshot (the server drains the outbox first, so do we)
 *   3     EDS-only push: u8 length, hostnames separated by ','
 *   4     pop and check one queued response
 *   5     pop and check every queued response
 * A request that does not decode or that ends the stream (bad node, overflow) ends the
 * input, as the server ends the call.
 *
 * Properties: every response decodes with protobuf-c as the message type of the stream,
 * carries the type URL of its slot and Any values of that type; the outbox never holds
 * more than XDS_OUTQ_MAX; the stream is torn down without leaks.
 */
#include <stdbool.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "fuzz.h"
#include "pilot/base/pbdepth.h"
#include "pilot/base/util.h"
#include "pilot/base/yaml.h"
#include "pilot/model/model.h"
#include "xds/ads/stream_internal.h"
#include "xds/gen/gen.h"

/* The mesh the generators see: services of each protocol, endpoints, a DestinationRule
 * with subsets, VirtualServices for sidecars and a gateway, a ServiceEntry. */
static const char mesh_a[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
    "spec: {clusterIP: 10.96.0.10, selector: {app: reviews},"
    " ports: [{name: http, port: 9080, targetPort: 9080}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: mysql, namespace: default}\n"
    "spec: {clusterIP: 10.96.0.20, selector: {app: mysql},"
    " ports: [{name: tcp-mysql, port: 3306}]}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: greeter, namespace: grpc}\n"
    "spec: {clusterIP: 10.96.0.30, selector: {app: greeter},"
    " ports: [{name: grpc, port: 50051}]}\n"
    "---\napiVersion: v1\nkind: Pod\n"
    "metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}\n"
    "spec: {serviceAccountName: reviews}\nstatus: {podIP: 10.1.0.5}\n"
    "---\napiVersion: v1\nkind: Pod\n"
    "metadata: {name: reviews-v2, namespace: default, labels: {app: reviews, version: v2}}\n"
    "spec: {serviceAccountName: reviews}\nstatus: {podIP: 10.1.0.6}\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: reviews-1, namespace: default,"
    " labels: {kubernetes.io/service-name: reviews}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9080, protocol: TCP}]\n"
    "endpoints:\n"
    "- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: reviews-v1, namespace: default}}\n"
    "- {addresses: [10.1.0.6], targetRef: {kind: Pod, name: reviews-v2, namespace: default}}\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: greeter-1, namespace: grpc,"
    " labels: {kubernetes.io/service-name: greeter}}\n"
    "addressType: IPv4\nports: [{name: grpc, port: 50051, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.1.1.5], zone: z1}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    "metadata: {name: reviews, namespace: default}\n"
    "spec: {host: reviews, trafficPolicy: {loadBalancer: {simple: RANDOM}},"
    " subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: reviews, namespace: default}\n"
    "spec: {hosts: [reviews], http: [{match: [{headers: {end-user: {exact: jason}}}],"
    " route: [{destination: {host: reviews, subset: v2}}]},"
    " {route: [{destination: {host: reviews, subset: v1}, weight: 80},"
    " {destination: {host: reviews, subset: v2}, weight: 20}], timeout: 3s}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Gateway\n"
    "metadata: {name: gw, namespace: default}\n"
    "spec: {selector: {istio: ingressgateway}, servers: ["
    "{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]},"
    "{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.example.com],"
    " tls: {mode: SIMPLE, credentialName: a-cert}}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: reviews-gw, namespace: default}\n"
    "spec: {hosts: [\"*\"], gateways: [gw], http: [{match: [{uri: {prefix: /r}}],"
    " route: [{destination: {host: reviews, port: {number: 9080}}}]}]}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
    "metadata: {name: ext, namespace: default}\n"
    "spec: {hosts: [api.example.com], ports: [{number: 443, name: tls, protocol: TLS}],"
    " resolution: DNS, location: MESH_EXTERNAL}\n";

/* Snapshot B: an endpoint gone (EDS change) and new weights (RDS change). */
static const char mesh_b[] =
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: reviews-1, namespace: default,"
    " labels: {kubernetes.io/service-name: reviews}}\n"
    "addressType: IPv4\nports: [{name: http, port: 9080, protocol: TCP}]\n"
    "endpoints: [{addresses: [10.1.0.5]}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: reviews, namespace: default}\n"
    "spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}\n";

static mesh_snapshot *snaps[2];
static xds_gen *gen;
static const xds_stream_env *env;
static uint64_t seq;

static void feed(model *m, const char *yaml)
{
    cJSON **docs = NULL;
    size_t ndocs = 0;
    char err[256];
    if (yaml_to_json_docs(yaml, strlen(yaml), &docs, &ndocs, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_ads_request: fixture: %s\n", err);
        abort();
    }
    source_sink sink = model_sink(m);
    for (size_t i = 0; i < ndocs; i++)
        sink.event(sink.ud, SOURCE_EV_UPSERT, docs[i], "fuzz.yaml");
    free(docs);
}

/* Released at exit so the leak checker sees every array reachable or freed: an empty
 * shared array is referenced only by a pointer one past its header, which LSan does not
 * count as a reference. */
static void fini(void)
{
    mesh_snapshot_release(snaps[0]);
    mesh_snapshot_release(snaps[1]);
    xds_gen_free(gen);
}

static void init(void)
{
    static xds_stream_env e;
    if (env != NULL)
        return;
    fuzz_quiet();
    xds_metrics_init();
    gen = xds_gen_new();
    model_opts o = {
        .domain = "cluster.local", .debounce_after_ns = 1000000, .debounce_max_ns = 10000000};
    model *m = model_new(&o);
    FUZZ_CHECK(m != NULL);
    feed(m, mesh_a);
    model_flush(m);
    snaps[0] = model_snapshot(m);
    feed(m, mesh_b);
    model_flush(m);
    snaps[1] = model_snapshot(m);
    model_free(m);
    FUZZ_CHECK(snaps[0] != NULL && snaps[1] != NULL && snaps[0] != snaps[1]);
    e.gen = gen;
    e.domain = "cluster.local";
    env = &e;
    atexit(fini);
}

static void check_any(const Google__Protobuf__Any *a, const char *type_url)
{
    FUZZ_CHECK(a != NULL && a->type_url != NULL && strcmp(a->type_url, type_url) == 0);
}

/* Decodes one response the way a client would and checks it. */
static void check_msg(const xds_stream *st, const xds_msg *m)
{
    size_t len = 0;
    uint8_t *b = xds_msg_flatten(m, &len);
    const char *url = xds_type_url(m->type);
    FUZZ_CHECK(len == m->total);
    if (st->delta) {
        Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
            envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, b);
        FUZZ_CHECK(r != NULL);
        FUZZ_CHECK(strcmp(r->type_url, url) == 0 && r->nonce[0] != '\0');
        for (size_t i = 0; i < r->n_resources; i++) {
            FUZZ_CHECK(r->resources[i]->name[0] != '\0');
            check_any(r->resources[i]->resource, url);
        }
        envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
    } else {
        Envoy__Service__Discovery__V3__DiscoveryResponse *r =
            envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b);
        FUZZ_CHECK(r != NULL);
        FUZZ_CHECK(strcmp(r->type_url, url) == 0 && r->nonce[0] != '\0');
        for (size_t i = 0; i < r->n_resources; i++)
            check_any(r->resources[i], url);
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    }
    free(b);
}

static void pop_check(xds_stream *st, bool all)
{
    xds_msg *m;
    while ((m = xds_stream_pop(st)) != NULL) {
        check_msg(st, m);
        xds_msg_free(m);
        if (!all)
            break;
    }
}

/* Returns false when the stream must end. */
static bool request(xds_stream *st, mesh_snapshot *snap, const uint8_t *p, size_t n)
{
    const ProtobufCMessageDescriptor *d =
        st->delta ? &envoy__service__discovery__v3__delta_discovery_request__descriptor
                  : &envoy__service__discovery__v3__discovery_request__descriptor;
    ProtobufCMessage *req = NULL;
    if (pb_depth_ok(d, p, n, PB_MAX_DEPTH)) /* as server.c does */
        req = protobuf_c_message_unpack(d, NULL, n, p);
    if (req == NULL)
        return false; /* server.c: INVALID_ARGUMENT "cannot decode ..." */

    /* both request types keep type_url and response_nonce in the same-named fields */
    char **type_url, **nonce;
    if (st->delta) {
        Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *r = (void *)req;
        type_url = &r->type_url;
        nonce = &r->response_nonce;
    } else {
        Envoy__Service__Discovery__V3__DiscoveryRequest *r = (void *)req;
        type_url = &r->type_url;
        nonce = &r->response_nonce;
    }
    char *saved = *nonce;
    int t = xds_type_index(*type_url);
    if (t >= 0 && saved != NULL && strcmp(saved, "=") == 0)
        *nonce = st->t[t].nonce_sent;
    int rc = xds_stream_on_request(st, env, snap, req);
    *nonce = saved; /* protobuf-c frees what it allocated */
    protobuf_c_message_free_unpacked(req, NULL);
    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(rc == 0 || st->close_code != 0);
    if (st->close_code != 0)
        FUZZ_CHECK(st->close_msg[0] != '\0');
    return rc == 0 && st->close_code == 0;
}

static void eds_push(xds_stream *st, mesh_snapshot *snap, const uint8_t *p, size_t n)
{
    char buf[256];
    char *hosts[16];
    size_t nhosts = 0;
    memcpy(buf, p, n);
    buf[n] = '\0';
    for (char *s = buf, *save = NULL, *h; (h = strtok_r(s, ",", &save)) != NULL; s = NULL)
        if (nhosts < 16)
            hosts[nhosts++] = h;
    xds_stream_push(st, env, snap, false, hosts, nhosts, util_now_ns());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    xds_stream st;

    init();
    uint8_t mode = fuzz_u8(&in);
    int cur = 0;
    mesh_snapshot *snap = (mode & 2) ? NULL : snaps[cur];
    xds_stream_init(&st, mode & 1, ++seq, "ipv4:127.0.0.1:15000");
    while (in.n > 0) {
        uint8_t op = fuzz_u8(&in) % 6;
        size_t n;
        const uint8_t *p;
        if (op <= 1) {
            p = fuzz_bytes(&in, fuzz_u16(&in), &n);
            if (!request(&st, snap, p, n))
                break;
        } else if (op == 2) {
            pop_check(&st, true);
            cur ^= 1;
            snap = snaps[cur];
            xds_stream_push(&st, env, snap, true, NULL, 0, util_now_ns());
        } else if (op == 3) {
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            pop_check(&st, true);
            if (snap != NULL)
                eds_push(&st, snap, p, n);
        } else {
            pop_check(&st, op == 5);
        }
        FUZZ_CHECK(st.outq_len <= XDS_OUTQ_MAX);
    }
    pop_check(&st, true);
    xds_stream_cleanup(&st);
    return 0;
}
