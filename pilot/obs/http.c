/* http: the debug and monitoring HTTP servers (see debug.h), on libmicrohttpd.
 *
 * Threads: libmicrohttpd's (one polling thread per server, one thread per connection),
 * plus whichever thread registers or unregisters.
 * Locks: `tab_mu` guards the handler table (the list, every entry's listed/refs/running);
 * it is held only to find an entry and take a reference, never while a handler runs, and
 * it is a leaf lock. Handlers read immutable snapshots or take their own locks.
 * Ownership is stated at the top of debug.h: entries are refcounted and own their strings,
 * so what a copy or a running call holds is never freed under it.
 */
#include "pilot/obs/debug.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pilot_version.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/obs/metrics.h"

/* Debug output for a big mesh is large, but not unbounded. */
#define DBG_MAX_BODY (256u << 20)
#define DBG_MAX_HANDLERS 128
#define DBG_MAX_CONNECTIONS 64
#define DBG_MAX_TOKEN 16384 /* bearer tokens are about a kilobyte */
#define DBG_MAX_ARGS 32     /* query arguments of an internal call */

/* One registration. Unlisted entries stay alive (off the table) while calls or copies
 * still hold them; the last reference frees the entry and its strings. */
typedef struct dbg_entry {
    struct dbg_entry *next; /* every live entry, listed or not, under tab_mu */
    char *path;
    char *help;
    dbg_handler_fn fn;
    void *ud;
    bool listed;      /* found by lookups; holds one reference */
    unsigned refs;    /* the table's (while listed) + one per running call or copy */
    unsigned running; /* handler calls in progress (dbg_unregister waits for 0) */
} dbg_entry;

static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tab_cv = PTHREAD_COND_INITIALIZER; /* a call ended (running dropped) */
static dbg_entry *entries;
static size_t nlisted;
/* The entry whose handler this thread is running: dbg_unregister from inside a handler
 * must not wait for itself. */
static _Thread_local const dbg_entry *tl_current;
static dbg_ready_fn ready_fn;
static void *ready_ud;

/* A request from an HTTP connection (conn) or from dbg_call (conn NULL: the query is in
 * keys/vals, decoded). */
struct dbg_request {
    struct MHD_Connection *conn;
    const char *path;
    char **keys, **vals;
    size_t nargs;
};

/* The off-loopback rule's authenticator (dbg_set_authenticator), under tab_mu; auth_running
 * counts calls in progress so that clearing it can wait for them. */
static dbg_auth_fn auth_fn;
static void *auth_ud;
static unsigned auth_running;

struct dbg_server {
    struct MHD_Daemon *daemon;
    int port;
    bool monitoring;
    char *addr;
};

/* ---- the table ---------------------------------------------------------------------------- */

/* Drops one reference; the last one unlinks and frees. tab_mu held. */
static void entry_unref_locked(dbg_entry *e)
{
    if (--e->refs > 0)
        return;
    for (dbg_entry **pp = &entries; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    free(e->path);
    free(e->help);
    free(e);
}

/* Takes e off the table (it lives on while referenced). tab_mu held. */
static void entry_unlist_locked(dbg_entry *e)
{
    if (!e->listed)
        return;
    e->listed = false;
    nlisted--;
    entry_unref_locked(e);
}

static dbg_entry *entry_find_locked(const char *path)
{
    for (dbg_entry *e = entries; e != NULL; e = e->next)
        if (e->listed && strcmp(e->path, path) == 0)
            return e;
    return NULL;
}

void dbg_register(const char *path, const char *help, dbg_handler_fn fn, void *ud)
{
    if (!path || !fn)
        return;
    dbg_entry *e = xcalloc(1, sizeof(*e));
    e->path = xstrdup(path);
    e->help = xstrdup(help ? help : "");
    e->fn = fn;
    e->ud = ud;
    e->listed = true;
    e->refs = 1;
    pthread_mutex_lock(&tab_mu);
    dbg_entry *old = entry_find_locked(path);
    if (!old && nlisted == DBG_MAX_HANDLERS) {
        pthread_mutex_unlock(&tab_mu);
        LOG_ERR("http", "debug table full: %s not registered", path);
        free(e->path);
        free(e->help);
        free(e);
        return;
    }
    if (old)
        entry_unlist_locked(old);
    e->next = entries;
    entries = e;
    nlisted++;
    pthread_mutex_unlock(&tab_mu);
}

/* Is a call of a handler registered as (path, ud) running, other than this thread's? */
static bool calls_running_locked(const char *path, void *ud)
{
    for (dbg_entry *e = entries; e != NULL; e = e->next) {
        if (e->ud != ud || strcmp(e->path, path) != 0)
            continue;
        if (e->running > (tl_current == e ? 1u : 0u))
            return true;
    }
    return false;
}

void dbg_unregister(const char *path, void *ud)
{
    if (!path)
        return;
    if (tl_current && tl_current->ud == ud && strcmp(tl_current->path, path) == 0)
        LOG_ERR("http", "%s unregistered from its own handler: not waiting for that call", path);
    pthread_mutex_lock(&tab_mu);
    dbg_entry *e = entry_find_locked(path);
    if (e && e->ud == ud)
        entry_unlist_locked(e);
    while (calls_running_locked(path, ud))
        pthread_cond_wait(&tab_cv, &tab_mu);
    pthread_mutex_unlock(&tab_mu);
}

void dbg_set_ready(dbg_ready_fn fn, void *ud)
{
    pthread_mutex_lock(&tab_mu);
    ready_fn = fn;
    ready_ud = ud;
    pthread_mutex_unlock(&tab_mu);
}

static int cmp_entry_path(const void *a, const void *b)
{
    return strcmp((*(dbg_entry *const *)a)->path, (*(dbg_entry *const *)b)->path);
}

/* A sorted copy of the listed entries, each referenced (release with table_release), so
 * their paths and help texts stay valid while the page is written. */
static size_t table_copy(dbg_entry **out)
{
    size_t n = 0;
    pthread_mutex_lock(&tab_mu);
    for (dbg_entry *e = entries; e != NULL && n < DBG_MAX_HANDLERS; e = e->next) {
        if (!e->listed)
            continue;
        e->refs++;
        out[n++] = e;
    }
    pthread_mutex_unlock(&tab_mu);
    qsort(out, n, sizeof(*out), cmp_entry_path);
    return n;
}

static void table_release(dbg_entry **tab, size_t n)
{
    pthread_mutex_lock(&tab_mu);
    for (size_t i = 0; i < n; i++)
        entry_unref_locked(tab[i]);
    pthread_mutex_unlock(&tab_mu);
}

/* ---- request helpers ---------------------------------------------------------------------- */

typedef struct arg_find {
    const char *key;
    const char *value;
    bool found;
} arg_find;

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    arg_find *f = cls;
    if (key && strcmp(key, f->key) == 0) {
        f->found = true;
        f->value = value ? value : "";
        return MHD_NO; /* stop */
    }
    return MHD_YES;
}

const char *dbg_arg(const dbg_request *r, const char *key)
{
    if (r->conn == NULL) {
        for (size_t i = 0; i < r->nargs; i++)
            if (strcmp(r->keys[i], key) == 0)
                return r->vals[i];
        return NULL;
    }
    arg_find f = {.key = key};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_iter, &f);
    return f.found ? f.value : NULL;
}

bool dbg_pretty(const dbg_request *r)
{
    const char *v = dbg_arg(r, "pretty");
    return v && strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
}

const char *dbg_path(const dbg_request *r)
{
    return r->path;
}

void dbg_send_json(const dbg_request *r, dbg_response *resp, const cJSON *json)
{
    char *text = dbg_pretty(r) ? cJSON_Print(json) : cJSON_PrintUnformatted(json);
    if (!text) {
        resp->status = 500;
        strbuf_appends(&resp->body, "{\"error\":\"cannot encode JSON\"}");
        return;
    }
    if (strbuf_appends(&resp->body, text) != 0) {
        strbuf_reset(&resp->body);
        resp->status = 500;
        strbuf_appends(&resp->body, "{\"error\":\"response too large\"}");
    } else if (dbg_pretty(r)) {
        strbuf_appends(&resp->body, "\n");
    }
    free(text);
}

/* ---- built-in pages ----------------------------------------------------------------------- */

static void html_escape(strbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            strbuf_appends(b, "&lt;");
            break;
        case '>':
            strbuf_appends(b, "&gt;");
            break;
        case '&':
            strbuf_appends(b, "&amp;");
            break;
        case '"':
            strbuf_appends(b, "&quot;");
            break;
        default:
            strbuf_append(b, s, 1);
        }
    }
}

static void page_index(dbg_response *resp)
{
    dbg_entry **tab = xmalloc(DBG_MAX_HANDLERS * sizeof(*tab));
    size_t n = table_copy(tab);
    resp->content_type = "text/html; charset=utf-8";
    strbuf_appends(&resp->body,
                   "<!DOCTYPE html>\n<html><head><title>Pilot Debug Console</title></head>\n"
                   "<body>\n<h1>Pilot Debug Console</h1>\n<table>\n"
                   "<tr><th>Endpoint</th><th>Description</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        strbuf_appends(&resp->body, "<tr><td><a href=\"");
        html_escape(&resp->body, tab[i]->path);
        strbuf_appends(&resp->body, "\">");
        html_escape(&resp->body, tab[i]->path);
        strbuf_appends(&resp->body, "</a></td><td>");
        html_escape(&resp->body, tab[i]->help);
        strbuf_appends(&resp->body, "</td></tr>\n");
    }
    strbuf_appends(&resp->body, "</table>\n</body></html>\n");
    table_release(tab, n);
    free(tab);
}

static void page_list(const dbg_request *r, dbg_response *resp)
{
    dbg_entry **tab = xmalloc(DBG_MAX_HANDLERS * sizeof(*tab));
    size_t n = table_copy(tab);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(tab[i]->path));
    table_release(tab, n);
    dbg_send_json(r, resp, arr);
    cJSON_Delete(arr);
    free(tab);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* srv is NULL for dbg_call: then only the debug table answers, as istiod's internal mux. */
static void dispatch(const dbg_server *srv, const dbg_request *r, dbg_response *resp)
{
    const char *path = r->path;
    if (srv == NULL && strncmp(path, "/debug/", 7) != 0)
        goto not_found;
    if (strcmp(path, "/ready") == 0) {
        pthread_mutex_lock(&tab_mu);
        dbg_ready_fn fn = ready_fn;
        void *ud = ready_ud;
        pthread_mutex_unlock(&tab_mu);
        resp->content_type = "text/plain; charset=utf-8";
        resp->status = fn && fn(ud) ? 200 : 503;
        return;
    }
    if (strcmp(path, "/version") == 0) {
        resp->content_type = "text/plain; charset=utf-8";
        strbuf_appendf(&resp->body, "%s-%s-Clean", PILOT_REPORTED_VERSION, PILOT_GIT_REVISION);
        return;
    }
    if (srv != NULL && srv->monitoring && strcmp(path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        metrics_render(&resp->body);
        return;
    }
    if (strcmp(path, "/debug") == 0 || strcmp(path, "/debug/") == 0) {
        page_index(resp);
        return;
    }
    if (strcmp(path, "/debug/list") == 0) {
        page_list(r, resp);
        return;
    }
    /* The call holds a reference and counts as running, so the entry's strings outlive it
     * and dbg_unregister of its (path, ud) waits for it. */
    pthread_mutex_lock(&tab_mu);
    dbg_entry *e = entry_find_locked(path);
    if (e) {
        e->refs++;
        e->running++;
    }
    pthread_mutex_unlock(&tab_mu);
    if (e) {
        const dbg_entry *outer = tl_current;
        tl_current = e;
        e->fn(e->ud, r, resp);
        tl_current = outer;
        pthread_mutex_lock(&tab_mu);
        e->running--;
        pthread_cond_broadcast(&tab_cv);
        entry_unref_locked(e);
        pthread_mutex_unlock(&tab_mu);
        return;
    }
not_found:
    resp->status = 404;
    resp->content_type = "text/plain; charset=utf-8";
    strbuf_appends(&resp->body, "404 page not found\n");
}

/* ---- who may call (istiod's allowAuthenticatedOrLocalhost) ------------------------------ */

void dbg_set_authenticator(dbg_auth_fn fn, void *ud)
{
    pthread_mutex_lock(&tab_mu);
    auth_fn = fn;
    auth_ud = ud;
    /* the previous authenticator's ud may go away once this returns */
    while (fn == NULL && auth_running > 0)
        pthread_cond_wait(&tab_cv, &tab_mu);
    pthread_mutex_unlock(&tab_mu);
}

bool dbg_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* The token of "Authorization: Bearer <t>" (pointer into the request), or NULL. */
static const char *request_bearer(struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0 || strlen(v + 7) > DBG_MAX_TOKEN)
        return NULL;
    v += 7;
    while (*v == ' ')
        v++;
    return *v ? v : NULL;
}

/* istiod's rule for its debug handlers (every /debug/ path but the /debug index): a caller
 * on loopback is trusted, any other must authenticate like xDS. These servers speak plain
 * HTTP, so of istiod's authenticators only the bearer JWT can succeed here; without an
 * authenticator (no TokenReview configured) callers off loopback are refused. */
static bool request_allowed(struct MHD_Connection *conn, const char *url)
{
    if (strncmp(url, "/debug/", 7) != 0)
        return true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && dbg_addr_is_loopback(ci->client_addr))
        return true;
    const char *token = request_bearer(conn);
    char err[256] = "";
    bool ok = false;
    pthread_mutex_lock(&tab_mu);
    dbg_auth_fn fn = auth_fn;
    void *ud = auth_ud;
    if (fn != NULL && token != NULL)
        auth_running++;
    pthread_mutex_unlock(&tab_mu);
    if (fn != NULL && token != NULL) {
        ok = fn(ud, token, err, sizeof(err)) == 0;
        pthread_mutex_lock(&tab_mu);
        auth_running--;
        pthread_cond_broadcast(&tab_cv);
        pthread_mutex_unlock(&tab_mu);
    }
    if (!ok)
        LOG_WARN("http", "Failed to authenticate %s: %s", url,
                 token == NULL ? "no bearer token"
                 : fn == NULL  ? "no authenticator configured"
                               : (err[0] ? err : "token refused"));
    return ok;
}

/* ---- internal calls (debug over xDS) ------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Query-string decoding ('+' is a space, %XX a byte); a malformed escape stays as written. */
static char *query_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
                   (lo = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

void dbg_call(const char *target, dbg_response *resp)
{
    size_t plen = strcspn(target, "?");
    char *path = xstrndup(target, plen);
    dbg_request req = {.path = path};
    const char *q = target[plen] == '?' ? target + plen + 1 : "";
    size_t cap = 0;
    while (*q && req.nargs < DBG_MAX_ARGS) {
        size_t len = strcspn(q, "&");
        if (len > 0) {
            size_t klen = strcspn(q, "=");
            if (klen > len)
                klen = len;
            if (req.nargs == cap) {
                cap = cap ? cap * 2 : 4;
                req.keys = xrealloc(req.keys, cap * sizeof(char *));
                req.vals = xrealloc(req.vals, cap * sizeof(char *));
            }
            req.keys[req.nargs] = query_decode(q, klen);
            req.vals[req.nargs] =
                klen < len ? query_decode(q + klen + 1, len - klen - 1) : xstrdup("");
            req.nargs++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    dispatch(NULL, &req, resp);
    util_strv_free(req.keys, req.nargs);
    util_strv_free(req.vals, req.nargs);
    free(path);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    static int marker;
    const dbg_server *srv = cls;
    if (*con_cls == NULL) {
        /* First call: headers only. Answer on the second. */
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* request bodies are ignored */
        return MHD_YES;
    }
    dbg_request req = {.conn = conn, .path = url};
    dbg_response resp = {.status = 200, .content_type = "application/json"};
    strbuf_init(&resp.body, DBG_MAX_BODY);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "POST") != 0) {
        resp.status = 405;
        resp.content_type = "text/plain; charset=utf-8";
        strbuf_appends(&resp.body, "method not allowed\n");
    } else if (!request_allowed(conn, url)) {
        resp.status = 401; /* no detail, as istiod (and xDS) give none */
        resp.content_type = "text/plain; charset=utf-8";
    } else {
        dispatch(srv, &req, &resp);
    }
    size_t len = 0;
    char *body = strbuf_steal(&resp.body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            resp.content_type ? resp.content_type : "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, resp.status ? (unsigned)resp.status : 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- servers ------------------------------------------------------------------------------ */

/* Parses "host:port", ":port" or "[v6]:port" and returns a listening socket, or -1. */
int dbg_listen_socket(const char *addr, int *port_out)
{
    int fd = -1, rc = -1;
    char host[256] = "";
    const char *colon = strrchr(addr, ':');
    if (!colon) {
        LOG_ERR("http", "%s: want host:port", addr);
        goto out;
    }
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= sizeof(host)) {
        LOG_ERR("http", "%s: host too long", addr);
        goto out;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || port < 0 || port > 65535) {
        LOG_ERR("http", "%s: bad port", addr);
        goto out;
    }

    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    bool any = host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (any) {
        /* Every interface: IPv6 any with dual stack, IPv4 any when IPv6 is missing. */
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_any;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            int off = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        } else {
            memset(&ss, 0, sizeof(ss));
            sin->sin_family = AF_INET;
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
            sin->sin_port = htons((uint16_t)port);
            sslen = sizeof(*sin);
        }
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        int gai = getaddrinfo(host, NULL, &hints, &res);
        if (gai != 0 || !res) {
            LOG_ERR("http", "%s: cannot resolve %s: %s", addr, host, gai_strerror(gai));
            goto out;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        sslen = res->ai_addrlen;
        if (ss.ss_family == AF_INET)
            sin->sin_port = htons((uint16_t)port);
        else
            sin6->sin6_port = htons((uint16_t)port);
        freeaddrinfo(res);
    }
    if (fd < 0)
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LOG_ERR("http", "%s: socket: %s", addr, strerror(errno));
        goto out;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 128) != 0) {
        LOG_ERR("http", "%s: cannot listen: %s", addr, strerror(errno));
        goto out;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        LOG_ERR("http", "%s: getsockname: %s", addr, strerror(errno));
        goto out;
    }
    *port_out = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound)->sin6_port);
    rc = 0;
out:
    if (rc != 0 && fd >= 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

dbg_server *dbg_server_start(const char *addr, bool monitoring)
{
    if (!addr)
        return NULL;
    dbg_server *s = xcalloc(1, sizeof(*s));
    s->monitoring = monitoring;
    s->addr = xstrdup(addr);
    int fd = dbg_listen_socket(addr, &s->port);
    if (fd < 0)
        goto fail;
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)DBG_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!s->daemon) {
        LOG_ERR("http", "%s: cannot start the HTTP server", addr);
        close(fd);
        goto fail;
    }
    LOG_INFO("http", "%s server listening on %s (port %d)", monitoring ? "monitoring" : "http",
             addr, s->port);
    return s;
fail:
    free(s->addr);
    free(s);
    return NULL;
}

int dbg_server_port(const dbg_server *s)
{
    return s ? s->port : -1;
}

void dbg_server_stop(dbg_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s->addr);
    free(s);
}
