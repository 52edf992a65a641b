/* parse_destinationrule: DestinationRule (traffic policy: load balancer, connection pool,
 * outlier detection, client TLS, port-level policies; subsets). Validated the way istiod's
 * validation webhook (pilot/pkg/config/validation) would, with the reasons worded like Istio's;
 * fields we do not model are accepted and ignored (listed by mesh_unsupported_fields). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

#define MS (1000000LL)

/* ---- DestinationRule ------------------------------------------------------------------ */

static int parse_lb(mp_ctx *c, const cJSON *lb, const char *path, mesh_traffic_policy *tp)
{
    static const struct {
        const char *name;
        mesh_lb lb;
    } simple[] = {
        {"UNSPECIFIED", MESH_LB_UNSET},
        {"ROUND_ROBIN", MESH_LB_ROUND_ROBIN},
        {"LEAST_CONN", MESH_LB_LEAST_REQUEST},
        {"LEAST_REQUEST", MESH_LB_LEAST_REQUEST},
        {"RANDOM", MESH_LB_RANDOM},
        {"PASSTHROUGH", MESH_LB_PASSTHROUGH},
    };
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    char *s = NULL;
    const cJSON *ch, *o;
    int rc = -1;
    int64_t ring = 0;

    if (mp_get_str(c, lb, "simple", path, &s) != 0 ||
        mp_get_obj(c, lb, "consistentHash", path, &ch) != 0)
        goto out;
    if (s && ch) {
        mp_fail(c, path, "only one of simple or consistentHash may be set");
        goto out;
    }
    if (s) {
        size_t k;
        for (k = 0; k < sizeof simple / sizeof simple[0]; k++)
            if (strcmp(simple[k].name, s) == 0)
                break;
        if (k == sizeof simple / sizeof simple[0]) {
            mp_fail(c, mp_path(p, path, "simple"), "unknown load balancer %.32s", s);
            goto out;
        }
        tp->lb = simple[k].lb;
    }
    if (ch) {
        mp_path(p, path, "consistentHash");
        tp->lb = MESH_LB_RING_HASH;
        if (mp_get_str(c, ch, "httpHeaderName", p, &tp->hash.http_header_name) != 0 ||
            mp_get_bool(c, ch, "useSourceIp", p, &tp->hash.use_source_ip, NULL) != 0 ||
            mp_get_int(c, ch, "minimumRingSize", p, 0, INT64_MAX, &ring, NULL) != 0 ||
            mp_get_obj(c, ch, "httpCookie", p, &o) != 0)
            goto out;
        if (o) {
            mp_path(p2, p, "httpCookie");
            int64_t ttl = 0;
            if (mp_get_str(c, o, "name", p2, &tp->hash.http_cookie_name) != 0 ||
                mp_get_duration(c, o, "ttl", p2, 0, &ttl, NULL) != 0)
                goto out;
            if (!tp->hash.http_cookie_name || !*tp->hash.http_cookie_name) {
                mp_fail(c, p2, "name required for HttpCookie");
                goto out;
            }
        }
        if (mp_get_obj(c, ch, "ringHash", p, &o) != 0)
            goto out;
        if (o && mp_get_int(c, o, "minimumRingSize", mp_path(p2, p, "ringHash"), 0, INT64_MAX,
                            &ring, NULL) != 0)
            goto out;
        tp->hash.minimum_ring_size = (uint64_t)ring;
        if (cJSON_GetObjectItemCaseSensitive(ch, "minimumRingSize") && ring != 0)
            mp_warn(c, p,
                    "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's "
                    "RingHash configuration instead");
    }
    /* warmup (WarmupConfiguration): istiod's bounds; not modelled further */
    if (mp_get_obj(c, lb, "warmup", path, &o) != 0)
        goto out;
    if (o) {
        mp_path(p, path, "warmup");
        int64_t d = 0;
        bool have_d = false;
        if (mp_get_duration(c, o, "duration", p, MS, &d, &have_d) != 0)
            goto out;
        if (!have_d) {
            mp_fail(c, p, "duration is required");
            goto out;
        }
        const cJSON *mp = cJSON_GetObjectItemCaseSensitive(o, "minimumPercent");
        const cJSON *ag = cJSON_GetObjectItemCaseSensitive(o, "aggression");
        if (mp && !cJSON_IsNull(mp) && (!cJSON_IsNumber(mp) || !(mp->valuedouble <= 100))) {
            mp_fail(c, mp_path(p2, p, "minimumPercent"),
                    "minimumPercent value should be less than or equal to 100");
            goto out;
        }
        if (ag && !cJSON_IsNull(ag) && (!cJSON_IsNumber(ag) || !(ag->valuedouble >= 1))) {
            mp_fail(c, mp_path(p2, p, "aggression"),
                    "aggression should be greater than or equal to 1");
            goto out;
        }
    }
    rc = 0;
out:
    free(s);
    return rc;
}

static int get_i32(mp_ctx *c, const cJSON *o, const char *key, const char *path, int64_t min,
                   int64_t max, int32_t *out)
{
    int64_t v = 0;
    bool have = false;
    if (mp_get_int(c, o, key, path, min, max, &v, &have) != 0)
        return -1;
    if (have)
        *out = (int32_t)v;
    return 0;
}

static int parse_tls_client(mp_ctx *c, const cJSON *t, const char *path, mesh_traffic_policy *tp)
{
    static const char *const modes[] = {"", "DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"};
    char *mode = NULL;
    int rc = -1;

    tp->has_tls = true;
    if (mp_get_str(c, t, "mode", path, &mode) != 0 ||
        mp_get_str(c, t, "sni", path, &tp->tls.sni) != 0 ||
        mp_get_str(c, t, "credentialName", path, &tp->tls.credential_name) != 0 ||
        mp_get_strv(c, t, "subjectAltNames", path, &tp->tls.subject_alt_names,
                    &tp->tls.nsubject_alt_names) != 0 ||
        mp_get_str(c, t, "clientCertificate", path, &tp->tls.client_certificate) != 0 ||
        mp_get_str(c, t, "privateKey", path, &tp->tls.private_key) != 0 ||
        mp_get_str(c, t, "caCertificates", path, &tp->tls.ca_certificates) != 0 ||
        mp_get_bool(c, t, "insecureSkipVerify", path, &tp->tls.insecure_skip_verify, NULL) != 0)
        goto out;
    const char *cert = tp->tls.client_certificate, *key = tp->tls.private_key,
               *ca = tp->tls.ca_certificates;
    tp->tls.mode = MESH_TLS_DISABLE; /* the enum's zero value */
    if (mode) {
        int k;
        if (mp_tls_mode(c, path, mode, modes, sizeof modes / sizeof modes[0], &k) != 0)
            goto out;
        tp->tls.mode = (mesh_client_tls_mode)k;
    }
    bool has_cred = tp->tls.credential_name && *tp->tls.credential_name;
    if (tp->tls.mode == MESH_TLS_MUTUAL && !has_cred) {
        if (!cert || !*cert) {
            mp_fail(c, path, "client certificate required for mutual tls");
            goto out;
        }
        if (!key || !*key) {
            mp_fail(c, path, "private key required for mutual tls");
            goto out;
        }
    }
    if (tp->tls.mode == MESH_TLS_ISTIO_MUTUAL && (cert || key || ca || has_cred)) {
        mp_fail(c, path,
                "cannot specify client certificates or CA certificate or credentialName "
                "if mode is ISTIO_MUTUAL");
        goto out;
    }
    rc = 0;
out:
    free(mode);
    return rc;
}

/* One traffic policy; port_out non-NULL only at the top level (portLevelSettings). */
static int parse_traffic_policy(mp_ctx *c, const cJSON *t, const char *path,
                                mesh_traffic_policy *tp, mesh_port_traffic_policy **port_out,
                                size_t *nport_out)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *o, *o2, *arr, *it;
    size_t i;

    tp->connection_pool.tcp_max_connections = -1;
    tp->connection_pool.tcp_connect_timeout_ns = -1;
    tp->connection_pool.http1_max_pending_requests = -1;
    tp->connection_pool.http2_max_requests = -1;
    tp->connection_pool.max_requests_per_connection = -1;
    tp->connection_pool.max_retries = -1;
    tp->connection_pool.idle_timeout_ns = -1;
    tp->outlier_detection.consecutive_5xx_errors = -1;
    tp->outlier_detection.consecutive_gateway_errors = -1;
    tp->outlier_detection.interval_ns = -1;
    tp->outlier_detection.base_ejection_time_ns = -1;
    tp->outlier_detection.max_ejection_percent = -1;

    if (mp_require_obj(c, t, path) != 0)
        return -1;
    if (mp_get_obj(c, t, "loadBalancer", path, &o) != 0)
        return -1;
    if (o && parse_lb(c, o, mp_path(p, path, "loadBalancer"), tp) != 0)
        return -1;

    if (mp_get_obj(c, t, "connectionPool", path, &o) != 0)
        return -1;
    if (o) {
        mp_path(p, path, "connectionPool");
        tp->has_connection_pool = true;
        if (mp_get_obj(c, o, "tcp", p, &o2) != 0)
            return -1;
        if (o2) {
            mp_path(p2, p, "tcp");
            if (get_i32(c, o2, "maxConnections", p2, 0, INT32_MAX,
                        &tp->connection_pool.tcp_max_connections) != 0 ||
                mp_get_duration(c, o2, "connectTimeout", p2, MS,
                                &tp->connection_pool.tcp_connect_timeout_ns, NULL) != 0)
                return -1;
        }
        if (mp_get_obj(c, o, "http", p, &o2) != 0)
            return -1;
        if (o2) {
            mp_path(p2, p, "http");
            if (get_i32(c, o2, "http1MaxPendingRequests", p2, 0, INT32_MAX,
                        &tp->connection_pool.http1_max_pending_requests) != 0 ||
                get_i32(c, o2, "http2MaxRequests", p2, 0, INT32_MAX,
                        &tp->connection_pool.http2_max_requests) != 0 ||
                get_i32(c, o2, "maxRequestsPerConnection", p2, 0, INT32_MAX,
                        &tp->connection_pool.max_requests_per_connection) != 0 ||
                get_i32(c, o2, "maxRetries", p2, 0, INT32_MAX, &tp->connection_pool.max_retries) !=
                    0 ||
                mp_get_duration(c, o2, "idleTimeout", p2, MS, &tp->connection_pool.idle_timeout_ns,
                                NULL) != 0)
                return -1;
        }
    }

    if (mp_get_obj(c, t, "outlierDetection", path, &o) != 0)
        return -1;
    if (o) {
        int32_t legacy = -1;
        int32_t min_health = -1;
        mp_path(p, path, "outlierDetection");
        tp->has_outlier_detection = true;
        if (get_i32(c, o, "consecutiveErrors", p, 0, INT32_MAX, &legacy) != 0 ||
            get_i32(c, o, "consecutive5xxErrors", p, 0, INT32_MAX,
                    &tp->outlier_detection.consecutive_5xx_errors) != 0 ||
            get_i32(c, o, "consecutiveGatewayErrors", p, 0, INT32_MAX,
                    &tp->outlier_detection.consecutive_gateway_errors) != 0 ||
            mp_get_duration(c, o, "interval", p, MS, &tp->outlier_detection.interval_ns, NULL) !=
                0 ||
            mp_get_duration(c, o, "baseEjectionTime", p, MS,
                            &tp->outlier_detection.base_ejection_time_ns, NULL) != 0 ||
            get_i32(c, o, "maxEjectionPercent", p, 0, 100,
                    &tp->outlier_detection.max_ejection_percent) != 0 ||
            get_i32(c, o, "minHealthPercent", p, 0, 100, &min_health) != 0)
            return -1;
        /* Istio maps the deprecated consecutiveErrors onto gateway errors. */
        if (legacy >= 0 && tp->outlier_detection.consecutive_gateway_errors < 0)
            tp->outlier_detection.consecutive_gateway_errors = legacy;
    }

    if (mp_get_obj(c, t, "tls", path, &o) != 0)
        return -1;
    if (o && parse_tls_client(c, o, mp_path(p, path, "tls"), tp) != 0)
        return -1;

    if (!port_out)
        return 0;
    if (mp_get_arr(c, t, "portLevelSettings", path, &arr) != 0)
        return -1;
    if (!arr || !arr->child)
        return 0;
    *port_out = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof **port_out);
    FOR_EACH_OBJ(c, arr, path, "portLevelSettings", i, it)
    {
        mesh_port_traffic_policy *pp = &(*port_out)[i];
        bool have = false;
        *nport_out = i + 1;
        mp_pathi(p, path, "portLevelSettings", i);
        if (mp_require_obj(c, it, p) != 0 || mp_get_obj(c, it, "port", p, &o) != 0)
            return -1;
        if (o && mp_get_port(c, o, "number", mp_path(p2, p, "port"), &pp->port, &have) != 0)
            return -1;
        if (!have)
            return mp_fail(c, mp_path(p2, p, "port"), "portTrafficPolicy must have valid port");
        for (size_t k = 0; k < i; k++)
            if ((*port_out)[k].port == pp->port)
                return mp_fail(c, mp_path(p2, p, "port"), "duplicate port %u in portLevelSettings",
                               (unsigned)pp->port);
        if (parse_traffic_policy(c, it, p, &pp->policy, NULL, NULL) != 0)
            return -1;
    }
    return 0;
}

int mp_parse_destination_rule(mp_ctx *c, const cJSON *obj, mesh_destination_rule *o)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *spec, *t, *arr, *it, *ws;
    size_t i;

    if (mp_get_spec(c, obj, &spec) != 0)
        return -1;
    if (mp_get_str(c, spec, "host", "spec", &o->host) != 0)
        return -1;
    if (!o->host || !*o->host)
        return mp_fail(c, "spec.host", "destination rule must have a host");
    const char *why = mp_check_wildcard_domain(o->host);
    if (why)
        return mp_fail(c, "spec.host", "%s: %.128s", why, o->host);
    o->fqdn_host = mesh_resolve_host(o->host, c->ns, c->domain);

    if (mp_get_obj(c, spec, "trafficPolicy", "spec", &t) != 0)
        return -1;
    if (t) {
        o->policy = xcalloc(1, sizeof *o->policy);
        if (parse_traffic_policy(c, t, "spec.trafficPolicy", o->policy, &o->port_policies,
                                 &o->nport_policies) != 0)
            return -1;
    }

    if (mp_get_arr(c, spec, "subsets", "spec", &arr) != 0)
        return -1;
    if (arr && arr->child) {
        o->subsets = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->subsets);
        FOR_EACH_OBJ(c, arr, "spec", "subsets", i, it)
        {
            mesh_subset *s = &o->subsets[i];
            o->nsubsets = i + 1;
            mp_pathi(p, "spec", "subsets", i);
            if (mp_require_obj(c, it, p) != 0 || mp_get_str(c, it, "name", p, &s->name) != 0)
                return -1;
            if (!s->name || !mp_is_dns1123_label(s->name))
                return mp_fail(c, mp_path(p2, p, "name"), "subset name is invalid: %.64s",
                               s->name ? s->name : "");
            for (size_t k = 0; k < i; k++)
                if (strcmp(o->subsets[k].name, s->name) == 0)
                    return mp_fail(c, mp_path(p2, p, "name"), "duplicate subset name %.64s",
                                   s->name);
            if (mp_get_labels(c, it, "labels", p, &s->labels) != 0 ||
                mp_get_obj(c, it, "trafficPolicy", p, &t) != 0)
                return -1;
            if (t) {
                s->policy = xcalloc(1, sizeof *s->policy);
                if (parse_traffic_policy(c, t, mp_path(p2, p, "trafficPolicy"), s->policy, NULL,
                                         NULL) != 0)
                    return -1;
            }
        }
    }
    if (mp_get_obj(c, spec, "workloadSelector", "spec", &ws) != 0)
        return -1;
    o->has_workload_selector = ws != NULL;
    if (ws &&
        mp_get_labels(c, ws, "matchLabels", "spec.workloadSelector", &o->workload_selector) != 0)
        return -1;
    if (ws && mp_check_selector(c, "spec.workloadSelector.matchLabels", &o->workload_selector) != 0)
        return -1;
    if (ws && o->workload_selector.n == 0)
        mp_warn(c, "spec.workloadSelector", "workload selector specified without labels");
    return mp_parse_export_to(c, spec, &o->export_to, &o->nexport_to);
}
