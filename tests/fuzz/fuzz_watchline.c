/* fuzz_watchline: a Kubernetes watch stream as the API server sends it, cut into chunks
 * where the fuzzer chooses (curl hands the reflector whatever the network delivered),
 * through k8s_linebuf_feed, and every line handled the way reflector.c's on_line does:
 * parsed as a watch event, and ADDED/MODIFIED/DELETED objects run through mesh_parse as
 * the model would.
 *
 * Input: byte 0 = the line limit (64 + 64 * b, so the oversized-line path is reachable),
 * byte 1 = k, the number of cut points, then k little-endian u16 offsets (taken modulo
 * the stream length), then the stream itself.
 *
 * Property (differential): the lines delivered, and whether the limit was hit, are the
 * same as when the whole stream arrives in one chunk.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "k8s/k8s_internal.h"

#define MAX_CUTS 32

typedef struct lines {
    strbuf all; /* every delivered line followed by '\n' */
    size_t count;
    bool events; /* also handle each line as a watch event */
} lines;

/* reflector.c on_line, minus the reflector: which events reach the model, and as what. */
static void watch_event(const char *line, size_t len)
{
    cJSON *ev = cJSON_ParseWithLength(line, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (cJSON_IsString(type) && cJSON_IsObject(obj) &&
        (strcmp(type->valuestring, "ADDED") == 0 || strcmp(type->valuestring, "MODIFIED") == 0 ||
         strcmp(type->valuestring, "DELETED") == 0))
        fuzz_mesh_object(obj);
    cJSON_Delete(ev);
}

static int on_line(void *ud, const char *line, size_t len)
{
    lines *l = ud;
    FUZZ_CHECK(len > 0); /* empty lines are skipped */
    FUZZ_CHECK(memchr(line, '\n', len) == NULL);
    FUZZ_CHECK(strbuf_append(&l->all, line, len) == 0);
    FUZZ_CHECK(strbuf_append(&l->all, "\n", 1) == 0);
    l->count++;
    if (l->events)
        watch_event(line, len);
    return 0;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    size_t cuts[MAX_CUTS + 2];
    size_t ncuts = 0;
    k8s_linebuf lb;
    lines whole = {.events = false}, chunked = {.events = true};
    int rc_whole, rc_chunked = 0;

    fuzz_quiet();
    size_t limit = 64 + 64 * (size_t)fuzz_u8(&in);
    size_t k = fuzz_u8(&in) % (MAX_CUTS + 1);
    uint16_t raw[MAX_CUTS];
    for (size_t i = 0; i < k; i++)
        raw[i] = fuzz_u16(&in);
    const char *stream = (const char *)in.p;
    size_t n = in.n;

    cuts[ncuts++] = 0;
    for (size_t i = 0; i < k && n > 0; i++)
        cuts[ncuts++] = raw[i] % (n + 1);
    cuts[ncuts++] = n;
    qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);

    strbuf_init(&whole.all, 1u << 22);
    strbuf_init(&chunked.all, 1u << 22);

    k8s_linebuf_init(&lb, limit);
    rc_whole = k8s_linebuf_feed(&lb, stream, n, on_line, &whole);
    k8s_linebuf_free(&lb);

    k8s_linebuf_init(&lb, limit);
    for (size_t i = 0; i + 1 < ncuts && rc_chunked == 0; i++)
        rc_chunked =
            k8s_linebuf_feed(&lb, stream + cuts[i], cuts[i + 1] - cuts[i], on_line, &chunked);
    k8s_linebuf_free(&lb);

    FUZZ_CHECK(rc_whole == 0 || rc_whole == -1);
    FUZZ_CHECK(rc_chunked == rc_whole);
    FUZZ_CHECK(chunked.count == whole.count);
    FUZZ_CHECK(chunked.all.len == whole.all.len);
    FUZZ_CHECK(whole.all.len == 0 || memcmp(chunked.all.data, whole.all.data, whole.all.len) == 0);
    strbuf_free(&whole.all);
    strbuf_free(&chunked.all);
    return 0;
}
