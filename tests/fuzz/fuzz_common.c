/* fuzz_common: see fuzz.h. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "pilot/base/log.h"

void fuzz_quiet(void)
{
    static bool done;
    char err[128];
    if (done)
        return;
    done = true;
    const char *spec = getenv("FUZZ_LOG");
    if (log_configure(spec != NULL ? spec : "none", err, sizeof(err)) != 0)
        fprintf(stderr, "FUZZ_LOG: %s\n", err);
}

uint8_t fuzz_u8(fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    uint8_t b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

uint16_t fuzz_u16(fuzz_in *in)
{
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

const uint8_t *fuzz_bytes(fuzz_in *in, size_t want, size_t *len)
{
    const uint8_t *p = in->p;
    *len = want < in->n ? want : in->n;
    in->p += *len;
    in->n -= *len;
    return p;
}
