#!/usr/bin/python3
"""Debug over xDS (istiod's StatusGen and DebugGen) against the real pilot-discovery, with
Debian's grpcio and the Envoy protos (csds and admin included) decoded at runtime.

Checks: two connected proxies (one SotW, one Delta, both sending PROXY_CONFIG as
istio-agent does) and one without PROXY_CONFIG; `istio.io/debug/syncz` answers one
envoy.service.status.v3.ClientConfig per proxy with PROXY_CONFIG (not the other, not the
asking stream), node id pod.namespace, CLUSTER_ID/NAMESPACE/ISTIO_VERSION metadata, per-type
SYNCED after ACKs, STALE when the last response is not ACKed, ERROR after a NACK with its
detail, control_plane naming istiod; the same over Delta; `istio.io/debug/config_dump`
gives admin Clusters/Listeners/Routes/Secrets dumps with the clusters the proxy was sent;
`istio.io/debug` on the plaintext port ends the stream UNAUTHENTICATED; debug streams start
no watch (they are not answered on pushes).
"""
import json
import os
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
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
T_SYNCZ = "istio.io/debug/syncz"
T_DUMP = "istio.io/debug/config_dump"
HOST = "greeter.default.svc.cluster.local"
C_ALL = "outbound|50051||" + HOST

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def main():
    src = os.environ.get("PILOT_SRC")
    if not src:
        ec.skip("PILOT_SRC not set")
    work = tempfile.mkdtemp(prefix="debug-xds-")
    ec.ROOT_PROTOS.append("envoy/service/status/v3/csds.proto")
    ec.ROOT_PROTOS.append("envoy/admin/v3/config_dump.proto")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    DReq = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryRequest")
    DResp = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryResponse")
    ClientConfig = protos.cls("envoy.service.status.v3.ClientConfig")
    status_enum = protos.pool.FindEnumTypeByName("envoy.service.status.v3.ConfigStatus")

    def status_name(v):
        return status_enum.values_by_number[v].name

    pilot = ec.Pilot(config_src=os.path.join(src, "manifests", "samples"), workdir=work)
    pilot.start()
    rc = 1
    try:
        ch = grpc.insecure_channel(pilot.target())

        def node(pod, proxy_config=True):
            n = Node(id="sidecar~10.0.0.%d~%s.default~default.svc.cluster.local" %
                     (len(pod), pod))
            n.metadata.fields["NAMESPACE"].string_value = "default"
            n.metadata.fields["ISTIO_VERSION"].string_value = "1.24.6"
            if proxy_config:
                n.metadata.fields["PROXY_CONFIG"].struct_value.fields[
                    "discoveryAddress"].string_value = "istiod.istio-system.svc:15012"
            return n

        # proxy one: SotW, CDS and LDS ACKed, EDS NACKed
        a = ec.AdsStream(ch, SOTW, Req, Resp)
        a.send(Req(node=node("proxy-a"), type_url=T_CDS))
        r = a.recv()
        check(r is not None and len(r.resources) > 0, "proxy-a: CDS answered")
        a.send(Req(type_url=T_CDS, version_info=r.version_info, response_nonce=r.nonce))
        a.send(Req(type_url=T_LDS))
        r = a.recv()
        lds_names = sorted(protos.unpack_any(x).name for x in r.resources)
        check(len(lds_names) > 0, "proxy-a: LDS answered (%d listeners)" % len(lds_names))
        a.send(Req(type_url=T_LDS, version_info=r.version_info, response_nonce=r.nonce))
        a.send(Req(type_url=T_EDS, resource_names=[C_ALL]))
        r = a.recv()
        nack = Req(type_url=T_EDS, response_nonce=r.nonce, resource_names=[C_ALL])
        nack.error_detail.code = 3
        nack.error_detail.message = "e2e: endpoints refused"
        a.send(nack)
        # proxy two: Delta, CDS answered and not ACKed (STALE)
        b = ec.AdsStream(ch, DELTA, DReq, DResp)
        b.send(DReq(node=node("proxy-b"), type_url=T_CDS))
        rb = b.recv()
        check(rb is not None and len(rb.resources) > 0, "proxy-b (delta): CDS answered")
        # a gRPC client without PROXY_CONFIG: istiod leaves it out of xDS syncz
        c = ec.AdsStream(ch, SOTW, Req, Resp)
        c.send(Req(node=node("plain-c", proxy_config=False), type_url=T_CDS))
        check(c.recv() is not None, "plain-c: CDS answered")
        a.recv(timeout=0.5)  # let the ACKs land

        def syncz_over(method, req_cls, resp_cls, delta):
            s = ec.AdsStream(ch, method, req_cls, resp_cls)
            n = Node(id="sidecar~10.1.1.1~istioctl.istio-system~istio-system.svc.cluster.local")
            n.metadata.fields["GENERATOR"].string_value = "event"
            s.send(req_cls(node=n, type_url=T_SYNCZ))
            resp = s.recv()
            return s, resp

        s, resp = syncz_over(SOTW, Req, Resp, False)
        check(resp is not None and resp.type_url == T_SYNCZ, "syncz: answered with its type URL")
        cfgs = {}
        if resp is not None:
            for res in resp.resources:
                check(res.type_url == "type.googleapis.com/envoy.service.status.v3.ClientConfig",
                      "syncz: resource is a ClientConfig (%s)" % res.type_url)
                cc = ClientConfig()
                cc.ParseFromString(res.value)
                cfgs[cc.node.id] = cc
            cp = json.loads(resp.control_plane.identifier or "{}")
            check(cp.get("Component") == "istiod" and "version" in cp.get("Info", {}),
                  "syncz: control_plane names istiod and its version (%s)" %
                  resp.control_plane.identifier)
        check(sorted(cfgs) == ["proxy-a.default", "proxy-b.default"],
              "syncz: exactly the two proxies with PROXY_CONFIG, not plain-c nor istioctl (%s)" %
              sorted(cfgs))
        ca = cfgs.get("proxy-a.default")
        if ca is not None:
            md = {k: v.string_value for k, v in ca.node.metadata.fields.items()}
            check(md == {"CLUSTER_ID": "Kubernetes", "NAMESPACE": "default",
                         "ISTIO_VERSION": "1.24.6"}, "syncz: node metadata as istiod (%s)" % md)
            st = {g.type_url: g for g in ca.generic_xds_configs}
            check(list(st) == sorted(st), "syncz: configs sorted by type URL")
            check(status_name(st[T_CDS].config_status) == "SYNCED" and
                  st[T_CDS].last_updated.seconds > 0, "syncz: proxy-a CDS SYNCED with a time")
            check(status_name(st[T_LDS].config_status) == "SYNCED", "syncz: proxy-a LDS SYNCED")
            check(status_name(st[T_EDS].config_status) == "ERROR" and
                  st[T_EDS].error_state.details == "e2e: endpoints refused",
                  "syncz: proxy-a EDS ERROR with the NACK's detail")
        cb = cfgs.get("proxy-b.default")
        if cb is not None:
            st = {g.type_url: status_name(g.config_status) for g in cb.generic_xds_configs}
            check(st == {T_CDS: "STALE"}, "syncz: proxy-b CDS STALE (sent, not ACKed): %s" % st)
        # a request with a nonce is answered too (istioctl's client sets one on every
        # request), with a new nonce; then no push reaches the stream
        if resp is not None:
            s.send(Req(type_url=T_SYNCZ, response_nonce="2026-12-02 15:00:00 +0000 UTC"))
            again = s.recv()
            check(again is not None and again.type_url == T_SYNCZ and
                  len(again.resources) == 2 and again.nonce != resp.nonce,
                  "syncz: a request carrying a nonce is answered again, with a new nonce")
        with open(os.path.join(pilot.config_dir, "zz-extra.yaml"), "w") as f:
            f.write("apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: default}\n"
                    "spec:\n  clusterIP: 10.96.7.7\n  ports:\n  - {name: http, port: 80}\n")
        check(a.recv(timeout=5) is not None, "a config change pushes proxy-a")
        check(s.recv(timeout=1.5) is None, "the debug stream started no watch: no push")
        s.close()

        # Delta
        s, dresp = syncz_over(DELTA, DReq, DResp, True)
        names = sorted(r.name for r in dresp.resources) if dresp else []
        check(names == ["proxy-a.default", "proxy-b.default"],
              "syncz over Delta: the two proxies by name (%s)" % names)
        check(dresp is not None and json.loads(dresp.control_plane.identifier or "{}").get(
            "Component") == "istiod", "syncz over Delta: control_plane set")
        s.close()

        # config_dump of proxy-a (istiod's getProxyConnection: a substring of the ID)
        s = ec.AdsStream(ch, SOTW, Req, Resp)
        n = Node(id="sidecar~10.1.1.1~istioctl.istio-system~istio-system.svc.cluster.local")
        s.send(Req(node=n, type_url=T_DUMP, resource_names=["proxy-a.default"]))
        resp = s.recv()
        types = [x.type_url for x in resp.resources] if resp else []
        check(types == ["type.googleapis.com/envoy.admin.v3.%sConfigDump" % k
                        for k in ("Clusters", "Listeners", "Routes", "Secrets")],
              "config_dump: the four admin dumps in istiod's order (%s)" % types)
        if resp is not None and resp.resources:
            cd = protos.unpack_any(resp.resources[0])
            got = sorted(protos.unpack_any(x.cluster).name for x in cd.dynamic_active_clusters)
            check(C_ALL in got and cd.version_info != "",
                  "config_dump: proxy-a's clusters with the version (%d)" % len(got))
            ld = protos.unpack_any(resp.resources[1])
            check(sorted(x.name for x in ld.dynamic_listeners) == lds_names and
                  sorted(protos.unpack_any(x.active_state.listener).name
                         for x in ld.dynamic_listeners) == lds_names,
                  "config_dump: proxy-a's listeners, as LDS sent them")
        s.send(Req(type_url=T_DUMP, resource_names=["nobody.nowhere"]))
        resp = s.recv()
        check(resp is not None and len(resp.resources) == 0,
              "config_dump: an unknown proxy answers no resources")
        s.close()

        # istio.io/debug needs a verified identity: none on the plaintext port
        s = ec.AdsStream(ch, SOTW, Req, Resp)
        s.send(Req(node=n, type_url="istio.io/debug", resource_names=["syncz"]))
        check(s.recv() is None and s.error is not None and
              s.error.code() == grpc.StatusCode.UNAUTHENTICATED and
              "authentication required" in s.error.details(),
              "istio.io/debug on the plaintext port: UNAUTHENTICATED (%s)" %
              (s.error.details() if s.error else None))

        # the HTTP syncz still lists every connection, as istiod's
        http = sorted(x["proxy"] for x in pilot.json("/debug/syncz"))
        check("plain-c.default" in http and "proxy-a.default" in http,
              "/debug/syncz (HTTP) lists plain-c too (%s)" % http)
        for x in (a, b, c):
            x.close()
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
