"""Remote commands, patchwork style: plain functions that take the Connection first.

A command is a :class:`~maasops.command.Cmd`; it runs on its own channel (see
:mod:`maasops.channel`: sudo answered only when it asks, the command dies with its
session), with bash's ``pipefail``, and its failure becomes a
:class:`~maasops.errors.RemoteError` naming the host and the step.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabric import Connection

from maasops import channel
from maasops.command import Cmd
from maasops.errors import RemoteError, host_label


@dataclass(frozen=True)
class Result:
    """What a remote command printed and how it exited (text decoded leniently: hosts are not trusted)."""

    stdout: str
    stderr: str
    exited: int


def run(c: Connection, command: Cmd, step: str, *, user: str | None = None, check: bool = True,
        timeout: float | None = None, hold_work_lock: bool = False, pgpassword: bytes | None = None) -> Result:
    """Run ``command`` on the host (with sudo as ``user`` when given); raise RemoteError when it fails.

    ``check`` False returns a failed command's Result instead. ``hold_work_lock``: the command holds
    the host's work lock while it runs (steps of a backup, restore or rollback). ``pgpassword``: the
    command's PGPASSWORD, sent over the channel (:func:`maasops.channel.open_command`).
    """
    status, out, err = channel.run_collect(c, command, step, user=user, timeout=timeout,
                                           hold_work_lock=hold_work_lock, pgpassword=pgpassword)
    result = Result(out.decode(errors="replace"), err.decode(errors="replace"), status)
    if check and status != 0:
        detail = channel.summary(result.stderr) or channel.summary(result.stdout) or "failed"
        raise RemoteError(host_label(c), step, f"{detail} (exit {status})")
    return result
