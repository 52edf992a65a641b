#!/usr/bin/python3
"""Fault campaign: pilot-discovery --kubeconfig against a REAL kube-apiserver + etcd
(tests/k8s/realk8s.py, binaries from $PILOT_PEERS_BIN; RBAC on, pilot-discovery
authenticated only by a bound token of istio-system/istiod, through a realk8s Relay the
test holds and cuts), each fault repeated R rounds:

  etcd_stop      etcd SIGSTOPped ~3 s while writes wait on it, then SIGCONT
  etcd_kill      etcd SIGKILLed and started again (same ports, same data directory)
  api_restart    the API server's graceful restart (SIGTERM: ~30 s with open watches,
                 then every watch cut mid-stream; same port, certificates, etcd)
  api_kill       the API server SIGKILLed and started again
  watch_cut      every connection through the relay reset, twice, in the middle of a
                 burst of writes
  slow_list      the relay held while a second pilot-discovery starts (its discovery and
                 initial lists hang) and writes land; released after ~3 s
  crd_recreate   kubectl delete crd virtualservices.networking.istio.io (the server
                 deletes every VirtualService with it), manifests/01-crds.yaml re-applied,
                 the VirtualServices created again
  compaction     (API server restarted once with --watch-cache=false first, so a re-watch
                 reads etcd) relay held, writes, etcd compacted, connections cut, relay
                 released: the re-watch from the old resourceVersion gets 410, relist

During every fault a writer applies random changes: create/update/delete of
VirtualServices, DestinationRules, Services, EndpointSlices and Namespaces (a deletion of
a Namespace is done the way the namespace controller would, which does not run here: its
objects deleted, then the namespace finalized). After the fault clears the test waits
(bounded, CONVERGE_S) until the model equals the server:
  - /debug/configz holds the server's Istio objects (resourceVersion and spec),
  - /debug/registryz's Kubernetes services are the server's Services (hostname, ports),
  - /debug/endpointShardz's (hostname, address, port) are the server's EndpointSlices',
  - /debug/k8sz's object counts of namespaces, services and endpointslices are the
    server's,
and then until "no proxy is left stale": one raw SotW ADS stream (an Envoy sidecar node,
LDS and CDS wildcard, RDS and EDS for the names they reference, every response ACKed),
opened before the campaign and kept for all of it, must hold (its latest pushes) exactly
what a fresh connection gets, byte for byte per (type, name), for LDS, RDS, CDS and EDS.

Per fault it records rounds, converged rounds, time to converge (min/median/max from the
fault clearing), the relists /debug/k8sz counted, and failures; prints a table and exits
1 on any failure (pilot-discovery must also exit 0 on SIGTERM, no sanitizer report).

    fault_campaign.py [--rounds N] [--faults a,b,...] [--seed S] [--json FILE]
    (env FAULT_ROUNDS, FAULT_SEED, FAULT_ONLY, FAULT_JSON work too; FAULT_KEEP=1 keeps
    the work directory, with pilot-discovery's, etcd's and the API server's logs)

Skips (77) without grpcio/protobuf, protoc, the binary or $PILOT_PEERS_BIN's binaries.
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import e2e_common as ec  # noqa: E402
import k8s_common as kc  # noqa: E402

try:
    import grpc  # noqa: F401
    import k8s_same_xds as sx  # raw ADS helpers (fetch, route_names, eds_names)
except ImportError as e:
    ec.skip("python3-grpcio or python3-protobuf is not installed (%s)" % e)

FAULTS = ["etcd_stop", "etcd_kill", "api_restart", "api_kill", "watch_cut", "slow_list",
          "crd_recreate", "compaction"]
# model == server, from the fault clearing. A fault longer than the retry ladder (the API
# server's ~30 s graceful drain refuses connections throughout) can leave a reflector
# asleep for up to its cap, 30 s x [1, 1.5), after the server is back, as client-go's
# reflector (also capped at 30 s) would: this bound catches divergence, the table reports
# the latency.
CONVERGE_S = 60.0
ADS_S = 20.0        # then: the long-lived stream == a fresh one
BASE_NS = "fc"
VS_CRD = "virtualservices.networking.istio.io"

P_SVC = "/api/v1/namespaces/%s/services"
P_SLICE = "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices"
P_VS = "/apis/networking.istio.io/v1/namespaces/%s/virtualservices"
P_DR = "/apis/networking.istio.io/v1/namespaces/%s/destinationrules"


def log(msg):
    print("%s %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---- random changes -------------------------------------------------------------------------

class Churn:
    """Random create/update/delete of the campaign's objects, straight to the API server
    as the admin (not through the relay). Errors (a fault in progress) are counted, not
    fatal: the comparison is with whatever the server ends up holding."""

    def __init__(self, api, rng):
        self.api = api.k8s.api
        self.rng = rng
        self.n = 0
        self.ok = 0
        self.failed = 0
        self.mu = threading.Lock()
        self.refresh()

    def _req(self, method, path, body=None, ctype="application/json", timeout=20):
        try:
            st, obj = self.api.request(method, path, body, ctype=ctype, timeout=timeout)
        except OSError:
            st, obj = 0, None
        good = 200 <= st < 300
        with self.mu:
            self.n += 1
            if good:
                self.ok += 1
            else:
                self.failed += 1
        return good, obj

    def _names(self, path):
        try:
            st, obj = self.api.request("GET", path, timeout=20)
        except OSError:
            return None
        if st != 200:
            return None
        return [(it["metadata"].get("namespace", ""), it["metadata"]["name"], it)
                for it in obj.get("items", [])]

    def refresh(self):
        """Re-reads what exists (in the campaign's namespaces) and finishes namespace
        deletions a fault interrupted."""
        nss = self._names("/api/v1/namespaces") or []
        self.ns = []
        for _, name, it in nss:
            if name != BASE_NS and not name.startswith(BASE_NS + "-"):
                continue
            if it["metadata"].get("deletionTimestamp"):
                self._finish_ns_delete(name)
            else:
                self.ns.append(name)
        if BASE_NS not in self.ns:
            self._req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": BASE_NS}})
            self.ns.append(BASE_NS)
        mine = lambda lst: [(ns, n) for ns, n, _ in (lst or []) if ns in self.ns]  # noqa: E731
        svcs = self._names("/api/v1/services") or []
        self.svc = {(ns, n): [p["port"] for p in it["spec"].get("ports", [])]
                    for ns, n, it in svcs if ns in self.ns}
        self.slices = mine(self._names("/apis/discovery.k8s.io/v1/endpointslices"))
        self.vs = mine(self._names("/apis/networking.istio.io/v1/virtualservices"))
        self.dr = mine(self._names("/apis/networking.istio.io/v1/destinationrules"))

    def _finish_ns_delete(self, ns):
        for p in (P_VS, P_DR, P_SLICE, P_SVC):
            for _, name, _ in self._names(p % ns) or []:
                self._req("DELETE", (p % ns) + "/" + name)
        self._req("DELETE", "/api/v1/namespaces/" + ns)
        try:
            st, obj = self.api.request("GET", "/api/v1/namespaces/" + ns, timeout=20)
        except OSError:
            return
        if st == 200 and isinstance(obj, dict):
            obj.setdefault("spec", {})["finalizers"] = []
            self._req("PUT", "/api/v1/namespaces/%s/finalize" % ns, obj)

    # objects

    def _ports(self):
        return sorted(self.rng.sample([80, 8080, 9090, 5000, 7070], self.rng.randint(1, 2)))

    @staticmethod
    def _svc_ports(ports):
        return [{"name": "http-%d" % p, "port": p, "targetPort": p, "protocol": "TCP"}
                for p in ports]

    def _addr(self):
        return "10.244.%d.%d" % (self.rng.randint(0, 3), self.rng.randint(1, 250))

    def _slice_body(self, ns, svc, name, ports):
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": ns,
                             "labels": {"kubernetes.io/service-name": svc}},
                "addressType": "IPv4",
                "ports": [{"name": "http-%d" % p, "port": p, "protocol": "TCP"} for p in ports],
                "endpoints": [{"addresses": [self._addr()],
                               "conditions": {"ready": True, "serving": True,
                                              "terminating": False}}
                              for _ in range(self.rng.randint(1, 3))]}

    def _vs_spec(self, ns, svc):
        host = "%s.%s.svc.cluster.local" % (svc, ns)
        return {"hosts": [host],
                "http": [{"name": "r%d" % self.rng.randint(0, 999),
                          "timeout": "%ds" % self.rng.randint(1, 30),
                          "route": [{"destination": {"host": host}}]}]}

    def _dr_spec(self, ns, svc):
        return {"host": "%s.%s.svc.cluster.local" % (svc, ns),
                "trafficPolicy": {"connectionPool": {"tcp": {
                    "maxConnections": self.rng.randint(1, 1000)}}}}

    def op(self):
        """One random change; returns a short description."""
        self.n_op = getattr(self, "n_op", 0) + 1
        uid = "%d%03d" % (self.n_op, self.rng.randint(0, 999))
        kind = self.rng.choice(["svc", "svc", "slice", "slice", "vs", "vs", "dr", "ns"])
        r = self.rng.random()
        if kind == "ns":
            extra = [n for n in self.ns if n != BASE_NS]
            if extra and r < 0.5:
                ns = self.rng.choice(extra)
                self.ns.remove(ns)
                self._finish_ns_delete(ns)
                self.svc = {k: v for k, v in self.svc.items() if k[0] != ns}
                for a in ("slices", "vs", "dr"):
                    setattr(self, a, [k for k in getattr(self, a) if k[0] != ns])
                return "delete ns " + ns
            ns = "%s-%s" % (BASE_NS, uid)
            good, _ = self._req("POST", "/api/v1/namespaces", {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"campaign": uid}}})
            if good:
                self.ns.append(ns)
            return "create ns " + ns
        if kind == "svc":
            if self.svc and r < 0.3:
                k = self.rng.choice(sorted(self.svc))
                self._req("DELETE", (P_SVC % k[0]) + "/" + k[1])
                self.svc.pop(k, None)
                return "delete svc %s/%s" % k
            if self.svc and r < 0.6:
                k = self.rng.choice(sorted(self.svc))
                ports = self._ports()
                good, _ = self._req("PATCH", (P_SVC % k[0]) + "/" + k[1],
                                    {"spec": {"ports": self._svc_ports(ports)}},
                                    ctype="application/merge-patch+json")
                if good:
                    self.svc[k] = ports
                return "update svc %s/%s" % k
            ns = self.rng.choice(self.ns)
            name = "svc-" + uid
            ports = self._ports()
            good, _ = self._req("POST", P_SVC % ns, {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                "spec": {"selector": {"app": name}, "ports": self._svc_ports(ports)}})
            if good:
                self.svc[(ns, name)] = ports
            return "create svc %s/%s" % (ns, name)
        if kind == "slice":
            if self.slices and r < 0.3:
                k = self.rng.choice(self.slices)
                self._req("DELETE", (P_SLICE % k[0]) + "/" + k[1])
                self.slices.remove(k)
                return "delete slice %s/%s" % k
            if self.slices and r < 0.6:
                k = self.rng.choice(self.slices)
                body = self._slice_body(k[0], "x", k[1], [80])
                self._req("PATCH", (P_SLICE % k[0]) + "/" + k[1],
                          {"endpoints": body["endpoints"]},
                          ctype="application/merge-patch+json")
                return "update slice %s/%s" % k
            if not self.svc:
                return "no service for a slice"
            ns, svc = self.rng.choice(sorted(self.svc))
            name = "%s-%s" % (svc, uid)
            good, _ = self._req("POST", P_SLICE % ns,
                                self._slice_body(ns, svc, name, self.svc[(ns, svc)]))
            if good:
                self.slices.append((ns, name))
            return "create slice %s/%s" % (ns, name)
        path, lst, spec = ((P_VS, self.vs, self._vs_spec) if kind == "vs" else
                           (P_DR, self.dr, self._dr_spec))
        if lst and r < 0.3:
            k = self.rng.choice(lst)
            self._req("DELETE", (path % k[0]) + "/" + k[1])
            lst.remove(k)
            return "delete %s %s/%s" % ((kind,) + k)
        if lst and r < 0.6 and self.svc:
            k = self.rng.choice(lst)
            self._req("PATCH", (path % k[0]) + "/" + k[1],
                      {"spec": spec(k[0], self.rng.choice(sorted(self.svc))[1])},
                      ctype="application/merge-patch+json")
            return "update %s %s/%s" % ((kind,) + k)
        if not self.svc:
            return "no service for a %s" % kind
        ns, svc = self.rng.choice(sorted(self.svc))
        name = "%s-%s" % (kind, uid)
        good, _ = self._req("POST", path % ns, {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService" if kind == "vs" else "DestinationRule",
            "metadata": {"name": name, "namespace": ns}, "spec": spec(ns, svc)})
        if good:
            lst.append((ns, name))
        return "create %s %s/%s" % (kind, ns, name)


class Writer:
    """Applies Churn.op() in a thread until stop() (at least `min_ops`, at most `max_ops`),
    `pace` seconds apart."""

    def __init__(self, churn, pace=0.1, min_ops=6, max_ops=60):
        self.churn, self.pace, self.min_ops, self.max_ops = churn, pace, min_ops, max_ops
        self.done = 0
        self.ok0 = churn.ok
        self.ops = []
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.done < self.max_ops and (self.done < self.min_ops or
                                             not self.stopping.is_set()):
            try:
                self.ops.append(self.churn.op())
            except Exception as e:  # noqa: BLE001 -- a fault may break anything
                self.ops.append("error: %s" % e)
            self.done += 1
            if self.pace:
                time.sleep(self.pace)

    def stop(self, timeout=120):
        """'N changes (M API writes accepted)': a fault refuses some (the API server
        draining, etcd gone, a CRD deleted); a Namespace deletion is several writes."""
        self.stopping.set()
        self.t.join(timeout)
        return "%d changes (%d API writes accepted)" % (self.done, self.churn.ok - self.ok0)


# ---- the model vs the server ---------------------------------------------------------------

def host_of(ns, name):
    return "%s.%s.svc.cluster.local" % (name, ns)


def server_services(api):
    out = {}
    for it in api.get("/api/v1/services")["items"]:
        md = it["metadata"]
        out[host_of(md["namespace"], md["name"])] = sorted(
            (p["port"], p.get("name", "")) for p in it["spec"].get("ports", []))
    return out


def model_services(pilot):
    return {s["hostname"]: sorted((p["port"], p.get("name", "")) for p in s.get("ports", []))
            for s in pilot.json("/debug/registryz")
            if s.get("Attributes", {}).get("ServiceRegistry") == "Kubernetes"}


def server_endpoints(api, services):
    out = set()
    for it in api.get("/apis/discovery.k8s.io/v1/endpointslices")["items"]:
        md = it["metadata"]
        svc = (md.get("labels") or {}).get("kubernetes.io/service-name")
        if not svc:
            continue
        host = host_of(md["namespace"], svc)
        if host not in services:  # a slice of no Service: no shard to compare
            continue
        names = [n for _, n in services[host]]
        sports = it.get("ports") or []
        # a slice port serves the Service port of its name, or the only port of both
        # (Istio's rule, pilot/model/build.c match_port); the others serve nothing
        sports = [p for p in sports if p.get("name", "") in names or
                  (len(names) == 1 and len(sports) == 1)]
        for ep in it.get("endpoints") or []:
            for a in ep.get("addresses", []):
                for p in sports:
                    out.add((host, a, p.get("port")))
    return out


def model_endpoints(pilot):
    out = set()
    for host, byns in pilot.json("/debug/endpointShardz").items():
        for entry in byns.values():
            for key, eps in entry.get("Shards", {}).items():
                if not key.startswith("Kubernetes/"):
                    continue
                for ep in eps:
                    out.add((host, ep["Address"], ep["EndpointPort"]))
    return out


def server_counts(api):
    return {r: len(api.get(p)["items"]) for r, p in (
        ("namespaces", "/api/v1/namespaces"), ("services", "/api/v1/services"),
        ("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices"))}


def model_diff(api, pilot):
    """None when the model equals the server, else what differs (short)."""
    d = kc.configz_diff(api, pilot)
    if d:
        return "configz: " + d[:600]
    want = server_services(api)
    have = model_services(pilot)
    if want != have:
        return "registryz: missing %s, extra %s, ports differ %s" % (
            sorted(set(want) - set(have))[:8], sorted(set(have) - set(want))[:8],
            [(h, want[h], have[h]) for h in want if h in have and want[h] != have[h]][:5])
    we = server_endpoints(api, want)
    he = model_endpoints(pilot)
    he_known = {e for e in he if e[0] in want}
    if we != he_known or he != he_known:
        return "endpointShardz: missing %s, extra %s" % (sorted(we - he)[:8],
                                                         sorted(he - we)[:8])
    k8sz = {e["resource"]: e for e in pilot.json("/debug/k8sz")}
    for r, n in server_counts(api).items():
        got = k8sz.get(r, {}).get("objects")
        if got != n:
            return "k8sz: %s objects %s, the server has %d" % (r, got, n)
    return None


def relists(pilot):
    return sum(e["relists"] for e in pilot.json("/debug/k8sz"))


# ---- the long-lived ADS stream -------------------------------------------------------------

TYPES = (sx.T_LDS, sx.T_RDS, sx.T_CDS, sx.T_EDS)


class LiveAds:
    """One SotW ADS stream kept for the whole campaign, behaving like Envoy: LDS and CDS
    wildcard; RDS for the route names its listeners reference and EDS for its EDS
    clusters, re-subscribed when those change; every response ACKed. .state holds the
    latest resources of each type ({type: {name: bytes}})."""

    def __init__(self, target, protos, node):
        self.protos = protos
        self.Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
        Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
        self.ch = grpc.insecure_channel(target)
        self.stream = ec.AdsStream(self.ch, sx.SOTW, self.Req, Resp)
        self.mu = threading.Lock()
        self.state = {t: {} for t in TYPES}
        self.subs = {sx.T_RDS: None, sx.T_EDS: None}
        self.last = {t: ("", "") for t in TYPES}  # (version, nonce)
        self.pushes = 0
        self.ended = None
        self._send(sx.T_LDS, [], node=node)
        self._send(sx.T_CDS, [])
        threading.Thread(target=self._run, daemon=True).start()

    def _send(self, t, names, node=None):
        v, n = self.last[t]
        req = self.Req(type_url=t, resource_names=list(names), version_info=v,
                       response_nonce=n)
        if node is not None:
            req.node.CopyFrom(node)
        self.stream.send(req)

    def _name(self, a):
        m = self.protos.unpack_any(a)
        return m.name if getattr(m, "name", "") else getattr(m, "cluster_name", "")

    def _run(self):
        while True:
            r = self.stream.out.get()
            if r is None:
                self.ended = "stream ended: %s" % (self.stream.error,)
                return
            t = r.type_url
            if t not in self.state:
                continue
            res = {self._name(a): a.value for a in r.resources}
            with self.mu:
                if t in (sx.T_LDS, sx.T_CDS):
                    self.state[t] = res
                else:  # SotW RDS/EDS: a response may carry only some names
                    self.state[t].update(res)
                    want = set(self.subs[t] or [])
                    self.state[t] = {k: v for k, v in self.state[t].items() if k in want}
                self.pushes += 1
                self.last[t] = (r.version_info, r.nonce)
            # ACK, with the names subscribed now
            self._send(t, [] if t in (sx.T_LDS, sx.T_CDS) else (self.subs[t] or []))
            if t in (sx.T_LDS, sx.T_CDS):
                dep = sx.T_RDS if t == sx.T_LDS else sx.T_EDS
                names = (sx.route_names(self.protos, res) if t == sx.T_LDS
                         else sx.eds_names(self.protos, res))
                if names != (self.subs[dep] or []):
                    with self.mu:
                        self.subs[dep] = names
                        self.state[dep] = {k: v for k, v in self.state[dep].items()
                                           if k in set(names)}
                    # no names left: nothing to ask for (an empty RDS/EDS request would
                    # read as a wildcard); what was held is dropped, as Envoy does
                    if names:
                        self._send(dep, names)

    def snapshot(self):
        with self.mu:
            return {(t, n): b for t in TYPES for n, b in self.state[t].items()}

    def close(self):
        self.stream.close()
        self.ch.close()


def ads_diff(live, target, protos, node_fn):
    """None when the long-lived stream holds what a fresh connection gets."""
    if live.ended:
        return live.ended
    fresh = sx.fetch(target, protos, node_fn(), None)
    have = live.snapshot()
    if fresh == have:
        return None
    diff = []
    for k in sorted(set(fresh) | set(have)):
        if fresh.get(k) != have.get(k):
            what = ("only fresh" if k not in have else "only live" if k not in fresh
                    else "differs")
            diff.append("%s %s: %s" % (sx.TYPE_SHORT[k[0]], k[1], what))
    return "%d resources stale: %s" % (len(diff), "; ".join(diff[:8]))


# ---- faults ------------------------------------------------------------------------------

def restart_etcd(k8s, sig=signal.SIGKILL, down_s=1.0):
    """etcd ended (SIGKILL: no clean shutdown) and started again on the same ports and data
    directory (realk8s's own start, which waits for /health)."""
    t0 = time.time()
    k8s._end("etcd", sig)
    time.sleep(down_s)
    k8s._start_etcd()
    return time.time() - t0


class Campaign:
    def __init__(self, api, pilot, churn, live, target, protos, node_fn, work, rng):
        self.api, self.pilot, self.churn, self.live = api, pilot, churn, live
        self.target, self.protos, self.node_fn = target, protos, node_fn
        self.work, self.rng = work, rng
        self.k8s = api.k8s
        self.second = []  # pilots started by slow_list (all must also converge, exit 0)

    # each returns a note; the fault has cleared on return

    def f_etcd_stop(self):
        self.k8s.stop_proc("etcd")
        try:
            w = Writer(self.churn, pace=0.05, min_ops=4, max_ops=8)
            time.sleep(3)
        finally:
            self.k8s.cont("etcd")
        return "%s" % w.stop()

    def f_etcd_kill(self):
        w = Writer(self.churn, pace=0.2, min_ops=6, max_ops=30)
        time.sleep(0.5)
        secs = restart_etcd(self.k8s)
        return "%s, etcd back in %.1f s" % (w.stop(), secs)

    def f_api_restart(self):
        w = Writer(self.churn, pace=0.5, min_ops=6, max_ops=200)
        secs = self.k8s.restart_apiserver()
        return "%s, restart %.1f s" % (w.stop(), secs)

    def f_api_kill(self):
        w = Writer(self.churn, pace=0.2, min_ops=6, max_ops=100)
        time.sleep(0.3)
        secs = self.k8s.restart_apiserver(sig=signal.SIGKILL)
        return "%s, restart %.1f s" % (w.stop(), secs)

    def f_watch_cut(self):
        w = Writer(self.churn, pace=0, min_ops=30, max_ops=30)
        time.sleep(0.4)
        n = self.api.relay.cut()
        time.sleep(0.4)
        n += self.api.relay.cut()
        return "%s, %d connections cut" % (w.stop(), n)

    def f_slow_list(self):
        self.api.relay.hold()
        p2 = None
        try:
            w = Writer(self.churn, pace=0.1, min_ops=8, max_ops=12)
            p2 = kc.KubePilot(self.api.kubeconfig, os.path.join(
                self.work, "second-%d" % len(self.second)))
            self.second.append(p2)
            p2.log = open(p2.log_path, "w")
            p2.tls_port = ec.free_port()
            p2.proc = subprocess.Popen(
                [p2.exe, "discovery", "--kubeconfig", p2.kubeconfig,
                 "--grpcAddr", "127.0.0.1:%d" % p2.grpc_port,
                 "--httpAddr", "127.0.0.1:%d" % p2.http_port,
                 "--monitoringAddr", "127.0.0.1:%d" % p2.mon_port,
                 "--secureGRPCAddr", "127.0.0.1:%d" % p2.tls_port,
                 "--caCertsDir", os.path.join(p2.workdir, "no-cacerts")],
                stdout=p2.log, stderr=subprocess.STDOUT)
            time.sleep(3)
            ready_held = p2._ready()
            wrote = w.stop()
        finally:
            self.api.relay.release()
        ready = kc.poll(lambda: p2.proc.poll() is not None or p2._ready(), 30)
        note = "%s; second pilot /ready while held: %s, after release: %s" % (
            wrote, ready_held, bool(ready) and p2.proc.poll() is None)
        if ready_held:
            raise FaultFailure("second pilot-discovery said /ready 200 before any list "
                               "came through the held relay")
        if p2.proc.poll() is not None:
            raise FaultFailure("second pilot-discovery exited %d" % p2.proc.returncode)
        return note

    def f_crd_recreate(self):
        # some VirtualServices for the deletion to take
        for _ in range(3 - min(3, len(self.churn.vs))):
            if not self.churn.svc:
                break
            ns, svc = self.rng.choice(sorted(self.churn.svc))
            name = "vs-crd-%d" % self.rng.randint(0, 999999)
            good, _ = self.churn._req("POST", P_VS % ns, {
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": name, "namespace": ns},
                "spec": self.churn._vs_spec(ns, svc)})
            if good:
                self.churn.vs.append((ns, name))
        kc.poll(lambda: model_diff(self.api, self.pilot) is None, 10, 0.2)
        w = Writer(self.churn, pace=0.2, min_ops=6, max_ops=100)
        before = list(self.churn.vs)
        t0 = time.time()
        self.k8s.kubectl("delete", "crd", VS_CRD, timeout=120)
        t_del = time.time() - t0
        self.k8s.install_crds()
        t_add = time.time() - t0 - t_del
        wrote = w.stop()
        # re-create the VirtualServices the deletion took (a new spec each)
        self.churn.vs = []
        made = 0
        for ns, name in before:
            if ns not in self.churn.ns or not self.churn.svc:
                continue
            svc = self.rng.choice(sorted(self.churn.svc))
            body = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": self.churn._vs_spec(svc[0], svc[1])}
            for _ in range(20):  # the new CRD's storage may answer 404/503 a moment
                good, obj = self.churn._req("POST", P_VS % ns, body)
                if good or (isinstance(obj, dict) and obj.get("reason") == "AlreadyExists"):
                    break
                time.sleep(0.5)
            if good:
                made += 1
                self.churn.vs.append((ns, name))
        return "%s, CRD deleted in %.1f s, served again in %.1f s, %d/%d " \
               "VirtualServices re-created" % (wrote, t_del, t_add, made, len(before))

    def f_compaction(self):
        relay = self.api.relay
        relay.hold()
        try:
            w = Writer(self.churn, pace=0.05, min_ops=10, max_ops=10)
            wrote = w.stop()
            rev = self.k8s.compact()
            n = relay.cut()
        finally:
            relay.release()
        return "%s, compacted at %d, %d connections cut" % (wrote, rev, n)


class FaultFailure(Exception):
    pass


def wait_converged(camp, pilots, t_clear):
    """(model seconds, ads seconds, None) or (..., failure text)."""
    last = [None]

    def model_ok():
        try:
            for p in pilots:
                if p.proc.poll() is not None:
                    last[0] = "pilot-discovery exited %d" % p.proc.returncode
                    return True
                d = model_diff(camp.api, p)
                if d:
                    last[0] = d
                    return False
            last[0] = None
            return True
        except (OSError, RuntimeError, ValueError) as e:
            last[0] = "error reading state: %s" % e
            return False
    ok = kc.poll(model_ok, CONVERGE_S - (time.time() - t_clear), 0.2)
    t_model = time.time() - t_clear
    if not ok or last[0]:
        return t_model, None, "model not converged after %.0f s: %s" % (t_model, last[0])

    def ads_ok():
        try:
            last[0] = ads_diff(camp.live, camp.target, camp.protos, camp.node_fn)
        except (OSError, RuntimeError) as e:
            last[0] = "fresh fetch: %s" % e
        return last[0] is None
    t1 = time.time()
    ok = kc.poll(ads_ok, ADS_S, 0.3)
    t_ads = time.time() - t_clear
    if not ok:
        return t_model, t_ads, "stale proxy %.0f s after the model converged: %s" % (
            time.time() - t1, last[0])
    return t_model, t_ads, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("FAULT_ROUNDS", "1")))
    ap.add_argument("--faults", default=os.environ.get("FAULT_ONLY", ",".join(FAULTS)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FAULT_SEED", "0")) or None)
    ap.add_argument("--json", default=os.environ.get("FAULT_JSON", ""))
    a = ap.parse_args()
    faults = [f for f in a.faults.split(",") if f]
    bad = [f for f in faults if f not in FAULTS]
    if bad:
        print("unknown faults %s (known: %s)" % (bad, FAULTS))
        return 2
    if not shutil.which("protoc"):
        ec.skip("protoc is not installed")
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    log("fault campaign: %d round(s) of %s, seed %d" % (a.rounds, ",".join(faults), seed))
    t_start = time.time()
    work = tempfile.mkdtemp(prefix="k8s-fault-campaign-")
    protos = ec.Protos(work)
    try:
        api = kc.ApiServer(work, relay=True)
    except SystemExit:
        shutil.rmtree(work, ignore_errors=True)
        raise
    pilot = live = camp = None
    results = {f: {"rounds": 0, "converged": 0, "t": [], "t_ads": [], "relists": 0,
                   "failures": [], "notes": []} for f in faults}
    final_failures = []
    try:
        churn = Churn(api, rng)
        for _ in range(12):  # a starting state
            churn.op()
        pilot = kc.KubePilot(api.kubeconfig, os.path.join(work, "pilot"))
        pilot.start(timeout=60)
        Node = protos.cls("envoy.config.core.v3.Node")

        def node():
            n = Node(id="sidecar~10.244.9.9~campaign-0.%s~%s.svc.cluster.local" % (
                BASE_NS, BASE_NS), cluster="campaign")
            for k, v in {"NAMESPACE": BASE_NS, "ISTIO_VERSION": "1.30.0",
                         "CLUSTER_ID": "Kubernetes"}.items():
                n.metadata.fields[k].string_value = v
            return n
        live = LiveAds(pilot.target(), protos, node())
        camp = Campaign(api, pilot, churn, live, pilot.target(), protos, node, work, rng)
        _, _, err = wait_converged(camp, [pilot], time.time())
        if err:
            raise FaultFailure("before any fault: " + err)
        log("initial state converged (%d pushes on the long-lived stream)" % live.pushes)

        for f in faults:
            if f == "compaction" and api.k8s.watch_cache:
                # a re-watch must read etcd to see the compaction: the watch cache off
                api.k8s.watch_cache = False
                secs = api.k8s.restart_apiserver(sig=signal.SIGKILL)
                t0 = time.time()
                _, _, err = wait_converged(camp, [pilot], t0)
                log("API server restarted with --watch-cache=false (%.1f s)%s" % (
                    secs, ", " + err if err else ""))
            r = results[f]
            for i in range(a.rounds):
                churn.refresh()
                rel0 = relists(pilot)
                n0 = len(camp.second)
                t_f = time.time()
                note = None
                try:
                    note = getattr(camp, "f_" + f)()
                except FaultFailure as e:
                    note = str(e)
                    r["failures"].append("round %d: %s" % (i + 1, e))
                t_clear = time.time()
                pilots = [pilot] + camp.second[n0:]
                t_model, t_ads, err = wait_converged(camp, pilots, t_clear)
                rel = relists(pilot) - rel0
                r["rounds"] += 1
                r["relists"] += rel
                r["notes"].append(note)
                if err:
                    r["failures"].append("round %d: %s" % (i + 1, err))
                    log("FAIL %s round %d (%s): %s" % (f, i + 1, note, err))
                else:
                    r["converged"] += 1
                    r["t"].append(t_model)
                    r["t_ads"].append(t_ads)
                    log("ok   %s round %d: fault %.1f s (%s), model %.2f s, proxy %.2f s "
                        "after it cleared, %d relists" % (f, i + 1, t_clear - t_f, note,
                                                          t_model, t_ads, rel))
                for p in camp.second[n0:]:
                    code = p.stop()
                    if code != 0:
                        r["failures"].append("round %d: second pilot-discovery exit %d" %
                                             (i + 1, code))
                if pilot.proc.poll() is not None:
                    raise FaultFailure("pilot-discovery exited %d" % pilot.proc.returncode)
        ok, txt = api.k8s.rbac_verdict()
        log(("ok   " if ok else "FAIL ") + txt)
        if not ok:
            final_failures.append(txt)
        if pilot.metric("pilot_total_xds_rejects") != 0:
            final_failures.append("the long-lived stream NACKed something")
    except Exception as e:  # noqa: BLE001 -- reported with the logs below
        import traceback
        traceback.print_exc()
        final_failures.append("exception: %s" % e)
    finally:
        if live is not None:
            log("long-lived stream: %d pushes, all ACKed" % live.pushes)
            live.close()
        if pilot is not None and pilot.proc is not None:
            code = pilot.stop()
            if code != 0:
                final_failures.append("pilot-discovery exit code %d on SIGTERM" % code)
        for p in (camp.second if camp else []):
            if p.proc is not None and p.proc.poll() is None:
                p.stop()
        banner = api.k8s.banner()
        api.stop()

    # the table
    print("\nfault campaign, seed %d, %s, %s" % (seed, banner, time.strftime(
        "%Y-%m-%d %H:%M UTC", time.gmtime())))
    hdr = "%-13s %6s %9s %22s %22s %8s %8s" % ("fault", "rounds", "converged",
                                                "model s min/med/max", "proxy s min/med/max",
                                                "relists", "failures")
    print(hdr)
    print("-" * len(hdr))

    def mmm(v):
        return "%.2f/%.2f/%.2f" % (min(v), statistics.median(v), max(v)) if v else "-"
    nfail = len(final_failures)
    for f in faults:
        r = results[f]
        nfail += len(r["failures"])
        print("%-13s %6d %9d %22s %22s %8d %8d" % (f, r["rounds"], r["converged"], mmm(r["t"]),
                                                   mmm(r["t_ads"]), r["relists"],
                                                   len(r["failures"])))
    for f in faults:
        for x in results[f]["failures"]:
            print("FAIL %s %s" % (f, x))
    for x in final_failures:
        print("FAIL " + x)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"seed": seed, "banner": banner, "results": results,
                       "final_failures": final_failures,
                       "seconds": time.time() - t_start}, fh, indent=1)
    if nfail:
        print("--- pilot log (tail) ---\n" + (pilot.read_log() if pilot else ""))
        print("logs kept in " + work)
        return 1
    if os.environ.get("FAULT_KEEP"):
        print("logs kept in " + work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("passed in %.0f s" % (time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
