#!/usr/bin/env bash
# The include-graph check must be able to fail: copy the product tree, add one forbidden
# include at a time (k8s -> pilot internals, certs -> the xDS server, a bare header name,
# an edge against the layers) and expect include_graph.py to refuse each, naming it.
set -euo pipefail
: "${PILOT_SRC:?}"
check=$PILOT_SRC/tests/layout/include_graph.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
try() {   # file include expected-message
    rm -rf "$work/t"; mkdir "$work/t"
    (cd "$PILOT_SRC" && cp -r pilot xds k8s certs "$work/t/")
    printf '#include "%s"\n' "$2" >> "$work/t/$1"
    if out=$(python3 "$check" "$work/t"); then
        echo "FAIL: $1 including $2 was accepted"; fails=$((fails + 1))
    elif ! grep -q "$3" <<< "$out"; then
        echo "FAIL: $1 including $2 refused without \"$3\""; fails=$((fails + 1))
    else
        echo "ok   $1 including $2 refused: $(grep -m1 "$3" <<< "$out")"
    fi
}
try k8s/client.c pilot/model/model.h "k8s/ never includes pilot internals"
try certs/ca_service.c xds/ads/server.h "certs/ never includes the xDS server"
try certs/ca.c k8s/k8s.h "certs/ knows Kubernetes only in ca_kube"
try xds/ads/server.c pilot/model/model.h "not the model"
try pilot/base/util.c pilot/obs/metrics.h "points against the layers"
try xds/gen/gen.c util.h "not a path from the include root"
try pilot/main.c xds/gen/gen_internal.h "internal to xds/gen"
exit $((fails > 0))
