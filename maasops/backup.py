"""``fab backup``: probe, plan, run every host in parallel, verify, write the set, report.

One host failing never stops the others; the set is renamed from ``.partial``
only when every host's files arrived and matched their checksums. Ctrl-C and
SIGTERM cancel the run: each host's pending undos (starting its units again)
run before maasops exits.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from maasops import __version__, backup_plan, backupset, crypto, fleet, hostlock, plan, probe, report, runner, stream
from maasops.remote import RemoteError


@dataclass
class HostResult:
    """A host's line in the final table."""

    host: str
    status: str
    size: int = 0
    duration: float = 0.0
    downtime: float | None = None
    error: str = ""
    manual: list[str] = field(default_factory=list)


def _stored(got, encrypted: bool) -> dict:
    """Checksums of a fetched file as stored, and of its plaintext when it is encrypted."""
    out = {"size": got.size, "sha256": got.sha256, "encryption": "age" if encrypted else None}
    if encrypted:
        out["plain_sha256"] = got.plain_sha256
    return out


def _host_manifest(hp: plan.HostPlan, outcome: runner.HostOutcome, target: fleet.Target,
                   window: tuple[float, float] | None) -> dict:
    """Describe what arrived (listing and dump tail were read as it streamed); RemoteError if the dump is cut."""
    facts = hp.facts
    meta = hp.meta
    compress = meta["compress"]
    encrypted = bool(meta.get("encrypt_to"))
    manifest: dict = {
        "tool": "maasops", "tool_version": __version__, "host": hp.host, "address": target.connection.host,
        "install": facts.install, "maas_version": facts.version, "layout": meta["layout"],
        "roles": list(facts.roles), "snap_revision": facts.snap_revision, "snap_data": facts.snap_data,
        "snap_mode": facts.snap_mode, "maas_url": facts.maas_url,
        "database": facts.database.__dict__ if facts.database else None, "vault": facts.vault,
        "notes": list(hp.notes), "unit_states": facts.unit_states,
    }
    arch = meta["archive"]
    fetched = {r.fetched.path.name: r.fetched for r in outcome.records if r.fetched}
    got = fetched[arch["file"]]
    files, _, _ = got.inspected
    manifest["archive"] = {**arch, "compression": compress, **_stored(got, encrypted), "files": files}
    if "dump" in meta:
        d = meta["dump"]
        got = fetched[d["file"]]
        last, _, _, plain = got.inspected
        if last != backupset.completion_line(d["kind"]):
            raise RemoteError(hp.host, "verify dump", f"dump is incomplete (last line {last[:60]!r})",
                              "check the database server's log and disk, then run the backup again")
        manifest["dump"] = {**d, "compression": compress, **_stored(got, encrypted), "last_line": last,
                            "uncompressed_size": plain}
    sessions = outcome.record(backup_plan.SESSIONS_STEP)
    if sessions:
        manifest["other_db_sessions"] = sessions.output
    if window:
        manifest["downtime"] = {"units": meta.get("units", []), "stopped_at": window[0],
                                "started_at": window[1], "seconds": round(window[1] - window[0], 3)}
    return manifest


def downloads(hp: plan.HostPlan) -> dict[str, dict]:
    """Per fetched file: read the archive's listing or the dump's tail as it streams; encrypt if asked."""
    meta = hp.meta
    compress = meta["compress"]
    extra = {"encrypt_to": crypto.recipients(meta["encrypt_to"])} if meta.get("encrypt_to") else {}
    out = {meta["archive"]["file"]: {"inspect": lambda src: backupset.read_archive(src, compress), **extra}}
    if "dump" in meta:
        out[meta["dump"]["file"]] = {"inspect": lambda src: backupset.read_dump(src, compress), **extra}
    return out


def _run_host(target: fleet.Target, hp: plan.HostPlan, set_dir: Path, cancel: threading.Event,
              say: Callable[[str], None]) -> tuple[HostResult, dict | None]:
    started = time.time()
    host_dir = backupset.private_dir(set_dir / hp.host)
    outcome = runner.run_plan(target.connection, hp, host_dir, cancel, say, downloads(hp))
    window = runner.downtime(outcome)
    result = HostResult(hp.host, "ok", duration=time.time() - started,
                        downtime=window[1] - window[0] if window else None, manual=outcome.undo_failures)
    manifest = None
    if outcome.error:
        result.status, result.error = "FAILED", str(outcome.error)
    elif outcome.cancelled:
        result.status, result.error = "INTERRUPTED", "cancelled by the user; units started again"
    else:
        try:
            manifest = _host_manifest(hp, outcome, target, window)
            backupset.write_json(host_dir / backupset.MANIFEST, manifest)
            result.size = sum(p.stat().st_size for p in host_dir.iterdir())
        except RemoteError as exc:
            result.status, result.error = "FAILED", str(exc)
        except OSError as exc:
            manifest = None
            result.status, result.error = "FAILED", str(RemoteError(
                hp.host, "write manifest", f"writing {host_dir.name}/{backupset.MANIFEST} on this machine failed: "
                f"{exc.strerror}", stream.LOCAL_FULL_HINT))
    if outcome.undo_failures:
        result.status = "SERVICES DOWN"
        result.error = (result.error + "; " if result.error else "") + "could not start units again"
    return result, manifest


@dataclass
class BackupRun:
    """What a backup run produced: its exit code, the set directory (None for a dry run) and each host's line."""

    code: int
    set_dir: Path | None
    results: dict[str, HostResult]


def run(targets: list[fleet.Target], deployment: str, backup_dir: Path, options: backup_plan.BackupOptions,
        parallel: int = 8, dry_run: bool = False, say: Callable[[str], None] = print) -> BackupRun:
    """Back up every target into one set; print the plan (dry run) or a table."""
    probed = fleet.each(targets, lambda t: probe.probe(t.connection), parallel)
    facts = {n: f for n, f in probed.items() if isinstance(f, probe.HostFacts)}
    owners = backup_plan.dump_owners(facts, {t.name: t.connection.host for t in targets})
    plans = {n: backup_plan.backup_plan(f, owners.get(n), options) for n, f in facts.items()}
    for t in targets:
        if t.name in plans:
            diffs = tuple(probe.differences(t.declared, facts[t.name]))
            plans[t.name] = replace(plans[t.name], notes=plans[t.name].notes + diffs)
            for d in diffs:
                say(f"warning: {t.name}: {d}")
    results = {n: HostResult(n, "UNREACHABLE", error=str(e)) for n, e in probed.items()
               if not isinstance(e, probe.HostFacts)}
    results.update({n: HostResult(n, "REFUSED", error=p.error) for n, p in plans.items() if p.error})
    if dry_run:
        say(plan.render([plans[n] for n in plans]))
        for r in results.values():
            if r.status == "UNREACHABLE":
                say(f"== {r.host}\n   UNREACHABLE: {r.error}")
        return BackupRun(1 if results else 0, None, results)
    runnable = [(t, plans[t.name]) for t in targets if t.name in plans and not plans[t.name].error]
    locks, busy = hostlock.acquire_all([t for t, _ in runnable], "backup", parallel)
    results.update({n: HostResult(n, "REFUSED", error=str(e)) for n, e in busy.items()})
    runnable = [(t, hp) for t, hp in runnable if t.name in locks]
    try:
        return _run_locked(runnable, results, owners, deployment, backup_dir, options, parallel, say)
    finally:
        hostlock.release_all(locks)


def _run_locked(runnable: list[tuple[fleet.Target, plan.HostPlan]], results: dict[str, HostResult],
                owners: dict[str, str], deployment: str, backup_dir: Path, options: backup_plan.BackupOptions,
                parallel: int, say: Callable[[str], None]) -> BackupRun:
    set_dir = backupset.new_set(backup_dir, deployment)
    cancel = threading.Event()
    host_manifests: dict[str, str] = {}
    with runner.sigterm_as_interrupt(), ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {pool.submit(_run_host, t, hp, set_dir, cancel, say): t.name for t, hp in runnable}
        interrupted = runner.wait_all(set(futures), cancel, say)
        for fut, name in futures.items():
            results[name], manifest = fut.result()
            if manifest:
                host_manifests[name] = backupset.file_sha256(set_dir / name / backupset.MANIFEST)
    ok = not interrupted and all(r.status == "ok" for r in results.values()) and bool(results)
    set_manifest = {
        "tool": "maasops", "tool_version": __version__, "deployment": deployment,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "complete": ok,
        "options": options.__dict__, "dump_owners": owners,
        "hosts": {n: {"status": r.status, "error": r.error, "manifest_sha256": host_manifests.get(n)}
                  for n, r in sorted(results.items())},
    }
    try:
        backupset.write_json(set_dir / backupset.MANIFEST, set_manifest)
    except OSError as exc:
        say(f"!!! writing the set's {backupset.MANIFEST} on this machine failed: {exc.strerror}; "
            "the set stays incomplete (.partial)")
        ok = False
    final = backupset.complete(set_dir) if ok else set_dir
    _print_report(results, final, ok, say)
    return BackupRun(130 if interrupted else 0 if ok else 1, final, results)


def _print_report(results: dict[str, HostResult], set_dir: Path, ok: bool, say: Callable[[str], None]) -> None:
    for r in results.values():
        for cmd in r.manual:
            say(f"!!! {r.host}: MAAS units were NOT started again. Run on {r.host} by hand: sudo {cmd}")
    rows = [{"host": r.host, "status": r.status, "size": report.human_bytes(r.size) if r.size else "",
             "duration": f"{r.duration:.1f}s" if r.duration else "",
             "downtime": f"{r.downtime:.1f}s" if r.downtime is not None else "",
             "error": r.error} for r in sorted(results.values(), key=lambda r: r.host)]
    say(report.table(rows))
    say(f"\nbackup set: {set_dir}" + ("" if ok else "  (INCOMPLETE: kept as .partial)"))
    sys.stdout.flush()
