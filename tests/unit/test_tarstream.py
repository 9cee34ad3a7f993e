"""One strict tar parser, the laptop's re-writing of the archive it checked, link chains (issue 24), unit tests.

The archives are laid out byte by byte (tests/rawtar.py); GNU tar itself says what the host would
extract from them, so each test shows the disagreement it closes.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile

import pytest

from maasops import backupset, confine, tarstream
from maasops import manifest as mf
from maasops.errors import Damaged
from maasops.hostfiles import copy_yaml_keys, replace_yaml_key
from tests.rawtar import ZERO_BLOCKS, header, member, pad, pax

RULES = confine.Rules(("etc/maas", "var/lib/maas"), (("etc/maas", frozenset({"root", "maas"})),
                                                     ("var/lib/maas", frozenset({"root", "maas"}))))
BASE = member("etc/maas", flag=b"5", mode=0o755) + member("etc/maas/rackd.conf", b"maas_url: x\n")


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


def _listing(tar: bytes) -> tuple[mf.Member, ...]:
    return tuple(mf.Member(**e) for e in backupset.read_archive(io.BytesIO(tar), "none")[0])


def _emit(tar: bytes, listing=None, sha=None) -> bytes:
    return b"".join(confine.emitted(io.BytesIO(tar), "none", RULES, _listing(tar) if listing is None else listing,
                                    sha or hashlib.sha256(tar).hexdigest()))


def test_the_re_written_archive_is_what_was_checked_and_gnu_tar_reads_it_so(tmp_path):
    body = (member("var/lib/maas", flag=b"5", mode=0o755) + member("var/lib/maas/" + "n" * 150, b"data\n")
            + member("var/lib/maas/l", flag=b"2", link="n" * 99, mode=0o777)
            + member("var/lib/maas/" + "n" * 99, b"short\n")
            + member("var/lib/maas/h", flag=b"1", link="etc/maas/rackd.conf"))
    tar = BASE + body + ZERO_BLOCKS
    out = _emit(tar)
    assert _listing(out) == _listing(tar) and len(out) % 10240 == 0
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", "-", "-C", str(tmp_path / "x")], input=out, check=True)
    assert (tmp_path / "x/var/lib/maas/l").read_text() == "short\n"
    assert (tmp_path / ("x/var/lib/maas/" + "n" * 150)).read_text() == "data\n"
    assert (tmp_path / "x/var/lib/maas/h").read_text() == "maas_url: x\n"
    assert len(out) <= confine.emitted_size(_listing(tar))


def test_the_re_writer_refuses_what_the_listing_does_not_say_and_damaged_bytes():
    tar = BASE + ZERO_BLOCKS
    with pytest.raises(confine.Violation, match="not as the manifest lists it"):
        _emit(tar, listing=_listing(tar)[:1])
    with pytest.raises(Damaged):
        _emit(tar, sha="0" * 64)
    bad = BASE + member("x", flag=b"S") + ZERO_BLOCKS
    with pytest.raises(Damaged):  # unreadable and not the recorded bytes: damaged
        _emit(bad, listing=_listing(tar), sha="0" * 64)
    with pytest.raises(tarstream.Malformed, match="type flag b'S'"):
        _emit(bad, listing=_listing(tar))


def test_no_end_marker_is_sent_before_the_whole_archive_passed():
    tar = BASE + member("etc/maas/rackd.conf", b"second\n") + ZERO_BLOCKS
    sent = []
    with pytest.raises(tarstream.Malformed, match="in the archive twice"):
        for chunk in confine.emitted(io.BytesIO(tar), "none", RULES, _listing(BASE + ZERO_BLOCKS),
                                     hashlib.sha256(tar).hexdigest()):
            sent.append(chunk)
    assert sent and not b"".join(sent).endswith(tarstream.END)


def test_duplicate_names_are_refused_by_the_secrets_reader():
    tar = BASE + member("var/lib/maas", flag=b"5") + member("var/lib/maas/secret", b"a\n") + member(
        "var/lib/maas/secret", b"b\n") + ZERO_BLOCKS
    with pytest.raises(tarstream.Malformed, match="/var/lib/maas/secret: in the archive twice"):
        backupset.read_member(io.BytesIO(tar), "var/lib/maas/secret", "none")
    one = BASE + member("var/lib/maas", flag=b"5") + member("var/lib/maas/secret", b"a\n") + ZERO_BLOCKS
    assert backupset.read_member(io.BytesIO(one), "var/lib/maas/secret", "none") == b"a\n"


def link(name: str, target: str) -> confine.Entry:
    return confine.Entry(name, "symlink", 0o777, "root", "root", target)


def _check_all(entries: list[confine.Entry]) -> list[str]:
    listing = [mf.Member("/" + e.name, e.kind, f"{e.mode:04o}", 0, 0, e.user, e.group, link=e.link or None)
               for e in entries]
    return confine.check_listing(listing, RULES)


DIR = confine.Entry("etc/maas", "dir", 0o755, "root", "root")


@pytest.mark.parametrize("entries,says", [
    ([DIR, link("etc/maas/l2", "."), link("etc/maas/regiond.conf", "l2/../issue")], "climbs out of /etc/maas"),
    ([DIR, link("etc/maas/regiond.conf", "l2/../issue"), link("etc/maas/l2", ".")], "climbs out of /etc/maas"),
    ([DIR, link("etc/maas/l2", "/etc"), link("etc/maas/x", "l2/issue")], "leads to /etc"),
    ([DIR, link("etc/maas/a", "b"), link("etc/maas/b", "a")], "a loop"),
    ([DIR, link("etc/maas/up", "../maas/x")], "climbs out of /etc/maas"),
    ([DIR, link("etc/maas/t", "/var/lib/maas/../../../etc/shadow")], "climbs out"),
    ([link("etc/maas", "/var/lib/maas")], "a tree of the layout that is a symbolic link"),
    ([DIR, link("etc/maas/l", "."), confine.Entry("etc/maas/l/x", "file", 0o644, "root", "root")],
     "below the symbolic link /etc/maas/l"),
    ([DIR, link("etc/maas/self", "self")], "a loop"),
])
def test_links_are_resolved_through_the_archive_as_the_host_would(entries, says):
    problems = _check_all(entries)
    assert problems and says in " ".join(problems), problems


def test_links_that_stay_in_the_trees_pass():
    ok = [DIR, link("etc/maas/l2", "."), link("etc/maas/x", "l2/rackd.conf"),
          link("etc/maas/y", "/var/lib/maas/secret"), link("etc/maas/z", "sub/../rackd.conf")]
    assert _check_all(ok) == []
    assert confine.resolve("etc/maas/l2/l2/x", {"etc/maas/l2": "."}, RULES.roots) == "etc/maas/x"


def test_the_hosts_listing_is_compared_with_what_was_checked():
    members = (mf.Member("/etc/maas", "dir", "0755", 0, 0, "root", "root"),
               mf.Member("/etc/maas/rackd.conf", "file", "0640", 0, 0, "root", "maas", 3, "0" * 64),
               mf.Member("/etc/maas/l", "symlink", "0777", 0, 0, "root", "root", link="rackd.conf"))
    judge = confine.extracted_judge(members, lambda p: p)
    good = "\0".join(["d", "root", "root", "755", "", "/etc/maas",
                      "f", "root", "maas", "640", "", "/etc/maas/rackd.conf",
                      "l", "root", "root", "777", "rackd.conf", "/etc/maas/l", ""])
    assert judge(good) is None
    planted = good.replace("f\x00root\x00maas\x00640\x00", "l\x00root\x00maas\x00777\x00/etc/issue")
    assert "a 'l' on the host" in judge(planted)
    assert "on the host, not in the archive" in judge(good + "\0".join(["p", "root", "root", "644", "", "/fifo", ""]))
    assert "mode 4755" in judge(good.replace("640", "4755"))
    assert "in the archive, not on the host" in judge(good.split("\0l\0")[0] + "\0")


def _sh(cmd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", str(cmd)], capture_output=True, text=True)


def test_root_writes_never_follow_a_link(tmp_path):
    tree = tmp_path / "etc/maas"
    tree.mkdir(parents=True)
    issue = tmp_path / "etc/issue"
    issue.write_text("Ubuntu\n")
    (tree / "l2").symlink_to(".")
    (tree / "rackd.conf").symlink_to("l2/../../issue")
    r = _sh(replace_yaml_key(str(tree), str(tree / "rackd.conf"), "maas_url", "maas_url: http://x/\n"))
    assert r.returncode == 1 and "rackd.conf is a symbolic link" in r.stderr
    (tree / "sub").symlink_to(tmp_path / "etc")
    r = _sh(copy_yaml_keys(str(tree), str(tmp_path / "src"), str(tree / "sub/issue"), ("maas_url",)))
    (tmp_path / "src").write_text("maas_url: http://y/\n")
    r = _sh(copy_yaml_keys(str(tree), str(tmp_path / "src"), str(tree / "sub/issue"), ("maas_url",)))
    assert r.returncode == 1 and "sub is a symbolic link" in r.stderr
    assert issue.read_text() == "Ubuntu\n"
    conf = tree / "regiond.conf"
    conf.write_text("maas_url: http://old/\ndatabase_host: a\n")
    conf.chmod(0o640)
    r = _sh(replace_yaml_key(str(tree), str(conf), "database_host", "database_host: b\n"))
    assert r.returncode == 0, r.stderr
    assert conf.read_text() == "maas_url: http://old/\ndatabase_host: b\n" and conf.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tree.iterdir()) == ["l2", "rackd.conf", "regiond.conf", "sub"]
