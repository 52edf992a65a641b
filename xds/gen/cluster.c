/* cluster: outbound clusters and the DestinationRule policies applied to them (load
 * balancing, connection pools, outlier detection, TLS origination and Istio mTLS), and the
 * TLS contexts and SDS references that carry certificates. */
/* Runs on whichever thread calls xds_gen_generate; touches only the call's arena and the
 * (immutable) snapshot, so it takes no locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

/* ---- clusters ------------------------------------------------------------------------------ */

typedef Envoy__Config__Cluster__V3__Cluster Cluster;

/* The policy that applies to svc:port[/subset]: the subset's, else the port-level one, else
 * the rule's (a simplification of Istio's field-by-field merge). */
const mesh_traffic_policy *gen_policy(const mesh_destination_rule *dr, uint32_t port,
                                      const char *subset)
{
    if (!dr)
        return NULL;
    const mesh_subset *ss = gen_dr_subset(dr, subset);
    if (ss && ss->policy)
        return ss->policy;
    for (size_t i = 0; i < dr->nport_policies; i++)
        if (dr->port_policies[i].port == port)
            return &dr->port_policies[i].policy;
    return dr->policy;
}

/* Sorted, unique SPIFFE identities of the endpoints serving svc:port (Istio's
 * ServiceAccounts[host][port]): spiffe://<trust domain>/ns/<endpoint ns>/sa/<sa>. */
static void gen_service_sans(gen_ctx *c, const mesh_service *svc, uint32_t port, char ***sans,
                             size_t *nsans)
{
    const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, svc->hostname);
    const char *td = c->trust_domain ? c->trust_domain : "cluster.local";
    for (size_t i = 0; sh && i < sh->neps; i++) {
        const mesh_endpoint *ep = &sh->eps[i];
        if (ep->service_port != port || !ep->service_account || !ep->service_account[0])
            continue;
        char *id = ga_printf(c->a, "spiffe://%s/ns/%s/sa/%s", td, sh->ns ? sh->ns : svc->meta.ns,
                             ep->service_account);
        size_t k = 0;
        while (k < *nsans && strcmp((*sans)[k], id) < 0)
            k++;
        if (k < *nsans && strcmp((*sans)[k], id) == 0)
            continue;
        GA_PUSH(c->a, *sans, *nsans, id); /* grow by one, then shift into place */
        memmove(&(*sans)[k + 1], &(*sans)[k], (*nsans - 1 - k) * sizeof **sans);
        (*sans)[k] = id;
    }
}

typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
    CombinedValidation;

/* A combined validation context whose default part accepts exactly the identities in
 * sans (exact SAN matches); the caller adds where the root comes from. */
static CombinedValidation *gen_san_validation(gen_ctx *c, char *const *sans, size_t nsans)
{
    CombinedValidation *cv = GA_MSG(
        c->a, CombinedValidation,
        envoy__extensions__transport_sockets__tls__v3__common_tls_context__combined_certificate_validation_context__init);
    cv->default_validation_context =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
               envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init);
    for (size_t i = 0; i < nsans; i++) {
        Envoy__Type__Matcher__V3__StringMatcher *m =
            GA_MSG(c->a, Envoy__Type__Matcher__V3__StringMatcher,
                   envoy__type__matcher__v3__string_matcher__init);
        m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        m->exact = ga_strdup(c->a, sans[i]);
        GA_PUSH(c->a, cv->default_validation_context->match_subject_alt_names,
                cv->default_validation_context->n_match_subject_alt_names, m);
    }
    return cv;
}

Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
gen_grpc_common_tls(gen_ctx *c, char *const *sans, size_t nsans)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
               envoy__extensions__transport_sockets__tls__v3__common_tls_context__init);
    ct->tls_certificate_provider_instance = GA_MSG(
        c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateProviderPluginInstance,
        envoy__extensions__transport_sockets__tls__v3__certificate_provider_plugin_instance__init);
    ct->tls_certificate_provider_instance->instance_name = ga_strdup(c->a, "default");
    ct->tls_certificate_provider_instance->certificate_name = ga_strdup(c->a, "default");
    /* The root from the same instance (certificate "ROOTCA") and the peer's identities
     * in one validation context: the A29 fields every current gRPC reads (C core since
     * 1.4x, grpc-go, grpc-js), and valid by Envoy's rules. istiod's grpcgen also sends the
     * deprecated CertificateProviderInstance fields inside a combined context, whose
     * required SDS part it leaves empty (Envoy's validation refuses that). */
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        gen_san_validation(c, sans, nsans)->default_validation_context;
    vc->ca_certificate_provider_instance = GA_MSG(
        c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateProviderPluginInstance,
        envoy__extensions__transport_sockets__tls__v3__certificate_provider_plugin_instance__init);
    vc->ca_certificate_provider_instance->instance_name = ga_strdup(c->a, "default");
    vc->ca_certificate_provider_instance->certificate_name = ga_strdup(c->a, "ROOTCA");
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
    ct->validation_context = vc;
    return ct;
}

static Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *
gen_sds_secret(gen_ctx *c, const char *name)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sc =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig,
               envoy__extensions__transport_sockets__tls__v3__sds_secret_config__init);
    sc->name = ga_strdup(c->a, name);
    /* Gateway credentials (kubernetes://) are ours to serve over ADS, as istiod does;
     * the workload's own certificate and root come from the agent. */
    sc->sds_config =
        util_has_prefix(name, "kubernetes://") ? gen_ads_source(c) : gen_agent_sds_source(c);
    return sc;
}

void gen_sds_certificate(gen_ctx *c,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                         const char *cred)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *cert =
        gen_sds_secret(c, cred ? ga_printf(c->a, "kubernetes://%s", cred) : "default");
    GA_PUSH(c->a, ct->tls_certificate_sds_secret_configs, ct->n_tls_certificate_sds_secret_configs,
            cert);
}

void gen_sds_validation(gen_ctx *c,
                        Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                        const char *cred)
{
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    ct->validation_context_sds_secret_config =
        gen_sds_secret(c, cred ? ga_printf(c->a, "kubernetes://%s-cacert", cred) : "ROOTCA");
}

void gen_file_server_tls(gen_ctx *c,
                         Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                         const char *cert, const char *key, const char *ca, const char *crl,
                         bool validate)
{
    const char *name =
        cert && *cert && key && *key ? ga_printf(c->a, "file-cert:%s~%s", cert, key) : "default";
    GA_PUSH(c->a, ct->tls_certificate_sds_secret_configs, ct->n_tls_certificate_sds_secret_configs,
            gen_sds_secret(c, name));
    if (!validate)
        return;
    CombinedValidation *cv = gen_san_validation(c, NULL, 0);
    if (crl && *crl) {
        Envoy__Config__Core__V3__DataSource *ds = GA_MSG(
            c->a, Envoy__Config__Core__V3__DataSource, envoy__config__core__v3__data_source__init);
        ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
        ds->filename = ga_strdup(c->a, crl);
        cv->default_validation_context->crl = ds;
    }
    cv->validation_context_sds_secret_config =
        gen_sds_secret(c, ca && *ca ? ga_printf(c->a, "file-root:%s", ca) : "ROOTCA");
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    ct->combined_validation_context = cv;
}

void gen_istio_mtls_context(gen_ctx *c,
                            Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                            char *const *sans, size_t nsans)
{
    gen_sds_certificate(c, ct, NULL);
    CombinedValidation *cv = gen_san_validation(c, sans, nsans);
    cv->validation_context_sds_secret_config = gen_sds_secret(c, "ROOTCA");
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    ct->combined_validation_context = cv;
}

Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *
gen_downstream_tls_new(gen_ctx *c,
                       Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext **ct)
{
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext,
               envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__init);
    *ct = GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
                 envoy__extensions__transport_sockets__tls__v3__common_tls_context__init);
    d->common_tls_context = *ct;
    return d;
}

Envoy__Config__Core__V3__TransportSocket *gen_tls_transport_socket(gen_ctx *c,
                                                                   const ProtobufCMessage *ctx)
{
    Envoy__Config__Core__V3__TransportSocket *ts =
        GA_MSG(c->a, Envoy__Config__Core__V3__TransportSocket,
               envoy__config__core__v3__transport_socket__init);
    /* gRPC requires exactly this name */
    ts->name = ga_strdup(c->a, "envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = gen_any(c, ctx);
    return ts;
}

/* DestinationRule SIMPLE / MUTUAL (TLS origination), as istiod's constructUpstreamTLS:
 * - credentialName: the Secret over ADS SDS ("kubernetes://<cred>" for MUTUAL's client
 *   certificate, "kubernetes://<cred>-cacert" to validate the server);
 * - else files in the proxy, served by the agent's SDS: MUTUAL's client certificate as
 *   "file-cert:<cert>~<key>", the server validated against "file-root:<caCertificates>",
 *   or the proxy's system roots ("file-root:system", istiod's VERIFY_CERTIFICATE_AT_CLIENT
 *   default; never our mesh root);
 * - insecureSkipVerify: no validation at all; subjectAltNames as exact SAN matches. */
static void gen_origination_tls(gen_ctx *c,
                                Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct,
                                const mesh_traffic_policy *tp)
{
    const char *cred =
        tp->tls.credential_name && tp->tls.credential_name[0] ? tp->tls.credential_name : NULL;
    if (tp->tls.mode == MESH_TLS_MUTUAL) {
        if (cred)
            gen_sds_certificate(c, ct, cred);
        else
            GA_PUSH(c->a, ct->tls_certificate_sds_secret_configs,
                    ct->n_tls_certificate_sds_secret_configs,
                    gen_sds_secret(
                        c, ga_printf(c->a, "file-cert:%s~%s",
                                     tp->tls.client_certificate ? tp->tls.client_certificate : "",
                                     tp->tls.private_key ? tp->tls.private_key : "")));
    }
    if (tp->tls.insecure_skip_verify) {
        ct->validation_context_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
        ct->validation_context = GA_MSG(
            c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
            envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init);
        return;
    }
    CombinedValidation *cv =
        gen_san_validation(c, tp->tls.subject_alt_names, tp->tls.nsubject_alt_names);
    const char *ca =
        tp->tls.ca_certificates && tp->tls.ca_certificates[0] ? tp->tls.ca_certificates : "system";
    cv->validation_context_sds_secret_config =
        gen_sds_secret(c, cred ? ga_printf(c->a, "kubernetes://%s-cacert", cred)
                               : ga_printf(c->a, "file-root:%s", ca));
    ct->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    ct->combined_validation_context = cv;
}

static Envoy__Config__Core__V3__TransportSocket *gen_upstream_tls(gen_ctx *c,
                                                                  const mesh_traffic_policy *tp,
                                                                  const mesh_service *svc,
                                                                  uint32_t port, const char *sni)
{
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
        GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
               envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__init);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ct;
    if (c->grpc) {
        /* proxyless gRPC (istiod's grpcgen): ISTIO_MUTUAL only, certificates from the
         * bootstrap's certificate-provider instance "default" (certificate "default", root
         * "ROOTCA"); the peer must hold one of the service's identities (the rule's
         * subjectAltNames when given). No SNI unless the rule names one, like istiod. */
        char **sans = NULL;
        size_t nsans = 0;
        if (tp->tls.nsubject_alt_names) {
            sans = tp->tls.subject_alt_names;
            nsans = tp->tls.nsubject_alt_names;
        } else {
            gen_service_sans(c, svc, port, &sans, &nsans);
        }
        ct = gen_grpc_common_tls(c, sans, nsans);
        u->common_tls_context = ct;
        if (tp->tls.sni && tp->tls.sni[0])
            u->sni = ga_strdup(c->a, tp->tls.sni);
    } else {
        ct = GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
                    envoy__extensions__transport_sockets__tls__v3__common_tls_context__init);
        u->common_tls_context = ct;
        bool istio = tp->tls.mode == MESH_TLS_ISTIO_MUTUAL;
        /* Istio mTLS names the cluster (outbound_...) unless the rule names an SNI; TLS
         * origination sends only the rule's (the server is outside the mesh) */
        if (tp->tls.sni && tp->tls.sni[0])
            u->sni = ga_strdup(c->a, tp->tls.sni);
        else if (istio)
            u->sni = ga_strdup(c->a, sni);
        if (istio) {
            /* as istiod: the workload's own certificate; the peer must hold one of the
             * service's identities (the rule's subjectAltNames when given), checked
             * against the mesh root from the agent */
            char **sans = NULL;
            size_t nsans = 0;
            if (tp->tls.nsubject_alt_names) {
                sans = tp->tls.subject_alt_names;
                nsans = tp->tls.nsubject_alt_names;
            } else {
                gen_service_sans(c, svc, port, &sans, &nsans);
            }
            gen_istio_mtls_context(c, ct, sans, nsans);
            /* istiod's in-mesh ALPN (with metadata exchange), h2 added for HTTP/2 ports */
            GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols,
                    ga_strdup(c->a, "istio-peer-exchange"));
            GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "istio"));
            const mesh_port *mp = gen_service_port(svc, port);
            if (mp && (mp->protocol == MESH_PROTO_HTTP2 || mp->protocol == MESH_PROTO_GRPC ||
                       mp->protocol == MESH_PROTO_GRPC_WEB))
                GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "h2"));
        } else {
            gen_origination_tls(c, ct, tp);
            const mesh_port *mp = gen_service_port(svc, port);
            if (mp && (mp->protocol == MESH_PROTO_HTTP2 || mp->protocol == MESH_PROTO_GRPC ||
                       mp->protocol == MESH_PROTO_GRPC_WEB))
                GA_PUSH(c->a, ct->alpn_protocols, ct->n_alpn_protocols, ga_strdup(c->a, "h2"));
        }
    }
    return gen_tls_transport_socket(c, &u->base);
}

/* Auto mTLS (mesh config enableAutoMtls), as istiod's cluster builder: a cluster whose
 * DestinationRule says nothing about TLS, of an in-mesh service whose namespace (or the
 * mesh) does not DISABLE mTLS, gets Istio mTLS for the endpoints EDS marks
 * tlsMode=istio (their pods carry security.istio.io/tlsMode: istio, i.e. a sidecar) and
 * plaintext for the rest. Envoy picks per endpoint through transport_socket_matches.
 * Proxyless gRPC has no per-endpoint choice: mTLS when every endpoint of the port says
 * istio (istiod leaves gRPC clients plaintext without a rule; we differ, so two proxyless
 * workloads are encrypted by default as sidecars are). */
bool gen_endpoint_tls_istio(const mesh_snapshot *s, const mesh_endpoint_shard *sh,
                            const mesh_endpoint *ep)
{
    const char *tm = mesh_labels_get(&ep->labels, "security.istio.io/tlsMode");
    return tm && strcmp(tm, "istio") == 0 &&
           gen_peer_mtls(s, sh->ns, &ep->labels, ep->port) != MESH_MTLS_DISABLE;
}

static void gen_auto_mtls(gen_ctx *c, Cluster *cl, const mesh_service *svc, uint32_t port,
                          const char *sni)
{
    if (!c->s->auto_mtls || svc->mesh_external || cl->transport_socket ||
        cl->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST)
        return;
    static const mesh_labels no_labels;
    if (gen_peer_mtls(c->s, svc->meta.ns, &no_labels, 0) == MESH_MTLS_DISABLE)
        return;
    mesh_traffic_policy istio = {.has_tls = true, .tls = {.mode = MESH_TLS_ISTIO_MUTUAL}};
    if (c->grpc) {
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, svc->hostname);
        size_t n = 0;
        for (size_t i = 0; sh && i < sh->neps; i++) {
            if (sh->eps[i].service_port != port)
                continue;
            if (!gen_endpoint_tls_istio(c->s, sh, &sh->eps[i]))
                return;
            n++;
        }
        if (n)
            cl->transport_socket = gen_upstream_tls(c, &istio, svc, port, sni);
        return;
    }
    Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *m =
        GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch,
               envoy__config__cluster__v3__cluster__transport_socket_match__init);
    m->name = ga_strdup(c->a, "tlsMode-istio");
    m->match = gen_struct_str(c, "tlsMode", "istio");
    m->transport_socket = gen_upstream_tls(c, &istio, svc, port, sni);
    Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *d =
        GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch,
               envoy__config__cluster__v3__cluster__transport_socket_match__init);
    d->name = ga_strdup(c->a, "tlsMode-disabled");
    d->match = gen_struct_str(c, NULL, NULL);
    d->transport_socket = gen_raw_buffer_socket(c);
    GA_PUSH(c->a, cl->transport_socket_matches, cl->n_transport_socket_matches, m);
    GA_PUSH(c->a, cl->transport_socket_matches, cl->n_transport_socket_matches, d);
}

void gen_default_circuit_breakers(gen_ctx *c, Cluster *cl)
{
    /* Istio's defaults: effectively unlimited, so only the DR's limits bite */
    cl->circuit_breakers = GA_MSG(c->a, Envoy__Config__Cluster__V3__CircuitBreakers,
                                  envoy__config__cluster__v3__circuit_breakers__init);
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th =
        GA_MSG(c->a, Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds,
               envoy__config__cluster__v3__circuit_breakers__thresholds__init);
    th->max_connections = gen_u32(c, 4294967295u);
    th->max_pending_requests = gen_u32(c, 4294967295u);
    th->max_requests = gen_u32(c, 4294967295u);
    th->max_retries = gen_u32(c, 4294967295u);
    th->track_remaining = true;
    GA_PUSH(c->a, cl->circuit_breakers->thresholds, cl->circuit_breakers->n_thresholds, th);
}

void gen_inbound_policy(gen_ctx *c, Cluster *cl, const mesh_service *svc, uint32_t port,
                        const mesh_conn_pool *sidecar_pool)
{
    gen_default_circuit_breakers(c, cl);
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th =
        cl->circuit_breakers->thresholds[0];
    if (sidecar_pool) { /* istiod: the Sidecar's pool replaces the rule's */
        const mesh_conn_pool *p = sidecar_pool;
        if (p->tcp_connect_timeout_ns > 0)
            cl->connect_timeout = gen_duration(c, p->tcp_connect_timeout_ns);
        if (p->tcp_max_connections > 0)
            th->max_connections = gen_u32(c, (uint32_t)p->tcp_max_connections);
        if (p->http1_max_pending_requests > 0)
            th->max_pending_requests = gen_u32(c, (uint32_t)p->http1_max_pending_requests);
        if (p->http2_max_requests > 0)
            th->max_requests = gen_u32(c, (uint32_t)p->http2_max_requests);
        if (p->max_retries > 0)
            th->max_retries = gen_u32(c, (uint32_t)p->max_retries);
        return;
    }
    /* the rule for the service as the proxy's namespace sees it, selector rules aside
     * (istiod honours workloadSelector for outbound only) */
    const mesh_destination_rule *dr =
        svc ? mesh_snapshot_destination_rule(c->s, svc->hostname, c->p->ns, NULL, NULL) : NULL;
    const mesh_traffic_policy *tp = gen_policy(dr, port, NULL);
    if (!tp || !tp->has_connection_pool)
        return;
    if (tp->connection_pool.tcp_connect_timeout_ns > 0)
        cl->connect_timeout = gen_duration(c, tp->connection_pool.tcp_connect_timeout_ns);
    if (tp->connection_pool.tcp_max_connections > 0)
        th->max_connections = gen_u32(c, (uint32_t)tp->connection_pool.tcp_max_connections);
    if (tp->connection_pool.http1_max_pending_requests > 0)
        th->max_pending_requests =
            gen_u32(c, (uint32_t)tp->connection_pool.http1_max_pending_requests);
    if (tp->connection_pool.http2_max_requests > 0)
        th->max_requests = gen_u32(c, (uint32_t)tp->connection_pool.http2_max_requests);
    if (tp->connection_pool.max_retries > 0)
        th->max_retries = gen_u32(c, (uint32_t)tp->connection_pool.max_retries);
}

static void gen_apply_policy(gen_ctx *c, Cluster *cl, const mesh_traffic_policy *tp,
                             const mesh_service *svc, uint32_t port, const char *sni)
{
    if (!tp)
        return;
    if (tp->has_connection_pool && tp->connection_pool.tcp_connect_timeout_ns > 0)
        cl->connect_timeout = gen_duration(c, tp->connection_pool.tcp_connect_timeout_ns);
    if (!c->grpc) {
        switch (tp->lb) {
        case MESH_LB_ROUND_ROBIN:
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
            break;
        case MESH_LB_RANDOM:
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM;
            break;
        case MESH_LB_RING_HASH:
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;
            cl->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG;
            cl->ring_hash_lb_config =
                GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig,
                       envoy__config__cluster__v3__cluster__ring_hash_lb_config__init);
            cl->ring_hash_lb_config->minimum_ring_size =
                gen_u64(c, tp->hash.minimum_ring_size ? tp->hash.minimum_ring_size : 1024);
            break;
        case MESH_LB_PASSTHROUGH:
            cl->cluster_discovery_type_case =
                ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
            cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
            cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
            cl->eds_cluster_config = NULL;
            break;
        default:
            break;
        }
        if (tp->has_connection_pool) {
            Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th =
                cl->circuit_breakers->thresholds[0];
            if (tp->connection_pool.tcp_max_connections >= 0)
                th->max_connections = gen_u32(c, (uint32_t)tp->connection_pool.tcp_max_connections);
            if (tp->connection_pool.http1_max_pending_requests >= 0)
                th->max_pending_requests =
                    gen_u32(c, (uint32_t)tp->connection_pool.http1_max_pending_requests);
            if (tp->connection_pool.http2_max_requests >= 0)
                th->max_requests = gen_u32(c, (uint32_t)tp->connection_pool.http2_max_requests);
            if (tp->connection_pool.max_retries >= 0)
                th->max_retries = gen_u32(c, (uint32_t)tp->connection_pool.max_retries);
        }
        if (tp->has_outlier_detection) {
            Envoy__Config__Cluster__V3__OutlierDetection *od =
                GA_MSG(c->a, Envoy__Config__Cluster__V3__OutlierDetection,
                       envoy__config__cluster__v3__outlier_detection__init);
            if (tp->outlier_detection.consecutive_5xx_errors >= 0)
                od->consecutive_5xx =
                    gen_u32(c, (uint32_t)tp->outlier_detection.consecutive_5xx_errors);
            else
                od->enforcing_consecutive_5xx = gen_u32(c, 0);
            if (tp->outlier_detection.consecutive_gateway_errors >= 0) {
                od->consecutive_gateway_failure =
                    gen_u32(c, (uint32_t)tp->outlier_detection.consecutive_gateway_errors);
                od->enforcing_consecutive_gateway_failure = gen_u32(c, 100);
            }
            if (tp->outlier_detection.interval_ns > 0)
                od->interval = gen_duration(c, tp->outlier_detection.interval_ns);
            if (tp->outlier_detection.base_ejection_time_ns > 0)
                od->base_ejection_time =
                    gen_duration(c, tp->outlier_detection.base_ejection_time_ns);
            if (tp->outlier_detection.max_ejection_percent >= 0)
                od->max_ejection_percent =
                    gen_u32(c, (uint32_t)tp->outlier_detection.max_ejection_percent);
            cl->outlier_detection = od;
        }
    }
    /* gRPC: only ISTIO_MUTUAL, as istiod (SIMPLE and MUTUAL would need a certificate
     * provider per credential in the client's bootstrap; they stay plaintext) */
    if (tp->has_tls &&
        (tp->tls.mode == MESH_TLS_ISTIO_MUTUAL ||
         (!c->grpc && (tp->tls.mode == MESH_TLS_SIMPLE || tp->tls.mode == MESH_TLS_MUTUAL))))
        cl->transport_socket = gen_upstream_tls(c, tp, svc, port, sni);
}

/* istiod's outbound cluster metadata (Envoy only; grpcgen adds none): under "istio" the
 * service the cluster is for (telemetry labels: services [{host, name, namespace}], a
 * ServiceEntry's name being its host), external for MESH_EXTERNAL, and when a
 * DestinationRule applies its config path (the first rule of a merged one), the subset, and
 * alpn_override "false" for SIMPLE/MUTUAL origination (istio's ALPN filter then leaves the
 * application's ALPN alone). */
Google__Protobuf__Struct *gen_cluster_services_metadata(gen_ctx *c, Cluster *cl,
                                                        const mesh_service *const *svcs, size_t n)
{
    Google__Protobuf__Struct *st = gen_config_metadata(c, &cl->metadata, NULL, NULL, NULL);
    Google__Protobuf__Struct__FieldsEntry *e = GA_MSG(c->a, Google__Protobuf__Struct__FieldsEntry,
                                                      google__protobuf__struct__fields_entry__init);
    e->key = ga_strdup(c->a, "services");
    e->value = GA_MSG(c->a, Google__Protobuf__Value, google__protobuf__value__init);
    e->value->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    e->value->list_value =
        GA_MSG(c->a, Google__Protobuf__ListValue, google__protobuf__list_value__init);
    for (size_t i = 0; i < n; i++) {
        const mesh_service *svc = svcs[i];
        Google__Protobuf__Struct *sv = gen_struct_str(c, "host", svc->hostname);
        gen_struct_set_str(c, sv, "name", svc->from_service_entry ? svc->hostname : svc->meta.name);
        gen_struct_set_str(c, sv, "namespace", svc->meta.ns);
        Google__Protobuf__Value *item =
            GA_MSG(c->a, Google__Protobuf__Value, google__protobuf__value__init);
        item->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        item->struct_value = sv;
        GA_PUSH(c->a, e->value->list_value->values, e->value->list_value->n_values, item);
    }
    GA_PUSH(c->a, st->fields, st->n_fields, e);
    return st;
}

static void gen_cluster_metadata(gen_ctx *c, Cluster *cl, const mesh_service *svc,
                                 const mesh_destination_rule *dr, const char *subset,
                                 const mesh_traffic_policy *tp)
{
    Google__Protobuf__Struct *st = gen_cluster_services_metadata(c, cl, &svc, 1);
    if (svc->mesh_external) {
        Google__Protobuf__Struct__FieldsEntry *x =
            GA_MSG(c->a, Google__Protobuf__Struct__FieldsEntry,
                   google__protobuf__struct__fields_entry__init);
        x->key = ga_strdup(c->a, "external");
        x->value = GA_MSG(c->a, Google__Protobuf__Value, google__protobuf__value__init);
        x->value->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        x->value->bool_value = true;
        GA_PUSH(c->a, st->fields, st->n_fields, x);
    }
    if (!dr)
        return;
    gen_config_metadata(c, &cl->metadata, "destination-rule", dr->meta.ns, dr->meta.name);
    if (subset)
        gen_struct_set_str(c, st, "subset", subset);
    if (tp && tp->has_tls && (tp->tls.mode == MESH_TLS_SIMPLE || tp->tls.mode == MESH_TLS_MUTUAL))
        gen_struct_set_str(c, st, "alpn_override", "false");
}

Cluster *gen_outbound_cluster(gen_ctx *c, const mesh_service *svc, const mesh_port *port,
                              const char *subset)
{
    Cluster *cl = GA_MSG(c->a, Cluster, envoy__config__cluster__v3__cluster__init);
    if (subset && !subset[0])
        subset = NULL;
    cl->name = gen_cluster_name(c, port->port, subset, svc->hostname);
    cl->connect_timeout = gen_duration(c, 10LL * 1000000000);
    cl->cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    bool dns = svc->resolution == MESH_RESOLUTION_DNS ||
               svc->resolution == MESH_RESOLUTION_DNS_ROUND_ROBIN;
    bool passthrough = !c->grpc && svc->resolution == MESH_RESOLUTION_PASSTHROUGH;
    if (dns) {
        /* gRPC accepts only IPs in EDS, so a host name there gets the whole response
         * NACKed; its only DNS cluster type is LOGICAL_DNS with exactly one endpoint (gRPC
         * resolves it itself). Istio's grpcgen sends EDS here; this deliberately differs. */
        cl->type = svc->resolution == MESH_RESOLUTION_DNS && !c->grpc
                       ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS
                       : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS;
        /* DNS clusters carry their endpoints inline: the service's own host:port unless
         * the ServiceEntry lists endpoints */
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la =
            GA_MSG(c->a, Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
                   envoy__config__endpoint__v3__cluster_load_assignment__init);
        la->cluster_name = cl->name;
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle =
            GA_MSG(c->a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
                   envoy__config__endpoint__v3__locality_lb_endpoints__init);
        lle->locality = GA_MSG(c->a, Envoy__Config__Core__V3__Locality,
                               envoy__config__core__v3__locality__init);
        const mesh_endpoint_shard *sh = mesh_snapshot_shard(c->s, svc->hostname);
        for (size_t i = 0; sh && i < sh->neps; i++) {
            if (sh->eps[i].service_port != port->port)
                continue;
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints,
                    gen_lb_endpoint(c, sh->eps[i].address, sh->eps[i].port));
            if (cl->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS)
                break;
        }
        if (lle->n_lb_endpoints == 0)
            GA_PUSH(c->a, lle->lb_endpoints, lle->n_lb_endpoints,
                    gen_lb_endpoint(c, svc->hostname, port->port));
        GA_PUSH(c->a, la->endpoints, la->n_endpoints, lle);
        cl->load_assignment = la;
        if (!c->grpc) {
            cl->dns_lookup_family = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY;
            /* as Istio's cluster builder: follow the records' TTL, else re-resolve at the
             * mesh config's dnsRefreshRate, whose default Istio raised to 60s (Envoy's own
             * 5s overloads DNS servers, since Envoy ignores negative-answer TTLs) */
            cl->respect_dns_ttl = true;
            cl->dns_refresh_rate = gen_duration(c, 60LL * 1000000000);
        }
    } else if (passthrough) {
        cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
        cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
    } else {
        cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
        cl->eds_cluster_config =
            GA_MSG(c->a, Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
                   envoy__config__cluster__v3__cluster__eds_cluster_config__init);
        cl->eds_cluster_config->eds_config = gen_ads_source(c);
        cl->eds_cluster_config->service_name = cl->name;
    }
    if (!passthrough) {
        /* gRPC refuses anything but ROUND_ROBIN/RING_HASH (and 1.51's ring hash crashes);
         * Envoy gets Istio's default, LEAST_REQUEST */
        cl->lb_policy = c->grpc ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN
                                : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
    }
    if (!c->grpc) {
        gen_default_circuit_breakers(c, cl);
        if (port->protocol == MESH_PROTO_HTTP2 || port->protocol == MESH_PROTO_GRPC ||
            port->protocol == MESH_PROTO_GRPC_WEB)
            cl->http2_protocol_options =
                GA_MSG(c->a, Envoy__Config__Core__V3__Http2ProtocolOptions,
                       envoy__config__core__v3__http2_protocol_options__init);
    }
    const mesh_destination_rule *dr = gen_dr(c, svc->hostname);
    char *sni =
        ga_printf(c->a, "outbound_.%u_.%s_.%s", port->port, subset ? subset : "", svc->hostname);
    const mesh_traffic_policy *tp = gen_policy(dr, port->port, subset);
    gen_apply_policy(c, cl, tp, svc, port->port, sni);
    /* any tls block in the rule is the user's choice (an absent mode is DISABLE) */
    if (!tp || !tp->has_tls)
        gen_auto_mtls(c, cl, svc, port->port, sni);
    if (!c->grpc) {
        gen_cluster_metadata(c, cl, svc, dr, subset, tp);
        /* istiod's applyMetadataExchange: the TCP peer-metadata exchange on every outbound
         * cluster, the client side of the inbound istio.metadata_exchange filter */
        gen_cluster_mx_filter(c, cl);
    }
    return cl;
}

void gen_list_outbound_clusters(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    if (names) {
        for (size_t i = 0; i < nnames; i++) {
            uint32_t port;
            char *subset, *host;
            if (!names[i] || !gen_parse_cluster_name(c, names[i], &port, &subset, &host))
                continue;
            const mesh_service *svc = mesh_snapshot_service(c->s, host);
            if (!svc || !gen_service_port(svc, port) || !gen_service_visible(c, svc) ||
                !gen_scope_service(c, svc, port))
                continue;
            if (subset[0] && !gen_dr_subset(gen_dr(c, host), subset))
                continue;
            gen_item it = {.name = ga_strdup(c->a, names[i]),
                           .extra = gen_dr_key(c, host),
                           .svc = svc,
                           .port = port,
                           .subset = subset};
            gen_items_add(c, out, &it);
        }
        return;
    }
    for (size_t i = 0; i < c->s->nservices; i++) {
        const mesh_service *svc = c->s->services[i];
        if (!gen_service_visible(c, svc))
            continue;
        const mesh_destination_rule *dr = gen_dr(c, svc->hostname);
        char *drk = gen_dr_key(c, svc->hostname);
        for (size_t p = 0; p < svc->nports; p++) {
            /* a Sidecar egress listener on one port imports only that port */
            if (!gen_scope_service(c, svc, svc->ports[p].port))
                continue;
            gen_item it = {.name = gen_cluster_name(c, svc->ports[p].port, NULL, svc->hostname),
                           .extra = drk,
                           .svc = svc,
                           .port = svc->ports[p].port,
                           .subset = ""};
            gen_items_add(c, out, &it);
            for (size_t k = 0; dr && k < dr->nsubsets; k++) {
                if (!dr->subsets[k].name)
                    continue;
                gen_item st = {.name = gen_cluster_name(c, svc->ports[p].port, dr->subsets[k].name,
                                                        svc->hostname),
                               .extra = drk,
                               .svc = svc,
                               .port = svc->ports[p].port,
                               .subset = dr->subsets[k].name};
                gen_items_add(c, out, &st);
            }
        }
    }
}

static ProtobufCMessage *gen_outbound_cluster_build(gen_ctx *c, const gen_item *it)
{
    const mesh_port *port = gen_service_port(it->svc, it->port);
    if (!port)
        return NULL;
    return &gen_outbound_cluster(c, it->svc, port, it->subset)->base;
}

const gen_type_ops gen_envoy_cds_outbound = {gen_list_outbound_clusters,
                                             gen_outbound_cluster_build};
