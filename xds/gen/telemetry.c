/* telemetry: what istiod's default install (Istio 1.24, no Telemetry resources) puts in
 * Envoy listeners for telemetry: the istio.metadata_exchange and istio.stats filters, HTTP
 * and network, which give Istio's standard metrics their source and destination labels
 * (what Kiali draws its graph from), and the mesh config access logs (accessLogFile,
 * accessLogEncoding, accessLogFormat). The filters of the Telemetry API and of
 * extensionProviders other than the built-in prometheus are not built.
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
#include <string.h>

#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/formatter/cel/v3/cel.pb-c.h"
#include "envoy/extensions/formatter/metadata/v3/metadata.pb-c.h"
#include "envoy/extensions/formatter/req_without_query/v3/req_without_query.pb-c.h"
#include "udpa/type/v1/typed_struct.pb-c.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Config__Accesslog__V3__AccessLog AccessLog;
typedef Envoy__Config__Core__V3__SubstitutionFormatString FormatString;

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
/* The server side and gateways name the destination service from the cluster only, never
 * from the Host header (a client can send any Host); the client side may fall back to it. */
static const char tel_stats_host_fallback_off[] = "{\"disable_host_header_fallback\":true}";
static const char tel_stats_default[] = "{}";

/* A TypedStruct carrying type_url and the JSON object json (a constant above). */
static const ProtobufCMessage *tel_typed_struct(gen_ctx *c, const char *type_url, const char *json)
{
    Udpa__Type__V1__TypedStruct *ts =
        GA_MSG(c->a, Udpa__Type__V1__TypedStruct, udpa__type__v1__typed_struct__init);
    ts->type_url = ga_strdup(c->a, type_url);
    cJSON *j = cJSON_Parse(json);
    ts->value = gen_struct_from_json(c, j);
    cJSON_Delete(j);
    if (!ts->value) /* cJSON out of memory: an empty config is still a valid one */
        ts->value = gen_struct_str(c, NULL, NULL);
    return &ts->base;
}

static const char *tel_stats_json(gen_listener_class cls)
{
    return cls == GEN_CLASS_SIDECAR_OUTBOUND ? tel_stats_default : tel_stats_host_fallback_off;
}

void gen_hcm_telemetry(gen_ctx *c, HCM *h, gen_listener_class cls)
{
    gen_hfilter *mx = gen_http_filter_new(
        c, TEL_MX_NAME,
        tel_typed_struct(c, TEL_PEER_METADATA_TYPE,
                         cls == GEN_CLASS_SIDECAR_INBOUND ? tel_mx_inbound : tel_mx_outbound));
    gen_hfilter *stats =
        c->telemetry->no_metrics
            ? NULL
            : gen_http_filter_new(c, TEL_STATS_NAME,
                                  tel_typed_struct(c, TEL_STATS_TYPE, tel_stats_json(cls)));
    /* [mx] + filters up to the router + [stats] + router: the router stays last */
    size_t n = h->n_http_filters;
    gen_hfilter **all = ga_alloc(c->a, (n + 2) * sizeof *all);
    size_t k = 0;
    all[k++] = mx;
    for (size_t i = 0; i + 1 < n; i++)
        all[k++] = h->http_filters[i];
    if (stats)
        all[k++] = stats;
    if (n)
        all[k++] = h->http_filters[n - 1];
    h->http_filters = all;
    h->n_http_filters = k;
    gen_access_log_add(c, &h->access_log, &h->n_access_log);
}

void gen_tcp_mx_filter(gen_ctx *c, Envoy__Config__Listener__V3__Filter ***f, size_t *n)
{
    GA_PUSH(c->a, *f, *n,
            gen_filter(c, TEL_MX_NAME, tel_typed_struct(c, TEL_TCP_MX_TYPE, tel_mx_tcp)));
}

void gen_tcp_stats_filter(gen_ctx *c, gen_listener_class cls,
                          Envoy__Config__Listener__V3__Filter ***f, size_t *n)
{
    if (c->telemetry->no_metrics)
        return;
    GA_PUSH(
        c->a, *f, *n,
        gen_filter(c, TEL_STATS_NAME, tel_typed_struct(c, TEL_STATS_TYPE, tel_stats_json(cls))));
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

/* JSON encoding: accessLogFormat when it is a JSON object, else istiod's default (istiod
 * logs a bad one and uses the default; pilot/flags.c warns at start-up). istiod looks for
 * formatter operators in the top-level string values only; so do we. */
static void tel_json_log_format(gen_ctx *c, FormatString *sf)
{
    const char *fmt = c->telemetry->access_log_format;
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

/* TEXT encoding: accessLogFormat with a newline added when it lacks one (Istio's rule),
 * else istiod's default. */
static void tel_text_log_format(gen_ctx *c, FormatString *sf)
{
    const char *fmt = c->telemetry->access_log_format;
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

/* envoy.access_loggers.file for accessLogFile, built once per call and shared by every
 * HCM and tcp_proxy of the resource; NULL without accessLogFile. */
static AccessLog *tel_file_access_log(gen_ctx *c)
{
    if (c->grpc || !c->telemetry->access_log_file)
        return NULL;
    if (c->access_log)
        return c->access_log;
    Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *fl =
        GA_MSG(c->a, Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog,
               envoy__extensions__access_loggers__file__v3__file_access_log__init);
    fl->path = ga_strdup(c->a, c->telemetry->access_log_file);
    FormatString *sf =
        GA_MSG(c->a, FormatString, envoy__config__core__v3__substitution_format_string__init);
    if (c->telemetry->access_log_encoding == XDS_ACCESS_LOG_JSON)
        tel_json_log_format(c, sf);
    else
        tel_text_log_format(c, sf);
    fl->access_log_format_case =
        ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT;
    fl->log_format = sf;
    AccessLog *al = GA_MSG(c->a, AccessLog, envoy__config__accesslog__v3__access_log__init);
    al->name = ga_strdup(c->a, "envoy.access_loggers.file");
    al->config_type_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG;
    al->typed_config = gen_any(c, &fl->base);
    c->access_log = al;
    return al;
}

void gen_access_log_add(gen_ctx *c, AccessLog ***logs, size_t *n)
{
    AccessLog *al = tel_file_access_log(c);
    if (al)
        GA_PUSH(c->a, *logs, *n, al);
}

void gen_listener_access_log(gen_ctx *c, Envoy__Config__Listener__V3__Listener *l)
{
    AccessLog *al = c->telemetry->no_listener_access_log ? NULL : tel_file_access_log(c);
    if (!al)
        return;
    /* only what no filter chain logs: connections that matched no chain (NR) */
    Envoy__Config__Accesslog__V3__ResponseFlagFilter *rf =
        GA_MSG(c->a, Envoy__Config__Accesslog__V3__ResponseFlagFilter,
               envoy__config__accesslog__v3__response_flag_filter__init);
    GA_PUSH(c->a, rf->flags, rf->n_flags, ga_strdup(c->a, "NR"));
    Envoy__Config__Accesslog__V3__AccessLogFilter *f =
        GA_MSG(c->a, Envoy__Config__Accesslog__V3__AccessLogFilter,
               envoy__config__accesslog__v3__access_log_filter__init);
    f->filter_specifier_case =
        ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_RESPONSE_FLAG_FILTER;
    f->response_flag_filter = rf;
    AccessLog *lal = GA_MSG(c->a, AccessLog, envoy__config__accesslog__v3__access_log__init);
    *lal = *al;
    lal->filter = f;
    GA_PUSH(c->a, l->access_log, l->n_access_log, lal);
}
