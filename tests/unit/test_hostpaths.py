"""Where maasops keeps its own things on a controller: every place under WORK_ROOT, each with one name."""

from __future__ import annotations

import posixpath
from fnmatch import fnmatch

from maasops import compression, hostpaths, restore
from maasops.hostpaths import RUN_ROOT, WORK_ROOT, aside_path, run_dir, state_file, upload_names

RUN = "20240131T235959Z"


def test_maasops_keeps_its_locks_guard_runs_and_dumps_under_its_work_root():
    assert WORK_ROOT == "/var/lib/maasops"
    for place in (hostpaths.WORK_LOCK, hostpaths.RUN_LOCK, hostpaths.GUARD_MARKER, hostpaths.GUARD_LOG, RUN_ROOT,
                  hostpaths.DUMP_ROOT):
        assert posixpath.dirname(place) == WORK_ROOT, place
    names = [hostpaths.WORK_LOCK, hostpaths.RUN_LOCK, hostpaths.GUARD_MARKER, hostpaths.GUARD_LOG, RUN_ROOT,
             hostpaths.DUMP_ROOT]
    assert len(set(names)) == len(names)


def test_a_restore_run_has_its_own_directory_and_state_record_under_the_run_root():
    assert run_dir(RUN) == f"{RUN_ROOT}/{RUN}" == "/var/lib/maasops/restore/20240131T235959Z"
    assert state_file(RUN) == f"{run_dir(RUN)}/state"


def test_a_tree_is_moved_aside_beside_it_or_inside_a_mount_point():
    assert aside_path("/var/lib/maas", RUN, inside=False) == f"/var/lib/maas.maasops-aside-{RUN}"
    assert aside_path("/var/lib/maas", RUN, inside=True) == f"/var/lib/maas/.maasops-aside-{RUN}"
    assert posixpath.dirname(aside_path("/var/lib/maas", RUN, inside=False)) == "/var/lib"


def test_what_a_restore_leaves_inside_a_mount_point_matches_the_leftovers_pattern():
    inside = posixpath.basename(aside_path("/srv/maas", RUN, inside=True))
    assert fnmatch(inside, hostpaths.LEFTOVERS)
    assert fnmatch(f"{hostpaths.ROLLED_BACK}{RUN}", hostpaths.LEFTOVERS)
    assert not fnmatch("maasops-aside-x", hostpaths.LEFTOVERS) and not fnmatch(".cache", hostpaths.LEFTOVERS)


def test_upload_names_are_every_part_in_every_compression_inside_the_run_directory():
    rdir = run_dir(RUN)
    names = upload_names(rdir)
    parts = (hostpaths.UPLOAD_ARCHIVE, hostpaths.UPLOAD_DUMP, hostpaths.UPLOAD_IMAGES)
    assert len(names) == len(set(names)) == len(parts) * len(compression.CODECS)
    assert all(posixpath.dirname(n) == rdir for n in names)
    assert {f"{rdir}/upload-config.tar", f"{rdir}/upload-config.tar.gz", f"{rdir}/upload-maasdb.sql.zst",
            f"{rdir}/upload-images.tar.gz"} <= set(names)
    for part in parts:
        for c in compression.CODECS.values():
            assert f"{rdir}/{part}{c.suffix}" in names


def test_a_run_id_is_a_restores_start_in_utc_and_nothing_else():
    """One pattern for the set's restore records and the hosts' own (rollback reads both)."""
    assert hostpaths.RUN_ID.fullmatch(restore.run_id_now())
    for bad in ("20260101T000000Z\n", "20260101T000000Z-2", "２０２６0101T000000Z", "../20260101T000000Z", ""):
        assert not hostpaths.RUN_ID.fullmatch(bad), bad
