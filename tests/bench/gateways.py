#!/usr/bin/python3
"""Gateway scale: N Gateways (one HTTP server each, its own host) selecting one ingress
gateway, and N VirtualServices each bound to one of them; gen_dump generates every
gateway resource (LDS, the shared "http.80" route with N virtual hosts, CDS, EDS) and
the child's wall time, CPU time and max RSS are printed per N. Linear growth is the claim
(docs/BENCHMARKS.md, "Gateway scale"); the first RDS used to be quadratic.
Each N runs twice: plain HTTP servers (one shared route) and HTTPS servers terminated
with a credential (one listener chain and one route per Gateway).
Usage: gateways.py GEN_DUMP N [N...]"""
import os
import resource
import subprocess
import sys
import tempfile
import time


def mesh(n, https=False):
    docs = ["""apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec: {clusterIP: 10.0.0.9, ports: [{name: http, port: 80}], selector: {app: backend}}"""]
    for i in range(n):
        docs.append("""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw%d, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: %s
    hosts: ["h%d.example.com"]""" % (i, HTTPS if https else HTTP, i))
        docs.append("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs%d, namespace: istio-system}
spec:
  hosts: ["h%d.example.com"]
  gateways: [gw%d]
  http:
  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 80}}}]""" % (
            i, i, i))
    return "\n---\n".join(docs) + "\n"


HTTP = "{number: 80, name: http, protocol: HTTP}"
HTTPS = "{number: 443, name: https, protocol: HTTPS}\n    tls: {mode: SIMPLE, credentialName: cred}"


def main():
    dump, sizes = sys.argv[1], [int(a) for a in sys.argv[2:]]
    for n, https in [(n, h) for h in (False, True) for n in sizes]:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "mesh.yaml")
            with open(path, "w") as f:
                f.write(mesh(n, https))
            out = os.path.join(d, "out")
            os.makedirs(out)
            t0 = time.monotonic()
            p = subprocess.Popen([dump, "--flavours", "gateway", out, path],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.monotonic() - t0
            if status != 0:
                print("gateways N=%d: gen_dump failed (%d)" % (n, status))
                return 1
            rds = os.path.getsize(os.path.join(out, "all.json"))
            print("gateways %s N=%d: wall %.2f s, cpu %.2f s, max RSS %.1f MB, config_dump %.1f MB"
                  % ("https" if https else "http ", n, wall, ru.ru_utime + ru.ru_stime,
                     ru.ru_maxrss / 1024.0, rds / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
