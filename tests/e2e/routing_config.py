"""The config directory the real-xDS-client routing tests use: a gRPC "greeter" Service in
namespace e2e with three versioned Pods on loopback addresses chosen per run (so parallel
tests never share an address), a DestinationRule with subsets v1..v3 (ROUND_ROBIN, which
gRPC requires), and a VirtualService:
  header end-user: jason   -> v2
  header x-demo-fault: abort -> fault abort (HTTP 503 => gRPC UNAVAILABLE)
  otherwise                 -> v1 WEIGHT_V1 % / v3 WEIGHT_V3 %
"""
import os
import socket

NS = "e2e"
HOST = "greeter.%s.svc.cluster.local" % NS
VERSIONS = ("v1", "v2", "v3")


def pick_backends(seed):
    """Three 127.0.0.x addresses and one port free on all of them."""
    base = 100 + (seed % 40) * 3       # 127.0.0.100 .. 127.0.0.219
    ips = ["127.0.0.%d" % (base + i) for i in range(3)]
    for _ in range(50):
        s = socket.socket()
        s.bind((ips[0], 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for ip in ips[1:]:
            t = socket.socket()
            try:
                t.bind((ip, port))
            except OSError:
                ok = False
            t.close()
        if ok:
            return ips, port
    raise RuntimeError("no common free port on %s" % ips)


def services_yaml(ips, port):
    docs = ["""apiVersion: v1
kind: Namespace
metadata: {name: %s}
""" % NS, """apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: %s, labels: {app: greeter}}
spec:
  clusterIP: 10.96.77.77
  selector: {app: greeter}
  ports:
  - {name: grpc, port: %d, targetPort: %d, protocol: TCP}
""" % (NS, port, port)]
    eps = ""
    for v, ip in zip(VERSIONS, ips):
        docs.append("""apiVersion: v1
kind: Pod
metadata:
  name: greeter-%s
  namespace: %s
  labels: {app: greeter, version: %s}
spec:
  serviceAccountName: greeter
  nodeName: node-1
  containers:
  - name: greeter
    image: example.invalid/greeter:%s
status:
  phase: Running
  podIP: %s
  podIPs:
  - ip: %s
  conditions:
  - {type: Ready, status: "True"}
""" % (v, NS, v, v, ip, ip))
        eps += """- addresses: ["%s"]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  targetRef: {kind: Pod, name: greeter-%s, namespace: %s}
""" % (ip, v, NS)
    docs.append("""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: greeter-abcde
  namespace: %s
  labels: {kubernetes.io/service-name: greeter}
addressType: IPv4
ports:
- {name: grpc, port: %d, protocol: TCP}
endpoints:
%s""" % (NS, port, eps))
    docs.append("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: %s}
spec:
  host: %s
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
""" % (NS, HOST))
    return "---\n".join(docs)


def vs_yaml(w1, w3):
    return """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: %s}
spec:
  hosts: [greeter]
  http:
  - name: jason
    match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: greeter, subset: v2}
  - name: abort
    match:
    - headers:
        x-demo-fault: {exact: abort}
    fault:
      abort:
        percentage: {value: 100}
        httpStatus: 503
    route:
    - destination: {host: greeter, subset: v1}
  - name: split
    route:
    - destination: {host: greeter, subset: v1}
      weight: %d
    - destination: {host: greeter, subset: v3}
      weight: %d
""" % (NS, w1, w3)


def write_config(config_dir, ips, port, w1=80, w3=20):
    os.makedirs(config_dir, exist_ok=True)
    with open(os.path.join(config_dir, "greeter.yaml"), "w") as f:
        f.write(services_yaml(ips, port))
    set_weights(config_dir, w1, w3)


def set_weights(config_dir, w1, w3):
    """Rewrites the VirtualService file atomically (a rename, as editors and kubectl do)."""
    path = os.path.join(config_dir, "greeter-vs.yaml")
    # written beside the watched directory, then renamed in: the watcher never sees a
    # half-written file
    tmp = os.path.join(os.path.dirname(os.path.abspath(config_dir)), ".greeter-vs.tmp")
    with open(tmp, "w") as f:
        f.write(vs_yaml(w1, w3))
    os.rename(tmp, path)


def bootstrap(path, xds_target, node_id="sidecar~127.0.0.99~client.e2e~e2e.svc.cluster.local"):
    import json
    doc = {
        "xds_servers": [{
            "server_uri": xds_target,
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": node_id,
            "cluster": "client",
            "metadata": {"GENERATOR": "grpc", "NAMESPACE": NS, "ISTIO_VERSION": "1.30.0"},
            "locality": {"region": "r1", "zone": "z1"},
        },
    }
    with open(path, "w") as f:
        json.dump(doc, f)


def routing_checks(name, run, config_dir, check, unavailable="UNAVAILABLE"):
    """The routing checks every external xDS client passes, through run(n, *headers) ->
    (counts by version, errors by status name): the 80/20 split within 10 points, the
    end-user header to v2, the fault abort, and a VirtualService edit moving all traffic
    to v3 within 30 s. `unavailable` is the client's spelling of UNAVAILABLE."""
    import time
    counts, errors = run(300)
    v1 = 100.0 * counts.get("v1", 0) / 300
    v3 = 100.0 * counts.get("v3", 0) / 300
    check(not errors and abs(v1 - 80) <= 10 and abs(v3 - 20) <= 10 and "v2" not in counts,
          "%s: weighted split 80/20 within 10 points (%s %s)" % (name, counts, errors))
    counts, errors = run(30, "end-user=jason")
    check(counts == {"v2": 30}, "%s: end-user: jason -> v2 (%s %s)" % (name, counts, errors))
    counts, errors = run(10, "x-demo-fault=abort")
    check(errors == {unavailable: 10}, "%s: fault abort -> UNAVAILABLE (%s %s)" %
          (name, counts, errors))
    set_weights(config_dir, 0, 100)
    t0 = time.time()
    counts, errors = run(50)
    while counts != {"v3": 50} and time.time() - t0 < 30:
        time.sleep(0.5)
        counts, errors = run(50)
    check(counts == {"v3": 50}, "%s: after the VirtualService edit all go to v3 (%s %s)"
          % (name, counts, errors))


def start_backend(ip, port, version):
    """A plain gRPC backend on ip:port answering /e2e.Greeter/Hello with its version."""
    from concurrent import futures
    import grpc
    handler = grpc.method_handlers_generic_handler(
        "e2e.Greeter", {"Hello": grpc.unary_unary_rpc_method_handler(
            lambda req, ctx: version.encode())})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                      options=[("grpc.so_reuseport", 0)])
    srv.add_generic_rpc_handlers((handler,))
    if srv.add_insecure_port("%s:%d" % (ip, port)) == 0:
        raise RuntimeError("cannot bind %s:%d" % (ip, port))
    srv.start()
    return srv
