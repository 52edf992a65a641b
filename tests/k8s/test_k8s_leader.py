#!/usr/bin/python3
"""Three replicas of pilot-discovery against a REAL kube-apiserver + etcd (realk8s.py, RBAC
on, each replica authenticated only by a bound token of istio-system/istiod): the root
ConfigMaps (istio-ca-root-cert in every namespace) are written by the leader of Lease
istio-system/istio-namespace-controller-election only, as istiod's namespace controller.
The lease is shortened to 4 s (PILOT_LEADER_LEASE_DURATION; istiod's 30 s would make this
test minutes long); renew deadline 2 s, retry 1 s, as client-go derives them here.

1. All three ready, one CA root: exactly one created istio-ca-secret, the other two read
   its root back (found it, or lost the create race with a 409); the Lease names exactly one, and only that one logged
   "leader election lock obtained".
2. A new namespace gets its ConfigMap, written by the leader alone (the audit log's
   userAgent carries each replica's POD_NAME).
3. The leader SIGKILLed: another replica holds the Lease within 2x the lease duration and
   writes the next namespace's ConfigMap.
4. That leader SIGSTOPped for 3x the lease: the third takes over and writes a namespace
   created meanwhile; the old leader SIGCONTed writes nothing afterwards (fence: its clock
   says its deadline passed, its stale resourceVersion gets 409) and logs the loss.
5. Proxies connected to different replicas get byte-identical resources: for each node
   kind of k8s_same_xds.py (sidecars, router, proxyless gRPC client and server) every LDS,
   RDS, CDS and EDS resource fetched over raw ADS from two replicas is the same bytes, on
   manifests/samples applied to the server.
6. Every namespace's ConfigMap was created exactly once; the survivors exit 0 on SIGTERM and
   the leader releases the Lease (holderIdentity "").

Skips (77) without the binary, openssl or $PILOT_PEERS_BIN's binaries.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import realk8s  # noqa: E402

LEASE = "istio-namespace-controller-election"
LEASE_S = 4.0
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def poll(fn, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


class Replica:
    def __init__(self, work, kc, name):
        self.name = name
        self.exe = os.path.join(ec.env_path("PILOT_BUILD"), "pilot", "pilot-discovery")
        if not os.path.exists(self.exe):
            ec.skip("%s not built" % self.exe)
        self.http_port, self.mon_port, self.grpc_port, self.tls_port = (
            ec.free_port() for _ in range(4))
        self.log_path = os.path.join(work, name + ".log")
        self.log = open(self.log_path, "w")
        e = dict(os.environ)
        e.update({"POD_NAME": name, "POD_NAMESPACE": "istio-system",
                  "PILOT_LEADER_LEASE_DURATION": "%gs" % LEASE_S})
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--kubeconfig", kc,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--secureGRPCAddr", "127.0.0.1:%d" % self.tls_port,
             "--httpsAddr", "", "--caCertsDir", os.path.join(work, "no-cacerts")],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def ready(self):
        try:
            return ec.http_get("http://127.0.0.1:%d/ready" % self.http_port, 1)[0] == 200
        except OSError:
            return False

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            rc = -999 if rc == 0 else rc
        self.log.close()
        return rc


def holder(k8s):
    o = k8s.api.get("/apis/coordination.k8s.io/v1/namespaces/istio-system/leases/" + LEASE)
    return (o or {}).get("spec", {}).get("holderIdentity") if o else None


def cm_writes(k8s, since=0.0):
    """[(replica, verb, namespace)] of the root ConfigMap writes in the audit log."""
    out = []
    for e in k8s.audit("system:serviceaccount:istio-system:istiod", since):
        o = e.get("objectRef", {})
        if (o.get("resource") != "configmaps" or e.get("verb") not in ("create", "update") or
                e.get("stage") != "ResponseComplete"):
            continue
        if o.get("name") not in (None, "", "istio-ca-root-cert"):
            continue
        if e.get("responseStatus", {}).get("code", 0) >= 300:
            continue
        ua = e.get("userAgent", "")
        who = ua[ua.find("(") + 1:ua.find(")")] if "(" in ua else ua
        out.append((who, e["verb"], o.get("namespace", "")))
    return out


def has_root_cm(k8s, ns):
    return k8s.api.get("/api/v1/namespaces/%s/configmaps/istio-ca-root-cert" % ns) is not None


def new_namespace(k8s, ns):
    k8s.kubectl("create", "namespace", ns)
    return poll(lambda: has_root_cm(k8s, ns), 15)


def same_xds(work, k8s, a, b):
    if not shutil.which("protoc"):
        check(False, "protoc is installed (needed to decode xDS)")
        return
    import k8s_same_xds as ksx  # grpcio + protobuf; skips (77) without them
    src = ec.env_path("PILOT_SRC")
    os.makedirs(os.path.join(work, "objs"), exist_ok=True)
    names = sorted(f for f in os.listdir(os.path.join(src, "manifests", "samples"))
                   if f.endswith(".yaml"))
    names.sort(key=lambda f: f != "namespaces.yaml")  # namespaces first
    for f in names:
        dst = os.path.join(work, "objs", f)
        with open(os.path.join(src, "manifests", "samples", f)) as x, open(dst, "w") as y:
            y.write(ksx.off_loopback(x.read()))  # a real server refuses loopback endpoints
        k8s.apply_objects(dst)
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    for label, node_id, md, labels, listeners in ksx.NODES:
        node_id = ksx.off_loopback(node_id)
        listeners = [ksx.off_loopback(x) for x in listeners] if listeners else listeners

        def node():
            n = Node(id=node_id, cluster="e2e")
            for k, v in md.items():
                n.metadata.fields[k].string_value = v
            for k, v in labels.items():
                n.metadata.fields["LABELS"].struct_value.fields[k].string_value = v
            return n
        last = [None]

        def same():
            x = ksx.fetch("127.0.0.1:%d" % a.grpc_port, protos, node(), listeners)
            y = ksx.fetch("127.0.0.1:%d" % b.grpc_port, protos, node(), listeners)
            last[0] = (x, y)
            return x == y and len(x) > 0
        ok = poll(same, 20, 0.5)
        x, y = last[0]
        types = sorted({ksx.TYPE_SHORT[t] for t, _ in x})
        check(ok and types == ["CDS", "EDS", "LDS", "RDS"],
              "%s: %d resources (%s) byte-identical from %s and %s" %
              (label, len(x), ",".join(types), a.name, b.name) +
              ("" if ok else ":\n" + ksx.describe(protos, x, y)))


def run(work, k8s):
    k8s.install_istio()
    kc = k8s.istiod_kubeconfig()
    reps = {}
    try:
        for i in range(3):
            r = Replica(work, kc, "istiod-%d" % i)
            reps[r.name] = r
        check(poll(lambda: all(r.ready() for r in reps.values()), 60) is not None,
              "three replicas ready")
        # ---- 1. one root, one leader ----
        # Started together, the three race to create istio-ca-secret: one creates it, the
        # others get 409 and read its root back.
        made = [n for n, r in reps.items() if "root from a new self-signed root" in r.read_log()]
        read = [n for n, r in reps.items() if "root from Secret istio-ca-secret" in r.read_log()]
        creates = [e for e in k8s.audit("system:serviceaccount:istio-system:istiod")
                   if e.get("verb") == "create" and e.get("stage") == "ResponseComplete" and
                   e.get("objectRef", {}).get("resource") == "secrets" and
                   e.get("responseStatus", {}).get("code") == 201]
        check(len(made) == 1 and len(read) == 2 and len(creates) == 1,
              "one replica created the CA root (%s), the others read it from istio-ca-secret "
              "(%s); Secret creates that succeeded: %d" % (made, read, len(creates)))
        lead = poll(lambda: holder(k8s) in reps and holder(k8s), 3 * LEASE_S)
        check(lead is not None, "the Lease names a replica: %s" % lead)
        time.sleep(LEASE_S)  # a second leader, if any, would show by now
        obtained = [n for n, r in reps.items() if "leader election lock obtained" in r.read_log()]
        check(obtained == [lead], "only the holder logged obtaining the lock: %s" % obtained)
        check(poll(lambda: has_root_cm(k8s, "default"), 15) is not None,
              "the existing namespaces got their root ConfigMap")
        w = cm_writes(k8s)
        check(w and {x[0] for x in w} == {lead},
              "every root ConfigMap write so far is the leader's: %s" % sorted({x[0] for x in w}))

        # ---- 2. a new namespace: the leader writes it ----
        t = time.time()
        check(new_namespace(k8s, "team-a") is not None, "namespace team-a got its ConfigMap")
        w = cm_writes(k8s, t)
        check([x[0] for x in w if x[2] == "team-a"] == [lead],
              "team-a written once, by the leader: %s" % w)

        # ---- 3. SIGKILL the leader ----
        t = time.time()
        reps[lead].proc.kill()
        reps[lead].proc.wait()
        dead = lead
        lead2 = poll(lambda: holder(k8s) not in (None, "", dead) and holder(k8s), 2 * LEASE_S)
        check(lead2 is not None, "another replica took the Lease %.1f s after the leader was "
              "killed (limit %.0f s): %s" % (time.time() - t, 2 * LEASE_S, lead2))
        if not lead2:
            return
        time.sleep(0.5)  # its first (full) pass checks every namespace
        t = time.time()
        check(new_namespace(k8s, "team-b") is not None, "namespace team-b got its ConfigMap")
        w = cm_writes(k8s, t)
        check([x[0] for x in w if x[2] == "team-b"] == [lead2],
              "team-b written once, by the new leader: %s" % w)

        # ---- 4. SIGSTOP the new leader past its lease ----
        third = [n for n in reps if n not in (dead, lead2)][0]
        reps[lead2].proc.send_signal(signal.SIGSTOP)
        t_stop = time.time()
        lead3 = poll(lambda: holder(k8s) == third and third, 2 * LEASE_S)
        check(lead3 == third, "the third replica took over %.1f s after the leader stopped" %
              (time.time() - t_stop))
        check(new_namespace(k8s, "team-c") is not None,
              "namespace team-c (created while the old leader is stopped) got its ConfigMap")
        time.sleep(max(0.0, 3 * LEASE_S - (time.time() - t_stop)))
        t_cont = time.time()
        reps[lead2].proc.send_signal(signal.SIGCONT)
        lost = poll(lambda: "leader election lock lost" in reps[lead2].read_log(), 2 * LEASE_S)
        check(lost is not None, "the resumed old leader logs the loss of the lock")
        check(new_namespace(k8s, "team-d") is not None, "namespace team-d got its ConfigMap")
        time.sleep(1.0)
        w = cm_writes(k8s, t_cont)
        check(all(x[0] == third for x in w) and any(x[2] == "team-d" for x in w),
              "after the resume only the current leader wrote: %s" % w)
        check(holder(k8s) == third, "the Lease stays with %s" % third)

        # ---- 5. the same bytes from two replicas ----
        same_xds(work, k8s, reps[lead2], reps[third])

        # ---- 6. once per namespace; clean exit releases ----
        creates = {}
        for who, verb, ns in cm_writes(k8s):
            if verb == "create":
                creates.setdefault(ns, []).append(who)
        dup = {ns: v for ns, v in creates.items() if len(v) != 1}
        check(not dup and {"team-a", "team-b", "team-c", "team-d"} <= set(creates),
              "each namespace's ConfigMap created exactly once (%d namespaces)%s" %
              (len(creates), " dup: %s" % dup if dup else ""))
        for n in (lead2, third):
            rc = reps[n].stop()
            check(rc == 0, "%s exits 0 on SIGTERM (rc %d)" % (n, rc))
        check(holder(k8s) == "", "the last leader released the Lease on exit (holder %r)" %
              holder(k8s))
        check(*k8s.rbac_verdict())
    finally:
        for r in reps.values():
            if failures:
                print("--- %s log (tail)" % r.name)
                print(r.read_log()[-2000:])
            r.stop()


def main():
    if not shutil.which("openssl"):
        ec.skip("openssl is not installed")
    ec.env_path("PILOT_BUILD")
    return realk8s.run_against_cluster("k8s leader test", "k8s-leader-", failures, run)

if __name__ == "__main__":
    sys.exit(main())
