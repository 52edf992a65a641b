/* server: the gRPC server (C core API) carrying ADS on --grpcAddr and, registered by other
 * modules, unary methods such as Istio's CreateCertificate.
 */
#ifndef XDS_ADS_SERVER_H
#define XDS_ADS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pilot/model/snapshot.h"
#include "xds/gen/gen.h"

typedef struct xds_server xds_server;

/* The snapshot provider: the current snapshot with one reference for the caller, or NULL
 * before the first one (model_snapshot has this shape). The server knows snapshots and
 * this function, never the model that makes them. */
typedef mesh_snapshot *(*xds_snapshot_fn)(void *ud);
struct grpc_server_credentials;

/* Checks a bearer token (the CA's TokenReview, k8s_token_review): 0 with *ns and *sa set to
 * heap strings the server frees, or negative with a reason in err. Same contract as
 * ca_token_review_fn (certs/ca_service.h). May block; runs on a server thread. */
typedef int (*xds_token_review_fn)(void *ud, const char *token, const char *audience, char **ns,
                                   char **sa, char *err, size_t errlen);

typedef struct xds_server_opts {
    const char *grpc_addr;    /* ":15010", "127.0.0.1:0" ... */
    const char *domain;       /* "cluster.local" */
    xds_snapshot_fn snapshot; /* where a new stream's first snapshot comes from */
    void *snapshot_ud;
    int max_concurrent_pushes; /* 0 = min(15 + 5 * cores, 100) */
    /* Connection lifetime like istiod's gRPC server (0 = off): after max_connection_age
     * (gRPC adds up to 10% jitter) a GOAWAY ends the connection, in-flight streams get
     * max_connection_age_grace more, and the proxy reconnects, through the Service, to any
     * replica: this is what spreads proxies over replicas. keepalive_time pings a quiet
     * connection and keepalive_timeout closes it when the ping goes unanswered, so a
     * half-open TCP connection is found and its stream freed. */
    int64_t max_connection_age_ns;
    int64_t max_connection_age_grace_ns;
    int64_t keepalive_time_ns;
    int64_t keepalive_timeout_ns;
    /* The TLS port (--secureGRPCAddr), off when NULL or "". The same server (ADS and every
     * unary method) is served there with secure_creds (borrowed, e.g. certs/ca_tls.h).
     * ADS on it requires a client certificate with a SPIFFE URI SAN of trust_domain, or a
     * bearer JWT accepted by review (audience "istio-ca"), else UNAUTHENTICATED; a node
     * whose NAMESPACE / SERVICE_ACCOUNT differ from that identity gets PERMISSION_DENIED.
     * The plaintext port stays unauthenticated, like istiod's 15010. */
    const char *secure_addr;
    struct grpc_server_credentials *secure_creds;
    const char *trust_domain; /* NULL: "cluster.local" */
    /* mesh config trustDomainAliases and extensionProviders (borrowed; copied into the
     * generator), NULL: none */
    const xds_mesh_authz *mesh_authz;
    /* mesh config access logs and default metrics provider (borrowed; copied), NULL: the
     * defaults (istio.stats on, no access logs) */
    const xds_mesh_telemetry *mesh_telemetry;
    /* mesh config outboundTrafficPolicy.mode */
    xds_outbound_mode outbound_mode;
    /* ENABLE_TLS_ON_SIDECAR_INGRESS: Sidecar ingress listeners' `tls` terminates there */
    bool sidecar_ingress_tls;
    xds_token_review_fn review; /* NULL: client certificates only */
    void *review_ud;
} xds_server_opts;

/* Peer facts a unary handler may need to authenticate the caller. */
typedef struct xds_call_auth {
    const char *peer;                 /* "ipv4:127.0.0.1:1234" */
    const char *bearer_token;         /* from "authorization: Bearer ...", or NULL */
    const char *const *peer_uri_sans; /* URI SANs of a verified client certificate */
    size_t npeer_uri_sans;
    bool secure; /* the call came over TLS (the secure port) */
} xds_call_auth;

/* A unary handler: request bytes in, response bytes out (malloc'd, the server frees) or a
 * gRPC status code (grpc_status_code values) and message. Runs on a server thread. */
typedef int (*xds_unary_fn)(void *ud, const xds_call_auth *auth, const uint8_t *req, size_t req_len,
                            uint8_t **resp, size_t *resp_len, char **status_message);

xds_server *xds_server_new(const xds_server_opts *opts);
/* Register before xds_server_start. method is the full path ("/pkg.Service/Method"). */
void xds_server_register_unary(xds_server *s, const char *method, xds_unary_fn fn, void *ud);
/* Binds and starts serving. Returns 0, or -1 when the address cannot be bound (logged). */
int xds_server_start(xds_server *s);
/* The port actually bound (for ":0"). */
int xds_server_port(const xds_server *s);
/* The TLS port actually bound, 0 when none. */
int xds_server_secure_port(const xds_server *s);
void xds_server_free(xds_server *s);

/* A new snapshot was published (ud is the server; model_push_fn's shape: register it with
 * model_on_push before the model starts). snap is borrowed; req NULL means a full push.
 * Merges into each shard's mailbox and returns at once; any thread. */
void xds_server_on_push(void *ud, mesh_snapshot *snap, const mesh_push_request *req);
/* A new mesh config for the generators (any thread; copied): the settings of
 * xds_server_opts mesh_authz, mesh_telemetry and outbound_mode. What proxies hold changes
 * with the next push, which the caller makes full (model_set_mesh). */
void xds_server_set_mesh(xds_server *s, const xds_mesh_authz *authz,
                         const xds_mesh_telemetry *telemetry, xds_outbound_mode mode);

#endif
