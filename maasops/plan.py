"""Plans as data: per host, the ordered steps an operation will run, and how to print them.

A plan is data. ``--dry-run`` and ``fab plan`` print it; the runner executes it;
tests assert on it without a host. The backup and restore plans are built in
:mod:`maasops.backup_plan` and :mod:`maasops.restore_plan` from probe facts and
:mod:`maasops.layouts`; the command builders they share live here. Every
interpolated value is shell-quoted.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from maasops import layouts
from maasops.probe import HostFacts

q = shlex.quote

# How a stream is compressed on the host (command, file suffix) and decompressed again.
COMPRESSORS = {"gzip": ("gzip -1", ".gz"), "zstd": ("zstd -q -T0", ".zst"), "none": ("", "")}
DECOMPRESSORS = {"gzip": "gzip -dc", "zstd": "zstd -dc", "none": "cat"}
ARCHIVE = "config.tar"
DUMP = "maasdb.sql"
ENCRYPTED = ".age"


@dataclass(frozen=True)
class Send:
    """Local bytes streamed into a step's stdin: a whole file, or one member of a local tar archive."""

    path: str
    member: str | None = None  # archive member name (no leading /)
    compress: str = "none"  # how the archive holding ``member`` is compressed
    identity: str | None = None  # age/SSH identity file when ``path`` is encrypted

    def __str__(self) -> str:
        return f"{self.path}:/{self.member}" if self.member else self.path


@dataclass(frozen=True)
class Step:
    """One remote command; stdout streams into ``fetch``, stdin from ``send``, when set.

    ``undo`` reverses the step and is run (as root) on every path out unless a
    later step that ``resolves`` it succeeded first. ``phase`` groups steps of
    a fleet operation: every host finishes a phase before any host starts the
    next (a backup is one phase). A ``background`` step (never one with an undo)
    runs alongside the steps after it, on its own channel; the host's run waits
    for it before it ends.
    """

    name: str
    command: str
    user: str | None = None  # run with sudo as this user; None: as the login user
    fetch: str | None = None
    send: Send | None = None
    undo: str | None = None
    resolves: tuple[str, ...] = ()
    check: bool = True
    phase: str = ""
    background: bool = False


@dataclass(frozen=True)
class HostPlan:
    """What will happen on one host, or why nothing will."""

    host: str
    facts: HostFacts | None
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    meta: dict = field(default_factory=dict)


def pipe(command: str, compress: str) -> str:
    """``command`` with its output compressed as chosen (``compress`` in COMPRESSORS)."""
    tool = COMPRESSORS[compress][0]
    return f"{command} | {tool}" if tool else command


def actual(path: str, snap_data: str | None) -> str:
    """A layout path as it is on a host ($SNAP_DATA resolved to the host's revision directory)."""
    if snap_data and path.startswith(layouts.SNAP_DATA):
        return snap_data + path[len(layouts.SNAP_DATA):]
    return path


def rebase(path: str, from_snap_data: str | None, to_snap_data: str | None) -> str:
    """A path under one host's snap revision directory, as it is under another host's."""
    if from_snap_data and to_snap_data and (path == from_snap_data or path.startswith(from_snap_data + "/")):
        return to_snap_data + path[len(from_snap_data):]
    return path


@dataclass(frozen=True)
class UnitCommands:
    """How to stop, start and check a set of MAAS units on one host."""

    units: tuple[str, ...]
    stop: str
    start: str
    check: str


def unit_commands(install: str, units: tuple[str, ...]) -> UnitCommands | None:
    """Stop/start/is-active commands for ``units`` (snap: ``snap stop/start maas``); None for no units."""
    if not units:
        return None
    names = " ".join(map(q, units))
    check = f"{layouts.SYSTEMCTL} is-active --quiet {names}"
    if install == "snap":
        return UnitCommands(units, f"snap stop {layouts.SNAP_NAME}", f"snap start {layouts.SNAP_NAME}", check)
    return UnitCommands(units, f"{layouts.SYSTEMCTL} stop {names}", f"{layouts.SYSTEMCTL} start {names}", check)


def service_commands(facts: HostFacts) -> UnitCommands | None:
    """Commands for the MAAS units running on the host now (None when none runs)."""
    active = tuple(u for u in facts.layout.units(set(facts.roles)) if facts.unit_states.get(u) == "active")
    return unit_commands(facts.install, active)


def postgresql_command(verb: str) -> str:
    """``systemctl start|stop postgresql``."""
    return f"{layouts.SYSTEMCTL} {verb} {layouts.POSTGRESQL_UNIT}"


def render(plans: list[HostPlan]) -> str:
    """The plan as a person reads it: every remote command per host, in order, by phase."""
    out = []
    for p in plans:
        head = f"== {p.host}"
        if p.facts and p.facts.install:
            head += f" ({p.facts.install} {p.facts.short_version}, {'+'.join(p.facts.roles) or 'no role'})"
        out.append(head)
        if p.error:
            out.append(f"   REFUSED: {p.error}")
        phase = ""
        for i, s in enumerate(p.steps, 1):
            if s.phase and s.phase != phase:
                phase = s.phase
                out.append(f"   [{phase}]")
            who = f"sudo -u {s.user} " if s.user else ""
            line = f"   {i}. {s.name}{' (alongside the next steps)' if s.background else ''}: {who}{s.command}"
            if s.fetch:
                line += f"  > {p.host}/{s.fetch}"
            if s.send:
                line += f"  < {s.send}"
            out.append(line)
            if s.undo:
                out.append(f"      on any failure after this: {s.undo}")
        out += [f"   note: {n}" for n in p.notes]
    return "\n".join(out)
