/* telemetry: what istiod's default install (Istio 1.24, no Telemetry resources) puts in
 * Envoy listeners for telemetry: the istio.metadata_exchange and istio.stats filters, HTTP
 * and network, which give Istio's standard metrics their source and destination labels
 * (what Kiali draws its graph from), and the mesh config access logs (accessLogFile,
 * accessLogEncoding, accessLogFormat); and what the Telemetry API (telemetry.istio.io)
 * makes of them, as istiod's pilot/pkg/model/telemetry.go: the Telemetries that apply to
 * the proxy (root namespace, namespace, workload) merged per provider, metrics overrides
 * (disabled, tagOverrides) into the istio.stats configs of prometheus providers, access
 * logging (disabled, CEL filter) through envoyFileAccessLog providers. Tracing is
 * tracing.c's (called from gen_hcm_telemetry); the other provider kinds are not built.
 *
 * Istio's own filters have protos outside Envoy's API, and our proto set is Envoy's. Envoy
 * takes any extension's config as a udpa.type.v1.TypedStruct (the real type_url and the
 * config as a Struct, turned into the proto through JSON); istiod itself sends the
 * metadata exchange configs that way, and go-control-plane (tests/peers/xdscheck) decodes
 * it. istiod packs stats.PluginConfig as the real message; hand-encoding it would copy
 * field numbers from istio/api and leave an Any no checker here can read, so it is a
 * TypedStruct too (Envoy builds the same PluginConfig from either).
 *
 * Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * generator's immutable settings, so it takes no locks. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/access_loggers/filters/cel/v3/cel.pb-c.h"
#include "envoy/extensions/formatter/cel/v3/cel.pb-c.h"
#include "envoy/extensions/formatter/metadata/v3/metadata.pb-c.h"
#include "envoy/extensions/formatter/req_without_query/v3/req_without_query.pb-c.h"
#include "pilot/base/util.h"
#include "udpa/type/v1/typed_struct.pb-c.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Config__Accesslog__V3__AccessLog AccessLog;
typedef Envoy__Config__Core__V3__SubstitutionFormatString FormatString;
typedef struct gen_tel gen_tel;

#define TEL_MX_NAME "istio.metadata_exchange"
#define TEL_STATS_NAME "istio.stats"
#define TEL_PEER_METADATA_TYPE "type.googleapis.com/io.istio.http.peer_metadata.Config"
#define TEL_TCP_MX_TYPE "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"
#define TEL_STATS_TYPE "type.googleapis.com/stats.PluginConfig"

/* istiod's configs (pilot/pkg/xds/filters, pilot/pkg/model/telemetry.go), as JSON: the
 * inbound side learns its peer from the downstream's headers (or workload discovery) and
 * propagates its own the same way; the outbound side (gateways included) does so
 * upstream. */
static const char tel_mx_inbound[] =
    "{\"downstream_discovery\":[{\"istio_headers\":{}},{\"workload_discovery\":{}}],"
    "\"downstream_propagation\":[{\"istio_headers\":{}}]}";
static const char tel_mx_outbound[] =
    "{\"upstream_discovery\":[{\"istio_headers\":{}},{\"workload_discovery\":{}}],"
    "\"upstream_propagation\":[{\"istio_headers\":{}}]}";
static const char tel_mx_tcp[] = "{\"protocol\":\"istio-peer-exchange\",\"enable_discovery\":true}";

/* A TypedStruct carrying type_url and the JSON object j. */
static const ProtobufCMessage *tel_typed_struct_j(gen_ctx *c, const char *type_url, const cJSON *j)
{
    Udpa__Type__V1__TypedStruct *ts =
        GA_MSG(c->a, Udpa__Type__V1__TypedStruct, udpa__type__v1__typed_struct__init);
    ts->type_url = ga_strdup(c->a, type_url);
    ts->value = gen_struct_from_json(c, j);
    if (!ts->value) /* cJSON out of memory: an empty config is still a valid one */
        ts->value = gen_struct_str(c, NULL, NULL);
    return &ts->base;
}

/* The same from JSON text (a constant above). */
static const ProtobufCMessage *tel_typed_struct(gen_ctx *c, const char *type_url, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    const ProtobufCMessage *m = tel_typed_struct_j(c, type_url, j);
    cJSON_Delete(j);
    return m;
}

static gen_tel *tel_get(gen_ctx *c);
static void tel_stats_configs(gen_ctx *c, gen_listener_class cls, const ProtobufCMessage ***out,
                              size_t *n);

void gen_hcm_telemetry(gen_ctx *c, HCM *h, gen_listener_class cls)
{
    gen_hfilter *mx = gen_http_filter_new(
        c, TEL_MX_NAME,
        tel_typed_struct(c, TEL_PEER_METADATA_TYPE,
                         cls == GEN_CLASS_SIDECAR_INBOUND ? tel_mx_inbound : tel_mx_outbound));
    const ProtobufCMessage **stats = NULL;
    size_t nstats = 0;
    tel_stats_configs(c, cls, &stats, &nstats);
    /* [mx] + filters up to the router + [stats...] + router: the router stays last */
    size_t n = h->n_http_filters;
    gen_hfilter **all = ga_alloc(c->a, (n + 1 + nstats) * sizeof *all);
    size_t k = 0;
    all[k++] = mx;
    for (size_t i = 0; i + 1 < n; i++)
        all[k++] = h->http_filters[i];
    for (size_t i = 0; i < nstats; i++)
        all[k++] = gen_http_filter_new(c, TEL_STATS_NAME, stats[i]);
    if (n)
        all[k++] = h->http_filters[n - 1];
    h->http_filters = all;
    h->n_http_filters = k;
    gen_listener_class saved = c->tel_class;
    c->tel_class = cls;
    gen_access_log_add(c, &h->access_log, &h->n_access_log);
    c->tel_class = saved;
    gen_hcm_tracing(c, h, cls);
}

void gen_tcp_mx_filter(gen_ctx *c, Envoy__Config__Listener__V3__Filter ***f, size_t *n)
{
    GA_PUSH(c->a, *f, *n,
            gen_filter(c, TEL_MX_NAME, tel_typed_struct(c, TEL_TCP_MX_TYPE, tel_mx_tcp)));
}

void gen_tcp_stats_filter(gen_ctx *c, gen_listener_class cls,
                          Envoy__Config__Listener__V3__Filter ***f, size_t *n)
{
    const ProtobufCMessage **stats = NULL;
    size_t nstats = 0;
    tel_stats_configs(c, cls, &stats, &nstats);
    for (size_t i = 0; i < nstats; i++)
        GA_PUSH(c->a, *f, *n, gen_filter(c, TEL_STATS_NAME, stats[i]));
}

void gen_cluster_mx_filter(gen_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl)
{
    Envoy__Config__Cluster__V3__Filter *f =
        GA_MSG(c->a, Envoy__Config__Cluster__V3__Filter, envoy__config__cluster__v3__filter__init);
    f->name = ga_strdup(c->a, TEL_MX_NAME);
    f->typed_config = gen_any(c, tel_typed_struct(c, TEL_TCP_MX_TYPE, tel_mx_tcp));
    GA_PUSH(c->a, cl->filters, cl->n_filters, f);
}

/* ---- access logs ----------------------------------------------------------------------- */

/* istiod's EnvoyTextLogFormat (Istio 1.9 onwards). */
static const char tel_text_format[] =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% "
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/* istiod's EnvoyJSONLogFormatIstio, in its source order. */
static const char *const tel_json_format[][2] = {
    {"start_time", "%START_TIME%"},
    {"route_name", "%ROUTE_NAME%"},
    {"method", "%REQ(:METHOD)%"},
    {"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
    {"protocol", "%PROTOCOL%"},
    {"response_code", "%RESPONSE_CODE%"},
    {"response_flags", "%RESPONSE_FLAGS%"},
    {"response_code_details", "%RESPONSE_CODE_DETAILS%"},
    {"connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"},
    {"bytes_received", "%BYTES_RECEIVED%"},
    {"bytes_sent", "%BYTES_SENT%"},
    {"duration", "%DURATION%"},
    {"upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
    {"x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"},
    {"user_agent", "%REQ(USER-AGENT)%"},
    {"request_id", "%REQ(X-REQUEST-ID)%"},
    {"authority", "%REQ(:AUTHORITY)%"},
    {"upstream_host", "%UPSTREAM_HOST%"},
    {"upstream_cluster", "%UPSTREAM_CLUSTER%"},
    {"upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"},
    {"downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"},
    {"downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"},
    {"requested_server_name", "%REQUESTED_SERVER_NAME%"},
    {"upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"},
};

/* The command operators that Envoy implements as formatter extensions: a format using one
 * needs the extension configured beside it, or Envoy refuses the format. */
enum { TEL_F_REQ_WITHOUT_QUERY = 1, TEL_F_METADATA = 2, TEL_F_CEL = 4 };

static unsigned tel_formatters_in(const char *s)
{
    unsigned m = 0;
    if (s && strstr(s, "%REQ_WITHOUT_QUERY"))
        m |= TEL_F_REQ_WITHOUT_QUERY;
    if (s && strstr(s, "%METADATA"))
        m |= TEL_F_METADATA;
    if (s && strstr(s, "%CEL"))
        m |= TEL_F_CEL;
    return m;
}

static void tel_formatter_add(gen_ctx *c, FormatString *sf, const char *name,
                              const ProtobufCMessage *cfg)
{
    Envoy__Config__Core__V3__TypedExtensionConfig *e =
        GA_MSG(c->a, Envoy__Config__Core__V3__TypedExtensionConfig,
               envoy__config__core__v3__typed_extension_config__init);
    e->name = ga_strdup(c->a, name);
    e->typed_config = gen_any(c, cfg);
    GA_PUSH(c->a, sf->formatters, sf->n_formatters, e);
}

/* In istiod's order: req_without_query, metadata, cel. */
static void tel_formatters(gen_ctx *c, FormatString *sf, unsigned m)
{
    if (m & TEL_F_REQ_WITHOUT_QUERY) {
        Envoy__Extensions__Formatter__ReqWithoutQuery__V3__ReqWithoutQuery *f =
            GA_MSG(c->a, Envoy__Extensions__Formatter__ReqWithoutQuery__V3__ReqWithoutQuery,
                   envoy__extensions__formatter__req_without_query__v3__req_without_query__init);
        tel_formatter_add(c, sf, "envoy.formatter.req_without_query", &f->base);
    }
    if (m & TEL_F_METADATA) {
        Envoy__Extensions__Formatter__Metadata__V3__Metadata *f =
            GA_MSG(c->a, Envoy__Extensions__Formatter__Metadata__V3__Metadata,
                   envoy__extensions__formatter__metadata__v3__metadata__init);
        tel_formatter_add(c, sf, "envoy.formatter.metadata", &f->base);
    }
    if (m & TEL_F_CEL) {
        Envoy__Extensions__Formatter__Cel__V3__Cel *f =
            GA_MSG(c->a, Envoy__Extensions__Formatter__Cel__V3__Cel,
                   envoy__extensions__formatter__cel__v3__cel__init);
        tel_formatter_add(c, sf, "envoy.formatter.cel", &f->base);
    }
}

/* JSON encoding: fmt (accessLogFormat, a provider's logFormat.labels) when it is a JSON
 * object, else istiod's default (istiod
 * logs a bad one and uses the default; pilot/flags.c warns at start-up). istiod looks for
 * formatter operators in the top-level string values only; so do we. */
static void tel_json_log_format(gen_ctx *c, FormatString *sf, const char *fmt)
{
    cJSON *j = fmt && fmt[0] ? cJSON_Parse(fmt) : NULL;
    Google__Protobuf__Struct *st = gen_struct_from_json(c, j);
    cJSON_Delete(j);
    if (!st) {
        st = gen_struct_str(c, NULL, NULL);
        for (size_t i = 0; i < sizeof tel_json_format / sizeof tel_json_format[0]; i++)
            gen_struct_set_str(c, st, tel_json_format[i][0], tel_json_format[i][1]);
    }
    unsigned m = 0;
    for (size_t i = 0; i < st->n_fields; i++) {
        const Google__Protobuf__Value *v = st->fields[i]->value;
        if (v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
            m |= tel_formatters_in(v->string_value);
    }
    sf->format_case = ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT;
    sf->json_format = st;
    /* istiod sets the options message (sort_properties false, the default) */
    sf->json_format_options = GA_MSG(c->a, Envoy__Config__Core__V3__JsonFormatOptions,
                                     envoy__config__core__v3__json_format_options__init);
    tel_formatters(c, sf, m);
}

/* TEXT encoding: fmt (accessLogFormat, a provider's logFormat.text) with a newline added
 * when it lacks one (Istio's rule), else istiod's default. */
static void tel_text_log_format(gen_ctx *c, FormatString *sf, const char *fmt)
{
    const char *text = tel_text_format;
    if (fmt && fmt[0]) {
        size_t len = strlen(fmt);
        text = fmt[len - 1] == '\n' ? ga_strdup(c->a, fmt) : ga_printf(c->a, "%s\n", fmt);
    }
    Envoy__Config__Core__V3__DataSource *ds = GA_MSG(c->a, Envoy__Config__Core__V3__DataSource,
                                                     envoy__config__core__v3__data_source__init);
    ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    ds->inline_string = ga_strdup(c->a, text);
    sf->format_case =
        ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT_SOURCE;
    sf->text_format_source = ds;
    tel_formatters(c, sf, tel_formatters_in(text));
}

/* envoy.access_loggers.file writing to path: encoding json with fmt (a JSON object text,
 * NULL or unparsable: istiod's default), else text fmt (NULL or "": istiod's default). */
static AccessLog *tel_file_log(gen_ctx *c, const char *path, bool json, const char *fmt)
{
    Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *fl =
        GA_MSG(c->a, Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog,
               envoy__extensions__access_loggers__file__v3__file_access_log__init);
    fl->path = ga_strdup(c->a, path);
    FormatString *sf =
        GA_MSG(c->a, FormatString, envoy__config__core__v3__substitution_format_string__init);
    if (json)
        tel_json_log_format(c, sf, fmt);
    else
        tel_text_log_format(c, sf, fmt);
    fl->access_log_format_case =
        ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT;
    fl->log_format = sf;
    AccessLog *al = GA_MSG(c->a, AccessLog, envoy__config__accesslog__v3__access_log__init);
    al->name = ga_strdup(c->a, "envoy.access_loggers.file");
    al->config_type_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG;
    al->typed_config = gen_any(c, &fl->base);
    return al;
}

/* ---- the Telemetry API (istiod's pilot/pkg/model/telemetry.go) ------------------------- */

typedef Envoy__Config__Accesslog__V3__AccessLogFilter LogFilter;

/* One metric's merged override (istiod's metricOverride) under one provider and mode. */
typedef struct tel_override {
    const char *metric; /* "REQUEST_COUNT", ... or a custom metric's name */
    mesh_tri disabled;
    const mesh_tel_tag_override **tags; /* by name, the last writer's */
    size_t ntags;
} tel_override;

typedef struct tel_mode_metrics {
    tel_override *v;
    size_t n;
    bool disabled; /* ALL_METRICS disabled for the mode: no filter */
} tel_mode_metrics;

/* mergeMetrics' result for one provider: [0] CLIENT, [1] SERVER. */
typedef struct tel_provider_metrics {
    const char *name;
    tel_mode_metrics mode[2];
    int64_t reporting_ns; /* -1 unset */
} tel_provider_metrics;

/* What one listener class gets, computed on first use. */
typedef struct tel_class_out {
    bool stats_done;
    const ProtobufCMessage **stats; /* one istio.stats config per prometheus provider */
    size_t nstats;
    bool logs_done;
    bool api_logs;    /* the Telemetry API decides the access logs (else mesh config's) */
    AccessLog **logs; /* HCM and tcp_proxy logs */
    size_t nlogs;
    AccessLog **listener_logs; /* the same, only for connections no chain took (NR) */
    size_t nlistener_logs;
} tel_class_out;

typedef struct gen_tel {
    const mesh_telemetry **v; /* the Telemetries that apply, in merge order */
    size_t n;
    const char *key;
    bool merged;
    tel_provider_metrics *pm;
    size_t npm;
    tel_class_out cls[3];
    AccessLog *legacy, *legacy_listener; /* the mesh config file access log */
} gen_tel;

static gen_tel *tel_get(gen_ctx *c)
{
    if (c->tel)
        return c->tel;
    gen_tel *t = ga_alloc(c->a, sizeof *t);
    t->v = ga_alloc(c->a, (c->s->ntelemetries + 1) * sizeof *t->v);
    /* gRPC proxies get no telemetry filters: no Telemetry applies */
    if (!c->grpc)
        t->n = mesh_snapshot_telemetries_for(c->s, c->p->ns, &c->p->labels, t->v);
    gen_sbuf k = {0};
    ga_cat(c->a, &k, "tel=");
    for (size_t i = 0; i < t->n; i++)
        ga_cat(c->a, &k, "%s%s/%s", i ? "," : "", t->v[i]->meta.ns, t->v[i]->meta.name);
    if (!t->n)
        ga_cat(c->a, &k, "-");
    /* tracing's inputs when they are in the class: the per-proxy span tag values and Node
     * cluster, the namespace (a tag too) and the Sidecar scope (a collector out of scope
     * means no tracing) */
    for (size_t i = 0; c->p->trace && i < GEN_TRACE_N; i++)
        ga_cat(c->a, &k, "%s%s", i ? "\x1f" : "|tr=", c->p->trace[i]);
    if (c->p->trace)
        ga_cat(c->a, &k, "\x1f%s\x1f%s", c->p->ns ? c->p->ns : "", gen_scope_get(c)->key);
    t->key = ga_sbuf_str(c->a, &k);
    c->tel = t;
    return t;
}

const char *gen_telemetry_key(gen_ctx *c)
{
    return tel_get(c)->key;
}

const mesh_telemetry *const *gen_telemetries(gen_ctx *c, size_t *n)
{
    gen_tel *t = tel_get(c);
    *n = t->n;
    return t->v;
}

static const xds_tel_provider tel_builtin[] = {
    {.name = "prometheus", .kind = XDS_TEL_PROVIDER_PROMETHEUS},
    {.name = "stackdriver", .kind = XDS_TEL_PROVIDER_OTHER},
    {.name = "envoy", .kind = XDS_TEL_PROVIDER_FILE_LOG, .path = "/dev/stdout"},
};

/* The mesh config provider named exactly name, or NULL. */
static const xds_tel_provider *tel_configured(const xds_mesh_telemetry *m, const char *name)
{
    for (size_t i = 0; i < m->nproviders; i++)
        if (m->providers[i].name && strcmp(m->providers[i].name, name) == 0)
            return &m->providers[i];
    return NULL;
}

/* istiod's fetchProvider: the first of mesh config's extensionProviders whose name matches,
 * ignoring case. That list starts with the built-in prometheus, stackdriver and envoy (a
 * configured provider of the same name takes its place), then the others in file order. */
const xds_tel_provider *gen_tel_provider(gen_ctx *c, const char *name)
{
    const xds_mesh_telemetry *m = c->telemetry;
    for (size_t i = 0; i < sizeof tel_builtin / sizeof tel_builtin[0]; i++) {
        const xds_tel_provider *p = tel_configured(m, tel_builtin[i].name);
        if (!p)
            p = &tel_builtin[i];
        if (strcasecmp(p->name, name) == 0)
            return p;
    }
    for (size_t i = 0; i < m->nproviders; i++) {
        const xds_tel_provider *p = &m->providers[i];
        bool builtin = false;
        for (size_t k = 0; k < sizeof tel_builtin / sizeof tel_builtin[0] && !builtin; k++)
            builtin = p->name && strcmp(p->name, tel_builtin[k].name) == 0;
        if (!builtin && p->name && strcasecmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

static bool tel_names_has(char *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

static char *const tel_install_metrics[] = {"prometheus"};

static void tel_default_metrics(gen_ctx *c, char *const **v, size_t *n)
{
    if (c->telemetry->has_default_metrics) {
        *v = c->telemetry->default_metrics.v;
        *n = c->telemetry->default_metrics.n;
    } else {
        *v = tel_install_metrics;
        *n = 1;
    }
}

static tel_provider_metrics *tel_pm(gen_ctx *c, gen_tel *t, const char *name)
{
    for (size_t i = 0; i < t->npm; i++)
        if (strcmp(t->pm[i].name, name) == 0)
            return &t->pm[i];
    tel_provider_metrics pm = {.name = name, .reporting_ns = -1};
    GA_PUSH(c->a, t->pm, t->npm, pm);
    return &t->pm[t->npm - 1];
}

static tel_override *tel_ov(gen_ctx *c, tel_mode_metrics *mm, const char *metric)
{
    for (size_t i = 0; i < mm->n; i++)
        if (strcmp(mm->v[i].metric, metric) == 0)
            return &mm->v[i];
    tel_override o = {.metric = metric};
    GA_PUSH(c->a, mm->v, mm->n, o);
    return &mm->v[mm->n - 1];
}

static void tel_ov_apply(gen_ctx *c, tel_override *ov, const mesh_tel_metrics_override *o)
{
    if (o->disabled != MESH_TRI_UNSET)
        ov->disabled = o->disabled;
    for (size_t k = 0; k < o->ntags; k++) {
        size_t j = 0;
        while (j < ov->ntags && strcmp(ov->tags[j]->name, o->tags[k].name) != 0)
            j++;
        if (j < ov->ntags)
            ov->tags[j] = &o->tags[k];
        else
            GA_PUSH(c->a, ov->tags, ov->ntags, &o->tags[k]);
    }
}

/* The metric names an override matches (istiod's getMatches: ALL_METRICS is every metric
 * but itself, in name order). */
static size_t tel_matches(const mesh_tel_metrics_override *o, const char **out)
{
    if (o->custom_metric) {
        out[0] = o->custom_metric;
        return 1;
    }
    if (o->metric != MESH_TEL_ALL_METRICS) {
        out[0] = mesh_tel_metric_name(o->metric);
        return out[0] ? 1 : 0;
    }
    static const char *const all[] = {
        "GRPC_REQUEST_MESSAGES",  "GRPC_RESPONSE_MESSAGES", "REQUEST_COUNT",
        "REQUEST_DURATION",       "REQUEST_SIZE",           "RESPONSE_SIZE",
        "TCP_CLOSED_CONNECTIONS", "TCP_OPENED_CONNECTIONS", "TCP_RECEIVED_BYTES",
        "TCP_SENT_BYTES",
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        out[i] = all[i];
    return sizeof all / sizeof all[0];
}

/* istiod's mergeMetrics over the metrics of every Telemetry that applies, in order: the
 * providers in force are the last non-empty providers list (else the defaults); each
 * entry applies to its own providers or, without, to its parent's; overrides merge per
 * provider, mode and metric, later over earlier. */
static void tel_merge_metrics(gen_ctx *c, gen_tel *t)
{
    char *const *dv;
    size_t dn;
    tel_default_metrics(c, &dv, &dn);
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++)
        total += t->v[i]->nmetrics;
    t->merged = true;
    if (!total) {
        for (size_t i = 0; i < dn; i++)
            tel_pm(c, t, dv[i]);
        return;
    }
    char *const *sv = dv; /* in scope */
    size_t sn = dn;
    for (size_t i = 0; i < t->n; i++)
        for (size_t m = 0; m < t->v[i]->nmetrics; m++)
            if (t->v[i]->metrics[m].providers.n) {
                sv = t->v[i]->metrics[m].providers.v;
                sn = t->v[i]->metrics[m].providers.n;
            }
    char *const *parent = dv;
    size_t pn = dn;
    for (size_t i = 0; i < t->n; i++) {
        for (size_t m = 0; m < t->v[i]->nmetrics; m++) {
            const mesh_tel_metrics *me = &t->v[i]->metrics[m];
            if (me->providers.n) {
                parent = me->providers.v;
                pn = me->providers.n;
            }
            for (size_t p = 0; p < pn; p++) {
                if (!tel_names_has(sv, sn, parent[p]))
                    continue; /* a provider a later level replaced */
                tel_provider_metrics *pm = tel_pm(c, t, parent[p]);
                if (me->reporting_interval_ns >= 0)
                    pm->reporting_ns = me->reporting_interval_ns;
                for (size_t o = 0; o < me->noverrides; o++) {
                    const mesh_tel_metrics_override *ov = &me->overrides[o];
                    size_t m0 = ov->mode == MESH_TEL_SERVER ? 1 : 0;
                    size_t m1 = ov->mode == MESH_TEL_CLIENT ? 0 : 1;
                    bool all = !ov->custom_metric && ov->metric == MESH_TEL_ALL_METRICS;
                    for (size_t md = m0; md <= m1; md++) {
                        if (all && ov->disabled == MESH_TRI_TRUE) {
                            pm->mode[md].disabled = true;
                            continue;
                        }
                        /* a later override re-enables what an earlier level disabled */
                        pm->mode[md].disabled = false;
                        const char *names[MESH_TEL_METRIC__COUNT];
                        size_t nn = tel_matches(ov, names);
                        for (size_t k = 0; k < nn; k++)
                            tel_ov_apply(c, tel_ov(c, &pm->mode[md], names[k]), ov);
                    }
                }
            }
        }
    }
}

/* istiod's metricToPrometheusMetric; a custom metric keeps its name. */
static const char *tel_prom_name(const char *metric)
{
    static const char *const map[][2] = {
        {"REQUEST_COUNT", "requests_total"},
        {"REQUEST_DURATION", "request_duration_milliseconds"},
        {"REQUEST_SIZE", "request_bytes"},
        {"RESPONSE_SIZE", "response_bytes"},
        {"TCP_OPENED_CONNECTIONS", "tcp_connections_opened_total"},
        {"TCP_CLOSED_CONNECTIONS", "tcp_connections_closed_total"},
        {"TCP_SENT_BYTES", "tcp_sent_bytes_total"},
        {"TCP_RECEIVED_BYTES", "tcp_received_bytes_total"},
        {"GRPC_REQUEST_MESSAGES", "request_messages_total"},
        {"GRPC_RESPONSE_MESSAGES", "response_messages_total"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], metric) == 0)
            return map[i][1];
    return metric;
}

static int tel_cmp_override(const void *a, const void *b)
{
    return strcmp(((const tel_override *)a)->metric, ((const tel_override *)b)->metric);
}

static int tel_cmp_tag(const void *a, const void *b)
{
    return strcmp((*(const mesh_tel_tag_override *const *)a)->name,
                  (*(const mesh_tel_tag_override *const *)b)->name);
}

static int tel_cmp_pm(const void *a, const void *b)
{
    return strcmp(((const tel_provider_metrics *)a)->name, ((const tel_provider_metrics *)b)->name);
}

/* A duration as proto3 JSON ("5s", "0.500s"). */
static char *tel_json_duration(gen_ctx *c, int64_t ns)
{
    if (ns % 1000000000 == 0)
        return ga_printf(c->a, "%llds", (long long)(ns / 1000000000));
    return ga_printf(c->a, "%lld.%09llds", (long long)(ns / 1000000000),
                     (long long)(ns % 1000000000));
}

/* istiod's generateStatsConfig: stats.PluginConfig of one provider for one class, as JSON.
 * The server side and gateways name the destination service from the cluster only, never
 * from the Host header (a client can send any Host); the client side may fall back to it. */
static cJSON *tel_stats_json(gen_ctx *c, const tel_provider_metrics *pm, gen_listener_class cls)
{
    const tel_mode_metrics *mm = &pm->mode[cls == GEN_CLASS_SIDECAR_INBOUND ? 1 : 0];
    cJSON *j = cJSON_CreateObject();
    if (cls != GEN_CLASS_SIDECAR_OUTBOUND)
        cJSON_AddBoolToObject(j, "disable_host_header_fallback", true);
    if (pm->reporting_ns >= 0)
        cJSON_AddStringToObject(j, "tcp_reporting_duration",
                                tel_json_duration(c, pm->reporting_ns));
    if (!mm->n)
        return j;
    tel_override *ov = ga_alloc(c->a, mm->n * sizeof *ov); /* sorted apart: pm is shared */
    memcpy(ov, mm->v, mm->n * sizeof *ov);
    qsort(ov, mm->n, sizeof *ov, tel_cmp_override);
    cJSON *metrics = cJSON_AddArrayToObject(j, "metrics");
    for (size_t i = 0; i < mm->n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(metrics, m);
        if (ov[i].ntags)
            qsort(ov[i].tags, ov[i].ntags, sizeof *ov[i].tags, tel_cmp_tag);
        cJSON *dims = NULL, *rm = NULL;
        for (size_t k = 0; k < ov[i].ntags; k++) {
            const mesh_tel_tag_override *tg = ov[i].tags[k];
            if (tg->remove) {
                if (!rm)
                    rm = cJSON_CreateArray();
                cJSON_AddItemToArray(rm, cJSON_CreateString(tg->name));
            } else {
                if (!dims)
                    dims = cJSON_CreateObject();
                cJSON_AddStringToObject(dims, tg->name, tg->value ? tg->value : "");
            }
        }
        if (dims)
            cJSON_AddItemToObject(m, "dimensions", dims);
        cJSON_AddStringToObject(m, "name", tel_prom_name(ov[i].metric));
        if (rm)
            cJSON_AddItemToObject(m, "tags_to_remove", rm);
        if (ov[i].disabled == MESH_TRI_TRUE)
            cJSON_AddBoolToObject(m, "drop", true);
    }
    return j;
}

/* The istio.stats configs of cls: one per prometheus provider in force (by name), none for
 * a mode whose metrics are all disabled. */
static void tel_stats_configs(gen_ctx *c, gen_listener_class cls, const ProtobufCMessage ***out,
                              size_t *n)
{
    gen_tel *t = tel_get(c);
    tel_class_out *co = &t->cls[cls];
    if (!co->stats_done) {
        co->stats_done = true;
        if (!t->merged) {
            tel_merge_metrics(c, t);
            if (t->npm)
                qsort(t->pm, t->npm, sizeof *t->pm, tel_cmp_pm);
        }
        for (size_t i = 0; i < t->npm; i++) {
            const tel_provider_metrics *pm = &t->pm[i];
            const xds_tel_provider *p = gen_tel_provider(c, pm->name);
            if (!p || p->kind != XDS_TEL_PROVIDER_PROMETHEUS)
                continue;
            if (pm->mode[cls == GEN_CLASS_SIDECAR_INBOUND ? 1 : 0].disabled)
                continue;
            cJSON *j = tel_stats_json(c, pm, cls);
            GA_PUSH(c->a, co->stats, co->nstats, tel_typed_struct_j(c, TEL_STATS_TYPE, j));
            cJSON_Delete(j);
        }
    }
    *out = co->stats;
    *n = co->nstats;
}

/* ---- access logging -------------------------------------------------------------------- */

typedef struct tel_log_spec {
    const char *provider;
    bool disabled;
    const char *filter; /* CEL, NULL for none */
} tel_log_spec;

static tel_log_spec *tel_spec(gen_ctx *c, tel_log_spec **v, size_t *n, const char *provider)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].provider, provider) == 0)
            return &(*v)[i];
    tel_log_spec s = {.provider = provider};
    GA_PUSH(c->a, *v, *n, s);
    return &(*v)[*n - 1];
}

static bool tel_mode_matches(mesh_tel_mode m, gen_listener_class cls)
{
    if (m == MESH_TEL_CLIENT_AND_SERVER)
        return true;
    return m == (cls == GEN_CLASS_SIDECAR_INBOUND ? MESH_TEL_SERVER : MESH_TEL_CLIENT);
}

/* istiod's mergeLogs for one class: providers in force are the last level (Telemetry) that
 * names some for the class (else defaultProviders.accessLogging); entries without providers
 * apply to their parent's; a filter belongs to the providers its entry names. */
static void tel_merge_logs(gen_ctx *c, gen_tel *t, gen_listener_class cls, tel_log_spec **out,
                           size_t *nout)
{
    const xds_strlist *dl = &c->telemetry->default_access_logging;
    bool any = false;
    for (size_t i = 0; i < t->n && !any; i++)
        any = t->v[i]->nlogging > 0;
    if (!any) {
        for (size_t i = 0; i < dl->n; i++)
            tel_spec(c, out, nout, dl->v[i]);
        return;
    }
    char *const *sv = dl->v; /* in scope */
    size_t sn = dl->n;
    tel_log_spec *filters = NULL;
    size_t nfilters = 0;
    for (size_t i = 0; i < t->n; i++) {
        const mesh_telemetry *te = t->v[i];
        char **names = NULL;
        size_t nnames = 0;
        for (size_t l = 0; l < te->nlogging; l++) {
            const mesh_tel_access_logging *al = &te->logging[l];
            if (!tel_mode_matches(al->mode, cls))
                continue;
            for (size_t p = 0; p < al->providers.n; p++) {
                if (!tel_names_has(names, nnames, al->providers.v[p]))
                    GA_PUSH(c->a, names, nnames, al->providers.v[p]);
                tel_spec(c, &filters, &nfilters, al->providers.v[p])->filter = al->filter;
            }
        }
        if (nnames) {
            sv = names;
            sn = nnames;
        }
    }
    char *const *parent = dl->v;
    size_t pn = dl->n;
    for (size_t i = 0; i < t->n; i++) {
        for (size_t l = 0; l < t->v[i]->nlogging; l++) {
            const mesh_tel_access_logging *al = &t->v[i]->logging[l];
            if (al->providers.n) {
                parent = al->providers.v;
                pn = al->providers.n;
            }
            if (!tel_mode_matches(al->mode, cls))
                continue;
            for (size_t p = 0; p < pn; p++) {
                if (!tel_names_has(sv, sn, parent[p]))
                    continue;
                tel_log_spec *s = tel_spec(c, out, nout, parent[p]);
                s->disabled = al->disabled == MESH_TRI_TRUE;
                s->filter = NULL;
                if (!s->disabled)
                    for (size_t f = 0; f < nfilters; f++)
                        if (strcmp(filters[f].provider, parent[p]) == 0)
                            s->filter = filters[f].filter;
            }
        }
    }
}

/* A provider's file access log (istiod's telemetryAccessLog for envoyFileAccessLog): the
 * built-in envoy provider without logFormat follows the mesh config's encoding and format. */
static AccessLog *tel_provider_log(gen_ctx *c, const xds_tel_provider *p)
{
    const char *path = p->path && p->path[0] ? p->path : "/dev/stdout";
    if (strcmp(p->name, "envoy") == 0 && p->format == XDS_TEL_LOG_FORMAT_NONE)
        return tel_file_log(c, path, c->telemetry->access_log_encoding == XDS_ACCESS_LOG_JSON,
                            c->telemetry->access_log_format);
    if (p->format == XDS_TEL_LOG_FORMAT_LABELS)
        return tel_file_log(c, path, true, p->labels);
    return tel_file_log(c, path, false, p->format == XDS_TEL_LOG_FORMAT_TEXT ? p->text : NULL);
}

/* envoy.access_loggers.extension_filters.cel with the expression. */
static LogFilter *tel_cel_filter(gen_ctx *c, const char *expr)
{
    Envoy__Extensions__AccessLoggers__Filters__Cel__V3__ExpressionFilter *ef =
        GA_MSG(c->a, Envoy__Extensions__AccessLoggers__Filters__Cel__V3__ExpressionFilter,
               envoy__extensions__access_loggers__filters__cel__v3__expression_filter__init);
    ef->expression = ga_strdup(c->a, expr);
    Envoy__Config__Accesslog__V3__ExtensionFilter *xf =
        GA_MSG(c->a, Envoy__Config__Accesslog__V3__ExtensionFilter,
               envoy__config__accesslog__v3__extension_filter__init);
    xf->name = ga_strdup(c->a, "envoy.access_loggers.extension_filters.cel");
    xf->config_type_case = ENVOY__CONFIG__ACCESSLOG__V3__EXTENSION_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    xf->typed_config = gen_any(c, &ef->base);
    LogFilter *f = GA_MSG(c->a, LogFilter, envoy__config__accesslog__v3__access_log_filter__init);
    f->filter_specifier_case =
        ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_EXTENSION_FILTER;
    f->extension_filter = xf;
    return f;
}

/* Only what no filter chain logs: connections that matched no chain (NR). */
static LogFilter *tel_nr_filter(gen_ctx *c)
{
    Envoy__Config__Accesslog__V3__ResponseFlagFilter *rf =
        GA_MSG(c->a, Envoy__Config__Accesslog__V3__ResponseFlagFilter,
               envoy__config__accesslog__v3__response_flag_filter__init);
    GA_PUSH(c->a, rf->flags, rf->n_flags, ga_strdup(c->a, "NR"));
    LogFilter *f = GA_MSG(c->a, LogFilter, envoy__config__accesslog__v3__access_log_filter__init);
    f->filter_specifier_case =
        ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_RESPONSE_FLAG_FILTER;
    f->response_flag_filter = rf;
    return f;
}

/* istiod's buildAccessLogFilter: nothing, the one filter, or both under an and_filter. */
static LogFilter *tel_and(gen_ctx *c, LogFilter *a, LogFilter *b)
{
    if (!a || !b)
        return a ? a : b;
    Envoy__Config__Accesslog__V3__AndFilter *and =
        GA_MSG(c->a, Envoy__Config__Accesslog__V3__AndFilter,
               envoy__config__accesslog__v3__and_filter__init);
    GA_PUSH(c->a, and->filters, and->n_filters, a);
    GA_PUSH(c->a, and->filters, and->n_filters, b);
    LogFilter *f = GA_MSG(c->a, LogFilter, envoy__config__accesslog__v3__access_log_filter__init);
    f->filter_specifier_case =
        ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_AND_FILTER;
    f->and_filter = and;
    return f;
}

typedef struct tel_log_cfg {
    const xds_tel_provider *p;
    const tel_log_spec *spec;
} tel_log_cfg;

static int tel_cmp_cfg(const void *a, const void *b)
{
    return strcmp(((const tel_log_cfg *)a)->p->name, ((const tel_log_cfg *)b)->p->name);
}

/* istiod's AccessLogging and buildAccessLogFromTelemetry for one class: the logs of the
 * file providers in force (by provider name), without the disabled ones. No Telemetry
 * access logging and no default provider, or no provider we build: mesh config's. */
static tel_class_out *tel_logs(gen_ctx *c, gen_listener_class cls)
{
    gen_tel *t = tel_get(c);
    tel_class_out *co = &t->cls[cls];
    if (co->logs_done)
        return co;
    co->logs_done = true;
    tel_log_spec *specs = NULL;
    size_t nspecs = 0;
    tel_merge_logs(c, t, cls, &specs, &nspecs);
    tel_log_cfg *cfgs = NULL;
    size_t ncfgs = 0;
    for (size_t i = 0; i < nspecs; i++) {
        const xds_tel_provider *p = gen_tel_provider(c, specs[i].provider);
        if (!p || p->kind != XDS_TEL_PROVIDER_FILE_LOG)
            continue; /* unknown, or a kind without access logs we build */
        tel_log_cfg cf = {.p = p, .spec = &specs[i]};
        GA_PUSH(c->a, cfgs, ncfgs, cf);
    }
    if (!ncfgs)
        return co;
    co->api_logs = true;
    qsort(cfgs, ncfgs, sizeof *cfgs, tel_cmp_cfg);
    for (size_t i = 0; i < ncfgs; i++) {
        if (cfgs[i].spec->disabled)
            continue;
        AccessLog *base = tel_provider_log(c, cfgs[i].p);
        LogFilter *cel = cfgs[i].spec->filter ? tel_cel_filter(c, cfgs[i].spec->filter) : NULL;
        AccessLog *al = GA_MSG(c->a, AccessLog, envoy__config__accesslog__v3__access_log__init);
        *al = *base;
        al->filter = cel;
        GA_PUSH(c->a, co->logs, co->nlogs, al);
        AccessLog *ll = GA_MSG(c->a, AccessLog, envoy__config__accesslog__v3__access_log__init);
        *ll = *base;
        ll->filter = tel_and(c, tel_nr_filter(c), cel);
        GA_PUSH(c->a, co->listener_logs, co->nlistener_logs, ll);
    }
    return co;
}

/* The mesh config file access log (accessLogFile), built once per call and shared by every
 * HCM and tcp_proxy of the resource; NULL without accessLogFile. */
static AccessLog *tel_legacy_log(gen_ctx *c)
{
    if (c->grpc || !c->telemetry->access_log_file)
        return NULL;
    gen_tel *t = tel_get(c);
    if (!t->legacy)
        t->legacy = tel_file_log(c, c->telemetry->access_log_file,
                                 c->telemetry->access_log_encoding == XDS_ACCESS_LOG_JSON,
                                 c->telemetry->access_log_format);
    return t->legacy;
}

void gen_access_log_add(gen_ctx *c, AccessLog ***logs, size_t *n)
{
    if (c->grpc)
        return;
    tel_class_out *co = tel_logs(c, c->tel_class);
    if (co->api_logs) {
        for (size_t i = 0; i < co->nlogs; i++)
            GA_PUSH(c->a, *logs, *n, co->logs[i]);
        return;
    }
    AccessLog *al = tel_legacy_log(c);
    if (al)
        GA_PUSH(c->a, *logs, *n, al);
}

void gen_listener_access_log(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l)
{
    if (c->grpc || c->telemetry->no_listener_access_log)
        return;
    tel_class_out *co = tel_logs(c, c->tel_class);
    if (co->api_logs) {
        for (size_t i = 0; i < co->nlistener_logs; i++)
            GA_PUSH(c->a, l->access_log, l->n_access_log, co->listener_logs[i]);
        return;
    }
    AccessLog *al = tel_legacy_log(c);
    if (!al)
        return;
    gen_tel *t = tel_get(c);
    if (!t->legacy_listener) {
        t->legacy_listener =
            GA_MSG(c->a, AccessLog, envoy__config__accesslog__v3__access_log__init);
        *t->legacy_listener = *al;
        t->legacy_listener->filter = tel_nr_filter(c);
    }
    GA_PUSH(c->a, l->access_log, l->n_access_log, t->legacy_listener);
}

/* ---- mesh config settings ------------------------------------------------------------- */

static void tel_strlist_copy(xds_strlist *d, const xds_strlist *s)
{
    d->n = s->n;
    d->v = s->n ? xcalloc(s->n, sizeof *d->v) : NULL;
    for (size_t i = 0; i < s->n; i++)
        d->v[i] = xstrdup(s->v[i] ? s->v[i] : "");
}

static char *tel_strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void xds_mesh_telemetry_copy(xds_mesh_telemetry *d, const xds_mesh_telemetry *m)
{
    *d = *m;
    d->access_log_file =
        m->access_log_file && m->access_log_file[0] ? xstrdup(m->access_log_file) : NULL;
    d->access_log_format = tel_strdup_or_null(m->access_log_format);
    tel_strlist_copy(&d->default_metrics, &m->default_metrics);
    tel_strlist_copy(&d->default_access_logging, &m->default_access_logging);
    d->providers = m->nproviders ? xcalloc(m->nproviders, sizeof *d->providers) : NULL;
    for (size_t i = 0; i < m->nproviders; i++) {
        const xds_tel_provider *s = &m->providers[i];
        d->providers[i] = (xds_tel_provider){.name = xstrdup(s->name ? s->name : ""),
                                             .kind = s->kind,
                                             .path = tel_strdup_or_null(s->path),
                                             .format = s->format,
                                             .text = tel_strdup_or_null(s->text),
                                             .labels = tel_strdup_or_null(s->labels),
                                             .service = tel_strdup_or_null(s->service),
                                             .port = s->port,
                                             .max_tag_length = s->max_tag_length,
                                             .enable_64bit_trace_id = s->enable_64bit_trace_id,
                                             .trace_path = tel_strdup_or_null(s->trace_path),
                                             .otel_http = s->otel_http,
                                             .timeout_ns = s->timeout_ns,
                                             .nheaders = s->nheaders,
                                             .has_headers = s->has_headers};
        xds_tel_provider *q = &d->providers[i];
        q->headers = s->nheaders ? xcalloc(s->nheaders, sizeof *q->headers) : NULL;
        for (size_t k = 0; k < s->nheaders; k++) {
            q->headers[k].name = xstrdup(s->headers[k].name ? s->headers[k].name : "");
            q->headers[k].value = xstrdup(s->headers[k].value ? s->headers[k].value : "");
        }
    }
    tel_strlist_copy(&d->default_tracing, &m->default_tracing);
    d->trace_tags = m->ntrace_tags ? xcalloc(m->ntrace_tags, sizeof *d->trace_tags) : NULL;
    for (size_t i = 0; i < m->ntrace_tags; i++) {
        const mesh_trace_tag *t = &m->trace_tags[i];
        d->trace_tags[i] = (mesh_trace_tag){.tag = xstrdup(t->tag ? t->tag : ""),
                                            .kind = t->kind,
                                            .value = tel_strdup_or_null(t->value),
                                            .default_value = tel_strdup_or_null(t->default_value)};
    }
}

void xds_mesh_telemetry_clear(xds_mesh_telemetry *m)
{
    free(m->access_log_file);
    free(m->access_log_format);
    util_strv_free(m->default_metrics.v, m->default_metrics.n);
    util_strv_free(m->default_access_logging.v, m->default_access_logging.n);
    for (size_t i = 0; i < m->nproviders; i++) {
        free(m->providers[i].name);
        free(m->providers[i].path);
        free(m->providers[i].text);
        free(m->providers[i].labels);
        free(m->providers[i].service);
        free(m->providers[i].trace_path);
        for (size_t k = 0; k < m->providers[i].nheaders; k++) {
            free(m->providers[i].headers[k].name);
            free(m->providers[i].headers[k].value);
        }
        free(m->providers[i].headers);
    }
    free(m->providers);
    util_strv_free(m->default_tracing.v, m->default_tracing.n);
    mesh_trace_tags_free(m->trace_tags, m->ntrace_tags);
    memset(m, 0, sizeof *m);
}
