#!/usr/bin/python3
"""pilot-discovery --kubeconfig at a REAL kube-apiserver + etcd (tests/k8s/realk8s.py,
binaries from $PILOT_PEERS_BIN), authenticated only by a bound token of
istio-system/istiod (TokenRequest API), so RBAC judges manifests/02-rbac.yaml, around
start-up:

1. The API server is not there yet (stopped after the token was made: connections are
   refused): the process stays up, /ready answers 503, the CA's wait for Secret
   istio-ca-secret logs a bounded number of lines; the same API server comes back (same
   port, certificates and etcd) and /ready turns 200.
2. Gateway credentials: a kubernetes.io/tls Secret applied with kubectl reaches the model
   and an ADS request from a router node in that namespace for SDS
   "kubernetes://<name>" gets its certificate and key; a service-account-token Secret
   carrying tls.crt/tls.key (so SDS would serve it if the model had it) is not read (the
   field selector type!=kubernetes.io/service-account-token, evaluated by the real server).
3. Istio's CRDs installed after start (the cluster has none at first): the real server
   starts serving networking.istio.io once manifests/01-crds.yaml is applied; a
   VirtualService applied afterwards shows up in /debug/configz, found by the
   re-discovery timer (PILOT_K8S_REDISCOVERY_INTERVAL shortened).
4. SIGTERM while waiting for an API server that never answers (the same kubeconfig
   pointed at a dead port): a clean exit 0.
No request of pilot-discovery's is refused by RBAC (no 403 in its log).

Skips (77) without the binary, grpcio, openssl, protoc or $PILOT_PEERS_BIN's binaries.
"""
import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import realk8s  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_SDS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
NS = "shop"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def poll(fn, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


class Pilot:
    def __init__(self, work, name, kc, env=None):
        self.exe = os.path.join(ec.env_path("PILOT_BUILD"), "pilot", "pilot-discovery")
        if not os.path.exists(self.exe):
            ec.skip("%s not built" % self.exe)
        self.grpc_port, self.http_port, self.mon_port, self.tls_port = (
            ec.free_port() for _ in range(4))
        self.log_path = os.path.join(work, name + ".log")
        self.log = open(self.log_path, "w")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--kubeconfig", kc,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port,
             "--secureGRPCAddr", "127.0.0.1:%d" % self.tls_port,
             "--caCertsDir", os.path.join(work, "no-cacerts")],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def ready_code(self):
        try:
            return ec.http_get("http://127.0.0.1:%d/ready" % self.http_port, 1)[0]
        except OSError:
            return 0

    def mon_json(self, path):
        st, body = ec.http_get("http://127.0.0.1:%d%s" % (self.mon_port, path), 5)
        return json.loads(body) if st == 200 else None

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            rc = -999 if rc == 0 else rc
        self.log.close()
        return rc


def make_cert(work, name):
    key, crt = os.path.join(work, name + ".key"), os.path.join(work, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=%s.example.com" % name, "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    with open(crt, "rb") as f1, open(key, "rb") as f2:
        return f1.read(), f2.read()


def secret_yaml(name, typ, cert, key):
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    # A real server requires a token Secret to name its ServiceAccount.
    ann = ("  annotations: {kubernetes.io/service-account.name: shop-sa}\n"
           if typ == "kubernetes.io/service-account-token" else "")
    return """apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s
%stype: %s
data:
  tls.crt: %s
  tls.key: %s
""" % (name, NS, ann, typ, b64(cert), b64(key))


def sds(protos, pilot, names):
    """One SotW SDS request from a router node in NS; returns {name: Secret} or None."""
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    n = Node(id="router~10.1.0.9~ingress-1.%s~%s.svc.cluster.local" % (NS, NS))
    n.metadata.fields["NAMESPACE"].string_value = NS
    ch = grpc.insecure_channel("127.0.0.1:%d" % pilot.grpc_port)
    q, out = queue.Queue(), queue.Queue()
    call = ch.stream_stream(SOTW, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=Resp.FromString)(iter(q.get, None), timeout=10)

    def reader():
        try:
            for r in call:
                out.put(r)
        except grpc.RpcError:
            pass
        out.put(None)
    threading.Thread(target=reader, daemon=True).start()
    q.put(Req(node=n, type_url=T_SDS, resource_names=names))
    try:
        r = out.get(timeout=5)
    except queue.Empty:
        r = None
    q.put(None)
    call.cancel()
    ch.close()
    if r is None:
        return None
    return {protos.unpack_any(a).name: protos.unpack_any(a) for a in r.resources}


def part_delayed_apiserver(work, protos, k8s, kc):
    k8s.kill_apiserver()
    pilot = Pilot(work, "pilot-delayed", kc, env={"PILOT_K8S_REDISCOVERY_INTERVAL": "300ms"})
    try:
        codes = []
        for _ in range(8):  # about 4 s without an API server
            time.sleep(0.5)
            codes.append(pilot.ready_code())
        check(pilot.proc.poll() is None, "pilot-discovery keeps running without an API server")
        check(codes[-1] == 503 and all(c in (0, 503) for c in codes) and codes.count(503) >= 4,
              "/ready answers 503 while the API server is unreachable (%s)" % codes)
        t0 = time.time()
        k8s.start_apiserver()
        print("     the API server is back, /readyz after %.1f s" % (time.time() - t0))
        ok = poll(lambda: pilot.ready_code() == 200, 60)
        check(bool(ok), "/ready turns 200 once the API server answers (%.1f s after its "
              "start)" % (time.time() - t0))
        log = pilot.read_log()
        waits = [ln for ln in log.splitlines() if "retrying" in ln and "ca" in ln.split("\t")[2:3]]
        for ln in waits:
            print("     " + ln[:220])
        check(1 <= len(waits) <= 4, "the CA's wait logged %d lines (bounded)" % len(waits))
        check("API server answered after" in log, "the CA says when the API server answered")
        if not ok:
            print(log[-4000:])
            return

        # ---- 2. gateway credentials through the Secrets reflector ----
        cert, key = make_cert(work, "ingress")
        tcert, tkey = make_cert(work, "token")
        k8s.ensure_service_account(NS, "shop-sa")
        rc, out = k8s.kubectl("apply", "-f", "-", check=False,
                              inp=secret_yaml("sa-tok", "kubernetes.io/service-account-token",
                                              tcert, tkey))
        check(rc == 0, "kubectl apply of a service-account-token Secret (%s)" % out.strip())
        rc, out = k8s.kubectl("apply", "-f", "-", check=False,
                              inp=secret_yaml("ingress-cert", "kubernetes.io/tls", cert, key))
        check(rc == 0, "kubectl apply of a kubernetes.io/tls Secret (%s)" % out.strip())
        names = ["kubernetes://ingress-cert", "kubernetes://sa-tok"]
        got = poll(lambda: (lambda r: r if r and "kubernetes://ingress-cert" in r else None)(
            sds(protos, pilot, names)), 15)
        check(bool(got), "SDS kubernetes://ingress-cert answered for a router in %s" % NS)
        if got:
            s = got["kubernetes://ingress-cert"]
            check(s.tls_certificate.certificate_chain.inline_bytes == cert and
                  s.tls_certificate.private_key.inline_bytes == key,
                  "SDS carries the Secret's certificate and key")
            # Both were applied before the answer, the token first: had the reflector
            # read it, the model would hold it by now.
            check("kubernetes://sa-tok" not in got,
                  "a service-account-token Secret is not read (SDS answers %s)" % sorted(got))
        k8sz = {e["resource"]: e for e in pilot.mon_json("/debug/k8sz") or []}
        check("secrets" in k8sz and k8sz["secrets"]["synced"],
              "/debug/k8sz lists the secrets reflector")

        # ---- 3. Istio CRDs installed after start ----
        check("virtualservices" not in k8sz, "no Istio reflectors before the CRDs exist")
        k8s.install_crds()
        vs = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: late, namespace: %s}
spec:
  hosts: [late.example.com]
  http:
  - route:
    - destination: {host: late.example.com}
""" % NS
        # kubectl's discovery cache may lag the new kinds by a moment
        res = poll(lambda: (lambda r: r if r[0] == 0 else None)(
            k8s.kubectl("apply", "-f", "-", inp=vs, check=False)), 15, 0.5)
        check(bool(res), "kubectl apply of a VirtualService once the CRDs exist (%s)" %
              (res[1].strip() if res else k8s.kubectl("apply", "-f", "-", inp=vs,
                                                      check=False)[1]))

        def vs_seen():
            cfg = pilot.mon_json("/debug/configz") or []
            return any(o.get("kind") == "VirtualService" and
                       o["metadata"]["name"] == "late" for o in cfg)
        check(bool(poll(vs_seen, 15)), "the VirtualService reaches /debug/configz")
        check(*k8s.rbac_verdict())
        rc = pilot.stop()
        pilot = None
        check(rc == 0, "pilot-discovery exits cleanly (rc %d)" % rc)
    finally:
        if pilot:
            pilot.stop()


def part_sigterm_while_waiting(work, k8s, kc):
    dead = os.path.join(work, "dead.kubeconfig")
    with open(kc) as f, open(dead, "w") as g:
        g.write(f.read().replace(k8s.url, "https://127.0.0.1:%d" % ec.free_port()))
    pilot = Pilot(work, "pilot-dead", dead)
    time.sleep(2.5)
    check(pilot.proc.poll() is None and pilot.ready_code() == 503,
          "waiting for an API server that never answers, /ready 503")
    t0 = time.time()
    rc = pilot.stop(timeout=15)
    check(rc == 0 and time.time() - t0 < 10,
          "SIGTERM during the wait: exit %d after %.1f s" % (rc, time.time() - t0))


def main():
    for tool in ("openssl", "protoc"):
        if not shutil.which(tool):
            ec.skip("%s is not installed" % tool)

    def run(work, k8s):
        k8s.install_istio(crds=False)
        k8s.ensure_namespace(NS)
        kc = k8s.istiod_kubeconfig()
        protos = ec.Protos(work)
        part_delayed_apiserver(work, protos, k8s, kc)
        part_sigterm_while_waiting(work, k8s, kc)
    return realk8s.run_against_cluster("k8s start-up test", "k8s-startup-", failures, run)

if __name__ == "__main__":
    sys.exit(main())
