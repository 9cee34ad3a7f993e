"""``maasops prune`` and ``maasops check``: how long sets stay in a restic repository, and that it is sound.

Retention is decided per set, never per file: restic's own policy
(``restic forget --dry-run --keep-daily/weekly/monthly``, grouped by deployment)
is applied to the snapshots of complete sets' manifests, and every snapshot of
a set it lets go is forgotten together, so no set is ever left half there (but
for an images part a kept set reuses: it stays while one does). On top of
restic's policy:

- the newest set that a ``maasops verify --repo`` read back in full (or, when none
  ever was, the newest complete set) is always kept;
- an unfinished or incomplete set is removed once a newer complete set exists
  (a newer one may still be running, and stays).

Then ``restic prune`` frees the space. ``check`` is ``restic check``, with
``--read-data-subset`` to read part of the data back each run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from maasops import output
from maasops import repo as restic
from maasops.repo import Repo, RepoError
from maasops.reposet import RepoSet, catalog
from maasops.results import FAILED, OK, RunResult

PRUNE_TIMEOUT = None  # prune and check take as long as the repository's size needs


@dataclass(frozen=True)
class RetentionPolicy:
    """How many daily, weekly and monthly sets restic's policy keeps (per deployment)."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def args(self) -> list[str]:
        """restic forget's --keep-* arguments (RepoError when they keep nothing)."""
        if min(self.daily, self.weekly, self.monthly) < 0 or not (self.daily or self.weekly or self.monthly):
            raise RepoError("--keep-daily, --keep-weekly and --keep-monthly: at least one above 0, none below")
        return [f"--keep-{n}={v}" for n, v in (("daily", self.daily), ("weekly", self.weekly),
                                                ("monthly", self.monthly)) if v]


@dataclass
class Decision:
    """What prune does with one set, and why."""

    set: RepoSet
    keep: bool
    why: str


def _policy(repo: Repo, policy: RetentionPolicy, deployment: str | None) -> dict[str, str]:
    """restic's verdict on every complete set's manifests snapshot: snapshot id -> why kept ('' = removed)."""
    only = f",deployment={deployment}" if deployment else ""
    groups = restic.run_json(repo, "forget", "--dry-run", "--group-by", "host",
                             "--tag", f"{restic.TAG},kind=manifests,state=complete{only}", *policy.args()) or []
    verdict: dict[str, str] = {}
    for group in groups if isinstance(groups, list) else []:
        reasons = {r["snapshot"].get("time"): ", ".join(r.get("matches") or [])
                   for r in group.get("reasons") or [] if isinstance(r.get("snapshot"), dict)}
        for snap in group.get("keep") or []:
            verdict[snap["id"]] = reasons.get(snap.get("time")) or "policy"
        for snap in group.get("remove") or []:
            verdict[snap["id"]] = ""
    return verdict


def _protected(sets: list[RepoSet]) -> RepoSet | None:
    """The set prune never removes: the newest verified one, else the newest complete one."""
    verified = [s for s in sets if s.complete and s.verified]
    complete = [s for s in sets if s.complete]
    return (verified or complete or [None])[-1]


def decide(sets: list[RepoSet], verdict: dict[str, str]) -> list[Decision]:
    """Keep or remove each set, per deployment (``verdict``: restic's, by manifests snapshot id)."""
    out = []
    for dep in sorted({s.deployment for s in sets}):
        mine = [s for s in sets if s.deployment == dep]
        guard = _protected(mine)
        newest_complete = max((s.stamp for s in mine if s.complete), default="")
        for s in mine:
            if s is guard:
                out.append(Decision(s, True, "newest verified set" if s.verified else "newest complete set"))
            elif not s.complete:
                stale = s.stamp < newest_complete
                out.append(Decision(s, not stale, "incomplete, a newer set is complete" if stale
                                    else "incomplete, no newer complete set"))
            else:
                why = verdict.get(s.manifests.id, "")
                out.append(Decision(s, bool(why), why or "outside the policy"))
    return out


def rows(decisions: list[Decision]) -> list[dict]:
    """Table rows of prune's decisions."""
    return [{"set": d.set.name, "state": d.set.tag("state") or "unfinished", "verified": d.set.verified or "-",
             "action": "keep" if d.keep else "REMOVE", "why": d.why} for d in decisions]


def prune(repo: Repo, policy: RetentionPolicy, dry_run: bool, say: Callable[[str], None],
          deployment: str | None = None) -> RunResult:
    """Forget every snapshot of the sets the policy lets go (of one deployment, or all), then ``restic prune``
    (nothing with ``dry_run``)."""
    restic.unlock(repo)
    sets = [s for s in catalog(repo) if deployment in (None, s.deployment)]
    decisions = decide(sets, _policy(repo, policy, deployment))
    say(output.table(rows(decisions)) if decisions else f"{repo}: no maasops sets")
    gone = [d.set for d in decisions if not d.keep]
    details = {"repo": repo.location, "kept": [d.set.name for d in decisions if d.keep],
               "removed": [s.name for s in gone]}
    if dry_run:
        say(f"\n--dry-run: {len(gone)} set(s) would be removed; nothing was changed")
        return RunResult("prune", OK, details={**details, "status": "planned"})
    kept = {i for d in decisions if d.keep for i in d.set.snapshot_ids()}  # an images part a kept set reuses
    ids = [i for s in gone for i in s.snapshot_ids() if i not in kept]
    if ids:
        restic.run(repo, "forget", *ids)
    out = restic.run(repo, "prune", timeout=PRUNE_TIMEOUT)
    freed = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(("total prune", "remaining:"))]
    say(f"\nremoved {len(gone)} set(s); restic prune: " + ("; ".join(freed) or "done"))
    return RunResult("prune", OK, details=details)


def check(repo: Repo, subset: str | None, say: Callable[[str], None]) -> RunResult:
    """``restic check`` (reading ``subset`` of the data back when given): the repository's own consistency."""
    args = ["check"] + ([f"--read-data-subset={subset}"] if subset else [])
    try:
        restic.unlock(repo)
        out = restic.run(repo, *args, timeout=PRUNE_TIMEOUT)
    except RepoError as exc:
        say(f"{repo}: DAMAGED or unreadable: {exc}")
        return RunResult("check", FAILED, error=str(exc), details={"repo": repo.location})
    say(f"{repo}: no errors were found" + (f" (read data subset {subset})" if subset else ""))
    say(restic.paths().describe())
    return RunResult("check", OK, details={"repo": repo.location, "read_data_subset": subset,
                                           "restic": out.strip().splitlines()[-1:],
                                           "restic_paths": restic.paths().describe()})
