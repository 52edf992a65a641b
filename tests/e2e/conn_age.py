#!/usr/bin/python3
"""--keepaliveMaxServerConnectionAge ends connections, as istiod's gRPC server does, so
proxies reconnect (through the Service, to any replica) and spread: with an age of 2s an
ADS stream is ended by the server after the age plus istiod's 10s grace, the client
reconnects on its own and a new stream is served; without the flag (default 30m) a stream
outlives the same wait.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
NODE_ID = "sidecar~127.0.0.98~connage.default~default.svc.cluster.local"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def open_stream(ch, protos):
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    s = ec.AdsStream(ch, SOTW, Req, Resp)
    n = Node(id=NODE_ID)
    n.metadata.fields["NAMESPACE"].string_value = "default"
    s.send(Req(node=n, type_url=T_CDS))
    return s, s.recv(timeout=10)


def run(protos, work, args, wait_s):
    """Opens a stream, waits up to wait_s for the server to end it; returns (ended after
    seconds or None, a second stream served)."""
    pilot = ec.Pilot(config_src=os.path.join(os.environ["PILOT_SRC"], "manifests", "samples"),
                     workdir=tempfile.mkdtemp(prefix="conn-age-", dir=work), extra_args=args)
    pilot.start()
    try:
        ch = grpc.insecure_channel(pilot.target())
        s, first = open_stream(ch, protos)
        check(first is not None, "%s: the stream is served" % (args or "default"))
        t0 = time.time()
        ended = None
        while time.time() - t0 < wait_s:
            r = s.recv(timeout=0.5)
            if r is None and (s.error is not None or s.call.done()):
                ended = time.time() - t0
                break
        s.close()
        s2, again = open_stream(ch, protos)
        s2.close()
        ch.close()
        return ended, s.error, again is not None
    finally:
        rc = pilot.stop()
        check(rc == 0, "pilot-discovery exits 0 on SIGTERM (%s)" % rc)


def main():
    if not os.environ.get("PILOT_SRC"):
        ec.skip("PILOT_SRC not set")
    work = tempfile.mkdtemp(prefix="conn-age-")
    protos = ec.Protos(work)

    ended, err, again = run(protos, work, ["--keepaliveMaxServerConnectionAge", "2s"], 25)
    check(ended is not None, "age 2s: the server ended the stream (after %s s)" %
          (None if ended is None else round(ended, 1)))
    if ended is not None:
        # the age (2s, up to 10% jitter) plus the 10s grace, measured from the first answer
        check(8 <= ended <= 20, "age 2s: ended after the age and the 10s grace (%.1f s)" % ended)
        code = err.code() if err is not None else None
        check(code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED),
              "age 2s: the stream ends UNAVAILABLE, so the client retries (%s)" % code)
    check(again, "age 2s: a new stream on the same channel is served (reconnected)")

    ended, _, again = run(protos, work, [], 14)
    check(ended is None, "default 30m: the stream outlives 14 s")
    check(again, "default: a second stream is served")
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
