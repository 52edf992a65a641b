#!/usr/bin/python3
"""The webhooks on --httpsAddr in config-directory mode, over HTTPS verified against our root.

1. TLS: the serving certificate chains to the root in --caStateDir and names
   istiod.istio-system.svc (Python's ssl checks both); after DEFAULT_WORKLOAD_CERT_TTL/2 a
   new connection gets a renewed certificate (another serial) without a restart.
2. /validate: an invalid VirtualService is denied with the parser's message, and the same
   object written into --configDir is refused by ingestion with the same message; a valid
   one (weights summing to 60) is allowed; DELETE is allowed; v1beta1 is answered in kind.
3. /inject: the JSONPatch, applied to the pod, gives istio-proxy, istio-init, Istio's
   volumes and labels; a hostNetwork pod is left alone.
4. Bad input: not JSON, a 10 MB body, 100000 nested arrays, a missing uid: 4xx answers;
   a client that sends half a body and stalls does not delay anyone else.

  webhook_cfgdir.py --bench N   prints latency (p50/p99) and reviews/s of N reviews per
                                kind instead (docs/BENCHMARKS.md); no test.
Skips (77) without openssl.
"""
import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

HOST = "istiod.istio-system.svc"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def review(obj, op="CREATE", uid="u-1", api="admission.k8s.io/v1", ns="default"):
    return {"apiVersion": api, "kind": "AdmissionReview",
            "request": {"uid": uid, "operation": op, "namespace": ns, "object": obj}}


BAD_VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "reviews", "namespace": "default"},
          "spec": {"hosts": ["reviews"], "http": [{"route": [
              {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50},
              {"destination": {"host": "reviews", "subset": "v2"}, "weight": -10}]}]}}
GOOD_VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "ratings", "namespace": "default"},
           "spec": {"hosts": ["ratings"], "http": [{"route": [
               {"destination": {"host": "ratings"}, "weight": 30},
               {"destination": {"host": "details"}, "weight": 30}]}]}}
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "productpage-v1-abc", "namespace": "default",
                    "generateName": "productpage-v1-7d4f-",
                    "labels": {"app": "productpage", "version": "v1",
                               "pod-template-hash": "7d4f"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                         "name": "productpage-v1-7d4f", "controller": True,
                                         "uid": "x"}]},
       "spec": {"serviceAccountName": "bookinfo-productpage",
                "containers": [{"name": "productpage", "image": "docker.io/istio/examples",
                                "ports": [{"containerPort": 9080, "protocol": "TCP"}]}]}}


class Hooks:
    def __init__(self, port, root):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=root)
        self.conn = None

    def connect(self):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=20)
        # verify the name the API server uses (the Service's DNS name), not 127.0.0.1
        raw = socket.create_connection(("127.0.0.1", self.port), 20)
        # http.client writes headers and body apart: without this, Nagle and the server's
        # delayed ACK add 40 ms to every kept-alive request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock = self.ctx.wrap_socket(raw, server_hostname=HOST)
        return c

    def post(self, path, body, ctype="application/json", keep=False):
        c = self.conn if keep and self.conn else self.connect()
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request("POST", path, body=data, headers={"Content-Type": ctype})
        r = c.getresponse()
        out = r.read()
        if keep:
            self.conn = c
        else:
            c.close()
        return r.status, out

    def peer_serial(self):
        c = self.connect()
        der = c.sock.getpeercert(binary_form=True)
        cert = c.sock.getpeercert()
        c.close()
        return der, cert


def apply_patch(doc, ops):
    """RFC 6902 add/replace/remove on object paths (what our patches use)."""
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        last = parts[-1]
        if op["op"] == "remove":
            del cur[last]
        else:
            cur[last] = op["value"]
    return doc


def start(work, ttl=None):
    env_ttl = {"DEFAULT_WORKLOAD_CERT_TTL": ttl,
               "CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL": "1s"} if ttl else {}
    os.environ.update(env_ttl)
    port = ec.free_port()
    p = ec.Pilot(workdir=work, extra_args=["--httpsAddr", "127.0.0.1:%d" % port,
                                           "--caStateDir", os.path.join(work, "ca")])
    p.start()
    for k in env_ttl:
        del os.environ[k]
    return p, Hooks(port, os.path.join(work, "ca", "root-cert.pem"))


def bench(n):
    work = tempfile.mkdtemp(prefix="webhook-bench-")
    p, h = start(work)
    try:
        for name, path, body in [("validate (invalid VirtualService)", "/validate", review(BAD_VS)),
                                 ("validate (valid VirtualService)", "/validate", review(GOOD_VS)),
                                 ("inject (bookinfo pod)", "/inject", review(POD))]:
            lat = []
            h.conn = None
            for _ in range(50):  # warm up, one kept-alive connection
                h.post(path, body, keep=True)
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                st, _ = h.post(path, body, keep=True)
                lat.append(time.perf_counter() - t)
                assert st == 200
            wall = time.perf_counter() - t0
            lat.sort()
            print("%-36s n=%d p50 %.2f ms p99 %.2f ms %.0f reviews/s (one connection)" % (
                name, n, lat[n // 2] * 1e3, lat[int(n * 0.99)] * 1e3, n / wall))
    finally:
        p.stop()


def main():
    if "--bench" in sys.argv:
        bench(int(sys.argv[sys.argv.index("--bench") + 1]))
        return 0
    work = tempfile.mkdtemp(prefix="webhook-cfgdir-")
    p, h = start(work, ttl="6s")
    rc = 1
    try:
        # 1. TLS, verified against our root, for the Service name
        der1, cert = h.peer_serial()
        sans = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        check(HOST in sans, "serving certificate names %s (SANs %s)" % (HOST, sans))

        # 2. /validate: the parser's message; ingestion refuses the same with the same words
        st, body = h.post("/validate", review(BAD_VS))
        resp = json.loads(body)["response"]
        msg = resp.get("status", {}).get("message", "")
        want = ("VirtualService default/reviews: spec.http[0].route[1].weight: weight -10 < 0")
        check(st == 200 and resp["uid"] == "u-1" and resp["allowed"] is False and want in msg,
              "invalid VirtualService denied: %s" % msg)
        with open(os.path.join(p.config_dir, "bad-vs.json"), "w") as f:
            json.dump(BAD_VS, f)
        deadline = time.time() + 10
        while want not in p.read_log() and time.time() < deadline:
            time.sleep(0.1)
        check(want in p.read_log(), "ingestion refuses the same object with the same message")
        st, body = h.post("/validate/", review(GOOD_VS, op="UPDATE"))
        check(json.loads(body)["response"]["allowed"] is True,
              "valid VirtualService (weights 30+30) allowed")
        st, body = h.post("/validate", review(BAD_VS, op="DELETE"))
        check(json.loads(body)["response"]["allowed"] is True, "DELETE allowed")
        st, body = h.post("/validate", review(BAD_VS, api="admission.k8s.io/v1beta1"))
        check(json.loads(body)["apiVersion"] == "admission.k8s.io/v1beta1", "v1beta1 answered")

        # 3. /inject: the patch applied to the pod
        st, body = h.post("/inject", review(POD))
        resp = json.loads(body)["response"]
        check(st == 200 and resp["allowed"] and resp["patchType"] == "JSONPatch", "inject patch")
        pod = apply_patch(json.loads(json.dumps(POD)),
                          json.loads(base64.b64decode(resp["patch"])))
        names = [c["name"] for c in pod["spec"]["containers"]]
        inits = [c["name"] for c in pod["spec"].get("initContainers", [])]
        vols = [v["name"] for v in pod["spec"]["volumes"]]
        check(names == ["productpage", "istio-proxy"] and inits == ["istio-init"],
              "containers %s, init containers %s" % (names, inits))
        proxy = pod["spec"]["containers"][1]
        env = {e["name"]: e.get("value") for e in proxy["env"]}
        check(proxy["image"] == "docker.io/istio/proxyv2:1.24.0" and
              proxy["args"][:2] == ["proxy", "sidecar"] and
              env["CA_ADDR"] == "istiod.istio-system.svc:15012" and
              env["ISTIO_META_WORKLOAD_NAME"] == "productpage-v1" and
              env["ISTIO_META_OWNER"] ==
              "kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1" and
              proxy["readinessProbe"]["httpGet"]["port"] == 15021,
              "istio-proxy as Istio 1.24 makes it")
        check(set(["istio-envoy", "istio-data", "istio-podinfo", "istio-token",
                   "istiod-ca-cert"]) <= set(vols), "volumes %s" % vols)
        lab, ann = pod["metadata"]["labels"], pod["metadata"]["annotations"]
        check(lab["security.istio.io/tlsMode"] == "istio" and
              lab["service.istio.io/canonical-name"] == "productpage" and
              lab["service.istio.io/canonical-revision"] == "v1" and
              ann["kubectl.kubernetes.io/default-container"] == "productpage" and
              ann["prometheus.io/port"] == "15020" and "sidecar.istio.io/status" in ann,
              "labels and annotations")
        hn = json.loads(json.dumps(POD))
        hn["spec"]["hostNetwork"] = True
        st, body = h.post("/inject", review(hn))
        check("patch" not in json.loads(body)["response"], "hostNetwork pod left alone")

        # 4. bad input
        check(h.post("/validate", b"{not json")[0] == 400, "not JSON: 400")
        check(h.post("/validate", b"[" * 100000 + b"]" * 100000)[0] == 400, "deep nesting: 400")
        big = json.dumps(review({"kind": "Pod", "pad": "x" * (10 << 20)})).encode()
        check(h.post("/inject", big)[0] == 400, "10 MB body: 400")
        bad = review(BAD_VS)
        del bad["request"]["uid"]
        check(h.post("/validate", bad)[0] == 400, "missing uid: 400")
        check(h.post("/validate", review(BAD_VS), ctype="text/plain")[0] == 415, "text/plain: 415")
        # a stalled client (half a body, then silence) does not stall another request
        slow = h.ctx.wrap_socket(socket.create_connection(("127.0.0.1", h.port), 20),
                                 server_hostname=HOST)
        slow.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n{\"apiVersion\":")
        t = time.time()
        st, _ = h.post("/validate", review(GOOD_VS))
        check(st == 200 and time.time() - t < 2, "answered in %.3f s beside a stalled client"
              % (time.time() - t))
        slow.close()

        # 1b. renewal: TTL 6 s, renewed half-way, checked every second
        time.sleep(5)
        der2, _ = h.peer_serial()
        check(der1 != der2, "a new connection gets the renewed serving certificate")
        st, _ = h.post("/validate", review(GOOD_VS))
        check(st == 200, "and is served with it")
        rc = 0
    finally:
        code = p.stop()
        if code != 0:
            print("pilot-discovery exited %d:\n%s" % (code, p.read_log()))
            rc = 1
    return rc


if __name__ == "__main__":
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        ec.skip("openssl missing")
    sys.exit(main())
