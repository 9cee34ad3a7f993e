"""``maasops cleanup``: list (``--dry-run``) or remove what older restores (and killed backups) left on the hosts
(:mod:`maasops.leftovers`), keeping the newest ``--keep``: what ``--rollback`` needs."""

from __future__ import annotations

from invoke import Context, Exit

from maasops import fleet, leftovers, output
from maasops.commands.fleet_request import FleetRequest, targets
from maasops.options import HOSTS, TaskSpec
from maasops.results import FAILED, OK

SPEC = TaskSpec("cleanup", "8. List (--dry-run) or remove what older restores left on the hosts: aside copies, kept "
                           "databases.", HOSTS + ("keep", "dry_run", "json"))


def run(c: Context, req: FleetRequest) -> None:
    """List or remove leftovers of older restores on every target."""
    opts, out = req.options, req.out
    leftover_runs, dry_run = opts.keep, opts.dry_run
    tgts = targets(c, req).targets
    with fleet.closing(tgts):
        got = fleet.each(tgts, lambda t: leftovers.on_host(t, leftover_runs, dry_run), opts.parallel)
    rows = []
    for name, lines in sorted(got.items()):
        if isinstance(lines, BaseException):
            rows.append({"host": name, "leftover": "", "error": str(lines)})
            continue
        rows += [{"host": name, "leftover": line, "error": ""} for line in lines] or \
            [{"host": name, "leftover": "(none)" if dry_run else "(nothing to remove)", "error": ""}]
    out.say(output.table(rows))
    if not dry_run:
        out.say(f"kept the newest {leftover_runs} of each kind: what --rollback needs")
    failed = any(isinstance(v, BaseException) for v in got.values())
    out.emit({"operation": "cleanup", "status": "failed" if failed else "ok", "exit_code": FAILED if failed else OK,
              "dry_run": dry_run, "keep": leftover_runs,
              "hosts": {n: (v if isinstance(v, list) else {"error": str(v)}) for n, v in got.items()}})
    if failed:
        raise Exit(code=FAILED)
