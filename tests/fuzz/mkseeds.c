/* mkseeds: writes the binary seed corpora (protobuf messages packed by protobuf-c, the
 * way a real client serializes them) for the node, ads_request and ca_request targets.
 * The text corpora (yaml, mesh_json, watchline, csr) are written by hand.
 *
 *   mkseeds CORPUS_DIR      (reads CORPUS_DIR/csr/NAME.pem, writes CORPUS_DIR/{node,
 *                            ads_request,ca_request}/seed-NAME)
 *
 * Run it again after changing the formats; the output is committed.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include "pilot/base/util.h"
#include "xds/ads/stream_internal.h"
#include "xds/gen/gen.h"

static const char *outdir;

static void write_seed(const char *sub, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/seed-%s", outdir, sub, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc(*len ? *len : 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* ---- nodes ------------------------------------------------------------------------------ */

/* A metadata Struct of up to 8 entries; values are made by the helpers below. */
typedef struct md {
    Google__Protobuf__Struct st;
    Google__Protobuf__Struct__FieldsEntry e[8], *ep[8];
} md;

static void md_init(md *m)
{
    google__protobuf__struct__init(&m->st);
    m->st.fields = m->ep;
}

static Google__Protobuf__Value *md_add(md *m, const char *key)
{
    Google__Protobuf__Value *v = xcalloc(1, sizeof(*v)); /* freed with the process */
    google__protobuf__value__init(v);
    Google__Protobuf__Struct__FieldsEntry *e = &m->e[m->st.n_fields];
    google__protobuf__struct__fields_entry__init(e);
    e->key = (char *)key;
    e->value = v;
    m->ep[m->st.n_fields++] = e;
    return v;
}

static void md_str(md *m, const char *key, const char *val)
{
    Google__Protobuf__Value *v = md_add(m, key);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)val;
}

static void md_struct(md *m, const char *key, md *sub)
{
    Google__Protobuf__Value *v = md_add(m, key);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    v->struct_value = &sub->st;
}

typedef struct node {
    Envoy__Config__Core__V3__Node n;
    Envoy__Config__Core__V3__Locality loc;
    md meta, labels;
} node;

typedef enum { N_SIDECAR, N_ROUTER, N_GRPC } node_kind;

static void node_make(node *nd, node_kind k)
{
    envoy__config__core__v3__node__init(&nd->n);
    envoy__config__core__v3__locality__init(&nd->loc);
    md_init(&nd->meta);
    md_init(&nd->labels);
    nd->n.metadata = &nd->meta.st;
    nd->n.cluster = "reviews.default";
    switch (k) {
    case N_SIDECAR:
        nd->n.id = "sidecar~10.1.0.5~reviews-v1.default~default.svc.cluster.local";
        md_str(&nd->meta, "NAMESPACE", "default");
        md_str(&nd->meta, "INSTANCE_IPS", "10.1.0.5,fd00::5");
        md_str(&nd->meta, "ISTIO_VERSION", "1.24.0");
        md_str(&nd->meta, "SERVICE_ACCOUNT", "reviews");
        md_str(&nd->labels, "app", "reviews");
        md_str(&nd->labels, "version", "v1");
        md_struct(&nd->meta, "LABELS", &nd->labels);
        nd->loc.region = "r1";
        nd->loc.zone = "z1";
        nd->loc.sub_zone = "s1";
        nd->n.locality = &nd->loc;
        break;
    case N_ROUTER:
        nd->n.id = "router~10.1.9.1~istio-ingressgateway-1.istio-system~"
                   "istio-system.svc.cluster.local";
        md_str(&nd->meta, "CLUSTER_ID", "Kubernetes");
        md_str(&nd->labels, "istio", "ingressgateway");
        md_struct(&nd->meta, "LABELS", &nd->labels);
        break;
    case N_GRPC:
        nd->n.id = "sidecar~10.1.1.9~client-1.grpc~grpc.svc.cluster.local";
        md_str(&nd->meta, "GENERATOR", "grpc");
        md_str(&nd->meta, "NAMESPACE", "grpc");
        break;
    }
}

static void node_seeds(void)
{
    static const struct {
        const char *name;
        node_kind k;
        const char *id;
    } cases[] = {
        {"sidecar", N_SIDECAR, NULL},
        {"router", N_ROUTER, NULL},
        {"grpc", N_GRPC, NULL},
        {"id-3-parts", N_SIDECAR, "sidecar~10.0.0.1~pod.ns"},
        {"id-bad-type", N_SIDECAR, "proxy~10.0.0.1~pod.ns~ns.svc.cluster.local"},
        {"id-bad-ip", N_ROUTER, "router~999.1.1.1~pod.ns~ns.svc.cluster.local"},
        {"id-v6", N_ROUTER, "sidecar~fd00::1~pod~svc"},
        {"id-empty-parts", N_ROUTER, "~~~"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        node nd;
        node_make(&nd, cases[i].k);
        if (cases[i].id != NULL)
            nd.n.id = (char *)cases[i].id;
        size_t len;
        void *b = pack(&nd.n.base, &len);
        write_seed("node", cases[i].name, b, len);
        free(b);
    }

    /* metadata of every value kind, nested, and LABELS that are not strings */
    node nd;
    node_make(&nd, N_SIDECAR);
    md inner, inner2;
    md_init(&inner);
    md_init(&inner2);
    md_str(&inner2, "deep", "x");
    md_struct(&inner, "nested", &inner2);
    Google__Protobuf__Value *num = md_add(&inner, "num");
    num->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    num->number_value = 1e308;
    Google__Protobuf__Value *bo = md_add(&inner, "bool");
    bo->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
    bo->bool_value = 1;
    Google__Protobuf__Value *nul = md_add(&inner, "null");
    nul->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
    Google__Protobuf__ListValue lv;
    google__protobuf__list_value__init(&lv);
    Google__Protobuf__Value *items[2] = {num, bo};
    lv.values = items;
    lv.n_values = 2;
    Google__Protobuf__Value *lst = md_add(&inner, "list");
    lst->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    lst->list_value = &lv;
    md_struct(&nd.meta, "PLATFORM_METADATA", &inner);
    size_t len;
    void *b = pack(&nd.n.base, &len);
    write_seed("node", "metadata-kinds", b, len);
    free(b);
    md_struct(&nd.labels, "bad", &inner2);
    b = pack(&nd.n.base, &len);
    write_seed("node", "labels-not-strings", b, len);
    free(b);
}

/* ---- ADS streams ----------------------------------------------------------------------- */

/* The ads_request input format: see fuzz_ads_request.c. */
typedef struct prog {
    uint8_t buf[16384];
    size_t len;
} prog;

static void prog_byte(prog *p, uint8_t b)
{
    if (p->len >= sizeof(p->buf))
        abort();
    p->buf[p->len++] = b;
}

static void prog_msg(prog *p, const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *b = pack(m, &len);
    if (len > 0xffff || p->len + 3 + len > sizeof(p->buf))
        abort();
    prog_byte(p, 0);
    prog_byte(p, (uint8_t)(len & 0xff));
    prog_byte(p, (uint8_t)(len >> 8));
    memcpy(p->buf + p->len, b, len);
    p->len += len;
    free(b);
}

static void prog_push(prog *p)
{
    prog_byte(p, 2);
}

static void prog_eds(prog *p, const char *hosts)
{
    prog_byte(p, 3);
    prog_byte(p, (uint8_t)strlen(hosts));
    memcpy(p->buf + p->len, hosts, strlen(hosts));
    p->len += strlen(hosts);
}

/* A SotW request; nonce "=" means "the one last sent for this type". */
static void sotw(prog *p, Envoy__Config__Core__V3__Node *n, int t, const char *nonce,
                 const char *const *names, size_t nnames, const char *nack)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest r;
    Google__Rpc__Status st;
    envoy__service__discovery__v3__discovery_request__init(&r);
    r.node = n;
    r.type_url = (char *)xds_type_url(t);
    r.response_nonce = (char *)nonce;
    r.version_info = nonce[0] ? "v" : "";
    r.resource_names = (char **)names;
    r.n_resource_names = nnames;
    if (nack != NULL) {
        google__rpc__status__init(&st);
        st.code = 3;
        st.message = (char *)nack;
        r.error_detail = &st;
    }
    prog_msg(p, &r.base);
}

static void delta(prog *p, Envoy__Config__Core__V3__Node *n, int t, const char *nonce,
                  const char *const *sub, size_t nsub, const char *const *unsub, size_t nunsub,
                  const char *initial_name, const char *nack)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry e, *ep[1];
    Google__Rpc__Status st;
    envoy__service__discovery__v3__delta_discovery_request__init(&r);
    r.node = n;
    r.type_url = (char *)xds_type_url(t);
    r.response_nonce = (char *)nonce;
    r.resource_names_subscribe = (char **)sub;
    r.n_resource_names_subscribe = nsub;
    r.resource_names_unsubscribe = (char **)unsub;
    r.n_resource_names_unsubscribe = nunsub;
    if (initial_name != NULL) {
        envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
            &e);
        e.key = (char *)initial_name;
        e.value = "1234abcd";
        ep[0] = &e;
        r.initial_resource_versions = ep;
        r.n_initial_resource_versions = 1;
    }
    if (nack != NULL) {
        google__rpc__status__init(&st);
        st.code = 3;
        st.message = (char *)nack;
        r.error_detail = &st;
    }
    prog_msg(p, &r.base);
}

#define C_REVIEWS "outbound|9080||reviews.default.svc.cluster.local"
#define C_REVIEWS_V1 "outbound|9080|v1|reviews.default.svc.cluster.local"
#define C_GREETER "outbound|50051||greeter.grpc.svc.cluster.local"
#define L_GREETER "greeter.grpc.svc.cluster.local:50051"

static void ads_seeds(void)
{
    node side, gw, grpc;
    node_make(&side, N_SIDECAR);
    node_make(&gw, N_ROUTER);
    node_make(&grpc, N_GRPC);
    static const char *const eds[] = {C_REVIEWS, C_REVIEWS_V1,
                                      "outbound|3306||mysql.default.svc.cluster.local"};
    static const char *const rds[] = {"9080", "reviews.default.svc.cluster.local:9080"};
    static const char *const gw_rds[] = {"http.80", "https.443.https.gw.default"};
    static const char *const g_lds[] = {L_GREETER};
    static const char *const g_cds[] = {C_GREETER};
    static const char *const star[] = {"*"};
    prog p;

    /* SotW sidecar: the Envoy order, ACKs, a NACK, pushes */
    p.len = 0;
    prog_byte(&p, 0);
    sotw(&p, &side.n, XT_CDS, "", NULL, 0, NULL);
    sotw(&p, NULL, XT_EDS, "", eds, 3, NULL);
    sotw(&p, NULL, XT_CDS, "=", NULL, 0, NULL);
    sotw(&p, NULL, XT_LDS, "", NULL, 0, NULL);
    sotw(&p, NULL, XT_RDS, "", rds, 2, NULL);
    sotw(&p, NULL, XT_EDS, "=", eds, 1, NULL);
    sotw(&p, NULL, XT_RDS, "=", rds, 2, "route rejected");
    prog_push(&p);
    prog_eds(&p, "reviews.default.svc.cluster.local,mysql.default.svc.cluster.local");
    prog_byte(&p, 5);
    sotw(&p, NULL, XT_SDS, "", star, 1, NULL);
    sotw(&p, NULL, XT_CDS, "stale-nonce", NULL, 0, NULL);
    write_seed("ads_request", "sotw-sidecar", p.buf, p.len);

    /* SotW gateway */
    p.len = 0;
    prog_byte(&p, 0);
    sotw(&p, &gw.n, XT_CDS, "", NULL, 0, NULL);
    sotw(&p, NULL, XT_LDS, "", NULL, 0, NULL);
    sotw(&p, NULL, XT_RDS, "", gw_rds, 2, NULL);
    sotw(&p, NULL, XT_EDS, "", eds, 1, NULL);
    prog_push(&p);
    prog_push(&p);
    write_seed("ads_request", "sotw-gateway", p.buf, p.len);

    /* SotW proxyless gRPC: named LDS -> RDS -> CDS -> EDS */
    p.len = 0;
    prog_byte(&p, 0);
    sotw(&p, &grpc.n, XT_LDS, "", g_lds, 1, NULL);
    sotw(&p, NULL, XT_RDS, "", g_lds, 1, NULL);
    sotw(&p, NULL, XT_CDS, "", g_cds, 1, NULL);
    sotw(&p, NULL, XT_EDS, "", g_cds, 1, NULL);
    sotw(&p, NULL, XT_EDS, "=", g_cds, 1, NULL);
    prog_eds(&p, "greeter.grpc.svc.cluster.local");
    write_seed("ads_request", "sotw-grpc", p.buf, p.len);

    /* Delta sidecar: wildcard, named, initial versions, unsubscribe, ACK and NACK */
    p.len = 0;
    prog_byte(&p, 1);
    delta(&p, &side.n, XT_CDS, "", NULL, 0, NULL, 0, C_REVIEWS, NULL);
    delta(&p, NULL, XT_EDS, "", eds, 3, NULL, 0, C_REVIEWS, NULL);
    delta(&p, NULL, XT_CDS, "=", NULL, 0, NULL, 0, NULL, NULL);
    delta(&p, NULL, XT_EDS, "=", NULL, 0, eds, 1, NULL, NULL);
    delta(&p, NULL, XT_LDS, "", star, 1, NULL, 0, NULL, NULL);
    delta(&p, NULL, XT_LDS, "=", NULL, 0, star, 1, NULL, "listener rejected");
    prog_push(&p);
    prog_eds(&p, "reviews.default.svc.cluster.local");
    prog_byte(&p, 4);
    write_seed("ads_request", "delta-sidecar", p.buf, p.len);

    /* Delta gRPC */
    p.len = 0;
    prog_byte(&p, 1);
    delta(&p, &grpc.n, XT_LDS, "", g_lds, 1, NULL, 0, NULL, NULL);
    delta(&p, NULL, XT_RDS, "", g_lds, 1, NULL, 0, NULL, NULL);
    delta(&p, NULL, XT_CDS, "", g_cds, 1, NULL, 0, NULL, NULL);
    delta(&p, NULL, XT_EDS, "", g_cds, 1, NULL, 0, C_GREETER, NULL);
    prog_push(&p);
    delta(&p, NULL, XT_CDS, "=", NULL, 0, g_cds, 1, NULL, NULL);
    write_seed("ads_request", "delta-grpc", p.buf, p.len);

    /* Before the first snapshot: subscriptions wait for the first push */
    p.len = 0;
    prog_byte(&p, 2);
    sotw(&p, &side.n, XT_CDS, "", NULL, 0, NULL);
    sotw(&p, NULL, XT_EDS, "", eds, 2, NULL);
    prog_byte(&p, 5);
    prog_push(&p);
    write_seed("ads_request", "sotw-before-snapshot", p.buf, p.len);

    /* A first request without a node, and one with a bad node: the stream ends */
    p.len = 0;
    prog_byte(&p, 0);
    sotw(&p, NULL, XT_CDS, "", NULL, 0, NULL);
    write_seed("ads_request", "no-node", p.buf, p.len);
    node bad;
    node_make(&bad, N_SIDECAR);
    bad.n.id = "sidecar~not-an-ip~x~y";
    p.len = 0;
    prog_byte(&p, 1);
    delta(&p, &bad.n, XT_CDS, "", NULL, 0, NULL, 0, NULL, NULL);
    write_seed("ads_request", "bad-node", p.buf, p.len);
}

/* ---- CreateCertificate -------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    strbuf b;
    strbuf_init(&b, 1 << 20);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        strbuf_append(&b, tmp, n);
    fclose(f);
    strbuf_appends(&b, "");
    return strbuf_steal(&b, NULL);
}

static void ca_seed(const char *name, const char *csr, int64_t ttl, bool with_md)
{
    Istio__V1__Auth__IstioCertificateRequest r;
    istio__v1__auth__istio_certificate_request__init(&r);
    r.csr = (char *)csr;
    r.validity_duration = ttl;
    md m;
    if (with_md) {
        md_init(&m);
        md_str(&m, "ImpersonatedIdentity", "Kubernetes/spiffe://cluster.local/ns/x/sa/y");
        r.metadata = &m.st;
    }
    size_t len;
    void *b = pack(&r.base, &len);
    write_seed("ca_request", name, b, len);
    free(b);
}

static void ca_seeds(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/csr", outdir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        exit(1);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".pem") != 0)
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *csr = slurp(path);
        char name[300];
        snprintf(name, sizeof(name), "%.*s", (int)(l - 4), de->d_name);
        ca_seed(name, csr, 3600, false);
        if (strcmp(name, "ec-p256") == 0) {
            /* TTL: default, above the 90-day maximum, negative; metadata present */
            snprintf(name, sizeof(name), "%.*s-ttl0-md", (int)(l - 4), de->d_name);
            ca_seed(name, csr, 0, true);
            snprintf(name, sizeof(name), "%.*s-ttl-max", (int)(l - 4), de->d_name);
            ca_seed(name, csr, 91LL * 24 * 3600, false);
            snprintf(name, sizeof(name), "%.*s-ttl-neg", (int)(l - 4), de->d_name);
            ca_seed(name, csr, -5, false);
        }
        free(csr);
    }
    closedir(d);
    ca_seed("empty-csr", "", 3600, false);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    node_seeds();
    ads_seeds();
    ca_seeds();
    return 0;
}
