#!/usr/bin/env bash
# The peers' own Go tests (xdscheck must catch each broken resource it is fed), run with
# the caches `make peers` filled. Skipped (77) when no peers cache is given.
set -euo pipefail
cache=${PILOT_PEERS_CACHE:-}
[ -n "$cache" ] && [ -d "$cache/mod" ] || { echo "SKIP: PILOT_PEERS_CACHE unset (make peers)"; exit 77; }
command -v go >/dev/null 2>&1 || PATH=/usr/local/go/bin:$PATH
export GOMODCACHE=$cache/mod GOCACHE=$cache/build GOFLAGS="-mod=readonly -modcacherw -buildvcs=false"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
cd "$(dirname "$0")"
go vet ./...
go test -count=1 ./...
