#!/usr/bin/python3
"""scaling_sim: 100,000 proxies over N replicas, on paper, from costs we measured.

Every input below is a number from docs/BENCHMARKS.md (named there) or from
tests/k8s/test_k8s_leader.py; the model is deliberately simple and linear, and says
what it leaves out. Run it to print the table docs/SCALING.md carries:

    /usr/bin/python3 tests/bench/scaling_sim.py [--proxies 100000] [--cores 4] [--pods 100000]

The model:
  - proxies spread evenly: --keepaliveMaxServerConnectionAge (30 m + 10 s grace) ends every
    connection within one age, and a reconnecting proxy lands on a replica the Service's
    load balancing picks, so after one age the spread is even up to balancing noise;
  - memory per replica = process base + model (per Pod, every replica holds the whole
    mesh) + per-stream state x its proxies;
  - one config change: every replica rebuilds its snapshot (the model's cost, the same on
    each) and pushes to its own proxies; the push's CPU is per connected proxy, spread over
    the replica's cores; convergence = debounce + build + push CPU / cores;
  - API server: every replica lists and watches the same resources, so watch streams and
    events delivered grow with N while each replica's own event cost does not.
"""
import argparse

# ---- measured inputs (docs/BENCHMARKS.md) -------------------------------------------------
BASE_MB = 22.0            # idle release pilot-discovery on manifests/samples with the CA,
                          # webhooks and HTTP servers: VmRSS 22,488 kB (2026-12-02, this machine)
MODEL_B_PER_POD = 2822    # "everything ... per Pod" (Model section), 10,000 svc / 50,000 pods
STREAM_MB = 0.6           # RSS growth per connected Envoy sidecar, 1000 services with a rule
                          # each (xDS section, "Envoy sidecars": 456-588 KiB at 2000; proxyless
                          # clients 307-337 KiB)
PUSH_MS_PER_PROXY = 0.6   # server CPU of a one-route VS edit per connected sidecar at 2000
                          # sidecars (same section: 0.88-1.23 CPU-s / 2000)
INITIAL_MS_PER_PROXY = 12.0  # initial push CPU per sidecar at 1000-2000 sidecars (11-12 ms)
BUILD_S = 0.35            # first full snapshot build, 10,000 services (Model section)
DEBOUNCE_S = 0.1          # PILOT_DEBOUNCE_AFTER
POD_EVENT_US = 40         # reflector + model CPU per pod event (Model section: ~40 us)
WATCHES = 14              # list+watch streams one replica opens (k8s source: 13 kinds + CA CMs)
LEASE_RENEW_S = 7.5       # retry period of the one election (30 s lease / 4)


def row(n, proxies, pods, cores, churn):
    per = proxies / n
    mem_mb = BASE_MB + pods * MODEL_B_PER_POD / 2**20 + per * STREAM_MB
    push_cpu = per * PUSH_MS_PER_PROXY / 1000
    converge = DEBOUNCE_S + BUILD_S + push_cpu / cores
    initial = per * INITIAL_MS_PER_PROXY / 1000 / cores
    watch_streams = n * WATCHES
    events_s = n * churn  # events per second the API server sends out for `churn` changes/s
    model_cpu = churn * POD_EVENT_US / 1e6  # each replica's share of one core
    lease_rps = 1 / LEASE_RENEW_S  # only the leader renews; candidates poll at the same rate
    return (n, per, mem_mb, push_cpu, converge, initial, watch_streams, events_s, model_cpu,
            n * lease_rps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxies", type=int, default=100000)
    ap.add_argument("--pods", type=int, default=100000)
    ap.add_argument("--cores", type=int, default=4)
    ap.add_argument("--churn", type=float, default=50.0, help="pod events per second")
    a = ap.parse_args()
    print("%d proxies, %d pods, %d cores per replica, %.0f pod events/s" %
          (a.proxies, a.pods, a.cores, a.churn))
    print("| replicas | proxies each | RSS each | push CPU each (one VS edit) | convergence | "
          "reconnect storm (all proxies at once) | watch streams on the API server | "
          "events/s sent by it | model CPU each | Lease requests/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (1, 2, 3, 5, 10, 20):
        r = row(n, a.proxies, a.pods, a.cores, a.churn)
        print("| %d | %.0f | %.1f GB | %.1f CPU-s | %.1f s | %.0f s | %d | %.0f | %.1f %% | %.2f |" %
              (r[0], r[1], r[2] / 1024, r[3], r[4], r[5], r[6], r[7], r[8] * 100, r[9]))


if __name__ == "__main__":
    main()
