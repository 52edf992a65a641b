#!/usr/bin/env bash
# Installs the pinned grpc-js-xds client (package-lock.json) into DEST/node_modules with
# `npm ci`, once. Exit 0 when present, 77 (skip) when npm or the registry is unreachable.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: js_setup.sh DEST}
mkdir -p "$dest"
if [ -f "$dest/node_modules/@grpc/grpc-js-xds/package.json" ] &&
   cmp -s "$here/js/package-lock.json" "$dest/package-lock.json"; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "SKIP: npm not installed"; exit 77; }
cp "$here/js/package.json" "$here/js/package-lock.json" "$dest/"
cd "$dest" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts >npm.log 2>&1 || {
    echo "SKIP: npm ci failed (offline?):"; tail -5 npm.log; exit 77; }
