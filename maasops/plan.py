"""Plans: per host, the ordered steps a backup will run, built from probe facts + layouts.

A plan is data. ``fab backup --dry-run`` prints it; the runner executes it; tests
assert on it without a host. Every MAAS path, unit and command comes from
:mod:`maasops.layouts`; every interpolated value is shell-quoted here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from maasops import layouts
from maasops.probe import HostFacts

q = shlex.quote

COMPRESSORS = {"gzip": ("gzip -1", ".gz"), "none": ("", "")}
ARCHIVE = "config.tar"
DUMP = "maasdb.sql"


@dataclass(frozen=True)
class Step:
    """One remote command; its stdout is streamed into ``fetch`` when that is set.

    ``undo`` reverses the step and is run (as root) on every path out unless a
    later step that ``resolves`` it succeeded first.
    """

    name: str
    command: str
    user: str | None = None  # run with sudo as this user; None: as the login user
    fetch: str | None = None
    undo: str | None = None
    resolves: str | None = None
    check: bool = True


@dataclass(frozen=True)
class HostPlan:
    """What will happen on one host, or why nothing will."""

    host: str
    facts: HostFacts | None
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BackupOptions:
    """What the user chose for a backup."""

    stop_postgresql: bool = True
    exclude_images: bool = False
    db_only_maas: bool = False
    allow_vault: bool = False
    compress: str = "gzip"


def _pipe(command: str, compress: str) -> str:
    tool = COMPRESSORS[compress][0]
    return f"{command} | {tool}" if tool else command


def _actual(path: str, facts: HostFacts) -> str:
    """A layout path as it is on this host ($SNAP_DATA resolved to its revision)."""
    if facts.snap_data and path.startswith(layouts.SNAP_DATA):
        return facts.snap_data + path[len(layouts.SNAP_DATA):]
    return path


def dump_owners(facts: dict[str, HostFacts], addresses: dict[str, str]) -> dict[str, str]:
    """Which host dumps the database, and how: ``{host: "local" | "network" | "maas-test-db"}``.

    A database is dumped once: by the region on whose host it runs, or, when
    that host is not in the fleet, by the first region (by name) that uses it.
    """
    local_hosts = {h for h, f in facts.items() if f.database and f.database.location == "local"}
    names_of_local = {n for h in local_hosts for n in (h, addresses.get(h, h))}
    owners: dict[str, str] = {}
    seen_remote: set[tuple[str, int, str]] = set()
    for host in sorted(facts):
        db = facts[host].database
        if db is None:
            continue
        if db.location in ("local", "maas-test-db"):
            owners[host] = db.location
        elif db.host not in names_of_local and (db.host, db.port, db.name) not in seen_remote:
            seen_remote.add((db.host, db.port, db.name))
            owners[host] = "network"
    return owners


def _dump_step(facts: HostFacts, how: str, options: BackupOptions) -> tuple[Step, str]:
    db = facts.database
    lay = facts.layout
    flags = "--clean --create --if-exists"
    if how == "local" and db.dedicated and not options.db_only_maas:
        return Step("dump database (pg_dumpall -c)", _pipe("pg_dumpall -c", options.compress),
                    user=layouts.PG_SUPERUSER, fetch=DUMP + COMPRESSORS[options.compress][1]), "pg_dumpall"
    if how == "local":
        cmd = f"pg_dump {flags} {q(db.name)}"
        return Step("dump database (pg_dump)", _pipe(cmd, options.compress), user=layouts.PG_SUPERUSER,
                    fetch=DUMP + COMPRESSORS[options.compress][1]), "pg_dump"
    if how == "maas-test-db":
        cmd = f"pg_dump {flags} -h {q(layouts.MAAS_TEST_DB_SOCKET)} -U {q(db.user)} {q(db.name)}"
    else:
        # The password stays on the host: read from regiond.conf by the remote shell.
        cmd = (f"PGPASSWORD=\"$(sed -n 's/^database_pass: *//p' {q(_actual(lay.regiond_conf, facts))})\" "
               f"pg_dump {flags} -h {q(db.host)} -p {db.port} -U {q(db.user)} {q(db.name)}")
    return Step(f"dump database (pg_dump from {how})", _pipe(cmd, options.compress), user="root",
                fetch=DUMP + COMPRESSORS[options.compress][1]), "pg_dump"


def service_commands(facts: HostFacts) -> tuple[str, str, str, tuple[str, ...]] | None:
    """(stop, start, is-active) commands for the MAAS units running now, and those units."""
    lay = facts.layout
    active = tuple(u for u in lay.units(set(facts.roles)) if facts.unit_states.get(u) == "active")
    if not active:
        return None
    check = f"{layouts.SYSTEMCTL} is-active --quiet {' '.join(map(q, active))}"
    if facts.install == "snap":
        return f"snap stop {layouts.SNAP_NAME}", f"snap start {layouts.SNAP_NAME}", check, active
    units = " ".join(map(q, active))
    return f"{layouts.SYSTEMCTL} stop {units}", f"{layouts.SYSTEMCTL} start {units}", check, active


def backup_plan(facts: HostFacts, dump: str | None, options: BackupOptions) -> HostPlan:
    """The steps that back up one host: dump (live), stop, archive, start, check."""
    host = facts.host
    if facts.install is None:
        return HostPlan(host, facts, error="no MAAS here (no maas deb packages, no maas snap)")
    try:
        lay = facts.layout
    except (layouts.UnknownLayout, ValueError) as exc:
        return HostPlan(host, facts, error=str(exc))
    notes = []
    if facts.vault:
        if not options.allow_vault:
            return HostPlan(host, facts, error=(
                "Vault holds this MAAS's secrets (vault_url in regiond.conf): files + database alone cannot "
                "restore it. Back up Vault (its storage snapshot and the MAAS approle) as well, then rerun "
                "with --allow-vault to record this set as incomplete without them"))
        notes.append("Vault in use: secrets in Vault are NOT in this backup (--allow-vault)")
    ext = COMPRESSORS[options.compress][1]
    steps: list[Step] = []
    meta: dict = {"layout": lay.name, "compress": options.compress}
    if dump:
        if dump == "local":
            sessions = ("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'")
            steps.append(Step("count other database sessions", f"psql -XAtc {q(sessions)}",
                              user=layouts.PG_SUPERUSER, check=False))
        step, kind = _dump_step(facts, dump, options)
        steps.append(step)
        meta["dump"] = {"file": step.fetch, "kind": kind, "database": facts.database.name}
    roles = set(facts.roles)
    wanted = lay.trees + (lay.region_trees if "region" in roles else ())
    trees = [p for p in wanted if p in facts.present]
    missing = [p for p in wanted if p not in facts.present]
    if missing:
        notes.append(f"not present, not archived: {', '.join(missing)}")
    excludes = lay.cache_excludes + (lay.image_dirs if options.exclude_images else ())
    services = service_commands(facts)
    if services:
        stop, start, check, active = services
        steps.append(Step("stop MAAS units", stop, user="root", undo=start))
        meta["units"] = list(active)
    stop_pg = options.stop_postgresql and facts.database is not None and facts.database.location == "local"
    if stop_pg:
        steps.append(Step("stop postgresql", f"{layouts.SYSTEMCTL} stop {layouts.POSTGRESQL_UNIT}", user="root",
                          undo=f"{layouts.SYSTEMCTL} start {layouts.POSTGRESQL_UNIT}"))
    tar = ["tar", "--create", "--file=-", "--directory=/", "--anchored"]
    tar += [f"--exclude={q(_actual(p, facts).lstrip('/'))}" for p in excludes]
    tar += [q(_actual(p, facts).lstrip("/")) for p in trees]
    steps.append(Step("archive config trees", _pipe(" ".join(tar), options.compress), user="root",
                      fetch=ARCHIVE + ext))
    if stop_pg:
        steps.append(Step("start postgresql", f"{layouts.SYSTEMCTL} start {layouts.POSTGRESQL_UNIT}",
                          user="root", resolves="stop postgresql"))
    if services:
        steps.append(Step("start MAAS units", start, user="root", resolves="stop MAAS units"))
        steps.append(Step("check MAAS units are active", check))
    meta.update(archive={"file": ARCHIVE + ext, "trees": trees,
                         "actual_trees": [_actual(p, facts) for p in trees],
                         "excluded": [_actual(p, facts) for p in excludes]})
    return HostPlan(host, facts, tuple(steps), tuple(notes), meta=meta)


def render(plans: list[HostPlan]) -> str:
    """The plan as a person reads it: every remote command per host, in order."""
    out = []
    for p in plans:
        head = f"== {p.host}"
        if p.facts and p.facts.install:
            head += f" ({p.facts.install} {p.facts.short_version}, {'+'.join(p.facts.roles) or 'no role'})"
        out.append(head)
        if p.error:
            out.append(f"   REFUSED: {p.error}")
        for i, s in enumerate(p.steps, 1):
            who = f"sudo -u {s.user} " if s.user else ""
            line = f"   {i}. {s.name}: {who}{s.command}"
            if s.fetch:
                line += f"  > {p.host}/{s.fetch}"
            out.append(line)
            if s.undo:
                out.append(f"      on any failure after this: {s.undo}")
        out += [f"   note: {n}" for n in p.notes]
    return "\n".join(out)
