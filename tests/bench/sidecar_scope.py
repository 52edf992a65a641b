#!/usr/bin/python3
"""Sidecar scoping cost: bytes of xDS per sidecar proxy (the sum of the serialized LDS,
RDS, CDS and EDS resources gen_dump makes for one sidecar of namespace default) with and
without a namespace Sidecar (egress "./*" and "istio-system/*"), and the generation time
(gen_dump's wall time for that one proxy, snapshot build included).
Meshes: Istio's bookinfo plus one service in another namespace (PILOT_SHARED), and a
synthetic N-service mesh: N HTTP services spread over 20 namespaces, 2 endpoints each,
the proxy's namespace holding N/20 of them.
Usage: sidecar_scope.py GEN_DUMP [N...]   (docs/BENCHMARKS.md, "Sidecar scoping")"""
import os
import subprocess
import sys
import tempfile
import time

SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
"""

OTHER = """apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: other}
spec: {clusterIP: 10.96.100.20, selector: {app: httpbin}, ports: [{name: http, port: 8000}]}
"""


def synthetic(n, nns=20):
    docs = []
    for i in range(n):
        ns = "default" if i % nns == 0 else "ns%d" % (i % nns)
        a, b = (i >> 8) & 255, i & 255
        docs.append("""apiVersion: v1
kind: Service
metadata: {name: svc%d, namespace: %s}
spec: {clusterIP: 10.100.%d.%d, selector: {app: svc%d}, ports: [{name: http, port: %d}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc%d-x, namespace: %s, labels: {kubernetes.io/service-name: svc%d}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [10.200.%d.%d]}, {addresses: [10.201.%d.%d]}]""" % (
            i, ns, a, b, i, 8000 + i % 50, i, ns, i, a, b, a, b))
    return "\n---\n".join(docs) + "\n"


def measure(dump, files):
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        subprocess.run([dump, "--flavours", "sidecar", out] + files, check=True,
                       stderr=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        total, count = 0, 0
        with open(os.path.join(out, "index")) as idx:
            for line in idx:
                flav, _type, fname = line.split()[:3]
                if flav == "sidecar":
                    total += os.path.getsize(os.path.join(out, fname))
                    count += 1
    return total, count, wall


def row(name, dump, files, tmp):
    sc = os.path.join(tmp, "sidecar.yaml")
    with open(sc, "w") as f:
        f.write(SIDECAR)
    b0, n0, t0 = measure(dump, files)
    b1, n1, t1 = measure(dump, files + [sc])
    print("| %s | %d (%d resources) | %d (%d resources) | %.1f%% | %.2f s | %.2f s |" % (
        name, b0, n0, b1, n1, 100.0 * b1 / b0, t0, t1))


def main():
    dump = sys.argv[1]
    ns = [int(a) for a in sys.argv[2:]] or [1000]
    print("| mesh | bytes per proxy, no Sidecar | with namespace Sidecar | ratio | "
          "time, none | time, Sidecar |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        shared = os.environ.get("PILOT_SHARED", os.path.join(os.path.dirname(__file__),
                                                             "../../../shared"))
        bi = os.path.join(shared, "istio/samples/bookinfo/platform/kube/bookinfo.yaml")
        if os.path.exists(bi):
            other = os.path.join(tmp, "other.yaml")
            with open(other, "w") as f:
                f.write(OTHER)
            row("bookinfo + 1 service elsewhere", dump, [bi, other], tmp)
        for n in ns:
            path = os.path.join(tmp, "mesh%d.yaml" % n)
            with open(path, "w") as f:
                f.write(synthetic(n))
            row("%d services / 20 namespaces" % n, dump, [path], tmp)


if __name__ == "__main__":
    main()
