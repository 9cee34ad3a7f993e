"""One strict tar parser, the laptop's re-writing of the archive it checked, link chains (issue 24), unit tests.

The archives are laid out byte by byte (tests/rawtar.py); GNU tar itself says what the host would
extract from them, so each test shows the disagreement it closes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from maasops import backupset, tarstream
from tests.rawtar import BASE, ZERO_BLOCKS, header, member, pad, pax


def gnu_tar_lists(tar: bytes) -> list[str]:
    """What GNU tar on a host reads from ``tar``."""
    r = subprocess.run(["tar", "-tf", "-"], input=tar, capture_output=True)
    return r.stdout.decode().split()


def strict(tar: bytes) -> list[tarstream.Header]:
    r = tarstream.TarReader(io.BytesIO(tar))
    return [h for h in r if r.read(1 << 20) is not None]


def python_tarfile_lists(tar: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r|") as t:
        return [m.name for m in t]


def test_gnu_tars_own_archives_read_alike_in_both_formats(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "f").write_text("hi\n")
    (d / "l").symlink_to("f")
    (d / "h").hardlink_to(d / "f")
    (d / ("long" * 40)).write_text("x")
    for fmt in ("gnu", "posix"):
        tar = subprocess.run(["tar", "-cf", "-", "-C", str(tmp_path), f"--format={fmt}", "d"], capture_output=True,
                             check=True).stdout
        got = {h.name: (h.kind, h.link, h.size) for h in strict(tar)}
        assert got["d"] == ("dir", "", 0) and got["d/sub"] == ("dir", "", 0)
        assert got["d/l"] == ("symlink", "f", 0) and got["d/" + "long" * 40][0] == "file"
        assert {got["d/f"][0], got["d/h"][0]} == {"file", "hardlink"}


def test_a_bad_header_after_offset_0_is_refused_where_tarfile_stops_and_gnu_tar_extracts():
    hidden = (header("var/lib/maas/hidden", size=2, devmajor=b"zzzzzzz\0") + pad(b"x\n")
              + member("var/lib/maas/sda", flag=b"4", mode=0o666))
    tar = BASE + hidden + ZERO_BLOCKS
    assert python_tarfile_lists(tar) == ["etc/maas", "etc/maas/rackd.conf"]  # the old check's view
    assert "var/lib/maas/sda" in gnu_tar_lists(tar)  # ... and the host's
    with pytest.raises(tarstream.Malformed, match="devmajor field .* is no octal number"):
        strict(tar)


def test_a_pax_header_with_gnu_sparse_name_and_path_is_refused():
    evil = pax([("GNU.sparse.name", "etc/maas/regiond.conf"), ("path", "var/lib/maas/innocent")])
    tar = BASE + evil + member("var/lib/maas/innocent", b"evil\n") + ZERO_BLOCKS
    assert python_tarfile_lists(tar)[-1] == "var/lib/maas/innocent"
    assert gnu_tar_lists(tar)[-1] == "etc/maas/regiond.conf"  # the two parsers name different files
    with pytest.raises(tarstream.Malformed, match="GNU.sparse.name"):
        strict(tar)


@pytest.mark.parametrize("tail,says", [
    (member("x", flag=b"S"), "type flag b'S'"),
    (member("x", flag=b"g"), "type flag b'g'"),
    (member("x", flag=b"\0"), "type flag b'\\\\x00'"),
    (header("x", size=2, magic=b"garbage\0") + pad(b"x\n"), "no ustar or GNU magic"),
    (header("x", size=2)[:148] + b"0000000\0" + header("x", size=2)[156:] + pad(b"x\n"), "checksum is wrong"),
    (header("././@LongLink", b"L", size=1 << 30), "more than the 65536 maasops reads"),
    (pax([("path", "a"), ("path", "b")]) + member("a"), "keyword 'path' twice"),
    (pax([("SCHILY.xattr.user.x", "1")]) + member("a"), "SCHILY.xattr.user.x"),
    (pax([("path", "a")]), "ends right after an extended header"),
    (member("x", b"1" * 600)[:700], "cut short"),
])
def test_headers_it_does_not_fully_understand_are_refused(tail, says):
    with pytest.raises(tarstream.Malformed, match=says.replace("(", r"\(").replace("[", r"\[")):
        strict(BASE + tail + ZERO_BLOCKS)


@pytest.mark.parametrize("after,says", [
    (b"\0" * 512 + member("var/lib/maas/x"), "a lone zero block"),
    (ZERO_BLOCKS + member("var/lib/maas/x"), "not zeros after the archive's end"),
    (b"", "cut short"),
])
def test_anything_after_the_end_but_zeros_is_refused(after, says):
    tar = BASE + after if after else BASE
    with pytest.raises(tarstream.Malformed, match=says):
        strict(tar)


def test_endless_zeros_after_the_end_are_stopped():
    zeros = io.BufferedReader(io.BytesIO(BASE + bytes(tarstream.MAX_TRAILING + 4096)))
    with pytest.raises(tarstream.Malformed, match="more than 16777216 bytes after the archive's end"):
        strict(zeros.read())


def test_zeros_after_the_end_are_read_and_an_end_is_needed():
    assert [h.name for h in strict(BASE + ZERO_BLOCKS + b"\0" * 9216)] == ["etc/maas", "etc/maas/rackd.conf"]


def test_duplicate_names_are_refused_by_the_secrets_reader():
    tar = BASE + member("var/lib/maas", flag=b"5") + member("var/lib/maas/secret", b"a\n") + member(
        "var/lib/maas/secret", b"b\n") + ZERO_BLOCKS
    with pytest.raises(tarstream.Malformed, match="/var/lib/maas/secret: in the archive twice"):
        backupset.read_member(io.BytesIO(tar), "var/lib/maas/secret", "none")
    one = BASE + member("var/lib/maas", flag=b"5") + member("var/lib/maas/secret", b"a\n") + ZERO_BLOCKS
    assert backupset.read_member(io.BytesIO(one), "var/lib/maas/secret", "none") == b"a\n"


