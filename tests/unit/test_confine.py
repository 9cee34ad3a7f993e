"""What a restore may write (issue 24), unit tests: the laptop re-writes the archive it checked, link chains
resolved through the archive as the host would, the host's listing of what it wrote compared with what was checked."""

from __future__ import annotations

import hashlib
import io
import subprocess

import pytest

from maasops import backupset, confine, tarstream
from maasops import manifest as mf
from maasops.errors import Damaged
from tests.rawtar import BASE, ZERO_BLOCKS, member

RULES = confine.Rules(("etc/maas", "var/lib/maas"), (("etc/maas", frozenset({"root", "maas"})),
                                                     ("var/lib/maas", frozenset({"root", "maas"}))))


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
