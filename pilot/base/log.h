/* log: Istio-style scoped logging to stderr.
 *
 * Lines read like istiod's: "2026-11-26T15:00:00.123456Z\tinfo\tscope\tmessage".
 * Levels per scope are set with istiod's --log_output_level syntax
 * ("default:info,ads:debug"). Thread-safe: one write(2) per line.
 */
#ifndef PILOT_BASE_LOG_H
#define PILOT_BASE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    LOG_NONE = 0,
    LOG_ERROR,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
} log_level;

/* Parses "scope:level[,scope:level...]" (a bare level sets "default").
 * Returns 0, or -1 with a message naming the bad part written to err. */
int log_configure(const char *spec, char *err, size_t errlen);

/* Whether a line at lvl in scope would be written (to skip costly formatting). */
bool log_enabled(const char *scope, log_level lvl);

void log_write(const char *scope, log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(const char *scope, log_level lvl, const char *fmt, va_list ap);

/* Tests capture lines: when set, every written line is also passed to fn. */
typedef void (*log_hook_fn)(const char *scope, log_level lvl, const char *line, void *ud);
void log_set_hook(log_hook_fn fn, void *ud);

#define LOG_ERR(scope, ...) log_write(scope, LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(scope, ...) log_write(scope, LOG_WARN, __VA_ARGS__)
#define LOG_INFO(scope, ...) log_write(scope, LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(scope, ...)                                                                      \
    do {                                                                                           \
        if (log_enabled(scope, LOG_DEBUG))                                                         \
            log_write(scope, LOG_DEBUG, __VA_ARGS__);                                              \
    } while (0)

#endif
