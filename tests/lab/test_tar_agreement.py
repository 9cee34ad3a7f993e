"""What the laptop checks is what the host extracts (issue 24, items 1, 2 and the secret of 5), against the lab.

Each attack is a set forged after the fact, byte by byte (tests/rawtar.py, no maasops code), and
re-signed with the lab's trusted key, as a compromised controller's output is signed by the laptop
that took it. ``verify`` and ``restore`` must refuse it with a message that says why, and the host,
read afterwards, must hold nothing the attack carried, with every unit as it was.
"""

from __future__ import annotations

import pytest

from tests.labtools import backed_up, fab, journal_lines, unit_states
from tests.rawtar import ZERO_BLOCKS, header, listed, member, pad, pax, reforge

pytestmark = pytest.mark.lab
NEW_URL = "http://10.99.99.99:5240/MAAS"


@pytest.fixture(scope="module")
def good_set(lab, tmp_path_factory):
    return backed_up(lab.inventory, tmp_path_factory.mktemp("agree"))


def host_files(lab, host: str, *paths: str) -> str:
    """Type, owner, mode and sha256 of each path on the host (or that it is not there), read on the host."""
    script = " ".join(f"'{p}'" for p in paths)
    return lab.run(host, f"for p in {script}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then stat -c '%n %F %U:%G %a' "
                         "\"$p\"; [ -f \"$p\" ] && sha256sum < \"$p\"; else echo \"$p absent\"; fi; done; true").stdout


def _all(items) -> bytes:
    return b"".join(raw for _, raw in items)


def _without(name: str):
    return lambda items: [(n, raw) for n, raw in items if n != name]


def _unlisted(path: str):
    return lambda files: [f for f in files if f["path"] != path]


def refused_before_anything(lab, bad, host: str, paths: tuple[str, ...], says: str, *extra: str) -> None:
    """``verify`` and ``restore`` refuse ``bad`` saying ``says``; nothing stopped, nothing written on ``host``."""
    before = (unit_states(lab), journal_lines(lab), host_files(lab, host, *paths))
    v = fab("verify", str(bad), "--inventory", str(lab.inventory))
    assert v.returncode == 1 and says in v.stdout, v.stdout
    r = fab("restore", str(bad), "--inventory", str(lab.inventory), *extra)
    assert r.returncode == 2 and says in r.stdout, r.stdout + r.stderr
    assert (unit_states(lab), journal_lines(lab), host_files(lab, host, *paths)) == before


def test_members_behind_a_header_tarfile_cannot_read_are_refused(lab, good_set, tmp_path):
    # A regular file whose devmajor is garbage: Python's tarfile stops there, silently; GNU tar ignores the
    # field for a file and extracts it and everything after it: here a symbolic link and a block device.
    hidden = (header("var/lib/maas/hidden", size=2, devmajor=b"zzzzzzz\0") + pad(b"x\n")
              + member("var/lib/maas/evil", flag=b"2", link="/etc/shadow", mode=0o777)
              + member("var/lib/maas/sda", flag=b"4", mode=0o666))
    bad = reforge(good_set, tmp_path / good_set.name, "rack2", lambda items: _all(items) + hidden + ZERO_BLOCKS,
                  sign_with=lab.signing_key)
    refused_before_anything(lab, bad, "rack2", ("/var/lib/maas/hidden", "/var/lib/maas/evil", "/var/lib/maas/sda"),
                            "its devmajor field")


def test_a_pax_header_naming_two_files_is_refused(lab, good_set, tmp_path):
    # tarfile takes the last of path and GNU.sparse.name, GNU tar takes GNU.sparse.name: the check would see
    # /var/lib/maas/innocent, the host would write this over /etc/maas/rackd.conf.
    evil = b"maas_url: http://attacker.example/MAAS\n"
    tail = (pax([("GNU.sparse.name", "etc/maas/rackd.conf"), ("path", "var/lib/maas/innocent")])
            + member("var/lib/maas/innocent", evil))
    bad = reforge(good_set, tmp_path / good_set.name, "rack2", lambda items: _all(items) + tail + ZERO_BLOCKS,
                  listing=lambda files: files + [listed("var/lib/maas/innocent", evil)], sign_with=lab.signing_key)
    refused_before_anything(lab, bad, "rack2", ("/etc/maas/rackd.conf", "/var/lib/maas/innocent"),
                            "keyword 'GNU.sparse.name' is not one maasops reads")


def test_a_chain_of_links_out_of_the_trees_is_refused(lab, good_set, tmp_path):
    # l2 -> . and rackd.conf -> l2/../issue: each target reads as inside /etc/maas, the pair leads to /etc/issue,
    # which the rack's re-point (--maas-url) would then rewrite as root.
    lab.run("rack2", "[ -e /etc/issue ] || echo 'Ubuntu 22.04 LTS \\n \\l' > /etc/issue")
    chain = (member("etc/maas/l2", flag=b"2", link=".", mode=0o777)
             + member("etc/maas/rackd.conf", flag=b"2", link="l2/../issue", mode=0o777))
    links = [listed("etc/maas/l2", kind="symlink", mode=0o777, link="."),
             listed("etc/maas/rackd.conf", kind="symlink", mode=0o777, link="l2/../issue")]
    bad = reforge(good_set, tmp_path / good_set.name, "rack2",
                  lambda items: _all(_without("etc/maas/rackd.conf")(items)) + chain + ZERO_BLOCKS,
                  listing=lambda files: _unlisted("/etc/maas/rackd.conf")(files) + links, sign_with=lab.signing_key)
    refused_before_anything(lab, bad, "rack2", ("/etc/issue", "/etc/maas/rackd.conf", "/etc/maas/l2"),
                            "a symbolic link to 'l2/../issue', outside the trees", "--maas-url", NEW_URL)


def test_a_root_write_refuses_a_link_the_set_planted_and_the_restore_is_undone(lab, good_set, tmp_path):
    # A link that stays in the trees passes the archive's rules; the re-point's root write must still not
    # follow it (it would rewrite /var/lib/maas/canary as root).
    canary = b"maas_url: http://canary.example/MAAS\n"
    plant = (member("var/lib/maas/canary", canary)
             + member("etc/maas/rackd.conf", flag=b"2", link="/var/lib/maas/canary", mode=0o777))
    entries = [listed("var/lib/maas/canary", canary),
               listed("etc/maas/rackd.conf", kind="symlink", mode=0o777, link="/var/lib/maas/canary")]
    bad = reforge(good_set, tmp_path / good_set.name, "rack2",
                  lambda items: _all(_without("etc/maas/rackd.conf")(items)) + plant + ZERO_BLOCKS,
                  listing=lambda files: _unlisted("/etc/maas/rackd.conf")(files) + entries,
                  sign_with=lab.signing_key)
    paths = ("/etc/maas/rackd.conf", "/var/lib/maas/canary")
    before = (unit_states(lab), host_files(lab, "rack2", *paths))
    r = fab("restore", str(bad), "--inventory", str(lab.inventory), "--maas-url", NEW_URL)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "/etc/maas/rackd.conf is a symbolic link: a root write through it is refused" in r.stdout, r.stdout
    assert (unit_states(lab), host_files(lab, "rack2", *paths)) == before  # put back, every unit up again


@pytest.mark.parametrize("listing", [True, False], ids=["manifest forged too", "archive alone"])
def test_a_secret_in_the_archive_twice_is_refused(lab, good_set, tmp_path, listing):
    # GNU tar keeps the last /var/lib/maas/secret, a reader that stops at the first sends the racks another.
    other = b"0123456789abcdef0123456789abcdef\n"
    second = member("var/lib/maas/secret", other, owner="maas", mode=0o640)
    entry = {**listed("var/lib/maas/secret", other, mode=0o640), "user": "maas", "group": "maas"}
    bad = reforge(good_set, tmp_path / good_set.name, "region1", lambda items: _all(items) + second + ZERO_BLOCKS,
                  listing=(lambda files: files + [entry]) if listing else None, sign_with=lab.signing_key)
    before = (unit_states(lab), journal_lines(lab), host_files(lab, "region1", "/var/lib/maas/secret"),
              host_files(lab, "rack2", "/var/lib/maas/secret"))
    v = fab("verify", str(bad), "--inventory", str(lab.inventory))
    assert v.returncode == 1 and "/var/lib/maas/secret" in v.stdout, v.stdout
    r = fab("restore", str(bad), "--inventory", str(lab.inventory))
    assert r.returncode == 2 and "/var/lib/maas/secret: in the archive twice" in r.stdout, r.stdout + r.stderr
    assert (unit_states(lab), journal_lines(lab), host_files(lab, "region1", "/var/lib/maas/secret"),
            host_files(lab, "rack2", "/var/lib/maas/secret")) == before
