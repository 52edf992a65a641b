#!/usr/bin/env bash
# Installs what the build and the tests need, and only what is missing.
# Debian packages by name (apt), and the pinned npm package that carries Envoy's .proto
# files (integrity-checked). Idempotent: a second run installs nothing and prints nothing
# but a summary line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

PKGS=(gcc make meson ninja-build pkg-config git
      libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev openssl
      libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
      libmicrohttpd-dev libcmocka-dev clang-format
      python3 python3-grpcio python3-protobuf python3-yaml
      curl ca-certificates)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Tools some images ship outside Debian's packages (nodesource's nodejs carries npm):
# install Debian's only when the command is absent.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "deps: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash "$top/xds/proto/fetch.sh"
echo "deps: all present"
