/* test_flags: the command line and PILOT_* environment, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pilot/flags.h"

#define MS 1000000LL

typedef struct flag_case {
    const char *name;
    const char *argv[8];
    const char *env_after, *env_max;
    int rc;
    flags_cmd cmd;
    const char *err_has; /* substring of the error when rc == -1 */
    /* expectations when rc == 0 (NULL / 0 = not checked) */
    const char *config_dir, *http_addr, *grpc_addr, *monitoring_addr, *domain;
    int64_t keepalive_ns, after_ns, max_ns;
} flag_case;

static const flag_case cases[] = {
    {"defaults",
     {"discovery"},
     NULL,
     NULL,
     0,
     FLAGS_CMD_DISCOVERY,
     NULL,
     NULL,
     ":8080",
     ":15010",
     ":15014",
     "cluster.local",
     30 * 60 * 1000 * MS,
     100 * MS,
     10000 * MS},
    {"space and equals forms",
     {"discovery", "--configDir", "/tmp/x", "--httpAddr=127.0.0.1:1", "--domain", "example.org",
      "--keepaliveMaxServerConnectionAge=1m30s"},
     NULL,
     NULL,
     0,
     FLAGS_CMD_DISCOVERY,
     NULL,
     "/tmp/x",
     "127.0.0.1:1",
     ":15010",
     ":15014",
     "example.org",
     90 * 1000 * MS,
     0,
     0},
    {"istiod deployment args",
     {"discovery", "--monitoringAddr=:15014", "--log_output_level=default:info", "--domain",
      "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"},
     NULL,
     NULL,
     0,
     FLAGS_CMD_DISCOVERY,
     NULL,
     NULL,
     NULL,
     NULL,
     ":15014",
     "cluster.local",
     30 * 60 * 1000 * MS,
     0,
     0},
    {"env debounce",
     {"discovery"},
     "250ms",
     "2s",
     0,
     FLAGS_CMD_DISCOVERY,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     250 * MS,
     2000 * MS},
    {"version", {"version"}, NULL, NULL, 0, FLAGS_CMD_VERSION, NULL},
    {"help flag", {"--help"}, NULL, NULL, 0, FLAGS_CMD_HELP, NULL},
    {"discovery --help",
     {"discovery", "--grpcAddr", ":1", "-h"},
     NULL,
     NULL,
     0,
     FLAGS_CMD_HELP,
     NULL},
    {"no command", {NULL}, NULL, NULL, 0, FLAGS_CMD_HELP, NULL},
    {"unknown flag", {"discovery", "--bogus", "1"}, NULL, NULL, -1, 0, "--bogus"},
    {"unknown command", {"serve"}, NULL, NULL, -1, 0, "serve"},
    {"missing value", {"discovery", "--grpcAddr"}, NULL, NULL, -1, 0, "--grpcAddr"},
    {"bad duration",
     {"discovery", "--keepaliveMaxServerConnectionAge", "soon"},
     NULL,
     NULL,
     -1,
     0,
     "--keepaliveMaxServerConnectionAge"},
    {"bad env duration", {"discovery"}, "fast", NULL, -1, 0, "PILOT_DEBOUNCE_AFTER"},
    {"bad log level",
     {"discovery", "--log_output_level", "default:loud"},
     NULL,
     NULL,
     -1,
     0,
     "--log_output_level"},
    {"positional argument", {"discovery", "extra"}, NULL, NULL, -1, 0, "extra"},
    {"empty domain", {"discovery", "--domain="}, NULL, NULL, -1, 0, "--domain"},
    {"missing mesh config",
     {"discovery", "--meshConfig", "/nonexistent/mesh"},
     NULL,
     NULL,
     -1,
     0,
     "--meshConfig"},
};

static void set_env(const char *name, const char *v)
{
    if (v)
        setenv(name, v, 1);
    else
        unsetenv(name);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const flag_case *c = &cases[i];
        char *argv[10] = {"pilot-discovery"};
        int argc = 1;
        for (size_t j = 0; j < 8 && c->argv[j]; j++)
            argv[argc++] = (char *)c->argv[j];
        set_env("PILOT_DEBOUNCE_AFTER", c->env_after);
        set_env("PILOT_DEBOUNCE_MAX", c->env_max);
        pilot_flags f;
        char err[256];
        int rc = flags_parse(argc, argv, &f, err, sizeof(err));
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d (%s)", c->name, rc, c->rc, err);
        if (rc != 0) {
            if (!strstr(err, c->err_has))
                fail_msg("%s: error \"%s\" does not name %s", c->name, err, c->err_has);
            flags_free(&f);
            continue;
        }
        if (f.cmd != c->cmd)
            fail_msg("%s: cmd %d, want %d", c->name, f.cmd, c->cmd);
#define CHECK_STR(field)                                                                           \
    if (c->field && (!f.field || strcmp(f.field, c->field) != 0))                                  \
        fail_msg("%s: " #field " %s, want %s", c->name, f.field ? f.field : "(null)", c->field);
        CHECK_STR(config_dir)
        CHECK_STR(http_addr)
        CHECK_STR(grpc_addr)
        CHECK_STR(monitoring_addr)
        CHECK_STR(domain)
        if (c->cmd == FLAGS_CMD_DISCOVERY && !c->config_dir && f.config_dir)
            fail_msg("%s: configDir set unexpectedly", c->name);
        if (c->keepalive_ns && f.keepalive_max_server_connection_age_ns != c->keepalive_ns)
            fail_msg("%s: keepalive %lld", c->name,
                     (long long)f.keepalive_max_server_connection_age_ns);
        if (c->after_ns && f.debounce_after_ns != c->after_ns)
            fail_msg("%s: debounce after %lld", c->name, (long long)f.debounce_after_ns);
        if (c->max_ns && f.debounce_max_ns != c->max_ns)
            fail_msg("%s: debounce max %lld", c->name, (long long)f.debounce_max_ns);
        flags_free(&f);
    }
    unsetenv("PILOT_DEBOUNCE_AFTER");
    unsetenv("PILOT_DEBOUNCE_MAX");
}

/* istiod's boolean environment (ENABLE_NATIVE_SIDECARS, ENABLE_TLS_ON_SIDECAR_INGRESS):
 * unset false, true/1 and false/0 read, anything else an error naming the variable. */
static void test_env_bools(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int rc;
        bool want;
    } vals[] = {{NULL, 0, false},    {"true", 0, true}, {"1", 0, true},
                {"false", 0, false}, {"0", 0, false},   {"yes", -1, false}};
    static const char *const names[] = {"ENABLE_NATIVE_SIDECARS", "ENABLE_TLS_ON_SIDECAR_INGRESS"};
    for (size_t n = 0; n < 2; n++)
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            char *argv[] = {"pilot-discovery", "discovery"};
            set_env(names[n], vals[i].v);
            pilot_flags f;
            char err[256] = "";
            int rc = flags_parse(2, argv, &f, err, sizeof err);
            if (rc != vals[i].rc)
                fail_msg("%s=%s: rc %d (%s)", names[n], vals[i].v ? vals[i].v : "", rc, err);
            if (rc != 0)
                assert_non_null(strstr(err, names[n]));
            else
                assert_int_equal(n ? f.sidecar_ingress_tls : f.native_sidecars, vals[i].want);
            flags_free(&f);
            unsetenv(names[n]);
        }
}

/* --httpsAddr (istiod's flag): the webhooks' port, ":15017" unless given; "" turns it off. */
static void test_https_addr(void **state)
{
    (void)state;
    static const struct {
        const char *arg; /* NULL: not given */
        const char *want;
    } addrs[] = {
        {NULL, ":15017"},
        {"--httpsAddr=127.0.0.1:0", "127.0.0.1:0"},
        {"--httpsAddr=", ""},
    };
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        char *argv[] = {"pilot-discovery", "discovery", (char *)addrs[i].arg};
        pilot_flags f;
        char err[256];
        assert_int_equal(flags_parse(addrs[i].arg ? 3 : 2, argv, &f, err, sizeof(err)), 0);
        assert_non_null(f.https_addr);
        if (strcmp(f.https_addr, addrs[i].want) != 0)
            fail_msg("%s: httpsAddr %s, want %s", addrs[i].arg ? addrs[i].arg : "(default)",
                     f.https_addr, addrs[i].want);
        flags_free(&f);
    }
}

static void test_mesh_config(void **state)
{
    (void)state;
    char path[] = "/tmp/test_flags_meshXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "trustDomain: example.org\nrootNamespace: istio-root\n"
                       "defaultConfig:\n  discoveryAddress: istiod:15012\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    char *argv[] = {"pilot-discovery", "discovery", "--meshConfig", path};
    pilot_flags f;
    char err[256];
    assert_int_equal(flags_parse(4, argv, &f, err, sizeof(err)), 0);
    assert_string_equal(f.mesh.trust_domain, "example.org");
    assert_string_equal(f.mesh.root_namespace, "istio-root");
    assert_string_equal(f.mesh.default_config, "{\"discoveryAddress\":\"istiod:15012\"}");
    flags_free(&f);

    /* Not YAML: refused, naming the flag. */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("key: [unclosed\n", fp);
    fclose(fp);
    assert_int_equal(flags_parse(4, argv, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--meshConfig"));
    flags_free(&f);
    unlink(path);
}

static void write_mesh(const char *path, const char *yaml)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
}

/* Tracing: enableTracing (istiod's default true), defaultProviders.tracing, the zipkin and
 * opentelemetry extensionProviders, defaultConfig.tracing; bad values refused by field. */
static void test_mesh_parse_tracing(void **state)
{
    (void)state;
    pilot_mesh m;
    char err[512];
    assert_int_equal(flags_mesh_parse("", 0, "t", &m, err, sizeof err), 0);
    assert_false(m.mesh_telemetry.tracing_off);
    assert_true(m.mesh_telemetry.has_trace_sampling_default);
    assert_true(m.mesh_telemetry.trace_sampling_default == 1.0);
    flags_mesh_clear(&m);
    const char *ok =
        "enableTracing: false\n"
        "defaultConfig:\n  tracing:\n    sampling: 10.5\n    maxPathTagLength: 99\n"
        "    zipkin: {address: zipkin.istio-system:9411}\n"
        "    custom_tags:\n      b: {literal: {value: x}}\n"
        "      a: {header: {name: x-h, defaultValue: none}}\n      c: {environment: {name: E}}\n"
        "defaultProviders: {tracing: [z]}\n"
        "extensionProviders:\n"
        "- {name: z, zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411, "
        "maxTagLength: 256, path: /p, enable64bitTraceId: true}}\n"
        "- {name: o, opentelemetry: {service: otel.o11y.svc.cluster.local, port: 4318, http: "
        "{path: /v1/traces, timeout: 2s, headers: [{name: h, value: v}]}}}\n"
        "- {name: g, opentelemetry: {service: otel.o11y.svc.cluster.local, port: 4317, grpc: "
        "{timeout: 0.5s, initialMetadata: [{name: k, value: w}]}}}\n";
    assert_int_equal(flags_mesh_parse(ok, strlen(ok), "t", &m, err, sizeof err), 0);
    const xds_mesh_telemetry *t = &m.mesh_telemetry;
    assert_true(t->tracing_off);
    assert_true(t->trace_sampling == 10.5);
    assert_int_equal(t->max_path_tag_length, 99);
    assert_int_equal(t->ntrace_tags, 3);
    assert_string_equal(t->trace_tags[0].tag, "a");
    assert_int_equal(t->trace_tags[0].kind, MESH_TRACE_TAG_HEADER);
    assert_string_equal(t->trace_tags[0].value, "x-h");
    assert_string_equal(t->trace_tags[0].default_value, "none");
    assert_int_equal(t->trace_tags[1].kind, MESH_TRACE_TAG_LITERAL);
    assert_int_equal(t->trace_tags[2].kind, MESH_TRACE_TAG_ENVIRONMENT);
    assert_int_equal(t->default_tracing.n, 1);
    assert_string_equal(t->default_tracing.v[0], "z");
    assert_int_equal(t->nproviders, 3);
    assert_int_equal(t->providers[0].kind, XDS_TEL_PROVIDER_ZIPKIN);
    assert_int_equal(t->providers[0].port, 9411);
    assert_int_equal(t->providers[0].max_tag_length, 256);
    assert_string_equal(t->providers[0].trace_path, "/p");
    assert_true(t->providers[0].enable_64bit_trace_id);
    assert_int_equal(t->providers[1].kind, XDS_TEL_PROVIDER_OTEL);
    assert_true(t->providers[1].otel_http);
    assert_true(t->providers[1].timeout_ns == 2000000000LL);
    assert_int_equal(t->providers[1].nheaders, 1);
    assert_string_equal(t->providers[1].headers[0].value, "v");
    assert_false(t->providers[2].otel_http);
    assert_true(t->providers[2].timeout_ns == 500000000LL);
    assert_string_equal(t->providers[2].headers[0].name, "k");
    /* the generator's copy keeps it all */
    xds_mesh_telemetry c;
    xds_mesh_telemetry_copy(&c, t);
    assert_string_equal(c.providers[2].headers[0].value, "w");
    assert_string_equal(c.trace_tags[0].default_value, "none");
    assert_string_equal(c.default_tracing.v[0], "z");
    xds_mesh_telemetry_clear(&c);
    flags_mesh_clear(&m);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"enableTracing: yes-please\n", "enableTracing: want true or false"},
        {"defaultConfig: {tracing: {sampling: -1}}\n", "defaultConfig.tracing.sampling"},
        {"defaultConfig: {tracing: {sampling: lots}}\n", "defaultConfig.tracing.sampling"},
        {"defaultConfig: {tracing: {maxPathTagLength: -3}}\n", "maxPathTagLength"},
        {"defaultConfig: {tracing: {customTags: {a: {literal: 5}}}}\n",
         "defaultConfig.tracing.customTags.a.literal: want a mapping"},
        {"defaultProviders: {tracing: z}\n", "defaultProviders.tracing: want a list"},
        {"extensionProviders:\n- {name: z, zipkin: {service: s, port: x}}\n",
         "extensionProviders[0].zipkin.port: want an unsigned 32-bit integer"},
        {"extensionProviders:\n- {name: o, opentelemetry: {service: s, port: 1, grpc: "
         "{timeout: soon}}}\n",
         "extensionProviders[0].opentelemetry.grpc.timeout: bad duration"},
        {"extensionProviders:\n- {name: o, opentelemetry: {service: s, port: 1, http: "
         "{headers: [x]}}}\n",
         "extensionProviders[0].opentelemetry.http.headers[0]: want a mapping"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_not_equal(
            flags_mesh_parse(bad[i].yaml, strlen(bad[i].yaml), "t", &m, err, sizeof err), 0);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: error \"%s\" does not name \"%s\"", i, err, bad[i].want);
    }
}

/* flags_mesh_parse directly (what pilot/meshwatch.c calls on each new version): the
 * default*ExportTo lists and outboundTrafficPolicy; a bad entry refused by field and index,
 * with *out cleared. */
static void test_mesh_parse_live_fields(void **state)
{
    (void)state;
    pilot_mesh m;
    char err[256];
    const char *ok = "defaultServiceExportTo: [\".\"]\ndefaultVirtualServiceExportTo: [\"*\"]\n"
                     "defaultDestinationRuleExportTo: [\"~\", team-a]\n"
                     "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n";
    assert_int_equal(flags_mesh_parse(ok, strlen(ok), "t", &m, err, sizeof err), 0);
    assert_int_equal(m.export_defaults.nsvc, 1);
    assert_string_equal(m.export_defaults.svc[0], ".");
    assert_string_equal(m.export_defaults.vs[0], "*");
    assert_int_equal(m.export_defaults.ndr, 2);
    assert_string_equal(m.export_defaults.dr[1], "team-a");
    assert_int_equal(m.outbound_mode, XDS_OUTBOUND_REGISTRY_ONLY);
    assert_string_equal(m.root_namespace, "istio-system");
    flags_mesh_clear(&m);
    assert_int_equal(flags_mesh_parse("", 0, "t", &m, err, sizeof err), 0);
    assert_int_equal(m.export_defaults.nsvc + m.export_defaults.nvs + m.export_defaults.ndr, 0);
    assert_int_equal(m.outbound_mode, XDS_OUTBOUND_ALLOW_ANY);
    flags_mesh_clear(&m);
    const char *bad = "defaultServiceExportTo: [\".\", \"Not_A_Namespace\"]\n";
    assert_int_equal(flags_mesh_parse(bad, strlen(bad), "t", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "defaultServiceExportTo[1]: want *, ., ~ or a namespace name"));
    assert_null(m.root_namespace);
    const char *bad2 = "outboundTrafficPolicy: {mode: SOMETIMES}\n";
    assert_int_equal(flags_mesh_parse(bad2, strlen(bad2), "t", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "outboundTrafficPolicy.mode: want REGISTRY_ONLY or ALLOW_ANY"));
    /* the Kubernetes Ingress controller's fields: STRICT, istio, istio-ingressgateway unless
     * set; "" is the default too */
    const char *ing = "ingressClass: public\ningressControllerMode: DEFAULT\n"
                      "ingressService: edge-gw\ningressSelector: \"\"\n";
    assert_int_equal(flags_mesh_parse(ing, strlen(ing), "t", &m, err, sizeof err), 0);
    assert_string_equal(m.ingress.ingress_class, "public");
    assert_int_equal(m.ingress.mode, MESH_INGRESS_DEFAULT);
    assert_string_equal(m.ingress.ingress_service, "edge-gw");
    assert_null(m.ingress.ingress_selector);
    flags_mesh_clear(&m);
    assert_int_equal(flags_mesh_parse("", 0, "t", &m, err, sizeof err), 0);
    assert_int_equal(m.ingress.mode, MESH_INGRESS_STRICT);
    assert_null(m.ingress.ingress_class);
    flags_mesh_clear(&m);
    const char *bad3 = "ingressControllerMode: SOMETIMES\n";
    assert_int_equal(flags_mesh_parse(bad3, strlen(bad3), "t", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "ingressControllerMode: want OFF, DEFAULT or STRICT"));
    const char *bad4 = "ingressClass: [a]\n";
    assert_int_equal(flags_mesh_parse(bad4, strlen(bad4), "t", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "ingressClass: want a string"));
}

/* trustDomainAliases and the ext_authz extensionProviders: the fields istiod's builder
 * reads; other provider kinds skipped; wrong shapes refused naming the field. */
static void test_mesh_config_authz(void **state)
{
    (void)state;
    char path[] = "/tmp/test_flags_meshXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_mesh(path,
               "trustDomain: new.td\n"
               "trustDomainAliases: [old.td, cluster.local]\n"
               "extensionProviders:\n"
               "- name: zipkin\n  zipkin: {service: zipkin.istio-system.svc.cluster.local, "
               "port: 9411}\n"
               "- name: http-authz\n"
               "  envoyExtAuthzHttp:\n"
               "    service: foo/authz.foo.svc.cluster.local\n"
               "    port: 8000\n"
               "    timeout: 10s\n"
               "    failOpen: true\n"
               "    statusOnError: \"403\"\n"
               "    pathPrefix: /check\n"
               "    includeRequestHeadersInCheck: [x-id, x-pre-*]\n"
               "    includeHeadersInCheck: [old]\n"
               "    headersToUpstreamOnAllow: [authorization]\n"
               "    headersToDownstreamOnDeny: [set-cookie]\n"
               "    headersToDownstreamOnAllow: [x-ok]\n"
               "    includeAdditionalHeadersInCheck: {x-z: last, x-a: first}\n"
               "    includeRequestBodyInCheck: {maxRequestBytes: 2048, allowPartialMessage: true,"
               " packAsBytes: true}\n"
               "- name: grpc-authz\n"
               "  envoyExtAuthzGrpc:\n"
               "    service: authz.foo.svc.cluster.local\n"
               "    port: \"9000\"\n"
               "    timeout: 0.002s\n");
    char *argv[] = {"pilot-discovery", "discovery", "--meshConfig", path};
    pilot_flags f;
    char err[256];
    if (flags_parse(4, argv, &f, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
    const xds_mesh_authz *m = &f.mesh.mesh_authz;
    assert_int_equal(m->trust_domain_aliases.n, 2);
    assert_string_equal(m->trust_domain_aliases.v[1], "cluster.local");
    assert_int_equal(m->nproviders, 2); /* zipkin skipped */
    const xds_ext_authz_provider *h = &m->providers[0], *g = &m->providers[1];
    assert_string_equal(h->name, "http-authz");
    assert_int_equal(h->kind, XDS_EXT_AUTHZ_HTTP);
    assert_string_equal(h->service, "foo/authz.foo.svc.cluster.local");
    assert_int_equal(h->port, 8000);
    assert_int_equal(h->timeout_ns, 10 * 1000 * MS);
    assert_true(h->fail_open);
    assert_string_equal(h->status_on_error, "403");
    assert_string_equal(h->path_prefix, "/check");
    assert_int_equal(h->include_request_headers_in_check.n, 2);
    assert_string_equal(h->include_request_headers_in_check.v[1], "x-pre-*");
    assert_string_equal(h->include_headers_in_check.v[0], "old");
    assert_string_equal(h->headers_to_upstream_on_allow.v[0], "authorization");
    assert_string_equal(h->headers_to_downstream_on_deny.v[0], "set-cookie");
    assert_string_equal(h->headers_to_downstream_on_allow.v[0], "x-ok");
    assert_int_equal(h->additional_header_keys.n, 2); /* sorted by key */
    assert_string_equal(h->additional_header_keys.v[0], "x-a");
    assert_string_equal(h->additional_header_values.v[0], "first");
    assert_string_equal(h->additional_header_values.v[1], "last");
    assert_true(h->with_body);
    assert_int_equal(h->max_request_bytes, 2048);
    assert_true(h->allow_partial_message && h->pack_as_bytes);
    assert_string_equal(g->name, "grpc-authz");
    assert_int_equal(g->kind, XDS_EXT_AUTHZ_GRPC);
    assert_int_equal(g->port, 9000);
    assert_int_equal(g->timeout_ns, 2 * MS);
    assert_false(g->fail_open);
    assert_null(g->status_on_error);
    assert_false(g->with_body);
    flags_free(&f);

    /* what is checked when the filters are built (istiod's builder) is not refused here */
    write_mesh(path, "extensionProviders:\n- name: bad\n  envoyExtAuthzHttp: {service: x, "
                     "port: 999999, statusOnError: \"999\", pathPrefix: check}\n");
    assert_int_equal(flags_parse(4, argv, &f, err, sizeof(err)), 0);
    assert_int_equal(f.mesh.mesh_authz.providers[0].port, 999999);
    flags_free(&f);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"trustDomainAliases: a\n", "trustDomainAliases: want a list of strings"},
        {"trustDomainAliases: [1]\n", "trustDomainAliases: want a list of strings"},
        {"extensionProviders: {}\n", "extensionProviders: want a list"},
        {"extensionProviders:\n- name: a\n  envoyExtAuthzGrpc: {port: -1}\n",
         "extensionProviders[0].envoyExtAuthzGrpc.port: want an unsigned 32-bit integer"},
        {"extensionProviders:\n- name: a\n  envoyExtAuthzGrpc: {port: 1, timeout: soon}\n",
         "extensionProviders[0].envoyExtAuthzGrpc.timeout: bad duration"},
        {"extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {failOpen: yes please}\n",
         "envoyExtAuthzHttp.failOpen: want true or false"},
        {"extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {includeAdditionalHeadersInCheck: "
         "[a]}\n",
         "includeAdditionalHeadersInCheck: want a mapping of strings"},
        {"extensionProviders:\n- {name: a, envoyExtAuthzHttp: {}, envoyExtAuthzGrpc: {}}\n",
         "envoyExtAuthzHttp and envoyExtAuthzGrpc are exclusive"},
        {"extensionProviders:\n- name: 7\n  envoyExtAuthzGrpc: {}\n",
         "extensionProviders[0].name: want a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_mesh(path, bad[i].yaml);
        if (flags_parse(4, argv, &f, err, sizeof(err)) != -1)
            fail_msg("%s: accepted", bad[i].yaml);
        if (!strstr(err, bad[i].want) || !strstr(err, "--meshConfig"))
            fail_msg("%s:\n  got  %s\n  want %s", bad[i].yaml, err, bad[i].want);
        flags_free(&f);
    }
    unlink(path);
}

/* The telemetry fields: access logs, the listener log switch, defaultProviders.metrics
 * (absent: Istio's install default, prometheus); wrong shapes refused naming the field. */
static void test_mesh_config_telemetry(void **state)
{
    (void)state;
    char path[] = "/tmp/test_flags_meshXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char *argv[] = {"pilot-discovery", "discovery", "--meshConfig", path};
    pilot_flags f;
    char err[256];
    write_mesh(path, "trustDomain: cluster.local\n");
    assert_int_equal(flags_parse(4, argv, &f, err, sizeof(err)), 0);
    assert_null(f.mesh.mesh_telemetry.access_log_file);
    assert_false(f.mesh.mesh_telemetry.has_default_metrics);
    flags_free(&f);

    write_mesh(path, "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"
                     "accessLogFormat: '{\"a\": \"%START_TIME%\"}'\n"
                     "disableEnvoyListenerLog: true\n"
                     "defaultProviders: {metrics: [stackdriver, prometheus]}\n");
    if (flags_parse(4, argv, &f, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
    assert_string_equal(f.mesh.mesh_telemetry.access_log_file, "/dev/stdout");
    assert_int_equal(f.mesh.mesh_telemetry.access_log_encoding, XDS_ACCESS_LOG_JSON);
    assert_string_equal(f.mesh.mesh_telemetry.access_log_format, "{\"a\": \"%START_TIME%\"}");
    assert_true(f.mesh.mesh_telemetry.no_listener_access_log);
    assert_true(f.mesh.mesh_telemetry.has_default_metrics);
    assert_int_equal(f.mesh.mesh_telemetry.default_metrics.n, 2);
    assert_string_equal(f.mesh.mesh_telemetry.default_metrics.v[1], "prometheus");
    flags_free(&f);

    /* "" is no access log; defaultProviders without prometheus turns istio.stats off */
    write_mesh(path, "accessLogFile: \"\"\naccessLogEncoding: TEXT\n"
                     "defaultProviders: {accessLogging: [envoy]}\n");
    assert_int_equal(flags_parse(4, argv, &f, err, sizeof(err)), 0);
    assert_null(f.mesh.mesh_telemetry.access_log_file);
    assert_int_equal(f.mesh.mesh_telemetry.access_log_encoding, XDS_ACCESS_LOG_TEXT);
    assert_true(f.mesh.mesh_telemetry.has_default_metrics);
    assert_int_equal(f.mesh.mesh_telemetry.default_metrics.n, 0);
    assert_int_equal(f.mesh.mesh_telemetry.default_access_logging.n, 1);
    assert_string_equal(f.mesh.mesh_telemetry.default_access_logging.v[0], "envoy");
    flags_free(&f);

    /* the telemetry extensionProviders: envoyFileAccessLog with text or labels, prometheus,
     * zipkin (tracing), and the other kinds by name only */
    write_mesh(path, "extensionProviders:\n"
                     "- {name: json-log, envoyFileAccessLog: {path: /tmp/a.log, logFormat: "
                     "{labels: {code: '%RESPONSE_CODE%'}}}}\n"
                     "- {name: text-log, envoyFileAccessLog: {logFormat: {text: '%START_TIME%'}}}\n"
                     "- {name: prom2, prometheus: {}}\n"
                     "- {name: zipkin, zipkin: {service: z.istio-system.svc.cluster.local, "
                     "port: 9411}}\n");
    if (flags_parse(4, argv, &f, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
    const xds_mesh_telemetry *mt = &f.mesh.mesh_telemetry;
    assert_int_equal(mt->nproviders, 4);
    assert_int_equal(mt->providers[0].kind, XDS_TEL_PROVIDER_FILE_LOG);
    assert_string_equal(mt->providers[0].path, "/tmp/a.log");
    assert_int_equal(mt->providers[0].format, XDS_TEL_LOG_FORMAT_LABELS);
    assert_string_equal(mt->providers[0].labels, "{\"code\":\"%RESPONSE_CODE%\"}");
    assert_int_equal(mt->providers[1].format, XDS_TEL_LOG_FORMAT_TEXT);
    assert_null(mt->providers[1].path);
    assert_string_equal(mt->providers[1].text, "%START_TIME%");
    assert_int_equal(mt->providers[2].kind, XDS_TEL_PROVIDER_PROMETHEUS);
    assert_int_equal(mt->providers[3].kind, XDS_TEL_PROVIDER_ZIPKIN);
    flags_free(&f);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"accessLogEncoding: XML\n", "accessLogEncoding: want TEXT or JSON"},
        {"accessLogFile: [a]\n", "accessLogFile: want a string"},
        {"disableEnvoyListenerLog: 3\n", "disableEnvoyListenerLog: want true or false"},
        {"defaultProviders: [prometheus]\n", "defaultProviders: want a mapping"},
        {"defaultProviders: {metrics: prometheus}\n", "metrics: want a list of strings"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_mesh(path, bad[i].yaml);
        if (flags_parse(4, argv, &f, err, sizeof(err)) != -1)
            fail_msg("%s: accepted", bad[i].yaml);
        if (!strstr(err, bad[i].want) || !strstr(err, "--meshConfig"))
            fail_msg("%s:\n  got  %s\n  want %s", bad[i].yaml, err, bad[i].want);
        flags_free(&f);
    }
    unlink(path);
}

/* istiod's keepalive flags: defaults 30s / 10s, durations parsed, a bad one refused by name
 * (their effect on connections: tests/e2e/conn_age.py). */
static void test_keepalive(void **state)
{
    (void)state;
    pilot_flags f;
    char err[256];
    char *def[] = {"pilot-discovery", "discovery"};
    assert_int_equal(flags_parse(2, def, &f, err, sizeof(err)), 0);
    assert_int_equal(f.keepalive_interval_ns, 30 * 1000 * MS);
    assert_int_equal(f.keepalive_timeout_ns, 10 * 1000 * MS);
    flags_free(&f);
    char *set[] = {"pilot-discovery", "discovery", "--keepaliveInterval", "5s",
                   "--keepaliveTimeout=1500ms"};
    assert_int_equal(flags_parse(5, set, &f, err, sizeof(err)), 0);
    assert_int_equal(f.keepalive_interval_ns, 5 * 1000 * MS);
    assert_int_equal(f.keepalive_timeout_ns, 1500 * MS);
    flags_free(&f);
    char *bad[] = {"pilot-discovery", "discovery", "--keepaliveTimeout", "soon"};
    assert_int_equal(flags_parse(4, bad, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--keepaliveTimeout"));
    flags_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_https_addr),
        cmocka_unit_test(test_env_bools),
        cmocka_unit_test(test_mesh_config),
        cmocka_unit_test(test_mesh_parse_live_fields),
        cmocka_unit_test(test_mesh_parse_tracing),
        cmocka_unit_test(test_mesh_config_authz),
        cmocka_unit_test(test_mesh_config_telemetry),
        cmocka_unit_test(test_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
