#!/usr/bin/python3
"""Proxyless mTLS with grpc-go (tests/peers/grpcxds) on both sides, from what we serve:
the same mesh and certificates as grpc_mtls.py (DestinationRule ISTIO_MUTUAL, file_watcher
certificates from our CA): grpc-go's xDS server accepts our inbound listener (it NACKed
the old mix of new and deprecated certificate-provider fields: "no identity certificate
provider"), grpc-go's client calls it over mTLS, and a plaintext client is refused.
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
import grpc_mtls as gm  # noqa: E402  (mesh, bootstrap and certificates of the 1.51 test)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def main():
    peers = os.environ.get("PILOT_PEERS_BIN", "")
    grpcxds = os.path.join(peers, "grpcxds")
    if not peers or not os.path.exists(grpcxds):
        ec.skip("no grpcxds (PILOT_PEERS_BIN unset; make peers builds it)")
    if shutil.which("openssl") is None:
        ec.skip("openssl is not installed")
    import ca_kube as ck  # noqa: E402  (CSR and CreateCertificate helpers)
    import routing_config as rcfg  # noqa: E402
    work = tempfile.mkdtemp(prefix="grpc-go-mtls-")
    ips, port = rcfg.pick_backends(os.getpid() + 41)
    ip, other_ip = ips[0], ips[1]
    state = os.path.join(work, "state")
    secure = ec.free_port()
    pilot = ec.Pilot(workdir=os.path.join(work, "pilot"),
                     config_files={"mesh.yaml": gm.mesh_yaml(ip, port, other_ip)},
                     extra_args=["--caStateDir", state, "--caCertsDir", os.path.join(work, "none"),
                                 "--secureGRPCAddr", "127.0.0.1:%d" % secure])
    pilot.secure_port = secure
    pilot.start()
    srv = None
    try:
        root = open(os.path.join(state, "root-cert.pem")).read()
        client = gm.issue(work, ck, pilot, root, state, "client", gm.CLIENT_ID)
        server = gm.issue(work, ck, pilot, root, state, "greeter", gm.SERVER_ID)
        if not (client and server):
            return 1
        sboot = gm.bootstrap(os.path.join(work, "server.json"), pilot.target(),
                             "sidecar~%s~greeter-1.%s~%s.svc.cluster.local" % (ip, gm.NS, gm.NS),
                             server)
        slog = open(os.path.join(work, "server.log"), "w")
        srv = subprocess.Popen([grpcxds, "server", "--bootstrap", sboot, "--addr",
                                "%s:%d" % (ip, port), "--version", "greeter-go", "--xds-creds"],
                               stdout=slog, stderr=subprocess.STDOUT)
        t0 = time.time()
        while time.time() - t0 < 20 and "ready" not in open(slog.name).read():
            time.sleep(0.2)
        check("ready" in open(slog.name).read(), "grpc-go xDS server with xds credentials "
              "serving on %s:%d" % (ip, port))
        time.sleep(1.0)  # its listener (LDS) arrives after it starts listening
        cboot = gm.bootstrap(os.path.join(work, "client.json"), pilot.target(),
                             "sidecar~127.0.0.96~client-1.%s~%s.svc.cluster.local" % (gm.NS, gm.NS),
                             client)
        p = subprocess.run([grpcxds, "client", "--bootstrap", cboot, "--target",
                            "xds:///%s:%d" % (gm.HOST, port), "-n", "5", "--wait-for-ready",
                            "--timeout", "20s"], capture_output=True, text=True, timeout=120)
        out = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
        check(out.get("counts") == {"greeter-go": 5},
              "grpc-go client -> grpc-go server over mTLS: 5 of 5 (%s; %s)" %
              (out, p.stderr[-600:] if p.returncode else ""))
        ch = grpc.insecure_channel("%s:%d" % (ip, port))
        try:
            ch.unary_unary(gm.METHOD)(b"hi", timeout=5)
            check(False, "plaintext client refused by the grpc-go mTLS server (it answered)")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAVAILABLE,
                  "plaintext client refused by the grpc-go mTLS server (%s)" % e.code().name)
        ch.close()
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
            len(failures), "\n  ".join(failures), open(os.path.join(work, "server.log")).read()[-3000:],
            pilot.read_log()))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
