"""``maasops sets``: list the sets in a restic repository."""

from __future__ import annotations

from invoke import Context, Exit

from maasops import output, reposet
from maasops.commands.fleet_request import FleetRequest, deployment_of, repository
from maasops.options import REPO, TaskSpec
from maasops.repo import RepoError
from maasops.results import REFUSED

SPEC = TaskSpec("sets", "5. List the sets in a restic repository: deployment, time, hosts, size, verified.",
                REPO + ("deployment", "json"))


def set_rows(sets: list[reposet.RepoSet]) -> list[dict]:
    """Table rows of a repository's sets, oldest first."""
    return [{"deployment": s.deployment, "time": s.stamp, "hosts": s.tag("hosts").replace("+", ",") or
             ",".join(sorted({r.split("/")[0] for r in s.files})),
             "size": output.human_bytes(int(s.tag("size"))) if s.tag("size").isdigit() else "",
             "state": s.tag("state") or "unfinished", "verified": s.verified or "-"} for s in sets]


def run(c: Context, req: FleetRequest) -> None:
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
    out.say(output.table(rows) if rows else f"{repo}: no maasops sets")
    out.emit({"operation": "sets", "status": "ok", "repo": repo.location, "sets": rows})
