#!/usr/bin/python3
"""deep_input: outside bytes nested without end must be refused, not crash the server.

google.protobuf.Struct nests without bound and protobuf-c unpacks recursively, so a small
request (~56 KB, 4000 levels) used to overflow a server thread's stack: an ADS request's
node metadata and the CA request's metadata both reach such an unpack. The server now
checks nesting first (pilot/base/pbdepth.h). Against the real binary:
  - a DiscoveryRequest whose node metadata nests 4000 deep ends with INVALID_ARGUMENT;
  - a CreateCertificate whose metadata nests 4000 deep gets INVALID_ARGUMENT;
  - the server still answers /ready and a normal ADS request afterwards, and exits cleanly.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("Debian's python3-grpcio is missing")

HERE = os.path.dirname(os.path.abspath(__file__))
DEEP = os.path.join(HERE, "..", "fuzz", "deep_struct.py")
ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
CA = "/istio.v1.auth.IstioCertificateService/CreateCertificate"

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def deep_bytes(kind, depth, work):
    out = os.path.join(work, kind + ".bin")
    subprocess.run(["/usr/bin/python3", DEEP, kind, str(depth), out], check=True,
                   stdout=subprocess.DEVNULL)
    with open(out, "rb") as f:
        data = f.read()
    return data[4:] if kind == "ads" else data  # "ads" carries the fuzz target's framing


def ads_status(channel, payload):
    call = channel.stream_stream(ADS, request_serializer=None, response_deserializer=None)
    try:
        for _ in call(iter([payload]), timeout=10):
            return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def main():
    src = ec.env_path("PILOT_SRC")
    work = tempfile.mkdtemp(prefix="deep-input-")
    pilot = ec.Pilot(config_src=os.path.join(src, "manifests", "samples"), workdir=work,
                     extra_args=["--caStateDir", os.path.join(work, "ca"),
                                 "--caCertsDir", os.path.join(work, "none")])
    pilot.start()
    try:
        ch = grpc.insecure_channel(pilot.target())
        code = ads_status(ch, deep_bytes("ads", 3000, work))
        check(code == grpc.StatusCode.INVALID_ARGUMENT,
              "ADS request with node metadata nested 3000 deep: %s" % code)

        ca = ch.unary_unary(CA, request_serializer=None, response_deserializer=None)
        try:
            ca(deep_bytes("ca", 4000, work), timeout=10)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        check(code == grpc.StatusCode.INVALID_ARGUMENT,
              "CreateCertificate with metadata nested 4000 deep: %s" % code)

        st, _ = ec.http_get(pilot.url("/ready"))
        check(st == 200, "/ready still answers 200")
        # A plain request with a shallow node still gets a listener answer.
        node_id = b"sidecar~127.0.0.99~client.default~default.svc.cluster.local"
        node = b"\x0a" + bytes([len(node_id)]) + node_id
        tu = b"type.googleapis.com/envoy.config.listener.v3.Listener"
        req = b"\x12" + bytes([len(node)]) + node + b"\x22" + bytes([len(tu)]) + tu
        code = ads_status(ch, req)
        check(code == grpc.StatusCode.OK, "a normal ADS request is answered afterwards: %s" % code)
        ch.close()
    finally:
        rc = pilot.stop()
    check(rc == 0, "pilot-discovery exited cleanly (%d)" % rc)
    if failures:
        print(pilot.read_log())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
