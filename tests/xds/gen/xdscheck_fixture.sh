#!/usr/bin/env bash
# xdscheck over a generator fixture: gen_dump writes every resource the generators make for
# the fixture's proxies (one consistent set per flavour), then the real peer checks them:
# go-control-plane's ValidateAll() on every resource (Envoy's own protoc-gen-validate
# rules) and the cross-resource consistency rules (tests/peers/xdscheck).
# Usage: xdscheck_fixture.sh GEN_DUMP [GEN_DUMP_OPTION...] -- FIXTURE.yaml...
#   a FIXTURE starting with "shared:" is a path under $PILOT_SHARED (skipped when absent).
set -euo pipefail
dump=$1
shift
opts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
shift
bin=${PILOT_PEERS_BIN:-}
if [ -z "$bin" ] || [ ! -x "$bin/xdscheck" ]; then
    echo "SKIP: no xdscheck (PILOT_PEERS_BIN unset; make peers builds it)"
    exit 77
fi
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
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$dump" "${opts[@]}" "$out" "${files[@]}" 2> "$out/stderr" || {
    cat "$out/stderr"; echo "FAIL: gen_dump failed"; exit 1; }
n=$(wc -l < "$out/index")
[ "$n" -gt 0 ] || { echo "FAIL: gen_dump wrote no resource"; exit 1; }
"$bin/xdscheck" dir "$out"
