"""Execute a host's plan: steps in order, undo on every path out.

A step with ``undo`` pushes it; a later step that ``resolves`` it pops it. When
anything fails or the run is cancelled (Ctrl-C, SIGTERM), the pending undos run
in reverse order, each retried, so services stopped by maasops are started again.
An undo that still fails is reported with the command to run by hand.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fabric import Connection

from maasops import remote, stream
from maasops.plan import HostPlan, Step

UNDO_TRIES = 3


class Cancelled(Exception):
    """The run was interrupted; the host's pending undos run before it ends."""


@dataclass
class StepRecord:
    """What one step did and when."""

    name: str
    started: float
    ended: float
    output: str = ""
    fetched: stream.Streamed | None = None


@dataclass
class HostOutcome:
    """The result of running one host's plan."""

    host: str
    records: list[StepRecord] = field(default_factory=list)
    error: remote.RemoteError | None = None
    cancelled: bool = False
    undo_failures: list[str] = field(default_factory=list)  # commands to run by hand

    @property
    def ok(self) -> bool:
        """True when every step ran and nothing needed undoing by hand."""
        return self.error is None and not self.cancelled and not self.undo_failures

    def record(self, name: str) -> StepRecord | None:
        """The record of a step by name."""
        return next((r for r in self.records if r.name == name), None)


def _progress(cancel: threading.Event, host: str, step: str, report) -> callable:
    last = [time.monotonic()]

    def tick(done: int) -> None:
        if cancel.is_set():
            raise Cancelled(f"{host}: {step}: interrupted")
        now = time.monotonic()
        if report and now - last[0] >= 5:
            last[0] = now
            report(f"{host}: {step}: {done / 1048576:.1f} MiB")
    return tick


def run_step(c: Connection, step: Step, dest_dir: Path, cancel: threading.Event, report=None) -> StepRecord:
    """Run one step on the host; a fetch step streams its stdout into ``dest_dir``."""
    host = remote.host_label(c)
    started = time.time()
    if step.fetch:
        got = stream.download(c, step.command, dest_dir / step.fetch, step.name, sudo_user=step.user,
                              progress=_progress(cancel, host, step.name, report))
        return StepRecord(step.name, started, time.time(), fetched=got)
    result = remote.run(c, step.command, step.name, user=step.user, check=step.check)
    return StepRecord(step.name, started, time.time(), output=result.stdout.strip())


def run_plan(c: Connection, plan: HostPlan, dest_dir: Path, cancel: threading.Event, report=None) -> HostOutcome:
    """Run ``plan`` on ``c``'s host, undoing what is pending on any failure or cancel."""
    outcome = HostOutcome(plan.host)
    pending: list[tuple[str, str]] = []  # (step name, undo command)
    try:
        for step in plan.steps:
            if cancel.is_set():
                raise Cancelled(f"{plan.host}: interrupted before {step.name}")
            if step.undo:
                # Pushed before running: a stop that half-worked must still be undone.
                pending.append((step.name, step.undo))
            outcome.records.append(run_step(c, step, dest_dir, cancel, report))
            if step.resolves:
                pending = [p for p in pending if p[0] != step.resolves]
    except Cancelled:
        outcome.cancelled = True
    except remote.RemoteError as exc:
        outcome.error = exc
    except Exception as exc:  # anything else is still this host's failure, with undo
        outcome.error = remote.RemoteError(plan.host, "run", f"{type(exc).__name__}: {exc}")
    finally:
        for name, undo in reversed(pending):
            if not _undo(c, name, undo, outcome):
                outcome.undo_failures.append(undo)
    return outcome


def _undo(c: Connection, name: str, command: str, outcome: HostOutcome) -> bool:
    for attempt in range(UNDO_TRIES):
        try:
            started = time.time()
            remote.run(c, command, f"undo {name}", user="root")
            outcome.records.append(StepRecord(f"undo {name}", started, time.time()))
            return True
        except Exception:  # retried, then reported with the command to run by hand
            time.sleep(0.5 * (attempt + 1))
    return False
