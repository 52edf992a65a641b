#!/usr/bin/python3
"""Real xDS client test: gRPC C core's own xDS client (Debian's python3-grpcio 1.51)
routes calls using what pilot-discovery serves.

Three real gRPC backends (generic handlers answering their version) listen on the
loopback addresses of the greeter Pods (routing_config.py); the client calls
xds:///greeter.e2e.svc.cluster.local:<port> with a bootstrap pointing at pilot-discovery:
  - the weighted split v1 80 / v3 20 holds within +-10 points over 400 calls, v2 gets none;
  - header end-user: jason picks subset v2;
  - header x-demo-fault: abort returns the fault's status (503 -> UNAVAILABLE);
  - rewriting the VirtualService file (v1 0 / v3 100) moves all traffic to v3.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import routing_config as rcfg  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

METHOD = "/e2e.Greeter/Hello"
N = 400
TOLERANCE = 10.0   # percentage points

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)



def call_many(stub, n, metadata=()):
    counts = {}
    errors = {}
    for _ in range(n):
        try:
            v = stub(b"hi", timeout=5, metadata=metadata).decode()
            counts[v] = counts.get(v, 0) + 1
        except grpc.RpcError as e:
            errors[e.code().name] = errors.get(e.code().name, 0) + 1
    return counts, errors


def main():
    work = tempfile.mkdtemp(prefix="grpc-xds-")
    ips, port = rcfg.pick_backends(os.getpid())
    pilot = ec.Pilot(workdir=work)
    rcfg.write_config(pilot.config_dir, ips, port, 80, 20)
    backends = [rcfg.start_backend(ip, port, v) for ip, v in zip(ips, rcfg.VERSIONS)]
    pilot.start()
    try:
        boot = os.path.join(work, "bootstrap.json")
        rcfg.bootstrap(boot, pilot.target())
        os.environ["GRPC_XDS_BOOTSTRAP"] = boot
        target = "xds:///%s:%d" % (rcfg.HOST, port)
        ch = grpc.insecure_channel(target)
        stub = ch.unary_unary(METHOD)

        # first call: waits for LDS/RDS/CDS/EDS
        t0 = time.time()
        first = None
        while time.time() - t0 < 30:
            try:
                first = stub(b"hi", timeout=10, wait_for_ready=True).decode()
                break
            except grpc.RpcError as e:
                print("first call: %s %s" % (e.code(), e.details()))
                time.sleep(0.5)
        check(first in ("v1", "v3"), "first call through xDS answered by %s in %.1fs" %
              (first, time.time() - t0))

        counts, errors = call_many(stub, N)
        v1 = 100.0 * counts.get("v1", 0) / N
        v3 = 100.0 * counts.get("v3", 0) / N
        print("split: %s errors %s" % (counts, errors))
        check(not errors, "no errors in the weighted split")
        check(abs(v1 - 80) <= TOLERANCE and abs(v3 - 20) <= TOLERANCE and "v2" not in counts,
              "weighted split v1 %.1f%% / v3 %.1f%% within %.0f points of 80/20" %
              (v1, v3, TOLERANCE))

        counts, errors = call_many(stub, 50, metadata=(("end-user", "jason"),))
        check(counts == {"v2": 50}, "header end-user: jason -> v2 (%s %s)" % (counts, errors))

        counts, errors = call_many(stub, 20, metadata=(("x-demo-fault", "abort"),))
        check(errors == {"UNAVAILABLE": 20} and not counts,
              "fault abort 503 -> UNAVAILABLE (%s %s)" % (counts, errors))

        # move the traffic by editing the VirtualService file
        t0 = time.time()
        rcfg.set_weights(pilot.config_dir, 0, 100)
        moved = False
        while time.time() - t0 < 30:
            counts, errors = call_many(stub, 20)
            if counts.get("v3", 0) == 20:
                moved = True
                break
            time.sleep(0.2)
        check(moved, "after the VirtualService edit all traffic goes to v3 (%.1fs)" %
              (time.time() - t0))
        counts, errors = call_many(stub, 100)
        check(counts == {"v3": 100}, "and stays there (%s %s)" % (counts, errors))

        syncz = pilot.json("/debug/syncz")
        me = [x for x in syncz if x.get("proxy") == "client.e2e"]
        check(len(me) == 1 and me[0]["listener_sent"] == me[0]["listener_acked"] != "",
              "/debug/syncz: the gRPC client ACKed its listener")
        check(pilot.metric("pilot_total_xds_rejects") == 0, "the client NACKed nothing")
        ch.close()
    finally:
        for b in backends:
            b.stop(0)
        code = pilot.stop()
        if code != 0:
            failures.append("pilot-discovery clean exit (%d)" % code)
    if failures:
        print("\n%d failures:\n  %s\n--- pilot log ---\n%s" %
              (len(failures), "\n  ".join(failures), pilot.read_log()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
