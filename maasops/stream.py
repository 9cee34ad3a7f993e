"""Move bytes between a remote command and a local file over a raw SSH channel.

Data never travels through a command's collected output. A command's stdout is
read in blocks straight into a local file (sha256 computed on the fly, never more
than one block in memory), written as ``NAME.partial`` with mode 0600 and renamed
only when the command succeeded. A host that stops sending for ``idle`` seconds, or
sends more than the plan allows, is stopped: a controller that never stops
streaming cannot keep MAAS down until the laptop's disk is full: the bound is what the
host's sizes allow, held between a floor and a ceiling the laptop decides (:func:`bound`). The other way, a
local file (or one member of a local tar archive, such as the region's secret) is
written block by block into a command's stdin, while an inspector may read the
same bytes (a directory dump's member check), or what goes up is an archive the
laptop re-wrote from the one it checked (maasops.confine.emitted).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import paramiko
from fabric import Connection

from maasops import channel, crypto
from maasops.command import Cmd
from maasops.errors import Damaged, RemoteError, TooBig, Unsafe, connect_error, host_label
from maasops.pipes import BLOCK, FileSink, PipeConsumer

POLL = 0.5  # seconds a download waits for data before it checks for a cancel
RECEIVED_KEEP = 4096  # bytes of an upload's stdout kept (its command prints the sha256 of what it received)
IDLE_TIMEOUT = 300.0  # seconds without a byte before a stream is given up
# The laptop's own bounds on what one stream from a host may carry, whatever the host's sizes say (:func:`bound`).
FLOOR = 64 << 20  # a host that reports (almost) nothing still sends its small trees
CEILING_GIB = 1024  # the default ceiling, in GiB (--max-stream-gib raises or lowers it)
MARGIN = 16 << 20  # bytes a stream may carry beyond what the probe measured (headers, growth)
LOCAL_FULL_HINT = "free space on the laptop (or pick another --backup-dir), then run the backup again"


@dataclass(frozen=True)
class Streamed:
    """What arrived: size and sha256 of the file as stored (encrypted or not), of the bytes as sent,
    and what the ``inspect`` consumer made of them. An upload has no path: its ``plain_sha256`` is that
    of the bytes sent, and the host checks the bytes it received."""

    path: Path | None  # None for an upload
    size: int
    sha256: str = ""
    plain_sha256: str = ""
    inspected: object = None


@dataclass(frozen=True)
class Limits:
    """How long a stream may be quiet, and how many bytes it may carry (None: no bound; a backup's streams always
    have one, :func:`bound`)."""

    idle: float = IDLE_TIMEOUT
    max_bytes: int | None = None


def bound(allowed: int | None, ceiling_gib: int = CEILING_GIB) -> int:
    """The most a stream may carry: ``allowed`` (what the host's own sizes allow) held between :data:`FLOOR` and
    the laptop's ceiling; a host that reports no size, or a huge one, gets the ceiling, never no bound."""
    ceiling = max(ceiling_gib << 30, FLOOR)
    return ceiling if allowed is None else max(FLOOR, min(allowed, ceiling))


def private_open(path: Path) -> int:
    """Open ``path`` for writing, created 0600, truncated."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def _too_big(c: Connection, step: str, limit: int) -> RemoteError:
    return RemoteError(host_label(c), step, f"the host's stream went past {limit / 1048576:.0f} MiB, the most the "
                       "probe's sizes allow (within the laptop's floor and ceiling): stopped",
                       "check what grew on the host (du of its trees, the database size), then run again; "
                       "--max-stream-gib raises the ceiling")


def _receive(c: Connection, chan: paramiko.Channel, step: str, sinks: list, progress: Callable[[int], None] | None,
             limits: Limits, first: bytes) -> tuple[hashlib._Hash, int, bytes]:
    """Read the command's stdout (``first`` already read) into ``sinks`` until it ends; returns sha256, size, stderr."""
    digest = hashlib.sha256()
    size = 0
    err = b""
    last = time.monotonic()
    chan.settimeout(POLL)
    pending = first
    while True:
        if chan.recv_stderr_ready():
            err = (err + chan.recv_stderr(BLOCK))[-channel.STDERR_KEEP:]
        if pending:
            data, pending = pending, b""
        else:
            try:
                data = chan.recv(BLOCK)
            except TimeoutError:  # the command is quiet: still, a cancel and the idle bound are heard
                if progress:
                    progress(size)
                if time.monotonic() - last > limits.idle:
                    raise RemoteError(host_label(c), step, f"the host sent nothing for {limits.idle:.0f}s: stopped",
                                      "check the host's load and disk; raise --idle-timeout for very slow hosts"
                                      ) from None
                continue
        if not data:
            return digest, size, err
        last = time.monotonic()
        size += len(data)
        if limits.max_bytes is not None and size > limits.max_bytes:
            raise _too_big(c, step, limits.max_bytes)
        digest.update(data)
        for sink in sinks:
            sink.write(data)
        if progress:
            progress(size)


class LocalFile:
    """A download's destination on this machine: ``NAME.partial`` (0600), encrypted as written when asked,
    renamed to ``NAME`` when closed, removed when aborted."""

    def __init__(self, dest: Path, encrypt_to: list | None = None):
        self.dest, self.partial = dest, dest.with_name(dest.name + ".partial")
        fd = private_open(self.partial)
        self._sink = PipeConsumer(crypto.encrypt_into(fd, encrypt_to)) if encrypt_to else FileSink(fd)

    def write(self, data: bytes) -> None:
        """Append bytes (encrypting them when asked)."""
        self._sink.write(data)

    def close(self) -> tuple[str, int]:
        """The file is complete: rename it into place; sha256 and size as stored."""
        stored = self._sink.close()
        self.partial.rename(self.dest)
        return stored

    def abort(self) -> None:
        """The download failed: nothing is left behind."""
        try:
            self._sink.close()
        except BaseException:  # already failing: the first error is the one to report
            pass
        self.partial.unlink(missing_ok=True)


Store = Callable[[Path], object]  # a download's destination: write(bytes), close() -> (sha256, size), abort()


def _discard(sink) -> None:
    try:
        sink.abort() if hasattr(sink, "abort") else sink.close()
    except BaseException:  # already failing: the first error is the one to report
        pass


def download(c: Connection, command: Cmd, dest: Path, step: str, *, sudo_user: str | None = None,
             progress: Callable[[int], None] | None = None, encrypt_to: list | None = None,
             inspect: Callable[[BinaryIO], object] | None = None, limits: Limits = Limits(),
             store: Store | None = None, pgpassword: bytes | None = None) -> Streamed:
    """Run ``command`` on the host and stream its stdout into ``dest`` (0600, via dest.partial).

    With ``encrypt_to`` the file is age-encrypted as it is written; ``inspect``
    reads the plaintext on the side (a listing, a dump's last line), in one pass.
    ``store(dest)`` replaces the local file (a restic snapshot): it is closed only
    when the command succeeded and the inspector agreed, and aborted otherwise. ``pgpassword``: the
    command's PGPASSWORD, sent over the channel.
    """
    chan, first, err = channel.open_command(c, command, step, user=sudo_user, hold_work_lock=True,
                                            pgpassword=pgpassword)
    sinks: list = []
    try:
        sinks.append(store(dest) if store else LocalFile(dest, encrypt_to))
        if inspect:
            sinks.append(PipeConsumer(inspect))
        try:
            digest, _, more = _receive(c, chan, step, sinks, progress, limits, first)
            channel.finish(c, chan, step, err + more)  # a failed command says why before its output is judged
            inspected = sinks.pop().close() if inspect else None
            stored_sha, stored_size = sinks[0].close()
            sinks = []
        except TooBig as exc:  # the inspector counted more decompressed bytes than the step allows
            raise _too_big(c, step, exc.limit) from None
        except OSError as exc:
            if isinstance(exc, (socket.timeout, paramiko.SSHException)):
                raise connect_error(c, step, exc) from None
            detail = f"writing {dest.name} on this machine failed: {exc.strerror}" if exc.strerror else str(exc)
            raise RemoteError(host_label(c), step, detail, getattr(exc, "hint", LOCAL_FULL_HINT)) from None
    except BaseException:
        for sink in sinks:
            _discard(sink)
        raise
    finally:
        chan.close()
    return Streamed(dest, stored_size, stored_sha, digest.hexdigest(), inspected)


def _coalesced(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """``blocks`` joined into pieces of at least BLOCK bytes (the last may be shorter): few, large channel writes."""
    pending: list[bytes] = []
    size = 0
    for block in blocks:
        pending.append(block)
        size += len(block)
        if size >= BLOCK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def upload(c: Connection, command: Cmd, source: BinaryIO, step: str, *, sudo_user: str | None = None,
           progress: Callable[[int], None] | None = None,
           inspect: Callable[[BinaryIO], object] | None = None,
           reemit: Callable[[BinaryIO], Iterator[bytes]] | None = None) -> Streamed:
    """Run ``command`` on the host with ``source``'s bytes as its stdin; returns what was sent.

    ``inspect`` reads the same bytes as they go. When it finds them :class:`Unsafe` (a member the
    restore must not write) the upload stops at once and that is the step's error; when it cannot
    read them (damaged bytes), the host's own check of the bytes speaks first. With ``reemit``, what
    goes up is the archive ``reemit(source)`` writes (maasops.confine.emitted): Unsafe or Damaged
    stop it, and the command must print the sha256 of what it received, which must be that of what
    was sent.
    """
    chan, first, err = channel.open_command(c, command, step, user=sudo_user, reads_stdin=True,
                                            hold_work_lock=True)
    size = 0
    sent = hashlib.sha256()
    checker = PipeConsumer(inspect) if inspect else None
    unreadable: BaseException | None = None
    inspected = None
    try:
        try:
            for data in _coalesced(reemit(source)) if reemit else iter(lambda: source.read(BLOCK), b""):
                if checker:
                    try:
                        checker.write(data)
                    except Unsafe:
                        raise
                    except Exception as exc:  # damaged bytes: the host's sha256 check says so
                        unreadable, checker = exc, None
                chan.sendall(data)
                sent.update(data)
                size += len(data)
                if progress:
                    progress(size)
            if checker:
                try:
                    inspected = checker.close()
                except Unsafe:
                    raise
                except Exception as exc:
                    unreadable = exc
                checker = None
            chan.shutdown_write()
        except Unsafe as exc:
            raise RemoteError(host_label(c), step, f"refused, nothing written: {exc}",
                              "the set holds what a restore must never write: find out who made it") from None
        except Damaged as exc:
            raise RemoteError(host_label(c), step, str(exc)) from None
        except (OSError, paramiko.SSHException) as exc:
            if isinstance(exc, RemoteError):
                raise
            # the command stopped reading (it failed): its exit status says why
        out = first
        while data := chan.recv(BLOCK):  # drain stdout so the command never blocks on a full window
            out = (out + data)[-RECEIVED_KEEP:]
        channel.finish(c, chan, step, err)
    finally:
        if checker:
            try:
                checker.close()
            except BaseException:  # the checker's failure is raised where it was met
                pass
        chan.close()
    if unreadable is not None:
        raise RemoteError(host_label(c), step, f"the archive cannot be read: {unreadable}")
    if reemit and out.split(b" ", 1)[0].strip() != sent.hexdigest().encode():
        raise RemoteError(host_label(c), step, "the bytes the host received are not those the laptop sent "
                          "(their sha256 differs)")
    return Streamed(None, size, plain_sha256=sent.hexdigest(), inspected=inspected)
