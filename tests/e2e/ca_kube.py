#!/usr/bin/python3
"""The built-in CA end to end, pilot-discovery --kubeconfig at a REAL kube-apiserver + etcd
(tests/k8s/realk8s.py, binaries from $PILOT_PEERS_BIN; RBAC on), authenticated only by a
bound token of istio-system/istiod, so every Secret, ConfigMap and TokenReview request is
judged by the real RBAC authorizer against manifests/02-rbac.yaml. Workload tokens come
from the TokenRequest API (POST .../serviceaccounts/NAME/token) and are reviewed by the
real TokenReview.

1. CreateCertificate on the plaintext port (no --secureGRPCAddr): a bound token of
   default/bookinfo-productpage for audience istio-ca gets a certificate for exactly its
   own SPIFFE identity, even when its CSR asks for another (also with audiences [istio-ca,
   other]); it verifies against the root in Secret istio-ca-secret (`openssl verify`,
   `openssl x509 -ext subjectAltName`); missing, garbage, wrong-audience (the API
   server's own audience), deleted-ServiceAccount and non-service-account (a static
   token of user alice) tokens are UNAUTHENTICATED; a TTL over MAX_WORKLOAD_CERT_TTL and a
   garbage CSR are INVALID_ARGUMENT and the server keeps serving; the citadel_server_*
   metrics count it all.
2. A restart with --secureGRPCAddr: the root comes back from the Secret; raw ADS over TLS
   (grpc.secure_channel; gRPC 1.51's xDS bootstrap has no "tls" channel_creds) works with
   a client certificate our CA issued and with a JWT alone, is UNAUTHENTICATED with
   neither, PERMISSION_DENIED when the node claims another namespace, and a client
   certificate from a foreign CA fails the handshake; the CA renews over TLS with the
   client certificate alone and is not served on the plaintext port.
3. Root distribution: ConfigMap istio-ca-root-cert in every namespace but kube-public and
   kube-node-lease; back after `kubectl delete`, restored after an edit, created in a new
   namespace.
4. Rotation: an imported root with less than 20% of its life left is renewed (same key)
   at the first check; the Secret, every ConfigMap and the expiry metric follow, and a
   certificate issued under the old root verifies against the new one.
No request of pilot-discovery's is refused by RBAC (no 403 in its logs).

Skips (77) without grpcio, openssl or $PILOT_PEERS_BIN's binaries.
"""
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
import e2e_common as ec  # noqa: E402
import realk8s  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

CA_METHOD = "/istio.v1.auth.IstioCertificateService/CreateCertificate"
SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ISTIOD_SAN = "istiod.istio-system.svc"
WORKLOAD = "system:serviceaccount:default:bookinfo-productpage"
SPIFFE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
# Filled by ApiServer from the TokenRequest API (and a static token for the user).
TOKENS = {}
ALICE_TOKEN = "alice-static-token-0123456789"
EXCLUDED = ("kube-public", "kube-node-lease")

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def poll(fn, timeout=20.0, step=0.2):
    """fn() until truthy or the deadline; returns the last value."""
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = fn()
    return v


# ---- the CA messages, encoded by hand (three fields) -----------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ca_request(csr, ttl=0):
    b = csr.encode() if isinstance(csr, str) else csr
    msg = b"\x0a" + _varint(len(b)) + b
    if ttl:
        msg += b"\x18" + _varint(ttl)
    return msg


def ca_response(data):
    chain, i = [], 0
    while i < len(data):
        key = data[i]
        i += 1
        n, shift = 0, 0
        while True:
            c = data[i]
            i += 1
            n |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
        if key != 0x0a:
            raise ValueError("unexpected field in IstioCertificateResponse")
        chain.append(data[i:i + n].decode())
        i += n
    return chain


def create_cert(channel, csr, token=None, ttl=0):
    """Returns (status code, chain or None, details)."""
    call = channel.unary_unary(CA_METHOD)
    md = [("authorization", "Bearer " + TOKENS.get(token, token))] if token else None
    try:
        resp = call(ca_request(csr, ttl), metadata=md, timeout=15)
        return grpc.StatusCode.OK, ca_response(resp), ""
    except grpc.RpcError as e:
        return e.code(), None, e.details() or ""


# ---- openssl ----------------------------------------------------------------------------------

def openssl(*args, inp=None):
    r = subprocess.run(["openssl"] + list(args), input=inp.encode() if inp is not None else None,
                       capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def make_csr(work, name, san_uri=None):
    key = os.path.join(work, name + ".key")
    csr = os.path.join(work, name + ".csr")
    args = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-subj", "/O=cluster.local", "-out", csr]
    if san_uri:
        args += ["-addext", "subjectAltName=URI:" + san_uri]
    rc, out = openssl(*args)
    if rc != 0:
        raise RuntimeError("openssl req: " + out)
    with open(csr) as f, open(key) as k:
        return f.read(), k.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def verify(work, root_pem, chain, name):
    """openssl verify of the leaf against root_pem (intermediates untrusted)."""
    root = write(os.path.join(work, name + "-root.pem"), root_pem)
    leaf = write(os.path.join(work, name + "-leaf.pem"), chain[0])
    args = ["verify", "-CAfile", root]
    if len(chain) > 2:
        args += ["-untrusted", write(os.path.join(work, name + "-mid.pem"),
                                     "".join(chain[1:-1]))]
    rc, out = openssl(*(args + [leaf]))
    return rc == 0, out


def sans(work, pem, name):
    path = write(os.path.join(work, name + "-san.pem"), pem)
    _, out = openssl("x509", "-in", path, "-noout", "-ext", "subjectAltName")
    return [s.strip() for s in out.splitlines()[1:] for s in s.split(",") if s.strip()]


def not_after(work, pem, name):
    path = write(os.path.join(work, name + "-na.pem"), pem)
    _, out = openssl("x509", "-in", path, "-noout", "-enddate")
    from email.utils import parsedate_to_datetime
    return parsedate_to_datetime(out.strip().split("=", 1)[1].replace(" GMT", " +0000")
                                 ).timestamp()


# ---- the real API server and the control plane ----------------------------------------------

class ApiServer:
    """A realk8s cluster with istiod's RBAC and the workload tokens of TOKENS."""

    def __init__(self, work):
        self.work = work
        self.k8s = realk8s.Cluster(work=os.path.join(work, "k8s"), static_tokens={
            ALICE_TOKEN: ("alice", "uid-alice", ["developers"])})
        print("against " + self.k8s.banner(), flush=True)
        self.k8s.start()
        print("     cluster up in %.1f s" % self.k8s.startup_s, flush=True)
        self.k8s.install_istio(crds=False)
        self.kubeconfig = self.k8s.istiod_kubeconfig()
        self.k8s.ensure_service_account("default", "bookinfo-productpage")
        self.k8s.ensure_service_account("default", "doomed")
        tr = self.k8s.token_request
        TOKENS["tok-productpage"] = tr("default", "bookinfo-productpage", ["istio-ca"])
        TOKENS["tok-two-aud"] = tr("default", "bookinfo-productpage", ["other", "istio-ca"])
        TOKENS["tok-other-aud"] = tr("default", "bookinfo-productpage", [realk8s.ISSUER])
        TOKENS["tok-doomed"] = tr("default", "doomed", ["istio-ca"])
        TOKENS["tok-alice"] = ALICE_TOKEN
        TOKENS["not-a-known-token"] = "not-a-known-token"

    def req(self, method, path, body=None):
        return self.k8s.api.request(method, path, body)

    def get(self, path):
        st, obj = self.req("GET", path)
        return obj if st == 200 else None

    def kubectl(self, *args, inp=None):
        return self.k8s.kubectl(*args, inp=inp, check=False)

    def create_namespace(self, name):
        return self.kubectl("create", "namespace", name)

    def stop(self):
        self.k8s.stop()


class KubePilot:
    def __init__(self, work, api, name, secure=False, env=None):
        self.exe = os.path.join(ec.env_path("PILOT_BUILD"), "pilot", "pilot-discovery")
        if not os.path.exists(self.exe):
            ec.skip("%s not built" % self.exe)
        self.grpc_port, self.http_port, self.mon_port = (ec.free_port() for _ in range(3))
        self.secure_port = ec.free_port() if secure else 0
        self.log_path = os.path.join(work, name + ".log")
        self.log = open(self.log_path, "w")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--kubeconfig", api.kubeconfig,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port,
             "--caCertsDir", os.path.join(work, "no-cacerts"),
             "--secureGRPCAddr", "127.0.0.1:%d" % self.secure_port if secure else ""],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("pilot-discovery exited:\n" + self.read_log())
            try:
                return ec.http_get("http://127.0.0.1:%d/ready" % self.http_port, 1)[0] == 200
            except OSError:
                return False
        if not poll(ready, 30, 0.1):
            raise RuntimeError("pilot-discovery not ready:\n" + self.read_log())

    def metric(self, name):
        _, text = ec.http_get("http://127.0.0.1:%d/metrics" % self.mon_port)
        for line in text.splitlines():
            if line.split("{")[0].split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
        return None

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()[-5000:]

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        self.log.close()
        check(rc == 0, "pilot-discovery exits cleanly on SIGTERM (rc %d)" % rc)


def Stream(channel, req_cls, resp_cls, metadata=None):
    """One SotW ADS stream with call metadata (30 s deadline); recv waits 10 s by default."""
    return ec.AdsStream(channel, SOTW, req_cls, resp_cls, metadata=metadata, timeout=30,
                        recv_timeout=10.0)


def secret_root(api):
    s = api.get("/api/v1/namespaces/istio-system/secrets/istio-ca-secret")
    if not s:
        return None, None
    return s, base64.b64decode(s["data"]["root-cert.pem"]).decode()


def configmaps_ok(api, root):
    """Namespaces whose ConfigMap is missing or wrong (empty list = all good)."""
    bad = []
    for ns in api.get("/api/v1/namespaces")["items"]:
        name = ns["metadata"]["name"]
        cm = api.get("/api/v1/namespaces/%s/configmaps/istio-ca-root-cert" % name)
        if name in EXCLUDED:
            if cm is not None:
                bad.append(name + " (excluded, but has one)")
            continue
        if cm is None:
            bad.append(name + " (missing)")
        elif (cm.get("data") or {}).get("root-cert.pem") != root or \
                (cm["metadata"].get("labels") or {}).get("istio.io/config") != "true":
            bad.append(name + " (wrong)")
    return bad


# ---- the parts --------------------------------------------------------------------------------

def part_ca(work, api, pilot):
    ch = grpc.insecure_channel("127.0.0.1:%d" % pilot.grpc_port)
    secret, root = secret_root(api)
    check(secret is not None and secret.get("type") == "istio.io/ca-root",
          "Secret istio-system/istio-ca-secret created, type istio.io/ca-root")
    if secret is None:
        return None
    data = secret["data"]
    check(set(data) == {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem",
                        "key.pem"} and data["cert-chain.pem"] == "" and data["key.pem"] == "",
          "the Secret holds Istio's five keys, cert-chain.pem and key.pem empty")

    csr, key = make_csr(work, "w1", "spiffe://cluster.local/ns/kube-system/sa/admin")
    code, chain, det = create_cert(ch, csr, "tok-productpage")
    check(code == grpc.StatusCode.OK and chain and len(chain) >= 2,
          "workload token: certificate issued (%s %s)" % (code, det))
    if not chain:
        return None
    ok, out = verify(work, root, chain, "w1")
    check(ok, "openssl verify of the leaf against root-cert.pem of the Secret: " + out.strip())
    check(chain[-1].strip() == root.strip(), "the chain ends with the root")
    s = sans(work, chain[0], "w1")
    check(s == ["URI:" + SPIFFE],
          "the only SAN is the caller's identity, not the CSR's kube-system/admin: %s" % s)

    code, _, det = create_cert(ch, csr)
    check(code == grpc.StatusCode.UNAUTHENTICATED, "no token: UNAUTHENTICATED (%s)" % det)
    code, _, det = create_cert(ch, csr, "not-a-known-token")
    check(code == grpc.StatusCode.UNAUTHENTICATED, "unknown token: UNAUTHENTICATED (%s)" % det)
    code, _, det = create_cert(ch, csr, "tok-other-aud")
    check(code == grpc.StatusCode.UNAUTHENTICATED,
          "token for another audience: UNAUTHENTICATED (%s)" % det)
    code, _, det = create_cert(ch, csr, "tok-alice")
    check(code == grpc.StatusCode.UNAUTHENTICATED,
          "a user (not a service account) token: UNAUTHENTICATED (%s)" % det)
    code, chain3, det = create_cert(ch, csr, "tok-two-aud")
    check(code == grpc.StatusCode.OK and chain3 and sans(work, chain3[0], "w1b") ==
          ["URI:" + SPIFFE], "a token for audiences [other, istio-ca]: issued (%s %s)" %
          (code, det))
    code, chain3, det = create_cert(ch, csr, "tok-doomed")
    check(code == grpc.StatusCode.OK, "ServiceAccount doomed's token: issued (%s %s)" %
          (code, det))
    st, _ = api.req("DELETE", "/api/v1/namespaces/default/serviceaccounts/doomed")
    check(st == 200, "ServiceAccount doomed deleted (HTTP %d)" % st)
    # The API server caches a token's authentication for 10 s, so the deletion shows
    # within that (bounded) time.
    t0 = time.time()
    res = poll(lambda: (lambda r: r if r[0] == grpc.StatusCode.UNAUTHENTICATED else None)(
        create_cert(ch, csr, "tok-doomed")), 20, 0.5)
    check(res is not None, "the token of a deleted ServiceAccount: UNAUTHENTICATED after "
          "%.1f s (%s)" % (time.time() - t0, res and res[2]))
    code, _, det = create_cert(ch, csr, "tok-productpage", ttl=91 * 24 * 3600)
    check(code == grpc.StatusCode.INVALID_ARGUMENT,
          "TTL above MAX_WORKLOAD_CERT_TTL refused: INVALID_ARGUMENT (%s)" % det)
    code, _, det = create_cert(ch, "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n"
                               "-----END CERTIFICATE REQUEST-----\n", "tok-productpage")
    check(code == grpc.StatusCode.INVALID_ARGUMENT, "garbage CSR: INVALID_ARGUMENT (%s)" % det)
    code, chain2, det = create_cert(ch, csr, "tok-productpage", ttl=3600)
    check(code == grpc.StatusCode.OK, "the server keeps serving after bad requests (%s)" % det)
    if chain2:
        na = not_after(work, chain2[0], "w1h")
        check(abs(na - time.time() - 3600) < 300, "validity_duration 3600 honoured")

    check((pilot.metric("citadel_server_csr_count") or 0) >= 11, "citadel_server_csr_count counts")
    check((pilot.metric("citadel_server_success_cert_issuance_count") or 0) >= 4,
          "citadel_server_success_cert_issuance_count counts")
    check((pilot.metric("citadel_server_authentication_failure_count") or 0) >= 5,
          "citadel_server_authentication_failure_count counts")
    exp = pilot.metric("citadel_server_root_cert_expiry_timestamp") or 0
    check(abs(exp - not_after(work, root, "root")) < 2,
          "citadel_server_root_cert_expiry_timestamp is the root's notAfter")
    return root


def part_tls(work, api, pilot, root, protos):
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    _, root2 = secret_root(api)
    check(root2 == root, "after a restart the root comes back from the Secret")
    target = "127.0.0.1:%d" % pilot.secure_port
    opts = [("grpc.ssl_target_name_override", ISTIOD_SAN)]

    def chan(key=None, cert=None, trust=root):
        creds = grpc.ssl_channel_credentials(root_certificates=trust.encode(),
                                             private_key=key.encode() if key else None,
                                             certificate_chain=cert.encode() if cert else None)
        return grpc.secure_channel(target, creds, options=opts)

    def node(ns="default", sa="bookinfo-productpage"):
        n = Node(id="sidecar~10.1.0.7~productpage-v1-1.%s~%s.svc.cluster.local" % (ns, ns))
        n.metadata.fields["NAMESPACE"].string_value = ns
        n.metadata.fields["SERVICE_ACCOUNT"].string_value = sa
        return n

    def ads(channel, n, md=None):
        s = Stream(channel, Req, Resp, md)
        s.send(Req(node=n, type_url=T_CDS))
        r = s.recv()
        err = s.error
        s.close()
        return r, err

    # A client certificate from our CA, over TLS with the JWT (what istio-agent does first).
    tls_plain = chan()
    csr, key = make_csr(work, "w2")
    code, chain, det = create_cert(tls_plain, csr, "tok-productpage")
    check(code == grpc.StatusCode.OK, "CreateCertificate over TLS with a JWT (%s)" % det)
    if not chain:
        return
    cert = "".join(chain[:-1])
    ch_cert = chan(key, cert)

    code, chain2, det = create_cert(ch_cert, make_csr(work, "w3")[0])
    check(code == grpc.StatusCode.OK and sans(work, chain2[0], "w3") == ["URI:" + SPIFFE],
          "renewal with the client certificate alone gives the same identity (%s)" % det)
    code, _, det = create_cert(grpc.insecure_channel("127.0.0.1:%d" % pilot.grpc_port), csr,
                               "tok-productpage")
    check(code == grpc.StatusCode.UNIMPLEMENTED,
          "with a TLS port the plaintext port does not serve the CA (%s)" % code)

    r, err = ads(ch_cert, node())
    check(r is not None and r.type_url == T_CDS,
          "ADS over TLS with a client certificate: CDS answered (%s)" % (err and err.details()))
    r, err = ads(tls_plain, node(), [("authorization", "Bearer " + TOKENS["tok-productpage"])])
    check(r is not None and r.type_url == T_CDS,
          "ADS over TLS with a JWT only: CDS answered (%s)" % (err and err.details()))
    r, err = ads(tls_plain, node())
    check(r is None and err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED,
          "ADS over TLS without credentials: UNAUTHENTICATED (%s)" % (err and err.details()))
    r, err = ads(tls_plain, node(), [("authorization", "Bearer not-a-known-token")])
    check(r is None and err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED,
          "ADS over TLS with a bad JWT: UNAUTHENTICATED (%s)" % (err and err.details()))
    r, err = ads(ch_cert, node(ns="istio-system"))
    check(r is None and err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED
          and "no identities" in (err.details() or ""),
          "node claiming another namespace: PERMISSION_DENIED (%s)" % (err and err.details()))
    r, err = ads(ch_cert, node(sa="reviews"))
    check(r is None and err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED,
          "node claiming another service account: PERMISSION_DENIED (%s)" %
          (err and err.details()))

    # A client certificate from a CA we do not trust: the handshake fails.
    fk = os.path.join(work, "foreign.key")
    fc = os.path.join(work, "foreign.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", fk, "-out", fc, "-days", "1", "-subj", "/O=cluster.local",
            "-addext", "subjectAltName=URI:" + SPIFFE)
    r, err = ads(chan(open(fk).read(), open(fc).read()), node())
    check(r is None and err is not None and err.code() == grpc.StatusCode.UNAVAILABLE,
          "a client certificate from a foreign CA is refused at the handshake (%s)" %
          (err and err.code()))

    # The server certificate: our CA, istiod's names.
    rc, out = openssl("s_client", "-connect", target, "-servername", ISTIOD_SAN, "-alpn", "h2",
                      inp="")
    pem = out[out.find("-----BEGIN CERTIFICATE-----"):out.find("-----END CERTIFICATE-----") + 25]
    s = sans(work, pem, "srv") if pem.startswith("-----BEGIN") else []
    check("DNS:" + ISTIOD_SAN in s and "DNS:istiod.istio-system.svc.cluster.local" in s and
          "DNS:istiod" in s, "serving certificate names istiod: %s" % s)
    ok, vout = verify(work, root, [pem, root], "srv")
    check(ok, "serving certificate verifies against our root")

    r, err = ads(grpc.insecure_channel("127.0.0.1:%d" % pilot.grpc_port), node(ns="anything"))
    check(r is not None, "the plaintext port stays unauthenticated (%s)" %
          (err and err.details()))


def part_configmaps(api, root):
    poll(lambda: not configmaps_ok(api, root), 20)
    bad = configmaps_ok(api, root)
    check(not bad, "istio-ca-root-cert in every namespace but kube-public/kube-node-lease %s" %
          bad)
    rc, out = api.kubectl("delete", "configmap", "istio-ca-root-cert", "-n", "default")
    check(rc == 0, "kubectl delete configmap istio-ca-root-cert -n default: " + out.strip())
    back = poll(lambda: api.get("/api/v1/namespaces/default/configmaps/istio-ca-root-cert"), 20)
    check(back is not None and back["data"]["root-cert.pem"] == root,
          "the deleted ConfigMap comes back")
    cm = api.get("/api/v1/namespaces/kube-system/configmaps/istio-ca-root-cert")
    if cm:
        cm["data"]["root-cert.pem"] = "tampered"
        st, _ = api.req("PUT", "/api/v1/namespaces/kube-system/configmaps/istio-ca-root-cert", cm)
        check(st == 200, "tampered with kube-system's ConfigMap")
        fixed = poll(lambda: (api.get("/api/v1/namespaces/kube-system/configmaps/"
                                      "istio-ca-root-cert") or {}).get("data", {})
                     .get("root-cert.pem") == root, 20)
        check(fixed, "an edited ConfigMap is restored")
    rc, out = api.create_namespace("fresh-ns")
    check(rc == 0, "kubectl apply of Namespace fresh-ns: " + out.strip())
    new = poll(lambda: api.get("/api/v1/namespaces/fresh-ns/configmaps/istio-ca-root-cert"), 20)
    check(new is not None and new["metadata"]["labels"].get("istio.io/config") == "true",
          "a new namespace gets the ConfigMap, labelled istio.io/config=true")


def old_root_secret(api, work):
    """Replaces istio-ca-secret with a root 9 days into a 10-day life (rotation due)."""
    try:
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec as cec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = cec.generate_private_key(cec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=9))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    cpem = cert.public_bytes(serialization.Encoding.PEM).decode()
    kpem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    b = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    api.req("DELETE", "/api/v1/namespaces/istio-system/secrets/istio-ca-secret")
    st, _ = api.req("POST", "/api/v1/namespaces/istio-system/secrets", {
        "apiVersion": "v1", "kind": "Secret", "type": "istio.io/ca-root",
        "metadata": {"name": "istio-ca-secret", "namespace": "istio-system"},
        "data": {"ca-cert.pem": b(cpem), "ca-key.pem": b(kpem), "root-cert.pem": b(cpem),
                 "cert-chain.pem": "", "key.pem": ""}})
    # A workload certificate issued under this root, to check it survives the rotation.
    lkey = cec.generate_private_key(cec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(name)
            .public_key(lkey.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=20))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(SPIFFE)]),
                           critical=True)
            .sign(key, hashes.SHA256()))
    lpem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    return (cpem, lpem) if st == 201 else None


def part_rotation(work, api):
    got = old_root_secret(api, work)
    if got is None:
        print("skip rotation part: python3-cryptography missing or the Secret write failed")
        return
    old, old_leaf = got
    pilot = KubePilot(work, api, "pilot-rot",
                      env={"CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL": "500ms"})
    try:
        new = poll(lambda: (secret_root(api)[1] or old) != old and secret_root(api)[1], 20)
        check(bool(new), "the root near its end is rotated and written back to the Secret")
        if not new:
            return
        check(not_after(work, new, "new") > time.time() + 9 * 365 * 86400,
              "the new root lives ten years")
        good = poll(lambda: not configmaps_ok(api, new), 20)
        check(good, "every ConfigMap carries the rotated root %s" % configmaps_ok(api, new))
        exp = poll(lambda: abs((pilot.metric("citadel_server_root_cert_expiry_timestamp") or 0)
                               - not_after(work, new, "new2")) < 2, 10)
        check(exp, "citadel_server_root_cert_expiry_timestamp follows the rotation")
        # A certificate signed by the old root (same key) still verifies with the new one.
        ch = grpc.insecure_channel("127.0.0.1:%d" % pilot.grpc_port)
        code, chain, det = create_cert(ch, make_csr(work, "w4")[0], "tok-productpage")
        check(code == grpc.StatusCode.OK, "issuing after rotation (%s)" % det)
        if chain:
            ok, out = verify(work, new, chain, "w4")
            check(ok, "the new leaf verifies against the rotated root: " + out.strip())
        ok, out = verify(work, new, [old_leaf, new], "w5")
        check(ok, "a leaf issued under the old root verifies against the rotated one "
                  "(same key): " + out.strip())
    finally:
        pilot.stop()


def main():
    if shutil.which("openssl") is None:
        ec.skip("openssl is not installed")
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="ca-kube-")
    protos = ec.Protos(work)
    api = None
    pilots = []
    try:
        api = ApiServer(work)
        ns = api.get("/api/v1/namespaces/istio-system")
        check(ns is not None, "Namespace istio-system applied (manifests/00-namespace.yaml)")
        a = KubePilot(work, api, "pilot-a")
        pilots.append(a)
        root = part_ca(work, api, a)
        pilots.remove(a)
        a.stop()
        if root is None:
            return 1
        b = KubePilot(work, api, "pilot-b", secure=True)
        pilots.append(b)
        part_tls(work, api, b, root, protos)
        part_configmaps(api, root)
        pilots.remove(b)
        b.stop()
        part_rotation(work, api)
        check(*api.k8s.rbac_verdict())
    except SystemExit:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as e:  # reported with the logs below
        import traceback
        traceback.print_exc()
        FAILS.append("exception: %s" % e)
    finally:
        for p in pilots:
            p.stop()
        if api is not None:
            api.stop()
        if FAILS:
            for p in ("pilot-a", "pilot-b", "pilot-rot"):
                path = os.path.join(work, p + ".log")
                if os.path.exists(path):
                    print("--- %s (tail)" % p)
                    print(open(path).read()[-3000:])
    print("%d failed (%.0f s)" % (len(FAILS), time.time() - t0))
    if not FAILS:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
