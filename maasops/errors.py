"""What went wrong on a host, in words that name the host, the step and the fix.

:class:`RemoteError` is every failure maasops reports for a host; :func:`connect_error`
turns what paramiko and OpenSSH say about a failed connection into one.
"""

from __future__ import annotations

import socket

import paramiko
from fabric import Connection

from maasops.hosttext import clean
from maasops.jump import JumpFailed

CHANGED_KEY_HINT = ("POSSIBLE ATTACK (someone may be intercepting the connection): verify the host's key out of "
                    "band, then fix known_hosts; never just delete the line or accept the new key")
UNKNOWN_KEY_HINT = "add the key to known_hosts (ssh-keyscan, checked) or pass --accept-new-host-keys"
REVOKED_KEY_HINT = "the key is marked @revoked in known_hosts: do not connect until the host has a new key"
# What paramiko says of a port that accepts TCP and never speaks SSH: no banner, or (when the connect timeout ran out
# first) no session to log in to.
SILENT_SERVER = ("protocol banner", "No existing session")
# What OpenSSH says when the hop to a jump host fails, first match wins: (says, what it means, hint).
JUMP_FAILURES = (
    ("IDENTIFICATION HAS CHANGED", "host key of jump host {gw} CHANGED since it was recorded", CHANGED_KEY_HINT),
    ("REVOKED HOST KEY", "host key of jump host {gw} is REVOKED", REVOKED_KEY_HINT),
    ("Host key verification failed", "unknown host key of jump host {gw} (not in known_hosts)", UNKNOWN_KEY_HINT),
    ("Permission denied", "SSH authentication failed at jump host {gw}",
     "check the jump host's user and key in the ssh config; it is logged in to without prompts (keys or agent)"),
    ("timed out", "timed out connecting to jump host {gw}", "check the jump host's address and firewalls"),
)


class RemoteError(RuntimeError):
    """A step failed on a host; the message names the host, the step and what it said."""

    def __init__(self, host: str, step: str, detail: str, hint: str = ""):
        # What the host said, made safe to show wherever this error goes (maasops.hosttext).
        detail, hint = clean(detail), clean(hint)
        self.host, self.step, self.detail, self.hint = host, step, detail, hint
        msg = f"{host}: {step}: {detail}"
        super().__init__(f"{msg} ({hint})" if hint else msg)


class TooBig(ValueError):
    """A stream that went past the most it may carry (``limit`` bytes, as the host's command wrote them)."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"more than {limit} bytes")


class Unsafe(ValueError):
    """Bytes that must not reach a host (an archive member the layout does not allow): the upload stops."""


DAMAGED = "the bytes received differ from the backup's sha256: the set is damaged (maasops verify names the file)"


class Damaged(ValueError):
    """A set's file whose bytes are not those its manifest records (:data:`DAMAGED`)."""

    def __init__(self) -> None:
        super().__init__(DAMAGED)


class HostKeyRefused(paramiko.SSHException):
    """A host key that known_hosts does not vouch for: ``why`` is changed, revoked or unknown."""

    def __init__(self, hostname: str, why: str):
        super().__init__(f"{why} host key for {hostname}")
        self.hostname, self.why = hostname, why


def host_label(c: Connection) -> str:
    """The host name as the user gave it (``region1``, not its address)."""
    return getattr(c, "original_host", None) or c.host


def connect_error(c: Connection, step: str, exc: BaseException) -> RemoteError:
    """A RemoteError that says why SSH to the host failed and how to fix it."""
    host = host_label(c)
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, JumpFailed):
        for says, detail, hint in JUMP_FAILURES:
            if says in exc.stderr:
                return RemoteError(host, step, detail.format(gw=exc.gateway), hint)
        return RemoteError(host, step, f"cannot reach {c.host}:{c.port} through jump host {exc.gateway}: "
                           f"{exc.summary}", "check the address and that the jump host can reach it")
    if isinstance(exc, paramiko.BadHostKeyException) or (isinstance(exc, HostKeyRefused) and exc.why == "changed"):
        return RemoteError(host, step, "host key CHANGED since it was recorded in known_hosts", CHANGED_KEY_HINT)
    if isinstance(exc, HostKeyRefused) and exc.why == "revoked":
        return RemoteError(host, step, "host key is REVOKED in known_hosts", REVOKED_KEY_HINT)
    if isinstance(exc, paramiko.AuthenticationException):
        return RemoteError(host, step, f"SSH authentication failed as {c.user}",
                           "check the user and key in the inventory or ssh config")
    if isinstance(exc, HostKeyRefused) or (isinstance(exc, paramiko.SSHException)
                                           and "not found in known_hosts" in str(exc)):
        return RemoteError(host, step, "unknown host key (not in known_hosts)", UNKNOWN_KEY_HINT)
    if isinstance(exc, paramiko.SSHException) and any(s in str(exc) for s in SILENT_SERVER):
        return RemoteError(host, step, f"{c.host}:{c.port} accepted the connection but no SSH server answered "
                           f"within {c.connect_kwargs.get('banner_timeout')} s",
                           "check the port (-H host:port, the inventory's port, the ssh config) and that sshd, "
                           "not another service, listens there")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteError(host, step, f"timed out connecting to {c.host}:{c.port}",
                           "check the address, the bastion and firewalls")
    return RemoteError(host, step, f"cannot reach {c.host}:{c.port}: {exc}",
                       "check the address, port, bastion (ProxyJump, --jump-host, an inventory gateway) and that sshd "
                       "runs")
