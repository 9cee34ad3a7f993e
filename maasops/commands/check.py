"""``maasops check``: restic check of a repository (with ``--read-data-subset``, part of its data read back)."""

from __future__ import annotations

from invoke import Context

from maasops import retention
from maasops.commands.fleet_request import FleetRequest, deployment_of, finish, repository
from maasops.options import REPO, TaskSpec

SPEC = TaskSpec("check", "10. Check a restic repository (restic check; --read-data-subset reads data back).",
                REPO + ("read_data_subset", "deployment", "json", "metrics_file"))


def run(c: Context, req: FleetRequest) -> None:
    """restic check of the repository (with --read-data-subset, part of the data read back)."""
    opts, out = req.options, req.out
    repo = repository(opts)
    finish(retention.check(repo, opts.read_data_subset, out.say), out, opts,
           deployment_of(opts) or "")
