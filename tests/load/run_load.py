#!/usr/bin/python3
"""Drives tests/load/xds_load against a real pilot-discovery: writes K services x 2
endpoints (namespace "load", gRPC port 80) and a VirtualService on svc-0, starts the
server on free ports, runs N clients, then edits the VirtualService and reports the time
to the last client's RDS update, server CPU seconds and RSS per client.

  run_load.py --smoke                       10 clients, 20 services (a test)
  run_load.py --build DIR --clients N --services K [--cqs 4 --per-channel 10]
"""
import argparse
import os
import subprocess
import sys
import tempfile

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


def write_config(d, k):
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
    with open(os.path.join(d, "vs.yaml"), "w") as f:
        f.write(VS % "a")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--build", default=os.environ.get("PILOT_BUILD"))
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--cqs", type=int, default=4)
    ap.add_argument("--per-channel", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=300)
    a = ap.parse_args()
    if a.smoke:
        a.clients, a.services, a.cqs, a.timeout = 10, 20, 2, 60
    if not a.build:
        ec.skip("no build directory (PILOT_BUILD or --build)")
    os.environ["PILOT_BUILD"] = a.build
    work = tempfile.mkdtemp(prefix="xds-load-")
    pilot = ec.Pilot(workdir=work)
    write_config(pilot.config_dir, a.services)
    alt = os.path.join(work, "vs-alt.yaml")
    with open(alt, "w") as f:
        f.write(VS % "b")
    pilot.start(timeout=120)
    try:
        exe = os.path.join(a.build, "tests", "load", "xds_load")
        cmd = [exe, "--target", pilot.target(), "--clients", str(a.clients),
               "--services", str(a.services), "--ns", "load", "--port", "80",
               "--cqs", str(a.cqs), "--streams-per-channel", str(a.per_channel),
               "--pid", str(pilot.proc.pid), "--timeout", str(a.timeout),
               "--vs", os.path.join(pilot.config_dir, "vs.yaml"), "--vs-alt", alt]
        print(" ".join(cmd), flush=True)
        rc = subprocess.run(cmd).returncode
    finally:
        code = pilot.stop()
    if rc != 0 or code != 0:
        print("xds_load rc %d, pilot-discovery exit %d\n%s" % (rc, code, pilot.read_log()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
