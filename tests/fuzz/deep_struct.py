#!/usr/bin/python3
"""deep_struct: writes a protobuf request whose google.protobuf.Struct nests DEPTH levels.

protobuf-c (1.4) unpacks recursively with no depth limit, so a small message (about 56 KB
for DEPTH 4000) overflows an 8 MB thread stack inside protobuf_c_message_unpack, before
any of our code sees it. Each KIND is a place where outside bytes reach such an unpack:

    node   Node                       (input of fuzz_node)
    ads    DiscoveryRequest.node      (input of fuzz_ads_request; strip the first 4 bytes
                                       for the raw gRPC message, see docs/FUZZING.md)
    ca     IstioCertificateRequest.metadata (input of fuzz_ca_request)

Usage: deep_struct.py KIND DEPTH OUT
The server refuses such input before unpacking (pilot/base/pbdepth.h); the corpora keep
one of each kind (deep-struct-*) and tests/e2e/deep_input.py sends them to the binary.
"""
import sys


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def deep_struct(depth):
    """Struct{fields: {"k": Value{struct_value: Struct{...}}}} nested depth times; the
    innermost payload is always last, so the headers are built inside-out and joined."""
    headers, inner = [], 0
    for _ in range(depth):
        vlen = 1 + len(varint(inner)) + inner                 # Value.struct_value (5)
        elen = 3 + 1 + len(varint(vlen)) + vlen               # entry: key (1), value (2)
        headers.append(b"\x0a" + varint(elen) + b"\x0a\x01k" + b"\x12" + varint(vlen)
                       + b"\x2a" + varint(inner))
        inner = 1 + len(varint(elen)) + elen                  # Struct.fields (1)
    return b"".join(reversed(headers))


def main():
    kind, depth, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = deep_struct(depth)
    node_id = b"sidecar~10.0.0.1~p.ns~ns.svc.cluster.local"
    node = b"\x0a" + varint(len(node_id)) + node_id + b"\x1a" + varint(len(s)) + s
    if kind == "node":
        data = node
    elif kind == "ca":
        data = b"\x22" + varint(len(s)) + s                   # metadata (4)
    elif kind == "ads":
        req = b"\x12" + varint(len(node)) + node              # DiscoveryRequest.node (2)
        if len(req) > 0xFFFF:
            sys.exit("ads: DEPTH too large for the fuzz_ads_request framing")
        data = b"\x00\x00" + len(req).to_bytes(2, "little") + req
    else:
        sys.exit("KIND: node, ads or ca")
    with open(out, "wb") as f:
        f.write(data)
    print(f"{kind} depth {depth}: {len(data)} bytes -> {out}")


if __name__ == "__main__":
    main()
