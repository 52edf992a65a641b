#!/bin/bash
# End to end: pilot-discovery --kubeconfig at the stand-in API server. Istio's bookinfo is
# applied with kubectl; after each step /debug/configz must hold exactly the server's
# Istio objects (kind, namespace, name, resourceVersion) and /debug/registryz its services:
#   initial sync -> kubectl apply of a VirtualService change -> dropped watches (+ a write)
#   -> stalled watches that miss deletions, then compaction (410 -> relist) -> an API
#   server restart with different state.
# Skips (77) without the binary, kubectl or the shared Istio tree.
set -euo pipefail
src=${PILOT_SRC:?}
build=${PILOT_BUILD:?}
shared=${PILOT_SHARED:-$src/../shared}
bin=$build/pilot/pilot-discovery
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
command -v kubectl >/dev/null || { echo "SKIP: kubectl not installed"; exit 77; }
bookinfo=$shared/istio/samples/bookinfo
[ -d "$bookinfo" ] || { echo "SKIP: $bookinfo missing"; exit 77; }

dir=$(mktemp -d /tmp/k8s-e2e-XXXXXX)
spid= ppid_=
cleanup() {
    [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null
    [ -n "$spid" ] && kill "$spid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- pilot log"; tail -30 "$dir/pilot.log"
    echo "--- apiserver log"; tail -10 "$dir/server.log"
    exit 1
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

/usr/bin/python3 "$src/tests/k8s/apiserver.py" --port-file "$dir/port" 2>"$dir/server.log" &
spid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port")
api=http://127.0.0.1:$port
cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: standin
clusters:
- name: standin
  cluster: {server: "$api"}
contexts:
- name: standin
  context: {cluster: standin, user: tester}
users:
- name: tester
  user: {token: test-token}
KC
export KUBECONFIG=$dir/kubeconfig
k() { kubectl --request-timeout=20s "$@"; }
k apply --validate=false -f "$bookinfo/platform/kube/bookinfo.yaml" \
    -f "$bookinfo/networking/bookinfo-gateway.yaml" \
    -f "$bookinfo/networking/destination-rule-all.yaml" \
    -f "$bookinfo/networking/virtual-service-all-v1.yaml" >/dev/null

hp=$(free_port); mp=$(free_port); gp=$(free_port)
"$bin" discovery --kubeconfig "$dir/kubeconfig" --httpAddr "127.0.0.1:$hp" \
    --monitoringAddr "127.0.0.1:$mp" --grpcAddr "127.0.0.1:$gp" >"$dir/pilot.log" 2>&1 &
ppid_=$!

ready=0
for _ in $(seq 100); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/ready")" = 200 ]; then
        ready=1; break
    fi
    sleep 0.1
done
[ $ready = 1 ] || fail "/ready never answered 200"

# Compares configz and registryz with the server, retrying for up to 15 s.
check() {
    local what=$1
    /usr/bin/python3 - "$api" "http://127.0.0.1:$mp" "$what" <<'PY' || fail "$what: control plane differs from the API server"
import json, sys, time, urllib.request
api, mon, what = sys.argv[1:4]
def get(u):
    with urllib.request.urlopen(u, timeout=10) as r:
        return json.load(r)
kinds = [("gateways", "Gateway"), ("virtualservices", "VirtualService"),
         ("destinationrules", "DestinationRule"), ("serviceentries", "ServiceEntry")]
last = None
for attempt in range(150):
    want = set()
    for plural, kind in kinds:
        for it in get(api + "/apis/networking.istio.io/v1/" + plural)["items"]:
            md = it["metadata"]
            want.add((kind, md["namespace"], md["name"], md["resourceVersion"]))
    have = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"],
             str(o["metadata"].get("resourceVersion"))) for o in get(mon + "/debug/configz")}
    svcs = {(s["metadata"]["namespace"], s["metadata"]["name"])
            for s in get(api + "/api/v1/services")["items"]}
    reg = {(s["Attributes"]["Namespace"], s["Attributes"]["Name"])
           for s in get(mon + "/debug/registryz")
           if s.get("Attributes", {}).get("ServiceRegistry") == "Kubernetes"}
    if want == have and svcs == reg:
        print(f"{what}: {len(have)} config objects and {len(reg)} services match")
        sys.exit(0)
    last = (sorted(want ^ have), sorted(svcs ^ reg))
    time.sleep(0.1)
print(f"{what}: differences (config, services): {last}")
sys.exit(1)
PY
}
admin() { curl -sf -X POST "$api/_admin/$1" -d "${2:-}" >/dev/null || fail "admin $1"; }

check "initial sync"
k apply --validate=false -f "$bookinfo/networking/virtual-service-reviews-80-20.yaml" >/dev/null
check "kubectl apply of a VirtualService change"
admin drop-watches
k apply --validate=false -f "$bookinfo/networking/virtual-service-reviews-v3.yaml" >/dev/null
check "dropped watches"
admin drop-watches?abrupt=1
k delete vs ratings >/dev/null
check "reset watches"
admin "stall?seconds=60"
k delete dr details --wait=false >/dev/null
k delete vs details --wait=false >/dev/null
k apply --validate=false -f "$bookinfo/networking/virtual-service-ratings-test-delay.yaml" >/dev/null
admin compact
check "compaction (410, relist) with deletions missed"
admin "stall?seconds=0"
# A restart with different state: one service and a new Gateway + VirtualService.
cat >"$dir/state.json" <<'JSON'
[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
  "spec": {"clusterIP": "10.96.7.7", "ports": [{"name": "http", "port": 80}]}},
 {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
  "metadata": {"name": "web-gw", "namespace": "default"},
  "spec": {"selector": {"istio": "ingressgateway"},
           "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}},
 {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
  "metadata": {"name": "web", "namespace": "default"},
  "spec": {"hosts": ["*"], "gateways": ["web-gw"],
           "http": [{"route": [{"destination": {"host": "web"}}]}]}}]
JSON
curl -sf -X POST "$api/_admin/restart" --data-binary @"$dir/state.json" >/dev/null || fail restart
check "API server restart with new state"
curl -s "http://127.0.0.1:$mp/debug/k8sz" >"$dir/k8sz.json"
/usr/bin/python3 - "$dir/k8sz.json" <<'PY' || fail "k8sz after faults"
import json, sys
st = {e["resource"]: e for e in json.load(open(sys.argv[1]))}
assert st["virtualservices"]["relists"] >= 3, st["virtualservices"]
assert st["virtualservices"]["watches"] >= 4, st["virtualservices"]
assert all(e["synced"] for e in st.values())
print("k8sz:", {k: (v["relists"], v["watches"], v["events"]) for k, v in st.items()})
PY
kill "$ppid_"; wait "$ppid_" || true; ppid_=
echo "e2e k8s test passed"
