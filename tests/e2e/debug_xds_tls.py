#!/usr/bin/python3
"""Debug over xDS on the secure port (istiod's DebugGen rules), config-directory mode: the
callers prove identities with client certificates bootstrapped from the CA's state
directory (as ca_cfgdir.py does).

Checks: `istio.io/debug` with resource "syncz" from an istio-system identity answers one
Any of type istio.io/debug whose value is the /debug/syncz JSON (listing the connected
proxy); from a default-namespace identity "syncz" ends the stream PERMISSION_DENIED with
istiod's message, while "config_dump?proxyID=..." (one of istiod's activeNamespaceDebuggers)
answers the proxy's config dump JSON; two resource names end it INVALID_ARGUMENT;
`istio.io/debug/syncz` answers over TLS as on the plaintext port.

Skips (77) without grpcio or openssl.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import ca_kube as ck  # noqa: E402
from ca_kube import check, grpc  # noqa: E402
import ca_cfgdir as cc  # noqa: E402  (start, tls_channel, openssl_ok)

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def client_cert(work, state, name, ns, sa):
    """A client certificate for spiffe://cluster.local/ns/<ns>/sa/<sa> signed by the root."""
    csr, key = ck.make_csr(work, name)
    ext = ck.write(os.path.join(work, name + ".ext"),
                   "subjectAltName=critical,URI:spiffe://cluster.local/ns/%s/sa/%s\n" % (ns, sa))
    crt = os.path.join(work, name + ".crt")
    cc.openssl_ok("x509", "-req", "-in", os.path.join(work, name + ".csr"), "-CA",
                  os.path.join(state, "root-cert.pem"), "-CAkey",
                  os.path.join(state, "ca-key.pem"), "-set_serial", str(abs(hash(name)) % 10**6),
                  "-days", "1", "-extfile", ext, "-out", crt)
    return key, open(crt).read()


def main():
    if shutil.which("openssl") is None:
        ec.skip("openssl is not installed")
    work = tempfile.mkdtemp(prefix="debug-xds-tls-")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    state = os.path.join(work, "state")

    def args(p):
        return ["--caStateDir", state, "--caCertsDir", os.path.join(work, "none"),
                "--secureGRPCAddr", "127.0.0.1:%d" % p]
    p = cc.start(work, "p", args)
    try:
        root = open(os.path.join(state, "root-cert.pem")).read()

        def stream(ns, sa, name):
            key, crt = client_cert(work, state, name, ns, sa)
            ch = cc.tls_channel(p, root, key, crt)
            s = ec.AdsStream(ch, SOTW, Req, Resp)
            n = Node(id="sidecar~10.3.0.%d~%s.%s~%s.svc.cluster.local" % (len(name), name, ns, ns))
            n.metadata.fields["NAMESPACE"].string_value = ns
            n.metadata.fields["SERVICE_ACCOUNT"].string_value = sa
            return s, n

        # a proxy in default, connected over TLS
        px, pn = stream("default", "app", "app-1")
        pn.metadata.fields["PROXY_CONFIG"].struct_value.fields["x"].string_value = "y"
        px.send(Req(node=pn, type_url=ck.T_CDS))
        check(px.recv() is not None, "a proxy is connected over TLS (%s)" %
              (px.error and px.error.details()))

        s, n = stream("istio-system", "istiod-debug", "dbg-1")
        s.send(Req(node=n, type_url="istio.io/debug", resource_names=["syncz"]))
        r = s.recv()
        check(r is not None and len(r.resources) == 1 and
              r.resources[0].type_url == "istio.io/debug",
              "istio-system identity: istio.io/debug syncz answered (%s)" %
              (s.error and s.error.details()))
        if r is not None and r.resources:
            body = json.loads(r.resources[0].value.decode())
            check(any(x.get("proxy") == "app-1.default" for x in body),
                  "the answer is /debug/syncz's JSON, listing the proxy")
        s.send(Req(type_url="istio.io/debug/syncz"))
        r = s.recv()
        check(r is not None and [x.type_url for x in r.resources] ==
              ["type.googleapis.com/envoy.service.status.v3.ClientConfig"],
              "istio.io/debug/syncz over TLS: the one proxy with PROXY_CONFIG")
        s.send(Req(type_url="istio.io/debug", resource_names=["syncz", "adsz"]))
        check(s.recv() is None and s.error is not None and
              s.error.code() == grpc.StatusCode.INVALID_ARGUMENT and
              "exactly one debug request is required" in s.error.details(),
              "two resource names: INVALID_ARGUMENT (%s)" % (s.error and s.error.details()))

        s, n = stream("default", "viewer", "view-1")
        s.send(Req(node=n, type_url="istio.io/debug",
                   resource_names=["config_dump?proxyID=app-1.default"]))
        r = s.recv()
        ok = r is not None and len(r.resources) == 1
        if ok:
            dump = json.loads(r.resources[0].value.decode())
            ok = any("ClustersConfigDump" in c.get("@type", "") for c in dump.get("configs", []))
        check(ok, "default identity: config_dump of a proxy is allowed (%s)" %
              (s.error and s.error.details()))
        s.send(Req(type_url="istio.io/debug", resource_names=["syncz"]))
        check(s.recv() is None and s.error is not None and
              s.error.code() == grpc.StatusCode.PERMISSION_DENIED and
              "the debug info is not available for current identity" in s.error.details(),
              "default identity: syncz is PERMISSION_DENIED (%s)" %
              (s.error and s.error.details()))
        px.close()
    finally:
        check(p.stop() == 0, "pilot-discovery exits cleanly")
    print("%d failed" % len(ck.FAILS))
    if not ck.FAILS:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if ck.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
