#!/usr/bin/python3
"""A token the API server is slow to review holds no other stream.

Against the stand-in API server (tests/k8s/apiserver.py: a real one cannot be made to stall
its TokenReview on cue), pilot-discovery in Kubernetes mode with the secure port:
  - TokenReview answers after 20 s (/_admin/slow-tokenreview);
  - 8 ADS streams over TLS with bearer tokens wait for their reviews (more than one per
    shard), and meanwhile 40 plaintext ADS streams must each get CDS within 5 s: before
    reviews moved off the completion-queue threads, a review held its whole shard;
  - when the reviews answer, the unknown tokens are refused UNAUTHENTICATED.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def poll(fn, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


def main():
    src = os.environ.get("PILOT_SRC")
    if not src:
        ec.skip("PILOT_SRC not set")
    work = tempfile.mkdtemp(prefix="slow-review-")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")

    port_file = os.path.join(work, "api.port")
    api_log = open(os.path.join(work, "api.log"), "w")
    api = subprocess.Popen(["/usr/bin/python3", os.path.join(src, "tests", "k8s", "apiserver.py"),
                            "--port-file", port_file], stdout=api_log, stderr=subprocess.STDOUT)
    pilot = None
    try:
        if not poll(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 15):
            raise RuntimeError("the stand-in API server did not start")
        url = "http://127.0.0.1:%s" % open(port_file).read().strip()
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: s\nclusters:\n- name: s\n"
                    "  cluster: {server: \"%s\"}\ncontexts:\n- name: s\n  context: {cluster: s, "
                    "user: u}\nusers:\n- name: u\n  user: {token: t}\n" % url)
        secure = ec.free_port()
        pilot = ec.Pilot(workdir=os.path.join(work, "p"))  # its ports and binary; run by hand
        log = open(os.path.join(work, "pilot.log"), "w")
        proc = subprocess.Popen(
            [pilot.exe, "discovery", "--kubeconfig", kubeconfig,
             "--grpcAddr", "127.0.0.1:%d" % pilot.grpc_port,
             "--httpAddr", "127.0.0.1:%d" % pilot.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % pilot.mon_port,
             "--httpsAddr", "", "--caCertsDir", os.path.join(work, "no-cacerts"),
             "--secureGRPCAddr", "127.0.0.1:%d" % secure], stdout=log, stderr=subprocess.STDOUT)

        def ready():
            try:
                return ec.http_get(pilot.url("/ready"), 1)[0] == 200
            except OSError:
                return False
        check(poll(ready, 40) is not None, "pilot-discovery ready in Kubernetes mode")

        def secret():
            try:
                with urllib.request.urlopen(url + "/api/v1/namespaces/istio-system/secrets/"
                                            "istio-ca-secret", timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                return None
        sec = poll(secret, 20)
        root = base64.b64decode(sec["data"]["ca-cert.pem"])
        req = urllib.request.Request(url + "/_admin/slow-tokenreview?seconds=20", data=b"",
                                     method="POST")
        urllib.request.urlopen(req, timeout=5).read()

        def node(nid):
            n = Node(id=nid)
            n.metadata.fields["NAMESPACE"].string_value = "default"
            return n

        # 8 secure streams with bearer tokens: each waits 20 s for its review
        creds = grpc.ssl_channel_credentials(root_certificates=root)
        sch = grpc.secure_channel("127.0.0.1:%d" % secure, creds, options=[
            ("grpc.ssl_target_name_override", "istiod.istio-system.svc")])
        slow = []
        t_slow = time.time()
        for i in range(8):
            s = ec.AdsStream(sch, SOTW, Req, Resp,
                             metadata=[("authorization", "Bearer bogus-%d" % i)], recv_timeout=40)
            s.send(Req(node=node("sidecar~10.9.0.%d~slow.default~default.svc.cluster.local"
                                 % i), type_url=T_CDS))
            slow.append(s)
        time.sleep(1.0)  # the reviews are under way

        # meanwhile plaintext streams on both shards are served at once
        ch = grpc.insecure_channel(pilot.target())
        late = []
        lock = threading.Lock()

        def one(i):
            s = ec.AdsStream(ch, SOTW, Req, Resp, recv_timeout=10)
            t0 = time.time()
            s.send(Req(node=node("sidecar~10.8.0.%d~fast.default~default.svc.cluster.local" % i),
                       type_url=T_CDS))
            r = s.recv()
            dt = time.time() - t0
            with lock:
                if r is None or dt > 5:
                    late.append((i, round(dt, 1), r is None))
            s.close()
        ths = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        check(not late, "40 plaintext streams served within 5 s while 8 token reviews hang "
              "(late or unanswered: %s)" % late)

        # the reviews answer: unknown tokens are refused
        codes = []
        for s in slow:
            r = s.recv(timeout=40)
            codes.append(None if s.error is None else s.error.code())
            check(r is None, "a stream with an unknown token got no resources")
        dt = time.time() - t_slow
        check(all(c == grpc.StatusCode.UNAUTHENTICATED for c in codes),
              "unknown tokens refused UNAUTHENTICATED after the review (%s)" % codes)
        check(dt >= 19, "the refusal came with the review's answer (%.1f s)" % dt)
        proc.terminate()
        rc = proc.wait(timeout=60)
        check(rc == 0, "pilot-discovery exits 0 on SIGTERM (%d)" % rc)
    finally:
        api.terminate()
        api.wait(timeout=10)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
