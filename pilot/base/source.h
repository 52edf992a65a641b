/* source: how config sources (the config directory, the Kubernetes watcher) hand objects
 * to the model. Both produce the same events, so both go through one validation and model
 * path.
 *
 * A source calls these from its own thread; the model queues them and applies them on the
 * model thread (see pilot/model/model.h). Objects are Kubernetes-shaped JSON (what
 * `kubectl get -o json` prints), owned by the callee after the call.
 */
#ifndef PILOT_BASE_SOURCE_H
#define PILOT_BASE_SOURCE_H

#include <cjson/cJSON.h>

typedef enum {
    SOURCE_EV_UPSERT = 0, /* added or modified */
    SOURCE_EV_DELETE,     /* obj carries at least apiVersion, kind, metadata.name/namespace */
} source_event_type;

typedef struct source_sink {
    /* One object changed. origin names where it came from, for error lines: a file path,
     * or "kubernetes". obj ownership passes to the sink. */
    void (*event)(void *ud, source_event_type type, cJSON *obj, const char *origin);
    /* The source finished its initial load (every initial list or the first scan). */
    void (*synced)(void *ud, const char *source_name);
    void *ud;
} source_sink;

#endif
