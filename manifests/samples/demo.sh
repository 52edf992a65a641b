#!/usr/bin/env bash
# `make demo`: runs the control plane on this directory's sample mesh, waits until it is
# ready, connects DEMO_PROXIES (default 2) simulated Envoy sidecars to it (the load client
# tests/load/xds_load, when built: each sends a sidecar node as istio-agent does and ACKs
# what it gets, so /debug/syncz and `istioctl proxy-status` have proxies to list), prints a
# few requests to try, and stays in the foreground until Ctrl-C.
# Usage: manifests/samples/demo.sh [BUILD_DIR] [extra pilot-discovery flags...]
# Later flags win, so e.g. `make demo DEMO_ARGS="--httpAddr 127.0.0.1:18080"` moves a port.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
shift || true
bin=$build/pilot/pilot-discovery
[ -x "$bin" ] || { echo "demo: $bin not built (run make)" >&2; exit 1; }

http=127.0.0.1:8080 mon=127.0.0.1:15014 grpc=127.0.0.1:15010
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    a=${args[$i]} v=${args[$((i + 1))]:-}
    case $a in
    --httpAddr) http=$v ;; --httpAddr=*) http=${a#*=} ;;
    --monitoringAddr) mon=$v ;; --monitoringAddr=*) mon=${a#*=} ;;
    --grpcAddr) grpc=$v ;; --grpcAddr=*) grpc=${a#*=} ;;
    esac
done
local_addr() { case $1 in :*) echo "127.0.0.1$1" ;; *) echo "$1" ;; esac; }
http=$(local_addr "$http") mon=$(local_addr "$mon") grpc=$(local_addr "$grpc")

"$bin" discovery --configDir "$here" --httpAddr 127.0.0.1:8080 \
    --monitoringAddr 127.0.0.1:15014 --grpcAddr 127.0.0.1:15010 "$@" &
pid=$!
lpid=
trap 'kill $lpid 2>/dev/null; kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM

for _ in $(seq 1 100); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$http/ready")" = 200 ]; then
        break
    fi
    kill -0 $pid 2>/dev/null || { echo "demo: pilot-discovery exited" >&2; exit 1; }
    sleep 0.1
done

load=$build/tests/load/xds_load
nproxies=${DEMO_PROXIES:-2}
if [ -x "$load" ] && [ "$nproxies" -gt 0 ]; then
    "$load" --target "$grpc" --flavour envoy --clients "$nproxies" --services 2 --ns demo \
        --port 8080 --timeout 30 --linger 31536000 >"${TMPDIR:-/tmp}/pilot-demo-proxies.log" 2>&1 &
    lpid=$!
fi
istioctl=${PEERS_CACHE:-$HOME/.cache/pilot-peers}/bin/istioctl
[ -x "$istioctl" ] || istioctl=istioctl

cat <<MSG

pilot-discovery is ready (pid $pid), serving $here.
Try:
  curl -s http://$http/ready -w '%{http_code}\n'
  curl -s http://$mon/version
  curl -s http://$http/debug                       # HTML index of debug endpoints
  curl -s http://$http/debug/list
  curl -s 'http://$http/debug/configz?pretty'
  curl -s 'http://$http/debug/registryz?pretty'
  curl -s 'http://$http/debug/endpointShardz?pretty'
  curl -s 'http://$mon/debug/syncz?pretty'
  curl -s http://$mon/metrics | grep -E '^(pilot_|istiod_)'
  $istioctl proxy-status --xds-address $grpc --plaintext --revision default
xDS (ADS) on $grpc${lpid:+, with $nproxies simulated sidecars connected (pid $lpid)}. Edit a
file under $here and watch the log push.
Ctrl-C to stop.

MSG
wait $pid
