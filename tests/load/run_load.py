#!/usr/bin/python3
"""Drives tests/load/xds_load against a real pilot-discovery: writes K services x 2
endpoints (namespace "load", gRPC port 80) and a VirtualService on svc-0 (--full-mesh: a
DestinationRule and a VirtualService for every service), starts the server on free ports,
runs N clients, then edits svc-0's VirtualService and reports the time to the last
client's RDS update, server CPU seconds and RSS per client, and the loopback byte floor.

  run_load.py --smoke                       10 proxyless clients, 20 services (a test)
  run_load.py --smoke-envoy                 20 Envoy sidecars, SotW then Delta, 20 services
                                            with a rule each (a test: every sidecar served,
                                            every type ACKed on the server, no NACK)
  run_load.py --build DIR --clients N --services K [--flavour envoy] [--delta]
              [--full-mesh] [--cqs 4 --per-channel 10]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import e2e_common as ec  # noqa: E402

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-0, namespace: load}
spec:
  hosts: [svc-0]
  http:
  - match:
    - headers:
        x-load: {exact: %s}
    route:
    - destination: {host: svc-0}
  - route:
    - destination: {host: svc-0}
"""


RULES = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-%(i)d, namespace: load}
spec:
  host: svc-%(i)d.load.svc.cluster.local
  trafficPolicy:
    connectionPool:
      http: {http2MaxRequests: 1000, maxRequestsPerConnection: 10}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}
  subsets:
  - name: v1
    labels: {version: v1}
"""

VS_EACH = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-%(i)d, namespace: load}
spec:
  hosts: [svc-%(i)d]
  http:
  - route:
    - destination: {host: svc-%(i)d}
    timeout: 10s
    retries: {attempts: 2, perTryTimeout: 2s}
"""


def write_config(d, k, full_mesh=False):
    os.makedirs(d, exist_ok=True)
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: load}\n"]
    for i in range(k):
        a, b = divmod(i, 250)
        docs.append("""apiVersion: v1
kind: Service
metadata: {name: svc-%d, namespace: load}
spec:
  clusterIP: 10.97.%d.%d
  selector: {app: svc-%d}
  ports:
  - {name: grpc, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-%d-x
  namespace: load
  labels: {kubernetes.io/service-name: svc-%d}
addressType: IPv4
ports:
- {name: grpc, port: 8080, protocol: TCP}
endpoints:
- addresses: ["10.98.%d.%d"]
- addresses: ["10.99.%d.%d"]
""" % (i, a, b + 1, i, i, i, a, b + 1, a, b + 1))
    with open(os.path.join(d, "services.yaml"), "w") as f:
        f.write("---\n".join(docs))
    if full_mesh:
        rules = [RULES % {"i": i} for i in range(k)]
        rules += [VS_EACH % {"i": i} for i in range(1, k)]  # svc-0's is vs.yaml
        with open(os.path.join(d, "rules.yaml"), "w") as f:
            f.write("---\n".join(rules))
    with open(os.path.join(d, "vs.yaml"), "w") as f:
        f.write(VS % "a")


def server_checks(pilot, n, flavour):
    """What the server says about the connected clients: every one of the n streams has
    each type's last response ACKed (/debug/syncz) and nothing was rejected. Returns a
    list of failures."""
    bad = []
    deadline = time.time() + 20
    while True:
        sync = pilot.json("/debug/syncz")
        mine = [p for p in sync if p.get("proxy", "").startswith("svc-" if flavour == "envoy"
                                                                   else "load-")]
        bad = []
        if len(mine) != n:
            bad.append("/debug/syncz lists %d of the %d streams" % (len(mine), n))
        for p in mine:
            for k in ("cluster", "listener", "route", "endpoint"):
                if not p.get(k + "_sent") or p.get(k + "_sent") != p.get(k + "_acked"):
                    bad.append("%s: %s sent %r, acked %r" % (p.get("proxy"), k,
                               p.get(k + "_sent"), p.get(k + "_acked")))
        if not bad or time.time() > deadline:
            break
        time.sleep(0.2)
    rejects = pilot.metric("pilot_total_xds_rejects")
    if rejects != 0:
        bad.append("pilot_total_xds_rejects = %g" % rejects)
    if not bad:
        print("server: /debug/syncz shows all %d streams with CDS, LDS, RDS and EDS sent and "
              "ACKed; pilot_total_xds_rejects 0" % n, flush=True)
    return bad


def run_once(a, flavour, delta, full_mesh, check=False):
    """One server, one xds_load run; returns (ok, the result dict or None)."""
    work = tempfile.mkdtemp(prefix="xds-load-")
    pilot = ec.Pilot(workdir=work)
    write_config(pilot.config_dir, a.services, full_mesh)
    alt = os.path.join(work, "vs-alt.yaml")
    with open(alt, "w") as f:
        f.write(VS % "b")
    pilot.start(timeout=120)
    result, bad, rc = None, [], 1
    try:
        exe = os.path.join(a.build, "tests", "load", "xds_load")
        cmd = [exe, "--target", pilot.target(), "--clients", str(a.clients),
               "--services", str(a.services), "--ns", "load", "--port", "80",
               "--cqs", str(a.cqs), "--streams-per-channel", str(a.per_channel),
               "--pid", str(pilot.proc.pid), "--timeout", str(a.timeout),
               "--vs", os.path.join(pilot.config_dir, "vs.yaml"), "--vs-alt", alt,
               "--flavour", flavour, "--pods", str(getattr(a, "pods", 0))] + \
              (["--delta"] if delta else []) + \
              (["--linger", "30", "--loopback-mb", "16"] if check else [])
        print(" ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("result: "):
                result = json.loads(line[len("result: "):])
                if check and result.get("ok"):
                    bad = server_checks(pilot, a.clients, flavour)
                    proc.terminate()  # ends the linger; the streams close with it
        rc = proc.wait()
        if check and rc < 0:
            rc = 0 if result and result.get("ok") else 1
    finally:
        code = pilot.stop()
    for b in bad:
        print("FAIL " + b)
    if rc != 0 or code != 0 or bad:
        print("xds_load rc %d, pilot-discovery exit %d\n%s" % (rc, code, pilot.read_log()))
        return False, result
    return True, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--smoke-envoy", action="store_true")
    ap.add_argument("--build", default=os.environ.get("PILOT_BUILD"))
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--cqs", type=int, default=4)
    ap.add_argument("--per-channel", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--flavour", choices=("grpc", "envoy"), default="grpc")
    ap.add_argument("--delta", action="store_true")
    ap.add_argument("--pods", type=int, default=0,
                    help="Envoy: sidecar i is pod i %% PODS of the mesh (default: distinct)")
    ap.add_argument("--full-mesh", action="store_true",
                    help="a DestinationRule and a VirtualService per service")
    a = ap.parse_args()
    if a.smoke:
        a.clients, a.services, a.cqs, a.timeout = 10, 20, 2, 60
    if a.smoke_envoy:
        a.clients, a.services, a.cqs, a.per_channel, a.timeout = 20, 20, 2, 5, 90
    if not a.build:
        ec.skip("no build directory (PILOT_BUILD or --build)")
    os.environ["PILOT_BUILD"] = a.build
    if a.smoke_envoy:
        ok = True
        for delta in (False, True):
            print("== envoy sidecars, %s" % ("delta" if delta else "sotw"), flush=True)
            good, res = run_once(a, "envoy", delta, True, check=True)
            ok = ok and good and res is not None and res["nacks"] == 0 and res["ok"]
            # every sidecar asked for (and got) RDS and EDS: LDS named routes, CDS EDS clusters
            for k in ("lds", "rds", "cds", "eds"):
                if res is None or res["with"][k] != a.clients:
                    print("FAIL %s: %s of %d sidecars got a response" %
                          (k, res and res["with"][k], a.clients))
                    ok = False
        return 0 if ok else 1
    good, _ = run_once(a, a.flavour, a.delta, a.full_mesh)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
