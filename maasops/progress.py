"""What a run tells about the bytes it moves, and how that is drawn for a person.

A run reports its transfers as events (a transfer starts, advances, ends) to a
:class:`Transfers`; the runner reports them and draws nothing. :data:`QUIET` ignores
them (a run given no renderer is quiet); :class:`Lines` and :class:`Bars` render them
(plain lines in a log, bars on a terminal), and :func:`for_output` picks one (nothing
with ``--json``). A transfer is shown only once it has lasted :data:`SHOW_AFTER`
seconds (a small file comes and goes unseen), with its host, bytes so far, rate and,
when its size is known or estimated, the time left. A shown transfer ends with one
line saying how much moved and how fast, which stays in the scrollback or the log.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Column
from rich.text import Text

from maasops.output import Output, human_bytes

SHOW_AFTER = 2.0  # seconds a transfer runs before it is shown
LINE_EVERY = 10.0  # seconds between a transfer's plain lines
DRAW_EVERY = 0.1  # seconds between a transfer's updates of its bar
BAR_WIDTH = 20
Clock = Callable[[], float]


class Transfer:
    """One stream's events (this base ignores them)."""

    def advanced(self, done: int) -> None:
        """``done`` bytes have moved so far (also called while the stream is quiet, with the same count)."""

    def ended(self, ok: bool) -> None:
        """The stream is over: ``ok`` when every byte arrived."""


class Transfers:
    """Where a run reports its streams (this base reports them nowhere); a context manager for its renderer."""

    def started(self, host: str, label: str, size: int | None = None, exact: bool = False) -> Transfer:
        """A stream began on ``host``: ``size`` bytes when known (``exact``) or expected (an estimate), else None."""
        return Transfer()

    def __enter__(self) -> Transfers:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


QUIET = Transfers()


def amount(done: int, size: int | None, exact: bool) -> str:
    """'12.0 MiB of 25.0 MiB', 'of ~25.0 MiB' for an estimate, or '12.0 MiB' when the size is unknown."""
    if size is None:
        return human_bytes(done)
    return f"{human_bytes(done)} of {'' if exact else '~'}{human_bytes(size)}"


def clock_time(seconds: float) -> str:
    """3725 -> '1:02:05'."""
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02}:{s % 60:02}"


def time_left(done: int, size: int | None, exact: bool, rate: float) -> str:
    """'ETA 0:00:11' ('about' for an estimate), or '' when the size is unknown, reached, or nothing moves."""
    if size is None or rate <= 0 or done >= size:
        return ""
    return f"ETA {'' if exact else 'about '}{clock_time((size - done) / rate)}"


def summary(name: str, done: int, seconds: float, ok: bool) -> str:
    """The line a shown transfer ends with."""
    rate = human_bytes(done / seconds) if seconds > 0 else "-"
    return f"{name}: {human_bytes(done)} in {seconds:.1f}s ({rate}/s)" + ("" if ok else ", stopped")


class _Line(Transfer):
    """A transfer as plain lines: one after SHOW_AFTER, one every LINE_EVERY, one at the end."""

    def __init__(self, say: Callable[[str], None], name: str, size: int | None, exact: bool, clock: Clock):
        self.say, self.name, self.size, self.exact, self.clock = say, name, size, exact, clock
        self.started = clock()
        self.due = self.started + SHOW_AFTER
        self.done = 0
        self.shown = False

    def advanced(self, done: int) -> None:
        self.done = done
        now = self.clock()
        if now < self.due:
            return
        self.due, self.shown = now + LINE_EVERY, True
        rate = done / (now - self.started)
        parts = [amount(done, self.size, self.exact), f"{human_bytes(rate)}/s",
                 time_left(done, self.size, self.exact, rate)]
        self.say(f"{self.name}: " + ", ".join(p for p in parts if p))

    def ended(self, ok: bool) -> None:
        if self.shown:
            self.say(summary(self.name, self.done, self.clock() - self.started, ok))


class Lines(Transfers):
    """Transfers as plain periodic lines, for a log or a pipe."""

    def __init__(self, say: Callable[[str], None], clock: Clock = time.monotonic):
        self.say, self.clock = say, clock

    def started(self, host: str, label: str, size: int | None = None, exact: bool = False) -> Transfer:
        """A plain-line transfer."""
        return _Line(self.say, f"{host}: {label}", size, exact, self.clock)


class _Column(ProgressColumn):
    """One column of a bar's numbers, computed from the task's fields and rich's rate estimate."""

    def __init__(self, render: Callable[[Task], str]):
        super().__init__(table_column=Column(no_wrap=True, justify="right"))
        self.text = render

    def render(self, task: Task) -> Text:
        return Text(self.text(task))


def _amount(task: Task) -> str:
    done, size = int(task.completed), task.fields["size"]
    if size is None:
        return human_bytes(done)
    return f"{human_bytes(done)}/{'' if task.fields['exact'] else '~'}{human_bytes(size)}"


def _rate(task: Task) -> str:
    return f"{human_bytes(task.speed)}/s" if task.speed else ""


def _left(task: Task) -> str:
    if task.fields["size"] is None or not task.speed or task.completed >= task.fields["size"]:
        return ""
    return ("" if task.fields["exact"] else "~") + clock_time((task.fields["size"] - task.completed) / task.speed)


class _Bar(Transfer):
    """A transfer as a rich progress bar, drawn once it has lasted SHOW_AFTER."""

    def __init__(self, owner: Bars, task: TaskID, name: str, size: int | None, exact: bool):
        self.owner, self.task, self.name, self.size, self.exact = owner, task, name, size, exact
        self.started = owner.clock()
        self.drawn = float("-inf")
        self.done = 0
        self.shown = False

    def advanced(self, done: int) -> None:
        self.done = done
        now = self.owner.clock()
        if now - self.drawn < DRAW_EVERY:
            return
        self.drawn = now
        if not self.shown and now - self.started >= SHOW_AFTER:
            self.shown = True
            self.owner.show(self.task)
        self.owner.progress.update(self.task, completed=done)

    def ended(self, ok: bool) -> None:
        line = summary(self.name, self.done, self.owner.clock() - self.started, ok) if self.shown else None
        self.owner.finish(self.task, line)


class Bars(Transfers):
    """Transfers as bars on a terminal (rich); the display is up only while a transfer is shown."""

    def __init__(self, console: Console | None = None, clock: Clock = time.monotonic):
        self.clock = clock
        self.progress = Progress(
            TextColumn("{task.description}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            BarColumn(bar_width=BAR_WIDTH), _Column(_amount), _Column(_rate), _Column(_left),
            console=console, transient=True, get_time=clock, expand=True)
        self.lock = threading.Lock()
        self.visible = 0

    def started(self, host: str, label: str, size: int | None = None, exact: bool = False) -> Transfer:
        """A bar, hidden until the transfer has lasted SHOW_AFTER."""
        name = f"{host}: {label}"
        task = self.progress.add_task(name, total=size, visible=False, size=size, exact=exact)
        return _Bar(self, task, name, size, exact)

    def show(self, task: TaskID) -> None:
        """Draw a transfer's bar (the display starts with the first)."""
        with self.lock:
            if not self.visible:
                self.progress.start()
            self.visible += 1
            self.progress.update(task, visible=True)

    def finish(self, task: TaskID, line: str | None) -> None:
        """Take a transfer's bar away, leaving its summary line (the display stops with the last)."""
        with self.lock:
            self.progress.remove_task(task)
            if line is None:
                return
            self.progress.console.print(line, markup=False, highlight=False)
            self.visible -= 1
            if not self.visible:
                self.progress.stop()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self.lock:
            if self.visible:
                self.visible = 0
                self.progress.stop()


def for_output(out: Output) -> Transfers:
    """How this run shows its transfers: nothing with --json or -q, bars on a terminal, else plain lines."""
    if out.json_mode or out.quiet:
        return QUIET
    console = Console(file=sys.stdout)
    if console.is_terminal and not console.is_dumb_terminal:
        return Bars(console)
    return Lines(out.say)
