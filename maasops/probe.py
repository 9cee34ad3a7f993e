"""Probe a host over SSH, read-only: which MAAS it runs and where its state lives.

Two round trips: the first (no sudo) finds the install type and version from
dpkg and snap as a real host shows them; the second (sudo, reads only) reads
the layout's config files, snap mode, unit states and disk space. Secrets are
never read into the facts: only database location and whether Vault is used.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from fabric import Connection

from maasops import layouts
from maasops.inventory import InventoryHost
from maasops.remote import RemoteError, host_label, run

TOOLS = ("tar", "gzip", "zstd", "pg_dump", "pg_dumpall", "psql", "sha256sum")
LOCAL_DB_HOSTS = ("", "localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class DatabaseFacts:
    """Where a region's database lives, as its regiond.conf says."""

    location: str  # local | remote | maas-test-db
    host: str
    port: int
    name: str
    user: str
    dedicated: bool | None = None  # local server holds only MAAS's database


@dataclass(frozen=True)
class HostFacts:
    """What the probe found on one host."""

    host: str
    install: str | None  # deb | snap | None (no MAAS)
    version: str | None
    roles: tuple[str, ...] = ()
    snap_revision: str | None = None
    snap_mode: str | None = None
    snap_data: str | None = None  # $SNAP_DATA resolved to its revision directory
    maas_url: str | None = None
    database: DatabaseFacts | None = None
    vault: bool = False
    free_mib: dict[str, int] = field(default_factory=dict)
    tools: tuple[str, ...] = ()
    unit_states: dict[str, str] = field(default_factory=dict)
    present: tuple[str, ...] = ()  # layout paths (trees, caches, images) that exist on the host

    @property
    def layout(self) -> layouts.Layout:
        """The layout of this host's MAAS (UnknownLayout / ValueError when none fits)."""
        if not self.install or not self.version:
            raise layouts.UnknownLayout(f"{self.host}: no MAAS installed")
        return layouts.layout_for(self.install, layouts.parse_version(self.version))

    @property
    def short_version(self) -> str:
        """major.minor, or '-' when MAAS is absent."""
        return ".".join(map(str, layouts.parse_version(self.version))) if self.version else "-"


def _sections(text: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in text.splitlines():
        if line == "---":
            out.append([])
        elif line.strip():
            out[-1].append(line)
    return out


def _install_facts(c: Connection) -> tuple[str | None, str | None, tuple[str, ...], str | None, tuple, dict]:
    pkgs = " ".join(layouts.DEB_REGION_PACKAGES[-1:] + layouts.DEB_RACK_PACKAGES)
    script = (f"dpkg-query -W -f='${{Package}}\\t${{Version}}\\t${{db:Status-Status}}\\n' {pkgs} 2>/dev/null;"
              f" echo ---; snap list {layouts.SNAP_NAME} 2>/dev/null; echo ---;"
              f" for t in {' '.join(TOOLS)}; do command -v $t >/dev/null && echo $t; done; echo ---;"
              " df -Pm /var /tmp | tail -n +2")
    deb, snap, tools, df = (_sections(run(c, script, "probe: installed MAAS", check=False).stdout) + [[]] * 4)[:4]
    free = {}
    for line in df:
        parts = line.split()
        if len(parts) >= 6:
            free[parts[5]] = int(parts[3])
    deb_roles, deb_version = [], None
    for line in deb:
        name, version, status = (line.split("\t") + ["", ""])[:3]
        if status == "installed":
            deb_version = version
            deb_roles.append("region" if name in layouts.DEB_REGION_PACKAGES else "rack")
    snap_line = next((line.split() for line in snap if line.split()[0] == layouts.SNAP_NAME), None)
    if deb_version and snap_line:
        raise RemoteError(host_label(c), "probe", "MAAS is installed both as deb packages and as a snap",
                          "remove the one that is not in use before backing up")
    if deb_version:
        return "deb", deb_version, tuple(sorted(deb_roles, reverse=True)), None, tuple(tools), free
    if snap_line:
        return "snap", snap_line[1], (), snap_line[2], tuple(tools), free
    return None, None, (), None, tuple(tools), free


def probe(c: Connection) -> HostFacts:
    """Find out, read-only, which MAAS ``c``'s host runs, its roles, database, units and disk."""
    host = host_label(c)
    install, version, roles, revision, tools, free = _install_facts(c)
    if install is None:
        return HostFacts(host, None, None, tools=tools, free_mib=free)
    lay = layouts.layout_for(install, layouts.parse_version(version))
    q = shlex.quote
    units = lay.units(set(roles) or {"region", "rack"})
    keys = "|".join(("maas_url", "database_host", "database_port", "database_name", "database_user",
                     "vault_url"))
    script = "; ".join([
        f"[ -f {q(lay.regiond_conf)} ] && echo regiond=1 && grep -E '^({keys}):' {q(lay.regiond_conf)}"
        " | sed 's/: */=/'",
        f"[ -f {q(lay.rackd_conf)} ] && echo rackd=1 && sed -n 's/^- *\\(.*\\)/rack_url=\\1/p;"
        f"s/^maas_url: *\\(..*\\)/rack_url=\\1/p' {q(lay.rackd_conf)}",
        f"[ -n {q(lay.snap_mode or '')} ] && [ -f {q(lay.snap_mode or '/nonexistent')} ] && "
        f"echo snap_mode=$(cat {q(lay.snap_mode or '/nonexistent')})",
        f"[ -e {q(layouts.SNAP_DATA)} ] && echo snap_data=$(readlink -f {q(layouts.SNAP_DATA)})",
        f"for u in {' '.join(q(u) for u in units)}; do echo unit:$u=$({layouts.SYSTEMCTL} is-active $u); done",
        f"for p in {' '.join(q(p) for p in _layout_paths(lay))}; do [ -e $p ] && echo present=$p; done",
        "true",
    ])
    facts: dict[str, str] = {}
    states: dict[str, str] = {}
    present: list[str] = []
    for line in run(c, script, "probe: layout", sudo=True).stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key.startswith("unit:"):
            states[key[5:]] = value
        elif key == "present":
            present.append(value)
        else:
            facts.setdefault(key, value.strip().strip("'\""))
    if install == "snap":
        roles = tuple(sorted(layouts.SNAP_MODES.get(facts.get("snap_mode", "none"), ()), reverse=True))
    database = None
    if facts.get("regiond") and "region" in roles:
        database = _database_facts(c, facts)
    return HostFacts(
        host, install, version, roles, revision, facts.get("snap_mode"), facts.get("snap_data"),
        facts.get("maas_url") or facts.get("rack_url"), database, bool(facts.get("vault_url")),
        free, tools, states, tuple(present))


def _layout_paths(lay: layouts.Layout) -> tuple[str, ...]:
    return lay.trees + lay.region_trees + lay.cache_excludes + lay.image_dirs


def _database_facts(c: Connection, facts: dict[str, str]) -> DatabaseFacts:
    host = facts.get("database_host", "localhost")
    if host.startswith("/var/snap/maas-test-db"):
        location = "maas-test-db"
    elif host in LOCAL_DB_HOSTS:
        location = "local"
    else:
        location = "remote"
    name = facts.get("database_name", layouts.DB_NAME_DEFAULT)
    dedicated = None
    if location == "local":
        out = run(c, f"psql -XAtc {shlex.quote('SELECT datname FROM pg_database WHERE NOT datistemplate')}",
                  "probe: databases on the local server", user=layouts.PG_SUPERUSER, check=False)
        if out.exited == 0:
            dedicated = set(out.stdout.split()) <= {name, layouts.PG_SUPERUSER}
    return DatabaseFacts(location, host, int(facts.get("database_port", layouts.DB_PORT_DEFAULT)), name,
                         facts.get("database_user", layouts.DB_USER_DEFAULT), dedicated)


def differences(declared: InventoryHost | None, facts: HostFacts) -> list[str]:
    """Where the inventory's word about a host differs from what the probe found."""
    if declared is None:
        return []
    found = {"install": facts.install, "version": facts.short_version if facts.version else None,
             "roles": "+".join(facts.roles), "database": facts.database.location if facts.database else None}
    said = {"install": declared.install, "version": declared.version, "roles": "+".join(declared.roles),
            "database": declared.database}
    return [f"inventory says {k}={said[k]}, host has {found[k] or 'none'}"
            for k in said if said[k] is not None and str(said[k]) != str(found[k])]
