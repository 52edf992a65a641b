"""Helpers for the end-to-end tests that run pilot-discovery against the stand-in Kubernetes
API server (tests/k8s/apiserver.py): start it on a free port, write a kubeconfig, run
kubectl at it, start pilot-discovery with --kubeconfig, and compare /debug/configz with the
server's Istio objects.

Run with Debian's /usr/bin/python3.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

# (API group/version, plural, kind) of the Istio kinds configz reports
ISTIO_KINDS = [
    ("networking.istio.io/v1", "gateways", "Gateway"),
    ("networking.istio.io/v1", "virtualservices", "VirtualService"),
    ("networking.istio.io/v1", "destinationrules", "DestinationRule"),
    ("networking.istio.io/v1", "serviceentries", "ServiceEntry"),
    ("networking.istio.io/v1", "sidecars", "Sidecar"),
    ("networking.istio.io/v1", "workloadentries", "WorkloadEntry"),
    ("security.istio.io/v1", "peerauthentications", "PeerAuthentication"),
    ("security.istio.io/v1", "authorizationpolicies", "AuthorizationPolicy"),
    ("security.istio.io/v1", "requestauthentications", "RequestAuthentication"),
]


def need_kubectl():
    k = shutil.which("kubectl")
    if not k:
        ec.skip("kubectl is not installed")
    return k


def poll(fn, timeout, step=0.1):
    """fn() until it returns something true or the deadline passes; returns the last value."""
    deadline = time.time() + timeout
    v = None
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


class ApiServer:
    """The stand-in API server on a free port, with its fault switches."""

    def __init__(self, work):
        self.work = work
        script = os.path.join(ec.env_path("PILOT_SRC"), "tests", "k8s", "apiserver.py")
        pf = os.path.join(work, "api.port")
        self.log_path = os.path.join(work, "api.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["/usr/bin/python3", script, "--port-file", pf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not poll(lambda: os.path.exists(pf) and os.path.getsize(pf) > 0, 15):
            raise RuntimeError("the stand-in API server did not start")
        with open(pf) as f:
            self.port = int(f.read().strip())
        self.url = "http://127.0.0.1:%d" % self.port
        self.kubeconfig = os.path.join(work, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write("""apiVersion: v1
kind: Config
current-context: standin
clusters:
- name: standin
  cluster: {server: "%s"}
contexts:
- name: standin
  context: {cluster: standin, user: tester}
users:
- name: tester
  user: {token: test-token}
""" % self.url)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.load(r)

    def admin(self, op, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        req = urllib.request.Request(self.url + "/_admin/" + op, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def kubectl(self, *args):
        """Runs kubectl at the stand-in; raises with its output on failure."""
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        p = subprocess.run(["kubectl", "--request-timeout=20s"] + list(args), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise RuntimeError("kubectl %s: %s" % (" ".join(args), p.stdout))
        return p.stdout

    def istio_objects(self):
        """{(kind, namespace, name): (resourceVersion, spec)} of the server's Istio objects."""
        out = {}
        for gv, plural, kind in ISTIO_KINDS:
            for it in self.get("/apis/%s/%s" % (gv, plural))["items"]:
                md = it["metadata"]
                out[(kind, md.get("namespace", ""), md["name"])] = (md["resourceVersion"],
                                                                    it.get("spec", {}))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class KubePilot(ec.Pilot):
    """pilot-discovery reading its config from the stand-in (--kubeconfig, no --configDir)."""

    def __init__(self, kubeconfig, workdir, extra_args=None):
        super().__init__(workdir=workdir, extra_args=extra_args)
        self.kubeconfig = kubeconfig

    def start(self, timeout=30):
        self.log = open(self.log_path, "w")
        # With Kubernetes the CA serves TLS on :15012 by default: a free loopback port keeps
        # parallel tests apart; no plug-in CA certificates from /etc/cacerts
        self.tls_port = ec.free_port()
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--kubeconfig", self.kubeconfig,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port,
             "--secureGRPCAddr", "127.0.0.1:%d" % self.tls_port,
             "--caCertsDir", os.path.join(self.workdir, "no-cacerts")] + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        ok = poll(lambda: self.proc.poll() is not None or self._ready(), timeout)
        if self.proc.poll() is not None:
            raise RuntimeError("pilot-discovery exited with %d:\n%s" %
                               (self.proc.returncode, self.read_log()))
        if not ok:
            raise RuntimeError("pilot-discovery not ready after %ds:\n%s" %
                               (timeout, self.read_log()))

    def _ready(self):
        try:
            return ec.http_get(self.url("/ready"), timeout=1)[0] == 200
        except OSError:
            return False

    def configz(self):
        """{(kind, namespace, name): (resourceVersion, spec)} from /debug/configz."""
        out = {}
        for o in self.json("/debug/configz"):
            md = o["metadata"]
            out[(o["kind"], md.get("namespace", ""), md["name"])] = (
                str(md.get("resourceVersion")), o.get("spec", {}))
        return out


def configz_diff(api, pilot):
    """None when configz holds exactly the server's Istio objects (same resourceVersion and
    spec), else a short description of the difference."""
    want = api.istio_objects()
    have = pilot.configz()
    if want == have:
        return None
    missing = sorted(k for k in want if k not in have)
    extra = sorted(k for k in have if k not in want)
    changed = sorted(k for k in want if k in have and want[k] != have[k])
    return "missing %s, extra %s, differing %s" % (missing, extra,
                                                   [(k, want[k][0], have[k][0])
                                                    for k in changed])
