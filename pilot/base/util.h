/* util: the small helpers every module shares. Look here before writing another.
 *
 * - xmalloc/xcalloc/xrealloc/xstrdup: abort on allocation failure (the process cannot
 *   serve without memory; input never chooses the size unbounded, see strbuf's limit).
 * - strbuf: a growable byte buffer with a hard maximum; appends past it fail with -1.
 * - util_parse_duration: Go-style durations ("100ms", "1.5s", "1h2m") as used by istiod's
 *   env vars and Istio's API ("5s" in VirtualService timeouts).
 * - util_now_ns: monotonic clock; util_wall_ns: realtime clock.
 */
#ifndef PILOT_BASE_UTIL_H
#define PILOT_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct strbuf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* 0 = SIZE_MAX/2 */
} strbuf;

void strbuf_init(strbuf *b, size_t max);
/* Returns 0, or -1 (buffer unchanged) when the result would exceed b->max. */
int strbuf_append(strbuf *b, const void *p, size_t n);
int strbuf_appends(strbuf *b, const char *s);
int strbuf_appendf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_reset(strbuf *b);
/* Hands the buffer to the caller (who frees it) and empties b. */
char *strbuf_steal(strbuf *b, size_t *len);
void strbuf_free(strbuf *b);

/* Go-style duration ("300ms", "1.5s", "2m", "1h30m", "0"). Units ns, us, µs, ms, s, m, h.
 * Returns 0 and the value in nanoseconds, or -1 for malformed or negative input. */
int util_parse_duration(const char *s, int64_t *out_ns);

int64_t util_now_ns(void);
int64_t util_wall_ns(void);
/* RFC 3339 UTC with seconds ("2026-11-26T15:00:00Z") of a wall-clock ns time. */
void util_format_time(int64_t wall_ns, char *out, size_t outlen);

/* FNV-1a 64, for hashing names and serialized bytes. */
uint64_t util_hash64(const void *p, size_t n, uint64_t seed);

bool util_has_suffix(const char *s, const char *suffix);
bool util_has_prefix(const char *s, const char *prefix);

/* qsort / bsearch comparator for an array of C strings (elements are char *). */
int util_strp_cmp(const void *a, const void *b);
/* Frees v[0..n) and v itself; v may be NULL. */
void util_strv_free(char **v, size_t n);

#endif
