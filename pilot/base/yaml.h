/* yaml: YAML streams to JSON values (libyaml), the way kubectl reads manifests.
 *
 * Plain scalars are typed like Kubernetes' YAML loader: integers and floats become
 * numbers, true/false booleans, null/~/empty null; quoted scalars stay strings. Anchors
 * and aliases are resolved (bounded expansion). Empty documents are skipped.
 */
#ifndef PILOT_BASE_YAML_H
#define PILOT_BASE_YAML_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parses every document in buf. Returns 0 and a new array of documents (*docs, *ndocs;
 * caller frees each with cJSON_Delete and the array with free), or -1 with err holding
 * "line L column C: <problem>" (nothing allocated for the caller). */
int yaml_to_json_docs(const char *buf, size_t len, cJSON ***docs, size_t *ndocs, char *err,
                      size_t errlen);

#endif
