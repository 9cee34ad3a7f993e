"""Where maasops keeps its own things on a controller: one name per place (MAAS's own paths are
:mod:`maasops.layouts`'). Every module that writes, locks, lists or prunes on a host takes its paths from here.

::

    /var/lib/maasops/                 WORK_ROOT: 0711, root's; the probe measures its free space
        work.lock                     WORK_LOCK: every step of a run holds it shared (maasops.channel)
        lock                          RUN_LOCK: one run per host at a time (maasops.hostlock)
        guard-units-stopped, guard.log  the guard that starts units a dead laptop left stopped (maasops.guard)
        restore/<run id>/             RUN_ROOT: a restore's run directory (run_dir): its uploads (upload_names) and
                                      its state record (state_file); restore/latest names the last
        dump/run.XXXXXXXX/            DUMP_ROOT: a backup's directory dump, written then removed
                                      (maasops.parts.database)
    <tree>.maasops-aside-<run id>     ASIDE: a tree a restore moved aside (inside it when the tree is a mount point)
    <tree>.maasops-rolledback-<run id>  ROLLED_BACK: a restored tree a rollback moved away
"""

from __future__ import annotations

import re

from maasops import compression

WORK_ROOT = "/var/lib/maasops"
WORK_LOCK = f"{WORK_ROOT}/work.lock"
RUN_LOCK = f"{WORK_ROOT}/lock"
GUARD_MARKER = f"{WORK_ROOT}/guard-units-stopped"  # one run per host at a time: one marker
GUARD_LOG = f"{WORK_ROOT}/guard.log"
RUN_ROOT = f"{WORK_ROOT}/restore"
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z")  # a restore run's id (fullmatch): its start in UTC (restore.run_id_now)
DUMP_ROOT = f"{WORK_ROOT}/dump"
ASIDE = ".maasops-aside-"
ROLLED_BACK = ".maasops-rolledback-"
LEFTOVERS = ".maasops-*"  # the names a restore leaves inside a tree that is a mount point
UPLOAD_ARCHIVE = "upload-config.tar"  # in a run directory: the config archive (maasops.parts.config)
UPLOAD_IMAGES = "upload-images.tar"  # the images part (maasops.parts.images)
UPLOAD_DUMP = "upload-maasdb.sql"  # the database dump (maasops.parts.database)


def run_dir(run_id: str) -> str:
    """The host's private directory for one restore run."""
    return f"{RUN_ROOT}/{run_id}"


def state_file(run_id: str) -> str:
    """The host's record of one restore run (what --rollback reads)."""
    return f"{run_dir(run_id)}/state"


def aside_path(path: str, run_id: str, inside: bool) -> str:
    """Where a tree is moved aside: beside it, or (a mount point) inside it."""
    return f"{path}/{ASIDE}{run_id}" if inside else f"{path}{ASIDE}{run_id}"


def upload_names(rdir: str) -> tuple[str, ...]:
    """Every name an upload may have in a run directory (each compression)."""
    return tuple(f"{rdir}/{name}{c.suffix}" for name in (UPLOAD_ARCHIVE, UPLOAD_DUMP, UPLOAD_IMAGES)
                 for c in compression.CODECS.values())
