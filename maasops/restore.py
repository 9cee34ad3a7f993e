"""``fab restore``: verify the set, preflight every target, run the phased restore plan, prove the secret.

Nothing on any host is stopped until the set's manifests checked out, every
byte uploaded matched the sha256 its backup recorded, every target answered
the probe, matched its source's install type and version, had the disk space and
(for the database host) a working PostgreSQL. The restore is all-or-nothing up
to its commit point: a failure before it puts every host back (aside copies
back, the saved database reloaded, units started). ``--rollback`` goes back to
the state before the last restore on each host, from what the host recorded.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from maasops import backupset, crypto, fleet, hostlock, layouts, plan, probe, proof, remote, report, runner, verify
from maasops.plan import Send
from maasops.restore_plan import (
    BEFORE_STOP,
    PHASES,
    ROLLED_BACK,
    RUN_ROOT,
    SAVED_DB,
    FleetRole,
    RestoreOptions,
    load_command,
    restore_plan,
    run_dir,
)

q = shlex.quote
DISK_MARGIN = 1.2


class Refused(Exception):
    """The restore cannot start; nothing was stopped or changed."""


def parse_map(text: str | None) -> dict[str, str]:
    """``old=new,old2=new2`` into a dict (ValueError on a malformed pair)."""
    out = {}
    for pair in filter(None, (p.strip() for p in (text or "").split(","))):
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"--map wants old=new pairs, got {pair!r}")
        out[old] = new
    return out


@dataclass
class Preflight:
    """Everything checked before anything stops: the set, the targets' facts, each host's source manifest."""

    check: verify.SetCheck  # manifests, layouts and sizes; the contents are checked while uploading
    pairs: list[tuple[str, fleet.Target]]  # (source host, target)
    ids: list | None = None  # age identities for an encrypted set
    facts: dict[str, probe.HostFacts] = field(default_factory=dict)  # by target name
    problems: dict[str, str] = field(default_factory=dict)  # target name -> why it is refused


def _version_problem(m: dict, f: probe.HostFacts, allow_upgrade: bool) -> str | None:
    if f.install != m["install"]:
        return (f"install type differs: the backup is {m['install']}, the host has "
                f"{f.install or 'no MAAS'}; install MAAS as a {m['install']} first")
    src, dst = layouts.parse_version(m["maas_version"]), layouts.parse_version(f.version)
    if dst < src:
        return f"the host runs MAAS {f.short_version}, older than the backup's {src[0]}.{src[1]}: never supported"
    if dst != src and not allow_upgrade:
        return (f"the host runs MAAS {f.short_version}, the backup is from {src[0]}.{src[1]}; install "
                f"{src[0]}.{src[1]}, or pass --allow-upgrade to restore and let dbupgrade migrate")
    return None


def _role_problem(m: dict, f: probe.HostFacts) -> str | None:
    if f.install == "deb" and not set(m.get("roles", [])) <= set(f.roles):
        return (f"the backup is of a {'+'.join(m['roles'])} controller, the host has only "
                f"{'+'.join(f.roles) or 'no'} MAAS packages installed")
    return None


def _tool_problem(m: dict, f: probe.HostFacts) -> str | None:
    tool = plan.DECOMPRESSORS[m["archive"].get("compression", "none")].split(" ")[0]
    if tool != "cat" and tool not in f.tools:
        return f"the set is {m['archive']['compression']}-compressed and {tool} is not installed on this host"
    return None


def _disk_problem(m: dict, f: probe.HostFacts, loads_db: bool) -> str | None:
    arch = m["archive"]
    need = arch["size"] + sum(e.get("size", 0) for e in arch["files"])
    if loads_db:
        d = m["dump"]
        need += d["size"] + 2 * d.get("uncompressed_size", 4 * d["size"])
    need_mib = int(need * DISK_MARGIN / 1048576) + 1
    free = f.free_mib.get("/var")
    if free is not None and free < need_mib:
        return f"not enough disk on /var: {free} MiB free, the restore needs about {need_mib} MiB"
    return None


def set_problem(check: verify.SetCheck) -> str | None:
    """Why a checked set must not be restored, or None."""
    bad = check.problems + [f"{h.host}: {'; '.join(h.problems)}" for h in check.hosts.values() if not h.ok]
    return "the backup set does not verify: " + " | ".join(bad) if bad else None


def preflight(set_dir: Path, targets: list[fleet.Target], mapping: dict[str, str], options: RestoreOptions,
              parallel: int) -> tuple[Preflight, dict[str, str], str | None, str | None]:
    """Verify the set, pair source hosts with targets, probe and check them.

    Returns the preflight, the fleet's dump owners by target, the database
    loader and the dbupgrade region (target names). Raises Refused for set-wide
    problems; per-host problems are in ``Preflight.problems``.
    """
    try:
        ids = crypto.identities(Path(options.identity)) if options.identity else None
    except (OSError, crypto.CryptoError) as exc:
        raise Refused(f"--identity: {exc}") from None
    check = verify.verify_set(set_dir, parallel, ids, content=False)
    sealed = sorted(h.host for h in check.hosts.values() if h.notes)
    if sealed and ids is None:
        raise Refused(f"the set is encrypted ({', '.join(sealed)}): give the identity to decrypt it with --identity")
    problem = set_problem(check)
    if problem:
        raise Refused(problem)
    by_name = {t.name: t for t in targets}
    pairs, missing = [], []
    for source in sorted(check.hosts):
        name = mapping.get(source, source)
        (pairs.append((source, by_name[name])) if name in by_name else missing.append(f"{source}->{name}"))
    if missing:
        raise Refused(f"no target host for {', '.join(missing)}: give them in -H/--inventory or map them "
                      f"with --map old=new")
    doubled = sorted({t.name for _, t in pairs if sum(1 for _, u in pairs if u.name == t.name) > 1})
    if doubled:
        raise Refused(f"two backed-up hosts would be restored onto {', '.join(doubled)}: fix --map")
    unknown = set(mapping) - set(check.hosts)
    if unknown:
        raise Refused(f"--map names hosts that are not in the set: {', '.join(sorted(unknown))}")
    pf = Preflight(check, pairs, ids)
    probed = fleet.each([t for _, t in pairs], lambda t: probe.probe(t.connection), parallel)
    for name, f in probed.items():
        if isinstance(f, probe.HostFacts):
            pf.facts[name] = f
        else:
            pf.problems[name] = f"probe failed: {f}"
    owners = check.manifest.get("dump_owners", {})
    target_of = {s: t.name for s, t in pairs}
    loader = None
    for source, kind in sorted(owners.items()):
        if options.skip_database:
            break
        if kind != "local":
            raise Refused(f"{source}'s database was dumped from {kind}: load "
                          f"{set_dir / source / check.hosts[source].manifest['dump']['file']} into that server "
                          f"yourself, then rerun with --skip-database")
        loader = target_of[source]
    regions = sorted(target_of[s] for s in check.hosts if "region" in check.hosts[s].manifest.get("roles", []))
    upgrader = None
    if loader or not options.skip_database:
        upgrader = loader if loader in regions else (regions[0] if regions else None)
    for source, t in pairs:
        f = pf.facts.get(t.name)
        if f is None:
            continue
        m = check.hosts[source].manifest
        problem = (_version_problem(m, f, options.allow_upgrade) or _role_problem(m, f)
                   or _disk_problem(m, f, t.name == loader) or _tool_problem(m, f))
        if problem is None and t.name == loader:
            ok = remote.run(t.connection, "psql -XAtc 'SELECT 1'", "preflight: PostgreSQL answers",
                            user=layouts.PG_SUPERUSER, check=False)
            if ok.exited != 0:
                problem = ("PostgreSQL does not answer on this host (it must be installed and running to load "
                           "the dump): " + (ok.stderr.strip().splitlines() or ["no output"])[-1])
        if problem:
            pf.problems[t.name] = problem
    return pf, target_of, loader, upgrader


def secret_source(check: verify.SetCheck, target_of: dict[str, str], loader: str | None,
                  identity: str | None = None) -> tuple[str, Send] | None:
    """The region whose secret every rack gets (the database's region, else the first), as an archive member."""
    regions = sorted(s for s, h in check.hosts.items() if "region" in h.manifest.get("roles", []))
    if not regions:
        return None
    source = next((s for s in regions if target_of[s] == loader), regions[0])
    m = check.hosts[source].manifest
    lay = backupset.manifest_layout(m)
    member = plan.actual(lay.secret, m.get("snap_data")).lstrip("/")
    arch = m["archive"]
    return source, Send(str(check.path / source / arch["file"]), member, arch.get("compression", "none"),
                        identity if arch.get("encryption") else None)


@dataclass
class HostRow:
    """A target's line in the restore table."""

    host: str
    source: str
    status: str
    duration: float = 0.0
    downtime: float | None = None
    error: str = ""
    manual: list[str] = field(default_factory=list)


def _secret_digests(targets: dict[str, tuple[fleet.Target, probe.HostFacts]], parallel: int) -> dict[str, str]:
    got = fleet.each([t for t, _ in targets.values()],
                     lambda t: proof.secret_sha256(t.connection, targets[t.name][1]), parallel)
    return {n: (v if isinstance(v, str) else f"error: {v}") for n, v in got.items()}


def run(set_dir: Path, targets: list[fleet.Target], mapping: dict[str, str], options: RestoreOptions,
        parallel: int = 8, dry_run: bool = False, say: Callable[[str], None] = print) -> tuple[int, dict]:
    """Restore a set onto targets (or print the plan). Returns the exit code and the report."""
    started = time.time()
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        pf, target_of, loader, upgrader = preflight(set_dir, targets, mapping, options, parallel)
    except Refused as exc:
        say(f"restore refused, nothing was touched: {exc}")
        return 2, {"status": "refused", "error": str(exc)}
    secret = secret_source(pf.check, target_of, loader, options.identity)
    plans = []
    for source, t in pf.pairs:
        f = pf.facts.get(t.name)
        if f is None or t.name in pf.problems:
            plans.append(plan.HostPlan(t.name, f, error=pf.problems.get(t.name)))
            continue
        role = FleetRole(loads_database=t.name == loader, runs_dbupgrade=t.name == upgrader,
                         secret_from=secret[1] if secret and source != secret[0] else None)
        plans.append(restore_plan(pf.check.hosts[source].manifest, set_dir / source, f, role, options, run_id))
    refused = [p for p in plans if p.error]
    say(f"restore of {set_dir} (run {run_id}): database loaded on {loader or 'no host'}, dbupgrade on "
        f"{upgrader or 'no host'}, secret from {secret[0] if secret else 'no region'}")
    if dry_run and not refused:  # a dry run reads the whole set now: nothing else will
        problem = set_problem(verify.verify_set(set_dir, parallel, pf.ids))
        refused = [plan.HostPlan("the set", None, error=problem)] if problem else []
    if dry_run or refused:
        say(plan.render(plans))
        if refused:
            say("restore refused, nothing was touched: " + "; ".join(f"{p.host}: {p.error}" for p in refused))
            return 2, {"status": "refused", "error": "; ".join(f"{p.host}: {p.error}" for p in refused)}
        return 0, {"status": "planned"}
    conns = {t.name: t for _, t in pf.pairs}
    locks, busy = hostlock.acquire_all(list(conns.values()), "restore", parallel)
    try:
        if busy:
            error = "; ".join(str(e) for e in busy.values())
            say(f"restore refused, nothing was touched: {error}")
            return 2, {"status": "refused", "error": error}
        return _run_locked(set_dir, run_id, started, plans, conns, loader, upgrader, secret, pf, parallel, say)
    finally:
        hostlock.release_all(locks)


def _run_locked(set_dir: Path, run_id: str, started: float, plans: list[plan.HostPlan],
                conns: dict[str, fleet.Target], loader: str | None, upgrader: str | None,
                secret: tuple[str, Send] | None, pf: Preflight, parallel: int,
                say: Callable[[str], None]) -> tuple[int, dict]:
    items = [(conns[p.host].connection, p) for p in plans]
    record = set_dir / f"restore-{run_id}.json"
    # On record before anything is touched, so --rollback finds this run even if the laptop dies mid-way.
    backupset.write_json(record, {"status": "running", "run_id": run_id, "set": str(set_dir), "started": started,
                                  "hosts": {p.host: {"source": p.meta["source"]} for p in plans}})
    fo = runner.run_phases(items, PHASES, {p.host: None for p in plans}, parallel, say)
    rows = _rows(plans, fo, started)
    digests = {}
    if not fo.failed_phase and not fo.interrupted:
        digests = _secret_digests({t.name: (t, pf.facts[t.name]) for _, t in pf.pairs}, parallel)
        want = verify.secret_digest(pf.check.hosts[secret[0]].manifest) if secret else None
        for r in rows:
            if want and digests.get(r.host) != want:
                r.status, r.error = "FAILED", "secret differs from the region's after the restore"
    ok = all(r.status == "ok" for r in rows)
    result = {
        "status": "ok" if ok else "interrupted" if fo.interrupted else "failed", "run_id": run_id,
        "set": str(set_dir), "started": started, "ended": time.time(), "database_loaded_on": loader,
        "dbupgrade_on": upgrader, "secret_from": secret[0] if secret else None,
        "failed_phase": fo.failed_phase, "secret_sha256": digests,
        "dbupgrade_runs": sum(1 for o in fo.hosts.values() for r in o.records if r.name.startswith("dbupgrade")),
        "hosts": {r.host: {**r.__dict__, "steps": [{"name": s.name, "phase": s.phase, "started": s.started,
                                                       "ended": s.ended} for s in fo.hosts[r.host].records]}
                  for r in rows},
    }
    backupset.write_json(record, result)
    _print(rows, fo, say)
    return (130 if fo.interrupted else 0 if ok else 1), result


def _rows(plans: list[plan.HostPlan], fo: runner.FleetOutcome, started: float) -> list[HostRow]:
    rows = []
    untouched = fo.failed_phase in BEFORE_STOP
    for p in plans:
        o = fo.hosts[p.host]
        took = max((r.ended for r in o.records), default=started) - min((r.started for r in o.records),
                                                                          default=started)
        window = runner.downtime(o)
        row = HostRow(p.host, p.meta.get("source", ""), "ok", took, window[1] - window[0] if window else None,
                      manual=o.undo_failures)
        if o.error:
            row.status, row.error = "FAILED", str(o.error)
        elif o.cancelled or fo.interrupted:
            row.status, row.error = "INTERRUPTED", "cancelled by the user"
        elif untouched:
            row.status, row.error = "NOT CHANGED", f"another host failed in phase {fo.failed_phase}"
        elif fo.failed_phase:
            row.status = "ROLLED BACK" if o.undone else "NOT STARTED"
            row.error = f"another host failed in phase {fo.failed_phase}"
        if o.undone and row.status != "ROLLED BACK" and not untouched:
            row.error += f"; put back: {', '.join(o.undone)}"
        if o.undo_failures:
            row.status = "SERVICES DOWN"
        rows.append(row)
    return rows


def _print(rows: list[HostRow], fo: runner.FleetOutcome, say: Callable[[str], None]) -> None:
    for r in rows:
        for cmd in r.manual:
            say(f"!!! {r.host}: could not undo by itself. Run on {r.host} by hand: sudo {cmd}")
    say(report.table([{"host": r.host, "from": r.source, "status": r.status, "duration": f"{r.duration:.1f}s",
                       "downtime": f"{r.downtime:.1f}s" if r.downtime is not None else "", "error": r.error}
                      for r in rows]))
    if fo.failed_phase in BEFORE_STOP:
        say(f"Nothing was stopped or changed on any host: the restore failed in its {fo.failed_phase} phase, "
            "and what it had uploaded was removed.")
    if fo.failed_phase and "commit" in fo.phases_run:
        say("The restore failed after its commit point: restored files and database were kept. "
            "To go back to the state before it: fab restore --rollback (same hosts)")


# --- rollback -----------------------------------------------------------------------------------------------------

def read_state(c, step: str = "rollback: read the last restore's record") -> tuple[str, list[str]] | None:
    """The last restore's run id and state lines on a host, or None when it never had one."""
    cmd = (f"[ -L {q(RUN_ROOT + '/latest')} ] || exit 0; id=$(readlink {q(RUN_ROOT + '/latest')}); echo \"$id\"; "
           f"cat {q(RUN_ROOT)}/\"$id\"/state 2>/dev/null || true")
    out = remote.run(c, cmd, step, sudo=True).stdout.splitlines()
    return (out[0], out[1:]) if out else None


def rollback_plan(f: probe.HostFacts, run_id: str, state: list[str]) -> plan.HostPlan:
    """Steps that put back what the restore ``run_id`` moved aside, and its saved database."""
    if "rolled-back" in state:
        return plan.HostPlan(f.host, f, error=f"restore {run_id} was already rolled back")
    rdir = run_dir(run_id)
    steps = []
    # Units running now, and those the restore stopped (they may still be down if it was killed).
    stopped = {u for line in state if line.startswith("stopped ") for u in line.split()[1:]}
    running = {u for u, s in f.unit_states.items() if s == "active"}
    now = plan.unit_commands(f.install, tuple(u for u in f.layout.units(set(f.roles) or {"region", "rack"})
                                             if u in stopped | running))
    if now:
        steps.append(plan.Step("stop MAAS units", now.stop, user="root", undo=now.start, phase="stop"))
    saved = f"{rdir}/{SAVED_DB}"
    if f"saved-db {saved}" in state and "db-rolled-back" not in state:
        steps.append(plan.Step("reload the database saved before the restore",
                               load_command(saved, "gzip", f"{rdir}/rollback-load.log"), user="root",
                               phase="database"))
    for line in reversed(state):
        kind, _, rest = line.partition(" ")
        if kind == "aside":
            path, aside = rest.split(" ", 1)
            steps.append(plan.Step(f"put {path} back", phase="files", user="root", command=(
                f"if [ -e {q(aside)} ]; then if [ -e {q(path)} ] || [ -L {q(path)} ]; then "
                f"mv -T {q(path)} {q(path + ROLLED_BACK + run_id)}; fi; mv -T {q(aside)} {q(path)}; fi")))
        elif kind == "new":
            steps.append(plan.Step(f"move restored {rest} away", phase="files", user="root", command=(
                f"if [ -e {q(rest)} ]; then mv -T {q(rest)} {q(rest + ROLLED_BACK + run_id)}; fi")))
    steps.append(plan.Step("record the rollback", f"printf 'rolled-back\\n' >> {q(rdir + '/state')}", user="root",
                           phase="files"))
    if now:
        phase = "start regions" if "region" in f.roles else "start racks"
        steps.append(plan.Step("start MAAS units", now.start, user="root", phase=phase, resolves=("stop MAAS units",)))
        steps.append(plan.Step("check MAAS units are active", now.check, phase=phase))
    return plan.HostPlan(f.host, f, tuple(steps), meta={"run_id": run_id})


def last_restore(set_dir: Path) -> dict | None:
    """The report of the last restore run from this set, or None."""
    reports = sorted(set_dir.glob("restore-*.json"))
    return json.loads(reports[-1].read_text()) if reports else None


def rollback(set_dir: Path, targets: list[fleet.Target], parallel: int = 8, dry_run: bool = False,
             say: Callable[[str], None] = print) -> int:
    """Undo the last restore of ``set_dir`` on the hosts it ran on. Returns the exit code."""
    last = last_restore(set_dir)
    if last is None or not last.get("run_id"):
        say(f"rollback refused: no restore from {set_dir} is on record (restore-*.json)")
        return 2
    run_id = last["run_id"]
    by_name = {t.name: t for t in targets}
    missing = sorted(set(last["hosts"]) - set(by_name))
    if missing:
        say(f"rollback refused: restore {run_id} ran on {', '.join(missing)} too; give every one of its hosts")
        return 2
    targets = [by_name[n] for n in sorted(last["hosts"])]

    def look(t: fleet.Target):
        return probe.probe(t.connection), read_state(t.connection)
    found = fleet.each(targets, look, parallel)
    plans, rows = [], []
    for t in targets:
        got = found[t.name]
        if isinstance(got, BaseException):
            rows.append({"host": t.name, "status": "UNREACHABLE", "error": str(got)})
        elif got[1] is None:
            rows.append({"host": t.name, "status": "nothing to roll back", "error": ""})
        elif got[1][0] != run_id:
            plans.append(plan.HostPlan(t.name, got[0], error=(
                f"the last restore on this host is {got[1][0]}, not {run_id} from this set")))
        else:
            plans.append(rollback_plan(got[0], *got[1]))
    if dry_run or any(p.error for p in plans) or any(r["status"] == "UNREACHABLE" for r in rows):
        say(plan.render(plans))
        if not dry_run:
            say(report.table(rows + [{"host": p.host, "status": "REFUSED", "error": p.error} for p in plans
                                     if p.error]))
            return 2
        return 0
    conns = {t.name: t.connection for t in targets}
    locks, busy = hostlock.acquire_all([by_name[p.host] for p in plans], "rollback", parallel)
    try:
        if busy:
            say("rollback refused, nothing was touched: " + "; ".join(str(e) for e in busy.values()))
            return 2
        fo = runner.run_phases([(conns[p.host], p) for p in plans], PHASES, {}, parallel, say)
    finally:
        hostlock.release_all(locks)
    for p in plans:
        o = fo.hosts[p.host]
        status = "rolled back" if o.ok and not fo.failed_phase else "SERVICES DOWN" if o.undo_failures else "FAILED"
        rows.append({"host": p.host, "status": status, "error": str(o.error or "")})
        for cmd in o.undo_failures:
            say(f"!!! {p.host}: could not start units again. Run on {p.host} by hand: sudo {cmd}")
    say(report.table(rows))
    return 0 if all(r["status"] in ("rolled back", "nothing to roll back") for r in rows) else 1
