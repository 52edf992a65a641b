#!/usr/bin/python3
"""Mesh config that takes effect while proxies are connected (--meshConfig followed), over
one ADS stream of a sidecar that never reconnects:

1. the file laid out as the kubelet mounts a ConfigMap (mesh -> ..data/mesh, ..data -> a
   hidden version directory); a new version swapped in (accessLogFile: /dev/stdout) reaches
   the connected sidecar's listeners as a file access log, in one full push;
2. an in-place write of a mesh config that does not parse (accessLogEncoding: XML) is
   refused whole with the field in the log, and nothing is pushed: the last good one stays;
3. an in-place write turning outboundTrafficPolicy to REGISTRY_ONLY sends the sidecar's
   unknown-destination traffic to BlackHoleCluster instead of PassthroughCluster;
4. trustDomain changed: logged as taking effect at the next start, the rest applied;
5. defaultConfig changed: the next /inject answer's PROXY_CONFIG carries it;
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
NODE_ID = "sidecar~10.1.0.7~productpage-v1-1.default~default.svc.cluster.local"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def cm_version(d, ver, text, old=None):
    """What the kubelet does to a ConfigMap volume on an update."""
    os.makedirs(os.path.join(d, ver))
    with open(os.path.join(d, ver, "mesh"), "w") as f:
        f.write(text)
    tmp = os.path.join(d, "..data_tmp")
    os.symlink(ver, tmp)
    os.rename(tmp, os.path.join(d, "..data"))
    if old:
        os.unlink(os.path.join(d, old, "mesh"))
        os.rmdir(os.path.join(d, old))


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
        self.node.metadata.fields["LABELS"].struct_value.fields["app"].string_value = "productpage"
        self.s.send(self.Req(node=self.node, type_url=T_LDS))
        self.pushes = 0
        self.listeners = None

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
                self.listeners[lis.name] = lis
            self.s.send(self.Req(node=self.node, type_url=T_LDS, version_info=r.version_info,
                                 response_nonce=r.nonce))


def has_stdout_log(ls):
    return any(any(b"/dev/stdout" in al.typed_config.value for al in lis.access_log)
               for lis in ls.values())


def catch_all(ls):
    """The cluster of virtualOutbound's default filter chain (unknown destinations)."""
    vo = ls.get("virtualOutbound")
    if vo is None or not vo.default_filter_chain.filters:
        return None
    for f in vo.default_filter_chain.filters:  # telemetry filters first, then tcp_proxy
        if f.name == "envoy.filters.network.tcp_proxy":
            for c in (b"BlackHoleCluster", b"PassthroughCluster"):
                if c in f.typed_config.value:
                    return c.decode()
    return "?"


def main():
    work = tempfile.mkdtemp(prefix="mesh-reload-")
    protos = ec.Protos(work)
    mdir = os.path.join(work, "meshcfg")
    os.makedirs(mdir)
    cm_version(mdir, "..2026_1", "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n")
    os.symlink("..data/mesh", os.path.join(mdir, "mesh"))
    mesh = os.path.join(mdir, "mesh")
    https = ec.free_port()
    pilot = ec.Pilot(config_src=os.path.join(ec.env_path("PILOT_SRC"), "manifests", "samples"),
                     workdir=work, extra_args=["--meshConfig", mesh,
                                               "--httpsAddr", "127.0.0.1:%d" % https,
                                               "--caStateDir", os.path.join(work, "ca")])
    pilot.start()
    sc = None
    try:
        sc = Sidecar(pilot, protos)
        check(sc.wait(lambda ls: len(ls) > 0, 15), "the sidecar has its listeners (%d)" %
              len(sc.listeners or {}))
        check(not has_stdout_log(sc.listeners), "no access log at first")
        check(catch_all(sc.listeners) == "PassthroughCluster",
              "ALLOW_ANY at first: unknown destinations go to %s" % catch_all(sc.listeners))

        # ---- 1. a ConfigMap-style swap ----
        t0 = time.time()
        cm_version(mdir, "..2026_2", "accessLogFile: /dev/stdout\n", old="..2026_1")
        ok = sc.wait(has_stdout_log, 15)
        check(ok, "after the ..data swap the connected sidecar's listeners log to /dev/stdout "
              "(%.2f s)" % (time.time() - t0))
        check("mesh config reloaded from --meshConfig" in pilot.read_log(), "logged the reload")
        dm = pilot.json("/debug/mesh")
        check(dm.get("accessLogFile") == "/dev/stdout" and dm.get("rootNamespace") == "istio-system",
              "/debug/mesh shows the new mesh config with istiod's defaults: %s" %
              {k: dm.get(k) for k in ("accessLogFile", "rootNamespace")})

        # ---- 2. refused whole ----
        pushes = sc.pushes
        with open(mesh, "w") as f:  # in place, through the symlinks
            f.write("accessLogFile: /dev/stderr\naccessLogEncoding: XML\n")
        deadline = time.time() + 10
        while time.time() < deadline and "mesh config refused" not in pilot.read_log():
            time.sleep(0.1)
        log = pilot.read_log()
        check("mesh config refused" in log and "accessLogEncoding: want TEXT or JSON" in log,
              "a bad mesh config is refused with its field: %s" %
              [ln for ln in log.splitlines() if "refused" in ln][-1:])
        sc.wait(lambda ls: False, 2.0)
        check(sc.pushes == pushes and has_stdout_log(sc.listeners),
              "nothing pushed for it; the last good one stays (%d new pushes)" %
              (sc.pushes - pushes))

        # ---- 3. outbound traffic policy while connected ----
        t0 = time.time()
        with open(mesh, "w") as f:
            f.write("accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")
        ok = sc.wait(lambda ls: catch_all(ls) == "BlackHoleCluster", 15)
        check(ok, "REGISTRY_ONLY: unknown destinations now go to BlackHoleCluster (%.2f s)" %
              (time.time() - t0))

        # ---- 4. trustDomain ----
        with open(mesh, "w") as f:
            f.write("trustDomain: example.org\naccessLogFile: /dev/stdout\n"
                    "outboundTrafficPolicy:\n  mode: ALLOW_ANY\n")
        ok = sc.wait(lambda ls: catch_all(ls) == "PassthroughCluster", 15)
        check(ok and "takes effect at the next start" in pilot.read_log(),
              "a trustDomain change is logged for the next start, the rest applied")
        # ---- 5. defaultConfig: the injector's PROXY_CONFIG follows ----
        import webhook_cfgdir as wc
        hooks = wc.Hooks(https, os.path.join(work, "ca", "root-cert.pem"))

        def proxy_config():
            st, body = hooks.post("/inject", wc.review(wc.POD))
            if st != 200:
                return None
            import base64
            import json
            ops = json.loads(base64.b64decode(json.loads(body)["response"]["patch"]))
            pod = wc.apply_patch(json.loads(json.dumps(wc.POD)), ops)
            proxy = [c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy"][0]
            env = {e["name"]: e.get("value") for e in proxy.get("env", [])}
            return json.loads(env.get("PROXY_CONFIG") or "{}")
        before = proxy_config()
        with open(mesh, "w") as f:
            f.write("accessLogFile: /dev/stdout\ndefaultConfig:\n  concurrency: 3\n"
                    "  discoveryAddress: istiod-canary.istio-system.svc:15012\n")
        deadline = time.time() + 10
        after = before
        while time.time() < deadline:
            after = proxy_config()
            if after and after.get("discoveryAddress", "").startswith("istiod-canary"):
                break
            time.sleep(0.2)
        check(before is not None and before.get("concurrency") != 3 and after and
              after.get("concurrency") == 3 and
              after.get("discoveryAddress") == "istiod-canary.istio-system.svc:15012",
              "defaultConfig edited: the next injection's PROXY_CONFIG carries it (%s -> %s)" %
              (before, after))
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
