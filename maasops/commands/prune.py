"""``maasops prune``: drop a repository's sets by the retention policy (never the newest verified), then restic
prune."""

from __future__ import annotations

from invoke import Context

from maasops import retention
from maasops.commands.fleet_request import FleetRequest, deployment_of, finish, repository
from maasops.options import REPO, RETENTION, OptionError, TaskOptions, TaskSpec
from maasops.repo import RepoError
from maasops.results import REFUSED, RunResult


def check_prune(opts: TaskOptions) -> None:
    """A retention policy that keeps something (OptionError naming the flags)."""
    if not (opts.keep_daily or opts.keep_weekly or opts.keep_monthly):
        raise OptionError("--keep-daily, --keep-weekly and --keep-monthly are all 0: that keeps no set")


SPEC = TaskSpec("prune", "9. Drop a repository's sets by --keep-daily/weekly/monthly (never the newest verified), "
                         "then restic prune.", REPO + RETENTION + ("deployment", "dry_run", "json", "metrics_file"),
                check=check_prune)


def run(c: Context, req: FleetRequest) -> None:
    """Apply the retention policy to the repository's sets (never the newest verified one), then restic prune."""
    opts, out = req.options, req.out
    repo = repository(opts)
    policy = retention.RetentionPolicy(opts.keep_daily, opts.keep_weekly, opts.keep_monthly)
    dep = deployment_of(opts)
    try:
        policy.args()
        result = retention.prune(repo, policy, opts.dry_run, out.say, dep)
    except RepoError as exc:
        out.warn(f"prune failed: {exc}")
        result = RunResult("prune", REFUSED if "--keep" in str(exc) else 1, error=str(exc))
    finish(result, out, opts, dep or "")
