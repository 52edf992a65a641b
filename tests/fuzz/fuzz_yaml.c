/* fuzz_yaml: bytes as a manifest file -> yaml_to_json_docs -> mesh_parse of each document.
 * This is what the config-directory source does with every file it reads (and kubeconfig
 * loading with its first half). */
#include <string.h>

#include "fuzz.h"
#include "pilot/base/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON **docs = NULL;
    size_t ndocs = 0;
    char err[256];

    fuzz_quiet();
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    /* data is not NUL-terminated: the parser must go by size alone */
    if (yaml_to_json_docs((const char *)data, size, &docs, &ndocs, err, sizeof(err)) != 0) {
        FUZZ_CHECK(strnlen(err, sizeof(err)) > 0);
        FUZZ_CHECK(docs == NULL || ndocs == 0);
        return 0;
    }
    FUZZ_CHECK(ndocs == 0 || docs != NULL);
    for (size_t i = 0; i < ndocs; i++) {
        FUZZ_CHECK(docs[i] != NULL);
        fuzz_mesh_object(docs[i]);
        cJSON_Delete(docs[i]);
    }
    free(docs);
    return 0;
}
