#!/usr/bin/env bash
# golden_check: "these manifests -> this xDS JSON". Generates the resources for
# tests/xds/gen/fixtures/NAME.yaml as config_dump JSON and compares it with
# tests/xds/gen/golden/NAME.json. UPDATE_GOLDEN=1 rewrites the golden file.
# Usage: golden_check.sh GEN_DUMP_BINARY [NAME [GEN_DUMP_OPTION...] [-- FILE...]]
#   NAME defaults to envoy-mesh (sidecar and gateway output); the options go to gen_dump
#   before its OUTDIR (e.g. --flavours sidecar,grpc-client,grpc-server --grpc-lds host:port).
#   FILEs are read before fixtures/NAME.yaml; "shared:PATH" is a path under $PILOT_SHARED
#   (Istio's own samples; the test is skipped when they are absent).
set -euo pipefail
dump=$1
name=${2:-envoy-mesh}
shift $(( $# > 1 ? 2 : 1 ))
: "${PILOT_SRC:?}"
opts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
[ $# -gt 0 ] && shift
files=()
for f in "$@"; do
  case $f in
  shared:*)
    p=${PILOT_SHARED:-}/${f#shared:}
    [ -f "$p" ] || { echo "SKIP: $p not found (../shared/istio)"; exit 77; }
    files+=("$p") ;;
  *) files+=("$PILOT_SRC/$f") ;;
  esac
done
files+=("$PILOT_SRC/tests/xds/gen/fixtures/$name.yaml")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$dump" "${opts[@]}" "$out" "${files[@]}" 2> "$out/stderr" || {
  cat "$out/stderr"; echo "FAIL: gen_dump failed for $name"; exit 1; }
golden=$PILOT_SRC/tests/xds/gen/golden/$name.json
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
  cp "$out/all.json" "$golden"
  echo "golden file updated: $golden"
  exit 0
fi
if [ ! -f "$golden" ]; then
  echo "FAIL: no golden file $golden (UPDATE_GOLDEN=1 to create it)"
  exit 1
fi
if ! diff -u "$golden" "$out/all.json" > "$out/diff"; then
  head -100 "$out/diff"
  echo "FAIL: generated resources differ from $golden (UPDATE_GOLDEN=1 to accept)"
  exit 1
fi
echo "golden $name: $(grep -c '"flavour"' "$golden") resources match"
