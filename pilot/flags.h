/* flags: the command line of `pilot-discovery` and the PILOT_* environment, istiod's way.
 *
 *   pilot-discovery discovery [--flag value | --flag=value]...
 *   pilot-discovery version
 *   pilot-discovery request METHOD PATH [BODY]   (istiod's: an HTTP request to 127.0.0.1:15014)
 *   pilot-discovery --help | help | discovery --help
 *
 * Pure parsing (plus reading --meshConfig): no thread, no global state.
 */
#ifndef PILOT_FLAGS_H
#define PILOT_FLAGS_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "xds/gen/gen.h"

typedef enum {
    FLAGS_CMD_DISCOVERY = 0,
    FLAGS_CMD_VERSION,
    FLAGS_CMD_HELP,
    FLAGS_CMD_REQUEST,
} flags_cmd;

/* The mesh config fields we apply: what --meshConfig (or, in Kubernetes mode, ConfigMap
 * istio key `mesh`) sets; the rest of a mesh config is accepted and has no effect. */
typedef struct pilot_mesh {
    char *trust_domain;   /* trustDomain, "cluster.local" */
    char *root_namespace; /* rootNamespace, "istio-system" */
    bool auto_mtls_off;   /* enableAutoMtls: false */
    char *default_config; /* defaultConfig (ProxyConfig) as compact JSON, NULL when absent */
    /* trustDomainAliases and the ext_authz extensionProviders (envoyExtAuthzHttp,
     * envoyExtAuthzGrpc; other provider kinds are skipped). Checked for shape here; what
     * istiod checks when it builds (port range, statusOnError, the service) is checked by
     * the generators, where a bad provider makes its CUSTOM policies deny. */
    xds_mesh_authz mesh_authz;
    /* accessLogFile, accessLogEncoding, accessLogFormat, disableEnvoyListenerLog and whether
     * defaultProviders.metrics keeps prometheus (the xDS generators' telemetry filters). */
    xds_mesh_telemetry mesh_telemetry;
    xds_outbound_mode outbound_mode; /* outboundTrafficPolicy.mode, ALLOW_ANY by default */
    /* defaultServiceExportTo, defaultVirtualServiceExportTo, defaultDestinationRuleExportTo */
    mesh_export_defaults export_defaults;
    /* ingressClass, ingressControllerMode, ingressService, ingressSelector */
    mesh_ingress_settings ingress;
} pilot_mesh;

/* Parses one mesh config document (YAML or JSON, len bytes of text; "" or only comments =
 * every default) into *out, which it overwrites. where names the source in errors
 * ("--meshConfig: /etc/istio/config/mesh"). Returns 0, or -1 with err naming the field;
 * *out is then cleared. Free with flags_mesh_clear. */
int flags_mesh_parse(const char *text, size_t len, const char *where, pilot_mesh *out, char *err,
                     size_t errlen);
/* Frees what m holds (not m) and zeroes it. */
void flags_mesh_clear(pilot_mesh *m);
/* The largest mesh config file read. */
#define FLAGS_MESH_CONFIG_MAX (4u << 20)

typedef struct pilot_flags {
    flags_cmd cmd;
    /* `request METHOD PATH [BODY]`: borrowed from argv */
    const char *req_method, *req_path, *req_body;
    char *config_dir;       /* NULL: none */
    char *http_addr;        /* ":8080" */
    char *grpc_addr;        /* ":15010" */
    char *monitoring_addr;  /* ":15014" */
    char *secure_grpc_addr; /* NULL = not given: ":15012" in kube mode, else off; "" = off */
    char *https_addr;       /* ":15017": the webhooks (/inject, /validate); "" = off */
    char *domain;           /* "cluster.local" */
    char *mesh_config;      /* NULL: none */
    char *log_output_level; /* "default:info" */
    char *kubeconfig;       /* NULL: none */
    char *cluster_id;       /* "Kubernetes" */
    int64_t keepalive_max_server_connection_age_ns; /* 30m */
    int64_t keepalive_interval_ns;                  /* 30s */
    int64_t keepalive_timeout_ns;                   /* 10s */
    int64_t debounce_after_ns;                      /* PILOT_DEBOUNCE_AFTER, 100ms */
    int64_t debounce_max_ns;                        /* PILOT_DEBOUNCE_MAX, 10s */
    int64_t leader_lease_duration_ns; /* PILOT_LEADER_LEASE_DURATION, 30s (istiod's) */
    /* The sidecar injector (pilot/webhook), from istiod's environment (it has no flags). */
    const char *revision; /* REVISION, "" = the default revision (borrowed from environ) */
    bool native_sidecars; /* ENABLE_NATIVE_SIDECARS, false (Istio 1.24's default) */
    /* ENABLE_TLS_ON_SIDECAR_INGRESS, false (istiod's default): Sidecar ingress `tls` applies */
    bool sidecar_ingress_tls;
    /* K8S_INGRESS_NS: where Kubernetes Ingresses' Gateways live (borrowed from environ) */
    const char *ingress_ns;
    /* The built-in CA (certs/). */
    char *ca_certs_dir;           /* --caCertsDir, "/etc/cacerts": plug-in CA, wins when present */
    char *ca_state_dir;           /* --caStateDir, "./var/run/pilot-ca" (config-directory mode) */
    char *ca_key_type;            /* --caKeyType, "rsa" (RSA 2048) or "ecdsa" (P-256) */
    int64_t ca_default_ttl_ns;    /* DEFAULT_WORKLOAD_CERT_TTL, 24h */
    int64_t ca_max_ttl_ns;        /* MAX_WORKLOAD_CERT_TTL, 90 days (2160h) */
    int64_t ca_root_ttl_ns;       /* CITADEL_SELF_SIGNED_CA_CERT_TTL, 10 years (87600h) */
    int64_t ca_check_interval_ns; /* CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL, 1h */
    /* From --meshConfig when present (defaults otherwise); pilot/meshwatch.c follows the
     * file (and ConfigMap istio) afterwards. */
    pilot_mesh mesh;
} pilot_flags;

/* Fills *f from argv and the environment (getenv). Returns 0 on success (f->cmd says what
 * to do), or -1 with err holding one line naming the flag at fault; the caller exits 2.
 * Always call flags_free afterwards, whatever the result. */
int flags_parse(int argc, char **argv, pilot_flags *f, char *err, size_t errlen);
void flags_free(pilot_flags *f);
/* The --help text. */
const char *flags_usage(void);

#endif
