/* mesh_unsupported: which fields of an Istio object the parser accepts but does not model.
 *
 * Each kind has a table of the field paths the parser reads, in a normalised form: list
 * items as "[]", free-form map keys as "*" ("spec.http[].match[].headers.*.exact"). The
 * walker visits the object's spec; a key whose path is neither in the table nor a prefix
 * of an entry is reported once (its subtree is not visited). Keep these tables in step
 * with the parse_<kind>.c files: a field parsed there must be listed here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

#define WALK_DEPTH_MAX 32

static const char *const vs_paths[] = {
    "spec.hosts[]",
    "spec.gateways[]",
    "spec.exportTo[]",
    "spec.http[].name",
    "spec.http[].match[].name",
    "spec.http[].match[].uri.exact",
    "spec.http[].match[].uri.prefix",
    "spec.http[].match[].uri.regex",
    "spec.http[].match[].scheme.exact",
    "spec.http[].match[].scheme.prefix",
    "spec.http[].match[].scheme.regex",
    "spec.http[].match[].method.exact",
    "spec.http[].match[].method.prefix",
    "spec.http[].match[].method.regex",
    "spec.http[].match[].authority.exact",
    "spec.http[].match[].authority.prefix",
    "spec.http[].match[].authority.regex",
    "spec.http[].match[].headers.*.exact",
    "spec.http[].match[].headers.*.prefix",
    "spec.http[].match[].headers.*.regex",
    "spec.http[].match[].withoutHeaders.*.exact",
    "spec.http[].match[].withoutHeaders.*.prefix",
    "spec.http[].match[].withoutHeaders.*.regex",
    "spec.http[].match[].queryParams.*.exact",
    "spec.http[].match[].queryParams.*.prefix",
    "spec.http[].match[].queryParams.*.regex",
    "spec.http[].match[].port",
    "spec.http[].match[].sourceLabels.*",
    "spec.http[].match[].sourceNamespace",
    "spec.http[].match[].gateways[]",
    "spec.http[].match[].ignoreUriCase",
    "spec.http[].route[].destination.host",
    "spec.http[].route[].destination.subset",
    "spec.http[].route[].destination.port.number",
    "spec.http[].route[].weight",
    "spec.http[].route[].headers.request.set.*",
    "spec.http[].route[].headers.request.add.*",
    "spec.http[].route[].headers.request.remove[]",
    "spec.http[].route[].headers.response.set.*",
    "spec.http[].route[].headers.response.add.*",
    "spec.http[].route[].headers.response.remove[]",
    "spec.http[].redirect.uri",
    "spec.http[].redirect.authority",
    "spec.http[].redirect.scheme",
    "spec.http[].redirect.port",
    "spec.http[].redirect.redirectCode",
    "spec.http[].directResponse.status",
    "spec.http[].directResponse.body.string",
    "spec.http[].rewrite.uri",
    "spec.http[].rewrite.authority",
    "spec.http[].rewrite.uriRegexRewrite.match",
    "spec.http[].rewrite.uriRegexRewrite.rewrite",
    "spec.http[].timeout",
    "spec.http[].retries.attempts",
    "spec.http[].retries.perTryTimeout",
    "spec.http[].retries.retryOn",
    "spec.http[].fault.delay.percentage.value",
    "spec.http[].fault.delay.percent",
    "spec.http[].fault.delay.fixedDelay",
    "spec.http[].fault.abort.percentage.value",
    "spec.http[].fault.abort.httpStatus",
    "spec.http[].fault.abort.grpcStatus",
    "spec.http[].mirror.host",
    "spec.http[].mirror.subset",
    "spec.http[].mirror.port.number",
    "spec.http[].mirrorPercentage.value",
    "spec.http[].mirrorPercent",
    "spec.http[].mirror_percent",
    "spec.http[].corsPolicy.allowOrigins[].exact",
    "spec.http[].corsPolicy.allowOrigins[].prefix",
    "spec.http[].corsPolicy.allowOrigins[].regex",
    "spec.http[].corsPolicy.allowOrigin[]",
    "spec.http[].corsPolicy.allowMethods[]",
    "spec.http[].corsPolicy.allowHeaders[]",
    "spec.http[].corsPolicy.exposeHeaders[]",
    "spec.http[].corsPolicy.maxAge",
    "spec.http[].corsPolicy.allowCredentials",
    "spec.http[].headers.request.set.*",
    "spec.http[].headers.request.add.*",
    "spec.http[].headers.request.remove[]",
    "spec.http[].headers.response.set.*",
    "spec.http[].headers.response.add.*",
    "spec.http[].headers.response.remove[]",
    "spec.tcp[].match[].port",
    "spec.tcp[].match[].destinationSubnets[]",
    "spec.tcp[].match[].sourceLabels.*",
    "spec.tcp[].match[].gateways[]",
    "spec.tcp[].route[].destination.host",
    "spec.tcp[].route[].destination.subset",
    "spec.tcp[].route[].destination.port.number",
    "spec.tcp[].route[].weight",
    "spec.tls[].match[].sniHosts[]",
    "spec.tls[].match[].port",
    "spec.tls[].match[].destinationSubnets[]",
    "spec.tls[].match[].sourceLabels.*",
    "spec.tls[].match[].gateways[]",
    "spec.tls[].route[].destination.host",
    "spec.tls[].route[].destination.subset",
    "spec.tls[].route[].destination.port.number",
    "spec.tls[].route[].weight",
    NULL,
};

/* Traffic policy fields, below each place a policy may appear. */
static const char *const tp_suffixes[] = {
    "loadBalancer.simple",
    "loadBalancer.consistentHash.httpHeaderName",
    "loadBalancer.consistentHash.useSourceIp",
    "loadBalancer.consistentHash.minimumRingSize",
    "loadBalancer.consistentHash.httpCookie.name",
    "loadBalancer.consistentHash.ringHash.minimumRingSize",
    "connectionPool.tcp.maxConnections",
    "connectionPool.tcp.connectTimeout",
    "connectionPool.http.http1MaxPendingRequests",
    "connectionPool.http.http2MaxRequests",
    "connectionPool.http.maxRequestsPerConnection",
    "connectionPool.http.maxRetries",
    "connectionPool.http.idleTimeout",
    "outlierDetection.consecutiveErrors",
    "outlierDetection.consecutive5xxErrors",
    "outlierDetection.consecutiveGatewayErrors",
    "outlierDetection.interval",
    "outlierDetection.baseEjectionTime",
    "outlierDetection.maxEjectionPercent",
    "tls.mode",
    "tls.sni",
    "tls.credentialName",
    "tls.subjectAltNames[]",
    "tls.caCertificates",
    "tls.clientCertificate",
    "tls.privateKey",
    "tls.insecureSkipVerify",
    NULL,
};

static const char *const tp_prefixes[] = {
    "spec.trafficPolicy.",
    "spec.trafficPolicy.portLevelSettings[].",
    "spec.subsets[].trafficPolicy.",
    NULL,
};

static const char *const dr_paths[] = {
    "spec.host",
    "spec.exportTo[]",
    "spec.workloadSelector.matchLabels.*",
    "spec.subsets[].name",
    "spec.subsets[].labels.*",
    "spec.trafficPolicy.portLevelSettings[].port.number",
    NULL,
};

static const char *const gw_paths[] = {
    "spec.selector.*",
    "spec.servers[].port.number",
    "spec.servers[].port.protocol",
    "spec.servers[].port.name",
    "spec.servers[].hosts[]",
    "spec.servers[].name",
    "spec.servers[].tls.httpsRedirect",
    "spec.servers[].tls.mode",
    "spec.servers[].tls.credentialName",
    "spec.servers[].tls.subjectAltNames[]",
    NULL,
};

static const char *const se_paths[] = {
    "spec.hosts[]",
    "spec.addresses[]",
    "spec.exportTo[]",
    "spec.ports[].number",
    "spec.ports[].protocol",
    "spec.ports[].name",
    "spec.ports[].targetPort",
    "spec.location",
    "spec.resolution",
    "spec.endpoints[].address",
    "spec.endpoints[].ports.*",
    "spec.endpoints[].labels.*",
    "spec.endpoints[].network",
    "spec.endpoints[].locality",
    "spec.endpoints[].weight",
    "spec.endpoints[].serviceAccount",
    "spec.workloadSelector.labels.*",
    NULL,
};

static const char *const ra_paths[] = {
    "spec.selector.matchLabels.*",
    "spec.targetRef.group",
    "spec.targetRef.kind",
    "spec.targetRef.name",
    "spec.targetRef.namespace",
    "spec.targetRefs[].group",
    "spec.targetRefs[].kind",
    "spec.targetRefs[].name",
    "spec.targetRefs[].namespace",
    "spec.jwtRules[].issuer",
    "spec.jwtRules[].audiences[]",
    "spec.jwtRules[].jwksUri",
    "spec.jwtRules[].jwks",
    "spec.jwtRules[].fromHeaders[].name",
    "spec.jwtRules[].fromHeaders[].prefix",
    "spec.jwtRules[].fromParams[]",
    "spec.jwtRules[].fromCookies[]",
    "spec.jwtRules[].outputPayloadToHeader",
    "spec.jwtRules[].forwardOriginalToken",
    "spec.jwtRules[].outputClaimToHeaders[].header",
    "spec.jwtRules[].outputClaimToHeaders[].claim",
    "spec.jwtRules[].timeout",
    NULL,
};

/* Telemetry (parse_telemetry.c). */
static const char *const tel_paths[] = {
    "spec.selector.matchLabels.*",
    "spec.targetRef.group",
    "spec.targetRef.kind",
    "spec.targetRef.name",
    "spec.targetRef.namespace",
    "spec.targetRefs[].group",
    "spec.targetRefs[].kind",
    "spec.targetRefs[].name",
    "spec.targetRefs[].namespace",
    "spec.metrics[].providers[].name",
    "spec.metrics[].overrides[].match.metric",
    "spec.metrics[].overrides[].match.customMetric",
    "spec.metrics[].overrides[].match.mode",
    "spec.metrics[].overrides[].disabled",
    "spec.metrics[].overrides[].tagOverrides.*.operation",
    "spec.metrics[].overrides[].tagOverrides.*.value",
    "spec.metrics[].reportingInterval",
    "spec.accessLogging[].providers[].name",
    "spec.accessLogging[].match.mode",
    "spec.accessLogging[].disabled",
    "spec.accessLogging[].filter.expression",
    "spec.tracing[].providers[].name",
    "spec.tracing[].match.mode",
    "spec.tracing[].randomSamplingPercentage",
    "spec.tracing[].disableSpanReporting",
    "spec.tracing[].useRequestIdForTraceSampling",
    "spec.tracing[].customTags.*.literal.value",
    "spec.tracing[].customTags.*.header.name",
    "spec.tracing[].customTags.*.header.defaultValue",
    "spec.tracing[].customTags.*.environment.name",
    "spec.tracing[].customTags.*.environment.defaultValue",
    NULL,
};

/* AuthorizationPolicy (parse_authorizationpolicy.c). */
static const char *const ap_paths[] = {
    "spec.selector.matchLabels.*",
    "spec.targetRef.group",
    "spec.targetRef.kind",
    "spec.targetRef.name",
    "spec.targetRef.namespace",
    "spec.targetRefs[].group",
    "spec.targetRefs[].kind",
    "spec.targetRefs[].name",
    "spec.targetRefs[].namespace",
    "spec.action",
    "spec.provider.name",
    "spec.rules[].from[].source.principals[]",
    "spec.rules[].from[].source.notPrincipals[]",
    "spec.rules[].from[].source.requestPrincipals[]",
    "spec.rules[].from[].source.notRequestPrincipals[]",
    "spec.rules[].from[].source.namespaces[]",
    "spec.rules[].from[].source.notNamespaces[]",
    "spec.rules[].from[].source.ipBlocks[]",
    "spec.rules[].from[].source.notIpBlocks[]",
    "spec.rules[].from[].source.remoteIpBlocks[]",
    "spec.rules[].from[].source.notRemoteIpBlocks[]",
    "spec.rules[].from[].source.serviceAccounts[]",
    "spec.rules[].from[].source.notServiceAccounts[]",
    "spec.rules[].from[].source.trustDomains[]",
    "spec.rules[].from[].source.notTrustDomains[]",
    "spec.rules[].to[].operation.hosts[]",
    "spec.rules[].to[].operation.notHosts[]",
    "spec.rules[].to[].operation.ports[]",
    "spec.rules[].to[].operation.notPorts[]",
    "spec.rules[].to[].operation.methods[]",
    "spec.rules[].to[].operation.notMethods[]",
    "spec.rules[].to[].operation.paths[]",
    "spec.rules[].to[].operation.notPaths[]",
    "spec.rules[].when[].key",
    "spec.rules[].when[].values[]",
    "spec.rules[].when[].notValues[]",
    NULL,
};

/* Sidecar (parse_sidecar.c). workloadSelector, egress (hosts, port, bind, captureMode),
 * ingress (port, defaultEndpoint) and outboundTrafficPolicy shape sidecar and gRPC xDS
 * (xds/gen/scope.c, sidecar.c); ingress tls and captureMode NONE, and the connection
 * pools, are read and validated but not modelled yet (README, "Sidecar and outbound
 * traffic policy"). A server TLS's credentialName(s), tlsCertificates and
 * subjectAltNames are not listed: istiod refuses them in a Sidecar, so an object that has
 * them is never accepted. */
static const char *const sc_paths[] = {
    "spec.workloadSelector.labels.*",
    "spec.ingress[].port.number",
    "spec.ingress[].port.protocol",
    "spec.ingress[].port.name",
    "spec.ingress[].port.targetPort",
    "spec.ingress[].bind",
    "spec.ingress[].captureMode",
    "spec.ingress[].defaultEndpoint",
    "spec.ingress[].tls.mode",
    "spec.ingress[].tls.httpsRedirect",
    "spec.ingress[].tls.serverCertificate",
    "spec.ingress[].tls.privateKey",
    "spec.ingress[].tls.caCertificates",
    "spec.ingress[].tls.caCrl",
    "spec.ingress[].tls.cipherSuites[]",
    "spec.ingress[].tls.minProtocolVersion",
    "spec.ingress[].tls.maxProtocolVersion",
    "spec.egress[].port.number",
    "spec.egress[].port.protocol",
    "spec.egress[].port.name",
    "spec.egress[].port.targetPort",
    "spec.egress[].bind",
    "spec.egress[].captureMode",
    "spec.egress[].hosts[]",
    "spec.outboundTrafficPolicy.mode",
    "spec.outboundTrafficPolicy.egressProxy.host",
    "spec.outboundTrafficPolicy.egressProxy.subset",
    "spec.outboundTrafficPolicy.egressProxy.port.number",
    NULL,
};

/* Connection pool fields, below spec.inboundConnectionPool and spec.ingress[].connectionPool
 * (the keepalives are validated, http2KeepAlive is not kept). */
static const char *const sc_pool_suffixes[] = {
    "tcp.maxConnections",        "tcp.connectTimeout",
    "tcp.maxConnectionDuration", "tcp.idleTimeout",
    "tcp.tcpKeepalive.probes",   "tcp.tcpKeepalive.time",
    "tcp.tcpKeepalive.interval", "http.http1MaxPendingRequests",
    "http.http2MaxRequests",     "http.maxRequestsPerConnection",
    "http.maxRetries",           "http.idleTimeout",
    "http.h2UpgradePolicy",      "http.useClientProtocol",
    "http.maxConcurrentStreams", NULL,
};

static const char *const sc_pool_prefixes[] = {
    "spec.inboundConnectionPool.",
    "spec.ingress[].connectionPool.",
    NULL,
};

typedef struct walk {
    const char *const *table;
    /* also: any of suffixes below any of prefixes (DestinationRule traffic policies,
     * Sidecar connection pools); NULL for none */
    const char *const *prefixes, *const *suffixes;
    char ***paths;
    size_t *npaths;
} walk;

/* p names an entry, or a prefix of one ending at a '.' or '[' boundary. */
static bool entry_covers(const char *entry, const char *p, size_t pl)
{
    if (strncmp(entry, p, pl) != 0)
        return false;
    return entry[pl] == '\0' || entry[pl] == '.' || entry[pl] == '[';
}

static bool known(const walk *w, const char *p)
{
    size_t pl = strlen(p);
    for (size_t i = 0; w->table[i]; i++)
        if (entry_covers(w->table[i], p, pl))
            return true;
    if (!w->prefixes)
        return false;
    for (size_t k = 0; w->prefixes[k]; k++) {
        size_t kl = strlen(w->prefixes[k]);
        /* "spec.trafficPolicy" itself (prefix minus its dot) */
        if (pl == kl - 1 && strncmp(w->prefixes[k], p, pl) == 0)
            return true;
        if (pl < kl || strncmp(w->prefixes[k], p, kl) != 0)
            continue;
        for (size_t i = 0; w->suffixes[i]; i++)
            if (entry_covers(w->suffixes[i], p + kl, pl - kl))
                return true;
    }
    return false;
}

static void report(walk *w, const char *p)
{
    for (size_t i = 0; i < *w->npaths; i++)
        if (strcmp((*w->paths)[i], p) == 0)
            return;
    *w->paths = xrealloc(*w->paths, (*w->npaths + 1) * sizeof(char *));
    (*w->paths)[(*w->npaths)++] = xstrdup(p);
}

static void visit(walk *w, const cJSON *node, const char *path, int depth)
{
    char p[MP_PATH_MAX];
    const cJSON *it;

    if (depth > WALK_DEPTH_MAX)
        return;
    if (cJSON_IsArray(node)) {
        snprintf(p, sizeof p, "%s[]", path);
        cJSON_ArrayForEach(it, node) visit(w, it, p, depth + 1);
        return;
    }
    if (!cJSON_IsObject(node))
        return;
    cJSON_ArrayForEach(it, node)
    {
        if (!it->string)
            continue;
        snprintf(p, sizeof p, "%s.%s", path, it->string);
        if (known(w, p)) {
            visit(w, it, p, depth + 1);
            continue;
        }
        snprintf(p, sizeof p, "%s.*", path);
        if (known(w, p)) {
            visit(w, it, p, depth + 1);
            continue;
        }
        snprintf(p, sizeof p, "%s.%s", path, it->string);
        report(w, p);
    }
}

void mesh_unsupported_fields(const cJSON *obj, char ***paths, size_t *npaths)
{
    walk w = {.paths = paths, .npaths = npaths};
    switch (mesh_kind_of(obj)) {
    case MESH_KIND_VIRTUAL_SERVICE:
        w.table = vs_paths;
        break;
    case MESH_KIND_DESTINATION_RULE:
        w.table = dr_paths;
        w.prefixes = tp_prefixes;
        w.suffixes = tp_suffixes;
        break;
    case MESH_KIND_GATEWAY:
        w.table = gw_paths;
        break;
    case MESH_KIND_SERVICE_ENTRY:
        w.table = se_paths;
        break;
    case MESH_KIND_AUTHORIZATION_POLICY:
        w.table = ap_paths;
        break;
    case MESH_KIND_REQUEST_AUTHENTICATION:
        w.table = ra_paths;
        break;
    case MESH_KIND_TELEMETRY:
        w.table = tel_paths;
        break;
    case MESH_KIND_SIDECAR:
        w.table = sc_paths;
        w.prefixes = sc_pool_prefixes;
        w.suffixes = sc_pool_suffixes;
        break;
    default:
        /* Kubernetes kinds: the API server owns their schema; we read a few fields and
         * claim nothing about the rest. */
        return;
    }
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    visit(&w, spec, "spec", 0);
}
