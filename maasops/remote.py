"""Remote commands, patchwork style: plain functions that take the Connection first.

Every command runs with no stdin (so sudo works from cron and CI), hidden
output and its failure turned into :class:`RemoteError` naming the host and the
step. Compound commands are wrapped in ``sh -c`` so sudo covers all of them.
"""

from __future__ import annotations

import shlex
import socket

import paramiko
from fabric import Connection
from invoke.exceptions import AuthFailure
from invoke.runners import Result

from maasops.jump import JumpFailed

CHANGED_KEY_HINT = "verify the host out of band, then fix known_hosts; do not just delete the line"
UNKNOWN_KEY_HINT = "add the key to known_hosts (ssh-keyscan, checked) or pass --accept-new-host-keys"
# What OpenSSH says when the hop to a jump host fails, first match wins: (says, what it means, hint).
JUMP_FAILURES = (
    ("IDENTIFICATION HAS CHANGED", "host key of jump host {gw} CHANGED since it was recorded", CHANGED_KEY_HINT),
    ("Host key verification failed", "unknown host key of jump host {gw} (not in known_hosts)", UNKNOWN_KEY_HINT),
    ("Permission denied", "SSH authentication failed at jump host {gw}",
     "check the jump host's user and key in the ssh config; it is logged in to without prompts (keys or agent)"),
    ("timed out", "timed out connecting to jump host {gw}", "check the jump host's address and firewalls"),
)


class RemoteError(RuntimeError):
    """A step failed on a host; the message names the host, the step and what it said."""

    def __init__(self, host: str, step: str, detail: str, hint: str = ""):
        self.host, self.step, self.detail, self.hint = host, step, detail, hint
        msg = f"{host}: {step}: {detail}"
        super().__init__(f"{msg} ({hint})" if hint else msg)


def host_label(c: Connection) -> str:
    """The host name as the user gave it (``region1``, not its address)."""
    return getattr(c, "original_host", None) or c.host


def shell(command: str) -> str:
    """``command`` as one argument to bash with pipefail, so sudo covers all of it and a
    failure anywhere in a pipeline fails the whole command."""
    return f"bash -o pipefail -c {shlex.quote(command)}"


def run(c: Connection, command: str, step: str, *, sudo: bool = False, user: str | None = None,
        check: bool = True, timeout: int | None = None) -> Result:
    """Run ``command`` on the host (as root or ``user`` with sudo); raise RemoteError on failure."""
    kwargs = dict(hide=True, warn=True, in_stream=False, timeout=timeout)
    try:
        if sudo or user:
            result = c.sudo(shell(command), user=user or "root", **kwargs)
        else:
            result = c.run(command, **kwargs)
    except AuthFailure:
        raise RemoteError(host_label(c), step, "sudo refused the password",
                          "give the right sudo password (--prompt-for-sudo-password or sudo_password_file)") from None
    except (OSError, paramiko.SSHException) as exc:
        raise connect_error(c, step, exc) from None
    if check and result.exited != 0:
        detail = (result.stderr.strip() or result.stdout.strip() or f"exit {result.exited}").splitlines()
        raise RemoteError(host_label(c), step, " / ".join(detail[-3:]) + f" (exit {result.exited})")
    return result


def connect_error(c: Connection, step: str, exc: BaseException) -> RemoteError:
    """A RemoteError that says why SSH to the host failed and how to fix it."""
    host = host_label(c)
    if isinstance(exc, JumpFailed):
        for says, detail, hint in JUMP_FAILURES:
            if says in exc.stderr:
                return RemoteError(host, step, detail.format(gw=exc.gateway), hint)
        return RemoteError(host, step, f"cannot reach {c.host}:{c.port} through jump host {exc.gateway}: {exc.stderr}",
                           "check the address and that the jump host can reach it")
    if isinstance(exc, paramiko.BadHostKeyException):
        return RemoteError(host, step, "host key CHANGED since it was recorded in known_hosts", CHANGED_KEY_HINT)
    if isinstance(exc, paramiko.AuthenticationException):
        return RemoteError(host, step, f"SSH authentication failed as {c.user}",
                           "check the user and key in the inventory or ssh config")
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return RemoteError(host, step, "unknown host key (not in known_hosts)", UNKNOWN_KEY_HINT)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteError(host, step, f"timed out connecting to {c.host}:{c.port}",
                           "check the address, the bastion and firewalls")
    return RemoteError(host, step, f"cannot reach {c.host}:{c.port}: {exc}",
                       "check the address, port, bastion (ProxyJump/--gateway) and that sshd runs")
