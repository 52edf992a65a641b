/* tracing: the HCM `tracing` block and request ID extension as istiod 1.24 writes them
 * (pilot/pkg/networking/core/tracing.go, the tracing half of pilot/pkg/model/telemetry.go).
 *
 * Three ways in, in istiod's precedence: the Telemetry API's tracing entries (root
 * namespace, namespace, workload, merged per mode: the last level naming a provider wins,
 * and so do disableSpanReporting, customTags, randomSamplingPercentage and
 * useRequestIdForTraceSampling written at a later level) on top of mesh config
 * defaultProviders.tracing; without either, mesh config enableTracing (istiod's default
 * true) gives every HCM a provider-less block (the Envoy bootstrap's tracer, which the agent
 * writes from defaultConfig.tracing, does the reporting). Every block carries istiod's span
 * tags: the proxy's canonical revision and service, mesh and cluster ID and namespace, the
 * four dry-run authorization tags, then the custom tags (Telemetry's, else
 * defaultConfig.tracing's), sorted by name. Providers built: zipkin and opentelemetry
 * (grpc or http); another kind (or a provider whose service is not in the registry, or
 * whose port the service does not have, so that no CDS cluster would back it) means no
 * tracing on the HCM, logged, as istiod's failed configureFromProviderConfig; so does a
 * collector the proxy's exportTo or Sidecar scope leaves out of its CDS (istiod would name
 * the missing cluster and Envoy refuse the listener).
 *
 * The per-proxy values reach this file only through gen_view.trace, which gen.c puts in the
 * LDS class (and each listener's cache key), so pods of one deployment share bytes.
 *
 * Runs on the generating thread; arena only, no locks. */
#include <stdlib.h>
#include <string.h>

#include "envoy/config/trace/v3/opentelemetry.pb-c.h"
#include "envoy/config/trace/v3/zipkin.pb-c.h"
#include "envoy/extensions/request_id/uuid/v3/uuid.pb-c.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager HCM;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing
    HcmTracing;
typedef Envoy__Type__Tracing__V3__CustomTag CustomTag;

#define TRACE_ZIPKIN "envoy.tracers.zipkin"
#define TRACE_OTEL "envoy.tracers.opentelemetry"
#define TRACE_ZIPKIN_PATH "/api/v2/spans" /* istiod's default (Envoy dropped v1) */

/* istiod's TracingSpec, for one side (client: outbound and gateways; server: inbound). */
typedef struct trace_spec {
    const xds_tel_provider *provider;
    bool disabled;
    double sampling; /* randomSamplingPercentage, -1 unset */
    const mesh_trace_tag *tags;
    size_t ntags;
    bool use_request_id; /* useRequestIdForTraceSampling */
    bool resolved;       /* http below computed (once per call: one log line per failure) */
    Envoy__Config__Trace__V3__Tracing__Http *http; /* NULL: the provider cannot be built */
} trace_spec;

struct gen_trace {
    bool from_api; /* Telemetry tracing or defaultProviders.tracing (istiod's non-nil config) */
    trace_spec client, server;
};

/* istiod's Telemetries.Tracing: nil (from_api false) when no Telemetry has tracing and
 * there is no default provider. */
static struct gen_trace *trace_get(gen_ctx *c)
{
    if (c->trace)
        return c->trace;
    struct gen_trace *t = ga_alloc(c->a, sizeof *t);
    c->trace = t;
    const xds_mesh_telemetry *m = c->telemetry;
    size_t ntel = 0, nentries = 0;
    const mesh_telemetry *const *tel = gen_telemetries(c, &ntel);
    for (size_t i = 0; i < ntel; i++)
        nentries += tel[i]->ntracing;
    if (!nentries && !m->default_tracing.n)
        return t;
    t->from_api = true;
    trace_spec *both[2] = {&t->client, &t->server};
    for (size_t k = 0; k < 2; k++)
        *both[k] = (trace_spec){.sampling = -1, .use_request_id = true};
    if (m->default_tracing.n) /* istiod uses the first only */
        t->client.provider = t->server.provider = gen_tel_provider(c, m->default_tracing.v[0]);
    for (size_t i = 0; i < ntel; i++) {
        for (size_t j = 0; j < tel[i]->ntracing; j++) {
            const mesh_tel_tracing *e = &tel[i]->tracing[j];
            trace_spec *specs[2];
            size_t ns = 0;
            if (e->mode != MESH_TEL_SERVER)
                specs[ns++] = &t->client;
            if (e->mode != MESH_TEL_CLIENT)
                specs[ns++] = &t->server;
            /* one provider per mode: the first named */
            const xds_tel_provider *p =
                e->providers.n ? gen_tel_provider(c, e->providers.v[0]) : NULL;
            for (size_t k = 0; k < ns; k++) {
                trace_spec *s = specs[k];
                if (e->providers.n)
                    s->provider = p;
                if (e->disable_span_reporting != MESH_TRI_UNSET)
                    s->disabled = e->disable_span_reporting == MESH_TRI_TRUE;
                if (e->has_custom_tags) {
                    s->tags = e->custom_tags;
                    s->ntags = e->ncustom_tags;
                }
                if (e->random_sampling_percentage >= 0)
                    s->sampling = e->random_sampling_percentage;
                if (e->use_request_id_for_trace_sampling != MESH_TRI_UNSET)
                    s->use_request_id = e->use_request_id_for_trace_sampling == MESH_TRI_TRUE;
            }
        }
    }
    for (size_t k = 0; k < 2; k++)
        if (!both[k]->provider)
            both[k]->disabled = true;
    return t;
}

/* istiod's proxyConfigSamplingValue: defaultConfig.tracing.sampling when set (above 100:
 * 1), else PILOT_TRACE_SAMPLING. */
static double trace_proxy_sampling(gen_ctx *c)
{
    const xds_mesh_telemetry *m = c->telemetry;
    if (m->trace_sampling != 0)
        return m->trace_sampling > 100 ? 1.0 : m->trace_sampling;
    return m->has_trace_sampling_default ? m->trace_sampling_default : 1.0;
}

static HcmTracing *trace_block(gen_ctx *c)
{
    return GA_MSG(
        c->a, HcmTracing,
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__tracing__init);
}

static Envoy__Type__V3__Percent *trace_percent(gen_ctx *c, double v)
{
    Envoy__Type__V3__Percent *p =
        GA_MSG(c->a, Envoy__Type__V3__Percent, envoy__type__v3__percent__init);
    p->value = v;
    return p;
}

static CustomTag *trace_literal(gen_ctx *c, const char *tag, const char *value)
{
    CustomTag *t = GA_MSG(c->a, CustomTag, envoy__type__tracing__v3__custom_tag__init);
    t->tag = ga_strdup(c->a, tag);
    t->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_LITERAL;
    t->literal = GA_MSG(c->a, Envoy__Type__Tracing__V3__CustomTag__Literal,
                        envoy__type__tracing__v3__custom_tag__literal__init);
    t->literal->value = ga_strdup(c->a, value);
    return t;
}

/* A tag read from the RBAC filter's request metadata (the dry-run policy results). */
static CustomTag *trace_dry_run(gen_ctx *c, const char *tag, const char *key)
{
    CustomTag *t = GA_MSG(c->a, CustomTag, envoy__type__tracing__v3__custom_tag__init);
    t->tag = ga_strdup(c->a, tag);
    t->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_METADATA;
    Envoy__Type__Tracing__V3__CustomTag__Metadata *md =
        GA_MSG(c->a, Envoy__Type__Tracing__V3__CustomTag__Metadata,
               envoy__type__tracing__v3__custom_tag__metadata__init);
    md->kind = GA_MSG(c->a, Envoy__Type__Metadata__V3__MetadataKind,
                      envoy__type__metadata__v3__metadata_kind__init);
    md->kind->kind_case = ENVOY__TYPE__METADATA__V3__METADATA_KIND__KIND_REQUEST;
    md->kind->request = GA_MSG(c->a, Envoy__Type__Metadata__V3__MetadataKind__Request,
                               envoy__type__metadata__v3__metadata_kind__request__init);
    md->metadata_key = GA_MSG(c->a, Envoy__Type__Metadata__V3__MetadataKey,
                              envoy__type__metadata__v3__metadata_key__init);
    md->metadata_key->key = ga_strdup(c->a, "envoy.filters.http.rbac");
    Envoy__Type__Metadata__V3__MetadataKey__PathSegment *seg =
        GA_MSG(c->a, Envoy__Type__Metadata__V3__MetadataKey__PathSegment,
               envoy__type__metadata__v3__metadata_key__path_segment__init);
    seg->segment_case = ENVOY__TYPE__METADATA__V3__METADATA_KEY__PATH_SEGMENT__SEGMENT_KEY;
    seg->key = ga_strdup(c->a, key);
    GA_PUSH(c->a, md->metadata_key->path, md->metadata_key->n_path, seg);
    t->metadata = md;
    return t;
}

static CustomTag *trace_custom(gen_ctx *c, const mesh_trace_tag *g)
{
    if (g->kind == MESH_TRACE_TAG_LITERAL)
        return trace_literal(c, g->tag, g->value ? g->value : "");
    if (g->kind != MESH_TRACE_TAG_ENVIRONMENT && g->kind != MESH_TRACE_TAG_HEADER)
        return NULL;
    CustomTag *t = GA_MSG(c->a, CustomTag, envoy__type__tracing__v3__custom_tag__init);
    t->tag = ga_strdup(c->a, g->tag);
    const char *dv = g->default_value ? g->default_value : "";
    if (g->kind == MESH_TRACE_TAG_ENVIRONMENT) {
        t->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_ENVIRONMENT;
        t->environment = GA_MSG(c->a, Envoy__Type__Tracing__V3__CustomTag__Environment,
                                envoy__type__tracing__v3__custom_tag__environment__init);
        t->environment->name = ga_strdup(c->a, g->value ? g->value : "");
        t->environment->default_value = ga_strdup(c->a, dv);
    } else {
        t->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_REQUEST_HEADER;
        t->request_header = GA_MSG(c->a, Envoy__Type__Tracing__V3__CustomTag__Header,
                                   envoy__type__tracing__v3__custom_tag__header__init);
        t->request_header->name = ga_strdup(c->a, g->value ? g->value : "");
        t->request_header->default_value = ga_strdup(c->a, dv);
    }
    return t;
}

static int trace_cmp_tag(const void *a, const void *b)
{
    return strcmp((*(CustomTag *const *)a)->tag, (*(CustomTag *const *)b)->tag);
}

/* istiod's configureSampling and configureCustomTags. */
static void trace_common(gen_ctx *c, HcmTracing *tr, double sampling, const mesh_trace_tag *tags,
                         size_t ntags)
{
    tr->client_sampling = trace_percent(c, 100);
    tr->random_sampling = trace_percent(c, sampling);
    tr->overall_sampling = trace_percent(c, 100);
    if (!ntags) {
        tags = c->telemetry->trace_tags;
        ntags = c->telemetry->ntrace_tags;
    }
    const char *const *in = c->p->trace;
    const char *ns = c->p->ns && *c->p->ns ? c->p->ns : "default";
    CustomTag **v = ga_alloc(c->a, (9 + ntags) * sizeof *v);
    size_t n = 0;
    v[n++] = trace_literal(c, "istio.canonical_revision", in[GEN_TRACE_REVISION]);
    v[n++] = trace_literal(c, "istio.canonical_service", in[GEN_TRACE_SERVICE]);
    v[n++] = trace_literal(c, "istio.mesh_id", in[GEN_TRACE_MESH_ID]);
    v[n++] = trace_literal(c, "istio.namespace", ns);
    v[n++] = trace_literal(c, "istio.cluster_id", in[GEN_TRACE_CLUSTER_ID]);
    v[n++] = trace_dry_run(c, "istio.authorization.dry_run.allow_policy.name",
                           "istio_dry_run_allow_shadow_effective_policy_id");
    v[n++] = trace_dry_run(c, "istio.authorization.dry_run.allow_policy.result",
                           "istio_dry_run_allow_shadow_engine_result");
    v[n++] = trace_dry_run(c, "istio.authorization.dry_run.deny_policy.name",
                           "istio_dry_run_deny_shadow_effective_policy_id");
    v[n++] = trace_dry_run(c, "istio.authorization.dry_run.deny_policy.result",
                           "istio_dry_run_deny_shadow_engine_result");
    for (size_t i = 0; i < ntags; i++) {
        CustomTag *t = trace_custom(c, &tags[i]);
        if (t)
            v[n++] = t;
    }
    qsort(v, n, sizeof *v, trace_cmp_tag);
    tr->custom_tags = v;
    tr->n_custom_tags = n;
}

/* url.JoinPath(host, path) for the host-only base istiod passes. */
static char *trace_join(gen_ctx *c, const char *host, const char *path)
{
    while (path && *path == '/')
        path++;
    return path && *path ? ga_printf(c->a, "%s/%s", host, path) : ga_strdup(c->a, host);
}

static Envoy__Config__Core__V3__HeaderValue *trace_header(gen_ctx *c, const xds_tel_header *h)
{
    Envoy__Config__Core__V3__HeaderValue *v = GA_MSG(c->a, Envoy__Config__Core__V3__HeaderValue,
                                                     envoy__config__core__v3__header_value__init);
    v->key = ga_strdup(c->a, h->name ? h->name : "");
    v->value = ga_strdup(c->a, h->value ? h->value : "");
    return v;
}

static const ProtobufCMessage *trace_zipkin(gen_ctx *c, const xds_tel_provider *p, const char *host,
                                            const char *cluster)
{
    Envoy__Config__Trace__V3__ZipkinConfig *z =
        GA_MSG(c->a, Envoy__Config__Trace__V3__ZipkinConfig,
               envoy__config__trace__v3__zipkin_config__init);
    z->collector_cluster = ga_strdup(c->a, cluster);
    z->collector_endpoint =
        ga_strdup(c->a, p->trace_path && *p->trace_path ? p->trace_path : TRACE_ZIPKIN_PATH);
    z->collector_endpoint_version =
        ENVOY__CONFIG__TRACE__V3__ZIPKIN_CONFIG__COLLECTOR_ENDPOINT_VERSION__HTTP_JSON;
    z->collector_hostname = ga_strdup(c->a, host);
    z->trace_id_128bit = !p->enable_64bit_trace_id;
    z->shared_span_context = gen_bool(c, false);
    return &z->base;
}

static const ProtobufCMessage *trace_otel(gen_ctx *c, const xds_tel_provider *p, const char *host,
                                          const char *cluster)
{
    Envoy__Config__Trace__V3__OpenTelemetryConfig *o =
        GA_MSG(c->a, Envoy__Config__Trace__V3__OpenTelemetryConfig,
               envoy__config__trace__v3__open_telemetry_config__init);
    o->service_name = ga_strdup(c->a, c->p->trace[GEN_TRACE_NODE_CLUSTER]);
    if (p->otel_http) {
        Envoy__Config__Core__V3__HttpService *hs =
            GA_MSG(c->a, Envoy__Config__Core__V3__HttpService,
                   envoy__config__core__v3__http_service__init);
        hs->http_uri =
            GA_MSG(c->a, Envoy__Config__Core__V3__HttpUri, envoy__config__core__v3__http_uri__init);
        hs->http_uri->uri = trace_join(c, host, p->trace_path);
        hs->http_uri->http_upstream_type_case =
            ENVOY__CONFIG__CORE__V3__HTTP_URI__HTTP_UPSTREAM_TYPE_CLUSTER;
        hs->http_uri->cluster = ga_strdup(c->a, cluster);
        if (p->timeout_ns >= 0)
            hs->http_uri->timeout = gen_duration(c, p->timeout_ns);
        for (size_t i = 0; i < p->nheaders; i++) {
            Envoy__Config__Core__V3__HeaderValueOption *hv =
                GA_MSG(c->a, Envoy__Config__Core__V3__HeaderValueOption,
                       envoy__config__core__v3__header_value_option__init);
            hv->header = trace_header(c, &p->headers[i]);
            hv->append_action =
                ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
            GA_PUSH(c->a, hs->request_headers_to_add, hs->n_request_headers_to_add, hv);
        }
        o->http_service = hs;
        return &o->base;
    }
    Envoy__Config__Core__V3__GrpcService *g = GA_MSG(c->a, Envoy__Config__Core__V3__GrpcService,
                                                     envoy__config__core__v3__grpc_service__init);
    g->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    g->envoy_grpc = GA_MSG(c->a, Envoy__Config__Core__V3__GrpcService__EnvoyGrpc,
                           envoy__config__core__v3__grpc_service__envoy_grpc__init);
    g->envoy_grpc->cluster_name = ga_strdup(c->a, cluster);
    g->envoy_grpc->authority = ga_strdup(c->a, host);
    if (p->timeout_ns >= 0)
        g->timeout = gen_duration(c, p->timeout_ns);
    for (size_t i = 0; i < p->nheaders; i++)
        GA_PUSH(c->a, g->initial_metadata, g->n_initial_metadata, trace_header(c, &p->headers[i]));
    o->grpc_service = g;
    return &o->base;
}

/* istiod's configureFromProviderConfig: the provider of the block, or NULL (logged) when it
 * cannot trace or its collector does not resolve to a cluster. */
static Envoy__Config__Trace__V3__Tracing__Http *trace_http(gen_ctx *c, const xds_tel_provider *p)
{
    if (p->kind != XDS_TEL_PROVIDER_ZIPKIN && p->kind != XDS_TEL_PROVIDER_OTEL) {
        LOG_WARN("ads",
                 "tracing provider \"%s\": not a kind we build for tracing (zipkin, "
                 "opentelemetry); no tracing",
                 p->name);
        return NULL;
    }
    const mesh_service *svc = p->service ? gen_lookup_service(c, p->service) : NULL;
    bool port = false;
    for (size_t i = 0; svc && i < svc->nports && !port; i++)
        port = p->port == (int64_t)svc->ports[i].port;
    if (!svc || !port) {
        LOG_WARN("ads",
                 "tracing provider \"%s\": could not find cluster for service \"%s\" port "
                 "%lld; no tracing",
                 p->name, p->service ? p->service : "", (long long)p->port);
        return NULL;
    }
    /* istiod would name the cluster anyway and Envoy would refuse the listener: the
     * collector must be in the proxy's CDS (exportTo, Sidecar egress) */
    if (!gen_service_visible(c, svc) || !gen_scope_service(c, svc, (uint32_t)p->port)) {
        LOG_WARN("ads",
                 "tracing provider \"%s\": service \"%s\" port %lld is not visible to "
                 "proxies of namespace %s (exportTo or Sidecar egress); no tracing",
                 p->name, svc->hostname, (long long)p->port, c->p->ns ? c->p->ns : "");
        return NULL;
    }
    const char *cluster = gen_cluster_name(c, (uint32_t)p->port, "", svc->hostname);
    Envoy__Config__Trace__V3__Tracing__Http *h =
        GA_MSG(c->a, Envoy__Config__Trace__V3__Tracing__Http,
               envoy__config__trace__v3__tracing__http__init);
    bool zipkin = p->kind == XDS_TEL_PROVIDER_ZIPKIN;
    h->name = ga_strdup(c->a, zipkin ? TRACE_ZIPKIN : TRACE_OTEL);
    h->config_type_case = ENVOY__CONFIG__TRACE__V3__TRACING__HTTP__CONFIG_TYPE_TYPED_CONFIG;
    h->typed_config = gen_any(c, zipkin ? trace_zipkin(c, p, svc->hostname, cluster)
                                        : trace_otel(c, p, svc->hostname, cluster));
    return h;
}

/* requestidextension.BuildUUIDRequestIDExtension. */
static void trace_request_id(gen_ctx *c, HCM *h, bool use_for_sampling)
{
    Envoy__Extensions__RequestId__Uuid__V3__UuidRequestIdConfig *u =
        GA_MSG(c->a, Envoy__Extensions__RequestId__Uuid__V3__UuidRequestIdConfig,
               envoy__extensions__request_id__uuid__v3__uuid_request_id_config__init);
    u->use_request_id_for_trace_sampling = gen_bool(c, use_for_sampling);
    h->request_id_extension = GA_MSG(
        c->a, Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__RequestIDExtension,
        envoy__extensions__filters__network__http_connection_manager__v3__request_idextension__init);
    h->request_id_extension->typed_config = gen_any(c, &u->base);
}

void gen_hcm_tracing(gen_ctx *c, HCM *h, gen_listener_class cls)
{
    const xds_mesh_telemetry *m = c->telemetry;
    bool use_request_id = true;
    if (c->grpc)
        return;
    if (!c->p->trace) /* gen.c leaves the inputs out only when tracing cannot be on */
        goto out;
    struct gen_trace *t = trace_get(c);
    if (!t->from_api) {
        if (m->tracing_off)
            goto out;
        h->tracing = trace_block(c);
        trace_common(c, h->tracing, trace_proxy_sampling(c), NULL, 0);
        if (m->max_path_tag_length)
            h->tracing->max_path_tag_length = gen_u32(c, m->max_path_tag_length);
        goto out;
    }
    trace_spec *s = cls == GEN_CLASS_SIDECAR_INBOUND ? &t->server : &t->client;
    if (s->disabled)
        goto out;
    if (!s->resolved) {
        s->http = trace_http(c, s->provider);
        s->resolved = true;
    }
    if (!s->http)
        goto out;
    HcmTracing *tr = trace_block(c);
    tr->provider = s->http;
    if (s->provider->max_tag_length)
        tr->max_path_tag_length = gen_u32(c, s->provider->max_tag_length);
    h->tracing = tr;
    trace_common(c, tr, s->sampling >= 0 ? s->sampling : trace_proxy_sampling(c), s->tags,
                 s->ntags);
    if (!tr->max_path_tag_length && m->max_path_tag_length)
        tr->max_path_tag_length = gen_u32(c, m->max_path_tag_length);
    use_request_id = s->use_request_id;
out:
    trace_request_id(c, h, use_request_id);
}
