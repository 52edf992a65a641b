/* flags: see flags.h. A table of flags, each a string or a Go duration. */
#include "pilot/flags.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/base/yaml.h"

/* A mesh config file is small; refuse anything absurd. */

typedef enum { FT_STRING, FT_DURATION } flag_type;

typedef struct flag_def {
    const char *name;
    flag_type type;
    size_t off;
    const char *def; /* NULL: unset */
    const char *help;
} flag_def;

#define OFF(f) offsetof(pilot_flags, f)

static const flag_def flag_table[] = {
    {"configDir", FT_STRING, OFF(config_dir), NULL,
     "Directory to watch for config YAML files (instead of the Kubernetes API server)"},
    {"httpAddr", FT_STRING, OFF(http_addr), ":8080",
     "Discovery service HTTP address (/ready, /debug)"},
    {"grpcAddr", FT_STRING, OFF(grpc_addr), ":15010", "Discovery service gRPC address"},
    {"monitoringAddr", FT_STRING, OFF(monitoring_addr), ":15014",
     "HTTP address for /metrics, /version and /debug"},
    {"secureGRPCAddr", FT_STRING, OFF(secure_grpc_addr), NULL,
     "Discovery service secured gRPC address (default \":15012\" with Kubernetes, else off)"},
    {"httpsAddr", FT_STRING, OFF(https_addr), ":15017",
     "The https address for the injection and validation webhooks (\"\" = off)"},
    {"caCertsDir", FT_STRING, OFF(ca_certs_dir), "/etc/cacerts",
     "Plug-in CA certificates (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)"},
    {"caStateDir", FT_STRING, OFF(ca_state_dir), "./var/run/pilot-ca",
     "Where the self-signed root is kept in config-directory mode"},
    {"caKeyType", FT_STRING, OFF(ca_key_type), "rsa",
     "Key of a self-signed root created here: rsa (RSA 2048) or ecdsa (P-256)"},
    {"domain", FT_STRING, OFF(domain), "cluster.local", "DNS domain suffix"},
    {"meshConfig", FT_STRING, OFF(mesh_config), NULL, "File name for Istio mesh configuration"},
    {"log_output_level", FT_STRING, OFF(log_output_level), "default:info",
     "Comma-separated scope:level list (levels: none, error, warn, info, debug)"},
    {"kubeconfig", FT_STRING, OFF(kubeconfig), NULL, "Use a Kubernetes configuration file"},
    {"clusterID", FT_STRING, OFF(cluster_id), "Kubernetes", "The ID of the cluster"},
    {"keepaliveMaxServerConnectionAge", FT_DURATION, OFF(keepalive_max_server_connection_age_ns),
     "30m", "Maximum duration a connection will be kept open on the server"},
    {"keepaliveInterval", FT_DURATION, OFF(keepalive_interval_ns), "30s",
     "The time interval if no activity on the connection it pings the peer to see if the "
     "transport is alive"},
    {"keepaliveTimeout", FT_DURATION, OFF(keepalive_timeout_ns), "10s",
     "After having pinged for keepalive check, the client waits for a duration of Timeout "
     "and if no activity is seen even after that the connection is closed"},
};
#define NFLAGS (sizeof(flag_table) / sizeof(flag_table[0]))

static const char usage_text[] =
    "Istio Pilot provides mesh-wide traffic management, security and policy capabilities.\n"
    "\n"
    "Usage:\n"
    "  pilot-discovery discovery [flags]   Start Istio proxy discovery service\n"
    "  pilot-discovery version             Prints out build version information\n"
    "  pilot-discovery request <method> <path> [<body>]\n"
    "                                      Makes an HTTP request to Pilot metrics/debug endpoint\n"
    "                                      (127.0.0.1:15014)\n"
    "\n"
    "Flags (\"--flag value\" or \"--flag=value\"):\n"
    "      --configDir string                          directory of YAML config files to watch\n"
    "      --httpAddr string                           HTTP address (default \":8080\")\n"
    "      --grpcAddr string                           gRPC address (default \":15010\")\n"
    "      --monitoringAddr string                     monitoring address (default \":15014\")\n"
    "      --secureGRPCAddr string                     secure gRPC address (default \":15012\"\n"
    "                                                  with Kubernetes, else \"\": off)\n"
    "      --httpsAddr string                          webhooks /inject, /validate (default\n"
    "                                                  \":15017\"; \"\": off)\n"
    "      --caCertsDir string                         plug-in CA directory (default "
    "\"/etc/cacerts\")\n"
    "      --caStateDir string                         self-signed root directory, "
    "config-directory\n"
    "                                                  mode (default \"./var/run/pilot-ca\")\n"
    "      --caKeyType string                          rsa or ecdsa, for a new root (default "
    "\"rsa\")\n"
    "      --domain string                             DNS domain suffix (default "
    "\"cluster.local\")\n"
    "      --meshConfig string                         mesh configuration file\n"
    "      --log_output_level string                   scope:level,... (default \"default:info\")\n"
    "      --kubeconfig string                         Kubernetes configuration file\n"
    "      --clusterID string                          cluster ID (default \"Kubernetes\")\n"
    "      --keepaliveMaxServerConnectionAge duration  connections end after this (+10s grace),\n"
    "                                                  so proxies reconnect and spread (default "
    "30m)\n"
    "      --keepaliveInterval duration                ping an idle connection after this\n"
    "                                                  (default 30s)\n"
    "      --keepaliveTimeout duration                 close it when the ping is not answered\n"
    "                                                  within this (default 10s)\n"
    "  -h, --help                                      help for pilot-discovery\n"
    "\n"
    "Environment: PILOT_DEBOUNCE_AFTER (default 100ms), PILOT_DEBOUNCE_MAX (default 10s),\n"
    "  PILOT_LEADER_LEASE_DURATION (30s; renew deadline 1/2, retry 1/4 of it),\n"
    "  DEFAULT_WORKLOAD_CERT_TTL (24h), MAX_WORKLOAD_CERT_TTL (2160h),\n"
    "  CITADEL_SELF_SIGNED_CA_CERT_TTL (87600h), CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL "
    "(1h).\n";

const char *flags_usage(void)
{
    return usage_text;
}

static int set_flag(pilot_flags *f, const flag_def *d, const char *value, char *err, size_t errlen)
{
    char *base = (char *)f;
    if (d->type == FT_STRING) {
        char **slot = (char **)(base + d->off);
        free(*slot);
        *slot = xstrdup(value);
        return 0;
    }
    int64_t ns;
    if (util_parse_duration(value, &ns) != 0) {
        snprintf(err, errlen, "invalid argument \"%s\" for \"--%s\" flag: bad duration", value,
                 d->name);
        return -1;
    }
    *(int64_t *)(base + d->off) = ns;
    return 0;
}

static int env_duration(const char *name, const char *def, int64_t *out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    if (util_parse_duration(v, out) != 0) {
        snprintf(err, errlen, "%s: invalid duration \"%s\"", name, v);
        return -1;
    }
    return 0;
}

/* A boolean of istiod's environment (its env.Register bools): unset or "" = def. */
static int env_bool(const char *name, bool def, bool *out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    if (!v || !*v)
        *out = def;
    else if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else {
        snprintf(err, errlen, "%s=%.64s: want true or false", name, v);
        return -1;
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "--meshConfig: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size > FLAGS_MESH_CONFIG_MAX) {
        snprintf(err, errlen, "--meshConfig: %s is not a regular file under %u bytes", path,
                 FLAGS_MESH_CONFIG_MAX);
        goto out;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    *len = fread(buf, 1, (size_t)st.st_size, fp);
    buf[*len] = '\0';
    if (ferror(fp)) {
        snprintf(err, errlen, "--meshConfig: cannot read %s", path);
        free(buf);
        buf = NULL;
    }
out:
    fclose(fp);
    return buf;
}

/* ---- mesh config: trustDomainAliases, extensionProviders ------------------------------ */

/* A list of strings at obj[key] (absent: empty). -1 with err naming where. */
static int mc_strlist(const cJSON *obj, const char *key, const char *where, xds_strlist *out,
                      char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
    if (!a || cJSON_IsNull(a))
        return 0;
    if (!cJSON_IsArray(a))
        goto bad;
    cJSON_ArrayForEach(it, a) if (!cJSON_IsString(it)) goto bad;
    out->n = (size_t)cJSON_GetArraySize(a);
    out->v = xcalloc(out->n ? out->n : 1, sizeof *out->v);
    size_t i = 0;
    cJSON_ArrayForEach(it, a) out->v[i++] = xstrdup(it->valuestring);
    return 0;
bad:
    snprintf(err, errlen, "%s.%s: want a list of strings", where, key);
    return -1;
}

static int mc_str(const cJSON *obj, const char *key, const char *where, char **out, char *err,
                  size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        snprintf(err, errlen, "%s.%s: want a string", where, key);
        return -1;
    }
    free(*out);
    *out = xstrdup(v->valuestring);
    return 0;
}

static int mc_bool(const cJSON *obj, const char *key, const char *where, bool *out, char *err,
                   size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v)) {
        snprintf(err, errlen, "%s.%s: want true or false", where, key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A uint32 as proto3 JSON writes one: a number or a decimal string. */
static int mc_u32(const cJSON *obj, const char *key, const char *where, int64_t *out, char *err,
                  size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    double d;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        d = strtod(v->valuestring, &end);
        if (*end)
            goto bad;
    } else {
        goto bad;
    }
    if (d < 0 || d > 4294967295.0 || d != (double)(int64_t)d)
        goto bad;
    *out = (int64_t)d;
    return 0;
bad:
    snprintf(err, errlen, "%s.%s: want an unsigned 32-bit integer", where, key);
    return -1;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* envoyExtAuthzHttp / envoyExtAuthzGrpc into p (kind already set). */
static int mc_ext_authz(const cJSON *o, const char *where, xds_ext_authz_provider *p, char *err,
                        size_t errlen)
{
    char *timeout = NULL;
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "%s: want a mapping", where);
        return -1;
    }
    if (mc_str(o, "service", where, &p->service, err, errlen) != 0 ||
        mc_u32(o, "port", where, &p->port, err, errlen) != 0 ||
        mc_str(o, "timeout", where, &timeout, err, errlen) != 0 ||
        mc_bool(o, "failOpen", where, &p->fail_open, err, errlen) != 0 ||
        mc_str(o, "statusOnError", where, &p->status_on_error, err, errlen) != 0)
        goto out;
    p->timeout_ns = -1;
    if (timeout) {
        /* proto3 JSON writes a Duration as "<seconds>s" ("0.002s"), a Go duration too */
        if (util_parse_duration(timeout, &p->timeout_ns) != 0) {
            snprintf(err, errlen, "%s.timeout: bad duration \"%s\"", where, timeout);
            goto out;
        }
    }
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "includeRequestBodyInCheck");
    if (body && !cJSON_IsNull(body)) {
        int64_t max = 0;
        if (!cJSON_IsObject(body)) {
            snprintf(err, errlen, "%s.includeRequestBodyInCheck: want a mapping", where);
            goto out;
        }
        if (mc_u32(body, "maxRequestBytes", where, &max, err, errlen) != 0 ||
            mc_bool(body, "allowPartialMessage", where, &p->allow_partial_message, err, errlen) !=
                0 ||
            mc_bool(body, "packAsBytes", where, &p->pack_as_bytes, err, errlen) != 0)
            goto out;
        p->with_body = true;
        p->max_request_bytes = (uint32_t)max;
    }
    if (p->kind == XDS_EXT_AUTHZ_HTTP) {
        if (mc_str(o, "pathPrefix", where, &p->path_prefix, err, errlen) != 0 ||
            mc_strlist(o, "includeRequestHeadersInCheck", where,
                       &p->include_request_headers_in_check, err, errlen) != 0 ||
            mc_strlist(o, "includeHeadersInCheck", where, &p->include_headers_in_check, err,
                       errlen) != 0 ||
            mc_strlist(o, "headersToUpstreamOnAllow", where, &p->headers_to_upstream_on_allow, err,
                       errlen) != 0 ||
            mc_strlist(o, "headersToDownstreamOnDeny", where, &p->headers_to_downstream_on_deny,
                       err, errlen) != 0 ||
            mc_strlist(o, "headersToDownstreamOnAllow", where, &p->headers_to_downstream_on_allow,
                       err, errlen) != 0)
            goto out;
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(o, "includeAdditionalHeadersInCheck");
        if (add && !cJSON_IsNull(add)) {
            const cJSON *it;
            if (!cJSON_IsObject(add))
                goto bad_add;
            cJSON_ArrayForEach(it, add) if (!cJSON_IsString(it)) goto bad_add;
            size_t n = (size_t)cJSON_GetArraySize(add), i = 0;
            char **keys = xcalloc(n ? n : 1, sizeof *keys);
            cJSON_ArrayForEach(it, add) keys[i++] = it->string;
            qsort(keys, n, sizeof *keys, key_cmp); /* istiod sorts the keys */
            p->additional_header_keys.v = xcalloc(n ? n : 1, sizeof(char *));
            p->additional_header_values.v = xcalloc(n ? n : 1, sizeof(char *));
            for (i = 0; i < n; i++) {
                p->additional_header_keys.v[i] = xstrdup(keys[i]);
                p->additional_header_values.v[i] =
                    xstrdup(cJSON_GetObjectItemCaseSensitive(add, keys[i])->valuestring);
            }
            p->additional_header_keys.n = p->additional_header_values.n = n;
            free(keys);
        }
    }
    rc = 0;
    goto out;
bad_add:
    snprintf(err, errlen, "%s.includeAdditionalHeadersInCheck: want a mapping of strings", where);
out:
    free(timeout);
    return rc;
}

/* trustDomainAliases and extensionProviders of the mesh config (doc) into m. */
static int mc_authz(const cJSON *doc, const char *where, xds_mesh_authz *m, char *err,
                    size_t errlen)
{
    if (mc_strlist(doc, "trustDomainAliases", where, &m->trust_domain_aliases, err, errlen) != 0)
        return -1;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "extensionProviders"), *it;
    if (!ps || cJSON_IsNull(ps))
        return 0;
    if (!cJSON_IsArray(ps)) {
        snprintf(err, errlen, "%s: extensionProviders: want a list", where);
        return -1;
    }
    m->providers = xcalloc((size_t)cJSON_GetArraySize(ps) + 1, sizeof *m->providers);
    size_t i = 0;
    cJSON_ArrayForEach(it, ps)
    {
        char pw[224];
        snprintf(pw, sizeof pw, "%s: extensionProviders[%zu]", where, i++);
        if (!cJSON_IsObject(it)) {
            snprintf(err, errlen, "%s: want a mapping", pw);
            return -1;
        }
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "envoyExtAuthzHttp");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(it, "envoyExtAuthzGrpc");
        if (!h && !g)
            continue; /* tracing, access logs, metrics: not ours to build */
        xds_ext_authz_provider *p = &m->providers[m->nproviders++];
        p->kind = h ? XDS_EXT_AUTHZ_HTTP : XDS_EXT_AUTHZ_GRPC;
        p->timeout_ns = -1;
        if (h && g) {
            snprintf(err, errlen, "%s: envoyExtAuthzHttp and envoyExtAuthzGrpc are exclusive", pw);
            return -1;
        }
        if (mc_str(it, "name", pw, &p->name, err, errlen) != 0)
            return -1;
        strncat(pw, h ? ".envoyExtAuthzHttp" : ".envoyExtAuthzGrpc", sizeof pw - strlen(pw) - 1);
        if (mc_ext_authz(h ? h : g, pw, p, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* ---- mesh config: access logs, default metrics provider --------------------------------- */

/* A list of {name, value} (opentelemetry http.headers, grpc.initialMetadata) at obj[key]. */
static int mc_headers(const cJSON *obj, const char *key, const char *where, xds_tel_provider *p,
                      char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
    if (!a || cJSON_IsNull(a))
        return 0;
    if (!cJSON_IsArray(a)) {
        snprintf(err, errlen, "%s.%s: want a list", where, key);
        return -1;
    }
    p->has_headers = true;
    p->headers = xcalloc((size_t)cJSON_GetArraySize(a) + 1, sizeof *p->headers);
    size_t i = 0;
    cJSON_ArrayForEach(it, a)
    {
        char hw[256];
        snprintf(hw, sizeof hw, "%s.%s[%zu]", where, key, i++);
        if (!cJSON_IsObject(it)) {
            snprintf(err, errlen, "%s: want a mapping", hw);
            return -1;
        }
        xds_tel_header *h = &p->headers[p->nheaders++];
        if (mc_str(it, "name", hw, &h->name, err, errlen) != 0 ||
            mc_str(it, "value", hw, &h->value, err, errlen) != 0)
            return -1;
        if (!h->name)
            h->name = xstrdup("");
        if (!h->value)
            h->value = xstrdup("");
    }
    return 0;
}

/* A proto Duration at obj[key] into *ns (left alone when absent). */
static int mc_duration(const cJSON *obj, const char *key, const char *where, int64_t *ns, char *err,
                       size_t errlen)
{
    char *d = NULL;
    if (mc_str(obj, key, where, &d, err, errlen) != 0)
        return -1;
    if (d && util_parse_duration(d, ns) != 0) {
        snprintf(err, errlen, "%s.%s: bad duration \"%.64s\"", where, key, d);
        free(d);
        return -1;
    }
    free(d);
    return 0;
}

/* The tracing kinds of an extensionProvider (zipkin, opentelemetry) into p; other kinds
 * leave p alone. */
static int mc_trace_provider(const cJSON *it, const char *where, xds_tel_provider *p, char *err,
                             size_t errlen)
{
    const cJSON *z = cJSON_GetObjectItemCaseSensitive(it, "zipkin");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "opentelemetry");
    const cJSON *v = z && !cJSON_IsNull(z) ? z : o && !cJSON_IsNull(o) ? o : NULL;
    if (!v)
        return 0;
    char pw[240];
    snprintf(pw, sizeof pw, "%s.%s", where, v == z ? "zipkin" : "opentelemetry");
    if (!cJSON_IsObject(v)) {
        snprintf(err, errlen, "%s: want a mapping", pw);
        return -1;
    }
    int64_t mtl = 0;
    p->kind = v == z ? XDS_TEL_PROVIDER_ZIPKIN : XDS_TEL_PROVIDER_OTEL;
    if (mc_str(v, "service", pw, &p->service, err, errlen) != 0 ||
        mc_u32(v, "port", pw, &p->port, err, errlen) != 0 ||
        mc_u32(v, "maxTagLength", pw, &mtl, err, errlen) != 0)
        return -1;
    p->max_tag_length = (uint32_t)mtl;
    if (v == z)
        return mc_str(v, "path", pw, &p->trace_path, err, errlen) ||
               mc_bool(v, "enable64bitTraceId", pw, &p->enable_64bit_trace_id, err, errlen);
    static const char *const unbuilt[] = {"resourceDetectors", "dynatraceSampler"};
    for (size_t i = 0; i < sizeof unbuilt / sizeof unbuilt[0]; i++) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, unbuilt[i]);
        if (u && !cJSON_IsNull(u))
            LOG_WARN("default", "%s.%s: not applied (the tracer is built without it)", pw,
                     unbuilt[i]);
    }
    const cJSON *http = cJSON_GetObjectItemCaseSensitive(v, "http");
    const cJSON *grpc = cJSON_GetObjectItemCaseSensitive(v, "grpc");
    const cJSON *sub = http && !cJSON_IsNull(http)   ? http
                       : grpc && !cJSON_IsNull(grpc) ? grpc
                                                     : NULL;
    if (!sub)
        return 0;
    p->otel_http = sub == http;
    strncat(pw, sub == http ? ".http" : ".grpc", sizeof pw - strlen(pw) - 1);
    if (!cJSON_IsObject(sub)) {
        snprintf(err, errlen, "%s: want a mapping", pw);
        return -1;
    }
    if (mc_duration(sub, "timeout", pw, &p->timeout_ns, err, errlen) != 0)
        return -1;
    if (sub == http)
        return mc_str(sub, "path", pw, &p->trace_path, err, errlen) ||
               mc_headers(sub, "headers", pw, p, err, errlen);
    return mc_headers(sub, "initialMetadata", pw, p, err, errlen);
}

static int mc_cmp_trace_tag(const void *a, const void *b)
{
    return strcmp(((const mesh_trace_tag *)a)->tag, ((const mesh_trace_tag *)b)->tag);
}

/* defaultConfig.tracing (ProxyConfig): sampling, custom_tags, maxPathTagLength, the parts
 * istiod writes into HCMs (the zipkin address and the tracer TLS settings are the
 * bootstrap's, written by the agent). */
static int mc_proxy_tracing(const cJSON *dc, const char *where, xds_mesh_telemetry *m, char *err,
                            size_t errlen)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(dc, "tracing"), *it;
    if (!t || cJSON_IsNull(t))
        return 0;
    char tw[224];
    snprintf(tw, sizeof tw, "%s: defaultConfig.tracing", where);
    if (!cJSON_IsObject(t)) {
        snprintf(err, errlen, "%s: want a mapping", tw);
        return -1;
    }
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(t, "sampling");
    if (sm && !cJSON_IsNull(sm)) {
        if (!cJSON_IsNumber(sm) || !isfinite(sm->valuedouble) || sm->valuedouble < 0) {
            snprintf(err, errlen, "%s.sampling: want a percentage, 0 to 100", tw);
            return -1;
        }
        m->trace_sampling = sm->valuedouble;
    }
    int64_t mpl = 0;
    if (mc_u32(t, "maxPathTagLength", tw, &mpl, err, errlen) != 0)
        return -1;
    m->max_path_tag_length = (uint32_t)mpl;
    const char *key = "customTags";
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(t, key);
    if (!tags) {
        key = "custom_tags";
        tags = cJSON_GetObjectItemCaseSensitive(t, key);
    }
    if (!tags || cJSON_IsNull(tags))
        return 0;
    if (!cJSON_IsObject(tags)) {
        snprintf(err, errlen, "%s.%s: want a mapping", tw, key);
        return -1;
    }
    m->trace_tags = xcalloc((size_t)cJSON_GetArraySize(tags) + 1, sizeof *m->trace_tags);
    cJSON_ArrayForEach(it, tags)
    {
        char gw[320];
        snprintf(gw, sizeof gw, "%s.%s.%.64s", tw, key, it->string ? it->string : "");
        if (cJSON_IsNull(it))
            continue; /* istiod skips a nil tag (with a warning) */
        if (!cJSON_IsObject(it)) {
            snprintf(err, errlen, "%s: want a mapping", gw);
            return -1;
        }
        mesh_trace_tag *g = &m->trace_tags[m->ntrace_tags++];
        g->tag = xstrdup(it->string ? it->string : "");
        static const struct {
            const char *type, *field;
            mesh_trace_tag_kind kind;
        } kinds[] = {{"literal", "value", MESH_TRACE_TAG_LITERAL},
                     {"environment", "name", MESH_TRACE_TAG_ENVIRONMENT},
                     {"header", "name", MESH_TRACE_TAG_HEADER}};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, kinds[k].type);
            if (!v || cJSON_IsNull(v))
                continue;
            char kw[360];
            snprintf(kw, sizeof kw, "%s.%s", gw, kinds[k].type);
            if (!cJSON_IsObject(v)) {
                snprintf(err, errlen, "%s: want a mapping", kw);
                return -1;
            }
            free(g->value);
            free(g->default_value);
            g->value = g->default_value = NULL;
            g->kind = kinds[k].kind;
            if (mc_str(v, kinds[k].field, kw, &g->value, err, errlen) != 0 ||
                (kinds[k].kind != MESH_TRACE_TAG_LITERAL &&
                 mc_str(v, "defaultValue", kw, &g->default_value, err, errlen) != 0))
                return -1;
            if (!g->value)
                g->value = xstrdup("");
        }
    }
    if (m->ntrace_tags > 1)
        qsort(m->trace_tags, m->ntrace_tags, sizeof *m->trace_tags, mc_cmp_trace_tag);
    return 0;
}

/* istiod's PILOT_TRACE_SAMPLING (features.TraceSampling): 1.0 unless set to a percentage;
 * out of range or not a number is warned about and means 1.0. */
static double mc_env_trace_sampling(void)
{
    const char *e = getenv("PILOT_TRACE_SAMPLING");
    if (!e || !*e)
        return 1.0;
    char *end;
    double d = strtod(e, &end);
    if (*end || !isfinite(d) || d < 0 || d > 100) {
        LOG_WARN("default", "PILOT_TRACE_SAMPLING out of range: %.32s (1.0 is used)", e);
        return 1.0;
    }
    return d;
}

/* accessLogFile, accessLogEncoding, accessLogFormat, disableEnvoyListenerLog and
 * defaultProviders (metrics, accessLogging) into m. A JSON accessLogFormat that is not a
 * JSON object is accepted with a warning, as istiod does (its generator then uses the
 * default format). */
static int mc_telemetry(const cJSON *doc, const char *where, xds_mesh_telemetry *m, char *err,
                        size_t errlen)
{
    bool tracing = true;
    if (mc_bool(doc, "enableTracing", where, &tracing, err, errlen) != 0)
        return -1;
    m->tracing_off = !tracing;
    const cJSON *dc = cJSON_GetObjectItemCaseSensitive(doc, "defaultConfig");
    if (cJSON_IsObject(dc) && mc_proxy_tracing(dc, where, m, err, errlen) != 0)
        return -1;
    if (mc_str(doc, "accessLogFile", where, &m->access_log_file, err, errlen) != 0 ||
        mc_str(doc, "accessLogFormat", where, &m->access_log_format, err, errlen) != 0 ||
        mc_bool(doc, "disableEnvoyListenerLog", where, &m->no_listener_access_log, err, errlen) !=
            0)
        return -1;
    if (m->access_log_file && !m->access_log_file[0]) {
        free(m->access_log_file);
        m->access_log_file = NULL;
    }
    /* proto3 JSON: the enum by name or by number */
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "accessLogEncoding");
    if (cJSON_IsString(e) && strcmp(e->valuestring, "JSON") == 0)
        m->access_log_encoding = XDS_ACCESS_LOG_JSON;
    else if (cJSON_IsNumber(e) && e->valuedouble == 1)
        m->access_log_encoding = XDS_ACCESS_LOG_JSON;
    else if (e && !cJSON_IsNull(e) && !(cJSON_IsString(e) && strcmp(e->valuestring, "TEXT") == 0) &&
             !(cJSON_IsNumber(e) && e->valuedouble == 0)) {
        snprintf(err, errlen, "%s.accessLogEncoding: want TEXT or JSON", where);
        return -1;
    }
    if (m->access_log_encoding == XDS_ACCESS_LOG_JSON && m->access_log_format &&
        m->access_log_format[0]) {
        cJSON *j = cJSON_Parse(m->access_log_format);
        if (!cJSON_IsObject(j))
            LOG_WARN("default",
                     "%s.accessLogFormat: not a JSON object; the default JSON format "
                     "is used",
                     where);
        cJSON_Delete(j);
    }
    const cJSON *dp = cJSON_GetObjectItemCaseSensitive(doc, "defaultProviders");
    if (!dp || cJSON_IsNull(dp))
        return 0; /* Istio's install default: metrics [prometheus] */
    if (!cJSON_IsObject(dp)) {
        snprintf(err, errlen, "%s.defaultProviders: want a mapping", where);
        return -1;
    }
    /* defaultProviders written replaces the install's (metrics: [prometheus]) */
    char dw[224];
    snprintf(dw, sizeof dw, "%s.defaultProviders", where);
    m->has_default_metrics = true;
    if (mc_strlist(dp, "metrics", dw, &m->default_metrics, err, errlen) != 0 ||
        mc_strlist(dp, "accessLogging", dw, &m->default_access_logging, err, errlen) != 0 ||
        mc_strlist(dp, "tracing", dw, &m->default_tracing, err, errlen) != 0)
        return -1;
    return 0;
}

/* The extensionProviders the Telemetry API names (every named one: a name of a kind we do
 * not build still resolves, to nothing, as in istiod), with envoyFileAccessLog's path and
 * logFormat. The list's shape is checked by mc_authz. */
static int mc_tel_providers(const cJSON *doc, const char *where, xds_mesh_telemetry *m, char *err,
                            size_t errlen)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "extensionProviders"), *it;
    if (!cJSON_IsArray(ps) || !cJSON_GetArraySize(ps))
        return 0;
    m->providers = xcalloc((size_t)cJSON_GetArraySize(ps), sizeof *m->providers);
    size_t i = 0;
    cJSON_ArrayForEach(it, ps)
    {
        char pw[224];
        snprintf(pw, sizeof pw, "%s: extensionProviders[%zu]", where, i++);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            continue;
        xds_tel_provider *p = &m->providers[m->nproviders++];
        p->name = xstrdup(name->valuestring);
        p->timeout_ns = -1;
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(it, "envoyFileAccessLog");
        if (cJSON_GetObjectItemCaseSensitive(it, "prometheus"))
            p->kind = XDS_TEL_PROVIDER_PROMETHEUS;
        if (mc_trace_provider(it, pw, p, err, errlen) != 0)
            return -1;
        if (!fl || cJSON_IsNull(fl))
            continue;
        strncat(pw, ".envoyFileAccessLog", sizeof pw - strlen(pw) - 1);
        if (!cJSON_IsObject(fl)) {
            snprintf(err, errlen, "%s: want a mapping", pw);
            return -1;
        }
        p->kind = XDS_TEL_PROVIDER_FILE_LOG;
        if (mc_str(fl, "path", pw, &p->path, err, errlen) != 0)
            return -1;
        const cJSON *lf = cJSON_GetObjectItemCaseSensitive(fl, "logFormat");
        if (!lf || cJSON_IsNull(lf))
            continue;
        if (!cJSON_IsObject(lf)) {
            snprintf(err, errlen, "%s.logFormat: want a mapping", pw);
            return -1;
        }
        strncat(pw, ".logFormat", sizeof pw - strlen(pw) - 1);
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(lf, "labels");
        if (mc_str(lf, "text", pw, &p->text, err, errlen) != 0)
            return -1;
        if (p->text && labels && !cJSON_IsNull(labels)) {
            snprintf(err, errlen, "%s: text and labels are exclusive", pw);
            return -1;
        }
        p->format = p->text ? XDS_TEL_LOG_FORMAT_TEXT : XDS_TEL_LOG_FORMAT_NONE;
        if (!labels || cJSON_IsNull(labels))
            continue;
        if (!cJSON_IsObject(labels)) {
            snprintf(err, errlen, "%s.labels: want a mapping", pw);
            return -1;
        }
        p->format = XDS_TEL_LOG_FORMAT_LABELS;
        /* no labels: istiod's default JSON format */
        if (cJSON_GetArraySize(labels))
            p->labels = cJSON_PrintUnformatted(labels);
    }
    return 0;
}

/* outboundTrafficPolicy.mode: REGISTRY_ONLY or ALLOW_ANY, by name or proto3 number;
 * absent (or a policy without mode) keeps Istio's default, ALLOW_ANY. ALLOW_ANY_DYNAMIC_DNS
 * is refused: istiod's DNS-based egress is not built here. */
static int mc_outbound(const cJSON *doc, const char *where, xds_outbound_mode *mode, char *err,
                       size_t errlen)
{
    *mode = XDS_OUTBOUND_ALLOW_ANY;
    const cJSON *otp = cJSON_GetObjectItemCaseSensitive(doc, "outboundTrafficPolicy");
    if (!otp || cJSON_IsNull(otp))
        return 0;
    if (!cJSON_IsObject(otp)) {
        snprintf(err, errlen, "%s: outboundTrafficPolicy: want a mapping", where);
        return -1;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(otp, "mode");
    if (!m || cJSON_IsNull(m))
        return 0;
    if ((cJSON_IsString(m) && strcmp(m->valuestring, "REGISTRY_ONLY") == 0) ||
        (cJSON_IsNumber(m) && m->valuedouble == 0)) {
        *mode = XDS_OUTBOUND_REGISTRY_ONLY;
        return 0;
    }
    if ((cJSON_IsString(m) && strcmp(m->valuestring, "ALLOW_ANY") == 0) ||
        (cJSON_IsNumber(m) && m->valuedouble == 1))
        return 0;
    snprintf(err, errlen, "%s: outboundTrafficPolicy.mode: want REGISTRY_ONLY or ALLOW_ANY", where);
    return -1;
}

/* ingressClass, ingressControllerMode, ingressService, ingressSelector: istiod's Kubernetes
 * Ingress controller (pilot/model/ingress.c). Empty strings mean the defaults. */
static int mc_ingress(const cJSON *doc, const char *where, mesh_ingress_settings *o, char *err,
                      size_t errlen)
{
    if (mc_str(doc, "ingressClass", where, &o->ingress_class, err, errlen) != 0 ||
        mc_str(doc, "ingressService", where, &o->ingress_service, err, errlen) != 0 ||
        mc_str(doc, "ingressSelector", where, &o->ingress_selector, err, errlen) != 0)
        return -1;
    char **strs[] = {&o->ingress_class, &o->ingress_service, &o->ingress_selector};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (*strs[i] && !**strs[i]) {
            free(*strs[i]);
            *strs[i] = NULL;
        }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "ingressControllerMode");
    o->mode = MESH_INGRESS_STRICT;
    if (!m || cJSON_IsNull(m))
        return 0;
    /* the proto enum: UNSPECIFIED 0, OFF 1, DEFAULT 2, STRICT 3 */
    const char *v = cJSON_IsString(m) ? m->valuestring : NULL;
    double n = cJSON_IsNumber(m) ? m->valuedouble : -1;
    if ((v && strcmp(v, "OFF") == 0) || n == 1)
        o->mode = MESH_INGRESS_OFF;
    else if ((v && strcmp(v, "DEFAULT") == 0) || n == 2)
        o->mode = MESH_INGRESS_DEFAULT;
    else if (!((v && (strcmp(v, "STRICT") == 0 || strcmp(v, "UNSPECIFIED") == 0)) || n == 3 ||
               n == 0)) {
        snprintf(err, errlen, "%s: ingressControllerMode: want OFF, DEFAULT or STRICT", where);
        return -1;
    }
    return 0;
}

/* A default*ExportTo list: "*", ".", "~" or namespace names, as an object's exportTo. */
static int mc_export(const cJSON *doc, const char *key, const char *where, char ***out, size_t *n,
                     char *err, size_t errlen)
{
    xds_strlist l = {0};
    if (mc_strlist(doc, key, where, &l, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < l.n; i++) {
        const char *e = l.v[i];
        bool special = strcmp(e, "*") == 0 || strcmp(e, ".") == 0 || strcmp(e, "~") == 0;
        if (!special &&
            (!e[0] || strlen(e) > 63 ||
             strspn(e, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(e) || e[0] == '-')) {
            snprintf(err, errlen, "%s: %s[%zu]: want *, ., ~ or a namespace name, got \"%.64s\"",
                     where, key, i, e);
            util_strv_free(l.v, l.n);
            return -1;
        }
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

/* One mesh config document: trustDomain, rootNamespace, enableAutoMtls, defaultConfig,
 * trustDomainAliases, the ext_authz extensionProviders and the telemetry settings (access
 * logs, default metrics provider) and outboundTrafficPolicy.mode. */
int flags_mesh_parse(const char *text, size_t len, const char *where, pilot_mesh *out, char *err,
                     size_t errlen)
{
    int rc = -1;
    size_t ndocs = 0;
    cJSON **docs = NULL;
    char yerr[256];
    memset(out, 0, sizeof *out);
    out->trust_domain = xstrdup("cluster.local");
    out->root_namespace = xstrdup("istio-system");
    out->mesh_telemetry.trace_sampling_default = mc_env_trace_sampling();
    out->mesh_telemetry.has_trace_sampling_default = true;
    if (yaml_to_json_docs(text, len, &docs, &ndocs, yerr, sizeof(yerr)) != 0) {
        snprintf(err, errlen, "%s: %s", where, yerr);
        goto out;
    }
    if (ndocs > 1 || (ndocs == 1 && !cJSON_IsObject(docs[0]))) {
        snprintf(err, errlen, "%s: want one YAML mapping", where);
        goto out;
    }
    if (ndocs == 1) {
        const cJSON *doc = docs[0];
        const cJSON *td = cJSON_GetObjectItemCaseSensitive(doc, "trustDomain");
        const cJSON *rn = cJSON_GetObjectItemCaseSensitive(doc, "rootNamespace");
        if ((td && !cJSON_IsNull(td) && !cJSON_IsString(td)) ||
            (rn && !cJSON_IsNull(rn) && !cJSON_IsString(rn))) {
            snprintf(err, errlen, "%s: %s: want a string", where,
                     td && !cJSON_IsNull(td) && !cJSON_IsString(td) ? "trustDomain"
                                                                    : "rootNamespace");
            goto out;
        }
        if (cJSON_IsString(td) && td->valuestring[0]) {
            free(out->trust_domain);
            out->trust_domain = xstrdup(td->valuestring);
        }
        if (cJSON_IsString(rn) && rn->valuestring[0]) {
            free(out->root_namespace);
            out->root_namespace = xstrdup(rn->valuestring);
        }
        const cJSON *am = cJSON_GetObjectItemCaseSensitive(doc, "enableAutoMtls");
        if (am && !cJSON_IsNull(am) && !cJSON_IsBool(am)) {
            snprintf(err, errlen, "%s: enableAutoMtls: want true or false", where);
            goto out;
        }
        out->auto_mtls_off = cJSON_IsFalse(am);
        /* The injector's PROXY_CONFIG: mesh-wide proxy defaults (pilot/webhook). */
        const cJSON *dc = cJSON_GetObjectItemCaseSensitive(doc, "defaultConfig");
        if (dc && !cJSON_IsNull(dc) && !cJSON_IsObject(dc)) {
            snprintf(err, errlen, "%s: defaultConfig: want a mapping", where);
            goto out;
        }
        if (cJSON_IsObject(dc))
            out->default_config = cJSON_PrintUnformatted(dc);
        if (mc_authz(doc, where, &out->mesh_authz, err, errlen) != 0)
            goto out;
        if (mc_telemetry(doc, where, &out->mesh_telemetry, err, errlen) != 0 ||
            mc_tel_providers(doc, where, &out->mesh_telemetry, err, errlen) != 0)
            goto out;
        if (mc_outbound(doc, where, &out->outbound_mode, err, errlen) != 0)
            goto out;
        if (mc_ingress(doc, where, &out->ingress, err, errlen) != 0)
            goto out;
        if (mc_export(doc, "defaultServiceExportTo", where, &out->export_defaults.svc,
                      &out->export_defaults.nsvc, err, errlen) != 0 ||
            mc_export(doc, "defaultVirtualServiceExportTo", where, &out->export_defaults.vs,
                      &out->export_defaults.nvs, err, errlen) != 0 ||
            mc_export(doc, "defaultDestinationRuleExportTo", where, &out->export_defaults.dr,
                      &out->export_defaults.ndr, err, errlen) != 0)
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < ndocs; i++)
        cJSON_Delete(docs[i]);
    free(docs);
    if (rc != 0)
        flags_mesh_clear(out);
    return rc;
}

void flags_mesh_clear(pilot_mesh *m)
{
    free(m->trust_domain);
    free(m->root_namespace);
    free(m->default_config);
    xds_mesh_authz_clear(&m->mesh_authz);
    xds_mesh_telemetry_clear(&m->mesh_telemetry);
    mesh_export_defaults_clear(&m->export_defaults);
    mesh_ingress_settings_clear(&m->ingress);
    memset(m, 0, sizeof *m);
}

/* --meshConfig at start: a bad one is a flag error (exit 2), as istiod refuses to start. */
static int load_mesh_config(pilot_flags *f, char *err, size_t errlen)
{
    size_t len = 0;
    char where[160];
    char *buf = read_file(f->mesh_config, &len, err, errlen);
    if (!buf)
        return -1;
    snprintf(where, sizeof where, "--meshConfig: %.100s", f->mesh_config);
    flags_mesh_clear(&f->mesh);
    int rc = flags_mesh_parse(buf, len, where, &f->mesh, err, errlen);
    free(buf);
    return rc;
}

static const flag_def *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strlen(flag_table[i].name) == n && strncmp(flag_table[i].name, name, n) == 0)
            return &flag_table[i];
    return NULL;
}

int flags_parse(int argc, char **argv, pilot_flags *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    err[0] = '\0';
    for (size_t i = 0; i < NFLAGS; i++)
        if (flag_table[i].def && set_flag(f, &flag_table[i], flag_table[i].def, err, errlen) != 0)
            return -1;
    f->mesh.trust_domain = xstrdup("cluster.local");
    f->mesh.root_namespace = xstrdup("istio-system");
    f->mesh.mesh_telemetry.trace_sampling_default = mc_env_trace_sampling();
    f->mesh.mesh_telemetry.has_trace_sampling_default = true;

    int i = 1;
    if (argc < 2) {
        f->cmd = FLAGS_CMD_HELP;
        return 0;
    }
    if (strcmp(argv[1], "discovery") == 0) {
        f->cmd = FLAGS_CMD_DISCOVERY;
    } else if (strcmp(argv[1], "version") == 0) {
        f->cmd = FLAGS_CMD_VERSION;
    } else if (strcmp(argv[1], "request") == 0) {
        /* istiod's `request <method> <path> [<body>]`: no flags of its own */
        if (argc < 4 || argc > 5) {
            snprintf(err, errlen, "request: want <method> <path> [<body>], got %d argument(s)",
                     argc - 2);
            return -1;
        }
        f->cmd = FLAGS_CMD_REQUEST;
        f->req_method = argv[2];
        f->req_path = argv[3];
        f->req_body = argc == 5 ? argv[4] : NULL;
        return 0;
    } else if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
               strcmp(argv[1], "-h") == 0) {
        f->cmd = FLAGS_CMD_HELP;
        return 0;
    } else {
        snprintf(err, errlen, "unknown command \"%s\" for \"pilot-discovery\"", argv[1]);
        return -1;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            f->cmd = FLAGS_CMD_HELP;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0' || a[2] == '-' || a[2] == '=') {
            snprintf(err, errlen, "unexpected argument \"%s\"", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const flag_def *d = find_flag(name, nlen);
        if (!d) {
            snprintf(err, errlen, "unknown flag: --%.*s", (int)nlen, name);
            return -1;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "flag needs an argument: --%s", d->name);
            return -1;
        }
        if (set_flag(f, d, value, err, errlen) != 0)
            return -1;
    }
    if (f->domain[0] == '\0') {
        snprintf(err, errlen, "invalid argument \"\" for \"--domain\" flag: empty domain");
        return -1;
    }
    if (f->config_dir && f->config_dir[0] == '\0') {
        free(f->config_dir);
        f->config_dir = NULL;
    }
    char lerr[256];
    if (log_configure(f->log_output_level, lerr, sizeof(lerr)) != 0) {
        snprintf(err, errlen, "%s", lerr);
        return -1;
    }
    if (env_duration("PILOT_DEBOUNCE_AFTER", "100ms", &f->debounce_after_ns, err, errlen) != 0 ||
        env_duration("PILOT_DEBOUNCE_MAX", "10s", &f->debounce_max_ns, err, errlen) != 0 ||
        env_duration("PILOT_LEADER_LEASE_DURATION", "30s", &f->leader_lease_duration_ns, err,
                     errlen) != 0)
        return -1;
    if (env_duration("DEFAULT_WORKLOAD_CERT_TTL", "24h", &f->ca_default_ttl_ns, err, errlen) != 0 ||
        env_duration("MAX_WORKLOAD_CERT_TTL", "2160h", &f->ca_max_ttl_ns, err, errlen) != 0 ||
        env_duration("CITADEL_SELF_SIGNED_CA_CERT_TTL", "87600h", &f->ca_root_ttl_ns, err,
                     errlen) != 0 ||
        env_duration("CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL", "1h", &f->ca_check_interval_ns,
                     err, errlen) != 0)
        return -1;
    const char *rev = getenv("REVISION");
    f->revision = rev ? rev : "";
    const char *ins = getenv("K8S_INGRESS_NS");
    f->ingress_ns = ins && *ins ? ins : "istio-system";
    if (env_bool("ENABLE_NATIVE_SIDECARS", false, &f->native_sidecars, err, errlen) != 0 ||
        env_bool("ENABLE_TLS_ON_SIDECAR_INGRESS", false, &f->sidecar_ingress_tls, err, errlen) != 0)
        return -1;
    if (f->ca_default_ttl_ns <= 0 || f->ca_max_ttl_ns <= 0 || f->ca_root_ttl_ns <= 0 ||
        f->ca_check_interval_ns <= 0 || f->ca_default_ttl_ns > f->ca_max_ttl_ns) {
        snprintf(err, errlen,
                 "certificate TTLs and the root check interval must be positive, "
                 "and DEFAULT_WORKLOAD_CERT_TTL at most MAX_WORKLOAD_CERT_TTL");
        return -1;
    }
    if (strcmp(f->ca_key_type, "rsa") != 0 && strcmp(f->ca_key_type, "ecdsa") != 0) {
        snprintf(err, errlen,
                 "invalid argument \"%s\" for \"--caKeyType\" flag: want rsa or "
                 "ecdsa",
                 f->ca_key_type);
        return -1;
    }
    if (f->mesh_config && f->mesh_config[0] && load_mesh_config(f, err, errlen) != 0)
        return -1;
    return 0;
}

void flags_free(pilot_flags *f)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (flag_table[i].type == FT_STRING)
            free(*(char **)((char *)f + flag_table[i].off));
    flags_mesh_clear(&f->mesh);
    memset(f, 0, sizeof(*f));
}
