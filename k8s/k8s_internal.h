/* k8s_int: internals shared by the k8s/ files (and their unit tests). Not for other
 * modules: they use k8s.h. */
#ifndef K8S_K8S_INTERNAL_H
#define K8S_K8S_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "k8s/k8s.h"
#include "pilot/base/util.h"

/* ---- connection settings (kubeconfig.c) ----------------------------------------------- */

typedef struct k8s_conn {
    char *server; /* without trailing '/' */
    char *ca_pem; /* certificate-authority(-data), PEM text; NULL = system roots */
    size_t ca_len;
    char *cert_pem; /* client-certificate(-data) */
    size_t cert_len;
    char *key_pem; /* client-key(-data) */
    size_t key_len;
    char *token;      /* a literal bearer token */
    char *token_file; /* re-read when it changes (in-cluster, tokenFile) */
    char *namespace;  /* context namespace or the in-cluster namespace file */
    bool insecure;    /* insecure-skip-tls-verify: true */
} k8s_conn;

/* Parses kubeconfig text. base_dir resolves relative file paths (kubectl resolves them
 * against the kubeconfig's folder). context NULL = current-context. Returns 0, or
 * K8S_EINVAL with err naming the field. Files named by the kubeconfig are read here,
 * except tokenFile which is only recorded. */
int k8s_kubeconfig_parse(const char *buf, size_t len, const char *base_dir, const char *context,
                         k8s_conn *out, char *err, size_t errlen);
int k8s_kubeconfig_load(const char *path, const char *context, k8s_conn *out, char *err,
                        size_t errlen);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT and sa_dir/{token,ca.crt,namespace}. */
int k8s_incluster_load(const char *sa_dir, k8s_conn *out, char *err, size_t errlen);
void k8s_conn_free(k8s_conn *c);

/* ---- client internals (client.c) ------------------------------------------------------ */

/* A new easy handle for server + path, with TLS, auth and a JSON Accept header set.
 * *hdrs receives the header list (free with curl_slist_free_all after the transfer).
 * Returns NULL with err set when the token file cannot be read. */
CURL *k8s_client_easy(k8s_client *c, const char *path, struct curl_slist **hdrs, char *err,
                      size_t errlen);

/* ---- watch stream lines (watchline.c) ------------------------------------------------- */

#define K8S_LINE_MAX (16u << 20) /* one watch event; larger objects are refused */

typedef struct k8s_linebuf {
    strbuf partial; /* the unfinished line carried across chunk boundaries */
} k8s_linebuf;

/* fn gets each complete line without its '\n' (a trailing '\r' is dropped too); empty
 * lines are skipped. Returning non-zero from fn stops feeding and is returned. */
typedef int (*k8s_line_fn)(void *ud, const char *line, size_t len);

void k8s_linebuf_init(k8s_linebuf *lb, size_t max);
/* Returns 0, fn's non-zero value, or -1 when a line would exceed the maximum (the buffer
 * is emptied: the stream must be restarted). */
int k8s_linebuf_feed(k8s_linebuf *lb, const char *p, size_t n, k8s_line_fn fn, void *ud);
void k8s_linebuf_reset(k8s_linebuf *lb);
void k8s_linebuf_free(k8s_linebuf *lb);

/* ---- backoff (watchline.c) ------------------------------------------------------------ */

/* client-go's reflector backoff: 800 ms doubling to 30 s, each delay stretched by a random
 * factor in [1, 1.5) so that many watchers do not retry in step. */
typedef struct k8s_backoff {
    int64_t initial_ms, max_ms, cur_ms;
    uint64_t rng;
} k8s_backoff;

void k8s_backoff_init(k8s_backoff *b, int64_t initial_ms, int64_t max_ms, uint64_t seed);
/* The next delay in ms: base * [1, 1.5), base = initial, 2*initial, ... capped at max. */
int64_t k8s_backoff_next(k8s_backoff *b);
void k8s_backoff_reset(k8s_backoff *b);
/* Uniform in [lo, hi] from the same generator. */
int64_t k8s_rand_range(uint64_t *rng, int64_t lo, int64_t hi);

/* ---- key set (watchline.c): the objects a reflector has reported, for relist
 * reconciliation. Keys are "namespace/name"; each entry keeps its resourceVersion and the
 * list generation in which it was last seen. ---------------------------------------- */

typedef struct k8s_keyent {
    char *key; /* NULL = empty slot; tombstones use K8S_KEY_TOMB */
    char *rv;
    uint32_t gen;
} k8s_keyent;

typedef struct k8s_keyset {
    k8s_keyent *slots;
    size_t cap, count, used; /* used counts tombstones too */
} k8s_keyset;

extern char k8s_key_tomb[];
#define K8S_KEY_TOMB k8s_key_tomb

void k8s_keyset_init(k8s_keyset *s);
k8s_keyent *k8s_keyset_get(k8s_keyset *s, const char *key);
/* Inserts or finds; a new entry has rv NULL and gen 0. */
k8s_keyent *k8s_keyset_put(k8s_keyset *s, const char *key);
/* Returns true when the key was present. */
bool k8s_keyset_del(k8s_keyset *s, const char *key);
void k8s_keyset_free(k8s_keyset *s);
/* Bytes held by the set (slots, keys, versions): the benchmark's retained-bytes figure. */
size_t k8s_keyset_bytes(const k8s_keyset *s);

/* ---- reflectors (reflector.c), driven by the source's thread (k8s_source.c) ----------- */

typedef enum {
    K8S_R_WAIT = 0, /* nothing in flight; (re)start at next_at_ns */
    K8S_R_LIST,     /* a list page is in flight */
    K8S_R_WATCH,    /* a watch stream is open */
} k8s_rstate;

typedef struct k8s_resdef {
    const char *group; /* "" = core */
    const char *kind;
    const char *plural;
    const char *metric_type; /* the type label of pilot_k8s_{reg,cfg}_events */
    bool config;             /* Istio config (cfg_events) or registry (reg_events) */
    const char *selector;    /* NULL, or a query term added to list and watch
                              * ("fieldSelector=metadata.name%3Dx"), already escaped */
} k8s_resdef;

struct k8s_source;

typedef struct k8s_reflector {
    struct k8s_source *src;
    k8s_resdef def;
    char *api_version; /* "v1", "networking.istio.io/v1" */
    char *path;        /* "/api/v1/services" */
    k8s_rstate state;
    bool need_list; /* the next start lists (first time, after 410) */
    CURL *easy;
    struct curl_slist *hdrs;
    strbuf body;    /* the list page being received */
    strbuf errbody; /* the head of a non-200 reply, for the log */
    k8s_linebuf lines;
    bool abort_relist; /* the stream said 410 (or another ERROR): relist */
    bool abort_bad;    /* the stream sent a bad or oversized line */
    char *rv;          /* last resourceVersion seen (list, event or bookmark) */
    char *cont;        /* continue token of the list in progress */
    char *list_rv;     /* resourceVersion of the list in progress */
    k8s_keyset known;  /* what the sink has been told exists */
    uint32_t list_gen;
    k8s_backoff backoff;
    int64_t next_at_ns;
    int64_t watch_start_ns;
    uint64_t watch_events; /* events in the current watch */
    bool synced;
    char *label[3]; /* "<type>,add", "<type>,update", "<type>,delete" */
    /* Stats, written on the k8s thread under src->mu, read by /debug/k8sz. */
    uint64_t st_events, st_relists, st_watches, st_errors;
    int64_t st_last_event_wall_ns;
    size_t st_objects, st_key_bytes;
    bool key_bytes_dirty; /* k8s thread only */
    char st_rv[64];
} k8s_reflector;

k8s_reflector *k8s_reflector_new(struct k8s_source *src, const k8s_resdef *def,
                                 const char *version);
void k8s_reflector_free(k8s_reflector *r);
/* Starts the next request (list or watch) on the source's multi handle. */
void k8s_reflector_begin(k8s_reflector *r);
/* The request finished with curl result cr. Schedules what comes next. */
void k8s_reflector_done(k8s_reflector *r, CURLcode cr);
/* Stats as JSON (caller holds src->mu). */
cJSON *k8s_reflector_stats(const k8s_reflector *r);

/* Source internals the reflectors use. */
CURLM *k8s_source_multi(struct k8s_source *s);
k8s_client *k8s_source_client(struct k8s_source *s);
const k8s_config *k8s_source_config(struct k8s_source *s);
void k8s_source_emit(struct k8s_source *s, k8s_reflector *r, source_event_type t, cJSON *obj,
                     int metric_event /* 0 add, 1 update, 2 delete */);
void k8s_source_lock(struct k8s_source *s);
void k8s_source_unlock(struct k8s_source *s);
uint64_t *k8s_source_rng(struct k8s_source *s);
/* A reflector finished its first list. */
void k8s_source_reflector_synced(struct k8s_source *s);

#endif
