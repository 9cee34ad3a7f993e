"""The backup set on the laptop (maasops.backupset): private directories and files, a set named .partial until it
is complete, files read following no link anywhere on the way, a small file's bound."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
from pathlib import Path

import pytest

from maasops import backupset


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture
def open_umask():
    """A umask that would leave directories and files readable by everyone."""
    old = os.umask(0o002)
    yield
    os.umask(old)


def test_private_dir_makes_every_missing_parent_0700_and_leaves_existing_ones(tmp_path, open_umask):
    tmp_path.chmod(0o755)
    made = backupset.private_dir(tmp_path / "a" / "b" / "c")
    assert made == tmp_path / "a" / "b" / "c"
    assert [_mode(p) for p in (made, made.parent, made.parent.parent)] == [0o700] * 3
    assert _mode(tmp_path) == 0o755
    assert backupset.private_dir(made) == made  # already there: nothing to do


def test_a_new_set_is_a_private_partial_directory_named_by_the_utc_time(tmp_path, open_umask):
    first = backupset.new_set(tmp_path / "backups", "prod")
    assert first.parent == tmp_path / "backups" / "prod" and first.name.endswith(backupset.PARTIAL)
    assert backupset.SET_NAME.fullmatch(first.name.removesuffix(backupset.PARTIAL))
    assert _mode(first) == _mode(first.parent) == _mode(first.parent.parent) == 0o700
    assert backupset.newest_complete(tmp_path / "backups", "prod") is None  # a partial set is never complete


def test_sets_made_in_the_same_second_get_their_own_names(tmp_path, monkeypatch):
    monkeypatch.setattr(backupset.time, "gmtime", lambda: (2026, 1, 2, 3, 4, 5, 4, 2, 0))
    first = backupset.new_set(tmp_path, "prod")
    second = backupset.new_set(tmp_path, "prod")
    assert (first.name, second.name) == ("20260102T030405Z.partial", "20260102T030405Z-2.partial")
    # completed sets keep their names too: a backup in the same second as a finished one (or after the clock
    # stepped back) gets the next free name, partial or complete (before: new_set looped for ever)
    backupset.complete(first)
    backupset.complete(second)
    third = backupset.new_set(tmp_path, "prod")
    assert third.name == "20260102T030405Z-3.partial"


def test_complete_drops_partial_and_the_set_is_then_the_newest(tmp_path):
    older = backupset.complete(backupset.private_dir(tmp_path / "prod" / "20250101T000000Z.partial"))
    newer = backupset.complete(backupset.private_dir(tmp_path / "prod" / "20260101T000000Z.partial"))
    assert (older.name, newer.name) == ("20250101T000000Z", "20260101T000000Z")
    (tmp_path / "prod" / "20270101T000000Z.partial").mkdir()
    (tmp_path / "prod" / "notes").mkdir()
    assert backupset.newest_complete(tmp_path, "prod") == newer
    assert backupset.newest_complete(tmp_path, "other") is None


def test_write_json_writes_a_private_file_whole_or_not_at_all(tmp_path, open_umask):
    path = tmp_path / "manifest.json"
    backupset.write_json(path, {"deployment": "prod", "hosts": {}})
    assert json.loads(path.read_text()) == {"deployment": "prod", "hosts": {}} and _mode(path) == 0o600
    with pytest.raises(TypeError):
        backupset.write_json(path, {"not json": object()})
    assert json.loads(path.read_text())["deployment"] == "prod"  # the old file stands
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # no .tmp left behind


def test_file_size_is_a_regular_files_only(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    (tmp_path / "d").mkdir()
    assert backupset.file_size(tmp_path / "f") == 3
    assert [backupset.file_size(tmp_path / n) for n in ("link", "d", "missing")] == [None, None, None]


@pytest.fixture
def set_dir(tmp_path) -> Path:
    """A set with rack1/archive.tar and, elsewhere, the same file for links to point at."""
    for where in ("set", "elsewhere"):
        (tmp_path / where / "rack1").mkdir(parents=True)
        (tmp_path / where / "rack1" / "archive.tar").write_bytes(b"bytes")
    return tmp_path / "set"


def test_open_in_reads_a_regular_file_of_the_set(set_dir):
    with backupset.open_in(set_dir, "rack1/archive.tar") as f:
        assert f.read() == b"bytes"
    assert backupset.file_sha256(set_dir / "rack1" / "archive.tar") == backupset.LocalFiles(set_dir).sha256(
        "rack1/archive.tar")


@pytest.mark.parametrize("where", ["the set", "a directory", "the file"])
def test_open_in_refuses_a_link_anywhere_on_the_way(set_dir, where):
    elsewhere = set_dir.parent / "elsewhere"
    if where == "the set":
        (set_dir.parent / "link").symlink_to(elsewhere)
        set_dir = set_dir.parent / "link"
    elif where == "a directory":
        os.rename(set_dir / "rack1", set_dir / "moved")
        (set_dir / "rack1").symlink_to(elsewhere / "rack1")
    else:
        (set_dir / "rack1" / "archive.tar").unlink()
        (set_dir / "rack1" / "archive.tar").symlink_to(elsewhere / "rack1" / "archive.tar")
    with pytest.raises(OSError) as got:
        backupset.open_in(set_dir, "rack1/archive.tar")
    assert where == "the set" or "a symbolic link (or what is not a directory) on the way" in str(got.value)
    assert got.value.errno in (errno.ELOOP, errno.ENOTDIR)


def test_open_in_refuses_what_is_not_a_regular_file_without_waiting(set_dir):
    os.mkfifo(set_dir / "rack1" / "fifo")  # no writer: opening it for reading would wait
    (set_dir / "rack1" / "dir").mkdir()
    for rel in ("rack1/fifo", "rack1/dir"):
        with pytest.raises(OSError, match="not a regular file"):
            backupset.open_in(set_dir, rel)
    with pytest.raises(FileNotFoundError):
        backupset.open_in(set_dir, "rack1/missing")


def test_read_small_reads_up_to_its_bound(set_dir):
    assert backupset.read_small(set_dir, "rack1/archive.tar", 5) == b"bytes"
    with pytest.raises(ValueError, match="^rack1/archive.tar: larger than 0 KiB: not a file maasops writes$"):
        backupset.read_small(set_dir, "rack1/archive.tar", 4)
    (set_dir / "big").write_bytes(b"x" * 3000)
    with pytest.raises(ValueError, match="larger than 2 KiB"):
        backupset.read_small(set_dir, "big", 2048)


def test_a_dumps_last_line_skips_comment_frames_blanks_and_unrestrict():
    dump = b"CREATE TABLE t ();\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc123\n\n"
    assert backupset.last_line(io.BytesIO(dump)) == "-- PostgreSQL database dump complete"
    last, sha, size, plain = backupset.read_dump(io.BytesIO(dump), "none")
    assert (last, size, plain) == ("-- PostgreSQL database dump complete", len(dump), len(dump))
    assert backupset.last_line(io.BytesIO(b"")) == ""
