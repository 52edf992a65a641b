#!/usr/bin/python3
"""The Telemetry API while a sidecar is connected (--configDir followed), over one ADS stream
that never reconnects:

1. a namespace Telemetry read at start: the sidecar's outbound HTTP listener carries its
   tagOverrides in the istio.stats config; /debug/telemetryz lists it as istiod does;
2. the Telemetry edited in place: the new tag value reaches the connected sidecar;
3. a workload Telemetry added (client metrics off, access logs with a CEL filter): the
   listener loses istio.stats and gains the file access log with the filter;
4. an invalid Telemetry (randomSamplingPercentage 101) is refused with istiod's reason and
   its field, and is not in /debug/configz; nothing is pushed for it;
5. the Telemetries deleted: back to istiod's default istio.stats (no metrics entries);
6. pilot-discovery exits 0 on SIGTERM (sanitizers clean).
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

try:
    import grpc
except ImportError:
    ec.skip("python3-grpcio is not installed")

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
NODE_ID = "sidecar~10.1.0.5~app-1.default~default.svc.cluster.local"
failures = []

APP = """apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 9080}], selector: {app: app}}
---
apiVersion: v1
kind: Pod
metadata: {name: app-1, namespace: default, labels: {app: app}}
spec: {serviceAccountName: app}
status: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: default, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{name: http, port: 9080, protocol: TCP}]
endpoints:
- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: app-1, namespace: default}}
"""


def ns_telemetry(value):
    return """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ns, namespace: default}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        request_protocol: {operation: REMOVE}
        source_cluster: {value: '"%s"'}
""" % value


WORKLOAD = """apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: app, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  metrics:
  - overrides:
    - match: {mode: CLIENT}
      disabled: true
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: 'response.code >= 500'}
"""

BAD = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: bad, namespace: default}
spec:
  tracing:
  - randomSamplingPercentage: 101
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


class Sidecar:
    def __init__(self, pilot, protos):
        self.protos = protos
        self.Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
        Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
        Node = protos.cls("envoy.config.core.v3.Node")
        self.ch = grpc.insecure_channel(pilot.target())
        self.s = ec.AdsStream(self.ch, SOTW, self.Req, Resp)
        self.node = Node(id=NODE_ID)
        self.node.metadata.fields["NAMESPACE"].string_value = "default"
        self.node.metadata.fields["LABELS"].struct_value.fields["app"].string_value = "app"
        self.s.send(self.Req(node=self.node, type_url=T_LDS))
        self.pushes = 0
        self.listeners = None  # name -> serialized Listener

    def wait(self, cond, timeout):
        """Reads (and ACKs) LDS responses until cond(listeners) holds; True if it did."""
        deadline = time.time() + timeout
        while True:
            if self.listeners is not None and cond(self.listeners):
                return True
            left = deadline - time.time()
            if left <= 0:
                return False
            r = self.s.recv(timeout=left)
            if r is None:
                return False
            self.pushes += 1
            self.listeners = {}
            for a in r.resources:
                lis = self.protos.unpack_any(a)
                self.listeners[lis.name] = a.value
            self.s.send(self.Req(node=self.node, type_url=T_LDS, version_info=r.version_info,
                                 response_nonce=r.nonce))


def http(ls):
    return ls.get("0.0.0.0_9080", b"")


def write(pilot, name, text):
    path = os.path.join(pilot.config_dir, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    work = tempfile.mkdtemp(prefix="telemetry-reload-")
    protos = ec.Protos(work)
    pilot = ec.Pilot(config_files={"app.yaml": APP, "telemetry.yaml": ns_telemetry("first")},
                     workdir=work)
    pilot.start()
    sc = None
    try:
        sc = Sidecar(pilot, protos)
        # ---- 1. read at start ----
        ok = sc.wait(lambda ls: b"istio.stats" in http(ls), 15)
        check(ok and b'"first"' in http(sc.listeners) and b"requests_total" in
              http(sc.listeners) and b"tags_to_remove" in http(sc.listeners),
              "the namespace Telemetry's tagOverrides are in the outbound istio.stats config")
        tz = pilot.json("/debug/telemetryz").get("telemetries", {})
        got = tz.get("namespace_to_telemetries", {}).get("default", [])
        check(tz.get("root_namespace") == "istio-system" and [t.get("name") for t in got] ==
              ["ns"] and "metrics" in got[0].get("spec", {}),
              "/debug/telemetryz lists it with its spec (%s)" % tz)

        # ---- 2. edited in place ----
        t0 = time.time()
        write(pilot, "telemetry.yaml", ns_telemetry("second"))
        ok = sc.wait(lambda ls: b'"second"' in http(ls), 15)
        check(ok and b'"first"' not in http(sc.listeners),
              "the edited tag value reaches the connected sidecar (%.2f s)" % (time.time() - t0))

        # ---- 3. a workload Telemetry ----
        t0 = time.time()
        write(pilot, "workload.yaml", WORKLOAD)
        ok = sc.wait(lambda ls: b"istio.stats" not in http(ls), 15)
        check(ok, "client metrics disabled for the workload: no istio.stats on its outbound "
              "listener (%.2f s)" % (time.time() - t0))
        check(b"envoy.access_loggers.extension_filters.cel" in http(sc.listeners) and
              b"response.code >= 500" in http(sc.listeners) and
              b"/dev/stdout" in http(sc.listeners),
              "the workload's access log: the envoy provider with the CEL filter")

        # ---- 4. refused ----
        pushes = sc.pushes
        write(pilot, "bad.yaml", BAD)
        want = ("Telemetry default/bad: spec.tracing[0].randomSamplingPercentage: "
                "randomSamplingPercentage must be in range [0.0, 100.0]")
        deadline = time.time() + 10
        while time.time() < deadline and want not in pilot.read_log():
            time.sleep(0.1)
        check(want in pilot.read_log(), "the invalid Telemetry is refused with istiod's reason")
        names = [(o.get("kind"), o.get("metadata", {}).get("name"))
                 for o in pilot.json("/debug/configz")]
        check(("Telemetry", "bad") not in names and ("Telemetry", "app") in names,
              "/debug/configz has the valid Telemetries only")
        sc.wait(lambda ls: False, 2.0)
        check(sc.pushes == pushes, "nothing pushed for it (%d new pushes)" % (sc.pushes - pushes))

        # ---- 5. deleted ----
        t0 = time.time()
        for n in ("telemetry.yaml", "workload.yaml", "bad.yaml"):
            os.unlink(os.path.join(pilot.config_dir, n))
        ok = sc.wait(lambda ls: b"istio.stats" in http(ls) and b"requests_total" not in http(ls)
                     and b"extension_filters.cel" not in http(ls), 15)
        check(ok, "the Telemetries deleted: istiod's default istio.stats again, no access log "
              "(%.2f s)" % (time.time() - t0))
        check(sc.s.error is None and not sc.s.call.done(),
              "the same stream throughout (%d pushes)" % sc.pushes)
    finally:
        if sc:
            sc.s.close()
        rc = pilot.stop()
    check(rc == 0, "pilot-discovery exits 0 on SIGTERM (rc %d)" % rc)
    if failures:
        print(pilot.read_log())
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
