"""``maasops schedule install | status | remove``: backup → prune → check on a systemd timer
(:mod:`maasops.systemd_units`)."""

from __future__ import annotations

from invoke import Context

from maasops import systemd_units
from maasops.commands.fleet_request import FleetRequest, check_credentials
from maasops.options import RETENTION, TaskSpec

SPEC = TaskSpec("schedule", "11. Run backup, prune and check on a timer (systemd): schedule install | status | "
                            "remove.",
                ("inventory", "repo", "repo_password_file", "on_calendar", "metrics_file", "unit_dir") + RETENTION
                + ("read_data_subset", "backup_dir", "database_user", "database_password_file", "max_stream_gib",
                   "json"), positional=("action",), check=check_credentials)


def run(c: Context, req: FleetRequest) -> None:
    """``maasops schedule ACTION``."""
    opts, out = req.options, req.out
    action = opts.action
    done = {"install": systemd_units.install, "status": systemd_units.status,
            "remove": systemd_units.remove}[action](opts, out.say)
    out.emit({"operation": f"schedule {action}", "status": "ok", **done})
