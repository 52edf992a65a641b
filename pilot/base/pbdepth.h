/* pbdepth: a guard run before protobuf-c decodes bytes from outside.
 *
 * protobuf-c 1.4 unpacks nested messages recursively with no depth limit, and
 * google.protobuf.Struct (node metadata, the CA request's metadata) nests without end:
 * about 4000 levels, a 56 KB message, overflow an 8 MB thread stack. This walks the wire
 * format against the message descriptor, descending only into message-typed fields (its
 * own recursion is bounded by the limit), and refuses anything nested deeper before
 * protobuf_c_message_unpack ever sees it.
 */
#ifndef PILOT_BASE_PBDEPTH_H
#define PILOT_BASE_PBDEPTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Message nesting our inputs may have: a DiscoveryRequest's node metadata Struct with a
 * few levels of labels takes ~10; 64 leaves room and stays far from the stack. */
#define PB_MAX_DEPTH 64

/* True when buf holds no message field nested deeper than max_depth (the top message is
 * depth 1). Malformed wire data returns true: protobuf-c itself refuses it. */
bool pb_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                 int max_depth);

#endif
