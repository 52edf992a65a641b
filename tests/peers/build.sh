#!/usr/bin/env bash
# Builds the test peers of tests/peers (one Go module, versions pinned by go.mod/go.sum):
#   kube-apiserver, kubectl, kube-controller-manager
#                            k8s.io/kubernetes (cmd/...)
#   etcd                     go.etcd.io/etcd/server/v3
#   istioctl                 istio.io/istio (istioctl/cmd/istioctl)
#   xdscheck, grpcxds        ours (tests/peers/xdscheck, tests/peers/grpcxds)
#   kialicheck               ours (tests/peers/kialicheck), on github.com/kiali/kiali
# into CACHE_DIR/bin, with GOMODCACHE=CACHE_DIR/mod and GOCACHE=CACHE_DIR/build.
# Skips the build when CACHE_DIR/bin/.stamp holds the hash of go.mod, go.sum, the Go
# sources (not the tests), this script and the Go version. go.sum is never changed (-mod=readonly).
# Usage: tests/peers/build.sh CACHE_DIR
# (CACHE_DIR outside tests/peers, or a dot-directory in it: Go ignores those, but a module
# cache anywhere else inside the module would be taken for the module's own packages.)
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 CACHE_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
cache=$(cd "$1" && pwd)
bin=$cache/bin

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null 2>&1 || { echo "peers: no go toolchain on PATH" >&2; exit 1; }

export GOMODCACHE=$cache/mod GOCACHE=$cache/build
# -modcacherw: the module cache can be removed with rm -rf; -mod=readonly: go.mod and
# go.sum are used as committed, never rewritten; GOTOOLCHAIN=local: no toolchain download.
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" GOTOOLCHAIN=local
export CGO_ENABLED=0 GOWORK=off

# One build at a time per cache directory.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.lock"
    flock 9
fi

cd "$here"
inside=./.none
case $cache/ in "$here"/*) inside=./${cache#"$here"/} ;; esac
stamp=$(
    {
        go version
        sha256sum build.sh go.mod go.sum
        find . -path "$inside" -prune -o -path './.*' -prune -o \
            -name '*.go' -not -name '*_test.go' -print | LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -d' ' -f1
)

binaries=(kube-apiserver kubectl kube-controller-manager etcd istioctl xdscheck grpcxds kialicheck)
have_all() {
    local b
    for b in "${binaries[@]}"; do
        [ -x "$bin/$b" ] || return 1
    done
}

first_line() { local out; out=$("$@" 2>&1); echo "${out%%$'\n'*}"; }
print_versions() {
    first_line "$bin/kube-apiserver" --version
    first_line "$bin/kubectl" version --client
    first_line "$bin/etcd" --version
    echo "istioctl: istio.io/istio $(mod_version istio.io/istio)"
    echo "xdscheck, grpcxds: go-control-plane/envoy $gcp, grpc-go $grpcv"
    echo "kialicheck: github.com/kiali/kiali $(mod_version github.com/kiali/kiali)"
}

mod_version() { go list -m -f '{{.Version}}' "$1"; }

if [ -f "$bin/.stamp" ] && [ "$(cat "$bin/.stamp")" = "$stamp" ] && have_all; then
    echo "peers: up to date"
    gcp=$(mod_version github.com/envoyproxy/go-control-plane/envoy)
    grpcv=$(mod_version google.golang.org/grpc)
    print_versions
    exit 0
fi

echo "peers: building kube-apiserver, kube-controller-manager, etcd, kubectl, istioctl, xdscheck, grpcxds, kialicheck (cold build: several minutes)"
rm -f "$bin/.stamp"
mkdir -p "$bin"

k8s=$(mod_version k8s.io/kubernetes)
gcp=$(mod_version github.com/envoyproxy/go-control-plane/envoy)
grpcv=$(mod_version google.golang.org/grpc)
# what hack/lib/version.sh sets, from the pinned module version and its release time
k8s_minor=${k8s#v1.}
k8s_minor=${k8s_minor%%.*}
k8s_date=$(go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
ver_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ver_flags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    ver_flags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=${k8s_date:-1970-01-01T00:00:00Z}"
done

build=(go build -p 2 -trimpath)
"${build[@]}" -ldflags="-s -w$ver_flags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kube-controller-manager
"${build[@]}" -ldflags="-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
"${build[@]}" -ldflags="-s -w" -o "$bin/istioctl" istio.io/istio/istioctl/cmd/istioctl
"${build[@]}" -ldflags="-s -w" -o "$bin/" ./xdscheck ./grpcxds ./kialicheck

have_all
echo "$stamp" >"$bin/.stamp"
print_versions
