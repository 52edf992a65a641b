#!/usr/bin/python3
"""Second real xDS client: @grpc/grpc-js-xds (npm, pinned in js/package-lock.json and
installed into the build tree by js_setup.sh) routes through what pilot-discovery serves.
Same config and backends as grpc_xds_routing.py; the client is grpc_js_xds.js.
"""
import json
import os
import shutil
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

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)



def main():
    if shutil.which("node") is None:
        ec.skip("node is not installed")
    build = ec.env_path("PILOT_BUILD")
    dest = os.path.join(build, "tests", "e2e", "grpc-js")
    r = subprocess.run([os.path.join(HERE, "js_setup.sh"), dest])
    if r.returncode == 77:
        sys.exit(77)
    if r.returncode != 0:
        print("js_setup.sh failed")
        return 1
    work = tempfile.mkdtemp(prefix="grpc-js-xds-")
    ips, port = rcfg.pick_backends(os.getpid() + 17)
    pilot = ec.Pilot(workdir=work)
    rcfg.write_config(pilot.config_dir, ips, port, 80, 20)
    backends = [rcfg.start_backend(ip, port, v) for ip, v in zip(ips, rcfg.VERSIONS)]
    pilot.start()
    try:
        boot = os.path.join(work, "bootstrap.json")
        rcfg.bootstrap(boot, pilot.target(),
                       node_id="sidecar~127.0.0.98~jsclient.e2e~e2e.svc.cluster.local")
        env = dict(os.environ, GRPC_XDS_BOOTSTRAP=boot,
                   GRPC_JS_MODULES=os.path.join(dest, "node_modules"))
        target = "xds:///%s:%d" % (rcfg.HOST, port)

        def run(n, *headers):
            p = subprocess.run(["node", os.path.join(HERE, "grpc_js_xds.js"), target, str(n)] +
                               list(headers), env=env, capture_output=True, text=True,
                               timeout=120)
            if p.returncode != 0:
                print(p.stderr[-3000:])
                return {}, {"exit": p.returncode}
            out = json.loads(p.stdout.strip().splitlines()[-1])
            return out["counts"], out["errors"]

        rcfg.routing_checks("grpc-js", run, pilot.config_dir, check)
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
