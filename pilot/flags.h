/* flags: the command line of `pilot-discovery` and the PILOT_* environment, istiod's way.
 *
 *   pilot-discovery discovery [--flag value | --flag=value]...
 *   pilot-discovery version
 *   pilot-discovery --help | help | discovery --help
 *
 * Pure parsing (plus reading --meshConfig): no thread, no global state.
 */
#ifndef PILOT_FLAGS_H
#define PILOT_FLAGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FLAGS_CMD_DISCOVERY = 0,
    FLAGS_CMD_VERSION,
    FLAGS_CMD_HELP,
} flags_cmd;

typedef struct pilot_flags {
    flags_cmd cmd;
    char *config_dir;             /* NULL: none */
    char *http_addr;              /* ":8080" */
    char *grpc_addr;              /* ":15010" */
    char *monitoring_addr;        /* ":15014" */
    char *secure_grpc_addr;       /* "" = off */
    char *domain;                 /* "cluster.local" */
    char *mesh_config;            /* NULL: none */
    char *log_output_level;       /* "default:info" */
    char *kubeconfig;             /* NULL: none */
    char *cluster_id;             /* "Kubernetes" */
    int64_t keepalive_max_server_connection_age_ns; /* 30m */
    int64_t debounce_after_ns;    /* PILOT_DEBOUNCE_AFTER, 100ms */
    int64_t debounce_max_ns;      /* PILOT_DEBOUNCE_MAX, 10s */
    /* From --meshConfig when present. */
    char *trust_domain;           /* "cluster.local" */
    char *root_namespace;         /* "istio-system" */
} pilot_flags;

/* Fills *f from argv and the environment (getenv). Returns 0 on success (f->cmd says what
 * to do), or -1 with err holding one line naming the flag at fault; the caller exits 2.
 * Always call flags_free afterwards, whatever the result. */
int flags_parse(int argc, char **argv, pilot_flags *f, char *err, size_t errlen);
void flags_free(pilot_flags *f);
/* The --help text. */
const char *flags_usage(void);

#endif
