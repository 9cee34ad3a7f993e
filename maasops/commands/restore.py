"""``maasops restore``: restore a set onto the controllers, or (``--rollback``) undo the last restore."""

from __future__ import annotations

from pathlib import Path

from invoke import Context

from maasops import hostfiles, preflight, progress, reposource, restore, rollback
from maasops.commands.fleet_request import (
    FleetRequest,
    check_credentials,
    check_set_named,
    credentials,
    finish,
    path,
    repository,
    targets,
)
from maasops.options import FROM_REPO, HOSTS, RESTORE, OptionError, TaskOptions, TaskSpec
from maasops.restore_plan import RestoreOptions


def check_restore(opts: TaskOptions) -> None:
    """A restore's set is named, and its values can be written where they go (OptionError naming the flag)."""
    check_set_named(opts)
    url, db_host = opts.maas_url, opts.database_host
    if url and not hostfiles.valid_url(url):
        raise OptionError(f"--maas-url {url[:80]!r} is not an http(s) URL maasops will write into rackd.conf")
    if db_host and not hostfiles.valid_host(db_host):
        raise OptionError(f"--database-host {db_host[:80]!r} is not a host name or address")
    try:
        preflight.parse_map(opts.map)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    check_credentials(opts)


SPEC = TaskSpec("restore", "7. Restore a set: verify, preflight, stop, load DB, put trees back, sync secret, "
                           "dbupgrade once, start.",
                HOSTS + RESTORE + FROM_REPO + ("dry_run", "rollback", "json", "metrics_file"),
                positional=("backup_set",), positional_unless="repo", check=check_restore)


def restore_options(opts: TaskOptions, signers: Path | None = None) -> RestoreOptions:
    """The restore options the user gave, as the plan takes them (checked by :func:`check_restore`)."""
    return RestoreOptions(
        allow_upgrade=opts.allow_upgrade, maas_url=opts.maas_url, database_host=opts.database_host,
        rollback_copy=opts.rollback_copy, skip_database=opts.skip_database, identity=opts.decrypt_key,
        leftover_runs=opts.keep, database_elsewhere=opts.database_elsewhere, allowed_signers=signers,
        trust_unsigned=opts.trust_unsigned, credentials=credentials(opts))


def run(c: Context, req: FleetRequest, dry_run: bool | None = None) -> None:
    """Restore a set onto the targets, or roll the last restore back (--rollback); ``dry_run`` (by default
    --dry-run) prints the plan only."""
    opts, out = req.options, req.out
    dry_run = opts.dry_run if dry_run is None else dry_run
    # --rollback acts on the hosts it is given, never on ones the set names: it runs before any check of the set
    f = targets(c, req, None if opts.repo or opts.rollback else Path(opts.backup_set))
    set_dir, files = Path(opts.backup_set or "."), None
    if opts.repo:
        set_dir, files = reposource.restore_source(repository(opts), opts.set or opts.backup_set, opts.deployment)
    options = restore_options(opts, path(opts.allowed_signers) or f.allowed_signers)
    if opts.rollback:
        result = rollback.run(set_dir, f.targets, opts.parallel, dry_run, out.say, credentials(opts))
    else:
        with progress.for_output(out) as transfers:
            result = restore.run(set_dir, f.targets, preflight.parse_map(opts.map), options, opts.parallel, dry_run,
                                 out.say, transfers, files)
    finish(result, out, opts, f.name)
