#!/bin/bash
# kubectl against the stand-in API server: Istio's bookinfo sample (platform + networking)
# applied with `kubectl apply --validate=false`, read back with `kubectl get -o json`,
# changed with a second apply, deleted with `kubectl delete`; then our install manifests
# (manifests/*.yaml) applied cleanly. Skips (77) without kubectl or the shared Istio tree.
set -euo pipefail
src=${PILOT_SRC:?}
shared=${PILOT_SHARED:-$src/../shared}
command -v kubectl >/dev/null || { echo "SKIP: kubectl not installed"; exit 77; }
bookinfo=$shared/istio/samples/bookinfo
[ -d "$bookinfo" ] || { echo "SKIP: $bookinfo missing"; exit 77; }

dir=$(mktemp -d /tmp/k8s-kubectl-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
/usr/bin/python3 "$src/tests/k8s/apiserver.py" --port-file "$dir/port" 2>"$dir/server.log" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port")
cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: standin
clusters:
- name: standin
  cluster: {server: "http://127.0.0.1:$port"}
contexts:
- name: standin
  context: {cluster: standin, user: tester}
users:
- name: tester
  user: {token: test-token}
KC
export KUBECONFIG=$dir/kubeconfig
k() { kubectl --request-timeout=20s "$@"; }
fail() { echo "FAIL: $*"; cat "$dir/server.log" | tail -20; exit 1; }
pyq() { /usr/bin/python3 -c "$1" "$dir/out.json"; }

# 1. bookinfo: apply, read back.
cat >"$dir/ns.yaml" <<NS
apiVersion: v1
kind: Namespace
metadata: {name: default}
NS
k apply --validate=false -f "$dir/ns.yaml" >/dev/null
k apply --validate=false -f "$bookinfo/platform/kube/bookinfo.yaml" >"$dir/apply1.txt"
grep -q "service/productpage created" "$dir/apply1.txt" || fail "bookinfo services not created"
k apply --validate=false -f "$bookinfo/networking/bookinfo-gateway.yaml" \
    -f "$bookinfo/networking/destination-rule-all.yaml" \
    -f "$bookinfo/networking/virtual-service-all-v1.yaml" >"$dir/apply2.txt"
k get vs,dr,gw,svc -A -o json >"$dir/out.json"
pyq '
import json, sys
items = json.load(open(sys.argv[1]))["items"]
got = sorted((i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]) for i in items)
want = sorted([("VirtualService", "default", n) for n in ["bookinfo", "productpage", "reviews", "ratings", "details"]]
  + [("DestinationRule", "default", n) for n in ["productpage", "reviews", "ratings", "details"]]
  + [("Gateway", "default", "bookinfo-gateway")]
  + [("Service", "default", n) for n in ["details", "ratings", "reviews", "productpage"]])
assert got == want, (got, want)
vs = [i for i in items if i["kind"] == "VirtualService" and i["metadata"]["name"] == "bookinfo"][0]
assert vs["apiVersion"] == "networking.istio.io/v1", vs["apiVersion"]
assert vs["spec"]["gateways"] == ["bookinfo-gateway"]
assert vs["spec"]["http"][0]["match"][0]["uri"]["exact"] == "/productpage"
dr = [i for i in items if i["kind"] == "DestinationRule" and i["metadata"]["name"] == "reviews"][0]
assert [s["name"] for s in dr["spec"]["subsets"]] == ["v1", "v2", "v3"]
for i in items:
    md = i["metadata"]
    assert md["uid"] and md["creationTimestamp"] and int(md["resourceVersion"]) > 0, md
print("bookinfo read back:", len(items), "objects")
' || fail "bookinfo read-back"

# Short names and the older served versions work too.
k get gw bookinfo-gateway -o jsonpath='{.spec.selector.istio}' | grep -x ingressgateway >/dev/null \
    || fail "kubectl get gw"
k get virtualservices.v1beta1.networking.istio.io reviews -o jsonpath='{.apiVersion}' \
    | grep -x networking.istio.io/v1beta1 >/dev/null || fail "v1beta1 read"

# 2. A change through apply (PATCH): weights and generation.
k apply --validate=false -f "$bookinfo/networking/virtual-service-reviews-80-20.yaml" \
    | grep configured >/dev/null || fail "80-20 apply not configured"
k get vs reviews -o json >"$dir/out.json"
pyq '
import json, sys
vs = json.load(open(sys.argv[1]))
w = [r["weight"] for r in vs["spec"]["http"][0]["route"]]
assert w == [80, 20], w
assert vs["metadata"]["generation"] == 2, vs["metadata"]["generation"]
' || fail "80-20 read-back"
# Re-applying the same file changes nothing.
k apply --validate=false -f "$bookinfo/networking/virtual-service-reviews-80-20.yaml" \
    | grep unchanged >/dev/null || fail "second apply not unchanged"

# 3. Delete.
k delete -f "$bookinfo/networking/bookinfo-gateway.yaml" --wait=true >/dev/null
k get gw -A -o json >"$dir/out.json"
pyq 'import json,sys; assert json.load(open(sys.argv[1]))["items"] == []' || fail "gateway not deleted"
{ k get vs bookinfo 2>&1 || true; } | grep NotFound >/dev/null || fail "vs bookinfo not deleted"

# 4. Our install manifests apply cleanly (CRDs, RBAC, istiod, gateway, sample).
shopt -s nullglob
manifests=("$src"/manifests/*.yaml)
if [ ${#manifests[@]} -gt 0 ]; then
    for m in "${manifests[@]}"; do
        k apply --validate=false -f "$m" >"$dir/apply-m.txt" 2>&1 || { cat "$dir/apply-m.txt"; fail "apply $m"; }
    done
    k get deploy,svc,sa,cm -n istio-system -o json >"$dir/out.json"
    pyq '
import json, sys
items = json.load(open(sys.argv[1]))["items"]
names = {(i["kind"], i["metadata"]["name"]) for i in items}
for want in [("Deployment", "istiod"), ("Service", "istiod"), ("ServiceAccount", "istiod"),
             ("ConfigMap", "istio"), ("Deployment", "istio-ingressgateway"),
             ("Service", "istio-ingressgateway")]:
    assert want in names, (want, sorted(names))
svc = [i for i in items if i["kind"] == "Service" and i["metadata"]["name"] == "istiod"][0]
ports = {p["port"]: p.get("targetPort", p["port"]) for p in svc["spec"]["ports"]}
assert ports == {15010: 15010, 15012: 15012, 15014: 15014, 443: 15017}, ports
print("manifests applied:", len(items), "objects in istio-system")
' || fail "manifests read-back"
    k get crd -o json >"$dir/out.json"
    pyq '
import json, sys
crds = {i["metadata"]["name"]: i for i in json.load(open(sys.argv[1]))["items"]}
for n, short in [("gateways", "gw"), ("virtualservices", "vs"), ("destinationrules", "dr"), ("serviceentries", "se")]:
    c = crds[n + ".networking.istio.io"]
    assert short in c["spec"]["names"]["shortNames"]
    vs = {v["name"]: (v["served"], v["storage"]) for v in c["spec"]["versions"]}
    assert vs == {"v1": (True, True), "v1beta1": (True, False), "v1alpha3": (True, False)}, vs
' || fail "CRDs"
    k get clusterrole istiod -o json >"$dir/out.json"
    pyq '
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
got = {(g, r): sorted(x["verbs"]) for x in rules for g in x["apiGroups"] for r in x["resources"]}
for key in [("", "services"), ("", "pods"), ("", "namespaces"), ("discovery.k8s.io", "endpointslices"),
            ("networking.istio.io", "virtualservices")]:
    assert got[key] == ["list", "watch"], (key, got.get(key))
assert got[("", "configmaps")] == ["create", "delete", "get", "list", "update", "watch"], got
# Secrets cluster-wide: read only (gateway credentials); writes only in the Role below.
assert got[("", "secrets")] == ["get", "list", "watch"], got
assert got[("authentication.k8s.io", "tokenreviews")] == ["create"], got
assert not any("*" in v for v in got.values()), got
# Nothing beyond what the code uses.
assert set(got) == {("", r) for r in ("namespaces", "services", "pods", "endpoints", "configmaps",
                                      "secrets")} | {("discovery.k8s.io", "endpointslices"),
                    ("authentication.k8s.io", "tokenreviews")} | {
    ("networking.istio.io", r) for r in ("gateways", "virtualservices", "destinationrules",
                                         "serviceentries")}, sorted(got)
' || fail "ClusterRole istiod is not least-privilege"
    k get role istiod -n istio-system -o json >"$dir/out.json"
    pyq '
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
got = {(g, r): sorted(x["verbs"]) for x in rules for g in x["apiGroups"] for r in x["resources"]}
assert got == {("", "secrets"): ["create", "delete", "get", "update"],
               ("coordination.k8s.io", "leases"): ["create", "delete", "get", "update"]}, got
' || fail "Role istiod (istio-system) is not least-privilege"
fi
echo "kubectl test passed"
