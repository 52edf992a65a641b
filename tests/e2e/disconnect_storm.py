#!/usr/bin/python3
"""disconnect_storm: many ADS clients vanishing at once must not bring the server down.

A 1000-client load run once ended with pilot-discovery aborting in gRPC (assertion
`grpc_cq_begin_op` in call.cc): SIGTERM arrived while the clients were disconnecting, and
a shard thread, still handling the cancelled calls' completions, started a batch (the
stream's status, a push's SEND) on its completion queue after xds_server_free had shut
that queue down. Against the real binary (best under ASan, where the shard threads lag
behind the cancellations the most):
  1. a child process opens STREAMS sidecar ADS streams (wildcard CDS + LDS over 600
     services, ACKing every response) while the VirtualService file is rewritten in a
     loop; the child is SIGKILLed mid-push; the server must stay ready and drop every
     connection;
  2. the same again, but the server gets SIGTERM right after the SIGKILL (ROUNDS times,
     each with a fresh server): it must exit 0, with no assertion or sanitizer report.
About 20 s under ASan. The race is timing-dependent: against the code before the fix
(ASan build) this script failed in 3 of 4 runs, 1-2 of its rounds each; a release build
needs about 800 streams over 1000 services to fail as often (too slow for this suite).
"""
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "load"))
import e2e_common as ec  # noqa: E402
import run_load  # noqa: E402  (write_config, VS: the load run's services)

try:
    import grpc
    import grpc.aio  # noqa: F401
except ImportError:
    ec.skip("Debian's python3-grpcio is missing")

SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
SERVICES = 600
STREAMS = 300
CHANNELS = 8
ROUNDS = 4

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures += 1


# ---- the child: many streams, ACKing, until killed ---------------------------------------

async def child_stream(ch, protos, i, ready):
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
    node = Node(id="sidecar~10.1.%d.%d~storm-%d.load~load.svc.cluster.local" %
                (i // 250, i % 250 + 1, i))
    call = ch.stream_stream(SOTW, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=Resp.FromString)()
    await call.write(Req(node=node, type_url=T_CDS))
    await call.write(Req(type_url=T_LDS))
    seen = set()
    async for r in call:
        seen.add(r.type_url)
        if len(seen) == 2 and not ready[i]:
            ready[i] = True
        await call.write(Req(type_url=r.type_url, version_info=r.version_info,
                             response_nonce=r.nonce))


async def child_main(target, workdir):
    protos = ec.Protos(workdir)
    chans = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(CHANNELS)]
    ready = [False] * STREAMS
    tasks = [asyncio.ensure_future(child_stream(chans[i % CHANNELS], protos, i, ready))
             for i in range(STREAMS)]
    announced = False
    while True:   # runs until the parent kills this process
        await asyncio.sleep(0.05)
        if not announced and all(ready):
            print("READY", flush=True)
            announced = True
        for t in tasks:
            if t.done() and t.exception() is not None:
                print("stream failed: %r" % t.exception(), flush=True)
                os._exit(3)


# ---- the parent -------------------------------------------------------------------------

class Churn:
    """Rewrites the VirtualService (atomic rename) every 100 ms: a push per rewrite."""

    def __init__(self, pilot):
        self.path = os.path.join(pilot.config_dir, "vs.yaml")
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.write(run_load.VS % ("v%d" % i))
            os.rename(tmp, self.path)
            i += 1
            time.sleep(0.1)

    def end(self):
        self.stop = True
        self.t.join()


def start_pilot(work, name):
    pilot = ec.Pilot(workdir=os.path.join(work, name),
                     extra_args=["--caStateDir", os.path.join(work, name, "ca"),
                                 "--caCertsDir", os.path.join(work, "none")])
    run_load.write_config(pilot.config_dir, SERVICES)
    pilot.start(timeout=60)
    return pilot


def start_child(pilot, work):
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child",
                              pilot.target(), work],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = child.stdout.readline()   # READY, or why not (bounded by the test's timeout)
    return child, line.strip()


def connections(pilot):
    _, text = ec.http_get(pilot.url("/debug/connections"))
    return text.count('"connectionId"') if text.startswith(("{", "[")) else -1


def log_clean(pilot, what):
    log = pilot.read_log()
    bad = [ln for ln in log.splitlines()
           if "assertion failed" in ln or "AddressSanitizer" in ln or "runtime error" in ln
           or "LeakSanitizer" in ln]
    check(not bad, "%s: no assertion or sanitizer report in the server log%s" %
          (what, (": " + bad[0]) if bad else ""))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child_main(sys.argv[2], sys.argv[3]))
        return 0
    work = tempfile.mkdtemp(prefix="disconnect-storm-")

    # 1. clients vanish during pushes; the server lives on
    pilot = start_pilot(work, "survive")
    try:
        churn = Churn(pilot)
        child, line = start_child(pilot, work)
        check(line == "READY", "%d streams got CDS and LDS (%s)" % (STREAMS, line or "EOF"))
        time.sleep(0.7)   # a few pushes in flight
        child.kill()
        child.wait()
        time.sleep(1.0)
        churn.end()
        st, _ = ec.http_get(pilot.url("/ready"))
        check(pilot.proc.poll() is None and st == 200,
              "after SIGKILL of %d streams mid-push the server is up and ready" % STREAMS)
        deadline = time.time() + 10
        n = -1
        while time.time() < deadline:
            n = connections(pilot)
            if n == 0:
                break
            time.sleep(0.2)
        check(n == 0, "every connection of the killed client is dropped (%d left)" % n)
    finally:
        code = pilot.stop()
    check(code == 0, "server exit code after the storm: %d" % code)
    log_clean(pilot, "survive")

    # 2. clients vanish and the server is told to stop at the same moment
    for r in range(ROUNDS):
        pilot = start_pilot(work, "term%d" % r)
        try:
            churn = Churn(pilot)
            child, line = start_child(pilot, work)
            check(line == "READY", "round %d: %d streams got CDS and LDS (%s)" %
                  (r, STREAMS, line or "EOF"))
            time.sleep(0.5)
            child.kill()
            pilot.proc.send_signal(signal.SIGTERM)
            child.wait()
            churn.end()
        finally:
            code = pilot.stop()
        check(code == 0, "round %d: SIGTERM while %d streams disconnect: exit %d" %
              (r, STREAMS, code))
        log_clean(pilot, "round %d" % r)

    if failures:
        print("%d check(s) failed" % failures)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
