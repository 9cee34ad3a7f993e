"""Remote commands built from parts, so that quoting is never forgotten.

A :class:`Cmd` is a sequence of parts joined by spaces, in the manner of
pyinfra's ``StringCommand``:

- a plain ``str`` is shell syntax written in this code base (``tar``, ``|``,
  ``&&``, ``2>``): never data;
- :class:`Q` is a value (a path, a URL, a database name, anything that came
  from a host, a set, an inventory or the user): always shell-quoted;
- a nested :class:`Cmd` is spliced in as it is.

``str(cmd)`` is what runs, and what a plan prints: no secret is ever part of a command
(passwords and the MAAS secret are read on the host, or travel on stdin), so there is
nothing to mask.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Q:
    """A value passed to the shell as data: quoted, whatever it holds (a :class:`Cmd` becomes one argument)."""

    value: object

    def text(self) -> str:
        """The quoted value."""
        return shlex.quote(str(self.value))


class Cmd:
    """A shell command made of syntax (``str``), quoted values (:class:`Q`) and commands."""

    __slots__ = ("parts",)
    SEP = " "

    def __init__(self, *parts: str | Q | Cmd):
        for p in parts:
            if not isinstance(p, (str, Q, Cmd)):
                raise TypeError(f"a command part must be shell syntax (str), Q or Cmd, not {type(p).__name__}")
        self.parts = parts

    def __str__(self) -> str:
        out = [p if isinstance(p, str) else str(p) if isinstance(p, Cmd) else p.text() for p in self.parts]
        return self.SEP.join(x for x in out if x)

    def __repr__(self) -> str:
        return f"Cmd({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cmd) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return bool(self.parts)


class Word(Cmd):
    """Parts glued into one shell word: ``Word("KEY=", Q(value))`` is ``KEY='value'``."""

    __slots__ = ()
    SEP = ""


def _joined(sep: str, cmds: Iterable[Cmd | str]) -> Cmd:
    parts: list[str | Cmd] = []
    for c in cmds:
        if not c:
            continue
        if parts:
            parts.append(sep)
        parts.append(c if isinstance(c, Cmd) else Cmd(c))
    return Cmd(*parts)


def seq(*cmds: Cmd | str) -> Cmd:
    """``a; b; c``: one after another, whatever each exits with."""
    return _joined(";", cmds)


def pipe(*cmds: Cmd | str) -> Cmd:
    """``a | b | c`` (run under ``pipefail`` by :mod:`maasops.channel`, so a failure anywhere fails it)."""
    return _joined("|", cmds)


def group(cmd: Cmd) -> Cmd:
    """``{ cmd; }``: one unit for ``&&``, ``||`` and redirections."""
    return Cmd("{", cmd, "; }")


def shell(cmd: Cmd) -> Cmd:
    """``bash -o pipefail -c CMD``: one argument for sudo, a failure anywhere in a pipeline fails the whole."""
    return Cmd("bash", "-o", "pipefail", "-c", Q(cmd))
