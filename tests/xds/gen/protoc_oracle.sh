#!/usr/bin/env bash
# protoc_oracle: decodes every Envoy-flavoured resource the generators make for the
# fixture with the real protoc and the real Envoy protos, and checks key fields in the
# text output. Usage: protoc_oracle.sh GEN_DUMP_BINARY
set -euo pipefail
dump=$1
: "${PILOT_SRC:?}" "${PILOT_PROTO_ROOT:?}"
if ! command -v protoc >/dev/null; then echo "SKIP: protoc not installed"; exit 77; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$dump" "$out" "$PILOT_SRC/tests/xds/gen/fixtures/envoy-mesh.yaml"

fails=0
decode() { # type_url file -> text
  local msg=${1#type.googleapis.com/} proto
  case $msg in
    envoy.config.listener.v3.Listener) proto=envoy/config/listener/v3/listener.proto ;;
    envoy.config.route.v3.RouteConfiguration) proto=envoy/config/route/v3/route.proto ;;
    envoy.config.cluster.v3.Cluster) proto=envoy/config/cluster/v3/cluster.proto ;;
    envoy.config.endpoint.v3.ClusterLoadAssignment) proto=envoy/config/endpoint/v3/endpoint.proto ;;
    envoy.extensions.transport_sockets.tls.v3.Secret) proto=envoy/extensions/transport_sockets/tls/v3/secret.proto ;;
    *) echo "unknown type $1" >&2; return 1 ;;
  esac
  protoc --decode="$msg" -I"$PILOT_PROTO_ROOT" -I/usr/include "$proto" < "$out/$2"
}
n=0
while read -r flav type file name; do
  if ! decode "$type" "$file" > "$out/$file.txt" 2> "$out/$file.err"; then
    echo "FAIL: protoc cannot decode $flav $type $name: $(cat "$out/$file.err")"; fails=$((fails+1))
  fi
  # the decoded name field equals the resource name
  field=name; [[ $type == *ClusterLoadAssignment ]] && field=cluster_name
  if ! grep -qF "$field: \"$name\"" "$out/$file.txt"; then
    echo "FAIL: $flav $name: no $field line"; fails=$((fails+1))
  fi
  n=$((n+1))
done < "$out/index"

expect() { # flavour type-suffix name pattern...
  local flav=$1 kind=$2 name=$3; shift 3
  local file; file=$(awk -v f="$flav" -v k=".$kind" -v n="$name" \
    '$1==f && $4==n && substr($2, length($2)-length(k)+1)==k {print $3}' "$out/index")
  if [ -z "$file" ]; then echo "FAIL: $flav $name not generated"; fails=$((fails+1)); return; fi
  for pat in "$@"; do
    if ! grep -qE -- "$pat" "$out/$file.txt"; then
      echo "FAIL: $flav $name: no line matching '$pat'"; fails=$((fails+1))
    fi
  done
}
expect sidecar Listener virtualOutbound 'port_value: 15001' 'use_original_dst \{' 'value: true'
expect sidecar Listener virtualInbound 'port_value: 15006' 'name: "envoy.filters.listener.original_dst"' 'transport_protocol: "tls"' 'application_protocols: "istio-peer-exchange"' 'name: "envoy.transport_sockets.tls"' 'name: "envoy.filters.listener.tls_inspector"'
expect sidecar Listener 0.0.0.0_9080 'port_value: 9080' 'bind_to_port \{' 'name: "envoy.filters.network.http_connection_manager"'
expect sidecar RouteConfiguration 9080 'name: "reviews.default.svc.cluster.local:9080"' 'domains: "reviews"' 'name: "outbound\|9080\|v1\|reviews.default.svc.cluster.local"' 'name: "allow_any"' 'num_retries \{'
expect sidecar Cluster 'outbound|9080||reviews.default.svc.cluster.local' 'type: EDS' 'lb_policy: RANDOM' 'service_name: "outbound\|9080\|\|reviews.default.svc.cluster.local"' 'ads \{'
expect sidecar Cluster 'outbound|3306||mysql.default.svc.cluster.local' 'lb_policy: LEAST_REQUEST'
expect sidecar Cluster PassthroughCluster 'type: ORIGINAL_DST' 'lb_policy: CLUSTER_PROVIDED'
expect sidecar ClusterLoadAssignment 'outbound|9080|v1|reviews.default.svc.cluster.local' 'address: "10.1.0.5"' 'health_status: HEALTHY' 'load_balancing_weight \{'
expect gateway Listener 0.0.0.0_8080 'port_value: 8080'
expect gateway Listener 0.0.0.0_8443 'server_names: "reviews.example.com"' 'name: "envoy.transport_sockets.tls"' 'name: "envoy.filters.listener.tls_inspector"'
expect gateway RouteConfiguration http.8080 'name: "reviews.example.com:8080"' 'require_tls: ALL' 'prefix_rewrite: "/"' 'path_redirect: "/new"' 'key: "envoy.filters.http.cors"'
expect gateway RouteConfiguration http.9999 'name: "blackhole:9999"' 'status: 404'
expect gateway RouteConfiguration https.443.https.gw.default 'name: "reviews.example.com:8443"'

# expect_any flavour type-suffix name any-message proto pattern...: protoc prints an Any's
# value as escaped bytes; decode the first value of that message type on its own.
expect_any() {
  local flav=$1 kind=$2 name=$3 msg=$4 proto=$5; shift 5
  local file; file=$(awk -v f="$flav" -v k=".$kind" -v n="$name" \
    '$1==f && $4==n && substr($2, length($2)-length(k)+1)==k {print $3}' "$out/index")
  if [ -z "$file" ]; then echo "FAIL: $flav $name not generated"; fails=$((fails+1)); return; fi
  if ! /usr/bin/python3 - "$out/$file.txt" "$msg" > "$out/$file.any" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r'type_url: "type\.googleapis\.com/' + re.escape(sys.argv[2]) +
              r'"\s*value: "((?:[^"\\]|\\.)*)"', text)
if not m:
    sys.exit(1)
esc = {'n': 10, 't': 9, 'r': 13, '"': 34, "'": 39, '\\': 92, 'a': 7, 'b': 8, 'f': 12, 'v': 11}
src, out, i = m.group(1), bytearray(), 0
while i < len(src):
    ch = src[i]
    if ch != '\\':
        out += ch.encode('latin1'); i += 1; continue
    nx = src[i + 1]
    if nx in '01234567':
        j = i + 1
        while j < len(src) and j < i + 4 and src[j] in '01234567':
            j += 1
        out.append(int(src[i + 1:j], 8)); i = j
    elif nx == 'x':
        j = i + 2
        while j < len(src) and j < i + 4 and src[j] in '0123456789abcdefABCDEF':
            j += 1
        out.append(int(src[i + 2:j], 16)); i = j
    else:
        out.append(esc[nx]); i += 2
sys.stdout.buffer.write(bytes(out))
PY
  then echo "FAIL: $flav $name: no $msg inside"; fails=$((fails+1)); return; fi
  if ! protoc --decode="$msg" -I"$PILOT_PROTO_ROOT" -I/usr/include "$proto" < "$out/$file.any" > "$out/$file.any.txt" 2>&1; then
    echo "FAIL: protoc cannot decode the $msg in $flav $name: $(cat "$out/$file.any.txt")"; fails=$((fails+1)); return
  fi
  for pat in "$@"; do
    if ! grep -qE -- "$pat" "$out/$file.any.txt"; then
      echo "FAIL: $flav $name: $msg has no line matching '$pat'"; fails=$((fails+1))
    fi
  done
}
TCP=envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
TCP_PROTO=envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto
# SDS: the HTTPS server's credential from its Secret in the gateway's namespace
expect gateway Secret kubernetes://reviews-cert 'tls_certificate \{' 'certificate_chain \{' \
  'inline_bytes: "-----BEGIN CERTIFICATE-----' 'private_key \{' 'inline_bytes: "-----BEGIN PRIVATE KEY-----'
# TLS PASSTHROUGH gateway server: SNI filter chain to a tcp_proxy, no TLS termination
expect gateway Listener 0.0.0.0_9443 'port_value: 9443' 'server_names: "db.pass.example.com"' \
  'name: "envoy.filters.network.tcp_proxy"' 'name: "envoy.filters.listener.tls_inspector"'
if grep -q transport_socket "$out/$(awk '$1=="gateway" && $4=="0.0.0.0_9443" {print $3}' "$out/index").txt"; then
  echo "FAIL: gateway 0.0.0.0_9443: a passthrough chain terminates TLS"; fails=$((fails+1))
fi
expect_any gateway Listener 0.0.0.0_9443 "$TCP" "$TCP_PROTO" 'cluster: "outbound\|3306\|\|mysql.default.svc.cluster.local"'
# TCP route: the mysql VirtualService splits 80/20 on the sidecar's VIP listener
expect sidecar Listener 10.96.0.20_3306 'port_value: 3306' 'name: "envoy.filters.network.tcp_proxy"'
expect_any sidecar Listener 10.96.0.20_3306 "$TCP" "$TCP_PROTO" 'weighted_clusters \{' \
  'name: "outbound\|3306\|\|mysql.default.svc.cluster.local"' 'weight: 80' \
  'name: "outbound\|3306\|\|mysql-ro.default.svc.cluster.local"' 'weight: 20'

if [ "$n" -lt 20 ]; then echo "FAIL: only $n resources generated"; fails=$((fails+1)); fi
echo "protoc oracle: $n resources decoded, $fails failures"
[ "$fails" -eq 0 ]
