/* filewatch: see filewatch.h for what it promises.
 *
 * Threads: cfgdir_filewatch_start reads the baseline on the caller's thread, then the
 * watch thread owns every field until cfgdir_filewatch_stop joins it; the stop eventfd is
 * the only thing both touch.
 */
#include "pilot/cfgdir/filewatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#define FW_SCOPE "config"
#define FW_QUIET_NS (20LL * 1000 * 1000)      /* coalescing: quiet time before a re-read */
#define FW_MAX_DELAY_NS (500LL * 1000 * 1000) /* ...but never later than this */
#define FW_WRITE_GRACE_NS                                                                          \
    (2000LL * 1000 * 1000) /* how long an open in-place writer is waited for */
#define FW_MASK                                                                                    \
    (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |            \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct cfgdir_filewatch {
    char *path, *dir, *base;
    char *target_dir; /* the directory path resolves into, when not dir; NULL otherwise */
    size_t max_bytes;
    cfgdir_filewatch_fn fn;
    void *ud;
    int ifd, stopfd;
    int wd_dir, wd_target;
    bool have;     /* a baseline or a delivery exists */
    uint64_t hash; /* of the bytes last delivered (or the baseline) */
    size_t len;
    bool missing_logged, too_big_logged;
    pthread_t thread;
};

/* The file's bytes through its symlinks, or NULL when it is absent, not regular or too big
 * (each logged once per episode). */
static char *fw_read(cfgdir_filewatch *w, size_t *len)
{
    char *buf = NULL;
    int fd = open(w->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!w->missing_logged)
            LOG_WARN(FW_SCOPE, "%s: %s; keeping the last mesh config until it is back", w->path,
                     strerror(errno));
        w->missing_logged = true;
        return NULL;
    }
    w->missing_logged = false;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > w->max_bytes) {
        if (!w->too_big_logged)
            LOG_WARN(FW_SCOPE, "%s: not a regular file under %zu bytes; ignored", w->path,
                     w->max_bytes);
        w->too_big_logged = true;
        goto out;
    }
    w->too_big_logged = false;
    buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shrunk while read: the next event re-reads it */
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
out:
    close(fd);
    return buf;
}

/* Follows where path resolves now: a ConfigMap swap moves it into another hidden
 * directory, whose own writes must be seen too. */
static void fw_track_target(cfgdir_filewatch *w)
{
    char real[PATH_MAX];
    if (!realpath(w->path, real))
        return;
    char *slash = strrchr(real, '/');
    if (slash)
        *slash = '\0';
    const char *td = slash && real[0] ? real : "/";
    char realdir[PATH_MAX];
    bool same = realpath(w->dir, realdir) && strcmp(realdir, td) == 0;
    if (!same && w->target_dir && strcmp(w->target_dir, td) == 0)
        return;
    if (w->wd_target >= 0)
        inotify_rm_watch(w->ifd, w->wd_target); /* may be gone with its directory */
    free(w->target_dir);
    w->target_dir = NULL;
    w->wd_target = -1;
    if (same)
        return;
    w->target_dir = xstrdup(td);
    w->wd_target = inotify_add_watch(w->ifd, td, FW_MASK);
}

static void fw_check(cfgdir_filewatch *w)
{
    fw_track_target(w);
    size_t len = 0;
    char *buf = fw_read(w, &len);
    if (!buf)
        return;
    uint64_t h = util_hash64(buf, len, 0);
    if (!w->have || h != w->hash || len != w->len) {
        w->have = true;
        w->hash = h;
        w->len = len;
        w->fn(w->ud, w->path, buf, len);
    }
    free(buf);
}

/* Drains inotify; *open_write follows an in-place writer of our file (IN_MODIFY seen, its
 * IN_CLOSE_WRITE not yet). Returns true when anything happened. */
static bool fw_drain(cfgdir_filewatch *w, bool *open_write)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(w->ifd, buf, sizeof buf);
        if (n <= 0)
            return any;
        any = true;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len && strcmp(ev->name, w->base) == 0) {
                if (ev->mask & IN_MODIFY)
                    *open_write = true;
                if (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))
                    *open_write = false;
            }
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
}

static void *fw_main(void *arg)
{
    cfgdir_filewatch *w = arg;
    int64_t first = 0, due = 0;
    bool open_write = false;
    for (;;) {
        int timeout = -1;
        if (due) {
            int64_t left = due - util_now_ns();
            timeout = left <= 0 ? 0 : (int)(left / 1000000) + 1;
        }
        struct pollfd pf[2] = {{.fd = w->ifd, .events = POLLIN},
                               {.fd = w->stopfd, .events = POLLIN}};
        int r = poll(pf, 2, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        int64_t now = util_now_ns();
        if (r > 0 && (pf[0].revents & POLLIN) && fw_drain(w, &open_write)) {
            if (!first)
                first = now;
            /* a writer with the file open is waited for (up to the grace), anything else
             * after a quiet time (up to the max delay) */
            int64_t cap = first + FW_MAX_DELAY_NS;
            due = open_write ? first + FW_WRITE_GRACE_NS
                             : (now + FW_QUIET_NS < cap ? now + FW_QUIET_NS : cap);
            continue;
        }
        if (due && now >= due) {
            due = first = 0;
            open_write = false;
            fw_check(w);
        }
    }
    return NULL;
}

cfgdir_filewatch *cfgdir_filewatch_start(const char *path, size_t max_bytes, cfgdir_filewatch_fn fn,
                                         void *ud)
{
    cfgdir_filewatch *w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    w->max_bytes = max_bytes;
    w->fn = fn;
    w->ud = ud;
    w->ifd = w->stopfd = w->wd_dir = w->wd_target = -1;
    const char *slash = strrchr(path, '/');
    w->dir = slash ? (slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path)))
                   : xstrdup(".");
    w->base = xstrdup(slash ? slash + 1 : path);
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->ifd < 0 || w->stopfd < 0) {
        LOG_ERR(FW_SCOPE, "%s: cannot watch: %s", path, strerror(errno));
        goto fail;
    }
    w->wd_dir = inotify_add_watch(w->ifd, w->dir, FW_MASK);
    if (w->wd_dir < 0) {
        LOG_ERR(FW_SCOPE, "%s: cannot watch directory %s: %s", path, w->dir, strerror(errno));
        goto fail;
    }
    fw_track_target(w);
    size_t len = 0;
    char *buf = fw_read(w, &len);
    if (buf) {
        w->have = true;
        w->hash = util_hash64(buf, len, 0);
        w->len = len;
        free(buf);
    }
    if (pthread_create(&w->thread, NULL, fw_main, w) != 0) {
        LOG_ERR(FW_SCOPE, "%s: cannot start the watch thread", path);
        goto fail;
    }
    return w;
fail:
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->stopfd >= 0)
        close(w->stopfd);
    free(w->target_dir);
    free(w->path);
    free(w->dir);
    free(w->base);
    free(w);
    return NULL;
}

void cfgdir_filewatch_stop(cfgdir_filewatch *w)
{
    if (!w)
        return;
    uint64_t one = 1;
    if (write(w->stopfd, &one, sizeof one) != sizeof one)
        LOG_WARN(FW_SCOPE, "%s: cannot signal the watch thread", w->path);
    pthread_join(w->thread, NULL);
    close(w->ifd);
    close(w->stopfd);
    free(w->target_dir);
    free(w->path);
    free(w->dir);
    free(w->base);
    free(w);
}
