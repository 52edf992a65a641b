#!/usr/bin/env bash
# `make bench`: runs the benchmarks that exist and prints their summaries (docs/BENCHMARKS.md
# explains each one and keeps the published numbers).
#   1. the model: tests/bench/bench_model (Services, EndpointSlices, Pods applied; builds;
#      bytes per pod; a pod relabel burst)
#   2. the Kubernetes reflector: tests/k8s/bench_k8s against the Python stand-in API server
#   3. the CA: tests/certs/ca_bench
#   4. the xDS server: tests/load/run_load.py (xds_load clients): proxyless gRPC clients,
#      then Envoy sidecars (SotW and Delta) on a mesh with a DestinationRule and a
#      VirtualService per service; one table with each run's loopback byte floor
#   5. gateway scale: tests/bench/gateways.py (N Gateways and VirtualServices, one router)
# Usage: tests/bench/run.sh BUILD_DIR [--quick]
#   --quick: small sizes everywhere (a minute or two), for checking that they all still run.
# Meant for a release or debugoptimized build: sanitizer builds are several times slower
# and make the numbers meaningless. The machine's nproc, CPU model and load averages are
# printed before and after: on a shared machine, compare CPU seconds, not wall times.
set -uo pipefail
build=${1:-build}
quick=0
[ "${2:-}" = "--quick" ] && quick=1
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd) || { echo "no build directory $1"; exit 2; }
export PILOT_SRC=$top PILOT_BUILD=$build
py=/usr/bin/python3

if [ $quick = 1 ]; then
    model_args=(2000 10000) k8s_args=(1000 5000) ca_args=(-n 500) load_args=(--clients 20 --services 50)
    envoy_args=(--clients 20 --services 50)
    gw_args=(500 1000)
else
    model_args=(10000 50000) k8s_args=(10000 50000) ca_args=(-n 3000) load_args=(--clients 100 --services 200)
    envoy_args=(--clients 200 --services 1000)
    gw_args=(1000 2000 4000 10000)
fi

machine() {
    echo "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

targets=(tests/bench/bench_model tests/k8s/bench_k8s tests/certs/ca_bench
         pilot/pilot-discovery tests/load/xds_load tests/xds/gen/gen_dump)
echo "== building ${targets[*]} in $build"
ninja -C "$build" -j2 "${targets[@]}" >/dev/null || { echo "build failed"; exit 1; }
echo "== buildtype: $(meson introspect --buildoptions "$build" 2>/dev/null |
    $py -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null || echo '?')"
machine

declare -A status
scratch=$(mktemp -d /tmp/pilot-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

echo
echo "== model: bench_model ${model_args[*]} (services/slices, pods)"
if "$build/tests/bench/bench_model" "${model_args[@]}" >"$scratch/model.json" 2>"$scratch/model.err"; then
    status[model]=ok
    $py - "$scratch/model.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k, what in (("apply_pods", "pods applied"), ("apply_slices", "slices applied"),
                ("apply_services", "services applied"), ("pod_burst", "pod MODIFIED burst")):
    p = d[k]
    print("  %-22s %7d events  %6.2f CPU-s  %8.0f events/CPU-s" %
          (what, p["events"], p["apply_cpu_s"], p["events_per_cpu_s"]))
for k, what in (("apply_services", "first full build"), ("vs_full_build", "VirtualService edit"),
                ("one_slice_build", "one slice changed"), ("one_pod_build", "one pod relabelled"),
                ("pod_burst", "burst, one build")):
    p = d[k]
    print("  build: %-20s %8.1f ms CPU   push: full=%s hosts=%d endpoints=%d" %
          (what, p["build_cpu_s"] * 1000, p["push"]["full"], p["push"]["endpoint_hosts"],
           p["push"]["endpoints"]))
print("  retained per pod: %.0f B in the store, %.0f B with slices, services and the snapshot"
      " (malloc in-use); RSS %.2f KiB per pod" %
      (d["store_bytes_per_pod"], d["model_bytes_per_pod"], d["rss_kb_per_pod"]))
PY
else
    status[model]=FAILED
    tail -20 "$scratch/model.err"
fi
machine

echo
echo "== kubernetes reflector: bench_k8s ${k8s_args[*]} (services, pods)"
if "$build/tests/k8s/bench_k8s" "${k8s_args[@]}" >"$scratch/k8s.json" 2>"$scratch/k8s.err"; then
    status[k8s]=ok
    $py - "$scratch/k8s.json" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print("  initial list: %d objects, %.2f CPU-s, %.0f objects/CPU-s (wall %.1f s)" %
      (d["list_objects"], d["list_cpu_s"], d["list_objects_per_cpu_s"], d["list_wall_s"]))
print("  watch burst:  %d events, %.2f CPU-s, %.0f events/CPU-s" %
      (d["watch_events"], d["watch_cpu_s"], d["watch_events_per_cpu_s"]))
print("  retained by the reflector: %.0f B per pod; idle %.2f %% of a core" %
      (d["retained_bytes_per_pod"], d["idle_cpu_fraction"] * 100))
PY
else
    rc=$?
    if [ $rc = 77 ]; then status[k8s]=skipped; else status[k8s]=FAILED; fi
    tail -20 "$scratch/k8s.err"
fi
machine

echo
echo "== CA: ca_bench ${ca_args[*]}"
if "$build/tests/certs/ca_bench" "${ca_args[@]}" >"$scratch/ca.txt" 2>"$scratch/ca.err"; then
    status[ca]=ok
    sed 's/^/  /' "$scratch/ca.txt"
else
    status[ca]=FAILED
    tail -20 "$scratch/ca.err"
fi
machine

echo
echo "== xDS: run_load.py: proxyless ${load_args[*]}; Envoy sidecars ${envoy_args[*]} --full-mesh"
# The CA keeps its state relative to the working directory: run from a scratch one.
mkdir -p "$scratch/load/var/run/pilot-ca"
status[xds]=ok
: >"$scratch/load-results.txt"
for run in "grpc:${load_args[*]}" "envoy:${envoy_args[*]} --full-mesh" \
           "envoy:${envoy_args[*]} --full-mesh --delta"; do
    flavour=${run%%:*}
    read -r -a args <<<"${run#*:}"
    echo "  -- $flavour ${args[*]}"
    if (cd "$scratch/load" && $py "$top/tests/load/run_load.py" --build "$build" \
            --flavour "$flavour" "${args[@]}") >"$scratch/load.txt" 2>&1; then
        grep -vE '^/|xds_load --target|^result:' "$scratch/load.txt" | sed 's/^/  /'
    else
        status[xds]=FAILED
        tail -30 "$scratch/load.txt"
    fi
    grep '^result:' "$scratch/load.txt" | sed 's/^result: //' >>"$scratch/load-results.txt"
done
# One table: every run with its own loopback byte floor (the bytes the clients received
# divided by the loopback bandwidth measured in that run): the least time those bytes can
# take on this machine. "edit" includes inotify, the 100 ms debounce and the build;
# "first -> last" is the fan-out alone, the part the floor bounds.
$py - "$scratch/load-results.txt" "$(machine)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("  %s" % sys.argv[2])
print("  | flavour | protocol | clients | services | all served | server CPU (us/client) |"
      " RSS/client | route edit -> last | first -> last | edit MB | loopback | floor |"
      " edit / floor | first -> last / floor |")
print("  |" + "---|" * 14)
for r in rows:
    floor = r["edit_mb"] / r["loopback_mbps"] if r["loopback_mbps"] > 0 else float("nan")
    print("  | %s | %s | %d | %d | %.2f s | %.2f s (%.0f) | %.0f KiB | %.3f s | %.3f s |"
          " %.1f | %.0f MB/s | %.4f s | %.1fx | %.1fx |" %
          (r["flavour"], "delta" if r["delta"] else "sotw", r["clients"], r["services"],
           r["served_s"], r["init_cpu_s"], r["init_cpu_s"] * 1e6 / r["clients"],
           r["rss_kb_per_client"], r["edit_s"], r["edit_spread_s"], r["edit_mb"],
           r["loopback_mbps"], floor, r["edit_s"] / floor if floor > 0 else float("nan"),
           r["edit_spread_s"] / floor if floor > 0 else float("nan")))
PY

echo
echo "== gateway scale: gateways.py ${gw_args[*]}"
if $py "$top/tests/bench/gateways.py" "$build/tests/xds/gen/gen_dump" "${gw_args[@]}" \
        >"$scratch/gw.txt" 2>&1; then
    status[gw]=ok
else
    status[gw]=FAILED
fi
sed 's/^/  /' "$scratch/gw.txt"
machine

echo
rc=0
for k in model k8s ca xds gw; do
    echo "$k: ${status[$k]}"
    [ "${status[$k]}" = FAILED ] && rc=1
done
exit $rc
