#include "pilot/base/pbdepth.h"

/* Reads a varint; returns bytes used, 0 when truncated or longer than 10 bytes. */
static size_t read_varint(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

bool pb_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, int max_depth)
{
    if (max_depth <= 0)
        return false;
    size_t off = 0;
    while (off < len) {
        uint64_t key, n;
        size_t used = read_varint(buf + off, len - off, &key);
        if (!used)
            return true;
        off += used;
        uint32_t field = (uint32_t)(key >> 3);
        switch (key & 7) {
        case 0: /* varint */
            used = read_varint(buf + off, len - off, &n);
            if (!used)
                return true;
            off += used;
            break;
        case 1: /* fixed64 */
            off += 8;
            break;
        case 5: /* fixed32 */
            off += 4;
            break;
        case 2: { /* length-delimited: a nested message, or bytes/strings/packed */
            used = read_varint(buf + off, len - off, &n);
            if (!used || n > len - off - used)
                return true;
            off += used;
            const ProtobufCFieldDescriptor *f =
                d ? protobuf_c_message_descriptor_get_field(d, field) : NULL;
            /* Recursion depth is bounded by max_depth, so the guard itself is safe. */
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !pb_depth_ok(f->descriptor, buf + off, (size_t)n, max_depth - 1))
                return false;
            off += (size_t)n;
            break;
        }
        default: /* groups (3, 4) and invalid wire types: protobuf-c refuses them */
            return true;
        }
    }
    return true;
}
