/* k8s_testlib: running the stand-in API server (apiserver.py) from a C test, talking to
 * its admin endpoints, and a recording source_sink. Also stands in for pilot/obs/http.c's
 * dbg_register/dbg_send_json so the k8s tests link without the HTTP server. */
#ifndef K8S_TESTLIB_H
#define K8S_TESTLIB_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "pilot/base/source.h"
#include "pilot/obs/debug.h"

typedef struct standin {
    pid_t pid;
    int port;
    char dir[256];
    char kubeconfig[300];
} standin;

/* Starts apiserver.py with extra arguments (NULL-terminated list). Returns 0, or 77 when
 * PILOT_SRC or python is missing (the test should skip). Writes dir/kubeconfig (http). */
int standin_start(standin *s, const char *const *args);
void standin_stop(standin *s);
/* POST body (may be NULL) to http://127.0.0.1:port<path>; returns the HTTP status and, when
 * out is non-NULL, the parsed reply. */
long standin_call(standin *s, const char *method, const char *path, const char *body, cJSON **out);

/* A sink that keeps the latest object per "Kind ns/name". */
typedef struct rec_sink {
    pthread_mutex_t mu;
    cJSON *objs; /* object: key -> object */
    int upserts, deletes, synced;
    char last_origin[32];
} rec_sink;

void rec_init(rec_sink *r);
void rec_free(rec_sink *r);
source_sink rec_sink_of(rec_sink *r);
/* "Kind ns/name" of obj. */
void rec_key(const cJSON *obj, char *out, size_t outlen);

/* Polls pred(ud) every 20 ms up to ms milliseconds. */
bool wait_for(bool (*pred)(void *), void *ud, int ms);

/* The last registered debug handler for path (from the dbg_register stand-in). */
dbg_handler_fn test_dbg_handler(const char *path, void **ud);

#endif
