/* parse_authorizationpolicy: AuthorizationPolicy (security.istio.io v1, v1beta1): selector or
 * targetRef(s), action, provider, rules (from.source, to.operation, when) and the
 * istio.io/dry-run annotation, validated as istiod's ValidateAuthorizationPolicy
 * (pkg/config/validation/validation.go) and its helpers in pkg/config/security do, with the
 * reasons worded like Istio's. The first error wins (istiod joins them all).
 *
 * source.serviceAccounts / trustDomains (and their not- forms) are the newer Istio fields:
 * "sa" or "ns/sa" (at most 16, no wildcard, not with principals or namespaces), and trust
 * domains with at most one wildcard at either end and no '/'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pilot/base/util.h"
#include "pilot/config/parse_internal.h"

/* The JSON names of a source's fields, in mesh_az_source_field order. */
static const char *const src_names[MESH_AZ_SOURCE__COUNT][2] = {
    [MESH_AZ_PRINCIPALS] = {"principals", "notPrincipals"},
    [MESH_AZ_REQUEST_PRINCIPALS] = {"requestPrincipals", "notRequestPrincipals"},
    [MESH_AZ_NAMESPACES] = {"namespaces", "notNamespaces"},
    [MESH_AZ_IP_BLOCKS] = {"ipBlocks", "notIpBlocks"},
    [MESH_AZ_REMOTE_IP_BLOCKS] = {"remoteIpBlocks", "notRemoteIpBlocks"},
    [MESH_AZ_SERVICE_ACCOUNTS] = {"serviceAccounts", "notServiceAccounts"},
    [MESH_AZ_TRUST_DOMAINS] = {"trustDomains", "notTrustDomains"},
};
/* istiod's names in CheckEmptyValues messages. */
static const char *const src_go[MESH_AZ_SOURCE__COUNT][2] = {
    [MESH_AZ_PRINCIPALS] = {"Principals", "NotPrincipals"},
    [MESH_AZ_REQUEST_PRINCIPALS] = {"RequestPrincipals", "NotRequestPrincipals"},
    [MESH_AZ_NAMESPACES] = {"Namespaces", "NotNamespaces"},
    [MESH_AZ_IP_BLOCKS] = {"IpBlocks", "NotIpBlocks"},
    [MESH_AZ_REMOTE_IP_BLOCKS] = {"RemoteIpBlocks", "NotRemoteIpBlocks"},
    [MESH_AZ_SERVICE_ACCOUNTS] = {"ServiceAccounts", "NotServiceAccounts"},
    [MESH_AZ_TRUST_DOMAINS] = {"TrustDomains", "NotTrustDomains"},
};
static const char *const op_names[MESH_AZ_OPERATION__COUNT][2] = {
    [MESH_AZ_HOSTS] = {"hosts", "notHosts"},
    [MESH_AZ_PORTS] = {"ports", "notPorts"},
    [MESH_AZ_METHODS] = {"methods", "notMethods"},
    [MESH_AZ_PATHS] = {"paths", "notPaths"},
};
static const char *const op_go[MESH_AZ_OPERATION__COUNT][2] = {
    [MESH_AZ_HOSTS] = {"Hosts", "NotHosts"},
    [MESH_AZ_PORTS] = {"Ports", "NotPorts"},
    [MESH_AZ_METHODS] = {"Methods", "NotMethods"},
    [MESH_AZ_PATHS] = {"Paths", "NotPaths"},
};

/* ---- istiod's value checks (pkg/config/security) ------------------------------------- */

/* Each returns NULL or writes a reason into why. */
static bool check_empty(const char *name, const mesh_strv *v, char *why, size_t n)
{
    for (size_t i = 0; i < v->n; i++)
        if (!*v->v[i]) {
            snprintf(why, n, "empty value not allowed, found in %s", name);
            return false;
        }
    return true;
}

static bool check_ips(const mesh_strv *v, char *why, size_t n)
{
    for (size_t i = 0; i < v->n; i++) {
        if (mp_is_cidr_or_ip(v->v[i]))
            continue;
        if (strchr(v->v[i], '/'))
            snprintf(why, n, "bad CIDR range (%.64s): netip.ParsePrefix(\"%.64s\"): invalid",
                     v->v[i], v->v[i]);
        else
            snprintf(why, n, "bad IP address (%.64s)", v->v[i]);
        return false;
    }
    return true;
}

/* strconv.ParseUint(p, 10, 32) and p <= 65535: 0 is accepted, as istiod does. */
static bool parse_port(const char *s, unsigned long *out)
{
    if (!*s || strlen(s) > 10)
        return false;
    for (const char *q = s; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    unsigned long p = strtoul(s, NULL, 10);
    if (p > 65535)
        return false;
    *out = p;
    return true;
}

static bool check_ports(const mesh_strv *v, char *why, size_t n)
{
    for (size_t i = 0; i < v->n; i++) {
        unsigned long p;
        if (!parse_port(v->v[i], &p)) {
            snprintf(why, n, "bad port (%.32s)", v->v[i]);
            return false;
        }
    }
    return true;
}

/* RFC 3986 pchar minus '*' and '/', what istiod allows beside {*} and {**} segments. */
static bool valid_literal(const char *s, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            continue;
        if (!strchr("-._~%!$&'()+,;:@=", ch))
            return false;
    }
    return true;
}

static bool check_path_templates(const char *name, const mesh_strv *v, char *why, size_t n)
{
    for (size_t i = 0; i < v->n; i++) {
        const char *path = v->v[i];
        bool tmpl = strstr(path, "{*}") || strstr(path, "{**}");
        bool any_seen = false;
        /* trim leading and trailing slashes */
        const char *b = path, *e = path + strlen(path);
        while (b < e && *b == '/')
            b++;
        while (e > b && e[-1] == '/')
            e--;
        int tl = (int)(e - b);
        for (const char *g = b;; g++) {
            const char *ge = g;
            while (ge < e && *ge != '/')
                ge++;
            size_t gl = (size_t)(ge - g);
            bool one = gl == 3 && strncmp(g, "{*}", 3) == 0;
            bool any = gl == 4 && strncmp(g, "{**}", 4) == 0;
            if ((one || any) && any_seen) {
                snprintf(why, n,
                         "invalid or unsupported path %.*s, found in %s. {**} is not the last "
                         "operator",
                         tl, b, name);
                return false;
            }
            if (any)
                any_seen = true;
            if (!one && !any) {
                if (memchr(g, '{', gl) || memchr(g, '}', gl)) {
                    snprintf(why, n,
                             "invalid or unsupported path %.*s, found in %s. Contains '{' or '}' "
                             "beyond a supported path template",
                             tl, b, name);
                    return false;
                }
                if (tmpl && !valid_literal(g, gl)) {
                    snprintf(why, n,
                             "invalid or unsupported path %.*s, found in %s. Contains segment "
                             "%.*s with invalid string literal",
                             tl, b, name, (int)gl, g);
                    return false;
                }
            }
            if (ge >= e)
                break;
            g = ge;
        }
    }
    return true;
}

/* "a[b]": a '[' after the first character and a closing ']' with something between. */
static bool valid_map_key(const char *key)
{
    const char *open = strchr(key, '[');
    size_t len = strlen(key);
    return len && key[len - 1] == ']' && open && open > key && (size_t)(open - key) < len - 2;
}

static bool check_wildcards(const char *key, const mesh_strv *v, char *why, size_t n)
{
    if (!check_empty(key, v, why, n))
        return false;
    for (size_t i = 0; i < v->n; i++) {
        const char *s = v->v[i];
        size_t stars = 0, len = strlen(s);
        for (const char *q = s; *q; q++)
            stars += *q == '*';
        if (stars > 1) {
            snprintf(why, n, "at most one wildcard is allowed, found in %s: \"%.64s\"", key, s);
            return false;
        }
        if (stars == 1 && strcmp(s, "*") != 0 && s[0] != '*' && s[len - 1] != '*') {
            snprintf(why, n, "wildcard is only allowed at the start or end, found in %s: \"%.64s\"",
                     key, s);
            return false;
        }
    }
    return true;
}

/* CheckTrustDomainValues: the wildcard rules, and no '/'. */
static bool check_trust_domains(const char *key, const mesh_strv *v, char *why, size_t n)
{
    if (!check_wildcards(key, v, why, n))
        return false;
    for (size_t i = 0; i < v->n; i++)
        if (strchr(v->v[i], '/')) {
            snprintf(why, n, "trust domain must not contain '/', found in %s: \"%.64s\"", key,
                     v->v[i]);
            return false;
        }
    return true;
}

static bool check_service_accounts(const char *key, const mesh_strv *v, char *why, size_t n)
{
    if (v->n > 16) {
        snprintf(why, n, "may not have more than 16 values");
        return false;
    }
    for (size_t i = 0; i < v->n; i++) {
        const char *s = v->v[i], *slash = strchr(s, '/');
        if (!*s) {
            snprintf(why, n, "empty value not allowed, found in %s", key);
            return false;
        }
        if (strchr(s, '*')) {
            snprintf(why, n, "wildcard not allowed, found in %s", key);
            return false;
        }
        if (slash && strchr(slash + 1, '/')) {
            snprintf(why, n,
                     "expected format 'serviceAccount' or 'namespace/serviceAccount', found "
                     "\"%.64s\" in %s",
                     s, key);
            return false;
        }
        if (strlen(s) > 320) {
            snprintf(why, n, "value cannot exceed 320 characters, found \"%.64s...\" in %s", s,
                     key);
            return false;
        }
        if (slash && (slash == s || !slash[1])) {
            snprintf(why, n,
                     "expected format 'serviceAccount' or 'namespace/serviceAccount', found "
                     "empty %s \"%.64s\" in %s",
                     slash == s ? "namespace" : "serviceAccount", s, key);
            return false;
        }
    }
    return true;
}

/* istiod's ValidateAttribute: the `when` keys it knows and their value checks. */
static bool check_attribute(const char *key, const mesh_strv *v, char *why, size_t n)
{
    if (!check_empty(key, v, why, n))
        return false;
    if (strncmp(key, "request.headers", 15) == 0 || strncmp(key, "request.auth.claims", 19) == 0 ||
        strncmp(key, "experimental.envoy.filters.", 27) == 0) {
        if (valid_map_key(key))
            return true;
        snprintf(why, n, "bad key (%.128s): should have format a[b]", key);
        return false;
    }
    if (!strcmp(key, "source.ip") || !strcmp(key, "remote.ip") || !strcmp(key, "destination.ip"))
        return check_ips(v, why, n);
    if (!strcmp(key, "destination.port"))
        return check_ports(v, why, n);
    if (!strcmp(key, "source.serviceAccount"))
        return check_service_accounts(key, v, why, n);
    if (!strcmp(key, "source.trustDomain"))
        return check_wildcards(key, v, why, n);
    if (!strcmp(key, "source.namespace") || !strcmp(key, "source.principal") ||
        !strcmp(key, "request.auth.principal") || !strcmp(key, "request.auth.audiences") ||
        !strcmp(key, "request.auth.presenter") || !strcmp(key, "connection.sni"))
        return true;
    if (!strcmp(key, "destination.namespace"))
        snprintf(why, n, "attribute %.128s is replaced by the metadata.namespace", key);
    else if (strncmp(key, "destination.labels", 18) == 0)
        snprintf(why, n, "attribute %.128s is replaced by the workload selector", key);
    else if (!strcmp(key, "destination.name") || !strcmp(key, "destination.user"))
        snprintf(why, n, "deprecated attribute %.128s: only supported in v1alpha1", key);
    else
        snprintf(why, n, "unknown attribute: %.128s", key);
    return false;
}

/* ---- pieces ---------------------------------------------------------------------------- */

/* A list of strings into a mesh_strv; *present says whether the key was there at all. */
static int get_strv(mp_ctx *c, const cJSON *obj, const char *key, const char *path, mesh_strv *out,
                    bool *present)
{
    if (present)
        *present = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(obj, key));
    return mp_get_strv(c, obj, key, path, &out->v, &out->n);
}

static int parse_source(mp_ctx *c, const cJSON *src, const char *path, size_t ri, mesh_az_source *s,
                        bool *tcp)
{
    char p[MP_PATH_MAX], why[256];
    size_t total = 0;

    for (int f = 0; f < MESH_AZ_SOURCE__COUNT; f++)
        for (int neg = 0; neg < 2; neg++) {
            mesh_strv *v = neg ? &s->not_values[f] : &s->values[f];
            bool present;
            if (get_strv(c, src, src_names[f][neg], path, v, &present) != 0)
                return -1;
            total += v->n;
            /* every source field but requestPrincipals and trustDomains also applies to
             * TCP, as istiod counts them for its DENY warning */
            if (present && f != MESH_AZ_REQUEST_PRINCIPALS && f != MESH_AZ_TRUST_DOMAINS)
                *tcp = true;
        }
    size_t ids = 0;
    for (int neg = 0; neg < 2; neg++) {
        const mesh_strv *v = neg ? s->not_values : s->values;
        ids += v[MESH_AZ_PRINCIPALS].n + v[MESH_AZ_NAMESPACES].n;
    }
    if (ids && (s->values[MESH_AZ_SERVICE_ACCOUNTS].n || s->not_values[MESH_AZ_SERVICE_ACCOUNTS].n))
        return mp_fail(
            c, path, "cannot set serviceAccounts with namespaces or principals, found at rule %zu",
            ri);
    if (!total)
        return mp_fail(c, path, "`from.source` must not be empty, found at rule %zu", ri);
    for (int f = 0; f < MESH_AZ_SOURCE__COUNT; f++)
        for (int neg = 0; neg < 2; neg++) {
            const mesh_strv *v = neg ? &s->not_values[f] : &s->values[f];
            const char *go = src_go[f][neg];
            bool ok = true;
            if (f == MESH_AZ_IP_BLOCKS || f == MESH_AZ_REMOTE_IP_BLOCKS)
                ok = check_empty(go, v, why, sizeof why) && check_ips(v, why, sizeof why);
            else if (f == MESH_AZ_SERVICE_ACCOUNTS)
                ok = check_service_accounts(go, v, why, sizeof why);
            else if (f == MESH_AZ_TRUST_DOMAINS)
                ok = check_trust_domains(go, v, why, sizeof why);
            else
                ok = check_empty(go, v, why, sizeof why);
            if (!ok)
                return mp_fail(c, mp_path(p, path, src_names[f][neg]), "%s", why);
        }
    return 0;
}

static int parse_operation(mp_ctx *c, const cJSON *op, const char *path, size_t ri,
                           mesh_az_operation *o, bool *tcp)
{
    char p[MP_PATH_MAX], why[320];
    size_t total = 0;

    for (int f = 0; f < MESH_AZ_OPERATION__COUNT; f++)
        for (int neg = 0; neg < 2; neg++) {
            mesh_strv *v = neg ? &o->not_values[f] : &o->values[f];
            bool present;
            if (get_strv(c, op, op_names[f][neg], path, v, &present) != 0)
                return -1;
            total += v->n;
            if (present && f == MESH_AZ_PORTS)
                *tcp = true;
        }
    if (!total)
        return mp_fail(c, path, "`to.operation` must not be empty, found at rule %zu", ri);
    for (int f = 0; f < MESH_AZ_OPERATION__COUNT; f++)
        for (int neg = 0; neg < 2; neg++) {
            const mesh_strv *v = neg ? &o->not_values[f] : &o->values[f];
            bool ok = check_empty(op_go[f][neg], v, why, sizeof why);
            if (ok && f == MESH_AZ_PORTS)
                ok = check_ports(v, why, sizeof why);
            if (ok && f == MESH_AZ_PATHS)
                ok = check_path_templates(op_go[f][neg], v, why, sizeof why);
            if (!ok)
                return mp_fail(c, mp_path(p, path, op_names[f][neg]), "%s", why);
        }
    return 0;
}

static int parse_condition(mp_ctx *c, const cJSON *w, const char *path, mesh_az_condition *cd)
{
    char p[MP_PATH_MAX], why[320];

    if (mp_require_obj(c, w, path) != 0 || mp_get_str(c, w, "key", path, &cd->key) != 0 ||
        get_strv(c, w, "values", path, &cd->values, NULL) != 0 ||
        get_strv(c, w, "notValues", path, &cd->not_values, NULL) != 0)
        return -1;
    if (!cd->key || !*cd->key)
        return mp_fail(c, mp_path(p, path, "key"), "`key` must not be empty");
    if (!cd->values.n && !cd->not_values.n)
        return mp_fail(
            c, path, "at least one of `values` or `notValues` must be set for key %.128s", cd->key);
    if (cd->values.n && !check_attribute(cd->key, &cd->values, why, sizeof why))
        return mp_fail(c, mp_path(p, path, "values"), "invalid `value` for `key` %.128s: %s",
                       cd->key, why);
    if (cd->not_values.n && !check_attribute(cd->key, &cd->not_values, why, sizeof why))
        return mp_fail(c, mp_path(p, path, "notValues"), "invalid `notValue` for `key` %.128s: %s",
                       cd->key, why);
    return 0;
}

/* The fields istiod refuses with CUSTOM (the ext_authz check cannot see peer identities
 * before the RBAC shadow filter runs). */
static int check_custom_rule(mp_ctx *c, const mesh_az_rule *r, const char *rp)
{
    static const struct {
        mesh_az_source_field f;
        const char *go[2];
    } refused[] = {
        {MESH_AZ_NAMESPACES, {"From.Namespaces", "From.NotNamespaces"}},
        {MESH_AZ_SERVICE_ACCOUNTS, {"From.ServiceAccounts", "From.NotServiceAccounts"}},
        {MESH_AZ_TRUST_DOMAINS, {"From.TrustDomains", "From.NotTrustDomains"}},
        {MESH_AZ_PRINCIPALS, {"From.Principals", "From.NotPrincipals"}},
        {MESH_AZ_REQUEST_PRINCIPALS, {"From.RequestPrincipals", "From.NotRequestPrincipals"}},
    };
    char p[MP_PATH_MAX];
    for (size_t i = 0; i < r->nfrom; i++)
        for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++)
            for (int neg = 0; neg < 2; neg++) {
                const mesh_az_source *s = &r->from[i];
                if ((neg ? s->not_values : s->values)[refused[k].f].n) {
                    snprintf(p, sizeof p, "%s.from[%zu].source.%s", rp, i,
                             src_names[refused[k].f][neg]);
                    return mp_fail(c, p, "%s is currently not supported with CUSTOM action",
                                   refused[k].go[neg]);
                }
            }
    for (size_t i = 0; i < r->nwhen; i++) {
        const char *k = r->when[i].key;
        if (!strcmp(k, "source.namespace") || !strcmp(k, "source.serviceAccount") ||
            !strcmp(k, "source.trustDomain") || !strcmp(k, "source.principal") ||
            !strncmp(k, "request.auth.", 13)) {
            snprintf(p, sizeof p, "%s.when[%zu].key", rp, i);
            return mp_fail(c, p, "%.128s is currently not supported with CUSTOM action", k);
        }
    }
    return 0;
}

static int parse_rule(mp_ctx *c, const cJSON *it, const char *rp, size_t ri,
                      mesh_authorization_policy *o, mesh_az_rule *r)
{
    const cJSON *from, *to, *when, *x;
    char p[MP_PATH_MAX], q[MP_PATH_MAX];
    size_t i;
    bool tcp_from = false, tcp_to = false;

    if (cJSON_IsNull(it))
        return mp_fail(c, rp, "`rule` must not be nil, found at rule %zu", ri);
    if (mp_require_obj(c, it, rp) != 0 || mp_get_arr(c, it, "from", rp, &from) != 0 ||
        mp_get_arr(c, it, "to", rp, &to) != 0 || mp_get_arr(c, it, "when", rp, &when) != 0)
        return -1;
    if (from && cJSON_GetArraySize(from) == 0)
        return mp_fail(c, mp_path(p, rp, "from"), "`from` must not be empty, found at rule %zu",
                       ri);
    if (from) {
        r->from = xcalloc((size_t)cJSON_GetArraySize(from), sizeof *r->from);
        FOR_EACH_OBJ(c, from, rp, "from", i, x)
        {
            const cJSON *src;
            mp_pathi(p, rp, "from", i);
            if (cJSON_IsNull(x))
                return mp_fail(c, p, "`from` must not be nil, found at rule %zu", ri);
            if (mp_require_obj(c, x, p) != 0 || mp_get_obj(c, x, "source", p, &src) != 0)
                return -1;
            if (!src)
                return mp_fail(c, mp_path(q, p, "source"),
                               "`from.source` must not be nil, found at rule %zu", ri);
            r->nfrom++;
            if (parse_source(c, src, mp_path(q, p, "source"), ri, &r->from[i], &tcp_from) != 0)
                return -1;
        }
    }
    if (to && cJSON_GetArraySize(to) == 0)
        return mp_fail(c, mp_path(p, rp, "to"), "`to` must not be empty, found at rule %zu", ri);
    if (to) {
        r->to = xcalloc((size_t)cJSON_GetArraySize(to), sizeof *r->to);
        FOR_EACH_OBJ(c, to, rp, "to", i, x)
        {
            const cJSON *op;
            mp_pathi(p, rp, "to", i);
            if (cJSON_IsNull(x))
                return mp_fail(c, p, "`to` must not be nil, found at rule %zu", ri);
            if (mp_require_obj(c, x, p) != 0 || mp_get_obj(c, x, "operation", p, &op) != 0)
                return -1;
            if (!op)
                return mp_fail(c, mp_path(q, p, "operation"),
                               "`to.operation` must not be nil, found at rule %zu", ri);
            r->nto++;
            if (parse_operation(c, op, mp_path(q, p, "operation"), ri, &r->to[i], &tcp_to) != 0)
                return -1;
        }
    }
    if (when && cJSON_GetArraySize(when)) {
        r->when = xcalloc((size_t)cJSON_GetArraySize(when), sizeof *r->when);
        FOR_EACH_OBJ(c, when, rp, "when", i, x)
        {
            mp_pathi(p, rp, "when", i);
            if (cJSON_IsNull(x))
                return mp_fail(c, p, "when field cannot be nil");
            r->nwhen++;
            if (parse_condition(c, x, p, &r->when[i]) != 0)
                return -1;
        }
    }
    if (o->action == MESH_AZ_CUSTOM && check_custom_rule(c, r, rp) != 0)
        return -1;
    if (o->action == MESH_AZ_DENY && ((r->nfrom && !r->nto && !tcp_from) || (r->nto && !tcp_to)))
        mp_warn(c, rp,
                "configured AuthorizationPolicy will deny all traffic to TCP ports under its "
                "scope due to the use of only HTTP attributes in a DENY rule; it is recommended "
                "to explicitly specify the port");
    return 0;
}

/* Go's strconv.ParseBool, which istiod uses on the annotation: -1 when neither. */
static int parse_go_bool(const char *s)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!strcmp(s, t[i]))
            return 1;
        if (!strcmp(s, f[i]))
            return 0;
    }
    return -1;
}

int mp_parse_authorization_policy(mp_ctx *c, const cJSON *obj, mesh_authorization_policy *o)
{
    static const char *const actions[] = {
        [MESH_AZ_ALLOW] = "ALLOW",
        [MESH_AZ_DENY] = "DENY",
        [MESH_AZ_AUDIT] = "AUDIT",
        [MESH_AZ_CUSTOM] = "CUSTOM",
    };
    const cJSON *spec, *sel = NULL, *prov = NULL, *rules = NULL, *it, *meta, *ann;
    char p[MP_PATH_MAX], *action = NULL;
    size_t i;
    int rc = -1;

    if (mp_get_spec(c, obj, &spec) != 0 || mp_get_obj(c, spec, "selector", "spec", &sel) != 0 ||
        mp_parse_target_refs(c, spec, &o->target_refs, &o->ntarget_refs) != 0)
        goto out;
    bool targets = o->ntarget_refs > 0;
    if (sel && targets) {
        mp_fail(c, "spec", "only one of targetRefs or workloadSelector can be set");
        goto out;
    }
    if (sel) {
        if (mp_get_labels(c, sel, "matchLabels", "spec.selector", &o->selector) != 0 ||
            mp_check_selector(c, "spec.selector.matchLabels", &o->selector) != 0)
            goto out;
        if (o->selector.n == 0)
            mp_warn(c, "spec.selector", "workload selector specified without labels");
    }
    if (mp_get_str(c, spec, "action", "spec", &action) != 0)
        goto out;
    if (action && *action) {
        size_t k;
        for (k = 0; k < sizeof actions / sizeof actions[0]; k++)
            if (!strcmp(actions[k], action))
                break;
        if (k == sizeof actions / sizeof actions[0]) {
            mp_fail(c, "spec.action",
                    "unsupported value \"%.32s\": supported values: \"ALLOW\", \"DENY\", "
                    "\"AUDIT\", \"CUSTOM\"",
                    action);
            goto out;
        }
        o->action = (mesh_az_action)k;
    }
    if (mp_get_obj(c, spec, "provider", "spec", &prov) != 0 ||
        (prov && mp_get_str(c, prov, "name", "spec.provider", &o->provider) != 0) ||
        mp_get_arr(c, spec, "rules", "spec", &rules) != 0)
        goto out;
    bool no_rules = !rules || cJSON_GetArraySize(rules) == 0;
    if (o->action == MESH_AZ_CUSTOM && no_rules) {
        mp_fail(c, "spec.rules",
                "CUSTOM action without `rules` is meaningless as it will never be triggered, add "
                "an empty rule `{}` if you want it be triggered for every request");
        goto out;
    }
    if (o->action == MESH_AZ_CUSTOM && (!o->provider || !*o->provider)) {
        mp_fail(c, "spec.provider.name", "`provider.name` must not be empty");
        goto out;
    }
    if (prov && o->action != MESH_AZ_CUSTOM) {
        mp_fail(c, "spec.provider", "`provider` must not be with non CUSTOM action, found %s",
                actions[o->action]);
        goto out;
    }
    if (o->action == MESH_AZ_DENY && no_rules) {
        mp_fail(c, "spec.rules",
                "DENY action without `rules` is meaningless as it will never be triggered, add an "
                "empty rule `{}` if you want it be triggered for every request");
        goto out;
    }
    if (!no_rules) {
        o->rules = xcalloc((size_t)cJSON_GetArraySize(rules), sizeof *o->rules);
        FOR_EACH_OBJ(c, rules, "spec", "rules", i, it)
        {
            o->nrules++;
            if (parse_rule(c, it, mp_pathi(p, "spec", "rules", i), i, o, &o->rules[i]) != 0)
                goto out;
        }
    }
    /* istiod reads the annotation when it builds; a value ParseBool refuses counts as false */
    meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    ann = meta ? cJSON_GetObjectItemCaseSensitive(meta, "annotations") : NULL;
    it = ann ? cJSON_GetObjectItemCaseSensitive(ann, "istio.io/dry-run") : NULL;
    if (cJSON_IsString(it)) {
        int b = parse_go_bool(it->valuestring);
        if (b < 0)
            mp_warn(c, "metadata.annotations.istio.io/dry-run",
                    "failed to parse the value of istio.io/dry-run: strconv.ParseBool: parsing "
                    "\"%.32s\": invalid syntax",
                    it->valuestring);
        o->dry_run = b == 1;
    }
    rc = 0;
out:
    free(action);
    return rc;
}

static void strv_free(mesh_strv *v)
{
    util_strv_free(v->v, v->n);
    v->v = NULL;
    v->n = 0;
}

void mp_free_authorization_policy(mesh_authorization_policy *o)
{
    mesh_labels_free(&o->selector);
    mp_free_target_refs(o->target_refs, o->ntarget_refs);
    free(o->provider);
    for (size_t i = 0; i < o->nrules; i++) {
        mesh_az_rule *r = &o->rules[i];
        for (size_t k = 0; k < r->nfrom; k++)
            for (int f = 0; f < MESH_AZ_SOURCE__COUNT; f++) {
                strv_free(&r->from[k].values[f]);
                strv_free(&r->from[k].not_values[f]);
            }
        free(r->from);
        for (size_t k = 0; k < r->nto; k++)
            for (int f = 0; f < MESH_AZ_OPERATION__COUNT; f++) {
                strv_free(&r->to[k].values[f]);
                strv_free(&r->to[k].not_values[f]);
            }
        free(r->to);
        for (size_t k = 0; k < r->nwhen; k++) {
            free(r->when[k].key);
            strv_free(&r->when[k].values);
            strv_free(&r->when[k].not_values);
        }
        free(r->when);
    }
    free(o->rules);
}
