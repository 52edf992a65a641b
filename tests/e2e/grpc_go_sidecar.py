#!/usr/bin/python3
"""grpc-go's xDS client (tests/peers/grpcxds) confined by a Sidecar: a client workload in
namespace "client" whose namespace Sidecar imports only e2e's services reaches
greeter.e2e, while echo.other (a live backend) does not resolve: we serve no listener for
it, as istiod's grpcgen leaves out what is outside the SidecarScope. Widening the Sidecar's
egress hosts in the watched config directory makes echo.other resolvable; deleting the
Sidecar gives the whole mesh back.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as ec  # noqa: E402
import routing_config as rcfg  # noqa: E402

try:
    import grpc  # noqa: F401  (the backends)
except ImportError:
    ec.skip("python3-grpcio is not installed")

failures = []
CLIENT_NS = "client"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def echo_yaml(ip, port):
    return """apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: other}
spec:
  clusterIP: 10.96.78.78
  selector: {app: echo}
  ports:
  - {name: grpc, port: %d, targetPort: %d, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-abcde
  namespace: other
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports:
- {name: grpc, port: %d, protocol: TCP}
endpoints:
- addresses: ["%s"]
  conditions: {ready: true, serving: true, terminating: false}
""" % (port, port, port, ip)


def sidecar_yaml(hosts):
    return """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: %s}
spec:
  egress:
  - hosts: [%s]
""" % (CLIENT_NS, ", ".join('"%s"' % h for h in hosts))


def write(config_dir, name, text):
    """Atomically, as editors and kubectl do: the watcher never sees half a file."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(config_dir)), "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(config_dir, name))


def main():
    peers = os.environ.get("PILOT_PEERS_BIN", "")
    grpcxds = os.path.join(peers, "grpcxds")
    if not peers or not os.path.exists(grpcxds):
        ec.skip("no grpcxds (PILOT_PEERS_BIN unset; make peers builds it)")
    work = tempfile.mkdtemp(prefix="grpc-go-sidecar-")
    ips, port = rcfg.pick_backends(os.getpid() + 61)
    pilot = ec.Pilot(workdir=work)
    rcfg.write_config(pilot.config_dir, ips, port, 100, 0)
    write(pilot.config_dir, "echo.yaml", echo_yaml(ips[2], port))
    write(pilot.config_dir, "sidecar.yaml", sidecar_yaml(["e2e/*"]))
    backends = [rcfg.start_backend(ips[0], port, "v1"), rcfg.start_backend(ips[2], port, "echo")]
    pilot.start()
    try:
        boot = os.path.join(work, "bootstrap.json")
        rcfg.bootstrap(boot, pilot.target(),
                       node_id="sidecar~127.0.0.96~goclient.%s~%s.svc.cluster.local" %
                       (CLIENT_NS, CLIENT_NS))
        with open(boot) as f:
            doc = json.load(f)
        doc["node"]["metadata"]["NAMESPACE"] = CLIENT_NS
        with open(boot, "w") as f:
            json.dump(doc, f)

        def run(host, n=4, timeout="8s"):
            p = subprocess.run([grpcxds, "client", "--bootstrap", boot, "--target",
                                "xds:///%s:%d" % (host, port), "-n", str(n), "--timeout",
                                timeout], capture_output=True, text=True, timeout=120)
            out = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
            return out.get("counts") or {}, out.get("errors") or {}, p.stderr[-600:]

        greeter, echo = "greeter.e2e.svc.cluster.local", "echo.other.svc.cluster.local"
        counts, errs, _ = run(greeter)
        check(counts.get("v1") == 4, "Sidecar e2e/*: greeter.e2e served (%s %s)" % (counts, errs))
        counts, errs, log = run(echo, n=1)
        check(not counts and sum(errs.values()) == 1,
              "Sidecar e2e/*: echo.other not resolvable (%s %s)" % (counts, errs))
        print("     grpc-go said: %s" % log.strip().splitlines()[-1] if log.strip() else "")

        write(pilot.config_dir, "sidecar.yaml", sidecar_yaml(["e2e/*", "other/*"]))
        deadline = time.time() + 20
        while True:
            counts, errs, _ = run(echo, n=2, timeout="3s")
            if counts.get("echo") == 2 or time.time() > deadline:
                break
            time.sleep(0.5)
        check(counts.get("echo") == 2,
              "Sidecar e2e/* + other/*: echo.other served (%s %s)" % (counts, errs))
        counts, errs, _ = run(greeter, n=2)
        check(counts.get("v1") == 2, "greeter.e2e still served (%s %s)" % (counts, errs))

        write(pilot.config_dir, "sidecar.yaml", sidecar_yaml(["./*"]))
        deadline = time.time() + 20
        while True:
            counts, errs, _ = run(greeter, n=1, timeout="3s")
            if not counts or time.time() > deadline:
                break
            time.sleep(0.5)
        check(not counts, "Sidecar ./* (namespace client only): greeter.e2e no longer "
              "resolvable (%s %s)" % (counts, errs))
        os.unlink(os.path.join(pilot.config_dir, "sidecar.yaml"))
        deadline = time.time() + 20
        while True:
            counts, errs, _ = run(echo, n=1, timeout="3s")
            if counts.get("echo") == 1 or time.time() > deadline:
                break
            time.sleep(0.5)
        check(counts.get("echo") == 1, "no Sidecar: the whole mesh (%s %s)" % (counts, errs))
    finally:
        for b in backends:
            b.stop(0)
        code = pilot.stop()
        if code != 0:
            failures.append("pilot-discovery clean exit (%d)" % code)
    if failures:
        print("\n%d failures:\n  %s\n--- pilot log ---\n%s" %
              (len(failures), "\n  ".join(failures), pilot.read_log()[-6000:]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
