"""``maasops restore``: preflight every target, run the phased restore plan, prove the secret, report.

Nothing on any host is stopped until the set's records checked out, every target
answered the probe, matched its source's install type and version, had the disk
space and (for the database loader) a working PostgreSQL, and every byte
uploaded matched the sha256 its backup recorded while every archive member
passed the layout's rules (:mod:`maasops.confine`). The restore is all-or-nothing
up to its commit point: a failure before it puts every host back (aside copies
back, the kept database back, units started). ``--rollback`` (:mod:`maasops.rollback`)
goes back to the state before the last restore on each host, from what the host recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from maasops import confine, fleet, hostlock, output, plan, preflight, proof, runner, verify
from maasops import manifest as mf
from maasops.backupset import SetFiles
from maasops.parts import database
from maasops.parts.config import confinement
from maasops.plan import Phase, Send, StepId
from maasops.preflight import Preflight, Refused
from maasops.progress import QUIET, Transfers
from maasops.restore_plan import BEFORE_STOP, PHASES, FleetRole, RestoreOptions, restore_plan
from maasops.results import FAILED, INTERRUPTED, OK, REFUSED, HostResult, RunResult, refused


def run_id_now() -> str:
    """A restore run's id: its start in UTC (sorts as it happened)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def plans(pf: Preflight, secret: tuple[str, Send] | None, options: RestoreOptions, run_id: str) -> list[plan.HostPlan]:
    """Every target's restore plan (or why it is refused)."""
    out = []
    for source, t in pf.pairs:
        f = pf.facts.get(t.name)
        if f is None or t.name in pf.problems:
            out.append(plan.HostPlan(t.name, f, error=pf.problems.get(t.name)))
            continue
        role = FleetRole(loads_database=t.name == pf.loader, runs_dbupgrade=t.name == pf.upgrader,
                         secret_from=secret[1] if secret and source != secret[0] else None,
                         roles_from_set=pf.loads_roles)
        out.append(restore_plan(pf.records.hosts[source], pf.check.files, f, role, options, run_id))
    return out


def _stream_options(pf: Preflight) -> dict[str, runner.StreamOptions]:
    """Per target: what goes up of an archive is the laptop's own re-writing of the members it checked
    against the target's layout and the manifest's listing (maasops.confine.emitted); a directory dump's
    members are checked as they go up."""
    out = {}
    for source, t in pf.pairs:
        if t.name not in pf.facts:
            continue
        m = pf.records.hosts[source]
        arch = m.archive
        checks: dict[StepId, dict] = {StepId.UPLOAD_ARCHIVE: {"reemit": confine.emitter(
            arch.compression, confinement(m, pf.facts[t.name]), arch.files, arch.plain_sha256 or arch.sha256)}}
        if m.images:
            checks[StepId.UPLOAD_IMAGES] = {"reemit": confine.emitter(
                m.images.compression, confinement(m, pf.facts[t.name], images=True), m.images.files,
                m.images.plain_sha256 or m.images.sha256)}
        if m.dump:
            checks[StepId.UPLOAD_DUMP] = {"inspect": database.inspector(m.dump.kind, m.dump.how, m.dump.compression)}
        out[t.name] = lambda step, checks=checks: checks[step.id] if step.inspect_upload else {}
    return out


def run(set_dir: Path, targets: list[fleet.Target], mapping: dict[str, str], options: RestoreOptions,
        parallel: int = fleet.PARALLEL, dry_run: bool = False, say: Callable[[str], None] = print,
        transfers: Transfers = QUIET, files: SetFiles | None = None) -> RunResult:
    """Restore a set onto targets (or print the plan); uploads report their progress to ``transfers``.

    The set's archives and dumps are read through ``files`` (a restic repository's) when given, else from
    ``set_dir``, where its manifests always are."""
    started, run_id = time.time(), run_id_now()
    try:
        pf = preflight.preflight(set_dir, targets, mapping, options, parallel, files)
    except Refused as exc:
        say(f"restore refused, nothing was touched: {exc}")
        return refused("restore", str(exc))
    secret = preflight.secret_source(pf, options.identity)
    host_plans = plans(pf, secret, options, run_id)
    for note in pf.check.notes:
        say(f"!!! {note}")
    say(f"restore of {pf.check.files} (run {run_id}), signed by {pf.check.signer or 'NOBODY'}: database loaded on "
        f"{pf.loader or 'no host'}, dbupgrade on "
        f"{pf.upgrader or 'no host'}, secret from {secret[0] if secret else 'no region'}")
    problems = [f"{p.host}: {p.error}" for p in host_plans if p.error]
    if dry_run and not problems:  # a dry run reads the whole set now: nothing else will
        problem = verify.verify_set(set_dir, preflight.policy(options), parallel, pf.ids,
                                    files=pf.check.files).problem()
        problems = [problem] if problem else []
    if dry_run or problems:
        say(plan.render(host_plans))
        if problems:
            say("restore refused, nothing was touched: " + "; ".join(problems))
            return refused("restore", "; ".join(problems))
        return RunResult("restore", OK, details={"status": "planned", "run_id": run_id})
    paired = {t.name: t for _, t in pf.pairs}
    locks, busy = hostlock.acquire_all(list(paired.values()), "restore", parallel)
    try:
        if busy:
            error = "; ".join(str(e) for e in busy.values())
            say(f"restore refused, nothing was touched: {error}")
            return refused("restore", error)
        return _run_locked(set_dir, run_id, started, host_plans, paired, secret, pf, parallel, say, transfers)
    finally:
        hostlock.release_all(locks)


def _secret_problems(pf: Preflight, secret: tuple[str, Send] | None, parallel: int) -> dict[str, str]:
    """Per target whose secret is not the region's after the restore: why (read from the hosts)."""
    if not secret:
        return {}
    want = pf.records.hosts[secret[0]].secret_sha256()
    targets = [t for _, t in pf.pairs]
    got = fleet.each(targets, lambda t: proof.secret_sha256(t.connection, pf.facts[t.name]), parallel)
    return {n: "secret differs from the region's after the restore" if isinstance(v, str) else f"secret: {v}"
            for n, v in got.items() if v != want}


def _run_locked(set_dir: Path, run_id: str, started: float, host_plans: list[plan.HostPlan],
                targets: dict[str, fleet.Target], secret: tuple[str, Send] | None, pf: Preflight, parallel: int,
                say: Callable[[str], None], transfers: Transfers) -> RunResult:
    items = [(targets[p.host].connection, p) for p in host_plans]
    # On record before anything is touched, so --rollback finds this run even if the laptop dies mid-way.
    mf.write_restore(set_dir, mf.RestoreRecord(
        status=mf.RUNNING, set=str(set_dir.absolute()), run_id=run_id, started=started,
        hosts={p.host: mf.RestoredHost(p.host, mf.RUNNING, p.spec.source) for p in host_plans}))
    fo = runner.run_phases(items, PHASES, parallel, say, transfers, _stream_options(pf))
    rows = host_rows(host_plans, fo, started)
    if not fo.failed_phase and not fo.interrupted:
        for name, why in _secret_problems(pf, secret, parallel).items():
            rows[name].status, rows[name].error = "FAILED", why
    ok = all(r.status == "ok" for r in rows.values())
    code = INTERRUPTED if fo.interrupted else OK if ok else REFUSED if fo.failed_phase in BEFORE_STOP else FAILED
    details = {
        "run_id": run_id, "started": started, "ended": time.time(), "database_loaded_on": pf.loader,
        "dbupgrade_on": pf.upgrader, "secret_from": secret[0] if secret else None, "failed_phase": fo.failed_phase,
        "steps": {p.host: [r.to_json() for r in fo.hosts[p.host].records] for p in host_plans},
        "pruned": {p.host: _pruned(fo.hosts[p.host]) for p in host_plans if _pruned(fo.hosts[p.host])},
        "dbupgrade_runs": sum(1 for o in fo.hosts.values() for r in o.records
                              if r.id == StepId.DBUPGRADE and not r.undo),
    }
    result = RunResult("restore", code, rows, set_dir, details=details)
    mf.write_restore(set_dir, _record(result))
    _print(rows, fo, details["pruned"], say)
    return result


def _record(result: RunResult) -> mf.RestoreRecord:
    """The restore's record as it ended: its result, as ``--json`` prints it."""
    d = result.details
    return mf.RestoreRecord(
        status=result.status, exit_code=result.code, set=str(result.set_dir.absolute()), error=result.error,
        hosts={n: mf.RestoredHost(**{**asdict(h), "manual": tuple(h.manual)}) for n, h in sorted(result.hosts.items())},
        run_id=d["run_id"], started=d["started"], ended=d["ended"], database_loaded_on=d["database_loaded_on"],
        dbupgrade_on=d["dbupgrade_on"], secret_from=d["secret_from"],
        failed_phase=str(d["failed_phase"]) if d["failed_phase"] else None,
        steps={n: tuple(mf.StepTime(**s) for s in steps) for n, steps in d["steps"].items()},
        pruned={n: tuple(lines) for n, lines in d["pruned"].items()}, dbupgrade_runs=d["dbupgrade_runs"])


def _pruned(outcome: runner.HostOutcome) -> list[str]:
    r = outcome.step_record(StepId.PRUNE)
    return r.output.splitlines() if r and r.output else []


def host_rows(host_plans: list[plan.HostPlan], fo: runner.FleetOutcome, started: float) -> dict[str, HostResult]:
    """Each target's line, from what its steps and undos did."""
    rows = {}
    untouched = fo.failed_phase in BEFORE_STOP
    for p in host_plans:
        o = fo.hosts[p.host]
        took = max((r.ended for r in o.records), default=started) - min((r.started for r in o.records),
                                                                          default=started)
        window = runner.downtime(o)
        row = HostResult(p.host, "ok", p.spec.source if p.spec else "", duration=took,
                         downtime=window[1] - window[0] if window else None, manual=o.undo_failures)
        if o.error:
            row.status, row.error = "FAILED", str(o.error)
        elif o.cancelled or fo.interrupted:
            row.status, row.error = "INTERRUPTED", "cancelled by the user"
        elif untouched:
            row.status, row.error = "NOT CHANGED", f"another host failed in phase {fo.failed_phase}"
        elif fo.failed_phase == Phase.CLEANUP:
            row.error = "restored; another host's cleanup failed"
        elif fo.failed_phase:
            row.status = "ROLLED BACK" if o.undone else "NOT STARTED"
            row.error = f"another host failed in phase {fo.failed_phase}"
        if o.undone and row.status != "ROLLED BACK" and not untouched:
            row.error += f"; put back: {', '.join(o.undone)}"
        if o.undo_failures:
            row.status = "SERVICES DOWN"
        rows[p.host] = row
    return rows


def _print(rows: dict[str, HostResult], fo: runner.FleetOutcome, pruned: dict[str, list[str]],
           say: Callable[[str], None]) -> None:
    for r in rows.values():
        for cmd in r.manual:
            say(f"!!! {r.host}: could not undo by itself. Run on {r.host} by hand: sudo {cmd}")
    for host, lines in sorted(pruned.items()):
        for line in lines:
            say(f"{host}: {line} (older restore)")
    say(output.table([{"host": r.host, "from": r.source, "status": r.status, "duration": f"{r.duration:.1f}s",
                       "downtime": f"{r.downtime:.1f}s" if r.downtime is not None else "", "error": r.error}
                      for r in rows.values()]))
    if fo.failed_phase in BEFORE_STOP:
        say(f"Nothing was stopped or changed on any host: the restore failed in its {fo.failed_phase} phase, "
            "and what it had uploaded was removed.")
    if fo.failed_phase and "commit" in fo.phases_run:
        say("The restore failed after its commit point: restored files and database were kept. "
            "To go back to the state before it: maasops restore --rollback (same hosts)")

