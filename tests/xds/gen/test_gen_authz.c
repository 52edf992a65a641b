/* test_gen_authz: AuthorizationPolicy YAML -> the RBAC and ext_authz filters of
 * xds/gen/authz.c, decoded back from their bytes with protobuf-c: policy names, principals
 * (serviceAccounts, trustDomains, trust domain aliases), permissions, filter order, shadow
 * rules, CUSTOM with mesh config ext_authz providers (gRPC, HTTP, bad ones), TCP,
 * proxyless gRPC, and which policies a proxy gets (namespace, root namespace, selector,
 * targetRefs). The filters are also wrapped in Listeners written
 * the way gen_dump writes them and handed to the real peer, go-control-plane's validation
 * (tests/peers/xdscheck), when PILOT_PEERS_BIN names it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/ext_authz/v3/ext_authz.pb-c.h"
#include "envoy/extensions/filters/network/ext_authz/v3/ext_authz.pb-c.h"
#include "gen_fixture.h"
#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Extensions__Filters__Http__Rbac__V3__RBAC HttpRbac;
typedef Envoy__Extensions__Filters__Network__Rbac__V3__RBAC TcpRbac;
typedef Envoy__Config__Rbac__V3__RBAC Rbac;
typedef Envoy__Config__Rbac__V3__Policy Policy;
typedef Envoy__Config__Rbac__V3__Permission Perm;
typedef Envoy__Config__Rbac__V3__Principal Prin;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;
typedef Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthz HttpExtAuthz;
typedef Envoy__Extensions__Filters__Network__ExtAuthz__V3__ExtAuthz TcpExtAuthz;

#define AP(ns, name, spec)                                                                         \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " name        \
    "\n  namespace: " ns "\nspec:\n" spec "\n---\n"

/* One generation: what gen_authz_*_filters returned, serialized and decoded again: RBAC
 * filters in http/tcp, ext_authz filters in xhttp/xtcp. */
typedef struct built {
    size_t n;
    char *names[8];
    HttpRbac *http[8];
    TcpRbac *tcp[8];
    HttpExtAuthz *xhttp[8];
    TcpExtAuthz *xtcp[8];
} built;

/* The mesh config authorization settings of the next build() (NULL: none). */
static const xds_mesh_authz *build_mesh;

static void built_free(built *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->names[i]);
        if (b->http[i])
            envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(b->http[i], NULL);
        if (b->tcp[i])
            envoy__extensions__filters__network__rbac__v3__rbac__free_unpacked(b->tcp[i], NULL);
        if (b->xhttp[i])
            envoy__extensions__filters__http__ext_authz__v3__ext_authz__free_unpacked(b->xhttp[i],
                                                                                      NULL);
        if (b->xtcp[i])
            envoy__extensions__filters__network__ext_authz__v3__ext_authz__free_unpacked(b->xtcp[i],
                                                                                         NULL);
    }
    memset(b, 0, sizeof *b);
}

static void labels_of(const char *s, mesh_labels *out)
{
    cJSON *o = cJSON_CreateObject();
    char *dup = xstrdup(s ? s : ""), *save = NULL;
    for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        cJSON_AddStringToObject(o, kv, eq + 1);
    }
    assert_int_equal(mesh_labels_from_json(o, out), 0);
    cJSON_Delete(o);
    free(dup);
}

/* Builds the filters for a proxy in ns with labels; each one packed to bytes and unpacked,
 * so what is checked is what goes on the wire. */
static void build(const char *yaml, const char *ns, const char *labels, bool grpc, bool tcp,
                  const char *td, built *out)
{
    mesh_snapshot *s = fx_snapshot(yaml, NULL);
    gen_arena a = {0};
    gen_view v = {.ns = ns};
    labels_of(labels, &v.labels);
    gen_ctx c = {
        .a = &a, .p = &v, .s = s, .grpc = grpc, .trust_domain = td, .mesh_authz = build_mesh};
    memset(out, 0, sizeof *out);
    if (tcp) {
        Envoy__Config__Listener__V3__Filter **f = NULL;
        size_t n = 0;
        gen_authz_network_filters(&c, &f, &n);
        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++) {
            size_t len = protobuf_c_message_get_packed_size(&f[i]->base);
            uint8_t *buf = malloc(len);
            protobuf_c_message_pack(&f[i]->base, buf);
            Envoy__Config__Listener__V3__Filter *d =
                envoy__config__listener__v3__filter__unpack(NULL, len, buf);
            assert_non_null(d);
            out->names[i] = xstrdup(d->name);
            if (!strcmp(d->name, "envoy.filters.network.ext_authz")) {
                out->xtcp[i] = fx_unpack_any(
                    d->typed_config,
                    &envoy__extensions__filters__network__ext_authz__v3__ext_authz__descriptor);
                assert_non_null(out->xtcp[i]);
            } else {
                out->tcp[i] =
                    fx_unpack_any(d->typed_config,
                                  &envoy__extensions__filters__network__rbac__v3__rbac__descriptor);
                assert_non_null(out->tcp[i]);
            }
            envoy__config__listener__v3__filter__free_unpacked(d, NULL);
            free(buf);
        }
        out->n = n;
    } else {
        gen_hfilter **f = NULL;
        size_t n = 0;
        gen_authz_http_filters(&c, &f, &n);
        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++) {
            size_t len = protobuf_c_message_get_packed_size(&f[i]->base);
            uint8_t *buf = malloc(len);
            protobuf_c_message_pack(&f[i]->base, buf);
            HttpFilter *d =
                envoy__extensions__filters__network__http_connection_manager__v3__http_filter__unpack(
                    NULL, len, buf);
            assert_non_null(d);
            out->names[i] = xstrdup(d->name);
            if (!strcmp(d->name, "envoy.filters.http.ext_authz")) {
                out->xhttp[i] = fx_unpack_any(
                    d->typed_config,
                    &envoy__extensions__filters__http__ext_authz__v3__ext_authz__descriptor);
                assert_non_null(out->xhttp[i]);
            } else {
                out->http[i] = fx_unpack_any(
                    d->typed_config, &envoy__extensions__filters__http__rbac__v3__rbac__descriptor);
                assert_non_null(out->http[i]);
            }
            envoy__extensions__filters__network__http_connection_manager__v3__http_filter__free_unpacked(
                d, NULL);
            free(buf);
        }
        out->n = n;
    }
    mesh_labels_free(&v.labels);
    gen_arena_free(&a);
    mesh_snapshot_release(s);
}

static const Policy *policy(const Rbac *r, const char *name)
{
    assert_non_null(r);
    for (size_t i = 0; i < r->n_policies; i++)
        if (!strcmp(r->policies[i]->key, name))
            return r->policies[i]->value;
    for (size_t i = 0; i < r->n_policies; i++)
        print_message("  have %s\n", r->policies[i]->key);
    fail_msg("no policy %s", name);
    return NULL;
}

/* The i-th member of an AND of principals / permissions, checked to be one. */
static const Prin *and_id(const Prin *p, size_t i)
{
    assert_int_equal(p->identifier_case, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS);
    assert_true(i < p->and_ids->n_ids);
    return p->and_ids->ids[i];
}

static const Perm *and_rule(const Perm *p, size_t i)
{
    assert_int_equal(p->rule_case, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_AND_RULES);
    assert_true(i < p->and_rules->n_rules);
    return p->and_rules->rules[i];
}

static const Prin *or_id(const Prin *p, size_t i)
{
    assert_int_equal(p->identifier_case, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS);
    assert_true(i < p->or_ids->n_ids);
    return p->or_ids->ids[i];
}

static const Perm *or_rule(const Perm *p, size_t i)
{
    assert_int_equal(p->rule_case, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_OR_RULES);
    assert_true(i < p->or_rules->n_rules);
    return p->or_rules->rules[i];
}

/* principal_name of an authenticated principal, as "exact:x", "prefix:x", "suffix:x",
 * "regex:x". */
static const char *auth_name(const Prin *p, char *buf, size_t n)
{
    assert_int_equal(p->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED);
    const Envoy__Type__Matcher__V3__StringMatcher *m = p->authenticated->principal_name;
    switch (m->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        snprintf(buf, n, "exact:%s", m->exact);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        snprintf(buf, n, "prefix:%s", m->prefix);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        snprintf(buf, n, "suffix:%s", m->suffix);
        break;
    default:
        snprintf(buf, n, "regex:%s", m->safe_regex->regex);
        break;
    }
    return buf;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static const char full_allow[] =
    AP("foo", "httpbin",
       "  selector:\n    matchLabels:\n      app: httpbin\n"
       "  rules:\n"
       "  - from:\n"
       "    - source:\n"
       "        principals: [\"cluster.local/ns/a/sa/b\", \"pre-*\", \"*-suf\", \"*\"]\n"
       "        requestPrincipals: [\"https://iss.example.com/sub1\", \"iss-*\"]\n"
       "        namespaces: [\"ns.1\", \"team-*\"]\n"
       "        ipBlocks: [\"10.0.0.1\", \"10.1.0.0/16\"]\n"
       "        remoteIpBlocks: [\"2001:DB8::/32\"]\n"
       "        notPrincipals: [\"cluster.local/ns/a/sa/evil\"]\n"
       "    to:\n"
       "    - operation:\n"
       "        hosts: [\"Example.com\", \"*.suffix.com\"]\n"
       "        methods: [\"GET\", \"PO*\"]\n"
       "        paths: [\"/exact\", \"/pre/*\", \"*.png\", \"/tmpl/{*}/x\"]\n"
       "        ports: [\"8080\"]\n"
       "        notPaths: [\"/admin\"]\n"
       "    when:\n"
       "    - key: request.headers[X-Token]\n"
       "      values: [\"t-*\"]\n"
       "    - key: destination.port\n"
       "      values: [\"9090\"]\n"
       "    - key: request.auth.claims[groups]\n"
       "      values: [\"admin\"]\n");

static void test_http_allow_full(void **state)
{
    (void)state;
    built b;
    char buf[256];
    build(full_allow, "foo", "app=httpbin", false, false, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.names[0], "envoy.filters.http.rbac");
    const Rbac *r = b.http[0]->rules;
    assert_int_equal(r->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW);
    assert_null(b.http[0]->shadow_rules);
    assert_string_equal(b.http[0]->shadow_rules_stat_prefix, "istio_dry_run_allow_");
    const Policy *p = policy(r, "ns[foo]-policy[httpbin]-rule[0]");
    assert_int_equal(p->n_principals, 1);
    assert_int_equal(p->n_permissions, 1);

    /* principals: principals, requestPrincipals, namespaces, remoteIpBlocks, ipBlocks,
     * notPrincipals (with principals), then when keys (header, claims) */
    const Prin *pr = p->principals[0];
    const Prin *pp = and_id(pr, 0);
    assert_string_equal(auth_name(or_id(pp, 0), buf, sizeof buf),
                        "exact:spiffe://cluster.local/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(pp, 1), buf, sizeof buf), "prefix:spiffe://pre-");
    assert_string_equal(auth_name(or_id(pp, 2), buf, sizeof buf), "regex:spiffe://.*-suf");
    assert_string_equal(auth_name(or_id(pp, 3), buf, sizeof buf), "regex:.+");
    const Prin *npr = and_id(pr, 1);
    assert_int_equal(npr->identifier_case, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID);
    assert_string_equal(auth_name(or_id(npr->not_id, 0), buf, sizeof buf),
                        "exact:spiffe://cluster.local/ns/a/sa/evil");
    /* requestPrincipals: jwt_authn payload iss and sub */
    const Prin *rp = or_id(and_id(pr, 2), 0);
    const Envoy__Type__Matcher__V3__MetadataMatcher *mi = and_id(rp, 0)->metadata,
                                                    *ms = and_id(rp, 1)->metadata;
    assert_string_equal(mi->filter, "envoy.filters.http.jwt_authn");
    assert_int_equal(mi->n_path, 2);
    assert_string_equal(mi->path[0]->key, "payload");
    assert_string_equal(mi->path[1]->key, "iss");
    assert_string_equal(mi->value->string_match->exact, "https://iss.example.com");
    assert_string_equal(ms->path[1]->key, "sub");
    assert_string_equal(ms->value->string_match->exact, "sub1");
    const Prin *rp2 = or_id(and_id(pr, 2), 1); /* "iss-*": issuer prefix, any subject */
    assert_string_equal(and_id(rp2, 0)->metadata->value->string_match->prefix, "iss-");
    assert_string_equal(and_id(rp2, 1)->metadata->value->string_match->safe_regex->regex, ".+");
    /* namespaces: quoted regex */
    assert_string_equal(auth_name(or_id(and_id(pr, 3), 0), buf, sizeof buf),
                        "regex:.*/ns/ns\\.1/.*");
    assert_string_equal(auth_name(or_id(and_id(pr, 3), 1), buf, sizeof buf),
                        "regex:.*/ns/team-.*/.*");
    /* remoteIpBlocks then ipBlocks */
    const Prin *rip = or_id(and_id(pr, 4), 0);
    assert_int_equal(rip->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_REMOTE_IP);
    assert_string_equal(rip->remote_ip->address_prefix, "2001:db8::");
    assert_int_equal(rip->remote_ip->prefix_len->value, 32);
    const Prin *dip = or_id(and_id(pr, 5), 1);
    assert_int_equal(dip->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_DIRECT_REMOTE_IP);
    assert_string_equal(dip->direct_remote_ip->address_prefix, "10.1.0.0");
    assert_int_equal(dip->direct_remote_ip->prefix_len->value, 16);
    assert_int_equal(or_id(and_id(pr, 5), 0)->direct_remote_ip->prefix_len->value, 32);
    /* when: request.headers[X-Token] then the claim */
    const Prin *hdr = or_id(and_id(pr, 6), 0);
    assert_string_equal(hdr->header->name, "X-Token");
    assert_string_equal(hdr->header->string_match->prefix, "t-");
    const Envoy__Type__Matcher__V3__MetadataMatcher *cl = and_id(pr, 7)->metadata;
    assert_string_equal(cl->path[1]->key, "groups");
    assert_int_equal(cl->value->match_pattern_case,
                     ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_OR_MATCH);
    assert_int_equal(cl->value->or_match->n_value_matchers, 2); /* list holding it, or it */
    assert_int_equal(cl->value->or_match->value_matchers[0]->match_pattern_case,
                     ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_LIST_MATCH);
    assert_int_equal(and_id(pr, 7) == and_id(pr, 7), 1);
    assert_int_equal(pr->and_ids->n_ids, 8);

    /* permissions: hosts, methods, paths, notPaths, ports, then destination.port */
    const Perm *pe = p->permissions[0];
    assert_int_equal(pe->and_rules->n_rules, 6);
    const Perm *h0 = or_rule(and_rule(pe, 0), 0), *h1 = or_rule(and_rule(pe, 0), 1);
    assert_string_equal(h0->header->name, ":authority");
    assert_string_equal(h0->header->string_match->exact, "Example.com");
    assert_true(h0->header->string_match->ignore_case);
    assert_string_equal(h1->header->string_match->suffix, ".suffix.com");
    assert_true(h1->header->string_match->ignore_case);
    const Perm *m1 = or_rule(and_rule(pe, 1), 1);
    assert_string_equal(m1->header->name, ":method");
    assert_string_equal(m1->header->string_match->prefix, "PO");
    assert_false(m1->header->string_match->ignore_case);
    const Perm *paths = and_rule(pe, 2);
    assert_string_equal(or_rule(paths, 0)->url_path->path->exact, "/exact");
    assert_string_equal(or_rule(paths, 1)->url_path->path->prefix, "/pre/");
    assert_string_equal(or_rule(paths, 2)->url_path->path->suffix, ".png");
    const Perm *tmpl = or_rule(paths, 3);
    assert_int_equal(tmpl->rule_case, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_URI_TEMPLATE);
    assert_string_equal(tmpl->uri_template->name, "uri-template");
    assert_string_equal(
        tmpl->uri_template->typed_config->type_url,
        "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig");
    /* UriTemplateMatchConfig{path_template: "/tmpl/ * /x"} encoded by hand */
    assert_int_equal(tmpl->uri_template->typed_config->value.len, 2 + strlen("/tmpl/*/x"));
    assert_memory_equal(tmpl->uri_template->typed_config->value.data + 2, "/tmpl/*/x", 9);
    const Perm *np = and_rule(pe, 3);
    assert_int_equal(np->rule_case, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_NOT_RULE);
    assert_string_equal(or_rule(np->not_rule, 0)->url_path->path->exact, "/admin");
    assert_int_equal(or_rule(and_rule(pe, 4), 0)->destination_port, 8080);
    assert_int_equal(or_rule(and_rule(pe, 5), 0)->destination_port, 9090);
    built_free(&b);
}

/* Trust domain: cluster.local principals are rewritten to the mesh's trust domain. */
static void test_http_trust_domain(void **state)
{
    (void)state;
    built b;
    char buf[256];
    build(AP("foo", "td",
             "  rules:\n  - from:\n    - source:\n        principals: "
             "[\"cluster.local/ns/a/sa/b\", \"other.td/ns/a/sa/b\", \"*/ns/a/sa/c\"]\n"),
          "foo", NULL, false, false, "td1.example", &b);
    const Prin * or
        = and_id(policy(b.http[0]->rules, "ns[foo]-policy[td]-rule[0]")->principals[0], 0);
    assert_string_equal(auth_name(or_id(or, 0), buf, sizeof buf),
                        "exact:spiffe://td1.example/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(or, 1), buf, sizeof buf),
                        "exact:spiffe://other.td/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(or, 2), buf, sizeof buf), "regex:spiffe://.*/ns/a/sa/c");
    built_free(&b);
}

/* source.serviceAccounts and trustDomains: istiod's principal generators, in its order
 * (principals, requestPrincipals, serviceAccounts, trustDomains, namespaces, ...). */
static void test_http_service_accounts_trust_domains(void **state)
{
    (void)state;
    built b;
    char buf[256];
    build(AP("foo", "sa",
             "  rules:\n  - from:\n    - source:\n"
             "        serviceAccounts: [\"a\", \"other/b.c\"]\n"
             "        notTrustDomains: [\"bad*\"]\n"
             "        trustDomains: [\"*\", \"td.example\", \"*.corp\"]\n"
             "        ipBlocks: [\"10.0.0.1\"]\n"),
          "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 1);
    const Prin *pr = policy(b.http[0]->rules, "ns[foo]-policy[sa]-rule[0]")->principals[0];
    assert_int_equal(pr->and_ids->n_ids, 4);
    const Prin *sa = and_id(pr, 0);
    assert_string_equal(auth_name(or_id(sa, 0), buf, sizeof buf),
                        "regex:spiffe://.+/ns/foo/(.+/|)sa/a(/.+)?");
    assert_string_equal(auth_name(or_id(sa, 1), buf, sizeof buf),
                        "regex:spiffe://.+/ns/other/(.+/|)sa/b\\.c(/.+)?");
    const Prin *td = and_id(pr, 1);
    assert_string_equal(auth_name(or_id(td, 0), buf, sizeof buf), "prefix:spiffe://");
    assert_string_equal(auth_name(or_id(td, 1), buf, sizeof buf), "prefix:spiffe://td.example/");
    assert_string_equal(auth_name(or_id(td, 2), buf, sizeof buf), "regex:spiffe://[^/]*\\.corp/.*");
    const Prin *not_td = and_id(pr, 2);
    assert_int_equal(not_td->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID);
    assert_string_equal(auth_name(or_id(not_td->not_id, 0), buf, sizeof buf),
                        "regex:spiffe://bad[^/]*/.*");
    assert_int_equal(or_id(and_id(pr, 3), 0)->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_DIRECT_REMOTE_IP);
    built_free(&b);

    /* both apply on TCP chains too */
    build(AP("foo", "sa",
             "  rules:\n  - from:\n    - source:\n        serviceAccounts: [\"a\"]\n"
             "        trustDomains: [\"td\"]\n"),
          "foo", NULL, false, true, NULL, &b);
    assert_int_equal(b.n, 1);
    pr = policy(b.tcp[0]->rules, "ns[foo]-policy[sa]-rule[0]")->principals[0];
    assert_int_equal(pr->and_ids->n_ids, 2);
    built_free(&b);
}

/* trustDomainAliases: principals of a known trust domain (or cluster.local) become one per
 * trust domain of the bundle; a known trust domain value stands for all of them. */
static void test_trust_domain_aliases(void **state)
{
    (void)state;
    built b;
    char buf[256];
    char *aliases[] = {"old.td", "*-legacy"};
    xds_mesh_authz m = {.trust_domain_aliases = {aliases, 2}};
    build_mesh = &m;
    build(AP("foo", "td",
             "  rules:\n  - from:\n    - source:\n        principals: "
             "[\"cluster.local/ns/a/sa/b\", \"elsewhere/ns/a/sa/b\", \"*/ns/a/sa/c\"]\n"
             "    - source:\n        trustDomains: [\"old.td\", \"x.td\"]\n"
             "        notTrustDomains: [\"new.td\"]\n"),
          "foo", NULL, false, false, "new.td", &b);
    build_mesh = NULL;
    const Policy *pol = policy(b.http[0]->rules, "ns[foo]-policy[td]-rule[0]");
    const Prin * or = and_id(pol->principals[0], 0);
    assert_int_equal(or->or_ids->n_ids, 5);
    assert_string_equal(auth_name(or_id(or, 0), buf, sizeof buf),
                        "exact:spiffe://new.td/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(or, 1), buf, sizeof buf),
                        "exact:spiffe://old.td/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(or, 2), buf, sizeof buf),
                        "regex:spiffe://.*-legacy/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(or, 3), buf, sizeof buf),
                        "exact:spiffe://elsewhere/ns/a/sa/b");
    assert_string_equal(auth_name(or_id(or, 4), buf, sizeof buf), "regex:spiffe://.*/ns/a/sa/c");
    const Prin *td = and_id(pol->principals[1], 0);
    assert_int_equal(td->or_ids->n_ids, 4); /* new.td, old.td, *-legacy, x.td */
    assert_string_equal(auth_name(or_id(td, 0), buf, sizeof buf), "prefix:spiffe://new.td/");
    assert_string_equal(auth_name(or_id(td, 1), buf, sizeof buf), "prefix:spiffe://old.td/");
    assert_string_equal(auth_name(or_id(td, 2), buf, sizeof buf), "regex:spiffe://[^/]*-legacy/.*");
    assert_string_equal(auth_name(or_id(td, 3), buf, sizeof buf), "prefix:spiffe://x.td/");
    const Prin *not_td = and_id(pol->principals[1], 1)->not_id;
    assert_int_equal(not_td->or_ids->n_ids, 3);
    built_free(&b);
}

static const char ext_service[] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: authz\n"
                                  "  namespace: ext\nspec:\n  clusterIP: 10.96.0.9\n  ports:\n"
                                  "  - {name: grpc, port: 9000}\n---\n";

#define CUSTOM_AP(name, provider, dry)                                                             \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " name        \
    "\n  namespace: foo\n" dry "spec:\n  action: CUSTOM\n  provider:\n    name: " provider         \
    "\n  rules:\n  - to:\n    - operation:\n        paths: [\"/" name "\"]\n---\n"
#define DRY_RUN "  annotations:\n    istio.io/dry-run: \"true\"\n"

static xds_ext_authz_provider grpc_provider(void)
{
    xds_ext_authz_provider p = {.name = "ga",
                                .kind = XDS_EXT_AUTHZ_GRPC,
                                .service = "ext/authz.ext.svc.cluster.local",
                                .port = 9000,
                                .timeout_ns = 250 * 1000000LL,
                                .fail_open = true,
                                .status_on_error = "403"};
    return p;
}

/* CUSTOM with a gRPC provider: the marking RBAC (enforced rules as shadow rules, dry-run
 * ones as rules) then ext_authz enabled by the mark; on TCP the network pair. */
static void test_custom_grpc_provider(void **state)
{
    (void)state;
    built b;
    xds_ext_authz_provider p = grpc_provider();
    xds_mesh_authz m = {.providers = &p, .nproviders = 1};
    char *yaml =
        xasprintf("%s%s%s", ext_service, CUSTOM_AP("a", "ga", ""), CUSTOM_AP("d", "ga", DRY_RUN));
    build_mesh = &m;
    build(yaml, "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.names[0], "envoy.filters.http.rbac");
    const HttpRbac *r = b.http[0];
    assert_string_equal(r->shadow_rules_stat_prefix, "istio_ext_authz_");
    assert_int_equal(r->shadow_rules->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    assert_int_equal(r->shadow_rules->n_policies, 1);
    policy(r->shadow_rules, "istio-ext-authz-ga-ns[foo]-policy[a]-rule[0]");
    assert_int_equal(r->rules->n_policies, 1);
    policy(r->rules, "istio-ext-authz-ga-ns[foo]-policy[d]-rule[0]");
    assert_string_equal(b.names[1], "envoy.filters.http.ext_authz");
    const HttpExtAuthz *x = b.xhttp[1];
    assert_true(x->failure_mode_allow);
    assert_int_equal(x->status_on_error->code, 403);
    assert_int_equal(x->transport_api_version, ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
    assert_int_equal(
        x->services_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_GRPC_SERVICE);
    assert_string_equal(x->grpc_service->envoy_grpc->cluster_name,
                        "outbound|9000||authz.ext.svc.cluster.local");
    assert_string_equal(x->grpc_service->envoy_grpc->authority, "authz.ext.svc.cluster.local");
    assert_int_equal(x->grpc_service->timeout->seconds, 0);
    assert_int_equal(x->grpc_service->timeout->nanos, 250000000);
    assert_null(x->with_request_body);
    const Envoy__Type__Matcher__V3__MetadataMatcher *fe = x->filter_enabled_metadata;
    assert_string_equal(fe->filter, "envoy.filters.http.rbac");
    assert_string_equal(fe->path[0]->key, "istio_ext_authz_shadow_effective_policy_id");
    assert_string_equal(fe->value->string_match->prefix, "istio-ext-authz-ga");
    built_free(&b);

    build(yaml, "foo", NULL, false, true, NULL, &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.names[0], "envoy.filters.network.rbac");
    assert_string_equal(b.tcp[0]->stat_prefix, "tcp.");
    assert_string_equal(b.tcp[0]->shadow_rules_stat_prefix, "istio_ext_authz_");
    assert_non_null(b.tcp[0]->shadow_rules);
    assert_string_equal(b.names[1], "envoy.filters.network.ext_authz");
    const TcpExtAuthz *t = b.xtcp[1];
    assert_string_equal(t->stat_prefix, "tcp.");
    assert_true(t->failure_mode_allow);
    assert_string_equal(t->grpc_service->envoy_grpc->cluster_name,
                        "outbound|9000||authz.ext.svc.cluster.local");
    assert_string_equal(t->filter_enabled_metadata->filter, "envoy.filters.network.rbac");
    built_free(&b);

    /* gRPC servers have no ext_authz: what CUSTOM matches is denied, as before */
    build(yaml, "foo", NULL, true, false, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_null(b.xhttp[0]);
    built_free(&b);
    build_mesh = NULL;
    free(yaml);
}

/* CUSTOM with an HTTP provider: HttpService with the cluster, headers and body settings;
 * nothing on TCP chains. */
static void test_custom_http_provider(void **state)
{
    (void)state;
    built b;
    char *inc[] = {"x-id", "x-pre-*", "*-suf"}, *dep[] = {"ignored"}, *up[] = {"Authorization"};
    char *deny[] = {"Set-Cookie"}, *keys[] = {"x-a", "x-b"}, *vals[] = {"1", "2"};
    xds_ext_authz_provider p = {.name = "ha",
                                .kind = XDS_EXT_AUTHZ_HTTP,
                                .service = "authz.ext.svc.cluster.local",
                                .port = 8000,
                                .timeout_ns = -1,
                                .path_prefix = "/check",
                                .with_body = true,
                                .max_request_bytes = 1024,
                                .pack_as_bytes = true,
                                .include_request_headers_in_check = {inc, 3},
                                .include_headers_in_check = {dep, 1},
                                .headers_to_upstream_on_allow = {up, 1},
                                .headers_to_downstream_on_deny = {deny, 1},
                                .additional_header_keys = {keys, 2},
                                .additional_header_values = {vals, 2}};
    xds_mesh_authz m = {.providers = &p, .nproviders = 1};
    char *yaml = xasprintf("%s%s", ext_service, CUSTOM_AP("a", "ha", ""));
    build_mesh = &m;
    build(yaml, "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 2);
    assert_null(b.http[0]->rules);
    const HttpExtAuthz *x = b.xhttp[1];
    assert_non_null(x);
    assert_false(x->failure_mode_allow);
    assert_null(x->status_on_error);
    assert_int_equal(
        x->services_case,
        ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_HTTP_SERVICE);
    const Envoy__Extensions__Filters__Http__ExtAuthz__V3__HttpService *h = x->http_service;
    assert_string_equal(h->path_prefix, "/check");
    assert_string_equal(h->server_uri->uri, "http://authz.ext.svc.cluster.local");
    assert_string_equal(h->server_uri->cluster, "outbound|8000||authz.ext.svc.cluster.local");
    assert_int_equal(h->server_uri->timeout->seconds, 600);
    assert_int_equal(h->authorization_request->n_headers_to_add, 2);
    assert_string_equal(h->authorization_request->headers_to_add[1]->key, "x-b");
    assert_string_equal(h->authorization_request->headers_to_add[1]->value, "2");
    assert_string_equal(h->authorization_response->allowed_upstream_headers->patterns[0]->exact,
                        "Authorization");
    assert_true(h->authorization_response->allowed_upstream_headers->patterns[0]->ignore_case);
    assert_string_equal(h->authorization_response->allowed_client_headers->patterns[0]->exact,
                        "Set-Cookie");
    assert_null(h->authorization_response->allowed_client_headers_on_success);
    assert_int_equal(x->allowed_headers->n_patterns, 3);
    assert_string_equal(x->allowed_headers->patterns[0]->exact, "x-id");
    assert_string_equal(x->allowed_headers->patterns[1]->prefix, "x-pre-");
    assert_string_equal(x->allowed_headers->patterns[2]->suffix, "-suf");
    assert_int_equal(x->with_request_body->max_request_bytes, 1024);
    assert_true(x->with_request_body->pack_as_bytes);
    assert_false(x->with_request_body->allow_partial_message);
    built_free(&b);

    build(yaml, "foo", NULL, false, true, NULL, &b);
    assert_int_equal(b.n, 0); /* an HTTP provider has no network filter */
    built_free(&b);
    build_mesh = NULL;
    free(yaml);
}

/* What keeps today's deny: a provider the mesh config does not define, one it defines
 * badly (port, statusOnError, a service not in the registry or not in the namespace
 * named, pathPrefix), a name given twice, or several providers for one workload. */
static void test_custom_bad_providers(void **state)
{
    (void)state;
    static const struct {
        const char *name, *service, *status, *path_prefix;
        int64_t port;
    } bad[] = {
        {"zz", "ext/authz.ext.svc.cluster.local", NULL, NULL, 9000}, /* not the one named */
        {"ga", "ext/authz.ext.svc.cluster.local", NULL, NULL, 0},
        {"ga", "ext/authz.ext.svc.cluster.local", NULL, NULL, 70000},
        {"ga", "ext/authz.ext.svc.cluster.local", "999", NULL, 9000},
        {"ga", "ext/authz.ext.svc.cluster.local", "x", NULL, 9000},
        {"ga", "foo/authz.ext.svc.cluster.local", NULL, NULL, 9000},
        {"ga", "nope.ext.svc.cluster.local", NULL, NULL, 9000},
        {"ga", "", NULL, NULL, 9000},
        {"ga", "ext/authz.ext.svc.cluster.local", NULL, "check", 9000}, /* HTTP */
    };
    char *yaml = xasprintf("%s%s", ext_service, CUSTOM_AP("a", "ga", ""));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xds_ext_authz_provider p = grpc_provider();
        p.name = (char *)bad[i].name;
        p.service = (char *)bad[i].service;
        p.status_on_error = (char *)bad[i].status;
        p.port = bad[i].port;
        if (bad[i].path_prefix) {
            p.kind = XDS_EXT_AUTHZ_HTTP;
            p.path_prefix = (char *)bad[i].path_prefix;
        }
        xds_mesh_authz m = {.providers = &p, .nproviders = 1};
        built b;
        build_mesh = &m;
        for (int tcp = 0; tcp < 2; tcp++) {
            build(yaml, "foo", NULL, false, tcp, NULL, &b);
            if (b.n != 1)
                fail_msg("case %zu tcp=%d: %zu filters", i, tcp, b.n);
            const Rbac *r = tcp ? b.tcp[0]->rules : b.http[0]->rules;
            assert_int_equal(r->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
            policy(r, "istio-ext-authz-ga-ns[foo]-policy[a]-rule[0]-deny-due-to-bad-CUSTOM-action");
            built_free(&b);
        }
    }
    /* a working provider, but two providers for the workload: both deny */
    xds_ext_authz_provider ps[2] = {grpc_provider(), grpc_provider()};
    ps[1].name = "gb";
    xds_mesh_authz m = {.providers = ps, .nproviders = 2};
    char *two =
        xasprintf("%s%s%s", ext_service, CUSTOM_AP("a", "ga", ""), CUSTOM_AP("b", "gb", ""));
    built b;
    build_mesh = &m;
    build(two, "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 2);
    policy(b.http[0]->rules,
           "istio-ext-authz-ga-ns[foo]-policy[a]-rule[0]-deny-due-to-bad-CUSTOM-action");
    policy(b.http[1]->rules,
           "istio-ext-authz-gb-ns[foo]-policy[b]-rule[0]-deny-due-to-bad-CUSTOM-action");
    built_free(&b);
    /* the same name twice in mesh config: istiod's "must be unique" */
    ps[1].name = "ga";
    build(yaml, "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_null(b.xhttp[0]);
    built_free(&b);
    build_mesh = NULL;
    free(two);
    free(yaml);
}

/* istiod's order: CUSTOM (here: the deny for a provider that is not found), AUDIT, DENY,
 * ALLOW; dry-run policies in shadow_rules; an ALLOW policy without rules matches never. */
static void test_http_order_and_dry_run(void **state)
{
    (void)state;
    built b;
    const char *yaml = AP("foo", "allow-nothing", "  action: ALLOW\n") AP(
        "foo", "deny-x",
        "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: "
        "[\"/x\"]\n")
        AP("istio-system", "audit",
           "  action: AUDIT\n  rules:\n  - {}\n") "apiVersion: security.istio.io/v1\nkind: "
                                                  "AuthorizationPolicy\nmetadata:\n  name: "
                                                  "dry\n  namespace: foo\n  annotations:\n    "
                                                  "istio.io/dry-run: \"true\"\nspec:\n  "
                                                  "action: DENY\n  rules:\n  - {}\n---\n" AP(
                                                      "foo", "ext",
                                                      "  action: CUSTOM\n  provider:\n    name: "
                                                      "zz\n  rules:\n  - to:\n    - "
                                                      "operation:\n        methods: [\"POST\"]\n")
                                                      AP("foo", "ext2",
                                                         "  action: CUSTOM\n  provider:\n    name: "
                                                         "aa\n  rules:\n  - "
                                                         "{}\n");
    build(yaml, "foo", "app=x", false, false, NULL, &b);
    assert_int_equal(b.n, 5);
    /* custom, one per provider in name order */
    assert_int_equal(b.http[0]->rules->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    policy(b.http[0]->rules,
           "istio-ext-authz-aa-ns[foo]-policy[ext2]-rule[0]-deny-due-to-bad-CUSTOM-action");
    const Policy *cu =
        policy(b.http[1]->rules,
               "istio-ext-authz-zz-ns[foo]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action");
    assert_string_equal(or_rule(and_rule(cu->permissions[0], 0), 0)->header->string_match->exact,
                        "POST");
    assert_string_equal(b.http[1]->shadow_rules_stat_prefix, "");
    /* audit from the root namespace */
    assert_int_equal(b.http[2]->rules->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__LOG);
    policy(b.http[2]->rules, "ns[istio-system]-policy[audit]-rule[0]");
    /* deny: enforced and shadow */
    assert_int_equal(b.http[3]->rules->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    policy(b.http[3]->rules, "ns[foo]-policy[deny-x]-rule[0]");
    assert_int_equal(b.http[3]->shadow_rules->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    const Policy *dry = policy(b.http[3]->shadow_rules, "ns[foo]-policy[dry]-rule[0]");
    assert_int_equal(and_rule(dry->permissions[0], 0)->rule_case,
                     ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY);
    assert_int_equal(b.http[3]->rules->n_policies, 1);
    assert_string_equal(b.http[3]->shadow_rules_stat_prefix, "istio_dry_run_deny_");
    /* allow without rules: never matches, so everything is denied */
    assert_int_equal(b.http[4]->rules->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW);
    const Policy *never = policy(b.http[4]->rules, "ns[foo]-policy[allow-nothing]-rule[0]");
    assert_int_equal(never->permissions[0]->rule_case,
                     ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_NOT_RULE);
    assert_true(never->permissions[0]->not_rule->any);
    assert_int_equal(never->principals[0]->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID);
    for (size_t i = 0; i < b.n; i++)
        assert_string_equal(b.names[i], "envoy.filters.http.rbac");
    built_free(&b);
}

/* Only a dry-run ALLOW: no enforced rules at all, the shadow ones under the allow prefix. */
static void test_http_dry_run_only(void **state)
{
    (void)state;
    built b;
    build("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: d\n  "
          "namespace: foo\n  annotations:\n    istio.io/dry-run: \"true\"\nspec:\n  rules:\n  - "
          "{}\n",
          "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_null(b.http[0]->rules);
    policy(b.http[0]->shadow_rules, "ns[foo]-policy[d]-rule[0]");
    assert_string_equal(b.http[0]->shadow_rules_stat_prefix, "istio_dry_run_allow_");
    built_free(&b);
}

/* Which policies the proxy gets: its namespace and the root namespace, selectors on its
 * labels, never targetRefs. */
static void test_selection(void **state)
{
    (void)state;
    built b;
    const char *yaml = AP("foo", "ns-wide", "  rules:\n  - {}\n") AP(
        "bar", "other-ns", "  rules:\n  - {}\n") AP("istio-system", "mesh", "  rules:\n  - {}\n")
        AP("foo", "sel-ok", "  selector:\n    matchLabels:\n      app: web\n  rules:\n  - {}\n")
            AP("foo", "sel-no", "  selector:\n    matchLabels:\n      app: db\n  rules:\n  - {}\n")
                AP("foo", "gw",
                   "  targetRefs:\n  - kind: Gateway\n    group: "
                   "gateway.networking.k8s.io\n    name: g\n  rules:\n  - {}\n");
    build(yaml, "foo", "app=web,version=v1", false, false, NULL, &b);
    assert_int_equal(b.n, 1);
    const Rbac *r = b.http[0]->rules;
    assert_int_equal(r->n_policies, 3);
    /* sorted by name */
    assert_string_equal(r->policies[0]->key, "ns[foo]-policy[ns-wide]-rule[0]");
    assert_string_equal(r->policies[1]->key, "ns[foo]-policy[sel-ok]-rule[0]");
    assert_string_equal(r->policies[2]->key, "ns[istio-system]-policy[mesh]-rule[0]");
    built_free(&b);
    build(yaml, "baz", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.http[0]->rules->n_policies, 1); /* the mesh-wide one */
    built_free(&b);
    build(AP("bar", "x", "  rules:\n  - {}\n"), "foo", NULL, false, false, NULL, &b);
    assert_int_equal(b.n, 0);
    built_free(&b);
}

/* ---- TCP ---------------------------------------------------------------------------------- */

/* HTTP-only fields: an ALLOW rule that needs one is dropped (allows less), a DENY rule
 * loses the condition (denies more). Ports and sources stay. */
static void test_tcp(void **state)
{
    (void)state;
    built b;
    const char *yaml = AP("foo", "allow",
                          "  rules:\n  - to:\n    - operation:\n        methods: [\"GET\"]\n"
                          "  - from:\n    - source:\n        namespaces: [\"a\"]\n    to:\n    - "
                          "operation:\n        ports: [\"3306\"]\n")
        AP("foo", "deny",
           "  action: DENY\n  rules:\n  - to:\n    - operation:\n        "
           "methods: [\"GET\"]\n        ports: [\"22\"]\n    when:\n    - key: "
           "request.auth.claims[iss]\n      values: [\"x\"]\n");
    build(yaml, "foo", NULL, false, true, NULL, &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.names[0], "envoy.filters.network.rbac");
    assert_string_equal(b.tcp[0]->stat_prefix, "tcp.");
    assert_string_equal(b.tcp[0]->shadow_rules_stat_prefix, "istio_dry_run_allow_");
    const Rbac *deny = b.tcp[0]->rules;
    assert_int_equal(deny->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    const Policy *d = policy(deny, "ns[foo]-policy[deny]-rule[0]");
    /* methods gone, the port kept; the claim gone: principal any */
    assert_int_equal(d->permissions[0]->and_rules->n_rules, 1);
    assert_int_equal(or_rule(and_rule(d->permissions[0], 0), 0)->destination_port, 22);
    assert_int_equal(and_id(d->principals[0], 0)->identifier_case,
                     ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY);
    const Rbac *allow = b.tcp[1]->rules;
    assert_int_equal(allow->n_policies, 1); /* rule[0] needs HTTP: dropped */
    const Policy *a = policy(allow, "ns[foo]-policy[allow]-rule[1]");
    assert_int_equal(or_rule(and_rule(a->permissions[0], 0), 0)->destination_port, 3306);
    built_free(&b);

    /* an ALLOW whose every rule needs HTTP still gives an (empty, deny-all) ALLOW filter */
    build(AP("foo", "http-only", "  rules:\n  - to:\n    - operation:\n        paths: [\"/\"]\n"),
          "foo", NULL, false, true, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.tcp[0]->rules->n_policies, 0);
    built_free(&b);
}

/* ---- proxyless gRPC ----------------------------------------------------------------------- */

static void test_grpc(void **state)
{
    (void)state;
    built b;
    const char *yaml =
        AP("foo", "allow",
           "  rules:\n  - to:\n    - operation:\n        paths: [\"/pkg.Svc/*\"]\n        hosts: "
           "[\"Svc.foo\"]\n    when:\n    - key: request.headers[x-user]\n      values: "
           "[\"u1\"]\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n"
           "  - to:\n    - operation:\n        paths: [\"/pkg.Svc/{*}\"]\n")
            AP("foo", "deny",
               "  action: DENY\n  rules:\n  - from:\n    - source:\n        "
               "notRequestPrincipals: [\"*\"]\n        namespaces: [\"bad\"]\n")
                AP("foo", "audit",
                   "  action: AUDIT\n  rules:\n  - {}\n") "apiVersion: security.istio.io/v1\nkind: "
                                                          "AuthorizationPolicy\nmetadata:\n  "
                                                          "name: dry\n  namespace: foo\n  "
                                                          "annotations:\n    istio.io/dry-run: "
                                                          "\"true\"\nspec:\n  action: DENY\n  "
                                                          "rules:\n  - {}\n---\n" AP(
                                                              "foo", "ext",
                                                              "  action: CUSTOM\n  provider:\n    "
                                                              "name: p\n  rules:\n  - "
                                                              "to:\n    - operation:\n        "
                                                              "paths: [\"/pkg.Svc/Admin\"]\n");
    build(yaml, "foo", NULL, true, false, NULL, &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.names[0], "envoy.filters.http.rbac.DENY");
    assert_string_equal(b.names[1], "envoy.filters.http.rbac");
    for (size_t i = 0; i < 2; i++) {
        assert_null(b.http[i]->shadow_rules);
        assert_string_equal(b.http[i]->shadow_rules_stat_prefix, "");
    }
    const Rbac *deny = b.http[0]->rules;
    assert_int_equal(deny->n_policies, 2); /* deny-0 and the CUSTOM one; not the dry-run */
    const Policy *d = policy(deny, "foo-deny-0");
    /* notRequestPrincipals dropped (no JWT metadata on gRPC): a wider deny */
    assert_int_equal(d->principals[0]->and_ids->n_ids, 1);
    policy(deny, "foo-ext-0");
    const Rbac *allow = b.http[1]->rules;
    assert_int_equal(allow->n_policies, 1); /* rules 1 (JWT) and 2 (URI template) dropped */
    const Policy *a = policy(allow, "foo-allow-0");
    const Perm *host = or_rule(and_rule(a->permissions[0], 0), 0);
    assert_int_equal(
        host->header->header_match_specifier_case,
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH);
    assert_string_equal(host->header->safe_regex_match->regex, "(?i)Svc\\.foo");
    const Perm *path = or_rule(and_rule(a->permissions[0], 1), 0);
    assert_string_equal(path->url_path->path->prefix, "/pkg.Svc/");
    const Prin *hdr = or_id(and_id(a->principals[0], 0), 0);
    assert_int_equal(hdr->header->header_match_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH);
    assert_string_equal(hdr->header->exact_match, "u1");
    built_free(&b);

    /* no network RBAC for gRPC */
    build(yaml, "foo", NULL, true, true, NULL, &b);
    assert_int_equal(b.n, 0);
    built_free(&b);
    /* ALLOW without rules: deny all on gRPC too */
    build(AP("foo", "none", "  action: ALLOW\n"), "foo", NULL, true, false, NULL, &b);
    assert_int_equal(b.n, 1);
    assert_true(policy(b.http[0]->rules, "foo-none-0")->permissions[0]->not_rule->any);
    built_free(&b);
}

/* ---- the real peer ------------------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const ProtobufCMessage *m)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(m, buf);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

/* A Listener whose one chain is [network filters..., HCM{inline route, http filters...,
 * router}]; gRPC: the server listener shape (non_forwarding_action). */
static Envoy__Config__Listener__V3__Listener *peer_listener(gen_ctx *c, const char *name,
                                                            uint32_t port)
{
    Envoy__Config__Listener__V3__Listener *l = GA_MSG(c->a, Envoy__Config__Listener__V3__Listener,
                                                      envoy__config__listener__v3__listener__init);
    l->name = ga_strdup(c->a, name);
    l->address = gen_address(c, "0.0.0.0", port);
    Envoy__Config__Listener__V3__FilterChain *fc =
        GA_MSG(c->a, Envoy__Config__Listener__V3__FilterChain,
               envoy__config__listener__v3__filter_chain__init);
    GA_PUSH(c->a, l->filter_chains, l->n_filter_chains, fc);
    if (!c->grpc)
        gen_authz_network_filters(c, &fc->filters, &fc->n_filters);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h = GA_MSG(
        c->a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager,
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init);
    h->stat_prefix = ga_strdup(c->a, "inbound");
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        GA_MSG(c->a, Envoy__Config__Route__V3__RouteConfiguration,
               envoy__config__route__v3__route_configuration__init);
    rc->name = ga_strdup(c->a, "inbound");
    Envoy__Config__Route__V3__VirtualHost *vh = gen_vhost(c, "inbound");
    gen_vhost_domain(c, vh, "*");
    Envoy__Config__Route__V3__Route *r = gen_catchall_route(c, "/");
    if (c->grpc) {
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION;
        r->non_forwarding_action = GA_MSG(c->a, Envoy__Config__Route__V3__NonForwardingAction,
                                          envoy__config__route__v3__non_forwarding_action__init);
    } else {
        r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
        r->direct_response = GA_MSG(c->a, Envoy__Config__Route__V3__DirectResponseAction,
                                    envoy__config__route__v3__direct_response_action__init);
        r->direct_response->status = 200;
    }
    GA_PUSH(c->a, vh->routes, vh->n_routes, r);
    GA_PUSH(c->a, rc->virtual_hosts, rc->n_virtual_hosts, vh);
    h->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    h->route_config = rc;
    gen_authz_http_filters(c, &h->http_filters, &h->n_http_filters);
    Envoy__Extensions__Filters__Http__Router__V3__Router *router =
        GA_MSG(c->a, Envoy__Extensions__Filters__Http__Router__V3__Router,
               envoy__extensions__filters__http__router__v3__router__init);
    GA_PUSH(c->a, h->http_filters, h->n_http_filters,
            gen_http_filter_new(c, "envoy.filters.http.router", &router->base));
    GA_PUSH(c->a, fc->filters, fc->n_filters,
            gen_filter(c, "envoy.filters.network.http_connection_manager", &h->base));
    return l;
}

static void test_xdscheck(void **state)
{
    (void)state;
    const char *bin = getenv("PILOT_PEERS_BIN");
    char xc[1024];
    snprintf(xc, sizeof xc, "%s/xdscheck", bin ? bin : "");
    struct stat st;
    if (!bin || stat(xc, &st) != 0) {
        print_message("skipped: no xdscheck (PILOT_PEERS_BIN unset)\n");
        skip();
    }
    /* every form, URI templates included; the CUSTOM
     * policy's provider p is a gRPC ext_authz provider for the first sidecar listener
     * (HTTP and network ext_authz), an HTTP one for the second, unknown for the third */
    char *yaml = xasprintf("%s%s%s%s%s", full_allow,
                           AP("foo", "deny",
                              "  action: DENY\n  rules:\n  - "
                              "to:\n    - operation:\n        "
                              "notPorts: [\"1\"]\n"),
                           AP("foo", "audit", "  action: AUDIT\n  rules:\n  - {}\n"),
                           AP("foo", "ext",
                              "  action: CUSTOM\n  provider:\n    name: p\n  rules:\n"
                              "  - {}\n"),
                           ext_service);
    mesh_snapshot *s = fx_snapshot(yaml, NULL);
    char dir[] = "/tmp/test_gen_authz.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[1100];
    snprintf(path, sizeof path, "%s/index", dir);
    FILE *idx = fopen(path, "w");
    assert_non_null(idx);
    char *hdrs[] = {"x-id", "x-pre-*", "*-suf"}, *keys[] = {"x-a"}, *vals[] = {"1"};
    xds_ext_authz_provider grpc_p = grpc_provider(),
                           http_p = {.name = "p",
                                     .kind = XDS_EXT_AUTHZ_HTTP,
                                     .service = "authz.ext.svc.cluster.local",
                                     .port = 9000,
                                     .timeout_ns = -1,
                                     .status_on_error = "503",
                                     .path_prefix = "/check",
                                     .with_body = true,
                                     .max_request_bytes = 1024,
                                     .include_request_headers_in_check = {hdrs, 3},
                                     .headers_to_upstream_on_allow = {hdrs, 3},
                                     .headers_to_downstream_on_deny = {hdrs, 3},
                                     .headers_to_downstream_on_allow = {hdrs, 3},
                                     .additional_header_keys = {keys, 1},
                                     .additional_header_values = {vals, 1}};
    grpc_p.name = "p";
    xds_mesh_authz meshes[] = {{.providers = &grpc_p, .nproviders = 1},
                               {.providers = &http_p, .nproviders = 1},
                               {.nproviders = 0}};
    for (int k = 0; k < 4; k++) {
        bool grpc = k == 3;
        gen_arena a = {0};
        gen_view v = {.ns = "foo"};
        labels_of("app=httpbin", &v.labels);
        gen_ctx c = {
            .a = &a, .p = &v, .s = s, .grpc = grpc, .mesh_authz = grpc ? NULL : &meshes[k]};
        const char *name = grpc ? "xds.istio.io/grpc/lds/inbound/0.0.0.0:8080"
                                : ga_printf(&a, "inbound-authz-%d", k);
        Envoy__Config__Listener__V3__Listener *l = peer_listener(&c, name, 8080);
        Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
        if (!grpc)
            assert_string_equal(fc->filters[1]->name, k == 0 ? "envoy.filters.network.ext_authz"
                                                             : "envoy.filters.network.rbac");
        char file[32];
        snprintf(file, sizeof file, "%d.bin", k);
        write_file(dir, file, &l->base);
        fprintf(idx, "%s type.googleapis.com/envoy.config.listener.v3.Listener %s %s\n",
                grpc ? "grpc-server" : "sidecar", file, name);
        mesh_labels_free(&v.labels);
        gen_arena_free(&a);
    }
    fclose(idx);
    char *cmd = xasprintf("'%s' dir '%s'", xc, dir);
    int rc = system(cmd);
    free(cmd);
    cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(yaml);
    mesh_snapshot_release(s);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_allow_full),
        cmocka_unit_test(test_http_trust_domain),
        cmocka_unit_test(test_http_service_accounts_trust_domains),
        cmocka_unit_test(test_trust_domain_aliases),
        cmocka_unit_test(test_custom_grpc_provider),
        cmocka_unit_test(test_custom_http_provider),
        cmocka_unit_test(test_custom_bad_providers),
        cmocka_unit_test(test_http_order_and_dry_run),
        cmocka_unit_test(test_http_dry_run_only),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_grpc),
        cmocka_unit_test(test_xdscheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
