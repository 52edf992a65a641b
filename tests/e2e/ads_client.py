#!/usr/bin/python3
"""ADS protocol test against the real pilot-discovery, with a raw gRPC client (Debian's
grpcio) and Envoy messages built at runtime from the .proto files.

Checks: the initial request is answered; an ACK is not; a NACK (error_detail) is counted
and not resent; a stale nonce is ignored; a subscription change is answered; a reconnect
with an empty nonce gets a full answer; Delta subscribe/unsubscribe and removed_resources
(for a deleted Service and for a name that does not exist); a malformed node ID ends the
stream with INVALID_ARGUMENT; an unknown method gets UNIMPLEMENTED; /debug/syncz, adsz and
config_dump reflect the streams; metrics count rejects and expired nonces.
"""
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
NODE_ID = "sidecar~127.0.0.99~adsclient.default~default.svc.cluster.local"
HOST = "greeter.default.svc.cluster.local"
C_ALL = "outbound|50051||" + HOST
C_V1 = "outbound|50051|v1|" + HOST
C_GONE = "outbound|7070||removable.default.svc.cluster.local"

REMOVABLE = """apiVersion: v1
kind: Service
metadata: {name: removable, namespace: default}
spec:
  clusterIP: 10.96.99.99
  selector: {app: removable}
  ports:
  - {name: grpc, port: 7070, targetPort: 7070}
"""

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def Stream(channel, method, req_cls, resp_cls):
    return ec.AdsStream(channel, method, req_cls, resp_cls)


def main():
    src = env_src = os.environ.get("PILOT_SRC")
    if not src:
        ec.skip("PILOT_SRC not set")
    work = tempfile.mkdtemp(prefix="ads-client-")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    DReq = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryRequest")
    DResp = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryResponse")

    pilot = ec.Pilot(config_src=os.path.join(env_src, "manifests", "samples"),
                     config_files={"zz-removable.yaml": REMOVABLE}, workdir=work)
    pilot.start()
    rc = 1
    try:
        ch = grpc.insecure_channel(pilot.target())

        def node(node_id=NODE_ID):
            n = Node(id=node_id)
            n.metadata.fields["GENERATOR"].string_value = "grpc"
            n.metadata.fields["NAMESPACE"].string_value = "default"
            n.locality.region = "r1"
            return n

        # ---- SotW ----
        s = Stream(ch, SOTW, Req, Resp)
        s.send(Req(node=node(), type_url=T_LDS, resource_names=[HOST + ":50051"]))
        r = s.recv()
        check(r is not None and r.type_url == T_LDS, "LDS: initial request answered")
        check(r is not None and len(r.resources) == 1, "LDS: the named listener is in the answer")
        lds_nonce = r.nonce if r else ""
        check(bool(r and r.version_info), "LDS: version_info set")
        if r and r.resources:
            lis = protos.unpack_any(r.resources[0])
            check(lis.name == HOST + ":50051", "LDS: listener name is host:port")

        s.send(Req(type_url=T_CDS, resource_names=[C_ALL, C_V1]))
        r = s.recv()
        check(r is not None and r.type_url == T_CDS and len(r.resources) == 2,
              "CDS: two named clusters answered")
        cds_nonce = r.nonce if r else ""
        check(r is not None and r.nonce != lds_nonce, "nonces are unique per response")
        cds_version = r.version_info if r else ""

        s.send(Req(type_url=T_CDS, version_info=cds_version, response_nonce=cds_nonce,
                   resource_names=[C_ALL, C_V1]))
        check(s.recv(timeout=1.5) is None, "CDS: an ACK gets no answer")

        s.send(Req(type_url=T_EDS, resource_names=[C_ALL]))
        r = s.recv()
        check(r is not None and r.type_url == T_EDS and len(r.resources) == 1,
              "EDS: initial request for one cluster answered")
        eds_nonce = r.nonce if r else ""
        if r and r.resources:
            cla = protos.unpack_any(r.resources[0])
            n_eps = sum(len(le.lb_endpoints) for le in cla.endpoints)
            check(cla.cluster_name == C_ALL and n_eps >= 2,
                  "EDS: ClusterLoadAssignment names the cluster, has the endpoints (%d)" % n_eps)

        # NACK: counted, kept, not resent
        rejects0 = pilot.metric("pilot_total_xds_rejects", {"type": "eds"})
        nack = Req(type_url=T_EDS, response_nonce=eds_nonce, resource_names=[C_ALL])
        nack.error_detail.code = 3
        nack.error_detail.message = "e2e: rejected on purpose"
        s.send(nack)
        check(s.recv(timeout=1.5) is None, "EDS: a NACK is not answered (no resend)")
        check(pilot.metric("pilot_total_xds_rejects", {"type": "eds"}) == rejects0 + 1,
              "pilot_total_xds_rejects{type=eds} counted the NACK")
        syncz = pilot.json("/debug/syncz")
        me = [x for x in syncz if x.get("proxy") == "adsclient.default"]
        check(len(me) == 1, "/debug/syncz lists the proxy as pod.namespace")
        if me:
            e = me[0]
            keys = ["cluster_id", "proxy", "proxy_type", "proxy_version", "istio_version",
                    "cluster_sent", "cluster_acked", "listener_sent", "listener_acked",
                    "route_sent", "route_acked", "endpoint_sent", "endpoint_acked"]
            check(all(k in e for k in keys), "/debug/syncz has Kiali's keys")
            check(e["cluster_sent"] == cds_nonce and e["cluster_acked"] == cds_nonce,
                  "/debug/syncz: cluster sent == acked after the ACK")
            check(e["resources"].get(T_EDS, {}).get("lastError") == "e2e: rejected on purpose",
                  "/debug/syncz keeps the NACK's error")

        # stale nonce with a new subscription: ignored
        exp0 = pilot.metric("pilot_xds_expired_nonce")
        s.send(Req(type_url=T_EDS, response_nonce="stale-nonce", resource_names=[C_ALL, C_V1]))
        check(s.recv(timeout=1.5) is None, "EDS: a stale nonce is ignored")
        check(pilot.metric("pilot_xds_expired_nonce") == exp0 + 1,
              "pilot_xds_expired_nonce counted it")

        # matching nonce with a changed subscription: answered
        s.send(Req(type_url=T_EDS, response_nonce=eds_nonce, resource_names=[C_ALL, C_V1]))
        r = s.recv()
        check(r is not None and r.type_url == T_EDS and len(r.resources) == 2,
              "EDS: a subscription change on ACK is answered with the new set")

        adsz = pilot.json("/debug/adsz")
        check(adsz.get("totalClients", 0) >= 1, "/debug/adsz counts the client")
        watches = [c["watches"] for c in adsz.get("clients", []) if "adsclient" in c["connectionId"]]
        check(bool(watches) and sorted(watches[0].get(T_EDS, [])) == sorted([C_ALL, C_V1]),
              "/debug/adsz shows the EDS watch")
        st, _ = ec.http_get(pilot.url("/debug/config_dump"))
        check(st == 400, "/debug/config_dump without proxyID: 400")
        st, body = ec.http_get(pilot.url("/debug/config_dump?proxyID=nobody.nowhere"))
        check(st == 404 and "Proxy not connected to this Pilot instance" in body,
              "/debug/config_dump for an unknown proxy: 404")
        dump = pilot.json("/debug/config_dump?proxyID=adsclient.default&include_eds")
        types = [c.get("@type", "") for c in dump.get("configs", [])]
        check(any(t.endswith("ClustersConfigDump") for t in types) and
              any(t.endswith("EndpointsConfigDump") for t in types),
              "/debug/config_dump has clusters and endpoints")
        clusters = [c for c in dump["configs"] if c["@type"].endswith("ClustersConfigDump")]
        check(bool(clusters) and len(clusters[0].get("dynamic_active_clusters", [])) == 2,
              "/debug/config_dump lists the two clusters sent")
        s.close()

        # reconnect: a new stream with empty nonce gets a full answer
        s = Stream(ch, SOTW, Req, Resp)
        s.send(Req(node=node(), type_url=T_CDS, version_info=cds_version,
                   resource_names=[C_ALL, C_V1]))
        r = s.recv()
        check(r is not None and len(r.resources) == 2,
              "reconnect with an empty nonce gets the full set again")
        s.close()

        # ---- Delta ----
        d = Stream(ch, DELTA, DReq, DResp)
        d.send(DReq(node=node(), type_url=T_CDS, resource_names_subscribe=[C_ALL, C_V1, C_GONE]))
        r = d.recv()
        names = sorted(x.name for x in r.resources) if r else []
        check(names == sorted([C_ALL, C_V1, C_GONE]), "Delta CDS: subscribed resources sent")
        check(r is not None and all(len(x.version) > 0 for x in r.resources),
              "Delta: each resource has a version")
        d.send(DReq(type_url=T_CDS, response_nonce=r.nonce if r else ""))
        check(d.recv(timeout=1.5) is None, "Delta: an ACK gets no answer")
        d.send(DReq(type_url=T_CDS, resource_names_unsubscribe=[C_V1]))
        check(d.recv(timeout=1.5) is None, "Delta: an unsubscribe gets no answer")
        d.send(DReq(type_url=T_CDS, resource_names_subscribe=["outbound|1||nope.default.svc.cluster.local"]))
        r = d.recv()
        check(r is not None and list(r.removed_resources) == ["outbound|1||nope.default.svc.cluster.local"],
              "Delta: subscribing to a missing resource answers it removed")
        # delete the Service behind C_GONE: a push removes it
        os.unlink(os.path.join(pilot.config_dir, "zz-removable.yaml"))
        r = d.recv(timeout=10)
        while r is not None and C_GONE not in r.removed_resources:
            r = d.recv(timeout=10)
        check(r is not None and C_GONE in r.removed_resources and C_V1 not in r.removed_resources,
              "Delta: a deleted Service's cluster arrives in removed_resources")
        d.close()

        # ---- errors ----
        s = Stream(ch, SOTW, Req, Resp)
        s.send(Req(node=Node(id="sidecar~127.0.0.1~only-three-parts"), type_url=T_CDS))
        r = s.recv()
        check(r is None and s.error is not None and
              s.error.code() == grpc.StatusCode.INVALID_ARGUMENT and
              "node ID" in s.error.details(),
              "malformed node ID: INVALID_ARGUMENT naming the node ID (%s)" %
              (s.error.details() if s.error else "no error"))
        s = Stream(ch, SOTW, Req, Resp)
        s.send(Req(type_url=T_CDS))
        r = s.recv()
        check(r is None and s.error is not None and
              s.error.code() == grpc.StatusCode.INVALID_ARGUMENT,
              "missing node on the first request: INVALID_ARGUMENT")

        unary = ch.unary_unary("/no.such.Service/Method")
        try:
            unary(b"", timeout=5)
            check(False, "unknown method: UNIMPLEMENTED")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "unknown method: UNIMPLEMENTED")
        ch.close()
        rc = 0
    finally:
        code = pilot.stop()
        if code != 0:
            print("pilot-discovery exited with %d:\n%s" % (code, pilot.read_log()))
            failures.append("clean exit")
    if failures:
        print("\n%d failures:\n  %s\n--- pilot log ---\n%s" %
              (len(failures), "\n  ".join(failures), pilot.read_log()))
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
