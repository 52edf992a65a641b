/* debug: the table of HTTP debug endpoints served on --httpAddr and --monitoringAddr.
 *
 * Modules register handlers (usually at start-up, but any time is allowed); each has one
 * help line, shown by /debug and /debug/list. Handlers run on libmicrohttpd's threads and
 * may only read immutable data (a retained snapshot) or take their module's own lock
 * briefly.
 *
 * Ownership (the rule every registrant follows):
 * - The table owns its entries. An entry is refcounted and owns copies of its path and
 *   help text; a handler call in progress and every copy of the table taken to render
 *   /debug or /debug/list hold a reference, so a string is never freed under a reader.
 * - The table borrows ud. Whoever registers (fn, ud) must call dbg_unregister(path, ud)
 *   before ud goes away: it unlists the entry and returns only once no handler call with
 *   that (path, ud) is running, also a call of an entry a later registration replaced.
 *   After it returns, fn is never called with ud again.
 * - dbg_unregister must not be called from inside a handler (it would wait for itself).
 * - Stopping a server (dbg_server_stop) waits for its connection threads, so after every
 *   server is stopped no handler runs at all.
 */
#ifndef PILOT_OBS_DEBUG_H
#define PILOT_OBS_DEBUG_H

#include <stdbool.h>
#include <stddef.h>

#include "pilot/base/util.h"

typedef struct dbg_request dbg_request; /* opaque, owned by the HTTP layer */

typedef struct dbg_response {
    int status;               /* default 200 */
    const char *content_type; /* default "application/json" */
    strbuf body;              /* the handler appends; freed by the HTTP layer */
} dbg_response;

/* The value of query argument key ("proxyID"), "" when given without value, NULL absent. */
const char *dbg_arg(const dbg_request *r, const char *key);
/* True when "?pretty" was given: JSON should be indented. */
bool dbg_pretty(const dbg_request *r);
const char *dbg_path(const dbg_request *r);

typedef void (*dbg_handler_fn)(void *ud, const dbg_request *req, dbg_response *resp);

/* path is exact ("/debug/syncz"); help is one line (both copied). A later registration of
 * a path replaces the earlier one (whose running calls finish normally). Nothing is
 * registered when path or fn is NULL or the table is full (logged). */
void dbg_register(const char *path, const char *help, dbg_handler_fn fn, void *ud);
/* Removes path's entry if it was registered with ud, then waits until no call of a handler
 * registered as (path, ud) is running. Safe when nothing matches (then it only waits). Any
 * thread but a handler's. */
void dbg_unregister(const char *path, void *ud);

/* Appends cJSON as JSON text, indented when the request asked for ?pretty. */
struct cJSON;
void dbg_send_json(const dbg_request *r, dbg_response *resp, const struct cJSON *json);

/* Runs the handler of target ("/debug/syncz", "/debug/config_dump?proxyID=x": a path and
 * an optional query string, decoded here) as an HTTP GET would, on the calling thread, into
 * resp (initialised by the caller: status 200, body empty). Only the table answers (no
 * /metrics, /ready or index): istiod's internal debug mux, used by debug over xDS. An
 * unknown path answers 404. Not from inside a handler's own dbg_unregister. */
void dbg_call(const char *target, dbg_response *resp);

/* Off-loopback callers of /debug/ paths (istiod's allowAuthenticatedOrLocalhost): a caller
 * on a loopback address is served; any other must send "Authorization: Bearer <JWT>" that
 * fn accepts (returns 0; else non-zero with err filled), or gets 401. fn runs on the HTTP
 * connection's thread and may block. Without an authenticator every off-loopback caller
 * gets 401. Setting NULL waits for calls of the previous fn to end, so its ud may then go. */
typedef int (*dbg_auth_fn)(void *ud, const char *token, char *err, size_t errlen);
void dbg_set_authenticator(dbg_auth_fn fn, void *ud);
struct sockaddr;
bool dbg_addr_is_loopback(const struct sockaddr *sa);

/* ---- the servers (pilot/obs/http.c, libmicrohttpd's threads) ---------------------------- */

typedef struct dbg_server dbg_server;
typedef bool (*dbg_ready_fn)(void *ud);

/* /ready answers 200 (empty body) once fn(ud) returns true, 503 before. */
void dbg_set_ready(dbg_ready_fn fn, void *ud);
/* Binds addr (":8080" = every interface, "127.0.0.1:0" = a free port) and serves the
 * table above, /debug, /debug/list, /ready and /version; with monitoring also /metrics.
 * Returns NULL when addr is malformed or cannot be bound (logged). */
dbg_server *dbg_server_start(const char *addr, bool monitoring);
/* The port actually bound. */
int dbg_server_port(const dbg_server *s);
/* The listening socket the servers use (also for other HTTP servers: pilot/webhook):
 * addr as above; returns the fd (close-on-exec, listening) and the bound port, or -1
 * (logged). */
int dbg_listen_socket(const char *addr, int *port_out);
void dbg_server_stop(dbg_server *s);

#endif
