#!/usr/bin/python3
"""grpc-go's xDS client (tests/peers/grpcxds, the most complete proxyless implementation)
routes through what pilot-discovery serves: the same config, backends and checks as the
gRPC C core (grpc_xds_routing.py) and grpc-js (grpc_js_routing.py) tests.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import routing_config as rcfg  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

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
    work = tempfile.mkdtemp(prefix="grpc-go-xds-")
    ips, port = rcfg.pick_backends(os.getpid() + 29)
    pilot = ec.Pilot(workdir=work)
    rcfg.write_config(pilot.config_dir, ips, port, 80, 20)
    backends = [rcfg.start_backend(ip, port, v) for ip, v in zip(ips, rcfg.VERSIONS)]
    pilot.start()
    try:
        boot = os.path.join(work, "bootstrap.json")
        rcfg.bootstrap(boot, pilot.target(),
                       node_id="sidecar~127.0.0.97~goclient.e2e~e2e.svc.cluster.local")
        target = "xds:///%s:%d" % (rcfg.HOST, port)

        def run(n, *headers):
            args = [grpcxds, "client", "--bootstrap", boot, "--target", target, "-n", str(n),
                    "--wait-for-ready", "--timeout", "20s"]
            for h in headers:
                args += ["--header", h]
            p = subprocess.run(args, capture_output=True, text=True, timeout=120)
            if p.returncode != 0 or not p.stdout.strip():
                print(p.stderr[-3000:])
                return {}, {"exit": p.returncode}
            out = json.loads(p.stdout.strip().splitlines()[-1])
            return out.get("counts") or {}, out.get("errors") or {}

        rcfg.routing_checks("grpc-go", run, pilot.config_dir, check, unavailable="Unavailable")
    finally:
        for b in backends:
            b.stop(0)
        code = pilot.stop()
        if code != 0:
            failures.append("pilot-discovery clean exit (%d)" % code)
    if failures:
        print("\n%d failures:\n  %s\n--- pilot log ---\n%s" %
              (len(failures), "\n  ".join(failures), pilot.read_log()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
