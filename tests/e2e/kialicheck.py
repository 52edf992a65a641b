#!/usr/bin/python3
"""Kiali's reading of istiod, against ours: pilot-discovery on the bundled sample with two
connected test proxies (CDS and LDS acked), then tests/peers/kialicheck (Kiali's own types
and functions, github.com/kiali/kiali) on the monitoring port: /debug/syncz lists both
proxies with cluster and version and Kiali shows them Synced, /debug/registryz decodes into
Kiali's RegistryService with the sample's hostnames, ports and cluster VIPs and Kiali's
validations and service filter find them, /version is read as upstream Istio of the
release we serve (PILOT_ISTIO_VERSION: "1.24.6+pilotc.<ours>" reads as Istio 1.24.6), /ready on the HTTP port counts as healthy. Then a proxy that never acks LDS is not
shown Synced, so the checker is seen to fail.

Skips (77) without grpcio or without $PILOT_PEERS_BIN/kialicheck.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
# the sample's Services (manifests/samples/services.yaml)
SERVICES = ["web.demo.svc.cluster.local:9080", "catalog.demo.svc.cluster.local:9080",
            "pricing.demo.svc.cluster.local:9080", "inventory.demo.svc.cluster.local:9080",
            "greeter.default.svc.cluster.local:50051",
            "istio-ingressgateway.istio-system.svc.cluster.local:443"]

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def project_version():
    with open(os.path.join(ec.env_path("PILOT_BUILD"), "pilot_version.h")) as f:
        m = re.search(r'#define PILOT_ISTIO_VERSION "([^"]*)"', f.read())
    return m.group(1) if m else ""


def main():
    src = os.environ.get("PILOT_SRC")
    exe = os.path.join(os.environ.get("PILOT_PEERS_BIN", ""), "kialicheck")
    if not src:
        ec.skip("PILOT_SRC not set")
    if not os.access(exe, os.X_OK):
        ec.skip("no kialicheck (PILOT_PEERS_BIN unset or kialicheck not built by tests/peers)")
    work = tempfile.mkdtemp(prefix="kialicheck-")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    pilot = ec.Pilot(config_src=os.path.join(src, "manifests", "samples"), workdir=work)
    pilot.start()
    rc = 1
    streams = []
    try:
        ch = grpc.insecure_channel(pilot.target())

        def connect(pod, ip, ack_lds=True):
            n = Node(id="sidecar~%s~%s.default~default.svc.cluster.local" % (ip, pod))
            n.metadata.fields["NAMESPACE"].string_value = "default"
            n.metadata.fields["ISTIO_VERSION"].string_value = "1.24.6"
            n.metadata.fields["LABELS"].struct_value.fields["app"].string_value = "web"
            s = ec.AdsStream(ch, ec.ADS_SOTW, Req, Resp)
            streams.append(s)
            s.send(Req(node=n, type_url=T_CDS))
            r = s.recv()
            check(r is not None, "%s: CDS answered" % pod)
            s.send(Req(type_url=T_CDS, version_info=r.version_info, response_nonce=r.nonce))
            s.send(Req(type_url=T_LDS))
            r = s.recv()
            check(r is not None, "%s: LDS answered" % pod)
            if ack_lds:
                s.send(Req(type_url=T_LDS, version_info=r.version_info, response_nonce=r.nonce))
            s.recv(timeout=0.5)  # let the ACKs land

        connect("web-a", "10.0.0.21")
        connect("web-b", "10.0.0.22")

        version = project_version()
        args = [exe, "--url", pilot.murl(""), "--ready-url", pilot.url(""),
                "--proxy", "web-a.default", "--proxy", "web-b.default",
                "--namespace", "demo", "--selector", "app=web", "--version", version]
        for s in SERVICES:
            args += ["--service", s]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        print(r.stdout + r.stderr)
        check(r.returncode == 0, "kialicheck exits 0 (%d)" % r.returncode)
        m = re.search(r"kialicheck: (\d+) checks, (\d+) failures", r.stdout)
        # 4 ok lines per wanted proxy and 4 per wanted service at least
        check(m is not None and int(m.group(1)) > 4 * (2 + len(SERVICES)) and
              m.group(2) == "0", "kialicheck ran its checks (%s)" % (m and m.group(0)))

        # a proxy whose LDS is sent but never acked: Kiali shows it stale, the checker fails
        connect("web-c", "10.0.0.23", ack_lds=False)
        r = subprocess.run([exe, "--url", pilot.murl(""), "--proxy", "web-c.default"],
                           capture_output=True, text=True, timeout=120)
        print(r.stdout + r.stderr)
        check(r.returncode == 1 and 'LDS "Stale (Never Acknowledged)"' in r.stdout,
              "an unacked LDS fails as Kiali shows it: Stale (Never Acknowledged)")
        rc = 0
    finally:
        for s in streams:
            s.close()
        code = pilot.stop()
        if code != 0:
            failures.append("pilot-discovery exit code %d" % code)
            print(pilot.read_log())
    if failures or rc:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    main()
