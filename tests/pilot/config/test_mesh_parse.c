/* test_mesh_parse: the mesh model parser and validator (pilot/mesh_parse*.c).
 *
 * One table of cases: a Kubernetes-shaped object (JSON written with single quotes for
 * readability, turned into double quotes before parsing), the expected return code, a
 * substring the error must contain (or the exact error when it starts with '='), and an
 * optional check on the parsed struct. Then small tables for the helpers (host
 * resolution, protocols, labels, kinds) and the unsupported-field walker. Every parsed
 * object is released, so ASan's leak checker covers the free paths too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/config/mesh.h"

/* ---- object builders -------------------------------------------------------------- */

#define META(ns, name) "'metadata':{'name':'" name "','namespace':'" ns "'}"
#define ISTIO(kind, ns, name, spec)                                                                \
    "{'apiVersion':'networking.istio.io/v1','kind':'" kind "'," META(ns, name) ",'spec':" spec "}"
#define VS(spec) ISTIO("VirtualService", "default", "reviews", spec)
#define DR(spec) ISTIO("DestinationRule", "default", "reviews", spec)
#define GW(spec) ISTIO("Gateway", "default", "gw", spec)
#define SE(spec) ISTIO("ServiceEntry", "default", "ext", spec)
/* a VirtualService with one HTTP route whose body is r */
#define VSR(r) VS("{'hosts':['reviews'],'http':[" r "]}")
#define DEST(h) "{'destination':{'host':'" h "'}}"
#define ROUTE1 "'route':[" DEST("reviews") "]"

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

/* ---- per-case checks ----------------------------------------------------------------- */

static void chk_namespace(const mesh_object *o)
{
    assert_int_equal(o->kind, MESH_KIND_NAMESPACE);
    assert_string_equal(o->u.ns->meta.name, "prod");
    assert_string_equal(o->u.ns->meta.ns, "");
    assert_string_equal(mesh_labels_get(&o->u.ns->meta.labels, "istio-injection"), "enabled");
}

static void chk_service(const mesh_object *o)
{
    const mesh_k8s_service *s = o->u.svc;
    assert_int_equal(o->kind, MESH_KIND_SERVICE);
    assert_string_equal(s->meta.ns, "default"); /* missing namespace */
    assert_string_equal(s->meta.resource_version, "42");
    assert_string_equal(s->meta.source, "unit");
    assert_string_equal(s->type, "ClusterIP");
    assert_int_equal(s->ncluster_ips, 1);
    assert_string_equal(s->cluster_ips[0], "10.96.0.10");
    assert_false(s->headless);
    assert_true(s->has_selector);
    assert_string_equal(mesh_labels_get(&s->selector, "app"), "reviews");
    assert_int_equal(s->nports, 3);
    assert_string_equal(s->ports[0].name, "http");
    assert_int_equal(s->ports[0].port, 9080);
    assert_int_equal(s->ports[0].target_port, 9080); /* defaulted to port */
    assert_string_equal(s->ports[0].protocol, "TCP");
    assert_int_equal(s->ports[1].target_port, 0);
    assert_string_equal(s->ports[1].target_port_name, "grpc-port");
    assert_string_equal(s->ports[1].app_protocol, "grpc");
    assert_int_equal(s->ports[2].target_port, 8443); /* quoted number */
    assert_string_equal(s->ports[2].protocol, "UDP");
}

static void chk_headless(const mesh_object *o)
{
    assert_true(o->u.svc->headless);
    assert_int_equal(o->u.svc->ncluster_ips, 0);
    assert_false(o->u.svc->has_selector);
}

static void chk_dualstack(const mesh_object *o)
{
    assert_int_equal(o->u.svc->ncluster_ips, 2);
    assert_string_equal(o->u.svc->cluster_ips[1], "fd00::a");
}

static void chk_pod(const mesh_object *o)
{
    const mesh_pod *p = o->u.pod;
    assert_int_equal(o->kind, MESH_KIND_POD);
    assert_string_equal(mesh_labels_get(&p->meta.labels, "app"), "reviews");
    assert_int_equal(p->meta.annotations.n, 0); /* dropped */
    assert_int_equal(p->nips, 2);
    assert_string_equal(p->ips[0], "10.1.0.5");
    assert_string_equal(p->ips[1], "fd00::5");
    assert_string_equal(p->service_account, "bookinfo-reviews");
    assert_string_equal(p->node_name, "node-1");
    assert_string_equal(p->phase, "Running");
    assert_true(p->ready);
}

static void chk_pod_defaults(const mesh_object *o)
{
    const mesh_pod *p = o->u.pod;
    assert_string_equal(p->service_account, "default");
    assert_int_equal(p->nips, 1);
    assert_string_equal(p->ips[0], "10.1.0.6");
    assert_false(p->ready);
}

static void chk_endpoints(const mesh_object *o)
{
    const mesh_endpoint_slice *s = o->u.slice;
    assert_int_equal(o->kind, MESH_KIND_ENDPOINTS);
    assert_string_equal(s->service_name, "reviews");
    assert_string_equal(s->address_type, "IPv4");
    assert_int_equal(s->nendpoints, 3);
    assert_string_equal(s->endpoints[0].addresses[0], "10.1.0.5");
    assert_true(s->endpoints[0].ready);
    assert_string_equal(s->endpoints[0].target_pod, "reviews-v1-abc");
    assert_string_equal(s->endpoints[0].target_ns, "default");
    assert_string_equal(s->endpoints[0].node_name, "node-1");
    assert_true(s->endpoints[1].ready);
    assert_null(s->endpoints[1].target_pod);
    assert_false(s->endpoints[2].ready);
    assert_int_equal(s->nports, 1);
    assert_string_equal(s->ports[0].name, "http");
    assert_int_equal(s->ports[0].port, 9080);
}

static void chk_slice(const mesh_object *o)
{
    const mesh_endpoint_slice *s = o->u.slice;
    assert_int_equal(o->kind, MESH_KIND_ENDPOINT_SLICE);
    assert_string_equal(s->service_name, "reviews");
    assert_string_equal(s->address_type, "IPv4");
    assert_int_equal(s->nendpoints, 2);
    assert_true(s->endpoints[0].ready); /* missing ready = ready */
    assert_true(s->endpoints[0].serving);
    assert_string_equal(s->endpoints[0].zone, "us-east-1a");
    assert_string_equal(s->endpoints[0].target_pod, "reviews-v1-abc");
    assert_false(s->endpoints[1].ready);
    assert_true(s->endpoints[1].terminating);
    assert_int_equal(s->nports, 2);
    assert_string_equal(s->ports[0].name, "http");
    assert_string_equal(s->ports[0].app_protocol, "http");
    assert_string_equal(s->ports[1].name, ""); /* unnamed */
    assert_string_equal(s->ports[1].protocol, "TCP");
}

static void chk_vs_basic(const mesh_object *o)
{
    const mesh_virtual_service *v = o->u.vs;
    assert_int_equal(o->kind, MESH_KIND_VIRTUAL_SERVICE);
    assert_int_equal(v->nhosts, 1);
    assert_string_equal(v->hosts[0], "reviews");
    assert_string_equal(v->fqdn_hosts[0], "reviews.default.svc.cluster.local");
    assert_int_equal(v->ngateways, 1);
    assert_string_equal(v->gateways[0], "mesh");
    assert_int_equal(v->nhttp, 1);
    assert_int_equal(v->http[0].nroute, 1);
    assert_int_equal(v->http[0].route[0].weight, 100);
    assert_string_equal(v->http[0].route[0].destination.host, "reviews.default.svc.cluster.local");
    assert_string_equal(v->http[0].route[0].destination.subset, "v1");
    assert_int_equal(v->http[0].timeout_ns, -1);
    assert_false(v->http[0].has_retries);
}

static void chk_vs_weights(const mesh_object *o)
{
    const mesh_http_route *r = &o->u.vs->http[0];
    assert_int_equal(r->nroute, 2);
    assert_int_equal(r->route[0].weight, 80);
    assert_int_equal(r->route[1].weight, 20);
    assert_int_equal(r->route[0].destination.port, 9080);
    assert_string_equal(r->route[1].destination.host, "reviews.prod.svc.cluster.local");
}

static void chk_vs_gateways(const mesh_object *o)
{
    const mesh_virtual_service *v = o->u.vs;
    assert_int_equal(v->ngateways, 5);
    assert_string_equal(v->gateways[0], "default/bookinfo-gateway");
    assert_string_equal(v->gateways[1], "default/gw2");
    assert_string_equal(v->gateways[2], "istio-system/ingress");
    assert_string_equal(v->gateways[3], "mesh");
    assert_string_equal(v->gateways[4], "prod/old-style");
    assert_string_equal(v->fqdn_hosts[0], "bookinfo.example.com");
    assert_string_equal(v->fqdn_hosts[1], "*.example.com");
    assert_int_equal(v->http[0].nmatches, 1);
    assert_int_equal(v->http[0].matches[0].ngateways, 1);
    assert_string_equal(v->http[0].matches[0].gateways[0], "default/bookinfo-gateway");
}

static void chk_vs_match(const mesh_object *o)
{
    const mesh_http_match *m = &o->u.vs->http[0].matches[0];
    assert_string_equal(m->name, "m1");
    assert_int_equal(m->uri.kind, MESH_MATCH_PREFIX);
    assert_string_equal(m->uri.value, "/api");
    assert_int_equal(m->method.kind, MESH_MATCH_EXACT);
    assert_int_equal(m->nheaders, 3);
    assert_string_equal(m->headers[0].name, "end-user");
    assert_int_equal(m->headers[0].match.kind, MESH_MATCH_EXACT);
    assert_string_equal(m->headers[0].match.value, "jason");
    assert_false(m->headers[0].present);
    assert_string_equal(m->headers[1].name, "x-present");
    assert_true(m->headers[1].present);
    assert_string_equal(m->headers[2].name, "x-debug");
    assert_true(m->headers[2].invert);
    assert_int_equal(m->headers[2].match.kind, MESH_MATCH_REGEX);
    assert_int_equal(m->nquery_params, 1);
    assert_string_equal(m->query_params[0].name, "v");
    assert_int_equal(m->port, 9080);
    assert_string_equal(mesh_labels_get(&m->source_labels, "app"), "productpage");
    assert_string_equal(m->source_namespace, "prod");
    assert_true(m->ignore_uri_case);
}

static void chk_vs_features(const mesh_object *o)
{
    const mesh_http_route *r = &o->u.vs->http[0];
    assert_int_equal(r->timeout_ns, 1500000000LL);
    assert_true(r->has_retries);
    assert_int_equal(r->retries.attempts, 3);
    assert_int_equal(r->retries.per_try_timeout_ns, 2000000000LL);
    assert_string_equal(r->retries.retry_on, "gateway-error,connect-failure,503");
    assert_true(r->has_fault_delay);
    assert_true(r->fault_delay.percent > 9.9 && r->fault_delay.percent < 10.1);
    assert_int_equal(r->fault_delay.fixed_delay_ns, 5000000000LL);
    assert_true(r->has_fault_abort);
    assert_int_equal(r->fault_abort.http_status, 503);
    assert_true(r->has_mirror);
    assert_string_equal(r->mirror.host, "reviews.default.svc.cluster.local");
    assert_true(r->mirror_percent > 49.9 && r->mirror_percent < 50.1);
    assert_true(r->has_cors);
    assert_int_equal(r->cors.nallow_origins, 1);
    assert_int_equal(r->cors.allow_origins[0].kind, MESH_MATCH_EXACT);
    assert_int_equal(r->cors.nallow_methods, 2);
    assert_int_equal(r->cors.max_age_ns, 86400000000000LL);
    assert_int_equal(r->cors.allow_credentials, 0);
    assert_true(r->has_rewrite);
    assert_string_equal(r->rewrite.uri, "/v2");
    assert_int_equal(r->headers.request.nset, 1);
    assert_string_equal(r->headers.request.set[0].key, "x-a");
    assert_int_equal(r->headers.response.nremove, 1);
    assert_int_equal(r->route[0].headers.request.nadd, 1);
}

static void chk_vs_redirect(const mesh_object *o)
{
    const mesh_http_route *r = &o->u.vs->http[0];
    assert_true(r->has_redirect);
    assert_string_equal(r->redirect.uri, "/new");
    assert_int_equal(r->redirect.redirect_code, 302);
    assert_int_equal(r->nroute, 0);
    const mesh_http_route *d = &o->u.vs->http[1];
    assert_true(d->has_direct_response);
    assert_int_equal(d->direct_response.status, 503);
    assert_string_equal(d->direct_response.body, "down");
}

static void chk_vs_l4(const mesh_object *o)
{
    const mesh_virtual_service *v = o->u.vs;
    assert_int_equal(v->nhttp, 0);
    assert_int_equal(v->ntcp, 1);
    assert_int_equal(v->tcp[0].nmatches, 1);
    assert_int_equal(v->tcp[0].matches[0].port, 27017);
    assert_int_equal(v->tcp[0].nroute, 2);
    assert_int_equal(v->tcp[0].route[1].weight, 40);
    assert_int_equal(v->ntls, 1);
    assert_int_equal(v->tls[0].matches[0].nsni_hosts, 1);
    assert_string_equal(v->tls[0].matches[0].sni_hosts[0], "login.example.com");
}

static void chk_vs_delegate(const mesh_object *o)
{
    assert_int_equal(o->u.vs->nhosts, 0);
    assert_int_equal(o->u.vs->nhttp, 1);
}

static void chk_dr(const mesh_object *o)
{
    const mesh_destination_rule *d = o->u.dr;
    assert_int_equal(o->kind, MESH_KIND_DESTINATION_RULE);
    assert_string_equal(d->host, "reviews");
    assert_string_equal(d->fqdn_host, "reviews.default.svc.cluster.local");
    assert_non_null(d->policy);
    assert_int_equal(d->policy->lb, MESH_LB_LEAST_REQUEST);
    assert_true(d->policy->has_connection_pool);
    assert_int_equal(d->policy->connection_pool.tcp_max_connections, 100);
    assert_int_equal(d->policy->connection_pool.tcp_connect_timeout_ns, 30000000LL);
    assert_int_equal(d->policy->connection_pool.http1_max_pending_requests, 10);
    assert_int_equal(d->policy->connection_pool.http2_max_requests, -1);
    assert_true(d->policy->has_outlier_detection);
    assert_int_equal(d->policy->outlier_detection.consecutive_5xx_errors, 7);
    assert_int_equal(d->policy->outlier_detection.interval_ns, 300000000000LL);
    assert_int_equal(d->policy->outlier_detection.max_ejection_percent, 100);
    assert_true(d->policy->has_tls);
    assert_int_equal(d->policy->tls.mode, MESH_TLS_ISTIO_MUTUAL);
    assert_int_equal(d->nport_policies, 1);
    assert_int_equal(d->port_policies[0].port, 9080);
    assert_int_equal(d->port_policies[0].policy.lb, MESH_LB_RANDOM);
    assert_int_equal(d->nsubsets, 2);
    assert_string_equal(d->subsets[0].name, "v1");
    assert_string_equal(mesh_labels_get(&d->subsets[0].labels, "version"), "v1");
    assert_null(d->subsets[0].policy);
    assert_non_null(d->subsets[1].policy);
    assert_int_equal(d->subsets[1].policy->lb, MESH_LB_RING_HASH);
    assert_string_equal(d->subsets[1].policy->hash.http_header_name, "x-user");
    assert_int_equal(d->subsets[1].policy->hash.minimum_ring_size, 1024);
    assert_int_equal(d->nexport_to, 1);
}

static void chk_dr_fqdn(const mesh_object *o)
{
    assert_string_equal(o->u.dr->fqdn_host, "*.example.com");
    assert_null(o->u.dr->policy);
}

static void chk_gw(const mesh_object *o)
{
    const mesh_gateway *g = o->u.gw;
    assert_int_equal(o->kind, MESH_KIND_GATEWAY);
    assert_string_equal(mesh_labels_get(&g->selector, "istio"), "ingressgateway");
    assert_int_equal(g->nservers, 2);
    assert_int_equal(g->servers[0].port, 8080);
    assert_string_equal(g->servers[0].port_name, "http");
    assert_int_equal(g->servers[0].protocol, MESH_PROTO_HTTP);
    assert_int_equal(g->servers[0].nhosts, 3);
    assert_string_equal(g->servers[0].hosts[0], "*");
    assert_string_equal(g->servers[0].host_namespaces[0], "*");
    assert_string_equal(g->servers[0].hosts[1], "bookinfo.example.com");
    assert_string_equal(g->servers[0].host_namespaces[1], "prod");
    assert_string_equal(g->servers[0].host_namespaces[2], ".");
    assert_true(g->servers[0].has_tls);
    assert_true(g->servers[0].tls.https_redirect);
    assert_int_equal(g->servers[1].protocol, MESH_PROTO_HTTPS);
    assert_int_equal(g->servers[1].tls.mode, MESH_SERVER_TLS_SIMPLE);
    assert_string_equal(g->servers[1].tls.credential_name, "bookinfo-cert");
    assert_string_equal(g->servers[1].name, "https-server");
}

static void chk_se_dns(const mesh_object *o)
{
    const mesh_service_entry *s = o->u.se;
    assert_int_equal(o->kind, MESH_KIND_SERVICE_ENTRY);
    assert_int_equal(s->nhosts, 1);
    assert_true(s->mesh_external);
    assert_int_equal(s->resolution, MESH_RESOLUTION_DNS);
    assert_int_equal(s->nports, 2);
    assert_int_equal(s->ports[0].protocol, MESH_PROTO_HTTP);
    assert_int_equal(s->ports[1].protocol, MESH_PROTO_TLS);
    assert_int_equal(s->ports[1].target_port, 8443);
}

static void chk_se_static(const mesh_object *o)
{
    const mesh_service_entry *s = o->u.se;
    assert_false(s->mesh_external);
    assert_int_equal(s->resolution, MESH_RESOLUTION_CLIENT_SIDE_LB);
    assert_int_equal(s->naddresses, 1);
    assert_int_equal(s->nendpoints, 2);
    assert_string_equal(s->endpoints[0].address, "10.0.0.1");
    assert_string_equal(mesh_labels_get(&s->endpoints[0].ports, "http"), "8080");
    assert_string_equal(mesh_labels_get(&s->endpoints[0].labels, "version"), "v1");
    assert_int_equal(s->endpoints[0].weight, 8);
    assert_string_equal(s->endpoints[1].locality, "us/east");
    assert_int_equal(s->ports[0].protocol, MESH_PROTO_HTTP); /* from the name */
}

static void chk_se_empty_protocol(const mesh_object *o)
{
    /* protocol "" is unset: the port name decides, as without the field */
    assert_int_equal(o->u.se->ports[0].protocol, MESH_PROTO_HTTP);
}

static void chk_se_none(const mesh_object *o)
{
    assert_int_equal(o->u.se->resolution, MESH_RESOLUTION_PASSTHROUGH);
    assert_true(o->u.se->mesh_external);
}

/* ---- the table -------------------------------------------------------------------------- */

typedef struct pcase {
    const char *name;
    const char *json;
    int rc;
    const char *err; /* substring, or "=exact" */
    void (*check)(const mesh_object *o);
} pcase;

static const pcase cases[] = {
    /* kinds */
    {"deployment skipped", "{'apiVersion':'apps/v1','kind':'Deployment'," META("default", "d") "}",
     -2, NULL, NULL},
    {"unknown istio version skipped",
     "{'apiVersion':'networking.istio.io/v2','kind':'VirtualService'," META("default",
                                                                            "x") ",'spec':{}}",
     -2, NULL, NULL},
    {"envoyfilter skipped", ISTIO("EnvoyFilter", "default", "s", "{}"), -2, NULL, NULL},
    {"sidecar judged", ISTIO("Sidecar", "default", "s", "{}"), -1,
     "spec: sidecar: empty configuration provided", NULL},
    {"no kind skipped", "{'apiVersion':'v1'}", -2, NULL, NULL},

    /* metadata */
    {"namespace",
     "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'prod','labels':{'istio-injection':'"
     "enabled'}}}",
     0, NULL, chk_namespace},
    {"namespace bad name", "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'Prod'}}", -1,
     "=Namespace Prod: metadata.name: Prod is not a valid DNS-1123 label", NULL},
    {"missing metadata", "{'apiVersion':'v1','kind':'Service'}", -1,
     "Service default/: metadata: required", NULL},
    {"missing name", "{'apiVersion':'v1','kind':'Service','metadata':{'namespace':'a'}}", -1,
     "=Service a/: metadata.name: required", NULL},
    {"name not a string", "{'apiVersion':'v1','kind':'Service','metadata':{'name':5}}", -1,
     "metadata.name: must be a string", NULL},
    {"label not a string",
     "{'apiVersion':'v1','kind':'Service','metadata':{'name':'s','labels':{'a':1}}}", -1,
     "=Service default/s: metadata.labels: value of a must be a string", NULL},
    {"bad namespace",
     "{'apiVersion':'v1','kind':'Service','metadata':{'name':'s','namespace':'A_B'}}", -1,
     "metadata.namespace: A_B is not a valid DNS-1123 label", NULL},

    /* Service */
    {"service",
     "{'apiVersion':'v1','kind':'Service','metadata':{'name':'reviews','resourceVersion':'42'},"
     "'spec':{'clusterIP':'10.96.0.10','selector':{'app':'reviews'},'ports':["
     "{'name':'http','port':9080},"
     "{'name':'grpc','port':7070,'targetPort':'grpc-port','appProtocol':'grpc'},"
     "{'name':'dns','port':53,'targetPort':'8443','protocol':'UDP'}]}}",
     0, NULL, chk_service},
    {"service headless",
     "{'apiVersion':'v1','kind':'Service'," META(
         "default", "h") ",'spec':{'clusterIP':'None','ports':[{'port':80}]}}",
     0, NULL, chk_headless},
    {"service dual stack",
     "{'apiVersion':'v1','kind':'Service'," META(
         "default", "d") ",'spec':{'clusterIP':'10.0.0.1','clusterIPs':['10.0.0.1','fd00::a']}}",
     0, NULL, chk_dualstack},
    {"service port range",
     "{'apiVersion':'v1','kind':'Service'," META("default",
                                                 "s") ",'spec':{'ports':[{'port':70000}]}}",
     -1, "=Service default/s: spec.ports[0].port: port number 70000 must be in the range 1..65535",
     NULL},
    {"service port missing",
     "{'apiVersion':'v1','kind':'Service'," META("default",
                                                 "s") ",'spec':{'ports':[{'name':'x'}]}}",
     -1, "spec.ports[0].port: required", NULL},
    {"service bad cluster ip",
     "{'apiVersion':'v1','kind':'Service'," META("default", "s") ",'spec':{'clusterIP':'abc'}}", -1,
     "spec.clusterIPs[0]: abc is not an IP address", NULL},

    /* Pod */
    {"pod",
     "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'reviews-v1-abc','namespace':'default',"
     "'labels':{'app':'reviews'},'annotations':{'big':'blob'}},"
     "'spec':{'serviceAccountName':'bookinfo-reviews','nodeName':'node-1'},"
     "'status':{'phase':'Running','podIP':'10.1.0.5','podIPs':[{'ip':'10.1.0.5'},{'ip':'fd00::5'}],"
     "'conditions':[{'type':'Initialized','status':'True'},{'type':'Ready','status':'True'}]}}",
     0, NULL, chk_pod},
    {"pod defaults",
     "{'apiVersion':'v1','kind':'Pod'," META(
         "default", "p") ",'spec':{},'status':{'podIP':'10.1.0.6','conditions':[{'type':'Ready','"
                         "status':'False'}]}}",
     0, NULL, chk_pod_defaults},
    {"pod bad ip",
     "{'apiVersion':'v1','kind':'Pod'," META("default", "p") ",'status':{'podIP':'nope'}}", -1,
     "status.podIP: invalid ip", NULL},

    /* Endpoints, EndpointSlice */
    {"endpoints",
     "{'apiVersion':'v1','kind':'Endpoints'," META(
         "default", "reviews") ",'subsets':["
                               "{'addresses':[{'ip':'10.1.0.5','nodeName':'node-1','targetRef':{'"
                               "kind':'Pod','name':'reviews-v1-abc','namespace':'default'}},"
                               "{'ip':'10.1.0.6'}],'notReadyAddresses':[{'ip':'10.1.0.7'}],'ports':"
                               "[{'name':'http','port':9080,'protocol':'TCP'}]}]}",
     0, NULL, chk_endpoints},
    {"endpoints bad ip",
     "{'apiVersion':'v1','kind':'Endpoints'," META("default",
                                                   "r") ",'subsets':[{'addresses':[{'ip':'x'}]}]}",
     -1, "=Endpoints default/r: subsets[0].addresses[0].ip: a valid IP address is required", NULL},
    {"endpoint slice",
     "{'apiVersion':'discovery.k8s.io/"
     "v1','kind':'EndpointSlice','metadata':{'name':'reviews-abc','namespace':'default',"
     "'labels':{'kubernetes.io/service-name':'reviews'}},'addressType':'IPv4','endpoints':["
     "{'addresses':['10.1.0.5'],'zone':'us-east-1a','targetRef':{'kind':'Pod','name':'reviews-v1-"
     "abc','namespace':'default'}},"
     "{'addresses':['10.1.0.6'],'conditions':{'ready':false,'terminating':true}}],"
     "'ports':[{'name':'http','port':9080,'protocol':'TCP','appProtocol':'http'},{'port':15020}]}",
     0, NULL, chk_slice},
    {"endpoint slice v1beta1",
     "{'apiVersion':'discovery.k8s.io/v1beta1','kind':'EndpointSlice','metadata':{'name':'x',"
     "'labels':{'kubernetes.io/service-name':'x'}},'addressType':'IPv4'}",
     0, NULL, NULL},
    {"endpoint slice no service",
     "{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice'," META(
         "default", "x") ",'addressType':'IPv4'}",
     -1, "kubernetes.io/service-name is required", NULL},
    {"endpoint slice bad ready",
     "{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':{'name':'x',"
     "'labels':{'kubernetes.io/service-name':'x'}},'addressType':'IPv4','endpoints':["
     "{'addresses':['10.0.0.1'],'conditions':{'ready':'yes'}}]}",
     -1, "endpoints[0].conditions.ready: must be a boolean", NULL},

    /* VirtualService: basics and hosts */
    {"vs basic",
     VS("{'hosts':['reviews'],'http':[{'route':[{'destination':{'host':'reviews','subset':'v1'}}]}]"
        "}"),
     0, NULL, chk_vs_basic},
    {"vs v1alpha3",
     "{'apiVersion':'networking.istio.io/v1alpha3','kind':'VirtualService'," META(
         "default", "r") ",'spec':{'hosts':['r'],'http':[{" ROUTE1 "}]}}",
     0, NULL, NULL},
    {"vs no spec",
     "{'apiVersion':'networking.istio.io/v1','kind':'VirtualService'," META("default", "r") "}", -1,
     "=VirtualService default/r: spec: required", NULL},
    {"vs no routes", VS("{'hosts':['reviews']}"), -1,
     "=VirtualService default/reviews: spec: http, tcp or tls must be provided in virtual service",
     NULL},
    {"vs bad host", VS("{'hosts':['foo_bar.com'],'http':[{" ROUTE1 "}]}"), -1,
     "=VirtualService default/reviews: spec.hosts[0]: invalid DNS label: foo_bar.com", NULL},
    {"vs wildcard inside", VS("{'hosts':['a.*.com'],'http':[{" ROUTE1 "}]}"), -1,
     "spec.hosts[0]: wildcard is only allowed as the leftmost label", NULL},
    {"vs numeric tld", VS("{'hosts':['foo.123'],'http':[{" ROUTE1 "}]}"), -1,
     "top level domain cannot be all-numeric", NULL},
    {"vs ip host", VS("{'hosts':['10.0.0.1'],'http':[{" ROUTE1 "}]}"), 0, NULL, NULL},
    {"vs star on mesh", VS("{'hosts':['*'],'http':[{" ROUTE1 "}]}"), -1,
     "spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway",
     NULL},
    {"vs star on gateway", VS("{'hosts':['*'],'gateways':['gw'],'http':[{" ROUTE1 "}]}"), 0, NULL,
     NULL},
    {"vs hosts not list", VS("{'hosts':'reviews','http':[{" ROUTE1 "}]}"), -1,
     "spec.hosts: must be a list", NULL},
    {"vs gateways",
     VS("{'hosts':['bookinfo.example.com','*.example.com'],'gateways':['bookinfo-gateway','./gw2',"
        "'istio-system/ingress','mesh','old-style.prod.svc.cluster.local'],"
        "'http':[{'match':[{'gateways':['bookinfo-gateway']}]," ROUTE1 "}]}"),
     0, NULL, chk_vs_gateways},
    {"vs bad gateway ns", VS("{'hosts':['r'],'gateways':['Bad_ns/gw'],'http':[{" ROUTE1 "}]}"), -1,
     "spec.gateways[0]: invalid value for namespace: Bad_ns", NULL},
    {"vs delegate (no hosts)", VS("{'http':[{" ROUTE1 "}]}"), 0, NULL, chk_vs_delegate},
    {"vs delegate with gateways", VS("{'gateways':['gw'],'http':[{" ROUTE1 "}]}"), -1,
     "spec.gateways: delegate virtual service must have no gateways specified", NULL},
    {"vs root delegate accepted", VSR("{'delegate':{'name':'r2','namespace':'ns2'}}"), 0, NULL,
     NULL},
    {"vs root delegate with route", VSR("{'delegate':{'name':'r2'}," ROUTE1 "}"), -1,
     "must not specify route", NULL},

    /* routes and weights */
    {"vs weights",
     VSR("{'route':[{'destination':{'host':'reviews','port':{'number':9080}},'weight':80},"
         "{'destination':{'host':'reviews.prod'},'weight':20}]}"),
     0, NULL, chk_vs_weights},
    /* istiod accepts any total (traffic splits in proportion): not 100, over 100 */
    {"vs weights sum not 100",
     VSR("{'route':[{'destination':{'host':'a'},'weight':60},{'destination':{'host':'b'},'weight':"
         "60}]}"),
     0, NULL, NULL},
    {"vs weights total zero", VSR("{'route':[" DEST("a") "," DEST("b") "]}"), -1,
     "=VirtualService default/reviews: spec.http[0].route: total destination weight = 0", NULL},
    {"vs weight over 100", VSR("{'route':[{'destination':{'host':'a'},'weight':101}]}"), 0, NULL,
     NULL},
    {"vs weight negative",
     VSR("{'route':[{'destination':{'host':'a'},'weight':-1}," DEST("b") "]}"), -1,
     "=VirtualService default/reviews: spec.http[0].route[0].weight: weight -1 < 0", NULL},
    {"vs weight zero beside positive",
     VSR("{'route':[{'destination':{'host':'a'},'weight':0},{'destination':{'host':'b'},'weight':"
         "1}]}"),
     0, NULL, NULL},
    {"vs weight string", VSR("{'route':[{'destination':{'host':'a'},'weight':'50'}]}"), -1,
     "spec.http[0].route[0].weight: must be an integer", NULL},
    {"vs weight fraction", VSR("{'route':[{'destination':{'host':'a'},'weight':50.5}]}"), -1,
     "must be an integer", NULL},
    {"vs dest host missing", VSR("{'route':[{'destination':{'subset':'v1'}}]}"), -1,
     "=VirtualService default/reviews: spec.http[0].route[0].destination.host: destination host is "
     "required",
     NULL},
    {"vs destination missing", VSR("{'route':[{'weight':100}]}"), -1,
     "spec.http[0].route[0].destination: destination is required", NULL},
    {"vs dest host star", VSR("{'route':[" DEST("*") "]}"), -1, "invalid destination host *", NULL},
    {"vs dest subset", VSR("{'route':[{'destination':{'host':'a','subset':'V1'}}]}"), -1,
     "spec.http[0].route[0].destination.subset: subset name is invalid: V1", NULL},
    {"vs dest port", VSR("{'route':[{'destination':{'host':'a','port':{'number':0}}}]}"), -1,
     "spec.http[0].route[0].destination.port.number: port number 0 must be in the range 1..65535",
     NULL},
    {"vs no route", VSR("{'timeout':'1s'}"), -1,
     "=VirtualService default/reviews: spec.http[0]: HTTP route, redirect or direct_response is "
     "required",
     NULL},
    {"vs route and redirect", VSR("{" ROUTE1 ",'redirect':{'uri':'/x'}}"), -1,
     "spec.http[0]: HTTP route cannot contain both route and redirect", NULL},
    {"vs route and direct", VSR("{" ROUTE1 ",'directResponse':{'status':200}}"), -1,
     "HTTP route cannot contain both route and direct_response", NULL},
    {"vs redirect and direct", VSR("{'redirect':{'uri':'/x'},'directResponse':{'status':200}}"), -1,
     "HTTP route rule cannot contain both direct_response and redirect", NULL},
    {"vs redirect and fault", VSR("{'redirect':{'uri':'/x'},'fault':{'abort':{'httpStatus':500}}}"),
     -1, "HTTP route cannot contain both fault and redirect", NULL},
    {"vs redirect and direct ok",
     VS("{'hosts':['r'],'http':[{'redirect':{'uri':'/new','redirectCode':302}},"
        "{'directResponse':{'status':503,'body':{'string':'down'}}}]}"),
     0, NULL, chk_vs_redirect},
    {"vs redirect empty", VSR("{'redirect':{}}"), -1,
     "spec.http[0].redirect: redirect must specify URI, authority, scheme, or port", NULL},
    {"vs redirect code", VSR("{'redirect':{'uri':'/x','redirectCode':200}}"), -1,
     "spec.http[0].redirect.redirectCode: 200 is not a valid redirect code, must be 3xx", NULL},
    {"vs direct status", VSR("{'directResponse':{'status':600}}"), -1,
     "spec.http[0].directResponse.status: status 600 must be in the range 200-599", NULL},
    {"vs rewrite empty", VSR("{" ROUTE1 ",'rewrite':{}}"), -1,
     "spec.http[0].rewrite: rewrite must specify URI, authority, or uriRegexRewrite", NULL},
    {"vs rewrite both",
     VSR("{" ROUTE1 ",'rewrite':{'uri':'/a','uriRegexRewrite':{'match':'^/b','rewrite':'/c'}}}"),
     -1, "rewrite may only contain one of URI or UriRegexRewrite", NULL},

    /* matches */
    {"vs match",
     VSR("{'match':[{'name':'m1','uri':{'prefix':'/api'},'method':{'exact':'GET'},"
         "'headers':{'End-User':{'exact':'jason'},'x-present':{}},"
         "'withoutHeaders':{'x-debug':{'regex':'^1$'}},'queryParams':{'v':{'exact':'2'}},"
         "'port':9080,'sourceLabels':{'app':'productpage'},'sourceNamespace':'prod','ignoreUriCase'"
         ":true}]," ROUTE1 "}"),
     0, NULL, chk_vs_match},
    {"vs match two kinds", VSR("{'match':[{'uri':{'exact':'/a','prefix':'/b'}}]," ROUTE1 "}"), -1,
     "=VirtualService default/reviews: spec.http[0].match[0].uri: only one of exact, prefix or "
     "regex may be set",
     NULL},
    {"vs match none", VSR("{'match':[{'uri':{}}]," ROUTE1 "}"), -1,
     "spec.http[0].match[0].uri: one of exact, prefix or regex is required", NULL},
    {"vs match header two kinds",
     VSR("{'match':[{'headers':{'a':{'exact':'1','regex':'2'}}}]," ROUTE1 "}"), -1,
     "spec.http[0].match[0].headers.a: only one of exact, prefix or regex may be set", NULL},
    {"vs match empty scheme prefix", VSR("{'match':[{'scheme':{'prefix':''}}]," ROUTE1 "}"), -1,
     "spec.http[0].match[0].scheme.prefix: prefix string match should not be empty", NULL},
    {"vs match empty uri prefix ok", VSR("{'match':[{'uri':{'prefix':''}}]," ROUTE1 "}"), 0, NULL,
     NULL},
    {"vs match bad regex", VSR("{'match':[{'uri':{'regex':'(abc'}}]," ROUTE1 "}"), -1,
     "spec.http[0].match[0].uri.regex: invalid regex: (abc", NULL},
    {"vs match empty regex", VSR("{'match':[{'uri':{'regex':''}}]," ROUTE1 "}"), -1,
     "regex string match should not be empty", NULL},
    {"vs match re2 regex",
     VSR("{'match':[{'headers':{'cookie':{'regex':'^(.*?;)?(user=dev-123)(;.*)?'}}}]," ROUTE1 "}"),
     0, NULL, NULL},
    {"vs match re2 escapes", VSR("{'match':[{'uri':{'regex':'/v\\\\d+/(?i)items'}}]," ROUTE1 "}"),
     0, NULL, NULL},
    /* RE2 refuses Perl-only constructs that POSIX ERE may take */
    {"vs match lookahead", VSR("{'match':[{'uri':{'regex':'/a(?=b)'}}]," ROUTE1 "}"), -1,
     "spec.http[0].match[0].uri.regex: invalid regex: lookaround is not supported by RE2", NULL},
    {"vs match negative lookbehind", VSR("{'match':[{'uri':{'regex':'(?<!x)y'}}]," ROUTE1 "}"), -1,
     "lookaround is not supported by RE2", NULL},
    {"vs match backreference", VSR("{'match':[{'uri':{'regex':'(a)\\\\1'}}]," ROUTE1 "}"), -1,
     "backreferences are not supported by RE2", NULL},
    {"vs match atomic group", VSR("{'match':[{'uri':{'regex':'(?>ab)c'}}]," ROUTE1 "}"), -1,
     "atomic groups are not supported by RE2", NULL},
    {"vs match possessive", VSR("{'match':[{'uri':{'regex':'a++b'}}]," ROUTE1 "}"), -1,
     "possessive quantifiers are not supported by RE2", NULL},
    {"vs match big repeat", VSR("{'match':[{'uri':{'regex':'a{1001}'}}]," ROUTE1 "}"), -1,
     "bad repetition operator", NULL},
    {"vs match class with paren", VSR("{'match':[{'uri':{'regex':'[(?=]x'}}]," ROUTE1 "}"), 0, NULL,
     NULL},
    {"vs match port", VSR("{'match':[{'port':70000}]," ROUTE1 "}"), -1,
     "spec.http[0].match[0].port", NULL},
    {"vs match source ns", VSR("{'match':[{'sourceNamespace':'Bad'}]," ROUTE1 "}"), -1,
     "sourceNamespace match Bad is invalid", NULL},
    {"vs match not object", VSR("{'match':['x']," ROUTE1 "}"), -1,
     "spec.http[0].match[0]: must be an object", NULL},

    /* timeouts, retries, fault, mirror, cors, headers */
    {"vs features",
     VSR("{"
         "'route':[{'destination':{'host':'reviews'},'headers':{'request':{'add':{'x-b':'2'}}}}],"
         "'timeout':'1.5s','retries':{'attempts':3,'perTryTimeout':'2s','retryOn':'gateway-error,"
         "connect-failure,503'},"
         "'fault':{'delay':{'percentage':{'value':10},'fixedDelay':'5s'},'abort':{'httpStatus':503}"
         "},"
         "'mirror':{'host':'reviews'},'mirrorPercentage':{'value':50},"
         "'corsPolicy':{'allowOrigins':[{'exact':'https://a.com'}],'allowMethods':['GET','POST'],"
         "'maxAge':'24h','allowCredentials':false},'rewrite':{'uri':'/v2'},"
         "'headers':{'request':{'set':{'x-a':'1'}},'response':{'remove':['x-internal']}}}"),
     0, NULL, chk_vs_features},
    {"vs timeout bad", VSR("{" ROUTE1 ",'timeout':'abc'}"), -1,
     "=VirtualService default/reviews: spec.http[0].timeout: invalid duration abc", NULL},
    {"vs timeout zero", VSR("{" ROUTE1 ",'timeout':'0s'}"), -1,
     "spec.http[0].timeout: duration must be greater than 1ms", NULL},
    {"vs timeout sub-ms", VSR("{" ROUTE1 ",'timeout':'1500us'}"), -1,
     "only durations to ms precision", NULL},
    {"vs timeout number", VSR("{" ROUTE1 ",'timeout':5}"), -1,
     "spec.http[0].timeout: duration must be a string", NULL},
    {"vs retries negative", VSR("{" ROUTE1 ",'retries':{'attempts':-1}}"), -1,
     "spec.http[0].retries.attempts: attempts cannot be negative", NULL},
    {"vs retries zero ok", VSR("{" ROUTE1 ",'retries':{'attempts':0}}"), 0, NULL, NULL},
    {"vs retryOn bad", VSR("{" ROUTE1 ",'retries':{'attempts':2,'retryOn':'5xx,bogus'}}"), -1,
     "spec.http[0].retries.retryOn: bogus is not a valid retryOn policy", NULL},
    {"vs pertry bad", VSR("{" ROUTE1 ",'retries':{'attempts':2,'perTryTimeout':'0.1ms'}}"), -1,
     "spec.http[0].retries.perTryTimeout: duration must be greater than 1ms", NULL},
    {"vs fault empty", VSR("{" ROUTE1 ",'fault':{}}"), -1,
     "spec.http[0].fault: fault must contain at least one of abort or delay", NULL},
    {"vs fault abort status high", VSR("{" ROUTE1 ",'fault':{'abort':{'httpStatus':600}}}"), -1,
     "=VirtualService default/reviews: spec.http[0].fault.abort.httpStatus: HTTP status 600 is not "
     "in range 200-599",
     NULL},
    {"vs fault abort status low", VSR("{" ROUTE1 ",'fault':{'abort':{'httpStatus':199}}}"), -1,
     "HTTP status 199 is not in range 200-599", NULL},
    {"vs fault abort none", VSR("{" ROUTE1 ",'fault':{'abort':{'percentage':{'value':5}}}}"), -1,
     "spec.http[0].fault.abort: abort must specify httpStatus or grpcStatus", NULL},
    {"vs fault abort grpc", VSR("{" ROUTE1 ",'fault':{'abort':{'grpcStatus':'UNAVAILABLE'}}}"), 0,
     NULL, NULL},
    {"vs fault percent high",
     VSR("{" ROUTE1 ",'fault':{'abort':{'httpStatus':500,'percentage':{'value':100.5}}}}"), -1,
     "spec.http[0].fault.abort.percentage: percentage 100.5 must be in range [0..100]", NULL},
    {"vs fault percent negative",
     VSR("{" ROUTE1 ",'fault':{'delay':{'fixedDelay':'1s','percentage':{'value':-1}}}}"), -1,
     "spec.http[0].fault.delay.percentage: percentage -1 must be in range [0..100]", NULL},
    {"vs fault legacy percent",
     VSR("{" ROUTE1 ",'fault':{'delay':{'fixedDelay':'1s','percent':101}}}"), -1,
     "spec.http[0].fault.delay.percent", NULL},
    {"vs fault delay missing", VSR("{" ROUTE1 ",'fault':{'delay':{'percentage':{'value':5}}}}"), -1,
     "spec.http[0].fault.delay.fixedDelay: required", NULL},
    {"vs fault delay tiny", VSR("{" ROUTE1 ",'fault':{'delay':{'fixedDelay':'0.5ms'}}}"), -1,
     "spec.http[0].fault.delay.fixedDelay: duration must be greater than 1ms", NULL},
    {"vs mirror percentage",
     VSR("{" ROUTE1 ",'mirror':{'host':'m'},'mirrorPercentage':{'value':150}}"), -1,
     "spec.http[0].mirrorPercentage: percentage 150 must be in range [0..100]", NULL},
    {"vs mirror bad host", VSR("{" ROUTE1 ",'mirror':{'host':'a..b'}}"), -1,
     "spec.http[0].mirror.host", NULL},
    {"vs cors method", VSR("{" ROUTE1 ",'corsPolicy':{'allowMethods':['GET','FOO']}}"), -1,
     "spec.http[0].corsPolicy.allowMethods[1]: FOO is not a valid HTTP method", NULL},
    {"vs cors maxage fraction", VSR("{" ROUTE1 ",'corsPolicy':{'maxAge':'1500ms'}}"), -1,
     "max_age duration is accurate only to seconds precision", NULL},
    {"vs header op pseudo", VSR("{" ROUTE1 ",'headers':{'response':{'set':{':status':'200'}}}}"),
     -1, "spec.http[0].headers.response.set.:status", NULL},
    {"vs header value type", VSR("{" ROUTE1 ",'headers':{'request':{'set':{'x-a':1}}}}"), -1,
     "spec.http[0].headers.request.set.x-a: must be a string", NULL},

    /* TCP and TLS routes */
    {"vs tcp tls",
     VS("{'hosts':['mongo','login.example.com'],'gateways':['mesh','gw'],"
        "'tcp':[{'match':[{'port':27017,'destinationSubnets':['10.0.0.0/8']}],"
        "'route':[{'destination':{'host':'mongo','port':{'number':27017}},'weight':60},"
        "{'destination':{'host':'mongo2'},'weight':40}]}],"
        "'tls':[{'match':[{'port':443,'sniHosts':['login.example.com']}],"
        "'route':[{'destination':{'host':'login.example.com'}}]}]}"),
     0, NULL, chk_vs_l4},
    {"vs tcp no route", VS("{'hosts':['m'],'tcp':[{'match':[{'port':1}]}]}"), -1,
     "=VirtualService default/reviews: spec.tcp[0].route: at least one route destination is "
     "required",
     NULL},
    {"vs tcp weights not 100",
     VS("{'hosts':['m'],'tcp':[{'route':[{'destination':{'host':'a'},'weight':30},"
        "{'destination':{'host':'b'},'weight':30}]}]}"),
     0, NULL, NULL},
    {"vs tcp weights zero",
     VS("{'hosts':['m'],'tcp':[{'route':[{'destination':{'host':'a'},'weight':0},"
        "{'destination':{'host':'b'},'weight':0}]}]}"),
     -1, "spec.tcp[0].route: total destination weight = 0", NULL},
    {"vs tcp bad subnet",
     VS("{'hosts':['m'],'tcp':[{'match':[{'destinationSubnets':['10.0.0.0/33']}],"
        "'route':[" DEST("a") "]}]}"),
     -1,
     "spec.tcp[0].match[0].destinationSubnets[0]: 10.0.0.0/33 is not a valid IP address or CIDR",
     NULL},
    {"vs tls no match", VS("{'hosts':['a.com'],'tls':[{'route':[" DEST("a.com") "]}]}"), -1,
     "spec.tls[0].match: TLS route must have at least one match condition", NULL},
    {"vs tls no sni",
     VS("{'hosts':['a.com'],'tls':[{'match':[{'port':443}],'route':[" DEST("a.com") "]}]}"), -1,
     "spec.tls[0].match[0].sniHosts: TLS match must have at least one SNI host", NULL},

    /* DestinationRule */
    {"dr",
     DR("{'host':'reviews','exportTo':['.'],'trafficPolicy':{'loadBalancer':{'simple':'LEAST_"
        "REQUEST'},"
        "'connectionPool':{'tcp':{'maxConnections':100,'connectTimeout':'30ms'},'http':{'"
        "http1MaxPendingRequests':10}},"
        "'outlierDetection':{'consecutive5xxErrors':7,'interval':'5m','baseEjectionTime':'15m','"
        "maxEjectionPercent':100},"
        "'tls':{'mode':'ISTIO_MUTUAL'},"
        "'portLevelSettings':[{'port':{'number':9080},'loadBalancer':{'simple':'RANDOM'}}]},"
        "'subsets':[{'name':'v1','labels':{'version':'v1'}},{'name':'v2','labels':{'version':'v2'},"
        "'trafficPolicy':{'loadBalancer':{'consistentHash':{'httpHeaderName':'x-user','"
        "minimumRingSize':1024}}}}]}"),
     0, NULL, chk_dr},
    {"dr wildcard host", DR("{'host':'*.example.com'}"), 0, NULL, chk_dr_fqdn},
    {"dr no host", DR("{'subsets':[]}"), -1,
     "=DestinationRule default/reviews: spec.host: destination rule must have a host", NULL},
    {"dr bad host", DR("{'host':'-bad.com'}"), -1, "spec.host: invalid DNS label: -bad.com", NULL},
    {"dr subset name", DR("{'host':'r','subsets':[{'name':'V_1'}]}"), -1,
     "=DestinationRule default/reviews: spec.subsets[0].name: subset name is invalid: V_1", NULL},
    {"dr subset missing name", DR("{'host':'r','subsets':[{'labels':{'a':'b'}}]}"), -1,
     "spec.subsets[0].name: subset name is invalid", NULL},
    {"dr subset duplicate", DR("{'host':'r','subsets':[{'name':'v1'},{'name':'v1'}]}"), -1,
     "spec.subsets[1].name: duplicate subset name v1", NULL},
    {"dr subset labels", DR("{'host':'r','subsets':[{'name':'v1','labels':{'version':1}}]}"), -1,
     "spec.subsets[0].labels: value of version must be a string", NULL},
    {"dr ejection percent",
     DR("{'host':'r','trafficPolicy':{'outlierDetection':{'maxEjectionPercent':101}}}"), -1,
     "spec.trafficPolicy.outlierDetection.maxEjectionPercent: 101 out of range [0, 100]", NULL},
    {"dr interval zero", DR("{'host':'r','trafficPolicy':{'outlierDetection':{'interval':'0s'}}}"),
     -1, "spec.trafficPolicy.outlierDetection.interval: duration must be greater than 1ms", NULL},
    {"dr max connections negative",
     DR("{'host':'r','trafficPolicy':{'connectionPool':{'tcp':{'maxConnections':-1}}}}"), -1,
     "spec.trafficPolicy.connectionPool.tcp.maxConnections", NULL},
    {"dr mutual no cert", DR("{'host':'r','trafficPolicy':{'tls':{'mode':'MUTUAL'}}}"), -1,
     "spec.trafficPolicy.tls: client certificate required for mutual tls", NULL},
    {"dr mutual credential",
     DR("{'host':'r','trafficPolicy':{'tls':{'mode':'MUTUAL','credentialName':'c'}}}"), 0, NULL,
     NULL},
    {"dr istio mutual with cert",
     DR("{'host':'r','trafficPolicy':{'tls':{'mode':'ISTIO_MUTUAL','clientCertificate':'/a'}}}"),
     -1, "if mode is ISTIO_MUTUAL", NULL},
    {"dr tls mode", DR("{'host':'r','trafficPolicy':{'tls':{'mode':'STRICT'}}}"), -1,
     "spec.trafficPolicy.tls.mode: unknown TLS mode STRICT", NULL},
    {"dr lb both",
     DR("{'host':'r','trafficPolicy':{'loadBalancer':{'simple':'RANDOM','consistentHash':{'"
        "useSourceIp':true}}}}"),
     -1, "spec.trafficPolicy.loadBalancer: only one of simple or consistentHash may be set", NULL},
    {"dr lb unknown", DR("{'host':'r','trafficPolicy':{'loadBalancer':{'simple':'FASTEST'}}}"), -1,
     "spec.trafficPolicy.loadBalancer.simple: unknown load balancer FASTEST", NULL},
    {"dr cookie name",
     DR("{'host':'r','trafficPolicy':{'loadBalancer':{'consistentHash':{'httpCookie':{'ttl':'0s'}}}"
        "}}"),
     -1, "httpCookie: name required for HttpCookie", NULL},
    {"dr port level no port",
     DR("{'host':'r','trafficPolicy':{'portLevelSettings':[{'loadBalancer':{'simple':'RANDOM'}}]}"
        "}"),
     -1, "spec.trafficPolicy.portLevelSettings[0].port: portTrafficPolicy must have valid port",
     NULL},
    {"dr subset policy",
     DR("{'host':'r','subsets':[{'name':'v1','trafficPolicy':{'connectionPool':{'http':{'"
        "idleTimeout':'0s'}}}}]}"),
     -1,
     "spec.subsets[0].trafficPolicy.connectionPool.http.idleTimeout: duration must be greater than "
     "1ms",
     NULL},
    {"dr export to", DR("{'host':'r','exportTo':['*','.']}"), -1,
     "spec.exportTo[0]: * cannot be combined", NULL},

    /* Gateway */
    {"gw",
     GW("{'selector':{'istio':'ingressgateway'},'servers':["
        "{'port':{'number':8080,'name':'http','protocol':'HTTP'},'hosts':['*','prod/"
        "bookinfo.example.com','./a.example.com'],"
        "'tls':{'httpsRedirect':true}},"
        "{'name':'https-server','port':{'number':443,'name':'https','protocol':'HTTPS'},'hosts':['"
        "bookinfo.example.com'],"
        "'tls':{'mode':'SIMPLE','credentialName':'bookinfo-cert'}}]}"),
     0, NULL, chk_gw},
    {"gw no servers", GW("{'selector':{'istio':'ingressgateway'}}"), -1,
     "=Gateway default/gw: spec.servers: gateway must have at least one server", NULL},
    {"gw no port", GW("{'servers':[{'hosts':['*']}]}"), -1,
     "spec.servers[0].port: server must have a port", NULL},
    {"gw no number", GW("{'servers':[{'port':{'protocol':'HTTP'},'hosts':['*']}]}"), -1,
     "=Gateway default/gw: spec.servers[0].port.number: port number is required", NULL},
    {"gw port range", GW("{'servers':[{'port':{'number':65536,'protocol':'HTTP'},'hosts':['*']}]}"),
     -1, "spec.servers[0].port.number: port number 65536 must be in the range 1..65535", NULL},
    {"gw no protocol", GW("{'servers':[{'port':{'number':80},'hosts':['*']}]}"), -1,
     "spec.servers[0].port.protocol: protocol must be set", NULL},
    {"gw bad protocol", GW("{'servers':[{'port':{'number':80,'protocol':'SPDY'},'hosts':['*']}]}"),
     -1, "spec.servers[0].port.protocol: invalid protocol SPDY", NULL},
    {"gw no hosts", GW("{'servers':[{'port':{'number':80,'protocol':'HTTP'}}]}"), -1,
     "spec.servers[0].hosts: server config must contain at least one host", NULL},
    {"gw bad host ns",
     GW("{'servers':[{'port':{'number':80,'protocol':'HTTP'},'hosts':['Bad_NS/a.com']}]}"), -1,
     "spec.servers[0].hosts[0]: invalid namespace value Bad_NS in host Bad_NS/a.com", NULL},
    {"gw bad host",
     GW("{'servers':[{'port':{'number':80,'protocol':'HTTP'},'hosts':['ns/a..com']}]}"), -1,
     "spec.servers[0].hosts[0]: invalid DNS label", NULL},
    {"gw https no tls",
     GW("{'servers':[{'port':{'number':443,'protocol':'HTTPS'},'hosts':['*']}]}"), -1,
     "spec.servers[0].tls: server must have TLS settings for HTTPS/TLS protocols", NULL},
    {"gw simple no cert",
     GW("{'servers':[{'port':{'number':443,'protocol':'HTTPS'},'hosts':['*'],'tls':{'mode':'SIMPLE'"
        "}}]}"),
     -1, "spec.servers[0].tls: SIMPLE TLS requires a server certificate", NULL},
    {"gw simple files",
     GW("{'servers':[{'port':{'number':443,'protocol':'HTTPS'},'hosts':['*'],"
        "'tls':{'mode':'SIMPLE','serverCertificate':'/c.pem','privateKey':'/k.pem'}}]}"),
     0, NULL, NULL},
    {"gw mutual no ca",
     GW("{'servers':[{'port':{'number':443,'protocol':'HTTPS'},'hosts':['*'],"
        "'tls':{'mode':'MUTUAL','serverCertificate':'/c.pem','privateKey':'/k.pem'}}]}"),
     -1, "MUTUAL TLS requires a client CA bundle", NULL},
    {"gw passthrough",
     GW("{'servers':[{'port':{'number':443,'protocol':'TLS'},'hosts':['*'],'tls':{'mode':'"
        "PASSTHROUGH'}}]}"),
     0, NULL, NULL},
    {"gw tls on http",
     GW("{'servers':[{'port':{'number':80,'protocol':'HTTP'},'hosts':['*'],'tls':{'mode':'SIMPLE','"
        "credentialName':'x'}}]}"),
     -1, "server cannot have TLS settings for plain text HTTP ports", NULL},

    /* ServiceEntry */
    /* DestinationRule warmup bounds and selectors (istiod) */
    {"dr warmup",
     DR("{'host':'r','trafficPolicy':{'loadBalancer':{'simple':'ROUND_ROBIN','warmup':{"
        "'duration':'10s','minimumPercent':10,'aggression':1.5}}}}"),
     0, NULL, NULL},
    {"dr warmup no duration",
     DR("{'host':'r','trafficPolicy':{'loadBalancer':{'warmup':{'minimumPercent':10}}}}"), -1,
     "spec.trafficPolicy.loadBalancer.warmup: duration is required", NULL},
    {"dr warmup percent",
     DR("{'host':'r','trafficPolicy':{'loadBalancer':{'warmup':{'duration':'1s','minimumPercent':"
        "101}}}}"),
     -1, "warmup.minimumPercent: minimumPercent value should be less than or equal to 100", NULL},
    {"dr warmup aggression",
     DR("{'host':'r','trafficPolicy':{'loadBalancer':{'warmup':{'duration':'1s','aggression':0.5}}"
        "}}"),
     -1, "warmup.aggression: aggression should be greater than or equal to 1", NULL},
    {"dr selector wildcard", DR("{'host':'r','workloadSelector':{'matchLabels':{'app':'*'}}}"), -1,
     "spec.workloadSelector.matchLabels: wildcard is not supported in selector", NULL},
    {"gw selector wildcard",
     GW("{'selector':{'istio':'*'},'servers':[{'port':{'number':80,'name':'http','protocol':'HTTP'"
        "},'hosts':['*']}]}"),
     -1, "spec.selector: wildcard is not supported in selector", NULL},
    {"se dns",
     SE("{'hosts':['api.example.com'],'location':'MESH_EXTERNAL','resolution':'DNS',"
        "'ports':[{'number':80,'name':'http','protocol':'HTTP'},{'number':443,'name':'tls','"
        "protocol':'TLS','targetPort':8443}]}"),
     0, NULL, chk_se_dns},
    {"se static",
     SE("{'hosts':['svc.internal'],'addresses':['240.0.0.1/"
        "32'],'location':'MESH_INTERNAL','resolution':'STATIC',"
        "'ports':[{'number':80,'name':'http'}],'endpoints':[{'address':'10.0.0.1','ports':{'http':"
        "8080},"
        "'labels':{'version':'v1'},'weight':8},{'address':'10.0.0.2','locality':'us/east'}]}"),
     0, NULL, chk_se_static},
    {"se none default",
     SE("{'hosts':['*.example.com'],'ports':[{'number':443,'name':'tls','protocol':'TLS'}]}"), 0,
     NULL, chk_se_none},
    {"se no hosts", SE("{'ports':[{'number':80,'protocol':'HTTP'}]}"), -1,
     "=ServiceEntry default/ext: spec.hosts: service entry must have at least one host", NULL},
    {"se star host", SE("{'hosts':['*'],'ports':[{'number':80,'protocol':'HTTP'}]}"), -1,
     "spec.hosts[0]: invalid host *", NULL},
    {"se no ports", SE("{'hosts':['a.com']}"), 0, NULL, NULL},
    {"se empty protocol",
     SE("{'hosts':['a.com'],'ports':[{'number':80,'name':'http','protocol':''}]}"), 0, NULL,
     chk_se_empty_protocol},
    {"se cidr with dns",
     SE("{'hosts':['a.com'],'addresses':['10.0.0.0/"
        "16'],'resolution':'DNS','ports':[{'number':80}]}"),
     -1, "spec.addresses: CIDR addresses are allowed only for NONE/STATIC resolution types", NULL},
    {"se cidr with none",
     SE("{'hosts':['a.com'],'addresses':['10.0.0.0/"
        "16'],'resolution':'NONE','ports':[{'number':80}]}"),
     0, NULL, NULL},
    {"se selector wildcard",
     SE("{'hosts':['a.com'],'resolution':'STATIC','ports':[{'number':80}],'workloadSelector':{'"
        "labels':{'app':'*'}}}"),
     -1, "spec.workloadSelector.labels: wildcard is not supported in selector: \"app=*\"", NULL},
    {"se ipv6 address",
     SE("{'hosts':['a.com'],'addresses':['1.2.3.4','001:db8::'],'ports':[{'number':80}]}"), 0, NULL,
     NULL},
    {"se dup port",
     SE("{'hosts':['a.com'],'ports':[{'number':80,'name':'a'},{'number':80,'name':'b'}]}"), -1,
     "spec.ports[1].number: service entry port 80 already defined", NULL},
    {"se dup port name",
     SE("{'hosts':['a.com'],'ports':[{'number':80,'name':'a'},{'number':81,'name':'a'}]}"), -1,
     "spec.ports[1].name: service entry port name a already defined", NULL},
    {"se port number", SE("{'hosts':['a.com'],'ports':[{'name':'a'}]}"), -1,
     "spec.ports[0].number: port number is required", NULL},
    {"se bad protocol", SE("{'hosts':['a.com'],'ports':[{'number':80,'protocol':'FOO'}]}"), -1,
     "spec.ports[0].protocol: FOO is not a valid protocol", NULL},
    {"se bad address", SE("{'hosts':['a.com'],'addresses':['300.1.1.1'],'ports':[{'number':80}]}"),
     -1, "spec.addresses[0]: invalid address 300.1.1.1", NULL},
    {"se static no endpoints",
     SE("{'hosts':['a.com'],'resolution':'STATIC','ports':[{'number':80}]}"), -1,
     "spec.endpoints: endpoints must be provided if service entry discovery mode is static", NULL},
    {"se static selector",
     SE("{'hosts':['a.com'],'resolution':'STATIC','ports':[{'number':80}],'workloadSelector':{'"
        "labels':{'app':'a'}}}"),
     0, NULL, NULL},
    {"se static hostname",
     SE("{'hosts':['a.com'],'resolution':'STATIC','ports':[{'number':80}],'endpoints':[{'address':'"
        "b.com'}]}"),
     -1, "spec.endpoints[0].address: endpoint address b.com is not a valid IP address", NULL},
    {"se none endpoints",
     SE("{'hosts':['a.com'],'ports':[{'number':80}],'endpoints':[{'address':'10.0.0.1'}]}"), -1,
     "no endpoints should be provided for resolution type none", NULL},
    {"se endpoint port undefined",
     SE("{'hosts':['a.com'],'resolution':'DNS','ports':[{'number':80,'name':'http'}],"
        "'endpoints':[{'address':'b.com','ports':{'grpc':9000}}]}"),
     -1, "spec.endpoints[0].ports.grpc: endpoint port grpc is not defined by the service entry",
     NULL},
    {"se selector and endpoints",
     SE("{'hosts':['a.com'],'resolution':'STATIC','ports':[{'number':80}],"
        "'workloadSelector':{'labels':{'a':'b'}},'endpoints':[{'address':'10.0.0.1'}]}"),
     -1, "only one of WorkloadSelector or Endpoints is allowed in Service Entry", NULL},
    {"se dns wildcard", SE("{'hosts':['*.a.com'],'resolution':'DNS','ports':[{'number':80}]}"), -1,
     "spec.hosts[0]: hosts can not be wildcards when resolution is DNS and there are no endpoints",
     NULL},
    {"se dns rr endpoints",
     SE("{'hosts':['a.com'],'resolution':'DNS_ROUND_ROBIN','ports':[{'number':80}],"
        "'endpoints':[{'address':'b.com'},{'address':'c.com'}]}"),
     -1, "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN", NULL},
    {"se location", SE("{'hosts':['a.com'],'location':'OUTSIDE','ports':[{'number':80}]}"), -1,
     "spec.location: unknown location OUTSIDE", NULL},
    {"se resolution", SE("{'hosts':['a.com'],'resolution':'MAGIC','ports':[{'number':80}]}"), -1,
     "spec.resolution: unknown resolution MAGIC", NULL},
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
        if (rc == -2 && err[0] != '\0')
            fail_msg("case %s: skip must leave err empty, got %s", t->name, err);
        if (rc == -1) {
            if (o.u.meta)
                fail_msg("case %s: *out set on error", t->name);
            if (!t->err)
                fail_msg("case %s: no expected error given, got %s", t->name, err);
            if (t->err[0] == '=') {
                if (strcmp(err, t->err + 1) != 0)
                    fail_msg("case %s:\n  got  %s\n  want %s", t->name, err, t->err + 1);
            } else if (!strstr(err, t->err)) {
                fail_msg("case %s:\n  got  %s\n  want substring %s", t->name, err, t->err);
            }
        }
        if (rc == 0) {
            assert_non_null(o.u.meta);
            assert_int_equal(atomic_load(&o.u.meta->refs), 1);
            if (t->check)
                t->check(&o);
            mesh_object_release(o);
        }
        cJSON_Delete(j);
    }
}

/* What istiod accepts with a warning: accepted here too, the warning collected. */
static void test_warnings(void **state)
{
    (void)state;
    static const struct {
        const char *name, *json, *want; /* want NULL: no warning */
    } wcases[] = {
        {"dr ring size",
         DR("{'host':'r','trafficPolicy':{'loadBalancer':{'consistentHash':{'minimumRingSize':"
            "1024,'httpHeaderName':'x'}}}}"),
         "=DestinationRule default/reviews: spec.trafficPolicy.loadBalancer.consistentHash: "
         "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
         "configuration instead"},
        {"dr selector without labels", DR("{'host':'r','workloadSelector':{}}"),
         "workload selector specified without labels"},
        {"se selector with dns",
         SE("{'hosts':['a.com'],'resolution':'DNS','ports':[{'number':80}],'workloadSelector':{"
            "'labels':{'app':'a'}}}"),
         "workloadSelector should not be set when resolution mode is DNS"},
        {"vs plain", VS("{'hosts':['reviews'],'http':[{" ROUTE1 "}]}"), NULL},
    };
    mesh_parse_opts opts = {.domain = "cluster.local", .source = "unit"};
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) {
        mesh_warnings w = {0};
        opts.warnings = &w;
        cJSON *j = parse_json(wcases[i].json);
        char err[512] = "";
        mesh_object o = {0};
        assert_non_null(j);
        if (mesh_parse(j, &opts, &o, err, sizeof err) != 0)
            fail_msg("%s: refused: %s", wcases[i].name, err);
        mesh_object_release(o);
        const char *want = wcases[i].want;
        if (!want && w.n)
            fail_msg("%s: unexpected warning %s", wcases[i].name, w.msg[0]);
        if (want && !w.n)
            fail_msg("%s: no warning", wcases[i].name);
        if (want && (want[0] == '=' ? strcmp(w.msg[0], want + 1) != 0 : !strstr(w.msg[0], want)))
            fail_msg("%s:\n  got  %s\n  want %s", wcases[i].name, w.msg[0], want);
        mesh_warnings_free(&w);
        cJSON_Delete(j);
    }
}

/* Error messages are bounded by errlen and stay NUL-terminated. */
static void test_error_truncation(void **state)
{
    (void)state;
    cJSON *j =
        parse_json(VSR("{'route':[{'destination':{'host':'a'},'weight':-60},{'destination':{'"
                       "host':'b'},'weight':60}]}"));
    char err[16];
    mesh_object o = {0};
    memset(err, 'x', sizeof err);
    assert_int_equal(mesh_parse(j, NULL, &o, err, sizeof err), -1);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_int_equal(mesh_parse(j, NULL, &o, NULL, 0), -1); /* no buffer: still safe */
    cJSON_Delete(j);
}

static void test_refcount(void **state)
{
    (void)state;
    cJSON *j = parse_json(VS("{'hosts':['reviews'],'http':[{" ROUTE1 "}]}"));
    mesh_object o = {0};
    char err[256];
    assert_int_equal(mesh_parse(j, NULL, &o, err, sizeof err), 0);
    cJSON_Delete(j); /* the object shares nothing with the JSON */
    mesh_object_retain(o);
    assert_int_equal(atomic_load(&o.u.meta->refs), 2);
    mesh_object_release(o);
    assert_string_equal(o.u.vs->fqdn_hosts[0], "reviews.default.svc.cluster.local");
    mesh_object_release(o); /* freed here; ASan reports a leak otherwise */
}

/* A hostile document: deep nesting, wrong types everywhere. Must not crash. */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{'apiVersion':'networking.istio.io/v1','kind':'VirtualService','metadata':'x'}",
        "{'apiVersion':'networking.istio.io/v1','kind':'VirtualService'," META("a",
                                                                               "b") ",'spec':[]}",
        VS("{'hosts':[1],'http':[]}"),
        VS("{'hosts':['a'],'http':[null]}"),
        VS("{'hosts':['a'],'http':[{'route':[null]}]}"),
        VS("{'hosts':['a'],'http':[{'route':[{'destination':'x'}]}]}"),
        VS("{'hosts':['a'],'http':[{'match':[{'headers':{'a':null}}],'route':[" DEST("a") "]}]}"),
        VS("{'hosts':['a'],'http':[{'match':[{'headers':{'a':'x'}}],'route':[" DEST("a") "]}]}"),
        DR("{'host':'a','trafficPolicy':[]}"),
        DR("{'host':'a','subsets':[1,2]}"),
        GW("{'servers':[{'port':'80','hosts':['*']}]}"),
        GW("{'servers':'x'}"),
        SE("{'hosts':['a.com'],'ports':[{'number':80,'name':'a'}],'resolution':'DNS','endpoints':[{"
           "'address':'b.com','ports':{'a':'x'}}]}"),
        "{'apiVersion':'v1','kind':'Pod'," META("a", "p") ",'status':{'podIPs':[1]}}",
        "{'apiVersion':'v1','kind':'Endpoints'," META("a", "e") ",'subsets':{'a':1}}",
        "{'apiVersion':'v1','kind':'Service'," META(
            "a", "s") ",'spec':{'ports':[{'port':80,'targetPort':true}]}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *j = parse_json(docs[i]);
        char err[256] = "";
        mesh_object o = {0};
        assert_non_null(j);
        int rc = mesh_parse(j, NULL, &o, err, sizeof err);
        if (rc != -1)
            fail_msg("garbage %zu: rc %d, want -1", i, rc);
        if (!strchr(err, ':'))
            fail_msg("garbage %zu: error without a field: %s", i, err);
        cJSON_Delete(j);
    }
}

/* Numbers YAML can produce that JSON cannot (NaN, infinities) and huge ones: rejected,
 * never cast (UBSan would flag an overflowing cast). */
static void test_odd_numbers(void **state)
{
    (void)state;
    static const char *const docs[] = {
        VSR("{'route':[{'destination':{'host':'a'},'weight':0}]}"),
        SE("{'hosts':['a.com'],'ports':[{'number':80,'name':'a'}],'resolution':'DNS','endpoints':[{"
           "'address':'b.com','ports':{'a':0}}]}"),
        "{'apiVersion':'v1','kind':'Service','metadata':{'name':'s','generation':0}}",
        DR("{'host':'r','trafficPolicy':{'loadBalancer':{'consistentHash':{'minimumRingSize':0}}}"
           "}"),
    };
    static const double odd[] = {NAN,    INFINITY, -INFINITY, 1e300, 9223372036854775808.0,
                                 -1e300, 0.5};
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
            cJSON *j = parse_json(docs[d]);
            cJSON *num = NULL;
            assert_non_null(j);
            /* find the single 0 in the document and replace its value */
            cJSON *stack[64];
            size_t sp = 0;
            stack[sp++] = j;
            while (sp && !num) {
                cJSON *n = stack[--sp];
                if (cJSON_IsNumber(n) && n->valuedouble == 0) {
                    num = n;
                    break;
                }
                for (cJSON *c = n->child; c && sp < 64; c = c->next)
                    stack[sp++] = c;
            }
            assert_non_null(num);
            cJSON_SetNumberValue(num, odd[k]);
            char err[256] = "";
            mesh_object o = {0};
            int rc = mesh_parse(j, NULL, &o, err, sizeof err);
            if (rc != -1)
                fail_msg("doc %zu value %g: rc %d, want -1", d, odd[k], rc);
            cJSON_Delete(j);
        }
    }
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void test_resolve_host(void **state)
{
    (void)state;
    static const struct {
        const char *host, *ns, *domain, *want;
    } t[] = {
        {"reviews", "default", "cluster.local", "reviews.default.svc.cluster.local"},
        {"reviews", "prod", "example.org", "reviews.prod.svc.example.org"},
        {"reviews.prod", "default", "cluster.local", "reviews.prod.svc.cluster.local"},
        {"reviews.prod.svc.cluster.local", "default", "cluster.local",
         "reviews.prod.svc.cluster.local"},
        {"api.example.com", "default", "cluster.local", "api.example.com"},
        {"*.example.com", "default", "cluster.local", "*.example.com"},
        {"*", "default", "cluster.local", "*"},
        {"*.local", "default", "cluster.local", "*.local"},
        {"10.0.0.1", "default", "cluster.local", "10.0.0.1"},
        {"fd00::1", "default", "cluster.local", "fd00::1"},
        {"reviews", NULL, NULL, "reviews.default.svc.cluster.local"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *got = mesh_resolve_host(t[i].host, t[i].ns, t[i].domain);
        assert_string_equal(got, t[i].want);
        free(got);
    }
    assert_null(mesh_resolve_host(NULL, "a", "b"));
}

static void test_protocols(void **state)
{
    (void)state;
    static const struct {
        const char *name, *app;
        mesh_protocol want;
    } t[] = {
        {"http", NULL, MESH_PROTO_HTTP},
        {"http-web", NULL, MESH_PROTO_HTTP},
        {"HTTP", NULL, MESH_PROTO_HTTP},
        {"http2", NULL, MESH_PROTO_HTTP2},
        {"http2-x", NULL, MESH_PROTO_HTTP2},
        {"https", NULL, MESH_PROTO_HTTPS},
        {"grpc", NULL, MESH_PROTO_GRPC},
        {"grpc-web", NULL, MESH_PROTO_GRPC_WEB},
        {"grpc-web-x", NULL, MESH_PROTO_GRPC_WEB},
        {"grpc-other", NULL, MESH_PROTO_GRPC},
        {"tcp", NULL, MESH_PROTO_TCP},
        {"tls-x", NULL, MESH_PROTO_TLS},
        {"mongo", NULL, MESH_PROTO_MONGO},
        {"redis", NULL, MESH_PROTO_REDIS},
        {"mysql", NULL, MESH_PROTO_MYSQL},
        {"udp", NULL, MESH_PROTO_UDP},
        {"web", NULL, MESH_PROTO_UNSUPPORTED},
        {"httpx", NULL, MESH_PROTO_UNSUPPORTED},
        {"", NULL, MESH_PROTO_UNSUPPORTED},
        {NULL, NULL, MESH_PROTO_UNSUPPORTED},
        {"tcp", "http", MESH_PROTO_HTTP}, /* appProtocol wins */
        {"http", "grpc", MESH_PROTO_GRPC},
        {"web", "HTTP2", MESH_PROTO_HTTP2},
        {"x", "kubernetes.io/h2c", MESH_PROTO_HTTP2},
        {"http", "bogus", MESH_PROTO_HTTP}, /* unknown appProtocol: fall back to the name */
        {"averyveryveryveryverylongportname-x", NULL, MESH_PROTO_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (mesh_protocol_from_port(t[i].name, t[i].app) != t[i].want)
            fail_msg("port %s/%s: got %d want %d", t[i].name ? t[i].name : "(null)",
                     t[i].app ? t[i].app : "", mesh_protocol_from_port(t[i].name, t[i].app),
                     t[i].want);

    static const char *const names[] = {"HTTP", "HTTP2", "HTTPS", "GRPC",  "GRPC-Web", "TCP",
                                        "TLS",  "Mongo", "Redis", "MySQL", "UDP"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        mesh_protocol p = (mesh_protocol)(MESH_PROTO_HTTP + (int)i);
        assert_string_equal(mesh_protocol_name(p), names[i]);
        assert_int_equal(mesh_protocol_parse(names[i]), p);
    }
    assert_string_equal(mesh_protocol_name(MESH_PROTO_UNSUPPORTED), "UnsupportedProtocol");
    assert_int_equal(mesh_protocol_parse("grpc-web"), MESH_PROTO_GRPC_WEB);
    assert_int_equal(mesh_protocol_parse(NULL), MESH_PROTO_UNSUPPORTED);
    assert_true(mesh_protocol_is_http(MESH_PROTO_GRPC));
    assert_true(mesh_protocol_is_http(MESH_PROTO_GRPC_WEB));
    assert_false(mesh_protocol_is_http(MESH_PROTO_HTTPS));
    assert_false(mesh_protocol_is_http(MESH_PROTO_TCP));
}

static void test_labels(void **state)
{
    (void)state;
    cJSON *j = parse_json("{'version':'v1','app':'reviews','zone':'a','app':'dup'}");
    mesh_labels l = {0}, sel = {0}, cp = {0};
    assert_int_equal(mesh_labels_from_json(j, &l), 0);
    assert_int_equal(l.n, 3);              /* duplicate key: last wins */
    assert_string_equal(l.keys[0], "app"); /* sorted */
    assert_string_equal(l.keys[1], "version");
    assert_string_equal(l.keys[2], "zone");
    assert_string_equal(mesh_labels_get(&l, "app"), "dup");
    assert_null(mesh_labels_get(&l, "nope"));
    cJSON_Delete(j);

    assert_true(mesh_labels_subset(&sel, &l)); /* empty selector */
    j = parse_json("{'version':'v1'}");
    assert_int_equal(mesh_labels_from_json(j, &sel), 0);
    cJSON_Delete(j);
    assert_true(mesh_labels_subset(&sel, &l));
    mesh_labels_free(&sel);
    j = parse_json("{'version':'v2'}");
    assert_int_equal(mesh_labels_from_json(j, &sel), 0);
    cJSON_Delete(j);
    assert_false(mesh_labels_subset(&sel, &l));
    mesh_labels_free(&sel);

    mesh_labels_copy(&l, &cp);
    assert_int_equal(cp.n, 3);
    assert_string_equal(mesh_labels_get(&cp, "zone"), "a");
    mesh_labels_free(&cp);
    mesh_labels_free(&l);
    assert_int_equal(l.n, 0);

    j = parse_json("{'a':'b','c':3}");
    assert_int_equal(mesh_labels_from_json(j, &l), -1);
    assert_int_equal(l.n, 0);
    cJSON_Delete(j);
    j = parse_json("['a']");
    assert_int_equal(mesh_labels_from_json(j, &l), -1);
    cJSON_Delete(j);
    assert_int_equal(mesh_labels_from_json(NULL, &l), 0);
    assert_int_equal(l.n, 0);
}

static void test_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *av, *kind;
        mesh_kind want;
    } t[] = {
        {"v1", "Namespace", MESH_KIND_NAMESPACE},
        {"v1", "Service", MESH_KIND_SERVICE},
        {"v1", "Pod", MESH_KIND_POD},
        {"v1", "Endpoints", MESH_KIND_ENDPOINTS},
        {"discovery.k8s.io/v1", "EndpointSlice", MESH_KIND_ENDPOINT_SLICE},
        {"discovery.k8s.io/v1beta1", "EndpointSlice", MESH_KIND_ENDPOINT_SLICE},
        {"networking.istio.io/v1", "Gateway", MESH_KIND_GATEWAY},
        {"networking.istio.io/v1beta1", "VirtualService", MESH_KIND_VIRTUAL_SERVICE},
        {"networking.istio.io/v1alpha3", "DestinationRule", MESH_KIND_DESTINATION_RULE},
        {"networking.istio.io/v1", "ServiceEntry", MESH_KIND_SERVICE_ENTRY},
        {"networking.istio.io/v1alpha3", "Sidecar", MESH_KIND_SIDECAR},
        {"security.istio.io/v1", "Sidecar", MESH_KIND_UNKNOWN},
        {"gateway.networking.k8s.io/v1", "Gateway", MESH_KIND_UNKNOWN},
        {"v1", "VirtualService", MESH_KIND_UNKNOWN},
        {"networking.istio.io/v1", "Service", MESH_KIND_UNKNOWN},
        {"apps/v1", "Deployment", MESH_KIND_UNKNOWN},
        {"v1", "ServiceAccount", MESH_KIND_UNKNOWN},
        {"security.istio.io/v1", "PeerAuthentication", MESH_KIND_PEER_AUTHENTICATION},
        {"security.istio.io/v1beta1", "AuthorizationPolicy", MESH_KIND_AUTHORIZATION_POLICY},
        {"security.istio.io/v1alpha1", "PeerAuthentication", MESH_KIND_UNKNOWN},
        {"networking.istio.io/v1", "PeerAuthentication", MESH_KIND_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "apiVersion", t[i].av);
        cJSON_AddStringToObject(j, "kind", t[i].kind);
        if (mesh_kind_of(j) != t[i].want)
            fail_msg("%s %s: got %d want %d", t[i].av, t[i].kind, mesh_kind_of(j), t[i].want);
        cJSON_Delete(j);
    }
    assert_string_equal(mesh_kind_name(MESH_KIND_VIRTUAL_SERVICE), "VirtualService");
    assert_string_equal(mesh_kind_name(MESH_KIND_ENDPOINT_SLICE), "EndpointSlice");
    assert_string_equal(mesh_kind_api_version(MESH_KIND_ENDPOINT_SLICE), "discovery.k8s.io/v1");
    assert_string_equal(mesh_kind_api_version(MESH_KIND_GATEWAY), "networking.istio.io/v1");
    assert_string_equal(mesh_kind_api_version(MESH_KIND_POD), "v1");
    assert_string_equal(mesh_kind_name(MESH_KIND_UNKNOWN), "Unknown");
}

/* ---- unsupported fields ----------------------------------------------------------------- */

static bool has_path(char **paths, size_t n, const char *p)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(paths[i], p) == 0)
            return true;
    return false;
}

static void test_unsupported(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *want[4]; /* exactly these, in any order */
    } t[] = {
        {VS("{'hosts':['r'],'http':[{'match':[{'uri':{'prefix':'/"
            "'},'headers':{'x':{'exact':'1'}}}],"
            "'route':[{'destination':{'host':'r','port':{'number':1}},'weight':100}],'timeout':'1s'"
            ","
            "'retries':{'attempts':1}}]}"),
         {NULL}},
        {VS("{'hosts':['r'],'http':[{'route':[" DEST(
             "r") "],'mirrors':[{'destination':{'host':'m'}}],"
                  "'delegate':{'name':'x'}},{'route':[" DEST(
                      "r") "],'mirrors':[]}],"
                           "'tcp':[{'match':[{'sourceSubnet':'1.2.3.4'}],'route':[" DEST(
                               "r") "]}]}"),
         {"spec.http[].mirrors", "spec.http[].delegate", "spec.tcp[].match[].sourceSubnet", NULL}},
        {VS("{'hosts':['r'],'http':[{'route':[" DEST(
             "r") "],'redirect':{'derivePort':'FROM_PROTOCOL_DEFAULT'},"
                  "'retries':{'retryRemoteLocalities':true}}]}"),
         {"spec.http[].redirect.derivePort", "spec.http[].retries.retryRemoteLocalities", NULL}},
        {DR("{'host':'r','trafficPolicy':{'tunnel':{'protocol':'CONNECT'},'loadBalancer':{'simple':"
            "'RANDOM',"
            "'localityLbSetting':{'enabled':true}},'portLevelSettings':[{'port':{'number':1},'tls':"
            "{'mode':'SIMPLE','caCrl':'/x'}}]},"
            "'subsets':[{'name':'v1','labels':{'a':'b'},'trafficPolicy':{'outlierDetection':{'"
            "minHealthPercent':5}}}]}"),
         {"spec.trafficPolicy.tunnel", "spec.trafficPolicy.loadBalancer.localityLbSetting",
          "spec.trafficPolicy.portLevelSettings[].tls.caCrl",
          "spec.subsets[].trafficPolicy.outlierDetection.minHealthPercent"}},
        {GW("{'selector':{'istio':'x'},'servers':[{'port':{'number':80,'protocol':'HTTP','"
            "targetPort':8080},"
            "'hosts':['*'],'bind':'0.0.0.0','defaultEndpoint':'127.0.0.1:8080'}]}"),
         {"spec.servers[].port.targetPort", "spec.servers[].bind", "spec.servers[].defaultEndpoint",
          NULL}},
        {SE("{'hosts':['a.com'],'ports':[{'number':80}],'subjectAltNames':['x'],'endpoints':[{'"
            "address':'b','ports':{'a':1}}]}"),
         {"spec.subjectAltNames", NULL}},
        {"{'apiVersion':'v1','kind':'Service'," META("a",
                                                     "s") ",'spec':{'sessionAffinity':'None'}}",
         {NULL}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cJSON *j = parse_json(t[i].json);
        char **paths = NULL;
        size_t n = 0, want = 0;
        assert_non_null(j);
        mesh_unsupported_fields(j, &paths, &n);
        for (; want < 4 && t[i].want[want]; want++)
            if (!has_path(paths, n, t[i].want[want]))
                fail_msg("case %zu: missing %s", i, t[i].want[want]);
        if (n != want) {
            for (size_t k = 0; k < n; k++)
                print_message("  got %s\n", paths[k]);
            fail_msg("case %zu: %zu unsupported paths, want %zu", i, n, want);
        }
        for (size_t k = 0; k < n; k++)
            free(paths[k]);
        free(paths);
        cJSON_Delete(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),      cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_error_truncation), cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_garbage),          cmocka_unit_test(test_odd_numbers),
        cmocka_unit_test(test_resolve_host),     cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_labels),           cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
