/* fuzz_mesh_json: bytes as JSON -> mesh_parse. The Kubernetes source hands the model the
 * API server's JSON objects (list items and watch events), so the parser sees JSON that
 * never went through YAML: other number shapes, duplicate keys, deep nesting. A top-level
 * array is taken as a list of objects, like a list response's items. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j == NULL)
        return 0;
    if (cJSON_IsArray(j)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, j) fuzz_mesh_object(it);
    } else {
        fuzz_mesh_object(j);
    }
    cJSON_Delete(j);
    return 0;
}
