"""``maasops restore --rollback``: put back what the last restore of a set replaced, on every host it ran on.

What to put back is read from each host's own record of the restore (see
:mod:`maasops.rollback_plan`), never from the laptop's report alone: the report
only names the run and its hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fabric import Connection

from maasops import channel, fleet, hostlock, output, plan, probe, runner
from maasops import manifest as mf
from maasops.command import Cmd, Q, Word
from maasops.hostpaths import RUN_ROOT
from maasops.parts import database
from maasops.restore_plan import PHASES
from maasops.results import FAILED, OK, REFUSED, HostResult, RunResult, refused
from maasops.rollback_plan import rollback_plan

MAX_STATE = 1 << 20  # bytes of a host's record read back


def read_state(c: Connection, step: str = "rollback: read the last restore's record") -> tuple[str, list[str]] | None:
    """The last restore's run id and record lines on a host, or None when it never had one."""
    latest = Q(RUN_ROOT + "/latest")
    cmd = Cmd("[ -L", latest, "] || exit 0; id=$(readlink", latest, "); printf '%s\\n' \"$id\"; head -c",
              str(MAX_STATE), Word(Q(RUN_ROOT), "/\"$id\"/state"), "2>/dev/null || true")
    out = channel.run(c, cmd, step, user="root").stdout.splitlines()
    return (out[0].strip(), [line.strip() for line in out[1:]]) if out else None


def last_restore(set_dir: Path) -> mf.RestoreRecord | None:
    """The record of the last restore run from this set, or None when there is none (ManifestError when that
    record is not one maasops wrote, or ``set_dir`` is a symbolic link)."""
    if set_dir.is_symlink():
        raise mf.ManifestError(f"{set_dir} is a symbolic link: give the set's own directory")
    names = sorted(p.name for p in set_dir.glob("restore-*.json"))
    return mf.read_restore(set_dir, names[-1]) if names else None


def _roles(set_dir: Path, last: mf.RestoreRecord) -> dict[str, tuple[str, ...]]:
    """Each target's roles by the set (what was restored onto it), for hosts a killed restore left unreadable."""
    try:
        records = mf.read_set(set_dir)
    except mf.ManifestError:
        return {}
    return {t: records.hosts[h.source].roles for t, h in last.hosts.items() if h.source in records.hosts}


def _plans(targets: list[fleet.Target], run_id: str, parallel: int,
           roles: dict[str, tuple[str, ...]],
           credentials: database.Credentials | None) -> tuple[list[plan.HostPlan], dict]:
    def look(t: fleet.Target):
        return probe.probe(t.connection, require_roles=False), read_state(t.connection)
    found = fleet.each(targets, look, parallel)
    plans, rows = [], {}
    for t in targets:
        got = found[t.name]
        if isinstance(got, BaseException):
            rows[t.name] = HostResult(t.name, "UNREACHABLE", error=str(got))
        elif got[1] is None:
            rows[t.name] = HostResult(t.name, "nothing to roll back")
        elif got[1][0] != run_id:
            plans.append(plan.HostPlan(t.name, got[0], error=(
                f"the last restore on this host is {got[1][0][:40]}, not {run_id} from this set")))
        else:
            plans.append(rollback_plan(got[0], *got[1], roles=roles.get(t.name, ()), credentials=credentials))
    return plans, rows


def _table(rows: dict[str, HostResult], say: Callable[[str], None]) -> None:
    say(output.table([{"host": r.host, "status": r.status, "error": r.error} for r in rows.values()]))


def _which_run(set_dir: Path, targets: list[fleet.Target]) -> tuple[list[fleet.Target], mf.RestoreRecord] | str:
    """The last restore's hosts' targets and its record; or why there is none to roll back."""
    try:
        last = last_restore(set_dir)
    except mf.ManifestError as exc:
        return f"the last restore's record cannot be used: {exc}"
    if last is None:
        return f"no restore from {set_dir} is on record (restore-*.json)"
    by_name = {t.name: t for t in targets}
    hosts = sorted(last.hosts)
    missing = [h for h in hosts if h not in by_name]
    if missing:
        return f"restore {last.run_id} ran on {', '.join(missing)} too; give every one of its hosts"
    return [by_name[n] for n in hosts], last


def _refusal(plans: list[plan.HostPlan], rows: dict[str, HostResult], set_dir: Path,
             say: Callable[[str], None]) -> RunResult:
    rows.update({p.host: HostResult(p.host, "REFUSED", error=p.error) for p in plans if p.error})
    _table(rows, say)
    return RunResult("rollback", REFUSED, rows, set_dir, error="; ".join(r.error for r in rows.values() if r.error))


def _outcome(plans: list[plan.HostPlan], fo: runner.FleetOutcome, rows: dict[str, HostResult],
             say: Callable[[str], None]) -> bool:
    for p in plans:
        o = fo.hosts[p.host]
        status = "rolled back" if o.ok and not fo.failed_phase else "SERVICES DOWN" if o.undo_failures else "FAILED"
        rows[p.host] = HostResult(p.host, status, error=str(o.error or ""), manual=o.undo_failures)
        for cmd in o.undo_failures:
            say(f"!!! {p.host}: could not start units again. Run on {p.host} by hand: sudo {cmd}")
    _table(rows, say)
    return all(r.status in ("rolled back", "nothing to roll back") for r in rows.values())


def run(set_dir: Path, targets: list[fleet.Target], parallel: int = fleet.PARALLEL, dry_run: bool = False,
        say: Callable[[str], None] = print, credentials: database.Credentials | None = None) -> RunResult:
    """Undo the last restore of ``set_dir`` on the hosts it ran on (``credentials``: the operator's database
    role, where a region's regiond.conf names none)."""
    which = _which_run(set_dir, targets)
    if isinstance(which, str):
        say(f"rollback refused: {which}")
        return refused("rollback", which)
    targets, last = which
    run_id = last.run_id
    plans, rows = _plans(targets, run_id, parallel, _roles(set_dir, last), credentials)
    if dry_run or any(p.error for p in plans) or any(r.status == "UNREACHABLE" for r in rows.values()):
        say(plan.render(plans))
        if dry_run:
            return RunResult("rollback", OK, rows, set_dir, details={"status": "planned", "run_id": run_id})
        return _refusal(plans, rows, set_dir, say)
    by_name = {t.name: t for t in targets}
    locks, busy = hostlock.acquire_all([by_name[p.host] for p in plans], "rollback", parallel)
    try:
        if busy:
            error = "; ".join(str(e) for e in busy.values())
            say("rollback refused, nothing was touched: " + error)
            return refused("rollback", error)
        fo = runner.run_phases([(by_name[p.host].connection, p) for p in plans], PHASES, parallel, say)
    finally:
        hostlock.release_all(locks)
    ok = _outcome(plans, fo, rows, say)
    return RunResult("rollback", OK if ok else FAILED, rows, set_dir, details={"run_id": run_id})
