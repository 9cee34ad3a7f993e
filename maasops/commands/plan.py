"""``maasops plan backup | plan restore``: print every remote command a backup or restore would run, per host."""

from __future__ import annotations

from invoke import Context

from maasops.commands import backup, restore
from maasops.commands.fleet_request import FleetRequest
from maasops.options import BACKUP, FROM_REPO, HOSTS, RESTORE, TaskOptions, TaskSpec


def check_plan(opts: TaskOptions) -> None:
    """``plan backup`` takes a backup's options, ``plan restore`` a restore's."""
    (backup.check_backup if opts.what == "backup" else restore.check_restore)(opts)


SPEC = TaskSpec("plan", "2. Print every remote command an operation would run, per host (plan backup | plan restore "
                        "-s SET).", HOSTS + ("backup_set",) + BACKUP + RESTORE + FROM_REPO + ("rollback", "json"),
                positional=("what",), check=check_plan)


def run(c: Context, req: FleetRequest) -> None:
    """Print the plan of ``what`` (backup or restore) for every target; touches nothing."""
    (backup.run if req.options.what == "backup" else restore.run)(c, req, dry_run=True)
