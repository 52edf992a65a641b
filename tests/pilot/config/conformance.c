/* conformance: the mesh parser over Istio's own YAML (samples/ and testdata/config/ of
 * istio/istio, in $PILOT_SHARED/istio).
 *
 * Every *.yaml / *.yml file is read with yaml_to_json_docs() and every document (and every
 * item of a kind: List) goes through mesh_parse(). The test prints one line per rejected
 * object with the reason, then a summary of the fields we accept but do not model. It
 * fails when:
 *   - a rejection is not in the allowlist below (a gap in our parser, not a real violation);
 *   - an allowlist entry matched nothing (the list must stay honest);
 *   - a document of samples/bookinfo/networking/ is not accepted with rc 0.
 * Skips (exit 77) when the Istio data is absent. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pilot/base/yaml.h"
#include "pilot/config/mesh.h"

#define MAX_FILE_BYTES (8u << 20)

/* Objects in Istio's data that are really invalid, each with why we judge so. Matched by
 * the file path suffix and a substring of our error. */
static const struct allow {
    const char *file;
    const char *err;
    const char *why;
    int hits;
} allow_init[] = {
    {NULL, NULL, NULL, 0},
};

static struct allow *allow;
static size_t nallow;

typedef struct stats {
    size_t files, yaml_errors, docs, accepted, skipped, rejected, unexpected;
    size_t bookinfo_docs, bookinfo_bad;
} stats;

static char **files;
static size_t nfiles;

static int collect(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type != FTW_F)
        return 0;
    size_t n = strlen(path);
    if ((n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
        (n > 4 && strcmp(path + n - 4, ".yml") == 0)) {
        files = realloc(files, (nfiles + 1) * sizeof *files);
        files[nfiles++] = strdup(path);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct ucount {
    char *kind_path; /* "VirtualService spec.http[].mirrors" */
    size_t n;
} ucount;

static ucount *unsup, *skipped;
static size_t nunsup, nskipped;

static void bump(ucount **arr, size_t *n, const char *key)
{
    size_t k;
    for (k = 0; k < *n; k++)
        if (strcmp((*arr)[k].kind_path, key) == 0)
            break;
    if (k == *n) {
        *arr = realloc(*arr, (*n + 1) * sizeof **arr);
        (*arr)[(*n)++] = (ucount){strdup(key), 0};
    }
    (*arr)[k].n++;
}

static void count_unsupported(const cJSON *doc)
{
    char **paths = NULL;
    size_t n = 0;
    mesh_unsupported_fields(doc, &paths, &n);
    const char *kind = mesh_kind_name(mesh_kind_of(doc));
    for (size_t i = 0; i < n; i++) {
        char key[512];
        snprintf(key, sizeof key, "%s %s", kind, paths[i]);
        bump(&unsup, &nunsup, key);
        free(paths[i]);
    }
    free(paths);
}

static const char *rel(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 ? path + n + (path[n] == '/') : path;
}

static void check_doc(const cJSON *doc, const char *relpath, size_t idx, stats *st)
{
    if (!cJSON_IsObject(doc))
        return;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "List") == 0) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items"), *it;
        cJSON_ArrayForEach(it, items) check_doc(it, relpath, idx, st);
        return;
    }
    bool bookinfo = strstr(relpath, "samples/bookinfo/networking/") != NULL;
    mesh_parse_opts opts = {.domain = "cluster.local", .source = relpath};
    mesh_object o = {0};
    char err[1024];
    st->docs++;
    if (bookinfo)
        st->bookinfo_docs++;
    int rc = mesh_parse(doc, &opts, &o, err, sizeof err);
    if (rc == 0) {
        st->accepted++;
        count_unsupported(doc);
        mesh_object_release(o);
        return;
    }
    if (rc == -2) {
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(doc, "apiVersion");
        char key[256];
        snprintf(key, sizeof key, "%s %s", cJSON_IsString(av) ? av->valuestring : "?",
                 cJSON_IsString(kind) ? kind->valuestring : "?");
        bump(&skipped, &nskipped, key);
        st->skipped++;
        if (bookinfo) {
            st->bookinfo_bad++;
            printf("FAIL bookinfo %s#%zu: kind skipped\n", relpath, idx);
        }
        return;
    }
    st->rejected++;
    if (bookinfo)
        st->bookinfo_bad++;
    for (size_t i = 0; i < nallow; i++) {
        size_t fl = strlen(allow[i].file), pl = strlen(relpath);
        if (pl >= fl && strcmp(relpath + pl - fl, allow[i].file) == 0 &&
            strstr(err, allow[i].err)) {
            allow[i].hits++;
            printf("rejected (known invalid) %s#%zu: %s\n    why: %s\n", relpath, idx, err,
                   allow[i].why);
            return;
        }
    }
    st->unexpected++;
    printf("REJECTED (parser gap?) %s#%zu: %s\n", relpath, idx, err);
}

static int run_file(const char *path, const char *root, stats *st)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    cJSON **docs = NULL;
    size_t ndocs = 0;
    char err[512];
    const char *relpath = rel(path, root);

    if (!f) {
        printf("cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    buf = malloc(MAX_FILE_BYTES + 1);
    len = fread(buf, 1, MAX_FILE_BYTES, f);
    fclose(f);
    buf[len] = '\0';
    st->files++;
    if (yaml_to_json_docs(buf, len, &docs, &ndocs, err, sizeof err) != 0) {
        /* Not a mesh_parse question (e.g. Helm templates); reported, not failed. */
        st->yaml_errors++;
        printf("yaml error %s: %s\n", relpath, err);
        free(buf);
        return 0;
    }
    for (size_t i = 0; i < ndocs; i++) {
        check_doc(docs[i], relpath, i, st);
        cJSON_Delete(docs[i]);
    }
    free(docs);
    free(buf);
    return 0;
}

static int cmp_ucount(const void *a, const void *b)
{
    const ucount *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->kind_path, y->kind_path);
}

int main(void)
{
    const char *shared = getenv("PILOT_SHARED");
    char root[2048], dir[4096];
    stats st = {0};
    int rc = 1;

    if (!shared || !*shared) {
        printf("SKIP: PILOT_SHARED is not set (Istio's YAML lives in $PILOT_SHARED/istio)\n");
        return 77;
    }
    snprintf(root, sizeof root, "%s/istio", shared);
    snprintf(dir, sizeof dir, "%s/samples", root);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("SKIP: %s is absent (Istio's samples are not available here)\n", dir);
        return 77;
    }
    nallow = sizeof allow_init / sizeof allow_init[0];
    allow = calloc(nallow, sizeof *allow);
    memcpy(allow, allow_init, sizeof allow_init);
    while (nallow && !allow[nallow - 1].file)
        nallow--;

    nftw(dir, collect, 16, FTW_PHYS);
    snprintf(dir, sizeof dir, "%s/testdata/config", root);
    if (stat(dir, &sb) == 0)
        nftw(dir, collect, 16, FTW_PHYS);
    else
        printf("note: %s is absent, samples only\n", dir);
    qsort(files, nfiles, sizeof *files, cmp_str);

    for (size_t i = 0; i < nfiles; i++)
        run_file(files[i], root, &st);

    printf("\nunsupported fields (accepted, ignored), by number of objects:\n");
    qsort(unsup, nunsup, sizeof *unsup, cmp_ucount);
    for (size_t i = 0; i < nunsup; i++)
        printf("  %4zu  %s\n", unsup[i].n, unsup[i].kind_path);

    printf("\nskipped kinds (not modelled), by number of documents:\n");
    qsort(skipped, nskipped, sizeof *skipped, cmp_ucount);
    for (size_t i = 0; i < nskipped; i++)
        printf("  %4zu  %s\n", skipped[i].n, skipped[i].kind_path);

    bool stale = false;
    for (size_t i = 0; i < nallow; i++)
        if (!allow[i].hits) {
            printf("STALE allowlist entry (matched nothing): %s: %s\n", allow[i].file,
                   allow[i].err);
            stale = true;
        }

    printf("\nfiles %zu (yaml errors %zu), documents %zu: accepted %zu, skipped kinds %zu, "
           "rejected %zu (unexpected %zu); bookinfo networking documents %zu (not accepted %zu)\n",
           st.files, st.yaml_errors, st.docs, st.accepted, st.skipped, st.rejected, st.unexpected,
           st.bookinfo_docs, st.bookinfo_bad);

    if (st.unexpected == 0 && !stale && st.bookinfo_bad == 0 && st.bookinfo_docs > 0 &&
        st.accepted > 0)
        rc = 0;
    else if (st.bookinfo_docs == 0)
        printf("FAIL: no samples/bookinfo/networking documents found\n");
    printf("%s\n", rc == 0 ? "PASS" : "FAIL");

    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    for (size_t i = 0; i < nunsup; i++)
        free(unsup[i].kind_path);
    free(unsup);
    for (size_t i = 0; i < nskipped; i++)
        free(skipped[i].kind_path);
    free(skipped);
    free(allow);
    return rc;
}
