"""Execute plans: steps in order, undo on every path out; fleet phases with barriers.

A step with ``undo`` pushes it; a later step that ``resolves`` it pops it. When
anything fails or the run is cancelled (Ctrl-C, SIGTERM), the pending undos run
in reverse order, each retried, so services stopped by maasops are started again.
An undo that still fails is reported with the command to run by hand.

A backup runs each host's plan on its own (:func:`run_plan`). A restore runs
phase by phase over the whole fleet (:func:`run_phases`): every host finishes a
phase before the next starts, the first failure anywhere ends the forward run,
and then every host's pending undos run, phase by phase in reverse, so (for
example) the database is reloaded before any region is started again.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fabric import Connection

from maasops import backupset, channel, crypto, stream
from maasops.command import Cmd
from maasops.errors import RemoteError, host_label
from maasops.parts import database
from maasops.plan import STARTS, STOPS, HostPlan, Phase, Send, Step, StepId
from maasops.progress import QUIET, Transfer, Transfers

UNDO_TRIES = 3
StreamOptions = Callable[[Step], dict]  # extra keyword arguments for a step's download or upload


class Cancelled(Exception):
    """The run was interrupted; the host's pending undos run before it ends."""


@dataclass
class StepRecord:
    """What one step (or undo) did and when."""

    id: StepId
    label: str
    started: float
    ended: float
    output: str = ""
    fetched: stream.Streamed | None = None
    sent: stream.Streamed | None = None
    phase: str = ""
    key: str = ""
    undo: bool = False

    def to_json(self) -> dict:
        """What a report keeps of the step."""
        return {"id": str(self.id), "name": self.label, "phase": str(self.phase), "key": self.key,
                "undo": self.undo, "started": self.started, "ended": self.ended}


@dataclass
class Pending:
    """An undo waiting to run unless a later step resolves it."""

    phase: str
    step: StepId
    label: str
    key: str
    command: Cmd
    by_hand: Cmd
    password_file: str | None = None


@dataclass
class HostOutcome:
    """The result of running one host's plan."""

    host: str
    records: list[StepRecord] = field(default_factory=list)
    error: RemoteError | None = None
    cancelled: bool = False
    undone: list[str] = field(default_factory=list)  # labels of the steps whose undo ran
    undo_failures: list[str] = field(default_factory=list)  # commands to run by hand
    pending: list[Pending] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step ran and nothing needed undoing by hand."""
        return self.error is None and not self.cancelled and not self.undo_failures

    def step_record(self, step_id: StepId) -> StepRecord | None:
        """The record of the first step with this id that ran forward."""
        return next((r for r in self.records if r.id == step_id and not r.undo), None)


def _ticker(cancel: threading.Event | _Either, host: str, step: str, transfer: Transfer) -> Callable[[int], None]:
    """A stream's progress callback: hears a cancel between blocks and reports the bytes moved."""
    def tick(done: int) -> None:
        if cancel.is_set():
            raise Cancelled(f"{host}: {step}: interrupted")
        transfer.advanced(done)
    return tick


def expected_size(step: Step) -> tuple[int | None, bool]:
    """(bytes, exact) a stream step will move: the plan's estimate (an archive re-written on the way), else a
    whole plain file's size (or None).

    An encrypted file goes up decrypted, a little smaller than on disk: its size is then an estimate.
    """
    if step.estimate is None and step.send and not step.send.member:
        try:
            size = step.send.files.size(step.send.path) if step.send.files is not None else \
                os.path.getsize(step.send.path)
        except OSError:
            return None, False
        return size, size is not None and not step.send.identity
    return step.estimate, False


def downtime(outcome: HostOutcome) -> tuple[float, float] | None:
    """(first stop, last start) times of a host's run, or None when nothing was stopped."""
    stops = [r.started for r in outcome.records if r.id in STOPS and not r.undo]
    starts = [r.ended for r in outcome.records if r.id in STARTS or (r.undo and r.id in STOPS)]
    if not stops:
        return None
    return min(stops), max(starts) if starts else time.time()


def run_step(c: Connection, step: Step, dest_dir: Path | None, cancel: threading.Event | _Either,
             transfers: Transfers = QUIET, stream_options: StreamOptions | None = None) -> StepRecord:
    """Run one step on the host; a fetch step streams its stdout into ``dest_dir``, a send step its stdin.

    ``stream_options(step)`` gives more keyword arguments for :func:`stream.download` or
    :func:`stream.upload` (encryption, an inspector of the bytes, limits). A stream's
    progress is reported to ``transfers``.
    """
    started = time.time()
    record = StepRecord(step.id, step.label, started, started, phase=step.phase, key=step.key)
    if step.fetch or step.send:
        _stream(c, step, dest_dir, cancel, transfers, stream_options(step) if stream_options else {}, record)
    else:
        result = channel.run(c, step.command, step.label, user="root" if step.sudo else None, check=step.check,
                            hold_work_lock=True, pgpassword=database.password(step.password_file))
        problem = step.judge(result.stdout) if step.judge else None
        if problem:
            raise RemoteError(host_label(c), step.label, problem)
        record.output = result.stdout.strip()
    record.ended = time.time()
    return record


def _stream(c: Connection, step: Step, dest_dir: Path | None, cancel: threading.Event | _Either,
            transfers: Transfers, extra: dict, record: StepRecord) -> None:
    """Run a fetch or send step, its bytes reported to ``transfers`` as they move."""
    host = host_label(c)
    user = "root" if step.sudo else None
    transfer = transfers.started(host, step.label, *expected_size(step))
    tick = _ticker(cancel, host, step.label, transfer)
    ok = False
    try:
        if step.fetch:
            record.fetched = stream.download(c, step.command, dest_dir / step.fetch, step.label, sudo_user=user,
                                             progress=tick, pgpassword=database.password(step.password_file),
                                             **extra)
        else:
            with _open_send(step.send) as src:
                record.sent = stream.upload(c, step.command, src, step.label, sudo_user=user, progress=tick,
                                            **extra)
        ok = True
    finally:
        transfer.ended(ok)


@contextmanager
def _open_send(send: Send) -> Iterator[BinaryIO]:
    """The bytes a send step streams: a file (local, or of a set's files) or one archive member, decrypted on the fly
    if need be."""
    with ExitStack() as stack:
        local = Path(send.path)
        src = stack.enter_context(send.files.open(send.path) if send.files is not None else
                                  backupset.open_in(local.parent, local.name))  # no link followed, either way
        if send.identity:
            src = stack.enter_context(crypto.decrypted(src, crypto.identities(Path(send.identity)),
                                                       Path(send.path).name))
        yield io.BytesIO(backupset.read_member(src, send.member, send.compress)) if send.member else src


class _Either:
    """Set when either event is: a host's steps stop when the run is cancelled or one of them failed."""

    def __init__(self, a: threading.Event, b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def _settle(outcome: HostOutcome, step_label: str, exc: BaseException, lock: threading.Lock) -> None:
    """Record why a host's run ended early (the first reason wins)."""
    with lock:
        if outcome.error or outcome.cancelled:
            return
        if isinstance(exc, Cancelled):
            outcome.cancelled = True
        elif isinstance(exc, RemoteError):
            outcome.error = exc
        else:  # anything else is still this host's failure, with undo
            outcome.error = RemoteError(outcome.host, step_label, f"{type(exc).__name__}: {exc}")


def run_steps(c: Connection, steps: list[Step] | tuple[Step, ...], outcome: HostOutcome, dest_dir: Path | None,
              cancel: threading.Event, transfers: Transfers = QUIET,
              stream_options: StreamOptions | None = None) -> bool:
    """Run ``steps`` in order (``background`` ones alongside), keeping ``outcome.pending`` up to date.

    Returns False when a step failed or the run was cancelled.
    """
    step_label = "run"
    failed = threading.Event()  # a step of this host failed: the others stop at their next block
    either = _Either(cancel, failed)
    lock = threading.Lock()
    background: list[threading.Thread] = []

    def alongside(step: Step) -> None:
        try:
            outcome.records.append(run_step(c, step, dest_dir, either, transfers, stream_options))
        except Exception as exc:
            failed.set()
            _settle(outcome, step.label, exc, lock)
    try:
        for step in steps:
            step_label = step.label
            if either.is_set():
                raise Cancelled(f"{outcome.host}: interrupted before {step.label}")
            if step.background:
                if step.undo:
                    raise ValueError(f"background step {step.label!r} has an undo")
                background.append(threading.Thread(target=alongside, args=(step,), name=f"{outcome.host}: {step.id}"))
                background[-1].start()
                continue
            if step.undo:
                # Pushed before running: a stop that half-worked must still be undone.
                outcome.pending.append(Pending(step.phase, step.id, step.label, step.key, step.undo,
                                               step.by_hand or step.undo, step.password_file))
            outcome.records.append(run_step(c, step, dest_dir, either, transfers, stream_options))
            if step.resolves:
                outcome.pending = [p for p in outcome.pending if p.step not in step.resolves]
    except Exception as exc:
        if not failed.is_set():
            failed.set()
            _settle(outcome, step_label, exc, lock)
    for t in background:
        t.join()
    return outcome.error is None and not outcome.cancelled


def unwind(c: Connection, outcome: HostOutcome, phase: str | None = None) -> None:
    """Run the host's pending undos (of one phase, or all) in reverse, each retried."""
    for p in reversed([p for p in outcome.pending if phase is None or p.phase == phase]):
        outcome.pending.remove(p)
        if _undo(c, p, outcome):
            outcome.undone.append(p.label)
        else:
            outcome.undo_failures.append(str(p.by_hand))


def run_plan(c: Connection, plan: HostPlan, dest_dir: Path, cancel: threading.Event, transfers: Transfers = QUIET,
             stream_options: StreamOptions | None = None) -> HostOutcome:
    """Run ``plan`` on ``c``'s host, undoing what is pending on any failure or cancel."""
    outcome = HostOutcome(plan.host)
    try:
        run_steps(c, plan.steps, outcome, dest_dir, cancel, transfers, stream_options)
    finally:
        unwind(c, outcome)
    return outcome


def _undo(c: Connection, pending: Pending, outcome: HostOutcome) -> bool:
    for attempt in range(UNDO_TRIES):
        try:
            started = time.time()
            channel.run(c, pending.command, f"undo {pending.label}", user="root", hold_work_lock=True,
                       pgpassword=database.password(pending.password_file))
            outcome.records.append(StepRecord(pending.step, f"undo {pending.label}", started, time.time(),
                                              phase=pending.phase, key=pending.key, undo=True))
            return True
        except Exception:  # retried, then reported with the command to run by hand
            time.sleep(0.5 * (attempt + 1))
    return False


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise KeyboardInterrupt.

    SIGINT too, explicitly: a process started in the background inherits SIGINT
    ignored, and a run that stops units must still be cancellable by it.
    """
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_all(futures: list[Future] | set[Future], cancel: threading.Event,
             say: Callable[[str], None] | None = None) -> bool:
    """Wait for every future; Ctrl-C/SIGTERM sets ``cancel`` and keeps waiting. True when interrupted."""
    interrupted = False
    pending = set(futures)
    while pending:
        try:
            _, pending = wait(pending, timeout=0.5)
        except KeyboardInterrupt:
            if not interrupted and say:
                say("interrupted: undoing what is pending (starting stopped units) before exiting ...")
            interrupted = True
            cancel.set()
    return interrupted


@dataclass
class FleetOutcome:
    """The result of a phased fleet run."""

    hosts: dict[str, HostOutcome]
    phases_run: list[str]
    failed_phase: str | None = None
    interrupted: bool = False


def run_phases(items: list[tuple[Connection, HostPlan]], phases: tuple[Phase, ...], parallel: int = 8,
               say: Callable[[str], None] | None = None, transfers: Transfers = QUIET,
               stream_options: dict[str, StreamOptions] | None = None) -> FleetOutcome:
    """Run every host's steps phase by phase; on the first failure, undo every host, phase by phase in reverse.

    ``say`` hears that an interrupt is being handled; ``transfers`` hears the streams' progress.
    """
    cancel = threading.Event()
    fleet = FleetOutcome({p.host: HostOutcome(p.host) for _, p in items}, [])
    with sigterm_as_interrupt(), ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for phase in phases:
            work = [(c, p, [s for s in p.steps if s.phase == phase]) for c, p in items]
            work = [w for w in work if w[2]]
            if not work:
                continue
            if cancel.is_set():
                break
            fleet.phases_run.append(phase)
            futures = [pool.submit(run_steps, c, steps, fleet.hosts[p.host], None, cancel, transfers,
                                   (stream_options or {}).get(p.host)) for c, p, steps in work]
            fleet.interrupted |= wait_all(futures, cancel, say)
            if not all(f.result() for f in futures):
                fleet.failed_phase = phase
                break
        if fleet.interrupted or fleet.failed_phase:
            for phase in reversed(fleet.phases_run):
                futures = [pool.submit(unwind, c, fleet.hosts[p.host], phase) for c, p in items]
                fleet.interrupted |= wait_all(futures, cancel, say)
    return fleet
