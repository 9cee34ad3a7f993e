"""``maasops backup``: back up every controller into a set on disk, or (``--repo``) into a restic repository."""

from __future__ import annotations

from pathlib import Path

from invoke import Context

from maasops import backup, backup_plan, crypto, progress
from maasops import manifest as mf
from maasops.commands.fleet_request import (
    FleetRequest,
    check_credentials,
    credentials,
    finish,
    path,
    repository,
    targets,
)
from maasops.compression import AUTO
from maasops.options import BACKUP, HOSTS, OptionError, TaskOptions, TaskSpec


def _compress(opts: TaskOptions) -> str:
    """--compress: auto by default (zstd where the host has it, else gzip); a set going into a restic repository is
    uncompressed (restic compresses it, after chunking it so that the next run's unchanged bytes are stored once)."""
    return opts.compress or ("none" if opts.repo else AUTO)


def check_backup(opts: TaskOptions) -> None:
    """What a backup's options cannot be together (OptionError naming the flags)."""
    if opts.repo and (_compress(opts) != "none" or opts.encrypt_to):
        raise OptionError("--repo: the set goes into restic as uncompressed, unencrypted tar and SQL, which restic "
                          "deduplicates, compresses and encrypts itself: leave out --compress and --encrypt-to")
    if opts.encrypt_to:
        try:
            crypto.recipients(opts.encrypt_to)
        except crypto.CryptoError as exc:
            raise OptionError(f"--encrypt-to: {exc}") from None
    name = opts.database_name
    if name is not None and len(name.encode()) > mf.MAX_IDENTIFIER:
        raise OptionError("--database-name is not a PostgreSQL database name")
    check_credentials(opts)


SPEC = TaskSpec("backup", "3. Back up every controller: DB dump (live), stop units, archive config, start units "
                          "(--repo: into a restic repository).", HOSTS + BACKUP + ("repo", "repo_password_file",
                                                                                   "dry_run", "json", "metrics_file"),
                check=check_backup)


def backup_options(opts: TaskOptions) -> backup_plan.BackupOptions:
    """The backup options the user gave, as the plan takes them (checked by :func:`check_backup`)."""
    return backup_plan.BackupOptions(
        stop_postgresql=opts.stop_postgresql, exclude_images=opts.exclude_images, db_only_maas=opts.db_only_maas,
        allow_vault=opts.allow_vault, compress=_compress(opts), encrypt_to=opts.encrypt_to,
        database_name=opts.database_name, database_elsewhere=opts.database_elsewhere,
        dump_format=opts.dump_format or "auto", max_stream_gib=opts.max_stream_gib, credentials=credentials(opts))


def run(c: Context, req: FleetRequest, dry_run: bool | None = None) -> None:
    """Back up every target (or print the plan: ``dry_run``, by default --dry-run); exit non-zero when any host
    failed."""
    opts, out = req.options, req.out
    f = targets(c, req)
    repo = repository(opts) if opts.repo else None
    request = backup.BackupRequest(f.targets, f.name, Path(opts.backup_dir), backup_options(opts),
                                   path(opts.sign_key) or f.sign_key, opts.parallel, opts.dump_from,
                                   float(opts.idle_timeout), repo)
    with progress.for_output(out) as transfers:
        result = backup.run(request, opts.dry_run if dry_run is None else dry_run, out.say, transfers)
    finish(result, out, opts, f.name)
