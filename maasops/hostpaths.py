"""Where maasops keeps its own things on a controller: one name per place (MAAS's own paths are
:mod:`maasops.layouts`'). Every module that writes, locks, lists or prunes on a host takes its paths from here.

::

    /var/lib/maasops/                 WORK_ROOT: 0711, root's; the probe measures its free space
        work.lock                     WORK_LOCK: every step of a run holds it shared (maasops.channel)
        lock                          RUN_LOCK: one run per host at a time (maasops.hostlock)
        guard-units-stopped, guard.log  the guard that starts units a dead laptop left stopped (maasops.guard)
        restore/<run id>/             RUN_ROOT: a restore's uploads and its state record; restore/latest names the last
        dump/run.XXXXXXXX/            DUMP_ROOT: a backup's directory dump, written then removed (maasops.dumps)
    <tree>.maasops-aside-<run id>     ASIDE: a tree a restore moved aside (inside it when the tree is a mount point)
    <tree>.maasops-rolledback-<run id>  ROLLED_BACK: a restored tree a rollback moved away
"""

from __future__ import annotations

WORK_ROOT = "/var/lib/maasops"
WORK_LOCK = f"{WORK_ROOT}/work.lock"
RUN_LOCK = f"{WORK_ROOT}/lock"
GUARD_MARKER = f"{WORK_ROOT}/guard-units-stopped"  # one run per host at a time: one marker
GUARD_LOG = f"{WORK_ROOT}/guard.log"
RUN_ROOT = f"{WORK_ROOT}/restore"
DUMP_ROOT = f"{WORK_ROOT}/dump"
ASIDE = ".maasops-aside-"
ROLLED_BACK = ".maasops-rolledback-"
LEFTOVERS = ".maasops-*"  # the names a restore leaves inside a tree that is a mount point
