#!/usr/bin/python3
"""Proxyless gRPC mTLS (gRFC A29) with gRPC C core's own xDS client and server (Debian's
python3-grpcio 1.51) and certificates our CA issued.

Setup: pilot-discovery with its CA in a state directory and a TLS port. For two SPIFFE
identities, spiffe://cluster.local/ns/e2e/sa/client and .../sa/greeter, a first
certificate is signed by hand with the state directory's root key (the operator's
bootstrap step, as in ca_cfgdir.py) and then renewed through CreateCertificate over TLS:
the certificates the gRPC processes use are the ones our CA returned. Each process gets a
bootstrap with the file_watcher certificate provider "default" (certificate_file,
private_key_file, ca_certificate_file, refresh_interval) and GENERATOR: grpc.

The mesh: Service greeter (namespace e2e) with one Pod (service account greeter) on a
127.0.0.x address, and a DestinationRule for it with tls mode ISTIO_MUTUAL.
  1. a gRPC server created with xds=True and xds_server_credentials(insecure fallback)
     on the Pod's address gets its server listener xds.istio.io/grpc/lds/inbound/<ip>:<port>
     with a DownstreamTlsContext requiring client certificates, and serves;
  2. a client with xds_channel_credentials dialing xds:///greeter.e2e.svc.cluster.local:<port>
     gets a cluster with an UpstreamTlsContext (SAN .../sa/greeter) and its calls succeed:
     the server sees the caller's SPIFFE identity in its auth context, over TLS;
  3. a plaintext client (no xDS, insecure channel) is refused by the server;
  4. a client whose certificate comes from a foreign CA fails;
  5. a client whose server holds another identity (SAN mismatch) fails;
  6. pilot-discovery counted no NACK.
Each gRPC process is a child of this script (one bootstrap per process: gRPC reads it once).
Skips (77) without openssl, or when python3-grpcio lacks the xDS credentials API.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

METHOD = "/e2e.Greeter/Hello"
NS = "e2e"
HOST = "greeter.%s.svc.cluster.local" % NS
TD = "cluster.local"
CLIENT_ID = "spiffe://%s/ns/%s/sa/client" % (TD, NS)
SERVER_ID = "spiffe://%s/ns/%s/sa/greeter" % (TD, NS)
OTHER_ID = "spiffe://%s/ns/%s/sa/impostor" % (TD, NS)
INBOUND = "xds.istio.io/grpc/lds/inbound/%s"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


# ---- the mesh ---------------------------------------------------------------------------------

def mesh_yaml(ip, port, other_ip, greeter_mode="ISTIO_MUTUAL"):
    """greeter (greeter_mode) on ip, and "decoy" (ISTIO_MUTUAL, pod service account
    greeter) on other_ip where a server with another identity will listen."""
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n" % NS]
    for name, addr in (("greeter", ip), ("decoy", other_ip)):
        docs.append("""apiVersion: v1
kind: Service
metadata: {name: %(n)s, namespace: %(ns)s}
spec:
  selector: {app: %(n)s}
  ports:
  - {name: grpc, port: %(p)d, targetPort: %(p)d, protocol: TCP}
""" % {"n": name, "ns": NS, "p": port})
        docs.append("""apiVersion: v1
kind: Pod
metadata: {name: %(n)s-1, namespace: %(ns)s, labels: {app: %(n)s}}
spec:
  serviceAccountName: greeter
  containers: [{name: app, image: example.invalid/app}]
status:
  phase: Running
  podIP: %(ip)s
  podIPs: [{ip: %(ip)s}]
  conditions: [{type: Ready, status: "True"}]
""" % {"n": name, "ns": NS, "ip": addr})
        docs.append("""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %(n)s-x
  namespace: %(ns)s
  labels: {kubernetes.io/service-name: %(n)s}
addressType: IPv4
ports: [{name: grpc, port: %(p)d, protocol: TCP}]
endpoints:
- addresses: ["%(ip)s"]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: %(n)s-1, namespace: %(ns)s}
""" % {"n": name, "ns": NS, "p": port, "ip": addr})
        docs.append("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %(n)s, namespace: %(ns)s}
spec:
  host: %(n)s
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    tls: {mode: %(m)s}
""" % {"n": name, "ns": NS, "m": greeter_mode if name == "greeter" else "ISTIO_MUTUAL"})
    return "---\n".join(docs)


def bootstrap(path, pilot_target, node_id, certs):
    doc = {
        "xds_servers": [{"server_uri": pilot_target, "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": node_id, "cluster": "e2e",
                 "metadata": {"GENERATOR": "grpc", "NAMESPACE": NS, "ISTIO_VERSION": "1.30.0"},
                 "locality": {"region": "r1", "zone": "z1"}},
        "server_listener_resource_name_template": INBOUND,
        "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {
            "certificate_file": certs["cert"], "private_key_file": certs["key"],
            "ca_certificate_file": certs["root"], "refresh_interval": "900s"}}},
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path


# ---- certificates ------------------------------------------------------------------------------

def issue(work, ck, p, root, state, name, spiffe):
    """A certificate for spiffe from our CA: hand-signed bootstrap, renewed by CreateCertificate.
    Returns {"cert", "key", "root"} file paths (the chain our CA returned, leaf first)."""
    _, key = ck.make_csr(work, name + "-boot")
    ext = ck.write(os.path.join(work, name + ".ext"), "subjectAltName=critical,URI:%s\n" % spiffe)
    crt = os.path.join(work, name + "-boot.crt")
    rc, out = ck.openssl("x509", "-req", "-in", os.path.join(work, name + "-boot.csr"),
                         "-CA", os.path.join(state, "root-cert.pem"),
                         "-CAkey", os.path.join(state, "ca-key.pem"), "-set_serial",
                         str(int(time.time() * 1000) % 100000), "-days", "1", "-extfile", ext,
                         "-out", crt)
    if rc != 0:
        raise RuntimeError("openssl x509 -req: " + out)
    creds = grpc.ssl_channel_credentials(root_certificates=root.encode(),
                                         private_key=key.encode(),
                                         certificate_chain=open(crt).read().encode())
    ch = grpc.secure_channel("127.0.0.1:%d" % p.secure_port, creds,
                             options=[("grpc.ssl_target_name_override", ck.ISTIOD_SAN)])
    csr, key2 = ck.make_csr(work, name)
    code, chain, det = ck.create_cert(ch, csr)
    ch.close()
    check(code == grpc.StatusCode.OK and chain, "CreateCertificate issued %s (%s)" % (spiffe, det))
    if not chain:
        return None
    check(ck.sans(work, chain[0], name) == ["URI:" + spiffe],
          "the issued certificate names %s" % spiffe)
    return {"cert": ck.write(os.path.join(work, name + ".crt"), "".join(chain[:-1]) or chain[0]),
            "key": ck.write(os.path.join(work, name + ".key"), key2),
            "root": ck.write(os.path.join(work, name + "-root.pem"), root)}


def foreign(work, ck, name, spiffe, our_root_file):
    """A key and certificate for spiffe from a CA no one trusts; our root as CA file."""
    fk, fc = os.path.join(work, "foreign-ca.key"), os.path.join(work, "foreign-ca.crt")
    for args in (["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", fk, "-out", fc, "-days", "2", "-subj", "/O=foreign",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"],):
        rc, out = ck.openssl(*args)
        if rc != 0:
            raise RuntimeError("openssl: " + out)
    ck.make_csr(work, name)
    ext = ck.write(os.path.join(work, name + ".ext"), "subjectAltName=critical,URI:%s\n" % spiffe)
    crt = os.path.join(work, name + ".crt")
    rc, out = ck.openssl("x509", "-req", "-in", os.path.join(work, name + ".csr"), "-CA", fc,
                         "-CAkey", fk, "-set_serial", "5", "-days", "1", "-extfile", ext,
                         "-out", crt)
    if rc != 0:
        raise RuntimeError("openssl: " + out)
    return {"cert": crt, "key": os.path.join(work, name + ".key"), "root": our_root_file}


# ---- the gRPC processes (children) -----------------------------------------------------------

def child_server(ip, port):
    from concurrent import futures

    def hello(req, ctx):
        ac = ctx.auth_context()
        out = {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in ac.items()}
        out["peer_identities"] = [v.decode() for v in (ctx.peer_identities() or [])]
        return json.dumps(out).encode()
    handler = grpc.method_handlers_generic_handler(
        "e2e.Greeter", {"Hello": grpc.unary_unary_rpc_method_handler(hello)})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4), xds=True,
                      options=[("grpc.so_reuseport", 0)])
    srv.add_generic_rpc_handlers((handler,))
    creds = grpc.xds_server_credentials(grpc.insecure_server_credentials())
    if srv.add_secure_port("%s:%d" % (ip, port), creds) == 0:
        print("cannot bind %s:%d" % (ip, port), flush=True)
        return 1
    srv.start()
    print("started", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: srv.stop(0))
    srv.wait_for_termination()
    return 0


def _insecure_channel_creds():
    # 1.51 keeps it under grpc.experimental; later releases export it at the top
    f = getattr(grpc, "insecure_channel_credentials", None)
    if f is None:
        from grpc import experimental
        f = experimental.insecure_channel_credentials
    return f()


def child_client(target, budget):
    """Calls until one succeeds or budget seconds pass; prints one JSON line."""
    creds = grpc.xds_channel_credentials(_insecure_channel_creds())
    ch = grpc.secure_channel(target, creds)
    stub = ch.unary_unary(METHOD)
    deadline = time.time() + budget
    res = {"ok": False, "code": None, "details": None, "calls": 0}
    while time.time() < deadline:
        res["calls"] += 1
        try:
            reply = stub(b"hi", timeout=max(1.0, min(5.0, deadline - time.time())))
            res.update(ok=True, reply=json.loads(reply.decode()))
            # a few more on the same channel
            for _ in range(5):
                stub(b"hi", timeout=5)
            res["more"] = 5
            break
        except grpc.RpcError as e:
            res.update(code=e.code().name, details=e.details())
            time.sleep(0.3)
    print("RESULT " + json.dumps(res), flush=True)
    ch.close()
    return 0


def spawn(work, name, boot, args):
    log = open(os.path.join(work, name + ".log"), "w")
    env = dict(os.environ, GRPC_XDS_BOOTSTRAP=boot)
    return subprocess.Popen([sys.executable, os.path.abspath(__file__)] + args, env=env,
                            stdout=log, stderr=subprocess.STDOUT), log.name


def run_client(work, name, boot, target, budget):
    proc, logname = spawn(work, name, boot, ["--client", target, str(budget)])
    try:
        proc.wait(timeout=budget + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    text = open(logname).read()
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:]), text
    return {"ok": False, "code": "NO RESULT", "details": text[-2000:]}, text


def wait_started(logname, proc, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "started" in open(logname).read():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the driver ---------------------------------------------------------------------------------

def main():
    if not hasattr(grpc, "xds_channel_credentials") or not hasattr(grpc, "xds_server_credentials"):
        ec.skip("python3-grpcio %s has no xds_channel_credentials/xds_server_credentials" %
                getattr(grpc, "__version__", "?"))
    if shutil.which("openssl") is None:
        ec.skip("openssl is not installed")
    import ca_kube as ck  # noqa: E402  (CSR, CreateCertificate, openssl helpers)
    import routing_config as rcfg  # noqa: E402
    work = tempfile.mkdtemp(prefix="grpc-mtls-")
    # two loopback addresses with one free port (the third is unused); offset from the
    # routing tests' range by the seed
    ips, port = rcfg.pick_backends(os.getpid() + 17)
    ip, other_ip = ips[0], ips[1]
    state = os.path.join(work, "state")
    secure = ec.free_port()
    pilot = ec.Pilot(workdir=os.path.join(work, "pilot"),
                     config_files={"mesh.yaml": mesh_yaml(ip, port, other_ip)},
                     extra_args=["--caStateDir", state, "--caCertsDir", os.path.join(work, "none"),
                                 "--secureGRPCAddr", "127.0.0.1:%d" % secure])
    pilot.secure_port = secure
    pilot.start()
    procs = []
    try:
        root = open(os.path.join(state, "root-cert.pem")).read()
        client = issue(work, ck, pilot, root, state, "client", CLIENT_ID)
        server = issue(work, ck, pilot, root, state, "greeter", SERVER_ID)
        impostor = issue(work, ck, pilot, root, state, "impostor", OTHER_ID)
        if not (client and server and impostor):
            return 1
        bad = foreign(work, ck, "foreign", CLIENT_ID, client["root"])

        sboot = bootstrap(os.path.join(work, "server.json"), pilot.target(),
                          "sidecar~%s~greeter-1.%s~%s.svc.cluster.local" % (ip, NS, NS), server)
        srv, slog = spawn(work, "server", sboot, ["--server", ip, str(port)])
        procs.append(srv)
        check(wait_started(slog, srv), "xDS-enabled gRPC server started on %s:%d" % (ip, port))
        iboot = bootstrap(os.path.join(work, "impostor.json"), pilot.target(),
                          "sidecar~%s~decoy-1.%s~%s.svc.cluster.local" % (other_ip, NS, NS),
                          impostor)
        isrv, ilog = spawn(work, "impostor-server", iboot, ["--server", other_ip, str(port)])
        procs.append(isrv)
        check(wait_started(ilog, isrv), "impostor server started on %s:%d" % (other_ip, port))

        cboot = bootstrap(os.path.join(work, "client.json"), pilot.target(),
                          "sidecar~127.0.0.99~client-1.%s~%s.svc.cluster.local" % (NS, NS), client)
        target = "xds:///%s:%d" % (HOST, port)
        t0 = time.time()
        res, text = run_client(work, "client", cboot, target, 25)
        rep = res.get("reply") or {}
        print("mTLS client: ok %s, calls %s, %s; server auth context: %s" % (
            res["ok"], res["calls"], res.get("details"),
            {k: v for k, v in rep.items() if "pem" not in k}))
        check(res["ok"], "xDS client with xds_channel_credentials calls %s over mTLS (%.1fs)" %
              (target, time.time() - t0))
        check(rep.get("transport_security_type") in (["tls"], ["ssl"]),
              "the server saw a TLS connection (%s)" % rep.get("transport_security_type"))
        ids = rep.get("peer_identities", []) + rep.get("x509_subject_alternative_name", [])
        check(CLIENT_ID in ids, "the server read the caller's SPIFFE identity %s (%s)" %
              (CLIENT_ID, ids))
        check(res.get("more") == 5, "further calls on the channel succeed")

        # a plaintext client straight to the server's address: refused
        ch = grpc.insecure_channel("%s:%d" % (ip, port))
        try:
            ch.unary_unary(METHOD)(b"hi", timeout=5)
            check(False, "plaintext client refused by the mTLS server (it answered)")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAVAILABLE,
                  "plaintext client refused by the mTLS server (%s: %s)" % (e.code().name,
                                                                            e.details()))
        ch.close()

        # a client certificate from a foreign CA: the server rejects the handshake
        fboot = bootstrap(os.path.join(work, "foreign.json"), pilot.target(),
                          "sidecar~127.0.0.98~client-2.%s~%s.svc.cluster.local" % (NS, NS), bad)
        res, _ = run_client(work, "foreign", fboot, target, 6)
        print("foreign client: %s" % json.dumps(res)[:400])
        check(not res["ok"] and res.get("code") == "UNAVAILABLE",
              "client with a foreign-CA certificate fails (%s: %s)" % (res.get("code"),
                                                                      res.get("details")))

        # the decoy's server holds identity impostor, not the service's greeter: the
        # client's SAN check refuses it
        res, _ = run_client(work, "san", cboot, "xds:///decoy.%s.svc.cluster.local:%d" % (NS, port), 6)
        print("SAN mismatch client: %s" % json.dumps(res)[:400])
        check(not res["ok"] and res.get("code") == "UNAVAILABLE",
              "server identity outside the cluster's SANs is refused (%s: %s)" %
              (res.get("code"), res.get("details")))

        # the rule now says DISABLE: the server's listener turns plaintext (an LDS push on a
        # DestinationRule change), and the plaintext client gets through
        tmp = os.path.join(work, ".mesh.yaml.tmp")
        with open(tmp, "w") as f:
            f.write(mesh_yaml(ip, port, other_ip, "DISABLE"))
        os.rename(tmp, os.path.join(pilot.config_dir, "mesh.yaml"))
        t0 = time.time()
        got = None
        ch = grpc.insecure_channel("%s:%d" % (ip, port))
        while time.time() - t0 < 15 and got is None:
            try:
                got = json.loads(ch.unary_unary(METHOD)(b"hi", timeout=2).decode())
            except grpc.RpcError:
                time.sleep(0.3)
        ch.close()
        check(got is not None and "peer_spiffe_id" not in got,
              "after the rule changes to DISABLE a plaintext client is served (%.1fs, %s)" %
              (time.time() - t0, got and got.get("transport_security_type")))

        check(pilot.metric("pilot_total_xds_rejects") == 0, "no xDS resource was NACKed")
    finally:
        for p in procs:
            stop(p)
        code = pilot.stop()
        if code != 0:
            failures.append("pilot-discovery clean exit (%d)" % code)
    if failures:
        logs = ""
        for name in ("server", "impostor-server", "client", "foreign", "san"):
            path = os.path.join(work, name + ".log")
            if os.path.exists(path):
                logs += "--- %s ---\n%s\n" % (name, open(path).read()[-3000:])
        print("\n%d failures:\n  %s\n%s--- pilot log ---\n%s" %
              (len(failures), "\n  ".join(failures), logs, pilot.read_log()))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--server":
        sys.exit(child_server(sys.argv[2], int(sys.argv[3])))
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        sys.exit(child_client(sys.argv[2], float(sys.argv[3])))
    sys.exit(main())
