"""The backup plan of one host: dump the database live, stop units, archive config, start units.

Built from probe facts, the user's options and :mod:`maasops.layouts`; see
:mod:`maasops.plan` for what a plan is.
"""

from __future__ import annotations

from dataclasses import dataclass

from maasops import layouts
from maasops.plan import (
    ARCHIVE,
    COMPRESSORS,
    DUMP,
    ENCRYPTED,
    HostPlan,
    Step,
    actual,
    pipe,
    postgresql_command,
    q,
    service_commands,
)
from maasops.probe import HostFacts


@dataclass(frozen=True)
class BackupOptions:
    """What the user chose for a backup."""

    stop_postgresql: bool = False  # as the MAAS doc does; not needed: the dump is live, the data dir not archived
    exclude_images: bool = False
    db_only_maas: bool = False
    allow_vault: bool = False
    compress: str = "gzip"
    encrypt_to: str | None = None  # age/SSH public keys: files are encrypted as they arrive


def suffix(options: BackupOptions) -> str:
    """What fetched files' names end with: compression, then .age when encrypted."""
    return COMPRESSORS[options.compress][1] + (ENCRYPTED if options.encrypt_to else "")


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


SESSIONS_STEP = "dump database: check PostgreSQL answers"
SESSIONS_SQL = ("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'")


def _dump_steps(facts: HostFacts, how: str, options: BackupOptions, background: bool) -> tuple[list[Step], str]:
    """Check that the database answers (counting its other sessions), then dump it; and the dump's kind.

    Both connect the same way, so a database that is down fails the check, before anything stops.
    """
    db = facts.database
    flags = "--clean --create --if-exists"
    env, conn, user = "", "", layouts.PG_SUPERUSER
    if how == "maas-test-db":
        conn, user = f"-h {q(layouts.MAAS_TEST_DB_SOCKET)} -U {q(db.user)} ", "root"
    elif how != "local":
        # The password stays on the host: read from regiond.conf by the remote shell.
        conf = q(actual(facts.layout.regiond_conf, facts.snap_data))
        env = f"PGPASSWORD=\"$(sed -n 's/^database_pass: *//p' {conf})\" "
        conn, user = f"-h {q(db.host)} -p {db.port} -U {q(db.user)} ", "root"
    if how == "local" and db.dedicated and not options.db_only_maas:
        name, cmd, kind = "dump database (pg_dumpall -c)", "pg_dumpall -c", "pg_dumpall"
    else:
        name = "dump database (pg_dump)" if how == "local" else f"dump database (pg_dump from {how})"
        cmd, kind = f"pg_dump {flags} {conn}{q(db.name)}", "pg_dump"
    check = Step(SESSIONS_STEP, f"{env}psql -XAt {conn}-d {q(db.name)} -c {q(SESSIONS_SQL)}", user=user)
    dump = Step(name, pipe(env + cmd, options.compress), user=user, fetch=DUMP + suffix(options),
                background=background)
    return [check, dump], kind


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
    tool = COMPRESSORS[options.compress][0].split(" ")[0]
    if tool and tool not in facts.tools:
        return HostPlan(host, facts, error=f"{tool} is not installed on this host: install it, or use --compress gzip")
    if facts.vault:
        if not options.allow_vault:
            return HostPlan(host, facts, error=(
                "Vault holds this MAAS's secrets (vault_url in regiond.conf): files + database alone cannot "
                "restore it. Back up Vault (its storage snapshot and the MAAS approle) as well, then rerun "
                "with --allow-vault to record this set as incomplete without them"))
        notes.append("Vault in use: secrets in Vault are NOT in this backup (--allow-vault)")
    ext = suffix(options)
    stop_pg = options.stop_postgresql and facts.database is not None and facts.database.location == "local"
    steps: list[Step] = []
    meta: dict = {"layout": lay.name, "compress": options.compress, "encrypt_to": options.encrypt_to}
    if dump:
        # The dump reads one snapshot while MAAS runs: it need not wait for, nor delay, the config
        # archive (unless PostgreSQL itself is stopped for the archive).
        dump_steps, kind = _dump_steps(facts, dump, options, background=not stop_pg)
        steps += dump_steps
        meta["dump"] = {"file": dump_steps[-1].fetch, "kind": kind, "database": facts.database.name}
    roles = set(facts.roles)
    wanted = lay.trees + (lay.region_trees if "region" in roles else ())
    trees = [p for p in wanted if p in facts.present]
    missing = [p for p in wanted if p not in facts.present]
    if missing:
        notes.append(f"not present, not archived: {', '.join(missing)}")
    excludes = lay.cache_excludes + (lay.image_dirs if options.exclude_images else ())
    services = service_commands(facts)
    if services:
        steps.append(Step("stop MAAS units", services.stop, user="root", undo=services.start))
        meta["units"] = list(services.units)
    if stop_pg:
        steps.append(Step("stop postgresql", postgresql_command("stop"), user="root",
                          undo=postgresql_command("start")))
    tar = ["tar", "--create", "--file=-", "--directory=/", "--anchored"]
    tar += [f"--exclude={q(actual(p, facts.snap_data).lstrip('/'))}" for p in excludes]
    tar += [q(actual(p, facts.snap_data).lstrip("/")) for p in trees]
    steps.append(Step("archive config trees", pipe(" ".join(tar), options.compress), user="root",
                      fetch=ARCHIVE + ext))
    if stop_pg:
        steps.append(Step("start postgresql", postgresql_command("start"), user="root",
                          resolves=("stop postgresql",)))
    if services:
        steps.append(Step("start MAAS units", services.start, user="root", resolves=("stop MAAS units",)))
        steps.append(Step("check MAAS units are active", services.check))
    meta.update(archive={"file": ARCHIVE + ext, "trees": trees,
                         "actual_trees": [actual(p, facts.snap_data) for p in trees],
                         "excluded": [actual(p, facts.snap_data) for p in excludes]})
    return HostPlan(host, facts, tuple(steps), tuple(notes), meta=meta)
