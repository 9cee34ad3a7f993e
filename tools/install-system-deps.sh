#!/usr/bin/env bash
# Install the Debian packages maasops and its lab need (idempotent; run as root).
set -euo pipefail
pkgs=(openssh-server openssh-client sudo postgresql iproute2 util-linux openssl tar gzip zstd
      python3-venv)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "system packages: ok"
