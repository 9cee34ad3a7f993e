"""Run one command on a host on its own SSH channel: sudo, the remote process's lifetime, its output.

Every remote command maasops runs goes through :func:`open_command`; :func:`run` is the plain function
(the Connection first, patchwork style) for a command whose output is small: bash's ``pipefail``, and a
failure as a :class:`~maasops.errors.RemoteError` naming the host and the step.

- **sudo only answers a prompt.** sudo gets a prompt unique to this command
  (``-S -p``); the password is sent only when that prompt appears on stderr, so a
  host that needs none never receives it (on stdin or in a file). A second
  prompt means the password was refused.
- **A ready line.** Before the command itself starts, the host prints a line
  unique to this command on stderr. Nothing is sent on stdin before it arrives.
- **Remote work dies with its session.** A command that reads no stdin runs in
  its own session (``setsid``) while a watcher waits for end of input on the
  channel: when the laptop closes the channel, dies or loses the link, sshd
  closes that input and the watcher kills the command's whole process group. A
  command fed through stdin ends at end of input by itself.
- **A database password comes over the channel.** A command given one
  (``pgpassword``) reads it as its first line of input, after the ready line,
  into ``PGPASSWORD`` in its own environment: never on a command line, never on
  the host's disk.
- **The work lock.** Steps of a run hold a shared ``flock`` on the host's work
  lock for as long as any of their processes lives (see :mod:`maasops.hostlock`),
  so a later run can wait for, or refuse, orphaned work.
"""

from __future__ import annotations

import secrets
import select
import time
from dataclasses import dataclass

import paramiko
from fabric import Connection

from maasops.command import Cmd, Q, shell
from maasops.errors import RemoteError, connect_error, host_label
from maasops.hostpaths import WORK_LOCK, WORK_ROOT

BLOCK = 1 << 20
READY_TIMEOUT = 60  # seconds for sudo and the shell to start the command
STDERR_KEEP = 64 * 1024  # bytes of a command's stderr kept for its error message

SUDO_HINT = "give the right sudo password (--prompt-for-sudo-password or the inventory's sudo_password_file)"


def _watched(cmd: Cmd, marker: str, reads_stdin: bool, hold_work_lock: bool, reads_password: bool = False) -> Cmd:
    """The script that prints ``marker`` and runs ``cmd`` so that it dies with the session (``reads_password``:
    with the first line of input as its PGPASSWORD)."""
    lock = Cmd("umask 077 && mkdir -p", Q(WORK_ROOT), "&& exec 9>>", Q(WORK_LOCK), "&& flock -s 9 &&") \
        if hold_work_lock else Cmd()
    ready = Cmd("cd / && printf '%s\\n'", Q(marker), ">&2 &&")
    if reads_password:
        ready = Cmd(ready, "IFS= read -r PGPASSWORD && export PGPASSWORD &&")
    if reads_stdin:
        return Cmd(lock, ready, "exec", shell(cmd))
    # fd 3 keeps the channel's input for the watcher; the command gets none, in its own session.
    return Cmd(lock, ready, "exec 3<&0;", "setsid", shell(cmd), "</dev/null 3<&- & p=$!;",
               "{ cat <&3 >/dev/null; kill -TERM -- -$p 2>/dev/null || kill -TERM $p; } >/dev/null 2>&1 9>&- &",
               "w=$!; exec 3<&-; wait $p; rc=$?; kill $w 2>/dev/null; exit $rc")


def _sudo(c: Connection, user: str, prompt: str) -> Cmd:
    if c.config.sudo.password:
        return Cmd("sudo", "-S", "-p", Q(prompt), "-u", Q(user), "--")
    return Cmd("sudo", "-n", "-u", Q(user), "--")


def open_command(c: Connection, cmd: Cmd, step: str, *, user: str | None = None, reads_stdin: bool = False,
                 hold_work_lock: bool = False,
                 pgpassword: bytes | None = None) -> tuple[paramiko.Channel, bytes, bytes]:
    """Start ``cmd`` on the host (with sudo as ``user`` if given) on a fresh channel.

    Returns the channel, ready for stdin (if ``reads_stdin``), and any stdout and stderr the
    command already wrote (the two streams arrive in no fixed order). Raises RemoteError when
    SSH, sudo or the shell fail before it starts. ``pgpassword`` goes to the command as its
    PGPASSWORD, sent once the ready line came.
    """
    token = secrets.token_hex(8)
    marker, prompt = f"maasops-ready-{token}", f"maasops-sudo-{token}:"
    body = shell(_watched(cmd, marker, reads_stdin, hold_work_lock and user == "root", pgpassword is not None))
    full = Cmd(_sudo(c, user, prompt), body) if user else body
    try:
        c.open()
        chan = c.client.get_transport().open_session()
        chan.exec_command(str(full))
    except Exception as exc:  # paramiko raises a zoo of exceptions on connect
        raise connect_error(c, step, exc) from None
    try:
        out, rest = _await_ready(c, chan, step, marker.encode(), prompt.encode())
        if pgpassword is not None:
            chan.sendall(pgpassword + b"\n")
    except BaseException:
        chan.close()
        raise
    return chan, out, rest


def _await_ready(c: Connection, chan: paramiko.Channel, step: str, marker: bytes,
                 prompt: bytes) -> tuple[bytes, bytes]:
    """Read stderr until the ready line; answer sudo's prompt once. Returns the stdout and stderr read so far
    (the command's, after the line)."""
    err = out = b""
    answered = 0
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        line_at = err.find(marker + b"\n")
        if line_at >= 0:
            return out, err[line_at + len(marker) + 1:]
        prompts = err.count(prompt)
        if prompts > answered:
            if answered:
                raise RemoteError(host_label(c), step, "sudo refused the password", SUDO_HINT)
            chan.sendall(c.config.sudo.password.encode() + b"\n")
            answered = prompts
        if time.monotonic() > deadline:
            raise RemoteError(host_label(c), step, f"the command did not start within {READY_TIMEOUT}s "
                              f"({_text(err.replace(prompt, b''))})")
        select.select([chan], [], [], 0.5)
        while chan.recv_ready():  # the command's first output may overtake the ready line
            out += chan.recv(BLOCK)
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(BLOCK)
        # sshd may send the exit status before the last of the output: only the end of the channel says all came
        elif chan.exit_status_ready() and (chan.eof_received or chan.closed) and not chan.recv_stderr_ready():
            status = chan.recv_exit_status()
            said = _text(err.replace(prompt, b""))
            if "a password is required" in said:
                raise RemoteError(host_label(c), step, "sudo needs a password on this host", SUDO_HINT)
            raise RemoteError(host_label(c), step, f"{said or 'the command could not start'} (exit {status})")


def summary(text: str) -> str:
    """What a failed command said, as one line: its first lines (where a pipeline's cause usually is) and last."""
    said = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if len(said) > 4:
        said = said[:2] + ["..."] + said[-2:]
    return " / ".join(said)


def _text(data: bytes) -> str:
    return summary(data.decode(errors="replace"))


def finish(c: Connection, chan: paramiko.Channel, step: str, stderr: bytes = b"") -> int:
    """Wait for the command's exit and return its status; raise RemoteError with its stderr when it failed."""
    status = chan.recv_exit_status()
    err = stderr + drain_stderr(chan)
    if status != 0:
        raise RemoteError(host_label(c), step, f"{_text(err) or 'failed'} (exit {status})")
    return status


def drain_stderr(chan: paramiko.Channel) -> bytes:
    """Whatever stderr the channel holds now (the last STDERR_KEEP bytes of it)."""
    err = b""
    while chan.recv_stderr_ready():
        err = (err + chan.recv_stderr(BLOCK))[-STDERR_KEEP:]
    return err


def run_collect(c: Connection, cmd: Cmd, step: str, *, user: str | None = None, timeout: float | None = None,
                hold_work_lock: bool = False, pgpassword: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` and collect its stdout and stderr (small outputs); returns (status, stdout, stderr).

    ``timeout`` bounds the whole run: the command is ended (its channel closed) when it passes.
    """
    chan, out, err = open_command(c, cmd, step, user=user, hold_work_lock=hold_work_lock, pgpassword=pgpassword)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while True:
            if deadline and time.monotonic() > deadline:
                raise RemoteError(host_label(c), step, f"no answer within {timeout:.0f}s: stopped")
            select.select([chan], [], [], 0.5)
            # Every byte arrives before the end of output is signalled: once it is, what is buffered is all.
            ended = chan.eof_received or chan.closed
            while chan.recv_ready():
                out += chan.recv(BLOCK)
            err = (err + drain_stderr(chan))[-STDERR_KEEP:]
            if ended:
                break
        return chan.recv_exit_status(), out, err
    except (OSError, paramiko.SSHException) as exc:
        raise connect_error(c, step, exc) from None
    finally:
        chan.close()


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
    command's PGPASSWORD, sent over the channel (:func:`open_command`).
    """
    status, out, err = run_collect(c, command, step, user=user, timeout=timeout, hold_work_lock=hold_work_lock,
                                   pgpassword=pgpassword)
    result = Result(out.decode(errors="replace"), err.decode(errors="replace"), status)
    if check and status != 0:
        detail = summary(result.stderr) or summary(result.stdout) or "failed"
        raise RemoteError(host_label(c), step, f"{detail} (exit {status})")
    return result
