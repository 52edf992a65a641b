/* parse_gateway: Gateway (selector, servers with ports, hosts and TLS modes). Validated the way
 * istiod's validation webhook (pilot/pkg/config/validation) would, with the reasons worded like
 * Istio's; fields we do not model are accepted and ignored (listed by mesh_unsupported_fields). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

#define MS (1000000LL)

/* ---- Gateway -------------------------------------------------------------------------- */

static int parse_server_tls(mp_ctx *c, const cJSON *t, const char *path, mesh_gateway_server *s)
{
    static const char *const modes[] = {"",
                                        "PASSTHROUGH",
                                        "SIMPLE",
                                        "MUTUAL",
                                        "AUTO_PASSTHROUGH",
                                        "ISTIO_MUTUAL",
                                        "OPTIONAL_MUTUAL"};
    char *mode = NULL, *cert = NULL, *key = NULL, *ca = NULL;
    char **creds = NULL;
    size_t ncreds = 0;
    int rc = -1;

    s->has_tls = true;
    s->tls.mode = MESH_SERVER_TLS_PASSTHROUGH; /* the enum's zero value */
    if (mp_get_bool(c, t, "httpsRedirect", path, &s->tls.https_redirect, NULL) != 0 ||
        mp_get_str(c, t, "mode", path, &mode) != 0 ||
        mp_get_str(c, t, "credentialName", path, &s->tls.credential_name) != 0 ||
        mp_get_strv(c, t, "credentialNames", path, &creds, &ncreds) != 0 ||
        mp_get_strv(c, t, "subjectAltNames", path, &s->tls.subject_alt_names,
                    &s->tls.nsubject_alt_names) != 0 ||
        mp_get_str(c, t, "serverCertificate", path, &cert) != 0 ||
        mp_get_str(c, t, "privateKey", path, &key) != 0 ||
        mp_get_str(c, t, "caCertificates", path, &ca) != 0)
        goto out;
    if (mode) {
        int k;
        if (mp_tls_mode(c, path, mode, modes, sizeof modes / sizeof modes[0], &k) != 0)
            goto out;
        s->tls.mode = (mesh_server_tls_mode)k;
    }
    if (!s->tls.credential_name && ncreds)
        s->tls.credential_name = xstrdup(creds[0]);
    bool has_cred = s->tls.credential_name && *s->tls.credential_name;
    bool terminates = s->tls.mode == MESH_SERVER_TLS_SIMPLE ||
                      s->tls.mode == MESH_SERVER_TLS_MUTUAL ||
                      s->tls.mode == MESH_SERVER_TLS_OPTIONAL_MUTUAL;
    if (terminates && !has_cred) {
        const char *m = s->tls.mode == MESH_SERVER_TLS_SIMPLE ? "SIMPLE" : "MUTUAL";
        if (!cert || !*cert) {
            mp_fail(c, path, "%s TLS requires a server certificate", m);
            goto out;
        }
        if (!key || !*key) {
            mp_fail(c, path, "%s TLS requires a private key", m);
            goto out;
        }
        if (s->tls.mode != MESH_SERVER_TLS_SIMPLE && (!ca || !*ca)) {
            mp_fail(c, path, "MUTUAL TLS requires a client CA bundle");
            goto out;
        }
    }
    if (s->tls.mode == MESH_SERVER_TLS_ISTIO_MUTUAL && (cert || key || ca || has_cred)) {
        mp_fail(c, path, "ISTIO_MUTUAL TLS cannot have associated credentials");
        goto out;
    }
    rc = 0;
out:
    free(mode);
    free(cert);
    free(key);
    free(ca);
    util_strv_free(creds, ncreds);
    return rc;
}

static int parse_server(mp_ctx *c, const cJSON *sv, const char *path, mesh_gateway_server *s)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *port, *t;
    char *proto = NULL;
    char **hosts = NULL;
    size_t nhosts = 0;
    bool have = false;
    int rc = -1;

    if (mp_require_obj(c, sv, path) != 0)
        goto out;
    if (mp_get_str(c, sv, "name", path, &s->name) != 0 ||
        mp_get_obj(c, sv, "port", path, &port) != 0)
        goto out;
    mp_path(p, path, "port");
    if (!port) {
        mp_fail(c, p, "server must have a port");
        goto out;
    }
    if (mp_get_port(c, port, "number", p, &s->port, &have) != 0 ||
        mp_get_str(c, port, "protocol", p, &proto) != 0 ||
        mp_get_str(c, port, "name", p, &s->port_name) != 0)
        goto out;
    if (!have) {
        mp_fail(c, mp_path(p2, p, "number"), "port number is required");
        goto out;
    }
    if (!proto || !*proto) {
        mp_fail(c, mp_path(p2, p, "protocol"), "protocol must be set");
        goto out;
    }
    s->protocol = mesh_protocol_parse(proto);
    if (s->protocol == MESH_PROTO_UNSUPPORTED) {
        mp_fail(
            c, mp_path(p2, p, "protocol"),
            "invalid protocol %.32s, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, "
            "REDIS, MYSQL, TCP, TLS, HTTPS",
            proto);
        goto out;
    }

    if (mp_get_strv(c, sv, "hosts", path, &hosts, &nhosts) != 0)
        goto out;
    if (!nhosts) {
        mp_fail(c, mp_path(p, path, "hosts"), "server config must contain at least one host");
        goto out;
    }
    s->hosts = xcalloc(nhosts, sizeof(char *));
    s->host_namespaces = xcalloc(nhosts, sizeof(char *));
    s->nhosts = nhosts;
    for (size_t i = 0; i < nhosts; i++) {
        const char *h = hosts[i];
        const char *slash = strchr(h, '/');
        mp_pathi(p, path, "hosts", i);
        if (slash) {
            s->host_namespaces[i] = xstrndup(h, (size_t)(slash - h));
            s->hosts[i] = xstrdup(slash + 1);
        } else {
            s->host_namespaces[i] = xstrdup("*");
            s->hosts[i] = xstrdup(h);
        }
        const char *hns = s->host_namespaces[i];
        if (strcmp(hns, ".") != 0 && strcmp(hns, "*") != 0 && !mp_is_dns1123_label(hns)) {
            mp_fail(c, p, "invalid namespace value %.64s in host %.128s", hns, h);
            goto out;
        }
        const char *why =
            strcmp(s->hosts[i], "*") == 0 ? NULL : mp_check_wildcard_domain(s->hosts[i]);
        if (why && !mp_is_ip(s->hosts[i])) {
            mp_fail(c, p, "%s: %.128s", why, h);
            goto out;
        }
    }

    if (mp_get_obj(c, sv, "tls", path, &t) != 0)
        goto out;
    if (t && parse_server_tls(c, t, mp_path(p, path, "tls"), s) != 0)
        goto out;
    if (!t && (s->protocol == MESH_PROTO_HTTPS || s->protocol == MESH_PROTO_TLS)) {
        mp_fail(c, mp_path(p, path, "tls"),
                "server must have TLS settings for HTTPS/TLS protocols");
        goto out;
    }
    if (t && mesh_protocol_is_http(s->protocol) && !s->tls.https_redirect) {
        mp_fail(c, mp_path(p, path, "tls"),
                "server cannot have TLS settings for plain text HTTP ports");
        goto out;
    }
    rc = 0;
out:
    free(proto);
    util_strv_free(hosts, nhosts);
    return rc;
}

int mp_parse_gateway(mp_ctx *c, const cJSON *obj, mesh_gateway *o)
{
    char p[MP_PATH_MAX];
    const cJSON *spec, *arr, *it;
    size_t i;

    if (mp_get_spec(c, obj, &spec) != 0)
        return -1;
    if (mp_get_labels(c, spec, "selector", "spec", &o->selector) != 0 ||
        mp_get_arr(c, spec, "servers", "spec", &arr) != 0)
        return -1;
    if (mp_check_selector(c, "spec.selector", &o->selector) != 0)
        return -1;
    if (!arr || !arr->child)
        return mp_fail(c, "spec.servers", "gateway must have at least one server");
    o->servers = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof *o->servers);
    FOR_EACH_OBJ(c, arr, "spec", "servers", i, it)
    {
        o->nservers = i + 1;
        if (parse_server(c, it, mp_pathi(p, "spec", "servers", i), &o->servers[i]) != 0)
            return -1;
        /* Istio: port names, when given, must be unique within a Gateway's servers. */
        for (size_t k = 0; k < i; k++) {
            const mesh_gateway_server *a = &o->servers[k], *b = &o->servers[i];
            if (a->port_name && b->port_name && *a->port_name &&
                strcmp(a->port_name, b->port_name) == 0 && a->port != b->port)
                return mp_fail(c, mp_pathi(p, "spec", "servers", i),
                               "port names in servers must be unique: duplicate name %.64s",
                               b->port_name);
        }
    }
    return 0;
}
