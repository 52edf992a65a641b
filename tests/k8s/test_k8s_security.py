#!/usr/bin/python3
"""security.istio.io from a REAL kube-apiserver + etcd (tests/k8s/realk8s.py, binaries from
$PILOT_PEERS_BIN), installed like istiod (manifests/00-namespace, 02-rbac, 01-crds) and read
by pilot-discovery authenticated only by a bound token of istio-system/istiod, so RBAC
judges our ClusterRole for the three kinds:

1. Only networking.istio.io's CRDs at start: pilot-discovery syncs, says security.istio.io
   is not served and re-discovers on its timer (PILOT_K8S_REDISCOVERY_INTERVAL shortened).
2. All of manifests/01-crds.yaml applied: the server serves security.istio.io v1 and
   v1beta1 (v1 the storage version, as Istio's CRDs), and pilot-discovery starts the three
   reflectors (at v1, the newest served) without a restart.
3. PeerAuthentications written as v1, an AuthorizationPolicy and a RequestAuthentication as
   v1beta1 (the server stores them as v1): /debug/configz lists each (kind, apiVersion
   security.istio.io/v1, namespace/name, the server's resourceVersion); a PeerAuthentication
   with portLevelMtls and no selector (istiod: "mesh/namespace peer authentication cannot
   have port level mTLS") is logged as rejected by name and field and left out, the valid
   ones kept; pilot_k8s_cfg_events counts by the kinds' names.
4. An update (PeerAuthentication STRICT -> PERMISSIVE) and a deletion (the
   AuthorizationPolicy) are followed; an update that makes a valid object invalid keeps its
   last valid version (logged, configz unchanged).
5. A Sidecar (networking.istio.io, written as v1alpha3) is listed in /debug/configz at v1;
   an invalid one (a host without its namespace) is rejected with istiod's reason.
6. No request of pilot-discovery's is refused by RBAC; SIGTERM exits 0.

Skips (77) without the binary, openssl or $PILOT_PEERS_BIN's binaries.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import realk8s  # noqa: E402

NS = "shop"
SEC_PLURALS = {"PeerAuthentication": "peerauthentications",
               "RequestAuthentication": "requestauthentications",
               "AuthorizationPolicy": "authorizationpolicies"}
REJECT = ("PeerAuthentication %s/ports-without-selector: spec.portLevelMtls: mesh/namespace "
          "peer authentication cannot have port level mTLS" % NS)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def poll(fn, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


OBJECTS = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: %(ns)s}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews-ports, namespace: %(ns)s}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
  portLevelMtls:
    "9080": {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: %(ns)s}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/%(ns)s/sa/productpage"]}
    to:
    - operation: {methods: [GET], paths: ["/reviews/*"]}
---
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata: {name: jwt, namespace: %(ns)s}
spec:
  selector: {matchLabels: {app: reviews}}
  jwtRules:
  - issuer: https://issuer.example.com
    jwksUri: https://issuer.example.com/.well-known/jwks.json
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ports-without-selector, namespace: %(ns)s}
spec:
  portLevelMtls:
    "8080": {mode: DISABLE}
""" % {"ns": NS}

SIDECARS = """apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: default, namespace: %(ns)s}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: bad-host, namespace: %(ns)s}
spec:
  workloadSelector: {labels: {app: reviews}}
  egress:
  - hosts: ["reviews.%(ns)s.svc.cluster.local"]
""" % {"ns": NS}
SIDECAR_REJECT = ("Sidecar %s/bad-host: spec.egress[0].hosts[0]: host must be of form "
                  "namespace/dnsName" % NS)


class Pilot:
    def __init__(self, work, kc, env):
        self.exe = os.path.join(ec.env_path("PILOT_BUILD"), "pilot", "pilot-discovery")
        if not os.path.exists(self.exe):
            ec.skip("%s not built" % self.exe)
        self.http_port, self.mon_port, self.grpc_port, self.tls_port = (
            ec.free_port() for _ in range(4))
        self.log_path = os.path.join(work, "pilot.log")
        self.log = open(self.log_path, "w")
        e = dict(os.environ)
        e.update(env)
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--kubeconfig", kc,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--secureGRPCAddr", "127.0.0.1:%d" % self.tls_port,
             "--httpsAddr", "",
             "--caCertsDir", os.path.join(work, "no-cacerts")],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def ready(self):
        try:
            return ec.http_get("http://127.0.0.1:%d/ready" % self.http_port, 1)[0] == 200
        except OSError:
            return False

    def mon(self, path):
        st, body = ec.http_get("http://127.0.0.1:%d%s" % (self.mon_port, path), 5)
        return body if st == 200 else None

    def configz(self):
        body = self.mon("/debug/configz")
        return json.loads(body) if body else []

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


def server_security(k8s):
    """{(kind, ns, name): (resourceVersion, spec)} of the server's security objects (v1)."""
    out = {}
    for kind, plural in SEC_PLURALS.items():
        for it in k8s.api.get("/apis/security.istio.io/v1/" + plural)["items"]:
            md = it["metadata"]
            out[(kind, md["namespace"], md["name"])] = (md["resourceVersion"], it["spec"])
    return out


def pilot_security(pilot):
    """The same, from /debug/configz, with apiVersion: {(kind, ns, name): (apiVersion, rv,
    spec)}."""
    return {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]):
            (o["apiVersion"], str(o["metadata"].get("resourceVersion")), o.get("spec"))
            for o in pilot.configz() if o["kind"] in SEC_PLURALS}


def converged(k8s, pilot, skip_names=()):
    """configz holds exactly the server's valid security objects, each at the server's
    resourceVersion, in security.istio.io/v1. Returns (ok, differences)."""
    want = {k: v for k, v in server_security(k8s).items() if k[2] not in skip_names}
    have = pilot_security(pilot)
    diff = sorted(set(want) ^ set(have))
    bad = [(k, have[k][:2], want[k][0]) for k in set(want) & set(have)
           if have[k][0] != "security.istio.io/v1" or have[k][1] != want[k][0]]
    return (not diff and not bad), (diff, bad)


def wait_converged(k8s, pilot, what, skip_names=()):
    t0 = time.time()
    last = None
    while time.time() - t0 < 30:
        ok, last = converged(k8s, pilot, skip_names)
        if ok:
            n = len(pilot_security(pilot))
            return check(True, "%s: configz holds the server's %d security objects at their "
                         "resourceVersions (%.1f s)" % (what, n, time.time() - t0))
        time.sleep(0.1)
    return check(False, "%s: configz differs from the server: %s" % (what, last))


def kubectl_until(k8s, what, *args, inp=None):
    """kubectl retried for a moment: its discovery cache may lag kinds just installed."""
    res = poll(lambda: (lambda r: r if r[0] == 0 else None)(
        k8s.kubectl(*args, inp=inp, check=False)), 20, 0.5)
    out = res[1] if res else k8s.kubectl(*args, inp=inp, check=False)[1]
    check(bool(res), "%s (%s)" % (what, " ".join(out.split())[:200]))
    return bool(res)


def networking_crds():
    with open(os.path.join(realk8s.MANIFESTS, "01-crds.yaml")) as f:
        docs = f.read().split("\n---\n")
    return "\n---\n".join(d for d in docs if "group: networking.istio.io" in d)


def run(work, k8s):
    k8s.install_istio(crds=False)
    k8s.apply(networking_crds())
    k8s.ensure_namespace(NS)
    kc = k8s.istiod_kubeconfig()
    check(k8s.api.get("/apis/security.istio.io") is None,
          "before the security CRDs: the server does not serve security.istio.io")

    # ---- 1. security.istio.io not served at start ----
    pilot = Pilot(work, kc, {"PILOT_K8S_REDISCOVERY_INTERVAL": "300ms"})
    try:
        t0 = time.time()
        if not check(bool(poll(pilot.ready, 60)), "/ready 200 without security.istio.io "
                     "(%.1f s)" % (time.time() - t0)):
            print(pilot.read_log()[-4000:])
            return
        log = pilot.read_log()
        line = [ln for ln in log.splitlines() if "security.istio.io is not served" in ln]
        check(len(line) == 1, "the log says once that security.istio.io is not served: %s" %
              (line[0].split("\t")[-1] if line else log[-2000:]))
        k8sz = {e["resource"] for e in json.loads(pilot.mon("/debug/k8sz") or "[]")}
        check("virtualservices" in k8sz and "peerauthentications" not in k8sz,
              "/debug/k8sz: networking reflectors, no security ones yet")

        # ---- 2. the security CRDs installed after start ----
        k8s.apply(os.path.join(realk8s.MANIFESTS, "01-crds.yaml"))

        def served():
            out = {}
            for v in ("v1", "v1beta1"):
                d = k8s.api.get("/apis/security.istio.io/" + v)
                out[v] = {r["name"] for r in (d or {}).get("resources", [])}
            return out if all(set(SEC_PLURALS.values()) <= s for s in out.values()) else None
        check(bool(poll(served, 60)), "the server serves the three kinds at v1 and v1beta1")
        grp = k8s.api.get("/apis/security.istio.io")
        check(grp and grp["preferredVersion"]["version"] == "v1",
              "security.istio.io's preferred version is v1 (%s)" %
              (grp or {}).get("preferredVersion"))
        for plural in SEC_PLURALS.values():
            crd = k8s.api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                              "%s.security.istio.io" % plural)
            vs = {v["name"]: (v["served"], v["storage"]) for v in crd["spec"]["versions"]}
            conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
            check(vs == {"v1": (True, True), "v1beta1": (True, False)} and
                  crd["spec"]["names"]["categories"] == ["istio-io", "security-istio-io"] and
                  conds.get("Established") == "True",
                  "CRD %s.security.istio.io: versions %s, short name %s, Established" % (
                      plural, vs, crd["spec"]["names"].get("shortNames")))

        def reflectors():
            st = {e["resource"]: e for e in json.loads(pilot.mon("/debug/k8sz") or "[]")}
            return st if all(p in st and st[p]["synced"] for p in SEC_PLURALS.values()) \
                else None
        t0 = time.time()
        st = poll(reflectors, 20)
        check(bool(st), "the three security reflectors start and sync after the CRDs "
              "(%.1f s)" % (time.time() - t0))
        if st:
            got = {p: (st[p]["apiVersion"], st[p]["kind"]) for p in SEC_PLURALS.values()}
            check(got == {p: ("security.istio.io/v1", k) for k, p in SEC_PLURALS.items()},
                  "/debug/k8sz: read at v1, the newest served (%s)" % sorted(got.values()))
        check("security.istio.io is now served" in pilot.read_log(),
              "the log says security.istio.io is now served")

        # ---- 3. objects in both versions, one invalid ----
        if not kubectl_until(k8s, "kubectl apply of 2 PeerAuthentications (v1), an "
                             "AuthorizationPolicy and a RequestAuthentication (v1beta1) and an "
                             "invalid PeerAuthentication", "apply", "-f", "-", inp=OBJECTS):
            return
        wait_converged(k8s, pilot, "initial", skip_names=("ports-without-selector",))
        have = pilot_security(pilot)
        for key in [("PeerAuthentication", NS, "default"),
                    ("PeerAuthentication", NS, "reviews-ports"),
                    ("AuthorizationPolicy", NS, "allow-get"),
                    ("RequestAuthentication", NS, "jwt")]:
            check(key in have and have[key][0] == "security.istio.io/v1",
                  "configz lists %s %s/%s, %s" % (key[0], key[1], key[2],
                                                  have.get(key, ("absent",))[0]))
        check(("PeerAuthentication", NS, "ports-without-selector") not in have,
              "configz leaves out the invalid PeerAuthentication")
        log = pilot.read_log()
        rej = [ln for ln in log.splitlines() if REJECT in ln]
        check(len(rej) == 1, "the log rejects it by name and field, once: %s" %
              (rej[0].split("\t", 1)[-1] if rej else
               [ln for ln in log.splitlines() if "ports-without-selector" in ln]))
        if rej:
            check(rej[0].split("\t")[1] == "warn" and "kubernetes" in rej[0],
                  "a warning from origin kubernetes")
        metrics = pilot.mon("/metrics") or ""
        for kind in SEC_PLURALS:
            m = 'pilot_k8s_cfg_events{type="%s",event="add"}' % kind
            check(m in metrics, "metric %s" % m)
        rejm = [ln for ln in metrics.splitlines()
                if ln.startswith("pilot_total_rejected_configs") and "PeerAuthentication" in ln]
        check(bool(rejm), "pilot_total_rejected_configs counts the PeerAuthentication (%s)" %
              (rejm[0] if rejm else "none"))

        # ---- 4. update, delete, valid -> invalid ----
        k8s.kubectl("patch", "peerauthentication", "default", "-n", NS, "--type=merge", "-p",
                    '{"spec":{"mtls":{"mode":"PERMISSIVE"}}}')
        if wait_converged(k8s, pilot, "PeerAuthentication default STRICT -> PERMISSIVE",
                          skip_names=("ports-without-selector",)):
            spec = pilot_security(pilot)[("PeerAuthentication", NS, "default")][2]
            check(spec == {"mtls": {"mode": "PERMISSIVE"}}, "configz has the new spec %s" % spec)
        k8s.kubectl("delete", "authorizationpolicy.security.istio.io", "allow-get", "-n", NS)
        if wait_converged(k8s, pilot, "AuthorizationPolicy allow-get deleted",
                          skip_names=("ports-without-selector",)):
            check(("AuthorizationPolicy", NS, "allow-get") not in pilot_security(pilot),
                  "configz no longer lists AuthorizationPolicy allow-get")

        before = pilot_security(pilot)[("PeerAuthentication", NS, "reviews-ports")]
        k8s.kubectl("patch", "peerauthentication", "reviews-ports", "-n", NS, "--type=json",
                    "-p", '[{"op":"remove","path":"/spec/selector"}]')
        msg = ("PeerAuthentication %s/reviews-ports: spec.portLevelMtls: mesh/namespace peer "
               "authentication cannot have port level mTLS" % NS)
        seen = poll(lambda: msg in pilot.read_log(), 15)
        check(bool(seen), "made invalid (selector removed): the update is rejected by name "
              "and field")
        time.sleep(0.5)  # past the debounce: a wrongly accepted update would show by now
        now = pilot_security(pilot).get(("PeerAuthentication", NS, "reviews-ports"))
        check(now == before, "configz keeps its last valid version (rv %s)" %
              (now[1] if now else None))

        # ---- 5. Sidecars ----
        if kubectl_until(k8s, "kubectl apply of a Sidecar (v1alpha3) and an invalid one",
                         "apply", "-f", "-", inp=SIDECARS):
            def sidecar():
                for o in pilot.configz():
                    md = o.get("metadata", {})
                    if o.get("kind") == "Sidecar" and md.get("name") == "default":
                        return o
                return None
            sc = poll(sidecar, 15)
            check(bool(sc) and sc["apiVersion"] == "networking.istio.io/v1" and
                  sc["metadata"]["namespace"] == NS and
                  sc["spec"] == {"egress": [{"hosts": ["./*", "istio-system/*"]}]},
                  "configz lists Sidecar %s/default at networking.istio.io/v1 (%s)" %
                  (NS, sc and sc["apiVersion"]))
            seen = poll(lambda: SIDECAR_REJECT in pilot.read_log(), 15)
            check(bool(seen), "the invalid Sidecar is rejected with istiod's reason")
            check(not any(o.get("kind") == "Sidecar" and
                          o.get("metadata", {}).get("name") == "bad-host"
                          for o in pilot.configz()),
                  "configz leaves out the invalid Sidecar")
            st = {e["resource"]: e for e in json.loads(pilot.mon("/debug/k8sz") or "[]")}
            check("sidecars" in st and st["sidecars"]["synced"],
                  "/debug/k8sz: the sidecars reflector is synced")

        # ---- 6. RBAC, exit ----
        check(*k8s.rbac_verdict())
        check("403" not in "".join(ln for ln in pilot.read_log().splitlines()
                                   if "security.istio.io" in ln),
              "no 403 on security.istio.io in pilot-discovery's log")
        rc = pilot.stop()
        pilot = None
        check(rc == 0, "pilot-discovery exits cleanly on SIGTERM (rc %d)" % rc)
    finally:
        if pilot is not None:
            if failures:
                print("--- pilot log (tail)")
                print(pilot.read_log()[-3000:])
            pilot.stop()


def main():
    if not shutil.which("openssl"):
        ec.skip("openssl is not installed")
    ec.env_path("PILOT_BUILD")
    return realk8s.run_against_cluster("k8s security test", "k8s-security-", failures, run)

if __name__ == "__main__":
    sys.exit(main())
