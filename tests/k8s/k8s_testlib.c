/* k8s_testlib: see k8s_testlib.h. */
#include "k8s_testlib.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pilot/base/util.h"

/* ---- debug registration stand-in ------------------------------------------------------ */

static struct {
    char path[64];
    dbg_handler_fn fn;
    void *ud;
} handlers[16];
static int nhandlers;

void dbg_register(const char *path, const char *help, dbg_handler_fn fn, void *ud)
{
    (void)help;
    for (int i = 0; i < nhandlers; i++) {
        if (strcmp(handlers[i].path, path) == 0) {
            handlers[i].fn = fn;
            handlers[i].ud = ud;
            return;
        }
    }
    if (nhandlers < 16) {
        snprintf(handlers[nhandlers].path, sizeof(handlers[0].path), "%s", path);
        handlers[nhandlers].fn = fn;
        handlers[nhandlers++].ud = ud;
    }
}

void dbg_unregister(const char *path, void *ud)
{
    for (int i = 0; i < nhandlers; i++) {
        if (strcmp(handlers[i].path, path) == 0 && handlers[i].ud == ud) {
            handlers[i].fn = NULL;
            handlers[i].ud = NULL;
        }
    }
}

void dbg_send_json(const dbg_request *r, dbg_response *resp, const struct cJSON *json)
{
    (void)r;
    char *s = cJSON_PrintUnformatted(json);
    strbuf_appends(&resp->body, s);
    free(s);
}

dbg_handler_fn test_dbg_handler(const char *path, void **ud)
{
    for (int i = 0; i < nhandlers; i++) {
        if (strcmp(handlers[i].path, path) == 0) {
            *ud = handlers[i].ud;
            return handlers[i].fn;
        }
    }
    return NULL;
}

/* ---- stand-in process ------------------------------------------------------------------ */

int standin_start(standin *s, const char *const *args)
{
    const char *src = getenv("PILOT_SRC");
    char script[512], portfile[300];
    const char *argv[32];
    int n = 0;

    memset(s, 0, sizeof(*s));
    if (src == NULL || access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "SKIP: PILOT_SRC or /usr/bin/python3 missing\n");
        return 77;
    }
    snprintf(script, sizeof(script), "%s/tests/k8s/apiserver.py", src);
    snprintf(s->dir, sizeof(s->dir), "/tmp/k8s-standin-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = script;
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    for (int i = 0; args != NULL && args[i] != NULL && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        /* A failed test longjmps past standin_stop: the server must not outlive us. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) { /* up to 10 s for python to come up */
        FILE *f = fopen(portfile, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &s->port) != 1)
                s->port = 0;
            fclose(f);
            if (s->port > 0)
                break;
        }
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    if (s->port <= 0) {
        standin_stop(s);
        return -1;
    }
    snprintf(s->kubeconfig, sizeof(s->kubeconfig), "%s/kubeconfig", s->dir);
    FILE *f = fopen(s->kubeconfig, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "apiVersion: v1\nkind: Config\ncurrent-context: standin\n"
            "clusters:\n- name: standin\n  cluster:\n    server: http://127.0.0.1:%d\n"
            "contexts:\n- name: standin\n  context: {cluster: standin, user: tester}\n"
            "users:\n- name: tester\n  user:\n    tokenFile: token\n",
            s->port);
    fclose(f);
    char tok[320];
    snprintf(tok, sizeof(tok), "%s/token", s->dir);
    f = fopen(tok, "w");
    if (f == NULL)
        return -1;
    fputs("token-one\n", f);
    fclose(f);
    return 0;
}

void standin_stop(standin *s)
{
    char cmd[320];
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    strbuf_append(ud, p, size * n);
    return size * n;
}

long standin_call(standin *s, const char *method, const char *path, const char *body, cJSON **out)
{
    char url[512];
    long status = 0;
    strbuf b;
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "X-Standin-Test: 1");

    strbuf_init(&b, 256u << 20);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
    if (body != NULL || strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (out != NULL)
        *out = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    strbuf_free(&b);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

/* ---- recording sink --------------------------------------------------------------------- */

void rec_key(const cJSON *obj, char *out, size_t outlen)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(md, "name");
    snprintf(out, outlen, "%s %s/%s", cJSON_IsString(k) ? k->valuestring : "?",
             cJSON_IsString(ns) ? ns->valuestring : "", cJSON_IsString(n) ? n->valuestring : "");
}

static void rec_event(void *ud, source_event_type t, cJSON *obj, const char *origin)
{
    rec_sink *r = ud;
    char key[512];
    rec_key(obj, key, sizeof(key));
    pthread_mutex_lock(&r->mu);
    snprintf(r->last_origin, sizeof(r->last_origin), "%s", origin);
    cJSON_DeleteItemFromObjectCaseSensitive(r->objs, key);
    if (t == SOURCE_EV_UPSERT) {
        r->upserts++;
        cJSON_AddItemToObject(r->objs, key, obj);
    } else {
        r->deletes++;
        cJSON_Delete(obj);
    }
    pthread_mutex_unlock(&r->mu);
}

static void rec_synced(void *ud, const char *name)
{
    rec_sink *r = ud;
    (void)name;
    pthread_mutex_lock(&r->mu);
    r->synced++;
    pthread_mutex_unlock(&r->mu);
}

void rec_init(rec_sink *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->objs = cJSON_CreateObject();
}

void rec_free(rec_sink *r)
{
    cJSON_Delete(r->objs);
    pthread_mutex_destroy(&r->mu);
}

source_sink rec_sink_of(rec_sink *r)
{
    source_sink s = {.event = rec_event, .synced = rec_synced, .ud = r};
    return s;
}

bool wait_for(bool (*pred)(void *), void *ud, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        if (pred(ud))
            return true;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    return pred(ud);
}
