/* fuzz: what the fuzz targets in tests/fuzz share.
 *
 * Every fuzz_<name>.c defines LLVMFuzzerTestOneInput and is linked either with libFuzzer
 * (clang, -fsanitize=fuzzer) or with replay.c (any compiler: a main() that feeds a corpus
 * plus deterministic mutations, run by `meson test --suite fuzz`). A target must never
 * crash, leak or trip a sanitizer on any input; when an input breaks a property the target
 * checks (an error code outside the documented ones, an empty error message, a response
 * that does not decode), FUZZ_CHECK aborts so both drivers report it like a crash.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property is a bug like a crash: say which and stop. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Silences the project's logger once (rejected input logs a warning per call, which
 * would dominate a fuzzing run). FUZZ_LOG=debug in the environment keeps it. */
void fuzz_quiet(void);

/* Runs obj through mesh_parse the way the model does for every source (files, Kubernetes),
 * checks the documented return codes and error shape, exercises the unsupported-field
 * walker and releases everything. */
void fuzz_mesh_object(const cJSON *obj);

/* A cursor over the fuzzer's bytes, for targets whose input is a sequence of operations. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

/* Next byte, 0 once exhausted. */
uint8_t fuzz_u8(fuzz_in *in);
/* Next little-endian 16-bit value, 0-padded once exhausted. */
uint16_t fuzz_u16(fuzz_in *in);
/* Up to want bytes (fewer at the end); *len receives how many. */
const uint8_t *fuzz_bytes(fuzz_in *in, size_t want, size_t *len);

#endif
