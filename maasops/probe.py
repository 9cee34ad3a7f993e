"""Probe a host over SSH, read-only: which MAAS it runs, its roles, where its state and database live.

Two round trips: the first (no sudo) reads dpkg and snap as a real host shows
them; the second (sudo, reads only) reads the layout's files, unit states, sizes
and free space. A host's output is not trusted: every fact travels as its own
NUL-delimited record (a file without a final newline, a value with odd spaces or
bytes cannot run into the next one), configuration files are parsed as YAML on
the laptop, and a probe that cannot tell a host's roles fails that host rather
than guess. Secrets stay on the host: regiond.conf's password keys are dropped
there before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from fabric import Connection

from maasops import hostpaths, layouts
from maasops.channel import run
from maasops.command import Cmd, Q
from maasops.errors import RemoteError, host_label

TOOLS = ("tar", "gzip", "zstd", "pg_dump", "pg_dumpall", "pg_restore", "psql", "sha256sum", "flock", "setsid",
         "python3")
LOCAL_DB_HOSTS = ("", "localhost", "127.0.0.1", "::1")
END = "end"


@dataclass(frozen=True)
class Space:
    """Free bytes on the filesystem that holds a path, and that filesystem's mount point."""

    free: int
    mount: str


@dataclass(frozen=True)
class DatabaseFacts:
    """Where a region's database lives, as its regiond.conf says (and, for a local server, what it holds): what the
    probe finds on a host, and what a host manifest records of it (read back by
    :func:`maasops.manifest.host_database`)."""

    location: str  # local | remote | maas-test-db | snap-postgres
    host: str
    port: int
    name: str  # "" when regiond.conf does not say (Vault keeps it)
    user: str
    dedicated: bool | None = None  # local server holds only MAAS's database
    size: int | None = None  # bytes, as PostgreSQL reports it (local servers)
    data_directory: str | None = None  # the local server's data directory
    data_space: Space | None = None  # free space where that directory is
    listen_addresses: str | None = None  # the local server's, and its pg_hba.conf rules: what a DR site's server
    hba: tuple[str, ...] | None = None  # needs so that every region reaches it (None: an older maasops's manifest)

    @property
    def client_host(self) -> str:
        """Where a client run on the host (as maasops's are, outside the maas snap) reaches the server: for
        maas-test-db its socket directory as the host has it, not the snap's view regiond.conf names."""
        return layouts.MAAS_TEST_DB_HOST_SOCKETS if self.location == "maas-test-db" else self.host


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
    tools: tuple[str, ...] = ()
    unit_states: dict[str, str] = field(default_factory=dict)
    present: tuple[str, ...] = ()  # layout paths (trees, caches, images) that exist on the host
    mountpoints: tuple[str, ...] = ()  # archived trees that are mount points themselves
    sizes: dict[str, int] = field(default_factory=dict)  # bytes under each present layout path
    space: dict[str, Space] = field(default_factory=dict)  # per path a restore writes

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

    def on_host(self, path: str) -> str:
        """A layout path as it is on this host (its snap revision directory)."""
        return layouts.on_host(path, self.snap_data)


def records(data: str) -> list[tuple[str, str]]:
    """``key\\0value\\0...`` pairs; the last must be the end record, or the output was cut or garbled."""
    parts = data.split("\0")
    if len(parts) < 3 or parts[-1] != "" or len(parts) % 2 != 1 or parts[-3:-1] != [END, "ok"]:
        raise ValueError("the probe's output is cut short or garbled")
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 3, 2)]


def _rec(key: str, producer: Cmd) -> Cmd:
    """Print one record: the key, NUL, what ``producer`` prints (anything but NUL), NUL."""
    return Cmd("printf '%s\\0'", Q(key), ";", producer, "; printf '\\0';")


def _end() -> Cmd:
    return Cmd("printf '%s\\0%s\\0'", Q(END), "ok")


def _install_script() -> Cmd:
    pkgs = Cmd(*map(Q, layouts.DEB_REGION_PACKAGES + layouts.DEB_RACK_PACKAGES + layouts.DEB_COMMON_PACKAGES))
    tools = Cmd(*map(Q, TOOLS))
    return Cmd(
        _rec("dpkg", Cmd("dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Status}\\n'", pkgs, "2>/dev/null")),
        _rec("snap", Cmd("snap list", Q(layouts.SNAP_NAME), "2>/dev/null")),
        _rec("tools", Cmd("for t in", tools, "; do command -v \"$t\" >/dev/null && echo \"$t\"; done")),
        _end())


def _deb_facts(c: Connection, text: str) -> tuple[str, tuple[str, ...]] | None:
    version, roles = None, set()
    for line in text.splitlines():
        name, version_, status = ([p.strip() for p in line.split("\t")] + ["", ""])[:3]
        if status != "installed":
            continue
        if name in layouts.DEB_REGION_PACKAGES:
            roles.add("region")
        elif name in layouts.DEB_RACK_PACKAGES:
            roles.add("rack")
        if version and version_ != version:
            raise RemoteError(host_label(c), "probe", f"MAAS packages of two versions are installed ({version}, "
                              f"{version_})", "finish the upgrade (apt) before backing up")
        version = version_
    if version is None:
        return None
    if not roles:
        raise RemoteError(host_label(c), "probe", "MAAS packages are installed but neither "
                          f"{' nor '.join(layouts.DEB_REGION_PACKAGES + layouts.DEB_RACK_PACKAGES)}: cannot tell "
                          "this host's roles", "install the region or rack package, or leave the host out")
    return version, tuple(sorted(roles, reverse=True))


def _snap_facts(text: str) -> tuple[str, str] | None:
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == layouts.SNAP_NAME:
            return words[1], words[2]
    return None


def installed(c: Connection) -> tuple[str | None, str | None, tuple[str, ...], str | None, tuple[str, ...]]:
    """Install type, version, deb roles, snap revision and tools of the host (no sudo)."""
    try:
        found = dict(records(run(c, _install_script(), "probe: installed MAAS").stdout))
    except ValueError as exc:
        raise RemoteError(host_label(c), "probe: installed MAAS", str(exc)) from None
    tools = tuple(t.strip() for t in found.get("tools", "").splitlines() if t.strip() in TOOLS)
    deb = _deb_facts(c, found.get("dpkg", ""))
    snap = _snap_facts(found.get("snap", ""))
    if deb and snap:
        raise RemoteError(host_label(c), "probe", "MAAS is installed both as deb packages and as a snap",
                          "remove the one that is not in use before backing up")
    if deb:
        return "deb", deb[0], deb[1], None, tools
    if snap:
        return "snap", snap[0], (), snap[1], tools
    return None, None, (), None, tools


def conf_value(conf: str, key: str) -> Cmd:
    """Print a top-level scalar of a YAML file (quotes, spaces, CR and a missing final newline are fine), on the host.

    For values that must stay on the host (the database password), used inside ``$( )``.
    """
    program = ('index($0, k ":") == 1 { v = substr($0, length(k) + 2); sub(/^[ \\t]+/, "", v); '
               'sub(/[ \\t\\r]+$/, "", v); if (v ~ /^".*"$/ || v ~ /^\'.*\'$/) v = substr(v, 2, length(v) - 2); '
               'print v; exit }')
    return Cmd("awk -v", Q(f"k={key}"), Q(program), Q(conf))


def _layout_script(lay: layouts.Layout, units: tuple[str, ...], paths: tuple[str, ...], write: tuple[str, ...],
                   snap_data: str | None) -> Cmd:
    def here(p: str) -> str:
        return layouts.on_host(p, snap_data) if snap_data else p
    secret_keys = "|".join(layouts.REGIOND_SECRET_KEYS)
    regiond, rackd = Q(here(lay.regiond_conf)), Q(here(lay.rackd_conf))
    parts = [
        Cmd("if [ -f", regiond, "]; then",
            _rec("regiond", Cmd("grep -avE", Q(f"^[[:space:]]*({secret_keys})[[:space:]]*:"), regiond)), "fi;"),
        Cmd("if [ -f", rackd, "]; then", _rec("rackd", Cmd("cat", rackd)), "fi;"),
        _rec("units", Cmd("for u in", *map(Q, units), "; do printf '%s %s\\n' \"$u\" \"$(", layouts.SYSTEMCTL,
                          "is-active \"$u\")\"; done")),
    ]
    if lay.snap_mode:
        parts.append(Cmd("if [ -f", Q(lay.snap_mode), "]; then", _rec("snap_mode", Cmd("cat", Q(lay.snap_mode))),
                         "fi;"))
    for p in paths:
        parts.append(Cmd("if [ -e", Q(here(p)), "]; then", _rec("present", Cmd("printf %s", Q(p))),
                         _rec("du " + p, Cmd("du -s -B1", Q(here(p)), "2>/dev/null | cut -f1")),
                         "if mountpoint -q", Q(here(p)), "; then", _rec("mountpoint", Cmd("printf %s", Q(p))),
                         "fi; fi;"))
    for p in write:
        parts.append(_rec("df " + p, Cmd("set --", Q(here(p)), "; d=$1; while [ ! -e \"$d\" ]; do d=$(dirname \"$d\");"
                                         " done; df -B1 --output=avail,target \"$d\" | tail -n 1")))
    return Cmd(*parts, _end())


def _resolve_snap_data(c: Connection) -> str:
    out = run(c, Cmd("readlink -f", Q(layouts.SNAP_DATA)), "probe: snap revision", user="root").stdout.strip()
    if not layouts.SNAP_REVISION_DIR.match(out):
        raise RemoteError(host_label(c), "probe: snap revision", f"{layouts.SNAP_DATA} points at {out[:80]!r}, not a "
                          "revision directory", "repair the snap (snap revert / snap refresh)")
    return out


def _roles_of_snap(c: Connection, mode: str | None) -> tuple[str, ...]:
    mode = (mode or "").strip()
    if mode == layouts.SNAP_MODE_ALL:
        raise RemoteError(host_label(c), "probe", "the snap runs in 'all' mode (MAAS 2.7/2.8 with PostgreSQL inside "
                          f"the snap, {layouts.SNAP_POSTGRES}): maasops does not back this up",
                          "move the database out of the snap (MAAS 2.9 helpers/migrate-snap-database) first, or "
                          "use snap save")
    if mode not in layouts.SNAP_MODES:
        raise RemoteError(host_label(c), "probe", f"cannot tell this host's roles: snap_mode is {mode[:40]!r}",
                          f"{layouts.SNAP_COMMON}/snap_mode must say region, rack or region+rack (maas init)")
    return tuple(sorted(layouts.SNAP_MODES[mode], reverse=True))


RESTORE_WRITES = (hostpaths.WORK_ROOT,)  # where a restore keeps its uploads and records (besides the trees)


def _layout_records(c: Connection, lay: layouts.Layout, snap_data: str | None) -> list[tuple[str, str]]:
    paths = lay.trees + lay.region_trees + lay.cache_excludes + lay.image_dirs
    write = RESTORE_WRITES + tuple(dict.fromkeys(lay.trees + lay.region_trees))
    script = _layout_script(lay, lay.units({"region", "rack"}), paths, write, snap_data)
    try:
        return records(run(c, script, "probe: layout", user="root").stdout)
    except ValueError as exc:
        raise RemoteError(host_label(c), "probe: layout", str(exc)) from None


def _disk_facts(found: list[tuple[str, str]]) -> dict:
    """present, mountpoints, sizes and space, from the layout records."""
    return {"present": tuple(v for k, v in found if k == "present"),
            "mountpoints": tuple(v for k, v in found if k == "mountpoint"),
            "sizes": {k[3:]: _int(v) for k, v in found if k.startswith("du ")},
            "space": {k[3:]: sp for k, v in found if k.startswith("df ") and (sp := _space(v))}}


def probe(c: Connection, require_roles: bool = True) -> HostFacts:
    """Find out, read-only, which MAAS ``c``'s host runs, its roles, database, units, sizes and disk.

    ``require_roles`` False: a snap whose snap_mode is missing (a restore killed half-way) has no roles
    instead of failing the probe; the caller knows them from elsewhere.
    """
    install, version, roles, revision, tools = installed(c)
    if install is None:
        return HostFacts(host_label(c), None, None, tools=tools)
    lay = layouts.layout_for(install, layouts.parse_version(version))
    snap_data = _resolve_snap_data(c) if install == "snap" else None
    found = _layout_records(c, lay, snap_data)
    one = dict(found)
    if install == "snap" and (require_roles or (one.get("snap_mode") or "").strip()):
        roles = _roles_of_snap(c, one.get("snap_mode"))
    regiond = _yaml(c, "regiond.conf", one["regiond"]) if "regiond" in one else {}
    rackd = _yaml(c, "rackd.conf", one["rackd"]) if "rackd" in one else {}
    return HostFacts(
        host_label(c), install, version, roles, revision, (one.get("snap_mode") or "").strip() or None, snap_data,
        maas_url=_maas_url(regiond, rackd),
        database=_database_facts(c, regiond) if "region" in roles and "regiond" in one else None,
        vault=bool(regiond.get("vault_url")), tools=tools,
        unit_states=_unit_states(one.get("units", ""), lay.units({"region", "rack"})), **_disk_facts(found))


def _yaml(c: Connection, name: str, text: str | None) -> dict:
    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as exc:
        raise RemoteError(host_label(c), "probe: layout", f"{name} is not valid YAML: {str(exc).splitlines()[0]}",
                          f"fix {name} on the host") from None
    if not isinstance(data, dict):
        raise RemoteError(host_label(c), "probe: layout", f"{name} is not a YAML mapping", f"fix {name} on the host")
    return data


def _maas_url(regiond: dict, rackd: dict) -> str | None:
    url = regiond.get("maas_url") or rackd.get(layouts.RACKD_URL_KEY)
    if isinstance(url, list):
        url = url[0] if url else None
    return str(url) if url else None


def _unit_states(text: str, units: tuple[str, ...]) -> dict[str, str]:
    states = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in units:
            states[words[0]] = words[1]
    return states


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _space(text: str) -> Space | None:
    words = text.split(None, 1)
    if len(words) == 2 and words[0].isdigit():
        return Space(int(words[0]), words[1].strip())
    return None


def classify(host: str) -> str:
    """Where a database_host puts the database: local, maas-test-db, snap-postgres or remote."""
    if host in LOCAL_DB_HOSTS:
        return "local"
    if host.startswith("/"):
        if host.rstrip("/") == layouts.MAAS_TEST_DB_SOCKET:
            return "maas-test-db"
        if host.startswith(layouts.SNAP_POSTGRES + "/"):
            return "snap-postgres"
        return "local"  # a socket directory of this host's own server
    return "remote"


DATABASES_SQL = ("SELECT 'db ' || pg_database_size(datname) || ' ' || datname FROM pg_database WHERE NOT datistemplate "
                 "UNION ALL SELECT 'data_directory ' || current_setting('data_directory') "
                 "UNION ALL SELECT 'listen_addresses ' || current_setting('listen_addresses') "
                 "UNION ALL SELECT 'hba ' || concat_ws(' ', type, array_to_string(database, ','), "
                 "array_to_string(user_name, ','), address, netmask, auth_method) FROM pg_hba_file_rules "
                 "WHERE error IS NULL")
MAX_HBA_RULES = 64  # pg_hba rules recorded at the most (a DR site needs the ones naming MAAS's role)


def _server_records(text: str) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """DATABASES_SQL's lines: sizes by database, the settings, the pg_hba rules (odd lines are left out)."""
    sizes, settings, hba = {}, {}, []
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "db":
            size, _, name = value.partition(" ")
            if size.isdigit() and name:
                sizes[name] = int(size)
        elif key == "hba" and value.strip() and len(hba) < MAX_HBA_RULES:
            hba.append(" ".join(value.split())[:200])
        elif key in ("data_directory", "listen_addresses"):
            settings[key] = value.strip()
    return sizes, settings, hba


def _database_facts(c: Connection, conf: dict) -> DatabaseFacts:
    host = str(conf.get("database_host") or "localhost")
    location = classify(host)
    name = str(conf["database_name"]) if conf.get("database_name") is not None else layouts.DB_NAME_DEFAULT
    port = conf.get("database_port", layouts.DB_PORT_DEFAULT)
    if not isinstance(port, int) and not str(port).isdigit():
        raise RemoteError(host_label(c), "probe", f"regiond.conf's database_port is {str(port)[:20]!r}",
                          "fix regiond.conf")
    user = str(conf.get("database_user") or "")
    if conf.get("database_user") is None and not conf.get("vault_url"):
        user = layouts.DB_USER_DEFAULT
    dedicated = size = data_dir = space = listen = None
    hba: list[str] = []
    if location == "local":
        out = run(c, Cmd("psql -XAt -p", Q(str(port)), "-c", Q(DATABASES_SQL)), "probe: databases on the local server",
                  user=layouts.PG_SUPERUSER, check=False)
        if out.exited == 0:
            sizes, settings, hba = _server_records(out.stdout)
            data_dir, listen = settings.get("data_directory"), settings.get("listen_addresses")
            dedicated = set(sizes) <= {name, layouts.PG_SUPERUSER}
            size = sizes.get(name) or None
        if data_dir:
            df = run(c, Cmd("df -B1 --output=avail,target", Q(data_dir), "| tail -n 1"),
                     "probe: free space for the database", user="root", check=False)
            space = _space(df.stdout) if df.exited == 0 else None
    return DatabaseFacts(location, host, int(port), name, user, dedicated, size, data_dir, space, listen, tuple(hba))


def differences(declared, facts: HostFacts) -> list[str]:
    """Where the inventory's word about a host (an InventoryHost, or None) differs from what the probe found."""
    if declared is None:
        return []
    found = {"install": facts.install, "version": facts.short_version if facts.version else None,
             "roles": "+".join(facts.roles), "database": facts.database.location if facts.database else None}
    said = {"install": declared.install, "version": declared.version, "roles": "+".join(declared.roles),
            "database": declared.database}
    return [f"inventory says {k}={said[k]}, host has {found[k] or 'none'}"
            for k in said if said[k] is not None and str(said[k]) != str(found[k])]
