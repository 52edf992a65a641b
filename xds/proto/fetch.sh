#!/usr/bin/env bash
# Fetches Envoy's .proto files from the pinned npm package @grpc/grpc-js-xds, checks the
# tarball's integrity, and lays them out under .deps/proto as one include root:
#   envoy/ (envoy-api)  xds/ udpa/ (xds)  google/ (googleapis)  validate/ (patched PGV)
# Nothing fetched here is committed (.deps is ignored).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
PKG="@grpc/grpc-js-xds@1.14.1"
INTEGRITY="sha512-F2mVXwEeMWw1znPUrp+8ykjsIOVnf7Rv+EyIvXOfz73w5tNolCnzokpLkE/d2Ehx30PJmZXqCQdMpx8DcBJohA=="
dest="$top/.deps/proto"
stamp="$dest/.integrity"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$INTEGRITY" ]; then
    exit 0
fi
echo "deps: fetching Envoy protos from npm $PKG"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PKG" >/dev/null)
tgz=$(ls "$work"/*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
    echo "deps: integrity mismatch for $PKG: got $got" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$work"
d="$work/package/deps"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
cp -r "$d/envoy-api/envoy" "$dest.tmp/"
cp -r "$d/xds/xds" "$d/xds/udpa" "$dest.tmp/"
cp -r "$d/googleapis/google" "$dest.tmp/"
mkdir -p "$dest.tmp/validate"
# The packaged validate.proto lacks StringRules.ignore_empty (26), which Envoy's core protos
# use; add that one field or protoc refuses them.
awk '/^message StringRules/ {s=1}
     s && /^}/ && !done {print "    optional bool ignore_empty = 26;"; done=1}
     {print}' "$d/protoc-gen-validate/validate/validate.proto" > "$dest.tmp/validate/validate.proto"
grep -q "ignore_empty = 26" "$dest.tmp/validate/validate.proto"
echo "$INTEGRITY" > "$dest.tmp/.integrity"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
