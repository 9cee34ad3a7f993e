"""A host's own guard over a backup's downtime: the units come back even if the laptop dies.

A backup stops MAAS's units for a few seconds. If maasops is killed then (``kill -9``,
a laptop that loses power or its link), no undo runs on the laptop. So before the stop,
the host gets a guard: a detached process that waits for the run's host lock
(:mod:`maasops.hostlock`; it is free once the run's SSH session is gone, however it
ended; ``flock -o`` keeps that lock out of what it starts) and then, if the run did not
start the units itself (its marker is still there), starts them. A run that ends well
removes the marker when it starts the units; its guard then finds nothing to do.
"""

from __future__ import annotations

from maasops.command import Cmd, Q
from maasops.hostpaths import GUARD_LOG, GUARD_MARKER, RUN_LOCK, WORK_ROOT


def arm(restart: Cmd) -> Cmd:
    """Leave a guard on the host that runs ``restart`` once the run's lock is free, unless :func:`disarm` ran."""
    body = Cmd("if [ -f", Q(GUARD_MARKER), "]; then", restart, "; rm -f", Q(GUARD_MARKER),
               "; echo \"$(date -u +%FT%TZ) the run that stopped the units is gone: started them again\" >>",
               Q(GUARD_LOG), "; fi")
    return Cmd("umask 077 && mkdir -p", Q(WORK_ROOT), "&& touch", Q(GUARD_MARKER), "&& setsid -f flock -o",
               Q(RUN_LOCK), "bash -c", Q(body), "</dev/null >/dev/null 2>&1 9>&-")


def disarm() -> Cmd:
    """Tell the guard the run started the units itself."""
    return Cmd("rm -f", Q(GUARD_MARKER))
