/* log: see log.h. The scope table is small and written only at start-up (log_configure
 * runs before any thread starts); readers take no lock. The hook is for tests. */
#include "pilot/base/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_SCOPES 32
#define LOG_LINE_MAX 4096

static struct {
    char name[32];
    log_level level;
} scopes[LOG_MAX_SCOPES];
static int nscopes;
static log_level default_level = LOG_INFO;
static log_hook_fn hook_fn;
static void *hook_ud;
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"none", "error", "warn", "info", "debug"};

static int parse_level(const char *s, size_t n, log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strlen(level_names[i]) == n && strncasecmp(s, level_names[i], n) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (n == 7 && strncasecmp(s, "warning", 7) == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

int log_configure(const char *spec, char *err, size_t errlen)
{
    const char *p = spec;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        const char *lv = colon ? colon + 1 : p;
        size_t lvlen = colon ? len - (size_t)(colon - p) - 1 : len;
        size_t sclen = colon ? (size_t)(colon - p) : 7;
        const char *sc = colon ? p : "default";
        log_level level;
        if (parse_level(lv, lvlen, &level) != 0) {
            snprintf(err, errlen,
                     "--log_output_level: bad level '%.*s' (want none, error, warn, info or debug)",
                     (int)lvlen, lv);
            return -1;
        }
        if (sclen == 0 || sclen >= sizeof(scopes[0].name)) {
            snprintf(err, errlen, "--log_output_level: bad scope in '%.*s'", (int)len, p);
            return -1;
        }
        if (sclen == 7 && strncmp(sc, "default", 7) == 0) {
            default_level = level;
        } else {
            int i;
            for (i = 0; i < nscopes; i++)
                if (strlen(scopes[i].name) == sclen && strncmp(scopes[i].name, sc, sclen) == 0)
                    break;
            if (i == nscopes) {
                if (nscopes == LOG_MAX_SCOPES) {
                    snprintf(err, errlen, "--log_output_level: too many scopes");
                    return -1;
                }
                memcpy(scopes[i].name, sc, sclen);
                scopes[i].name[sclen] = '\0';
                nscopes++;
            }
            scopes[i].level = level;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

bool log_enabled(const char *scope, log_level lvl)
{
    for (int i = 0; i < nscopes; i++)
        if (strcmp(scopes[i].name, scope) == 0)
            return lvl <= scopes[i].level;
    return lvl <= default_level;
}

void log_set_hook(log_hook_fn fn, void *ud)
{
    pthread_mutex_lock(&hook_mu);
    hook_fn = fn;
    hook_ud = ud;
    pthread_mutex_unlock(&hook_mu);
}

void log_vwrite(const char *scope, log_level lvl, const char *fmt, va_list ap)
{
    if (lvl == LOG_NONE || !log_enabled(scope, lvl))
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\t%s\t%s\t",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000, level_names[lvl], scope);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    line[len] = '\0';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
    pthread_mutex_lock(&hook_mu);
    if (hook_fn) {
        line[len - 1] = '\0';
        hook_fn(scope, lvl, line, hook_ud);
    }
    pthread_mutex_unlock(&hook_mu);
}

void log_write(const char *scope, log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(scope, lvl, fmt, ap);
    va_end(ap);
}
