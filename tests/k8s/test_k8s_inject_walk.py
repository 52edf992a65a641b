#!/usr/bin/python3
"""The seed's walkthrough up to bookinfo's pods, against a REAL kube-apiserver + etcd and a
REAL kube-controller-manager (realk8s.py, RBAC on): the API server calls our webhooks over
TLS, found the way it finds any webhook Service, and the Deployment and ReplicaSet
controllers create the pods our /inject mutates.

pilot-discovery runs outside the cluster, authenticated by a bound token of
istio-system/istiod only. The API server is started with --enable-aggregator-routing, so it
reaches a webhook Service through its EndpointSlices rather than its ClusterIP (no
kube-proxy here); one EndpointSlice for Service istiod points port https-webhook at our
--httpsAddr on this machine's own non-loopback address (a real server refuses loopback
endpoint addresses).

1. manifests/00..03 and 06 applied as a user would (the istiod Deployment's pods stay
   Pending: no scheduler, no kubelet). pilot-discovery patches both webhooks' caBundle with
   its root.
2. `kubectl label namespace default istio-injection=enabled`, then `kubectl apply` of
   Istio's own bookinfo.yaml (../shared/istio): every pod the ReplicaSets create has its
   app container and istio-proxy, the istio-init init container, Istio's annotations
   (sidecar.istio.io/status, kubectl.kubernetes.io/default-container) and labels
   (security.istio.io/tlsMode, service.istio.io/canonical-name/-revision), the
   istiod-ca-cert and istio-token volumes; and the API server accepted those pods (its own
   validation of what we patched in).
3. A Deployment in an unlabelled namespace: its pod keeps its one container; one with
   sidecar.istio.io/inject: "false" in the labelled namespace too. Then ConfigMap
   istio-sidecar-injector (values: hub, tag) applied: the next pods get that image, with no
   restart; ConfigMap istio (mesh config) applied: reloaded, a bad one refused.
4. `kubectl apply` of an invalid VirtualService is denied with our field message; a valid
   one (bookinfo's own virtual-service-all-v1.yaml) is accepted.
5. Our sidecar_injection_* counters agree with what the API server saw.

Skips (77) without the binary, openssl, $PILOT_PEERS_BIN's binaries, Istio's bookinfo in
../shared, or a non-loopback IPv4 address on this machine.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import realk8s  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def poll(fn, timeout, step=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


def host_ip():
    """This machine's own non-loopback IPv4 address (the route to TEST-NET-1 picks it; a UDP
    connect sends nothing), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def bookinfo_dir():
    shared = os.environ.get("PILOT_SHARED") or os.path.join(ec.env_path("PILOT_SRC"), "..",
                                                            "shared")
    d = os.path.join(shared, "istio", "samples", "bookinfo")
    return d if os.path.exists(os.path.join(d, "platform", "kube", "bookinfo.yaml")) else None


class Pilot:
    def __init__(self, work, kc, ip):
        self.exe = os.path.join(ec.env_path("PILOT_BUILD"), "pilot", "pilot-discovery")
        if not os.path.exists(self.exe):
            ec.skip("%s not built" % self.exe)
        self.http_port, self.mon_port, self.grpc_port, self.tls_port = (
            ec.free_port() for _ in range(4))
        self.https_port = ec.free_port(ip)
        self.log_path = os.path.join(work, "pilot.log")
        self.log = open(self.log_path, "w")
        e = dict(os.environ)
        e.update({"POD_NAME": "istiod-walk", "POD_NAMESPACE": "istio-system"})
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--kubeconfig", kc,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--secureGRPCAddr", "127.0.0.1:%d" % self.tls_port,
             "--httpsAddr", "%s:%d" % (ip, self.https_port),
             "--caCertsDir", os.path.join(work, "no-cacerts")],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def ready(self):
        try:
            return ec.http_get("http://127.0.0.1:%d/ready" % self.http_port, 1)[0] == 200
        except OSError:
            return False

    def metric(self, name):
        """{labels-string: value} of one metric family on /metrics."""
        st, body = ec.http_get("http://127.0.0.1:%d/metrics" % self.mon_port, 5)
        out = {}
        for ln in body.splitlines() if st == 200 else []:
            if ln.startswith(name + "{") or ln.startswith(name + " "):
                k, v = ln.rsplit(" ", 1)
                out[k[len(name):]] = float(v)
        return out

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -999
        self.log.close()
        return rc


def webhook_slice(ip, port):
    """The EndpointSlice the API server resolves Service istio-system/istiod's port
    https-webhook (443) through: our --httpsAddr."""
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "istiod-webhook-walk", "namespace": "istio-system",
                     "labels": {"kubernetes.io/service-name": "istiod",
                                "endpointslice.kubernetes.io/managed-by": "test.walk"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https-webhook", "port": port, "protocol": "TCP"}],
    }


def pods(k8s, ns, selector=None):
    path = "/api/v1/namespaces/%s/pods" % ns
    if selector:
        path += "?labelSelector=" + selector
    return (k8s.api.get(path) or {}).get("items", [])


def injected_ok(p):
    """What is wrong with one pod we should have injected ([] when nothing)."""
    bad = []
    spec, md = p.get("spec", {}), p.get("metadata", {})
    names = [c["name"] for c in spec.get("containers", [])]
    inits = [c["name"] for c in spec.get("initContainers", [])]
    if len(names) != 2 or names[-1] != "istio-proxy":
        bad.append("containers %s" % names)
    if "istio-init" not in inits:
        bad.append("initContainers %s" % inits)
    ann, lab = md.get("annotations", {}), md.get("labels", {})
    try:
        st = json.loads(ann.get("sidecar.istio.io/status", ""))
        if st.get("containers") != ["istio-proxy"] or st.get("initContainers") != ["istio-init"]:
            bad.append("sidecar.istio.io/status %s" % st)
    except ValueError:
        bad.append("no sidecar.istio.io/status")
    if ann.get("kubectl.kubernetes.io/default-container") != names[0]:
        bad.append("default-container %r" % ann.get("kubectl.kubernetes.io/default-container"))
    if lab.get("security.istio.io/tlsMode") != "istio":
        bad.append("tlsMode %r" % lab.get("security.istio.io/tlsMode"))
    if lab.get("service.istio.io/canonical-name") != lab.get("app"):
        bad.append("canonical-name %r" % lab.get("service.istio.io/canonical-name"))
    if lab.get("service.istio.io/canonical-revision") != lab.get("version", "latest"):
        bad.append("canonical-revision %r" % lab.get("service.istio.io/canonical-revision"))
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if vols.get("istiod-ca-cert", {}).get("configMap", {}).get("name") != "istio-ca-root-cert":
        bad.append("istiod-ca-cert volume %s" % vols.get("istiod-ca-cert"))
    tok = [s.get("serviceAccountToken", {}) for s in
           vols.get("istio-token", {}).get("projected", {}).get("sources", [])]
    if not tok or tok[0].get("audience") != "istio-ca":
        bad.append("istio-token volume %s" % vols.get("istio-token"))
    proxy = [c for c in spec.get("containers", []) if c["name"] == "istio-proxy"]
    if proxy:
        env = {e["name"]: e.get("value") for e in proxy[0].get("env", [])}
        if env.get("ISTIO_META_WORKLOAD_NAME") != md.get("labels", {}).get("app", "") + "-" + \
                md.get("labels", {}).get("version", ""):
            bad.append("ISTIO_META_WORKLOAD_NAME %r" % env.get("ISTIO_META_WORKLOAD_NAME"))
        if env.get("CA_ADDR") != "istiod.istio-system.svc:15012":
            bad.append("CA_ADDR %r" % env.get("CA_ADDR"))
        if proxy[0].get("args", [])[:2] != ["proxy", "sidecar"]:
            bad.append("istio-proxy args %s" % proxy[0].get("args"))
    return bad


def deployment(ns, name, labels=None, pod_labels=None):
    pl = {"app": name}
    pl.update(pod_labels or {})
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": pl},
                              "spec": {"containers": [{"name": name, "image": "busybox:1.36",
                                                       "args": ["sleep", "3600"]}]}}}})


BAD_VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-bad
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: -5
"""


def run(work, k8s, ip, bookinfo):
    m = os.path.join(ec.env_path("PILOT_SRC"), "manifests")
    k8s.install_istio()
    k8s.apply([os.path.join(m, "03-istiod.yaml"), os.path.join(m, "06-webhooks.yaml")])
    k8s.start_controller_manager()
    kc = k8s.istiod_kubeconfig()
    pilot = Pilot(work, kc, ip)
    try:
        k8s.apply(json.dumps(webhook_slice(ip, pilot.https_port)))
        check(poll(pilot.ready, 60) is not None, "pilot-discovery ready")

        # ---- 1. caBundles patched with our root ----
        root = poll(lambda: (k8s.api.get("/api/v1/namespaces/default/configmaps/"
                                         "istio-ca-root-cert") or {}).get("data", {})
                    .get("root-cert.pem"), 30)
        check(root is not None, "namespace default got istio-ca-root-cert")

        def bundles():
            mw = k8s.api.get("/apis/admissionregistration.k8s.io/v1/"
                             "mutatingwebhookconfigurations/istio-sidecar-injector") or {}
            vw = k8s.api.get("/apis/admissionregistration.k8s.io/v1/"
                             "validatingwebhookconfigurations/istio-validator-istio-system") or {}
            got = [w.get("clientConfig", {}).get("caBundle", "")
                   for w in mw.get("webhooks", []) + vw.get("webhooks", [])]
            return got if got and all(got) else None
        import base64
        got = poll(bundles, 30)
        check(got is not None and len(got) == 5 and
              all(base64.b64decode(b).decode().strip() == (root or "").strip() for b in got),
              "all 5 webhooks' caBundle is our root (%d set)" % len(got or []))

        # ---- 2. the seed's steps: label, apply bookinfo ----
        k8s.kubectl("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        t0 = time.time()
        out = k8s.apply(os.path.join(bookinfo, "platform", "kube", "bookinfo.yaml"))
        check("deployment.apps/productpage-v1 created" in out,
              "kubectl apply of Istio's bookinfo.yaml: %d objects" % out.count("\n"))
        want = 6  # details, ratings, reviews v1-v3, productpage

        def all_pods():
            ps = [p for p in pods(k8s, "default") if p["metadata"].get("labels", {}).get("app")]
            return ps if len(ps) >= want else None
        ps = poll(all_pods, 90) or pods(k8s, "default")
        check(len(ps) == want, "the ReplicaSets created bookinfo's %d pods in %.1f s (%d seen)" %
              (want, time.time() - t0, len(ps)))
        for p in sorted(ps, key=lambda p: p["metadata"]["name"]):
            bad = injected_ok(p)
            check(not bad, "pod %s: %s + istio-proxy, istio-init, Istio's labels, annotations "
                  "and volumes%s" % (p["metadata"]["name"], p["spec"]["containers"][0]["name"],
                                     "" if not bad else ": " + "; ".join(bad)))
        if failures:
            rs = k8s.kubectl("get", "events", "-n", "default", check=False)[1]
            print("--- events in default:\n" + rs[-3000:])

        # ---- 3. what must be left alone ----
        k8s.kubectl("create", "namespace", "plain")
        k8s.apply(deployment("plain", "sleep"))
        k8s.apply(deployment("default", "noinject", pod_labels={"sidecar.istio.io/inject": "false"}))
        for ns, app in (("plain", "sleep"), ("default", "noinject")):
            p = poll(lambda: pods(k8s, ns, "app=" + app), 60)
            c = [x["name"] for x in p[0]["spec"]["containers"]] if p else None
            check(c == [app] and not p[0]["spec"].get("initContainers") and
                  "sidecar.istio.io/status" not in p[0]["metadata"].get("annotations", {}),
                  "%s/%s: left alone (containers %s)" % (ns, app, c))

        # ---- 3b. values from ConfigMap istio-sidecar-injector, live ----
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
              "data": {"config": "policy: enabled\n",
                       "values": json.dumps({"global": {"hub": "reg.example/istio",
                                                        "tag": "1.24.6-walk",
                                                        "proxy": {"logLevel": "debug"}}})}}
        k8s.apply(json.dumps(cm))

        def proxy_image(app):
            ps = pods(k8s, "default", "app=" + app)
            c = [x for x in (ps[0]["spec"]["containers"] if ps else []) if x["name"] == "istio-proxy"]
            return c[0]["image"] if c else None
        img = None
        for i in range(40):  # each try a new Deployment: the watch delivers the ConfigMap async
            k8s.apply(deployment("default", "vals%d" % i))
            img = poll(lambda: proxy_image("vals%d" % i), 30)
            if img == "reg.example/istio/proxyv2:1.24.6-walk":
                break
            time.sleep(0.25)
        check(img == "reg.example/istio/proxyv2:1.24.6-walk",
              "after the istio-sidecar-injector ConfigMap is applied, new pods get its hub and "
              "tag: %s" % img)
        want += i + 1  # these pods were injected too

        # ---- 3c. mesh config from ConfigMap istio (no --meshConfig here), live ----
        def mesh_cm(text):
            k8s.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "istio", "namespace": "istio-system"},
                                  "data": {"mesh": text}}))
        mesh_cm("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")
        check(poll(lambda: "mesh config reloaded from ConfigMap istio-system/istio" in
                   pilot.read_log(), 20) is not None,
              "ConfigMap istio-system/istio applied: mesh config reloaded from it")
        mesh_cm("outboundTrafficPolicy:\n  mode: SOMETIMES\n")
        check(poll(lambda: "refused, the last good one stays in force: ConfigMap "
                   "istio-system/istio key mesh: outboundTrafficPolicy.mode" in pilot.read_log(),
                   20) is not None, "a bad mesh in ConfigMap istio is refused with its field")

        # ---- 4. validation at apply time ----
        rc, out = k8s.kubectl("apply", "-f", "-", inp=BAD_VS, check=False)
        check(rc != 0 and 'admission webhook "validation.istio.io" denied the request' in out and
              "VirtualService default/reviews-bad: spec.http[0].route[1].weight" in out,
              "an invalid VirtualService is denied with our field message: %s" %
              out.strip().splitlines()[-1][:300] if out.strip() else "(no output)")
        check(k8s.api.get("/apis/networking.istio.io/v1/namespaces/default/virtualservices/"
                          "reviews-bad") is None, "... and was not stored")
        out = k8s.apply(os.path.join(bookinfo, "networking", "virtual-service-all-v1.yaml"))
        check(out.count("created") == 4, "bookinfo's virtual-service-all-v1.yaml accepted: %s" %
              " ".join(out.split()))

        # ---- 4b. Kubernetes Ingress: Istio's bookinfo-ingress.yaml (class annotation istio)
        # and one through an IngressClass, watched under our RBAC, served as istiod's ingress
        # controller: a Gateway in istio-system and per-host VirtualServices in configz ----
        k8s.apply(json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                              "metadata": {"name": "istio"},
                              "spec": {"controller": "istio.io/ingress-controller"}}))
        k8s.apply(os.path.join(bookinfo, "platform", "kube", "bookinfo-ingress.yaml"))
        k8s.apply(json.dumps({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "ratings", "namespace": "default"},
            "spec": {"ingressClassName": "istio", "rules": [{
                "host": "ratings.example.com", "http": {"paths": [{
                    "path": "/ratings", "pathType": "Prefix",
                    "backend": {"service": {"name": "ratings", "port": {"number": 9080}}}}]}}]}}))

        def ingress_cfg():
            st, body = ec.http_get("http://127.0.0.1:%d/debug/configz" % pilot.http_port, 5)
            if st != 200:
                return None
            objs = {(o["kind"], o["metadata"]["name"]): o for o in json.loads(body)}
            want = [("Gateway", "gateway-istio-autogenerated-k8s-ingress-default"),
                    ("Gateway", "ratings-istio-autogenerated-k8s-ingress-default"),
                    ("VirtualService", "-gateway-istio-autogenerated-k8s-ingress"),
                    ("VirtualService", "ratings-example-com-ratings-istio-autogenerated-k8s-ingress")]
            return objs if all(k in objs for k in want) else None
        objs = poll(ingress_cfg, 20)
        check(objs is not None, "Ingresses applied with kubectl are in /debug/configz as "
              "their Gateways and VirtualServices")
        if objs:
            vs = objs[("VirtualService", "-gateway-istio-autogenerated-k8s-ingress")]
            paths = [list(r["match"][0]["uri"].items())[0] for r in vs["spec"]["http"]]
            check(paths == [("prefix", "/api/v1/products"), ("exact", "/productpage"),
                            ("prefix", "/static/"), ("exact", "/logout"), ("exact", "/login")],
                  "bookinfo-ingress.yaml's paths, longest first: %s" % paths)
            gw = objs[("Gateway", "ratings-istio-autogenerated-k8s-ingress-default")]
            check(gw["metadata"]["namespace"] == "istio-system" and
                  gw["spec"]["selector"] == {"istio": "ingressgateway"},
                  "the IngressClass's Ingress: a Gateway in istio-system for istio=ingressgateway")

        # ---- 5. our counters ----
        reqs = sum(pilot.metric("sidecar_injection_requests_total").values())
        ok = sum(pilot.metric("sidecar_injection_success_total").values())
        # exactly the pods of default: the webhooks' selectors kept the API server from
        # sending the others (namespace plain, the inject=false pod, istiod's own) at all
        check(reqs == want and ok == want,
              "sidecar_injection_requests_total %g, _success_total %g (want %d: the labelled "
              "namespace's pods only)" % (reqs, ok, want))
        check(*k8s.rbac_verdict())
        rc = pilot.stop()
        check(rc == 0, "pilot-discovery exits 0 on SIGTERM (rc %d)" % rc)
    finally:
        if failures:
            print("--- pilot log (tail)\n" + pilot.read_log()[-3000:])
            print("--- controller-manager log (tail)\n" + k8s.log_tail("controller-manager"))
            print("--- apiserver log (tail)\n" + k8s.log_tail("apiserver"))
        pilot.stop()


def main():
    if not shutil.which("openssl"):
        ec.skip("openssl is not installed")
    ec.env_path("PILOT_BUILD")
    ip = host_ip()
    if not ip:
        ec.skip("no non-loopback IPv4 address on this machine (the API server refuses "
                "loopback endpoints)")
    bookinfo = bookinfo_dir()
    if not bookinfo:
        ec.skip("Istio's bookinfo sample not found (PILOT_SHARED/istio/samples/bookinfo)")
    if not os.path.exists(os.path.join(realk8s.peers_bin(), "kube-controller-manager")):
        ec.skip("no kube-controller-manager in %s (make peers)" % realk8s.peers_bin())
    return realk8s.run_against_cluster(
        "k8s inject walk", "k8s-walk-", failures, lambda work, k8s: run(work, k8s, ip, bookinfo),
        apiserver_args=["--enable-aggregator-routing=true"],
        banner_extra=", kube-controller-manager; webhooks at " + ip)

if __name__ == "__main__":
    sys.exit(main())
