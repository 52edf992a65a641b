#!/usr/bin/python3
"""The built-in CA in config-directory mode (no Kubernetes).

1. The self-signed root is created in --caStateDir (ca-key.pem mode 0600) and comes back
   unchanged after a restart.
2. Without --kubeconfig there is no TokenReview: a JWT is UNAUTHENTICATED; a client
   certificate chaining to the root (here bootstrapped by hand with `openssl x509 -req`
   and the state directory's key) renews over TLS for exactly its identity, and drives
   ADS over TLS.
3. Without --secureGRPCAddr the CA is served on the plaintext port.
4. A plug-in CA directory (intermediate under an offline root, Istio's cacerts layout)
   wins over the state directory: the chain is leaf, intermediate, root and verifies
   against the plug-in root, as does the TLS serving certificate.

Skips (77) without grpcio or openssl.
"""
import os
import shutil
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import ca_kube as ck  # noqa: E402  (helpers: CSRs, CA calls, openssl, streams)
from ca_kube import check, grpc  # noqa: E402

SPIFFE = "spiffe://cluster.local/ns/default/sa/bootstrapped"


def start(work, name, args):
    """pilot-discovery on a fresh config directory; args(secure_port) gives the CA flags."""
    port = ec.free_port()
    p = ec.Pilot(workdir=os.path.join(work, name), extra_args=args(port))
    p.secure_port = port
    p.start()
    return p


def tls_channel(p, root, key=None, cert=None):
    creds = grpc.ssl_channel_credentials(root_certificates=root.encode(),
                                         private_key=key.encode() if key else None,
                                         certificate_chain=cert.encode() if cert else None)
    return grpc.secure_channel("127.0.0.1:%d" % p.secure_port, creds,
                               options=[("grpc.ssl_target_name_override", ck.ISTIOD_SAN)])


def openssl_ok(*args):
    rc, out = ck.openssl(*args)
    if rc != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], out))


def part_state_dir(work, protos):
    state = os.path.join(work, "state")

    def args(p):
        return ["--caStateDir", state, "--caCertsDir", os.path.join(work, "none"),
                "--secureGRPCAddr", "127.0.0.1:%d" % p]
    p = start(work, "p1", args)
    try:
        root = open(os.path.join(state, "root-cert.pem")).read()
        mode = stat.S_IMODE(os.stat(os.path.join(state, "ca-key.pem")).st_mode)
        check(mode == 0o600, "state directory ca-key.pem is mode 0600 (%o)" % mode)
        csr, key = ck.make_csr(work, "b1")
        code, _, det = ck.create_cert(tls_channel(p, root), csr, "tok-productpage")
        check(code == grpc.StatusCode.UNAUTHENTICATED and "TokenReview" in det,
              "config-directory mode without --kubeconfig: a JWT is UNAUTHENTICATED (%s)" % det)

        # The operator bootstraps one certificate with the root key; it then renews itself.
        ext = ck.write(os.path.join(work, "b1.ext"), "subjectAltName=critical,URI:%s\n" % SPIFFE)
        crt = os.path.join(work, "b1.crt")
        openssl_ok("x509", "-req", "-in", os.path.join(work, "b1.csr"), "-CA",
                   os.path.join(state, "root-cert.pem"), "-CAkey",
                   os.path.join(state, "ca-key.pem"), "-set_serial", "7", "-days", "1",
                   "-extfile", ext, "-out", crt)
        ch = tls_channel(p, root, key, open(crt).read())
        csr2, _ = ck.make_csr(work, "b2", "spiffe://cluster.local/ns/kube-system/sa/admin")
        code, chain, det = ck.create_cert(ch, csr2)
        check(code == grpc.StatusCode.OK, "renewal over TLS with the client certificate (%s)" % det)
        if chain:
            check(ck.sans(work, chain[0], "b2") == ["URI:" + SPIFFE],
                  "renewed certificate names the client certificate's identity only")
            ok, out = ck.verify(work, root, chain, "b2")
            check(ok, "renewed certificate verifies against the state root: " + out.strip())

        Node = protos.cls("envoy.config.core.v3.Node")
        Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
        Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
        n = Node(id="sidecar~10.1.0.9~boot-1.default~default.svc.cluster.local")
        n.metadata.fields["NAMESPACE"].string_value = "default"
        s = ck.Stream(ch, Req, Resp)
        s.send(Req(node=n, type_url=ck.T_CDS))
        r = s.recv()
        check(r is not None, "ADS over TLS with the bootstrapped client certificate (%s)" %
              (s.error and s.error.details()))
        s.close()
    finally:
        check(p.stop() == 0, "first run exits cleanly")

    def args_plain(p):
        return ["--caStateDir", state, "--caCertsDir", os.path.join(work, "none")]
    p = start(work, "p2", args_plain)
    try:
        check(open(os.path.join(state, "root-cert.pem")).read() == root,
              "the root in the state directory survives a restart")
        csr, _ = ck.make_csr(work, "b3")
        code, _, det = ck.create_cert(grpc.insecure_channel(p.target()), csr)
        check(code == grpc.StatusCode.UNAUTHENTICATED,
              "without --secureGRPCAddr the CA answers on the plaintext port (%s)" % code)
    finally:
        check(p.stop() == 0, "second run exits cleanly")


def part_plugin(work):
    d = os.path.join(work, "cacerts")
    os.makedirs(d)
    rk, rc_ = os.path.join(work, "plug-root.key"), os.path.join(d, "root-cert.pem")
    openssl_ok("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", rk, "-out", rc_, "-days", "30", "-subj", "/O=plug-in root",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ik = os.path.join(d, "ca-key.pem")
    icsr = os.path.join(work, "int.csr")
    openssl_ok("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", ik, "-out", icsr, "-subj", "/O=cluster.local/CN=Intermediate CA")
    ext = ck.write(os.path.join(work, "int.ext"),
                   "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    ic = os.path.join(d, "ca-cert.pem")
    openssl_ok("x509", "-req", "-in", icsr, "-CA", rc_, "-CAkey", rk, "-set_serial", "2",
               "-days", "30", "-extfile", ext, "-out", ic)
    ck.write(os.path.join(d, "cert-chain.pem"), open(ic).read() + open(rc_).read())
    plug_root = open(rc_).read()

    def args(p):
        return ["--caStateDir", os.path.join(work, "state"), "--caCertsDir", d,
                "--secureGRPCAddr", "127.0.0.1:%d" % p]
    p = start(work, "p3", args)
    try:
        # A leaf under the intermediate, made by hand, to authenticate the renewal.
        csr, key = ck.make_csr(work, "pl1")
        x = ck.write(os.path.join(work, "pl1.ext"), "subjectAltName=critical,URI:%s\n" % SPIFFE)
        crt = os.path.join(work, "pl1.crt")
        openssl_ok("x509", "-req", "-in", os.path.join(work, "pl1.csr"), "-CA", ic, "-CAkey", ik,
                   "-set_serial", "9", "-days", "1", "-extfile", x, "-out", crt)
        ch = tls_channel(p, plug_root, key, open(crt).read() + open(ic).read())
        code, chain, det = ck.create_cert(ch, ck.make_csr(work, "pl2")[0])
        check(code == grpc.StatusCode.OK,
              "the plug-in CA wins: TLS handshake and renewal against the plug-in root (%s)" % det)
        if chain:
            check(len(chain) == 3 and chain[-1].strip() == plug_root.strip(),
                  "plug-in chain is leaf, intermediate, root (%d entries)" % len(chain))
            ok, out = ck.verify(work, plug_root, chain, "pl2")
            check(ok, "plug-in leaf verifies against the plug-in root: " + out.strip())
    finally:
        check(p.stop() == 0, "plug-in run exits cleanly")


def main():
    if shutil.which("openssl") is None:
        ec.skip("openssl is not installed")
    work = tempfile.mkdtemp(prefix="ca-cfgdir-")
    protos = ec.Protos(work)
    part_state_dir(work, protos)
    part_plugin(work)
    print("%d failed" % len(ck.FAILS))
    if not ck.FAILS:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if ck.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
