"""One maasops run per host at a time: a lock held for as long as an SSH channel stays open.

``flock`` on the host holds ``LOCK_FILE`` while ``cat`` waits on the channel's
stdin. Closing the channel releases it, and so does the laptop dying or the link
dropping (sshd ends the session, ``cat`` sees end of input): a lock can never be
left behind by a run that is gone.
"""

from __future__ import annotations

import shlex

from fabric import Connection

from maasops import fleet, stream
from maasops.remote import RemoteError, host_label

LOCK_DIR = "/var/lib/maasops"
LOCK_FILE = f"{LOCK_DIR}/lock"
HELD = 75  # flock's exit code when another run holds the lock


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


def acquire(c: Connection, what: str) -> HostLock:
    """Take the host's maasops lock for ``what`` or raise RemoteError naming who holds it."""
    q = shlex.quote
    cmd = (f"umask 077 && mkdir -p {q(LOCK_DIR)} && exec flock -n -E {HELD} {q(LOCK_FILE)} "
           f"sh -c {q('echo locked; exec cat >/dev/null')}")
    chan = stream.open_channel(c, cmd, "lock the host", "root")
    line = b""
    while not line.endswith(b"\n"):
        data = chan.recv(64)
        if not data:
            break
        line += data
    if line.strip() == b"locked":
        return HostLock(chan)
    status = chan.recv_exit_status()
    chan.close()
    if status == HELD:
        raise RemoteError(host_label(c), f"lock the host for {what}", "another maasops run is working on this host",
                          f"wait for it to finish; it holds {LOCK_FILE} for as long as its SSH session lasts")
    raise RemoteError(host_label(c), f"lock the host for {what}", f"flock failed (exit {status})",
                      "is util-linux's flock installed?")


def acquire_all(targets: list[fleet.Target], what: str, parallel: int = 8) -> tuple[dict[str, HostLock],
                                                                                  dict[str, BaseException]]:
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
