#!/usr/bin/env bash
# demo_smoke: the real binary on a copy of manifests/samples with free loopback ports:
# /ready turns 200, /debug/configz lists the samples' VirtualServices, then a broken file
# dropped into the directory is named in the log while configz keeps the rest.
# Usage: demo_smoke.sh PATH_TO_PILOT_DISCOVERY
set -uo pipefail
bin=${1:?usage: demo_smoke.sh pilot-discovery}
src=${PILOT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
py=/usr/bin/python3
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- log"; tail -n 40 "$work/log"; exit 1; }

cp -r "$src/manifests/samples" "$work/cfg"
ports=$($py -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r hp mp gp <<<"$ports"

PILOT_DEBOUNCE_AFTER=50ms "$bin" discovery --configDir "$work/cfg" \
    --httpAddr "127.0.0.1:$hp" --monitoringAddr "127.0.0.1:$mp" --grpcAddr "127.0.0.1:$gp" \
    >"$work/log" 2>&1 &
pid=$!

code=
for _ in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/ready")
    [ "$code" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || fail "pilot-discovery exited early"
    sleep 0.2
done
[ "$code" = 200 ] || fail "/ready is $code, want 200"

vs_names() {
    curl -s "http://127.0.0.1:$1/debug/configz" | $py -c '
import json, sys
print(" ".join(sorted(o["metadata"]["name"] for o in json.load(sys.stdin) if o["kind"] == "VirtualService")))'
}
want=$($py - "$work/cfg" <<'PY'
import sys, glob, re
names = []
for f in glob.glob(sys.argv[1] + "/*.y*ml"):
    for doc in open(f).read().split("\n---"):
        if re.search(r"^kind:\s*VirtualService\s*$", doc, re.M):
            m = re.search(r"^metadata:\s*\n(?:\s+.*\n)*?\s+name:\s*(\S+)", doc, re.M)
            if m: names.append(m.group(1))
print(" ".join(sorted(names)))
PY
)
[ -n "$want" ] || fail "no VirtualService in the samples?"
got=$(vs_names "$hp")
[ "$got" = "$want" ] || fail "configz VirtualServices '$got', want '$want'"
[ "$(vs_names "$mp")" = "$want" ] || fail "configz differs on the monitoring port"
curl -s "http://127.0.0.1:$mp/metrics" | grep '^pilot_virt_services ' >/dev/null || fail "no pilot_virt_services metric"
curl -s "http://127.0.0.1:$mp/version" | grep -Eq '^1\.[0-9]+\.[0-9]+\+pilotc\.[0-9.]+-[0-9a-z]+-Clean$' || fail "bad /version"

# A VirtualService without a destination host: rejected, named in the log, the rest kept.
cat >"$work/cfg/zz-broken.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken-vs
  namespace: demo
spec:
  hosts: [web]
  http:
  - route:
    - destination:
        host: ""
YAML
ok=
for _ in $(seq 1 50); do
    if grep -q "zz-broken.yaml" "$work/log"; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || fail "the log does not name zz-broken.yaml"
grep "zz-broken.yaml" "$work/log" | grep "broken-vs" >/dev/null || fail "the log line does not name broken-vs"
got=$(vs_names "$hp")
[ "$got" = "$want" ] || fail "after the broken file: '$got', want '$want'"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/ready")" = 200 ] || fail "not ready after the broken file"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM (leaks or a crash?)"
echo "PASS: ready, configz lists [$want], broken file reported and ignored, clean exit"
