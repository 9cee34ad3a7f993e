"""``maasops push``: store a local set in a restic repository as it is (its signature still holds).

Like every repository command, it names the repository with ``--repo`` and its password file with
``--repo-password-file`` (or ``RESTIC_PASSWORD_FILE``); an ``sftp:`` repository is reached with the
inventory's ssh_config (the lab's, without ``--inventory``).
"""

from __future__ import annotations

import time
from pathlib import Path

from invoke import Context

from maasops import repo as restic
from maasops import reposet
from maasops.commands.fleet_request import FleetRequest, check_local_set, finish, repository
from maasops.options import REPO, TaskSpec
from maasops.repo import RepoError
from maasops.results import OK, REFUSED, RunResult

SPEC = TaskSpec("push", "4. Store a local set in a restic repository, as it is (deduplicated, off-site).",
                REPO + ("json", "metrics_file"), positional=("backup_set",), check=check_local_set)


def run(c: Context, req: FleetRequest) -> None:
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
