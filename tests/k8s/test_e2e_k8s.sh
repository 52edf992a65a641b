#!/bin/bash
# End to end: pilot-discovery --kubeconfig at a REAL kube-apiserver + etcd
# (tests/k8s/realk8s.py, binaries from $PILOT_PEERS_BIN), authenticated only by a bound
# token of istio-system/istiod, so the RBAC authorizer judges manifests/02-rbac.yaml. It
# reaches the server through a TCP relay the test controls (realk8s Relay: hold = a
# partition, cut = every connection reset). Istio's bookinfo is applied with kubectl;
# after each step /debug/configz must hold exactly the server's Istio objects (kind,
# namespace, name, resourceVersion) and /debug/registryz its services:
#   initial sync -> kubectl apply of a VirtualService change
#   -> an API server restart (graceful SIGTERM: open watches are kept ~30 s, then cut),
#      then a write; the new server's watch cache starts at etcd's current revision, so
#      re-watches from older resourceVersions get 410 ("too old resource version") and
#      the reflectors relist
#   -> an API server SIGKILL and start, then a deletion
#   -> a partition that misses deletions and a change, connections cut: the re-watch
#      from the last resourceVersion is replayed from the watch cache
#   -> a partition while the state changes wholesale (bookinfo replaced by one web
#      service), an API server restart, connections cut
# (default --watch-cache; the compaction-forced 410 without it is k8s_grpc_routing's),
# and the API server's audit log must show no 403 for istiod outside an API server's
# first moment (RBAC's caches not yet filled: it refuses everyone, pilot retries).
# Skips (77) without the binary, $PILOT_PEERS_BIN's binaries or the shared Istio tree.
set -euo pipefail
src=${PILOT_SRC:?}
build=${PILOT_BUILD:?}
shared=${PILOT_SHARED:-$src/../shared}
bin=$build/pilot/pilot-discovery
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
bookinfo=$shared/istio/samples/bookinfo
[ -d "$bookinfo" ] || { echo "SKIP: $bookinfo missing"; exit 77; }
# shellcheck source=tests/k8s/realk8s.sh
. "$src/tests/k8s/realk8s.sh"

dir=$(mktemp -d /tmp/k8s-e2e-XXXXXX)
ppid_=
keep=0
cleanup() {
    [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null
    wait "$ppid_" 2>/dev/null || true
    realk8s_stop
    [ $keep = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    keep=1
    echo "FAIL: $*"
    echo "(logs kept in $dir)"
    echo "--- pilot log"; tail -40 "$dir/pilot.log"
    echo "--- apiserver log"; tail -10 "$dir/k8s/apiserver.log"
    exit 1
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
t0=$(date +%s)
realk8s_start "$dir/k8s" --relay
export KUBECONFIG=$REALK8S_KUBECONFIG
k() { "$REALK8S_KUBECTL" --request-timeout=30s "$@"; }
k apply -f "$bookinfo/platform/kube/bookinfo.yaml" \
    -f "$bookinfo/networking/bookinfo-gateway.yaml" \
    -f "$bookinfo/networking/destination-rule-all.yaml" \
    -f "$bookinfo/networking/virtual-service-all-v1.yaml" >/dev/null

hp=$(free_port); mp=$(free_port); gp=$(free_port); tp=$(free_port)
"$bin" discovery --kubeconfig "$REALK8S_ISTIOD_KUBECONFIG" --httpAddr "127.0.0.1:$hp" \
    --monitoringAddr "127.0.0.1:$mp" --grpcAddr "127.0.0.1:$gp" \
    --secureGRPCAddr "127.0.0.1:$tp" --caCertsDir "$dir/no-cacerts" >"$dir/pilot.log" 2>&1 &
ppid_=$!

ready=0
for _ in $(seq 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/ready")" = 200 ]; then
        ready=1; break
    fi
    sleep 0.1
done
[ $ready = 1 ] || fail "/ready never answered 200"

# Compares configz and registryz with the server (read as the admin), retrying for up to
# 30 s.
check() {
    local what=$1
    /usr/bin/python3 - "$src/tests/k8s" "$dir/k8s" "http://127.0.0.1:$mp" "$what" <<'PY' || fail "$what: control plane differs from the API server"
import json, sys, time, urllib.request
sys.path.insert(0, sys.argv[1])
import realk8s
api = realk8s.attach(sys.argv[2])
mon, what = sys.argv[3:5]
def get(u):
    with urllib.request.urlopen(u, timeout=10) as r:
        return json.load(r)
kinds = [("gateways", "Gateway"), ("virtualservices", "VirtualService"),
         ("destinationrules", "DestinationRule"), ("serviceentries", "ServiceEntry")]
last = None
t0 = time.time()
while time.time() - t0 < 30:
    want = set()
    for plural, kind in kinds:
        for it in api.get("/apis/networking.istio.io/v1/" + plural)["items"]:
            md = it["metadata"]
            want.add((kind, md["namespace"], md["name"], md["resourceVersion"]))
    have = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"],
             str(o["metadata"].get("resourceVersion"))) for o in get(mon + "/debug/configz")}
    svcs = {(s["metadata"]["namespace"], s["metadata"]["name"])
            for s in api.get("/api/v1/services")["items"]}
    reg = {(s["Attributes"]["Namespace"], s["Attributes"]["Name"])
           for s in get(mon + "/debug/registryz")
           if s.get("Attributes", {}).get("ServiceRegistry") == "Kubernetes"}
    if want == have and svcs == reg:
        print(f"{what}: {len(have)} config objects and {len(reg)} services match "
              f"({time.time() - t0:.1f} s)")
        sys.exit(0)
    last = (sorted(want ^ have), sorted(svcs ^ reg))
    time.sleep(0.1)
print(f"{what}: differences (config, services): {last}")
sys.exit(1)
PY
}
# The VirtualService's resourceVersion in configz (empty when absent).
configz_rv() {
    curl -s "http://127.0.0.1:$mp/debug/configz" | /usr/bin/python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["kind"] == sys.argv[1] and o["metadata"]["name"] == sys.argv[2]:
        print(o["metadata"].get("resourceVersion"))' "$1" "$2"
}
k8sz() { curl -s "http://127.0.0.1:$mp/debug/k8sz"; }
relists() { k8sz | /usr/bin/python3 -c 'import json,sys; print(sum(e["relists"] for e in json.load(sys.stdin)))'; }

check "initial sync"
k apply -f "$bookinfo/networking/virtual-service-reviews-80-20.yaml" >/dev/null
check "kubectl apply of a VirtualService change"

r0=$(relists)
realk8s_ctl restart-apiserver >"$dir/restart.json"
k apply -f "$bookinfo/networking/virtual-service-reviews-v3.yaml" >/dev/null
check "API server restarted (SIGTERM, $(cat "$dir/restart.json")), then a write"
r1=$(relists)
[ "$r1" -gt "$r0" ] || fail "no relist after the restart ($r0 -> $r1)"
echo "relists $r0 -> $r1: $(grep -m1 'too old resource version' "$dir/pilot.log" | cut -f4 | cut -c1-160)"

realk8s_ctl restart-apiserver kill >/dev/null
k delete vs ratings >/dev/null
check "API server killed (SIGKILL) and started, then a deletion"

# A partition: the watches stay open but carry nothing while deletions and a change land;
# then the connections are cut and the re-watches replay what was missed.
rv_details=$(configz_rv VirtualService details)
[ -n "$rv_details" ] || fail "no VirtualService details in configz before the partition"
realk8s_ctl hold >/dev/null
k delete dr details --wait=false >/dev/null
k delete vs details --wait=false >/dev/null
k apply -f "$bookinfo/networking/virtual-service-ratings-test-delay.yaml" >/dev/null
sleep 1
[ "$(configz_rv VirtualService details)" = "$rv_details" ] ||
    fail "held: configz changed during the partition"
echo "held: configz still has VirtualService details at rv $rv_details"
realk8s_ctl cut >/dev/null
realk8s_ctl release >/dev/null
check "partition with deletions missed, connections cut"

# The state changes wholesale during a partition, and the API server restarts.
realk8s_ctl hold >/dev/null
k delete -f "$bookinfo/networking/destination-rule-all.yaml" --ignore-not-found >/dev/null
k delete vs --all >/dev/null
k delete gw --all >/dev/null
k delete -f "$bookinfo/platform/kube/bookinfo.yaml" --wait=false >/dev/null
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.7.7
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web-gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [web-gw]
  http: [{route: [{destination: {host: web}}]}]
YAML
r0=$(relists)
realk8s_ctl restart-apiserver kill >/dev/null
realk8s_ctl cut >/dev/null
realk8s_ctl release >/dev/null
check "state replaced during a partition, API server killed and started"
r1=$(relists)
[ "$r1" -gt "$r0" ] || fail "no relist after the partition and restart ($r0 -> $r1)"
k8sz >"$dir/k8sz.json"
/usr/bin/python3 - "$dir/k8sz.json" <<'PY' || fail "k8sz after faults"
import json, sys
st = {e["resource"]: e for e in json.load(open(sys.argv[1]))}
assert st["virtualservices"]["relists"] >= 3, st["virtualservices"]
assert st["virtualservices"]["watches"] >= 4, st["virtualservices"]
assert all(e["synced"] for e in st.values()), st
print("k8sz:", {k: (v["relists"], v["watches"], v["events"]) for k, v in st.items()})
PY
# RBAC (the API server's audit log): nothing pilot-discovery asked was refused, but in an
# API server's first moment (RBAC's caches not filled: 403 to everyone, retried); the
# CA's writes went through.
realk8s_ctl denials >"$dir/denials.json"
/usr/bin/python3 - "$dir/denials.json" <<'PY' || fail "RBAC refused pilot-discovery"
import json, sys
d = json.load(open(sys.argv[1]))
print("RBAC: %d refusals inside API server start-up windows%s" % (
    d["start_window"], (", first: %s %s: %s" % tuple(d["first"][1:3] + [d["first"][5]]))
    if d["first"] else ""))
for x in d["other"]:
    print("REFUSED outside a start-up window:", x)
sys.exit(1 if d["other"] else 0)
PY
k get secret istio-ca-secret -n istio-system -o name >/dev/null || fail "no istio-ca-secret"
k get cm istio-ca-root-cert -n default -o name >/dev/null || fail "no istio-ca-root-cert in default"
kill "$ppid_"
rc=0; wait "$ppid_" || rc=$?
ppid_=
[ $rc = 0 ] || fail "pilot-discovery exit $rc"
echo "e2e k8s test passed in $(( $(date +%s) - t0 )) s ($REALK8S_VERSIONS)"
