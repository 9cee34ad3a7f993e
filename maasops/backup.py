"""``maasops backup``: probe, plan, run every host in parallel, describe what arrived, write the set, report.

One host failing never stops the others; the set is renamed from ``.partial``
only when every host's files arrived and matched their checksums, and only when
it holds the deployment's database (or the operator said, with
``--database-elsewhere``, that the database is backed up another way: the set
records it). Ctrl-C and SIGTERM cancel the run: each host's pending undos
(starting its units again) run before maasops exits.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from maasops import (
    __version__,
    backup_plan,
    backupset,
    crypto,
    fleet,
    hostlock,
    output,
    plan,
    probe,
    reposet,
    runner,
    signing,
    stream,
)
from maasops import manifest as mf
from maasops import repo as restic
from maasops.backup_plan import BackupOptions, BackupSpec
from maasops.errors import RemoteError
from maasops.parts import database, images
from maasops.plan import Step, StepId
from maasops.progress import QUIET, Transfers
from maasops.repo import Repo, RepoError
from maasops.results import FAILED, INTERRUPTED, OK, PARTIAL, REFUSED, HostResult, RunResult, refused

NO_DATABASE = ("no host of this backup yields the deployment's database: add the region (or database host) that "
               "holds it, or pass --database-elsewhere if you back the database up another way (the set records it)")


def _stored(got: stream.Streamed, encrypted: bool) -> dict:
    """Checksums of a fetched file as stored, and of its plaintext when it is encrypted."""
    return {"size": got.size, "sha256": got.sha256, "encryption": "age" if encrypted else None,
            "plain_sha256": got.plain_sha256 if encrypted else None}


def _dump_record(hp: plan.HostPlan, spec: BackupSpec, got: stream.Streamed) -> mf.Dump:
    d = spec.dump
    last, _, _, plain = got.inspected
    if last != database.completion(d.kind):
        raise RemoteError(hp.host, "verify dump", f"dump {database.problem(d.kind, last)}",
                          "check the database server's log and disk, then run the backup again")
    return mf.Dump(d.file, spec.compress, **_stored(got, bool(spec.encrypt_to)), kind=d.kind, database=d.database,
                   how=d.how, last_line=last, uncompressed_size=plain)


def _images_record(hp: plan.HostPlan, outcome: runner.HostOutcome, got: stream.Streamed) -> mf.Images:
    spec: BackupSpec = hp.spec
    state = outcome.step_record(StepId.IMAGES_STATE)
    listing, _, _ = got.inspected
    found = images.host_record(spec.images, state.output if state else "", got.size,
                               _stored(got, bool(spec.encrypt_to)), listing, spec.compress)
    if found is None:
        raise RemoteError(hp.host, "image-storage", "the host sent no images, yet its image-storage is not as the "
                          "last set recorded it (or its fingerprint could not be read)",
                          "run the backup again; if it says this again, look at the host's image-storage")
    return found


def host_manifest(hp: plan.HostPlan, outcome: runner.HostOutcome, address: str,
                  window: tuple[float, float] | None) -> mf.HostManifest:
    """Describe what arrived (listing and dump tail were read as it streamed); RemoteError if the dump is cut."""
    facts, spec = hp.facts, hp.spec
    fetched = {r.fetched.path.name: r.fetched for r in outcome.records if r.fetched}
    got = fetched[spec.archive.file]
    files, _, _ = got.inspected
    archive = mf.Archive(spec.archive.file, spec.compress, **_stored(got, bool(spec.encrypt_to)),
                         trees=spec.archive.trees, actual_trees=spec.archive.actual_trees,
                         excluded=spec.archive.excluded, files=tuple(mf.Member(**m) for m in files))
    sessions = outcome.step_record(StepId.DB_CHECK)
    return mf.HostManifest(
        host=hp.host, address=address, install=facts.install, maas_version=facts.version, layout=spec.layout,
        roles=facts.roles, snap_revision=facts.snap_revision, snap_data=facts.snap_data, snap_mode=facts.snap_mode,
        maas_url=facts.maas_url, database=database.host_record(facts.database) if facts.database else None,
        vault=facts.vault, notes=hp.notes, unit_states=facts.unit_states, archive=archive,
        dump=_dump_record(hp, spec, fetched[spec.dump.file]) if spec.dump else None,
        images=_images_record(hp, outcome, fetched[spec.images.file]) if spec.images else None,
        other_db_sessions=sessions.output if sessions else None,
        downtime=mf.Downtime(spec.units, window[0], window[1], round(window[1] - window[0], 3)) if window else None,
        tool_version=__version__)


def stream_options(hp: plan.HostPlan, idle: float, store: stream.Store | None = None) -> runner.StreamOptions:
    """Per fetch step: read the archive's listing or the dump's tail as it streams; encrypt if asked; limits;
    where the bytes go (``store``: a restic snapshot each; default: files in the set's directory)."""
    spec: BackupSpec = hp.spec
    extra = {"encrypt_to": crypto.recipients(spec.encrypt_to)} if spec.encrypt_to else {}
    extra |= {"store": store} if store else {}

    def options(step: Step) -> dict:
        limits = stream.Limits(idle, step.limit)
        if step.id == StepId.ARCHIVE:
            return {"inspect": lambda src: backupset.read_archive(src, spec.compress, step.limit), "limits": limits,
                    **extra}
        if step.id == StepId.IMAGES:
            return {"inspect": lambda src: images.read(src, spec.compress, step.limit), "limits": limits, **extra}
        read = database.reader(spec.dump.kind, spec.dump.how)
        return {"inspect": lambda src: read(src, spec.compress, step.limit), "limits": limits, **extra}
    return options


def _run_host(target: fleet.Target, hp: plan.HostPlan, set_dir: Path, cancel: threading.Event, idle: float,
              transfers: Transfers, store: stream.Store | None) -> tuple[HostResult, dict[str, str] | None]:
    """Back up one host; its result line and, when it succeeded, the sha256 of each of its files as stored."""
    started = time.time()
    host_dir = backupset.private_dir(set_dir / hp.host)
    outcome = runner.run_plan(target.connection, hp, host_dir, cancel, transfers, stream_options(hp, idle, store))
    window = runner.downtime(outcome)
    result = HostResult(hp.host, "ok", duration=time.time() - started,
                        downtime=window[1] - window[0] if window else None, manual=outcome.undo_failures)
    files = None
    if outcome.error:
        result.status, result.error = "FAILED", str(outcome.error)
    elif outcome.cancelled:
        result.status, result.error = "INTERRUPTED", "cancelled by the user; units started again"
    else:
        try:
            manifest = host_manifest(hp, outcome, target.connection.host, window)
            backupset.write_json(host_dir / mf.MANIFEST, manifest.to_json())
            fetched = [r.fetched for r in outcome.records if r.fetched]
            result.size = sum(f.size for f in fetched) + (host_dir / mf.MANIFEST).stat().st_size
            files = {f.file: f.sha256 for f in manifest.stored()} | {  # a reused images part: the earlier bytes'
                mf.MANIFEST: backupset.file_sha256(host_dir / mf.MANIFEST)}
        except RemoteError as exc:
            result.status, result.error = "FAILED", str(exc)
        except OSError as exc:
            result.status, result.error = "FAILED", str(RemoteError(
                hp.host, "write manifest", f"writing {host_dir.name}/{mf.MANIFEST} on this machine failed: "
                f"{exc.strerror}", stream.LOCAL_FULL_HINT))
    if outcome.undo_failures:
        result.status = "SERVICES DOWN"
        result.error = (result.error + "; " if result.error else "") + "could not start units again"
    return result, files


def plans_for(targets: list[fleet.Target], facts: dict[str, probe.HostFacts], options: BackupOptions,
              dump_from: str | None, say: Callable[[str], None],
              previous_images: dict[str, mf.Images] | None = None) -> tuple[dict[str, plan.HostPlan], dict[str, str]]:
    """Every probed host's plan and the fleet's dump owner (DatabaseConflict when the fleet has two databases).

    ``previous_images`` (a backup into a repository, else None): image-storage goes as its own part, not sent
    where it is as this record of the last set says."""
    owners = database.dump_owners(facts, {t.name: t.connection.host for t in targets}, dump_from)
    split = previous_images is not None
    plans = {n: backup_plan.backup_plan(f, owners.get(n), options, split, (previous_images or {}).get(n))
             for n, f in facts.items()}
    for t in targets:
        if t.name in plans:
            diffs = tuple(probe.differences(t.declared, facts[t.name]))
            plans[t.name] = replace(plans[t.name], notes=plans[t.name].notes + diffs)
            for d in diffs:
                say(f"warning: {t.name}: {d}")
    return plans, owners


@dataclass(frozen=True)
class BackupRequest:
    """One backup as asked for: the fleet, where the set goes, the options and who signs it."""

    targets: list[fleet.Target]
    deployment: str
    backup_dir: Path
    options: BackupOptions = field(default_factory=BackupOptions)
    sign_key: Path | None = None  # None: the user's default SSH key
    parallel: int = fleet.PARALLEL
    dump_from: str | None = None
    idle: float = stream.IDLE_TIMEOUT
    repo: Repo | None = None  # the set goes into this restic repository (backup_dir is then not used)


def _dry_run(plans: dict[str, plan.HostPlan], results: dict[str, HostResult], say: Callable[[str], None]) -> RunResult:
    say(plan.render(list(plans.values())))
    for r in results.values():
        if r.status == "UNREACHABLE":
            say(f"== {r.host}\n   UNREACHABLE: {r.error}")
    return RunResult("backup", FAILED if results else OK, results, details={"status": "planned"})


def estimated(plans: dict[str, plan.HostPlan], previous: Path | None) -> dict[str, plan.HostPlan]:
    """The plans, each fetch expected to carry what the same file of the ``previous`` set holds (when it has one)."""
    if previous is None:
        return plans

    def step(name: str, s: Step) -> Step:
        size = backupset.file_size(previous / name / s.fetch) if s.fetch else None
        return replace(s, estimate=size) if size is not None else s
    return {n: replace(hp, steps=tuple(step(n, s) for s in hp.steps)) for n, hp in plans.items()}


def _ready(req: BackupRequest) -> Path:
    """The signing key, proven by signing a scrap; the repository, created if there is none yet (``--repo``).

    Both are checked before any host is touched (SigningError, RepoError).
    """
    key = signing.signing_key(req.sign_key)
    signing.can_sign(key)
    if req.repo is not None:
        restic.ensure(req.repo)
    return key


def _previous_images(req: BackupRequest) -> dict[str, mf.Images] | None:
    """With ``--repo``: what the repository's last set of the deployment holds of each host's image-storage
    (none when the repository has no set yet, or cannot say: then the images are sent)."""
    if req.repo is None:
        return None
    try:
        return reposet.reusable_images(req.repo, req.deployment)
    except RepoError:
        return {}


def run(req: BackupRequest, dry_run: bool = False, say: Callable[[str], None] = print,
        transfers: Transfers = QUIET) -> RunResult:
    """Back up every target into one signed set; print the plan (dry run) or a table; streams go to ``transfers``."""
    key = None
    if not dry_run:
        try:
            key = _ready(req)
        except (signing.SigningError, RepoError) as exc:
            say(f"backup refused, nothing was touched: {exc}")
            return refused("backup", str(exc))
    probed = fleet.probe_all(req.targets, req.parallel)
    facts = {n: f for n, f in probed.items() if isinstance(f, probe.HostFacts)}
    results = {n: HostResult(n, "UNREACHABLE", error=str(e)) for n, e in probed.items()
               if not isinstance(e, probe.HostFacts)}
    try:
        plans, owners = plans_for(req.targets, facts, req.options, req.dump_from, say, _previous_images(req))
    except database.DatabaseConflict as exc:
        say(f"backup refused, nothing was touched: {exc}")
        return refused("backup", str(exc))
    results.update({n: HostResult(n, "REFUSED", error=p.error) for n, p in plans.items() if p.error})
    if dry_run:
        return _dry_run(plans, results, say)
    if not owners and not req.options.database_elsewhere:
        if results:
            say(output.table(_rows(results)))
        why = _no_database(results, bool(facts))
        say(f"backup refused, nothing was touched: {why}")
        return refused("backup", why, hosts={n: r.to_json() for n, r in results.items()})
    return _lock_and_run(req, estimated(plans, backupset.newest_complete(req.backup_dir, req.deployment)), results,
                         owners, key, say, transfers)


def _no_database(results: dict[str, HostResult], reached: bool) -> str:
    """Why no host yields the database: the hosts that could not be reached first, when there are any."""
    unreachable = [r.error for r in results.values() if r.status == "UNREACHABLE"]
    if not unreachable:
        return NO_DATABASE
    return ("; ".join(sorted(unreachable)) + (f"; so {NO_DATABASE}" if reached else "; no host could be reached"))


def _lock_and_run(req: BackupRequest, plans: dict[str, plan.HostPlan], results: dict[str, HostResult],
                  owners: dict[str, str], key: Path, say: Callable[[str], None], transfers: Transfers) -> RunResult:
    """Take each runnable host's lock (a busy host is refused), run the locked ones, release every lock."""
    runnable = [(t, plans[t.name]) for t in req.targets if t.name in plans and not plans[t.name].error]
    locks, busy = hostlock.acquire_all([t for t, _ in runnable], "backup", req.parallel)
    results.update({n: HostResult(n, "REFUSED", error=str(e)) for n, e in busy.items()})
    try:
        runnable = [(t, hp) for t, hp in runnable if t.name in locks]
        return _run_locked(req, runnable, results, owners, key, say, transfers)
    finally:
        hostlock.release_all(locks)


def _recorded(options: BackupOptions) -> mf.SetOptions:
    """The options as the set manifest records them (the operator's password file named, never read)."""
    login = options.credentials
    return mf.SetOptions(**{**asdict(options), "credentials": mf.OperatorLogin(login.user, login.password_file)
                                                              if login else None})


def _set_manifest(deployment: str, options: BackupOptions, owners: dict[str, str], results: dict[str, HostResult],
                  files: dict[str, dict[str, str]], complete: bool) -> mf.SetManifest:
    hosts = {n: mf.HostEntry(r.status, r.error, files.get(n, {}).get(mf.MANIFEST),
                             {k: v for k, v in files.get(n, {}).items() if k != mf.MANIFEST})
             for n, r in sorted(results.items())}
    dumped_by = next(iter(owners), None)
    return mf.SetManifest(deployment, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), complete,
                          _recorded(options), owners, mf.DatabaseRecord(dumped_by, options.database_elsewhere), hosts,
                          tool_version=__version__)


def _store(req: BackupRequest, hp: plan.HostPlan, stamp: str) -> stream.Store | None:
    """Where a host's files go: a restic snapshot each (``--repo``), else files in the set's directory."""
    if req.repo is None:
        return None
    return lambda dest: reposet.file_sink(req.repo, req.deployment, stamp, hp.host, dest.name, hp.facts.version)


def _run_hosts(req: BackupRequest, runnable: list[tuple[fleet.Target, plan.HostPlan]], set_dir: Path,
               results: dict[str, HostResult], say: Callable[[str], None],
               transfers: Transfers) -> tuple[bool, dict[str, dict[str, str]]]:
    """Back up every runnable host in parallel; returns whether it was interrupted, and each host's checksums."""
    cancel = threading.Event()
    files: dict[str, dict[str, str]] = {}
    stamp = set_dir.name.removesuffix(backupset.PARTIAL)
    with runner.sigterm_as_interrupt(), ThreadPoolExecutor(max_workers=max(1, req.parallel)) as pool:
        futures = {pool.submit(_run_host, t, hp, set_dir, cancel, req.idle, transfers, _store(req, hp, stamp)): t.name
                   for t, hp in runnable}
        interrupted = runner.wait_all(set(futures), cancel, say)
        for fut, name in futures.items():
            results[name], host_files = fut.result()
            if host_files:
                files[name] = host_files
    return interrupted, files


def _seal(set_dir: Path, sm: mf.SetManifest, key: Path, say: Callable[[str], None]) -> bool:
    """Write the set manifest and sign it; False (said why) when either fails: the set stays .partial."""
    try:
        backupset.write_json(set_dir / mf.MANIFEST, sm.to_json())
        if sm.complete:
            signing.sign(set_dir / mf.MANIFEST, key)
        return sm.complete
    except OSError as exc:
        say(f"!!! writing the set's {mf.MANIFEST} on this machine failed: {exc.strerror}; "
            "the set stays incomplete (.partial)")
    except signing.SigningError as exc:
        say(f"!!! {exc}; the set stays incomplete (.partial)")
    return False


def _run_locked(req: BackupRequest, runnable: list[tuple[fleet.Target, plan.HostPlan]],
                results: dict[str, HostResult], owners: dict[str, str], key: Path,
                say: Callable[[str], None], transfers: Transfers) -> RunResult:
    if not runnable:
        say(output.table(_rows(results)))
        say("\nbackup refused: no host could be backed up; nothing was touched")
        return RunResult("backup", REFUSED, results, error="no host could be backed up")
    with _set_home(req) as home:
        set_dir = backupset.new_set(home, req.deployment)
        interrupted, files = _run_hosts(req, runnable, set_dir, results, say, transfers)
        options = req.options
        has_db = options.database_elsewhere or any(results.get(h) and results[h].status == "ok" for h in owners)
        complete = not interrupted and bool(results) and all(r.status == "ok" for r in results.values()) and has_db
        ok = _seal(set_dir, _set_manifest(req.deployment, options, owners, results, files, complete), key, say)
        final = backupset.complete(set_dir) if ok else set_dir
        details = {"deployment": req.deployment, "database_elsewhere": options.database_elsewhere}
        if req.repo is not None:
            ok, details["repo_set"] = _push(req, final, ok, results, say)
            details["repo"] = req.repo.location
    _print_report(results, f"{req.repo} {details['repo_set']}" if req.repo else final, ok, say)
    done = {r.status == "ok" for r in results.values()}
    code = INTERRUPTED if interrupted else OK if ok else PARTIAL if done == {True, False} else FAILED  # restic's 3
    return RunResult("backup", code, results, None if req.repo else final, details=details)


@contextmanager
def _set_home(req: BackupRequest) -> Iterator[Path]:
    """Where the set's directory is made: the backup dir, or (``--repo``) a private temporary directory that
    holds only its manifests until they are stored beside its files in the repository."""
    if req.repo is None:
        yield req.backup_dir
        return
    with tempfile.TemporaryDirectory(prefix="maasops-set-") as tmp:
        yield Path(tmp)


def _push(req: BackupRequest, set_dir: Path, ok: bool, results: dict[str, HostResult],
          say: Callable[[str], None]) -> tuple[bool, str]:
    """Store the set's manifests in the repository (the set's last snapshot); whether the set is complete there,
    and its name there (``deployment/time``)."""
    stamp = set_dir.name.removesuffix(backupset.PARTIAL)
    name = f"{req.deployment}/{stamp}"
    try:
        reposet.push_manifests(req.repo, set_dir, req.deployment, stamp, ok, sum(r.size for r in results.values()))
    except RepoError as exc:
        say(f"!!! storing the set's manifests in the repository failed: {exc}; the set is incomplete there")
        return False, name
    return ok, name


def _rows(results: dict[str, HostResult]) -> list[dict]:
    return [{"host": r.host, "status": r.status, "size": output.human_bytes(r.size) if r.size else "",
             "duration": f"{r.duration:.1f}s" if r.duration else "",
             "downtime": f"{r.downtime:.1f}s" if r.downtime is not None else "",
             "error": r.error} for r in sorted(results.values(), key=lambda r: r.host)]


def _print_report(results: dict[str, HostResult], where: Path | str, ok: bool, say: Callable[[str], None]) -> None:
    for r in results.values():
        for cmd in r.manual:
            say(f"!!! {r.host}: MAAS units were NOT started again. Run on {r.host} by hand: sudo {cmd}")
    say(output.table(_rows(results)))
    incomplete = "kept as .partial" if isinstance(where, Path) else "tagged state=incomplete"
    say(f"\nbackup set: {where}" + ("" if ok else f"  (INCOMPLETE: {incomplete})"))
    sys.stdout.flush()
