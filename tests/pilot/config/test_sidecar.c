/* test_sidecar: the Sidecar parser and validator (pilot/config/parse_sidecar.c): one table of
 * specs (JSON with single quotes) accepted with a check on the parsed struct, or refused
 * with the message istiod gives; then the warnings and the unsupported-field walker.
 *
 * The cases are istiod's TestValidateSidecar (pkg/config/validation/validation_test.go),
 * named as there, with the message its ValidateSidecar returns first; the IPv6 twins of
 * the IPv4 cases are kept only where the address form matters (defaultEndpoint), and the
 * duplicates ("empty" is "empty ingress and egress") are left out. Every parsed object is
 * released, so ASan's leak checker covers the free paths, half-built ones included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/config/mesh.h"

#define SCX(api, spec)                                                                             \
    "{'apiVersion':'" api "','kind':'Sidecar','metadata':{'name':'foo','namespace':'bar'},"        \
    "'spec':" spec "}"
#define SC(spec) SCX("networking.istio.io/v1", spec)
#define EG(l) SC("{'egress':[" l "]}")
#define IN(l) SC("{'ingress':[" l "],'egress':[{'hosts':['*/*']}]}")
#define PFX "Sidecar bar/foo: "
#define HTTP90 "'port':{'protocol':'http','number':90,'name':'foo'}"
#define TCP90 "'port':{'protocol':'tcp','number':90,'name':'foo'}"
#define POOL "{'http':{'http1MaxPendingRequests':1024,'http2MaxRequests':1024}}"

static cJSON *parse_json(const char *sq)
{
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static const mesh_sidecar *sc_of(const mesh_object *o)
{
    assert_int_equal(o->kind, MESH_KIND_SIDECAR);
    return o->u.sc;
}

static void chk_default(const mesh_object *o)
{
    const mesh_sidecar *s = sc_of(o);
    assert_false(s->has_selector);
    assert_int_equal(s->negress, 1);
    assert_false(s->egress[0].has_port);
    assert_int_equal(s->egress[0].nhosts, 1);
    assert_string_equal(s->egress[0].hosts[0].ns, "*");
    assert_string_equal(s->egress[0].hosts[0].host, "*");
    assert_false(s->egress[0].hosts[0].exclude);
    assert_int_equal(s->outbound_mode, MESH_OUTBOUND_UNSET);
}

static void chk_local(const mesh_object *o)
{
    const mesh_sidecar_host *h = &sc_of(o)->egress[0].hosts[0];
    assert_string_equal(h->ns, "bar"); /* "." is the Sidecar's namespace */
    assert_string_equal(h->host, "foo.com");
}

static void chk_nothing(const mesh_object *o)
{
    const mesh_sidecar_host *h = &sc_of(o)->egress[0].hosts[0];
    assert_true(h->exclude);
    assert_string_equal(h->ns, "*");
    assert_string_equal(h->host, "*");
}

static void chk_except_ns(const mesh_object *o)
{
    const mesh_sidecar_host *h = &sc_of(o)->egress[0].hosts[1];
    assert_true(h->exclude);
    assert_string_equal(h->ns, "ns1");
}

static void chk_uds(const mesh_object *o)
{
    const mesh_sidecar_egress *e = &sc_of(o)->egress[0];
    assert_true(e->has_port);
    assert_int_equal(e->port.number, 0);
    assert_int_equal(e->port.protocol, MESH_PROTO_HTTP);
    assert_string_equal(e->port.name, "uds");
    assert_string_equal(e->bind, "unix:///@foo/bar/com");
}

static void chk_ingress(const mesh_object *o)
{
    const mesh_sidecar_ingress *in = &sc_of(o)->ingress[0];
    assert_int_equal(sc_of(o)->ningress, 1);
    assert_int_equal(in->port.number, 90);
    assert_string_equal(in->port.name, "foo");
    assert_string_equal(in->default_endpoint, "127.0.0.1:9999");
    assert_false(in->has_tls);
    assert_null(in->connection_pool);
}

static void chk_allow_any(const mesh_object *o)
{
    assert_int_equal(sc_of(o)->outbound_mode, MESH_OUTBOUND_ALLOW_ANY);
    assert_false(sc_of(o)->has_egress_proxy);
}

static void chk_egress_proxy(const mesh_object *o)
{
    const mesh_sidecar *s = sc_of(o);
    assert_true(s->has_egress_proxy);
    assert_string_equal(s->egress_proxy.host, "foo.bar");
    assert_string_equal(s->egress_proxy.subset, "shiny");
    assert_int_equal(s->egress_proxy.port, 5000);
}

static void chk_pools(const mesh_object *o)
{
    const mesh_sidecar *s = sc_of(o);
    assert_non_null(s->inbound_connection_pool);
    assert_true(s->inbound_connection_pool->has_http);
    assert_int_equal(s->inbound_connection_pool->http1_max_pending_requests, 1024);
    assert_int_equal(s->inbound_connection_pool->max_retries, -1);
    assert_non_null(s->ingress[0].connection_pool);
    assert_int_equal(s->ingress[0].connection_pool->http2_max_requests, 1024);
}

static void chk_selector(const mesh_object *o)
{
    assert_true(sc_of(o)->has_selector);
    assert_string_equal(mesh_labels_get(&sc_of(o)->selector, "app"), "web");
}

static void chk_tls(const mesh_object *o)
{
    const mesh_sidecar_ingress *in = &sc_of(o)->ingress[0];
    assert_true(in->has_tls);
    assert_int_equal(in->tls.mode, MESH_SERVER_TLS_SIMPLE);
    assert_string_equal(in->tls.server_certificate, "/c.pem");
    assert_int_equal(in->port.protocol, MESH_PROTO_HTTPS);
}

typedef struct {
    const char *name, *json;
    int rc;
    const char *err; /* substring; '=' prefix: the exact message */
    void (*check)(const mesh_object *);
} pcase;

static const pcase cases[] = {
    /* accepted */
    {"default", EG("{'hosts':['*/*']}"), 0, NULL, chk_default},
    {"default v1alpha3", SCX("networking.istio.io/v1alpha3", "{'egress':[{'hosts':['*/*']}]}"), 0,
     NULL, chk_default},
    {"default v1beta1", SCX("networking.istio.io/v1beta1", "{'egress':[{'hosts':['*/*']}]}"), 0,
     NULL, chk_default},
    {"workload selector",
     SC("{'workloadSelector':{'labels':{'app':'web'}},'egress':[{'hosts':['./"
        "*']}]}"),
     0, NULL, chk_selector},
    {"import local namespace with wildcard", EG("{'hosts':['./*']}"), 0, NULL, NULL},
    {"import local namespace with fqdn", EG("{'hosts':['./foo.com']}"), 0, NULL, chk_local},
    {"import nothing", EG("{'hosts':['~/*']}"), 0, NULL, chk_nothing},
    {"import all except a namespace", EG("{'hosts':['*/*','~ns1/*']}"), 0, NULL, chk_except_ns},
    {"import all except an exact host", EG("{'hosts':['*/*','~/foo.com']}"), 0, NULL, NULL},
    {"Port without name", EG("{'port':{'protocol':'http','number':8080},'hosts':['ns1/bar.com']}"),
     0, NULL, NULL},
    {"UDS bind in outbound",
     EG("{'port':{'protocol':'http','number':0,'name':'uds'},'hosts':['ns1/bar.com'],"
        "'bind':'unix:///@foo/bar/com'}"),
     0, NULL, chk_uds},
    {"UDS bind in outbound 2",
     EG("{'port':{'protocol':'http','number':0,'name':'uds'},'hosts':['ns1/bar.com'],"
        "'bind':'unix:///foo/bar/com'}"),
     0, NULL, NULL},
    {"ingress without default endpoint", IN("{" HTTP90 "}"), 0, NULL, NULL},
    {"valid ingress and egress in IPv4", IN("{" HTTP90 ",'defaultEndpoint':'127.0.0.1:9999'}"), 0,
     NULL, chk_ingress},
    {"valid ingress and egress in IPv6", IN("{" HTTP90 ",'defaultEndpoint':'[::1]:9999'}"), 0, NULL,
     NULL},
    {"valid ingress and empty egress in IPv4",
     SC("{'ingress':[{" HTTP90 ",'defaultEndpoint':'127.0.0.1:9999'}]}"), 0, NULL, NULL},
    {"just outbound traffic policy", SC("{'outboundTrafficPolicy':{'mode':'ALLOW_ANY'}}"), 0, NULL,
     chk_allow_any},
    {"empty protocol in IPv4",
     IN("{'port':{'number':90,'name':'foo'},'defaultEndpoint':'127.0.0.1:9999'}"), 0, NULL, NULL},
    {"sidecar egress proxy with ALLOW_ANY",
     SC("{'outboundTrafficPolicy':{'mode':'ALLOW_ANY','egressProxy':{'host':'foo.bar','subset':"
        "'shiny','port':{'number':5000}}},'egress':[{'hosts':['*/*']}]}"),
     0, NULL, chk_egress_proxy},
    {"sidecar egress wildcarded ns", EG("{'hosts':['*/b.com','test/a.com']}"), 0, NULL, NULL},
    {"valid inbound connection pool", SC("{'inboundConnectionPool':" POOL "}"), 0, NULL, NULL},
    {"valid port-level connection pool with top level default",
     SC("{'ingress':[{" HTTP90 ",'connectionPool':" POOL "}],'inboundConnectionPool':" POOL "}"), 0,
     NULL, chk_pools},
    {"ingress tls SIMPLE on an HTTPS port",
     SC("{'ingress':[{'port':{'protocol':'HTTPS','number':443,'name':'https'},'tls':{'mode':"
        "'SIMPLE','serverCertificate':'/c.pem','privateKey':'/k.pem'}}]}"),
     0, NULL, chk_tls},

    /* refused */
    {"empty ingress and egress", SC("{}"), -1,
     "=" PFX "spec: sidecar: empty configuration provided", NULL},
    {"empty lists", SC("{'ingress':[],'egress':[]}"), -1, "sidecar: empty configuration provided",
     NULL},
    {"selector with a wildcard",
     SC("{'workloadSelector':{'labels':{'app':'w*'}},'egress':[{'hosts':['*/*']}]}"), -1,
     "=" PFX "spec.workloadSelector.labels: wildcard is not supported in selector: \"app=w*\"",
     NULL},
    {"exclude with invalid namespace", EG("{'hosts':['*/*','~Invalid_NS/*']}"), -1,
     "=" PFX "spec.egress[0].hosts[1]: invalid namespace value \"~Invalid_NS\" in sidecar", NULL},
    {"bad egress host 1", EG("{'hosts':['*']}"), -1,
     "=" PFX "spec.egress[0].hosts[0]: host must be of form namespace/dnsName", NULL},
    {"bad egress host 2", EG("{'hosts':['/']}"), -1,
     "=" PFX "spec.egress[0].hosts[0]: config namespace and dnsName in host entry cannot be empty",
     NULL},
    {"short name", EG("{'hosts':['ns1/bar']}"), -1,
     "=" PFX "spec.egress[0].hosts[0]: short names (non FQDN) are not allowed", NULL},
    {"bad host label", EG("{'hosts':['ns1/b_r.com']}"), -1,
     "=" PFX "spec.egress[0].hosts[0]: domain name \"b_r.com\" invalid (label \"b_r\" invalid)",
     NULL},
    {"empty egress host", EG("{'hosts':[]}"), -1,
     "=" PFX "spec.egress[0].hosts: sidecar: egress listener must contain at least one host", NULL},
    {"multiple wildcard egress", EG("{'hosts':['*/foo.com']},{'hosts':['ns1/bar.com']}"), -1,
     "=" PFX
     "spec.egress[0]: sidecar: the egress listener with empty port should be the last listener "
     "in the list",
     NULL},
    {"wildcard egress not in end",
     EG("{'hosts':['*/foo.com']},{'port':{'protocol':'http','number':8080,'name':'h8080'},"
        "'hosts':['ns1/bar.com']}"),
     -1, "should be the last listener in the list", NULL},
    {"invalid Port",
     EG("{'port':{'protocol':'http1','number':1000000,'name':''},'hosts':['ns1/bar.com']}"), -1,
     "=" PFX "spec.egress[0].port.protocol: unsupported protocol: http1", NULL},
    {"port out of range",
     EG("{'port':{'protocol':'http','number':1000000},'hosts':['ns1/bar.com']}"), -1,
     "=" PFX "spec.egress[0].port.number: port number 1000000 must be in the range 1..65535", NULL},
    {"invalid port name",
     EG("{'port':{'protocol':'http','number':80,'name':'a_b'},'hosts':['ns1/bar.com']}"), -1,
     "=" PFX "spec.egress[0].port.name: invalid port name: a_b", NULL},
    {"targetPort", EG("{'port':{'number':80,'targetPort':8080},'hosts':['ns1/bar.com']}"), -1,
     "=" PFX "spec.egress[0].port.targetPort: targetPort has no impact on Sidecars", NULL},
    {"UDS bind in inbound",
     SC("{'ingress':[{'port':{'protocol':'http','number':0,'name':'uds'},'bind':'unix:///@foo/"
        "bar/com','defaultEndpoint':'127.0.0.1:9999'}]}"),
     -1, "=" PFX "spec.ingress[0].port.number: port number 0 must be in the range 1..65535", NULL},
    {"invalid bind",
     EG("{'port':{'protocol':'http','number':0,'name':'uds'},'hosts':['ns1/bar.com'],"
        "'bind':'foobar:///@foo/bar/com'}"),
     -1,
     "=" PFX "spec.egress[0].bind: sidecar: ports with 0 value must have a unix domain socket bind "
     "address",
     NULL},
    {"invalid IP bind",
     EG("{'port':{'protocol':'http','number':80},'hosts':['ns1/bar.com'],'bind':'1.2.3'}"), -1,
     "=" PFX "spec.egress[0].bind: 1.2.3 is not a valid IP", NULL},
    {"invalid capture mode with uds bind",
     EG("{'port':{'protocol':'http','number':0,'name':'uds'},'hosts':['ns1/bar.com'],"
        "'bind':'unix:///@foo/bar/com','captureMode':'IPTABLES'}"),
     -1,
     "=" PFX
     "spec.egress[0].captureMode: sidecar: captureMode must be DEFAULT/NONE for unix domain "
     "socket listeners",
     NULL},
    {"duplicate UDS bind",
     EG("{'port':{'protocol':'http','number':0,'name':'uds'},'hosts':['ns1/bar.com'],"
        "'bind':'unix:///@foo/bar/com'},{'port':{'protocol':'http','number':0,'name':'uds'},"
        "'hosts':['ns1/bar.com'],'bind':'unix:///@foo/bar/com'}"),
     -1,
     "=" PFX "spec.egress[1].bind: sidecar: unix domain socket values for listeners must be "
     "unique",
     NULL},
    {"duplicate ports",
     EG("{'port':{'protocol':'http','number':90,'name':'foo'},'hosts':['ns1/bar.com']},"
        "{'port':{'protocol':'tcp','number':90,'name':'tcp'},'hosts':['ns2/bar.com']}"),
     -1, "=" PFX "spec.egress[1].port: sidecar: ports on IP bound listeners must be unique", NULL},
    {"ingress without port", IN("{'defaultEndpoint':'127.0.0.1:110'}"), -1,
     "=" PFX "spec.ingress[0]: sidecar: port is required for ingress listeners", NULL},
    {"ingress with duplicate ports",
     IN("{" HTTP90 ",'defaultEndpoint':'127.0.0.1:110'},{'port':{'protocol':'tcp','number':90,"
        "'name':'bar'},'defaultEndpoint':'127.0.0.1:110'}"),
     -1, "=" PFX "spec.ingress[1].port: sidecar: ports on IP bound listeners must be unique", NULL},
    {"ingress may not be null", IN("null"), -1,
     "=" PFX "spec.ingress[0]: sidecar: ingress may not be null", NULL},
    {"egress may not be null", EG("null"), -1,
     "=" PFX "spec.egress[0]: egress listener may not be null", NULL},
    {"ingress with invalid default endpoint in IPv4",
     SC("{'ingress':[{" HTTP90 ",'defaultEndpoint':'1.1.1.1:90'}]}"), -1,
     "=" PFX "spec.ingress[0].defaultEndpoint: sidecar: defaultEndpoint must be of form "
     "127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset",
     NULL},
    {"ingress with invalid default endpoint in IPv6",
     SC("{'ingress':[{" HTTP90 ",'defaultEndpoint':'[1:1:1:1:1:1:1:1]:90'}]}"), -1,
     "sidecar: defaultEndpoint must be of form", NULL},
    {"ingress with invalid default endpoint uds", IN("{" HTTP90 ",'defaultEndpoint':'unix:///'}"),
     -1, "=" PFX "spec.ingress[0].defaultEndpoint: / is not an absolute path to a file", NULL},
    {"ingress with invalid default endpoint port in IPv4",
     IN("{" HTTP90 ",'defaultEndpoint':'127.0.0.1:hi'}"), -1,
     "=" PFX "spec.ingress[0].defaultEndpoint: sidecar: defaultEndpoint port (hi) is not a number: "
     "strconv.Atoi: parsing \"hi\": invalid syntax",
     NULL},
    {"ingress with invalid default endpoint port in IPv6",
     IN("{" HTTP90 ",'defaultEndpoint':'[::1]:hi'}"), -1,
     "sidecar: defaultEndpoint port (hi) is not a number", NULL},
    {"default endpoint without port", IN("{" HTTP90 ",'defaultEndpoint':'127.0.0.1'}"), -1,
     "=" PFX "spec.ingress[0].defaultEndpoint: address 127.0.0.1: missing port in address", NULL},
    {"default endpoint with too many colons", IN("{" HTTP90 ",'defaultEndpoint':'::1:80'}"), -1,
     "=" PFX "spec.ingress[0].defaultEndpoint: address ::1:80: too many colons in address", NULL},
    {"sidecar egress proxy with RESGISTRY_ONLY(default)",
     SC("{'outboundTrafficPolicy':{'egressProxy':{'host':'foo.bar','subset':'shiny','port':{"
        "'number':5000}}},'egress':[{'hosts':['*/*']}]}"),
     -1,
     "=" PFX "spec.outboundTrafficPolicy.egressProxy: sidecar: egress_proxy must be set only with "
     "ALLOW_ANY outbound_traffic_policy mode",
     NULL},
    {"sidecar egress proxy with ALLOW_ANY, service hostname invalid fqdn",
     SC("{'outboundTrafficPolicy':{'mode':'ALLOW_ANY','egressProxy':{'host':'foobar*123',"
        "'subset':'shiny','port':{'number':5000}}},'egress':[{'hosts':['*/*']}]}"),
     -1,
     "=" PFX
     "spec.outboundTrafficPolicy.egressProxy.host: domain name \"foobar*123\" invalid (label "
     "\"foobar*123\" invalid)",
     NULL},
    {"sidecar egress proxy(without Port) with ALLOW_ANY",
     SC("{'outboundTrafficPolicy':{'mode':'ALLOW_ANY','egressProxy':{'host':'foo.bar','subset':"
        "'shiny'}},'egress':[{'hosts':['*/*']}]}"),
     -1,
     "=" PFX
     "spec.outboundTrafficPolicy.egressProxy.port: sidecar: egress_proxy port must be non-nil",
     NULL},
    {"ALLOW_ANY_DYNAMIC_DNS rejected in sidecar",
     SC("{'outboundTrafficPolicy':{'mode':3},'egress':[{'hosts':['*/*']}]}"), -1,
     "=" PFX
     "spec.outboundTrafficPolicy.mode: sidecar: ALLOW_ANY_DYNAMIC_DNS mode is only supported in "
     "MeshConfig, not in Sidecar resource",
     NULL},
    {"invalid partial wildcard", EG("{'hosts':['test/*a.com']}"), -1,
     "=" PFX "spec.egress[0].hosts[0]: partial wildcard \"*a.com\" not allowed", NULL},
    {"ingress tls mode set to ISTIO_MUTUAL in IPv4",
     SC("{'ingress':[{" HTTP90 ",'defaultEndpoint':'127.0.0.1:9999','tls':{'mode':'ISTIO_MUTUAL'}"
        "}]}"),
     -1,
     "=" PFX
     "spec.ingress[0].tls.mode: configuration is invalid: cannot set mode to ISTIO_MUTUAL in "
     "sidecar ingress tls",
     NULL},
    {"ingress tls mode set to ISTIO_AUTO_PASSTHROUGH in IPv4",
     SC("{'ingress':[{" HTTP90 ",'tls':{'mode':'AUTO_PASSTHROUGH'}}]}"), -1,
     "cannot set mode to AUTO_PASSTHROUGH in sidecar ingress tls", NULL},
    {"ingress tls invalid protocol in IPv4",
     SC("{'ingress':[{" TCP90 ",'tls':{'mode':'SIMPLE'}}]}"), -1,
     "=" PFX "spec.ingress[0].tls: server cannot have TLS settings for non HTTPS/TLS ports", NULL},
    {"ingress tls httpRedirect is not supported in IPv4",
     SC("{'ingress':[{" TCP90 ",'tls':{'mode':'SIMPLE','httpsRedirect':true}}]}"), -1,
     "=" PFX "spec.ingress[0].tls.httpsRedirect: sidecar: httpsRedirect is not supported", NULL},
    {"ingress tls SAN entries are not supported in IPv4",
     SC("{'ingress':[{" TCP90 ",'tls':{'mode':'SIMPLE','subjectAltNames':['httpbin.com']}}]}"), -1,
     "=" PFX
     "spec.ingress[0].tls.subjectAltNames: sidecar: subjectAltNames is not supported in ingress "
     "tls",
     NULL},
    {"ingress tls credentialName is not supported in IPv4",
     SC("{'ingress':[{" TCP90 ",'tls':{'mode':'SIMPLE','credentialName':'secret-name'}}]}"), -1,
     "=" PFX
     "spec.ingress[0].tls.credentialName: sidecar: credentialName is not currently supported",
     NULL},
    {"ingress tls credentialNames is not supported in IPv4",
     SC("{'ingress':[{" TCP90 ",'tls':{'mode':'SIMPLE','credentialNames':['secret-name']}}]}"), -1,
     "sidecar: credentialNames is not currently supported", NULL},
    {"ingress tls tlsCertificates is not supported in IPv4",
     SC("{'ingress':[{" TCP90 ",'tls':{'mode':'SIMPLE','tlsCertificates':[{'serverCertificate':"
        "'/a.crt','privateKey':'/a.key'}]}}]}"),
     -1,
     "=" PFX
     "spec.ingress[0].tls.tlsCertificates: sidecar: tls_certificates is not currently supported",
     NULL},
    {"ingress tls SIMPLE without a certificate",
     SC("{'ingress':[{'port':{'protocol':'TLS','number':443},'tls':{'mode':'SIMPLE'}}]}"), -1,
     "=" PFX "spec.ingress[0].tls: SIMPLE TLS requires a server certificate", NULL},
    {"ingress tls MUTUAL without a CA",
     SC("{'ingress':[{'port':{'protocol':'TLS','number':443},'tls':{'mode':'MUTUAL',"
        "'serverCertificate':'/c','privateKey':'/k'}}]}"),
     -1, "=" PFX "spec.ingress[0].tls: MUTUAL TLS requires a client CA bundle", NULL},
    {"invalid top level connection pool", SC("{'inboundConnectionPool':{}}"), -1,
     "=" PFX "spec.inboundConnectionPool: connection pool must have at least one field", NULL},
    {"invalid port-level connection pool", SC("{'ingress':[{" TCP90 ",'connectionPool':{}}]}"), -1,
     "=" PFX "spec.ingress[0].connectionPool: connection pool must have at least one field", NULL},
    {"negative connection pool value",
     SC("{'inboundConnectionPool':{'tcp':{'maxConnections':-1}}}"), -1,
     "=" PFX "spec.inboundConnectionPool.tcp.maxConnections: max connections must be non-negative",
     NULL},
    {"connection pool duration below 1ms",
     SC("{'inboundConnectionPool':{'http':{'idleTimeout':'100us'}}}"), -1,
     "=" PFX "spec.inboundConnectionPool.http.idleTimeout: duration must be greater than 1ms",
     NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pcase *t = &cases[i];
        cJSON *j = parse_json(t->json);
        char err[512] = "untouched";
        mesh_object o = {0};
        if (!j)
            fail_msg("case %s: test JSON does not parse", t->name);
        int rc = mesh_parse(j, &opts, &o, err, sizeof err);
        if (rc != t->rc)
            fail_msg("case %s: rc %d, want %d (err: %s)", t->name, rc, t->rc, err);
        if (rc == -1) {
            if (t->err[0] == '=' ? strcmp(err, t->err + 1) != 0 : !strstr(err, t->err))
                fail_msg("case %s:\n  got  %s\n  want %s", t->name, err, t->err);
        } else {
            if (t->check)
                t->check(&o);
            mesh_object_release(o);
        }
        cJSON_Delete(j);
    }
}

/* istiod's cases with warn=true, and ones with none. */
static void test_warnings(void **state)
{
    (void)state;
    static const struct {
        const char *name, *json, *want;
    } w[] = {
        {"workload selector without labels",
         SC("{'egress':[{'hosts':['*/*']}],'workloadSelector':{}}"),
         "=" PFX "spec.workloadSelector: sidecar: workload selector specified without labels, will "
         "be applied to all services in namespace"},
        {"sidecar egress only one wildcarded", EG("{'hosts':['*/*','test/a.com']}"),
         "=" PFX "spec.egress[0].hosts: `*/*` host select all resources, no other hosts can be "
         "added"},
        {"sidecar egress duplicated with wildcarded same namespace",
         EG("{'hosts':['test/*','test/a.com']}"),
         "=" PFX "spec.egress[0].hosts[1]: duplicated egress host: test/a.com"},
        {"sidecar egress duplicated with wildcarded same namespace .",
         EG("{'hosts':['./*','bar/a.com']}"), "duplicated egress host: bar/a.com"},
        {"warn http connection settings on tcp port",
         SC("{'ingress':[{" TCP90 ",'connectionPool':" POOL "}]}"),
         "=" PFX "spec.ingress[0].connectionPool.http: sidecar: HTTP connection pool settings are "
         "configured for port 90 (\"foo\") but its protocol is not HTTP (tcp); only TCP settings "
         "will apply"},
        {"invalid cipher suites",
         SC("{'ingress':[{'port':{'protocol':'HTTPS','number':443},'tls':{'mode':'SIMPLE',"
            "'serverCertificate':'/c','privateKey':'/k','cipherSuites':['foo','AES128-SHA','bar',"
            "'AES128-SHA']}}]}"),
         "=" PFX "spec.ingress[0].tls.cipherSuites: ignoring invalid cipher suites: [bar foo]"},
        {"exclusions are not duplicates", EG("{'hosts':['*/*','~/foo.com']}"), NULL},
        {"sidecar egress wildcarded ns", EG("{'hosts':['*/b.com','test/a.com']}"), NULL},
        {"default", EG("{'hosts':['*/*']}"), NULL},
    };
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit"};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        mesh_warnings ws = {0};
        opts.warnings = &ws;
        cJSON *j = parse_json(w[i].json);
        char err[512] = "";
        mesh_object o = {0};
        assert_non_null(j);
        if (mesh_parse(j, &opts, &o, err, sizeof err) != 0)
            fail_msg("%s: refused: %s", w[i].name, err);
        mesh_object_release(o);
        const char *want = w[i].want;
        if (!want && ws.n)
            fail_msg("%s: unexpected warning %s", w[i].name, ws.msg[0]);
        if (want && !ws.n)
            fail_msg("%s: no warning", w[i].name);
        if (want && (want[0] == '=' ? strcmp(ws.msg[0], want + 1) != 0 : !strstr(ws.msg[0], want)))
            fail_msg("%s:\n  got  %s\n  want %s", w[i].name, ws.msg[0], want);
        mesh_warnings_free(&ws);
        cJSON_Delete(j);
    }
}

static void test_unsupported(void **state)
{
    (void)state;
    cJSON *j = parse_json(
        SC("{'workloadSelector':{'labels':{'a':'b'}},'ingress':[{" HTTP90 ",'bind':'0.0.0.0',"
           "'captureMode':'NONE','defaultEndpoint':'127.0.0.1:8080','connectionPool':{'tcp':{"
           "'maxConnections':1,'tcpKeepalive':{'time':'1s'}},'http':{'http2KeepAlive':{"
           "'interval':'1s','timeout':'1s'}}}}],'egress':[{'port':{'number':80},'hosts':['*/*']}],"
           "'outboundTrafficPolicy':{'mode':'ALLOW_ANY','egressProxy':{'host':'a.b','port':{"
           "'number':1}}},'inboundConnectionPool':{'http':{'maxRetries':1}},'futureField':1}"));
    char **paths = NULL;
    size_t n = 0;
    mesh_unsupported_fields(j, &paths, &n);
    assert_int_equal(n, 2);
    assert_string_equal(paths[0], "spec.ingress[].connectionPool.http.http2KeepAlive");
    assert_string_equal(paths[1], "spec.futureField");
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
