/* test_authorizationpolicy: the AuthorizationPolicy parser and validator
 * (pilot/config/parse_authorizationpolicy.c): one table of specs (JSON with single quotes),
 * accepted with a check on the parsed struct or refused with the error istiod gives; then
 * warnings, the dry-run annotation and the unsupported-field walker. Every parsed object
 * is released, so ASan's leak checker covers the free paths, half-built ones included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/config/mesh.h"

#define APX(meta, spec)                                                                            \
    "{'apiVersion':'security.istio.io/v1','kind':'AuthorizationPolicy','metadata':{" meta          \
    "},'spec':" spec "}"
#define AP(spec) APX("'name':'p','namespace':'foo'", spec)
#define RULE(r) AP("{'rules':[" r "]}")
#define PFX "AuthorizationPolicy foo/p: "

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

static const mesh_authorization_policy *ap_of(const mesh_object *o)
{
    assert_int_equal(o->kind, MESH_KIND_AUTHORIZATION_POLICY);
    return o->u.ap;
}

static void chk_full(const mesh_object *o)
{
    const mesh_authorization_policy *p = ap_of(o);
    assert_int_equal(p->action, MESH_AZ_ALLOW);
    assert_string_equal(mesh_labels_get(&p->selector, "app"), "web");
    assert_int_equal(p->nrules, 1);
    const mesh_az_rule *r = &p->rules[0];
    assert_int_equal(r->nfrom, 2);
    assert_int_equal(r->from[0].values[MESH_AZ_PRINCIPALS].n, 2);
    assert_string_equal(r->from[0].values[MESH_AZ_PRINCIPALS].v[1], "b");
    assert_string_equal(r->from[0].not_values[MESH_AZ_NAMESPACES].v[0], "x");
    assert_string_equal(r->from[0].values[MESH_AZ_REQUEST_PRINCIPALS].v[0], "iss/sub");
    assert_string_equal(r->from[1].values[MESH_AZ_IP_BLOCKS].v[0], "10.0.0.0/8");
    assert_string_equal(r->from[1].not_values[MESH_AZ_REMOTE_IP_BLOCKS].v[0], "::1");
    assert_int_equal(r->nto, 1);
    assert_string_equal(r->to[0].values[MESH_AZ_PORTS].v[0], "8080");
    assert_string_equal(r->to[0].values[MESH_AZ_METHODS].v[0], "GET");
    assert_string_equal(r->to[0].not_values[MESH_AZ_PATHS].v[0], "/admin");
    assert_string_equal(r->to[0].values[MESH_AZ_HOSTS].v[0], "a.com");
    assert_int_equal(r->nwhen, 2);
    assert_string_equal(r->when[0].key, "request.headers[x-a]");
    assert_string_equal(r->when[0].values.v[0], "1");
    assert_string_equal(r->when[1].not_values.v[0], "10.1.2.3");
    assert_false(p->dry_run);
}

static void chk_service_accounts(const mesh_object *o)
{
    const mesh_az_source *src = &ap_of(o)->rules[0].from[0];
    assert_int_equal(src->values[MESH_AZ_SERVICE_ACCOUNTS].n, 2);
    assert_string_equal(src->values[MESH_AZ_SERVICE_ACCOUNTS].v[1], "ns/b");
    assert_int_equal(src->not_values[MESH_AZ_SERVICE_ACCOUNTS].n, 0);
}

static void chk_trust_domains(const mesh_object *o)
{
    const mesh_az_source *src = &ap_of(o)->rules[0].from[0];
    assert_string_equal(src->values[MESH_AZ_TRUST_DOMAINS].v[1], "*.td");
    assert_string_equal(src->not_values[MESH_AZ_TRUST_DOMAINS].v[0], "bad*");
}

static void chk_custom(const mesh_object *o)
{
    assert_int_equal(ap_of(o)->action, MESH_AZ_CUSTOM);
    assert_string_equal(ap_of(o)->provider, "ext");
}

static void chk_no_rules(const mesh_object *o)
{
    assert_int_equal(ap_of(o)->nrules, 0);
    assert_int_equal(ap_of(o)->action, MESH_AZ_ALLOW);
}

static void chk_empty_rule(const mesh_object *o)
{
    assert_int_equal(ap_of(o)->action, MESH_AZ_DENY);
    assert_int_equal(ap_of(o)->nrules, 1);
    assert_int_equal(ap_of(o)->rules[0].nfrom, 0);
}

static void chk_target_refs(const mesh_object *o)
{
    const mesh_authorization_policy *p = ap_of(o);
    assert_int_equal(p->ntarget_refs, 2);
    assert_string_equal(p->target_refs[0].kind, "Gateway");
    assert_string_equal(p->target_refs[1].kind, "Service");
    assert_int_equal(p->selector.n, 0);
}

static void chk_dry_run(const mesh_object *o)
{
    assert_true(ap_of(o)->dry_run);
    assert_int_equal(ap_of(o)->action, MESH_AZ_AUDIT);
}

static void chk_not_dry_run(const mesh_object *o)
{
    assert_false(ap_of(o)->dry_run);
}

typedef struct {
    const char *name, *json;
    int rc;
    const char *err; /* substring; '=' prefix: the exact message */
    void (*check)(const mesh_object *);
} pcase;

static const pcase cases[] = {
    /* accepted */
    {"full",
     AP("{'selector':{'matchLabels':{'app':'web'}},'action':'ALLOW','rules':[{'from':[{'source':{"
        "'principals':['a','b'],'notNamespaces':['x'],'requestPrincipals':['iss/sub']}},"
        "{'source':{'ipBlocks':['10.0.0.0/8'],'notRemoteIpBlocks':['::1']}}],"
        "'to':[{'operation':{'ports':['8080'],'methods':['GET'],'notPaths':['/admin'],'hosts':['a."
        "com']}}],"
        "'when':[{'key':'request.headers[x-a]','values':['1']},{'key':'source.ip','notValues':['10."
        "1.2.3']}]}]}"),
     0, NULL, chk_full},
    {"v1beta1",
     "{'apiVersion':'security.istio.io/v1beta1','kind':'AuthorizationPolicy','metadata':"
     "{'name':'p','namespace':'foo'},'spec':{}}",
     0, NULL, chk_no_rules},
    {"allow nothing", AP("{}"), 0, NULL, chk_no_rules},
    {"deny empty rule", AP("{'action':'DENY','rules':[{}]}"), 0, NULL, chk_empty_rule},
    {"custom",
     AP("{'action':'CUSTOM','provider':{'name':'ext'},'rules':[{'to':[{'operation':{"
        "'paths':['/x']}}]}]}"),
     0, NULL, chk_custom},
    {"target refs",
     AP("{'targetRef':{'kind':'Gateway','group':'gateway.networking.k8s.io','name':'g'},"
        "'targetRefs':[{'kind':'Service','group':'','name':'s'}]}"),
     0, NULL, chk_target_refs},
    {"dry run",
     APX("'name':'p','namespace':'foo','annotations':{'istio.io/dry-run':'true'}",
         "{'action':'AUDIT','rules':[{}]}"),
     0, NULL, chk_dry_run},
    {"dry run false",
     APX("'name':'p','namespace':'foo','annotations':{'istio.io/dry-run':'F'}", "{}"), 0, NULL,
     chk_not_dry_run},
    {"dry run bad",
     APX("'name':'p','namespace':'foo','annotations':{'istio.io/dry-run':'yes'}", "{}"), 0, NULL,
     chk_not_dry_run},
    {"path templates ok", RULE("{'to':[{'operation':{'paths':['/a/{*}/b/{**}','/{**}']}}]}"), 0,
     NULL, NULL},
    {"port 0 (istiod accepts)", RULE("{'to':[{'operation':{'ports':['0']}}]}"), 0, NULL, NULL},
    {"every when key",
     RULE("{'when':[{'key':'source.ip','values':['1.2.3.4']},{'key':'remote.ip','values':['1.2.3.0/"
          "24']},"
          "{'key':'source.namespace','values':['a']},{'key':'source.principal','values':['*']},"
          "{'key':'source.serviceAccount','values':['ns/sa','sa']},{'key':'source.trustDomain',"
          "'values':['*.td']},"
          "{'key':'request.auth.principal','values':['a/b']},{'key':'request.auth.audiences',"
          "'values':['x']},"
          "{'key':'request.auth.presenter','values':['x']},{'key':'request.auth.claims[a][b]',"
          "'values':['x']},"
          "{'key':'destination.ip','values':['::1']},{'key':'destination.port','values':['80']},"
          "{'key':'connection.sni','values':['a.com']},{'key':'experimental.envoy.filters.a.b[c]',"
          "'values':['[x]']}]}"),
     0, NULL, NULL},

    /* selector and targets */
    {"selector and targetRef",
     AP("{'selector':{'matchLabels':{'a':'b'}},'targetRef':{'kind':'Gateway','group':'gateway."
        "networking.k8s.io','name':'g'}}"),
     -1, "=" PFX "spec: only one of targetRefs or workloadSelector can be set", NULL},
    {"selector wildcard", AP("{'selector':{'matchLabels':{'a':'b*'}}}"), -1,
     "=" PFX "spec.selector.matchLabels: wildcard is not supported in selector: \"a=b*\"", NULL},
    {"targetRef no name", AP("{'targetRef':{'kind':'Service'}}"), -1,
     "=" PFX "spec.targetRef: targetRef name must be set", NULL},
    {"targetRef namespace", AP("{'targetRefs':[{'kind':'Service','name':'s','namespace':'o'}]}"),
     -1,
     "=" PFX "spec.targetRefs[0]: targetRef namespace must not be set; cross namespace referencing "
     "is not supported",
     NULL},
    {"targetRef kind", AP("{'targetRef':{'kind':'Pod','name':'s'}}"), -1,
     "spec.targetRef: targetRef must be to one of [core/v1/Service", NULL},
    {"targetRef group",
     AP("{'targetRef':{'kind':'Gateway','group':'networking.istio.io','name':'g'}}"), -1,
     "but was networking.istio.io/Gateway", NULL},

    /* action and provider */
    {"bad action", AP("{'action':'MAYBE'}"), -1,
     "=" PFX "spec.action: unsupported value \"MAYBE\": supported values: \"ALLOW\", \"DENY\", "
     "\"AUDIT\", \"CUSTOM\"",
     NULL},
    {"custom no rules", AP("{'action':'CUSTOM','provider':{'name':'x'}}"), -1,
     "=" PFX "spec.rules: CUSTOM action without `rules` is meaningless as it will never be "
     "triggered, add an empty rule `{}` if you want it be triggered for every request",
     NULL},
    {"custom no provider", AP("{'action':'CUSTOM','rules':[{}]}"), -1,
     "=" PFX "spec.provider.name: `provider.name` must not be empty", NULL},
    {"provider without custom", AP("{'action':'DENY','provider':{'name':'x'},'rules':[{}]}"), -1,
     "=" PFX "spec.provider: `provider` must not be with non CUSTOM action, found DENY", NULL},
    {"deny no rules", AP("{'action':'DENY'}"), -1,
     "=" PFX "spec.rules: DENY action without `rules` is meaningless as it will never be "
     "triggered, add an empty rule `{}` if you want it be triggered for every request",
     NULL},
    {"deny empty rules list", AP("{'action':'DENY','rules':[]}"), -1, "DENY action without", NULL},
    {"custom principals",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'from':[{'source':{'notPrincipals':["
        "'a']}}]}]}"),
     -1,
     "=" PFX "spec.rules[0].from[0].source.notPrincipals: From.NotPrincipals is currently not "
     "supported with CUSTOM action",
     NULL},
    {"custom namespaces",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'from':[{'source':{'namespaces':['a']"
        "}}]}]}"),
     -1, "From.Namespaces is currently not supported with CUSTOM action", NULL},
    {"custom request principals",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'from':[{'source':{"
        "'requestPrincipals':['a']}}]}]}"),
     -1, "From.RequestPrincipals is currently not supported with CUSTOM action", NULL},
    {"custom when",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'when':[{'key':'request.auth.claims["
        "x]','values':['a']}]}]}"),
     -1,
     "=" PFX "spec.rules[0].when[0].key: request.auth.claims[x] is currently not supported with "
     "CUSTOM action",
     NULL},
    {"custom ip ok",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'from':[{'source':{'ipBlocks':['1.2."
        "3.4']}}]}]}"),
     0, NULL, NULL},

    /* rules, from, to */
    {"nil rule", AP("{'rules':[null]}"), -1,
     "=" PFX "spec.rules[0]: `rule` must not be nil, found at rule 0", NULL},
    {"empty from", RULE("{},{'from':[]}"), -1,
     "=" PFX "spec.rules[1].from: `from` must not be empty, found at rule 1", NULL},
    {"nil from", RULE("{'from':[null]}"), -1,
     "=" PFX "spec.rules[0].from[0]: `from` must not be nil, found at rule 0", NULL},
    {"nil source", RULE("{'from':[{}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source: `from.source` must not be nil, found at rule 0", NULL},
    {"empty source", RULE("{'from':[{'source':{}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source: `from.source` must not be empty, found at rule 0",
     NULL},
    {"empty source lists", RULE("{'from':[{'source':{'principals':[]}}]}"), -1,
     "`from.source` must not be empty", NULL},
    {"empty to", RULE("{'to':[]}"), -1,
     "=" PFX "spec.rules[0].to: `to` must not be empty, found at rule 0", NULL},
    {"nil to", RULE("{'to':[null]}"), -1, "`to` must not be nil, found at rule 0", NULL},
    {"nil operation", RULE("{'to':[{}]}"), -1,
     "=" PFX "spec.rules[0].to[0].operation: `to.operation` must not be nil, found at rule 0",
     NULL},
    {"empty operation", RULE("{'to':[{'operation':{}}]}"), -1,
     "=" PFX "spec.rules[0].to[0].operation: `to.operation` must not be empty, found at rule 0",
     NULL},

    /* source values */
    {"empty principal", RULE("{'from':[{'source':{'principals':['']}}]}"), -1,
     "=" PFX
     "spec.rules[0].from[0].source.principals: empty value not allowed, found in Principals",
     NULL},
    {"empty not request principal", RULE("{'from':[{'source':{'notRequestPrincipals':['']}}]}"), -1,
     "empty value not allowed, found in NotRequestPrincipals", NULL},
    {"empty namespace", RULE("{'from':[{'source':{'namespaces':['a','']}}]}"), -1,
     "found in Namespaces", NULL},
    {"bad ip", RULE("{'from':[{'source':{'ipBlocks':['1.2.3.256']}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source.ipBlocks: bad IP address (1.2.3.256)", NULL},
    {"bad cidr", RULE("{'from':[{'source':{'notRemoteIpBlocks':['10.0.0.0/33']}}]}"), -1,
     "source.notRemoteIpBlocks: bad CIDR range (10.0.0.0/33)", NULL},
    {"empty ip", RULE("{'from':[{'source':{'remoteIpBlocks':['']}}]}"), -1,
     "empty value not allowed, found in RemoteIpBlocks", NULL},
    {"non-string principal", RULE("{'from':[{'source':{'principals':[1]}}]}"), -1,
     "spec.rules[0].from[0].source.principals[0]: must be a string", NULL},
    /* serviceAccounts, trustDomains (newer Istio) */
    {"service accounts", RULE("{'from':[{'source':{'serviceAccounts':['a','ns/b']}}]}"), 0, NULL,
     chk_service_accounts},
    {"trust domains",
     RULE("{'from':[{'source':{'trustDomains':['td','*.td'],'notTrustDomains':["
          "'bad*']}}]}"),
     0, NULL, chk_trust_domains},
    {"service accounts with principals",
     RULE("{'from':[{'source':{'principals':['a'],'notServiceAccounts':['b']}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source: cannot set serviceAccounts with namespaces or "
     "principals, found at rule 0",
     NULL},
    {"service accounts with namespaces",
     RULE("{},{'from':[{'source':{'notNamespaces':['a'],'serviceAccounts':['b']}}]}"), -1,
     "cannot set serviceAccounts with namespaces or principals, found at rule 1", NULL},
    {"service accounts with trust domains",
     RULE("{'from':[{'source':{'serviceAccounts':['a'],'trustDomains':['td']}}]}"), 0, NULL, NULL},
    {"service account empty", RULE("{'from':[{'source':{'serviceAccounts':['']}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source.serviceAccounts: empty value not allowed, found in "
     "ServiceAccounts",
     NULL},
    {"service account wildcard", RULE("{'from':[{'source':{'notServiceAccounts':['a*']}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source.notServiceAccounts: wildcard not allowed, found in "
     "NotServiceAccounts",
     NULL},
    {"service account two slashes", RULE("{'from':[{'source':{'serviceAccounts':['a/b/c']}}]}"), -1,
     "expected format 'serviceAccount' or 'namespace/serviceAccount', found \"a/b/c\" in "
     "ServiceAccounts",
     NULL},
    {"service account empty namespace", RULE("{'from':[{'source':{'serviceAccounts':['/b']}}]}"),
     -1,
     "expected format 'serviceAccount' or 'namespace/serviceAccount', found empty namespace "
     "\"/b\" in ServiceAccounts",
     NULL},
    {"service account empty name", RULE("{'from':[{'source':{'serviceAccounts':['a/']}}]}"), -1,
     "found empty serviceAccount \"a/\" in ServiceAccounts", NULL},
    {"service accounts too many",
     RULE("{'from':[{'source':{'serviceAccounts':['1','2','3','4','5','6','7','8','9','10','11',"
          "'12','13','14','15','16','17']}}]}"),
     -1, "source.serviceAccounts: may not have more than 16 values", NULL},
    {"trust domain empty", RULE("{'from':[{'source':{'trustDomains':['']}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source.trustDomains: empty value not allowed, found in "
     "TrustDomains",
     NULL},
    {"trust domain two wildcards", RULE("{'from':[{'source':{'notTrustDomains':['*a*']}}]}"), -1,
     "at most one wildcard is allowed, found in NotTrustDomains: \"*a*\"", NULL},
    {"trust domain inner wildcard", RULE("{'from':[{'source':{'trustDomains':['a*b']}}]}"), -1,
     "wildcard is only allowed at the start or end, found in TrustDomains: \"a*b\"", NULL},
    {"trust domain slash", RULE("{'from':[{'source':{'trustDomains':['a/b']}}]}"), -1,
     "=" PFX "spec.rules[0].from[0].source.trustDomains: trust domain must not contain '/', "
     "found in TrustDomains: \"a/b\"",
     NULL},
    {"when trust domain slash ok", RULE("{'when':[{'key':'source.trustDomain','values':['a/b']}]}"),
     0, NULL, NULL},
    {"custom service accounts",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'from':[{'source':{"
        "'serviceAccounts':['a']}}]}]}"),
     -1,
     "=" PFX "spec.rules[0].from[0].source.serviceAccounts: From.ServiceAccounts is currently "
     "not supported with CUSTOM action",
     NULL},
    {"custom not trust domains",
     AP("{'action':'CUSTOM','provider':{'name':'x'},'rules':[{'from':[{'source':{"
        "'notTrustDomains':['a']}}]}]}"),
     -1, "From.NotTrustDomains is currently not supported with CUSTOM action", NULL},

    /* operation values */
    {"bad port", RULE("{'to':[{'operation':{'ports':['http']}}]}"), -1,
     "=" PFX "spec.rules[0].to[0].operation.ports: bad port (http)", NULL},
    {"port too big", RULE("{'to':[{'operation':{'notPorts':['65536']}}]}"), -1,
     "operation.notPorts: bad port (65536)", NULL},
    {"port as number", RULE("{'to':[{'operation':{'ports':[80]}}]}"), -1,
     "operation.ports[0]: must be a string", NULL},
    {"empty port", RULE("{'to':[{'operation':{'ports':['']}}]}"), -1,
     "empty value not allowed, found in Ports", NULL},
    {"empty method", RULE("{'to':[{'operation':{'methods':['']}}]}"), -1,
     "empty value not allowed, found in Methods", NULL},
    {"empty host", RULE("{'to':[{'operation':{'notHosts':['']}}]}"), -1,
     "=" PFX "spec.rules[0].to[0].operation.notHosts: empty value not allowed, found in NotHosts",
     NULL},
    {"empty path", RULE("{'to':[{'operation':{'paths':['']}}]}"), -1,
     "empty value not allowed, found in Paths", NULL},
    {"template any not last", RULE("{'to':[{'operation':{'paths':['/{**}/a/{*}']}}]}"), -1,
     "=" PFX "spec.rules[0].to[0].operation.paths: invalid or unsupported path {**}/a/{*}, found "
     "in Paths. {**} is not the last operator",
     NULL},
    {"template brace", RULE("{'to':[{'operation':{'notPaths':['/a/{x}']}}]}"), -1,
     "invalid or unsupported path a/{x}, found in NotPaths. Contains '{' or '}' beyond a supported "
     "path template",
     NULL},
    {"template literal", RULE("{'to':[{'operation':{'paths':['/a*/{*}']}}]}"), -1,
     "invalid or unsupported path a*/{*}, found in Paths. Contains segment a* with invalid string "
     "literal",
     NULL},

    /* when */
    {"when no key", RULE("{'when':[{'values':['a']}]}"), -1,
     "=" PFX "spec.rules[0].when[0].key: `key` must not be empty", NULL},
    {"when no values", RULE("{'when':[{'key':'source.ip'}]}"), -1,
     "=" PFX "spec.rules[0].when[0]: at least one of `values` or `notValues` must be set for key "
     "source.ip",
     NULL},
    {"when nil", RULE("{'when':[null]}"), -1, "when field cannot be nil", NULL},
    {"when unknown", RULE("{'when':[{'key':'source.color','values':['a']}]}"), -1,
     "=" PFX "spec.rules[0].when[0].values: invalid `value` for `key` source.color: unknown "
     "attribute: source.color",
     NULL},
    {"when bad ip", RULE("{'when':[{'key':'destination.ip','notValues':['x']}]}"), -1,
     "=" PFX "spec.rules[0].when[0].notValues: invalid `notValue` for `key` destination.ip: bad IP "
     "address (x)",
     NULL},
    {"when bad port", RULE("{'when':[{'key':'destination.port','values':['99999']}]}"), -1,
     "invalid `value` for `key` destination.port: bad port (99999)", NULL},
    {"when header key", RULE("{'when':[{'key':'request.headers','values':['a']}]}"), -1,
     "bad key (request.headers): should have format a[b]", NULL},
    {"when claims key", RULE("{'when':[{'key':'request.auth.claims[]','values':['a']}]}"), -1,
     "bad key (request.auth.claims[]): should have format a[b]", NULL},
    {"when envoy key", RULE("{'when':[{'key':'experimental.envoy.filters.x','values':['a']}]}"), -1,
     "bad key (experimental.envoy.filters.x)", NULL},
    {"when empty value", RULE("{'when':[{'key':'connection.sni','values':['']}]}"), -1,
     "empty value not allowed, found in connection.sni", NULL},
    {"when dest ns", RULE("{'when':[{'key':'destination.namespace','values':['a']}]}"), -1,
     "attribute destination.namespace is replaced by the metadata.namespace", NULL},
    {"when dest labels", RULE("{'when':[{'key':'destination.labels[app]','values':['a']}]}"), -1,
     "attribute destination.labels[app] is replaced by the workload selector", NULL},
    {"when dest user", RULE("{'when':[{'key':'destination.user','values':['a']}]}"), -1,
     "deprecated attribute destination.user: only supported in v1alpha1", NULL},
    {"when sa wildcard", RULE("{'when':[{'key':'source.serviceAccount','values':['a*']}]}"), -1,
     "wildcard not allowed, found in source.serviceAccount", NULL},
    {"when sa format", RULE("{'when':[{'key':'source.serviceAccount','values':['a/b/c']}]}"), -1,
     "expected format 'serviceAccount' or 'namespace/serviceAccount'", NULL},
    {"when td wildcard", RULE("{'when':[{'key':'source.trustDomain','values':['a*b']}]}"), -1,
     "wildcard is only allowed at the start or end, found in source.trustDomain: \"a*b\"", NULL},
    {"when td two wildcards", RULE("{'when':[{'key':'source.trustDomain','values':['*a*']}]}"), -1,
     "at most one wildcard is allowed", NULL},

    /* JSON shapes */
    {"rules not a list", AP("{'rules':{}}"), -1, "spec.rules: must be a list", NULL},
    {"selector not an object", AP("{'selector':'x'}"), -1, "spec.selector: must be an object",
     NULL},
    {"no spec",
     "{'apiVersion':'security.istio.io/v1','kind':'AuthorizationPolicy','metadata':{"
     "'name':'p','namespace':'foo'}}",
     -1, "spec: required", NULL},
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

static void test_warnings(void **state)
{
    (void)state;
    static const struct {
        const char *name, *json, *want;
    } w[] = {
        {"deny http only",
         AP("{'action':'DENY','rules':[{'to':[{'operation':{'methods':['GET']}}]}]}"),
         "=" PFX "spec.rules[0]: configured AuthorizationPolicy will deny all traffic to TCP ports "
         "under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended "
         "to explicitly specify the port"},
        {"deny request principals only",
         AP("{'action':'DENY','rules':[{'from':[{'source':{'requestPrincipals':['*']}}]}]}"),
         "will deny all traffic to TCP ports"},
        {"deny with port",
         AP("{'action':'DENY','rules':[{'to':[{'operation':{'methods':['GET'],'ports':['80']}}]}]"
            "}"),
         NULL},
        {"deny trust domains only",
         AP("{'action':'DENY','rules':[{'from':[{'source':{'trustDomains':['td']}}]}]}"),
         "will deny all traffic to TCP ports"},
        {"deny service accounts",
         AP("{'action':'DENY','rules':[{'from':[{'source':{'serviceAccounts':['a']}}]}]}"), NULL},
        {"deny with namespaces",
         AP("{'action':'DENY','rules':[{'from':[{'source':{'namespaces':['a']}}]}]}"), NULL},
        {"allow http only", AP("{'rules':[{'to':[{'operation':{'methods':['GET']}}]}]}"), NULL},
        {"empty selector", AP("{'selector':{}}"),
         "spec.selector: workload selector specified "
         "without labels"},
        {"bad dry-run",
         APX("'name':'p','namespace':'foo','annotations':{'istio.io/dry-run':'x'}", "{}"),
         "failed to parse the value of istio.io/dry-run"},
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

/* Each prefix of a refused object is refused without leaking (half-built frees). */
static void test_half_built(void **state)
{
    (void)state;
    const char *json = AP(
        "{'selector':{'matchLabels':{'a':'b'}},'rules':[{'from':[{'source':{'principals':['a']}}],"
        "'to':[{'operation':{'ports':['1']}}],'when':[{'key':'source.ip','values':['1.1.1.1']}]},"
        "{'from':[{'source':{'principals':['a']}},{'source':{'principals':['']}}]}]}");
    cJSON *j = parse_json(json);
    char err[512];
    mesh_object o = {0};
    assert_int_equal(mesh_parse(j, NULL, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "spec.rules[1].from[1].source.principals: empty value"));
    cJSON_Delete(j);
}

static void test_unsupported(void **state)
{
    (void)state;
    cJSON *j = parse_json(
        AP("{'selector':{'matchLabels':{'a':'b'}},'action':'ALLOW','rules':[{'from':[{'source':{"
           "'principals':['a'],'notIpBlocks':['1.1.1.1']}},{'source':{'serviceAccounts':['a'],"
           "'notServiceAccounts':['b'],'trustDomains':['t'],'notTrustDomains':['u']}}],'to':[{'"
           "operation':{'paths':['/']}}],"
           "'when':[{'key':'source.ip','values':['1.1.1.1']}]}],'futureField':1}"));
    char **paths = NULL;
    size_t n = 0;
    mesh_unsupported_fields(j, &paths, &n);
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "spec.futureField");
    free(paths[0]);
    free(paths);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_half_built),
        cmocka_unit_test(test_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
