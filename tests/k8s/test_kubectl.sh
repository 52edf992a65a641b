#!/bin/bash
# kubectl against a REAL kube-apiserver + etcd (tests/k8s/realk8s.py, binaries from
# $PILOT_PEERS_BIN, RBAC on): our CRDs (manifests/01-crds.yaml) installed, then Istio's
# bookinfo sample (platform + networking) applied with `kubectl apply` (server-side field
# validation on: no --validate=false any more), read back with `kubectl get -o json`,
# changed with a second apply, deleted with `kubectl delete`; then our install manifests
# (manifests/*.yaml) applied cleanly, the ClusterRole/Role read back as least privilege,
# and the real RBAC authorizer asked (`kubectl auth can-i --as` istiod's ServiceAccount,
# and requests with a bound token of it) that istiod may do exactly what the code does.
# Skips (77) without $PILOT_PEERS_BIN's binaries or the shared Istio tree.
set -euo pipefail
src=${PILOT_SRC:?}
shared=${PILOT_SHARED:-$src/../shared}
bookinfo=$shared/istio/samples/bookinfo
[ -d "$bookinfo" ] || { echo "SKIP: $bookinfo missing"; exit 77; }
# shellcheck source=tests/k8s/realk8s.sh
. "$src/tests/k8s/realk8s.sh"

dir=$(mktemp -d /tmp/k8s-kubectl-XXXXXX)
cleanup() { realk8s_stop; rm -rf "$dir"; }
trap cleanup EXIT
t0=$(date +%s)
realk8s_start "$dir/k8s" --no-istio
export KUBECONFIG=$REALK8S_KUBECONFIG
k() { "$REALK8S_KUBECTL" --request-timeout=30s "$@"; }
fail() { echo "FAIL: $*"; tail -20 "$dir/k8s/apiserver.log"; exit 1; }
pyq() { /usr/bin/python3 -c "$1" "$dir/out.json"; }

# 0. Our CRDs first: a real server refuses Istio objects of kinds it does not serve.
k apply -f "$src/manifests/01-crds.yaml" >/dev/null
k wait --for=condition=Established --timeout=60s crd/gateways.networking.istio.io \
    crd/virtualservices.networking.istio.io crd/destinationrules.networking.istio.io \
    crd/serviceentries.networking.istio.io >/dev/null || fail "CRDs not established"

# 1. bookinfo: apply, read back.
k apply -f "$bookinfo/platform/kube/bookinfo.yaml" >"$dir/apply1.txt"
grep -q "service/productpage created" "$dir/apply1.txt" || fail "bookinfo services not created"
for _ in $(seq 50); do   # discovery of the new kinds reaches kubectl's cache
    k apply -f "$bookinfo/networking/bookinfo-gateway.yaml" \
        -f "$bookinfo/networking/destination-rule-all.yaml" \
        -f "$bookinfo/networking/virtual-service-all-v1.yaml" >"$dir/apply2.txt" 2>&1 && break
    sleep 0.2
done
grep -q "virtualservice.networking.istio.io/reviews created" "$dir/apply2.txt" ||
    { cat "$dir/apply2.txt"; fail "bookinfo networking not applied"; }
k get vs,dr,gw,svc -A -o json >"$dir/out.json"
pyq '
import json, sys
items = json.load(open(sys.argv[1]))["items"]
got = sorted((i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]) for i in items)
want = sorted([("VirtualService", "default", n) for n in ["bookinfo", "productpage", "reviews", "ratings", "details"]]
  + [("DestinationRule", "default", n) for n in ["productpage", "reviews", "ratings", "details"]]
  + [("Gateway", "default", "bookinfo-gateway")]
  + [("Service", "default", n) for n in ["details", "ratings", "reviews", "productpage"]]
  # the API server keeps its own Service
  + [("Service", "default", "kubernetes")])
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
    if i["kind"] != "Service":
        assert md["generation"] == 1, md
# The real server allocated cluster IPs from --service-cluster-ip-range 10.96.0.0/12.
import ipaddress
for i in items:
    if i["kind"] == "Service":
        ip = ipaddress.ip_address(i["spec"]["clusterIP"])
        assert ip in ipaddress.ip_network("10.96.0.0/12"), i["spec"]
print("bookinfo read back:", len(items), "objects")
' || fail "bookinfo read-back"

# Short names and the older served versions work too.
k get gw bookinfo-gateway -o jsonpath='{.spec.selector.istio}' | grep -x ingressgateway >/dev/null \
    || fail "kubectl get gw"
k get virtualservices.v1beta1.networking.istio.io reviews -o jsonpath='{.apiVersion}' \
    | grep -x networking.istio.io/v1beta1 >/dev/null || fail "v1beta1 read"
k get virtualservices.v1alpha3.networking.istio.io reviews -o jsonpath='{.apiVersion}' \
    | grep -x networking.istio.io/v1alpha3 >/dev/null || fail "v1alpha3 read"

# 2. A change through apply (PATCH): weights and generation.
k apply -f "$bookinfo/networking/virtual-service-reviews-80-20.yaml" \
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
k apply -f "$bookinfo/networking/virtual-service-reviews-80-20.yaml" \
    | grep unchanged >/dev/null || fail "second apply not unchanged"

# 3. Delete.
k delete -f "$bookinfo/networking/bookinfo-gateway.yaml" --wait=true >/dev/null
k get gw -A -o json >"$dir/out.json"
pyq 'import json,sys; assert json.load(open(sys.argv[1]))["items"] == []' || fail "gateway not deleted"
{ k get vs bookinfo 2>&1 || true; } | grep NotFound >/dev/null || fail "vs bookinfo not deleted"

# 4. Our install manifests apply cleanly (CRDs, RBAC, istiod, gateway, sample), with the
# real server's validation (unknown fields are errors).
shopt -s nullglob
manifests=("$src"/manifests/*.yaml)
[ ${#manifests[@]} -gt 0 ] || fail "no manifests"
for m in "${manifests[@]}"; do
    k apply -f "$m" >"$dir/apply-m.txt" 2>&1 || { cat "$dir/apply-m.txt"; fail "apply $m"; }
    if grep -i "warning" "$dir/apply-m.txt"; then fail "apply $m: warnings"; fi
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
# Kiali finds the control plane by these labels (app=istiod, its revision from istio.io/rev)
# and the mesh config in ConfigMap istio of the same revision.
k get deploy,svc,cm -n istio-system -l app=istiod,istio.io/rev=default -o name |
    sort >"$dir/kiali.txt"
printf '%s\n' configmap/istio deployment.apps/istiod service/istiod | cmp -s - "$dir/kiali.txt" ||
    { cat "$dir/kiali.txt"; fail "istiod's labels (app=istiod, istio.io/rev=default)"; }
k get crd -o json >"$dir/out.json"
pyq '
import json, sys
crds = {i["metadata"]["name"]: i for i in json.load(open(sys.argv[1]))["items"]}
for n, short in [("gateways", "gw"), ("virtualservices", "vs"), ("destinationrules", "dr"), ("serviceentries", "se"),
                 ("sidecars", None)]:
    c = crds[n + ".networking.istio.io"]
    assert short is None or short in c["spec"]["names"]["shortNames"]
    vs = {v["name"]: (v["served"], v["storage"]) for v in c["spec"]["versions"]}
    assert vs == {"v1": (True, True), "v1beta1": (True, False), "v1alpha3": (True, False)}, vs
    conds = {x["type"]: x["status"] for x in c["status"]["conditions"]}
    assert conds.get("Established") == "True" and conds.get("NamesAccepted") == "True", conds
' || fail "CRDs"
k get clusterrole istiod -o json >"$dir/out.json"
pyq '
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
got = {(g, r): sorted(x["verbs"]) for x in rules for g in x["apiGroups"] for r in x["resources"]}
for key in [("", "services"), ("", "pods"), ("", "namespaces"), ("discovery.k8s.io", "endpointslices"),
            ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "ingressclasses"),
            ("networking.istio.io", "virtualservices"), ("security.istio.io", "peerauthentications")]:
    assert got[key] == ["list", "watch"], (key, got.get(key))
assert got[("", "configmaps")] == ["create", "delete", "get", "list", "update", "watch"], got
# Secrets cluster-wide: read only (gateway credentials); writes only in the Role below.
assert got[("", "secrets")] == ["get", "list", "watch"], got
assert got[("authentication.k8s.io", "tokenreviews")] == ["create"], got
assert not any("*" in v for v in got.values()), got
# Nothing beyond what the code uses.
assert set(got) == {("", r) for r in ("namespaces", "services", "pods", "endpoints", "configmaps",
                                      "secrets")} | {("discovery.k8s.io", "endpointslices"),
                    ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "ingressclasses"),
                    ("authentication.k8s.io", "tokenreviews")} | {
    ("networking.istio.io", r) for r in ("gateways", "virtualservices", "destinationrules",
                                         "serviceentries", "sidecars")} | {
    ("security.istio.io", r) for r in ("peerauthentications", "requestauthentications",
                                       "authorizationpolicies")} | {
    ("telemetry.istio.io", "telemetries")}, sorted(got)
' || fail "ClusterRole istiod is not least-privilege"
k get role istiod -n istio-system -o json >"$dir/out.json"
pyq '
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
got = {(g, r): sorted(x["verbs"]) for x in rules for g in x["apiGroups"] for r in x["resources"]}
assert got == {("", "secrets"): ["create", "delete", "get", "update"],
               ("coordination.k8s.io", "leases"): ["create", "delete", "get", "update"]}, got
' || fail "Role istiod (istio-system) is not least-privilege"

# 5. The real RBAC authorizer on istiod's ServiceAccount: what the code does is allowed,
# the rest refused.
sa=system:serviceaccount:istio-system:istiod
can() {  # want verb resource [namespace]
    local want=$1 verb=$2 res=$3 ns=${4:-}
    local nsarg=(--all-namespaces)
    [ -n "$ns" ] && nsarg=(-n "$ns")
    local got
    got=$(k auth can-i "$verb" "$res" --as "$sa" "${nsarg[@]}" 2>/dev/null || true)
    [ "$got" = "$want" ] || fail "can-i $verb $res ${ns:-(all namespaces)} as istiod: '$got', want '$want'"
}
for r in namespaces services pods endpoints endpointslices.discovery.k8s.io secrets \
         ingresses.networking.k8s.io ingressclasses.networking.k8s.io \
         configmaps gateways.networking.istio.io virtualservices.networking.istio.io \
         destinationrules.networking.istio.io serviceentries.networking.istio.io \
         sidecars.networking.istio.io \
         peerauthentications.security.istio.io requestauthentications.security.istio.io \
         authorizationpolicies.security.istio.io telemetries.telemetry.istio.io; do
    can yes list "$r"
    can yes watch "$r"
done
can yes get secrets/istio-ca-secret istio-system
can yes create secrets istio-system
can yes update secrets/istio-ca-secret istio-system
can no create secrets default
can no update secrets/anything default
can no delete secrets/anything default
can yes create configmaps default
can yes update configmaps/istio-ca-root-cert kube-system
can yes create tokenreviews.authentication.k8s.io
can no create subjectaccessreviews.authorization.k8s.io
can no patch services default
can no create pods default
can no delete namespaces
can no get nodes
can no list workloadentries.networking.istio.io  # a kind we do not read
can no update virtualservices.networking.istio.io default
# The webhook configurations' caBundle (ClusterRole istiod-webhooks, when the manifests
# have it): get/update of our two configurations by name, nothing else.
if k get clusterrole istiod-webhooks -o name >/dev/null 2>&1; then
    can yes get mutatingwebhookconfigurations.admissionregistration.k8s.io/istio-sidecar-injector
    can yes update mutatingwebhookconfigurations.admissionregistration.k8s.io/istio-sidecar-injector
    can yes update validatingwebhookconfigurations.admissionregistration.k8s.io/istio-validator-istio-system
    can no update mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses
    can no update validatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses
    can no list mutatingwebhookconfigurations.admissionregistration.k8s.io
    can no create validatingwebhookconfigurations.admissionregistration.k8s.io
    can no delete mutatingwebhookconfigurations.admissionregistration.k8s.io/istio-sidecar-injector
    echo "can-i: istiod may get/update only its own two webhook configurations"
fi
echo "can-i: istiod may list/watch what it reads, write only its ConfigMaps and istio-system Secrets"

# The same through a bound token of istiod's ServiceAccount (TokenRequest API), as
# pilot-discovery will authenticate.
tok=$(realk8s_ctl token istio-system istiod)
ki() { "$REALK8S_KUBECTL" --request-timeout=30s --kubeconfig=/dev/null --server="$REALK8S_URL" \
       --certificate-authority="$dir/k8s/pki/ca.crt" --token="$tok" "$@"; }
# A just-created binding or CRD may take the authorizer and discovery a moment: retry.
ki_until() { # what, then the command and the text its output must hold
    local what=$1 want=$2 out=""
    shift 2
    for _ in $(seq 20); do
        out=$("$@" 2>&1) && { [ -z "$want" ] || grep -q -- "$want" <<<"$out"; } && return 0
        sleep 1
    done
    fail "istiod token: $what: $(tail -3 <<<"$out")"
}
ki_until "list secrets" "" ki get secrets -A -o name
ki_until "list vs" virtualservice.networking.istio.io/reviews ki get vs -A -o name
ki auth whoami -o jsonpath='{.status.userInfo.username}' | grep -x "$sa" >/dev/null ||
    fail "istiod token: whoami"
if ki create configmap probe -n kube-system --dry-run=server >/dev/null 2>&1; then :; else
    fail "istiod token: create configmap refused"; fi
out=$(ki create secret generic probe -n default --from-literal=a=b 2>&1 || true)
echo "$out" | grep -q 'Forbidden\|forbidden' || fail "istiod token: secret in default not refused: $out"
echo "istiod token: $(echo "$out" | head -1)"
echo "kubectl test passed in $(( $(date +%s) - t0 )) s"
