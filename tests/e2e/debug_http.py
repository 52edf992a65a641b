#!/usr/bin/python3
"""istiod's HTTP debug endpoints and dashboard gauges against the real pilot-discovery.

Checks: /debug/push_status, /debug/mesh, /debug/authorizationz, /debug/endpointz,
/debug/telemetryz, /debug/networkz, /debug/instancesz, /debug/sidecarz answer istiod's JSON keys with our data;
/debug/inject gives the injector ConfigMap's templates by name and follows a change; /debug/list
names them; pilot_services and pilot_virt_services equal what registryz and configz list;
pilot_proxy_queue_time counts the push a config change makes to a connected stream;
pilot_conflict_outbound_listener_tcp_over_current_tcp counts two ServiceEntries on one
address and TCP port once the proxy's listeners are generated;
istiod's allowAuthenticatedOrLocalhost: from a non-loopback address of this host, /debug/*
answers 401 (no TokenReview configured here, so no token can pass) while /ready, /version
and the /debug index stay open.
"""
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402

AP = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-debug, namespace: default}
spec:
  selector: {matchLabels: {app: greeter}}
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/debug"]}
"""
SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: scope, namespace: default}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
"""
INJECTOR = """apiVersion: v1
kind: ConfigMap
metadata: {name: istio-sidecar-injector, namespace: istio-system}
data:
  config: |
    policy: enabled
    defaultTemplates: [sidecar]
    templates:
      sidecar: |
        spec:
          containers:
          - name: istio-proxy
      %s: |
        metadata:
          labels: {custom: "yes"}
  values: |
    {"global": {"hub": "example.org/istio"}}
"""
# two ServiceEntries on one address and TCP port: one listener, istiod's tcp-over-tcp conflict
CONFLICT = "".join("""---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zdb%d, namespace: default}
spec:
  hosts: [zdb%d.example.com]
  addresses: [240.0.0.10]
  resolution: NONE
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
""" % (i, i) for i in (1, 2))
SIDECAR_TEXT = "spec:\n  containers:\n  - name: istio-proxy\n"
CUSTOM_TEXT = 'metadata:\n  labels: {custom: "yes"}\n'
MESH = "rootNamespace: istio-system\ntrustDomain: example.org\naccessLogFile: /dev/stdout\n"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def local_ip():
    """A non-loopback address of this host, or None (no route: the 401 part is skipped)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # no packet is sent
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


def main():
    src = os.environ.get("PILOT_SRC")
    if not src:
        ec.skip("PILOT_SRC not set")
    work = tempfile.mkdtemp(prefix="debug-http-")
    mesh = os.path.join(work, "mesh.yaml")
    with open(mesh, "w") as f:
        f.write(MESH)
    pilot = ec.Pilot(config_src=os.path.join(src, "manifests", "samples"),
                     config_files={"zz-ap.yaml": AP, "zz-sidecar.yaml": SIDECAR,
                                   "zz-injector.yaml": INJECTOR % "custom",
                                   "zz-conflict.yaml": CONFLICT}, workdir=work)
    # every interface, so that a non-loopback caller can be tried (the last flag wins); the
    # webhooks on a port of their own (the injector, and so /debug/inject, comes with them)
    pilot.extra_args = ["--meshConfig", mesh, "--httpAddr", "0.0.0.0:%d" % pilot.http_port,
                        "--httpsAddr", "127.0.0.1:%d" % ec.free_port()]
    pilot.start()
    rc = 1
    try:
        st, body = ec.http_get(pilot.url("/debug/push_status"))
        check(st == 200 and body.strip() == "{}", "/debug/push_status: an empty status map")
        m = pilot.json("/debug/mesh")
        check(m.get("trustDomain") == "example.org" and m.get("accessLogFile") == "/dev/stdout"
              and m.get("rootNamespace") == "istio-system" and m.get("enableAutoMtls") is True,
              "/debug/mesh: the file's fields and our defaults (%s)" % sorted(m))
        az = pilot.json("/debug/authorizationz")
        aps = az.get("authorization_policies", {})
        pols = aps.get("namespace_to_policies", {}).get("default", [])
        check(aps.get("root_namespace") == "istio-system", "/debug/authorizationz: root_namespace")
        check([p.get("name") for p in pols] == ["deny-debug"] and
              pols[0].get("namespace") == "default" and
              pols[0].get("spec", {}).get("action") == "DENY",
              "/debug/authorizationz: the policy with its spec (%s)" % pols)
        check(pilot.json("/debug/endpointz") == pilot.json("/debug/endpointShardz") and
              len(pilot.json("/debug/endpointz")) > 0, "/debug/endpointz is endpointShardz")
        tz = pilot.json("/debug/telemetryz")
        check(tz == {"telemetries": {"namespace_to_telemetries": {},
                                     "root_namespace": "istio-system"}},
              "/debug/telemetryz: istiod's keys, no Telemetry objects (%s)" % tz)
        st, body = ec.http_get(pilot.url("/debug/networkz"))
        check(st == 200 and body.strip() == "null", "/debug/networkz: no gateways (null)")
        inj = pilot.json("/debug/inject")
        check(inj == {"sidecar": SIDECAR_TEXT, "custom": CUSTOM_TEXT},
              "/debug/inject: the ConfigMap's templates by name, as written (%s)" % inj)
        with open(os.path.join(pilot.config_dir, "zz-injector.yaml"), "w") as f:
            f.write(INJECTOR % "renamed")
        deadline = time.time() + 10
        while time.time() < deadline and "renamed" not in pilot.json("/debug/inject"):
            time.sleep(0.1)
        inj = pilot.json("/debug/inject")
        check(inj == {"sidecar": SIDECAR_TEXT, "renamed": CUSTOM_TEXT},
              "/debug/inject follows the ConfigMap's change (%s)" % inj)
        paths = pilot.json("/debug/list")
        want = ["/debug/push_status", "/debug/mesh", "/debug/authorizationz",
                "/debug/endpointz", "/debug/telemetryz", "/debug/networkz", "/debug/inject"]
        check(all(p in paths for p in want), "/debug/list names the new endpoints")

        nsvc = len(pilot.json("/debug/registryz"))
        nvs = len([o for o in pilot.json("/debug/configz") if o.get("kind") == "VirtualService"])
        check(nsvc > 0 and pilot.metric("pilot_services") == nsvc,
              "pilot_services = the services in registryz (%d)" % nsvc)
        check(nvs > 0 and pilot.metric("pilot_virt_services") == nvs,
              "pilot_virt_services = the VirtualServices in configz (%d)" % nvs)

        try:
            import grpc
        except ImportError:
            grpc = None
        if grpc is not None:
            protos = ec.Protos(work)
            Node = protos.cls("envoy.config.core.v3.Node")
            Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
            Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
            ch = grpc.insecure_channel(pilot.target())
            s = ec.AdsStream(ch, "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
                             "StreamAggregatedResources", Req, Resp)
            # a proxy at the address of one endpoint of the samples: its service targets
            shards = pilot.json("/debug/endpointShardz")
            host = sorted(shards)[0]
            ep = list(list(shards[host].values())[0]["Shards"].values())[0][0]
            nid = "sidecar~%s~q.default~default.svc.cluster.local" % ep["Address"]
            s.send(Req(node=Node(id=nid),
                       type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster"))
            r = s.recv()
            sc = pilot.json("/debug/sidecarz?proxyID=q.default")
            check(sc.get("name") == "scope" and sc.get("namespace") == "default" and
                  sc.get("sidecar", {}).get("egress", [{}])[0].get("hosts") ==
                  ["./*", "istio-system/*"] and sc.get("version"),
                  "/debug/sidecarz: the proxy's Sidecar with its spec (%s)" % sc)
            check(ec.http_get(pilot.url("/debug/sidecarz"))[0] == 400,
                  "/debug/sidecarz without proxyID: 400")
            check(ec.http_get(pilot.url("/debug/sidecarz?proxyID=nobody.x"))[0] == 404,
                  "/debug/sidecarz for an unknown proxy: 404")
            inst = pilot.json("/debug/instancesz").get("q.default", [])
            check(any(t["Service"]["hostname"] == host and
                      t["Port"]["TargetPort"] == ep["EndpointPort"] for t in inst),
                  "/debug/instancesz: the proxy's service targets include %s:%d (%s)" %
                  (host, ep["EndpointPort"], inst))
            s.send(Req(type_url=r.type_url, version_info=r.version_info, response_nonce=r.nonce))
            q0 = pilot.metric("pilot_proxy_queue_time_count")
            with open(os.path.join(pilot.config_dir, "zz-svc.yaml"), "w") as f:
                f.write("apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: "
                        "default}\nspec:\n  clusterIP: 10.96.7.8\n  ports:\n  - {name: http, "
                        "port: 80}\n")
            check(s.recv(timeout=10) is not None, "the config change is pushed to the stream")
            check(pilot.metric("pilot_proxy_queue_time_count") >= q0 + 1,
                  "pilot_proxy_queue_time counted the queued push")
            check("pilot_proxy_queue_time_bucket{le=\"0.1\"}" in ec.http_get(
                pilot.murl("/metrics"))[1], "pilot_proxy_queue_time has istiod's first bucket")
            deadline = time.time() + 5
            while time.time() < deadline and pilot.metric("pilot_services") != nsvc + 1:
                time.sleep(0.1)
            check(pilot.metric("pilot_services") == nsvc + 1, "pilot_services follows the push")
            # the listeners: 240.0.0.10_5432 is zdb1's, zdb2's chain conflicts (istiod's
            # pilot_conflict_outbound_listener_tcp_over_current_tcp, one per listener name)
            s.send(Req(type_url="type.googleapis.com/envoy.config.listener.v3.Listener"))
            r = s.recv(timeout=10)
            check(r is not None and r.type_url.endswith("Listener"), "LDS answered")
            gname = "pilot_conflict_outbound_listener_tcp_over_current_tcp"
            deadline = time.time() + 5
            while time.time() < deadline and pilot.metric(gname) != 1:
                time.sleep(0.1)
            check(pilot.metric(gname) == 1, "%s = 1 (%s)" % (gname, pilot.metric(gname)))
            text = ec.http_get(pilot.murl("/metrics"))[1]
            check("\npilot_conflict_inbound_listener 0\n" in text and
                  "# TYPE pilot_conflict_inbound_listener gauge" in text,
                  "pilot_conflict_inbound_listener exported, 0 (no pod port with two protocols)")
            s.close()

        ip = local_ip()
        if ip is None:
            print("skip: no non-loopback address here: the off-loopback rule is not exercised")
        else:
            base = "http://%s:%d" % (ip, pilot.http_port)
            st, _ = ec.http_get(base + "/debug/syncz")
            check(st == 401, "off loopback (%s): /debug/syncz answers 401 (%d)" % (ip, st))
            st, _ = ec.http_get(base + "/debug/configz")
            check(st == 401, "off loopback: /debug/configz answers 401")
            st, _ = ec.http_get(base + "/debug/inject")
            check(st == 401, "off loopback: /debug/inject answers 401")
            req = urllib.request.Request(base + "/debug/syncz",
                                            headers={"Authorization": "Bearer not-a-jwt"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    st = r.status
            except urllib.error.HTTPError as e:
                st = e.code
            check(st == 401, "off loopback: a token nobody reviews answers 401")
            check(ec.http_get(base + "/ready")[0] == 200, "off loopback: /ready stays open")
            check(ec.http_get(base + "/debug")[0] == 200, "off loopback: the /debug index is open")
            check(ec.http_get(pilot.url("/debug/syncz"))[0] == 200, "loopback: /debug/syncz 200")
            check("Failed to authenticate /debug/syncz" in pilot.read_log(),
                  "the refusal is logged with the path")
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
