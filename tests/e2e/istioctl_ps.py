#!/usr/bin/python3
"""istioctl (built from istio.io/istio's Go module, tests/peers) as a real client of our
debug over xDS: `istioctl proxy-status --xds-address 127.0.0.1:<port> --plaintext` against
pilot-discovery with two connected test proxies (one SotW, one Delta, both sending
PROXY_CONFIG as istio-agent does) lists both and not istioctl's own connection; with
--verbosity 1 each type they watch is SYNCED; -o json gives the ClientConfigs and our
control plane identity; `istioctl proxy-config clusters|listeners -f` reads our
/debug/config_dump of a proxy. Also `istioctl x internal-debug syncz`
(istio.io/debug) is refused on the plaintext port, as istiod refuses it.

Skips (77) without grpcio or without $PILOT_PEERS_BIN/istioctl.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
DELTA = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def istioctl(exe, *args):
    # no kubeconfig: istioctl must not need a cluster with --xds-address
    env = dict(os.environ, KUBECONFIG=os.path.join(tempfile.mkdtemp(), "none"),
               HOME=tempfile.mkdtemp())
    r = subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60, env=env)
    return r.returncode, r.stdout, r.stderr


def main():
    src = os.environ.get("PILOT_SRC")
    exe = os.path.join(os.environ.get("PILOT_PEERS_BIN", ""), "istioctl")
    if not src:
        ec.skip("PILOT_SRC not set")
    if not os.access(exe, os.X_OK):
        ec.skip("no istioctl (PILOT_PEERS_BIN unset or istioctl not built by tests/peers)")
    work = tempfile.mkdtemp(prefix="istioctl-ps-")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    DReq = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryRequest")
    DResp = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryResponse")
    pilot = ec.Pilot(config_src=os.path.join(src, "manifests", "samples"), workdir=work)
    pilot.start()
    rc = 1
    try:
        ch = grpc.insecure_channel(pilot.target())

        def node(pod):
            n = Node(id="sidecar~10.0.0.%d~%s.default~default.svc.cluster.local" %
                     (len(pod), pod))
            n.metadata.fields["NAMESPACE"].string_value = "default"
            n.metadata.fields["ISTIO_VERSION"].string_value = "1.24.6"
            n.metadata.fields["PROXY_CONFIG"].struct_value.fields[
                "discoveryAddress"].string_value = "istiod.istio-system.svc:15012"
            return n

        a = ec.AdsStream(ch, SOTW, Req, Resp)
        a.send(Req(node=node("proxy-a"), type_url=T_CDS))
        r = a.recv()
        a.send(Req(type_url=T_CDS, version_info=r.version_info, response_nonce=r.nonce))
        a.send(Req(type_url=T_LDS))
        r = a.recv()
        a.send(Req(type_url=T_LDS, version_info=r.version_info, response_nonce=r.nonce))
        b = ec.AdsStream(ch, DELTA, DReq, DResp)
        b.send(DReq(node=node("proxy-b"), type_url=T_CDS))
        r = b.recv()
        b.send(DReq(type_url=T_CDS, response_nonce=r.nonce))
        a.recv(timeout=0.5)  # let the ACKs land

        # --revision: without it istioctl waits for a Kubernetes API to find the default one
        base = ["proxy-status", "--xds-address", pilot.target(), "--plaintext", "--revision",
                "default"]
        code, out, err = istioctl(exe, *base)
        print(out + err)
        check(code == 0, "istioctl proxy-status exits 0 (%d)" % code)
        rows = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln.strip()}
        check(sorted(rows) == ["proxy-a.default", "proxy-b.default"],
              "proxy-status lists exactly the two proxies, not istioctl itself (%s)" %
              sorted(rows))
        check("Kubernetes" in rows.get("proxy-a.default", "") and
              "1.24.6" in rows.get("proxy-a.default", ""), "cluster ID and proxy version shown")
        check("MISSING" not in out and "INVALID" not in out,
              "the control plane identity (ControlPlane.identifier) parses")

        # per-type statuses (istioctl's "show all xDS types" table)
        code, out, err = istioctl(exe, *(base + ["--verbosity", "1"]))
        print(out + err)
        lines = out.splitlines()
        head = lines[0] if lines else ""
        # tabwriter columns: cut each row at the header's column starts (cells hold spaces,
        # "SYNCED (1s)", and ISTIOD is empty without POD_NAME)
        names = head.split()
        starts = [head.index(" " + n + " ") + 1 if i else 0 for i, n in enumerate(names[:-1])]
        starts.append(head.rindex(names[-1]))
        rows = {}
        for ln in lines[1:]:
            if ln.strip():
                cells = [ln[a:b].strip() for a, b in zip(starts, starts[1:] + [len(ln)])]
                rows[cells[0]] = dict(zip(names, cells))

        def col(row, name):
            return row.get(name, "").split(" ")[0]
        ra, rb = rows.get("proxy-a.default", {}), rows.get("proxy-b.default", {})
        check(col(ra, "CDS") == "SYNCED" and col(ra, "LDS") == "SYNCED",
              "proxy-a: CDS and LDS SYNCED (%s)" % ra)
        check(col(rb, "CDS") == "SYNCED" and col(rb, "LDS") == "IGNORED",
              "proxy-b: CDS SYNCED, LDS not subscribed (%s)" % rb)

        # the raw answer, as istioctl decodes it
        code, out, err = istioctl(exe, *(base + ["-o", "json"]))
        try:
            doc = json.loads(out)
        except ValueError:
            doc = {}
        res = doc.get("resources", [])
        check(len(res) == 2 and all(r.get("@type", "").endswith("status.v3.ClientConfig")
                                    for r in res),
              "-o json: two ClientConfig resources (%d)" % len(res))
        cp = json.loads(doc.get("controlPlane", {}).get("identifier", "{}") or "{}")
        check(cp.get("Component") == "istiod", "-o json: controlPlane names istiod (%s)" % cp)

        # istioctl proxy-config reads an Envoy config dump; ours (/debug/config_dump, what
        # the proxy was last sent) in istioctl's tables, with the DestinationRule and
        # VirtualService columns taken from the istio metadata we write
        st, dump = ec.http_get(pilot.url("/debug/config_dump?proxyID=proxy-a.default"))
        path = os.path.join(work, "proxy-a.json")
        with open(path, "w") as f:
            f.write(dump)
        check(st == 200, "/debug/config_dump?proxyID=proxy-a.default answers 200 (%d)" % st)
        code, out, err = istioctl(exe, "proxy-config", "clusters", "-f", path)
        print(out + err)
        rows = [ln.split() for ln in out.splitlines()[1:] if ln.strip()]
        check(code == 0 and any(r[:3] == ["catalog.demo.svc.cluster.local", "9080", "v1"] and
                                r[-1] == "catalog.demo" for r in rows) and
              any(r[0] == "PassthroughCluster" for r in rows),
              "proxy-config clusters -f: catalog's subset v1 with its DestinationRule, and "
              "PassthroughCluster")
        code, out, err = istioctl(exe, "proxy-config", "listeners", "-f", path)
        print(out + err)
        check(code == 0 and any(ln.split()[:2] == ["0.0.0.0", "9080"] and "Route: 9080" in ln
                                for ln in out.splitlines()),
              "proxy-config listeners -f: 0.0.0.0:9080 routed by RDS 9080")

        code, out, err = istioctl(exe, "x", "internal-debug", "syncz", "--xds-address",
                                  pilot.target(), "--plaintext", "--revision", "default")
        print(out + err)
        check(code != 0 and "code = Unauthenticated desc = authentication required" in err,
              "internal-debug (istio.io/debug) is refused on the plaintext port, as istiod")
        a.close()
        b.close()
        rc = 0
    finally:
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
