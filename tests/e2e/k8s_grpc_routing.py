#!/usr/bin/python3
"""Real xDS client, config from Kubernetes: gRPC C core's xDS client (Debian's python3-grpcio)
routes calls using what pilot-discovery --kubeconfig serves from the stand-in API server
(tests/k8s/apiserver.py), the greeter objects of routing_config.py applied with kubectl.

Three real gRPC backends answer their version on the greeter Pods' loopback addresses. The
client calls xds:///greeter.e2e.svc.cluster.local:<port>; each step changes the
VirtualService and waits (bounded) until every call goes where the change says:
  1. initial: split v1 80 / v3 20 within +-10 points, header end-user: jason -> v2;
  2. kubectl apply (v1 0 / v3 100) -> v3;
  3. watches dropped, then kubectl apply (v1 100 / v3 0) -> v1;
  4. watches stalled, kubectl apply (v3 100) not seen (configz keeps the old
     resourceVersion, traffic stays on v1), then compaction: the watch gets 410, the
     control plane relists -> v3;
  5. a stand-in restart with changed state (VirtualService: everything to v2, no fault
     route) -> v2, and x-demo-fault: abort no longer aborts.
At the end /debug/configz holds exactly the server's Istio objects (resourceVersion and
spec) and /debug/k8sz counts the relists. Skips (77) without grpcio, kubectl or the binary.
"""
import os
import sys
import tempfile
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import k8s_common as kc  # noqa: E402
import routing_config as rcfg  # noqa: E402

try:
    import grpc
    import yaml
except ImportError as e:
    ec.skip("python3-grpcio or python3-yaml is not installed (%s)" % e)

METHOD = "/e2e.Greeter/Hello"
TOLERANCE = 10.0   # percentage points
STEP_TIMEOUT = 15  # seconds for one change to reach the client

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start_backend(ip, port, version):
    def hello(req, ctx):
        return version.encode()
    handler = grpc.method_handlers_generic_handler(
        "e2e.Greeter", {"Hello": grpc.unary_unary_rpc_method_handler(hello)})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                      options=[("grpc.so_reuseport", 0)])
    srv.add_generic_rpc_handlers((handler,))
    if srv.add_insecure_port("%s:%d" % (ip, port)) == 0:
        raise RuntimeError("cannot bind %s:%d" % (ip, port))
    srv.start()
    return srv


def call_many(stub, n, metadata=()):
    counts, errors = {}, {}
    for _ in range(n):
        try:
            v = stub(b"hi", timeout=5, metadata=metadata).decode()
            counts[v] = counts.get(v, 0) + 1
        except grpc.RpcError as e:
            errors[e.code().name] = errors.get(e.code().name, 0) + 1
    return counts, errors


def wait_all_to(stub, version, what, metadata=()):
    """Polls until 20 calls in a row all reach `version`, then checks 50 more stay there."""
    t0 = time.time()
    got = kc.poll(lambda: call_many(stub, 20, metadata)[0] == {version: 20}, STEP_TIMEOUT, 0.05)
    check(bool(got), "%s: all traffic to %s (%.1fs)" % (what, version, time.time() - t0))
    if got:
        counts, errors = call_many(stub, 50, metadata)
        check(counts == {version: 50} and not errors,
              "%s: and stays there (%s %s)" % (what, counts, errors))


def apply_vs(api, work, w1, w3):
    path = os.path.join(work, "vs.yaml")
    with open(path, "w") as f:
        f.write(rcfg.vs_yaml(w1, w3))
    api.kubectl("apply", "--validate=false", "-f", path)


def vs_rv(obj_map):
    v = obj_map.get(("VirtualService", rcfg.NS, "greeter"))
    return v[0] if v else None


def main():
    kc.need_kubectl()
    work = tempfile.mkdtemp(prefix="k8s-grpc-routing-")
    ips, port = rcfg.pick_backends(os.getpid() + 7)
    api = kc.ApiServer(work)
    pilot = None
    backends = []
    ch = None
    try:
        objs_path = os.path.join(work, "greeter.yaml")
        with open(objs_path, "w") as f:
            f.write(rcfg.services_yaml(ips, port) + "---\n" + rcfg.vs_yaml(80, 20))
        api.kubectl("apply", "--validate=false", "-f", objs_path)

        backends = [start_backend(ip, port, v) for ip, v in zip(ips, rcfg.VERSIONS)]
        pilot = kc.KubePilot(api.kubeconfig, work)
        pilot.start()
        boot = os.path.join(work, "bootstrap.json")
        rcfg.bootstrap(boot, pilot.target())
        os.environ["GRPC_XDS_BOOTSTRAP"] = boot
        ch = grpc.insecure_channel("xds:///%s:%d" % (rcfg.HOST, port))
        stub = ch.unary_unary(METHOD)

        # 1. initial: the first call waits for LDS/RDS/CDS/EDS
        t0 = time.time()

        def first_call():
            try:
                return stub(b"hi", timeout=5, wait_for_ready=True).decode()
            except grpc.RpcError as e:
                print("first call: %s %s" % (e.code(), e.details()))
                return None
        first = kc.poll(first_call, 20, 0.2)
        check(first in ("v1", "v3"), "first call through xDS answered by %s in %.1fs" %
              (first, time.time() - t0))
        n = 200
        counts, errors = call_many(stub, n)
        v1 = 100.0 * counts.get("v1", 0) / n
        v3 = 100.0 * counts.get("v3", 0) / n
        check(not errors and "v2" not in counts and abs(v1 - 80) <= TOLERANCE and
              abs(v3 - 20) <= TOLERANCE,
              "initial split v1 %.1f%% / v3 %.1f%% within %.0f points of 80/20 (%s %s)" %
              (v1, v3, TOLERANCE, counts, errors))
        counts, errors = call_many(stub, 20, metadata=(("end-user", "jason"),))
        check(counts == {"v2": 20}, "header end-user: jason -> v2 (%s %s)" % (counts, errors))

        # 2. kubectl apply of a VirtualService change
        apply_vs(api, work, 0, 100)
        wait_all_to(stub, "v3", "kubectl apply v1 0 / v3 100")

        # 3. watches dropped (clean end), then a change: the re-watch from the last
        # resourceVersion must replay it
        api.admin("drop-watches")
        apply_vs(api, work, 100, 0)
        wait_all_to(stub, "v1", "dropped watches, then apply v1 100 / v3 0")

        # 4. stalled watches miss a change; compaction turns the next read into 410 and
        # only a relist can find the change
        old_rv = vs_rv(api.istio_objects())
        api.admin("stall?seconds=60")
        try:
            apply_vs(api, work, 0, 100)
            new_rv = vs_rv(api.istio_objects())
            check(new_rv != old_rv, "stalled: the server has the new VirtualService (rv %s -> %s)"
                  % (old_rv, new_rv))
            # the stall holds: nothing of the change reaches the control plane (a short,
            # bounded look; a leak would show within it)
            leaked = kc.poll(lambda: vs_rv(pilot.configz()) != old_rv, 1.0)
            check(not leaked, "stalled: configz keeps the VirtualService at rv %s" % old_rv)
            counts, _ = call_many(stub, 20)
            check(counts == {"v1": 20}, "stalled: traffic stays on v1 (%s)" % counts)
            api.admin("compact")
            wait_all_to(stub, "v3", "stall + apply v3 100 + compaction (relist)")
        finally:
            api.admin("stall?seconds=0")

        # 5. a restart with different state: the greeter objects, the VirtualService now
        # sending everything to v2 without the fault route
        state = [o for o in yaml.safe_load_all(rcfg.services_yaml(ips, port)) if o]
        namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": it["metadata"]["name"]}}
                      for it in api.get("/api/v1/namespaces")["items"]
                      if it["metadata"]["name"] != rcfg.NS]
        state = namespaces + state + [{
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "greeter", "namespace": rcfg.NS},
            "spec": {"hosts": ["greeter"], "http": [
                {"name": "all-v2", "route": [{"destination": {"host": "greeter",
                                                              "subset": "v2"}}]}]}}]
        api.admin("restart", state)
        wait_all_to(stub, "v2", "stand-in restart with changed state")
        counts, errors = call_many(stub, 20, metadata=(("x-demo-fault", "abort"),))
        check(counts == {"v2": 20} and not errors,
              "after the restart x-demo-fault: abort is routed, not aborted (%s %s)" %
              (counts, errors))

        # the end state: configz equals the server's objects
        diff = [None]

        def same():
            diff[0] = kc.configz_diff(api, pilot)
            return diff[0] is None
        ok = kc.poll(same, 10)
        check(ok, "/debug/configz equals the server's Istio objects" +
              ("" if ok else " (%s)" % diff[0]))
        k8sz = {e["resource"]: e for e in pilot.json("/debug/k8sz")}
        vs = k8sz.get("virtualservices", {})
        check(vs.get("relists", 0) >= 2 and vs.get("synced"),
              "/debug/k8sz: virtualservices relisted after compaction and restart (%s)" % vs)
        check(pilot.metric("pilot_total_xds_rejects") == 0, "the client NACKed nothing")
    except Exception as e:  # report with the logs below instead of a bare traceback
        import traceback
        traceback.print_exc()
        failures.append("exception: %s" % e)
    finally:
        if ch is not None:
            ch.close()
        for b in backends:
            b.stop(0)
        if pilot is not None:
            code = pilot.stop()
            if code != 0:
                failures.append("pilot-discovery clean exit (%d)" % code)
        api.stop()
    if failures:
        print("\n%d failures:\n  %s\n--- pilot log ---\n%s" %
              (len(failures), "\n  ".join(failures), pilot.read_log() if pilot else ""))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
