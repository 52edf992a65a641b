/* replay: runs a fuzz target without libFuzzer, for the normal (gcc, ASan+UBSan) test run.
 *
 *   replay [-n MUTATIONS] [-t SECONDS] [-l PER_INPUT_SECONDS] PATH...
 *
 * Every file of each PATH (a corpus directory, sorted by name, or a single file) is fed
 * as it is; then, round by round, each seed gets one more deterministic mutation (bit
 * flips, interesting values, inserted/deleted/duplicated ranges, splices with another
 * seed, common tokens) until MUTATIONS rounds (default 200, env FUZZ_MUTATIONS) or
 * SECONDS of mutating (default 15, env FUZZ_SECONDS) have passed. Mutation k of a seed
 * depends only on the seed's bytes and k, so a failure reproduces regardless of timing.
 *
 * When the target dies (sanitizer report, abort, per-input timeout) the input that did
 * it is written to $FUZZ_CRASH_DIR (default: the current directory) as
 * crash-<target>-<hash> and its path printed, ready to be minimised with the libFuzzer
 * build and added to the corpus.
 *
 * Exits 0 when every input ran, 1 on usage errors or an empty corpus (a test that ran
 * nothing must not pass).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1u << 20) /* seeds larger than this are refused */

/* Present when a sanitizer runtime is linked (weak: plain builds work too). */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

typedef struct seed {
    char *path;
    uint8_t *data;
    size_t len;
    uint64_t hash;
} seed;

static seed *seeds;
static size_t nseeds;

/* The input being run, for the death callback. */
static const uint8_t *cur_data;
static size_t cur_len;
static char crash_path[4096];
static const char *target_name = "fuzz";

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t rnd(uint64_t *s)
{
    /* splitmix64: tiny, deterministic, good enough to pick mutations */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd(s) % n);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Async-signal-safe enough: only open/write/close on a path computed before the run. */
static void save_current(void)
{
    if (cur_data == NULL || crash_path[0] == '\0')
        return;
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    size_t off = 0;
    while (off < cur_len) {
        ssize_t w = write(fd, cur_data + off, cur_len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    static const char msg[] = "\nreplay: the failing input was saved to ";
    (void)!write(2, msg, sizeof(msg) - 1);
    (void)!write(2, crash_path, strlen(crash_path));
    (void)!write(2, "\n", 1);
}

static void on_signal(int sig)
{
    if (sig == SIGALRM) {
        static const char msg[] = "\nreplay: an input ran longer than the per-input limit\n";
        (void)!write(2, msg, sizeof(msg) - 1);
    }
    save_current();
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void run_one(const uint8_t *data, size_t len, unsigned limit_s)
{
    const char *dir = getenv("FUZZ_CRASH_DIR");
    snprintf(crash_path, sizeof(crash_path), "%s/crash-%s-%016" PRIx64,
             dir != NULL && dir[0] != '\0' ? dir : ".", target_name, fnv1a(data, len));
    /* libFuzzer hands the target a buffer of exactly len bytes: copy so ASan sees
     * any read past the end, and so a target cannot change the seed. */
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, len);
    cur_data = copy;
    cur_len = len;
    alarm(limit_s);
    LLVMFuzzerTestOneInput(copy, len);
    alarm(0);
    cur_data = NULL;
    free(copy);
}

/* ---- corpus ---------------------------------------------------------------------------- */

static int add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT + 1);
    size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_MAX_INPUT);
        free(buf);
        return -1;
    }
    seed *s2 = realloc(seeds, (nseeds + 1) * sizeof(*seeds));
    if (s2 == NULL)
        abort();
    seeds = s2;
    seeds[nseeds].path = strdup(path);
    seeds[nseeds].data = buf;
    seeds[nseeds].len = n;
    seeds[nseeds].hash = fnv1a(buf, n);
    nseeds++;
    return 0;
}

static int skip_name(const struct dirent *d)
{
    return d->d_name[0] != '.' && strcmp(d->d_name, "README") != 0;
}

static int add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return add_file(path);
    struct dirent **ents = NULL;
    int n = scandir(path, &ents, skip_name, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", path, ents[i]->d_name);
        if (rc == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
            rc = add_file(full);
        free(ents[i]);
    }
    free(ents);
    return rc;
}

/* ---- mutations ------------------------------------------------------------------------- */

static const char *const tokens[] = {
    "\n",
    "\r\n",
    "---\n",
    "- ",
    ": ",
    "&a ",
    "*a",
    "!!str ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    ",",
    ":",
    "~",
    "*",
    "\\u0000",
    "null",
    "true",
    "-1",
    "1e999",
    "4294967296",
    "-----BEGIN CERTIFICATE REQUEST-----\n",
    "-----END CERTIFICATE REQUEST-----\n",
    "\"metadata\":{\"name\":\"a\"}",
    "\"spec\":{}",
    "\"type\":\"ADDED\"",
};

static const uint64_t interesting[] = {
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x7fffffffffffffffULL,
    0xffffffffffffffffULL,
};

/* Inserts n bytes at off (room is guaranteed by the caller's cap). */
static void insert(uint8_t *buf, size_t *len, size_t off, const uint8_t *p, size_t n)
{
    memmove(buf + off + n, buf + off, *len - off);
    memcpy(buf + off, p, n);
    *len += n;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap, uint64_t *s)
{
    int rounds = 1 + (int)below(s, 4);
    for (int r = 0; r < rounds; r++) {
        size_t room = cap - len;
        size_t off = below(s, len + 1);
        switch (below(s, 10)) {
        case 0: /* flip a bit */
            if (len > 0)
                buf[below(s, len)] ^= (uint8_t)(1u << below(s, 8));
            break;
        case 1: /* random byte */
            if (len > 0)
                buf[below(s, len)] = (uint8_t)rnd(s);
            break;
        case 2: { /* an interesting value, 1/2/4/8 bytes wide */
            size_t w = (size_t)1 << below(s, 4);
            uint64_t v = interesting[below(s, sizeof(interesting) / sizeof(interesting[0]))];
            if (len >= w) {
                off = below(s, len - w + 1);
                memcpy(buf + off, &v, w);
            }
            break;
        }
        case 3: { /* insert random bytes */
            uint8_t tmp[8];
            size_t n = 1 + below(s, sizeof(tmp));
            for (size_t i = 0; i < n; i++)
                tmp[i] = (uint8_t)rnd(s);
            if (n <= room)
                insert(buf, &len, off, tmp, n);
            break;
        }
        case 4: /* delete a range */
            if (len > 0) {
                size_t n = 1 + below(s, len - off < 64 ? len - off + 1 : 64);
                if (off + n > len)
                    n = len - off;
                memmove(buf + off, buf + off + n, len - off - n);
                len -= n;
            }
            break;
        case 5: /* duplicate a range of this input elsewhere */
            if (len > 0) {
                size_t from = below(s, len);
                size_t n = 1 + below(s, len - from < 128 ? len - from : 128);
                if (n <= room) {
                    uint8_t tmp[128];
                    memcpy(tmp, buf + from, n);
                    insert(buf, &len, off, tmp, n);
                }
            }
            break;
        case 6: /* truncate */
            len = off;
            break;
        case 7: { /* splice in a range of another seed */
            const seed *o = &seeds[below(s, nseeds)];
            if (o->len > 0) {
                size_t from = below(s, o->len);
                size_t n = 1 + below(s, o->len - from < 256 ? o->len - from : 256);
                if (n <= room)
                    insert(buf, &len, off, o->data + from, n);
            }
            break;
        }
        case 8: { /* a token */
            const char *t = tokens[below(s, sizeof(tokens) / sizeof(tokens[0]))];
            if (strlen(t) <= room)
                insert(buf, &len, off, (const uint8_t *)t, strlen(t));
            break;
        }
        default: /* nudge a byte: protobuf lengths and varints live here */
            if (len > 0)
                buf[below(s, len)] += (uint8_t)(below(s, 2) ? 1 : -1);
            break;
        }
    }
    return len;
}

/* ---- main ------------------------------------------------------------------------------ */

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? strtol(v, NULL, 10) : dflt;
}

int main(int argc, char **argv)
{
    long mutations = env_long("FUZZ_MUTATIONS", 200);
    double budget = (double)env_long("FUZZ_SECONDS", 15);
    unsigned limit = 10;
    int opt;
    int rc = 1;

    const char *slash = strrchr(argv[0], '/');
    target_name = slash != NULL ? slash + 1 : argv[0];
    while ((opt = getopt(argc, argv, "n:t:l:")) != -1) {
        switch (opt) {
        case 'n':
            mutations = strtol(optarg, NULL, 10);
            break;
        case 't':
            budget = strtod(optarg, NULL);
            break;
        case 'l':
            limit = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: %s [-n MUTATIONS] [-t SECONDS] [-l PER_INPUT_S] PATH...\n",
                    argv[0]);
            goto out;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "replay: no corpus given\n");
        goto out;
    }
    for (int i = optind; i < argc; i++)
        if (add_path(argv[i]) != 0)
            goto out;
    if (nseeds == 0) {
        fprintf(stderr, "replay: the corpus is empty\n");
        goto out;
    }

    /* Sanitizer reports end through the death callback; the sanitizers own SIGSEGV and
     * friends then. abort() (FUZZ_CHECK) and timeouts come here either way. */
    if (__sanitizer_set_death_callback != NULL) {
        __sanitizer_set_death_callback(save_current);
    } else {
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGFPE, on_signal);
    }
    signal(SIGABRT, on_signal);
    signal(SIGALRM, on_signal);

    double t0 = now_s();
    for (size_t i = 0; i < nseeds; i++)
        run_one(seeds[i].data, seeds[i].len, limit);
    double t1 = now_s();

    size_t maxlen = 0;
    for (size_t i = 0; i < nseeds; i++)
        if (seeds[i].len > maxlen)
            maxlen = seeds[i].len;
    size_t cap = maxlen * 2 + 256;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        abort();
    unsigned long runs = 0;
    long round;
    for (round = 0; round < mutations && now_s() - t1 < budget; round++) {
        for (size_t i = 0; i < nseeds; i++) {
            uint64_t s = seeds[i].hash ^ ((uint64_t)round * 0xD1B54A32D192ED03ULL);
            memcpy(buf, seeds[i].data, seeds[i].len);
            size_t len = mutate(buf, seeds[i].len, cap, &s);
            run_one(buf, len, limit);
            runs++;
        }
    }
    free(buf);
    printf("replay %s: %zu seeds in %.2f s, then %ld mutation rounds (%lu inputs) in %.2f s\n",
           target_name, nseeds, t1 - t0, round, runs, now_s() - t1);
    fflush(stdout); /* the leak checker may end the process before stdio would */
    rc = 0;
out:
    for (size_t i = 0; i < nseeds; i++) {
        free(seeds[i].path);
        free(seeds[i].data);
    }
    free(seeds);
    return rc;
}
