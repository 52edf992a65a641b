/* mesh_parse_k8s: the Kubernetes core kinds the model joins (Namespace, Service, Pod,
 * Endpoints, EndpointSlice). Only the fields the model reads are kept; the API server has
 * already validated these objects, so checks here only guard our own invariants (types,
 * port ranges) against hand-written YAML in a config directory. */
#include <stdlib.h>
#include <string.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

int mp_parse_namespace(mp_ctx *c, const cJSON *obj, mesh_namespace *o)
{
    (void)c;
    (void)obj;
    (void)o;
    return 0;
}

/* ---- Service ------------------------------------------------------------------------ */

void mp_free_k8s_service(mesh_k8s_service *o)
{
    free(o->type);
    util_strv_free(o->cluster_ips, o->ncluster_ips);
    free(o->external_name);
    for (size_t i = 0; i < o->nports; i++) {
        mesh_k8s_service_port *p = &o->ports[i];
        free(p->name);
        free(p->target_port_name);
        free(p->app_protocol);
        free(p->protocol);
    }
    free(o->ports);
    mesh_labels_free(&o->selector);
}

/* targetPort: an int or a named container port (IntOrString). */
static int parse_int_or_string(mp_ctx *c, const cJSON *obj, const char *key, const char *path,
                               uint32_t *num, char **name)
{
    char p[MP_PATH_MAX];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v)) {
        /* A quoted number is still a number for IntOrString. */
        char *end = NULL;
        long n = strtol(v->valuestring, &end, 10);
        if (*v->valuestring && end && !*end) {
            if (n < 1 || n > 65535)
                return mp_fail(c, mp_path(p, path, key),
                               "port number %ld must be in the range 1..65535", n);
            *num = (uint32_t)n;
            return 0;
        }
        if (!*v->valuestring || strlen(v->valuestring) > 15)
            return mp_fail(c, mp_path(p, path, key), "invalid port name");
        *name = xstrdup(v->valuestring);
        return 0;
    }
    return mp_get_port(c, obj, key, path, num, NULL);
}

int mp_parse_service(mp_ctx *c, const cJSON *obj, mesh_k8s_service *o)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *spec, *ports, *it;
    char *cip = NULL;
    int rc = -1;

    if (mp_get_obj(c, obj, "spec", "", &spec) != 0)
        goto out;
    if (mp_get_str(c, spec, "type", "spec", &o->type) != 0 ||
        mp_get_str(c, spec, "externalName", "spec", &o->external_name) != 0 ||
        mp_get_str(c, spec, "clusterIP", "spec", &cip) != 0 ||
        mp_get_strv(c, spec, "clusterIPs", "spec", &o->cluster_ips, &o->ncluster_ips) != 0)
        goto out;
    if (!o->type)
        o->type = xstrdup("ClusterIP");
    if (cip && strcmp(cip, "None") == 0)
        o->headless = true;
    /* Prefer clusterIPs (dual stack); fall back to clusterIP; drop "None" and "". */
    if (!o->ncluster_ips && cip && *cip) {
        o->cluster_ips = xcalloc(1, sizeof(char *));
        o->cluster_ips[0] = xstrdup(cip);
        o->ncluster_ips = 1;
    }
    size_t w = 0;
    for (size_t i = 0; i < o->ncluster_ips; i++) {
        if (strcmp(o->cluster_ips[i], "None") == 0 || !*o->cluster_ips[i]) {
            o->headless = o->headless || strcmp(o->cluster_ips[i], "None") == 0;
            free(o->cluster_ips[i]);
            continue;
        }
        if (!mp_is_ip(o->cluster_ips[i])) {
            mp_fail(c, mp_pathi(p, "spec", "clusterIPs", i), "%.64s is not an IP address",
                    o->cluster_ips[i]);
            /* keep the array consistent for the free */
            for (size_t j = i; j < o->ncluster_ips; j++)
                o->cluster_ips[w++] = o->cluster_ips[j];
            o->ncluster_ips = w;
            goto out;
        }
        o->cluster_ips[w++] = o->cluster_ips[i];
    }
    o->ncluster_ips = w;

    const cJSON *sel = cJSON_GetObjectItemCaseSensitive(spec, "selector");
    o->has_selector = cJSON_IsObject(sel);
    if (mp_get_labels(c, spec, "selector", "spec", &o->selector) != 0)
        goto out;

    if (mp_get_arr(c, spec, "ports", "spec", &ports) != 0)
        goto out;
    if (ports) {
        o->nports = (size_t)cJSON_GetArraySize(ports);
        o->ports = o->nports ? xcalloc(o->nports, sizeof *o->ports) : NULL;
        size_t i = 0;
        cJSON_ArrayForEach(it, ports)
        {
            mesh_k8s_service_port *sp = &o->ports[i];
            mp_pathi(p, "spec", "ports", i);
            if (!cJSON_IsObject(it)) {
                mp_fail(c, p, "must be an object");
                goto out;
            }
            bool have = false;
            if (mp_get_str(c, it, "name", p, &sp->name) != 0 ||
                mp_get_port(c, it, "port", p, &sp->port, &have) != 0 ||
                parse_int_or_string(c, it, "targetPort", p, &sp->target_port,
                                    &sp->target_port_name) != 0 ||
                mp_get_str(c, it, "appProtocol", p, &sp->app_protocol) != 0 ||
                mp_get_str(c, it, "protocol", p, &sp->protocol) != 0)
                goto out;
            if (!have) {
                mp_fail(c, mp_path(p2, p, "port"), "required");
                goto out;
            }
            if (!sp->protocol)
                sp->protocol = xstrdup("TCP");
            /* Kubernetes defaults targetPort to port. */
            if (!sp->target_port && !sp->target_port_name)
                sp->target_port = sp->port;
            i++;
        }
    }
    rc = 0;
out:
    free(cip);
    return rc;
}

/* ---- Pod ---------------------------------------------------------------------------- */

void mp_free_pod(mesh_pod *o)
{
    util_strv_free(o->ips, o->nips);
    free(o->service_account);
    free(o->node_name);
    free(o->phase);
}

int mp_parse_pod(mp_ctx *c, const cJSON *obj, mesh_pod *o)
{
    char p[MP_PATH_MAX];
    const cJSON *spec, *status, *ips, *conds, *it;

    if (mp_get_obj(c, obj, "spec", "", &spec) != 0 ||
        mp_get_obj(c, obj, "status", "", &status) != 0)
        return -1;
    if (mp_get_str(c, spec, "serviceAccountName", "spec", &o->service_account) != 0 ||
        mp_get_str(c, spec, "nodeName", "spec", &o->node_name) != 0 ||
        mp_get_str(c, status, "phase", "status", &o->phase) != 0)
        return -1;
    if (!o->service_account &&
        mp_get_str(c, spec, "serviceAccount", "spec", &o->service_account) != 0)
        return -1;
    if (!o->service_account)
        o->service_account = xstrdup("default");

    if (mp_get_arr(c, status, "podIPs", "status", &ips) != 0)
        return -1;
    if (ips && cJSON_GetArraySize(ips) > 0) {
        o->ips = xcalloc((size_t)cJSON_GetArraySize(ips), sizeof(char *));
        size_t i = 0;
        cJSON_ArrayForEach(it, ips)
        {
            mp_pathi(p, "status", "podIPs", i++);
            char *ip = NULL;
            if (!cJSON_IsObject(it))
                return mp_fail(c, p, "must be an object");
            if (mp_get_str(c, it, "ip", p, &ip) != 0)
                return -1;
            if (!ip || !mp_is_ip(ip)) {
                free(ip);
                return mp_fail(c, p, "invalid ip");
            }
            o->ips[o->nips++] = ip;
        }
    } else {
        char *ip = NULL;
        if (mp_get_str(c, status, "podIP", "status", &ip) != 0)
            return -1;
        if (ip && *ip) {
            if (!mp_is_ip(ip)) {
                free(ip);
                return mp_fail(c, "status.podIP", "invalid ip");
            }
            o->ips = xcalloc(1, sizeof(char *));
            o->ips[o->nips++] = ip;
        } else {
            free(ip);
        }
    }

    if (mp_get_arr(c, status, "conditions", "status", &conds) != 0)
        return -1;
    cJSON_ArrayForEach(it, conds)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "status");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "Ready") == 0)
            o->ready = cJSON_IsString(s) && strcmp(s->valuestring, "True") == 0;
    }
    return 0;
}

/* ---- Endpoints and EndpointSlice ---------------------------------------------------- */

static void free_slice_endpoint(mesh_slice_endpoint *e)
{
    util_strv_free(e->addresses, e->naddresses);
    free(e->node_name);
    free(e->zone);
    free(e->target_pod);
    free(e->target_ns);
}

void mp_free_endpoint_slice(mesh_endpoint_slice *o)
{
    free(o->service_name);
    free(o->address_type);
    for (size_t i = 0; i < o->nendpoints; i++)
        free_slice_endpoint(&o->endpoints[i]);
    free(o->endpoints);
    for (size_t i = 0; i < o->nports; i++) {
        free(o->ports[i].name);
        free(o->ports[i].protocol);
        free(o->ports[i].app_protocol);
    }
    free(o->ports);
}

static int parse_target_ref(mp_ctx *c, const cJSON *ep, const char *path, mesh_slice_endpoint *e)
{
    const cJSON *ref;
    char *kind = NULL;
    int rc = -1;
    if (mp_get_obj(c, ep, "targetRef", path, &ref) != 0)
        goto out;
    if (!ref) {
        rc = 0;
        goto out;
    }
    char p[MP_PATH_MAX];
    mp_path(p, path, "targetRef");
    if (mp_get_str(c, ref, "kind", p, &kind) != 0)
        goto out;
    if (kind && strcmp(kind, "Pod") == 0) {
        if (mp_get_str(c, ref, "name", p, &e->target_pod) != 0 ||
            mp_get_str(c, ref, "namespace", p, &e->target_ns) != 0)
            goto out;
    }
    rc = 0;
out:
    free(kind);
    return rc;
}

/* Ports of a slice, or of one Endpoints subset, appended to o->ports. */
static int parse_slice_ports(mp_ctx *c, const cJSON *ports, const char *path, bool dedupe,
                             mesh_endpoint_slice *o)
{
    char p[MP_PATH_MAX];
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, ports)
    {
        mesh_slice_port sp = {0};
        mp_pathi(p, path, "ports", i++);
        if (!cJSON_IsObject(it))
            return mp_fail(c, p, "must be an object");
        if (mp_get_str(c, it, "name", p, &sp.name) != 0 ||
            mp_get_port(c, it, "port", p, &sp.port, NULL) != 0 ||
            mp_get_str(c, it, "protocol", p, &sp.protocol) != 0 ||
            mp_get_str(c, it, "appProtocol", p, &sp.app_protocol) != 0) {
            free(sp.name);
            free(sp.protocol);
            free(sp.app_protocol);
            return -1;
        }
        if (!sp.name)
            sp.name = xstrdup("");
        if (!sp.protocol)
            sp.protocol = xstrdup("TCP");
        bool dup = false;
        for (size_t j = 0; dedupe && j < o->nports; j++)
            dup = dup || (o->ports[j].port == sp.port && strcmp(o->ports[j].name, sp.name) == 0);
        if (dup) {
            free(sp.name);
            free(sp.protocol);
            free(sp.app_protocol);
            continue;
        }
        o->ports = xrealloc(o->ports, (o->nports + 1) * sizeof *o->ports);
        o->ports[o->nports++] = sp;
    }
    return 0;
}

int mp_parse_endpoint_slice(mp_ctx *c, const cJSON *obj, mesh_endpoint_slice *o)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *eps, *ports, *it;

    o->service_name = xstrdup(mesh_labels_get(&o->meta.labels, "kubernetes.io/service-name")
                                  ? mesh_labels_get(&o->meta.labels, "kubernetes.io/service-name")
                                  : "");
    if (!*o->service_name)
        return mp_fail(c, "metadata.labels", "kubernetes.io/service-name is required");
    if (mp_get_str(c, obj, "addressType", "", &o->address_type) != 0)
        return -1;
    if (!o->address_type)
        return mp_fail(c, "addressType", "required");

    if (mp_get_arr(c, obj, "endpoints", "", &eps) != 0)
        return -1;
    if (eps && cJSON_GetArraySize(eps) > 0) {
        size_t n = (size_t)cJSON_GetArraySize(eps), i = 0;
        o->endpoints = xcalloc(n, sizeof *o->endpoints);
        cJSON_ArrayForEach(it, eps)
        {
            mesh_slice_endpoint *e = &o->endpoints[i];
            o->nendpoints = ++i;
            mp_pathi(p, "", "endpoints", i - 1);
            if (!cJSON_IsObject(it))
                return mp_fail(c, p, "must be an object");
            if (mp_get_strv(c, it, "addresses", p, &e->addresses, &e->naddresses) != 0)
                return -1;
            if (!e->naddresses)
                return mp_fail(c, mp_path(p2, p, "addresses"), "at least one address is required");
            for (size_t a = 0; a < e->naddresses; a++)
                if (strcmp(o->address_type, "FQDN") != 0 && !mp_is_ip(e->addresses[a]))
                    return mp_fail(c, mp_pathi(p2, p, "addresses", a), "%.64s is not an IP address",
                                   e->addresses[a]);
            const cJSON *cond;
            if (mp_get_obj(c, it, "conditions", p, &cond) != 0)
                return -1;
            mp_path(p2, p, "conditions");
            bool have_serving = false;
            e->ready = true; /* a missing ready means ready */
            if (mp_get_bool(c, cond, "ready", p2, &e->ready, NULL) != 0 ||
                mp_get_bool(c, cond, "serving", p2, &e->serving, &have_serving) != 0 ||
                mp_get_bool(c, cond, "terminating", p2, &e->terminating, NULL) != 0)
                return -1;
            if (!have_serving)
                e->serving = e->ready;
            if (mp_get_str(c, it, "nodeName", p, &e->node_name) != 0 ||
                mp_get_str(c, it, "zone", p, &e->zone) != 0 || parse_target_ref(c, it, p, e) != 0)
                return -1;
        }
    }
    if (mp_get_arr(c, obj, "ports", "", &ports) != 0)
        return -1;
    return parse_slice_ports(c, ports, "", false, o);
}

/* One Endpoints address into a slice endpoint. */
static int endpoints_address(mp_ctx *c, const cJSON *addr, const char *path, bool ready,
                             mesh_endpoint_slice *o)
{
    char *ip = NULL;
    if (!cJSON_IsObject(addr))
        return mp_fail(c, path, "must be an object");
    if (mp_get_str(c, addr, "ip", path, &ip) != 0)
        return -1;
    if (!ip || !mp_is_ip(ip)) {
        free(ip);
        char p2[MP_PATH_MAX];
        return mp_fail(c, mp_path(p2, path, "ip"), "a valid IP address is required");
    }
    o->endpoints = xrealloc(o->endpoints, (o->nendpoints + 1) * sizeof *o->endpoints);
    mesh_slice_endpoint *e = &o->endpoints[o->nendpoints++];
    *e = (mesh_slice_endpoint){0};
    e->addresses = xcalloc(1, sizeof(char *));
    e->addresses[0] = ip;
    e->naddresses = 1;
    e->ready = ready;
    e->serving = ready;
    if (mp_get_str(c, addr, "nodeName", path, &e->node_name) != 0 ||
        parse_target_ref(c, addr, path, e) != 0)
        return -1;
    return 0;
}

/* core/v1 Endpoints flattened into one slice: every subset's addresses, the union of the
 * subsets' ports. Exact when there is one subset (the usual case); with several subsets
 * of different ports, each address is taken to serve every port. */
int mp_parse_endpoints(mp_ctx *c, const cJSON *obj, mesh_endpoint_slice *o)
{
    char p[MP_PATH_MAX], p2[MP_PATH_MAX];
    const cJSON *subsets, *ss, *arr, *a;

    o->service_name = xstrdup(o->meta.name);
    if (mp_get_arr(c, obj, "subsets", "", &subsets) != 0)
        return -1;
    size_t si = 0;
    bool v6 = false;
    cJSON_ArrayForEach(ss, subsets)
    {
        mp_pathi(p, "", "subsets", si++);
        if (!cJSON_IsObject(ss))
            return mp_fail(c, p, "must be an object");
        for (int pass = 0; pass < 2; pass++) {
            const char *key = pass == 0 ? "addresses" : "notReadyAddresses";
            if (mp_get_arr(c, ss, key, p, &arr) != 0)
                return -1;
            size_t ai = 0;
            cJSON_ArrayForEach(a, arr)
            {
                if (endpoints_address(c, a, mp_pathi(p2, p, key, ai++), pass == 0, o) != 0)
                    return -1;
                v6 = v6 || strchr(o->endpoints[o->nendpoints - 1].addresses[0], ':');
            }
        }
        if (mp_get_arr(c, ss, "ports", p, &arr) != 0 || parse_slice_ports(c, arr, p, true, o) != 0)
            return -1;
    }
    o->address_type = xstrdup(v6 ? "IPv6" : "IPv4");
    return 0;
}

/* ---- Secret (gateway credentials) ------------------------------------------------------ */

/* The Kubernetes limit for a whole Secret; no single value may be larger. */
#define MP_SECRET_VALUE_MAX (1024 * 1024)

static void secret_bytes_free(uint8_t **p, size_t *n)
{
    if (*p) {
        explicit_bzero(*p, *n);
        free(*p);
    }
    *p = NULL;
    *n = 0;
}

void mp_free_secret(mesh_secret *o)
{
    free(o->type);
    secret_bytes_free(&o->cert, &o->cert_len);
    secret_bytes_free(&o->key, &o->key_len);
    secret_bytes_free(&o->ca_cert, &o->ca_cert_len);
}

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Standard base64 with optional padding; whitespace (folded YAML) is skipped. Returns the
 * decoded length, or -1 for bad input. out holds at least strlen(s) * 3 / 4 + 3 bytes. */
static long b64_decode(const char *s, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        int v = b64_val(*p);
        if (v < 0 || pad)
            return -1; /* a foreign character, or data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* leftover bits must be zero padding of the last group (6 bits = a lone char: bad) */
    if (bits >= 6 || pad > 2 || (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return n;
}

/* One credential value: from stringData (plain) when present there, else from data
 * (base64). Never prints the value, only the key. Absent leaves *out NULL. */
static int secret_value(mp_ctx *c, const cJSON *data, const cJSON *sdata, const char *key,
                        uint8_t **out, size_t *len)
{
    char p[MP_PATH_MAX];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sdata, key);
    bool plain = v != NULL && !cJSON_IsNull(v);
    if (!plain)
        v = cJSON_GetObjectItemCaseSensitive(data, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    const char *field = mp_path(p, plain ? "stringData" : "data", key);
    if (!cJSON_IsString(v))
        return mp_fail(c, field, "must be a string");
    size_t slen = strlen(v->valuestring);
    if (slen > (plain ? MP_SECRET_VALUE_MAX : MP_SECRET_VALUE_MAX / 3 * 4 + 4))
        return mp_fail(c, field, "larger than %d bytes", MP_SECRET_VALUE_MAX);
    uint8_t *buf = xmalloc(slen / 4 * 3 + 4);
    long n;
    if (plain) {
        memcpy(buf, v->valuestring, slen);
        n = (long)slen;
    } else if ((n = b64_decode(v->valuestring, buf)) < 0) {
        explicit_bzero(buf, slen / 4 * 3 + 4);
        free(buf);
        return mp_fail(c, field, "invalid base64");
    }
    if (n == 0) {
        free(buf); /* Istio treats an empty value as absent */
        return 0;
    }
    *out = buf;
    *len = (size_t)n;
    return 0;
}

int mp_parse_secret(mp_ctx *c, const cJSON *obj, mesh_secret *o)
{
    const cJSON *data, *sdata;
    if (mp_get_str(c, obj, "type", "", &o->type) != 0)
        return -1;
    if (!o->type)
        o->type = xstrdup("Opaque");
    /* istiod's secret informer leaves these out: they never carry gateway credentials */
    if (strcmp(o->type, "kubernetes.io/service-account-token") == 0 ||
        strcmp(o->type, "helm.sh/release.v1") == 0)
        return -2;
    if (mp_get_obj(c, obj, "data", "", &data) != 0 ||
        mp_get_obj(c, obj, "stringData", "", &sdata) != 0)
        return -1;

    /* Istio's extractKeyAndCert: the generic pair wins when both are complete */
    uint8_t *gc = NULL, *gk = NULL, *tc = NULL, *tk = NULL, *ga = NULL, *ta = NULL;
    size_t gcn = 0, gkn = 0, tcn = 0, tkn = 0, gan = 0, tan = 0;
    int rc = -1;
    if (secret_value(c, data, sdata, "cert", &gc, &gcn) != 0 ||
        secret_value(c, data, sdata, "key", &gk, &gkn) != 0 ||
        secret_value(c, data, sdata, "tls.crt", &tc, &tcn) != 0 ||
        secret_value(c, data, sdata, "tls.key", &tk, &tkn) != 0 ||
        secret_value(c, data, sdata, "cacert", &ga, &gan) != 0 ||
        secret_value(c, data, sdata, "ca.crt", &ta, &tan) != 0)
        goto out;
    if (gc && gk) {
        o->cert = gc, o->cert_len = gcn, gc = NULL;
        o->key = gk, o->key_len = gkn, gk = NULL;
    } else if (tc && tk) {
        o->cert = tc, o->cert_len = tcn, tc = NULL;
        o->key = tk, o->key_len = tkn, tk = NULL;
    }
    /* extractRoot: "cacert" first, then "ca.crt" */
    if (ga) {
        o->ca_cert = ga, o->ca_cert_len = gan, ga = NULL;
    } else if (ta) {
        o->ca_cert = ta, o->ca_cert_len = tan, ta = NULL;
    }
    rc = 0;
out:
    secret_bytes_free(&gc, &gcn);
    secret_bytes_free(&gk, &gkn);
    secret_bytes_free(&tc, &tcn);
    secret_bytes_free(&tk, &tkn);
    secret_bytes_free(&ga, &gan);
    secret_bytes_free(&ta, &tan);
    return rc;
}
