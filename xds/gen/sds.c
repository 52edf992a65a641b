/* gen_sds: gateway credentials over SDS, as istiod serves them to router proxies, and the
 * CA bundles of a DestinationRule's credentialName to sidecars.
 *
 * A Gateway server with tls.credentialName "foo" makes the gateway ask for
 * "kubernetes://foo" (certificate chain + private key) and, for MUTUAL, for
 * "kubernetes://foo-cacert" (the CA that validates client certificates). Both come from
 * Kubernetes Secrets (mesh_secret, reduced by the parser to cert/key/CA bytes):
 * - "kubernetes://foo": Secret foo, a Secret with tls_certificate {certificate_chain,
 *   private_key} as inline bytes; absent when foo lacks a complete cert/key pair;
 * - "kubernetes://foo-cacert": Secret foo-cacert when it exists, else foo (Istio's
 *   GetCaCert fallback), a Secret with validation_context {trusted_ca};
 * - "kubernetes://ns/foo" is accepted when ns is the proxy's own namespace.
 * Istio's rule: a gateway reads only the Secrets of its own namespace (the namespace of
 * the gateway deployment), so any other namespace answers nothing. The workload
 * certificates ("default", "ROOTCA") are the node agent's business, not istiod's.
 *
 * Cache key extra: the proxy namespace (it picks the Secret); the snapshot version in the
 * key covers the Secret's content. Runs on the caller's thread; no locks. Never logs
 * secret bytes.
 */
#include <string.h>

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "pilot/base/util.h"
#include "xds/gen/gen_internal.h"

#define SDS_PREFIX "kubernetes://"
#define SDS_CA_SUFFIX "-cacert"

typedef Envoy__Extensions__TransportSockets__Tls__V3__Secret Secret;

enum { SDS_KEY_CERT = 1, SDS_CA };

/* What one requested name resolves to in the proxy's namespace. */
typedef struct sds_ref {
    const mesh_secret *secret;
    int what; /* SDS_KEY_CERT or SDS_CA */
} sds_ref;

/* Resolves name for the proxy; false when it names nothing this proxy may have. */
static bool sds_resolve(gen_ctx *c, const char *name, sds_ref *out)
{
    if (!c->p->ns || !util_has_prefix(name, SDS_PREFIX))
        return false;
    const char *rest = name + strlen(SDS_PREFIX);
    const char *slash = strchr(rest, '/');
    if (slash) {
        /* "kubernetes://ns/name": only the proxy's own namespace */
        size_t nl = (size_t)(slash - rest);
        if (nl != strlen(c->p->ns) || strncmp(rest, c->p->ns, nl) != 0)
            return false;
        rest = slash + 1;
    }
    if (!rest[0] || strchr(rest, '/'))
        return false;
    if (util_has_suffix(rest, SDS_CA_SUFFIX)) {
        const mesh_secret *s = mesh_snapshot_secret(c->s, c->p->ns, rest);
        if (!s) {
            size_t bl = strlen(rest) - strlen(SDS_CA_SUFFIX);
            char *base = ga_alloc(c->a, bl + 1);
            memcpy(base, rest, bl);
            s = mesh_snapshot_secret(c->s, c->p->ns, base);
        }
        if (!s || !s->ca_cert)
            return false;
        out->secret = s;
        out->what = SDS_CA;
        return true;
    }
    const mesh_secret *s = mesh_snapshot_secret(c->s, c->p->ns, rest);
    if (!s || !s->cert || !s->key)
        return false;
    out->secret = s;
    out->what = SDS_KEY_CERT;
    return true;
}

static void sds_add(gen_ctx *c, gen_items *out, const char *name)
{
    sds_ref r;
    if (!sds_resolve(c, name, &r))
        return;
    sds_ref *ref = ga_alloc(c->a, sizeof *ref);
    *ref = r;
    gen_item it = {
        .name = ga_strdup(c->a, name), .extra = ga_printf(c->a, "ns=%s", c->p->ns), .ref = ref};
    gen_items_add(c, out, &it);
}

static void sds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    if (names) {
        for (size_t i = 0; i < nnames; i++)
            if (names[i])
                sds_add(c, out, names[i]);
        return;
    }
    /* wildcard (debug and tests only: Envoy always names its secrets): every credential
     * of the proxy's namespace */
    for (size_t i = 0; c->p->ns && i < c->s->nsecrets; i++) {
        const mesh_secret *s = c->s->secrets[i];
        if (strcmp(s->meta.ns, c->p->ns) != 0)
            continue;
        bool ca_only = util_has_suffix(s->meta.name, SDS_CA_SUFFIX);
        if (s->cert && s->key && !ca_only)
            sds_add(c, out, ga_printf(c->a, SDS_PREFIX "%s", s->meta.name));
        if (s->ca_cert)
            sds_add(c, out,
                    ga_printf(c->a, SDS_PREFIX "%s%s", s->meta.name, ca_only ? "" : SDS_CA_SUFFIX));
    }
}

static Envoy__Config__Core__V3__DataSource *sds_inline(gen_ctx *c, const uint8_t *b, size_t n)
{
    Envoy__Config__Core__V3__DataSource *d = GA_MSG(c->a, Envoy__Config__Core__V3__DataSource,
                                                    envoy__config__core__v3__data_source__init);
    d->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    /* points into the pinned snapshot: serialized before the call returns */
    d->inline_bytes.data = (uint8_t *)b;
    d->inline_bytes.len = n;
    return d;
}

static ProtobufCMessage *sds_build(gen_ctx *c, const gen_item *it)
{
    const sds_ref *r = it->ref;
    if (!r || !r->secret)
        return NULL;
    Secret *s = GA_MSG(c->a, Secret, envoy__extensions__transport_sockets__tls__v3__secret__init);
    s->name = ga_strdup(c->a, it->name);
    if (r->what == SDS_CA) {
        Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc = GA_MSG(
            c->a, Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
            envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init);
        vc->trusted_ca = sds_inline(c, r->secret->ca_cert, r->secret->ca_cert_len);
        s->type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
        s->validation_context = vc;
    } else {
        Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
            GA_MSG(c->a, Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate,
                   envoy__extensions__transport_sockets__tls__v3__tls_certificate__init);
        tc->certificate_chain = sds_inline(c, r->secret->cert, r->secret->cert_len);
        tc->private_key = sds_inline(c, r->secret->key, r->secret->key_len);
        s->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
        s->tls_certificate = tc;
    }
    return &s->base;
}

const gen_type_ops gen_gw_sds = {sds_list, sds_build};

/* Sidecars (DestinationRule credentialName): istiod serves a sidecar its own namespace's
 * CA bundles ("-cacert", public) freely and key material only when a SubjectAccessReview
 * says the proxy's service account may read Secrets there. We do not run that review, so
 * a sidecar gets CA bundles only: a MUTUAL rule's client key stays with gateways. */
static void sc_sds_list(gen_ctx *c, const char *const *names, size_t nnames, gen_items *out)
{
    gen_items all = {0};
    sds_list(c, names, nnames, &all);
    for (size_t i = 0; i < all.n; i++)
        if (((const sds_ref *)all.v[i].ref)->what == SDS_CA)
            gen_items_add(c, out, &all.v[i]);
}

const gen_type_ops gen_sc_sds = {sc_sds_list, sds_build};
