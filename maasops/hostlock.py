"""One maasops run per host at a time, and never while remote work of an earlier run still lives.

Two locks on the host:

- the **run lock**: ``flock`` holds ``LOCK_FILE`` while ``cat`` waits on an SSH
  channel's stdin. Closing the channel releases it, and so does the laptop dying
  or the link dropping (sshd ends the session, ``cat`` sees end of input): a run
  lock is never left behind by a run that is gone.
- the **work lock**: every step of a run holds ``WORK_LOCK`` shared for as
  long as any process of it lives (see :mod:`maasops.channel`). Remote work dies
  with its session, but not in no time: after taking the run lock, a new run
  waits for the work lock exclusively, so it never starts (or rolls back) while
  an earlier run's ``tar`` is still writing, and refuses if that work outlives
  ``ORPHAN_WAIT``.
"""

from __future__ import annotations

from fabric import Connection

from maasops import channel, fleet
from maasops.command import Cmd, Q
from maasops.errors import RemoteError, host_label
from maasops.hostpaths import RUN_LOCK, WORK_LOCK, WORK_ROOT

HELD = 75  # flock's exit code when another run holds the lock
ORPHAN_WAIT = 60  # seconds to wait for an earlier run's remote work to end


class HostLock:
    """A held lock; ``release()`` (or the end of the SSH session) frees it."""

    def __init__(self, chan):
        self._chan = chan

    def release(self) -> None:
        """Let the host's lock go."""
        try:
            self._chan.shutdown_write()
            self._chan.recv_exit_status()
        finally:
            self._chan.close()


def _wait_for_orphans(c: Connection, what: str) -> None:
    """Wait until no process of an earlier run holds the work lock (RemoteError when it outlives ORPHAN_WAIT)."""
    cmd = Cmd("umask 077 && mkdir -p", Q(WORK_ROOT), "&& flock -x -w", str(ORPHAN_WAIT), "-E", str(HELD),
              Q(WORK_LOCK), "true")
    result = channel.run(c, cmd, f"lock the host for {what}", user="root", check=False)
    if result.exited == HELD:
        raise RemoteError(host_label(c), f"lock the host for {what}", "remote work of an earlier maasops run is "
                          f"still running after {ORPHAN_WAIT}s", f"see which processes hold {WORK_LOCK} "
                          "(fuser -v) and end them, then run again")
    if result.exited != 0:
        raise RemoteError(host_label(c), f"lock the host for {what}", f"flock failed (exit {result.exited}): "
                          f"{result.stderr.strip()[-200:]}", "is util-linux's flock installed?")


def acquire(c: Connection, what: str) -> HostLock:
    """Take the host's maasops lock for ``what`` or raise RemoteError naming who holds it."""
    inner = "echo locked; exec cat >/dev/null"
    cmd = Cmd("umask 077 && mkdir -p", Q(WORK_ROOT), "&& exec flock -n -E", str(HELD), Q(RUN_LOCK), "sh -c", Q(inner))
    chan, line, _ = channel.open_command(c, cmd, "lock the host", user="root", reads_stdin=True)
    while not line.endswith(b"\n"):
        data = chan.recv(64)
        if not data:
            break
        line += data
    if line.strip() != b"locked":
        status = chan.recv_exit_status()
        chan.close()
        if status == HELD:
            raise RemoteError(host_label(c), f"lock the host for {what}", "another maasops run is working on this host",
                              f"wait for it to finish; it holds {RUN_LOCK} for as long as its SSH session lasts")
        raise RemoteError(host_label(c), f"lock the host for {what}", f"flock failed (exit {status})",
                          "is util-linux's flock installed?")
    lock = HostLock(chan)
    try:
        _wait_for_orphans(c, what)
    except BaseException:
        lock.release()
        raise
    return lock


def acquire_all(targets: list[fleet.Target], what: str,
                parallel: int = fleet.PARALLEL) -> tuple[dict[str, HostLock], dict[str, BaseException]]:
    """Lock every target; returns the locks taken and, per host, why a lock could not be taken."""
    got = fleet.each(targets, lambda t: acquire(t.connection, what), parallel)
    locks = {n: v for n, v in got.items() if isinstance(v, HostLock)}
    return locks, {n: v for n, v in got.items() if not isinstance(v, HostLock)}


def release_all(locks: dict[str, HostLock]) -> None:
    """Release every lock; a host that is gone has released its lock already."""
    for lock in locks.values():
        try:
            lock.release()
        except Exception:  # the session is gone, and the lock with it
            pass
