#!/usr/bin/python3
"""realk8s: a real kube-apiserver and etcd on loopback, for tests (stdlib + the openssl CLI).

The binaries come from $PILOT_PEERS_BIN (kube-apiserver, etcd, kubectl, built from their Go
modules by tests/peers). When it is unset or a binary is missing, whoever asks for a
cluster exits 77 (skip) saying so.

    with realk8s.Cluster() as c:      # etcd + kube-apiserver, /readyz, admin kubeconfig
        c.install_istio()             # manifests/00-namespace, 02-rbac, 01-crds
        kc = c.istiod_kubeconfig()    # a bound token of istio-system/istiod, nothing else
        c.kubectl("get", "ns")
        c.restart_apiserver(); c.stop_proc("etcd"); c.cont("etcd"); c.compact()

What the server is: etcd on 127.0.0.1 (random client and peer ports, data in the work
directory), kube-apiserver on 127.0.0.1:<random> (TLS only; no insecure port exists any
more) with certificates made here by openssl: a CA, a serving certificate for 127.0.0.1,
localhost and kubernetes.default.svc(.cluster.local), an admin client certificate
(O=system:masters); service-account tokens signed with an RSA key pair made here, issuer
https://kubernetes.default.svc.cluster.local, API audiences that issuer and istio-ca;
--authorization-mode=Node,RBAC; default admission plugins; service CIDR 10.96.0.0/12 (the
sample Services' cluster IPs are in it). No controller-manager, scheduler or kubelet run:
Pods stay as written (their status is set through the status subresource, see
apply_objects), nobody creates the "default" ServiceAccount of a namespace, and
EndpointSlices are only the ones a test writes.

Faults, from outside the server: stop_proc()/cont() (SIGSTOP/SIGCONT of etcd or the API
server), kill_apiserver()/start_apiserver()/restart_apiserver() (same certificates, port
and etcd), compact() (etcd's v3 JSON gateway, /v3/kv/compaction, at the current revision:
watches from older resourceVersions get 410 when the API server reads them from etcd, that
is with watch_cache=False; with the watch cache (the default) a compaction changes nothing
for watchers, the cache replays from its own window, while a restarted API server answers
410 "too old resource version" to a re-watch from before its start) and Relay, a TCP relay
in front of the API server that can hold (a partition: connections stay open, no byte
moves) and cut (every connection reset).

Seen of this server (v1.36): for a moment after its port opens it answers 403 to
everyone (RBAC's caches not filled; rbac_report() separates those); a graceful SIGTERM
with watches open takes ~30 s and then cuts them mid-stream; EndpointSlices (and the
kubernetes Endpoints it writes itself) refuse loopback addresses, so with
--advertise-address 127.0.0.1 Service default/kubernetes has no endpoints; a deleted
ServiceAccount's token still authenticates for up to 10 s (the token cache). Every request
is in an audit log (work/audit.log, metadata level): denials() reads the 403s.

CLI, for shell tests:
    realk8s.py serve DIR [--no-istio] [--no-crds] [--no-watch-cache] [--relay]
        starts a cluster in DIR, writes DIR/cluster.json and DIR/env (shell variables:
        REALK8S_KUBECONFIG, REALK8S_ISTIOD_KUBECONFIG, REALK8S_URL, REALK8S_KUBECTL,
        REALK8S_VERSIONS), then serves DIR/ctl.sock until SIGTERM/SIGINT (clean shutdown)
    realk8s.py ctl DIR COMMAND [ARG...]
        stop|cont etcd|apiserver, restart-apiserver [kill], kill-apiserver [kill],
        start-apiserver, compact, hold, release, cut, token NS SA [AUDIENCE,...] [SECONDS],
        denials (what RBAC refused istiod: {"start_window": N, "other": [...]})
"""
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = [ISSUER, "istio-ca"]
SERVICE_CIDR = "10.96.0.0/12"
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MANIFESTS = os.path.join(SRC, "manifests")
# Our Istio CRDs (manifests/01-crds.yaml), for waiting until they are served.
ISTIO_CRDS = ["gateways", "virtualservices", "destinationrules", "serviceentries", "sidecars"]


def skip(msg):
    print("SKIP: " + msg, flush=True)
    sys.exit(SKIP)


def peers_bin():
    """$PILOT_PEERS_BIN when it holds kube-apiserver, etcd and kubectl; else exit 77."""
    d = os.environ.get("PILOT_PEERS_BIN", "")
    if not d:
        skip("PILOT_PEERS_BIN is not set: no real kube-apiserver/etcd/kubectl to test against "
             "(tests/peers builds them)")
    missing = [b for b in ("kube-apiserver", "etcd", "kubectl")
               if not os.access(os.path.join(d, b), os.X_OK)]
    if missing:
        skip("PILOT_PEERS_BIN=%s has no %s" % (d, ", ".join(missing)))
    if shutil.which("openssl") is None:
        skip("openssl is not installed")
    return d


def _die_with_parent():
    """In the child before exec: SIGKILL when the process that started it dies (a test
    killed on timeout leaves no etcd or kube-apiserver behind); it also stays in the test's
    process group, which meson signals on timeout."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def poll(fn, timeout, step=0.2):
    """fn() until truthy or the deadline; returns the last value."""
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = fn()
    return v


def _openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stderr.strip()))


def make_pki(d):
    """CA, API server serving certificate, admin client certificate, SA signing keys."""
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "7",
             "-subj", "/CN=realk8s-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")

    def leaf(name, subj, ext):
        _openssl("req", "-new", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
                 "-subj", subj)
        with open(p(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,"
                    "keyEncipherment\n" + ext)
        _openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey",
                 p("ca.key"), "-set_serial", str(random.getrandbits(62)), "-days", "7",
                 "-sha256", "-extfile", p(name + ".ext"), "-out", p(name + ".crt"))

    leaf("apiserver", "/CN=kube-apiserver",
         "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,"
         "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
         "DNS:kubernetes.default.svc.cluster.local\n")
    leaf("admin", "/O=system:masters/CN=realk8s-admin", "extendedKeyUsage=clientAuth\n")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", p("sa.key"))
    _openssl("pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub"))


def kubeconfig_text(server, ca, user):
    """A kubeconfig; user is the YAML flow mapping of the user entry."""
    return """apiVersion: v1
kind: Config
current-context: realk8s
clusters:
- name: realk8s
  cluster: {server: "%s", certificate-authority: "%s"}
contexts:
- name: realk8s
  context: {cluster: realk8s, user: u}
users:
- name: u
  user: %s
""" % (server, ca, user)


class ApiClient:
    """HTTPS requests to the API server as the admin (client certificate) or with a token."""

    def __init__(self, url, ca, cert, key):
        self.url, self.ca, self.cert, self.key = url, ca, cert, key
        self._ctx = {}

    def ctx(self, client_cert=True):
        if client_cert not in self._ctx:
            c = ssl.create_default_context(cafile=self.ca)
            if client_cert:
                c.load_cert_chain(self.cert, self.key)
            self._ctx[client_cert] = c
        return self._ctx[client_cert]

    def request(self, method, path, body=None, ctype="application/json", token=None,
                timeout=30, base=None):
        """(HTTP status, decoded JSON body or text)."""
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        req = urllib.request.Request((base or self.url) + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        req.add_header("Accept", "application/json")
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, context=self.ctx(token is None),
                                        timeout=timeout) as r:
                st, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, raw = e.code, e.read()
        try:
            return st, json.loads(raw or b"null")
        except ValueError:
            return st, raw.decode("utf-8", "replace")

    def get(self, path, **kw):
        """The object, or None on 404; raises on any other error. A 429 or 503 (the server
        says so while its storage for a resource (re)initializes, e.g. CRDs just after a
        restart) is retried as it asks, for up to 60 s."""
        deadline = time.time() + 60
        st, obj = self.request("GET", path, **kw)
        while st in (429, 503) and time.time() < deadline:
            wait = 1
            if isinstance(obj, dict):
                wait = (obj.get("details") or {}).get("retryAfterSeconds") or 1
            time.sleep(min(float(wait), 5.0))
            st, obj = self.request("GET", path, **kw)
        if st == 404:
            return None
        if st != 200:
            raise RuntimeError("GET %s: HTTP %d: %s" % (path, st, obj))
        return obj


class Relay:
    """A TCP relay on a free loopback port in front of the API server (pilot-discovery is
    pointed at it, kubectl talks to the server directly): a network between them that the
    test controls. hold(): no byte moves either way, connections stay open (a partition;
    what arrives meanwhile stays in the relay); cut(): every connection is closed, with
    whatever was held; release(): bytes move again. The server never knows."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.moving = threading.Event()
        self.moving.set()
        self.mu = threading.Lock()
        self.conns = []
        self.closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.mu:
                self.accepted += 1
                self.conns.append((c, u))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        # An end of stream or a reset is held like data: a partition hides a restart too.
        try:
            while True:
                self.moving.wait()
                data = src.recv(65536)
                self.moving.wait()
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            self.moving.wait()
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def hold(self):
        self.moving.clear()

    def release(self):
        self.moving.set()

    def cut(self):
        """Closes every connection (RST, nothing held is delivered)."""
        with self.mu:
            conns, self.conns = self.conns, []
        for pair in conns:
            for s in pair:
                # linger 0: the close is a reset; SHUT_RD first wakes a pump blocked in
                # recv(), which would otherwise keep the socket alive past close()
                for op in (lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                b"\x01\0\0\0\0\0\0\0"),
                           lambda: s.shutdown(socket.SHUT_RD), s.close):
                    try:
                        op()
                    except OSError:
                        pass
        return len(conns)

    def close(self):
        self.closed = True
        self.lsock.close()
        self.cut()
        self.moving.set()


CONTROLLERS = ("deployment-controller", "replicaset-controller", "serviceaccount-controller")


class Cluster:
    """etcd + kube-apiserver in a work directory (a temporary one, removed at stop(),
    unless given)."""

    def __init__(self, work=None, watch_cache=True, static_tokens=None, apiserver_args=(),
                 keep_work=False):
        self.bin = peers_bin()
        self.own_work = work is None
        self.keep_work = keep_work
        self.work = work or tempfile.mkdtemp(prefix="realk8s-")
        os.makedirs(self.work, exist_ok=True)
        self.pki = os.path.join(self.work, "pki")
        self.watch_cache = watch_cache
        self.static_tokens = static_tokens or {}
        self.extra_args = list(apiserver_args)
        self.etcd_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.etcd_url = "http://127.0.0.1:%d" % self.etcd_port
        self.ca = os.path.join(self.pki, "ca.crt")
        self.api = ApiClient(self.url, self.ca, os.path.join(self.pki, "admin.crt"),
                             os.path.join(self.pki, "admin.key"))
        self.kubeconfig = os.path.join(self.work, "admin.kubeconfig")
        self.procs = {}
        self.logs = {}
        self.relays = []
        self.apiserver_starts = []
        self._windows = []
        self._versions = None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self):
        t0 = time.time()
        try:
            make_pki(self.pki)
            with open(self.kubeconfig, "w") as f:
                f.write(kubeconfig_text(self.url, self.ca, "{client-certificate: \"%s\", "
                                        "client-key: \"%s\"}" % (self.api.cert, self.api.key)))
            self._start_etcd()
            self.start_apiserver()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.time() - t0
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, name, argv):
        log = open(os.path.join(self.work, name + ".log"), "a")
        log.write("==== %s start %s\n" % (name, time.strftime("%H:%M:%S")))
        log.flush()
        self.logs[name] = log
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        return self.procs[name]

    def log_tail(self, name, n=3000):
        try:
            with open(os.path.join(self.work, name + ".log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def _start_etcd(self):
        peer = "http://127.0.0.1:%d" % self.etcd_peer_port
        self._spawn("etcd", [
            os.path.join(self.bin, "etcd"), "--name", "realk8s",
            "--data-dir", os.path.join(self.work, "etcd-data"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "realk8s=" + peer, "--initial-cluster-state", "new",
            "--log-level", "warn", "--unsafe-no-fsync"])

        def healthy():
            if self.procs["etcd"].poll() is not None:
                raise RuntimeError("etcd exited (%d):\n%s" % (self.procs["etcd"].returncode,
                                                              self.log_tail("etcd")))
            try:
                with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as r:
                    return json.load(r).get("health") == "true"
            except (OSError, ValueError):
                return False
        if not poll(healthy, 60):
            raise RuntimeError("etcd not healthy after 60 s:\n" + self.log_tail("etcd"))

    def apiserver_argv(self):
        p = lambda n: os.path.join(self.pki, n)  # noqa: E731
        argv = [
            os.path.join(self.bin, "kube-apiserver"),
            "--etcd-servers=" + self.etcd_url,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--secure-port=%d" % self.port,
            "--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key"),
            "--client-ca-file=" + p("ca.crt"),
            "--service-account-key-file=" + p("sa.pub"),
            "--service-account-signing-key-file=" + p("sa.key"),
            "--service-account-issuer=" + ISSUER,
            "--api-audiences=" + ",".join(API_AUDIENCES),
            "--authorization-mode=Node,RBAC",
            "--service-cluster-ip-range=" + SERVICE_CIDR,
            "--cert-dir=" + os.path.join(self.work, "apiserver-certs"),
            # compaction only on cue (compact()), never by the server's own timer
            "--etcd-compaction-interval=0",
            "--profiling=false",
            "--watch-cache=%s" % ("true" if self.watch_cache else "false"),
        ]
        # An audit log (metadata only) of every request: who, what, the answer's code and
        # the authorizer's reason, for denials() and post-mortems.
        policy = os.path.join(self.pki, "audit-policy.yaml")
        with open(policy, "w") as f:
            f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                    "rules:\n- level: Metadata\n")
        argv += ["--audit-policy-file=" + policy,
                 "--audit-log-path=" + os.path.join(self.work, "audit.log"),
                 "--audit-log-mode=blocking", "--audit-log-maxsize=200"]
        if self.static_tokens:
            path = os.path.join(self.pki, "tokens.csv")
            with open(path, "w") as f:
                for tok, (user, uid, groups) in self.static_tokens.items():
                    f.write('%s,%s,%s,"%s"\n' % (tok, user, uid, ",".join(groups)))
            argv.append("--token-auth-file=" + path)
        return argv + self.extra_args

    def start_controller_manager(self, controllers=CONTROLLERS):
        """kube-controller-manager as the admin, only `controllers` (the Deployment and
        ReplicaSet controllers turn Deployments into Pods; the ServiceAccount controller
        makes each namespace's `default`), no leader election, no serving port."""
        self._spawn("controller-manager", [
            os.path.join(self.bin, "kube-controller-manager"),
            "--kubeconfig=" + self.kubeconfig, "--leader-elect=false",
            "--controllers=" + ",".join(controllers), "--secure-port=0",
            "--use-service-account-credentials=false", "--concurrent-deployment-syncs=2",
            "--concurrent-replicaset-syncs=2"])
        return self.procs["controller-manager"]

    def start_apiserver(self, wait=True, timeout=120):
        self.apiserver_starts.append(time.time())
        self._spawn("apiserver", self.apiserver_argv())
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout=120):
        t0 = time.time()

        def ready():
            pr = self.procs.get("apiserver")
            if pr is None or pr.poll() is not None:
                raise RuntimeError("kube-apiserver exited (%s):\n%s" % (
                    pr and pr.returncode, self.log_tail("apiserver")))
            try:
                st, _ = self.api.request("GET", "/readyz", timeout=5)
                if st != 200:
                    return False
                # the bootstrap controller's namespaces and RBAC roles are in
                return all(self.api.request("GET", p, timeout=5)[0] == 200 for p in (
                    "/api/v1/namespaces/default", "/api/v1/namespaces/kube-system",
                    "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:auth-delegator"))
            except OSError:
                return False
        if not poll(ready, timeout, 0.25):
            raise RuntimeError("kube-apiserver not ready after %d s:\n%s" % (
                timeout, self.log_tail("apiserver")))
        self.last_ready_s = time.time() - t0
        if self.apiserver_starts:
            self._windows.append((self.apiserver_starts[-1], time.time()))
        return self.last_ready_s

    def _end(self, name, sig=signal.SIGTERM, timeout=30):
        pr = self.procs.pop(name, None)
        if pr is not None and pr.poll() is None:
            try:
                os.kill(pr.pid, signal.SIGCONT)  # a stopped process cannot exit on SIGTERM
                pr.send_signal(sig)
                pr.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
            except ProcessLookupError:
                pass
        log = self.logs.pop(name, None)
        if log:
            log.close()

    def stop(self):
        """Stops everything; removes a temporary work directory."""
        for r in self.relays:
            r.close()
        self.relays = []
        self._end("controller-manager")
        self._end("apiserver")
        self._end("etcd")
        if self.own_work and not self.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---- faults -----------------------------------------------------------------------------

    def pid(self, which):
        return self.procs[which].pid

    def stop_proc(self, which):
        """SIGSTOP of "etcd" or "apiserver"."""
        os.kill(self.pid(which), signal.SIGSTOP)

    def cont(self, which):
        os.kill(self.pid(which), signal.SIGCONT)

    def kill_apiserver(self, sig=signal.SIGTERM):
        """Ends the API server (SIGTERM: its graceful shutdown; SIGKILL: connections reset)."""
        self._end("apiserver", sig)

    def restart_apiserver(self, sig=signal.SIGTERM, down_s=0.0, timeout=120):
        """Same certificates, port and etcd. Returns the seconds until /readyz again."""
        t0 = time.time()
        self.kill_apiserver(sig)
        if down_s:
            time.sleep(down_s)
        self.start_apiserver(timeout=timeout)
        return time.time() - t0

    def etcd(self, path, body):
        req = urllib.request.Request(self.etcd_url + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.load(r)

    def etcd_revision(self):
        return int(self.etcd("/v3/maintenance/status", {})["header"]["revision"])

    def compact(self):
        """Compacts etcd at its current revision (physical); returns the revision."""
        rev = self.etcd_revision()
        self.etcd("/v3/kv/compaction", {"revision": str(rev), "physical": True})
        return rev

    def relay(self):
        r = Relay(self.port)
        self.relays.append(r)
        return r

    # ---- versions ---------------------------------------------------------------------------

    def versions(self):
        if self._versions is None:
            def out(*argv):
                r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                return (r.stdout + r.stderr).strip()
            a = out(os.path.join(self.bin, "kube-apiserver"), "--version").split()[-1]
            e = out(os.path.join(self.bin, "etcd"), "--version").splitlines()[0].split()[-1]
            try:
                k = json.loads(out(os.path.join(self.bin, "kubectl"), "version", "--client",
                                   "-o", "json"))["clientVersion"]["gitVersion"]
            except (ValueError, KeyError):
                k = "?"
            self._versions = {"kube-apiserver": a, "etcd": e, "kubectl": k}
        return self._versions

    def banner(self):
        v = self.versions()
        return "real kube-apiserver %s, etcd %s, kubectl %s" % (
            v["kube-apiserver"], v["etcd"], v["kubectl"])

    # ---- clients ----------------------------------------------------------------------------

    def kubectl_path(self):
        return os.path.join(self.bin, "kubectl")

    def kubectl(self, *args, inp=None, check=True, kubeconfig=None, timeout=90):
        """kubectl as the admin; returns stdout+stderr, raises on failure when check."""
        r = subprocess.run([self.kubectl_path(), "--kubeconfig", kubeconfig or self.kubeconfig,
                            "--request-timeout=30s"] + list(args), input=inp,
                           capture_output=True, text=True, timeout=timeout)
        out = r.stdout + r.stderr
        if check and r.returncode != 0:
            raise RuntimeError("kubectl %s: %s" % (" ".join(args), out.strip()))
        return out if check else (r.returncode, out)

    def apply(self, src, *extra):
        """kubectl apply of YAML text, a file or a list of files."""
        if isinstance(src, (list, tuple)):
            args = []
            for f in src:
                args += ["-f", f]
            return self.kubectl("apply", *args, *extra)
        if "\n" not in src and os.path.exists(src):
            return self.kubectl("apply", "-f", src, *extra)
        return self.kubectl("apply", "-f", "-", *extra, inp=src)

    def objects_of(self, src):
        """The objects of YAML text/files, parsed by kubectl (client side, nothing sent)."""
        files = src if isinstance(src, (list, tuple)) else [src]
        items = []
        for f in files:
            text = f if "\n" in f or not os.path.exists(f) else None
            r = subprocess.run([self.kubectl_path(), "--kubeconfig", self.kubeconfig, "create",
                                "--dry-run=client", "-o", "json", "-f", "-" if text else f],
                               input=text, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("kubectl create --dry-run=client: " + r.stderr.strip())
            dec, out, i = json.JSONDecoder(), r.stdout, 0
            while True:  # one JSON document per object, concatenated
                while i < len(out) and out[i].isspace():
                    i += 1
                if i >= len(out):
                    break
                doc, i = dec.raw_decode(out, i)
                items += doc["items"] if doc.get("kind") == "List" else [doc]
        return items

    def apply_objects(self, src):
        """kubectl apply, made to work the way a whole cluster would: Namespaces first,
        the ServiceAccounts Pods name (no controller-manager creates them; admission refuses
        a Pod whose ServiceAccount is missing), then everything, then each Pod's status
        through the status subresource (no kubelet writes it; create drops it)."""
        objs = self.objects_of(src)
        nss = [o for o in objs if o.get("kind") == "Namespace"]
        if nss:
            self.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": nss}))
        for o in objs:
            if o.get("kind") == "Pod":
                md = o["metadata"]
                self.ensure_service_account(md.get("namespace", "default"),
                                            o.get("spec", {}).get("serviceAccountName")
                                            or "default")
        out = self.apply(src)
        for o in objs:
            if o.get("kind") == "Pod" and o.get("status"):
                self.set_pod_status(o["metadata"].get("namespace", "default"),
                                    o["metadata"]["name"], o["status"])
        return out

    def set_pod_status(self, ns, name, status):
        st, obj = self.api.request("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (ns, name),
                                   {"status": status}, ctype="application/merge-patch+json")
        if st != 200:
            raise RuntimeError("PATCH pod %s/%s status: HTTP %d: %s" % (ns, name, st, obj))
        return obj

    def ensure_namespace(self, ns):
        st, obj = self.api.request("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        if st not in (201, 409):
            raise RuntimeError("create namespace %s: HTTP %d: %s" % (ns, st, obj))

    def ensure_service_account(self, ns, name):
        self.ensure_namespace(ns)
        st, obj = self.api.request("POST", "/api/v1/namespaces/%s/serviceaccounts" % ns, {
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns}})
        if st not in (201, 409):
            raise RuntimeError("create serviceaccount %s/%s: HTTP %d: %s" % (ns, name, st, obj))

    def install_istio(self, crds=True):
        """istio-system, istiod's ServiceAccount and RBAC (manifests/00-namespace.yaml,
        02-rbac.yaml) and, unless crds=False, our Istio CRDs (01-crds.yaml), waited for
        until served."""
        self.apply([os.path.join(MANIFESTS, "00-namespace.yaml"),
                    os.path.join(MANIFESTS, "02-rbac.yaml")])
        if crds:
            self.install_crds()

    def install_crds(self, timeout=60):
        self.apply(os.path.join(MANIFESTS, "01-crds.yaml"))

        def served():
            d = self.api.get("/apis/networking.istio.io/v1")
            have = {r["name"] for r in (d or {}).get("resources", [])}
            return all(c in have for c in ISTIO_CRDS)
        if not poll(served, timeout):
            raise RuntimeError("networking.istio.io/v1 not served %d s after the CRDs" % timeout)

    def token_request(self, ns, sa, audiences=None, seconds=3600):
        """A bound service-account token from the TokenRequest API."""
        spec = {"expirationSeconds": int(seconds)}
        if audiences:
            spec["audiences"] = list(audiences)
        st, obj = self.api.request(
            "POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (ns, sa),
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        if st != 201:
            raise RuntimeError("TokenRequest %s/%s: HTTP %d: %s" % (ns, sa, st, obj))
        return obj["status"]["token"]

    def istiod_kubeconfig(self, path=None, server=None, seconds=7200):
        """A kubeconfig that authenticates as istio-system/istiod with a bound token and
        nothing else, so the RBAC authorizer judges our ClusterRole and Role."""
        path = path or os.path.join(self.work, "istiod.kubeconfig")
        tok = self.token_request("istio-system", "istiod", seconds=seconds)
        with open(path, "w") as f:
            f.write(kubeconfig_text(server or self.url, self.ca, "{token: \"%s\"}" % tok))
        return path

    def can_i(self, verb, resource, ns=None, as_user="system:serviceaccount:istio-system:istiod"):
        args = ["auth", "can-i", verb, resource, "--as", as_user]
        args += ["-n", ns] if ns else ["--all-namespaces"]
        rc, out = self.kubectl(*args, check=False)
        return out.strip().splitlines()[-1] if out.strip() else ""

    def audit(self, user=None, since=0.0):
        """The audit log's events (dicts), of one user when given, from `since` (epoch s)."""
        out = []
        try:
            f = open(os.path.join(self.work, "audit.log"))
        except OSError:
            return out
        with f:
            for ln in f:
                try:
                    e = json.loads(ln)
                except ValueError:
                    continue
                if user and e.get("user", {}).get("username") != user:
                    continue
                if since and _ts(e.get("stageTimestamp", "")) < since:
                    continue
                out.append(e)
        return out

    def denials(self, user="system:serviceaccount:istio-system:istiod", since=0.0):
        """What RBAC refused the user (403 with the authorizer's decision not "allow"):
        [(time, verb, resource, ns, name, message)] from the audit log, oldest first."""
        out = []
        for e in self.audit(user, since):
            rs = e.get("responseStatus", {})
            if rs.get("code") != 403:
                continue
            # RBAC allowed it and admission refused it (e.g. a create in a namespace being
            # terminated): not a refusal of the role
            if e.get("annotations", {}).get("authorization.k8s.io/decision") == "allow":
                continue
            o = e.get("objectRef", {})
            res = o.get("resource", "") + ("." + o["apiGroup"] if o.get("apiGroup") else "")
            out.append((e.get("stageTimestamp", ""), e.get("verb", ""), res,
                        o.get("namespace", ""), o.get("name", ""),
                        e.get("annotations", {}).get("authorization.k8s.io/reason", "") or
                        rs.get("message", "")))
        return out

    def rbac_report(self, user="system:serviceaccount:istio-system:istiod", since=0.0):
        """(denials inside an API server's start-up window, the others). A real server
        answers 403 to everything for a moment after its port opens (RBAC's caches are not
        filled yet): those say nothing about the role. Each denial is a denials() tuple."""
        inside, other = [], []
        for d in self.denials(user, since):
            t = _ts(d[0])
            (inside if any(a - 1 <= t <= b + 1 for a, b in self._windows) else other).append(d)
        return inside, other

    def rbac_verdict(self, user="system:serviceaccount:istio-system:istiod"):
        """(True when RBAC refused the user nothing outside start-up windows, a line saying
        what it refused)."""
        inside, other = self.rbac_report(user)
        txt = "RBAC refused %s nothing outside API server start-up windows (%d refusals " \
              "inside them%s)" % (user.rsplit(":", 1)[-1], len(inside), (
                  ", first: %s %s: %s" % (inside[0][1], inside[0][2], inside[0][5])
                  if inside else ""))
        if other:
            txt += "; REFUSED: %s" % ["%s %s %s/%s: %s" % d[1:] for d in other[:8]]
        return not other, txt



def run_against_cluster(title, prefix, failures, run, apiserver_args=(), banner_extra=""):
    """The main of a real-cluster test: a work directory, a Cluster started in it (with
    apiserver_args), run(work, k8s) called, any exception recorded in failures, the cluster
    stopped, the work directory removed unless something failed (then kept and named).
    Returns the exit code: 0, or 1 with the count of failed checks printed."""
    import traceback
    t0 = time.time()
    work = tempfile.mkdtemp(prefix=prefix)
    k8s = None
    try:
        k8s = Cluster(work=os.path.join(work, "k8s"), apiserver_args=apiserver_args)
        print("against " + k8s.banner() + banner_extra, flush=True)
        k8s.start()
        print("     cluster up in %.1f s" % k8s.startup_s, flush=True)
        run(work, k8s)
    except SystemExit:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as e:  # reported below, logs kept
        traceback.print_exc()
        failures.append("exception: %s" % e)
    finally:
        if k8s is not None:
            k8s.stop()
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("logs kept in", work)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("%s passed in %.0f s" % (title, time.time() - t0))
    return 0

def _ts(s):
    """Epoch seconds of an audit timestamp (RFC 3339, microseconds, Z)."""
    import datetime
    try:
        return datetime.datetime.strptime(s[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return 0.0


# ---- CLI --------------------------------------------------------------------------------------

def _serve(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="realk8s.py serve")
    ap.add_argument("dir")
    ap.add_argument("--no-istio", action="store_true")
    ap.add_argument("--no-crds", action="store_true")
    ap.add_argument("--no-watch-cache", action="store_true")
    ap.add_argument("--relay", action="store_true")
    a = ap.parse_args(argv)
    c = Cluster(work=a.dir, watch_cache=not a.no_watch_cache)
    print(c.banner(), flush=True)
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    c.start()
    relay = c.relay() if a.relay else None
    state = {"url": c.url, "ca": c.ca, "admin_kubeconfig": c.kubeconfig,
             "admin_cert": c.api.cert, "admin_key": c.api.key, "etcd_url": c.etcd_url,
             "versions": c.versions(), "banner": c.banner(), "startup_s": c.startup_s,
             "kubectl": c.kubectl_path()}
    if not a.no_istio:
        c.install_istio(crds=not a.no_crds)
        server = "https://127.0.0.1:%d" % relay.port if relay else None
        state["istiod_kubeconfig"] = c.istiod_kubeconfig(server=server)
    if relay:
        state["relay_url"] = "https://127.0.0.1:%d" % relay.port
    sock_path = os.path.join(a.dir, "ctl.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(sock_path)
    srv.listen(4)
    srv.settimeout(0.2)
    with open(os.path.join(a.dir, "cluster.json"), "w") as f:
        json.dump(state, f, indent=1)
    with open(os.path.join(a.dir, "env"), "w") as f:
        f.write("REALK8S_KUBECONFIG='%s'\nREALK8S_ISTIOD_KUBECONFIG='%s'\nREALK8S_URL='%s'\n"
                "REALK8S_KUBECTL='%s'\nREALK8S_VERSIONS='%s'\n" % (
                    c.kubeconfig, state.get("istiod_kubeconfig", ""), c.url, c.kubectl_path(),
                    c.banner()))
    print("ready in %.1f s" % c.startup_s, flush=True)

    def handle(words):
        cmd = words[0]
        if cmd in ("stop", "cont"):
            (c.stop_proc if cmd == "stop" else c.cont)(words[1])
            return {}
        if cmd == "restart-apiserver":
            sig = signal.SIGKILL if words[1:2] == ["kill"] else signal.SIGTERM
            return {"seconds": c.restart_apiserver(sig)}
        if cmd == "kill-apiserver":
            c.kill_apiserver(signal.SIGKILL if words[1:2] == ["kill"] else signal.SIGTERM)
            return {}
        if cmd == "start-apiserver":
            c.start_apiserver()
            return {"seconds": c.last_ready_s}
        if cmd == "compact":
            return {"revision": c.compact()}
        if cmd in ("hold", "release", "cut"):
            if relay is None:
                raise RuntimeError("no relay (serve --relay)")
            return {"closed": relay.cut()} if cmd == "cut" else getattr(relay, cmd)() or {}
        if cmd == "denials":
            inside, other = c.rbac_report()
            return {"start_window": len(inside), "other": other,
                    "first": inside[0] if inside else None}
        if cmd == "token":
            aud = words[3].split(",") if len(words) > 3 and words[3] else None
            secs = int(words[4]) if len(words) > 4 else 3600
            return {"token": c.token_request(words[1], words[2], aud, secs)}
        raise RuntimeError("unknown command " + cmd)
    try:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(300)
                line = b""
                while not line.endswith(b"\n"):
                    b = conn.recv(4096)
                    if not b:
                        break
                    line += b
                try:
                    res = {"ok": True, **handle(line.decode().split())}
                except Exception as e:  # reported to the caller
                    res = {"ok": False, "error": str(e)}
                conn.sendall((json.dumps(res) + "\n").encode())
    finally:
        srv.close()
        c.stop()
    return 0


def _ctl(argv):
    d, words = argv[0], argv[1:]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(300)
    s.connect(os.path.join(d, "ctl.sock"))
    s.sendall((" ".join(words) + "\n").encode())
    out = b""
    while not out.endswith(b"\n"):
        b = s.recv(65536)
        if not b:
            break
        out += b
    res = json.loads(out)
    if not res.pop("ok"):
        print("realk8s ctl %s: %s" % (" ".join(words), res["error"]), file=sys.stderr)
        return 1
    if "token" in res:
        print(res["token"])
    elif res:
        print(json.dumps(res))
    return 0


def attach(d):
    """An ApiClient for a cluster served by `realk8s.py serve d` (another process)."""
    with open(os.path.join(d, "cluster.json")) as f:
        st = json.load(f)
    return ApiClient(st["url"], st["ca"], st["admin_cert"], st["admin_key"])


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        sys.exit(_serve(sys.argv[2:]))
    if len(sys.argv) >= 4 and sys.argv[1] == "ctl":
        sys.exit(_ctl(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
