#!/usr/bin/env bash
# Installs the Debian packages berth's build and tests need, once: a fresh
# machine gets them, a prepared one pays only for a dpkg query.
#   scripts/install-deps.sh            build + test packages
#   scripts/install-deps.sh bench      also dockerd (docker.io) for the side-by-side bench
set -euo pipefail

pkgs=(
  gcc libc6-dev               # cgo; libc.a for the static runc
  pkg-config libseccomp-dev   # runc with seccomp (libseccomp.a too)
  libisal-dev                 # ISA-L: layer gzip inflate and tar-split crc64 (chain)
  busybox-static              # the offline busybox fixture image
  docker-registry             # Debian's registry (distribution 2.8) for interop tests
  iproute2 iptables           # namespaces, bridge, port publishing
  tmux                        # real terminals for -it tests
  openssl ca-certificates curl # TLS test material, health checks
  e2fsprogs                   # lsattr/chattr used by store checks
  procps                      # ps for GET /containers/{id}/top (docker top)
)
if [ "${1:-}" = bench ]; then
  pkgs+=(docker.io hyperfine wrk)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# docker.io's maintainer scripts try to start services; there is no init
# system to start them here and we never want the system dockerd running.
if printf '%s\n' "${missing[@]}" | grep -qx docker.io; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
