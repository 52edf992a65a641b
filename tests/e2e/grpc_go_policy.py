#!/usr/bin/python3
"""Mesh security between two proxyless workloads with grpc-go (tests/peers/grpcxds) on both
sides, from what we serve, with no DestinationRule at all:
- auto mTLS: the server's pod says security.istio.io/tlsMode: istio, so (PERMISSIVE, the
  default) its listener requires mTLS and our client cluster uses it: grpc-go's client gets
  through, a plaintext caller is refused;
- a namespace PeerAuthentication DISABLE turns both sides plaintext (the plaintext caller
  is served), and STRICT turns mTLS back on;
- an AuthorizationPolicy DENY naming one caller's identity refuses that caller
  (PermissionDenied, from the RBAC filter gRPC's server runs) and lets the other through.
Edits are written to the watched config directory while the workloads stay connected.
"""
import json
import os
import shutil
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
import grpc_mtls as gm  # noqa: E402  (bootstrap and certificate helpers)

failures = []
CLIENT2_ID = "spiffe://%s/ns/%s/sa/client2" % (gm.TD, gm.NS)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def mesh_yaml(ip, port, extra=""):
    return """apiVersion: v1
kind: Namespace
metadata: {name: %(ns)s}
---
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: %(ns)s}
spec:
  selector: {app: greeter}
  ports:
  - {name: grpc, port: %(p)d, targetPort: %(p)d, protocol: TCP}
---
apiVersion: v1
kind: Pod
metadata:
  name: greeter-1
  namespace: %(ns)s
  labels: {app: greeter, security.istio.io/tlsMode: istio}
spec:
  serviceAccountName: greeter
  containers: [{name: app, image: example.invalid/app}]
status:
  phase: Running
  podIP: %(ip)s
  podIPs: [{ip: %(ip)s}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: greeter-x
  namespace: %(ns)s
  labels: {kubernetes.io/service-name: greeter}
addressType: IPv4
ports: [{name: grpc, port: %(p)d, protocol: TCP}]
endpoints:
- addresses: ["%(ip)s"]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: greeter-1, namespace: %(ns)s}
""" % {"ns": gm.NS, "p": port, "ip": ip} + extra


def pa(mode):
    return """---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: %s}
spec:
  mtls: {mode: %s}
""" % (gm.NS, mode)


DENY_CLIENT2 = """---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client2, namespace: %s}
spec:
  selector: {matchLabels: {app: greeter}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["%s/ns/%s/sa/client2"]}
""" % (gm.NS, gm.TD, gm.NS)


def write_config(pilot, work, text):
    tmp = os.path.join(work, ".mesh.yaml.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(pilot.config_dir, "mesh.yaml"))


def call_go(grpcxds, boot, port, n=5):
    p = subprocess.run([grpcxds, "client", "--bootstrap", boot, "--target",
                        "xds:///%s:%d" % (gm.HOST, port), "-n", str(n), "--timeout", "5s"],
                       capture_output=True, text=True, timeout=120)
    out = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    return out, p.stderr[-400:]


def call_plain(ip, port):
    """None when served, else the status code name."""
    ch = grpc.insecure_channel("%s:%d" % (ip, port))
    try:
        ch.unary_unary(gm.METHOD)(b"hi", timeout=3)
        return None
    except grpc.RpcError as e:
        return e.code().name
    finally:
        ch.close()


def until(fn, want, secs=20):
    """Polls fn() until it returns want (the listener follows a push); returns the last."""
    t0 = time.time()
    got = fn()
    while got != want and time.time() - t0 < secs:
        time.sleep(0.5)
        got = fn()
    return got


def main():
    peers = os.environ.get("PILOT_PEERS_BIN", "")
    grpcxds = os.path.join(peers, "grpcxds")
    if not peers or not os.path.exists(grpcxds):
        ec.skip("no grpcxds (PILOT_PEERS_BIN unset; make peers builds it)")
    if shutil.which("openssl") is None:
        ec.skip("openssl is not installed")
    import ca_kube as ck  # noqa: E402
    import routing_config as rcfg  # noqa: E402
    work = tempfile.mkdtemp(prefix="grpc-go-policy-")
    ips, port = rcfg.pick_backends(os.getpid() + 53)
    ip = ips[0]
    state = os.path.join(work, "state")
    secure = ec.free_port()
    pilot = ec.Pilot(workdir=os.path.join(work, "pilot"),
                     config_files={"mesh.yaml": mesh_yaml(ip, port)},
                     extra_args=["--caStateDir", state, "--caCertsDir", os.path.join(work, "none"),
                                 "--secureGRPCAddr", "127.0.0.1:%d" % secure])
    pilot.secure_port = secure
    pilot.start()
    srv = None
    try:
        root = open(os.path.join(state, "root-cert.pem")).read()
        gm.failures = failures
        client = gm.issue(work, ck, pilot, root, state, "client", gm.CLIENT_ID)
        client2 = gm.issue(work, ck, pilot, root, state, "client2", CLIENT2_ID)
        server = gm.issue(work, ck, pilot, root, state, "greeter", gm.SERVER_ID)
        if not (client and client2 and server):
            return 1
        sboot = gm.bootstrap(os.path.join(work, "server.json"), pilot.target(),
                             "sidecar~%s~greeter-1.%s~%s.svc.cluster.local" % (ip, gm.NS, gm.NS),
                             server)
        # the pod's labels, as the agent puts them in the node (policies select on them)
        with open(sboot) as f:
            doc = json.load(f)
        doc["node"]["metadata"]["LABELS"] = {"app": "greeter",
                                             "security.istio.io/tlsMode": "istio"}
        with open(sboot, "w") as f:
            json.dump(doc, f, indent=1)
        slog = open(os.path.join(work, "server.log"), "w")
        srv = subprocess.Popen([grpcxds, "server", "--bootstrap", sboot, "--addr",
                                "%s:%d" % (ip, port), "--version", "greeter-go", "--xds-creds"],
                               stdout=slog, stderr=subprocess.STDOUT)
        t0 = time.time()
        while time.time() - t0 < 20 and "ready" not in open(slog.name).read():
            time.sleep(0.2)
        check("ready" in open(slog.name).read(), "grpc-go xDS server serving on %s:%d" % (ip, port))
        boots = {}
        for name, certs in (("client", client), ("client2", client2)):
            boots[name] = gm.bootstrap(
                os.path.join(work, name + ".json"), pilot.target(),
                "sidecar~127.0.0.9%d~%s-1.%s~%s.svc.cluster.local" % (len(boots) + 6, name, gm.NS,
                                                                      gm.NS), certs)

        # 1. auto mTLS, no rule anywhere
        got = until(lambda: call_plain(ip, port), "UNAVAILABLE")
        check(got == "UNAVAILABLE", "auto mTLS: the server requires mTLS, a plaintext caller "
              "is refused (%s)" % got)
        out, err = call_go(grpcxds, boots["client"], port)
        check(out.get("counts") == {"greeter-go": 5},
              "auto mTLS: grpc-go client -> grpc-go server, 5 of 5 (%s %s)" % (out, err))

        # 2. the namespace DISABLEs mTLS: both sides plaintext
        write_config(pilot, work, mesh_yaml(ip, port, pa("DISABLE")))
        got = until(lambda: call_plain(ip, port), None)
        check(got is None, "PeerAuthentication DISABLE: the plaintext caller is served (%s)" % got)
        out, err = call_go(grpcxds, boots["client"], port)
        check(out.get("counts") == {"greeter-go": 5},
              "DISABLE: grpc-go client still gets through, now plaintext (%s %s)" % (out, err))

        # 3. STRICT: the plaintext caller is refused again
        write_config(pilot, work, mesh_yaml(ip, port, pa("STRICT")))
        got = until(lambda: call_plain(ip, port), "UNAVAILABLE")
        check(got == "UNAVAILABLE", "PeerAuthentication STRICT refuses a plaintext caller (%s)" %
              got)
        out, err = call_go(grpcxds, boots["client"], port)
        check(out.get("counts") == {"greeter-go": 5},
              "STRICT: grpc-go client over mTLS, 5 of 5 (%s %s)" % (out, err))

        # 4. DENY one caller's identity
        write_config(pilot, work, mesh_yaml(ip, port, pa("STRICT") + DENY_CLIENT2))
        got = until(lambda: call_go(grpcxds, boots["client2"], port, 2)[0].get("errors"),
                    {"PermissionDenied": 2})
        check(got == {"PermissionDenied": 2},
              "AuthorizationPolicy DENY refuses client2 (%s)" % got)
        out, err = call_go(grpcxds, boots["client"], port)
        check(out.get("counts") == {"greeter-go": 5},
              "the DENY policy lets client through, 5 of 5 (%s %s)" % (out, err))
        check(pilot.metric("pilot_total_xds_rejects") == 0, "no xDS resource was NACKed")
    finally:
        if srv is not None and srv.poll() is None:
            srv.terminate()
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
        code = pilot.stop()
        if code != 0:
            failures.append("pilot-discovery clean exit (%d)" % code)
    if failures:
        print("\n%d failures:\n  %s\n--- grpc-go server ---\n%s\n--- pilot log ---\n%s" % (
            len(failures), "\n  ".join(failures),
            open(os.path.join(work, "server.log")).read()[-3000:], pilot.read_log()[-6000:]))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
