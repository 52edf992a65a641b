/* test_proxy: node parsing (xds/gen/proxy.c), table-driven: the four node ID parts, node
 * types, INSTANCE_IPS, NAMESPACE, LABELS, GENERATOR and the flavour, locality, bad IDs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include "xds/gen/gen.h"

/* A Node with up to 8 metadata entries: string values, or a struct of strings (LABELS). */
typedef struct {
    const char *key;
    const char *str;       /* string value, or NULL */
    const char *const *kv; /* NULL-terminated k,v,k,v... for a struct value */
    double number;         /* used when str and kv are NULL */
} md_entry;

typedef struct {
    Envoy__Config__Core__V3__Node node;
    Envoy__Config__Core__V3__Locality loc;
    Google__Protobuf__Struct md;
    Google__Protobuf__Struct__FieldsEntry e[8], *ep[8];
    Google__Protobuf__Value v[8];
    Google__Protobuf__Struct sub[8];
    Google__Protobuf__Struct__FieldsEntry se[8][4], *sep[8][4];
    Google__Protobuf__Value sv[8][4];
} node_buf;

static void build_node(node_buf *b, const char *id, const md_entry *md, size_t nmd)
{
    memset(b, 0, sizeof(*b));
    envoy__config__core__v3__node__init(&b->node);
    google__protobuf__struct__init(&b->md);
    b->node.id = (char *)id;
    b->node.metadata = &b->md;
    for (size_t i = 0; i < nmd; i++) {
        google__protobuf__struct__fields_entry__init(&b->e[i]);
        google__protobuf__value__init(&b->v[i]);
        b->e[i].key = (char *)md[i].key;
        b->e[i].value = &b->v[i];
        if (md[i].str != NULL) {
            b->v[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
            b->v[i].string_value = (char *)md[i].str;
        } else if (md[i].kv != NULL) {
            google__protobuf__struct__init(&b->sub[i]);
            size_t n = 0;
            for (; md[i].kv[2 * n] != NULL && n < 4; n++) {
                google__protobuf__struct__fields_entry__init(&b->se[i][n]);
                google__protobuf__value__init(&b->sv[i][n]);
                b->se[i][n].key = (char *)md[i].kv[2 * n];
                b->sv[i][n].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
                b->sv[i][n].string_value = (char *)md[i].kv[2 * n + 1];
                b->se[i][n].value = &b->sv[i][n];
                b->sep[i][n] = &b->se[i][n];
            }
            b->sub[i].fields = b->sep[i];
            b->sub[i].n_fields = n;
            b->v[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
            b->v[i].struct_value = &b->sub[i];
        } else {
            b->v[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
            b->v[i].number_value = md[i].number;
        }
        b->ep[i] = &b->e[i];
    }
    b->md.fields = b->ep;
    b->md.n_fields = nmd;
}

static const char *const app_labels[] = {"app", "greeter", "version", "v1", NULL};

typedef struct {
    const char *name;
    const char *id;
    md_entry md[4];
    size_t nmd;
    /* expectations: err != NULL means the parse must fail with it in the message */
    const char *err;
    xds_node_type type;
    xds_flavour flavour;
    const char *ips; /* comma-joined */
    const char *pod, *ns, *domain;
    const char *label_version; /* LABELS["version"], or NULL when no labels */
    const char *cluster_id;
    const char *istio_version;
} proxy_case;

static const proxy_case cases[] = {
    {"sidecar basic",
     "sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local",
     {{0}},
     0,
     NULL,
     XDS_NODE_SIDECAR,
     XDS_FLAVOUR_ENVOY_SIDECAR,
     "10.1.2.3",
     "reviews-v1-abc",
     "default",
     "default.svc.cluster.local",
     NULL,
     "Kubernetes",
     NULL},
    {"router is a gateway",
     "router~10.1.2.4~istio-ingressgateway-x.istio-system~istio-system.svc.cluster.local",
     {{"ISTIO_VERSION", "1.30.0", NULL, 0}, {"CLUSTER_ID", "c1", NULL, 0}},
     2,
     NULL,
     XDS_NODE_ROUTER,
     XDS_FLAVOUR_ENVOY_GATEWAY,
     "10.1.2.4",
     "istio-ingressgateway-x",
     "istio-system",
     "istio-system.svc.cluster.local",
     NULL,
     "c1",
     "1.30.0"},
    {"grpc generator",
     "sidecar~127.0.0.99~client.default~default.svc.cluster.local",
     {{"GENERATOR", "grpc", NULL, 0}},
     1,
     NULL,
     XDS_NODE_SIDECAR,
     XDS_FLAVOUR_GRPC,
     "127.0.0.99",
     "client",
     "default",
     "default.svc.cluster.local",
     NULL,
     "Kubernetes",
     NULL},
    {"INSTANCE_IPS wins, invalid ones dropped",
     "sidecar~10.0.0.1~p.ns1~ns1.svc.cluster.local",
     {{"INSTANCE_IPS", "10.0.0.7,bogus,fd00::7", NULL, 0}},
     1,
     NULL,
     XDS_NODE_SIDECAR,
     XDS_FLAVOUR_ENVOY_SIDECAR,
     "10.0.0.7,fd00::7",
     "p",
     "ns1",
     "ns1.svc.cluster.local",
     NULL,
     "Kubernetes",
     NULL},
    {"NAMESPACE wins over the domain",
     "sidecar~10.0.0.1~p.ns1~ns1.svc.cluster.local",
     {{"NAMESPACE", "other", NULL, 0}, {"LABELS", NULL, app_labels, 0}},
     2,
     NULL,
     XDS_NODE_SIDECAR,
     XDS_FLAVOUR_ENVOY_SIDECAR,
     "10.0.0.1",
     "p",
     "other",
     "ns1.svc.cluster.local",
     "v1",
     "Kubernetes",
     NULL},
    {"waypoint",
     "waypoint~10.0.0.2~w.ns~ns.svc.cluster.local",
     {{0}},
     0,
     NULL,
     XDS_NODE_WAYPOINT,
     XDS_FLAVOUR_ENVOY_SIDECAR,
     "10.0.0.2",
     "w",
     "ns",
     "ns.svc.cluster.local",
     NULL,
     "Kubernetes",
     NULL},
    {"three parts", "sidecar~10.0.0.1~p.ns", {{0}}, 0, "must have 4 parts"},
    {"five parts", "sidecar~10.0.0.1~p.ns~ns.svc.cluster.local~x", {{0}}, 0, "must have 4 parts"},
    {"bad type",
     "envoy~10.0.0.1~p.ns~ns.svc.cluster.local",
     {{0}},
     0,
     "invalid node type \"envoy\""},
    {"bad ip", "sidecar~x.y~p.ns~ns.svc.cluster.local", {{0}}, 0, "no valid IP address"},
    {"empty", "", {{0}}, 0, "node ID \"\""},
    {"labels not strings",
     "sidecar~10.0.0.1~p.ns~ns.svc.cluster.local",
     {{"LABELS", NULL, NULL, 3}},
     1,
     "LABELS must be a struct"},
};

static void join_ips(const xds_proxy *p, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i < p->nips; i++) {
        strncat(out, p->ips[i], outlen - strlen(out) - 1);
        if (i + 1 < p->nips)
            strncat(out, ",", outlen - strlen(out) - 1);
    }
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const proxy_case *c = &cases[i];
        node_buf b;
        build_node(&b, c->id, c->md, c->nmd);
        xds_proxy *p = NULL;
        char err[512] = "";
        int rc = xds_proxy_from_node(&b.node, "cluster.local", &p, err, sizeof(err));
        if (c->err != NULL) {
            if (rc != -1 || p != NULL)
                fail_msg("%s: expected failure", c->name);
            if (strstr(err, c->err) == NULL)
                fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err, c->err);
            if (strncmp(err, "node ID \"", 9) != 0)
                fail_msg("%s: error \"%s\" does not name the node ID", c->name, err);
            continue;
        }
        if (rc != 0)
            fail_msg("%s: unexpected error %s", c->name, err);
        char ips[256];
        join_ips(p, ips, sizeof(ips));
        assert_string_equal(p->id, c->id);
        assert_int_equal(p->type, c->type);
        assert_int_equal(p->flavour, c->flavour);
        assert_string_equal(ips, c->ips);
        assert_string_equal(p->pod_name, c->pod);
        assert_string_equal(p->ns, c->ns);
        assert_string_equal(p->dns_domain, c->domain);
        assert_string_equal(p->cluster_id, c->cluster_id);
        if (c->istio_version)
            assert_string_equal(p->istio_version, c->istio_version);
        else
            assert_null(p->istio_version);
        if (c->label_version) {
            assert_int_equal(p->labels.n, 2);
            assert_string_equal(mesh_labels_get(&p->labels, "version"), c->label_version);
        } else {
            assert_int_equal(p->labels.n, 0);
        }
        assert_non_null(p->metadata);
        xds_proxy_free(p);
    }
}

static void test_missing_node_and_locality(void **state)
{
    (void)state;
    xds_proxy *p = NULL;
    char err[256];
    assert_int_equal(xds_proxy_from_node(NULL, "cluster.local", &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing"));

    node_buf b;
    build_node(&b, "sidecar~127.0.0.99~c.default~default.svc.cluster.local", NULL, 0);
    envoy__config__core__v3__locality__init(&b.loc);
    b.loc.region = "r1";
    b.loc.zone = "z1";
    b.loc.sub_zone = "s1";
    b.node.locality = &b.loc;
    assert_int_equal(xds_proxy_from_node(&b.node, "cluster.local", &p, err, sizeof(err)), 0);
    assert_string_equal(p->region, "r1");
    assert_string_equal(p->zone, "z1");
    assert_string_equal(p->subzone, "s1");
    xds_proxy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_missing_node_and_locality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
