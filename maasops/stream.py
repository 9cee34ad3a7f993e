"""Move bytes between a remote command and a local file over a raw SSH channel.

Fabric's ``run()`` decodes and buffers output as text, so data never travels
through it. Here a command's stdout is read in blocks straight into a local
file (sha256 computed on the fly, never more than one block in memory), the
file is written as ``NAME.partial`` with mode 0600 and renamed only when the
command succeeded. The other way, a local file (or one member of a local tar
archive, such as the region's secret) is written block by block into a
command's stdin.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import paramiko
from fabric import Connection

from maasops import crypto
from maasops.pipes import BLOCK, FileSink, PipeConsumer
from maasops.remote import RemoteError, connect_error, host_label, shell

POLL = 0.5  # seconds a download waits for data before it checks for a cancel
LOCAL_FULL_HINT = "free space on the laptop (or pick another --backup-dir), then run the backup again"


@dataclass(frozen=True)
class Streamed:
    """What arrived: size and sha256 of the file as stored (encrypted or not), of the bytes as sent,
    and what the ``inspect`` consumer made of them."""

    path: Path | None  # None for an upload
    size: int
    sha256: str
    plain_sha256: str = ""
    inspected: object = None


def sudo_prefix(c: Connection, user: str = "root") -> tuple[str, bytes]:
    """The sudo prefix for a raw channel, and what to send first on its stdin (the password, if any)."""
    password = c.config.sudo.password
    if password:
        return f"sudo -S -p '' -u {shlex.quote(user)} -- ", f"{password}\n".encode()
    return f"sudo -n -u {shlex.quote(user)} -- ", b""


def private_open(path: Path) -> int:
    """Open ``path`` for writing, created 0600, truncated."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def open_channel(c: Connection, command: str, step: str, sudo_user: str | None):
    """Start ``command`` on a fresh channel, under sudo as ``sudo_user`` if given (password first on stdin)."""
    stdin = b""
    full = shell(command)
    if sudo_user:
        prefix, stdin = sudo_prefix(c, sudo_user)
        full = prefix + full
    try:
        c.open()
        chan = c.client.get_transport().open_session()
    except Exception as exc:  # paramiko raises a zoo of exceptions on connect
        raise connect_error(c, step, exc) from None
    chan.exec_command(full)
    if stdin:
        chan.sendall(stdin)
    return chan


def _finish(c: Connection, chan, step: str) -> None:
    """Wait for the command's exit; raise RemoteError with the tail of its stderr when it failed."""
    status = chan.recv_exit_status()
    err = b""
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(BLOCK)
    if status != 0:
        lines = err.decode(errors="replace").strip().splitlines() or [f"exit {status}"]
        raise RemoteError(host_label(c), step, " / ".join(lines[-3:]) + f" (exit {status})")


def download(c: Connection, command: str, dest: Path, step: str, *, sudo_user: str | None = None,
             progress: Callable[[int], None] | None = None, encrypt_to: list | None = None,
             inspect: Callable[[BinaryIO], object] | None = None) -> Streamed:
    """Run ``command`` on the host and stream its stdout into ``dest`` (0600, via dest.partial).

    With ``encrypt_to`` the file is age-encrypted as it is written; ``inspect``
    reads the plaintext on the side (a listing, a dump's last line), in one pass.
    """
    chan = open_channel(c, command, step, sudo_user)
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    sinks: list = []
    try:
        chan.shutdown_write()
        fd = private_open(partial)
        sinks = [PipeConsumer(crypto.encrypt_into(fd, encrypt_to)) if encrypt_to else FileSink(fd)]
        if inspect:
            sinks.append(PipeConsumer(inspect))
        chan.settimeout(POLL)
        try:
            while True:
                try:
                    data = chan.recv(BLOCK)
                except TimeoutError:  # the command is quiet: still, a cancel is heard
                    if progress:
                        progress(size)
                    continue
                if not data:
                    break
                digest.update(data)
                for sink in sinks:
                    sink.write(data)
                size += len(data)
                if progress:
                    progress(size)
            _finish(c, chan, step)  # a failed command says why before its partial output is judged
            results = [sink.close() for sink in sinks]
            sinks = []
        except OSError as exc:
            if isinstance(exc, (socket.timeout, paramiko.SSHException)):
                raise
            raise RemoteError(host_label(c), step, f"writing {dest.name} on this machine failed: {exc.strerror}",
                              LOCAL_FULL_HINT) from None
    except BaseException:
        for sink in sinks:
            try:
                sink.close()
            except BaseException:  # already failing: the first error is the one to report
                pass
        partial.unlink(missing_ok=True)
        raise
    finally:
        chan.close()
    partial.rename(dest)
    (stored_sha, stored_size), inspected = results[0], (results[1] if inspect else None)
    return Streamed(dest, stored_size, stored_sha, digest.hexdigest(), inspected)


def upload(c: Connection, command: str, source: BinaryIO, step: str, *, sudo_user: str | None = None,
           progress: Callable[[int], None] | None = None) -> Streamed:
    """Run ``command`` on the host with ``source``'s bytes as its stdin; returns what was sent."""
    chan = open_channel(c, command, step, sudo_user)
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            while data := source.read(BLOCK):
                chan.sendall(data)
                digest.update(data)
                size += len(data)
                if progress:
                    progress(size)
            chan.shutdown_write()
        except OSError:
            pass  # the command stopped reading (it failed): its exit status says why
        while chan.recv(BLOCK):  # drain stdout so the command never blocks on a full window
            pass
        _finish(c, chan, step)
    finally:
        chan.close()
    return Streamed(None, size, digest.hexdigest())
