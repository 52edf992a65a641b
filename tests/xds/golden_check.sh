#!/usr/bin/env bash
# golden_check: "these manifests -> this xDS JSON". Generates every sidecar and gateway
# resource for tests/xds/fixtures/envoy-mesh.yaml as config_dump JSON and compares it with
# tests/xds/golden/envoy-mesh.json. UPDATE_GOLDEN=1 rewrites the golden file.
# Usage: golden_check.sh GEN_DUMP_BINARY
set -euo pipefail
dump=$1
: "${PILOT_SRC:?}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$dump" "$out" "$PILOT_SRC/tests/xds/fixtures/envoy-mesh.yaml"
golden=$PILOT_SRC/tests/xds/golden/envoy-mesh.json
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
  cp "$out/all.json" "$golden"
  echo "golden file updated: $golden"
  exit 0
fi
if ! diff -u "$golden" "$out/all.json" > "$out/diff"; then
  head -100 "$out/diff"
  echo "FAIL: generated resources differ from $golden (UPDATE_GOLDEN=1 to accept)"
  exit 1
fi
echo "golden: $(grep -c '"flavour"' "$golden") resources match"
