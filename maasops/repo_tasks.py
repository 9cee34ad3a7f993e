"""The tasks that keep sets in a restic repository: push, sets, prune, check.

Every one names the repository with ``--repo`` and its password file with
``--repo-password-file`` (or ``RESTIC_PASSWORD_FILE``). An ``sftp:`` repository is
reached with the inventory's ssh_config (the lab's, without ``--inventory``).
``verify`` and ``restore`` read a repository's set too (:mod:`maasops.reposource`).
"""

from __future__ import annotations

import time
from pathlib import Path

from invoke import Context, Exit

from maasops import repo as restic
from maasops import report, reposet, retention
from maasops.cli import FleetRequest, finish, inventory_of, repository
from maasops.options import OptionError, TaskOptions
from maasops.repo import RepoError
from maasops.results import OK, REFUSED, RunResult


def deployment_of(opts: TaskOptions) -> str | None:
    """The deployment a task is limited to: --deployment, else the --inventory's (None: every deployment)."""
    if opts.deployment:
        return opts.deployment
    dep = inventory_of(opts)
    return dep.name if dep else None


def check_prune(opts: TaskOptions) -> None:
    """A retention policy that keeps something (OptionError naming the flags)."""
    if not (opts.keep_daily or opts.keep_weekly or opts.keep_monthly):
        raise OptionError("--keep-daily, --keep-weekly and --keep-monthly are all 0: that keeps no set")


def run_push(c: Context, req: FleetRequest) -> None:
    """Store a local backup set in the repository as it is (its signature still holds)."""
    opts, out = req.options, req.out
    repo = repository(opts)
    started = time.time()
    try:
        restic.ensure(repo)
        rs, done = reposet.push_set(repo, Path(opts.backup_set))
    except RepoError as exc:
        out.warn(f"push refused: {exc}")
        finish(RunResult("push", REFUSED, error=str(exc)), out, opts)
        return
    out.say(f"{opts.backup_set} -> {repo} {rs.name if rs else '?'}: {done} ({time.time() - started:.1f}s)")
    finish(RunResult("push", OK, details={"repo": repo.location, "repo_set": rs.name if rs else None,
                                          "done": done}), out, opts, rs.deployment if rs else None)


def set_rows(sets: list[reposet.RepoSet]) -> list[dict]:
    """Table rows of a repository's sets, oldest first."""
    return [{"deployment": s.deployment, "time": s.stamp, "hosts": s.tag("hosts").replace("+", ",") or
             ",".join(sorted({r.split("/")[0] for r in s.files})),
             "size": report.human_bytes(int(s.tag("size"))) if s.tag("size").isdigit() else "",
             "state": s.tag("state") or "unfinished", "verified": s.verified or "-"} for s in sets]


def run_sets(c: Context, req: FleetRequest) -> None:
    """List the sets in the repository: deployment, time, hosts, size, state, verified."""
    opts, out = req.options, req.out
    repo = repository(opts)
    try:
        sets = reposet.catalog(repo)
    except RepoError as exc:
        raise Exit(str(exc), code=REFUSED) from None
    dep = deployment_of(opts)
    sets = [s for s in sets if dep in (None, s.deployment)]
    rows = set_rows(sets)
    out.say(report.table(rows) if rows else f"{repo}: no maasops sets")
    out.emit({"operation": "sets", "status": "ok", "repo": repo.location, "sets": rows})


def run_prune(c: Context, req: FleetRequest) -> None:
    """Apply the retention policy to the repository's sets (never the newest verified one), then restic prune."""
    opts, out = req.options, req.out
    repo = repository(opts)
    keep = retention.Keep(opts.keep_daily, opts.keep_weekly, opts.keep_monthly)
    dep = deployment_of(opts)
    try:
        keep.args()
        result = retention.prune(repo, keep, opts.dry_run, out.say, dep)
    except RepoError as exc:
        out.warn(f"prune failed: {exc}")
        result = RunResult("prune", REFUSED if "--keep" in str(exc) else 1, error=str(exc))
    finish(result, out, opts, dep or "")


def run_check(c: Context, req: FleetRequest) -> None:
    """restic check of the repository (with --read-data-subset, part of the data read back)."""
    opts, out = req.options, req.out
    repo = repository(opts)
    finish(retention.check(repo, opts.read_data_subset, out.say), out, opts,
           deployment_of(opts) or "")
