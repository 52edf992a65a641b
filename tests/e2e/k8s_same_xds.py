#!/usr/bin/python3
"""The same objects, two sources, the same xDS: manifests/samples (and Istio's bookinfo,
bookinfo-gateway, destination-rule-all and virtual-service-reviews-jason-v2-v3 from
$PILOT_SHARED when present, with tests/xds/gen/fixtures/bookinfo-telemetry.yaml's
Telemetries) served by one pilot-discovery with --configDir and by one with
--kubeconfig at a REAL kube-apiserver + etcd (tests/k8s/realk8s.py, binaries from
$PILOT_PEERS_BIN; RBAC on, pilot-discovery authenticated only by a bound token of
istio-system/istiod) after `kubectl apply` of the same files. For each node kind
  - Envoy sidecars in default and in demo (the greeter v1 and web v1 Pods' addresses),
  - an Envoy router in istio-system (labels istio: ingressgateway, the gateway Pod's address),
  - a proxyless gRPC client naming a few host:port listeners, and a gRPC server (the
    greeter v2 Pod) naming its xds.istio.io/grpc/lds/inbound/<ip>:<port> listener,
every type is fetched over raw ADS from both (Envoy: LDS and CDS wildcard, then the RDS and
EDS names they reference; gRPC: named LDS -> RDS -> CDS -> EDS) and the resources must be
identical byte for byte per (type, name); version_info and nonces are not compared.
manifests/samples is applied before the Kubernetes-fed pilot starts (its initial lists),
bookinfo after (watch events).

What a real server adds to the objects is the point: defaults (Service type, ports'
protocol and targetPort, ipFamilies, sessionAffinity, internalTrafficPolicy, EndpointSlice
ports' protocol, Pod spec defaults and status.qosClass), uid, resourceVersion,
managedFields, the kubernetes.io/metadata.name label of Namespaces. What a real cluster
has that the files do not is given to the --configDir side too, as the server holds it,
so that both sources see the same objects: the API server's own Service default/kubernetes
and its EndpointSlice, and the cluster IPs the server allocated to bookinfo's Services
(bookinfo.yaml names none). The samples' loopback addresses (127.0.0.N) become 10.244.0.N
in the files both sides get, node ids included: a real server refuses loopback addresses
in EndpointSlices ("may not be in the loopback range"). The Pods' status is written through the status subresource,
as a kubelet would (create drops it), and the ServiceAccounts they name are created (no
controller-manager runs).

A difference means one source builds a different model from the same objects (say,
metadata the API server adds leaking into xDS); the failure prints both sides as text.
Skips (77) without grpcio, protoc, the binary or $PILOT_PEERS_BIN's binaries.
"""
import difflib
import json
import os
import re
import queue
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import k8s_common as kc  # noqa: E402

try:
    import grpc
    from google.protobuf import text_format
except ImportError as e:
    ec.skip("python3-grpcio or python3-protobuf is not installed (%s)" % e)

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
T_RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
T_HCM = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
         "HttpConnectionManager")
TYPE_SHORT = {T_LDS: "LDS", T_RDS: "RDS", T_CDS: "CDS", T_EDS: "EDS"}
CLUSTER_EDS = 3  # envoy.config.cluster.v3.Cluster.DiscoveryType.EDS

# (label, node id, metadata, labels, gRPC listener names or None for an Envoy node)
NODES = [
    ("sidecar", "sidecar~127.0.0.21~greeter-v1-7d9c8b6f5-a1b2c.default~default.svc.cluster.local",
     {"NAMESPACE": "default", "ISTIO_VERSION": "1.30.0", "CLUSTER_ID": "Kubernetes"},
     {"app": "greeter", "version": "v1"}, None),
    ("sidecar-demo", "sidecar~127.0.0.11~web-v1-6b7f9d4c8-x7k2m.demo~demo.svc.cluster.local",
     {"NAMESPACE": "demo", "ISTIO_VERSION": "1.30.0", "CLUSTER_ID": "Kubernetes"},
     {"app": "web", "version": "v1"}, None),
    ("router", "router~127.0.0.2~istio-ingressgateway-5c8d9f7b6-k2l3m.istio-system~"
     "istio-system.svc.cluster.local",
     {"NAMESPACE": "istio-system", "ISTIO_VERSION": "1.30.0", "CLUSTER_ID": "Kubernetes"},
     {"istio": "ingressgateway", "app": "istio-ingressgateway"}, None),
    ("grpc", "sidecar~127.0.0.99~client.default~default.svc.cluster.local",
     {"NAMESPACE": "default", "GENERATOR": "grpc", "ISTIO_VERSION": "1.30.0"}, {},
     ["greeter.default.svc.cluster.local:50051", "catalog.demo.svc.cluster.local:9080",
      "web.demo.svc.cluster.local:9080", "reviews.default.svc.cluster.local:9080",
      "productpage.default.svc.cluster.local:9080"]),
    ("grpc-server", "sidecar~127.0.0.22~greeter-v2-5f6a7b8c9-d4e5f.default~"
     "default.svc.cluster.local",
     {"NAMESPACE": "default", "GENERATOR": "grpc", "ISTIO_VERSION": "1.30.0"},
     {"app": "greeter", "version": "v2"},
     ["xds.istio.io/grpc/lds/inbound/127.0.0.22:50051",
      "greeter.default.svc.cluster.local:50051"]),
]

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Ads:
    """One SotW ADS stream; ask() sends a request and waits for the answer of that type."""

    def __init__(self, target, protos, node):
        self.protos = protos
        self.Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
        Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
        self.node = node
        self.ch = grpc.insecure_channel(target)
        self.stream = ec.AdsStream(self.ch, SOTW, self.Req, Resp)

    def ask(self, type_url, names, timeout=10.0):
        """{name: serialized resource bytes} of the answer to one request."""
        req = self.Req(type_url=type_url, resource_names=list(names))
        if self.node is not None:
            req.node.CopyFrom(self.node)
            self.node = None
        self.stream.send(req)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                r = self.stream.out.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if r is None:
                raise RuntimeError("ADS stream ended while waiting for %s" % type_url)
            if r.type_url == type_url:
                out = {}
                for a in r.resources:
                    m = self.protos.unpack_any(a)
                    out[m.name if hasattr(m, "name") and m.name else
                        getattr(m, "cluster_name", "")] = a.value
                return out
        raise RuntimeError("no %s answer within %.0fs" % (TYPE_SHORT[type_url], timeout))

    def close(self):
        self.stream.close()
        self.ch.close()


def hcms(protos, lis):
    """The HttpConnectionManagers of a Listener (filter chains and the gRPC api_listener)."""
    out = []
    if lis.HasField("api_listener"):
        a = lis.api_listener.api_listener
        if a.type_url == T_HCM:
            out.append(protos.unpack_any(a))
    chains = list(lis.filter_chains)
    if lis.HasField("default_filter_chain"):
        chains.append(lis.default_filter_chain)
    for fc in chains:
        for f in fc.filters:
            if f.HasField("typed_config") and f.typed_config.type_url == T_HCM:
                out.append(protos.unpack_any(f.typed_config))
    return out


def route_names(protos, lds):
    Listener = protos.cls("envoy.config.listener.v3.Listener")
    names = set()
    for raw in lds.values():
        for h in hcms(protos, Listener.FromString(raw)):
            if h.HasField("rds"):
                names.add(h.rds.route_config_name)
    return sorted(names)


def eds_names(protos, cds):
    Cluster = protos.cls("envoy.config.cluster.v3.Cluster")
    names = set()
    for raw in cds.values():
        c = Cluster.FromString(raw)
        if c.type == CLUSTER_EDS:
            names.add(c.eds_cluster_config.service_name or c.name)
    return sorted(names)


def route_clusters(protos, rds):
    RC = protos.cls("envoy.config.route.v3.RouteConfiguration")
    names = set()
    for raw in rds.values():
        for vh in RC.FromString(raw).virtual_hosts:
            for r in vh.routes:
                if r.route.cluster:
                    names.add(r.route.cluster)
                for wc in r.route.weighted_clusters.clusters:
                    names.add(wc.name)
    return sorted(names)


def fetch(target, protos, node_msg, grpc_listeners):
    """{(type, name): bytes} of everything one node gets."""
    ads = Ads(target, protos, node_msg)
    try:
        got = {}
        if grpc_listeners is None:
            lds = ads.ask(T_LDS, [])
            cds = ads.ask(T_CDS, [])
            rds = ads.ask(T_RDS, route_names(protos, lds))
            eds = ads.ask(T_EDS, eds_names(protos, cds))
        else:
            lds = ads.ask(T_LDS, grpc_listeners)
            rds = ads.ask(T_RDS, route_names(protos, lds))
            cds = ads.ask(T_CDS, route_clusters(protos, rds))
            eds = ads.ask(T_EDS, eds_names(protos, cds))
        for t, res in ((T_LDS, lds), (T_RDS, rds), (T_CDS, cds), (T_EDS, eds)):
            for name, raw in res.items():
                got[(t, name)] = raw
        return got
    finally:
        ads.close()


def as_text(protos, type_url, raw):
    m = protos.cls(type_url.split("/", 1)[1]).FromString(raw)
    return text_format.MessageToString(m, descriptor_pool=protos.pool, print_unknown_fields=True)


def describe(protos, a, b):
    """Readable difference of two fetches (a: configDir, b: Kubernetes)."""
    lines = []
    for k in sorted(set(a) | set(b)):
        t, name = k
        if k not in b:
            lines.append("  %s %s: only from --configDir" % (TYPE_SHORT[t], name))
        elif k not in a:
            lines.append("  %s %s: only from --kubeconfig" % (TYPE_SHORT[t], name))
        elif a[k] != b[k]:
            lines.append("  %s %s differs:" % (TYPE_SHORT[t], name))
            d = difflib.unified_diff(as_text(protos, t, a[k]).splitlines(),
                                     as_text(protos, t, b[k]).splitlines(),
                                     "configDir", "kubeconfig", lineterm="", n=2)
            lines.extend("    " + x for x in list(d)[:60])
    return "\n".join(lines[:300])


def config_files(src, shared):
    """The files both sources get: manifests/samples, plus bookinfo when present."""
    files = sorted(os.path.join(src, "manifests", "samples", f)
                   for f in os.listdir(os.path.join(src, "manifests", "samples"))
                   if f.endswith(".yaml"))
    bookinfo = os.path.join(shared, "istio", "samples", "bookinfo") if shared else ""
    extra = [os.path.join(bookinfo, "platform", "kube", "bookinfo.yaml"),
             os.path.join(bookinfo, "networking", "bookinfo-gateway.yaml"),
             os.path.join(bookinfo, "networking", "destination-rule-all.yaml"),
             os.path.join(bookinfo, "networking", "virtual-service-reviews-jason-v2-v3.yaml")]
    if all(os.path.exists(p) for p in extra):
        # and the Telemetries of the generator fixture (telemetry.istio.io v1 and v1alpha1)
        files += extra + [os.path.join(src, "tests", "xds", "gen", "fixtures",
                                       "bookinfo-telemetry.yaml")]
    else:
        print("note: %s missing, comparing manifests/samples only" % bookinfo)
    return files


SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields",
                 "generation", "annotations")


def as_file_object(obj):
    """An object read from the server, as a file would hold it: the server's bookkeeping
    in metadata dropped, spec and data kept."""
    o = json.loads(json.dumps(obj))
    for f in SERVER_FIELDS:
        o["metadata"].pop(f, None)
    o.pop("status", None)
    return o


def write_docs(path, objs):
    """A multi-document YAML file of JSON objects (JSON is YAML)."""
    with open(path, "w") as f:
        for o in objs:
            f.write("---\n" + json.dumps(o, indent=1) + "\n")


LOOPBACK = re.compile(r"\b127\.0\.0\.(\d+)\b")


def off_loopback(text):
    """127.0.0.N -> 10.244.0.N: a real server refuses loopback addresses in EndpointSlices
    ("may not be in the loopback range"); both sources get the same translated files."""
    return LOOPBACK.sub(r"10.244.0.\1", text)


def main():
    if not shutil.which("protoc"):
        ec.skip("protoc is not installed")
    t_start = time.time()
    src = ec.env_path("PILOT_SRC")
    shared = os.environ.get("PILOT_SHARED", "")
    work = tempfile.mkdtemp(prefix="k8s-same-xds-")
    protos = ec.Protos(work)
    files = config_files(src, shared)
    print("objects from: %s" % ", ".join(os.path.relpath(f, os.path.dirname(src))
                                         for f in files))

    # The files, off loopback (see off_loopback), as both sources get them.
    os.makedirs(os.path.join(work, "objs"))
    translated = []
    for i, f in enumerate(files):
        dst = os.path.join(work, "objs", "%02d-%s" % (i + 1, os.path.basename(f)))
        with open(f) as a, open(dst, "w") as b:
            b.write(off_loopback(a.read()))
        translated.append((f, dst))
    files = [t for _, t in translated]
    src_of = dict((t, f) for f, t in translated)

    try:
        api = kc.ApiServer(work)
    except SystemExit:  # skipped
        shutil.rmtree(work, ignore_errors=True)
        raise
    file_pilot = kube_pilot = None
    try:
        file_pilot = ec.Pilot(workdir=os.path.join(work, "file"))
        # manifests/samples before the start (read by the initial lists), the rest after
        # (read from watch events), so both ways into the model are compared
        first = [f for f in files if "/manifests/samples/" in src_of[f]]
        later = [f for f in files if f not in first]
        api.apply_objects(first)
        kube_pilot = kc.KubePilot(api.kubeconfig, os.path.join(work, "kube"))
        kube_pilot.start()
        if later:
            api.apply_objects(later)

        # The --configDir side: the same files, plus what the real cluster holds beyond them
        # (the API server's own Service and EndpointSlice; the cluster IPs it allocated).
        svc_ips = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]
                   for o in api.get("/api/v1/services")["items"]}
        extra = [as_file_object(api.get("/api/v1/namespaces/default/services/kubernetes"))]
        # With --advertise-address 127.0.0.1 the server cannot write its own endpoints
        # (loopback is refused there too), so there is normally no such slice.
        sl = api.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        if sl:
            extra.append(as_file_object(sl))
        print("the server's own: Service default/kubernetes %s, EndpointSlice %s" % (
            extra[0]["spec"]["clusterIP"], sl and [(e["addresses"], [p["port"] for p in
                                                                 sl["ports"]])
                                             for e in sl["endpoints"]]))
        write_docs(os.path.join(file_pilot.config_dir, "00-server-kubernetes.yaml"), extra)
        for f in files:
            dst = os.path.join(file_pilot.config_dir, os.path.basename(f))
            objs = api.k8s.objects_of(f)
            allocated = []
            for o in objs:
                if o.get("kind") == "Service" and not o.get("spec", {}).get("clusterIP"):
                    md = o["metadata"]
                    ip = svc_ips[(md.get("namespace", "default"), md["name"])]["clusterIP"]
                    o["spec"]["clusterIP"] = ip
                    allocated.append("%s=%s" % (md["name"], ip))
            if allocated:
                write_docs(dst, objs)
                print("cluster IPs the server allocated, given to --configDir: " +
                      ", ".join(allocated))
            else:
                shutil.copy(f, dst)
        file_pilot.start()

        Node = protos.cls("envoy.config.core.v3.Node")
        for label, node_id, md, labels, listeners in NODES:
            node_id = off_loopback(node_id)
            listeners = [off_loopback(x) for x in listeners] if listeners else listeners

            def node():
                n = Node(id=node_id, cluster="e2e")
                for k, v in md.items():
                    n.metadata.fields[k].string_value = v
                for k, v in labels.items():
                    n.metadata.fields["LABELS"].struct_value.fields[k].string_value = v
                n.locality.region = "r1"
                return n
            # Both sides may still be settling right after /ready: compare until they agree
            # or the deadline passes, then show the last difference.
            last = [None]

            def same():
                a = fetch(file_pilot.target(), protos, node(), listeners)
                b = fetch(kube_pilot.target(), protos, node(), listeners)
                last[0] = (a, b)
                return a == b
            ok = kc.poll(same, 20, 0.5)
            a, b = last[0]
            counts = {}
            for t, _ in a:
                counts[TYPE_SHORT[t]] = counts.get(TYPE_SHORT[t], 0) + 1
            check(ok, "%s: %d resources identical from both sources %s" %
                  (label, len(a), counts) + ("" if ok else ":\n" + describe(protos, a, b)))
            need = ("LDS", "RDS", "CDS", "EDS")
            check(all(counts.get(t, 0) > 0 for t in need),
                  "%s: every type has resources (%s)" % (label, counts))
        check(*api.k8s.rbac_verdict())
    except Exception as e:  # reported with the logs below
        import traceback
        traceback.print_exc()
        failures.append("exception: %s" % e)
    finally:
        codes = []
        for p in (file_pilot, kube_pilot):
            if p is not None and p.proc is not None:
                codes.append(p.stop())
        api.stop()
        if any(codes):
            failures.append("pilot-discovery clean exits (%s)" % codes)
    if failures:
        print("\n%d failures:\n  %s" % (len(failures), "\n  ".join(failures)))
        for name, p in (("--configDir", file_pilot), ("--kubeconfig", kube_pilot)):
            if p is not None:
                print("--- %s pilot log ---\n%s" % (name, p.read_log()[-3000:]))
        print("logs kept in " + work)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("passed in %.0f s (%s)" % (time.time() - t_start, api.k8s.banner()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
