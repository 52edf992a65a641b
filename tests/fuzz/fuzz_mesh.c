/* fuzz_mesh: fuzz_mesh_object (see fuzz.h), kept apart so targets that never parse mesh
 * objects need not link the parser. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "pilot/config/mesh.h"

/* err must be a NUL-terminated line within its buffer, and say something when rc == -1. */
static void check_err(const char *err, size_t errlen, bool must_say)
{
    size_t n = strnlen(err, errlen);
    FUZZ_CHECK(n < errlen);
    FUZZ_CHECK(!must_say || n > 0);
}

void fuzz_mesh_object(const cJSON *obj)
{
    static const mesh_parse_opts opts = {.domain = "cluster.local", .source = "fuzz"};
    mesh_object o;
    char err[512];
    char **paths = NULL;
    size_t npaths = 0;

    memset(&o, 0, sizeof(o));
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    int rc = mesh_parse(obj, &opts, &o, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc == 0) {
        /* an accepted object names itself and carries the kind it was parsed as */
        FUZZ_CHECK(o.u.meta != NULL);
        FUZZ_CHECK(o.kind == mesh_kind_of(obj));
        FUZZ_CHECK(o.u.meta->name != NULL && o.u.meta->name[0] != '\0');
        FUZZ_CHECK(o.u.meta->ns != NULL);
        mesh_unsupported_fields(obj, &paths, &npaths);
        for (size_t i = 0; i < npaths; i++) {
            FUZZ_CHECK(paths[i] != NULL);
            free(paths[i]);
        }
        free(paths);
        mesh_object_release(o);
    } else if (rc == -1) {
        check_err(err, sizeof(err), true);
    }
}
