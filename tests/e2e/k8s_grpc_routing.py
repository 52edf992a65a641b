#!/usr/bin/python3
"""Real xDS client, config from a REAL Kubernetes API server: gRPC C core's xDS client
(Debian's python3-grpcio) routes calls using what pilot-discovery --kubeconfig serves from
a real kube-apiserver + etcd (tests/k8s/realk8s.py, binaries from $PILOT_PEERS_BIN; RBAC
on, pilot-discovery authenticated only by a bound token of istio-system/istiod, through a
TCP relay the test can hold and cut), the greeter objects of routing_config.py applied with
kubectl (the Pods' status through the status subresource, as a kubelet would).

Three real gRPC backends answer their version on this machine's own (global) IPv4
address, one port each: hostNetwork Pods, one EndpointSlice per version (a real server
refuses loopback addresses in EndpointSlices, which the stand-in took). The client calls
xds:///greeter.e2e.svc.cluster.local:<port>; each step changes the
VirtualService and waits (bounded) until every call goes where the change says:
  1. initial: split v1 80 / v3 20 within +-10 points, header end-user: jason -> v2;
  2. kubectl apply (v1 0 / v3 100) -> v3;
  3. the API server restarted (SIGTERM, a graceful shutdown: it keeps open watches ~30 s,
     then cuts them; same port, certificates, etcd), then kubectl apply (v1 100 / v3 0)
     -> v1 (the watches resume from their resourceVersion);
  4. the API server SIGSTOPped 3 s, then SIGCONT; etcd SIGSTOPped: pilot-discovery keeps
     serving what it has (traffic stays on v1, /ready 200) while a kubectl apply (v3 100)
     waits; SIGCONT -> v3;
  5. a partition (relay held): kubectl apply (v1 100) not seen (configz keeps the old
     resourceVersion, traffic stays on v3); etcd compacted past it and the connections
     cut: the re-watch from the old resourceVersion gets 410 from the real server and the
     reflectors relist -> v1;
  6. a partition while the VirtualService changes (everything to v2, no fault route) and
     the API server is SIGKILLed and started again -> v2, and x-demo-fault: abort no
     longer aborts.
At the end /debug/configz holds exactly the server's Istio objects (resourceVersion and
spec), /debug/k8sz counts the relists, the client NACKed nothing and RBAC refused istiod
nothing (the API server's audit log: no 403 but in an API server's first moment, when
its RBAC caches are not filled and it refuses everyone). The API server runs with --watch-cache=false so that a
re-watch reads etcd and sees the compaction (with the watch cache a re-watch is served
from the cache's own window). Skips (77) without grpcio, the binary, a global IPv4 address or
$PILOT_PEERS_BIN's binaries.
"""
import os
import shutil
import signal
import subprocess
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
except ImportError as e:
    ec.skip("python3-grpcio is not installed (%s)" % e)

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


def free_port_on(ip):
    import socket
    sk = socket.socket()
    sk.bind((ip, 0))
    port = sk.getsockname()[1]
    sk.close()
    return port


def greeter_yaml(host_ip, svc_port, ports):
    """routing_config's greeter, the way a real server accepts it: three hostNetwork Pods
    on this machine's address (status written through the status subresource by
    apply_objects), one port each, and one EndpointSlice per version (a slice's ports are
    shared by its endpoints); the Service's targetPort is the port name. The
    DestinationRule is routing_config's."""
    docs = ["""apiVersion: v1
kind: Namespace
metadata: {name: %s}
""" % rcfg.NS, """apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: %s, labels: {app: greeter}}
spec:
  clusterIP: 10.96.77.77
  selector: {app: greeter}
  ports:
  - {name: grpc, port: %d, targetPort: grpc, protocol: TCP}
""" % (rcfg.NS, svc_port)]
    for v, p in zip(rcfg.VERSIONS, ports):
        docs.append("""apiVersion: v1
kind: Pod
metadata:
  name: greeter-%s
  namespace: %s
  labels: {app: greeter, version: %s}
spec:
  serviceAccountName: greeter
  hostNetwork: true
  nodeName: node-1
  containers:
  - name: greeter
    image: example.invalid/greeter:%s
    ports: [{name: grpc, containerPort: %d}]
status:
  phase: Running
  hostIP: %s
  podIP: %s
  podIPs:
  - ip: %s
  conditions:
  - {type: Ready, status: "True"}
""" % (v, rcfg.NS, v, v, p, host_ip, host_ip, host_ip))
        docs.append("""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: greeter-%s
  namespace: %s
  labels: {kubernetes.io/service-name: greeter}
addressType: IPv4
ports:
- {name: grpc, port: %d, protocol: TCP}
endpoints:
- addresses: ["%s"]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  targetRef: {kind: Pod, name: greeter-%s, namespace: %s}
""" % (v, rcfg.NS, p, host_ip, v, rcfg.NS))
    dr = rcfg.services_yaml(["127.0.0.1"] * 3, 1).split("---\n")[-1]
    assert dr.startswith("apiVersion: networking.istio.io/v1\nkind: DestinationRule"), dr
    docs.append(dr)
    return "---\n".join(docs)


def apply_vs(api, work, w1, w3):
    path = os.path.join(work, "vs.yaml")
    with open(path, "w") as f:
        f.write(rcfg.vs_yaml(w1, w3))
    api.kubectl("apply", "-f", path)


def vs_rv(obj_map):
    v = obj_map.get(("VirtualService", rcfg.NS, "greeter"))
    return v[0] if v else None


def main():
    t_start = time.time()
    work = tempfile.mkdtemp(prefix="k8s-grpc-routing-")
    host_ip = kc.host_ipv4()
    if host_ip is None:
        ec.skip("no global IPv4 address: a real API server refuses loopback endpoints")
    port = free_port_on("127.0.0.1")
    bports = [free_port_on(host_ip) for _ in rcfg.VERSIONS]
    print("backends v1..v3 on %s:%s (hostNetwork Pods), service port %d" % (
        host_ip, bports, port))
    try:
        api = kc.ApiServer(work, relay=True, watch_cache=False)
    except SystemExit:  # skipped
        shutil.rmtree(work, ignore_errors=True)
        raise
    k8s = api.k8s
    pilot = None
    backends = []
    ch = None
    try:
        objs_path = os.path.join(work, "greeter.yaml")
        with open(objs_path, "w") as f:
            f.write(greeter_yaml(host_ip, port, bports) + "---\n" + rcfg.vs_yaml(80, 20))
        api.apply_objects(objs_path)

        backends = [start_backend(host_ip, p, v) for p, v in zip(bports, rcfg.VERSIONS)]
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

        # 3. the API server restarts (graceful), then a change
        secs = k8s.restart_apiserver()
        print("     API server restarted (SIGTERM) in %.1f s" % secs)
        apply_vs(api, work, 100, 0)
        wait_all_to(stub, "v1", "API server restart, then apply v1 100 / v3 0")

        # 4a. the API server stopped (SIGSTOP) a few seconds: its connections hang; what
        # pilot-discovery serves does not change, and after SIGCONT the next change comes
        # through (4b's, below)
        k8s.stop_proc("apiserver")
        try:
            time.sleep(3)
            counts, errors = call_many(stub, 20)
            check(counts == {"v1": 20} and not errors,
                  "API server stopped: traffic stays on v1 (%s %s)" % (counts, errors))
            check(pilot._ready(), "API server stopped: pilot-discovery /ready stays 200")
        finally:
            k8s.cont("apiserver")

        # 4b. etcd stopped: the API server cannot read or write; a change waits for it
        k8s.stop_proc("etcd")
        cont = True
        try:
            path = os.path.join(work, "vs-etcd.yaml")
            with open(path, "w") as f:
                f.write(rcfg.vs_yaml(0, 100))
            bg = subprocess.Popen([k8s.kubectl_path(), "--kubeconfig", k8s.kubeconfig,
                                   "--request-timeout=60s", "apply", "-f", path],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(3)
            check(bg.poll() is None, "etcd stopped: kubectl apply waits")
            counts, errors = call_many(stub, 20)
            check(counts == {"v1": 20} and not errors,
                  "etcd stopped: traffic stays on v1 (%s %s)" % (counts, errors))
            check(pilot._ready(), "etcd stopped: pilot-discovery /ready stays 200")
            k8s.cont("etcd")
            cont = False
            out, _ = bg.communicate(timeout=90)
            check(bg.returncode == 0, "etcd continued: kubectl apply done (%s)" % out.strip())
        finally:
            if cont:
                k8s.cont("etcd")
        wait_all_to(stub, "v3", "etcd SIGSTOP/SIGCONT, apply v1 0 / v3 100")

        # 5. a partition hides a change; compaction makes the old resourceVersion unusable,
        # so only a relist can find the change
        relists0 = sum(e["relists"] for e in pilot.json("/debug/k8sz"))
        old_rv = vs_rv(api.istio_objects())
        api.relay.hold()
        try:
            apply_vs(api, work, 100, 0)
            new_rv = vs_rv(api.istio_objects())
            check(new_rv != old_rv, "partition: the server has the new VirtualService "
                  "(rv %s -> %s)" % (old_rv, new_rv))
            # the partition holds: nothing of the change reaches the control plane (a
            # short, bounded look; a leak would show within it)
            leaked = kc.poll(lambda: vs_rv(pilot.configz()) != old_rv, 1.5)
            check(not leaked, "partition: configz keeps the VirtualService at rv %s" % old_rv)
            counts, _ = call_many(stub, 20)
            check(counts == {"v3": 20}, "partition: traffic stays on v3 (%s)" % counts)
            rev = k8s.compact()
            print("     etcd compacted at revision %d" % rev)
            print("     relay: %d connections cut" % api.relay.cut())
        finally:
            api.relay.release()
        wait_all_to(stub, "v1", "partition + apply v1 100 + compaction + cut (relist)")
        k8sz = pilot.json("/debug/k8sz")
        relists1 = sum(e["relists"] for e in k8sz)
        check(relists1 > relists0, "/debug/k8sz: relists after the compaction (%d -> %d)" %
              (relists0, relists1))
        expired = [ln for ln in open(pilot.log_path).read().splitlines() if "410" in ln]
        check(bool(expired), "pilot-discovery logged the 410: %s" %
              (expired[0][:200] if expired else "none"))

        # 6. a partition while the state changes and the API server is killed
        api.relay.hold()
        try:
            api.kubectl("apply", "-f", "-", inp="""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: %s}
spec:
  hosts: [greeter]
  http:
  - name: all-v2
    route:
    - destination: {host: greeter, subset: v2}
""" % rcfg.NS)
            secs = k8s.restart_apiserver(sig=signal.SIGKILL)
            print("     API server killed (SIGKILL) and started in %.1f s" % secs)
            api.relay.cut()
        finally:
            api.relay.release()
        wait_all_to(stub, "v2", "partition, VirtualService changed, API server killed")
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
        check(vs.get("relists", 0) >= 1 and vs.get("synced"),
              "/debug/k8sz: virtualservices relisted after compaction (%s)" % vs)
        check(pilot.metric("pilot_total_xds_rejects") == 0, "the client NACKed nothing")
        check(*api.k8s.rbac_verdict())
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
        print("logs kept in " + work)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("passed in %.0f s (%s)" % (time.time() - t_start, k8s.banner()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
