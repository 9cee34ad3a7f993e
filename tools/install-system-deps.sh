#!/usr/bin/env bash
# Install the Debian packages maasops and its lab need (idempotent; run as root).
set -euo pipefail
pkgs=(openssh-server openssh-client sudo postgresql iproute2 util-linux openssl tar gzip zstd restic systemd
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
# maasops --repo needs restic's repository format 2 (compressed), made by restic 0.14 and later.
if ! printf '0.14.0\n%s\n' "$(restic version | awk '{print $2}')" | sort -V -C; then
    echo "restic $(restic version | awk '{print $2}') cannot make repository format 2: restic 0.14 or later" >&2
    exit 1
fi
echo "system packages: ok"
