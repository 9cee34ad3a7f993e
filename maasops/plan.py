"""Plans as data: per host, the ordered steps an operation will run, and how to print them.

A plan is data. ``--dry-run`` and ``maasops plan`` print it; the runner executes
it; tests assert on it without a host. The backup, restore and rollback plans are
built in :mod:`maasops.backup_plan`, :mod:`maasops.restore_plan` and
:mod:`maasops.rollback_plan` from probe facts and :mod:`maasops.layouts`; the
command builders they share live in :mod:`maasops.services`.

A step has an identity (:class:`StepId`) apart from the label a person reads:
undo pairing, the downtime window, the dbupgrade count and the drill's proofs use
the id, so rewording a label changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from maasops.command import Cmd
from maasops.probe import HostFacts


class StepId(StrEnum):
    """What a step is, for the code (records keep the value; people read the label)."""

    # backup
    DB_CHECK = "db-check"
    DUMP = "dump"
    ARCHIVE = "archive"
    IMAGES_STATE = "images-state"
    IMAGES = "images"
    # shared
    STOP_UNITS = "stop-units"
    STOP_POSTGRESQL = "stop-postgresql"
    START_POSTGRESQL = "start-postgresql"
    START_UNITS = "start-units"
    CHECK_UNITS = "check-units"
    CHECK_REGION = "check-region"
    # restore
    PREPARE = "prepare"
    UPLOAD_ARCHIVE = "upload-archive"
    UPLOAD_DUMP = "upload-dump"
    UPLOAD_IMAGES = "upload-images"
    UNPACK_DUMP = "unpack-dump"
    SET_ASIDE_DATABASE = "keep-database"  # its value as older records name it
    LOAD_DATABASE = "load-database"
    MOVE_ASIDE = "move-aside"
    EXTRACT = "extract"
    EXTRACT_IMAGES = "extract-images"
    CHECK_EXTRACTED = "check-extracted"
    REUSE_EXCLUDED = "reuse-excluded"
    SET_DATABASE_HOST = "set-database-host"
    WRITE_SECRET = "write-secret"
    REPOINT_RACK = "repoint-rack"
    DBUPGRADE = "dbupgrade"
    COMMIT = "commit"
    CLEANUP = "cleanup"
    PRUNE = "prune"
    # rollback
    RELOAD_DATABASE = "reload-database"
    PUT_BACK = "put-back"
    RECORD_ROLLBACK = "record-rollback"


STOPS = (StepId.STOP_UNITS, StepId.STOP_POSTGRESQL)  # a window of downtime opens
STARTS = (StepId.CHECK_UNITS, StepId.START_POSTGRESQL)  # ... and closes (or their undos): units are up


class Phase(StrEnum):
    """The phases of a fleet operation: every host finishes one before any starts the next."""

    BACKUP = "backup"
    UPLOAD = "upload"
    STOP = "stop"
    DATABASE = "database"
    FILES = "files"
    SECRET = "secret"
    DBUPGRADE = "dbupgrade"
    COMMIT = "commit"
    START_REGIONS = "start regions"
    START_RACKS = "start racks"
    CLEANUP = "cleanup"


@dataclass(frozen=True)
class Send:
    """Local bytes streamed into a step's stdin: a whole file, or one member of a local tar archive."""

    path: str  # a local file, or (with ``files``) a file's path in a set
    member: str | None = None  # archive member name (no leading /)
    compress: str = "none"  # how the archive holding ``member`` is compressed
    identity: str | None = None  # age/SSH identity file when ``path`` is encrypted
    files: object = None  # the set's files (a backupset.SetFiles, such as a restic repository's) ``path`` is in

    def __str__(self) -> str:
        where = f"{self.files}:{self.path}" if self.files is not None else self.path
        return f"{where}:/{self.member}" if self.member else where


@dataclass(frozen=True)
class Step:
    """One remote command; stdout streams into ``fetch``, stdin from ``send``, when set.

    ``undo`` reverses the step and is run (as root) on every path out unless a
    later step that ``resolves`` its id succeeded first. ``phase`` groups steps of
    a fleet operation. A ``background`` step (never one with an undo) runs
    alongside the steps after it, on its own channel; the host's run waits for it
    before it ends. ``key`` tells apart steps of one id on one host (the tree a
    move-aside step moves). ``limit`` bounds what a fetch may carry (bytes);
    ``estimate`` is what it will likely carry, for the progress shown (never a bound).
    """

    id: StepId
    label: str
    command: Cmd
    phase: Phase = Phase.BACKUP
    sudo: bool = True  # as root; False: as the login user (read-only checks)
    fetch: str | None = None
    send: Send | None = None
    undo: Cmd | None = None
    resolves: tuple[StepId, ...] = ()
    check: bool = True
    background: bool = False
    key: str = ""
    limit: int | None = None
    estimate: int | None = None
    inspect_upload: bool = False  # the restore's member check reads the bytes as they go up
    by_hand: Cmd | None = None  # what a person runs when the undo keeps failing (default: the undo)
    password_file: str | None = None  # a local file whose first line the step (and its undo) gets as PGPASSWORD
    judge: Callable[[str], str | None] | None = None  # the laptop's verdict on the output: a problem fails the step


@dataclass(frozen=True)
class HostPlan:
    """What will happen on one host, or why nothing will; ``spec`` is what the operation needs afterwards."""

    host: str
    facts: HostFacts | None
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    spec: object = None

    def step(self, step_id: StepId) -> Step | None:
        """The first step with this id, or None."""
        return next((s for s in self.steps if s.id == step_id), None)


def render(plans: list[HostPlan]) -> str:
    """The plan as a person reads it: every remote command per host, in order, by phase (no secret is ever in one)."""
    out = []
    for p in plans:
        out += _render_host(p)
    return "\n".join(out)


def _render_host(p: HostPlan) -> list[str]:
    head = f"== {p.host}"
    if p.facts and p.facts.install:
        head += f" ({p.facts.install} {p.facts.short_version}, {'+'.join(p.facts.roles) or 'no role'})"
    out = [head]
    if p.error:
        out.append(f"   REFUSED: {p.error}")
    phase = None
    for i, s in enumerate(p.steps, 1):
        if s.phase != Phase.BACKUP and s.phase != phase:
            phase = s.phase
            out.append(f"   [{phase}]")
        line = f"   {i}. {s.label}{' (alongside the next steps)' if s.background else ''}: " \
               f"{'sudo ' if s.sudo else ''}{s.command}"
        if s.fetch:
            line += f"  > {p.host}/{s.fetch}"
        if s.send:
            line += f"  < {s.send}"
        if s.password_file:
            line += f"  (PGPASSWORD from {s.password_file})"
        out.append(line)
        if s.undo:
            out.append(f"      on any failure after this: {s.undo}")
    return out + [f"   note: {n}" for n in p.notes]
