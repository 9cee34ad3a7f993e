"""The backup plan of one host: dump the database live, stop units, archive config, start units.

Built from probe facts, the user's options and :mod:`maasops.layouts`; see
:mod:`maasops.plan` for what a plan is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from maasops import dumps, guard, hostpaths, images, layouts, services, stream
from maasops import manifest as mf
from maasops.command import Cmd, Q, group
from maasops.compression import codec, compressed, resolve
from maasops.database import Credentials, operator_credentials
from maasops.hostpaths import LEFTOVERS
from maasops.manifest import ARCHIVE, ENCRYPTED, dump_file
from maasops.plan import HostPlan, Step, StepId
from maasops.probe import DatabaseFacts, HostFacts, conf_value

STREAM_MARGIN = 16 << 20  # bytes a stream may carry beyond what the probe measured (headers, growth)


@dataclass(frozen=True)
class BackupOptions:
    """What the user chose for a backup."""

    stop_postgresql: bool = False  # as the MAAS doc does; not needed: the dump is live, the data dir not archived
    exclude_images: bool = False
    db_only_maas: bool = False
    allow_vault: bool = False
    compress: str = "auto"  # a codec name, or auto (resolved per host by backup_plan)
    encrypt_to: str | None = None  # age/SSH public keys: files are encrypted as they arrive
    database_name: str | None = None  # when regiond.conf does not say (Vault keeps it)
    credentials: Credentials | None = None  # the operator's role and password file, when regiond.conf names none
    database_elsewhere: bool = False  # the operator backs the database up another way
    dump_format: str = "auto"  # auto | plain | directory (maasops.dumps)
    max_stream_gib: int = stream.CEILING_GIB  # the most one stream may carry, whatever the host's sizes say


@dataclass(frozen=True)
class ArchiveSpec:
    """What the archive step fetches."""

    file: str
    trees: tuple[str, ...]
    actual_trees: tuple[str, ...]
    excluded: tuple[str, ...]


@dataclass(frozen=True)
class DumpSpec:
    """What the dump step fetches."""

    file: str
    kind: str
    database: str
    how: str


@dataclass(frozen=True)
class BackupSpec:
    """What a host's backup needs after its steps ran: to describe what arrived."""

    layout: str
    compress: str
    encrypt_to: str | None
    archive: ArchiveSpec
    dump: DumpSpec | None
    units: tuple[str, ...]
    images: images.ImagesSpec | None = None  # image-storage as its own part (a backup into a repository)


def suffix(options: BackupOptions) -> str:
    """What fetched files' names end with: compression, then .age when encrypted."""
    return codec(options.compress).suffix + (ENCRYPTED if options.encrypt_to else "")


class DatabaseConflict(ValueError):
    """The fleet reports more than one database for one deployment."""


def dump_owners(facts: dict[str, HostFacts], addresses: dict[str, str], dump_from: str | None = None) -> dict[str, str]:
    """Which host dumps the database, and how: ``{host: "local" | "network" | "maas-test-db"}``.

    A deployment has one database, dumped once: by the region on whose host it
    runs, or, when that host is not in the fleet, by the first region (by name)
    that uses it. Regions that report different databases are refused
    (DatabaseConflict naming them) unless ``dump_from`` names the region to dump from.
    """
    local = sorted(h for h, f in facts.items() if f.database and f.database.location in ("local", "maas-test-db"))
    names_of_local = {n for h in local for n in (h, addresses.get(h, h))}
    remote: dict[tuple[str, int, str], str] = {}
    for host in sorted(facts):
        db = facts[host].database
        if db and db.location == "remote" and db.host not in names_of_local:
            remote.setdefault((db.host, db.port, db.name), host)
    candidates = {h: facts[h].database.location for h in local} | {h: "network" for h in remote.values()}
    if dump_from:
        if dump_from not in candidates:
            raise DatabaseConflict(f"--dump-from {dump_from}: not a region of this fleet whose database could be "
                                   f"dumped (those are: {', '.join(sorted(candidates)) or 'none'})")
        return {dump_from: candidates[dump_from]}
    if len(candidates) > 1:
        said = "; ".join(f"{h}: {_where(facts[h].database)}" for h in sorted(candidates))
        raise DatabaseConflict(f"the regions report {len(candidates)} different databases ({said}): a deployment "
                               "has one. Fix their regiond.conf (database_host), or name the region to dump from "
                               "with --dump-from")
    return candidates


def _where(db: DatabaseFacts) -> str:
    return f"{db.location} {db.name}" if db.location != "remote" else f"{db.name} on {db.host}:{db.port}"


SESSIONS_SQL = ("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'")


def as_postgres(command: Cmd) -> Cmd:
    """``command`` run as the PostgreSQL superuser (steps run as root)."""
    return Cmd("runuser -u", Q(layouts.PG_SUPERUSER), "--", command)


def _connection(facts: HostFacts, how: str, options: BackupOptions) -> tuple[Cmd, Cmd, bool]:
    """(environment, psql/pg_dump connection options, runs as the superuser) for a dump taken ``how``."""
    db = facts.database
    if how == "maas-test-db":
        return Cmd(), Cmd("-h", Q(db.client_host), "-U", Q(db.user)), False
    if how == "network":
        creds = operator_credentials(db.location, db.user, options.credentials)
        # The password stays on the host: read from regiond.conf by the remote shell; or the operator's, which
        # the step gets over the channel as its PGPASSWORD.
        conf = facts.on_host(facts.layout.regiond_conf)
        env = Cmd() if creds else Cmd("PGPASSWORD=\"$(", conf_value(conf, "database_pass"), ")\"")
        user = creds.user if creds else db.user
        return env, Cmd("-h", Q(db.host), "-p", Q(str(db.port)), "-U", Q(user)), False
    return Cmd(), Cmd(), True


def directory_format(facts: HostFacts, how: str, options: BackupOptions) -> tuple[bool, str | None]:
    """Whether the dump takes PostgreSQL's directory format (maasops.dumps), and why not where it matters.

    Only a local server's (the dump is written on its host first); ``auto`` takes it from
    DIRECTORY_FROM bytes of database, when the host has ROOM times that free for it. The reason
    refuses ``--dump-format directory``, and is a note of the plan for ``auto``.
    """
    size = facts.database.size or 0 if facts.database else 0
    wanted = options.dump_format == "directory" or options.dump_format == "auto" and size >= dumps.DIRECTORY_FROM
    if not wanted:
        return False, None
    if how != "local":
        return False, f"the database is dumped over the network ({how}), not on its host: a plain dump"
    space = facts.space.get(hostpaths.WORK_ROOT)
    if space is None or space.free < dumps.ROOM * size:
        free = f"{space.free >> 20} MiB free" if space else "its free space unknown"
        return False, (f"a directory dump is written under {hostpaths.WORK_ROOT} first, which needs about "
                       f"{dumps.ROOM * size >> 20} MiB ({free}): a plain dump")
    return True, None


def _dump_command(facts: HostFacts, how: str, name: str, options: BackupOptions) -> tuple[Cmd, str, str]:
    """(command, kind, label) of the dump."""
    env, conn, superuser = _connection(facts, how, options)
    # The MAAS role (its password is regiond.conf's) and the MAAS database: what a restore needs. A server shared
    # with other databases keeps the roles of theirs out (only the roles maasdb's objects belong to).
    roles = dumps.roles(name, not facts.database.dedicated) if how == "local" and not options.db_only_maas else None
    which = "roles" if facts.database.dedicated else "MAAS's roles"
    if directory_format(facts, how, options)[0]:
        kind = "roles+pg_dump-Fd" if roles else "pg_dump-Fd"
        return dumps.take(name, roles), kind, f"dump database ({which + ' + ' if roles else ''}pg_dump -Fd, " \
                                              "parallel jobs)"
    if roles:
        cmd = group(Cmd(roles, "&& pg_dump --clean --create --if-exists", Q(name)))
        return as_postgres(Cmd("bash -o pipefail -c", Q(cmd))), "roles+pg_dump", f"dump database ({which} + pg_dump)"
    flags = "--clean --create --if-exists" if how == "local" else "--clean --if-exists"
    cmd = Cmd(env, "pg_dump", flags, conn, Q(name))
    label = "dump database (pg_dump)" if how == "local" else f"dump database (pg_dump from {how})"
    return (as_postgres(cmd) if superuser else cmd), "pg_dump", label


def _dump_limit(db: DatabaseFacts, options: BackupOptions) -> int:
    """The most a dump of this database may carry: 4x its size (bytea and large objects go as hex) + margin, within
    the laptop's floor and ceiling (:func:`maasops.stream.bound`)."""
    return stream.bound(4 * db.size + STREAM_MARGIN if db.size else None, options.max_stream_gib)


def dump_steps(facts: HostFacts, how: str, name: str, options: BackupOptions,
               background: bool) -> tuple[list[Step], DumpSpec]:
    """Check that the database answers (counting its other sessions), then dump it.

    Both connect the same way, so a database that is down fails the check, before anything stops.
    """
    env, conn, superuser = _connection(facts, how, options)
    check = Cmd(env, "psql -XAt", conn, "-d", Q(name), "-c", Q(SESSIONS_SQL))
    cmd, kind, label = _dump_command(facts, how, name, options)
    file = dump_file(kind) + suffix(options)
    check = as_postgres(check) if superuser else check
    creds = operator_credentials(facts.database.location, facts.database.user, options.credentials)
    password_file = creds.password_file if creds else None
    steps = [Step(StepId.DB_CHECK, "dump database: check PostgreSQL answers", check, password_file=password_file),
             Step(StepId.DUMP, label, compressed(cmd, options.compress), fetch=file, background=background,
                  limit=_dump_limit(facts.database, options), password_file=password_file)]
    return steps, DumpSpec(file, kind, name, how)


def database_name(facts: HostFacts, options: BackupOptions) -> str | None:
    """The name of the database to dump: the option's, else regiond.conf's (None when neither says)."""
    return options.database_name or (facts.database.name if facts.database else None) or None


def refusal(facts: HostFacts, options: BackupOptions, dump: str | None) -> str | None:
    """Why this host cannot be backed up as asked (dumping the database ``dump``, or not at all), or None."""
    if facts.install is None:
        return "no MAAS here (no maas deb packages, no maas snap)"
    try:
        _ = facts.layout
    except (layouts.UnknownLayout, ValueError) as exc:
        return str(exc)
    tool = codec(options.compress).tool
    if tool and tool not in facts.tools:
        return f"{tool} is not installed on this host: install it, or use --compress gzip"
    if facts.vault and not options.allow_vault:
        return ("Vault holds this MAAS's secrets (vault_url in regiond.conf): files + database alone cannot restore "
                "it. Back up Vault (its storage snapshot and the MAAS approle) as well, then rerun with "
                "--allow-vault to record this set as incomplete without them")
    if dump and not database_name(facts, options):
        return ("regiond.conf names no database (Vault keeps the database credentials): give its name with "
                "--database-name (on the server: psql -l), never a guess")
    if dump == "network" and not facts.database.user and not options.credentials:
        return ("regiond.conf names no database role (Vault keeps the database credentials) for the dump over the "
                "network: give the role and a file holding its password with --database-user and "
                "--database-password-file")
    why_not = directory_format(facts, dump, options)[1] if dump and options.dump_format == "directory" else None
    return f"--dump-format directory: {why_not.removesuffix(': a plain dump')}" if why_not else None


def archive_command(paths: tuple[str, ...], excludes: tuple[str, ...]) -> Cmd:
    """A tar of ``paths`` (as on the host) on stdout, owners and modes kept, without ``excludes`` and without
    what a restore leaves in a tree; read-only on the host."""
    return Cmd("tar --create --file=- --directory=/ --anchored", *(Q("--exclude=" + p.lstrip("/")) for p in excludes),
               "--no-anchored", Q("--exclude=" + LEFTOVERS), "--anchored", *(Q(p.lstrip("/")) for p in paths))


def _limit(facts: HostFacts, size: int, options: BackupOptions) -> int:
    """The most a tar of ``size`` bytes of trees may carry, within the laptop's floor and ceiling (the ceiling when
    the probe measured no sizes: :func:`maasops.stream.bound`)."""
    return stream.bound(int(size * 1.5) + STREAM_MARGIN if facts.sizes else None, options.max_stream_gib)


def _archive_step(facts: HostFacts, options: BackupOptions, ext: str,
                  apart: tuple[str, ...]) -> tuple[Step, ArchiveSpec, list[str]]:
    """The config archive, leaving out the caches, the images when excluded, and ``apart`` (sent on their own)."""
    lay = facts.layout
    wanted = lay.archived_trees(set(facts.roles))
    trees = tuple(p for p in wanted if p in facts.present)
    missing = [p for p in wanted if p not in facts.present]
    excludes = lay.cache_excludes + (lay.image_dirs if options.exclude_images else ())
    tar = archive_command(tuple(map(facts.on_host, trees)), tuple(map(facts.on_host, excludes + apart)))
    size = sum(facts.sizes.get(p, 0) for p in trees) - sum(facts.sizes.get(p, 0) for p in excludes + apart)
    # Uncompressed, the tar is about the trees' size; compressed, only an earlier set can tell (see backup.py).
    step = Step(StepId.ARCHIVE, "archive config trees", compressed(tar, options.compress), fetch=ARCHIVE + ext,
                limit=_limit(facts, size, options),
                estimate=size if facts.sizes and options.compress == "none" else None)
    spec = ArchiveSpec(ARCHIVE + ext, trees, tuple(facts.on_host(p) for p in trees),
                       tuple(facts.on_host(p) for p in excludes))
    notes = [f"not present, not archived: {', '.join(missing)}"] if missing else []
    return step, spec, notes


def backup_plan(facts: HostFacts, dump: str | None, options: BackupOptions, split_images: bool = False,
                previous_images: mf.Images | None = None) -> HostPlan:
    """The steps that back up one host: dump (live), stop, archive, start, check.

    ``dump`` says how this host dumps the deployment's database (see :func:`dump_owners`), or None.
    ``--compress auto`` becomes this host's codec here: the plan and the manifest name the one used.
    ``split_images`` (a backup into a repository): image-storage goes as its own part, not sent when it is
    as ``previous_images`` recorded it (:mod:`maasops.images`).
    """
    options = replace(options, compress=resolve(options.compress, facts.tools))
    problem = refusal(facts, options, dump)
    if problem:
        return HostPlan(facts.host, facts, error=problem)
    notes = ["Vault in use: secrets in Vault are NOT in this backup (--allow-vault)"] if facts.vault else []
    stop_pg = options.stop_postgresql and dump == "local"
    steps: list[Step] = []
    dump_spec = None
    if dump:
        # The dump reads one snapshot while MAAS runs: it need not wait for, nor delay, the config
        # archive (unless PostgreSQL itself is stopped for the archive).
        db_steps, dump_spec = dump_steps(facts, dump, database_name(facts, options), options, not stop_pg)
        steps += db_steps
        why_not = directory_format(facts, dump, options)[1]
        if why_not:
            notes.append(why_not)
        if not (facts.database and facts.database.size):
            notes.append(f"the database's size is unknown here: its dump is bounded by the laptop's ceiling only "
                         f"({options.max_stream_gib} GiB, --max-stream-gib)")
    image_steps, images_spec = [], None
    if split_images and not options.exclude_images:
        image_steps, images_spec = images.steps(
            facts, suffix(options), previous_images, options.compress,
            lambda actual: compressed(archive_command(actual, ()), options.compress),
            _limit(facts, sum(facts.sizes.get(p, 0) for p in facts.layout.image_dirs), options))
    apart = images_spec.trees if images_spec else ()
    archive, archive_spec, missing = _archive_step(facts, options, suffix(options), apart)
    services_now = services.running_units(facts)
    if services_now:
        # Armed before the stop: if the laptop dies, the host itself starts what was stopped.
        restart = Cmd(services_now.start, ";", services.postgresql("start")) if stop_pg else services_now.start
        steps.append(Step(StepId.STOP_UNITS, "stop MAAS units", Cmd(guard.arm(restart), "&&", services_now.stop),
                          undo=services_now.start_and_wait, by_hand=services_now.start))
    if stop_pg:
        steps.append(Step(StepId.STOP_POSTGRESQL, "stop postgresql", services.postgresql("stop"),
                          undo=services.postgresql("start")))
    steps += [archive, *image_steps]
    if stop_pg:
        steps.append(Step(StepId.START_POSTGRESQL, "start postgresql", services.postgresql("start"),
                          resolves=(StepId.STOP_POSTGRESQL,)))
    if services_now:
        steps += [Step(StepId.START_UNITS, "start MAAS units", Cmd(services_now.start, "&&", guard.disarm())),
                  Step(StepId.CHECK_UNITS, "check MAAS units are active", services_now.check, sudo=False,
                       resolves=(StepId.STOP_UNITS,))]
        if "region" in facts.roles and any(u in services_now.units for u in facts.layout.region_units):
            steps.append(Step(StepId.CHECK_REGION, "check the region answers", services.region_ready(), sudo=False))
    spec = BackupSpec(facts.layout.name, options.compress, options.encrypt_to, archive_spec, dump_spec,
                      services_now.units if services_now else (), images_spec)
    return HostPlan(facts.host, facts, tuple(steps), tuple(notes + missing), spec=spec)
