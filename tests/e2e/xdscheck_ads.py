#!/usr/bin/python3
"""The real peer's verdict on what a running pilot-discovery serves: xdscheck (go-control-
plane's ValidateAll and the consistency rules, tests/peers/xdscheck) subscribes over ADS
as an Envoy sidecar, an Envoy router and a proxyless gRPC client, on the bundled sample
mesh plus Istio's bookinfo with its all-mTLS DestinationRules, and over /debug/config_dump
of a connected sidecar; every run must end with 0 violations.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def xdscheck(exe, *args):
    p = subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=120)
    out = (p.stdout + p.stderr).strip()
    bad = [line for line in out.splitlines() if line.startswith("VIOLATION")]
    summary = [line for line in out.splitlines() if line.startswith("xdscheck:")]
    return p.returncode, bad, summary[-1] if summary else out[-400:]


def main():
    peers = os.environ.get("PILOT_PEERS_BIN", "")
    exe = os.path.join(peers, "xdscheck")
    if not peers or not os.path.exists(exe):
        ec.skip("no xdscheck (PILOT_PEERS_BIN unset; make peers builds it)")
    src = ec.env_path("PILOT_SRC")
    shared = os.environ.get("PILOT_SHARED", "")
    work = tempfile.mkdtemp(prefix="xdscheck-ads-")
    extra = {}
    bi = os.path.join(shared, "istio", "samples", "bookinfo")
    for rel in ("platform/kube/bookinfo.yaml", "networking/bookinfo-gateway.yaml",
                "networking/destination-rule-all-mtls.yaml",
                "networking/virtual-service-reviews-80-20.yaml"):
        path = os.path.join(bi, rel)
        if os.path.exists(path):
            with open(path) as f:
                extra["zz-bookinfo-" + os.path.basename(path)] = f.read()
    print("bookinfo from ../shared: %d files" % len(extra))
    pilot = ec.Pilot(config_src=os.path.join(src, "manifests", "samples"), config_files=extra,
                     workdir=work)
    pilot.start()
    try:
        addr = pilot.target()
        runs = [
            ("sidecar (demo)", ["--node", "sidecar~10.1.0.5~web-v1-1.demo~demo.svc.cluster.local",
                                "--flavour", "sidecar"]),
            ("sidecar (bookinfo, default)",
             ["--node", "sidecar~10.9.9.9~productpage-v1-1.default~default.svc.cluster.local",
              "--flavour", "sidecar"]),
            ("router", ["--node", "router~10.1.0.9~istio-ingressgateway-1.istio-system~"
                        "istio-system.svc.cluster.local", "--flavour", "router",
                        "--label", "istio=ingressgateway",
                        "--label", "app=istio-ingressgateway"]),
            ("grpc client", ["--node", "sidecar~10.1.0.7~client-1.default~default.svc."
                             "cluster.local", "--flavour", "grpc", "--meta", "GENERATOR=grpc",
                             "--lds", "greeter.default.svc.cluster.local:50051",
                             "--lds", "reviews.default.svc.cluster.local:9080"]),
        ]
        for name, args in runs:
            rc, bad, summary = xdscheck(exe, "ads", "--addr", addr, *args)
            for line in bad[:20]:
                print("  " + line)
            check(rc == 0 and not bad, "xdscheck ads as %s: %s" % (name, summary))

        # config_dump of a connected sidecar, EDS included
        node = "sidecar~10.1.0.6~web-v2-1.demo~demo.svc.cluster.local"
        hold = subprocess.Popen([exe, "ads", "--addr", addr, "--node", node, "--flavour",
                                 "sidecar", "--hold", "8s"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        url = pilot.url("/debug/config_dump?proxyID=web-v2-1.demo&include_eds")
        rc, bad, summary = xdscheck(exe, "dump", "--flavour", "sidecar", url)
        for line in bad[:20]:
            print("  " + line)
        check(rc == 0 and not bad, "xdscheck dump of /debug/config_dump: %s" % summary)
        hold.wait(timeout=30)
    finally:
        code = pilot.stop()
        check(code == 0, "pilot-discovery exits 0 (%d)" % code)
    if failures:
        print("\n%d failures\n--- pilot log ---\n%s" % (len(failures), pilot.read_log()))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
