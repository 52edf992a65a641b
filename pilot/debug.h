/* debug: the table of HTTP debug endpoints served on --httpAddr and --monitoringAddr.
 *
 * Modules register handlers at start-up (before debug_http_start); each has one help line,
 * shown by /debug and /debug/list. Handlers run on libmicrohttpd's thread and may only
 * read immutable data (a retained snapshot) or take their module's own lock briefly.
 */
#ifndef PILOT_DEBUG_H
#define PILOT_DEBUG_H

#include <stdbool.h>

#include "util.h"

typedef struct dbg_request dbg_request;   /* opaque, owned by the HTTP layer */

typedef struct dbg_response {
    int status;                   /* default 200 */
    const char *content_type;     /* default "application/json" */
    strbuf body;                  /* the handler appends; freed by the HTTP layer */
} dbg_response;

/* The value of query argument key ("proxyID"), "" when given without value, NULL absent. */
const char *dbg_arg(const dbg_request *r, const char *key);
/* True when "?pretty" was given: JSON should be indented. */
bool dbg_pretty(const dbg_request *r);
const char *dbg_path(const dbg_request *r);

typedef void (*dbg_handler_fn)(void *ud, const dbg_request *req, dbg_response *resp);

/* path is exact ("/debug/syncz"); help is one line. Later registration of a path wins. */
void dbg_register(const char *path, const char *help, dbg_handler_fn fn, void *ud);

/* Appends cJSON as JSON text, indented when the request asked for ?pretty. */
struct cJSON;
void dbg_send_json(const dbg_request *r, dbg_response *resp, const struct cJSON *json);

#endif
