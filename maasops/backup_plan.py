"""The backup plan of one host: dump the database live, stop units, archive config, start units.

Built from probe facts, the user's options and :mod:`maasops.layouts`; see
:mod:`maasops.plan` for what a plan is. Each part of the set (:mod:`maasops.parts`) gives
its own steps; this module puts them in order around the stop and start of the units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from maasops import guard, layouts, services, stream
from maasops import manifest as mf
from maasops.command import Cmd
from maasops.compression import codec, compressed, resolve
from maasops.manifest import ENCRYPTED
from maasops.parts import config, database, images
from maasops.parts.database import Credentials
from maasops.plan import HostPlan, Step, StepId
from maasops.probe import HostFacts


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
    dump_format: str = "auto"  # auto | plain | directory (maasops.parts.database)
    max_stream_gib: int = stream.CEILING_GIB  # the most one stream may carry, whatever the host's sizes say


@dataclass(frozen=True)
class BackupSpec:
    """What a host's backup needs after its steps ran: to describe what arrived."""

    layout: str
    compress: str
    encrypt_to: str | None
    archive: config.ArchiveSpec
    dump: database.DumpSpec | None
    units: tuple[str, ...]
    images: images.ImagesSpec | None = None  # image-storage as its own part (a backup into a repository)


def suffix(options: BackupOptions) -> str:
    """What fetched files' names end with: compression, then .age when encrypted."""
    return codec(options.compress).suffix + (ENCRYPTED if options.encrypt_to else "")


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
    if dump and not database.name_to_dump(facts, options):
        return ("regiond.conf names no database (Vault keeps the database credentials): give its name with "
                "--database-name (on the server: psql -l), never a guess")
    if dump == "network" and not facts.database.user and not options.credentials:
        return ("regiond.conf names no database role (Vault keeps the database credentials) for the dump over the "
                "network: give the role and a file holding its password with --database-user and "
                "--database-password-file")
    directory = dump and options.dump_format == "directory"
    why_not = database.directory_format(facts, dump, options)[1] if directory else None
    return f"--dump-format directory: {why_not.removesuffix(': a plain dump')}" if why_not else None


def backup_plan(facts: HostFacts, dump: str | None, options: BackupOptions, split_images: bool = False,
                previous_images: mf.Images | None = None) -> HostPlan:
    """The steps that back up one host: dump (live), stop, archive, start, check.

    ``dump`` says how this host dumps the deployment's database (see :func:`maasops.parts.database.dump_owners`),
    or None.
    ``--compress auto`` becomes this host's codec here: the plan and the manifest name the one used.
    ``split_images`` (a backup into a repository): image-storage goes as its own part, not sent when it is
    as ``previous_images`` recorded it (:mod:`maasops.parts.images`).
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
        db_steps, dump_spec, db_notes = database.backup_steps(facts, dump, options, suffix(options), not stop_pg)
        steps += db_steps
        notes += db_notes
    image_steps, images_spec, image_notes = [], None, []
    if split_images and not options.exclude_images:
        image_steps, images_spec, image_notes = images.backup_steps(
            facts, suffix(options), previous_images, options.compress,
            lambda actual: compressed(config.archive_command(actual, ()), options.compress),
            config.limit(facts, sum(facts.sizes.get(p, 0) for p in facts.layout.image_dirs), options))
    apart = images_spec.trees if images_spec else ()
    archive, archive_spec, missing = config.backup_steps(facts, options, suffix(options), apart)
    services_now = services.running_units(facts)
    if services_now:
        # Armed before the stop: if the laptop dies, the host itself starts what was stopped.
        restart = Cmd(services_now.start, ";", services.postgresql("start")) if stop_pg else services_now.start
        steps.append(Step(StepId.STOP_UNITS, "stop MAAS units", Cmd(guard.arm(restart), "&&", services_now.stop),
                          undo=services_now.start_and_wait, by_hand=services_now.start))
    if stop_pg:
        steps.append(Step(StepId.STOP_POSTGRESQL, "stop postgresql", services.postgresql("stop"),
                          undo=services.postgresql("start")))
    steps += [*archive, *image_steps]
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
    return HostPlan(facts.host, facts, tuple(steps), tuple(notes + image_notes + missing), spec=spec)
