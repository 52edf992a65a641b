#!/usr/bin/env bash
# request_smoke: `pilot-discovery request METHOD PATH [BODY]` against a running server, as
# istiod's command behaves: it asks 127.0.0.1:15014 (fixed, as in istiod, so this test runs
# alone), prints the body, prints a 404's body too, and fails on other errors with the status.
# Usage: request_smoke.sh PATH_TO_PILOT_DISCOVERY
set -uo pipefail
bin=${1:?usage: request_smoke.sh pilot-discovery}
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

if ! $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 15014))' 2>/dev/null; then
    echo "SKIP: 127.0.0.1:15014 is taken by another process"
    exit 77
fi
# Nothing listening yet: a clear error, exit 1.
"$bin" request GET /debug/syncz >"$work/out" 2>"$work/err"
[ $? -eq 1 ] || fail "request with no server: want exit 1"
grep -q "Error: GET http://127.0.0.1:15014/debug/syncz" "$work/err" || fail "no error: $(cat "$work/err")"

cp -r "$src/manifests/samples" "$work/cfg"
ports=$($py -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r hp gp <<<"$ports"
"$bin" discovery --configDir "$work/cfg" --httpAddr "127.0.0.1:$hp" \
    --monitoringAddr 127.0.0.1:15014 --grpcAddr "127.0.0.1:$gp" --httpsAddr "" \
    --caStateDir "$work/ca" >"$work/log" 2>&1 &
pid=$!
code=
for _ in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/ready")
    [ "$code" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || fail "pilot-discovery exited early"
    sleep 0.2
done
[ "$code" = 200 ] || fail "/ready is $code, want 200"

# The leading slash is optional, as in istiod.
"$bin" request GET debug/configz >"$work/out" 2>"$work/err" || fail "request GET debug/configz: $(cat "$work/err")"
$py -c '
import json, sys
items = json.load(open(sys.argv[1]))
kinds = {i["kind"] for i in items}
assert "VirtualService" in kinds, kinds
print("configz over request:", len(items), "objects")' "$work/out" || fail "configz body"
"$bin" request GET /version >"$work/out" 2>&1 || fail "request GET /version"
[ -s "$work/out" ] || fail "empty /version"
# 404: the body is printed and the command succeeds (istiod's rule).
"$bin" request GET /debug/nope >"$work/out" 2>"$work/err" || fail "a 404 must exit 0"
# Another error status: exit 1, the status named.
"$bin" request DELETE /debug/configz '{}' >"$work/out" 2>"$work/err"
[ $? -eq 1 ] || fail "DELETE /debug/configz: want exit 1"
grep -q "received unsuccessful status code 405" "$work/err" || fail "405 not named: $(cat "$work/err")"
# Wrong arity: usage error (exit 2), the server untouched.
"$bin" request GET >/dev/null 2>"$work/err"
[ $? -eq 2 ] || fail "request with one argument: want exit 2"
echo "request_smoke: ok"
