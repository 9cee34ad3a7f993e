"""What a run tells about the bytes it moves, as events: a transfer starts, advances, ends.

The runner reports these and draws nothing; :mod:`maasops.progress` renders them
(bars on a terminal, plain lines in a log, nothing with ``--json``). The classes
here are the events' receivers that ignore them: a run given no renderer is quiet.
"""

from __future__ import annotations

from types import TracebackType


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
