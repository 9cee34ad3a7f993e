#!/usr/bin/env bash
# Install the Debian packages maasops and its lab need (idempotent; run as root).
set -euo pipefail
pkgs=(openssh-server openssh-client sudo postgresql iproute2 util-linux openssl tar gzip zstd restic systemd
      python3-venv)
# restic 0.17 and later dump a file with parallel reads (docs/keeping-backups.md: restore from a repository at local
# speed). Debian 12 ships 0.14: there restic alone comes from Debian 13 (trixie), from the mirror this machine's own
# sources name; its .deb needs only libc6 >= 2.34 (Debian 12 has 2.36), and a pin keeps every other package where
# it is.
WANT_RESTIC=0.18.0
TRIXIE_SOURCES=/etc/apt/sources.list.d/maasops-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/maasops-restic-from-trixie
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

need_root() {
    [ "$(id -u)" = 0 ] || { echo "need root to $*" >&2; exit 1; }
}

restic_version() {
    restic version 2>/dev/null | awk '$1 == "restic" {print $2}'
}

at_least() {  # at_least WANT HAVE: HAVE is version WANT or later
    [ -n "$2" ] && printf '%s\n%s\n' "$1" "$2" | sort -V -C
}

write_if_changed() {  # write_if_changed FILE: stdin into FILE unless it holds that already; true when it changed
    local new
    new=$(cat)
    [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 1
    need_root "write $1"
    printf '%s\n' "$new" >"$1"
}

debian_mirror() {  # the Debian mirror the sources of this release use (apt's own reading of them)
    apt-get indextargets --format '$(CODENAME) $(COMPONENT) $(REPO_URI)' 'Identifier: Packages' 2>/dev/null |
        awk -v c="$1" '$1 == c && $2 == "main" {print $3; exit}'
}

restic_from_trixie() {
    local mirror changed=0
    mirror=$(debian_mirror bookworm)
    [ -n "$mirror" ] || { echo "no Debian bookworm source in apt's sources: cannot take restic from trixie" >&2
                          return 1; }
    write_if_changed "$TRIXIE_SOURCES" <<SOURCES && changed=1
# maasops (tools/install-system-deps.sh): restic alone comes from here ($TRIXIE_PIN).
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: $KEYRING
SOURCES
    write_if_changed "$TRIXIE_PIN" <<'PIN' && changed=1
# maasops (tools/install-system-deps.sh): nothing comes from trixie but restic.
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: restic
Pin: release n=trixie
Pin-Priority: 990
PIN
    export DEBIAN_FRONTEND=noninteractive
    if [ "$changed" = 1 ] || ! apt-cache policy restic | grep -q ' trixie/main '; then
        if ! apt-get update -qq; then  # the mirror has no trixie: leave apt as it was, keep the restic there is
            rm -f "$TRIXIE_SOURCES" "$TRIXIE_PIN"
            apt-get update -qq || true
            echo "warning: restic from Debian 13 (trixie) cannot be read from $mirror: keeping restic" \
                 "$(restic_version) (docs/keeping-backups.md: which restic)" >&2
            return 0
        fi
    fi
    apt-get install -y -qq --no-install-recommends restic >/dev/null
}

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    need_root "install: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$codename" = bookworm ] && ! at_least "$WANT_RESTIC" "$(restic_version)"; then
    need_root "install restic $WANT_RESTIC from Debian 13 (trixie)"
    restic_from_trixie
fi
# maasops --repo needs restic's repository format 2 (compressed), made by restic 0.14 and later.
if ! at_least 0.14.0 "$(restic_version)"; then
    echo "restic $(restic_version) cannot make repository format 2: restic 0.14 or later" >&2
    exit 1
fi
echo "system packages: ok (restic $(restic_version))"
