/* ca: istiod's built-in certificate authority (OpenSSL 3).
 *
 * Where the signing root comes from, first that applies:
 *   1. a plug-in CA directory (Istio's Secret `cacerts` mounted at /etc/cacerts):
 *      ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem; ca-cert may be an
 *      intermediate, cert-chain.pem holds what sits between it and the root;
 *   2. an imported PEM set (kube mode: the Secret istio-ca-secret, read by k8s/);
 *   3. a state directory holding a self-signed root made on first start (config-directory
 *      mode; the key file is mode 0600);
 *   4. a fresh self-signed root kept in memory only.
 * A self-signed root is RSA-2048 (or ECDSA P-256), subject O=<trust domain>, 10 years,
 * basicConstraints CA:TRUE and keyUsage keyCertSign+cRLSign, both critical. It is renewed
 * with the same key when less than 20% of its life is left (ca_rotate_if_needed), so
 * certificates issued under the old root still verify against the new one.
 *
 * Threads: every function may be called from any thread. One mutex guards the current
 * signing material; signing takes references under it and works outside it, so a rotation
 * never blocks or disturbs a signature in flight.
 *
 * Secrets: the private key never reaches a log line; exported key PEM is wiped on free.
 */
#ifndef CERTS_CA_H
#define CERTS_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Error codes returned by the ca_ functions. */
enum {
    CA_OK = 0,
    CA_EINVAL = -1,       /* bad input: malformed CSR, refused key, bad TTL, bad identity */
    CA_EINTERNAL = -2,    /* OpenSSL or file system failure on our side */
    CA_EUNAVAILABLE = -3, /* a Kubernetes request failed (unreachable, 5xx, 401/403):
                           * may succeed later (ca_kube only) */
};

#define CA_DEFAULT_CACERTS_DIR "/etc/cacerts"
#define CA_DEFAULT_TRUST_DOMAIN "cluster.local"
#define CA_DEFAULT_ROOT_TTL_S (10LL * 365 * 24 * 3600)   /* CITADEL_SELF_SIGNED_CA_CERT_TTL */
#define CA_DEFAULT_WORKLOAD_TTL_S (24LL * 3600)          /* DEFAULT_WORKLOAD_CERT_TTL */
#define CA_DEFAULT_MAX_WORKLOAD_TTL_S (90LL * 24 * 3600) /* MAX_WORKLOAD_CERT_TTL */
/* Leaf certificates start this long before "now" so a peer whose clock runs a little
 * behind does not reject a certificate fresh off the press. */
#define CA_CLOCK_SKEW_S 60
/* Rotate a self-signed root when less than this fraction of its life is left. */
#define CA_ROOT_ROTATE_FRACTION 0.2
/* The name every istiod serving certificate carries. */
#define CA_ISTIOD_DNS_NAME "istiod.istio-system.svc"

typedef struct ca ca;

typedef enum {
    CA_KEY_RSA2048 = 0,
    CA_KEY_EC_P256,
} ca_key_type;

typedef enum {
    CA_SOURCE_PLUGIN,    /* cacerts directory */
    CA_SOURCE_IMPORTED,  /* PEM set given by the caller (istio-ca-secret) */
    CA_SOURCE_STATE_DIR, /* self-signed, loaded from the state directory */
    CA_SOURCE_CREATED,   /* self-signed, created by this process */
} ca_source;

/* The root as the PEM strings of Secret istio-ca-secret (type istio.io/ca-root). Every
 * field is a NUL-terminated heap string ("" when empty); key_pem is always "" (Istio
 * writes the key as ca-key.pem and leaves key.pem empty). */
typedef struct ca_pem_set {
    char *ca_cert;    /* ca-cert.pem */
    char *ca_key;     /* ca-key.pem (secret) */
    char *root_cert;  /* root-cert.pem */
    char *cert_chain; /* cert-chain.pem */
    char *key_pem;    /* key.pem */
} ca_pem_set;

typedef struct ca_opts {
    const char *trust_domain; /* NULL: "cluster.local"; also the root's subject O */
    const char *cacerts_dir;  /* NULL: /etc/cacerts; "": no plug-in lookup */
    const ca_pem_set *import; /* kube mode: root read from istio-ca-secret, or NULL */
    const char *state_dir;    /* config-directory mode: persist the root here, or NULL */
    ca_key_type key_type;     /* for a root created here */
    int64_t root_ttl_s;       /* 0: 10 years */
    int64_t default_ttl_s;    /* 0: 24h */
    int64_t max_ttl_s;        /* 0: 90 days */
} ca_opts;

/* Loads or creates the root (see the order above).
 * Returns CA_OK and *out (the caller frees with ca_free), or CA_EINVAL when a plug-in
 * directory, import or state directory holds something unusable (a key that does not
 * match its certificate, a CA certificate that is not a CA, a chain that does not reach
 * the root), or CA_EINTERNAL; err then names the file and the problem and *out is NULL. */
int ca_new(const ca_opts *opts, ca **out, char *err, size_t errlen);
void ca_free(ca *c);

ca_source ca_get_source(const ca *c);
const char *ca_trust_domain(const ca *c);
/* notAfter of the root certificate (for citadel_server_root_cert_expiry_timestamp). */
time_t ca_root_not_after(ca *c);
/* root-cert.pem (the trust anchor to distribute, ConfigMap istio-ca-root-cert), as a heap
 * string the caller frees. */
char *ca_root_pem(ca *c);

/* Exports the current root as the istio-ca-secret key set. Returns CA_OK (free *out with
 * ca_pem_set_free) or CA_EINTERNAL. */
int ca_export(ca *c, ca_pem_set *out);
/* Frees the strings (wiping ca_key first) and zeroes the struct. */
void ca_pem_set_free(ca_pem_set *s);

/* Renews a self-signed root with the same key when less than 20% of its life is left at
 * time now. *rotated tells whether it did; a state-directory root is rewritten on disk, an
 * imported one must be exported again by the caller. Plug-in roots are the operator's and
 * are never rotated. Returns CA_OK or CA_EINTERNAL (the old root stays in use). */
int ca_rotate_if_needed(ca *c, time_t now, bool *rotated, char *err, size_t errlen);

/* Signs a workload CSR (PEM) for the authenticated identity ns/sa.
 * The CSR's signature is verified and its key must be RSA >= 2048 bits or ECDSA
 * P-256/P-384. Nothing else is taken from the CSR: the only SAN is
 * spiffe://<trust domain>/ns/<ns>/sa/<sa>. ttl_s <= 0 means the default; above the maximum
 * it is refused. On CA_OK *chain holds *nchain heap PEM strings (leaf, intermediates,
 * root), freed with ca_chain_free. CA_EINVAL: the input is at fault, err says why.
 * CA_EINTERNAL: our side failed. *chain is NULL on failure. */
int ca_sign_csr(ca *c, const char *csr_pem, size_t csr_len, const char *ns, const char *sa,
                int64_t ttl_s, char ***chain, size_t *nchain, char *err, size_t errlen);
void ca_chain_free(char **chain, size_t n);

/* Checks a Kubernetes namespace or service account name as it goes into a SPIFFE URI:
 * 1..253 chars of [a-z0-9.-] (namespaces: 1..63). */
bool ca_valid_k8s_name(const char *s, size_t maxlen);
/* Parses spiffe://<td>/ns/<ns>/sa/<sa>; td must be ours. On success *ns and *sa are heap
 * strings. Returns CA_OK or CA_EINVAL. */
int ca_parse_spiffe(const ca *c, const char *uri, char **ns, char **sa);

/* A TLS serving certificate for istiod's gRPC server (xDS and CA over TLS). */
typedef struct ca_serving_cert {
    char *cert_chain_pem; /* leaf then intermediates, concatenated */
    char *key_pem;        /* PKCS#8 EC P-256 key (secret; wiped on free) */
    char *root_pem;       /* trust anchor for clients */
    time_t not_before;
    time_t not_after;
    time_t renew_at; /* half-way through its life: issue a new one by then */
} ca_serving_cert;

/* Issues a DNS-SAN certificate for istiod.istio-system.svc plus dns_names (each a
 * hostname, at most 253 chars; duplicates dropped), with a fresh EC P-256 key.
 * ttl_s <= 0: the default workload TTL. Returns CA_OK (free with ca_serving_cert_free),
 * CA_EINVAL for a bad name, CA_EINTERNAL. */
int ca_issue_serving_cert(ca *c, const char *const *dns_names, size_t ndns, int64_t ttl_s,
                          ca_serving_cert *out, char *err, size_t errlen);
void ca_serving_cert_free(ca_serving_cert *s);

#endif
