"""Helpers for the end-to-end tests that run pilot-discovery against a REAL kube-apiserver +
etcd (tests/k8s/realk8s.py, binaries from $PILOT_PEERS_BIN; exit 77 without them): start a
cluster with istiod's RBAC and our CRDs, give pilot-discovery a kubeconfig holding only a
bound token of istio-system/istiod (optionally through a Relay the test can hold and cut),
run kubectl at it as the admin, start pilot-discovery with --kubeconfig, and compare
/debug/configz with the server's Istio objects.

Run with Debian's /usr/bin/python3.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
import e2e_common as ec  # noqa: E402
import realk8s  # noqa: E402

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
    """A real kube-apiserver + etcd (realk8s.Cluster) with manifests/00-namespace,
    02-rbac and 01-crds applied. .kubeconfig is istiod's (a bound token of
    istio-system/istiod and nothing else; through a Relay when relay=True, .relay);
    kubectl() and get() act as the admin. The faults are realk8s's, on .k8s."""

    def __init__(self, work, relay=False, watch_cache=True):
        self.work = work
        self.k8s = realk8s.Cluster(work=os.path.join(work, "k8s"), watch_cache=watch_cache)
        print("against " + self.k8s.banner(), flush=True)
        self.k8s.start()
        try:
            print("     cluster up in %.1f s" % self.k8s.startup_s, flush=True)
            self.k8s.install_istio()
            self.relay = self.k8s.relay() if relay else None
            self.kubeconfig = self.k8s.istiod_kubeconfig(
                server="https://127.0.0.1:%d" % self.relay.port if relay else None)
        except BaseException:
            self.k8s.stop()
            raise
        self.log_path = os.path.join(self.k8s.work, "apiserver.log")

    def get(self, path):
        return self.k8s.api.get(path)

    def kubectl(self, *args, inp=None):
        """Runs kubectl as the admin; raises with its output on failure."""
        return self.k8s.kubectl(*args, inp=inp)

    def apply_objects(self, src):
        """kubectl apply plus what a full cluster would do (realk8s.apply_objects)."""
        return self.k8s.apply_objects(src)

    def istio_objects(self):
        """{(kind, namespace, name): (resourceVersion, spec)} of the server's Istio objects
        (of the kinds it serves)."""
        out = {}
        for gv, plural, kind in ISTIO_KINDS:
            lst = self.get("/apis/%s/%s" % (gv, plural))
            for it in (lst or {}).get("items", []):
                md = it["metadata"]
                out[(kind, md.get("namespace", ""), md["name"])] = (md["resourceVersion"],
                                                                    it.get("spec", {}))
        return out

    def stop(self):
        self.k8s.stop()


def host_ipv4():
    """A global-scope IPv4 address of this machine, or None. A real API server refuses
    loopback addresses in EndpointSlices ("may not be in the loopback range"), so traffic
    tests put their backends on this address instead of 127.0.0.x."""
    import json
    try:
        out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True,
                             timeout=10).stdout
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info", []):
                if a.get("scope") == "global" and a.get("local"):
                    return a["local"]
    except (OSError, ValueError):
        pass
    return None


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
