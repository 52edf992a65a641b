/* parse_sidecar: Sidecar (networking.istio.io v1, v1beta1, v1alpha3): workloadSelector,
 * ingress and egress listeners, outboundTrafficPolicy and inboundConnectionPool, validated
 * as istiod's ValidateSidecar (pkg/config/validation/validation.go) with its helpers for
 * ports, binds, Unix addresses, server TLS, connection pools and "namespace/dnsName"
 * hosts, the reasons worded like Istio's. The first error wins (istiod joins them all);
 * what istiod only warns about goes through mp_warn.
 *
 * Label-like names here (port names, host namespaces, host labels) follow istiod's
 * labels.IsDNS1123Label, which accepts upper case, unlike the Kubernetes rule that
 * mp_is_dns1123_label applies to object names. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

#define MS (1000000LL)
#define UNIX_PREFIX "unix://"

/* ---- istiod's predicates ---------------------------------------------------------------- */

/* labels.IsDNS1123Label: [a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?, at most 63 bytes. */
static bool label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* labels.IsWildcardDNS1123Label: "*", or a label with an optional "*" or "*-" before it. */
static bool wildcard_label_ok(const char *s, size_t n)
{
    if (n == 1 && s[0] == '*')
        return true;
    if (n > 63)
        return false;
    if (n >= 2 && s[0] == '*' && s[1] == '-')
        return label_ok(s + 2, n - 2);
    if (n >= 1 && s[0] == '*')
        return label_ok(s + 1, n - 1);
    return label_ok(s, n);
}

/* strconv.Atoi: an optional sign and decimal digits. 0, or -1 with the reason in why. */
static int go_atoi(const char *s, long long *out, char *why, size_t n)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p || strspn(p, "0123456789") != strlen(p)) {
        snprintf(why, n, "strconv.Atoi: parsing \"%.64s\": invalid syntax", s);
        return -1;
    }
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) {
        snprintf(why, n, "strconv.Atoi: parsing \"%.64s\": value out of range", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* agent.ValidateDNS1123Labels on d (the whole name is quoted in the reasons as full). */
static bool dns_labels_ok(const char *full, const char *d, char *why, size_t n)
{
    const char *last = strrchr(d, '.');
    const char *tld = last ? last + 1 : d;
    long long ignored;
    char tmp[8];
    if (go_atoi(tld, &ignored, tmp, sizeof tmp) == 0) {
        snprintf(why, n,
                 "domain name \"%.128s\" invalid (top level domain \"%.64s\" cannot be "
                 "all-numeric)",
                 full, tld);
        return false;
    }
    for (const char *p = d;;) {
        const char *dot = strchr(p, '.');
        size_t ln = dot ? (size_t)(dot - p) : strlen(p);
        if (!dot && ln == 0)
            return true; /* a trailing dot: "istio.io." */
        if (!label_ok(p, ln)) {
            snprintf(why, n, "domain name \"%.128s\" invalid (label \"%.*s\" invalid)", full,
                     (int)(ln > 64 ? 64 : ln), p);
            return false;
        }
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static bool dns_preconditions_ok(const char *name, char *why, size_t n)
{
    if (strlen(name) > 255) {
        snprintf(why, n, "domain name \"%.128s...\" too long (max 255)", name);
        return false;
    }
    if (!*name) {
        snprintf(why, n, "empty domain name not allowed");
        return false;
    }
    return true;
}

/* agent.ValidateFQDN */
static bool fqdn_ok(const char *name, char *why, size_t n)
{
    return dns_preconditions_ok(name, why, n) && dns_labels_ok(name, name, why, n);
}

/* agent.ValidateWildcardDomain: a wildcard only in the first label. */
static bool wildcard_domain_ok(const char *name, char *why, size_t n)
{
    if (!dns_preconditions_ok(name, why, n))
        return false;
    const char *dot = strchr(name, '.');
    size_t ln = dot ? (size_t)(dot - name) : strlen(name);
    if (!wildcard_label_ok(name, ln)) {
        snprintf(why, n, "domain name \"%.128s\" invalid (label \"%.*s\" invalid)", name,
                 (int)(ln > 64 ? 64 : ln), name);
        return false;
    }
    return dot ? dns_labels_ok(name, dot + 1, why, n) : true;
}

/* ValidateUnixAddress (addr without the unix:// prefix). */
static bool unix_address_ok(const char *addr, char *why, size_t n)
{
    size_t len = strlen(addr);
    if (len == 0) {
        snprintf(why, n, "unix address must not be empty");
        return false;
    }
    if (addr[0] == '@')
        return true; /* a Linux abstract socket */
    if (addr[0] != '/' || addr[len - 1] == '/') {
        snprintf(why, n, "%.128s is not an absolute path to a file", addr);
        return false;
    }
    return true;
}

/* Go's net.SplitHostPort, with its AddrError wording. host and port point into buf. */
static bool split_host_port(const char *hp, char *buf, size_t buflen, const char **host,
                            const char **port, char *why, size_t n)
{
    const char *last = strrchr(hp, ':');
    size_t len = strlen(hp), j = 0, k = 0;
    const char *reason = NULL;

    if (len >= buflen) {
        reason = "address too long";
        goto out;
    }
    memcpy(buf, hp, len + 1);
    if (!last) {
        reason = "missing port in address";
        goto out;
    }
    size_t i = (size_t)(last - hp);
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end) {
            reason = "missing ']' in address";
            goto out;
        }
        size_t e = (size_t)(end - hp);
        if (e + 1 == len) {
            reason = "missing port in address";
            goto out;
        }
        if (e + 1 != i) {
            reason = hp[e + 1] == ':' ? "too many colons in address" : "missing port in address";
            goto out;
        }
        buf[e] = '\0';
        *host = buf + 1;
        j = 1;
        k = e + 1;
    } else {
        buf[i] = '\0';
        *host = buf;
        if (strchr(buf, ':')) {
            reason = "too many colons in address";
            goto out;
        }
    }
    if (strchr(hp + j, '[')) {
        reason = "unexpected '[' in address";
        goto out;
    }
    if (strchr(hp + k, ']')) {
        reason = "unexpected ']' in address";
        goto out;
    }
    *port = buf + i + 1;
out:
    if (reason)
        snprintf(why, n, "address %.128s: %s", hp, reason);
    return reason == NULL;
}

/* ---- typed getters with istiod's messages ---------------------------------------------- */

/* agent.ValidateDuration on a duration that is present. */
static int check_duration(mp_ctx *c, const char *path, const char *key, int64_t ns)
{
    char p[MP_PATH_MAX];
    if (ns < MS)
        return mp_fail(c, mp_path(p, path, key), "duration must be greater than 1ms");
    if (ns % MS != 0)
        return mp_fail(c, mp_path(p, path, key), "only durations to ms precision are supported");
    return 0;
}

/* A present duration is checked; *out stays -1 when absent. */
static int get_duration(mp_ctx *c, const cJSON *o, const char *key, const char *path, int64_t *out)
{
    bool have = false;
    *out = -1;
    if (mp_get_duration(c, o, key, path, 0, out, &have) != 0)
        return -1;
    return have ? check_duration(c, path, key, *out) : 0;
}

/* An int32 field that istiod requires to be non-negative (reason given); -1 when absent. */
static int get_nonneg(mp_ctx *c, const cJSON *o, const char *key, const char *path, int32_t *out,
                      const char *reason)
{
    char p[MP_PATH_MAX];
    int64_t v = -1;
    bool have = false;
    *out = -1;
    if (mp_get_int(c, o, key, path, INT32_MIN, INT32_MAX, &v, &have) != 0)
        return -1;
    if (have && v < 0)
        return mp_fail(c, mp_path(p, path, key), "%s", reason);
    if (have)
        *out = (int32_t)v;
    return 0;
}

/* An enum given by name (or by number, as protobuf JSON allows). */
static int get_enum(mp_ctx *c, const cJSON *o, const char *key, const char *path,
                    const char *const *names, size_t n, int *out)
{
    char p[MP_PATH_MAX];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)n &&
        v->valuedouble == (double)(int)v->valuedouble) {
        *out = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v))
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], v->valuestring) == 0) {
                *out = (int)i;
                return 0;
            }
    if (cJSON_IsString(v))
        return mp_fail(c, mp_path(p, path, key), "unknown value %.64s", v->valuestring);
    return mp_fail(c, mp_path(p, path, key), "must be a string");
}

/* ---- connection pool (validateConnectionPool) ----------------------------------------- */

static int parse_conn_pool(mp_ctx *c, const cJSON *o, const char *path, mesh_conn_pool *cp)
{
    static const char *const h2_policies[] = {"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"};
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *tcp, *http, *ka;
    int64_t probes = -1;

    cp->tcp_keepalive_probes = -1;
    cp->tcp_keepalive_time_ns = cp->tcp_keepalive_interval_ns = -1;
    if (mp_get_obj(c, o, "tcp", path, &tcp) != 0 || mp_get_obj(c, o, "http", path, &http) != 0)
        return -1;
    if (!tcp && !http)
        return mp_fail(c, path, "connection pool must have at least one field");
    cp->has_tcp = tcp != NULL;
    cp->has_http = http != NULL;
    mp_path(p, path, "http");
    if (get_nonneg(c, http, "http1MaxPendingRequests", p, &cp->http1_max_pending_requests,
                   "http1 max pending requests must be non-negative") != 0 ||
        get_nonneg(c, http, "http2MaxRequests", p, &cp->http2_max_requests,
                   "http2 max requests must be non-negative") != 0 ||
        get_nonneg(c, http, "maxRequestsPerConnection", p, &cp->max_requests_per_connection,
                   "max requests per connection must be non-negative") != 0 ||
        get_nonneg(c, http, "maxRetries", p, &cp->max_retries,
                   "max retries must be non-negative") != 0 ||
        get_duration(c, http, "idleTimeout", p, &cp->http_idle_timeout_ns) != 0 ||
        get_enum(c, http, "h2UpgradePolicy", p, h2_policies, 3, &cp->h2_upgrade_policy) != 0 ||
        mp_get_bool(c, http, "useClientProtocol", p, &cp->use_client_protocol, NULL) != 0)
        return -1;
    if (cp->h2_upgrade_policy == 2 && cp->use_client_protocol)
        return mp_fail(c, p,
                       "use client protocol must not be true when H2UpgradePolicy is UPGRADE");
    if (get_nonneg(c, http, "maxConcurrentStreams", p, &cp->max_concurrent_streams,
                   "max concurrent streams must be non-negative") != 0 ||
        mp_get_obj(c, http, "http2KeepAlive", p, &ka) != 0)
        return -1;
    if (ka) {
        int64_t iv = -1, to = -1;
        mp_path(p2, p, "http2KeepAlive");
        if (get_duration(c, ka, "interval", p2, &iv) != 0)
            return -1;
        if (iv < 0)
            return mp_fail(c, p2, "http2 keepalive interval is required");
        if (get_duration(c, ka, "timeout", p2, &to) != 0)
            return -1;
        if (to < 0)
            return mp_fail(c, p2, "http2 keepalive timeout is required");
    }

    mp_path(p, path, "tcp");
    if (get_nonneg(c, tcp, "maxConnections", p, &cp->tcp_max_connections,
                   "max connections must be non-negative") != 0 ||
        get_duration(c, tcp, "connectTimeout", p, &cp->tcp_connect_timeout_ns) != 0 ||
        get_duration(c, tcp, "maxConnectionDuration", p, &cp->tcp_max_connection_duration_ns) != 0)
        return -1;
    /* idleTimeout "0s" disables the timeout: istiod skips the check then. */
    bool have = false;
    cp->tcp_idle_timeout_ns = -1;
    if (mp_get_duration(c, tcp, "idleTimeout", p, 0, &cp->tcp_idle_timeout_ns, &have) != 0)
        return -1;
    if (have && cp->tcp_idle_timeout_ns / MS != 0 &&
        check_duration(c, p, "idleTimeout", cp->tcp_idle_timeout_ns) != 0)
        return -1;
    if (mp_get_obj(c, tcp, "tcpKeepalive", p, &ka) != 0)
        return -1;
    if (ka) {
        mp_path(p2, p, "tcpKeepalive");
        if (mp_get_int(c, ka, "probes", p2, 0, UINT32_MAX, &probes, NULL) != 0 ||
            get_duration(c, ka, "time", p2, &cp->tcp_keepalive_time_ns) != 0 ||
            get_duration(c, ka, "interval", p2, &cp->tcp_keepalive_interval_ns) != 0)
            return -1;
        cp->tcp_keepalive_probes = probes;
    }
    return 0;
}

static int get_conn_pool(mp_ctx *c, const cJSON *o, const char *key, const char *path,
                         mesh_conn_pool **out)
{
    char p[MP_PATH_MAX];
    const cJSON *cp;
    if (mp_get_obj(c, o, key, path, &cp) != 0)
        return -1;
    if (!cp)
        return 0;
    *out = xcalloc(1, sizeof **out);
    return parse_conn_pool(c, cp, mp_path(p, path, key), *out);
}

/* ---- ports and binds ---------------------------------------------------------------- */

/* port {number, protocol, name, targetPort}; istiod's port name and protocol checks, and
 * the port range unless zero_ok (egress Unix domain socket listeners). */
static int parse_port(mp_ctx *c, const cJSON *po, const char *path, mesh_sidecar_port *sp,
                      int64_t *target_port)
{
    char p[MP_PATH_MAX];
    int64_t num = 0;
    if (mp_get_int(c, po, "number", path, 0, UINT32_MAX, &num, NULL) != 0 ||
        mp_get_int(c, po, "targetPort", path, 0, UINT32_MAX, target_port, NULL) != 0 ||
        mp_get_str(c, po, "protocol", path, &sp->protocol_name) != 0 ||
        mp_get_str(c, po, "name", path, &sp->name) != 0)
        return -1;
    sp->number = (uint32_t)num;
    if (sp->protocol_name && *sp->protocol_name) {
        /* istiod's protocol.Parse also knows HTTP_PROXY, an HTTP listener to us. */
        sp->protocol = strcasecmp(sp->protocol_name, "http_proxy") == 0
                           ? MESH_PROTO_HTTP
                           : mesh_protocol_parse(sp->protocol_name);
    }
    if (*target_port > 0)
        return mp_fail(c, mp_path(p, path, "targetPort"), "targetPort has no impact on Sidecars");
    if (sp->name && *sp->name && !label_ok(sp->name, strlen(sp->name)))
        return mp_fail(c, mp_path(p, path, "name"), "invalid port name: %.64s", sp->name);
    if (sp->protocol_name && *sp->protocol_name && sp->protocol == MESH_PROTO_UNSUPPORTED)
        return mp_fail(c, mp_path(p, path, "protocol"), "unsupported protocol: %.64s",
                       sp->protocol_name);
    return 0;
}

static int check_port_range(mp_ctx *c, const char *path, long long port)
{
    if (port < 1 || port > 65535)
        return mp_fail(c, path, "port number %lld must be in the range 1..65535", port);
    return 0;
}

static int check_ip(mp_ctx *c, const char *path, const char *bind)
{
    /* netip.ParseAddr, which inet_pton matches but for IPv6 zones ("fe80::1%eth0") */
    if (!mp_is_ip(bind))
        return mp_fail(c, path, "%.128s is not a valid IP", bind);
    return 0;
}

static int get_capture_mode(mp_ctx *c, const cJSON *o, const char *path, mesh_capture_mode *out)
{
    static const char *const modes[] = {"DEFAULT", "IPTABLES", "NONE"};
    int m = 0;
    if (get_enum(c, o, "captureMode", path, modes, 3, &m) != 0)
        return -1;
    *out = (mesh_capture_mode)m;
    return 0;
}

/* ---- ingress -------------------------------------------------------------------------- */

static int check_default_endpoint(mp_ctx *c, const char *path, const char *ep)
{
    char why[320], buf[256];
    const char *host = "", *port = "";
    long long pn = 0;

    if (util_has_prefix(ep, UNIX_PREFIX)) {
        if (!unix_address_ok(ep + strlen(UNIX_PREFIX), why, sizeof why))
            return mp_fail(c, path, "%s", why);
        return 0;
    }
    if (!split_host_port(ep, buf, sizeof buf, &host, &port, why, sizeof why))
        return mp_fail(c, path, "%s", why);
    if (*host && strcmp(host, "127.0.0.1") != 0 && strcmp(host, "0.0.0.0") != 0 &&
        strcmp(host, "::1") != 0 && strcmp(host, "::") != 0)
        return mp_fail(c, path,
                       "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
                       "[::1]:port,[::]:port,unix://filepath or unset");
    if (go_atoi(port, &pn, why, sizeof why) != 0)
        return mp_fail(c, path, "sidecar: defaultEndpoint port (%.64s) is not a number: %s", port,
                       why);
    return check_port_range(c, path, pn);
}

/* Go's %v of []string, sorted and deduplicated: "[a b]". */
static void fmt_list(char *buf, size_t n, char **v, size_t nv)
{
    size_t off = 0;
    qsort(v, nv, sizeof *v, util_strp_cmp);
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (size_t i = 0; i < nv && off < n; i++) {
        if (i && strcmp(v[i], v[i - 1]) == 0)
            continue;
        off += (size_t)snprintf(buf + off, n - off, "%s%.64s", off > 1 ? " " : "", v[i]);
    }
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

static bool cipher_ok(const char *cs)
{
    /* the BoringSSL names istiod accepts (pkg/config/security ValidCipherSuites) */
    static const char *const valid[] = {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    };
    /* "", "ALL" and expressions ("-AES128-SHA", "+...") pass unjudged, as in istiod */
    if (!*cs || strcmp(cs, "ALL") == 0 || !isalnum((unsigned char)cs[0]))
        return true;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (strcmp(valid[i], cs) == 0)
            return true;
    return false;
}

/* The cipher suite warnings of validateTLSOptions. */
static void warn_ciphers(mp_ctx *c, const char *path, char **cs, size_t n)
{
    char **bad = n ? xcalloc(n, sizeof *bad) : NULL, **dup = n ? xcalloc(n, sizeof *dup) : NULL;
    size_t nbad = 0, ndup = 0;
    char list[512];
    for (size_t i = 0; i < n; i++) {
        if (!cipher_ok(cs[i])) {
            bad[nbad++] = cs[i];
            continue;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(cs[k], cs[i]) == 0 && cipher_ok(cs[k])) {
                dup[ndup++] = cs[i];
                break;
            }
    }
    if (nbad) {
        fmt_list(list, sizeof list, bad, nbad);
        mp_warn(c, path, "ignoring invalid cipher suites: %s", list);
    }
    if (ndup) {
        fmt_list(list, sizeof list, dup, ndup);
        mp_warn(c, path, "ignoring duplicate cipher suites: %s", list);
    }
    free(bad);
    free(dup);
}

static int parse_ingress_tls(mp_ctx *c, const cJSON *t, const char *path, mesh_sidecar_ingress *in)
{
    static const char *const modes[] = {"PASSTHROUGH",      "SIMPLE",       "MUTUAL",
                                        "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"};
    static const char *const versions[] = {"TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"};
    /* mesh_server_tls_mode of each ServerTLSSettings.TLSmode value */
    static const mesh_server_tls_mode mode_of[] = {
        MESH_SERVER_TLS_PASSTHROUGH,  MESH_SERVER_TLS_SIMPLE,
        MESH_SERVER_TLS_MUTUAL,       MESH_SERVER_TLS_AUTO_PASSTHROUGH,
        MESH_SERVER_TLS_ISTIO_MUTUAL, MESH_SERVER_TLS_OPTIONAL_MUTUAL};
    char p[MP_PATH_MAX];
    char *cred = NULL, **sans = NULL, **creds = NULL;
    size_t nsans = 0, ncreds = 0;
    const cJSON *certs = NULL;
    bool redirect = false;
    int mode = 0, rc = -1;

    in->has_tls = true;
    if (get_enum(c, t, "mode", path, modes, 6, &mode) != 0 ||
        mp_get_bool(c, t, "httpsRedirect", path, &redirect, NULL) != 0 ||
        mp_get_str(c, t, "serverCertificate", path, &in->tls.server_certificate) != 0 ||
        mp_get_str(c, t, "privateKey", path, &in->tls.private_key) != 0 ||
        mp_get_str(c, t, "caCertificates", path, &in->tls.ca_certificates) != 0 ||
        mp_get_str(c, t, "caCrl", path, &in->tls.ca_crl) != 0 ||
        mp_get_str(c, t, "credentialName", path, &cred) != 0 ||
        mp_get_strv(c, t, "credentialNames", path, &creds, &ncreds) != 0 ||
        mp_get_arr(c, t, "tlsCertificates", path, &certs) != 0 ||
        mp_get_strv(c, t, "subjectAltNames", path, &sans, &nsans) != 0 ||
        mp_get_strv(c, t, "cipherSuites", path, &in->tls.cipher_suites, &in->tls.ncipher_suites) !=
            0 ||
        get_enum(c, t, "minProtocolVersion", path, versions, 5, &in->tls.min_protocol_version) !=
            0 ||
        get_enum(c, t, "maxProtocolVersion", path, versions, 5, &in->tls.max_protocol_version) != 0)
        goto out;
    in->tls.mode = mode_of[mode];
    if (nsans) {
        mp_fail(c, mp_path(p, path, "subjectAltNames"),
                "sidecar: subjectAltNames is not supported in ingress tls");
        goto out;
    }
    if (redirect) {
        mp_fail(c, mp_path(p, path, "httpsRedirect"), "sidecar: httpsRedirect is not supported");
        goto out;
    }
    if (cred && *cred) {
        mp_fail(c, mp_path(p, path, "credentialName"),
                "sidecar: credentialName is not currently supported");
        goto out;
    }
    if (ncreds) {
        mp_fail(c, mp_path(p, path, "credentialNames"),
                "sidecar: credentialNames is not currently supported");
        goto out;
    }
    if (certs && cJSON_GetArraySize(certs) > 0) {
        mp_fail(c, mp_path(p, path, "tlsCertificates"),
                "sidecar: tls_certificates is not currently supported");
        goto out;
    }
    if (in->tls.mode == MESH_SERVER_TLS_ISTIO_MUTUAL ||
        in->tls.mode == MESH_SERVER_TLS_AUTO_PASSTHROUGH) {
        mp_fail(c, mp_path(p, path, "mode"),
                "configuration is invalid: cannot set mode to %s in sidecar ingress tls",
                modes[mode]);
        goto out;
    }
    if (in->port.protocol != MESH_PROTO_HTTPS && in->port.protocol != MESH_PROTO_TLS) {
        mp_fail(c, path, "server cannot have TLS settings for non HTTPS/TLS ports");
        goto out;
    }

    /* validateTLSOptions, less what the checks above already refused */
    if ((in->tls.min_protocol_version == 1 || in->tls.min_protocol_version == 2) &&
        !in->tls.ncipher_suites)
        mp_warn(
            c, mp_path(p, path, "minProtocolVersion"),
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they no "
            "longer include compatible ciphers.");
    warn_ciphers(c, mp_path(p, path, "cipherSuites"), in->tls.cipher_suites,
                 in->tls.ncipher_suites);
    const char *cert = in->tls.server_certificate, *key = in->tls.private_key,
               *ca = in->tls.ca_certificates, *crl = in->tls.ca_crl;
    bool any_cert = (cert && *cert) || (key && *key) || (ca && *ca) || (crl && *crl);
    if (in->tls.mode == MESH_SERVER_TLS_PASSTHROUGH && any_cert)
        mp_warn(c, path, "PASSTHROUGH mode does not use certificates, they will be ignored");
    if (in->tls.mode != MESH_SERVER_TLS_PASSTHROUGH) {
        const char *pfx = in->tls.mode == MESH_SERVER_TLS_SIMPLE ? "SIMPLE TLS" : "MUTUAL TLS";
        if (in->tls.mode != MESH_SERVER_TLS_SIMPLE && (!ca || !*ca)) {
            mp_fail(c, path, "%s requires a client CA bundle", pfx);
            goto out;
        }
        if (!cert || !*cert) {
            mp_fail(c, path, "%s requires a server certificate", pfx);
            goto out;
        }
        if (!key || !*key) {
            mp_fail(c, path, "%s requires a private key", pfx);
            goto out;
        }
    }
    if (crl && *crl && in->tls.mode == MESH_SERVER_TLS_SIMPLE) {
        mp_fail(c, mp_path(p, path, "caCrl"), "CRL is not supported with SIMPLE TLS");
        goto out;
    }
    rc = 0;
out:
    free(cred);
    util_strv_free(sans, nsans);
    util_strv_free(creds, ncreds);
    return rc;
}

static int parse_ingress(mp_ctx *c, const cJSON *it, const char *path, mesh_sidecar_ingress *in,
                         const mesh_sidecar *sc, size_t idx)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *po, *t;
    int64_t target = 0;

    if (cJSON_IsNull(it))
        return mp_fail(c, path, "sidecar: ingress may not be null");
    if (mp_require_obj(c, it, path) != 0 || mp_get_obj(c, it, "port", path, &po) != 0)
        return -1;
    if (!po)
        return mp_fail(c, path, "sidecar: port is required for ingress listeners");
    mp_path(p, path, "port");
    if (parse_port(c, po, p, &in->port, &target) != 0)
        return -1;
    if (check_port_range(c, mp_path(p2, p, "number"), in->port.number) != 0)
        return -1;
    if (mp_get_str(c, it, "bind", path, &in->bind) != 0)
        return -1;
    if (in->bind && *in->bind && check_ip(c, mp_path(p, path, "bind"), in->bind) != 0)
        return -1;
    for (size_t k = 0; k < idx; k++)
        if (sc->ingress[k].port.number == in->port.number)
            return mp_fail(c, mp_path(p, path, "port"),
                           "sidecar: ports on IP bound listeners must be unique");
    if (get_capture_mode(c, it, path, &in->capture_mode) != 0 ||
        mp_get_str(c, it, "defaultEndpoint", path, &in->default_endpoint) != 0)
        return -1;
    if (in->default_endpoint && *in->default_endpoint &&
        check_default_endpoint(c, mp_path(p, path, "defaultEndpoint"), in->default_endpoint) != 0)
        return -1;
    if (mp_get_obj(c, it, "tls", path, &t) != 0)
        return -1;
    if (t && parse_ingress_tls(c, t, mp_path(p, path, "tls"), in) != 0)
        return -1;
    if (get_conn_pool(c, it, "connectionPool", path, &in->connection_pool) != 0)
        return -1;
    if (in->connection_pool && in->connection_pool->has_http &&
        !mesh_protocol_is_http(in->port.protocol))
        mp_warn(c, mp_path(p, path, "connectionPool.http"),
                "sidecar: HTTP connection pool settings are configured for port %u (\"%.64s\") "
                "but its protocol is not HTTP (%.64s); only TCP settings will apply",
                (unsigned)in->port.number, in->port.name ? in->port.name : "",
                in->port.protocol_name ? in->port.protocol_name : "");
    return 0;
}

/* ---- egress --------------------------------------------------------------------------- */

/* agent.ValidateNamespaceSlashWildcardHostname(h, isGateway=false), then the split. */
static int parse_egress_host(mp_ctx *c, const char *path, const char *h, mesh_sidecar_host *out)
{
    char why[320];
    const char *slash = strchr(h, '/');
    if (!slash)
        return mp_fail(c, path, "host must be of form namespace/dnsName");
    size_t nsl = (size_t)(slash - h);
    const char *dns = slash + 1;
    if (nsl == 0 || !*dns)
        return mp_fail(c, path, "config namespace and dnsName in host entry cannot be empty");
    bool exclude = h[0] == '~';
    const char *ns = exclude ? h + 1 : h;
    size_t nl = exclude ? nsl - 1 : nsl;
    bool any = nl == 0 || (nl == 1 && ns[0] == '*');
    bool here = nl == 1 && ns[0] == '.';
    if (!any && !here && !label_ok(ns, nl))
        return mp_fail(c, path, "invalid namespace value \"%.*s\" in sidecar",
                       (int)(nsl > 64 ? 64 : nsl), h);
    /* validateSidecarOrGatewayHostnamePart */
    if (strcmp(dns, "*") != 0 && !strchr(dns, '.'))
        return mp_fail(c, path, "short names (non FQDN) are not allowed");
    if (!wildcard_domain_ok(dns, why, sizeof why))
        return mp_fail(c, path, "%s", why);
    if (strchr(dns, '*') && strlen(dns) != 1 && !util_has_prefix(dns, "*."))
        return mp_fail(c, path, "partial wildcard \"%.128s\" not allowed", dns);
    out->exclude = exclude;
    out->dot = here;
    out->ns = any ? xstrdup("*") : here ? xstrdup(c->ns) : xstrndup(ns, nl);
    out->host = xstrdup(dns);
    return 0;
}

/* istiod's duplicate-host warnings over one listener's hosts (inclusions only; "." already
 * resolved to the Sidecar's namespace). */
static void warn_duplicate_hosts(mp_ctx *c, const char *path, const mesh_sidecar_egress *e,
                                 char *const *raw)
{
    char p[MP_PATH_MAX];
    bool all = false, other_ns = false;
    for (size_t i = 0; i < e->nhosts; i++) {
        const mesh_sidecar_host *h = &e->hosts[i];
        if (h->exclude)
            continue;
        bool seen_ns = false, dup = false;
        for (size_t k = 0; k < i; k++) {
            const mesh_sidecar_host *o = &e->hosts[k];
            if (o->exclude || strcmp(o->ns, h->ns) != 0)
                continue;
            seen_ns = true;
            if (strcmp(h->host, "*") != 0 &&
                (strcmp(o->host, h->host) == 0 || strcmp(o->host, "*") == 0))
                dup = true;
        }
        if (dup || (strcmp(h->host, "*") == 0 && seen_ns))
            mp_warn(c, mp_pathi(p, path, "hosts", i), "duplicated egress host: %.128s", raw[i]);
        if (strcmp(h->ns, "*") == 0 && strcmp(h->host, "*") == 0)
            all = true;
        if (strcmp(h->ns, "*") != 0)
            other_ns = true;
    }
    if (all && other_ns)
        mp_warn(c, mp_path(p, path, "hosts"),
                "`*/*` host select all resources, no other hosts can be added");
}

static int parse_egress_port(mp_ctx *c, const cJSON *po, const char *path, mesh_sidecar_egress *e)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX], why[320];
    int64_t target = 0;
    mp_path(p, path, "port");
    if (parse_port(c, po, p, &e->port, &target) != 0)
        return -1;
    if (e->port.number == 0) {
        if (!e->bind || !util_has_prefix(e->bind, UNIX_PREFIX))
            return mp_fail(c, mp_path(p, path, "bind"),
                           "sidecar: ports with 0 value must have a unix domain socket bind "
                           "address");
        if (!unix_address_ok(e->bind + strlen(UNIX_PREFIX), why, sizeof why))
            return mp_fail(c, mp_path(p, path, "bind"), "%s", why);
        if (e->capture_mode != MESH_CAPTURE_DEFAULT && e->capture_mode != MESH_CAPTURE_NONE)
            return mp_fail(c, mp_path(p, path, "captureMode"),
                           "sidecar: captureMode must be DEFAULT/NONE for unix domain socket "
                           "listeners");
        return 0;
    }
    if (check_port_range(c, mp_path(p2, p, "number"), e->port.number) != 0)
        return -1;
    if (e->bind && *e->bind && check_ip(c, mp_path(p, path, "bind"), e->bind) != 0)
        return -1;
    return 0;
}

static int parse_egress(mp_ctx *c, const cJSON *it, const char *path, mesh_sidecar *sc, size_t idx,
                        size_t total, bool *catch_all)
{
    char p[MP_PATH_MAX];
    const cJSON *po;
    char **raw = NULL;
    size_t nraw = 0;
    mesh_sidecar_egress *e = &sc->egress[idx];
    int rc = -1;

    if (cJSON_IsNull(it)) {
        mp_fail(c, path, "egress listener may not be null");
        goto out;
    }
    if (mp_require_obj(c, it, path) != 0 || mp_get_obj(c, it, "port", path, &po) != 0 ||
        mp_get_str(c, it, "bind", path, &e->bind) != 0 ||
        get_capture_mode(c, it, path, &e->capture_mode) != 0)
        goto out;
    if (!po) {
        if (*catch_all) {
            mp_fail(c, path, "sidecar: egress can have only one listener with empty port");
            goto out;
        }
        if (idx != total - 1) {
            mp_fail(c, path,
                    "sidecar: the egress listener with empty port should be the last listener in "
                    "the list");
            goto out;
        }
        *catch_all = true;
    } else {
        e->has_port = true;
        if (parse_egress_port(c, po, path, e) != 0)
            goto out;
        for (size_t k = 0; k < idx; k++) {
            const mesh_sidecar_egress *o = &sc->egress[k];
            if (!o->has_port || (o->port.number == 0) != (e->port.number == 0))
                continue;
            if (e->port.number == 0 && strcmp(o->bind, e->bind) == 0) {
                mp_fail(c, mp_path(p, path, "bind"),
                        "sidecar: unix domain socket values for listeners must be unique");
                goto out;
            }
            if (e->port.number != 0 && o->port.number == e->port.number) {
                mp_fail(c, mp_path(p, path, "port"),
                        "sidecar: ports on IP bound listeners must be unique");
                goto out;
            }
        }
    }
    if (mp_get_strv(c, it, "hosts", path, &raw, &nraw) != 0)
        goto out;
    if (!nraw) {
        mp_fail(c, mp_path(p, path, "hosts"),
                "sidecar: egress listener must contain at least one host");
        goto out;
    }
    e->hosts = xcalloc(nraw, sizeof *e->hosts);
    for (size_t i = 0; i < nraw; i++) {
        e->nhosts = i + 1;
        if (parse_egress_host(c, mp_pathi(p, path, "hosts", i), raw[i], &e->hosts[i]) != 0)
            goto out;
    }
    warn_duplicate_hosts(c, path, e, raw);
    rc = 0;
out:
    util_strv_free(raw, nraw);
    return rc;
}

/* ---- outboundTrafficPolicy (validateSidecarOutboundTrafficPolicy) ---------------------- */

static int parse_outbound(mp_ctx *c, const cJSON *tp, mesh_sidecar *sc)
{
    /* 2 is not a Sidecar mode; 3 is MeshConfig's ALLOW_ANY_DYNAMIC_DNS */
    static const char *const modes[] = {"REGISTRY_ONLY", "ALLOW_ANY", "", "ALLOW_ANY_DYNAMIC_DNS"};
    const char *path = "spec.outboundTrafficPolicy";
    char p[MP_PATH_MAX], p2[MP_PATH_MAX], why[320];
    const cJSON *ep, *port;
    int mode = 0;

    if (get_enum(c, tp, "mode", path, modes, 4, &mode) != 0)
        return -1;
    if (mode == 3)
        return mp_fail(
            c, mp_path(p, path, "mode"),
            "sidecar: ALLOW_ANY_DYNAMIC_DNS mode is only supported in MeshConfig, not in "
            "Sidecar resource");
    if (mode == 2)
        return mp_fail(c, mp_path(p, path, "mode"), "unknown value 2");
    sc->outbound_mode = mode == 1 ? MESH_OUTBOUND_ALLOW_ANY : MESH_OUTBOUND_REGISTRY_ONLY;
    if (mp_get_obj(c, tp, "egressProxy", path, &ep) != 0)
        return -1;
    if (!ep)
        return 0;
    mp_path(p, path, "egressProxy");
    if (mode != 1)
        return mp_fail(c, p,
                       "sidecar: egress_proxy must be set only with ALLOW_ANY "
                       "outbound_traffic_policy mode");
    sc->has_egress_proxy = true;
    mesh_destination *d = &sc->egress_proxy;
    if (mp_get_str(c, ep, "host", p, &d->host) != 0 ||
        mp_get_str(c, ep, "subset", p, &d->subset) != 0 || mp_get_obj(c, ep, "port", p, &port) != 0)
        return -1;
    const char *host = d->host ? d->host : "";
    if (!fqdn_ok(host, why, sizeof why))
        return mp_fail(c, mp_path(p2, p, "host"), "%s", why);
    if (!port)
        return mp_fail(c, mp_path(p2, p, "port"), "sidecar: egress_proxy port must be non-nil");
    /* validateDestination */
    if (strcmp(host, "*") == 0)
        return mp_fail(c, mp_path(p2, p, "host"), "invalid destination host *");
    if (!wildcard_domain_ok(host, why, sizeof why))
        return mp_fail(c, mp_path(p2, p, "host"), "%s", why);
    if (d->subset && *d->subset && !label_ok(d->subset, strlen(d->subset)))
        return mp_fail(c, mp_path(p2, p, "subset"), "subset name is invalid: %.64s", d->subset);
    int64_t num = 0;
    mp_path(p2, p, "port");
    if (mp_get_int(c, port, "number", p2, 0, UINT32_MAX, &num, NULL) != 0)
        return -1;
    if (check_port_range(c, mp_path(p, p2, "number"), num) != 0)
        return -1;
    d->port = (uint32_t)num;
    return 0;
}

/* ---- the Sidecar ---------------------------------------------------------------------- */

int mp_parse_sidecar(mp_ctx *c, const cJSON *obj, mesh_sidecar *o)
{
    char p[MP_PATH_MAX];
    const cJSON *spec, *sel = NULL, *ing = NULL, *eg = NULL, *otp = NULL, *icp = NULL, *it;
    size_t i;

    if (mp_get_spec(c, obj, &spec) != 0 ||
        mp_get_obj(c, spec, "workloadSelector", "spec", &sel) != 0 ||
        mp_get_arr(c, spec, "ingress", "spec", &ing) != 0 ||
        mp_get_arr(c, spec, "egress", "spec", &eg) != 0 ||
        mp_get_obj(c, spec, "outboundTrafficPolicy", "spec", &otp) != 0 ||
        mp_get_obj(c, spec, "inboundConnectionPool", "spec", &icp) != 0)
        return -1;
    if (sel) {
        o->has_selector = true;
        if (mp_get_labels(c, sel, "labels", "spec.workloadSelector", &o->selector) != 0 ||
            mp_check_selector(c, "spec.workloadSelector.labels", &o->selector) != 0)
            return -1;
        if (o->selector.n == 0)
            mp_warn(c, "spec.workloadSelector",
                    "sidecar: workload selector specified without labels, will be applied to all "
                    "services in namespace");
    }
    size_t ningress = ing ? (size_t)cJSON_GetArraySize(ing) : 0;
    size_t negress = eg ? (size_t)cJSON_GetArraySize(eg) : 0;
    if (!ningress && !negress && !otp && !icp)
        return mp_fail(c, "spec", "sidecar: empty configuration provided");

    if (ningress)
        o->ingress = xcalloc(ningress, sizeof *o->ingress);
    FOR_EACH_OBJ(c, ing, "spec", "ingress", i, it)
    {
        o->ningress = i + 1;
        if (parse_ingress(c, it, mp_pathi(p, "spec", "ingress", i), &o->ingress[i], o, i) != 0)
            return -1;
    }
    if (get_conn_pool(c, spec, "inboundConnectionPool", "spec", &o->inbound_connection_pool) != 0)
        return -1;

    bool catch_all = false;
    if (negress)
        o->egress = xcalloc(negress, sizeof *o->egress);
    FOR_EACH_OBJ(c, eg, "spec", "egress", i, it)
    {
        o->negress = i + 1;
        if (parse_egress(c, it, mp_pathi(p, "spec", "egress", i), o, i, negress, &catch_all) != 0)
            return -1;
    }
    if (otp && parse_outbound(c, otp, o) != 0)
        return -1;
    return 0;
}

static void free_port(mesh_sidecar_port *p)
{
    free(p->protocol_name);
    free(p->name);
}

void mp_free_sidecar(mesh_sidecar *o)
{
    mesh_labels_free(&o->selector);
    for (size_t i = 0; i < o->ningress; i++) {
        mesh_sidecar_ingress *in = &o->ingress[i];
        free_port(&in->port);
        free(in->bind);
        free(in->default_endpoint);
        free(in->tls.server_certificate);
        free(in->tls.private_key);
        free(in->tls.ca_certificates);
        free(in->tls.ca_crl);
        util_strv_free(in->tls.cipher_suites, in->tls.ncipher_suites);
        free(in->connection_pool);
    }
    free(o->ingress);
    for (size_t i = 0; i < o->negress; i++) {
        mesh_sidecar_egress *e = &o->egress[i];
        free_port(&e->port);
        free(e->bind);
        for (size_t k = 0; k < e->nhosts; k++) {
            free(e->hosts[k].ns);
            free(e->hosts[k].host);
        }
        free(e->hosts);
    }
    free(o->egress);
    free(o->egress_proxy.host);
    free(o->egress_proxy.subset);
    free(o->inbound_connection_pool);
}
