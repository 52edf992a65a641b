/* cfgdir: the config-directory source. See cfgdir.h for what it promises.
 *
 * How a change is found: every inotify event (any name, hidden ones too, since Kubernetes
 * ConfigMap volumes swap a hidden "..data" symlink) arms a short quiet timer; when the
 * tree has been quiet for CFGDIR_QUIET_NS (or CFGDIR_MAX_DELAY_NS after the first event,
 * so a busy writer cannot starve us) the whole tree is walked again. A file is re-read
 * when its stat signature changed or an event named it, and re-parsed only when its bytes
 * changed. Objects are compared by identity (API group, kind, namespace, name) and by a
 * hash of their JSON, so an edit re-sends only what changed.
 *
 * Half-written files: a writer that truncates and rewrites in place (cp, echo >, most
 * tools) would otherwise be caught in the middle and its objects deleted then re-added.
 * A file modified (IN_MODIFY) and not yet closed (IN_CLOSE_WRITE) is left alone for up to
 * CFGDIR_WRITE_GRACE_NS; and after reading a file the event queue is drained: if the file
 * was touched meanwhile, what was read is dropped and the next pass reads it again.
 *
 * When two files hold the same object, the last one read wins; when one of them drops
 * it, the other's copy is sent again instead of a delete.
 *
 * Threads: cfgdir_start runs the first scan on the caller's thread, then one watch thread
 * owns every field below until cfgdir_free joins it. No locks: the sink does its own, and
 * the stop eventfd is the only thing both threads touch.
 */
#include "pilot/cfgdir/cfgdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/base/yaml.h"

#define CFGDIR_SCOPE "config"
#define CFGDIR_MAX_FILE (16u << 20)                  /* bytes per file */
#define CFGDIR_QUIET_NS (20LL * 1000 * 1000)         /* coalescing: quiet time before a rescan */
#define CFGDIR_MAX_DELAY_NS (1000LL * 1000 * 1000)   /* ...but never later than this */
#define CFGDIR_MAX_DEPTH 32                          /* directory nesting */
#define CFGDIR_MAX_DIRTY 4096                        /* named paths remembered between rescans */
#define CFGDIR_WRITE_GRACE_NS (2000LL * 1000 * 1000) /* how long an open writer is waited for */
#define CFGDIR_WATCH_MASK                                                                          \
    (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |            \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

typedef struct cobj {
    char *id;      /* "group/kind/namespace/name" */
    uint64_t hash; /* of the compact JSON */
    cJSON *obj;    /* as last sent */
} cobj;

typedef struct cfile {
    char *path;
    /* stat signature: a change means "read again" */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
    bool have_content;
    uint64_t content_hash; /* of the last bytes read, parsed or not */
    cobj *objs;
    size_t nobjs;
    bool seen;   /* found by the current walk */
    int missing; /* passes in a row that did not find it */
} cfile;

/* A bounded set of paths; past its bound it stands for "every path". */
typedef struct pathset {
    char **v;
    size_t n;
    bool all;
} pathset;

typedef struct writer {
    char *path;
    int64_t since; /* first IN_MODIFY without a close since */
} writer;

typedef struct cwatch {
    int wd;
    char *path;
    bool seen;
} cwatch;

struct cfgdir {
    char *root;
    source_sink sink;
    int ifd;    /* inotify */
    int stopfd; /* eventfd: cfgdir_free asks the thread to leave */
    pthread_t thread;
    bool started, running;
    cfile *files;
    size_t nfiles, capfiles;
    cwatch *watches;
    size_t nwatches, capwatches;
    pathset dirty;      /* paths named by events since the current/last pass began */
    pathset scan_dirty; /* what the pass in progress re-reads regardless of stat */
    pathset modified;   /* IN_MODIFY since the current pass began: reads may be torn */
    bool events;        /* any event (hidden names too) since the current pass began */
    writer *writers;    /* files modified and not closed yet */
    size_t nwriters;
};

/* ---- objects ---- */

static bool nonempty_string(const cJSON *j)
{
    return cJSON_IsString(j) && j->valuestring[0];
}

/* Identity of a Kubernetes object, or NULL with why set. The namespace defaults to
 * "default" (as kubectl apply would place it); cluster-scoped kinds just carry that. */
static char *obj_identity(const cJSON *o, char *why, size_t whylen)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(o, "apiVersion");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");

    if (!cJSON_IsObject(o)) {
        snprintf(why, whylen, "not an object");
        return NULL;
    }
    if (!nonempty_string(kind)) {
        snprintf(why, whylen, "missing field \"kind\"");
        return NULL;
    }
    if (!nonempty_string(av)) {
        snprintf(why, whylen, "%s: missing field \"apiVersion\"", kind->valuestring);
        return NULL;
    }
    if (!cJSON_IsObject(md) || !nonempty_string(name)) {
        snprintf(why, whylen, "%s: missing field \"metadata.name\"", kind->valuestring);
        return NULL;
    }
    if (ns && !cJSON_IsNull(ns) && !cJSON_IsString(ns)) {
        snprintf(why, whylen, "%s %s: \"metadata.namespace\" must be a string", kind->valuestring,
                 name->valuestring);
        return NULL;
    }
    const char *slash = strchr(av->valuestring, '/');
    int glen = slash ? (int)(slash - av->valuestring) : 0;
    const char *nss = nonempty_string(ns) ? ns->valuestring : "default";
    return xasprintf("%.*s/%s/%s/%s", glen, av->valuestring, kind->valuestring, nss,
                     name->valuestring);
}

/* What a DELETE event carries: apiVersion, kind, metadata.name and .namespace. */
static cJSON *obj_stub(const cJSON *o)
{
    cJSON *d = cJSON_CreateObject();
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    cJSON *dmd;

    cJSON_AddItemToObject(d, "apiVersion",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "apiVersion"), 1));
    cJSON_AddItemToObject(d, "kind",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "kind"), 1));
    dmd = cJSON_AddObjectToObject(d, "metadata");
    cJSON_AddItemToObject(dmd, "name",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(md, "name"), 1));
    if (nonempty_string(ns))
        cJSON_AddStringToObject(dmd, "namespace", ns->valuestring);
    return d;
}

static void send_upsert(cfgdir *c, const cobj *o, const char *path)
{
    LOG_DEBUG(CFGDIR_SCOPE, "%s: upsert %s", path, o->id);
    c->sink.event(c->sink.ud, SOURCE_EV_UPSERT, cJSON_Duplicate(o->obj, 1), path);
}

static void cobj_free(cobj *o)
{
    free(o->id);
    cJSON_Delete(o->obj);
}

static cobj *file_find_obj(const cfile *f, const char *id)
{
    for (size_t i = 0; i < f->nobjs; i++)
        if (strcmp(f->objs[i].id, id) == 0)
            return &f->objs[i];
    return NULL;
}

/* o leaves file `from`: another file's copy is sent again if one exists, else a delete. */
static void retire_obj(cfgdir *c, const cfile *from, const cobj *o)
{
    for (size_t i = 0; i < c->nfiles; i++) {
        const cfile *f = &c->files[i];
        cobj *other;
        if (f == from || !(other = file_find_obj(f, o->id)))
            continue;
        /* a rename looks like this too: resending is idempotent, so no need to tell */
        LOG_DEBUG(CFGDIR_SCOPE, "%s: %s still defined in %s", from->path, o->id, f->path);
        send_upsert(c, other, f->path);
        return;
    }
    LOG_DEBUG(CFGDIR_SCOPE, "%s: delete %s", from->path, o->id);
    c->sink.event(c->sink.ud, SOURCE_EV_DELETE, obj_stub(o->obj), from->path);
}

/* Adds one object (taken) to the list; a second object with the same identity in one
 * file replaces the first, as a second `kubectl apply` of it would. */
static void objs_add(cobj **objs, size_t *n, size_t *cap, cJSON *o, char *id)
{
    char *s = cJSON_PrintUnformatted(o);
    uint64_t h = util_hash64(s, strlen(s), 0);
    free(s);
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*objs)[i].id, id) == 0) {
            cobj_free(&(*objs)[i]);
            (*objs)[i] = (cobj){id, h, o};
            return;
        }
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *objs = xrealloc(*objs, *cap * sizeof **objs);
    }
    (*objs)[(*n)++] = (cobj){id, h, o};
}

/* One parsed document (taken) to objects: a List is expanded into its items. Invalid
 * objects are logged and skipped; the rest of the file still applies. */
static void doc_to_objs(const char *path, size_t docno, cJSON *doc, cobj **objs, size_t *n,
                        size_t *cap)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
    cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    char why[256];

    if (nonempty_string(kind) && util_has_suffix(kind->valuestring, "List") &&
        cJSON_IsArray(items)) {
        /* typed lists (ServiceList...) may leave kind and apiVersion off their items */
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(doc, "apiVersion");
        size_t klen = strlen(kind->valuestring) - 4;
        size_t idx = 0;
        cJSON *it;
        while ((it = items->child)) {
            cJSON_DetachItemViaPointer(items, it);
            if (cJSON_IsObject(it) && klen && !cJSON_GetObjectItemCaseSensitive(it, "kind")) {
                char *k = xstrndup(kind->valuestring, klen);
                cJSON_AddStringToObject(it, "kind", k);
                free(k);
            }
            if (cJSON_IsObject(it) && nonempty_string(av) &&
                !cJSON_GetObjectItemCaseSensitive(it, "apiVersion"))
                cJSON_AddStringToObject(it, "apiVersion", av->valuestring);
            char *id = obj_identity(it, why, sizeof why);
            if (!id) {
                LOG_ERR(CFGDIR_SCOPE, "%s: document %zu: items[%zu]: %s", path, docno, idx, why);
                cJSON_Delete(it);
            } else {
                objs_add(objs, n, cap, it, id);
            }
            idx++;
        }
        cJSON_Delete(doc);
        return;
    }
    char *id = obj_identity(doc, why, sizeof why);
    if (!id) {
        LOG_ERR(CFGDIR_SCOPE, "%s: document %zu: %s", path, docno, why);
        cJSON_Delete(doc);
        return;
    }
    objs_add(objs, n, cap, doc, id);
}

/* ---- files ---- */

static cfile *file_find(cfgdir *c, const char *path)
{
    for (size_t i = 0; i < c->nfiles; i++)
        if (strcmp(c->files[i].path, path) == 0)
            return &c->files[i];
    return NULL;
}

static void file_free(cfile *f)
{
    for (size_t i = 0; i < f->nobjs; i++)
        cobj_free(&f->objs[i]);
    free(f->objs);
    free(f->path);
}

/* Removes files[i], retiring every object it had. */
static void file_remove(cfgdir *c, size_t i)
{
    cfile *f = &c->files[i];
    for (size_t k = 0; k < f->nobjs; k++)
        retire_obj(c, f, &f->objs[k]);
    file_free(f);
    c->files[i] = c->files[--c->nfiles];
}

static bool pathset_has(const pathset *ps, const char *path)
{
    if (ps->all)
        return true;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->v[i], path) == 0)
            return true;
    return false;
}

/* Takes path. */
static void pathset_add(pathset *ps, char *path)
{
    if (ps->all || pathset_has(ps, path)) {
        free(path);
        return;
    }
    if (ps->n == CFGDIR_MAX_DIRTY) {
        ps->all = true;
        free(path);
        return;
    }
    if (!ps->v)
        ps->v = xcalloc(CFGDIR_MAX_DIRTY, sizeof *ps->v);
    ps->v[ps->n++] = path;
}

static void pathset_clear(pathset *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->v[i]);
    ps->n = 0;
    ps->all = false;
}

static writer *writer_find(cfgdir *c, const char *path)
{
    for (size_t i = 0; i < c->nwriters; i++)
        if (strcmp(c->writers[i].path, path) == 0)
            return &c->writers[i];
    return NULL;
}

static void writer_drop(cfgdir *c, const char *path)
{
    writer *w = writer_find(c, path);
    if (w) {
        free(w->path);
        *w = c->writers[--c->nwriters];
    }
}

/* Someone has path open for writing and is not done: leave it for now. */
static bool being_written(cfgdir *c, const char *path)
{
    writer *w = writer_find(c, path);
    return w && util_now_ns() - w->since < CFGDIR_WRITE_GRACE_NS;
}

static bool read_events(cfgdir *c);

/* Reads a whole regular file of at most CFGDIR_MAX_FILE bytes. Returns 0, or -1 with
 * why set. O_NONBLOCK: a FIFO swapped in after the stat must not hang the thread. */
static int read_file(const char *path, char **out, size_t *outlen, char *why, size_t whylen)
{
    int rc = -1, fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > CFGDIR_MAX_FILE) {
        snprintf(why, whylen, "file is %lld bytes, larger than the %u byte limit; skipped",
                 (long long)st.st_size, CFGDIR_MAX_FILE);
        goto out;
    }
    /* room for the size stat saw plus some growth; a file still growing is read on, up to
     * one byte past the limit so "too large" can be told apart */
    size_t cap = (size_t)st.st_size + 4096;
    if (cap > CFGDIR_MAX_FILE + 1)
        cap = CFGDIR_MAX_FILE + 1;
    buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap > CFGDIR_MAX_FILE) {
                snprintf(why, whylen, "file grew past the %u byte limit; skipped", CFGDIR_MAX_FILE);
                goto out;
            }
            cap = cap * 2 > CFGDIR_MAX_FILE + 1 ? CFGDIR_MAX_FILE + 1 : cap * 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *out = buf;
    *outlen = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* A JSON file: one value (an object or a List). Returns 0, or -1 with err
 * "line L column C: ...". */
static int parse_json(const char *buf, size_t len, cJSON ***docs, size_t *ndocs, char *err,
                      size_t errlen)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    size_t off = end && end >= buf ? (size_t)(end - buf) : 0;

    if (j) {
        /* trailing garbage after the value is an error, as in encoding/json */
        while (off < len &&
               (buf[off] == ' ' || buf[off] == '\n' || buf[off] == '\r' || buf[off] == '\t'))
            off++;
        if (off == len) {
            *docs = xmalloc(sizeof **docs);
            (*docs)[0] = j;
            *ndocs = 1;
            return 0;
        }
        cJSON_Delete(j);
    }
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(err, errlen, "line %zu column %zu: %s", line, col,
             j ? "invalid character after top-level value" : "invalid JSON");
    return -1;
}

/* Reads and diffs one file the walk found (st from stat, links followed). */
static void file_visit(cfgdir *c, const char *path, const struct stat *st)
{
    cfile *f = file_find(c, path);
    char why[512];
    char *buf = NULL;
    size_t len = 0;
    cJSON **docs = NULL;
    size_t ndocs = 0;
    cobj *nobjs = NULL;
    size_t nn = 0, ncap = 0;

    if (!f) {
        if (c->nfiles == c->capfiles) {
            c->capfiles = c->capfiles ? c->capfiles * 2 : 16;
            c->files = xrealloc(c->files, c->capfiles * sizeof *c->files);
        }
        f = &c->files[c->nfiles++];
        memset(f, 0, sizeof *f);
        f->path = xstrdup(path);
        f->ino = (ino_t)-1; /* no signature yet */
    }
    f->seen = true;
    if (being_written(c, path))
        return; /* its close, or the grace timer, brings another pass */
    if (!pathset_has(&c->scan_dirty, path) && f->dev == st->st_dev && f->ino == st->st_ino &&
        f->size == st->st_size && f->mtim.tv_sec == st->st_mtim.tv_sec &&
        f->mtim.tv_nsec == st->st_mtim.tv_nsec && f->ctim.tv_sec == st->st_ctim.tv_sec &&
        f->ctim.tv_nsec == st->st_ctim.tv_nsec)
        return;

    int rrc = read_file(path, &buf, &len, why, sizeof why);
    /* touched while we read it (events are queued by the writer's own syscalls, so they
     * are visible now): drop what was read, the next pass reads it again */
    read_events(c);
    if (pathset_has(&c->modified, path) || being_written(c, path))
        goto out;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = st->st_size;
    f->mtim = st->st_mtim;
    f->ctim = st->st_ctim;
    if (rrc < 0) {
        /* keep what the file last gave: a transient read error must not delete config */
        LOG_ERR(CFGDIR_SCOPE, "%s: %s", path, why);
        goto out;
    }
    uint64_t h = util_hash64(buf, len, 0);
    if (f->have_content && f->content_hash == h)
        goto out;
    f->have_content = true;
    f->content_hash = h;

    int prc = util_has_suffix(path, ".json")
                  ? parse_json(buf, len, &docs, &ndocs, why, sizeof why)
                  : yaml_to_json_docs(buf, len, &docs, &ndocs, why, sizeof why);
    if (prc < 0) {
        LOG_ERR(CFGDIR_SCOPE, "%s: %s", path, why);
        goto out; /* the file's last good objects stay */
    }
    for (size_t i = 0; i < ndocs; i++) {
        doc_to_objs(path, i + 1, docs[i], &nobjs, &nn, &ncap);
        docs[i] = NULL;
    }
    /* diff: new or changed objects first, then those the file no longer has */
    for (size_t i = 0; i < nn; i++) {
        const cobj *old = file_find_obj(f, nobjs[i].id);
        if (!old || old->hash != nobjs[i].hash)
            send_upsert(c, &nobjs[i], path);
    }
    for (size_t i = 0; i < f->nobjs; i++) {
        bool kept = false;
        for (size_t k = 0; k < nn && !kept; k++)
            kept = strcmp(nobjs[k].id, f->objs[i].id) == 0;
        if (!kept)
            retire_obj(c, f, &f->objs[i]);
    }
    for (size_t i = 0; i < f->nobjs; i++)
        cobj_free(&f->objs[i]);
    free(f->objs);
    f->objs = nobjs;
    f->nobjs = nn;
    nobjs = NULL;
    nn = 0;
    LOG_DEBUG(CFGDIR_SCOPE, "%s: %zu objects", path, f->nobjs);
out:
    for (size_t i = 0; i < nn; i++)
        cobj_free(&nobjs[i]);
    free(nobjs);
    for (size_t i = 0; i < ndocs; i++)
        cJSON_Delete(docs[i]);
    free(docs);
    free(buf);
}

/* ---- directories ---- */

static bool config_name(const char *name)
{
    return util_has_suffix(name, ".yaml") || util_has_suffix(name, ".yml") ||
           util_has_suffix(name, ".json");
}

static cwatch *watch_find(cfgdir *c, int wd)
{
    for (size_t i = 0; i < c->nwatches; i++)
        if (c->watches[i].wd == wd)
            return &c->watches[i];
    return NULL;
}

static void watch_dir(cfgdir *c, const char *dir)
{
    int wd = inotify_add_watch(c->ifd, dir, CFGDIR_WATCH_MASK);
    if (wd < 0) {
        /* ENOSPC: fs.inotify.max_user_watches; changes below dir will be missed */
        LOG_WARN(CFGDIR_SCOPE, "%s: cannot watch: %s", dir, strerror(errno));
        return;
    }
    cwatch *w = watch_find(c, wd);
    if (!w) {
        if (c->nwatches == c->capwatches) {
            c->capwatches = c->capwatches ? c->capwatches * 2 : 16;
            c->watches = xrealloc(c->watches, c->capwatches * sizeof *c->watches);
        }
        w = &c->watches[c->nwatches++];
        w->wd = wd;
        w->path = NULL;
    }
    if (!w->path || strcmp(w->path, dir) != 0) {
        /* the same directory moved within the tree keeps its wd: follow its new name */
        free(w->path);
        w->path = xstrdup(dir);
    }
    w->seen = true;
}

static int hidden_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Walks dir: watches it (before listing, so nothing created meanwhile is missed), then
 * visits its config files and subdirectories in name order. Returns -1 when dir cannot
 * be listed. */
static int walk(cfgdir *c, const char *dir, int depth)
{
    struct dirent **names = NULL;
    int n;

    watch_dir(c, dir);
    n = scandir(dir, &names, hidden_filter, alphasort);
    if (n < 0) {
        LOG_ERR(CFGDIR_SCOPE, "%s: cannot list: %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth + 1 >= CFGDIR_MAX_DEPTH)
                LOG_ERR(CFGDIR_SCOPE, "%s: directories nested deeper than %d; skipped", path,
                        CFGDIR_MAX_DEPTH);
            else
                walk(c, path, depth + 1);
        } else if (config_name(names[i]->d_name) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            /* symlinked files are followed (ConfigMap volumes); symlinked dirs are not, so
             * the walk cannot loop */
            file_visit(c, path, &st);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return 0;
}

/* One full pass: read what changed, retire files that are gone, drop stale watches. */
static void rescan(cfgdir *c)
{
    /* events from here on belong to the next pass */
    pathset tmp = c->scan_dirty;
    c->scan_dirty = c->dirty;
    c->dirty = tmp;
    pathset_clear(&c->dirty);
    pathset_clear(&c->modified);
    c->events = false;
    for (size_t i = 0; i < c->nfiles; i++)
        c->files[i].seen = false;
    for (size_t i = 0; i < c->nwatches; i++)
        c->watches[i].seen = false;
    walk(c, c->root, 0);
    for (size_t i = c->nfiles; i-- > 0;) {
        cfile *f = &c->files[i];
        if (f->seen) {
            f->missing = 0;
            continue;
        }
        /* The walk races with the tree: a file renamed during the pass is missed under
         * both names. When events came in meanwhile another pass follows at once, so wait
         * for it (a few times at most) rather than delete objects only to add them back. */
        if (c->events && ++f->missing < 3)
            continue;
        LOG_INFO(CFGDIR_SCOPE, "%s: removed", f->path);
        file_remove(c, i);
    }
    for (size_t i = c->nwatches; i-- > 0;) {
        cwatch *w = &c->watches[i];
        if (w->seen)
            continue;
        inotify_rm_watch(c->ifd, w->wd); /* may already be gone with its directory */
        free(w->path);
        c->watches[i] = c->watches[--c->nwatches];
    }
    pathset_clear(&c->scan_dirty);
}

/* Drains inotify (never blocks). Returns true when anything happened. */
static bool read_events(cfgdir *c)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;

    for (;;) {
        ssize_t r = read(c->ifd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (char *p = buf; p < buf + r;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            any = true;
            if (ev->mask & IN_Q_OVERFLOW) {
                c->dirty.all = true;
                continue;
            }
            cwatch *w = watch_find(c, ev->wd);
            if (ev->mask & IN_IGNORED) {
                if (w) {
                    free(w->path);
                    *w = c->watches[--c->nwatches];
                }
                continue;
            }
            /* hidden names only cause a pass (stat tells what changed behind them) */
            if (!w || !ev->len || ev->name[0] == '.')
                continue;
            char *path = xasprintf("%s/%s", w->path, ev->name);
            if ((ev->mask & IN_MODIFY) && !(ev->mask & IN_ISDIR)) {
                if (!writer_find(c, path)) {
                    c->writers = xrealloc(c->writers, (c->nwriters + 1) * sizeof *c->writers);
                    c->writers[c->nwriters++] = (writer){xstrdup(path), util_now_ns()};
                }
                pathset_add(&c->modified, xstrdup(path));
            }
            if (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM))
                writer_drop(c, path);
            pathset_add(&c->dirty, path);
        }
    }
    if (any)
        c->events = true;
    return any;
}

/* When the next pass is due, or 0 for none: events wait for quiet; a file held open for
 * writing is looked at again when its grace time ends. */
static int64_t next_due(const cfgdir *c, int64_t quiet_at, int64_t latest_at)
{
    int64_t due = 0;
    if (c->events)
        due = quiet_at < latest_at ? quiet_at : latest_at;
    for (size_t i = 0; i < c->nwriters; i++) {
        int64_t t = c->writers[i].since + CFGDIR_WRITE_GRACE_NS;
        if (!due || t < due)
            due = t;
    }
    return due;
}

static void *cfgdir_thread(void *arg)
{
    cfgdir *c = arg;
    int64_t now = util_now_ns();
    /* events seen during the first scan already count */
    int64_t quiet_at = now + CFGDIR_QUIET_NS, latest_at = now + CFGDIR_MAX_DELAY_NS;

    for (;;) {
        struct pollfd pfd[2] = {{c->stopfd, POLLIN, 0}, {c->ifd, POLLIN, 0}};
        int64_t due = next_due(c, quiet_at, latest_at);
        int timeout = -1;
        if (due) {
            int64_t left = due - util_now_ns();
            timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        int n = poll(pfd, 2, timeout);
        if (n < 0 && errno != EINTR) {
            LOG_ERR(CFGDIR_SCOPE, "poll: %s; no longer watching %s", strerror(errno), c->root);
            break;
        }
        if (pfd[0].revents)
            break;
        if (pfd[1].revents) {
            bool had = c->events;
            if (read_events(c)) {
                now = util_now_ns();
                if (!had)
                    latest_at = now + CFGDIR_MAX_DELAY_NS;
                quiet_at = now + CFGDIR_QUIET_NS;
            }
        }
        due = next_due(c, quiet_at, latest_at);
        if (due && util_now_ns() >= due) {
            /* writers past their grace are read as they are now */
            for (size_t i = c->nwriters; i-- > 0;)
                if (util_now_ns() - c->writers[i].since >= CFGDIR_WRITE_GRACE_NS) {
                    pathset_add(&c->dirty, xstrdup(c->writers[i].path));
                    free(c->writers[i].path);
                    c->writers[i] = c->writers[--c->nwriters];
                }
            rescan(c);
            /* events during the pass start the next quiet period */
            now = util_now_ns();
            quiet_at = now + CFGDIR_QUIET_NS;
            latest_at = now + CFGDIR_MAX_DELAY_NS;
        }
    }
    return NULL;
}

/* ---- public ---- */

cfgdir *cfgdir_new(const char *dir, source_sink sink)
{
    cfgdir *c = NULL;
    struct stat st;

    if (!dir || !*dir) {
        LOG_ERR(CFGDIR_SCOPE, "config directory: no path given");
        return NULL;
    }
    if (stat(dir, &st) < 0) {
        LOG_ERR(CFGDIR_SCOPE, "config directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        LOG_ERR(CFGDIR_SCOPE, "config directory %s: not a directory", dir);
        return NULL;
    }
    if (access(dir, R_OK | X_OK) < 0) {
        LOG_ERR(CFGDIR_SCOPE, "config directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    c = xcalloc(1, sizeof *c);
    c->root = xstrdup(dir);
    for (size_t l = strlen(c->root); l > 1 && c->root[l - 1] == '/'; l--)
        c->root[l - 1] = '\0';
    c->sink = sink;
    c->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    c->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->ifd < 0 || c->stopfd < 0) {
        LOG_ERR(CFGDIR_SCOPE, "config directory %s: cannot watch: %s", dir, strerror(errno));
        goto fail;
    }
    return c;
fail:
    cfgdir_free(c);
    return NULL;
}

int cfgdir_start(cfgdir *c)
{
    if (!c || c->started)
        return -1;
    c->started = true;
    rescan(c);
    LOG_INFO(CFGDIR_SCOPE, "config directory %s: %zu files read", c->root, c->nfiles);
    if (c->sink.synced)
        c->sink.synced(c->sink.ud, "configdir");
    int err = pthread_create(&c->thread, NULL, cfgdir_thread, c);
    if (err) {
        LOG_ERR(CFGDIR_SCOPE, "config directory %s: cannot start the watch thread: %s", c->root,
                strerror(err));
        return -1;
    }
    c->running = true;
    return 0;
}

void cfgdir_free(cfgdir *c)
{
    if (!c)
        return;
    if (c->running) {
        uint64_t one = 1;
        while (write(c->stopfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_join(c->thread, NULL);
    }
    if (c->ifd >= 0)
        close(c->ifd);
    if (c->stopfd >= 0)
        close(c->stopfd);
    for (size_t i = 0; i < c->nfiles; i++)
        file_free(&c->files[i]);
    free(c->files);
    for (size_t i = 0; i < c->nwatches; i++)
        free(c->watches[i].path);
    free(c->watches);
    pathset_clear(&c->dirty);
    free(c->dirty.v);
    pathset_clear(&c->scan_dirty);
    free(c->scan_dirty.v);
    pathset_clear(&c->modified);
    free(c->modified.v);
    for (size_t i = 0; i < c->nwriters; i++)
        free(c->writers[i].path);
    free(c->writers);
    free(c->root);
    free(c);
}
